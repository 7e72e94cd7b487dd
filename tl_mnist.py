"""Transfer learning between the two halves of MNIST (the lecture's first experiment).

A small CNN learns the even digits 0,2,4,6,8 from ~29,500 images. Its hidden layers,
copied and frozen, with a new output layer, then learn the odd digits 1,3,5,7,9 from
only 100 images. Compared with the same CNN trained from scratch on those 100
images, over 15 trials with different random small sets.

    python tl_mnist.py                         # the lecture's protocol (a few minutes)
    python tl_mnist.py --quick                 # a complete tiny run (under a minute)
    python tl_mnist.py --data mnist.npz        # MNIST from a local file (offline)
    python tl_mnist.py --plain --trials 2      # the plain Keras code, trial after trial

Measured on real MNIST (15 trials; 2-core Intel Xeon and AMD EPYC CPUs, the same figures
on both; docs/results.md): 91.9–94.8% without transfer and 94.9–96.9% with it (lecture:
84.0–87.3% and 91.0–92.6%). Without MNIST (offline, nothing cached) the script says so
and uses scikit-learn's bundled 8x8 digits, an easy set that leaves little room for a
gain. Results: results/tl_mnist.json and results/tl_mnist.png; each trial is kept in
results/tl_mnist.trials.jsonl the moment it finishes, so an interrupted run goes on
with --resume.
"""

import functools
import hashlib
import math
import os
import sys
from dataclasses import dataclass

from common import startup

startup.prepare_tensorflow()  # before keras, as keras-io sets KERAS_BACKEND
import keras
from keras import layers

from common import engine, files
from common.lesson import data, plain, saved_models, transfer
from common.lesson.classic import CLASSIC_HEADS
from common.lesson.networks import augmentation, dropout, seeded
from common.lesson.orders import in_seeded_order
from common.lesson.settings import FitSettings
from common.runs import cli, summary
from common.runs.device import configure_device
from common.runs.trial_log import TrialLog

EVEN_DIGITS, ODD_DIGITS = data.EVEN_DIGITS, data.ODD_DIGITS  # the big and the small task
MNIST_BIG_IMAGES = 29_492  # even digits in MNIST's training set
LECTURE = {"no transfer": (0.840, 0.873), "transfer": (0.910, 0.926)}
# The compared options (--options): the CNN from scratch, then the new layers put on
# the copied, frozen hidden layers; the first head is the lecture's. The classic ones
# are scikit-learn classifiers on the frozen layers' output.
HEADS = {"output": "a new Dense(5) softmax output layer (the lecture's)",
         "dense128": "a new Dense(128, relu) -> Dropout(0.5) -> Dense(5) softmax",
         "logreg": "logistic regression on the frozen layers' output (scikit-learn)",
         "linear_svm": "a linear SVM on the frozen layers' output (scikit-learn)"}
OPTIONS = ("no_transfer", *HEADS)
DENSE_HEADS = ("output", "dense128")  # the heads that Keras trains
TITLE = "test accuracy on digits 1,3,5,7,9"  # what the summary's accuracies are of
DIGITS_NOTE = ("*** digits: not MNIST. These small, clean digits leave little room for a gain; "
               "pass --data mnist.npz for the lecture's experiment.")


