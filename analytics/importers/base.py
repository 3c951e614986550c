"""Parsing import files (CSV, JSON, JSON lines, YAML) into records that keep their line numbers."""

from __future__ import annotations

import csv
import importlib
import io
import json
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import yaml

from analytics.errors import SourceError

FileFormat = Literal["csv", "json", "jsonl", "yaml"]


@dataclass
class ParsedFile:
    path: Path
    format: FileFormat
    documents: list[Any]                                   # parsed top-level documents (JSON/YAML/JSONL)
    records: list[dict[str, Any]] = field(default_factory=list)  # flat records (CSV rows, or list items)
    lines: list[int] = field(default_factory=list)         # 1-based source line of each record


@dataclass
class ImportSummary:
    kind: str
    path: Path
    rows: int = 0
    naive_timestamps: int = 0          # timestamps without a zone, read as UTC
    unknown_revisions: int = 0
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        extra = []
        if self.naive_timestamps:
            extra.append(f"{self.naive_timestamps} timestamps without a zone read as UTC")
        if self.unknown_revisions:
            extra.append(f"{self.unknown_revisions} revisions in an unknown format kept verbatim")
        extra.extend(self.notes)
        tail = f" ({'; '.join(extra)})" if extra else ""
        return f"{self.path}: imported {self.rows} {self.kind} rows{tail}"


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that records the line of every mapping as ``__line__``."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    mapping: dict[str, Any] = {str(k): v for k, v in loader.construct_mapping(node, deep=True).items()}
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def strip_lines(value: Any) -> Any:
    """Remove the ``__line__`` keys the YAML loader adds."""
    if isinstance(value, dict):
        return {k: strip_lines(v) for k, v in value.items() if k != "__line__"}
    if isinstance(value, list):
        return [strip_lines(v) for v in value]
    return value


def parse_file(path: Path) -> ParsedFile:
    """Parse by content, not by extension; raise SourceError naming the file when unreadable."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path}: cannot read file: {exc}") from None
    stripped = text.lstrip()
    if not stripped:
        raise SourceError(f"{path}: file is empty")
    if stripped[0] in "[{":
        try:
            doc = json.loads(text)
            return _from_documents(path, "json", [doc], _json_lines(text, doc))
        except json.JSONDecodeError as exc:
            lines = [ln for ln in text.splitlines() if ln.strip()]
            if all(ln.lstrip().startswith("{") for ln in lines):
                return _parse_jsonl(path, text)
            raise SourceError(f"{path}: line {exc.lineno}: malformed JSON: {exc.msg}") from None
    first = stripped.splitlines()[0]
    if "," in first and ":" not in first.split(",")[0]:
        return _parse_csv(path, text)
    try:
        docs = [d for d in yaml.load_all(text, Loader=_LineLoader) if d is not None]  # noqa: S506
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise SourceError(f"{path}: {where}malformed YAML: {getattr(exc, 'problem', exc)}") from None
    if not docs or not all(isinstance(d, dict | list) for d in docs):
        raise SourceError(f"{path}: not a CSV, JSON or YAML file of records")
    return _from_documents(path, "yaml", docs, None)


def _json_lines(text: str, doc: Any) -> list[int] | None:
    """Best-effort line numbers for a top-level JSON array of objects (one object per line or block)."""
    if not isinstance(doc, list):
        return None
    lines, depth, start = [], 0, 0
    in_str = esc = False
    line = 1
    for ch in text:
        if ch == "\n":
            line += 1
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth == 2:
                start = line
        elif ch in "]}":
            if depth == 2:
                lines.append(start)
            depth -= 1
    return lines if len(lines) == len(doc) else None


def _from_documents(path: Path, fmt: FileFormat, docs: list[Any], lines: list[int] | None) -> ParsedFile:
    parsed = ParsedFile(path=path, format=fmt, documents=[strip_lines(d) for d in docs])
    for doc in docs:
        items = doc if isinstance(doc, list) else _record_list(doc)
        for i, item in enumerate(items):
            if isinstance(item, dict):
                parsed.lines.append(
                    item.get("__line__") or (lines[i] if lines and i < len(lines) else i + 1)
                )
                parsed.records.append(strip_lines(item))
    return parsed


def _record_list(doc: dict[str, Any]) -> list[Any]:
    """A mapping holding records under a single list key (e.g. ``{"incidents": [...]}``, a List's items)."""
    for key in ("items", "incidents", "deployments", "records"):
        if isinstance(doc.get(key), list):
            return list(doc[key])
    return [doc]


def _parse_jsonl(path: Path, text: str) -> ParsedFile:
    docs, lines = [], []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            docs.append(json.loads(raw))
        except json.JSONDecodeError as exc:
            raise SourceError(f"{path}: line {number}: malformed JSON line: {exc.msg}") from None
        lines.append(number)
    records = [d for d in docs if isinstance(d, dict)]
    return ParsedFile(path=path, format="jsonl", documents=docs, records=records, lines=lines)


def _parse_csv(path: Path, text: str) -> ParsedFile:
    reader = csv.DictReader(io.StringIO(text))
    records, lines = [], []
    for row in reader:
        if None in row:
            raise SourceError(f"{path}: line {reader.line_num}: more values than header columns")
        records.append({k.strip(): (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k})
        lines.append(reader.line_num)
    return ParsedFile(path=path, format="csv", documents=[], records=records, lines=lines)


def kind_modules() -> list[ModuleType]:
    """Every importer module (all modules of this package except ``base``), in name order."""
    import analytics.importers as pkg

    modules = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if info.name != "base" and not info.name.startswith("_"):
            modules.append(importlib.import_module(f"{pkg.__name__}.{info.name}"))
    return [m for m in modules if hasattr(m, "KIND") and hasattr(m, "detect") and hasattr(m, "load")]


def detect_kind(parsed: ParsedFile) -> ModuleType:
    for module in kind_modules():
        if module.detect(parsed):
            return module
    kinds = ", ".join(m.KIND for m in kind_modules()) or "none installed"
    raise SourceError(f"{parsed.path}: cannot recognise this file's kind (known kinds: {kinds})")
