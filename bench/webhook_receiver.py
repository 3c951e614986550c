"""Webhook receiver throughput: the real server against one-transaction-per-delivery, same run.

    .venv/bin/python bench/webhook_receiver.py [--deliveries 400] [--concurrency 50]

Both sides store the same signed GitHub ``issues`` deliveries (incident issues) into a fresh
DuckDB file:

* baseline: what a receiver without the batching writer would do, in-process and with no HTTP
  at all: for each delivery, one ``open_writer`` session (lock, open, transaction, upsert the rows,
  record the delivery, commit, close, publish the snapshot);
* receiver: ``gitops-dora serve-webhooks`` in its own process on 127.0.0.1, fed by ``--concurrency``
  client threads over HTTP (HMAC-signed); timed from the first request to the last 2xx.

It prints ``receiver/baseline time ratio`` (below 1 means the receiver is faster although it also
pays HTTP, signature checks and JSON parsing) and deliveries per second for both.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics.config import Config  # noqa: E402
from analytics.store.connection import open_reader, open_writer  # noqa: E402
from analytics.webhooks.providers import github  # noqa: E402
from analytics.webhooks.writer import Delivery, DeliveryWriter  # noqa: E402

SECRET = "bench-secret"


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
    config = Config()
    writer = DeliveryWriter(db, config)  # only for its row-writing code, not its thread
    started = time.perf_counter()
    for n in range(count):
        body = json.dumps(payload(n)).encode()
        data = json.loads(body)
        rows = github.to_rows({"x-github-event": "issues"}, data, config)
        delivery = Delivery(
            "github", str(uuid.uuid4()), "issues", body, data, rows, github.finalize, github.FINALIZE_AFTER
        )
        with open_writer(db, source="webhook", target="baseline") as session:
            writer._write(session, [delivery])
    return time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def receiver(db: Path, count: int, concurrency: int) -> float:
    port = free_port()
    cli = str(Path(sys.executable).with_name("gitops-dora"))
    env = {**os.environ, "GITOPS_DORA_GITHUB_SECRET": SECRET}
    proc = subprocess.Popen(
        [cli, "--db", str(db), "serve-webhooks", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        bodies = [json.dumps(payload(n)).encode() for n in range(count)]
        with httpx.Client(timeout=120, limits=httpx.Limits(max_connections=concurrency)) as client:

            def post(body: bytes) -> int:
                sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                return client.post(
                    url + "/webhooks/github",
                    content=body,
                    headers={
                        "X-GitHub-Event": "issues",
                        "X-GitHub-Delivery": str(uuid.uuid4()),
                        "X-Hub-Signature-256": sig,
                        "Content-Type": "application/json",
                    },
                ).status_code

            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                codes = list(pool.map(post, bodies))
            elapsed = time.perf_counter() - started
        assert codes == [200] * count, f"not all stored: {sorted(set(codes))}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    con = open_reader(db, install_views=False)
    stored = con.execute("SELECT count(*) FROM incidents").fetchall()[0][0]
    con.close()
    assert stored == count, f"{stored} incidents stored, {count} sent"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = baseline(Path(tmp) / "baseline.duckdb", args.deliveries)
        served = receiver(Path(tmp) / "receiver.duckdb", args.deliveries, args.concurrency)
    print(f"deliveries: {args.deliveries}, concurrency: {args.concurrency}")
    print(
        f"baseline (one write session per delivery, no HTTP): {base:.2f} s "
        f"({args.deliveries / base:.0f} deliveries/s)"
    )
    print(
        f"receiver (HTTP, signed, batched writer):            {served:.2f} s "
        f"({args.deliveries / served:.0f} deliveries/s)"
    )
    print(f"receiver/baseline time ratio = {served / base:.2f}")


if __name__ == "__main__":
    main()
