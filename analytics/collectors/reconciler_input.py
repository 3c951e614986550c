"""Dispatch Kubernetes objects of any supported kind to the Argo CD or Flux row builders.

Shared by the cluster collector, the watcher and the kubectl-dump importer so that an object
produces the same rows whichever way it arrived.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from analytics.collectors import argocd, flux
from analytics.config import Config
from analytics.deployments.reconciler_mapping import ObjectRef, object_ref
from analytics.deployments.reconciler_rows import Collected, Rejected, UnusableObject
from analytics.errors import SourceError


def is_reconciler_object(obj: Any) -> bool:
    return argocd.is_application(obj) or flux.is_kustomization(obj) or flux.is_helmrelease(obj)


def is_reconciler_event(obj: Any) -> bool:
    if not isinstance(obj, dict) or obj.get("kind", "Event") != "Event":
        return False
    if not isinstance(obj.get("involvedObject") or obj.get("regarding"), dict):
        return False
    return argocd.is_argocd_event(obj) or flux.is_flux_event(obj)


def collect_objects(
    items: Iterable[Any], config: Config, source: str, collected: Collected | None = None
) -> Collected:
    """Objects first (so Events take their object's labels), then Events; others are ignored.

    An object or Event without a name, and an observation whose time lies outside the years
    1970-2100, give no rows: each is recorded in ``rejected`` with the index of its item, so the
    cluster collector skips it with a note and the kubectl importer names its line and refuses."""
    out = collected if collected is not None else Collected()
    items = list(items)
    known: dict[tuple[str, str, str], ObjectRef] = {}
    for index, obj in enumerate(items):
        if argocd.is_application(obj):
            read: Callable[..., object] = argocd.application_events
        elif flux.is_kustomization(obj):
            read = flux.kustomization_events
        elif flux.is_helmrelease(obj):
            read = flux.helmrelease_events
        else:
            continue
        if _read_item(out, index, partial(read, obj, config, source, out)):
            ref = object_ref("argocd" if argocd.is_application(obj) else "flux", obj)
            known[(ref.kind, ref.namespace, ref.name)] = ref
    for index, obj in enumerate(items):
        if not is_reconciler_event(obj):
            continue
        core_event = argocd.core_event if argocd.is_argocd_event(obj) else flux.core_event
        _read_item(out, index, partial(core_event, obj, config, source, out, known))
    return out


def _read_item(out: Collected, index: int, read: Callable[[], object]) -> bool:
    """Run one item's reader; a nameless item becomes a rejection. Every rejection the item made
    is tagged with its index. False when the item gave no rows at all."""
    before = len(out.rejected)
    usable = True
    try:
        read()
    except UnusableObject as exc:
        out.rejected.append(Rejected(str(exc)))
        usable = False
    for rejected in out.rejected[before:]:
        rejected.item = index
    return usable


def refuse_rejected(path: Path, collected: Collected, lines: Sequence[int]) -> None:
    """Importers: the first rejected observation refuses the whole file with one line naming its
    line (a user can fix a file; the cluster path skips instead, since nobody can fix a cluster)."""
    if not collected.rejected:
        return
    first = min(collected.rejected, key=lambda r: -1 if r.item is None else r.item)
    where = f"line {lines[first.item]}: " if first.item is not None and first.item < len(lines) else ""
    more = len(collected.rejected) - 1
    also = f" (and {more} more such)" if more else ""
    raise SourceError(f"{path}: {where}{first.message}{also}; nothing from this file was imported")
