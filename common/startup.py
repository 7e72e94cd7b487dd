"""Starting TensorFlow the toolkit's way, called by each script before `import keras`:
oneDNN's kernels on, and its C++ start-up lines hidden.

oneDNN: TensorFlow turns its oneDNN kernels on by itself only on CPUs with AVX-512 VNNI,
AVX-512 BF16 or AMX. Elsewhere (AVX2-only CPUs, most laptops) it leaves them off, and
then its convolutions are slower (measured on a 2-core AMD EPYC with AVX2: pretraining
the lecture's CNN 170 s with them off, 128 s on) and it cannot train a grouped
convolution at all, which the fast engine stacks trials with. So the toolkit turns them
on where TensorFlow would not, unless TF_ENABLE_ONEDNN_OPTS is set already (0 keeps
them off, as the tests do to play an AVX2-only CPU on one with AVX-512).

Start-up lines: TensorFlow prints start-up messages (CUDA probing, oneDNN notes) that
bury the lesson's output and turn a one-line error into eight. Since TensorFlow 2.20 some of them ("I0000
...") come from absl before it reads TF_CPP_MIN_LOG_LEVEL, so the variable alone no
longer hides them; and probing for a GPU on a machine without CUDA logs a harmless
"failed call to cuInit" error. So a script, like the keras-io examples that set
KERAS_BACKEND before `import keras`, first calls `prepare_tensorflow()`.
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


def prepare_tensorflow() -> None:
    """Loads TensorFlow (when it is Keras's backend) with oneDNN on (unless
    TF_ENABLE_ONEDNN_OPTS says otherwise) and its start-up lines hidden; must run before
    the first `import keras`. Other backends load nothing here."""
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if (os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow"
            and importlib.util.find_spec("tensorflow") is not None):
        with quiet_native_startup():
            import tensorflow  # noqa: F401
