"""Demo step 60 runs `assess` on the demo's config repository through the CLI code path."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from analytics.cli.cmd_demo import run_in_process
from analytics.demo.context import DemoContext
from analytics.paths import data_dir
from tests.store_query import store_reader
from tests.test_assess_history import adopting_flux


def test_demo_step_assesses_the_config_repo_with_answers_and_history(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    adopting_flux(workdir / "repos" / "platform-config")
    template = data_dir() / "config" / "gitops-dora.example.yaml"
    (workdir / "gitops-dora.yaml").write_text(template.read_text())
    demo = DemoContext(
        workdir=workdir,
        db_path=tmp_path / "demo.ducklake",
        run_cli=run_in_process,
        manifest={"config_repo": {"name": "platform-config", "path": "repos/platform-config"}},
    )
    step = importlib.import_module("analytics.demo.steps.60_maturity")
    step.run(demo)
    result = json.loads((workdir / "maturity-assessment.json").read_text())
    # Evidence gives level 1 (see test_assess_history); the demo answers add nothing at Level 2
    # (progressive-delivery is answered "no"), so the level stays 1. The answers file's
    # immutable-images "yes" agrees with the evidence: no conflict.
    assert result["level"] == 1
    caps = {c["id"]: c for c in result["capabilities"]}
    assert (caps["immutable-images"]["status"], caps["immutable-images"]["conflict"]) == ("met", None)
    assert (caps["progressive-delivery"]["status"], caps["progressive-delivery"]["answer"]) == (
        "not_met",
        "no",
    )
    assert [(p["period"], p["level"]) for p in result["history"]] == [
        ("2024-01", 0),
        ("2024-02", 0),
        ("2024-03", 1),
        ("2024-04", 1),
        ("2024-05", 1),
    ]
    con = store_reader(demo.db_path)
    rows = con.execute(
        "SELECT kind, count(*), any_value(answers_file) FROM maturity_assessments GROUP BY kind ORDER BY kind"
    ).fetchall()
    con.close()
    assert rows == [("monthly", 5, None), ("point", 1, str(workdir / "maturity-answers.yaml"))]
