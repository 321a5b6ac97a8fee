"""The grader's own GAN training loop, run in a submission's kernel (or in the grader).

Sent as source text into a private module, like the probe. The grader decides
everything: the step budget, the seed, the order of the training images and the noise
used to draw the samples that are judged. The student's parts are taken from the
notebook's namespace; for attribution, any of them can be swapped for the reference's
(``parts`` maps a role to a function object). One D step and one G step per batch.
"""

import time

import numpy as np


def _as_tensor(tf, value, dtype):
    if hasattr(value, "numpy"):
        return tf.cast(value, dtype)
    return tf.constant(np.asarray(value), dtype=dtype)


def train(parts: dict, images: np.ndarray, order: np.ndarray, eval_noise: np.ndarray,
          seed: int, noise_dim: int = 96, max_seconds: float = 600.0,
          jit: bool = False) -> dict:
    """Train D and G for ``len(order)`` steps; return losses and samples for ``eval_noise``.

    ``parts`` holds callables: discriminator, generator, loss, sample_noise, get_solvers.
    ``order`` is an int array [steps, batch] of indices into ``images``.
    """
    import tensorflow as tf

    batch = order.shape[1]
    loss_fn, sample_noise = parts["loss"], parts["sample_noise"]

    def build():
        tf.keras.utils.set_random_seed(seed)
        D = parts["discriminator"]()
        G = parts["generator"](noise_dim=noise_dim)
        D_solver, G_solver = parts["get_solvers"]()
        return D, G, D_solver, G_solver

    def make_step(D, G, D_solver, G_solver):
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

    D, G, D_solver, G_solver = build()
    step = tf.function(make_step(D, G, D_solver, G_solver), jit_compile=jit)
    losses = []
    started = time.monotonic()
    mode = "compiled"
    for number, indices in enumerate(order):
        real = tf.constant(images[indices])
        z = _as_tensor(tf, sample_noise(batch, noise_dim), tf.float32)
        if number == 0:
            try:
                pair = step(real, z)
            except Exception:  # code that only runs eagerly (numpy inside the loss, ...)
                D, G, D_solver, G_solver = build()  # fresh: the failed trace may have built state
                step, mode = make_step(D, G, D_solver, G_solver), "eager"
                pair = step(real, z)
        else:
            pair = step(real, z)
        losses.append(pair)
        if time.monotonic() - started > max_seconds:
            break
    losses = np.array([[float(d), float(g)] for d, g in losses], dtype=np.float64)
    samples = np.concatenate([
        np.asarray(G(tf.constant(eval_noise[start:start + 1000]), training=False))
        for start in range(0, len(eval_noise), 1000)
    ]).reshape(len(eval_noise), -1).astype(np.float32)
    return {"losses": losses, "samples": samples, "steps": len(losses),
            "seconds": time.monotonic() - started, "mode": mode}
