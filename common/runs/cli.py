"""Typed configs on the command line, one vocabulary for every script, one-line errors.

Each script declares a frozen dataclass whose fields carry the lecture's defaults. A
flag that several scripts have is declared with `shared(name, default)`, which takes
its help text from `VOCABULARY`, so that it means the same thing everywhere; a script's
own flag with `option(default, help, ...)`. `parse_config` builds argparse from the
dataclass (the lecture's settings listed first), applies the `--quick` preset under the
flags the user gave, and checks the values: generic checks here (minimums, finite
numbers), the script's own in its config's `__post_init__`. `run_script` runs
`main(config)`, or first the `--jobs` launcher, and turns bad input into one line.
"""

import argparse
import dataclasses
import functools
import math
import os
import signal
import sys
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from common.errors import STOP_REQUESTED, UserInputError, flag
from common.lesson.settings import PRECISIONS, FineTune, FitSettings, parse_fine_tune
from common.runs import launcher, slurm, tables, trial_log

Config = TypeVar("Config")

# The order of --help's groups: the lecture's settings first, how a run is carried out last.
GROUPS = ("input", "experiment", "data", "model", "training", "beyond the lecture", "running",
          "output")


def option(default: Any, help: str, *, group: str = "experiment",
           choices: Sequence[str] | None = None, names: Sequence[str] | None = None,
           minimum: float | None = None, operational: bool = False) -> Any:
    """A config field with its command-line help.

    Args:
        default: the lecture's value.
        help: one sentence for `--help`.
        group: the argparse group the flag is listed under (one of `GROUPS`).
        choices: allowed values for a string field.
        names: the names a comma-separated list may hold (shown in --help).
        minimum: smallest allowed value for a number field.
        operational: the flag changes how a run is carried out, not its results
            (--out, --jobs, ...): a resumed run may differ in it.

    Returns:
        A `dataclasses.field` carrying that metadata.
    """
    assert group in GROUPS, group
    metadata = {"help": help, "group": group, "choices": choices, "names": names,
                "minimum": minimum, "operational": operational}
    return dataclasses.field(default=default, metadata=metadata)


# The flags several scripts share, each with its one meaning: name -> option() arguments.
VOCABULARY: dict[str, dict[str, Any]] = {
    "trials": {"help": "trials of each compared option; trial k uses seed --seed + k",
               "minimum": 1, "operational": True},  # trials are keyed by seed: --resume adds
    "options": {"help": "comma-separated compared options to run, in the listed order, "
                        "the first being the baseline (all: every one)"},
    "seed": {"help": "base seed: trial k uses seed + k, and every other random draw of the "
                     "run (pretraining, subsets, random weights) derives from it",
             "minimum": 0},
    "data": {"help": "a local .npz of the data instead of Keras's download: x_train, y_train, "
                     "x_test, y_test (Keras's layout; for CIFAR-10 also the lecture's "
                     "training_inputs, training_labels, test_inputs, test_labels)",
             "group": "data"},
    "dataset": {"help": "which data: mnist (or fail), cifar10, digits (scikit-learn's bundled "
                        "8x8 digits: offline, easy), or auto (the script's own, and the "
                        "digits when MNIST cannot be had)", "group": "data"},
    "small_size": {"help": "target training images per trial, the same number from each "
                           "odd digit", "group": "data", "minimum": 5},
    "test_size": {"help": "use at most this many test images of each task (0: all)",
                  "group": "data", "minimum": 0},
    "base": {"help": "the pretrained network, each with its own preprocessing (the "
                     "lecture's: vgg16)", "group": "model"},
    "base_file": {"help": "a saved pretrained model (.keras, or the lecture's .h5) to use "
                          "as it is", "group": "model"},
    "weights": {"help": "the --base's weights: imagenet (Keras's cache, else a download), a "
                        "weights file, or none (random: a control, not transfer)",
                "group": "model"},
    "cut": {"help": "end the --base at this layer instead of its top, e.g. block3_pool or "
                    "block4_pool of VGG16 (earlier, more generic features); the other bases' "
                    "cuts are in common/lesson/bases.py", "group": "model"},
    "feature_cache": {"help": "keep the frozen base's features in this folder, so that a "
                              "second run skips computing them", "group": "model",
                      "operational": True},
    "models_dir": {"help": "folder of saved pretrained models, reused when trained with the "
                           "same settings", "group": "model", "operational": True},
    "retrain": {"help": "pretrain anew even if a matching saved model exists",
                "group": "model", "operational": True},
    "epochs": {"help": "epochs of training on the target task", "group": "training",
               "minimum": 1},
    "batch_size": {"help": "batch size of training on the target task", "group": "training",
                   "minimum": 1},
    "out": {"help": "folder the script writes its outputs to (created if missing)",
            "group": "output", "operational": True},
    "lr": {"help": "learning rate (default: the optimizer's own: 0.001 for adam and rmsprop, "
                   "0.01 for sgd)", "group": "beyond the lecture",
           "minimum": 1e-7},  # 0 would train nothing
    "quick": {"help": "a complete tiny run, in under a minute", "group": "output",
              "operational": True},
}


