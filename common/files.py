"""Files written whole or not at all, and one process at a time where several share one.

Every result, model and figure is written under a temporary name and renamed, so a
crash or Ctrl-C never leaves a half-written file behind.
"""

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Callable, Iterator

# mkstemp makes files only their owner can read; results are meant to be shared.
READABLE = 0o644


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
    """Runs the block while holding an exclusive lock on `path + ".lock"`.

    The shard processes of `--jobs` start together; around "reuse the saved model, or
    train and save it", the first one trains while the others wait, then reuse it.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
