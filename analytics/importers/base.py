"""Parsing import files (CSV, JSON, JSON lines, YAML) into records that keep their line numbers."""

from __future__ import annotations

import csv
import importlib
import io
import json
import pkgutil
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import yaml

from analytics.errors import NUL_REFUSED, SourceError, yaml_mark
from analytics.storable_values import MAX_DEPTH, check_values

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


# Input limits (docs/security.md#input-limits): every import file is parsed in memory, so a hostile
# or broken file must fail with one line instead of exhausting memory, time or the stack.
MAX_FILE_BYTES = 512 * 1024 * 1024
MAX_YAML_ALIASES = 1_000  # *alias uses in one file
MAX_ALIAS_EXPANSION = 1_000_000  # values aliases add once expanded (a "billion laughs" adds 9^9)


_YAML_BASE: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when installed: 40x faster


class _LineLoader(_YAML_BASE):
    """SafeLoader that records the line of every mapping as ``__line__`` and refuses, before
    constructing anything, documents nested deeper than MAX_DEPTH, using more than
    MAX_YAML_ALIASES aliases, whose aliases would expand to more than MAX_ALIAS_EXPANSION extra
    values, or whose aliases refer to themselves."""

    def get_node(self) -> yaml.Node | None:
        node = super().get_node()
        if node is not None:
            _check_graph(node)
        return node


class _LimitError(Exception):
    """An input limit was exceeded (turned into a SourceError naming the file)."""


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _line(node: yaml.Node) -> str:
    return f"line {node.start_mark.line + 1}: "


