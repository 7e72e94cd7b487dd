"""The pieces beyond the lecture's heads: `bases.cut` (--cut), the fine-tuning stage's
checks and copies (`transfer.check_fine_tune`, `transfer.fine_tuning_copy`), the flags
the scripts' configs refuse, and quick end-to-end runs showing --cut, tl_mnist's --options,
--augment --noise and the classic heads (logreg, linear_svm) in the summary and the JSON.

VGG16 keeps random weights (nothing is downloaded); the data are conftest's synthetic
digits, and CIFAR-10-shaped images made from them.
"""

import re

import numpy as np
import pytest
import keras

import cifar_vgg
import mnist_vgg
import tl_mnist
from common.lesson import bases, transfer
from common.runs import cli
from common.lesson.classic import CLASSIC_HEADS
from common.lesson.settings import FineTune, FitSettings
from common.engine.side_by_side import fit_side_by_side
from conftest import synthetic_digits

STAGE_FIT = FitSettings(epochs=1, batch_size=4)


@pytest.fixture(scope="module")
def base() -> keras.Model:
    """VGG16 without its top, random weights (weights=None), 32x32 input, frozen."""
    return bases.pretrained_base("vgg16", "none")


def layer_ids(model: keras.Model) -> set[int]:
    return {id(layer) for layer in transfer.sublayers(model)}


def flags(model: keras.Model) -> dict[str, bool]:
    """Every layer's trainable flag, nested layers included, by name."""
    return {layer.name: layer.trainable for layer in transfer.sublayers(model)}


def opened(model: keras.Model) -> list[str]:
    """The layers with weights that train, in the order they run."""
    return [layer.name for layer in transfer.weighted_layers(model.layers) if layer.trainable]


# --- bases.cut --------------------------------------------------------------------------

@pytest.mark.parametrize("layer, shape", [("block3_pool", (4, 4, 256)),
                                          ("block4_pool", (2, 2, 512))])
def test_cut_ends_vgg16_at_an_earlier_block(base, layer, shape):
    cut = bases.cut(base, layer)
    assert tuple(cut.outputs[0].shape[1:]) == shape
    assert cut.name == base.name and bases.base_key(cut) == "vgg16"  # its preprocessing
    assert not cut.trainable and cut.trainable_weights == []  # frozen, as the base
    assert layer_ids(cut) - {id(cut)} <= layer_ids(base)  # shared with the base, no copies
    images = bases.preprocess(np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3),
                                                              dtype=np.uint8))
    expected = keras.Model(base.inputs[0], base.get_layer(layer).output)(images)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(cut(images)),
                               keras.ops.convert_to_numpy(expected), rtol=1e-5, atol=1e-5)


def test_no_cut_is_the_base_itself(base):
    assert bases.cut(base, "") is base


def test_an_unknown_cut_names_the_flag_and_the_allowed_ones(base):
    with pytest.raises(cli.UserInputError) as error:
        bases.cut(base, "block2_pool")
    message = str(error.value)
    assert message.startswith("--cut block2_pool: ")
    assert all(name in message for name in bases.BASES["vgg16"].cuts), message


# --- transfer.check_fine_tune and transfer.fine_tuning_copy ---------------------------

def test_check_fine_tune_refuses_layers_the_pretrained_part_lacks(base):
    hidden = transfer.hidden_layers(tl_mnist.lecture_cnn(5, seed=0))
    transfer.check_fine_tune(hidden, None)  # no second stage: nothing to check
    transfer.check_fine_tune(hidden, FineTune(2, None, STAGE_FIT))  # conv1, conv2
    transfer.check_fine_tune(hidden, FineTune(None, "conv2", STAGE_FIT))
    with pytest.raises(cli.UserInputError, match="--fine-tune 3: the pretrained part has 2"):
        transfer.check_fine_tune(hidden, FineTune(3, None, STAGE_FIT))
    with pytest.raises(cli.UserInputError, match="--fine-tune conv9: no layer"):
        transfer.check_fine_tune(hidden, FineTune(None, "conv9", STAGE_FIT))
    cut = bases.cut(base, "block4_pool")  # block5 is cut off
    transfer.check_fine_tune(cut, FineTune(None, "block4", STAGE_FIT))
    with pytest.raises(cli.UserInputError, match="--fine-tune block5: no layer"):
        transfer.check_fine_tune(cut, FineTune(None, "block5", STAGE_FIT))


