"""The Typer apps and the per-invocation context shared by every command module.

Command modules must import heavy libraries (pandas, pydriller, kubernetes, streamlit) inside
their functions, so that ``gitops-dora`` starts fast.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import typer

from analytics.config import Config, load_config, resolve_config_path

DB_ENV = "GITOPS_DORA_DB"
DEFAULT_DB = "gitops-dora.duckdb"

app = typer.Typer(
    name="gitops-dora",
    help="DORA metrics and GitOps maturity from git, code hosts and GitOps reconcilers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
collect_app = typer.Typer(help="Mine a source into the database.", no_args_is_help=True)
app.add_typer(collect_app, name="collect")


@dataclass
class AppContext:
    db_option: Path | None
    config_option: Path | None
    debug: bool
    _config: Config | None = None

    @property
    def db_path(self) -> Path:
        """--db, then $GITOPS_DORA_DB, then ./gitops-dora.duckdb."""
        if self.db_option is not None:
            return self.db_option
        env = os.environ.get(DB_ENV)
        return Path(env) if env else Path(DEFAULT_DB)

    @property
    def config_path(self) -> Path | None:
        return resolve_config_path(self.config_option)

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config


@app.callback()
def _global_options(
    ctx: typer.Context,
    db: Path | None = typer.Option(
        None, "--db", help=f"DuckDB file [env {DB_ENV}; default ./{DEFAULT_DB}]", show_default=False
    ),
    config: Path | None = typer.Option(
        None, "--config", help="config file [default ./gitops-dora.yaml when it exists]", show_default=False
    ),
    debug: bool = typer.Option(False, "--debug", help="show tracebacks on errors"),
) -> None:
    if config is not None:
        resolve_config_path(config)  # an explicit --config that does not exist fails at once
    ctx.obj = AppContext(db_option=db, config_option=config, debug=debug)


def get_ctx(ctx: typer.Context) -> AppContext:
    obj = ctx.find_root().obj
    if not isinstance(obj, AppContext):  # pragma: no cover - only when a command runs without the callback
        obj = AppContext(db_option=None, config_option=None, debug=False)
    return obj
