# %% [markdown]
# # CIFAR-10 from 100 images per class: a CNN from scratch against frozen VGG16
#
# The lecture's third experiment, step by step, with the functions of `cifar_vgg.py`.
# Each trial draws 100 training images of each of CIFAR-10's 10 classes. The lecture's
# small CNN learns them from scratch (with tanh, ReLU or sigmoid in its hidden layers);
# against it, ImageNet's VGG16, frozen, with a new head of Dense(512) and Dense(10).
# The test set is the validation data after every epoch, so the curves show the small
# CNN overfitting. Here transfer helps: ImageNet's photographs are close to CIFAR-10's.

# %% [markdown]
# ## Settings
#
# The script's settings, the same as its command line (`python cifar_vgg.py --help`):
# `cli.parse_config` reads flags into its `Config`, the lecture's values as defaults.
# Quick runs offline use a 200-image CIFAR-10 sample shipped with the repository;
# `--weights none` gives VGG16 random weights (no download; a control, not transfer).

# %%
import dataclasses
import functools

import keras
from IPython.display import Image, display

import cifar_vgg
from common import engine
from common.lesson import bases, data, plain, transfer
from common.lesson.classic import CLASSIC_HEADS
from common.runs import cli, summary
from common.runs.trial_log import TrialLog

FLAGS = []  # e.g. ["--options", "cnn_tanh,vgg16"] or ["--data", "cifar10.npz"]
config = cli.parse_config(cifar_vgg.Config, (["--quick"] if QUICK else []) + FLAGS + EXTRA_FLAGS,
                          cifar_vgg.__doc__, cifar_vgg.QUICK)
print("settings other than the lecture's:",
      {field.name: getattr(config, field.name) for field in dataclasses.fields(config)
       if getattr(config, field.name) != field.default})

options = cli.choose_names(config.options, (*cifar_vgg.SCRATCH_RUNS, config.base), "--options")
print(f"cifar_vgg: {', '.join(options)}, {config.trials} trials each, device "
      f"{configure_device(config.precision)}")
keras.utils.set_random_seed(config.seed)
clock = summary.Stopwatch()

# %% [markdown]
# ## 1. CIFAR-10: 100 training images per class for each trial
#
# The base is built in this step too, so that a bad `--weights`, `--cut` or
# `--fine-tune` fails before the CNNs train.

# %%
dataset = data.load_cifar10(config.data, config.quick)
print(dataset.announcement())
test = data.subsample(dataset.x_test, dataset.y_test, config.test_size, config.seed)
log = TrialLog("cifar_vgg", config, dataset)  # each trial on disk as it ends
small_sets = data.small_sets((dataset.x_train, dataset.y_train), 10 * config.per_class,
                             log.all_seeds, data.CIFAR10_CLASSES, "--per-class")
print(f"  {10 * config.per_class:,} training images per trial ({config.per_class} per "
      f"class), {len(test[1]):,} test images (validation after every epoch, and the test)")
base = cifar_vgg.vgg16_base(config) if config.base in options else None
clock.lap("load")

# %% [markdown]
# One image of each class among the first trial's training images (32x32 pixels):

# %%
import matplotlib.pyplot as plt
import numpy as np

images, labels = small_sets[config.seed]
shown = [np.flatnonzero(labels == label)[0] for label in range(len(data.CIFAR10_CLASSES))]
figure, axes = plt.subplots(1, len(shown), figsize=(12, 1.8))
for axis, image, label in zip(axes, images[shown], labels[shown]):
    axis.imshow(data.to_unit_float(image))
    axis.set_title(data.CIFAR10_CLASSES[label], fontsize=9)
    axis.axis("off")
display(figure)
plt.close(figure)

# %% [markdown]
# ## The two kinds of network
#
# The lecture's CNN from scratch (`cifar_cnn`, here with tanh): four 3x3 convolutions,
# two max-poolings, Dropout and a softmax output, every parameter trainable. Then the
# frozen VGG16 base (`vgg16_base`, `include_top=False`, every layer
# `trainable = False`), on which `transfer_model` puts the new head.

