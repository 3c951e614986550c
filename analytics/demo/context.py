"""What every demo step gets: where to write, which database to load, and the manifest."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analytics.errors import UserError
from analytics.progress import say
from analytics.store.location import StoreLocation, resolve

MANIFEST_NAME = "demo-manifest.json"
CONFIG_NAME = "gitops-dora.yaml"


@dataclass
class DemoContext:
    """Shared state of one demo build.

    Steps generate inputs under ``workdir`` and load them only through the CLI (``cli``), the same
    code path a user runs; the manifest records what was generated so later steps can build on it
    (for example, which app sha each environment's config commit deployed). The CLI's runner is
    handed in by the ``demo`` command, so this package never imports the CLI that imports it.
    """

    workdir: Path
    db_path: StoreLocation
    run_cli: Callable[[Sequence[str]], object]
    manifest: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.db_path = resolve(self.db_path)  # a plain path is accepted too

    @property
    def repos_dir(self) -> Path:
        return self.workdir / "repos"

    @property
    def config_path(self) -> Path:
        return self.workdir / CONFIG_NAME

    @property
    def manifest_path(self) -> Path:
        return self.workdir / MANIFEST_NAME

    def repo_path(self, name: str) -> Path:
        return self.repos_dir / name

    def save_manifest(self) -> None:
        """Stable key order and no absolute paths, so two builds write byte-identical manifests."""
        text = json.dumps(self.manifest, indent=2, sort_keys=True) + "\n"
        self.manifest_path.write_text(text)

    def load_manifest(self) -> dict[str, Any]:
        if not self.manifest:
            try:
                self.manifest = json.loads(self.manifest_path.read_text())
            except FileNotFoundError:
                raise UserError(
                    f"demo: {self.manifest_path} is missing; run the 10_repos step first"
                ) from None
        return self.manifest

    def cli(self, *args: str) -> None:
        """Run a ``gitops-dora`` command in this process against the demo database and config."""
        argv = ["--db", str(self.db_path), "--data-path", self.db_path.data_path,
                "--config", str(self.config_path), *args]
        result = self.run_cli(argv)
        if isinstance(result, int) and result != 0:
            raise UserError(f"demo: `gitops-dora {' '.join(args)}` exited with {result}")

    def say(self, message: str) -> None:
        say(f"demo: {message}")
