"""Notebooks that forge the grader's convergence training get nothing for it and are flagged;
the honest solution in the same batch keeps its marks (issue #20).

One batch, graded as a user grades (``hw4grade grade`` in a process of its own, real
kernels in the real sandbox, ``--mode full``), with a test rubric that trains only the
vanilla GAN for at most 400 steps, judged at the calibrated checkpoints 100, 200 and 300.
Its FCD lines are lenient (full credit at 470, none at 520) and it caps nothing for few
classes, so that the solution passes at this budget (measured on the grader's loop from its
start weights, 4 seeds: FCD 376-431 at step 400, every sample set varied enough; before
step 400 some seeds' samples are still all alike). An untrained generator scores FCD about
458, so the cheats below that train nothing reach the FCD pass line: the integrity flags
are what must zero them. The cheats are in ``tests/fixtures/hostile_training.py``.
"""

from __future__ import annotations

import ast
import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from grader.report import store
from grader.rubric import default_rubric_path
from tests.fixtures.hostile_training import (
    CHEAT_CELL,
    HONEST,
    HOSTILE,
    TRAINING_MODULE,
    render_hostile,
    write_hostile,
)

ITEM = "gan_convergence"
BUDGET, CHECKPOINTS, LINES = 400, [100, 200, 300], [470.0, 520.0]

def _test_rubric(path: Path) -> Path:
    """The shipped rubric with only the GAN trained, on the small budget and lenient lines."""
    data = yaml.safe_load(default_rubric_path().read_text(encoding="utf-8"))
    settings = data["convergence"]
    settings["budgets"]["cpu"]["gan"] = BUDGET
    settings["checkpoints"]["cpu"]["gan"] = CHECKPOINTS
    settings["thresholds"]["cpu"]["gan"] = LINES
    settings["min_class_entropy"] = 0.0  # the solution's samples are of one class this early
    settings["attribution_runs"] = 0
    data["bounds"]["training_steps"]["full"] = 2
    for item in data["items"]:
        if item["id"] in ("lsgan_convergence", "dcgan_convergence"):
            item["points"] = 0
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def batch(tmp_path_factory, mnist_dir) -> Path:
    """The honest notebook and every hostile one, graded as one batch; the output folder."""
    root = tmp_path_factory.mktemp("hostile-training")
    for notebook in (HONEST, *HOSTILE):
        write_hostile(notebook, root / "submissions")
    rubric = _test_rubric(root / "rubric.yaml")
    run = subprocess.run(
        [sys.executable, "-m", "grader", "grade", str(root / "submissions"), "--out",
         str(root / "out"), "--mode", "full", "--rubric", str(rubric), "--seed", "0",
         "--mnist", str(mnist_dir), "--workers", "2"],
        capture_output=True, text=True, errors="backslashreplace", timeout=1200,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr[-3000:]
    return root / "out"


def _results(out: Path) -> dict:
    problems: list[str] = []
    results = {Path(result.submission).stem: result
               for result in store.read_results(out, problems)}
    assert problems == [] and set(results) == {n.name for n in (HONEST, *HOSTILE)}
    return results


def _integrity_cells(out: Path) -> dict[str, str]:
    text = (out / "gradebook.csv").read_text(encoding="utf-8")
    return {Path(store.csv_value(row["submission"])).stem: row["integrity"]
            for row in csv.DictReader(io.StringIO(text))}


def _seen(item) -> str:
    details = {key: value for key, value in item.details.items() if key != "images"}
    return f"{item.points}/{item.max_points} {item.message}; details {details}"


def test_the_honest_solution_keeps_its_convergence_marks(batch):
    item = _results(batch)[HONEST.name].item(ITEM)
    assert item.points == item.max_points > 0, _seen(item)
    assert item.flags == [] and item.details["sampled_by"] == "grader", _seen(item)
    assert _integrity_cells(batch)[HONEST.name] == ""


@pytest.mark.parametrize("notebook", HOSTILE, ids=lambda notebook: notebook.name)
def test_a_forged_training_earns_nothing_and_is_flagged(batch, notebook):
    item = _results(batch)[notebook.name].item(ITEM)
    assert item.points == 0, _seen(item)
    # its samples reach the FCD pass line: the flag is what must zero it
    assert item.details["fcd"] <= LINES[0], _seen(item)
    assert any(notebook.flag_phrase in flag for flag in item.flags), _seen(item)
    cell = _integrity_cells(batch)[notebook.name]
    assert ITEM in cell and notebook.flag_phrase in cell, cell


def test_each_cheat_is_one_cell_at_the_end_that_waits_for_the_graders_training():
    """Cheap: the hostile notebooks are the solution plus one valid cell, which acts only
    when it finds the grader's training module."""
    honest = render_hostile(HONEST)
    assert all(cell.get("id") != CHEAT_CELL for cell in honest.cells)
    for notebook in HOSTILE:
        cells = render_hostile(notebook).cells
        assert len(cells) == len(honest.cells) + 1 and cells[-1].get("id") == CHEAT_CELL
        ast.parse(cells[-1].source)
        assert TRAINING_MODULE in cells[-1].source and notebook.flag_phrase
