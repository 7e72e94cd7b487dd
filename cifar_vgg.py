"""CIFAR-10 from 100 images per class: a small CNN from scratch against frozen ImageNet
VGG16 with a new head (the lecture's third experiment).

Each trial draws 100 training images of each of the 10 classes; the whole test set is
the validation data after every epoch and the final evaluation, so the curves show the
small CNN overfitting. Here transfer from ImageNet helps: the photographs it learned
from are close to CIFAR-10's.

    python cifar_vgg.py                          # every run, 3 trials each
    python cifar_vgg.py --quick --weights none   # a complete tiny run (under a minute)
    python cifar_vgg.py --data cifar10.npz --runs cnn_tanh,vgg16
    python cifar_vgg.py --base mobilenetv2 --fine-tune 10 --augment   # beyond the lecture

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
from common import cli, data, models, reporting, trial_log, trials, vgg
from common.device import configure_device

SCRATCH_RUNS = {"cnn_tanh": "tanh", "cnn_relu": "relu", "cnn_sigmoid": "sigmoid"}
LECTURE = {"cnn_tanh": (0.400, 0.414), "cnn_relu": (0.364, 0.388),
           "cnn_sigmoid": (0.373, 0.385), "vgg16": (0.480, 0.495)}
FINE_TUNED = " + fine-tune"  # the transfer run after the fine-tuning stage


@dataclass(frozen=True)
class Config(cli.RunOptions, cli.TrainingOptions):
    """The lecture's protocol; every field is a command-line flag."""

    trials: int = cli.option(3, "trials per run; trial k uses seed --seed + k", minimum=1)
    runs: str = cli.option("all", "comma-separated runs: " + ", ".join(SCRATCH_RUNS)
                           + " and the --base (vgg16) (all: every one)")
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
    base: str = cli.option("vgg16", "the pretrained network (the lecture's: vgg16), each with "
                           "its own preprocessing", group="model", choices=tuple(vgg.BASES))
    weights: str = cli.option("imagenet", "the base's weights: imagenet (Keras's cache or a "
                              "download), a weights file, or none (random: not transfer)",
                              group="model")
    head: str = cli.option("dense512_nodrop", "the head on the base (the lecture's: Dense(512) "
                           "then Dense(10))", group="model", choices=tuple(vgg.HEAD_VARIANTS))
    feature_cache: str | None = cli.option(None, "keep the base's features in this folder, "
                                           "so a second run skips computing them", group="model")
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
    cnns = [models.cifar_cnn(10, seed, SCRATCH_RUNS[run], augment=config.augment)
            for seed in seeds]
    train_sets = [(data.to_unit_float(dataset.x_train[small_sets[seed]]),
                   dataset.y_train[small_sets[seed]]) for seed in seeds]
    scores, histories = trials.train_with_history(
        cnns, train_sets, (data.to_unit_float(test[0]), test[1]), seeds, config.epochs,
        config.batch_size, label=run, optimizer=config.optimizer, learning_rate=config.lr)
    return [{"accuracy": score, "history": history} for score, history in zip(scores, histories)]


def train_with_transfer(base: keras.Model, todo: list[tuple[str, int]], dataset: data.Dataset,
                        small_sets: dict, test: tuple, config: Config) -> list[dict]:
    """The frozen base: its features computed once, then a new head per trial on them
    (and with --fine-tune a second stage; its trials are "<base> + fine-tune")."""
    seeds = sorted({seed for _, seed in todo})
    print(f"\ntransfer: {config.base} ({vgg.weights_label(config.weights)}), frozen "
          f"({base.count_params():,} parameters) + head {vgg.HEAD_VARIANTS[config.head]}, "
          f"{config.epochs} epochs, batch {config.batch_size}")
    heads = [vgg.head(config.head, base.outputs[0].shape[1:], 10, seed) for seed in seeds]
    records = vgg.train_heads_on_base(
        base, heads, seeds, (dataset.x_train, dataset.y_train),
        [small_sets[seed] for seed in seeds], test, config, config.epochs, config.batch_size,
        with_history=True, flips=True)
    by_seed = dict(zip(seeds, records))
    return [{"accuracy": by_seed[seed]["fine_tuned"]} if option.endswith(FINE_TUNED)
            else {"accuracy": by_seed[seed]["accuracy"], "history": by_seed[seed]["history"]}
            for option, seed in todo]


