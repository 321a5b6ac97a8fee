"""Which part of a failing model is at fault: retrain with one reference part at a time.

The runs take place in a kernel of their own that got the reference in its set-up
(``install_reference``), before any notebook code: one such kernel for every failing model
of a grade, after all the student's own runs. Only what the grader computes itself comes
out of them (steps, the scores of the samples it draws): an error text is replaced by a
fixed one, and that kernel is discarded (``remove_reference``) before the kernel is used
for anything else.
"""

from __future__ import annotations

import importlib
import inspect

from grader import items
from grader.convergence.judge import Plan, Settings, TrainingRun, credit, run_training
from grader.kernel import loader
from grader.kernel.loader import REFERENCE_MODULE
from grader.pipeline.prober import Prober


def reference_source(prober: Prober) -> str | None:
    """The source of the reference module the prober's framework trains with; None in an
    install without the reference."""
    try:
        return inspect.getsource(importlib.import_module(prober.framework.reference_module))
    except ImportError:
        return None


def install_reference(prober: Prober) -> bool:
    """Replace the kernel by a new one that gets the reference solution in its set-up,
    before any notebook code runs (then the notebook is replayed and the grader's modules
    installed); False, with the kernel untouched, without the reference."""
    source = reference_source(prober)
    if source is None:
        return False
    prober.restart(extra_setup=(loader.install_code(REFERENCE_MODULE, source),))
    return True


def remove_reference(prober: Prober) -> None:
    """Discard the kernel that holds the reference (and its folders) for a fresh one that
    never did. Nothing when no kernel of the session got extra set-up code."""
    if prober.session.extra_setup:
        prober.restart(extra_setup=())


def attribute(prober: Prober, model: str, plan: Plan, seed: int, mnist_npz: str,
              settings: Settings, suspects: list[str], max_runs: int,
              generator_as_specified: bool) -> tuple[str | None, list[TrainingRun]]:
    """Retrain in the kernel that holds the reference (``install_reference``) with one
    reference part at a time, suspects first; return the first role whose swap earns full
    credit, and the runs."""
    runs: list[TrainingRun] = []
    ordered = suspects + [role for role in items.ROLES if role not in suspects]
    for role in ordered[:max_runs]:
        run = run_training(prober, model, plan, seed, mnist_npz, settings, swapped=role,
                           generator_as_specified=(generator_as_specified
                                                   or role == items.GENERATOR_ROLE),
                           check_integrity=False)
        if run.error:
            run.error = "the training with this reference part did not finish"
        runs.append(run)
        if credit(run, settings.thresholds) >= 1.0:
            return role, runs
    return None, runs
