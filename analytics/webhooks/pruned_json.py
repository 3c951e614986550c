"""A large body's top-level JSON object parsed piece by piece, with the items of one array pruned.

``orjson.loads`` of a whole 24 MB push builds about five times the body in Python objects (issue
#16), nearly all of it the ``commits`` array's file lists, URLs and nested users, which no provider
reads. Here the top-level object's members are found by a scan of its punctuation, each member's
value (and each item of the named array) is parsed on its own by orjson, and of the array's items
only the keys the provider reads are kept: at any moment one item's objects exist, not the
body's.

Exactness: a document is valid JSON exactly when its top-level punctuation is (checked here: ``{``,
members, ``:``, ``,``, ``}``, JSON whitespace only) and every piece orjson parsed is; and orjson
gives each piece the value it would have given it inside the whole document. Anything this scan
does not vouch for (a flaw anywhere, a form that is not a top-level object, a nesting deeper than
the limit) answers None, and the caller parses the whole body as before, which gives the same
answer the small-body path gives (its 400 or 422 and message).
"""

from __future__ import annotations

import mmap
import re
from collections.abc import Callable
from typing import Any

_WS = re.compile(rb"[ \t\n\r]*+")
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
# up to and including the next bracket outside a string (its text in group 1)
_TO_BRACKET = re.compile(rb'(?:[^"\[\]{}]++|"(?:[^"\\]++|\\.)*+")*+([\[\]{}])', re.DOTALL)
_SCALAR = re.compile(rb"[^ \t\n\r,\]}]++")
# Pieces parsed one by one at most (keys, members, items): a 30,000-commit push has ~60,000; GitHub
# lists at most 2,048 commits. A body of millions of tiny pieces would cost seconds of Python
# here; the whole parse answers it instead (as it did before this path existed).
MAX_PIECES = 250_000
RELEASE_BYTES = 1024 * 1024  # a mapped body's pages are let go of in steps of this many bytes

Body = bytes | bytearray | mmap.mmap


class _Unvouched(Exception):
    """The scan cannot vouch for the document: the caller parses it whole."""


def parse_pruned(
    body: Body, array: str, keep: frozenset[str], depth_ok: Callable[[Any, int], bool],
    max_depth: int, release: Callable[[int], None] | None = None,
) -> tuple[dict[str, Any], bool] | None:
    """The body's top-level object with each object item of its member ``array`` cut down to the
    keys in ``keep``; and whether anything was cut. None when the body is not a top-level object
    this scan vouches for (the caller then parses the whole body). ``depth_ok(value, levels)``
    says whether ``value`` nests at most ``levels`` deep (the receiver's MAX_JSON_DEPTH less the
    levels above it). ``body`` may be a memory-mapped file (the receiver's spooled body); then
    ``release(pos)`` is called as the array's items are passed, so the caller can drop the mapped
    pages before ``pos`` (the scan never goes back): the body's pages are not all resident at once."""
    import orjson

    view = memoryview(body)
    pieces = 0

    def loads(piece: memoryview) -> Any:
        nonlocal pieces
        pieces += 1
        if pieces > MAX_PIECES:
            raise _Unvouched
        return orjson.loads(piece)

    try:
        return _parse(body, view, array, keep, depth_ok, max_depth, loads, release)
    except (_Unvouched, ValueError, TypeError):  # orjson's errors are ValueErrors
        return None
    finally:
        view.release()


def _parse(
    body: Body, view: memoryview, array: str, keep: frozenset[str],
    depth_ok: Callable[[Any, int], bool], max_depth: int, loads: Callable[[Any], Any],
    release: Callable[[int], None] | None,
) -> tuple[dict[str, Any], bool]:
    end = len(body)
    pos = _skip_ws(body, 0)
    if pos >= end or body[pos] != 0x7B:  # {
        raise _Unvouched
    pos = _skip_ws(body, pos + 1)
    payload: dict[str, Any] = {}
    pruned = False
    if pos < end and body[pos] == 0x7D:  # }
        return _finish(body, pos + 1, payload, pruned)
    while True:
        match = _STRING.match(body, pos)
        if match is None:
            raise _Unvouched
        key = loads(view[pos:match.end()])
        pos = _skip_ws(body, match.end())
        if pos >= end or body[pos] != 0x3A:  # :
            raise _Unvouched
        pos = _skip_ws(body, pos + 1)
        if key == array and pos < end and body[pos] == 0x5B:  # [
            items, pos, cut = _items(body, view, pos, keep, depth_ok, max_depth, loads, release)
            payload[key] = items
            pruned = pruned or cut
        else:
            stop = _value_end(body, pos, max_depth - 1)
            value = loads(view[pos:stop])
            if _nested(body, pos, stop, max_depth - 1) and not depth_ok(value, max_depth - 1):
                raise _Unvouched
            payload[key] = value
            pos = stop
        pos = _skip_ws(body, pos)
        if pos >= end:
            raise _Unvouched
        if body[pos] == 0x7D:
            return _finish(body, pos + 1, payload, pruned)
        if body[pos] != 0x2C:  # ,
            raise _Unvouched
        pos = _skip_ws(body, pos + 1)


