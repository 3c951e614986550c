"""Secrets tooling: SOPS (.sops.yaml and encrypted files), Sealed Secrets, External Secrets."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from assessment.detectors import Finding
from assessment.documents import Document, SourceFile

_EXTERNAL = {"ExternalSecret", "SecretStore", "ClusterSecretStore", "ClusterExternalSecret"}


# Keys that name a credential; keys that only name *where* one is kept (secretName, existingSecret,
# passwordSecretRef, tokenFile...) are references, not credentials.
_CREDENTIAL = re.compile(r"(pass(word|wd)?|token|secret|api[_-]?key|private[_-]?key|credentials?)$", re.I)
_REFERENCE = re.compile(r"(name|ref|file|path|key(ref)?|existing.*|secretkeyref|namespace|provider|"
                        r"enabled|length|id|type|mount.*|dir)$", re.I)
_MENTIONS = re.compile(r"pass|token|secret|api[_-]?key|credential|private", re.I)
_PLACEHOLDER = ("${", "{{", "TEMPLATED", "$(", "ENC[", "<", "vault:", "ref+", "/")


def _credential_key(key: Any) -> bool:
    if not isinstance(key, str):
        return False
    k = key.strip()
    return bool(_CREDENTIAL.search(k)) and not _REFERENCE.search(k) and not k.lower().startswith("existing")


def _literal(value: Any) -> bool:
    return isinstance(value, str) and len(value.strip()) >= 3 and not any(p in value for p in _PLACEHOLDER)


class _Lines:
    """Exact lines: the key is located together with its value (used only to locate, never shown)."""

    def __init__(self, doc: Document) -> None:
        self.doc, self.after = doc, 0

    def of(self, key: str, value: str, env: bool) -> int:
        k, v = re.escape(key), re.escape(value.split("\n", 1)[0].strip())
        q = "[\"']?"
        pattern = (rf"name:\s*{q}{k}{q}\s*\n\s*value:\s*{q}{v}" if env
                   else rf"^[ \t-]*{q}{k}{q}\s*:\s*[|>]?[-+]?\s*{q}{v}")
        compiled = re.compile(pattern, re.MULTILINE)
        m = compiled.search(self.doc.text, self.after) or compiled.search(self.doc.text)
        if m is None:
            return self.doc.line_of(rf"^[ \t-]*{q}{k}{q}\s*:|name:\s*{q}{k}")
        self.after = m.end()
        return self.doc.line + self.doc.text.count("\n", 0, m.start())


def _plain(doc: Document, key: str, value: str, where: str, lines: _Lines) -> Finding:
    # The value itself is never part of the finding.
    return Finding("secrets.plaintext", f"plain-text credential {key} in {where} (value not shown)",
                   doc.path, lines.of(key, value, where == "env"), value=f"{doc.path}:{key}")


def _walk(node: Any, doc: Document, where: str, lines: _Lines, depth: int = 0) -> Iterator[Finding]:
    if depth > 40:
        return
    if isinstance(node, dict):
        name, value = node.get("name"), node.get("value")
        if _credential_key(name) and _literal(value) and set(node) <= {"name", "value"}:
            yield _plain(doc, str(name), str(value), "env", lines)
        for key, sub in node.items():
            if key in ("name", "value") and _credential_key(name):
                continue
            if _credential_key(key) and _literal(sub):
                yield _plain(doc, str(key), str(sub), where, lines)
            else:
                yield from _walk(sub, doc, where, lines, depth + 1)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item, doc, where, lines, depth + 1)


def _plaintext(f: SourceFile) -> Iterator[Finding]:
    values_file = f.basename.startswith("values") or f.dirname.endswith("values")
    for doc in f.documents:
        if not _MENTIONS.search(doc.text):
            continue
        if doc.kind == "Secret" or doc.group in ("kyverno.io", "bitnami.com") or "sops" in doc.text:
            continue
        if doc.kind == "ConfigMap" and isinstance(doc.body, dict):
            yield from _walk(doc.body.get("data"), doc, "ConfigMap " + doc.name, _Lines(doc))
        elif doc.kind == "HelmRelease":
            yield from _walk(doc.spec.get("values"), doc, "HelmRelease values", _Lines(doc))
        elif values_file and not doc.is_object:
            yield from _walk(doc.body, doc, "Helm values", _Lines(doc))
        elif doc.is_object and "env" in doc.text:
            yield from _env(doc.body, doc, _Lines(doc))


def _env(node: Any, doc: Document, lines: _Lines, depth: int = 0) -> Iterator[Finding]:
    if depth > 40:
        return
    if isinstance(node, dict):
        for key, sub in node.items():
            if key == "env" and isinstance(sub, list):
                for item in sub:
                    if (isinstance(item, dict) and _credential_key(item.get("name"))
                            and _literal(item.get("value"))):
                        yield _plain(doc, str(item["name"]), str(item["value"]), "env", lines)
            else:
                yield from _env(sub, doc, lines, depth + 1)
    elif isinstance(node, list):
        for item in node:
            yield from _env(item, doc, lines, depth + 1)


def scan(f: SourceFile) -> Iterator[Finding]:
    yield from _plaintext(f)
    yield from _tools(f)


def _tools(f: SourceFile) -> Iterator[Finding]:
    if f.basename in {".sops.yaml", ".sops.yml"}:
        rules = next((d for d in f.documents if isinstance(d.body, dict) and "creation_rules" in d.body),
                     None)
        line = rules.line_at("creation_rules") if rules else f.line_of(r"^creation_rules") or 1
        yield Finding("secrets.sops-config", "SOPS creation rules", f.path, line)
        return
    for doc in f.documents:
        body = doc.body if "sops" in doc.text and isinstance(doc.body, dict) else {}
        sops = body.get("sops")
        if isinstance(sops, dict) and ("mac" in sops or "lastmodified" in sops or "version" in sops):
            yield Finding(
                "secrets.sops-encrypted",
                f"SOPS-encrypted {doc.ref if doc.is_object else 'file'}",
                f.path,
                doc.line_at("sops", fallback=r"^sops:"),
            )
        if doc.group == "bitnami.com" and doc.kind == "SealedSecret":
            yield Finding("secrets.sealed", f"SealedSecret {doc.name}", f.path, doc.line_of(r"^kind:"))
        elif doc.group.startswith("external-secrets.io") and doc.kind in _EXTERNAL:
            yield Finding("secrets.external", f"External Secrets {doc.ref}", f.path, doc.line_of(r"^kind:"))
