"""Generate the student template from the solution notebook.

Solution regions are marked the way nbgrader marks them:

* in code cells, the lines from ``# BEGIN SOLUTION`` to ``# END SOLUTION`` become a
  ``# TODO`` comment and ``pass`` at the same indentation, so a stubbed function
  still runs and returns ``None``;
* in markdown cells, ``<!-- BEGIN SOLUTION -->`` ... ``<!-- END SOLUTION -->``
  becomes an invitation to write the answer.

Outputs and execution counts are cleared, so nothing the solution printed reaches students.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from grader.exceptions import TemplateError

CODE_BEGIN = re.compile(r"^(\s*)# BEGIN SOLUTION\s*$")
CODE_END = re.compile(r"^\s*# END SOLUTION\s*$")
MARKDOWN_REGION = re.compile(r"<!-- BEGIN SOLUTION -->.*?<!-- END SOLUTION -->", re.DOTALL)
CODE_STUB = "# TODO: write your code here"
MARKDOWN_STUB = "*Write your answer here.*"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SOLUTION = PROJECT_ROOT / "reference" / "HW4_solution.ipynb"
DEFAULT_TEMPLATE = PROJECT_ROOT / "student_template" / "HW4_template.ipynb"


def strip_code(source: str, where: str = "cell") -> str:
    """Replace every solution region of a code cell's source with a TODO stub."""
    out: list[str] = []
    indent: str | None = None
    for number, line in enumerate(source.splitlines(), start=1):
        begin, end = CODE_BEGIN.match(line), CODE_END.match(line)
        if begin:
            if indent is not None:
                raise TemplateError(f"{where}, line {number}: BEGIN SOLUTION inside a region")
            indent = begin.group(1)
            out += [f"{indent}{CODE_STUB}", f"{indent}pass"]
        elif end:
            if indent is None:
                raise TemplateError(f"{where}, line {number}: END SOLUTION without BEGIN")
            indent = None
        elif indent is None:
            out.append(line)
    if indent is not None:
        raise TemplateError(f"{where}: BEGIN SOLUTION is never closed")
    return "\n".join(out)


def strip_markdown(source: str, where: str = "cell") -> str:
    """Replace every solution region of a markdown cell with an answer placeholder."""
    stripped = MARKDOWN_REGION.sub(MARKDOWN_STUB, source)
    if "SOLUTION -->" in stripped:
        raise TemplateError(f"{where}: unbalanced <!-- BEGIN/END SOLUTION --> markers")
    return stripped


def make_template(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Return the student template of a solution notebook (the input is not changed)."""
    template = nbformat.from_dict(solution)  # a deep copy
    for index, cell in enumerate(template.cells):
        where = f"cell {index}"
        if cell.cell_type == "code":
            cell.source = strip_code(cell.source, where)
            cell.outputs = []
            cell.execution_count = None
        elif cell.cell_type == "markdown":
            cell.source = strip_markdown(cell.source, where)
    # the solution's own marks (its framework ...) stay, its role changes
    template.metadata["hw4grade"] = {**solution.metadata.get("hw4grade", {}), "role": "template"}
    return template


def write_notebook(notebook: nbformat.NotebookNode, path: Path) -> None:
    """Write a notebook in a stable format (so regenerating it gives identical bytes)."""
    nbformat.validate(notebook)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(nbformat.writes(notebook) + "\n", encoding="utf-8")


def generate(solution_path: Path = DEFAULT_SOLUTION,
             template_path: Path = DEFAULT_TEMPLATE) -> Path:
    """Read the solution notebook, strip it, and write the template; return its path."""
    solution = nbformat.read(solution_path, as_version=4)
    write_notebook(make_template(solution), template_path)
    return template_path
