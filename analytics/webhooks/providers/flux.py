"""Flux notification-controller posts (``generic-hmac`` provider) on ``/webhooks/flux``.

The body is an ``eventv1.Event`` (involvedObject, severity, timestamp, message, reason, metadata,
reportingController). Revision keys come prefixed (``kustomize.toolkit.fluxcd.io/revision``) or,
since notification-controller 1.5, bare (``revision``); both are read.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

from analytics.collectors import flux
from analytics.config import Config
from analytics.deployments.from_reconcilers import derive_pending
from analytics.deployments.reconciler_rows import Collected
from analytics.store.connection import WriteSession
from analytics.timestamps import read_time
from analytics.webhooks.providers import content_hash

PATH = "/webhooks/flux"
SECRET_ENV = "GITOPS_DORA_FLUX_SECRET"
_ALGORITHMS = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}


def sign(body: bytes, secret: str, algorithm: str = "sha256") -> str:
    """The ``X-Signature`` value notification-controller sends: ``<alg>=<hex HMAC of the body>``."""
    return f"{algorithm}={hmac.new(secret.encode(), body, _ALGORITHMS[algorithm]).hexdigest()}"


_HEX_LENGTH = {"sha1": 40, "sha256": 64, "sha384": 96, "sha512": 128}
_HEX = re.compile(r"^[0-9a-fA-F]+$")


def precheck(headers: Mapping[str, str], secret: str) -> bool:
    """Before the body is read: an ``X-Signature`` of the right form (the HMAC needs the body)."""
    algorithm, _, digest = (headers.get("x-signature") or "").strip().partition("=")
    return _HEX_LENGTH.get(algorithm.lower()) == len(digest) and bool(_HEX.match(digest))


def verify(headers: Mapping[str, str], body: bytes, secret: str) -> bool:
    given = (headers.get("x-signature") or "").strip()
    algorithm, _, digest = given.partition("=")
    if algorithm.lower() not in _ALGORITHMS or not digest:
        return False
    return hmac.compare_digest(given.lower().encode(), sign(body, secret, algorithm.lower()).encode())


def delivery_id(headers: Mapping[str, str], body: bytes) -> str:
    return content_hash(body)


def to_rows(
    headers: Mapping[str, str], payload: dict[str, Any], config: Config
) -> dict[str, list[dict[str, Any]]]:
    involved = payload.get("involvedObject")
    if not isinstance(involved, dict) or not involved.get("kind") or not involved.get("name"):
        raise ValueError("not a Flux event: involvedObject with kind and name is required")
    if str(involved["kind"]) not in ("Kustomization", "HelmRelease"):
        return {}
    if not payload.get("timestamp"):
        raise ValueError("Flux event has no timestamp")
    read_time(payload["timestamp"], "timestamp")  # unreadable: 422, never a silently dropped event
    collected = Collected()
    flux.notification_event(payload, config, "webhook", collected)
    if collected.skipped:
        raise ValueError(f"Flux event timestamp is not a time: {payload.get('timestamp')!r}")
    if collected.rejected:  # read_time refused the timestamp already; the builder's rule, kept in step
        raise ValueError(collected.rejected[0].message)
    return {"reconciler_events": collected.events}


def finalize(session: WriteSession, config: Config, rows: Mapping[str, list[dict[str, Any]]]) -> None:
    derive_pending(session, config)
