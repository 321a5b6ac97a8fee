"""Expected values for PyTorch submissions, from the PyTorch reference (``reference.hw4_torch``)
computed in float64 in the grader's own process.

Implements ``grader.oracles.interface.Oracle``. Networks are listed as the kernel's probe lists
them (``grader/frameworks/torch/kernel/layout.py``, the one convention), so the weights drawn
here go into the student's network position by position; ``grader.oracles.weights.
draw_weights`` draws them, with batch norm's ``weight`` and ``running_var`` drawn as Keras'
``gamma`` and ``moving_variance`` (uniform in [0.5, 1.5]). Batch norm runs in training mode,
as the course trains and samples its networks (it never calls ``.eval()``).

A student's install has no reference: there :func:`shared_oracle` replays the PyTorch public
checks, recorded by ``hw4grade release --edition torch`` through a ``RecordingOracle`` wrapping
this oracle and shipped as ``grader/data/public_checks_torch.{npz,json}`` (see
``grader.oracles.public``).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from typing import Any

import numpy as np

from grader import items
from grader.frameworks.torch.kernel.layout import listing
from grader.frameworks.torch.library import require_torch, torch_problem
from grader.frameworks.torch.names import torch_function
from grader.oracles.weights import draw_weights

REFERENCE = "reference.hw4_torch"
# batch norm's PyTorch names -> the names draw_weights knows
NORM_NAMES = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean",
              "running_var": "moving_variance"}
SPEC_BATCH = 128  # the batch the layer listing's output shapes are computed at
PUBLIC_CHECKS = "public_checks_torch"  # the stem of its public checks in grader/data


def _is_norm(module) -> bool:
    from torch import nn

    return isinstance(module, nn.modules.batchnorm._BatchNorm)


class TorchReferenceOracle:
    """The PyTorch reference solution, run in float64 (a ``BuildingOracle``)."""

    reference_module = REFERENCE

    def __init__(self) -> None:
        self.torch = require_torch()  # FrameworkNotInstalled, with the install hint, without
        self.reference = importlib.import_module(REFERENCE)

    def activation(self, item: str, x: np.ndarray, alpha: float | None) -> np.ndarray:
        """The PyTorch edition has no activation item."""
        raise NotImplementedError("the PyTorch edition has no activation item")

    def loss(self, item: str, real: np.ndarray, fake: np.ndarray) -> tuple[float, float]:
        """(discriminator loss, generator loss) of the reference in float64."""
        d_name, g_name = torch_function(items.spec(item)).split(" and ")
        real_t = self.torch.tensor(np.asarray(real), dtype=self.torch.float64)
        fake_t = self.torch.tensor(np.asarray(fake), dtype=self.torch.float64)
        return (float(getattr(self.reference, d_name)(real_t, fake_t)),
                float(getattr(self.reference, g_name)(fake_t)))

    def build(self, item: str, kwargs: dict[str, Any]) -> Any:
        """A fresh reference network of the model item, in float64."""
        builder = getattr(self.reference, torch_function(items.spec(item)))
        return builder(**kwargs).double()

    def _specs(self, item: str, kwargs: dict[str, Any]) -> list[tuple[tuple[int, ...], str]]:
        specs = []
        for path, tensor, _, module in listing(self.build(item, kwargs)):
            name = path.rsplit(".", 1)[-1]
            specs.append((tuple(tensor.shape), NORM_NAMES[name] if _is_norm(module) else name))
        return specs

    def variable_specs(self, item: str, kwargs: dict[str, Any]) -> list[list[Any]]:
        """``[shape, name]`` of each weight in the PyTorch listing's order (batch norm's under
        the names ``draw_weights`` knows), JSON-ready."""
        return [[list(shape), name] for shape, name in self._specs(item, kwargs)]

    def model_weights(self, item: str, kwargs: dict[str, Any],
                      rng: np.random.Generator) -> list[np.ndarray]:
        """Random weights in the PyTorch listing's order, drawn by ``draw_weights``."""
        return draw_weights(self._specs(item, kwargs), rng)

    def model_output(self, item: str, kwargs: dict[str, Any], weights: list[np.ndarray],
                     x: np.ndarray) -> np.ndarray:
        """The reference network's output with ``weights`` on ``x`` (training mode)."""
        torch = self.torch
        model = self.build(item, kwargs)
        with torch.no_grad():
            for (_, tensor, _, _), value in zip(listing(model), weights):
                tensor.copy_(torch.tensor(np.asarray(value), dtype=tensor.dtype))
            model.train()
            return model(torch.tensor(np.asarray(x), dtype=torch.float64)).numpy()

    def parameter_count(self, item: str, kwargs: dict[str, Any]) -> int:
        """The values of the listing (batch norm statistics included)."""
        return sum(int(np.prod(shape)) for shape, _ in self._specs(item, kwargs))

    def layer_specs(self, item: str, kwargs: dict[str, Any]) -> list[tuple]:
        """The reference network's modules with weights, in order: ``(kind, weight shapes,
        output shape)`` (-1 for the batch), the shapes at a batch of ``SPEC_BATCH``."""
        torch = self.torch
        model = self.build(item, kwargs)
        spec = items.spec(item)
        width = kwargs.get("noise_dim", 784) if spec.takes_noise else 784
        outputs: dict[int, tuple] = {}

        def note(module, args, output) -> None:  # a hook returning a value replaces the output
            outputs.setdefault(id(module), tuple(output.shape))

        hooks = [module.register_forward_hook(note)
                 for module in model.modules() if not list(module.children())]
        try:
            with torch.no_grad():
                model.train()
                model(torch.zeros(SPEC_BATCH, width, dtype=torch.float64))
        finally:
            for hook in hooks:
                hook.remove()
        layers = []
        for module in model.modules():
            if list(module.children()) or id(module) not in outputs:
                continue
            shapes = [tuple(int(d) for d in tensor.shape)
                      for _, tensor, _, owner in listing(module) if owner is module]
            shape = outputs[id(module)]
            layers.append((type(module).__name__, shapes, (-1, *shape[1:])))
        return layers


def reference_available() -> bool:
    """True when the PyTorch reference and PyTorch itself can be imported."""
    try:
        found = importlib.util.find_spec(REFERENCE) is not None
    except ModuleNotFoundError:  # no reference package at all
        return False
    return found and torch_problem() is None


@functools.lru_cache(maxsize=1)
def shared_reference_oracle() -> TorchReferenceOracle | None:
    """One oracle per process; None in an install without the PyTorch reference."""
    return TorchReferenceOracle() if reference_available() else None


@functools.lru_cache(maxsize=1)
def shared_public_oracle():
    """The replay of the PyTorch public checks (one per process); None where they are not
    installed."""
    from grader.oracles.public import load_public_oracle

    return load_public_oracle(stem=PUBLIC_CHECKS)


def shared_oracle():
    """The PyTorch reference where it is installed, else the replay of the PyTorch public
    checks (a student's install), else None."""
    return shared_reference_oracle() or shared_public_oracle()
