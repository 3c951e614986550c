"""How much one large delivery grows the webhook receiver, as a multiple of its body.

    .venv/bin/python bench/webhook_body_memory.py [--commits 30000]

Starts ``gitops-dora serve-webhooks`` on 127.0.0.1 with the body limit raised, stores one small
signed GitHub ``push`` delivery (so the store, the writer thread and the imports are warm), then
one push of ``--commits`` commits (30,000 make a 20 MB body; GitHub caps payloads at 25 MB). It
prints the receiver's resident memory before (VmRSS) and its peak after (VmHWM), both read from
/proc, and the growth divided by the body's size: the baseline is the body itself, so 1.0 would
mean the receiver held nothing but one copy of it. Issue #16 asks for about 2.

A body over 256 KiB takes the receiver's large-body path (``analytics/webhooks/server.py``:
one buffer; a push parsed commit by commit, each cut down to the keys the provider reads; the rows
held as Arrow tables; the payload spooled to a file the writer maps and stores as the batch's last
statement); docs/performance.md, "Webhook receiver memory per delivery" and "Receiver memory,
session 7", says where the rest goes.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import sys
import tempfile
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from webhook_receiver import SECRET, start_receiver  # noqa: E402


def push(commits: int) -> bytes:
    """A push payload shaped like GitHub's, with ``commits`` commits of ten added and ten modified
    files each (what makes real large pushes large)."""
    listed = [{
        "id": hashlib.sha1(str(i).encode()).hexdigest(),
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


def post(url: str, body: bytes) -> int:
    headers = {
        "X-GitHub-Event": "push", "X-GitHub-Delivery": str(uuid.uuid4()), "Content-Type": "application/json",
        "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
    }
    return httpx.post(url + "/webhooks/github", content=body, headers=headers, timeout=300).status_code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=30_000)
    args = parser.parse_args()
    body = push(args.commits)
    size = len(body) / 2**20
    with tempfile.TemporaryDirectory() as folder:
        proc, url = start_receiver(Path(folder) / "store.ducklake",
                                   {"GITOPS_DORA_WEBHOOK_MAX_BODY": f"{int(size) + 8}M"})
        try:
            assert post(url, push(10)) == 200
            before = memory_mib(proc.pid)["VmRSS"]
            status = post(url, body)
            assert status == 200, f"the large delivery was answered {status}"
            peak = memory_mib(proc.pid)["VmHWM"]
        finally:
            proc.kill()
            proc.wait()
    print(f"body: {size:.1f} MiB ({args.commits} commits)")
    print(f"receiver resident before: {before:.0f} MiB; peak after: {peak:.0f} MiB")
    print(f"growth / body size: {(peak - before) / size:.1f}x (baseline: the body, 1.0x)")


if __name__ == "__main__":
    main()
