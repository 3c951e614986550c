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
from datetime import UTC, date, datetime
from typing import Any

from analytics.config import Config
from analytics.deployments.reconciler_mapping import Mapped, ObjectRef, map_object, object_ref
from analytics.deployments.revisions import Revision, parse_revision, revision_column
from analytics.timestamps import in_range, parse_time

SUCCESS, FAILED, RUNNING = "success", "failed", "running"
# Event types that take part in deriving deployments.
DEPLOY_TYPES = ("sync", "sync_failed", "rollback", "rollback_failed")


class UnusableObject(ValueError):
    """An object or Event that cannot become rows at all (no name: its deployments would have an
    empty service and a ``source_ref`` of ``Application/argocd/``). A ValueError, so a webhook
    provider that meets it answers 422; the cluster and kubectl readers record it as rejected."""


@dataclass
class Rejected:
    """An observation (or a whole object) left out because it breaks a rule every path applies: a
    time outside the years 1970-2100, or no name. The cluster path skips it with a counted note and
    a data warning; an import file or a webhook delivery that holds one is refused."""

    message: str
    item: int | None = None  # index of the input record it came from, when the caller tracks it


@dataclass
class Collected:
    """Rows produced from some reconciler input, plus counts for the summary line."""

    events: list[dict[str, Any]] = field(default_factory=list)
    objects: dict[tuple[str, str, str, str], dict[str, Any]] = field(default_factory=dict)
    unknown_revisions: list[str] = field(default_factory=list)
    skipped: int = 0
    rejected: list[Rejected] = field(default_factory=list)

    def extend(self, other: Collected) -> None:
        self.events.extend(other.events)
        self.objects.update(other.objects)
        self.unknown_revisions.extend(other.unknown_revisions)
        self.skipped += other.skipped
        self.rejected.extend(other.rejected)


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


def _json_default(value: Any) -> str:
    """A YAML dump's unquoted timestamps arrive as datetimes: written as ISO 8601, like the JSON form."""
    return value.isoformat() if isinstance(value, date) else str(value)


def _jsonable(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=_json_default)


def require_name(ref: ObjectRef, what: str) -> None:
    """An object without a name cannot be mapped to a service (it would become service ``""``):
    the same refusal on every path (``UnusableObject``)."""
    if not ref.name.strip():
        raise UnusableObject(f"{ref.kind or 'an object'} in namespace {ref.namespace or '(none)'!r} "
                             f"without {what}: it cannot be mapped to a service")


def out_of_range(moment: datetime) -> bool:
    """A time outside the years 1970-2100 (Go's zero time 0001-01-01, a 9999-12-31 placeholder):
    stored, it would overflow the metrics' date arithmetic on every later run."""
    return not in_range(moment)


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
        """Append one event row; an observation without a usable time is counted and skipped, and
        one whose time or start lies outside the years 1970-2100 is recorded in ``rejected``."""
        when = as_time(occurred_at)
        if when is None:
            self.collected.skipped += 1
            return None
        started = as_time(started_at)
        for what, moment in (("time", when), ("start time", started)):
            if moment is not None and out_of_range(moment):
                ref = self.ref
                self.collected.rejected.append(Rejected(
                    f"{ref.kind}/{ref.namespace}/{ref.name}: {reason or event_type} {what} "
                    f"{moment.isoformat()} is outside the years 1970-2100"))
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
            "started_at": started,
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
    ``status`` and the ``status.history`` entries that are objects. An object without
    ``metadata.name`` raises ``UnusableObject``."""
    ref = object_ref(reconciler, obj, kind)
    require_name(ref, "metadata.name")
    builder = EventBuilder(ref, config, source, collected if collected is not None else Collected())
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
