"""Step 50: reconciler history for the demo, imported as one ``kubectl`` dump with ``gitops-dora import``.

The config commits of step 10 (``demo-manifest.json``) are what the reconcilers applied:

* ``payments-api`` and ``storefront`` are Argo CD Applications ``<service>-<env>`` whose
  ``status.history`` holds every sync (``spec.revisionHistoryLimit`` is raised so the dump keeps
  them all), including self-heal re-syncs of the running revision, which are not deployments;
* ``storefront-production`` has a sync that failed before its retry succeeded (a failed attempt,
  in the controller's Events); ``payments-api-production`` has a rollback to the previous revision;
* ``inventory`` is deployed by Flux Kustomizations ``inventory-<env>`` with ``status.history``;
  ``inventory-production`` once drifts (a hand-scaled Deployment, a ``DriftDetected`` Event) and
  its next run corrects it (``ReconciliationSucceeded``), evidence for ``workload-reconciliation``.

Deployments therefore come from reconciler history, and lead time reaches the app commits
through the image tags in the config repository (analytics/deployments/images.py).
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from analytics.demo.context import DemoContext
from analytics.demo.platform_files import FLUX_SERVICE

FLUX_SERVICES = (FLUX_SERVICE,)  # the platform team's Flux Kustomizations in platform-config name it
FAILED_SYNC = ("storefront", "production", 4)  # service, env, index of the deployment that first failed
ROLLBACK = ("payments-api", "production", 6)  # service, env, index of the deployment rolled back
DRIFT = ("inventory", "production", 12)  # service, env, index of the config commit running when it drifted
DUMP_DIR = "reconcilers"
DUMP_FILE = "kubectl-get-applications-kustomizations-events.json"


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _config_url(demo: DemoContext, manifest: dict[str, Any]) -> str:
    """Where a cluster would fetch the config repo from; never a local path, so builds in two
    work dirs load identical rows."""
    return f"https://git.example.com/demo/{manifest['config_repo']['name']}.git"


def _syncs(entries: list[dict[str, str]], rng: random.Random) -> list[tuple[str, datetime, str]]:
    """(revision, deployedAt, initiator): each config commit applied 2-6 min after it was pushed,
    then re-synced by self-heal now and then while it is the running revision."""
    out: list[tuple[str, datetime, str]] = []
    for i, entry in enumerate(entries):
        applied = _time(entry["committed_at"]) + timedelta(minutes=rng.randint(2, 6))
        out.append((entry["commit"], applied, "automated"))
        until = _time(entries[i + 1]["committed_at"]) if i + 1 < len(entries) else applied + timedelta(days=2)
        resync = applied + timedelta(hours=rng.randint(3, 30))
        while resync < until and rng.random() < 0.6:
            out.append((entry["commit"], resync, "automated"))
            resync += timedelta(hours=rng.randint(6, 48))
    return sorted(out, key=lambda s: s[1])


def _application(
    demo: DemoContext,
    manifest: dict[str, Any],
    service: str,
    env: str,
    syncs: list[tuple[str, datetime, str]],
) -> dict[str, Any]:
    source = {
        "repoURL": _config_url(demo, manifest),
        "path": f"apps/{service}/overlays/{env}",
        "targetRevision": "main",
    }
    history = [
        {
            "deployStartedAt": _iso(at - timedelta(seconds=35)),
            "deployedAt": _iso(at),
            "id": i,
            "initiatedBy": {"automated": True} if who == "automated" else {"username": who},
            "revision": rev,
            "source": source,
        }
        for i, (rev, at, who) in enumerate(syncs)
    ]
    last_rev, last_at, _ = syncs[-1]
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": f"{service}-{env}",
            "namespace": "argocd",
            "labels": {"app.kubernetes.io/name": service},
            "uid": f"demo-{service}-{env}",
            "resourceVersion": "1",
        },
        "spec": {
            "destination": {"namespace": f"{service}-{env}", "server": "https://kubernetes.default.svc"},
            "project": "default",
            "revisionHistoryLimit": 1000,
            "source": source,
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
        },
        "status": {
            "health": {"status": "Healthy"},
            "history": history,
            "operationState": {
                "finishedAt": _iso(last_at),
                "message": "successfully synced (all tasks run)",
                "operation": {"initiatedBy": {"automated": True}, "sync": {"revision": last_rev}},
                "phase": "Succeeded",
                "startedAt": _iso(last_at - timedelta(seconds=35)),
                "syncResult": {"resources": [], "revision": last_rev, "source": source},
            },
            "reconciledAt": _iso(last_at + timedelta(minutes=3)),
            "sourceType": "Kustomize",
            "sync": {"revision": last_rev, "status": "Synced"},
        },
    }


def _core_event(
    involved: dict[str, str], component: str, reason: str, message: str, at: datetime, uid: str,
    warning: bool, annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A core/v1 Event as a controller records it about ``involved`` (the same shape for both)."""
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "count": 1,
        "type": "Warning" if warning else "Normal",
        "firstTimestamp": _iso(at),
        "lastTimestamp": _iso(at),
        "reason": reason,
        "message": message,
        "involvedObject": involved,
        "metadata": {
            **({"annotations": annotations} if annotations else {}),
            "name": f"{involved['name']}.{uid}",
            "namespace": involved["namespace"],
            "uid": uid,
        },
        "reportingComponent": component,
        "source": {"component": component},
    }


