"""Container image references, wherever they are declared: pinned by version tag or digest, versus
``:latest`` or no tag.

Read from ``image:`` strings; Helm values (``image: {registry, repository, tag, digest}`` and
``repository``/``tag`` pairs at any depth, so a HelmRelease's ``spec.values`` counts too);
kustomize ``images:``; Argo CD ``kustomize.images`` and ``helm.parameters``; and Flux
``ImagePolicy`` (image automation writes the chosen version tags into git). Wildcards and ranges
(``:*``, ``1.x``, ``~1.2``, ``>=1.0``) are patterns, never pins: they are not judged either way.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from assessment.detectors import Finding
from assessment.documents import Document, SourceFile

_SKIP_FILES = {"Chart.yaml", ".sops.yaml", ".drone.yml", "bitbucket-pipelines.yml", "azure-pipelines.yml"}
# CI jobs and local compose files run images but do not deploy them: not judged.
_NOT_DEPLOYED_DIRS = (".github/", ".circleci/", ".buildkite/", ".gitlab/")
_COMPOSE = re.compile(r"^(docker-)?compose([.-][\w.-]+)?\.ya?ml$")
_UNRESOLVED = ("TEMPLATED", "${", "$(", "{{")
# Policies match images by pattern (Kyverno verifyImages `...:*`): not references.
_POLICY_GROUPS = ("kyverno.io", "templates.gatekeeper.sh", "constraints.gatekeeper.sh")
_PATTERN_TAG = re.compile(r"[*?^~<>=|\s]|(^|\.)[xX](\.|$)")
_SEMVERISH = re.compile(r"^v?\d")


def classify(ref: str) -> str:
    """``digest``, ``tag``, ``latest``, ``untagged`` (which pulls latest) or ``pattern``."""
    if "@sha256:" in ref:
        return "digest"
    if "*" in ref:
        return "pattern"
    last = ref.rsplit("/", 1)[-1]
    if ":" not in last:
        return "untagged"
    return tag_class(last.split(":", 1)[1])


def tag_class(tag: str) -> str:
    if tag == "latest":
        return "latest"
    if _PATTERN_TAG.search(tag) or (tag.count(".") < 2 and tag.endswith(".x")):
        return "pattern"
    return "tag"


class _Lines:
    """Exact line numbers: the n-th match of a pattern in a document is the n-th reference."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.after: dict[str, int] = {}

    def of(self, pattern: str) -> int:
        compiled = re.compile(pattern, re.MULTILINE)
        m = compiled.search(self.doc.text, self.after.get(pattern, 0))
        if m is None:
            m = compiled.search(self.doc.text)
            if m is None:
                return self.doc.line_of(pattern)
        else:
            self.after[pattern] = m.end()
        return self.doc.line + self.doc.text.count("\n", 0, m.start())


def _finding(doc: Document, ref: str, how: str, line: int, how_read: str = "") -> Finding | None:
    if how == "pattern":
        return None
    suffix = f" ({how_read})" if how_read else ""
    if how in ("latest", "untagged"):
        text = "uses :latest" if how == "latest" else "has no tag (pulls latest)"
        return Finding("images.latest", f"image {ref} {text}{suffix}", doc.path, line, value=ref)
    text = "pinned by digest" if how == "digest" else "pinned to a version tag"
    return Finding("images.pinned", f"image {ref} {text}{suffix}", doc.path, line, value=ref)


def _unresolved(value: Any) -> bool:
    return any(u in str(value) for u in _UNRESOLVED)


def _walk(node: Any, doc: Document, lines: _Lines, seen: set[int] | None = None) -> Iterator[Finding]:
    """Every image; ``seen`` stops YAML aliases (a "billion laughs" file) from exploding."""
    seen = set() if seen is None else seen
    if isinstance(node, dict | list):
        if id(node) in seen:
            return
        seen.add(id(node))
    if isinstance(node, dict):
        if _is_values_image(node):
            yield from _values_image(node, doc, lines)
            return
        for key, value in node.items():
            if key == "image" and isinstance(value, str):
                if value and not _unresolved(value):
                    f = _finding(doc, value, classify(value),
                                 lines.of(rf"image:\s*[\"']?{re.escape(value)}"))
                    if f:
                        yield f
            else:
                yield from _walk(value, doc, lines, seen)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item, doc, lines, seen)


def _is_values_image(node: dict[str, Any]) -> bool:
    repo = node.get("repository")
    return isinstance(repo, str) and bool(repo) and ("tag" in node or "digest" in node or "registry" in node
                                                     or "pullPolicy" in node)


