"""Scheduled reports: one tidy row per group and period, written atomically as CSV, JSON or Markdown."""

from __future__ import annotations

import re

_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value: str) -> str:
    """Neutralise spreadsheet formulas: prefix ``'`` to text starting with = + - @ (or tab/CR).

    Plain numbers such as ``-3.5`` stay as they are, so negative deltas remain numbers.
    """
    if value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.match(value):
        return "'" + value
    return value
