# %% [markdown]
# # Transfer learning between the two halves of MNIST
#
# The lecture's first experiment, step by step, with the functions of `tl_mnist.py`. A
# small CNN learns the even digits 0,2,4,6,8 from about 29,500 images. Its hidden layers,
# copied and frozen, with a new output layer, then learn the odd digits 1,3,5,7,9 from only
# 100 images. Does that beat the same CNN trained from scratch on those 100 images?

# %% [markdown]
# ## Settings
#
# The script's settings, the same as its command line: `cli.parse_config` reads flags
# into the script's `Config`, with the lecture's values as defaults (`QUICK` adds
# `--quick`, which shrinks the run). Put any flag of `python tl_mnist.py --help` into
# `FLAGS`.

# %%
import dataclasses
import functools

import keras
from IPython.display import Image, display

import tl_mnist
from common import engine
from common.lesson import data, plain, transfer
from common.lesson.classic import CLASSIC_HEADS
from common.runs import cli, summary
from common.runs.trial_log import TrialLog

FLAGS = []  # e.g. ["--options", "no_transfer,output,dense128"] or ["--data", "mnist.npz"]
config = cli.parse_config(tl_mnist.Config, (["--quick"] if QUICK else []) + FLAGS + EXTRA_FLAGS,
                          tl_mnist.__doc__, tl_mnist.QUICK)
print("settings other than the lecture's:",
      {field.name: getattr(config, field.name) for field in dataclasses.fields(config)
       if getattr(config, field.name) != field.default})

options = cli.choose_names(config.options, tl_mnist.OPTIONS, "--options")
print(f"tl_mnist: {config.trials} trials per option, device {configure_device(config.precision)}")
keras.utils.set_random_seed(config.seed)
clock = summary.Stopwatch()

# %% [markdown]
# ## 1. Load MNIST and split it into two tasks
#
# The big task is the even digits, the small task the odd ones (labels 0..4 for both,
# pixels in [0, 1]). Each trial draws its own 100 small-task images, 20 of each digit.
# Without MNIST (offline, nothing cached) the script says so and uses scikit-learn's
# small 8x8 digits instead.

# %%
dataset = data.load_mnist(config.data, config.dataset)
print(dataset.announcement())
big, big_test, pool, test = data.two_tasks(dataset, tl_mnist.EVEN_DIGITS, tl_mnist.ODD_DIGITS,
                                           config.big_size, config.test_size, config.seed)
log = TrialLog("tl_mnist", config, dataset)  # each trial on disk as it ends
small_sets = data.small_sets(pool, config.small_size, log.all_seeds, data.ODD_DIGIT_NAMES)
print(f"  big task (digits 0,2,4,6,8): {len(big[1]):,} training, {len(big_test[1]):,} "
      f"test images\n  small task (digits 1,3,5,7,9): {config.small_size} training "
      f"images per trial, {len(test[1]):,} test images")
clock.lap("load")

# %% [markdown]
# Two of each digit among the first trial's 100 training images:

# %%
import matplotlib.pyplot as plt
import numpy as np

images, labels = small_sets[config.seed]
shown = [index for label in range(len(tl_mnist.ODD_DIGITS))
         for index in np.flatnonzero(labels == label)[:2]]
figure, axes = plt.subplots(1, len(shown), figsize=(10, 1.5))
for axis, image, label in zip(axes, images[shown], labels[shown]):
    axis.imshow(image.squeeze(), cmap="gray")
    axis.set_title(tl_mnist.ODD_DIGITS[label])
    axis.axis("off")
display(figure)
plt.close(figure)

# %% [markdown]
# ## 2. The big task: the lecture's CNN trained on the even digits
#
# `pretrained_cnn` builds the network layer by layer (`lecture_cnn`), compiles it and
# fits it on the even digits (`pretrain`), saves it and loads it back with
# `keras.models.load_model`. A later run with the same settings reuses the saved model.
# Its summary: 26,821 parameters, all trainable.

# %%
base, base_record = tl_mnist.pretrained_cnn(config, dataset, big)
base.summary()
base_accuracy = engine.accuracies([base], *big_test)[0]
print(f"  pretrained model: {100 * base_accuracy:.1f}% on the big task's test images")

