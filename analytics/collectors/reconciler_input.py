"""Dispatch Kubernetes objects of any supported kind to the Argo CD or Flux row builders.

Shared by the cluster collector, the watcher and the kubectl-dump importer so that an object
produces the same rows whichever way it arrived.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from analytics.collectors import argocd, flux
from analytics.config import Config
from analytics.deployments.reconciler_mapping import ObjectRef, object_ref
from analytics.deployments.reconciler_rows import Collected


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
    """Objects first (so Events take their object's labels), then Events; others are ignored."""
    out = collected if collected is not None else Collected()
    items = list(items)
    known: dict[tuple[str, str, str], ObjectRef] = {}
    for obj in items:
        if argocd.is_application(obj):
            argocd.application_events(obj, config, source, out)
        elif flux.is_kustomization(obj):
            flux.kustomization_events(obj, config, source, out)
        elif flux.is_helmrelease(obj):
            flux.helmrelease_events(obj, config, source, out)
        else:
            continue
        ref = object_ref("argocd" if argocd.is_application(obj) else "flux", obj)
        known[(ref.kind, ref.namespace, ref.name)] = ref
    for obj in items:
        if not is_reconciler_event(obj):
            continue
        if argocd.is_argocd_event(obj):
            argocd.core_event(obj, config, source, out, known)
        else:
            flux.core_event(obj, config, source, out, known)
    return out
