"""Secrets tooling: SOPS (.sops.yaml and encrypted files), Sealed Secrets, External Secrets."""

from __future__ import annotations

from collections.abc import Iterator

from assessment.detectors import Finding
from assessment.documents import SourceFile

_EXTERNAL = {"ExternalSecret", "SecretStore", "ClusterSecretStore", "ClusterExternalSecret"}


def scan(f: SourceFile) -> Iterator[Finding]:
    if f.basename in {".sops.yaml", ".sops.yml"}:
        yield Finding("secrets.sops-config", "SOPS creation rules", f.path, f.line_of(r"creation_rules") or 1)
        return
    for doc in f.documents:
        body = doc.body if "sops" in doc.text and isinstance(doc.body, dict) else {}
        sops = body.get("sops")
        if isinstance(sops, dict) and ("mac" in sops or "lastmodified" in sops or "version" in sops):
            yield Finding(
                "secrets.sops-encrypted",
                f"SOPS-encrypted {doc.ref if doc.is_object else 'file'}",
                f.path,
                doc.line_of(r"^sops:"),
            )
        if doc.group == "bitnami.com" and doc.kind == "SealedSecret":
            yield Finding("secrets.sealed", f"SealedSecret {doc.name}", f.path, doc.line_of(r"^kind:"))
        elif doc.group.startswith("external-secrets.io") and doc.kind in _EXTERNAL:
            yield Finding("secrets.external", f"External Secrets {doc.ref}", f.path, doc.line_of(r"^kind:"))
