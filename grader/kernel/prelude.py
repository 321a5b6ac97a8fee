"""Code the grader runs in a submission's kernel before any student code.

This file is sent to the kernel as source text, with ``CONFIG`` filled in, and runs in
a private module (``sys.modules[MODULES["prelude"]]``), so it adds nothing to the
student's namespace. It must not import the grader: the kernel only needs the
standard library, numpy and TensorFlow. It sets up:

* MNIST offline: ``keras.datasets.mnist.load_data`` (under every name TensorFlow and
  Keras export it) returns the arrays of the file the grader prepared;
* a training budget: a watchdog thread counts the steps every optimizer created in the
  kernel has taken in the current cell, and once they pass the budget the next call of a
  TensorFlow function or of ``apply_gradients`` raises ``TrainingBudgetReached`` in the
  student's own code, however the loop is written (eager or ``tf.function``);
* a cap on what the kernel writes to stdout and stderr per cell;
* seeds, and a record of the library functions the probes rely on, so that a later
  monkeypatch can be reported.
"""

# ruff: noqa: E402
import sys
import threading
import time
import weakref

CONFIG: dict = {}  # replaced by the grader: seed, mnist_npz, training_steps, output_limit,
# watched (the library functions whose replacement is reported: the wire's WATCHED)


class TrainingBudgetReached(BaseException):
    """Raised in a cell whose training passed the grader's step budget (not a student error)."""


_state = {"cell_running": False, "baseline": {}, "hits": 0, "written": 0, "budget_on": True,
          "over": False}
_optimizers: "weakref.WeakSet" = weakref.WeakSet()
_originals: dict = {}


def _optimizer_steps(optimizer) -> int:
    try:
        return int(optimizer.iterations.numpy())
    except Exception:
        return 0


def _register_optimizer_class(base) -> None:
    original_init = base.__init__

    def __init__(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        _optimizers.add(self)

    __init__.__wrapped__ = original_init
    base.__init__ = __init__


def _steps_this_cell() -> int:
    baseline = _state["baseline"]
    steps = 0
    for optimizer in list(_optimizers):
        steps = max(steps, _optimizer_steps(optimizer) - baseline.get(id(optimizer), 0))
    return steps


def _watchdog(budget: int) -> None:
    """Mark the cell as over budget; the check itself runs in the main thread (see below)."""
    while True:
        time.sleep(0.05)
        if _state["cell_running"] and _state["budget_on"] and not _state["over"]:
            _state["over"] = _steps_this_cell() > budget


def _check_budget() -> None:
    """Stop a training loop that passed the budget, from inside its own next step.

    Called from every TensorFlow function call and every optimizer update, so the exception
    is raised synchronously in the student's code, never inside the kernel's own machinery.
    """
    if _state["over"] and _state["cell_running"] and _state["budget_on"]:
        _state["hits"] += 1
        raise TrainingBudgetReached(f"the grader's budget of {CONFIG.get('training_steps')} "
                                    "training steps for this cell was reached")


def _guard(cls, name: str) -> None:
    original = getattr(cls, name)

    def guarded(self, *args, **kwargs):
        _check_budget()
        return original(self, *args, **kwargs)

    guarded.__wrapped__ = original
    setattr(cls, name, guarded)


def end_notebook() -> None:
    """The notebook has run: the grader's own probes and training are not budgeted."""
    _state["budget_on"] = False


def _pre_run_cell(*_args) -> None:
    _state["baseline"] = {id(opt): _optimizer_steps(opt) for opt in list(_optimizers)}
    _state["written"] = 0
    _state["over"] = False
    _state["cell_running"] = True


def _post_run_cell(*_args) -> None:
    _state["cell_running"] = False


class _CappedStream:
    """Wrap a kernel output stream and drop what passes the per-cell limit."""

    def __init__(self, stream, limit: int):
        self._stream, self._limit = stream, limit

    def write(self, text):
        used = _state["written"]
        _state["written"] = used + len(text)
        if used >= self._limit:
            return len(text)
        if used + len(text) > self._limit:
            text = text[: self._limit - used] + "\n[hw4grade: output truncated]\n"
        return self._stream.write(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _load_mnist_offline(path=None):
    import numpy as np

    with np.load(CONFIG["mnist_npz"]) as data:
        return (data["x_train"], data["y_train"]), (data["x_test"], data["y_test"])


def _patch_mnist() -> None:
    for name, module in list(sys.modules.items()):
        if name.endswith("datasets.mnist") and hasattr(module, "load_data"):
            module.load_data = _load_mnist_offline


def _watched_now(name: str):
    """What the dotted ``name`` of a watched function (``numpy.allclose``,
    ``keras.Model.count_params``) means now: its module's attribute path, or None."""
    import importlib

    root, *path = name.split(".")
    try:
        value = importlib.import_module(root)
        for attribute in path:
            value = getattr(value, attribute)
    except Exception:  # not installed here, or gone
        return None
    return value


def _record_originals() -> None:
    """Record the watched functions (CONFIG's ``watched``: the wire's list) as they are."""
    for name in CONFIG.get("watched", ()):
        if CONFIG.get("profile") == "tf1" and name.startswith("keras."):
            continue  # TF1 notebooks do not use Keras' counts
        value = _watched_now(name)
        if value is not None:
            _originals[name] = value


def patched_functions() -> list[str]:
    """Names of recorded library functions that something has replaced since the prelude."""
    return sorted(name for name, value in _originals.items() if _watched_now(name) is not value)


def setup() -> None:
    """Install everything described in the module docstring."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    limit = CONFIG.get("output_limit")
    if limit:
        sys.stdout = _CappedStream(sys.stdout, limit)
        sys.stderr = _CappedStream(sys.stderr, limit)
    import numpy as np

    np.random.seed(CONFIG.get("seed", 0))
    try:
        import tensorflow as tf
    except ImportError:
        _record_originals()
        return
    if CONFIG.get("profile") == "tf1":  # graph mode: ``tf1/setup`` does the rest
        _finish_setup()
        return
    tf.random.set_seed(CONFIG.get("seed", 0))
    try:
        import keras
        from keras.src.optimizers.base_optimizer import BaseOptimizer
        from tensorflow.python.eager.polymorphic_function.polymorphic_function import Function

        _ = tf.keras.datasets.mnist  # load the lazily exported tf.keras modules before patching
        _register_optimizer_class(BaseOptimizer)
        _guard(BaseOptimizer, "apply_gradients")
        _guard(Function, "__call__")
        keras.utils.set_random_seed(CONFIG.get("seed", 0))
    except Exception as error:  # a Keras without these internals: keep going without them
        print(f"[hw4grade] training budget unavailable: {error}", file=sys.__stderr__)
    if CONFIG.get("mnist_npz"):
        _patch_mnist()
    _finish_setup()


def _finish_setup() -> None:
    _record_originals()
    shell = get_ipython()  # noqa: F821 - defined in the kernel
    shell.events.register("pre_run_cell", _pre_run_cell)
    shell.events.register("post_run_cell", _post_run_cell)
    budget = CONFIG.get("training_steps")
    if budget:
        threading.Thread(target=_watchdog, args=(int(budget),), daemon=True,
                         name="hw4grade-budget").start()
