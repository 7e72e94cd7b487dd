"""Typed configs on the command line, and one-line errors for bad input.

Each script declares a frozen dataclass whose fields carry the lecture's defaults and
a help text (`option(default, help, ...)`). `parse_config` builds argparse from it,
applies the `--quick` preset under the flags the user gave, and checks the values.
`run_script` runs `main(config)` and turns bad input into one line on stderr.
"""

import argparse
import dataclasses
import functools
import math
import signal
import sys
import threading
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from common.settings import FineTune, FitSettings, parse_fine_tune

Config = TypeVar("Config")


# Set by Ctrl-C while `run_script` runs; training stops at the end of the epoch in
# progress (see `common.training.EpochProgress`). A KeyboardInterrupt raised at a
# random point inside TensorFlow's C++ code can come out as a RuntimeError instead.
STOP_REQUESTED = threading.Event()


class UserInputError(ValueError):
    """Bad input from the user: a flag, a file or its contents. Says what to fix."""


def option(default: Any, help: str, *, group: str = "experiment",
           choices: Sequence[str] | None = None, minimum: float | None = None) -> Any:
    """A config field with its command-line help.

    Args:
        default: the lecture's value.
        help: one sentence for `--help`.
        group: argparse group the flag is listed under.
        choices: allowed values for a string field.
        minimum: smallest allowed value for a number field.

    Returns:
        A `dataclasses.field` carrying that metadata.
    """
    metadata = {"help": help, "group": group, "choices": choices, "minimum": minimum}
    return dataclasses.field(default=default, metadata=metadata)


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr (exit status 2), not usage + error."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _value_type(field: dataclasses.Field) -> Callable[[str], Any]:
    """The type argparse converts a field's value to (int, float or str)."""
    kinds = [kind for kind in typing.get_args(field.type) or (field.type,) if kind is not type(None)]
    return kinds[0] if kinds and kinds[0] in (int, float) else str


