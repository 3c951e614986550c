"""The webhook receiver: a Starlette app with one POST endpoint per provider module, on uvicorn.

Order of checks for a delivery, cheapest first, so that what is refused costs little:

1. requests in flight over ``max_requests`` -> 503 (``Retry-After``), body not read;
2. ``Content-Length`` over ``max_body`` -> 413, body not read;
3. ``precheck`` of the provider (signature header missing or malformed; a header token wrong)
   -> 401, body not read. A GitHub or Flux HMAC covers the body, so a request with a well-formed
   signature header is read (up to ``max_body``) before ``verify`` can say no: for those the size
   limit and the buffered-bytes budget are what bound memory;
4. the body, within ``read_timeout`` of the request's first byte (else 408) and within the
   ``max_buffered`` budget shared by all requests being read (else 503); a chunked body is cut at
   ``max_body`` (413);
5. ``verify`` (401) -> JSON (400 when malformed) -> payloads that can never be stored (422: nested
   deeper than MAX_JSON_DEPTH, an unpaired surrogate, an unreadable time, a value out of its
   column's range, anything ``to_rows`` raises) -> queued to the writer (``writer.py``);
6. 200 only after the delivery's batch COMMITted; 422 when the store refused the delivery's values;
   503 when the store was unavailable (the sender retries; nothing was stored).

4xx means "this request will never be stored, do not retry" and 5xx "retry later": a poison
delivery is never answered 5xx (senders retry those forever) nor 500 with a traceback. A refused
delivery never reaches the store, so a redelivery is refused again the same way.

Connections are guarded below the app (``GuardedProtocol``): beyond ``max_connections`` a new
connection is closed at once; a request head over MAX_HEAD_BYTES gets 431; a connection that has
not sent a whole request head within ``read_timeout`` gets 408 and is closed (idle and slow-header
sockets); an idle keep-alive
connection is closed after ``keep_alive`` seconds (uvicorn's ``timeout_keep_alive``). Running out
of file descriptors is logged once a minute in one line, not as a traceback per accept.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import hashlib
import logging
import mmap
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from analytics.config import Config
from analytics.errors import UserError
from analytics.listening import listening_socket
from analytics.store.location import StoreRef
from analytics.webhooks.providers import provider_modules
from analytics.webhooks.writer import (
    LARGE_PAYLOAD,
    Column,
    Delivery,
    DeliveryWriter,
    Finalize,
    Rejected,
    Rows,
    StoreUnavailable,
    check_rows,
    first_line,
    made_rows,
    table_rows,
)

MiB = 1024 * 1024
MAX_JSON_DEPTH = 128  # GitHub/GitLab payloads nest under 10 levels, Argo CD Applications under 30
MAX_DELIVERY_ID = 256
OFFLOAD_BYTES = 256 * 1024  # bodies above this are verified and parsed in a worker thread
FD_RESERVE = 128  # file descriptors kept for the store (catalog, data files) and the process
MAX_HEAD_BYTES = 64 * 1024  # a request line and headers (a code host sends 1-2 KiB): 431 beyond
REQUEST_STARTED = "gitops_dora.request_started"  # scope key: loop time of the request's first byte


@dataclass(frozen=True)
class Limits:
    """The receiver's limits; each has an environment variable (``ENV`` below)."""

    max_body: int = 5 * MiB  # GitHub caps payloads at 25 MB; real ones are well under 1 MB
    max_buffered: int = 64 * MiB  # bytes of bodies being read at once, over all requests
    max_requests: int = 128  # requests being handled at once (503 beyond)
    max_connections: int = 1000  # open connections (closed at once beyond)
    read_timeout: float = 10.0  # seconds from a request's first byte to its last (408)
    keep_alive: int = 5  # seconds an idle keep-alive connection stays open
    backlog: int = 2048  # connections the kernel queues before the receiver accepts them


ENV = {
    "max_body": "GITOPS_DORA_WEBHOOK_MAX_BODY",
    "max_buffered": "GITOPS_DORA_WEBHOOK_MAX_BUFFERED",
    "max_requests": "GITOPS_DORA_WEBHOOK_MAX_REQUESTS",
    "max_connections": "GITOPS_DORA_WEBHOOK_MAX_CONNECTIONS",
    "read_timeout": "GITOPS_DORA_WEBHOOK_READ_TIMEOUT",
    "keep_alive": "GITOPS_DORA_WEBHOOK_KEEP_ALIVE",
    "backlog": "GITOPS_DORA_WEBHOOK_BACKLOG",
}
_SIZE = re.compile(r"^(\d+)\s*([kmg]?)i?b?$", re.IGNORECASE)
_SIZE_FIELDS = ("max_body", "max_buffered")


