"""``collect github`` and ``collect gitlab`` against a code host that misbehaves
(tests/codehost_hostile_api.py, a real HTTP server on 127.0.0.1 with GitHub- and GitLab-shaped
answers): a server that accepts and never answers, stalls after the headers, trickles a body,
sends an endless or huge body, pages in a circle, rate-limits for ever or for an hour or ten days,
fails with 5xx for ever, answers malformed JSON or JSON of the wrong shape, or echoes the token.

Each must end with one ``error:`` line naming the repository and the server (after at most the
countdown lines of the waits it allowed), exit 2, no token shown, nothing stored, in a few seconds:
the limits are shortened through the ``GITOPS_DORA_CODEHOST_*`` variables (docs/codehosts.md,
"Limits of a collection"). Runs whose old behaviour was to hang (a stall, an hour's wait) go through
a subprocess with a deadline, so they fail on that code instead of never finishing; the rest run in
this process (tests/cli_inprocess.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests import codehost_cli
from tests.codehost_hostile_api import TOKEN, HostileAPI

CLI = str(Path(sys.executable).with_name("gitops-dora"))
REPO = "acme/app"
LIMITS = {
    "GITOPS_DORA_CODEHOST_TIMEOUT": "1",
    "GITOPS_DORA_CODEHOST_RESPONSE_SECONDS": "3",
    "GITOPS_DORA_CODEHOST_MAX_BODY": str(1024 * 1024),
    "GITOPS_DORA_CODEHOST_MAX_WAIT": "10",
    "GITOPS_DORA_CODEHOST_MAX_TOTAL_WAIT": "4",
    "GITOPS_DORA_SECONDARY_RATE_WAIT": "1",
}
DEADLINE = 40.0  # a subprocess still running then has hung (the old code's hour-long wait)
COUNTDOWN = ("waiting", "s left", "resuming")


def _env(host: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("GITHUB_TOKEN", "GITLAB_TOKEN", "GITOPS_DORA_DB")
           and not k.startswith("GITOPS_DORA_CODEHOST")}
    env.update(LIMITS)
    env[f"{host.upper()}_TOKEN"] = TOKEN
    return env


def collect(tmp_path: Path, api: HostileAPI, *, process: bool = False) -> tuple[int, str, float]:
    db = tmp_path / "s.ducklake"
    args = ["collect", api.host, REPO, "--base-url", api.base]
    started = time.monotonic()
    if not process:
        done = codehost_cli.run_cli(db, *args, token_env=f"{api.host.upper()}_TOKEN", token=TOKEN,
                                    extra_env=LIMITS)
        return done.returncode, done.stderr, time.monotonic() - started
    try:
        proc = subprocess.run([CLI, "--db", str(db), *args], capture_output=True, text=True,
                              env=_env(api.host), cwd=tmp_path, timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        pytest.fail(f"collect {api.host} against the '{api.fault}' server still ran after {DEADLINE:g}s")
    return proc.returncode, proc.stderr, time.monotonic() - started


def stored(tmp_path: Path) -> int:
    db = tmp_path / "s.ducklake"
    if not db.exists():
        return 0
    rows = codehost_cli.query(db, "SELECT (SELECT count(*) FROM pull_requests)"
                                  " + (SELECT count(*) FROM pr_reviews) + (SELECT count(*) FROM deployments)"
                                  " + (SELECT count(*) FROM incidents)")
    return int(rows[0][0])


def assert_one_line_failure(rc: int, stderr: str, api: HostileAPI, *words: str) -> str:
    assert "Traceback" not in stderr, stderr
    assert TOKEN not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], stderr
    assert all(line == errors[0] or any(w in line for w in COUNTDOWN) for line in lines), stderr
    assert errors[0].startswith(f"error: {api.host} {REPO} at {api.base}: "), errors[0]
    for word in words:
        assert word in errors[0], errors[0]
    assert rc == 2, stderr
    return errors[0]


HOSTS = ["github", "gitlab"]


# --- faults that kept the old code waiting: run as a process with a deadline -------------------

@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize(("fault", "words", "within"), [
    ("stall", ["no answer in time", "GITOPS_DORA_CODEHOST_TIMEOUT"], 15.0),
    ("headers-stall", ["stopped sending", "GITOPS_DORA_CODEHOST_TIMEOUT"], 6.0),
    ("trickle", ["still arriving after 3s", "GITOPS_DORA_CODEHOST_RESPONSE_SECONDS"], 7.0),
    ("retry-after-1", ["GITOPS_DORA_CODEHOST_MAX_TOTAL_WAIT"], 9.0),
    ("retry-after-3600", ["asks to wait 3600s", "GITOPS_DORA_CODEHOST_MAX_WAIT"], 6.0),
    ("reset-far", ["asks to wait", "GITOPS_DORA_CODEHOST_MAX_WAIT"], 6.0),
    ("server-error", ["server error (HTTP 503)", "GITOPS_DORA_CODEHOST_MAX_TOTAL_WAIT"], 9.0),
])
def test_a_server_that_stalls_or_makes_us_wait_ends_in_one_line(
        tmp_path: Path, host: str, fault: str, words: list[str], within: float) -> None:
    with HostileAPI(host, fault=fault, target="/issues") as api:
        rc, stderr, took = collect(tmp_path, api, process=True)
    assert_one_line_failure(rc, stderr, api, *words)
    assert took < within, (took, stderr)
    assert stored(tmp_path) == 0  # the pull request read before the fault was not written


# --- faults that cost the old code memory or requests without end ------------------------------

@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize(("fault", "words"), [
    ("endless", ["passed the 1048576-byte limit", "GITOPS_DORA_CODEHOST_MAX_BODY"]),
    ("huge", ["1000000000000 bytes", "GITOPS_DORA_CODEHOST_MAX_BODY"]),
])
def test_an_endless_or_huge_body_is_refused_at_the_limit(
        tmp_path: Path, host: str, fault: str, words: list[str]) -> None:
    with HostileAPI(host, fault=fault, target="/issues") as api:
        rc, stderr, _ = collect(tmp_path, api)
        sent = api.sent
    assert_one_line_failure(rc, stderr, api, *words)
    assert sent < 8 * 1024 * 1024  # the client hung up near the 1 MiB limit, not at the server's 48 MiB
    assert stored(tmp_path) == 0


@pytest.mark.parametrize("host", HOSTS)
def test_a_next_page_link_back_to_a_page_already_read_stops_the_run(tmp_path: Path, host: str) -> None:
    with HostileAPI(host, fault="loop", target="/issues") as api:
        rc, stderr, _ = collect(tmp_path, api)
        hits = api.hits
    assert_one_line_failure(rc, stderr, api, "points back to a page already read")
    assert hits <= 3, hits
    assert stored(tmp_path) == 0


# --- answers that are not the API's: one line, nothing stored ----------------------------------

def _without(item: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != key}


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("fault", ["malformed", "html", "dict"])
def test_malformed_or_misshapen_json_is_one_line(tmp_path: Path, host: str, fault: str) -> None:
    target = "/pulls" if host == "github" else "/merge_requests"
    with HostileAPI(host, fault=fault, target=target) as api:
        rc, stderr, _ = collect(tmp_path, api)
    assert_one_line_failure(rc, stderr, api, "not a Git")
    assert stored(tmp_path) == 0


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("change", ["no number", "number is text", "title is a list", "author is text"])
def test_items_missing_fields_or_of_the_wrong_type_are_one_line(
        tmp_path: Path, host: str, change: str) -> None:
    from tests.codehost_hostile_api import _github_pull, _gitlab_mr

    with HostileAPI(host) as api:
        item = _github_pull(api.origin) if host == "github" else _gitlab_mr()
        number, author = ("number", "user") if host == "github" else ("iid", "author")
        api.pull = {
            # (PyGithub reads a missing number from the item's url, as GitHub's own objects allow)
            "no number": _without(_without(item, number), "url"),
            "number is text": {**item, number: "abc"},
            "title is a list": {**item, "title": ["a", "b"]},
            "author is text": {**item, author: "ada"},
        }[change]
        rc, stderr, _ = collect(tmp_path, api)
    # PyGithub refuses an item without its url itself (HTTP 400, its own words)
    words = () if (host, change) == ("github", "no number") else ("not a Git",)
    assert_one_line_failure(rc, stderr, api, *words)
    assert stored(tmp_path) == 0


@pytest.mark.parametrize("host", HOSTS)
def test_a_token_echoed_in_a_multi_line_error_body_or_reason_is_one_masked_line(
        tmp_path: Path, host: str) -> None:
    with HostileAPI(host, fault="echo", target="/issues") as api:
        rc, stderr, _ = collect(tmp_path, api)
    line = assert_one_line_failure(rc, stderr, api, "422")
    assert "line three" in line  # the body's lines, joined into the one line
    assert stored(tmp_path) == 0
