"""Flux: Kustomizations (``kustomize.toolkit.fluxcd.io/v1``), HelmReleases (``helm.toolkit.fluxcd.io/v2``)
and the events their controllers emit (core/v1 Events or notification-controller ``eventv1`` posts).

A HelmRelease's desired state is identified by its Helm release version (each install, upgrade or
rollback makes a new one), so a chart re-reconciled without change is not a new deployment while a
values-only upgrade is. Kustomizations are identified by the source revision they applied.
"""

from __future__ import annotations

import re
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

RECONCILER = "flux"
KUSTOMIZE_GROUP = "kustomize.toolkit.fluxcd.io"
HELM_GROUP = "helm.toolkit.fluxcd.io"
REVISION_KEYS = (f"{KUSTOMIZE_GROUP}/revision", f"{HELM_GROUP}/revision", "revision")
_RELEASE = re.compile(
    r"release (?P<release>[^\s]+?)\.v(?P<version>\d+)(?: with chart (?P<chart>\S+?)@(?P<cv>\S+))?"
)

_SUCCESS_REASONS = {"ReconciliationSucceeded", "InstallSucceeded", "UpgradeSucceeded"}
_FAILED_REASONS = {
    "ReconciliationFailed",
    "HealthCheckFailed",
    "InstallFailed",
    "UpgradeFailed",
    "ArtifactFailed",
    "BuildFailed",
    "ValidationFailed",
    "DependencyNotReady",
    "TestFailed",
    "UninstallFailed",
}


def is_kustomization(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and obj.get("kind") == "Kustomization"
        and str(obj.get("apiVersion", "")).startswith(KUSTOMIZE_GROUP)
    )


def is_helmrelease(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and obj.get("kind") == "HelmRelease"
        and str(obj.get("apiVersion", "")).startswith(HELM_GROUP)
    )


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in as_list(status.get("conditions")) if as_dict(c).get("type") == kind), {})


def kustomization_events(
    obj: dict[str, Any], config: Config, source: str, collected: Collected | None = None
) -> Collected:
    """History entries (kustomize-controller >= 1.7), else the applied/attempted revisions."""
    builder, status, history = object_builder(RECONCILER, obj, "Kustomization", config, source, collected)
    out = builder.collected
    ready = _condition(status, "Ready")
    for entry in history:
        verdict = str(entry.get("lastReconciledStatus") or "")
        ok = verdict.endswith("Succeeded") or verdict == ""
        builder.add(
            event_type="sync" if ok else "sync_failed",
            status=SUCCESS if ok else FAILED,
            occurred_at=entry.get("firstReconciled"),
            revision=as_dict(entry.get("metadata")).get("revision"),
            reason=verdict or "History",
            message=f"{entry.get('totalReconciliations', 1)} reconciliations, "
            f"last at {entry.get('lastReconciled')}",
            payload=entry,
            discriminator=f"history:{entry.get('digest')}",
        )
    if not history and status.get("lastAppliedRevision") and ready.get("status") == "True":
        # Without history, the Ready transition is the best time there is (a later bound).
        builder.add(
            event_type="sync",
            status=SUCCESS,
            occurred_at=ready.get("lastTransitionTime"),
            revision=status["lastAppliedRevision"],
            reason=ready.get("reason"),
            message=ready.get("message"),
            payload={"conditions": status.get("conditions")},
            discriminator="ready",
        )
    if ready.get("status") == "False":
        builder.add(
            event_type="sync_failed",
            status=FAILED,
            occurred_at=ready.get("lastTransitionTime"),
            revision=status.get("lastAttemptedRevision"),
            reason=ready.get("reason"),
            message=ready.get("message"),
            payload={"conditions": status.get("conditions")},
            discriminator="ready",
        )
    healthy = _condition(status, "Healthy")
    if healthy.get("status") in ("True", "False"):
        builder.add(
            event_type="health",
            status="Healthy" if healthy["status"] == "True" else "Degraded",
            occurred_at=healthy.get("lastTransitionTime"),
            revision=status.get("lastAppliedRevision"),
            reason=healthy.get("reason"),
            message=healthy.get("message"),
            payload=healthy,
            discriminator="healthy",
        )
    return out


def _snapshot_state(entry: dict[str, Any]) -> str | None:
    version = entry.get("version")
    return f"release:v{version}" if version not in (None, "") else None


def helmrelease_events(
    obj: dict[str, Any], config: Config, source: str, collected: Collected | None = None
) -> Collected:
    """One event per history snapshot (newest first in the object), plus a failing Ready condition."""
    builder, status, history = object_builder(RECONCILER, obj, "HelmRelease", config, source, collected)
    out = builder.collected
    failed_versions = set()
    for entry in history:
        helm_status = str(entry.get("status") or "")
        action = str(entry.get("action") or "")
        state: str | None
        if helm_status in ("deployed", "superseded"):
            event_type, state = ("rollback" if action == "rollback" else "sync"), SUCCESS
        elif helm_status == "failed":
            event_type, state = ("rollback_failed" if action == "rollback" else "sync_failed"), FAILED
            failed_versions.add(str(entry.get("chartVersion")))
        elif helm_status.startswith("pending"):
            event_type, state = "operation_started", RUNNING
        else:
            event_type, state = "reconcile", helm_status or None
        builder.add(
            event_type=event_type,
            status=state,
            occurred_at=entry.get("lastDeployed"),
            revision=entry.get("chartVersion"),
            reason=f"Helm{(action or helm_status).capitalize()}",
            message=f"{entry.get('chartName')}@{entry.get('chartVersion')} app {entry.get('appVersion')} "
            f"release v{entry.get('version')} {helm_status}",
            payload=entry,
            discriminator=f"snapshot:{entry.get('version')}",
            state_key=_snapshot_state(entry),
        )
    ready = _condition(status, "Ready")
    attempted = status.get("lastAttemptedRevision")
    if ready.get("status") == "False" and str(attempted) not in failed_versions:
        builder.add(
            event_type="sync_failed",
            status=FAILED,
            occurred_at=ready.get("lastTransitionTime"),
            revision=attempted,
            reason=ready.get("reason"),
            message=ready.get("message"),
            payload={
                k: status.get(k)
                for k in (
                    "conditions",
                    "failures",
                    "lastAttemptedReleaseAction",
                    "installFailures",
                    "upgradeFailures",
                )
            },
            discriminator="ready",
        )
    return out


