"""A loopback HTTP server that behaves like the Kubernetes API for the endpoints gitops-dora uses.

No real API server can be installed here, so this emulates, on 127.0.0.1:

* ``GET /apis/{group}/{version}[/namespaces/{ns}]/{plural}`` and ``GET /api/v1[/namespaces/{ns}]/events``:
  lists with ``limit`` and opaque ``continue`` tokens; ``metadata.resourceVersion`` of the list;
* the same with ``watch=true``: a chunked stream of newline-delimited JSON watch events
  (ADDED / MODIFIED / DELETED / BOOKMARK) from ``resourceVersion``, honouring ``timeoutSeconds``
  and ``allowWatchBookmarks``; an ``ERROR`` event with a 410 Status when the version was compacted;
* fault injection: ``compact()`` (next watches from an old version get 410 Gone) and
  ``drop_after(plural, n)`` (the connection is cut mid-stream after n more events, without the final chunk)
  and ``outage(plural, missed)`` (cut, changes, then compaction: the reconnect gets 410 Gone).

``kubeconfig(path)`` writes a kubeconfig pointing at the server, so tests drive the real
kubernetes client exactly as in production.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

KINDS = {
    "applications": "Application",
    "kustomizations": "Kustomization",
    "helmreleases": "HelmRelease",
    "events": "Event",
}


class FakeKube:
    def __init__(self) -> None:
        self.rv = 1000
        self.compacted_below = 0
        self.objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {p: {} for p in KINDS}
        self.log: list[tuple[int, str, str, dict[str, Any]]] = []  # (rv, plural, type, object)
        self.cond = threading.Condition()
        self.drops: dict[str, int] = {}
        self.cuts: set[str] = set()
        self.requests: list[str] = []
        self.watch_count: dict[str, int] = {p: 0 for p in KINDS}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # -- lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> FakeKube:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self.cond:
            self.cond.notify_all()
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def kubeconfig(self, path: Path, context: str = "emulated") -> Path:
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": context,
                    "clusters": [{"name": "emulated", "cluster": {"server": self.url}}],
                    "users": [{"name": "tester", "user": {"token": "not-a-real-token"}}],
                    "contexts": [{"name": context, "context": {"cluster": "emulated", "user": "tester"}}],
                }
            )
        )
        return path

    # -- state changes ------------------------------------------------------------------------
    def put(self, plural: str, obj: dict[str, Any]) -> int:
        """Create or update an object; returns its new resourceVersion."""
        with self.cond:
            return self._put(plural, obj)

    def _put(self, plural: str, obj: dict[str, Any]) -> int:
        if True:
            self.rv += 1
            meta = obj.setdefault("metadata", {})
            meta["resourceVersion"] = str(self.rv)
            key = (str(meta.get("namespace", "")), str(meta["name"]))
            kind = "MODIFIED" if key in self.objects[plural] else "ADDED"
            self.objects[plural][key] = json.loads(json.dumps(obj))
            self.log.append((self.rv, plural, kind, self.objects[plural][key]))
            self.cond.notify_all()
            return self.rv

    def compact(self) -> None:
        """Forget history: watches from any version before now get 410 Gone."""
        with self.cond:
            self._compact()

    def _compact(self) -> None:
        self.compacted_below = self.rv + 1
        self.rv += 1
        self.cond.notify_all()

    def outage(self, plural: str, missed: list[dict[str, Any]]) -> None:
        """In one step: cut the open watch of ``plural`` before it sends anything more, store
        ``missed`` objects, and compact, so the reconnect gets 410 and only a relist finds them."""
        with self.cond:
            self.cuts.add(plural)
            for obj in missed:
                self._put(plural, obj)
            self._compact()

    def drop_after(self, plural: str, events: int = 1) -> None:
        """The open (or next) watch of ``plural`` is cut right after sending ``events`` more events."""
        self.drops[plural] = events

    # -- HTTP ---------------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        kube = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
                return

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                url = urlparse(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                kube.requests.append(self.path)
                parts = [p for p in url.path.split("/") if p]
                plural = parts[-1] if parts else ""
                namespace = parts[parts.index("namespaces") + 1] if "namespaces" in parts else None
                if plural not in KINDS:
                    return self._json(
                        404,
                        {
                            "kind": "Status",
                            "apiVersion": "v1",
                            "status": "Failure",
                            "reason": "NotFound",
                            "code": 404,
                            "message": "not found",
                        },
                    )
                if query.get("watch") in ("true", "1"):
                    return self._watch(plural, namespace, query)
                return self._list(plural, namespace, query)

            def _json(self, code: int, doc: dict[str, Any]) -> None:
                body = json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _list(self, plural: str, namespace: str | None, query: dict[str, str]) -> None:
                with kube.cond:
                    items = [
                        o
                        for (ns, _n), o in sorted(kube.objects[plural].items())
                        if namespace is None or ns == namespace
                    ]
                    version = str(kube.rv)
                start = 0
                if query.get("continue"):
                    token = json.loads(base64.urlsafe_b64decode(query["continue"]))
                    start, version = int(token["start"]), token["rv"]
                limit = int(query.get("limit") or 0) or len(items) or 1
                page = items[start : start + limit]
                more = start + limit < len(items)
                meta: dict[str, Any] = {"resourceVersion": version}
                if more:
                    meta["continue"] = base64.urlsafe_b64encode(
                        json.dumps({"start": start + limit, "rv": version}).encode()
                    ).decode()
                    meta["remainingItemCount"] = len(items) - start - limit
                group = "v1" if plural == "events" else None
                self._json(
                    200,
                    {
                        "apiVersion": group or "list",
                        "kind": f"{KINDS[plural]}List",
                        "items": page,
                        "metadata": meta,
                    },
                )

            def _chunk(self, doc: dict[str, Any]) -> None:
                data = (json.dumps(doc) + "\n").encode()
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _watch(self, plural: str, namespace: str | None, query: dict[str, str]) -> None:
                since = int(query.get("resourceVersion") or 0)
                timeout = float(query.get("timeoutSeconds") or 30)
                bookmarks = query.get("allowWatchBookmarks") == "true"
                kube.watch_count[plural] += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                if since < kube.compacted_below:
                    self._chunk(
                        {
                            "type": "ERROR",
                            "object": {
                                "kind": "Status",
                                "apiVersion": "v1",
                                "metadata": {},
                                "status": "Failure",
                                "message": f"too old resource version: {since} ({kube.compacted_below})",
                                "reason": "Expired",
                                "code": 410,
                            },
                        }
                    )
                    self.wfile.write(b"0\r\n\r\n")
                    return
                sent = 0
                deadline = time.monotonic() + timeout
                last_bookmark = 0.0
                try:
                    while time.monotonic() < deadline:
                        with kube.cond:
                            if plural in kube.cuts:
                                kube.cuts.discard(plural)
                                self.connection.shutdown(2)
                                return
                            pending = [
                                e
                                for e in kube.log
                                if e[0] > since
                                and e[1] == plural
                                and (namespace is None or e[3]["metadata"].get("namespace") == namespace)
                            ]
                            # Every event of this collection up to `snapshot` is in `pending`
                            # (taken before waiting, which releases the lock).
                            snapshot = kube.rv if not pending else pending[-1][0]
                            if not pending:
                                kube.cond.wait(timeout=0.1)
                        for rv, _p, kind, obj in pending:
                            self._chunk({"type": kind, "object": obj})
                            since = rv
                            sent += 1
                            if kube.drops.get(plural, 0) > 0:
                                kube.drops[plural] -= 1
                                if kube.drops[plural] == 0:
                                    del kube.drops[plural]
                                    self.connection.shutdown(2)  # cut: no terminating chunk
                                    return
                        if bookmarks and time.monotonic() - last_bookmark > 0.3:
                            since = max(since, snapshot)
                            self._chunk(
                                {
                                    "type": "BOOKMARK",
                                    "object": {
                                        "kind": KINDS[plural],
                                        "apiVersion": "v1",
                                        "metadata": {"resourceVersion": str(since)},
                                    },
                                }
                            )
                            last_bookmark = time.monotonic()
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError, OSError):
                    return

        return Handler
