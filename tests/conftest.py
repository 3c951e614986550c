"""Shared fixtures. Keep this small: helpers live in their own modules (e.g. tests/gitrepo.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.gitrepo import GitRepo


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., GitRepo]:
    """``make_repo("app")`` -> an empty GitRepo on branch main under tmp_path (``bare=True`` too)."""

    def _make(name: str = "app", *, branch: str = "main", bare: bool = False) -> GitRepo:
        return GitRepo.init(tmp_path / name, branch=branch, bare=bare)

    return _make
