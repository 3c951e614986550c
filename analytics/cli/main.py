"""Entry point: registers every ``cmd_*`` module and turns errors into one line on stderr.

Everything the process writes to stderr (error lines, ``--debug`` tracebacks, status lines, log
records of the libraries underneath) passes through :mod:`analytics.redaction`, so a credential
given on the command line, in the environment or echoed back by a server never reaches a
terminal or a CI log.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

from analytics.cli import git_head_start
from analytics.redaction import one_line, redact, register_url_secrets, strip_controls

if TYPE_CHECKING:
    import typer

# Typer, the command modules and what they import load in run(), after git_head_start has had its
# chance to start git: a first `collect git` of a large history then walks while they load.
# ``app`` stays importable from here (module __getattr__ below), with every command registered.
_registered: typer.Typer | None = None


def _register_commands() -> typer.Typer:
    global _registered
    if _registered is None:
        import importlib
        import pkgutil

        import analytics.cli as cli_pkg
        from analytics.cli.app import app

        modules = [f"{cli_pkg.__name__}.{info.name}"
                   for info in sorted(pkgutil.iter_modules(cli_pkg.__path__), key=lambda i: i.name)
                   if info.name.startswith("cmd_")]
        for name in modules:
            importlib.import_module(name)
        # Typer lists commands in the order they were registered, which is the order their modules
        # were first imported: a process that imported one of them early (a test, a script using a
        # command module's names) would list it first. The help lists them by module, as here.
        rank = {name: i for i, name in enumerate(modules)}
        app.registered_commands.sort(key=lambda c: rank.get(getattr(c.callback, "__module__", ""), len(rank)))
        _registered = app
    return _registered


def __getattr__(name: str) -> Any:
    if name == "app":
        return _register_commands()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _RedactingStream:
    """A text stream that redacts every write before passing it on (stderr of the CLI)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(redact(text))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextmanager
def _redacted_stderr() -> Iterator[None]:
    original = sys.stderr
    if isinstance(original, _RedactingStream):
        yield
        return
    sys.stderr = _RedactingStream(original)
    try:
        yield
    finally:
        sys.stderr = original


_log_factory_installed = False


def _install_log_redaction() -> None:
    """Redact every log record's message when it is made (whatever handler prints it later)."""
    global _log_factory_installed
    if _log_factory_installed:
        return
    import logging

    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is the logging module's business
            return record
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return record

    logging.setLogRecordFactory(factory)
    _log_factory_installed = True


def _fail(message: str, code: int) -> None:
    print(f"error: {one_line(message)}", file=sys.stderr)
    sys.exit(code)


def _print_traceback(exc: BaseException) -> None:
    """``--debug``: the traceback, redacted and without terminal control characters."""
    import traceback

    text = "".join(traceback.format_exception(exc))
    sys.stderr.write(strip_controls(redact(text), keep_newlines=True))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def _interrupted(exc: BaseException) -> bool:
    """Whether Ctrl-C is what ended the command. DuckDB answers the signal by cancelling the running
    query, which surfaces as its InterruptException, or, from a fetch, as a RuntimeError "Query
    interrupted", possibly wrapped in the store's own error: not the user's input, not a crash."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, KeyboardInterrupt) or type(current).__name__ == "InterruptException":
            return True
        if isinstance(current, RuntimeError) and str(current).strip() == "Query interrupted":
            return True
        current = current.__cause__ or current.__context__
    return False


# After Ctrl-C the command unwinds (DuckDB cancels its query, ``finally`` blocks close the store) and
# exits 130. DuckDB 1.5 can spin for ever in the next statement after a cancelled query that ran a
# recursive CTE (the attribution and lead-time views use them): the process then used a core until
# killed. So the first Ctrl-C also starts a timer, and the process exits 130 when the unwinding has
# not ended within this many seconds, or at once on a second Ctrl-C. Nothing is lost by that: a
# write commits in one transaction or not at all, and a read has nothing to save.
INTERRUPT_GRACE_SECONDS = 5.0


class _InterruptGuard:
    """The SIGINT handler of one ``run`` (see ``INTERRUPT_GRACE_SECONDS``)."""

    def __init__(self) -> None:
        import signal

        self._signal = signal
        self._timer: Any = None
        self._previous: Any = None
        self.installed = False

    def install(self) -> None:
        import threading

        signal = self._signal
        # Only where Python's own handler is in place: a background job of a shell ignores SIGINT
        # (SIG_IGN), and an embedding program may have its own.
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            return
        self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        self.installed = True

    def _on_sigint(self, signum: int, frame: Any) -> None:
        import threading

        if self._timer is not None:
            _exit_interrupted()
        self._timer = threading.Timer(INTERRUPT_GRACE_SECONDS, _exit_interrupted)
        self._timer.daemon = True
        self._timer.start()
        raise KeyboardInterrupt

    def remove(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.installed:
            self._signal.signal(self._signal.SIGINT, self._previous)
            self.installed = False


def _exit_interrupted() -> None:
    """Leave now, as the unwinding after Ctrl-C did not end (see ``INTERRUPT_GRACE_SECONDS``). Runs
    on the timer's thread, so it writes to the file descriptor and flushes no Python stream: the
    main thread may be stuck holding a stream's lock (unlike :func:`_leave_interrupted`)."""
    try:
        os.write(2, b"error: interrupted\n")
    finally:
        os._exit(130)


