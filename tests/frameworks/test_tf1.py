"""Original TensorFlow 1 notebooks: profile detection, the stand-ins, and the engine grading
the TF1 fixture notebooks (tests/fixtures/tf1_notebooks.py) through the v1 compatibility
layer with the same items and guarantees as the TF2 template."""

from __future__ import annotations

from pathlib import Path

import nbformat
import numpy as np
import pytest

from grader.frameworks import REGISTRY, choose_framework
from grader.frameworks.detect import detect
from grader.frameworks.tf1 import framework as tf1
from grader.frameworks.tf1.parts import dcgan_start, heading_part, notebook_parts
from grader.result import ItemResult
from tests.fixtures import tf1_notebooks
from tests.fixtures.submissions import (
    INVALID,
    SOLUTION_PATH,
    UNIT_ITEMS,
    VARIANTS,
    load_solution,
    render,
)

TF1_NAMES = sorted(tf1_notebooks.EXPECTED_LOSSES)
# Graded by default: the ones a test below reads, a blank one, an edited check; the other
# edition layouts and a second gan_loss mistake run with ``pytest -m slow``.
TF1_SLOW = {"averaged_once", "fixed_later", "structure_2018", "structure_uw"}
THEORY = ("optimal_d_gan", "optimal_d_lsgan", "vae_kl")
TF1_UNITS = tuple(item for item in UNIT_ITEMS if item not in THEORY)


# -- recognition ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", TF1_NAMES)
def test_tf1_notebooks_are_detected_with_their_year(name):
    framework = choose_framework(tf1_notebooks.build(name))
    assert framework.name == "tf1", framework.evidence
    assert framework.generation == ("2017" if name in tf1_notebooks.YEAR_2017 else "2018")
    assert framework.label() == f"tf1-{framework.generation}"


def test_tf2_notebooks_are_never_taken_for_tf1():
    template = Path(SOLUTION_PATH).parents[1] / "student_template" / "HW4_template.ipynb"
    notebooks = {"solution": nbformat.read(SOLUTION_PATH, 4),
                 "template": nbformat.read(template, 4)}
    solution = load_solution()
    for variant in VARIANTS:
        built = render(variant, solution)
        if variant.kind != INVALID and not isinstance(built, bytes):
            notebooks[variant.name] = built
    wrong = [name for name, notebook in notebooks.items()
             if choose_framework(notebook).name != "tf2"]
    assert wrong == []
    assert len(notebooks) > 60


def test_compat_v1_import_and_explicit_choice():
    cell = nbformat.v4.new_code_cell("import tensorflow.compat.v1 as tf\nx = tf.placeholder("
                                     "tf.float32, [None, 784])")
    notebook = nbformat.v4.new_notebook(cells=[cell])
    assert choose_framework(notebook).name == "tf1"
    forced = detect(tf1_notebooks.build("correct_2018"), REGISTRY, "tf2")
    assert forced.name == "tf2" and forced.chosen_by == "--profile"
    with pytest.raises(ValueError, match="unknown profile"):
        choose_framework(notebook, "tf3")


def test_dcgan_part_starts_at_its_heading_not_at_a_title_naming_it():
    notebook = tf1_notebooks.build("correct_2018")
    start = dcgan_start(notebook)
    assert "Deep Convolutional" in notebook.cells[start].source
    assert "def discriminator" in notebook.cells[start + 1].source
    notebook.cells.insert(0, nbformat.v4.new_markdown_cell("# GANs, LSGANs and DCGANs"))
    assert dcgan_start(notebook) == start + 1


def _defining(notebook, name: str) -> list[int]:
    return [index for index, cell in enumerate(notebook.cells) if cell.cell_type == "code"
            and f"def {name}(" in cell.source]


@pytest.mark.parametrize("name", ["correct_2017_wgangp", "structure_2018", "structure_uw",
                                  "correct_2018"])
