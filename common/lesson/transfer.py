"""Transfer learning as named parts: a pretrained *body* and a new *head*.

- `hidden_layers`, `copy_layer`: a pretrained model's hidden layers, and fresh copies
  of them (the scripts' transfer models, e.g. `tl_mnist.transfer_model`, are built from
  copies, so the pretrained model is never touched).
- `freeze` / `unfreeze` flip trainable flags; BatchNormalization stays in inference
  mode when a base is unfrozen for fine-tuning. `unfreeze_top` opens the last layers
  of a pretrained part for a second, fine-tuning stage.
- `split_body_head` finds the frozen, deterministic front of a model, whose output
  can be computed once and cached, and the head that must be trained.
"""

from collections.abc import Iterable, Iterator, Mapping, Sequence

import numpy as np
import keras
from keras import layers

from common.errors import UserInputError
from common.lesson.networks import derive_seed
from common.lesson.settings import FineTune

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

    The copy has no weights until it is built (e.g. in a Sequential); then copy the
    weights in (`copy.set_weights(layer.get_weights())`, as `tl_mnist.transfer_model`
    does). Copying instead of reusing keeps the pretrained model untouched
    when the copy is trained or frozen.
    """
    if isinstance(layer, keras.Model):
        return keras.models.clone_model(layer)
    config = layer.get_config()
    if "seed" in config:  # Dropout and friends: each trial its own random stream
        config["seed"] = derive_seed(seed, layer.name)
    return type(layer).from_config(config)


def parameter_count(weights: Iterable) -> int:
    """How many numbers `weights` hold, e.g. `parameter_count(model.trainable_weights)`."""
    return sum(int(np.prod(weight.shape)) for weight in weights)


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


def weighted_layers(part: Layer | Sequence[Layer]) -> list[Layer]:
    """The innermost layers with weights in `part`, in the order they run (convs, denses,
    BatchNorms; not the models that hold them)."""
    found = []
    for outer in [part] if isinstance(part, Layer) else part:
        found += [layer for layer in sublayers(outer)
                  if layer.weights and not getattr(layer, "layers", None)]
    return found


def fine_tune_layers(part: Layer | Sequence[Layer], stage: FineTune) -> list[Layer]:
    """The layers of a pretrained part that `--fine-tune` opens.

    Args:
        part: the pretrained layers (a base model, or a list of copied layers).
        stage: `stage.count`, the last N layers with weights; or `stage.prefix`, the
            layers whose name starts with it, such as "block5" (VGG16's last block).

    Raises:
        UserInputError: N is larger than the layers there are, or no layer has the name.
    """
    candidates = weighted_layers(part)
    if stage.count:
        if stage.count > len(candidates):
            raise UserInputError(f"--fine-tune {stage.count}: the pretrained part has "
                                 f"{len(candidates)} layers with weights "
                                 f"({', '.join(layer.name for layer in candidates[-4:])}, ...)")
        return candidates[len(candidates) - stage.count:]
    chosen = [layer for layer in candidates if layer.name.startswith(stage.prefix)]
    if not chosen:
        prefixes = sorted({layer.name.split("_")[0] for layer in candidates})
        raise UserInputError(f"--fine-tune {stage.prefix}: no layer of the pretrained part is "
                             f"named {stage.prefix}...; give a number of layers or a prefix "
                             f"such as {', '.join(prefixes[-3:])}")
    return chosen


def check_fine_tune(part: Layer | Sequence[Layer], stage: FineTune | None) -> None:
    """Raises now, before any training, if `stage` (--fine-tune) names layers that `part`
    (the pretrained layers) does not have (see `fine_tune_layers`)."""
    if stage is not None:
        fine_tune_layers(part, stage)


def unfreeze_top(part: Layer | Sequence[Layer], stage: FineTune) -> list[Layer]:
    """Opens the layers `fine_tune_layers(part, stage)` for training; the rest stays frozen.

    BatchNormalization layers stay frozen, so they keep running in inference mode on
    the source task's statistics. Recompile (or rebuild the training model) afterwards.

    Example:
        unfreeze_top(vgg16_copy, FineTune(None, "block5", fit))  # VGG16's last 3 convs

    Returns:
        The layers now trainable.
    """
    chosen = fine_tune_layers(part, stage)
    containers = [part] if isinstance(part, Layer) else list(part)
    # A frozen model hides its layers' weights from training, whatever their own flags:
    # open the containers, then close everything but the chosen layers again.
    unfreeze(containers)
    freeze(layer for layer in weighted_layers(part) if all(layer is not c for c in chosen))
    unfreeze(chosen)
    return chosen


def frozen_part(model: keras.Model) -> list[Layer]:
    """The model's frozen layers with weights: in a transfer model, what was pretrained
    (the copied hidden layers of the lecture's CNN, or the whole VGG16 base)."""
    return [layer for layer in model_layers(model) if layer.weights and not layer.trainable]


def fine_tuning_copy(model: keras.Model, stage: FineTune) -> keras.Model:
    """A copy of a trained transfer model (same weights, its own layers) with the top of
    its pretrained part opened (`unfreeze_top`): the model of the fine-tuning stage.

    The copy keeps the trained model as it was, and gives each trial its own pretrained
    layers to train even when the trials' models share one frozen base.
    """
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    unfreeze_top(frozen_part(copy), stage)
    return copy


FINE_TUNED = " + fine-tune"  # how results name an option after its fine-tuning stage


def stage_names(option: str, stage: FineTune | None) -> list[str]:
    """The results' names of an option's stages: [option], and with a fine-tuning
    stage also "<option> + fine-tune"."""
    return [option, option + FINE_TUNED] if stage else [option]


def fine_tuning_copies(models: Mapping[int, keras.Model],
                       stage: FineTune) -> dict[int, keras.Model]:
    """`fine_tuning_copy` of each trial's trained model, keyed by the same seeds."""
    return {seed: fine_tuning_copy(model, stage) for seed, model in models.items()}


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
    # An empty body (the model starts with augmentation) passes its input through.
    head_input = body.outputs[0].shape[1:] if cut else model.inputs[0].shape[1:]
    head = keras.Sequential([keras.Input(head_input), *parts[cut:]],
                            name=f"{model.name}_head")
    return body, head


def transferable_layers(model: keras.Model) -> list[Layer]:
    """The hidden layers with weights, in the order they run: the layers 1..L that a
    layer-by-layer transfer study copies (convolutions, hidden Denses; not pooling,
    Flatten, Dropout or the output layer)."""
    return [layer for layer in hidden_layers(model) if layer.weights]


def copy_first_layers(source: keras.Model, target: keras.Model, n: int,
                      frozen: bool) -> keras.Model:
    """Puts `source`'s first `n` transferable layers' weights into `target`, in place.

    Yosinski et al.'s transferred network: layers 1..n carry the source's weights,
    frozen or fine-tuned, and layers n+1.. keep `target`'s fresh initialisation. The
    target is a newly built model of the same architecture (built with the trial's
    seed, so that seed decides its re-initialised layers and its Dropout); the weights
    are copied into its own layer objects, so training it never touches `source`.
    Layers are matched by name, never by position.

    Args:
        source: the trained network (left unchanged).
        target: a fresh model with the same transferable layers (names and shapes).
        n: how many transferable layers to copy, 1..L (`transferable_layers`).
        frozen: True: the copied layers are frozen (trainable = False); False: they
            are fine-tuned with the rest. The other layers keep their flags.

    Returns:
        `target`, for chaining. Recompile it (or train it with `fit_side_by_side`,
        which compiles) after this, so the trainable flags take effect.

    Raises:
        ValueError: n outside 1..L; the two models' transferable layers differ in
            names or weight shapes; or `target` shares layer objects with `source`.

    Example:
        fresh = networks.deep_cnn(5, seed=7)
        model = copy_first_layers(base_a, fresh, n=3, frozen=True)  # conv1..conv3 of A
    """
    originals, copies = transferable_layers(source), transferable_layers(target)
    names = [layer.name for layer in originals]
    if [layer.name for layer in copies] != names:
        raise ValueError(f"target {target.name!r} has transferable layers "
                         f"{[layer.name for layer in copies]}, source {source.name!r} has "
                         f"{names}: build the target with the source's architecture")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(names):
        raise ValueError(f"n={n!r}: copy 1 to {len(names)} layers, the transferable layers of "
                         f"{source.name!r} ({', '.join(names)})")
    if {id(layer) for layer in target.layers} & {id(layer) for layer in source.layers}:
        raise ValueError(f"target {target.name!r} shares layer objects with source "
                         f"{source.name!r}: pass a freshly built model")
    for original, copy in zip(originals[:n], copies[:n]):
        shapes = [tuple(w.shape) for w in original.weights]
        if [tuple(w.shape) for w in copy.weights] != shapes:
            raise ValueError(f"layer {original.name!r}: source weights {shapes}, target "
                             f"{[tuple(w.shape) for w in copy.weights]}: build the target "
                             "with the source's architecture")
        copy.set_weights(original.get_weights())
        copy.trainable = not frozen
    return target
