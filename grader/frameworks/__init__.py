"""The frameworks a submission may be written in, each one folder implementing
``base.Framework``: ``tf2`` (today's template), ``tf1`` (the original graph-mode notebooks),
``torch`` (the PyTorch edition).

This module is the one place a framework is chosen: :data:`REGISTRY` lists them (the first
is the default), and :func:`choose_framework` reads a notebook's from its code.
"""

from __future__ import annotations

import nbformat

from grader.frameworks.base import Framework, KernelSetup
from grader.frameworks.detect import AUTO, detect_code, notebook_code
from grader.frameworks.tf1.framework import TF1Framework
from grader.frameworks.tf2.framework import TF2Framework
from grader.frameworks.torch.framework import TorchFramework

REGISTRY: dict[str, type[Framework]] = {"tf2": TF2Framework, "tf1": TF1Framework,
                                        "torch": TorchFramework}
NAMES = tuple(REGISTRY)

__all__ = ["AUTO", "NAMES", "REGISTRY", "Framework", "KernelSetup", "choose_framework"]


def choose_framework(notebook: nbformat.NotebookNode, requested: str = AUTO,
                     module_code: str = "") -> Framework:
    """The framework ``notebook`` is graded with: ``requested``, or read from its code and
    the student's module's (``module_code``, for a driver notebook)."""
    found = detect_code("\n".join((notebook_code(notebook), module_code)), REGISTRY, requested)
    return REGISTRY[found.name](found.generation, found.evidence)
