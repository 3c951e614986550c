"""The dashboard's filters and their round trip through the URL query string.

A link reproduces a view because every filter lives in ``st.query_params`` under the same name as
the CLI option (``since``/``until`` are the CLI's half-open window [since, until) in UTC). A bad
parameter is reported once and replaced by its default; it never raises.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

DEFAULT_WINDOW_DAYS = 90
PARAM_NAMES = ("since", "until", "team", "service", "environment", "benchmark")


@dataclass(frozen=True)
class Filters:
    since: date
    until: date  # exclusive
    team: str | None = None
    service: str | None = None
    environment: str | None = None
    benchmark: int | None = None

    @property
    def days(self) -> int:
        return (self.until - self.since).days

    def previous(self) -> Filters:
        """The window of the same length just before this one."""
        return replace(self, since=self.since - timedelta(days=self.days), until=self.since)

    def to_params(self) -> dict[str, str]:
        params = {"since": self.since.isoformat(), "until": self.until.isoformat()}
        for name in ("team", "service", "environment"):
            value = getattr(self, name)
            if value:
                params[name] = value
        if self.benchmark is not None:
            params["benchmark"] = str(self.benchmark)
        return params


@dataclass
class ParsedParams:
    filters: Filters
    problems: list[str] = field(default_factory=list)


def default_window(latest: date | None, today: date) -> tuple[date, date]:
    """The last 90 days up to the newest deployment (so old demo data still shows), else today."""
    end = (latest or today) + timedelta(days=1)
    return end - timedelta(days=DEFAULT_WINDOW_DAYS), end


def _one(raw: Mapping[str, str | Sequence[str]], name: str) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        value = value[-1] if len(value) else ""
    value = value.strip()
    return value or None


def parse_params(
    raw: Mapping[str, str | Sequence[str]],
    *,
    teams: Sequence[str],
    services: Sequence[str],
    environments: Sequence[str],
    benchmark_years: Sequence[int],
    latest: date | None,
    today: date,
) -> ParsedParams:
    """Validate query parameters against what exists in the data; bad ones fall back to defaults."""
    problems: list[str] = []
    since_default, until_default = default_window(latest, today)

    def as_date(name: str, default: date) -> date:
        text = _one(raw, name)
        if text is None:
            return default
        try:
            return date.fromisoformat(text[:10]) if len(text) >= 10 else date.fromisoformat(text)
        except ValueError:
            problems.append(f"{name}={text!r} is not a date (YYYY-MM-DD); using {default.isoformat()}")
            return default

    since = as_date("since", since_default)
    until = as_date("until", until_default)
    if until <= since:
        problems.append(
            f"until={until.isoformat()} is not after since={since.isoformat()}; using the default window"
        )
        since, until = since_default, until_default

    def choice(name: str, allowed: Sequence[str]) -> str | None:
        text = _one(raw, name)
        if text is None:
            return None
        if text not in allowed:
            problems.append(f"{name}={text!r} is not in the data; showing all")
            return None
        return text

    team = choice("team", teams)
    service = choice("service", services)
    environment = choice("environment", environments)
    benchmark: int | None = None
    text = _one(raw, "benchmark")
    if text is not None:
        if text.isdigit() and int(text) in benchmark_years:
            benchmark = int(text)
        else:
            years = ", ".join(str(y) for y in benchmark_years) or "none installed"
            problems.append(f"benchmark={text!r} is not a DORA report year ({years}); using the latest")
    return ParsedParams(Filters(since, until, team, service, environment, benchmark), problems)
