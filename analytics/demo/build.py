"""Runs the demo steps (``analytics/demo/steps/NN_name.py``) in name order."""

from __future__ import annotations

import importlib
import pkgutil
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

import analytics.demo.steps as steps_pkg
from analytics.demo.context import DemoContext
from analytics.store.location import StoreRef, resolve

_STEP = re.compile(r"^\d{2}_[a-z0-9_]+$")


def step_modules() -> list[ModuleType]:
    names = sorted(info.name for info in pkgutil.iter_modules(steps_pkg.__path__) if _STEP.match(info.name))
    return [importlib.import_module(f"{steps_pkg.__name__}.{name}") for name in names]


def build(workdir: Path, db_path: StoreRef, run_cli: Callable[[Sequence[str]], object]) -> DemoContext:
    """Generate the demo organisation under ``workdir`` and load it into ``db_path``; ``run_cli``
    runs one ``gitops-dora`` command line in this process."""
    demo = DemoContext(workdir=Path(workdir).resolve(), db_path=resolve(db_path), run_cli=run_cli)
    demo.workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for module in step_modules():
        name = module.__name__.rsplit(".", 1)[-1]
        demo.say(f"step {name}")
        t0 = time.perf_counter()
        module.run(demo)
        demo.say(f"step {name}: {time.perf_counter() - t0:.1f} s")
    demo.say(f"demo data loaded in {time.perf_counter() - started:.1f} s")
    return demo
