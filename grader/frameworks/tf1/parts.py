"""The parts of an original TF1 notebook (MLP GAN, LSGAN, DCGAN, WGAN-GP, extra credit), read
from its Markdown headings: which definition of a graded function belongs to which part."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import nbformat

from grader import items

PARTS = ("gan", "lsgan", "dcgan", "wgan-gp", "extra")


HOMEWORK_PARTS = ("gan", "lsgan", "dcgan")  # the graded parts; the others come after them


PART_HEADINGS = {
    "wgan-gp": r"\bWGAN|\bwasserstein",
    "dcgan": r"\bDC-?GANs?\b|\bdeep\s+convolutional|\bconvolutional\s+GAN",
    "lsgan": r"\bLS-?GANs?\b|\bleast[\s-]+squares?\b",
    "gan": r"\bvanilla\s+GANs?\b|\bMLP\s+GANs?\b",
    "extra": r"\bextra\s+credit\b|\bbonus\b",
}


PART_RANK = {"gan": 0, "lsgan": 1, "dcgan": 2, "wgan-gp": 3, "extra": 3}


def heading_part(line: str) -> str | None:
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
    # a TF1 notebook names its DCGAN networks as its MLP GAN's: discriminator, generator
    mlp_gan = items.convergence_item("gan").parts
    found: dict[str, list[int]] = {mlp_gan[items.DISCRIMINATOR_ROLE]: [],
                                   mlp_gan[items.GENERATOR_ROLE]: []}
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
                part = heading_part(line)
                if part and PART_RANK[part] >= PART_RANK[current]:
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
