"""The direction of imports, checked: no cycles, no upward arrows, no private names across modules.

``docs/architecture.md`` draws the layers; this test walks every ``import`` of the package
(module level and inside functions) so that a cycle or an upward arrow cannot come back unnoticed.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "attribkit"

#: Each top-level part of the package and its layer: a module may import its own part and the
#: parts of lower layers, never a higher one. ``(root)`` is ``attribkit/__init__.py``.
LAYERS: dict[str, int] = {
    "core": 0,
    "toys": 0,
    "startup": 0,
    "methods": 1,
    "masks": 1,
    "viz": 1,
    "axioms": 2,
    "theory": 2,
    "evaluate": 2,
    "sequences": 2,
    "report": 2,
    "zoo": 3,
    "(root)": 4,
    "experiments": 5,
    "runs": 5,
    "demo": 6,
    "serve": 6,
    "cli": 7,
}
MAX_LINES = 460


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[tuple[str, int, list[str]]]:
    """``(module imported, line, names taken from it)`` for every import of the package."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "attribkit":
                    yield alias.name, node.lineno, []
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join([*package, base] if base else package)
            if base.split(".")[0] != "attribkit":
                continue
            plain = []
            for alias in node.names:
                if f"{base}.{alias.name}" in MODULES:
                    yield f"{base}.{alias.name}", node.lineno, []
                else:
                    plain.append(alias.name)
            if plain:
                yield base, node.lineno, plain


def _known(target: str) -> str:
    while target not in MODULES and "." in target:
        target = target.rsplit(".", 1)[0]
    return target


def _related(a: str, b: str) -> bool:
    """A package and its own submodules (re-exports in ``__init__``) are not arrows."""
    return a.startswith(b + ".") or b.startswith(a + ".")


EDGES: dict[str, dict[str, int]] = {}
PRIVATE: list[str] = []
for _name, _path in MODULES.items():
    EDGES[_name] = {}
    for _target, _line, _names in _imports(_name, _path):
        _target = _known(_target)
        if _target != _name and not _related(_name, _target):
            EDGES[_name].setdefault(_target, _line)
        PRIVATE.extend(
            f"{_path.relative_to(SRC)}:{_line} imports {n} from {_target}"
            for n in _names
            if n.startswith("_") and not n.startswith("__")
        )


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "(root)"


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in EDGES:
        if root in index:
            continue
        work = [(root, iter(EDGES[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(EDGES[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_walk_sees_the_package() -> None:
    assert len(MODULES) > 150
    assert "attribkit.core.engine" in EDGES
    assert "attribkit.core.attribution" in EDGES["attribkit.methods.gradients"]


def test_no_import_cycles() -> None:
    assert _cycles() == []


def test_cycle_finder_finds_a_cycle() -> None:
    EDGES["attribkit.core.errors"]["attribkit.core.types"] = 1
    EDGES["attribkit.core.types"]["attribkit.core.errors"] = 1
    try:
        assert any({"attribkit.core.errors", "attribkit.core.types"} <= set(c) for c in _cycles())
    finally:
        del EDGES["attribkit.core.errors"]["attribkit.core.types"]
        del EDGES["attribkit.core.types"]["attribkit.core.errors"]


def test_every_part_has_a_layer() -> None:
    assert {_part(m) for m in MODULES} <= set(LAYERS)


def test_imports_run_downwards() -> None:
    upward = [
        f"{MODULES[a].relative_to(SRC)}:{line} ({_part(a)}) imports {b} ({_part(b)})"
        for a, targets in EDGES.items()
        for b, line in targets.items()
        if LAYERS[_part(b)] > LAYERS[_part(a)]
        or (LAYERS[_part(b)] == LAYERS[_part(a)] and _part(a) != _part(b))
    ]
    assert upward == []


def test_no_private_names_cross_modules() -> None:
    assert PRIVATE == []


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_source_files_stay_short(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(SRC)} has {lines} lines: split it by idea"