def test_each_definition_is_filed_under_its_part(name):
    notebook = tf1_notebooks.build(name)
    parts = notebook_parts(notebook)
    assert parts.notes == []
    found = {network: [parts.cells[i] for i in _defining(notebook, network)]
             for network in ("discriminator", "generator", "get_solvers", "lsgan_loss")}
    wgan = name == "correct_2017_wgangp"
    assert found["discriminator"] == ["gan", "dcgan"] + (["wgan-gp"] if wgan else [])
    assert found["generator"] == ["gan", "dcgan"]
    assert found["get_solvers"] == ["gan"] + (["wgan-gp"] if wgan else [])
    assert found["lsgan_loss"] == ["lsgan"]


@pytest.mark.parametrize(("line", "part"), [
    ("# Least Squares GAN", "lsgan"), ("## LSGAN", "lsgan"), ("# Deep Convolutional GANs", "dcgan"),
    ("### DCGAN", "dcgan"), ("# WGAN-GP (Small Extra Credit)", "wgan-gp"),
    ("## Improved Wasserstein GAN", "wgan-gp"), ("# Extra Credit ", "extra"),
    ("## Vanilla GAN", "gan"), ("# GANs, LSGANs and DCGANs", None), ("#### Discriminator", None),
    ("## INLINE QUESTION 1", None), ("# Training a GAN!", None),
    ("We use a DCGAN here (not a heading)", None),
])
def test_headings_open_parts(line, part):
    assert heading_part(line) == part


def test_parts_only_move_forward_and_a_missing_dcgan_heading_is_said():
    notebook = tf1_notebooks.build("correct_2017_wgangp")
    start = notebook_parts(notebook).start("dcgan")
    notebook.cells.insert(start + 2, nbformat.v4.new_markdown_cell("## Back to the vanilla GAN"))
    assert notebook_parts(notebook).cells[start + 3] == "dcgan"
    plain = notebook_parts(tf1_notebooks.build("no_headings_2017"))
    assert set(plain.cells) == {"gan"}
    assert any("cannot be told apart" in note and "discriminator" in note for note in plain.notes)
    assert tf1.part_notes(tf1_notebooks.build("no_headings_2017"))[0].startswith("TF1 notebook")
    no_dcgan = tf1_notebooks.build("correct_2018")
    no_dcgan.cells = [cell for cell in no_dcgan.cells if "Deep Convolutional" not in cell.source]
    assert any("second definition of generator" in note for note in notebook_parts(no_dcgan).notes)


# -- the grader-side pieces ----------------------------------------------------------------------


def test_stand_in_answers_match_the_reference(tf):
    from grader.oracles.reference import ReferenceOracle

    oracle, answers = ReferenceOracle(), tf1.answers()
    expected = oracle.activation("leaky_relu", answers["lrelu_x"], None)
    np.testing.assert_allclose(answers["lrelu_y"], expected, rtol=1e-6)
    d_loss, g_loss = oracle.loss("gan_loss", answers["logits_real"], answers["logits_fake"])
    assert answers["d_loss_true"] == pytest.approx(d_loss, rel=1e-9)
    assert answers["g_loss_true"] == pytest.approx(g_loss, rel=1e-9)
    d_loss, g_loss = oracle.loss("lsgan_loss", answers["logits_real"], answers["logits_fake"])
    assert answers["d_loss_lsgan_true"] == pytest.approx(d_loss, rel=1e-9)
    assert answers["g_loss_lsgan_true"] == pytest.approx(g_loss, rel=1e-9)


def test_stand_ins_never_replace_the_submitted_file(tmp_path):
    assert tf1.write_stand_ins(tmp_path) == [tf1.CHECKS_FILE]
    with np.load(tmp_path / tf1.CHECKS_FILE) as data:
        assert set(data.files) == {"lrelu_x", "lrelu_y", "logits_real", "logits_fake",
                                   "d_loss_true", "g_loss_true", "d_loss_lsgan_true",
                                   "g_loss_lsgan_true"}
    (tmp_path / tf1.CHECKS_FILE).write_bytes(b"the course's own file")
    assert tf1.write_stand_ins(tmp_path) == []
    assert (tmp_path / tf1.CHECKS_FILE).read_bytes() == b"the course's own file"


