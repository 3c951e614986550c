"""Container image references: pinned by version tag or digest, versus ``:latest`` or no tag."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from assessment.detectors import Finding
from assessment.documents import Document, SourceFile

_SKIP_FILES = {"Chart.yaml", ".sops.yaml", "kustomization.yaml", "kustomization.yml", ".drone.yml",
               "bitbucket-pipelines.yml", "azure-pipelines.yml"}
# CI jobs and local compose files run images but do not deploy them: not judged.
_NOT_DEPLOYED_DIRS = (".github/", ".circleci/", ".buildkite/", ".gitlab/")
_COMPOSE = re.compile(r"^(docker-)?compose([.-][\w.-]+)?\.ya?ml$")
_UNRESOLVED = ("TEMPLATED", "${", "$(")


def classify(ref: str) -> str:
    """``digest``, ``tag``, ``latest`` or ``untagged`` (which pulls latest)."""
    if "@sha256:" in ref:
        return "digest"
    last = ref.rsplit("/", 1)[-1]
    if ":" not in last:
        return "untagged"
    return "latest" if last.split(":", 1)[1] == "latest" else "tag"


def _finding(doc: Document, ref: str, how: str, pattern: str) -> Finding:
    line = doc.line_of(pattern)
    if how in ("latest", "untagged"):
        text = "uses :latest" if how == "latest" else "has no tag (pulls latest)"
        return Finding("images.latest", f"image {ref} {text}", doc.path, line, value=ref)
    text = "pinned by digest" if how == "digest" else "pinned to a version tag"
    return Finding("images.pinned", f"image {ref} {text}", doc.path, line, value=ref)


def _walk(node: Any, doc: Document, seen: set[int] | None = None) -> Iterator[Finding]:
    """Every `image:` value; ``seen`` stops YAML aliases (a "billion laughs" file) from exploding."""
    seen = set() if seen is None else seen
    if isinstance(node, dict | list):
        if id(node) in seen:
            return
        seen.add(id(node))
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "image" and isinstance(value, str):
                if value and not any(u in value for u in _UNRESOLVED):
                    yield _finding(doc, value, classify(value), rf"image:\s*[\"']?{re.escape(value)}")
            elif key == "image" and isinstance(value, dict) and isinstance(value.get("repository"), str):
                yield from _values_image(value, doc)
            else:
                yield from _walk(value, doc, seen)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item, doc, seen)


def _values_image(image: dict[str, Any], doc: Document) -> Iterator[Finding]:
    """Helm values style: repository + tag/digest; an empty tag means the chart's appVersion."""
    repo = str(image["repository"])
    if any(u in repo for u in _UNRESOLVED):
        return
    tag, digest = image.get("tag"), image.get("digest")
    if digest:
        yield _finding(doc, f"{repo}@{digest}", "digest", r"^\s+digest:")
    elif tag in (None, ""):
        yield Finding(
            "images.pinned",
            f"image {repo} uses the chart appVersion as its tag",
            doc.path,
            doc.line_of(rf"repository:\s*[\"']?{re.escape(repo)}"),
            value=repo,
        )
    elif not any(u in str(tag) for u in _UNRESOLVED):
        yield _finding(doc, f"{repo}:{tag}", "latest" if str(tag) == "latest" else "tag", r"^\s+tag:")


def _kustomize_images(doc: Document) -> Iterator[Finding]:
    images = doc.body.get("images") if isinstance(doc.body, dict) else None
    for entry in images if isinstance(images, list) else []:
        if not isinstance(entry, dict) or not entry.get("name"):
            continue
        name = str(entry.get("newName") or entry["name"])
        if entry.get("digest") or (entry.get("newTag") and str(entry["newTag"]) != "latest"):
            # The base's reference to this image is replaced at build time, whatever tag it has.
            yield Finding("images.override", f"kustomize pins {entry['name']}", doc.path,
                          doc.line_of(r"^images:"), value=str(entry["name"]))
        if entry.get("digest"):
            yield _finding(doc, f"{name}@{entry['digest']}", "digest", r"^\s+digest:")
        elif entry.get("newTag"):
            tag = str(entry["newTag"])
            yield _finding(doc, f"{name}:{tag}", "latest" if tag == "latest" else "tag", r"^\s+newTag:")


def scan(f: SourceFile) -> Iterator[Finding]:
    if f.basename.startswith("kustomization."):
        for doc in f.documents:
            yield from _kustomize_images(doc)
        return
    if (f.basename in _SKIP_FILES or f.path.startswith(_NOT_DEPLOYED_DIRS)
            or f.basename.startswith(".gitlab-ci") or _COMPOSE.match(f.basename)):
        return
    for doc in f.documents:
        if "image" in doc.text:  # most documents name no image: skip their parse
            yield from _walk(doc.body, doc)
