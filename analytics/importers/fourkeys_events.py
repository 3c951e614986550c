"""Four Keys ``four_keys.events_raw`` exported from BigQuery as JSON lines (``examples/import/
fourkeys_events_raw.jsonl``), so a Four Keys history moves over without its webhooks.

Each row has ``event_type, id, metadata, time_created, signature, msg_id, source``; ``metadata`` is
the webhook payload as JSON text. What is read, by ``source`` (github, gitlab, and their ``*mock``
variants from Four Keys' data generator) and ``event_type``:

* ``push``: the payload's ``commits`` become commits (sha, author time from ``timestamp``, message,
  author). Push payloads carry no parents, so the parent of each commit is the commit before it in
  the list, and the first one's is the push's ``before`` (unless that is all zeros): a linear
  history, as a push of a branch is. A commit listed in several pushes keeps the parent from the
  push that listed it after another commit.
* ``deployment_status`` (GitHub) with state success/failure/error, ``deployment`` (GitLab) and
  ``pipeline`` (GitLab) with status success/failed: a deployment of the deployed sha at the
  event's ``time_created``; environment from the payload, else ``deployments.default_environment``
  (noted, and a ``default_environment`` data warning).
* ``issues`` (GitHub) and ``issue`` (GitLab) labelled ``Incident``: an incident per issue (id
  ``<repository>#<number>``), created at the earliest ``created_at`` and resolved at the latest
  ``closed_at`` of its events, root cause from a ``root cause: <sha>`` line, as Four Keys' own
  ``incidents.sql`` reads them.

Other events are counted and skipped. The repository (and service) is the payload's repository
name, else the source name. Deployments get their changes from the commit graph like any other.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from analytics.config import Config
from analytics.deployments.dimensions import register_named
from analytics.importers._fields import RowContext, timestamp
from analytics.importers.base import ImportSummary, ParsedFile
from analytics.store.connection import WriteSession
from analytics.store.upsert import merge_rows

KIND = "fourkeys_events_raw"
_COLUMNS = {"event_type", "id", "metadata", "time_created"}
_ZERO = re.compile(r"^0+$")
_HEX = re.compile(r"^[0-9a-fA-F]{7,64}$")
_ROOT_CAUSE = re.compile(r"root cause: ([0-9A-Za-z]*)")
_GITHUB_DEPLOY = {"success": "success", "failure": "failed", "error": "failed"}
_GITLAB_DEPLOY = {"success": "success", "failed": "failed"}


def detect(parsed: ParsedFile) -> bool:
    """Rows of events_raw: event_type, id, metadata and time_created in every record."""
    return bool(parsed.records) and all(set(r) >= _COLUMNS for r in parsed.records)


def _time(value: Any, what: str, where: RowContext, summary: ImportSummary) -> datetime | None:
    """ISO 8601, or BigQuery's ``2024-05-06 12:00:00 UTC`` / ``... +0200``; naive means UTC."""
    if isinstance(value, str):
        value = value.strip()
        if value.endswith(" UTC"):
            value = value[:-4] + "+00:00"
        m = re.match(r"^(.*\d) ([+-]\d{2})(\d{2})$", value)
        if m:
            value = f"{m.group(1)}{m.group(2)}:{m.group(3)}"
    stamp = timestamp({what: value}, what, where)
    if stamp is None:
        return None
    if not stamp.had_zone:
        summary.naive_timestamps += 1
    return stamp.value


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _sha(value: Any) -> str | None:
    text = str(value or "").strip()
    return text.lower() if _HEX.match(text) else None


def _repository(meta: Mapping[str, Any], source: str) -> str:
    for path in (("repository", "name"), ("project", "name"), ("repository", "full_name")):
        value = _get(meta, *path)
        if value:
            return str(value)
    return source


def _labels(meta: Mapping[str, Any]) -> list[str]:
    labels = (_get(meta, "issue", "labels") or _get(meta, "labels")
              or _get(meta, "object_attributes", "labels"))
    out = []
    for label in labels if isinstance(labels, list) else []:
        name = label.get("name") or label.get("title") if isinstance(label, Mapping) else label
        if name:
            out.append(str(name))
    return out


class _Loaded:
    def __init__(self) -> None:
        self.commits: dict[tuple[str, str], dict[str, Any]] = {}
        self.parent_rank: dict[tuple[str, str], int] = {}
        self.deployments: list[dict[str, Any]] = []
        self.incidents: dict[str, dict[str, Any]] = {}
        self.skipped: dict[str, int] = {}
        self.defaulted_env = 0


