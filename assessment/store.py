"""Assessments in DuckDB: writing them inside a WriteSession, reading the latest and the timeline.

Readers (the dashboard) use ``latest(con)`` and ``timeline(con)`` on an ``open_reader`` connection;
both return plain dicts and tolerate a database made before the maturity tables existed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from analytics.store.connection import WriteSession
from analytics.store.literals import execute


def assessment_id(target: str, kind: str, key: str) -> str:
    return f"{target}|{kind}|{key}"


@dataclass(frozen=True)
class Assessment:
    """One assessment to store: a point (today, or ``--at``) or one month of the history."""

    target: str
    sources: list[str]
    revisions: list[str]
    kind: str
    period: str | None
    as_of: datetime
    assessed_at: datetime
    answers_file: str | None
    result: dict[str, Any]

    @property
    def id(self) -> str:
        key = self.period if self.kind == "monthly" and self.period else ",".join(self.revisions)
        return assessment_id(self.target, self.kind, key)


def save(session: WriteSession, assessments: list[Assessment]) -> list[str]:
    """Upsert assessments with their per-capability and per-level rows; returns their ids.

    All of them in five statements (two deletes, three merges) whatever their number: with
    ``--history monthly`` a run stores a dozen or more, and each statement is a catalog round trip
    on DuckLake (35 statements for the demo's seven took about a second)."""
    if not assessments:
        return []
    ids = [a.id for a in assessments]
    for table in ("maturity_capability_status", "maturity_level_progress"):  # literals: see execute
        execute(session.con, f"DELETE FROM {table} WHERE list_contains(?, assessment_id)", [ids])
    session.upsert(
        "maturity_assessments",
        [
            {
                "id": a.id,
                "target": a.target,
                "sources": a.sources,
                "revisions": a.revisions,
                "kind": a.kind,
                "period": a.period,
                "as_of": a.as_of,
                "assessed_at": a.assessed_at,
                "level": a.result["level"],
                "answers_file": a.answers_file,
                "result": json.dumps(a.result),
            }
            for a in assessments
        ],
    )
    session.upsert(
        "maturity_capability_status",
        [
            {
                "assessment_id": a.id,
                "capability": c["id"],
                "level": c["level"],
                "status": c["status"],
                "answer": c["answer"],
                "conflict": c["conflict"],
                "evidence_count": len(c["evidence"]),
            }
            for a in assessments
            for c in a.result["capabilities"]
        ],
    )
    session.upsert(
        "maturity_level_progress",
        [
            {
                "assessment_id": a.id,
                "level": lvl["level"],
                "name": lvl["name"],
                "met": lvl["met"],
                "progress": lvl["progress"],
            }
            for a in assessments
            for lvl in a.result["levels"]
        ],
    )
    return ids


def _has_tables(con: duckdb.DuckDBPyConnection) -> bool:
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'maturity_assessments'"
    ).fetchone()
    return bool(row and row[0])


def latest(con: duckdb.DuckDBPyConnection, target: str | None = None) -> dict[str, Any] | None:
    """The newest point-in-time assessment (optionally of one target): metadata plus ``result``."""
    if not _has_tables(con):
        return None
    row = con.execute(
        "SELECT id, target, sources, revisions, as_of, assessed_at, level, answers_file, result "
        "FROM maturity_assessments WHERE kind = 'point' AND (? IS NULL OR target = ?) "
        "ORDER BY assessed_at DESC, id LIMIT 1",
        [target, target],
    ).fetchone()
    if row is None:
        return None
    keys = ("id", "target", "sources", "revisions", "as_of", "assessed_at", "level", "answers_file")
    out = dict(zip(keys, row[:-1], strict=True))
    out["result"] = json.loads(row[-1])
    return out


def timeline(con: duckdb.DuckDBPyConnection, target: str | None = None) -> list[dict[str, Any]]:
    """Monthly maturity points, oldest first: target, period, as_of, level and progress per level."""
    if not _has_tables(con):
        return []
    rows = con.execute(
        "SELECT a.target, a.period, a.as_of, a.level, a.revisions, "
        "       list(p.progress ORDER BY p.level) AS progress "
        "FROM maturity_assessments a JOIN maturity_level_progress p ON p.assessment_id = a.id "
        "WHERE a.kind = 'monthly' AND (? IS NULL OR a.target = ?) "
        "GROUP BY ALL ORDER BY a.target, a.period",
        [target, target],
    ).fetchall()
    return [
        {
            "target": t,
            "period": period,
            "as_of": as_of,
            "level": level,
            "revisions": list(revs),
            "progress": list(progress),
        }
        for t, period, as_of, level, revs, progress in rows
    ]


def targets(con: duckdb.DuckDBPyConnection) -> list[str]:
    if not _has_tables(con):
        return []
    return [
        r[0] for r in con.execute("SELECT DISTINCT target FROM maturity_assessments ORDER BY 1").fetchall()
    ]


def delete(session: WriteSession, target: str) -> int:
    """Delete every assessment of ``target`` (point and monthly) with its per-capability and
    per-level rows and its skipped-files warning; returns how many assessments there were."""
    con = session.con
    ids = [str(r[0]) for r in execute(
        con, "SELECT id FROM maturity_assessments WHERE target = ?", [target]
    ).fetchall()]
    if ids:
        for table in ("maturity_capability_status", "maturity_level_progress"):
            execute(con, f"DELETE FROM {table} WHERE list_contains(?, assessment_id)", [ids])
        execute(con, "DELETE FROM maturity_assessments WHERE target = ?", [target])
    execute(con, "DELETE FROM data_warnings WHERE source = 'assess' AND target = ?", [target])
    return len(ids)