def _event(
    app: str, reason: str, message: str, at: datetime, uid: str, warning: bool = False
) -> dict[str, Any]:
    involved = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "name": app,
        "namespace": "argocd",
    }
    return _core_event(involved, "argocd-application-controller", reason, message, at, uid, warning)

def _kustomization(
    service: str, env: str, entries: list[dict[str, str]], rng: random.Random
) -> dict[str, Any]:
    history: list[dict[str, Any]] = []
    for i, entry in enumerate(entries):
        first = _time(entry["committed_at"]) + timedelta(minutes=rng.randint(1, 10))
        nxt = _time(entries[i + 1]["committed_at"]) if i + 1 < len(entries) else first + timedelta(days=1)
        total = max(1, int((nxt - first).total_seconds() // 600))
        history.append(
            {
                "digest": "sha256:" + entry["commit"][:16] * 4,
                "firstReconciled": _iso(first),
                "lastReconciled": _iso(first + timedelta(minutes=10 * (total - 1))),
                "lastReconciledDuration": "1.4s",
                "lastReconciledStatus": "ReconciliationSucceeded",
                "metadata": {"revision": f"main@sha1:{entry['commit']}"},
                "totalReconciliations": total,
            }
        )
    last = history[-1]
    applied = f"main@sha1:{entries[-1]['commit']}"
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": f"{service}-{env}", "namespace": "flux-system", "uid": f"demo-{service}-{env}"},
        "spec": {
            "interval": "10m",
            "path": f"./apps/{service}/overlays/{env}",
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": "platform-config"},
        },
        "status": {
            "conditions": [
                {
                    "lastTransitionTime": last["lastReconciled"],
                    "reason": "ReconciliationSucceeded",
                    "message": f"Applied revision: {applied}",
                    "status": "True",
                    "type": "Ready",
                }
            ],
            "history": list(reversed(history)),  # newest first, as kustomize-controller keeps it
            "lastAppliedRevision": applied,
            "lastAttemptedRevision": applied,
        },
    }


def _flux_event(
    kustomization: str, reason: str, message: str, at: datetime, revision: str, uid: str,
    warning: bool = False,
) -> dict[str, Any]:
    """A core/v1 Event from kustomize-controller; the revision rides in an annotation, as Flux sets it."""
    involved = {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "name": kustomization,
        "namespace": "flux-system",
        "uid": f"demo-{kustomization}",
    }
    annotations = {"kustomize.toolkit.fluxcd.io/revision": revision}
    return _core_event(involved, "kustomize-controller", reason, message, at, uid, warning, annotations)

def _drift(service: str, env: str, entries: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Someone scales the Deployment by hand; the next reconcile puts it back.

    The drift happens while the ``DRIFT[2]``-th config commit is running, halfway to the next one,
    and is corrected at the Kustomization's next 10-minute run (same revision: not a deployment).
    """
    running, following = entries[DRIFT[2]], entries[DRIFT[2] + 1]
    start, end = _time(running["committed_at"]), _time(following["committed_at"])
    drifted = start + (end - start) / 2
    drifted = drifted.replace(second=0, microsecond=0)
    corrected = drifted + timedelta(minutes=7)
    name, revision = f"{service}-{env}", f"main@sha1:{running['commit']}"
    workload = f"Deployment/{service}-{env}/{service}"
    return [
        _flux_event(name, "DriftDetected",
                    f"{workload} drifted from the desired state: spec.replicas is 5, want 2", drifted,
                    revision, f"{name}-drift", warning=True),
        _flux_event(name, "ReconciliationSucceeded",
                    f"{workload} configured\nReconciliation finished in 1.8s, next run in 10m0s", corrected,
                    revision, f"{name}-drift-corrected"),
    ]


def run(demo: DemoContext) -> None:
    manifest = demo.load_manifest()
    rng = random.Random(5005)
    out = demo.workdir / DUMP_DIR
    out.mkdir(parents=True, exist_ok=True)
    apps: list[dict[str, Any]] = []
    kustomizations: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    flux_events: list[dict[str, Any]] = []
    envs = [e["name"] for e in manifest["environments"]]
    for service in (s["name"] for s in manifest["services"]):
        for env in envs:
            entries = [e for e in manifest["config_commits"][env] if e["service"] == service]
            if not entries:
                continue
            if service in FLUX_SERVICES:
                kustomizations.append(_kustomization(service, env, entries, rng))
                if (service, env) == DRIFT[:2] and len(entries) > DRIFT[2] + 1:
                    flux_events.extend(_drift(service, env, entries))
                continue
            syncs = _syncs(entries, rng)
            name = f"{service}-{env}"
            if (service, env) == FAILED_SYNC[:2] and len(entries) > FAILED_SYNC[2]:
                entry = entries[FAILED_SYNC[2]]
                applied = next(at for rev, at, _ in syncs if rev == entry["commit"])
                failed_at = applied - timedelta(minutes=1)
                # The first attempt failed; the automated retry 25 minutes later succeeded.
                syncs = [
                    (r, a + timedelta(minutes=25) if r == entry["commit"] else a, w) for r, a, w in syncs
                ]
                events.append(
                    _event(
                        name,
                        "OperationStarted",
                        f"Initiated automated sync to '{entry['commit']}'",
                        failed_at - timedelta(minutes=2),
                        f"{name}-started",
                    )
                )
                events.append(
                    _event(
                        name,
                        "OperationCompleted",
                        f"Sync operation to {entry['commit']} failed: one or more objects failed to apply, "
                        'reason: admission webhook "validate.kyverno.svc" denied the request',
                        failed_at,
                        f"{name}-failed",
                        warning=True,
                    )
                )
            if (service, env) == ROLLBACK[:2] and len(entries) > ROLLBACK[2] + 1:
                bad, previous = entries[ROLLBACK[2]], entries[ROLLBACK[2] - 1]
                applied = next(at for rev, at, _ in syncs if rev == bad["commit"])
                rolled = applied + timedelta(minutes=50)
                nxt = _time(entries[ROLLBACK[2] + 1]["committed_at"])
                syncs = [s for s in syncs if not (s[0] == bad["commit"] and s[1] > applied)]
                syncs.append(
                    (previous["commit"], min(rolled, nxt - timedelta(minutes=5)), "oncall@example.com")
                )
                syncs.sort(key=lambda s: s[1])
            apps.append(_application(demo, manifest, service, env, syncs))
    # One dump of every reconciler object and event, as ``kubectl get applications,kustomizations,
    # events -A -o json`` gives it: one import is one store unit and one derivation of the
    # deployments, where a file per kind cost a unit each and re-derived the objects' deployments.
    path = out / DUMP_FILE
    items = [*apps, *events, *kustomizations, *flux_events]
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=1) + "\n")
    demo.cli("import", str(path))
    demo.say(
        f"imported reconciler history of {len(apps)} Argo CD Applications and "
        f"{len(kustomizations)} Flux Kustomizations"
    )
