"""Build ``reference/HW4_solution.ipynb`` from ``reference/hw4.py`` and the prose below.

The solution module is the single source of the graded code: each graded function
is copied into its own cell with ``inspect.getsource``, solution markers included,
and the public self-checks' expected values are computed by running it. Then
``hw4grade template`` strips the markers to make the student template.

    python -m reference.build_notebook          # rewrite the solution notebook
"""

from __future__ import annotations

import inspect
from pathlib import Path

import nbformat
import numpy as np
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from reference import hw4

SOLUTION_PATH = Path(__file__).resolve().parent / "HW4_solution.ipynb"

# Fixed public inputs for the notebook's self-checks (the grader uses hidden ones).
LRELU_X = [[-3.0, -0.5, 0.0, 0.25, 2.0], [1.5, -10.0, 7.0, -0.01, 0.6]]
LOGITS_REAL = [[1.5], [-0.3], [4.0], [-2.2]]
LOGITS_FAKE = [[-1.0], [0.8], [-3.5]]


def number_literal(values) -> str:
    """Numbers as a short, stable Python literal (6 significant digits)."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 0:
        return f"{float(array):.6g}"
    return "[" + ", ".join(number_literal(row) for row in array) + "]"


def function_source(*functions, gap: str = "\n\n") -> str:
    """The source of ``functions``, one after the other."""
    return gap.join(inspect.getsource(function).rstrip() for function in functions)




def _expected_values() -> dict[str, str]:
    import tensorflow as tf

    real, fake = tf.constant(LOGITS_REAL), tf.constant(LOGITS_FAKE)
    return {
        "lrelu": number_literal(hw4.leaky_relu(tf.constant(LRELU_X))),
        "lrelu_02": number_literal(hw4.leaky_relu(tf.constant(LRELU_X), alpha=0.2)),
        "gan": number_literal([float(v) for v in hw4.gan_loss(real, fake)]),
        "lsgan": number_literal([float(v) for v in hw4.lsgan_loss(real, fake)]),
        "kl": number_literal(hw4.vae_kl([[0.0, 0.0], [1.0, -0.5]], [[0.0, 0.0], [-1.0, 0.5]])),
        "d_gan": number_literal(hw4.optimal_d_gan([0.2, 0.5, 0.9], [0.6, 0.5, 0.1])),
        "d_lsgan": number_literal(hw4.optimal_d_lsgan([0.2, 0.5, 0.9], [0.6, 0.5, 0.1])),
        "d_lsgan_01": number_literal(hw4.optimal_d_lsgan([0.2, 0.5, 0.9], [0.6, 0.5, 0.1], a=0.0, b=1.0)),
    }


INTRO = """\
# Homework 4: generative models

This notebook holds the whole homework. Problems 1 and 2 are derivations: write them in
the markdown cells provided (they are graded by hand) and fill in the three short
functions that state your final formulas (those are checked automatically). Problem 3
asks you to implement three GANs in TensorFlow 2 and train them on MNIST.

**How it is graded.** Every function you write is called by the grader on its own
inputs, which you do not see, so make each one work for any valid input, not only for the
examples here. The grader also trains your GANs itself and looks at the digits they draw.
Stored outputs in this file are ignored: only what your code does when the grader runs it
counts.

**Rules of the road.**
* Keep the function names and signatures exactly as given; fill in the bodies where it
  says `# TODO`.
* Define each function at the top level of its cell (not inside an `if` or another function).
* The cells marked *check* run public tests on fixed inputs; passing them is a good sign,
  not a guarantee. Run `hw4grade check HW4_template.ipynb` to self-check the whole notebook.
"""

SETUP = """\
import math

import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
from tensorflow import keras
from tensorflow.keras import layers

