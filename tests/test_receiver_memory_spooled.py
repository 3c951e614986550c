"""A large body is streamed to a spool file and read through a memory map (issue #16, session 8).

The receiver writes a body over 256 KiB to a temporary file as it arrives (hashing it on the way),
verifies and parses it through a read-only memory map whose pages are dropped as the parse passes
them, and hands the file to the writer as the payload's: the body is never held whole as bytes.
These tests hold that path to the in-memory one (same rows, same audit row, same 4xx answers), and
check the memory mechanism itself, relative to the body's size, so that they fail if it silently
stops working: the Python memory of a whole delivery through the ASGI app stays well under the
body's size, and the mapped pages resident during the cut parse stay near one release step.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import mmap
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest

from analytics.config import Config
from analytics.webhooks import server
from analytics.webhooks.providers import github
from analytics.webhooks.pruned_json import RELEASE_BYTES, parse_pruned
from analytics.webhooks.writer import Delivery, TableRows
from tests.receiver_tables import every_row
from tests.store_query import query
from tests.test_receiver_memory_pruned import TABLES, columns_of, deliveries, endpoint, store
from tests.webhook_senders import gh_push

T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
SECRET = "spool-secret"


def sha(n: int) -> str:
    return hashlib.sha1(str(n).encode()).hexdigest()


def wide_push(commits: int, files: int = 200) -> bytes:
    """A push whose bulk is what no provider reads (each commit's file lists), as in real large
    pushes: the cut parse keeps little, so what the receiver holds is the body if it holds it."""
    payload = gh_push("acme/spool", "refs/heads/main", "0" * 40,
                      [(sha(n), "2026-04-01T08:00:00Z", f"change {n}") for n in range(commits)])
    for n, item in enumerate(payload["commits"]):
        item["added"] = [f"src/module{n % 97}/subfolder/file_{j:04d}.py" for j in range(files)]
    return json.dumps(payload).encode()


def spool_of(body: bytes, tmp_path: Path) -> server.Spool:
    spool = server.Spool()
    for start in range(0, len(body), 65536):
        spool.write(body[start:start + 65536])
    spool.close()
    return spool


def test_spooled_deliveries_of_every_kind_store_the_same_as_the_in_memory_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    known = columns_of(tmp_path)
    sent = [(module, headers, json.dumps(payload, ensure_ascii=False).encode())
            for module, headers, payload in deliveries()]

    def made(module: ModuleType, headers: dict[str, str], body: bytes, n: int, spooled: bool) -> Delivery:
        head = headers | {"x-github-delivery": f"d{n}", "idempotency-key": f"d{n}"}
        if spooled:
            spool = spool_of(body, tmp_path)
            result = server.prepare_spooled(endpoint(module), head, spool, Config(), known, True, 0.0, T0)
            assert result.delivery is not None, result.message
            assert result.delivery.payload_file == spool.path  # the body's own file, not a copy
            assert result.delivery.body == b""
            assert result.delivery.body_sha256 == hashlib.sha256(body).hexdigest()
        else:
            result = server.prepare(endpoint(module), head, bytearray(body), Config(), known, True, 0.0, T0)
            assert result.delivery is not None, result.message
        return result.delivery

    spooled = [made(module, headers, body, n, True) for n, (module, headers, body) in enumerate(sent)]
    assert isinstance(spooled[0].rows["commits"], TableRows)
    in_memory = [made(module, headers, body, n, False) for n, (module, headers, body) in enumerate(sent)]
    outcomes = store(tmp_path / "spooled.ducklake", spooled), store(tmp_path / "memory.ducklake", in_memory)
    assert outcomes == (["stored"] * len(sent), ["stored"] * len(sent))
    assert not list(tmp_path.glob("gitops-dora-payload-*"))

    on_disk = every_row(tmp_path / "spooled.ducklake", TABLES)
    assert len(on_disk["commits"]) == 1200 - 1 + 900
    assert on_disk == every_row(tmp_path / "memory.ducklake", TABLES)
    audit = ("SELECT provider, delivery_id, event, body_sha256, payload::VARCHAR, rows_written"
             " FROM webhook_deliveries ORDER BY delivery_id")
    stored = query(tmp_path / "spooled.ducklake", audit)
    assert stored == query(tmp_path / "memory.ducklake", audit)
    assert [row[4] for row in stored] == [body.decode() for _, _, body in sent]


@pytest.mark.parametrize("body", [
    b'{"commits": [1 2]}' + b" " * server.LARGE_PAYLOAD,
    b'{"a": "\xff"}' + b" " * server.LARGE_PAYLOAD,
    b"[" * 300 + b"]" * 300 + b" " * server.LARGE_PAYLOAD,
    b'{"commits": [{"id": "\\ud800"}]}' + b" " * server.LARGE_PAYLOAD,
    b'"a string"' + b" " * server.LARGE_PAYLOAD,
])
def test_a_spooled_body_is_refused_with_the_in_memory_answer(body: bytes, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    head = {"x-github-event": "push", "x-github-delivery": "bad"}
    spool = spool_of(body, tmp_path)
    spooled = server.prepare_spooled(endpoint(github), head, spool, Config(), {}, True, 0.0, T0)
    in_memory = server.prepare(endpoint(github), head, bytearray(body), Config(), {}, True, 0.0, T0)
    assert spooled.delivery is None and in_memory.delivery is None
    assert (spooled.status, spooled.message) == (in_memory.status, in_memory.message)
    assert spooled.status in (400, 422)


def test_a_spooled_body_with_a_wrong_signature_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    body = wide_push(200)
    secrets = server.provider_secrets({"GITOPS_DORA_GITHUB_SECRET": SECRET})
    signed = next(e for e in secrets if e.name == "github")
    good = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    for signature, status in (("sha256=" + "0" * 64, 401), (good, 200)):
        head = {"x-github-event": "push", "x-github-delivery": "sig", "x-hub-signature-256": signature}
        spool = spool_of(body, tmp_path)
        result = server.prepare_spooled(signed, head, spool, Config(), columns_of(tmp_path), False, 0.0, T0)
        assert result.status == status, result.message
        spool.discard()


def test_a_form_encoded_spooled_body_takes_the_in_memory_way(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from urllib.parse import urlencode

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    text = wide_push(200).decode()
    body = urlencode({"payload": text}).encode()
    head = {"x-github-event": "push", "x-github-delivery": "form",
            "content-type": "application/x-www-form-urlencoded"}
    spool = spool_of(body, tmp_path)
    known = columns_of(tmp_path)
    result = server.prepare_spooled(endpoint(github), head, spool, Config(), known, True, 0.0, T0)
    assert result.delivery is not None, result.message
    assert result.delivery.payload_file is None and result.delivery.payload_json == text  # the field's text
    assert len(result.delivery.rows["commits"]) == 200


def mapped_resident_kib(path: str) -> int:
    """Resident KiB of this process's mappings of ``path`` (/proc/self/smaps)."""
    total, inside = 0, False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            first = line.split(maxsplit=1)[0]
            if "-" in first and not first.endswith(":"):
                inside = line.rstrip().endswith(path)
            elif inside and first == "Rss:":
                total += int(line.split()[1])
    return total


def test_the_cut_parse_of_a_mapped_body_holds_about_one_release_step_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    body = wide_push(1200)
    assert len(body) > 8 * RELEASE_BYTES
    spool = spool_of(body, tmp_path)
    seen: list[tuple[int, int]] = []
    with server._MappedBody(spool.path) as mapped:
        def release(upto: int) -> None:
            seen.append((upto, mapped_resident_kib(spool.path)))
            mapped.release(upto)

        parsed = parse_pruned(mapped.body, "commits", github.PRUNED_ARRAY[2], server.json_depth_ok,
                              server.MAX_JSON_DEPTH, release)
        assert parsed is not None and parsed[0] == {
            k: ([{c: v for c, v in item.items() if c in github.PRUNED_ARRAY[2]} for item in v]
                if k == "commits" else v) for k, v in orjson.loads(body).items()}
        before_release = mapped_resident_kib(spool.path)
        mapped.release(len(body))
        after_release = mapped_resident_kib(spool.path)
    spool.discard()
    assert [upto for upto, _ in seen] == sorted(upto for upto, _ in seen) and len(seen) >= 8
    # at each step, what is mapped in is the step just passed (plus read-ahead), never the body
    assert max(kib for _, kib in seen) * 1024 <= 2 * RELEASE_BYTES + 256 * 1024, seen
    assert before_release * 1024 < len(body) / 4 and after_release == 0


def test_a_large_delivery_through_the_app_never_holds_its_body_in_python_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole request through the ASGI app (the handler, ``prepare_spooled``, the writer's
    commit) with the body sent in 64 KiB chunks: Python's traced memory peaks well under the body,
    which the body alone (read into a buffer, or decoded) would exceed. The stored payload is the
    body byte for byte and the spool file is gone."""
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    body = wide_push(1500)
    limits = server.Limits(max_body=len(body) + 1024, max_buffered=2 * len(body))
    db = tmp_path / "store.ducklake"
    endpoints = server.provider_secrets({"GITOPS_DORA_GITHUB_SECRET": SECRET})
    app = server.create_app(db, Config(), endpoints=endpoints, limits=limits)
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"x-github-event", b"push"), (b"x-github-delivery", b"spooled-app"),
            (b"x-hub-signature-256", signature.encode())]

    async def post() -> tuple[int, dict[str, Any]]:
        view = memoryview(body)
        chunks = [(start, min(start + 65536, len(body))) for start in range(0, len(body), 65536)]
        answer: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            if chunks:
                start, stop = chunks.pop(0)
                return {"type": "http.request", "body": bytes(view[start:stop]), "more_body": bool(chunks)}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            answer.append(message)

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": "/webhooks/github", "raw_path": b"/webhooks/github",
                 "query_string": b"", "headers": head, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2),
                 "app": app}
        await app(scope, receive, send)  # type: ignore[arg-type]
        return answer[0]["status"], orjson.loads(answer[1]["body"])

    async def run() -> tuple[int, dict[str, Any], int]:
        writer = app.state.writer
        await asyncio.get_running_loop().run_in_executor(None, writer.start)
        try:
            tracemalloc.start()
            try:
                status, reply = await post()
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
        finally:
            await asyncio.get_running_loop().run_in_executor(None, writer.stop)
        return status, reply, peak

    status, reply, peak = asyncio.run(run())
    assert status == 200, reply
    assert reply["rows"] == 1500 + 1
    assert peak < len(body) / 2, f"Python memory peaked at {peak / len(body):.2f}x the body"
    assert query(db, "SELECT payload::VARCHAR, body_sha256 FROM webhook_deliveries") == [
        (body.decode(), hashlib.sha256(body).hexdigest())]
    assert query(db, "SELECT count(*) FROM commits") == [(1500,)]
    assert not list(tmp_path.glob("gitops-dora-payload-*"))


def post_push(app: Any, body: bytes, parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ASGI messages ``app`` sends for a push POST of ``body`` (its Content-Length) whose
    request messages are ``parts``: the app is called directly, so a test chooses what arrives."""
    sent: list[dict[str, Any]] = []

    async def run() -> None:
        async def receive() -> dict[str, Any]:
            return parts.pop(0)

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": "/webhooks/github", "raw_path": b"/webhooks/github",
                 "query_string": b"", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2), "app": app,
                 "headers": [(b"content-length", str(len(body)).encode()), (b"x-github-event", b"push")]}
        await app(scope, receive, send)

    asyncio.run(run())
    return sent


