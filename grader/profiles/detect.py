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
PARTS = ("gan", "lsgan", "dcgan", "wgan-gp", "extra")
HOMEWORK_PARTS = ("gan", "lsgan", "dcgan")  # the graded parts; the others come after them
PART_HEADINGS = {
    "wgan-gp": r"\bWGAN|\bwasserstein",
    "dcgan": r"\bDC-?GANs?\b|\bdeep\s+convolutional|\bconvolutional\s+GAN",
    "lsgan": r"\bLS-?GANs?\b|\bleast[\s-]+squares?\b",
    "gan": r"\bvanilla\s+GANs?\b|\bMLP\s+GANs?\b",
    "extra": r"\bextra\s+credit\b|\bbonus\b",
}
_PART_RANK = {"gan": 0, "lsgan": 1, "dcgan": 2, "wgan-gp": 3, "extra": 3}


def _heading_part(line: str) -> str | None:
    """The part a Markdown heading line opens, or None (not a heading, or no part or several:
    a title such as "GANs, LSGANs and DCGANs" opens none)."""
    if not re.match(r"^\s*#+\s", line):
        return None
    text = re.sub(r"\(?small\s+extra\s+credit\)?", "", line, flags=re.IGNORECASE) \
        if re.search(PART_HEADINGS["wgan-gp"], line, re.IGNORECASE) else line
    named = [part for part, pattern in PART_HEADINGS.items()
             if re.search(pattern, text, re.IGNORECASE)]
    return named[0] if len(named) == 1 else None


@dataclass
class NotebookParts:
    """Which part of a TF1 notebook each cell is in, read from its Markdown headings.

    ``cells[i]`` is the part of cell ``i``: ``gan`` up to the first heading that opens
    another part; a heading only moves forward (gan, lsgan, dcgan, then wgan-gp or extra),
    and one above the first definition of ``discriminator`` or ``generator`` is a title.
    ``notes`` say where the headings leave the parts in doubt.
    """

    cells: list[str]
    notes: list[str] = field(default_factory=list)

    def start(self, part: str) -> int | None:
        """Index of the first cell of ``part``, or None when no heading opens it."""
        return next((index for index, name in enumerate(self.cells) if name == part), None)

    def has(self, part: str) -> bool:
        """True when a heading opens ``part``."""
        return self.start(part) is not None


def _network_definitions(notebook: nbformat.NotebookNode) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {"discriminator": [], "generator": []}
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            for name in found:
                if re.search(rf"^\s*def\s+{name}\s*\(", cell.source, re.MULTILINE):
                    found[name].append(index)
    return found


def notebook_parts(notebook: nbformat.NotebookNode) -> NotebookParts:
    """The part of every cell of a TF1 notebook, and notes where it cannot be told."""
    definitions = _network_definitions(notebook)
    first_definition = min([i for cells in definitions.values() for i in cells], default=-1)
    current, cells = "gan", []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "markdown" and index > first_definition:
            for line in cell.source.splitlines():
                part = _heading_part(line)
                if part and _PART_RANK[part] >= _PART_RANK[current]:
                    current = part
        cells.append(current)
    parts = NotebookParts(cells)
    dcgan = parts.start("dcgan")
    for name, where in definitions.items():
        in_dcgan = [i for i in where if cells[i] == "dcgan"]
        homework = [i for i in where if cells[i] in HOMEWORK_PARTS]
        if dcgan is not None and where and not in_dcgan:
            parts.notes.append(f"the DCGAN part (from cell {dcgan + 1}) defines no {name}, so "
                               f"the DCGAN {name} is graded as missing")
        elif dcgan is None and len(homework) > 1:
            parts.notes.append(f"no heading marks the DCGAN part, so the parts cannot be told "
                               f"apart: the grader took the second definition of {name} (cell "
                               f"{homework[1] + 1}) for the DCGAN one")
        elif dcgan is None and len(where) > 1:
            parts.notes.append(f"no heading marks the DCGAN part and {name} is defined once "
                               "before the extra-credit part, so the DCGAN "
                               f"{name} is graded as missing")
    if dcgan is None and any(len(where) > 1 for where in definitions.values()):
        parts.notes.append("without part headings every other graded function is graded on "
                           "its last definition, wherever it is")
    return parts


def dcgan_start(notebook: nbformat.NotebookNode) -> int | None:
    """Index of the Markdown heading that opens the DCGAN part, or None."""
    return notebook_parts(notebook).start("dcgan")
