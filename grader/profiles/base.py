"""What a notebook profile decides, as one small interface.

A profile is chosen once per notebook (``grader.profiles.choose_profile``); the pipeline
then asks it, and never tests a profile's name, how to set the kernel up, which kernel
modules probe and train the notebook, how a unit is called, and how messages read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import nbformat

from grader.items import ItemSpec
from grader.result import ItemResult


@dataclass
class KernelSetup:
    """What a profile adds to a notebook's kernel and to its result before execution."""

    env: dict[str, str] = field(default_factory=dict)  # environment variables for the kernel
    setup_code: tuple[str, ...] = ()  # silent cells run after the prelude
    after_cell: str | None = None  # silent code run after every cell ({index}: the cell's)
    warnings: list[str] = field(default_factory=list)  # for every result of this notebook
    ungraded_cells: dict[int, str] = field(default_factory=dict)  # index -> part, not graded


class NotebookProfile(Protocol):
    """How one version of the homework (TF2 template, original TF1 notebook) is graded."""

    name: str  # "tf2" or "tf1": the kernel prelude's configuration and --profile's choice
    kernel_modules: tuple[str, ...]  # kernel-side files the prober installs, in order
    reruns_tensors: bool  # graph mode: fresh noise means running one tensor twice
    reference_module: str  # the reference solution put in the kernel for attribution

    def label(self) -> str:
        """The name recorded in the result (``tf2``, ``tf1-2017``, ``tf1-2018``)."""

    def prepare(self, notebook: nbformat.NotebookNode, files: Path) -> KernelSetup:
        """The kernel's additions for ``notebook``; may add files to its folder ``files``."""

    def finish(self, result: ItemResult, spec: ItemSpec) -> ItemResult:
        """The item's result as this profile reports it (wording, items left to a person)."""