def test_a_body_cut_short_leaves_no_spool_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A large body whose sender goes away mid-way: answered 400, nothing stored, no file left."""
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    body = wide_push(300)
    app = server.create_app(tmp_path / "store.ducklake", Config(), insecure=True,
                            endpoints=server.provider_secrets({}), limits=server.Limits())
    sent = post_push(app, body, [{"type": "http.request", "body": body[:400_000], "more_body": True},
                                 {"type": "http.disconnect"}])
    assert sent[0]["status"] == 400
    assert not list(tmp_path.glob("gitops-dora-payload-*"))


def test_the_mapped_body_release_drops_resident_pages(tmp_path: Path) -> None:
    path = tmp_path / "body.json"
    path.write_bytes(b"x" * (4 * 1024 * 1024 + 123))
    with server._MappedBody(str(path)) as mapped:
        assert mapped.body[:].count(b"x") == len(mapped.body)  # every page touched
        assert mapped_resident_kib(str(path)) >= 4 * 1024
        mapped.release(2 * 1024 * 1024 + 5)
        assert 2 * 1024 <= mapped_resident_kib(str(path)) <= 2 * 1024 + 8
        mapped.release(len(mapped.body))
        assert mapped_resident_kib(str(path)) == 0
        assert mapped.body[-1:] == b"x" and mmap.PAGESIZE > 0  # still readable after the release


def test_a_full_temporary_folder_while_spooling_is_a_503_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Running out of space for the spool is the receiver's trouble, not the delivery's: 503 (the
    sender retries), one line, nothing stored, no file left."""
    import errno

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    body = wide_push(300)

    def full(self: server.Spool, chunk: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(server.Spool, "write", full)
    app = server.create_app(tmp_path / "store.ducklake", Config(), insecure=True,
                            endpoints=server.provider_secrets({}), limits=server.Limits())
    sent = post_push(app, body, [{"type": "http.request", "body": body, "more_body": False}])
    assert sent[0]["status"] == 503
    assert orjson.loads(sent[1]["body"])["message"] == (
        "receiver cannot keep the body now (No space left on device), retry later")
    assert not list(tmp_path.glob("gitops-dora-payload-*"))
