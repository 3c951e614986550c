"""Policy as code: Kyverno policies (and their advanced rule types) and OPA Gatekeeper."""

from __future__ import annotations

from collections.abc import Iterator

from assessment.detectors import Finding
from assessment.documents import SourceFile

_ADVANCED_RULES = ("mutate", "generate", "verifyImages")
_GATEKEEPER_MUTATIONS = {"Assign", "AssignMetadata", "ModifySet", "AssignImage"}


def scan(f: SourceFile) -> Iterator[Finding]:
    for doc in f.documents:
        if doc.group == "kyverno.io" and doc.kind in {"ClusterPolicy", "Policy"}:
            rules = doc.spec.get("rules") or []
            mode = doc.spec.get("validationFailureAction") or "Audit"
            yield Finding(
                "policy.kyverno",
                f"Kyverno {doc.ref} ({len(rules)} rules, {mode})",
                f.path,
                doc.line_of(r"^kind:"),
            )
            for i, rule in enumerate(rules if isinstance(rules, list) else []):
                if not isinstance(rule, dict):
                    continue
                for kind in _ADVANCED_RULES:
                    if rule.get(kind):
                        # each rule at its own line: two mutate rules are two lines
                        yield Finding(
                            "policy.advanced",
                            f"Kyverno {doc.ref} rule {rule.get('name', '?')} uses {kind}",
                            f.path,
                            doc.line_at("spec", "rules", i, kind, fallback=rf"^\s+{kind}:"),
                        )
        elif doc.group == "templates.gatekeeper.sh" and doc.kind == "ConstraintTemplate":
            yield Finding(
                "policy.gatekeeper",
                f"Gatekeeper ConstraintTemplate {doc.name}",
                f.path,
                doc.line_of(r"^kind:"),
            )
        elif doc.group == "constraints.gatekeeper.sh":
            yield Finding(
                "policy.constraint", f"Gatekeeper constraint {doc.ref}", f.path, doc.line_of(r"^kind:")
            )
        elif doc.group == "mutations.gatekeeper.sh" and doc.kind in _GATEKEEPER_MUTATIONS:
            yield Finding("policy.advanced", f"Gatekeeper mutation {doc.ref}", f.path, doc.line_of(r"^kind:"))
