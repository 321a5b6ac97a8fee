"""The grader's training loop: a session in the grader's process (as in a kernel), then
full mode through a real kernel with small budgets; the full-budget checks of the issue are
marked slow."""

from __future__ import annotations

import numpy as np
import pytest

from grader.convergence import networks
from grader.convergence.judge import Thresholds, TrainingRun, credit, draw_plan
from grader.convergence.networks import Role
from tests.fixtures.full_mode import full_grade

CONVERGENCE_ITEMS = ("gan_convergence", "lsgan_convergence", "dcgan_convergence")


def test_a_session_takes_the_graders_start_and_hands_back_what_it_trained(tf):
    from grader.frameworks.tf2.kernel.train import TrainingSession
    from reference.reference_runs import reference_parts
    from tests.fixtures.broken_gans import broken_parts

    images = np.random.default_rng(0).uniform(-1, 1, (512, 784)).astype(np.float32)
    plan = draw_plan(np.random.default_rng(1), steps=3, n_images=512, n_samples=20)
    start = {role: networks.start_weights(networks.layout("mlp", role), np.random.default_rng(5))
             for role in (Role.GENERATOR, Role.DISCRIMINATOR)}

    def trained(parts):
        session = TrainingSession(parts, seed=0)
        for role, weights in start.items():
            session.assign(role, dict(enumerate(weights)))
        return session, session.run(images, plan["order"])

    session, chunk = trained(reference_parts("gan"))
    shapes = session.variables()
    for role, weights in start.items():
        assert [tuple(shape) for shape, _ in shapes[role]] == [w.shape for w in weights]
    assert chunk["losses"].shape == (3, 2) and np.isfinite(chunk["losses"]).all()
    assert session.mode == "compiled" and session.steps == 3
    generator = session.values(Role.GENERATOR)
    assert not np.array_equal(generator[0], start[Role.GENERATOR][0])  # it trained
    assert min(networks.descent_z(start[Role.GENERATOR], generator,
                                  networks.layout("mlp", Role.GENERATOR))) > 100
    # the grader's numpy generator draws what the kernel's would
    np.testing.assert_allclose(networks.generate("mlp", generator, plan["eval_noise"]),
                               session.sample(plan["eval_noise"]), atol=1e-4)
    again, chunk_again = trained(reference_parts("gan"))
    np.testing.assert_allclose(chunk["losses"], chunk_again["losses"], rtol=1e-5)
    # a generator loss that does not depend on G: no gradient for G, and no crash
    swapped, swapped_chunk = trained(broken_parts("gan", "swapped_labels"))
    assert np.isfinite(swapped_chunk["losses"]).all()


