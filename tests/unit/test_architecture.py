"""The structure rules of ``src/blindmatch``, checked on the source's syntax trees.

* no import cycle between modules (imports inside functions count);
* the sans-IO core: the modules defining the sessions, and everything they import, use
  no network, storage, process, thread or file primitive;
* no hand-written module over 500 lines, no function over 80 lines (tests, benchmarks
  and vector generators included);
* no module, and no benchmark script, patches a module at run time (``module.attr = ...``,
  ``setattr``).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "blindmatch"
GENERATED = PACKAGE / "v1"
# The list, plus the same primitives under other names: thread and process pools,
# event loops, and file access beside ``open()``.
FORBIDDEN_IN_CORE = frozenset({
    "grpc", "sqlite3", "socket", "subprocess", "threading", "asyncio",
    "concurrent", "multiprocessing", "selectors", "pathlib", "io", "tempfile", "shutil", "mmap",
})
SESSION_MODULES = ("blindmatch.core.holder", "blindmatch.core.requester")


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if GENERATED in path.parents:
            continue
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


@cache
def _tree(name: str) -> ast.Module:
    return ast.parse(MODULES[name].read_text(), str(MODULES[name]))


def _imported(name: str) -> set[str]:
    """Every module ``name`` imports, at any depth of its code (package ``__init__`` included)."""
    out: set[str] = set()
    is_package = MODULES[name].name == "__init__.py"
    for node in ast.walk(_tree(name)):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
    return out


def _internal_imports(name: str) -> set[str]:
    deps = set()
    for target in _imported(name):
        while target and target not in MODULES:
            target = target.rpartition(".")[0]
        if target and target != name and not name.startswith(target + "."):
            deps.add(target)  # a module importing its own parent package is not a cycle
    return deps


def test_no_import_cycle() -> None:
    graph = {name: _internal_imports(name) for name in MODULES}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycle = [*path[path.index(dep):], dep]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        path.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def _closure(roots: tuple[str, ...]) -> set[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(_internal_imports(name))
    return seen


def test_the_sessions_and_what_they_import_do_no_io() -> None:
    for name in sorted(_closure(SESSION_MODULES)):
        external = {i.split(".")[0] for i in _imported(name)}
        assert not external & FORBIDDEN_IN_CORE, f"{name} imports {sorted(external & FORBIDDEN_IN_CORE)}"
        calls = {n.func.id for n in ast.walk(_tree(name)) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        assert "open" not in calls, f"{name} calls open()"


def test_state_names_are_compared_only_inside_the_core() -> None:
    for name in MODULES:
        if name.startswith("blindmatch.core."):
            continue
        for node in ast.walk(_tree(name)):
            if isinstance(node, ast.Compare):
                source = ast.unparse(node)
                assert "state.name" not in source, f"{name}: {source}"


def _hand_written() -> dict[str, Path]:
    """Every hand-written Python module: src/ (generated code left out), tests/, benchmarks/, proto/."""
    found = dict(MODULES)
    for folder in ("tests", "benchmarks", "proto", "protocol"):
        found.update({str(path): path for path in (SRC.parent / folder).rglob("*.py")})
    return found


def test_size_limits() -> None:
    for name, path in _hand_written().items():
        lines = path.read_text().count("\n")
        assert lines <= 500, f"{name} has {lines} lines (at most 500)"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                assert length <= 80, f"{name}.{node.name} has {length} lines (at most 80)"


BENCHMARKS = SRC.parent / "benchmarks"


def _assigned_attributes(tree: ast.Module) -> list[tuple[ast.stmt, str]]:
    """Every statement that assigns (or deletes) ``name.attr...``, with the outermost ``name``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.Delete):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        else:
            continue
        for target in targets:
            base = target
            while isinstance(base, ast.Attribute):
                base = base.value
            if base is not target and isinstance(base, ast.Name):
                found.append((node, base.id))
    return found


def test_nothing_is_patched_at_run_time() -> None:
    """No module of src/ and no benchmark script assigns another module's attributes."""
    trees = {name: _tree(name) for name in MODULES}
    trees.update({str(path): ast.parse(path.read_text(), str(path)) for path in BENCHMARKS.glob("*.py")})
    for name, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr":
                raise AssertionError(f"{name}: {ast.unparse(node)}")
        for statement, owner in _assigned_attributes(tree):
            # ``x.attr = ...`` is fine on self/instances; on an imported module it is a patch.
            assert not _is_imported_module(tree, owner), f"{name}: {ast.unparse(statement)}"


def _is_imported_module(tree: ast.Module, local: str) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            if any((alias.asname or alias.name.split(".")[0]) == local for alias in node.names):
                return True
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if (alias.asname or alias.name) == local and f"{node.module}.{alias.name}" in MODULES:
                    return True
    return False
