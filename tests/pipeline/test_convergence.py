"""Convergence grading: pure rules here; one short real training through a kernel; the
full-budget checks of the issue are marked slow."""

from __future__ import annotations

import numpy as np
import pytest

from grader.mnist.evaluator import SampleScores
from grader.pipeline import convergence
from grader.pipeline.convergence import (
    Thresholds,
    TrainingRun,
    credit,
    draw_plan,
    training_problems,
)

LINES = Thresholds(pass_fcd=100.0, fail_fcd=300.0, min_class_entropy=1.8)


def _run(fcd: float, entropy: float = 2.2, losses=None, failures=()) -> TrainingRun:
    run = TrainingRun("gan", None, steps=10)
    run.scores = SampleScores(fcd, entropy, 0.08, 0.9, list(failures), 10_000)
    run.losses = np.ones((10, 2)) if losses is None else losses
    run.problems = training_problems(run)
    return run


@pytest.mark.parametrize(("fcd", "expected"), [(50.0, 1.0), (100.0, 1.0), (200.0, 0.5),
                                               (300.0, 0.0), (900.0, 0.0), (float("nan"), 0.0)])
def test_credit_is_linear_between_the_lines(fcd, expected):
    assert credit(_run(fcd), LINES) == pytest.approx(expected)


def test_mode_collapse_caps_credit():
    assert credit(_run(50.0, entropy=0.5), LINES) == 0.5


def test_hard_failures_get_nothing():
    nan_losses = np.array([[1.0, 1.0], [np.nan, 1.0]])
    assert credit(_run(50.0, losses=nan_losses), LINES) == 0.0
    collapsed = np.column_stack([np.full(20, 1e-5), np.full(20, 9.0)])
    run = _run(50.0, losses=collapsed)
    assert any("collapsed" in p for p in run.problems) and credit(run, LINES) == 0.0
    assert credit(_run(50.0, failures=["all samples alike"]), LINES) == 0.0
    failed = TrainingRun("gan", None, error="NameError: gan_loss")
    assert credit(failed, LINES) == 0.0
    assert "training failed" in convergence.describe(failed, LINES)


def test_plan_covers_epochs_without_repeats_and_is_seeded():
    plan = draw_plan(np.random.default_rng(4), steps=10, n_images=500, n_samples=64)
    order = plan["order"]
    assert order.shape == (10, 128) and order.dtype == np.int32
    first_epoch = order.ravel()[:500]
    assert len(set(first_epoch.tolist())) == 500
    assert plan["eval_noise"].shape == (64, 96)
    assert np.abs(plan["eval_noise"]).max() <= 1
    again = draw_plan(np.random.default_rng(4), steps=10, n_images=500, n_samples=64)
    np.testing.assert_array_equal(order, again["order"])


def test_images_are_png():
    import base64

    samples = np.random.default_rng(0).uniform(-1, 1, (49, 784)).astype(np.float32)
    png = base64.b64decode(convergence.sample_grid(samples, "t"))
    assert png.startswith(b"\x89PNG")
    curve = base64.b64decode(convergence.loss_plot(np.ones((5, 2)), "t"))
    assert curve.startswith(b"\x89PNG")


def test_grader_training_loop_runs_reference_parts(tf):
    """The grader's loop (as run in a kernel) on the reference: finite losses, samples shaped."""
    from grader.kernel import train as kernel_train
    from reference.reference_runs import reference_parts
    from tests.fixtures.broken_gans import broken_parts

    images = np.random.default_rng(0).uniform(-1, 1, (512, 784)).astype(np.float32)
    plan = draw_plan(np.random.default_rng(1), steps=3, n_images=512, n_samples=20)
    outcome = kernel_train.train(reference_parts("gan"), images, plan["order"],
                                 plan["eval_noise"], seed=0)
    assert outcome["losses"].shape == (3, 2) and np.isfinite(outcome["losses"]).all()
    assert outcome["samples"].shape == (20, 784) and outcome["mode"] == "compiled"
    again = kernel_train.train(reference_parts("gan"), images, plan["order"],
                               plan["eval_noise"], seed=0)
    np.testing.assert_allclose(outcome["losses"], again["losses"], rtol=1e-5)
    ignored = kernel_train.train(broken_parts("gan", "ignores_noise"), images, plan["order"],
                                 plan["eval_noise"], seed=0)
    assert np.ptp(ignored["samples"], axis=0).max() < 1e-6
    # a generator loss that does not depend on G: no gradient for G, and no crash
    swapped = kernel_train.train(broken_parts("gan", "swapped_labels"), images, plan["order"],
                                 plan["eval_noise"], seed=0)
    assert np.isfinite(swapped["losses"]).all()


