"""YAML aliases are stripped of their loader line numbers once per object, not once per reference
(analytics/importers/base.strip_lines): a bounded "billion laughs" file refers to one subtree up to
a million times, and a file's records are the same objects as its documents' items."""

from __future__ import annotations

from pathlib import Path

from analytics.importers.base import parse_file, strip_lines


def _no_line_keys(value: object) -> bool:
    if isinstance(value, dict):
        return "__line__" not in value and all(_no_line_keys(v) for v in value.values())
    if isinstance(value, list):
        return all(_no_line_keys(v) for v in value)
    return True


def test_an_aliased_subtree_is_stripped_once_and_shared(tmp_path: Path) -> None:
    path = tmp_path / "incidents.yaml"
    path.write_text(
        "shared: &labels {team: payments, tier: gold}\n"
        "levels: &levels [*labels, *labels, *labels]\n"
        "incidents:\n"
        "  - {id: i1, created_at: '2026-01-01T00:00:00Z', labels: *labels, more: *levels}\n"
        "  - {id: i2, created_at: '2026-01-02T00:00:00Z', labels: *labels}\n")
    parsed = parse_file(path)
    assert _no_line_keys(parsed.documents) and _no_line_keys(parsed.records)
    first, second = parsed.records
    assert first["labels"] == {"team": "payments", "tier": "gold"}
    # one stripped object wherever the loader had one object
    assert first["labels"] is second["labels"] is first["more"][0] is first["more"][2]
    # the records are the documents' items, not a second copy
    (document,) = parsed.documents
    assert document["incidents"][0] is first
    assert [r["id"] for r in parsed.records] == ["i1", "i2"]


def test_separate_calls_do_not_share() -> None:
    """Without a shared ``done``, each call strips anew: no object outlives the file it came from."""
    inner = {"a": 1, "__line__": 3}
    doc = {"x": inner, "y": inner, "__line__": 1}
    one, two = strip_lines(doc), strip_lines(doc)
    assert one == two == {"x": {"a": 1}, "y": {"a": 1}}
    assert one["x"] is one["y"] and one["x"] is not two["x"]
