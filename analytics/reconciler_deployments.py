"""Deployments derived from stored reconciler events.

Rules (docs/metrics.md, "Deployments from reconcilers"):

* a new deployment is when a new desired state (revision, or Helm release version) becomes the
  applied, successful state of one reconciler object; its time is the earliest success observation
  of that state (history deployedAt / lastDeployed / firstReconciled, or the sync's finishedAt);
* a success observation of the state already running is a re-sync: kept as an event, no deployment;
* a failed sync or upgrade is a failed deployment attempt; repeats of the same failing revision
  (controller retries, the same failure seen as an Event and in the status) count once;
* a rollback (reason, Helm action, or a revision that was deployed before but is not the running
  one) is a deployment with ``is_rollback`` and ``rollback_target``.

Derivation always starts from every stored event of the affected objects, so whatever order
dumps, cluster lists and notifications arrive in, the result is the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from analytics.collectors.reconciler_rows import EVENT_COLUMNS, OBJECT_COLUMNS, Collected
from analytics.config import Config
from analytics.store.connection import WriteSession

ObjectKey = tuple[str, str, str, str]  # reconciler, kind, namespace, name


@dataclass
class DeriveSummary:
    events: int = 0
    objects: int = 0
    deployments: int = 0
    failed: int = 0
    rollbacks: int = 0
    changes: int = 0
    unknown_revisions: int = 0
    skipped: int = 0

    def line(self) -> str:
        parts = [
            f"{self.events} reconciler events",
            f"{self.deployments} deployments ({self.failed} failed, {self.rollbacks} rollbacks)",
            f"{self.changes} linked changes",
        ]
        if self.unknown_revisions:
            parts.append(f"{self.unknown_revisions} revisions in an unknown format kept verbatim")
        if self.skipped:
            parts.append(f"{self.skipped} observations without a time skipped")
        return ", ".join(parts)


def _first(cursor: Any) -> Any:
    """The first row, fetching the rest so the connection is free for the next statement."""
    rows = cursor.fetchall()
    return rows[0] if rows else None


def store_collected(
    session: WriteSession, config: Config, collected: Collected, *, link: bool = True
) -> DeriveSummary:
    """Upsert events and objects, then re-derive deployments of every object touched."""
    summary = DeriveSummary(unknown_revisions=len(collected.unknown_revisions), skipped=collected.skipped)
    full = [o for o in collected.objects.values() if not o.get("_from_event")]
    partial = [o for o in collected.objects.values() if o.get("_from_event")]
    for obj in full:
        obj["repository"] = obj.get("repository") or config_repo_for(session, config, obj["service"])
    if full:
        session.upsert("reconciler_objects", full, columns=OBJECT_COLUMNS)
    for obj in partial:
        obj["repository"] = config_repo_for(session, config, obj["service"])
        session.con.execute(
            "INSERT OR IGNORE INTO reconciler_objects VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [obj[c] for c in OBJECT_COLUMNS],
        )
    # Keep the first-seen row of an event: INSERT OR IGNORE, so a later re-collection never moves
    # an event's deployment link or time.
    unique = {e["id"]: e for e in collected.events}
    if unique:
        import pandas as pd

        frame = pd.DataFrame.from_records(list(unique.values()), columns=EVENT_COLUMNS)
        session.con.register("_new_events", frame)
        try:
            cols = ", ".join(f'"{c}"' for c in EVENT_COLUMNS)
            before = _count(session, "reconciler_events")
            session.con.execute(
                f"INSERT OR IGNORE INTO reconciler_events ({cols}) SELECT {cols} FROM _new_events"
            ).fetchall()
            summary.events = _count(session, "reconciler_events") - before
        finally:
            session.con.unregister("_new_events")
    for raw in sorted(set(collected.unknown_revisions)):
        session.warn("unknown_revision_format", raw[:200], collected.unknown_revisions.count(raw))
    summary.objects = len(collected.objects)
    touched = {k for k in collected.objects}
    new_ids = derive_deployments(session, config, touched, summary)
    if link and new_ids:
        from analytics.gitops_images import link_deployments

        summary.changes = link_deployments(session, config, new_ids)
    return summary


def _count(session: WriteSession, table: str) -> int:
    row = _first(session.con.execute(f"SELECT count(*) FROM {table}"))
    return int(row[0]) if row else 0


def config_repo_for(session: WriteSession, config: Config, service: str) -> str | None:
    svc = config.service(service)
    if svc is None or svc.gitops is None:
        return None
    return repo_id_for(session, svc.gitops.repository)


def repo_id_for(session: WriteSession, location: str) -> str:
    """The repositories.id of a path or URL from the config (the collected row when there is one)."""
    resolved = str(Path(location).expanduser().resolve()) if "://" not in location else location
    row = _first(
        session.con.execute(
            "SELECT id FROM repositories WHERE url = ? OR local_path = ? OR url = ? OR id = ? LIMIT 1",
            [location, resolved, resolved, location],
        )
    )
    if row:
        return str(row[0])
    name = location.rstrip("/").rsplit("/", 1)[-1]
    return name[:-4] if name.endswith(".git") else name


def _sync_mapping(session: WriteSession, keys: Iterable[ObjectKey]) -> None:
    """Events seen before their object (or only as events) take the object's configured mapping."""
    for reconciler, kind, namespace, name in keys:
        session.con.execute(
            """UPDATE reconciler_events e SET service = o.service, environment = o.environment
               FROM reconciler_objects o
               WHERE o.reconciler = e.reconciler AND o.kind = e.kind AND o.namespace = e.namespace
                 AND o.name = e.name AND e.reconciler = ? AND e.kind = ? AND e.namespace = ? AND e.name = ?
                 AND (e.service IS DISTINCT FROM o.service
                      OR e.environment IS DISTINCT FROM o.environment)""",
            [reconciler, kind, namespace, name],
        )


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def derive_deployments(
    session: WriteSession, config: Config, keys: set[ObjectKey], summary: DeriveSummary | None = None
) -> list[str]:
    """Rebuild the deployments of each object from all its stored events; returns their ids."""
    summary = summary if summary is not None else DeriveSummary()
    _sync_mapping(session, keys)
    all_ids: list[str] = []
    for key in sorted(keys):
        reconciler, kind, namespace, name = key
        obj = _first(
            session.con.execute(
                "SELECT service, environment, repository FROM reconciler_objects "
                "WHERE reconciler = ? AND kind = ? AND namespace = ? AND name = ?",
                list(key),
            )
        )
        events = session.con.execute(
            """SELECT id, event_type, status, revision, raw_revision, revision_format, started_at,
                      occurred_at,
                      state_key, service, environment
               FROM reconciler_events
               WHERE reconciler = ? AND kind = ? AND namespace = ? AND name = ?
                 AND event_type IN ('sync', 'sync_failed', 'rollback', 'rollback_failed')
                 AND status IN ('success', 'failed')
               ORDER BY occurred_at, id""",
            list(key),
        ).fetchall()
        rows, links = _walk(key, events, obj)
        source_ref = f"{kind}/{namespace}/{name}"
        old = {
            r[0]
            for r in session.con.execute(
                "SELECT id FROM deployments WHERE source = ? AND source_ref = ?", [reconciler, source_ref]
            ).fetchall()
        }
        new = {r["id"] for r in rows}
        for gone in sorted(old - new):
            session.con.execute("DELETE FROM deployment_changes WHERE deployment_id = ?", [gone])
            session.con.execute("DELETE FROM deployments WHERE id = ?", [gone])
        session.con.execute(
            "UPDATE reconciler_events SET deployment_id = NULL WHERE reconciler = ? AND kind = ? "
            "AND namespace = ? AND name = ? AND deployment_id IS NOT NULL",
            list(key),
        )
        if rows:
            session.upsert("deployments", rows)
            for event_id, deployment_id in links:
                session.con.execute(
                    "UPDATE reconciler_events SET deployment_id = ? WHERE id = ?", [deployment_id, event_id]
                )
        _ensure_dimensions(session, config, rows)
        summary.deployments += len(rows)
        summary.failed += sum(1 for r in rows if r["status"] == "failed")
        summary.rollbacks += sum(1 for r in rows if r["is_rollback"])
        all_ids.extend(r["id"] for r in rows)
    return all_ids


