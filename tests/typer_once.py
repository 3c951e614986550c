"""Typer's click command built once per test process for the CLI run in-process
(tests/cli_inprocess.py, and modules that call ``main.run`` or ``CliRunner`` themselves).

``Typer.__call__`` (what ``analytics.cli.main.run`` calls) and ``typer.testing.CliRunner.invoke``
rebuild the whole click command tree from the app on every call (``typer.main.get_command``:
every command's parameters read back from its function signature). A process runs one command, so
the product pays it once; a fuzz or property test that imports hundreds of files in-process paid
it on each of them, 0.02-0.03 CPU-s a call and a fifth of a small refused import (cProfile of
``test_fuzz_import``). :func:`command_built_once` keeps the command built for an app and hands the
same one back while the app's registrations are unchanged: click makes a new context per
invocation and keeps no state of one call in the command, so each call parses and runs exactly as
a fresh process would. Only the command's construction is shared, never a command's run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest


def _shape(app: Any) -> tuple[int, ...]:
    """What ``get_command`` builds from: a new command, group or callback changes it."""
    return (id(app), len(app.registered_commands), len(app.registered_groups),
            id(app.registered_callback))


# the commands built so far in this process, by app and registrations (kept across blocks: the
# in-process CLI of tests/cli_inprocess.py enters a block for every call)
_built: dict[tuple[int, ...], tuple[Any, Any]] = {}


@contextlib.contextmanager
def command_built_once() -> Iterator[None]:
    """Within the block, ``typer.main.get_command`` (and typer.testing's copy of it) returns the
    command it built before for the same app with the same registrations. A block inside another
    changes nothing."""
    import typer.main
    import typer.testing

    real = typer.main.get_command
    if getattr(real, "_built_once", False):
        yield
        return

    def get_command(app: typer.Typer) -> Any:
        key = _shape(app)
        entry = _built.get(key)
        if entry is None or entry[0] is not app:
            entry = _built[key] = (app, real(app))
        return entry[1]

    get_command._built_once = True  # type: ignore[attr-defined]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(typer.main, "get_command", get_command)
        patch.setattr(typer.testing, "_get_command", get_command)
        yield
