"""Transfer learning between the two halves of MNIST (the lecture's first experiment).

A small CNN learns the even digits 0,2,4,6,8 from ~29,500 images. Its hidden layers,
copied and frozen, with a new output layer, then learn the odd digits 1,3,5,7,9 from
only 100 images. Compared with the same CNN trained from scratch on those 100
images, over 15 trials with different random small sets.

    python tl_mnist.py                         # the lecture's protocol (a few minutes)
    python tl_mnist.py --quick                 # a complete tiny run (under a minute)
    python tl_mnist.py --data mnist.npz        # MNIST from a local file (offline)

Expect about 93% without transfer and 96% with it on real MNIST (lecture: 84.0–87.3%
and 91.0–92.6%). Without MNIST (offline, nothing cached) the script says so and uses
scikit-learn's bundled 8x8 digits, an easy set that leaves little room for a gain.
Results: results/tl_mnist.json and results/tl_mnist.png; each trial is kept in
results/tl_mnist.trials.jsonl the moment it finishes, so an interrupted run goes on
with --resume, and --jobs N trains the trials in N processes.
"""

import dataclasses
import hashlib
import math
import os
import sys
import time
from dataclasses import dataclass

import common  # noqa: F401  (quiets TensorFlow's start-up messages before keras loads)
import keras
from common import (checkpoints, cli, data, models, reporting, training, transfer, trial_log,
                    trials)
from common.device import configure_device

EVEN_DIGITS, ODD_DIGITS = data.EVEN_DIGITS, data.ODD_DIGITS  # the big and the small task
MNIST_BIG_IMAGES = 29_492  # even digits in MNIST's training set
# The options compared; the first is the baseline. "transfer + fine-tune" (--fine-tune)
# is option 2 after its second stage.
OPTIONS = ("no transfer", "transfer", "transfer + fine-tune")
LECTURE = {"no transfer": (0.840, 0.873), "transfer": (0.910, 0.926)}


@dataclass(frozen=True)
class Config(cli.RunOptions, cli.TrainingOptions):
    """The lecture's protocol; every field is a command-line flag."""

    trials: int = cli.option(15, "trials per option; trial k uses seed --seed + k", minimum=1)
    epochs: int = cli.option(100, "epochs of training on the small set", group="training",
                             minimum=1)
    batch_size: int = cli.option(4, "batch size on the small set", group="training", minimum=1)
    pretrain_epochs: int = cli.option(
        15, "epochs of pretraining on the big set (on the digits fallback: the same number "
        "of steps as this many epochs on MNIST)", group="training", minimum=1)
    pretrain_batch_size: int = cli.option(128, "batch size of pretraining", group="training",
                                          minimum=1)
    small_size: int = cli.option(100, "target training images per trial, the same number "
                                 "from each odd digit", group="data", minimum=5)
    seed: int = cli.option(0, "base seed (pretraining uses it; trial k uses seed + k)",
                           minimum=0)
    data: str | None = cli.option(None, "an .npz with x_train, y_train, x_test, y_test "
                                  "(Keras's mnist.npz layout)", group="data")
    dataset: str = cli.option("auto", "mnist: MNIST or fail; digits: scikit-learn's bundled "
                              "digits; auto: MNIST if available, else digits", group="data",
                              choices=("auto", "mnist", "digits"))
    big_size: int = cli.option(0, "use at most this many big-set images (0: all)",
                               group="data", minimum=0)
    test_size: int = cli.option(0, "use at most this many test images per task (0: all)",
                                group="data", minimum=0)
    base: str | None = cli.option(None, "a pretrained model to use as is (.keras, or the "
                                  "lecture's .h5) instead of pretraining", group="model")
    retrain: bool = cli.option(False, "pretrain anew even if a matching saved model exists",
                               group="model")
    models_dir: str = cli.option("saved_models", "folder of pretrained models", group="model")
    out: str = cli.option("results", "folder for tl_mnist.json and tl_mnist.png", group="output")
    quick: bool = cli.option(False, "a complete tiny run: 3 trials, 5 epochs, 1 pretraining "
                             "epoch, 2,000 big and 500 test images", group="output")


