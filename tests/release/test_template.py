"""The solution notebook and the student template are generated, and stay in sync."""

from __future__ import annotations

import ast

import nbformat
import pytest

from grader.release import template
from grader.release.template import TemplateError, make_template, strip_code, strip_markdown

GRADED = ("leaky_relu", "sample_noise", "discriminator", "generator", "gan_loss", "get_solvers",
          "lsgan_loss", "dc_discriminator", "dc_generator", "vae_kl", "optimal_d_gan",
          "optimal_d_lsgan")


def test_committed_solution_notebook_matches_the_reference_module(tf):
    from reference.build_notebook import SOLUTION_PATH, build_notebook

    expected = nbformat.writes(build_notebook()) + "\n"
    assert SOLUTION_PATH.read_text(encoding="utf-8") == expected, (
        "reference/HW4_solution.ipynb is stale: run python -m reference.build_notebook")


def test_committed_template_matches_the_generator():
    solution = nbformat.read(template.DEFAULT_SOLUTION, as_version=4)
    expected = nbformat.writes(make_template(solution)) + "\n"
    assert template.DEFAULT_TEMPLATE.read_text(encoding="utf-8") == expected, (
        "student_template/HW4_template.ipynb is stale: run hw4grade template")


def test_generate_command_writes_the_template(tmp_path):
    from grader.cli import main

    out = tmp_path / "t.ipynb"
    assert main(["template", "--out", str(out)]) == 0
    assert out.read_text() == template.DEFAULT_TEMPLATE.read_text()


def _functions(notebook) -> dict[str, list[str]]:
    """Cell sources that define each top-level function."""
    found: dict[str, list[str]] = {}
    for cell in notebook.cells:
        if cell.cell_type == "code":
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.FunctionDef):
                    found.setdefault(node.name, []).append(cell.source)
    return found


def _solution_lines() -> list[str]:
    """Distinctive lines inside the solution regions of reference/hw4.py."""
    import json
    from pathlib import Path

    source = (Path(template.PROJECT_ROOT) / "reference" / "hw4.py").read_text()
    solution, given, inside = set(), set(), False
    for line in source.splitlines():
        if line.strip() in ("# BEGIN SOLUTION", "# END SOLUTION"):
            inside = line.strip() == "# BEGIN SOLUTION"
        elif len(line.strip()) > 20:
            (solution if inside else given).add(line.strip())
    lines = sorted(solution - given)  # lines the given code also uses are not leaks
    assert len(lines) > 20
    return [json.dumps(line)[1:-1] for line in lines]  # as they appear in the .ipynb JSON


def test_template_has_no_solution_and_stubs_return_none(tf):
    notebook = nbformat.read(template.DEFAULT_TEMPLATE, as_version=4)
    text = template.DEFAULT_TEMPLATE.read_text()
    assert "SOLUTION" not in text
    for line in _solution_lines():
        assert line not in text, f"solution line leaked into the template: {line}"
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
    functions = _functions(notebook)
    namespace: dict = {"NOISE_DIM": 96}
    for name in GRADED:
        assert len(functions[name]) == 1, f"{name} must be defined in exactly one cell"
        assert "# TODO" in functions[name][0]
        exec(functions[name][0], namespace)
    assert namespace["leaky_relu"](1.0) is None
    assert namespace["sample_noise"](2, 3) is None
    assert namespace["discriminator"]() is None
    assert namespace["gan_loss"](0, 0) is None
    assert namespace["vae_kl"]([[0.0]], [[0.0]]) is None


def test_solution_defines_each_graded_function_at_top_level_of_its_own_cell():
    notebook = nbformat.read(template.DEFAULT_SOLUTION, as_version=4)
    functions = _functions(notebook)
    for name in GRADED:
        assert len(functions[name]) == 1
        tree = ast.parse(functions[name][0])
        defined = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]
        assert defined == [name], f"{name} shares its cell with {defined}"
    first_code = next(cell for cell in notebook.cells if cell.cell_type == "code")
    assert "import tensorflow as tf" in first_code.source
    assert "import numpy as np" in first_code.source


def test_strip_code_keeps_indentation_and_surroundings():
    source = ("def f(x):\n    '''doc'''\n    # BEGIN SOLUTION\n    return x + 1\n"
              "    # END SOLUTION\n")
    stripped = strip_code(source)
    assert stripped == "def f(x):\n    '''doc'''\n    # TODO: write your code here\n    pass"
    namespace: dict = {}
    exec(stripped, namespace)
    assert namespace["f"](1) is None


@pytest.mark.parametrize("source", [
    "# BEGIN SOLUTION\nx = 1\n",
    "x = 1\n# END SOLUTION\n",
    "# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION\n",
])
def test_unbalanced_code_markers_are_rejected(source):
    with pytest.raises(TemplateError, match="cell 3"):
        strip_code(source, "cell 3")


def test_markdown_regions_are_replaced():
    text = "Prompt\n<!-- BEGIN SOLUTION -->\nThe answer is 42.\n<!-- END SOLUTION -->\nAfter"
    stripped = strip_markdown(text)
    assert "42" not in stripped and "Prompt" in stripped and "After" in stripped
    with pytest.raises(TemplateError):
        strip_markdown("<!-- BEGIN SOLUTION --> no end")


def test_template_command_reports_missing_solution(tmp_path, capsys):
    from grader.cli import main

    assert main(["template", "--solution", str(tmp_path / "none.ipynb")]) == 2
    assert "no solution notebook" in capsys.readouterr().err
