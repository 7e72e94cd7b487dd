"""Homework graded where courses grade: the checker's results.json for Gradescope, the
autograder zip of `python -m homework.gradescope build` run as Gradescope runs it (bash
run_autograder, its paths moved into a temporary folder), and notebooks handed in
instead of .py files.

Students' files are the templates filled in as in tests/test_homework.py (SOLUTIONS,
MISTAKES); results.json is held to Gradescope's autograder specification
(https://gradescope-autograders.readthedocs.io/en/latest/specs/).
"""

import ast
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator

import nbformat
import pytest

from conftest import ROOT
from homework import check, gradescope
from test_homework import MISTAKES, SOLUTIONS, fill_in, write_solution

# The fields Gradescope's specification defines, at the top of results.json and per test.
RESULT_FIELDS = {"score", "execution_time", "output", "output_format", "test_output_format",
                 "test_name_format", "visibility", "stdout_visibility", "extra_data", "tests",
                 "leaderboard"}
TEST_FIELDS = {"score", "max_score", "status", "name", "name_format", "number", "output",
               "output_format", "tags", "visibility", "extra_data"}
VISIBILITIES = {"hidden", "after_due_date", "after_published", "visible"}

# Cells a student adds to try the functions out; graded, any of them would fail every step.
TRY_OUT_CELLS = ["%matplotlib inline\n!nvidia-smi",
                 "%%time\nraise SystemExit('a %%time cell ran')",
                 "model = build_transfer_model(None, 5)\nmodel.fit(None, None, epochs=100)",
                 "raise SystemExit('a top-level statement ran: the checker must skip it')"]

# Kinds of mistakes on tl_mnist beyond MISTAKES: (kind, bodies, step that fails, its line).
MISTAKE_KINDS = [
    ("todo left", {"build_transfer_model": 'raise NotImplementedError("TODO 4: not yet")'},
     "transfer model",
     "FAIL  transfer model: TODO build_transfer_model not done (NotImplementedError: TODO 4: "
     "not yet)"),
    ("crash", {"new_output_layer": "return layers.Dense()"}, "new head",
     "FAIL  new head: new_output_layer raised TypeError: "),
]


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def expect_valid_results(results: dict, name: str) -> None:
    """Fails unless `results` follows Gradescope's specification, with one test per step
    of homework `name`, each out of its step's points, and a score that is their sum."""
    assert set(results) <= RESULT_FIELDS, set(results) - RESULT_FIELDS
    assert {"score", "output", "visibility", "stdout_visibility", "tests"} <= set(results)
    assert isinstance(results["output"], str) and results["output"]
    assert results["visibility"] == results["stdout_visibility"] == "visible"
    assert isinstance(results["execution_time"], int) and results["execution_time"] >= 0
    steps = check.STEPS[name]
    assert isinstance(results["tests"], list) and len(results["tests"]) == len(steps)
    for todo, (test, step) in enumerate(zip(results["tests"], steps), start=1):
        assert set(test) <= TEST_FIELDS, set(test) - TEST_FIELDS
        assert {"name", "score", "max_score", "output", "visibility"} <= set(test)
        assert test["name"] == f"{step.name} ({step.function})" and test["number"] == str(todo)
        assert is_number(test["score"]) and is_number(test["max_score"])
        assert test["max_score"] == step.points and test["score"] in (0, step.points)
        assert test["status"] == ("passed" if test["score"] == step.points else "failed")
        assert test["visibility"] in VISIBILITIES
        prefix = "PASS" if test["status"] == "passed" else "FAIL"
        assert test["output"].startswith(f"{prefix}  {step.name}"), test["output"]
    assert is_number(results["score"])
    assert results["score"] == sum(test["score"] for test in results["tests"])


def graded(tmp_path, name: str, path: str) -> tuple[int, dict]:
    """The checker's exit status and results.json for the file at `path`."""
    out = tmp_path / "out" / "results.json"
    status = check.main([name, "--file", path, "--results", str(out)])
    results = json.loads(out.read_text())
    expect_valid_results(results, name)
    return status, results


def total(name: str) -> float:
    return sum(step.points for step in check.STEPS[name])


def write_notebook(tmp_path, name: str, **changes: str) -> str:
    """The template of `name` filled in with SOLUTIONS (some bodies replaced) as a notebook,
    made by the notebook templates' own generator, with a student's try-out cells."""
    with open(check.template_path(name)) as file:
        source = fill_in(file.read(), {**SOLUTIONS[name], **changes})
    notebook = gradescope.notebook_from_source(source, name)
    notebook.cells[-1:-1] = [nbformat.v4.new_code_cell(cell) for cell in TRY_OUT_CELLS]
    path = tmp_path / f"my_{name}.ipynb"
    nbformat.write(notebook, str(path))
    return str(path)