def _check_graph(root: yaml.Node) -> None:
    """Depth, alias uses and the size the document would have once its aliases were expanded,
    without expanding them: a composed document is a graph in which an alias is a second edge to
    its anchor's node, so each node's expanded size and depth are computed once, iteratively."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    edges = 0
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        kids = _children(node)
        if done:
            on_path.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in kids)
            depth[key] = 1 + max((depth[id(c)] for c in kids), default=0)
            if depth[key] > MAX_DEPTH:
                raise _LimitError(f"{_line(node)}nested deeper than {MAX_DEPTH} levels")
            continue
        if key in size:
            continue
        on_path.add(key)
        stack.append((node, True))
        edges += len(kids)
        for child in kids:
            if id(child) in on_path:
                raise _LimitError(f"{_line(child)}a YAML alias refers to its own anchor")
            if id(child) not in size:
                stack.append((child, False))
        if len(on_path) > MAX_DEPTH:
            raise _LimitError(f"{_line(node)}nested deeper than {MAX_DEPTH} levels")
    aliases = edges - (len(size) - 1)  # edges to a node already reached by another edge
    if aliases > MAX_YAML_ALIASES:
        raise _LimitError(f"more than {MAX_YAML_ALIASES} YAML aliases")
    expanded = size[id(root)]
    if expanded - len(size) > MAX_ALIAS_EXPANSION:
        raise _LimitError(
            f"YAML aliases would expand to {expanded:,} values (limit: {MAX_ALIAS_EXPANSION:,} more "
            "than the file holds)"
        )


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    mapping: dict[str, Any] = {str(k): v for k, v in loader.construct_mapping(node, deep=True).items()}
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def strip_lines(value: Any, done: dict[int, Any] | None = None) -> Any:
    """Remove the ``__line__`` keys the YAML loader adds.

    ``done`` (by ``id``) holds what was stripped already: a YAML alias makes one object appear at
    every place that refers to it (a bounded "billion laughs" file at up to a million values), and
    the records of a file are the same objects as its documents' items, so each is stripped once and
    shared as the loader shared it. Every caller reads the result and none changes it in place."""
    if not isinstance(value, dict | list):
        return value
    seen = {} if done is None else done
    stripped = seen.get(id(value))
    if stripped is None:
        if isinstance(value, dict):
            stripped = {k: strip_lines(v, seen) for k, v in value.items() if k != "__line__"}
        else:
            stripped = [strip_lines(v, seen) for v in value]
        seen[id(value)] = stripped
    return stripped


def _json_loads(path: Path, text: str, what: str, line: int | None = None) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        where = f"line {line}: " if line else ""
        raise SourceError(f"{path}: {where}{what} nested deeper than {MAX_DEPTH} levels") from None


def parse_file(path: Path) -> ParsedFile:
    """Parse by content, not by extension; raise SourceError naming the file when unreadable.

    The format is decided by parsing: text starting with ``[`` or ``{`` is JSON (or JSON lines);
    anything else is YAML when it parses to mappings or lists, else CSV when its header has at
    least two columns. So a YAML file whose first line is a comment with a comma stays YAML.
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise SourceError(f"{path}: cannot read file: {exc.strerror}") from None
    if size > MAX_FILE_BYTES:
        raise SourceError(f"{path}: {size:,} bytes, more than the {MAX_FILE_BYTES:,} an import file may hold")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except OSError as exc:
        raise SourceError(f"{path}: cannot read file: {exc.strerror}") from None
    stripped = text.lstrip()
    if not stripped:
        raise SourceError(f"{path}: file is empty")
    return _parse_json(path, text) if stripped[0] in "[{" else _parse_yaml_or_csv(path, text)


def _parse_json(path: Path, text: str) -> ParsedFile:
    try:
        doc = _json_loads(path, text, "JSON")
    except json.JSONDecodeError as exc:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if all(ln.lstrip().startswith("{") for ln in lines):
            return _parse_jsonl(path, text)
        raise SourceError(f"{path}: line {exc.lineno}: malformed JSON: {exc.msg}") from None
    check_values(path, [doc])
    return _from_documents(path, "json", [doc], _json_lines(text, doc))


def _parse_yaml_or_csv(path: Path, text: str) -> ParsedFile:
    try:
        docs = [d for d in yaml.load_all(text, Loader=_LineLoader) if d is not None]  # noqa: S506
    except _LimitError as exc:
        raise SourceError(f"{path}: {exc}") from None
    except RecursionError:
        raise SourceError(f"{path}: nested deeper than {MAX_DEPTH} levels") from None
    except yaml.YAMLError as exc:
        if _looks_like_csv(text):
            return _parse_csv(path, text)
        where, problem = yaml_mark(exc)
        raise SourceError(f"{path}: {where + ': ' if where else ''}malformed YAML: {problem}") from None
    if docs and all(isinstance(d, dict | list) for d in docs):
        check_values(path, docs)  # mapping keys and escapes: the loader checked depth and aliases
        return _from_documents(path, "yaml", docs, None)
    if _looks_like_csv(text):
        return _parse_csv(path, text)
    raise SourceError(f"{path}: not a CSV, JSON or YAML file of records")


def _looks_like_csv(text: str) -> bool:
    """A header of at least two non-empty column names (parsed as CSV, not guessed from commas);
    a first line that is a YAML comment, directive or document marker is no CSV header."""
    if text.lstrip().startswith(("#", "%", "---")):
        return False
    try:
        header = next(csv.reader(io.StringIO(text)), [])
    except csv.Error:
        return False
    return len(header) >= 2 and all(name.strip() for name in header)


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
    done: dict[int, Any] = {}  # the stripped objects, shared by the documents and their records
    parsed = ParsedFile(path=path, format=fmt, documents=[strip_lines(d, done) for d in docs])
    for doc in docs:
        items = doc if isinstance(doc, list) else _record_list(doc)
        for i, item in enumerate(items):
            if isinstance(item, dict):
                parsed.lines.append(
                    item.get("__line__") or (lines[i] if lines and i < len(lines) else i + 1)
                )
                parsed.records.append(strip_lines(item, done))
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
            doc = _json_loads(path, raw, "JSON line", number)
        except json.JSONDecodeError as exc:
            raise SourceError(f"{path}: line {number}: malformed JSON line: {exc.msg}") from None
        try:
            check_values(path, [doc])
        except SourceError as exc:
            raise SourceError(str(exc).replace(f"{path}: ", f"{path}: line {number}: ", 1)) from None
        docs.append(doc)
        lines.append(number)
    records = [d for d in docs if isinstance(d, dict)]
    return ParsedFile(path=path, format="jsonl", documents=docs, records=records, lines=lines)


def _parse_csv(path: Path, text: str) -> ParsedFile:
    nul = text.find("\0")
    if nul >= 0:  # CSV has no escapes: only a raw NUL byte gives one
        line = text.count("\n", 0, nul) + 1
        raise SourceError(f"{path}: line {line}: {NUL_REFUSED}")
    # strict: a quote that is never closed, or text after a closing quote ("abc"def), is an error
    # with its line; the lenient reader took the rest of the file into one value (reported as
    # a missing value), or silently joined the pieces (abcdef). DuckDB's reader of large files
    # is strict too, so both paths refuse the same files.
    reader = csv.DictReader(io.StringIO(text), strict=True)
    records, lines = [], []
    start = 1  # where the record being read starts (the line after the previous one ended)
    try:
        _ = reader.fieldnames  # the header row
        start = reader.line_num + 1
        for row in reader:
            if None in row:
                raise SourceError(f"{path}: line {reader.line_num}: more values than header columns")
            records.append({k.strip(): (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k})
            lines.append(reader.line_num)
            start = reader.line_num + 1
    except csv.Error as exc:  # a field over csv.field_size_limit(), a quote never closed...
        raise SourceError(f"{path}: line {start}: malformed CSV: {_csv_reason(exc)}") from None
    return ParsedFile(path=path, format="csv", documents=[], records=records, lines=lines)


# What Python's csv module says, and what it means for the file's author.
_CSV_REASONS = {
    "unexpected end of data": "a quoted value that starts here is never closed",
    "',' expected after '\"'":
        "text after a closing quote (a quote inside a quoted value is written twice: \"\")",
}


def _csv_reason(exc: csv.Error) -> str:
    said = str(exc)
    if said.startswith("field larger than field limit"):
        # in a large file an unclosed quote runs into the limit before the end of the data
        return (f"a value longer than {csv.field_size_limit():,} characters (or a quoted value that "
                "starts here and is never closed)")
    return _CSV_REASONS.get(said, said)


# Streaming CSV (issue #16): a large CSV file is read by DuckDB's CSV reader, in parallel batches,
# instead of being held in memory as Python records. Only files that parse_file would certainly
# read as CSV take this path (see sniff_csv); a file that fails any check there is read by
# parse_file, which gives the exact error with its line.
STREAM_CSV_MIN_BYTES = 1024 * 1024
_SNIFF_CHUNK = 8 * 1024 * 1024
_YAML_START = set("-?:,[]{}#&*!|>'\"%@`")


@dataclass
class CsvSniff:
    """A CSV file that parse_file reads as CSV: its header and how many lines it has."""

    path: Path
    header: list[str]
    lines: int  # physical lines (the last one counted even without a final newline)


def _scan(path: Path, min_bytes: int | None, markers: tuple[bytes, ...],
          unsure: Callable[[bytes], bool] | None = None) -> tuple[bytes, int] | None:
    """The first 64 KiB of a large file and its physical line count (the last one counted even
    without a final newline), read in chunks (never whole); None when it is too small or too
    large, not UTF-8, starts with a BOM, holds a lone carriage return or one of ``markers`` (or a
    window ``unsure`` flags), the cases streaming leaves to parse_file."""
    import codecs

    try:
        size = path.stat().st_size
    except OSError:
        return None
    if size < (STREAM_CSV_MIN_BYTES if min_bytes is None else min_bytes) or size > MAX_FILE_BYTES:
        return None
    decoder = codecs.getincrementaldecoder("utf-8")()
    newlines = 0
    first = b""
    tail = b""
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(_SNIFF_CHUNK):
                # An ASCII chunk is valid UTF-8 unless the previous one ended inside a character
                # (the decoder then holds its first bytes): only then does it need decoding.
                if not chunk.isascii() or decoder.getstate()[0]:
                    decoder.decode(chunk)
                if not first:
                    first = chunk[:65536]
                window = tail + chunk
                if any(marker in window for marker in markers):
                    return None
                if unsure is not None and unsure(window):
                    return None
                if b"\r" in window:  # one byte: memchr; the counts search pairs
                    lone = window.count(b"\r") - window.count(b"\r\n")  # a final \r may pair next chunk
                    if lone > 1 or (lone == 1 and not window.endswith(b"\r")):
                        return None
                newlines += chunk.count(b"\n")
                tail = chunk[-4:] if unsure is None else chunk[-12:]
            decoder.decode(b"", final=True)
    except (OSError, UnicodeDecodeError):
        return None
    if tail.endswith(b"\r") or first.startswith(b"\xef\xbb\xbf"):
        return None
    return first, newlines + (0 if tail.endswith(b"\n") else 1)


def _csv_header(first: bytes) -> list[str] | None:
    """The header of a file starting with ``first`` when parse_file would read its first line as
    a CSV header (a plain YAML scalar of at least two named columns), else None."""
    head = first.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace")
    if not head.strip() or head[0] in _YAML_START or head[0].isspace() or ":" in head or "\t" in head:
        return None
    if '"' in head or not _looks_like_csv(head):
        return None
    return next(csv.reader(io.StringIO(head)))


def sniff_csv(path: Path, min_bytes: int | None = None) -> CsvSniff | None:
    """The file's header when it is a large CSV file that parse_file would read as CSV, read in
    chunks (never whole): UTF-8 without a BOM, no JSON start, a first line YAML reads as a plain
    scalar (no ``:``, no indicator), no YAML document marker or directive at a line start, no lone
    carriage return, and a CSV header of at least two named columns. None: use parse_file.
    The first line is tested before the whole file is scanned: the import asks this of every
    file, and a JSON-lines file of 200 MB took a 0.9 s scan to fail it."""
    try:
        with path.open("rb") as handle:
            if _csv_header(handle.read(65536)) is None:
                return None
    except OSError:
        return None
    scanned = _scan(path, min_bytes, (b"\n---", b"\n...", b"\n%", b"\0"))  # NUL: parse_file names its line
    if scanned is None:
        return None
    first, lines = scanned
    header = _csv_header(first)
    return CsvSniff(path=path, header=header, lines=lines) if header is not None else None


# Streaming JSON lines: bytes on which Python's json.loads or str.splitlines (what _parse_jsonl
# reads a line with) and DuckDB's JSON reader might disagree: control characters (json.loads
# refuses them in a string, splitlines breaks a line at \x0b \x0c \x1c-\x1e), U+0085, U+2028 and
# U+2029 (line breaks to splitlines, not to DuckDB), and a \uD800-\uDFFF escape not in a
# high-low pair (a lone surrogate is refused by the record path's value check; a pair split
# between two chunks also counts). Such a file takes the record path. Byte tests run in C over
# the whole chunk; the escape pattern only where a chunk holds a ``\ud``.
_JSONL_CONTROL = bytes([*range(0x0a), 0x0b, 0x0c, *range(0x0e, 0x20)])
_JSONL_BREAKS = (b"\xc2\x85", b"\xe2\x80\xa8", b"\xe2\x80\xa9")
_LONE_SURROGATE = re.compile(
    rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])"
    rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F]"
)


