"""The ``torch`` framework's grader side: the PyTorch edition of the homework (2017-2024).

What changes for such a submission, all decided here:

* it is recognised by PyTorch imports and calls (``import torch``, ``nn.Sequential``,
  ``torch.optim``, ``torchvision`` ...), and its generation by its idioms: ``2017``
  (``Variable``, ``.data[0]``), ``2018``, ``2019`` (the ``START OF YOUR CODE`` markers),
  ``module`` (the student's code in a package module such as ``cs231n/gan_pytorch.py``)
  and ``umich`` (``gan.py``, ``sample_noise(batch_size, noise_dim, dtype, device)``);
* its kernel gets the ``torch/setup`` module (seeds, the training budget on every optimizer
  step, MNIST through torchvision served offline, hard-coded CUDA run on the CPU where
  there is no GPU, old-API shims) and its probe resolves the graded names to the PyTorch
  functions (``gan_loss`` is ``discriminator_loss`` with ``generator_loss`` ...);
* every network is probed at batch 128 (the DC networks are often tied to it);
* ``leaky_relu`` is not part of this edition; the derivations, answered in writing, are
  left to the instructor when no answer function is defined;
* ``get_solvers`` is graded by :mod:`grader.frameworks.torch.checks` (``get_optimizer``);
* its items are scored against the PyTorch reference
  (:class:`grader.frameworks.torch.oracle.TorchReferenceOracle`), whose weights are listed in
  the PyTorch order (:func:`grader.frameworks.torch.oracle.listing`); in a student's install,
  against the replay of the PyTorch public checks.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import numpy as np

from grader import items
from grader.convergence.networks import BN_EPSILON, MOVING_VARIANCE, NOISE_DIM
from grader.exceptions import FrameworkNotInstalled
from grader.frameworks.base import (
    Check,
    KernelSetup,
    Layout,
    Recognition,
    theory_left_to_instructor,
)
from grader.frameworks.detect import notebook_code
from grader.frameworks.tf1.framework import answers
from grader.frameworks.tf2.framework import found_markers, specified_layout
from grader.frameworks.torch.library import cuda_build, install_hint, torch_problem
from grader.frameworks.torch.names import loss_names, torch_function
from grader.frameworks.torch.weights import (
    keras_to_torch,
    network_item,
    torch_layout,
    torch_values_to_keras,
)
from grader.items import ItemSpec
from grader.kernel import loader, wire
from grader.pipeline.devices import Device
from grader.result import ItemResult

LIBRARY = "torch"
TORCH_BN_EPSILON = 1e-5  # nn.BatchNorm's default; Keras' is networks.BN_EPSILON


def shift_variances(architecture: str, role: str, weights: Sequence[np.ndarray],
                    shift: float) -> list[np.ndarray]:
    """``weights`` (specified layout) with ``shift`` added to every batch norm moving
    variance: ``x / sqrt(v + 1e-5)`` is ``x / sqrt((v + 1e-5 - 1e-3) + 1e-3)``, so PyTorch's
    statistics normalise in the grader's Keras-epsilon networks exactly as in PyTorch."""
    names = [name for _, name in specified_layout(architecture, role, NOISE_DIM)]
    return [np.asarray(value) + np.float32(shift) if name == MOVING_VARIANCE else value
            for value, name in zip(weights, names, strict=True)]


# Imports and calls of PyTorch code.
MARKERS = {
    "import torch": r"(?m)^\s*(?:import\s+torch\b|from\s+torch\b)",
    "torch.nn": r"\btorch\.nn\b|\bnn\.(?:Sequential|Module|Linear|Conv2d|ConvTranspose2d|"
                r"BatchNorm[12]d|LeakyReLU)\b",
    "torch.optim": r"\btorch\.optim\b|\boptim\.Adam\s*\(",
    "torchvision": r"\btorchvision\b",
    "Variable": r"\bfrom\s+torch\.autograd\s+import\s+Variable\b",
    "torch tensors": r"\btorch\.(?:rand|randn|ones_like|zeros_like|manual_seed|FloatTensor|"
                     r"is_tensor|cat|mean|sum)\b",
}


class Generation:
    """The generations of the PyTorch edition, as the recorded label names them."""

    Y2017 = "2017"
    Y2018 = "2018"
    Y2019 = "2019"
    MODULE = "module"
    UMICH = "umich"


GENERATION_MARKERS = (  # first match wins
    (Generation.UMICH, r"\bdef\s+sample_noise\s*\([^)]*\bdevice\b|\bhello_gan\s*\(|"
                       r"^\s*(?:from\s+gan\s+import|import\s+gan\b)"),
    (Generation.MODULE, r"^\s*from\s+[\w.]*gan_pytorch\s+import|"
                        r"\bimport\s+[\w.]*gan_pytorch\b"),
    (Generation.Y2017, r"\bVariable\s*\(|\.data\[0\]|\bfrom\s+torch\.autograd\s+import\s+"
                       r"Variable\b"),
    (Generation.Y2019, r"\*+\s*START OF YOUR CODE"),
)


