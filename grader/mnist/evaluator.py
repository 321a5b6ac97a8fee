"""Judge a batch of GAN samples with a small, fixed MNIST classifier.

The grader trains each student's GAN itself and passes, say, 10,000 generated
images here: float arrays [N, 784] with values in [-1, 1], the GANs' output format.
The classifier (built and trained by ``python -m reference.train_evaluator``) is a
tiny CNN; its weights, the statistics of its features on the MNIST test set and a
manifest with their SHA-256 hashes live in ``grader/data/``. The forward pass below
is plain numpy, so the grader process needs no TensorFlow to score samples. Its
matrix products run in numpy's BLAS, which follows ``OPENBLAS_NUM_THREADS``: on a
machine whose cores are already busy, one thread is faster than several.

Scores (see ``SampleScores``):

* ``fcd``: Frechet Classifier Distance, the Frechet distance between a Gaussian fitted
  to the samples' 128 penultimate-layer features and one fitted to the MNIST test
  set's features. 0 for the test set itself; grows as the samples drift from MNIST.
* ``class_entropy``: entropy, in nats (natural log; at most ln 10 = 2.303), of the
  histogram of predicted classes. Low when the GAN draws only a few digits.
* ``min_class_fraction``: share of the rarest predicted class (0.1 when balanced).
* ``confident_fraction``: share of samples whose top class probability exceeds
  ``CONFIDENCE_THRESHOLD``; low for smudges that look like no digit.
* ``hard_failures``: reasons the samples cannot pass at all (NaN or Inf, values
  outside [-1, 1], a wrong shape, every sample alike).

``failed_criteria`` compares the scores with pass marks (``Criteria``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.linalg

from grader import DATA_DIR
from grader.exceptions import EvaluatorDataError

WEIGHTS_FILE = "evaluator_weights.npz"
STATS_FILE = "evaluator_stats.npz"
MANIFEST_FILE = "evaluator_manifest.json"

IMAGE_SIZE = 784
NUM_CLASSES = 10
FEATURE_DIM = 128
WEIGHT_NAMES = (
    "conv1_kernel", "conv1_bias", "conv2_kernel", "conv2_bias",
    "dense1_kernel", "dense1_bias", "dense2_kernel", "dense2_bias",
)

CONFIDENCE_THRESHOLD = 0.9  # a prediction is confident when its top probability is above this
RANGE_TOLERANCE = 1e-3  # values in [-1 - tol, 1 + tol] count as inside [-1, 1]
MIN_PIXEL_STD = 0.05  # mean per-pixel std across samples below this: all samples alike
MIN_SAMPLES = 2  # a covariance needs at least two samples (use thousands for a stable FCD)
FCD_EPS = 1e-6  # added to the covariances' diagonals when one of them is singular
MAX_IMAGINARY = 1e-3  # largest imaginary part of sqrtm's result that counts as rounding
BATCH_SIZE = 250  # samples per step of the forward pass (fastest on 2 cores; bounds memory)


@dataclass(frozen=True)
class Evaluator:
    """The classifier's weights (float32 arrays) and the test set's feature statistics."""

    weights: dict[str, np.ndarray]
    mu: np.ndarray  # float64 [128]: mean of the MNIST test set's features
    sigma: np.ndarray  # float64 [128, 128]: their covariance
    manifest: dict


@dataclass
class SampleScores:
    """What ``score_samples`` measured on one batch of samples.

    The four numbers are NaN when they could not be computed (non-finite values,
    a wrong shape, too few samples); ``hard_failures`` then says why.
    """

    fcd: float
    class_entropy: float  # nats
    min_class_fraction: float
    confident_fraction: float
    hard_failures: list[str] = field(default_factory=list)
    n: int = 0


@dataclass(frozen=True)
class Criteria:
    """Pass marks for ``SampleScores``; rubric files may override them.

    The defaults tell a GAN that learned something from a broken one at the CPU
    step budgets. Measured with ``benchmarks/evaluator_calibration.py`` (two runs
    each): the instructor's GAN and LSGAN after 1,500 steps score FCD 228 to 234,
    entropy 1.4 to 2.1 nats, rarest class 0 to 0.016, confident 0.31 to 0.44; the
    DCGAN after 400 steps FCD 34 to 36, entropy 2.25, rarest class 0.04, confident
    0.72. Noise, a single class or one repeated image score FCD 420 to 720 and
    entropy near 0; real test digits blurred with sigma 1.5 score FCD 248.
    """

    max_fcd: float = 300.0
    min_class_entropy: float = 1.0  # nats; ln 10 = 2.303 is perfectly balanced
    min_class_fraction: float = 0.0  # off: briefly trained GANs still miss digits
    min_confident_fraction: float = 0.1


# --------------------------------------------------------------------------- loading


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(data_dir: str | os.PathLike = DATA_DIR) -> dict:
    """The JSON manifest written next to the weights by ``reference.train_evaluator``."""
    path = Path(data_dir) / MANIFEST_FILE
    if not path.is_file():
        raise EvaluatorDataError(
            f"{path}: missing; build it with `python -m reference.train_evaluator`")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise EvaluatorDataError(f"{path}: not valid JSON ({error})") from None
    missing = {"weights_file", "weights_sha256", "stats_file", "stats_sha256"} - set(manifest)
    if missing:
        raise EvaluatorDataError(f"{path}: lacks {', '.join(sorted(missing))}")
    return manifest


def verify_file(path: Path, expected_sha256: str) -> None:
    """Raise ``EvaluatorDataError`` unless ``path`` exists and has the expected SHA-256."""
    if not path.is_file():
        raise EvaluatorDataError(
            f"{path}: missing; build it with `python -m reference.train_evaluator`")
    actual = sha256_of(path)
    if actual != expected_sha256:
        raise EvaluatorDataError(
            f"{path}: SHA-256 mismatch (file {actual}, manifest {expected_sha256}); "
            "the file was changed or belongs to another training run")


def load_evaluator(data_dir: str | os.PathLike = DATA_DIR) -> Evaluator:
    """Load the weights and feature statistics, checking both against the manifest."""
    data_dir = Path(data_dir)
    manifest = read_manifest(data_dir)
    weights_path = data_dir / manifest["weights_file"]
    stats_path = data_dir / manifest["stats_file"]
    verify_file(weights_path, manifest["weights_sha256"])
    verify_file(stats_path, manifest["stats_sha256"])
    with np.load(weights_path) as data:
        weights = {name: data[name].astype(np.float32) for name in WEIGHT_NAMES}
    with np.load(stats_path) as data:
        mu, sigma = data["mu"].astype(np.float64), data["sigma"].astype(np.float64)
    return Evaluator(weights=weights, mu=mu, sigma=sigma, manifest=manifest)


@functools.lru_cache(maxsize=1)
def default_evaluator() -> Evaluator:
    """The evaluator shipped in ``grader/data/``, loaded once per process."""
    return load_evaluator(DATA_DIR)


# --------------------------------------------------------------------------- forward pass


def im2col(images: np.ndarray, kh: int, kw: int, height: int, width: int, stride: int = 1,
           start: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Patches of images [N, H, W, C] as rows [N * height * width, kh * kw * C].

    Patch (i, j) has its top-left corner at ``start + stride * (i, j)``; its values are
    in the (row, column, channel) order of a Keras kernel [kh, kw, C, F] flattened.
    """
    a, b = start
    rows, cols = stride * height, stride * width
    shifted = [images[:, a + i: a + i + rows: stride, b + j: b + j + cols: stride]
               for i in range(kh) for j in range(kw)]
    return np.concatenate(shifted, axis=-1).reshape(height * width * len(images), -1)


