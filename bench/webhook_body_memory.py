"""How much one large delivery grows the webhook receiver, as a multiple of its body.

    .venv/bin/python bench/webhook_body_memory.py [--commits 30000]

Starts ``gitops-dora serve-webhooks`` on 127.0.0.1 with the body limit raised, stores one small
signed GitHub ``push`` delivery (so the store, the writer thread and the imports are warm), then
one push of ``--commits`` commits (30,000 make a 20 MB body; GitHub caps payloads at 25 MB). It
prints the receiver's resident memory before (VmRSS) and its peak after (VmHWM), both read from
/proc, and the growth divided by the body's size: the baseline is the body itself, so 1.0 would
mean the receiver held nothing but one copy of it. Issue #16 asks for about 2. ``--at-once N``
posts N such pushes (different commits) at the same time and divides by the N bodies' size.

A body over 256 KiB takes the receiver's large-body path (``analytics/webhooks/server.py``:
streamed to a spool file as it arrives and read through a memory map; a push parsed commit by
commit, each cut down to the keys the provider reads; the rows held as Arrow tables; the spool file
stored by the writer as the batch's last statement); docs/performance.md, "Webhook receiver memory
per delivery" and "Receiver memory, sessions 7 and 8", says where the rest goes.

    .venv/bin/python bench/webhook_body_memory.py --steps

measures the same delivery in this process instead, step by step: the peak (VmHWM, reset through
/proc/self/clear_refs between steps) and the resident memory after each of: the body received,
``prepare`` (signature, parse, rows), each MERGE, the payload's INSERT (since session 9: the
payload's data file, written by the receiver and added to the store) and the COMMIT, over the
resident memory before the body. With a tree of the code before session 8 on PYTHONPATH (no
``prepare_spooled``), the body is handed to ``prepare`` as the old handler did, in one buffer.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
STEPS_SECRET = "bench-steps-secret"


def push(commits: int, variant: int = 0) -> bytes:
    """A push payload shaped like GitHub's, with ``commits`` commits of ten added and ten modified
    files each (what makes real large pushes large); ``variant`` gives other commits' ids."""
    listed = [{
        "id": hashlib.sha1(str(i if not variant else f"{variant}:{i}").encode()).hexdigest(),
        "message": f"change {i}\n\nwhat it does and why, at some length " * 3,
        "timestamp": "2026-01-01T00:00:00Z",
        "author": {"name": "A Developer", "email": "a@example.com", "username": "adev"},
        "added": [f"src/dir{i % 50}/file{j}.py" for j in range(10)],
        "removed": [],
        "modified": [f"src/module{j}.py" for j in range(10)],
        "url": f"https://github.com/bench/app/commit/{i}",
    } for i in range(commits)]
    return json.dumps({
        "ref": "refs/heads/main", "before": "0" * 40, "after": listed[-1]["id"],
        "repository": {"full_name": "bench/app", "name": "app"},
        "commits": listed, "head_commit": listed[-1], "pusher": {"name": "adev"},
    }).encode()


def memory_mib(pid: int) -> dict[str, float]:
    found = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0]) / 1024
    return found


def post(url: str, body: bytes, secret: str) -> int:
    headers = {
        "X-GitHub-Event": "push", "X-GitHub-Delivery": str(uuid.uuid4()), "Content-Type": "application/json",
        "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
    }
    return httpx.post(url + "/webhooks/github", content=body, headers=headers, timeout=300).status_code


