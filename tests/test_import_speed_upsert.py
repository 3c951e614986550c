"""The streamed incidents import writes new ids with an INSERT and replaces only the known ids
whose values differ (issue #16): whatever a second file changes, in any one column, to or from an
empty value, the store must end as the record path leaves it, and the rows it does not change keep
their values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.store_fixture import copy_store
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


@pytest.fixture(scope="module")
def first_imports(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[tuple[Any, ...]]]:
    """The first file imported once by each path, for every test to copy (tests/store_fixture.copy_store):
    ``a`` streamed, ``b`` by the record path, and ``a``'s table after it."""
    root = tmp_path_factory.mktemp("first")
    (root / "1").mkdir()
    first = _write(root / "1" / "incidents.csv", ROWS)
    _stream(root / "a.ducklake", first)
    _exact(root / "b.ducklake", first)
    return root / "a.ducklake", root / "b.ducklake", _table(root / "a.ducklake")


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_changed_column_replaces_the_row_as_the_exact_path_does(
    tmp_path: Path, first_imports: tuple[Path, Path, list[tuple[Any, ...]]], change: str
) -> None:
    old, new = CHANGES[change]
    assert old in ROWS[0]
    added = "INC-7,api,production,2025-05-01T00:00:00Z,,Added,,,\n"
    second_rows = [ROWS[0].replace(old, new, 1), *ROWS[1:], added]
    # the same file name as the first file's, so the line references of the unchanged rows are the
    # same too; the first file was imported once per path by the fixture, each test writes copies
    (tmp_path / "2").mkdir()
    second = tmp_path / "2" / "incidents.csv"
    second.write_text(HEADER + "".join(second_rows), encoding="utf-8")
    a0, b0, before = first_imports
    a, b = copy_store(a0, tmp_path / "a.ducklake"), copy_store(b0, tmp_path / "b.ducklake")
    _stream(a, second)
    _exact(b, second)
    streamed = _table(a)
    assert streamed == _table(b)
    assert streamed[0] != before[0]  # the change reached the store
    assert streamed[1:5] == before[1:5]  # the other rows kept their values
    assert streamed[5][0] == "INC-7"
