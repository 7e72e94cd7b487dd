# %% [markdown]
# ## 0. Set up
#
# Run this cell first. On Colab it fetches the course's repository and installs what it
# needs; on your own Jupyter it finds the repository this notebook sits in. It then says
# which device will train. `QUICK = True` gives tiny runs of about a minute; set
# `QUICK = False` (then *Run all* again) for the lecture's own sizes, which take minutes
# on a CPU, less on a GPU.

# %%
QUICK = True  # True: --quick-sized runs (about a minute); False: the lecture's sizes
REPOSITORY_URL = ""  # the course repository's clone URL, needed on Colab only

import os
import pathlib
import shlex
import subprocess
import sys

ON_COLAB = "google.colab" in sys.modules
if ON_COLAB:
    if not REPOSITORY_URL:
        raise ValueError("REPOSITORY_URL is empty: set it at the top of this cell to the "
                         "course repository's clone URL (ask your instructor), then run "
                         "the cell again")
    ROOT = pathlib.Path("/content") / pathlib.Path(REPOSITORY_URL.rstrip("/")).stem
    if not ROOT.is_dir():  # (run again, the cell reuses its clone)
        subprocess.run(["git", "clone", "--depth", "1", REPOSITORY_URL, str(ROOT)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r",
                    str(ROOT / "requirements.txt")], check=True)
else:  # this notebook sits in notebooks/: the repository is the folder with common/ in it
    ROOT = next((folder for folder in (pathlib.Path.cwd(), *pathlib.Path.cwd().parents)
                 if (folder / "common" / "runs" / "cli.py").is_file()), None)
    if ROOT is None:
        raise FileNotFoundError(f"no course repository in {pathlib.Path.cwd()} or above it: "
                                "open the notebook from the repository's notebooks/ folder")
os.chdir(ROOT)  # the scripts' relative paths (results/, saved_models/) start here
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # so that `import tl_mnist` finds the lecture's script
# More flags from the environment (the tests set sizes and output folders with it)
EXTRA_FLAGS = shlex.split(os.environ.get("TL_NOTEBOOK_FLAGS", ""))

from common import startup

startup.prepare_tensorflow()  # before keras, as every script does
from common.runs.device import configure_device

DEVICE = configure_device()
print(f"repository: {ROOT}\ndevice: {DEVICE}")
print("QUICK = True: tiny runs, to see every step" if QUICK
      else "QUICK = False: the lecture's sizes")
if ON_COLAB and not DEVICE.startswith("GPU"):
    print("No GPU. For one: Runtime > Change runtime type > GPU, then run all cells again "
          "(a CPU works too, only slower).")