@dataclass(frozen=True)
class Config(cli.RunFlags, cli.TrainingFlags):
    """The lecture's protocol; every field is a command-line flag."""

    trials: int = cli.shared("trials", 15)
    options: str = cli.shared("options", "no_transfer,output", names=OPTIONS)
    seed: int = cli.shared("seed", 0)
    data: str | None = cli.shared("data", None)
    dataset: str = cli.shared("dataset", "auto", choices=("auto", "mnist", "digits"))
    small_size: int = cli.shared("small_size", 100)
    big_size: int = cli.option(0, "use at most this many big-set images (0: all)",
                               group="data", minimum=0)
    test_size: int = cli.shared("test_size", 0)
    base_file: str | None = cli.shared("base_file", None)
    models_dir: str = cli.shared("models_dir", "saved_models")
    retrain: bool = cli.shared("retrain", False)
    epochs: int = cli.shared("epochs", 100)
    batch_size: int = cli.shared("batch_size", 4)
    pretrain_epochs: int = cli.option(
        15, "epochs of pretraining on the big set (on the digits fallback: the same number "
        "of steps as this many epochs on MNIST)", group="training", minimum=1)
    pretrain_batch_size: int = cli.option(128, "batch size of pretraining", group="training",
                                          minimum=1)
    out: str = cli.shared("out", "results")
    quick: bool = cli.shared("quick", False)

    def __post_init__(self) -> None:
        super().__post_init__()
        chosen = cli.choose_names(self.options, OPTIONS, "--options")
        self.check_heads([name for name in chosen if name in CLASSIC_HEADS],
                         dense=bool(set(chosen) - {"no_transfer", *CLASSIC_HEADS}))


QUICK = {"trials": 3, "epochs": 5, "pretrain_epochs": 1, "big_size": 2000, "test_size": 500}


# --- The lecture's steps, in plain Keras ----------------------------------------------

def lecture_cnn(num_classes: int, seed: int = 0, augment: bool = False,
                noise: float = 0.0) -> keras.Sequential:
    """The lecture's network: 26,821 parameters for 5 classes.

    Each layer is named (so transfer code finds it by name) and seeded from the trial's
    seed (so trial k is the same network wherever it is built). `augment` puts random
    translation, rotation and zoom (and Gaussian noise of std `noise`) in front, active
    only in training (--augment, --noise).
    """
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        *([augmentation(seed, noise=noise)] if augment else []),
        layers.Conv2D(32, 3, activation="relu", **seeded(seed, "conv1")),
        layers.MaxPooling2D(2, name="pool1"),
        layers.Conv2D(64, 3, activation="relu", **seeded(seed, "conv2")),
        layers.MaxPooling2D(2, name="pool2"),
        layers.Flatten(name="flatten"),
        dropout(0.5, seed, "dropout"),
        layers.Dense(num_classes, activation="softmax", **seeded(seed, "output")),
    ], name=f"lecture_cnn_seed{seed}")


def pretrain(model: keras.Model, big: tuple, fit: FitSettings, seed: int) -> None:
    """The big task: compile, then fit on all even digits (the lecture: 15 epochs of 128)."""
    model.compile(optimizer=fit.make_optimizer(), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    # fit(x, y, batch_size=128, epochs=15), each epoch shuffled in an order drawn from
    # the seed (so that the fast engine can be checked against this code)
    model.fit(**in_seeded_order(big, fit, seed), epochs=fit.epochs, verbose=2)


def transfer_model(pretrained: keras.Model, num_classes: int, seed: int,
                   augment: bool = False, head: str = "output",
                   noise: float = 0.0) -> keras.Sequential:
    """The lecture's transfer model: the pretrained hidden layers, copied and frozen
    (trainable = False), and a new Dense output layer for the new task (--options
    dense128: a new hidden layer before it).

    The layers are copies with the pretrained weights, so training a trial's model never
    changes `pretrained` or another trial's model.
    """
    new_layers = [layers.Dense(num_classes, activation="softmax", **seeded(seed, "output"))]
    if head == "dense128":
        new_layers[:0] = [layers.Dense(128, activation="relu", **seeded(seed, "hidden")),
                          dropout(0.5, seed, "head_dropout")]
    hidden = [transfer.copy_layer(layer, seed) for layer in transfer.hidden_layers(pretrained)]
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        *([augmentation(seed, noise=noise)] if augment else []),
        *hidden,
        *new_layers,
    ], name=f"transfer_{head}_seed{seed}")
    for copy, original in zip(hidden, transfer.hidden_layers(pretrained)):
        copy.set_weights(original.get_weights())
        copy.trainable = False
    return model


