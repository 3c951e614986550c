"""README commands run as written (issue #13).

Every line of a fenced code block in README.md that runs ``gitops-dora`` (after any ``VAR=value``
prefixes) is extracted and run the way the README tells a reader to: with ``.venv/bin`` on PATH
(``source .venv/bin/activate``) and ``GITOPS_DORA_DB`` as the README's ``export`` line sets it,
from a folder laid out like the checkout after ``scripts/demo.sh`` (``demo/gitops-dora.ducklake``,
``demo/incidents.csv``). The store is a small hand-made copy of the demo organisation (its
services, teams, environments and months), built in seconds instead of the demo's minute.

A command is a *template* when the README marks it as one: a ``~/`` path, a URL, ``...``, a
capitalised placeholder (``N``), or a server/long build (``dashboard``, ``serve-webhooks``,
``demo``, ``--watch``). A template runs with ``--help`` appended, which still fails on an unknown
command or option. Everything else must exit 0 and print something (or write its ``--out`` file).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests import cli_inprocess
from tests.store_fixture import Deploy, write_history

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
VENV_BIN = Path(sys.executable).parent
GLOBAL_WITH_VALUE = {"--db", "--data-path", "--config"}
LONG_RUNNING = {"dashboard", "serve-webhooks", "demo"}
ACTIVATE = "source .venv/bin/activate"


def readme_commands() -> list[tuple[str, list[str]]]:
    """(``VAR=value`` prefix, arguments) of each ``gitops-dora`` line of README.md's code blocks,
    continuation lines joined."""
    commands: list[tuple[str, list[str]]] = []
    for block in re.findall(r"^```[a-z]*\n(.*?)^```", README.read_text(), flags=re.M | re.S):
        for line in block.replace("\\\n", " ").splitlines():
            prefix = re.match(r"^(?:[A-Z_][A-Z0-9_]*=\S*\s+)*", line.strip())
            assert prefix is not None
            rest = line.strip()[prefix.end():]
            if rest.startswith("gitops-dora "):
                commands.append((prefix[0], shlex.split(rest, comments=True)))
    return commands


def subcommand(args: list[str]) -> str:
    rest = args[1:]
    while rest and rest[0].startswith("--"):
        rest = rest[2:] if rest[0] in GLOBAL_WITH_VALUE else rest[1:]
    return rest[0] if rest else ""


def is_template(prefix: str, args: list[str]) -> bool:
    return ("..." in prefix or subcommand(args) in LONG_RUNNING or "--watch" in args
            or any("~/" in a or "..." in a or "://" in a or re.fullmatch(r"[A-Z][A-Z_]*", a) for a in args))


COMMANDS = [args for _, args in readme_commands()]
RUNNABLE = [args for prefix, args in readme_commands() if not is_template(prefix, args)]
TEMPLATES = [args for prefix, args in readme_commands() if is_template(prefix, args)]


def readme_db_export() -> str:
    match = re.search(r'^export GITOPS_DORA_DB="?([^"\s]+)"?', README.read_text(), flags=re.M)
    assert match, "README must say how to point at the demo's store"
    return match[1]


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder like the checkout after demo.sh: demo/gitops-dora.ducklake and demo/incidents.csv."""
    root = tmp_path_factory.mktemp("readme")
    demo = root / "demo"
    demo.mkdir()
    teams = {"storefront": "web", "payments-api": "payments", "inventory": "supply"}
    commits: dict[str, tuple[str, str] | tuple[str, str, str | None]] = {}
    deployments: dict[str, Deploy] = {}
    start = date(2026, 5, 4)
    for week in range(26):  # 2026-05-04 .. 2026-10-26, one change a week per service
        day = start + timedelta(weeks=week)
        for n, service in enumerate(teams):
            sha = f"{service}-{week:02d}"
            commits[sha] = (service, f"{day - timedelta(days=1 + n)}T09:00")
            for env, hour in (("staging", 10), ("production", 14)):
                status = "failed" if env == "production" and week % 7 == 3 else "success"
                deployments[f"{service}-{env}-{week:02d}"] = Deploy(
                    service, service, f"{day}T{hour}:{n:02d}", [sha], env, status)
    write_history(demo / "gitops-dora.ducklake", services=teams, commits=commits, deployments=deployments,
                  environments={"production": True, "staging": False})
    (demo / "incidents.csv").write_text(
        "id,service,environment,created_at,resolved_at,title,root_cause\n"
        "INC-1001,payments-api,production,2026-05-25T03:59:02Z,2026-05-25T07:59:02Z,Regression,\n"
        "INC-1002,storefront,production,2026-08-12T10:00:00Z,2026-08-13T10:00:00Z,Checkout slow,\n"
        "INC-1003,inventory,production,2026-10-20T08:00:00Z,,Stock levels stale,\n")
    # imported already, as in the demo's store: no README command depends on another having run
    proc = run(root, ["gitops-dora", "import", "demo/incidents.csv"])
    assert proc.returncode == 0, proc.stderr
    return root


def reader_env(checkout: Path) -> dict[str, str]:
    """A reader's shell after the README's two set-up lines: venv on PATH, GITOPS_DORA_DB exported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_DORA_")}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["GITOPS_DORA_DB"] = readme_db_export().replace("$PWD", str(checkout))
    env["COLUMNS"] = "80"
    return env


def run(checkout: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    """``args`` as that shell runs them: ``gitops-dora`` found on PATH, in a process of its own."""
    return subprocess.run(args, capture_output=True, text=True, env=reader_env(checkout), cwd=checkout,
                          timeout=300)


def run_here(checkout: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    """``gitops-dora ...`` as :func:`run` would return it, run in this process (tests/cli_inprocess.py:
    same entry point, environment, folder, streams and exit status, without 0.5 CPU-s of start-up
    for each of the README's 40 lines). The fixture's import runs the PATH's script for real."""
    assert args[0] == "gitops-dora", args
    return cli_inprocess.run(args[1:], env=reader_env(checkout), cwd=checkout)


def test_readme_says_how_to_activate_and_where_the_demo_store_is() -> None:
    text = README.read_text()
    assert ACTIVATE in text
    assert readme_db_export() == "$PWD/demo/gitops-dora.ducklake"   # where scripts/demo.sh builds it
    assert 'GITOPS_DORA_DB="${GITOPS_DORA_DB:-$PWD/demo/gitops-dora.ducklake}"' in (
        ROOT / "scripts" / "demo.sh").read_text()
    assert len(RUNNABLE) >= 15 and len(TEMPLATES) >= 8, (len(RUNNABLE), len(TEMPLATES))
    assert not any("demo.ducklake" in a for c in COMMANDS for a in c)   # the path the demo never built


@pytest.mark.parametrize("args", RUNNABLE, ids=[" ".join(c[1:]) for c in RUNNABLE])
def test_readme_command_runs_as_written(checkout: Path, args: list[str]) -> None:
    proc = run_here(checkout, args)
    assert proc.returncode == 0, (args, proc.stderr)
    if "--out" in args:
        out = checkout / args[args.index("--out") + 1]
        assert out.is_file() and out.stat().st_size > 0, args
    else:
        assert (proc.stdout + proc.stderr).strip(), args
    assert "error" not in proc.stderr.lower(), proc.stderr


@pytest.mark.parametrize("args", TEMPLATES, ids=[" ".join(c[1:]) for c in TEMPLATES])
def test_readme_template_names_real_commands_and_options(checkout: Path, args: list[str]) -> None:
    proc = run_here(checkout, [*args, "--help"])
    assert proc.returncode == 0, (args, proc.stderr)
    assert "Usage: gitops-dora" in proc.stdout
