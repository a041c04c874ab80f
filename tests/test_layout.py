"""The package's layout: imports point down the data flow only, no import circles, no module
much over the house's 600 lines."""

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "neuroemu"

# Stages in data-flow order; a module may import its own stage or a lower one.
STAGES = {"neuroemu._version": 0, "neuroemu.errors": 0, "neuroemu.files": 0, "neuroemu.describe": 1,
          "neuroemu.engines": 2, "neuroemu.record": 3, "neuroemu.energy": 4,
          "neuroemu.interop": 4,
          "neuroemu.learn": 5, "neuroemu": 6, "neuroemu.sweep": 6, "neuroemu.cli": 7,
          "neuroemu.__main__": 7}


def modules() -> dict[str, Path]:
    out = {}
    for f in PKG.rglob("*.py"):
        parts = f.relative_to(PKG.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def imports(name: str, path: Path, known) -> set[str]:
    """Modules of the package that ``name`` imports, anywhere in the file (lazy ones too).
    ``from . import x`` inside a package imports that package's ``__init__`` as well."""
    is_pkg = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def stage(name: str) -> int:
    while name not in STAGES:
        name = name.rpartition(".")[0]
    return STAGES[name]


def graph():
    mods = modules()
    return {m: imports(m, f, mods) for m, f in mods.items()}


def test_the_walker_sees_relative_lazy_and_package_imports(tmp_path):
    src = tmp_path / "neuroemu" / "a"
    src.mkdir(parents=True)
    (src / "__init__.py").write_text("from .b import x\n")
    (src / "b.py").write_text("def f():\n    from . import c\n    from ..errors import E\n")
    known = {"neuroemu", "neuroemu.a", "neuroemu.a.b", "neuroemu.a.c", "neuroemu.errors"}
    assert imports("neuroemu.a", src / "__init__.py", known) == {"neuroemu.a.b"}
    assert imports("neuroemu.a.b", src / "b.py", known) == \
        {"neuroemu.a", "neuroemu.a.c", "neuroemu.errors"}


def test_imports_point_down_the_data_flow():
    upward = [f"{m} -> {t}" for m, ts in graph().items() for t in ts if stage(t) > stage(m)]
    assert not upward, "imports against the data flow: " + "; ".join(sorted(upward))


def find_circle(edges):
    """One import circle as a list of modules, or None (depth-first search)."""
    state, path = {}, []

    def visit(v):
        state[v] = "open"
        path.append(v)
        for w in sorted(edges.get(v, ())):
            if state.get(w) == "open":
                return path[path.index(w):] + [w]
            if w not in state:
                found = visit(w)
                if found:
                    return found
        state[v] = "done"
        path.pop()
        return None

    for v in sorted(edges):
        if v not in state:
            found = visit(v)
            if found:
                return found
    return None


def test_find_circle_finds_one_and_only_one():
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_circles():
    circle = find_circle(graph())
    assert circle is None, "import circle: " + " -> ".join(circle)


# The one exception to the size rule: every jitted function a kernel calls must live in the
# kernel's own file, as numba's on-disk cache only notices edits to that file (a kernel
# calling a helper from another module would keep running the old helper after an edit).
LARGER = {"neuroemu.engines.kernels": 1400}


@pytest.mark.parametrize("name", sorted(modules()))
def test_module_size(name):
    lines = len(modules()[name].read_text().splitlines())
    limit = LARGER.get(name, 620)
    assert lines <= limit, f"{name}: {lines} lines (the house splits modules at about 600)"
