"""The homework's specified networks in numpy, on the grader's side.

A convergence run sends start weights to the kernel and gets trained weights back (every
``model.weights`` entry of G and D, in Keras order). With the functions here the grader
draws its own samples and computes its own losses from those weights, with the networks
the homework specifies (``reference.hw4``: ``discriminator``, ``generator``,
``dc_discriminator``, ``dc_generator``) and without TensorFlow in its process.

* ``layout``: the (shape, name) list of a network's weights, in Keras order;
* ``start_weights``: Keras' default initial values for a layout (glorot-uniform kernels);
* ``generate`` and ``discriminate``: the forward passes, float32, in batches, batch
  normalisation in inference mode (moving statistics);
* ``reference_losses``: the homework's losses of a model on given images and noise;
* ``descent_z``: how strongly each trained kernel still correlates with its start;
* ``nearest_distances``: distance from each sample to its nearest training image.

Convolutions are matrix products over image patches (``im2col``), as in
``grader.mnist.evaluator``; their speed is that of numpy's BLAS, which follows
``OPENBLAS_NUM_THREADS``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from grader import items
from grader.exceptions import UnreadableResponse
from grader.mnist.evaluator import im2col

NOISE_DIM = 96
IMAGE_SIDE = 28
IMAGE_SIZE = IMAGE_SIDE * IMAGE_SIDE
LEAKY_SLOPE = 0.01
BN_EPSILON = 1e-3  # Keras' BatchNormalization default
BATCH_SIZE = 500  # rows per step of a forward pass (bounds memory)
NEAREST_CHUNK = 10_000  # training images per matrix product of ``nearest_distances``

KERNEL, BIAS = "kernel", "bias"
GAMMA, BETA, MOVING_MEAN, MOVING_VARIANCE = "gamma", "beta", "moving_mean", "moving_variance"
ONES = (GAMMA, MOVING_VARIANCE)  # start at 1; every other vector starts at 0

Layout = list[tuple[tuple[int, ...], str]]


class Architecture:
    """The two network families of the homework."""

    MLP = "mlp"  # discriminator / generator: dense layers only
    DC = "dc"  # dc_discriminator / dc_generator: convolutions, batch normalisation


ARCHITECTURES = (Architecture.MLP, Architecture.DC)


class Role:
    """The two networks of a GAN (the catalogue's names of the parts)."""

    GENERATOR = items.GENERATOR_ROLE
    DISCRIMINATOR = items.DISCRIMINATOR_ROLE


ROLES = (Role.GENERATOR, Role.DISCRIMINATOR)

# Which networks each convergence model trains; ``architecture_of`` checks it against the
# catalogue's models.
MODEL_ARCHITECTURES = {"gan": Architecture.MLP, "lsgan": Architecture.MLP,
                       "dcgan": Architecture.DC}
LEAST_SQUARES_FORM = "lsgan"  # the catalogue's ``form`` of the least-squares loss


def architecture_of(model: str) -> str:
    """The architecture a convergence model ("gan", "lsgan", "dcgan") trains."""
    if model not in items.models() or model not in MODEL_ARCHITECTURES:
        raise ValueError(f"unknown convergence model {model!r}; known: {items.models()}")
    return MODEL_ARCHITECTURES[model]


def loss_form(model: str) -> str:
    """The catalogue's form ("gan" or "lsgan") of the loss a convergence model trains with."""
    architecture_of(model)
    return items.spec(items.convergence_item(model).parts[items.LOSS_ROLE]).form


# --------------------------------------------------------------------------- layouts


def dense(fan_in: int, units: int) -> Layout:
    """A Dense layer's weights."""
    return [((fan_in, units), KERNEL), ((units,), BIAS)]


def batch_norm(width: int) -> Layout:
    """A BatchNormalization layer's weights, in Keras order."""
    return [((width,), name) for name in (GAMMA, BETA, MOVING_MEAN, MOVING_VARIANCE)]


def conv(size: int, channels_in: int, filters: int) -> Layout:
    """A Conv2D layer's weights: kernel (h, w, in, out)."""
    return [((size, size, channels_in, filters), KERNEL), ((filters,), BIAS)]


def conv_transpose(size: int, channels_in: int, filters: int) -> Layout:
    """A Conv2DTranspose layer's weights: kernel (h, w, out, in)."""
    return [((size, size, filters, channels_in), KERNEL), ((filters,), BIAS)]


def layout(architecture: str, role: str, noise_dim: int = NOISE_DIM) -> Layout:
    """The specified network's weights as (shape, short name), in ``model.weights`` order."""
    if architecture not in ARCHITECTURES or role not in ROLES:
        raise ValueError(f"unknown network {architecture!r} {role!r}")
    if architecture == Architecture.MLP and role == Role.DISCRIMINATOR:
        return dense(IMAGE_SIZE, 256) + dense(256, 256) + dense(256, 1)
    if architecture == Architecture.MLP:
        return dense(noise_dim, 1024) + dense(1024, 1024) + dense(1024, IMAGE_SIZE)
    if role == Role.DISCRIMINATOR:
        return conv(5, 1, 32) + conv(5, 32, 64) + dense(4 * 4 * 64, 1024) + dense(1024, 1)
    return (dense(noise_dim, 1024) + batch_norm(1024) + dense(1024, 7 * 7 * 128)
            + batch_norm(7 * 7 * 128) + conv_transpose(4, 128, 64) + batch_norm(64)
            + conv_transpose(4, 64, 1))


def kernel_positions(weights_layout: Layout) -> list[int]:
    """Positions of the weight matrices and convolution kernels (two or more dimensions)."""
    return [i for i, (shape, _) in enumerate(weights_layout) if len(shape) >= 2]


def fit_problems(weights_layout: Layout, weights: Sequence[np.ndarray]) -> list[str]:
    """Why ``weights`` do not fit ``weights_layout`` (count, shapes); empty when they do."""
    if len(weights) != len(weights_layout):
        return [f"{len(weights)} weight arrays where the network has {len(weights_layout)}"]
    return [f"weight {i} ({name}) has shape {tuple(np.shape(value))}, not {shape}"
            for i, ((shape, name), value) in enumerate(zip(weights_layout, weights))
            if tuple(np.shape(value)) != shape]


def checked(architecture: str, role: str, weights: Sequence[np.ndarray]) -> list[np.ndarray]:
    """``weights`` as float32 arrays; ``UnreadableResponse`` when they do not fit the network.

    The noise width is read from the first kernel, so any ``noise_dim`` is accepted.
    """
    noise_dim = int(np.shape(weights[0])[0]) if len(weights) else NOISE_DIM
    problems = fit_problems(layout(architecture, role, noise_dim), weights)
    if problems:
        raise UnreadableResponse(f"{architecture} {role}: " + "; ".join(problems))
    return [np.asarray(value, dtype=np.float32) for value in weights]


# --------------------------------------------------------------------------- start weights


def glorot_limit(shape: tuple[int, ...]) -> float:
    """Half-width of Keras' glorot-uniform range for a kernel of ``shape``."""
    receptive = math.prod(shape[:-2])
    fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
    return math.sqrt(6.0 / (fan_in + fan_out))


def start_weights(weights_layout: Layout, rng: np.random.Generator) -> list[np.ndarray]:
    """Keras' default initial values (float32): glorot-uniform kernels, zero biases, betas
    and moving means, unit gammas and moving variances. Only kernels consume ``rng``."""
    weights = []
    for shape, name in weights_layout:
        if len(shape) >= 2:
            limit = glorot_limit(shape)
            value = rng.uniform(-limit, limit, size=shape).astype(np.float32)
            weights.append(np.clip(value, -limit, limit))  # float32 rounding stays inside
        else:
            weights.append(np.full(shape, 1.0 if name in ONES else 0.0, dtype=np.float32))
    return weights


# --------------------------------------------------------------------------- layers


def leaky_relu(x: np.ndarray) -> np.ndarray:
    """x where x > 0, 0.01 x elsewhere."""
    return np.maximum(x, LEAKY_SLOPE * x)


def relu(x: np.ndarray) -> np.ndarray:
    """max(x, 0)."""
    return np.maximum(x, 0)


def normalise(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray,
              variance: np.ndarray) -> np.ndarray:
    """Batch normalisation in inference mode (the moving statistics), over the last axis."""
    scale = gamma / np.sqrt(variance + np.float32(BN_EPSILON))
    return x * scale + (beta - mean * scale)


def conv_pool(images: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Conv2D ('valid', stride 1), leaky ReLU, then 2x2 max pooling: [N, H, W, C] -> pooled.

    Computed only where the pool looks: each of the four positions of a 2x2 window is a
    stride-2 convolution, and the pool is their elementwise maximum. The bias and the
    leaky ReLU are increasing, so they commute with the maximum and come last.
    """
    kh, kw, _, filters = kernel.shape
    height, width = (images.shape[1] - kh + 1) // 2, (images.shape[2] - kw + 1) // 2
    matrix = kernel.reshape(-1, filters)
    pooled = None
    for phase in ((0, 0), (0, 1), (1, 0), (1, 1)):
        outputs = im2col(images, kh, kw, height, width, stride=2, start=phase) @ matrix
        pooled = outputs if pooled is None else np.maximum(pooled, outputs, out=pooled)
    return leaky_relu(pooled.reshape(len(images), height, width, filters) + bias)


def same_crop(size: int, kernel: int, stride: int) -> int:
    """Rows (or columns) cropped from the start of a full transposed convolution to give
    TensorFlow's 'same' output of ``size * stride`` (the forward convolution's padding)."""
    total = max((size - 1) * stride + kernel - size * stride, 0)
    return total // 2


def conv2d_transpose(images: np.ndarray, kernel: np.ndarray, stride: int = 2) -> np.ndarray:
    """Keras' Conv2DTranspose, padding 'same', no bias: [N, H, W, C] -> [N, sH, sW, F].

    ``kernel`` is (h, w, F, C). Input pixel (i, j) adds ``x[i, j] @ kernel[a, b].T`` to the
    full output at (s i + a, s j + b); one matrix product gives every contribution, and
    the full output is cropped to the 'same' size.
    """
    n, height, width, channels = images.shape
    kh, kw, filters, _ = kernel.shape
    matrix = kernel.transpose(3, 0, 1, 2).reshape(channels, kh * kw * filters)
    parts = (images.reshape(-1, channels) @ matrix).reshape(n, height, width, kh, kw, filters)
    full = np.zeros((n, (height - 1) * stride + kh, (width - 1) * stride + kw, filters),
                    dtype=parts.dtype)
    for a in range(kh):
        for b in range(kw):
            full[:, a: a + stride * height: stride, b: b + stride * width: stride] += \
                parts[:, :, :, a, b]
    top, left = same_crop(height, kh, stride), same_crop(width, kw, stride)
    return full[:, top: top + stride * height, left: left + stride * width]


# --------------------------------------------------------------------------- networks


def mlp_generator(w: list[np.ndarray], noise: np.ndarray) -> np.ndarray:
    """generator(): Dense 1024 relu, Dense 1024 relu, Dense 784 tanh."""
    x = relu(noise @ w[0] + w[1])
    x = relu(x @ w[2] + w[3])
    return np.tanh(x @ w[4] + w[5])


def dc_generator(w: list[np.ndarray], noise: np.ndarray) -> np.ndarray:
    """dc_generator(): two Dense relu + BN, two Conv2DTranspose (relu + BN, then tanh)."""
    x = normalise(relu(noise @ w[0] + w[1]), *w[2:6])
    x = normalise(relu(x @ w[6] + w[7]), *w[8:12])
    x = x.reshape(len(x), 7, 7, 128)  # row-major (h, w, c): Keras' Reshape
    x = normalise(relu(conv2d_transpose(x, w[12]) + w[13]), *w[14:18])
    x = np.tanh(conv2d_transpose(x, w[18]) + w[19])
    return x.reshape(len(x), IMAGE_SIZE)


def mlp_discriminator(w: list[np.ndarray], images: np.ndarray) -> np.ndarray:
    """discriminator(): Dense 256 leaky, Dense 256 leaky, Dense 1 (logits)."""
    x = leaky_relu(images @ w[0] + w[1])
    x = leaky_relu(x @ w[2] + w[3])
    return x @ w[4] + w[5]


def dc_discriminator(w: list[np.ndarray], images: np.ndarray) -> np.ndarray:
    """dc_discriminator(): two conv 5x5 + leaky + max-pool, Dense 1024 leaky, Dense 1."""
    x = images.reshape(len(images), IMAGE_SIDE, IMAGE_SIDE, 1)
    x = conv_pool(x, w[0], w[1])
    x = conv_pool(x, w[2], w[3])
    x = leaky_relu(x.reshape(len(x), -1) @ w[4] + w[5])  # Flatten: row-major (h, w, c)
    return x @ w[6] + w[7]


FORWARD = {
    (Architecture.MLP, Role.GENERATOR): mlp_generator,
    (Architecture.DC, Role.GENERATOR): dc_generator,
    (Architecture.MLP, Role.DISCRIMINATOR): mlp_discriminator,
    (Architecture.DC, Role.DISCRIMINATOR): dc_discriminator,
}
OUTPUT_WIDTH = {Role.GENERATOR: IMAGE_SIZE, Role.DISCRIMINATOR: 1}


def run(architecture: str, role: str, weights: Sequence[np.ndarray], inputs: np.ndarray,
        batch: int) -> np.ndarray:
    """A network's float32 outputs for ``inputs`` [N, width], ``batch`` rows at a time."""
    w = checked(architecture, role, weights)
    inputs = np.asarray(inputs, dtype=np.float32)
    inputs = inputs.reshape(len(inputs), math.prod(inputs.shape[1:]))
    forward = FORWARD[(architecture, role)]
    outputs = [forward(w, inputs[start: start + batch])
               for start in range(0, len(inputs), batch)]
    if not outputs:
        return np.zeros((0, OUTPUT_WIDTH[role]), dtype=np.float32)
    return np.concatenate(outputs).astype(np.float32, copy=False)


def generate(architecture: str, weights: Sequence[np.ndarray], noise: np.ndarray,
             batch: int = BATCH_SIZE) -> np.ndarray:
    """Samples [N, 784] in [-1, 1] of the generator with ``weights`` for ``noise`` [N, d];
    batch normalisation in inference mode (Keras' ``training=False``)."""
    return run(architecture, Role.GENERATOR, weights, noise, batch)


def discriminate(architecture: str, weights: Sequence[np.ndarray], images: np.ndarray,
                 batch: int = BATCH_SIZE) -> np.ndarray:
    """Logits [N, 1] of the discriminator with ``weights`` for images [N, 784]."""
    return run(architecture, Role.DISCRIMINATOR, weights, images, batch)


# --------------------------------------------------------------------------- losses


def bce_with_logits(logits: np.ndarray, label: float) -> np.ndarray:
    """Binary cross-entropy of sigmoid(logits) against ``label``, stable for large logits."""
    return np.maximum(logits, 0) - logits * label + np.log1p(np.exp(-np.abs(logits)))


def losses_from_scores(form: str, real: np.ndarray, fake: np.ndarray) -> tuple[float, float]:
    """(D loss, G loss) of the homework's loss ``form`` ("gan" or "lsgan") from D's outputs."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if form == LEAST_SQUARES_FORM:
        d_loss = 0.5 * np.mean((real - 1.0) ** 2) + 0.5 * np.mean(fake ** 2)
        g_loss = 0.5 * np.mean((fake - 1.0) ** 2)
    else:
        d_loss = np.mean(bce_with_logits(real, 1.0)) + np.mean(bce_with_logits(fake, 0.0))
        g_loss = np.mean(bce_with_logits(fake, 1.0))
    return float(d_loss), float(g_loss)


def reference_losses(model: str, d_weights: Sequence[np.ndarray],
                     g_weights: Sequence[np.ndarray], images: np.ndarray,
                     noise: np.ndarray) -> tuple[float, float]:
    """(D loss, G loss) of ``model`` with the given weights on real ``images`` and the
    samples G draws from ``noise`` (G and D in inference mode)."""
    architecture = architecture_of(model)
    real = discriminate(architecture, d_weights, images)
    fake = discriminate(architecture, d_weights, generate(architecture, g_weights, noise))
    return losses_from_scores(loss_form(model), real, fake)


# --------------------------------------------------------------------------- comparisons


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two arrays' entries (float64); 0.0 when either is constant."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    a, b = a - a.mean(), b - b.mean()
    norms = math.sqrt(float(a @ a) * float(b @ b))
    return 0.0 if norms == 0.0 else float(a @ b) / norms


def descent_z(start: Sequence[np.ndarray], trained: Sequence[np.ndarray],
              weights_layout: Layout) -> list[float]:
    """For each kernel of the layout, the correlation of start and trained values times the
    square root of their number: about N(0, 1) for a kernel unrelated to its start, large
    for one trained from it."""
    return [correlation(start[i], trained[i]) * math.sqrt(np.size(start[i]))
            for i in kernel_positions(weights_layout)]


def nearest_distances(samples: np.ndarray, training_images: np.ndarray,
                      chunk: int = NEAREST_CHUNK) -> np.ndarray:
    """Euclidean distance [N] (float32) from each sample to its nearest training image.

    Both are flattened to 784 values on the same scale ([-1, 1] for samples). The nearest
    image is found by squared distances ``|b|^2 - 2 a.b`` (plus ``|a|^2``, the same for
    every b), one matrix product per ``chunk`` training images; the distance to it is then
    computed directly, in float64, so a sample equal to a training image is at 0 exactly.
    """
    a = np.asarray(samples, np.float32).reshape(len(samples), -1)
    b_all = np.asarray(training_images, np.float32).reshape(len(training_images), -1)
    if len(b_all) == 0:
        raise ValueError("nearest_distances needs at least one training image")
    best = np.full(len(a), np.inf, dtype=np.float32)
    nearest = np.zeros(len(a), dtype=np.int64)
    for start in range(0, len(b_all), chunk):
        b = b_all[start: start + chunk]
        partial = np.einsum("ij,ij->i", b, b)[None, :] - 2.0 * (a @ b.T)
        index = partial.argmin(axis=1)
        value = partial[np.arange(len(a)), index]
        better = value < best
        best[better], nearest[better] = value[better], index[better] + start
    difference = a.astype(np.float64) - b_all[nearest].astype(np.float64)
    return np.sqrt(np.einsum("ij,ij->i", difference, difference)).astype(np.float32)
