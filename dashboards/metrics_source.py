"""DORA numbers for the pages, from the metrics engine's Python API, passed through the same JSON
encoding as ``gitops-dora metrics --format json`` so the dashboard shows exactly what it prints.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from analytics.errors import UserError
from analytics.store.connection import open_reader
from dashboards.filters import Filters
from dashboards.source import config_path, data_stamp, on_store_replaced

GROUP_KEYS = ("service", "team", "environment", "repository")
OVERVIEW_GROUP_BY = ("environment",)
ALL_SERVICES = "all services"


@dataclass(frozen=True)
class MetricsRequest:
    """One engine call; the same fields as the ``metrics`` command's options."""

    since: str
    until: str
    group_by: tuple[str, ...] = OVERVIEW_GROUP_BY
    service: str | None = None
    environment: str | None = None
    team: str | None = None
    trend: str | None = None
    compare_previous: bool = False
    benchmark: int | None = None
    # one group for everything the filters keep (the organisation row): see pooled_connection
    pooled: bool = False

    def argv(self) -> list[str]:
        """The equivalent ``gitops-dora metrics`` arguments (tests run them to compare). A pooled
        request has none: ``metrics`` always groups by at least one dimension."""
        if self.pooled:
            raise ValueError("a pooled request has no `gitops-dora metrics` equivalent")
        args = ["--since", self.since, "--until", self.until, "--group-by", ",".join(self.group_by)]
        for option, value in (("--service", self.service), ("--environment", self.environment),
                              ("--team", self.team), ("--trend", self.trend)):
            if value:
                args += [option, value]
        if self.compare_previous:
            args.append("--compare-previous")
        if self.benchmark is not None:
            args += ["--benchmark", str(self.benchmark)]
        return args


class MetricsUnavailable(Exception):
    """The engine could not answer; the message is one line for the page."""


def request_for(
    f: Filters, *, group_by: tuple[str, ...] = OVERVIEW_GROUP_BY, trend: str | None = None,
    compare_previous: bool = False, pooled: bool = False,
) -> MetricsRequest:
    return MetricsRequest(
        since=f.since.isoformat(), until=f.until.isoformat(),
        group_by=("team",) if pooled else group_by, service=f.service,
        environment=f.environment, team=f.team, trend=trend, compare_previous=compare_previous,
        benchmark=f.benchmark, pooled=pooled,
    )


def pooled_services(con: Any, req: MetricsRequest) -> tuple[str, ...] | None:
    """The service filter that stands for ``--team`` in a pooled request (the team column is
    blanked there); None when the request has no team filter."""
    if not req.team:
        return None
    from analytics.store.connection import CATALOG
    from analytics.store.dimensions import stored_one_row_per_key

    # the stored teams (one row per service, as every reader sees them), also on a connection
    # where pool_teams has blanked them in ``services``
    stored = stored_one_row_per_key("services", CATALOG)
    rows = con.execute(f"SELECT name FROM ({stored}) WHERE team = ? ORDER BY name", [req.team]).fetchall()
    names = tuple(str(r[0]) for r in rows)
    return tuple(n for n in names if n == req.service) if req.service else names


def pool_teams(con: Any) -> None:
    """On this (private, read-only) connection, make every service's team NULL: the metric views
    read ``team`` from ``services``, so grouping by team then gives one group holding every
    service, computed by the engine's own SQL under the documented definitions. (The engine has no
    group-by-nothing; ``metrics`` groups by at least one dimension.)"""
    from analytics.store.connection import CATALOG
    from analytics.store.dimensions import stored_one_row_per_key

    stored = stored_one_row_per_key("services", CATALOG)
    con.execute(f"CREATE OR REPLACE TEMP VIEW services AS SELECT * REPLACE (CAST(NULL AS VARCHAR) AS team) "
                f"FROM ({stored})")


def unpool_teams(con: Any) -> None:
    """Undo :func:`pool_teams`: ``services`` is every reader's one-row-per-key view of the stored
    table again (the connection is reused)."""
    from analytics.store.connection import CATALOG
    from analytics.store.dimensions import view_statement

    con.execute(view_statement("services", CATALOG))


