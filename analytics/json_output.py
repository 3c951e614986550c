"""JSON as every output writes it (CLI, reports, the dashboard's downloads): times in UTC with a
``Z``, NaN and infinities as null, numpy and pandas scalars as plain numbers. One module below the
CLI, reports and dashboard, so the three agree byte for byte and none imports another for it."""

from __future__ import annotations

import math
from collections.abc import Mapping
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

    options = (
        orjson.OPT_INDENT_2 | orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC
        | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
    )
    return orjson.dumps(payload, default=_json_fallback, option=options)


def _json_fallback(value: Any) -> Any:
    converted = to_jsonable(value)
    if converted is value:
        if isinstance(value, Decimal):
            return float(value)
        raise TypeError(f"cannot serialise {type(value).__name__} as JSON")
    return converted