def shared(name: str, default: Any, **overrides: Any) -> Any:
    """A config field for a flag of `VOCABULARY`: its one help text, the script's default
    (and, where the script needs them, its own `choices` or `names`)."""
    return option(default, **{**VOCABULARY[name], **overrides})


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr (exit status 2), not usage + error."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _value_type(field: dataclasses.Field) -> Callable[[str], Any]:
    """The type argparse converts a field's value to (int, float or str)."""
    kinds = [kind for kind in typing.get_args(field.type) or (field.type,) if kind is not type(None)]
    return kinds[0] if kinds and kinds[0] in (int, float) else str


def quick_text(quick: Mapping[str, Any]) -> str:
    """What the --quick preset sets, for its help: "--trials 3, --epochs 5"."""
    return ", ".join(f"{flag(name)} {value}" for name, value in quick.items()) or "no other flag"


def build_parser(config_type: type, description: str,
                 quick: Mapping[str, Any] | None = None) -> argparse.ArgumentParser:
    """An argparse parser with one flag per field of `config_type`, in `GROUPS` order.

    Defaults are suppressed so that the parsed namespace holds only the flags the
    user typed; `parse_config` layers them over the defaults and the quick preset.
    """
    parser = _OneLineParser(description=description, argument_default=argparse.SUPPRESS,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    fields = sorted(dataclasses.fields(config_type),
                    key=lambda field: GROUPS.index(field.metadata["group"]))
    groups: dict[str, argparse._ArgumentGroup] = {}
    for field in fields:
        meta = field.metadata
        group = groups.setdefault(meta["group"], parser.add_argument_group(meta["group"]))
        if field.type is bool:
            extra = f" (sets {quick_text(quick or {})})" if field.name == "quick" else ""
            group.add_argument(flag(field.name), action="store_true", help=meta["help"] + extra)
        else:
            metavar = ("{" + ",".join(meta["names"]) + "}" if meta["names"]
                       else None if meta["choices"] else field.name.upper())
            group.add_argument(flag(field.name), type=_value_type(field), choices=meta["choices"],
                               metavar=metavar, help=f"{meta['help']} (default: {field.default})")
    return parser


def check_values(config: Any) -> None:
    """Raises UserInputError naming a flag whose number is below its minimum or not finite
    (the checks every script shares; its own are in its config's `__post_init__`)."""
    for field in dataclasses.fields(config):
        minimum = field.metadata.get("minimum")
        value = getattr(config, field.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise UserInputError(f"{flag(field.name)} {value}: must be a finite number")
        if minimum is not None and value is not None and value < minimum:
            raise UserInputError(f"{flag(field.name)} {value}: must be at least {minimum}")


def parse_config(config_type: type[Config], argv: Sequence[str] | None, description: str,
                 quick: Mapping[str, Any]) -> Config:
    """Reads the command line into a checked config.

    Args:
        config_type: the script's frozen dataclass (with a bool field `quick` where
            the script has `--quick`).
        argv: arguments (None: `sys.argv[1:]`).
        description: the script's `--help` text.
        quick: field values `--quick` sets unless the user gives that flag too.

    Returns:
        The config: the dataclass defaults, then the quick preset if asked for, then
        the flags given on the command line.

    Raises:
        SystemExit(2): for a malformed, out-of-range or conflicting flag, after one
            line on stderr.
    """
    parser = build_parser(config_type, description, quick)
    given = vars(parser.parse_args(argv))
    preset = dict(quick) if given.get("quick") else {}
    try:
        if given.get("shard") == slurm.AUTO:  # this SLURM array task's shard, "K/N"
            given["shard"] = slurm.array_shard()
        config = config_type(**{**preset, **given})  # (its __post_init__ checks it)
        check_values(config)
    except UserInputError as error:
        parser.error(str(error))
    return config


@dataclasses.dataclass(frozen=True)
class RunFlags:
    """Flags every experiment script shares: how a run is carried out, never what it
    computes. (Flags, not options: an experiment's *options* are the arms it compares.)"""

    resume: bool = option(False, "continue the run whose finished trials are in "
                          "<out>/<script>.trials.jsonl and its shards' files (same config; "
                          "more --trials adds trials)", group="running", operational=True)
    jobs: int = option(1, "train the trials in this many processes at once, each a --shard "
                       "of the same command, merged after (the same results as one process)",
                       group="running", minimum=1, operational=True)
    shard: str = option("", "K/N: train only every N-th trial, starting with trial K-1 (trials "
                        "count from 0), into <out>/<script>.shard-K-of-N.trials.jsonl; auto: "
                        "this SLURM array task's (python -m common.runs.slurm prints the "
                        "sbatch script); --resume without --shard merges the shards",
                        group="running", operational=True)
    log_dir: str | None = option(None, "also write Keras-style logs of every trial here: "
                                 "<option>/trial_<seed>.csv (CSVLogger's columns) and "
                                 "TensorBoard event files (tensorboard --logdir DIR)",
                                 group="output", operational=True)
    precision: str = option("float32", "what the models compute in: float32, or in 16 bits "
                            "with float32 weights (mixed_bfloat16, mixed_float16: faster on "
                            "hardware with 16-bit matrix math); auto: mixed_bfloat16 where "
                            "the CPU (AVX512_BF16, AMX) or GPU has bf16, else float32",
                            group="running", choices=PRECISIONS)
    plain: bool = option(False, "train through the script's plain Keras code (compile, fit, "
                         "evaluate), one trial after the other: slow, the reference that the "
                         "fast default engine is tested against", group="running",
                         operational=True)


@dataclasses.dataclass(frozen=True)
class TrainingFlags:
    """The training settings the lecture lists as not explored, set by flags here; the
    defaults are the lecture's. A script with these has `epochs` and `batch_size`."""

    optimizer: str = option("adam", "optimizer of the training on the target task",
                            group="beyond the lecture", choices=("adam", "rmsprop", "sgd"))
    lr: float | None = shared("lr", None)
    fine_tune: str = option("0", "after the new layers are trained, unfreeze the pretrained "
                            "part's last N layers with weights (or those named PREFIX..., "
                            "e.g. block5 of VGG16) and train on; 0: no second stage",
                            group="beyond the lecture")
    fine_tune_lr: float | None = option(None, "learning rate of the fine-tuning stage "
                                        "(default: a tenth of --lr)",
                                        group="beyond the lecture", minimum=1e-7)
    fine_tune_epochs: int = option(10, "epochs of the fine-tuning stage",
                                   group="beyond the lecture", minimum=1)
    augment: bool = option(False, "random translation, rotation and zoom of the training "
                           "images (flips too for photographs), in training only",
                           group="beyond the lecture")
    noise: float = option(0.0, "with --augment, also add Gaussian noise of this standard "
                          "deviation to every training pixel (on the 0..1 scale of a pixel)",
                          group="beyond the lecture", minimum=0)

    def __post_init__(self) -> None:
        if self.noise and not self.augment:
            raise UserInputError(f"--noise {self.noise}: noise is one of the augmentations; "
                                 "add --augment")

    def check_heads(self, classic: Sequence[str], dense: bool) -> None:
        """The checks of a run's heads against these flags: a classic head (`classic`, the
        scikit-learn ones chosen) learns from fixed features, so no --augment; and
        --fine-tune needs a dense head (`dense`) to fine-tune.

        Raises:
            UserInputError: naming the flags that do not go together.
        """
        if classic and self.augment:
            raise UserInputError(f"--augment with the {', '.join(classic)} head: a classic "
                                 "classifier learns from the frozen layers' features of the "
                                 "real images, which augmentation would change every epoch; "
                                 "drop one")
        if self.fine_tune != "0" and not dense:
            only = f"only the {', '.join(classic)} head" if classic else "no transfer head"
            raise UserInputError(f"--fine-tune {self.fine_tune} with {only}: a classic "
                                 "classifier has no second stage; add a dense head, or drop "
                                 "--fine-tune")

    @property
    def fit(self) -> FitSettings:
        """The training on the target task: --epochs of --batch-size, --optimizer, --lr."""
        return FitSettings(self.epochs, self.batch_size, self.optimizer, self.lr,
                           history=getattr(self, "log_dir", None) is not None)

    def training_line(self, keras_heads: bool = True) -> str:
        """How the target task trains, for the summary (`keras_heads` False: classic
        classifiers only, which `fit` does not train)."""
        return tables.training_line(self.fit if keras_heads else None, self.fine_tuning,
                                    self.augment, self.noise, getattr(self, "plain", False))

    @functools.cached_property
    def fine_tuning(self) -> FineTune | None:
        """--fine-tune, parsed once (the first time it is asked for): None when there is
        no second stage. It trains with the script's --batch-size, at --fine-tune-lr, by
        default a tenth of the first stage's learning rate."""
        count, prefix = parse_fine_tune(self.fine_tune)
        if count is None and prefix is None:
            return None
        rate = self.fine_tune_lr if self.fine_tune_lr is not None else self.fit.rate / 10
        return FineTune(count, prefix, FitSettings(self.fine_tune_epochs, self.batch_size,
                                                   self.optimizer, rate, self.fit.history))


def config_argv(config: Any, **overrides: Any) -> list[str]:
    """The command-line flags that give `config`, with `overrides` (None: leave out)."""
    argv = []
    for field in dataclasses.fields(config):
        value = overrides.get(field.name, getattr(config, field.name))
        if field.type is bool and value:
            argv.append(flag(field.name))
        elif field.type is not bool and value is not None:
            argv += [flag(field.name), str(value)]
    return argv


def choose_names(spec: str, known: Iterable[str], flag_name: str) -> list[str]:
    """A comma-separated list of names ("all": every known one), in the known order,
    each once.

    Raises:
        UserInputError: an unknown name, or an empty list.
    """
    known = list(known)
    names = known if spec == "all" else [name.strip() for name in spec.split(",")]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        what = ", ".join(unknown) or "or empty name"
        raise UserInputError(f"{flag_name} {spec}: unknown {what}; "
                             f"choose from {', '.join(known)} or all")
    return [name for name in known if name in names]  # in the known order: the first is
    # the baseline of the comparisons, whatever order they were typed in


def _request_stop(signum: int, frame: Any) -> None:
    """The first Ctrl-C or SIGTERM asks training to stop at the epoch's end (the plain
    path: at the trial's); a second one stops now."""
    if STOP_REQUESTED.is_set():
        raise KeyboardInterrupt
    STOP_REQUESTED.set()
    what = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
    print(f"\n{what}: stopping at the end of this epoch (with --plain: of this trial), "
          f"keeping every finished trial ({what} again to stop at once)", file=sys.stderr,
          flush=True)


def run_script(main: Callable[[Config], Any], config: Config, prog: str,
               stop_at_epoch_end: bool = True) -> int:
    """Runs `main(config)`; bad input becomes one line and exit status 2.

    With `--jobs N` (N > 1) it runs the launcher first (`common.runs.launcher`): the
    same command as N `--shard` processes. Then `main` runs once, with `--resume`, to
    merge their trials and summarize (after Ctrl-C too: the finished ones); nothing
    inside `main` starts a process.

    Ctrl-C ends with exit status 130 and one line; every file the scripts write goes
    to a temporary name first, so none is left half-written. With `stop_at_epoch_end`
    (the training scripts), the first Ctrl-C or SIGTERM (a cluster's time limit) only
    sets `STOP_REQUESTED`: training stops at the end of the epoch in progress and the
    script still prints the summary of the finished trials; a second one stops at once.
    """
    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    if stop_at_epoch_end:
        for number in handlers:
            signal.signal(number, _request_stop)
    try:
        if getattr(config, "jobs", 1) > 1:
            run_in_shards(main, config)
            # the summary of every shard's trials (after Ctrl-C: of the finished ones)
            main(merge_config(config))
        else:
            main(config)
    # FileExistsError, NotADirectoryError: a file where an output folder should go.
    except (UserInputError, FileNotFoundError, FileExistsError, NotADirectoryError) as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted; every finished trial is kept (rerun with --resume to "
              "finish the run), and no file was left half-written", file=sys.stderr)
        return launcher.INTERRUPTED
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
        STOP_REQUESTED.clear()
    return 0


def merge_config(config: Any) -> Any:
    """The config of the run after `--jobs N`'s shards: one process that trains nothing
    new (--resume) and summarizes every shard's trials; it reuses their pretrained model
    (no --retrain, in the scripts that have it)."""
    retrain = {"retrain": False} if hasattr(config, "retrain") else {}
    return dataclasses.replace(config, jobs=1, resume=True, **retrain)


def run_in_shards(main: Callable[[Any], Any], config: Any) -> bool:
    """`--jobs N`: the script of `main` as N shard processes of this config; returns True
    when they were interrupted (Ctrl-C or SIGTERM: `STOP_REQUESTED` is set then).

    Raises:
        UserInputError: --jobs with --shard.
    """
    trial_log.refuse_jobs_with_shard(config.jobs, config.shard)
    script = os.path.abspath(sys.modules[main.__module__].__file__)
    name = os.path.splitext(os.path.basename(script))[0]
    if not config.resume:
        trial_log.keep_earlier_run_aside(config.out, name)
    # With --retrain, every shard retrains too, one after the other (a lock keeps them
    # apart), so that none reuses a model saved before this run.
    argv = config_argv(config, jobs=None, shard=None)
    interrupted = launcher.run_shards(script, argv, config.jobs, config.out, name)
    if interrupted:
        STOP_REQUESTED.set()  # (a shard's own Ctrl-C): the merge below trains nothing new
    return interrupted
