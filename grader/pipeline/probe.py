"""Probe a notebook's units: draw hidden inputs, run them in the kernel, bring back raw outputs.

The grader decides every input here, from a seeded generator, and the kernel only calls
the student's functions on them (see ``grader.kernel.probe``). What comes back is raw data
in an ``Observation``; ``score`` turns observations into points.
"""

from __future__ import annotations

import uuid

import numpy as np

from grader.items import ItemSpec
from grader.kernel.wire import (
    array_input,
    build_model_spec,
    call_spec,
    run_model_spec,
    solvers_spec,
    tensor_input,
)
from grader.pipeline.prober import Observation, Prober

# -- hidden inputs and calls, one function per unit ------------------------------------------


def leaky_relu_inputs(rng: np.random.Generator) -> list[tuple[np.ndarray, float | None]]:
    """Three (x, alpha) cases: the default alpha and two passed in, of three shapes.

    Every x holds a zero, negative and positive values, and no drawn alpha is near the
    default 0.01, so a wrong slope or an ignored alpha fails the same cases at every seed.
    """
    shapes = [(int(rng.integers(20, 60)),), (int(rng.integers(3, 9)), int(rng.integers(5, 12))),
              (2, int(rng.integers(2, 6)), int(rng.integers(3, 7)))]
    alphas = [None, float(np.round(rng.uniform(0.1, 0.3), 3)),
              float(np.round(rng.uniform(0.4, 0.9), 3))]
    cases = []
    for shape, alpha in zip(shapes, alphas):
        x = (rng.normal(size=shape) * 5).astype(np.float32)
        x.flat[0] = 0.0
        x.flat[1] = -abs(x.flat[1]) - 0.5
        x.flat[2] = abs(x.flat[2]) + 0.5
        cases.append((x, alpha))
    return cases


def probe_leaky_relu(prober: Prober, rng: np.random.Generator, spec: ItemSpec) -> Observation:
    """Several shapes and alphas, including the default alpha."""
    cases = leaky_relu_inputs(rng)
    inputs, calls = {}, []
    for index, (x, alpha) in enumerate(cases):
        inputs[f"x{index}"] = x
        kwargs = {} if alpha is None else {"alpha": alpha}
        calls.append(call_spec(spec.function, args=[tensor_input(f"x{index}")], kwargs=kwargs))
    outputs = prober.request(calls, inputs)
    return Observation(spec.id, calls=[{"x": x, "alpha": alpha} for x, alpha in cases],
                       outputs=outputs)


def probe_sample_noise(prober: Prober, rng: np.random.Generator, spec: ItemSpec) -> Observation:
    """Two calls with the same small shape (freshness) and one large call (distribution)."""
    batch, dim = int(rng.integers(20, 70)), int(rng.integers(3, 17))
    sizes = [(batch, dim), (batch, dim), (2000, 96)]
    calls = [call_spec(spec.function, args=[b, d]) for b, d in sizes]
    if prober.framework.reruns_tensors:  # graph mode: the same tensor must give new noise per run
        calls[1]["again"] = True
    outputs = prober.request(calls, {})
    return Observation(spec.id, calls=[{"shape": s} for s in sizes], outputs=outputs)


# The three loss cases: the scale of the scores, their clip, whether the real batch is the
# smaller one, and (mean, spread) of the real and of the fake scores in units of the scale.
# Moderate and wide scores stay where even sigmoid-then-log in float32 is accurate (|s| <= 7:
# its rounding error stays below the tolerance); the extreme case always holds +-100 in both
# batches, where that form gives inf. So a naive loss fails the extreme case at every seed,
# and no other.
LOSS_CASE_DRAWS = ((1.0, 4.0, True, (1.0, 0.5), (0.0, 1.0)),
                   (3.0, 7.0, False, (1.5, 1.0), (0.0, 0.5)),
                   (100.0, 100.0, True, (0.5, 0.5), (-0.25, 0.3)))
LOSS_SIZE_RATIO = 2  # the larger batch is at least this many times the smaller one
LOSS_TERM_GAP = 0.1  # the real and fake terms' means differ by at least this fraction


