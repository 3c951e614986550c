"""A real receiver process on loopback and senders that sign deliveries the way GitHub/GitLab do.

GitHub signs the raw body with HMAC-SHA256 of the webhook secret (``X-Hub-Signature-256:
sha256=<hex>``), names the event in ``X-GitHub-Event`` and gives each delivery a GUID in
``X-GitHub-Delivery``; GitLab sends the secret token verbatim in ``X-Gitlab-Token``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.child_env import child_env

CLI = str(Path(sys.executable).with_name("gitops-dora"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Receiver:
    url: str
    process: subprocess.Popen[bytes]

    def alive(self) -> bool:
        return self.process.poll() is None and httpx.get(self.url + "/", timeout=5).status_code == 200


def wait_until_serving(url: str, proc: subprocess.Popen[bytes], seconds: float) -> None:
    """Poll ``GET /`` every 0.1 s until it answers 200, through one client: ``httpx.get`` makes a
    client per call, some 30 ms of CPU each (its SSL context), i.e. 0.5-1.5 CPU-s of the test
    process for a receiver that takes 2-5 s to start on a loaded machine."""
    deadline = time.monotonic() + seconds
    with httpx.Client(timeout=1) as client:
        while True:
            if proc.poll() is not None:
                out, err = proc.communicate()
                text = err.decode() if isinstance(err, bytes) else str(err)
                raise RuntimeError(f"receiver exited {proc.returncode}: {text}")
            try:
                if client.get(url + "/").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("receiver did not start")
            time.sleep(0.1)


def _start(db: Path, env: Mapping[str, str], args: tuple[str, ...], config: Path | None
           ) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [CLI, "--db", str(db)]
    if config is not None:
        cmd += ["--config", str(config)]
    cmd += ["serve-webhooks", "--port", str(port), *args]
    proc = subprocess.Popen(cmd, env={**child_env(), **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return proc, f"http://127.0.0.1:{port}"


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to each, then each waited for (20 s, then killed): they shut down together."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def receiver(
    db: Path, env: Mapping[str, str], *, args: tuple[str, ...] = (), config: Path | None = None
) -> Iterator[Receiver]:
    """``gitops-dora serve-webhooks`` in its own process; waits until GET / answers."""
    with receivers([db], env, args=args, config=config) as (running,):
        yield running


@contextmanager
def receivers(
    dbs: list[Path], env: Mapping[str, str], *, args: tuple[str, ...] = (), config: Path | None = None
) -> Iterator[list[Receiver]]:
    """A receiver per store, with the same settings, started together (each start is some 0.8 CPU-s
    of imports and store opening: a test that needs two waits for the slower, not for the sum)."""
    started: list[tuple[subprocess.Popen[bytes], str]] = []
    try:
        for db in dbs:
            started.append(_start(db, env, args, config))
        for proc, url in started:
            wait_until_serving(url, proc, 30)
        yield [Receiver(url=url, process=proc) for proc, url in started]
    finally:
        _stop([proc for proc, _ in started])


def github_headers(
    body: bytes, event: str, secret: str | None, delivery: str | None = None, legacy_sha1: bool = False
) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/test",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "1",
    }
    if secret is not None:
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers["X-Hub-Signature-256"] = f"sha256={digest}"
        if legacy_sha1:
            del headers["X-Hub-Signature-256"]
            headers["X-Hub-Signature"] = "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    return headers


def post_github(
    client: httpx.Client,
    url: str,
    event: str,
    payload: dict[str, Any],
    secret: str | None,
    delivery: str | None = None,
    **kw: Any,
) -> httpx.Response:
    body = json.dumps(payload).encode()
    return client.post(
        url + "/webhooks/github", content=body, headers=github_headers(body, event, secret, delivery, **kw)
    )


def post_gitlab(
    client: httpx.Client, url: str, event: str, payload: dict[str, Any], token: str | None
) -> httpx.Response:
    headers = {"Content-Type": "application/json", "X-Gitlab-Event": event}
    if token is not None:
        headers["X-Gitlab-Token"] = token
    return client.post(url + "/webhooks/gitlab", content=json.dumps(payload).encode(), headers=headers)


# --- GitHub payload builders (field names as in GitHub's webhook docs; trimmed to what matters) ---


def gh_repository(full_name: str) -> dict[str, Any]:
    owner, name = full_name.split("/")
    return {
        "id": abs(hash(full_name)) % 10**8,
        "name": name,
        "full_name": full_name,
        "owner": {"login": owner, "type": "Organization"},
        "html_url": f"https://github.com/{full_name}",
        "default_branch": "main",
    }


def gh_push(full_name: str, ref: str, before: str, commits: list[tuple[str, str, str]]) -> dict[str, Any]:
    """``commits`` are (sha, ISO timestamp, message), oldest first, as GitHub lists them."""
    items = [
        {
            "id": sha,
            "tree_id": "0" * 40,
            "distinct": True,
            "message": msg,
            "timestamp": ts,
            "url": f"https://github.com/{full_name}/commit/{sha}",
            "author": {"name": "Ada", "email": "ada@example.com", "username": "ada"},
            "committer": {"name": "Ada", "email": "ada@example.com", "username": "ada"},
            "added": [],
            "removed": [],
            "modified": ["README.md"],
        }
        for sha, ts, msg in commits
    ]
    return {
        "ref": ref,
        "before": before,
        "after": commits[-1][0],
        "created": False,
        "deleted": False,
        "forced": False,
        "base_ref": None,
        "compare": "",
        "commits": items,
        "head_commit": items[-1],
        "repository": gh_repository(full_name),
        "pusher": {"name": "ada", "email": "ada@example.com"},
        "sender": {"login": "ada"},
    }


def gh_deployment_status(
    full_name: str, deployment_id: int, sha: str, state: str, at: str, environment: str | None = "production"
) -> dict[str, Any]:
    deployment = {
        "url": f"https://api.github.com/repos/{full_name}/deployments/{deployment_id}",
        "id": deployment_id,
        "sha": sha,
        "ref": "main",
        "task": "deploy",
        "payload": {},
        "original_environment": environment,
        "environment": environment,
        "creator": {"login": "deployer"},
        "created_at": at,
        "updated_at": at,
    }
    status = {
        "url": f"{deployment['url']}/statuses/{deployment_id * 10}",
        "id": deployment_id * 10,
        "state": state,
        "creator": {"login": "deployer"},
        "description": "",
        "environment": environment,
        "target_url": "",
        "created_at": at,
        "updated_at": at,
        "deployment_url": deployment["url"],
    }
    if environment is None:
        del deployment["environment"], status["environment"]
    return {
        "action": "created",
        "deployment_status": status,
        "deployment": deployment,
        "repository": gh_repository(full_name),
        "sender": {"login": "deployer"},
    }


def gh_issue(
    full_name: str,
    number: int,
    labels: list[str],
    created: str,
    closed: str | None = None,
    body: str = "",
    action: str = "opened",
) -> dict[str, Any]:
    issue = {
        "url": f"https://api.github.com/repos/{full_name}/issues/{number}",
        "html_url": f"https://github.com/{full_name}/issues/{number}",
        "id": number * 1000,
        "number": number,
        "title": f"Outage {number}",
        "user": {"login": "oncall"},
        "labels": [{"id": i, "name": n, "color": "d73a4a", "default": False} for i, n in enumerate(labels)],
        "state": "closed" if closed else "open",
        "locked": False,
        "assignees": [],
        "comments": 0,
        "created_at": created,
        "updated_at": closed or created,
        "closed_at": closed,
        "body": body,
    }
    return {
        "action": action,
        "issue": issue,
        "repository": gh_repository(full_name),
        "sender": {"login": "oncall"},
    }