def load(session: WriteSession, parsed: ParsedFile, config: Config) -> ImportSummary:
    summary = ImportSummary(kind=KIND, path=parsed.path)
    default_env = (config.production_environments() or ["production"])[0]
    out = _Loaded()
    for record, line in zip(parsed.records, parsed.lines, strict=True):
        where = RowContext(parsed.path, line)
        meta = record.get("metadata")
        if isinstance(meta, str):
            try:
                meta = json.loads(meta)
            except (json.JSONDecodeError, RecursionError):
                raise where.error("'metadata' is not JSON text") from None
        if not isinstance(meta, Mapping):
            raise where.error("'metadata' is not a JSON object")
        source = str(record.get("source") or "").strip().lower()
        event = str(record.get("event_type") or "").strip().lower()
        provider = next((p for p in ("gitlab", "github") if source.startswith(p)), source)
        repo = _repository(meta, source or "events_raw")
        if event == "push":
            _push(meta, repo, where, summary, out)
        elif event in ("deployment_status", "deployment", "pipeline"):
            _deployment(record, meta, provider, event, repo, config.default_deployment_environment(), where,
                        summary, out)
        elif event in ("issues", "issue"):
            _issue(meta, provider, repo, default_env, where, summary, out)
        else:
            out.skipped[event or "(none)"] = out.skipped.get(event or "(none)", 0) + 1
    _write(session, config, out, summary)
    return summary


def _push(
    meta: Mapping[str, Any], repo: str, where: RowContext, summary: ImportSummary, out: _Loaded
) -> None:
    commits = meta.get("commits")
    if not isinstance(commits, list):
        raise where.error("a push event without a 'commits' list")
    before = _sha(meta.get("before"))
    previous = None if before is None or _ZERO.match(before) else before
    for position, commit in enumerate(commits):
        if not isinstance(commit, Mapping):
            raise where.error("an item of 'commits' is not an object")
        sha = _sha(commit.get("id"))
        if sha is None:
            raise where.error(f"commit id {commit.get('id')!r} is not a sha")
        authored = _time(commit.get("timestamp"), "timestamp", where, summary)
        if authored is None:
            raise where.error(f"commit {sha} has no timestamp")
        key = (repo, sha)
        rank = 2 if position > 0 else 1 if previous else 0
        message = str(commit.get("message") or "")
        author_field = commit.get("author")
        author: Mapping[str, Any] = author_field if isinstance(author_field, Mapping) else {}
        row = out.commits.get(key)
        if row is None:
            row = out.commits[key] = {
                "repo": repo, "sha": sha, "parents": [], "author_name": author.get("name"),
                "author_email": author.get("email"), "author_time": authored, "author_tz": "+0000",
                "committer_name": author.get("name"), "committer_email": author.get("email"),
                "committer_time": authored, "committer_tz": "+0000",
                "subject": message.splitlines()[0].strip() if message.strip() else None,
                "is_merge": False, "reverts_sha": _reverts(message),
            }
            out.parent_rank[key] = -1
        if previous and rank > out.parent_rank[key]:
            row["parents"] = [previous]
            out.parent_rank[key] = rank
        previous = sha


def _reverts(message: str) -> str | None:
    m = re.search(r"This reverts commit ([0-9a-fA-F]{7,40})", message)
    return m.group(1).lower() if m else None


def _deployment(
    record: Mapping[str, Any], meta: Mapping[str, Any], provider: str, event: str, repo: str,
    default_env: str, where: RowContext, summary: ImportSummary, out: _Loaded,
) -> None:
    if provider == "github" and event == "deployment_status":
        status = _GITHUB_DEPLOY.get(str(_get(meta, "deployment_status", "state") or "").lower())
        sha = _sha(_get(meta, "deployment", "sha"))
        environment = (_get(meta, "deployment", "environment")
                       or _get(meta, "deployment_status", "environment"))
    elif provider == "gitlab" and event == "pipeline":
        status = _GITLAB_DEPLOY.get(str(_get(meta, "object_attributes", "status") or "").lower())
        sha = _sha(_get(meta, "commit", "id") or _get(meta, "object_attributes", "sha"))
        environment = None
    elif provider == "gitlab" and event == "deployment":
        status = _GITLAB_DEPLOY.get(str(meta.get("status") or "").lower())
        sha = _sha(meta.get("sha") or str(meta.get("commit_url") or "").rsplit("/", 1)[-1])
        environment = meta.get("environment")
    else:
        status, sha, environment = None, None, None
    if status is None or sha is None:
        reason = f"{event} (no outcome or sha)"
        out.skipped[reason] = out.skipped.get(reason, 0) + 1
        return
    deployed = _time(record.get("time_created"), "time_created", where, summary)
    if deployed is None:
        raise where.error("missing value for 'time_created'")
    if not environment:
        environment = default_env
        out.defaulted_env += 1
    event_id = str(record.get("id") or "").strip()
    out.deployments.append({
        "id": f"fourkeys:{provider}:{event_id}", "service": repo, "environment": str(environment),
        "revision": sha, "repository": repo, "started_at": None, "deployed_at": deployed, "status": status,
        "source": "import", "source_ref": f"events_raw:{event_id}", "is_rollback": False,
        "rollback_target": None, "raw_revision": sha, "revision_format": "sha",
    })


