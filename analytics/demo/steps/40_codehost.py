"""Step 40: pull requests and incident issues for the demo organisation, via ``collect github``.

The demo's feature and hotfix branches were merged with ``--no-ff`` (step 10), so each merge on
``main`` is a pull request: its commits are the branch's, its ``merge_commit_sha`` is the merge.
Opening, first review and the reviewer come from a seeded RNG, bounded by the real commit and
merge times. Each service also gets one incident issue (label ``Incident``; its ``root cause:``
line names a feature release's commit) and one plain bug issue that must not count.

A small GitHub-shaped REST server runs in this process on 127.0.0.1 (random port) and serves
exactly what the GitHub API would for these repositories, paginated with ``Link`` headers; the
step then runs ``gitops-dora collect github demo-org/<service> --base-url <server>``, the same
path a user runs against github.com.
"""

from __future__ import annotations

import json
import random
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from analytics.demo.context import DemoContext

ORG = "demo-org"
SEED = 4040


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _login(name: str) -> str:
    return name.split()[0].lower()


def _merges(repo: Path) -> list[dict[str, Any]]:
    """Each --no-ff merge on main's first-parent line with the branch commits it brought in."""
    out = subprocess.run(
        ["git", "-C", str(repo), "log", "--format=%H%x1f%P%x1f%at%x1f%an%x1f%s", "main"],
        capture_output=True, text=True, check=True,
    ).stdout
    info: dict[str, tuple[list[str], int, str, str]] = {}
    for line in out.splitlines():
        sha, parent_text, at, author, subject = line.split("\x1f")
        info[sha] = (parent_text.split(), int(at), author, subject)
    tip = next(iter(info))
    main_line, current = [], tip
    while current in info:
        main_line.append(current)
        parents = info[current][0]
        current = parents[0] if parents else ""
    on_main = set(main_line)
    merges = []
    for sha in reversed(main_line):
        merge_parents, merged_at, _author, subject = info[sha]
        if len(merge_parents) < 2 or not subject.startswith("Merge branch '"):
            continue
        branch = subject.split("'")[1]
        commits, current = [], merge_parents[1]
        while current in info and current not in on_main:
            commits.append(current)
            current = info[current][0][0] if info[current][0] else ""
        commits.reverse()
        merges.append({
            "sha": sha, "merged_at": merged_at, "branch": branch,
            "commits": [(c, info[c][1], info[c][2]) for c in commits],
        })
    return merges


