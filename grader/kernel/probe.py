"""Code the grader runs in a submission's kernel to call the student's functions.

Sent as source text into a private module (``sys.modules[MODULES["probe"]]``) after
the notebook has run, with the wire format (``MODULES["wire"]``, ``grader.kernel.wire``)
installed before it. It only moves data: it reads a request (JSON) and input arrays
(``.npz``) that the grader wrote, calls the student's code from the notebook's
namespace, and writes back raw outputs. It decides nothing about grades.

This module is framework-free. Each framework's ``probe`` (``grader/frameworks/<name>/
kernel/probe.py``) installs, with :func:`register`, what only it knows: how an input becomes
a tensor, how a network is built and run with given weights, how graded names resolve, how
an optimizer is described and which ``TrainingSession`` trains; it builds on
:func:`lookup`, :func:`arguments`, :func:`to_numpy` and :func:`default_action`.
"""

import json
import sys
import traceback
from collections.abc import Callable

import numpy as np

MODULES: dict = {}  # replaced by the loader: kernel file -> its module name in the kernel
_wire = sys.modules[MODULES["wire"]]
Action, Kind = _wire.Action, _wire.Kind
Handler = Callable[[dict, dict], dict]  # an action: (spec, input arrays) -> outcome


def _namespace() -> dict:
    return get_ipython().user_ns  # noqa: F821 - defined in the kernel


def lookup(name: str) -> Callable:
    """The function the graded ``name`` means: the framework's resolver's answer, else the
    notebook's callable of that name; LookupError when there is none."""
    resolve = _framework["resolve"]
    if resolve is not None:
        value = resolve(name)
        if value is None:
            raise LookupError(f"{name} is not defined in the notebook")
        return value
    namespace = _namespace()
    if name not in namespace:
        raise LookupError(f"{name} is not defined in the notebook")
    value = namespace[name]
    if not callable(value):
        raise LookupError(f"{name} is not a function (it is a {type_name(value)})")
    return value


def type_name(value) -> str:
    """The name of ``value``'s type, cut to the wire's limit (a class may have any name)."""
    return str(type(value).__name__)[:_wire.NAME_LIMIT]


def _other(value, array=None) -> dict:
    outcome = {"kind": Kind.OTHER, "type": type_name(value)}
    if array is not None:
        outcome.update(dtype=array.dtype.str[:_wire.NAME_LIMIT],
                       shape=[int(d) for d in array.shape])
    return outcome


def to_numpy(value, depth: int = 0) -> dict:
    """A raw output as an outcome (see the wire format); arrays stay in it until they are
    split out for the response. Only numbers and booleans are sent as arrays, at most
    ``MAX_ARRAY_BYTES`` each; anything else is described as ``other``."""
    if value is None:
        return {"kind": Kind.NONE}
    if isinstance(value, (tuple, list)) and len(value) <= _wire.MAX_SEQUENCE:
        if depth >= _wire.MAX_NESTING:
            return _other(value)
        return {"kind": Kind.SEQUENCE, "items": [to_numpy(item, depth + 1) for item in value]}
    try:
        value = _framework["to_array"](value)
    except Exception as error:  # a tensor the framework cannot read back
        return {**_other(value), "error": _message(error)}
    if hasattr(value, "numpy") and callable(value.numpy):
        try:
            value = value.numpy()
        except Exception as error:  # a symbolic tensor, for example
            return {**_other(value), "error": _message(error)}
    try:
        array = np.asarray(value)
    except Exception:  # a ragged list, a generator ...
        return _other(value)
    if array.dtype.kind not in _wire.NUMERIC_KINDS or array.dtype.fields is not None \
            or array.nbytes > _wire.MAX_ARRAY_BYTES:
        return _other(value, array)
    return {"kind": Kind.ARRAY, "array": array}


def _message(error: BaseException) -> str:
    try:
        return str(error)[:_wire.MESSAGE_LIMIT]
    except BaseException:  # a hostile __str__
        return "(its message could not be printed)"


def _error_text(error: BaseException) -> str:
    return f"{type_name(error)}: {_message(error)}"


