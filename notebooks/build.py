"""Writes the lecture notebooks, notebooks/<script>.ipynb, from their cell sources.

Each notebook's cells are kept as plain Python, in jupytext's "percent" format, beside
it: notebooks/<script>.pct.py holds the lecture's steps, notebooks/_setup.pct.py the
set-up cells every notebook starts with (Colab or local Jupyter, the device, QUICK).
The .ipynb files are generated without outputs, so that they never drift from their
sources; tests/test_notebooks.py fails when a committed notebook differs from what
this command writes, and runs every notebook.

    python -m notebooks.build                          # write every notebook
    python -m notebooks.build --repository URL         # with this clone URL for Colab
    python -m notebooks.build --check                  # exit 1 if a notebook is stale

The clone URL (default: `git remote get-url origin`, when there is one) goes into the
set-up cell's REPOSITORY_URL, which Colab needs to fetch the repository; a GitHub URL
also adds an "Open in Colab" badge. Without one REPOSITORY_URL stays empty, to be set
in the notebook.
"""

import argparse
import json
import pathlib
import re
import subprocess
import sys

import jupytext
import nbformat

from common.files import atomic_write_text

HERE = pathlib.Path(__file__).resolve().parent
SCRIPTS = ("tl_mnist", "mnist_vgg", "cifar_vgg", "transferability")  # one notebook each
SETUP = HERE / "_setup.pct.py"
URL_LINE = 'REPOSITORY_URL = ""'  # the set-up cell's line that the clone URL fills in
GITHUB = re.compile(r"^(?:https://github\.com/|git@github\.com:|ssh://git@github\.com/)"
                    r"(?P<owner>[^/]+)/(?P<name>[^/]+?)(?:\.git)?/?$")
COLAB_BADGE = ("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
               "(https://colab.research.google.com/github/{owner}/{name}/blob/{branch}/"
               "notebooks/{script}.ipynb)")
KERNEL = {"display_name": "Python 3", "language": "python", "name": "python3"}


def source_path(script: str) -> pathlib.Path:
    """Where a notebook's own cells are kept."""
    return HERE / f"{script}.pct.py"


def notebook_path(script: str) -> pathlib.Path:
    """Where a script's notebook is written."""
    return HERE / f"{script}.ipynb"


def origin_url() -> str | None:
    """`git remote get-url origin` of the repository, or None where there is none."""
    try:
        found = subprocess.run(["git", "remote", "get-url", "origin"], cwd=HERE,
                               capture_output=True, text=True, check=False)
    except FileNotFoundError:  # no git installed: no remote to know of
        return None
    if found.returncode != 0:  # (no remote called origin)
        return None
    return found.stdout.strip() or None


def read_cells(path: pathlib.Path) -> list[tuple[str, str]]:
    """(cell type, source) of each cell of a percent-format file, without jupytext's
    metadata, so that the notebook holds only what the file says."""
    return [(cell.cell_type, cell.source)
            for cell in jupytext.read(path, fmt="py:percent").cells]


def clone_url(repository: str) -> str:
    """The URL that Colab clones: a GitHub repository over https (Colab has no SSH key
    for git@github.com:...), any other as given."""
    match = GITHUB.match(repository)
    return f"https://github.com/{match['owner']}/{match['name']}.git" if match else repository


def setup_cells(repository: str | None) -> list[tuple[str, str]]:
    """The set-up cells, with `repository`'s `clone_url` as REPOSITORY_URL (None: left
    empty).

    Raises:
        ValueError: the set-up file lost its REPOSITORY_URL line (which the URL fills).
    """
    cells = read_cells(SETUP)
    lines = sum(source.count(URL_LINE) for _, source in cells)
    if lines != 1:
        raise ValueError(f"{SETUP} must hold the line {URL_LINE} once (found {lines}): "
                         "build.py fills it with the clone URL")
    filled = f"REPOSITORY_URL = {json.dumps(clone_url(repository))}" if repository else URL_LINE
    return [(kind, source.replace(URL_LINE, filled)) for kind, source in cells]


