"""The transfer-learning toolkit's shared code, in three rooms; imports flow one way:

    scripts -> runs -> engine -> lesson, and all of them -> errors, files, startup

- `common.lesson`: what a lecture script calls, named as on the slides: data and
  splits, pad-and-repeat, the networks, the pretrained bases (one table row each), body
  and head, freeze and unfreeze, the two-stage fine-tuning recipe, classic heads,
  seeded data orders, saved models.
- `common.engine`: speed only. Trials side by side, stacked, on cached frozen features;
  `engine.train_trials(...)` gives what the scripts' plain `one_trial` gives (tested).
- `common.runs`: the run's bookkeeping: configs and command line, the trials file,
  resume, shards and the `--jobs` launcher, results, statistics, plots, the device.
- `common.errors` (bad input, the stop flag), `common.files` (atomic writes, a lock) and
  `common.startup` (TensorFlow's start-up lines hidden) stand at the bottom.

Importing this package loads nothing: `report.py` reads results without TensorFlow.
`tests/test_layout.py` keeps the flow one way.
"""
