"""A loopback GitHub REST API (pytest-httpserver) answering with documented response shapes.

Serves the endpoints the collector uses, paginates every list with small pages and RFC 5988
``Link`` headers (``rel="next"``/``rel="last"``, as GitHub does), honours ``since`` on issues and
``sort=updated&direction=desc`` on pulls, checks the token, and can inject failures (rate
limits, 401, 403, 404) in front of a path. Every request is logged for assertions.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlencode

from werkzeug import Request, Response

from tests.loopback_api import Fault, LoopbackAPI

__all__ = ["Fault", "GitHubAPI"]


@dataclass
class GitHubAPI(LoopbackAPI):
    full_name: str
    token: str | None = "ghp_test_token_123"
    pulls: list[dict[str, Any]] = field(default_factory=list)
    pr_commits: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    pr_reviews: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    statuses: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    issues: list[dict[str, Any]] = field(default_factory=list)
    releases: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)

    HEADERS: ClassVar[dict[str, str]] = {
        "Content-Type": "application/json; charset=utf-8",
        "X-RateLimit-Limit": "5000",
        "X-RateLimit-Remaining": "4999",
        "X-RateLimit-Resource": "core",
        "X-GitHub-Api-Version-Selected": "2022-11-28",
    }

    @property
    def repo_url(self) -> str:
        return f"{self.base}/repos/{self.full_name}"

    # --- builders: the fields GitHub documents for each list item ---

    def user(self, login: str) -> dict[str, Any]:
        return {
            "login": login,
            "id": abs(hash(login)) % 10**6,
            "type": "User",
            "url": f"{self.base}/users/{login}",
            "html_url": f"https://github.com/{login}",
            "site_admin": False,
        }

    def add_pull(
        self,
        number: int,
        *,
        title: str,
        author: str,
        created: str,
        updated: str,
        merged: str | None = None,
        closed: str | None = None,
        merge_sha: str | None = None,
        head: str = "feature",
        labels: tuple[str, ...] = (),
        commits: Sequence[tuple[str, str]] = (),
        reviews: Sequence[tuple[int, str, str, str]] = (),
    ) -> None:
        url = f"{self.repo_url}/pulls/{number}"
        self.pulls.append(
            {
                "url": url,
                "id": 1000 + number,
                "node_id": f"PR_{number}",
                "number": number,
                "html_url": f"https://github.com/{self.full_name}/pull/{number}",
                "diff_url": f"https://github.com/{self.full_name}/pull/{number}.diff",
                "issue_url": f"{self.repo_url}/issues/{number}",
                "commits_url": f"{url}/commits",
                "review_comments_url": f"{url}/comments",
                "statuses_url": f"{self.repo_url}/statuses/x",
                "state": "closed" if closed or merged else "open",
                "locked": False,
                "title": title,
                "user": self.user(author),
                "body": "",
                "labels": [
                    {
                        "id": i,
                        "node_id": f"L{i}",
                        "url": f"{self.repo_url}/labels/{n}",
                        "name": n,
                        "color": "ededed",
                        "default": False,
                        "description": None,
                    }
                    for i, n in enumerate(labels)
                ],
                "milestone": None,
                "active_lock_reason": None,
                "created_at": created,
                "updated_at": updated,
                "closed_at": closed or merged,
                "merged_at": merged,
                "merge_commit_sha": merge_sha,
                "assignee": None,
                "assignees": [],
                "requested_reviewers": [],
                "requested_teams": [],
                "head": {
                    "label": f"acme:{head}",
                    "ref": head,
                    "sha": (commits[-1][0] if commits else "0" * 40),
                    "user": self.user("acme"),
                    "repo": None,
                },
                "base": {
                    "label": "acme:main",
                    "ref": "main",
                    "sha": "f" * 40,
                    "user": self.user("acme"),
                    "repo": None,
                },
                "author_association": "MEMBER",
                "auto_merge": None,
                "draft": False,
            }
        )
        self.pr_commits[number] = [
            {
                "url": f"{self.repo_url}/commits/{sha}",
                "sha": sha,
                "node_id": f"C_{sha[:7]}",
                "html_url": f"https://github.com/{self.full_name}/commit/{sha}",
                "comments_url": f"{self.repo_url}/commits/{sha}/comments",
                "commit": {
                    "url": f"{self.repo_url}/git/commits/{sha}",
                    "author": {"name": author, "email": f"{author}@example.com", "date": at},
                    "committer": {"name": author, "email": f"{author}@example.com", "date": at},
                    "message": f"work {sha[:7]}",
                    "tree": {"url": "", "sha": "e" * 40},
                    "comment_count": 0,
                    "verification": {"verified": False, "reason": "unsigned"},
                },
                "author": self.user(author),
                "committer": self.user(author),
                "parents": [],
            }
            for sha, at in commits
        ]
        self.pr_reviews[number] = [
            {
                "id": rid,
                "node_id": f"PRR_{rid}",
                "user": self.user(who),
                "body": "",
                "state": state,
                "html_url": f"https://github.com/{self.full_name}/pull/{number}#pullrequestreview-{rid}",
                "pull_request_url": url,
                "submitted_at": at,
                "commit_id": "c" * 40,
                "author_association": "MEMBER",
            }
            for rid, who, state, at in reviews
        ]

    def add_deployment(
        self, dep_id: int, sha: str, environment: str, created: str, statuses: list[tuple[str, str]]
    ) -> None:
        """``statuses`` oldest first as (state, created_at); GitHub lists them newest first."""
        url = f"{self.repo_url}/deployments/{dep_id}"
        self.deployments.append(
            {
                "url": url,
                "id": dep_id,
                "node_id": f"DE_{dep_id}",
                "sha": sha,
                "ref": "main",
                "task": "deploy",
                "payload": {},
                "original_environment": environment,
                "environment": environment,
                "description": None,
                "creator": self.user("deployer"),
                "created_at": created,
                "updated_at": created,
                "statuses_url": f"{url}/statuses",
                "repository_url": self.repo_url,
                "transient_environment": False,
                "production_environment": environment == "production",
            }
        )
        self.statuses[dep_id] = [
            {
                "url": f"{url}/statuses/{dep_id * 100 + i}",
                "id": dep_id * 100 + i,
                "node_id": f"DES_{i}",
                "state": state,
                "creator": self.user("deployer"),
                "description": "",
                "environment": environment,
                "target_url": "",
                "log_url": "",
                "environment_url": "",
                "created_at": at,
                "updated_at": at,
                "deployment_url": url,
                "repository_url": self.repo_url,
            }
            for i, (state, at) in reversed(list(enumerate(statuses)))
        ]

    def add_issue(
        self,
        number: int,
        *,
        title: str,
        labels: tuple[str, ...],
        created: str,
        updated: str,
        closed: str | None = None,
        body: str = "",
        is_pull: bool = False,
    ) -> None:
        kind = "pull" if is_pull else "issues"
        item: dict[str, Any] = {
            "url": f"{self.repo_url}/issues/{number}",
            "id": 5000 + number,
            "node_id": f"I_{number}",
            "number": number,
            "title": title,
            "user": self.user("oncall"),
            "labels": [
                {
                    "id": i,
                    "node_id": f"L{i}",
                    "url": "",
                    "name": n,
                    "color": "d73a4a",
                    "default": False,
                    "description": None,
                }
                for i, n in enumerate(labels)
            ],
            "state": "closed" if closed else "open",
            "locked": False,
            "assignee": None,
            "assignees": [],
            "milestone": None,
            "comments": 0,
            "created_at": created,
            "updated_at": updated,
            "closed_at": closed,
            "author_association": "MEMBER",
            "active_lock_reason": None,
            "body": body,
            "html_url": f"https://github.com/{self.full_name}/{kind}/{number}",
            "repository_url": self.repo_url,
            "state_reason": "completed" if closed else None,
        }
        if is_pull:
            item["pull_request"] = {"url": f"{self.repo_url}/pulls/{number}", "merged_at": None}
        self.issues.append(item)

    def add_release(self, rel_id: int, tag: str, target: str, created: str, published: str) -> None:
        self.releases.append(
            {
                "url": f"{self.repo_url}/releases/{rel_id}",
                "id": rel_id,
                "node_id": f"RE_{rel_id}",
                "tag_name": tag,
                "target_commitish": target,
                "name": f"Release {tag}",
                "body": "",
                "draft": False,
                "prerelease": False,
                "created_at": created,
                "published_at": published,
                "author": self.user("releaser"),
                "assets": [],
                "html_url": f"https://github.com/{self.full_name}/releases/tag/{tag}",
                "tarball_url": None,
                "zipball_url": None,
            }
        )

    def add_run(
        self, run_id: int, *, name: str, path: str, sha: str, branch: str, created: str, updated: str,
        conclusion: str | None, status: str = "completed", number: int | None = None, attempt: int = 1,
    ) -> None:
        """A workflow run as ``GET /repos/{owner}/{repo}/actions/runs`` lists it."""
        self.runs.append(
            {
                "id": run_id,
                "name": name,
                "node_id": f"WFR_{run_id}",
                "head_branch": branch,
                "head_sha": sha,
                "path": path,
                "display_title": name,
                "run_number": number if number is not None else run_id,
                "run_attempt": attempt,
                "event": "push",
                "status": status,
                "conclusion": conclusion,
                "workflow_id": abs(hash(path)) % 10**6,
                "url": f"{self.repo_url}/actions/runs/{run_id}",
                "html_url": f"https://github.com/{self.full_name}/actions/runs/{run_id}",
                "created_at": created,
                "updated_at": updated,
                "run_started_at": created,
                "actor": self.user("deployer"),
                "triggering_actor": self.user("deployer"),
                "head_commit": {"id": sha, "tree_id": sha, "message": "deploy", "timestamp": created},
            }
        )

    # --- serving ---

    def _serve(self, request: Request) -> Response:
        if self.token is not None and request.headers.get("Authorization", "").split(" ")[-1] != self.token:
            return self._json(
                {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}, 401
            )
        prefix = f"/repos/{self.full_name}"
        path = request.path
        if not path.startswith(prefix):
            return self._not_found()
        rest = path[len(prefix) :]
        if rest == "":
            owner, name = self.full_name.split("/")
            return self._json(
                {
                    "id": 1,
                    "node_id": "R_1",
                    "name": name,
                    "full_name": self.full_name,
                    "private": False,
                    "owner": self.user(owner),
                    "url": self.repo_url,
                    "html_url": f"https://github.com/{self.full_name}",
                    "default_branch": "main",
                    "created_at": "2020-01-01T00:00:00Z",
                    "updated_at": "2026-01-01T00:00:00Z",
                    "pushed_at": "2026-01-01T00:00:00Z",
                    "visibility": "public",
                },
                200,
            )
        if rest == "/pulls":
            items = sorted(self.pulls, key=lambda p: p["updated_at"], reverse=True)
            return self._page(request, items)
        m = re.fullmatch(r"/pulls/(\d+)/(commits|reviews)", rest)
        if m:
            store = self.pr_commits if m.group(2) == "commits" else self.pr_reviews
            return self._page(request, store.get(int(m.group(1)), []))
        if rest == "/deployments":
            return self._page(request, sorted(self.deployments, key=lambda d: d["created_at"], reverse=True))
        m = re.fullmatch(r"/deployments/(\d+)/statuses", rest)
        if m:
            return self._page(request, self.statuses.get(int(m.group(1)), []))
        if rest == "/issues":
            since = request.args.get("since")
            items = [i for i in self.issues if since is None or i["updated_at"] >= since]
            return self._page(request, sorted(items, key=lambda i: i["created_at"], reverse=True))
        if rest == "/releases":
            return self._page(request, self.releases)
        if rest == "/actions/runs":
            branch, status = request.args.get("branch"), request.args.get("status")
            items = [r for r in self.runs if (branch is None or r["head_branch"] == branch)
                     and (status is None or r["status"] == status or r["conclusion"] == status)]
            items.sort(key=lambda r: r["created_at"], reverse=True)
            return self._page(request, items, wrap="workflow_runs")
        return self._not_found()

    def _page(self, request: Request, items: list[dict[str, Any]], wrap: str | None = None) -> Response:
        """RFC 5988 ``Link`` headers, as GitHub sends them; ``wrap``: the list is an object's
        ``wrap`` key with a ``total_count`` (as the Actions endpoints answer)."""
        cut = self._slice(request, items)
        page, last, args = cut.number, cut.last, cut.args
        links = []
        if page < last:
            links.append(f'<{self.base}{request.path}?{urlencode({**args, "page": page + 1})}>; rel="next"')
            links.append(f'<{self.base}{request.path}?{urlencode({**args, "page": last})}>; rel="last"')
        if page > 1:
            links.append(f'<{self.base}{request.path}?{urlencode({**args, "page": 1})}>; rel="first"')
            links.append(f'<{self.base}{request.path}?{urlencode({**args, "page": page - 1})}>; rel="prev"')
        headers = {"Link": ", ".join(links)} if links else {}
        if wrap is not None:
            return self._json({"total_count": len(items), wrap: cut.items}, 200, headers)
        return self._json(cut.items, 200, headers)

    def _not_found(self) -> Response:
        return self._json(
            {"message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404"},
            404,
        )
