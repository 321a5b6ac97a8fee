"""The grading engine on the whole fixture corpus: each submission loses points exactly where
it should and nowhere else, and nothing a submission does breaks the batch.

The corpus (tests/fixtures/submissions.py) is graded once per session as one batch with two
workers, as an instructor would run it; the tests below then read the results.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from grader.pipeline.grade_many import grade_batch
from grader.pipeline.grade_one import Options, prepare_mnist
from grader.pipeline.load import find_notebooks
from grader.report import store
from grader.rubric import load_rubric
from tests.fixtures.submissions import (
    INVALID,
    SOLUTION_PATH,
    UNIT_ITEMS,
    VARIANTS,
    write_variant,
)

SEED = 11
# Always graded: every fault, cheat, invalid file and the template, one mistake per function,
# a few correct-but-different solutions. The rest of the corpus is marked slow
# (run it with: pytest -m slow tests/pipeline/test_engine.py).
EXTRA_CORRECT = {"gan_loss_keras_bce", "generator_subclass", "discriminator_functional",
                 "dc_discriminator_lambda_reshape", "discriminator_without_input_layer"}
# The longest of the corpus (30-70 s of kernel each), slow because the default run meets the
# same behaviour elsewhere: a hung cell in tests/pipeline/test_execute.py, the memory bound
# and a kernel that exits in tests/pipeline/test_limits.py' hostile batch, a kernel that dies
# in segfault_cell below, an allclose patch in allclose_patch below.
SLOW_ONES = {"infinite_loop_cell", "memory_hog_cell", "kernel_exit_cell",
             "allclose_patch_wrong_leaky_relu"}


def _representative() -> set[str]:
    chosen, functions = set(), set()
    for variant in VARIANTS:
        if variant.kind in ("fault", "cheat", "invalid", "template") \
                or variant.name in EXTRA_CORRECT:
            chosen.add(variant.name)
        elif variant.kind == "mistake" and variant.function not in functions:
            functions.add(variant.function)
            chosen.add(variant.name)
    return chosen - SLOW_ONES


REPRESENTATIVE = _representative()


def _param(variant):
    marks = () if variant.name in REPRESENTATIVE else (pytest.mark.slow,)
    return pytest.param(variant, id=variant.name, marks=marks)


@pytest.fixture(scope="session")
def corpus(request, tmp_path_factory, mnist_dir) -> dict[str, object]:
    """Grade the variants the selected tests need, once, as one batch with two workers."""
    wanted = set(REPRESENTATIVE)
    for test in request.session.items:
        if test.module.__name__ != __name__:  # other modules parametrize over variants too
            continue
        params = test.callspec.params if hasattr(test, "callspec") else {}
        if params.get("variant") is not None:
            wanted.add(params["variant"].name)
        if isinstance(params.get("name"), str):  # the faults, by name
            wanted.add(params["name"])
    root = tmp_path_factory.mktemp("corpus")
    for variant in VARIANTS:
        if variant.name in wanted:
            write_variant(variant, SOLUTION_PATH, root / "submissions")
    options = Options(rubric=load_rubric(), seed=SEED, cell_timeout=40,
                      memory_limit=3 * 2**30, threads=1, probe_timeout=60)
    options.mnist_npz = prepare_mnist(str(mnist_dir), root / "cache")
    results = grade_batch(find_notebooks([root / "submissions"]), root / "out", options,
                          workers=2)
    by_name = {Path(result.submission).stem: result for result in results}
    by_name["_out"] = root / "out"
    by_name["_wanted"] = wanted
    by_name["_options"] = options
    return by_name


def _graded(variant) -> bool:
    return variant.kind not in (INVALID,)


@pytest.mark.parametrize("variant", [_param(v) for v in VARIANTS if _graded(v)])
def test_points_are_lost_exactly_where_they_should_be(corpus, variant):
    result = corpus[variant.name]
    assert result.error is None, result.error
    for item_id in UNIT_ITEMS:
        item = result.item(item_id)
        if item_id in variant.loses:
            assert item.points < item.max_points, f"{item_id} should lose points: {item}"
            assert item.message and item.message != "all checks passed"
        else:
            assert item.points == item.max_points, f"{item_id} lost points: {item.message}"


@pytest.mark.parametrize("variant", [_param(v) for v in VARIANTS if v.kind == INVALID])
def test_invalid_files_score_zero_with_a_clear_error(corpus, variant):
    result = corpus[variant.name]
    assert result.error and variant.name in result.submission
    assert result.score == 0
    assert all(item.points == 0 for item in result.items)
    assert "Traceback" not in result.error


@pytest.mark.parametrize("variant", [_param(v) for v in VARIANTS if v.patched])
def test_monkeypatches_are_reported(corpus, variant):
    warnings = " ".join(corpus[variant.name].warnings)
    for name in variant.patched:
        assert name in warnings


def test_unpatched_submissions_have_no_warning(corpus):
    assert corpus["gan_loss_keras_bce"].warnings == []


def test_blank_template_scores_nothing_on_units(corpus):
    result = corpus["blank_template"]
    units = [item for item in result.items if item.id in UNIT_ITEMS and item.id != "runs_clean"]
    assert units and all(item.points == 0 for item in units)
    assert all("not implemented" in item.message for item in units)


def _fault(name: str, status: str, error_name: str | None):
    marks = (pytest.mark.slow,) if name in SLOW_ONES else ()
    return pytest.param(name, status, error_name, id=name, marks=marks)


@pytest.mark.parametrize(("name", "status", "error_name"), [
    _fault("infinite_loop_cell", "timeout", "Timeout"),
    _fault("kernel_exit_cell", "died", "KernelDied"),
    _fault("segfault_cell", "died", "KernelDied"),
    _fault("memory_hog_cell", "memory", "MemoryLimit"),
    _fault("raising_cell", "error", None),
])
def test_faults_are_reported_against_their_cell(corpus, name, status, error_name):
    result = corpus[name]
    bad = [cell for cell in result.cells if cell.status not in ("ok", "budget")]
    assert [cell.status for cell in bad] == [status]
    if error_name:
        assert bad[0].error_name == error_name
    assert f"cell {bad[0].index + 1}" in result.item("runs_clean").message


def test_training_cut_offs_are_not_errors(corpus):
    cells = corpus["gan_loss_keras_bce"].cells
    assert [cell.status for cell in cells if cell.status == "budget"] == ["budget"] * 3
    assert corpus["gan_loss_keras_bce"].item("runs_clean").points == 5


def test_output_flood_is_capped(corpus):
    result = corpus["output_flood_cell"]
    assert any(cell.output_truncated for cell in result.cells)
    assert result.item("runs_clean").status == "passed"


def test_results_carry_the_run_settings(corpus):
    result = corpus["gan_loss_keras_bce"]
    assert result.seed == SEED and result.mode == "quick" and result.device == "cpu"
    assert len(result.notebook_sha256) == 64
    assert {"kernel_start", "execute", "probe", "total"} <= set(result.timing)


def test_every_report_is_written(corpus):
    out = corpus["_out"]
    names = {p.stem for p in (out / store.RESULTS_DIR).glob("*.json")}
    assert names == corpus["_wanted"]
    assert (out / store.FEEDBACK_DIR / "gan_loss_keras_bce.html").is_file()
    rows = (out / "gradebook.csv").read_text().splitlines()
    assert len(rows) == len(corpus["_wanted"]) + 1
    stored = json.loads((out / store.RESULTS_DIR / "blank_template.json").read_text())
    assert stored["items"][1]["id"] == "leaky_relu"


def test_messages_do_not_leak_hidden_values(corpus):
    message = corpus["leaky_relu_fixed_alpha"].item("leaky_relu").message
    assert "alpha passed in" in message
    assert not any(char.isdigit() for char in message.replace("0.01", ""))


def test_rerun_skips_valid_results_and_regrades_changed_ones(corpus, monkeypatch):
    from grader.pipeline import grade_many as batch

    out = corpus["_out"]
    submissions = out.parent / "submissions"
    options = replace(corpus["_options"], seed=SEED + 1)  # a new seed alone does not regrade
    graded: list[str] = []

    def fake_grade(path, options, oracle, label=None):
        graded.append(label)
        return corpus["blank_template"]

    monkeypatch.setattr(batch, "grade_notebook", fake_grade)
    monkeypatch.setattr("grader.oracles.choose.load_oracle", lambda: None)
    changed = submissions / "leaky_relu_fixed_alpha.ipynb"
    changed.write_text(changed.read_text() + "\n")  # new bytes, same notebook
    grade_batch(find_notebooks([submissions]), out, options, workers=1)
    assert graded == ["leaky_relu_fixed_alpha.ipynb"]


@pytest.mark.parametrize(("name", "code"), [("gan_loss_keras_bce", 0), ("blank_template", 1),
                                            ("not_json", 2)])
def test_check_exit_codes(corpus, name, code):
    from grader.commands.check import exit_code

    assert exit_code(corpus[name]) == code
