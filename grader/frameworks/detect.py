"""Which framework a notebook is written for, read from its code cells only (never from
outputs or metadata), unless the instructor names one (``--profile``).

Each framework says which of its markers the code holds (``Framework.recognise``). The
framework with the most markers, at least ``MIN_MARKERS`` of them, is chosen, the first of
the registry on a tie; with none that strong, the registry's first (the TF2 template). A
notebook that uses two libraries strongly (TensorFlow and PyTorch) is refused with a
message that names the markers of each, since which edition it answers cannot be told.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import nbformat

from grader.exceptions import MixedFrameworks, UsageError
from grader.frameworks.base import Framework, Recognition

MIN_MARKERS = 2
AUTO = "auto"


@dataclass
class Detected:
    """A notebook's framework, its generation, the evidence and who chose it."""

    name: str
    generation: str | None = None
    evidence: list[str] = field(default_factory=list)
    chosen_by: str = "detected"


def notebook_code(notebook: nbformat.NotebookNode) -> str:
    """The notebook's code cells, joined."""
    return "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")


def _strongest(found: dict[str, Recognition]) -> str | None:
    best = max(found, key=lambda name: found[name].strength)  # first on a tie
    return best if found[best].strength >= MIN_MARKERS else None


def detect(notebook: nbformat.NotebookNode, registry: Mapping[str, type[Framework]],
           requested: str = AUTO) -> Detected:
    """The framework of ``notebook`` among ``registry`` (name -> class, default first).

    Raises ``UsageError`` for an unknown ``requested`` name and ``MixedFrameworks`` for a
    notebook that uses two libraries strongly.
    """
    return detect_code(notebook_code(notebook), registry, requested)


def detect_code(code: str, registry: Mapping[str, type[Framework]],
                requested: str = AUTO) -> Detected:
    """The framework of a notebook's ``code`` (its code cells joined); see ``detect``."""
    if requested not in (AUTO, *registry):
        raise UsageError(f"unknown profile {requested!r}: choose "
                         + ", ".join((AUTO, *registry)))
    found = {name: framework.recognise(code) for name, framework in registry.items()}
    if requested != AUTO:
        return Detected(requested, found[requested].generation, found[requested].evidence,
                        chosen_by="--profile")
    by_library: dict[str, list[str]] = {}
    for name, framework in registry.items():
        if found[name].strength >= MIN_MARKERS:
            by_library.setdefault(framework.library, []).extend(found[name].evidence)
    if len(by_library) > 1:
        raise MixedFrameworks(by_library)
    best = _strongest(found) or next(iter(registry))
    return Detected(best, found[best].generation, found[best].evidence)
