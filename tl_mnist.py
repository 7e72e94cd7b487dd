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

import hashlib
import math
import os
import sys
from dataclasses import dataclass

import common  # noqa: F401  (quiets TensorFlow's start-up messages before keras loads)
import keras
from keras import layers
from common import checkpoints, cli, data, transfer
from common.classic import CLASSIC_HEADS
from common.device import configure_device
from common.experiment import Experiment
from common.models import augmentation, dropout, seeded
from common.settings import FitSettings
from common import training
from common.training import in_seeded_order

EVEN_DIGITS, ODD_DIGITS = data.EVEN_DIGITS, data.ODD_DIGITS  # the big and the small task
MNIST_BIG_IMAGES = 29_492  # even digits in MNIST's training set
LECTURE = {"no transfer": (0.840, 0.873), "transfer": (0.910, 0.926)}
# The new layers put on the copied, frozen hidden layers (--heads); the first is the
# lecture's. The classic ones are scikit-learn classifiers on the frozen layers' output.
HEADS = {"output": "a new Dense(5) softmax output layer (the lecture's)",
         "dense128": "a new Dense(128, relu) -> Dropout(0.5) -> Dense(5) softmax",
         "logreg": "logistic regression on the frozen layers' output (scikit-learn)",
         "linear_svm": "a linear SVM on the frozen layers' output (scikit-learn)"}
DIGITS_NOTE = ("*** digits: not MNIST. These small, clean digits leave little room for a gain; "
               "pass --data mnist.npz for the lecture's experiment.")


@dataclass(frozen=True)
class Config(cli.RunFlags, cli.TrainingFlags):
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
    heads: str = cli.option("output", "comma-separated heads on the frozen layers, each an "
                            "option of its own: " + ", ".join(HEADS), group="model")
    base: str | None = cli.option(None, "a pretrained model to use as is (.keras, or the "
                                  "lecture's .h5) instead of pretraining", group="model")
    retrain: bool = cli.option(False, "pretrain anew even if a matching saved model exists",
                               group="model")
    models_dir: str = cli.option("saved_models", "folder of pretrained models", group="model")
    out: str = cli.option("results", "folder for tl_mnist.json and tl_mnist.png", group="output")
    quick: bool = cli.option(False, "a complete tiny run: 3 trials, 5 epochs, 1 pretraining "
                             "epoch, 2,000 big and 500 test images", group="output")


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
    (trainable = False), and a new Dense output layer for the new task (--heads
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
    model.fit(**in_seeded_order(small, fit, seed), epochs=fit.epochs, verbose=0)
    loss, accuracy = model.evaluate(*test, verbose=0)
    return {"accuracy": accuracy}


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
    return config.base or os.path.join(config.models_dir, name), record


def main(config: Config) -> dict:
    heads = cli.choose_names(config.heads, HEADS, "--heads")
    print(f"tl_mnist: {config.trials} trials per option, device {configure_device()}")
    keras.utils.set_random_seed(config.seed)

    # 1. Load MNIST and split it into the two tasks (labels 0..4, pixels in [0, 1])
    dataset = data.load_mnist(config.data, config.dataset)
    seed = config.seed  # draws the --big-size and --test-size subsets
    big = data.task_images(dataset.x_train, dataset.y_train, EVEN_DIGITS, config.big_size, seed)
    big_test = data.task_images(dataset.x_test, dataset.y_test, EVEN_DIGITS, config.test_size,
                                seed)
    pool = data.task_images(dataset.x_train, dataset.y_train, ODD_DIGITS)
    test = data.task_images(dataset.x_test, dataset.y_test, ODD_DIGITS, config.test_size, seed)
    run = Experiment("tl_mnist", config, dataset, one_trial)
    small_sets = data.small_sets(pool, config.small_size, run.all_seeds, data.ODD_DIGIT_NAMES)
    print(f"  big task (digits 0,2,4,6,8): {len(big[1]):,} training, {len(big_test[1]):,} "
          f"test images\n  small task (digits 1,3,5,7,9): {config.small_size} training "
          f"images per trial, {len(test[1]):,} test images")
    run.phase_done("load")

    # 2. The big task: the lecture's CNN trained on the even digits, saved, loaded back
    path, record = saved_base(config, dataset, big)
    base = checkpoints.reusable_model(path, record, config.base is not None, config.retrain,
                                      data.MNIST_SHAPE)
    trained_now = base is None
    if trained_now:
        base = lecture_cnn(len(EVEN_DIGITS), seed=config.seed)
        run.pretrain(pretrain, [base], [big], pretraining_settings(config, dataset, len(big[1])),
                     [config.seed])
        checkpoints.save_model(base, path, record)  # model.save(path), atomically
        base = keras.models.load_model(path, compile=False)
    base.summary()  # 26,821 parameters, all trainable
    base_accuracy = training.accuracies([base], *big_test)[0]
    print(f"  pretrained model: {100 * base_accuracy:.1f}% on the big task's test images")
    fine_tune = config.fine_tuning
    transfer.check_fine_tune(transfer.hidden_layers(base), fine_tune)  # fails now, not later
    run.phase_done("pretrain")

    # 3. Option 1, no transfer: the CNN from scratch on each trial's 100 images
    fit = config.fit_settings(config.epochs, config.batch_size)
    scratch = [lecture_cnn(len(ODD_DIGITS), seed, config.augment, config.noise)
               for seed in run.seeds]
    run.trials({"no transfer": scratch}, small_sets, test, fit)

    # 4. Option 2, transfer: the hidden layers copied and frozen, a new output layer
    # (--heads: other new layers, or a classic classifier on the frozen layers' output)
    transferred = {head: [transfer_model(base, len(ODD_DIGITS), seed, config.augment, head,
                                         config.noise) for seed in run.seeds]
                   for head in heads}
    transferred[heads[0]][0].summary()  # the lecture's: 18,816 frozen, 8,005 trainable
    run.trials({option_name(head): transferred[head] for head in heads
                if head not in CLASSIC_HEADS}, small_sets, test, fit, fine_tune)
    run.classic_trials({option_name(head): head for head in heads if head in CLASSIC_HEADS},
                       transferred[heads[0]], small_sets, test)

    # 5. Compare
    return run.finish("test accuracy on digits 1,3,5,7,9", LECTURE, num_classes=5,
                      extra={"base": {"path": path, **record, "trained_now": trained_now,
                                      "big_task_test_accuracy": base_accuracy}},
                      notes=[DIGITS_NOTE] if dataset.name == "digits" else [])


if __name__ == "__main__":
    sys.exit(cli.run_script(main, cli.parse_config(Config, None, __doc__, QUICK), "tl_mnist.py",
                             stop_at_epoch_end=True))
