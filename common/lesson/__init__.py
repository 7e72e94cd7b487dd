"""What a lecture script calls, named as on the slides; each module on its own.

    data          loading MNIST and CIFAR-10 (or a local file), checks, class splits,
                  the small sets of each trial, padding and channel repeat
    networks      seeded layers, augmentation, the deep CNN of the transferability study
    bases         the pretrained networks, one table row each, and the heads put on them
    transfer      copying, freeze and unfreeze, body and head, the two-stage fine-tuning
    classic       scikit-learn heads on frozen features
    settings      `FitSettings` (compile and fit) and `FineTune` (the second stage)
    orders        each trial's data order, drawn from its seed
    plain         the plain path: a script's own `one_trial`, trial after trial
    saved_models  saving, loading and reusing pretrained models

It imports keras, numpy and scikit-learn, and nothing else of `common` but `errors` and
`files`. Importing the package itself loads nothing (`report.py` needs none of it).
"""
