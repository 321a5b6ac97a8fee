"""The PyTorch edition's own check of ``get_solvers``: ``get_optimizer(model)``.

The course fixes the optimizer: ``torch.optim.Adam`` over the model's parameters with
``lr=1e-3`` and ``betas=(0.5, 0.999)``. The kernel's probe gives ``get_optimizer`` two small
networks of its own and describes what comes back (``grader/frameworks/torch/kernel/probe.py``);
four quarters are scored, each right only when it holds for both networks: an Adam, the
learning rate, the betas, and exactly the given network's parameters.
"""

from __future__ import annotations

import math

import numpy as np

from grader.items import ItemSpec
from grader.kernel.wire import Kind, solvers_spec
from grader.result import ItemResult, ItemStatus
from grader.rubric import Item

LEARNING_RATE = 1e-3
BETAS = (0.5, 0.999)
NETWORKS = 2  # the probe's small networks, one optimizer each


def _close(value: float | None, expected: float) -> bool:
    return value is not None and math.isclose(value, expected, rel_tol=1e-6)


def _result(item: Item, fraction: float, message: str, error: bool = False) -> ItemResult:
    fraction = float(min(max(fraction, 0.0), 1.0))
    status = ItemStatus.PASSED if fraction >= 1.0 \
        else (ItemStatus.ERROR if error else ItemStatus.FAILED)
    return ItemResult(item.id, round(item.points * fraction, 2), item.points, status,
                      message if fraction < 1.0 else "all checks passed")


def judge_optimizers(described: list[dict]) -> tuple[float, list[str]]:
    """The fraction right (quarters) and a sentence per failure, for the descriptions of the
    optimizers ``get_optimizer`` returned for the probe's networks."""
    problems = []
    types = sorted({d["type"] for d in described})
    adam = all("Adam" in d["mro"] and "AdamW" not in d["mro"] for d in described)
    if not adam:
        problems.append(f"it must return torch.optim.Adam, found {', '.join(types)}")
    rates = [d.get("learning_rate") for d in described]
    rate_right = all(_close(rate, LEARNING_RATE) for rate in rates)
    if not rate_right:
        problems.append(f"the learning rate must be {LEARNING_RATE:g}, found "
                        + ", ".join("none" if r is None else f"{r:g}" for r in sorted(
                            set(rates), key=lambda r: -1 if r is None else r)))
    betas = [(d.get("beta_1"), d.get("beta_2")) for d in described]
    betas_right = all(_close(b1, BETAS[0]) and _close(b2, BETAS[1]) for b1, b2 in betas)
    if not betas_right:
        found = sorted({f"({b1:g}, {b2:g})" if b1 is not None and b2 is not None else "none"
                        for b1, b2 in betas})
        problems.append(f"betas must be {BETAS}, found {', '.join(found)} (the first is "
                        "Adam's beta1: the course sets it to 0.5, not PyTorch's default 0.9)")
    exact = all(d.get("exact_parameters") is True for d in described)
    if not exact:
        problems.append("the optimizer must hold exactly the parameters of the model it is "
                        "given (model.parameters())")
    fraction = (adam + rate_right + betas_right + exact) / 4
    return fraction, problems


def check_optimizer(item: Item, spec: ItemSpec, prober, rng: np.random.Generator,
                    oracle) -> ItemResult:
    """``get_optimizer`` of two small networks: Adam, lr 1e-3, betas (0.5, 0.999), over each
    network's parameters."""
    outcome = prober.request([solvers_spec(spec.function, {})], {})[0]
    kind = outcome.get("kind")
    if kind == Kind.ERROR:
        return _result(item, 0, f"calling get_optimizer(model) raised {outcome['error']}",
                       error=True)
    if kind != Kind.OPTIMIZERS or len(outcome.get("items", [])) != NETWORKS:
        return _result(item, 0, "get_optimizer(model) must return an optimizer")
    described = outcome["items"]
    if all(d["type"] == "NoneType" for d in described):
        return _result(item, 0, "get_optimizer is not implemented yet (it returned None)")
    fraction, problems = judge_optimizers(described)
    return _result(item, fraction, "get_optimizer: " + "; ".join(problems))
