"""The bookkeeping of one experiment run, behind one object: `Experiment`.

A script says what to train (`run.trials(...)`) and, at the end, `run.finish(...)`;
the object does the rest, the same way for every script:

- the trials file (`common.trial_log`): each finished trial is written the moment it
  finishes; `--resume` trains only what is missing; `--shard K/N` and `--jobs N`
  spread the trials over processes;
- which path trains: the fast engine (`common.trials.train_and_test`) by default, or
  the script's own plain `one_trial`, one trial after another, with `--plain`;
- Ctrl-C: training stops at the end of the epoch (plain: of the trial) in progress,
  and `finish` still prints and writes what finished, then exits with status 130;
- the summary table, the comparisons, the JSON payload, the plots and the timings.
"""

import dataclasses
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import keras

from common import cli, reporting, stats, training, trial_log, trials
from common.device import configure_device
from common.settings import FineTune, FitSettings
from common.transfer import fine_tuning_copy

FINE_TUNED = " + fine-tune"  # an option's name after the fine-tuning stage
Examples = tuple[np.ndarray, np.ndarray]  # (images or features, labels)
# The script's plain trial: (model, train set, test set, fit settings, seed) -> record.
OneTrial = Callable[[keras.Model, Examples, Examples, FitSettings, int], dict]