def _jsonl_unsure(window: bytes) -> bool:
    """Whether a window holds bytes of _JSONL_CONTROL, _JSONL_BREAKS or a lone surrogate escape.
    Searches for a byte pair cost several times a one-byte test (memchr) or ``isascii``: the
    breaks are not ASCII and an escape needs a backslash, so most windows skip those searches."""
    if len(window.translate(None, _JSONL_CONTROL)) != len(window):
        return True
    if not window.isascii() and any(mark in window for mark in _JSONL_BREAKS):
        return True
    if b"\\u0000" in window:  # a NUL the record path refuses (or an escaped backslash before "u0000")
        return True
    return (b"\\" in window and (b"\\ud" in window or b"\\uD" in window)
            and _LONE_SURROGATE.search(window) is not None)


@dataclass
class JsonlSniff:
    """A JSON-lines file that parse_file reads as JSON lines, and its physical line count."""

    path: Path
    lines: int
    # every key any line uses, with the JSON types of its values (set by detect_jsonl_kind)
    types: dict[str, set[str]] = field(default_factory=dict)


def sniff_jsonl(path: Path, min_bytes: int | None = None) -> JsonlSniff | None:
    """A large file whose first line is one JSON object and whose second line starts another, so
    that parse_file reads it as JSON lines (two values are no JSON document), read in chunks:
    UTF-8 without a BOM, no lone carriage return, nothing of _JSONL_UNSURE. None: use parse_file."""
    scanned = _scan(path, min_bytes, (), _jsonl_unsure)
    if scanned is None:
        return None
    first, lines = scanned
    parts = first.split(b"\n", 2)
    if len(parts) < 3 or not parts[1].lstrip().startswith(b"{"):
        return None
    try:
        doc = json.loads(parts[0])
    except (ValueError, RecursionError):
        return None
    return JsonlSniff(path=path, lines=lines) if isinstance(doc, dict) else None


