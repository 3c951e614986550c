"""Ctrl-C ends every command with one line and exit status 130 (analytics/cli/main.py).

Three ways it did not: Typer turns a KeyboardInterrupt inside a command into a silent Exit(130); a
DuckDB query cancelled by the signal surfaces as a RuntimeError "Query interrupted" (exit 1 with a
"RuntimeError" line), possibly wrapped in the store's error (exit 2); and DuckDB 1.5 can spin for
ever in the statement after a cancelled one, so the command never ended. Real processes, real
signals: SIGINT handling is what is tested, so no in-process runner.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _start(script: str, tmp_path: Path) -> subprocess.Popen[str]:
    """``script`` in a Python child that imports the CLI, then prints "ready" and runs main.run."""
    path = tmp_path / "child.py"
    path.write_text(textwrap.dedent(script))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # SIGINT as a terminal gives it: a test run started in the background (``cmd &`` in a script)
    # ignores SIGINT, its children inherit that, and Python then leaves it ignored (as the CLI must)
    return subprocess.Popen([sys.executable, str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=tmp_path, preexec_fn=_default_sigint)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt_when_ready(proc: subprocess.Popen[str], signals: int = 1) -> tuple[int, str, float]:
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    began = time.monotonic()
    for _ in range(signals):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err, time.monotonic() - began


# A command whose clean-up never ends after Ctrl-C, as DuckDB's did: it swallows the interrupt.
HANGING = """
    import sys, time
    from analytics.cli import main
    main.INTERRUPT_GRACE_SECONDS = {grace}

    def hanging(args):
        print("ready", flush=True)
        try:
            time.sleep(60)
        finally:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    time.sleep(0.05)
                except KeyboardInterrupt:
                    pass

    main._run = hanging
    main.run(["deployments"])
"""


def test_a_clean_up_that_never_ends_is_cut_after_the_grace_period(tmp_path: Path) -> None:
    code, err, took = _interrupt_when_ready(_start(HANGING.format(grace=1.0), tmp_path))
    assert code == 130
    assert err == "error: interrupted\n"
    assert took < 30  # the child's clean-up alone would take 60 s


def test_a_second_ctrl_c_exits_at_once(tmp_path: Path) -> None:
    code, err, took = _interrupt_when_ready(_start(HANGING.format(grace=600.0), tmp_path), signals=2)
    assert code == 130
    assert err == "error: interrupted\n"
    assert took < 30


@pytest.mark.parametrize("raised", [
    "KeyboardInterrupt()",                              # Typer's silent Exit(130)
    "RuntimeError('Query interrupted')",                # DuckDB's fetch after the signal
    "UserError('store x: reading failed: Query interrupted')",  # wrapped by the store
])
def test_an_interrupted_command_says_so_and_exits_130(tmp_path: Path, raised: str) -> None:
    code, err = _deployments_failing_with(f"""
        try:
            raise RuntimeError("Query interrupted")
        except RuntimeError:
            raise {raised}
    """, tmp_path)
    assert code == 130, err
    assert err == "error: interrupted\n"


def test_other_errors_keep_their_line_and_status(tmp_path: Path) -> None:
    code, err = _deployments_failing_with('raise RuntimeError("something else")', tmp_path)
    assert code == 1
    assert err.startswith("error: RuntimeError: something else")


def _deployments_failing_with(body: str, tmp_path: Path) -> tuple[int, str]:
    """``deployments`` run by main.run in a child whose store opening runs ``body`` (which raises)."""
    script = "\n".join([
        "import analytics.store.connection as connection",
        "from analytics.cli import main",
        "from analytics.errors import UserError",
        "def open_reader(*args, **kwargs):",
        textwrap.indent(textwrap.dedent(body).strip(), "    "),
        "connection.open_reader = open_reader",
        "print('ready', flush=True)",
        "main.run(['--db', 'store.ducklake', 'deployments'])",
    ])
    proc = _start(script, tmp_path)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


def test_the_handler_is_put_back_after_a_run(tmp_path: Path) -> None:
    """An in-process caller (a test, a script) gets its SIGINT handler back, no timer is left, and
    its heap is not frozen (main._freeze_heap is for the installed script's own exit only)."""
    script = """
        import gc, signal, sys, threading
        from analytics.cli import main
        before = signal.getsignal(signal.SIGINT)
        try:
            main.run(["--help"])
        except SystemExit as exit:
            assert exit.code == 0, exit.code
        assert signal.getsignal(signal.SIGINT) is before
        assert not [t for t in threading.enumerate() if isinstance(t, threading.Timer)]
        assert gc.get_freeze_count() == 0, gc.get_freeze_count()
        sys.argv = ["gitops-dora", "--help"]
        try:
            main.run()  # as the console script calls it, on its way out
        except SystemExit as exit:
            assert exit.code == 0, exit.code
        assert gc.get_freeze_count() > 0
        print("ready", flush=True)
    """
    proc = _start(script, tmp_path)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.strip().endswith("ready")


@pytest.mark.parametrize("installed", [True, False])
def test_the_installed_script_leaves_without_the_teardown(tmp_path: Path, installed: bool) -> None:
    """After Ctrl-C the installed script (``run()`` without arguments) exits at once: DuckDB's
    native threads met its static destructors in the interpreter's teardown and the process
    aborted (-6) or crashed (-11) after its line. An in-process caller (arguments given) keeps the
    usual SystemExit, so its own clean-up still runs."""
    call = "main.run()" if installed else "main.run(['--db', 'store.ducklake', 'deployments'])"
    script = f"""
        import atexit, sys
        import analytics.store.connection as connection
        from analytics.cli import main

        def open_reader(*args, **kwargs):
            raise KeyboardInterrupt

        connection.open_reader = open_reader
        atexit.register(lambda: print("teardown ran", file=sys.stderr, flush=True))
        sys.argv = ["gitops-dora", "--db", "store.ducklake", "deployments"]
        print("ready", flush=True)
        {call}
    """
    proc = _start(script, tmp_path)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err == ("error: interrupted\n" if installed else "error: interrupted\nteardown ran\n")
