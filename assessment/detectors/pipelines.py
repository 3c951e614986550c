"""CI pipelines that push to clusters (kubectl apply, helm upgrade): evidence against pull-based."""

from __future__ import annotations

import re
from collections.abc import Iterator

from assessment.detectors import Finding
from assessment.documents import SourceFile

_PUSH = re.compile(r"\b(kubectl\s+(apply|create|replace|set\s+image|patch)|helm\s+(upgrade|install))\b")


def _is_pipeline(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return (
        path.startswith(".github/workflows/")
        or name in {".gitlab-ci.yml", "Jenkinsfile", "azure-pipelines.yml", "bitbucket-pipelines.yml"}
        or path.startswith(".circleci/")
    )


def scan(f: SourceFile) -> Iterator[Finding]:
    if not _is_pipeline(f.path):
        return
    for n, line in enumerate(f.text.splitlines(), start=1):
        m = _PUSH.search(line)
        if m and not line.lstrip().startswith("#"):
            yield Finding("push.ci-deploy", f"CI pushes to a cluster: {m.group(0)}", f.path, n)