def arguments(spec: dict, inputs) -> tuple[list, dict]:
    """The positional and keyword arguments of a ``call`` spec, input references replaced
    by the input arrays (as the framework's tensors or numpy arrays, as the reference says)."""
    def convert(value):
        reference = _wire.input_reference(value)
        if reference is not None:
            key, as_tensor = reference
            array = inputs[key]
            if as_tensor:
                return _framework["as_tensor"](array)
            return np.array(array)
        return value

    args = [convert(value) for value in spec.get("args", [])]
    kwargs = {key: convert(value) for key, value in spec.get("kwargs", {}).items()}
    return args, kwargs


def _call(spec: dict, inputs) -> dict:
    function = lookup(spec["function"])
    args, kwargs = arguments(spec, inputs)
    return to_numpy(function(*args, **kwargs))


def _describe_optimizer(optimizer) -> dict:
    described = {"type": type_name(optimizer),
                 "mro": [str(cls.__name__)[:_wire.NAME_LIMIT]
                         for cls in type(optimizer).__mro__[:64]], "id": id(optimizer)}
    for name in ("learning_rate", "beta_1", "beta_2", "epsilon"):
        try:
            described[name] = float(np.asarray(getattr(optimizer, name)))
        except Exception:
            described[name] = None
    return described


def _solvers(spec: dict, inputs) -> dict:
    result = lookup(spec["function"])(**spec.get("kwargs", {}))
    if result is None:
        return {"kind": Kind.NONE}
    if not isinstance(result, (tuple, list)) or len(result) > 64:
        return _other(result)
    describe = _framework["describe_optimizer"]
    return {"kind": Kind.OPTIMIZERS, "items": [describe(item) for item in result]}


def _part(source: str):
    """A training part: ``student:NAME`` from the notebook, ``reference:NAME`` from the
    reference module the grader installed."""
    origin, name = source.split(":", 1)
    if origin == "reference":
        return _framework["resolve_reference"](sys.modules[MODULES["reference"]], name)
    return lookup(name)


_sessions: dict = {}
_images: dict = {}


def _training_images(path: str) -> np.ndarray:
    """The MNIST training images the grader named, as [N, 784] floats in [-1, 1] (read once)."""
    if path not in _images:
        load = _original("numpy.load", np.load)
        with load(path) as data:
            images = data["x_train"].reshape(len(data["x_train"]), -1).astype(np.float32)
        _images.clear()
        _images[path] = images / 127.5 - 1.0
    return _images[path]


def _describe_variables(variables: list) -> list:
    return [{"shape": [int(d) for d in shape], "name": str(name)[:_wire.NAME_LIMIT],
             "trainable": True} for shape, name in variables]


def _train_start(spec: dict, inputs) -> dict:
    parts = {role: _part(source) for role, source in spec["parts"].items()}
    session = _framework["training_session"](parts, spec["seed"], spec["noise_dim"],
                                             spec["batch"])
    session.images_path = spec["mnist_npz"]
    _sessions[spec["slot"]] = session
    variables = session.variables()
    return {"kind": Kind.SESSION,
            "variables": {role: _describe_variables(variables[role])
                          for role in _wire.TRAINING_ROLES}}


def _train_steps(spec: dict, inputs) -> dict:
    session = _sessions[spec["slot"]]
    for role, pairs in spec.get("assign", {}).items():
        session.assign(role, {int(position): inputs[key] for position, key in pairs})
    chunk = session.run(_training_images(session.images_path), inputs["order"],
                        spec["max_seconds"])
    samples = (to_numpy(session.sample(inputs["eval_noise"])) if spec.get("sample")
               else {"kind": Kind.NONE})
    return {"kind": Kind.TRAINING, "steps": chunk["steps"], "seconds": chunk["seconds"],
            "mode": session.mode,
            "items": [{"kind": Kind.ARRAY, "array": chunk["losses"]},
                      *[{"kind": Kind.SEQUENCE,
                         "items": [to_numpy(value) for value in session.values(role)]}
                        for role in _wire.TRAINING_ROLES],
                      samples]}


def _no_tensors(array):
    raise RuntimeError("no framework registered how to make a tensor")


def _no_training(*args, **kwargs):
    raise RuntimeError("no framework registered a training loop")


