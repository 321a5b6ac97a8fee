"""The grader's GAN training loop for PyTorch notebooks, run in the kernel.

The counterpart of the TF2 loop (``tf2/train``) with the same ``TrainingSession``
interface. The parts are the torch probe's resolutions of the graded names:
``discriminator()`` and ``generator(noise_dim=...)`` build ``nn.Module``s, ``loss(real,
fake)`` returns the (D loss, G loss) pair, ``sample_noise(batch, dim)`` a tensor, and
``get_solvers(D, G)`` one optimizer per network (``get_optimizer`` of each).

A network's weights are listed as ``torch/layout`` lists them (the probe's convention:
layer by layer, its parameters, then batch norm's running mean and variance). Images come
in as ``[N, 784]`` in [-1, 1]. One D step and one G step
per batch, on one noise batch, as the TF2 loop does; batch norm stays in training mode, as
the course's loop never calls ``.eval()``. The networks, the images and the noise are on the
kernel's device (:func:`training_device`: the GPU when ``torch/setup`` kept real CUDA).
"""

import sys
import time

import numpy as np

MODULES: dict = {}  # replaced by the loader: kernel file -> its module name in the kernel
ROLES = ("generator", "discriminator")


def _entries(network) -> list:
    """``(name, tensor)`` of every weight of ``network``, in the listing's order."""
    listing = sys.modules[MODULES["torch/layout"]].listing
    return [(path, tensor) for path, tensor, _, _ in listing(network)]


def training_device() -> str:
    """Where the networks train: ``torch/setup``'s ``DEVICE`` (``"cuda"`` in a kernel that
    runs on a GPU), the CPU where the set-up did not run (reference runs in the grader)."""
    setup = sys.modules.get(MODULES.get("torch/setup", ""))
    return getattr(setup, "DEVICE", "cpu")


def _flat(value, torch):
    """A network output or noise as a float32 tensor of [N, -1] (on its own device)."""
    if not torch.is_tensor(value):
        value = torch.as_tensor(np.asarray(value))
    return value.float().reshape(value.shape[0], -1)


class TrainingSession:
    """D and G built from ``parts``, with their optimizers."""

    def __init__(self, parts: dict, seed: int, noise_dim: int = 96, batch: int = 128,
                 jit: bool = False, device: str | None = None) -> None:
        import torch

        self.parts, self.seed, self.noise_dim, self.batch = parts, seed, noise_dim, batch
        self.mode, self.steps = "eager", 0
        self.device = torch.device(device or training_device())
        torch.manual_seed(seed)
        self.D = parts["discriminator"]()
        self.G = parts["generator"](noise_dim=noise_dim)
        for network in (self.D, self.G):  # before the optimizers are made of them
            network.to(self.device).float().train()
        self.D_solver, self.G_solver = parts["get_solvers"](self.D, self.G)

    def _network(self, role: str):
        return self.G if role == "generator" else self.D

    def variables(self) -> dict:
        """``role -> [(shape, name), ...]`` of every weight of each network, in order."""
        return {role: [([int(d) for d in value.shape], name)
                       for name, value in _entries(self._network(role))] for role in ROLES}

    def assign(self, role: str, values: dict) -> None:
        """Set the weights of ``role``'s network at these positions (position -> array)."""
        import torch

        entries = _entries(self._network(role))
        with torch.no_grad():
            for position, value in values.items():
                target = entries[position][1]
                target.copy_(torch.as_tensor(np.asarray(value)).to(target.dtype))

    def values(self, role: str) -> list:
        """The current values of every weight of ``role``'s network, in order."""
        return [value.detach().cpu().float().numpy().copy()
                for _, value in _entries(self._network(role))]

    def _step(self, real, z) -> tuple:
        import torch

        loss = self.parts["loss"]
        fake = self.G(z)
        d_loss, _ = loss(self.D(real), self.D(_flat(fake, torch).detach()))
        self.D_solver.zero_grad()
        torch.as_tensor(d_loss).sum().backward()
        self.D_solver.step()
        _, g_loss = loss(self.D(real), self.D(_flat(self.G(z), torch)))
        self.G_solver.zero_grad()
        torch.as_tensor(g_loss).sum().backward()
        self.G_solver.step()
        return (float(torch.as_tensor(d_loss).detach().sum()),
                float(torch.as_tensor(g_loss).detach().sum()))

    def run(self, images: np.ndarray, order: np.ndarray, max_seconds: float = 600.0) -> dict:
        """Train one step per row of ``order`` (indices into ``images``); return this chunk's
        losses ([steps, 2]), its step count and seconds (fewer steps when time ran out)."""
        import torch

        losses = []
        started = time.monotonic()
        for indices in order:
            real = torch.as_tensor(images[indices]).to(self.device)
            z = _flat(self.parts["sample_noise"](self.batch, self.noise_dim),
                      torch).to(self.device)
            losses.append(self._step(real, z))
            if time.monotonic() - started > max_seconds:
                break
        self.steps += len(losses)
        return {"losses": np.array(losses, dtype=np.float64).reshape(-1, 2),
                "steps": len(losses), "seconds": time.monotonic() - started}

    def sample(self, noise: np.ndarray) -> np.ndarray:
        """Samples of the generator for ``noise`` (training mode, as the course samples),
        flattened to [N, 784]."""
        import torch

        with torch.no_grad():
            return np.concatenate([
                _flat(self.G(torch.as_tensor(noise[start:start + 1000]).to(self.device)),
                      torch).cpu().numpy()
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
