"""``gitops-dora report``: a metrics report file for schedulers (CronJob, CI), written atomically."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from analytics.cli.app import AS_OF_OPTION, app, get_ctx
from analytics.cli.filters import check_known, metrics_query
from analytics.errors import UserError
from analytics.reports import ReportFormat

DEFAULT_GROUP_BY = "service,team,environment"
_SUFFIX_FORMATS = {
    ".json": ReportFormat.json, ".md": ReportFormat.markdown, ".markdown": ReportFormat.markdown,
}


def _rated_metrics(benchmark: int | None) -> list[str]:
    """The metrics the chosen benchmark year rates (its rating columns), in the ratings' order."""
    try:
        from analytics.metrics.ratings import rate_group
    except ImportError:
        return []
    return list(rate_group({}, benchmark).keys())


def _checked_out(text: str, fmt: ReportFormat | None) -> Path | None:
    """The --out file (None for ``-``: stdout), refused before anything is computed or written: a
    folder (existing, or named with a trailing slash, which Path would silently drop), a suffix
    that names no report format (``x.xlsx`` used to get CSV under a spreadsheet's name) unless
    --format says, and a FIFO, device or socket (or a symlink to one, or a process's file
    descriptor such as /dev/stdout), which the atomic rename would replace rather than write to
    (:func:`check_replaceable`)."""
    from analytics.reports import STDOUT_TARGET, check_replaceable

    if text == STDOUT_TARGET:  # the usual Unix spelling; it used to create a file named "-"
        return None
    out = Path(text)
    if text.endswith(("/", os.sep)) or out.is_dir():
        raise UserError(f"--out {text}: is a folder; give a file name such as {out / 'dora-report.csv'}")
    suffix = out.suffix.lower()
    if fmt is None and suffix and suffix not in _SUFFIX_FORMATS and suffix != ".csv":
        raise UserError(f"--out {text}: unknown suffix {out.suffix}; use .csv, .json, .md or .markdown, "
                        "or give --format")
    check_replaceable(out)
    return out


@app.command("report")
def report_command(
    ctx: typer.Context,
    out_arg: str = typer.Option(
        ..., "--out", metavar="FILE",
        help="file to write (replaced atomically): .csv, .json, .md or .markdown, or any name with --format; "
             "- for stdout",
    ),
    fmt: ReportFormat | None = typer.Option(
        None, "--format", help="csv, json or markdown [from the --out suffix, else csv]"
    ),
    period: str | None = typer.Option(None, "--period", help="week or month: one row per group and period"),
    since: str | None = typer.Option(None, "--since", help="YYYY-MM-DD or ISO 8601 with zone (inclusive)"),
    until: str | None = typer.Option(None, "--until", help="YYYY-MM-DD or ISO 8601 with zone (exclusive)"),
    group_by: str = typer.Option(
        DEFAULT_GROUP_BY, "--group-by", help="any of service, team, environment, repository"
    ),
    benchmark: int | None = typer.Option(
        None, "--benchmark", help="DORA report year to rate against [latest]"
    ),
    service: list[str] | None = typer.Option(None, "--service", help="only these services (repeatable)"),
    environment: list[str] | None = typer.Option(None, "--environment", help="only these environments"),
    team: list[str] | None = typer.Option(None, "--team", help="only these teams"),
    as_of: str | None = AS_OF_OPTION,
    precision: int | None = typer.Option(
        None, "--precision", min=0, max=12, metavar="N",
        help="decimals of every number [CSV and Markdown: 2, ratios 4; JSON: full precision]",
        show_default=False,
    ),
) -> None:
    """Write one tidy row per group and period: every `metrics` field, ratings flattened.

    A week or month the window cuts short is flagged partial_period and not rated."""
    from analytics.metrics.engine import compute_metrics
    from analytics.progress import say
    from analytics.reports import RENDERERS, report_from_metrics, write_atomically
    from analytics.store.connection import open_reader, parse_as_of, reader_snapshot

    if period is not None and period not in ("week", "month"):
        raise UserError(f"--period {period!r}: use week or month")
    out = _checked_out(out_arg, fmt)
    chosen = fmt or (_SUFFIX_FORMATS.get(out.suffix.lower(), ReportFormat.csv) if out else ReportFormat.csv)
    app_ctx = get_ctx(ctx)
    query = metrics_query(since=since, until=until, group_by=group_by, service=service,
                          environment=environment, team=team, trend=period, benchmark=benchmark)
    config = app_ctx.config
    con = open_reader(app_ctx.db_path, as_of=parse_as_of(as_of))
    try:
        check_known(con, services=query.services, teams=query.teams, environments=query.environments,
                    config=config)
        snap = reader_snapshot(con)
        result = compute_metrics(con, query, config)
    finally:
        con.close()
    keys = (*result.group_by, "period_start", "period_end", "ratings")
    values = [c for c in result.columns if c not in keys]
    report = report_from_metrics(
        result.payload(), values, _rated_metrics(benchmark), (snap.id, snap.time),
        targets=lambda row: config.targets_for(service=row.get("service"), team=row.get("team")),
        target_metrics=config.targets.metrics(),
    )
    report.precision = precision
    text = RENDERERS[chosen](report)
    if out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        write_atomically(out, text)
    say(f"wrote {len(report.rows)} rows ({chosen.value}) to {out if out is not None else 'stdout'}")
