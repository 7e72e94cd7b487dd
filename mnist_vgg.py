"""ImageNet VGG16, frozen, on the 100 MNIST images of tl_mnist.py (the lecture's second experiment).

The digits 1,3,5,7,9 (20 training images each, drawn anew per trial) are padded to
32x32 and their gray channel repeated three times, so VGG16 accepts them. VGG16's
convolutional part, trained on ImageNet photographs, stays frozen; only new heads on
top of it learn, in the lecture's five variants.

    python mnist_vgg.py                          # all variants, 5 trials each
    python mnist_vgg.py --quick --weights none   # a complete tiny run (under a minute)
    python mnist_vgg.py --data mnist.npz --variants plain,dense512
    python mnist_vgg.py --base resnet50 --fine-tune conv5 --augment   # beyond the lecture

Expect about 79–86% (the lecture's ranges per variant): photographs are far from
handwritten digits, so this transfer does worse than transfer from the even digits
(tl_mnist.py). With --weights none VGG16 keeps random weights: a control, not transfer.
Results: results/mnist_vgg.json and results/mnist_vgg.png; finished trials are kept
in results/mnist_vgg.trials.jsonl (--resume goes on from them).
"""

import dataclasses
import os
import sys
import time
from dataclasses import dataclass

import common  # noqa: F401  (quiets TensorFlow's start-up messages before keras loads)
import keras
from common import cli, data, reporting, trial_log, trials, vgg
from common.device import configure_device

LECTURE = {"plain": (0.835, 0.846), "dropout": (0.794, 0.819), "dense512": (0.859, 0.861),
           "dropout2": (0.811, 0.859), "dense512_nodrop": (0.859, 0.861)}


@dataclass(frozen=True)
class Config(cli.RunOptions, cli.TrainingOptions):
    """The lecture's protocol; every field is a command-line flag."""

    trials: int = cli.option(5, "trials per head variant; trial k uses seed --seed + k",
                             minimum=1)
    variants: str = cli.option("all", "comma-separated head variants: "
                               + ", ".join(vgg.HEAD_VARIANTS) + " (all: every one)")
    epochs: int = cli.option(100, "epochs of training on the small set (as tl_mnist.py)",
                             group="training", minimum=1)
    batch_size: int = cli.option(4, "batch size on the small set", group="training", minimum=1)
    small_size: int = cli.option(100, "target training images per trial, the same number "
                                 "from each odd digit", group="data", minimum=5)
    seed: int = cli.option(0, "base seed (trial k uses seed + k)", minimum=0)
    data: str | None = cli.option(None, "an .npz with x_train, y_train, x_test, y_test "
                                  "(Keras's mnist.npz layout)", group="data")
    dataset: str = cli.option("auto", "mnist: MNIST or fail; digits: scikit-learn's bundled "
                              "digits; auto: MNIST if available, else digits", group="data",
                              choices=("auto", "mnist", "digits"))
    test_size: int = cli.option(0, "use at most this many test images (0: all)", group="data",
                                minimum=0)
    base: str = cli.option("vgg16", "the pretrained network (the lecture's: vgg16), each with "
                           "its own preprocessing", group="model", choices=tuple(vgg.BASES))
    weights: str = cli.option("imagenet", "the base's weights: imagenet (Keras's cache or a "
                              "download), a weights file, or none (random: not transfer)",
                              group="model")
    feature_cache: str | None = cli.option(None, "keep the base's features in this folder, "
                                           "so a second run skips computing them", group="model")
    out: str = cli.option("results", "folder for mnist_vgg.json and mnist_vgg.png",
                          group="output")
    quick: bool = cli.option(False, "a complete tiny run: 2 trials, 5 epochs, 500 test images",
                             group="output")


QUICK = {"trials": 2, "epochs": 5, "test_size": 500}
FINE_TUNED = " + fine-tune"  # the option of a head variant after the fine-tuning stage


def train_heads(base: keras.Model, todo: list[tuple[str, int]], pool: tuple, small_sets: dict,
                test: tuple, config: Config) -> list[dict]:
    """New heads on the frozen base for the given (option, seed) trials, side by side.

    The base's features of every image involved are computed once (or read from
    --feature-cache) and the heads train on them; with --fine-tune, the options
    "<variant> + fine-tune" are the same heads after the second stage.
    """
    heads = sorted({(option.removesuffix(FINE_TUNED), seed) for option, seed in todo})
    print(f"\ntraining {len(heads)} heads on {config.base}, {config.epochs} epochs, "
          f"batch {config.batch_size}")
    records = vgg.train_heads_on_base(
        base, [vgg.head(variant, base.outputs[0].shape[1:], len(data.ODD_DIGITS), seed)
               for variant, seed in heads],
        [seed for _, seed in heads], pool, [small_sets[seed] for _, seed in heads], test,
        config, config.epochs, config.batch_size, prepare=data.pad_and_repeat)
    by_trial = {}
    for (variant, seed), record in zip(heads, records):
        by_trial[(variant, seed)] = {"accuracy": record["accuracy"]}
        if "fine_tuned" in record:
            by_trial[(variant + FINE_TUNED, seed)] = {"accuracy": record["fine_tuned"]}
    return [by_trial[trial] for trial in todo]


