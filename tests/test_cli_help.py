"""Help text and usage errors (issue #13): no ``<bool>`` after plain flags, ``assess --format``
says what it accepts, ``incidents --status closed`` works, and every usage error is one line."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from analytics.cli import main
from analytics.cli.main import app
from tests import cli_inprocess
from tests.store_fixture import Deploy, write_history

CLI = str(Path(sys.executable).parent / "gitops-dora")


def command_paths() -> list[list[str]]:
    """Every command and sub-command of the CLI, read from the Typer app itself."""
    root = typer.main.get_command(app)
    paths: list[list[str]] = [[]]
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        paths.append([name])
        paths += [[name, sub] for sub in getattr(command, "commands", {})]
    return paths


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "GITOPS_DORA_DB"}
    env["COLUMNS"] = "120"
    return env


def run(*args: str, db: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The console command ``gitops-dora [--db DB] ARGS`` in a subprocess."""
    prefix = ["--db", str(db)] if db is not None else []
    return subprocess.run([CLI, *prefix, *args], capture_output=True, text=True, env=_env(), timeout=120,
                          cwd=db.parent if db is not None else None)


def run_here(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    """:func:`run` in this process (tests/cli_inprocess.py: the same entry point, environment, folder,
    separate streams and exit status, without 0.3-0.7 CPU-s of interpreter start per command), for the
    store's import, the listings and the usage errors; the help texts and the bare command stay
    console commands, and tests/test_cli_inprocess.py compares both ways on usage errors."""
    return cli_inprocess.run(["--db", str(db), *args], env=_env(), cwd=db.parent)


def run_in_process(*args: str) -> tuple[int, str, str]:
    """``gitops-dora ARGS`` through the console command's own entry point (``main.run``, which turns
    errors into one line) in this process: (exit code, stdout, stderr). For output checks only; the
    tests of process behaviour use ``run``."""
    out, err = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main.run(list(args))
        except SystemExit as exc:
            code = exc.code
    return (code if isinstance(code, int) else 1), out.getvalue(), err.getvalue()


def test_no_bool_placeholder_on_any_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    # every command's help in this process (~20 interpreter starts saved): the same text as
    # `gitops-dora ... --help` prints with COLUMNS=120; test_assess_format_help_names_what_it_accepts
    # and the `--wide` row below read it from the console command
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.delenv("GITOPS_DORA_DB", raising=False)
    paths = command_paths()
    assert len(paths) > 12 and ["collect", "git"] in paths
    flags_seen = 0
    for path in paths:
        code, stdout, stderr = run_in_process(*path, "--help")
        assert code == 0, (path, stderr)
        assert "<bool>" not in stdout, (path, stdout)
        for line in stdout.splitlines():
            if "--help " in line:   # the one flag every command has: its row shows no type at all
                assert line.split("--help", 1)[1].lstrip().startswith("Show this message"), (path, line)
                flags_seen += 1
    assert flags_seen == len(paths)
    wide = run("deployments", "--help").stdout
    row = next(line for line in wide.splitlines() if "--wide" in line)
    assert row.split("--wide", 1)[1].lstrip().startswith("table: every column"), row


def test_assess_format_help_names_what_it_accepts() -> None:
    text = " ".join(run("assess", "--help").stdout.split())
    row = text[text.index("--format"):]
    assert row.startswith("--format <table|json> table (for reading) or json"), row[:120]
    assert "no csv" in row[:200]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("help")
    path = write_history(tmp / "store.ducklake", services={"web": "core"},
                         commits={"c1": ("web", "2026-03-01T08:00")},
                         deployments={"d1": Deploy("web", "web", "2026-03-01T10:00", ["c1"])})
    (tmp / "incidents.csv").write_text(
        "id,service,environment,created_at,resolved_at,title,root_cause\n"
        "I-1,web,production,2026-03-02T10:00:00Z,2026-03-02T12:00:00Z,down,\n"
        "I-2,web,production,2026-03-03T10:00:00Z,,slow,\n")
    assert run_here("import", str(tmp / "incidents.csv"), db=path).returncode == 0
    return path


def test_incidents_status_closed_is_resolved(db: Path) -> None:
    def ids(status: str) -> list[str]:
        proc = run_here("incidents", "--status", status, "--format", "json", db=db)
        assert proc.returncode == 0, proc.stderr
        return [r["id"] for r in json.loads(proc.stdout)]

    assert ids("closed") == ids("resolved") == ["I-1"]
    assert ids("open") == ["I-2"]


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["incidents", "--status", "shut"],
         ["'--status'", "'shut' is not one of 'open', 'resolved', 'closed'",
          "(see gitops-dora incidents --help)"]),
        (["metrics", "--no-such-option"], ["No such option: --no-such-option", "gitops-dora metrics --help"]),
        (["report"], ["Missing option '--out'"]),
        (["no-such-command"], ["No such command 'no-such-command'"]),
        (["metrics", "--format", "xml"], ["'xml' is not one of 'table', 'json', 'csv'"]),
    ],
)
def test_usage_errors_are_one_line(db: Path, args: list[str], needles: list[str]) -> None:
    proc = run_here(*args, db=db)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert all(n in lines[0] for n in needles), lines[0]
    assert "╭" not in proc.stderr and proc.stdout == ""


def test_no_arguments_prints_the_help_and_no_error_line() -> None:
    proc = run()
    assert proc.returncode == 2
    assert "Usage: gitops-dora" in proc.stdout and "metrics" in proc.stdout
    assert "error" not in proc.stderr


def test_commands_are_listed_in_module_order_whatever_was_imported_first() -> None:
    """Typer lists commands in the order they were registered. A process that imported a command
    module before the entry point's registration (a test, a script reusing a command's names) must
    still list them as a fresh ``gitops-dora --help`` does: by module, then as each module adds them."""
    probe = (
        "import json\n"
        "import analytics.cli.cmd_read, analytics.cli.cmd_incidents\n"
        "from analytics.cli.main import app\n"
        "print(json.dumps([c.callback.__module__ for c in app.registered_commands]))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    modules = json.loads(out.stdout)
    assert "analytics.cli.cmd_incidents" in modules and "analytics.cli.cmd_read" in modules
    assert modules == sorted(modules)
