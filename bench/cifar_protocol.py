"""Which training protocol reproduces the lecture's from-scratch CIFAR-10 accuracies?

The lecture trains its CNN (here `cifar_vgg.cifar_cnn`) on 100 CIFAR-10 images per class (1,000
images) with the test set as validation data and reports test accuracy over trials:
tanh 40.0-41.4 %, ReLU 36.4-38.8 %, sigmoid 37.3-38.5 %. It gives no epochs, no batch
size and shows no pixel scaling. This script trains the network under a grid of
protocols (activation x pixel scaling x learning rate x seed), in plain Keras 3
(compile / fit with validation_data), and records every epoch's val_accuracy,
val_loss, accuracy and loss, so last-epoch and best-epoch accuracies at any epoch
count can be read off one run.

Test data: a FIXED random subset of 2,000 of the 10,000 test images
(numpy default_rng(TEST_SUBSET_SEED), the same for every network), not the full set.
Training data: 100 images per class drawn with numpy default_rng(seed)
(`common.lesson.data.stratified_sample`, as the toolkit draws its small sets).
Batch size 32 (Keras's default), Adam, sparse categorical cross-entropy.

Runs on ONE CPU thread (intra- and inter-op) so it leaves the other core free.
Results go to --out after every finished network (temp file + os.replace); networks
already in --out are skipped, so a stopped run can be resumed with the same command.

Grid entries are ACTIVATION:SCALING:LR:SEED, e.g. relu:raw:0.001:0, where SCALING is
raw (uint8 pixels cast to float32, 0-255, as the lecture's slide shows) or unit
(divided by 255, the toolkit's protocol).

    python bench/cifar_protocol.py --data-dir DIR --epochs 60 \
        --grid relu:raw:0.001:0 tanh:raw:0.001:0 sigmoid:raw:0.001:0
"""

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import numpy as np

from common import startup

startup.prepare_tensorflow()  # before keras, as keras-io sets KERAS_BACKEND
import cifar_vgg
from common.lesson.data import stratified_sample

import tensorflow as tf

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)

import keras  # noqa: E402

TEST_SUBSET_SEED = 20240601
TEST_SUBSET_SIZE = 2000
PER_CLASS = 100
BATCH_SIZE = 32
REPORT_EPOCHS = (10, 20, 30, 40, 50, 60, 80, 100)

DEFAULT_GRID = [f"{act}:raw:0.001:{seed}" for seed in (0, 1) for act in ("relu", "tanh", "sigmoid")]


def load_cifar10(data_dir: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test) from the six .npz files, uint8, labels (n,)."""
    parts = [np.load(os.path.join(data_dir, f"cifar10_train_part{p}.npz")) for p in range(1, 6)]
    x_train = np.concatenate([part["x_train"] for part in parts])
    y_train = np.concatenate([part["y_train"] for part in parts]).reshape(-1)
    test = np.load(os.path.join(data_dir, "cifar10_test.npz"))
    x_test, y_test = test["x_test"], test["y_test"].reshape(-1)
    for name, x, n in (("x_train", x_train, 50000), ("x_test", x_test, 10000)):
        if x.shape != (n, 32, 32, 3) or x.dtype != np.uint8:
            sys.exit(f"{name}: expected uint8 ({n}, 32, 32, 3), got {x.dtype} {x.shape}")
    return x_train, y_train, x_test, y_test


def scaled(x: np.ndarray, scaling: str) -> np.ndarray:
    """float32 pixels: raw 0-255 or unit [0, 1]."""
    x = x.astype("float32")
    return x / 255.0 if scaling == "unit" else x


def parse_entry(entry: str) -> dict:
    try:
        activation, scaling, lr, seed = entry.split(":")
        config = {"activation": activation, "scaling": scaling,
                  "learning_rate": float(lr), "seed": int(seed)}
    except ValueError:
        sys.exit(f"bad grid entry {entry!r}: want ACTIVATION:SCALING:LR:SEED")
    if scaling not in ("raw", "unit"):
        sys.exit(f"bad scaling in {entry!r}: raw or unit")
    return config


def key_of(config: dict, epochs: int) -> str:
    return (f"{config['activation']}:{config['scaling']}:{config['learning_rate']:g}:"
            f"{config['seed']}:e{epochs}")


def summarise(history: dict) -> dict:
    """Test accuracy at the report epochs (last-epoch protocol) and the best epoch's."""
    val = history["val_accuracy"]
    best = int(np.argmax(val))
    return {"at_epoch": {str(e): val[e - 1] for e in REPORT_EPOCHS if e <= len(val)},
            "best_val_accuracy": val[best], "best_epoch": best + 1,
            "best_within": {str(e): {"val_accuracy": max(val[:e]), "epoch": int(np.argmax(val[:e])) + 1}
                            for e in REPORT_EPOCHS if e <= len(val)}}


