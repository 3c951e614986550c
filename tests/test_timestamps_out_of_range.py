"""A time no datetime can hold is junk to the shared timestamp reader (None), so a file or payload
carrying one is refused with the reader's own one-line error, not an OverflowError (found by
tests/test_fuzz_import.py: a Flux event with ``"timestamp": 9.223372036854776e+18`` exited 1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analytics.timestamps import parse_time
from tests import cli_inprocess


@pytest.mark.parametrize("value", [9.223372036854776e18, -1e20, 10**30, float("nan"), float("inf"),
                                   "0001-01-01T00:00:00+01:00"])
def test_a_time_no_datetime_holds_is_none(value: object) -> None:
    assert parse_time(value) is None


def test_times_in_range_still_read() -> None:
    assert parse_time(1_700_000_000).isoformat() == "2023-11-14T22:13:20+00:00"  # type: ignore[union-attr]
    assert parse_time("0001-01-01T00:00:00Z").isoformat() == "0001-01-01T00:00:00+00:00"  # type: ignore[union-attr]


def test_a_flux_event_with_an_epoch_past_time_t_is_one_line_exit_2(tmp_path: Path) -> None:
    event = {"involvedObject": {"kind": "Kustomization", "name": "0"}, "kind": "Event", "severity": "info",
             "reason": "", "reportingController": "", "timestamp": 9.223372036854776e18}
    path = tmp_path / "events.json"
    path.write_text(json.dumps([event]))
    proc = cli_inprocess.run(["--db", str(tmp_path / "s.ducklake"), "import", str(path)], cwd=tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "no usable timestamp" in lines[0], proc.stderr
