"""The engine's result for a query on a module's read-only store, computed once and handed to every
test of the module that compares the engine as it runs with something else.

The metrics speed tests compare the engine as it runs (copies, grouped transactions, once-per-report
views, one-period literals) with the engine patched back to a plain definition. Several of them
start from the same unpatched report on the same store (``whole window`` in four tests, ``by team,
month`` in three): on a store nothing writes to, the engine gives the same bytes each time, so a
second run compares nothing new and only costs its CPU (0.3-0.7 s each on the 20,000-commit bench
store). :class:`EngineResults` keeps each result the first time a test asks for it and hands the
same one to later tests; the patched side is still computed by each test.

A result is only computed or handed out while the engine is as imported: if any attribute of the
engine's modules has been replaced (a test's ``monkeypatch`` of a constant or function), asking is
an error, so a cached result can never stand in for a patched run or be made by one.
"""

from __future__ import annotations

from types import ModuleType

import duckdb

from analytics.metrics import engine, transactions, views, window
from analytics.metrics.engine import MetricsQuery, MetricsReport, compute_metrics
from tests.metrics_queries import payload

_WATCHED: tuple[ModuleType, ...] = (engine, transactions, views, window)


def _attributes() -> dict[tuple[str, str], int]:
    """Identity of every module-level value of the engine's modules."""
    return {(m.__name__, name): id(value) for m in _WATCHED for name, value in vars(m).items()}


class EngineResults:
    """Per store (make one per module fixture): the unpatched engine's JSON (:func:`payload`, with
    the speed tests' config) and report objects (no config), by query."""

    def __init__(self) -> None:
        self._as_imported = _attributes()
        self._payloads: dict[MetricsQuery, bytes] = {}
        self._reports: dict[MetricsQuery, MetricsReport] = {}

    def _check_unpatched(self) -> None:
        now = _attributes()
        replaced = sorted(f"{mod}.{name}" for (mod, name), ident in self._as_imported.items()
                          if (mod, name) in now and now[(mod, name)] != ident)
        assert not replaced, f"the engine is patched ({', '.join(replaced)}): compute that run itself"

    def payload(self, con: duckdb.DuckDBPyConnection, query: MetricsQuery, *, run: bool = False) -> bytes:
        """``tests.metrics_queries.payload(con, query)`` of the engine as imported, once per query;
        ``run``: computed on ``con`` now in any case (a test that also checks what the run leaves
        on its connection), and kept for the others."""
        self._check_unpatched()
        if run or query not in self._payloads:
            self._payloads[query] = payload(con, query)
        return self._payloads[query]

    def report(self, con: duckdb.DuckDBPyConnection, query: MetricsQuery) -> MetricsReport:
        """``compute_metrics(con, query)`` (no config) of the engine as imported, once per query.
        Callers read it only."""
        self._check_unpatched()
        if query not in self._reports:
            self._reports[query] = compute_metrics(con, query)
        return self._reports[query]
