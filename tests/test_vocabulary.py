"""One vocabulary on every command line: a flag that two scripts share means one thing,
shown by one help text; --help lists the lecture's settings first."""

import importlib
import re

import pytest

from common.runs import cli

SCRIPTS = ("tl_mnist", "mnist_vgg", "cifar_vgg", "transferability", "example_experiment",
           "visualize", "report")
# Flags that two scripts have with texts of their own, each with the reason. (None today:
# every shared flag comes from cli.VOCABULARY.)
EXCEPTIONS: dict[str, str] = {}


def help_texts(script: str) -> dict[str, str]:
    """Each flag of a script's --help and its help text, without its default."""
    module = importlib.import_module(script)
    parser = cli.build_parser(module.Config, "", getattr(module, "QUICK", {}))
    return {action.option_strings[0]: re.sub(r" \((?:default:|sets) [^)]*\)$", "", action.help)
            for action in parser._actions if action.option_strings and action.help
            and action.option_strings[0] != "-h"}


def test_a_flag_two_scripts_share_has_one_meaning():
    texts = {script: help_texts(script) for script in SCRIPTS}
    flags = {flag for by_flag in texts.values() for flag in by_flag}
    for flag in sorted(flags):
        having = {script: by_flag[flag] for script, by_flag in texts.items() if flag in by_flag}
        if len(having) > 1 and flag not in EXCEPTIONS:
            assert len(set(having.values())) == 1, f"{flag} means different things: {having}"


def test_the_shared_names_are_the_ones_the_issue_names():
    texts = {script: help_texts(script) for script in SCRIPTS}
    # one flag chooses the compared options, one names the pretrained network, one a file
    assert {script for script, by_flag in texts.items() if "--options" in by_flag} == {
        "tl_mnist", "mnist_vgg", "cifar_vgg", "example_experiment"}
    assert {script for script, by_flag in texts.items() if "--base" in by_flag} == {
        "mnist_vgg", "cifar_vgg", "visualize"}
    assert {script for script, by_flag in texts.items() if "--base-file" in by_flag} == {
        "tl_mnist", "visualize"}
    for gone in ("--heads", "--variants", "--runs", "--model"):
        assert not any(gone in by_flag for by_flag in texts.values()), gone


def test_plain_names_only_the_plain_code_path():
    import mnist_vgg
    import tl_mnist

    assert "plain" not in mnist_vgg.OPTIONS and "plain" not in tl_mnist.OPTIONS
    assert all("plain" not in by_flag or by_flag == "--plain"
               for script in SCRIPTS for by_flag in help_texts(script))


@pytest.mark.parametrize("script", ["tl_mnist", "mnist_vgg", "cifar_vgg", "transferability"])
def test_help_lists_the_lectures_settings_first(script, capsys):
    module = importlib.import_module(script)
    with pytest.raises(SystemExit):
        cli.parse_config(module.Config, ["--help"], module.__doc__, module.QUICK)
    printed = capsys.readouterr().out
    flags_part = printed.split("\noptions:\n", 1)[1]  # after the description: -h, then groups
    groups = [line[:-1] for line in flags_part.splitlines() if re.fullmatch(r"[a-z ]+:", line)]
    assert groups[0] == "experiment" and groups.index("training") < groups.index("running")
    assert groups[-2:] == ["running", "output"] or groups[-1] == "output", groups
    assert "beyond the lecture" not in groups[:groups.index("training")]


def test_an_error_quoted_in_a_message_is_never_cut_mid_word():
    from common.errors import brief

    error = OSError("<urlopen error [Errno -2] Name or service not known> while fetching\nmore")
    short = brief(error, 40)
    assert short == "<urlopen error [Errno -2] Name or ..."
    assert all(word in str(error).split() or word == "..." for word in short.split())
    assert brief(ValueError("")) == ""


def test_progress_lines_read_as_a_student_would_write_them(capsys):
    from common.engine.side_by_side import EpochProgress

    EpochProgress("pretraining", 46, 1).on_epoch_end(8, {"loss": 0.2063})
    EpochProgress("no transfer", 100, 15).on_epoch_end(99, {"loss": 15 * 0.5})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("  pretraining: epoch 9 of 46, loss 0.2063, ")
    assert lines[1].startswith("  no transfer: epoch 100 of 100, loss 0.5000 (mean over 15 "
                               "trials), ")
