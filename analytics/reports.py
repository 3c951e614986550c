"""Scheduled reports: one tidy row per group and period, written atomically as CSV, JSON or Markdown.

The rows are the ``metrics`` groups (the same engine call as ``metrics --trend``), with the three
dimension columns always present and the ``ratings`` object flattened into ``<metric>_rating`` (the
benchmark cluster) and ``<metric>_bucket`` (the survey answer bucket) columns, so a spreadsheet or a
BI tool can read the file without parsing nested JSON.

Every text cell of every format passes through :mod:`analytics.redaction` (credentials masked).
CSV and Markdown cells also lose control characters and bidi overrides (a spreadsheet or a
rendered page is read by people); JSON keeps every other character verbatim, escaped by the
encoder, as ``metrics --format json`` does, so two distinct stored names never become one. CSV
cells then go through :func:`escape_cell`, the one formula-escaping function of the project
(``metrics``/``deployments``/``incidents --format csv`` and the dashboard's downloads use it
too). Files are written by :func:`write_atomically`.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import math
import os
import re
import signal
import socket
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from analytics.errors import UserError

_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
# What makes a spreadsheet (Excel, LibreOffice, Google Sheets) read a cell as a formula or a DDE
# call: = + - @, a leading tab or CR, their full-width forms (some spreadsheets fold them to
# ASCII), and | (DDE).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "|", "\uff1d", "\uff0b", "\uff0d", "\uff20", "\uff5c")
FORMULA_FIRST = frozenset(_FORMULA_START)  # first characters worth a closer look
PAUSE_ENV = "GITOPS_DORA_PAUSE_BEFORE_RENAME"  # fault injection for the killed-report test
STALE_TMP_SECONDS = 3600  # a temporary file older than this is an earlier run's, whatever its pid
DIMENSION_COLUMNS = ("service", "team", "environment")
PERIOD_COLUMNS = ("period_start", "period_end")


class ReportFormat(StrEnum):
    csv = "csv"
    json = "json"
    markdown = "markdown"


def escape_cell(value: str) -> str:
    """Neutralise spreadsheet formulas: prefix ``'`` to text that starts (after any spaces) with
    = + - @ | tab CR LF or a full-width ＝ ＋ － ＠ ｜.

    Plain numbers such as ``-3.5`` stay as they are, so negative deltas remain numbers. This is the
    one CSV-escaping function: every CSV the project writes calls it for each text cell.
    """
    if value[:1] not in FORMULA_FIRST and not value.startswith(" "):  # the usual case
        return value
    if value.lstrip(" ").startswith(_FORMULA_START) and not _PLAIN_NUMBER.match(value.strip(" ")):
        return "'" + value
    return value


_RECONCILER_ID = re.compile(r"^(?:argocd|flux):[^:]*/(?P<name>[^/:]+):(?P<rev>[^@]+)@(?P<at>\w+)$")
_GIT_ID = re.compile(r"^git-(?:tag|branch):(?P<repo>[^:]+):(?P<ref>.+)$")
SHORT_ID = 32


def short_id(text: str) -> str:
    """A deployment (or other) id short enough for a table column (at most 32 characters):
    reconciler ids become ``<object name>@<revision, 7 chars>``, git ids
    ``<repo>:<tag or branch@sha7>``; anything longer keeps its start and end around "…". Shared by
    the CLI tables and the dashboard so both shorten an id alike; the full id is always one flag
    (``--wide``, JSON) or one click (the drill-down) away."""
    if len(text) <= SHORT_ID:
        return text
    if m := _RECONCILER_ID.match(text):
        text = f"{m['name']}@{m['rev'][:7]}"
    elif m := _GIT_ID.match(text):
        ref = m["ref"]
        branch, _, sha = ref.rpartition(":")
        ref = f"{branch}@{sha[:7]}" if branch and re.fullmatch(r"[0-9a-f]{7,40}", sha) else ref
        text = f"{m['repo']}:{ref}"
    if len(text) <= SHORT_ID:
        return text
    return f"{text[:20]}…{text[-(SHORT_ID - 21):]}"


def _text(value: str, *, strip: bool = True) -> str:
    """A text cell as reports show it: credentials masked, and (``strip``, for CSV and Markdown,
    which people read) control characters removed. JSON passes ``strip=False``: a program reads
    it, the encoder escapes every control character, and stripping would merge distinct values
    (``"a\\x1b[31mRED"`` and ``"aRED"``) and disagree with ``metrics --format json``."""
    from analytics.redaction import redact, strip_controls

    masked = redact(value)
    return strip_controls(masked, keep_newlines=True) if strip else masked


@dataclass
class Report:
    columns: list[str]
    rows: list[dict[str, Any]]
    meta: dict[str, Any]
    precision: int | None = None  # decimals of every number; None: DEFAULT_DECIMALS / RATIO_DECIMALS


DEFAULT_DECIMALS = 2  # hours and rates: a hundredth of an hour is 36 s, of a deployment a week nothing
RATIO_DECIMALS = 4    # ratios (change failure rate, rework rate): 0.0001 is a hundredth of a percent


def decimals_for(column: str, precision: int | None) -> int:
    """How many decimals a report shows for ``column``: ``--precision`` when given, else 4 for the
    ratios (``*_rate``), 2 for everything else (hours, per-week rates, medians)."""
    if precision is not None:
        return precision
    ratio = column.removesuffix("_target").endswith(("_rate", "_ratio"))  # a ratio's target is one too
    return RATIO_DECIMALS if ratio else DEFAULT_DECIMALS


def _period_bounds(start: datetime, trend: str) -> tuple[datetime, datetime]:
    """The whole calendar period (ISO week from Monday, or month, in UTC) that ``start`` falls in."""
    day = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if trend == "week":
        first = day - timedelta(days=day.weekday())
        return first, first + timedelta(days=7)
    first = day.replace(day=1)
    return first, (first + timedelta(days=32)).replace(day=1)


def is_partial_period(start: Any, end: Any, trend: str | None) -> bool:
    """Whether a trend row covers less than its whole week or month: the window cut it (the first
    and last periods usually), so its counts are not comparable with a full period's and a rate
    scaled from them (3 days with one deployment as 2.3 a week) must not be rated."""
    if trend not in ("week", "month") or start is None or end is None:
        return False
    lo, hi = (_as_time(v) for v in (start, end))
    try:
        full_lo, full_hi = _period_bounds(lo, trend)
    except (OverflowError, ValueError):
        return True  # the last week or month of 9999 ends past any datetime: no window holds it whole
    return (lo, hi) != (full_lo, full_hi)


def _as_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def report_from_metrics(
    payload: Mapping[str, Any], value_columns: Sequence[str], rated_metrics: Sequence[str] = (),
    snapshot: tuple[int, Any] | None = None,
    targets: Callable[[Mapping[str, Any]], Mapping[str, float]] | None = None,
    target_metrics: Sequence[str] = (),
) -> Report:
    """Tidy rows from a ``metrics`` JSON document (trend or not) and its value column order.

    ``rated_metrics`` fixes the rating columns even when there are no rows, so a scheduled consumer
    always sees the same header. ``snapshot`` (id, commit time) is the store snapshot the numbers
    were read from, recorded so ``--as-of <id>`` reproduces them exactly. ``targets`` gives a row's
    targets (config ``targets:``); every metric of ``target_metrics`` gets ``<metric>_target`` and
    ``<metric>_target_met`` columns, empty where the row's group has no target, and ``_target_met``
    empty for a partial period too (judged no more than it is rated).
    """
    group_by = list(payload.get("group_by") or [])
    trend = payload.get("trend")
    extra_dims = [d for d in group_by if d not in DIMENSION_COLUMNS]  # e.g. repository
    rating_columns: list[str] = [f"{m}_{suffix}" for m in rated_metrics for suffix in ("rating", "bucket")]
    rows: list[dict[str, Any]] = []
    for group in payload.get("groups") or []:
        row: dict[str, Any] = {d: group.get(d) for d in (*DIMENSION_COLUMNS, *extra_dims)}
        row["period_start"] = group.get("period_start", payload.get("since"))
        row["period_end"] = group.get("period_end", payload.get("until"))
        for col in value_columns:
            row[col] = group.get(col)
        partial = is_partial_period(row["period_start"], row["period_end"], trend)
        for metric, rating in (group.get("ratings") or {}).items():
            for suffix, key in (("rating", "cluster"), ("bucket", "bucket")):
                name = f"{metric}_{suffix}"
                if name not in rating_columns:
                    rating_columns.append(name)
                row[name] = None if partial else rating.get(key) if isinstance(rating, Mapping) else rating
        row["partial_period"] = partial
        rows.append(row)
    columns = [*DIMENSION_COLUMNS, *extra_dims, *PERIOD_COLUMNS, *value_columns, *rating_columns]
    meta = {k: payload.get(k) for k in ("since", "until", "group_by", "trend", "benchmark")}
    if snapshot is not None:
        meta["snapshot_id"], meta["snapshot_time"] = snapshot
        columns.append("snapshot_id")
        for row in rows:
            row["snapshot_id"] = snapshot[0]
    columns.append("partial_period")  # last: added after snapshot_id, so no column moved
    if target_metrics:
        from analytics.config import check_target

        for row in rows:
            chosen = targets(row) if targets is not None else {}
            for metric in target_metrics:
                target = chosen.get(metric)
                row[f"{metric}_target"] = target
                met = None
                if target is not None and not row["partial_period"]:
                    met = check_target(metric, row.get(metric), target).met
                row[f"{metric}_target_met"] = met
        columns += [f"{m}_{suffix}" for m in target_metrics for suffix in ("target", "target_met")]
    return Report(columns=columns, rows=rows, meta=meta)


def _plain(value: Any, *, strip: bool = True) -> Any:
    """JSON-compatible scalar: timestamps as ISO 8601 UTC, NaN as null, text redacted (and, with
    ``strip``, without control characters: see :func:`_text`)."""
    from analytics.json_output import to_jsonable

    out = to_jsonable(value)
    if isinstance(out, float) and (math.isnan(out) or math.isinf(out)):
        return None
    if isinstance(out, str):
        return _text(out, strip=strip)
    if isinstance(out, dict | list):
        # redacted in its encoded form (a secret may sit in a key or a nested value); json.dumps
        # escapes control characters as ASCII, so they come back unchanged in every format
        return json.loads(_text(json.dumps(out), strip=strip))
    return out


def _number(value: float, column: str, precision: int | None) -> str:
    """A float as CSV and Markdown show it: fixed decimals, so a column reads alike on every row."""
    text = f"{value:.{decimals_for(column, precision)}f}"
    return "0" + text[2:] if text.startswith("-0") and not text.strip("-0.") else text  # no "-0.00"


def render_csv(report: Report) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([escape_cell(_text(c)) for c in report.columns])
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
            elif isinstance(value, float):
                cells.append(_number(value, col, report.precision))
            else:
                cells.append(str(value))
        writer.writerow(cells)
    return buf.getvalue()


def render_json(report: Report) -> str:
    """Full precision unless ``--precision`` was given: JSON is read by programs, not people."""
    def cell(value: Any) -> Any:
        value = _plain(value, strip=False)  # verbatim but for secrets, as metrics --format json
        if report.precision is not None and isinstance(value, float):
            return round(value, report.precision)
        return value

    doc = {**{k: _plain(v, strip=False) for k, v in report.meta.items()}, "columns": report.columns,
           "rows": [{c: cell(r.get(c)) for c in report.columns} for r in report.rows]}
    return json.dumps(doc, indent=2) + "\n"


# Characters that start Markdown markup inside a line: links and images ([ ] ( ) !), emphasis and
# code (* _ ` ~), raw HTML and autolinks (< >), entities (&), table cells (|), escapes (\\), and
# what GitHub's renderer turns into links without any markup (the ':' of "http://", the '.' of
# "www.", the '@' of an address): escaped, each is shown as itself.
_MD_ACTIVE = re.compile(r"([\\`*_{}\[\]()#+!|<>&~:@.])")


def _md_text(text: str) -> str:
    """Text from the data as Markdown that renders as the same text and nothing else (no link,
    image, HTML, emphasis or autolink). A backslash before any ASCII punctuation shows it literally
    (CommonMark), and splits a would-be autolink so that no renderer's link finder sees it whole."""
    return _MD_ACTIVE.sub(r"\\\1", text.replace("\n", " ").replace("\r", " "))


