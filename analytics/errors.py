"""Errors that the CLI turns into one clear line on stderr."""

from __future__ import annotations

# Why a NUL character is refused, in every layer that refuses one (imports, the store's MERGE and
# error translation, the webhook receiver): DuckLake writes values into its catalog's SQL, where a
# NUL ends the string (analytics/store/upsert.py).
NUL_REFUSED = "a NUL character (\\0), which the store cannot hold"


class UserError(Exception):
    """A problem with the user's input or environment; printed as one line, exit code 2."""

    exit_code = 2


class ConfigError(UserError):
    """The config file is invalid; the message names the key and the line."""


class StoreLockedError(UserError):
    """Another process holds the database for writing."""


class SourceError(UserError):
    """A source (repo, API, file) could not be read; the message names the input."""


def yaml_mark(exc: Exception) -> tuple[str, str]:
    """Where a PyYAML error is (``line N``, or "" when it has no mark) and what is wrong, each
    read from the error's own fields: its text runs over several lines, the first of which says
    only where parsing stood ("while parsing a flow sequence"), then the problem and its line, then
    an excerpt of the file."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or (str(exc).splitlines() or [type(exc).__name__])[0]
    return (f"line {mark.line + 1}" if mark is not None else ""), str(problem)


def yaml_problem(exc: Exception) -> str:
    """``line N: <what is wrong>`` of a PyYAML error (:func:`yaml_mark`)."""
    where, problem = yaml_mark(exc)
    return f"{where}: {problem}" if where else problem
