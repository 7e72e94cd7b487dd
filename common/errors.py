"""What every room of `common` shares: bad input (and how to name its flag), and a
request to stop.

Kept apart from the command line (`common.runs.cli`) so that the lesson and the engine
can raise and check them without importing argparse or the run's bookkeeping.
"""

import textwrap
import threading


class UserInputError(ValueError):
    """Bad input from the user: a flag, a file or its contents. Says what to fix."""


# Set by Ctrl-C or SIGTERM while a script runs (`common.runs.cli.run_script`); training
# stops at the end of the epoch in progress (`common.engine.side_by_side.EpochProgress`),
# the plain path after the trial in progress. A KeyboardInterrupt raised at a random
# point inside TensorFlow's C++ code can come out as a RuntimeError instead, hence a flag.
STOP_REQUESTED = threading.Event()


def flag(name: str) -> str:
    """The command-line flag of a config field, for messages: "batch_size" -> "--batch-size"."""
    return "--" + name.replace("_", "-")


def brief(error: BaseException, limit: int = 120) -> str:
    """The first line of an error's message, at most `limit` characters, cut between
    words (never mid-word) with " ..." where it was cut."""
    lines = str(error).strip().splitlines()
    return textwrap.shorten(lines[0], limit, placeholder=" ...") if lines else ""
