"""Expected values, computed in the grader's own process from the instructor's reference.

Only an instructor's install has the ``reference`` package, and this module imports it only
when a ``ReferenceOracle`` is made, so that it also loads in a student's install. There,
``grader.oracles.choose.load_oracle`` replays the shipped public checks instead
(``grader.oracles.public``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from grader import items
from grader.oracles.weights import draw_weights, variable_specs


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Send what native code writes to file descriptor 2 to /dev/null for a while."""
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class ReferenceOracle:
    """The reference solution, run in float64 where the computation allows it.

    Implements ``grader.oracles.interface.BuildingOracle`` (the ``Oracle`` questions, and
    ``build``).
    """

    reference_module = "reference.hw4"

    def __init__(self) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        with quiet_native_stderr():  # TensorFlow's C++ start-up chatter, not for users
            import tensorflow as tf

            from reference import hw4

        self.tf, self.hw4 = tf, hw4

    def activation(self, item: str, x: np.ndarray, alpha: float | None) -> np.ndarray:
        """The reference activation ``item`` of ``x`` (float64)."""
        kwargs = {} if alpha is None else {"alpha": alpha}
        function = getattr(self.hw4, items.spec(item).function)
        return function(self.tf.constant(x, self.tf.float64), **kwargs).numpy()

    def loss(self, item: str, real: np.ndarray, fake: np.ndarray) -> tuple[float, float]:
        """(D_loss, G_loss) of ``gan_loss`` or ``lsgan_loss`` in float64."""
        function = getattr(self.hw4, item)
        d_loss, g_loss = function(self.tf.constant(real, self.tf.float64),
                                  self.tf.constant(fake, self.tf.float64))
        return float(d_loss), float(g_loss)

    def build(self, item: str, kwargs: dict[str, Any]) -> Any:
        """A fresh reference model for a model item."""
        return getattr(self.hw4, items.spec(item).function)(**kwargs)

    def model_weights(self, item: str, kwargs: dict[str, Any],
                      rng: np.random.Generator) -> list[np.ndarray]:
        """Random weights for the reference model, in its variable order, drawn from ``rng``
        by ``draw_weights`` from each variable's shape and name."""
        return draw_weights(self.variable_specs(item, kwargs), rng)

    def variable_specs(self, item: str, kwargs: dict[str, Any]) -> list[list[Any]]:
        """``[shape, path]`` of each variable of the reference model, in order."""
        return variable_specs(self.build(item, kwargs))

    def model_output(self, item: str, kwargs: dict[str, Any], weights: list[np.ndarray],
                     x: np.ndarray) -> np.ndarray:
        """The reference model's output with ``weights`` on ``x`` (batch norm in training mode)."""
        model = self.build(item, kwargs)
        for variable, value in zip(model.weights, weights):
            variable.assign(value)
        return model(self.tf.constant(x), training=True).numpy()

    def parameter_count(self, item: str, kwargs: dict[str, Any]) -> int:
        """Parameters of the reference model, batch-norm statistics included."""
        return sum(int(np.prod(v.shape)) for v in self.build(item, kwargs).weights)

    def layer_specs(self, item: str, kwargs: dict[str, Any]) -> list[tuple]:
        """The reference model's layers in order: ``(kind, weight shapes, output shape)``,
        shapes as tuples of ints (-1 for the batch dimension)."""
        return [(type(layer).__name__,
                 [tuple(int(d) for d in w.shape) for w in layer.weights],
                 tuple(-1 if d is None else int(d) for d in layer.output.shape))
                for layer in self.build(item, kwargs).layers]


def reference_available() -> bool:
    """True when the instructor's ``reference`` package is installed."""
    return importlib.util.find_spec("reference") is not None \
        and importlib.util.find_spec("reference.hw4") is not None
