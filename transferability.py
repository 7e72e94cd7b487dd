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
    python transferability.py --data mnist.npz          # the whole halves (about 30 minutes)
    python transferability.py --data mnist.npz --target-size 1000 --epochs 20 --batch-size 32

The defaults (the whole halves, ~30,500 B images; 2 epochs for every network, batch 128;
3 trials) keep a full run on a 2-core CPU to about half an hour (estimated from the speed
of its first groups; about 3 GB of memory). The last command (1,000 B images per trial,
3 trials) took 16 minutes there; expect every model at about 98% for n = 1..4, and
nAnB-frozen at n = 5 (A's dense1 frozen too) about 3 points lower, while fine-tuning all
five of A's layers does best (98.6%, baseB 98.1%).

With --target-size, every trial draws its own B training set (the same number of images
of each odd digit) and its own baseB is trained on that set only: copying from a baseB
that saw more B images would leak data. baseB and the transferred networks train for
the same --epochs (Yosinski et al. trained them as long as the base); baseA is one
network, trained once on A for --source-epochs. Trial k uses seed --seed + k for its
fresh layers, Dropout, data order and B set; the bases draw their initial weights from
streams of their own, so no trial starts where a base started. Results:
results/transferability.json and results/transferability.png; each finished group (the
four models of an n, every trial; with the whole half as B, one model of an n) is kept in
results/transferability.trials.jsonl at once (--resume goes on from it). The bases are
saved in saved_models/ and reused when trained with the same settings and data.
"""

import dataclasses
import hashlib
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

import common  # noqa: F401  (quiets TensorFlow's start-up messages before keras loads)
import keras
from common import (checkpoints, cli, data, models, reporting, stats, training, transfer,
                    trial_log, trials)
from common.device import configure_device

TASK_A, TASK_B = data.EVEN_DIGITS, data.ODD_DIGITS
MODELS = ("AnB-frozen", "AnB-fine-tuned", "BnB-frozen", "BnB-fine-tuned")  # rows of the table
LAYERS = ("conv1", "conv2", "conv3", "conv4", "dense1")  # models.deep_cnn's transferable layers
# The networks of a group train side by side, each with its own copy of its B images in
# memory. Above this many images in one group (~630 MB of 28x28 floats), each model of
# an n trains as a group of its own instead of the four together.
GROUP_IMAGES = 200_000


@dataclass(frozen=True)
class Config(cli.RunOptions):
    """The study's settings; every field is a command-line flag."""

    trials: int = cli.option(3, "trials per model and n; trial k uses seed --seed + k", minimum=1)
    epochs: int = cli.option(2, "epochs on B, for baseB and every transferred network alike "
                             "(as Yosinski et al.)", group="training", minimum=1)
    source_epochs: int = cli.option(2, "epochs of training baseA on A", group="training",
                                    minimum=1)
    batch_size: int = cli.option(128, "batch size, for every network", group="training", minimum=1)
    learning_rate: float = cli.option(0.001, "Adam's learning rate, for every network "
                                      "(0.001: Keras's default)", group="training", minimum=1e-7)
    target_size: int = cli.option(0, "B training images per trial, the same number from each odd "
                                  "digit, drawn per trial (0: the whole half, ~30,500)",
                                  group="data", minimum=0)
    source_size: int = cli.option(0, "use at most this many A training images (0: all ~29,500)",
                                  group="data", minimum=0)
    test_size: int = cli.option(0, "use at most this many test images per task (0: all)",
                                group="data", minimum=0)
    seed: int = cli.option(0, "base seed (trial k uses seed + k)", minimum=0)
    data: str | None = cli.option(None, "an .npz with x_train, y_train, x_test, y_test "
                                  "(Keras's mnist.npz layout)", group="data")
    dataset: str = cli.option("auto", "mnist: MNIST or fail; digits: scikit-learn's bundled "
                              "digits; auto: MNIST if available, else digits", group="data",
                              choices=("auto", "mnist", "digits"))
    retrain: bool = cli.option(False, "train the bases anew even if matching saved ones exist",
                               group="model")
    models_dir: str = cli.option("saved_models", "folder of the saved base networks",
                                 group="model")
    out: str = cli.option("results", "folder for transferability.json and .png", group="output")
    quick: bool = cli.option(False, "a complete tiny run: 1 trial, 5 epochs, batch 100, 1,000 A "
                             "images, 100 B images, 500 test images", group="output")


# Most of a tiny run is TensorFlow tracing each network's training step (about a second
# per network on 2 cores), so --quick keeps to one trial (20 networks and 2 bases), and
# to one step per epoch on B (batch = B's 100 images), which Keras traces only once.
QUICK = {"trials": 1, "epochs": 5, "source_epochs": 5, "batch_size": 100, "source_size": 1000,
         "target_size": 100, "test_size": 500}


def option_name(n: int, model: str) -> str:
    """The trials file's name for model type `model` with n copied layers: "3AnB-frozen"."""
    return f"{n}{model}"


def option_groups(trials: int, b_size: int) -> list[tuple[int, list[str]]]:
    """(n, options) trained together, in order: the four models of each n; or, when that
    group would hold more than GROUP_IMAGES of B's images, each model of each n alone."""
    together = len(MODELS) * trials * b_size <= GROUP_IMAGES
    return [(n, [option_name(n, model) for model in chosen])
            for n in range(1, len(LAYERS) + 1)
            for chosen in ([MODELS] if together else [[model] for model in MODELS])]


def base_networks(role: str, train_sets: dict[int, tuple], config: Config,
                  dataset_name: str) -> dict[int, keras.Model]:
    """baseA (role "A") or the baseBs ("B"): one network per entry of `train_sets`.

    Each is reused from --models-dir when it was trained with the same settings and
    data, else trained now (all side by side) and saved. The network of key k starts
    from `derive_seed(k, "base<role>")`, a stream no trial uses.
    """
    classes, epochs = (TASK_A, config.source_epochs) if role == "A" else (TASK_B, config.epochs)
    found, records, paths = {}, {}, {}
    for key, (x, y) in train_sets.items():
        data_sha1 = hashlib.sha1(x.tobytes())
        data_sha1.update(y.tobytes())
        records[key] = {"config": {
            "role": f"base{role}", "architecture": "deep_cnn", "dataset": dataset_name,
            "classes": list(classes), "images": len(y), "epochs": epochs,
            "batch_size": config.batch_size, "learning_rate": config.learning_rate,
            "seed": models.derive_seed(key, f"base{role}"),
            "data_sha1": data_sha1.hexdigest()}}
        paths[key] = os.path.join(config.models_dir, f"transferability_{dataset_name}_{role}_"
                                  f"{len(y)}img_{epochs}ep_seed{key}.keras")
        model = None if config.retrain else checkpoints.load_if_matching(paths[key], records[key])
        if model is not None:
            print(f"  base{role} (seed {key}): reusing {paths[key]} (--retrain to redo it)")
            found[key] = model
    todo = [key for key in train_sets if key not in found]
    if todo:
        seeds = [records[key]["config"]["seed"] for key in todo]
        fresh = [models.deep_cnn(len(classes), seed) for seed in seeds]
        print(f"  training base{role} for {len(todo)} seed(s) on {len(train_sets[todo[0]][1]):,} "
              f"images each: {epochs} epoch{'s' if epochs > 1 else ''}, batch "
              f"{config.batch_size}")
        training.fit_side_by_side(fresh, [train_sets[key][0] for key in todo],
                                  [train_sets[key][1] for key in todo], seeds, epochs,
                                  config.batch_size, learning_rate=config.learning_rate,
                                  label=f"base{role}")
        for key, model in zip(todo, fresh):
            checkpoints.save_model(model, paths[key], records[key])
            found[key] = model
    return {key: found[key] for key in train_sets}


def transferred_network(model_type: str, n: int, seed: int, base_a: keras.Model,
                        bases_b: dict[int, keras.Model]) -> keras.Model:
    """Trial `seed`'s nAnB or nBnB network: a fresh deep CNN (seeded by the trial) with
    its first n layers copied from baseA or from the trial's own baseB."""
    source = base_a if model_type.startswith("AnB") else bases_b[seed]
    fresh = models.deep_cnn(len(TASK_B), seed, name=f"n{n}_{model_type.replace('-', '_')}_"
                            f"seed{seed}")  # side by side, every network needs its own name
    return transfer.copy_first_layers(source, fresh, n, frozen=model_type.endswith("frozen"))


def train_transferred(n: int, todo: list[tuple[str, int]], base_a: keras.Model,
                      bases_b: dict[int, keras.Model], b_sets: dict[int, tuple], b_test: tuple,
                      config: Config) -> list[dict]:
    """One group: the given (option, seed) trials of one n, all trained side by side on B."""
    kinds = [option[len(str(n)):] for option, _ in todo]
    seeds = [seed for _, seed in todo]
    networks = [transferred_network(kind, n, seed, base_a, bases_b)
                for kind, seed in zip(kinds, seeds)]
    print(f"\nn = {n}: {', '.join(LAYERS[:n])} copied; {', '.join([*LAYERS[n:], 'output'])} "
          f"new; {len(networks)} networks side by side")
    for kind in dict.fromkeys(kinds):
        network = networks[kinds.index(kind)]
        trainable = transfer.parameter_count(network.trainable_weights)
        print(f"  {option_name(n, kind)}: from {'baseA' if kind.startswith('AnB') else 'baseB'}, "
              f"{trainable:,} of {network.count_params():,} parameters trainable")
    scores = trials.train_and_test(networks, [b_sets[seed] for seed in seeds], b_test, seeds,
                                   config.epochs, config.batch_size, f"n = {n}",
                                   learning_rate=config.learning_rate)
    return [{"accuracy": score, "n": n, "model": kind} for score, kind in zip(scores, kinds)]


def summary_grid(results: dict[str, dict[int, float]]) -> dict:
    """The study's table: per model type, per n, the trials' mean and std (None: none yet)."""
    cells = {model: [stats.summarize(list(results[option_name(n, model)].values()))
                     if results[option_name(n, model)] else None
                     for n in range(1, len(LAYERS) + 1)] for model in MODELS}
    return {"n": list(range(1, len(LAYERS) + 1)), "layers": list(LAYERS), "models": cells}


def frozen_comparisons(results: dict[str, dict[int, float]]) -> list[dict]:
    """For each n, nAnB-frozen against nBnB-frozen (Welch's test; trials with the same
    seed share B's training set): what copying A's layers costs, or gains, against B's own."""
    pairs = [(option_name(n, "BnB-frozen"), option_name(n, "AnB-frozen"))
             for n in range(1, len(LAYERS) + 1)]
    return [stats.compare(own, other, results[own], results[other])
            for own, other in pairs if results[own] and results[other]]


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


def main(config: Config) -> dict:
    start = time.perf_counter()
    if config.target_size % len(TASK_B):
        raise cli.UserInputError(f"--target-size {config.target_size}: must be 0 (the whole "
                                 f"half) or a multiple of {len(TASK_B)} (the same number of "
                                 "images from each odd digit)")
    timings: dict[str, float] = {}
    os.makedirs(config.out, exist_ok=True)
    print(f"transferability: 4 models x n = 1..{len(LAYERS)}, {config.trials} trials each, "
          f"device {configure_device()}")
    keras.utils.set_random_seed(config.seed)

    # 1. Load the data: A = even digits, B = odd digits (labels 0..4 in each)
    dataset = data.load_mnist(config.data, config.dataset)
    if dataset.warning:
        print(f"\n*** {dataset.warning}\n")

    def task(x, y, classes, limit):
        return data.subsample(*data.select_classes(x, y, classes), limit, config.seed)

    a_train = task(dataset.x_train, dataset.y_train, TASK_A, config.source_size)
    a_test = task(dataset.x_test, dataset.y_test, TASK_A, config.test_size)
    b_pool = task(dataset.x_train, dataset.y_train, TASK_B, 0)
    b_test = task(dataset.x_test, dataset.y_test, TASK_B, config.test_size)
    a_train, a_test, b_pool, b_test = [(data.to_unit_float(x), y)
                                       for x, y in (a_train, a_test, b_pool, b_test)]
    seeds = trials.trial_seeds(config.seed, config.trials)
    mine = trial_log.shard_seeds(seeds, config.shard)  # all of them, unless --shard
    if config.target_size:  # each trial its own B set; its baseB sees that set only
        picks = trials.draw_small_sets(b_pool[1], config.target_size // len(TASK_B), seeds,
                                       [str(d) for d in TASK_B], "--target-size")
        b_sets = {seed: (b_pool[0][i], b_pool[1][i]) for seed, i in zip(seeds, picks)}
    else:  # the whole half, the same for every trial
        b_sets = {seed: b_pool for seed in seeds}
    b_size = len(b_sets[seeds[0]][1])
    drawn = f"drawn per trial from {len(b_pool[1]):,}" if config.target_size else "the whole half"
    print(f"data: {dataset.name} ({dataset.source})\n  A (digits 0,2,4,6,8): "
          f"{len(a_train[1]):,} training, {len(a_test[1]):,} test images\n  B (digits "
          f"1,3,5,7,9): {b_size:,} training images per trial ({drawn}), {len(b_test[1]):,} "
          "test images")
    # Each finished group goes to the trials file at once; --resume reads the finished
    # ones back (refusing another config, or other data than the run had) before any work.
    log = trial_log.TrialLog(trial_log.trials_path(config.out, "transferability"),
                             "transferability",
                             {**dataclasses.asdict(config), "dataset_used": dataset.name},
                             config.resume or bool(config.shard))
    timings["load"] = round(time.perf_counter() - start, 2)

    # 2. Train the bases: baseA on A (once), baseB on each trial's B training set
    since = time.perf_counter()
    print(f"\nbase networks: {models.deep_cnn().count_params():,} parameters, transferable "
          f"layers {', '.join(LAYERS)}")
    base_a = base_networks("A", {config.seed: a_train}, config, dataset.name)[config.seed]
    bases_b = base_networks("B", {seed: b_sets[seed] for seed in mine}, config, dataset.name)
    base_a_accuracy = training.accuracies([base_a], *a_test)[0]
    base_b_accuracy = dict(zip(bases_b, training.accuracies(list(bases_b.values()), *b_test)))
    print(f"  baseA on A's test images: {100 * base_a_accuracy:.1f}%; baseB on B's: "
          + ", ".join(f"{100 * value:.1f}%" for value in base_b_accuracy.values()))
    timings["bases"] = round(time.perf_counter() - since, 2)

    # 3. For n = 1..L: copy the first n layers from baseA or baseB, frozen or fine-tuned,
    # re-initialise the rest, train on B. The four models of one n, every trial, are one
    # group trained side by side (one model per group when B is large); each finished
    # group goes to the trials file at once.
    since = time.perf_counter()

    def train_here() -> None:
        for n, options in option_groups(len(mine), b_size):
            log.run([(option, seed) for option in options for seed in mine],
                    lambda todo: train_transferred(n, todo, base_a, bases_b, b_sets, b_test,
                                                   config))

    interrupted = trial_log.run_trials(log, config, __file__, train_here)
    timings["transferred"] = round(time.perf_counter() - since, 2)
    if config.shard:
        return trial_log.end_of_shard(log, config, interrupted)

    # 4. Summarise: the table, A's layers against B's own (frozen) for each n, the figure
    options = [option_name(n, model) for n in range(1, len(LAYERS) + 1) for model in MODELS]
    results = log.accuracies(options, seeds)
    grid = summary_grid(results)
    comparisons = frozen_comparisons(results)
    timings["total"] = round(time.perf_counter() - start, 2)
    trial_fields = reporting.trial_results(results, None, len(options) * len(seeds))
    finished = bool(trial_fields["summary"])  # some trial has finished
    base_b_values = [base_b_accuracy[seed] for seed in seeds]
    payload = {
        "script": "transferability", "config": dataclasses.asdict(config),
        "dataset": dataset.describe(), "device": configure_device(),
        "environment": reporting.environment(), "seeds": seeds,
        "task_a": list(TASK_A), "task_b": list(TASK_B), "b_training_images": b_size,
        "layers": list(LAYERS),
        "bases": {"A": {"test_accuracy_on_A": base_a_accuracy, "training_images": len(a_train[1]),
                        "seed": models.derive_seed(config.seed, "baseA")},
                  "B": {"test_accuracy_on_B": base_b_values, "trial_seeds": list(base_b_accuracy),
                        "summary": stats.summarize(base_b_values),
                        "training_images": b_size}},
        **trial_fields, "table": grid, "comparisons": comparisons,
        "trials_file": log.path, "plots": ["transferability.png"] if finished else [],
        "timings_s": timings}
    json_path = os.path.join(config.out, "transferability.json")
    reporting.write_json(json_path, payload)
    png_path = os.path.join(config.out, "transferability.png")
    size = f"{b_size:,} B training images" + (" (whole half)" if not config.target_size
                                             else " per trial")
    if finished:
        plot_transferability(png_path, results, base_b_values,
                             f"Layer transferability, MNIST even → odd digits ({dataset.name}): "
                             f"{size}, {config.trials} trial{'s' if config.trials > 1 else ''}")

    base_b_summary = payload["bases"]["B"]["summary"]
    print(f"\nsummary: test accuracy on B (digits 1,3,5,7,9), mean ± std over trials, in %; "
          f"{size}\n" + grid_text(grid)
          + f"\nbaseB (B alone, same data): {mean_and_spread(base_b_summary)}; baseA on A's "
          f"test images: {100 * base_a_accuracy:.1f}\nA's layers frozen against B's own, "
          "frozen:\n" + reporting.comparison_lines(comparisons))
    if dataset.warning:
        print(f"*** {dataset.name}: not MNIST; pass --data mnist.npz for the real study.")
    print(f"wall time {timings['total']:.0f} s; wrote {json_path}"
          + (f" and {png_path}" if finished else ""))
    if interrupted:
        raise KeyboardInterrupt
    return payload


if __name__ == "__main__":
    sys.exit(cli.run_script(main, cli.parse_config(Config, None, __doc__, QUICK),
                            "transferability.py", stop_at_epoch_end=True))
