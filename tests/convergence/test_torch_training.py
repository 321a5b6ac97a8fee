"""The PyTorch training loop and the convergence items of PyTorch submissions: the weight
layout the grader expects of a PyTorch network, a session in the grader's process (as in a
kernel) judged through the grader's numpy networks, then full mode through a real kernel
with small budgets. The full-budget checks are marked slow."""

from __future__ import annotations

import nbformat
import numpy as np
import pytest

from grader.convergence import networks
from grader.convergence.judge import draw_plan
from grader.convergence.networks import Architecture, Role
from tests.fixtures.full_mode import full_grade

torch = pytest.importorskip("torch")

CONVERGENCE_ITEMS = ("gan_convergence", "lsgan_convergence", "dcgan_convergence")
NOISE_DIM = 96


def framework():
    from grader.frameworks.torch.framework import TorchFramework

    return TorchFramework()


def reference_network(architecture: str, role: str):
    from reference import hw4_torch

    builders = {(Architecture.MLP, Role.DISCRIMINATOR): hw4_torch.discriminator,
                (Architecture.MLP, Role.GENERATOR): lambda: hw4_torch.generator(NOISE_DIM),
                (Architecture.DC, Role.DISCRIMINATOR): lambda: hw4_torch.build_dc_classifier(128),
                (Architecture.DC, Role.GENERATOR): lambda: hw4_torch.build_dc_generator(NOISE_DIM)}
    return builders[(architecture, role)]()


@pytest.mark.parametrize("architecture", [Architecture.MLP, Architecture.DC])
@pytest.mark.parametrize("role", [Role.GENERATOR, Role.DISCRIMINATOR])
def test_the_expected_layout_is_the_reference_networks_listing(architecture, role):
    from grader.frameworks.torch.kernel.layout import listing

    expected = [shape for shape, _ in framework().layout(architecture, role, NOISE_DIM)]
    listed = [tuple(tensor.shape) for _, tensor, _, _ in listing(reference_network(architecture,
                                                                                   role))]
    assert listed == expected
    start = networks.start_weights(networks.layout(architecture, role, NOISE_DIM),
                                   np.random.default_rng(3))
    own = framework().from_specified(architecture, role, start)
    assert [w.shape for w in own] == expected
    for back, original in zip(framework().to_specified(architecture, role, own), start):
        np.testing.assert_allclose(back, original, atol=1e-6)


@pytest.mark.parametrize("model", ["gan", "dcgan"])
def test_the_grader_draws_what_the_trained_torch_generator_draws(model):
    """A PyTorch session started from the grader's weights and trained a few steps: its
    weights, read back into the specified layout, give the grader's numpy generator the
    samples the PyTorch generator gives in inference mode (batch norm's PyTorch epsilon
    folded into the statistics)."""
    from reference.reference_runs import kernel_module, torch_reference_parts

    train = kernel_module("torch/train", before=("torch/layout",))
    architecture = networks.architecture_of(model)
    images = np.random.default_rng(0).uniform(-1, 1, (512, 784)).astype(np.float32)
    plan = draw_plan(np.random.default_rng(1), steps=3, n_images=512, n_samples=64)
    session = train.TrainingSession(torch_reference_parts(model), seed=0)
    start = {}
    for role in networks.ROLES:
        start[role] = networks.start_weights(networks.layout(architecture, role),
                                             np.random.default_rng(5))
        own = framework().from_specified(architecture, role, start[role])
        session.assign(role, dict(enumerate(own)))
    chunk = session.run(images, plan["order"])
    assert chunk["losses"].shape == (3, 2) and np.isfinite(chunk["losses"]).all()
    generator = framework().to_specified(architecture, Role.GENERATOR,
                                         session.values(Role.GENERATOR))
    assert not np.array_equal(generator[0], start[Role.GENERATOR][0])  # it trained
    session.G.eval()
    with torch.no_grad():
        expected = session.G(torch.as_tensor(plan["eval_noise"])).reshape(64, -1).numpy()
    np.testing.assert_allclose(networks.generate(architecture, generator, plan["eval_noise"]),
                               expected, atol=2e-4)


def test_full_mode_trains_a_pytorch_notebook_and_judges_what_the_grader_draws(tmp_path,
                                                                                mnist_dir):
    from reference.build_notebook_torch import SOLUTION_PATH

    budgets = {"gan": 20, "lsgan": 20, "dcgan": 4}
    result = full_grade(tmp_path, mnist_dir, SOLUTION_PATH, budgets=budgets,
                        checkpoints={"gan": [10], "lsgan": [10], "dcgan": [2]})
    assert result.profile.startswith("torch")
    for item_id in CONVERGENCE_ITEMS:
        item = result.item(item_id)
        budget = budgets[item_id[:-len("_convergence")]]
        assert item.status in ("passed", "failed") and item.max_points > 0, item
        assert item.flags == [], item.flags
        assert item.details["steps"] == budget == item.details["steps_budget"]
        assert item.details["sampled_by"] == "grader" and item.details["fcd"] > 0


@pytest.mark.slow
def test_the_pytorch_reference_passes_at_full_budget(tmp_path, mnist_dir):
    from reference.build_notebook_torch import SOLUTION_PATH

    result = full_grade(tmp_path, mnist_dir, SOLUTION_PATH, seed=1)
    for item_id in CONVERGENCE_ITEMS:
        item = result.item(item_id)
        assert item.status == "passed" and not item.flags, item.message


@pytest.mark.slow
def test_swapped_labels_in_a_pytorch_loss_fail_and_are_attributed(tmp_path, mnist_dir):
    from reference.build_notebook_torch import SOLUTION_PATH

    notebook = nbformat.read(SOLUTION_PATH, as_version=4)
    right = "real = bce_loss(logits_real, torch.ones_like(logits_real))"
    cells = [cell for cell in notebook.cells if right in cell.source]
    assert len(cells) == 1
    cells[0].source = cells[0].source.replace(right, right.replace("ones_like", "zeros_like"))
    path = tmp_path / "swapped.ipynb"
    nbformat.write(notebook, path)
    result = full_grade(tmp_path, mnist_dir, path)
    item = result.item("gan_convergence")
    assert item.points == 0 and not item.flags, item.message
    assert "discriminator_loss" in item.message or "loss" in item.message
