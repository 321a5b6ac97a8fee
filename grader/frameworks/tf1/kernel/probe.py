"""The probe's actions for TensorFlow 1 notebooks (graph mode), run in the kernel.

Sent as source text into a private module after the probe (``MODULES["probe"]``), the
TF1 setup (``MODULES["tf1/setup"]``) and the TF1 training loop (``MODULES["tf1/train"]``);
on loading it registers graph-mode versions of the probe's actions with the probe
(``register``, its only way in), lets the TF1 setup resolve the graded names and names
the TF1 ``TrainingSession``. Every call builds the student's ops in a fresh graph on the
grader's inputs, runs them in a session of its own and hands back raw values, exactly as
the TF2 actions do; nothing here decides a grade.
"""

import sys

import numpy as np
import tensorflow.compat.v1 as tf

MODULES: dict = {}  # replaced by the loader: kernel file -> its module name in the kernel
_probe = sys.modules[MODULES["probe"]]
_wire = sys.modules[MODULES["wire"]]
Action, Kind = _wire.Action, _wire.Kind
_last: dict = {}
_models: dict = {}


class _Slot:
    def __init__(self, index: int):
        self.index = index


def _evaluate(session, value, feed=None):
    """``value`` with every tensor or variable in it replaced by its value in ``session``."""
    fetches = []

    def collect(item):
        if isinstance(item, (tuple, list)):
            return [collect(part) for part in item]
        if isinstance(item, (tf.Tensor, tf.Variable, tf.Operation)):
            fetches.append(item)
            return _Slot(len(fetches) - 1)
        return item

    shape = collect(value)
    results = session.run(fetches, feed) if fetches else []

    def fill(item):
        if isinstance(item, list):
            return [fill(part) for part in item]
        return results[item.index] if isinstance(item, _Slot) else item

    return fill(shape)


def _new_session(graph):
    with graph.as_default():
        initialize = tf.global_variables_initializer()
    session = tf.Session(graph=graph)
    session.run(initialize)
    return session


def _forget(store: dict, key: str) -> None:
    old = store.pop(key, None)
    if old is not None:
        old[1].close()


def _call(spec: dict, inputs) -> dict:
    if spec.get("again"):  # run the previous call's tensors once more (fresh noise per run?)
        if "call" not in _last:
            raise RuntimeError("the previous call failed, so it cannot be run again")
        graph, session, value = _last["call"]
        return _probe.to_numpy(_evaluate(session, value))
    _forget(_last, "call")
    function = _probe.lookup(spec["function"])
    graph = tf.Graph()
    with graph.as_default():
        args, kwargs = _probe.arguments(spec, inputs)
        value = function(*args, **kwargs)
    session = _new_session(graph)
    _last["call"] = (graph, session, value)
    return _probe.to_numpy(_evaluate(session, value))


def _setting(optimizer, names):
    for name in names:
        if hasattr(optimizer, name):
            value = getattr(optimizer, name)
            try:
                if isinstance(value, (tf.Tensor, tf.Variable)):
                    with tf.Session(graph=value.graph) as session:
                        session.run(tf.variables_initializer(
                            value.graph.get_collection(tf.GraphKeys.GLOBAL_VARIABLES)))
                        value = session.run(value)
                return float(np.asarray(value))
            except Exception:
                return None
    return None


def _describe_optimizer(optimizer) -> dict:
    return {"type": _probe.type_name(optimizer),
            "mro": [str(cls.__name__)[:_wire.NAME_LIMIT] for cls in type(optimizer).__mro__[:64]],
            "id": id(optimizer),
            "learning_rate": _setting(optimizer, ("_lr", "learning_rate")),
            "beta_1": _setting(optimizer, ("_beta1", "beta_1")),
            "beta_2": _setting(optimizer, ("_beta2", "beta_2")),
            "epsilon": _setting(optimizer, ("_epsilon", "epsilon"))}


_solvers_eager = _probe.default_action(Action.SOLVERS)


def _solvers(spec: dict, inputs) -> dict:
    with tf.Graph().as_default():  # optimizers may create ops: keep them out of sight
        return _solvers_eager(spec, inputs)


def _build_model(spec: dict, inputs) -> dict:
    """Build ``function(x)`` on a placeholder (TF1 networks take their input tensor)."""
    function = _probe.lookup(spec["function"])
    x = inputs[spec["input"]]
    graph = tf.Graph()
    with graph.as_default():
        placeholder = tf.placeholder(tf.float32, [None, x.shape[1]])
        output = function(placeholder)
        if output is None:
            return {"kind": Kind.NONE}
        if not isinstance(output, (tf.Tensor, tf.Variable)):
            return {"kind": Kind.OTHER, "type": _probe.type_name(output)}
        variables = graph.get_collection(tf.GraphKeys.GLOBAL_VARIABLES)
    session = _new_session(graph)
    _forget(_models, spec["slot"])
    _models[spec["slot"]] = (graph, session, placeholder, output, variables)
    return {"kind": Kind.MODEL, "type": "graph",
            "variables": [{"shape": [int(d) for d in v.shape], "name": v.name,
                           "trainable": v in graph.get_collection(
                               tf.GraphKeys.TRAINABLE_VARIABLES)} for v in variables],
            "output": _probe.to_numpy(session.run(output, {placeholder: x}))}


def _run_model(spec: dict, inputs) -> dict:
    graph, session, placeholder, output, variables = _models[spec["slot"]]
    for position, key in spec["assign"]:
        variables[position].load(inputs[key], session)
    return _probe.to_numpy(session.run(output, {placeholder: inputs[spec["input"]]}))


_probe.register(
    actions={Action.CALL: _call, Action.SOLVERS: _solvers, Action.BUILD_MODEL: _build_model,
             Action.RUN_MODEL: _run_model},
    resolve=sys.modules[MODULES["tf1/setup"]].resolve,
    describe_optimizer=_describe_optimizer,  # tf.train optimizers keep _lr, _beta1 ...
    as_tensor=tf.constant,  # in the graph of the call being built
    training_session=sys.modules[MODULES["tf1/train"]].TrainingSession)
