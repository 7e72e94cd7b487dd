"""How transferable is each layer? Yosinski et al.'s study on the two halves of MNIST.

Task A is the even digits 0,2,4,6,8, task B the odd digits 1,3,5,7,9. A CNN with five
transferable layers (conv1, conv2, conv3, conv4, dense1) is trained on each half: baseA
and baseB. Then, for n = 1..5, new networks learn B with their first n layers copied
from a base and the rest freshly initialised:

    nAnB-frozen       layers 1..n from baseA, frozen      (transfer from another task)
    nAnB-fine-tuned   layers 1..n from baseA, trained too
    nBnB-frozen       layers 1..n from baseB, frozen      (the "selffer": B's own layers)
    nBnB-fine-tuned   layers 1..n from baseB, trained too

A drop of nBnB-frozen below baseB in the middle layers is fragile co-adaptation (layers
that only work together, relearnt badly on top of frozen ones); a drop of nAnB-frozen
below nBnB-frozen at higher n is the specificity of A's features. Fine-tuning shows
whether training the copied layers too recovers, or beats, training on B alone.

    python transferability.py --quick                   # a complete tiny run (< 1 minute)
    python transferability.py --quick --plain           # the same, through the plain Keras code
    python transferability.py --data mnist.npz          # the whole halves
    python transferability.py --data mnist.npz --target-size 1000 --epochs 20 --batch-size 32

The defaults (the whole halves, ~30,500 B images; 2 epochs for every network, batch 128;
3 trials) were not run to the end here: from the speed of its first groups, a full run
on a 2-core CPU would take about half an hour (an estimate, not a measurement). The
last command (1,000 B images per trial, 3 trials) was measured on a 2-core Intel Xeon
CPU (docs/results.md gives the commit): 16 minutes; every model at 98.0–98.4% for
n = 1..4, nAnB-frozen at n = 5 (A's dense1 frozen too) 3.2 points lower (94.8%), and
fine-tuning all five of A's layers best (98.6%, baseB 98.1%).

With --target-size, every trial draws its own B training set (the same number of images
of each odd digit) and its own baseB is trained on that set only: copying from a baseB
that saw more B images would leak data. baseB and the transferred networks train for
the same --epochs (Yosinski et al. trained them as long as the base); baseA is one
network, trained once on A for --source-epochs. Trial k uses seed --seed + k for its
fresh layers, Dropout, data order and B set; the bases draw their initial weights (and
their data order) from streams of their own, so no trial starts where a base started.
Results: results/transferability.json and results/transferability.png; each finished
group (one model type's networks for n = 1..5, every trial; with the whole half as B,
as many n as fit in memory) is kept in results/transferability.trials.jsonl at once
(--resume goes on from it). The bases are saved in saved_models/ and reused when trained
with the same settings and data.
"""

import contextlib
import dataclasses
import functools
import hashlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from common import startup

startup.prepare_tensorflow()  # before keras, as keras-io sets KERAS_BACKEND
import keras

from common import engine, files
from common.lesson import data, networks, plain, saved_models, transfer
from common.lesson.orders import in_seeded_order
from common.lesson.settings import FitSettings
from common.runs import cli, stats, summary, tables
from common.runs.device import configure_device
from common.runs.trial_log import TrialLog, trial_seeds

TASK_A, TASK_B = data.EVEN_DIGITS, data.ODD_DIGITS
MODELS = ("AnB-frozen", "AnB-fine-tuned", "BnB-frozen", "BnB-fine-tuned")  # rows of the table
LAYERS = ("conv1", "conv2", "conv3", "conv4", "dense1")  # networks.deep_cnn's transferable layers
# The networks of one training call train side by side, each with its own copy of its
# B images in memory. Above this many images in one call (~630 MB of 28x28 floats), a
# model type's n = 1..5 are spread over several calls.
GROUP_IMAGES = 200_000
DIGITS_NOTE = "*** digits: not MNIST; pass --data mnist.npz for the real study."


