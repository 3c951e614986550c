"""GitLab webhooks: push, merge_request, deployment, pipeline and issue (object_kind) events.

GitLab authenticates with a shared token in ``X-Gitlab-Token`` (no HMAC). Timestamps come both as
ISO-8601 and as ``2021-04-28 21:50:00 +0200`` / ``... UTC``; ``read_time`` reads all of them.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from analytics.collectors.codehost_mapping import (
    incident_labels,
    is_incident,
    repo_id,
    root_cause,
    service_for,
)
from analytics.config import Config
from analytics.timestamps import read_time
from analytics.webhooks.providers import content_hash
from analytics.webhooks.providers._codehost import FINALIZE_AFTER as FINALIZE_AFTER
from analytics.webhooks.providers._codehost import ZERO_SHA, Rows, as_dict, commit_row
from analytics.webhooks.providers._codehost import finalize as finalize

PATH = "/webhooks/gitlab"
SECRET_ENV = "GITOPS_DORA_GITLAB_TOKEN"
PROVIDER = "gitlab"
# A large push body is parsed with each item of its ``commits`` cut down to these keys (server.py,
# pruned_json.py): every key _push reads of an item must be listed here. tests/
# test_receiver_memory_pruned.py compares the rows of both parses.
PRUNED_ARRAY = ("push", "commits", frozenset({"id", "timestamp", "author", "message"}))


def verify(headers: Mapping[str, str], body: bytes, secret: str) -> bool:
    given = headers.get("x-gitlab-token")
    return bool(given) and hmac.compare_digest(str(given).encode(), secret.encode())


def precheck(headers: Mapping[str, str], secret: str) -> bool:
    """The token is a header: verified completely before the body is read."""
    return verify(headers, b"", secret)


def delivery_id(headers: Mapping[str, str], body: bytes) -> str:
    """GitLab repeats ``Idempotency-Key`` on retries; older versions only send the event UUID."""
    for header in ("idempotency-key", "x-gitlab-event-uuid"):
        given = (headers.get(header) or "").strip()
        if given:
            return given
    return content_hash(body)


def event_name(headers: Mapping[str, str], payload: dict[str, Any]) -> str:
    kind = payload.get("object_kind") or payload.get("event_name") or payload.get("event_type")
    if kind:
        return str(kind).lower()
    header = (headers.get("x-gitlab-event") or "").lower()  # e.g. "Merge Request Hook"
    return header.removesuffix(" hook").replace(" ", "_") or "unknown"


def _labels(*sources: Any) -> list[str]:
    out: list[str] = []
    for source in sources:
        for label in source if isinstance(source, list) else []:
            name = label.get("title") or label.get("name") if isinstance(label, dict) else label
            if isinstance(name, str) and name not in out:
                out.append(name)
    return out


def _repo(payload: dict[str, Any], config: Config) -> tuple[str, str]:
    project = as_dict(payload.get("project"))
    full = project.get("path_with_namespace") or as_dict(payload.get("repository")).get("path_with_namespace")
    if not full and project.get("name"):
        full = project.get("name")
    full = str(full or config.webhooks.default_repository)
    return repo_id(full, config), full


def to_rows(headers: Mapping[str, str], payload: dict[str, Any], config: Config) -> Rows:
    handler = _HANDLERS.get(event_name(headers, payload))
    return handler(payload, config) if handler else {}


def _push(payload: dict[str, Any], config: Config) -> Rows:
    repo, _ = _repo(payload, config)
    before = payload.get("before") or None
    parent = None if before in (None, ZERO_SHA) else str(before)
    commits: list[dict[str, Any]] = []
    for raw in payload.get("commits") or []:
        if not isinstance(raw, dict) or not raw.get("id"):
            continue
        when = read_time(raw.get("timestamp"), "commits[].timestamp")
        if when is None:
            continue
        author, message = as_dict(raw.get("author")), str(raw.get("message") or "")
        commits.append(commit_row(repo, str(raw["id"]), parent, author, author, when, message))
        parent = str(raw["id"])
    after = payload.get("checkout_sha") or payload.get("after")
    rows: Rows = {"commits": commits}
    if after and after != ZERO_SHA:
        times = [c["author_time"] for c in commits]
        rows["webhook_pushes"] = [{
            "repo": repo, "ref": str(payload.get("ref") or ""), "before_sha": before, "after_sha": str(after),
            "pushed_at": max(times) if times else None, "commit_shas": [c["sha"] for c in commits],
        }]
    return rows


def _merge_request(payload: dict[str, Any], config: Config) -> Rows:
    mr = as_dict(payload.get("object_attributes"))
    if mr.get("iid") is None:
        return {}
    repo, _ = _repo(payload, config)
    state = mr.get("state")
    merged_at = read_time(mr.get("merged_at"), "object_attributes.merged_at")
    updated_at = read_time(mr.get("updated_at"), "object_attributes.updated_at")
    if merged_at is None and (state == "merged" or mr.get("action") == "merge"):
        merged_at = updated_at
    rows: Rows = {"webhook_pull_requests": [{
        "repo": repo, "number": int(mr["iid"]), "provider": PROVIDER, "title": mr.get("title"),
        "author": as_dict(payload.get("user")).get("username") if mr.get("action") == "open" else None,
        "state": state, "created_at": read_time(mr.get("created_at"), "object_attributes.created_at"),
        "merged_at": merged_at, "closed_at": read_time(mr.get("closed_at"), "object_attributes.closed_at"),
        "merge_commit_sha": mr.get("merge_commit_sha"),
        "base_ref": mr.get("target_branch"), "head_ref": mr.get("source_branch"),
        "labels": _labels(payload.get("labels"), mr.get("labels")), "url": mr.get("url"),
        "updated_at": updated_at,
    }]}
    if mr.get("action") in ("approved", "approval", "unapproved") and mr.get("updated_at"):
        user = as_dict(payload.get("user"))
        rows["pr_reviews"] = [{
            "repo": repo, "number": int(mr["iid"]),
            "review_id": f"{mr.get('action')}:{user.get('username')}:{mr.get('updated_at')}",
            "author": user.get("username"), "state": mr.get("action"),
            "submitted_at": updated_at,
        }]
    return rows


def _deployment(payload: dict[str, Any], config: Config) -> Rows:
    status = str(payload.get("status") or "").lower()
    if status not in ("success", "failed"):
        return {}  # created / running / canceled are not outcomes
    commit_url = str(payload.get("commit_url") or "")
    sha = commit_url.rstrip("/").rsplit("/", 1)[-1] if "/commit/" in commit_url else payload.get("short_sha")
    when = read_time(payload.get("status_changed_at"), "status_changed_at")
    if not sha or when is None:
        return {}
    repo, full = _repo(payload, config)
    key = payload.get("deployment_id") or payload.get("deployable_id") or sha
    return {"deployments": [{
        "id": f"gitlab:{full}:{key}", "service": service_for(repo, full, config),
        "environment": str(payload.get("environment") or config.webhooks.default_environment),
        "revision": str(sha), "repository": repo, "started_at": None, "deployed_at": when,
        "status": status, "source": "webhook", "source_ref": str(key), "is_rollback": False,
        "rollback_target": None, "raw_revision": str(sha), "revision_format": "sha",
    }]}


def _issue(payload: dict[str, Any], config: Config) -> Rows:
    issue = as_dict(payload.get("object_attributes"))
    created = read_time(issue.get("created_at"), "object_attributes.created_at")
    if issue.get("iid") is None or created is None:
        return {}
    labels = _labels(payload.get("labels"), issue.get("labels"))
    kind = str(issue.get("issue_type") or issue.get("type") or "").lower()
    if kind != "incident" and not is_incident(labels, incident_labels(config, PROVIDER)):
        return {}
    repo, full = _repo(payload, config)
    closed = issue.get("state") == "closed"
    return {"incidents": [{
        "id": f"gitlab:{full}#{issue['iid']}", "service": service_for(repo, full, config),
        "environment": config.webhooks.default_environment, "created_at": created,
        "resolved_at": (read_time(issue.get("closed_at"), "object_attributes.closed_at")
                        or read_time(issue.get("updated_at"), "object_attributes.updated_at"))
        if closed else None,
        "title": issue.get("title"), "root_cause": root_cause(issue.get("description")),
        "source": "webhook", "source_ref": str(issue["iid"]), "url": issue.get("url"), "labels": labels,
    }]}


_HANDLERS = {
    "push": _push,
    "merge_request": _merge_request,
    "deployment": _deployment,
    "issue": _issue,
    "work_item": _issue,
}
# "pipeline" deliveries are stored for audit; deployments come from deployment events.

