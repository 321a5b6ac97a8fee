"""Which version of the homework a notebook is: today's TF2 template or an original TF1 one.

The profile decides how the notebook runs (``tf1``: TensorFlow's v1 compatibility layer
with legacy Keras) and how its units are probed (graph mode). It is read from the code
cells only, never from outputs or metadata, and an instructor can override it
(``--profile``). The variant names the year of the TF1 notebook: ``2017`` (the old
``tensorflow.examples`` MNIST reader, ``lsgan_loss(score_real, score_fake)``) or
``2018`` (``tf.keras.datasets.mnist``, ``scores_real, scores_fake``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import nbformat

PROFILES = ("tf2", "tf1")

# Calls that exist only in TensorFlow 1 (graph mode) and calls that exist only in TF2 style.
TF1_MARKERS = {
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
TF2_MARKERS = {
    "keras model": r"\b(?:keras|tf\.keras)\.(?:Sequential|Model|Input)\b",
    "keras layers": r"\blayers\.(?:Dense|Conv2D|Conv2DTranspose|BatchNormalization)\s*\(",
    "tf.GradientTape": r"\btf\.GradientTape\b",
    "tf.function": r"@tf\.function\b",
    "keras optimizer": r"\b(?:keras|tf\.keras)\.optimizers\.Adam\b",
    "tf.random.uniform": r"\btf\.random\.uniform\s*\(",
}
COMPAT_V1 = r"\bimport\s+tensorflow\.compat\.v1\s+as\s+tf\b"
OLD_READER = r"\btensorflow\.examples\.tutorials\b|\bread_data_sets\s*\("
OLD_LSGAN_NAMES = r"\bdef\s+lsgan_loss\s*\(\s*score_real\b"


@dataclass
class Profile:
    """A notebook's profile: ``tf2`` or ``tf1`` (with the TF1 year), and why."""

    name: str
    variant: str | None = None
    evidence: list[str] = field(default_factory=list)
    chosen_by: str = "detected"

    def label(self) -> str:
        """``tf2``, ``tf1-2017`` or ``tf1-2018``."""
        return f"{self.name}-{self.variant}" if self.variant else self.name


def _code(notebook: nbformat.NotebookNode) -> str:
    return "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")


def _found(patterns: dict[str, str], code: str) -> list[str]:
    return [name for name, pattern in patterns.items() if re.search(pattern, code)]


def tf1_variant(code: str) -> str:
    """The year of a TF1 notebook's version, read from its MNIST reader and argument names."""
    if re.search(OLD_READER, code) or re.search(OLD_LSGAN_NAMES, code):
        return "2017"
    return "2018"


def detect_profile(notebook: nbformat.NotebookNode, requested: str = "auto") -> Profile:
    """The notebook's profile: ``requested`` when it is not ``auto``, else read from its code.

    A notebook counts as TF1 when it uses at least two TF1-only calls (or imports
    ``tensorflow.compat.v1 as tf``) and more of them than TF2-only ones.
    """
    code = _code(notebook)
    if requested not in ("auto", *PROFILES):
        raise ValueError(f"unknown profile {requested!r}: choose auto, tf2 or tf1")
    if requested != "auto":
        variant = tf1_variant(code) if requested == "tf1" else None
        return Profile(requested, variant, chosen_by="--profile")
    tf1, tf2 = _found(TF1_MARKERS, code), _found(TF2_MARKERS, code)
    if re.search(COMPAT_V1, code):
        tf1.append("import tensorflow.compat.v1 as tf")
    if len(tf1) >= 2 and len(tf1) > len(tf2):
        return Profile("tf1", tf1_variant(code), tf1)
    return Profile("tf2", None, tf2)


# The parts of a TF1 notebook, in order, and the heading words that open each. The 2017,
# 2018 and UW notebooks word them differently ("# Least Squares GAN", "# Deep Convolutional
# GANs", "# Extra Credit", "# WGAN-GP (Small Extra Credit)"); students add their own.
