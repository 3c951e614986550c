"""CI pipelines that push to clusters (kubectl apply, helm upgrade): evidence against pull-based."""

from __future__ import annotations

import re
from collections.abc import Iterator

from assessment.detectors import Finding
from assessment.documents import SourceFile

_PUSH = re.compile(r"\b(kubectl\s+(apply|create|replace|set\s+image|patch)|helm\s+(upgrade|install))\b")
# What changes no cluster: a dry run (kubectl's --dry-run=client|server, helm's --dry-run), as in
# `kubectl create secret ... --dry-run=client -o yaml | kubeseal` (an -o alone still applies).
_NO_CHANGE = re.compile(r"--dry-run\b")
# A pipeline that makes its own throwaway cluster (kind, k3d, minikube) applies to that cluster to
# test the manifests: a smoke test, not a deployment. Judged per file: such pipelines are test
# workflows.
_THROWAWAY_CLUSTER = re.compile(
    r"\bkind\s+create\s+cluster\b|helm/kind-action|\bk3d\s+cluster\s+create\b|k3d-action"
    r"|\bminikube\s+start\b|setup-minikube|\bk3s-action\b")


def _is_pipeline(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return (
        path.startswith(".github/workflows/")
        or name in {".gitlab-ci.yml", "Jenkinsfile", "azure-pipelines.yml", "bitbucket-pipelines.yml"}
        or path.startswith(".circleci/")
    )


def scan(f: SourceFile) -> Iterator[Finding]:
    if not _is_pipeline(f.path) or _THROWAWAY_CLUSTER.search(f.text):
        return
    for n, line in enumerate(f.text.splitlines(), start=1):
        m = _PUSH.search(line)
        if m and not line.lstrip().startswith("#") and not _NO_CHANGE.search(line):
            yield Finding("push.ci-deploy", f"CI pushes to a cluster: {m.group(0)}", f.path, n)
