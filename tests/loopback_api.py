"""What the loopback GitHub and GitLab APIs share: one catch-all handler on a pytest-httpserver,
a request log, injected faults in front of a path, JSON answers with the host's standard headers,
and the page arithmetic of ``?page=N`` lists (each host writes its own pagination headers)."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

PAGE = 2  # small pages so every list needs pagination


@dataclass
class Fault:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Page:
    number: int
    last: int
    args: dict[str, str]  # the query without ``page``
    items: list[dict[str, Any]]


@dataclass
class LoopbackAPI:
    server: HTTPServer
    faults: dict[str, list[Fault]] = field(default_factory=dict, kw_only=True)
    log: list[tuple[str, str]] = field(default_factory=list, kw_only=True)  # (path, query string)
    # (path, time.monotonic() when it arrived, the status of a fault answered, else None)
    arrivals: list[tuple[str, float, int | None]] = field(default_factory=list, kw_only=True)

    HEADERS: ClassVar[dict[str, str]] = {"Content-Type": "application/json"}

    def __post_init__(self) -> None:
        self.server.expect_request(re.compile(r"^/.*")).respond_with_handler(self._handle)

    @property
    def base(self) -> str:
        return self.server.url_for("").rstrip("/")

    def fail(self, path_suffix: str, *faults: Fault) -> None:
        """The next requests whose path ends with ``path_suffix`` get these answers first."""
        self.faults.setdefault(path_suffix, []).extend(faults)

    def _handle(self, request: Request) -> Response:
        self.log.append((request.path, request.query_string.decode()))
        arrived = time.monotonic()
        for suffix, queue in self.faults.items():
            if queue and request.path.endswith(suffix):
                fault = queue.pop(0)
                self.arrivals.append((request.path, arrived, fault.status))
                return self._json(fault.body, fault.status, fault.headers)
        self.arrivals.append((request.path, arrived, None))
        return self._serve(request)

    def waits_after_faults(self, path_suffix: str) -> list[float]:
        """Seconds between each faulted request to a path ending with ``path_suffix`` and the next
        request to the same path: how long the client waited before trying again."""
        waits = []
        for i, (path, arrived, status) in enumerate(self.arrivals):
            if status is None or not path.endswith(path_suffix):
                continue
            later = [t for p, t, _ in self.arrivals[i + 1:] if p == path]
            if later:
                waits.append(later[0] - arrived)
        return waits

    def _serve(self, request: Request) -> Response:
        raise NotImplementedError

    def _slice(self, request: Request, items: list[dict[str, Any]]) -> Page:
        number = int(request.args.get("page", "1"))
        return Page(
            number=number,
            last=max(1, -(-len(items) // PAGE)),
            args={k: v for k, v in request.args.items() if k != "page"},
            items=items[(number - 1) * PAGE : number * PAGE],
        )

    def _json(self, body: Any, status: int, headers: dict[str, str] | None = None) -> Response:
        return Response(json.dumps(body), status=status, headers={**self.HEADERS, **(headers or {})})
