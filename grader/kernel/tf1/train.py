"""The grader's GAN training loop for TensorFlow 1 notebooks (graph mode), run in the kernel.

The counterpart of the TF2 loop (``train``) with the same ``train`` signature, installed in its
place for the ``tf1`` profile. The student's parts build ops on tensors: ``generator(z)``
and ``discriminator(x)`` (the second call reusing the first one's variables, as the
notebooks do), ``loss(logits_real, logits_fake)``, ``sample_noise(batch, dim)`` and
``get_solvers()`` returning two ``tf.train`` optimizers. The grader feeds the real
batches in its own order, runs one D step and one G step per batch, and draws samples
from its own noise.
"""

import time

import numpy as np


def _new(before: set, now: list) -> list:
    return [item for item in now if item not in before]


def train(parts: dict, images: np.ndarray, order: np.ndarray, eval_noise: np.ndarray,
          seed: int, noise_dim: int = 96, max_seconds: float = 600.0,
          jit: bool = False) -> dict:
    """Train D and G for ``len(order)`` steps; return losses and samples for ``eval_noise``."""
    import tensorflow.compat.v1 as tf

    batch = order.shape[1]
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(seed)
        x = tf.placeholder(tf.float32, [None, 784])
        z = tf.cast(parts["sample_noise"](batch, noise_dim), tf.float32)
        eval_z = tf.placeholder(tf.float32, [None, noise_dim])
        with tf.variable_scope("") as scope:
            trainable = set(tf.trainable_variables())
            updates = set(tf.get_collection(tf.GraphKeys.UPDATE_OPS))
            fake = parts["generator"](z)
            g_vars = _new(trainable, tf.trainable_variables())
            g_updates = _new(updates, tf.get_collection(tf.GraphKeys.UPDATE_OPS))
            trainable, updates = set(tf.trainable_variables()), \
                set(tf.get_collection(tf.GraphKeys.UPDATE_OPS))
            logits_real = parts["discriminator"](x)
            d_vars = _new(trainable, tf.trainable_variables())
            d_updates = _new(updates, tf.get_collection(tf.GraphKeys.UPDATE_OPS))
            scope.reuse_variables()
            logits_fake = parts["discriminator"](fake)
            samples = parts["generator"](eval_z)
        d_loss, g_loss = parts["loss"](logits_real, logits_fake)
        d_solver, g_solver = parts["get_solvers"]()

        def minimize(solver, loss, variables, extra):
            # A loss that does not depend on a network has no gradients: nothing to apply.
            pairs = [(g, v) for g, v in solver.compute_gradients(loss, var_list=variables)
                     if g is not None]
            with tf.control_dependencies(extra):
                return solver.apply_gradients(pairs) if pairs else tf.no_op()

        d_step = minimize(d_solver, d_loss, d_vars, d_updates)
        g_step = minimize(g_solver, g_loss, g_vars, g_updates)
        initialize = tf.global_variables_initializer()
    session = tf.Session(graph=graph)
    session.run(initialize)
    losses = []
    started = time.monotonic()
    for indices in order:
        # One noise batch per step, fed to both updates, as in the TF2 loop (``train``).
        feed = {x: images[indices], z: session.run(z)}
        _, d_value = session.run([d_step, d_loss], feed)
        _, g_value = session.run([g_step, g_loss], feed)
        losses.append((float(np.mean(d_value)), float(np.mean(g_value))))
        if time.monotonic() - started > max_seconds:
            break
    drawn = np.concatenate([
        np.asarray(session.run(samples, {eval_z: eval_noise[start:start + 1000]}))
        for start in range(0, len(eval_noise), 1000)
    ]).reshape(len(eval_noise), -1).astype(np.float32)
    session.close()
    return {"losses": np.array(losses, dtype=np.float64), "samples": drawn,
            "steps": len(losses), "seconds": time.monotonic() - started, "mode": "graph"}
