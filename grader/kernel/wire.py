"""The wire format between the grader and the probe in a submission's kernel.

This module is used on both ends: the grader imports it (``grader.kernel.wire``) and the
loader installs the same source in the kernel as a private module (``MODULES["wire"]``,
before the probe), so it imports nothing but the standard library and holds no state.

One exchange is four files in the probe folder, which only the grader and that kernel
share, all named by a fresh ``TOKEN``:

* ``in-TOKEN.npz`` (:func:`inputs_file`), written by the grader: the input arrays, by key;
* ``req-TOKEN.json`` (:func:`request_file`), written by the grader (:func:`request`)::

      {"inputs": "<path of in-TOKEN.npz>", "calls": [spec, ...]}

* ``out-TOKEN.json`` (:func:`response_files` of :func:`response_stem`), written by the
  kernel (:func:`response`), one outcome per call, in order::

      {"results": [outcome, ...], "patched": ["numpy.allclose", ...]}

  ``patched`` names the library functions the grader relies on (:data:`WATCHED`) that
  something in the kernel has replaced since the prelude ran;
* ``out-TOKEN.npz``, written by the kernel: the arrays the outcomes refer to by key.

The grader runs ``serve(<path of req-TOKEN.json>, <path of out-TOKEN>)`` of the kernel's
probe, which reads the request and writes the response.

A call spec is a JSON object whose ``action`` is one of :data:`ACTIONS` (see the
``*_spec`` constructors for the fields of each):

* ``call``: ``function(*args, **kwargs)``; any argument may be an input reference
  (:func:`tensor_input`, :func:`array_input`). TF1: ``"again": true`` runs the tensors of
  the previous call once more instead;
* ``solvers``: ``function(**kwargs)``, which should return optimizers;
* ``build_model``: ``function(**kwargs)`` builds a model, which is run on the input array
  ``input`` (not training) and kept in the kernel under the name ``slot``;
* ``run_model``: the model in ``slot``, its variables set from ``assign`` (pairs of
  variable position and input key), run on ``input`` with ``training``;
* ``train_start``: a session of the grader's training loop (``TrainingSession`` of the
  kernel's ``train`` module) on ``parts`` (role -> ``"student:NAME"`` or
  ``"reference:NAME"``) with ``seed``, ``noise_dim``, ``batch`` and ``mnist_npz``, kept in
  the kernel under the name ``slot``;
* ``train_steps``: the session in ``slot`` takes the weights of ``assign`` (role -> pairs
  of variable position and input key), trains one step per row of the input array
  ``order`` within ``max_seconds``, and hands back its weights; with ``sample`` it also
  draws samples for the input array ``eval_noise``.

An outcome is a JSON object whose ``kind`` is one of :data:`KINDS`:

* ``array``: ``key``, ``dtype``, ``shape``; the array itself is in the ``.npz`` under
  ``key`` (numbers or booleans only, at most :data:`MAX_ARRAY_BYTES`); the grader reads
  it back, checked, with ``grader.pipeline.response``;
* ``none``: the function returned None;
* ``sequence``: ``items``, an outcome per element of a tuple or list;
* ``other``: ``type`` of a value that is no array of numbers (text, objects, a generator,
  an array over :data:`MAX_ARRAY_BYTES`), maybe with the ``dtype`` and ``shape`` of an
  array, or an ``error``;
* ``error``: ``error`` (``"Name: message"``), maybe with ``where`` (the traceback's end);
* ``optimizers``: ``items``, a description per optimizer (``type``, ``mro``, ``id``,
  ``learning_rate``, ``beta_1``, ``beta_2``, ``epsilon``, and optionally
  ``exact_parameters``: whether it holds exactly the parameters of the network the probe
  gave it, where the framework's probe made that network);
* ``model``: ``type``, ``variables`` (``shape``, ``name``, ``trainable`` of each) and
  ``output``, the outcome of the first run;
* ``session``: ``variables``, for each role of :data:`TRAINING_ROLES` the description
  (``shape``, ``name``, ``trainable``) of every weight of that network, in order;
* ``training``: ``steps``, ``seconds``, ``mode`` and ``items``: the chunk's losses (an
  array of [steps, 2]), the generator's weights and the discriminator's weights (two
  sequences of arrays, in the order of ``variables``) and the samples drawn from
  ``eval_noise`` (an array, or ``none`` when not asked for).

Outcomes nest only under ``items`` and ``output`` (:func:`nested`).
"""