# --- results.json ----------------------------------------------------------------------

@pytest.mark.parametrize("name", list(check.STEPS))
def test_a_correct_solution_scores_full_marks(name, tmp_path):
    status, results = graded(tmp_path, name, write_solution(tmp_path, name))
    assert status == 0
    assert results["score"] == total(name)
    assert [test["output"] for test in results["tests"]] == \
        [f"PASS  {step.name}" for step in check.STEPS[name]]
    steps = len(check.STEPS[name])
    assert results["output"] == (f"{name} (my_{name}.py): {steps} of {steps} steps pass, "
                                 f"{total(name):g} of {total(name):g} points")


@pytest.mark.parametrize(
    "name, bodies, failing_step, words",
    [(name, {function: body}, step, words) for name, function, body, step, words in MISTAKES]
    + [("tl_mnist", bodies, step, [line]) for _, bodies, step, line in MISTAKE_KINDS],
    ids=[f"{name}-{function}" for name, function, *_ in MISTAKES]
    + [kind.replace(" ", "_") for kind, *_ in MISTAKE_KINDS])
def test_a_mistake_loses_its_steps_points_and_says_what_to_fix(
        name, bodies, failing_step, words, tmp_path):
    status, results = graded(tmp_path, name, write_solution(tmp_path, name, **bodies))
    assert status == 1
    step = next(step for step in check.STEPS[name] if step.name == failing_step)
    assert results["score"] == total(name) - step.points
    failed = [test for test in results["tests"] if test["status"] == "failed"]
    assert [test["name"] for test in failed] == [f"{step.name} ({step.function})"]
    assert failed[0]["score"] == 0
    for word in words:
        assert word in failed[0]["output"], failed[0]["output"]
    assert f"{len(check.STEPS[name]) - 1} of {len(check.STEPS[name])} steps pass" \
        in results["output"]


def test_a_missing_function_and_a_file_that_does_not_import_score_what_they_earn(tmp_path):
    renamed = tmp_path / "renamed" / "my_tl_mnist.py"
    renamed.parent.mkdir()
    text = open(write_solution(tmp_path, "tl_mnist")).read()
    renamed.write_text(text.replace("def new_output_layer(", "def output_layer("))
    _, results = graded(tmp_path, "tl_mnist", str(renamed))
    assert results["score"] == total("tl_mnist") - 1
    assert results["tests"][2]["output"] == ("FAIL  new head: no function new_output_layer in "
                                             "my_tl_mnist.py: keep the template's function names")
    broken = tmp_path / "broken.py"
    broken.write_text("def split_classes(:\n")
    _, results = graded(tmp_path, "tl_mnist", str(broken))
    assert results["score"] == 0
    assert all(f"could not import {broken}: importing broken.py raised SyntaxError"
               in test["output"] for test in results["tests"])


@pytest.mark.parametrize("uploaded, reason", [
    ([], "no .py or .ipynb file in it: hand in your filled-in copy of tl_mnist_template.py "
         "or .ipynb"),
    (["a.py", "b.ipynb"], "2 files to grade (a.py, b.ipynb): hand in one .py or .ipynb file"),
])
def test_gradescope_mode_scores_no_single_file_0_with_the_reason(uploaded, reason, tmp_path):
    submission = tmp_path / "submission"
    submission.mkdir()
    for entry in uploaded:
        (submission / entry).write_text("")
    out = tmp_path / "results" / "results.json"
    status = check.main(["tl_mnist", "--gradescope", "--submission", str(submission),
                         "--results", str(out)])
    assert status == 0  # the grade is in results.json
    results = json.loads(out.read_text())
    expect_valid_results(results, "tl_mnist")
    assert results["score"] == 0
    assert results["output"].splitlines() == [
        "tl_mnist: nothing graded, 0 of 4 steps pass, 0 of 5 points",
        f"--submission {submission}: {reason}"]
    assert all(test["output"].endswith(f"--submission {submission}: {reason}")
               for test in results["tests"])


def test_submission_finds_the_one_file_below_and_skips_hidden_and_mac_folders(tmp_path):
    submission = tmp_path / "submission"
    for folder in ("homework", ".ipynb_checkpoints", "__MACOSX", "__pycache__"):
        (submission / folder).mkdir(parents=True)
    solution = write_solution(tmp_path, "tl_mnist")
    (submission / "homework" / "my_tl_mnist.py").write_text(open(solution).read())
    for hidden in (".ipynb_checkpoints/my_tl_mnist-checkpoint.ipynb", "__MACOSX/._my.py",
                   "__pycache__/my.py", ".hidden.py", "notes.txt"):
        (submission / hidden).write_text("")
    assert check.submitted_file(str(submission), "tl_mnist") == \
        str(submission / "homework" / "my_tl_mnist.py")


