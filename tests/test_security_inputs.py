"""Hostile and broken inputs through the real CLI (issue #12 items 6-13): terminal escapes and Rich
markup in data, YAML bombs and deep nesting, symlinks out of an assessed tree, CSV formulas,
damaged and read-only stores, impossible timestamps, a report killed mid-write, file kinds decided
by parsing, and trial assessments that store nothing unless asked.

Each test runs ``.venv/bin/gitops-dora`` in a subprocess and asserts the safe outcome: one
``error:`` line and exit 2 with nothing written, or output that shows data literally.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests import cli_inprocess
from tests import maturity_repos as repos
from tests.gitrepo import GitRepo
from tests.store_fixture import copy_store
from tests.store_query import store_reader

CLI = str(Path(sys.executable).with_name("gitops-dora"))


def run(db: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120,
        cwd: Path | None = None, process: bool = False) -> subprocess.CompletedProcess[str]:
    """The console command, in this process (tests/cli_inprocess.py: the same entry point, streams
    and exit status) unless ``process``: the installed script in a subprocess."""
    base = {k: v for k, v in os.environ.items() if k != "GITOPS_DORA_DB"}
    base.update(COLUMNS="400", **(env or {}))
    if not process:
        return cli_inprocess.run(["--db", str(db), *args], env=base, cwd=cwd or db.parent)
    return subprocess.run([CLI, "--db", str(db), *args], capture_output=True, text=True, env=base,
                          cwd=cwd or db.parent, timeout=timeout)


def one_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit 2 and exactly one stderr line, ``error: ...``, holding every needle."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def count(db: Path, table: str) -> int:
    con = store_reader(db)
    try:
        row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    finally:
        con.close()
    return int(row[0]) if row else 0


INCIDENT_HEADER = "id,service,environment,created_at,resolved_at,title\n"


# --- item 6: terminal output -----------------------------------------------------------------


def test_markup_and_escape_sequences_in_data_print_literally(tmp_path: Path) -> None:
    db = tmp_path / "s.ducklake"
    incidents = tmp_path / "incidents.json"
    titles = {
        "I1": "route [/checkout] returns 500",
        "I2": "[link=https://evil.example]click me[/link] and [bold red]loud[/]",
        "I3": "bell\x07 \x1b]8;;https://osc.example\x07osc link\x1b]8;;\x07 "
              "\x1b[2J\x1b[31mred\x1b[0m \x9b31m!",
        "I4": "bidi \u202eevil\u202c end",
    }
    incidents.write_text(json.dumps([
        {"id": key, "service": "web", "created_at": "2026-01-05T10:00:00Z", "title": title}
        for key, title in titles.items()
    ]))
    assert run(db, "import", str(incidents)).returncode == 0
    proc = run(db, "incidents", "--format", "table")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "route [/checkout] returns 500" in out
    assert "[link=https://evil.example]click me[/link] and [bold red]loud[/]" in out
    for control in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert control not in out, repr(control)
    assert "bell osc link red !" in out and "osc.example" not in out  # whole sequences removed
    assert "bidi evil end" in out
    # CSV output drops the same characters; JSON keeps them, escaped by the encoder.
    as_csv = run(db, "incidents", "--format", "csv").stdout
    assert "\x1b" not in as_csv and "\x07" not in as_csv
    as_json = json.loads(run(db, "incidents", "--format", "json").stdout)
    assert {r["id"]: r["title"] for r in as_json}["I3"] == titles["I3"]


def test_assess_table_shows_a_folder_named_like_markup_literally(tmp_path: Path) -> None:
    repo = repos.plain_app(tmp_path / "[red]app[blink]")
    proc = run(tmp_path / "s.ducklake", "assess", str(repo.path))
    assert proc.returncode == 0, proc.stderr
    assert "[red]app[blink]: GitOps maturity level" in proc.stdout


# --- item 7 and 10: YAML bombs, nesting, impossible timestamps ---------------------------------


def _laughs() -> str:
    text = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        text += f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]\n"
    return text


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("laughs.yaml", _laughs(), "YAML aliases would expand to"),
        ("self.yaml", "a: &a [*a]\n", "refers to its own anchor"),
        ("many.yaml", "base: &b {x: 1}\nitems:\n" + "  - *b\n" * 1500, "more than 1000 YAML aliases"),
        ("deep.yaml", "a:\n" + "".join("  " * i + "k:\n" for i in range(1, 80)) + "  " * 80 + "v: 1\n",
         "nested deeper than 64 levels"),
        ("deepflow.yaml", "x: " + "[" * 5000 + "]" * 5000 + "\n", "nest"),
        ("deep.json", "[" * 200_000 + "]" * 200_000, "nested deeper than 64 levels"),
        ("deep70.json", "[" * 70 + "]" * 70, "nested deeper than 64 levels"),
        ("deep.jsonl", '{"a": 1}\n' + '{"a": ' * 3000 + "1" + "}" * 3000 + "\n", "line 2: JSON line nested"),
        ("surrogate.json", '[{"id": "I1", "service": "web", "created_at": "2026-01-05T10:00:00Z",'
                           ' "title": "a\\ud800b"}]', "lone surrogate"),
        ("bigfield.csv",
         INCIDENT_HEADER + "I1,web,production,2026-01-05T10:00:00Z,,\"" + "x" * 200_000 + "\"\n",
         "line 2: malformed CSV"),
    ],
)
def test_hostile_import_files_fail_with_one_line_and_write_nothing(
    tmp_path: Path, name: str, content: str, needle: str
) -> None:
    db = tmp_path / "s.ducklake"
    path = tmp_path / name
    path.write_text(content)
    started = time.monotonic()
    one_error(run(db, "import", str(path)), str(path), needle)
    assert time.monotonic() - started < 60
    assert not db.exists()  # refused while parsing, before the store was opened


@pytest.fixture(scope="module")
def one_incident(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with one good incident imported, built once for the six timestamps below (each test
    writes to a copy: 0.01 CPU-s against 0.2 for a store made and imported into)."""
    folder = tmp_path_factory.mktemp("one-incident")
    db = folder / "s.ducklake"
    good = folder / "good.csv"
    good.write_text(INCIDENT_HEADER + "I0,web,production,2026-01-05T10:00:00Z,,fine\n")
    assert run(db, "import", str(good)).returncode == 0
    assert count(db, "incidents") == 1
    return db