def _term_means(real: np.ndarray, fake: np.ndarray) -> list[tuple[float, float]]:
    """Pairs of per-batch means a mistake could confuse: the GAN and LSGAN terms of D for the
    real and the fake batch, and the G term computed from either batch."""
    r, f = real.astype(np.float64).ravel(), fake.astype(np.float64).ravel()
    softplus = lambda v: np.logaddexp(0.0, v)  # noqa: E731 - -log sigmoid(-v)
    return [(softplus(-r).mean(), softplus(f).mean()),
            (((r - 1) ** 2).mean(), (f ** 2).mean()),
            (softplus(-r).mean(), softplus(-f).mean()),
            (((r - 1) ** 2).mean(), ((f - 1) ** 2).mean()),
            (r.mean(), f.mean())]


def loss_case_separates(real: np.ndarray, fake: np.ndarray) -> bool:
    """True when the batches have sizes in a ratio of LOSS_SIZE_RATIO or more and every pair
    of ``_term_means`` differs by LOSS_TERM_GAP of its size: then averaging the two batches
    together, swapping them or taking G from the real batch is wrong by far more than the
    tolerance, whatever the drawn values."""
    small, large = sorted((len(real), len(fake)))
    if large < LOSS_SIZE_RATIO * small:
        return False
    return all(abs(a - b) >= LOSS_TERM_GAP * max(abs(a) + abs(b), 1.0)
               for a, b in _term_means(real, fake))


