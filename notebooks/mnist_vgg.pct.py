# %% [markdown]
# # ImageNet VGG16, frozen, on the 100 MNIST digits
#
# The lecture's second experiment, step by step, with the functions of `mnist_vgg.py`.
# The 100 odd digits of `tl_mnist.py` (1,3,5,7,9) are padded to 32x32 and their gray
# channel repeated three times, so that VGG16 accepts them. VGG16's convolutional part,
# trained on ImageNet photographs, stays frozen; only new heads on top of it learn: the
# lecture's five heads, each a compared option. Photographs are far from handwritten
# digits: does this transfer still help?

# %% [markdown]
# ## Settings
#
# The script's settings, the same as its command line (`python mnist_vgg.py --help`):
# `cli.parse_config` reads flags into its `Config`, the lecture's values as defaults.
# `--weights none` gives VGG16 random weights (no download; a control, not transfer).

# %%
import dataclasses
import functools

import keras
from IPython.display import Image, display

import mnist_vgg
from common import engine
from common.lesson import bases, data, plain, transfer
from common.lesson.classic import CLASSIC_HEADS
from common.runs import cli, summary
from common.runs.trial_log import TrialLog

FLAGS = []  # e.g. ["--options", "output,dense512"] or ["--weights", "none"]
config = cli.parse_config(mnist_vgg.Config, (["--quick"] if QUICK else []) + FLAGS + EXTRA_FLAGS,
                          mnist_vgg.__doc__, mnist_vgg.QUICK)
print("settings other than the lecture's:",
      {field.name: getattr(config, field.name) for field in dataclasses.fields(config)
       if getattr(config, field.name) != field.default})

heads = cli.choose_names(config.options, mnist_vgg.OPTIONS, "--options")
print(f"mnist_vgg: {len(heads)} heads x {config.trials} trials, device "
      f"{configure_device(config.precision)}")
keras.utils.set_random_seed(config.seed)
clock = summary.Stopwatch()

# %% [markdown]
# ## 1. The 100-image task of `tl_mnist.py`, made to fit VGG16
#
# Digits 1,3,5,7,9 (labels 0..4), 100 training images per trial; each 28x28 gray digit
# zero-padded to 32x32 and its channel repeated 3 times, then VGG16's own preprocessing.

# %%
dataset = data.load_mnist(config.data, config.dataset)
print(dataset.announcement())
pool = data.task_images(dataset.x_train, dataset.y_train, data.ODD_DIGITS)
test = data.task_images(dataset.x_test, dataset.y_test, data.ODD_DIGITS, config.test_size,
                        config.seed)
log = TrialLog("mnist_vgg", config, dataset)  # each trial on disk as it ends
small_sets = {seed: (bases.preprocess(data.pad_and_repeat(x), config.base), y)
              for seed, (x, y) in data.small_sets(pool, config.small_size, log.all_seeds,
                                                  data.ODD_DIGIT_NAMES).items()}
test = (bases.preprocess(data.pad_and_repeat(test[0]), config.base), test[1])
print(f"  {config.small_size} training images per trial, {len(test[1]):,} test images, "
      "zero-padded to 32x32 and the gray channel repeated 3 times")
clock.lap("load")

# %% [markdown]
# What VGG16 is given, before its preprocessing: ten digits, padded to 32x32, in three
# equal channels (so still gray):

# %%
import matplotlib.pyplot as plt

figure, axes = plt.subplots(1, 10, figsize=(10, 1.5))
for axis, image, label in zip(axes, data.pad_and_repeat(pool[0][:10]), pool[1][:10]):
    axis.imshow(image)
    axis.set_title(data.ODD_DIGITS[label])
    axis.axis("off")
display(figure)
plt.close(figure)

# %% [markdown]
# ## 2. The pretrained base: VGG16 without its top, frozen
#
# `vgg16_base` loads VGG16 with `include_top=False` (no ImageNet classifier) and sets
# every layer's `trainable = False`. For 32x32 inputs its output is 1x1x512. The
# transfer model is the base and a new head (here the lecture's first: a new output
# layer): only the head's parameters train.

# %%
base = mnist_vgg.vgg16_base(config)
base.summary()
print(f"  {config.base} ({bases.weights_label(config.weights)}), frozen: "
      f"{base.count_params():,} parameters, output {base.outputs[0].shape[1:]}")
mnist_vgg.transfer_model(base, "output", config.seed).summary()
fine_tune = config.fine_tuning

# %% [markdown]
# ## Who trains the trials
#
# `one_trial` is the plain Keras code: `compile`, `fit` with the test set as validation
# data, `evaluate`. By default the engine trains the heads on VGG16's features, computed
# once, with the same accuracies (tested); `--plain` runs `one_trial` itself.

# %%
train_trials = (functools.partial(plain.trial_by_trial, mnist_vgg.one_trial) if config.plain
                else functools.partial(engine.train_trials, validate=True,
                                       feature_cache=config.feature_cache))

# %% [markdown]
# ## 3. New heads on the frozen base, every head and trial

# %%
with log.until_interrupted():  # interrupt the kernel: on to the summary of what finished
    for head in heads:
        print(f"  head {head}: {(bases.HEAD_VARIANTS | CLASSIC_HEADS)[head]}")
    models = {(head, seed): mnist_vgg.transfer_model(base, head, seed, config.augment,
                                                     config.noise)
              for head in heads if head in bases.HEAD_VARIANTS
              for seed in log.todo(*transfer.stage_names(head, fine_tune))}
    log.record_trials(train_trials(models, small_sets, test, config.fit, label="heads"))
    if fine_tune:
        log.record_trials(train_trials(transfer.fine_tuning_copies(models, fine_tune),
                                       small_sets, test, fine_tune.fit,
                                       label="fine-tuning"), stage=transfer.FINE_TUNED)
    for head in [name for name in heads if name in CLASSIC_HEADS]:  # scikit-learn's
        frozen = {seed: mnist_vgg.transfer_model(base, head, seed) for seed in log.todo(head)}
        log.record(head, engine.classic_trials(head, frozen, small_sets, test,
                                               config.feature_cache))

# %% [markdown]
# ## 4. Compare
#
# Each head's test accuracies over the trials, against the lecture's ranges (for
# ImageNet's VGG16 only) and against the first head. The results are saved in
# `config.out` (`mnist_vgg.json` and the plots).

# %%
results = summary.compare(log, mnist_vgg.LECTURE if bases.is_lectures_base(config) else {}, 5)
title = f"test accuracy on digits 1,3,5,7,9, {bases.base_line(config)}"
figures = summary.plot_trials_and_curves(log, results, title)
saved = summary.write_summary(
    log, results, title, config.training_line(any(h in bases.HEAD_VARIANTS for h in heads)),
    figures, clock,
    extra={"weights": bases.weights_label(config.weights), "cut": config.cut or None,
           "heads": {head: (bases.HEAD_VARIANTS | CLASSIC_HEADS)[head] for head in heads}},
    notes=bases.control_notes(config))

# %% [markdown]
# Each trial's accuracy per head, then accuracy and loss per epoch on the training and
# the test images:

# %%
for path in figures:
    display(Image(filename=path))
