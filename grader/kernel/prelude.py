"""Code the grader runs in a submission's kernel before any student code, whatever the
framework.

This file is sent to the kernel as source text, with ``CONFIG`` filled in, and runs in
a private module (``sys.modules[MODULES["prelude"]]``), so it adds nothing to the
student's namespace. It must not import the grader, nor any framework: the kernel only
needs the standard library and numpy here. It sets up:

* a cap on what the kernel writes to stdout and stderr per cell;
* seeds, and a record of the library functions the probes rely on (CONFIG's ``watched``,
  chosen by the framework), so that a later monkeypatch can be reported;
* the training budget's machinery: each framework's ``setup`` (``grader/frameworks/<name>/
  kernel/setup.py``, run right after this) counts the steps of the current cell, either
  by calling :func:`count_step` from every optimizer step or by handing a counter to
  :func:`use_step_counter` that a watchdog thread reads; past the budget the student's
  own next step raises ``TrainingBudgetReached`` (:func:`check_budget`);
* :func:`load_mnist_offline`: the arrays of the MNIST file the grader prepared, which each
  framework's setup serves under its library's own loader.
"""

# ruff: noqa: E402
import sys
import threading
import time

CONFIG: dict = {}  # replaced by the grader: seed, mnist_npz, training_steps, output_limit,
# watched (the library functions whose replacement is reported: some of the wire's WATCHED),
# gpu (whether the grade gave this kernel a GPU)


class TrainingBudgetReached(BaseException):
    """Raised in a cell whose training passed the grader's step budget (not a student error)."""


_state = {"cell_running": False, "hits": 0, "written": 0, "budget_on": True, "over": False,
          "steps": 0}
_counter: dict = {"start": None, "steps": None}  # a framework's step counter (use_step_counter)
_originals: dict = {}


def use_step_counter(start_cell, steps_this_cell) -> None:
    """Count a cell's training steps with a framework's functions: ``start_cell()`` when a
    cell starts, ``steps_this_cell()`` (read by the watchdog thread) since then."""
    _counter["start"], _counter["steps"] = start_cell, steps_this_cell


def _steps_this_cell() -> int:
    steps = _state["steps"]
    if _counter["steps"] is not None:
        try:
            steps = max(steps, int(_counter["steps"]()))
        except Exception:
            pass
    return steps


def count_step() -> None:
    """One optimizer step of the student's code (a framework's hook calls this before the
    step): past the budget it raises ``TrainingBudgetReached`` instead."""
    if _state["cell_running"] and _state["budget_on"]:
        _state["steps"] += 1
        budget = CONFIG.get("training_steps")
        if budget and _state["steps"] > int(budget):
            _state["over"] = True
    check_budget()


def _watchdog(budget: int) -> None:
    """Mark the cell as over budget; the check itself runs in the main thread (see below)."""
    while True:
        time.sleep(0.05)
        if _state["cell_running"] and _state["budget_on"] and not _state["over"]:
            _state["over"] = _steps_this_cell() > budget


def check_budget() -> None:
    """Stop a training loop that passed the budget, from inside its own next step.

    A framework's setup calls it from the library's step functions (TensorFlow: every
    ``tf.function`` call and optimizer update), so the exception is raised synchronously in
    the student's code, never inside the kernel's own machinery.
    """
    if _state["over"] and _state["cell_running"] and _state["budget_on"]:
        _state["hits"] += 1
        raise TrainingBudgetReached(f"the grader's budget of {CONFIG.get('training_steps')} "
                                    "training steps for this cell was reached")


def end_notebook() -> None:
    """The notebook has run: the grader's own probes and training are not budgeted."""
    _state["budget_on"] = False


def _pre_run_cell(*_args) -> None:
    if _counter["start"] is not None:
        try:
            _counter["start"]()
        except Exception:
            pass
    _state["steps"] = 0
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


def require_gpu(library: str, sees_gpu) -> None:
    """Stop the kernel's set-up when the grade gave it a GPU (``CONFIG["gpu"]``) and
    ``library`` finds none (``sees_gpu()`` false): trained on the CPU with a GPU's budgets
    and judged by a GPU's lines, every convergence grade would be wrong."""
    if CONFIG.get("gpu") and not sees_gpu():
        raise RuntimeError(f"the grade gave this kernel a GPU and {library} finds none in it: "
                           "grade with --device cpu, or make the GPU usable inside the "
                           "sandbox (its driver, /dev/nvidia*)")


def load_mnist_offline(path=None):
    """``(x_train, y_train), (x_test, y_test)`` of the grader's MNIST file, as Keras'
    ``load_data`` returns them (uint8 images [N, 28, 28], integer labels)."""
    import numpy as np

    with np.load(CONFIG["mnist_npz"]) as data:
        return (data["x_train"], data["y_train"]), (data["x_test"], data["y_test"])


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
    _record_originals()
    shell = get_ipython()  # noqa: F821 - defined in the kernel
    shell.events.register("pre_run_cell", _pre_run_cell)
    shell.events.register("post_run_cell", _post_run_cell)
    budget = CONFIG.get("training_steps")
    if budget:
        threading.Thread(target=_watchdog, args=(int(budget),), daemon=True,
                         name="hw4grade-budget").start()
