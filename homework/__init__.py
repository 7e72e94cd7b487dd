"""Homework for the transfer-learning course: templates to fill in, and their checker.

Each lecture script has a template, `homework/<script>_template.py`, whose transfer
steps are TODOs, and the same as a notebook, `homework/<script>_template.ipynb` (made
from the .py file by `python -m homework.gradescope notebooks`).
`python -m homework.check <script> --file my_solution.py` (or `.ipynb`) grades a
filled-in copy step by step on small synthetic data, and with `--results` writes
Gradescope's results.json; `python -m homework.gradescope build <script>` makes the
Gradescope autograder zip (see "Homework" in docs/instructors.md).
"""
