"""report.py: one HTML and one Markdown page from hand-written result JSONs; bad input."""

import base64
import json
import os
import re
import subprocess
import sys

import pytest

import report
from conftest import ROOT

LECTURE = {"no transfer": [0.84, 0.873], "transfer": [0.91, 0.926]}


def complete_result() -> dict:
    """tl_mnist in the new format: ci95, comparisons, plots, complete."""
    return {
        "script": "tl_mnist",
        "config": {"trials": 15, "epochs": 100, "data": "<b>mnist.npz</b>", "base": None},
        "dataset": {"name": "mnist", "source": "keras.datasets.mnist.load_data()",
                    "warning": "", "train_images": 60000, "test_images": 10000},
        "device": "CPU (2 cores, x86_64), tensorflow backend",
        "environment": {"python": "3.11.7", "keras": "3.15.1", "tensorflow": "2.21.0"},
        "seeds": list(range(15)),
        "summary": {"no transfer": {"n": 15, "min": 0.912, "max": 0.948, "mean": 0.932,
                                    "std": 0.011, "ci95": [0.926, 0.938]},
                    "transfer": {"n": 15, "min": 0.949, "max": 0.969, "mean": 0.963,
                                 "std": 0.007, "ci95": [0.959, 0.967]}},
        "comparisons": [{"baseline": "no transfer", "treatment": "transfer", "n_baseline": 15,
                         "n_treatment": 15, "mean_difference": 0.031, "ci95": [0.025, 0.037],
                         "welch_t": 8.7, "welch_df": 26.1, "p_value": 3.1e-9, "cohens_d": 3.2,
                         "paired_trials": 15, "trials_ahead": 15}],
        "lecture_ranges": LECTURE, "plots": ["tl_mnist.png"], "complete": True,
        "timings_s": {"total": 166.1},
    }


def old_result() -> dict:
    """tl_mnist as the committed script wrote it: no ci95, comparisons, plots or complete."""
    return {"script": "tl_mnist", "config": {"trials": 3}, "seeds": [0, 1, 2],
            "summary": {"no transfer": {"n": 3, "min": 0.896, "max": 0.924, "mean": 0.908,
                                        "std": 0.014},
                        "transfer": {"n": 3, "min": 0.876, "max": 0.908, "mean": 0.889,
                                     "std": 0.017}},
            "gain": {"mean_gain": -0.019, "trials_ahead": 1, "trials": 3},
            "lecture_ranges": LECTURE}


def interrupted_result() -> dict:
    """mnist_vgg stopped after 4 of 5 trials of one head and none of the other."""
    return {"script": "mnist_vgg", "config": {"trials": 5, "weights": "imagenet"},
            "weights": "imagenet weights",
            "accuracies": {"plain": [0.84, 0.85, 0.83, 0.86], "dropout": []},
            "summary": {"plain": {"n": 4, "min": 0.83, "max": 0.86, "mean": 0.845,
                                  "std": 0.0129, "ci95": [0.824, 0.866]}},
            "comparisons": [], "lecture_ranges": {"plain": [0.835, 0.846]},
            "plots": [], "complete": False}


def write(folder, name: str, content) -> None:
    text = content if isinstance(content, str) else json.dumps(content)
    (folder / name).write_text(text)


