"""Argo CD: Applications (``argoproj.io/v1alpha1``) and the application controller's Events.

``status.history`` holds only successful syncs (at most ``revisionHistoryLimit`` of them, default
10); failed syncs appear only in ``status.operationState`` and in core/v1 Events, so all three are
read. Every observation is kept as a reconciler event; deployments are derived afterwards.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Any

from analytics.config import Config
from analytics.deployments.reconciler_mapping import ObjectRef
from analytics.deployments.reconciler_rows import (
    FAILED,
    RUNNING,
    SUCCESS,
    Collected,
    EventBuilder,
    as_dict,
    as_list,
    involved_object,
    object_builder,
    require_name,
)
from analytics.deployments.revisions import parse_revision, parse_revisions
from analytics.timestamps import read_time

RECONCILER = "argocd"
CONTROLLER = "argocd-application-controller"
_COMPLETED = re.compile(
    r"^(?:Partial )?[Ss]ync operation to (?P<rev>.+?) (?P<result>succeeded|failed)(?::\s*(?P<msg>.*))?$",
    re.DOTALL,
)
_STARTED = re.compile(r"sync to '?(?P<rev>[^'\s]+)'?", re.IGNORECASE)
_HEALTH = re.compile(r"Updated health status:\s*(?P<old>\S+)\s*->\s*(?P<new>\S+)")
_SYNC_STATUS = re.compile(r"Updated sync status:\s*(?P<old>\S+)\s*->\s*(?P<new>\S+)")
_ROLLBACK = re.compile(r"rollback", re.IGNORECASE)


def _revision_of(entry: dict[str, Any]) -> Any:
    revisions = as_list(entry.get("revisions"))
    return revisions if revisions else entry.get("revision")


def is_application(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and obj.get("kind") == "Application"
        and str(obj.get("apiVersion", "")).startswith("argoproj.io/")
    )


def application_events(
    app: dict[str, Any], config: Config, source: str, collected: Collected | None = None
) -> Collected:
    """History entries, the current operation and health of one Application."""
    builder, status, history = object_builder(RECONCILER, app, "Application", config, source, collected)
    out = builder.collected
    started_of_history = set()
    for entry in history:
        raw = _revision_of(entry)
        parsed = parse_revisions(raw) if isinstance(raw, list) else parse_revision(raw)
        started_of_history.add((entry.get("deployStartedAt"), parsed.raw))
        builder.add(
            event_type="sync",
            status=SUCCESS,
            occurred_at=entry.get("deployedAt"),
            started_at=entry.get("deployStartedAt"),
            parsed=parsed,
            reason="SyncHistory",
            message=_initiator(entry.get("initiatedBy")),
            payload=entry,
            discriminator=f"history:{entry.get('id')}",
        )
    op = as_dict(status.get("operationState"))
    if op:
        _operation_event(builder, op, started_of_history)
    health = as_dict(status.get("health"))
    if health.get("status") and health.get("lastTransitionTime"):
        builder.add(
            event_type="health",
            status=str(health["status"]),
            occurred_at=health["lastTransitionTime"],
            revision=as_dict(status.get("sync")).get("revision"),
            reason="HealthStatus",
            message=health.get("message"),
            payload=health,
            discriminator=f"health:{health['status']}",
        )
    return out


def _initiator(initiated: Any) -> str | None:
    info = as_dict(initiated)
    if info.get("automated"):
        return "initiated by automated sync"
    if info.get("username"):
        return f"initiated by {info['username']}"
    return None


def _operation_event(builder: EventBuilder, op: dict[str, Any], history_keys: set[Any]) -> None:
    phase = str(op.get("phase") or "")
    result = as_dict(op.get("syncResult"))
    operation = as_dict(op.get("operation"))
    sync = as_dict(operation.get("sync"))
    raw = _revision_of(result) or _revision_of(sync)
    parsed = parse_revisions(raw) if isinstance(raw, list) else parse_revision(raw)
    message = op.get("message")
    payload = {k: v for k, v in op.items() if k != "syncResult"}
    payload["syncResult"] = {k: v for k, v in result.items() if k != "resources"}
    add = partial(
        builder.add,
        started_at=op.get("startedAt"),
        parsed=parsed,
        message=message,
        payload=payload,
        discriminator="operation",
    )
    if phase == "Succeeded":
        if (op.get("startedAt"), parsed.raw) in history_keys:
            return  # the same sync as the history entry whose deployStartedAt is this startedAt
        add(event_type="sync", status=SUCCESS, occurred_at=op.get("finishedAt"), reason="OperationSucceeded")
    elif phase in ("Failed", "Error"):
        add(
            event_type="sync_failed",
            status=FAILED,
            occurred_at=op.get("finishedAt") or op.get("startedAt"),
            reason=f"Operation{phase}",
        )
    elif phase in ("Running", "Terminating"):
        add(
            event_type="operation_started",
            status=RUNNING,
            occurred_at=op.get("startedAt"),
            reason=f"Operation{phase}",
        )


def is_argocd_event(event: dict[str, Any]) -> bool:
    involved = involved_object(event)
    component = as_dict(event.get("source")).get("component") or event.get("reportingComponent") or ""
    return involved.get("kind") == "Application" and (
        component in (CONTROLLER, "argocd-server")
        or str(involved.get("apiVersion", "")).startswith("argoproj.io")
    )


def event_time(event: dict[str, Any]) -> Any:
    series = as_dict(event.get("series"))
    return (
        series.get("lastObservedTime")
        or event.get("lastTimestamp")
        or event.get("eventTime")
        or event.get("firstTimestamp")
        or as_dict(event.get("metadata")).get("creationTimestamp")
    )


def event_discriminator(event: dict[str, Any]) -> str:
    """A core Event object is updated in place when it repeats; (uid, count) is one occurrence."""
    meta = as_dict(event.get("metadata"))
    return f"event:{meta.get('uid') or meta.get('name')}:{event.get('count') or 1}"


def core_event(
    event: dict[str, Any],
    config: Config,
    source: str,
    collected: Collected,
    known: dict[tuple[str, str, str], ObjectRef] | None = None,
) -> None:
    """One core/v1 Event from the application controller."""
    involved = involved_object(event)
    ref = (known or {}).get(
        ("Application", str(involved.get("namespace") or ""), str(involved.get("name") or ""))
    )
    if ref is None:
        ref = ObjectRef(
            reconciler=RECONCILER,
            kind="Application",
            namespace=str(involved.get("namespace") or ""),
            name=str(involved.get("name") or ""),
        )
    require_name(ref, "involvedObject.name")
    builder = EventBuilder(ref, config, source, collected)
    builder.mark_from_event()
    reason = str(event.get("reason") or "")
    message = str(event.get("message") or event.get("note") or "")
    when = event_time(event)
    disc = event_discriminator(event)
    payload = {
        k: event.get(k)
        for k in ("reason", "message", "type", "count", "firstTimestamp", "lastTimestamp", "involvedObject")
    }
    add_argocd_message(builder, reason, message, when, disc, payload)


def add_argocd_message(
    builder: EventBuilder, reason: str, message: str, when: Any, disc: str, payload: Any
) -> None:
    """Interpret the controller's reason and message (shared with notifications)."""
    add = partial(builder.add, occurred_at=when, message=message, payload=payload, discriminator=disc)
    if reason == "OperationCompleted" and (m := _COMPLETED.match(message.strip())):
        ok = m["result"] == "succeeded"
        rev = m["rev"].strip().strip("'\"")
        revs = rev.strip("[]").split() if rev.startswith("[") else None
        parsed = parse_revisions(revs) if revs else parse_revision(rev)
        kind = "rollback" if _ROLLBACK.search(message) else "sync"
        add(
            event_type=kind if ok else f"{kind}_failed",
            status=SUCCESS if ok else FAILED,
            parsed=parsed,
            reason=reason,
        )
        return
    if reason == "OperationStarted":
        m = _STARTED.search(message)
        add(event_type="operation_started", status=RUNNING, revision=m["rev"] if m else None, reason=reason)
        return
    if reason == "ResourceUpdated":
        for event_type, pattern in (("health", _HEALTH), ("sync_status", _SYNC_STATUS)):
            if m := pattern.search(message):
                add(event_type=event_type, status=m["new"], reason=reason)
                return
    add(event_type="reconcile", status=None, reason=reason or None)