def _midnight(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class _EngineReaders:
    """Idle engine connections per (database, snapshot stamp), reused by later engine runs.

    Opening a reader attaches the store and installs every metric view: 0.1-0.3 CPU-s, as much as a
    small store's whole engine run, paid by every request before this pool. An engine run has a
    connection to itself (it takes seconds at scale, and the shared page reader must stay free for
    the quick queries meanwhile); ``compute_metrics`` puts back its views and drops its tables before
    returning, so the next run finds the connection as it was opened. A connection that saw a
    failure is closed, not kept, and a newer snapshot closes the idle connections of older ones.
    Connections are pinned to the stamp's snapshot, the one the result is cached under. An idle
    connection holds memory (80-130 MB more RSS than closing it, with its table copies, at the bench
    scale of 100k deployments), so at most ``idle`` per snapshot are kept, for the ``databases``
    used last (a server reads one; a test process opens many): pages compute one request after
    another, and concurrent sessions open extra connections that are closed when done.

    A new connection also copies the store tables the engine copies into TEMP tables for every
    report (``COPIED_TABLES``, ``COPIED_WHEN_SMALL``): the engine leaves a caller's TEMP copy of
    that name alone, so the copies are made once per connection instead of once per request (on
    DuckLake each costs a catalog look-up besides the scan). The connection is pinned to one
    snapshot, so they hold what the engine's own copies would. ``services`` is not copied: a pooled
    request shadows it with a TEMP view of its own (:func:`pool_teams`), and the engine copies it.
    """

    def __init__(self, idle: int = 1, *, copies: bool = True, databases: int = 2) -> None:
        self._idle = idle
        self._databases = databases
        self._copies = copies
        self._lock = threading.Lock()
        self._free: dict[tuple[str, int], list[Any]] = {}
        # connections handed out since the last clear(): one taken before a store was replaced is
        # closed when given back, not kept for the new store's requests of the same snapshot id
        self._out: set[int] = set()

    def take(self, db: Path, stamp: int) -> Any:
        with self._lock:
            stale = [k for k in self._free if k[0] == str(db) and k[1] != stamp]
            closing = [con for k in stale for con in self._free.pop(k)]
            free = self._free.get((str(db), stamp))
            con = free.pop() if free else None
        for old in closing:
            old.close()
        if con is None:
            con = open_reader(db, as_of=stamp - 1 if stamp else None)
            if self._copies:
                try:
                    copy_engine_tables(con)
                except BaseException:
                    con.close()
                    raise
        with self._lock:
            self._out.add(id(con))
        return con

    def give_back(self, db: Path, stamp: int, con: Any, *, reusable: bool) -> None:
        closing = [con]
        with self._lock:
            reusable = reusable and id(con) in self._out
            self._out.discard(id(con))
        if reusable:
            with self._lock:
                key = (str(db), stamp)
                free = self._free.pop(key, [])
                if len(free) < self._idle:
                    free.append(con)
                    closing = []
                self._free[key] = free  # the most recently used database last
                while len(self._free) > self._databases:  # another database's: the oldest go
                    closing += self._free.pop(next(iter(self._free)))
        for old in closing:
            old.close()

    def clear(self) -> None:
        with self._lock:
            closing = [con for free in self._free.values() for con in free]
            self._free.clear()
            self._out.clear()
        for con in closing:
            con.close()


ENGINE_READERS = _EngineReaders()
on_store_replaced(ENGINE_READERS.clear)


def copy_engine_tables(con: Any) -> list[str]:
    """TEMP copies of the store tables the engine would copy for each report (see _EngineReaders),
    made as the engine makes them: the whole table of the connection's snapshot, under its name;
    a table the store does not have is skipped. Returns the names copied."""
    from analytics.metrics.engine import copy_report_tables

    row = con.execute("SELECT system.main.current_database()").fetchone()
    copied: list[str] = []
    copy_report_tables(con, str(row[0] if row else "main"), copied, leave_out=("services",))
    return copied


def compute(db: Path, req: MetricsRequest, stamp: int | None = None) -> dict[str, Any]:
    """Run the engine on the read snapshot (``stamp``, see :func:`data_stamp`; the current one when
    None) and return the JSON document ``metrics`` prints."""
    try:
        from analytics.config import load_config
        from analytics.json_output import dumps_bytes
        from analytics.metrics.engine import MetricsQuery, compute_metrics
    except ImportError as exc:
        raise MetricsUnavailable(f"the metrics engine is not installed ({exc.name})") from None
    try:
        config = load_config(config_path())
        stamp = data_stamp(db) if stamp is None else stamp
        con = ENGINE_READERS.take(db, stamp)
        reusable = False
        try:
            services: tuple[str, ...] = (req.service,) if req.service else ()
            teams: tuple[str, ...] = (req.team,) if req.team else ()
            if req.pooled:
                of_team = pooled_services(con, req)
                services = services if of_team is None else of_team
                teams = ()
                pool_teams(con)
            query = MetricsQuery(
                since=_midnight(req.since), until=_midnight(req.until), group_by=req.group_by,
                services=services, environments=(req.environment,) if req.environment else (),
                teams=teams, trend=req.trend, compare_previous=req.compare_previous,
                benchmark=req.benchmark,
            )
            if req.pooled and req.team and not services:  # a team without services: nothing to pool
                payload: dict[str, Any] = {"since": req.since, "until": req.until, "groups": []}
            else:
                report = compute_metrics(con, query, config)
                payload = json.loads(dumps_bytes(report.payload()))
            if req.pooled:
                unpool_teams(con)
            reusable = True
        finally:
            ENGINE_READERS.give_back(db, stamp, con, reusable=reusable)
        if req.pooled:
            for group in payload.get("groups") or []:
                group.pop("team", None)
                group["scope"] = ALL_SERVICES
    except UserError as exc:
        raise MetricsUnavailable(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - a page shows one line, never a traceback
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MetricsUnavailable(f"{type(exc).__name__}: {first}") from None
    return payload


class _ResultCache:
    """Engine results per (database, snapshot stamp, request), shared by every session and the
    warm-up thread. A request being computed is computed once: later callers wait for it.
    A UserError-style failure is cached too, so a bad request does not re-run the engine.
    """

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._results: OrderedDict[tuple[str, int, MetricsRequest], dict[str, Any] | MetricsUnavailable] = (
            OrderedDict()
        )
        self._inflight: dict[tuple[str, int, MetricsRequest], threading.Lock] = {}

    def get(self, db: Path, req: MetricsRequest) -> dict[str, Any]:
        return self._get_at(db, data_stamp(db), req)

    def _get_at(self, db: Path, stamp: int, req: MetricsRequest) -> dict[str, Any]:
        key = (str(db), stamp, req)
        with self._lock:
            if key in self._results:
                self._results.move_to_end(key)
                return self._unwrap(self._results[key])
            gate = self._inflight.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                if key in self._results:
                    return self._unwrap(self._results[key])
            try:
                value: dict[str, Any] | MetricsUnavailable = (
                    compute(db, req, stamp) if req.benchmark is None else self._rerated(db, stamp, req))
            except MetricsUnavailable as exc:
                value = exc
            with self._lock:
                self._results[key] = value
                self._inflight.pop(key, None)
                while len(self._results) > self._size:
                    self._results.popitem(last=False)
        return self._unwrap(value)

    def _rerated(self, db: Path, stamp: int, req: MetricsRequest) -> dict[str, Any]:
        """The result for a benchmark year, from the result without one, rated again.

        The year changes only the ratings the engine adds to each group last (and the payload's
        ``benchmark``), so a page switching years would otherwise run the whole engine again for
        figures it has: the result without a year is computed (or found) once per snapshot and
        each year's ratings are made from its groups by the engine's own ``rate_group``, through
        the same JSON encoding. tests/test_dashboard_benchmark_years.py compares it with the
        engine run for the year.
        """
        base = self._get_at(db, stamp, replace(req, benchmark=None))
        from analytics.json_output import dumps_bytes
        from analytics.metrics.ratings import rate_group

        payload = json.loads(json.dumps(base))  # a copy: the cached result stays as it is
        payload["benchmark"] = req.benchmark
        try:
            for group in payload.get("groups") or []:
                if "ratings" in group:
                    group["ratings"] = json.loads(dumps_bytes(rate_group(group, req.benchmark)))
        except UserError as exc:
            raise MetricsUnavailable(str(exc)) from None
        return payload

    def ready(self, db: Path, req: MetricsRequest) -> bool:
        with self._lock:
            return (str(db), data_stamp(db), req) in self._results

    @staticmethod
    def _unwrap(value: dict[str, Any] | MetricsUnavailable) -> dict[str, Any]:
        if isinstance(value, MetricsUnavailable):
            raise value
        return value


RESULTS = _ResultCache()


def metrics(db: Path, req: MetricsRequest) -> dict[str, Any]:
    """The engine's answer; a page that has to wait for it shows a spinner meanwhile."""
    import streamlit as st
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    if RESULTS.ready(db, req) or get_script_run_ctx(suppress_warning=True) is None:
        return RESULTS.get(db, req)
    with st.spinner("Computing DORA metrics..."):
        return RESULTS.get(db, req)


def groups_of(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return list(payload.get("groups") or [])


def rating_of(group: dict[str, Any], metric: str) -> str | None:
    """The cluster a metric was rated into (``ratings[metric].cluster``)."""
    value = (group.get("ratings") or {}).get(metric)
    if isinstance(value, dict):
        value = value.get("cluster")
    return str(value) if value else None


def group_label(group: dict[str, Any]) -> str:
    return " · ".join(str(group[k]) for k in GROUP_KEYS if group.get(k)) or ALL_SERVICES


def trend_frame(payload: dict[str, Any], fields: list[str]) -> Any:
    """`metrics --trend` groups as a frame: period_start, group label, and the requested fields."""
    import pandas as pd

    rows = [
        {"period_start": pd.Timestamp(g["period_start"]), "group": group_label(g),
         **{k: g.get(k) for k in fields}}
        for g in groups_of(payload) if g.get("period_start")
    ]
    frame = pd.DataFrame(rows, columns=["period_start", "group", *fields])
    return frame.sort_values(["group", "period_start"]) if len(frame) else frame
