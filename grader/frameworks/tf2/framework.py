"""The ``tf2`` framework: today's template (TensorFlow 2, Keras 3, eager execution).

Its notebooks are graded as they are: the kernel gets the TF2 set-up (seeds, the training
budget on Keras optimizers and TensorFlow functions, Keras' MNIST served offline), and its
weights are in the specified (Keras) layout the grader's numpy networks take.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import numpy as np

from grader.frameworks.base import Check, KernelSetup, Layout, Recognition, identity_weights
from grader.items import ItemSpec
from grader.kernel import loader, wire
from grader.pipeline.devices import Device
from grader.result import ItemResult

# Calls that exist only in TF2-style code (eager Keras).
MARKERS = {
    "keras model": r"\b(?:keras|tf\.keras)\.(?:Sequential|Model|Input)\b",
    "keras layers": r"\blayers\.(?:Dense|Conv2D|Conv2DTranspose|BatchNormalization)\s*\(",
    "tf.GradientTape": r"\btf\.GradientTape\b",
    "tf.function": r"@tf\.function\b",
    "keras optimizer": r"\b(?:keras|tf\.keras)\.optimizers\.Adam\b",
    "tf.random.uniform": r"\btf\.random\.uniform\s*\(",
}


def found_markers(patterns: dict[str, str], code: str) -> list[str]:
    """The names of ``patterns`` that occur in ``code``."""
    return [name for name, pattern in patterns.items() if re.search(pattern, code)]


def specified_layout(architecture: str, role: str, noise_dim: int) -> Layout:
    """The specified network's weights, in Keras' order and layout."""
    from grader.convergence.networks import layout

    return layout(architecture, role, noise_dim)


class KerasEdition:
    """What the TensorFlow editions share: every item, the shared checks, the batch's
    (Keras) oracle, and the specified Keras weight layout itself."""

    def excluded_items(self) -> dict[str, str]:
        """None: every item is there (a derivation may still go to a person)."""
        return {}

    def checks(self) -> dict[str, Check]:
        """None replaced."""
        return {}

    def oracle(self, shared):
        """The batch's oracle (the Keras reference, or its public replay)."""
        return shared

    def layout(self, architecture: str, role: str, noise_dim: int) -> Layout:
        """The specified layout itself."""
        return specified_layout(architecture, role, noise_dim)

    def to_specified(self, architecture: str, role: str,
                     weights: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Unchanged: the layouts agree."""
        return identity_weights(weights)

    def from_specified(self, architecture: str, role: str,
                       weights: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Unchanged: the layouts agree."""
        return identity_weights(weights)


@dataclass
class TF2Framework(KerasEdition):
    """A notebook written against the TF2 template."""

    generation: str | None = None
    evidence: list[str] = field(default_factory=list)
    name: str = "tf2"
    summary: str = "today's template (TensorFlow 2, Keras)"
    library: str = "tensorflow"
    kernel_files: tuple[str, ...] = ("tf2/train", "tf2/probe")
    watched: tuple[str, ...] = wire.WATCHED
    reruns_tensors: bool = False
    reference_module: str = "reference.hw4"
    lines_file: str = "convergence_lines.json"
    probe_batch: int | None = None
    written_derivations: str | None = None

    @staticmethod
    def recognise(code: str) -> Recognition:
        """The TF2-only calls in ``code``."""
        return Recognition(found_markers(MARKERS, code))

    def label(self) -> str:
        """``tf2``."""
        return self.name

    def prepare(self, notebook: nbformat.NotebookNode, files: Path,
                modules: Sequence[str] = (), device: str = Device.CPU) -> KernelSetup:
        """The TF2 set-up module; nothing else is added (TensorFlow finds the grade's
        ``device`` through ``CUDA_VISIBLE_DEVICES``)."""
        return KernelSetup(setup_code=(loader.setup_code("tf2/setup", {}),))

    def finish(self, result: ItemResult, spec: ItemSpec) -> ItemResult:
        """The result as it is."""
        return result
