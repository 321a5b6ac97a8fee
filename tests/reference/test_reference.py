"""The reference solution against independent closed forms and exact parameter counts."""

from __future__ import annotations

import numpy as np
import pytest

from reference import hw4


def _bce(logits: np.ndarray, label: float) -> np.ndarray:
    """Binary cross-entropy from logits in float64, written independently of TensorFlow."""
    logits = np.asarray(logits, dtype=np.float64)
    # log(1 + exp(-|z|)) + max(z, 0) - z * label, stable for any z
    return np.log1p(np.exp(-np.abs(logits))) + np.maximum(logits, 0) - logits * label


@pytest.mark.parametrize("alpha", [0.01, 0.2, 0.5, 1.5])
def test_leaky_relu_matches_definition(tf, alpha):
    x = np.random.default_rng(0).normal(size=(4, 7)).astype(np.float32) * 3
    got = hw4.leaky_relu(tf.constant(x), alpha=alpha).numpy()
    np.testing.assert_allclose(got, np.where(x > 0, x, alpha * x), rtol=1e-6)
    assert got.shape == x.shape


def test_sample_noise_shape_range_and_freshness(tf):
    first, second = hw4.sample_noise(5000, 3).numpy(), hw4.sample_noise(5000, 3).numpy()
    assert first.shape == (5000, 3) and first.dtype == np.float32
    assert first.min() >= -1 and first.max() <= 1
    assert first.min() < -0.99 and first.max() > 0.99  # covers [-1, 1], not [-0.5, 0.5]
    assert not np.allclose(first, second)


@pytest.mark.parametrize(("build", "args", "inputs", "outputs", "params"), [
    (hw4.discriminator, (), 784, 1, 267_009),
    (hw4.generator, (4,), 4, 784, 1_858_320),
    (hw4.dc_discriminator, (), 784, 1, 1_102_721),
    (hw4.dc_generator, (4,), 4, 784, 6_595_521),
])
def test_model_shapes_and_parameter_counts(tf, build, args, inputs, outputs, params):
    model = build(*args)
    count = sum(int(np.prod(variable.shape)) for variable in model.weights)
    assert count == params
    result = model(tf.random.normal([3, inputs]), training=False).numpy()
    assert result.shape == (3, outputs)


@pytest.mark.parametrize("build", [hw4.generator, hw4.dc_generator])
def test_generators_output_in_range(tf, build):
    images = build()(tf.random.uniform([8, hw4.NOISE_DIM], -1, 1) * 50, training=True).numpy()
    assert images.min() >= -1 and images.max() <= 1


def test_discriminator_outputs_logits_not_probabilities(tf):
    model = hw4.discriminator()
    for weight in model.weights:
        weight.assign(tf.random.normal(weight.shape) * 0.5)
    logits = model(tf.random.normal([64, 784])).numpy()
    assert logits.min() < 0 or logits.max() > 1


@pytest.mark.parametrize(("n_real", "n_fake"), [(4, 4), (5, 2), (1, 64)])
def test_gan_loss_matches_closed_form_with_unequal_batches(tf, n_real, n_fake):
    rng = np.random.default_rng(n_real * 100 + n_fake)
    real = rng.normal(size=(n_real, 1)) * 4
    fake = rng.normal(size=(n_fake, 1)) * 4
    real[0, 0], fake[-1, 0] = 100.0, -100.0  # extreme logits must stay finite and exact
    d_loss, g_loss = hw4.gan_loss(tf.constant(real, tf.float32), tf.constant(fake, tf.float32))
    expected_d = _bce(real, 1).mean() + _bce(fake, 0).mean()
    expected_g = _bce(fake, 1).mean()
    np.testing.assert_allclose([float(d_loss), float(g_loss)], [expected_d, expected_g],
                               rtol=1e-5)


def test_gan_loss_is_stable_at_extreme_logits(tf):
    d_loss, g_loss = hw4.gan_loss(tf.constant([[-100.0]]), tf.constant([[100.0]]))
    assert float(d_loss) == pytest.approx(200.0, rel=1e-6)
    assert float(g_loss) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(("n_real", "n_fake"), [(3, 3), (7, 2)])
def test_lsgan_loss_matches_closed_form(tf, n_real, n_fake):
    rng = np.random.default_rng(7)
    real, fake = rng.normal(size=(n_real, 1)) * 3, rng.normal(size=(n_fake, 1)) * 3
    d_loss, g_loss = hw4.lsgan_loss(tf.constant(real, tf.float32), tf.constant(fake, tf.float32))
    expected_d = 0.5 * np.mean((real - 1) ** 2) + 0.5 * np.mean(fake**2)
    expected_g = 0.5 * np.mean((fake - 1) ** 2)
    np.testing.assert_allclose([float(d_loss), float(g_loss)], [expected_d, expected_g],
                               rtol=1e-5)


def test_get_solvers_uses_arguments(tf):
    d_solver, g_solver = hw4.get_solvers(learning_rate=3e-4, beta1=0.25)
    assert d_solver is not g_solver
    for solver in (d_solver, g_solver):
        assert type(solver).__name__ == "Adam"
        assert float(solver.learning_rate) == pytest.approx(3e-4)
        assert float(solver.beta_1) == pytest.approx(0.25)


def test_dc_generator_batch_norm_follows_relu(tf):
    names = [type(layer).__name__ for layer in hw4.dc_generator().layers]
    assert names[:2] == ["Dense", "BatchNormalization"]
    assert names[-1] == "Flatten"


def test_derivation_answers(tf):
    p_data, p_model = np.array([0.3, 1e-9, 2.0]), np.array([0.1, 1.0, 2.0])
    np.testing.assert_allclose(hw4.optimal_d_gan(p_data, p_model), p_data / (p_data + p_model))
    lsgan = hw4.optimal_d_lsgan(p_data, p_model)
    np.testing.assert_allclose(lsgan, 2 * hw4.optimal_d_gan(p_data, p_model) - 1)
    kl = hw4.vae_kl(np.zeros((2, 3)), np.zeros((2, 3)))
    np.testing.assert_allclose(kl, [0.0, 0.0])
    # KL(N(1, e^0.5) || N(0, 1)) in one dimension, written out
    expected = 0.5 * (np.exp(0.5) + 1.0 - 1.0 - 0.5)
    np.testing.assert_allclose(hw4.vae_kl([[1.0]], [[0.5]]), [expected])


def test_preprocess_scales_to_unit_interval():
    images = np.array([[[0, 255], [128, 64]]], dtype=np.uint8)
    out = hw4.preprocess(images)
    assert out.shape == (1, 4) and out.dtype == np.float32
    np.testing.assert_allclose(out[0, :2], [-1.0, 1.0])


def test_short_training_run_behaves(tf, mnist_dir):
    """A real run of the vanilla GAN on MNIST: losses finite, D loss neither 0 nor exploding."""
    from grader.mnist.data import load_mnist

    tf.keras.utils.set_random_seed(0)
    images = hw4.preprocess(load_mnist(mnist_dir, verbose=False).x_train[:128 * 60])
    d_solver, g_solver = hw4.get_solvers()
    history = hw4.run_a_gan(hw4.discriminator(), hw4.generator(), d_solver, g_solver,
                            hw4.gan_loss, images, num_epochs=1, show_every=0, print_every=1000,
                            max_steps=60)
    losses = np.array(history)
    assert losses.shape == (60, 2)
    assert np.isfinite(losses).all()
    d_late = losses[-20:, 0]
    assert d_late.min() > 0.05, "the discriminator's loss collapsed to 0"
    assert d_late.max() < 5.0
