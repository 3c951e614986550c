"""Cluster evidence: installed CRDs, namespaces and controllers, from a kubectl dump or a live cluster.

A dump is what ``kubectl get crd,ns,deploy,sts -A -o yaml`` prints (a ``List``), or any YAML/JSON
stream of objects. Live reconciler objects in the dump (Flux Kustomizations, Argo CD Applications,
policies, Rollouts) go through the same detectors as files; plain objects do not, because a running
object is not a declaration kept in git.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from analytics.errors import SourceError
from analytics.user_files import MB, read_user_text
from assessment.detectors import Finding, argocd, flux, policy, progressive, secrets
from assessment.documents import Document, SourceFile

_CRDS = (  # (suffix of the CRD name, signal, what it shows)
    (".toolkit.fluxcd.io", "cluster.reconciler", "Flux"),
    ("applications.argoproj.io", "cluster.reconciler", "Argo CD"),
    ("rollouts.argoproj.io", "cluster.progressive", "Argo Rollouts"),
    ("canaries.flagger.app", "cluster.progressive", "Flagger"),
    (".kyverno.io", "cluster.policy", "Kyverno"),
    ("constrainttemplates.templates.gatekeeper.sh", "cluster.policy", "Gatekeeper"),
    ("sealedsecrets.bitnami.com", "cluster.secrets", "Sealed Secrets"),
    ("externalsecrets.external-secrets.io", "cluster.secrets", "External Secrets"),
)
_NAMESPACES = {
    "flux-system": ("cluster.reconciler", "Flux"),
    "argocd": ("cluster.reconciler", "Argo CD"),
    "kyverno": ("cluster.policy", "Kyverno"),
    "gatekeeper-system": ("cluster.policy", "Gatekeeper"),
    "argo-rollouts": ("cluster.progressive", "Argo Rollouts"),
    "flagger-system": ("cluster.progressive", "Flagger"),
    "external-secrets": ("cluster.secrets", "External Secrets"),
}
_CONTROLLERS = {
    "kustomize-controller": ("cluster.reconciler", "Flux"),
    "source-controller": ("cluster.reconciler", "Flux"),
    "helm-controller": ("cluster.reconciler", "Flux"),
    "argocd-application-controller": ("cluster.reconciler", "Argo CD"),
    "kyverno-admission-controller": ("cluster.policy", "Kyverno"),
    "gatekeeper-controller-manager": ("cluster.policy", "Gatekeeper"),
    "flagger": ("cluster.progressive", "Flagger"),
    "argo-rollouts": ("cluster.progressive", "Argo Rollouts"),
    "sealed-secrets-controller": ("cluster.secrets", "Sealed Secrets"),
    "external-secrets": ("cluster.secrets", "External Secrets"),
}
_LIVE_DETECTORS = (flux.scan, argocd.scan, policy.scan, progressive.scan, secrets.scan)


# `kubectl get ... -A -o yaml` of a large cluster's GitOps objects runs to tens of MB; a file past
# this is not a dump of them, and reading it whole would only exhaust memory.
DUMP_LIMIT = 512 * MB

def _items(raw: Any) -> Iterator[dict[str, Any]]:
    if isinstance(raw, dict):
        if isinstance(raw.get("items"), list):  # kind: List, or a list response
            for item in raw["items"]:
                yield from _items(item)
        elif raw.get("kind"):
            yield raw
    elif isinstance(raw, list):
        for item in raw:
            yield from _items(item)


def load_dump(path: Path) -> list[dict[str, Any]]:
    text = read_user_text(path, "cluster dump", limit=DUMP_LIMIT, error=SourceError)
    try:
        docs: Iterable[Any] = (
            [json.loads(text)]
            if text.lstrip().startswith(("{", "["))
            else list(yaml.load_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
        )
    except (ValueError, yaml.YAMLError) as exc:
        raise SourceError(
            f"cluster dump {path} is neither YAML nor JSON: {str(exc).splitlines()[0]}"
        ) from None
    objects = [o for d in docs for o in _items(d)]
    if not objects:
        raise SourceError(f"cluster dump {path} holds no Kubernetes objects")
    return objects


def _ref(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{obj.get('kind')} {ns + '/' if ns else ''}{meta.get('name', '?')}"


def cluster_findings(objects: list[dict[str, Any]], origin: str) -> list[Finding]:
    """Findings from live objects; ``origin`` names the dump file or the kube context."""
    found = [
        Finding(
            "cluster.kubernetes", f"live Kubernetes API ({len(objects)} objects in {origin})", object=origin
        )
    ]
    seen: set[tuple[str, str, str]] = set()  # one CRD, one namespace, one controller per tool

    def add(signal: str, what: str, obj: dict[str, Any], why: str) -> None:
        if (signal, what, why) not in seen:
            seen.add((signal, what, why))
            found.append(Finding(signal, f"{what} installed ({why})", object=_ref(obj)))

    for obj in objects:
        kind = obj.get("kind")
        name = str((obj.get("metadata") or {}).get("name", ""))
        if kind == "CustomResourceDefinition":
            for suffix, signal, what in _CRDS:
                if name.endswith(suffix):
                    add(signal, what, obj, "CRD")
        elif kind == "Namespace" and name in _NAMESPACES:
            add(_NAMESPACES[name][0], _NAMESPACES[name][1], obj, "namespace")
        elif kind in {"Deployment", "StatefulSet"} and name in _CONTROLLERS:
            add(_CONTROLLERS[name][0], _CONTROLLERS[name][1], obj, "controller")
        elif isinstance(obj.get("apiVersion"), str):
            doc = Document(path=origin, line=0, text="", object_ref=_ref(obj), preset=obj)
            file = SourceFile(origin, "", _docs=[doc])
            for detect in _LIVE_DETECTORS:
                for f in detect(file):
                    found.append(Finding(f.signal, f"{f.detail} (live)", object=doc.ref, value=f.value))
    return found


def live_objects(context: str | None) -> list[dict[str, Any]]:
    """CRDs, namespaces and controllers read through the kubernetes client (kubeconfig context)."""
    from kubernetes import client, config  # heavy: imported only when a cluster is asked for
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException

    try:  # $KUBECONFIG read now, not when the kubernetes package was first imported
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"), context=context)
    except (ConfigException, OSError) as exc:
        raise SourceError(f"kube context {context or '(current)'}: {exc}") from None
    api = client.ApiClient()
    try:
        batches = [
            client.ApiextensionsV1Api(api).list_custom_resource_definition(),
            client.CoreV1Api(api).list_namespace(),
            client.AppsV1Api(api).list_deployment_for_all_namespaces(),
            client.AppsV1Api(api).list_stateful_set_for_all_namespaces(),
        ]
    except ApiException as exc:
        raise SourceError(
            f"kube context {context or '(current)'}: API error {exc.status}: {_status_message(exc)}"
        ) from None
    except Exception as exc:  # noqa: BLE001 - connection errors come in many urllib3 shapes
        raise SourceError(f"kube context {context or '(current)'}: cannot reach the API: {exc}") from None
    kinds = ("CustomResourceDefinition", "Namespace", "Deployment", "StatefulSet")
    objects = []
    for kind, batch in zip(kinds, batches, strict=True):
        for item in api.sanitize_for_serialization(batch).get("items", []):
            objects.append({"kind": kind, **item})
    return objects


def _status_message(exc: Any) -> str:
    """The API server's Status message (why access was refused), else the HTTP reason."""
    try:
        body = json.loads(exc.body or "")
        return str(body.get("message") or exc.reason)
    except (ValueError, AttributeError):
        return str(exc.reason)
