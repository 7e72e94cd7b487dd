"""How much faster are mnist_vgg.py and cifar_vgg.py's transfer runs than the plain way?

The plain way (the lecture's): per head and trial, the whole model (frozen VGG16 + head)
in `fit`, so VGG16 runs forward on every training image every epoch, and for CIFAR-10
on the whole test set as validation data every epoch too. The toolkit computes VGG16's
features once and trains the heads on them. Same data, same epochs, one after the other.

    python bench/bench_vgg.py --script cifar --data cifar10.npz --trials 1 --epochs 20
    python bench/bench_vgg.py --script mnist --data mnist.npz --trials 1 --options output

VGG16 runs with random weights (`--weights none`): ImageNet's cannot be downloaded
here, and the arithmetic is the same. Writes bench/results/bench_vgg_<script>.json.
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from common import startup

startup.prepare_tensorflow()  # before keras, as keras-io sets KERAS_BACKEND
import keras
from keras import layers
import cifar_vgg
import mnist_vgg
from common import files
from common.runs.trial_log import trial_seeds
from common.lesson import bases, data
from common.runs import tables


def plain_model(base: keras.Model, variant: str, num_classes: int) -> keras.Sequential:
    """The lecture's way: the frozen VGG16 and the head in one Sequential, default seeds."""
    hidden = {"output": [], "dropout": [layers.Dropout(0.5)],
              "dense512": [layers.Dense(512, activation="tanh"), layers.Dropout(0.5)],
              "dropout2": [layers.Dropout(0.5), layers.Dense(512, activation="tanh"),
                           layers.Dropout(0.5)],
              "dense512_nodrop": [layers.Dense(512, activation="tanh")]}[variant]
    model = keras.Sequential([keras.Input(bases.VGG16_INPUT), base, layers.Flatten(), *hidden,
                              layers.Dense(num_classes, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def run_plain(args: argparse.Namespace) -> dict:
    """Every (variant, trial) as a whole model in fit; returns accuracies and time."""
    keras.utils.set_random_seed(0)
    base = bases.pretrained_base("vgg16", "none")
    if args.script == "cifar":
        dataset = data.load_cifar10(args.data)
        x_pool, y_pool = dataset.x_train, dataset.y_train
        per_class, variants, classes = 100, [cifar_vgg.Config.head], 10
    else:
        dataset = data.load_mnist(args.data, "mnist")
        x_pool, y_pool = data.select_classes(dataset.x_train, dataset.y_train, data.ODD_DIGITS)
        x_pool = data.pad_and_repeat(x_pool)
        per_class, variants, classes = 20, [v.strip() for v in args.options.split(",")], 5
    test_x, test_y = dataset.x_test, dataset.y_test
    if args.script == "cifar":
        test_x, test_y = data.subsample(test_x, test_y, args.test_size, 0)
    else:
        test_x, test_y = data.select_classes(test_x, test_y, data.ODD_DIGITS)
        test_x = data.pad_and_repeat(test_x)
    test_x = bases.preprocess(test_x, "vgg16")
    start = time.perf_counter()
    results: dict[str, list[float]] = {variant: [] for variant in variants}
    for variant in variants:
        for seed in trial_seeds(0, args.trials):
            keras.utils.set_random_seed(seed)
            chosen = data.stratified_sample(y_pool, per_class, np.random.default_rng(seed))
            model = plain_model(base, variant, classes)
            validation = (test_x, test_y) if args.script == "cifar" else None
            model.fit(bases.preprocess(x_pool[chosen], "vgg16"), y_pool[chosen],
                      epochs=args.epochs, batch_size=args.batch_size,
                      validation_data=validation, verbose=0)
            results[variant].append(model.evaluate(test_x, test_y, verbose=0)[1])
            print(f"plain: {variant} seed {seed}: {100 * results[variant][-1]:.1f}%, "
                  f"{time.perf_counter() - start:.0f} s", flush=True)
    return {"accuracies": results, "total_s": time.perf_counter() - start}


def run_toolkit(args: argparse.Namespace, folder: str) -> dict:
    """The script's own main, transfer part only, same settings."""
    start = time.perf_counter()
    if args.script == "cifar":
        config = cifar_vgg.Config(trials=args.trials, options="vgg16", epochs=args.epochs,
                                  batch_size=args.batch_size, data=args.data, weights="none",
                                  test_size=args.test_size, out=folder)
        payload = cifar_vgg.main(config)
    else:
        config = mnist_vgg.Config(trials=args.trials, options=args.options, epochs=args.epochs,
                                  batch_size=args.batch_size, data=args.data, dataset="mnist",
                                  weights="none", out=folder)
        payload = mnist_vgg.main(config)
    return {"accuracies": payload["accuracies"], "total_s": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--script", choices=("cifar", "mnist"), required=True)
    parser.add_argument("--data", required=True, help="the dataset .npz in Keras's layout")
    parser.add_argument("--trials", type=int, default=1)
    parser.add_argument("--epochs", type=int, help="default: the script's")
    parser.add_argument("--options", default="output", help="mnist only: the heads compared")
    parser.add_argument("--test-size", type=int, default=0, help="cifar only: test images "
                        "(0: all 10,000)")
    args = parser.parse_args()
    defaults = cifar_vgg.Config() if args.script == "cifar" else mnist_vgg.Config()
    args.epochs = args.epochs or defaults.epochs
    args.batch_size = defaults.batch_size
    report: dict = {"config": vars(args), "device": mnist_vgg.configure_device(),
                    "environment": tables.environment()}
    report["plain"] = run_plain(args)
    with tempfile.TemporaryDirectory() as folder:
        report["toolkit"] = run_toolkit(args, folder)
    report["ratio"] = report["toolkit"]["total_s"] / report["plain"]["total_s"]
    print(f"\n{args.script}_vgg transfer, {args.trials} trial(s), {args.epochs} epochs:")
    for side in ("plain", "toolkit"):
        print(f"  {side:8s} {report[side]['total_s']:7.1f} s  accuracies "
              f"{report[side]['accuracies']}")
    print(f"  toolkit / plain = {report['ratio']:.3f} ({1 / report['ratio']:.0f}x faster)")
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(out, exist_ok=True)
    files.atomic_write_json(os.path.join(out, f"bench_vgg_{args.script}.json"), report)


if __name__ == "__main__":
    main()