def _md_cell(value: Any, column: str = "", precision: int | None = None, *, data: bool = True) -> str:
    from_data = data and isinstance(value, str)  # names, titles, ids: anything the sources said
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, bool):  # as CSV writes it
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = _number(value, column, precision)
    elif isinstance(value, dict | list):
        return _md_text(json.dumps(value))
    else:
        text = str(value)
    if from_data:
        return _md_text(text)
    # numbers, times and our own words: nothing to escape but what would end the cell or the row
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
    return text.replace("<", "&lt;").replace(">", "&gt;")


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
        "| " + " | ".join(_md_cell(c, data=False) for c in report.columns) + " |",
        "|" + "|".join("---" for _ in report.columns) + "|",
    ]
    lines += ["| " + " | ".join(_md_cell(r.get(c), c, report.precision) for c in report.columns) + " |"
              for r in report.rows]
    return "\n".join(lines) + "\n"


RENDERERS = {ReportFormat.csv: render_csv, ReportFormat.json: render_json,
             ReportFormat.markdown: render_markdown}


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:64] or "host"


def _tmp_prefix(path: Path) -> str:
    """``.NAME.HOST-PID.``: which run a temporary file belongs to, so a sweep can tell a live
    run's file from a killed one's."""
    return f".{path.name}.{_host()}-{os.getpid()}."


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


