"""Where shipped data lives, for both editable and regular installs, and where the store is by
default. Standard library only: the CLI's head start for ``collect git`` reads the store's default
before anything heavy (duckdb) is imported."""

from __future__ import annotations

from pathlib import Path

DB_ENV = "GITOPS_DORA_DB"  # the store, when --db is not given
DEFAULT_DB = "gitops-dora.ducklake"  # ... and when neither is: this file in the working directory


def data_dir() -> Path:
    """The repository's ``data/`` folder (installed as package ``gitops_dora_data``)."""
    try:
        import gitops_dora_data

        return Path(gitops_dora_data.__file__).resolve().parent
    except ImportError:  # running from a source checkout without install
        return Path(__file__).resolve().parent.parent / "data"


def sql_dir() -> Path:
    return Path(__file__).resolve().parent / "metrics" / "sql"
