"""The package's layers: each folder imports only the folders below it, no module reaches into
another module's private names, and dependencies between layers are visible at the top of a
module (the command line may import lazily, to start fast)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "deepstock"

#: Bottom to top; a layer may import itself and the layers before it (``beyond`` sits beside
#: ``paper``: neither imports the other).
LAYERS = ("core", "model", "datasets", "methods", "results", "tuning", "paper", "course", "tools")
SIDE_LAYERS = {"beyond": "tuning"}  # a side layer may import up to (and including) this one

#: Modules allowed to import deepstock modules inside functions (fast start of the command line).
LAZY_IMPORTERS = {"deepstock.tools.cli"}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "deepstock" else None


def _rank(layer: str) -> float:
    if layer in SIDE_LAYERS:
        return LAYERS.index(SIDE_LAYERS[layer]) + 0.5
    return LAYERS.index(layer)


def _imports(path: Path) -> list[tuple[ast.ImportFrom | ast.Import, bool]]:
    """Every import of the module, with whether it sits inside a function."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[ast.ImportFrom | ast.Import, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append((child, in_function))
            visit(child, inside)

    visit(tree, False)
    return found


def _targets(node: ast.Import | ast.ImportFrom) -> list[tuple[str, list[str]]]:
    if isinstance(node, ast.Import):
        return [(alias.name, []) for alias in node.names]
    if node.level or not node.module:
        return []
    return [(node.module, [alias.name for alias in node.names])]


def test_every_folder_is_a_known_layer():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert folders <= set(LAYERS) | set(SIDE_LAYERS), sorted(folders - set(LAYERS))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down_and_never_at_private_names(path):
    module = _module_name(path)
    layer = _layer(module)
    problems = []
    for node, in_function in _imports(path):
        for target, names in _targets(node):
            if not target.startswith("deepstock"):
                continue
            target_layer = _layer(target)
            if layer is not None and target_layer is not None and target_layer != layer:
                if _rank(target_layer) > _rank(layer) or {layer, target_layer} == {
                    "beyond",
                    "paper",
                }:
                    problems.append(f"line {node.lineno}: {layer} imports {target} (a layer above)")
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private:
                problems.append(f"line {node.lineno}: imports private {private} from {target}")
            if in_function and module not in LAZY_IMPORTERS and target != "deepstock":
                problems.append(f"line {node.lineno}: imports {target} inside a function")
    assert not problems, problems


def test_no_import_cycle_between_modules():
    graph: dict[str, set[str]] = {}
    for path in _modules():
        module = _module_name(path)
        edges = graph.setdefault(module, set())
        for node, in_function in _imports(path):
            if in_function:
                continue
            for target, names in _targets(node):
                if target.startswith("deepstock") and target != module:
                    edges.add(target)
                    edges.update(f"{target}.{n}" for n in names)
    known = set(graph)
    graph = {m: {t for t in edges if t in known} for m, edges in graph.items()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            # a package's __init__ re-exporting its own modules is not a cycle
            if target.startswith(node + ".") or node.startswith(target + "."):
                continue
            if state.get(target) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*trail, node, target]))
            if target not in state:
                visit(target, [*trail, node])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_private_attribute_of_another_object(path):
    """``other._name`` (another module's or library's private attribute) is not read; an
    object's own ``self._name`` is."""
    problems = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Attribute) or not node.attr.startswith("_"):
            continue
        if node.attr.startswith("__"):
            continue
        base = node.value
        if isinstance(base, ast.Name) and base.id in ("self", "cls"):
            continue
        if isinstance(base, ast.Call) and getattr(base.func, "id", None) == "super":
            continue
        problems.append(f"line {node.lineno}: {ast.unparse(node)}")
    assert not problems, problems


#: The project's own text: what a user reads (package, chapters, book pages, data formats,
#: scripts, the committed datasets' metadata). The tests are left out (this one names the
#: strings it looks for).
_PROJECT_TEXT = ("deepstock", "notebooks", "book", "scripts", "perf", "assignments", "instructor")
#: Documents outside the repository that the project must not cite (it stands on its own).
_OUTSIDE_DOCUMENTS = ("SPEC" + ".md", "../" + "shared")


def test_the_project_cites_no_document_outside_the_repository():
    root = PACKAGE.parent
    files = [p for folder in _PROJECT_TEXT for p in (root / folder).rglob("*") if p.is_file()]
    files += [root / "README.md", root / "data" / "README.md", root / "Makefile"]
    files += list((root / "data" / "datasets").rglob("meta.json"))
    citing = []
    for path in files:
        if "__pycache__" in path.parts or "generated" in path.parts:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # a binary file
        citing += [
            f"{path.relative_to(root)}: {name}" for name in _OUTSIDE_DOCUMENTS if name in text
        ]
    assert not citing, citing
