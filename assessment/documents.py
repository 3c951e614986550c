"""Files and YAML documents as the detectors see them.

Every YAML document keeps its raw text and its first line, so evidence can point at a line. Helm
templates (``{{ }}``) are not YAML: their ``apiVersion``/``kind`` are read from the text, and the
body is parsed best-effort after blanking the template actions, so a templated Rollout or
Application is still recognised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

import yaml

try:
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader

YAML_SUFFIXES = (".yaml", ".yml")
_SEPARATOR = re.compile(r"^(---|\.\.\.)(\s.*)?$")
_ACTION_ONLY_LINE = re.compile(r"^\s*(\{\{.*?\}\}\s*)+$")
_ACTION = re.compile(r"\{\{.*?\}\}")
_TOP_KIND = re.compile(r"^kind:\s*[\"']?([A-Za-z0-9]+)", re.MULTILINE)
_TOP_API = re.compile(r"^apiVersion:\s*[\"']?([A-Za-z0-9.\-/]+)", re.MULTILINE)
# metadata.name at the usual two-space indent (deeper `name:` keys belong to labels or owners): the
# rest of its line, read as the name when it is one plain word (quoted or not, a comment after it)
_META_NAME = re.compile(r"^metadata:[^\n]*\n(?:[ \t]+[^\n]*\n)*?  name:[ \t]*([^\n]*)", re.MULTILINE)
_PLAIN_NAME = re.compile(r"""^(["']?)([^\s"'#{}]+)\1\s*(#.*)?$""")
_UNPARSED: Any = object()


@lru_cache(maxsize=8192)
def _pattern(pattern: str) -> re.Pattern[str]:
    """Compiled once: per-image patterns would otherwise churn the re module's small cache."""
    return re.compile(pattern, re.MULTILINE)


@dataclass
class Document:
    """One YAML document of a file (or one object of a cluster dump).

    The body is parsed on first use: apiVersion, kind and name come from the text, so detectors
    that only need the kind (most documents, for most detectors) never pay for a YAML parse.
    """

    path: str
    line: int  # 1-based line where the document's text starts
    text: str
    templated: bool = False
    object_ref: str | None = None  # set for cluster objects, which have no file line
    preset: Any = field(default=_UNPARSED, repr=False)  # an already-parsed body (cluster objects)

    @cached_property
    def body(self) -> Any:
        if self.preset is not _UNPARSED:
            return self.preset
        return _parse(self.text, self.templated) if self.text.strip() else None

    def _from_body(self, key: str) -> str | None:
        body = self.body
        value = body.get(key) if isinstance(body, dict) else None
        return value if isinstance(value, str) else None

    @cached_property
    def api_version(self) -> str | None:
        m = _TOP_API.search(self.text)
        return m.group(1) if m else self._from_body("apiVersion")

    @cached_property
    def kind(self) -> str | None:
        m = _TOP_KIND.search(self.text)
        return m.group(1) if m else self._from_body("kind")

    @cached_property
    def group(self) -> str:
        """API group of apiVersion ("" for the core group)."""
        api = self.api_version or ""
        return api.rsplit("/", 1)[0] if "/" in api else ""

    @cached_property
    def name(self) -> str:
        m = _META_NAME.search(self.text)
        raw = m.group(1).strip() if m else ""
        if plain := _PLAIN_NAME.match(raw):
            return plain.group(2)
        if "{{" in raw:  # a chart template's name is its expression, not the parse's placeholder
            return raw if len(raw) <= 80 else raw[:79] + "…"
        meta = self.body.get("metadata") if isinstance(self.body, dict) else None
        if isinstance(meta, dict) and meta.get("name") is not None:
            return str(meta["name"])
        return "?"

    @property
    def is_object(self) -> bool:
        return bool(self.api_version and self.kind)

    @property
    def spec(self) -> dict[str, Any]:
        spec = self.body.get("spec") if isinstance(self.body, dict) else None
        return spec if isinstance(spec, dict) else {}

    @property
    def ref(self) -> str:
        return self.object_ref or f"{self.kind}/{self.name}"

    def line_of(self, pattern: str, from_line: int | None = None) -> int:
        """Line of the first match of ``pattern`` (multiline regex) at or after the file line
        ``from_line``, else the ``kind:`` line."""
        start = 0
        if from_line is not None and from_line > self.line:
            start = _offset_of_line(self.text, from_line - self.line)
        m = _pattern(pattern).search(self.text, start)
        if m is None:
            m = _TOP_KIND.search(self.text)
        if m is None:
            return self.line
        return self.line + self.text.count("\n", 0, m.start())

    @property
    def nodes(self) -> yaml.Node | None:
        """The document's YAML node tree, with every key's position (for detectors that need the
        extent of a section, not only the line of a key); None for cluster objects and unparsable
        text."""
        return self._nodes

    @cached_property
    def _nodes(self) -> yaml.Node | None:
        """The document as a YAML node tree, which keeps every key's position (composed on first
        use: only documents that yield a finding pay for it)."""
        if self.preset is not _UNPARSED or not self.text.strip():
            return None
        source = _sanitize_template(self.text) if self.templated else self.text
        try:
            return yaml.compose(source, Loader=_Loader)
        except (yaml.YAMLError, ValueError, TypeError, RecursionError):
            return None

    def line_at(self, *path: str | int, fallback: str | None = None) -> int:
        """The exact line of the key (or list item) at ``path``: ``line_at("spec", "rules", 1,
        "mutate")`` is the second rule's ``mutate:``, wherever the first one is. A regex search finds
        the first match in the document, so a second match would get the first one's line.

        When the path is not in the document (an unparsable template, a cluster object), the line
        of ``fallback`` (a regex, see :meth:`line_of`), else the ``kind:`` line."""
        node = self._nodes
        found: int | None = None
        for step in path:
            if isinstance(node, yaml.MappingNode) and isinstance(step, str):
                for key, value in node.value:
                    if isinstance(key, yaml.ScalarNode) and key.value == step:
                        found, node = key.start_mark.line, value
                        break
                else:
                    node = None
            elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and 0 <= step < len(
                node.value
            ):
                node = node.value[step]
                found = node.start_mark.line
            else:
                node = None
            if node is None:
                break
        if node is not None and found is not None:
            return self.line + found
        return self.line_of(fallback or r"^kind:")

    def first_line(self, *keys: str) -> int:
        """The line of the first of ``keys`` present at the top level, else of the first key (not a
        comment or blank line above it), else the document's first line. Top-level keys start at
        column 0, where nothing else can (block scalars are indented), so a regex is exact here."""
        for key in keys:
            m = _pattern(rf"^[\"']?{re.escape(key)}[\"']?[ \t]*:(?=[ \t]|$)").search(self.text)
            if m is not None:
                return self.line + self.text.count("\n", 0, m.start())
        m = _FIRST_KEY.search(self.text)
        return self.line + self.text.count("\n", 0, m.start()) if m else self.line


_FIRST_KEY = re.compile(r"^(?![#%]|---|\.\.\.)\S", re.MULTILINE)


def _offset_of_line(text: str, index: int) -> int:
    """Character offset where the 0-based line ``index`` of ``text`` starts (len(text) past the end)."""
    offset = 0
    for _ in range(index):
        nl = text.find("\n", offset)
        if nl < 0:
            return len(text)
        offset = nl + 1
    return offset


def _sanitize_template(text: str) -> str:
    lines = []
    for line in text.split("\n"):
        if _ACTION_ONLY_LINE.match(line):
            lines.append("")  # keep numbering; control-flow lines are not data
        else:
            lines.append(_ACTION.sub("TEMPLATED", line))
    return "\n".join(lines)


def _parse(text: str, templated: bool) -> Any:
    source = _sanitize_template(text) if templated else text
    try:
        return yaml.load(source, Loader=_Loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError:
        return None
    except (ValueError, TypeError, RecursionError):
        return None


def split_documents(path: str, text: str) -> list[Document]:
    """Split on ``---`` lines, remembering where each document starts."""
    docs: list[Document] = []
    start, chunk = 1, list[str]()
    for number, line in enumerate(text.split("\n"), start=1):
        if _SEPARATOR.match(line):
            docs.append(_make(path, start, chunk))
            start, chunk = number + 1, []
        else:
            chunk.append(line)
    docs.append(_make(path, start, chunk))
    return [d for d in docs if d.text.strip()]


def _make(path: str, start: int, lines: list[str]) -> Document:
    text = "\n".join(lines)
    return Document(path=path, line=start, text=text, templated="{{" in text)


@dataclass
class SourceFile:
    """One file of a tree: its path, text and (for YAML) its documents."""

    path: str
    text: str
    _docs: list[Document] | None = field(default=None, repr=False)

    @property
    def basename(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def dirname(self) -> str:
        return self.path.rsplit("/", 1)[0] if "/" in self.path else ""

    @property
    def is_yaml(self) -> bool:
        return self.path.endswith(YAML_SUFFIXES)

    @property
    def documents(self) -> list[Document]:
        if self._docs is None:
            self._docs = split_documents(self.path, self.text) if self.is_yaml else []
        return self._docs

    def line_of(self, pattern: str) -> int | None:
        m = _pattern(pattern).search(self.text)
        return None if m is None else self.text.count("\n", 0, m.start()) + 1
