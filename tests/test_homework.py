"""The homework checker (homework/check.py): the shipped templates fail every step, each
naming its TODO; the templates filled in with `common/` (and tl_mnist.transfer_model)
pass every step; a wrong answer fails its own step with a readable message; and the
command line's exit statuses.

The filled-in solutions are the shipped templates with each `raise NotImplementedError`
replaced by a call into `common/` or the lecture script tl_mnist.py, so these tests also
show that the templates' signatures fit what the checker calls.
"""

import ast
import subprocess
import sys

import pytest

from conftest import ROOT
from homework import check

# The VGG16 transfer model as the scripts build it (mnist_vgg.transfer_model,
# cifar_vgg.transfer_model), for any number of classes: the frozen base, then a head.
VGG_TRANSFER_MODEL = ("return keras.Sequential([keras.Input((32, 32, 3)), base,\n"
                      "    *bases.head({variant}, base.outputs[0].shape[1:], num_classes, "
                      "seed=0).layers])")

# A body for each TODO that does what the lecture's scripts do, through `common/` and
# the scripts' own functions.
SOLUTIONS = {
    "tl_mnist": {
        "split_classes": "return data.select_classes(images, labels, classes)",
        "freeze_layers": "transfer.freeze(layers_to_freeze)",
        "new_output_layer": "return networks.softmax_output(num_classes, seed=0)",
        "build_transfer_model": "return tl_mnist.transfer_model(pretrained, num_classes, seed=0)",
    },
    "mnist_vgg": {
        "pad_and_repeat": "return data.pad_and_repeat(images)",
        "split_classes": "return data.select_classes(images, labels, classes)",
        "freeze_base": "transfer.freeze(base)",
        "make_head": "return bases.head(variant, input_shape, num_classes, seed=0)",
        "build_transfer_model": VGG_TRANSFER_MODEL.format(variant="variant"),
    },
    "cifar_vgg": {
        "stratified_sample": "return data.stratified_sample(labels, per_class, rng)",
        "freeze_base": "transfer.freeze(base)",
        "make_head": 'return bases.head("dense512_nodrop", input_shape, num_classes, seed=0)',
        "build_transfer_model": VGG_TRANSFER_MODEL.format(variant='"dense512_nodrop"'),
    },
}

# Mistakes students make: (homework, function, wrong body, step that must fail, words
# its message must contain).
MISTAKES = [
    ("tl_mnist", "build_transfer_model",
     "hidden = transfer.hidden_layers(pretrained)\n"
     "freeze_layers(hidden)\n"
     "return keras.Sequential([keras.Input(pretrained.inputs[0].shape[1:]), *hidden,\n"
     "                         new_output_layer(num_classes)])",
     "transfer model", ["shares the layer objects conv1", "copy each layer"]),
    ("tl_mnist", "build_transfer_model",
     "model = tl_mnist.transfer_model(pretrained, num_classes, seed=0)\n"
     "transfer.unfreeze(transfer.hidden_layers(model))\n"
     "return model",
     "transfer model", ["copied layers conv1", "are trainable"]),
    ("tl_mnist", "freeze_layers", "pass",
     "freezing", ["conv1, pool1, conv2, pool2, flatten, dropout still trainable"]),
    ("tl_mnist", "split_classes",
     "kept = np.isin(labels, classes)\nreturn images[kept], labels[kept]",
     "class split", ["expected labels [3 4 2 3", "(1->0, 3->1, 5->2, 7->3, 9->4), got [7 9 5 7"]),
    ("mnist_vgg", "pad_and_repeat",
     "return np.repeat(np.pad(images, ((0, 0), (4, 0), (4, 0), (0, 0))), 3, axis=-1)",
     "padding", ["values differ", "first at image 0, row 2, column 2, channel 0: expected 248, "
                 "got 0"]),
    ("mnist_vgg", "make_head",
     "return bases.head('output' if variant == 'dropout' else variant, input_shape, num_classes, 0)",
     "head variants", ["for 'dropout': expected Flatten -> Dropout(0.5) -> Dense(4, softmax), "
                       "got Flatten -> Dense(4, softmax)"]),
    ("mnist_vgg", "build_transfer_model",
     "transfer.unfreeze(base)\n" + VGG_TRANSFER_MODEL.format(variant="variant"),
     "transfer model", ["made the VGG16 base trainable"]),
    ("cifar_vgg", "stratified_sample",
     "return np.concatenate([np.flatnonzero(labels == label)[:per_class]\n"
     "                       for label in range(labels.max() + 1)])",
     "stratified sample", ["four different seeds drew the same images"]),
]


