"""The grader's side of a training session in a submission's kernel.

``KernelTraining`` starts the session (the kernel builds the networks from the notebook's
parts), matches each network's weights to the specified layout by shape in order (as the
architecture items do; in the framework's own layout, ``Framework.layout``), gives the
grader's start weights on the first chunk, and reads the weights back after every chunk
into the specified layout (``Framework.to_specified``). Everything the kernel sends is
checked by the response parser; this module checks that the weights it hands back are the
ones the session described, of the right shapes and finite.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grader import items
from grader.convergence import networks
from grader.convergence.networks import Role
from grader.kernel.wire import Kind, train_start_spec, train_steps_spec
from grader.pipeline.probe import match_variables
from grader.pipeline.prober import Prober

BATCH = 128
NOISE_DIM = 96
REQUEST_MARGIN = 120.0  # seconds a chunk's request may take beyond its training time


@dataclass
class Chunk:
    """What one chunk of training handed back, checked."""

    requested: int  # steps the grader asked for
    reported: int  # steps the kernel says it took
    seconds: float
    losses: np.ndarray  # [steps, 2] as the kernel reported them
    weights: dict[str, list[np.ndarray] | None]  # role -> weights in the specified layout
    kernel_samples: np.ndarray | None = None
    error: str | None = None


@dataclass
class KernelTraining:
    """One training session of ``model`` in the kernel, from the grader's point of view."""

    prober: Prober
    model: str
    slot: str
    layouts: dict[str, list[tuple[tuple[int, ...], str]]]  # role -> the specified layout
    own_layouts: dict[str, list[tuple[tuple[int, ...], str]]]  # ... in the framework's layout
    mappings: dict[str, list[int] | None]  # role -> student position of each own weight
    student_shapes: dict[str, list[tuple[int, ...]]]
    pending: dict[str, list[np.ndarray]] = field(default_factory=dict)  # start weights

    @classmethod
    def start(cls, prober: Prober, model: str, parts: dict[str, str], seed: int,
              mnist_npz: str, timeout: float) -> KernelTraining | str:
        """Start the session; the kernel's error text when it cannot be started."""
        slot = f"train-{model}-{uuid.uuid4().hex[:6]}"
        spec = train_start_spec(parts, seed, NOISE_DIM, BATCH, mnist_npz, slot)
        outcome = prober.request([spec], {}, timeout=timeout)[0]
        if outcome.get("kind") != Kind.SESSION:
            return str(outcome.get("error") or "the training could not start")
        architecture = networks.architecture_of(model)
        roles = (Role.GENERATOR, Role.DISCRIMINATOR)
        layouts = {role: networks.layout(architecture, role, NOISE_DIM) for role in roles}
        own = {role: prober.framework.layout(architecture, role, NOISE_DIM) for role in roles}
        shapes = {role: [tuple(v["shape"]) for v in outcome["variables"][role]]
                  for role in roles}
        mappings = {role: match_variables([shape for shape, _ in own[role]], shapes[role])
                    for role in roles}
        return cls(prober, model, slot, layouts, own, mappings, shapes)

    def matched(self, role: str) -> bool:
        """True when ``role``'s network has exactly the specified weights (by shape)."""
        return self.mappings[role] is not None

    def give_start(self, role: str, weights: list[np.ndarray]) -> None:
        """Load these start weights (specified layout) with the next chunk."""
        if self.matched(role):
            self.pending[role] = self.prober.framework.from_specified(
                networks.architecture_of(self.model), role, weights)

    def run(self, order: np.ndarray, max_seconds: float,
            eval_noise: np.ndarray | None = None) -> Chunk:
        """Train one step per row of ``order``; with ``eval_noise``, samples drawn in the
        kernel come back too."""
        inputs: dict[str, Any] = {"order": order}
        assign: dict[str, list[list[Any]]] = {}
        for role, weights in self.pending.items():
            mapping = self.mappings[role]
            assign[role] = []
            for index, (position, value) in enumerate(zip(mapping, weights, strict=True)):
                inputs[f"{role[0]}{index}"] = value
                assign[role].append([position, f"{role[0]}{index}"])
        if eval_noise is not None:
            inputs["eval_noise"] = eval_noise
        spec = train_steps_spec(self.slot, assign, max_seconds, sample=eval_noise is not None)
        outcome = self.prober.request([spec], inputs, timeout=max_seconds + REQUEST_MARGIN)[0]
        self.pending = {}
        chunk = Chunk(len(order), 0, 0.0, np.zeros((0, 2)), {})
        if outcome.get("kind") != Kind.TRAINING:
            chunk.error = str(outcome.get("error") or "the training failed")
            return chunk
        chunk.reported, chunk.seconds = int(outcome["steps"]), float(outcome["seconds"])
        losses, generator, discriminator, samples = outcome["items"]
        chunk.losses = np.asarray(losses["array"], dtype=np.float64)
        if chunk.losses.ndim != 2 or chunk.losses.shape[1] != 2:
            chunk.error = (f"the training's losses came back in shape {chunk.losses.shape}, "
                           "not [steps, 2]")
            return chunk
        for role, values in ((Role.GENERATOR, generator), (Role.DISCRIMINATOR, discriminator)):
            chunk.weights[role] = self._read_weights(role, values["items"])
        if samples.get("kind") == Kind.ARRAY:
            chunk.kernel_samples = np.asarray(samples["array"], dtype=np.float32)
        return chunk

    def _read_weights(self, role: str, outcomes: list[dict]) -> list[np.ndarray] | None:
        """The returned weights of ``role`` in the specified layout; None when the network
        is not the specified one or the kernel sent something else than it described."""
        mapping = self.mappings[role]
        if mapping is None or len(outcomes) != len(self.student_shapes[role]):
            return None
        weights = []
        for position, (shape, _) in zip(mapping, self.own_layouts[role], strict=True):
            outcome = outcomes[position]
            if outcome.get("kind") != Kind.ARRAY or tuple(outcome["shape"]) != tuple(shape):
                return None
            weights.append(np.asarray(outcome["array"], dtype=np.float32))
        return self.prober.framework.to_specified(networks.architecture_of(self.model), role,
                                                  weights)


def parts_of(model: str, swapped: str | None) -> dict[str, str]:
    """The training parts of ``model``: the notebook's, one swapped for the reference's."""
    return {role: f"{'reference' if role == swapped else 'student'}:{name}"
            for role, name in items.convergence_item(model).parts.items()}
