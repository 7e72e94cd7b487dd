"""Shared pieces of the transfer-learning toolkit.

Modules, in the order a script uses them:
    cli        typed configs -> argparse, one-line errors for bad input
    device     which accelerator the run uses
    data       loading, checking, class splits, stratified samples, padding
    models     the lecture's networks
    transfer   copying, freezing and splitting models into body and head
    training   training many trials side by side as one model
    reporting  statistics, the summary table, JSON results and plots
"""

import os

# TensorFlow prints pages of C++ start-up messages (CUDA probing, CPU flags) that
# bury the lesson's output; keep its warnings and errors. Must be set before the
# first `import keras`, which is why it lives in the package's __init__.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
