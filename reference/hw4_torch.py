"""The instructor's solution to Problem 3 in PyTorch: Vanilla GAN, LSGAN and DCGAN on MNIST.

The functions keep the names and signatures of the course's PyTorch edition (2020 on):
``seed=None`` where the course has it, ``build_dc_classifier(batch_size)``. The code
between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` is what the template generator
removes; everything else reaches students as is. This module is also the single source
of the PyTorch solution notebook's code cells (``reference/build_notebook_torch.py``).

Discriminators take images as ``(N, 1, 28, 28)`` (what the data loader gives) or as
``(N, 784)``; every network returns ``(N, 1)`` logits or ``(N, 784)`` images. Batch norm
stays in training mode throughout, as the course's training loop never calls ``.eval()``.
"""

import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

NOISE_DIM = 96


def show_images(images, title=None):
    """Show a square grid of 28x28 images (any shape with 784 values each) in [-1, 1]."""
    images = np.asarray(images, dtype=np.float32).reshape(len(images), 28, 28)
    side = math.ceil(math.sqrt(len(images)))
    fig, axes = plt.subplots(side, side, figsize=(side * 0.6, side * 0.6))
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, image in zip(np.ravel(axes), images):
        ax.imshow((image + 1) / 2, cmap="gray", vmin=0, vmax=1)
    if title:
        fig.suptitle(title)
    plt.show()


def count_params(model):
    """The number of trainable values of a model (batch norm statistics not included)."""
    return sum(p.numel() for p in model.parameters())


def sample_noise(batch_size, dim, seed=None):
    """Uniform noise on [-1, 1], a float32 tensor of shape (batch_size, dim)."""
    if seed is not None:
        torch.manual_seed(seed)
    # BEGIN SOLUTION
    return 2 * torch.rand(batch_size, dim) - 1
    # END SOLUTION


def discriminator(seed=None):
    """MLP discriminator: images -> (N, 1) logits (267,009 parameters)."""
    if seed is not None:
        torch.manual_seed(seed)
    # BEGIN SOLUTION
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 256),
        nn.LeakyReLU(0.01),
        nn.Linear(256, 256),
        nn.LeakyReLU(0.01),
        nn.Linear(256, 1),
    )
    # END SOLUTION


def generator(noise_dim=NOISE_DIM, seed=None):
    """MLP generator: (N, noise_dim) noise -> (N, 784) images in [-1, 1]."""
    if seed is not None:
        torch.manual_seed(seed)
    # BEGIN SOLUTION
    return nn.Sequential(
        nn.Linear(noise_dim, 1024),
        nn.ReLU(),
        nn.Linear(1024, 1024),
        nn.ReLU(),
        nn.Linear(1024, 784),
        nn.Tanh(),
    )
    # END SOLUTION


def bce_loss(input, target):
    """Mean binary cross-entropy of logits ``input`` against labels ``target``, written so
    that it stays finite for large logits: max(x, 0) - x * t + log(1 + exp(-|x|))."""
    loss = input.clamp(min=0) - input * target + torch.log1p(torch.exp(-input.abs()))
    return loss.mean()


def discriminator_loss(logits_real, logits_fake):
    """Mean BCE of the real logits against 1 plus mean BCE of the fake logits against 0."""
    # BEGIN SOLUTION
    real = bce_loss(logits_real, torch.ones_like(logits_real))
    fake = bce_loss(logits_fake, torch.zeros_like(logits_fake))
    return real + fake
    # END SOLUTION


def generator_loss(logits_fake):
    """The non-saturating generator loss: mean BCE of the fake logits against 1."""
    # BEGIN SOLUTION
    return bce_loss(logits_fake, torch.ones_like(logits_fake))
    # END SOLUTION


def get_optimizer(model):
    """Adam over the model's parameters with lr 1e-3 and betas (0.5, 0.999)."""
    # BEGIN SOLUTION
    return torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.999))
    # END SOLUTION


