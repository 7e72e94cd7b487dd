"""The options beyond the lecture: each changes exactly what it claims, and the defaults
leave the lecture's protocol as it was."""


import numpy as np
import pytest
import keras

import cifar_vgg
import mnist_vgg
import tl_mnist
from common import engine
from common.engine import trials
from common.lesson import bases, networks, transfer
from common.runs import cli, tables
from common.lesson.settings import FineTune, FitSettings
from test_vgg import random_images, write_cifar_npz

STAGE_FIT = FitSettings(epochs=1, batch_size=4)  # the fine-tuning stage's own training


def opening(spec: int | str) -> FineTune:
    """The stage of `--fine-tune spec`: the last `spec` layers, or those named spec..."""
    return FineTune(spec, None, STAGE_FIT) if isinstance(spec, int) else \
        FineTune(None, spec, STAGE_FIT)


def trainable_names(layers_: list) -> list[str]:
    return [layer.name for layer in transfer.weighted_layers(layers_) if layer.trainable]


@pytest.mark.parametrize("script", [tl_mnist, mnist_vgg, cifar_vgg])
def test_the_defaults_are_the_lectures(script):
    config = script.Config()
    assert (config.optimizer, config.lr, config.fine_tune, config.augment) == (
        "adam", None, "0", False)
    fit = config.fit
    assert (fit.epochs, fit.batch_size) == (config.epochs, config.batch_size)
    assert (fit.optimizer, fit.learning_rate, fit.rate) == ("adam", None, 0.001)
    assert config.fine_tuning is None and not config.plain
    assert config.training_line() == tables.training_line(
        fit, config.fine_tuning, augment=config.augment, noise=config.noise,
        plain=config.plain) == (
        "training: adam, learning rate 0.001 (the lecture's); no augmentation; "
        "trials side by side (the fast engine)")
    if script is not tl_mnist:
        assert config.base == "vgg16"


def test_fine_tuning_opens_exactly_the_last_n_copied_layers():
    base = tl_mnist.lecture_cnn(5, seed=0)
    model = tl_mnist.transfer_model(base, 5, seed=1)
    part = transfer.frozen_part(model)
    assert [layer.name for layer in part] == ["conv1", "conv2"]  # the copies, with weights
    assert trainable_names(part) == []  # stage 1: the copies are frozen
    copy = transfer.fine_tuning_copy(model, opening(1))  # the fine-tuning stage's model
    assert trainable_names(transfer.hidden_layers(copy)) == ["conv2"]
    assert trainable_names(part) == []  # the trained model stays as it was
    assert [layer.name for layer in transfer.unfreeze_top(part, opening(1))] == ["conv2"]
    assert trainable_names(part) == ["conv2"]
    transfer.unfreeze_top(part, opening(2))
    assert trainable_names(part) == ["conv1", "conv2"]
    assert trainable_names(transfer.hidden_layers(base)) == ["conv1", "conv2"]  # base untouched
    with pytest.raises(cli.UserInputError, match="--fine-tune 3: the pretrained part has 2"):
        transfer.unfreeze_top(part, opening(3))


def test_fine_tuning_a_vgg16_block_by_name_and_a_wrong_name():
    base = bases.pretrained_base("vgg16", "none")
    assert base.trainable_weights == []
    transfer.unfreeze_top(base, opening("block5"))
    assert trainable_names(base) == ["block5_conv1", "block5_conv2", "block5_conv3"]
    assert len(base.trainable_weights) == 6
    with pytest.raises(cli.UserInputError, match="--fine-tune block9: no layer"):
        transfer.fine_tune_layers(base, opening("block9"))


