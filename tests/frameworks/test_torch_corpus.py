"""The PyTorch fixture corpus (tests/fixtures/torch_submissions.py) graded in real sandboxed
kernels: each submission loses points exactly where its fixture says and nowhere else.

The variants are graded once per session as one quick batch with two workers, as an
instructor would run it; the tests below then read the results. Besides the item verdicts
they check what the issue asks of the PyTorch edition: the generation recorded as the
profile label, ``runs_clean`` kept by hard-coded CUDA and old-API cells (a cell failing only
because of the library's age is not the student's error), the CPU warning for CUDA, the
student's module file among a folder's or zip's graded files, the ``shape_deduction`` rule
for image-shaped outputs and the TensorFlow profile's wording for loss forms that need
equal batches.

Default run: a representative subset of 19 (:data:`DEFAULT`: every generation, layout and
renamed-package style, every hazard, one variant per bug class of the issue,
a fault), about three minutes on two cores (a PyTorch kernel costs some 15-20 s: start,
MNIST, the check cells, the budgeted training cells, the probes; two run at a time); the
other 19 (equivalent variants, a second hazard or mistake of a class, the cheat) are
marked slow. Everything:
pytest -m "" tests/frameworks/test_torch_corpus.py
"""

from __future__ import annotations

from pathlib import Path

import pytest

from grader import items
from tests.fixtures.torch_submissions import (
    CORRECT,
    FAULT,
    MISTAKE,
    TORCH_UNIT_ITEMS,
    TORCH_VARIANTS,
    Generation,
    Layout,
    write_torch_variant,
)

pytest.importorskip("torch")

SEED = 7
ACTIVATION = items.ids_with(items.ACTIVATION)[0]
# The default run's variants, by what each stands for.
DEFAULT = {
    # the generations and layouts (2018 notebooks: the hazards and mistakes below)
    "t2017_correct", "t2019_correct", "t2020_module_folder", "t2024_module_zip",
    "comp411_module_folder", "umich_losses_1d",
    # the hazards (the literal batch ties both DC networks; the global one only the
    # classifier, and is slow)
    "cuda_dtype_line", "cuda_inside_functions", "batch_tied_unflatten_literal",
    "old_api_2018_cells",
    # one per bug class: activation, slope, noise, betas, naive BCE, equal-batch loss forms,
    # a wrong batch divisor, image-shaped output
    "discriminator_missing_activation", "relu_with_slope_argument", "noise_rand_minus_half",
    "adam_default_betas", "naive_log_sigmoid", "gan_loss_concatenated",
    "gan_loss_wrong_batch_divisor", "generator_image_shaped",
    # a network of the wrong size: its counts as the course counts them
    "dc_generator_narrow",
    # a fault (the cheat, edited_noise_test, is slow: wrong noise is noise_rand_minus_half)
    "raising_cell",
}
# the generation recorded where the code is written in another generation's idioms: a 2018
# notebook whose cells use Variable and .data[0] reads as the 2017 edition
RECOGNISED_AS = {"old_api_2018_cells": Generation.Y2017}
# the equal-batch loss forms: the TF profile's diagnosis, in the PyTorch names (a form that
# raises on unequal batches, such as one label tensor for both terms, is reported as raising
# in both editions)
ONE_AVERAGE = "one average over both batches together"
EQUAL_BATCH_FORMS = {"gan_loss_concatenated": ("gan_loss", "discriminator_loss"),
                     "lsgan_one_mean": ("lsgan_loss", "ls_discriminator_loss"),
                     "gan_loss_one_label_tensor": ("gan_loss", "discriminator_loss")}
IMAGE_SHAPED = {"generator_image_shaped": "generator", "dc_generator_image_shaped":
                "dc_generator"}
BY_NAME = {variant.name: variant for variant in TORCH_VARIANTS}


def _param(variant):
    marks = () if variant.name in DEFAULT else (pytest.mark.slow,)
    return pytest.param(variant, id=variant.name, marks=marks)


