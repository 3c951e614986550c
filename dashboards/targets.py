"""Targets (config ``targets:``) as the pages show them: "met", or missed by how much, in the unit
of the tile the target sits under, so the gap reads against the figure above it."""

from __future__ import annotations

from typing import Any

from analytics.config import Config, check_target, load_config
from analytics.errors import ConfigError
from dashboards.definitions import MetricDef
from dashboards.source import config_path
from dashboards.tiles import fmt, unit_for


def current_config() -> tuple[Config, str | None]:
    """The config the page reads ($GITOPS_DORA_CONFIG), and why it could not be read: a broken
    config must not take the page down, only its targets."""
    try:
        return load_config(config_path()), None
    except ConfigError as exc:
        return Config(), str(exc)


def target_status(metric: MetricDef, value: Any, target: float) -> tuple[bool | None, str]:
    """(met, text): ``(True, "target ≤ 24.0 h: met")``, ``(False, "target ≤ 10.0%: missed by
    5.3 pp")``, ``(None, "target ≥ 5.00/wk: no value to judge")``."""
    check = check_target(metric.field, value, target)
    unit = unit_for(metric, check.value if check.value is not None else target)
    goal = f"target {check.comparison} {fmt(metric, target, unit)}"
    if check.met is None:
        return None, f"{goal}: no value to judge"
    if check.met:
        return True, f"{goal}: met"
    gap = check.missed_by * unit.factor
    return False, f"{goal}: missed by {gap:.{unit.decimals}f}{unit.delta_suffix}"


def target_caption(metric: MetricDef, value: Any, target: float) -> str:
    met, text = target_status(metric, value, target)
    mark = "✅" if met else "❌" if met is False else "➖"
    return f"{mark} {text[0].upper()}{text[1:]}"
