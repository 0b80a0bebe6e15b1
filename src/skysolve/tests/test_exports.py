"""The public export table (``skysolve._EXPORTS``): every name imports and is what it claims.

Each name is reached the way users reach it, ``skysolve.<name>`` (and ``from
skysolve import *``), and must be the very object its table entry names in its
home module, carry its own name, and agree with the static-analysis imports of
``skysolve/__init__.py`` (the ``TYPE_CHECKING`` block that editors and type
checkers read).
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
from pathlib import Path

import pytest

import skysolve

EXPORTS = dict(skysolve._EXPORTS)


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_name_imports_from_the_package_and_is_its_home_object(name):
    obj = getattr(skysolve, name)
    home = importlib.import_module(f"skysolve.{EXPORTS[name]}")
    assert obj is getattr(home, name)
    if inspect.isclass(obj) or inspect.isfunction(obj):
        assert obj.__name__ == name
        assert obj.__module__.startswith("skysolve.")
        assert inspect.getdoc(obj), f"{name} has no docstring"
    if name.endswith("Error"):
        assert issubclass(obj, skysolve.SkysolveError)
    if name.endswith("Options"):
        assert dataclasses.is_dataclass(obj) and obj.__dataclass_params__.frozen
    if name.isupper():  # constants: the seed workflow's passes
        assert not callable(obj) and len(obj) > 0
    elif not inspect.isclass(obj):
        assert callable(obj), f"{name} is neither a class, a function nor a constant"


def test_star_import_gives_the_table():
    namespace: dict = {}
    exec("from skysolve import *", namespace)  # noqa: S102 - the package's own names
    for name in EXPORTS:
        assert namespace[name] is getattr(skysolve, name)
    assert set(skysolve.__all__) == set(EXPORTS) | {"__version__", "__git_hash__", "version"}
    assert isinstance(skysolve.__version__, str) and skysolve.__version__
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        skysolve.not_a_name  # noqa: B018


def test_static_imports_match_the_table():
    """``if TYPE_CHECKING:`` imports the same names from the same modules as the table."""
    tree = ast.parse(Path(skysolve.__file__).read_text())
    static = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for imp in node.body:
                if isinstance(imp, ast.ImportFrom) and imp.level == 1:
                    static.update({a.name: imp.module for a in imp.names})
    assert static == EXPORTS
