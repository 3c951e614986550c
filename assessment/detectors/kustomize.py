"""Kustomize: kustomization files, overlays that patch a base, and components."""

from __future__ import annotations

from collections.abc import Iterator

from assessment.detectors import Finding
from assessment.documents import SourceFile

KUSTOMIZATION_FILES = {"kustomization.yaml", "kustomization.yml", "Kustomization"}
_CUSTOMISING_KEYS = (
    "patches",
    "patchesStrategicMerge",
    "patchesJson6902",
    "images",
    "replicas",
    "namePrefix",
    "nameSuffix",
    "configMapGenerator",
    "commonLabels",
    "labels",
)


def scan(f: SourceFile) -> Iterator[Finding]:
    if f.basename not in KUSTOMIZATION_FILES:
        return
    for doc in f.documents:
        body = doc.body if isinstance(doc.body, dict) else {}
        if doc.kind == "Component":
            yield Finding("kustomize.component", f"Kustomize component {f.dirname or '.'}", f.path,
                          doc.line_of(r"^kind:"))
            continue
        yield Finding(
            "kustomize.kustomization",
            f"kustomization in {f.dirname or '.'}",
            f.path,
            doc.first_line("kind", "resources", "bases"),
            value=f.dirname,
        )
        refs = [r for key in ("resources", "bases") for r in (body.get(key) or []) if isinstance(r, str)]
        parent_refs = [r for r in refs if r.startswith("../")]
        customised = [k for k in _CUSTOMISING_KEYS if body.get(k)]
        if parent_refs and customised:
            yield Finding(
                "kustomize.overlay",
                f"overlay of {parent_refs[0]} customised with {', '.join(customised)}",
                f.path,
                doc.line_at(customised[0]),
                value=f.dirname,
            )
        if body.get("components"):
            yield Finding(
                "kustomize.component",
                f"uses components {body['components']}",
                f.path,
                doc.line_at("components"),
            )
