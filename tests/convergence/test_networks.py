"""The grader's numpy copies of the specified networks, against the reference's Keras models.

The tests that build Keras models use TensorFlow (run them under the heavy-jobs lock);
the others are plain numpy.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from grader import items
from grader.convergence import networks as nw
from grader.exceptions import UnreadableResponse
from grader.oracles.weights import draw_weights

MLP, DC = nw.Architecture.MLP, nw.Architecture.DC
G, D = nw.Role.GENERATOR, nw.Role.DISCRIMINATOR
NETWORKS = list(itertools.product(nw.ARCHITECTURES, nw.ROLES))


@pytest.fixture(scope="module")
def hw4(tf):
    from reference import hw4

    return hw4


def keras_model(hw4, architecture: str, role: str, noise_dim: int = nw.NOISE_DIM):
    """The reference's Keras model of a network."""
    builders = {(MLP, G): hw4.generator, (DC, G): hw4.dc_generator,
                (MLP, D): hw4.discriminator, (DC, D): hw4.dc_discriminator}
    builder = builders[(architecture, role)]
    return builder(noise_dim) if role == G else builder()


def random_weights(model, seed: int) -> list[np.ndarray]:
    """Non-trivial weights for a Keras model (random batch-norm statistics too), loaded."""
    weights = draw_weights([(tuple(v.shape), v.path) for v in model.weights],
                           np.random.default_rng(seed))
    model.set_weights(weights)
    return weights


def inputs_for(role: str, n: int, rng: np.random.Generator, noise_dim: int = nw.NOISE_DIM):
    width = noise_dim if role == G else nw.IMAGE_SIZE
    return rng.uniform(-1, 1, size=(n, width)).astype(np.float32)


# --------------------------------------------------------------------------- with Keras


@pytest.mark.parametrize("noise_dim", [nw.NOISE_DIM, 4])
@pytest.mark.parametrize(("architecture", "role"), NETWORKS)
def test_the_layout_is_the_keras_models_weights(hw4, architecture, role, noise_dim):
    model = keras_model(hw4, architecture, role, noise_dim)
    keras_layout = [(tuple(v.shape), v.name) for v in model.weights]
    assert nw.layout(architecture, role, noise_dim) == keras_layout


@pytest.mark.parametrize(("architecture", "role"), NETWORKS)
def test_the_forward_pass_is_the_keras_models_in_inference_mode(hw4, architecture, role):
    model = keras_model(hw4, architecture, role)
    weights = random_weights(model, seed=1)
    x = inputs_for(role, 37, np.random.default_rng(2))
    expected = model(x, training=False).numpy()
    forward = nw.generate if role == G else nw.discriminate
    out = forward(architecture, weights, x, batch=16)
    assert out.dtype == np.float32 and out.shape == expected.shape
    assert expected.std() > 0.05  # the comparison is not between near-constant outputs
    np.testing.assert_allclose(out, expected, atol=1e-4, rtol=0)


def test_a_narrow_noise_generator_is_the_keras_model(hw4):
    for architecture in nw.ARCHITECTURES:
        model = keras_model(hw4, architecture, G, noise_dim=4)
        weights = random_weights(model, seed=3)
        z = inputs_for(G, 9, np.random.default_rng(4), noise_dim=4)
        np.testing.assert_allclose(nw.generate(architecture, weights, z),
                                   model(z, training=False).numpy(), atol=1e-4, rtol=0)


def test_start_weights_are_within_keras_glorot_limits(hw4):
    from tensorflow import keras

    for architecture, role in NETWORKS:
        for shape, _ in [entry for entry in nw.layout(architecture, role) if len(entry[0]) >= 2]:
            drawn = keras.initializers.GlorotUniform(seed=5)(shape).numpy()
            limit = nw.glorot_limit(shape)
            assert 0.95 * limit < np.abs(drawn).max() <= limit, (architecture, role, shape)


