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
from grader.oracles.interface import Oracle
from grader.pipeline import probe, score
from grader.pipeline.prober import Prober
from grader.result import ItemResult
from grader.rubric import Item

Check = Callable[[Item, ItemSpec, Prober, np.random.Generator, Oracle], ItemResult]


def check_activation(item: Item, spec: ItemSpec, prober: Prober, rng: np.random.Generator,
                     oracle: Oracle) -> ItemResult:
    """The activation on drawn tensors and slopes, against the reference's."""
    return score.score_leaky_relu(probe.probe_leaky_relu(prober, rng, spec), oracle, item)


def check_noise(item: Item, spec: ItemSpec, prober: Prober, rng: np.random.Generator,
                oracle: Oracle) -> ItemResult:
    """The noise sampler: shape, range, fresh values, distribution."""
    return score.score_sample_noise(probe.probe_sample_noise(prober, rng, spec), item)


def check_loss(item: Item, spec: ItemSpec, prober: Prober, rng: np.random.Generator,
               oracle: Oracle) -> ItemResult:
    """A (D loss, G loss) function on unequal batches, against the reference's."""
    return score.score_loss(probe.probe_loss(prober, rng, spec), oracle, item)


def check_solvers(item: Item, spec: ItemSpec, prober: Prober, rng: np.random.Generator,
                  oracle: Oracle) -> ItemResult:
    """The optimizers' settings, drawn and default."""
    return score.score_get_solvers(probe.probe_get_solvers(prober, rng, spec), item)


def check_network(item: Item, spec: ItemSpec, prober: Prober, rng: np.random.Generator,
                  oracle: Oracle) -> ItemResult:
    """A model builder: its variables, then its outputs with the reference's weights."""
    return score.score_model(probe.probe_model(prober, rng, spec, oracle), oracle, item)


def check_theory(item: Item, spec: ItemSpec, prober: Prober, rng: np.random.Generator,
                 oracle: Oracle) -> ItemResult:
    """A derivation answered in code, against the numerical answers."""
    return score.score_theory(probe.probe_theory(prober, rng, spec), item)


CHECKS: dict[str, Check] = {
    items.ACTIVATION: check_activation,
    items.NOISE: check_noise,
    items.LOSS: check_loss,
    items.SOLVERS: check_solvers,
    items.NETWORK: check_network,
    items.THEORY: check_theory,
}
PROBED = tuple(CHECKS)  # the checks that call the notebook's functions in its kernel


def grade_unit(item: Item, prober: Prober, rng: np.random.Generator,
               oracle: Oracle | None, replaced: dict[str, Check] | None = None) -> ItemResult:
    """Probe and score one unit item with its own generator drawn from ``rng``, by the
    framework's own check where it ``replaced`` the shared one."""
    item_rng = np.random.default_rng([rng.integers(2**32), len(item.id)])
    spec = items.spec(item.id)
    check = (replaced or {}).get(spec.check, CHECKS[spec.check])
    try:
        return check(item, spec, prober, item_rng, oracle)
    except Exception as error:
        print(f"hw4grade: probing {item.id} failed: {traceback.format_exc(limit=-3)}",
              file=sys.stderr)
        return score.crashed(item, f"the grader could not check {item.id} ({error!r})")
