"""The streamed incidents import writes new ids with an INSERT and replaces only the known ids
whose values differ (issue #16): whatever a second file changes, in any one column, to or from an
empty value, the store must end as the record path leaves it, and the rows it does not change keep
their values."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_import_streaming import HEADER, ROWS, _exact, _stream, _table, _write

# Each a change to the first row (INC-1) that only one column shows, including value -> empty and
# empty -> value: a comparison that missed NULLs would leave the stored row as it was.
CHANGES = {
    "title emptied": ('"Outage, big"', ""),
    "root cause emptied": ("abc1234", ""),
    "root cause named": (
        "2025-01-02T10:00:00Z,2025-01-02T11:30:00Z,\"Outage, big\",abc1234,",
        "2025-01-02T10:00:00Z,2025-01-02T11:30:00Z,\"Outage, big\",abc1234,https://x.example/1",
    ),
    "reopened": ("2025-01-02T11:30:00Z", ""),
    "labels changed": ('"sev1; db"', '"sev2; db"'),
    "labels emptied": ('"sev1; db"', ""),
    "environment changed": ("api,production,", "api,staging,"),
    "service changed": ("INC-1,api,", "INC-1,billing,"),
    "created one second later": ("2025-01-02T10:00:00Z", "2025-01-02T10:00:01Z"),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_changed_column_replaces_the_row_as_the_exact_path_does(tmp_path: Path, change: str) -> None:
    old, new = CHANGES[change]
    assert old in ROWS[0]
    added = "INC-7,api,production,2025-05-01T00:00:00Z,,Added,,,\n"
    second_rows = [ROWS[0].replace(old, new, 1), *ROWS[1:], added]
    # the same file name, so the line references of the unchanged rows are the same too
    (tmp_path / "1").mkdir()
    (tmp_path / "2").mkdir()
    first = _write(tmp_path / "1" / "incidents.csv", ROWS)
    second = tmp_path / "2" / "incidents.csv"
    second.write_text(HEADER + "".join(second_rows), encoding="utf-8")
    _stream(tmp_path / "a.ducklake", first)
    before = _table(tmp_path / "a.ducklake")
    _stream(tmp_path / "a.ducklake", second)
    _exact(tmp_path / "b.ducklake", first)
    _exact(tmp_path / "b.ducklake", second)
    streamed = _table(tmp_path / "a.ducklake")
    assert streamed == _table(tmp_path / "b.ducklake")
    assert streamed[0] != before[0]  # the change reached the store
    assert streamed[1:5] == before[1:5]  # the other rows kept their values
    assert streamed[5][0] == "INC-7"
