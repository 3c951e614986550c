"""A store moved or copied with its data folder (``mv`` of the directory, a restore under another
mount) opens where it now is: DuckLake records the data folder's absolute path when it creates a
store, and every later open was refused ("no snapshot N (DATA_PATH ... does not match ...)").
A catalog whose folder is not beside it, or an explicit data path that is not the recorded one,
is one line naming both paths, exit 2."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests import cli_inprocess

CSV = "id,service,environment,created_at,resolved_at,title\n" + "".join(
    f"i{i},api,production,2026-01-0{i + 1}T10:00:00Z,2026-01-0{i + 1}T12:00:00Z,down {i}\n" for i in range(4))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_DORA_D")}
    return {**env, **extra}


def cli(db: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return cli_inprocess.run(["--db", str(db), *args], env=_env(**env))


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _reads(db: Path) -> list[str]:
    """The incidents, the metrics, and the metrics as of the store's second snapshot (a reader
    pinned to a snapshot id opens the store the same way)."""
    return [ok(cli(db, "incidents", "--format", "json")),
            ok(cli(db, "metrics", "--since", "2026-01-01", "--until", "2026-02-01", "--format", "json")),
            ok(cli(db, "metrics", "--since", "2026-01-01", "--until", "2026-02-01", "--format", "json",
                   "--as-of", "1"))]


def test_a_moved_store_reads_writes_and_is_maintained_where_it_is(tmp_path: Path) -> None:
    (tmp_path / "incidents.csv").write_text(CSV)
    first = tmp_path / "old" / "store.ducklake"
    ok(cli(first, "import", str(tmp_path / "incidents.csv")))
    before = _reads(first)
    shutil.move(tmp_path / "old", tmp_path / "new")
    moved = tmp_path / "new" / "store.ducklake"
    assert _reads(moved) == before
    assert '"id": "i3"' in before[0]
    (tmp_path / "more.csv").write_text(CSV.replace("i0,", "j0,"))
    ok(cli(moved, "import", str(tmp_path / "more.csv")))
    ok(cli(moved, "maintain"))
    after = ok(cli(moved, "incidents", "--format", "json"))
    assert after.count('"id": ') == 5 and '"id": "j0"' in after
    assert not (tmp_path / "old").exists()  # nothing was written where the store used to be


def test_a_catalog_without_its_folder_or_a_wrong_data_path_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "incidents.csv").write_text(CSV)
    store = tmp_path / "a" / "store.ducklake"
    ok(cli(store, "import", str(tmp_path / "incidents.csv")))
    alone = tmp_path / "b" / "store.ducklake"
    alone.parent.mkdir()
    shutil.copy(store, alone)  # the catalog only
    elsewhere = tmp_path / "nowhere"
    for proc, now in [(cli(alone, "incidents"), f"{alone}.files/"),
                      (cli(store, "incidents", GITOPS_DORA_DATA_PATH=str(elsewhere)), f"{elsewhere}/")]:
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert f"recorded at {store}.files/, not at {now}" in proc.stderr, proc.stderr
    assert not (alone.parent / "store.ducklake.files").exists() and not elsewhere.exists()
    assert ok(cli(store, "incidents", "--format", "json")).count('"id": ') == 4  # the original is intact


def test_a_store_with_its_data_elsewhere_is_not_attached_to_an_empty_folder_beside_it(
    tmp_path: Path,
) -> None:
    """A writer creates ``<catalog>.files/`` before it opens the store; for a store whose data lives
    elsewhere (``GITOPS_DORA_DATA_PATH`` forgotten on one run) that empty folder is not its data
    folder: the run stops with the one line, writes nothing there, and the store reads as before."""
    (tmp_path / "incidents.csv").write_text(CSV)
    store, data = tmp_path / "store.ducklake", tmp_path / "elsewhere"
    ok(cli(store, "import", str(tmp_path / "incidents.csv"), GITOPS_DORA_DATA_PATH=str(data)))
    proc = cli(store, "import", str(tmp_path / "incidents.csv"))
    assert proc.returncode == 2 and f"recorded at {data}/, not at {store}.files/" in proc.stderr, proc.stderr
    assert not list((tmp_path / "store.ducklake.files").rglob("*.parquet"))
    ok(cli(store, "metrics", "--format", "json", GITOPS_DORA_DATA_PATH=str(data)))
    listed = ok(cli(store, "incidents", "--format", "json", GITOPS_DORA_DATA_PATH=str(data)))
    assert listed.count('"id": ') == 4


def test_a_postgresql_catalog_with_another_data_path_names_the_recorded_one(
    tmp_path: Path, pg_database: Any,
) -> None:
    """A PostgreSQL catalog is not read with Python's sqlite3: the one line names the recorded
    folder from DuckLake's own refusal rather than "another folder"."""
    (tmp_path / "incidents.csv").write_text(CSV)
    data, elsewhere = tmp_path / "lake-data", tmp_path / "nowhere"
    env = {"PGPASSWORD": pg_database.password}
    ok(cli_inprocess.run(["--db", pg_database.url, "import", str(tmp_path / "incidents.csv")],
                         env=_env(GITOPS_DORA_DATA_PATH=str(data), **env)))
    proc = cli_inprocess.run(["--db", pg_database.url, "incidents"],
                             env=_env(GITOPS_DORA_DATA_PATH=str(elsewhere), **env))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"its data files were recorded at {data}/, not at {elsewhere}/" in proc.stderr, proc.stderr
    assert pg_database.password not in proc.stderr
    assert not elsewhere.exists()
    listed = ok(cli_inprocess.run(["--db", pg_database.url, "incidents", "--format", "json"],
                                  env=_env(GITOPS_DORA_DATA_PATH=str(data), **env)))
    assert listed.count('"id": ') == 4