def conv2d(images: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """'valid' 2-D convolution, stride 1, no bias, as Keras' Conv2D: [N, H, W, C] -> [N, H', W', F].

    One matrix product, patches times the kernel, handed to BLAS.
    """
    kh, kw, _, filters = kernel.shape
    height, width = images.shape[1] - kh + 1, images.shape[2] - kw + 1
    product = im2col(images, kh, kw, height, width) @ kernel.reshape(-1, filters)
    return product.reshape(len(images), height, width, filters)


def max_pool(images: np.ndarray) -> np.ndarray:
    """2x2 max pooling, stride 2, dropping an odd last row or column (Keras' default)."""
    n, h, w, c = images.shape
    h2, w2 = h // 2, w // 2
    blocks = images[:, : 2 * h2, : 2 * w2].reshape(n, h2, 2, w2, 2, c)
    return blocks.max(axis=(2, 4))


def relu(x: np.ndarray) -> np.ndarray:
    """max(x, 0)."""
    return np.maximum(x, 0)


def conv_block(images: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Keras' Conv2D(relu) then MaxPooling2D(2), computed only where the pool looks.

    Pooled value (i, j) is the largest of the convolution's outputs at (2i + a, 2j + b),
    a, b in {0, 1}. Each of these four "phases" is a stride-2 convolution; their
    elementwise maximum is the pooled output, and a last row or column that the pool
    drops is never computed. Adding the bias and ReLU are increasing functions, so
    they commute with the maximum and are applied once, at the end. Equal to
    ``max_pool(relu(conv2d(images, kernel) + bias))``, about twice as fast.
    """
    kh, kw, _, filters = kernel.shape
    height, width = (images.shape[1] - kh + 1) // 2, (images.shape[2] - kw + 1) // 2
    pooled = None
    for phase in ((0, 0), (0, 1), (1, 0), (1, 1)):
        columns = im2col(images, kh, kw, height, width, stride=2, start=phase)
        outputs = columns @ kernel.reshape(-1, filters)
        pooled = outputs if pooled is None else np.maximum(pooled, outputs, out=pooled)
    pooled = pooled.reshape(len(images), height, width, filters)
    return relu(pooled + bias)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def forward_batch(weights: dict[str, np.ndarray],
                  images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Features [N, 128] and logits [N, 10] of flattened images [N, 784] in [-1, 1]."""
    x = images.astype(np.float32).reshape(-1, 28, 28, 1)
    x = conv_block(x, weights["conv1_kernel"], weights["conv1_bias"])
    x = conv_block(x, weights["conv2_kernel"], weights["conv2_bias"])
    x = x.reshape(len(x), -1)  # row-major (h, w, c): the order of Keras' Flatten
    features = relu(x @ weights["dense1_kernel"] + weights["dense1_bias"])
    logits = features @ weights["dense2_kernel"] + weights["dense2_bias"]
    return features, logits


def forward(weights: dict[str, np.ndarray], images: np.ndarray,
            batch_size: int = BATCH_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Penultimate features [N, 128] and class probabilities [N, 10], in batches."""
    features, probs = [], []
    for start in range(0, len(images), batch_size):
        f, logits = forward_batch(weights, images[start:start + batch_size])
        features.append(f)
        probs.append(softmax(logits))
    if not features:
        return np.zeros((0, FEATURE_DIM), np.float32), np.zeros((0, NUM_CLASSES), np.float32)
    return np.concatenate(features), np.concatenate(probs)


# --------------------------------------------------------------------------- metrics


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and covariance [D, D] (float64, unbiased) of features [N, D]."""
    features = np.asarray(features, dtype=np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def is_singular(sigma: np.ndarray, eps: float = FCD_EPS) -> bool:
    """True when the symmetric matrix ``sigma`` has an eigenvalue at or below ``eps``."""
    return bool(np.linalg.eigvalsh(sigma).min() <= eps)


def real_sqrtm(matrix: np.ndarray) -> np.ndarray | None:
    """``scipy.linalg.sqrtm`` without the imaginary rounding noise; None if the result is
    not finite or has a real imaginary part."""
    root = scipy.linalg.sqrtm(matrix)
    if not np.isfinite(root).all():
        return None
    if np.iscomplexobj(root):
        if np.abs(root.imag).max() > MAX_IMAGINARY * max(1.0, np.abs(root.real).max()):
            return None
        root = root.real
    return root


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = FCD_EPS) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

    d = |mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 sqrtm(sigma1 sigma2)). When either
    covariance is singular (dead features, fewer samples than features, identical
    samples), or when ``sqrtm`` fails without it, ``eps * I`` is added to both before
    the square root. Tiny imaginary parts that ``sqrtm`` leaves from rounding are dropped.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    root = None
    if not (is_singular(sigma1, eps) or is_singular(sigma2, eps)):
        root = real_sqrtm(sigma1 @ sigma2)
    if root is None:  # a singular covariance, or sqrtm failed on an ill-conditioned one
        offset = eps * np.eye(len(sigma1))
        sigma1, sigma2 = sigma1 + offset, sigma2 + offset
        root = real_sqrtm(sigma1 @ sigma2)
        if root is None:
            raise FloatingPointError("no real matrix square root, even after regularisation")
    diff = mu1 - mu2
    distance = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(root)
    return float(max(distance, 0.0))  # rounding can leave a tiny negative number


def class_scores(probs: np.ndarray,
                 threshold: float = CONFIDENCE_THRESHOLD) -> tuple[float, float, float]:
    """(entropy in nats, smallest class fraction, confident fraction) of probabilities [N, 10]."""
    counts = np.bincount(probs.argmax(axis=1), minlength=probs.shape[1])
    fractions = counts / counts.sum()
    nonzero = fractions[fractions > 0]
    entropy = float((nonzero * np.log(1.0 / nonzero)).sum())  # 0.0, not -0.0, for one class
    confident = float((probs.max(axis=1) > threshold).mean())
    return entropy, float(fractions.min()), confident


def as_images(samples: object) -> tuple[np.ndarray | None, list[str]]:
    """Samples as a float array [N, 784], or None and the reason it is not possible."""
    try:
        array = np.asarray(samples)
        if array.dtype == object or not np.issubdtype(array.dtype, np.number):
            raise TypeError(f"dtype {array.dtype}")
        array = array.astype(np.float64)
    except (TypeError, ValueError) as error:
        return None, [f"not a numeric array ({error})"]
    if array.ndim == 0 or array.size != len(array) * IMAGE_SIZE:
        return None, [f"wrong shape {array.shape} (expected [N, 784])"]
    return array.reshape(len(array), IMAGE_SIZE), []


def find_hard_failures(images: np.ndarray, tolerance: float = RANGE_TOLERANCE,
                       min_pixel_std: float = MIN_PIXEL_STD) -> list[str]:
    """Reasons [N, 784] samples cannot pass: too few, NaN/Inf, outside [-1, 1], all alike."""
    failures = []
    if len(images) < MIN_SAMPLES:
        failures.append(f"too few samples ({len(images)}; need at least {MIN_SAMPLES})")
        return failures
    finite = np.isfinite(images)
    if not finite.all():
        rows = int((~finite).any(axis=1).sum())
        failures.append(f"non-finite values (NaN or Inf) in {rows} of {len(images)} samples")
        return failures
    low, high = float(images.min()), float(images.max())
    if low < -1 - tolerance or high > 1 + tolerance:
        failures.append(f"values outside [-1, 1] (min {low:.4g}, max {high:.4g})")
    pixel_std = float(images.std(axis=0).mean())
    if pixel_std < min_pixel_std:
        failures.append(f"all samples alike (mean per-pixel std {pixel_std:.4g} "
                        f"< {min_pixel_std}): the generator ignores z")
    return failures


def score_samples(samples: object, evaluator: Evaluator | None = None) -> SampleScores:
    """Score generated samples [N, 784] in [-1, 1] (N up to about 10,000).

    Hard failures do not stop the scoring when the metrics can still be computed
    (values out of range, all samples alike); they do when they cannot (NaN or
    Inf, a wrong shape, fewer than ``MIN_SAMPLES``), and the metrics are then NaN.
    """
    evaluator = evaluator or default_evaluator()
    images, failures = as_images(samples)
    n = 0 if images is None else len(images)
    if images is not None:
        failures = find_hard_failures(images)
    if images is None or n < MIN_SAMPLES or not np.isfinite(images).all():
        return SampleScores(math.nan, math.nan, math.nan, math.nan, failures, n)
    features, probs = forward(evaluator.weights, images.astype(np.float32))
    mu, sigma = feature_statistics(features)
    fcd = frechet_distance(mu, sigma, evaluator.mu, evaluator.sigma)
    entropy, min_fraction, confident = class_scores(probs)
    return SampleScores(fcd, entropy, min_fraction, confident, failures, n)


def failed_criteria(scores: SampleScores, criteria: Criteria | None = None) -> list[str]:
    """Why ``scores`` fail the pass marks (hard failures first); empty when they pass."""
    criteria = criteria or Criteria()
    reasons = list(scores.hard_failures)
    # Written as "not (good)" so that a NaN score fails too.
    if not scores.fcd <= criteria.max_fcd:
        reasons.append(f"FCD {scores.fcd:.3g} > {criteria.max_fcd}")
    if not scores.class_entropy >= criteria.min_class_entropy:
        reasons.append(f"class entropy {scores.class_entropy:.3g} nats "
                       f"< {criteria.min_class_entropy}")
    if not scores.min_class_fraction >= criteria.min_class_fraction:
        reasons.append(f"rarest class fraction {scores.min_class_fraction:.3g} "
                       f"< {criteria.min_class_fraction}")
    if not scores.confident_fraction >= criteria.min_confident_fraction:
        reasons.append(f"confident fraction {scores.confident_fraction:.3g} "
                       f"< {criteria.min_confident_fraction}")
    return reasons


# --------------------------------------------------------------------------- calibration


def mnist_as_samples(images: np.ndarray) -> np.ndarray:
    """uint8 MNIST images [N, 28, 28] as GAN-style samples: float32 [N, 784] in [-1, 1]."""
    return images.reshape(len(images), IMAGE_SIZE).astype(np.float32) / 127.5 - 1.0

