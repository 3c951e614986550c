"""Errors that the CLI turns into one clear line on stderr."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input or environment; printed as one line, exit code 2."""

    exit_code = 2


class ConfigError(UserError):
    """The config file is invalid; the message names the key and the line."""


class StoreLockedError(UserError):
    """Another process holds the database for writing."""


class SourceError(UserError):
    """A source (repo, API, file) could not be read; the message names the input."""