QUICK = {"trials": 3, "epochs": 5, "pretrain_epochs": 1, "big_size": 2000, "test_size": 500}


def pretraining_epochs(config: Config, dataset: data.Dataset, big_images: int) -> int:
    """Epochs of pretraining: the config's, or on the small digits set as many steps.

    15 epochs of MNIST are ~3,500 steps; on ~620 digits they would be ~75 steps and
    teach the base too little to transfer, so the fallback keeps the steps, not epochs.
    """
    if dataset.name != "digits":
        return config.pretrain_epochs
    mnist_steps = config.pretrain_epochs * math.ceil(MNIST_BIG_IMAGES / config.pretrain_batch_size)
    return max(1, round(mnist_steps / math.ceil(big_images / config.pretrain_batch_size)))


def pretrained_base(config: Config, dataset: data.Dataset, big: tuple) -> tuple[keras.Model, dict]:
    """The big task's CNN: given (--base), reused from saved_models/, or trained now."""
    if config.base:
        return checkpoints.load_model(config.base, "--base", data.MNIST_SHAPE), {
            "path": config.base, "trained_now": False}
    epochs = pretraining_epochs(config, dataset, len(big[1]))
    record = {"config": {"dataset": dataset.name, "classes": list(EVEN_DIGITS),
                         "images": len(big[1]), "epochs": epochs,
                         "batch_size": config.pretrain_batch_size, "seed": config.seed,
                         "data_sha1": hashlib.sha1(big[0].tobytes()).hexdigest()}}
    size = f"_{len(big[1])}img" if config.big_size else ""
    path = os.path.join(config.models_dir, f"{dataset.name}_5_{config.pretrain_epochs}{size}.keras")
    base = None if config.retrain else checkpoints.load_if_matching(path, record)
    if base is not None:
        print(f"  reusing {path} (trained with the same settings; --retrain to redo it)")
        return base, {"path": path, "trained_now": False, **record}
    print(f"  pretraining on {len(big[1]):,} images: {epochs} epochs, batch "
          f"{config.pretrain_batch_size}")
    base = models.lecture_cnn(len(EVEN_DIGITS), seed=config.seed)
    training.fit_side_by_side([base], [big[0]], [big[1]], [config.seed], epochs,
                              config.pretrain_batch_size, label="pretraining")
    checkpoints.save_model(base, path, record)
    print(f"  saved {path}")
    return base, {"path": path, "trained_now": True, **record}


def train_from_scratch(seeds: list[int], small_sets: dict[int, tuple], test: tuple,
                       config: Config) -> list[dict]:
    """Option 1: the lecture's CNN from scratch on each trial's small set, side by side."""
    print(f"\noption 1, no transfer: {len(seeds)} CNNs from scratch, {config.epochs} epochs, "
          f"batch {config.batch_size}, side by side")
    scratch = [models.lecture_cnn(len(ODD_DIGITS), seed=seed, augment=config.augment)
               for seed in seeds]
    scores = trials.train_and_test(scratch, [small_sets[seed] for seed in seeds], test, seeds,
                                   config.epochs, config.batch_size, label="no transfer",
                                   optimizer=config.optimizer, learning_rate=config.lr)
    return [{"accuracy": score} for score in scores]


