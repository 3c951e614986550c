"""Infrastructure as code: Terraform, Cluster API and Crossplane, and which provider each targets."""

from __future__ import annotations

import re
from collections.abc import Iterator

from assessment.detectors import Finding
from assessment.documents import SourceFile

_TF_BLOCK = re.compile(r'^\s*(resource|module|data)\s+"([\w-]+)"', re.MULTILINE)
_TF_PROVIDER = re.compile(r'^\s*provider\s+"([\w-]+)"', re.MULTILINE)
# Terraform provider, Cluster API infrastructure kind or Crossplane provider -> where it runs.
_PROVIDERS = {
    "aws": "aws",
    "google": "gcp",
    "google-beta": "gcp",
    "gcp": "gcp",
    "azurerm": "azure",
    "azure": "azure",
    "azuread": "azure",
    "vsphere": "on-premises (vSphere)",
    "openstack": "on-premises (OpenStack)",
    "metal3": "on-premises (bare metal)",
    "digitalocean": "digitalocean",
    "hcloud": "hetzner",
    "oci": "oracle",
    "ibm": "ibm",
    "alicloud": "alibaba",
    "linode": "linode",
    "proxmox": "on-premises (Proxmox)",
}
_CAPI_KINDS = {
    "AWSCluster": "aws",
    "AWSManagedCluster": "aws",
    "AWSManagedControlPlane": "aws",
    "AzureCluster": "azure",
    "AzureManagedCluster": "azure",
    "GCPCluster": "gcp",
    "GCPManagedCluster": "gcp",
    "VSphereCluster": "on-premises (vSphere)",
    "Metal3Cluster": "on-premises (bare metal)",
    "OpenStackCluster": "on-premises (OpenStack)",
    "DockerCluster": "local (Docker)",
}
_CROSSPLANE_GROUP = re.compile(r"\.(aws|gcp|azure)\.(upbound\.io|crossplane\.io)$")


def _provider_of_tf(name: str) -> str | None:
    return _PROVIDERS.get(name) or _PROVIDERS.get(name.split("_", 1)[0])


def scan(f: SourceFile) -> Iterator[Finding]:
    if f.path.endswith(".tf"):
        yield from _terraform(f)
        return
    for doc in f.documents:
        line = doc.line_of(r"^kind:")
        if doc.group == "cluster.x-k8s.io" and doc.kind == "Cluster":
            yield Finding("infra.capi-cluster", f"Cluster API Cluster {doc.name}", f.path, line)
            ref = doc.spec.get("infrastructureRef")
            kind = ref.get("kind") if isinstance(ref, dict) else None
            if isinstance(kind, str) and kind in _CAPI_KINDS:
                yield Finding(
                    "infra.provider",
                    f"Cluster {doc.name} runs on {_CAPI_KINDS[kind]} ({kind})",
                    f.path,
                    doc.line_at("spec", "infrastructureRef", "kind"),
                    value=_CAPI_KINDS[kind],
                )
        elif doc.group == "cluster.x-k8s.io" and doc.kind == "ClusterClass":
            yield Finding("infra.capi-clusterclass", f"Cluster API ClusterClass {doc.name}", f.path, line)
        elif doc.group.startswith("infrastructure.cluster.x-k8s.io") and doc.kind in _CAPI_KINDS:
            where = _CAPI_KINDS[str(doc.kind)]
            yield Finding("infra.provider", f"Cluster API {doc.ref} on {where}", f.path, line, value=where)
        elif doc.group == "apiextensions.crossplane.io" and doc.kind in {
            "Composition",
            "CompositeResourceDefinition",
        }:
            yield Finding("infra.crossplane", f"Crossplane {doc.ref}", f.path, line)
            yield from _crossplane_providers(f, doc.text, doc.line)
        elif doc.group == "pkg.crossplane.io" and doc.kind == "Provider":
            package = str(doc.spec.get("package", ""))
            for key, where in _PROVIDERS.items():
                if re.search(rf"provider-{key}\b", package):
                    yield Finding(
                        "infra.provider", f"Crossplane provider {package}", f.path,
                        doc.line_at("spec", "package"), value=where,
                    )
                    break


def _crossplane_providers(f: SourceFile, text: str, start: int) -> Iterator[Finding]:
    seen: set[str] = set()
    for m in re.finditer(r"apiVersion:\s*([\w.\-]+)/", text):
        cm = _CROSSPLANE_GROUP.search(m.group(1))
        if cm and cm.group(1) not in seen:
            seen.add(cm.group(1))
            where = _PROVIDERS[cm.group(1)]
            yield Finding(
                "infra.provider",
                f"Crossplane composes {m.group(1)} resources on {where}",
                f.path,
                start + text.count("\n", 0, m.start()),
                value=where,
            )


def _terraform(f: SourceFile) -> Iterator[Finding]:
    blocks = list(_TF_BLOCK.finditer(f.text))
    providers = list(_TF_PROVIDER.finditer(f.text))
    if not blocks and not providers:
        return
    first = (blocks or providers)[0]
    yield Finding(
        "infra.terraform", f"Terraform {len(blocks)} blocks", f.path, f.text.count("\n", 0, first.start()) + 1
    )
    seen: set[str] = set()
    candidates = [(m.group(1), m) for m in providers] + [
        (m.group(2), m) for m in blocks if m.group(1) != "module"
    ]
    for name, m in candidates:
        where = _provider_of_tf(name)
        if where and where not in seen:
            seen.add(where)
            yield Finding(
                "infra.provider",
                f"Terraform {name} targets {where}",
                f.path,
                f.text.count("\n", 0, m.start()) + 1,
                value=where,
            )
