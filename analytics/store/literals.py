"""Statement parameters written into the SQL as literals.

DuckDB's Python binding imports pandas and pyarrow (about 0.4 s of CPU) the first time a
statement binds a parameter, whatever its type. A short command such as ``collect git`` would pay
that for a handful of small values, so the store and the collectors on that path write their
values into the statement instead (:func:`inline`). Values that have no exact literal form, or
lists too long to parse cheaply, are bound as before: the result is the same either way, only the
cost differs.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

# Longer lists are bound: parsing a literal of tens of thousands of constants costs more than the
# import it saves, and a caller with that much data has paid for pandas already.
MAX_INLINE_ITEMS = 5000
# Nor is a statement whose literals would add more than this many characters to it: the SQL text
# would hold a second copy of large values (a webhook payload) for the parser.
MAX_INLINE_CHARS = 1 << 20
# Parsing a literal list costs about 25-55 us an item (4 lists of 1,000 items: 55 ms literal, 11 ms
# bound), so literals only pay while the import they avoid is still ahead. Once a process has
# written this many list items as literals in all (a long-lived webhook receiver, an import of many
# batches), or once pandas is imported anyway, a statement with more than SMALL_LIST_ITEMS list items
# is bound instead.
PROCESS_INLINE_BUDGET = 20_000
SMALL_LIST_ITEMS = 50
_inlined_items = 0


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class NotInlinable(ValueError):
    """A value without an exact SQL literal here; the statement binds its parameters instead."""


def sql_identifier(name: str) -> str:
    """``name`` as a double-quoted SQL identifier (a table, column or database name)."""
    return '"' + name.replace('"', '""') + '"'


def sql_string(text: str) -> str:
    """A SQL string literal: the store's one quoting of text written into a statement (paths,
    settings, values)."""
    return "'" + text.replace("'", "''") + "'"


def sql_literal(value: Any) -> str:
    """The SQL literal of ``value``. Like a bound parameter, a string or integer literal takes its
    type from where it stands (``started_at = '2026-...'`` compares timestamps)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    # in parentheses where a sign or cast would otherwise bind to what follows: "$a::VARCHAR" with
    # -5 written bare is -('5'::VARCHAR), an error, where the bound value gives '-5'
    if isinstance(value, int):
        return str(value) if value >= 0 else f"({value})"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NotInlinable("a non-finite float")
        return f"({value!r}::DOUBLE)"
    if isinstance(value, str):
        if "\0" in value:
            raise NotInlinable("NUL in a string")
        return sql_string(value)
    if isinstance(value, datetime):
        kind = "TIMESTAMPTZ" if value.tzinfo is not None else "TIMESTAMP"
        return f"{kind} {sql_string(value.isoformat(sep=' '))}"
    if isinstance(value, date):
        return f"DATE {sql_string(value.isoformat())}"
    if isinstance(value, timedelta):  # bound, an INTERVAL of days and microseconds (no months)
        return f"(to_days({value.days}) + to_microseconds({value.seconds * 1_000_000 + value.microseconds}))"
    if isinstance(value, list | tuple):
        if len(value) > MAX_INLINE_ITEMS:
            raise NotInlinable("a long list")
        if len({_scalar_kind(item) for item in value if item is not None}) > 1:
            # a literal list of mixed or nested items fails to bind ("Cannot deduce template type")
            # where the bound list is converted: a hostile payload's [false, []] answered 503
            raise NotInlinable("a list of mixed items")
        return "[" + ", ".join(sql_literal(item) for item in value) + "]"
    raise NotInlinable(f"a {type(value).__name__}")


def _scalar_kind(item: Any) -> object:
    """What a list item's literal type is decided by; a nested list never shares it."""
    if isinstance(item, list | tuple):
        return object()
    if isinstance(item, datetime):
        return (datetime, item.tzinfo is not None)
    return type(item)


def inline(sql: str, params: Sequence[Any] | Mapping[str, Any] | None) -> str:
    """``sql`` with its ``?`` and ``$n`` placeholders (or, for a mapping, its ``$name`` ones)
    replaced by the literals of ``params``.

    Raises :class:`NotInlinable` when a value has no literal form here or the placeholders do not
    match the parameters. Quoted strings, quoted identifiers and comments are skipped, so a ``?``
    inside them is left alone; a statement with a dollar-quoted string is bound instead.
    """
    if params is None:
        return sql
    named = isinstance(params, Mapping)
    values: dict[int | str, Any] = {}
    values.update(params.items() if isinstance(params, Mapping) else enumerate(params))
    literals: dict[int | str, str] = {}
    size = [0]

    def literal(k: int | str) -> str:
        if k not in values:
            raise NotInlinable("a placeholder without a parameter")
        if k not in literals:
            literals[k] = sql_literal(values[k])
            size[0] += len(literals[k])
            if size[0] > MAX_INLINE_CHARS:
                raise NotInlinable("values too large for literals")
        return literals[k]

    out: list[str] = []
    i, n, positional, numbered = 0, len(sql), 0, False
    while i < n:
        ch = sql[i]
        if ch in "'\"":
            end = i + 1
            while True:
                end = sql.find(ch, end)
                if end < 0:
                    raise NotInlinable("an unterminated quote")
                if end + 1 < n and sql[end + 1] == ch:
                    end += 2
                    continue
                break
            out.append(sql[i:end + 1])
            i = end + 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            out.append(sql[i:end])
            i = end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            if end < 0:
                raise NotInlinable("an unterminated comment")
            out.append(sql[i:end + 2])
            i = end + 2
        elif ch == "?":
            if named:
                raise NotInlinable("a ? placeholder with named parameters")
            out.append(literal(positional))
            positional += 1
            i += 1
        elif ch == "$" and i + 1 < n and sql[i + 1].isdigit() and not named:
            end = i + 1
            while end < n and sql[end].isdigit():
                end += 1
            out.append(literal(int(sql[i + 1:end]) - 1))
            numbered = True
            i = end
        elif ch == "$" and named and (name := _NAME.match(sql, i + 1)) \
                and not sql.startswith("$", name.end()):
            out.append(literal(name.group()))
            i = name.end()
        elif ch == "$":  # a dollar-quoted string, whose content this scan would not skip
            raise NotInlinable("a dollar-quoted string")
        else:
            out.append(ch)
            i += 1
    if positional and numbered or positional and positional != len(values):
        raise NotInlinable("placeholders and parameters do not match")
    if named and len(literals) != len(values):  # DuckDB refuses a name the statement does not use
        raise NotInlinable("a named parameter the statement does not use")
    return "".join(out)


def execute(con: Any, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> Any:
    """``con.execute(sql, params)`` with the parameters written as literals where they can be."""
    global _inlined_items
    if params is None:
        return con.execute(sql)
    items = _list_items(params)
    if items > SMALL_LIST_ITEMS and (_binding_paid() or _inlined_items + items > PROCESS_INLINE_BUDGET):
        return con.execute(sql, params)
    try:
        text = inline(sql, params)
    except NotInlinable:
        return con.execute(sql, params)
    _inlined_items += items
    return con.execute(text)


def _list_items(params: Sequence[Any] | Mapping[str, Any]) -> int:
    values = params.values() if isinstance(params, Mapping) else params
    return sum(len(v) for v in values if isinstance(v, list | tuple))


def _binding_paid() -> bool:
    """Whether this process has imported what DuckDB's binding imports: then binding a list is the
    cheaper way."""
    return "pandas" in sys.modules
