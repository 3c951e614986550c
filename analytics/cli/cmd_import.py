"""``gitops-dora import FILE...``: load files whose kind is recognised from their content.

Every file is parsed and its kind detected before anything is written, so an unrecognised file
stops the command with nothing loaded. Each file is then loaded in its own writer session (one
transaction): a bad row rejects that whole file and leaves the store as it was.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import typer

from analytics.cli.app import app, get_ctx
from analytics.errors import SourceError


@app.command("import")
def import_command(
    ctx: typer.Context,
    files: list[Path] = typer.Argument(..., help="CSV, JSON, JSON-lines or YAML files"),
) -> None:
    """Import incidents, deployments and other records; the kind is recognised from each file's content."""
    from analytics.importers.base import ParsedFile, detect_kind, parse_file
    from analytics.progress import say
    from analytics.store.connection import WriteSession, write_unit

    app_ctx = get_ctx(ctx)
    config = app_ctx.config
    plan: list[tuple[ParsedFile, ModuleType]] = []
    for path in files:
        if not path.is_file():
            raise SourceError(f"{path}: no such file")
        parsed = parse_file(path)
        plan.append((parsed, detect_kind(parsed)))
    for parsed, module in plan:
        def work(session: WriteSession, parsed: ParsedFile = parsed, module: ModuleType = module) -> Any:
            summary = module.load(session, parsed, config)
            session.messages.append(summary.line())
            return summary

        summary = write_unit(app_ctx.db_path, work, source=f"import:{module.KIND}", target=str(parsed.path))
        say(summary.line())
