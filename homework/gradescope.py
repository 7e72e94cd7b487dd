"""The homework where courses grade it: notebook templates, and Gradescope autograders.

    python -m homework.gradescope build tl_mnist                 # autograder_tl_mnist.zip
    python -m homework.gradescope build tl_mnist --out hw1.zip
    python -m homework.gradescope build all --out autograders/   # one zip per homework
    python -m homework.gradescope notebooks                      # homework/*_template.ipynb

`build` makes the zip to upload as the autograder of a Gradescope "Programming
Assignment": setup.sh (a Python virtual environment with the checker's requirements,
installed with pip from the zip's requirements.txt), run_autograder (grades the
student's .py or .ipynb file with `python -m homework.check NAME --gradescope`, which
writes /autograder/results/results.json) and the checker with the repository's files it
imports (homework/check.py, common/, tl_mnist.py; no results, saved models or tests).
Grading needs no network: synthetic data, VGG16 with random weights.

`notebooks` writes each template's notebook from its .py template (`notebook_text`),
so the two cannot drift apart; tests/test_gradescope.py fails when a shipped notebook
differs from what it would write.
"""

import argparse
import ast
import glob
import os
import re
import sys
import zipfile
from collections.abc import Sequence
from typing import Any

from common import files
from common.errors import UserInputError

HOMEWORK_DIR = os.path.dirname(os.path.abspath(__file__))
REPOSITORY = os.path.dirname(HOMEWORK_DIR)
CHECKER = "homework.check"  # the module the autograder runs; the bundle holds what it imports
TEMPLATE_SUFFIX = "_template.py"
# The test suite's, the notebooks' and --log-dir's requirements, not the checker's (it reads
# a handed-in notebook as plain JSON).
DROPPED_REQUIREMENTS = {"pytest", "pytest-xdist", "nbformat", "jupytext", "nbclient",
                        "ipykernel", "tensorboard"}
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # every entry's date: the same files make the same zip
EXECUTABLE, READABLE = 0o755, 0o644
NOTEBOOK_METADATA = {"kernelspec": {"display_name": "Python 3", "language": "python",
                                    "name": "python3"},
                     "language_info": {"name": "python"}}

# Gradescope runs setup.sh once, as root, when it builds the autograder's image.
SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image (Ubuntu):
# a Python virtual environment with the checker's requirements (requirements.txt beside
# this file). Made by `python -m homework.gradescope build @HOMEWORK@`.
set -euo pipefail
AUTOGRADER_ROOT="${AUTOGRADER_ROOT:-/autograder}"
SOURCE="${AUTOGRADER_SOURCE:-$AUTOGRADER_ROOT/source}"  # this zip, unpacked
VENV="${AUTOGRADER_VENV:-$AUTOGRADER_ROOT/venv}"
apt-get update
apt-get install -y --no-install-recommends python3 python3-pip python3-venv
# An environment of its own: newer Ubuntus refuse `pip install` into the system's Python.
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --no-cache-dir --upgrade pip
"$VENV/bin/python" -m pip install --no-cache-dir -r "$SOURCE/requirements.txt"
"""

# Gradescope runs run_autograder for every submission, from /autograder.
RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission: it grades the student's .py or .ipynb file
# (homework @HOMEWORK@) with the course's checker, which writes results/results.json.
# Made by `python -m homework.gradescope build @HOMEWORK@`. Each path can be moved by an
# environment variable, so that a test can run this outside Gradescope.
set -euo pipefail
AUTOGRADER_ROOT="${AUTOGRADER_ROOT:-/autograder}"
SOURCE="${AUTOGRADER_SOURCE:-$AUTOGRADER_ROOT/source}"              # this zip, unpacked
SUBMISSION="${AUTOGRADER_SUBMISSION:-$AUTOGRADER_ROOT/submission}"  # the student's upload
RESULTS="${AUTOGRADER_RESULTS:-$AUTOGRADER_ROOT/results}"           # where Gradescope reads
PYTHON="${AUTOGRADER_PYTHON:-${AUTOGRADER_VENV:-$AUTOGRADER_ROOT/venv}/bin/python}"  # setup.sh's

# Grade a copy: importing the student's file writes __pycache__ beside it, and the
# student's code runs; the upload stays as it was handed in.
COPY="$(mktemp -d)"
trap 'rm -rf "$COPY"' EXIT
WORK="$COPY/submission"
mkdir -p "$WORK" "$RESULTS"
if [ -d "$SUBMISSION" ]; then
    cp -R "$SUBMISSION/." "$WORK/"
fi
cd "$SOURCE"
"$PYTHON" -m homework.check @HOMEWORK@ --gradescope --submission "$WORK" \\
    --results "$RESULTS/results.json"
"""

CHECK_YOUR_WORK = """## Check your work

Save the notebook, then run from the repository's root folder:

    python -m homework.check @HOMEWORK@ --file my_@HOMEWORK@.ipynb

The checker grades the notebook's definitions: it runs the imports, the assignments of
values that call nothing (`CLASSES = (1, 3, 5, 7, 9)`) and the function and class
definitions of its code cells, and skips the rest: cells you add to try your functions
out (training, plots), `%` magics and `!` shell lines. Keep the function names, and do
not let a function use a variable that a skipped line makes."""


