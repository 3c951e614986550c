"""Scheduled reports: one tidy row per group and period, written atomically as CSV, JSON or Markdown.

The rows are the ``metrics`` groups (the same engine call as ``metrics --trend``), with the three
dimension columns always present and the ``ratings`` object flattened into ``<metric>_rating`` (the
benchmark cluster) and ``<metric>_bucket`` (the survey answer bucket) columns, so a spreadsheet or a
BI tool can read the file without parsing nested JSON.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from analytics.errors import UserError

_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
DIMENSION_COLUMNS = ("service", "team", "environment")
PERIOD_COLUMNS = ("period_start", "period_end")


class ReportFormat(StrEnum):
    csv = "csv"
    json = "json"
    markdown = "markdown"


def escape_cell(value: str) -> str:
    """Neutralise spreadsheet formulas: prefix ``'`` to text starting with = + - @ (or tab/CR).

    Plain numbers such as ``-3.5`` stay as they are, so negative deltas remain numbers.
    """
    if value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.match(value):
        return "'" + value
    return value


@dataclass
class Report:
    columns: list[str]
    rows: list[dict[str, Any]]
    meta: dict[str, Any]


def report_from_metrics(
    payload: Mapping[str, Any], value_columns: Sequence[str], rated_metrics: Sequence[str] = (),
    snapshot: tuple[int, Any] | None = None,
) -> Report:
    """Tidy rows from a ``metrics`` JSON document (trend or not) and its value column order.

    ``rated_metrics`` fixes the rating columns even when there are no rows, so a scheduled consumer
    always sees the same header. ``snapshot`` (id, commit time) is the store snapshot the numbers
    were read from, recorded so ``--as-of <id>`` reproduces them exactly.
    """
    group_by = list(payload.get("group_by") or [])
    extra_dims = [d for d in group_by if d not in DIMENSION_COLUMNS]  # e.g. repository
    rating_columns: list[str] = [f"{m}_{suffix}" for m in rated_metrics for suffix in ("rating", "bucket")]
    rows: list[dict[str, Any]] = []
    for group in payload.get("groups") or []:
        row: dict[str, Any] = {d: group.get(d) for d in (*DIMENSION_COLUMNS, *extra_dims)}
        row["period_start"] = group.get("period_start", payload.get("since"))
        row["period_end"] = group.get("period_end", payload.get("until"))
        for col in value_columns:
            row[col] = group.get(col)
        for metric, rating in (group.get("ratings") or {}).items():
            for suffix, key in (("rating", "cluster"), ("bucket", "bucket")):
                name = f"{metric}_{suffix}"
                if name not in rating_columns:
                    rating_columns.append(name)
                row[name] = rating.get(key) if isinstance(rating, Mapping) else rating
        rows.append(row)
    columns = [*DIMENSION_COLUMNS, *extra_dims, *PERIOD_COLUMNS, *value_columns, *rating_columns]
    meta = {k: payload.get(k) for k in ("since", "until", "group_by", "trend", "benchmark")}
    if snapshot is not None:
        meta["snapshot_id"], meta["snapshot_time"] = snapshot
        columns.append("snapshot_id")
        for row in rows:
            row["snapshot_id"] = snapshot[0]
    return Report(columns=columns, rows=rows, meta=meta)


def _plain(value: Any) -> Any:
    """JSON-compatible scalar: timestamps as ISO 8601 UTC, NaN as null."""
    from analytics.cli.output import to_jsonable

    out = to_jsonable(value)
    if isinstance(out, float) and (math.isnan(out) or math.isinf(out)):
        return None
    return out


def render_csv(report: Report) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(report.columns)
    for row in report.rows:
        cells = []
        for col in report.columns:
            value = _plain(row.get(col))
            if value is None:
                cells.append("")
            elif isinstance(value, bool):
                cells.append("true" if value else "false")
            elif isinstance(value, str):
                cells.append(escape_cell(value))
            elif isinstance(value, dict | list):
                cells.append(escape_cell(json.dumps(value)))
            else:
                cells.append(repr(value) if isinstance(value, float) else str(value))
        writer.writerow(cells)
    return buf.getvalue()


def render_json(report: Report) -> str:
    doc = {**{k: _plain(v) for k, v in report.meta.items()}, "columns": report.columns,
           "rows": [{c: _plain(r.get(c)) for c in report.columns} for r in report.rows]}
    return json.dumps(doc, indent=2) + "\n"


def _md_cell(value: Any) -> str:
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, float):
        text = f"{value:.2f}"
    elif isinstance(value, dict | list):
        text = json.dumps(value)
    else:
        text = str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Report) -> str:
    meta = report.meta
    lines = [
        "# DORA metrics report",
        "",
        f"Window {_plain(meta.get('since'))} to {_plain(meta.get('until'))} (UTC, end exclusive); "
        f"period: {meta.get('trend') or 'whole window'}; benchmark: {meta.get('benchmark') or 'latest'}.",
        "",
        *([f"Data as of {_plain(meta.get('snapshot_time'))} (snapshot {meta['snapshot_id']}; "
           f"`--as-of {meta['snapshot_id']}` reproduces this report).", ""]
          if meta.get("snapshot_id") is not None else []),
        "| " + " | ".join(report.columns) + " |",
        "|" + "|".join("---" for _ in report.columns) + "|",
    ]
    lines += ["| " + " | ".join(_md_cell(r.get(c)) for c in report.columns) + " |" for r in report.rows]
    return "\n".join(lines) + "\n"


RENDERERS = {ReportFormat.csv: render_csv, ReportFormat.json: render_json,
             ReportFormat.markdown: render_markdown}


def write_atomically(path: Path, text: str) -> None:
    """Write a temp file beside ``path`` and rename it over: readers never see half a report."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UserError(f"cannot write report {path}: folder {folder} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise UserError(f"cannot write report {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UserError(f"cannot write report {path}: {exc.strerror}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

