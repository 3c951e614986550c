"""CODEOWNERS: required reviewers for paths, the review half of change governance."""

from __future__ import annotations

from collections.abc import Iterator

from assessment.detectors import Finding
from assessment.documents import SourceFile

_PLACES = {"CODEOWNERS", ".github/CODEOWNERS", "docs/CODEOWNERS", ".gitlab/CODEOWNERS"}


def scan(f: SourceFile) -> Iterator[Finding]:
    if f.path not in _PLACES:
        return
    rules = [
        (n, line)
        for n, line in enumerate(f.text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if rules:
        owners = sorted({o for _, line in rules for o in line.split()[1:] if o.startswith("@") or "@" in o})
        yield Finding(
            "governance.codeowners",
            f"CODEOWNERS: {len(rules)} rules, owners {', '.join(owners[:5])}",
            f.path,
            rules[0][0],
        )
