"""GitHub webhooks: push, pull_request, pull_request_review, deployment(_status), issues, release.

Payload fields follow GitHub's webhook documentation; every field except the few that identify an
object is optional, because test senders post minimal payloads.
"""

from __future__ import annotations

import hashlib
import hmac
import re
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

PATH = "/webhooks/github"
SECRET_ENV = "GITOPS_DORA_GITHUB_SECRET"
PROVIDER = "github"
# A large push body is parsed with each item of its ``commits`` cut down to these keys (server.py,
# pruned_json.py): every key _push reads of an item must be listed here. tests/
# test_receiver_memory_pruned.py compares the rows of both parses.
PRUNED_ARRAY = ("push", "commits", frozenset({"id", "sha", "timestamp", "author", "committer", "message"}))


def sign(body: bytes, secret: str, algorithm: str = "sha256") -> str:
    """The value GitHub puts in ``X-Hub-Signature-256`` (or ``X-Hub-Signature`` for sha1)."""
    digest = hmac.new(secret.encode(), body, getattr(hashlib, algorithm)).hexdigest()
    return f"{algorithm}={digest}"


_SIGNATURE_FORM = (("x-hub-signature-256", re.compile(r"^sha256=[0-9a-fA-F]{64}$")),
                   ("x-hub-signature", re.compile(r"^sha1=[0-9a-fA-F]{40}$")))


def precheck(headers: Mapping[str, str], secret: str) -> bool:
    """Before the body is read: a signature header of the right form is there (the HMAC itself
    needs the whole body, see ``verify``)."""
    for header, form in _SIGNATURE_FORM:
        given = headers.get(header)
        if given:
            return bool(form.match(given.strip()))
    return False


def verify(headers: Mapping[str, str], body: bytes, secret: str) -> bool:
    """sha256 when sent (preferred by GitHub), else the legacy sha1 header; constant-time."""
    for header, algorithm in (("x-hub-signature-256", "sha256"), ("x-hub-signature", "sha1")):
        given = headers.get(header)
        if given:
            return hmac.compare_digest(given.strip().encode(), sign(body, secret, algorithm).encode())
    return False


def delivery_id(headers: Mapping[str, str], body: bytes) -> str:
    given = (headers.get("x-github-delivery") or "").strip()
    return given or content_hash(body)


def event_name(headers: Mapping[str, str], payload: dict[str, Any]) -> str:
    return (headers.get("x-github-event") or "").strip().lower() or _guess_event(payload)


def _guess_event(payload: dict[str, Any]) -> str:
    """Senders that forget the event header: infer from the payload's top-level objects."""
    for key in ("deployment_status", "pull_request", "review", "release", "issue", "deployment"):
        if isinstance(payload.get(key), dict):
            if key == "review":
                return "pull_request_review"
            return "issues" if key == "issue" else key
    if "commits" in payload or "after" in payload:
        return "push"
    return "unknown"


def _login(user: Any) -> str | None:
    user = as_dict(user)
    return user.get("login") or user.get("name") or user.get("username")


def _labels(value: Any) -> list[str]:
    out = []
    for label in value if isinstance(value, list) else []:
        name = label.get("name") if isinstance(label, dict) else label
        if isinstance(name, str):
            out.append(name)
    return out


def _repo(payload: dict[str, Any], config: Config) -> tuple[str, str]:
    """(repo id, full name); a payload without a repository goes under the configured default."""
    repository = as_dict(payload.get("repository"))
    full = repository.get("full_name")
    if not full and repository.get("name"):
        owner = _login(repository.get("owner"))
        full = f"{owner}/{repository['name']}" if owner else repository["name"]
    if not full:
        full = config.webhooks.default_repository
    return repo_id(str(full), config), str(full)


def to_rows(headers: Mapping[str, str], payload: dict[str, Any], config: Config) -> Rows:
    handler = _HANDLERS.get(event_name(headers, payload))
    return handler(payload, config) if handler else {}


def _push(payload: dict[str, Any], config: Config) -> Rows:
    repo, _ = _repo(payload, config)
    before = payload.get("before") or None
    parent = None if before in (None, ZERO_SHA) else str(before)
    commits: list[dict[str, Any]] = []
    for raw in payload.get("commits") or []:
        if not isinstance(raw, dict) or not (raw.get("id") or raw.get("sha")):
            continue
        sha = str(raw.get("id") or raw.get("sha"))
        when = read_time(raw.get("timestamp"), "commits[].timestamp")
        author = as_dict(raw.get("author"))
        committer = as_dict(raw.get("committer")) or author
        message = str(raw.get("message") or "")
        commits.append(commit_row(repo, sha, parent, author, committer, when, message))
        parent = sha
    pushed_at = read_time(as_dict(payload.get("head_commit")).get("timestamp"), "head_commit.timestamp")
    known = [c["author_time"] for c in commits if c["author_time"] is not None]
    fallback = max(known) if known else read_time(
        as_dict(payload.get("repository")).get("pushed_at"), "repository.pushed_at"
    )
    for commit in commits:  # a commit without a timestamp takes the push's time
        if commit["author_time"] is None:
            commit["author_time"] = commit["committer_time"] = pushed_at or fallback
    commits = [c for c in commits if c["author_time"] is not None]
    after = payload.get("after") or (commits[-1]["sha"] if commits else None)
    rows: Rows = {"commits": commits}
    if after and after != ZERO_SHA:
        rows["webhook_pushes"] = [{
            "repo": repo, "ref": str(payload.get("ref") or ""), "before_sha": before,
            "after_sha": str(after), "pushed_at": pushed_at or fallback,
            "commit_shas": [c["sha"] for c in commits],
        }]
    return rows


