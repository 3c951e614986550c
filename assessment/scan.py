"""Running every detector over a tree, with per-file results cached by content.

The cache key is (content key, path): a blob that did not change between two monthly revisions
is parsed once, which is what makes ``--history monthly`` cheap on large config repos.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from assessment.detectors import EXAMPLE, Finding, layouts, scanners, wanted
from assessment.documents import SourceFile
from assessment.tree import Source, Tree


@dataclass
class ScanResult:
    findings: list[Finding]
    files_scanned: int
    # "path: reason" for files a detector choked on, or the tree left out (symlinks out of the root)
    skipped: list[str] = field(default_factory=list)


_ENVIRONMENT_PARENTS = {"clusters", "overlays", "environments", "envs", "env", "apps", "tenants",
                        "infrastructure"}


def not_deployed(path: str, folders: Sequence[str]) -> bool:
    """Whether ``path`` lies in a folder of examples, docs, tests or scripts (at any depth), or in
    the templates of a vendored chart (a subchart under another chart's charts/, or vendor/)."""
    parts = path.split("/")[:-1]
    if path.rsplit("/", 1)[-1] == "CODEOWNERS":  # docs/CODEOWNERS is where GitHub reads it
        return False
    # `clusters/test/`, `overlays/test/`: an environment named test, not a test suite
    if any(p in folders and not (i and parts[i - 1] in _ENVIRONMENT_PARENTS) for i, p in enumerate(parts)):
        return True
    if "vendor" in parts:
        return True
    for i, p in enumerate(parts):
        if p == "charts" and i > 0 and i + 2 < len(parts) and parts[i + 2] == "templates":
            return True
    return False


def as_example(f: Finding) -> Finding:
    return replace(f, signal=EXAMPLE + f.signal)


@dataclass
class Scanner:
    _cache: dict[str, list[Finding]] = field(default_factory=dict)
    # folders whose evidence is only "seen in examples" (empty: everything counts)
    not_deployed: tuple[str, ...] = ()

    def scan(self, source: Source, tree: Tree, prefix: str | None = None) -> ScanResult:
        entries = tree.entries()
        relevant = [e for e in entries if wanted(e.path)]
        todo = [e for e in relevant if f"{e.key}\0{e.path}" not in self._cache]
        skipped: list[str] = []
        detectors = scanners()
        for entry, data in tree.read(todo):
            file = SourceFile(entry.path, data.decode("utf-8", errors="replace"))
            found: list[Finding] = []
            for detect in detectors:
                try:
                    found.extend(detect(file))
                except Exception as exc:  # noqa: BLE001 - one odd file must not hide the rest
                    skipped.append(f"{entry.path}: {type(exc).__name__}: {exc}")
            self._cache[f"{entry.key}\0{entry.path}"] = found
        skipped.extend(s for s in getattr(tree, "skipped", []) if s not in skipped)
        findings: list[Finding] = []
        for e in relevant:
            found = self._cache.get(f"{e.key}\0{e.path}", [])
            if self.not_deployed and not_deployed(e.path, self.not_deployed):
                findings.extend(as_example(f) for f in found)
            else:
                findings.extend(found)
        paths: Sequence[str] = [
            e.path for e in entries if not (self.not_deployed and not_deployed(e.path, self.not_deployed))
        ]
        for lay in layouts():
            findings.extend(lay(paths))
        if source.versioned:
            where = tree.revision[:12] if tree.revision else "a working tree"
            findings.append(
                Finding(
                    "vcs.git",
                    f"{tree.label} is a git repository (at {where})",
                    object=f"{tree.label}@{tree.revision or 'worktree'}",
                )
            )
        elif source.git_dir is not None and tree.revision is None:
            findings.append(Finding("vcs.unborn", f"{tree.label} is a git repository with no commit yet",
                                    object=f"{tree.label}@worktree"))
        if prefix:
            findings = [f.located(prefix) for f in findings]
        return ScanResult(findings=findings, files_scanned=len(relevant), skipped=skipped)
