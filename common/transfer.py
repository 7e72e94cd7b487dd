"""Transfer learning as named parts: a pretrained *body* and a new *head*.

- `transfer_model` copies a pretrained model's hidden layers into fresh layers (the
  pretrained model is never touched), freezes them, and adds a new output layer.
- `freeze` / `unfreeze` flip trainable flags; BatchNormalization stays in inference
  mode when a base is unfrozen for fine-tuning.
- `split_body_head` finds the frozen, deterministic front of a model, whose output
  can be computed once and cached, and the head that must be trained.
"""

from collections.abc import Iterable, Iterator

import keras
from keras import layers

from common.models import derive_seed, softmax_output

Layer = keras.layers.Layer


def sublayers(layer: Layer) -> Iterator[Layer]:
    """`layer` and, recursively, every layer nested inside it (e.g. a whole VGG16)."""
    yield layer
    for child in getattr(layer, "layers", []):
        yield from sublayers(child)


def model_layers(model: keras.Model) -> list[Layer]:
    """The model's layers in the order they run, without the InputLayer.

    (A functional model's `layers` starts with its InputLayer in Keras 3, and a
    Sequential refuses one, so code that copies layers must leave it out.)
    """
    return [layer for layer in model.layers if not isinstance(layer, layers.InputLayer)]


def output_layer(model: keras.Model) -> Layer:
    """The layer that makes the prediction: the last one the model runs, a Dense.

    Raises:
        ValueError: the model does not end in a Dense layer.
    """
    last = model_layers(model)[-1]
    if not isinstance(last, layers.Dense):
        raise ValueError(f"model {model.name!r} ends in {type(last).__name__} "
                         f"{last.name!r}, not in a Dense output layer")
    return last


def hidden_layers(model: keras.Model) -> list[Layer]:
    """Every layer of `model` except its InputLayer and its output layer."""
    output = output_layer(model)
    return [layer for layer in model_layers(model) if layer is not output]


def copy_layer(layer: Layer, seed: int) -> Layer:
    """A new layer with `layer`'s configuration; random layers get a seed of trial `seed`.

    The copy has no weights until it is built; `transfer_model` builds it and copies
    the weights in. Copying instead of reusing keeps the pretrained model untouched
    when the copy is trained or frozen.
    """
    if isinstance(layer, keras.Model):
        return keras.models.clone_model(layer)
    config = layer.get_config()
    if "seed" in config:  # Dropout and friends: each trial its own random stream
        config["seed"] = derive_seed(seed, layer.name)
    return type(layer).from_config(config)


def freeze(target: Layer | Iterable[Layer]) -> None:
    """Makes `target` (a layer, a model, or a list of them) non-trainable.

    Recompile any model containing it afterwards, or `fit` keeps the old flags.

    Example:
        freeze(model.get_layer("vgg16"))
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    """
    for layer in [target] if isinstance(target, Layer) else target:
        layer.trainable = False


def unfreeze(target: Layer | Iterable[Layer]) -> None:
    """Makes `target` trainable again, except its BatchNormalization layers.

    BatchNorm layers stay frozen so that they keep running in inference mode with the
    statistics learned on the source data; updating them on a few target images
    would wreck what the base learned. Recompile afterwards.
    """
    for layer in [target] if isinstance(target, Layer) else target:
        layer.trainable = True
        for inner in sublayers(layer):
            if isinstance(inner, layers.BatchNormalization):
                inner.trainable = False


def transfer_model(base: keras.Model, num_classes: int, seed: int,
                   name: str | None = None) -> keras.Sequential:
    """The lecture's transfer model: `base`'s hidden layers, copied and frozen, plus a
    new Dense(num_classes) softmax output layer.

    Args:
        base: the pretrained model (left unchanged).
        num_classes: classes of the new task.
        seed: the trial's seed (new output layer's initializer, copied Dropout).
        name: the new model's name (default: transfer_seed<seed>).

    Returns:
        A compiled-ready Sequential model; for the lecture's CNN it has 18,816
        non-trainable and 8,005 trainable parameters.
    """
    originals = hidden_layers(base)
    copies = [copy_layer(layer, seed) for layer in originals]
    model = keras.Sequential([keras.Input(base.inputs[0].shape[1:]), *copies,
                              softmax_output(num_classes, seed)],
                             name=name or f"transfer_seed{seed}")
    for copy, original in zip(copies, originals):
        copy.set_weights(original.get_weights())
    freeze(copies)
    return model


def is_random(layer: Layer) -> bool:
    """Whether `layer` (or a layer inside it) draws random numbers when training."""
    # Dropout keeps its stream as `seed_generator`, the Random* augmentation layers as
    # `generator`.
    return any(hasattr(inner, "seed_generator") or hasattr(inner, "generator")
               for inner in sublayers(layer))


def split_body_head(model: keras.Model) -> tuple[keras.Sequential, keras.Sequential]:
    """Splits a model into its frozen, deterministic body and the head after it.

    The body is the longest run of leading layers with no trainable weights and no
    randomness (Dropout, augmentation): its output for an image never changes while
    the head trains, so it can be computed once and cached. The two returned models
    share their layers with `model`: training the head trains `model`.

    Raises:
        ValueError: nothing of the model is trainable.
    """
    parts = model_layers(model)
    cut = next((i for i, layer in enumerate(parts)
                if layer.trainable_weights or is_random(layer)), len(parts))
    if cut == len(parts):
        raise ValueError(f"model {model.name!r} has nothing to train")
    body = keras.Sequential([keras.Input(model.inputs[0].shape[1:]), *parts[:cut]],
                            name=f"{model.name}_body")
    head = keras.Sequential([keras.Input(body.outputs[0].shape[1:]), *parts[cut:]],
                            name=f"{model.name}_head")
    return body, head
