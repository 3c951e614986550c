"""Runs the demo steps (``analytics/demo/steps/NN_name.py``) in name order."""

from __future__ import annotations

import importlib
import pkgutil
import re
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

import analytics.demo.steps as steps_pkg
from analytics.demo.context import DemoContext
from analytics.store.location import StoreLocation, StoreRef, resolve

_STEP = re.compile(r"^\d{2}_[a-z0-9_]+$")


def step_modules() -> list[ModuleType]:
    names = sorted(info.name for info in pkgutil.iter_modules(steps_pkg.__path__) if _STEP.match(info.name))
    return [importlib.import_module(f"{steps_pkg.__name__}.{name}") for name in names]


class _StoreOpening:
    """Opens the store (creating its schema when it is new) in a thread, while the steps that never
    touch it (``STORE_FREE = True``: generating the repositories) run. On a new store the schema
    is about half a second of DuckLake statements, and the repositories are written by
    ``git fast-import`` processes: the two overlap on a machine's two cores. The first command
    that opens the store then finds the schema current, as any later command does."""

    def __init__(self, db_path: StoreLocation) -> None:
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._open, args=(db_path,), name="demo-store-open",
                                       daemon=True)
        self.thread.start()

    def _open(self, db_path: StoreLocation) -> None:
        from analytics.store.connection import hold_store

        try:
            with hold_store(db_path):
                pass
        except BaseException as exc:  # raised again in the demo's thread by wait()
            self.error = exc

    def wait(self) -> None:
        self.thread.join()
        if self.error is not None:
            raise self.error


def build(workdir: Path, db_path: StoreRef, run_cli: Callable[[Sequence[str]], object]) -> DemoContext:
    """Generate the demo organisation under ``workdir`` and load it into ``db_path``; ``run_cli``
    runs one ``gitops-dora`` command line in this process."""
    demo = DemoContext(workdir=Path(workdir).resolve(), db_path=resolve(db_path), run_cli=run_cli)
    demo.workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    opening: _StoreOpening | None = _StoreOpening(demo.db_path)
    for module in step_modules():
        name = module.__name__.rsplit(".", 1)[-1]
        if opening is not None and not getattr(module, "STORE_FREE", False):
            opening.wait()
            opening = None
        demo.say(f"step {name}")
        t0 = time.perf_counter()
        module.run(demo)
        demo.say(f"step {name}: {time.perf_counter() - t0:.1f} s")
    if opening is not None:
        opening.wait()
    demo.say(f"demo data loaded in {time.perf_counter() - started:.1f} s")
    return demo
