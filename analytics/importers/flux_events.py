"""JSON lines of Flux notification-controller events (``eventv1.Event``), e.g. a generic provider's log."""

from __future__ import annotations

from analytics.collectors import flux
from analytics.config import Config
from analytics.deployments.from_reconcilers import store_collected
from analytics.deployments.reconciler_rows import Collected
from analytics.errors import SourceError
from analytics.importers.base import ImportSummary, ParsedFile, check_event_times, shape_errors
from analytics.store.connection import WriteSession

KIND = "flux-events"


def detect(parsed: ParsedFile) -> bool:
    return bool(parsed.records) and all(flux.is_notification_event(r) for r in parsed.records)


def load(session: WriteSession, parsed: ParsedFile, config: Config) -> ImportSummary:
    collected = Collected()
    for record, line in zip(parsed.records, parsed.lines, strict=False):
        involved = record.get("involvedObject") or {}
        if not involved.get("kind") or not involved.get("name"):
            raise SourceError(f"{parsed.path}: line {line}: event has no involvedObject kind and name")
        before, rejected = collected.skipped, len(collected.rejected)
        with shape_errors(parsed.path, KIND):
            flux.notification_event(record, config, "notification", collected)
        if collected.skipped > before:
            raise SourceError(f"{parsed.path}: line {line}: event has no usable timestamp")
        if len(collected.rejected) > rejected:  # a time outside the years 1970-2100
            raise SourceError(f"{parsed.path}: line {line}: {collected.rejected[rejected].message}; "
                              "nothing from this file was imported")
    check_event_times(parsed.path, collected.events)
    with shape_errors(parsed.path, KIND):
        result = store_collected(session, config, collected)
    summary = ImportSummary(
        kind=KIND, path=parsed.path, rows=result.events, unknown_revisions=result.unknown_revisions
    )
    summary.notes.append(result.line())
    return summary
