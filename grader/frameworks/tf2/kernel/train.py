"""The grader's GAN training loop, run in a submission's kernel (or in the grader's tests).

Sent as source text into a private module, like the probe. The grader decides everything:
the seed, the start weights, the order of the training images and the number of steps of
each chunk. A ``TrainingSession`` builds D and G from the notebook's parts (any of them may
be swapped for the reference's, for attribution: ``parts`` maps a role to a function
object), takes start weights by variable position, trains one D step and one G step per
batch for a chunk of batches, and hands back its networks' weights after each chunk, from
which the grader draws the samples it judges. ``sample`` draws samples in the kernel, for a
generator that is not the specified architecture.

Every training module of a profile (``tf1/train``) offers the same class.
"""

import time

import numpy as np

ROLES = ("generator", "discriminator")


def _as_tensor(tf, value, dtype):
    if hasattr(value, "numpy"):
        return tf.cast(value, dtype)
    return tf.constant(np.asarray(value), dtype=dtype)


class TrainingSession:
    """D and G built from ``parts`` (discriminator, generator, loss, sample_noise,
    get_solvers), with their optimizers and the compiled training step."""

    def __init__(self, parts: dict, seed: int, noise_dim: int = 96, batch: int = 128,
                 jit: bool = False) -> None:
        self.parts, self.seed, self.noise_dim, self.batch, self.jit = (
            parts, seed, noise_dim, batch, jit)
        self.mode = "compiled"
        self.steps = 0
        self._assigned: dict = {role: {} for role in ROLES}
        self._build()

    def _build(self) -> None:
        import tensorflow as tf

        tf.keras.utils.set_random_seed(self.seed)
        self.D = self.parts["discriminator"]()
        self.G = self.parts["generator"](noise_dim=self.noise_dim)
        # a model without an Input layer has no variables until it is called
        self.G(tf.zeros([2, self.noise_dim]), training=False)
        self.D(tf.zeros([2, 784]), training=False)
        self.D_solver, self.G_solver = self.parts["get_solvers"]()
        for role, values in self._assigned.items():
            self._set(role, values)
        self._step = None

    def _network(self, role: str):
        return self.G if role == "generator" else self.D

    def variables(self) -> dict:
        """``role -> [(shape, name), ...]`` of every weight of each network, in order."""
        return {role: [([int(d) for d in v.shape], str(v.name))
                       for v in self._network(role).weights] for role in ROLES}

    def _set(self, role: str, values: dict) -> None:
        weights = list(self._network(role).weights)
        for position, value in values.items():
            weights[position].assign(value)

    def assign(self, role: str, values: dict) -> None:
        """Set the weights of ``role``'s network at these positions (position -> array)."""
        self._assigned[role].update(values)
        self._set(role, values)

    def values(self, role: str) -> list:
        """The current values of every weight of ``role``'s network, in order."""
        return [np.asarray(v.numpy()) for v in self._network(role).weights]

    def _make_step(self):
        import tensorflow as tf

        D, G, loss_fn = self.D, self.G, self.parts["loss"]
        D_solver, G_solver = self.D_solver, self.G_solver

        def apply(solver, loss, tape, variables):
            # A loss that does not depend on a network gives None gradients: nothing to apply.
            pairs = [(g, v) for g, v in zip(tape.gradient(loss, variables), variables)
                     if g is not None]
            if pairs:
                solver.apply_gradients(pairs)

        def step(real, z):
            with tf.GradientTape() as tape:
                d_loss, _ = loss_fn(D(real, training=True), D(G(z, training=True), training=True))
            apply(D_solver, d_loss, tape, D.trainable_variables)
            with tf.GradientTape() as tape:
                _, g_loss = loss_fn(D(real, training=True), D(G(z, training=True), training=True))
            apply(G_solver, g_loss, tape, G.trainable_variables)
            return tf.reshape(d_loss, []), tf.reshape(g_loss, [])

        return step

    def run(self, images: np.ndarray, order: np.ndarray, max_seconds: float = 600.0) -> dict:
        """Train one step per row of ``order`` (indices into ``images``); return this chunk's
        losses ([steps, 2]), its step count and seconds (fewer steps when time ran out)."""
        import tensorflow as tf

        losses = []
        started = time.monotonic()
        for indices in order:
            real = tf.constant(images[indices])
            z = _as_tensor(tf, self.parts["sample_noise"](self.batch, self.noise_dim),
                           tf.float32)
            if self._step is None:
                try:
                    self._step = tf.function(self._make_step(), jit_compile=self.jit)
                    pair = self._step(real, z)
                except Exception:  # code that only runs eagerly (numpy inside the loss, ...)
                    self._build()  # fresh: the failed trace may have built state
                    self._step, self.mode = self._make_step(), "eager"
                    pair = self._step(real, z)
            else:
                pair = self._step(real, z)
            losses.append(pair)
            if time.monotonic() - started > max_seconds:
                break
        self.steps += len(losses)
        return {"losses": np.array([[float(d), float(g)] for d, g in losses],
                                   dtype=np.float64).reshape(-1, 2),
                "steps": len(losses), "seconds": time.monotonic() - started}

    def sample(self, noise: np.ndarray) -> np.ndarray:
        """Samples of the generator for ``noise`` (inference mode), flattened to [N, 784]."""
        import tensorflow as tf

        return np.concatenate([
            np.asarray(self.G(tf.constant(noise[start:start + 1000]), training=False))
            for start in range(0, len(noise), 1000)
        ]).reshape(len(noise), -1).astype(np.float32)


def train(parts: dict, images: np.ndarray, order: np.ndarray, eval_noise: np.ndarray,
          seed: int, noise_dim: int = 96, max_seconds: float = 600.0,
          jit: bool = False) -> dict:
    """One session trained for ``len(order)`` steps from its own start; its losses and its
    samples for ``eval_noise`` (for reference runs and calibration in the grader's process)."""
    session = TrainingSession(parts, seed, noise_dim, order.shape[1], jit)
    chunk = session.run(images, order, max_seconds)
    return {**chunk, "samples": session.sample(eval_noise), "mode": session.mode,
            "session": session}