from __future__ import annotations

from typing import Any


class Action:
    """The actions a call spec can ask for."""

    CALL = "call"
    SOLVERS = "solvers"
    BUILD_MODEL = "build_model"
    RUN_MODEL = "run_model"
    TRAIN_START = "train_start"
    TRAIN_STEPS = "train_steps"


class Kind:
    """The kinds of outcome."""

    ARRAY = "array"
    NONE = "none"
    SEQUENCE = "sequence"
    OTHER = "other"
    ERROR = "error"
    OPTIMIZERS = "optimizers"
    MODEL = "model"
    SESSION = "session"
    TRAINING = "training"


ACTIONS = (Action.CALL, Action.SOLVERS, Action.BUILD_MODEL, Action.RUN_MODEL,
           Action.TRAIN_START, Action.TRAIN_STEPS)
KINDS = (Kind.ARRAY, Kind.NONE, Kind.SEQUENCE, Kind.OTHER, Kind.ERROR, Kind.OPTIMIZERS,
         Kind.MODEL, Kind.SESSION, Kind.TRAINING)
TRAINING_ROLES = ("generator", "discriminator")  # the networks of a training session
TRAIN_INPUTS = ("order", "eval_noise")  # the input arrays of a ``train_steps`` call

# The library functions the grader relies on whose replacement a kernel reports (the
# prelude records them by these names, given in its CONFIG as ``watched``; the grader
# accepts no other name in a response's ``patched``).
WATCHED = ("keras.Model.count_params", "keras.layers.Layer.count_params", "numpy.allclose",
           "numpy.load", "numpy.save", "numpy.savez")
# The dtype kinds an array in a response may have: bool, signed, unsigned, float.
NUMERIC_KINDS = "biuf"
# The largest array a response may carry (the largest weight a training hands back, the
# DCGAN generator's 1024 x 6272 kernel, is 26 MB); the probe reports a larger one as
# ``other``, not as an array.
MAX_ARRAY_BYTES = 64 * 2**20
NAME_LIMIT = 200  # characters of a type or error class name the probe sends
MESSAGE_LIMIT = 300  # characters of an error message the probe sends
# A returned list or tuple longer than this is sent as one array (or as ``other``), and
# one nested deeper as ``other``: a response holds a bounded number of outcomes.
MAX_SEQUENCE = 64
MAX_NESTING = 6


# -- file names --------------------------------------------------------------------------------


def inputs_file(token: str) -> str:
    """The name of the request's input arrays (``.npz``)."""
    return f"in-{token}.npz"


def request_file(token: str) -> str:
    """The name of the request (JSON)."""
    return f"req-{token}.json"


def response_stem(token: str) -> str:
    """The name, without suffix, of the response's two files (see :func:`response_files`)."""
    return f"out-{token}"


def response_files(stem: str) -> tuple[str, str]:
    """The response's JSON and ``.npz`` paths for the path ``stem`` of :func:`response_stem`."""
    return f"{stem}.json", f"{stem}.npz"


# -- requests ----------------------------------------------------------------------------------


def request(inputs_path: str, calls: list[dict[str, Any]]) -> dict[str, Any]:
    """The request object: where the input arrays are, and the call specs."""
    return {"inputs": inputs_path, "calls": calls}


