"""The feedback names the mistake: real student functions (the fixture corpus) run in
TensorFlow on the grader's own drawn inputs, judged against the real reference."""

from __future__ import annotations

import numpy as np
import pytest

from grader.oracles.reference import ReferenceOracle
from grader.pipeline import diagnose, score
from grader.pipeline.probe import loss_inputs
from grader.pipeline.prober import Observation
from grader.rubric import load_rubric
from tests.test_fixtures import SOLUTION, build, load_function

RUBRIC = load_rubric()


@pytest.fixture(scope="module")
def oracle() -> ReferenceOracle:
    return ReferenceOracle()


def _observe(tf, function, item: str, seed: int = 3) -> Observation:
    """What the probe would bring back from the kernel, computed here on the same inputs."""
    pairs = loss_inputs(np.random.default_rng(seed))
    outputs = []
    for real, fake in pairs:
        d_loss, g_loss = function(tf.constant(real), tf.constant(fake))
        outputs.append({"kind": "sequence", "items": [
            {"kind": "array", "array": np.asarray(d_loss.numpy())},
            {"kind": "array", "array": np.asarray(g_loss.numpy())}]})
    return Observation(item, [{"real": r, "fake": f} for r, f in pairs], outputs)


@pytest.mark.parametrize(("variant", "item", "named"), [
    ("gan_loss_labels_swapped", "gan_loss", {"D_loss": "the labels swapped"}),
    ("gan_loss_concatenated_batch", "gan_loss", {"D_loss": "one average over both batches"}),
    ("gan_loss_saturating_generator", "gan_loss", {"G_loss": "the saturating generator loss"}),
    ("gan_loss_reduce_sum", "gan_loss", {"D_loss": "sums instead", "G_loss": "sums instead"}),
    ("gan_loss_sigmoid_log", "gan_loss", {"D_loss": "sigmoid then log",
                                          "G_loss": "sigmoid then log"}),
    ("lsgan_loss_no_half", "lsgan_loss", {"D_loss": "a missing factor 1/2",
                                          "G_loss": "a missing factor 1/2"}),
    ("lsgan_loss_targets_swapped", "lsgan_loss", {"D_loss": "the labels swapped"}),
])
def test_a_wrong_loss_is_named_by_its_mistake(oracle, variant, item, named):
    tf = oracle.tf
    function = load_function(tf, build(variant), item)
    result = score.score_loss(_observe(tf, function, item), oracle, RUBRIC.item(item))
    assert result.points < result.max_points
    if len(named) == 2 and len(set(named.values())) == 1:  # said once for both
        assert f"D_loss and G_loss match a common mistake, {named['D_loss']}" in result.message
    else:
        for label in named:
            assert f"{label} matches a common mistake, {named[label]}" in result.message
    for label in {"D_loss", "G_loss"} - set(named):
        assert f"{label} is wrong" not in result.message
    if "one average" not in named.get("D_loss", ""):  # the averaging hint only where it applies
        assert "own batch" not in result.message


def test_a_mistake_outside_the_catalogue_is_said_plainly(oracle):
    tf = oracle.tf

    def gan_loss(logits_real, logits_fake):  # a plausible slip: the sigmoid's squares
        return (tf.reduce_mean(tf.square(logits_real)), tf.reduce_mean(tf.square(logits_fake)))

    result = score.score_loss(_observe(tf, gan_loss, "gan_loss"), oracle,
                              RUBRIC.item("gan_loss"))
    assert result.points == 0
    assert "D_loss matches none of the common mistakes the grader checks" in result.message
    assert "G_loss matches none" in result.message and "own batch" not in result.message


def test_the_correct_loss_matches_no_mistake(oracle):
    tf = oracle.tf
    function = load_function(tf, SOLUTION, "gan_loss")
    observation = _observe(tf, function, "gan_loss")
    got = [float(out["items"][0]["array"]) for out in observation.outputs]
    assert diagnose.matching_mistakes("gan", "D_loss", observation.calls, got) == []


@pytest.mark.parametrize(("variant", "item", "kwargs", "expected"), [
    ("dc_discriminator_same_padding", "dc_discriminator", {},
     ["layer 9 of the specification, a Dense", "should have shapes (1024, 1024), (1024,)",
      "yours have (3136, 1024), (1024,)", "Flatten before it (layer 8) should output (None, "
      "1024)"]),
    ("discriminator_extra_layer", "discriminator", {},
     ["of the specification, a Dense", "yours have (256, 256)"]),
])
def test_an_architecture_mismatch_names_the_first_layer(oracle, variant, item, kwargs, expected):
    tf = oracle.tf
    model = load_function(tf, build(variant), item)(**kwargs)
    shapes = [tuple(v.shape) for v in model.weights]
    message = diagnose.first_layer_difference(oracle.layer_specs(item, kwargs), shapes)
    for part in expected:
        assert part in message
    right = load_function(tf, SOLUTION, item)(**kwargs)
    assert diagnose.first_layer_difference(oracle.layer_specs(item, kwargs),
                                           [tuple(v.shape) for v in right.weights]) is None


def test_the_model_item_message_carries_the_layer(oracle):
    """The issue's case: SAME padding in the DCGAN discriminator, scored as the grader does."""
    tf = oracle.tf
    model = load_function(tf, build("dc_discriminator_same_padding"), "dc_discriminator")()
    x = np.zeros((4, 784), np.float32)
    built = {"kind": "model", "output": {"kind": "array", "array": model(x).numpy()},
             "variables": [{"shape": list(v.shape), "name": v.name,
                                "trainable": v.trainable} for v in model.weights]}
    observation = Observation("dc_discriminator", [{"kwargs": {}, "x": x}], [built],
                              info={"mapping": None})
    result = score.score_model(observation, oracle, RUBRIC.item("dc_discriminator"))
    assert "3,265,409 parameters" in result.message
    assert "the first difference is at layer 9 of the specification, a Dense" in result.message
