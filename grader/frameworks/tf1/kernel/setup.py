"""Run a TensorFlow 1 notebook on today's TensorFlow: the kernel side of the ``tf1`` profile.

Sent as source text into a private module (``sys.modules[MODULES["tf1/setup"]]``) right
after the prelude (``MODULES["prelude"]``), before any student code; the grader has already set
``TF_USE_LEGACY_KERAS=1`` so that ``tf.layers`` comes from legacy Keras (``tf_keras``).
It sets up:

* ``import tensorflow as tf`` gives ``tensorflow.compat.v1`` with v2 behaviour disabled
  (graph mode, ``tf.placeholder``, ``tf.Session``, ``tf.train.AdamOptimizer`` ...);
* MNIST offline: Keras' ``load_data`` and the 2017 notebooks' reader,
  ``tensorflow.examples.tutorials.mnist.input_data``, serve the grader's file,
  and the ``tf.contrib.layers`` initializer they used;
* a training budget: every ``Session.run`` that fetches an optimizer's update op counts
  as a step, and a run past the budget raises ``TrainingBudgetReached`` in the cell;
* a record of the graded functions after every cell, with the part of the notebook (MLP
  GAN, LSGAN, DCGAN, WGAN-GP, extra credit: ``CONFIG["cell_parts"]``, read from the
  headings by the grader) each definition belongs to, because the DCGAN part defines
  ``discriminator`` and ``generator`` again under the same names, and the 2017 WGAN-GP
  part a third time (and may redefine others, such as ``get_solvers``).
"""

import sys
import types

import numpy as np

CONFIG: dict = {}  # replaced by the grader: cell_parts (the part of every notebook cell)
MODULES: dict = {}  # replaced by the loader: kernel file -> its module name in the kernel

NETWORKS = ("discriminator", "generator")  # the names the DCGAN part defines again
GRADED = (*NETWORKS, "leaky_relu", "sample_noise", "gan_loss", "get_solvers", "lsgan_loss",
          "optimal_d_gan", "optimal_d_lsgan", "vae_kl")
HOMEWORK_PARTS = ("gan", "lsgan", "dcgan")  # the parts after these are extra credit
_definitions: dict = {}  # name -> [(cell index, function)], in the order they appeared
_train_ops: set = set()
_steps = {"cell": 0}


def _prelude():
    return sys.modules[MODULES["prelude"]]


def _sees_gpu() -> bool:
    import tensorflow

    return bool(tensorflow.config.list_physical_devices("GPU"))


def _quiet(tf) -> None:
    tf.get_logger().setLevel("ERROR")
    try:
        from tensorflow.python.util import deprecation

        deprecation._PRINT_DEPRECATION_WARNINGS = False
    except Exception:
        pass


def _install_v1():
    import tensorflow

    v1 = tensorflow.compat.v1
    v1.disable_v2_behavior()
    _quiet(tensorflow)
    sys.modules["tensorflow"] = v1
    return v1


# -- the 2017 MNIST reader ---------------------------------------------------------------------


class _DataSet:
    """One split of the old reader: float32 images in [0, 1], shape [N, 784]."""

    def __init__(self, images, labels, one_hot: bool, seed: int):
        self._images = images.reshape(len(images), 784).astype(np.float32) / 255.0
        self._labels = np.eye(10, dtype=np.float32)[labels] if one_hot else labels
        self._rng = np.random.RandomState(seed)
        self._order = self._rng.permutation(len(self._images))
        self._position = 0
        self.epochs_completed = 0

    images = property(lambda self: self._images)
    labels = property(lambda self: self._labels)
    num_examples = property(lambda self: len(self._images))

    def next_batch(self, batch_size, fake_data=False, shuffle=True):
        """The next ``batch_size`` (images, labels), reshuffling at each epoch's end."""
        if self._position + batch_size > len(self._order):
            self.epochs_completed += 1
            self._order = self._rng.permutation(len(self._images)) if shuffle \
                else np.arange(len(self._images))
            self._position = 0
        chosen = self._order[self._position:self._position + batch_size]
        self._position += batch_size
        return self._images[chosen], self._labels[chosen]