def test_messages_use_the_notebooks_names():
    item = ItemResult("dc_discriminator", 3, 10, "failed",
                      "building or calling dc_discriminator() raised ValueError; "
                      "dc_generator must return a Keras model")
    assert tf1.speak(item).message == ("building or calling discriminator(x) of the DCGAN part "
                                       "raised ValueError; generator (DCGAN part) must return "
                                       "the output tensor")


def test_derivations_without_answer_functions_go_to_the_instructor():
    absent = ItemResult("vae_kl", 0, 4, "error", "raised LookupError: vae_kl is not defined in "
                                                "the notebook for case 1")
    pending = tf1.theory_left_to_instructor(absent, "vae_kl", "TF1 notebook")
    assert pending.status == "manual" and pending.max_points == 4 and pending.points == 0
    wrong = ItemResult("vae_kl", 1, 4, "failed", "case 2 differs from scipy")
    assert tf1.theory_left_to_instructor(wrong, "vae_kl", "TF1 notebook") is wrong


# -- the engine on the TF1 fixtures --------------------------------------------------------------


def _tf1_param(name: str):
    return pytest.param(name, id=name, marks=(pytest.mark.slow,) if name in TF1_SLOW else ())


@pytest.fixture(scope="module")
def graded(request, tmp_path_factory, mnist_dir):
    """The TF1 fixtures this run needs graded in one quick batch with two workers."""
    from grader.pipeline.grade_many import grade_batch
    from grader.pipeline.grade_one import Options, prepare_mnist
    from grader.pipeline.load import find_notebooks
    from grader.rubric import load_rubric

    root = tmp_path_factory.mktemp("tf1")
    (root / "submissions").mkdir()
    selected = {test.callspec.params["name"] for test in request.session.items
                if test.module.__name__ == __name__ and hasattr(test, "callspec")
                and "graded" in test.fixturenames and "name" in test.callspec.params}
    for name in set(TF1_NAMES) - TF1_SLOW | selected:
        tf1_notebooks.write(name, root / "submissions")
    options = Options(rubric=load_rubric(), seed=5, cell_timeout=120, threads=1)
    options.mnist_npz = prepare_mnist(str(mnist_dir), root / "cache")
    results = grade_batch(find_notebooks([root / "submissions"]), root / "out", options,
                          workers=2)
    return {Path(result.submission).stem: result for result in results}


@pytest.mark.parametrize("name", [_tf1_param(name) for name in TF1_NAMES])
def test_tf1_points_are_lost_exactly_where_they_should_be(graded, name):
    result = graded[name]
    assert result.error is None and result.profile.startswith("tf1-")
    for item_id in TF1_UNITS:
        item = result.item(item_id)
        if item_id in tf1_notebooks.EXPECTED_LOSSES[name]:
            assert item.points < item.max_points, f"{item_id} should lose points: {item}"
        else:
            assert item.points == item.max_points, f"{item_id} lost points: {item.message}"
    for item_id in THEORY:
        assert result.item(item_id).status == "manual"


def test_correct_tf1_notebook_has_full_autograded_marks(graded):
    result = graded["correct_2018"]
    assert result.autograded_full_marks(), [i for i in result.items if i.status == "failed"]
    assert result.item("runs_clean").status == "passed"
    # its three training loops (3,000 iterations each) were cut by the budget, not by time
    cut = [cell for cell in result.cells if cell.status == "budget"]
    assert len(cut) == 3 and all(cell.seconds < 60 for cell in cut)
    assert any("gan-checks-tf.npz" in warning for warning in result.warnings)


def test_tf1_messages_name_the_tf1_functions(graded):
    message = graded["same_padding"].item("dc_discriminator").message
    assert "discriminator (DCGAN part)" in message and "1,102,721" in message
    assert "dc_discriminator" not in message
    assert "NameError" in graded["lsgan_name_error"].item("lsgan_loss").message
    assert "running the returned tensor twice" in \
        graded["constant_noise"].item("sample_noise").message
    assert "sigmoid then log" in graded["sigmoid_then_log"].item("gan_loss").message