def test_fine_tuning_copy_of_the_lecture_transfer_model():
    pretrained = tl_mnist.lecture_cnn(5, seed=0)
    model = tl_mnist.transfer_model(pretrained, 5, seed=1)
    x, y = synthetic_digits(4, seed=0)
    fit_side_by_side([model], [x[y < 5, ..., None] / 255.0], [y[y < 5]], [1], STAGE_FIT)
    trained_weights, trained_flags = model.get_weights(), flags(model)
    assert opened(model) == ["output"]

    copy = transfer.fine_tuning_copy(model, FineTune(1, None, STAGE_FIT))
    for a, b in zip(trained_weights, copy.get_weights(), strict=True):  # the trained weights
        np.testing.assert_array_equal(a, b)
    assert opened(copy) == ["conv2", "output"]  # exactly the chosen layer opened
    assert flags(model) == trained_flags  # the trained model keeps its flags
    assert not layer_ids(copy) & layer_ids(model)  # shares no layer
    copy.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    copy.train_on_batch(x[:4, ..., None] / 255.0, np.arange(4) % 5)
    for a, b in zip(trained_weights, model.get_weights(), strict=True):  # still as trained
        np.testing.assert_array_equal(a, b)


def test_fine_tuning_copy_of_a_model_on_a_cut_vgg16(base):
    model = mnist_vgg.transfer_model(bases.cut(base, "block4_pool"), "output", seed=2)
    trained_flags = flags(model)
    assert opened(model) == ["output"]
    copy = transfer.fine_tuning_copy(model, FineTune(None, "block4", STAGE_FIT))
    for a, b in zip(model.get_weights(), copy.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert opened(copy) == ["block4_conv1", "block4_conv2", "block4_conv3", "output"]
    assert flags(model) == trained_flags and base.trainable_weights == []
    assert not layer_ids(copy) & layer_ids(model)
    assert opened(transfer.fine_tuning_copy(model, FineTune(1, None, STAGE_FIT))) == [
        "block4_conv3", "output"]


# --- the configs' own checks: flags that make no sense together ------------------------

@pytest.mark.parametrize("script, flags_, message", [
    (tl_mnist, ["--noise", "0.1"], "--noise 0.1: noise is one of the augmentations; add --augment"),
    (mnist_vgg, ["--noise", "0.2"], "--noise 0.2: noise is one of the augmentations"),
    (cifar_vgg, ["--noise", "0.05"], "--noise 0.05: noise is one of the augmentations"),
    (tl_mnist, ["--augment", "--options", "no_transfer,output,logreg"], "--augment with the logreg head"),
    (tl_mnist, ["--augment", "--options", "no_transfer,linear_svm"], "--augment with the linear_svm head"),
    (mnist_vgg, ["--augment", "--options", "output,logreg"], "--augment with the logreg head"),
    (cifar_vgg, ["--augment", "--head", "logreg"], "--augment with the logreg head"),
    (cifar_vgg, ["--augment", "--noise", "0.1", "--head", "linear_svm"],
     "--augment with the linear_svm head"),
])
def test_nonsensical_flag_combinations_give_one_line_and_exit_2(script, flags_, message,
                                                                 capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.parse_config(script.Config, flags_, "", script.QUICK)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error, error


@pytest.mark.parametrize("script, flags_", [
    (tl_mnist, ["--augment", "--noise", "0.1", "--options", "no_transfer,output,dense128"]),
    (mnist_vgg, ["--options", "output,logreg"]),
    (cifar_vgg, ["--augment", "--head", "dense512"]),
])
def test_sensible_combinations_are_accepted(script, flags_):
    cli.parse_config(script.Config, flags_, "", script.QUICK)


# --- end to end -----------------------------------------------------------------------

def summary_rows(printed: str) -> dict[str, int]:
    """The printed summary table's rows: option -> trials."""
    table = printed.split("\nsummary: ")[-1]
    return {match.group(1).strip(): int(match.group(2))
            for match in re.finditer(r"^(\S.*?)\s+(\d+)\s+\d+\.\d–\d+\.\d%", table, re.MULTILINE)}


def test_tl_mnist_heads_new_layers_and_classic_ones(mnist_like_npz, tmp_path, capsys):
    payload = tl_mnist.main(cli.parse_config(tl_mnist.Config, [
        "--data", mnist_like_npz, "--quick", "--trials", "2",
        "--options", "no_transfer,output,dense128,logreg,linear_svm",
        "--out", str(tmp_path), "--models-dir", str(tmp_path)], "", tl_mnist.QUICK))
    options = ["no transfer", "transfer", "transfer (dense128)", "transfer (logreg)",
               "transfer (linear_svm)"]
    assert list(payload["accuracies"]) == options
    assert all(len(payload["accuracies"][option]) == 2 for option in options)
    assert set(payload["summary"]) == set(options)
    assert [c["treatment"] for c in payload["comparisons"]] == options[1:]
    assert summary_rows(capsys.readouterr().out) == dict.fromkeys(options, 2)
    assert "no augmentation" in payload["training"]


def test_tl_mnist_augment_with_noise_trains_and_says_so(mnist_like_npz, tmp_path, capsys):
    payload = tl_mnist.main(cli.parse_config(tl_mnist.Config, [
        "--data", mnist_like_npz, "--quick", "--trials", "2", "--epochs", "2",
        "--options", "no_transfer,output,dense128", "--augment", "--noise", "0.1",
        "--out", str(tmp_path), "--models-dir", str(tmp_path)], "", tl_mnist.QUICK))
    assert "augmented training images with Gaussian noise (std 0.1)" in payload["training"]
    assert payload["config"]["noise"] == 0.1 and payload["config"]["augment"]
    printed = capsys.readouterr().out
    assert "no features are cached" in printed  # augmentation: the whole models train
    assert summary_rows(printed) == dict.fromkeys(
        ["no transfer", "transfer", "transfer (dense128)"], 2)


def test_mnist_vgg_cut_with_a_classic_head_and_fine_tuning(mnist_like_npz, tmp_path, capsys):
    payload = mnist_vgg.main(cli.parse_config(mnist_vgg.Config, [
        "--data", mnist_like_npz, "--quick", "--weights", "none", "--options", "output,logreg",
        "--cut", "block4_pool", "--fine-tune", "1", "--fine-tune-epochs", "1",
        "--out", str(tmp_path)], "", mnist_vgg.QUICK))
    assert payload["cut"] == "block4_pool"
    options = ["output", "output + fine-tune", "logreg"]
    assert list(payload["accuracies"]) == options and set(payload["summary"]) == set(options)
    assert payload["heads"] == {"output": bases.HEAD_VARIANTS["output"],
                                   "logreg": CLASSIC_HEADS["logreg"]}
    assert "last 1 layer(s) fine-tuned" in payload["training"]
    assert payload["lecture_ranges"] == {}  # a cut (and random) VGG16 is not the lecture's
    printed = capsys.readouterr().out
    assert "cut at block4_pool" in printed
    assert summary_rows(printed) == dict.fromkeys(options, 2)


def test_cifar_vgg_linear_svm_head(cifar_like_npz, tmp_path, capsys):
    payload = cifar_vgg.main(cli.parse_config(cifar_vgg.Config, [
        "--data", cifar_like_npz, "--quick", "--weights", "none", "--options", "vgg16",
        "--head", "linear_svm", "--per-class", "5", "--out", str(tmp_path)], "",
        cifar_vgg.QUICK))
    assert list(payload["accuracies"]) == ["vgg16"] and len(payload["accuracies"]["vgg16"]) == 1
    assert set(payload["summary"]) == {"vgg16"} and payload["config"]["head"] == "linear_svm"
    assert payload["training"] == ("training: classic classifiers (scikit-learn) on the "
                                   "frozen features")
    assert payload["lecture_ranges"] == {}  # not the lecture's head
    printed = capsys.readouterr().out
    assert "head linear_svm" in printed
    assert summary_rows(printed) == {"vgg16": 1}