class Experiment:
    """One run of an experiment script: its trials, its trials file and its results.

    Args:
        script: the script's name ("tl_mnist"); names the files in `config.out`.
        config: the script's config (with the `cli.RunFlags` fields, `seed`, `trials`
            and `out`).
        dataset: the data used (`data.Dataset`), for the results and for --resume.
        one_trial: the script's plain trial, used with --plain.
        validate: the trials score the test set after every epoch (the histories).

    Raises:
        UserInputError: --resume with another config, or --jobs with --shard.
    """

    def __init__(self, script: str, config: Any, dataset: Any, one_trial: OneTrial,
                 validate: bool = False):
        if config.jobs > 1 and config.shard:
            raise cli.UserInputError(f"--jobs {config.jobs} with --shard {config.shard}: a "
                                     "shard runs in one process; drop one of the two")
        self.script, self.config, self.dataset = script, config, dataset
        self.one_trial, self.validate = one_trial, validate
        self.started_at = self.phase_started = time.perf_counter()
        self.timings: dict[str, float] = {}
        self.all_seeds = trials.trial_seeds(config.seed, config.trials)
        self.seeds = trial_log.shard_seeds(self.all_seeds, config.shard)  # this process's
        if not self.seeds:
            raise cli.UserInputError(f"--shard {config.shard}: no trial falls to this shard "
                                     f"(--trials {config.trials}); use at most "
                                     f"{config.trials} shards")
        os.makedirs(config.out, exist_ok=True)
        self.log = trial_log.TrialLog(
            trial_log.trials_path(config.out, script), script,
            {**dataclasses.asdict(config), "dataset_used": dataset.name},
            config.resume or bool(config.shard))
        print(f"data: {dataset.name} ({dataset.source})")
        if dataset.warning:
            print(f"\n*** {dataset.warning}\n")
        self.options: list[str] = []  # every option trained, in order; the first is the baseline
        self.fit: FitSettings | None = None
        self.fine_tune: FineTune | None = None
        self.started = self.dispatched = self.interrupted = False

    def phase_done(self, name: str) -> None:
        """Records how long the phase since the last one took (the JSON's timings_s)."""
        now = time.perf_counter()
        self.timings[name] = round(now - self.phase_started, 2)
        self.phase_started = now

    def pretrain(self, pretrain: Callable[[keras.Model, Examples, FitSettings, int], None],
                 models: Sequence[keras.Model], train_sets: Sequence[Examples],
                 fit: FitSettings, seeds: Sequence[int], label: str = "pretraining") -> None:
        """Trains each model on its own set, as the script's plain `pretrain(model,
        train_set, fit, seed)` does: with --plain by calling it, one model after the
        other; by default through the engine (`training.fit_side_by_side`, all at once),
        which gives the same models faster."""
        print(f"  {label} on {len(train_sets[0][1]):,} images"
              + (f" for each of {len(models)} models" if len(models) > 1 else "")
              + f": {fit.epochs} epochs, batch {fit.batch_size}")
        if self.config.plain:
            for model, train_set, seed in zip(models, train_sets, seeds):
                pretrain(model, train_set, fit, seed)
        else:
            training.fit_side_by_side(models, [x for x, _ in train_sets],
                                      [y for _, y in train_sets], seeds, fit, label=label)

    def trials(self, models: Mapping[str, Sequence[keras.Model]],
               train_sets: Mapping[int, Examples], test: Examples, fit: FitSettings,
               fine_tune: FineTune | None = None, feature_cache: str | None = None, cache_features: bool = True) -> None:
        """Trains and tests the trials of some options, recording each as it finishes.

        Args:
            models: option name -> one built model per seed of `self.seeds`, in order.
            train_sets: seed -> that trial's (images, labels).
            test: the (images, labels) every trial is scored on.
            fit: the training (epochs, batch size, optimizer, learning rate).
            fine_tune: a second stage; its trials are the options "<name> + fine-tune".
            feature_cache: a folder for the engine to keep frozen layers' features in.
            cache_features: False: the engine trains the whole models, for models
                whose frozen fronts differ (the layer-by-layer study).
        """
        if not models:
            return
        stage_two = [name + FINE_TUNED for name in models] if fine_tune else []
        self.options += [name for name in [*models, *stage_two] if name not in self.options]
        self.fit, self.fine_tune = self.fit or fit, self.fine_tune or fine_tune
        if not self.started:
            self.start()
        if cli.STOP_REQUESTED.is_set():
            self.interrupted = True
        if self.dispatched or self.interrupted:
            return
        todo = self.log.missing([(name, seed) for name in [*models, *stage_two]
                                 for seed in self.seeds])
        # A fine-tuned trial starts from its first stage, so that trains again if needed.
        needed = [(name, seed) for name in models for seed in self.seeds
                  if {(name, seed), (name + FINE_TUNED, seed)} & set(todo)]
        if not needed:
            return
        chosen = [models[name][self.seeds.index(seed)] for name, seed in needed]
        sets = [train_sets[seed] for _, seed in needed]
        try:
            if self.config.plain:  # the script's own code, one trial after the other
                for (option, seed), model, train_set in zip(needed, chosen, sets):
                    self.record(option, seed, self.one_trial(model, train_set, test, fit, seed),
                                todo)
                    if fine_tune:
                        self.fine_tune_plain(option, seed, model, train_set, test, fine_tune,
                                             todo)
                    if cli.STOP_REQUESTED.is_set():  # Ctrl-C: stop after this trial
                        raise KeyboardInterrupt
            else:
                self.train_fast(needed, chosen, sets, test, fit, fine_tune, todo,
                                feature_cache, cache_features)
        except KeyboardInterrupt:
            self.interrupted = True
        if cli.STOP_REQUESTED.is_set():
            self.interrupted = True

    def classic_trials(self, kinds: Mapping[str, str], models: Sequence[keras.Model],
                       train_sets: Mapping[int, Examples], test: Examples,
                       feature_cache: str | None = None) -> None:
        """Classic classifiers on the frozen features of `models` (one per seed), recorded
        as options (`kinds`: option name -> "logreg" or "linear_svm")."""
        self.options += [name for name in kinds if name not in self.options]
        if not self.started:
            self.start()
        for name, kind in kinds.items():
            todo = self.log.missing([(name, seed) for seed in self.seeds])
            if self.dispatched or self.interrupted or not todo:
                continue
            chosen = [models[self.seeds.index(seed)] for _, seed in todo]
            try:
                records = trials.classic_and_test(kind, chosen,
                                                  [train_sets[seed] for _, seed in todo], test,
                                                  [seed for _, seed in todo], feature_cache)
            except KeyboardInterrupt:  # Ctrl-C while the features are computed
                self.interrupted = True
                return
            for (option, seed), record in zip(todo, records):
                self.record(option, seed, record, todo)

    def start(self) -> None:
        """Opens the trials file; with --jobs N, runs the whole script in N processes."""
        self.started = True
        self.log.start()
        if self.config.jobs > 1:
            # Pretrained models are saved by now: the processes reuse them, never retrain.
            argv = cli.config_argv(self.config, jobs=1, resume=True, retrain=False, shard=None)
            try:
                script = os.path.join(os.path.dirname(os.path.dirname(__file__)),
                                      self.script + ".py")  # the scripts sit at the top
                self.interrupted = trial_log.run_shards(script, argv, self.config.jobs,
                                                        self.log)
            except KeyboardInterrupt:
                self.interrupted = True
            self.dispatched = True

    def record(self, option: str, seed: int, record: dict, todo: Sequence[tuple[str, int]]) -> None:
        """Writes one finished trial to the trials file, if this run had it to do."""
        if (option, seed) in todo:
            self.log.append(option, seed, **plain_numbers(record))

    def fine_tune_plain(self, option: str, seed: int, model: keras.Model,
                        train_set: Examples, test: Examples, fine_tune: FineTune,
                        todo: list[tuple[str, int]]) -> None:
        """--plain's second stage of one trial: `one_trial` on the model's fine-tuning copy."""
        first = self.log.records.get((option, seed), {})
        second = self.one_trial(fine_tuning_copy(model, fine_tune), train_set, test,
                                fine_tune.fit, seed)
        self.record(option + FINE_TUNED, seed, joined(first, second), todo)

    def train_fast(self, needed: list[tuple[str, int]], models: list[keras.Model],
                   sets: list[Examples], test: Examples, fit: FitSettings,
                   fine_tune: FineTune | None, todo: list[tuple[str, int]],
                   feature_cache: str | None, cache_features: bool) -> None:
        """The engine: every needed trial at once, then (--fine-tune) every second stage."""
        seeds = [seed for _, seed in needed]
        label = ", ".join(dict.fromkeys(option for option, _ in needed))
        if cache_features:
            firsts = trials.train_and_test(models, sets, test, seeds, fit, self.validate,
                                           label, feature_cache)
        else:
            firsts = trials.train_and_score(models, sets, test, seeds, fit, self.validate,
                                            label)
        for (option, seed), first in zip(needed, firsts):
            self.record(option, seed, first, todo)
        if fine_tune:
            seconds = trials.fine_tune_and_test(models, sets, test, seeds, fine_tune,
                                                self.validate)
            for (option, seed), first, second in zip(needed, firsts, seconds):
                self.record(option + FINE_TUNED, seed, joined(first, second), todo)

    def finished(self) -> dict[str, dict[int, float]]:
        """Each option's finished accuracies by seed (other processes' trials too)."""
        self.log.reload()
        return self.log.accuracies(self.options, self.all_seeds)

    def finish(self, title: str, lecture: Mapping[str, tuple[float, float]],
               extra: Mapping[str, Any] | None = None, notes: Sequence[str] = (),
               trials_plot: bool = True, num_classes: int | None = None,
               compare: Sequence[tuple[str, str]] | None = None,
               plot: Callable[[str, dict[str, dict[int, float]]], None] | None = None) -> dict:
        """Prints the summary, writes the JSON and the plots; returns the JSON payload.

        Args:
            title: what the accuracies are of ("test accuracy on digits 1,3,5,7,9").
            lecture: option -> the lecture's (min, max) range, for the options it has.
            extra: more JSON fields of the script's own (the pretrained base, ...).
            notes: lines printed under the summary.
            trials_plot: draw each trial's accuracy per option (`<script>.png`); the
                histories, if any, then go to `<script>_curves.png`, else to `<script>.png`.
            num_classes: the task's classes, to flag a run that stayed at chance.
            compare: (baseline, treatment) pairs to compare; default: every option
                against the first.
            plot: draws the run's own figure `plot(path, accuracies by option and seed)`
                at `<script>.png`, instead of each trial's accuracy per option.

        Raises:
            KeyboardInterrupt: after writing, when Ctrl-C stopped the run.
        """
        self.phase_done("trials")
        if self.config.shard:
            trial_log.end_of_shard(self.log, self.config, self.interrupted)
            return {}
        by_option = self.finished()
        if self.interrupted:
            print("\ninterrupted (Ctrl-C): what follows covers the finished trials only")
        for k, seed in enumerate(self.all_seeds):
            cells = [f"{name} {100 * accuracies[seed]:5.1f}%" if seed in accuracies
                     else f"{name}   —  " for name, accuracies in by_option.items()]
            print(f"  trial {k:2d} (seed {seed}): " + "   ".join(cells))
        results = reporting.trial_results(by_option, None if compare else self.options[0],
                                          len(self.options) * len(self.all_seeds), lecture,
                                          num_classes)
        if compare:
            results["comparisons"] = [stats.compare(baseline, treatment, by_option[baseline],
                                                    by_option[treatment])
                                      for baseline, treatment in compare
                                      if by_option.get(baseline) and by_option.get(treatment)]
        histories = {option: [self.log.records[(option, seed)]["history"]
                              for seed in self.all_seeds if (option, seed) in self.log.records]
                     for option in self.options
                     if any("history" in self.log.records.get((option, seed), {})
                            for seed in self.all_seeds)}
        plots = self.draw(results, histories, lecture, title, trials_plot and not plot)
        if plot and results["summary"]:
            plots.insert(0, os.path.join(self.config.out, f"{self.script}.png"))
            plot(plots[0], by_option)
        self.timings["total"] = round(time.perf_counter() - self.started_at, 2)
        payload = {"script": self.script, "config": dataclasses.asdict(self.config),
                   "path": "plain" if self.config.plain else "engine",
                   "dataset": self.dataset.describe(), "device": configure_device(),
                   "environment": reporting.environment(), "seeds": self.all_seeds,
                   "training": self.training_line(), **(extra or {}), **results,
                   "histories": histories, "lecture_ranges": dict(lecture),
                   "trials_file": self.log.path, "plots": [os.path.basename(p) for p in plots],
                   "timings_s": self.timings}
        json_path = os.path.join(self.config.out, f"{self.script}.json")
        reporting.write_json(json_path, payload)
        print(f"\nsummary: {title}\n{self.training_line()}\n"
              + reporting.summary_table(results["summary"], lecture) + "\n"
              + reporting.comparison_lines(results["comparisons"]))
        for option, runs in histories.items():
            best = np.mean([max(run["val_accuracy"]) for run in runs])
            final_train = np.mean([run["accuracy"][-1] for run in runs])
            print(f"  {option}: training accuracy {100 * final_train:.1f}% at the end; test "
                  f"accuracy at its best epoch {100 * best:.1f}%")
        for note in notes:
            print(note)
        print(f"wall time {self.timings['total']:.0f} s; wrote {json_path}"
              + "".join(f" and {path}" for path in plots))
        if self.interrupted:
            raise KeyboardInterrupt
        return payload

    def draw(self, results: dict, histories: dict, lecture: Mapping[str, tuple[float, float]],
             title: str, trials_plot: bool) -> list[str]:
        """The run's plots: each trial's accuracy per option, and the histories."""
        plots = []
        if trials_plot and results["summary"]:
            plots.append(os.path.join(self.config.out, f"{self.script}.png"))
            reporting.plot_trials(plots[-1], results["accuracies"], lecture,
                                  f"{title}, {len(self.all_seeds)} trials "
                                  f"({self.dataset.name})")
        if histories:
            name = f"{self.script}_curves.png" if trials_plot else f"{self.script}.png"
            plots.append(os.path.join(self.config.out, name))
            reporting.plot_histories(plots[-1], histories, f"{title} ({self.dataset.name})")
        return plots

    def training_line(self) -> str:
        """The summary's line on how the target task trained (the options in force)."""
        if self.fit is None:
            return "training: classic classifiers (scikit-learn) on the frozen features"
        return training_line(self.fit, self.fine_tune, getattr(self.config, "augment", False),
                             getattr(self.config, "noise", 0.0), self.config.plain)