def write_atomically(path: str, payload: dict) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=folder, prefix=".cifar_protocol.", suffix=".tmp")
    with os.fdopen(handle, "w") as stream:
        json.dump(payload, stream, indent=1)
    os.chmod(temp, 0o644)
    os.replace(temp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True,
                        help="folder with cifar10_train_part1..5.npz and cifar10_test.npz")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--grid", nargs="+", default=DEFAULT_GRID,
                        help="ACTIVATION:SCALING:LR:SEED entries, run in this order")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                       "cifar_protocol.json"))
    args = parser.parse_args()
    configs = [parse_entry(entry) for entry in args.grid]

    x_train, y_train, x_test, y_test = load_cifar10(args.data_dir)
    test_keep = np.sort(np.random.default_rng(TEST_SUBSET_SEED).choice(
        len(y_test), TEST_SUBSET_SIZE, replace=False))
    x_test, y_test = x_test[test_keep], y_test[test_keep]

    results = {}
    if os.path.exists(args.out):
        with open(args.out) as stream:
            results = json.load(stream)
    results.setdefault("protocol", {
        "train": f"{PER_CLASS} images per class drawn with numpy default_rng(seed) "
                 "(common.lesson.data.stratified_sample); fit shuffles each epoch",
        "test": f"fixed random subset of {TEST_SUBSET_SIZE} of the 10,000 test images, "
                f"numpy default_rng({TEST_SUBSET_SEED}).choice, same for every network; "
                "used as validation_data",
        "batch_size": BATCH_SIZE, "optimizer": "Adam", "loss": "sparse_categorical_crossentropy",
        "model": "cifar_vgg.cifar_cnn(activation, seed): GlorotUniform kernels, zero biases",
        "threads": "TensorFlow intra_op=1, inter_op=1",
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__,
                     "numpy": np.__version__}})
    runs = results.setdefault("runs", {})

    for config in configs:
        key = key_of(config, args.epochs)
        if key in runs:
            print(f"{key}: already in {args.out}, skipped", flush=True)
            continue
        seed = config["seed"]
        keras.utils.set_random_seed(seed)
        chosen = stratified_sample(y_train, PER_CLASS, np.random.default_rng(seed))
        x_small, y_small = scaled(x_train[chosen], config["scaling"]), y_train[chosen]
        x_val = scaled(x_test, config["scaling"])
        model = cifar_vgg.cifar_cnn(config["activation"], seed)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=config["learning_rate"]),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        start = time.time()
        history = model.fit(x_small, y_small, batch_size=BATCH_SIZE, epochs=args.epochs,
                            validation_data=(x_val, y_test), verbose=2).history
        seconds = time.time() - start
        history = {name: [float(v) for v in values] for name, values in history.items()
                   if name in ("accuracy", "loss", "val_accuracy", "val_loss")}
        runs[key] = {**config, "epochs": args.epochs, "seconds": round(seconds, 1),
                     "summary": summarise(history), "history": history}
        write_atomically(args.out, results)
        summary = runs[key]["summary"]
        print(f"{key}: {seconds:.0f} s, at epochs {summary['at_epoch']}, best "
              f"{summary['best_val_accuracy']:.4f} at epoch {summary['best_epoch']}", flush=True)
        keras.backend.clear_session()


if __name__ == "__main__":
    main()