def test_results_flags_grade_one_homework_and_an_unwritable_path_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        check.main(["all", "--results", str(tmp_path / "results.json")])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(
        "error: --results grades one homework: name it instead of all")
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    out = blocker / "results.json"
    assert check.main(["tl_mnist", "--results", str(out)]) == 2
    error = capsys.readouterr().err.splitlines()
    assert len(error) == 1 and error[0].startswith(
        f"homework.check: error: --results {out}: cannot write it (")


# --- notebooks -------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(check.STEPS))
def test_shipped_notebook_template_is_what_the_generator_makes(name):
    assert gradescope.homework_names() == sorted(check.STEPS)
    with open(gradescope.notebook_path(name), encoding="utf-8") as file:
        shipped = file.read()
    assert shipped == gradescope.notebook_text(name), (
        f"{gradescope.notebook_path(name)} differs from its .py template: run "
        "python -m homework.gradescope notebooks")
    notebook = nbformat.reads(shipped, as_version=4)
    assert f"--file my_{name}.ipynb" in notebook.cells[0].source


@pytest.mark.parametrize("name", list(check.STEPS))
def test_notebook_template_fails_every_step_naming_its_todo(name):
    results = check.check(name, gradescope.notebook_path(name))
    for number, (result, step) in enumerate(zip(results, check.STEPS[name]), start=1):
        assert result.line().startswith(f"FAIL  {step.name}: TODO {step.function} not done "
                                        f"(NotImplementedError: TODO {number}: ")


@pytest.mark.parametrize("name", list(check.STEPS))
def test_a_filled_in_notebook_passes_every_step_its_try_out_cells_skipped(name, tmp_path):
    results = check.check(name, write_notebook(tmp_path, name))
    assert [result.line() for result in results] == \
        [f"PASS  {step.name}" for step in check.STEPS[name]]


def test_a_crash_in_a_notebook_names_its_cell_and_line(tmp_path):
    path = write_notebook(tmp_path, "tl_mnist", new_output_layer="return layers.Dense()")
    cells = nbformat.read(path, as_version=4).cells
    cell = next(number for number, cell in enumerate(cells, start=1)
                if "def new_output_layer(" in cell.source)
    line = cells[cell - 1].source.splitlines().index("    return layers.Dense()") + 1
    results = {result.step: result for result in check.check("tl_mnist", path)}
    message = results["new head"].message
    assert message.startswith("new_output_layer raised TypeError: "), message
    assert message.endswith(f"(my_tl_mnist.ipynb cell {cell} line {line})"), message
    assert [step for step, result in results.items() if not result.passed] == ["new head"]


def test_a_notebook_runs_imports_constants_and_definitions_only(tmp_path):
    cells = ["%pip install keras\n!ls\nfiles = !ls\nimport numpy as np\nnp.pad?\n"
             "SCALE = 2 * 3\nCLASSES: tuple = (1, 3)\nrng = np.random.default_rng(0)",
             "%%bash\necho this is not Python",
             "def split_classes(images, labels, classes):\n    return images, labels * SCALE",
             "class Head:\n    units = SCALE",
             "ok = (SCALE\n      != 5)",
             "for _ in range(3):\n    LOOPED = True",
             "if True:\n    BRANCHED = True",
             "np.random.seed(0)\nNAMED = print('ran')\nnp.VALUE = 1\n"
             "raise SystemExit('a top-level statement ran')"]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# mine"),
                                               *map(nbformat.v4.new_code_cell, cells)])
    path = tmp_path / "mine.ipynb"
    nbformat.write(notebook, str(path))
    module = check.load_submission(str(path), "notebook_test")
    assert module.SCALE == 6 and module.CLASSES == (1, 3) and module.ok is True
    assert module.Head.units == 6 and module.split_classes(None, 2, None) == (None, 12)
    assert module.np.__name__ == "numpy" and not hasattr(module.np, "VALUE")
    assert not {"rng", "files", "LOOPED", "BRANCHED", "NAMED"} & set(vars(module))


def test_a_file_that_is_not_a_notebook_fails_every_step_saying_so(tmp_path):
    path = tmp_path / "mine.ipynb"
    path.write_text("def split_classes(images, labels, classes):\n    pass\n")
    results = check.check("tl_mnist", str(path))
    assert all("mine.ipynb is not a Jupyter notebook (not JSON: " in result.message
               for result in results)


# --- the autograder zip, run as Gradescope runs it -------------------------------------

