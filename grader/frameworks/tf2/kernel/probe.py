"""The probe's TensorFlow 2 parts (eager Keras), run in the kernel.

Sent as source text into a private module after the shared probe (``MODULES["probe"]``)
and the TF2 training loop (``MODULES["tf2/train"]``); on loading it registers with the
probe how an input becomes a tensor, how a Keras network is built and run with the
grader's weights, and which ``TrainingSession`` trains. Nothing here decides a grade.
"""

import sys

MODULES: dict = {}  # replaced by the loader: kernel file -> its module name in the kernel
_probe = sys.modules[MODULES["probe"]]
_wire = sys.modules[MODULES["wire"]]
Action, Kind = _wire.Action, _wire.Kind
_models: dict = {}


def _constant(array):
    """A TensorFlow tensor of ``array`` (TensorFlow imported when first needed)."""
    import tensorflow as tf

    return tf.constant(array)


def _build_model(spec: dict, inputs) -> dict:
    model = _probe.lookup(spec["function"])(**spec.get("kwargs", {}))
    if model is None:
        return {"kind": Kind.NONE}
    if not callable(model):
        return {"kind": Kind.OTHER, "type": _probe.type_name(model)}
    output = model(_constant(inputs[spec["input"]]), training=False)
    _models[spec["slot"]] = model
    variables = list(model.weights)
    return {"kind": Kind.MODEL, "type": _probe.type_name(model),
            "variables": [{"shape": [int(d) for d in v.shape],
                           "name": str(v.name)[:_wire.NAME_LIMIT],
                           "trainable": bool(getattr(v, "trainable", True))} for v in variables],
            "output": _probe.to_numpy(output)}


def _run_model(spec: dict, inputs) -> dict:
    model = _models[spec["slot"]]
    variables = list(model.weights)
    for position, key in spec["assign"]:
        variables[position].assign(inputs[key])
    output = model(_constant(inputs[spec["input"]]), training=spec.get("training", True))
    return _probe.to_numpy(output)


_probe.register(actions={Action.BUILD_MODEL: _build_model, Action.RUN_MODEL: _run_model},
                as_tensor=_constant,
                training_session=sys.modules[MODULES["tf2/train"]].TrainingSession)
