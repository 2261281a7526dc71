"""The package's layering: no import circles, and the layer contract of ``pyproject.toml``."""

import ast
import graphlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "rectransfer"
MAX_LINES = 520  # past this a module says in its docstring why it is one module


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Modules of the package that ``path`` imports anywhere (inside functions too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name in modules}


def _graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(paths)
    # The root package re-exports the public API; importing it from inside is not a layer edge.
    return {
        name: _imports(path, modules) - {"rectransfer", name}
        for name, path in paths.items()
        if name != "rectransfer"
    }


def test_no_module_takes_part_in_an_import_circle():
    graph = _graph()
    graph = {name: {m for m in deps if m in graph} for name, deps in graph.items()}
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as error:
        pytest.fail(f"import circle: {' -> '.join(error.args[1])}")


def test_the_circle_check_finds_a_planted_circle():
    with pytest.raises(graphlib.CycleError):
        tuple(graphlib.TopologicalSorter({"a": {"b"}, "b": {"c"}, "c": {"a"}}).static_order())


def test_every_subpackage_is_a_layer_of_the_contract():
    text = (PACKAGE.parent / "pyproject.toml").read_text(encoding="utf-8")
    subpackages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    missing = sorted(
        name
        for name in subpackages
        if f'rectransfer.{name}"' not in text and f"rectransfer.{name} " not in text
    )
    assert missing == []


def test_long_modules_say_why_they_are_one_module():
    unexplained = []
    for path in PACKAGE.rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        if source.count("\n") > MAX_LINES:
            docstring = ast.get_docstring(ast.parse(source)) or ""
            if "One module" not in docstring:
                unexplained.append(_module_name(path))
    assert unexplained == []