def limits_from_env(env: Mapping[str, str] | None = None) -> Limits:
    """Limits with each set variable applied; sizes take ``k``/``M``/``G`` (binary) suffixes."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for name, variable in ENV.items():
        text = (env.get(variable) or "").strip()
        if not text:
            continue
        try:
            if name in _SIZE_FIELDS:
                match = _SIZE.match(text)
                if not match:
                    raise ValueError(text)
                value: float = int(match.group(1)) * 1024 ** " kmg".index(match.group(2).lower() or " ")
            elif name == "read_timeout":
                value = float(text)
            else:
                value = int(text)
        except ValueError:
            unit = " of bytes (k, M, G suffixes allowed)" if name in _SIZE_FIELDS else ""
            raise UserError(f"${variable}={text!r}: give a positive number{unit}") from None
        if value <= 0:
            raise UserError(f"${variable}={text!r}: give a positive number")
        values[name] = value
    return dataclasses.replace(Limits(), **values)


class RateLimitedLog:
    """One stderr line per kind of event and interval, with how many were left out meanwhile."""

    def __init__(self, every: float = 60.0) -> None:
        self.every = every
        self._seen: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> tuple[bool, int]:
        now = time.monotonic()
        with self._lock:
            last, skipped = self._seen.get(key, (None, 0))
            if last is None or now - last >= self.every:
                self._seen[key] = (now, 0)
                return True, skipped
            self._seen[key] = (last, skipped + 1)
            return False, 0

    def __call__(self, key: str, message: str) -> None:
        allowed, skipped = self.allow(key)
        if allowed:
            more = f" (and {skipped} more like it in the last {self.every:.0f} s)" if skipped else ""
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            print(f"{stamp} serve-webhooks: {message}{more}", file=sys.stderr, flush=True)


class _LogFilter(logging.Filter):
    """uvicorn's own warnings ("Invalid HTTP request received." per bad request) at most once a minute."""

    def __init__(self, log: RateLimitedLog) -> None:
        super().__init__()
        self.log = log

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and record.exc_info:
            return self.log.allow(f"uvicorn-error:{record.msg}")[0]
        return record.levelno >= logging.ERROR or self.log.allow(f"uvicorn:{record.msg}")[0]


@dataclass
class Endpoint:
    name: str
    module: ModuleType
    secret: str | None

    def __post_init__(self) -> None:
        # looked up once here rather than for every delivery
        self.finalize: Finalize | None = getattr(self.module, "finalize", None)
        after = getattr(self.module, "FINALIZE_AFTER", None)
        self.finalize_after: frozenset[str] | None = None if after is None else frozenset(after)


def provider_secrets(env: Mapping[str, str] | None = None) -> list[Endpoint]:
    """Each provider with the secret from its SECRET_ENV (None when unset or empty)."""
    env = os.environ if env is None else env
    endpoints = []
    for module in provider_modules():
        name = module.__name__.rsplit(".", 1)[-1]
        secret = (env.get(module.SECRET_ENV) or "").strip() or None
        endpoints.append(Endpoint(name=name, module=module, secret=secret))
    return endpoints


def _reply(status: int, message: str, *, close: bool = False, **extra: Any) -> JSONResponse:
    headers = {"Connection": "close"} if close else {}
    if status in (503, 408):
        headers["Retry-After"] = "1" if status == 503 else "0"
    return JSONResponse({"status": status, "message": message, **extra}, status_code=status, headers=headers)


class _Budget:
    """Bytes of request bodies held at once; used from the event loop only."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0

    def take(self, size: int) -> bool:
        if self.used + size > self.limit:
            return False
        self.used += size
        return True

    def give(self, size: int) -> None:
        self.used -= size


def json_depth_ok(payload: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether no object or array nests deeper than ``limit`` (iterative: no recursion limit)."""
    stack: list[tuple[Any, int]] = [(payload, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values() if isinstance(v, dict | list))
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value if isinstance(v, dict | list))
    return True