def generation(code: str) -> str:
    """The generation of a PyTorch notebook's code (``2018`` when nothing else shows)."""
    for name, pattern in GENERATION_MARKERS:
        if re.search(pattern, code, re.MULTILINE):
            return name
    return Generation.Y2018


# Where a notebook asks for CUDA by name (comments removed first: the course's own
# ``#dtype = torch.cuda.FloatTensor`` line is not a request).
CUDA_MARKERS = {
    ".cuda()": r"\.cuda\s*\(",
    "torch.cuda.FloatTensor": r"\btorch\.cuda\.\w*Tensor\b",
    "device='cuda'": r"\bdevice\s*=\s*['\"]cuda",
    "torch.device('cuda')": r"\btorch\.device\s*\(\s*['\"]cuda",
    ".to('cuda')": r"\.to\s*\(\s*['\"]cuda",
}


def without_comments(code: str) -> str:
    """``code`` without ``#`` comments (roughly: a ``#`` inside a string cuts it too)."""
    return "\n".join(line.split("#", 1)[0] for line in code.splitlines())


def cuda_requests(code: str) -> list[str]:
    """The ways ``code`` asks for CUDA by name."""
    return found_markers(CUDA_MARKERS, without_comments(code))


# The notebooks' check files, by year (2017-2020, then 2021 on), for the stand-ins.
CHECK_FILES = ("gan-checks-tf.npz", "gan-checks.npz")


def write_stand_ins(workdir: Path) -> list[str]:
    """A stand-in for the notebook's check file when the submission came without one (its
    check cells then run; they are never evidence for a grade)."""
    if any((Path(workdir) / name).exists() for name in CHECK_FILES):
        return []
    for name in CHECK_FILES:
        np.savez(Path(workdir) / name, **answers())
    return list(CHECK_FILES)


def on_gpu(device: str, cuda_built: bool) -> bool:
    """True when a PyTorch kernel runs on a GPU: the grade has one (``--device gpu``, or
    ``auto`` on a machine with one) and PyTorch is built for CUDA."""
    return device == Device.GPU and cuda_built


def setup_config(modules: Sequence[str], gpu: bool) -> dict:
    """The ``torch/setup`` module's CONFIG: the student's module names, and whether the
    kernel keeps PyTorch's real CUDA (``gpu``) or runs the notebook's CUDA calls on the CPU."""
    return {"modules": list(modules), "gpu": bool(gpu)}


def cuda_warning(requests: Sequence[str], gpu: bool) -> str:
    """The result's warning for a notebook that asks for CUDA by name (``requests``)."""
    asked = ", ".join(requests)
    if gpu:
        return (f"graded on the GPU: the notebook asks for CUDA ({asked}), and its CUDA calls "
                "ran on the grader's GPU")
    return (f"graded on the CPU: the notebook asks for CUDA ({asked}), and this grade has no "
            "GPU (--device gpu gives it one where the machine has one), so its CUDA calls ran "
            "on the CPU")


def statistics_count(item_id: str) -> int:
    """The batch norm statistics (running means and variances) of the specified network
    ``item_id``: what the listing counts beyond ``model.parameters()``."""
    from grader.convergence.networks import MOVING_MEAN, architecture_of

    for model in items.models():
        for role, part in items.convergence_item(model).parts.items():
            if part == item_id:
                return sum(int(np.prod(shape)) for shape, name
                           in specified_layout(architecture_of(model), role, NOISE_DIM)
                           if name in (MOVING_MEAN, MOVING_VARIANCE))
    return 0


COUNT_SENTENCE = re.compile(r"the model has [\d,]+ parameters(?P<at>[^;]*); the architecture "
                            r"described has [\d,]+")


def course_counts(result: ItemResult, spec: ItemSpec) -> str:
    """The message with its parameter counts as the course counts them, parameters only
    (``sum(p.numel() for p in model.parameters())``), not the statistics the grader's
    comparison also counts."""
    details = result.details
    if "trainable_parameters" not in details or "expected_parameters" not in details:
        return result.message
    expected = details["expected_parameters"] - statistics_count(spec.id)
    return COUNT_SENTENCE.sub(
        lambda found: f"the model has {details['trainable_parameters']:,} parameters"
                      f"{found['at']} (model.parameters()); the architecture described has "
                      f"{expected:,}", result.message)


def speak(result: ItemResult, spec: ItemSpec) -> ItemResult:
    """The item's message in the PyTorch edition's names."""
    text = course_counts(result, spec) if spec.check == items.NETWORK else result.message
    if spec.check == items.LOSS:
        d_name, g_name = loss_names(spec)
        text = re.sub(r"\bD_loss\b", d_name, text)
        text = re.sub(r"\bG_loss\b", g_name, text)
        text = text.replace("must return a pair (D_loss, G_loss)", "must each return a loss")
    if spec.function and spec.check in (items.LOSS, items.NETWORK, items.SOLVERS):
        text = re.sub(rf"\b{re.escape(spec.function)}\b", torch_function(spec), text)
    text = text.replace("must return a Keras model", "must return an nn.Module")
    text = text.replace("is not defined in the notebook", "is not defined in the notebook "
                        "nor in its module")
    if text != result.message:
        result.message = text
    return result


