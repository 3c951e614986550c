"""git's head start: ``collect git`` into a new store starts its ``git log`` before the CLI loads.

Typer, pydantic, the config and duckdb take about 0.3 s of CPU to import before a command runs,
and a first collection's ``git log`` of a large history takes about as long again; run one after
the other they add up. So :func:`start` looks at the raw arguments before anything heavy is
imported and, when they are a plain ``collect git PATH`` into a store that does not exist yet,
locates the repository, reads its ref tips and starts the log (the standard library and the git
collector's reader only). The command then takes that work with :func:`take` instead of doing it
again; everything else (the config, validation, errors and their order) happens as before.

Only a store that does not exist qualifies: its first transaction finds no commits, so the log
excludes nothing, which is what this one was started with. Anything else (an existing store, a
URL, ``--help``, an option this module does not know) starts nothing. The guess is checked in the
transaction all the same (``mine_commits`` compares the exclusions), so a store created meanwhile
by another process only costs starting git again. The tips are read before the log starts, as
the command does, so the watermark never names commits the log did not see.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from analytics.paths import DB_ENV, DEFAULT_DB

if TYPE_CHECKING:
    from analytics.collectors.git_log import LogReader
    from analytics.collectors.git_source import RepoLocation

# Options before ``collect`` (analytics/cli/app.py) and of ``collect git`` (cmd_git.py) that take
# a value; tests/test_git_speed_head_start.py checks these sets against the Typer commands.
GLOBAL_VALUE_OPTIONS = frozenset({"--db", "--data-path", "--config"})
GLOBAL_FLAGS = frozenset({"--debug"})
GIT_VALUE_OPTIONS = frozenset({"--service", "--environment", "--deploy-tags", "--deploy-branch", "--repo-id"})
_POSTGRES = re.compile(r"^postgres(?:ql)?:", re.IGNORECASE)


@dataclass(frozen=True)
class HeadStart:
    """What :func:`start` did for the command's ``PATH_OR_URL`` and ``--repo-id``."""

    path_or_url: str
    repo_id: str | None
    location: RepoLocation
    tips: dict[str, str]
    log: LogReader


@dataclass(frozen=True)
class _Request:
    path: str
    repo_id: str | None
    db: str | None


_current: HeadStart | None = None
_taken = False


def parse(args: Sequence[str]) -> _Request | None:
    """The repository, ``--repo-id`` and ``--db`` of a ``collect git`` command line, or None for
    anything else (including what Typer would refuse: it reports that itself)."""
    args = list(args)
    head = _options(args, 0, GLOBAL_VALUE_OPTIONS, GLOBAL_FLAGS, until="collect")
    if head is None or head[1] or args[head[2] + 1:head[2] + 2] != ["git"]:
        return None
    tail = _options(args, head[2] + 2, GIT_VALUE_OPTIONS, frozenset(), until=None)
    if tail is None or len(tail[1]) != 1:
        return None
    return _Request(tail[1][0], tail[0].get("--repo-id"), head[0].get("--db"))


def _options(args: list[str], i: int, takes_value: frozenset[str], flags: frozenset[str],
             until: str | None) -> tuple[dict[str, str], list[str], int] | None:
    """From ``args[i]`` up to ``until`` (or the end): the last value of each option in
    ``takes_value`` (``--x v`` or ``--x=v``), the positional arguments, and where it stopped. None
    for any other option (``--help``, ``--``, one added since: no head start) or a missing value."""
    values: dict[str, str] = {}
    positional: list[str] = []
    while i < len(args) and args[i] != until:
        name, eq, value = args[i].partition("=")
        if name in takes_value:
            if not eq:
                if i + 1 >= len(args):
                    return None
                value, i = args[i + 1], i + 1
            values[name] = value
        elif args[i].startswith("-") and args[i] not in flags:
            return None
        elif args[i] not in flags:
            positional.append(args[i])
        i += 1
    return values, positional, i


def _store_is_new(db: str | None) -> bool:
    ref = db or os.environ.get(DB_ENV) or DEFAULT_DB
    if not ref or _POSTGRES.match(ref):
        return False
    return not os.path.lexists(Path(ref).expanduser().absolute())


def start(args: Sequence[str]) -> None:
    """Start git for a ``collect git`` into a new store (see the module docstring); never raises
    for the command's own input: whatever fails here, the command does again and reports."""
    global _current, _taken
    discard()
    try:
        request = parse(args)
        if request is None or not _store_is_new(request.db):
            return
        from analytics.collectors.git_source import is_url

        if is_url(request.path):
            return  # a clone or fetch comes first, and may need the command's checks
        from analytics.collectors import git_log
        from analytics.collectors.git_source import locate, ref_tips

        location = locate(request.path, request.repo_id)
        tips = ref_tips(location.local_path)
        log = git_log.LogReader(location.local_path, [])
    except Exception:  # noqa: BLE001 - the command runs the same steps and reports their errors
        return
    _current, _taken = HeadStart(request.path, request.repo_id, location, tips, log), False


def take(path_or_url: str, repo_id: str | None) -> HeadStart | None:
    """The head start made for exactly these arguments, once. Its log stays registered here, so
    :func:`discard` stops it whatever the command did with it (stopping is idempotent)."""
    global _taken
    if _current is None or _taken or (_current.path_or_url, _current.repo_id) != (path_or_url, repo_id):
        return None
    _taken = True
    return _current


def discard() -> None:
    """Stop git and remove its files unless they were used up; :func:`run <analytics.cli.main.run>`
    calls this when the command ends, however it ends."""
    global _current
    found, _current = _current, None
    if found is not None:
        found.log.abort()