def read_data_sets(train_dir=None, fake_data=False, one_hot=False, dtype=None, reshape=True,
                   validation_size=5000, seed=None, source_url=None):
    """The old ``input_data.read_data_sets``: train, validation and test splits."""
    (x_train, y_train), (x_test, y_test) = _prelude().load_mnist_offline()
    seed = 0 if seed is None else seed
    splits = types.SimpleNamespace(
        train=_DataSet(x_train[validation_size:], y_train[validation_size:], one_hot, seed),
        validation=_DataSet(x_train[:validation_size], y_train[:validation_size], one_hot, seed),
        test=_DataSet(x_test, y_test, one_hot, seed))
    return splits


def _install_contrib(tf) -> None:
    """The two ``tf.contrib.layers`` helpers these notebooks used (contrib is gone in TF2)."""
    if hasattr(tf, "contrib"):
        return
    layers = types.SimpleNamespace(
        xavier_initializer=lambda uniform=True, seed=None, dtype=None:
            tf.glorot_uniform_initializer(seed=seed) if uniform
            else tf.glorot_normal_initializer(seed=seed),
        flatten=tf.layers.flatten)
    tf.contrib = types.SimpleNamespace(layers=layers)


def _install_old_reader() -> None:
    names = ["tensorflow.examples", "tensorflow.examples.tutorials",
             "tensorflow.examples.tutorials.mnist"]
    parent = None
    for name in names:
        module = sys.modules.get(name) or types.ModuleType(name)
        module.__path__ = []
        sys.modules[name] = module
        if parent is not None:
            setattr(parent, name.rsplit(".", 1)[1], module)
        parent = module
    reader = types.ModuleType("tensorflow.examples.tutorials.mnist.input_data")
    reader.read_data_sets = read_data_sets
    sys.modules[reader.__name__] = reader
    parent.input_data = reader


# -- the training budget -------------------------------------------------------------------------


def _fetch_names(fetches) -> list:
    """Names of the fetched ops, and of the ops they group (``tf.group``, control deps)."""
    if isinstance(fetches, dict):
        fetches = list(fetches.values())
    if isinstance(fetches, (list, tuple)):
        return [name for fetch in fetches for name in _fetch_names(fetch)]
    name = getattr(fetches, "name", None)
    if not isinstance(name, str):
        return []
    op = getattr(fetches, "op", fetches)
    grouped = [getattr(inner, "name", None) for inner in getattr(op, "control_inputs", [])]
    return [name, getattr(op, "name", name), *grouped]


def _guard_session(tf) -> None:
    from tensorflow.python.client.session import BaseSession
    from tensorflow.python.training.optimizer import Optimizer

    original_apply = Optimizer.apply_gradients

    def apply_gradients(self, *args, **kwargs):
        op = original_apply(self, *args, **kwargs)
        _train_ops.add(getattr(op, "name", None))
        return op

    original_run = BaseSession.run

    def run(self, fetches, *args, **kwargs):
        state = _prelude()._state
        if state["cell_running"] and state["budget_on"] and _train_ops \
                and any(name in _train_ops for name in _fetch_names(fetches)):
            _steps["cell"] += 1
            if _steps["cell"] > int(_prelude().CONFIG.get("training_steps") or 10**12):
                state["hits"] += 1
                raise _prelude().TrainingBudgetReached(
                    f"the grader's budget of {_prelude().CONFIG.get('training_steps')} training "
                    "steps for this cell was reached")
        return original_run(self, fetches, *args, **kwargs)

    apply_gradients.__wrapped__ = original_apply
    run.__wrapped__ = original_run
    Optimizer.apply_gradients = apply_gradients
    BaseSession.run = run