@pytest.mark.parametrize(
    "when",
    ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+01:00", "1969-12-31T23:59:59Z",
     "2101-01-01T00:00:00Z", "253402300799"],
)
def test_a_timestamp_outside_1970_to_2100_rejects_the_file(
    tmp_path: Path, when: str, one_incident: Path
) -> None:
    db = copy_store(one_incident, tmp_path / "s.ducklake")
    bad = tmp_path / "bad.json"
    value: object = int(when) if when.isdigit() else when
    bad.write_text(json.dumps([
        {"id": "I1", "service": "web", "created_at": "2026-01-05T10:00:00Z", "title": "ok"},
        {"id": "I2", "service": "web", "created_at": value, "title": "typo"},
    ], indent=1))
    line = one_error(run(db, "import", str(bad)), str(bad), "'created_at'", "1970-2100")
    assert "line 8" in line  # where the second record starts
    assert count(db, "incidents") == 1  # the whole file was rejected; the earlier import stands


def test_a_reconciler_dump_with_a_year_9999_sync_is_rejected(tmp_path: Path) -> None:
    from tests.reconciler_objects import application, as_list

    app = application("web", repo_url="https://git.example.com/platform-config.git", path="apps/web",
                      dest_namespace="web", history=[("a" * 40, datetime(2026, 1, 5, tzinfo=UTC))])
    text = json.dumps(as_list("ApplicationList", [app])).replace("2026-01-05T", "9999-01-05T")
    dump = tmp_path / "apps.json"
    dump.write_text(text)
    db = tmp_path / "s.ducklake"
    one_error(run(db, "import", str(dump)), str(dump), "Application/argocd/web",
              "outside the years 1970-2100")
    assert count(db, "reconciler_events") == 0


# --- item 12: the format is decided by parsing --------------------------------------------------


