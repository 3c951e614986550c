"""The bytes a printing function writes to stdout, exactly as a console would receive them."""

from __future__ import annotations

import io
from collections.abc import Callable
from contextlib import redirect_stdout
from typing import Any


def captured(call: Callable[[], Any]) -> bytes:
    """Run ``call`` with stdout going to a UTF-8 buffer with no newline translation: the listing
    tests compare these bytes with those of another path, so nothing may be normalised."""
    buffer = io.BytesIO()
    text = io.TextIOWrapper(buffer, encoding="utf-8", newline="")
    with redirect_stdout(text):
        call()
        text.flush()
    return buffer.getvalue()