def steps(commits: int) -> None:
    """One large delivery in this process, the memory of each step (see the module's docstring).
    The code measured is the one on PYTHONPATH (imported here, not by webhook_receiver.py, which
    puts this checkout first)."""
    import gc
    import time
    from datetime import UTC, datetime

    from starlette.datastructures import Headers

    from analytics.config import Config
    from analytics.webhooks import server
    from analytics.webhooks import writer as writer_module

    base = [0.0]

    def probe(name: str) -> None:
        now = memory_mib(os.getpid())
        peak, held = now["VmHWM"] - base[0], now["VmRSS"] - base[0]
        print(f"  {name:34s} peak +{peak:6.1f} MiB   held after +{held:6.1f}", flush=True)
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")

    def signed(body: bytes) -> Headers:
        digest = hmac.new(STEPS_SECRET.encode(), body, hashlib.sha256).hexdigest()
        return Headers({"x-github-event": "push", "x-github-delivery": str(uuid.uuid4()),
                        "content-type": "application/json", "x-hub-signature-256": f"sha256={digest}"})

    with tempfile.TemporaryDirectory() as folder:
        config = Config()
        writer = writer_module.DeliveryWriter(Path(folder) / "store.ducklake", config)
        writer.open()
        endpoint = next(e for e in server.provider_secrets({"GITOPS_DORA_GITHUB_SECRET": STEPS_SECRET})
                        if e.name == "github")
        small = push(10)
        warm = server.prepare(endpoint, signed(small), small, config, writer.columns, False, 0.0,
                              datetime.now(UTC)).delivery
        assert warm is not None
        writer._apply([warm])
        insert, upsert = writer_module._insert_spooled, writer_module.DeliveryWriter._upsert

        def probed_insert(con: Any, row: tuple[Any, ...]) -> int:
            probe("(MERGEs and finalize)")
            done = insert(con, row)
            probe("payload INSERT")
            return done

        def probed_upsert(self: Any, session: Any, table: str, parts: Any) -> Any:
            probe("(before)" if table == "commits" else f"(before MERGE {table})")
            done = upsert(self, session, table, parts)
            probe(f"MERGE {table}")
            return done

        writer_module._insert_spooled = probed_insert
        added = getattr(writer_module.DeliveryWriter, "_add_spooled", None)
        if added is not None:  # session 9: the payload's row as a data file the writer writes itself

            def probed_add(self: Any, con: Any, row: tuple[Any, ...]) -> bool:
                probe("(MERGEs and finalize)")
                done = bool(added(self, con, row))
                probe("payload data file, added" if done else "payload (not added)")
                return done

            writer_module.DeliveryWriter._add_spooled = probed_add  # type: ignore[method-assign]
        writer_module.DeliveryWriter._upsert = probed_upsert  # type: ignore[method-assign]
        body = push(commits)
        size = len(body) / 2**20
        head = signed(body)
        spooled = hasattr(server, "prepare_spooled")
        if spooled:  # as the handler does: the body written to the spool as it arrives
            spool = server.Spool()
            for start in range(0, len(body), 65536):
                spool.write(body[start:start + 65536])
            spool.close()
        else:  # the handler before: one buffer of the declared size
            buffer = bytearray(len(body))
            buffer[:] = body
        del body
        gc.collect()
        server.release_freed_memory()
        base[0] = memory_mib(os.getpid())["VmRSS"] - (0 if spooled else size)
        with open("/proc/self/clear_refs", "w") as clear:  # the peak of making the body is not the receiver's
            clear.write("5")
        probe("body received")
        if spooled:
            prepared = server.prepare_spooled(endpoint, head, spool, config, writer.columns, False,
                                              time.monotonic(), datetime.now(UTC))
        else:
            prepared = server.prepare(endpoint, head, buffer, config, writer.columns, False,
                                      time.monotonic(), datetime.now(UTC))
            del buffer
        assert prepared.delivery is not None, prepared.message
        probe("prepare (signature, parse, rows)")
        writer._apply([prepared.delivery])
        probe("COMMIT")
        assert prepared.delivery.future.result() == "stored"
    print(f"body: {size:.1f} MiB ({commits} commits); {'spooled' if spooled else 'buffered'} body")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=30_000)
    parser.add_argument("--steps", action="store_true", help="each step's memory, in this process")
    parser.add_argument("--at-once", type=int, default=1,
                        help="post this many large deliveries (each its own push) at the same time")
    args = parser.parse_args()
    if args.steps:
        steps(args.commits)
        return
    from concurrent.futures import ThreadPoolExecutor

    from webhook_receiver import SECRET, start_receiver

    bodies = [push(args.commits, n) for n in range(args.at_once)]
    size = len(bodies[0]) / 2**20
    with tempfile.TemporaryDirectory() as folder:
        proc, url = start_receiver(Path(folder) / "store.ducklake",
                                   {"GITOPS_DORA_WEBHOOK_MAX_BODY": f"{int(size) + 8}M",
                                    "GITOPS_DORA_WEBHOOK_MAX_BUFFERED": f"{(int(size) + 8) * args.at_once}M"})
        try:
            assert post(url, push(10), SECRET) == 200
            before = memory_mib(proc.pid)["VmRSS"]
            with ThreadPoolExecutor(args.at_once) as pool:
                statuses = list(pool.map(lambda body: post(url, body, SECRET), bodies))
            assert statuses == [200] * args.at_once, f"the large deliveries were answered {statuses}"
            peak = memory_mib(proc.pid)["VmHWM"]
        finally:
            proc.kill()
            proc.wait()
    at_once = f", {args.at_once} at once (sizes below: all of them)" if args.at_once > 1 else ""
    print(f"body: {size:.1f} MiB ({args.commits} commits){at_once}")
    print(f"receiver resident before: {before:.0f} MiB; peak after: {peak:.0f} MiB")
    print(f"growth / body size: {(peak - before) / (size * args.at_once):.1f}x (baseline: the body, 1.0x)")


if __name__ == "__main__":
    main()
