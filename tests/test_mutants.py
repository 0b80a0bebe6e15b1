"""The mutation check's bugs (``make mutate``, tools/mutate.py) can still be planted.

Each mutant finds the code it changes by an exact snippet; code rewritten for speed or
clarity leaves a snippet behind, and the mutant is then skipped rather than run (seven
were, unnoticed, after the solver's result and calibration code moved). This keeps every
snippet present exactly once and every named test file present, so that ``make mutate``
tests the code as it is.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _mutate_module():
    spec = importlib.util.spec_from_file_location("_mutate_tool", ROOT / "tools" / "mutate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # (its dataclasses look their module up)
    spec.loader.exec_module(module)
    return module


_TOOL = _mutate_module()


@pytest.mark.parametrize("mutant", _TOOL.MUTANTS, ids=lambda m: m.name)
def test_mutant_applies_to_the_code_as_it_is(mutant):
    path = ROOT / mutant.path
    assert path.is_file(), f"{mutant.name}: {mutant.path} does not exist"
    text = path.read_text()
    assert _TOOL._anchors(mutant, text) is None, (
        f"{mutant.name}: {_TOOL._anchors(mutant, text)} in {mutant.path}: re-anchor it")
    mutated = _TOOL._apply(mutant, text)
    assert mutated != text
    for test in mutant.tests:
        assert (ROOT / test).is_file(), f"{mutant.name}: its test file {test} does not exist"


def test_mutant_names_are_unique():
    names = [m.name for m in _TOOL.MUTANTS]
    assert len(names) == len(set(names))
