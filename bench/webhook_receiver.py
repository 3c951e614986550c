"""Webhook receiver throughput: the real server against one transaction per delivery, same run.

    .venv/bin/python bench/webhook_receiver.py [--deliveries 2000] [--concurrency 50] [--baseline 60]
    .venv/bin/python bench/webhook_receiver.py --breakdown   # where a delivery's CPU goes

Both sides store signed GitHub ``issues`` deliveries (incident issues) into a fresh store:

* baseline: what a receiver without batching does, in-process and with no HTTP at all: one
  transaction per delivery through the writer's own code (record the delivery unless its id is
  stored, upsert its rows, COMMIT) on one open read-write connection, for ``--baseline`` deliveries;
* receiver: ``gitops-dora serve-webhooks`` in its own process on 127.0.0.1, fed by ``--concurrency``
  keep-alive connections over HTTP (HMAC-signed); timed from the first request to the last 2xx,
  after a short warm-up. Every delivery must be answered 200 and stored exactly once. 2000 by
  default: 400 took under a second, too short a run to be steady on a shared machine.

It prints deliveries per second for both, ``receiver/baseline throughput ratio`` (above 1 means the
receiver is faster although it also pays HTTP, signature checks and JSON parsing), the latency of
the senders' requests and the writer's batches (``GET /``), and the receiver's CPU per delivery in
its event-loop thread and in its writer thread (from /proc, so the figures hold under other load).

``--breakdown`` measures the parts in this process, CPU time over many repetitions (so the
machine's other load changes them little): each check of ``prepare`` per delivery, the ASGI app
per request (through Starlette's middleware and router, and the handler alone), and each writer
statement per batch of 1 and of 50 deliveries.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics.config import Config  # noqa: E402
from analytics.store.connection import open_reader  # noqa: E402
from analytics.webhooks.providers import github  # noqa: E402
from analytics.webhooks.writer import Delivery, DeliveryWriter  # noqa: E402

SECRET = "bench-secret"
CLI = str(Path(sys.executable).with_name("gitops-dora"))


def payload(n: int) -> dict[str, object]:
    return {
        "action": "opened",
        "repository": {"full_name": "bench/app", "name": "app"},
        "issue": {
            "number": n,
            "title": f"Outage {n}",
            "state": "open",
            "labels": [{"name": "incident"}],
            "created_at": "2026-01-01T00:00:00Z",
            "html_url": f"https://github.com/bench/app/issues/{n}",
            "body": "root cause: abcdef1",
        },
    }


def baseline(db: Path, count: int) -> float:
    """Seconds for ``count`` deliveries, one transaction each, through the writer's own code."""
    config = Config()
    writer = DeliveryWriter(db, config)
    writer.open()
    try:
        started = time.perf_counter()
        for n in range(count):
            body = json.dumps(payload(n)).encode()
            data = json.loads(body)
            rows = github.to_rows({"x-github-event": "issues"}, data, config)
            delivery = Delivery("github", str(uuid.uuid4()), "issues", body, data, rows, github.finalize,
                                github.FINALIZE_AFTER)
            writer._commit([delivery])
        return time.perf_counter() - started
    finally:
        writer._close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def signed_headers(body: bytes) -> dict[str, str]:
    return {
        "X-GitHub-Event": "issues",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
        "Content-Type": "application/json",
    }


