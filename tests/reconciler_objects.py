"""Argo CD and Flux objects shaped like the real ones (field names and nesting as the controllers
write them: argoproj.io/v1alpha1 Application, kustomize.toolkit.fluxcd.io/v1 Kustomization,
helm.toolkit.fluxcd.io/v2 HelmRelease, core/v1 Event, notification-controller eventv1.Event).

Used by the tests, the emulated Kubernetes API and the demo step, so every path reads the same
shapes. Only the values vary.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

CLUSTER = "https://kubernetes.default.svc"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def application(
    name: str,
    *,
    repo_url: str,
    path: str,
    dest_namespace: str,
    history: list[tuple[str, datetime]],
    operation: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
    health: str = "Healthy",
    uid: str = "6a3f9c2e-1b7d-4e8a-9f00-5c2d1e0b7a11",
    resource_version: str = "48211",
) -> dict[str, Any]:
    """An Application whose ``status.history`` holds ``(revision, deployedAt)`` successful syncs.

    Each sync started 40 s before it was deployed; the operationState is the last sync's unless
    ``operation`` overrides it.
    """
    source = {"repoURL": repo_url, "path": path, "targetRevision": "main"}
    entries = []
    for number, (revision, deployed) in enumerate(history, start=1):
        entries.append(
            {
                "deployStartedAt": iso(deployed - timedelta(seconds=40)),
                "deployedAt": iso(deployed),
                "id": number - 1,
                "initiatedBy": {"automated": True},
                "revision": revision,
                "source": source,
            }
        )
    last_rev, last_at = history[-1] if history else ("", datetime(2024, 1, 1, tzinfo=UTC))
    op = operation or {
        "finishedAt": iso(last_at),
        "message": "successfully synced (all tasks run)",
        "operation": {
            "initiatedBy": {"automated": True},
            "retry": {"limit": 5},
            "sync": {"prune": True, "revision": last_rev, "syncOptions": ["CreateNamespace=true"]},
        },
        "phase": "Succeeded",
        "startedAt": iso(last_at - timedelta(seconds=40)),
        "syncResult": {
            "resources": [
                {
                    "group": "apps",
                    "hookPhase": "Running",
                    "kind": "Deployment",
                    "message": f"deployment.apps/{name} configured",
                    "name": name,
                    "namespace": dest_namespace,
                    "status": "Synced",
                    "syncPhase": "Sync",
                    "version": "v1",
                }
            ],
            "revision": last_rev,
            "source": source,
        },
    }
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "creationTimestamp": "2024-01-02T08:00:00Z",
            "finalizers": ["resources-finalizer.argocd.argoproj.io"],
            "generation": 57,
            "labels": labels or {},
            "name": name,
            "namespace": "argocd",
            "resourceVersion": resource_version,
            "uid": uid,
        },
        "spec": {
            "destination": {"namespace": dest_namespace, "server": CLUSTER},
            "project": "default",
            "revisionHistoryLimit": 10,
            "source": source,
            "syncPolicy": {
                "automated": {"prune": True, "selfHeal": True},
                "syncOptions": ["CreateNamespace=true"],
            },
        },
        "status": {
            "controllerNamespace": "argocd",
            "health": {"status": health},
            "history": entries,
            "operationState": op,
            "reconciledAt": iso(last_at + timedelta(minutes=3)),
            "sourceType": "Kustomize",
            "summary": {"images": []},
            "sync": {
                "comparedTo": {
                    "destination": {"namespace": dest_namespace, "server": CLUSTER},
                    "source": source,
                },
                "revision": last_rev,
                "status": "Synced",
            },
        },
    }


def failed_operation(revision: str, started: datetime, finished: datetime, message: str) -> dict[str, Any]:
    return {
        "finishedAt": iso(finished),
        "message": message,
        "operation": {
            "initiatedBy": {"automated": True},
            "retry": {"limit": 5},
            "sync": {"revision": revision},
        },
        "phase": "Failed",
        "retryCount": 5,
        "startedAt": iso(started),
        "syncResult": {"resources": [], "revision": revision},
    }


def helmrelease(
    name: str,
    namespace: str,
    snapshots: list[dict[str, Any]],
    *,
    ready: tuple[str, str, str] = ("True", "UpgradeSucceeded", "Helm upgrade succeeded"),
    ready_at: datetime | None = None,
    chart: str = "podinfo",
) -> dict[str, Any]:
    """A HelmRelease; ``snapshots`` come oldest first, stored newest first (as helm-controller does)."""
    latest = snapshots[-1] if snapshots else {}
    status, reason, message = ready
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "generation": 3,
            "uid": "0f1e2d3c-hr",
            "resourceVersion": "7781",
        },
        "spec": {
            "chart": {
                "spec": {
                    "chart": chart,
                    "version": ">=6.0.0",
                    "sourceRef": {"kind": "HelmRepository", "name": chart},
                }
            },
            "interval": "10m",
            "values": {"replicaCount": 2},
        },
        "status": {
            "conditions": [
                {
                    "lastTransitionTime": iso(ready_at or datetime(2024, 5, 7, 5, 0, tzinfo=UTC)),
                    "message": message,
                    "observedGeneration": 3,
                    "reason": reason,
                    "status": status,
                    "type": "Ready",
                },
                {
                    "lastTransitionTime": iso(ready_at or datetime(2024, 5, 7, 5, 0, tzinfo=UTC)),
                    "message": message,
                    "observedGeneration": 3,
                    "reason": reason,
                    "status": status,
                    "type": "Released",
                },
            ],
            "helmChart": f"{namespace}/{namespace}-{name}",
            "history": list(reversed(snapshots)),
            "lastAttemptedConfigDigest": "sha256:" + "c" * 64,
            "lastAttemptedGeneration": 3,
            "lastAttemptedReleaseAction": "upgrade",
            "lastAttemptedRevision": latest.get("chartVersion"),
            "observedGeneration": 3,
            "storageNamespace": namespace,
        },
    }


def helm_snapshot(
    version: int,
    chart_version: str,
    deployed: datetime,
    first: datetime,
    status: str,
    *,
    chart: str = "podinfo",
    name: str = "podinfo",
    namespace: str = "podinfo",
) -> dict[str, Any]:
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "appVersion": chart_version.split("+")[0],
        "chartName": chart,
        "chartVersion": chart_version,
        "configDigest": "sha256:" + "c" * 64,
        "digest": "sha256:" + f"{version:02d}" * 32,
        "firstDeployed": iso(first),
        "lastDeployed": iso(deployed),
        "name": name,
        "namespace": namespace,
        "status": status,
        "version": version,
    }


def kustomization(
    name: str,
    namespace: str,
    *,
    path: str,
    applied: str,
    attempted: str | None = None,
    ready: tuple[str, str, str] | None = None,
    ready_at: datetime,
    history: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    status, reason, message = ready or ("True", "ReconciliationSucceeded", f"Applied revision: {applied}")
    obj: dict[str, Any] = {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "generation": 1,
            "uid": "9a8b7c6d-ks",
            "resourceVersion": "5521",
        },
        "spec": {
            "interval": "10m",
            "path": path,
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": "platform-config"},
        },
        "status": {
            "conditions": [
                {
                    "lastTransitionTime": iso(ready_at),
                    "message": message,
                    "observedGeneration": 1,
                    "reason": reason,
                    "status": status,
                    "type": "Ready",
                }
            ],
            "inventory": {"entries": []},
            "lastAppliedRevision": applied,
            "lastAttemptedRevision": attempted or applied,
            "observedGeneration": 1,
        },
    }
    if history is not None:
        obj["status"]["history"] = history
    return obj


def kustomization_history_entry(
    revision: str, first: datetime, last: datetime, total: int, status: str = "ReconciliationSucceeded"
) -> dict[str, Any]:
    return {
        "digest": "sha256:" + revision.rsplit(":", 1)[-1][:8] * 8,
        "firstReconciled": iso(first),
        "lastReconciled": iso(last),
        "lastReconciledDuration": "1.52s",
        "lastReconciledStatus": status,
        "metadata": {"revision": revision},
        "totalReconciliations": total,
    }


def flux_event(
    kind: str,
    name: str,
    namespace: str,
    reason: str,
    message: str,
    at: datetime,
    *,
    revision: str | None,
    uid: str,
    count: int = 1,
    warning: bool = False,
) -> dict[str, Any]:
    """A core/v1 Event emitted by kustomize-controller or helm-controller."""
    controller = "kustomize-controller" if kind == "Kustomization" else "helm-controller"
    group = "kustomize.toolkit.fluxcd.io" if kind == "Kustomization" else "helm.toolkit.fluxcd.io"
    annotations = {f"{group}/revision": revision} if revision else {}
    return {
        "apiVersion": "v1",
        "count": count,
        "eventTime": None,
        "firstTimestamp": iso(at),
        "involvedObject": {
            "apiVersion": f"{group}/v1" if kind == "Kustomization" else f"{group}/v2",
            "kind": kind,
            "name": name,
            "namespace": namespace,
            "resourceVersion": "5521",
            "uid": f"obj-{name}",
        },
        "kind": "Event",
        "lastTimestamp": iso(at),
        "message": message,
        "metadata": {
            "annotations": annotations,
            "creationTimestamp": iso(at),
            "name": f"{name}.{uid}",
            "namespace": namespace,
            "resourceVersion": "9" + uid[-4:],
            "uid": uid,
        },
        "reason": reason,
        "reportingComponent": controller,
        "reportingInstance": f"{controller}-7d9f8b6c5-abcde",
        "source": {"component": controller},
        "type": "Warning" if warning else "Normal",
    }


def argocd_event(
    app: str, reason: str, message: str, at: datetime, *, uid: str, count: int = 1, warning: bool = False
) -> dict[str, Any]:
    """A core/v1 Event emitted by argocd-application-controller about an Application."""
    return {
        "apiVersion": "v1",
        "count": count,
        "firstTimestamp": iso(at),
        "involvedObject": {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "name": app,
            "namespace": "argocd",
            "resourceVersion": "48211",
            "uid": f"app-{app}",
        },
        "kind": "Event",
        "lastTimestamp": iso(at),
        "message": message,
        "metadata": {
            "creationTimestamp": iso(at),
            "name": f"{app}.{uid}",
            "namespace": "argocd",
            "resourceVersion": "8" + uid[-4:],
            "uid": uid,
        },
        "reason": reason,
        "reportingComponent": "argocd-application-controller",
        "source": {"component": "argocd-application-controller"},
        "type": "Warning" if warning else "Normal",
    }


def notification(
    kind: str,
    name: str,
    namespace: str,
    reason: str,
    message: str,
    at: datetime,
    *,
    revision: str | None,
    bare_keys: bool = False,
    severity: str = "info",
) -> dict[str, Any]:
    """A notification-controller ``eventv1.Event`` as posted by the generic(-hmac) provider."""
    group = "kustomize.toolkit.fluxcd.io" if kind == "Kustomization" else "helm.toolkit.fluxcd.io"
    key = "revision" if bare_keys else f"{group}/revision"
    return {
        "involvedObject": {
            "apiVersion": f"{group}/v1",
            "kind": kind,
            "name": name,
            "namespace": namespace,
            "resourceVersion": "5521",
            "uid": f"obj-{name}",
        },
        "message": message,
        "metadata": ({key: revision} if revision else {}) | {"summary": "prod cluster"},
        "reason": reason,
        "reportingController": "kustomize-controller" if kind == "Kustomization" else "helm-controller",
        "reportingInstance": "kustomize-controller-7d9f8b6c5-abcde",
        "severity": severity,
        "timestamp": iso(at),
    }


def as_list(kind: str, items: list[dict[str, Any]], api_version: str = "v1") -> dict[str, Any]:
    """What ``kubectl get ... -o json`` prints for several objects."""
    return {"apiVersion": api_version, "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}
