"""What the grading asks of an oracle: the expected values of the implementation items.

``Oracle`` lists exactly the questions the scoring code asks (``grader.pipeline.probe`` and
``grader.pipeline.score``). Three classes answer them:

* ``grader.oracles.reference.ReferenceOracle``: the instructor's reference solution,
  computed afresh in float64 (an instructor's install);
* ``grader.oracles.public.ReplayOracle``: the same answers replayed from the public checks
  recorded at a fixed seed (a student's install, without the reference);
* ``grader.oracles.public.RecordingOracle``: wraps a reference oracle and notes its
  answers, to make those public checks (``hw4grade release``).

``grader.oracles.choose`` picks the first or the second for the install at hand. The
theory items are judged differently, by module-level functions of
``grader.oracles.theory`` that compute their expected values with scipy in any install.

Items and models are named by rubric item id (``"gan_loss"``, ``"dc_generator"``);
``kwargs`` are the keyword arguments the notebook's builder is called with.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Oracle(Protocol):
    """The expected values the scoring code asks for (structural: no need to subclass)."""

    def activation(self, item: str, x: np.ndarray, alpha: float | None) -> np.ndarray:
        """The activation ``item`` of ``x`` with slope ``alpha`` (None: the default slope)."""
        ...

    def loss(self, item: str, real: np.ndarray, fake: np.ndarray) -> tuple[float, float]:
        """``(D_loss, G_loss)`` of the loss item (``gan_loss``, ``lsgan_loss``) on these
        discriminator scores of real and fake images."""
        ...

    def model_weights(self, item: str, kwargs: dict[str, Any],
                      rng: np.random.Generator) -> list[np.ndarray]:
        """Random weights for the model item, in the reference model's variable order,
        drawn from ``rng`` by ``grader.oracles.weights.draw_weights`` (``rng`` is advanced
        exactly as that function advances it)."""
        ...

    def model_output(self, item: str, kwargs: dict[str, Any], weights: list[np.ndarray],
                     x: np.ndarray) -> np.ndarray:
        """The model's output on ``x`` with ``weights`` loaded (batch norm in training mode)."""
        ...

    def parameter_count(self, item: str, kwargs: dict[str, Any]) -> int:
        """The number of the model's parameters, batch-norm statistics included."""
        ...

    def layer_specs(self, item: str, kwargs: dict[str, Any]) -> list[tuple]:
        """The model's layers in order, each ``(kind, weight shapes, output shape)`` with
        shapes as tuples of ints (-1 for the batch dimension); used for feedback on a
        model of the wrong size, and the scoring copes when it raises."""
        ...


@runtime_checkable
class BuildingOracle(Oracle, Protocol):
    """An oracle that can also build the reference model itself (what ``RecordingOracle``
    wraps: it notes the model's variables so that a replay can draw the weights again).

    Its ``reference_module`` attribute names the reference solution it answers for
    (``"reference.hw4"`` ...), which a recording of it carries on (not declared here: a
    protocol with attributes cannot be checked with ``issubclass``)."""

    def build(self, item: str, kwargs: dict[str, Any]) -> Any:
        """A fresh reference model (Keras, or PyTorch ...) for the model item."""
        ...

    def variable_specs(self, item: str, kwargs: dict[str, Any]) -> list[list[Any]]:
        """``[shape, name]`` of each weight of the model, in the order ``model_weights``
        draws them (JSON-ready): from these ``draw_weights`` draws the same weights again."""
        ...
