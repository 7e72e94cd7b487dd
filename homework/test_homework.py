"""Grades one homework file under pytest: one test per step of homework/check.py.

    HOMEWORK_NAME=tl_mnist HOMEWORK_FILE=student.py python -m pytest homework/test_homework.py

HOMEWORK_NAME is tl_mnist, mnist_vgg or cifar_vgg; HOMEWORK_FILE, a .py file or a
notebook (.ipynb, graded by its definitions as homework/check.py says), defaults to the
shipped template, whose steps all fail by design. A plain `python -m pytest` does not collect
this file (pytest.ini's testpaths is tests/); name it, as above.
"""

import os
from types import ModuleType

import pytest

from homework import check


def homework_name() -> str:
    """HOMEWORK_NAME, checked: which template's steps to run."""
    name = os.environ.get("HOMEWORK_NAME", "")
    if name not in check.STEPS:
        raise pytest.UsageError(f"HOMEWORK_NAME={name!r}: set it to one of "
                                f"{', '.join(check.STEPS)} (and HOMEWORK_FILE to the file "
                                "to grade)")
    return name


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One test per step of the homework named by HOMEWORK_NAME."""
    if "step" in metafunc.fixturenames:
        steps = check.STEPS[homework_name()]
        metafunc.parametrize("step", steps, ids=[step.name.replace(" ", "_") for step in steps])


@pytest.fixture(scope="module")
def submission() -> ModuleType:
    """The file to grade, imported once for all its steps."""
    name = homework_name()
    path = os.environ.get("HOMEWORK_FILE") or check.template_path(name)
    if not os.path.isfile(path):
        pytest.fail(f"HOMEWORK_FILE={path}: no such file", pytrace=False)
    try:
        return check.load_submission(path, name)
    # Importing runs the student's code, which may raise anything; every step then fails.
    except Exception as error:  # noqa: BLE001 - turned into each step's failure
        pytest.fail(f"could not import {path}: {check.failure_message(error, path, '<module>')}",
                    pytrace=False)


def test_step(step: check.Step, submission: ModuleType) -> None:
    result = check.run_step(step, submission)
    if not result.passed:
        pytest.fail(result.line(), pytrace=False)
