"""The five DORA metrics as shown on tiles: which JSON field, how to format it, which way is better."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dashboards.components import fmt_hours, fmt_per_week, fmt_rate, is_missing


@dataclass(frozen=True)
class Tile:
    title: str
    field: str
    rating_keys: tuple[str, ...]
    fmt: Callable[[Any], str]
    lower_is_better: bool
    unit: str  # for deltas: "/wk", "h", "pp"


TILES = (
    Tile("Deployment frequency", "deployments_per_week", ("deployment_frequency",), fmt_per_week, False,
         "/wk"),
    Tile("Change lead time (median)", "lead_time_median_hours", ("lead_time", "change_lead_time"),
         fmt_hours, True, "h"),
    Tile("Change failure rate", "change_failure_rate", ("change_failure_rate",), fmt_rate, True, "pp"),
    Tile("Failed deployment recovery (median)", "failed_deployment_recovery_median_hours",
         ("failed_deployment_recovery_time", "time_to_restore"),
         fmt_hours, True, "h"),
    Tile("Rework rate", "rework_rate", ("rework_rate",), fmt_rate, True, "pp"),
)


def delta_text(tile: Tile, delta: Any) -> str | None:
    """The engine's ``delta`` (current - previous window) as signed text; None when unknown."""
    if is_missing(delta):
        return None
    diff = float(delta)
    if diff == 0:
        return None
    if tile.unit == "pp":
        return f"{diff * 100:+.1f} pp"
    if tile.unit == "h":
        return f"{diff:+.1f} h"
    return f"{diff:+.2f}/wk"


def what_changed(current: dict[str, Any], previous: dict[str, Any] | None, days: int) -> str:
    """One line naming the biggest relative moves since the previous window."""
    if not previous or not previous.get("deployments"):
        return f"No deployments in the previous {days} days to compare with."
    moves: list[tuple[float, str]] = []
    for tile in TILES:
        now: Any = current.get(tile.field)
        before: Any = previous.get(tile.field)
        if is_missing(now) or is_missing(before) or float(now) == float(before):
            continue
        base = abs(float(before)) or 1.0
        rel = (float(now) - float(before)) / base
        better = (rel < 0) == tile.lower_is_better
        verb = "improved" if better else "worsened"
        moves.append((abs(rel), f"{tile.title.split(' (')[0].lower()} {verb} ({tile.fmt(before)} → "
                                f"{tile.fmt(now)})"))
    if not moves:
        return f"No change in any DORA metric against the previous {days} days."
    moves.sort(key=lambda m: -m[0])
    text = "; ".join(m[1] for m in moves[:2])
    return f"Versus the previous {days} days: {text[0].upper()}{text[1:]}."
