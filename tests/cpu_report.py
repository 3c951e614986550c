"""Per-module CPU of a test run, for deciding where the suite's time goes (issue #16).

``--durations`` shows wall time, which on two shared cores says more about what ran beside a test
than about the test. This plugin records, around every test (setup, call and teardown), the CPU
seconds of the test process and of the children it has waited for (``RUSAGE_SELF`` and
``RUSAGE_CHILDREN``), and writes one JSON line per test to the file named by
``GITOPS_DORA_TEST_CPU_REPORT`` (each xdist worker appends its own lines). A module's
session-scoped fixtures count where they are first built. Opt-in with
``-p tests.cpu_report``; off it costs nothing.

Summarise with ``python -m tests.cpu_report FILE``: modules by CPU seconds, costliest first.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections import defaultdict
from collections.abc import Generator
from typing import Any

import pytest


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: Any) -> Generator[None, None, None]:
    path = os.environ.get("GITOPS_DORA_TEST_CPU_REPORT")
    if not path:
        yield
        return
    cpu0, wall0 = _cpu(), time.perf_counter()
    yield
    record = {"test": item.nodeid, "cpu": round(_cpu() - cpu0, 3),
              "wall": round(time.perf_counter() - wall0, 3),
              "worker": os.environ.get("PYTEST_XDIST_WORKER", "main")}
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")


def summarise(path: str, top: int = 60) -> str:
    """Modules by CPU seconds (with wall seconds and test count), costliest first."""
    cpu: dict[str, float] = defaultdict(float)
    wall: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            module = record["test"].split("::", 1)[0]
            cpu[module] += record["cpu"]
            wall[module] += record["wall"]
            count[module] += 1
    rows = sorted(cpu, key=lambda m: -cpu[m])
    out = [f"{'module':<52} {'CPU s':>8} {'wall s':>8} {'tests':>6}"]
    out += [f"{m:<52} {cpu[m]:8.1f} {wall[m]:8.1f} {count[m]:6d}" for m in rows[:top]]
    out.append(f"{'all ' + str(len(rows)) + ' modules':<52} {sum(cpu.values()):8.1f} "
               f"{sum(wall.values()):8.1f} {sum(count.values()):6d}")
    return "\n".join(out)


if __name__ == "__main__":
    print(summarise(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 60))