def sweep_stale_temporaries(path: Path) -> list[Path]:
    """Delete the ``.NAME.*.tmp`` files earlier runs left beside ``path`` (a run killed with
    SIGKILL, or by a power cut, cannot clean up): those of a process of this host that is gone,
    and any older than an hour. A concurrent run's file is left alone. Returns what was deleted."""
    folder = path.parent if str(path.parent) else Path(".")
    host = _host()
    swept = []
    now = time.time()
    for tmp in folder.glob(f".{glob.escape(path.name)}.*.tmp"):
        owner = tmp.name[len(path.name) + 2:-len(".tmp")].rsplit(".", 1)[0]  # HOST-PID
        owner_host, _, pid = owner.rpartition("-")
        try:
            age = now - tmp.lstat().st_mtime
            mine = owner_host == host and pid.isdigit() and int(pid) != os.getpid()
            dead = mine and not _pid_alive(int(pid))
            if dead or age > STALE_TMP_SECONDS:
                tmp.unlink()
                swept.append(tmp)
        except OSError:
            continue  # gone already, or not ours to delete
    return swept


STDOUT_TARGET = "-"  # ``--out -``: the report on stdout, not a file named "-"


def _through_proc(path: Path) -> bool:
    """Whether ``path``, or a symlink on its way, names an entry of ``/proc`` (``/dev/stdout`` ->
    ``/proc/self/fd/1``, ``/dev/fd/1``): a file descriptor of a process, which a rename would
    replace as a name (as root, the ``/dev/stdout`` symlink itself) even when it resolves to a
    regular file (a run whose stdout is redirected to one)."""
    current = Path(os.path.abspath(path))
    for _ in range(40):  # the kernel's own limit on symlinks followed
        parent = os.path.realpath(current.parent)
        if parent == "/proc" or parent.startswith("/proc/"):
            return True
        if not current.is_symlink():
            return False
        current = Path(os.path.abspath(os.path.join(parent, os.readlink(current))))
    return False


