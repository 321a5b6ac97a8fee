"""Probe a notebook's units: draw hidden inputs, run them in the kernel, bring back raw outputs.

The grader decides every input here, from a seeded generator, and the kernel only calls
the student's functions on them (see ``kernel_probe``). What comes back is raw data in an
``Observation``; ``score`` turns observations into points.
"""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from grader.execute import KernelSession
from grader.load import read_exchanged

PROBE_MODULE = "_hw4grade_probe"
TRAIN_MODULE = "_hw4grade_train"
PROBE_TF1_MODULE = "_hw4grade_probe_tf1"
REFERENCE_MODULE = "_hw4grade_reference"
MODEL_ITEMS = {  # item -> (the notebook function that builds it, whether it takes noise)
    "discriminator": ("discriminator", False),
    "generator": ("generator", True),
    "dc_discriminator": ("dc_discriminator", False),
    "dc_generator": ("dc_generator", True),
}


@dataclass
class Observation:
    """Raw facts about one unit: the calls made (inputs) and what the student's code returned."""

    item: str
    calls: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[Any] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


class Prober:
    """Send calls into a kernel session and read back the raw results."""

    def __init__(self, session: KernelSession, private_dir: Path, timeout: float = 120.0,
                 profile: str = "tf2"):
        self.session = session
        self.profile = profile
        self.dir = Path(private_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.timeout = timeout
        self.patched: set[str] = set()
        self.installed: dict[str, str] = {}
        self._install_all()

    def install(self, module_name: str, source: str) -> None:
        """Run ``source`` as a private module ``module_name`` in the kernel (kept on restarts)."""
        code = (
            "import sys as _s, types as _t\n"
            f"_m = _t.ModuleType({module_name!r})\n"
            f"_s.modules[{module_name!r}] = _m\n"
            f"exec(compile({source!r}, '<{module_name}>', 'exec'), _m.__dict__)\n"
            "del _s, _t, _m\n"
        )
        run, _ = self.session.run_code(code, timeout=120)
        if run.status != "ok":
            raise RuntimeError(f"could not install {module_name} in the kernel: "
                               f"{run.error_message}")
        self.installed[module_name] = source

    def _install_all(self) -> None:
        run, _ = self.session.run_code(
            "__import__('sys').modules['_hw4grade_kernel'].end_notebook()", timeout=30)
        if run.status != "ok":
            raise RuntimeError(f"could not reach the kernel's prelude: {run.error_message}")
        modules = {PROBE_MODULE: "kernel_probe.py", TRAIN_MODULE: "kernel_train.py"}
        if self.profile == "tf1":  # graph-mode actions and training loop
            modules.update({TRAIN_MODULE: "kernel_train_tf1.py",
                            PROBE_TF1_MODULE: "kernel_probe_tf1.py"})
        for module_name, file_name in modules.items():
            source = Path(__file__).with_name(file_name).read_text(encoding="utf-8")
            self.install(module_name, source)

    def request(self, calls: list[dict[str, Any]], inputs: dict[str, np.ndarray],
                timeout: float | None = None) -> list[dict[str, Any]]:
        """Run ``calls`` in the kernel; return one raw outcome per call.

        When the kernel hangs, dies or loses the connection, every call gets an outcome of
        kind ``error`` that says so, and the session is restarted for the next request.
        """
        token = uuid.uuid4().hex[:12]
        inputs_path = self.dir / f"in-{token}.npz"
        request_path = self.dir / f"req-{token}.json"
        response = self.dir / f"out-{token}"
        # the kernel may write into this folder: create, never follow what it may have put
        # at these names (mode "x" fails on an existing name, a link included)
        with open(inputs_path, "xb") as stream:
            np.savez(stream, **inputs)
        with open(request_path, "x", encoding="utf-8") as stream:
            stream.write(json.dumps({"inputs": str(inputs_path), "calls": calls}))
        run, _ = self.session.run_code(
            f"__import__('sys').modules[{PROBE_MODULE!r}].serve({str(request_path)!r}, "
            f"{str(response)!r})", timeout=timeout or self.timeout)
        if run.status in ("memory", "died"):
            self._reinstall_after_restart()
        if run.status != "ok":
            reason = {"timeout": "did not finish in time", "memory": "used too much memory",
                      "died": "crashed the kernel"}.get(run.status, run.error_message or "failed")
            return [{"kind": "error", "error": f"the call {reason}"} for _ in calls]
        return self._read(response)

    def _reinstall_after_restart(self) -> None:
        self.session.replay()
        extra = {name: source for name, source in self.installed.items()
                 if name not in (PROBE_MODULE, TRAIN_MODULE, PROBE_TF1_MODULE)}
        self._install_all()
        for module_name, source in extra.items():
            self.install(module_name, source)

    def _read(self, response: Path) -> list[dict[str, Any]]:
        # the kernel wrote these: read without following links, regular files only
        meta = json.loads(read_exchanged(f"{response}.json"))
        self.patched.update(meta.get("patched", []))
        with np.load(io.BytesIO(read_exchanged(f"{response}.npz")), allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        return [_attach(outcome, arrays) for outcome in meta["results"]]


def _attach(outcome: dict[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    if outcome.get("kind") == "array":
        outcome["array"] = arrays[outcome["key"]]
    for item in outcome.get("items", []) or []:
        if isinstance(item, dict):
            _attach(item, arrays)
    if isinstance(outcome.get("output"), dict):
        _attach(outcome["output"], arrays)
    return outcome


def _tensor(key: str) -> dict[str, Any]:
    return {"input": key, "tensor": True}


def _array(key: str) -> dict[str, Any]:
    return {"input": key, "tensor": False}


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


def probe_leaky_relu(prober: Prober, rng: np.random.Generator) -> Observation:
    """Several shapes and alphas, including the default alpha."""
    cases = leaky_relu_inputs(rng)
    inputs, calls = {}, []
    for index, (x, alpha) in enumerate(cases):
        inputs[f"x{index}"] = x
        kwargs = {} if alpha is None else {"alpha": alpha}
        calls.append({"action": "call", "function": "leaky_relu", "args": [_tensor(f"x{index}")],
                      "kwargs": kwargs})
    outputs = prober.request(calls, inputs)
    return Observation("leaky_relu", calls=[{"x": x, "alpha": alpha} for x, alpha in cases],
                       outputs=outputs)


def probe_sample_noise(prober: Prober, rng: np.random.Generator) -> Observation:
    """Two calls with the same small shape (freshness) and one large call (distribution)."""
    batch, dim = int(rng.integers(20, 70)), int(rng.integers(3, 17))
    sizes = [(batch, dim), (batch, dim), (2000, 96)]
    calls = [{"action": "call", "function": "sample_noise", "args": [b, d]} for b, d in sizes]
    if prober.profile == "tf1":  # graph mode: the same tensor must give new noise per run
        calls[1]["again"] = True
    outputs = prober.request(calls, {})
    return Observation("sample_noise", calls=[{"shape": s} for s in sizes], outputs=outputs)


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


def _loss_inputs(rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
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


def probe_loss(prober: Prober, rng: np.random.Generator, item: str) -> Observation:
    """``gan_loss`` or ``lsgan_loss`` on unequal batches, moderate to extreme scores."""
    pairs = _loss_inputs(rng)
    inputs = {}
    calls = []
    for index, (real, fake) in enumerate(pairs):
        inputs[f"real{index}"], inputs[f"fake{index}"] = real, fake
        calls.append({"action": "call", "function": item,
                      "args": [_tensor(f"real{index}"), _tensor(f"fake{index}")]})
    outputs = prober.request(calls, inputs)
    return Observation(item, calls=[{"real": r, "fake": f} for r, f in pairs], outputs=outputs)


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


def probe_get_solvers(prober: Prober, rng: np.random.Generator) -> Observation:
    """Call with drawn, non-default settings and with the defaults."""
    settings = solver_settings(rng)
    calls = [{"action": "solvers", "function": "get_solvers", "kwargs": settings},
             {"action": "solvers", "function": "get_solvers", "kwargs": {}}]
    outputs = prober.request(calls, {})
    return Observation("get_solvers", calls=[settings, {}], outputs=outputs)


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


def probe_model(prober: Prober, rng: np.random.Generator, item: str, oracle) -> Observation:
    """Build the student's model, read its variables, then run it with the reference weights."""
    builder, takes_noise = MODEL_ITEMS[item]
    kwargs = {"noise_dim": draw_noise_dim(rng)} if takes_noise else {}
    width = kwargs.get("noise_dim", 784)
    batch = int(rng.integers(5, 40))
    x = rng.uniform(-1, 1, size=(batch, width)).astype(np.float32)
    slot = f"{item}-{uuid.uuid4().hex[:6]}"
    built = prober.request([{"action": "build_model", "function": builder, "kwargs": kwargs,
                             "input": "x", "slot": slot}], {"x": x})[0]
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
    ran = prober.request([{"action": "run_model", "slot": slot, "assign": assign, "input": "x",
                           "training": True}], inputs)[0]
    observation.calls.append({"kwargs": kwargs, "x": probe_x, "weights": reference_weights})
    observation.outputs.append(ran)
    return observation


def probe_theory(prober: Prober, rng: np.random.Generator, item: str) -> Observation:
    """The derivation answers (numpy in, numpy out) on the oracle's drawn cases."""
    from grader import theory_oracle

    cases = theory_oracle.draw_inputs(item, rng)
    inputs, calls = {}, []
    for index, case in enumerate(cases):
        kwargs = {}
        for name, value in case.kwargs.items():
            if isinstance(value, np.ndarray):
                inputs[f"c{index}_{name}"] = value
                kwargs[name] = _array(f"c{index}_{name}")
            else:
                kwargs[name] = value
        calls.append({"action": "call", "function": item, "kwargs": kwargs})
    outputs = prober.request(calls, inputs)
    return Observation(item, calls=[{"case": case} for case in cases], outputs=outputs)
