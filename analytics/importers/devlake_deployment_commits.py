"""Apache DevLake's ``cicd_deployment_commits`` domain table exported as CSV (or JSON), so a DevLake
user's deployment history moves over (example in docs/metrics.md, "DevLake tables").

One DevLake row is one repository's commit in one deployment. Rows with the same
``cicd_deployment_id`` (older exports: ``cicd_pipeline_id``; else the row's ``id``) and environment
are **one deployment**, as DevLake groups them: a pipeline deploying three repositories is one
deployment that ships each repository's commits since its own previous deployment (the
``repository=revision`` pairs of ``deployment_revisions``).

* Time: the latest ``finished_date`` of the rows, else ``started_date`` + ``duration_sec``, else
  ``created_date``; ``started_at`` is the earliest ``started_date``.
* Status: ``result`` SUCCESS is a success, FAILURE/FAILED/ERROR a failed attempt (a deployment with
  any failed row failed: part of it did not ship); other results (ABORT, SKIPPED...) are skipped and
  counted.
* Environment: ``environment`` lower-cased (PRODUCTION -> production); empty means
  ``deployments.default_environment`` (noted, and a data warning).
* Service: the DevLake project whose ``project_mapping`` holds the row's ``cicd_scope_id`` (else its
  ``repo_id``), imported before or after this file; else the repository.
* Repository: the stored repository whose id is the row's ``repo_id``, or the last path part of
  ``repo_url`` (``.git`` dropped), or whose URL is ``repo_url``; else that last path part. The
  commit graph comes from ``collect git`` or the ``commits`` import kind.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from analytics.config import Config
from analytics.importers._devlake import apply_mapping, devlake_time, store_scopes
from analytics.importers._fields import RowContext, columns_present, normalise_keys, text
from analytics.importers.base import ImportSummary, ParsedFile
from analytics.importers.deployments import (
    note_default_environment,
    replace_revisions,
    revision_rows,
)
from analytics.store.connection import WriteSession

KIND = "devlake_deployment_commits"
_SUCCESS = {"SUCCESS"}
_FAILED = {"FAILURE", "FAILED", "ERROR"}
_GROUP_KEYS = ("cicd_deployment_id", "cicd_pipeline_id")


def detect(parsed: ParsedFile) -> bool:
    """commit_sha and result, a CI/CD id, and a DevLake date column."""
    keys = columns_present(parsed.records)
    return (bool(parsed.records) and {"commit_sha", "result"} <= keys
            and bool(keys & {"cicd_deployment_id", "cicd_pipeline_id", "cicd_scope_id"})
            and bool(keys & {"finished_date", "started_date", "created_date"}))


def _repository(session: WriteSession, repo_id: str | None, repo_url: str | None) -> str | None:
    """The stored repository a DevLake row names (see the module docstring)."""
    base = None
    if repo_url:
        base = repo_url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git") or None
    candidates = [c for c in (repo_id, base) if c]
    if candidates or repo_url:
        hits = session.con.execute(
            "SELECT id, list_position($1::VARCHAR[], id) AS pos FROM repositories "
            "WHERE id IN (SELECT unnest($1::VARCHAR[])) OR ($2 IS NOT NULL AND url = $2) "
            "ORDER BY pos NULLS LAST, id LIMIT 1", [candidates, repo_url]).fetchall()
        if hits:
            return str(hits[0][0])
    return base or repo_id


class _Group:
    def __init__(self, key: str, environment: str | None, line: int) -> None:
        self.key, self.environment, self.line = key, environment, line
        self.pairs: dict[str, tuple[str, Any]] = {}      # repository -> (sha, finished)
        self.finished: list[Any] = []
        self.started: list[Any] = []
        self.failed = False
        self.scopes: set[tuple[str, str]] = set()


def load(session: WriteSession, parsed: ParsedFile, config: Config) -> ImportSummary:
    summary = ImportSummary(kind=KIND, path=parsed.path)
    default_env = config.default_deployment_environment()
    groups: dict[tuple[str, str | None], _Group] = {}
    skipped: dict[str, int] = {}
    repo_cache: dict[tuple[str | None, str | None], str | None] = {}
    for raw, line in zip(parsed.records, parsed.lines, strict=True):
        record = normalise_keys(raw)
        where = RowContext(parsed.path, line)
        result = (text(record, "result") or "").upper()
        if result not in _SUCCESS | _FAILED:
            skipped[result or "(no result)"] = skipped.get(result or "(no result)", 0) + 1
            continue
        sha = text(record, "commit_sha")
        if sha is None:
            raise where.error("missing value for 'commit_sha'")
        key = next((v for k in _GROUP_KEYS if (v := text(record, k)) is not None), None) or text(record, "id")
        if key is None:
            raise where.error("no cicd_deployment_id, cicd_pipeline_id or id to group the row by")
        env_text = text(record, "environment")
        environment = env_text.lower() if env_text else None
        stamps = {k: devlake_time(record, k, where)
                  for k in ("finished_date", "started_date", "created_date")}
        summary.naive_timestamps += sum(1 for s in stamps.values() if s is not None and not s.had_zone)
        started = stamps["started_date"].value if stamps["started_date"] else None
        finished = stamps["finished_date"].value if stamps["finished_date"] else None
        duration = text(record, "duration_sec")
        if finished is None and started is not None and duration is not None:
            try:
                finished = started + timedelta(seconds=float(duration))
            except (ValueError, OverflowError):
                raise where.error(f"'duration_sec' is not a number: {duration!r}") from None
        if finished is None:
            finished = stamps["created_date"].value if stamps["created_date"] else None
        if finished is None:
            raise where.error("no finished_date, started_date or created_date")
        group = groups.get((key, environment))
        if group is None:
            group = groups[(key, environment)] = _Group(key, environment, line)
        repo_id, repo_url = text(record, "repo_id"), text(record, "repo_url")
        if (repo_id, repo_url) not in repo_cache:
            repo_cache[(repo_id, repo_url)] = _repository(session, repo_id, repo_url)
        repository = repo_cache[(repo_id, repo_url)]
        if repository is None:
            raise where.error("no repo_id or repo_url")
        earlier = group.pairs.get(repository)
        if earlier is None or finished >= earlier[1]:
            group.pairs[repository] = (sha, finished)
        group.finished.append(finished)
        if started is not None:
            group.started.append(started)
        group.failed = group.failed or result in _FAILED
        if (scope := text(record, "cicd_scope_id")) is not None:
            group.scopes.add(("cicd_scopes", scope))
        if repo_id is not None:
            group.scopes.add(("repos", repo_id))

    split = {key for key, env in groups if sum(1 for k, _ in groups if k == key) > 1}
    rows: list[dict[str, Any]] = []
    pair_rows: list[dict[str, Any]] = []
    scope_rows: list[tuple[str, str, str, str, str | None]] = []
    defaulted = 0
    for (key, env), group in sorted(groups.items(), key=lambda kv: (kv[1].line, kv[0][0])):
        environment = env or default_env
        defaulted += env is None
        dep_id = f"devlake:{key}" + (f":{environment}" if key in split else "")
        repos = sorted(group.pairs)
        fallback = repos[0]
        shipped = revision_rows(session, dep_id, [(r, group.pairs[r][0]) for r in repos], summary)
        first = shipped[0]
        deployed = max(group.finished)
        started = min(group.started) if group.started else None
        rows.append({
            "id": dep_id, "service": fallback, "environment": environment, "revision": first["revision"],
            "repository": first["repository"],
            "started_at": started if started and started <= deployed else None,
            "deployed_at": deployed, "status": "failed" if group.failed else "success", "source": "devlake",
            "source_ref": key, "is_rollback": False, "rollback_target": None,
            "raw_revision": first["raw_revision"], "revision_format": first["revision_format"],
        })
        if len(shipped) > 1:
            pair_rows.extend(shipped)
        scope_rows.extend(("deployment", dep_id, table, scope, fallback)
                          for table, scope in sorted(group.scopes))

    ids = [r["id"] for r in rows]
    before = [(str(s), str(e)) for s, e in session.con.execute(
        "SELECT DISTINCT service, environment FROM deployments WHERE id IN (SELECT unnest(?::VARCHAR[]))",
        [ids]).fetchall()] if ids else []
    from analytics.deployments.dimensions import register_named

    register_named(session, config, [r["service"] for r in rows], [r["environment"] for r in rows])
    session.upsert("deployments", rows)
    replace_revisions(session, ids, pair_rows)
    store_scopes(session, scope_rows)
    _, _, moved_scopes = apply_mapping(session, config)
    summary.rows = len(rows)
    if pair_rows:
        several = len({r["deployment_id"] for r in pair_rows})
        summary.notes.append(f"{several} deployments of several repositories")
    note_default_environment(session, summary, defaulted, default_env)
    if skipped:
        summary.notes.append("skipped " + ", ".join(f"{n} {k} rows" for k, n in sorted(skipped.items())))
    if ids:
        from analytics.deployments.attribution import attribute_changes

        now = [(str(s), str(e)) for s, e in session.con.execute(
            "SELECT DISTINCT service, environment FROM deployments WHERE id IN (SELECT unnest(?::VARCHAR[]))",
            [ids]).fetchall()]
        attribute_changes(session, scopes=sorted(set(before) | set(now) | set(moved_scopes)))
    return summary
