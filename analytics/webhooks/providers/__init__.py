"""Webhook providers: one module per sender, discovered by the receiver at start-up.

Provider contract (every non-underscore module in this package that defines ``PATH`` is served):

``PATH: str``
    The URL path the provider answers on, e.g. ``"/webhooks/github"``. POST only.

``SECRET_ENV: str``
    Name of the environment variable holding the shared secret (HMAC key or token). The receiver
    reads it once at start-up; when it is unset or empty the receiver refuses to start unless it
    runs with ``--insecure`` (then ``verify`` is not called and every delivery is accepted).

``verify(headers: Mapping[str, str], body: bytes, secret: str) -> bool``
    True when the delivery is authentic. ``headers`` are case-insensitive (Starlette ``Headers``;
    look them up in lower case). ``body`` is the raw request body, exactly as received. Must use a
    constant-time compare (``hmac.compare_digest``). A False answer gives 401 and nothing is stored.

``delivery_id(headers: Mapping[str, str], body: bytes) -> str``
    The idempotency key of the delivery: the sender's delivery id when it sends one (e.g.
    ``X-GitHub-Delivery``), otherwise a content hash (``content_hash(body)`` below). A delivery whose
    id is already stored is answered 200 again and not re-applied.

``to_rows(headers: Mapping[str, str], payload: dict[str, Any], config: Config) -> dict[str, list[dict]]``
    Maps one parsed JSON payload to rows: table name -> list of row dicts with the table's column
    names (see ``analytics/store/migrations``). Rows are upserted by the table's primary key, so the
    same payload twice gives the same rows. Unknown event types return ``{}`` (the delivery is
    still stored). Must never raise on a missing optional field; raising (``ValueError``, or any
    error from an unexpected value) means the payload is unusable: answered 422 with the reason in
    one line, nothing stored. Timestamps without a zone are UTC (``analytics.timestamps.read_time``).

``finalize(session: WriteSession, config: Config, rows: Mapping[str, list[dict]]) -> None`` (optional)
    Called once per write batch, inside the same transaction, after all rows of the batch were
    upserted (``rows``: every table the batch wrote, with its rows): re-derive tables from what is
    now stored (e.g. deployments from reconciler events, ``deployment_changes`` via attribution).
    Must be idempotent, and should skip the steps whose inputs ``rows`` did not change: the batch's
    deliveries wait for it.

``FINALIZE_AFTER: frozenset[str]`` (optional)
    Table names; when given, ``finalize`` runs only for batches whose deliveries produced rows
    for at least one of them (saves the re-derivation after, say, an incidents-only batch).

``precheck(headers: Mapping[str, str], secret: str) -> bool`` (optional)
    What can be checked from the headers alone, before the body is read: False gives 401 at once,
    so an unsigned request never makes the receiver buffer its body. A token in a header (GitLab,
    Argo CD) is verified completely here; an HMAC of the body (GitHub, Flux) can only be checked
    for presence and form, and then the body must be read (up to the size limit) to ``verify`` it.
    Without ``precheck`` every request's body is read before ``verify``.

``PRUNED_ARRAY: tuple[str, str, frozenset[str]]`` (optional)
    ``(event, array, keys)``: a body over 256 KiB is parsed piece by piece with each object item of
    its top-level ``array`` cut down to ``keys`` (``analytics/webhooks/pruned_json.py``), so a
    30,000-commit push never exists as Python objects whole. The cut payload is used only when
    ``event`` is the delivery's event; ``keys`` must hold every key ``to_rows`` reads of an item
    for that event (tests/test_receiver_memory_pruned.py stores both parses and compares).

The receiver (``analytics/webhooks/server.py``) owns everything else: limits (413, 408, 503),
JSON parsing (400), signature enforcement (401), payloads that cannot be stored (422), the
``webhook_deliveries`` audit table, and the writer thread that commits queued deliveries in small
batches before replying (``analytics/webhooks/writer.py``).

Times: ``to_rows`` reads them with :func:`analytics.timestamps.read_time`, which raises
``ValueError`` (422) for a value that is present but unreadable (``""``, ``true``, an RFC 2822
date...) or outside the years 1970-2100, so a delivery is never answered 200 while its row is
silently dropped. :func:`analytics.timestamps.parse_time` is the lenient reader the API collectors
and importers share (junk gives None).
"""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
from types import ModuleType


def content_hash(body: bytes) -> str:
    """Idempotency key for senders that give no delivery id."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def provider_modules() -> list[ModuleType]:
    """Every provider module of this package (those that define ``PATH``), in name order."""
    import analytics.webhooks.providers as pkg

    found = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{pkg.__name__}.{info.name}")
        if hasattr(module, "PATH") and hasattr(module, "to_rows"):
            found.append(module)
    return found