@pytest.fixture
def results(tmp_path):
    """A results folder: three results, an unrelated JSON and a tiny PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = tmp_path / "results"
    folder.mkdir()
    figure, axes = plt.subplots(figsize=(1, 1))
    axes.plot([0, 1], [0, 1])
    figure.savefig(folder / "tl_mnist.png", dpi=20)
    plt.close(figure)
    write(folder, "tl_mnist.json", complete_result())
    write(folder, "tl_mnist_old.json", old_result())
    write(folder, "mnist_vgg.json", interrupted_result())
    write(folder, "transferability.json", {**old_result(), "script": "transferability"})
    write(folder, "settings.json", {"script": "tl_mnist", "config": {}})
    (folder / "tl_mnist.trials.jsonl").write_text('{"option": "transfer"}\n')
    return folder


def test_writes_one_self_contained_page_with_every_result(results, capsys):
    assert report.run(["--results", str(results)]) == 0
    out = capsys.readouterr()
    page = (results / "report.html").read_text()
    assert str(results / "report.html") in out.out and str(results / "report.md") in out.out

    # Self-contained: the PNG itself is in the page, nothing is fetched from elsewhere.
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert (results / "tl_mnist.png").read_bytes() in [base64.b64decode(uri) for uri in embedded]
    assert 'src="http' not in page and "<link" not in page and "<script" not in page
    assert "&lt;b&gt;mnist.npz&lt;/b&gt;" in page and "<b>mnist.npz</b>" not in page

    for option, mean in [("no transfer", "93.2%"), ("transfer", "96.3%"), ("plain", "84.5%")]:
        assert f"<td>{option}</td>" in page and f"<td>{mean}</td>" in page
    assert "Interrupted run: only 4 trials finished (plain 4, dropout 0; 5 planned per option)" in page
    assert "+3.1 points" in page and "3.1e-09" in page and "+2.5 to +3.7" in page
    assert "-1.9 points on average, ahead in 1 of 3" in page  # the old run's "gain"

    # The lecture's experiments first, in its order; two runs of one script by file name.
    order = [page.index(f'id="run-{k}"') for k in range(1, 5)]
    headings = [re.search(r'id="run-%d">(\w+)' % k, page).group(1) for k in range(1, 5)]
    assert order == sorted(order)
    assert headings == ["tl_mnist", "tl_mnist", "mnist_vgg", "transferability"]
    assert page.index("tl_mnist.json</li>") < page.index("tl_mnist_old.json</li>")

    # The JSON that is not a result is skipped, with a line saying why; .jsonl is not read.
    assert out.err == 'report.py: skipped settings.json: no "summary" key\n'


def test_markdown_has_a_row_per_option_and_links_the_plot(results, tmp_path):
    site = tmp_path / "site"
    assert report.run(["--results", str(results), "--out", str(site)]) == 0
    markdown = (site / "report.md").read_text()
    rows = [line for line in markdown.splitlines() if line.startswith("| ")]
    for option, cells in [("no transfer", "| 15 | 91.2–94.8% | 93.2% | 1.1 | 92.6–93.8% | "
                                          "84.0–87.3% | above |"),
                          ("transfer", "| 15 | 94.9–96.9% | 96.3% | 0.7 | 95.9–96.7% | "
                                       "91.0–92.6% | above |"),
                          ("plain", "| 4 | 83.0–86.0% | 84.5% | 1.3 | 82.4–86.6% | "
                                    "83.5–84.6% | within |")]:
        assert f"| {option} {cells}" in rows
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", markdown)
    assert links == ["../results/tl_mnist.png"] * 2  # the new run; the old one finds it too
    assert (site / links[0]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "> **⚠ Warning:** Interrupted run" in markdown
    assert "| data | &lt;b>mnist.npz&lt;/b> |" in markdown


def test_a_missing_plot_is_a_warning_and_the_report_is_still_written(results, capsys):
    write(results, "tl_mnist.json", {**complete_result(), "plots": ["tl_mnist.png", "gone.png"]})
    assert report.run(["--results", str(results)]) == 0
    error = capsys.readouterr().err
    assert "warning: tl_mnist.json lists the plot" in error and "gone.png" in error
    page = (results / "report.html").read_text()
    assert "Plot gone.png is listed but missing." in page and "data:image/png;base64," in page


@pytest.mark.parametrize("value, expected", [
    (0.9325, "93.2%"), (None, "—"), (float("nan"), "—"), (True, "—")])
def test_percent(value, expected):
    assert report.percent(value) == expected


@pytest.mark.parametrize("value, expected", [
    (3.1e-9, "3.1e-09"), (0.021, "0.021"), (0.5, "0.500"), (None, "—")])
def test_p_value(value, expected):
    assert report.p_value(value) == expected


@pytest.mark.parametrize("mean, expected", [
    (0.85, "within"), (0.84, "within"), (0.90, "above"), (0.80, "below"), (None, "—")])
def test_verdict_against_the_lectures_range(mean, expected):
    assert report.verdict(mean, (0.84, 0.873)) == expected
    assert report.verdict(mean, None) == "—"


def test_random_vgg16_weights_void_only_the_vgg16_ranges():
    cifar = report.Run("cifar_vgg.json", {"script": "cifar_vgg", "config": {"weights": "none"},
                                          "summary": {}, "lecture_ranges": {
                                              "cnn_tanh": [0.4, 0.414], "vgg16": [0.48, 0.495]}})
    assert report.lecture_ranges(cifar) == {"cnn_tanh": (0.4, 0.414), "vgg16": None}


def bad_inputs(tmp_path) -> dict[str, tuple[str, str]]:
    """name -> (--results folder, what the error line must say)."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken").mkdir()
    write(tmp_path / "broken", "tl_mnist.json", '{"script": "tl_mnist", "summary": ')
    return {"missing": (str(tmp_path / "nowhere"), "no such folder"),
            "empty": (str(tmp_path / "empty"), "no result JSON"),
            "malformed": (str(tmp_path / "broken"), "tl_mnist.json: not valid JSON")}


