"""Plain Kubernetes manifests: any document with apiVersion and kind, workloads, plain Secrets."""

from __future__ import annotations

from collections.abc import Iterator

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
        if doc.kind == "Secret" and doc.group == "" and isinstance(doc.body, dict):
            has_data = bool(doc.body.get("data") or doc.body.get("stringData"))
            if has_data and "sops" not in doc.body:
                yield Finding(
                    "k8s.plain-secret",
                    f"Secret {doc.name} holds unencrypted data",
                    f.path,
                    doc.line_of(r"^(data|stringData):"),
                )
