"""``collect github`` / ``collect gitlab`` input checked before any request
(analytics/collectors/codehost_input.py), and a server that cannot be reached failing within a few
retries (analytics/collectors/codehost_ratelimit.py, ``CONNECT_RETRIES``).

Before: ``a/b?x=1`` was sent to the API as ``/repos/a/b?x=1``; ``--base-url ftp://...`` and a
refused connection were retried for about two minutes (waits of 1, 2, 4 ... 64 s) before their
one line."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from analytics.collectors import codehost_ratelimit
from analytics.collectors.codehost_input import api_base_url, repository_path
from analytics.errors import SourceError
from tests import codehost_cli


@pytest.mark.parametrize("path", ["octo-org/payments-api", "a_b/c.d-e", " /octo/r/ "])
def test_github_paths_the_host_allows_are_kept(path: str) -> None:
    assert repository_path(path, exactly=2, shape="OWNER/REPO", example="o/r") == path.strip().strip("/")


@pytest.mark.parametrize("path", ["a/b?x=1", "a/b#c", "a/b c", "../../etc/passwd", "a/./b", "a/../b",
                                  "a//b", "just-a-name", "a/b/c", "a/b%2Fc", "a/résumé"])
def test_github_paths_with_anything_else_are_refused_and_named(path: str) -> None:
    with pytest.raises(SourceError) as err:
        repository_path(path, exactly=2, shape="OWNER/REPO", example="o/r")
    assert str(err.value) == ("expected OWNER/REPO (letters, digits, '-', '_' and '.'), e.g. o/r;"
                              f" got {path!r}")


@pytest.mark.parametrize(("path", "ok"), [("group/project", True), ("group/sub/sub2/project", True),
                                          ("project", False), ("group/sub?x", False), ("group/../x", False)])
def test_gitlab_paths_have_two_or_more_segments(path: str, ok: bool) -> None:
    if ok:
        assert repository_path(path, exactly=None, shape="GROUP/PROJECT", example="g/p") == path
    else:
        with pytest.raises(SourceError, match="expected GROUP/PROJECT"):
            repository_path(path, exactly=None, shape="GROUP/PROJECT", example="g/p")


@pytest.mark.parametrize(("url", "ok"), [
    ("https://ghe.example.com/api/v3/", True), ("http://127.0.0.1:8080", True), ("HTTPS://h", True),
    ("ftp://127.0.0.1:9/api/v3", False), ("https://", False), ("127.0.0.1:8080", False),
    ("file:///etc/passwd", False), ("", False),
])
def test_only_http_urls_with_a_host_are_api_base_urls(url: str, ok: bool) -> None:
    if ok:
        assert api_base_url(url, "--base-url") == url.rstrip("/")
    else:
        with pytest.raises(SourceError, match="not an http:// or https:// URL with a host"):
            api_base_url(url, "--base-url")


@pytest.mark.parametrize(("host", "args"), [
    ("github", ["acme/app?per_page=1", "--base-url", "{base}"]),
    ("github", ["acme/app", "--base-url", "ftp://127.0.0.1:9/api/v3"]),
    ("gitlab", ["group/../secret", "--base-url", "{base}"]),
    ("gitlab", ["group/app", "--base-url", "https://"]),
])
def test_bad_input_is_one_line_before_any_request_or_write(
        tmp_path: Path, httpserver: HTTPServer, host: str, args: list[str]) -> None:
    db = tmp_path / "s.ducklake"
    argv = [a.replace("{base}", httpserver.url_for("/").rstrip("/")) for a in args]
    proc = codehost_cli.run_cli(db, "collect", host, *argv, token_env=f"{host.upper()}_TOKEN", token="t0ken")
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert "expected" in lines[0] or "not an http:// or https:// URL" in lines[0]
    assert httpserver.log == []            # nothing was asked of the server
    assert not db.exists()                 # nor the store created


@pytest.mark.parametrize("host", ["github", "gitlab"])
def test_a_server_that_refuses_connections_is_retried_three_times_then_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    """The waits are recorded instead of slept (the countdown is the only sleep of a retry):
    urllib3 retries the first time at once, then after 1 and 2 s; the fourth refusal ends it."""
    waits: list[tuple[float, str]] = []

    def record(seconds: float, reason: str) -> None:
        waits.append((seconds, reason))

    monkeypatch.setattr(codehost_ratelimit, "countdown", record)
    with socket.socket() as probe:       # a port nothing listens on: connections are refused
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    base = f"http://127.0.0.1:{port}" + ("/api/v3" if host == "github" else "")
    proc = codehost_cli.run_cli(tmp_path / "s.ducklake", "collect", host, "acme/app", "--base-url", base,
                                token_env=f"{host.upper()}_TOKEN", token="t0ken")
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-1].startswith(f"error: {host} acme/app at {base}: cannot reach the API")
    assert codehost_ratelimit.CONNECT_RETRIES == 3
    assert waits == [(1.0, "retrying"), (2.0, "retrying")]


def test_a_bad_base_url_from_the_config_is_named_as_the_config_key(tmp_path: Path) -> None:
    (tmp_path / "gitops-dora.yaml").write_text("connections:\n  gitlab:\n    base_url: ftp://gitlab.example\n")
    proc = codehost_cli.run_cli(tmp_path / "s.ducklake", "collect", "gitlab", "group/app",
                                token_env="GITLAB_TOKEN", token="t0ken")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "error: connections.gitlab.base_url 'ftp://gitlab.example':"
        " not an http:// or https:// URL with a host"]