def build_parser(config_type: type, description: str) -> argparse.ArgumentParser:
    """An argparse parser with one flag per field of `config_type`, in its groups.

    Defaults are suppressed so that the parsed namespace holds only the flags the
    user typed; `parse_config` layers them over the defaults and the quick preset.
    """
    parser = _OneLineParser(description=description, argument_default=argparse.SUPPRESS,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    groups: dict[str, argparse._ArgumentGroup] = {}
    for field in dataclasses.fields(config_type):
        meta = field.metadata
        group = groups.setdefault(meta["group"], parser.add_argument_group(meta["group"]))
        help_text = f"{meta['help']} (default: {field.default})"
        if field.type is bool:
            group.add_argument(_flag(field.name), action="store_true", help=meta["help"])
        else:
            group.add_argument(_flag(field.name), type=_value_type(field), choices=meta["choices"],
                               metavar=None if meta["choices"] else field.name.upper(),
                               help=help_text)
    return parser


def check_config(config: Any) -> None:
    """Raises UserInputError naming the flag whose value is below its minimum, or a
    flag that needs another one."""
    for field in dataclasses.fields(config):
        minimum = field.metadata.get("minimum")
        value = getattr(config, field.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise UserInputError(f"{_flag(field.name)} {value}: must be a finite number")
        if minimum is not None and value is not None and value < minimum:
            raise UserInputError(f"{_flag(field.name)} {value}: must be at least {minimum}")
    heads = {name.strip() for field in ("heads", "variants", "head")
             for name in str(getattr(config, field, "")).split(",")}
    classic = sorted(heads & {"logreg", "linear_svm"})  # common.classic.CLASSIC_HEADS
    if classic and getattr(config, "augment", False):
        raise UserInputError(f"--augment with the {', '.join(classic)} head: a classic "
                             "classifier learns from the frozen layers' features of the real "
                             "images, which augmentation would change every epoch; drop one")
    if classic and not heads - {"", *classic} and getattr(config, "fine_tune", "0") != "0":
        raise UserInputError(f"--fine-tune {config.fine_tune} with only the {', '.join(classic)} "
                             "head: a classic classifier has no second stage; add a dense "
                             "head, or drop --fine-tune")
    if getattr(config, "noise", 0) and not getattr(config, "augment", False):
        raise UserInputError(f"--noise {config.noise}: noise is one of the augmentations; "
                             "add --augment")


def parse_config(config_type: type[Config], argv: Sequence[str] | None, description: str,
                 quick: Mapping[str, Any]) -> Config:
    """Reads the command line into a checked config.

    Args:
        config_type: the script's frozen dataclass; it must have a bool field `quick`.
        argv: arguments (None: `sys.argv[1:]`).
        description: the script's `--help` text.
        quick: field values `--quick` sets unless the user gives that flag too.

    Returns:
        The config: the dataclass defaults, then the quick preset if asked for, then
        the flags given on the command line.

    Raises:
        SystemExit(2): for a malformed or out-of-range flag, after one line on stderr.
    """
    parser = build_parser(config_type, description)
    given = vars(parser.parse_args(argv))
    preset = dict(quick) if given.get("quick") else {}
    try:
        config = config_type(**{**preset, **given})
        check_config(config)
    except UserInputError as error:
        parser.error(str(error))
    return config


@dataclasses.dataclass(frozen=True)
class RunFlags:
    """Flags every script shares: how a run is carried out, never what it computes.

    (Flags, not options: an experiment's *options* are the arms it compares.)"""

    resume: bool = option(False, "continue the run whose finished trials are in "
                          "<out>/<script>.trials.jsonl (same config; more --trials adds trials)",
                          group="running")
    jobs: int = option(1, "train the trials in this many processes at once (the same "
                       "results as one process)", group="running", minimum=1)
    shard: str = option("", "K/N: train only every N-th trial, starting with trial K-1 (trials "
                        "count from 0), and append them to the trials file (to spread one "
                        "run over machines; --jobs uses it)", group="running")
    plain: bool = option(False, "train the trials one after the other through the script's "
                         "plain Keras code (compile, fit, evaluate): slow, the reference "
                         "that the fast default engine is tested against", group="running")


@dataclasses.dataclass(frozen=True)
class TrainingFlags:
    """The training settings the lecture lists as not explored (its "options", set by
    flags here); the defaults are the lecture's."""

    optimizer: str = option("adam", "optimizer of the training on the target task",
                            group="options beyond the lecture",
                            choices=("adam", "rmsprop", "sgd"))
    lr: float | None = option(None, "learning rate (default: the optimizer's own: 0.001 for "
                              "adam and rmsprop, 0.01 for sgd)",
                              group="options beyond the lecture", minimum=0)
    fine_tune: str = option("0", "after the new layers are trained, unfreeze the pretrained "
                            "part's last N layers with weights (or those named PREFIX..., "
                            "e.g. block5 of VGG16) and train on; 0: no second stage",
                            group="options beyond the lecture")
    fine_tune_lr: float | None = option(None, "learning rate of the fine-tuning stage "
                                        "(default: a tenth of --lr)",
                                        group="options beyond the lecture", minimum=0)
    fine_tune_epochs: int = option(10, "epochs of the fine-tuning stage",
                                   group="options beyond the lecture", minimum=1)
    augment: bool = option(False, "random translation, rotation and zoom of the training "
                           "images (flips too for photographs), in training only",
                           group="options beyond the lecture")
    noise: float = option(0.0, "with --augment, also add Gaussian noise of this standard "
                          "deviation to every training pixel (on the 0..1 scale of a pixel)",
                          group="options beyond the lecture", minimum=0)

    def fit_settings(self, epochs: int, batch_size: int) -> FitSettings:
        """The first stage's training: --optimizer and --lr with the script's epochs."""
        return FitSettings(epochs, batch_size, self.optimizer, self.lr)

    @functools.cached_property
    def fine_tuning(self) -> FineTune | None:
        """--fine-tune, parsed once (the first time it is asked for): None when there is
        no second stage. It trains with the script's --batch-size, at --fine-tune-lr, by
        default a tenth of the first stage's learning rate."""
        count, prefix = parse_fine_tune(self.fine_tune)
        if count is None and prefix is None:
            return None
        first = self.fit_settings(self.fine_tune_epochs, self.batch_size)
        rate = self.fine_tune_lr if self.fine_tune_lr is not None else first.rate / 10
        return FineTune(count, prefix, FitSettings(self.fine_tune_epochs, self.batch_size,
                                                   self.optimizer, rate))



def config_argv(config: Any, **overrides: Any) -> list[str]:
    """The command-line flags that give `config`, with `overrides` (None: leave out)."""
    argv = []
    for field in dataclasses.fields(config):
        value = overrides.get(field.name, getattr(config, field.name))
        if field.type is bool and value:
            argv.append(_flag(field.name))
        elif field.type is not bool and value is not None:
            argv += [_flag(field.name), str(value)]
    return argv


def choose_names(spec: str, known: Iterable[str], flag: str,
                 every: Iterable[str] | None = None) -> list[str]:
    """A comma-separated list of names ("all": every one of `every`, by default every
    known one), in the known order, each once.

    Raises:
        UserInputError: an unknown name, or an empty list.
    """
    known = list(known)
    names = list(every or known) if spec == "all" else [name.strip() for name in spec.split(",")]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise UserInputError(f"{flag} {spec}: unknown {', '.join(unknown) or 'or empty name'}; "
                             f"choose from {', '.join(known)} or all")
    return [name for name in known if name in names]  # in the known order: the first is
    # the baseline of the comparisons, whatever order they were typed in


def _request_stop(signum: int, frame: Any) -> None:
    """The first Ctrl-C asks training to stop at the epoch's end; a second one stops now."""
    if STOP_REQUESTED.is_set():
        raise KeyboardInterrupt
    STOP_REQUESTED.set()
    print("\nCtrl-C: stopping at the end of this epoch (with --plain: of this trial), keeping "
          "every finished trial (Ctrl-C again to stop at once)", file=sys.stderr, flush=True)


def run_script(main: Callable[[Config], Any], config: Config, prog: str,
               stop_at_epoch_end: bool = False) -> int:
    """Runs `main(config)`; bad input becomes one line and exit status 2.

    Ctrl-C ends with exit status 130 and one line; every file the scripts write goes
    to a temporary name first, so none is left half-written. With `stop_at_epoch_end`
    (the training scripts), the first Ctrl-C only sets `STOP_REQUESTED`, and training
    stops at the end of the epoch in progress; a second one stops at once.
    """
    previous_handler = signal.getsignal(signal.SIGINT)
    if stop_at_epoch_end:
        signal.signal(signal.SIGINT, _request_stop)
    try:
        main(config)
    # FileExistsError, NotADirectoryError: a file where an output folder should go.
    except (UserInputError, FileNotFoundError, FileExistsError, NotADirectoryError) as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted; every finished trial is kept (rerun with --resume to "
              "finish the run), and no file was left half-written", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, previous_handler)
        STOP_REQUESTED.clear()
    return 0
