"""Evidence detectors over a repository tree, one module per family.

Each module exposes ``scan(file) -> Iterable[Finding]`` (per file, so results can be cached by
blob id across revisions) and may expose ``layout(paths) -> Iterable[Finding]`` for facts that only
the set of paths shows (``clusters/<name>/`` directories, overlays). A finding is a named signal
with a location; the rules in ``assessment.rules`` turn signals into capability statuses.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from types import ModuleType

from assessment.documents import SourceFile


@dataclass(frozen=True)
class Finding:
    signal: str
    detail: str
    path: str | None = None
    line: int | None = None
    object: str | None = None
    value: str | None = None  # a datum rules group by (environment name, provider, chart dir...)

    def located(self, prefix: str) -> Finding:
        """The same finding with its path prefixed by the repository label (multi-repo runs)."""
        return replace(self, path=f"{prefix}/{self.path}" if self.path else self.path)


EXAMPLE = "example:"  # signal prefix of a finding in a not-deployed path (examples, docs, tests)

ScanFn = Callable[[SourceFile], Iterable[Finding]]
LayoutFn = Callable[[Sequence[str]], Iterable[Finding]]

# Files any detector looks at; everything else is skipped before it is read.
_NAMES = {"CODEOWNERS", "Jenkinsfile", ".sops.yaml", ".sops.yml"}
_SUFFIXES = (".yaml", ".yml", ".tf")


def wanted(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name in _NAMES or path.endswith(_SUFFIXES)


def modules() -> list[ModuleType]:
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        found.append(importlib.import_module(f"{__name__}.{info.name}"))
    return found


def scanners() -> list[ScanFn]:
    return [m.scan for m in modules() if hasattr(m, "scan")]


def layouts() -> list[LayoutFn]:
    return [m.layout for m in modules() if hasattr(m, "layout")]