@dataclasses.dataclass(frozen=True)
class Config(cli.RunFlags):
    """The study's settings; every field is a command-line flag."""

    trials: int = cli.shared("trials", 3)
    seed: int = cli.shared("seed", 0)
    data: str | None = cli.shared("data", None)
    dataset: str = cli.shared("dataset", "auto", choices=("auto", "mnist", "digits"))
    target_size: int = cli.option(0, "B training images per trial, the same number from each odd "
                                  "digit, drawn per trial (0: the whole half, ~30,500)",
                                  group="data", minimum=0)
    source_size: int = cli.option(0, "use at most this many A training images (0: all ~29,500)",
                                  group="data", minimum=0)
    test_size: int = cli.shared("test_size", 0)
    models_dir: str = cli.shared("models_dir", "saved_models")
    retrain: bool = cli.shared("retrain", False)
    epochs: int = cli.shared("epochs", 2)  # on B, for baseB and every transferred network
    source_epochs: int = cli.option(2, "epochs of training baseA on A", group="training",
                                    minimum=1)
    batch_size: int = cli.shared("batch_size", 128)  # for every network
    lr: float | None = cli.shared("lr", None, group="training")  # Adam's, for every network
    out: str = cli.shared("out", "results")
    quick: bool = cli.shared("quick", False)

    def __post_init__(self) -> None:
        if self.target_size % len(TASK_B):
            raise cli.UserInputError(f"--target-size {self.target_size}: must be 0 (the whole "
                                     f"half) or a multiple of {len(TASK_B)} (the same number "
                                     "of images from each odd digit)")


# Most of a tiny run is TensorFlow tracing each network's training step (about a second
# per network on 2 cores), so --quick keeps to one trial (20 networks and 2 bases), and
# to one step per epoch on B (batch = B's 100 images), which Keras traces only once.
QUICK = {"trials": 1, "epochs": 5, "source_epochs": 5, "batch_size": 100, "source_size": 1000,
         "target_size": 100, "test_size": 500}


# --- The study's steps, in plain Keras ------------------------------------------------

