"""Plain Kubernetes manifests: any document with apiVersion and kind, workloads, plain Secrets."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from assessment.detectors import Finding
from assessment.documents import SourceFile

WORKLOAD_KINDS = {
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "Pod",
    "ReplicaSet",
    "Rollout",
    "Service",
    "Ingress",
}
_NOT_MANIFESTS = {"kustomize.config.k8s.io", "helm.cattle.io"}  # build configs, not cluster objects
INFRA_DIRS = {"infrastructure", "infra"}
# What declares the cluster itself, wherever the file lives: API extensions, cluster-wide config,
# RBAC and policy, networking entry points.
CLUSTER_KINDS = {
    "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "StorageClass", "PriorityClass",
    "IngressClass", "GatewayClass", "Gateway", "ClusterIssuer", "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration", "APIService", "ResourceQuota", "LimitRange", "ClusterPolicy",
    "ConstraintTemplate", "IstioOperator", "PeerAuthentication", "ClusterSecretStore", "RuntimeClass",
}
# Charts that install cluster add-ons (control planes, gateways, policy engines, operators).
ADDON_CHARTS = re.compile(
    r"(^|[/-])(istio|istiod|istio-ingressgateway|cert-manager|ingress-nginx|nginx-ingress|traefik|envoy-gateway|"
    r"kyverno|gatekeeper|external-dns|external-secrets|sealed-secrets|metallb|cilium|calico|tigera-operator|"
    r"kube-prometheus-stack|prometheus-operator|metrics-server|cluster-autoscaler|karpenter|"
    r"aws-load-balancer-controller|velero|longhorn|rook-ceph|linkerd[\w-]*|flagger|argo-rollouts|"
    r"csi-[\w-]+|[\w-]+-csi-driver|contour|kong|vault|crossplane|tf-controller|capi-operator)$"
)


def _addon_chart(spec: dict[str, Any], kind: str = "Application") -> str | None:
    """The add-on chart (or path) a HelmRelease, Application or ApplicationSet installs. An
    ApplicationSet's Applications are its ``spec.template``: the usual way to put one add-on on
    every cluster of a fleet (a clusters generator)."""
    if kind == "ApplicationSet":
        template = spec.get("template")
        inner = template.get("spec") if isinstance(template, dict) else None
        return _addon_chart(inner) if isinstance(inner, dict) else None
    chart = spec.get("chart")
    names: list[Any] = []
    if isinstance(chart, dict) and isinstance(chart.get("spec"), dict):  # Flux HelmRelease
        names.append(chart["spec"].get("chart"))
    sources = [spec.get("source"), *(spec.get("sources") or [])]  # Argo CD Application
    names += [src.get("chart") or src.get("path") for src in sources if isinstance(src, dict)]
    for name in names:
        if isinstance(name, str) and ADDON_CHARTS.search(name.rstrip("/")):
            return name
    return None


def scan(f: SourceFile) -> Iterator[Finding]:
    if f.basename in {"Chart.yaml", "values.yaml", ".sops.yaml"} or f.path.startswith(".github/"):
        return
    in_infra = bool(INFRA_DIRS.intersection(f.path.split("/")[:-1]))
    for doc in f.documents:
        if not doc.is_object or doc.group in _NOT_MANIFESTS:
            continue
        line = doc.line_of(r"^kind:")
        yield Finding("k8s.manifest", f"{doc.api_version} {doc.ref}", f.path, line)
        if doc.kind in WORKLOAD_KINDS:
            yield Finding("k8s.workload", f"workload {doc.ref}", f.path, line)
        if in_infra:
            yield Finding("k8s.infra-manifest", f"cluster infrastructure {doc.ref}", f.path, line)
        elif doc.kind in CLUSTER_KINDS:
            yield Finding("k8s.infra-manifest", f"cluster configuration {doc.ref}", f.path, line)
        elif doc.kind in ("HelmRelease", "Application", "ApplicationSet") and (
                chart := _addon_chart(doc.spec, doc.kind)):
            yield Finding("k8s.infra-manifest", f"cluster add-on chart {chart} ({doc.ref})", f.path, line)
        if doc.kind == "Secret" and doc.group == "" and isinstance(doc.body, dict):
            has_data = bool(doc.body.get("data") or doc.body.get("stringData"))
            if has_data and "sops" not in doc.body:
                yield Finding(
                    "k8s.plain-secret",
                    f"Secret {doc.name} holds unencrypted data",
                    f.path,
                    doc.line_at("data" if doc.body.get("data") else "stringData"),
                )
