"""skysolve against the installed tetra3rs: every public name and parameter it has.

The reference is tetra3rs's own description of its API: the type stubs shipped
in its wheel (``tetra3rs/__init__.pyi``, read with :mod:`ast`, never imported),
which hold the real defaults where runtime introspection of the compiled module
shows ``Ellipsis``, joined with what ``inspect`` finds at run time (names a stub
might miss). For every public function, constructor and method, skysolve must
take the same positional parameters in the same order, every keyword-only one,
and the same defaults; every property and method must exist on skysolve's
objects. A new tetra3rs release therefore shows its new names here as failures.

Skipped when tetra3rs is not installed (it is part of the ``test`` extra).
The intended differences are listed in :data:`DIFFERENT_DEFAULTS`, each with
its reason, and in ``docs/tetra3rs.md``.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import skysolve
from skysolve.tests.realframes import ALT40, DATA, FOV_DEG

_NO_DEFAULT = object()

#: (callable, parameter) -> why skysolve's default differs from tetra3rs's.
DIFFERENT_DEFAULTS = {
    ("extract_centroids", "matched_filter_sigma"):
        "skysolve's hot-pixel, cosmic-ray and blend filters are tuned on the unfiltered "
        "detection mask (with the filter on by default, 7 of its extraction tests fail)",
    ("CentroidExtractor.extract", "matched_filter_sigma"): "as extract_centroids",
    ("extract_centroids", "saturation_level"):
        "'auto' finds the level from a flat top and is None on a frame without one",
    ("CentroidExtractor.extract", "saturation_level"): "as extract_centroids",
}

#: tetra3rs names that another issue brings to skysolve: expected to fail while
#: skysolve lacks them, checked like every other name as soon as it has them.
PENDING: dict[str, str] = {}

#: Names of tetra3rs's module that are accidents of its imports, not its API.
NOT_API = {"PackageNotFoundError", "tetra3rs"}


def _stub_path() -> Path | None:
    spec = importlib.util.find_spec("tetra3rs")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).with_name("__init__.pyi")
    return path if path.exists() else None


STUB = _stub_path()
pytestmark = pytest.mark.skipif(STUB is None, reason="tetra3rs (the peer) is not installed")


# --------------------------------------------------------------------------------------
# reading tetra3rs's API


def _stub_parameters(fn: ast.FunctionDef) -> list[tuple[str, bool, Any]]:
    """``(name, keyword_only, default)`` of a stub function (self/cls dropped)."""
    a = fn.args
    pos = a.posonlyargs + a.args
    defaults = [_NO_DEFAULT] * (len(pos) - len(a.defaults)) + [
        ast.literal_eval(d) for d in a.defaults]
    out = [(p.arg, False, d) for p, d in zip(pos, defaults, strict=True)]
    out += [(p.arg, True, _NO_DEFAULT if d is None else ast.literal_eval(d))
            for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True)]
    return [p for p in out if p[0] not in ("self", "cls")]


def _read_stub(path: Path) -> dict[str, Any]:
    """Functions (qualified name -> parameters) and members (class -> names) of the stub."""
    functions: dict[str, list] = {}
    members: dict[str, set[str]] = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef):
            functions[node.name] = _stub_parameters(node)
        elif isinstance(node, ast.ClassDef):
            names = members.setdefault(node.name, set())
            for item in node.body:
                if not isinstance(item, ast.FunctionDef):
                    continue
                if item.name in ("__new__", "__init__"):
                    functions[node.name] = _stub_parameters(item)
                elif not item.name.startswith("_"):
                    names.add(item.name)
                    decorators = {ast.unparse(d) for d in item.decorator_list}
                    if "property" not in decorators:
                        functions[f"{node.name}.{item.name}"] = _stub_parameters(item)
    exported = ast.parse(path.with_name("__init__.py").read_text())
    all_names = next(ast.literal_eval(n.value) for n in exported.body
                     if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "__all__")
    return {"functions": functions, "members": members, "all": all_names}


def _runtime_parameters(obj: Any) -> list[tuple[str, bool, Any]] | None:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    return [(p.name, p.kind is p.KEYWORD_ONLY,
             _NO_DEFAULT if p.default is p.empty else p.default)
            for p in sig.parameters.values()
            if p.name not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _merge(stub: list | None, runtime: list | None) -> list[tuple[str, bool, Any]]:
    """The stub's parameters (true defaults), with any the runtime has beyond them."""
    if stub is None:
        return [(n, k, None if d is Ellipsis else d) for n, k, d in runtime or []]
    names = {n for n, _, _ in stub}
    return stub + [(n, k, d) for n, k, d in runtime or [] if n not in names]


def _api() -> dict[str, Any] | None:
    if STUB is None:
        return None
    import tetra3rs

    api = _read_stub(STUB)
    functions = api["functions"]
    for cname in [n for n in dir(tetra3rs) if isinstance(getattr(tetra3rs, n), type)]:
        cls = getattr(tetra3rs, cname)
        if cname in NOT_API:
            continue
        names = api["members"].setdefault(cname, set())
        for m in dir(cls):
            if m.startswith("_"):
                continue
            names.add(m)
            attr = inspect.getattr_static(cls, m)
            if callable(attr) or isinstance(attr, staticmethod | classmethod):
                key = f"{cname}.{m}"
                functions[key] = _merge(functions.get(key),
                                        _runtime_parameters(getattr(cls, m)))
    for fname in api["all"]:
        obj = getattr(tetra3rs, fname)
        if callable(obj) and not isinstance(obj, type):
            functions[fname] = _merge(functions.get(fname), _runtime_parameters(obj))
    api["module_names"] = sorted({*api["all"], "__version__", "version"}
                                 | {n for n in dir(tetra3rs) if not n.startswith("_")} - NOT_API)
    return api


