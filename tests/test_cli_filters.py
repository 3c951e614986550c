"""An unknown ``--service``/``--team``/``--environment`` on a read command is one error line and exit 2,
listing the values the store knows (at most 12, then how many more) (issue #13).

Hand-made store: 15 services svc-00 .. svc-14 (teams team-a for even numbers, team-b for odd), one
production deployment each, plus one staging deployment of svc-00.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests import cli_inprocess
from tests.store_fixture import Deploy, write_history

SERVICES = {f"svc-{i:02d}": ("team-a" if i % 2 == 0 else "team-b") for i in range(15)}
COMMANDS = ("metrics", "deployments", "incidents", "changes", "report")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    commits: dict[str, tuple[str, str] | tuple[str, str, str | None]] = {
        f"c{i}": (f"repo-{i}", f"2026-02-{i + 1:02d}T08:00") for i in range(15)}
    deployments = {f"d{i}": Deploy(name, f"repo-{i}", f"2026-02-{i + 1:02d}T12:00", [f"c{i}"])
                   for i, name in enumerate(SERVICES)}
    deployments["s0"] = Deploy("svc-00", "repo-0", "2026-02-01T11:00", ["c0"], environment="staging")
    db = write_history(tmp_path_factory.mktemp("filters") / "store.ducklake", services=dict(SERVICES),
                       commits=commits, deployments=deployments,
                       environments={"production": True, "staging": False})
    (db.parent / "incidents.csv").write_text(
        "id,service,environment,created_at,resolved_at,title,root_cause\n"
        "I-A,svc-00,production,2026-02-03T10:00:00Z,,a,\n"
        "I-B,svc-01,production,2026-02-04T10:00:00Z,,b,\n")
    assert run(db, "import", str(db.parent / "incidents.csv")).returncode == 0
    return db


def run(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "GITOPS_DORA_DB"}
    env["COLUMNS"] = "200"
    return cli_inprocess.run(["--db", str(db), *args], env=env, cwd=db.parent)  # in this process


def command_args(command: str, tmp: Path) -> list[str]:
    return [command, "--out", str(tmp / "r.csv")] if command == "report" else [command]


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert proc.stdout == ""
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS)
def test_unknown_service_lists_the_known_ones_capped(db: Path, tmp_path: Path, command: str) -> None:
    line = one_error_line(run(db, *command_args(command, tmp_path), "--service", "nosuchservice"))
    known = sorted(SERVICES)
    assert line == ("error: --service nosuchservice: not in the store or the config; known services: "
                    + ", ".join(known[:12]) + ", … (3 more)")
    assert not (tmp_path / "r.csv").exists()   # report: nothing written


@pytest.mark.parametrize("command", COMMANDS)
def test_unknown_environment_names_only_the_unknown_values(db: Path, tmp_path: Path, command: str) -> None:
    line = one_error_line(run(db, *command_args(command, tmp_path), "--environment", "production,prod",
                              "--environment", "qa"))
    assert line == ("error: --environment prod, qa: not in the store or the config; "
                    "known environments: production, staging")


@pytest.mark.parametrize("command", COMMANDS)
def test_unknown_team(db: Path, tmp_path: Path, command: str) -> None:
    line = one_error_line(run(db, *command_args(command, tmp_path), "--team", "team-c"))
    assert line == "error: --team team-c: not in the store or the config; known teams: team-a, team-b"


@pytest.mark.parametrize("command", COMMANDS)
def test_known_values_still_filter(db: Path, tmp_path: Path, command: str) -> None:
    args = ["--service", "svc-00", "--environment", "staging", "--team", "team-a"]
    fmt = ["--format", "json"] if command != "report" else []
    proc = run(db, *command_args(command, tmp_path), *args, *fmt)
    assert proc.returncode == 0, proc.stderr
    if command == "deployments":
        assert '"id": "s0"' in proc.stdout and '"id": "d0"' not in proc.stdout
    if command == "report":
        rows = (tmp_path / "r.csv").read_text().splitlines()
        assert len(rows) == 2 and ",svc-00,team-a,staging,".strip(",") in rows[1]


def test_incidents_filter_by_team(db: Path) -> None:
    def ids(*args: str) -> list[str]:
        proc = run(db, "incidents", "--format", "json", *args)
        assert proc.returncode == 0, proc.stderr
        return [r["id"] for r in json.loads(proc.stdout)]

    assert ids() == ["I-A", "I-B"]
    assert ids("--team", "team-a") == ["I-A"] and ids("--team", "team-b") == ["I-B"]
    assert ids("--team", "team-a,team-b") == ["I-A", "I-B"]


def test_teams_and_services_the_config_names_are_known(db: Path, tmp_path: Path) -> None:
    """A service's further teams (services[].teams) live only in the config; they filter all the same."""
    config = tmp_path / "gitops-dora.yaml"
    config.write_text("services:\n  - name: svc-00\n    team: team-a\n    teams: [team-x]\n")
    proc = run(db, "--config", str(config), "metrics", "--team", "team-x", "--group-by", "service",
               "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert [g["service"] for g in json.loads(proc.stdout)["groups"]] == ["svc-00"]
    line = one_error_line(run(db, "metrics", "--team", "team-x"))   # without that config: unknown
    assert line == "error: --team team-x: not in the store or the config; known teams: team-a, team-b"