def _reset_steps(*_args) -> None:
    _steps["cell"] = 0


# -- the functions each cell defined -------------------------------------------------------------


def record(cell_index: int) -> None:
    """Note the graded functions as they stand after the notebook's cell ``cell_index``."""
    namespace = get_ipython().user_ns  # noqa: F821 - defined in the kernel
    for name in GRADED:
        value = namespace.get(name)
        if value is None or not callable(value):
            continue
        seen = _definitions.setdefault(name, [])
        if not seen or seen[-1][1] is not value:
            seen.append((cell_index, value))


def _part(cell_index: int) -> str:
    parts = CONFIG.get("cell_parts") or []
    return parts[cell_index] if 0 <= cell_index < len(parts) else "gan"


def _defined_in(name: str, parts) -> list:
    """The functions ``name`` was bound to by cells of ``parts``, in order."""
    return [fn for index, fn in _definitions.get(name, []) if _part(index) in parts]


def _in_namespace(name: str):
    value = get_ipython().user_ns.get(name)  # noqa: F821 - defined in the kernel
    return value if callable(value) else None


def _final_version(name: str):
    """A graded function other than the networks: its last definition in the homework's
    parts, else the first it had (only defined further down), else the namespace's."""
    homework = _defined_in(name, HOMEWORK_PARTS)
    if homework:
        return homework[-1]
    seen = _definitions.get(name, [])
    return seen[0][1] if seen else _in_namespace(name)


def _network(name: str, dcgan: bool):
    """The MLP (``dcgan`` False) or DCGAN definition of ``discriminator`` or ``generator``."""
    if "dcgan" in (CONFIG.get("cell_parts") or []):
        chosen = _defined_in(name, ("dcgan",) if dcgan else ("gan", "lsgan"))
        return chosen[-1] if chosen else None
    seen = _defined_in(name, HOMEWORK_PARTS)  # no DCGAN heading: by order, as the grader says
    if dcgan:
        return seen[1] if len(seen) > 1 else None
    if seen:
        return seen[0]
    return None if _definitions.get(name) else _in_namespace(name)


def resolve(name: str):
    """The function a graded name means in a TF1 notebook, or None.

    Each definition belongs to the part of the notebook its cell is in. ``dc_discriminator``
    and ``dc_generator`` are the last ``discriminator`` / ``generator`` of the DCGAN part;
    the plain names the last one before it. Without a DCGAN heading the parts cannot be
    told apart: the second definition ahead of the extra-credit parts is taken for the DCGAN
    one (the grader says so in the result). Every other name is its last definition in the
    homework's parts (a WGAN-GP or extra-credit redefinition is never graded), or, when it
    has none there, the first definition the notebook made.
    """
    if name.startswith("dc_") and _in_namespace(name) is not None:
        return _in_namespace(name)
    if name in NETWORKS:
        return _network(name, dcgan=False)
    if name.startswith("dc_") and name[3:] in NETWORKS:
        return _network(name[3:], dcgan=True)
    return _final_version(name)


def _patch_mnist() -> None:
    """Every loaded ``*.datasets.mnist`` module's ``load_data`` serves the grader's file."""
    for name, module in list(sys.modules.items()):
        if name.endswith("datasets.mnist") and hasattr(module, "load_data"):
            module.load_data = _prelude().load_mnist_offline


def setup() -> None:
    """Install everything described in the module docstring."""
    _prelude().require_gpu("TensorFlow", _sees_gpu)
    tf = _install_v1()
    _install_contrib(tf)
    _install_old_reader()
    _ = tf.keras.datasets.mnist  # load legacy Keras' dataset module, to patch it
    if _prelude().CONFIG.get("mnist_npz"):
        _patch_mnist()
    tf.set_random_seed(_prelude().CONFIG.get("seed", 0))
    _guard_session(tf)
    get_ipython().events.register("pre_run_cell", _reset_steps)  # noqa: F821
