"""Webhook latency while ``collect git`` ingests a large repository into the same store, same run.

    .venv/bin/python bench/webhook_during_collect.py [--commits 100000] [--deliveries 200] [--rate 10]

Builds (once, cached in bench/.work/, by ``bench/git_ingest.py``) a synthetic repository of
``--commits`` commits, starts ``gitops-dora serve-webhooks`` on a fresh store and sends signed GitHub
``issues`` deliveries at ``--rate`` per second from ``--senders`` connections, twice:

* baseline: ``--deliveries`` deliveries with nothing else writing;
* during: ``collect git REPO --deploy-tags ...`` started on the same store, then ``--deliveries``
  deliveries while it runs (the collection's transaction is open the whole time; with the SQLite
  catalog its commit may meet the receiver's commits and be run again, which it says on stderr).

It prints each phase's request latency (p50, p99, max; from writing the request to reading the 200),
``during/baseline p99 ratio``, how long the collection took and how often it ran again, and checks
that every delivery was stored exactly once and the collection's commits are all there.
Target: p99 under 1 s during the collection.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent))

from git_ingest import DEPLOY_TAGS, WORK, build_repo  # noqa: E402
from webhook_receiver import CLI, _sender, payload, start_receiver  # noqa: E402

from analytics.store.connection import open_reader  # noqa: E402


def paced(url: str, numbers: range, rate: float, senders: int) -> tuple[list[float], list[int]]:
    """Send one delivery every 1/rate seconds (open loop: a slow answer does not delay the next
    send unless all ``senders`` are busy); latencies in seconds and status codes."""
    host, port = url.removeprefix("http://").split(":")
    bodies = [json.dumps(payload(n)).encode() for n in numbers]

    async def run() -> list[tuple[int, float]]:
        results: list[tuple[int, float]] = []
        gate = asyncio.Semaphore(senders)
        start = time.perf_counter() + 0.05

        async def one(k: int, body: bytes) -> None:
            await asyncio.sleep(max(0.0, start + k / rate - time.perf_counter()))
            async with gate:
                await _sender(host, int(port), [body], results)

        await asyncio.gather(*(one(k, body) for k, body in enumerate(bodies)))
        return results

    results = asyncio.run(run())
    return [latency for _, latency in results], [code for code, _ in results]


def summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {"p50": pick(0.5), "p99": pick(0.99), "max": ordered[-1] * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=100_000)
    parser.add_argument("--deliveries", type=int, default=200)
    parser.add_argument("--rate", type=float, default=10.0, help="deliveries per second")
    parser.add_argument("--senders", type=int, default=10, help="connections sending at once")
    opts = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    repo = build_repo(opts.commits)
    with tempfile.TemporaryDirectory(prefix="webhook-collect-bench-", dir=WORK) as tmp:
        db = Path(tmp) / "store.ducklake"
        proc, url = start_receiver(db)
        try:
            base, base_codes = paced(url, range(opts.deliveries), opts.rate, opts.senders)
            env = {k: v for k, v in os.environ.items() if k != "GITOPS_DORA_PAUSE_BEFORE_COMMIT"}
            started = time.perf_counter()
            collect = subprocess.Popen(
                [CLI, "--db", str(db), "collect", "git", str(repo), "--deploy-tags", DEPLOY_TAGS],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            )
            lines: list[str] = []
            reader = threading.Thread(target=lambda: lines.extend(collect.stderr or []), daemon=True)
            reader.start()
            time.sleep(1.0)  # the collection is reading history and writing its transaction
            numbers = range(10_000, 10_000 + opts.deliveries)
            during, during_codes = paced(url, numbers, opts.rate, opts.senders)
            sent_by = time.perf_counter() - started
            still_running = collect.poll() is None
            collect.wait()
            collected_in = time.perf_counter() - started
            reader.join(10)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        con = open_reader(db, install_views=False)
        try:
            stored = con.execute(
                "SELECT count(*), count(DISTINCT delivery_id) FROM webhook_deliveries").fetchall()[0]
            incidents = con.execute("SELECT count(*), count(DISTINCT id) FROM incidents").fetchall()[0]
            commits = con.execute("SELECT count(*) FROM commits").fetchall()[0][0]
        finally:
            con.close()
    total = 2 * opts.deliveries
    assert base_codes + during_codes == [200] * (2 * opts.deliveries), "a delivery was not answered 200"
    assert tuple(stored) == (total, total) and tuple(incidents) == (total, total), (stored, incidents)
    assert collect.returncode == 0, "".join(lines[-5:])
    reruns = sum("running it again" in line for line in lines)
    b, d = summary(base), summary(during)
    print(f"repository: {repo} ({opts.commits} commits); {opts.deliveries} deliveries per phase at "
          f"{opts.rate:g}/s from {opts.senders} connections; 1-minute load average {os.getloadavg()[0]:.1f}")
    for name, got in (("baseline (nothing else writing)", b), ("during collect git", d)):
        print(f"{name + ':':33s} p50 {got['p50']:.0f} ms, p99 {got['p99']:.0f} ms, max {got['max']:.0f} ms")
    print("target: p99 < 1000 ms during the collection")
    print(f"collect git: {collected_in:.1f} s, exit 0, {commits} commits stored, ran again {reruns} time(s); "
          f"the deliveries were all answered after {sent_by:.1f} s"
          + ("" if still_running else " (NOTE: the collection had finished before the last delivery)"))
    print(f"during/baseline p99 ratio = {d['p99'] / b['p99']:.2f}")


if __name__ == "__main__":
    main()
