# %% [markdown]
# # How transferable is each layer? Yosinski et al.'s study on MNIST
#
# Beyond the lecture, step by step, with the functions of `transferability.py`. Task A
# is the even digits 0,2,4,6,8, task B the odd digits 1,3,5,7,9. A CNN with five
# transferable layers (conv1, conv2, conv3, conv4, dense1) is trained on each: baseA and
# baseB. Then, for n = 1..5, new networks learn B with their first n layers copied from
# a base and the rest freshly initialised:
#
# - nAnB-frozen: layers 1..n from baseA, frozen (transfer from another task);
# - nAnB-fine-tuned: layers 1..n from baseA, trained too;
# - nBnB-frozen: layers 1..n from baseB, frozen (the "selffer": B's own layers);
# - nBnB-fine-tuned: layers 1..n from baseB, trained too.
#
# A drop of nBnB-frozen below baseB in the middle layers is fragile co-adaptation; a
# drop of nAnB-frozen below nBnB-frozen at higher n is how specific A's features are.

# %% [markdown]
# ## Settings
#
# The study's settings, the same as its command line (`python transferability.py
# --help`): `cli.parse_config` reads flags into its `Config`. Quick runs train one trial
# of each of the 20 networks on 100 B images.

# %%
import dataclasses
import functools

import keras
from IPython.display import Image, display

import transferability
from common import engine
from common.lesson import data, networks, plain
from common.lesson.settings import FitSettings
from common.runs import cli, summary, tables
from common.runs.trial_log import TrialLog, trial_seeds

FLAGS = []  # e.g. ["--target-size", "1000", "--epochs", "20", "--batch-size", "32"]
config = cli.parse_config(transferability.Config,
                          (["--quick"] if QUICK else []) + FLAGS + EXTRA_FLAGS,
                          transferability.__doc__, transferability.QUICK)
print("settings other than the study's defaults:",
      {field.name: getattr(config, field.name) for field in dataclasses.fields(config)
       if getattr(config, field.name) != field.default})

print(f"transferability: 4 models x n = 1..{len(transferability.LAYERS)}, {config.trials} "
      f"trials each, device {configure_device(config.precision)}")
keras.utils.set_random_seed(config.seed)
clock = summary.Stopwatch()

# %% [markdown]
# ## 1. The data: A = even digits, B = odd digits, and each trial's B training set

# %%
dataset = data.load_mnist(config.data, config.dataset)
print(dataset.announcement())
a_train, a_test, b_pool, b_test = data.two_tasks(dataset, transferability.TASK_A,
                                                 transferability.TASK_B, config.source_size,
                                                 config.test_size, config.seed)
b_sets = transferability.b_training_sets(b_pool, config.target_size,
                                         trial_seeds(config.seed, config.trials))
log = TrialLog("transferability", config, dataset)  # each trial on disk as it ends
b_size = len(b_sets[config.seed][1])
drawn = f"drawn per trial from {len(b_pool[1]):,}" if config.target_size else "the whole half"
print(f"  A (digits 0,2,4,6,8): {len(a_train[1]):,} training, {len(a_test[1]):,} test "
      f"images\n  B (digits 1,3,5,7,9): {b_size:,} training images per trial ({drawn}), "
      f"{len(b_test[1]):,} test images")
clock.lap("load")

# %% [markdown]
# ## Who trains the networks
#
# `pretrain` (a base) and `one_trial` (a transferred network) are the plain Keras code:
# `compile`, `fit`, `evaluate`. By default the engine trains the networks side by side,
# with the same accuracies (tested); `--plain` runs the plain code itself.

# %%
pretrain_all = (functools.partial(plain.pretrain_each, transferability.pretrain)
                if config.plain else engine.pretrain)
train_trials = (functools.partial(plain.trial_by_trial, transferability.one_trial)
                if config.plain else functools.partial(engine.train_trials,
                                                       cache_features=False))

# %% [markdown]
# ## 2. The bases: baseA on A (once), baseB on each trial's B training set
#
# Both are the same network, whose five transferable layers are named below. They are
# saved in `config.models_dir` and reused by a later run with the same settings and data.

# %%
fit = FitSettings(config.epochs, config.batch_size, "adam", config.lr,
                  history=config.log_dir is not None)
networks.deep_cnn().summary()
base_a = transferability.base_networks(
    "A", {config.seed: a_train}, dataclasses.replace(fit, epochs=config.source_epochs),
    config.models_dir, config.retrain, dataset.name, pretrain_all)[config.seed]
bases_b = transferability.base_networks("B", {seed: b_sets[seed] for seed in log.seeds}, fit,
                                        config.models_dir, config.retrain, dataset.name,
                                        pretrain_all)
bases = transferability.bases_summary(
    engine.accuracies([base_a], *a_test)[0], len(a_train[1]),
    dict(zip(bases_b, engine.accuracies(list(bases_b.values()), *b_test))), b_size,
    config.seed)
print(f"  baseA on A's test images: {100 * bases['A']['test_accuracy_on_A']:.1f}%; baseB "
      "on B's: " + ", ".join(f"{100 * v:.1f}%" for v in bases["B"]["test_accuracy_on_B"]))
clock.lap("bases")

# %% [markdown]
# ## 3. The transferred networks, trained on B
#
# For each model type and n = 1..5: the first n layers copied from baseA or baseB
# (`transferred_network`), frozen or fine-tuned, the rest new. Each line says how many
# of a network's parameters still train.

# %%
log.plan(*(transferability.option_name(n, model) for model in transferability.MODELS
           for n in range(1, len(transferability.LAYERS) + 1)))
with log.until_interrupted():  # interrupt the kernel: on to the summary of what finished
    for model_type, ns in transferability.option_groups(len(log.seeds), b_size):
        log.record_trials(train_trials(transferability.transferred_networks(
            model_type, ns, log.todo, base_a, bases_b), b_sets, b_test, fit,
            label=model_type))

# %% [markdown]
# ## 4. Summarise
#
# The table of mean accuracies by model type and n, A's layers against B's own (frozen)
# for each n, and the figure: accuracy on B against n, baseB's as a dotted line. The
# results are saved in `config.out` (`transferability.json`, `transferability.png`).

# %%
results = summary.compare(log, {}, pairs=transferability.FROZEN_PAIRS)
grid = transferability.summary_grid(log.accuracies(log.planned))
size = f"{b_size:,} B training images" + (" per trial" if config.target_size
                                         else " (whole half)")
figures = transferability.draw_figure(log, results, bases, size)
saved = summary.write_summary(
    log, results, f"test accuracy on B (digits 1,3,5,7,9); {size}",
    tables.training_line(fit, plain=config.plain), figures, clock,
    notes=transferability.summary_notes(grid, bases, bool(dataset.warning)),
    extra={"task_a": list(transferability.TASK_A), "task_b": list(transferability.TASK_B),
           "b_training_images": b_size, "layers": list(transferability.LAYERS),
           "bases": bases, "table": grid})

# %%
for path in figures:
    display(Image(filename=path))
