"""The PyTorch solution notebook and student template are generated and stay in sync."""

from __future__ import annotations

import ast

import nbformat
import pytest

pytest.importorskip("torch")

from reference import build_notebook_torch as build  # noqa: E402


def test_committed_torch_notebooks_match_the_builder():
    assert build.SOLUTION_PATH.read_text(encoding="utf-8") == \
        nbformat.writes(build.build_notebook()) + "\n", (
            "reference/HW4_solution_torch.ipynb is stale: python -m reference.build_notebook_torch")
    assert build.TEMPLATE_PATH.read_text(encoding="utf-8") == \
        nbformat.writes(build.build_template()) + "\n", (
            "student_template/HW4_torch.ipynb is stale: python -m reference.build_notebook_torch")


def test_torch_notebooks_are_small_and_without_outputs():
    for path in (build.SOLUTION_PATH, build.TEMPLATE_PATH):
        assert path.stat().st_size < 2 * 2**20
        notebook = nbformat.read(path, as_version=4)
        assert all(not cell.get("outputs") for cell in notebook.cells
                   if cell.cell_type == "code")


def test_torch_template_stubs_every_graded_function_and_keeps_the_given_ones():
    template = nbformat.read(build.TEMPLATE_PATH, as_version=4)
    text = build.TEMPLATE_PATH.read_text()
    assert "SOLUTION" not in text and "betas=(0.5, 0.999)" not in text
    cells = {cell.id: cell.source for cell in template.cells}
    namespace: dict = {"NOISE_DIM": 96}
    exec("import torch\nfrom torch import nn", namespace)
    for cell_id, functions in build.FUNCTION_CELLS.items():
        tree = ast.parse(cells[cell_id])
        assert [n.name for n in tree.body if isinstance(n, ast.FunctionDef)] == list(functions)
        assert "# TODO" in cells[cell_id]
        exec(cells[cell_id], namespace)
    assert namespace["sample_noise"](2, 3) is None
    assert namespace["discriminator"]() is None
    assert namespace["build_dc_classifier"](128) is None
    assert "def bce_loss" in cells["bce-loss"] and "def run_a_gan" in cells["run-a-gan"]
    assert "torchvision.datasets.MNIST" in cells["data"] and "download=True" in cells["data"]
