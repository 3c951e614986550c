"""Groups of statements run in one transaction each, for the many statements of a report.

On a DuckLake store every statement run outside an explicit transaction is its own transaction,
and each one that names anything in the store starts by reading the catalog's snapshot row (about
1.5 ms of CPU on a SQLite catalog), including statements that only touch TEMP objects but name them
unqualified (``DROP TABLE IF EXISTS family_0`` looks in the store too): about 50 times per
``--trend week`` report. Inside one transaction that happens once. A reader's connection is pinned
to one snapshot anyway, so grouping changes nothing that is read.

A group must not read a TEMP table it created itself: DuckDB plans a query over a table created in
the same, still open transaction without that table's statistics, and the report's joins then ran
2-5 times slower (incident attribution 0.3 -> 1.7 s of CPU at 100k deployments). So each group
creates tables that later groups read, after it has committed.

The statements that only ask the connection something (its transaction id, a setting, its database)
name their function ``system.main.…``: unqualified, the name is looked up in the default database
first, the store, and on DuckLake that lookup starts a transaction on the catalog (about 1 ms of CPU
on a SQLite catalog, against 0.1 ms qualified; 0.05 ms for ``SELECT 1``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb


def in_transaction(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the connection is inside an explicit transaction already: two statements then share
    one transaction id, while each auto-committed statement gets its own. (A BEGIN inside a
    transaction fails and aborts the caller's transaction, so it cannot be tried instead;
    ``txid_current()`` fails on a DuckLake catalog.)"""
    first = con.execute("SELECT system.main.current_transaction_id()").fetchone()
    second = con.execute("SELECT system.main.current_transaction_id()").fetchone()
    return first is not None and second is not None and first[0] == second[0]


class StatementGroups:
    """Runs each :meth:`group` in a transaction of its own, unless the connection was inside a
    caller's transaction when this was made (checked once): then every group runs in that one."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.own = not in_transaction(con)

    @contextmanager
    def group(self) -> Iterator[None]:
        """The block in one transaction, committed at its end, rolled back on any error (so the
        TEMP objects it created go with it and the connection is usable again)."""
        if not self.own:
            yield
            return
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")


@contextmanager
def one_transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """The block in one transaction (or the caller's), see :class:`StatementGroups`."""
    with StatementGroups(con).group():
        yield