NOISE_DIM = 96   # size of the generator's input noise
NUM_EPOCHS = 10  # passes over MNIST per GAN; lower it for a first try on a CPU
print("TensorFlow", tf.__version__)"""

CHECK_HELPERS = '''\
def implemented(**values):
    """Return True when no value is None; otherwise say which parts are still to do."""
    missing = [name for name, value in values.items() if value is None]
    if missing:
        print("Not implemented yet:", ", ".join(missing))
    return not missing


def check_close(name, value, expected, tol=1e-4):
    """Compare a result with expected numbers and print the verdict."""
    if not implemented(**{name: value}):
        return
    got = np.asarray(value, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        print(f"{name}: FAIL, result has shape {got.shape}, expected {expected.shape}")
    elif np.allclose(got, expected, rtol=tol, atol=tol):
        print(f"{name}: ok")
    else:
        print(f"{name}: FAIL, largest difference {np.max(np.abs(got - expected)):.3g}")


def check_model(name, model, input_dim, expected_params):
    """Check a Keras model's parameter count and output shape on a small batch."""
    if not implemented(**{name: model}):
        return
    output_shape = tuple(model(tf.zeros([5, input_dim])).shape)  # builds a model without Input
    params = model.count_params()
    right = params == expected_params and output_shape == (5, output_dim[name])
    verdict = "ok" if right else "FAIL"
    print(f"{name}: {verdict}, {params:,} parameters (expected {expected_params:,}), "
          f"output shape {output_shape} for a batch of 5")


