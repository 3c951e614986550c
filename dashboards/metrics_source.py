"""DORA numbers for the pages, from the metrics engine, so the dashboard shows exactly what
``gitops-dora metrics --format json`` prints for the same filters.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from dashboards.filters import Filters
from dashboards.source import data_stamp


@dataclass(frozen=True)
class MetricsRequest:
    since: str
    until: str
    service: str | None = None
    environment: str | None = None
    group_by: str | None = None
    trend: str | None = None
    benchmark: int | None = None

    def argv(self) -> list[str]:
        args = ["--since", self.since, "--until", self.until]
        if self.service:
            args += ["--service", self.service]
        if self.environment:
            args += ["--environment", self.environment]
        if self.group_by:
            args += ["--group-by", self.group_by]
        if self.trend:
            args += ["--trend", self.trend]
        if self.benchmark is not None:
            args += ["--benchmark", str(self.benchmark)]
        return args


class MetricsUnavailable(Exception):
    """The metrics command is not installed yet or failed; the message says why."""


def request_for(f: Filters, *, group_by: list[str] | None = None, trend: str | None = None) -> MetricsRequest:
    """The engine call for these filters; a team filter becomes a group-by team (then picked)."""
    dims = list(group_by or [])
    if f.team and not f.service and "team" not in dims:
        dims.append("team")
    return MetricsRequest(
        since=f.since.isoformat(), until=f.until.isoformat(), service=f.service,
        environment=f.environment, group_by=",".join(dims) or None, trend=trend, benchmark=f.benchmark,
    )


def _run_metrics(db: Path, req: MetricsRequest) -> dict[str, Any]:
    from analytics.cli.main import app

    out = io.StringIO()
    argv = ["--db", str(db), "metrics", *req.argv(), "--format", "json"]
    try:
        with redirect_stdout(out):
            app(args=argv, prog_name="gitops-dora", standalone_mode=False)
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise MetricsUnavailable(f"`gitops-dora metrics` exited {exc.code}") from None
    except Exception as exc:  # noqa: BLE001 - shown as one line on the page
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MetricsUnavailable(first) from None
    text = out.getvalue()
    try:
        payload = json.loads(text)
    except json.JSONDecodeError:
        raise MetricsUnavailable("the metrics command is not available in this version yet") from None
    if not isinstance(payload, dict) or "groups" not in payload:
        raise MetricsUnavailable("unexpected metrics output")
    return payload


@st.cache_data(show_spinner=False, max_entries=256)
def _cached(db: str, stamp: int, req: MetricsRequest) -> dict[str, Any]:
    del stamp
    return _run_metrics(Path(db), req)


def metrics(db: Path, req: MetricsRequest) -> dict[str, Any]:
    return _cached(str(db), data_stamp(db), req)


def groups_for(payload: dict[str, Any], f: Filters) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = list(payload.get("groups") or [])
    if f.team and not f.service:
        groups = [g for g in groups if g.get("team") == f.team]
    return groups


def single_group(payload: dict[str, Any], f: Filters) -> dict[str, Any] | None:
    groups = groups_for(payload, f)
    return groups[0] if groups else None


def rating_of(group: dict[str, Any], metric: str) -> str | None:
    """The cluster a metric was rated into (ratings are keyed by metric; values may be objects)."""
    ratings = group.get("ratings") or {}
    value = ratings.get(metric)
    if isinstance(value, dict):
        value = value.get("cluster") or value.get("rating")
    return str(value) if value else None


GROUP_KEYS = ("service", "team", "environment", "repository")


def trend_frame(payload: dict[str, Any], f: Filters, fields: list[str]) -> Any:
    """`metrics --trend` groups as a frame: period_start, group label, and the requested fields."""
    import pandas as pd

    rows = []
    for g in groups_for(payload, f):
        start = g.get("period_start") or g.get("period")
        if start is None:
            continue
        label = " · ".join(str(g[k]) for k in GROUP_KEYS if g.get(k)) or "all"
        rows.append({"period_start": pd.Timestamp(start), "group": label, **{k: g.get(k) for k in fields}})
    frame = pd.DataFrame(rows, columns=["period_start", "group", *fields])
    return frame.sort_values(["group", "period_start"]) if len(frame) else frame
