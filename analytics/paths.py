"""Where shipped data lives, for both editable and regular installs."""

from __future__ import annotations

from pathlib import Path


def data_dir() -> Path:
    """The repository's ``data/`` folder (installed as package ``gitops_dora_data``)."""
    try:
        import gitops_dora_data

        return Path(gitops_dora_data.__file__).resolve().parent
    except ImportError:  # running from a source checkout without install
        return Path(__file__).resolve().parent.parent / "data"


def sql_dir() -> Path:
    return Path(__file__).resolve().parent / "metrics" / "sql"
