"""What a framework decides, as one written interface.

A *framework* is one edition of the homework's code: TensorFlow 2 (today's template),
TensorFlow 1 (the original graph-mode notebooks), PyTorch. Each is one folder of this
package, ``grader/frameworks/<name>/``, holding:

* ``framework.py``: the grader's side, one class implementing :class:`Framework`;
* ``kernel/``: the files that run inside the submission's kernel, sent as text by
  ``grader.kernel.loader`` (named ``"<name>/<file>"``, e.g. ``"tf1/setup"``):
  ``setup`` (installed before any notebook code: MNIST offline, the training budget, shims),
  ``probe`` (registers the framework's probe actions with the shared probe, after the
  notebook ran) and ``train`` (the ``TrainingSession`` of the grader's training loop);
* whatever else only it needs (TF1's notebook parts, PyTorch's weight layout).

The pipeline, the reports and the rubric never test a framework's name: they ask the
chosen framework (``grader.frameworks.choose_framework``, the one place a framework is
picked) through this interface. Adding a framework is a new folder and one line in
``grader/frameworks/__init__.py``; see the README's recipe.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import nbformat
import numpy as np

from grader import items
from grader.items import ItemSpec
from grader.pipeline.devices import Device
from grader.result import ItemResult, ItemStatus

# One network weight as the specified (Keras) layout lists it: its shape and its name.
Layout = list[tuple[tuple[int, ...], str]]
# A check of the catalogue, as a framework may replace it: ``check(item, spec, prober, rng,
# oracle) -> ItemResult`` with the arguments of ``grader.pipeline.checks.Check``.
Check = Callable[..., ItemResult]


@dataclass
class KernelSetup:
    """What a framework adds to a notebook's kernel and to its result before execution."""

    env: dict[str, str] = field(default_factory=dict)  # environment variables for the kernel
    setup_code: tuple[str, ...] = ()  # silent cells run after the prelude
    after_cell: str | None = None  # silent code run after every cell ({index}: the cell's)
    warnings: list[str] = field(default_factory=list)  # for every result of this notebook
    ungraded_cells: dict[int, str] = field(default_factory=dict)  # index -> why not graded
    # the device the kernel runs on when it is not the grade's (a CPU-only library on a GPU
    # grade): its convergence is judged by that device's budgets and lines
    device: str | None = None


@dataclass
class Recognition:
    """What a notebook's code says of one framework: the markers found, and the generation
    (``2017``, ``module`` ...) when the framework has several."""

    evidence: list[str] = field(default_factory=list)
    generation: str | None = None

    @property
    def strength(self) -> int:
        """How many distinct markers were found."""
        return len(self.evidence)


class Framework(Protocol):
    """How the notebooks of one framework are recognised, run, probed, trained and worded.

    A class per framework; ``grader.frameworks.choose_framework`` makes one instance per
    notebook, with the generation it recognised (``Framework(generation, evidence)``).
    """

    name: str  # the --profile choice and the start of the recorded label ("tf1-2017")
    summary: str  # what it grades, for --profile's help
    library: str  # the library it runs on: notebooks mixing two libraries are refused
    generation: str | None
    evidence: list[str]
    kernel_files: tuple[str, ...]  # its kernel files installed after the notebook, in order
    watched: tuple[str, ...]  # the library functions whose replacement is reported (wire)
    reruns_tensors: bool  # graph mode: fresh noise means running one tensor twice
    reference_module: str  # the reference solution a kernel gets for attribution
    lines_file: str  # the calibrated convergence lines (grader/data/), see convergence.lines
    probe_batch: int | None  # the batch every network is probed at (None: drawn per run)
    # The edition's name ("PyTorch notebook") when its notebooks may answer the derivations
    # in writing, not in code: a derivation without its answer function goes to a person.
    written_derivations: str | None

    @staticmethod
    def recognise(code: str) -> Recognition:
        """The markers of this framework in a notebook's code (its code cells joined)."""

    def label(self) -> str:
        """The name recorded in the result and the gradebook (``tf2``, ``torch-module``)."""

    def prepare(self, notebook: nbformat.NotebookNode, files: Path,
                modules: Sequence[str] = (), device: str = Device.CPU) -> KernelSetup:
        """The kernel's additions for ``notebook``; may add files to its folder ``files``.
        ``modules`` are the dotted names of the student's own modules (folder submissions);
        ``device`` is the grade's (``Device``: its kernel sees a GPU only on ``gpu``)."""

    def excluded_items(self) -> dict[str, str]:
        """Items this edition does not have, with the sentence their result gives: they are
        worth 0 of 0 for its submissions."""

    def checks(self) -> dict[str, Check]:
        """The catalogue checks this framework replaces (check name -> check); empty when the
        shared checks of ``grader.pipeline.checks`` serve it."""

    def oracle(self, shared: Any) -> Any:
        """The oracle (``grader.oracles.interface.Oracle``) its items are scored against;
        ``shared`` is the batch's, the Keras reference or its public replay."""

    def layout(self, architecture: str, role: str, noise_dim: int) -> Layout:
        """The specified network's weights in this framework's order and layout."""

    def to_specified(self, architecture: str, role: str,
                     weights: Sequence[np.ndarray]) -> list[np.ndarray]:
        """A network's weights in this framework's ``layout`` turned into the specified Keras
        layout the grader's numpy networks take."""

    def from_specified(self, architecture: str, role: str,
                       weights: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Weights of the specified Keras layout in this framework's ``layout``."""

    def finish(self, result: ItemResult, spec: ItemSpec) -> ItemResult:
        """The item's result as this framework reports it (wording, items left to a person)."""


def theory_left_to_instructor(item: ItemResult, function: str, edition: str) -> ItemResult:
    """A derivation item of a notebook (an edition that answers the derivations in writing)
    without its answer function: left to the instructor, worth 0 until graded by hand."""
    if item.status in (ItemStatus.FAILED, ItemStatus.ERROR) \
            and f"{function} is not defined" in item.message:
        return ItemResult(item.id, 0.0, item.max_points, ItemStatus.MANUAL,
                          f"pending: this {edition} defines no {function}(); grade the "
                          "written derivation by hand")
    return item


def derivations_left_to_instructor(framework: Framework) -> dict[str, str]:
    """The derivation items of a ``framework`` submission that was refused before it ran,
    with their sentence: pending, as when its notebook defines no answer function, where the
    edition answers the derivations in writing; none where it answers them in code."""
    if not framework.written_derivations:
        return {}
    return {item_id: f"pending: a {framework.written_derivations} answers this derivation in "
                     "writing; grade it by hand" for item_id in items.ids_with(items.THEORY)}


def identity_weights(weights: Sequence[np.ndarray]) -> list[np.ndarray]:
    """``weights`` as a list: for frameworks whose layout is the specified one."""
    return list(weights)