@dataclass
class TorchFramework:
    """A PyTorch notebook (or driver notebook with its module) of any generation."""

    generation: str | None = Generation.Y2018
    evidence: list[str] = field(default_factory=list)
    name: str = "torch"
    summary: str = "the PyTorch edition (2017-2024 notebooks, cs231n-style modules, UMich A6)"
    library: str = LIBRARY
    kernel_files: tuple[str, ...] = ("torch/layout", "torch/train", "torch/probe")
    # a PyTorch kernel never imports Keras: only numpy's watched functions
    watched: tuple[str, ...] = tuple(name for name in wire.WATCHED
                                     if name.startswith("numpy."))
    reruns_tensors: bool = False
    reference_module: str = "reference.hw4_torch"
    lines_file: str = "convergence_lines_torch.json"  # calibrated on PyTorch reference runs
    probe_batch: int | None = 128
    written_derivations: str | None = "PyTorch notebook"

    @staticmethod
    def recognise(code: str) -> Recognition:
        """The PyTorch markers in ``code``, with the generation."""
        return Recognition(found_markers(MARKERS, code), generation(code))

    def label(self) -> str:
        """``torch-2018``, ``torch-module`` ..."""
        return f"{self.name}-{self.generation or Generation.Y2018}"

    def prepare(self, notebook: nbformat.NotebookNode, files: Path,
                modules: Sequence[str] = (), device: str = Device.CPU) -> KernelSetup:
        """The PyTorch set-up module (with the student's modules and whether the kernel
        keeps real CUDA), stand-in check files, and a warning when the notebook hard-codes
        CUDA. Raises ``FrameworkNotInstalled`` when this install cannot import PyTorch."""
        problem = torch_problem()
        if problem is not None:
            raise FrameworkNotInstalled("PyTorch submission: "
                                        + install_hint(problem, " and grade it again"))
        if modules and self.generation != Generation.UMICH:
            self.generation = Generation.MODULE
        gpu = on_gpu(device, cuda_build())
        warnings = []
        if device == Device.GPU and not gpu:
            warnings.append("graded on the CPU although the grade has a GPU: this install's "
                            "PyTorch is a CPU-only build")
        requests = cuda_requests(notebook_code(notebook))
        if requests:
            warnings.append(cuda_warning(requests, gpu))
        written = write_stand_ins(files)
        if written:
            warnings.append("the submission came without " + " or ".join(written)
                            + "; the grader supplied a stand-in so its check cells run")
        return KernelSetup(setup_code=(loader.setup_code("torch/setup",
                                                         setup_config(modules, gpu)),),
                           warnings=warnings, device=Device.GPU if gpu else Device.CPU)

    def excluded_items(self) -> dict[str, str]:
        """The activation item: the PyTorch edition has no ``leaky_relu`` to write."""
        return {item_id: "not part of the PyTorch edition (it has no leaky_relu to write)"
                for item_id in items.ids_with(items.ACTIVATION)}

    def checks(self) -> dict[str, Check]:
        """``get_solvers`` as ``get_optimizer(model)``."""
        from grader.frameworks.torch.checks import check_optimizer

        return {items.SOLVERS: check_optimizer}

    def oracle(self, shared):
        """The PyTorch reference in float64; in a student's install, the replay of the PyTorch
        public checks; None without either. ``shared`` itself when it records the PyTorch
        reference's answers (``hw4grade release`` recording the public checks)."""
        from grader.frameworks.torch.oracle import shared_oracle
        from grader.oracles.public import RecordingOracle

        if isinstance(shared, RecordingOracle) and \
                shared.reference_module == self.reference_module:
            return shared
        return shared_oracle()

    def layout(self, architecture: str, role: str, noise_dim: int) -> Layout:
        """The specified network's weights as a PyTorch network lists them."""
        return torch_layout(network_item(architecture, role),
                            specified_layout(architecture, role, noise_dim))

    def to_specified(self, architecture: str, role: str,
                     weights: Sequence[np.ndarray]) -> list[np.ndarray]:
        """PyTorch's weights (transposed, channel-first) in the Keras layout, batch norm's
        running variance shifted so that Keras' epsilon gives PyTorch's normalisation."""
        converted = torch_values_to_keras(network_item(architecture, role), weights)
        return shift_variances(architecture, role, converted, TORCH_BN_EPSILON - BN_EPSILON)

    def from_specified(self, architecture: str, role: str,
                       weights: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Keras-layout weights as the PyTorch network holds them (the inverse)."""
        shifted = shift_variances(architecture, role, weights, BN_EPSILON - TORCH_BN_EPSILON)
        return keras_to_torch(network_item(architecture, role), shifted)

    def finish(self, result: ItemResult, spec: ItemSpec) -> ItemResult:
        """In the PyTorch names; a derivation without its answer function goes to a person."""
        if spec.check == items.THEORY:
            result = theory_left_to_instructor(result, spec.function or spec.id,
                                               self.written_derivations)
        return speak(result, spec)
