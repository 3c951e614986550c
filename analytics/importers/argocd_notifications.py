"""JSON lines of Argo CD notification webhook bodies (the template in docs/reconcilers.md)."""

from __future__ import annotations

from analytics.collectors.argocd import application_of, notification_rows
from analytics.config import Config
from analytics.deployments.from_reconcilers import store_collected
from analytics.deployments.reconciler_rows import Collected
from analytics.errors import SourceError
from analytics.importers.base import ImportSummary, ParsedFile, check_event_times, shape_errors
from analytics.store.connection import WriteSession

KIND = "argocd-notifications"


def detect(parsed: ParsedFile) -> bool:
    """JSON lines whose every record carries an Application (a kubectl dump is a List, not lines)."""
    if parsed.format != "jsonl" or not parsed.records:
        return False
    for record in parsed.records:
        try:
            app = application_of(record)
        except ValueError:
            return False
        if not str(app.get("apiVersion", "")).startswith("argoproj.io/"):
            return False
    return True


def load(session: WriteSession, parsed: ParsedFile, config: Config) -> ImportSummary:
    """Each line is read as the receiver reads the same body (``notification_rows``): a line the
    receiver would answer 422 (no name, an unreadable time, one outside 1970-2100) refuses the file
    with one line naming it, instead of being imported with its observation silently dropped."""
    collected = Collected()
    for record, line in zip(parsed.records, parsed.lines, strict=False):
        with shape_errors(parsed.path, KIND):
            try:
                notification_rows(record, config, "notification", collected)
            except ValueError as exc:
                raise SourceError(
                    f"{parsed.path}: line {line}: {exc}; nothing from this file was imported"
                ) from None
    check_event_times(parsed.path, collected.events)
    with shape_errors(parsed.path, KIND):
        result = store_collected(session, config, collected)
    summary = ImportSummary(
        kind=KIND, path=parsed.path, rows=result.events, unknown_revisions=result.unknown_revisions
    )
    summary.notes.append(result.line())
    return summary