def train_with_transfer(base: keras.Model, todo: list[tuple[str, int]],
                        small_sets: dict[int, tuple], test: tuple, config: Config) -> list[dict]:
    """Option 2: the base's hidden layers copied and frozen, a new output layer trained;
    with --fine-tune, then the copied layers' top opened and trained on.

    Returns:
        One record per (option, seed) in `todo`: "transfer" trials score after the
        first stage, "transfer + fine-tune" trials after the second.
    """
    seeds = sorted({seed for _, seed in todo})
    transferred = [transfer.transfer_model(base, len(ODD_DIGITS), seed, augment=config.augment)
                   for seed in seeds]
    trainable = transfer.parameter_count(transferred[0].trainable_weights)
    frozen = transfer.parameter_count(transferred[0].non_trainable_weights)
    print(f"\noption 2, transfer: hidden layers copied and frozen ({frozen:,} parameters) + "
          f"new Dense(5) ({trainable:,} trainable), {config.epochs} epochs, batch "
          f"{config.batch_size}")
    train_sets = [small_sets[seed] for seed in seeds]
    first_rate, fine_tune_rate = training.learning_rates(config.optimizer, config.lr,
                                                         config.fine_tune_lr)
    scores = {"transfer": trials.train_heads_on_features(
        transferred, train_sets, test, seeds, config.epochs, config.batch_size,
        label="transfer", optimizer=config.optimizer, learning_rate=first_rate)}
    if any(option == OPTIONS[2] for option, _ in todo):
        parts = [transfer.pretrained_part(model, base) for model in transferred]
        opened = transfer.fine_tune_layers(parts[0], config.fine_tune)
        print(f"\n  fine-tuning: copied {', '.join(layer.name for layer in opened)} opened too, "
              f"{config.fine_tune_epochs} epochs at learning rate {fine_tune_rate:g}")
        scores[OPTIONS[2]] = trials.fine_tune_and_test(
            transferred, parts, config.fine_tune, train_sets, test, seeds,
            config.fine_tune_epochs, config.batch_size, label="fine-tune",
            optimizer=config.optimizer, learning_rate=fine_tune_rate)
    return [{"accuracy": scores[option][seeds.index(seed)]} for option, seed in todo]