# %% [markdown]
# ## The transfer model
#
# `transfer_model` copies the hidden layers with their weights, sets
# `layer.trainable = False` on each copy and adds a new output layer for the five odd
# digits: 8,005 trainable parameters (the new layer), 18,816 frozen ones.

# %%
tl_mnist.transfer_model(base, len(tl_mnist.ODD_DIGITS), config.seed).summary()
fine_tune = config.fine_tuning
transfer.check_fine_tune(transfer.hidden_layers(base), fine_tune)  # fails now, not later
clock.lap("pretrain")

# %% [markdown]
# ## Who trains the trials
#
# `one_trial` is the lecture's plain Keras code: `compile`, `fit` on the 100 images,
# `evaluate`. By default the engine trains all the trials side by side instead, faster,
# with the same accuracies (the tests prove it); `--plain` runs `one_trial` itself, one
# trial after the other.

# %%
train_trials = (functools.partial(plain.trial_by_trial, tl_mnist.one_trial) if config.plain
                else engine.train_trials)

# %% [markdown]
# ## 3. No transfer: the CNN from scratch on each trial's 100 images

# %%
with log.until_interrupted():  # interrupt the kernel: on to the summary of what finished
    if "no_transfer" in options:
        scratch = {seed: tl_mnist.lecture_cnn(len(tl_mnist.ODD_DIGITS), seed, config.augment,
                                              config.noise)
                   for seed in log.todo("no transfer")}
        log.record("no transfer", train_trials(scratch, small_sets, test, config.fit,
                                               label="no transfer"))

# %% [markdown]
# ## 4. Transfer: the copied, frozen hidden layers and a new output layer
#
# The same 100 images per trial, now learnt by the transfer model of each head in
# `--options` (the lecture's is `output`; `logreg` and `linear_svm` are scikit-learn
# classifiers on the frozen layers' output).

# %%
with log.until_interrupted():
    models = {(tl_mnist.option_name(head), seed):
              tl_mnist.transfer_model(base, len(tl_mnist.ODD_DIGITS), seed, config.augment,
                                      head, config.noise)
              for head in options if head in tl_mnist.DENSE_HEADS
              for seed in log.todo(*transfer.stage_names(tl_mnist.option_name(head),
                                                         fine_tune))}
    log.record_trials(train_trials(models, small_sets, test, config.fit, label="transfer"))
    if fine_tune:
        log.record_trials(train_trials(transfer.fine_tuning_copies(models, fine_tune),
                                       small_sets, test, fine_tune.fit,
                                       label="fine-tuning"), stage=transfer.FINE_TUNED)
    for head in [name for name in options if name in CLASSIC_HEADS]:
        frozen = {seed: tl_mnist.transfer_model(base, len(tl_mnist.ODD_DIGITS), seed)
                  for seed in log.todo(tl_mnist.option_name(head))}
        log.record(tl_mnist.option_name(head),
                   engine.classic_trials(head, frozen, small_sets, test))

# %% [markdown]
# ## 5. Compare
#
# Each option's test accuracies over the trials, their mean with a 95% confidence
# interval, the lecture's range, and transfer against no transfer (Welch's t-test and the
# paired one: trial k of both options used the same 100 images). The results are saved
# in `config.out` (`tl_mnist.json`, `tl_mnist.png`).

# %%
results = summary.compare(log, tl_mnist.LECTURE, num_classes=5)
figures = summary.plot_trials_and_curves(log, results, tl_mnist.TITLE)
training = config.training_line(keras_heads=bool(set(options) - set(CLASSIC_HEADS)))
saved = summary.write_summary(log, results, tl_mnist.TITLE, training, figures, clock, extra={
    "base": {**base_record, "big_task_test_accuracy": base_accuracy}},
    notes=[tl_mnist.DIGITS_NOTE] if dataset.name == "digits" else [])

# %% [markdown]
# Each trial's accuracy for both options, a line joining the two of one trial, the
# lecture's ranges shaded:

# %%
for path in figures:
    display(Image(filename=path))
