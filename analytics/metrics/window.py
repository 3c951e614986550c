"""Report windows and trend periods, always in UTC and always half-open [start, end).

Half-open windows let consecutive windows (and trend periods) tile time with no instant counted
twice: a deployment exactly at ``until`` belongs to the next window.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from analytics.errors import UserError

Trend = Literal["week", "month"]
TRENDS: tuple[str, ...] = ("week", "month")
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_instant(text: str, option: str) -> datetime:
    """YYYY-MM-DD (midnight UTC) or ISO 8601 with a zone; a zoneless time is refused, not guessed."""
    value = text.strip()
    if _DATE_ONLY.match(value):
        try:
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), tzinfo=UTC)
        except ValueError:
            raise UserError(f"{option} {text!r}: not a valid date (use YYYY-MM-DD)") from None
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise UserError(
            f"{option} {text!r}: not a date (use YYYY-MM-DD or ISO 8601 with a zone, "
            "e.g. 2026-05-01T12:00:00Z)"
        ) from None
    if parsed.tzinfo is None:
        raise UserError(
            f"{option} {text!r}: a time needs a zone (Z or +HH:MM), or give a plain date YYYY-MM-DD"
        )
    return parsed.astimezone(UTC)


def parse_edges(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """``--since`` and ``--until`` of a listing command (``deployments``, ``changes``,
    ``incidents``), either optional, refused together when the half-open window they make is
    empty: an inverted window would otherwise list nothing and exit 0, which reads as "no data"
    (``metrics`` and ``report`` refuse it through :class:`Window`). One check, so every command
    says it with the same line and exit code."""
    lo = parse_instant(since, "--since") if since else None
    hi = parse_instant(until, "--until") if until else None
    if lo is not None and hi is not None and hi <= lo:
        raise UserError(f"--until {until} must be after --since {since}")
    return lo, hi


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime

    def __post_init__(self) -> None:
        if self.until <= self.since:
            raise UserError(
                f"--until {self.until.isoformat()} must be after --since {self.since.isoformat()}"
            )

    @property
    def length(self) -> timedelta:
        return self.until - self.since

    def previous(self) -> Window:
        """The window of equal length that ends where this one starts.

        A window longer than the time between the year 1 and its start has no previous window
        that a date can express (``--since 1000-01-01 --until 9999-12-31``): refused with one
        line naming the options, not an ``OverflowError`` with exit 1."""
        try:
            return Window(self.since - self.length, self.since)
        except OverflowError:
            raise UserError(
                f"--compare-previous: the window of the same length ({self.length.days} days) before "
                f"{self.since.date().isoformat()} would start before the year 1; "
                "give a later --since or a shorter window"
            ) from None


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime

    @property
    def days(self) -> float:
        return (self.end - self.start).total_seconds() / 86400.0


def _day_start(moment: datetime) -> datetime:
    return datetime.combine(moment.astimezone(UTC).date(), datetime.min.time(), tzinfo=UTC)


# The last and first instants a datetime holds: no window reaches past them.
END_OF_TIME = datetime.max.replace(tzinfo=UTC)
START_OF_TIME = datetime.min.replace(tzinfo=UTC)


def _next_boundary(moment: datetime, trend: str) -> datetime:
    """The first week (Monday 00:00 UTC) or month boundary strictly after ``moment``, or
    :data:`END_OF_TIME` in the last week or month of the year 9999, whose end a datetime cannot
    hold (Monday 10000-01-03, 10000-01-01): no window reaches past it, so the period is clipped
    to the window's end as any last period is, instead of an ``OverflowError`` (exit 1)."""
    day = _day_start(moment)
    if trend not in TRENDS:
        raise UserError(f"--trend {trend!r}: use one of {', '.join(TRENDS)}")
    try:
        if trend == "week":
            monday = day - timedelta(days=day.weekday())
            return monday + timedelta(days=7)
        if day.month == 12:
            return day.replace(year=day.year + 1, month=1, day=1)
        return day.replace(month=day.month + 1, day=1)
    except (OverflowError, ValueError):  # past the year 9999
        return END_OF_TIME


def periods(window: Window, trend: str | None) -> list[Period]:
    """Calendar periods (ISO weeks or months, UTC) covering the window, clipped to its edges."""
    if trend is None:
        return [Period(window.since, window.until)]
    result: list[Period] = []
    start = window.since
    while start < window.until:
        end = min(_next_boundary(start, trend), window.until)
        result.append(Period(start, end))
        start = end
    return result


def default_window(first: datetime | None, last: datetime | None, since: datetime | None,
                   until: datetime | None) -> Window:
    """Fill missing edges from the data: [first deployment day, the day after the last one)."""
    one_day = timedelta(days=1)
    lo = since or (_day_start(first) if first else None)
    hi = until or (_shifted(_day_start(last), one_day) if last else None)
    if lo is None and hi is None:
        lo = _day_start(datetime.now(UTC))
        hi = lo + one_day
    elif lo is None:
        assert hi is not None
        lo = min(_day_start(first), _shifted(hi, -one_day)) if first else _shifted(hi, -one_day)
    elif hi is None:
        hi = _shifted(lo, one_day)
        if last:
            hi = max(_shifted(_day_start(last), one_day), hi)
    return Window(lo, hi)


def _shifted(moment: datetime, step: timedelta) -> datetime:
    """``moment + step`` kept within what a datetime holds. A deployment stored as 9999-12-31
    (or 0001-01-01), or ``--since 9999-12-31`` alone, made every ``metrics`` run without the other
    edge end with an ``OverflowError`` (exit 1); clamped, the default window still holds it."""
    try:
        return moment + step
    except OverflowError:
        return END_OF_TIME if step > timedelta(0) else START_OF_TIME