def _as_it_is(value):
    return value


def _reference_attribute(module, name: str):
    return getattr(module, name)


_DEFAULT_ACTIONS = {Action.CALL: _call, Action.SOLVERS: _solvers,
                    Action.TRAIN_START: _train_start, Action.TRAIN_STEPS: _train_steps}
_actions = dict(_DEFAULT_ACTIONS)
# what a framework registers (see register); resolve: graded name -> function or None
_framework = {"resolve": None, "describe_optimizer": _describe_optimizer,
              "as_tensor": _no_tensors, "training_session": _no_training,
              "to_array": _as_it_is, "resolve_reference": _reference_attribute}


def register(actions: dict[str, Handler] | None = None,
             resolve: Callable[[str], Callable | None] | None = None,
             describe_optimizer: Callable[[object], dict] | None = None,
             as_tensor: Callable[[np.ndarray], object] | None = None,
             training_session: Callable[..., object] | None = None,
             to_array: Callable[[object], object] | None = None,
             resolve_reference: Callable[[object, str], Callable] | None = None) -> None:
    """Install a framework's parts of the probe (each one left as it is when None).

    ``actions`` maps action names (``Action``) to handlers ``handler(spec, inputs)`` that
    return an outcome (``build_model`` and ``run_model`` have no default); ``resolve(name)``
    gives the function a graded name means, or None when there is none, in place of the
    notebook's namespace; ``describe_optimizer`` describes one optimizer a ``solvers`` call
    returned; ``as_tensor(array)`` makes an input tensor; ``training_session(parts, seed,
    noise_dim, batch)`` starts the grader's training loop (a ``TrainingSession``);
    ``to_array(value)`` turns one of the framework's tensors into something numpy reads
    (values of other types unchanged) before an output is sent back;
    ``resolve_reference(module, name)`` gives the reference's part a graded name means (for
    attribution; by default the module's attribute of that name).
    """
    unknown = set(actions or {}) - set(_wire.ACTIONS)
    if unknown:
        raise ValueError(f"no such probe actions: {sorted(unknown)}")
    _actions.update(actions or {})
    for key, value in (("resolve", resolve), ("describe_optimizer", describe_optimizer),
                       ("as_tensor", as_tensor), ("training_session", training_session),
                       ("to_array", to_array), ("resolve_reference", resolve_reference)):
        if value is not None:
            _framework[key] = value


def default_action(name: str) -> Handler:
    """The probe's own handler of the action ``name``, whatever a framework registered."""
    return _DEFAULT_ACTIONS[name]


def serve(request_path: str, response_path: str) -> None:
    """Carry out every call of a request file and write the raw results (``response_path``
    is the responses' path without suffix)."""
    with open(request_path) as stream:
        inputs_path, calls = _wire.read_request(json.load(stream))
    arrays: dict = {}
    load, savez = _original("numpy.load", np.load), _original("numpy.savez", np.savez)
    with load(inputs_path) as data:
        inputs = {key: data[key] for key in data.files}
    results = []
    for spec in calls:
        try:
            outcome = _actions[spec["action"]](spec, inputs)
        except BaseException as error:  # the student's code may raise anything
            if type(error).__name__ == "KeyboardInterrupt":
                raise
            outcome = _wire.error_outcome(_error_text(error), _where())
        results.append(_wire.split_arrays(outcome, arrays))
    json_path, arrays_path = _wire.response_files(response_path)
    savez(arrays_path, **arrays)
    with open(json_path, "w") as stream:
        json.dump(_wire.response(results, _patched()), stream)


def _where() -> str:
    """The end of the current exception's traceback (its last frames, as text)."""
    try:
        return traceback.format_exc(limit=-3)[-800:]
    except BaseException:  # a hostile exception whose formatting fails
        return ""


def _original(name: str, default):
    """The library function as it was before any student code ran (recorded by the prelude)."""
    prelude = sys.modules.get(MODULES["prelude"])
    return getattr(prelude, "_originals", {}).get(name, default)


def _patched() -> list:
    prelude = sys.modules.get(MODULES["prelude"])
    return prelude.patched_functions() if prelude else []