def _parse_json(text: bytes | bytearray | mmap.mmap | str) -> Any:
    """Strict JSON (orjson: RFC 8259, UTF-8, no NaN). Raises Rejected for JSON that is well formed
    but can never be stored, ValueError for malformed JSON."""
    import orjson

    try:
        if isinstance(text, mmap.mmap):
            with memoryview(text) as view:
                return orjson.loads(view)
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        reason = str(exc)
        if "surrogate" in reason and not isinstance(text, str) and not _is_utf8(text):
            # orjson says "surrogates not allowed" for any byte that is not UTF-8 (a UTF-16 body)
            raise ValueError("the body is not UTF-8 text (JSON must be UTF-8, RFC 8259)") from None
        if "surrogate" in reason:
            raise Rejected(
                f"a string holds an unpaired UTF-16 surrogate, which UTF-8 cannot store ({reason})"
            ) from None
        if "depth" in reason or "recursion" in reason:
            raise Rejected(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
        raise ValueError(reason) from None


def _is_utf8(data: bytes | bytearray | mmap.mmap) -> bool:
    """Whether ``data`` is UTF-8, checked a megabyte at a time (only on the error path, so a large
    spooled body is not decoded whole)."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    piece = 1 << 20
    try:
        with memoryview(data) as view:
            for start in range(0, len(view), piece):
                decoder.decode(view[start:start + piece])
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _json_text(headers: Mapping[str, str], body: bytes | bytearray) -> bytes | bytearray | str:
    """GitHub can also send ``application/x-www-form-urlencoded`` with the JSON in ``payload``."""
    if _is_form(headers):
        from urllib.parse import parse_qs

        fields = parse_qs(body.decode("utf-8", errors="strict"), keep_blank_values=True)
        return fields.get("payload", [""])[0]
    return body


def _is_form(headers: Mapping[str, str]) -> bool:
    return headers.get("content-type", "").startswith("application/x-www-form-urlencoded")


def _pruned_payload(
    module: ModuleType, headers: Mapping[str, str], text: bytes | bytearray | mmap.mmap,
    release: Callable[[int], None] | None = None,
) -> Any:
    """A large body of the event a provider names in ``PRUNED_ARRAY`` (a push), parsed with that
    array's items cut down to the keys the provider reads (``pruned_json.py``): the Python objects
    of one item at a time instead of the whole body's, about five times its size. None (parse the
    whole body) for a small or form-encoded body, a provider without ``PRUNED_ARRAY``, a body the
    scan cannot vouch for (malformed, not an object, nested too deep: the whole parse answers it),
    or one that was cut but is not of the named event (its provider may read what was cut)."""
    spec = getattr(module, "PRUNED_ARRAY", None)
    if spec is None or len(text) < LARGE_PAYLOAD:
        return None
    from analytics.webhooks.pruned_json import parse_pruned

    event, array, keep = spec
    parsed = parse_pruned(text, array, keep, json_depth_ok, MAX_JSON_DEPTH, release)
    if parsed is None:
        return None
    payload, cut = parsed
    if cut and _event(module, headers, payload) != event:
        return None
    return payload


def _rows_in_one_pass(
    module: ModuleType, headers: Mapping[str, str], payload: dict[str, Any], config: Config,
    again: Callable[[], Any],
) -> tuple[Any, dict[str, Any]]:
    """The provider's rows of a cut payload (a large push), each item of the cut array let go of
    as soon as the provider's loop has passed it (``_OnePass``), so its row can take the item's
    memory: a 30,000-commit push's cut items (~27 MiB) and its rows (~20) were whole at the same
    time, the peak of ``prepare`` (+47 MiB at the end of to_rows, +28 this way). A provider that
    reads the array any other way than one loop, front to back, has its rows made again from the
    body parsed again (``again``: the same cut parse), so the rows are the same whichever way it
    reads; the pushes of GitHub and GitLab read it in one loop. Returns the rows and the payload
    they came from."""
    array = module.PRUNED_ARRAY[1]
    items = payload.get(array)
    if type(items) is not list:
        return module.to_rows(headers, payload, config), payload
    passing = payload[array] = _OnePass(items)
    del items
    try:
        rows = module.to_rows(headers, payload, config)
    except Exception:
        if not passing.misread:
            raise
        rows = None  # made from items already let go of: made again below
    if not passing.misread:
        return rows, payload
    fresh = again()
    if fresh is None:  # pragma: no cover - the same body was cut the first time
        raise Rejected("the payload could not be read again")
    return module.to_rows(headers, fresh, config), fresh


class _OnePass(list[Any]):
    """A list whose one loop lets go of each item once it has been passed (the slot is set to
    None), for ``_rows_in_one_pass``. Anything else done with it after the loop has begun (a
    second loop, its length, an index, a change) would see items that are gone: it sets
    ``misread`` and the caller makes the rows again from a fresh parse."""

    misread = False
    _begun = False

    def __iter__(self) -> Iterator[Any]:
        if self._begun:
            self.misread = True
            return list.__iter__(self)
        self._begun = True
        return self._passing()

    def _passing(self) -> Iterator[Any]:
        for index in range(list.__len__(self)):
            item = list.__getitem__(self, index)
            list.__setitem__(self, index, None)
            yield item
            del item


def _misreads(name: str) -> Callable[..., Any]:
    method = getattr(list, name)

    def guarded(self: _OnePass, *args: Any, **kwargs: Any) -> Any:
        if self._begun:
            self.misread = True
        return method(self, *args, **kwargs)

    guarded.__name__ = name
    return guarded


_READS_AND_CHANGES = (
    "__len__", "__getitem__", "__reversed__", "__contains__", "__eq__", "__ne__", "__lt__", "__le__",
    "__gt__",
    "__ge__", "__add__", "__mul__", "__rmul__", "__repr__", "__reduce_ex__", "__copy__", "__setitem__",
    "__delitem__", "__iadd__", "__imul__", "append", "extend", "insert", "pop", "remove", "sort", "reverse",
    "clear", "copy", "index", "count",
)
for _name in _READS_AND_CHANGES:
    if hasattr(list, _name):
        setattr(_OnePass, _name, _misreads(_name))


def _event(module: ModuleType, headers: Mapping[str, str], payload: dict[str, Any]) -> str:
    if hasattr(module, "event_name"):
        return str(module.event_name(headers, payload))
    return str(payload.get("object_kind") or payload.get("reason") or payload.get("kind") or "")


@dataclass
class _Prepared:
    delivery: Delivery | None = None
    status: int = 200
    message: str = ""


def prepare(
    endpoint: Endpoint, headers: Mapping[str, str], body: bytes | bytearray, config: Config,
    columns: Mapping[str, Mapping[str, Column]], insecure: bool, arrived: float, received_at: datetime,
) -> _Prepared:
    """Signature, JSON, rows and the checks that make a delivery storable; pure CPU work (run in
    a worker thread for large bodies)."""
    return _prepare(endpoint, headers, body, config, columns, insecure, arrived, received_at, None)


def prepare_spooled(
    endpoint: Endpoint, headers: Mapping[str, str], spool: Spool, config: Config,
    columns: Mapping[str, Mapping[str, Column]], insecure: bool, arrived: float, received_at: datetime,
) -> _Prepared:
    """``prepare`` for a body the handler streamed to a file (``Spool``): the body is read through a
    read-only memory map and never held as bytes, and the file becomes the delivery's payload file.
    Its mapped pages count in the receiver's memory only while they are mapped in: they are let go
    of after the signature's pass and as the cut parse goes (``_MappedBody``). A form-encoded body
    (the JSON is a field of it) takes the in-memory way, read from the file."""
    if _is_form(headers) or spool.size < LARGE_PAYLOAD:
        with open(spool.path, "rb") as file:
            return prepare(endpoint, headers, file.read(), config, columns, insecure, arrived, received_at)
    with _MappedBody(spool.path) as mapped:
        return _prepare(endpoint, headers, mapped.body, config, columns, insecure, arrived, received_at,
                        (spool, mapped))


def _prepare(
    endpoint: Endpoint, headers: Mapping[str, str], body: bytes | bytearray | mmap.mmap, config: Config,
    columns: Mapping[str, Mapping[str, Column]], insecure: bool, arrived: float, received_at: datetime,
    spooled: tuple[Spool, _MappedBody] | None,
) -> _Prepared:
    module = endpoint.module
    release = None if spooled is None else spooled[1].release
    if endpoint.secret is not None:
        if not module.verify(headers, body, endpoint.secret):
            return _Prepared(status=401, message="missing or invalid signature")
        if release is not None:
            release(len(body))
    elif not insecure:
        return _Prepared(status=401,
                         message=f"no secret configured for {endpoint.name} (set {module.SECRET_ENV})")
    text: bytes | bytearray | mmap.mmap | str = body
    payload = None if _is_form(headers) else _pruned_payload(module, headers, body, release)
    cut = payload is not None
    if payload is None:
        try:
            text = _json_text(headers, body) if not isinstance(body, mmap.mmap) else body
            payload = _parse_json(text)
        except Rejected as exc:
            return _Prepared(status=422, message=str(exc))
        except (UnicodeDecodeError, ValueError) as exc:
            return _Prepared(status=400, message=f"malformed JSON: {first_line(exc)}")
        if not isinstance(payload, dict):
            return _Prepared(status=400, message="the payload must be a JSON object")
        # nesting needs an opening bracket per level: a body with few of them (most) skips the walk
        if isinstance(text, str):
            brackets = text.count("{") + text.count("[")
        elif isinstance(text, mmap.mmap):
            brackets = _mapped_brackets(text)
        else:
            brackets = text.count(b"{") + text.count(b"[")
        if brackets > MAX_JSON_DEPTH and not json_depth_ok(payload):
            return _Prepared(status=422, message=f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        if cut and spooled is not None:
            rows, payload = _rows_in_one_pass(module, headers, payload, config,
                                              lambda: _pruned_payload(module, headers, body, release))
        else:
            rows = module.to_rows(headers, payload, config)
        check_rows(rows, columns)
        delivery_id = str(module.delivery_id(headers, body))
        if len(delivery_id) > MAX_DELIVERY_ID:
            raise Rejected(f"delivery id longer than {MAX_DELIVERY_ID} characters")
        event = _event(module, headers, payload)
    except Exception as exc:  # noqa: BLE001 - whatever a payload makes to_rows raise is the payload's fault
        deliberate = isinstance(exc, Rejected | ValueError) and str(exc).strip()  # a provider's reason
        reason = first_line(exc) if deliberate else f"{type(exc).__name__}: {first_line(exc)}"
        return _Prepared(status=422, message=f"unusable payload: {reason}")
    # The parsed payload is not kept: the writer stores the JSON text and the rows made from it,
    # and the objects json.loads built (about five times the body) are freed before the writer runs.
    if spooled is not None:  # the body's file is the payload's: the body was the JSON text
        spool = spooled[0]
        release(len(body))  # type: ignore[misc]
        del payload  # the rows hold what they need of it: its containers go before the rows' copy
        rows = held_rows(rows)
        release_freed_memory()
        return _Prepared(delivery=Delivery(
            provider=endpoint.name, delivery_id=delivery_id, event=event, body=b"", payload={},
            rows=rows, finalize=endpoint.finalize, finalize_after=endpoint.finalize_after,
            payload_file=spool.path, body_sha256=spool.sha256, received_at=received_at, arrived=arrived,
        ))
    assert not isinstance(text, mmap.mmap)
    if not isinstance(text, str) and len(text) >= LARGE_PAYLOAD:
        written = spool_payload(text)
        if written is not None:  # the body is not kept either: the store reads the file
            rows = held_rows(rows)
            del payload
            release_freed_memory()
            return _Prepared(delivery=Delivery(
                provider=endpoint.name, delivery_id=delivery_id, event=event, body=b"", payload={},
                rows=rows, finalize=endpoint.finalize, finalize_after=endpoint.finalize_after,
                payload_file=written, body_sha256=hashlib.sha256(body).hexdigest(),
                received_at=received_at, arrived=arrived,
            ))
    del payload
    payload_json = text if isinstance(text, str) else text.decode("utf-8")
    return _Prepared(delivery=Delivery(
        provider=endpoint.name, delivery_id=delivery_id, event=event, body=bytes(body), payload={},
        rows=rows, finalize=endpoint.finalize, finalize_after=endpoint.finalize_after,
        payload_json=payload_json, received_at=received_at, arrived=arrived,
    ))


def held_rows(rows: dict[str, list[dict[str, Any]]]) -> dict[str, Rows]:
    """A large delivery's rows as they wait for the writer: each table as an Arrow table
    (``writer.TableRows``: a fifth of the dicts' memory, and the writer MERGEs from it as it is),
    or, where Arrow would not hold the same values, as dicts with their strings copied
    (``compact_rows``)."""
    held: dict[str, Rows] = {}
    rest: dict[str, list[dict[str, Any]]] = {}
    for table, made in rows.items():
        tabled = table_rows(table, made) if made else None
        if tabled is None:
            rest[table] = made
        else:
            held[table] = tabled
    held.update(compact_rows(rest))
    return {table: held[table] for table in rows}


def compact_rows(rows: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """The rows with their strings copied out of the parsed payload, one copy per distinct value.

    Rows keep some of the payload's strings (a commit's sha, its author's name), scattered over the
    memory the parser filled, so freeing the payload would hand almost none of that memory back:
    for a 24 MB push, 100 MB stayed held until the writer had stored the rows, and the writer's
    own memory came on top of it. Copied while the payload is still whole, the rows sit in memory
    of their own (a quarter of that: a push repeats an author's name and e-mail per commit), and
    the payload's is freed entire when it goes. The values are equal, so the stored rows are the
    same; only large payloads pay for the copy."""
    copies: dict[str, str] = {}  # keyed by the payload's strings: must not outlive this call
    return {table: [{name: _copied(value, copies) for name, value in row.items()} for row in table_rows]
            for table, table_rows in rows.items()}


def _copied(value: Any, copies: dict[str, str]) -> Any:
    if isinstance(value, str):
        found = copies.get(value)
        if found is None:
            found = copies[value] = value.encode("utf-8", "surrogatepass").decode("utf-8", "surrogatepass")
        return found
    if isinstance(value, list):
        return [_copied(item, copies) for item in value]
    return value


def release_freed_memory() -> None:
    """Hand the C allocator's free memory back to the system (glibc's ``malloc_trim``): after a
    large body it keeps the freed buffers for reuse, which a receiver seeing one such body an hour
    never reuses. A no-op where the C library has no ``malloc_trim``."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


def spool_payload(text: bytes | bytearray) -> str | None:
    """A large payload's JSON text written to a temporary file (a :class:`Spool`), for the writer to
    store with DuckDB's read_text (``writer.py``) instead of as a Python string bound to the INSERT;
    the writer removes the file once the delivery is settled. None when the temporary folder's path
    has a character read_text would take as a glob, or the file cannot be written: the text then
    goes the in-memory way."""
    spool = Spool.open()
    if spool is None:
        return None
    try:
        spool.write(text)
        spool.close()
    except OSError:
        spool.discard()
        return None
    return spool.path


SPOOL_PREFIX = "gitops-dora-payload-"
STALE_SPOOL_SECONDS = 3600


def remove_stale_spools(folder: str | None = None, older_than: float = STALE_SPOOL_SECONDS) -> int:
    """Remove spool files a killed receiver left behind (its clean-up never ran), so a receiver
    restarted after crashes does not fill its temporary folder. Only files older than an hour:
    a receiver sharing the folder finishes a delivery's file long before that (a request must
    arrive within the read timeout, and the file goes once the delivery is settled). Returns how
    many were removed."""
    folder = folder or tempfile.gettempdir()
    cutoff = time.time() - older_than
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        if not (entry.name.startswith(SPOOL_PREFIX) and entry.name.endswith(".json")):
            continue
        with contextlib.suppress(OSError):
            if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                os.unlink(entry.path)
                removed += 1
    return removed


class Spool:
    """A large body written to a temporary file as it arrives, hashed on the way, so that the
    receiver never holds it whole as bytes (``prepare_spooled``). The file becomes the delivery's
    payload file (the writer removes it once the delivery is settled); whoever does not hand it on
    calls ``discard``."""

    def __init__(self) -> None:
        fd, self.path = tempfile.mkstemp(prefix=SPOOL_PREFIX, suffix=".json")
        self._fd: int | None = fd
        self._hash = hashlib.sha256()
        self.size = 0
        if any(c in self.path for c in "*?[]{}"):  # the writer's read_text would take it as a glob
            self.discard()
            raise OSError("glob character in the temporary folder's path")

    @classmethod
    def open(cls) -> Spool | None:
        """A new spool, or None when no temporary file can be made (the body is then buffered)."""
        try:
            return cls()
        except OSError:
            return None

    def write(self, chunk: bytes | bytearray) -> None:
        assert self._fd is not None
        self._hash.update(chunk)
        view = memoryview(chunk)
        while view:
            view = view[os.write(self._fd, view):]
        self.size += len(chunk)

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def discard(self) -> None:
        self.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)


