"""The instructor's solution to Problem 3: Vanilla GAN, LSGAN and DCGAN on MNIST.

TensorFlow 2 with Keras 3. Every graded function keeps the name and signature the
student template uses. The code between ``# BEGIN SOLUTION`` and ``# END SOLUTION``
is what the template generator removes; everything else reaches students as is.
This module is also the single source of the solution notebook's code cells.
"""

import math

import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
from tensorflow import keras
from tensorflow.keras import layers

NOISE_DIM = 96


def preprocess(images):
    """Flatten uint8 images [N, 28, 28] to float32 [N, 784] scaled to [-1, 1]."""
    images = np.asarray(images, dtype=np.float32).reshape(len(images), -1)
    return images / 127.5 - 1.0


def show_images(images, title=None):
    """Show a square grid of flattened 28x28 images with values in [-1, 1]."""
    images = np.asarray(images).reshape(len(images), 28, 28)
    side = math.ceil(math.sqrt(len(images)))
    fig, axes = plt.subplots(side, side, figsize=(side * 0.6, side * 0.6))
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, image in zip(np.ravel(axes), images):
        ax.imshow((image + 1) / 2, cmap="gray", vmin=0, vmax=1)
    if title:
        fig.suptitle(title)
    plt.show()


def leaky_relu(x, alpha=0.01):
    """Leaky ReLU: x where x > 0, alpha * x elsewhere; same shape as x."""
    # BEGIN SOLUTION
    return tf.where(x > 0, x, alpha * x)
    # END SOLUTION


def sample_noise(batch_size, dim):
    """Fresh uniform noise on [-1, 1], a float32 tensor of shape [batch_size, dim]."""
    # BEGIN SOLUTION
    return tf.random.uniform([batch_size, dim], minval=-1.0, maxval=1.0, dtype=tf.float32)
    # END SOLUTION


def discriminator():
    """MLP discriminator: [N, 784] images -> [N, 1] logits (267,009 parameters)."""
    # BEGIN SOLUTION
    return keras.Sequential(
        [
            keras.Input(shape=(784,)),
            layers.Dense(256),
            layers.LeakyReLU(negative_slope=0.01),
            layers.Dense(256),
            layers.LeakyReLU(negative_slope=0.01),
            layers.Dense(1),
        ]
    )
    # END SOLUTION


def generator(noise_dim=NOISE_DIM):
    """MLP generator: [N, noise_dim] noise -> [N, 784] images in [-1, 1]."""
    # BEGIN SOLUTION
    return keras.Sequential(
        [
            keras.Input(shape=(noise_dim,)),
            layers.Dense(1024, activation="relu"),
            layers.Dense(1024, activation="relu"),
            layers.Dense(784, activation="tanh"),
        ]
    )
    # END SOLUTION


def gan_loss(logits_real, logits_fake):
    """Vanilla GAN losses from discriminator logits; returns (D_loss, G_loss) scalars.

    D_loss = mean BCE(real, 1) + mean BCE(fake, 0); G_loss = mean BCE(fake, 1).
    The two batches may differ in size.
    """
    # BEGIN SOLUTION
    bce = tf.nn.sigmoid_cross_entropy_with_logits
    d_loss = tf.reduce_mean(bce(labels=tf.ones_like(logits_real), logits=logits_real))
    d_loss += tf.reduce_mean(bce(labels=tf.zeros_like(logits_fake), logits=logits_fake))
    g_loss = tf.reduce_mean(bce(labels=tf.ones_like(logits_fake), logits=logits_fake))
    return d_loss, g_loss
    # END SOLUTION


def get_solvers(learning_rate=1e-3, beta1=0.5):
    """Two Adam optimizers (D_solver, G_solver) with the given learning rate and beta1."""
    # BEGIN SOLUTION
    d_solver = keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta1)
    g_solver = keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta1)
    return d_solver, g_solver
    # END SOLUTION


def lsgan_loss(scores_real, scores_fake):
    """Least-squares GAN losses with the 0-1 coding; returns (D_loss, G_loss) scalars.

    D_loss = 1/2 mean((D(x) - 1)^2) + 1/2 mean(D(G(z))^2); G_loss = 1/2 mean((D(G(z)) - 1)^2).
    """
    # BEGIN SOLUTION
    d_loss = 0.5 * tf.reduce_mean(tf.square(scores_real - 1.0))
    d_loss += 0.5 * tf.reduce_mean(tf.square(scores_fake))
    g_loss = 0.5 * tf.reduce_mean(tf.square(scores_fake - 1.0))
    return d_loss, g_loss
    # END SOLUTION


