"""A real ``gitops-dora dashboard`` process for the browser tests, and the one on the demo store that
test_browser.py and test_browser_pages.py share (tests/conftest.py, ``demo_dashboard``).

Each of those modules started its own dashboard on the same read-only demo store: one more
Streamlit start-up, imports and first engine run of every page (the dashboard's caches are per
process) for the same pages. Both only read what the dashboard draws, so one server per worker
serves both; tests/xdist_order.py puts the two modules on the same worker.

Also ``dashboard_command``: the ``gitops-dora dashboard`` command run in the test process up to the
point where it execs Streamlit, for the tests about what the command checks, prints and passes on
(its warnings, its option checks, the environment and command line the server gets).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.child_env import child_env

CLI = str(Path(sys.executable).parent / "gitops-dora")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Dashboard:
    """A started dashboard: its ``url`` (``http://127.0.0.1:PORT``) and the ``log`` of its output."""

    url: str
    log: Path


@contextmanager
def dashboard(db: Path, root: Path, env: dict[str, str] | None = None, *,
              warmup: bool = False) -> Iterator[Dashboard]:
    """``gitops-dora --db DB dashboard --port PORT`` run in ``root`` (environment: ``env``, else
    tests/child_env.py) until it answers its health check (60 s at most); stopped with its process
    group afterwards. Its output goes to ``root/dashboard-PORT.log``.

    ``warmup``: whether the server computes the default Overview in the background when the first
    page is opened (dashboards/warmup.py; ``GITOPS_DORA_WARMUP``, which ``gitops-dora dashboard``
    sets to 1 for users). The tests pass their own ``since``/``until`` and never show the default
    window, so the warm-up is 1.3-1.8 CPU-s per server competing with the page a test waits for
    (demo store, measured); off unless asked for (the command keeps a ``GITOPS_DORA_WARMUP=0`` it
    is given; test_browser_security's dashboard keeps the warm-up on, as users run it)."""
    env = dict(child_env() if env is None else env)
    env["GITOPS_DORA_WARMUP"] = "1" if warmup else "0"
    port = free_port()
    log_path = root / f"dashboard-{port}.log"
    log = log_path.open("w")
    proc = subprocess.Popen([CLI, "--db", str(db), "dashboard", "--port", str(port)], stdout=log,
                            stderr=subprocess.STDOUT, env=env, cwd=root, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                    if resp.read() == b"ok":
                        break
            except OSError:
                pass
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "dashboard did not become healthy in 60 s"
            time.sleep(0.3)
        yield Dashboard(url, log_path)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@dataclass(frozen=True)
class CommandRun:
    """What ``gitops-dora ... dashboard ...`` did before it would have become the Streamlit server:
    ``result`` (exit status, stdout and stderr as a subprocess's, tests/cli_inprocess.py), and
    the program, command line and environment it exec'd (``None`` when it stopped before the exec)."""

    result: subprocess.CompletedProcess[str]
    program: str | None
    argv: list[str] | None
    env: dict[str, str] | None


@contextmanager
def _exec_recorded(calls: list[tuple[str, list[str], dict[str, str]]]) -> Iterator[None]:
    """``os.execve`` records its arguments and ends the command with status 0 instead of replacing
    the test process (``cli_inprocess`` calls are serialised, so nothing else execs meanwhile)."""
    real = os.execve

    def recorded(path: str, args: Sequence[str], env: Mapping[str, str]) -> None:
        calls.append((path, list(args), dict(env)))
        raise SystemExit(0)

    os.execve = recorded  # type: ignore[assignment]
    try:
        yield
    finally:
        os.execve = real


def dashboard_command(argv: Sequence[str], *, env: Mapping[str, str],
                      cwd: str | os.PathLike[str]) -> CommandRun:
    """``gitops-dora *argv`` (a ``dashboard`` command) in this process until its exec of Streamlit.

    A ``gitops-dora dashboard`` process costs 0.4-0.7 CPU-s of interpreter start-up and imports
    before the first line it prints (more when the test stops it after the exec, in Streamlit's own
    imports), and a test of its warnings or option checks started one per case (issue #16). What
    happens before the exec is the CLI's code, the same here; the tests about the server itself (it
    starts, serves, stops on a signal) keep a process (``dashboard`` above,
    test_dashboard_security's ``first_stderr_line``)."""
    from tests import cli_inprocess  # not at import: tests/conftest.py imports this module

    calls: list[tuple[str, list[str], dict[str, str]]] = []
    with _exec_recorded(calls):
        result = cli_inprocess.run(list(argv), env=env, cwd=cwd)
    assert len(calls) <= 1, calls
    if not calls:
        return CommandRun(result, None, None, None)
    program, args, exec_env = calls[0]
    return CommandRun(result, program, args, exec_env)
