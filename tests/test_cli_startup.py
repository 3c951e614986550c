"""CLI start-up (issue #16): the entry point imports no heavy library until a command needs it.

Timing is a benchmark's business (bench/cli_startup.py); these tests only check what is imported,
with ``python -X importtime`` in a fresh interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import cli_inprocess

HEAVY = (
    "pandas", "streamlit", "plotly", "kubernetes", "github", "gitlab", "pydriller", "starlette",
    "uvicorn", "numpy", "pyarrow", "altair", "httpx",
)
ROOT = Path(__file__).resolve().parent.parent


def _imported(code: str, *args: str) -> set[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, *args],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    names: set[str] = set()
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        name = line.rsplit("|", 1)[1].strip()
        names.add(name.split(".", 1)[0])
    assert "analytics" in names, "importtime output not recognised"
    return names


def _heavy(names: set[str]) -> list[str]:
    return sorted(n for n in HEAVY if n in names)


def test_importing_the_entry_point_loads_no_heavy_module() -> None:
    assert _heavy(_imported("import analytics.cli.main")) == []


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["deployments", "--help"],
        ["import", "--help"],
        ["collect", "--help"],
    ],
)
def test_help_loads_no_heavy_module(argv: list[str]) -> None:
    assert _heavy(_imported(_RUN, *argv)) == []


_RUN = (
    "import sys\nfrom analytics.cli.main import run\n"
    "try:\n    run(sys.argv[1:])\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
)


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with three imported deployments (what bench/cli_startup.py reads too), imported once
    for the module and in this process (tests/cli_inprocess.py): the import is not what is measured,
    and the listings below only read it."""
    folder = tmp_path_factory.mktemp("startup")
    db = folder / "s.ducklake"
    src = folder / "dep.csv"
    src.write_text(
        "id,service,environment,revision,deployed_at,status,repository\n"
        + "".join(
            f"d{i},api,production,v{i},2026-01-0{i + 1}T10:00:00Z,success,api\n" for i in range(3)
        )
    )
    proc = cli_inprocess.run(["--db", str(db), "import", str(src)], cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return db


@pytest.fixture(scope="module")
def json_listing_imports(small_store: Path) -> set[str]:
    """Every module ``deployments --format json`` imports in a fresh interpreter: one process for
    both tests that read it (top-level names for the heavy libraries, full names for the config)."""
    return _imported_modules("--db", str(small_store), "deployments", "--format", "json")


def test_reading_deployments_as_json_loads_no_heavy_module(json_listing_imports: set[str]) -> None:
    names = {name.split(".", 1)[0] for name in json_listing_imports}
    assert "analytics" in names, "importtime output not recognised"
    assert [n for n in _heavy(names) if n not in ("pyarrow", "numpy")] == []


def _imported_modules(*args: str) -> set[str]:
    """Every module (full dotted name) a CLI run imports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", _RUN, *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


def test_an_unfiltered_listing_loads_neither_the_config_nor_the_views(
        small_store: Path, json_listing_imports: set[str]) -> None:
    """The config's pydantic models cost about 0.07 s to build, and a listing needs the config
    only to name what a --service, --environment or --team filter may match."""
    db, plain = small_store, json_listing_imports
    assert "analytics.listing" in plain and "analytics.config" not in plain
    # nor pydantic through Typer's option coercion (analytics/cli/lazy_coercion.py: about 0.03-0.07
    # s of adapters and imports before the command used to start)
    assert sorted(m for m in plain if m.split(".", 1)[0] == "pydantic" or m == "typer._adapters") == []
    # nor the metric views (about 0.04 s to install): CSV and JSON list from the tables
    assert "analytics.metrics.views" not in plain
    assert "analytics.metrics.views" in _imported_modules("--db", str(db), "deployments")
    filtered = _imported_modules("--db", str(db), "deployments", "--format", "json", "--service", "api")
    assert "analytics.config" in filtered
