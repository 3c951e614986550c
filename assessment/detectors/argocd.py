"""Argo CD: Applications (automated sync, selfHeal, prune), AppProjects and ApplicationSets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from assessment.detectors import Finding
from assessment.detectors.layout import normalise_path
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
            yield from _sync_policy(f, doc, doc.spec, "Application", ("spec",))
            yield from _sources(f, doc, doc.spec, ("spec",))
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
                  doc.line_at("spec", "destination"), value=target)


def _sync_policy(
    f: SourceFile, doc: Document, spec: dict[str, Any], what: str, at: tuple[str, ...]
) -> Iterator[Finding]:
    """``at``: where ``spec`` sits in the document (an ApplicationSet's is its template's spec)."""
    policy = spec.get("syncPolicy")
    automated_at = (*at, "syncPolicy", "automated")
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
            doc.line_at(*automated_at, "enabled", fallback=r"^\s+automated:"),
        )
        return
    yield Finding(
        "argocd.automated", f"{what} {doc.name} syncs automatically", f.path,
        doc.line_at(*automated_at, fallback=r"^\s+automated:"),
    )
    if automated.get("selfHeal") is True:
        yield Finding(
            "argocd.self-heal",
            f"{what} {doc.name} self-heals drift (automated.selfHeal)",
            f.path,
            doc.line_at(*automated_at, "selfHeal", fallback=r"^\s+selfHeal:"),
        )
    else:
        yield Finding(
            "argocd.no-self-heal",
            f"{what} {doc.name} detects drift but does not correct it (selfHeal off)",
            f.path,
            doc.line_at(*automated_at, fallback=r"^\s+automated:"),
        )
    if automated.get("prune") is True:
        yield Finding(
            "argocd.prune", f"{what} {doc.name} prunes removed objects", f.path,
            doc.line_at(*automated_at, "prune", fallback=r"^\s+prune:"),
        )


def _sources(f: SourceFile, doc: Document, spec: dict[str, Any], at: tuple[str, ...]) -> Iterator[Finding]:
    """Each source at its own lines: the second source's chart is not the first one's line."""
    located: list[tuple[dict[str, Any], tuple[str | int, ...]]] = []
    if isinstance(spec.get("source"), dict):
        located.append((spec["source"], (*at, "source")))
    sources = spec.get("sources")
    for i, src in enumerate(sources if isinstance(sources, list) else []):
        if isinstance(src, dict):
            located.append((src, (*at, "sources", i)))
    for src, where in located:
        helm = src.get("helm")
        if src.get("chart") or isinstance(helm, dict):
            yield Finding(
                "argocd.helm-source",
                f"Application {doc.name} deploys a Helm chart",
                f.path,
                doc.line_at(*where, "chart" if src.get("chart") else "helm", fallback=r"^\s+(chart|helm):"),
            )
        values = [k for k in ("valueFiles", "values", "valuesObject", "parameters")
                  if isinstance(helm, dict) and helm.get(k)]
        if values:
            yield Finding(
                "argocd.helm-values",
                f"Application {doc.name} customises its chart with values",
                f.path,
                doc.line_at(*where, "helm", values[0],
                            fallback=r"^\s+(valueFiles|values|valuesObject|parameters):"),
            )
        if isinstance(src.get("kustomize"), dict):
            yield Finding(
                "argocd.kustomize-source",
                f"Application {doc.name} builds with Kustomize",
                f.path,
                doc.line_at(*where, "kustomize", fallback=r"^\s+kustomize:"),
            )
        path = src.get("path")
        if isinstance(path, str) and not any(u in path for u in ("{{", "TEMPLATED", "${")):
            # What it builds: an overlay or cluster folder it names is an environment (rules).
            yield Finding(
                "argocd.path",
                f"Argo CD {doc.kind} {doc.name} builds {normalise_path(path) or '.'}",
                f.path,
                doc.line_at(*where, "path"),
                value=normalise_path(path),
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


Where = tuple[str | int, ...]


def _generator_paths(generators: Any, at: Where) -> Iterator[tuple[str, Where]]:
    """Every generator (inside matrix and merge too) with where it sits in the document."""
    for i, gen in enumerate(generators if isinstance(generators, list) else []):
        if not isinstance(gen, dict):
            continue
        for key, value in gen.items():
            yield key, (*at, i, key)
            if key in ("matrix", "merge") and isinstance(value, dict):
                yield from _generator_paths(value.get("generators"), (*at, i, key, "generators"))


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
    generators = list(_generator_paths(spec.get("generators"), ("spec", "generators")))
    if "clusters" in kinds:
        where = next((w for k, w in generators if k == "clusters"), ())
        yield Finding(
            "argocd.cluster-generator",
            f"ApplicationSet {doc.name} deploys to every matching registered cluster",
            f.path,
            doc.line_at(*where, fallback=r"^\s+- clusters:|^\s+clusters:"),
        )
    for key, where in generators:
        git = _at(spec, where[1:])
        dirs = git.get("directories") if key == "git" and isinstance(git, dict) else None
        for i, entry in enumerate(dirs if isinstance(dirs, list) else []):
            if isinstance(entry, dict) and isinstance(entry.get("path"), str) and not entry.get("exclude"):
                # each directory the git generator matches becomes an Application's source path
                yield Finding(
                    "argocd.path",
                    f"ApplicationSet {doc.name} generates an Application per directory {entry['path']}",
                    f.path,
                    doc.line_at(*where, "directories", i, "path"),
                    value=normalise_path(entry["path"]),
                )
    template = spec.get("template")
    tspec = template.get("spec") if isinstance(template, dict) else None
    if isinstance(tspec, dict):
        yield from _sync_policy(f, doc, tspec, "ApplicationSet", ("spec", "template", "spec"))
        yield from _sources(f, doc, tspec, ("spec", "template", "spec"))
    # `{{` survives in the raw text even though the parsed copy has the parameters blanked
    template_text = doc.text.split("template:", 1)[1] if "template:" in doc.text else ""
    if kinds and "{{" in template_text:
        yield Finding(
            "argocd.appset-parameters",
            f"ApplicationSet {doc.name} customises each generated Application from generator parameters",
            f.path,
            doc.line_of(r"\{\{", from_line=doc.line_at("spec", "template", fallback=r"^\s+template:")),
        )


def _at(node: Any, path: tuple[str | int, ...]) -> Any:
    """The value at ``path`` in a parsed body (None where the path does not lead)."""
    for step in path:
        if isinstance(node, dict) and isinstance(step, str):
            node = node.get(step)
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            node = node[step]
        else:
            return None
    return node
