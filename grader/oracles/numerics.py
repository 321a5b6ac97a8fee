"""Numerical optima and integrals that stand in for the theory problems' answers.

Nothing here is a solution: each function computes its number from a definition (the
objective a discriminator optimises, the integral that defines a KL divergence) with
scipy, never from a closed form. The grader's theory oracle (``grader.oracles.theory``)
judges the students' formulas against these numbers, so it works in a student's install
without the instructor's ``reference`` package; ``reference.theory`` imports them too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy import integrate, optimize, special

BRENT_XATOL = 1e-12  # absolute resolution asked of the bounded Brent searches
KL_QUAD_HALF_WIDTH = 40.0  # integrate the standardised variable over [-40, 40]


def gan_pointwise_value(d: np.ndarray, p_data: float, p_model: float) -> np.ndarray:
    """``pd log D + pm log(1 - D)``, the GAN discriminator objective at one x (maximised)."""
    return special.xlogy(p_data, d) + special.xlog1py(p_model, -d)


def lsgan_pointwise_loss(
    d: np.ndarray, p_data: float, p_model: float, a: float, b: float
) -> np.ndarray:
    """``1/2 pd (D - b)^2 + 1/2 pm (D - a)^2``, the LSGAN discriminator loss at one x."""
    return 0.5 * p_data * (d - b) ** 2 + 0.5 * p_model * (d - a) ** 2


def _normalised(p_data: float, p_model: float) -> tuple[float, float]:
    """Both densities divided by the larger one.

    A positive factor in front of an objective does not move its optimum, and values of
    order one keep the search clear of underflow and overflow.
    """
    scale = max(p_data, p_model)
    return p_data / scale, p_model / scale


def argmax_gan_pointwise(p_data: float, p_model: float) -> float:
    """The D in [0, 1] that maximises the GAN objective at one x, by bounded Brent."""
    pd, pm = _normalised(p_data, p_model)
    found = optimize.minimize_scalar(
        lambda d: -gan_pointwise_value(d, pd, pm),
        bounds=(0.0, 1.0),
        method="bounded",
        options={"xatol": BRENT_XATOL},
    )
    return float(found.x)


def argmin_lsgan_pointwise(p_data: float, p_model: float, a: float, b: float) -> float:
    """The D that minimises the LSGAN loss at one x, by bounded Brent on a wide interval."""
    pd, pm = _normalised(p_data, p_model)
    found = optimize.minimize_scalar(
        lambda d: lsgan_pointwise_loss(d, pd, pm, a, b),
        bounds=(min(a, b) - 1.0, max(a, b) + 1.0),
        method="bounded",
        options={"xatol": BRENT_XATOL},
    )
    return float(found.x)


def normal_logpdf(x: ArrayLike, mean: ArrayLike, sd: ArrayLike) -> np.ndarray:
    """Log density of N(mean, sd^2), elementwise."""
    z = (x - mean) / sd
    return -0.5 * z * z - np.log(sd) - 0.5 * math.log(2.0 * math.pi)


def kl_to_standard_normal_quad(mu: Sequence[float], log_var: Sequence[float]) -> float:
    """KL(N(mu, diag var) || N(0, I)) by ``quad`` of q log(q / p), one dimension at a time.

    The integral runs over the standardised variable ``t`` with ``z = mu + sd * t`` (so that
    ``q(z) dz = phi(t) dt``), which keeps it well scaled for tiny and huge variances alike.
    """
    total = 0.0
    for m, lv in zip(mu, log_var):
        sd = math.exp(0.5 * lv)

        def integrand(t: float, m: float = m, sd: float = sd) -> float:
            z = m + sd * t
            weight = math.exp(normal_logpdf(t, 0.0, 1.0))
            return weight * (normal_logpdf(z, m, sd) - normal_logpdf(z, 0.0, 1.0))

        value, _ = integrate.quad(
            integrand,
            -KL_QUAD_HALF_WIDTH,
            KL_QUAD_HALF_WIDTH,
            points=[0.0],
            limit=200,
            epsabs=1e-13,
            epsrel=1e-12,
        )
        total += value
    return total
