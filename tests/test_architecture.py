"""The package's shape, checked from its source: the rules a newcomer can rely on.

* the folder tree is the architecture: a handful of shared modules at the top, every stage
  in its sub-package, and the tests in folders that mirror it;
* no module imports a private (``_name``) of another module;
* no import circles between modules (lazy imports inside functions included);
* each graded item's id is written in code once, in the item catalogue;
* the kernel-side code imports nothing of the grader (it runs in the student's kernel).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from grader import items

PACKAGE = Path(__file__).resolve().parents[1] / "grader"
TOP_LEVEL = {"__init__", "__main__", "cli", "items", "quiet", "result", "rubric"}
SUB_PACKAGES = {"commands", "pipeline", "kernel", "profiles", "oracles", "report", "release",
                "mnist"}


def module_name(path: Path) -> str:
    """The dotted name of a module file of the package."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
KERNEL_SIDE = {name for name in MODULES if name.startswith("grader.kernel.")
               and name != "grader.kernel.loader"}


def parsed(name: str) -> ast.Module:
    return ast.parse(MODULES[name].read_text(encoding="utf-8"))


def imports_of(name: str) -> list[tuple[str, list[str]]]:
    """(module imported, names taken from it) for every import of ``name``, lazy ones too."""
    found = []
    for node in ast.walk(parsed(name)):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


def grader_dependencies(name: str) -> set[str]:
    """The package's modules ``name`` imports (``from grader.x import y`` counts y when y is
    a module)."""
    found = set()
    for module, names in imports_of(name):
        if not module.startswith("grader"):
            continue
        for imported in names:
            if f"{module}.{imported}" in MODULES:
                found.add(f"{module}.{imported}")
        if module in MODULES and (not names or any(f"{module}.{n}" not in MODULES
                                                   for n in names)):
            found.add(module)
    found.discard(name)
    return found


def test_the_top_of_the_package_holds_only_shared_modules():
    top = {path.stem for path in PACKAGE.glob("*.py")}
    assert top <= TOP_LEVEL, f"modules to move into a sub-package: {sorted(top - TOP_LEVEL)}"
    packages = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert packages == SUB_PACKAGES


def test_the_tests_mirror_the_package():
    tests = PACKAGE.parent / "tests"
    folders = {path.relative_to(tests).as_posix() for path in tests.rglob("test_*.py")}
    folders = {str(Path(folder).parent) for folder in folders} - {"."}
    mirrored = {folder for folder in folders if (PACKAGE / folder / "__init__.py").exists()}
    assert folders - mirrored == {"reference"}  # the instructor's package, beside grader/


def test_no_module_imports_a_private_name_of_another():
    offences = []
    for name in MODULES:
        tree = parsed(name)
        aliases = {}
        for module, names in imports_of(name):
            if module.startswith("grader"):
                offences += [f"{name}: from {module} import {n}" for n in names
                             if n.startswith("_") and not n.startswith("__")]
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and \
                    node.module.startswith("grader"):
                for alias in node.names:
                    if f"{node.module}.{alias.name}" in MODULES:
                        aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id in aliases and node.attr.startswith("_") \
                    and not node.attr.startswith("__"):
                offences.append(f"{name}: {aliases[node.value.id]}.{node.attr}")
    assert offences == []


def test_there_is_no_import_circle():
    graph = {name: grader_dependencies(name) for name in MODULES}
    circles = []

    def visit(name: str, path: list[str], done: set[str]) -> None:
        for dependency in sorted(graph[name]):
            if dependency in path:
                circles.append(path[path.index(dependency):] + [dependency])
            elif dependency not in done:
                visit(dependency, [*path, dependency], done)
        done.add(name)

    done: set[str] = set()
    for name in sorted(graph):
        if name not in done:
            visit(name, [name], done)
    assert circles == []


def string_constants(name: str) -> list[tuple[int, str]]:
    return [(node.lineno, node.value) for node in ast.walk(parsed(name))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


@pytest.mark.parametrize("item_id", items.ITEM_IDS)
def test_each_item_id_is_written_once_in_the_catalogue(item_id):
    places = [f"{name}:{line}" for name in MODULES if name not in KERNEL_SIDE
              for line, text in string_constants(name) if text == item_id]
    catalogue = [place for place in places if place.startswith("grader.items:")]
    assert catalogue and places == catalogue, f"{item_id} is written outside the catalogue"


def test_the_kernel_side_imports_nothing_of_the_grader():
    for name in KERNEL_SIDE:
        assert not [module for module, _ in imports_of(name) if module.startswith("grader")], name


def test_the_checks_above_can_fail():
    """The rules catch what they are meant to: a private import, a circle, a stray id."""
    source = "from grader.pipeline.score import _scaled\nX = 'gan_loss'\n"
    tree = ast.parse(source)
    private = [alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
               for alias in node.names if alias.name.startswith("_")]
    assert private == ["_scaled"]
    assert "gan_loss" in [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)]
