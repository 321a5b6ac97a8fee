"""Judging a convergence run: the pure rules here (credit, plans, when a verdict is
settled, figures); the grader's loop in a real kernel and in full mode at the end, the
full-budget checks of the issue marked slow."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from grader.convergence import figures, judge
from grader.convergence.judge import Settings, Thresholds, TrainingRun, credit, draw_plan
from grader.convergence.lines import CalibratedLines, CheckpointLines, IntegrityLines
from grader.mnist.evaluator import SampleScores

LINES = Thresholds(pass_fcd=100.0, fail_fcd=300.0, min_class_entropy=1.8)


def _run(fcd: float, entropy: float = 2.2, losses=None, failures=()) -> TrainingRun:
    run = TrainingRun("gan", None, steps=10, budget=10)
    run.scores = SampleScores(fcd, entropy, 0.08, 0.9, list(failures), 10_000)
    run.losses = np.ones((10, 2)) if losses is None else losses
    run.problems = judge.training_problems(run.losses, run.scores)
    return run


@pytest.mark.parametrize(("fcd", "expected"), [(50.0, 1.0), (100.0, 1.0), (200.0, 0.5),
                                               (300.0, 0.0), (900.0, 0.0), (float("nan"), 0.0)])
def test_credit_is_linear_between_the_lines(fcd, expected):
    assert credit(_run(fcd), LINES) == pytest.approx(expected)


def test_mode_collapse_caps_credit():
    assert credit(_run(50.0, entropy=0.5), LINES) == 0.5


def test_hard_failures_and_flags_get_nothing():
    nan_losses = np.array([[1.0, 1.0], [np.nan, 1.0]])
    assert credit(_run(50.0, losses=nan_losses), LINES) == 0.0
    collapsed = np.column_stack([np.full(20, 1e-5), np.full(20, 9.0)])
    run = _run(50.0, losses=collapsed)
    assert any("collapsed" in p for p in run.problems) and credit(run, LINES) == 0.0
    assert credit(_run(50.0, failures=["all samples alike"]), LINES) == 0.0
    failed = TrainingRun("gan", None, error="NameError: gan_loss")
    assert credit(failed, LINES) == 0.0
    assert "training failed" in judge.describe(failed, LINES)
    flagged = _run(50.0)
    flagged.flags = ["its samples copy training digits"]
    assert credit(flagged, LINES) == 0.0
    assert "flagged for review" in judge.describe(flagged, LINES)


def _settings(stop: float | None) -> Settings:
    lines = CalibratedLines({"cpu": {"gan": {5: CheckpointLines(stop=stop)}}},
                            IntegrityLines(), 2000)
    return Settings("cpu", LINES, lines, 60.0)


@pytest.mark.parametrize(("fcd", "stop", "step", "settled"), [
    (90.0, None, 5, True),  # full credit already
    (200.0, None, 5, False),  # partial: train on
    (350.0, None, 5, False),  # behind, but no calibrated stop line here
    (350.0, 340.0, 5, True),  # behind every reference seed at this checkpoint
    (320.0, 340.0, 5, False),  # inside the reference's spread
    (200.0, None, 10, True),  # the budget
])
def test_a_verdict_settles_when_it_cannot_change(fcd, stop, step, settled):
    run = _run(fcd)
    assert judge._settled(run, step, False, _settings(stop)) is settled


def test_a_stop_line_below_the_fail_line_stops_nothing_that_could_earn_points():
    run = _run(250.0)  # half credit by the rubric's lines
    assert not judge._settled(run, 5, False, _settings(stop=200.0))


def test_plan_covers_epochs_without_repeats_and_is_seeded():
    plan = draw_plan(np.random.default_rng(4), steps=10, n_images=500, n_samples=64)
    order = plan["order"]
    assert order.shape == (10, 128) and order.dtype == np.int32
    assert len(set(order.ravel()[:500].tolist())) == 500
    assert plan["eval_noise"].shape == (64, 96) and np.abs(plan["eval_noise"]).max() <= 1
    np.testing.assert_array_equal(order, draw_plan(np.random.default_rng(4), steps=10,
                                                   n_images=500, n_samples=64)["order"])


def test_a_run_plan_draws_start_weights_per_seed():
    first = judge.draw_run(np.random.default_rng(1), "gan", [200, 100], 2000, 50)
    again = judge.draw_run(np.random.default_rng(1), "gan", [100, 200], 2000, 50)
    other = judge.draw_run(np.random.default_rng(2), "gan", [100, 200], 2000, 50)
    assert first.checkpoints == [100, 200] and first.order.shape == (200, 128)
    for role in ("generator", "discriminator"):
        for a, b, c in zip(first.start[role], again.start[role], other.start[role]):
            np.testing.assert_array_equal(a, b)
            if a.ndim >= 2:
                assert not np.allclose(a, c)
    assert first.loss_images.shape == (judge.LOSS_BATCH,)


def test_images_are_png():
    samples = np.random.default_rng(0).uniform(-1, 1, (49, 784)).astype(np.float32)
    assert base64.b64decode(figures.sample_grid(samples, "t")).startswith(b"\x89PNG")
    curve = figures.loss_plot(np.ones((5, 2)), "t", reference=np.ones((9, 2)))
    assert base64.b64decode(curve).startswith(b"\x89PNG")


def test_stored_reference_runs_match_the_rubric_budgets():
    """Feedback shows the reference's run at the budget in force: one is stored for each CPU
    budget of the shipped rubric, and it passes its own item."""
    from grader.rubric import load_rubric

    settings = load_rubric().convergence
    for model, steps in settings.budgets["cpu"].items():
        run = figures.load_reference_run("cpu", model, steps)
        assert run is not None, f"no stored reference run for {model} at {steps} steps"
        assert run["samples"].shape == (49, 784) and len(run["losses"]) == steps
        assert float(run["fcd"]) <= settings.thresholds["cpu"][model][0]
    assert figures.load_reference_run("cpu", "gan", 7) is None


def test_the_shipped_rubric_judges_at_checkpoints_before_each_budget():
    from grader.rubric import load_rubric

    settings = load_rubric().convergence
    for device in ("cpu", "gpu"):
        for model in ("gan", "lsgan", "dcgan"):
            schedule = settings.schedule(device, model)
            assert len(schedule) > 1 and schedule == sorted(schedule)
            assert schedule[-1] == settings.budgets[device][model]
