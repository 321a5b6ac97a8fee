"""The PyTorch edition: recognition, and quick grades of PyTorch notebooks in real sandboxed
kernels (hard-coded CUDA, batch-tied DC networks, old-API cells, real bugs, a notebook
mixing TensorFlow and PyTorch)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from grader import items
from grader.frameworks import choose_framework
from grader.frameworks.torch.framework import cuda_requests, generation
from tests.fixtures import tf1_notebooks
from tests.fixtures.submissions import INVALID, SOLUTION_PATH, VARIANTS, load_solution, render

pytest.importorskip("torch")

UNITS = ("sample_noise", "discriminator", "generator", "gan_loss", "get_solvers", "lsgan_loss",
         "dc_discriminator", "dc_generator")
THEORY = ("optimal_d_gan", "optimal_d_lsgan", "vae_kl")

IMPORTS = """\
import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
import torchvision.transforms as T
import torchvision.datasets as dset
from torch.utils.data import DataLoader
dtype = torch.FloatTensor
batch_size = 128
NOISE_DIM = 96
"""
DATA = """\
mnist_train = dset.MNIST('./datasets/MNIST_data', train=True, download=True,
                         transform=T.ToTensor())
loader_train = DataLoader(mnist_train, batch_size=batch_size)
images = next(iter(loader_train))[0].view(batch_size, 784)
assert images.shape == (128, 784) and 0 <= float(images.min()) <= float(images.max()) <= 1
"""
HELPERS = """\
class Flatten(nn.Module):
    def forward(self, x):
        return x.view(x.shape[0], -1)


class Unflatten(nn.Module):
    def __init__(self, N=-1, C=128, H=7, W=7):
        super().__init__()
        self.N, self.C, self.H, self.W = N, C, H, W

    def forward(self, x):
        return x.view(self.N, self.C, self.H, self.W)


def bce_loss(input, target):
    neg_abs = -input.abs()
    return (input.clamp(min=0) - input * target + (1 + neg_abs.exp()).log()).mean()
"""
FUNCTIONS = """\
def sample_noise(batch_size, dim):
    return 2 * torch.rand(batch_size, dim) - 1


def discriminator():
    return nn.Sequential(Flatten(), nn.Linear(784, 256), nn.LeakyReLU(0.01),
                         nn.Linear(256, 256), nn.LeakyReLU(0.01), nn.Linear(256, 1))


def generator(noise_dim=NOISE_DIM):
    return nn.Sequential(nn.Linear(noise_dim, 1024), nn.ReLU(), nn.Linear(1024, 1024),
                         nn.ReLU(), nn.Linear(1024, 784), nn.Tanh())


def discriminator_loss(logits_real, logits_fake):
    return (bce_loss(logits_real, torch.ones_like(logits_real))
            + bce_loss(logits_fake, torch.zeros_like(logits_fake)))


def generator_loss(logits_fake):
    return bce_loss(logits_fake, torch.ones_like(logits_fake))


def get_optimizer(model):
    return optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.999))


def ls_discriminator_loss(scores_real, scores_fake):
    return 0.5 * ((scores_real - 1) ** 2).mean() + 0.5 * (scores_fake ** 2).mean()


def ls_generator_loss(scores_fake):
    return 0.5 * ((scores_fake - 1) ** 2).mean()


def build_dc_classifier():
    return nn.Sequential(
        Unflatten(-1, 1, 28, 28), nn.Conv2d(1, 32, 5), nn.LeakyReLU(0.01), nn.MaxPool2d(2, 2),
        nn.Conv2d(32, 64, 5), nn.LeakyReLU(0.01), nn.MaxPool2d(2, 2), Flatten(),
        nn.Linear(4 * 4 * 64, 4 * 4 * 64), nn.LeakyReLU(0.01), nn.Linear(4 * 4 * 64, 1))


def build_dc_generator(noise_dim=NOISE_DIM):
    return nn.Sequential(
        nn.Linear(noise_dim, 1024), nn.ReLU(), nn.BatchNorm1d(1024),
        nn.Linear(1024, 7 * 7 * 128), nn.ReLU(), nn.BatchNorm1d(7 * 7 * 128),
        Unflatten(-1, 128, 7, 7), nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1),
        nn.ReLU(), nn.BatchNorm2d(64), nn.ConvTranspose2d(64, 1, 4, stride=2, padding=1),
        nn.Tanh(), Flatten())
"""
TRAIN = """\
D, G = discriminator().type(dtype), generator(NOISE_DIM).type(dtype)
D_solver, G_solver = get_optimizer(D), get_optimizer(G)
for step, (x, _) in enumerate(loader_train):
    if step == 3:
        break
    D_solver.zero_grad()
    fake = G(sample_noise(batch_size, NOISE_DIM).type(dtype)).detach()
    d_loss = discriminator_loss(D(2 * (x.type(dtype) - 0.5)), D(fake.view(batch_size, 1, 28, 28)))
    d_loss.backward()
    D_solver.step()
    G_solver.zero_grad()
    g_loss = generator_loss(D(G(sample_noise(batch_size, NOISE_DIM).type(dtype))))
    g_loss.backward()
    G_solver.step()
    print(step, d_loss.item(), g_loss.item())
