"""What text and nesting the store can hold, checked before anything is written, by every path that
reads parsed documents (``import`` files, ``collect k8s`` lists): a lone UTF-16 surrogate (which a
JSON or YAML escape can produce and DuckDB rejects fatally), a NUL (which ends a string in the
catalog's SQL), or nesting past MAX_DEPTH is one line naming the input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from analytics.errors import NUL_REFUSED, SourceError

MAX_DEPTH = 64  # nesting of lists/mappings; Kubernetes objects need about 20


def check_values(path: Path | str, docs: list[Any]) -> None:
    """Refuse ``docs`` (named ``path`` in the error) holding a value the store cannot hold;
    iterative, so depth is no risk."""
    stack: list[tuple[Any, int]] = [(d, 1) for d in docs]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if "\0" in value:  # from a \u0000 or YAML \0 escape
                raise SourceError(f"{path}: text with {NUL_REFUSED}")
            if not value.isascii():
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    raise SourceError(
                        f"{path}: text with an invalid Unicode escape (a lone surrogate such as \\ud800)"
                    ) from None
            continue
        if not isinstance(value, dict | list):
            continue
        if depth > MAX_DEPTH:
            raise SourceError(f"{path}: nested deeper than {MAX_DEPTH} levels")
        items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
        stack.extend((item, depth + 1) for item in items)