def _named(names):
    return [pytest.param(name, id=name, marks=() if name in DEFAULT else (pytest.mark.slow,))
            for name in sorted(names)]


ALL = [_param(variant) for variant in TORCH_VARIANTS]


@pytest.fixture(scope="session")
def torch_corpus(request, tmp_path_factory, mnist_dir) -> dict[str, object]:
    """Grade the variants the selected tests need, once, as one batch with two workers."""
    from grader.pipeline.grade_many import grade_batch
    from grader.pipeline.grade_one import Options, prepare_mnist
    from grader.pipeline.load import find_notebooks
    from grader.rubric import load_rubric

    wanted = set(DEFAULT)
    for test in request.session.items:
        if test.module.__name__ != __name__:
            continue
        params = getattr(test, "callspec", None) and test.callspec.params or {}
        if "variant" in params:
            wanted.add(params["variant"].name)
        if "name" in params:
            wanted.add(params["name"])
    root = tmp_path_factory.mktemp("torch-corpus")
    for variant in TORCH_VARIANTS:
        if variant.name in wanted:
            write_torch_variant(variant, root / "submissions")
    options = Options(rubric=load_rubric(), seed=SEED, cell_timeout=120, threads=1)
    options.mnist_npz = prepare_mnist(str(mnist_dir), root / "cache")
    results = grade_batch(find_notebooks([root / "submissions"]), root / "out", options,
                          workers=2)
    by_name = {Path(result.submission).stem: result for result in results}
    assert set(by_name) == wanted, sorted(set(by_name) ^ wanted)
    return by_name


@pytest.mark.parametrize("variant", ALL)
def test_points_are_lost_exactly_where_they_should_be(torch_corpus, variant):
    result = torch_corpus[variant.name]
    assert result.error is None, result.error
    for item_id in TORCH_UNIT_ITEMS:
        item = result.item(item_id)
        if item_id in variant.loses:
            assert item.points < item.max_points, f"{item_id} should lose points: {item}"
            assert item.message and item.message != "all checks passed"
        else:
            assert item.points == item.max_points, f"{item_id} lost points: {item.message}"
    activation = result.item(ACTIVATION)
    assert (activation.points, activation.max_points, activation.status) == (0, 0, "skipped")


@pytest.mark.parametrize("variant", ALL)
def test_the_generation_is_recorded(torch_corpus, variant):
    expected = RECOGNISED_AS.get(variant.name, variant.generation)
    assert torch_corpus[variant.name].profile == expected


@pytest.mark.parametrize("variant", ALL)
def test_runs_clean_is_as_the_fixture_claims(torch_corpus, variant):
    """Hard-coded CUDA, old-API cells, the stand-in check files and the course's own data
    cells cost nothing; only the fault's own cell does."""
    result = torch_corpus[variant.name]
    bad = [(cell.index + 1, cell.status, cell.error_name) for cell in result.cells
           if cell.status not in ("ok", "budget")]
    if "runs_clean" in variant.loses:
        assert len(bad) == 1, bad
        assert f"cell {bad[0][0]}" in result.item("runs_clean").message
    else:
        assert bad == [], (bad, result.item("runs_clean").message)


@pytest.mark.parametrize("variant", [v for v in ALL if v.values[0].cuda])
def test_hard_coded_cuda_is_graded_on_the_cpu_and_said(torch_corpus, variant):
    warnings = " ".join(torch_corpus[variant.name].warnings)
    assert "graded on the CPU" in warnings, warnings


def test_no_cuda_warning_without_cuda(torch_corpus):
    for name in ("t2019_correct", "t2020_module_folder", "umich_losses_1d"):
        assert not any("CUDA" in warning for warning in torch_corpus[name].warnings), name


