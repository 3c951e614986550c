"""Issue #14: environments come only from what really targets different clusters or namespaces.

An overlay counts when a reconciler builds it (a Flux Kustomization's ``spec.path``, an Argo CD
Application's source path, an ApplicationSet git generator's directory); a cluster folder counts
when a reconciler lives in it. An overlay nobody builds does not count. A repository with overlays
but no reconciler at all is undecided. The repositories are built by
``tests.maturity_repos.overlay_environments``: dev, staging and production overlays of one base.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests import maturity_repos as repos
from tests.test_assess import assess, evidence_of, statuses


def environment(result: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in result["capabilities"] if c["id"] == "environment-management")


def names(result: dict[str, Any]) -> set[str]:
    """The environment names the evidence shows ("environment staging: ..." / "environment prod (")."""
    return {e["detail"].split(" ")[1].rstrip(":") for e in evidence_of(result, "environment-management")
            if e["detail"].startswith("environment ")}


def line_of(text: str, needle: str) -> int:
    assert text.count(needle) == 1, needle
    return text[: text.index(needle)].count("\n") + 1


@pytest.mark.parametrize(
    ("staging_by", "file", "needle"),
    [
        ("flux", "clusters/production/podinfo-staging.yaml", "path: ./apps/podinfo/overlays/staging"),
        ("argocd", "argocd/podinfo-staging.yaml", "path: apps/podinfo/overlays/staging"),
        ("appset", "argocd/podinfo-staging.yaml", "path: apps/*/overlays/staging"),
    ],
)
def test_an_overlay_a_reconciler_builds_is_an_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], staging_by: str, file: str, needle: str
) -> None:
    repo = repos.overlay_environments(tmp_path / "podinfo-config", staging_by=staging_by)
    result = assess(capsys, tmp_path / "db.duckdb", str(repo.path))
    assert statuses(result)["environment-management"] == "met"
    # production: the cluster folder with Flux in it; staging: the overlay the reconciler builds;
    # dev: an overlay nobody builds, so no environment.
    assert names(result) == {"production", "staging"}
    staging = next(e for e in evidence_of(result, "environment-management")
                   if e["detail"].startswith("environment staging"))
    text = (repo.path / file).read_text()
    assert (staging["path"], staging["line"]) == (file, line_of(text, needle))
    assert "apps/podinfo/overlays/staging" in staging["detail"]


def test_an_overlay_nobody_builds_is_no_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = repos.overlay_environments(tmp_path / "podinfo-config", staging_by=None)
    result = assess(capsys, tmp_path / "db.duckdb", str(repo.path))
    # Three overlays, but only production is built (by the Flux Kustomization in clusters/production).
    assert statuses(result)["environment-management"] == "not_met"
    assert names(result) == {"production"}
    note = environment(result)["note"]
    assert "no reconciler builds the overlays or cluster folders for dev, staging" in note
    assert "environment-management" in [b["capability"] for b in result["blocking"]]


def test_overlays_without_any_reconciler_are_undecided(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = repos.overlay_environments(tmp_path / "podinfo-config", staging_by=None, production_flux=False)
    result = assess(capsys, tmp_path / "db.duckdb", str(repo.path))
    # The Kustomizations or Applications may live in another repository: unknown, not failure.
    cap = environment(result)
    assert cap["status"] == "unknown"
    assert "dev, production, staging" in cap["note"]
    assert cap["evidence"] == []  # folders are named in the note, never shown as support
    undecided = {u["capability"]: u for u in result["undecided"]}
    assert "environment-management" in undecided
    assert "Argo CD Applications that build the overlays" in undecided["environment-management"]["source"]
    assert "environment-management" not in [b["capability"] for b in result["blocking"]]


def test_values_files_and_parent_folders_are_no_environments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Kustomization that builds ``apps/podinfo/overlays`` (the parent of every overlay) builds one
    thing out of all of them: no overlay becomes an environment through it."""
    repo = repos.overlay_environments(tmp_path / "podinfo-config", staging_by=None)
    repo.commit("parent", "2024-06-04T10:00:00+00:00", files={
        "clusters/production/overlays.yaml": repos.flux_kustomization("overlays", "./apps/podinfo/overlays"),
    })
    result = assess(capsys, tmp_path / "db.duckdb", str(repo.path))
    assert names(result) == {"production"}
    assert statuses(result)["environment-management"] == "not_met"
