"""Flux: Kustomizations, HelmReleases, sources, gotk-sync.yaml and the tf-controller."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from assessment.detectors import Finding
from assessment.detectors.layout import normalise_path
from assessment.documents import Document, SourceFile

KUSTOMIZE_GROUP = "kustomize.toolkit.fluxcd.io"
HELM_GROUP = "helm.toolkit.fluxcd.io"
SOURCE_GROUP = "source.toolkit.fluxcd.io"
TF_GROUP = "infra.contrib.fluxcd.io"
# Flux's own accounts: impersonating them is the platform itself, not a tenant.
CONTROLLER_ACCOUNTS = {"kustomize-controller", "helm-controller", "source-controller", "flux", "default"}
# Flux v1 and the Helm Operator (retired, but years of history in many repositories).
V1_ANNOTATIONS = ("flux.weave.works/automated", "fluxcd.io/automated", "flux.weave.works/tag.",
                  "fluxcd.io/tag.")


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def scan(f: SourceFile) -> Iterator[Finding]:
    if f.basename == "gotk-sync.yaml":
        # the bootstrap Kustomization is what syncs the cluster: point at it, not at the file's top
        sync = [d for d in f.documents if d.group == KUSTOMIZE_GROUP and d.kind == "Kustomization"]
        line = sync[0].line_of(r"^kind:") if sync else (f.documents[0].first_line() if f.documents else 1)
        yield Finding("flux.gotk-sync", "Flux bootstrap sync (gotk-sync.yaml)", f.path, line)
    for doc in f.documents:
        if (doc.group == "helm.fluxcd.io" and doc.kind == "HelmRelease") or (
            doc.group == "flux.weave.works" and doc.kind == "FluxHelmRelease"
        ):
            yield Finding("flux.v1", f"Helm Operator {doc.ref} ({doc.api_version}, Flux v1)", f.path,
                          doc.line_of(r"^kind:"))
            yield Finding("flux.v1-helm", f"Helm Operator installs a chart ({doc.ref})", f.path,
                          doc.line_of(r"^kind:"))
            if doc.spec.get("values"):
                yield Finding("flux.helm-values", f"Helm Operator {doc.ref} customises the chart with values",
                              f.path, doc.line_at("spec", "values", fallback=r"^\s+values:"))
            continue
        if doc.is_object and any(a in doc.text for a in V1_ANNOTATIONS):
            key = _v1_annotation(doc)
            if key is not None:
                yield Finding("flux.v1", f"{doc.ref} is automated by Flux v1 ({key})", f.path,
                              doc.line_at("metadata", "annotations", key))
        if doc.group == KUSTOMIZE_GROUP and doc.kind == "Kustomization":
            yield from _kustomization(f, doc)
        elif doc.group == HELM_GROUP and doc.kind == "HelmRelease":
            yield from _helmrelease(f, doc)
        elif doc.group == SOURCE_GROUP and doc.kind:
            yield Finding("flux.source", f"Flux source {doc.ref}", f.path, doc.line_of(r"^kind:"))
        elif doc.group == TF_GROUP and doc.kind == "Terraform":
            yield Finding(
                "flux.terraform",
                f"Terraform reconciled by Flux tf-controller {doc.ref}",
                f.path,
                doc.line_of(r"^kind:"),
            )


def _v1_annotation(doc: Document) -> str | None:
    """The first Flux v1 annotation of the object (not a mention of one in a comment or a value)."""
    meta = doc.body.get("metadata") if isinstance(doc.body, dict) else None
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    for key in annotations if isinstance(annotations, dict) else {}:
        if isinstance(key, str) and key.startswith(V1_ANNOTATIONS):
            return key
    return None


def _kustomization(f: SourceFile, doc: Document) -> Iterator[Finding]:
    spec = doc.spec
    line = doc.line_of(r"^kind:")
    if _truthy(spec.get("suspend")):
        yield Finding(
            "flux.suspended",
            f"Flux Kustomization {doc.name} is suspended",
            f.path,
            doc.line_at("spec", "suspend"),
        )
        return
    yield Finding(
        "flux.kustomization",
        f"Flux Kustomization {doc.name} reconciles {spec.get('path', '.')} every "
        f"{spec.get('interval', '?')} (drift corrected on each run)",
        f.path,
        line,
    )
    path = spec.get("path")
    if isinstance(path, str) and not any(u in path for u in ("${", "{{", "TEMPLATED")):
        # What it builds: an overlay or cluster folder it names is an environment (rules).
        yield Finding(
            "flux.path",
            f"Flux Kustomization {doc.name} builds {normalise_path(path) or '.'}",
            f.path,
            doc.line_at("spec", "path"),
            value=normalise_path(path),
        )
    if spec.get("prune") is True:
        yield Finding(
            "flux.prune",
            f"Flux Kustomization {doc.name} prunes removed objects",
            f.path,
            doc.line_at("spec", "prune"),
        )
    if spec.get("dependsOn"):
        yield Finding(
            "flux.depends-on",
            f"Flux Kustomization {doc.name} depends on "
            f"{[d.get('name') for d in spec['dependsOn'] if isinstance(d, dict)]}",
            f.path,
            doc.line_at("spec", "dependsOn"),
        )
    post = spec.get("postBuild")
    if isinstance(post, dict) and (post.get("substitute") or post.get("substituteFrom")):
        # value: the folder that holds it (one cluster); the rule needs several to call it mass
        yield Finding(
            "flux.substitute",
            f"Flux Kustomization {doc.name} substitutes per-cluster variables",
            f.path,
            doc.line_at("spec", "postBuild"),
            value=f.dirname,
        )
    yield from _tenant(f, doc, "Kustomization")
    decryption = spec.get("decryption")
    if isinstance(decryption, dict) and decryption.get("provider") == "sops":
        yield Finding(
            "secrets.sops-decryption",
            f"Flux Kustomization {doc.name} decrypts SOPS secrets",
            f.path,
            doc.line_at("spec", "decryption"),
        )


def _tenant(f: SourceFile, doc: Document, kind: str) -> Iterator[Finding]:
    """A tenant: a Kustomization or HelmRelease that impersonates its own account (not a
    controller's) in a namespace of its own, the one it applies into (``targetNamespace``) or
    the one it lives in (flux2-multi-tenancy's shape: the tenant's Kustomization sits in the
    tenant namespace, ``apps``, and impersonates the account bound there). Each account in its
    namespace is one tenant: two teams may share a namespace with accounts of their own."""
    spec = doc.spec
    account = spec.get("serviceAccountName")
    meta = doc.body.get("metadata") if isinstance(doc.body, dict) else None
    home = meta.get("namespace") if isinstance(meta, dict) else None
    namespace = spec.get("targetNamespace") or (home if home not in (None, "", "flux-system") else None)
    if account and str(account) not in CONTROLLER_ACCOUNTS and namespace:
        yield Finding(
            "flux.tenant",
            f"Flux {kind} {doc.name} impersonates tenant account {account} in namespace {namespace}",
            f.path,
            doc.line_at("spec", "serviceAccountName"),
            value=f"{namespace}/{account}",
        )


def _helmrelease(f: SourceFile, doc: Document) -> Iterator[Finding]:
    spec = doc.spec
    if _truthy(spec.get("suspend")):
        yield Finding(
            "flux.suspended",
            f"Flux HelmRelease {doc.name} is suspended",
            f.path,
            doc.line_at("spec", "suspend"),
        )
        return
    yield Finding("flux.helmrelease", f"Flux HelmRelease {doc.name}", f.path, doc.line_of(r"^kind:"))
    yield from _tenant(f, doc, "HelmRelease")
    drift = spec.get("driftDetection")
    if isinstance(drift, dict) and drift.get("mode") == "enabled":
        yield Finding(
            "flux.helm-drift",
            f"Flux HelmRelease {doc.name} corrects drift (driftDetection enabled)",
            f.path,
            doc.line_at("spec", "driftDetection"),
        )
    if spec.get("values") or spec.get("valuesFrom"):
        yield Finding(
            "flux.helm-values",
            f"Flux HelmRelease {doc.name} customises the chart with values",
            f.path,
            doc.line_at("spec", "values" if spec.get("values") else "valuesFrom"),
        )