def pretrain(model: keras.Model, train_set: tuple, fit: FitSettings, seed: int) -> None:
    """A base network's training (baseA on A, baseB on a trial's B set): compile, fit."""
    model.compile(optimizer=fit.make_optimizer(), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(**in_seeded_order(train_set, fit, seed), epochs=fit.epochs, verbose=2)


def transferred_network(model_type: str, n: int, seed: int, base_a: keras.Model,
                        bases_b: Mapping[int, keras.Model]) -> keras.Model:
    """Trial `seed`'s nAnB or nBnB network: a fresh deep CNN (seeded by the trial) with
    its first n layers copied from baseA or from the trial's own baseB, frozen or not."""
    source = base_a if model_type.startswith("AnB") else bases_b[seed]
    fresh = networks.deep_cnn(len(TASK_B), seed, name=f"n{n}_{model_type.replace('-', '_')}_"
                            f"seed{seed}")  # side by side, every network needs its own name
    return transfer.copy_first_layers(source, fresh, n, frozen=model_type.endswith("frozen"))


def one_trial(model: keras.Model, train_set: tuple, test: tuple, fit: FitSettings,
              seed: int) -> dict:
    """One transferred network on B: compile (which makes the freeze take effect), fit on
    the trial's B set, evaluate on B's test images."""
    model.compile(optimizer=fit.make_optimizer(), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(**in_seeded_order(train_set, fit, seed), epochs=fit.epochs, verbose=0)
    loss, accuracy = model.evaluate(*test, verbose=0)
    return {"accuracy": accuracy, "history": history.history}  # per epoch: --log-dir


# --- The experiment -------------------------------------------------------------------

def option_name(n: int, model: str) -> str:
    """The trials file's name for model type `model` with n copied layers: "3AnB-frozen"."""
    return f"{n}{model}"


# For each n, A's layers frozen against B's own (frozen): what copying A's layers costs.
FROZEN_PAIRS = [(option_name(n, "BnB-frozen"), option_name(n, "AnB-frozen"))
                for n in range(1, len(LAYERS) + 1)]


def option_groups(trials: int, b_size: int) -> list[tuple[str, list[int]]]:
    """(model type, the n's) of each training call, in order: every n of a model type
    in one call (so alike networks train stacked); when that would hold more than
    GROUP_IMAGES of B's images, as many n per call as fit (at least one)."""
    per_call = max(1, GROUP_IMAGES // (trials * b_size))
    ns = list(range(1, len(LAYERS) + 1))
    return [(model, ns[first:first + per_call]) for model in MODELS
            for first in range(0, len(ns), per_call)]


def b_training_sets(pool: tuple, target_size: int, seeds: Sequence[int]) -> dict[int, tuple]:
    """Each trial's B training set: `target_size` images of `pool` drawn by the trial's
    seed, the same number of each odd digit; or (0) the whole half for every trial.

    Raises:
        UserInputError: a digit has too few images.
    """
    if not target_size:
        return {seed: pool for seed in seeds}
    return data.small_sets(pool, target_size, seeds, [str(d) for d in TASK_B], "--target-size")


def base_networks(role: str, train_sets: dict[int, tuple], fit: FitSettings, models_dir: str,
                  retrain: bool, dataset_name: str,
                  pretrain_all: Callable) -> dict[int, keras.Model]:
    """baseA (role "A") or the baseBs ("B"): one network per entry of `train_sets`.

    Each is reused from --models-dir when it was trained with the same settings and
    data, else trained now by `pretrain_all` (the plain `pretrain` of each, or the
    engine's `pretrain`, all side by side) and saved. The network of key k starts from,
    and orders its data by, `derive_seed(k, "base<role>")`, a stream no trial uses.
    baseA, which every process of --jobs needs, is trained by one of them while the
    others wait, then reuse it; each process trains the baseBs of its own trials.
    """
    lock = os.path.join(models_dir, f"transferability_{dataset_name}_A")
    with files.one_process_at_a_time(lock) if role == "A" else contextlib.nullcontext():
        return saved_or_trained_bases(role, train_sets, fit, models_dir, retrain, dataset_name,
                                      pretrain_all)


def saved_or_trained_bases(role: str, train_sets: dict[int, tuple], fit: FitSettings,
                           models_dir: str, retrain: bool, dataset_name: str,
                           pretrain_all: Callable) -> dict[int, keras.Model]:
    """`base_networks`, inside its lock."""
    classes = TASK_A if role == "A" else TASK_B
    found, records, paths = {}, {}, {}
    for key, (x, y) in train_sets.items():
        data_sha1 = hashlib.sha1(x.tobytes())
        data_sha1.update(y.tobytes())
        records[key] = {"config": {
            "role": f"base{role}", "architecture": "deep_cnn", "dataset": dataset_name,
            "classes": list(classes), "images": len(y), "epochs": fit.epochs,
            "batch_size": fit.batch_size, "learning_rate": fit.rate,
            "seed": networks.derive_seed(key, f"base{role}"),
            "data_sha1": data_sha1.hexdigest()}}
        paths[key] = os.path.join(models_dir, f"transferability_{dataset_name}_{role}_"
                                  f"{len(y)}img_{fit.epochs}ep_seed{key}.keras")
        model = None if retrain else saved_models.load_if_matching(paths[key], records[key])
        if model is not None:
            print(f"  base{role} (seed {key}): reusing {paths[key]} (--retrain to redo it)")
            found[key] = model
    todo = {records[key]["config"]["seed"]: key for key in train_sets if key not in found}
    if todo:
        fresh = {seed: networks.deep_cnn(len(classes), seed) for seed in todo}
        print(f"  training base{role} on {len(train_sets[next(iter(todo.values()))][1]):,} "
              f"images" + (f" for each of {len(todo)} networks" if len(todo) > 1 else "")
              + f": {fit.epochs} epochs, batch {fit.batch_size}")
        pretrain_all(fresh, {seed: train_sets[key] for seed, key in todo.items()}, fit,
                     label=f"training base{role}")
        for seed, key in todo.items():
            saved_models.save_model(fresh[seed], paths[key], records[key])
            found[key] = fresh[seed]
    return {key: found[key] for key in train_sets}


def transferred_networks(model_type: str, ns: Sequence[int], todo: Callable[[str], list[int]],
                         base_a: keras.Model, bases_b: Mapping[int, keras.Model],
                         ) -> dict[tuple[str, int], keras.Model]:
    """One training call's networks: model type `model_type` for each n of `ns`, for
    each trial that `todo(option)` says is not finished, keyed by (option, seed)."""
    source = "baseA" if model_type.startswith("AnB") else "baseB"
    how = "frozen" if model_type.endswith("frozen") else "trained too"
    print(f"\n{model_type}: the first n layers from {source}, {how}; the rest new; "
          f"n = {', '.join(map(str, ns))}")
    built = {}
    for n in ns:
        option = option_name(n, model_type)
        networks = {(option, seed): transferred_network(model_type, n, seed, base_a, bases_b)
                    for seed in todo(option)}
        for network in list(networks.values())[:1]:
            print(f"  {option}: {', '.join(LAYERS[:n])} copied; "
                  f"{transfer.parameter_count(network.trainable_weights):,} of "
                  f"{network.count_params():,} parameters trainable; {len(networks)} trial(s)")
        built.update(networks)
    return built


def summary_grid(results: dict[str, dict[int, float]]) -> dict:
    """The study's table: per model type, per n, the trials' mean and std (None: none yet)."""
    cells = {model: [stats.summarize(list(results[option_name(n, model)].values()))
                     if results[option_name(n, model)] else None
                     for n in range(1, len(LAYERS) + 1)] for model in MODELS}
    return {"n": list(range(1, len(LAYERS) + 1)), "layers": list(LAYERS), "models": cells}


def mean_and_spread(summary: dict) -> str:
    """'97.1 ± 0.4' (mean ± std in %), or '97.1' for a single trial."""
    spread = f" ± {100 * summary['std']:.1f}" if summary.get("std") is not None else ""
    return f"{100 * summary['mean']:.1f}{spread}"


def grid_text(grid: dict) -> str:
    """The table as text: one row per model type, one column per n, mean ± std in %."""
    width = max(map(len, MODELS)) + 2
    lines = [" " * width + "".join(f"{f'n={n} {name}':>15}" for n, name in
                                   zip(grid["n"], grid["layers"]))]
    for model, cells in grid["models"].items():
        texts = [mean_and_spread(cell) if cell else "—" for cell in cells]
        lines.append(f"{model:<{width}}" + "".join(f"{text:>15}" for text in texts))
    return "\n".join(lines)


def plot_transferability(path: str, results: dict[str, dict[int, float]], base_b: list[float],
                         title: str) -> None:
    """Accuracy on B against n: a line through each model type's means, every trial as a
    faint point, baseB's mean accuracy as a horizontal line. Saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = {"AnB-frozen": ("#d62728", "-", "o"), "AnB-fine-tuned": ("#f4a3a3", "--", "^"),
              "BnB-frozen": ("#1f77b4", "-", "s"), "BnB-fine-tuned": ("#8fc1e3", "--", "v")}
    figure, axes = plt.subplots(figsize=(7.5, 4.8))
    for offset, model in zip((-0.12, -0.04, 0.04, 0.12), MODELS):
        colour, line, marker = styles[model]
        points = [(n, list(results[option_name(n, model)].values()))
                  for n in range(1, len(LAYERS) + 1) if results[option_name(n, model)]]
        for n, values in points:
            axes.scatter([n + offset] * len(values), 100 * np.asarray(values), color=colour,
                         alpha=0.35, s=14, marker=marker, linewidths=0)
        axes.plot([n + offset for n, _ in points], [100 * np.mean(v) for _, v in points],
                  line, color=colour, marker=marker, label=f"n{model[0]}n{model[2:]}")
    if base_b:
        axes.axhline(100 * np.mean(base_b), color="0.3", linestyle=":",
                     label=f"baseB (B alone, same data): {100 * np.mean(base_b):.1f}%")
    ticks = [f"{n}\n({LAYERS[0]}{'–' + name if n > 1 else ''})"
             for n, name in enumerate(LAYERS, start=1)]
    axes.set_xticks(range(1, len(LAYERS) + 1), ticks)
    axes.set_xlabel("n: number of layers copied from the base network (conv1 up to the one named)")
    axes.set_ylabel("test accuracy on B, digits 1,3,5,7,9 (%)")
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="lower left")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def draw_figure(log: TrialLog, results: dict, bases: dict, size: str) -> list[str]:
    """The study's figure (`plot_transferability`) at <out>/<name>.png, once a trial has
    finished; returns the files written."""
    if not results["summary"]:
        return []
    path = os.path.join(log.config.out, f"{log.name}.png")
    trials = len(log.all_seeds)
    plot_transferability(path, log.accuracies(log.planned), bases["B"]["test_accuracy_on_B"],
                         f"Layer transferability, MNIST even → odd digits ({log.dataset.name}): "
                         f"{size}, {trials} trial{'s' if trials > 1 else ''}")
    return [path]


def bases_summary(base_a_accuracy: float, a_images: int, base_b_accuracy: dict[int, float],
                  b_size: int, seed: int) -> dict:
    """The JSON's "bases": baseA's and the baseBs' test accuracies, their data and seeds."""
    values = list(base_b_accuracy.values())
    return {"A": {"test_accuracy_on_A": base_a_accuracy, "training_images": a_images,
                  "seed": networks.derive_seed(seed, "baseA")},
            "B": {"test_accuracy_on_B": values, "trial_seeds": list(base_b_accuracy),
                  "summary": stats.summarize(values), "training_images": b_size}}


def summary_notes(grid: dict, bases: dict, digits: bool) -> list[str]:
    """The lines under the summary: the table, baseB and baseA."""
    return ["\nmean ± std over trials, in %, by model type and n:\n" + grid_text(grid),
            f"baseB (B alone, same data): {mean_and_spread(bases['B']['summary'])}; baseA on "
            f"A's test images: {100 * bases['A']['test_accuracy_on_A']:.1f}",
            *([DIGITS_NOTE] if digits else [])]


def main(config: Config) -> dict:
    print(f"transferability: 4 models x n = 1..{len(LAYERS)}, {config.trials} trials each, "
          f"device {configure_device(config.precision)}")
    keras.utils.set_random_seed(config.seed)
    clock = summary.Stopwatch()

    # 1. Load the data: A = even digits, B = odd digits (labels 0..4, pixels in [0, 1]),
    # and each trial's B training set
    dataset = data.load_mnist(config.data, config.dataset)
    print(dataset.announcement())
    a_train, a_test, b_pool, b_test = data.two_tasks(dataset, TASK_A, TASK_B, config.source_size,
                                                     config.test_size, config.seed)
    b_sets = b_training_sets(b_pool, config.target_size, trial_seeds(config.seed, config.trials))
    log = TrialLog("transferability", config, dataset)  # each trial on disk as it ends
    b_size = len(b_sets[config.seed][1])
    drawn = f"drawn per trial from {len(b_pool[1]):,}" if config.target_size else "the whole half"
    print(f"  A (digits 0,2,4,6,8): {len(a_train[1]):,} training, {len(a_test[1]):,} test "
          f"images\n  B (digits 1,3,5,7,9): {b_size:,} training images per trial ({drawn}), "
          f"{len(b_test[1]):,} test images")
    clock.lap("load")

    # Which code trains the networks: the plain Keras code above, one after the other
    # (--plain), or the fast engine, which gives the same accuracies (tested).
    pretrain_all = (functools.partial(plain.pretrain_each, pretrain) if config.plain
                    else engine.pretrain)
    train_trials = (functools.partial(plain.trial_by_trial, one_trial) if config.plain
                    else functools.partial(engine.train_trials, cache_features=False))

    # 2. The bases: baseA on A (once), baseB on each trial's B training set
    fit = FitSettings(config.epochs, config.batch_size, "adam", config.lr,
                      history=config.log_dir is not None)
    print(f"\nbase networks: {networks.deep_cnn().count_params():,} parameters, transferable "
          f"layers {', '.join(LAYERS)}")
    base_a = base_networks("A", {config.seed: a_train}, dataclasses.replace(
        fit, epochs=config.source_epochs), config.models_dir, config.retrain, dataset.name,
        pretrain_all)[config.seed]
    bases_b = base_networks("B", {seed: b_sets[seed] for seed in log.seeds}, fit,
                            config.models_dir, config.retrain, dataset.name, pretrain_all)
    bases = bases_summary(engine.accuracies([base_a], *a_test)[0], len(a_train[1]), dict(
        zip(bases_b, engine.accuracies(list(bases_b.values()), *b_test))), b_size, config.seed)
    print(f"  baseA on A's test images: {100 * bases['A']['test_accuracy_on_A']:.1f}%; baseB "
          "on B's: " + ", ".join(f"{100 * v:.1f}%" for v in bases["B"]["test_accuracy_on_B"]))
    clock.lap("bases")

    # 3. For each model type and n = 1..5: the first n layers copied from baseA or baseB,
    # frozen or fine-tuned, the rest new, trained on B (all n and trials of a type at once;
    # whole networks: their frozen fronts differ with n and, for nBnB, with the trial)
    log.plan(*(option_name(n, model) for model in MODELS for n in range(1, len(LAYERS) + 1)))
    with log.until_interrupted():  # Ctrl-C: on to the summary of the finished trials
        for model_type, ns in option_groups(len(log.seeds), b_size):
            log.record_trials(train_trials(transferred_networks(
                model_type, ns, log.todo, base_a, bases_b), b_sets, b_test, fit,
                label=model_type))

    # 4. Summarise: the table, A's layers against B's own (frozen) for each n, the figure
    results = summary.compare(log, {}, pairs=FROZEN_PAIRS)
    grid = summary_grid(log.accuracies(log.planned))
    size = f"{b_size:,} B training images" + (" per trial" if config.target_size
                                             else " (whole half)")
    return summary.write_summary(
        log, results, f"test accuracy on B (digits 1,3,5,7,9); {size}",
        tables.training_line(fit, plain=config.plain), draw_figure(log, results, bases, size),
        clock, notes=summary_notes(grid, bases, dataset.name == "digits"),
        extra={"task_a": list(TASK_A), "task_b": list(TASK_B), "b_training_images": b_size,
               "layers": list(LAYERS), "bases": bases, "table": grid})


if __name__ == "__main__":
    sys.exit(cli.run_script(main, cli.parse_config(Config, None, __doc__, QUICK),
                            "transferability.py"))
