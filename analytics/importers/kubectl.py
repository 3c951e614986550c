"""kubectl dumps: ``kubectl get applications,kustomizations,helmreleases -A -o json|yaml``
and ``kubectl get events -A -o json``.

Both List objects and single objects are accepted; objects of other kinds in the same file are
ignored, so a dump of a whole namespace imports what it can.
"""

from __future__ import annotations

from analytics.collectors.reconciler_input import (
    collect_objects,
    is_reconciler_event,
    is_reconciler_object,
    refuse_rejected,
)
from analytics.config import Config
from analytics.deployments.from_reconcilers import store_collected
from analytics.errors import SourceError
from analytics.importers.base import ImportSummary, ParsedFile, check_event_times, shape_errors
from analytics.store.connection import WriteSession

KIND = "kubectl"


def detect(parsed: ParsedFile) -> bool:
    """Any Argo CD Application, Flux Kustomization/HelmRelease, or an Event from their controllers."""
    return any(is_reconciler_object(r) or is_reconciler_event(r) for r in parsed.records)


def load(session: WriteSession, parsed: ParsedFile, config: Config) -> ImportSummary:
    with shape_errors(parsed.path, KIND):
        collected = collect_objects(parsed.records, config, "kubectl-dump")
    refuse_rejected(parsed.path, collected, parsed.lines)  # no name, a time outside 1970-2100
    if not collected.events and not collected.objects:
        raise SourceError(f"{parsed.path}: no Argo CD or Flux objects or events in this file")
    check_event_times(parsed.path, collected.events)
    with shape_errors(parsed.path, KIND):
        result = store_collected(session, config, collected)
    summary = ImportSummary(
        kind=KIND, path=parsed.path, rows=result.events, unknown_revisions=result.unknown_revisions
    )
    summary.notes.append(result.line())
    return summary
