"""No DuckDB progress bar on a command's output.

DuckDB draws a progress bar on stdout for any query running longer than ``progress_bar_time``
(2 s by default), whether stdout is a terminal or a pipe; on a big store or a slow machine it
landed in the middle of `metrics --format json`, CSV exports and reports. Both kinds of
connection the product opens (the store's and the scratch one that checks an import) turn it
off. Shortening the wait (``progress_bar_time``) turns the bar back on in DuckDB, so the store
connection runs one real query of over 2 s on one thread; a real child process, because DuckDB
writes the bar to file descriptor 1 itself, past Python's ``sys.stdout``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.child_env import child_env

SCRIPT = """
import sys
from analytics.store.connection import connect, scratch_connection
kind, place = sys.argv[1], sys.argv[2]
con = connect(place + "/s.ducklake") if kind == "store" else scratch_connection(place)
shown = con.execute("SELECT current_setting('enable_progress_bar')").fetchone()
if kind == "store":
    con.execute("SET threads = 1")
    rows = con.execute("SELECT count(*) FROM range(700000000) t(x) WHERE x % 7 = 3").fetchall()
    sys.stderr.write(f"{shown[0]} {rows[0][0]}")
else:
    sys.stderr.write(f"{shown[0]}")
"""


def _child(kind: str, place: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", SCRIPT, kind, str(place)], capture_output=True,
                          text=True, env=child_env(), timeout=120, check=False,
                          cwd=Path(__file__).resolve().parents[1])


def test_store_and_scratch_connections_draw_no_progress_bar(tmp_path: Path) -> None:
    for kind in ("store", "scratch"):
        place = tmp_path / kind
        place.mkdir()
        proc = _child(kind, place)
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ("False 100000000" if kind == "store" else "False")
        assert proc.stdout == "", f"{kind}: {proc.stdout[:200]!r}"