class _MappedBody:
    """A spooled body mapped read-only. ``release(upto)`` drops the mapped pages before ``upto``
    from the process (``MADV_DONTNEED``; read again from the page cache if touched again), so a
    pass over the body holds about a megabyte of it, not all of it."""

    def __init__(self, path: str) -> None:
        with open(path, "rb") as file:
            self.body = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)

    def __enter__(self) -> _MappedBody:
        return self

    def __exit__(self, *exc: object) -> None:
        self.body.close()

    def release(self, upto: int) -> None:
        size = len(self.body)
        end = size if upto >= size else upto - upto % mmap.PAGESIZE
        if end > 0 and hasattr(self.body, "madvise"):
            with contextlib.suppress(OSError, ValueError):
                self.body.madvise(mmap.MADV_DONTNEED, 0, end)


def _mapped_brackets(body: mmap.mmap) -> int:
    """``{`` and ``[`` in a mapped body, a megabyte at a time (an mmap has no ``count``)."""
    found, step = 0, 1024 * 1024
    for start in range(0, len(body), step):
        piece = body[start:start + step]
        found += piece.count(b"{") + piece.count(b"[")
    return found


@dataclass
class _State:
    writer: DeliveryWriter
    config: Config
    limits: Limits
    log: RateLimitedLog
    insecure: bool
    budget: _Budget
    in_flight: int = 0
    refused: int = 0


