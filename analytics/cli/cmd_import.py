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
    from analytics.importers.base import (
        CsvSniff,
        JsonlSniff,
        ParsedFile,
        detect_csv_kind,
        detect_jsonl_kind,
        detect_kind,
        parse_file,
        sniff_csv,
        sniff_jsonl,
    )
    from analytics.progress import say
    from analytics.store.connection import WriteSession, write_unit

    app_ctx = get_ctx(ctx)
    config = app_ctx.config
    plan: list[tuple[ParsedFile | CsvSniff | JsonlSniff, ModuleType]] = []
    for path in files:
        if not path.is_file():
            raise SourceError(f"{path}: no such file")
        # A large CSV or JSON-lines file of a kind that streams is read by DuckDB in batches, not
        # held in memory.
        sniff = sniff_csv(path)
        streaming = detect_csv_kind(sniff) if sniff is not None else None
        if sniff is not None and streaming is not None:
            plan.append((sniff, streaming))
            continue
        lines = sniff_jsonl(path) if sniff is None else None
        streaming = detect_jsonl_kind(lines) if lines is not None else None
        if lines is not None and streaming is not None:
            plan.append((lines, streaming))
            continue
        parsed = parse_file(path)
        plan.append((parsed, detect_kind(parsed)))
    for source, module in plan:
        def work(
            session: WriteSession, source: ParsedFile | CsvSniff | JsonlSniff = source,
            module: ModuleType = module,
        ) -> Any:
            if isinstance(source, ParsedFile):
                summary = module.load(session, source, config)
            else:
                stream = module.load_csv_stream if isinstance(source, CsvSniff) else module.load_jsonl_stream
                summary = stream(session, source, config)
                if summary is None:  # a row needs the exact path (which names a bad value's line)
                    parsed = parse_file(source.path)
                    summary = detect_kind(parsed).load(session, parsed, config)
            session.messages.append(summary.line())
            return summary

        summary = write_unit(app_ctx.db_path, work, source=f"import:{module.KIND}", target=str(source.path))
        say(summary.line())
