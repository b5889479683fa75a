"""The notebook's CNN trained in Keras on random data: the reference rate for bench/keras-compare.ts.

Same model as galactic's (src/model/architecture.ts, the notebook defaults): Conv2D 32/64/128 3x3
relu (valid padding) with 2x2 max pooling between them, Flatten, Dense 64 relu, Dense softmax,
Adam 0.001, sparse categorical cross-entropy, accuracy. Like `galactic bench train` it times
train_on_batch on one fixed random batch after a warm-up step (which compiles the graph), and
prints one JSON object on stdout. Needs a Python with TensorFlow; not a project dependency.
"""

import argparse
import json
import os
import resource
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def build(size: int, classes: int) -> tf.keras.Model:
    layers = tf.keras.layers
    model = tf.keras.Sequential([
        layers.Input((size, size, 3)),
        layers.Conv2D(32, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(128, 3, activation="relu"),
        layers.Flatten(),
        layers.Dense(64, activation="relu"),
        layers.Dense(classes, activation="softmax"),
    ])
    model.compile(optimizer=tf.keras.optimizers.Adam(0.001), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    rng = np.random.default_rng(42)
    xs = rng.random((args.batch, args.size, args.size, 3), dtype=np.float32)
    ys = np.arange(args.batch) % 3
    model = build(args.size, 3)
    model.train_on_batch(xs, ys)  # warm-up: traces and compiles the training graph
    times, cpu = [], []
    for _ in range(args.steps):
        started, cpu_started = time.perf_counter(), cpu_seconds()
        model.train_on_batch(xs, ys)
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((cpu_seconds() - cpu_started) * 1000)
    ms = statistics.median(times)
    print(json.dumps({
        "engine": "keras",
        "tensorflow": tf.__version__,
        "keras": tf.keras.__version__ if hasattr(tf.keras, "__version__") else None,
        "imagesPerSecond": round(args.batch / (ms / 1000), 2),
        "msPerStep": {"median": round(ms, 1), "min": round(min(times), 1), "max": round(max(times), 1), "steps": len(times)},
        "cpuMsPerStep": round(statistics.median(cpu), 1),
        "parameters": model.count_params(),
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)"),
    }))


if __name__ == "__main__":
    main()