def _handler(endpoint: Endpoint, state: _State) -> Any:
    module = endpoint.module
    precheck = getattr(module, "precheck", None)
    limits, log = state.limits, state.log

    def refuse(status: int, message: str, *, close: bool = False) -> JSONResponse:
        state.refused += 1
        log(f"{status}:{endpoint.name}:{message[:40]}", f"{endpoint.module.PATH}: {status} {message}")
        return _reply(status, message, close=close)

    async def receive(request: Request) -> JSONResponse:
        loop = asyncio.get_running_loop()
        now = loop.time()
        started = float(request.scope.get(REQUEST_STARTED) or now)
        if state.in_flight >= limits.max_requests:
            return refuse(503, f"receiver busy: {limits.max_requests} requests in flight, retry later")
        state.in_flight += 1
        reserved = 0
        spool: Spool | None = None
        try:
            headers = request.headers
            declared_text = headers.get("content-length")
            declared = int(declared_text) if declared_text and declared_text.strip().isdigit() else None
            if declared is not None and declared > limits.max_body:
                return refuse(413, f"body larger than {limits.max_body} bytes", close=True)
            secret = endpoint.secret
            if secret is not None and precheck is not None and not precheck(headers, secret):
                return refuse(401, "missing or invalid signature")
            if endpoint.secret is None and not state.insecure:
                return refuse(401, f"no secret configured for {endpoint.name} (set {module.SECRET_ENV})")
            if declared is not None:
                if not state.budget.take(declared):
                    return refuse(503, "receiver busy: too many bodies being read, retry later")
                reserved = declared
            # A large body goes to a temporary file as it arrives (``Spool``), hashed on the way:
            # the receiver never holds it whole (``prepare_spooled`` maps the file). Where no file
            # can be made, it is read into one buffer of its declared size, never as chunks and
            # their join (twice the body at that moment); small ones keep the list, cheaper for one
            # chunk.
            large = declared is not None and declared > OFFLOAD_BYTES
            spool = Spool.open() if large else None
            chunks: list[bytes] = []
            buffer = bytearray(declared) if large and spool is None and declared is not None else None
            size = 0
            try:
                async with asyncio.timeout(max(0.0, started + limits.read_timeout - loop.time())):
                    async for chunk in request.stream():
                        size += len(chunk)
                        if size > limits.max_body:
                            return refuse(413, f"body larger than {limits.max_body} bytes", close=True)
                        if size > reserved:
                            if not state.budget.take(size - reserved):
                                return refuse(503, "receiver busy: too many bodies being read, retry later",
                                              close=True)
                            reserved = size
                        if not chunk:
                            continue
                        if spool is not None:
                            try:
                                spool.write(chunk)
                            except OSError as exc:  # the temporary folder is full: the sender retries
                                reason = os.strerror(exc.errno or 0)
                                return refuse(503, f"receiver cannot keep the body now ({reason}), "
                                              "retry later", close=True)
                        elif buffer is not None and size <= len(buffer):
                            buffer[size - len(chunk):size] = chunk
                        elif buffer is not None:  # more than declared: the protocol never lets it
                            buffer[size - len(chunk):] = chunk
                        else:
                            chunks.append(chunk)
            except TimeoutError:
                return refuse(408, f"request not received within {limits.read_timeout:g} s", close=True)
            except ClientDisconnect:
                return _reply(400, "client disconnected", close=True)
            received_at = datetime.now(UTC) - timedelta(seconds=loop.time() - started)
            if spool is not None:
                from starlette.concurrency import run_in_threadpool

                try:
                    spool.close()
                    prepared = await run_in_threadpool(
                        prepare_spooled, endpoint, headers, spool, state.config, state.writer.columns,
                        state.insecure, started, received_at)
                except OSError as exc:  # the spool file cannot be read back or mapped: retryable
                    reason = os.strerror(exc.errno or 0)
                    return refuse(503, f"receiver cannot read the body back now ({reason}), retry later")
                if prepared.delivery is not None and prepared.delivery.payload_file == spool.path:
                    spool = None  # the writer's now: it removes the file once the delivery is settled
            else:
                body: bytes | bytearray
                if buffer is not None:
                    if size < len(buffer):  # fewer bytes than declared (the protocol refuses that first)
                        del buffer[size:]
                    body, buffer = buffer, None
                else:
                    body = b"".join(chunks)
                del chunks
                args = (endpoint, headers, body, state.config, state.writer.columns, state.insecure, started,
                        received_at)
                if len(body) > OFFLOAD_BYTES:
                    from starlette.concurrency import run_in_threadpool

                    del body  # only ``args`` holds it, and lets go of it before the writer is awaited
                    prepared = await run_in_threadpool(prepare, *args)
                else:
                    del body
                    prepared = prepare(*args)
                del args
            if prepared.delivery is None:
                return refuse(prepared.status, prepared.message)
            delivery = prepared.delivery
            delivery.waiter = loop.create_future()
            try:
                state.writer.submit(delivery)
                outcome = await delivery.waiter
            except Rejected as exc:  # the writer logged it
                state.refused += 1
                return _reply(422, str(exc))
            except StoreUnavailable as exc:  # the writer logged it
                return _reply(503, str(exc))
            return _reply(200, outcome, delivery=delivery.delivery_id,
                          rows=sum(made_rows(r) for r in delivery.rows.values()))
        except Exception as exc:  # noqa: BLE001 - one line, never a traceback per request
            log(f"500:{type(exc).__name__}", f"{endpoint.module.PATH}: internal error {type(exc).__name__}: "
                f"{first_line(exc)}")
            return _reply(500, f"internal error: {type(exc).__name__}", close=True)
        finally:
            if spool is not None:
                spool.discard()
            state.in_flight -= 1
            state.budget.give(reserved)

    return receive


_OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


def _loop_errors(log: RateLimitedLog) -> Any:
    """asyncio logs each failed accept() with a traceback while descriptors are exhausted, and its
    accept loop (Python 3.11) goes on trying, scheduling a retry of the listener per attempt: up to a
    backlog's worth each second, and each of those still pending at shutdown fails again on the
    closed socket with a traceback of its own. This makes all of that one line a minute and leaves
    every other error to the default handler."""

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in _OUT_OF_RESOURCES:
            log("accept", f"cannot accept connections: {os.strerror(exc.errno or 0)}; retrying every second "
                "(raise the open-files limit or lower GITOPS_DORA_WEBHOOK_MAX_CONNECTIONS)")
            return
        if "_start_serving" in str(context.get("handle") or context.get("message") or ""):
            log("accept-retry", f"retrying accept() failed: {type(exc).__name__}: {exc}")
            return
        loop.default_exception_handler(context)

    return handle


def create_app(
    db_path: StoreRef, config: Config, *, insecure: bool = False, endpoints: list[Endpoint] | None = None,
    limits: Limits | None = None, writer: DeliveryWriter | None = None, log: RateLimitedLog | None = None,
) -> Starlette:
    endpoints = provider_secrets() if endpoints is None else endpoints
    limits = limits or Limits()
    log = log or RateLimitedLog()
    writer = writer or DeliveryWriter(db_path, config)
    writer.on_failure = log
    state = _State(writer=writer, config=config, limits=limits, log=log, insecure=insecure,
                   budget=_Budget(limits.max_buffered))

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
            "in_flight": state.in_flight,
            "refused": state.refused,
            "writer": writer.stats(),
            "limits": dataclasses.asdict(limits),
        })

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(_loop_errors(log))
        logging.getLogger("uvicorn.error").addFilter(_LogFilter(log))
        await loop.run_in_executor(None, writer.start)
        try:
            yield
        finally:
            await loop.run_in_executor(None, writer.stop)

    routes = [Route("/", status, methods=["GET"])]
    routes += [Route(e.module.PATH, _handler(e, state), methods=["POST"]) for e in endpoints]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.writer = writer
    return app


