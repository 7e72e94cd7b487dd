"""Hiding TensorFlow's C++ start-up lines, called by each script before `import keras`.

TensorFlow prints start-up messages (CUDA probing, oneDNN notes) that bury the lesson's
output and turn a one-line error into eight. Since TensorFlow 2.20 some of them ("I0000
...") come from absl before it reads TF_CPP_MIN_LOG_LEVEL, so the variable alone no
longer hides them; and probing for a GPU on a machine without CUDA logs a harmless
"failed call to cuInit" error. So a script, like the keras-io examples that set
KERAS_BACKEND before `import keras`, first calls `hide_tensorflow_startup_lines()`.
"""

import contextlib
import importlib.util
import os
import re
import sys
import tempfile
from collections.abc import Iterator

_NATIVE_NOISE = re.compile(r"^(I\d{4} |WARNING: All log messages before absl"
                           r"|E\d{4} .*failed call to cuInit)")


@contextlib.contextmanager
def quiet_native_startup() -> Iterator[None]:
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


def hide_tensorflow_startup_lines() -> None:
    """Loads TensorFlow (when it is Keras's backend) with its start-up lines hidden; must
    run before the first `import keras`. Other backends print nothing to hide."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if (os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow"
            and importlib.util.find_spec("tensorflow") is not None):
        with quiet_native_startup():
            import tensorflow  # noqa: F401