def check_replaceable(path: Path) -> None:
    """Refuse a target a report cannot replace atomically, before anything is computed.

    A report is written beside its target and renamed over it. For an existing FIFO, device or
    socket (or a symlink to one: ``/dev/stdout``, ``/dev/null``) that rename replaced the special
    file itself (as root: the ``/dev/stdout`` symlink) while saying "wrote N rows" and writing
    nothing where the user looked. Writing into it instead would give up the atomic replacement
    (a reader of a FIFO sees half a report when the run dies), can block forever on a FIFO no one
    reads (a CronJob hanging until its deadline) and as root would write into a disk device; so it
    is refused with one line, and ``--out -`` is the way to stdout."""
    try:
        mode: int | None = path.stat().st_mode  # follows symlinks: what the name reaches
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise UserError(f"cannot write report {path}: {exc.strerror}") from None
    if mode is not None and not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
        raise UserError(f"--out {path}: is {kind}, which a report cannot replace atomically; "
                        "give a file name, or --out - for stdout")
    if _through_proc(path):
        raise UserError(f"--out {path}: names a process's file descriptor (/proc), which a report "
                        "cannot replace atomically; give a file name, or --out - for stdout")


class _Terminated(SystemExit):
    """SIGTERM while a report is written: unwinds so the temporary file is removed."""


def _on_sigterm(signum: int, _frame: Any) -> None:
    raise _Terminated(128 + signum)


def write_atomically(path: Path, text: str) -> None:
    """Write a temp file beside ``path`` and rename it over: readers never see half a report.

    SIGTERM (a CronJob's deadline, ``kubectl delete``) during the write removes the temporary file
    before the process exits with 143; temporaries that killed runs left are swept first.
    """
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UserError(f"cannot write report {path}: folder {folder} does not exist")
    check_replaceable(path)  # again: the target may have become a FIFO while the report was computed
    sweep_stale_temporaries(path)
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main else None
    tmp: str | None = None
    try:
        try:
            fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(path), suffix=".tmp", dir=folder)
        except OSError as exc:
            raise UserError(f"cannot write report {path}: {exc.strerror}") from None
        try:
            with os.fdopen(fd, "w", newline="") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
            pause = os.environ.get(PAUSE_ENV)
            if pause:
                print(f"pausing {pause}s before rename", file=sys.stderr, flush=True)
                time.sleep(float(pause))
            os.replace(tmp, path)
            tmp = None
        except OSError as exc:
            raise UserError(f"cannot write report {path}: {exc.strerror}") from None
    except _Terminated:
        print(f"error: terminated while writing report {path}; the previous file is unchanged",
              file=sys.stderr, flush=True)
        raise
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if in_main:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
