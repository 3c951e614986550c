"""The DORA metrics as shown on tiles: one unit per tile (chosen from the value, the delta in the
same unit), the trend sparkline, and the one-line "what changed"."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dashboards.components import is_missing
from dashboards.definitions import METRICS, MetricDef

TILES: tuple[MetricDef, ...] = METRICS
ROLLING_WEEKS = 4


@dataclass(frozen=True)
class Unit:
    suffix: str     # "/wk", " min", " h", " d", "%"
    factor: float   # display = raw value * factor
    decimals: int
    delta_suffix: str


PER_WEEK = Unit("/wk", 1.0, 2, "/wk")
PERCENT = Unit("%", 100.0, 1, " pp")
MINUTES = Unit(" min", 60.0, 0, " min")
HOURS = Unit(" h", 1.0, 1, " h")
DAYS = Unit(" d", 1 / 24, 1, " d")


def unit_for(metric: MetricDef, value: Any) -> Unit:
    """Durations: minutes under an hour, hours under two days, days from there (decided by the
    value shown, and kept for its delta and its previous value)."""
    if metric.kind == "per_week":
        return PER_WEEK
    if metric.kind == "rate":
        return PERCENT
    if is_missing(value):
        return HOURS
    hours = abs(float(value))
    return MINUTES if hours < 1 else HOURS if hours < 48 else DAYS


def fmt(metric: MetricDef, value: Any, unit: Unit | None = None) -> str:
    if is_missing(value):
        return "—"
    unit = unit or unit_for(metric, value)
    return f"{float(value) * unit.factor:.{unit.decimals}f}{unit.suffix}"


def delta_text(metric: MetricDef, value: Any, delta: Any) -> str | None:
    """The engine's ``delta`` (current - previous window) in the unit of the value shown; None
    when unknown or zero."""
    if is_missing(delta):
        return None
    unit = unit_for(metric, value)
    shown = round(float(delta) * unit.factor, unit.decimals)
    if shown == 0:  # no change at the precision shown: no arrow either way
        return None
    return f"{shown:+.{unit.decimals}f}{unit.delta_suffix}"


def sparkline(metric: MetricDef, periods: list[dict[str, Any]]) -> list[float]:
    """The metric per week over the window (``metrics --trend week`` groups, oldest first), in the
    tile's display scale. Rates of small counts (change failure, rework) are pooled over rolling
    4 weeks: the failed (rework) deployments of the week and the 3 before it over their attempts.
    Weeks without a value are left out."""
    points: list[float] = []
    for i, period in enumerate(periods):
        if metric.smoothed and metric.numerator and metric.denominator:
            window = periods[max(0, i - ROLLING_WEEKS + 1): i + 1]
            den = sum(float(p.get(metric.denominator) or 0) for p in window)
            value: Any = None if den == 0 else sum(float(p.get(metric.numerator) or 0) for p in window) / den
        else:
            value = period.get(metric.field)
        if not is_missing(value):
            points.append(float(value) * (100.0 if metric.kind == "rate" else 1.0))
    return points


def rolling_rate(metric: MetricDef, periods: list[dict[str, Any]]) -> list[float | None]:
    """Per period, the rolling 4-week pooled rate (None where there were no attempts)."""
    out: list[float | None] = []
    for i in range(len(periods)):
        window = periods[max(0, i - ROLLING_WEEKS + 1): i + 1]
        den = sum(float(p.get(metric.denominator or "") or 0) for p in window)
        num = sum(float(p.get(metric.numerator or "") or 0) for p in window)
        out.append(None if den == 0 else num / den)
    return out


def what_changed(current: dict[str, Any], previous: dict[str, Any] | None, days: int) -> str:
    """One line naming the biggest relative moves since the previous window, both values in the
    unit of the tile."""
    if not previous or not previous.get("deployments"):
        return f"No deployments in the previous {days} days to compare with."
    moves: list[tuple[float, str]] = []
    for metric in TILES:
        now: Any = current.get(metric.field)
        before: Any = previous.get(metric.field)
        if is_missing(now) or is_missing(before) or float(now) == float(before):
            continue
        base = abs(float(before)) or 1.0
        rel = (float(now) - float(before)) / base
        better = (rel < 0) == metric.lower_is_better
        verb = "improved" if better else "worsened"
        unit = unit_for(metric, now)
        name = metric.title.split(" (")[0].lower()
        moves.append((abs(rel), f"{name} {verb} ({fmt(metric, before, unit)} → {fmt(metric, now, unit)})"))
    if not moves:
        return f"No change in any DORA metric against the previous {days} days."
    moves.sort(key=lambda m: -m[0])
    text = "; ".join(m[1] for m in moves[:2])
    return f"Versus the previous {days} days: {text[0].upper()}{text[1:]}."
