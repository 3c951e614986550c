"""``gitops-dora`` run inside the test process, seen from outside exactly as a subprocess would be.

A CLI subprocess costs 0.4-0.7 CPU-s of interpreter start-up, imports (typer, duckdb, pydantic) and
extension loads before its work, and the suite started several hundred of them (issue #16). Tests
that are not about the process boundary call :func:`run` instead: the entry point's own
``analytics.cli.main.run`` (the one-line error handling, the redacted stderr, the exit codes) on
the real Typer app, with what a fresh process would have and nothing it would not:

* its own environment (``env`` replaces ``os.environ`` for the call, which ``putenv`` passes on to
  the git processes the command starts), working directory, ``sys.argv`` and stdin (empty, like
  the ``/dev/null`` a captured pytest run hands its children, unless ``input`` is given);
* stdout and stderr kept apart, encoded as a child's pipes are (UTF-8, strict on stdout and
  backslashreplace on stderr) and decoded as ``subprocess.run(text=True)`` decodes them (the
  parent's locale encoding, universal newlines);
* the exit status a process would return: ``sys.exit``'s code modulo 256, 1 with the message for a
  non-integer code, 1 with a traceback for an exception that escaped the entry point;
* the process-wide state the product keeps, fresh for the call and put back afterwards: the
  per-process literal budget of :mod:`analytics.store.literals`, the ref-tip guesses of
  :mod:`analytics.collectors.git`, the secrets :mod:`analytics.redaction` registered, the log
  record factory the entry point installs, the store connection settings (a module fixture may set
  one DuckDB thread in-process; a child reads ``GITOPS_DORA_DUCKDB_THREADS`` only), Typer's
  terminal settings (read from the environment at import), the ``functools`` caches of the
  product's modules (emptied), Python's default warning filters
  (pytest's would record a warning a child prints), SIGINT/SIGTERM handlers, ``tempfile``'s folder;
* store connections left unreferenced by a failed command are collected before the call returns,
  as a process exit would close them. Only what the call created is searched (``gc.freeze`` holds
  the test process's older objects out of that collection): a full collection of a test worker's
  heap cost 65-70 ms a call, 17% of the CPU of two converted modules.

Rich decides the width of tables from ``COLUMNS`` or the terminal behind file descriptors 0-2;
under pytest's capture those are not terminals in this process, nor (stdin is ``/dev/null``) in
a child, so both draw 80 columns unless the environment sets ``COLUMNS``.

What stays different, so tests about it keep a subprocess: signals and kills, start-up time and
imports (``-X importtime``), memory of the process, its real stdout encoding, several commands at
once (calls here are serialised and refuse to overlap), and whether the installed ``gitops-dora``
script starts at all. Literal binding also follows ``pandas`` being imported already (a heuristic
of :mod:`analytics.store.literals` with identical results either way), which a test process may
have done before the call.
"""

from __future__ import annotations

import contextlib
import gc
import io
import locale
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.typer_once import command_built_once

CLI = str(Path(sys.executable).with_name("gitops-dora"))

# Python's warning filters in a fresh process without -W or PYTHONWARNINGS (3.11, release build).
_DEFAULT_WARNING_FILTERS: list[tuple[str, type[Warning], str | None]] = [
    ("default", DeprecationWarning, "__main__"),
    ("ignore", DeprecationWarning, None),
    ("ignore", PendingDeprecationWarning, None),
    ("ignore", ImportWarning, None),
    ("ignore", ResourceWarning, None),
]
_busy = threading.Lock()


def _pristine_store_config() -> dict[str, Any]:
    from analytics.store import connection

    return {k: v for k, v in connection._CONFIG.items() if k != "threads"}


# Taken when the test modules are imported, before any fixture changes it.
_STORE_CONFIG = _pristine_store_config()


def run(argv: Sequence[str], *, env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None, input: str | bytes | None = None,
        ) -> subprocess.CompletedProcess[str]:  # noqa: A002 - as subprocess.run
    """``gitops-dora *argv`` as ``subprocess.run([CLI, *argv], capture_output=True, text=True, env=env,
    cwd=cwd, input=input)`` would return it (``env`` None: this process's environment)."""
    environ = dict(os.environ if env is None else env)
    _refuse_unsupported(environ)
    stdin_bytes = input.encode() if isinstance(input, str) else (input or b"")
    if not _busy.acquire(blocking=False):
        raise RuntimeError("cli_inprocess.run is busy: commands run at the same time need subprocesses")
    gc.freeze()  # what exists before the call is not the command's: the collection below skips it
    try:
        out, err = io.BytesIO(), io.BytesIO()
        with _process_state(environ, cwd, [CLI, *argv], stdin_bytes, out, err):
            code = _call([str(a) for a in argv])
        gc.collect()  # what a failed command left unreferenced (a store connection) goes, as at exit
    finally:
        gc.unfreeze()
        _busy.release()
    return subprocess.CompletedProcess([CLI, *argv], code, _as_text(out.getvalue()), _as_text(err.getvalue()))


def _call(argv: list[str]) -> int:
    """The exit status of the entry point, as the interpreter turns it into a process's."""
    from analytics.cli import main as cli_main

    try:
        with command_built_once():  # Typer rebuilt it on every call, 0.01-0.03 CPU-s
            cli_main.run(argv)
    except SystemExit as exc:
        return _exit_status(exc.code)
    except BaseException:  # noqa: BLE001 - what escapes the entry point, the interpreter prints and exits 1
        traceback.print_exc(file=sys.stderr)
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return 0


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code % 256
    print(code, file=sys.stderr)
    return 1


