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

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from analytics.config import Config
from analytics.deployments.dimensions import register_named
from analytics.deployments.reconciler_rows import EVENT_COLUMNS, OBJECT_COLUMNS, Collected
from analytics.store.connection import WriteSession
from analytics.store.relations import rows_relation
from analytics.store.upsert import merge_sql, merge_values

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
    rejected: int = 0

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
        if self.rejected:
            parts.append(f"{self.rejected} observations with a time outside 1970-2100 or without a name "
                         "skipped (listed as reconciler_input_skipped on the Data health page)")
        return ", ".join(parts)


def _first(cursor: Any) -> Any:
    """The first row, fetching the rest so the connection is free for the next statement."""
    rows = cursor.fetchall()
    return rows[0] if rows else None


def store_collected(
    session: WriteSession, config: Config, collected: Collected, *, link: bool = True
) -> DeriveSummary:
    """Upsert events and objects, then re-derive deployments of every object touched.

    What the readers rejected (``collected.rejected``: a time outside 1970-2100, an object without
    a name) was never made into rows; here it is counted and recorded as ``reconciler_input_skipped``
    data warnings. Importers and webhook providers refuse such input before they get here, so only
    the cluster collector and watcher store around it: one bad history entry of a live object must
    not stop the collection of every other object."""
    summary = DeriveSummary(unknown_revisions=len(collected.unknown_revisions), skipped=collected.skipped,
                            rejected=len(collected.rejected))
    session.warn_many("reconciler_input_skipped", [r.message[:300] for r in collected.rejected])
    full = [o for o in collected.objects.values() if not o.get("_from_event")]
    partial = [o for o in collected.objects.values() if o.get("_from_event")]
    for obj in full:
        obj["repository"] = obj.get("repository") or config_repo_for(session, config, obj["service"])
    if full:
        session.upsert("reconciler_objects", full, columns=OBJECT_COLUMNS)
    for obj in partial:
        obj["repository"] = config_repo_for(session, config, obj["service"])
        merge_values(session.con, "reconciler_objects", {c: obj[c] for c in OBJECT_COLUMNS},
                     on_match="ignore")
    # Keep the first-seen row of an event (a MERGE that ignores matches), so a later re-collection never moves
    # an event's deployment link or time.
    unique = {e["id"]: e for e in collected.events}
    if unique:
        events = [tuple(e.get(c) for c in EVENT_COLUMNS) for e in unique.values()]
        with rows_relation(session.con, "_new_events", EVENT_COLUMNS, events) as new_events:
            cols = ", ".join(f'"{c}"' for c in EVENT_COLUMNS)
            # MERGE answers with the number of rows it inserted: no count before and after
            inserted = _first(session.con.execute(merge_sql(
                "reconciler_events", f"SELECT {cols} FROM {new_events}", EVENT_COLUMNS, on_match="ignore")))
            summary.events = int(inserted[0]) if inserted else 0
    for raw in sorted(set(collected.unknown_revisions)):
        session.warn("unknown_revision_format", raw[:200], collected.unknown_revisions.count(raw))
    summary.objects = len(collected.objects)
    touched = {k for k in collected.objects}
    new_ids = derive_deployments(session, config, touched, summary)
    if link and new_ids:
        from analytics.deployments.images import link_deployments

        summary.changes = link_deployments(session, config, new_ids)
    return summary


def config_repo_for(session: WriteSession, config: Config, service: str) -> str | None:
    svc = config.service(service)
    if svc is None or svc.gitops is None:
        return None
    return repo_id_for(session, svc.gitops.repository)


def repo_id_for(session: WriteSession, location: str) -> str:
    """The repositories.id of a path or URL from the config (the collected row when there is one)."""
    resolved = str(Path(location).expanduser().resolve()) if "://" not in location else location
    row = next((r for r in session.repositories()
                if r[1] == location or r[2] == resolved or r[1] == resolved or r[0] == location), None)
    if row:
        return str(row[0])
    name = location.rstrip("/").rsplit("/", 1)[-1]
    return name[:-4] if name.endswith(".git") else name


@contextmanager
def _keys_table(session: WriteSession, keys: Iterable[ObjectKey]) -> Iterator[str]:
    """The affected objects as a relation, so each step is one set-based statement."""
    with rows_relation(session.con, "_derive_keys", ["reconciler", "kind", "namespace", "name"],
                       sorted(keys)) as name:
        yield name