@pytest.mark.slow  # the default run covers it: the PyTorch counterpart and the hostile batch
def test_full_mode_judges_samples_the_grader_draws(tmp_path, mnist_dir):
    from reference.build_notebook import SOLUTION_PATH

    result = full_grade(tmp_path, mnist_dir, SOLUTION_PATH,
                        budgets={"gan": 20, "lsgan": 20, "dcgan": 4},
                        checkpoints={"gan": [10], "lsgan": [10], "dcgan": [2]})
    for item_id in CONVERGENCE_ITEMS:
        item = result.item(item_id)
        budget = {"gan": 20, "lsgan": 20, "dcgan": 4}[item_id[:-12]]
        assert item.status in ("passed", "failed") and item.max_points > 0, item
        assert item.flags == [], item.flags
        assert item.details["steps"] == budget == item.details["steps_budget"]
        assert [c["step"] for c in item.details["checkpoints"]] == [budget // 2, budget]
        assert item.details["sampled_by"] == "grader" and item.details["fcd"] > 0
        assert any("drawn by the grader" in title for title in item.details["images"])
    assert result.timing["convergence"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_reference_passes_at_full_budget(tmp_path, mnist_dir, seed):
    from reference.build_notebook import SOLUTION_PATH

    result = full_grade(tmp_path, mnist_dir, SOLUTION_PATH, seed=seed)
    for item_id in CONVERGENCE_ITEMS:
        item = result.item(item_id)
        assert item.status == "passed" and not item.flags, item.message


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gan_loss_labels_swapped", "generator_no_tanh"])
def test_broken_gans_fail_and_are_attributed(tmp_path, mnist_dir, name):
    from tests.fixtures.submissions import SOLUTION_PATH, variant_by_name, write_variant

    notebook = write_variant(variant_by_name(name), SOLUTION_PATH, tmp_path / "subs")
    result = full_grade(tmp_path, mnist_dir, notebook)
    item = result.item("gan_convergence")
    assert item.points < item.max_points and not item.flags


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["ignores_noise", "swapped_labels", "g_loss_zero"])
def test_broken_reference_variants_fail_at_full_budget(mnist_dir, fault):
    """The issue's broken GANs, trained by the grader's loop at the CPU budget, earn nothing."""
    from grader.convergence.judge import training_problems
    from grader.frameworks.tf2.kernel import train as kernel_train
    from grader.mnist import evaluator
    from grader.mnist.data import load_mnist
    from grader.rubric import load_rubric
    from tests.fixtures.broken_gans import broken_parts

    settings = load_rubric().convergence
    steps = settings.budgets["cpu"]["gan"]
    pass_fcd, fail_fcd = settings.thresholds["cpu"]["gan"]
    images = evaluator.mnist_as_samples(load_mnist(str(mnist_dir)).x_train)
    plan = draw_plan(np.random.default_rng(0), steps, len(images), settings.samples)
    outcome = kernel_train.train(broken_parts("gan", fault), images, plan["order"],
                                 plan["eval_noise"], seed=0)
    run = TrainingRun("gan", None, steps=outcome["steps"], budget=steps,
                      losses=outcome["losses"], samples=outcome["samples"])
    run.scores = evaluator.score_samples(run.samples)
    run.problems = training_problems(run.losses, run.scores)
    assert credit(run, Thresholds(pass_fcd, fail_fcd, settings.min_class_entropy)) == 0.0, \
        (run.scores, run.problems)


def _units(parts: dict[str, str], failed: str | None = None) -> dict:
    from grader.result import ItemResult

    return {name: ItemResult(name, 0.0 if name == failed else 5.0, 5.0,
                             "failed" if name == failed else "passed")
            for name in parts.values()}


def test_only_a_clean_shortfall_of_parts_that_all_passed_is_retrained():
    from grader import items
    from grader.convergence.grade import deserves_reseed

    parts = items.convergence_item("lsgan").parts
    clean = TrainingRun("lsgan", None, steps=1500)
    assert deserves_reseed(clean, 0.5, parts, _units(parts))  # a collapsed correct LSGAN
    assert not deserves_reseed(clean, 1.0, parts, _units(parts))  # full credit already
    for part in parts.values():  # a part that failed its own item is the suspect instead
        assert not deserves_reseed(clean, 0.0, parts, _units(parts, failed=part)), part
    missing = dict(_units(parts))
    missing.pop(next(iter(parts.values())))
    assert not deserves_reseed(clean, 0.0, parts, missing)  # a part not graded
    for broken in (TrainingRun("lsgan", None, error="timed out"),
                   TrainingRun("lsgan", None, flags=["fewer steps than reported"]),
                   TrainingRun("lsgan", None, problems=["NaN losses"])):
        assert not deserves_reseed(broken, 0.0, parts, _units(parts)), broken


def test_a_correct_gan_that_falls_short_is_trained_from_a_second_start(tmp_path, mnist_dir):
    """With lines no run can meet, the solution's GAN falls short at its first start; its
    parts all pass, so it is trained from a second one, and both runs are recorded."""
    from reference.build_notebook import SOLUTION_PATH

    result = full_grade(tmp_path, mnist_dir, SOLUTION_PATH, budgets={"gan": 10, "lsgan": 10,
                                                                    "dcgan": 2},
                        points={"lsgan_convergence": 0, "dcgan_convergence": 0},
                        thresholds={"gan": [1.0, 2.0]}, attribution_runs=0, reseed_runs=1)
    item = result.item("gan_convergence")
    assert item.status == "failed", item
    reseeded = item.details["reseeded"]
    assert len(reseeded["runs"]) == 2, reseeded
    first, second = reseeded["runs"]
    assert first["seed"] != second["seed"] and first["fcd"] != second["fcd"]
    assert first["steps"] == second["steps"] == 10
    assert reseeded["counted"] == first["seed"]  # no better: the first run counts
    assert "trained from 2 starts" in item.message