def main(config: Config) -> dict:
    start = time.perf_counter()
    timings: dict[str, float] = {}

    def phase_done(name: str, since: float) -> float:
        timings[name] = round(time.perf_counter() - since, 2)
        return time.perf_counter()

    os.makedirs(config.out, exist_ok=True)
    print(f"tl_mnist: {config.trials} trials per option, device {configure_device()}")
    keras.utils.set_random_seed(config.seed)

    # 1. Load the data and split it into the two tasks
    dataset = data.load_mnist(config.data, config.dataset)
    if dataset.warning:
        print(f"\n*** {dataset.warning}\n")
    big = data.subsample(*data.select_classes(dataset.x_train, dataset.y_train, EVEN_DIGITS),
                    config.big_size, config.seed)
    big_test = data.subsample(*data.select_classes(dataset.x_test, dataset.y_test, EVEN_DIGITS),
                         config.test_size, config.seed)
    pool = data.select_classes(dataset.x_train, dataset.y_train, ODD_DIGITS)
    test = data.subsample(*data.select_classes(dataset.x_test, dataset.y_test, ODD_DIGITS),
                     config.test_size, config.seed)
    big, big_test, pool, test = [(data.to_unit_float(x), y) for x, y in (big, big_test, pool, test)]
    print(f"data: {dataset.name} ({dataset.source})\n  big task (digits 0,2,4,6,8): "
          f"{len(big[1]):,} training, {len(big_test[1]):,} test images\n  small task "
          f"(digits 1,3,5,7,9): {config.small_size} training images per trial from "
          f"{len(pool[1]):,}, {len(test[1]):,} test images")
    seeds = trials.trial_seeds(config.seed, config.trials)
    mine = trial_log.shard_seeds(seeds, config.shard)  # all of them, unless --shard
    if config.small_size % len(ODD_DIGITS):
        raise cli.UserInputError(f"--small-size {config.small_size}: must be a multiple of "
                                 f"{len(ODD_DIGITS)} (the same number from each odd digit)")
    small_sets = {seed: (pool[0][i], pool[1][i]) for seed, i in zip(seeds, trials.draw_small_sets(
        pool[1], config.small_size // len(ODD_DIGITS), seeds, [str(d) for d in ODD_DIGITS]))}
    # Each finished trial goes to the trials file at once (see common/trial_log.py);
    # --resume reads the finished ones back (and refuses another config) before any work.
    log = trial_log.TrialLog(trial_log.trials_path(config.out, "tl_mnist"), "tl_mnist",
                             {**dataclasses.asdict(config), "dataset_used": dataset.name},
                             config.resume or bool(config.shard))
    since = phase_done("load", start)

    # 2. Pretrain the CNN on the big task (or reuse the saved one)
    print("\nbig task: the lecture's CNN on digits 0,2,4,6,8")
    base, base_info = pretrained_base(config, dataset, big)
    base_accuracy = training.accuracies([base], *big_test)[0]
    if config.fine_tune != "0":  # a bad --fine-tune fails now, not after training
        transfer.fine_tune_layers(transfer.hidden_layers(base), config.fine_tune)
    print(f"  pretrained model: {100 * base_accuracy:.1f}% on the big task's test images")
    since = phase_done("pretrain", since)

    # 3. Option 1, no transfer: the CNN from scratch on each trial's 100 images, and
    # 4. option 2, transfer: copy the hidden layers, freeze them, add a new output layer
    # (and with --fine-tune, then train the top of the copied layers too).
    options = OPTIONS if config.fine_tune != "0" else OPTIONS[:2]

    def train_here() -> None:
        log.run([("no transfer", seed) for seed in mine],
                lambda todo: train_from_scratch([seed for _, seed in todo], small_sets, test,
                                                config))
        log.run([(option, seed) for option in options[1:] for seed in mine],
                lambda todo: train_with_transfer(base, todo, small_sets, test, config))

    interrupted = trial_log.run_trials(log, config, __file__, train_here)
    since = phase_done("trials", since)
    if config.shard:
        return trial_log.end_of_shard(log, config, interrupted)

    # 5. Compare
    by_option = log.accuracies(options, seeds)
    for k, seed in enumerate(seeds):
        cells = [f"{name} {100 * accuracies[seed]:5.1f}%" if seed in accuracies
                 else f"{name}   —  " for name, accuracies in by_option.items()]
        print(f"  trial {k:2d} (seed {seed}): " + "   ".join(cells))
    results = reporting.trial_results(by_option, options[0], len(options) * len(seeds))
    timings["total"] = round(time.perf_counter() - start, 2)
    png_path = os.path.join(config.out, "tl_mnist.png")
    payload = {"script": "tl_mnist", "config": dataclasses.asdict(config),
               "dataset": dataset.describe(), "device": configure_device(),
               "environment": reporting.environment(), "seeds": seeds,
               "base": {**base_info, "big_task_test_accuracy": base_accuracy},
               "training": reporting.training_line(config), **results,
               "lecture_ranges": LECTURE, "trials_file": log.path,
               "plots": [os.path.basename(png_path)] if results["summary"] else [],
               "timings_s": timings}
    json_path = os.path.join(config.out, "tl_mnist.json")
    reporting.write_json(json_path, payload)
    if results["summary"]:
        reporting.plot_trials(png_path, results["accuracies"], LECTURE,
                              f"{config.small_size} target images, {config.trials} trials "
                              f"({dataset.name})")
    print(f"\nsummary: test accuracy on digits 1,3,5,7,9 ({dataset.name})\n"
          + reporting.training_line(config) + "\n"
          + reporting.summary_table(results["summary"], LECTURE) + "\n"
          + reporting.comparison_lines(results["comparisons"])
          + f"\npretrained model on digits 0,2,4,6,8: {100 * base_accuracy:.1f}%")
    if dataset.warning:
        print(f"*** {dataset.name}: not MNIST. These small, clean digits leave little room for a "
              "gain; pass --data mnist.npz for the lecture's experiment.")
    print(f"wall time {timings['total']:.0f} s; wrote {json_path}"
          + (f" and {png_path}" if results["summary"] else ""))
    if interrupted:
        raise KeyboardInterrupt
    return payload


if __name__ == "__main__":
    sys.exit(cli.run_script(main, cli.parse_config(Config, None, __doc__, QUICK), "tl_mnist.py",
                             stop_at_epoch_end=True))