def detect_jsonl_kind(sniff: JsonlSniff) -> ModuleType | None:
    """The kind parse_file + detect_kind would give the file, when that kind can stream: one pass
    of DuckDB's JSON reader collects every key (the kind is decided by the union of the records'
    keys). None when a line is no JSON object DuckDB reads, a line is blank, a key repeats within
    an object or is not lower-case without surrounding space, or a value is a list or an object:
    the record path reads those (and names a bad line)."""
    import tempfile

    import duckdb

    from analytics.store.connection import scratch_connection

    spill = tempfile.TemporaryDirectory(prefix="gitops-dora-sniff-")
    con = scratch_connection(spill.name, memory_limit="160MB")
    try:
        # One scan, grouped by each line's keys and value types (a file has few of those): how
        # many lines, whether all are objects without nested values, and every key's types.
        groups = con.execute(
            "SELECT keys, types, count(*), bool_and(starts_with(ltrim(json), '{')) "
            "FROM (SELECT json, json_keys(json) AS keys, json_type(json, '$.*') AS types "
            "      FROM read_ndjson_objects($1)) GROUP BY ALL", [str(sniff.path)]).fetchall()
    except duckdb.Error:
        return None
    finally:
        con.close()
        spill.cleanup()
    if sum(int(g[2]) for g in groups) != sniff.lines or not all(g[3] for g in groups):
        return None
    types: dict[str, set[str]] = {}
    for keys, kinds, _count, _objects in groups:
        keys, kinds = list(keys or []), list(kinds or [])
        if len(set(keys)) != len(keys) or len(keys) != len(kinds):  # a key repeated in a line
            return None
        for key, kind in zip(keys, kinds, strict=True):
            types.setdefault(str(key), set()).add(str(kind))
    if any(kind in ("OBJECT", "ARRAY") for kinds in types.values() for kind in kinds):
        return None
    keys = sorted(types)
    if any(k != k.strip().lower() for k in keys):
        return None
    probe = ParsedFile(path=sniff.path, format="jsonl", documents=[],
                       records=[dict.fromkeys(keys, "")], lines=[1])
    try:
        module = detect_kind(probe)
    except SourceError:
        return None
    if not hasattr(module, "load_jsonl_stream"):
        return None
    sniff.types = types
    return module


