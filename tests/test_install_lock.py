"""The locked install holds what the code needs. CI once failed where the suite passed locally:
the receiver's guards need httptools, which the dev venv had from an earlier install but
requirements/runtime.lock did not pin, so a fresh clone fell back to uvicorn's unguarded h11."""

from __future__ import annotations

import ast
import importlib.metadata as md
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("analytics", "assessment", "dashboards")
# Imported by a library on the code's behalf, but only where our code relies on it by name.
INDIRECT = {"httptools": "analytics/webhooks/server.py"}


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned(lock: str) -> set[str]:
    text = (ROOT / "requirements" / lock).read_text()
    return {norm(m) for m in re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", text, re.M)}


def imported_modules() -> dict[str, str]:
    """Top-level module -> one file importing it, for every absolute import in the shipped code."""
    found: dict[str, str] = {}
    for package in SHIPPED:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for name in names:
                    found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def test_every_third_party_import_of_the_shipped_code_is_pinned_in_the_runtime_lock() -> None:
    ours = set(SHIPPED) | {"gitops_dora_data"}
    dists = md.packages_distributions()
    modules = imported_modules()
    for module, where in INDIRECT.items():
        assert module in (ROOT / where).read_text(), f"{where} no longer relies on {module}"
        modules.setdefault(module, where)
    third_party = {m: f for m, f in modules.items() if m not in ours and m not in sys.stdlib_module_names}
    assert "duckdb" in third_party and "httptools" in third_party  # the scan sees imports at all
    lock = pinned("runtime.lock")
    unpinned = {
        m: f for m, f in third_party.items() if not any(norm(d) in lock for d in dists.get(m, [m]))
    }
    assert not unpinned, f"imported but not in requirements/runtime.lock: {unpinned}"


def test_the_dev_lock_pins_everything_the_runtime_lock_pins() -> None:
    runtime, dev = pinned("runtime.lock"), pinned("dev.lock")
    assert len(runtime) > 50
    assert runtime <= dev, sorted(runtime - dev)


def test_this_venv_holds_only_what_the_dev_lock_pins() -> None:
    """scripts/bootstrap.sh removes leftovers, so what passes here passes on a fresh clone."""
    installed = {norm(d.metadata["Name"]) for d in md.distributions()}
    assert "duckdb" in installed
    extra = installed - pinned("dev.lock") - {"pip", "gitops-dora"}
    assert not extra, f"installed but not locked (run scripts/bootstrap.sh dev): {sorted(extra)}"


def test_the_receiver_refuses_to_start_without_httptools(tmp_path: Path) -> None:
    """Without httptools uvicorn would serve over h11, which has none of the receiver's guards."""
    blocker = tmp_path / "site"
    blocker.mkdir()
    # a module that fails to import shadows the installed one, as if it were not installed
    (blocker / "httptools.py").write_text("raise ImportError('httptools is blocked by the test')\n")
    db = tmp_path / "store.ducklake"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_DORA_")}
    env |= {"GITOPS_DORA_GITHUB_SECRET": "s", "PYTHONPATH": str(blocker)}
    cli = str(Path(sys.executable).with_name("gitops-dora"))
    done = subprocess.run(
        [cli, "--db", str(db), "serve-webhooks", "--port", "1"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "httptools" in lines[0], done.stderr
    assert not db.exists() and not Path(f"{db}.files").exists()  # nothing half-written
