"""Tests of the sample evaluator (grader/mnist/evaluator.py) that judges the GANs' samples.

The tests on real digits read MNIST from ``$HW4_MNIST_DIR`` and are skipped when it
is unset. Measured with the shipped weights (test accuracy 0.9920): the MNIST test
set scores FCD 0.0 against its own stored statistics, 10,000 training images 0.7 to 1.0,
uniform noise about 450, one repeated digit about 715, only "1"s about 420.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.ndimage
import scipy.signal

from grader.mnist import evaluator as ev
from grader.mnist.data import ENV_VAR, load_mnist

N_BAD = 5000  # samples per failing case: enough for a stable verdict, and quick


@pytest.fixture(scope="module")
def mnist():
    if not os.environ.get(ENV_VAR):
        pytest.skip(f"{ENV_VAR} is not set: these tests need the real MNIST IDX files")
    return load_mnist(os.environ[ENV_VAR], allow_download=False, verbose=False)


@pytest.fixture(scope="module")
def test_samples(mnist) -> np.ndarray:
    return ev.mnist_as_samples(mnist.x_test)


@pytest.fixture(scope="module")
def test_scores(test_samples) -> ev.SampleScores:
    return ev.score_samples(test_samples)


@pytest.fixture(scope="module")
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


# --------------------------------------------------------------------------- shipped files


def test_shipped_files_load_and_are_small():
    evaluator = ev.load_evaluator()
    assert evaluator.weights["conv1_kernel"].shape == (3, 3, 1, 32)
    assert evaluator.weights["dense1_kernel"].shape == (1600, ev.FEATURE_DIM)
    assert evaluator.weights["dense2_kernel"].shape == (ev.FEATURE_DIM, ev.NUM_CLASSES)
    assert all(w.dtype == np.float32 for w in evaluator.weights.values())
    assert evaluator.mu.shape == (ev.FEATURE_DIM,) and evaluator.mu.dtype == np.float64
    assert evaluator.sigma.shape == (ev.FEATURE_DIM, ev.FEATURE_DIM)
    assert np.allclose(evaluator.sigma, evaluator.sigma.T)
    assert (ev.DATA_DIR / ev.WEIGHTS_FILE).stat().st_size < 1 << 20
    assert evaluator.manifest["test_accuracy"] >= 0.99


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    for name in (ev.WEIGHTS_FILE, ev.STATS_FILE, ev.MANIFEST_FILE):
        shutil.copy(ev.DATA_DIR / name, tmp_path / name)
    return tmp_path


def flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_untouched_copy_loads(data_copy):
    assert ev.load_evaluator(data_copy).manifest == ev.read_manifest()


@pytest.mark.parametrize("name", [ev.WEIGHTS_FILE, ev.STATS_FILE])
def test_tampered_file_is_rejected(data_copy, name):
    flip_one_byte(data_copy / name)
    with pytest.raises(ev.EvaluatorDataError, match="SHA-256 mismatch"):
        ev.load_evaluator(data_copy)


def test_missing_files_give_a_clear_error(data_copy):
    (data_copy / ev.WEIGHTS_FILE).unlink()
    with pytest.raises(ev.EvaluatorDataError, match="missing.*train_evaluator"):
        ev.load_evaluator(data_copy)
    (data_copy / ev.MANIFEST_FILE).write_text('{"weights_file": "x.npz"}')
    with pytest.raises(ev.EvaluatorDataError, match="lacks stats_file, stats_sha256"):
        ev.load_evaluator(data_copy)
    (data_copy / ev.MANIFEST_FILE).unlink()
    with pytest.raises(ev.EvaluatorDataError, match="missing"):
        ev.load_evaluator(data_copy)


# --------------------------------------------------------------------------- forward pass


def test_conv2d_matches_scipy(rng):
    images = rng.normal(size=(3, 9, 8, 4))
    kernel = rng.normal(size=(3, 3, 4, 5))
    ours = ev.conv2d(images, kernel)
    for n in range(3):
        for f in range(5):
            # Keras' Conv2D is a cross-correlation summed over the input channels.
            expected = scipy.signal.correlate(images[n], kernel[..., f], mode="valid")[..., 0]
            np.testing.assert_allclose(ours[n, ..., f], expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("size, pooled", [(28, 13), (13, 5), (12, 5)])
def test_conv_block_equals_keras_order(rng, size, pooled):
    images = rng.normal(size=(2, size, size, 3))
    kernel, bias = rng.normal(size=(3, 3, 3, 4)), rng.normal(size=4)
    keras_order = ev.max_pool(ev.relu(ev.conv2d(images, kernel) + bias))
    assert keras_order.shape == (2, pooled, pooled, 4)
    np.testing.assert_allclose(ev.conv_block(images, kernel, bias), keras_order)


def test_forward_pass_classifies_the_test_set(mnist, test_samples):
    features, probs = ev.forward(ev.default_evaluator().weights, test_samples)
    assert features.shape == (10000, ev.FEATURE_DIM) and probs.shape == (10000, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    accuracy = (probs.argmax(axis=1) == mnist.y_test).mean()
    assert accuracy == pytest.approx(ev.default_evaluator().manifest["test_accuracy"], abs=1e-4)


# --------------------------------------------------------------------------- metrics


def test_frechet_distance_of_diagonal_gaussians(rng):
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    var1, var2 = rng.uniform(0.5, 2.0, 6), rng.uniform(0.5, 2.0, 6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
    distance = ev.frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2))
    assert distance == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_of_full_covariances(rng):
    a, b = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    sigma1, sigma2 = a @ a.T + 0.1 * np.eye(5), b @ b.T + 0.1 * np.eye(5)
    # tr sqrtm(S1 S2) = sum of the square roots of the eigenvalues of S1^1/2 S2 S1^1/2.
    values, vectors = np.linalg.eigh(sigma1)
    root1 = vectors @ np.diag(np.sqrt(values)) @ vectors.T
    cross = np.sqrt(np.linalg.eigvalsh(root1 @ sigma2 @ root1)).sum()
    expected = np.trace(sigma1) + np.trace(sigma2) - 2 * cross
    assert ev.frechet_distance(np.zeros(5), sigma1, np.zeros(5), sigma2) == pytest.approx(expected)
    assert ev.frechet_distance(np.ones(5), sigma1, np.ones(5), sigma1) == pytest.approx(0, abs=1e-9)


def test_frechet_distance_survives_singular_covariances():
    mu1, mu2 = np.zeros(4), np.full(4, 2.0)
    zero = np.zeros((4, 4))
    rank_one = np.outer([1.0, 0, 0, 0], [1.0, 0, 0, 0])
    assert ev.frechet_distance(mu1, zero, mu2, zero) == pytest.approx(16.0, abs=1e-5)
    assert ev.frechet_distance(mu1, rank_one, mu1, rank_one) == pytest.approx(0.0, abs=1e-5)
    assert ev.frechet_distance(mu1, rank_one, mu1, zero) == pytest.approx(1.0, abs=1e-2)


def test_class_scores():
    one_hot = np.eye(10)[np.arange(1000) % 10] * 0.95 + 0.005
    entropy, smallest, confident = ev.class_scores(one_hot)
    assert entropy == pytest.approx(math.log(10))
    assert smallest == pytest.approx(0.1) and confident == 1.0
    entropy, smallest, confident = ev.class_scores(np.full((50, 10), 0.1) + np.eye(10)[3] * 0.01)
    assert entropy == 0.0 and smallest == 0.0 and confident == 0.0


# --------------------------------------------------------------------------- real digits pass


def test_test_set_scores_zero_and_passes(test_scores):
    # The stored statistics are those of these very features: FCD is 0 up to rounding.
    assert test_scores.fcd < 1e-6
    assert test_scores.class_entropy > 2.29  # ln 10 = 2.3026 for perfectly balanced classes
    assert test_scores.min_class_fraction > 0.08
    assert test_scores.confident_fraction > 0.95
    assert test_scores.n == 10000
    assert ev.failed_criteria(test_scores) == []


def test_training_images_score_close_to_the_test_set(mnist, rng):
    subset = mnist.x_train[rng.choice(len(mnist.x_train), 10000, replace=False)]
    scores = ev.score_samples(ev.mnist_as_samples(subset))
    assert 0.1 < scores.fcd < 3.0  # measured 0.7 to 1.0 for different subsets
    assert ev.failed_criteria(scores) == []


def test_blurred_digits_are_worse_but_pass(mnist):
    # A stand-in for a GAN that learned digits but draws them soft: it must not fail.
    blurred = scipy.ndimage.gaussian_filter(mnist.x_test[:N_BAD].astype(float), (0, 1, 1))
    scores = ev.score_samples(blurred.reshape(-1, 784) / 127.5 - 1)
    assert 30 < scores.fcd < 200  # measured 114 on all 10,000
    assert ev.failed_criteria(scores) == []


def fcd_of_test_set(mnist_dir: str | os.PathLike | None = None,
                    evaluator: ev.Evaluator | None = None) -> float:
    """FCD of the real MNIST test set against the stored statistics (about 0 by design).

    ``mnist_dir`` defaults to ``$HW4_MNIST_DIR``; a value far from 0 means the
    forward pass or the statistics no longer match the training run.
    """
    mnist = load_mnist(mnist_dir, allow_download=False, verbose=False)
    return ev.score_samples(ev.mnist_as_samples(mnist.x_test), evaluator).fcd


def test_fcd_of_test_set_is_zero(mnist):
    assert fcd_of_test_set() < 1e-6


def test_image_shaped_samples_are_accepted(test_samples):
    scores = ev.score_samples(test_samples[:2000].reshape(-1, 28, 28, 1))
    assert scores.hard_failures == [] and scores.n == 2000


# --------------------------------------------------------------------------- bad samples fail


def bad_samples(kind: str, test_samples: np.ndarray, labels: np.ndarray,
                rng: np.random.Generator) -> np.ndarray:
    one_digit = test_samples[0]
    if kind == "uniform noise":
        return rng.uniform(-1, 1, (N_BAD, 784)).astype(np.float32)
    if kind == "one repeated digit":
        return np.tile(one_digit, (N_BAD, 1))
    if kind == "generator ignores z":
        return np.clip(one_digit + rng.normal(0, 0.01, (N_BAD, 784)), -1, 1).astype(np.float32)
    if kind == "only ones":
        return test_samples[labels == 1]
    raise ValueError(kind)


@pytest.mark.parametrize(
    "kind", ["uniform noise", "one repeated digit", "generator ignores z", "only ones"])
def test_bad_samples_fail(kind, mnist, test_samples, rng):
    scores = ev.score_samples(bad_samples(kind, test_samples, mnist.y_test, rng))
    reasons = ev.failed_criteria(scores)
    assert reasons, f"{kind} passed: {scores}"
    # Each fails clearly, not by a hair: far from MNIST and (nearly) one class.
    assert scores.fcd > 300  # measured 418 to 716; real training images score about 1
    assert scores.class_entropy < 0.1
    assert scores.min_class_fraction == 0.0
    if kind in ("one repeated digit", "generator ignores z"):
        assert any("all samples alike" in reason for reason in scores.hard_failures)
    else:
        assert scores.hard_failures == []


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_flagged(test_samples, bad_value):
    samples = test_samples[:1000].copy()
    samples[17, 300] = bad_value
    scores = ev.score_samples(samples)
    assert scores.hard_failures == ["non-finite values (NaN or Inf) in 1 of 1000 samples"]
    assert math.isnan(scores.fcd) and math.isnan(scores.class_entropy)
    assert ev.failed_criteria(scores)[0].startswith("non-finite")


def test_out_of_range_values_are_flagged(test_samples):
    scores = ev.score_samples(test_samples[:2000] * 1.5)
    assert len(scores.hard_failures) == 1 and "outside [-1, 1]" in scores.hard_failures[0]
    assert "max 1.5" in scores.hard_failures[0]
    assert not math.isnan(scores.fcd)  # still scored, still fails
    assert ev.failed_criteria(scores)
    # [0, 1] images (a forgotten rescaling) are in range but far from MNIST in [-1, 1].
    assert ev.score_samples((test_samples[:2000] + 1) / 2).fcd > 50


def test_rounding_outside_the_range_is_tolerated(test_samples):
    samples = test_samples[:2000] * (1 + ev.RANGE_TOLERANCE / 2)
    assert ev.score_samples(samples).hard_failures == []


@pytest.mark.parametrize("samples, message", [
    (np.zeros((100, 100)), "wrong shape"),
    (np.zeros(784), "wrong shape"),
    (np.zeros((1, 784)), "too few samples"),
    (np.array([["a"] * 784] * 3), "not a numeric array"),
])
def test_unusable_input_is_a_hard_failure(samples, message):
    scores = ev.score_samples(samples)
    assert message in scores.hard_failures[0]
    assert math.isnan(scores.fcd)
    assert ev.failed_criteria(scores)


def test_nan_scores_fail_the_criteria():
    scores = ev.SampleScores(math.nan, math.nan, math.nan, math.nan, [], 10)
    assert len(ev.failed_criteria(scores)) == 4