def colab_badge(script: str, repository: str | None, branch: str) -> str | None:
    """The "Open in Colab" badge of a notebook on GitHub, or None for another host."""
    match = GITHUB.match(repository or "")
    return COLAB_BADGE.format(**match.groupdict(), branch=branch,
                              script=script) if match else None


def build_notebook(script: str, repository: str | None, branch: str) -> nbformat.NotebookNode:
    """The notebook of `script`: its title cell, the badge (for GitHub), the set-up
    cells, then its steps. Cell ids are numbered, so the same sources always give
    the same file."""
    own = read_cells(source_path(script))
    badge = colab_badge(script, repository, branch)
    cells = [own[0], *([("markdown", badge)] if badge else []), *setup_cells(repository),
             *own[1:]]
    make = {"markdown": nbformat.v4.new_markdown_cell, "code": nbformat.v4.new_code_cell}
    notebook = nbformat.v4.new_notebook(
        cells=[make[kind](source, id=f"{script}-{index:02d}")
               for index, (kind, source) in enumerate(cells)],
        metadata={"kernelspec": KERNEL, "language_info": {"name": "python"},
                  "generated_by": {"command": "python -m notebooks.build",
                                   "sources": [f"notebooks/{source_path(script).name}",
                                               f"notebooks/{SETUP.name}"],
                                   "repository": repository, "branch": branch}})
    nbformat.validate(notebook)
    return notebook


def notebook_text(script: str, repository: str | None, branch: str) -> str:
    """The file `build_notebook` gives, as written (nbformat's layout, a final newline)."""
    return nbformat.writes(build_notebook(script, repository, branch)) + "\n"


def recorded_settings(script: str) -> tuple[str | None, str]:
    """The clone URL and branch the written notebook was built with (from its metadata;
    None and "main" where it is not written yet), so that a check compares the cells,
    not a URL chosen at build time, and a rebuild keeps the URL."""
    path = notebook_path(script)
    written = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"metadata": {}}
    generated = written["metadata"].get("generated_by", {})
    return generated.get("repository"), generated.get("branch", "main")


def stale_notebooks() -> list[str]:
    """The scripts whose written notebook is missing or differs from what their
    sources give now."""
    return [script for script in SCRIPTS if not notebook_path(script).is_file()
            or notebook_path(script).read_text(encoding="utf-8")
            != notebook_text(script, *recorded_settings(script))]


def main(argv: list[str] | None = None) -> int:
    """Writes every notebook (or, with --check, only says which are stale: exit status 1)."""
    parser = argparse.ArgumentParser(prog="python -m notebooks.build", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repository", default=None, metavar="URL",
                        help="the clone URL that Colab fetches (default: git remote origin's "
                             "URL; else the one the notebooks were built with; else none, "
                             "and REPOSITORY_URL stays empty)")
    parser.add_argument("--branch", default=None,
                        help="the branch that the Colab badge opens (default: the one the "
                             "notebooks were built with, else main)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a notebook differs from its sources")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_notebooks()
        for script in stale:
            print(f"notebooks/{script}.ipynb differs from its sources: run "
                  "python -m notebooks.build", file=sys.stderr)
        return 1 if stale else 0
    recorded_url, recorded_branch = recorded_settings(SCRIPTS[0])
    repository = args.repository or origin_url() or recorded_url
    for script in SCRIPTS:
        atomic_write_text(str(notebook_path(script)),
                          notebook_text(script, repository, args.branch or recorded_branch))
        print(f"wrote notebooks/{script}.ipynb")
    if repository is None:
        print("no clone URL (no git remote origin, no --repository): on Colab, set "
              "REPOSITORY_URL in each notebook's first code cell")
    return 0


if __name__ == "__main__":
    sys.exit(main())
