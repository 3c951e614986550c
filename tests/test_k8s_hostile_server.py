"""``collect k8s`` against a Kubernetes API that misbehaves: the emulated API of tests/k8s_api.py,
with faults a user trial found (a stalled or endless answer, a continue token served in a circle,
429 throttling, credentials echoed back, an unstorable name, watches that stall or end at once, a
failing exec credential plugin, a kubeconfig named wrongly). Every request still goes through the
real kubernetes client to a real HTTP server on 127.0.0.1.

The timeouts are shortened for the tests through ``GITOPS_DORA_K8S_TIMEOUT`` and
``GITOPS_DORA_K8S_WATCH_SECONDS``, the page cap through ``GITOPS_DORA_K8S_MAX_PAGE_BYTES``
(docs/reconcilers.md). A fault that the code before these fixes would have met by hanging or
filling memory is bounded by the server here (a stall ends after a few seconds, an endless body
after 64 MiB), so those tests fail on that code instead of never finishing."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from tests import cli_inprocess
from tests.k8s_api import KINDS, FakeKube
from tests.reconciler_objects import application
from tests.store_query import store_reader

CLI = str(Path(sys.executable).with_name("gitops-dora"))
T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
REV = "a1" * 20
TOKEN = "kc-token-7f3a9b2c1d0e"  # no known token shape: only registration can hide it
PASSWORD = "kc-pass-5e6f7a8b9c"
STALL_SECONDS = 5.0  # how long the server stays silent before it gives up (bounds the old code)


class HostileKube(FakeKube):
    """The emulated API, plus per-collection faults for lists (``lists``) and watches (``watches``).
    A collection without a fault is served by the emulated API as usual."""

    def __init__(self) -> None:
        self.lists: dict[str, str] = {}
        self.watches: dict[str, str] = {}
        self.closing = threading.Event()
        self.hits: dict[str, int] = {}
        super().__init__()

    def __exit__(self, *exc: object) -> None:
        self.closing.set()
        super().__exit__(*exc)

    def watch_requests(self, plural: str) -> int:
        return sum(1 for r in self.requests if f"/{plural}?" in r and "watch=true" in r)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        base: Any = super()._handler()
        kube = self

        class Hostile(base):  # type: ignore[misc, valid-type]
            def do_GET(self) -> None:  # noqa: N802 - http.server API
                url = urlparse(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                plural = url.path.rstrip("/").rsplit("/", 1)[-1]
                watching = query.get("watch") in ("true", "1")
                fault = (kube.watches if watching else kube.lists).get(plural)
                if fault is None:
                    return super().do_GET()
                kube.requests.append(self.path)
                kube.hits[fault] = kube.hits.get(fault, 0) + 1
                getattr(self, f"fault_{fault}")(plural, query)

            # -- helpers --------------------------------------------------------------------------
            def cut(self) -> None:
                """End the connection (as ``drop_after`` does): without it the server would wait for
                the next request on it while the client waits for the rest of this answer."""
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)

            def send_body(self, code: int, body: bytes, reason: str | None = None, **headers: str) -> None:
                self.send_response(code, reason)
                self.send_header("Content-Type", "application/json")
                for name, value in headers.items():
                    self.send_header(name.replace("_", "-"), value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def page(self, plural: str, items: list[dict[str, Any]], **meta: str) -> bytes:
                doc = {"apiVersion": "v1", "kind": f"{KINDS[plural]}List", "items": items}
                doc["metadata"] = {"resourceVersion": str(kube.rv), **meta}
                return json.dumps(doc).encode()

            def status(self, code: int, reason: str, message: str) -> bytes:
                doc = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason}
                return json.dumps({**doc, "code": code, "message": message}).encode()

            # -- list faults --------------------------------------------------------------------
            def fault_stall_once(self, plural: str, query: dict[str, str]) -> None:
                """Nothing at all (no status line) for a while, then the connection closes; the
                next request is served normally, so a client that never times out but retries
                would succeed."""
                kube.lists.pop(plural, None)
                kube.closing.wait(STALL_SECONDS)
                self.cut()

            def fault_stall_body(self, plural: str, query: dict[str, str]) -> None:
                """Headers and the start of the body, then silence."""
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "1000000")
                self.end_headers()
                self.wfile.write(b'{"items": [')
                self.wfile.flush()
                kube.closing.wait(STALL_SECONDS)
                self.cut()

            def fault_endless(self, plural: str, query: dict[str, str]) -> None:
                """A chunked body that never ends (cut after 64 MiB, so nothing runs away)."""
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b" " * 65536
                try:
                    self.wfile.write(b"b\r\n" + b'{"items": [' + b"\r\n")
                    for _ in range(1024):
                        self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                except OSError:
                    pass
                self.cut()

            def fault_too_long(self, plural: str, query: dict[str, str]) -> None:
                """A Content-Length beyond any cap; the body never comes."""
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(1 << 40))
                self.end_headers()
                self.wfile.flush()
                kube.closing.wait(STALL_SECONDS)
                self.cut()

            def fault_same_continue(self, plural: str, query: dict[str, str]) -> None:
                """The same continue token on every page (the 50th page ends the list, so a client
                that loops is slow and wrong instead of endless)."""
                meta = {} if kube.hits["same_continue"] >= 50 else {"continue": "c2FtZQ=="}
                item = application("loop-production", repo_url="u", path="p", dest_namespace="n", history=[])
                self.send_body(200, self.page(plural, [item], **meta))

            def fault_throttle(self, plural: str, query: dict[str, str]) -> None:
                self.send_body(429, self.status(429, "TooManyRequests", "slow down"), Retry_After="0")

            def fault_throttle_long(self, plural: str, query: dict[str, str]) -> None:
                self.send_body(429, self.status(429, "TooManyRequests", "slow down"), Retry_After="90")

            def fault_throttle_once(self, plural: str, query: dict[str, str]) -> None:
                kube.lists.pop(plural, None)
                self.fault_throttle(plural, query)

            def fault_echo(self, plural: str, query: dict[str, str]) -> None:
                """401 with the credential it was sent in the reason phrase and the body."""
                sent = self.headers.get("Authorization", "")
                echoed = sent
                if sent.startswith("Basic "):
                    echoed += " " + base64.b64decode(sent[6:]).decode()
                message = f"bad credential {echoed}"
                self.send_body(
                    401, self.status(401, "Unauthorized", message), reason=f"Unauthorized {echoed}"
                )

            def fault_surrogate(self, plural: str, query: dict[str, str]) -> None:
                item = application("bad\ud800name", repo_url="u", path="p", dest_namespace="n", history=[])
                self.send_body(200, self.page(plural, [item]))  # json.dumps writes the \\ud800 escape

            def fault_error500(self, plural: str, query: dict[str, str]) -> None:
                """A 500 that echoes the bearer token it got, in a two-line body and the reason."""
                token = self.headers.get("Authorization", "").split(" ", 1)[-1]
                message = f"user with {token} is invalid\nsecond line"
                self.send_body(500, self.status(500, "InternalError", message), reason=f"Oops {token}")

            # -- watch faults -------------------------------------------------------------------
            def fault_close(self, plural: str, query: dict[str, str]) -> None:
                """A watch that ends at once, cleanly, without a single event."""
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.wfile.write(b"0\r\n\r\n")

            def fault_stall(self, plural: str, query: dict[str, str]) -> None:
                """A watch that sends its headers and then nothing, whatever timeoutSeconds says."""
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.wfile.flush()
                kube.closing.wait(60)
                self.cut()

        return Hostile


def fast_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GITOPS_DORA_PAUSE_BEFORE_COMMIT", "KUBECONFIG")}
    env.update(GITOPS_DORA_K8S_TIMEOUT="0.5", GITOPS_DORA_K8S_WATCH_SECONDS="1", **extra)
    return env


def collect(db: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return cli_inprocess.run(["--db", str(db), "collect", "k8s", *args], env=env or fast_env())


def kubeconfig(path: Path, server: str, user: dict[str, Any], context: str = "emulated") -> Path:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": context,
                "clusters": [{"name": "emulated", "cluster": {"server": server}}],
                "users": [{"name": "tester", "user": user}],
                "contexts": [{"name": context, "context": {"cluster": "emulated", "user": "tester"}}],
            }
        )
    )
    return path


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), proc.stderr
    return lines[0]


def put_app(kube: FakeKube, name: str = "payments-production") -> None:
    kube.put(
        "applications", application(name, repo_url="u", path="p", dest_namespace="n", history=[(REV, T0)])
    )


# -- lists --------------------------------------------------------------------------------------
@pytest.mark.parametrize("fault", ["stall_once", "stall_body"])
def test_stalled_list_times_out_in_one_line(tmp_path: Path, fault: str) -> None:
    with HostileKube() as kube:
        put_app(kube)
        kube.lists["applications"] = fault
        proc = collect(tmp_path / "db", "--kubeconfig", str(kube.kubeconfig(tmp_path / "kc")))
    assert proc.returncode == 2
    assert one_error_line(proc) == (
        "error: kubernetes API: listing applications.argoproj.io failed: "
        "timed out (nothing received for 0.5 s)"
    )


@pytest.mark.parametrize("fault", ["endless", "too_long"])
def test_list_answer_over_the_cap_is_refused(tmp_path: Path, fault: str) -> None:
    with HostileKube() as kube:
        kube.lists["applications"] = fault
        env = fast_env(GITOPS_DORA_K8S_MAX_PAGE_BYTES=str(2 * 1024 * 1024))
        proc = collect(tmp_path / "db", "--kubeconfig", str(kube.kubeconfig(tmp_path / "kc")), env=env)
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert line.startswith(
        "error: kubernetes API: listing applications.argoproj.io failed: the answer is larger than 2 MiB"
    ), line


def test_repeated_continue_token_stops_the_list(tmp_path: Path) -> None:
    with HostileKube() as kube:
        kube.lists["applications"] = "same_continue"
        proc = collect(tmp_path / "db", "--kubeconfig", str(kube.kubeconfig(tmp_path / "kc")))
        pages = kube.hits["same_continue"]
    assert proc.returncode == 2
    assert one_error_line(proc) == (
        "error: kubernetes API: listing applications.argoproj.io failed: "
        "the server repeated a continue token it had sent before"
    )
    assert pages == 2


def test_throttled_list_is_retried_as_retry_after_says(tmp_path: Path) -> None:
    """The collector's own retry (urllib3's hidden retries are off, so a stall costs one timeout,
    not four); urllib3 used to retry this too, without a bound on Retry-After."""
    with HostileKube() as kube:
        put_app(kube)
        kube.lists["applications"] = "throttle_once"
        db = tmp_path / "db"
        proc = collect(db, "--kubeconfig", str(kube.kubeconfig(tmp_path / "kc")))
        assert proc.returncode == 0, proc.stderr
    con = store_reader(db)
    try:
        assert con.execute("SELECT name FROM reconciler_objects").fetchall() == [("payments-production",)]
    finally:
        con.close()


def test_throttling_that_never_ends_gives_up_after_three_tries(tmp_path: Path) -> None:
    with HostileKube() as kube:
        kube.lists["applications"] = "throttle"
        proc = collect(tmp_path / "db", "--kubeconfig", str(kube.kubeconfig(tmp_path / "kc")))
        tries = kube.hits["throttle"]
    assert proc.returncode == 2
    assert one_error_line(proc) == (
        "error: kubernetes API: listing applications.argoproj.io failed: "
        "HTTP 429 Too Many Requests (still throttled after 3 tries and 0 s of waiting)"
    )
    assert tries == 3


def test_throttling_beyond_the_budget_is_not_waited_for(tmp_path: Path) -> None:
    """Retry-After: 90 is more than a request waits in all (60 s): one line at once, no sleep. (The
    code before the fix slept as long as any Retry-After said; this test then ends by pytest's
    timeout.)"""
    with HostileKube() as kube:
        kube.lists["applications"] = "throttle_long"
        proc = collect(tmp_path / "db", "--kubeconfig", str(kube.kubeconfig(tmp_path / "kc")))
        tries = kube.hits["throttle_long"]
    assert proc.returncode == 2
    assert one_error_line(proc) == (
        "error: kubernetes API: listing applications.argoproj.io failed: "
        "HTTP 429 Too Many Requests (Retry-After 90 s would pass the 60 s a request waits in all)"
    )
    assert tries == 1


def test_lone_surrogate_in_a_name_is_refused_like_import(tmp_path: Path) -> None:
    with HostileKube() as kube:
        kube.lists["applications"] = "surrogate"
        proc = collect(tmp_path / "db", "--kubeconfig", str(kube.kubeconfig(tmp_path / "kc")))
    assert proc.returncode == 2
    assert one_error_line(proc) == (
        "error: kubernetes API: applications.argoproj.io: text with an invalid Unicode escape "
        "(a lone surrogate such as \\ud800)"
    )


# -- credentials --------------------------------------------------------------------------------
def _plugin(output: dict[str, Any] | None, exit_code: int = 0) -> dict[str, Any]:
    """An exec credential plugin: this Python, printing ``output`` (and a secret on stderr)."""
    script = (
        "import sys; sys.stderr.write('plugin-stderr-secret-4242\\n'); "
        f"print({json.dumps(json.dumps(output))} if {output is not None}  else ''); sys.exit({exit_code})"
    )
    return {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": sys.executable,
            "args": ["-c", script],
        }
    }


EXEC_OK = {
    "apiVersion": "client.authentication.k8s.io/v1beta1",
    "kind": "ExecCredential",
    "status": {"token": TOKEN},
}


@pytest.mark.parametrize(
    ("user", "secrets"),
    [
        ({"token": TOKEN}, [TOKEN]),
        (
            {"username": "tester", "password": PASSWORD},
            [PASSWORD, base64.b64encode(b"tester:" + PASSWORD.encode())],
        ),
        (_plugin(EXEC_OK), [TOKEN]),
    ],
    ids=["token", "basic-auth", "exec-plugin"],
)
def test_kubeconfig_credentials_echoed_by_the_server_are_masked(
    tmp_path: Path, user: dict[str, Any], secrets: list[str | bytes]
) -> None:
    with HostileKube() as kube:
        kube.lists["applications"] = "echo"
        proc = collect(tmp_path / "db", "--kubeconfig", str(kubeconfig(tmp_path / "kc", kube.url, user)))
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert line.startswith("error: kubernetes API: listing applications.argoproj.io failed: HTTP 401"), line
    for secret in secrets:
        text = secret.decode() if isinstance(secret, bytes) else secret
        assert text not in proc.stderr + proc.stdout
    assert "***" in line


def test_failing_credential_plugin_stops_the_run_without_its_stderr(tmp_path: Path) -> None:
    with HostileKube() as kube:
        put_app(kube)
        path = kubeconfig(tmp_path / "kc", kube.url, _plugin(None, exit_code=1))
        proc = collect(tmp_path / "db", "--kubeconfig", str(path))
        asked = list(kube.requests)
    assert proc.returncode == 2
    assert one_error_line(proc) == f"error: kubeconfig {path}: credential plugin failed (exit 1)"
    assert "plugin-stderr-secret" not in proc.stderr + proc.stdout
    assert asked == []  # nothing was sent unauthenticated


# -- which kubeconfig, which context ------------------------------------------------------------
def test_messages_name_the_kubeconfig_that_was_read(tmp_path: Path) -> None:
    with HostileKube() as kube:
        path = kube.kubeconfig(tmp_path / "from-env")
        proc = collect(tmp_path / "db", "--context", "nope", env=fast_env(KUBECONFIG=str(path)))
        assert proc.returncode == 2
        assert (
            one_error_line(proc) == f"error: kubeconfig {path}: no context named 'nope' (it has 'emulated')"
        )
        proc = collect(tmp_path / "db", "--kubeconfig", str(tmp_path))
        assert proc.returncode == 2
        assert one_error_line(proc) == f"error: kubeconfig {tmp_path}: is a folder, not a kubeconfig file"


def test_state_key_and_summary_name_the_current_context(tmp_path: Path) -> None:
    db = tmp_path / "db"
    with HostileKube() as kube:
        put_app(kube)
        for context in ("prod-eu", "prod-us"):
            path = kube.kubeconfig(tmp_path / f"kc-{context}", context=context)
            proc = collect(db, "--kubeconfig", str(path))
            assert proc.returncode == 0, proc.stderr
            assert proc.stderr.splitlines()[-1].startswith(f"{context}/*: "), proc.stderr
    con = store_reader(db)
    try:
        sources = con.execute("SELECT DISTINCT source FROM collector_state ORDER BY 1").fetchall()
        targets = con.execute("SELECT DISTINCT target FROM collection_runs ORDER BY 1").fetchall()
    finally:
        con.close()
    assert sources == [("k8s:prod-eu/*",), ("k8s:prod-us/*",)]
    assert targets == [("prod-eu/*",), ("prod-us/*",)]


# -- watches ------------------------------------------------------------------------------------
class Watching:
    """``collect k8s --watch`` as a process (it is stopped with SIGTERM), its stderr read as it comes."""

    def __init__(self, kube: FakeKube, tmp_path: Path) -> None:
        args = ["--db", str(tmp_path / "db"), "collect", "k8s", "--watch"]
        args += ["--kubeconfig", str(kube.kubeconfig(tmp_path / "kc"))]
        self.proc = subprocess.Popen([CLI, *args], env=fast_env(), stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, check: Callable[[list[str]], bool], seconds: float = 60.0) -> None:
        deadline = time.monotonic() + seconds
        while not check(list(self.lines)):
            if self.proc.poll() is not None:
                self.reader.join(timeout=5)
                raise AssertionError(f"the watcher exited {self.proc.returncode}: {self.lines}")
            if time.monotonic() > deadline:
                raise AssertionError(f"not reached; stderr so far: {self.lines[-20:]}")
            time.sleep(0.05)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        self.reader.join(timeout=5)
        return code


def _warnings(lines: list[str], text: str) -> list[str]:
    return [line for line in lines if line.startswith("warning: ") and text in line]


def test_stalled_watch_is_noticed_and_reconnected(tmp_path: Path) -> None:
    with HostileKube() as kube:
        put_app(kube)
        kube.watches.update(dict.fromkeys(KINDS, "stall"))
        watching = Watching(kube, tmp_path)
        try:
            watching.wait_for(
                lambda lines: len(_warnings(lines, "watch applications.argoproj.io stalled")) >= 2
            )
        finally:
            code = watching.stop()
    assert code == 0, watching.lines
    stalled = _warnings(watching.lines, "watch applications.argoproj.io stalled")
    assert stalled[0] == (
        "warning: watch applications.argoproj.io stalled (nothing received for 1.5 s); reconnecting in 0.5s"
    )
    assert stalled[1].endswith("reconnecting in 1.0s")


def test_watch_that_ends_at_once_backs_off(tmp_path: Path) -> None:
    with HostileKube() as kube:
        put_app(kube)
        kube.watches.update(dict.fromkeys(KINDS, "close"))
        watching = Watching(kube, tmp_path)
        try:
            watching.wait_for(
                lambda lines: len(_warnings(lines, "watch applications.argoproj.io ended")) >= 3
            )
        finally:
            code = watching.stop()
        asked = kube.watch_requests("applications")
    assert code == 0, watching.lines
    ended = _warnings(watching.lines, "watch applications.argoproj.io ended")
    assert [line.rsplit(" ", 1)[-1] for line in ended[:3]] == ["0.5s", "1.0s", "2.0s"]
    # one request per warning, and the one the stop interrupted: never a tight loop
    assert asked <= len(ended) + 1, (asked, len(ended))


def test_failed_relist_is_one_warning_line(tmp_path: Path) -> None:
    with HostileKube() as kube:
        put_app(kube)
        kube.kubeconfig(tmp_path / "kc")
        watching = Watching(kube, tmp_path)
        try:
            watching.wait_for(lambda lines: any(line.startswith("watching ") for line in lines))
            kube.lists["applications"] = "error500"
            kube.outage("applications", [])  # the reconnect gets 410 Gone, and the relist meets the 500
            watching.wait_for(lambda lines: bool(_warnings(lines, "relist of applications")))
        finally:
            code = watching.stop()
    assert code == 0, watching.lines
    relist = _warnings(watching.lines, "relist of applications")[0]
    assert relist == "warning: relist of applications.argoproj.io failed: HTTP 500 Oops ***; trying again"
    assert not any("HTTP response" in line or "second line" in line for line in watching.lines)
