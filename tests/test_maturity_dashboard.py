"""Issue #14: the dashboard's Maturity page shows, apart, what blocks the next level, what is
undecided (with the question or the source to add) and what was only seen in examples.

The assessment is a real one: `gitops-dora assess --store` of a repository built by
``tests.maturity_repos.overlay_environments`` (dev, staging and production overlays, no reconciler
at all) with a Flagger Canary under ``examples/``. Worked out by hand from its files:

* Level 0 is reached: manifests and a kustomization, the Namespaces under ``infrastructure/``, git,
  podinfo pinned to 6.7.1, Kubernetes manifests.
* Blocking Level 1 (not met): workload-reconciliation, secrets-management and pull-based (nothing
  reconciles, no SOPS or sealed secrets); package-management is met by the kustomizations.
* Undecided: environment-management (overlays, but no Flux Kustomization or Argo CD Application
  that builds them).
* Seen in examples: the Canary, a Kubernetes object (declarative-workloads,
  suitable-infrastructure) and a Flagger Canary (progressive-delivery), which stays missing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests import maturity_repos as repos
from tests.test_assess import assess
from tests.test_dashboard_apptest import assert_clean, open_page

pytestmark = pytest.mark.usefixtures("one_duckdb_thread")  # tests/conftest.py


def shown_table(at: object, column: str) -> pd.DataFrame:
    """The one dataframe on the page that has ``column``."""
    frames = [df.value for df in at.dataframe if column in df.value.columns]  # type: ignore[attr-defined]
    assert len(frames) == 1, [list(df.value.columns) for df in at.dataframe]  # type: ignore[attr-defined]
    return frames[0]


@pytest.fixture
def assessed(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Path:
    repo = repos.overlay_environments(tmp_path / "podinfo-config", staging_by=None, production_flux=False)
    repo.commit("examples", "2024-06-04T10:00:00+00:00", files={"examples/canary/canary.yaml": repos.CANARY})
    db = tmp_path / "maturity.duckdb"
    assess(capsys, db, str(repo.path), "--store")
    monkeypatch.setenv("GITOPS_DORA_DB", str(db))
    monkeypatch.delenv("GITOPS_DORA_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # no gitops-dora.yaml of the checkout
    return repo.path


def test_blocking_undecided_and_examples_are_shown_apart(assessed: Path) -> None:
    at = open_page("maturity")
    assert_clean(at)
    headers = [h.value for h in at.subheader]
    assert "Maturity ladder: Level 0" in headers
    for section in ("Blocking the next level", "Undecided", "Seen in examples"):
        assert section in headers
    # the three sections come after the ladder and in this order
    assert headers.index("Blocking the next level") < headers.index("Undecided") < headers.index(
        "Seen in examples")

    blocking = shown_table(at, "action")
    assert set(blocking["id"]) == {"workload-reconciliation", "secrets-management", "pull-based"}
    assert set(blocking["level"]) == {1}
    assert "Secrets management" in set(blocking["capability"])

    undecided = shown_table(at, "question to answer")
    assert list(undecided["id"]) == ["environment-management"]
    row = undecided.iloc[0]
    assert "no Flux Kustomization or Argo CD Application" in row["why"]
    assert "Argo CD Applications that build the overlays" in row["or source to add"]
    assert row["question to answer"].endswith("?")

    examples = shown_table(at, "where")
    assert set(examples["id"]) == {"declarative-workloads", "suitable-infrastructure", "progressive-delivery"}
    canary = (assessed / "examples/canary/canary.yaml").read_text()
    kind_line = canary[: canary.index("kind: Canary")].count("\n") + 1
    progressive = examples[examples["id"] == "progressive-delivery"]
    assert list(progressive["where"]) == [f"examples/canary/canary.yaml:{kind_line}"]
    # seen in examples, never met: the capability's own status stays missing
    assert list(progressive["status"]) == ["missing"]
    ladder = {i: s for df in at.dataframe if {"id", "status", "evidence"} <= set(df.value.columns)
              for i, s in zip(df.value["id"], df.value["status"], strict=True)}
    assert ladder["progressive-delivery"] == "missing"
    assert ladder["environment-management"] == "unknown"


def test_an_assessment_stored_before_the_lists_gets_them_from_statuses(assessed: Path) -> None:
    """Results stored by an older version have no ``blocking``/``undecided``: the page derives them
    from the capability statuses, the same way the scoring does."""
    from assessment.model import load_model
    from dashboards import maturity_data

    current = maturity_data.latest_result(assessed.parent / "maturity.duckdb", "podinfo-config")
    older = {k: v for k, v in current.items() if k not in ("blocking", "undecided")}
    blocking, undecided, _ = maturity_data.decisions(older, load_model())
    assert list(blocking["id"]) == [b["capability"] for b in current["blocking"]] != []
    assert list(undecided["id"]) == [u["capability"] for u in current["undecided"]] != []


def test_stored_decisions_are_shown_as_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stored result is data: capability names, notes, questions and example paths with Markdown in
    them are table cells, and nothing on the page lets them act as links or images."""
    from datetime import UTC, datetime

    from analytics.store.connection import open_writer
    from tests.test_dashboard_security import shown_text

    link, pixel = "[cap](https://evil.example/cap)", "![p](http://127.0.0.1:9/pixel)"
    result = {
        "level": 0, "levels": [], "principles": [], "next_steps": [],
        "capabilities": [{"id": "progressive-delivery", "level": 2, "title": link, "status": "not_met",
                          "evidence": [], "seen_in_examples": [
                              {"path": f"examples/{pixel}/canary.yaml", "line": 2, "detail": link}]}],
        "blocking": [{"capability": link, "level": 1, "title": pixel, "why": pixel, "action": link}],
        "undecided": [{"capability": "environment-management", "level": 1, "title": link, "why": pixel,
                       "question": link, "source": pixel}],
    }
    db = tmp_path / "hostile.duckdb"
    t = datetime(2026, 3, 1, tzinfo=UTC)
    with open_writer(db, source="test") as w:
        w.upsert("maturity_assessments", [{
            "id": "a1", "target": "config", "sources": ["x"], "revisions": ["r"], "kind": "point",
            "period": None, "as_of": t, "assessed_at": t, "level": 0, "answers_file": None,
            "result": json.dumps(result),
        }])
    monkeypatch.setenv("GITOPS_DORA_DB", str(db))
    monkeypatch.delenv("GITOPS_DORA_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    at = open_page("maturity")
    shown_text(at)  # fails when any Markdown element lets data act as markup
    assert list(shown_table(at, "action")["id"]) == [link]
    assert list(shown_table(at, "question to answer")["or source to add"]) == [pixel]
    assert list(shown_table(at, "where")["where"]) == [f"examples/{pixel}/canary.yaml:2"]
