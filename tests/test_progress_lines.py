"""Plain progress (stderr not a terminal: logs, CronJobs, scripts): a line after each 2 seconds of
work and the final count; a phase that fails before 2 seconds adds no line before the error."""

from __future__ import annotations

import contextlib
import io
import sys

import pytest

from analytics import progress as progress_module


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _run(monkeypatch: pytest.MonkeyPatch, steps: list[float], fail: bool = False) -> list[str]:
    clock, err = Clock(), io.StringIO()
    monkeypatch.setattr(progress_module.time, "monotonic", clock)
    monkeypatch.setattr(sys, "stderr", err)
    expected = pytest.raises(RuntimeError) if fail else contextlib.nullcontext()
    with expected, progress_module.progress("tags", total=len(steps)) as bar:
        for seconds in steps:
            clock.now += seconds
            bar.advance()
        if fail:
            raise RuntimeError("disk full")
    return err.getvalue().splitlines()


def test_a_short_phase_prints_only_its_final_count(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _run(monkeypatch, [0.1, 0.1, 0.1]) == ["tags: 3/3"]


def test_a_short_phase_that_fails_prints_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _run(monkeypatch, [0.1, 0.1], fail=True) == []


def test_a_long_phase_prints_a_line_after_each_two_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _run(monkeypatch, [1.0, 1.5, 0.5, 2.5, 0.1]) == ["tags: 2/5", "tags: 4/5", "tags: 5/5"]