# --- Argo CD notifications (the receiver and the JSON-lines importer read a body alike) ----------


def application_of(payload: dict[str, Any]) -> dict[str, Any]:
    """The Application in a notification: the body itself, or under ``application``/``app``."""
    for candidate in (payload, payload.get("application"), payload.get("app")):
        if (
            isinstance(candidate, dict)
            and isinstance(candidate.get("metadata"), dict)
            and candidate.get("kind", "Application") == "Application"
            and (isinstance(candidate.get("status"), dict) or isinstance(candidate.get("spec"), dict))
        ):
            app = dict(candidate)
            app.setdefault("apiVersion", "argoproj.io/v1alpha1")
            app.setdefault("kind", "Application")
            return app
    raise ValueError("not an Argo CD notification: no Application metadata in the body")


def notification_rows(payload: dict[str, Any], config: Config, source: str, collected: Collected) -> None:
    """Read one notification body into ``collected``, or raise ``ValueError`` saying why it is
    unusable: no Application, no name, a time that is unreadable or outside the years 1970-2100.
    Shared by the receiver (``/webhooks/argocd``: 422) and the JSON-lines importer (the line
    named, exit 2), so a body is refused by both or by neither."""
    app = application_of(payload)
    if not app["metadata"].get("name"):
        raise ValueError("Argo CD notification: metadata.name is required")
    check_times(app)
    before = len(collected.rejected)
    application_events(app, config, source, collected)
    if len(collected.rejected) > before:
        raise ValueError(collected.rejected[before].message)


def check_times(app: dict[str, Any]) -> None:
    """The times the Application's events are read from: one that is there but unreadable refuses
    the notification (422) instead of dropping its event. An empty string counts as absent here:
    the template in docs/reconcilers.md fills a missing ``operationState`` time with ``""``."""

    def check(value: Any, field: str) -> None:
        read_time(None if value == "" else value, field)

    status = as_dict(app.get("status"))
    history = status.get("history")
    for entry in history if isinstance(history, list) else []:
        if isinstance(entry, dict):
            check(entry.get("deployedAt"), "status.history[].deployedAt")
            check(entry.get("deployStartedAt"), "status.history[].deployStartedAt")
    operation = as_dict(status.get("operationState"))
    check(operation.get("startedAt"), "status.operationState.startedAt")
    check(operation.get("finishedAt"), "status.operationState.finishedAt")
    check(as_dict(status.get("health")).get("lastTransitionTime"), "status.health.lastTransitionTime")
