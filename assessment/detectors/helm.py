"""Helm: charts (Chart.yaml) and charts with several values files (per-environment values)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Sequence

from assessment.detectors import Finding
from assessment.documents import SourceFile

_VALUES = re.compile(r"^values(?:[-.]([\w-]+))?\.ya?ml$")


def scan(f: SourceFile) -> Iterator[Finding]:
    if f.basename != "Chart.yaml":
        return
    for doc in f.documents[:1]:
        body = doc.body if isinstance(doc.body, dict) else {}
        name = body.get("name") or f.dirname or "."
        version = body.get("version")
        yield Finding(
            "helm.chart",
            f"Helm chart {name} {version or ''}".strip(),
            f.path,
            doc.line_at("name", fallback=r"^name:"),
            value=f.dirname,
        )


def layout(paths: Sequence[str]) -> Iterator[Finding]:
    charts = {p.rsplit("/", 1)[0] if "/" in p else "" for p in paths if p.rsplit("/", 1)[-1] == "Chart.yaml"}
    values: dict[str, list[str]] = defaultdict(list)
    for p in paths:
        d, _, name = p.rpartition("/")
        if d in charts and _VALUES.match(name):
            values[d].append(p)
    for chart_dir, files in sorted(values.items()):
        variants = [
            (m.group(1), f)
            for f in sorted(files)
            if (m := _VALUES.match(f.rsplit("/", 1)[-1])) and m.group(1)
        ]
        if not variants:
            continue
        yield Finding(
            "helm.values-variants",
            f"chart {chart_dir or '.'} has values for {', '.join(e for e, _ in variants)}",
            f"{chart_dir}/" if chart_dir else "./",
            None,
            value=chart_dir,
        )
        for env, path in variants:
            # A values file alone is not an environment: only what targets another cluster or
            # namespace is (cluster directories, overlays, Argo CD destinations).
            yield Finding("helm.values-file", f"values file {env} (a variant, not an environment)", path,
                          None, value=env)
