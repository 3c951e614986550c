"""Issue #14: every evidence match has its exact line, in every detector.

The repository built by ``tests.maturity_repos.exact_lines`` holds documents where the first match
of a pattern is the wrong line: two Kyverno rules that both mutate, an Argo CD Application with two
Helm sources and ``automated:`` quoted in an annotation above its sync policy, two Flux
Kustomizations in one file, a kustomization whose first line is a comment, a Flux v1 annotation and
SOPS ``creation_rules`` named in a comment above the real ones. Expected lines are found
by searching the committed file's text, never written down.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from assessment.detectors import Finding
from assessment.scan import Scanner
from assessment.tree import open_source
from tests import maturity_repos as repos
from tests.test_assess import assess, evidence_of


def lines_of(text: str, needle: str) -> list[int]:
    """The 1-based line of every occurrence of ``needle`` (where its first non-newline character is)."""
    found, start = [], 0
    while (at := text.find(needle, start)) >= 0:
        first = at + len(needle) - len(needle.lstrip("\n"))
        found.append(text.count("\n", 0, first) + 1)
        start = at + 1
    assert found, needle
    return found


def scan(path: Path) -> dict[tuple[str, str], list[int]]:
    source = open_source(str(path))
    try:
        findings: list[Finding] = Scanner().scan(source, source.tree()).findings
    finally:
        source.close()
    got: dict[tuple[str, str], list[int]] = defaultdict(list)
    for f in findings:
        if f.path and f.line is not None:
            got[(f.signal, f.path)].append(f.line)
    return got


# (signal, file, needle, which occurrences): the finding's lines are the lines of those occurrences
CASES = [
    ("policy.advanced", "policies/defaults.yaml", "      mutate:", None),  # both rules, each its own
    ("policy.kyverno", "policies/defaults.yaml", "\nkind: ClusterPolicy", None),
    ("argocd.helm-source", "argocd/observability.yaml", "chart: ", None),  # two sources, two lines
    ("argocd.helm-values", "argocd/observability.yaml", "valueFiles:", None),
    ("argocd.helm-values", "argocd/observability.yaml", "parameters:", None),
    ("argocd.destination", "argocd/observability.yaml", "  destination:", None),
    # `automated:` and `selfHeal:` appear first in an annotation's text; the policy is further down
    ("argocd.automated", "argocd/observability.yaml", "automated:", [1]),
    ("argocd.self-heal", "argocd/observability.yaml", "selfHeal:", [1]),
    ("argocd.prune", "argocd/observability.yaml", "prune: true", None),
    ("flux.kustomization", "clusters/prod/apps.yaml", "\nkind: Kustomization", None),
    ("flux.path", "clusters/prod/apps.yaml", "  path: ./apps/", None),
    ("flux.prune", "clusters/prod/apps.yaml", "  prune: true", None),
    ("flux.depends-on", "clusters/prod/apps.yaml", "  dependsOn:", None),
    ("flux.substitute", "clusters/prod/apps.yaml", "  postBuild:", None),
    ("secrets.sops-decryption", "clusters/prod/apps.yaml", "  decryption:", None),
    ("k8s.plain-secret", "apps/db/secret.yaml", "\ndata:", None),
    # the first line is a comment: the kustomization is where its `kind:` is
    ("kustomize.kustomization", "apps/eu/kustomization.yaml", "\nkind: Kustomization", None),
    ("kustomize.overlay", "apps/eu/kustomization.yaml", "\nnamePrefix:", None),
    # a comment names the annotation (or the key) before the real one
    ("flux.v1", "workloads/legacy.yaml", "flux.weave.works/automated", [1]),
    ("secrets.sops-config", ".sops.yaml", "creation_rules:", [1]),
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[tuple[str, str], list[int]]]:
    repo = repos.exact_lines(tmp_path_factory.mktemp("lines") / "estate")
    return repo.path, scan(repo.path)


@pytest.mark.parametrize(("signal", "file", "needle", "which"), CASES,
                         ids=[f"{c[0]}:{c[2].strip()}" for c in CASES])
def test_every_match_has_its_own_line(
    built: tuple[Path, dict[tuple[str, str], list[int]]],
    signal: str, file: str, needle: str, which: list[int] | None,
) -> None:
    path, got = built
    every = lines_of((path / file).read_text(), needle)
    expected = every if which is None else [every[i] for i in which]
    lines = got[(signal, file)]
    if signal == "argocd.helm-values":  # two needles for one signal: each source's own key
        assert expected[0] in lines and len(lines) == 2
    else:
        assert sorted(lines) == expected


def test_second_rule_and_second_source_are_not_the_first_ones_line(
    built: tuple[Path, dict[tuple[str, str], list[int]]],
) -> None:
    _, got = built
    assert len(set(got[("policy.advanced", "policies/defaults.yaml")])) == 2
    assert len(set(got[("argocd.helm-source", "argocd/observability.yaml")])) == 2
    assert len(set(got[("argocd.helm-values", "argocd/observability.yaml")])) == 2


def test_evidence_carries_the_exact_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Through `gitops-dora assess`: the advanced-policy evidence is both mutate rules."""
    repo = repos.exact_lines(tmp_path / "estate")
    result = assess(capsys, tmp_path / "db.duckdb", str(repo.path))
    text = (repo.path / "policies/defaults.yaml").read_text()
    assert [(e["path"], e["line"]) for e in evidence_of(result, "advanced-policy")] == [
        ("policies/defaults.yaml", line) for line in lines_of(text, "      mutate:")
    ]
    app = (repo.path / "argocd/observability.yaml").read_text()
    recon = {(e["path"], e["line"]) for e in evidence_of(result, "workload-reconciliation")}
    assert ("argocd/observability.yaml", lines_of(app, "selfHeal:")[1]) in recon
