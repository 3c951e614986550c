"""Progressive delivery: Flagger Canary, Argo Rollouts Rollout and AnalysisTemplate."""

from __future__ import annotations

from collections.abc import Iterator

from assessment.detectors import Finding
from assessment.documents import SourceFile


def scan(f: SourceFile) -> Iterator[Finding]:
    for doc in f.documents:
        suffix = " (templated)" if doc.templated else ""
        if doc.group == "flagger.app" and doc.kind == "Canary":
            yield Finding(
                "progressive.canary", f"Flagger Canary {doc.name}{suffix}", f.path, doc.line_of(r"^kind:")
            )
        elif doc.group == "argoproj.io" and doc.kind == "Rollout":
            strategy = doc.spec.get("strategy")
            how = ", ".join(strategy) if isinstance(strategy, dict) else "strategy in template"
            yield Finding(
                "progressive.rollout",
                f"Argo Rollouts Rollout {doc.name} ({how}){suffix}",
                f.path,
                doc.line_of(r"^kind:"),
            )
        elif doc.group == "argoproj.io" and doc.kind in {"AnalysisTemplate", "ClusterAnalysisTemplate"}:
            yield Finding(
                "progressive.analysis", f"Argo Rollouts {doc.ref}{suffix}", f.path, doc.line_of(r"^kind:")
            )
