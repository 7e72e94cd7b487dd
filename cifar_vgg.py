"""CIFAR-10 from 100 images per class: a small CNN from scratch against frozen ImageNet
VGG16 with a new head (the lecture's third experiment).

Each trial draws 100 training images of each of the 10 classes; the whole test set is
the validation data after every epoch and the final evaluation, so the curves show the
small CNN overfitting. Here transfer from ImageNet helps: the photographs it learned
from are close to CIFAR-10's.

    python cifar_vgg.py                          # every run, 3 trials each
    python cifar_vgg.py --quick --weights none   # a complete tiny run (under a minute)
    python cifar_vgg.py --data cifar10.npz --runs cnn_tanh,vgg16

Expect about 40–41% from scratch with tanh and 48–50% with VGG16 (the lecture's ranges).
With --weights none VGG16 keeps random weights: a control, not transfer.
Results: results/cifar_vgg.json and results/cifar_vgg.png; finished trials are kept
in results/cifar_vgg.trials.jsonl (--resume goes on from them).
"""

import dataclasses
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

import common  # noqa: F401  (quiets TensorFlow's start-up messages before keras loads)
import keras
from common import cli, data, models, reporting, stats, trial_log, trials, vgg
from common.device import configure_device

CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
               "ship", "truck")
SCRATCH_RUNS = {"cnn_tanh": "tanh", "cnn_relu": "relu", "cnn_sigmoid": "sigmoid"}
RUNS = (*SCRATCH_RUNS, "vgg16")
LECTURE = {"cnn_tanh": (0.400, 0.414), "cnn_relu": (0.364, 0.388),
           "cnn_sigmoid": (0.373, 0.385), "vgg16": (0.480, 0.495)}


@dataclass(frozen=True)
class Config(cli.RunOptions):
    """The lecture's protocol; every field is a command-line flag."""

    trials: int = cli.option(3, "trials per run; trial k uses seed --seed + k", minimum=1)
    runs: str = cli.option("all", "comma-separated runs: " + ", ".join(RUNS) + " (all: every one)")
    epochs: int = cli.option(20, "epochs of training (the lecture gives none; 20 lands in its "
                             "range)", group="training", minimum=1)
    batch_size: int = cli.option(32, "batch size", group="training", minimum=1)
    per_class: int = cli.option(100, "training images per class and trial", group="data",
                                minimum=1)
    seed: int = cli.option(0, "base seed (trial k uses seed + k)", minimum=0)
    data: str | None = cli.option(None, "an .npz of CIFAR-10: x_train, y_train, x_test, y_test "
                                  "(Keras's layout) or the lecture's training_inputs, "
                                  "training_labels, test_inputs, test_labels", group="data")
    test_size: int = cli.option(0, "use at most this many test images (0: all 10,000)",
                                group="data", minimum=0)
    weights: str = cli.option("imagenet", "VGG16's weights: imagenet (Keras's cache or a "
                              "download), a weights file, or none (random: not transfer)",
                              group="model")
    head: str = cli.option("dense512_nodrop", "the head on VGG16 (the lecture's: Dense(512) "
                           "then Dense(10))", group="model", choices=tuple(vgg.HEAD_VARIANTS))
    feature_cache: str | None = cli.option(None, "keep VGG16's features in this folder, so "
                                           "a second run skips computing them", group="model")
    out: str = cli.option("results", "folder for cifar_vgg.json and cifar_vgg.png",
                          group="output")
    quick: bool = cli.option(False, "a complete tiny run: 1 trial, 3 epochs, 20 images per "
                             "class, 1,000 test images", group="output")


QUICK = {"trials": 1, "epochs": 3, "per_class": 20, "test_size": 1000}


def train_from_scratch(run: str, seeds: list[int], dataset: data.Dataset, small_sets: dict,
                       test: tuple, config: Config) -> list[dict]:
    """The lecture's CNN with the run's activation, from scratch, one per trial side by side."""
    print(f"\nno transfer: the lecture's CNN from scratch ({run}), {config.epochs} epochs, "
          f"batch {config.batch_size}, {len(seeds)} trials side by side")
    cnns = [models.cifar_cnn(10, seed, SCRATCH_RUNS[run]) for seed in seeds]
    train_sets = [(data.to_unit_float(dataset.x_train[small_sets[seed]]),
                   dataset.y_train[small_sets[seed]]) for seed in seeds]
    scores, histories = trials.train_with_history(
        cnns, train_sets, (data.to_unit_float(test[0]), test[1]), seeds, config.epochs,
        config.batch_size, label=run)
    return [{"accuracy": score, "history": history} for score, history in zip(scores, histories)]


def train_with_transfer(seeds: list[int], dataset: data.Dataset, small_sets: dict, test: tuple,
                        config: Config) -> list[dict]:
    """VGG16, frozen: its features computed once, then a new head per trial on them."""
    base = vgg.vgg16_base(config.weights, seed=config.seed)
    print(f"\ntransfer: VGG16 ({vgg.weights_label(config.weights)}), frozen "
          f"({base.count_params():,} parameters) + head {vgg.HEAD_VARIANTS[config.head]}, "
          f"{config.epochs} epochs, batch {config.batch_size}")
    small_features, test_features = vgg.trial_features(
        base, dataset.x_train, [small_sets[seed] for seed in seeds], test[0], config.weights,
        config.feature_cache)
    train_sets = [(x, dataset.y_train[small_sets[seed]]) for x, seed in zip(small_features, seeds)]
    heads = [vgg.head(config.head, test_features.shape[1:], 10, seed) for seed in seeds]
    scores, histories = trials.train_with_history(
        heads, train_sets, (test_features, test[1]), seeds, config.epochs, config.batch_size,
        label="transfer")
    return [{"accuracy": score, "history": history} for score, history in zip(scores, histories)]


