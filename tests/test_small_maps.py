"""Convolutions on maps smaller than their kernel, as matrix products, compute what the
convolutions do (the engine uses them for frozen features on JAX on a CPU)."""

import keras
import numpy as np
from keras import layers

from common.engine import small_maps, trials
from common.lesson import transfer


def vgg16_body() -> keras.Model:
    """The frozen body of a VGG16 (random weights) on 32x32 images with a head."""
    vgg16 = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    vgg16.trainable = False
    model = keras.Sequential([keras.Input((32, 32, 3)), vgg16, layers.Flatten(name="flatten"),
                              layers.Dense(10, activation="softmax", name="output")])
    return transfer.split_body_head(model)[0]


def odd_body() -> keras.Model:
    """Small maps under settings beyond VGG16's: even and non-square kernels, no bias, and
    convolutions the matrix product does not do ('valid' padding, a stride)."""
    model = keras.Sequential([
        keras.Input((3, 2, 4)),
        layers.Conv2D(5, (2, 3), padding="same", activation="tanh", name="even_same"),
        layers.Conv2D(6, (4, 1), padding="same", use_bias=False, name="tall_no_bias"),
        layers.Conv2D(4, (2, 1), padding="valid", name="valid"),
        layers.Conv2D(3, 3, strides=2, padding="same", name="strided"),
        layers.Flatten(name="flatten"),
        layers.Dense(2, activation="softmax", name="output"),
    ])
    for layer in model.layers[:-1]:
        layer.trainable = False
    # Biases that are not zero, so that a bias left out cannot pass.
    model.get_layer("even_same").bias.assign(np.linspace(-1, 1, 5).astype("float32"))
    return transfer.split_body_head(model)[0]


def test_the_small_map_convolutions_are_found():
    assert [conv.name for conv in small_maps.small_map_convolutions(vgg16_body())] == [
        "block5_conv1", "block5_conv2", "block5_conv3"]
    # On the 3x2 map the 2x3 kernel is wider than the map and the 4x1 one taller; a
    # 'valid' kernel fits its map, and a strided convolution is left to Keras.
    assert [conv.name for conv in small_maps.small_map_convolutions(odd_body())] == [
        "even_same", "tall_no_bias"]


def test_matrix_products_compute_the_convolutions_with_the_same_weights():
    for body, images in ((vgg16_body(), np.random.default_rng(0).random((6, 32, 32, 3))),
                         (odd_body(), np.random.default_rng(1).normal(size=(6, 3, 2, 4)))):
        convolutions = small_maps.small_map_convolutions(body)
        fast = small_maps.small_maps_as_matmuls(body, convolutions)
        assert [id(weight) for weight in fast.weights] == [id(weight) for weight in body.weights]
        expected = keras.ops.convert_to_numpy(body(images.astype("float32")))
        actual = keras.ops.convert_to_numpy(fast(images.astype("float32")))
        assert actual.shape == expected.shape
        np.testing.assert_allclose(actual, expected, rtol=1e-5,
                                   atol=1e-5 * np.abs(expected).max())


def test_the_engine_computes_features_with_them_where_convolutions_are_slow(
        monkeypatch, capsys):
    body = vgg16_body()
    images = np.random.default_rng(2).random((5, 32, 32, 3)).astype("float32")
    as_convolutions = trials.body_features(body, images, batch_size=2)
    monkeypatch.setattr(trials, "small_map_convolutions_are_slow", lambda: True)
    as_matmuls = trials.body_features(body, images, batch_size=2)
    assert "3 convolutions on maps smaller than their kernel (block5_conv1" in (
        capsys.readouterr().out)
    np.testing.assert_allclose(as_matmuls, as_convolutions, rtol=1e-5,
                               atol=1e-5 * np.abs(as_convolutions).max())


def test_only_jax_on_a_cpu_needs_them():
    if keras.backend.backend() != "jax":
        assert not small_maps.small_map_convolutions_are_slow()
    else:
        import jax

        assert small_maps.small_map_convolutions_are_slow() is (
            jax.devices()[0].platform == "cpu")