def _sync_mapping(session: WriteSession, keys_table: str) -> None:
    """Events seen before their object (or only as events) take the object's configured mapping."""
    session.con.execute(
        f"""UPDATE reconciler_events e SET service = o.service, environment = o.environment
            FROM reconciler_objects o, {keys_table} k
            WHERE o.reconciler = e.reconciler AND o.kind = e.kind AND o.namespace = e.namespace
              AND o.name = e.name AND k.reconciler = e.reconciler AND k.kind = e.kind
              AND k.namespace = e.namespace AND k.name = e.name
              AND (e.service IS DISTINCT FROM o.service OR e.environment IS DISTINCT FROM o.environment)"""
    ).fetchall()


# Events stored before the 1970-2100 rule held (0001-01-01, 9999-12-31) make no deployment: the
# next collection of their object drops the deployment they made, which broke metrics on every run.
_IN_YEARS = ("{col} >= TIMESTAMPTZ '1970-01-01 00:00:00+00' AND {col} < TIMESTAMPTZ '2101-01-01 00:00:00+00'")


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def derive_deployments(
    session: WriteSession, config: Config, keys: set[ObjectKey], summary: DeriveSummary | None = None
) -> list[str]:
    """Rebuild the deployments of each object from all its stored events; returns their ids."""
    summary = summary if summary is not None else DeriveSummary()
    if not keys:
        return []
    with _keys_table(session, keys) as kt:
        _sync_mapping(session, kt)
        objects = {
            (r[0], r[1], r[2], r[3]): (r[4], r[5], r[6])
            for r in session.con.execute(
                f"""SELECT o.reconciler, o.kind, o.namespace, o.name, o.service, o.environment, o.repository
                    FROM reconciler_objects o JOIN {kt} k USING (reconciler, kind, namespace, name)"""
            ).fetchall()
        }
        grouped: dict[ObjectKey, list[tuple[Any, ...]]] = {k: [] for k in keys}
        for row in session.con.execute(
            f"""SELECT e.reconciler, e.kind, e.namespace, e.name, e.id, e.event_type, e.status, e.revision,
                       e.raw_revision, e.revision_format, e.started_at, e.occurred_at, e.state_key,
                       e.service, e.environment
                FROM reconciler_events e JOIN {kt} k USING (reconciler, kind, namespace, name)
                WHERE e.event_type IN ('sync', 'sync_failed', 'rollback', 'rollback_failed')
                  AND e.status IN ('success', 'failed')
                  AND {_IN_YEARS.format(col="e.occurred_at")}
                  AND (e.started_at IS NULL OR {_IN_YEARS.format(col="e.started_at")})
                ORDER BY e.occurred_at, e.id"""
        ).fetchall():
            grouped[(row[0], row[1], row[2], row[3])].append(row[4:])
        rows: list[dict[str, Any]] = []
        links: list[tuple[str, str]] = []
        for key in sorted(keys):
            found, linked = _walk(key, grouped[key], objects.get(key))
            rows.extend(found)
            links.extend(linked)
        new = {r["id"] for r in rows}
        old = session.con.execute(
            f"""SELECT d.id FROM deployments d JOIN {kt} k
                ON d.source = k.reconciler AND d.source_ref = k.kind || '/' || k.namespace || '/' || k.name"""
        ).fetchall()
        gone = [(i,) for i in sorted({r[0] for r in old} - new)]
        if gone:
            with rows_relation(session.con, "_gone", ["id"], gone, as_objects=True) as gt:
                session.con.execute(
                    f"DELETE FROM deployment_changes WHERE deployment_id IN (SELECT id FROM {gt})"
                ).fetchall()
                session.con.execute(f"DELETE FROM deployments WHERE id IN (SELECT id FROM {gt})").fetchall()
        # Each event of these objects points at the deployment it made now, or at none: one
        # statement that rewrites only the events whose link changed.
        with rows_relation(session.con, "_links", ["event_id", "deployment_id"], links,
                           as_objects=True) as lt:
            session.con.execute(
                f"""UPDATE reconciler_events e SET deployment_id = s.deployment_id
                    FROM (SELECT ev.id, l.deployment_id
                          FROM reconciler_events ev JOIN {kt} k USING (reconciler, kind, namespace, name)
                          LEFT JOIN {lt} l ON l.event_id = ev.id
                          WHERE ev.deployment_id IS DISTINCT FROM l.deployment_id) s
                    WHERE e.id = s.id"""
            ).fetchall()
    if rows:
        session.upsert("deployments", rows)
    register_named(session, config, [r["service"] for r in rows], [r["environment"] for r in rows])
    summary.deployments += len(rows)
    summary.failed += sum(1 for r in rows if r["status"] == "failed")
    summary.rollbacks += sum(1 for r in rows if r["is_rollback"])
    return [r["id"] for r in rows]


