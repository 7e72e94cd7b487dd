"""The house's shape: three rooms with imports flowing one way, report.py without Keras,
each lecture script's main short and showing which path trains, one vocabulary of flags.

Read from the source with `ast` (nothing here trains), so the shape cannot regress."""

import ast
import os
import pathlib
import re
import subprocess
import sys

import pytest

from conftest import ROOT

COMMON = pathlib.Path(ROOT, "common")
EXPERIMENTS = ("tl_mnist", "mnist_vgg", "cifar_vgg", "transferability", "example_experiment")
SCRIPTS = (*EXPERIMENTS, "visualize", "report")
# What each room may import of `common` (besides itself), and of anything else.
ROOMS = {"lesson": {"common.errors", "common.files"},
         "engine": {"common.errors", "common.files", "common.lesson"},
         "runs": {"common.errors", "common.files", "common.startup", "common.lesson",
                  "common.engine"}}
LESSON_THIRD_PARTY = {"keras", "numpy", "sklearn"}


def imported_modules(path: pathlib.Path) -> set[str]:
    """Every module a file imports, anywhere in it (functions too), absolute names."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            modules |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names
                                        if node.module == "common"
                                        or node.module.startswith("common.")}
    return modules


def common_modules(modules: set[str]) -> set[str]:
    """The `common` rooms and bottom modules among `modules` ("common.lesson.data" ->
    "common.lesson"; "common.errors" stays)."""
    return {".".join(module.split(".")[:2]) for module in modules
            if module.startswith("common.") and module.count(".") >= 1}


@pytest.mark.parametrize("room", ROOMS)
def test_imports_flow_one_way_scripts_runs_engine_lesson(room):
    for path in sorted((COMMON / room).rglob("*.py")):
        used = common_modules(imported_modules(path)) - {f"common.{room}"}
        assert used <= ROOMS[room], f"{path.relative_to(ROOT)} imports {sorted(used - ROOMS[room])}"


def test_the_lesson_imports_keras_numpy_scikit_learn_and_the_standard_library_only():
    for path in sorted((COMMON / "lesson").rglob("*.py")):
        outside = {module.split(".")[0] for module in imported_modules(path)} - {"common"}
        unexpected = outside - LESSON_THIRD_PARTY - set(sys.stdlib_module_names)
        assert not unexpected, f"{path.relative_to(ROOT)} imports {sorted(unexpected)}"


def test_the_bottom_modules_and_the_package_inits_import_nothing_of_the_rooms():
    bottom = [COMMON / name for name in ("errors.py", "files.py", "startup.py", "__init__.py")]
    inits = [COMMON / room / "__init__.py" for room in ("lesson", "runs")]
    for path in bottom + inits:
        assert not common_modules(imported_modules(path)), path.relative_to(ROOT)


def test_no_script_imports_another_but_the_tools_that_say_why():
    for name in (*SCRIPTS, "homework/check"):
        source = pathlib.Path(ROOT, f"{name}.py").read_text()
        for line in source.splitlines():
            match = re.match(r"\s*(?:import|from) (\w+)", line)
            if match and match.group(1) in SCRIPTS:
                # visualize.py and the homework checker reuse the lecture's own steps
                assert name in ("visualize", "homework/check") and "#" in line, (name, line)


def test_report_and_statistics_load_neither_keras_nor_tensorflow(tmp_path):
    for command in ([os.path.join(ROOT, "report.py"), "--help"],
                    ["-c", "import common.runs.stats, common.runs.tables, report"]):
        result = subprocess.run([sys.executable, "-X", "importtime", *command], cwd=ROOT,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        imported = {line.split("|")[-1].strip().split(".")[0]
                    for line in result.stderr.splitlines() if line.startswith("import time:")}
        assert not imported & {"keras", "tensorflow"}, command


def main_of(script: str) -> ast.FunctionDef:
    tree = ast.parse(pathlib.Path(ROOT, f"{script}.py").read_text())
    return next(node for node in tree.body
                if isinstance(node, ast.FunctionDef) and node.name == "main")


@pytest.mark.parametrize("script", EXPERIMENTS)
def test_each_main_is_short_flat_and_shows_which_path_trains(script):
    main = main_of(script)
    lines = main.end_lineno - main.lineno + 1
    assert lines <= 65, f"{script}.main has {lines} lines"
    nested = [node for node in ast.walk(main) if node is not main
              and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))]
    assert not nested, f"{script}.main defines a function or lambda"
    choices = [node for node in ast.walk(main) if isinstance(node, ast.IfExp)
               and ast.unparse(node.test) == "config.plain"]
    assert choices, f"{script}.main does not choose between the plain code and the engine"
    for choice in choices:
        assert "plain.trial_by_trial" in ast.unparse(choice.body) + ast.unparse(choice.orelse) \
            or "plain.pretrain_each" in ast.unparse(choice.body), ast.unparse(choice)
        assert "engine." in ast.unparse(choice.orelse), ast.unparse(choice)
