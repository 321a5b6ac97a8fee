"""PyTorch in the grader's own process: whether this install can use it, asked once.

A PyTorch submission needs ``torch`` and ``torchvision`` (the ``torch`` extra). Installed
means importable: a wheel that is missing, broken, or that does not match its torchvision
(``operator torchvision::nms does not exist``) all mean the same to a grader, which then
refuses every PyTorch submission with :func:`install_hint` while TensorFlow ones are graded
as always. Everything of the grader that touches PyTorch in its own process (the PyTorch
reference oracle, ``hw4grade release --edition torch``, the grading of a PyTorch
submission) asks here first.
"""

from __future__ import annotations

import functools
import sys

from grader.exceptions import FrameworkNotInstalled

INSTALL_COMMAND = "pip install 'hw4grade[torch]'"
LIBRARIES = ("torch", "torchvision")  # what the torch extra brings, imported in this order
REASON_LIMIT = 200  # characters of an import error's first line kept in the hint


def import_torch():
    """``torch``, imported so that it never loads Triton in this process: the grader's own
    process may have TensorFlow loaded (the Keras oracle), and loading Triton after
    TensorFlow crashes the process (a segmentation fault, seen with torch 2.14 and
    TensorFlow 2.21); nothing here compiles GPU kernels."""
    sys.modules.setdefault("triton", None)  # an import of triton now raises ImportError
    import torch

    return torch


def brief_error(error: BaseException) -> str:
    """An import error in one short line: its type and the first line of its message."""
    lines = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    return text if len(text) <= REASON_LIMIT else text[:REASON_LIMIT - 3] + "..."


@functools.lru_cache(maxsize=1)
def torch_problem() -> str | None:
    """None when ``torch`` and ``torchvision`` import in this process; else why not, in
    one short line (asked once per process)."""
    try:
        import_torch()
        import torchvision  # noqa: F401 - a torchvision that does not match fails here
    except Exception as error:  # a broken wheel raises what it raises (RuntimeError ...)
        return brief_error(error)
    return None


def install_hint(problem: str, then: str = "") -> str:
    """The one message of an install that cannot import PyTorch, what to do first
    (``then``: what after) and why (``problem``)."""
    return (f"install the torch extra ({INSTALL_COMMAND}){then}; this install of hw4grade "
            f"cannot import PyTorch ({problem})")


def require_torch():
    """``torch``; ``FrameworkNotInstalled`` with :func:`install_hint` when this install
    cannot import it or torchvision."""
    problem = torch_problem()
    if problem is not None:
        raise FrameworkNotInstalled(install_hint(problem))
    return import_torch()


def cuda_build() -> bool:
    """True when this install's PyTorch is built for CUDA (a CPU-only build cannot use a
    GPU); asked without starting CUDA in this process."""
    return torch_problem() is None and import_torch().version.cuda is not None