def guarded_protocol(limits: Limits, log: RateLimitedLog) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol with the connection limits uvicorn does not have: a cap on open
    connections (refused at once), a deadline for each request's head and body, which also
    closes sockets that connect and send nothing, and a cap on the size of a request head (431).
    Without httptools the receiver refuses to start: uvicorn's h11 fallback has none of these
    guards, so one slow client could hold its sockets and memory."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError as exc:
        raise UserError(
            "the webhook receiver needs httptools (it is in requirements/runtime.lock); "
            "reinstall with scripts/bootstrap.sh"
        ) from exc

    def plain(status: str, text: str) -> bytes:
        return (f"HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\n"
                f"content-length: {len(text)}\r\nconnection: close\r\n\r\n{text}").encode()

    timeout_response = plain("408 Request Timeout", f"request not received within {limits.read_timeout:g} s")
    head_response = plain("431 Request Header Fields Too Large",
                          f"request head larger than {MAX_HEAD_BYTES} bytes")

    class GuardedProtocol(HttpToolsProtocol):
        _deadline: asyncio.TimerHandle | None = None
        _in_message = False
        _head_done = False
        _got_bytes = False
        _head_bytes = 0
        _started = 0.0

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > limits.max_connections:
                self.connections.discard(self)
                log("connections", f"more than {limits.max_connections} open connections: closing new ones "
                    "at once (GITOPS_DORA_WEBHOOK_MAX_CONNECTIONS)")
                transport.abort()
                return
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._deadline is None and not self._in_message:
                self._arm()
            self._got_bytes = True
            super().data_received(data)
            if not self._head_done and not self.transport.is_closing():  # all of it was head
                self._head_bytes += len(data)
                if self._head_bytes > MAX_HEAD_BYTES:
                    log("head", f"request head over {MAX_HEAD_BYTES} bytes: 431, connection closed")
                    self.transport.write(head_response)
                    self.transport.close()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_message, self._head_done, self._head_bytes = True, False, 0
            self.scope[REQUEST_STARTED] = self._started  # type: ignore[literal-required]

        def on_headers_complete(self) -> None:
            self._head_done = True
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._in_message = False
            self._disarm()

        def _arm(self) -> None:
            self._disarm()
            self._started, self._got_bytes = self.loop.time(), False
            self._deadline = self.loop.call_later(limits.read_timeout, self._expired)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expired(self) -> None:
            self._deadline = None
            if self.transport.is_closing():
                return
            cycle = self.cycle if self._head_done else None
            if cycle is None:  # no whole request head yet: idle or dribbling socket
                if self._got_bytes:
                    self.transport.write(timeout_response)
                self.transport.close()
            elif cycle.response_started:  # answered already (refused early); the body still trickles
                self.transport.close()
            else:  # the app is reading the body and answers 408 itself at this deadline
                self._deadline = self.loop.call_later(2.0, self.transport.close)

    return GuardedProtocol