def read_request(request: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The input arrays' path and the call specs of a request object."""
    return request["inputs"], request["calls"]


def tensor_input(key: str) -> dict[str, Any]:
    """An argument that is the input array ``key``, passed as a TensorFlow tensor."""
    return {"input": key, "tensor": True}


def array_input(key: str) -> dict[str, Any]:
    """An argument that is the input array ``key``, passed as a numpy array."""
    return {"input": key, "tensor": False}


def input_reference(value: Any) -> tuple[str, bool] | None:
    """``(key, as_tensor)`` when ``value`` is an input reference, else None."""
    if isinstance(value, dict) and "input" in value:
        return value["input"], bool(value.get("tensor"))
    return None


def call_spec(function: str, args: list[Any] | None = None,
              kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """A ``call`` of ``function(*args, **kwargs)`` (arguments may be input references)."""
    spec: dict[str, Any] = {"action": Action.CALL, "function": function}
    if args is not None:
        spec["args"] = args
    if kwargs is not None:
        spec["kwargs"] = kwargs
    return spec


def solvers_spec(function: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """A ``solvers`` call: ``function(**kwargs)``, its optimizers described."""
    return {"action": Action.SOLVERS, "function": function, "kwargs": kwargs}


def build_model_spec(function: str, kwargs: dict[str, Any], input_key: str,
                     slot: str) -> dict[str, Any]:
    """Build ``function(**kwargs)``, run it on the input ``input_key``, keep it as ``slot``."""
    return {"action": Action.BUILD_MODEL, "function": function, "kwargs": kwargs,
            "input": input_key, "slot": slot}


def run_model_spec(slot: str, assign: list[list[Any]], input_key: str,
                   training: bool = True) -> dict[str, Any]:
    """Run the model kept as ``slot`` on ``input_key`` after setting its variables."""
    return {"action": Action.RUN_MODEL, "slot": slot, "assign": assign, "input": input_key,
            "training": training}


def train_start_spec(parts: dict[str, str], seed: int, noise_dim: int, batch: int,
                     mnist_npz: str, slot: str) -> dict[str, Any]:
    """Start a training session of the grader's loop on ``parts``, kept as ``slot``."""
    return {"action": Action.TRAIN_START, "parts": parts, "seed": seed,
            "noise_dim": noise_dim, "batch": batch, "mnist_npz": mnist_npz, "slot": slot}


def train_steps_spec(slot: str, assign: dict[str, list[list[Any]]], max_seconds: float,
                     sample: bool = False) -> dict[str, Any]:
    """Train the session ``slot`` one step per row of the input ``order`` (after setting
    the weights of ``assign``); with ``sample``, draw samples for the input ``eval_noise``."""
    return {"action": Action.TRAIN_STEPS, "slot": slot, "assign": assign,
            "max_seconds": max_seconds, "sample": sample}


# -- responses ---------------------------------------------------------------------------------


def error_outcome(message: str, where: str | None = None) -> dict[str, Any]:
    """An outcome of kind ``error``."""
    outcome: dict[str, Any] = {"kind": Kind.ERROR, "error": message}
    if where is not None:
        outcome["where"] = where
    return outcome


def nested(outcome: dict[str, Any]) -> list[dict[str, Any]]:
    """The objects nested in ``outcome`` that may hold arrays: its items and its output."""
    inner = [item for item in outcome.get("items", []) or [] if isinstance(item, dict)]
    if isinstance(outcome.get("output"), dict):
        inner.append(outcome["output"])
    return inner


def split_arrays(outcome: dict[str, Any], arrays: dict[str, Any]) -> dict[str, Any]:
    """Move every array out of ``outcome`` (nested ones too) into ``arrays``, under a new
    key, leaving ``key``, ``dtype`` and ``shape`` in its place; return ``outcome``."""
    if outcome.get("kind") == Kind.ARRAY:
        key = f"a{len(arrays)}"
        array = outcome.pop("array")
        arrays[key] = array
        outcome.update(key=key, dtype=str(array.dtype), shape=list(array.shape))
    for inner in nested(outcome):
        split_arrays(inner, arrays)
    return outcome


def response(results: list[dict[str, Any]], patched: list[str]) -> dict[str, Any]:
    """The response object: one outcome per call (arrays split out) and the patched names."""
    return {"results": results, "patched": patched}
