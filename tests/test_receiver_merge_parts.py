"""A large delivery's Arrow rows are merged in parts of MERGE_PART_ROWS (issue #16, session 9):
DuckDB's join and Parquet writer then hold a part's rows at a time, not all of a 30,000-commit push
(bench/webhook_body_memory.py --steps: the MERGE's peak +45 -> +40 MiB over the receiver before the
body, the delivery's peak 2.3x -> 2.1x of the body). The table ends the same as from one MERGE and
as from the row dicts' way; this test holds it to the dicts' and checks the parts' sizes.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from analytics.config import Config
from analytics.webhooks import writer as writer_module
from analytics.webhooks.writer import MERGE_PART_ROWS, Delivery, DeliveryWriter, TableRows, table_rows
from tests.store_query import query

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def commit(n: int) -> dict[str, Any]:
    return {"repo": "acme/parts", "sha": f"{n:040x}", "parents": [f"{n - 1:040x}"] if n else [],
            "author_name": f"dev {n % 7}", "author_email": f"dev{n % 7}@example.com",
            "author_time": T0 + timedelta(seconds=n), "author_tz": None, "committer_name": f"dev {n % 7}",
            "committer_email": f"dev{n % 7}@example.com", "committer_time": T0 + timedelta(seconds=n),
            "committer_tz": None, "subject": f"change {n}", "is_merge": False, "reverts_sha": None}


def stored(db: Path, rows: Any) -> list[str]:
    writer = DeliveryWriter(db, Config())
    delivery = Delivery(provider="github", delivery_id="parts", event="push", body=b"{}", payload={},
                        rows={"commits": rows}, finalize=None, payload_json="{}")
    writer.start()
    try:
        writer.submit(delivery)
        return [delivery.future.result(timeout=300)]
    finally:
        writer.stop()


def test_arrow_rows_are_merged_in_parts_and_end_as_the_dicts_do(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    count = 2 * MERGE_PART_ROWS + 1234
    dicts = [commit(n) for n in range(count)]
    tabled = table_rows("commits", [commit(n) for n in range(count)])
    assert isinstance(tabled, TableRows)
    parts: list[int] = []
    real = writer_module.registered

    @contextmanager
    def counted(con: Any, rows: TableRows) -> Any:
        parts.append(len(rows))
        with real(con, rows) as name:
            yield name

    with monkeypatch.context() as patch:
        patch.setattr(writer_module, "registered", counted)
        assert stored(tmp_path / "arrow.ducklake", tabled) == ["stored"]
    assert parts == [MERGE_PART_ROWS, MERGE_PART_ROWS, 1234]
    assert stored(tmp_path / "dicts.ducklake", dicts) == ["stored"]
    dump = "SELECT * FROM commits ORDER BY sha"
    arrow, from_dicts = query(tmp_path / "arrow.ducklake", dump), query(tmp_path / "dicts.ducklake", dump)
    assert len(arrow) == count and arrow == from_dicts
    written = "SELECT rows_written FROM webhook_deliveries"
    assert query(tmp_path / "arrow.ducklake", written) == query(tmp_path / "dicts.ducklake", written)