API = _api()
FUNCTIONS = sorted(API["functions"]) if API else []
MEMBERS = sorted((c, m) for c, ms in API["members"].items() for m in ms) if API else []


# --------------------------------------------------------------------------------------
# the checks


def _skysolve_object(qualname: str) -> Any:
    obj: Any = skysolve
    for part in qualname.split("."):
        assert hasattr(obj, part), f"skysolve has no {qualname}"
        obj = getattr(obj, part)
    return obj


def _skysolve_parameters(obj: Any) -> list[inspect.Parameter]:
    params = list(inspect.signature(obj).parameters.values())
    return [p for p in params if p.name not in ("self", "cls")]


def test_every_public_name_exists():
    missing = [n for n in API["module_names"] if not hasattr(skysolve, n)]
    assert not missing, f"tetra3rs names skysolve lacks: {missing}"


@pytest.mark.parametrize("qualname", FUNCTIONS)
def test_parameters_and_defaults_agree(qualname):
    ours = {p.name: p for p in _skysolve_parameters(_skysolve_object(qualname))}
    pending = [n for n, _, _ in API["functions"][qualname]
               if f"{qualname}.{n}" in PENDING and n not in ours]
    theirs = [t for t in API["functions"][qualname] if t[0] not in pending]
    problems = []
    # positional parameters: the same names in the same order, then only optional extras
    positional = [p.name for p in ours.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    their_positional = [n for n, kw, _ in theirs if not kw]
    if positional[:len(their_positional)] != their_positional:
        problems.append(f"positional order {positional} != tetra3rs's {their_positional}")
    problems += [f"{p.name} is required in skysolve only" for p in ours.values()
                 if p.name not in {n for n, _, _ in theirs} and p.default is p.empty
                 and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    for name, _, default in theirs:
        p = ours.get(name)
        if p is None:
            problems.append(f"no parameter {name!r}")
        elif default is not _NO_DEFAULT and (qualname, name) not in DIFFERENT_DEFAULTS:
            mine = p.default
            if mine is p.empty or not _equal(mine, default):
                problems.append(f"{name}: default {mine!r} != tetra3rs's {default!r}")
    assert not problems, f"{qualname}: " + "; ".join(problems)
    if pending:
        pytest.xfail("; ".join(PENDING[f"{qualname}.{n}"] for n in pending))


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, str) or isinstance(b, str) or a is None or b is None:
        return a == b
    return bool(np.all(np.asarray(a) == np.asarray(b)))


def test_the_listed_differences_are_real():
    """Each intended difference is still one (else it should leave the list)."""
    for (qualname, name) in DIFFERENT_DEFAULTS:
        theirs = {n: d for n, _, d in API["functions"][qualname]}
        ours = inspect.signature(_skysolve_object(qualname)).parameters[name].default
        assert not _equal(ours, theirs[name]), (qualname, name)


@pytest.fixture(scope="module")
def instances(small_db):
    """One skysolve object of every tetra3rs class, made the way tetra3rs users make them."""
    import tifffile

    image = tifffile.imread(DATA / ALT40)
    ext = skysolve.extract_centroids(image, sigma_threshold=5.0)
    res = small_db.solve_from_centroids(ext.centroids, fov_estimate_deg=FOV_DEG,
                                        image_shape=image.shape)
    assert res
    cal = small_db.calibrate_camera(res, ext.centroids, image_shape=image.shape, order=2)
    return {
        "CameraModel": skysolve.CameraModel.from_fov(10.0, 1024, 768),
        "CalibrateResult": cal,
        "SolveResult": res,
        "SolveFailure": small_db.solve_from_centroids(ext.centroids[:3],
                                                      fov_estimate_deg=FOV_DEG,
                                                      image_shape=image.shape),
        "CatalogStar": small_db.get_star(0),
        "ExtractionResult": ext,
        "Centroid": skysolve.Centroid(1.0, 2.0),
        "SolverDatabase": small_db,
        "RadialDistortion": skysolve.RadialDistortion(k1=-1e-8),
        "PolynomialDistortion": skysolve.PolynomialDistortion(2, 512.0, np.zeros(6),
                                                              np.zeros(6)),
        "CentroidExtractor": skysolve.CentroidExtractor(),
    }


@pytest.mark.parametrize("cls, member", MEMBERS, ids=[f"{c}.{m}" for c, m in MEMBERS])
def test_every_attribute_exists(instances, cls, member):
    assert cls in instances, f"no skysolve instance of {cls} to check"
    obj = instances[cls]
    assert type(obj).__name__ == cls
    if not hasattr(obj, member) and f"{cls}.{member}" in PENDING:
        pytest.xfail(PENDING[f"{cls}.{member}"])
    assert hasattr(obj, member), f"skysolve's {cls} has no {member}"


def test_module_odds_and_ends():
    import re

    assert skysolve.version("skysolve") == skysolve.__version__  # importlib.metadata's
    assert re.fullmatch(r"[0-9a-f]{7}|unknown", skysolve.__git_hash__)
    assert skysolve.reset_log_cache() is None
