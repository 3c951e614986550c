"""``gitops-dora demo``: build the demo organisation and load it into the database."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import typer

from analytics.cli.app import app, get_ctx


@app.command("demo")
def demo_command(
    ctx: typer.Context,
    workdir: Path | None = typer.Option(
        None, "--workdir", help="where the generated repositories go [demo/ beside the --db file]",
        show_default=False,
    ),
) -> None:
    """Generate a small organisation (3 services, GitOps config repo) and load it like a user would."""
    from analytics.demo.build import build

    db_path = get_ctx(ctx).db_path
    beside = db_path.path.parent if db_path.path is not None else Path.cwd()
    target = workdir if workdir is not None else beside / "demo"
    demo = build(target, db_path, run_in_process)
    typer.echo(f"demo database: {demo.db_path}")
    typer.echo(f"demo repositories and config: {demo.workdir}")
    typer.echo(f"next: gitops-dora --db {demo.db_path} dashboard")
    typer.echo(f"  or: gitops-dora --db {demo.db_path} metrics --group-by service,environment")


def run_in_process(argv: Sequence[str]) -> object:
    """One ``gitops-dora`` command line, run in this process (no interpreter start per step)."""
    from analytics.cli.main import app

    return app(args=list(argv), prog_name="gitops-dora", standalone_mode=False)
