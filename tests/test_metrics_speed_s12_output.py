"""The metrics CLI's overlapped start-up and streamed JSON (issue #16, session 12).

* ``metrics`` opens the store on a thread while the engine's imports and the config load
  (analytics/cli/cmd_read._BackgroundReader): errors must come out as before, in the same order;
* a payload with many groups is encoded in pieces (analytics/json_output.dumps_pieces) written by a
  thread (analytics/cli/output._write_json): the bytes must be those of ``dumps_bytes``;
* ``dumps_bytes`` encodes without OPT_NON_STR_KEYS first: a non-string key still encodes as before.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from analytics.cli import output
from analytics.json_output import dumps_bytes, dumps_pieces
from tests import cli_inprocess


def _payload(groups: int) -> dict[str, Any]:
    """A metrics-like payload: times, nested ratings, nulls, a Decimal, text that looks like the
    layout the pieces are cut at."""
    return {
        "since": datetime(2024, 1, 1, tzinfo=UTC),
        "until": datetime(2024, 2, 1, 12, 30, 0, 5, tzinfo=UTC),
        "groups": [
            {"service": f"svc-{i}", "period_start": datetime(2024, 1, 1 + i % 28, tzinfo=UTC),
             "lead": None if i % 3 else i / 7, "tiny": 2.5e-05, "n": Decimal("1.5"),
             "ratings": {"lead_time": {"bucket": "lt_1h", "cluster": "elite", "year": 2024}},
             "note": '\n  "groups": []'}
            for i in range(groups)
        ],
        "group_by": ["service"],
        "notes": ['"groups": [],\n  "groups": []'],
        "benchmark": None,
    }


@pytest.mark.parametrize("groups", [0, 1, 4, 5, 9, 10, 11])
@pytest.mark.parametrize("size", [1, 3, 5])
def test_pieces_join_to_the_whole_document(groups: int, size: int) -> None:
    payload = _payload(groups)
    assert b"".join(bytes(p) for p in dumps_pieces(payload, "groups", size)) == dumps_bytes(payload)


def test_other_shapes() -> None:
    """Not a dict, not a list, another key (one piece each), a list of lists and numbers (pieces)."""
    shapes: list[Any] = [[{"a": 1}] * 10, {"groups": "text"}, {"other": [1] * 10},
                         {"groups": [1, [2, {"x": 3}]] * 5}]
    for payload in shapes:
        assert b"".join(bytes(p) for p in dumps_pieces(payload, "groups", 2)) == dumps_bytes(payload)


def test_keys_that_are_not_strings_encode_as_before() -> None:
    payload = {"groups": [{1: "one", "two": {3: None}}] * 3, 4.5: datetime(2024, 1, 1, tzinfo=UTC)}
    options = (orjson.OPT_INDENT_2 | orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC | orjson.OPT_SERIALIZE_NUMPY
               | orjson.OPT_NON_STR_KEYS)
    assert dumps_bytes(payload) == orjson.dumps(payload, option=options)
    assert b"".join(bytes(p) for p in dumps_pieces(payload, "groups", 1)) == dumps_bytes(payload)


class _Stdout(io.TextIOWrapper):
    """A text stdout over a byte layer, as the console's."""


def test_a_streamed_payload_writes_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    payload = _payload(23)
    monkeypatch.setattr(output, "STREAMED_ITEMS", 4)
    sink = io.BytesIO()
    monkeypatch.setattr("sys.stdout", _Stdout(sink))
    output._write_json(payload)
    assert sink.getvalue() == dumps_bytes(payload) + b"\n"
    json.loads(sink.getvalue())