def start_receiver(db: Path, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [CLI, "--db", str(db), "serve-webhooks", "--port", str(port)],
        env={**os.environ, "GITOPS_DORA_GITHUB_SECRET": SECRET, **(env or {})},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the receiver did not start")


async def _sender(host: str, port: int, todo: list[bytes], results: list[tuple[int, float]]) -> None:
    """One keep-alive HTTP/1.1 connection posting bodies until ``todo`` is empty. A few lines of
    asyncio streams instead of an HTTP client library: the senders share the 2 cores with the
    receiver, so they should cost it as little CPU as possible (like wrk or hey would)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while todo:
            body = todo.pop()
            head = "".join(f"{k}: {v}\r\n" for k, v in signed_headers(body).items())
            started = time.perf_counter()
            writer.write(f"POST /webhooks/github HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n"
                         f"{head}\r\n".encode() + body)
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            results.append((status, time.perf_counter() - started))
    finally:
        writer.close()


def send(url: str, numbers: range, concurrency: int) -> tuple[float, list[float]]:
    """Wall seconds for all deliveries and each one's request latency (from writing the request to
    reading the whole answer); all must be 200."""
    host, port = url.removeprefix("http://").split(":")
    todo = [json.dumps(payload(n)).encode() for n in reversed(numbers)]
    count = len(todo)
    results: list[tuple[int, float]] = []

    async def run() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(_sender(host, int(port), todo, results) for _ in range(concurrency)))
        return time.perf_counter() - started

    elapsed = asyncio.run(run())
    codes = [code for code, _ in results]
    assert codes == [200] * count, f"not all stored: {sorted(set(codes))}"
    return elapsed, [latency for _, latency in results]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (its threads included)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds so far of each thread of a process (the main thread's id is the pid)."""
    found = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
            found[int(task)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return found


def receiver(db: Path, count: int, concurrency: int
             ) -> tuple[float, list[float], dict[str, Any], float, dict[str, float]]:
    """Wall seconds, request latencies, the writer's stats, the receiver's CPU seconds, and those of
    its event loop (the main thread) and of its busiest other thread (the writer)."""
    proc, url = start_receiver(db)
    try:
        send(url, range(100_000, 100_000 + concurrency), concurrency)  # warm-up: connections, first batches
        cpu_before, threads_before = cpu_seconds(proc.pid), thread_cpu(proc.pid)
        elapsed, latencies = send(url, range(count), concurrency)
        cpu, threads_after = cpu_seconds(proc.pid) - cpu_before, thread_cpu(proc.pid)
        used = {t: threads_after[t] - threads_before.get(t, 0.0) for t in threads_after}
        loop_cpu = used.pop(proc.pid, 0.0)
        threads = {"event loop": loop_cpu, "writer": max(used.values(), default=0.0)}
        writer = httpx.get(url + "/", timeout=10).json()["writer"]
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    con = open_reader(db, install_views=False)
    try:
        stored = con.execute(
            "SELECT count(*), count(DISTINCT id) FROM incidents WHERE CAST(source_ref AS INTEGER) < 100000"
        ).fetchall()[0]
        deliveries = con.execute(
            "SELECT count(*), count(DISTINCT delivery_id) FROM webhook_deliveries").fetchall()[0]
    finally:
        con.close()
    assert tuple(stored) == (count, count), f"{stored} incidents stored, {count} sent"
    assert tuple(deliveries) == (count + concurrency,) * 2, f"{deliveries} deliveries stored"
    return elapsed, latencies, writer, cpu, threads


class _StubWriter(DeliveryWriter):
    """Answers every delivery at once, stores nothing: the ASGI layers alone."""

    def start(self) -> None:
        pass

    def stop(self, timeout: float = 30.0) -> None:
        pass

    def submit(self, delivery: Delivery) -> Any:
        from analytics.webhooks.writer import _wake

        delivery.future.set_result("stored")
        _wake([delivery])  # as the writer does after a COMMIT
        return delivery.future


def _per_call(fn: Any, repeat: int) -> float:
    """CPU microseconds per call of ``fn`` (best of 3 rounds)."""
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for _ in range(repeat):
            fn()
        best = min(best, time.process_time() - started)
    return best / repeat * 1e6


def breakdown(tmp: Path) -> None:
    """Where a delivery's CPU goes, part by part (module docstring)."""
    import orjson

    from analytics.store.connection import WriteSession
    from analytics.webhooks import server

    config = Config()
    db = tmp / "breakdown.ducklake"
    writer = DeliveryWriter(db, config)
    writer.open()
    columns = writer.columns
    body = json.dumps(payload(7)).encode()
    headers = {k.lower(): v for k, v in signed_headers(body).items()}
    data = orjson.loads(body)
    rows = github.to_rows(headers, data, config)
    endpoint = server.Endpoint("github", github, SECRET)
    n = 3000
    print(f"per delivery (a {len(body)}-byte GitHub issues payload), CPU microseconds:")
    for name, fn in (
        ("HMAC-SHA256 verify", lambda: github.verify(headers, body, SECRET)),
        ("JSON parse (orjson)", lambda: orjson.loads(body)),
        ("nesting-depth walk (skipped when the body has <= 128 brackets)",
         lambda: server.json_depth_ok(data)),
        ("provider to_rows", lambda: github.to_rows(headers, data, config)),
        ("row checks (check_rows)", lambda: server.check_rows(rows, columns)),
        ("all of prepare() (the above, ids, Delivery)", lambda: server.prepare(
            endpoint, headers, body, config, columns, False, 0.0, server.datetime.now(server.UTC))),
    ):
        print(f"  {name:62s} {_per_call(fn, n):7.1f}")

    stub = _StubWriter(db, config)
    stub.columns = columns
    app = server.create_app(db, config, endpoints=[endpoint], writer=stub)
    handler = next(r.endpoint for r in app.routes if getattr(r, "path", None) == github.PATH)  # type: ignore[attr-defined]
    raw = [(k.encode(), v.encode()) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))

    def scope() -> dict[str, Any]:
        return {"type": "http", "method": "POST", "path": github.PATH, "raw_path": github.PATH.encode(),
                "root_path": "", "query_string": b"", "headers": raw, "http_version": "1.1",
                "scheme": "http", "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 5000)}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def sent(message: dict[str, Any]) -> None:
        pass

    async def direct(scope: Any, receive: Any, send: Any) -> None:
        """The handler without Starlette's middleware and router."""
        from starlette.requests import Request

        response = await handler(Request(scope, receive, send))
        await response(scope, receive, send)

    async def requests(asgi: Any, count: int) -> float:
        started = time.process_time()
        for _ in range(count):
            await asgi(scope(), receive, sent)
        return (time.process_time() - started) / count * 1e6

    async def layers() -> tuple[float, float]:
        await requests(app, 200)
        return (min([await requests(app, n) for _ in range(3)]),
                min([await requests(direct, n) for _ in range(3)]))

    through_starlette, alone = asyncio.run(layers())
    print("per request in the event loop, ASGI app only (no HTTP parsing, no sockets), CPU microseconds:")
    print(f"  {'Starlette app: middleware, router, handler, JSON answer':62s} {through_starlette:7.1f}")
    print(f"  {'the handler alone (its checks, prepare(), the JSON answer)':62s} {alone:7.1f}")

    class Timed:
        def __init__(self, con: Any) -> None:
            self.con, self.log = con, []  # type: ignore[var-annotated]

        def execute(self, sql: str, *args: Any) -> Any:
            started = time.process_time()
            result = self.con.execute(sql, *args)
            self.log.append((" ".join(sql.split()[:3]), (time.process_time() - started) * 1000))
            return result

        def __getattr__(self, name: str) -> Any:
            return getattr(self.con, name)

    assert writer._con is not None and writer._session is not None
    timed = Timed(writer._con)
    writer._con = timed  # type: ignore[assignment]
    writer._session = WriteSession(con=timed, location=writer._session.location,  # type: ignore[arg-type]
                                   source="webhook", target="receiver")
    number = 1000
    print("writer, per batch, CPU milliseconds (median of 7 batches on a store growing by them):")
    for size in (1, 50):
        runs: list[list[tuple[str, float]]] = []
        totals: list[float] = []
        for _ in range(7):
            batch = []
            for k in range(number, number + size):
                raw_body = json.dumps(payload(k)).encode()
                parsed = orjson.loads(raw_body)
                batch.append(Delivery("github", str(uuid.uuid4()), "issues", raw_body, parsed,
                                      github.to_rows(headers, parsed, config), github.finalize,
                                      github.FINALIZE_AFTER))
            number += size
            timed.log.clear()
            started = time.process_time()
            writer._commit(batch)
            totals.append((time.process_time() - started) * 1000)
            runs.append(list(timed.log))
        steps = " + ".join(f"{runs[0][i][0]} {statistics.median(r[i][1] for r in runs):.1f}"
                           for i in range(len(runs[0])))
        total = statistics.median(totals)
        print(f"  batch of {size:2d}: {steps}; all of _commit {total:.1f} ms"
              f" = {total / size:.2f} ms a delivery")
    writer._close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--baseline", type=int, default=60, help="deliveries for the baseline")
    parser.add_argument("--breakdown", action="store_true", help="only measure where a delivery's CPU goes")
    args = parser.parse_args()
    if args.breakdown:
        with tempfile.TemporaryDirectory() as tmp:
            print(f"1-minute load average {os.getloadavg()[0]:.1f}")
            breakdown(Path(tmp))
        return
    with tempfile.TemporaryDirectory() as tmp:
        base = baseline(Path(tmp) / "baseline.ducklake", args.baseline)
        served, latencies, writer, cpu, threads = receiver(Path(tmp) / "receiver.ducklake", args.deliveries,
                                                           args.concurrency)
    base_rate, served_rate = args.baseline / base, args.deliveries / served
    print(f"deliveries: {args.deliveries}, concurrency: {args.concurrency}, "
          f"1-minute load average {os.getloadavg()[0]:.1f}")
    print(f"baseline (one transaction per delivery, no HTTP, {args.baseline} deliveries): {base:.2f} s "
          f"({base_rate:.0f} deliveries/s)")
    print(f"receiver (HTTP, signed, batched writer): {served:.2f} s ({served_rate:.0f} deliveries/s)")
    print(f"request latency: p50 {statistics.median(latencies) * 1000:.0f} ms, "
          f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms")
    lat = writer["commit_latency_ms"]
    print(f"writer: {writer['batches']} batches (largest {writer['largest_batch']}), arrival to commit "
          f"p50 {lat['p50']} ms, p99 {lat['p99']} ms, {writer['conflicts_retried']} conflicts retried")
    print(f"receiver CPU: {cpu / args.deliveries * 1000:.2f} ms per delivery (HTTP, checks and writer), "
          f"i.e. {args.deliveries / cpu:.0f} deliveries/s per core busy; event loop "
          f"{threads['event loop'] / args.deliveries * 1000:.2f} ms, writer thread "
          f"{threads['writer'] / args.deliveries * 1000:.2f} ms")
    print(f"receiver/baseline throughput ratio = {served_rate / base_rate:.1f}  "
          "(target: >= 500 deliveries/s at concurrency 50)")


if __name__ == "__main__":
    main()