# --- the homework's names and templates ----------------------------------------------

def homework_names() -> list[str]:
    """Every homework, by its template homework/<name>_template.py."""
    return sorted(os.path.basename(path)[:-len(TEMPLATE_SUFFIX)]
                  for path in glob.glob(os.path.join(HOMEWORK_DIR, f"*{TEMPLATE_SUFFIX}")))


def template_path(name: str) -> str:
    """The .py template of homework `name`."""
    return os.path.join(HOMEWORK_DIR, f"{name}{TEMPLATE_SUFFIX}")


def notebook_path(name: str) -> str:
    """The notebook template of homework `name`, beside its .py template."""
    return os.path.join(HOMEWORK_DIR, f"{name}_template.ipynb")


# --- notebooks from the .py templates ------------------------------------------------

def definition_start(node: ast.stmt, lines: Sequence[str]) -> int:
    """The 0-based line where a top-level definition's cell starts: its decorators, and
    the comment lines right above it, go with it."""
    start = min([node.lineno, *(decorator.lineno for decorator in
                                getattr(node, "decorator_list", []))]) - 1
    while start > 0 and lines[start - 1].lstrip().startswith("#"):
        start -= 1
    return start


def code_cells(source: str) -> list[str]:
    """A module's code after its docstring, as a notebook's cells: what comes before the
    first function or class (the imports, constants), then one cell per definition."""
    tree = ast.parse(source)
    lines = source.splitlines()
    has_docstring = ast.get_docstring(tree, clean=False) is not None
    begin = tree.body[0].end_lineno if has_docstring else 0
    starts = [definition_start(node, lines) for node in tree.body
              if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    bounds = [begin, *starts, len(lines)]
    cells = ["\n".join(lines[first:last]).strip("\n") for first, last in zip(bounds, bounds[1:])]
    return [cell for cell in cells if cell.strip()]


def introduction(source: str, name: str) -> str:
    """The module docstring as the notebook's first (markdown) cell, its instructions
    speaking of the notebook instead of the .py file."""
    docstring = ast.get_docstring(ast.parse(source)) or f"Homework {name}"
    title, _, rest = docstring.partition("\n")
    text = f"# {title}\n{rest}".replace(f"my_{name}.py", f"my_{name}.ipynb")
    return text.replace("Copy this file", "Copy this notebook")


def notebook_from_source(source: str, name: str) -> Any:
    """The notebook of a homework's .py source (a template, or a filled-in copy): its
    docstring, its code cut into cells, and how to check it.

    Returns:
        An nbformat NotebookNode, valid nbformat 4, with cell ids `<name>-<index>` (not
        nbformat's random ones, so the same source makes the same file).
    """
    import nbformat  # here, not at the top: building a Gradescope zip does not need it

    cells = [nbformat.v4.new_markdown_cell(introduction(source, name)),
             *(nbformat.v4.new_code_cell(cell) for cell in code_cells(source)),
             nbformat.v4.new_markdown_cell(CHECK_YOUR_WORK.replace("@HOMEWORK@", name))]
    for index, cell in enumerate(cells):
        cell["id"] = f"{name}-{index}"
    notebook = nbformat.v4.new_notebook(cells=cells, metadata=NOTEBOOK_METADATA)
    nbformat.validate(notebook)
    return notebook


def notebook_text(name: str) -> str:
    """The text of homework `name`'s notebook template, as `notebooks` writes it."""
    import nbformat  # here, not at the top: building a Gradescope zip does not need it

    with open(template_path(name), encoding="utf-8") as file:
        text = nbformat.writes(notebook_from_source(file.read(), name))
    return text if text.endswith("\n") else text + "\n"


def shipped_text(path: str) -> str | None:
    """The text of the file at `path`; None when there is none."""
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as file:
        return file.read()


def write_notebooks() -> list[str]:
    """Writes every homework's notebook template from its .py template; returns the paths
    it changed."""
    changed = []
    for name in homework_names():
        path, text = notebook_path(name), notebook_text(name)
        if shipped_text(path) != text:
            files.atomic_write_text(path, text)
            changed.append(path)
    return changed


# --- what the checker needs of the repository ----------------------------------------

def module_files(module: str) -> list[str]:
    """The repository's files that `import module` runs: its packages' __init__.py and its
    own file, relative to the repository; empty for a module from elsewhere (keras)."""
    found = []
    parts = module.split(".")
    for depth in range(1, len(parts) + 1):
        base = os.path.join(*parts[:depth])
        if os.path.isfile(os.path.join(REPOSITORY, base, "__init__.py")):
            found.append(os.path.join(base, "__init__.py"))
        elif os.path.isfile(os.path.join(REPOSITORY, f"{base}.py")):
            found.append(f"{base}.py")
            break
        else:
            break  # `from package import name`: a name, not a module
    return found


def imported_modules(path: str) -> set[str]:
    """Every module the repository file `path` imports, anywhere in it (functions too),
    as absolute names; for `from a import b`, both `a` and `a.b` (b may be a module)."""
    package = os.path.dirname(path).replace(os.sep, ".")
    with open(os.path.join(REPOSITORY, path), encoding="utf-8") as file:
        tree = ast.parse(file.read(), filename=path)
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the file's package, `level - 1` packages up
                anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(part for part in [*anchor, base] if part)
            modules |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return modules


def checker_files() -> list[str]:
    """The repository files the checker imports, directly or not, and the templates it
    grades by default: what the autograder zip must hold besides its scripts."""
    needed: set[str] = set()
    waiting = module_files(CHECKER)
    while waiting:
        path = waiting.pop()
        if path not in needed:
            needed.add(path)
            for module in imported_modules(path):
                waiting += module_files(module)
    templates = {os.path.relpath(path, REPOSITORY) for name in homework_names()
                 for path in (template_path(name), notebook_path(name)) if os.path.isfile(path)}
    return sorted(needed | templates)


def requirement_name(line: str) -> str:
    """The package a line of requirements.txt names, lowercased; "" for a comment."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
    return match.group(1).lower() if match else ""


def requirements_text() -> str:
    """The repository's requirements.txt without the test suite's (pytest)."""
    with open(os.path.join(REPOSITORY, "requirements.txt"), encoding="utf-8") as file:
        kept = [line for line in file.read().splitlines()
                if requirement_name(line) not in DROPPED_REQUIREMENTS]
    header = ("# The checker's requirements: the repository's requirements.txt without "
              f"{', '.join(sorted(DROPPED_REQUIREMENTS))}")
    return "\n".join([header, *kept]) + "\n"


# --- the autograder zip --------------------------------------------------------------

def bundle_entries(name: str) -> dict[str, tuple[bytes, int]]:
    """The autograder zip's files for homework `name`: path -> (contents, mode)."""
    entries = {"setup.sh": (SETUP_SH.replace("@HOMEWORK@", name).encode(), EXECUTABLE),
               "run_autograder": (RUN_AUTOGRADER.replace("@HOMEWORK@", name).encode(),
                                  EXECUTABLE),
               "requirements.txt": (requirements_text().encode(), READABLE)}
    for path in checker_files():
        with open(os.path.join(REPOSITORY, path), "rb") as file:
            entries[path.replace(os.sep, "/")] = (file.read(), READABLE)
    return entries


def write_zip(path: str, entries: dict[str, tuple[bytes, int]]) -> None:
    """Writes `entries` as a zip at `path`, files at its root as Gradescope wants them,
    each with its mode (run_autograder executable) and one fixed date."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry, (contents, mode) in entries.items():
            info = zipfile.ZipInfo(entry, date_time=ZIP_TIME)
            info.external_attr = (0o100000 | mode) << 16  # a regular file with this mode
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, contents)


def build(name: str, out: str) -> str:
    """Writes the Gradescope autograder zip of homework `name` to `out`; returns `out`.

    Raises:
        UserInputError: an unknown `name`.
    """
    if name not in homework_names():
        raise UserInputError(f"unknown homework {name!r}: choose from "
                             f"{', '.join(homework_names())} or all")
    entries = bundle_entries(name)
    files.atomic_save(out, lambda temporary: write_zip(temporary, entries))
    return out


def zip_paths(name: str, out: str | None) -> dict[str, str]:
    """Where each zip goes: homework -> path. For one homework --out is the zip (default
    autograder_NAME.zip, inside --out when it is a folder); for all, a folder.

    Raises:
        UserInputError: --out names a .zip file for all of them.
    """
    names = homework_names() if name == "all" else [name]
    if name == "all" and out and out.endswith(".zip"):
        raise UserInputError(f"--out {out}: with all, give a folder for the "
                             f"{len(names)} zips")
    folder_given = name == "all" or (out is not None and os.path.isdir(out))
    if out and not folder_given:
        return {name: out}
    return {each: os.path.join(out or ".", f"autograder_{each}.zip") for each in names}


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit status (0 done, 2 bad input)."""
    parser = argparse.ArgumentParser(prog="python -m homework.gradescope",
                                     description="Notebook templates and Gradescope autograders "
                                     "for the homework.")
    commands = parser.add_subparsers(dest="command", required=True)
    build_command = commands.add_parser("build", help="the zip to upload as a Gradescope "
                                        "Programming Assignment's autograder")
    build_command.add_argument("name", help=f"the homework ({', '.join(homework_names())}) "
                               "or all")
    build_command.add_argument("--out", help="the zip (default autograder_NAME.zip); with "
                               "all, the folder for the zips (default: here)")
    commands.add_parser("notebooks", help="write homework/NAME_template.ipynb from each "
                        ".py template")
    args = parser.parse_args(argv)
    if args.command == "notebooks":
        changed = write_notebooks()
        print("\n".join(f"wrote {os.path.relpath(path)}" for path in changed)
              or "the notebook templates are up to date")
        return 0
    try:
        for name, out in zip_paths(args.name, args.out).items():
            build(name, out)
            print(f"wrote {out}: upload it as the autograder of homework {name}'s "
                  "Gradescope Programming Assignment")
    except UserInputError as error:
        print(f"homework.gradescope: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