def fill_in(source: str, bodies: dict[str, str]) -> str:
    """The template with each named function's `raise NotImplementedError(...)` replaced
    by a body, and `common`'s modules and tl_mnist imported after the docstring."""
    tree = ast.parse(source)
    lines = source.splitlines()
    todos = [(statement, function.name) for function in tree.body
             if isinstance(function, ast.FunctionDef) and function.name in bodies
             for statement in function.body if isinstance(statement, ast.Raise)]
    assert {name for _, name in todos} == set(bodies), "every body replaces one TODO"
    for statement, name in sorted(todos, key=lambda todo: -todo[0].lineno):
        indent = " " * statement.col_offset
        lines[statement.lineno - 1:statement.end_lineno] = [
            indent + line for line in bodies[name].splitlines()]
    docstring_end = tree.body[0].end_lineno
    lines.insert(docstring_end, "from common.lesson import bases, data, networks, transfer\n"
                                "import tl_mnist")
    return "\n".join(lines) + "\n"


def write_solution(tmp_path, name: str, **changes: str) -> str:
    """The template of `name` filled in with SOLUTIONS, some bodies replaced; its path."""
    with open(check.template_path(name)) as file:
        source = fill_in(file.read(), {**SOLUTIONS[name], **changes})
    path = tmp_path / f"my_{name}.py"
    path.write_text(source)
    return str(path)


def test_every_todo_of_every_template_is_a_graded_step():
    for name, steps in check.STEPS.items():
        with open(check.template_path(name)) as file:
            tree = ast.parse(file.read())
        todo_functions = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)
                          and any(isinstance(statement, ast.Raise) for statement in node.body)]
        assert todo_functions == [step.function for step in steps] == list(SOLUTIONS[name])


@pytest.mark.parametrize("name", list(check.STEPS))
def test_shipped_template_fails_every_step_naming_its_todo(name):
    results = check.check(name)
    assert [result.step for result in results] == [step.name for step in check.STEPS[name]]
    for number, (result, step) in enumerate(zip(results, check.STEPS[name]), start=1):
        assert not result.passed
        assert result.line().startswith(f"FAIL  {step.name}: TODO {step.function} not done "
                                        f"(NotImplementedError: TODO {number}: ")


@pytest.mark.parametrize("name", list(check.STEPS))
def test_template_filled_in_with_common_passes_every_step(name, tmp_path):
    results = check.check(name, write_solution(tmp_path, name))
    assert [result.line() for result in results] == \
        [f"PASS  {step.name}" for step in check.STEPS[name]]


@pytest.mark.parametrize("name, function, body, failing_step, words", MISTAKES,
                         ids=[f"{name}-{function}-{number}" for number, (name, function, *_)
                              in enumerate(MISTAKES)])
def test_a_wrong_answer_fails_its_own_step_with_a_readable_message(
        name, function, body, failing_step, words, tmp_path):
    results = {result.step: result
               for result in check.check(name, write_solution(tmp_path, name, **{function: body}))}
    assert not results[failing_step].passed
    for word in words:
        assert word in results[failing_step].message, results[failing_step].message
    assert all(result.passed for step, result in results.items() if step != failing_step)


def test_a_crash_fails_its_step_only_and_names_the_function_and_line(tmp_path):
    path = write_solution(tmp_path, "tl_mnist", new_output_layer="return layers.Dense()")
    results = {result.step: result for result in check.check("tl_mnist", path)}
    assert results["new head"].message.startswith("new_output_layer raised TypeError: ")
    assert "my_tl_mnist.py line " in results["new head"].message
    assert [step for step, result in results.items() if not result.passed] == ["new head"]


def test_a_file_that_does_not_import_fails_every_step_with_the_reason(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("def split_classes(:\n")
    results = check.check("tl_mnist", str(path))
    assert len(results) == 4 and not any(result.passed for result in results)
    assert all(result.message.startswith(f"could not import {path}: importing broken.py raised "
                                         "SyntaxError") for result in results)


def test_missing_function_and_missing_file_and_unknown_name(tmp_path):
    path = tmp_path / "empty.py"
    path.write_text('"""Nothing done yet."""\n')
    messages = [result.message for result in check.check("cifar_vgg", str(path))]
    assert messages[0] == ("no function stratified_sample in empty.py: keep the template's "
                           "function names")
    with pytest.raises(FileNotFoundError, match="--file .*missing.py: no such file"):
        check.check("tl_mnist", str(tmp_path / "missing.py"))
    with pytest.raises(ValueError, match="unknown homework 'mnist'"):
        check.check("mnist")


def run_checker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "homework.check", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_command_line_fails_the_shipped_template_with_status_1():
    result = run_checker("tl_mnist")
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert "FAIL  class split: TODO split_classes not done (NotImplementedError: TODO 1: " \
           "keep the images of `classes` and renumber their labels 0..len(classes)-1)" in lines
    assert sum(line.startswith("FAIL  ") for line in lines) == 4
    assert "tl_mnist: 0 of 4 steps pass" in lines


def test_command_line_missing_file_is_one_line_and_status_2(tmp_path):
    result = run_checker("tl_mnist", "--file", str(tmp_path / "student.py"))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"homework.check: error: --file {tmp_path / 'student.py'}: no such file"]
