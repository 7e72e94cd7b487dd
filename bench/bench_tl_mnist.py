"""How much faster is tl_mnist.py than the lecture's plain Keras code? Same data, same protocol.

Runs, one after the other on the same data:
  1. plain: the lecture's way in Keras 3. Pretrain with `fit` (15 epochs, batch 128),
     save and reload; then per trial a CNN from scratch and a transfer model built from
     the loaded model's layers, each a whole model in `fit` (100 epochs, batch 4). It runs
     in a process of its own with TensorFlow as a student's script gets it: oneDNN as
     TensorFlow sets it on this CPU (off on AVX2-only CPUs), not as the toolkit does.
  2. toolkit: `tl_mnist.main` with the same settings (pretraining included: --retrain).
and prints both wall times, the ratio, and both accuracy distributions.

    python bench/bench_tl_mnist.py --data mnist.npz
    python bench/bench_tl_mnist.py --data mnist.npz --trials 3 --epochs 10   # shorter

Writes bench/results/bench_tl_mnist.json.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from common import startup

startup.prepare_tensorflow()  # before keras, as keras-io sets KERAS_BACKEND
import keras
from keras import layers
import tl_mnist
from common import files
from common.lesson import data
from common.runs import stats, tables
from common.runs.device import configure_device


def lecture_cnn_plain(num_classes: int) -> keras.Sequential:
    """The lecture's CNN as its code builds it: default initialisers, no names."""
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dropout(0.5), layers.Dense(num_classes, activation="softmax"),
    ])


def fit_plain(model: keras.Model, x: np.ndarray, y: np.ndarray, epochs: int, batch_size: int) -> None:
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0)


def run_plain(config: tl_mnist.Config, folder: str) -> dict:
    """The lecture's protocol, written the plain way; returns accuracies and times."""
    dataset = data.load_mnist(config.data, "mnist")
    x_big, y_big = data.select_classes(dataset.x_train, dataset.y_train, tl_mnist.EVEN_DIGITS)
    x_pool, y_pool = data.select_classes(dataset.x_train, dataset.y_train, tl_mnist.ODD_DIGITS)
    x_test, y_test = data.select_classes(dataset.x_test, dataset.y_test, tl_mnist.ODD_DIGITS)
    x_big, x_pool, x_test = (data.to_unit_float(x) for x in (x_big, x_pool, x_test))
    start = time.perf_counter()
    keras.utils.set_random_seed(config.seed)
    big_model = lecture_cnn_plain(5)
    fit_plain(big_model, x_big, y_big, config.pretrain_epochs, config.pretrain_batch_size)
    path = os.path.join(folder, "mnist_5_15_plain.keras")
    big_model.save(path)
    pretrain_s = time.perf_counter() - start
    print(f"plain: pretraining {pretrain_s:.0f} s", flush=True)
    results: dict[str, list[float]] = {"no transfer": [], "transfer": []}
    for k in range(config.trials):
        keras.utils.set_random_seed(config.seed + k)
        rng = np.random.default_rng(config.seed + k)
        chosen = data.stratified_sample(y_pool, config.small_size // 5, rng)
        x_small, y_small = x_pool[chosen], y_pool[chosen]
        scratch = lecture_cnn_plain(5)
        fit_plain(scratch, x_small, y_small, config.epochs, config.batch_size)
        results["no transfer"].append(scratch.evaluate(x_test, y_test, verbose=0)[1])
        loaded = keras.models.load_model(path)
        transfer = keras.Sequential([keras.Input((28, 28, 1)), *loaded.layers[:-1],
                                     layers.Dense(5, activation="softmax")])
        for layer in transfer.layers[:-1]:
            layer.trainable = False
        fit_plain(transfer, x_small, y_small, config.epochs, config.batch_size)
        results["transfer"].append(transfer.evaluate(x_test, y_test, verbose=0)[1])
        print(f"plain: trial {k}: {100 * results['no transfer'][-1]:.1f}% / "
              f"{100 * results['transfer'][-1]:.1f}%, {time.perf_counter() - start:.0f} s",
              flush=True)
    return {"accuracies": results, "pretrain_s": pretrain_s,
            "total_s": time.perf_counter() - start}


def tensorflow_default_onednn() -> str:
    """"1" where TensorFlow turns oneDNN on by itself on this CPU, else "0": asked of a
    fresh TensorFlow with TF_ENABLE_ONEDNN_OPTS unset (the toolkit sets it to 1)."""
    environment = {key: value for key, value in os.environ.items()
                   if key != "TF_ENABLE_ONEDNN_OPTS"}
    probe = ("from tensorflow.python.util import _pywrap_util_port as port; "
             "print(int(port.IsMklEnabled()))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, env={**environment, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return done.stdout.split()[-1]


def run_plain_as_a_student_would(args: argparse.Namespace, folder: str) -> dict:
    """`run_plain` in a process of its own, with TensorFlow's own oneDNN setting."""
    onednn = tensorflow_default_onednn()
    path = os.path.join(folder, "plain.json")
    subprocess.run([sys.executable, os.path.abspath(__file__), "--data", args.data,
                    "--trials", str(args.trials), "--epochs", str(args.epochs),
                    "--plain-here", path], check=True,
                   env={**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn})
    with open(path) as handle:
        return {**json.load(handle), "onednn": onednn == "1"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="mnist.npz in Keras's layout")
    parser.add_argument("--trials", type=int, default=15)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--only", choices=("plain", "toolkit"), help="run one side only")
    parser.add_argument("--plain-here", metavar="JSON", help=argparse.SUPPRESS)  # the child
    args = parser.parse_args()
    config = tl_mnist.Config(data=args.data, dataset="mnist", trials=args.trials,
                             epochs=args.epochs, retrain=True)
    report: dict = {"config": {"trials": args.trials, "epochs": args.epochs, "data": args.data},
                    "device": configure_device(), "environment": tables.environment()}
    with tempfile.TemporaryDirectory() as folder:
        if args.plain_here:  # the plain side's own process (run_plain_as_a_student_would)
            files.atomic_write_json(args.plain_here, run_plain(config, folder))
            return
        if args.only != "toolkit":
            report["plain"] = run_plain_as_a_student_would(args, folder)
        if args.only != "plain":
            start = time.perf_counter()
            toolkit = tl_mnist.main(tl_mnist.Config(**{**config.__dict__, "models_dir": folder,
                                                       "out": folder}))
            report["toolkit"] = {"accuracies": toolkit["accuracies"],
                                 "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "1",
                                 "pretrain_s": toolkit["timings_s"]["pretrain"],
                                 "total_s": time.perf_counter() - start}
    print("\nwall time, pretraining included:")
    for side in ("plain", "toolkit"):
        if side in report:
            summary = {name: stats.summarize(values)
                       for name, values in report[side]["accuracies"].items()}
            report[side]["summary"] = summary
            print(f"  {side:8s} {report[side]['total_s']:7.1f} s (pretraining "
                  f"{report[side]['pretrain_s']:.1f} s; oneDNN "
                  f"{'on' if report[side]['onednn'] else 'off'})")
            print("  " + tables.summary_table(summary, tl_mnist.LECTURE).replace("\n", "\n  "))
    if "plain" in report and "toolkit" in report:
        report["ratio"] = report["toolkit"]["total_s"] / report["plain"]["total_s"]
        print(f"  toolkit / plain = {report['ratio']:.3f} ({1 / report['ratio']:.1f}x faster)")
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(out, exist_ok=True)
    files.atomic_write_json(os.path.join(out, "bench_tl_mnist.json"), report)


if __name__ == "__main__":
    main()
