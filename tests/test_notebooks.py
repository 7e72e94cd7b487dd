"""The lecture notebooks (notebooks/<script>.ipynb): generated from their sources, calling
only what the scripts define, and running headless from the first cell to the last.

Each notebook is executed by a real Jupyter kernel (nbclient, ipykernel), offline, at
quick sizes trimmed further through the TL_NOTEBOOK_FLAGS variable that its set-up cell
reads, with every output in a temporary folder.
"""

import ast
import importlib
import importlib.util
import json
import pathlib
import types

import nbclient
import nbformat
import pytest

from common.lesson import data
from conftest import ROOT
from notebooks import build

NOTEBOOKS = pathlib.Path(ROOT) / "notebooks"
CELL_TIMEOUT_S = 240  # a cell that runs longer has hung: the longest takes about 40 s
# Per notebook: the flags that keep it offline (no MNIST, CIFAR-10 or weights download)
# and small; all four together run in 1.5 to 2.5 minutes on 2 shared cores.
TEST_FLAGS = {
    "tl_mnist": ["--dataset", "digits", "--trials", "2", "--epochs", "3"],
    "mnist_vgg": ["--dataset", "digits", "--weights", "none", "--trials", "1", "--epochs", "2"],
    "cifar_vgg": ["--data", data.CIFAR10_SAMPLE, "--weights", "none", "--epochs", "2",
                  "--test-size", "200"],
    "transferability": ["--dataset", "digits", "--epochs", "2", "--source-epochs", "2",
                        "--source-size", "500"],
}


def code_cells(notebook: nbformat.NotebookNode) -> list[str]:
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


def missing_names(sources: list[str]) -> list[str]:
    """Every `module.name` in `sources` whose module (bound there by an import) has no
    such attribute: a function a notebook calls that its script renamed or dropped."""
    trees = [ast.parse(source) for source in sources]
    modules = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules.update({alias.asname or alias.name: alias.name for alias in node.names
                                if "." not in alias.name or alias.asname})
            elif isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    if importlib.util.find_spec(node.module) and is_module(full):
                        modules[alias.asname or alias.name] = full
    missing = []
    for tree in trees:
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in modules):
                module = importlib.import_module(modules[node.value.id])
                if not hasattr(module, node.attr):
                    missing.append(f"{node.value.id}.{node.attr}")
    return sorted(set(missing))