def _freeze_heap() -> None:
    """Move every object to the collector's permanent generation before the interpreter exits: its
    shutdown collection then has nothing to scan. After a report the heap holds the command's
    modules and results, and that scan was 0.05-0.07 s of the `metrics` command's plain window
    (0.016-0.031 s frozen; docs/performance.md, "Metrics CLI, session 12"). Only for the process's
    own exit: a caller that keeps running would keep its garbage for good."""
    import gc

    gc.freeze()


def run(argv: list[str] | None = None) -> None:
    try:
        _run_guarded(argv)
    except SystemExit as exit:
        if argv is None and exit.code == 130:
            _leave_interrupted()
        raise


def _leave_interrupted() -> None:
    """The installed script's exit after Ctrl-C, its line printed: at once, without the interpreter's
    teardown. A Ctrl-C that lands while DuckDB is being imported or a connection opened on another
    thread left a native thread that DuckDB's static destructors then met: the process aborted
    ("terminate called without an active exception", exit -6) or crashed (-11) after printing
    "error: interrupted", 5 of 40 times at 0.2-0.35 s into `metrics`. Nothing is lost by skipping
    the teardown: the command's own clean-up (``finally`` blocks, the chunk folders, the
    transaction's rollback) ran while the exception went up, and the streams are flushed here."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(130)


def _run_guarded(argv: list[str] | None) -> None:
    args = sys.argv[1:] if argv is None else argv
    guard = _InterruptGuard()
    try:
        guard.install()  # inside: a Ctrl-C right after it still takes the handler away again
        try:
            git_head_start.start(args)  # first: git walks while Typer and the commands load
            _run(args)
        except KeyboardInterrupt:  # before _run's own handling: while Typer or a command loaded
            _fail("interrupted", 130)
    finally:
        try:
            git_head_start.discard()
        finally:
            guard.remove()
            if argv is None:  # the installed script, about to exit (in-process callers pass argv)
                _freeze_heap()


def _run(args: list[str]) -> None:
    import typer
    from typer._click.exceptions import ClickException, NoArgsIsHelpError  # Typer's own click, not exported

    from analytics.errors import UserError

    app = _register_commands()
    debug = "--debug" in args
    for arg in args:  # a password typed into a URL argument is masked wherever it shows up later
        if "://" in arg and "@" in arg:
            register_url_secrets(arg)
    _install_log_redaction()
    with _redacted_stderr():
        try:
            # Not standalone: Typer would draw a usage error (an unknown option, --status closed) as
            # a box of several lines; the CLI's contract is one line on stderr for every error.
            result = app(args=args, prog_name="gitops-dora", standalone_mode=False)
        except SystemExit:
            raise
        except NoArgsIsHelpError as exc:  # the help is printed already (Rich renders it to stdout)
            sys.exit(exc.exit_code)
        except ClickException as exc:
            usage_ctx = getattr(exc, "ctx", None)
            where = f" (see {usage_ctx.command_path} --help)" if usage_ctx is not None else ""
            _fail(f"{exc.format_message()}{where}", exc.exit_code)
        except typer.Abort:
            _fail("aborted", 1)
        except UserError as exc:
            if debug:
                _print_traceback(exc)
            if _interrupted(exc):
                _fail("interrupted", 130)
            _fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except BrokenPipeError:  # `gitops-dora metrics --format csv | head`: the reader has all it wanted
            # (Typer handled this itself while it ran standalone); silence the flush at exit too
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        except OSError as exc:  # the environment (permissions, a full disk, a vanished folder)
            if debug:
                _print_traceback(exc)
            where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
            reason = exc.strerror or _first_line(exc) or type(exc).__name__
            _fail(f"{where}{reason}", UserError.exit_code)
        except Exception as exc:  # noqa: BLE001 - the CLI contract is one line, no traceback
            if debug:
                _print_traceback(exc)
            if _interrupted(exc):
                _fail("interrupted", 130)
            _fail(f"{type(exc).__name__}: {_first_line(exc)} (run with --debug for a traceback)", 1)
        # an Exit(code) comes back as its code; a command's own return value is no exit status
        code = result if isinstance(result, int) and not isinstance(result, bool) else 0
        if code == 130:  # Typer turns a KeyboardInterrupt in a command into Exit(130), silently
            _fail("interrupted", 130)
        sys.exit(code)


if __name__ == "__main__":
    run()