@pytest.mark.parametrize("model_name", ["gan", "lsgan", "dcgan"])
def test_reference_losses_are_the_homeworks_losses(hw4, tf, model_name):
    architecture = nw.architecture_of(model_name)
    g_model, d_model = keras_model(hw4, architecture, G), keras_model(hw4, architecture, D)
    g_weights, d_weights = random_weights(g_model, 6), random_weights(d_model, 7)
    rng = np.random.default_rng(8)
    images, noise = inputs_for(D, 40, rng), inputs_for(G, 24, rng)
    loss_fn = hw4.lsgan_loss if model_name == "lsgan" else hw4.gan_loss
    expected = loss_fn(d_model(images, training=False),
                       d_model(g_model(noise, training=False), training=False))
    found = nw.reference_losses(model_name, d_weights, g_weights, images, noise)
    np.testing.assert_allclose(found, [float(value) for value in expected], rtol=1e-4)


@pytest.mark.parametrize("form", ["gan", "lsgan"])
def test_the_losses_of_extreme_scores_are_the_homeworks(hw4, tf, form):
    real = np.array([[-200.0], [-3.0], [0.0], [50.0]], np.float32)
    fake = np.array([[120.0], [-90.0], [0.5]], np.float32)
    loss_fn = hw4.lsgan_loss if form == "lsgan" else hw4.gan_loss
    expected = [float(value) for value in loss_fn(tf.constant(real), tf.constant(fake))]
    found = nw.losses_from_scores(form, real, fake)
    assert all(math.isfinite(value) for value in found)
    np.testing.assert_allclose(found, expected, rtol=1e-5)


# --------------------------------------------------------------------------- plain numpy


def test_models_map_to_architectures_and_losses_of_the_catalogue():
    assert {model: nw.architecture_of(model) for model in items.models()} == {
        "gan": MLP, "lsgan": MLP, "dcgan": DC}
    assert {model: nw.loss_form(model) for model in items.models()} == {
        "gan": "gan", "lsgan": "lsgan", "dcgan": "gan"}
    for wrong in ("vae", "dc", "gan_convergence"):
        with pytest.raises(ValueError):
            nw.architecture_of(wrong)
    with pytest.raises(ValueError):
        nw.layout("cnn", G)


def test_kernel_positions_are_the_matrices_and_convolutions():
    assert nw.kernel_positions(nw.layout(MLP, D)) == [0, 2, 4]
    assert nw.kernel_positions(nw.layout(DC, G)) == [0, 6, 12, 18]
    assert nw.kernel_positions(nw.layout(DC, D)) == [0, 2, 4, 6]


def test_start_weights_follow_keras_defaults():
    weights_layout = nw.layout(DC, G)
    weights = nw.start_weights(weights_layout, np.random.default_rng(0))
    assert [w.shape for w in weights] == [shape for shape, _ in weights_layout]
    assert all(w.dtype == np.float32 for w in weights)
    for (shape, name), value in zip(weights_layout, weights):
        if len(shape) >= 2:
            limit = nw.glorot_limit(shape)
            assert np.abs(value).max() <= limit
            assert np.abs(value).max() > 0.95 * limit
            assert abs(value.std() - limit / math.sqrt(3)) < 0.05 * limit
            assert abs(value.mean()) < 0.05 * limit
        else:
            assert np.all(value == (1.0 if name in ("gamma", "moving_variance") else 0.0))
    # Conv2DTranspose (4, 4, 64, 128): fans 16 * 128 in and 16 * 64 out, as Keras counts them.
    assert nw.glorot_limit((4, 4, 64, 128)) == pytest.approx(math.sqrt(6 / (16 * 192)))
    assert nw.glorot_limit((784, 256)) == pytest.approx(math.sqrt(6 / 1040))


def test_start_weights_are_determined_by_the_generator():
    weights_layout = nw.layout(MLP, D)
    first = nw.start_weights(weights_layout, np.random.default_rng(11))
    again = nw.start_weights(weights_layout, np.random.default_rng(11))
    other = nw.start_weights(weights_layout, np.random.default_rng(12))
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], other[0])


def naive_same_conv(y: np.ndarray, kernel: np.ndarray, stride: int) -> np.ndarray:
    """TensorFlow's 'same' convolution by loops: [H, W, F] -> [ceil(H/s), ceil(W/s), C] with
    ``kernel`` (h, w, F, C), zero padding split as TensorFlow splits it (less before)."""
    height, width, _ = y.shape
    kh, kw, _, channels = kernel.shape
    out_h, out_w = -(-height // stride), -(-width // stride)
    pad_h = max((out_h - 1) * stride + kh - height, 0)
    pad_w = max((out_w - 1) * stride + kw - width, 0)
    padded = np.pad(y, ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2),
                        (0, 0)))
    out = np.zeros((out_h, out_w, channels))
    for i, j in itertools.product(range(out_h), range(out_w)):
        patch = padded[stride * i: stride * i + kh, stride * j: stride * j + kw]
        out[i, j] = np.einsum("abf,abfc->c", patch, kernel)
    return out