def _values_image(image: dict[str, Any], doc: Document, lines: _Lines) -> Iterator[Finding]:
    """Helm values style: [registry/]repository + tag/digest; an empty tag means the chart's appVersion."""
    repo = str(image["repository"])
    if _unresolved(repo) or "/" not in repo and "tag" not in image and "digest" not in image:
        return
    registry = image.get("registry")
    if isinstance(registry, str) and registry and not _unresolved(registry):
        repo = f"{registry.rstrip('/')}/{repo}"
    line = lines.of(rf"repository:\s*[\"']?{re.escape(str(image['repository']))}")
    tag, digest = image.get("tag"), image.get("digest")
    if digest and not _unresolved(digest):
        f = _finding(doc, f"{repo}@{digest}", "digest", line, "Helm values")
    elif tag in (None, ""):
        f = Finding("images.pinned", f"image {repo} uses the chart appVersion as its tag (Helm values)",
                    doc.path, line, value=repo)
    elif _unresolved(tag):
        return
    else:
        f = _finding(doc, f"{repo}:{tag}", tag_class(str(tag)), line, "Helm values")
    if f:
        yield f


def _kustomize_images(doc: Document, images: Any, lines: _Lines) -> Iterator[Finding]:
    for entry in images if isinstance(images, list) else []:
        if not isinstance(entry, dict) or not entry.get("name"):
            continue
        name = str(entry.get("newName") or entry["name"])
        tag = str(entry.get("newTag") or "")
        if entry.get("digest") or (tag and tag_class(tag) == "tag"):
            # The base's reference to this image is replaced at build time, whatever tag it has.
            yield Finding("images.override", f"kustomize pins {entry['name']}", doc.path,
                          lines.of(rf"name:\s*[\"']?{re.escape(str(entry['name']))}"),
                          value=str(entry["name"]))
        if entry.get("digest"):
            f = _finding(doc, f"{name}@{entry['digest']}", "digest", lines.of(r"^\s+digest:"), "kustomize")
        elif tag:
            f = _finding(doc, f"{name}:{tag}", tag_class(tag), lines.of(r"^\s+newTag:"), "kustomize")
        else:
            continue
        if f:
            yield f


def _argocd(doc: Document, lines: _Lines) -> Iterator[Finding]:
    spec = doc.spec
    sources = [spec.get("source")] + list(spec.get("sources") or [])
    template = spec.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):  # ApplicationSet
        tspec = template["spec"]
        sources += [tspec.get("source")] + list(tspec.get("sources") or [])
    for src in sources:
        if not isinstance(src, dict):
            continue
        kustomize = src.get("kustomize")
        if isinstance(kustomize, dict):
            for ref in kustomize.get("images") or []:
                if not isinstance(ref, str) or _unresolved(ref):
                    continue
                image = ref.split("=", 1)[-1]
                f = _finding(doc, image, classify(image), lines.of(rf"-\s*[\"']?{re.escape(ref)}"),
                             "Argo CD kustomize.images")
                if f:
                    yield f
        helm = src.get("helm")
        params = helm.get("parameters") if isinstance(helm, dict) else None
        if isinstance(params, list):
            by_name = {str(p.get("name")): p.get("value") for p in params if isinstance(p, dict)}
            for name, value in by_name.items():
                if not name.endswith("repository") or not isinstance(value, str) or _unresolved(value):
                    continue
                prefix = name[: -len("repository")]
                tag = by_name.get(prefix + "tag")
                line = lines.of(rf"name:\s*[\"']?{re.escape(name)}")
                if tag is None or _unresolved(tag):
                    continue
                f = _finding(doc, f"{value}:{tag}", tag_class(str(tag)), line, "Argo CD helm.parameters")
                if f:
                    yield f


def _image_policy(doc: Document) -> Iterator[Finding]:
    policy = doc.spec.get("policy")
    if not isinstance(policy, dict):
        return
    semver = policy.get("semver")
    if isinstance(semver, dict) and semver.get("range"):
        yield Finding(
            "images.automation",
            f"ImagePolicy {doc.name} selects versions by semver range {semver['range']}; "
            "image automation commits the chosen tag",
            doc.path,
            doc.line_at("spec", "policy", "semver", "range"),
            value=doc.name,
        )


def scan(f: SourceFile) -> Iterator[Finding]:
    if f.basename.startswith("kustomization."):
        for doc in f.documents:
            if isinstance(doc.body, dict):
                yield from _kustomize_images(doc, doc.body.get("images"), _Lines(doc))
        return
    if (f.basename in _SKIP_FILES or f.path.startswith(_NOT_DEPLOYED_DIRS)
            or f.basename.startswith(".gitlab-ci") or _COMPOSE.match(f.basename)):
        return
    for doc in f.documents:
        if doc.group.startswith(_POLICY_GROUPS):
            continue
        if doc.kind == "ImagePolicy" and doc.group.startswith("image.toolkit.fluxcd.io"):
            yield from _image_policy(doc)
            continue
        lines = _Lines(doc)
        if doc.kind in ("Application", "ApplicationSet") and doc.group == "argoproj.io":
            yield from _argocd(doc, lines)
            continue
        # most documents name no image: skip their parse
        text = doc.text
        if "image" in text or ("repository:" in text and ("tag:" in text or "digest:" in text)):
            yield from _walk(doc.body, doc, lines)
