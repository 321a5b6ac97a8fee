"""The ``tf1`` framework's grader side: original TensorFlow 1 notebooks of the homework.

What changes for such a notebook, all decided here:

* it is recognised by TF1-only calls (``tf.placeholder``, ``tf.Session`` ...), and its year
  (2017: the old ``tensorflow.examples`` MNIST reader, ``lsgan_loss(score_real,
  score_fake)``; 2018: ``tf.keras.datasets.mnist``) by its reader and argument names;
* its kernel gets ``TF_USE_LEGACY_KERAS=1`` and its ``kernel/setup`` module
  (TF1 API through ``tensorflow.compat.v1``, the old MNIST reader, the training budget on
  ``Session.run``, and a record of the graded functions after every cell);
* its folder gets a stand-in ``gan-checks-tf.npz`` when the submission came without one,
  so the notebook's own check cells run (they are never evidence for a grade);
* each definition of a graded function belongs to the part of the notebook (MLP GAN,
  LSGAN, DCGAN, WGAN-GP, extra credit) its cell is in, read from the headings
  (``parts.notebook_parts``); ``dc_discriminator``/``dc_generator`` are the DCGAN part's,
  never a WGAN-GP network, and the result says where the headings leave that in doubt;
* its messages name the TF1 functions (``discriminator(x)`` of the DCGAN part rather than
  the template's ``dc_discriminator()``), and the derivation items, which these notebooks
  answer in writing rather than in code, are left to the instructor when no answer
  function is defined.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import numpy as np

from grader.frameworks.base import (
    KernelSetup,
    Recognition,
    theory_left_to_instructor,
)
from grader.frameworks.tf1.parts import notebook_parts
from grader.frameworks.tf2.framework import KerasEdition, found_markers
from grader.items import THEORY, ItemSpec
from grader.kernel import loader, wire
from grader.pipeline.devices import Device
from grader.result import ItemResult

# Calls that exist only in TensorFlow 1 (graph mode).
MARKERS = {
    "tf.placeholder": r"\btf\.placeholder\s*\(",
    "tf.Session": r"\btf\.(?:Session|InteractiveSession)\s*\(",
    "tf.variable_scope": r"\btf\.variable_scope\s*\(",
    "tf.layers": r"\btf\.layers\.\w+\s*\(",
    "tf.train.AdamOptimizer": r"\btf\.train\.AdamOptimizer\b",
    "tf.reset_default_graph": r"\btf\.reset_default_graph\s*\(",
    "tf.get_collection": r"\btf\.get_collection\s*\(",
    "tf.global_variables": r"\btf\.global_variables\s*\(",
    "tf.random_uniform": r"\btf\.random_uniform\s*\(",
    "tensorflow.examples.tutorials": r"\btensorflow\.examples\.tutorials\b",
}
COMPAT_V1 = r"\bimport\s+tensorflow\.compat\.v1\s+as\s+tf\b"
OLD_READER = r"\btensorflow\.examples\.tutorials\b|\bread_data_sets\s*\("
OLD_LSGAN_NAMES = r"\bdef\s+lsgan_loss\s*\(\s*score_real\b"


def tf1_variant(code: str) -> str:
    """The year of a TF1 notebook's version, read from its MNIST reader and argument names."""
    if re.search(OLD_READER, code) or re.search(OLD_LSGAN_NAMES, code):
        return "2017"
    return "2018"


CHECKS_FILE = "gan-checks-tf.npz"
# How the template's names read in a TF1 notebook, for messages.
WORDING = (
    (r"\bdc_discriminator\(\)", "discriminator(x) of the DCGAN part"),
    (r"\bdc_generator\(\)", "generator(z) of the DCGAN part"),
    (r"\bdc_discriminator\b", "discriminator (DCGAN part)"),
    (r"\bdc_generator\b", "generator (DCGAN part)"),
    (r"\bdiscriminator\(\)", "discriminator(x)"),
    (r"\bgenerator\(\)", "generator(z)"),
    (r"must return a Keras model", "must return the output tensor"),
    (r"\bAdam optimizers\b", "tf.train.AdamOptimizer objects"),
    (r"two calls with the same arguments returned the same values: draw new noise on every "
     r"call", "running the returned tensor twice gave the same values: return a random op "
              "(tf.random_uniform), not a constant made from numpy"),
)


def kernel_setup(notebook: nbformat.NotebookNode) -> tuple[dict[str, str], tuple[str, ...],
                                                            str]:
    """Environment additions, setup code and the after-cell code for a TF1 kernel."""
    tf1_config = {"cell_parts": notebook_parts(notebook).cells}
    setup = loader.setup_code("tf1/setup", tf1_config)
    after_cell = loader.call_code("tf1/setup", "record", "INDEX").replace("'INDEX'", "{index}")
    return {"TF_USE_LEGACY_KERAS": "1"}, (setup,), after_cell


