"""runs.plots and runs.tables: the history plot, the verdict against the lecture, runs at chance;
networks.augmentation: Gaussian noise in training only."""

import json
import os

import numpy as np
import pytest
import keras

from common import files
from common.lesson import networks

from common.runs import plots, stats, tables

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def history(epochs: int, seed: int, fine_tune_start: int | None = None) -> dict:
    """A plausible history of one trial: accuracies rise, losses fall."""
    rng = np.random.default_rng(seed)
    rising = 1 - np.exp(-np.arange(1, epochs + 1) / 3)
    result = {"accuracy": list(0.2 + 0.7 * rising), "loss": list(2.3 - 2.0 * rising),
              "val_accuracy": list(0.2 + 0.5 * rising + rng.normal(0, 0.02, epochs)),
              "val_loss": list(2.3 - 1.5 * rising + rng.normal(0, 0.05, epochs))}
    if fine_tune_start is not None:
        result["fine_tune_start"] = fine_tune_start
    return result


@pytest.fixture
def captured(monkeypatch) -> list:
    """The figures plot_histories draws, kept after it has written them."""
    figures = []
    real_save = plots.save_figure

    def save(figure, path, dpi=120):
        figures.append(figure)
        real_save(figure, path, dpi)

    monkeypatch.setattr(plots, "save_figure", save)
    return figures


@pytest.mark.parametrize("case", ["plain", "fine-tuning", "different lengths"])
def test_plot_histories_writes_a_png(case, tmp_path):
    histories = {
        "plain": {"cnn_tanh": [history(6, seed) for seed in range(3)],
                  "vgg16": [history(6, seed) for seed in range(3, 6)]},
        "fine-tuning": {"vgg16": [history(8, seed, fine_tune_start=5) for seed in range(3)]},
        # runs of different lengths, and one trial that stopped early
        "different lengths": {"cnn_tanh": [history(10, 0), history(7, 1)],
                              "vgg16": [history(4, 2, fine_tune_start=2)]},
    }[case]
    path = tmp_path / "plots" / "curves.png"
    plots.plot_histories(str(path), histories, f"CIFAR-10, {case}")
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert os.listdir(tmp_path / "plots") == ["curves.png"]  # no temporary file left behind


def test_plot_histories_draws_accuracy_and_loss_with_the_fine_tuning_line(tmp_path, captured):
    histories = {"head then fine-tuning": [history(8, seed, fine_tune_start=5)
                                           for seed in range(3)],
                 "scratch": [history(10, 9)]}
    plots.plot_histories(str(tmp_path / "curves.png"), histories, "the title")
    figure, = captured
    accuracy, loss = figure.axes
    assert (accuracy.get_xlabel(), accuracy.get_ylabel()) == ("epoch", "accuracy (%)")
    assert (loss.get_xlabel(), loss.get_ylabel()) == ("epoch", "cross-entropy loss (nats)")
    assert figure.get_suptitle() == "the title"
    for axes, key, scale in ((accuracy, "accuracy", 100), (loss, "loss", 1)):
        curves = [line for line in axes.get_lines() if line.get_linestyle() != ":"]
        styles = [(line.get_color(), line.get_linestyle()) for line in curves]
        assert styles == [("C0", "--"), ("C0", "-"), ("C1", "--"), ("C1", "-")]
        # each line is the mean over the run's trials, epochs counted from 1
        np.testing.assert_allclose(curves[1].get_ydata(), scale * np.mean(
            [trial[f"val_{key}"] for trial in histories["head then fine-tuning"]], axis=0))
        assert list(curves[2].get_xdata()) == list(range(1, 11))
        # the stage boundary: between epoch 5 (the last of the head) and epoch 6
        dotted, = [line for line in axes.get_lines() if line.get_linestyle() == ":"]
        assert list(dotted.get_xdata()) == [5.5, 5.5]
        assert [text.get_text().strip() for text in axes.texts] == ["fine-tuning starts"]
    labels = [text.get_text() for legend in figure.legends for text in legend.get_texts()]
    assert labels == ["head then fine-tuning (3 trials)", "scratch (1 trial)", "training",
                      "test", "test, min–max over trials", "fine-tuning starts"]


def test_a_fine_tune_start_outside_the_history_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="fine_tune_start=8 must be .* 1..7 for its 8 epochs"):
        plots.plot_histories(str(tmp_path / "x.png"), {"run": [history(8, 0, 8)]}, "")
    assert not os.path.exists(tmp_path / "x.png")


@pytest.mark.parametrize("mean, verdict", [(0.405, "within"), (0.40, "within"), (0.414, "within"),
                                           (0.42, "above"), (0.39, "below")])
def test_lecture_verdict(mean, verdict):
    assert tables.lecture_verdict(mean, (0.40, 0.414)) == verdict
    assert tables.lecture_verdict(mean, None) == ""


def test_lecture_verdict_with_chance_says_when_a_run_did_not_learn():
    assert tables.lecture_verdict(0.11, (0.40, 0.414), chance=0.1) == "at chance"
    assert tables.lecture_verdict(0.11, (0.40, 0.414)) == "below"
    assert tables.lecture_verdict(0.30, (0.40, 0.414), chance=0.1) == "below"
    # a lecture's range that is itself at chance: ours is simply within it
    assert tables.lecture_verdict(0.10, (0.09, 0.11), chance=0.1) == "within"
    assert tables.lecture_verdict(0.10, None, chance=0.1) == ""