def _deployment_row(
    key: ObjectKey,
    outcome: str,
    is_rollback: bool,
    *,
    revision: str | None,
    raw: Any,
    fmt: Any,
    started: Any,
    occurred: Any,
    service: Any,
    env: Any,
    repository: Any,
    state: Any,
) -> dict[str, Any]:
    """One event as a deployment row; a failed attempt's id is the success id plus ``:failed``."""
    reconciler, kind, namespace, name = key
    suffix = ":failed" if outcome == "failed" else ""
    return {
        "id": f"{reconciler}:{kind}/{namespace}/{name}:{(revision or '-')[:12]}@{_stamp(occurred)}{suffix}",
        "service": service,
        "environment": env,
        "revision": revision,
        "repository": repository if fmt and fmt not in ("helm_chart", "oci", "digest", "none") else None,
        "started_at": started,
        "deployed_at": occurred,
        "status": outcome,
        "source": reconciler,
        "source_ref": f"{kind}/{namespace}/{name}",
        "is_rollback": is_rollback,
        "rollback_target": revision if is_rollback else None,
        "raw_revision": raw,
        "revision_format": fmt,
        "_state": state,
    }


def _walk(
    key: ObjectKey, events: list[tuple[Any, ...]], obj: tuple[Any, ...] | None
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
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
        seen: dict[str, Any] = {
            "revision": revision,
            "raw": raw,
            "fmt": fmt,
            "started": started,
            "occurred": occurred,
            "service": service,
            "env": env,
            "repository": repository,
            "state": state,
        }
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
            current = _deployment_row(key, "success", bool(is_rollback), **seen)
            rows.append(current)
            links.append((ev_id, current["id"]))
            if revision is not None:
                deployed_revisions.append(revision)
            last_failed = None
        else:
            if last_failed is not None and last_failed["revision"] == revision:
                links.append((ev_id, last_failed["id"]))
                continue
            last_failed = _deployment_row(key, "failed", ev_type == "rollback_failed", **seen)
            rows.append(last_failed)
            links.append((ev_id, last_failed["id"]))
    for row in rows:
        row.pop("_state", None)
    return rows, links


def derive_pending(session: WriteSession, config: Config) -> DeriveSummary:
    """Webhook finalize: give event-only objects a mapping row, then re-derive every object that
    has deployment-relevant events not yet linked to a deployment."""
    from analytics.deployments.reconciler_mapping import ObjectRef, map_object

    missing = session.con.execute(
        """SELECT DISTINCT e.reconciler, e.kind, e.namespace, e.name FROM reconciler_events e
           WHERE NOT EXISTS (SELECT 1 FROM reconciler_objects o WHERE o.reconciler = e.reconciler
                             AND o.kind = e.kind AND o.namespace = e.namespace AND o.name = e.name)""",
    ).fetchall()
    for reconciler, kind, namespace, name in missing:
        mapped = map_object(
            ObjectRef(reconciler=reconciler, kind=kind, namespace=namespace or "", name=name), config
        )
        merge_values(
            session.con, "reconciler_objects",
            {"reconciler": reconciler, "kind": kind, "namespace": namespace or "", "name": name,
             "service": mapped.service, "environment": mapped.environment, "mapped_by": mapped.mapped_by,
             "repository": config_repo_for(session, config, mapped.service), "source_url": None},
            on_match="ignore", expressions={"last_seen": "now()"},
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
            from analytics.deployments.images import link_deployments

            summary.changes = link_deployments(session, config, ids)
    return summary