def training_line(fit: FitSettings, fine_tune: FineTune | None, augment: bool, noise: float,
                  plain: bool) -> str:
    """The training options of a run, for the summary: optimizer, learning rate, the
    fine-tuning stage, augmentation, and which path trained."""
    parts = [f"{fit.optimizer}, learning rate {fit.rate:g}"
             + (" (the lecture's)" if fit.optimizer == "adam" and fit.learning_rate is None
                else "")]
    if fine_tune:
        parts.append(f"then the pretrained part's {fine_tune.which} fine-tuned for "
                     f"{fine_tune.fit.epochs} epochs at learning rate {fine_tune.fit.rate:g}")
    parts.append(("augmented training images" + (f" with Gaussian noise (std {noise:g})"
                                                  if noise else ""))
                 if augment else "no augmentation")
    parts.append("plain Keras, one trial after another (--plain)" if plain
                 else "trials side by side (the fast engine)")
    return "training: " + "; ".join(parts)


def plain_numbers(value: Any) -> Any:
    """`value` with NumPy numbers made Python numbers, for JSON (Keras histories hold
    NumPy floats on some backends)."""
    if isinstance(value, dict):
        return {key: plain_numbers(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_numbers(item) for item in value]
    return value.item() if isinstance(value, np.generic) else value


def joined(first: dict, second: dict) -> dict:
    """A fine-tuned trial's record: its own accuracy, and both stages' histories back to
    back with the epoch where the second starts."""
    if "history" not in first or "history" not in second:
        return second
    history = {key: first["history"][key] + second["history"][key] for key in first["history"]}
    history["fine_tune_start"] = len(first["history"]["accuracy"])
    return {**second, "history": history}
