"""Build ``reference/HW4_solution_torch.ipynb`` and its student template from
``reference/hw4_torch.py``.

The PyTorch edition of Problem 3, laid out as the course's notebook: MNIST through
``torchvision.datasets.MNIST(download=True)``, one cell per graded function (copied with
``inspect.getsource``, solution markers included), a public check after each, and the
course's training loop for the three GANs. The check values are computed by running the
reference. The template is made by the same ``make_template`` as the TensorFlow one.

    python -m reference.build_notebook_torch    # rewrite the solution notebook and template
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from reference import hw4_torch
from reference.build_notebook import assemble, function_source, number_literal

ROOT = Path(__file__).resolve().parents[1]
SOLUTION_PATH = ROOT / "reference" / "HW4_solution_torch.ipynb"
TEMPLATE_PATH = ROOT / "student_template" / "HW4_torch.ipynb"

# Fixed public inputs for the loss checks: 4 real and 3 fake logits (the grader uses hidden
# ones). Shaped (N, 1), as the discriminators return them.
LOGITS_REAL = [[1.5], [-0.3], [4.0], [-2.2]]
LOGITS_FAKE = [[-1.0], [0.8], [-3.5]]

# cell id -> the graded functions it defines (the fixtures and tests key on these ids)
FUNCTION_CELLS: dict[str, tuple[str, ...]] = {
    "sample-noise": ("sample_noise",),
    "discriminator": ("discriminator",),
    "generator": ("generator",),
    "gan-loss": ("discriminator_loss", "generator_loss"),
    "get-optimizer": ("get_optimizer",),
    "lsgan-loss": ("ls_discriminator_loss", "ls_generator_loss"),
    "dc-classifier": ("build_dc_classifier",),
    "dc-generator": ("build_dc_generator",),
}


def _source(*functions) -> str:
    return function_source(*functions, gap="\n\n\n")


def _expected_values() -> dict[str, str]:
    import torch

    real, fake = torch.tensor(LOGITS_REAL), torch.tensor(LOGITS_FAKE)
    return {
        "gan": number_literal([float(hw4_torch.discriminator_loss(real, fake)),
                     float(hw4_torch.generator_loss(fake))]),
        "lsgan": number_literal([float(hw4_torch.ls_discriminator_loss(real, fake)),
                       float(hw4_torch.ls_generator_loss(fake))]),
    }


INTRO = """\
# Homework 4, Problem 3 (PyTorch edition): GANs on MNIST

You will build a vanilla GAN, a least-squares GAN and a convolutional GAN (DCGAN) in
PyTorch, one function at a time, and train each with the same loop.

**How it is graded.** The grader calls every function you write on inputs of its own,
copies its own weights into your networks and compares what they compute with the
specification, and trains your GANs itself to look at the digits they draw. Outputs
stored in this file count for nothing. Make every function work for any valid input (any
batch size, any noise dimension), not only for the examples below.

**Rules of the road.**
* Keep the names and signatures as given; write the bodies where it says `# TODO`.
* Define each function at the top level of its cell.
* The *check* cells run public tests on fixed inputs: passing them is a good sign, not a
  guarantee.
* The code runs on a CPU; it moves nothing to a GPU, and neither should yours."""

SETUP = """\
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
import torchvision
import torchvision.transforms as T
from torch import nn
from torch.utils.data import DataLoader

