"""The code's layout rules, read from the sources with `ast`: imports point one way (no circles), no private names
cross modules, imports inside functions only defer heavy or optional packages, the readers import only the IR,
numerics and errors, the runtime reaches no reader's internals, compile.py holds no op, and no module is long."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("edgeml", "converters")
MAX_LINES = 600
# imports a function may make: packages too heavy or optional to load with the module that uses them
DEFERRED = {"tensorflow", "tf_keras", "keras", "tensorflow_model_optimization", "tf2onnx", "onnx", "onnxruntime",
            "ai_edge_litert", "tflite_micro", "matplotlib", "sklearn", "h5py", "converters.onnx"}
# the package's lazy `edgeml.Interpreter`: the readers import edgeml.ir, so an eager runtime import in edgeml's
# __init__ would close the circle edgeml -> runtime -> converters -> edgeml
LAZY_ATTRIBUTES = {("edgeml", "edgeml.runtime.interpreter")}
READER_IMPORTS = {"edgeml", "edgeml.ir", "edgeml.numerics", "edgeml.errors",
                  "edgeml.pages"}       # (the file buffer's huge pages: a leaf module, numpy and the standard library)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


SOURCES = {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}
TREES = {name: ast.parse(path.read_text(), str(path)) for name, path in SOURCES.items()}


def resolve(name: str, node: ast.ImportFrom | ast.Import) -> list:
    """The project modules an import statement loads (a `from pkg import sub` names the submodule)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] in PACKAGES]
    if node.level or node.module is None or node.module.split(".")[0] not in PACKAGES:
        return []
    return [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in SOURCES else node.module for a in node.names]


def module_level_imports(tree: ast.Module):
    """Import statements that run when the module loads (top level, also inside try / if at top level)."""
    todo = list(tree.body)
    while todo:
        node = todo.pop(0)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.Try, ast.If)):
            todo.extend(node.body + node.orelse + getattr(node, "finalbody", [])
                        + [s for h in getattr(node, "handlers", []) for s in h.body])


def function_imports(tree: ast.Module):
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    yield node


def import_graph() -> dict:
    """Module -> modules its loading runs, including the __init__ of each package it enters from outside."""
    graph = {}
    for name, tree in TREES.items():
        edges = set()
        for node in module_level_imports(tree):
            for target in resolve(name, node):
                parts = target.split(".")
                for k in range(1, len(parts) + 1):
                    enclosing = ".".join(parts[:k])
                    if enclosing in SOURCES and enclosing != name and not name.startswith(enclosing + "."):
                        edges.add(enclosing)
        graph[name] = edges
    return graph


def find_cycle(graph: dict):
    state, stack = {}, []

    def visit(n):
        state[n] = "open"
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == "open":
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        state[n] = "done"
        stack.pop()
        return None
    for n in sorted(graph):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def test_the_import_graph_has_no_circle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_a_circle_would_be_found():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_private_name_is_imported_across_modules():
    bad = [f"{name}: from {node.module} import {a.name}"
           for name, tree in TREES.items() for node in ast.walk(tree)
           if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES
           for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
    assert not bad, bad


def test_functions_import_only_heavy_or_optional_packages():
    bad = []
    for name, tree in TREES.items():
        for node in function_imports(tree):
            targets = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for t in targets:
                deferred = any(t == d or t.startswith(d + ".") for d in DEFERRED)
                if not deferred and (name, t) not in LAZY_ATTRIBUTES:
                    bad.append(f"{name}:{node.lineno}: {t}")
    assert not bad, bad


def test_readers_import_only_the_ir_numerics_errors_and_pages():
    bad = []
    for name, tree in TREES.items():
        if not name.startswith("converters"):
            continue
        for node in list(module_level_imports(tree)) + list(function_imports(tree)):
            for target in resolve(name, node):
                if not target.startswith("converters") and target not in READER_IMPORTS:
                    bad.append(f"{name}: {target}")
    assert not bad, bad


def test_edgeml_reaches_only_the_readers_entry_points():
    entry = {"converters", "converters.tflite", "converters.onnx"}
    bad = [f"{name}: {target}" for name, tree in TREES.items() if name.startswith("edgeml")
           for node in list(module_level_imports(tree)) + list(function_imports(tree))
           for target in resolve(name, node) if target.startswith("converters") and target not in entry]
    assert not bad, bad


def test_the_runtime_branches_on_no_file_format():
    """Graph.source is provenance for reports: the runtime reads the semantics the reader wrote instead."""
    bad = [f"{name}:{node.lineno}" for name, tree in TREES.items() if name.startswith("edgeml.runtime")
           for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr == "source"]
    assert not bad, bad


def test_compile_holds_no_op():
    from edgeml.runtime.registry import OPS
    literals = {n.value for n in ast.walk(TREES["edgeml.runtime.compile"]) if isinstance(n, ast.Constant)}
    assert not literals & set(OPS)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_modules_stay_short(name):
    lines = SOURCES[name].read_text().count("\n")
    assert lines <= MAX_LINES, f"{SOURCES[name].relative_to(ROOT)} has {lines} lines (split it by concern)"
