"""JSON as every output writes it (CLI, reports, the dashboard's downloads): times in UTC with a
``Z``, NaN and infinities as null, numpy and pandas scalars as plain numbers. One module below the
CLI, reports and dashboard, so the three agree byte for byte and none imports another for it."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any


def to_jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        from datetime import UTC

        if value.tzinfo is not None:
            value = value.astimezone(UTC)
            return value.strftime("%Y-%m-%dT%H:%M:%SZ") if not value.microsecond else value.isoformat()
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return to_jsonable(value.item())
    return value


def dumps(payload: Any) -> str:
    """Indented JSON text (see :func:`dumps_bytes`)."""
    return dumps_bytes(payload).decode()


def dumps_bytes(payload: Any) -> bytes:
    """Indented UTF-8 JSON; orjson because trend output can hold tens of thousands of groups.

    Times come out as UTC with a ``Z``; NaN and infinities as null; anything orjson does not
    know (Decimal, pandas types) goes through ``to_jsonable``.
    """
    import orjson

    options = orjson.OPT_INDENT_2 | orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC | orjson.OPT_SERIALIZE_NUMPY
    try:
        return orjson.dumps(payload, default=_json_fallback, option=options)
    except orjson.JSONEncodeError:
        # A key that is not a string (or a value nothing can encode, which fails again below).
        # OPT_NON_STR_KEYS only changes how such keys are written, and slows every dict: a weekly
        # metrics trend (76 MB, every key a string) encodes in 0.061 s without it, 0.081 s with it.
        return orjson.dumps(payload, default=_json_fallback, option=options | orjson.OPT_NON_STR_KEYS)


def _json_fallback(value: Any) -> Any:
    converted = to_jsonable(value)
    if converted is value:
        if isinstance(value, Decimal):
            return float(value)
        raise TypeError(f"cannot serialise {type(value).__name__} as JSON")
    return converted


def dumps_pieces(payload: Any, key: str, size: int = 4096) -> Iterator[bytes | memoryview]:
    """The bytes of :func:`dumps_bytes` (``payload``) in pieces, ``payload[key]`` (a list under a
    top-level key) encoded ``size`` items at a time: a writer can send each piece while the next
    is encoded, and no single buffer holds the whole document (a weekly metrics trend is 76 MB).

    Each piece is encoded by :func:`dumps_bytes` itself, at the list's own depth (``{key: items}``
    puts the items where ``payload`` has them), so the joined pieces are the same bytes. Anything
    else (not a dict, no such list, a short one) comes as one piece."""
    items = payload.get(key) if isinstance(payload, dict) else None
    if not isinstance(items, list) or len(items) <= size:
        yield dumps_bytes(payload)
        return
    name = dumps_bytes(key)
    # every top-level key starts a line indented by two spaces; nothing else does (a value's
    # newlines are escaped, nested keys are indented further), so the marker is found once
    marker = b"\n  " + name + b": []"
    head = dumps_bytes({**payload, key: []})
    at = head.index(marker) + len(marker) - 2  # where the empty list starts
    opening, closing = b"{\n  " + name + b": [\n", b"\n  ]\n}"
    yield memoryview(head)[:at]
    yield b"[\n"
    for start in range(0, len(items), size):
        encoded = dumps_bytes({key: items[start:start + size]})
        if not (encoded.startswith(opening) and encoded.endswith(closing)):  # pragma: no cover
            raise RuntimeError("dumps_pieces: unexpected layout of an encoded list")
        if start:
            yield b",\n"
        yield memoryview(encoded)[len(opening):len(encoded) - len(closing)]
    yield b"\n  ]"
    yield memoryview(head)[at + 2:]