def ls_discriminator_loss(scores_real, scores_fake):
    """1/2 mean((D(x) - 1)^2) + 1/2 mean(D(G(z))^2), each mean over its own batch."""
    # BEGIN SOLUTION
    return 0.5 * torch.mean((scores_real - 1) ** 2) + 0.5 * torch.mean(scores_fake ** 2)
    # END SOLUTION


def ls_generator_loss(scores_fake):
    """1/2 mean((D(G(z)) - 1)^2)."""
    # BEGIN SOLUTION
    return 0.5 * torch.mean((scores_fake - 1) ** 2)
    # END SOLUTION


def build_dc_classifier(batch_size=128):
    """Convolutional discriminator: images -> (N, 1) logits (1,102,721 parameters).

    ``batch_size`` is the course's argument; a network that works for any batch ignores it.
    """
    # BEGIN SOLUTION
    return nn.Sequential(
        nn.Flatten(),  # (N, 784) whether the images come flat or as (N, 1, 28, 28)
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 32, kernel_size=5),
        nn.LeakyReLU(0.01),
        nn.MaxPool2d(2, stride=2),
        nn.Conv2d(32, 64, kernel_size=5),
        nn.LeakyReLU(0.01),
        nn.MaxPool2d(2, stride=2),
        nn.Flatten(),
        nn.Linear(4 * 4 * 64, 1024),
        nn.LeakyReLU(0.01),
        nn.Linear(1024, 1),
    )
    # END SOLUTION


def build_dc_generator(noise_dim=NOISE_DIM):
    """Convolutional generator: (N, noise_dim) noise -> (N, 784) images in [-1, 1]."""
    # BEGIN SOLUTION
    return nn.Sequential(
        nn.Linear(noise_dim, 1024),
        nn.ReLU(),
        nn.BatchNorm1d(1024),
        nn.Linear(1024, 7 * 7 * 128),
        nn.ReLU(),
        nn.BatchNorm1d(7 * 7 * 128),
        nn.Unflatten(1, (128, 7, 7)),
        nn.ConvTranspose2d(128, 64, kernel_size=4, stride=2, padding=1),
        nn.ReLU(),
        nn.BatchNorm2d(64),
        nn.ConvTranspose2d(64, 1, kernel_size=4, stride=2, padding=1),
        nn.Tanh(),
        nn.Flatten(),
    )
    # END SOLUTION


def run_a_gan(D, G, D_solver, G_solver, discriminator_loss, generator_loss, loader_train,
              show_every=250, batch_size=128, noise_size=NOISE_DIM, num_epochs=10,
              max_steps=None):
    """Train D and G with one D step and one G step per batch; return the loss history.

    ``loader_train`` yields (images, labels) with images in [0, 1]; they are scaled to
    [-1, 1] here. Samples are shown every ``show_every`` steps.
    """
    history, step = [], 0
    for epoch in range(num_epochs):
        for x, _ in loader_train:
            if len(x) != batch_size:
                continue
            if max_steps is not None and step >= max_steps:
                return history
            real = 2 * x - 1
            D_solver.zero_grad()
            fake = G(sample_noise(batch_size, noise_size)).detach()
            d_loss = discriminator_loss(D(real), D(fake.view(batch_size, 1, 28, 28)))
            d_loss.backward()
            D_solver.step()

            G_solver.zero_grad()
            fake = G(sample_noise(batch_size, noise_size))
            g_loss = generator_loss(D(fake.view(batch_size, 1, 28, 28)))
            g_loss.backward()
            G_solver.step()

            history.append((d_loss.item(), g_loss.item()))
            if show_every and step % show_every == 0:
                print(f"epoch {epoch} step {step}: D loss {d_loss.item():.4f}, "
                      f"G loss {g_loss.item():.4f}")
                show_images(fake[:16].detach().cpu().numpy(), title=f"step {step}")
            step += 1
    return history