def main(config: Config) -> dict:
    start = time.perf_counter()
    runs = cli.choose_names(config.runs, (*SCRATCH_RUNS, config.base), "--runs")
    transfer_options = [config.base] + ([config.base + FINE_TUNED]
                                        if config.fine_tune != "0" else [])
    options = [*runs, *(transfer_options[1:] if config.base in runs else [])]
    os.makedirs(config.out, exist_ok=True)
    print(f"cifar_vgg: {', '.join(options)}, {config.trials} trials each, device "
          f"{configure_device()}")
    keras.utils.set_random_seed(config.seed)

    # 1. CIFAR-10: 100 training images per class for each trial, the test set for validation
    dataset = data.load_cifar10(config.data)
    test = data.subsample(dataset.x_test, dataset.y_test, config.test_size, config.seed)
    seeds = trials.trial_seeds(config.seed, config.trials)
    mine = trial_log.shard_seeds(seeds, config.shard)  # all of them, unless --shard
    small_sets = dict(zip(seeds, trials.draw_small_sets(dataset.y_train, config.per_class, seeds,
                                                        data.CIFAR10_CLASSES, "--per-class")))
    log = trial_log.TrialLog(trial_log.trials_path(config.out, "cifar_vgg"), "cifar_vgg",
                             {**dataclasses.asdict(config), "dataset_used": dataset.name},
                             config.resume or bool(config.shard))
    # The pretrained base (VGG16: the lecture's), frozen; built once, here, so that a bad
    # --weights or --fine-tune fails now, not after the runs before it have trained.
    base = (vgg.pretrained_base(config.base, config.weights, seed=config.seed)
            if config.base in runs else None)
    if base is not None and config.fine_tune != "0":
        vgg.fine_tune_layers(base, config.fine_tune)
    print(f"data: {dataset.name} ({dataset.source})\n  {10 * config.per_class:,} training "
          f"images per trial ({config.per_class} per class), {len(test[1]):,} test images "
          "(validation after every epoch, and the final test)")

    # 2. No transfer: the lecture's CNN from scratch, with each hidden activation, and
    # 3. transfer: the base, frozen, its features once, then a new head per trial on them.
    # Each run's trials train side by side; each finished trial goes to the trials file.
    def train_here() -> None:
        for run in runs:
            if run in SCRATCH_RUNS:
                log.run([(run, seed) for seed in mine], lambda todo: train_from_scratch(
                    run, [seed for _, seed in todo], dataset, small_sets, test, config))
            else:
                log.run([(option, seed) for option in transfer_options for seed in mine],
                        lambda todo: train_with_transfer(base, todo, dataset, small_sets, test,
                                                         config))

    interrupted = trial_log.run_trials(log, config, __file__, train_here)
    if config.shard:
        return trial_log.end_of_shard(log, config, interrupted)

    # 4. Compare with the lecture (and with cnn_tanh), and show the curves
    results = reporting.trial_results(log.accuracies(options, seeds), options[0],
                                      len(options) * len(seeds))
    histories = {run: log.extra(run, seeds, "history") for run in runs
                 if results["summary"].get(run)}
    lecture = {run: LECTURE[run] for run in runs
               if run in LECTURE and (run in SCRATCH_RUNS or config.weights != "none")}
    png_path = os.path.join(config.out, "cifar_vgg.png")
    payload = {"script": "cifar_vgg", "config": dataclasses.asdict(config),
               "weights": vgg.weights_label(config.weights), "dataset": dataset.describe(),
               "device": configure_device(), "environment": reporting.environment(),
               "seeds": seeds, "training": reporting.training_line(config), **results,
               "histories": histories, "lecture_ranges": LECTURE, "trials_file": log.path,
               "plots": [os.path.basename(png_path)] if histories else [],
               "timings_s": {"total": round(time.perf_counter() - start, 2)}}
    json_path = os.path.join(config.out, "cifar_vgg.json")
    reporting.write_json(json_path, payload)
    if histories:
        weights_note = (f" ({config.base}: {vgg.weights_label(config.weights)})"
                        if config.base in runs else "")
        reporting.plot_histories(png_path, histories, f"CIFAR-10, {config.per_class} images "
                                 f"per class, {config.trials} trials{weights_note}")
    print("\nsummary: test accuracy on CIFAR-10\n" + reporting.training_line(config) + "\n"
          + reporting.summary_table(results["summary"], lecture) + "\n"
          + reporting.comparison_lines(results["comparisons"]))
    for run, run_histories in histories.items():
        best = np.mean([max(h["val_accuracy"]) for h in run_histories])
        final_train = np.mean([h["accuracy"][-1] for h in run_histories])
        print(f"  {run}: training accuracy {100 * final_train:.1f}% at the end; test accuracy "
              f"at its best epoch {100 * best:.1f}%")
    if config.weights == "none" and config.base in runs:
        print(f"*** {config.base} ran with random weights: a control, not transfer")
    print(f"wall time {time.perf_counter() - start:.0f} s; wrote {json_path}"
          + (f" and {png_path}" if histories else ""))
    if interrupted:
        raise KeyboardInterrupt
    return payload


if __name__ == "__main__":
    sys.exit(cli.run_script(main, cli.parse_config(Config, None, __doc__, QUICK), "cifar_vgg.py",
                             stop_at_epoch_end=True))
