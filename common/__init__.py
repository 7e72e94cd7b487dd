"""Shared pieces of the transfer-learning toolkit.

Modules, in the order a script uses them:
    cli        typed configs -> argparse, one-line errors for bad input
    device     which accelerator the run uses
    data       loading, checking, class splits, stratified samples, padding
    models     the lecture's networks
    transfer   copying, freezing and splitting models into body and head
    training   training many trials side by side as one model
    stacked    alike trials as one network (grouped convolutions, batched Dense)
    trials     per-trial seeds, small sets, cached features
    reporting  statistics, the summary table, JSON results and plots
    checkpoints  saving and reusing pretrained models
"""

import contextlib
import importlib.util
import os
import re
import sys
import tempfile

# TensorFlow prints C++ start-up messages (CUDA probing, oneDNN notes) that bury the
# lesson's output and turn a one-line error into eight lines. Must be set before the
# first `import keras`, which is why it lives in the package's __init__.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Since TensorFlow 2.20 some of those lines ("I0000 ...") come from absl before it reads
# TF_CPP_MIN_LOG_LEVEL, so the variable alone no longer hides them; and probing for a
# GPU on a machine without CUDA logs a harmless "failed call to cuInit" error.
_NATIVE_NOISE = re.compile(r"^(I\d{4} |WARNING: All log messages before absl"
                           r"|E\d{4} .*failed call to cuInit)")


@contextlib.contextmanager
def quiet_native_startup():
    """Runs the block with file descriptor 2 captured, then passes on all but that noise."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode(errors="replace").splitlines(True)
                    if not _NATIVE_NOISE.match(line)]
            sys.stderr.write("".join(kept))


if (os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow"
        and importlib.util.find_spec("tensorflow") is not None):
    with quiet_native_startup():
        import tensorflow  # noqa: F401