def event_revision(metadata: dict[str, Any]) -> str | None:
    """Metadata keys come prefixed (``kustomize.toolkit.fluxcd.io/revision``) or bare (``revision``)."""
    for key in REVISION_KEYS:
        if metadata.get(key):
            return str(metadata[key])
    return None


def is_flux_event(event: dict[str, Any]) -> bool:
    involved = involved_object(event)
    return str(involved.get("kind")) in ("Kustomization", "HelmRelease") and (
        str(involved.get("apiVersion", "")).startswith((KUSTOMIZE_GROUP, HELM_GROUP))
        or str(
            as_dict(event.get("source")).get("component")
            or event.get("reportingComponent")
            or event.get("reportingController")
            or ""
        ).endswith(("kustomize-controller", "helm-controller"))
    )


def add_flux_event(
    builder: EventBuilder,
    *,
    reason: str,
    message: str,
    when: Any,
    severity: str,
    metadata: dict[str, Any],
    disc: str,
    payload: Any,
) -> None:
    """Interpret a controller reason (shared by core Events and notification posts)."""
    revision = event_revision(metadata)
    state_key = None
    if builder.ref.kind == "HelmRelease":
        m = _RELEASE.search(message)
        if m:
            state_key = f"release:v{m['version']}"
            revision = revision or m["cv"]
    if reason == "RollbackSucceeded":
        event_type, state = "rollback", SUCCESS
    elif reason == "RollbackFailed":
        event_type, state = "rollback_failed", FAILED
    elif reason in _SUCCESS_REASONS:
        event_type, state = "sync", SUCCESS
    elif reason in _FAILED_REASONS or (severity == "error" and reason not in ("DriftDetected",)):
        event_type, state = "sync_failed", FAILED
    elif reason == "DriftDetected":
        event_type, state = "drift", None
    elif reason == "Progressing":
        event_type, state = "progressing", RUNNING
    else:
        event_type, state = "reconcile", None
    if builder.ref.kind == "HelmRelease" and event_type in ("sync", "rollback") and state_key is None:
        state_key = ""  # a weak observation: matched to the running release by revision
    builder.add(
        event_type=event_type,
        status=state,
        occurred_at=when,
        revision=revision,
        reason=reason or None,
        message=message,
        payload=payload,
        discriminator=disc,
        state_key=state_key,
    )


def event_ref(
    involved: dict[str, Any], known: dict[tuple[str, str, str], ObjectRef] | None = None
) -> ObjectRef:
    kind = str(involved.get("kind") or "")
    namespace = str(involved.get("namespace") or "")
    name = str(involved.get("name") or "")
    found = (known or {}).get((kind, namespace, name))
    ref = found or ObjectRef(reconciler=RECONCILER, kind=kind, namespace=namespace, name=name)
    require_name(ref, "involvedObject.name")  # an Event about a nameless object maps to no service
    return ref


def core_event(
    event: dict[str, Any],
    config: Config,
    source: str,
    collected: Collected,
    known: dict[tuple[str, str, str], ObjectRef] | None = None,
) -> None:
    """A core/v1 Event from kustomize-controller or helm-controller; revisions ride in annotations."""
    from analytics.collectors.argocd import event_discriminator, event_time

    involved = involved_object(event)
    builder = EventBuilder(event_ref(involved, known), config, source, collected)
    builder.mark_from_event()
    annotations = as_dict(as_dict(event.get("metadata")).get("annotations"))
    etype = str(event.get("type") or "Normal")
    add_flux_event(
        builder,
        reason=str(event.get("reason") or ""),
        message=str(event.get("message") or event.get("note") or ""),
        when=event_time(event),
        severity="error" if etype == "Warning" else "info",
        metadata=annotations,
        disc=event_discriminator(event),
        payload={
            k: event.get(k) for k in ("reason", "message", "type", "count", "lastTimestamp", "involvedObject")
        }
        | {"annotations": annotations},
    )


def notification_event(event: dict[str, Any], config: Config, source: str, collected: Collected) -> None:
    """A notification-controller ``eventv1`` Event (generic provider post or JSON line)."""
    involved = as_dict(event.get("involvedObject"))
    builder = EventBuilder(event_ref(involved), config, source, collected)
    builder.mark_from_event()
    metadata = as_dict(event.get("metadata"))
    message = str(event.get("message") or "")
    add_flux_event(
        builder,
        reason=str(event.get("reason") or ""),
        message=message,
        when=event.get("timestamp"),
        severity=str(event.get("severity") or "info"),
        metadata=metadata,
        disc=f"notification:{event.get('reportingController')}:{involved.get('uid')}:{hash_text(message)}",
        payload=event,
    )


def hash_text(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:12]


def is_notification_event(record: Any) -> bool:
    return (
        isinstance(record, dict)
        and isinstance(record.get("involvedObject"), dict)
        and "reportingController" in record
        and "timestamp" in record
        and "severity" in record
    )
