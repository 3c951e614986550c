"""Progress for long runs: a Rich bar on a TTY, plain lines (for logs and CronJobs) otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Progress(Protocol):
    def advance(self, n: int = 1) -> None: ...
    def update(self, *, total: int | None = None, description: str | None = None) -> None: ...


class _PlainProgress:
    """Prints a line after each 2 seconds of work, plus the final count. A phase that fails
    sooner prints nothing, so its error stays the one line a log or a script reads."""

    def __init__(self, description: str, total: int | None) -> None:
        self.description, self.total, self.done = description, total, 0
        self._last = time.monotonic()

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last >= 2.0:
            self._last = now
            self._print()

    def update(self, *, total: int | None = None, description: str | None = None) -> None:
        if total is not None:
            self.total = total
        if description is not None:
            self.description = description

    def _print(self) -> None:
        of = f"/{self.total}" if self.total else ""
        print(f"{self.description}: {self.done}{of}", file=sys.stderr, flush=True)

    def finish(self) -> None:
        self._print()


class _RichProgress:
    def __init__(self, bar: object, task: object) -> None:
        self._bar, self._task = bar, task

    def advance(self, n: int = 1) -> None:
        self._bar.advance(self._task, n)  # type: ignore[attr-defined]

    def update(self, *, total: int | None = None, description: str | None = None) -> None:
        kwargs: dict[str, object] = {}
        if total is not None:
            kwargs["total"] = total
        if description is not None:
            kwargs["description"] = description
        self._bar.update(self._task, **kwargs)  # type: ignore[attr-defined]


@contextmanager
def progress(description: str, total: int | None = None) -> Iterator[Progress]:
    if sys.stderr.isatty():
        from rich.progress import BarColumn, MofNCompleteColumn, TimeElapsedColumn
        from rich.progress import Progress as RichBar

        columns = (BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with RichBar("[progress.description]{task.description}", *columns, transient=False) as bar:
            task = bar.add_task(description, total=total)
            yield _RichProgress(bar, task)
    else:
        plain = _PlainProgress(description, total)
        yield plain
        plain.finish()


def say(message: str) -> None:
    """A status line on stderr (stdout is kept for command output such as JSON). Its data (file
    names, targets, repository names) is text: control characters are removed, so a file named
    with an escape sequence cannot retitle or recolour the terminal."""
    from analytics.redaction import strip_controls

    print(strip_controls(message, keep_newlines=True), file=sys.stderr, flush=True)
