"""Store upkeep: ``maintain`` (compaction, retention) and ``migrate-store`` (from a 0.1 file)."""

from __future__ import annotations

from pathlib import Path

import typer

from analytics.cli.app import app, get_ctx


@app.command("maintain")
def maintain_command(
    ctx: typer.Context,
    retention_days: int | None = typer.Option(
        None, "--retention-days", min=0, show_default=False,
        help="expire snapshots older than this many days; --as-of reaches back this far "
             "[env GITOPS_DORA_RETENTION_DAYS; default 30]",
    ),
) -> None:
    """Merge small data files, expire old snapshots and delete files nothing references (daily)."""
    from analytics.progress import say
    from analytics.store.maintenance import maintain
    from analytics.store.maintenance import retention_days as resolve_days

    summary = maintain(get_ctx(ctx).db_path, resolve_days(retention_days))
    for note in summary.notes:
        say(f"warning: {note}")
    say(summary.line())


@app.command("migrate-store")
def migrate_store_command(
    old: Path = typer.Argument(..., help="a single-file store of gitops-dora 0.1 (x.duckdb)"),
    new: str = typer.Argument(..., help="the new store: a catalog path, or a postgresql:// URL"),
    data_path: str | None = typer.Option(
        None, "--data-path", show_default=False,
        help="data files of the new store [see gitops-dora --help]",
    ),
) -> None:
    """Copy a 0.1 DuckDB store into a new DuckLake store, verifying the row count of every table."""
    from analytics.progress import say
    from analytics.store.location import resolve
    from analytics.store.maintenance import migrate_store

    summary = migrate_store(old, resolve(new, data_path))
    for table, count in sorted(summary.counts.items()):
        say(f"  {table}: {count} rows")
    say(summary.line())