def _pull_request(payload: dict[str, Any], config: Config) -> Rows:
    pr = as_dict(payload.get("pull_request"))
    number = pr.get("number") or payload.get("number")
    if number is None:
        return {}
    repo, _ = _repo(payload, config)
    return {"webhook_pull_requests": [{
        "repo": repo, "number": int(number), "provider": PROVIDER, "title": pr.get("title"),
        "author": _login(pr.get("user")),
        "state": "merged" if pr.get("merged_at") or pr.get("merged") else pr.get("state"),
        "created_at": read_time(pr.get("created_at"), "pull_request.created_at"),
        "merged_at": read_time(pr.get("merged_at"), "pull_request.merged_at"),
        "closed_at": read_time(pr.get("closed_at"), "pull_request.closed_at"),
        "merge_commit_sha": pr.get("merge_commit_sha"),
        "base_ref": as_dict(pr.get("base")).get("ref"), "head_ref": as_dict(pr.get("head")).get("ref"),
        "labels": _labels(pr.get("labels")), "url": pr.get("html_url"),
        "updated_at": read_time(pr.get("updated_at"), "pull_request.updated_at"),
    }]}


def _review(payload: dict[str, Any], config: Config) -> Rows:
    review, pr = as_dict(payload.get("review")), as_dict(payload.get("pull_request"))
    number = pr.get("number") or payload.get("number")
    submitted = read_time(review.get("submitted_at"), "review.submitted_at")
    if number is None or submitted is None:
        return {}
    repo, _ = _repo(payload, config)
    rows = _pull_request(payload, config) if pr.get("created_at") else {}
    rows["pr_reviews"] = [{
        "repo": repo, "number": int(number), "review_id": str(review.get("id") or submitted.isoformat()),
        "author": _login(review.get("user")), "state": review.get("state"), "submitted_at": submitted,
    }]
    return rows


def _deployment_status(payload: dict[str, Any], config: Config) -> Rows:
    status, deployment = as_dict(payload.get("deployment_status")), as_dict(payload.get("deployment"))
    state = str(status.get("state") or "").lower()
    if state not in ("success", "failure", "error"):
        return {}  # pending / queued / in_progress / inactive are not outcomes
    sha = deployment.get("sha") or status.get("sha")
    when = read_time(status.get("created_at"), "deployment_status.created_at") or read_time(
        status.get("updated_at"), "deployment_status.updated_at"
    )
    if not sha or when is None:
        return {}
    repo, full = _repo(payload, config)
    key = deployment.get("id") or f"status-{status.get('id') or sha}"
    environment = (
        status.get("environment") or deployment.get("environment") or config.webhooks.default_environment
    )
    return {"deployments": [{
        "id": f"github:{full}:{key}", "service": service_for(repo, full, config),
        "environment": str(environment), "revision": str(sha), "repository": repo,
        "started_at": read_time(deployment.get("created_at"), "deployment.created_at"), "deployed_at": when,
        "status": "success" if state == "success" else "failed", "source": "webhook",
        "source_ref": str(key), "is_rollback": False, "rollback_target": None,
        "raw_revision": str(sha), "revision_format": "sha",
    }]}


def _issue(payload: dict[str, Any], config: Config) -> Rows:
    issue = as_dict(payload.get("issue"))
    labels = _labels(issue.get("labels"))
    created = read_time(issue.get("created_at"), "issue.created_at")
    if issue.get("number") is None or created is None or "pull_request" in issue:
        return {}
    if not is_incident(labels, incident_labels(config, PROVIDER)):
        return {}
    repo, full = _repo(payload, config)
    return {"incidents": [{
        "id": f"github:{full}#{issue['number']}", "service": service_for(repo, full, config),
        "environment": config.webhooks.default_environment, "created_at": created,
        "resolved_at": read_time(issue.get("closed_at"), "issue.closed_at") if issue.get("state") == "closed"
        else None,
        "title": issue.get("title"), "root_cause": root_cause(issue.get("body")), "source": "webhook",
        "source_ref": str(issue["number"]), "url": issue.get("html_url"), "labels": labels,
    }]}


def _release(payload: dict[str, Any], config: Config) -> Rows:
    release = as_dict(payload.get("release"))
    if not release.get("tag_name"):
        return {}
    repo, _ = _repo(payload, config)
    return {"releases": [{
        "repo": repo, "provider": PROVIDER, "tag_name": release["tag_name"], "name": release.get("name"),
        "target": release.get("target_commitish"),
        "created_at": read_time(release.get("created_at"), "release.created_at"),
        "published_at": read_time(release.get("published_at"), "release.published_at"),
        "is_prerelease": bool(release.get("prerelease")), "is_draft": bool(release.get("draft")),
        "url": release.get("html_url"),
    }]}


_HANDLERS = {
    "push": _push,
    "pull_request": _pull_request,
    "pull_request_review": _review,
    "deployment_status": _deployment_status,
    "issues": _issue,
    "release": _release,
}
# "deployment" (created, no outcome yet) and "ping" are stored as deliveries and give no rows.