def test_fine_tuning_keeps_batchnorm_frozen():
    base = bases.pretrained_base("resnet50", "none")
    opened = transfer.unfreeze_top(base, opening("conv5"))
    norms = [layer for layer in opened if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and not any(layer.trainable for layer in norms)
    assert any(layer.trainable for layer in opened if isinstance(layer, keras.layers.Conv2D))
    assert not any(layer.trainable for layer in transfer.weighted_layers(base)
                   if not layer.name.startswith("conv5"))


def test_augmentation_changes_images_in_training_only():
    images = np.random.default_rng(0).random((4, 28, 28, 1)).astype("float32")
    augment = networks.augmentation(seed=3)
    assert np.array_equal(keras.ops.convert_to_numpy(augment(images, training=False)), images)
    first = keras.ops.convert_to_numpy(augment(images, training=True))
    assert not np.allclose(first, images)
    again = networks.augmentation(seed=3)  # the same trial draws the same transformations
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(again(images, training=True)), first)


def test_augmentation_switches_feature_caching_off_and_says_so(capsys):
    base = tl_mnist.lecture_cnn(5, seed=0)
    model = tl_mnist.transfer_model(base, 5, seed=1, augment=True)
    rng = np.random.default_rng(0)
    train = (rng.random((8, 28, 28, 1)).astype("float32"), np.arange(8) % 5)
    engine.train_trials({1: model}, {1: train}, train, FitSettings(epochs=1, batch_size=4),
                        label="augmented")
    printed = capsys.readouterr().out
    assert "no features are cached" in printed and "features of the frozen layers" not in printed


@pytest.fixture()
def captured_fits(monkeypatch) -> list[dict]:
    """Every side-by-side training's label, optimizer and learning rate."""
    calls: list[dict] = []
    original = trials.fit_side_by_side

    def recording(models_, inputs, labels, seeds, fit: FitSettings, **options):
        calls.append({"label": options.get("label"), "epochs": fit.epochs,
                      "optimizer": fit.optimizer, "learning_rate": fit.rate})
        return original(models_, inputs, labels, seeds, fit, **options)

    # The engine calls it from common.engine.trials.
    monkeypatch.setattr(trials, "fit_side_by_side", recording)
    return calls


def test_tl_mnist_options_reach_both_stages(mnist_like_npz, tmp_path, captured_fits):
    config = tl_mnist.Config(data=mnist_like_npz, trials=2, epochs=2, pretrain_epochs=1,
                             small_size=10, out=str(tmp_path), models_dir=str(tmp_path),
                             optimizer="rmsprop", lr=0.002, fine_tune="1", fine_tune_epochs=3)
    results = tl_mnist.main(config)
    stages = {call["label"]: call for call in captured_fits}
    assert stages["no transfer"]["optimizer"] == stages["transfer"]["optimizer"] == "rmsprop"
    assert stages["no transfer"]["learning_rate"] == stages["transfer"]["learning_rate"] == 0.002
    assert stages["fine-tuning"]["learning_rate"] == pytest.approx(0.0002)  # a tenth
    assert stages["fine-tuning"]["epochs"] == 3
    assert stages["pretraining"]["optimizer"] == "adam"  # the base is the lecture's
    assert list(results["summary"]) == ["no transfer", "transfer", "transfer + fine-tune"]
    assert "rmsprop, learning rate 0.002" in results["training"]
    assert "last 1 layer(s) fine-tuned for 3 epochs at learning rate 0.0002" in results["training"]


def test_a_bad_fine_tune_fails_before_any_training(mnist_like_npz, tmp_path, captured_fits):
    config = tl_mnist.Config(data=mnist_like_npz, trials=1, epochs=1, pretrain_epochs=1,
                             small_size=10, out=str(tmp_path), models_dir=str(tmp_path),
                             fine_tune="conv9")
    with pytest.raises(cli.UserInputError, match="--fine-tune conv9"):
        tl_mnist.main(config)
    assert [call["label"] for call in captured_fits] == ["pretraining"]