output_dim = {"discriminator": 1, "generator": 784, "dc_discriminator": 1, "dc_generator": 784}'''

PROBLEM1 = """\
## Problem 1: the VAE loss

Start from the marginal likelihood $p_\\theta(x) = \\int p_\\theta(z)\\, p_\\theta(x \\mid z)\\, dz$,
which cannot be computed directly, and an encoder $q_\\phi(z \\mid x)$. Derive, step by step,
the loss $\\mathcal{L}(x, \\theta, \\phi)$ that a VAE minimises. Say which assumption each
step uses, name the terms of the final loss, and explain which term cannot be estimated
and why it is dropped.

**Your derivation:**

<!-- BEGIN SOLUTION -->
Because $\\log p_\\theta(x)$ does not depend on $z$, it equals its expectation under any
$q_\\phi(z \\mid x)$. Write $p_\\theta(x) = p_\\theta(x, z) / p_\\theta(z \\mid x)$, multiply and divide
by $q_\\phi(z \\mid x)$ inside the logarithm, and split:

$$\\log p_\\theta(x) = \\mathbb{E}_{q}[\\log p_\\theta(x \\mid z)]
 - D_{KL}(q_\\phi(z \\mid x) \\,\\|\\, p_\\theta(z))
 + D_{KL}(q_\\phi(z \\mid x) \\,\\|\\, p_\\theta(z \\mid x)).$$

The first term is a reconstruction term, estimated by sampling $z$ from the encoder with
the reparameterisation $z = \\mu + \\sigma \\odot \\epsilon$. The second has a closed form
when $q$ is a diagonal Gaussian and the prior is $\\mathcal{N}(0, I)$:
$-\\tfrac12 \\sum_j (1 + \\log \\sigma_j^2 - \\mu_j^2 - \\sigma_j^2)$. The third needs the
true posterior $p_\\theta(z \\mid x)$, which is as intractable as $p_\\theta(x)$ itself; it is
non-negative, so dropping it leaves a lower bound (the ELBO). The loss is the negative
ELBO: $\\mathcal{L} = -\\mathbb{E}_q[\\log p_\\theta(x \\mid z)] + D_{KL}(q_\\phi(z \\mid x) \\| p(z))$.
<!-- END SOLUTION -->

**Your final formula, as code.** `vae_kl(mu, log_var)` takes arrays of shape `[N, k]` (the
encoder's means and log-variances) and returns the `[N]` KL divergences of
$\\mathcal{N}(\\mu, \\operatorname{diag}(e^{\\text{log\\_var}}))$ from $\\mathcal{N}(0, I)$, with numpy."""

PROBLEM2 = """\
## Problem 2: the optimal LSGAN discriminator

LSGAN replaces the log loss with squared errors: the discriminator minimises
$\\tfrac12 \\mathbb{E}_{p_{data}}[(D(x) - b)^2] + \\tfrac12 \\mathbb{E}_{p_z}[(D(G(z)) - a)^2]$,
where $a$ is the target for fake samples and $b$ the target for real ones. For a fixed
generator, derive the optimal $D^*(x)$ and compare it with the optimal discriminator of
the original GAN, $p_{data} / (p_{data} + p_{model})$.

**Your derivation:**

<!-- BEGIN SOLUTION -->
Write both expectations as integrals over $x$ (the fake term under $p_{model}$). The
integrand $\\tfrac12 p_{data}(x)(D - b)^2 + \\tfrac12 p_{model}(x)(D - a)^2$ is a convex
parabola in the value $D = D(x)$, so it is minimised pointwise where its derivative
$p_{data}(D - b) + p_{model}(D - a)$ vanishes:
$D^*(x) = \\dfrac{b\\, p_{data}(x) + a\\, p_{model}(x)}{p_{data}(x) + p_{model}(x)}$.
With $a = -1, b = 1$ this is $(p_{data} - p_{model}) / (p_{data} + p_{model}) = 2 D^*_{GAN} - 1$:
the same ranking of points as the GAN, rescaled from $[0, 1]$ to $[-1, 1]$, equal to $0$
(not $1/2$) where the densities agree. The difference is in the loss around it: squared
errors keep penalising samples that are on the right side of the boundary but far from
the data, so the generator still gets gradients where the sigmoid log loss saturates.
<!-- END SOLUTION -->

**Your final formulas, as code.** Both functions take numpy arrays of density values
(same shape) and return the optimal discriminator output at each point; `a` and `b` are
the LSGAN targets for fake and real data."""

PROBLEM3 = """\
## Problem 3: GANs on MNIST

A GAN trains two networks against each other: a discriminator $D$ that tells real digits
from generated ones, and a generator $G$ that turns random noise into images meant to fool
$D$. You will build the pieces one function at a time, then train a vanilla GAN, a
least-squares GAN and a convolutional GAN (DCGAN) with the same training loop.

Images are flattened to 784 values scaled to $[-1, 1]$, which matches the generator's
`tanh` output. The helpers below prepare the data and show a grid of images."""

DATA = """\
(x_train_raw, y_train), (x_test_raw, y_test) = tf.keras.datasets.mnist.load_data()
x_train = preprocess(x_train_raw)
print("training images:", x_train.shape, "values in", (x_train.min(), x_train.max()))
show_images(x_train[:16], title="real MNIST digits")"""

MD = {
    "leaky_relu": """\
### Leaky ReLU
`leaky_relu(x, alpha)` returns `x` where `x > 0` and `alpha * x` elsewhere, elementwise,
for a tensor of any shape. Use TensorFlow operations.""",
    "sample_noise": """\
### Random noise
`sample_noise(batch_size, dim)` returns a float32 tensor of shape `[batch_size, dim]` drawn
uniformly from $[-1, 1]$, with new values on every call.""",
    "discriminator": """\
### Discriminator
A Keras model that maps a batch of flattened images `[N, 784]` to one logit each `[N, 1]`:
a fully connected layer of 256 units, leaky ReLU with slope 0.01, another fully connected
layer of 256 units, leaky ReLU 0.01, and a fully connected layer with one output. No
sigmoid at the end: the loss works on logits.""",
    "generator": """\
### Generator
A Keras model from noise `[N, noise_dim]` to images `[N, 784]`: fully connected 1024 units
with ReLU, fully connected 1024 with ReLU, fully connected 784 with `tanh`, so that the
outputs lie in $[-1, 1]$ like the training images.""",
    "gan_loss": """\
### GAN loss
`gan_loss(logits_real, logits_fake)` returns `(D_loss, G_loss)`. The discriminator's loss
is the mean binary cross-entropy of the real logits against label 1 plus the mean binary
cross-entropy of the fake logits against label 0 (each averaged over its own batch: the
two batches may have different sizes). The generator uses the non-saturating loss: the
mean binary cross-entropy of the fake logits against label 1. Work with logits directly
(`tf.nn.sigmoid_cross_entropy_with_logits` or an equivalent): taking a sigmoid and then a
log overflows for large logits.""",
    "get_solvers": """\
### Optimizers
`get_solvers(learning_rate, beta1)` returns two Adam optimizers, one for D and one for G,
both with the given learning rate and `beta_1`.""",
    "run_a_gan": """\
### The training loop (given, not graded)
One discriminator step and one generator step per batch of 128 real images. Read it: you
will reuse it for every GAN below.""",
    "train_gan": """\
### Train the vanilla GAN
On a laptop CPU an epoch takes a minute or two; the digits become recognisable after a
few epochs.""",
    "lsgan_loss": """\
### Least-squares GAN
`lsgan_loss(scores_real, scores_fake)` returns `(D_loss, G_loss)` with
$D_{loss} = \\tfrac12 \\operatorname{mean}((D(x) - 1)^2) + \\tfrac12 \\operatorname{mean}(D(G(z))^2)$ and
$G_{loss} = \\tfrac12 \\operatorname{mean}((D(G(z)) - 1)^2)$, each mean over its own batch.""",
    "dc_discriminator": """\
### DCGAN discriminator
Input `[N, 784]`, output `[N, 1]` logits: reshape to 28x28x1; convolution with 32 filters
5x5, stride 1, no padding ("valid"); leaky ReLU 0.01; max-pooling 2x2, stride 2;
convolution with 64 filters 5x5, valid; leaky ReLU 0.01; max-pooling 2x2, stride 2;
flatten; fully connected 1024; leaky ReLU 0.01; fully connected 1.""",
    "dc_generator": """\
### DCGAN generator
Input `[N, noise_dim]`, output `[N, 784]`: fully connected 1024 with ReLU; batch
normalisation; fully connected 7*7*128 with ReLU; batch normalisation; reshape to
7x7x128; transposed convolution with 64 filters 4x4, stride 2, "same" padding, ReLU;
batch normalisation; transposed convolution with 1 filter 4x4, stride 2, "same", `tanh`;
flatten.""",
}


def _train_cell(tag: str, build: str, loss: str, epochs: str) -> str:
    return f"""\
D, G = {build}
zeros = tf.zeros([1, 1])
if implemented(D=D, G=G, sample_noise=sample_noise(1, 1), loss={loss}(zeros, zeros),
               get_solvers=get_solvers()):
    D_solver, G_solver = get_solvers()
    {tag}_history = run_a_gan(D, G, D_solver, G_solver, {loss}, x_train,
                              num_epochs={epochs})"""


def build_cells() -> list[tuple[str, str, str]]:
    """The notebook as (cell id, cell type, source) triples, in order."""
    expected = _expected_values()
    return [
        ("intro", "markdown", INTRO),
        ("setup", "code", SETUP),
        ("helpers", "code", function_source(hw4.preprocess, hw4.show_images) + "\n\n\n" + CHECK_HELPERS),
        ("problem1", "markdown", PROBLEM1),
        ("vae-kl", "code", function_source(hw4.vae_kl)),
        ("vae-kl-check", "code",
         "# check\nmu = np.array([[0.0, 0.0], [1.0, -0.5]])\n"
         "log_var = np.array([[0.0, 0.0], [-1.0, 0.5]])\n"
         f"check_close('vae_kl', vae_kl(mu, log_var), {expected['kl']})"),
        ("problem2", "markdown", PROBLEM2),
        ("optimal-d-gan", "code", function_source(hw4.optimal_d_gan)),
        ("optimal-d-lsgan", "code", function_source(hw4.optimal_d_lsgan)),
        ("optimal-d-check", "code",
         "# check\np_data, p_model = np.array([0.2, 0.5, 0.9]), np.array([0.6, 0.5, 0.1])\n"
         f"check_close('optimal_d_gan', optimal_d_gan(p_data, p_model), {expected['d_gan']})\n"
         "check_close('optimal_d_lsgan', optimal_d_lsgan(p_data, p_model),\n"
         f"            {expected['d_lsgan']})\n"
         "check_close('optimal_d_lsgan with a=0, b=1',\n"
         f"            optimal_d_lsgan(p_data, p_model, a=0.0, b=1.0), {expected['d_lsgan_01']})"),
        ("problem3", "markdown", PROBLEM3),
        ("data", "code", DATA),
        ("leaky-relu-md", "markdown", MD["leaky_relu"]),
        ("leaky-relu", "code", function_source(hw4.leaky_relu)),
        ("leaky-relu-check", "code",
         f"# check\nx = tf.constant({LRELU_X})\n"
         f"check_close('leaky_relu', leaky_relu(x),\n            {expected['lrelu']})\n"
         "check_close('leaky_relu, alpha=0.2', leaky_relu(x, alpha=0.2),\n"
         f"            {expected['lrelu_02']})"),
        ("sample-noise-md", "markdown", MD["sample_noise"]),
        ("sample-noise", "code", function_source(hw4.sample_noise)),
        ("sample-noise-check", "code",
         "# check\nz1, z2 = sample_noise(1000, 7), sample_noise(1000, 7)\n"
         "if implemented(sample_noise=z1):\n"
         "    z1, z2 = np.asarray(z1), np.asarray(z2)\n"
         "    print('shape', z1.shape, 'expected (1000, 7); dtype', z1.dtype, 'expected float32')\n"
         "    print('range', (z1.min(), z1.max()), 'expected inside [-1, 1], near both ends')\n"
         "    print('new values on each call:', not np.allclose(z1, z2))"),
        ("discriminator-md", "markdown", MD["discriminator"]),
        ("discriminator", "code", function_source(hw4.discriminator)),
        ("discriminator-check", "code",
         "# check\ncheck_model('discriminator', discriminator(), 784, 267009)"),
        ("generator-md", "markdown", MD["generator"]),
        ("generator", "code", function_source(hw4.generator)),
        ("generator-check", "code",
         "# check\ncheck_model('generator', generator(4), 4, 1858320)"),
        ("gan-loss-md", "markdown", MD["gan_loss"]),
        ("gan-loss", "code", function_source(hw4.gan_loss)),
        ("gan-loss-check", "code",
         f"# check: 4 real and 3 fake logits\nlogits_real = tf.constant({LOGITS_REAL})\n"
         f"logits_fake = tf.constant({LOGITS_FAKE})\n"
         f"check_close('gan_loss (D, G)', gan_loss(logits_real, logits_fake), {expected['gan']})"),
        ("get-solvers-md", "markdown", MD["get_solvers"]),
        ("get-solvers", "code", function_source(hw4.get_solvers)),
        ("get-solvers-check", "code",
         "# check: expect two Adam optimizers with learning rate 0.0002 and beta_1 0.3\n"
         "solvers = get_solvers(learning_rate=2e-4, beta1=0.3)\n"
         "if implemented(get_solvers=solvers):\n"
         "    for solver in solvers:\n"
         "        print(type(solver).__name__, 'learning rate', float(solver.learning_rate),\n"
         "              'beta_1', getattr(solver, 'beta_1', 'none'))"),
        ("run-a-gan-md", "markdown", MD["run_a_gan"]),
        ("run-a-gan", "code", function_source(hw4.run_a_gan)),
        ("train-gan-md", "markdown", MD["train_gan"]),
        ("train-gan", "code", _train_cell("gan", "discriminator(), generator()", "gan_loss",
                                          "NUM_EPOCHS")),
        ("lsgan-loss-md", "markdown", MD["lsgan_loss"]),
        ("lsgan-loss", "code", function_source(hw4.lsgan_loss)),
        ("lsgan-loss-check", "code",
         "# check\ncheck_close('lsgan_loss (D, G)', lsgan_loss(logits_real, logits_fake), "
         f"{expected['lsgan']})"),
        ("train-lsgan", "code", _train_cell("lsgan", "discriminator(), generator()",
                                            "lsgan_loss", "NUM_EPOCHS")),
        ("dc-discriminator-md", "markdown", MD["dc_discriminator"]),
        ("dc-discriminator", "code", function_source(hw4.dc_discriminator)),
        ("dc-discriminator-check", "code",
         "# check\ncheck_model('dc_discriminator', dc_discriminator(), 784, 1102721)"),
        ("dc-generator-md", "markdown", MD["dc_generator"]),
        ("dc-generator", "code", function_source(hw4.dc_generator)),
        ("dc-generator-check", "code",
         "# check\ncheck_model('dc_generator', dc_generator(4), 4, 6595521)"),
        ("train-dcgan", "code", _train_cell("dcgan", "dc_discriminator(), dc_generator()",
                                            "gan_loss", "max(1, NUM_EPOCHS // 2)")),
    ]


def build_notebook() -> nbformat.NotebookNode:
    """The solution notebook, unexecuted, with stable cell ids."""
    return assemble(build_cells(), {"role": "solution"})


def assemble(cells: list[tuple[str, str, str]], about: dict) -> nbformat.NotebookNode:
    """A notebook of ``(cell id, cell type, source)`` cells, ``about`` as its hw4grade
    metadata."""
    notebook = new_notebook()
    for cell_id, cell_type, source in cells:
        cell = new_code_cell(source) if cell_type == "code" else new_markdown_cell(source)
        cell.id = cell_id
        notebook.cells.append(cell)
    notebook.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "hw4grade": about,
    }
    return notebook


def main() -> None:
    """Rewrite the solution notebook next to this file."""
    from grader.release.template import write_notebook

    write_notebook(build_notebook(), SOLUTION_PATH)
    print(f"wrote {SOLUTION_PATH}")


if __name__ == "__main__":
    main()