def _fit_file_limit(limits: Limits, explicit: bool) -> Limits:
    """Raise the soft open-files limit to the hard one; keep the default connection cap below it."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return limits
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = limits.max_connections + FD_RESERVE
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < wanted and not explicit:
        room = max(16, soft - FD_RESERVE)
        print(f"  open-files limit {soft}: at most {room} connections", file=sys.stderr)
        return dataclasses.replace(limits, max_connections=room)
    return limits


def serve(db_path: StoreRef, config: Config, host: str, port: int, insecure: bool) -> None:
    import uvicorn

    endpoints = provider_secrets()
    if not any(e.secret for e in endpoints) and not insecure:
        names = ", ".join(e.module.SECRET_ENV for e in endpoints)
        raise UserError(f"no webhook secret is set ({names}); set one, or pass --insecure to accept unsigned")
    limits = _fit_file_limit(limits_from_env(), explicit=bool(os.environ.get(ENV["max_connections"])))
    log = RateLimitedLog()
    protocol = guarded_protocol(limits, log)  # before the store is touched: refuse cleanly
    sock = listening_socket(host, port)  # a port in use is one line, before the store opens
    writer = DeliveryWriter(db_path, config)
    writer.open()  # migrations before the first delivery, and a store that cannot open fails here
    stale = remove_stale_spools()
    if stale:
        print(f"  removed {stale} payload file(s) a stopped receiver left in {tempfile.gettempdir()}",
              file=sys.stderr)
    for e in endpoints:
        mode = "verified" if e.secret else ("UNSIGNED (--insecure)" if insecure else "refused: no secret")
        print(f"  POST http://{host}:{port}{e.module.PATH}  {mode}", file=sys.stderr)
    print(f"  limits: body {limits.max_body} bytes, {limits.max_requests} requests and "
          f"{limits.max_connections} connections at once, {limits.read_timeout:g} s to receive a request",
          file=sys.stderr)
    print(f"receiving webhooks on http://{host}:{port} into {db_path}", file=sys.stderr, flush=True)
    app = create_app(db_path, config, insecure=insecure, endpoints=endpoints, limits=limits, writer=writer,
                     log=log)
    server = uvicorn.Server(uvicorn.Config(
        app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=10,
        http=protocol, timeout_keep_alive=limits.keep_alive, backlog=limits.backlog,
        # our protocol closes connections beyond max_connections before uvicorn counts them
        limit_concurrency=limits.max_connections + 1,
    ))
    server.run(sockets=[sock])  # what uvicorn.run does, on the socket bound above
    if not server.started:
        sys.exit(3)  # uvicorn.run's STARTUP_FAILURE: the application did not start