@pytest.mark.parametrize("name, features", [("resnet50", 2048), ("mobilenetv2", 1280)])
def test_other_bases_build_and_train_one_step(name, features):
    base = bases.pretrained_base(name, "none")
    assert base.outputs[0].shape[1:] == (1, 1, features) and base.trainable_weights == []
    before = [w.copy() for w in base.get_weights()]
    model = mnist_vgg.transfer_model(base, "output", seed=0)  # 5 classes
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = bases.preprocess(random_images(4, seed=1), name)
    loss = model.train_on_batch(x, np.arange(4) % 5)
    assert np.isfinite(loss)
    assert all(np.array_equal(a, b) for a, b in zip(before, base.get_weights()))


def test_each_base_has_its_own_preprocessing():
    images = random_images(2, seed=0)
    mobile = bases.preprocess(images, "mobilenetv2")
    assert mobile.min() >= -1 and mobile.max() <= 1  # scaled to -1..1
    np.testing.assert_allclose(bases.preprocess(images, "vgg16")[..., 0],
                               images[..., 2].astype("float32") - 103.939, atol=1e-4)  # BGR


def test_vgg_scripts_with_every_option_end_to_end(mnist_like_npz, tmp_path, captured_fits):
    options = {"weights": "none", "trials": 1, "epochs": 1, "fine_tune": "block5_conv3",
               "fine_tune_epochs": 1, "augment": True, "optimizer": "sgd", "lr": 0.01}
    results = mnist_vgg.main(mnist_vgg.Config(
        data=mnist_like_npz, dataset="mnist", options="output", small_size=10, test_size=20,
        out=str(tmp_path / "mnist"), **options))
    assert list(results["summary"]) == ["output", "output + fine-tune"] and results["complete"]
    cifar = cifar_vgg.Config(data=write_cifar_npz(tmp_path / "c.npz", per_class=4),
                             options="cnn_tanh,mobilenetv2", base="mobilenetv2", per_class=2,
                             test_size=20, out=str(tmp_path / "cifar"),
                             **{**options, "fine_tune": "1"})
    results = cifar_vgg.main(cifar)
    assert list(results["summary"]) == ["cnn_tanh", "mobilenetv2", "mobilenetv2 + fine-tune"]
    # every option's history; the fine-tuned one holds both stages, back to back
    assert set(results["histories"]) == {"cnn_tanh", "mobilenetv2", "mobilenetv2 + fine-tune"}
    fine_tuned = results["histories"]["mobilenetv2 + fine-tune"][0]
    assert fine_tuned["fine_tune_start"] == 1 and len(fine_tuned["val_accuracy"]) == 2
    assert {call["optimizer"] for call in captured_fits} == {"sgd"}
    fine = [call for call in captured_fits if call["label"] == "fine-tuning"]
    assert len(fine) == 2 and all(call["learning_rate"] == pytest.approx(0.001) for call in fine)


def test_all_means_every_option_in_every_script():
    """--options all: every option the script lists (the classic heads too); the default
    of mnist_vgg.py is the lecture's five heads."""
    assert cli.choose_names("all", tl_mnist.OPTIONS, "--options") == list(tl_mnist.OPTIONS)
    assert cli.choose_names("all", mnist_vgg.OPTIONS, "--options") == list(mnist_vgg.OPTIONS)
    assert cli.choose_names(mnist_vgg.Config().options, mnist_vgg.OPTIONS, "--options") == list(
        bases.HEAD_VARIANTS)
    for script in (tl_mnist, mnist_vgg):  # so both refuse --augment with a classic head
        with pytest.raises(cli.UserInputError, match="--augment with the logreg, linear_svm"):
            script.Config(options="all", augment=True)


@pytest.mark.parametrize("flags, message", [({"fine_tune": "1"}, "--fine-tune 1: these CNNs"),
                                            ({"augment": True}, "--augment: this experiment")])
def test_the_example_refuses_the_options_it_has_no_use_for(flags, message):
    import example_experiment

    with pytest.raises(cli.UserInputError, match=message):
        example_experiment.Config(**flags)
