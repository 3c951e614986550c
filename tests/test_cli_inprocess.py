"""The in-process runner (tests/cli_inprocess.py) returns what the real ``gitops-dora`` process does.

Each case runs the same command both ways, in the same folder with the same environment, and
compares exit status, stdout and stderr byte for byte; the rest checks that nothing of the test
process reaches the command (environment, working directory, registered secrets, store settings)
and that nothing of the command stays behind.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from analytics import redaction
from analytics.store import connection, literals
from tests import cli_inprocess
from tests.cli_inprocess import CLI

CASES = {
    "help": ["--help"],
    "command help": ["collect", "git", "--help"],
    "unknown command": ["nosuch"],
    "bad option value": ["--db", "x.ducklake", "metrics", "--since", "yesterday-ish"],
    "no store": ["--db", "missing.ducklake", "metrics"],
    "init": ["init"],
    "config error": ["--config", "absent.yaml", "--db", "x.ducklake", "metrics"],
}


Completed = subprocess.CompletedProcess[str]


def _both(tmp_path: Path, argv: list[str], env: dict[str, str]) -> tuple[Completed, Completed]:
    (tmp_path / "sub").mkdir()
    (tmp_path / "inp").mkdir()
    sub = subprocess.run([CLI, *argv], capture_output=True, text=True, env=env, cwd=tmp_path / "sub",
                         timeout=120)
    inp = cli_inprocess.run(argv, env=env, cwd=tmp_path / "inp")
    return sub, inp


def _same(sub: Completed, inp: Completed) -> None:
    """Equal but for the working folder (each side has its own)."""
    assert (inp.returncode, inp.stdout.replace("/inp", "/sub"), inp.stderr.replace("/inp", "/sub")) \
        == (sub.returncode, sub.stdout, sub.stderr)


@pytest.mark.parametrize("argv", CASES.values(), ids=CASES.keys())
def test_same_exit_status_and_streams_as_the_console_command(tmp_path: Path, argv: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if k != "GITOPS_DORA_DB"}
    sub, inp = _both(tmp_path, argv, env)
    _same(sub, inp)
    if argv[-1] != "init":
        assert (tmp_path / "inp" / "gitops-dora.yaml").exists() is False
    else:
        written = (tmp_path / "inp" / "gitops-dora.yaml").read_text()
        assert written == (tmp_path / "sub" / "gitops-dora.yaml").read_text()


def test_exit_codes_and_streams_are_kept_apart(tmp_path: Path) -> None:
    ok = cli_inprocess.run(["--help"], cwd=tmp_path)
    assert ok.returncode == 0 and "Usage: gitops-dora" in ok.stdout and ok.stderr == ""
    usage = cli_inprocess.run(["nosuch"], cwd=tmp_path)
    assert usage.returncode == 2 and usage.stdout == ""
    assert usage.stderr == "error: No such command 'nosuch'. (see gitops-dora --help)\n"
    assert usage.args == [CLI, "nosuch"]


def test_the_environment_and_folder_are_the_calls_own(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITOPS_DORA_DB", str(tmp_path / "from-the-test-process.ducklake"))
    cwd_before, env_before = os.getcwd(), dict(os.environ)
    here = tmp_path / "here"
    here.mkdir()
    no_db = {k: v for k, v in os.environ.items() if k != "GITOPS_DORA_DB"}
    default = cli_inprocess.run(["metrics"], env=no_db, cwd=here)
    assert default.returncode == 2
    assert default.stderr == f"error: no database at {here / 'gitops-dora.ducklake'}: run " \
                             "`gitops-dora demo` or a `gitops-dora collect` command first\n"
    given = cli_inprocess.run(["metrics"], env={**no_db, "GITOPS_DORA_DB": "given.ducklake"}, cwd=here)
    assert f"no database at {here / 'given.ducklake'}:" in given.stderr
    inherited = cli_inprocess.run(["metrics"], cwd=here)  # env None: this process's environment
    assert "from-the-test-process.ducklake" in inherited.stderr
    assert (os.getcwd(), dict(os.environ)) == (cwd_before, env_before)


def test_secrets_registered_in_the_test_process_do_not_reach_the_call(tmp_path: Path) -> None:
    """A fresh process masks only what it was given; a secret another call (or the test) registered
    would turn a path into *** here and not in the console command."""
    env = {k: v for k, v in os.environ.items() if k != "GITOPS_DORA_DB"}
    argv = ["--db", str(tmp_path / "verysecretfolder1" / "db.ducklake"), "metrics"]
    before = set(redaction._registered)
    redaction.register_secret("verysecretfolder1")
    try:
        sub, inp = _both(tmp_path, argv, env)
        assert "verysecretfolder1" in sub.stderr
        _same(sub, inp)
        assert "verysecretfolder1" in redaction._registered  # put back afterwards
    finally:
        redaction._registered.clear()
        redaction._registered.update(before)


def test_a_url_secret_of_one_call_is_masked_in_that_call_only(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "GITOPS_DORA_DB"}
    before = set(redaction._registered)
    url = cli_inprocess.run(["--db", str(tmp_path / "db.ducklake"), "collect", "git",
                             "https://someone:hunter2hunter2@127.0.0.1:9/x.git"], env=env, cwd=tmp_path)
    assert url.returncode != 0 and "hunter2hunter2" not in url.stderr
    assert redaction._registered == before
    echoed = cli_inprocess.run(["--db", str(tmp_path / "hunter2hunter2" / "db.ducklake"), "metrics"],
                               env=env, cwd=tmp_path)
    assert "hunter2hunter2" in echoed.stderr


def test_process_wide_settings_are_fresh_and_put_back(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(connection._CONFIG, "threads", 1)  # as the one_duckdb_thread fixture does
    monkeypatch.setattr(literals, "_inlined_items", 12_345)
    seen: dict[str, object] = {}
    real_connect = connection.duckdb.connect

    def spy(*args: Any, **kwargs: Any) -> Any:
        config = dict(kwargs.get("config") or {})
        if "gitops-dora-spill" in str(config.get("temp_directory")):  # a store connection
            seen.setdefault("threads", config.get("threads"))
            seen.setdefault("inlined", literals._inlined_items)
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(connection.duckdb, "connect", spy)
    env = {k: v for k, v in os.environ.items() if k not in ("GITOPS_DORA_DB", "GITOPS_DORA_DUCKDB_THREADS")}
    incidents = tmp_path / "incidents.csv"
    incidents.write_text("id,service,environment,created_at,resolved_at,title,root_cause\n"
                         "i1,shop,production,2024-03-01T10:00:00Z,2024-03-01T11:00:00Z,down,\n")
    done = cli_inprocess.run(["--db", str(tmp_path / "db.ducklake"), "import", str(incidents)], env=env)
    assert done.returncode == 0, done.stderr
    assert seen == {"threads": None, "inlined": 0}
    assert connection._CONFIG["threads"] == 1 and literals._inlined_items == 12_345


def test_product_caches_start_empty(tmp_path: Path) -> None:
    """A benchmark table cached (and perhaps changed in place) by an earlier caller in this process
    is not what the command reads: it loads its own, as a fresh process does."""
    from analytics.metrics import ratings

    ratings.load_benchmark(2024)["clusters"] = "changed in place"  # what a careless caller might do
    try:
        cli_inprocess.run(["--help"], cwd=tmp_path)
        assert ratings.load_benchmark.cache_info().currsize == 0
        assert ratings.load_benchmark(2024)["clusters"] != "changed in place"
    finally:
        ratings.load_benchmark.cache_clear()


def test_calls_may_not_overlap(tmp_path: Path) -> None:
    assert cli_inprocess._busy.acquire(blocking=False)
    try:
        with pytest.raises(RuntimeError, match="busy"):
            cli_inprocess.run(["--help"], cwd=tmp_path)
    finally:
        cli_inprocess._busy.release()


def test_output_encodings_a_child_would_not_have_are_refused() -> None:
    with pytest.raises(ValueError, match="PYTHONIOENCODING"):
        cli_inprocess.run(["--help"], env={**os.environ, "PYTHONIOENCODING": "latin-1"})
    with pytest.raises(ValueError, match="LC_ALL"):
        cli_inprocess.run(["--help"], env={**os.environ, "LC_ALL": "en_US.ISO-8859-1"})
