"""Homework for the transfer-learning course: templates to fill in, and their checker.

Each lecture script has a template, `homework/<script>_template.py`, whose transfer
steps are TODOs. `python -m homework.check <script> --file my_solution.py` grades a
filled-in copy step by step on small synthetic data (see "Homework" in README.md).
"""