def ungraded_cells(notebook: nbformat.NotebookNode) -> dict[int, str]:
    """The cells of the parts after the homework (WGAN-GP, extra credit), by index, with
    the part's name: their errors do not cost ``runs_clean``."""
    names = {"wgan-gp": "WGAN-GP", "extra": "extra-credit"}
    return {index: names[part] for index, part in enumerate(notebook_parts(notebook).cells)
            if part in names}


def part_notes(notebook: nbformat.NotebookNode) -> list[str]:
    """Warnings for the result where the notebook's headings leave its parts in doubt."""
    return [f"TF1 notebook parts: {note}" for note in notebook_parts(notebook).notes]


def answers(seed: int = 2019) -> dict[str, np.ndarray]:
    """The arrays of ``gan-checks-tf.npz``: inputs and the expected values, from the closed
    forms in float64 (numpy only, so a student's install can write them too)."""
    rng = np.random.default_rng(seed)
    lrelu_x = rng.normal(size=(4, 4)).astype(np.float32)
    logits_real = (rng.normal(size=(16, 1)) * 3).astype(np.float32)
    logits_fake = (rng.normal(size=(16, 1)) * 3).astype(np.float32)
    real, fake = logits_real.astype(np.float64), logits_fake.astype(np.float64)
    bce_one = np.logaddexp(0.0, -real)   # -log sigmoid(real)
    bce_zero = np.logaddexp(0.0, fake)   # -log (1 - sigmoid(fake))
    return {
        "lrelu_x": lrelu_x,
        "lrelu_y": np.where(lrelu_x > 0, lrelu_x, 0.01 * lrelu_x).astype(np.float32),
        "logits_real": logits_real, "logits_fake": logits_fake,
        "d_loss_true": np.float64(bce_one.mean() + bce_zero.mean()),
        "g_loss_true": np.float64(np.logaddexp(0.0, -fake).mean()),
        "d_loss_lsgan_true": np.float64(0.5 * np.mean((real - 1) ** 2)
                                        + 0.5 * np.mean(fake ** 2)),
        "g_loss_lsgan_true": np.float64(0.5 * np.mean((fake - 1) ** 2)),
    }


def write_stand_ins(workdir: Path) -> list[str]:
    """Put the files a TF1 notebook expects into its working folder, unless it has them."""
    written = []
    target = Path(workdir) / CHECKS_FILE
    if not target.exists():
        np.savez(target, **answers())
        written.append(CHECKS_FILE)
    return written


def speak(item: ItemResult) -> ItemResult:
    """The item's message in the TF1 notebook's names."""
    for pattern, replacement in WORDING:
        item.message = re.sub(pattern, replacement, item.message)
    return item


@dataclass
class TF1Framework(KerasEdition):
    """An original TF1 notebook (2017 or 2018 version): graph mode through
    ``tensorflow.compat.v1``, graded on the parts its headings mark."""

    generation: str | None = "2018"
    evidence: list[str] = field(default_factory=list)
    name: str = "tf1"
    summary: str = "an original TensorFlow 1 notebook (graph mode)"
    library: str = "tensorflow"
    kernel_files: tuple[str, ...] = ("tf1/train", "tf1/probe")
    # TF1 notebooks do not use Keras' counts (importing Keras 3 there is no use)
    watched: tuple[str, ...] = tuple(name for name in wire.WATCHED
                                     if not name.startswith("keras."))
    reruns_tensors: bool = True
    reference_module: str = "reference.hw4_tf1"
    lines_file: str = "convergence_lines.json"
    probe_batch: int | None = None
    written_derivations: str | None = "TF1 notebook"

    @staticmethod
    def recognise(code: str) -> Recognition:
        """The TF1-only calls in ``code`` (and an import of ``tensorflow.compat.v1 as tf``),
        with the notebook's year."""
        evidence = found_markers(MARKERS, code)
        if re.search(COMPAT_V1, code):
            evidence.append("import tensorflow.compat.v1 as tf")
        return Recognition(evidence, tf1_variant(code))

    def label(self) -> str:
        """``tf1-2017`` or ``tf1-2018``."""
        return f"{self.name}-{self.generation or '2018'}"

    def prepare(self, notebook: nbformat.NotebookNode, files: Path,
                modules: Sequence[str] = (), device: str = Device.CPU) -> KernelSetup:
        """Legacy Keras, the TF1 kernel module, stand-in check files, the notebook's parts
        (TensorFlow finds the grade's ``device`` through ``CUDA_VISIBLE_DEVICES``)."""
        env, setup_code, after_cell = kernel_setup(notebook)
        warnings = []
        written = write_stand_ins(files)
        if written:
            warnings.append("the submission came without " + ", ".join(written)
                            + "; the grader supplied a stand-in so its check cells run")
        warnings.extend(part_notes(notebook))
        return KernelSetup(env, setup_code, after_cell, warnings, ungraded_cells(notebook))

    def finish(self, result: ItemResult, spec: ItemSpec) -> ItemResult:
        """In the TF1 names; a derivation without its answer function goes to a person."""
        if spec.check == THEORY:
            result = theory_left_to_instructor(result, spec.function or spec.id,
                                               self.written_derivations)
        return speak(result)
