"""Code the grader runs in a submission's kernel to call the student's functions.

Sent as source text into a private module (``sys.modules["_hw4grade_probe"]``) after
the notebook has run. It only moves data: it reads a request (JSON) and input arrays
(``.npz``) that the grader wrote, calls the student's code from the notebook's
namespace, and writes back raw outputs. It decides nothing about grades.
"""

import json
import sys
import traceback

import numpy as np

_models: dict = {}


def _namespace() -> dict:
    return get_ipython().user_ns  # noqa: F821 - defined in the kernel


_resolver = None  # a profile may map graded names to functions itself (see kernel_probe_tf1)


def _lookup(name: str):
    if _resolver is not None:
        value = _resolver(name)
        if value is None:
            raise LookupError(f"{name} is not defined in the notebook")
        return value
    namespace = _namespace()
    if name not in namespace:
        raise LookupError(f"{name} is not defined in the notebook")
    value = namespace[name]
    if not callable(value):
        raise LookupError(f"{name} is not a function (it is a {type(value).__name__})")
    return value


def _to_numpy(value):
    """Raw outputs as JSON-friendly descriptions; arrays are stored separately."""
    if value is None:
        return {"kind": "none"}
    if isinstance(value, (tuple, list)):
        return {"kind": "sequence", "items": [_to_numpy(item) for item in value]}
    if hasattr(value, "numpy") and callable(value.numpy):
        try:
            value = value.numpy()
        except Exception as error:  # a symbolic tensor, for example
            return {"kind": "other", "type": type(value).__name__, "error": str(error)[:200]}
    try:
        array = np.asarray(value)
    except Exception:
        return {"kind": "other", "type": type(value).__name__}
    if array.dtype == object:
        return {"kind": "other", "type": type(value).__name__}
    return {"kind": "array", "array": array}


def _split_arrays(description, arrays: dict) -> dict:
    """Move arrays out of a description into ``arrays`` (by key) so it can go into JSON."""
    if description.get("kind") == "array":
        key = f"a{len(arrays)}"
        array = description.pop("array")
        arrays[key] = array
        description.update(key=key, dtype=str(array.dtype), shape=list(array.shape))
    for item in description.get("items", []):
        if isinstance(item, dict):
            _split_arrays(item, arrays)
    if isinstance(description.get("output"), dict):
        _split_arrays(description["output"], arrays)
    return description


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {str(error)[:300]}"


def _arguments(spec: dict, inputs) -> tuple[list, dict]:
    def convert(value):
        if isinstance(value, dict) and "input" in value:
            array = inputs[value["input"]]
            if value.get("tensor"):
                import tensorflow as tf

                return tf.constant(array)
            return np.array(array)
        return value

    args = [convert(value) for value in spec.get("args", [])]
    kwargs = {key: convert(value) for key, value in spec.get("kwargs", {}).items()}
    return args, kwargs


def _call(spec: dict, inputs) -> dict:
    function = _lookup(spec["function"])
    args, kwargs = _arguments(spec, inputs)
    return _to_numpy(function(*args, **kwargs))


def _describe_optimizer(optimizer) -> dict:
    described = {"type": type(optimizer).__name__,
                 "mro": [cls.__name__ for cls in type(optimizer).__mro__], "id": id(optimizer)}
    for name in ("learning_rate", "beta_1", "beta_2", "epsilon"):
        try:
            described[name] = float(np.asarray(getattr(optimizer, name)))
        except Exception:
            described[name] = None
    return described


def _solvers(spec: dict, inputs) -> dict:
    result = _lookup(spec["function"])(**spec.get("kwargs", {}))
    if result is None:
        return {"kind": "none"}
    if not isinstance(result, (tuple, list)):
        return {"kind": "other", "type": type(result).__name__}
    return {"kind": "optimizers", "items": [_describe_optimizer(item) for item in result]}


def _build_model(spec: dict, inputs) -> dict:
    model = _lookup(spec["function"])(**spec.get("kwargs", {}))
    if model is None:
        return {"kind": "none"}
    if not callable(model):
        return {"kind": "other", "type": type(model).__name__}
    import tensorflow as tf

    output = model(tf.constant(inputs[spec["input"]]), training=False)
    _models[spec["slot"]] = model
    variables = list(model.weights)
    return {"kind": "model", "type": type(model).__name__,
            "variables": [{"shape": [int(d) for d in v.shape], "name": v.name,
                           "trainable": bool(getattr(v, "trainable", True))} for v in variables],
            "output": _to_numpy(output)}


def _run_model(spec: dict, inputs) -> dict:
    import tensorflow as tf

    model = _models[spec["slot"]]
    variables = list(model.weights)
    for position, key in spec["assign"]:
        variables[position].assign(inputs[key])
    output = model(tf.constant(inputs[spec["input"]]), training=spec.get("training", True))
    return _to_numpy(output)


def _part(source: str):
    """A training part: ``student:NAME`` from the notebook, ``reference:NAME`` from the
    reference module the grader installed."""
    origin, name = source.split(":", 1)
    if origin == "reference":
        return getattr(sys.modules["_hw4grade_reference"], name)
    return _lookup(name)


def _train(spec: dict, inputs) -> dict:
    trainer = sys.modules["_hw4grade_train"]
    load = _original("numpy.load", np.load)
    with load(spec["mnist_npz"]) as data:
        images = data["x_train"].reshape(len(data["x_train"]), -1).astype(np.float32)
    images = images / 127.5 - 1.0
    parts = {role: _part(source) for role, source in spec["parts"].items()}
    outcome = trainer.train(parts, images, inputs["order"], inputs["eval_noise"],
                            seed=spec["seed"], noise_dim=spec["noise_dim"],
                            max_seconds=spec["max_seconds"], jit=spec.get("jit", False))
    return {"kind": "training", "steps": outcome["steps"], "seconds": outcome["seconds"],
            "mode": outcome["mode"],
            "items": [{"kind": "array", "array": outcome["losses"]},
                      {"kind": "array", "array": outcome["samples"]}]}


_ACTIONS = {"call": _call, "solvers": _solvers, "build_model": _build_model,
            "run_model": _run_model, "train": _train}


def serve(request_path: str, response_path: str) -> None:
    """Carry out every call of a request file and write the raw results."""
    with open(request_path) as stream:
        request = json.load(stream)
    arrays: dict = {}
    load, savez = _original("numpy.load", np.load), _original("numpy.savez", np.savez)
    with load(request["inputs"]) as data:
        inputs = {key: data[key] for key in data.files}
    results = []
    for spec in request["calls"]:
        try:
            outcome = _ACTIONS[spec["action"]](spec, inputs)
        except BaseException as error:  # the student's code may raise anything
            if type(error).__name__ == "KeyboardInterrupt":
                raise
            outcome = {"kind": "error", "error": _error_text(error),
                       "where": traceback.format_exc(limit=-3)[-800:]}
        results.append(_split_arrays(outcome, arrays))
    savez(response_path + ".npz", **arrays)
    with open(response_path + ".json", "w") as stream:
        json.dump({"results": results, "patched": _patched()}, stream)


def _original(name: str, default):
    """The library function as it was before any student code ran (recorded by the prelude)."""
    prelude = sys.modules.get("_hw4grade_kernel")
    return getattr(prelude, "_originals", {}).get(name, default)


def _patched() -> list:
    prelude = sys.modules.get("_hw4grade_kernel")
    return prelude.patched_functions() if prelude else []
