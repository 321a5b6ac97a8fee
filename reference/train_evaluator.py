"""Train the small MNIST classifier that the grader uses to judge GAN samples.

    python -m reference.train_evaluator --mnist /path/to/mnist --out grader/data/

The classifier reads the GANs' output format, flattened float32 images [N, 784]
scaled to [-1, 1]:

    conv 3x3, 32 filters, ReLU -> max pool 2 -> conv 3x3, 64, ReLU -> max pool 2
    -> flatten (1,600) -> dense 128, ReLU (the "feature" layer) -> dense 10 (logits)

with dropout during training only. It has 225,034 parameters (0.9 MB as float32)
and trains on the full 60,000-image training set in a few minutes on 2 CPU cores.

The run is deterministic: fixed seeds, ``tf.config.experimental.enable_op_determinism()``
and a data order drawn from a seeded numpy generator. The weights file is written
without timestamps, so the same weights always give the same SHA-256.

Outputs, in ``--out``:

* ``evaluator_weights.npz``: the eight float32 weight arrays (conv1_kernel [3, 3, 1, 32],
  conv1_bias, conv2_kernel [3, 3, 32, 64], conv2_bias, dense1_kernel [1600, 128],
  dense1_bias, dense2_kernel [128, 10], dense2_bias), read by ``grader.mnist.evaluator``
  with plain numpy: no Keras file format is involved;
* ``evaluator_stats.npz``: mean ``mu`` (float64 [128]) and covariance ``sigma``
  (float64 [128, 128]) of the MNIST test set's features, as the numpy forward pass
  of ``grader.mnist.evaluator`` computes them;
* ``evaluator_manifest.json``: SHA-256 of both files, test accuracy, training
  settings, versions and date.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import sys
import time
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow import keras
from tensorflow.keras import layers

from grader.mnist import evaluator
from grader.mnist.data import load_mnist

SEED = 20240
EPOCHS = 8
BATCH_SIZE = 128
LEARNING_RATE = 1e-3
MIN_TEST_ACCURACY = 0.99
# The numpy forward pass must reproduce Keras' probabilities to float32 rounding.
MAX_FORWARD_MISMATCH = 1e-4


def preprocess(images: np.ndarray) -> np.ndarray:
    """uint8 images [N, 28, 28] -> float32 [N, 784] in [-1, 1], the GANs' output format."""
    return evaluator.mnist_as_samples(images)