class _BrokenPipe(io.BytesIO):
    """Fails once, at the ``fail_at``-th write (a later write, the final newline, succeeds: the
    error must come from the piece that failed)."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.calls, self.fail_at = 0, fail_at

    def write(self, data: Any) -> int:
        self.calls += 1
        if self.calls == self.fail_at:
            raise BrokenPipeError(32, "Broken pipe")
        return super().write(data)


@pytest.mark.parametrize("fail_at", [1, 3])
def test_a_write_error_reaches_the_caller(monkeypatch: pytest.MonkeyPatch, fail_at: int) -> None:
    monkeypatch.setattr(output, "STREAMED_ITEMS", 2)
    monkeypatch.setattr("sys.stdout", _Stdout(_BrokenPipe(fail_at)))
    with pytest.raises(BrokenPipeError):
        output._write_json(_payload(20))


def test_weekly_metrics_stream_the_same_json(demo_store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real payload (times, ratings, nulls) cut into pieces of 7 groups, against one piece."""
    argv = ["--db", str(demo_store.db), "metrics", "--trend", "week", "--format", "json"]
    whole = cli_inprocess.run(argv)
    assert whole.returncode == 0, whole.stderr
    groups = len(json.loads(whole.stdout)["groups"])
    assert output.STREAMED_ITEMS >= groups > 7  # one piece above, several below
    monkeypatch.setattr(output, "STREAMED_ITEMS", 7)
    streamed = cli_inprocess.run(argv)
    assert (streamed.returncode, streamed.stdout, streamed.stderr) == (0, whole.stdout, whole.stderr)


def test_errors_keep_their_order_with_the_reader_on_a_thread(tmp_path: Path, demo_store: Any) -> None:
    """The store is opened on a thread before the options and the config are checked; its error
    is raised only where the command used to open the store."""
    missing = str(tmp_path / "none.ducklake")
    bad_config = tmp_path / "bad.yaml"
    bad_config.write_text("bogus: [\n")
    cases = [
        (["--db", missing, "metrics"], "no database at"),
        (["--db", missing, "metrics", "--trend", "year"], "--trend 'year'"),
        (["--db", missing, "metrics", "--group-by", "planet"], "--group-by planet"),
        (["--config", str(bad_config), "--db", missing, "metrics"], "invalid YAML"),
        (["--db", missing, "metrics", "--as-of", "yesterday"], "--as-of 'yesterday'"),
        (["--db", str(demo_store.db), "metrics", "--as-of", "yesterday"], "--as-of 'yesterday'"),
        (["--db", str(demo_store.db), "metrics", "--service", "nowhere"], "--service nowhere"),
    ]
    for argv, message in cases:
        result = cli_inprocess.run(argv)
        assert result.returncode == 2, (argv, result.stderr)
        assert result.stderr.startswith("error: ") and message in result.stderr, (argv, result.stderr)
        assert result.stdout == ""


def _temp_objects(con: Any) -> set[str]:
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()}
    views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE temporary").fetchall()}
    return tables | views


def test_a_report_for_a_closing_caller_is_the_same_and_only_it_skips_the_clean_up(demo_store: Any) -> None:
    """``compute_metrics(..., closing=True)`` (the CLI, which closes the connection next) leaves the
    report's TEMP tables for the close; the numbers are the same, and the next report without it
    (another connection) puts its connection back as found."""
    from analytics.metrics.engine import MetricsQuery, compute_metrics
    from analytics.store.connection import open_reader

    query = MetricsQuery(trend="week", compare_previous=True)
    payloads, left = [], []
    for closing in (False, True, False):
        con = open_reader(demo_store.db)
        try:
            before = _temp_objects(con)
            payloads.append(dumps_bytes(compute_metrics(con, query, closing=closing).payload()))
            left.append(_temp_objects(con) - before)
        finally:
            con.close()
    assert payloads[0] == payloads[1] == payloads[2]
    # the periods and the service teams stay in any case (recreated by every report)
    assert left[0] == left[2] == {"metric_periods", "gitops_dora_service_teams"}
    assert {"deployments", "incident_attribution__once", "window_changes"} <= left[1] - left[0]
