"""The Typer apps and the per-invocation context shared by every command module.

Command modules must import heavy libraries (pandas, pydriller, kubernetes, streamlit) inside
their functions, so that ``gitops-dora`` starts fast.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from analytics.cli.lazy_coercion import install as install_lazy_coercion
from analytics.paths import DB_ENV, DEFAULT_DB

if TYPE_CHECKING:  # the config (pydantic, yaml) and the store (duckdb) load when a command needs them
    from analytics.config import Config
    from analytics.store.location import StoreLocation


def _flags_take_no_value() -> None:
    """Typer 0.29 shows a ``<bool>`` placeholder after plain flags (``--store``, ``--help``), as if
    they took a value; a flag's help row shows no placeholder. Every option class is patched once,
    so commands that do not set a metavar (all of them) get it too."""
    from typer.core import TyperOption

    original = TyperOption.display_type_rich
    if getattr(original, "_flags_fixed", False):
        return

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        if getattr(self, "is_flag", False) and self.metavar is None:
            return None
        return original(self, ctx)

    display_type_rich._flags_fixed = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_take_no_value()
install_lazy_coercion()

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
    db_option: str | None
    config_option: Path | None
    debug: bool
    _config: Config | None = None
    data_path_option: str | None = None

    @property
    def db_path(self) -> StoreLocation:
        """The store: --db, then $GITOPS_DORA_DB, then ./gitops-dora.ducklake (with --data-path or
        $GITOPS_DORA_DATA_PATH for a PostgreSQL catalog)."""
        from analytics.store.location import resolve

        ref = self.db_option or os.environ.get(DB_ENV) or DEFAULT_DB
        return resolve(ref, self.data_path_option)

    @property
    def config_path(self) -> Path | None:
        from analytics.config import resolve_config_path

        return resolve_config_path(self.config_option)

    @property
    def config(self) -> Config:
        if self._config is None:
            from analytics.config import load_config

            self._config = load_config(self.config_path)
        return self._config


@app.callback()
def _global_options(
    ctx: typer.Context,
    db: str | None = typer.Option(
        None, "--db", show_default=False,
        help=f"store: a catalog file path, or postgresql://USER@HOST:PORT/DB (password from "
             f"$GITOPS_DORA_DB_PASSWORD, $PGPASSWORD or ~/.pgpass) [env {DB_ENV}; default ./{DEFAULT_DB}]",
    ),
    data_path: str | None = typer.Option(
        None, "--data-path", show_default=False,
        help="where the store's data files live: a shared folder or s3://bucket/prefix "
             "[env GITOPS_DORA_DATA_PATH; default <path>.files/ beside a catalog file]",
    ),
    config: Path | None = typer.Option(
        None, "--config", help="config file [default ./gitops-dora.yaml when it exists]", show_default=False
    ),
    debug: bool = typer.Option(False, "--debug", help="show tracebacks on errors"),
) -> None:
    if config is not None:
        from analytics.config import resolve_config_path

        resolve_config_path(config)  # an explicit --config that does not exist fails at once
    ctx.obj = AppContext(db_option=db, config_option=config, debug=debug, data_path_option=data_path)


def get_ctx(ctx: typer.Context) -> AppContext:
    obj = ctx.find_root().obj
    if not isinstance(obj, AppContext):  # pragma: no cover - only when a command runs without the callback
        obj = AppContext(db_option=None, config_option=None, debug=False)
    return obj


AS_OF_OPTION = typer.Option(
    None, "--as-of", show_default=False,
    help="read the store as it was: a snapshot id (as `report` records it) or a time "
         "(ISO 8601 with zone); reproduces exactly what was reported then",
)