def _as_text(data: bytes) -> str:
    """As ``subprocess.run(text=True)`` decodes a pipe (``subprocess._translate_newlines``)."""
    text = data.decode(locale.getpreferredencoding(False))
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _refuse_unsupported(environ: Mapping[str, str]) -> None:
    """A child would encode its output differently: such a test needs a real subprocess."""
    if environ.get("PYTHONIOENCODING") or environ.get("PYTHONWARNINGS"):
        raise ValueError("cli_inprocess.run: PYTHONIOENCODING/PYTHONWARNINGS need a subprocess")
    for name in ("LC_ALL", "LC_CTYPE", "LANG"):
        value = environ.get(name)
        if value:
            plain = value.lower().replace("-", "")
            if value not in ("C", "POSIX") and "utf8" not in plain:
                raise ValueError(f"cli_inprocess.run: {name}={value} needs a subprocess")
            break


@contextlib.contextmanager
def _process_state(environ: dict[str, str], cwd: str | os.PathLike[str] | None, argv: list[str],
                   stdin_bytes: bytes, out: io.BytesIO, err: io.BytesIO) -> Iterator[None]:
    import typer.rich_utils as rich_utils

    from analytics import redaction
    from analytics.cli import main as cli_main
    from analytics.collectors import git as git_collector
    from analytics.store import connection, literals

    saved_environ = dict(os.environ)
    saved_cwd = os.getcwd()
    saved_argv = sys.argv
    saved_streams = sys.stdin, sys.stdout, sys.stderr
    saved_tempdir = tempfile.tempdir
    saved_inlined = literals._inlined_items
    saved_tips = dict(git_collector._seen_tips)
    saved_secrets = set(redaction._registered)
    saved_factory = logging.getLogRecordFactory()
    saved_factory_flag = cli_main._log_factory_installed
    saved_config = dict(connection._CONFIG)
    saved_typer = rich_utils.MAX_WIDTH, rich_utils.FORCE_TERMINAL
    main_thread = threading.current_thread() is threading.main_thread()
    saved_signals = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)} if main_thread else {}
    try:
        os.environ.clear()
        os.environ.update(environ)
        if cwd is not None:
            os.chdir(cwd)
        sys.argv = argv
        tempfile.tempdir = None
        literals._inlined_items = 0
        git_collector._seen_tips.clear()
        redaction._registered.clear()
        cli_main._log_factory_installed = False
        connection._CONFIG.clear()
        connection._CONFIG.update(_STORE_CONFIG)
        _clear_product_caches()
        width = environ.get("TERMINAL_WIDTH")
        forced = any(environ.get(name) for name in ("GITHUB_ACTIONS", "FORCE_COLOR", "PY_COLORS"))
        force = True if forced else None
        rich_utils.MAX_WIDTH = int(width) if width else None
        rich_utils.FORCE_TERMINAL = False if environ.get("_TYPER_FORCE_DISABLE_TERMINAL") else force
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin_bytes), encoding="utf-8")
        sys.stdout = io.TextIOWrapper(out, encoding="utf-8", errors="strict")  # a pipe: no tty, no fileno
        sys.stderr = io.TextIOWrapper(err, encoding="utf-8", errors="backslashreplace")
        with warnings.catch_warnings():
            warnings.resetwarnings()
            for action, category, module in reversed(_DEFAULT_WARNING_FILTERS):
                warnings.filterwarnings(action, category=category, module=module or "")  # type: ignore[arg-type]
            warnings.showwarning = _show_warning
            yield
    finally:
        ours = sys.stdin, sys.stdout, sys.stderr
        sys.stdin, sys.stdout, sys.stderr = saved_streams
        for stream in ours:  # detached, so that collecting the wrapper does not close the buffer
            with contextlib.suppress(ValueError, AttributeError):
                stream.flush()
                stream.detach()  # type: ignore[union-attr]
        os.environ.clear()
        os.environ.update(saved_environ)
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        tempfile.tempdir = saved_tempdir
        literals._inlined_items = saved_inlined
        git_collector._seen_tips.clear()
        git_collector._seen_tips.update(saved_tips)
        redaction._registered.clear()
        redaction._registered.update(saved_secrets)
        logging.setLogRecordFactory(saved_factory)
        cli_main._log_factory_installed = saved_factory_flag
        connection._CONFIG.clear()
        connection._CONFIG.update(saved_config)
        rich_utils.MAX_WIDTH, rich_utils.FORCE_TERMINAL = saved_typer
        for signum, handler in saved_signals.items():
            signal.signal(signum, handler)


def _clear_product_caches() -> None:
    """Empty the ``functools`` caches of the product's modules (the benchmark tables and ratings of
    :mod:`analytics.metrics.ratings`, ...): a fresh process starts without them, and a cached value
    that an earlier caller in this process changed in place must not reach the command."""
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "analytics" or name.startswith("analytics.")):
            continue
        for value in list(vars(module).values()):
            clear = getattr(value, "cache_clear", None)
            if callable(clear) and getattr(value, "__module__", None) == name:
                clear()


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """Python's own ``showwarning``: the formatted warning on the current stderr."""
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))
