"""The smallest complete experiment: does Dropout help a CNN that learns from 100 images?

The template for a new experiment (docs/development.md, "Adding an experiment"): the
lecture's small CNN, trained from scratch on 100 images of the odd digits 1,3,5,7,9,
with its Dropout(0.5) layer and without it, over several trials, compared. Everything
a lecture script does is here in small: a typed config, the plain Keras code, the
visible choice between it and the fast engine, the trials file, the summary.

    python example_experiment.py --quick          # a complete tiny run (seconds)
    python example_experiment.py --data mnist.npz # 10 trials on real MNIST
"""

import functools
import sys
from dataclasses import dataclass

from common import startup

startup.prepare_tensorflow()  # before keras, as keras-io sets KERAS_BACKEND
import keras
from keras import layers

from common import engine
from common.lesson import data, networks, orders, plain
from common.lesson.settings import FitSettings
from common.runs import cli, summary
from common.runs.device import configure_device
from common.runs.trial_log import TrialLog

OPTIONS = ("dropout", "no_dropout")  # the compared options; the first is the baseline


@dataclass(frozen=True)
class Config(cli.RunFlags, cli.TrainingFlags):
    """The experiment's settings; every field is a command-line flag."""

    trials: int = cli.shared("trials", 10)
    options: str = cli.shared("options", "all", names=OPTIONS)
    seed: int = cli.shared("seed", 0)
    data: str | None = cli.shared("data", None)
    dataset: str = cli.shared("dataset", "auto", choices=("auto", "mnist", "digits"))
    small_size: int = cli.shared("small_size", 100)
    epochs: int = cli.shared("epochs", 100)
    batch_size: int = cli.shared("batch_size", 4)
    out: str = cli.shared("out", "results")
    quick: bool = cli.shared("quick", False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.fine_tune != "0":
            raise cli.UserInputError(f"--fine-tune {self.fine_tune}: these CNNs train from "
                                     "scratch, with no pretrained part to fine-tune; drop it")
        if self.augment:
            raise cli.UserInputError("--augment: this experiment compares Dropout on the real "
                                     "images only; drop it")


QUICK = {"trials": 2, "epochs": 3}


def small_cnn(seed: int, with_dropout: bool) -> keras.Sequential:
    """The lecture's CNN for the 5 odd digits, seeded by the trial, with or without Dropout."""
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(32, 3, activation="relu", **networks.seeded(seed, "conv1")),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu", **networks.seeded(seed, "conv2")),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        *([networks.dropout(0.5, seed, "dropout")] if with_dropout else []),
        layers.Dense(5, activation="softmax", **networks.seeded(seed, "output")),
    ], name=f"cnn_{'dropout' if with_dropout else 'no_dropout'}_seed{seed}")


def one_trial(model: keras.Model, train: tuple, test: tuple, fit: FitSettings,
              seed: int) -> dict:
    """One trial in plain Keras: compile, fit (in the trial's seeded order), evaluate."""
    model.compile(optimizer=fit.make_optimizer(), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(**orders.in_seeded_order(train, fit, seed), epochs=fit.epochs, verbose=0)
    loss, accuracy = model.evaluate(*test, verbose=0)
    return {"accuracy": accuracy, "history": history.history}  # per epoch: --log-dir


def main(config: Config) -> dict:
    options = cli.choose_names(config.options, OPTIONS, "--options")
    print(f"example_experiment: {', '.join(options)}, device "
          f"{configure_device(config.precision)}")
    keras.utils.set_random_seed(config.seed)
    clock = summary.Stopwatch()

    # 1. Data: the odd digits of MNIST (offline: scikit-learn's digits), 100 per trial
    dataset = data.load_mnist(config.data, config.dataset)
    print(dataset.announcement())
    pool = data.task_images(dataset.x_train, dataset.y_train, data.ODD_DIGITS)
    test = data.task_images(dataset.x_test, dataset.y_test, data.ODD_DIGITS)
    log = TrialLog("example_experiment", config, dataset)  # each trial on disk as it ends
    small_sets = data.small_sets(pool, config.small_size, log.all_seeds, data.ODD_DIGIT_NAMES)

    # 2. Train each option's trials: the plain code above, or the engine (the same results)
    train_trials = (functools.partial(plain.trial_by_trial, one_trial) if config.plain
                    else engine.train_trials)
    with log.until_interrupted():  # Ctrl-C: on to the summary of the finished trials
        for option in options:
            models = {seed: small_cnn(seed, option == "dropout") for seed in log.todo(option)}
            log.record(option, train_trials(models, small_sets, test, config.fit, label=option))

    # 3. Compare: the table, the JSON and the plot
    results = summary.compare(log, {}, num_classes=5)
    title = f"test accuracy on digits 1,3,5,7,9 from {config.small_size} images"
    return summary.write_summary(log, results, title, config.training_line(),
                                 summary.plot_trials_and_curves(log, results, title), clock)


if __name__ == "__main__":
    sys.exit(cli.run_script(main, cli.parse_config(Config, None, __doc__, QUICK),
                            "example_experiment.py"))
