"""A controllable clock for the solver's time limit, so that no test depends on how fast
the machine is.

:func:`install` replaces the ``time`` module the solver's modules read
``perf_counter`` from with a :class:`FakeClock` whose every reading advances by a
fixed step: a solve's elapsed time is then a count of clock readings, the same on
any machine and under any load.
"""

from __future__ import annotations

import importlib
import time

#: The solver modules that read the clock (the start, the deadline checks, the result).
SOLVER_MODULES = ("skysolve.solver.solve", "skysolve.solver.lost_in_space",
                  "skysolve.solver.refinement")


class FakeClock:
    """Stands in for the ``time`` module: ``perf_counter`` advances ``step_s`` per reading."""

    def __init__(self, step_s: float) -> None:
        self.now = 0.0
        self.step_s = step_s
        self.reads = 0

    def perf_counter(self) -> float:
        self.reads += 1
        self.now += self.step_s
        return self.now

    def __getattr__(self, name: str):
        return getattr(time, name)


def install(monkeypatch, step_s: float) -> FakeClock:
    """Give the solver a :class:`FakeClock` for the rest of the test."""
    clock = FakeClock(step_s)
    for name in SOLVER_MODULES:
        monkeypatch.setattr(importlib.import_module(name), "time", clock)
    return clock