def main(config: Config) -> dict:
    start = time.perf_counter()
    runs = cli.choose_names(config.runs, RUNS, "--runs")
    os.makedirs(config.out, exist_ok=True)
    print(f"cifar_vgg: {', '.join(runs)}, {config.trials} trials each, device "
          f"{configure_device()}")
    keras.utils.set_random_seed(config.seed)

    # 1. CIFAR-10: 100 training images per class for each trial, the test set for validation
    dataset = data.load_cifar10(config.data)
    test = data.subsample(dataset.x_test, dataset.y_test, config.test_size, config.seed)
    seeds = trials.trial_seeds(config.seed, config.trials)
    mine = trial_log.shard_seeds(seeds, config.shard)  # all of them, unless --shard
    small_sets = dict(zip(seeds, trials.draw_small_sets(dataset.y_train, config.per_class, seeds,
                                                        CLASS_NAMES, "--per-class")))
    log = trial_log.TrialLog(trial_log.trials_path(config.out, "cifar_vgg"), "cifar_vgg",
                             dataclasses.asdict(config), config.resume or bool(config.shard))
    print(f"data: {dataset.name} ({dataset.source})\n  {10 * config.per_class:,} training "
          f"images per trial ({config.per_class} per class), {len(test[1]):,} test images "
          "(validation after every epoch, and the final test)")

    # 2. No transfer: the lecture's CNN from scratch, with each hidden activation, and
    # 3. transfer: VGG16, frozen, its features once, then a new head per trial on them.
    # Each run's trials train side by side; each finished trial goes to the trials file.
    def train_here() -> None:
        for run in runs:
            if run in SCRATCH_RUNS:
                log.run([(run, seed) for seed in mine], lambda todo: train_from_scratch(
                    run, [seed for _, seed in todo], dataset, small_sets, test, config))
            else:
                log.run([(run, seed) for seed in mine], lambda todo: train_with_transfer(
                    [seed for _, seed in todo], dataset, small_sets, test, config))

    interrupted = trial_log.run_trials(log, config, __file__, train_here)
    if config.shard:
        print(f"shard {config.shard}: its trials are in {log.path}")
        return {}
    results = log.accuracies(runs, seeds)
    histories = {run: log.extra(run, seeds, "history") for run in runs if results[run]}

    # 4. Compare with the lecture, and show the curves
    summary = stats.summarize_options(results)
    comparisons = stats.comparisons(results, runs[0])
    lecture = {run: LECTURE[run] for run in runs if run != "vgg16" or config.weights != "none"}
    finished = sum(len(values) for values in results.values())
    payload = {"script": "cifar_vgg", "config": dataclasses.asdict(config),
               "weights": vgg.weights_label(config.weights), "dataset": dataset.describe(),
               "device": configure_device(), "environment": reporting.environment(),
               "seeds": seeds,
               "accuracies": {name: list(values.values()) for name, values in results.items()},
               "trial_seeds": {name: list(values) for name, values in results.items()},
               "histories": histories, "summary": summary, "comparisons": comparisons,
               "lecture_ranges": LECTURE, "complete": finished == len(runs) * len(seeds),
               "trials_file": log.path, "plots": ["cifar_vgg.png"],
               "timings_s": {"total": round(time.perf_counter() - start, 2)}}
    json_path = os.path.join(config.out, "cifar_vgg.json")
    reporting.write_json(json_path, payload)
    png_path = os.path.join(config.out, "cifar_vgg.png")
    weights_note = f" (VGG16: {vgg.weights_label(config.weights)})" if "vgg16" in runs else ""
    reporting.plot_histories(png_path, histories, f"CIFAR-10, {config.per_class} images per "
                             f"class, {config.trials} trials{weights_note}")
    print("\nsummary: test accuracy on CIFAR-10\n" + reporting.summary_table(summary, lecture)
          + "\n" + reporting.comparison_lines(comparisons))
    for run, run_histories in histories.items():
        best = np.mean([max(h["val_accuracy"]) for h in run_histories])
        final_train = np.mean([h["accuracy"][-1] for h in run_histories])
        print(f"  {run}: training accuracy {100 * final_train:.1f}% at the end; test accuracy "
              f"at its best epoch {100 * best:.1f}%")
    if config.weights == "none" and "vgg16" in runs:
        print("*** vgg16 ran with random weights: a control, not transfer")
    print(f"wall time {time.perf_counter() - start:.0f} s; wrote {json_path} and {png_path}")
    if interrupted:
        raise KeyboardInterrupt
    return payload


if __name__ == "__main__":
    sys.exit(cli.run_script(main, cli.parse_config(Config, None, __doc__, QUICK), "cifar_vgg.py"))
