"""A GitHub- and GitLab-shaped REST API on 127.0.0.1 that misbehaves on purpose, for
tests/test_codehost_hostile_server.py.

One repository (GitHub ``acme/app`` under ``/api/v3``, GitLab project 42 ``acme/app`` under
``/api/v4``) with one pull/merge request and otherwise empty lists, answered by a plain
``http.server`` (pytest-httpserver cannot stall, trickle or send an endless body). ``fault``
names what the list whose path ends with ``target`` does instead of answering; every fault that
would keep the code before the fixes busy for ever is bounded here (a stall ends after
``STALL_SECONDS``, an endless body after ``ENDLESS_BYTES``, a page loop after ``LOOP_HITS``
requests), so such a test fails on that code instead of never finishing.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

STALL_SECONDS = 8.0
ENDLESS_BYTES = 48 * 1024 * 1024
LOOP_HITS = 200
TOKEN = "hostile-token-4f9e2a7c1b"  # no known token shape: only registration can hide it


def _github_pull(base: str) -> dict[str, Any]:
    url = f"{base}/api/v3/repos/acme/app/pulls/1"
    return {
        "number": 1, "id": 1001, "title": "Fix", "user": {"login": "ada", "id": 1}, "state": "closed",
        "created_at": "2026-01-05T10:00:00Z", "updated_at": "2026-01-05T12:00:00Z",
        "merged_at": "2026-01-05T12:00:00Z", "closed_at": "2026-01-05T12:00:00Z",
        "merge_commit_sha": "a1" * 20, "base": {"ref": "main"}, "head": {"ref": "fix"}, "labels": [],
        "html_url": "https://github.example/acme/app/pull/1", "url": url,
    }


def _gitlab_mr() -> dict[str, Any]:
    return {
        "iid": 1, "id": 9001, "project_id": 42, "title": "Fix", "author": {"username": "ada"},
        "state": "merged", "created_at": "2026-01-05T10:00:00.000Z", "updated_at": "2026-01-05T12:00:00.000Z",
        "merged_at": "2026-01-05T12:00:00.000Z", "closed_at": None, "merge_commit_sha": "a1" * 20,
        "target_branch": "main", "source_branch": "fix", "labels": [],
        "web_url": "https://gitlab.example/acme/app/-/merge_requests/1",
    }


class HostileAPI:
    """``with HostileAPI("github", fault="stall", target="/issues") as api: api.base``"""

    def __init__(self, host: str, *, fault: str | None = None, target: str = "/issues",
                 pull: dict[str, Any] | None = None) -> None:
        self.host = host
        self.fault = fault
        self.target = target
        self.pull = pull
        self.hits = 0                     # requests the fault answered
        self.sent = 0                     # body bytes written by the endless faults
        self.requests: list[str] = []
        self.closing = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def base(self) -> str:
        return self.origin + ("/api/v3" if self.host == "github" else "")

    def __enter__(self) -> HostileAPI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()

    def issue(self) -> dict[str, Any]:
        """A plain issue (not an incident)."""
        times = {"created_at": "2026-01-06T10:00:00Z", "updated_at": "2026-01-06T11:00:00Z",
                 "closed_at": None}
        if self.host == "github":
            return {"number": 5, "id": 505, "title": "Typo", "labels": [], "state": "open", "body": None,
                    "html_url": "https://github.example/acme/app/issues/5", **times}
        return {"iid": 5, "id": 505, "title": "Typo", "labels": [], "state": "opened", "description": None,
                "web_url": "https://gitlab.example/acme/app/-/issues/5", **times}

    # --- what a well-behaved server answers -------------------------------------------------
    def answer(self, path: str) -> Any:
        if self.host == "github":
            if path == "/api/v3/repos/acme/app":
                return {"id": 7, "name": "app", "full_name": "acme/app", "default_branch": "main",
                        "url": f"{self.origin}/api/v3/repos/acme/app",
                        "html_url": "https://github.example/acme/app"}
            if path.endswith("/pulls"):
                return [self.pull if self.pull is not None else _github_pull(self.origin)]
            return []
        if path in ("/api/v4/projects/acme/app", "/api/v4/projects/42"):
            return {"id": 42, "path_with_namespace": "acme/app", "default_branch": "main",
                    "web_url": "https://gitlab.example/acme/app"}
        if path.endswith("/merge_requests"):
            return [self.pull if self.pull is not None else _gitlab_mr()]
        return []

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                api.requests.append(self.path)
                path = unquote(urlsplit(self.path).path)
                if api.fault and path.endswith(api.target):
                    api.hits += 1
                    getattr(self, "fault_" + api.fault.replace("-", "_"))(parse_qs(urlsplit(self.path).query))
                    return
                self.json(200, api.answer(path))

            # --- helpers ---
            def json(self, status: int, body: Any, headers: dict[str, str] | None = None,
                     reason: str | None = None) -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status, reason)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def stall(self) -> None:
                api.closing.wait(STALL_SECONDS)
                self.close_connection = True

            def endless(self) -> None:
                chunk = b'{"number": 1, "title": "' + b"x" * 65536 + b'"},'
                try:
                    self.wfile.write(b"[")
                    while api.sent < ENDLESS_BYTES and not api.closing.is_set():
                        self.wfile.write(chunk)
                        api.sent += len(chunk)
                except OSError:
                    pass
                self.close_connection = True

            # --- faults ---
            def fault_stall(self, query: dict[str, list[str]]) -> None:
                self.stall()  # accepted, read, never answered

            def fault_headers_stall(self, query: dict[str, list[str]]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "100000")
                self.end_headers()
                self.wfile.write(b"[")
                self.wfile.flush()
                self.stall()

            def fault_trickle(self, query: dict[str, list[str]]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()  # no length: the body ends when the connection does
                try:
                    self.wfile.write(b"[")
                    end = time.monotonic() + STALL_SECONDS
                    while time.monotonic() < end and not api.closing.is_set():
                        self.wfile.write(b" ")
                        self.wfile.flush()
                        api.sent += 1
                        time.sleep(0.2)
                    self.wfile.write(b"]")
                except OSError:
                    pass
                self.close_connection = True

            def fault_endless(self, query: dict[str, list[str]]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.endless()

            def fault_huge(self, query: dict[str, list[str]]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(10**12))
                self.end_headers()
                self.endless()

            def fault_loop(self, query: dict[str, list[str]]) -> None:
                """Page 1 says the next page is 2, page 2 says it is 1 again (GitLab: a keyset
                cursor and ``X-Next-Page`` that come back round); after LOOP_HITS requests the
                list ends, so the code before the fix finishes (and is seen to have looped)."""
                page = (query.get("page") or ["1"])[0]
                following = "1" if page == "2" else "2"
                url = f"{api.origin}{urlsplit(self.path).path}?per_page=100&page={following}"
                headers = {} if api.hits > LOOP_HITS else {"Link": f'<{url}>; rel="next"',
                                                           "X-Page": page, "X-Next-Page": following}
                self.json(200, [api.issue()], headers)  # (an empty page would end the list)

            def fault_retry_after_1(self, query: dict[str, list[str]]) -> None:
                self.json(429, {"message": "slow down"}, {"Retry-After": "1"})

            def fault_retry_after_3600(self, query: dict[str, list[str]]) -> None:
                status = 403 if api.host == "github" else 429
                self.json(status, {"message": "You have exceeded a secondary rate limit"},
                          {"Retry-After": "3600"})

            def fault_reset_far(self, query: dict[str, list[str]]) -> None:
                status = 403 if api.host == "github" else 429
                reset = str(int(time.time()) + 10 * 86400)
                self.json(status, {"message": "API rate limit exceeded"},
                          {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset,
                           "RateLimit-Remaining": "0", "RateLimit-Reset": reset})

            def fault_server_error(self, query: dict[str, list[str]]) -> None:
                self.json(503, {"message": "unavailable"})

            def fault_malformed(self, query: dict[str, list[str]]) -> None:
                self.json(200, b'[{"number": 1, "title": "unterminated')

            def fault_html(self, query: dict[str, list[str]]) -> None:
                self.json(200, b"<html>\n<body>\nproxy login\n</body>\n</html>\n")

            def fault_dict(self, query: dict[str, list[str]]) -> None:
                self.json(200, {"message": "not a list", "items": [1, 2]})

            def fault_echo(self, query: dict[str, list[str]]) -> None:
                auth = self.headers.get("Authorization") or self.headers.get("PRIVATE-TOKEN") or ""
                body = {"message": f"bad request\nsent: {auth}\nline three", "token": TOKEN}
                self.json(422, body, reason=f"Unprocessable {TOKEN}")

        return Handler