@pytest.mark.parametrize("case", ["missing", "empty", "malformed"])
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, capsys):
    folder, message = bad_inputs(tmp_path)[case]
    assert report.run(["--results", folder]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("report.py: error: ") and message in error
    assert not os.path.exists(os.path.join(folder, "report.html"))


@pytest.mark.parametrize("case", ["missing", "malformed"])  # each subprocess costs seconds
def test_bad_input_on_the_command_line(case, tmp_path):
    folder, message = bad_inputs(tmp_path)[case]
    result = subprocess.run([sys.executable, os.path.join(ROOT, "report.py"), "--results", folder],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert result.stdout == ""


def test_the_three_scripts_quick_runs_make_one_page_with_every_table_and_plot(
        mnist_like_npz, tmp_path):
    import cifar_vgg
    import mnist_vgg
    import tl_mnist
    from common.runs import cli
    from test_vgg import write_cifar_npz

    out = str(tmp_path / "results")
    cifar = write_cifar_npz(tmp_path / "cifar.npz")
    for script, flags in ((tl_mnist, ["--data", mnist_like_npz, "--models-dir", out]),
                          (mnist_vgg, ["--data", mnist_like_npz, "--weights", "none"]),
                          (cifar_vgg, ["--data", cifar, "--weights", "none"])):
        script.main(cli.parse_config(script.Config, ["--quick", "--out", out, *flags], "",
                                     script.QUICK))
    html_path, md_path = report.main(report.Config(results=out))
    with open(html_path) as file:
        page = file.read()
    with open(md_path) as file:
        markdown = file.read()
    # tl_mnist.png, mnist_vgg.png and mnist_vgg_curves.png (its heads' histories), and
    # cifar_vgg.png (its histories)
    assert page.count("data:image/png;base64,") == 4 and 'src="http' not in page
    assert "mnist_vgg_curves.png" in markdown
    for script, options in (("tl_mnist", ["no transfer", "transfer"]),
                            ("mnist_vgg", ["plain", "dense512_nodrop"]),
                            ("cifar_vgg", ["cnn_tanh", "vgg16"])):
        assert f"{script}.png" in markdown and script in page
        for option in options:
            assert f"| {option} |" in markdown and option in page
    assert markdown.count("### Comparisons") == 3
    assert "transfer vs no transfer" in markdown and "vgg16 vs cnn_tanh" in markdown


def test_a_shards_json_is_skipped_with_the_reason():
    shard = {"script": "tl_mnist", "summary": {}, "shard": "1/3"}
    assert "shard 1/3 of a run" in report.skip_reason(shard)
    assert report.skip_reason({**shard, "shard": None}) is None  # a whole run's JSON


def test_the_verdict_says_at_chance_as_the_scripts_do():
    assert report.verdict(0.11, (0.40, 0.414), 0.1) == "at chance"
    assert report.verdict(0.11, (0.40, 0.414)) == "below"
