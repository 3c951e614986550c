"""The webhook receiver: a Starlette app with one POST endpoint per provider module.

Order of checks for a delivery: size (413) -> signature (401) -> JSON (400) -> rows (400) ->
queued to the single writer thread (see ``writer.py``) -> 200 only after the commit. A refused
delivery never reaches the writer, so it leaves no trace in the store.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from analytics.config import Config
from analytics.webhooks.providers import provider_modules
from analytics.webhooks.writer import Delivery, DeliveryWriter

MAX_BODY_BYTES = 25 * 1024 * 1024


@dataclass
class Endpoint:
    name: str
    module: ModuleType
    secret: str | None


def provider_secrets(env: Mapping[str, str] | None = None) -> list[Endpoint]:
    """Each provider with the secret from its SECRET_ENV (None when unset or empty)."""
    env = os.environ if env is None else env
    endpoints = []
    for module in provider_modules():
        name = module.__name__.rsplit(".", 1)[-1]
        secret = (env.get(module.SECRET_ENV) or "").strip() or None
        endpoints.append(Endpoint(name=name, module=module, secret=secret))
    return endpoints


def _reply(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"status": status, "message": message, **extra}, status_code=status)


async def _read_body(request: Request) -> bytes | None:
    """The body, or None once it passes the limit (the rest is not read into memory)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _json_text(headers: Mapping[str, str], body: bytes) -> bytes | str:
    """GitHub can also send ``application/x-www-form-urlencoded`` with the JSON in ``payload``."""
    if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        from urllib.parse import parse_qs

        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True)
        return fields.get("payload", [""])[0]
    return body


def _event(endpoint: Endpoint, headers: Mapping[str, str], payload: dict[str, Any]) -> str:
    module = endpoint.module
    if hasattr(module, "event_name"):
        return str(module.event_name(headers, payload))
    return str(payload.get("object_kind") or payload.get("reason") or payload.get("kind") or "")


def _handler(endpoint: Endpoint, writer: DeliveryWriter, config: Config, insecure: bool) -> Any:
    module = endpoint.module

    async def receive(request: Request) -> JSONResponse:
        body = await _read_body(request)
        if body is None:
            return _reply(413, f"body larger than {MAX_BODY_BYTES} bytes")
        headers = request.headers
        if endpoint.secret is not None:
            if not module.verify(headers, body, endpoint.secret):
                return _reply(401, "missing or invalid signature")
        elif not insecure:
            return _reply(401, f"no secret configured for {endpoint.name} (set {module.SECRET_ENV})")
        try:
            payload = json.loads(_json_text(headers, body))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return _reply(400, f"malformed JSON: {exc}")
        if not isinstance(payload, dict):
            return _reply(400, "the payload must be a JSON object")
        try:
            rows = module.to_rows(headers, payload, config)
        except Exception as exc:  # noqa: BLE001 - one unusable payload must not take the server down
            return _reply(400, f"unusable payload: {type(exc).__name__}: {exc}")
        delivery = Delivery(
            provider=endpoint.name, delivery_id=module.delivery_id(headers, body),
            event=_event(endpoint, headers, payload), body=body, payload=payload, rows=rows,
            finalize=getattr(module, "finalize", None),
            finalize_after=frozenset(module.FINALIZE_AFTER) if hasattr(module, "FINALIZE_AFTER") else None,
        )
        try:
            outcome = await asyncio.wrap_future(writer.submit(delivery))
        except Exception as exc:  # noqa: BLE001 - store unavailable: the sender should retry
            return _reply(503, f"not stored: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
        return _reply(200, outcome, delivery=delivery.delivery_id,
                      rows=sum(len(r) for r in rows.values()))

    return receive


def create_app(
    db_path: Path, config: Config, *, insecure: bool = False, endpoints: list[Endpoint] | None = None
) -> Starlette:
    endpoints = provider_secrets() if endpoints is None else endpoints
    writer = DeliveryWriter(Path(db_path), config)

    async def status(request: Request) -> JSONResponse:
        return JSONResponse({
            "service": "gitops-dora webhook receiver",
            "status": "ok",
            "endpoints": {
                e.module.PATH: ("verified" if e.secret else "insecure" if insecure else "refusing: no secret")
                for e in endpoints
            },
            "stored": writer.stored,
            "queued": writer.pending,
        })

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        writer.start()
        try:
            yield
        finally:
            await asyncio.get_running_loop().run_in_executor(None, writer.stop)

    routes = [Route("/", status, methods=["GET"])]
    routes += [
        Route(e.module.PATH, _handler(e, writer, config, insecure), methods=["POST"]) for e in endpoints
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.writer = writer
    return app


def serve(db_path: Path, config: Config, host: str, port: int, insecure: bool) -> None:
    import uvicorn

    from analytics.errors import UserError
    from analytics.store.connection import open_writer

    endpoints = provider_secrets()
    if not any(e.secret for e in endpoints) and not insecure:
        names = ", ".join(e.module.SECRET_ENV for e in endpoints)
        raise UserError(f"no webhook secret is set ({names}); set one, or pass --insecure to accept unsigned")
    with open_writer(db_path, source="webhook", target="startup"):
        pass  # apply migrations before the first delivery, so readers see the tables at once
    for e in endpoints:
        mode = "verified" if e.secret else ("UNSIGNED (--insecure)" if insecure else "refused: no secret")
        print(f"  POST http://{host}:{port}{e.module.PATH}  {mode}", file=sys.stderr)
    print(f"receiving webhooks on http://{host}:{port} into {db_path}", file=sys.stderr, flush=True)
    app = create_app(db_path, config, insecure=insecure, endpoints=endpoints)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=10)
