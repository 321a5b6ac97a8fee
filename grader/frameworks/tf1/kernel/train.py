"""The grader's GAN training loop for TensorFlow 1 notebooks (graph mode), run in the kernel.

The counterpart of the TF2 loop (``train``) with the same ``TrainingSession`` interface,
installed in its place for the ``tf1`` profile. The student's parts build ops on tensors:
``generator(z)`` and ``discriminator(x)`` (the second call reusing the first one's
variables, as the notebooks do), ``loss(logits_real, logits_fake)``,
``sample_noise(batch, dim)`` and ``get_solvers()`` returning two ``tf.train`` optimizers.
A network's weights are the global variables its first call created (batch-norm
statistics included), in creation order, which is the order Keras lists the same layers'
weights in. One D step and one G step per batch, on one noise batch.
"""

import time

import numpy as np

ROLES = ("generator", "discriminator")


def _new(before: set, now: list) -> list:
    return [item for item in now if item not in before]


class TrainingSession:
    """D and G built in a graph of their own from ``parts``, with a session that keeps them."""

    def __init__(self, parts: dict, seed: int, noise_dim: int = 96, batch: int = 128,
                 jit: bool = False) -> None:
        import tensorflow.compat.v1 as tf

        self.mode, self.steps, self.noise_dim = "graph", 0, noise_dim
        self.graph = graph = tf.Graph()
        with graph.as_default():
            tf.set_random_seed(seed)
            self.x = tf.placeholder(tf.float32, [None, 784])
            self.z = tf.cast(parts["sample_noise"](batch, noise_dim), tf.float32)
            self.eval_z = tf.placeholder(tf.float32, [None, noise_dim])
            with tf.variable_scope("") as scope:
                self.weights = {}
                before = self._collections(tf)
                fake = parts["generator"](self.z)
                self.weights["generator"], g_vars, g_updates = self._created(tf, before)
                before = self._collections(tf)
                logits_real = parts["discriminator"](self.x)
                self.weights["discriminator"], d_vars, d_updates = self._created(tf, before)
                scope.reuse_variables()
                logits_fake = parts["discriminator"](fake)
                self.samples = parts["generator"](self.eval_z)
            self.d_loss, self.g_loss = parts["loss"](logits_real, logits_fake)
            d_solver, g_solver = parts["get_solvers"]()

            def minimize(solver, loss, variables, extra):
                # A loss that does not depend on a network has no gradients: nothing to apply.
                pairs = [(g, v) for g, v in solver.compute_gradients(loss, var_list=variables)
                         if g is not None]
                with tf.control_dependencies(extra):
                    return solver.apply_gradients(pairs) if pairs else tf.no_op()

            self.d_step = minimize(d_solver, self.d_loss, d_vars, d_updates)
            self.g_step = minimize(g_solver, self.g_loss, g_vars, g_updates)
            initialize = tf.global_variables_initializer()
        self.session = tf.Session(graph=graph)
        self.session.run(initialize)

    @staticmethod
    def _collections(tf) -> tuple:
        return (set(tf.global_variables()), set(tf.trainable_variables()),
                set(tf.get_collection(tf.GraphKeys.UPDATE_OPS)))

    def _created(self, tf, before: tuple) -> tuple:
        """The global variables, trainable ones and update ops made since ``before``."""
        variables, trainable, updates = before
        return (_new(variables, tf.global_variables()),
                _new(trainable, tf.trainable_variables()),
                _new(updates, tf.get_collection(tf.GraphKeys.UPDATE_OPS)))

    def variables(self) -> dict:
        """``role -> [(shape, name), ...]`` of every weight of each network, in order."""
        return {role: [([int(d) for d in v.shape], str(v.name)) for v in self.weights[role]]
                for role in ROLES}

    def assign(self, role: str, values: dict) -> None:
        """Set the weights of ``role``'s network at these positions (position -> array)."""
        for position, value in values.items():
            self.weights[role][position].load(value, self.session)

    def values(self, role: str) -> list:
        """The current values of every weight of ``role``'s network, in order."""
        return [np.asarray(value) for value in self.session.run(self.weights[role])]

    def run(self, images: np.ndarray, order: np.ndarray, max_seconds: float = 600.0) -> dict:
        """Train one step per row of ``order``; this chunk's losses, steps and seconds."""
        losses = []
        started = time.monotonic()
        for indices in order:
            feed = {self.x: images[indices], self.z: self.session.run(self.z)}
            _, d_value = self.session.run([self.d_step, self.d_loss], feed)
            _, g_value = self.session.run([self.g_step, self.g_loss], feed)
            losses.append((float(np.mean(d_value)), float(np.mean(g_value))))
            if time.monotonic() - started > max_seconds:
                break
        self.steps += len(losses)
        return {"losses": np.array(losses, dtype=np.float64).reshape(-1, 2),
                "steps": len(losses), "seconds": time.monotonic() - started}

    def sample(self, noise: np.ndarray) -> np.ndarray:
        """Samples of the generator for ``noise``, flattened to [N, 784]."""
        return np.concatenate([
            np.asarray(self.session.run(self.samples, {self.eval_z: noise[start:start + 1000]}))
            for start in range(0, len(noise), 1000)
        ]).reshape(len(noise), -1).astype(np.float32)
