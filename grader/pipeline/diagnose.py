"""Say *which* mistake a wrong answer is, computed by the grader on the same inputs.

* ``explain_loss``: a wrong ``gan_loss`` or ``lsgan_loss`` output is compared with the
  common mistakes (labels swapped, averaged once over both batches, summed instead of
  averaged, a missing 1/2, sigmoid then log), each computed here on the inputs the
  student's function received; the message names the one that matches, or says plainly
  that none does.
* ``first_layer_difference``: a model whose variables differ from the specification is
  described by the first layer (its position and kind in the specification) whose weights
  differ, with both shapes, and what the layer before it should output.

Pure functions of numpy arrays and shape lists, run in the grader's own process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

LOSS_RTOL, LOSS_ATOL = 1e-4, 1e-4
Loss = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class LossMistake:
    """One common mistake: its name, what to do instead, and the ways it is written for D
    and for G (empty where the mistake does not concern that output)."""

    name: str
    advice: str
    d_loss: tuple[Loss, ...] = ()
    g_loss: tuple[Loss, ...] = ()

    def formulas(self, label: str) -> tuple[Loss, ...]:
        """The forms of this mistake for ``label`` ("D_loss" or "G_loss")."""
        return self.d_loss if label == "D_loss" else self.g_loss


def _softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + exp(x)) without overflow, in float64."""
    x = np.asarray(x, np.float64)
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _naive_bce(x: np.ndarray, label: int) -> np.ndarray:
    """Binary cross-entropy written as sigmoid then log, in float32 as a notebook computes
    it: infinite where the sigmoid rounds to 0 or 1."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        p = (1 / (1 + np.exp(-np.asarray(x, np.float32)))).astype(np.float32)
        return -np.log(p) if label else -np.log(np.float32(1) - p)


def _both(real_terms: np.ndarray, fake_terms: np.ndarray) -> float:
    return float(np.mean(np.concatenate([real_terms.ravel(), fake_terms.ravel()])))


AVERAGE_APART = ("average each term over its own batch: the real and fake batches may have "
                 "different sizes")

GAN_MISTAKES = (
    LossMistake("the labels swapped (real scores labelled 0, fake ones 1)",
                "the discriminator labels real data 1 and generated data 0; the generator "
                "wants its samples labelled 1",
                (lambda r, f: float(np.mean(_softplus(r)) + np.mean(_softplus(-f))),),
                (lambda r, f: float(np.mean(_softplus(f))),)),
    LossMistake("the saturating generator loss (minus the discriminator's fake term)",
                "use the non-saturating form: cross-entropy of the fake scores with label 1",
                g_loss=(lambda r, f: float(-np.mean(_softplus(f))),)),
    LossMistake("one average over both batches together", AVERAGE_APART,
                d_loss=(lambda r, f: 2 * _both(_softplus(-r), _softplus(f)),
                        lambda r, f: _both(_softplus(-r), _softplus(f)))),
    LossMistake("sums instead of averages",
                "average over the batch (reduce_mean), do not sum",
                (lambda r, f: float(np.sum(_softplus(-r)) + np.sum(_softplus(f))),),
                (lambda r, f: float(np.sum(_softplus(-f))),)),
    LossMistake("a factor 1/2 on the discriminator loss",
                "the discriminator loss is the plain sum of the two averaged terms",
                d_loss=(lambda r, f: float(0.5 * (np.mean(_softplus(-r))
                                                  + np.mean(_softplus(f)))),)),
    LossMistake("sigmoid then log",
                "compute the cross-entropy from the logits "
                "(tf.nn.sigmoid_cross_entropy_with_logits), which stays finite for large scores",
                (lambda r, f: float(np.mean(_naive_bce(r, 1)) + np.mean(_naive_bce(f, 0))),),
                (lambda r, f: float(np.mean(_naive_bce(f, 1))),)),
)

LSGAN_MISTAKES = (
    LossMistake("the labels swapped (real scores pushed to 0, fake ones to 1)",
                "the discriminator pushes real scores to 1 and fake scores to 0; the "
                "generator pushes its scores to 1",
                (lambda r, f: float(0.5 * np.mean(r ** 2) + 0.5 * np.mean((f - 1) ** 2)),),
                (lambda r, f: float(0.5 * np.mean(f ** 2)),)),
    LossMistake("one average over both batches together", AVERAGE_APART,
                d_loss=(lambda r, f: _both((r - 1) ** 2, f ** 2),
                        lambda r, f: 0.5 * _both((r - 1) ** 2, f ** 2))),
    LossMistake("sums instead of averages",
                "average over the batch (reduce_mean), do not sum",
                (lambda r, f: float(0.5 * np.sum((r - 1) ** 2) + 0.5 * np.sum(f ** 2)),),
                (lambda r, f: float(0.5 * np.sum((f - 1) ** 2)),)),
    LossMistake("a missing factor 1/2",
                "each squared term is multiplied by 1/2",
                (lambda r, f: float(np.mean((r - 1) ** 2) + np.mean(f ** 2)),),
                (lambda r, f: float(np.mean((f - 1) ** 2)),)),
)

# by the form of the loss (``ItemSpec.form``)
MISTAKES = {"gan": GAN_MISTAKES, "lsgan": LSGAN_MISTAKES}


def _same(got: float, want: float) -> bool:
    if not (np.isfinite(got) and np.isfinite(want)):
        return bool(got == want) or bool(np.isnan(got) and np.isnan(want))
    return bool(np.isclose(got, want, rtol=LOSS_RTOL, atol=LOSS_ATOL))


def matching_mistakes(form: str, label: str, calls: Sequence[dict[str, Any]],
                      got: Sequence[float]) -> list[LossMistake]:
    """The mistakes of a loss of ``form`` ("gan" or "lsgan") whose ``label`` output
    ("D_loss" or "G_loss") equals the student's value in every call (``calls[i]['real']``,
    ``['fake']``, ``got[i]``)."""
    found = []
    for mistake in MISTAKES.get(form, ()):
        for formula in mistake.formulas(label):
            with np.errstate(all="ignore"):
                values = [formula(np.asarray(call["real"], np.float64),
                                  np.asarray(call["fake"], np.float64)) for call in calls]
            if len(values) == len(got) and all(_same(g, v) for g, v in zip(got, values)):
                found.append(mistake)
                break
    return found


def explain_loss(form: str, label: str, calls: Sequence[dict[str, Any]],
                 got: Sequence[float]) -> str:
    """A sentence on a wrong ``label`` output of a loss of ``form``: the common mistake it matches
    (with what to do instead), or that it matches none of those checked."""
    found = matching_mistakes(form, label, calls, got)
    if found:
        mistake = found[0]
        return f"{label} matches a common mistake, {mistake.name}: {mistake.advice}"
    checked = [m.name.split(" (")[0] for m in MISTAKES.get(form, ()) if m.formulas(label)]
    return (f"{label} matches none of the common mistakes the grader checks ("
            + "; ".join(checked) + "): compare it with the formula term by term")


def explain_losses(form: str, wrong: dict[str, tuple[Sequence[dict[str, Any]],
                                                    Sequence[float]]]) -> str:
    """``explain_loss`` for each wrong output (label -> calls and values), with D and G
    said together when they match the same mistake."""
    found = {label: matching_mistakes(form, label, calls, got)
             for label, (calls, got) in wrong.items()}
    names = {label: mistakes[0].name for label, mistakes in found.items() if mistakes}
    if len(wrong) > 1 and len(names) == len(wrong) and len(set(names.values())) == 1:
        mistake = next(iter(found.values()))[0]
        return (f"{' and '.join(wrong)} match a common mistake, {mistake.name}: "
                f"{mistake.advice}")
    return "; ".join(explain_loss(form, label, calls, got)
                     for label, (calls, got) in wrong.items())


# --------------------------------------------------------------------------- architecture


def _shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join("None" if d is None or d < 0 else str(d) for d in shape) \
        + ("," if len(shape) == 1 else "") + ")"


def _shapes(shapes: Sequence[Sequence[int]]) -> str:
    return ", ".join(_shape(s) for s in shapes) if shapes else "none"


def _input_size(kind: str, kernel: Sequence[int]) -> int | None:
    """What a layer's kernel says about the size of its input (features or channels)."""
    if kind == "Dense" and len(kernel) == 2:
        return int(kernel[0])
    if kind == "Conv2D" and len(kernel) == 4:
        return int(kernel[2])
    if kind == "Conv2DTranspose" and len(kernel) == 4:
        return int(kernel[3])
    return None


