"""Which oracle answers in this install: the reference if it is installed, else the replay
of the public checks shipped with a student's install, else none.

This module imports both ``grader.oracles.reference`` and ``grader.oracles.public``;
neither of them imports it (nor the other). Neither imports the ``reference`` package at
load time, so this module loads in a student's install too.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any

import numpy as np

from grader.oracles import public, reference
from grader.oracles.interface import Oracle


def load_oracle() -> Oracle | None:
    """The reference oracle; in a student's install, the replay of the shipped public checks.

    Returns a ``ReferenceOracle`` when the ``reference`` package is installed, else a
    ``ReplayOracle`` when the public checks are installed, else None.
    """
    if reference.reference_available():
        return reference.ReferenceOracle()
    return public.load_public_oracle()


class BackgroundOracle:
    """Load the oracle (a TensorFlow import) in a thread while the kernel starts.

    The ``Oracle`` methods wait for the load, so it can be passed wherever an oracle is
    used; other attributes (``seed``, ``build``, ...) are those of the loaded oracle.
    Without any oracle in this install, every use raises ``AttributeError``.
    """

    def __init__(self) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        self._future = self._pool.submit(load_oracle)

    def get(self) -> Oracle | None:
        """The loaded oracle (None without the reference or public checks)."""
        return self._future.result()

    def close(self) -> None:
        """Wait until the load has ended, whether or not the oracle was used (TensorFlow's
        start-up writes to the native stderr while it loads)."""
        self._pool.shutdown(wait=True)

    def _loaded(self, name: str) -> Oracle:
        """The loaded oracle, to use its ``name``; AttributeError when there is none."""
        oracle = self.get()
        if oracle is None:
            raise AttributeError(f"no reference oracle in this install ({name})")
        return oracle

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loaded(name), name)

    def activation(self, item: str, x: np.ndarray, alpha: float | None) -> np.ndarray:
        """The loaded oracle's activation ``item`` of ``x``."""
        return self._loaded("activation").activation(item, x, alpha)

    def loss(self, item: str, real: np.ndarray, fake: np.ndarray) -> tuple[float, float]:
        """The loaded oracle's (D_loss, G_loss)."""
        return self._loaded("loss").loss(item, real, fake)

    def model_weights(self, item: str, kwargs: dict[str, Any],
                      rng: np.random.Generator) -> list[np.ndarray]:
        """The loaded oracle's random weights, drawn from ``rng``."""
        return self._loaded("model_weights").model_weights(item, kwargs, rng)

    def model_output(self, item: str, kwargs: dict[str, Any], weights: list[np.ndarray],
                     x: np.ndarray) -> np.ndarray:
        """The loaded oracle's model output with ``weights`` on ``x``."""
        return self._loaded("model_output").model_output(item, kwargs, weights, x)

    def parameter_count(self, item: str, kwargs: dict[str, Any]) -> int:
        """The loaded oracle's parameter count."""
        return self._loaded("parameter_count").parameter_count(item, kwargs)

    def layer_specs(self, item: str, kwargs: dict[str, Any]) -> list[tuple]:
        """The loaded oracle's layer list."""
        return self._loaded("layer_specs").layer_specs(item, kwargs)
