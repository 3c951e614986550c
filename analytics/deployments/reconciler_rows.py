"""Row builders shared by the Argo CD and Flux collectors, importers and webhook providers.

Every observation becomes one ``reconciler_events`` row whose id is a hash of what makes it the
same observation (object, type, revision, time, source-specific discriminator), so the same sync
seen from a cluster list, a kubectl dump and a notification is stored once per form and re-runs
are idempotent.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from analytics.config import Config
from analytics.deployments.reconciler_mapping import Mapped, ObjectRef, map_object, object_ref
from analytics.deployments.revisions import Revision, parse_revision, revision_column
from analytics.timestamps import parse_time

SUCCESS, FAILED, RUNNING = "success", "failed", "running"
# Event types that take part in deriving deployments.
DEPLOY_TYPES = ("sync", "sync_failed", "rollback", "rollback_failed")


@dataclass
class Collected:
    """Rows produced from some reconciler input, plus counts for the summary line."""

    events: list[dict[str, Any]] = field(default_factory=list)
    objects: dict[tuple[str, str, str, str], dict[str, Any]] = field(default_factory=dict)
    unknown_revisions: list[str] = field(default_factory=list)
    skipped: int = 0

    def extend(self, other: Collected) -> None:
        self.events.extend(other.events)
        self.objects.update(other.objects)
        self.unknown_revisions.extend(other.unknown_revisions)
        self.skipped += other.skipped


def event_id(*parts: Any) -> str:
    text = "\x1f".join("" if p is None else str(p) for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def as_time(value: Any) -> datetime | None:
    return parse_time(value)


def as_dict(value: Any) -> dict[str, Any]:
    """Kubernetes objects arrive from users' dumps: a field of the wrong type counts as absent."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def involved_object(event: dict[str, Any]) -> dict[str, Any]:
    """The object a core Event is about (``involvedObject`` in core/v1, ``regarding`` in events/v1)."""
    return as_dict(event.get("involvedObject") or event.get("regarding"))


def _jsonable(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


class EventBuilder:
    """Builds rows for one object; remembers its mapping and object row."""

    def __init__(
        self, ref: ObjectRef, config: Config, source: str, collected: Collected, repository: str | None = None
    ) -> None:
        self.ref = ref
        self.mapped: Mapped = map_object(ref, config)
        self.source = source
        self.collected = collected
        self.identity: dict[str, str] = {  # IDENTITY_COLUMNS
            "reconciler": ref.reconciler,
            "kind": ref.kind,
            "namespace": ref.namespace,
            "name": ref.name,
            "service": self.mapped.service,
            "environment": self.mapped.environment,
        }
        collected.objects[ref.key] = {
            **self.identity,
            "mapped_by": self.mapped.mapped_by,
            "repository": repository,
            "source_url": ref.source_url,
            "last_seen": datetime.now(UTC),
        }

    def mark_from_event(self) -> None:
        """The object row was made from an Event alone, not from the object itself."""
        self.collected.objects[self.ref.key]["_from_event"] = True

    def add(
        self,
        *,
        event_type: str,
        occurred_at: Any,
        status: str | None,
        revision: Any = None,
        parsed: Revision | None = None,
        reason: str | None = None,
        message: str | None = None,
        started_at: Any = None,
        payload: Any = None,
        discriminator: Any = None,
        state_key: str | None = None,
    ) -> dict[str, Any] | None:
        """Append one event row; an observation without a usable time is counted and skipped."""
        when = as_time(occurred_at)
        if when is None:
            self.collected.skipped += 1
            return None
        rev = parsed if parsed is not None else parse_revision(revision)
        if rev.is_unknown:
            self.collected.unknown_revisions.append(rev.raw)
        column = revision_column(rev)
        ref = self.ref
        row = {
            "id": event_id(
                ref.reconciler,
                ref.kind,
                ref.namespace,
                ref.name,
                event_type,
                rev.raw,
                when.isoformat(),
                discriminator,
            ),
            **self.identity,
            "event_type": event_type,
            "reason": reason,
            "message": None if message is None else str(message)[:2000],
            "revision": column,
            "raw_revision": rev.raw or None,
            "revision_format": rev.format,
            "started_at": as_time(started_at),
            "occurred_at": when,
            "status": status,
            "source": self.source,
            "deployment_id": None,
            "payload": None if payload is None else _jsonable(payload),
            "state_key": state_key if state_key is not None else (rev.key or None),
        }
        self.collected.events.append(row)
        return row


def object_builder(
    reconciler: str, obj: dict[str, Any], kind: str, config: Config, source: str, collected: Collected | None
) -> tuple[EventBuilder, dict[str, Any], list[dict[str, Any]]]:
    """The builder for one reconciler object (into ``collected`` or a new ``Collected``), its
    ``status`` and the ``status.history`` entries that are objects."""
    builder = EventBuilder(
        object_ref(reconciler, obj, kind), config, source, collected if collected is not None else Collected()
    )
    status = as_dict(obj.get("status"))
    return builder, status, [h for h in as_list(status.get("history")) if isinstance(h, dict)]


# the columns an object row and each of its event rows share (EventBuilder.identity)
IDENTITY_COLUMNS = ["reconciler", "kind", "namespace", "name", "service", "environment"]
EVENT_COLUMNS = [
    "id",
    *IDENTITY_COLUMNS,
    "event_type",
    "reason",
    "message",
    "revision",
    "raw_revision",
    "revision_format",
    "started_at",
    "occurred_at",
    "status",
    "source",
    "deployment_id",
    "payload",
    "state_key",
]
OBJECT_COLUMNS = [*IDENTITY_COLUMNS, "mapped_by", "repository", "source_url", "last_seen"]