def test_a_yaml_file_whose_first_line_is_a_comment_with_commas_is_yaml(tmp_path: Path) -> None:
    db = tmp_path / "s.ducklake"
    path = tmp_path / "export.txt"
    path.write_text(
        "# incidents, exported from PagerDuty, 2026-01\n"
        "- id: INC-1\n  service: web\n  created_at: 2026-01-05T10:00:00Z\n  title: checkout, down\n"
        "- id: INC-2\n  service: web\n  created_at: 2026-01-06T10:00:00Z\n"
    )
    proc = run(db, "import", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "imported 2 incidents rows" in proc.stderr
    rows = json.loads(run(db, "incidents", "--format", "json").stdout)
    assert {r["id"]: r["title"] for r in rows} == {"INC-1": "checkout, down", "INC-2": None}
    # and a CSV (also one with a colon in a value) is still a CSV
    as_csv = tmp_path / "more.txt"
    as_csv.write_text(INCIDENT_HEADER + "INC-3,web,production,2026-01-07T10:00:00Z,,Outage: checkout\n")
    assert run(db, "import", str(as_csv)).returncode == 0
    assert count(db, "incidents") == 3


# --- item 9: CSV formulas in every CSV output ---------------------------------------------------


def test_every_csv_output_escapes_formulas(tmp_path: Path) -> None:
    db = tmp_path / "s.ducklake"
    deploys = tmp_path / "deploys.csv"
    deploys.write_text(
        "id,service,environment,revision,deployed_at\n"
        "d1,=HYPERLINK(\"http://evil\"),production,v1,2026-01-05T10:00:00Z\n"
        "d2,\uff1dcmd,production,v2,2026-01-06T10:00:00Z\n"
        "d3,|calc,production,v3,2026-01-07T10:00:00Z\n"
    )
    assert run(db, "import", str(deploys)).returncode == 0
    incidents = tmp_path / "incidents.csv"
    incidents.write_text(INCIDENT_HEADER + "I1,|calc,production,2026-01-07T11:00:00Z,,@SUM(A1)\n"
                         "I2,|calc,production,2026-01-07T12:00:00Z,,-1+2\n")
    assert run(db, "import", str(incidents)).returncode == 0

    def cells(*args: str) -> list[dict[str, str]]:
        proc = run(db, *args, "--format", "csv")
        assert proc.returncode == 0, proc.stderr
        return list(csv.DictReader(io.StringIO(proc.stdout)))

    services = {r["service"] for r in cells("deployments")}
    assert services == {"'=HYPERLINK(\"http://evil\")", "'\uff1dcmd", "'|calc"}
    assert {r["title"] for r in cells("incidents")} == {"'@SUM(A1)", "'-1+2"}
    assert {r["service"] for r in cells("metrics")} >= services


# --- item 8: symlinks out of an assessed tree ----------------------------------------------------


@pytest.mark.parametrize("in_git", [True, False])
def test_assess_never_follows_a_symlink_out_of_the_repository(tmp_path: Path, in_git: bool) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.yaml").write_text(repos.deployment("outside-secret", "ghcr.io/acme/secret:1.0.0"))
    (outside / "sub").mkdir()
    (outside / "sub" / "app.yaml").write_text(repos.deployment("outside-dir", "ghcr.io/acme/dir:1.0.0"))
    root = tmp_path / "config"
    files = {"apps/web.yaml": repos.deployment("web", "ghcr.io/acme/web:2.0.0")}
    if in_git:
        GitRepo.init(root).commit("web", repos.AT, files=files)
    else:
        (root / "apps").mkdir(parents=True)
        (root / "apps" / "web.yaml").write_text(files["apps/web.yaml"])
    (root / "leak.yaml").symlink_to(outside / "secret.yaml")
    (root / "linked").symlink_to(outside / "sub")
    (root / "apps" / "same.yaml").symlink_to(root / "apps" / "web.yaml")  # inside: followed
    if in_git:
        GitRepo(root).git("add", "leak.yaml", "linked", "apps/same.yaml")
    proc = run(tmp_path / "s.ducklake", "assess", str(root), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert "outside-secret" not in proc.stdout and "outside-dir" not in proc.stdout
    details = [e["detail"] for c in result["capabilities"] for e in c["evidence"]]
    assert "apps/v1 Deployment/web" in details
    assert "leak.yaml: symbolic link to outside the repository, not followed" in result["skipped"]
    assert "linked: symbolic link to outside the repository, not followed" in result["skipped"]
    assert not any("same.yaml" in s for s in result["skipped"])
    assert "warning: skipped leak.yaml: symbolic link to outside the repository" in proc.stderr


# --- item 10: damaged and read-only stores ---------------------------------------------------


def _tree_state(db: Path) -> dict[str, bytes]:
    """Every file of the store: the catalog, anything beside it (journal, WAL) and the data folder."""
    paths = [db, *db.parent.glob(f"{db.name}-*"), *Path(f"{db}.files").rglob("*")]
    return {str(p): p.read_bytes() for p in paths if p.is_file()}


def test_a_truncated_catalog_is_one_error_line_and_nothing_is_written(tmp_path: Path) -> None:
    db = tmp_path / "s.ducklake"
    good = tmp_path / "good.csv"
    good.write_text(INCIDENT_HEADER + "I0,web,production,2026-01-05T10:00:00Z,,fine\n")
    assert run(db, "import", str(good)).returncode == 0
    size = db.stat().st_size
    with db.open("r+b") as fh:
        fh.truncate(size // 3)
    before = _tree_state(db)
    more = tmp_path / "more.csv"
    more.write_text(INCIDENT_HEADER + "I1,web,production,2026-01-06T10:00:00Z,,more\n")
    one_error(run(db, "import", str(more)), "catalog file is damaged", "backup")
    assert _tree_state(db) == before
    one_error(run(db, "incidents"), str(db))


def test_an_emptied_catalog_beside_data_files_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "s.ducklake"
    many = tmp_path / "many.csv"
    many.write_text(INCIDENT_HEADER + "".join(
        f"I{i},web,production,2026-01-05T10:00:00Z,,incident {i}\n" for i in range(400)))
    assert run(db, "import", str(many)).returncode == 0
    assert list(Path(f"{db}.files").rglob("*.parquet"))
    db.write_bytes(b"")  # e.g. `> file`, or a copy that ran out of space
    one_error(run(db, "import", str(many)), "catalog file is empty", "restore the catalog from a backup")
    assert db.stat().st_size == 0  # not re-initialised as a new, empty store


@contextlib.contextmanager
def _read_only(folder: Path) -> Iterator[None]:
    """The folder cannot be written to: mode 0555, or as root (who ignores modes) the immutable flag."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)],
                                                         capture_output=True).returncode != 0:
        pytest.skip("running as root on a filesystem without the immutable flag: no read-only folder")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_a_read_only_folder_for_the_store_or_the_report_is_one_error_line(tmp_path: Path,
                                                                          one_deployment: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    good = tmp_path / "good.csv"
    good.write_text(INCIDENT_HEADER + "I0,web,production,2026-01-05T10:00:00Z,,fine\n")
    db = _store_with_a_deployment(tmp_path, one_deployment)
    with _read_only(folder):
        one_error(run(folder / "s.ducklake", "import", str(good)), "cannot create", str(folder))
        one_error(run(db, "report", "--out", str(folder / "r.csv")), "cannot write report")
    assert list(folder.iterdir()) == []


# --- item 11: a report killed while it writes ------------------------------------------------


@pytest.fixture(scope="module")
def one_deployment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with one deployment imported, built once for the three report tests (each writes
    its report beside its own copy: 0.01 CPU-s against 0.15-0.2 for an import into a new store)."""
    folder = tmp_path_factory.mktemp("one-deployment")
    db = folder / "s.ducklake"
    deploys = folder / "deploys.csv"
    deploys.write_text("id,service,environment,revision,deployed_at\nd1,web,production,v1,2026-01-05T10:00:00Z\n")
    assert run(db, "import", str(deploys)).returncode == 0
    assert count(db, "deployments") == 1
    return db


def _store_with_a_deployment(tmp_path: Path, one_deployment: Path) -> Path:
    return copy_store(one_deployment, tmp_path / "s.ducklake")


def test_a_report_killed_with_sigterm_leaves_no_temporary_file(tmp_path: Path, one_deployment: Path) -> None:
    db = _store_with_a_deployment(tmp_path, one_deployment)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "report.csv"
    out.write_text("old report\n")
    env = {k: v for k, v in os.environ.items() if k != "GITOPS_DORA_DB"}
    env["GITOPS_DORA_PAUSE_BEFORE_RENAME"] = "60"
    proc = subprocess.Popen([CLI, "--db", str(db), "report", "--out", str(out)], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # the signal comes inside the pause before the rename: the report says it pauses once the
        # temporary file is written (its line is waited for, not 0.3 s after the file shows up)
        assert proc.stderr is not None
        said = ""
        while "pausing" not in said:
            line = proc.stderr.readline()
            assert line, (said, proc.communicate())  # the report ended without pausing
            said += line
        assert list(out_dir.glob(".report.csv.*.tmp"))
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=30)
        err = said + rest
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "error: terminated while writing report" in err
    assert sorted(p.name for p in out_dir.iterdir()) == ["report.csv"]
    assert out.read_text() == "old report\n"


def test_temporaries_of_killed_runs_are_swept_and_a_live_runs_is_kept(tmp_path: Path,
                                                                     one_deployment: Path) -> None:
    db = _store_with_a_deployment(tmp_path, one_deployment)
    out = tmp_path / "report.csv"
    host = "".join(c if c.isalnum() or c in "_-" else "_" for c in socket.gethostname())[:64]
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that no longer runs
    dead = tmp_path / f".report.csv.{host}-{gone.pid}.k1ll3d.tmp"
    old = tmp_path / ".report.csv.0ld.tmp"  # of an earlier version or another host, two hours old
    # a live run of another process: this test process's parent (the report runs in this process,
    # whose own files a sweep never counts as another run's, so the live one must be another pid's)
    assert os.getppid() != os.getpid()
    live = tmp_path / f".report.csv.{host}-{os.getppid()}.l1v3.tmp"
    for path in (dead, old, live):
        path.write_text("half a report")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    proc = run(db, "report", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert not dead.exists() and not old.exists()
    assert live.exists()
    assert out.read_text().startswith("service,team,environment")


# --- item 13: trial assessments ------------------------------------------------------------


def _assessments(db: Path) -> list[tuple[str, str]]:
    con = store_reader(db)
    try:
        return [(r[0], r[1]) for r in con.execute(
            "SELECT target, kind FROM maturity_assessments ORDER BY target, kind").fetchall()]
    finally:
        con.close()


def test_assess_stores_only_with_store_and_forget_deletes(tmp_path: Path) -> None:
    db = tmp_path / "s.ducklake"
    trial = repos.plain_app(tmp_path / "trial")
    kept = repos.sops_flux(tmp_path / "payments-config")
    proc = run(db, "assess", str(trial.path), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["capabilities"]
    assert "not stored" in proc.stderr and "--store" in proc.stderr
    assert not db.exists()  # a trial does not even create the store
    assert run(db, "assess", str(kept.path), "--store").returncode == 0
    assert run(db, "assess", str(trial.path)).returncode == 0  # a trial beside a stored one
    assert _assessments(db) == [("payments-config", "point")]
    assert run(db, "assess", str(trial.path), "--store").returncode == 0
    assert _assessments(db) == [("payments-config", "point"), ("trial", "point")]

    forgot = run(db, "assess", "--forget", "trial")
    assert forgot.returncode == 0, forgot.stderr
    assert "forgot 1 stored assessments of trial" in forgot.stderr
    assert _assessments(db) == [("payments-config", "point")]
    con = store_reader(db)
    try:
        orphans = con.execute(
            "SELECT count(*) FROM maturity_capability_status WHERE NOT starts_with(assessment_id, 'payments')"
        ).fetchone()
    finally:
        con.close()
    assert orphans == (0,)
    one_error(run(db, "assess", "--forget", "trial"), "no stored assessment of 'trial'", "payments-config")
    one_error(run(db, "assess", str(trial.path), "--forget", "trial"), "--forget TARGET takes no PATH_OR_URL")
    one_error(run(tmp_path / "none.ducklake", "assess", "--forget", "x"), "no stored assessment of 'x'")
