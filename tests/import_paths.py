"""The two ways an incidents file reaches the store, for tests that compare them: the record path
(parse_file + incidents.load) and a streamed path (a sniff, then a kind's ``load_*_stream``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from analytics.config import Config
from analytics.importers import incidents
from analytics.importers.base import parse_file
from analytics.store.connection import write_unit
from analytics.store.location import resolve


def streamed(db: Path, src: Path, sniff_file: Callable[..., Any], detect: Callable[[Any], Any],
             load: Callable[..., Any]) -> str | None:
    """The summary line of ``load`` (None: the file needs the record path), in one write unit,
    for a file ``sniff_file`` takes (whatever its size) and ``detect`` finds incidents."""
    sniff = sniff_file(src, min_bytes=0)
    assert sniff is not None
    assert detect(sniff) is incidents

    def work(session: Any) -> str | None:
        summary = load(session, sniff, Config())
        return summary.line() if summary else None

    return write_unit(resolve(str(db)), work, source="import:incidents", target=str(src))


def exact(db: Path, src: Path, fmt: str | None = None) -> str:
    """The record path's summary line; ``fmt``: the format parse_file must have read."""
    parsed = parse_file(src)
    assert fmt is None or parsed.format == fmt
    return write_unit(resolve(str(db)), lambda s: incidents.load(s, parsed, Config()).line(),
                      source="import:incidents", target=str(src))