@pytest.mark.parametrize("variant", [v for v in ALL if v.values[0].layout != Layout.NOTEBOOK])
def test_the_students_module_is_graded(torch_corpus, variant):
    files = torch_corpus[variant.name].graded_files
    module = "gan.py" if variant.generation == Generation.UMICH \
        else f"{variant.package}/gan_pytorch.py"
    inside = f"{variant.name}/" if variant.layout == Layout.ZIP else ""  # the zip's folder
    assert len(files) == 2 and files[0].endswith(".ipynb"), files
    assert files[1] == inside + module, files


@pytest.mark.parametrize("name", _named(IMAGE_SHAPED))
def test_image_shaped_outputs_cost_the_shape_deduction(torch_corpus, name):
    from grader.rubric import load_rubric

    item_id = IMAGE_SHAPED[name]
    item = torch_corpus[name].item(item_id)
    deduction = next(i for i in load_rubric().items if i.id == item_id).shape_deduction
    assert deduction > 0
    assert item.points == item.max_points - deduction, item
    assert "[N, 1, 28, 28]" in item.message and "[N, 784]" in item.message, item.message
    assert item.details["values_match"] is True, item.details


@pytest.mark.parametrize("name", _named(EQUAL_BATCH_FORMS))
def test_equal_batch_loss_forms_are_named_as_in_tensorflow(torch_corpus, name):
    item_id, function = EQUAL_BATCH_FORMS[name]
    message = torch_corpus[name].item(item_id).message
    if "concatenated" in name:  # equal to the reference on equal batches only
        assert f"{function} matches a common mistake, {ONE_AVERAGE}" in message, message
    else:  # the batches cannot even be combined: raised, as TensorFlow's would
        assert "raised an error" in message and "size" in message, message
    assert "D_loss" not in message and "G_loss" not in message


def test_a_wrong_batch_divisor_is_a_bug_of_its_own(torch_corpus):
    message = torch_corpus["gan_loss_wrong_batch_divisor"].item("gan_loss").message
    assert "discriminator_loss is wrong with" in message, message
    assert "matches none of the common mistakes" in message, message


def test_the_default_set_covers_every_generation_layout_hazard_and_bug_class():
    chosen = [BY_NAME[name] for name in DEFAULT]
    assert {v.generation for v in chosen} == set(Generation.ALL)
    assert {v.layout for v in chosen} == {Layout.NOTEBOOK, Layout.FOLDER, Layout.ZIP}
    assert {v.kind for v in chosen} == {CORRECT, MISTAKE, FAULT}
    assert any(v.cuda and v.layout == Layout.NOTEBOOK for v in chosen)
    assert any(v.cuda and v.layout != Layout.NOTEBOOK for v in chosen)
    lost = set().union(*(v.loses for v in chosen))
    assert lost == set(TORCH_UNIT_ITEMS) - {"lsgan_loss"}, lost


NARROW_DC_GENERATOR_DIFFERENCE = (128 * 64 * 16 + 64 + 2 * 64 + 64 * 16 + 1) \
    - (128 * 32 * 16 + 32 + 2 * 32 + 32 * 16 + 1)  # conv, batch norm's weight and bias, conv


def test_parameter_counts_are_the_courses(torch_corpus):
    """Parameters only, as ``sum(p.numel() for p in model.parameters())`` prints them: not
    the batch norm statistics the grader's comparison also counts."""
    import re

    import reference.hw4_torch as ref

    item = torch_corpus["dc_generator_narrow"].item("dc_generator")
    found = re.search(r"the model has ([\d,]+) parameters at noise_dim (\d+) "
                      r"\(model.parameters\(\)\); the architecture described has ([\d,]+)",
                      item.message)
    assert found, item.message
    student, noise_dim, expected = (int(group.replace(",", "")) for group in found.groups())
    course = sum(p.numel() for p in ref.build_dc_generator(noise_dim).parameters())
    assert expected == course
    assert student == course - NARROW_DC_GENERATOR_DIFFERENCE