"""
ENDLESS = """\
while True:  # the grader's training budget stops this loop in its own next step
    D_solver.zero_grad()
    loss = generator_loss(D(torch.zeros(4, 784)))
    loss.backward()
    D_solver.step()
"""


def notebook(*sources: str) -> nbformat.NotebookNode:
    """A notebook of these code cells."""
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])


def solution(functions: str = FUNCTIONS, *extra: str,
             imports: str = IMPORTS) -> nbformat.NotebookNode:
    """The PyTorch solution notebook, with ``functions`` in place of the correct ones."""
    return notebook(imports, DATA, HELPERS, functions, TRAIN, *extra)


def changed(old: str, new: str, functions: str = FUNCTIONS) -> str:
    assert old in functions, old
    return functions.replace(old, new)


CUDA_FUNCTIONS = changed(
    "return 2 * torch.rand(batch_size, dim) - 1",
    "return 2 * torch.rand(batch_size, dim, device='cuda') - 1", changed(
        "nn.Linear(256, 256), nn.LeakyReLU(0.01), nn.Linear(256, 1))",
        "nn.Linear(256, 256), nn.LeakyReLU(0.01), nn.Linear(256, 1)).cuda()", changed(
            "return bce_loss(logits_fake, torch.ones_like(logits_fake))",
            "return bce_loss(logits_fake, torch.ones(logits_fake.shape).to('cuda'))", changed(
                "nn.Tanh(), Flatten())",
                "nn.Tanh(), Flatten()).to(torch.device('cuda'))"))))
OLD_API_TRAIN = """\
from torch.autograd import Variable
from torch.nn import init
from google.colab import drive
drive.mount('/content/drive')
x = loader_train.__iter__().next()[0]
D = discriminator()
D.apply(lambda m: init.xavier_uniform(m.weight) if isinstance(m, nn.Linear) else None)
loss = generator_loss(D(Variable(x).type(dtype)))
print('G loss', loss.data[0])
"""

TORCH_SOLUTION = Path(__file__).resolve().parents[2] / "reference" / "HW4_solution_torch.ipynb"
NOTEBOOKS = {
    "reference_solution": nbformat.read(TORCH_SOLUTION, 4),
    "solution": solution(),
    "cuda": solution(CUDA_FUNCTIONS, imports=IMPORTS.replace(
        "dtype = torch.FloatTensor", "dtype = torch.cuda.FloatTensor")),
    "batch_tied": solution(changed("Unflatten(-1, 1, 28, 28), nn.Conv2d",
                                   "Unflatten(batch_size, 1, 28, 28), nn.Conv2d")),
    "relu_slope": solution(changed(
        "nn.Linear(784, 256), nn.LeakyReLU(0.01),\n                         "
        "nn.Linear(256, 256), nn.LeakyReLU(0.01)",
        "nn.Linear(784, 256), nn.ReLU(0.01),\n                         "
        "nn.Linear(256, 256), nn.ReLU(0.01)")),
    "default_betas": solution(changed("betas=(0.5, 0.999)", "betas=(0.9, 0.999)")),
    "old_api": solution(FUNCTIONS, OLD_API_TRAIN),
    "endless": solution(FUNCTIONS, ENDLESS),
    "mixed": solution(FUNCTIONS, "import tensorflow as tf\nfrom tensorflow import keras\n"
                                 "model = keras.Sequential([keras.layers.Dense(1)])\n"
                                 "tape = tf.GradientTape()\n"),
}
# the unit items each notebook loses (all others have full marks)
EXPECTED_LOSSES = {"reference_solution": (), "solution": (), "cuda": (), "batch_tied": (),
                   "relu_slope": ("discriminator",), "default_betas": ("get_solvers",),
                   "old_api": (), "endless": ()}


# -- recognition ---------------------------------------------------------------------------


def test_torch_notebooks_are_recognised_with_their_generation():
    for name, built in NOTEBOOKS.items():
        if name != "mixed":
            framework = choose_framework(built)
            assert framework.name == "torch", (name, framework.evidence)
    assert choose_framework(NOTEBOOKS["solution"]).label() == "torch-2018"
    assert choose_framework(NOTEBOOKS["old_api"]).label() == "torch-2017"
    assert generation("# *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****") == "2019"
    assert generation("from cs231n.gan_pytorch import sample_noise") == "module"
    assert generation("from comp411.gan_pytorch import *") == "module"
    assert generation("def sample_noise(batch_size, noise_dim, dtype=torch.float, "
                      "device='cpu'):") == "umich"


def test_a_notebook_mixing_tensorflow_and_pytorch_is_refused():
    with pytest.raises(ValueError, match="mixes frameworks"):
        choose_framework(NOTEBOOKS["mixed"])
    assert choose_framework(NOTEBOOKS["mixed"], "torch").name == "torch"


def test_tf_notebooks_are_never_taken_for_torch():
    template = Path(SOLUTION_PATH).parents[1] / "student_template" / "HW4_template.ipynb"
    notebooks = {"solution": nbformat.read(SOLUTION_PATH, 4),
                 "template": nbformat.read(template, 4)}
    solution_code = load_solution()
    for variant in VARIANTS:
        built = render(variant, solution_code)
        if variant.kind != INVALID and not isinstance(built, bytes):
            notebooks[variant.name] = built
    for name in sorted(tf1_notebooks.EXPECTED_LOSSES):
        notebooks[f"tf1-{name}"] = tf1_notebooks.build(name)
    wrong = [name for name, built in notebooks.items() if choose_framework(built).name == "torch"]
    assert wrong == []


def test_cuda_requests_ignore_the_courses_commented_line():
    assert cuda_requests("#dtype = torch.cuda.FloatTensor ## UNCOMMENT THIS LINE") == []
    assert cuda_requests("x = x.cuda()\ny = torch.zeros(3, device='cuda')") == [
        ".cuda()", "device='cuda'"]


def test_the_excluded_item_is_the_activation():
    framework = choose_framework(NOTEBOOKS["solution"])
    assert set(framework.excluded_items()) == set(items.ids_with(items.ACTIVATION))


# -- quick grades in real kernels ---------------------------------------------------------


@pytest.fixture(scope="module")
def graded(tmp_path_factory, mnist_dir):
    """Every notebook above graded in one quick batch."""
    from grader.pipeline.grade_many import grade_batch
    from grader.pipeline.grade_one import Options, prepare_mnist
    from grader.pipeline.load import find_notebooks
    from grader.rubric import load_rubric

    root = tmp_path_factory.mktemp("torch")
    (root / "submissions").mkdir()
    for name, built in NOTEBOOKS.items():
        nbformat.write(built, root / "submissions" / f"{name}.ipynb")
    options = Options(rubric=load_rubric(), seed=3, cell_timeout=120, threads=1)
    options.mnist_npz = prepare_mnist(str(mnist_dir), root / "cache")
    results = grade_batch(find_notebooks([root / "submissions"]), root / "out", options,
                          workers=2)
    return {Path(result.submission).stem: result for result in results}


@pytest.mark.parametrize("name", sorted(EXPECTED_LOSSES))
def test_torch_points_are_lost_exactly_where_they_should_be(graded, name):
    result = graded[name]
    assert result.error is None and result.profile.startswith("torch-"), result.error
    for item_id in UNITS:
        item = result.item(item_id)
        if item_id in EXPECTED_LOSSES[name]:
            assert item.points < item.max_points, f"{item_id} should lose points: {item}"
        else:
            assert item.points == item.max_points, f"{item_id} lost points: {item.message}"
    activation = result.item(items.ids_with(items.ACTIVATION)[0])
    assert (activation.points, activation.max_points, activation.status) == (0, 0, "skipped")
    assert "PyTorch" in activation.message
    for item_id in THEORY:
        assert result.item(item_id).status == "manual", result.item(item_id)
    assert result.item("runs_clean").status == "passed", result.cells


def test_hard_coded_cuda_is_graded_on_the_cpu_and_said(graded):
    warnings = " ".join(graded["cuda"].warnings)
    assert "graded on the CPU" in warnings and "torch.cuda.FloatTensor" in warnings
    assert not any("CUDA" in warning for warning in graded["solution"].warnings)


def test_messages_name_the_pytorch_functions(graded):
    betas = graded["default_betas"].item("get_solvers")
    assert betas.points == betas.max_points * 3 / 4
    assert "get_optimizer" in betas.message and "(0.9, 0.999)" in betas.message
    slope = graded["relu_slope"].item("discriminator").message
    assert "slope" in slope and "Keras" not in slope


def test_the_budget_stops_an_endless_loop(graded):
    cells = graded["endless"].cells
    assert cells[-1].status == "budget" and cells[-1].seconds < 60, cells[-1]
    assert cells[-1].error_name == "TrainingBudgetReached"


def test_a_mixed_notebook_gets_the_clear_refusal(graded):
    result = graded["mixed"]
    assert result.error and "mixes frameworks" in result.error
    assert not result.retry


def test_the_statistics_are_what_the_listing_counts_beyond_the_parameters():
    from grader.frameworks.torch.framework import statistics_count
    from grader.frameworks.torch.oracle import TorchReferenceOracle

    oracle = TorchReferenceOracle()
    assert statistics_count("dc_generator") == 2 * (1024 + 7 * 7 * 128 + 64)
    assert statistics_count("generator") == statistics_count("dc_discriminator") == 0
    # the course's own counts (noise dimension 4), parameters only
    assert oracle.parameter_count("dc_generator", {"noise_dim": 4}) \
        - statistics_count("dc_generator") == 6_580_801
    assert oracle.parameter_count("generator", {"noise_dim": 4}) == 1_858_320