def loss_inputs(rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """Real and fake scores of unequal batch sizes: moderate, wide, and extreme (+-100).

    Only the values depend on the seed; which mistakes each case exposes does not (see
    ``LOSS_CASE_DRAWS`` and ``loss_case_separates``). Real scores lean positive, as a
    discriminator's do; a draw that does not separate is drawn again (rarely).
    """
    pairs = []
    for scale, clip, real_smaller, (real_loc, real_sd), (fake_loc, fake_sd) in LOSS_CASE_DRAWS:
        while True:
            n_small = int(rng.integers(8, 21))
            n_large = int(rng.integers(max(41, LOSS_SIZE_RATIO * n_small), 91))
            n_real, n_fake = (n_small, n_large) if real_smaller else (n_large, n_small)
            real = rng.normal(real_loc * scale, real_sd * scale, size=(n_real, 1))
            fake = rng.normal(fake_loc * scale, fake_sd * scale, size=(n_fake, 1))
            real, fake = np.clip(real, -clip, clip), np.clip(fake, -clip, clip)
            if scale == 100.0:
                real[:2, 0], fake[:2, 0] = [100.0, -100.0], [-100.0, 100.0]
            real, fake = real.astype(np.float32), fake.astype(np.float32)
            if loss_case_separates(real, fake):
                break
        pairs.append((real, fake))
    return pairs


def probe_loss(prober: Prober, rng: np.random.Generator, spec: ItemSpec) -> Observation:
    """``gan_loss`` or ``lsgan_loss`` on unequal batches, moderate to extreme scores."""
    pairs = loss_inputs(rng)
    inputs = {}
    calls = []
    for index, (real, fake) in enumerate(pairs):
        inputs[f"real{index}"], inputs[f"fake{index}"] = real, fake
        calls.append(call_spec(spec.function,
                               args=[tensor_input(f"real{index}"), tensor_input(f"fake{index}")]))
    outputs = prober.request(calls, inputs)
    return Observation(spec.id, calls=[{"real": r, "fake": f} for r, f in pairs], outputs=outputs)


def solver_settings(rng: np.random.Generator) -> dict[str, float]:
    """A learning rate and beta1 for ``get_solvers``, never near a value code might hard-code.

    The learning rate has three significant digits, the last not 0 (so never 1e-3, 2e-4,
    2.5e-4 ...) and stays below 7e-4; beta1 lies in [0.1, 0.4] (never 0, 0.5 or 0.9).
    """
    while True:
        learning_rate = float(f"{10 ** rng.uniform(-4.5, -3.15):.3g}")
        if round(learning_rate / 10 ** np.floor(np.log10(learning_rate)) * 100) % 10:
            break
    return {"learning_rate": learning_rate, "beta1": float(np.round(rng.uniform(0.1, 0.4), 2))}


def probe_get_solvers(prober: Prober, rng: np.random.Generator, spec: ItemSpec) -> Observation:
    """Call with drawn, non-default settings and with the defaults."""
    settings = solver_settings(rng)
    calls = [solvers_spec(spec.function, settings), solvers_spec(spec.function, {})]
    outputs = prober.request(calls, {})
    return Observation(spec.id, calls=[settings, {}], outputs=outputs)


def match_variables(reference_shapes: list[tuple[int, ...]],
                    student_shapes: list[tuple[int, ...]]) -> list[int] | None:
    """For each reference variable, the index of the student's variable that takes its value.

    Variables are matched by shape in order; None when some reference variable has no
    partner or the student's model has variables left over.
    """
    used: set[int] = set()
    mapping = []
    for shape in reference_shapes:
        partner = next((i for i, s in enumerate(student_shapes)
                        if i not in used and tuple(s) == tuple(shape)), None)
        if partner is None:
            return None
        used.add(partner)
        mapping.append(partner)
    return mapping if len(used) == len(student_shapes) else None


def draw_noise_dim(rng: np.random.Generator) -> int:
    """The noise dimension a generator is built with: 5 to 12, never the 4 of the notebook's
    own parameter check nor the 96 of its training (a hard-coded one fails at every seed)."""
    return int(rng.integers(5, 13))


def probe_model(prober: Prober, rng: np.random.Generator, spec: ItemSpec, oracle) -> Observation:
    """Build the student's model, read its variables, then run it with the reference weights."""
    item, builder, takes_noise = spec.id, spec.function, spec.takes_noise
    kwargs = {"noise_dim": draw_noise_dim(rng)} if takes_noise else {}
    width = kwargs.get("noise_dim", 784)
    batch = int(rng.integers(5, 40))  # drawn always, so the draws after it stay the same
    if prober.framework.probe_batch:  # a framework whose networks may be tied to one batch
        batch = prober.framework.probe_batch
    x = rng.uniform(-1, 1, size=(batch, width)).astype(np.float32)
    slot = f"{item}-{uuid.uuid4().hex[:6]}"
    built = prober.request([build_model_spec(builder, kwargs, "x", slot)], {"x": x})[0]
    observation = Observation(item, calls=[{"kwargs": kwargs, "x": x}], outputs=[built])
    if built.get("kind") != "model":
        return observation
    reference_weights = oracle.model_weights(item, kwargs, rng)
    student_shapes = [tuple(v["shape"]) for v in built["variables"]]
    mapping = match_variables([w.shape for w in reference_weights], student_shapes)
    observation.info["mapping"] = mapping
    if mapping is None:
        return observation
    probe_x = (rng.uniform(-1, 1, size=(batch, width)) * (3.0 if takes_noise else 1.0)
               ).astype(np.float32)
    inputs = {"x": probe_x, **{f"w{i}": w for i, w in enumerate(reference_weights)}}
    assign = [[student_index, f"w{i}"] for i, student_index in enumerate(mapping)]
    ran = prober.request([run_model_spec(slot, assign, "x", training=True)], inputs)[0]
    observation.calls.append({"kwargs": kwargs, "x": probe_x, "weights": reference_weights})
    observation.outputs.append(ran)
    return observation


def probe_theory(prober: Prober, rng: np.random.Generator, spec: ItemSpec) -> Observation:
    """The derivation answers (numpy in, numpy out) on the oracle's drawn cases."""
    from grader.oracles import theory as theory_oracle

    cases = theory_oracle.draw_inputs(spec.id, rng)
    inputs, calls = {}, []
    for index, case in enumerate(cases):
        kwargs = {}
        for name, value in case.kwargs.items():
            if isinstance(value, np.ndarray):
                inputs[f"c{index}_{name}"] = value
                kwargs[name] = array_input(f"c{index}_{name}")
            else:
                kwargs[name] = value
        calls.append(call_spec(spec.function, kwargs=kwargs))
    outputs = prober.request(calls, inputs)
    return Observation(spec.id, calls=[{"case": case} for case in cases], outputs=outputs)
