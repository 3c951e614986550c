"""Argo CD: Applications (automated sync, selfHeal, prune), AppProjects and ApplicationSets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from assessment.detectors import Finding
from assessment.documents import Document, SourceFile

GROUP = "argoproj.io"


def scan(f: SourceFile) -> Iterator[Finding]:
    for doc in f.documents:
        if doc.group != GROUP:
            continue
        if doc.kind == "Application":
            yield Finding(
                "argocd.application",
                f"Argo CD Application {doc.name}" + (" (templated)" if doc.templated else ""),
                f.path,
                doc.line_of(r"^kind:"),
            )
            yield from _sync_policy(f, doc, doc.spec, "Application")
            yield from _sources(f, doc, doc.spec)
            yield from _destination(f, doc)
        elif doc.kind == "AppProject":
            yield from _project(f, doc)
        elif doc.kind == "ApplicationSet":
            yield from _appset(f, doc)


def _destination(f: SourceFile, doc: Document) -> Iterator[Finding]:
    """Where an Application deploys: a cluster (server or name) and a namespace."""
    dest = doc.spec.get("destination")
    if not isinstance(dest, dict):
        return
    cluster = dest.get("name") or dest.get("server") or "in-cluster"
    namespace = dest.get("namespace") or "-"
    if any("TEMPLATED" in str(v) or "{{" in str(v) for v in (cluster, namespace)):
        return
    target = f"{cluster} {namespace}"
    yield Finding("argocd.destination", f"Application {doc.name} deploys to {target}", f.path,
                  doc.line_of(r"^\s+destination:"), value=target)


def _sync_policy(f: SourceFile, doc: Document, spec: dict[str, Any], what: str) -> Iterator[Finding]:
    policy = spec.get("syncPolicy")
    automated = policy.get("automated") if isinstance(policy, dict) else None
    if automated is None and doc.body is None and "automated:" in doc.text:  # unparsable template
        automated = {"selfHeal": "selfHeal: true" in doc.text, "prune": "prune: true" in doc.text}
    if automated is None or automated is False:
        yield Finding(
            "argocd.manual-sync",
            f"{what} {doc.name} syncs only when someone asks",
            f.path,
            doc.line_of(r"^kind:"),
        )
        return
    automated = automated if isinstance(automated, dict) else {}
    if automated.get("enabled") is False:
        yield Finding(
            "argocd.manual-sync",
            f"{what} {doc.name} has automated sync disabled",
            f.path,
            doc.line_of(r"^\s+automated:"),
        )
        return
    yield Finding(
        "argocd.automated", f"{what} {doc.name} syncs automatically", f.path, doc.line_of(r"^\s+automated:")
    )
    if automated.get("selfHeal") is True:
        yield Finding(
            "argocd.self-heal",
            f"{what} {doc.name} self-heals drift (automated.selfHeal)",
            f.path,
            doc.line_of(r"^\s+selfHeal:"),
        )
    else:
        yield Finding(
            "argocd.no-self-heal",
            f"{what} {doc.name} detects drift but does not correct it (selfHeal off)",
            f.path,
            doc.line_of(r"^\s+automated:"),
        )
    if automated.get("prune") is True:
        yield Finding(
            "argocd.prune", f"{what} {doc.name} prunes removed objects", f.path, doc.line_of(r"^\s+prune:")
        )


def _sources(f: SourceFile, doc: Document, spec: dict[str, Any]) -> Iterator[Finding]:
    sources = [spec["source"]] if isinstance(spec.get("source"), dict) else []
    sources += [s for s in spec.get("sources") or [] if isinstance(s, dict)]
    for src in sources:
        helm = src.get("helm")
        if src.get("chart") or isinstance(helm, dict):
            yield Finding(
                "argocd.helm-source",
                f"Application {doc.name} deploys a Helm chart",
                f.path,
                doc.line_of(r"^\s+(chart|helm):"),
            )
        if isinstance(helm, dict) and any(
            helm.get(k) for k in ("valueFiles", "values", "valuesObject", "parameters")
        ):
            yield Finding(
                "argocd.helm-values",
                f"Application {doc.name} customises its chart with values",
                f.path,
                doc.line_of(r"^\s+(valueFiles|values|valuesObject|parameters):"),
            )
        if isinstance(src.get("kustomize"), dict):
            yield Finding(
                "argocd.kustomize-source",
                f"Application {doc.name} builds with Kustomize",
                f.path,
                doc.line_of(r"^\s+kustomize:"),
            )


def _restricted(values: Any) -> bool:
    if not isinstance(values, list) or not values:
        return False
    return not any(
        v == "*"
        or (
            isinstance(v, dict)
            and v.get("namespace") == "*"
            and v.get("server", "*") == "*"
            and v.get("name", "*") == "*"
        )
        for v in values
    )


def _project(f: SourceFile, doc: Document) -> Iterator[Finding]:
    spec = doc.spec
    line = doc.line_of(r"^kind:")
    yield Finding("argocd.appproject", f"Argo CD AppProject {doc.name}", f.path, line)
    if doc.name != "default" and (
        _restricted(spec.get("sourceRepos")) or _restricted(spec.get("destinations")) or spec.get("roles")
    ):
        yield Finding(
            "argocd.restricted-project",
            f"AppProject {doc.name} restricts sources, destinations or roles",
            f.path,
            line,
            value=doc.name,
        )


def _generator_kinds(generators: Any) -> set[str]:
    """Generator names, looking inside matrix and merge generators."""
    kinds: set[str] = set()
    for gen in generators if isinstance(generators, list) else []:
        if not isinstance(gen, dict):
            continue
        for key, value in gen.items():
            kinds.add(key)
            if key in ("matrix", "merge") and isinstance(value, dict):
                kinds |= _generator_kinds(value.get("generators"))
    return kinds


def _appset(f: SourceFile, doc: Document) -> Iterator[Finding]:
    spec = doc.spec
    kinds = _generator_kinds(spec.get("generators"))
    if not kinds and "clusters:" in doc.text:  # unparsable template
        kinds = {"clusters"}
    yield Finding(
        "argocd.applicationset",
        f"Argo CD ApplicationSet {doc.name} (generators: {', '.join(sorted(kinds)) or '?'})",
        f.path,
        doc.line_of(r"^kind:"),
    )
    if "clusters" in kinds:
        yield Finding(
            "argocd.cluster-generator",
            f"ApplicationSet {doc.name} deploys to every matching registered cluster",
            f.path,
            doc.line_of(r"^\s+- clusters:|^\s+clusters:"),
        )
    template = spec.get("template")
    tspec = template.get("spec") if isinstance(template, dict) else None
    if isinstance(tspec, dict):
        yield from _sync_policy(f, doc, tspec, "ApplicationSet")
        yield from _sources(f, doc, tspec)
    # `{{` survives in the raw text even though the parsed copy has the parameters blanked
    template_text = doc.text.split("template:", 1)[1] if "template:" in doc.text else ""
    if kinds and "{{" in template_text:
        yield Finding(
            "argocd.appset-parameters",
            f"ApplicationSet {doc.name} customises each generated Application from generator parameters",
            f.path,
            doc.line_of(r"\{\{"),
        )