def one_trial(model: keras.Model, small: tuple, test: tuple, fit: FitSettings,
              seed: int) -> dict:
    """One trial as the lecture runs it: compile, fit on the 100 images, evaluate.

    (Recompiling after changing `trainable` is what makes a freeze take effect.)
    """
    model.compile(optimizer=fit.make_optimizer(), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(**in_seeded_order(small, fit, seed), epochs=fit.epochs, verbose=0)
    loss, accuracy = model.evaluate(*test, verbose=0)
    return {"accuracy": accuracy, "history": history.history}  # per epoch: --log-dir


# --- The experiment -------------------------------------------------------------------

def option_name(head: str) -> str:
    """The compared option of a head: the lecture's "transfer", or "transfer (<head>)"."""
    return "transfer" if head == "output" else f"transfer ({head})"


def pretraining_settings(config: Config, dataset: data.Dataset, images: int) -> FitSettings:
    """The lecture's Adam, --pretrain-epochs of --pretrain-batch-size; on the small
    digits fallback as many steps as those epochs take on MNIST (15 epochs of ~620
    digits would teach the base too little to transfer)."""
    epochs = config.pretrain_epochs
    if dataset.name == "digits":
        mnist_steps = epochs * math.ceil(MNIST_BIG_IMAGES / config.pretrain_batch_size)
        epochs = max(1, round(mnist_steps / math.ceil(images / config.pretrain_batch_size)))
    return FitSettings(epochs, config.pretrain_batch_size)


def saved_base(config: Config, dataset: data.Dataset, big: tuple) -> tuple[str, dict]:
    """Where the pretrained CNN is saved, and the settings that make it (saved beside
    it; a later run reuses the model only when they match)."""
    fit = pretraining_settings(config, dataset, len(big[1]))
    record = {"config": {"dataset": dataset.name, "classes": list(EVEN_DIGITS),
                         "images": len(big[1]), "epochs": fit.epochs,
                         "batch_size": fit.batch_size, "seed": config.seed,
                         "data_sha1": hashlib.sha1(big[0].tobytes()).hexdigest()}}
    size = f"_{len(big[1])}img" if config.big_size else ""
    name = f"{dataset.name}_5_{config.pretrain_epochs}{size}.keras"
    return config.base_file or os.path.join(config.models_dir, name), record


def pretrained_cnn(config: Config, dataset: data.Dataset, big: tuple) -> tuple[keras.Model, dict]:
    """The lecture's CNN trained on the big task: --base-file as it is, else the saved
    model of the same settings, else trained now (`pretrain`, or the engine's same
    training), saved and loaded back (`model.save`, `keras.models.load_model`).

    Returns:
        The model, and what the JSON records of it (file, settings, trained now?).
    """
    path, record = saved_base(config, dataset, big)
    with files.one_process_at_a_time(path):  # --jobs: one pretrains, the others reuse it
        base = saved_models.reusable_model(path, record, config.base_file is not None,
                                           config.retrain, data.MNIST_SHAPE)
        trained_now = base is None
        if trained_now:
            base = lecture_cnn(len(EVEN_DIGITS), seed=config.seed)
            fit = pretraining_settings(config, dataset, len(big[1]))
            print(f"  pretraining on {len(big[1]):,} images: {fit.epochs} epochs, batch "
                  f"{fit.batch_size}")
            if config.plain:
                pretrain(base, big, fit, config.seed)
            else:  # the same training, faster (tests/test_plain_equals_engine.py)
                engine.pretrain({config.seed: base}, {config.seed: big}, fit)
            saved_models.save_model(base, path, record)  # model.save(path), atomically
            base = keras.models.load_model(path, compile=False)
    # A --base-file was trained elsewhere: this run's settings say nothing of it.
    described = {"given": "--base-file"} if config.base_file else record
    return base, {"path": path, **described, "trained_now": trained_now}


def main(config: Config) -> dict:
    options = cli.choose_names(config.options, OPTIONS, "--options")
    print(f"tl_mnist: {config.trials} trials per option, device {configure_device(config.precision)}")
    keras.utils.set_random_seed(config.seed)
    clock = summary.Stopwatch()

    # 1. Load MNIST and split it into the two tasks (labels 0..4, pixels in [0, 1])
    dataset = data.load_mnist(config.data, config.dataset)
    print(dataset.announcement())
    big, big_test, pool, test = data.two_tasks(dataset, EVEN_DIGITS, ODD_DIGITS, config.big_size,
                                               config.test_size, config.seed)
    log = TrialLog("tl_mnist", config, dataset)  # each trial on disk as it ends; --resume
    small_sets = data.small_sets(pool, config.small_size, log.all_seeds, data.ODD_DIGIT_NAMES)
    print(f"  big task (digits 0,2,4,6,8): {len(big[1]):,} training, {len(big_test[1]):,} "
          f"test images\n  small task (digits 1,3,5,7,9): {config.small_size} training "
          f"images per trial, {len(test[1]):,} test images")
    clock.lap("load")

    # 2. The big task: the lecture's CNN trained on the even digits, saved, loaded back
    base, base_record = pretrained_cnn(config, dataset, big)
    base.summary()  # 26,821 parameters, all trainable
    base_accuracy = engine.accuracies([base], *big_test)[0]
    print(f"  pretrained model: {100 * base_accuracy:.1f}% on the big task's test images")
    transfer_model(base, len(ODD_DIGITS), config.seed).summary()  # 18,816 frozen, 8,005 not
    fine_tune = config.fine_tuning
    transfer.check_fine_tune(transfer.hidden_layers(base), fine_tune)  # fails now, not later
    clock.lap("pretrain")

    # Who trains: the plain Keras code above (--plain) or the engine: the same accuracies
    train_trials = (functools.partial(plain.trial_by_trial, one_trial) if config.plain
                    else engine.train_trials)
    with log.until_interrupted():  # Ctrl-C: on to the summary of the finished trials
        # 3. Option 1, no transfer: the CNN from scratch on each trial's 100 images
        if "no_transfer" in options:
            scratch = {seed: lecture_cnn(len(ODD_DIGITS), seed, config.augment, config.noise)
                       for seed in log.todo("no transfer")}
            log.record("no transfer", train_trials(scratch, small_sets, test, config.fit,
                                                   label="no transfer"))

        # 4. Option 2, transfer: the hidden layers copied and frozen, new output layers
        # (--options: each head an option; a classic one is scikit-learn's on both paths)
        models = {(option_name(head), seed): transfer_model(base, len(ODD_DIGITS), seed,
                                                            config.augment, head, config.noise)
                  for head in options if head in DENSE_HEADS
                  for seed in log.todo(*transfer.stage_names(option_name(head), fine_tune))}
        log.record_trials(train_trials(models, small_sets, test, config.fit, label="transfer"))
        if fine_tune:
            log.record_trials(train_trials(transfer.fine_tuning_copies(models, fine_tune),
                                           small_sets, test, fine_tune.fit,
                                           label="fine-tuning"), stage=transfer.FINE_TUNED)
        for head in [name for name in options if name in CLASSIC_HEADS]:
            frozen = {seed: transfer_model(base, len(ODD_DIGITS), seed)
                      for seed in log.todo(option_name(head))}
            log.record(option_name(head), engine.classic_trials(head, frozen, small_sets, test))

    # 5. Compare
    results = summary.compare(log, LECTURE, num_classes=5)
    figures = summary.plot_trials_and_curves(log, results, TITLE)
    training = config.training_line(keras_heads=bool(set(options) - set(CLASSIC_HEADS)))
    return summary.write_summary(log, results, TITLE, training, figures, clock, extra={
        "base": {**base_record, "big_task_test_accuracy": base_accuracy}},
        notes=[DIGITS_NOTE] if dataset.name == "digits" else [])


if __name__ == "__main__":
    sys.exit(cli.run_script(main, cli.parse_config(Config, None, __doc__, QUICK), "tl_mnist.py"))