@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Iterator[tuple[zipfile.ZipFile, str]]:
    """The tl_mnist autograder zip, built by the one command, and where it is unpacked."""
    folder = tmp_path_factory.mktemp("bundle")
    out = folder / "autograder_tl_mnist.zip"
    built = subprocess.run([sys.executable, "-m", "homework.gradescope", "build", "tl_mnist",
                            "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                           timeout=120)
    assert built.returncode == 0, built.stderr
    assert built.stdout.startswith(f"wrote {out}: upload it as the autograder")
    with zipfile.ZipFile(out) as archive:
        archive.extractall(folder / "source")
        yield archive, str(folder / "source")


def test_the_bundle_holds_its_scripts_requirements_and_the_checker_only(bundle):
    archive, source = bundle
    names = set(archive.namelist())
    assert {"setup.sh", "run_autograder", "requirements.txt", "homework/__init__.py",
            "homework/check.py", "homework/tl_mnist_template.py",
            "homework/tl_mnist_template.ipynb", "tl_mnist.py", "common/lesson/transfer.py",
            "common/runs/device.py", "common/startup.py"} <= names
    assert not [name for name in names if name.split("/")[0] in
                {"results", "saved_models", "tests", "bench", "docs"}
                or "__pycache__" in name or name.endswith(".npz")]
    assert "homework/test_homework.py" not in names
    for script in ("setup.sh", "run_autograder"):
        assert (archive.getinfo(script).external_attr >> 16) & 0o777 == 0o755
        syntax = subprocess.run(["bash", "-n", os.path.join(source, script)],
                                capture_output=True, text=True)
        assert syntax.returncode == 0, syntax.stderr
    requirements = archive.read("requirements.txt").decode().splitlines()
    packages = {gradescope.requirement_name(line) for line in requirements} - {""}
    assert {"tensorflow", "keras", "numpy"} <= packages and "pytest" not in packages
    assert 'pip install --no-cache-dir -r "$SOURCE/requirements.txt"' in \
        archive.read("setup.sh").decode()
    assert "-m homework.check tl_mnist --gradescope" in archive.read("run_autograder").decode()


@pytest.mark.parametrize("suffix", [".py", ".ipynb"])
@pytest.mark.parametrize("correct", [True, False], ids=["correct", "mistake"])
def test_run_autograder_grades_an_upload_as_gradescope_does(bundle, suffix, correct, tmp_path):
    _, source = bundle
    submission = tmp_path / "submission"
    submission.mkdir()
    mistake = {} if correct else {"freeze_layers": "pass"}  # the freezing step fails
    write = write_notebook if suffix == ".ipynb" else write_solution
    student = write(submission, "tl_mnist", **mistake)
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    environment.update(AUTOGRADER_ROOT=str(tmp_path), AUTOGRADER_SOURCE=source,
                       AUTOGRADER_PYTHON=sys.executable)
    run = subprocess.run(["bash", os.path.join(source, "run_autograder")], cwd=tmp_path,
                         env=environment, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    expect_valid_results(results, "tl_mnist")
    assert results["output"].startswith(f"tl_mnist (my_tl_mnist{suffix}): ")
    assert results["score"] == total("tl_mnist") - (0 if correct else 1)
    if not correct:
        assert results["tests"][1]["output"].startswith(
            "FAIL  freezing: conv1, pool1, conv2, pool2, flatten, dropout still trainable "
            "after freeze_layers: set each layer's `trainable` to False")
    assert os.listdir(submission) == [os.path.basename(student)]  # graded on a copy


def test_build_all_makes_one_zip_per_homework_and_bad_input_is_one_line(tmp_path, capsys):
    folder = tmp_path / "autograders"
    assert gradescope.main(["build", "all", "--out", str(folder)]) == 0
    assert sorted(os.listdir(folder)) == [f"autograder_{name}.zip" for name in sorted(check.STEPS)]
    for name in check.STEPS:
        with zipfile.ZipFile(folder / f"autograder_{name}.zip") as archive:
            assert f"-m homework.check {name} --gradescope" in \
                archive.read("run_autograder").decode()
            ast.parse(archive.read("homework/check.py"))
    capsys.readouterr()
    for argv, message in [(["build", "all", "--out", "x.zip"],
                           "--out x.zip: with all, give a folder for the 3 zips"),
                          (["build", "mnist", "--out", str(tmp_path / "a.zip")],
                           "unknown homework 'mnist': choose from cifar_vgg, mnist_vgg, "
                           "tl_mnist or all")]:
        assert gradescope.main(argv) == 2
        assert capsys.readouterr().err.splitlines() == [f"homework.gradescope: error: {message}"]
    assert not (tmp_path / "a.zip").exists()