def _walk(
    key: ObjectKey, events: list[tuple[Any, ...]], obj: tuple[Any, ...] | None
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    reconciler, kind, namespace, name = key
    base = f"{reconciler}:{kind}/{namespace}/{name}"
    current: dict[str, Any] | None = None  # the running deployment
    last_failed: dict[str, Any] | None = None  # the latest failed attempt, for folding retries
    deployed_revisions: list[str] = []
    rows: list[dict[str, Any]] = []
    links: list[tuple[str, str]] = []
    for ev_id, ev_type, status, revision, raw, fmt, started, occurred, state_key, service, env in events:
        service = obj[0] if obj else service
        env = obj[1] if obj else env
        repository = obj[2] if obj else None
        state = state_key or None
        if status == "success":
            same = current is not None and (
                (state is not None and current["_state"] is not None and state == current["_state"])
                or ((state is None or current["_state"] is None) and revision == current["revision"])
            )
            if same and current is not None:
                links.append((ev_id, current["id"]))
                continue
            is_rollback = ev_type == "rollback" or (
                revision is not None
                and revision in deployed_revisions
                and (current is None or revision != current["revision"])
            )
            current = {
                "id": f"{base}:{(revision or '-')[:12]}@{_stamp(occurred)}",
                "service": service,
                "environment": env,
                "revision": revision,
                "repository": repository
                if fmt and fmt not in ("helm_chart", "oci", "digest", "none")
                else None,
                "started_at": started,
                "deployed_at": occurred,
                "status": "success",
                "source": reconciler,
                "source_ref": f"{kind}/{namespace}/{name}",
                "is_rollback": bool(is_rollback),
                "rollback_target": revision if is_rollback else None,
                "raw_revision": raw,
                "revision_format": fmt,
                "_state": state,
            }
            rows.append(current)
            links.append((ev_id, current["id"]))
            if revision is not None:
                deployed_revisions.append(revision)
            last_failed = None
        else:
            if last_failed is not None and last_failed["revision"] == revision:
                links.append((ev_id, last_failed["id"]))
                continue
            last_failed = {
                "id": f"{base}:{(revision or '-')[:12]}@{_stamp(occurred)}:failed",
                "service": service,
                "environment": env,
                "revision": revision,
                "repository": repository
                if fmt and fmt not in ("helm_chart", "oci", "digest", "none")
                else None,
                "started_at": started,
                "deployed_at": occurred,
                "status": "failed",
                "source": reconciler,
                "source_ref": f"{kind}/{namespace}/{name}",
                "is_rollback": ev_type == "rollback_failed",
                "rollback_target": revision if ev_type == "rollback_failed" else None,
                "raw_revision": raw,
                "revision_format": fmt,
                "_state": state,
            }
            rows.append(last_failed)
            links.append((ev_id, last_failed["id"]))
    for row in rows:
        row.pop("_state", None)
    return rows, links


def _ensure_dimensions(session: WriteSession, config: Config, rows: list[dict[str, Any]]) -> None:
    """Services and environments named by deployments exist (without overwriting a team)."""
    prod = set(config.production_environments())
    for service in sorted({r["service"] for r in rows}):
        svc = config.service(service)
        session.con.execute(
            "INSERT OR IGNORE INTO services VALUES (?, ?)", [service, svc.team if svc else None]
        )
    for env in sorted({r["environment"] for r in rows}):
        session.con.execute("INSERT OR IGNORE INTO environments VALUES (?, ?)", [env, env in prod])


def derive_pending(session: WriteSession, config: Config) -> DeriveSummary:
    """Webhook finalize: give event-only objects a mapping row, then re-derive every object that
    has deployment-relevant events not yet linked to a deployment."""
    from analytics.reconciler_mapping import ObjectRef, map_object

    missing = session.con.execute(
        """SELECT DISTINCT e.reconciler, e.kind, e.namespace, e.name FROM reconciler_events e
           WHERE NOT EXISTS (SELECT 1 FROM reconciler_objects o WHERE o.reconciler = e.reconciler
                             AND o.kind = e.kind AND o.namespace = e.namespace AND o.name = e.name)""",
    ).fetchall()
    for reconciler, kind, namespace, name in missing:
        mapped = map_object(
            ObjectRef(reconciler=reconciler, kind=kind, namespace=namespace or "", name=name), config
        )
        session.con.execute(
            "INSERT OR IGNORE INTO reconciler_objects VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, now())",
            [
                reconciler,
                kind,
                namespace or "",
                name,
                mapped.service,
                mapped.environment,
                mapped.mapped_by,
                config_repo_for(session, config, mapped.service),
                None,
            ],
        )
    pending = session.con.execute(
        """SELECT DISTINCT reconciler, kind, namespace, name FROM reconciler_events
           WHERE deployment_id IS NULL AND status IN ('success', 'failed')
             AND event_type IN ('sync', 'sync_failed', 'rollback', 'rollback_failed')""",
    ).fetchall()
    summary = DeriveSummary()
    keys = {(str(r[0]), str(r[1]), str(r[2] or ""), str(r[3])) for r in pending}
    if keys:
        ids = derive_deployments(session, config, keys, summary)
        if ids:
            from analytics.gitops_images import link_deployments

            summary.changes = link_deployments(session, config, ids)
    return summary