class _GitHubShapes:
    """GitHub REST v3 JSON for one in-memory organisation."""

    def __init__(self) -> None:
        self.base = ""
        self.repos: dict[str, dict[str, list[dict[str, Any]]]] = {}

    def user(self, login: str) -> dict[str, Any]:
        return {"login": login, "id": sum(map(ord, login)), "type": "User", "site_admin": False,
                "url": f"{self.base}/users/{login}", "html_url": f"https://github.com/{login}"}

    def add_pull(self, full: str, number: int, merge: dict[str, Any], created: datetime,
                 review: tuple[str, datetime] | None) -> None:
        data = self.repos.setdefault(full, {"pulls": [], "issues": []})
        url = f"{self.base}/repos/{full}/pulls/{number}"
        author = _login(merge["commits"][0][2])
        merged = datetime.fromtimestamp(merge["merged_at"], UTC)
        kind = merge["branch"].split("/", 1)[0]
        data["pulls"].append({
            "url": url, "id": number, "number": number, "state": "closed", "locked": False,
            "title": merge["branch"].split("/", 1)[-1].replace("-", " "), "user": self.user(author),
            "body": "",
            "labels": [{"id": 1, "name": kind, "color": "ededed", "default": False, "description": None}],
            "created_at": _iso(created), "updated_at": _iso(merged), "closed_at": _iso(merged),
            "merged_at": _iso(merged), "merge_commit_sha": merge["sha"], "draft": False,
            "html_url": f"https://github.com/{full}/pull/{number}",
            "head": {"ref": merge["branch"], "sha": merge["commits"][-1][0],
                     "label": f"{ORG}:{merge['branch']}"},
            "base": {"ref": "main", "sha": merge["sha"], "label": f"{ORG}:main"},
            "_commits": [{
                "sha": sha, "url": f"{self.base}/repos/{full}/commits/{sha}",
                "html_url": f"https://github.com/{full}/commit/{sha}",
                "commit": {"author": {"name": name, "email": f"{_login(name)}@example.com",
                                      "date": _iso(datetime.fromtimestamp(at, UTC))},
                           "committer": {"name": name, "email": f"{_login(name)}@example.com",
                                         "date": _iso(datetime.fromtimestamp(at, UTC))},
                           "message": "work", "comment_count": 0},
                "author": self.user(_login(name)), "committer": self.user(_login(name)), "parents": [],
            } for sha, at, name in merge["commits"]],
            "_reviews": [] if review is None else [{
                "id": number * 10, "user": self.user(review[0]), "body": "LGTM", "state": "APPROVED",
                "submitted_at": _iso(review[1]), "commit_id": merge["commits"][-1][0],
                "html_url": f"https://github.com/{full}/pull/{number}#pullrequestreview-{number * 10}",
                "pull_request_url": url, "author_association": "MEMBER",
            }],
        })

    def add_issue(self, full: str, number: int, title: str, labels: list[str], created: datetime,
                  closed: datetime | None, body: str) -> None:
        data = self.repos.setdefault(full, {"pulls": [], "issues": []})
        data["issues"].append({
            "url": f"{self.base}/repos/{full}/issues/{number}", "id": 50000 + number, "number": number,
            "title": title, "user": self.user("oncall"), "state": "closed" if closed else "open",
            "labels": [{"id": i, "name": n, "color": "d73a4a", "default": False, "description": None}
                       for i, n in enumerate(labels)],
            "created_at": _iso(created), "updated_at": _iso(closed or created),
            "closed_at": _iso(closed) if closed else None, "body": body, "comments": 0, "locked": False,
            "html_url": f"https://github.com/{full}/issues/{number}", "author_association": "MEMBER",
        })

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        parts = path.strip("/").split("/")
        if len(parts) < 3 or parts[0] != "repos" or f"{parts[1]}/{parts[2]}" not in self.repos:
            return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}, {}
        full, rest = f"{parts[1]}/{parts[2]}", parts[3:]
        data = self.repos[full]
        if not rest:
            return 200, {"id": 1, "name": parts[2], "full_name": full, "private": False,
                         "owner": self.user(parts[1]), "url": f"{self.base}/repos/{full}",
                         "html_url": f"https://github.com/{full}", "default_branch": "main"}, {}
        if rest == ["pulls"]:
            items = sorted(data["pulls"], key=lambda p: p["updated_at"], reverse=True)
            public = [{k: v for k, v in p.items() if not k.startswith("_")} for p in items]
            return self._page(path, query, public)
        if len(rest) == 3 and rest[0] == "pulls" and rest[2] in ("commits", "reviews"):
            pull = next((p for p in data["pulls"] if str(p["number"]) == rest[1]), None)
            return self._page(path, query, pull[f"_{rest[2]}"] if pull else [])
        if rest == ["issues"]:
            since = query.get("since", [""])[0]
            return self._page(path, query, [i for i in data["issues"] if i["updated_at"] >= since])
        if rest in (["deployments"], ["releases"]):
            return self._page(path, query, [])
        return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}, {}

    def _page(
        self, path: str, query: dict[str, list[str]], items: list[Any]
    ) -> tuple[int, Any, dict[str, str]]:
        per_page = int(query.get("per_page", ["30"])[0])
        page = int(query.get("page", ["1"])[0])
        args = {k: v[0] for k, v in query.items() if k != "page"}
        headers = {}
        if page * per_page < len(items):
            headers["Link"] = f'<{self.base}{path}?{urlencode({**args, "page": page + 1})}>; rel="next"'
        return 200, items[(page - 1) * per_page: page * per_page], headers


