"""Running ``gitops-dora`` against a loopback code host and reading back what it stored; shared
by the GitHub and GitLab collector tests, which differ only in the token variable and DB file."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from tests import cli_inprocess
from tests.store_query import query_snapshot as query  # noqa: F401 - callers use codehost_cli.query

CLI = str(Path(sys.executable).with_name("gitops-dora"))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def run_cli(
    db: Path, *args: str, token_env: str, token: str | None, extra_env: dict[str, str] | None = None,
    process: bool = False,
) -> subprocess.CompletedProcess[str]:
    """The CLI with an environment whose only token is ``token`` (none when it is None), run in this
    process (tests/cli_inprocess.py) unless ``process``: then the installed script in a subprocess,
    for tests about what the real process writes (a token that must not show)."""
    env = {k: v for k, v in os.environ.items() if k not in (token_env, "GITOPS_DORA_DB")}
    env.update(extra_env or {})
    if token is not None:
        env[token_env] = token
    if not process:
        return cli_inprocess.run(["--db", str(db), *args], env=env, cwd=db.parent)
    return subprocess.run(
        [CLI, "--db", str(db), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=db.parent,
        timeout=120,
    )
