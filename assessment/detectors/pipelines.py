"""CI pipelines that push to clusters (kubectl apply, helm upgrade): evidence against pull-based."""

from __future__ import annotations

import re
from collections.abc import Iterator

import yaml

from assessment.detectors import Finding
from assessment.documents import SourceFile

_PUSH = re.compile(r"\b(kubectl\s+(apply|create|replace|set\s+image|patch)|helm\s+(upgrade|install))\b")
# What changes no cluster: a dry run (kubectl's --dry-run=client|server, helm's --dry-run), as in
# `kubectl create secret ... --dry-run=client -o yaml | kubeseal` (an -o alone still applies).
_NO_CHANGE = re.compile(r"--dry-run\b")
# A job that makes its own throwaway cluster (kind, k3d, minikube) applies to that cluster to test
# the manifests: a smoke test, not a deployment. Judged per job (a GitHub Actions job, a GitLab CI
# job), so a workflow's smoke-test job does not hide its deploy job; per file for other CI files.
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


# GitLab CI's top-level keys that are not jobs
_GITLAB_KEYWORDS = {"default", "include", "stages", "variables", "workflow", "image", "services", "cache",
                    "before_script", "after_script"}


def _jobs(f: SourceFile) -> list[tuple[int, int]]:
    """The 0-based line ranges [start, end) of the file's jobs: ``jobs.<id>`` of a GitHub Actions
    workflow, the top-level mappings with a ``script`` of a GitLab CI file. Empty when the file has
    none (or is no YAML): it is then judged whole."""
    if not f.is_yaml or not f.documents:
        return []
    root = f.documents[0].nodes
    if not isinstance(root, yaml.MappingNode):
        return []
    base = f.documents[0].line - 1
    ranges: list[tuple[int, int]] = []
    for key, value in root.value:
        if not isinstance(key, yaml.ScalarNode):
            continue
        github_jobs = f.path.startswith(".github/workflows/") and key.value == "jobs"
        if github_jobs and isinstance(value, yaml.MappingNode):
            ranges += [(base + k.start_mark.line, base + v.end_mark.line + 1) for k, v in value.value]
        elif (f.basename == ".gitlab-ci.yml" and key.value not in _GITLAB_KEYWORDS
              and isinstance(value, yaml.MappingNode)
              and any(isinstance(k, yaml.ScalarNode) and k.value == "script" for k, _ in value.value)):
            ranges.append((base + key.start_mark.line, base + value.end_mark.line + 1))
    return ranges


def scan(f: SourceFile) -> Iterator[Finding]:
    if not _is_pipeline(f.path):
        return
    lines = f.text.splitlines()
    for start, end in _jobs(f) or [(0, len(lines))]:
        if _THROWAWAY_CLUSTER.search("\n".join(lines[start:end])):
            continue
        for n in range(start, min(end, len(lines))):
            line = lines[n]
            m = _PUSH.search(line)
            if m and not line.lstrip().startswith("#") and not _NO_CHANGE.search(line):
                yield Finding("push.ci-deploy", f"CI pushes to a cluster: {m.group(0)}", f.path, n + 1)