def _items(
    body: Body, view: memoryview, pos: int, keep: frozenset[str],
    depth_ok: Callable[[Any, int], bool], max_depth: int, loads: Callable[[Any], Any],
    release: Callable[[int], None] | None,
) -> tuple[list[Any], int, bool]:
    """The array at ``pos`` (its ``[``), item by item; object items keep the keys in ``keep``.
    Returns the items, the position after the ``]`` and whether a key was cut."""
    end = len(body)
    items: list[Any] = []
    cut = False
    released = pos
    pos = _skip_ws(body, pos + 1)
    if pos < end and body[pos] == 0x5D:  # ]
        return items, pos + 1, cut
    while True:
        stop = _value_end(body, pos, max_depth - 2)
        item = loads(view[pos:stop])
        # the item sits two levels down: in the array, in the top-level object
        if _nested(body, pos, stop, max_depth - 2) and not depth_ok(item, max_depth - 2):
            raise _Unvouched
        if isinstance(item, dict) and not keep.issuperset(item):
            item = {k: v for k, v in item.items() if k in keep}
            cut = True
        items.append(item)
        if release is not None and stop - released >= RELEASE_BYTES:
            release(stop)
            released = stop
        pos = _skip_ws(body, stop)
        if pos >= end:
            raise _Unvouched
        if body[pos] == 0x5D:
            return items, pos + 1, cut
        if body[pos] != 0x2C:
            raise _Unvouched
        pos = _skip_ws(body, pos + 1)


def _finish(
    body: Body, pos: int, payload: dict[str, Any], pruned: bool
) -> tuple[dict[str, Any], bool]:
    if _skip_ws(body, pos) != len(body):  # anything after the object
        raise _Unvouched
    return payload, pruned


def _skip_ws(body: Body, pos: int) -> int:
    match = _WS.match(body, pos)
    return match.end() if match else pos


def _value_end(body: Body, pos: int, levels: int) -> int:
    """Where the value starting at ``pos`` ends: its closing quote or bracket, or the scalar's end.
    Only the extent: orjson then parses (and so checks) what lies in it. A value nesting deeper
    than ``levels`` is refused on the way (the whole parse refuses it too), not walked to its end."""
    if pos >= len(body):
        raise _Unvouched
    first = body[pos]
    if first == 0x22:  # "
        match = _STRING.match(body, pos)
        if match is None:
            raise _Unvouched
        return match.end()
    if first not in (0x7B, 0x5B):  # a number, true, false or null
        match = _SCALAR.match(body, pos)
        if match is None:
            raise _Unvouched
        return match.end()
    depth = 0
    while True:
        match = _TO_BRACKET.match(body, pos)
        if match is None:
            raise _Unvouched
        depth += 1 if match.group(1) in (b"{", b"[") else -1
        pos = match.end()
        if depth == 0:
            return pos
        if depth > levels:
            raise _Unvouched


def _nested(body: Body, pos: int, stop: int, levels: int) -> bool:
    """Whether the value in ``body[pos:stop]`` has more opening brackets than ``levels`` (only then
    can it nest deeper, and only then is it walked). A mapped body has no ``count``: the value's
    bytes are copied (one value, not the body)."""
    if isinstance(body, mmap.mmap):
        piece = body[pos:stop]
        return piece.count(b"{") + piece.count(b"[") > levels
    return body.count(b"{", pos, stop) + body.count(b"[", pos, stop) > levels
