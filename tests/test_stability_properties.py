"""Properties of the stability metrics for any input loaded through the importers.

For generated deployments (successes and failed attempts, equal times, several services and
environments) and incidents (open or resolved, with or without a root cause naming a deployment,
a revision or nothing known), loaded by ``gitops-dora import`` into a real DuckDB file:
* change_failure_rate <= 1 and failed_deployments <= deployment_attempts in every group;
* every incident appears exactly once in the attribution and is counted in exactly one group;
* an incident counts against at most one deployment, of its own service when the gap rule chose it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from analytics.store.connection import open_writer
from tests.stability_env import DEPLOYMENT_HEADER, INCIDENT_HEADER, copied_metrics_and_rows, gitops, write_csv
from tests.store_fixture import copy_store
from tests.typer_once import command_built_once

pytestmark = pytest.mark.usefixtures("one_duckdb_thread", "typer_command_once")  # tests/conftest.py, below
BASE = datetime(2024, 1, 1, tzinfo=UTC)
SERVICES = ("pay", "shop", "search")
ENVIRONMENTS = ("production", "staging")


def _iso(hours: int) -> str:
    return (BASE + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


deployment_rows = st.lists(
    st.tuples(
        st.sampled_from(SERVICES), st.sampled_from(ENVIRONMENTS),
        st.integers(0, 24 * 60),                 # deployed, hours after BASE (collisions are likely)
        st.sampled_from(["success", "success", "success", "failed"]),
        st.sampled_from(["r1", "r2", "r3", "r4"]),
    ),
    min_size=0, max_size=25,
)
incident_rows = st.lists(
    st.tuples(
        st.sampled_from(SERVICES), st.sampled_from(ENVIRONMENTS),
        st.integers(0, 24 * 70),                 # created
        st.one_of(st.none(), st.integers(0, 24 * 10)),  # open, or resolved this many hours later
        st.one_of(st.none(), st.integers(0, 30), st.sampled_from(["r2", "nope", "deadbeef01"])),
    ),
    min_size=0, max_size=25,
)


@pytest.fixture(scope="module")
def typer_command_once() -> Iterator[None]:
    """The click command is built from the Typer app once for the module, not in every example's
    import (tests/typer_once.py); each import still parses its arguments in a fresh click context."""
    with command_built_once():
        yield


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new store with nothing in it, made once and copied for each example (0.01 CPU-s, against
    0.08 for creating the catalog and its tables in every import): what each example tests is its
    import and the metrics over it, not the store's creation."""
    db = tmp_path_factory.mktemp("empty") / "p.duckdb"
    with open_writer(db, source="test"):
        pass
    return db


def _load(tmp: Path, deps: list[tuple[Any, ...]], incs: list[tuple[Any, ...]], empty: Path) -> Path:
    db = copy_store(empty, tmp / "p.duckdb")
    dep_rows = [(f"D{i}", s, e, rev, _iso(h), status, "") for i, (s, e, h, status, rev) in enumerate(deps)]
    inc_rows = []
    for i, (s, e, h, resolve_after, cause) in enumerate(incs):
        root = f"D{cause}" if isinstance(cause, int) else (cause or "")
        resolved = _iso(h + resolve_after) if resolve_after is not None else ""
        inc_rows.append((f"I{i}", s, e, _iso(h), resolved, "generated", root))
    files = []
    if dep_rows:
        files.append(str(write_csv(tmp / "dep.csv", DEPLOYMENT_HEADER, dep_rows)))
    if inc_rows:
        files.append(str(write_csv(tmp / "inc.csv", INCIDENT_HEADER, inc_rows)))
    if files:
        gitops(db, "import", *files)
    return db