# %%
cifar_vgg.cifar_cnn("tanh", config.seed).summary()
if base is not None:
    base.summary()

# %% [markdown]
# ## Who trains the trials
#
# `one_trial` is the plain Keras code: `compile`, `fit` with the test set as validation
# data (the lecture reads `history` for its curves), `evaluate`. By default the engine
# trains the trials side by side, with the same accuracies (tested); `--plain` runs
# `one_trial` itself.

# %%
train_trials = (functools.partial(plain.trial_by_trial, cifar_vgg.one_trial) if config.plain
                else functools.partial(engine.train_trials, validate=True,
                                       feature_cache=config.feature_cache))

# %% [markdown]
# ## 2. No transfer: the lecture's CNN from scratch, with each hidden activation
#
# `--pixels raw` (the default) feeds the CNNs 0..255 pixels, as the lecture's slide loads
# them.

# %%
with log.until_interrupted():  # interrupt the kernel: on to the summary of what finished
    cnn_sets, cnn_test = cifar_vgg.cnn_inputs(small_sets, test, config.pixels)
    for option in [name for name in options if name in cifar_vgg.SCRATCH_RUNS]:
        noise = (1.0 if config.pixels == "unit" else 255.0) * config.noise  # input scale
        cnns = {seed: cifar_vgg.cifar_cnn(cifar_vgg.SCRATCH_RUNS[option], seed, config.augment,
                                          noise)
                for seed in log.todo(option)}
        log.record(option, train_trials(cnns, cnn_sets, cnn_test, config.fit, label=option))

# %% [markdown]
# ## 3. Transfer: the frozen base with a new head
#
# The images get the base's own preprocessing; the summary shows the transfer model:
# the frozen base and the new Dense layers, the only ones that train.

# %%
with log.until_interrupted():
    if base is not None:
        classic = config.head in CLASSIC_HEADS  # scikit-learn fits these on both paths
        option, fine_tune = config.base, None if classic else config.fine_tuning
        vgg_sets, vgg_test = cifar_vgg.vgg_inputs(small_sets, test, config.base)
        cifar_vgg.transfer_model(base, config.head, config.seed).summary()
        models = {seed: cifar_vgg.transfer_model(base, config.head, seed, config.augment,
                                                 config.noise)
                  for seed in log.todo(*transfer.stage_names(option, fine_tune))}
        log.record(option, engine.classic_trials(config.head, models, vgg_sets, vgg_test,
                                                 config.feature_cache) if classic else
                   train_trials(models, vgg_sets, vgg_test, config.fit, label=option))
        if fine_tune:
            log.record(option, train_trials(
                transfer.fine_tuning_copies(models, fine_tune), vgg_sets, vgg_test,
                fine_tune.fit, label="fine-tuning"), stage=transfer.FINE_TUNED)

# %% [markdown]
# ## 4. Compare
#
# Each option's test accuracies, against the lecture's ranges and against the first
# option (the tanh CNN). The results are saved in `config.out` (`cifar_vgg.json`,
# `cifar_vgg.png`).

# %%
results = summary.compare(log, cifar_vgg.lecture_ranges(config, options), num_classes=10)
title = "test accuracy on CIFAR-10" + (f", {bases.base_line(config)}" if base else "")
figures = summary.plot_trials_and_curves(log, results, title, trials_plot=False)
saved = summary.write_summary(
    log, results, title, config.training_line(options != [config.base]
                                              or config.head not in CLASSIC_HEADS),
    figures, clock,
    extra={"weights": bases.weights_label(config.weights), "cut": config.cut or None,
           "pixels": config.pixels},
    notes=bases.control_notes(config) if base is not None else [])

# %% [markdown]
# Accuracy and loss per epoch, on the training images and on the test images: where the
# two part, a network learns its training images by heart (overfitting).

# %%
for path in figures:
    display(Image(filename=path))
