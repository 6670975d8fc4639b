"""The package's import graph: no circle, and no import from a lower layer into a higher one (README: Package layout).

The layers, low to high (a module may import its own package and anything
below it). `kerastune_nlp/__init__.py` (the public API) and `cli/` sit on top.
"""

import ast
import collections
from pathlib import Path

import kerastune_nlp

PACKAGE = Path(kerastune_nlp.__file__).parent

LAYERS = (
    ("errors", "noise", "version"),
    ("_tf", "config"),
    ("data", "evaluation"),
    ("backbones",),
    ("models",),
    ("tasks",),
    ("runs",),
    ("inference", "predictor"),
    ("training",),
    ("tuning", "distillation", "pretraining", "export", "pruning"),
    ("serving",),
    ("cli", "__main__", "__init__"),
)
LAYER_OF = {part: level for level, parts in enumerate(LAYERS) for part in parts}


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _imported(module: str, path: Path, node, modules) -> set[str]:
    """The package modules an import statement names (`from pkg import submodule` -> the submodule)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
            base = base[: len(base) - node.level + 1]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        names = [f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in modules else prefix
                 for alias in node.names]
    found = set()
    for name in names:
        while name and name not in modules and "." in name:
            name = name.rsplit(".", 1)[0]
        if name in modules and name != module:
            found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = collections.defaultdict(set)
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                graph[module] |= _imported(module, path, node, modules)
    return graph


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def circles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def upward_imports(graph) -> list[str]:
    wrong = []
    for module, targets in graph.items():
        for target in targets:
            source_part, target_part = _part(module), _part(target)
            if source_part != target_part and LAYER_OF[target_part] > LAYER_OF[source_part]:
                wrong.append(f"{module} -> {target}")
    return sorted(wrong)


def test_every_package_part_has_a_layer():
    parts = {_part(module) for module in _modules()}
    assert parts <= set(LAYER_OF), f"add these to LAYERS: {sorted(parts - set(LAYER_OF))}"


def test_the_import_graph_has_no_circle():
    assert circles(import_graph()) == []


def test_no_import_goes_up_a_layer():
    assert upward_imports(import_graph()) == []


def test_the_check_sees_a_circle_and_an_upward_import():
    graph = {"kerastune_nlp.data.a": {"kerastune_nlp.tasks.b"}, "kerastune_nlp.tasks.b": {"kerastune_nlp.data.a"}}
    assert circles(graph) == [["kerastune_nlp.data.a", "kerastune_nlp.tasks.b"]]
    assert upward_imports(graph) == ["kerastune_nlp.data.a -> kerastune_nlp.tasks.b"]