def first_layer_difference(spec: Sequence[Sequence[Any]],
                           student_shapes: Sequence[Sequence[int]]) -> str | None:
    """Where a model first departs from the specification, or None when its variables
    have exactly the specified shapes.

    ``spec`` lists the specification's layers in order as ``(kind, weight shapes, output
    shape)``; ``student_shapes`` the shapes of the student's variables in order (its
    layers' kinds are not known, so they are matched against the specification's).
    """
    student = [tuple(int(d) for d in s) for s in student_shapes]
    position = 0
    weighted = [index for index, (_, weights, _) in enumerate(spec) if weights]
    for index in weighted:
        kind, weights, _ = spec[index]
        want = [tuple(int(d) for d in s) for s in weights]
        got = student[position:position + len(want)]
        where = f"layer {index + 1} of the specification, a {kind}"
        if not got:
            return f"your model has no variables for {where} (weights {_shapes(want)})"
        if got != want:
            text = f"the first difference is at {where}: its weights should have shapes " \
                   f"{_shapes(want)}, yours have {_shapes(got)}"
            expected_in, actual_in = _input_size(kind, want[0]), _input_size(kind, got[0])
            if expected_in is not None and actual_in is not None and expected_in != actual_in:
                before = spec[index - 1] if index else None
                if before is not None:
                    text += (f"; its input has size {actual_in} where the {before[0]} before it "
                             f"(layer {index}) should output {_shape(before[2])}: a layer "
                             "before it changes the shape (padding, strides, pooling, reshape)")
            return text
        position += len(want)
    if position < len(student):
        return ("your model has more variables than the specification after its last layer: "
                + _shapes(student[position:]))
    return None
