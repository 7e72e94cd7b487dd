"""Files written whole or not at all, and one process at a time where several share one.

Every result, model and figure is written under a temporary name and renamed, so a
crash or Ctrl-C never leaves a half-written file behind.
"""

import contextlib
import fcntl
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

# mkstemp makes files only their owner can read; results are meant to be shared.
READABLE = 0o644


def json_ready(value: Any) -> Any:
    """`value` ready for JSON: NumPy numbers made Python numbers (Keras histories hold
    NumPy floats on some backends), NaN and infinities made None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    return value


def atomic_write_json(path: str, payload: Any) -> None:
    """Writes `payload` (`json_ready`) as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(json_ready(payload), indent=2) + "\n")


def atomic_write_text(path: str, text: str) -> None:
    """Writes `text` to `path` through a temporary file and a rename."""
    atomic_save(path, lambda temporary: _write_text(temporary, text))


def _write_text(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as file:
        file.write(text)


def atomic_save(path: str, save: Callable[[str], None]) -> None:
    """Calls `save(temporary)` to write a file next to `path`, then renames it to `path`;
    a failed or interrupted save leaves no partial file and the old `path` as it was."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-",
                                         suffix=os.path.splitext(path)[1])
    os.close(handle)
    try:
        save(temporary)
        os.chmod(temporary, READABLE)
        os.replace(temporary, path)
    except BaseException:  # a failed or interrupted save: remove the partial file, re-raise
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


@contextlib.contextmanager
def one_process_at_a_time(path: str) -> Iterator[None]:
    """Runs the block while holding an exclusive lock named after `path`.

    The shard processes of `--jobs` start together; around "reuse the saved model, or
    train and save it", the first one trains while the others wait, then reuse it. The
    lock file lives in the temporary folder, not beside `path`.
    """
    key = hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:16]
    with open(os.path.join(tempfile.gettempdir(), f"transfer-toolkit-{key}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
