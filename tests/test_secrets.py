"""Credentials never leave the process (issue #12 item 3): a secret is seeded into every input path
a user has (URL userinfo of `collect git/github/gitlab` and of `assess`, a token in a query
string, the token variables, a token file named by the config, a base URL in the config), the
servers echo every credential they receive back in their error bodies, and afterwards neither
stdout/stderr, nor any file of the store (catalog and data folder, and every text column read
back through SQL), nor a written report holds any of them.

Every command that is handed a credential runs through the real CLI in a subprocess
(`.venv/bin/gitops-dora`): what the process writes, its git and HTTP children's output included, is
what is checked. The commands that get no credential (the data import and the report after the
attempts, the two error-line tests) run in this process (tests/cli_inprocess.py: the same entry
point, its redaction of stderr and its exit status), 0.5-0.6 CPU-s of start-up less each.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from analytics.redaction import MASK, redact, redact_url, register_secret, strip_controls
from tests import cli_inprocess
from tests.store_query import store_reader

CLI = str(Path(sys.executable).with_name("gitops-dora"))

# A password with an '@' (so "the last @ ends the userinfo" matters), two token shapes, a token
# read from a file and one in a query string. Each FRAGMENT must never be seen anywhere.
PASSWORD = "Pw9-kq7@x4Lm2"
GITHUB_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
GITLAB_TOKEN = "glpat-" + "Zy9Xw8Vu7Ts6Rq5Po4Nm"
FILE_TOKEN = "ghp_" + "FiLeT0kEnFiLeT0kEnFiLeT0kEnFiLeT0kEn1"
QUERY_TOKEN = "qtok-5Hd8Jk2Lp0Zx"
BASIC = base64.b64encode(f"bob:{PASSWORD}".encode()).decode()  # what requests sends for userinfo
FRAGMENTS = ("Pw9-kq7", "x4Lm2", GITHUB_TOKEN, GITLAB_TOKEN, FILE_TOKEN, QUERY_TOKEN,
             GITHUB_TOKEN[4:], GITLAB_TOKEN[6:], FILE_TOKEN[4:], BASIC)
DATA_TOKEN = "ghp_" + "DaTaInAsErViCeNaMeDaTaInAsErViCeNaMe"  # not a credential: data a user imported


def echo_credentials(request: Request) -> Response:
    """A server that puts every credential it received into its error body, as a careless proxy or
    a misconfigured API might: the collector must not pass it on."""
    seen = " ".join(f"{k}: {v}" for k, v in request.headers.items()
                    if k.lower() in ("authorization", "private-token"))
    body = {"message": f"denied: {seen} for {request.url}"}
    return Response(json.dumps(body), status=403, content_type="application/json")


def run(db: Path, *args: str, env: dict[str, str] | None = None,
        cwd: Path | None = None, process: bool = True) -> subprocess.CompletedProcess[str]:
    """The CLI in a subprocess, or (``process=False``) in this process."""
    base = {k: v for k, v in os.environ.items()
            if k not in ("GITHUB_TOKEN", "GITLAB_TOKEN", "GITOPS_DORA_DB", "GITOPS_DORA_CONFIG")}
    base["GITOPS_DORA_CACHE"] = str(db.parent / "cache")
    if not process:
        return cli_inprocess.run(["--db", str(db), *args], env={**base, **(env or {})}, cwd=cwd or db.parent)
    return subprocess.run([CLI, "--db", str(db), *args], capture_output=True, text=True,
                          env={**base, **(env or {})}, cwd=cwd or db.parent, timeout=180)


def with_userinfo(url: str) -> str:
    return url.replace("http://", f"http://bob:{PASSWORD}@", 1)


def leaks(text: str) -> list[str]:
    return [f for f in FRAGMENTS if f in text]


def store_text(db: Path) -> str:
    """Every byte of the store's files, decoded leniently, plus every text value read back
    through SQL (Parquet pages may be compressed, so bytes alone could hide a value)."""
    parts = []
    for path in [db, *sorted(Path(f"{db}.files").rglob("*"))]:
        if path.is_file():
            parts.append(path.read_bytes().decode("latin-1"))
    con = store_reader(db)
    try:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'lake'").fetchall()]
        for table in tables:
            parts.append(json.dumps(con.execute(f'SELECT * FROM "{table}"').fetchall(), default=str))
    finally:
        con.close()
    return "\n".join(parts)


def test_a_secret_in_every_input_path_reaches_no_output_no_store_and_no_report(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    httpserver.expect_request(re.compile(r"^/.*")).respond_with_handler(echo_credentials)
    base = httpserver.url_for("/").rstrip("/")
    db = tmp_path / "store.ducklake"
    token_file = tmp_path / "github.token"
    token_file.write_text(FILE_TOKEN + "\n")
    config_dir = tmp_path / "cfg"
    config_dir.mkdir()
    (config_dir / "gitops-dora.yaml").write_text(
        "connections:\n"
        f"  github:\n    base_url: {with_userinfo(base)}/api/v3\n    token_file: {token_file}\n"
    )
    outputs: list[subprocess.CompletedProcess[str]] = []

    def attempt(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        proc = run(db, *args, env=env, cwd=cwd)
        outputs.append(proc)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert lines[-1].startswith("error: "), proc.stderr

    attempt("collect", "github", "acme/payments", "--base-url", with_userinfo(base) + "/api/v3",
            env={"GITHUB_TOKEN": GITHUB_TOKEN})
    attempt("--debug", "collect", "github", "acme/payments", "--base-url", with_userinfo(base) + "/api/v3",
            env={"GITHUB_TOKEN": GITHUB_TOKEN})  # the traceback too
    attempt("collect", "github", "acme/payments", cwd=config_dir)  # base URL and token file from config
    attempt("collect", "gitlab", "acme/payments", "--base-url", with_userinfo(base),
            env={"GITLAB_TOKEN": GITLAB_TOKEN})
    attempt("collect", "gitlab", "acme/payments", "--base-url", f"{base}/?private_token={QUERY_TOKEN}",
            env={"GITLAB_TOKEN": GITLAB_TOKEN})
    attempt("collect", "git", with_userinfo(base) + "/acme/payments.git")
    attempt("--debug", "collect", "git", with_userinfo(base) + "/acme/payments.git")
    attempt("assess", with_userinfo(base) + "/acme/platform-config.git", "--store")

    assert any("Traceback" in p.stderr for p in outputs)  # --debug printed its (redacted) traceback
    # ...and the failed runs were logged in the store, credentials masked.
    con = store_reader(db)
    try:
        messages = [r[0] for r in con.execute(
            "SELECT message FROM collection_runs WHERE status = 'failed' ORDER BY finished_at").fetchall()]
    finally:
        con.close()
    assert any("403" in m and "bob:***@" in m for m in messages), messages
    assert any(f"token {MASK}" in m or f"Bearer {MASK}" in m for m in messages), messages

    # A report over the same store (a service whose name carries a token shape, as data can).
    deployments = tmp_path / "deploys.csv"
    deployments.write_text(
        "id,service,environment,revision,deployed_at\n"
        f"d1,svc-{DATA_TOKEN},production,v1,2026-01-05T10:00:00Z\n"
    )
    imported = run(db, "import", str(deployments), process=False)
    assert imported.returncode == 0, imported.stderr
    outputs.append(imported)
    report = tmp_path / "report.csv"
    written = run(db, "report", "--out", str(report), process=False)
    assert written.returncode == 0, written.stderr
    outputs.append(written)
    assert f"svc-{MASK}" in report.read_text()

    for proc in outputs:
        assert not leaks(proc.stdout + proc.stderr), (proc.args, proc.stdout, proc.stderr)
    # the imported service name is data the user loaded: stored as given, never in a report
    assert not leaks(report.read_text()) and DATA_TOKEN not in report.read_text()
    assert not leaks(store_text(db))


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://bob:PW@host/x.git", "https://bob:***@host/x.git"),
        ("https://user:p@ssS3CRET@host/x", "https://user:***@host/x"),  # the last @ ends the userinfo
        ("https://ghp_TOKEN@github.com/o/r.git", "https://***@github.com/o/r.git"),
        ("github o/r at http://bob:p@ss@host: cannot", "github o/r at http://bob:***@host: cannot"),
        ("GET https://h/api?private_token=abc123&page=2&sig=zz#x",
         "GET https://h/api?private_token=***&page=2&sig=***#x"),
        ("https://h/x?access_token=a1&token=b2", "https://h/x?access_token=***&token=***"),
        ("Authorization: Bearer eyJhbGciOi.x.y", "Authorization: Bearer ***"),
        ("{'Authorization': 'token abc', 'PRIVATE-TOKEN': 'xyz'}",
         "{'Authorization': 'token ***', 'PRIVATE-TOKEN': '***'}"),
        (f"leaked {GITHUB_TOKEN} and {GITLAB_TOKEN}", "leaked *** and ***"),
        ("github_pat_11ABCDEFG0123456789_abcdefghijklmnop", "***"),
        ('password: "hunter22" and GITOPS_DORA_DB_PASSWORD=s3cr3t',
         'password: "***" and GITOPS_DORA_DB_PASSWORD=***'),
        ("check the token in $GITHUB_TOKEN (or connections.github.token_env/token_file)",
         "check the token in $GITHUB_TOKEN (or connections.github.token_env/token_file)"),
        ("https://host/plain?page=2", "https://host/plain?page=2"),
    ],
)
def test_redaction_rules(text: str, shown: str) -> None:
    assert redact(text) == shown
    assert redact(shown) == shown  # idempotent


def test_stored_urls_drop_the_userinfo_and_registered_values_are_masked_anywhere() -> None:
    assert redact_url("https://ci:tok@en@host/a.git", drop_userinfo=True) == "https://host/a.git"
    register_secret("file/token:0123456789")
    assert redact("reason: file/token:0123456789 was refused") == "reason: *** was refused"
    assert redact("in a URL: file%2Ftoken%3A0123456789") == "in a URL: ***"  # percent-encoded too


def test_an_environment_credential_is_masked_in_an_error_line(tmp_path: Path) -> None:
    """A value in a *_TOKEN variable that shows up in a message (here: in a path that does not
    exist) is masked on stderr by the CLI itself."""
    secret = "zq81-VALUE-OF-A-TOKEN-9x"
    proc = run(tmp_path / "s.ducklake", "assess", str(tmp_path / secret),
               env={"SOMETHING_TOKEN": secret}, process=False)
    assert proc.returncode == 2
    assert secret not in proc.stderr and proc.stderr.startswith("error: ")
    assert f"{MASK}: no such directory" in proc.stderr


def test_error_lines_lose_terminal_control_characters(tmp_path: Path) -> None:
    evil = tmp_path / "x\x1b]8;;http://evil.example\x07click\x1b]8;;\x07\x1b[2J"
    proc = run(tmp_path / "s.ducklake", "import", str(evil), process=False)
    assert proc.returncode == 2
    assert "\x1b" not in proc.stderr and "\x07" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert strip_controls("a\x1b[31mb\x90c\u202ed\te\x07") == "abcd\te"