def main(config: Config) -> dict:
    start = time.perf_counter()
    variants = cli.choose_names(config.variants, vgg.HEAD_VARIANTS, "--variants")
    options = variants + ([variant + FINE_TUNED for variant in variants]
                          if config.fine_tune != "0" else [])
    os.makedirs(config.out, exist_ok=True)
    print(f"mnist_vgg: {len(variants)} head variants x {config.trials} trials, device "
          f"{configure_device()}")
    keras.utils.set_random_seed(config.seed)

    # 1. The 100-image target task of tl_mnist.py: digits 1,3,5,7,9, labels 0..4
    dataset = data.load_mnist(config.data, config.dataset)
    if dataset.warning:
        print(f"\n*** {dataset.warning}\n")
    pool = data.select_classes(dataset.x_train, dataset.y_train, data.ODD_DIGITS)
    test = data.subsample(*data.select_classes(dataset.x_test, dataset.y_test, data.ODD_DIGITS),
                          config.test_size, config.seed)
    if config.small_size % len(data.ODD_DIGITS):
        raise cli.UserInputError(f"--small-size {config.small_size}: must be a multiple of 5 "
                                 "(the same number from each odd digit)")
    seeds = trials.trial_seeds(config.seed, config.trials)
    mine = trial_log.shard_seeds(seeds, config.shard)  # all of them, unless --shard
    small_sets = dict(zip(seeds, trials.draw_small_sets(
        pool[1], config.small_size // len(data.ODD_DIGITS), seeds,
        [str(d) for d in data.ODD_DIGITS])))
    log = trial_log.TrialLog(trial_log.trials_path(config.out, "mnist_vgg"), "mnist_vgg",
                             {**dataclasses.asdict(config), "dataset_used": dataset.name},
                             config.resume or bool(config.shard))
    print(f"data: {dataset.name} ({dataset.source})\n  {config.small_size} training images "
          f"per trial, {len(test[1]):,} test images, made {config.base}'s {vgg.VGG16_INPUT} by "
          "zero-padding 2 pixels per side and repeating the gray channel")

    # 2. The pretrained base (VGG16: the lecture's) without its top, frozen
    base = vgg.pretrained_base(config.base, config.weights, seed=config.seed)
    if config.fine_tune != "0":  # a bad --fine-tune fails now, not after training
        vgg.fine_tune_layers(base, config.fine_tune)
    print(f"\n{config.base} ({vgg.weights_label(config.weights)}), frozen: "
          f"{base.count_params():,} parameters, output {base.outputs[0].shape[1:]}")
    for variant in variants:
        print(f"  head {variant}: {vgg.HEAD_VARIANTS[variant]}")

    # 3. New heads on the frozen base, every variant and trial side by side, on the
    # base's features (computed once); each finished trial goes to the trials file
    def train_here() -> None:
        log.run([(option, seed) for option in options for seed in mine],
                lambda todo: train_heads(base, todo, pool, small_sets, test, config))

    interrupted = trial_log.run_trials(log, config, __file__, train_here)
    if config.shard:
        return trial_log.end_of_shard(log, config, interrupted)

    # 4. Compare with the lecture, and the variants with the first one
    results = reporting.trial_results(log.accuracies(options, seeds), options[0],
                                      len(options) * len(seeds))
    lecture = ({} if config.weights == "none" or config.base != "vgg16"
               else {v: LECTURE[v] for v in variants})
    png_path = os.path.join(config.out, "mnist_vgg.png")
    payload = {"script": "mnist_vgg", "config": dataclasses.asdict(config),
               "weights": vgg.weights_label(config.weights), "dataset": dataset.describe(),
               "device": configure_device(), "environment": reporting.environment(),
               "seeds": seeds, "variants": {v: vgg.HEAD_VARIANTS[v] for v in variants},
               "training": reporting.training_line(config), **results,
               "lecture_ranges": LECTURE, "trials_file": log.path,
               "plots": [os.path.basename(png_path)] if results["summary"] else [],
               "timings_s": {"total": round(time.perf_counter() - start, 2)}}
    json_path = os.path.join(config.out, "mnist_vgg.json")
    reporting.write_json(json_path, payload)
    if results["summary"]:
        reporting.plot_trials(png_path, results["accuracies"], lecture,
                              f"{config.base} ({vgg.weights_label(config.weights)}) + new heads, "
                              f"{config.small_size} target images, {dataset.name}")
    print(f"\nsummary: test accuracy on digits 1,3,5,7,9 ({dataset.name}, {config.base} with "
          f"{vgg.weights_label(config.weights)})\n" + reporting.training_line(config) + "\n"
          + reporting.summary_table(results["summary"], lecture) + "\n"
          + reporting.comparison_lines(results["comparisons"]))
    if config.weights == "none":
        print(f"*** random {vgg.BASES[config.base].title} weights: a control, not transfer; "
              "the lecture's ranges do not apply")
    print(f"wall time {time.perf_counter() - start:.0f} s; wrote {json_path}"
          + (f" and {png_path}" if results["summary"] else ""))
    if interrupted:
        raise KeyboardInterrupt
    return payload


if __name__ == "__main__":
    sys.exit(cli.run_script(main, cli.parse_config(Config, None, __doc__, QUICK), "mnist_vgg.py",
                             stop_at_epoch_end=True))
