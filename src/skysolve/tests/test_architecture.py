"""The package's shape: no import cycle, no upward import, short functions, declared layers.

The import graph is read from the source (``ast``), every import counted --
at module level, inside functions and under ``TYPE_CHECKING`` alike -- so a
lazy import cannot hide a cycle or an upward dependency.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1]  # src/skysolve
PACKAGE = "skysolve"

#: The stages and helpers from the bottom of the package to its top. A module may
#: import from its own component and from components of a lower rank only.
RANKS = {
    "errors": 0, "_cachedir": 0, "_threads": 0, "_progress": 0, "_meta": 0, "_files": 0,
    "_args": 1, "_jit": 1,
    "_options": 2, "geometry": 2,
    "sky": 3, "centroids": 3, "camera": 3, "imagedata": 3,
    "io": 4, "extraction": 4,
    "solver": 5, "simulate": 5,
    "batch": 6,
    "calibration": 7,
    "database": 8,
    "defaultdb": 9, "plotting": 9,
    "demo": 10, "pipeline": 10, "fields": 10,
    "server": 11,
    "cli": 12,
    "__init__": 13, "__main__": 13,
}

#: Functions allowed over the length limit: declarative tables.
LONG_FUNCTIONS_ALLOWED = {("cli/parser.py", "build_parser")}
MAX_CODE_LINES = 80


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package outside tests."""
    out = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC)
        if "tests" in rel.parts:
            continue
        parts = [PACKAGE, *rel.with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _imports(module: str, path: Path) -> set[str]:
    """Package modules that ``module`` imports (anywhere in its source)."""
    tree = ast.parse(path.read_text())
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = (node.module or "") if node.level == 0 else _resolve(
                module, is_package, node.level, node.module)
            subs = [f"{base}.{a.name}" for a in node.names]
            # "from pkg import sub" needs the submodule; the package only for other names
            targets = subs + ([base] if not all(t in MODULES for t in subs) else [])
        for t in targets:
            # the longest package module the target names (a module, or a name in one)
            while t and t not in MODULES:
                t = t.rpartition(".")[0]
            if t and t != module and t.startswith(PACKAGE + "."):
                found.add(t)
    return found


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def _component(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_component_has_a_rank():
    assert {_component(m) for m in MODULES} <= set(RANKS), \
        sorted({_component(m) for m in MODULES} - set(RANKS))


def test_the_import_graph_has_no_cycle():
    # Tarjan's strongly connected components; any component of size > 1 is a cycle
    index, low, on, stack, cycles = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_no_upward_import():
    upward = [(m, t) for m, targets in GRAPH.items() for t in targets
              if _component(m) != _component(t)
              and RANKS[_component(t)] >= RANKS[_component(m)]]
    assert not upward, "imports from a higher (or equal) layer:\n" + "\n".join(
        f"  {m} -> {t}" for m, t in sorted(upward))


def _declared(docstring: str) -> set[str]:
    """Components named after 'May import:' in a subpackage docstring."""
    match = re.search(r"May import:(.*?)(?:\n\n|$)", docstring, re.S)
    assert match, "the docstring says what the subpackage may import"
    text = match.group(1)
    if "everything" in text:
        return set(RANKS)
    return set(re.findall(r"``([\w.]+)``", text))


SUBPACKAGES = sorted(m for m, p in MODULES.items() if p.name == "__init__.py" and m != PACKAGE)


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _name_outside(target: str, package: str) -> str:
    """How a docstring names an import from outside ``package``: the component, or for a
    nested subpackage the sibling module's path (``solver.keys``)."""
    parts = target.split(".")[1:]
    depth = len(package.split(".")) - 1  # 1 for skysolve.solver, 2 for skysolve.solver.x
    return ".".join(parts[:depth]) if depth > 1 and parts[0] == package.split(".")[1] \
        else parts[0]


@pytest.mark.parametrize("package", SUBPACKAGES)
def test_subpackages_import_only_what_they_declare(package):
    doc = ast.get_docstring(ast.parse(MODULES[package].read_text())) or ""
    assert doc.splitlines()[0].strip(), "a first line saying what the subpackage holds"
    allowed = _declared(doc)
    used = {_name_outside(t, package) for m, targets in GRAPH.items() if _inside(m, package)
            for t in targets if not _inside(t, package)}
    beyond = {u for u in used if u not in allowed and u.split(".")[0] not in allowed}
    assert not beyond, f"{package} imports {sorted(beyond)} beyond its docstring"


def _code_lines(lines: list[str], node: ast.AST) -> int:
    skip = set()
    body = getattr(node, "body", [])
    if body and isinstance(body[0], ast.Expr) and isinstance(
            getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value,
                                                                        str):
        skip = set(range(body[0].lineno, body[0].end_lineno + 1))
    n = 0
    for i in range(node.lineno, node.end_lineno + 1):
        s = lines[i - 1].strip()
        if i not in skip and s and not s.startswith("#"):
            n += 1
    return n


def test_no_function_is_too_long_to_hold_in_ones_head():
    long = []
    for path in MODULES.values():
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = _code_lines(lines, node)
                key = (str(path.relative_to(SRC)), node.name)
                if n > MAX_CODE_LINES and key not in LONG_FUNCTIONS_ALLOWED:
                    long.append(f"{key[0]}:{node.name} ({n} lines of code)")
    assert not long, "functions over the limit:\n" + "\n".join(long)


def test_the_graph_reads_real_imports():
    """The analysis itself finds known edges (a broken reader would pass the tests above)."""
    assert "skysolve.solver.result" in GRAPH["skysolve.calibration.inputs"]
    assert "skysolve.solver.backends.reference" in GRAPH["skysolve.solver.backends.compiled"]
    assert "skysolve.io.wcs" in GRAPH["skysolve.solver.result"]  # a lazy import in a method
    assert "skysolve.calibration.fit" in GRAPH["skysolve.database"]
    assert len(GRAPH) > 50