def is_module(name: str) -> bool:
    """Whether `name` is an importable module (not a class or function of one)."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # its parent is no package: a name inside a module
        return False


def test_every_script_has_its_notebook_and_sources():
    assert set(build.SCRIPTS) == {"tl_mnist", "mnist_vgg", "cifar_vgg", "transferability"}
    for script in build.SCRIPTS:
        assert build.source_path(script).is_file() and build.notebook_path(script).is_file()


def test_committed_notebooks_are_what_the_build_writes():
    assert build.stale_notebooks() == [], "run python -m notebooks.build and commit the result"
    for script in build.SCRIPTS:  # ... which has no outputs
        notebook = nbformat.read(build.notebook_path(script), as_version=4)
        assert all(not cell.get("outputs") and cell.get("execution_count") is None
                   for cell in notebook.cells if cell.cell_type == "code")


def test_a_changed_source_makes_its_notebook_stale(monkeypatch, tmp_path):
    source = tmp_path / "tl_mnist.pct.py"
    source.write_text(build.source_path("tl_mnist").read_text() + "\n# %%\nprint('new')\n")
    monkeypatch.setattr(build, "source_path", lambda script: (
        source if script == "tl_mnist" else NOTEBOOKS / f"{script}.pct.py"))
    assert build.stale_notebooks() == ["tl_mnist"]
    assert build.main(["--check"]) == 1


@pytest.mark.parametrize("script", build.SCRIPTS)
def test_notebook_calls_only_what_the_scripts_define(script):
    notebook = nbformat.read(build.notebook_path(script), as_version=4)
    sources = code_cells(notebook)
    assert any(f"{script}." in source for source in sources)  # it walks the script's steps
    assert missing_names(sources) == []


def test_a_renamed_function_is_found():
    sources = ["import tl_mnist\nfrom common.runs import summary\n",
               "tl_mnist.lecture_cnn(5)\ntl_mnist.lecture_network(5)\nsummary.compare_all()"]
    assert missing_names(sources) == ["summary.compare_all", "tl_mnist.lecture_network"]


def test_the_clone_url_fills_the_setup_cell_and_github_adds_a_colab_badge():
    github = build.build_notebook("mnist_vgg", "https://github.com/someone/tl-course.git", "dev")
    badge = github.cells[1].source
    assert badge.startswith("[![Open In Colab]") and ("colab.research.google.com/github/"
                                                     "someone/tl-course/blob/dev/notebooks/"
                                                     "mnist_vgg.ipynb") in badge
    setup = next(cell.source for cell in github.cells if cell.cell_type == "code")
    assert 'REPOSITORY_URL = "https://github.com/someone/tl-course.git"' in setup
    assert "google.colab" in setup and "QUICK = True" in setup

    elsewhere = build.build_notebook("mnist_vgg", "https://gitlab.com/someone/tl-course.git",
                                     "main")
    assert "Open In Colab" not in json.dumps(elsewhere)
    assert ('REPOSITORY_URL = "https://gitlab.com/someone/tl-course.git"'
            in code_cells(elsewhere)[0])
    ssh = build.build_notebook("mnist_vgg", "git@github.com:someone/tl-course.git", "main")
    assert ('REPOSITORY_URL = "https://github.com/someone/tl-course.git"'  # Colab has no key
            in code_cells(ssh)[0]) and "Open In Colab" in ssh.cells[1].source
    unknown = build.build_notebook("mnist_vgg", None, "main")
    assert 'REPOSITORY_URL = ""' in code_cells(unknown)[0]


def outputs_text(notebook: nbformat.NotebookNode) -> str:
    """Every text the executed cells printed or displayed."""
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", ""))
            texts.append(output.get("data", {}).get("text/plain", ""))
            texts.append(output.get("data", {}).get("text/html", ""))
    return "\n".join(texts)


def repository_outputs(script: str) -> dict[str, float]:
    """The script's result files in the repository's own results/ folder, with their
    modification times: a test run must leave them as they were."""
    results = pathlib.Path(ROOT) / "results"
    return {path.name: path.stat().st_mtime for path in results.glob(f"{script}*")}


@pytest.mark.parametrize("script", build.SCRIPTS)
def test_notebook_runs_headless_offline(script, tmp_path, monkeypatch):
    out, models = tmp_path / "results", tmp_path / "saved_models"
    flags = [*TEST_FLAGS[script], "--out", str(out)]
    if hasattr(importlib.import_module(script).Config, "models_dir"):  # where bases are saved
        flags += ["--models-dir", str(models)]
    # (the kernel inherits this process's environment)
    monkeypatch.setenv("TL_NOTEBOOK_FLAGS", " ".join(flags))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # no cached data or weights
    before = repository_outputs(script)
    notebook = nbformat.read(build.notebook_path(script), as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()  # raises CellExecutionError, with the cell's traceback, on any error

    errors = [output for cell in notebook.cells for output in cell.get("outputs", [])
              if output.output_type == "error"]
    assert errors == []
    shown = outputs_text(notebook)
    assert "Trainable params" in shown  # the model summaries
    assert "summary: test accuracy" in shown
    results = json.loads((out / f"{script}.json").read_text())
    assert results["complete"] and results["plots"]
    last = [cell for cell in notebook.cells if cell.cell_type == "code"][-1]
    shown_plots = [output for output in last.outputs if "image/png" in output.get("data", {})]
    assert len(shown_plots) == len(results["plots"])  # every plot the run drew, inline
    assert repository_outputs(script) == before


def test_setup_cell_finds_the_repository_from_notebooks(tmp_path, monkeypatch):
    """The set-up cell's local branch, outside a kernel: started in notebooks/, it goes to
    the repository root and puts it on sys.path."""
    setup = code_cells(build.build_notebook("tl_mnist", None, "main"))[0]
    monkeypatch.chdir(NOTEBOOKS)
    monkeypatch.setenv("TL_NOTEBOOK_FLAGS", "--trials 1")
    namespace: dict = {"__name__": "setup_cell"}
    exec(compile(setup, "setup cell", "exec"), namespace)  # noqa: S102 - the cell under test
    assert pathlib.Path.cwd() == pathlib.Path(ROOT).resolve()
    assert namespace["ROOT"] == pathlib.Path(ROOT).resolve()
    assert namespace["EXTRA_FLAGS"] == ["--trials", "1"] and namespace["QUICK"] is True
    assert isinstance(namespace["DEVICE"], str) and not namespace["ON_COLAB"]
    assert isinstance(namespace["configure_device"], types.FunctionType)
