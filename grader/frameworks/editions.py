"""The students' editions of the homework: what ``hw4grade release --edition NAME`` bundles.

An edition is a framework with a student template. Its bundle holds the template, a README
and a GitHub Classroom workflow for that framework, and the student wheel with the public
checks of every edition it needs: its own, and the default edition's, whose replay is the
batch's oracle in a student's install (it sets the public seed and answers TensorFlow
notebooks). Editions are named after the framework that grades their notebooks.

Instructor only (left out of the student wheel, like ``grader.release.bundle``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from grader.frameworks.torch.oracle import PUBLIC_CHECKS as TORCH_PUBLIC_CHECKS
from grader.frameworks.torch.oracle import TorchReferenceOracle
from grader.oracles.interface import BuildingOracle
from grader.oracles.public import CHECKS_STEM
from grader.oracles.reference import ReferenceOracle


@dataclass(frozen=True)
class Edition:
    """One edition's bundle: paths are relative to the project root, templates are files of
    ``grader/release/templates``."""

    framework: str  # the framework its notebooks are graded with (a REGISTRY name)
    solution: str  # the solution notebook graded to record the public checks
    template: str  # the student template made of it by ``make_template``
    notebook: str  # the template's name in the bundle
    extras: tuple[str, ...]  # the wheel's extras a student installs, the library's first
    readme: str  # the README's template
    workflow: str  # the Classroom workflow's template
    public_checks: str  # the stem of its public-check files in grader/data
    reference_oracle: Callable[[], BuildingOracle]  # the reference the checks record
    gradescope_extras: tuple[str, ...]  # the instructor wheel's extras Gradescope installs


EDITIONS: dict[str, Edition] = {
    "tf2": Edition(framework="tf2", solution="reference/HW4_solution.ipynb",
                   template="student_template/HW4_template.ipynb", notebook="HW4.ipynb",
                   extras=("tf",), readme="student_README.md", workflow="classroom.yml",
                   public_checks=CHECKS_STEM, reference_oracle=ReferenceOracle,
                   gradescope_extras=("tf", "sample")),
    "torch": Edition(framework="torch", solution="reference/HW4_solution_torch.ipynb",
                     template="student_template/HW4_torch.ipynb", notebook="HW4_torch.ipynb",
                     extras=("torch", "sample"), readme="student_README_torch.md",
                     workflow="classroom_torch.yml", public_checks=TORCH_PUBLIC_CHECKS,
                     reference_oracle=TorchReferenceOracle,
                     gradescope_extras=("torch", "sample")),
}
DEFAULT_EDITION = "tf2"


def recorded_editions(name: str) -> list[Edition]:
    """The editions whose public checks the bundle of ``name`` carries: the default one,
    then ``name`` itself when it is another."""
    return [EDITIONS[edition] for edition in dict.fromkeys((DEFAULT_EDITION, name))]