def detect_csv_kind(sniff: CsvSniff) -> ModuleType | None:
    """The kind parse_file + detect_kind would give the file (CSV records all carry every header
    column, so one record of the header's keys decides), when that kind can stream."""
    probe = ParsedFile(path=sniff.path, format="csv", documents=[],
                       records=[{name.strip(): "" for name in sniff.header if name}], lines=[2])
    try:
        module = detect_kind(probe)
    except SourceError:
        return None
    return module if hasattr(module, "load_csv_stream") else None


def check_event_times(path: Path, events: list[dict[str, Any]]) -> None:
    """Reconciler observations whose time lies outside the years 1970-2100 reject the file, as
    such a time in an incident or deployment file does (see ``_fields.timestamp``)."""
    from analytics.timestamps import in_range

    for event in events:
        for key in ("occurred_at", "started_at"):
            value = event.get(key)
            if isinstance(value, datetime) and value.tzinfo is not None and not in_range(value):
                obj = "/".join(str(event.get(k) or "") for k in ("kind", "namespace", "name"))
                raise SourceError(
                    f"{path}: {obj}: {key} {value.isoformat()} is outside the years 1970-2100; "
                    "nothing from this file was imported"
                )


@contextmanager
def shape_errors(path: Path, kind: str) -> Iterator[None]:
    """Objects of the wrong shape (a list where a mapping belongs, a number for a name) that the
    reconciler readers trip over become one error line naming the file, not a traceback."""
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SourceError(f"{path}: not a valid {kind} file ({type(exc).__name__}: {detail[:200]}); "
                          "nothing from this file was imported") from None


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