def dc_discriminator():
    """Convolutional discriminator: [N, 784] images -> [N, 1] logits (1,102,721 parameters)."""
    # BEGIN SOLUTION
    return keras.Sequential(
        [
            keras.Input(shape=(784,)),
            layers.Reshape((28, 28, 1)),
            layers.Conv2D(32, 5, padding="valid"),
            layers.LeakyReLU(negative_slope=0.01),
            layers.MaxPooling2D(2, strides=2),
            layers.Conv2D(64, 5, padding="valid"),
            layers.LeakyReLU(negative_slope=0.01),
            layers.MaxPooling2D(2, strides=2),
            layers.Flatten(),
            layers.Dense(1024),
            layers.LeakyReLU(negative_slope=0.01),
            layers.Dense(1),
        ]
    )
    # END SOLUTION


def dc_generator(noise_dim=NOISE_DIM):
    """Convolutional generator: [N, noise_dim] noise -> [N, 784] images in [-1, 1]."""
    # BEGIN SOLUTION
    return keras.Sequential(
        [
            keras.Input(shape=(noise_dim,)),
            layers.Dense(1024, activation="relu"),
            layers.BatchNormalization(),
            layers.Dense(7 * 7 * 128, activation="relu"),
            layers.BatchNormalization(),
            layers.Reshape((7, 7, 128)),
            layers.Conv2DTranspose(64, 4, strides=2, padding="same", activation="relu"),
            layers.BatchNormalization(),
            layers.Conv2DTranspose(1, 4, strides=2, padding="same", activation="tanh"),
            layers.Flatten(),
        ]
    )
    # END SOLUTION


def run_a_gan(D, G, D_solver, G_solver, loss_fn, images, num_epochs=10, batch_size=128,
              noise_dim=NOISE_DIM, print_every=100, show_every=500, max_steps=None):
    """Train D and G with one D step and one G step per batch; return the loss history.

    ``images`` is a float32 array [N, 784] in [-1, 1]. Losses are printed every
    ``print_every`` steps and a grid of samples is shown every ``show_every`` steps.
    """

    @tf.function
    def train_step(real, z):
        with tf.GradientTape() as tape:
            d_loss, _ = loss_fn(D(real, training=True), D(G(z, training=True), training=True))
        D_solver.apply_gradients(
            zip(tape.gradient(d_loss, D.trainable_variables), D.trainable_variables)
        )
        with tf.GradientTape() as tape:
            _, g_loss = loss_fn(D(real, training=True), D(G(z, training=True), training=True))
        G_solver.apply_gradients(
            zip(tape.gradient(g_loss, G.trainable_variables), G.trainable_variables)
        )
        return d_loss, g_loss

    fixed_noise = sample_noise(16, noise_dim)
    history = []
    step = 0
    for epoch in range(num_epochs):
        order = np.random.permutation(len(images))
        for start in range(0, len(images) - batch_size + 1, batch_size):
            if max_steps is not None and step >= max_steps:
                return history
            real = images[order[start:start + batch_size]]
            d_loss, g_loss = train_step(real, sample_noise(batch_size, noise_dim))
            history.append((float(d_loss), float(g_loss)))
            if step % print_every == 0:
                print(f"epoch {epoch} step {step}: D loss {d_loss:.4f}, G loss {g_loss:.4f}")
            if show_every and step % show_every == 0:
                show_images(G(fixed_noise, training=False), title=f"step {step}")
            step += 1
    return history


# Answers to the derivations, checked numerically by the grader (Problems 1 and 2).


def vae_kl(mu, log_var):
    """Per-example KL(N(mu, exp(log_var)) || N(0, I)) for arrays [N, k]; returns [N]."""
    # BEGIN SOLUTION
    mu, log_var = np.asarray(mu, dtype=np.float64), np.asarray(log_var, dtype=np.float64)
    return -0.5 * np.sum(1.0 + log_var - mu**2 - np.exp(log_var), axis=-1)
    # END SOLUTION


def optimal_d_gan(p_data, p_model):
    """The discriminator output that maximises the GAN objective at each point."""
    # BEGIN SOLUTION
    p_data, p_model = np.asarray(p_data, dtype=np.float64), np.asarray(p_model, dtype=np.float64)
    return p_data / (p_data + p_model)
    # END SOLUTION


def optimal_d_lsgan(p_data, p_model, a=-1.0, b=1.0):
    """The discriminator output that minimises the LSGAN objective (fake -> a, real -> b)."""
    # BEGIN SOLUTION
    p_data, p_model = np.asarray(p_data, dtype=np.float64), np.asarray(p_model, dtype=np.float64)
    return (b * p_data + a * p_model) / (p_data + p_model)
    # END SOLUTION
