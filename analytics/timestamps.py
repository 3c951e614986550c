"""Reading the timestamps senders write: webhooks, code-host APIs and reconciler objects each use
ISO-8601 with or without a zone, GitLab's ``2026-01-01 10:00:00 UTC`` or epoch seconds. One reader,
so a time means the same wherever it came from (deployments derived from a webhook and from a
``kubectl`` dump must land on the same instant)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

# Times outside these years are typos or placeholders (Go's zero time 0001-01-01, 9999-12-31): they
# would skew every metric and some overflow pandas' and DuckDB's time arithmetic, so every path
# (import, cluster, webhook) refuses or skips them.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2101, 1, 1, tzinfo=UTC)  # exclusive: the last year accepted is 2100


def in_range(value: datetime) -> bool:
    """Whether an aware time lies in the accepted years 1970-2100."""
    return EARLIEST <= value < LATEST


def parse_time(value: Any) -> datetime | None:
    """ISO-8601 / GitLab-style / epoch timestamps; naive ones are read as UTC; junk gives None,
    and so does a time no datetime holds (epoch 9.2e18 seconds, NaN, year 1 east of UTC).

    A ``datetime`` or ``date`` is what a YAML loader makes of an unquoted timestamp
    (``deployedAt: 2026-01-05T10:00:00Z`` in a ``kubectl -o yaml`` dump): it is read exactly as its
    text would be, aware ones converted to UTC, naive ones and dates (midnight) taken as UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, datetime):
        return _in_utc(value)
    if isinstance(value, date):
        return _in_utc(datetime.combine(value, time()))
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith(" UTC"):
        text = text[:-4]
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = datetime.strptime(text, "%Y-%m-%d %H:%M:%S %z")
        except ValueError:
            return None
    return _in_utc(parsed)


def _in_utc(parsed: datetime) -> datetime | None:
    """Naive is UTC; aware is converted; None when UTC has no such day (year 1 east of UTC)."""
    try:
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except OverflowError:
        return None


def read_time(value: Any, field: str) -> datetime | None:
    """A time from a webhook payload: absent (None) gives None; a value that is there but is no
    time :func:`parse_time` reads (``""``, ``true``, ``"Tue, 01 Jan 2026 00:00:00 +0000"``, an
    epoch out of range) raises ``ValueError`` naming ``field``, so the delivery is refused (422)
    instead of being stored without the row that needed the time. So does a time outside the years
    1970-2100 (``0001-01-01T00:00:00Z``): stored, it broke every later ``metrics`` run."""
    if value is None:
        return None
    parsed: datetime | None = None
    if not isinstance(value, bool) and isinstance(value, str | int | float):
        try:
            parsed = parse_time(value)
        except (ValueError, OverflowError, OSError):
            parsed = None
    if parsed is None:
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise ValueError(
            f"{field}: unreadable time {shown} (ISO 8601, 'YYYY-MM-DD HH:MM:SS +HHMM' or epoch seconds)"
        )
    if not in_range(parsed):  # Go's zero time, 9999-12-31: the rule every import and collector applies
        raise ValueError(f"{field}: time {parsed.isoformat()} is outside the years 1970-2100")
    return parsed