def _serve(shapes: _GitHubShapes) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        # Keep-alive, as GitHub does: the collector's client reuses one connection for the
        # repository's few hundred requests instead of opening one (and a server thread) each;
        # without TCP_NODELAY each response's headers and body (two writes) would wait ~40 ms on
        # the client's delayed ACK.
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_GET(self) -> None:  # noqa: N802 - the http.server hook name
            parts = urlsplit(self.path)
            status, body, headers = shapes.answer(parts.path, parse_qs(parts.query))
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(raw)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    shapes.base = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, name="demo-github", daemon=True).start()
    return server


def _production_live(manifest: dict[str, Any], service: str) -> dict[str, datetime]:
    live = {r["tag"]: _time(r["tagged_at"]) for r in manifest["releases"][service]}
    for commit in manifest["config_commits"].get("production", []):
        if commit["service"] == service and commit.get("tag") in live:
            live[commit["tag"]] = max(live[commit["tag"]], _time(commit["committed_at"]))
    return live


def _fill(shapes: _GitHubShapes, demo: DemoContext, manifest: dict[str, Any], rng: random.Random) -> int:
    prs = 0
    for service in manifest["services"]:
        name, full = service["name"], f"{ORG}/{service['name']}"
        shapes.repos[full] = {"pulls": [], "issues": []}
        merges = _merges(demo.workdir / service["repo"])
        logins = sorted({_login(c[2]) for m in merges for c in m["commits"]})
        for number, merge in enumerate(merges, start=1):
            first = datetime.fromtimestamp(merge["commits"][0][1], UTC)
            merged = datetime.fromtimestamp(merge["merged_at"], UTC)
            last_commit = datetime.fromtimestamp(merge["commits"][-1][1], UTC)
            # opened after the first commit, before the merge (drafts are often opened mid-branch)
            created = min(first + timedelta(minutes=rng.randint(20, 240)), merged - timedelta(minutes=30))
            created = max(created, first)
            review: tuple[str, datetime] | None = None
            if rng.random() < 0.9:  # one PR in ten merged without a review
                when = min(max(created, last_commit) + timedelta(minutes=rng.randint(15, 720)),
                           merged - timedelta(minutes=5))
                author = _login(merge["commits"][0][2])
                reviewer = rng.choice([x for x in logins if x != author] or ["reviewer"])
                review = (reviewer, max(when, created))
            shapes.add_pull(full, number, merge, created, review)
            prs += 1
        features = [r for r in manifest["releases"][name] if r["kind"] == "feature"]
        live = _production_live(manifest, name)
        issue = 1000
        if len(features) > 3:  # index 3: not one of the regressions step 30 already filed (1, 5, 9...)
            bad = features[3]
            opened = live[bad["tag"]] + timedelta(minutes=90)
            shapes.add_issue(full, issue + 1, f"Elevated error rate after {bad['tag']}", ["Incident", "sev2"],
                             opened, opened + timedelta(hours=2),
                             f"Dashboards show 5xx after {bad['tag']}.\n\nroot cause: {bad['sha'][:12]}\n")
        shapes.add_issue(full, issue + 2, "Typo on the settings page", ["bug"],
                         _time(manifest["start"]) + timedelta(days=20), None, "")
    return prs


def run(demo: DemoContext) -> None:
    manifest = demo.load_manifest()
    shapes = _GitHubShapes()
    server = _serve(shapes)
    try:
        prs = _fill(shapes, demo, manifest, random.Random(SEED))
        for service in manifest["services"]:
            demo.cli("collect", "github", f"{ORG}/{service['name']}", "--base-url", shapes.base,
                     "--repo-id", service["name"])
    finally:
        server.shutdown()
        server.server_close()
    demo.say(f"collected {prs} pull requests and the incident issues of {len(manifest['services'])} "
             f"repositories through a GitHub-shaped API on 127.0.0.1")
