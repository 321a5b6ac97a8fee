"""How each kind of unit item is probed and scored: one entry per check of the catalogue.

``grade_unit`` runs the check an item's ``ItemSpec`` names; a failure of the grader's own
(not of the notebook) becomes an ``error`` result that says so, never an exception.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable

import numpy as np

from grader import items
from grader.items import ItemSpec
from grader.pipeline import probe, score
from grader.pipeline.prober import Prober
from grader.result import ItemResult
from grader.rubric import Item

Check = Callable[[Item, ItemSpec, Prober, np.random.Generator, object], ItemResult]

CHECKS: dict[str, Check] = {
    items.ACTIVATION: lambda item, spec, prober, rng, oracle: score.score_leaky_relu(
        probe.probe_leaky_relu(prober, rng, spec), oracle, item),
    items.NOISE: lambda item, spec, prober, rng, oracle: score.score_sample_noise(
        probe.probe_sample_noise(prober, rng, spec), item),
    items.LOSS: lambda item, spec, prober, rng, oracle: score.score_loss(
        probe.probe_loss(prober, rng, spec), oracle, item),
    items.SOLVERS: lambda item, spec, prober, rng, oracle: score.score_get_solvers(
        probe.probe_get_solvers(prober, rng, spec), item),
    items.NETWORK: lambda item, spec, prober, rng, oracle: score.score_model(
        probe.probe_model(prober, rng, spec, oracle), oracle, item),
    items.THEORY: lambda item, spec, prober, rng, oracle: score.score_theory(
        probe.probe_theory(prober, rng, spec), item),
}
PROBED = tuple(CHECKS)  # the checks that call the notebook's functions in its kernel


def grade_unit(item: Item, prober: Prober, rng: np.random.Generator, oracle) -> ItemResult:
    """Probe and score one unit item with its own generator drawn from ``rng``."""
    item_rng = np.random.default_rng([rng.integers(2**32), len(item.id)])
    spec = items.spec(item.id)
    try:
        return CHECKS[spec.check](item, spec, prober, item_rng, oracle)
    except Exception as error:
        print(f"hw4grade: probing {item.id} failed: {traceback.format_exc(limit=-3)}",
              file=sys.stderr)
        return score.crashed(item, f"the grader could not check {item.id} ({error!r})")