def build_classifier() -> keras.Model:
    """The evaluator CNN; layer names match the keys of the weights file."""
    return keras.Sequential(
        [
            keras.Input(shape=(784,)),
            layers.Reshape((28, 28, 1)),
            layers.Conv2D(32, 3, activation="relu", name="conv1"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu", name="conv2"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(128, activation="relu", name="dense1"),
            layers.Dropout(0.5),
            layers.Dense(10, name="dense2"),
        ],
        name="mnist_evaluator",
    )


def train(model: keras.Model, x_train: np.ndarray, y_train: np.ndarray, epochs: int,
          seed: int) -> None:
    """Adam with a cosine-decayed learning rate; a fresh seeded permutation each epoch."""
    steps_per_epoch = -(-len(x_train) // BATCH_SIZE)
    schedule = keras.optimizers.schedules.CosineDecay(LEARNING_RATE,
                                                      decay_steps=epochs * steps_per_epoch)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        order = rng.permutation(len(x_train))
        model.fit(x_train[order], y_train[order], batch_size=BATCH_SIZE, initial_epoch=epoch,
                  epochs=epoch + 1, shuffle=False, verbose=2)


def weights_as_arrays(model: keras.Model) -> dict[str, np.ndarray]:
    """The model's kernels and biases under the names ``grader.mnist.evaluator`` expects."""
    arrays = {}
    for name in ("conv1", "conv2", "dense1", "dense2"):
        kernel, bias = model.get_layer(name).get_weights()
        arrays[f"{name}_kernel"] = kernel.astype(np.float32)
        arrays[f"{name}_bias"] = bias.astype(np.float32)
    return arrays


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like ``np.savez`` (uncompressed), but with fixed timestamps, so equal arrays
    always give equal bytes; ``np.load`` reads the file as usual."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            archive.writestr(info, buffer.getvalue())


def check_forward_pass(model: keras.Model, weights: dict[str, np.ndarray],
                       x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run the numpy forward pass and check it against Keras; return (features, probs)."""
    features, probs = evaluator.forward(weights, x_test)
    feature_model = keras.Model(model.inputs, model.get_layer("dense1").output)
    keras_features = feature_model.predict(x_test, batch_size=1000, verbose=0)
    keras_probs = tf.nn.softmax(model.predict(x_test, batch_size=1000, verbose=0)).numpy()
    prob_gap = float(np.abs(probs - keras_probs).max())
    feature_gap = float(np.abs(features - keras_features).max() / np.abs(keras_features).max())
    print(f"numpy vs Keras: max |prob diff| {prob_gap:.2e}, "
          f"max relative feature diff {feature_gap:.2e}")
    if prob_gap > MAX_FORWARD_MISMATCH or feature_gap > MAX_FORWARD_MISMATCH:
        raise RuntimeError("the numpy forward pass of grader.mnist.evaluator does not match Keras")
    return features, probs


def main(argv: list[str] | None = None) -> int:
    """Train, check, and write the weights, statistics and manifest."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", help="folder of the MNIST IDX files (default: $HW4_MNIST_DIR)")
    parser.add_argument("--out", default="grader/data", help="output folder (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)

    start = time.time()
    keras.utils.set_random_seed(args.seed)
    tf.config.experimental.enable_op_determinism()

    mnist = load_mnist(args.mnist, allow_download=False)
    if len(mnist.x_train) != 60000 or len(mnist.x_test) != 10000:
        print(f"need the full MNIST, got {mnist.describe()}", file=sys.stderr)
        return 1
    x_train, y_train = preprocess(mnist.x_train), mnist.y_train.astype(np.int64)
    x_test, y_test = preprocess(mnist.x_test), mnist.y_test.astype(np.int64)

    model = build_classifier()
    model.summary()
    train(model, x_train, y_train, args.epochs, args.seed)
    train_seconds = time.time() - start

    weights = weights_as_arrays(model)
    features, probs = check_forward_pass(model, weights, x_test)
    accuracy = float((probs.argmax(axis=1) == y_test).mean())
    print(f"test accuracy (numpy forward pass): {accuracy:.4f}")
    if accuracy < MIN_TEST_ACCURACY:
        print(f"test accuracy below {MIN_TEST_ACCURACY}: nothing written", file=sys.stderr)
        return 1
    mu, sigma = evaluator.feature_statistics(features)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    weights_path = out / evaluator.WEIGHTS_FILE
    stats_path = out / evaluator.STATS_FILE
    save_arrays(weights_path, weights)
    save_arrays(stats_path, {"mu": mu, "sigma": sigma})
    manifest = {
        "weights_file": weights_path.name,
        "weights_sha256": evaluator.sha256_of(weights_path),
        "weights_bytes": weights_path.stat().st_size,
        "stats_file": stats_path.name,
        "stats_sha256": evaluator.sha256_of(stats_path),
        "test_accuracy": accuracy,
        "test_images": len(x_test),
        "parameters": int(sum(array.size for array in weights.values())),
        "architecture": "conv3x3(32)-relu-maxpool2-conv3x3(64)-relu-maxpool2-flatten"
                        "-dense(128)-relu[features]-dropout(0.5)-dense(10)",
        "input": "float32 [N, 784], uint8 pixels / 127.5 - 1 (range [-1, 1])",
        "training": {
            "seed": args.seed,
            "epochs": args.epochs,
            "batch_size": BATCH_SIZE,
            "optimizer": "Adam",
            "learning_rate": LEARNING_RATE,
            "schedule": "cosine decay to 0 over all steps",
            "loss": "sparse categorical cross-entropy on logits",
            "train_images": len(x_train),
            "data_order": "numpy default_rng(seed).permutation each epoch",
            "op_determinism": True,
            "seconds": round(train_seconds, 1),
        },
        "versions": {
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
        },
        "mnist": f"{mnist.source}: {len(mnist.x_train)} training, {len(mnist.x_test)} test images",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    manifest_path = out / evaluator.MANIFEST_FILE
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {weights_path} ({manifest['weights_bytes']:,} bytes, "
          f"sha256 {manifest['weights_sha256']}), {stats_path} and {manifest_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