def _full_grade(tmp_path, mnist_dir, notebook, budgets=None, seed=0):
    """Grade ``notebook`` in full mode, optionally with smaller budgets."""
    import yaml

    from grader.oracles.choose import load_oracle
    from grader.pipeline.grade_one import Options, grade_notebook, prepare_mnist
    from grader.rubric import default_rubric_path, load_rubric

    data = yaml.safe_load(default_rubric_path().read_text())
    if budgets:
        data["convergence"]["budgets"]["cpu"] = budgets
    data["bounds"]["training_steps"]["full"] = 2
    data["convergence"]["attribution_runs"] = 1
    path = tmp_path / "rubric.yaml"
    path.write_text(yaml.safe_dump(data))
    options = Options(rubric=load_rubric(path), mode="full", seed=seed, threads=2)
    options.mnist_npz = prepare_mnist(str(mnist_dir), tmp_path / "cache")
    return grade_notebook(notebook, options, load_oracle())


def test_full_mode_trains_each_gan_in_the_kernel(tmp_path, mnist_dir):
    from reference.build_notebook import SOLUTION_PATH

    result = _full_grade(tmp_path, mnist_dir, SOLUTION_PATH,
                         budgets={"gan": 20, "lsgan": 20, "dcgan": 3})
    for item_id in ("gan_convergence", "lsgan_convergence", "dcgan_convergence"):
        item = result.item(item_id)
        assert item.status in ("passed", "failed") and item.max_points > 0, item
        assert item.details["steps"] == {"gan": 20, "lsgan": 20, "dcgan": 3}[item_id[:-12]]
        assert item.details["fcd"] > 0 and "your generator's samples" in item.details["images"]
    assert result.timing["convergence"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_reference_passes_at_full_budget(tmp_path, mnist_dir, seed):
    from reference.build_notebook import SOLUTION_PATH

    result = _full_grade(tmp_path, mnist_dir, SOLUTION_PATH, seed=seed)
    for item_id in ("gan_convergence", "lsgan_convergence", "dcgan_convergence"):
        assert result.item(item_id).status == "passed", result.item(item_id).message


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gan_loss_labels_swapped", "generator_no_tanh"])
def test_broken_gans_fail_and_are_attributed(tmp_path, mnist_dir, name):
    from tests.fixtures.submissions import SOLUTION_PATH, variant_by_name, write_variant

    notebook = write_variant(variant_by_name(name), SOLUTION_PATH, tmp_path / "subs")
    result = _full_grade(tmp_path, mnist_dir, notebook)
    item = result.item("gan_convergence")
    assert item.points < item.max_points


def test_stored_reference_runs_match_the_rubric_budgets():
    """Feedback shows the reference's run at the budget in force: one is stored for each CPU
    budget of the shipped rubric, and it passes its own item."""
    from grader.rubric import load_rubric

    settings = load_rubric().convergence
    for model, steps in settings.budgets["cpu"].items():
        run = convergence.load_reference_run("cpu", model, steps)
        assert run is not None, f"no stored reference run for {model} at {steps} steps"
        assert run["samples"].shape == (49, 784) and len(run["losses"]) == steps
        assert float(run["fcd"]) <= settings.thresholds["cpu"][model][0]
    assert convergence.load_reference_run("cpu", "gan", 7) is None


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["ignores_noise", "swapped_labels", "g_loss_zero"])
def test_broken_reference_variants_fail_at_full_budget(mnist_dir, fault):
    """The issue's broken GANs, trained by the grader's loop at the CPU budget, earn nothing."""
    from grader.kernel import train as kernel_train
    from grader.mnist import evaluator
    from grader.mnist.data import load_mnist
    from grader.rubric import load_rubric
    from tests.fixtures.broken_gans import broken_parts

    settings = load_rubric().convergence
    steps = settings.budgets["cpu"]["gan"]
    pass_fcd, fail_fcd = settings.thresholds["cpu"]["gan"]
    images = evaluator.mnist_as_samples(load_mnist(str(mnist_dir)).x_train)
    plan = draw_plan(np.random.default_rng(0), steps, len(images))
    outcome = kernel_train.train(broken_parts("gan", fault), images, plan["order"],
                                 plan["eval_noise"], seed=0)
    run = TrainingRun("gan", None, steps=outcome["steps"], losses=outcome["losses"],
                      samples=outcome["samples"])
    run.scores = evaluator.score_samples(run.samples)
    run.problems = training_problems(run)
    assert credit(run, Thresholds(pass_fcd, fail_fcd, settings.min_class_entropy)) == 0.0, \
        (run.scores, run.problems)
