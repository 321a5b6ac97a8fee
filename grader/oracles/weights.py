"""The rule by which a model item's random weights are drawn, shared by every oracle.

The grader loads the same random weights into the student's model and the reference model,
so that their outputs can be compared. ``draw_weights`` decides those weights from the
shape and name of each variable alone. The reference oracle runs it on the variables of
the model it builds; the public replay runs it on the variables the recording noted (see
``grader.oracles.public``). Both must draw the same numbers in the same order and leave
the generator in the same state, since the grader draws its next inputs from it; keeping
one function here, with no TensorFlow and no reference, is what guarantees that.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

# One variable: its shape and its Keras path ("sequential/dense/kernel") or bare name.
VariableSpec = tuple[Sequence[int], str]


def draw_weights(specs: Iterable[VariableSpec], rng: np.random.Generator) -> list[np.ndarray]:
    """Random float32 values for variables given as ``(shape, path or name)``, in order.

    Kernels (two or more dimensions) are normal, scaled by the square root of the fan-in;
    batch-norm scales and moving variances (named ``gamma``, ``moving_variance``) uniform
    in [0.5, 1.5]; every other vector (biases, ``beta``, moving means) normal times 0.1.
    Only the last ``/``-separated part of the path counts as the name.
    """
    weights = []
    for shape, path in specs:
        shape, name = tuple(shape), str(path).split("/")[-1]
        if len(shape) >= 2:
            value = rng.normal(size=shape) / np.sqrt(np.prod(shape[:-1]))
        elif name in ("gamma", "moving_variance"):
            value = rng.uniform(0.5, 1.5, size=shape)
        else:
            value = rng.normal(size=shape) * 0.1
        weights.append(value.astype(np.float32))
    return weights


def variable_specs(model: Any) -> list[list[Any]]:
    """``[shape, path]`` of each variable of a Keras model, in order (JSON-ready)."""
    return [[list(map(int, v.shape)), str(v.path)] for v in model.weights]