@pytest.mark.parametrize(("size", "kernel_size"), [(4, 4), (5, 4), (3, 3), (4, 5)])
def test_the_transposed_convolution_is_the_adjoint_of_the_same_convolution(size, kernel_size):
    rng = np.random.default_rng(size * 10 + kernel_size)
    x = rng.normal(size=(1, size, size, 3))
    kernel = rng.normal(size=(kernel_size, kernel_size, 2, 3))
    y = rng.normal(size=(2 * size, 2 * size, 2))
    transposed = nw.conv2d_transpose(x, kernel)[0]
    assert transposed.shape == y.shape
    assert np.sum(transposed * y) == pytest.approx(
        np.sum(x[0] * naive_same_conv(y, kernel, 2)), rel=1e-10)


def test_batches_do_not_change_the_outputs():
    rng = np.random.default_rng(13)
    for architecture, role in NETWORKS:
        weights = draw_weights(nw.layout(architecture, role), rng)
        x = inputs_for(role, 23, rng)
        forward = nw.generate if role == G else nw.discriminate
        np.testing.assert_allclose(forward(architecture, weights, x, batch=5),
                                   forward(architecture, weights, x), atol=1e-5)
        assert forward(architecture, weights, x[:0]).shape == (0, 784 if role == G else 1)


def test_weights_that_do_not_fit_the_network_are_refused():
    weights = nw.start_weights(nw.layout(DC, G), np.random.default_rng(0))
    with pytest.raises(UnreadableResponse, match="19 weight arrays"):
        nw.generate(DC, weights[:-1], np.zeros((2, 96), np.float32))
    swapped = weights[:12] + [weights[12].transpose(0, 1, 3, 2)] + weights[13:]
    with pytest.raises(UnreadableResponse, match=r"weight 12 \(kernel\) has shape"):
        nw.generate(DC, swapped, np.zeros((2, 96), np.float32))
    with pytest.raises(UnreadableResponse):
        nw.discriminate(MLP, weights, np.zeros((2, 784), np.float32))


def test_correlation():
    rng = np.random.default_rng(14)
    a = rng.normal(size=(30, 20))
    assert nw.correlation(a, 3 * a + 1) == pytest.approx(1.0)
    assert nw.correlation(a, -a) == pytest.approx(-1.0)
    assert nw.correlation(a, np.ones_like(a)) == 0.0
    assert nw.correlation(np.zeros(5), np.zeros(5)) == 0.0
    b = rng.normal(size=(30, 20))
    assert nw.correlation(a, b) == pytest.approx(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_descent_z_tells_a_network_trained_from_its_start_from_an_unrelated_one():
    weights_layout = nw.layout(DC, D)
    start = nw.start_weights(weights_layout, np.random.default_rng(15))
    rng = np.random.default_rng(16)
    trained = [w + 0.2 * w.std() * rng.normal(size=w.shape).astype(np.float32) for w in start]
    unrelated = nw.start_weights(weights_layout, np.random.default_rng(17))
    near = nw.descent_z(start, trained, weights_layout)
    far = nw.descent_z(start, unrelated, weights_layout)
    assert len(near) == len(far) == 4
    assert min(near) > 20
    assert max(abs(z) for z in far) < 5


def test_nearest_distances_are_the_brute_force_ones():
    rng = np.random.default_rng(18)
    training = rng.uniform(-1, 1, size=(101, 784)).astype(np.float32)
    samples = rng.uniform(-1, 1, size=(37, 784)).astype(np.float32)
    samples[:3] = training[[5, 60, 100]]
    expected = np.linalg.norm(samples[:, None, :].astype(np.float64)
                              - training[None, :, :], axis=2).min(axis=1)
    found = nw.nearest_distances(samples, training, chunk=16)
    assert found.dtype == np.float32 and found.shape == (37,)
    assert np.all(found[:3] == 0.0)
    np.testing.assert_allclose(found, expected, rtol=1e-6)
    np.testing.assert_allclose(nw.nearest_distances(samples.reshape(37, 28, 28), training),
                               found, rtol=1e-6)
