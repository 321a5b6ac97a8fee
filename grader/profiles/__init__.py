"""The notebook profiles (TF2 template, original TF1 notebooks): one interface
(``base.NotebookProfile``), two implementations (``tf2``, ``tf1``), chosen here only."""

from __future__ import annotations

import nbformat

from grader.profiles.base import KernelSetup, NotebookProfile
from grader.profiles.detect import PROFILES, detect_profile
from grader.profiles.tf1 import TF1Profile
from grader.profiles.tf2 import TF2Profile

__all__ = ["PROFILES", "KernelSetup", "NotebookProfile", "choose_profile"]


def choose_profile(notebook: nbformat.NotebookNode, requested: str = "auto") -> NotebookProfile:
    """The profile ``notebook`` is graded with: ``requested``, or read from its code."""
    found = detect_profile(notebook, requested)
    if found.name == "tf1":
        return TF1Profile(found.variant or "2018", found.evidence)
    return TF2Profile(found.evidence)
