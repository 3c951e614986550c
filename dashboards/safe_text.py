"""Showing data as plain text: every name, title, message or URL parameter the dashboard puts into
Markdown (``st.markdown``, ``st.caption``, ``st.warning``/``error``/``info``/``success``, headers,
metric labels, tab and expander labels, badges) or into a Plotly figure (titles, legends, axis
labels, hover text) goes through one of these functions first.

Streamlit renders GitHub-flavoured Markdown plus its own extensions, so a service named
``[login](https://evil.example/login)`` would otherwise become a link, ``![x](http://host/pixel)``
an image fetched by every visitor's browser, and ``:red[...]``, ``$...$`` or ``:smile:`` colours,
formulas or emoji. :func:`md` turns any value into Markdown that renders as exactly its text
(whitespace runs shown as one space): the characters Markdown or Streamlit act on are
backslash-escaped, and a word that would be changed after parsing, where escapes no longer count
(a URL, ``www.``, an e-mail address, an emoji shortcode, ``->`` and the other typographic
replacements), is put in an inline code span instead, where nothing is interpreted.

One cosmetic gap remains: Streamlit replaces ':material/' in the raw source, code spans included,
so a single word holding both a URL and ':material/' shows ':material_' there (still as text).
"""

from __future__ import annotations

import html
import re
from typing import Any

import pandas as pd

# Escaped anywhere: code, emphasis, strikethrough, links/images/directives, HTML/autolinks, entities,
# math, Streamlit's :directives: and :material/icons:, table pipes.
_ALWAYS = re.compile(r"[\\`*_~\[\]<>&$:|]")
# Block syntax only counts at the start of a line: a word made of these is escaped wherever it is.
_BLOCK_WORD = re.compile(r"^(?:[-+=#]+|\d{1,9}[.)])$")
# Words that GFM autolinks, remark-emoji or Streamlit's typographic plugin rewrite in the parsed text.
_CODE_WORD = re.compile(r"(?i)://|www\.|@|:(?!\d[\d+-]*:)[\w+-]+:|^(?:<->|->|<-|--|>=|<=|~=)$")
# Streamlit rewrites ':material/' in the raw source before parsing; '\:material\/' survives.
_MATERIAL = re.compile(r"(?i)(?<=material)/")


def code_span(text: str) -> str:
    """``text`` as one inline code span (a fence longer than any backtick run inside)."""
    text = " ".join(text.split())
    if not text:
        return ""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text[0] in "` " or text[-1] in "` " else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _word(word: str) -> str:
    if _CODE_WORD.search(word):
        return code_span(word)
    escaped = _ALWAYS.sub(lambda m: "\\" + m.group(0), word)
    if "material" in word.lower():
        escaped = _MATERIAL.sub(r"\\/", escaped)
    if _BLOCK_WORD.match(word):
        escaped = escaped[:-1] + "\\" + escaped[-1] if escaped[-1] in ".)" else "\\" + escaped
    return escaped


def md(value: Any) -> str:
    """Markdown that Streamlit shows as exactly ``str(value)`` (on one line; None shows as '')."""
    if value is None:
        return ""
    return " ".join(_word(word) for word in str(value).split())


def md_code(value: Any) -> str:
    """``value`` as an inline code span (for paths and commands), shown literally. Streamlit rewrites
    ':material/' even inside code spans, so such a value is escaped word by word instead."""
    text = "" if value is None else str(value)
    return md(text) if ":material/" in text.lower() else code_span(text)


def plot_text(value: Any) -> str:
    """Text for a Plotly title, legend, axis label or hover: Plotly reads ``<a href>``, ``<b>``,
    ``<br>`` and entities in them, so ``<``, ``>`` and ``&`` become entities."""
    return html.escape("" if value is None else str(value), quote=False)


def plot_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with every text cell passed through :func:`plot_text` (numbers and times untouched)."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or str(out[col].dtype).startswith(("str", "string")):
            out[col] = out[col].map(lambda v: plot_text(v) if isinstance(v, str) else v)
    return out


def file_part(value: Any, *, limit: int = 80) -> str:
    """A piece of a download file name: letters, digits, '.', '_' and '-' only, never '..'."""
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", "" if value is None else str(value))
    text = re.sub(r"\.{2,}", "_", text).strip("._")
    return text[:limit] or "item"
