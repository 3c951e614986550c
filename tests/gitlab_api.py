"""A loopback GitLab REST API v4 (pytest-httpserver) with documented response shapes.

Lists are paginated in pages of 2 with ``Link`` headers and ``X-Page``/``X-Next-Page``/``X-Total``
headers as GitLab sends them; ``updated_after`` filters; ``PRIVATE-TOKEN`` is checked; failures
can be injected in front of a path. Projects answer by numeric id and by URL-encoded path.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlencode

from werkzeug import Request, Response

from tests.loopback_api import PAGE, LoopbackAPI


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
PROJECT_ID = 42


@dataclass
class GitLabAPI(LoopbackAPI):
    path: str
    token: str | None = "glpat-test-token"
    mrs: list[dict[str, Any]] = field(default_factory=list)
    mr_commits: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    mr_notes: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    issues: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)

    HEADERS: ClassVar[dict[str, str]] = {
        "Content-Type": "application/json",
        "RateLimit-Limit": "2000",
        "RateLimit-Remaining": "1999",
    }

    @property
    def web(self) -> str:
        return f"https://gitlab.example.com/{self.path}"

    def user(self, username: str) -> dict[str, Any]:
        return {
            "id": abs(hash(username)) % 10**5,
            "username": username,
            "name": username.title(),
            "state": "active",
            "locked": False,
            "avatar_url": None,
            "web_url": f"https://gitlab.example.com/{username}",
        }

    def add_mr(
        self,
        iid: int,
        *,
        title: str,
        author: str,
        state: str,
        created: str,
        updated: str,
        merged: str | None = None,
        merge_sha: str | None = None,
        squash_sha: str | None = None,
        commits: Sequence[tuple[str, str]] = (),
        notes: Sequence[tuple[int, str, str, bool, str]] = (),
        labels: tuple[str, ...] = (),
    ) -> None:
        self.mrs.append(
            {
                "id": 9000 + iid,
                "iid": iid,
                "project_id": PROJECT_ID,
                "title": title,
                "description": "",
                "state": state,
                "created_at": created,
                "updated_at": updated,
                "merged_by": self.user("bo") if merged else None,
                "merge_user": self.user("bo") if merged else None,
                "merged_at": merged,
                "closed_by": None,
                "closed_at": None,
                "target_branch": "main",
                "source_branch": f"feature-{iid}",
                "user_notes_count": len(notes),
                "upvotes": 0,
                "downvotes": 0,
                "author": self.user(author),
                "assignees": [],
                "assignee": None,
                "reviewers": [],
                "source_project_id": PROJECT_ID,
                "target_project_id": PROJECT_ID,
                "labels": list(labels),
                "draft": False,
                "work_in_progress": False,
                "milestone": None,
                "merge_when_pipeline_succeeds": False,
                "merge_status": "can_be_merged",
                "detailed_merge_status": "mergeable",
                "sha": commits[-1][0] if commits else None,
                "merge_commit_sha": merge_sha,
                "squash_commit_sha": squash_sha,
                "discussion_locked": None,
                "should_remove_source_branch": True,
                "force_remove_source_branch": True,
                "reference": f"!{iid}",
                "references": {"short": f"!{iid}", "relative": f"!{iid}", "full": f"{self.path}!{iid}"},
                "web_url": f"{self.web}/-/merge_requests/{iid}",
                "time_stats": {
                    "time_estimate": 0,
                    "total_time_spent": 0,
                    "human_time_estimate": None,
                    "human_total_time_spent": None,
                },
                "squash": squash_sha is not None,
                "squash_on_merge": squash_sha is not None,
                "task_completion_status": {"count": 0, "completed_count": 0},
                "has_conflicts": False,
                "blocking_discussions_resolved": True,
            }
        )
        self.mr_commits[iid] = [
            {
                "id": sha,
                "short_id": sha[:8],
                "created_at": at,
                "parent_ids": [],
                "title": f"work {sha[:7]}",
                "message": f"work {sha[:7]}",
                "author_name": author,
                "author_email": f"{author}@example.com",
                "authored_date": at,
                "committer_name": author,
                "committer_email": f"{author}@example.com",
                "committed_date": at,
                "trailers": {},
                "web_url": f"{self.web}/-/commit/{sha}",
            }
            for sha, at in reversed(commits)
        ]  # GitLab lists MR commits newest first
        self.mr_notes[iid] = [
            {
                "id": nid,
                "type": None,
                "body": body,
                "attachment": None,
                "author": self.user(who),
                "created_at": at,
                "updated_at": at,
                "system": system,
                "noteable_id": 9000 + iid,
                "noteable_type": "MergeRequest",
                "project_id": PROJECT_ID,
                "resolvable": False,
                "confidential": False,
                "internal": False,
                "noteable_iid": iid,
            }
            for nid, who, body, system, at in notes
        ]

    def add_deployment(
        self, dep_id: int, sha: str, environment: str, status: str, created: str, finished: str | None
    ) -> None:
        self.deployments.append(
            {
                "id": dep_id,
                "iid": dep_id - 100,
                "ref": "main",
                "sha": sha,
                "created_at": created,
                "updated_at": finished or created,
                "status": status,
                "user": self.user("deployer"),
                "environment": {
                    "id": 7,
                    "name": environment,
                    "slug": environment,
                    "external_url": None,
                    "created_at": "2025-01-01T00:00:00.000Z",
                    "updated_at": created,
                    "tier": environment,
                },
                "deployable": {
                    "id": dep_id * 10,
                    "status": status,
                    "stage": "deploy",
                    "name": "deploy",
                    "ref": "main",
                    "tag": False,
                    "coverage": None,
                    "created_at": created,
                    "started_at": created,
                    "finished_at": finished,
                    "duration": 60.0,
                    "user": self.user("deployer"),
                    "commit": {"id": sha, "short_id": sha[:8]},
                    "pipeline": {"id": dep_id * 100, "sha": sha, "ref": "main", "status": status},
                },
            }
        )

    def add_issue(
        self,
        iid: int,
        *,
        title: str,
        labels: tuple[str, ...],
        created: str,
        updated: str,
        closed: str | None = None,
        incident_type: bool = False,
        description: str = "",
    ) -> None:
        self.issues.append(
            {
                "id": 7000 + iid,
                "iid": iid,
                "project_id": PROJECT_ID,
                "title": title,
                "description": description,
                "state": "closed" if closed else "opened",
                "created_at": created,
                "updated_at": updated,
                "closed_at": closed,
                "closed_by": self.user("oncall") if closed else None,
                "labels": list(labels),
                "milestone": None,
                "assignees": [],
                "author": self.user("oncall"),
                "assignee": None,
                "type": "INCIDENT" if incident_type else "ISSUE",
                "issue_type": "incident" if incident_type else "issue",
                "user_notes_count": 0,
                "merge_requests_count": 0,
                "upvotes": 0,
                "downvotes": 0,
                "due_date": None,
                "confidential": False,
                "discussion_locked": None,
                "web_url": f"{self.web}/-/issues/{iid}",
                "time_stats": {"time_estimate": 0, "total_time_spent": 0},
                "severity": "UNKNOWN",
            }
        )

    def add_job(
        self, job_id: int, *, name: str, status: str, ref: str, sha: str, pipeline_id: int, created: str,
        started: str | None, finished: str | None, tag: bool = False,
    ) -> None:
        """A CI job as ``GET /projects/:id/jobs`` lists it."""
        self.jobs.append(
            {
                "id": job_id,
                "name": name,
                "stage": "deploy" if "deploy" in name else "test",
                "status": status,
                "ref": ref,
                "tag": tag,
                "coverage": None,
                "allow_failure": False,
                "created_at": created,
                "started_at": started,
                "finished_at": finished,
                "duration": None,
                "queued_duration": 1.0,
                "user": self.user("deployer"),
                "commit": {"id": sha, "short_id": sha[:8], "title": "deploy", "created_at": created},
                "pipeline": {"id": pipeline_id, "project_id": PROJECT_ID, "ref": ref, "sha": sha,
                             "status": status},
                "web_url": f"{self.web}/-/jobs/{job_id}",
                "artifacts": [],
                "runner": None,
            }
        )

    def _serve(self, request: Request) -> Response:
        raw_path = request.environ.get("RAW_URI", request.path).split("?")[0]
        if self.token is not None and request.headers.get("PRIVATE-TOKEN") != self.token:
            return self._json({"message": "401 Unauthorized"}, 401)
        encoded = self.path.replace("/", "%2F")
        m = re.fullmatch(
            rf"/api/v4/projects/(?:{PROJECT_ID}|{re.escape(encoded)}|{re.escape(self.path)})(/.*)?", raw_path
        ) or re.fullmatch(rf"/api/v4/projects/(?:{PROJECT_ID}|{re.escape(self.path)})(/.*)?", request.path)
        if not m:
            return self._json({"message": "404 Project Not Found"}, 404)
        rest = m.group(1) or ""
        since_text = request.args.get("updated_after")
        since = _instant(since_text) if since_text else None
        if rest == "":
            group, name = self.path.rsplit("/", 1)
            return self._json(
                {
                    "id": PROJECT_ID,
                    "description": None,
                    "name": name,
                    "path": name,
                    "name_with_namespace": f"{group} / {name}",
                    "path_with_namespace": self.path,
                    "default_branch": "main",
                    "web_url": self.web,
                    "created_at": "2025-01-01T00:00:00.000Z",
                    "namespace": {"id": 3, "name": group, "path": group, "kind": "group", "full_path": group},
                },
                200,
            )
        if rest == "/merge_requests":
            items = [i for i in self.mrs if since is None or _instant(i["updated_at"]) >= since]
            return self._page(request, sorted(items, key=lambda i: i["updated_at"], reverse=True))
        mm = re.fullmatch(r"/merge_requests/(\d+)/(commits|notes)", rest)
        if mm:
            store = self.mr_commits if mm.group(2) == "commits" else self.mr_notes
            return self._page(request, store.get(int(mm.group(1)), []))
        if rest == "/deployments":
            items = [i for i in self.deployments if since is None or _instant(i["updated_at"]) >= since]
            return self._page(request, sorted(items, key=lambda i: i["updated_at"], reverse=True))
        if rest == "/issues":
            items = [i for i in self.issues if since is None or _instant(i["updated_at"]) >= since]
            return self._page(request, sorted(items, key=lambda i: i["updated_at"], reverse=True))
        if rest == "/jobs":
            scopes = request.args.getlist("scope[]") or request.args.getlist("scope")
            items = [j for j in self.jobs if not scopes or j["status"] in scopes]
            return self._page(request, sorted(items, key=lambda j: j["id"], reverse=True))
        return self._json({"message": "404 Not found"}, 404)

    def _page(self, request: Request, items: list[dict[str, Any]]) -> Response:
        """``Link`` plus the ``X-Page``/``X-Total`` family, as GitLab sends them."""
        cut = self._slice(request, items)
        page, last, args = cut.number, cut.last, cut.args
        url = f"{self.base}{request.path}"
        links = [
            f'<{url}?{urlencode({**args, "page": 1})}>; rel="first"',
            f'<{url}?{urlencode({**args, "page": last})}>; rel="last"',
        ]
        if page < last:
            links.insert(0, f'<{url}?{urlencode({**args, "page": page + 1})}>; rel="next"')
        headers = {
            "Link": ", ".join(links),
            "X-Page": str(page),
            "X-Per-Page": str(PAGE),
            "X-Next-Page": str(page + 1) if page < last else "",
            "X-Prev-Page": str(page - 1) if page > 1 else "",
            "X-Total": str(len(items)),
            "X-Total-Pages": str(last),
        }
        return self._json(cut.items, 200, headers)
