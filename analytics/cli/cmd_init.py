"""``gitops-dora init``: write an annotated starter config."""

from __future__ import annotations

from pathlib import Path

import typer

from analytics.cli.app import app
from analytics.errors import UserError
from analytics.paths import data_dir


@app.command("init")
def init_command(
    path: Path = typer.Argument(Path("gitops-dora.yaml"), help="where to write the config"),
    force: bool = typer.Option(False, "--force", help="overwrite an existing file"),
) -> None:
    """Write an annotated starter gitops-dora.yaml."""
    from analytics.config import load_config

    if path.exists() and not force:
        raise UserError(f"{path} already exists (use --force to overwrite)")
    template = data_dir() / "config" / "gitops-dora.example.yaml"
    path.write_text(template.read_text())
    load_config(path)  # the shipped template must always validate
    typer.echo(f"wrote {path}")
