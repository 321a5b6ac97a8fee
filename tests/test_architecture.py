"""The package's shape, checked from its source: the rules a newcomer can rely on.

* the folder tree is the architecture: a handful of shared modules at the top, every stage
  in its sub-package, and the tests in folders that mirror it;
* no module imports a private (``_name``) of another module;
* no import circles between modules (lazy imports inside functions included);
* each graded item's id is written in code once, in the item catalogue;
* the closed sets of modes and devices are written in one module each and named elsewhere;
* the kernel-side code imports nothing of the grader (it runs in the student's kernel);
* the grader's exception classes are declared in one module, under one base class.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from grader import items

PACKAGE = Path(__file__).resolve().parents[1] / "grader"
TOP_LEVEL = {"__init__", "__main__", "cli", "exceptions", "items", "quiet", "result",
             "rubric", "untrusted"}
SUB_PACKAGES = {"commands", "pipeline", "kernel", "frameworks", "oracles", "report", "release",
                "mnist", "collect", "convergence"}


def module_name(path: Path) -> str:
    """The dotted name of a module file of the package."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
KERNEL_SIDE = {name for name in MODULES if (name.startswith("grader.kernel.")
                                             and name != "grader.kernel.loader")
               or ".kernel." in name.removeprefix("grader.kernel")}


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


def private_uses(name: str, tree: ast.Module, modules: set[str]) -> list[str]:
    """Where module ``name`` (parsed as ``tree``) takes a private name of another module."""
    offences, aliases = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("grader"):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    offences.append(f"{name}: from {node.module} import {alias.name}")
                if f"{node.module}.{alias.name}" in modules:
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id in aliases and node.attr.startswith("_") \
                and not node.attr.startswith("__"):
            offences.append(f"{name}: {aliases[node.value.id]}.{node.attr}")
    return offences


def circles_in(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of a dependency graph (module -> modules it imports)."""
    circles: list[list[str]] = []
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        for dependency in sorted(graph.get(name, ())):
            if dependency in path:
                circles.append(path[path.index(dependency):] + [dependency])
            elif dependency not in done:
                visit(dependency, [*path, dependency])
        done.add(name)

    for name in sorted(graph):
        if name not in done:
            visit(name, [name])
    return circles


def test_no_module_imports_a_private_name_of_another():
    assert [offence for name in MODULES
            for offence in private_uses(name, parsed(name), set(MODULES))] == []


def test_there_is_no_import_circle():
    assert circles_in({name: grader_dependencies(name) for name in MODULES}) == []


def string_constants(name: str) -> list[tuple[int, str]]:
    return [(node.lineno, node.value) for node in ast.walk(parsed(name))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def written_outside_the_catalogue(value: str,
                                  constants: dict[str, list[tuple[int, str]]]) -> list[str]:
    """Where ``value`` is written as a string outside ``grader.items`` ("module:line");
    ["missing"] when the catalogue does not write it."""
    places = [f"{name}:{line}" for name, found in constants.items()
              for line, text in found if text == value]
    outside = [place for place in places if not place.startswith("grader.items:")]
    return outside if len(outside) < len(places) else ["missing"]


@pytest.mark.parametrize("item_id", items.ITEM_IDS)
def test_each_item_id_is_written_once_in_the_catalogue(item_id):
    constants = {name: string_constants(name) for name in MODULES if name not in KERNEL_SIDE}
    assert written_outside_the_catalogue(item_id, constants) == []


def test_only_the_frameworks_name_a_framework():
    """No module outside ``grader/frameworks/`` writes a framework's name: the pipeline and
    the reports ask the chosen framework instead of comparing names."""
    from grader.frameworks import NAMES

    outside = {name: string_constants(name) for name in MODULES
               if not name.startswith("grader.frameworks")}
    assert {name: [line for line, text in found if text in NAMES]
            for name, found in outside.items()
            if any(text in NAMES for _, text in found)} == {}


def value_constants(tree: ast.Module) -> list[tuple[int, str]]:
    """The strings ``tree`` writes as values (a mapping's keys are names, not values)."""
    keys = {id(key) for node in ast.walk(tree) if isinstance(node, ast.Dict)
            for key in node.keys if key is not None}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in keys]


def closed_set_written_outside(values: tuple[str, ...], home: str) -> dict[str, list[int]]:
    """Lines outside module ``home`` (and the kernel side) that write one of ``values``."""
    found = {name: [line for line, text in value_constants(parsed(name)) if text in values]
             for name in MODULES if name not in KERNEL_SIDE and name != home}
    return {name: lines for name, lines in found.items() if lines}


def test_modes_and_devices_are_written_where_they_are_declared():
    """``--mode`` and ``--device`` values are named (``Mode.FULL``, ``Device.GPU``), never
    compared as bare strings across modules."""
    from grader.pipeline.devices import DEVICES
    from grader.rubric import MODES

    assert closed_set_written_outside(MODES, "grader.rubric") == {}
    assert closed_set_written_outside(DEVICES, "grader.pipeline.devices") == {}


def test_the_kernel_side_imports_nothing_of_the_grader():
    for name in KERNEL_SIDE:
        assert not [module for module, _ in imports_of(name) if module.startswith("grader")], name


def test_the_rules_catch_what_they_are_named_after():
    sneaky = ast.parse("from grader.pipeline import score\n"
                       "from grader.pipeline.score import _scaled\n"
                       "def f():\n    return score._tolerance\n")
    assert private_uses("grader.x", sneaky, set(MODULES)) == [
        "grader.x: from grader.pipeline.score import _scaled",
        "grader.x: grader.pipeline.score._tolerance"]
    assert circles_in({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert circles_in({"a": {"b"}, "b": set()}) == []
    constants = {"grader.items": [(7, "gan_loss")], "grader.pipeline.x": [(3, "gan_loss")]}
    assert written_outside_the_catalogue("gan_loss", constants) == ["grader.pipeline.x:3"]
    assert written_outside_the_catalogue("vae_kl", constants) == ["missing"]
    bare = ast.parse('CONFIG = {"gpu": 1}\nif device == "gpu":\n    pass\n')
    assert value_constants(bare) == [(2, "gpu")]


def exception_classes(tree: ast.Module) -> list[str]:
    """Names of the classes ``tree`` defines whose bases name an exception."""
    return [node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
            and any(isinstance(base, ast.Name) and (base.id.endswith(("Error", "Exception"))
                                                    or base.id in {"HW4GradeError", "BadInput"})
                    for base in node.bases)]


def test_the_grader_declares_its_exceptions_in_one_module():
    stray = {name: exception_classes(parsed(name)) for name in MODULES
             if name not in KERNEL_SIDE and name != "grader.exceptions"}
    assert {name: found for name, found in stray.items() if found} == {}


def test_a_stray_exception_class_is_found():
    assert exception_classes(ast.parse("class Oops(ValueError):\n    pass\n")) == ["Oops"]


def test_every_exception_of_the_grader_has_the_common_base():
    from grader import exceptions

    classes = [value for value in vars(exceptions).values()
               if isinstance(value, type) and issubclass(value, BaseException)
               and value.__module__ == exceptions.__name__]
    assert len(classes) >= 15
    assert all(issubclass(cls, exceptions.HW4GradeError) for cls in classes)