NOISE_DIM = 96    # size of the generator's input noise
batch_size = 128  # images per training step
NUM_EPOCHS = 10   # passes over MNIST per GAN; lower it for a first try on a CPU
print("PyTorch", torch.__version__)"""

CHECK_HELPERS = '''\
def implemented(**values):
    """Return True when no value is None; otherwise say which parts are still to do."""
    missing = [name for name, value in values.items() if value is None]
    if missing:
        print("Not implemented yet:", ", ".join(missing))
    return not missing


def check_close(name, value, expected, tol=1e-4):
    """Compare results (scalar tensors or numbers) with expected numbers; print the verdict."""
    got = np.asarray([float(v) for v in value], dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if np.allclose(got, expected, rtol=tol, atol=tol):
        print(f"{name}: ok")
    else:
        print(f"{name}: FAIL, largest difference {np.max(np.abs(got - expected)):.3g}")


def check_model(name, model, input_shape, output_width, expected_params):
    """Check a network's parameter count and output shape on a batch of 5."""
    if not implemented(**{name: model}):
        return
    with torch.no_grad():
        output_shape = tuple(model(torch.zeros(5, *input_shape)).shape)
    params = count_params(model)
    right = params == expected_params and output_shape == (5, output_width)
    print(f"{name}: {'ok' if right else 'FAIL'}, {params:,} parameters (expected "
          f"{expected_params:,}), output shape {output_shape} for a batch of 5")'''

DATA = """\
mnist_train = torchvision.datasets.MNIST("./data/MNIST", train=True, download=True,
                                         transform=T.ToTensor())
loader_train = DataLoader(mnist_train, batch_size=batch_size, shuffle=True, drop_last=True)
images, labels = next(iter(loader_train))
print("a batch of", tuple(images.shape), "with values in", (float(images.min()),
                                                             float(images.max())))
show_images(2 * images[:16] - 1, title="real MNIST digits")"""

MD = {
    "problem": """\
## The data

Each batch holds 128 images of shape `(1, 28, 28)` with values in $[0, 1]$; the training
loop scales them to $[-1, 1]$, the range of the generator's `tanh`. The helpers show a
grid of images and count a network's trainable parameters.""",
    "sample_noise": """\
### Random noise
`sample_noise(batch_size, dim, seed=None)` returns a float32 tensor of shape
`(batch_size, dim)` drawn uniformly from $[-1, 1]$, new values on every call. (The seed
lines are given.)""",
    "discriminator": """\
### Discriminator
An `nn.Sequential` from images to one logit each, `(N, 1)`: flatten (so it takes
`(N, 1, 28, 28)` and `(N, 784)` alike), fully connected 784 -> 256, LeakyReLU with slope
0.01, fully connected 256 -> 256, LeakyReLU 0.01, fully connected 256 -> 1. No sigmoid:
the losses work on logits.""",
    "generator": """\
### Generator
An `nn.Sequential` from noise `(N, noise_dim)` to images `(N, 784)`: fully connected
noise_dim -> 1024, ReLU, 1024 -> 1024, ReLU, 1024 -> 784, `tanh`.""",
    "bce_loss": """\
### GAN losses
`bce_loss` (given) is the mean binary cross-entropy of logits against labels, written to
stay finite for large logits. Use it for both losses:
`discriminator_loss(logits_real, logits_fake)` is the mean cross-entropy of the real
logits against 1 plus that of the fake logits against 0, each averaged over its own batch
(the two batches may differ in size); `generator_loss(logits_fake)` is the mean
cross-entropy of the fake logits against 1. Both return a scalar tensor.""",
    "get_optimizer": """\
### Optimizer
`get_optimizer(model)` returns an Adam optimizer over the model's parameters with learning
rate 1e-3 and betas (0.5, 0.999).""",
    "run_a_gan": """\
### The training loop (given, not graded)
One discriminator step and one generator step per batch. Batch norm stays in training
mode, as in the course's loop.""",
    "lsgan_loss": """\
### Least-squares GAN
`ls_discriminator_loss(scores_real, scores_fake)` is
$\\tfrac12 \\operatorname{mean}((D(x) - 1)^2) + \\tfrac12 \\operatorname{mean}(D(G(z))^2)$ and
`ls_generator_loss(scores_fake)` is $\\tfrac12 \\operatorname{mean}((D(G(z)) - 1)^2)$, each
mean over its own batch.""",
    "dc_classifier": """\
### DCGAN discriminator
`build_dc_classifier(batch_size)`: images (flat or `(N, 1, 28, 28)`) to `(N, 1)` logits,
for any batch size (`nn.Unflatten(1, (1, 28, 28))` does not depend on it): reshape to
`(N, 1, 28, 28)`; convolution 32 filters 5x5, stride 1, no padding; LeakyReLU 0.01;
max-pooling 2x2, stride 2; convolution 64 filters 5x5, stride 1; LeakyReLU 0.01;
max-pooling 2x2, stride 2; flatten; fully connected 4*4*64 -> 1024; LeakyReLU 0.01; fully
connected 1024 -> 1.""",
    "dc_generator": """\
### DCGAN generator
`build_dc_generator(noise_dim)`: noise `(N, noise_dim)` to images `(N, 784)`: fully
connected noise_dim -> 1024; ReLU; batch norm; fully connected 1024 -> 7*7*128; ReLU;
batch norm; reshape to `(N, 128, 7, 7)`; transposed convolution to 64 channels, kernel 4,
stride 2, padding 1; ReLU; batch norm; transposed convolution to 1 channel, kernel 4,
stride 2, padding 1; `tanh`; flatten. (Its 6,580,801 parameters do not include batch
norm's running statistics.)""",
}


def _train_cell(tag: str, build: str, d_loss: str, g_loss: str, epochs: str) -> str:
    return f"""\
D, G = {build}
zeros = torch.zeros(1, 1)
if implemented(D=D, G=G, sample_noise=sample_noise(1, 1),
               d_loss={d_loss}(zeros, zeros), g_loss={g_loss}(zeros),
               get_optimizer=get_optimizer(D)):
    {tag}_history = run_a_gan(D, G, get_optimizer(D), get_optimizer(G),
                              {d_loss}, {g_loss}, loader_train,
                              num_epochs={epochs})"""


def build_cells() -> list[tuple[str, str, str]]:
    """The notebook as (cell id, cell type, source) triples, in order."""
    expected = _expected_values()
    h = hw4_torch
    loss_inputs = (f"logits_real = torch.tensor({LOGITS_REAL})\n"
                   f"logits_fake = torch.tensor({LOGITS_FAKE})\n")
    return [
        ("intro", "markdown", INTRO),
        ("setup", "code", SETUP),
        ("helpers", "code", _source(h.show_images, h.count_params) + "\n\n\n" + CHECK_HELPERS),
        ("problem", "markdown", MD["problem"]),
        ("data", "code", DATA),
        ("sample-noise-md", "markdown", MD["sample_noise"]),
        ("sample-noise", "code", _source(h.sample_noise)),
        ("sample-noise-check", "code",
         "# check\nz1, z2 = sample_noise(1000, 7), sample_noise(1000, 7)\n"
         "if implemented(sample_noise=z1):\n"
         "    print('shape', tuple(z1.shape), 'expected (1000, 7); dtype', z1.dtype)\n"
         "    print('range', (float(z1.min()), float(z1.max())), 'expected inside [-1, 1], "
         "near both ends')\n"
         "    print('new values on each call:', not torch.equal(z1, z2))"),
        ("discriminator-md", "markdown", MD["discriminator"]),
        ("discriminator", "code", _source(h.discriminator)),
        ("discriminator-check", "code",
         "# check\ncheck_model('discriminator', discriminator(), (1, 28, 28), 1, 267009)"),
        ("generator-md", "markdown", MD["generator"]),
        ("generator", "code", _source(h.generator)),
        ("generator-check", "code",
         "# check\ncheck_model('generator', generator(4), (4,), 784, 1858320)"),
        ("bce-loss-md", "markdown", MD["bce_loss"]),
        ("bce-loss", "code", _source(h.bce_loss)),
        ("gan-loss", "code", _source(h.discriminator_loss, h.generator_loss)),
        ("gan-loss-check", "code",
         "# check: 4 real and 3 fake logits\n" + loss_inputs
         + "d_loss, g_loss = discriminator_loss(logits_real, logits_fake), "
           "generator_loss(logits_fake)\n"
           "if implemented(discriminator_loss=d_loss, generator_loss=g_loss):\n"
           f"    check_close('GAN losses (D, G)', (d_loss, g_loss), {expected['gan']})"),
        ("get-optimizer-md", "markdown", MD["get_optimizer"]),
        ("get-optimizer", "code", _source(h.get_optimizer)),
        ("get-optimizer-check", "code",
         "# check: expect Adam, lr 0.001, betas (0.5, 0.999)\n"
         "optimizer = get_optimizer(nn.Linear(2, 2))\n"
         "if implemented(get_optimizer=optimizer):\n"
         "    group = optimizer.param_groups[0]\n"
         "    print(type(optimizer).__name__, 'lr', group.get('lr'), 'betas', "
         "group.get('betas'))"),
        ("run-a-gan-md", "markdown", MD["run_a_gan"]),
        ("run-a-gan", "code", _source(h.run_a_gan)),
        ("train-gan", "code", _train_cell("gan", "discriminator(), generator()",
                                          "discriminator_loss", "generator_loss",
                                          "NUM_EPOCHS")),
        ("lsgan-loss-md", "markdown", MD["lsgan_loss"]),
        ("lsgan-loss", "code", _source(h.ls_discriminator_loss, h.ls_generator_loss)),
        ("lsgan-loss-check", "code",
         "# check\nd_loss = ls_discriminator_loss(logits_real, logits_fake)\n"
         "g_loss = ls_generator_loss(logits_fake)\n"
         "if implemented(ls_discriminator_loss=d_loss, ls_generator_loss=g_loss):\n"
         f"    check_close('LSGAN losses (D, G)', (d_loss, g_loss), {expected['lsgan']})"),
        ("train-lsgan", "code", _train_cell("lsgan", "discriminator(), generator()",
                                            "ls_discriminator_loss", "ls_generator_loss",
                                            "NUM_EPOCHS")),
        ("dc-classifier-md", "markdown", MD["dc_classifier"]),
        ("dc-classifier", "code", _source(h.build_dc_classifier)),
        ("dc-classifier-check", "code",
         "# check\ncheck_model('build_dc_classifier', build_dc_classifier(batch_size), "
         "(1, 28, 28), 1, 1102721)"),
        ("dc-generator-md", "markdown", MD["dc_generator"]),
        ("dc-generator", "code", _source(h.build_dc_generator)),
        ("dc-generator-check", "code",
         "# check\ncheck_model('build_dc_generator', build_dc_generator(4), (4,), 784, "
         "6580801)"),
        ("train-dcgan", "code", _train_cell(
            "dcgan", "build_dc_classifier(batch_size), build_dc_generator()",
            "discriminator_loss", "generator_loss", "max(1, NUM_EPOCHS // 2)")),
    ]


def build_notebook() -> nbformat.NotebookNode:
    """The PyTorch solution notebook, unexecuted, with stable cell ids."""
    return assemble(build_cells(), {"role": "solution", "framework": "torch"})


def build_template() -> nbformat.NotebookNode:
    """The student template: the solution notebook with its solution regions stubbed."""
    from grader.release.template import make_template

    return make_template(build_notebook())  # the solution's metadata kept


def main() -> None:
    """Rewrite the PyTorch solution notebook and the PyTorch student template."""
    from grader.release.template import write_notebook

    write_notebook(build_notebook(), SOLUTION_PATH)
    write_notebook(build_template(), TEMPLATE_PATH)
    print(f"wrote {SOLUTION_PATH} and {TEMPLATE_PATH}")


if __name__ == "__main__":
    main()