# The corners every run checks, whatever hypothesis draws: deployments at one instant with failures
# and root causes naming a deployment, a revision and nothing known (several rows for one revision),
# and an incident without a cause after them (the gap rule picks one of the tied deployments); a
# root cause naming another service's deployment; incidents with no deployment at all (every one
# unattributed, no rate); deployments with no incident.
CORNERS = [
    ([("pay", "production", 5, "success", "r1"), ("pay", "production", 5, "failed", "r2"),
      ("pay", "production", 5, "success", "r2"), ("shop", "production", 5, "failed", "r2")],
     [("pay", "production", 5, None, 1), ("pay", "production", 6, 3, "r2"),
      ("shop", "production", 5, 0, None), ("pay", "staging", 7, None, "nope"),
      ("pay", "production", 9, 1, None)],
     ("service", "environment")),
    ([("pay", "production", 10, "success", "r1"), ("shop", "staging", 20, "failed", "r3")],
     [("pay", "production", 30, 2, 1), ("shop", "staging", 25, None, 0), ("search", "staging", 26, 1, 7)],
     ("team",)),
    ([], [("pay", "production", 1, None, None), ("shop", "staging", 2, 4, "deadbeef01")], ("environment",)),
    ([("search", "staging", 3, "failed", "r4"), ("search", "staging", 3, "failed", "r4")], [], ("service",)),
]


# 15 drawn examples: each is an import and a metrics run on a new store (1.0 CPU-s); one holds up
# to 25 deployments and 25 incidents, so it mixes these corners already, and the CORNERS run always.
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(deps=deployment_rows, incs=incident_rows, group_by=st.sampled_from(
    [("service", "environment"), ("service",), ("environment",), ("team",)]))
@example(deps=CORNERS[0][0], incs=CORNERS[0][1], group_by=CORNERS[0][2])
@example(deps=CORNERS[1][0], incs=CORNERS[1][1], group_by=CORNERS[1][2])
@example(deps=CORNERS[2][0], incs=CORNERS[2][1], group_by=CORNERS[2][2])
@example(deps=CORNERS[3][0], incs=CORNERS[3][1], group_by=CORNERS[3][2])
def test_rates_are_bounded_and_every_incident_counts_once(
    empty_store: Path, deps: list[tuple[Any, ...]], incs: list[tuple[Any, ...]], group_by: tuple[str, ...]
) -> None:
    if not deps and not incs:
        return
    with tempfile.TemporaryDirectory() as tmp_dir:
        db = _load(Path(tmp_dir), deps, incs, empty_store)
        # a window holding every generated time: deployments within 60 days, incidents within 80;
        # the engine's groups, then the attribution and the failure signals (one scan of the view
        # gives both the signals and the incident evidence) on the same reader of the snapshot, with
        # the tables they read copied into memory first (tests/stability_env.copy_view_tables)
        groups, (attribution, signal_rows) = copied_metrics_and_rows(
            db, "2024-01-01", "2024-04-01",
            "SELECT incident_id, deployment_id, attribution_rule, service, "
            "deployment_service, environment, deployment_environment FROM incident_attribution",
            "SELECT deployment_id, signal, evidence FROM failure_signals",
            group_by=group_by,
        )
        for g in groups:
            assert g["failed_deployments"] <= g["deployment_attempts"]
            if g["deployment_attempts"]:
                assert 0.0 <= g["change_failure_rate"] <= 1.0
                assert 0.0 <= g["rework_rate"] <= 1.0
            else:
                assert g["change_failure_rate"] is None
            assert g["unattributed_incidents"] <= g["incidents"]
        assert sum(g["incidents"] for g in groups) == len(incs)
        assert sum(g["deployment_attempts"] for g in groups) == len(deps)

        signals = [(dep, signal) for dep, signal, _ in signal_rows]
        incident_evidence = [(e,) for _, signal, evidence in signal_rows if signal == "incident"
                             for e in evidence or ()]
        assert sorted(r[0] for r in attribution) == sorted(f"I{i}" for i in range(len(incs)))
        for _, dep, rule, svc, dep_svc, env, dep_env in attribution:
            assert (dep is None) == (rule == "unattributed")
            if rule == "gap":
                assert (dep_svc, dep_env) == (svc, env)
        # failure signals only name real deployments, and each (deployment, signal) once
        assert len(signals) == len(set(signals))
        assert {d for d, _ in signals} <= {f"D{i}" for i in range(len(deps))}
        attributed = [r[0] for r in attribution if r[1] is not None]
        assert sorted(e[0] for e in incident_evidence) == sorted(attributed)