def test_an_endless_training_loop_is_stopped_by_the_budget(graded):
    result = graded["endless_training"]
    cut = [cell for cell in result.cells if cell.status == "budget"]
    assert len(cut) == 3 and all(cell.seconds < 60 for cell in cut)
    assert result.item("runs_clean").status == "passed"


def test_a_cell_that_kills_the_kernel_costs_runs_clean_only(graded):
    result = graded["kills_kernel"]
    died = [cell for cell in result.cells if cell.status == "died"]
    assert len(died) == 1 and "died" in result.item("runs_clean").message
    assert result.item("dc_discriminator").status == "passed"


def test_the_2017_reader_and_argument_names_work(graded):
    result = graded["correct_2017"]
    assert result.profile == "tf1-2017"
    assert all(cell.status in ("ok", "budget") for cell in result.cells), result.cells


def test_tf1_convergence_trains_the_graph_mode_parts(tmp_path, mnist_dir):
    """Full mode on a TF1 notebook with tiny budgets: the grader's graph-mode loop trains
    the MLP and the DCGAN definitions, and attribution swaps in the TF1 reference."""
    from tests.fixtures.full_mode import full_grade as _full_grade

    notebook = tf1_notebooks.write("averaged_once", tmp_path)
    # lines no run of 15 steps reaches: the GAN clearly fails, so attribution runs
    result = _full_grade(tmp_path, mnist_dir, notebook, budgets={"gan": 15, "lsgan": 15,
                                                                 "dcgan": 2},
                         thresholds={"gan": [100, 200]})
    assert result.profile == "tf1-2018"
    for item_id, steps in (("gan_convergence", 15), ("lsgan_convergence", 15),
                           ("dcgan_convergence", 2)):
        item = result.item(item_id)
        assert item.status in ("passed", "failed"), item.message
        assert item.details["steps"] == steps and item.details["fcd"] > 0
        assert item.details["sampled_by"] == "grader" and not item.flags, item.flags
    attribution = result.item("gan_convergence").details["attribution"]
    assert attribution[0]["swapped"] == "loss"  # the unit check found gan_loss wrong
    assert attribution[0]["error"] is None and attribution[0]["fcd"] > 0


@pytest.mark.slow
def test_correct_tf1_notebook_converges_at_full_budget(tmp_path, mnist_dir):
    from tests.fixtures.full_mode import full_grade as _full_grade

    result = _full_grade(tmp_path, mnist_dir, tf1_notebooks.write("correct_2018", tmp_path))
    for item_id in ("gan_convergence", "lsgan_convergence", "dcgan_convergence"):
        assert result.item(item_id).status == "passed", result.item(item_id).message


def test_the_2017_dcgan_part_is_graded_never_its_wgan_gp_part(graded):
    result = graded["correct_2017_wgangp"]
    assert result.autograded_full_marks(), [i for i in result.items if i.points < i.max_points]
    assert result.item("dc_discriminator").details["parameters"] == 1_102_721
    assert result.item("get_solvers").status == "passed"  # not the WGAN-GP part's redefinition
    stubs = graded["wgangp_stubs_2017"]
    assert stubs.item("dc_discriminator").status == "passed"
    assert stubs.item("discriminator").status == "passed"
    clean = stubs.item("runs_clean")  # the stubs raise, outside the homework: no cost, said
    assert clean.points == clean.max_points and clean.details["ungraded_failed_cells"]
    assert "WGAN-GP part, which is not graded" in clean.message


def test_undecidable_parts_are_said_in_the_result(graded):
    result = graded["no_headings_2017"]
    assert any("cannot be told apart" in warning for warning in result.warnings)
    assert result.item("dc_discriminator").status == "passed"
    assert not any("TF1 notebook parts" in w for w in graded["correct_2017_wgangp"].warnings)


def test_a_missing_reshape_costs_the_shape_deduction_only(graded):
    item = graded["dcgan_no_reshape"].item("dc_generator")
    assert item.points == item.max_points - 1
    assert "[N, 28, 28, 1]" in item.message and "values match the reference" in item.message
    assert "generator (DCGAN part)" in item.message