def _issue(meta: Mapping[str, Any], provider: str, repo: str, default_env: str, where: RowContext,
           summary: ImportSummary, out: _Loaded) -> None:
    issue = meta.get("issue") if provider == "github" else meta.get("object_attributes")
    if not isinstance(issue, Mapping):
        out.skipped["issue (no issue object)"] = out.skipped.get("issue (no issue object)", 0) + 1
        return
    number = issue.get("number") if provider == "github" else issue.get("iid") or issue.get("id")
    if number is None:
        raise where.error("an issue event without a number")
    incident_id = f"{repo}#{number}"
    created = _time(issue.get("created_at"), "created_at", where, summary)
    closed = _time(issue.get("closed_at"), "closed_at", where, summary)
    body = str(issue.get("body") or issue.get("description") or "")
    cause = _ROOT_CAUSE.search(body)
    is_incident = any(label.lower() == "incident" for label in _labels(meta))
    row = out.incidents.get(incident_id)
    if row is None:
        row = out.incidents[incident_id] = {
            "id": incident_id, "service": repo, "environment": default_env, "created_at": created,
            "resolved_at": closed, "title": issue.get("title"), "root_cause": None, "source": "import",
            "source_ref": f"events_raw:{incident_id}", "url": issue.get("html_url") or issue.get("url"),
            "labels": _labels(meta), "_incident": is_incident,
        }
    else:
        if created is not None and (row["created_at"] is None or created < row["created_at"]):
            row["created_at"] = created
        if closed is not None and (row["resolved_at"] is None or closed > row["resolved_at"]):
            row["resolved_at"] = closed
        row["_incident"] = row["_incident"] or is_incident
    if cause and cause.group(1):
        row["root_cause"] = cause.group(1)


def _write(session: WriteSession, config: Config, out: _Loaded, summary: ImportSummary) -> None:
    incidents = [{k: v for k, v in r.items() if k != "_incident"} for r in out.incidents.values()
                 if r["_incident"] and r["created_at"] is not None]
    repos = sorted({r["repo"] for r in out.commits.values()} | {d["repository"] for d in out.deployments})
    if repos:
        known = {r[0] for r in session.con.execute(
            "SELECT id FROM repositories WHERE id IN (SELECT unnest(?::VARCHAR[]))", [repos]).fetchall()}
        merge_rows(session.con, "repositories", ["id", "is_bare", "is_shallow"],
                   [[r, False, False] for r in repos if r not in known], on_match="ignore")
        session.forget_repositories()
    register_named(session, config,
                      [d["service"] for d in out.deployments] + [i["service"] for i in incidents],
                      [d["environment"] for d in out.deployments] + [i["environment"] for i in incidents])
    session.upsert("commits", list(out.commits.values()))
    session.upsert("deployments", out.deployments)
    session.upsert("incidents", incidents)
    summary.rows = len(out.commits) + len(out.deployments) + len(incidents)
    summary.notes.append(f"{len(out.commits)} commits, {len(out.deployments)} deployments, "
                         f"{len(incidents)} incidents")
    from analytics.importers.deployments import note_default_environment

    note_default_environment(session, summary, out.defaulted_env, config.default_deployment_environment())
    if out.skipped:
        summary.notes.append("skipped " + ", ".join(f"{n} {k}" for k, n in sorted(out.skipped.items())))
    scopes = sorted({(d["service"], d["environment"]) for d in out.deployments}) + [
        (str(s), str(e)) for s, e in session.con.execute(
            "SELECT DISTINCT service, environment FROM deployments"
            " WHERE repository IN (SELECT unnest(?::VARCHAR[]))",
            [sorted({r["repo"] for r in out.commits.values()})]).fetchall()]
    if scopes:
        from analytics.deployments.attribution import attribute_changes

        attribute_changes(session, scopes=sorted(set(scopes)))
