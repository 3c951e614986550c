"""Reading typed fields from imported records, with errors that name the file and the line.

Shared by the incident and deployment kinds (the leading underscore keeps this module out of
kind discovery).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from analytics.errors import SourceError
from analytics.timestamps import in_range


@dataclass
class RowContext:
    """Where a record came from, so a bad value is reported as ``file: line N: ...``."""

    path: Path
    line: int

    def error(self, message: str) -> SourceError:
        return SourceError(f"{self.path}: line {self.line}: {message}; nothing from this file was imported")


@dataclass
class Timestamp:
    value: datetime       # aware, in UTC
    had_zone: bool        # False when the input carried no zone and was read as UTC


def text(record: Mapping[str, Any], key: str) -> str | None:
    """A field as stripped text; empty strings and nulls become None."""
    value = record.get(key)
    if value is None:
        return None
    if isinstance(value, bool | dict | list):
        return str(value)
    out = str(value).strip()
    return out or None


def required_text(record: Mapping[str, Any], key: str, where: RowContext) -> str:
    value = text(record, key)
    if value is None:
        raise where.error(f"missing value for '{key}'")
    return value


def timestamp(record: Mapping[str, Any], key: str, where: RowContext) -> Timestamp | None:
    """ISO 8601 text, a YAML timestamp, a date, or epoch seconds; naive values are read as UTC."""
    value = record.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise where.error(f"'{key}' is not a timestamp: {value!r}")
    if isinstance(value, int | float):
        try:
            return _bounded(Timestamp(datetime.fromtimestamp(float(value), tz=UTC), True), key, where)
        except (OverflowError, OSError, ValueError):
            raise where.error(f"'{key}' is not a timestamp: {value!r}") from None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time())
    else:
        raw = str(value).strip()
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            raise where.error(f"'{key}' is not an ISO 8601 timestamp: {raw!r}") from None
    try:
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            return _bounded(Timestamp(parsed.replace(tzinfo=UTC), False), key, where)
        return _bounded(Timestamp(parsed.astimezone(UTC), True), key, where)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 has no UTC form
        raise where.error(f"'{key}' {value!s} is outside the years 1970-2100") from None


def _bounded(stamp: Timestamp, key: str, where: RowContext) -> Timestamp:
    if not in_range(stamp.value):
        raise where.error(f"'{key}' {stamp.value.isoformat()} is outside the years 1970-2100")
    return stamp


def columns_present(records: list[dict[str, Any]]) -> set[str]:
    """Every key used by any record (lower-cased), for detecting a file's kind."""
    keys: set[str] = set()
    for record in records:
        keys.update(str(k).strip().lower() for k in record)
    return keys


def normalise_keys(record: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k).strip().lower(): v for k, v in record.items()}
