"""The environment of a ``gitops-dora`` process a test starts (the CLI, the receiver, the dashboard).

Tests name the store, config and secrets themselves, so every ``GITOPS_DORA_*`` setting of the
runner's environment is dropped, except the DuckDB thread count: scripts/test.sh sets
``GITOPS_DORA_DUCKDB_THREADS=1`` for every ``gitops-dora`` the suite starts (two workers on two
cores: a second DuckDB thread per process costs CPU, not time), and dropping it gave each child
process DuckDB's default of one thread per core. Results do not depend on it
(tests/test_store_threads.py compares one thread and four, byte for byte).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

KEPT = frozenset({"GITOPS_DORA_DUCKDB_THREADS"})


def child_env(
    extra: Mapping[str, str] | None = None, *, drop: tuple[str, ...] = ("GITOPS_DORA_",)
) -> dict[str, str]:
    """``os.environ`` without the variables starting with one of ``drop`` (but with those in
    ``KEPT``), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k in KEPT or not k.startswith(drop)}
    env.update(extra or {})
    return env