@pytest.mark.parametrize("accuracies, classes, expected", [
    ([0.10, 0.10, 0.10], 10, True), ([0.08, 0.12], 10, True), ([0.12], 10, True),
    ([0.13], 10, False), ([0.07], 10, False), ([0.52, 0.49], 2, True), ([0.6], 2, False),
    ([0.21, 0.19], 5, True), ([], 10, False)])
def test_at_chance_is_a_mean_within_two_points_of_one_over_classes(accuracies, classes,
                                                                   expected):
    assert tables.at_chance(accuracies, classes) is expected


def test_at_chance_needs_two_classes():
    with pytest.raises(ValueError, match="num_classes=1"):
        tables.at_chance([0.5], 1)


RESULTS = {"cnn_tanh": {0: 0.405, 1: 0.41, 2: 0.40},
           "vgg16": {0: 0.10, 1: 0.11, 2: 0.095},    # diverged: stayed at chance
           "extra": {0: 0.55, 1: 0.56, 2: 0.57}}     # an option the lecture does not report
LECTURE = {"cnn_tanh": (0.40, 0.414), "vgg16": (0.48, 0.495)}


def test_trial_results_gives_each_option_its_verdict_and_whether_it_stayed_at_chance(tmp_path):
    old = tables.trial_results(RESULTS, "cnn_tanh", 9)  # today's callers: nothing new
    assert not any({"lecture_verdict", "at_chance"} & set(row) for row in old["summary"].values())

    results = tables.trial_results(RESULTS, "cnn_tanh", 9, lecture=LECTURE, num_classes=10)
    summary = results["summary"]
    assert [(row["lecture_verdict"], row["at_chance"]) for row in summary.values()] == [
        ("within", False), ("below", True), ("", False)]
    assert {key: summary["cnn_tanh"][key] for key in old["summary"]["cnn_tanh"]} == \
        stats.summarize(list(RESULTS["cnn_tanh"].values()))
    files.atomic_write_json(str(tmp_path / "r.json"), results)
    written = json.loads((tmp_path / "r.json").read_text())["summary"]
    assert written["vgg16"]["lecture_verdict"] == "below" and written["vgg16"]["at_chance"]


def test_summary_table_shows_the_verdict_and_marks_a_run_at_chance():
    summary = stats.summarize_options(RESULTS)
    rows = dict(zip(RESULTS, tables.summary_table(summary, LECTURE, num_classes=10)
                    .splitlines()[1:]))
    assert "40.0–41.4% (within)" in rows["cnn_tanh"] and "at chance" not in rows["cnn_tanh"]
    assert "48.0–49.5% (below)" in rows["vgg16"]
    assert rows["vgg16"].endswith("at chance: did not learn")
    assert rows["extra"].rstrip().endswith("—") and "at chance" not in rows["extra"]

    # today's call: the verdict, no mark; the mark also comes from trial_results' rows
    assert "at chance" not in tables.summary_table(summary, LECTURE)
    marked = tables.trial_results(RESULTS, None, 9, num_classes=10)["summary"]
    assert tables.summary_table(marked, LECTURE).count("at chance: did not learn") == 1


IMAGES = np.random.default_rng(0).random((4, 28, 28, 1)).astype("float32")


def as_numpy(tensor) -> np.ndarray:
    return keras.ops.convert_to_numpy(tensor)


def test_noise_comes_after_the_geometric_layers_and_only_when_asked():
    layers = networks.augmentation(seed=3, flips=True, noise=0.1).layers
    assert isinstance(layers[-1], keras.layers.GaussianNoise) and layers[-1].stddev == 0.1
    assert not any(isinstance(layer, keras.layers.GaussianNoise)
                   for layer in networks.augmentation(seed=3).layers)
    with pytest.raises(ValueError, match="noise=-0.1"):
        networks.augmentation(seed=3, noise=-0.1)


@pytest.mark.parametrize("stddev", [0.1, 25.0])  # [0, 1] digits; a VGG base's 0..255 scale
def test_noise_of_the_given_stddev_in_training_only(stddev):
    images = IMAGES * (255 if stddev > 1 else 1)
    noisy = networks.augmentation(seed=3, noise=stddev)
    assert np.array_equal(as_numpy(noisy(images, training=False)), images)
    # The geometric layers have the same seeds with and without noise, so they move
    # the images alike; what is left is the noise alone.
    difference = (as_numpy(noisy(images, training=True))
                  - as_numpy(networks.augmentation(seed=3)(images, training=True)))
    assert abs(difference.mean()) < 0.05 * stddev
    assert difference.std() == pytest.approx(stddev, rel=0.05)


def test_the_same_seed_draws_the_same_noise():
    first = as_numpy(networks.augmentation(seed=3, noise=0.1)(IMAGES, training=True))
    again = as_numpy(networks.augmentation(seed=3, noise=0.1)(IMAGES, training=True))
    other = as_numpy(networks.augmentation(seed=4, noise=0.1)(IMAGES, training=True))
    np.testing.assert_array_equal(again, first)
    assert not np.allclose(other, first)


def test_a_model_with_vgg_scale_noise_saves_and_loads(tmp_path):
    model = keras.Sequential([keras.Input((28, 28, 1)), networks.augmentation(seed=3, noise=25.0),
                              keras.layers.Flatten(), keras.layers.Dense(2)])
    model.save(tmp_path / "noisy.keras")
    loaded = keras.models.load_model(tmp_path / "noisy.keras")
    noise = loaded.get_layer("augment").layers[-1]
    assert isinstance(noise, networks.InputNoise) and noise.stddev == 25.0
    np.testing.assert_allclose(as_numpy(loaded(IMAGES)), as_numpy(model(IMAGES)), rtol=1e-6)
