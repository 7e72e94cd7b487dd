"""Many trials of one network, trained as one network whose layers hold every trial.

Trained as branches of one model (`common.engine.side_by_side.fit_side_by_side`'s fallback), the
trials of an option run 15 small copies of every layer per step, each a handful of tiny
operations. When the trials' models are the same stack of Conv2D, MaxPooling2D,
Flatten, Dropout and Dense layers, each layer's 15 copies can run as one operation:

- the trials' images sit side by side in the channels, so their 15 Conv2D layers are
  one grouped convolution (trial t's filters see only trial t's channels), and
  pooling, which treats each channel alone, is unchanged;
- after Flatten each trial has its own row, and the 15 Dense layers are one batched
  matrix product;
- each trial's Dropout draws its mask from its own seed stream, as it would alone;
- the loss is the sum of the trials' losses, so each trial gets exactly its own
  gradient, and the optimizers' updates are elementwise, so stacking the weights
  changes nothing.

The trials' models are unchanged in structure: their weights are stacked before
training and written back after, and `tests/test_stacked.py` checks that each trial
computes and learns what it does alone (to float rounding: the grouped convolution
adds up in a different order). `alike_groups` sorts the trials of one run into groups
that can be stacked; anything else (augmentation, VGG16, a backend that cannot train a
grouped convolution) trains as branches beside them.
"""

import functools
from collections.abc import Sequence

import numpy as np
import keras
from keras import layers

STACKABLE = (layers.Conv2D, layers.MaxPooling2D, layers.Flatten, layers.Dropout, layers.Dense)


def grouped_conv(x, kernel, strides: tuple, padding: str):
    """A grouped 2D convolution: groups = input channels // kernel input channels.

    Keras sends grouped convolutions on TensorFlow through XLA, about 50 times slower
    on a CPU than TensorFlow's own oneDNN kernel, which this calls directly.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.nn.conv2d(x, kernel, strides, padding.upper())
    return keras.ops.conv(x, kernel, strides, padding)


def grouped_conv_trains(dtype: str = "float32") -> bool:
    """Whether this backend can train a grouped convolution computing in `dtype`
    (TensorFlow's CPU kernels can only with oneDNN, which is on by default on x86 Linux
    and Windows, and not in float16). Tried once per dtype; where it cannot, the trials
    train as branches and the first such run says why."""
    return grouped_conv_trains_in(dtype)


@functools.cache
def grouped_conv_trains_in(dtype: str) -> bool:
    """`grouped_conv_trains`, cached by the dtype alone (however the caller passed it)."""
    if keras.backend.backend() != "tensorflow":
        return True
    import tensorflow as tf

    kernel = tf.Variable(tf.ones((1, 1, 1, 2), dtype=dtype))

    @tf.function(autograph=False)
    def gradient():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(grouped_conv(tf.ones((1, 2, 2, 2), dtype=dtype), kernel,
                                              (1, 1), "valid"))
        return tape.gradient(loss, kernel)

    try:
        gradient()
    except (tf.errors.UnimplementedError, tf.errors.InvalidArgumentError):
        print(f"  note: TensorFlow on this CPU cannot train grouped convolutions in {dtype} "
              "(oneDNN is off, or has no such kernel); the trials train side by side as "
              "separate branches: the same results, slower", flush=True)
        return False
    return True


class StackedConv2D(layers.Layer):
    """`trials` Conv2D layers as one grouped convolution over (batch, h, w, trials * c):
    trial t's `filters` filters come t-th and see only trial t's channels."""

    def __init__(self, trials: int, conv: layers.Conv2D, **kwargs):
        super().__init__(**{"name": conv.name, **kwargs}, trainable=conv.trainable)
        self.trials, self.filters, self.kernel_size = trials, conv.filters, conv.kernel_size
        self.strides, self.padding, self.use_bias = conv.strides, conv.padding, conv.use_bias
        self.activation = conv.activation

    def build(self, input_shape):
        channels = input_shape[-1] // self.trials
        self.kernel = self.add_weight(shape=(*self.kernel_size, channels,
                                             self.trials * self.filters),
                                      initializer="zeros", name="kernel")
        self.bias = (self.add_weight(shape=(self.trials * self.filters,), initializer="zeros",
                                     name="bias") if self.use_bias else None)

    def load(self, per_trial: list[list[np.ndarray]]) -> None:
        """Sets the weights from every trial's [kernel, bias]."""
        kernels = np.stack([weights[0] for weights in per_trial], axis=3)  # kh, kw, c, t, f
        self.kernel.assign(kernels.reshape(self.kernel.shape))
        if self.use_bias:
            self.bias.assign(np.concatenate([weights[1] for weights in per_trial]))

    def per_trial(self) -> list[list[np.ndarray]]:
        """Every trial's [kernel, bias]."""
        kernel, *bias = self.get_weights()
        kernels = kernel.reshape(*kernel.shape[:3], self.trials, -1)
        biases = [b.reshape(self.trials, -1) for b in bias]
        return [[kernels[..., t, :], *(b[t] for b in biases)] for t in range(self.trials)]

    def call(self, x):
        y = grouped_conv(x, self.kernel, self.strides, self.padding)
        y = y + self.bias if self.use_bias else y
        # Each trial's activation sees only its own channels (softmax would mix trials).
        per_trial = keras.ops.reshape(y, (-1, *y.shape[1:3], self.trials, self.filters))
        return keras.ops.reshape(self.activation(per_trial), (-1, *y.shape[1:]))


class StackedDense(layers.Layer):
    """`trials` Dense layers as one batched product over (batch, trials, features)."""

    def __init__(self, trials: int, dense: layers.Dense, **kwargs):
        super().__init__(**{"name": dense.name, **kwargs}, trainable=dense.trainable)
        self.trials, self.units = trials, dense.units
        self.use_bias, self.activation = dense.use_bias, dense.activation

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(self.trials, input_shape[-1], self.units),
                                      initializer="zeros", name="kernel")
        self.bias = (self.add_weight(shape=(self.trials, self.units), initializer="zeros",
                                     name="bias") if self.use_bias else None)

    def load(self, per_trial: list[list[np.ndarray]]) -> None:
        """Sets the weights from every trial's [kernel, bias]."""
        for variable, values in zip(self.weights, zip(*per_trial)):
            variable.assign(np.stack(values))

    def per_trial(self) -> list[list[np.ndarray]]:
        """Every trial's [kernel, bias]."""
        return [[values[t] for values in self.get_weights()] for t in range(self.trials)]

    def call(self, x):
        y = keras.ops.einsum("btf,tfu->btu", x, self.kernel)
        return self.activation(y + self.bias if self.use_bias else y)


class StackedDropout(layers.Layer):
    """`trials` Dropout layers over (batch, trials, features), each with its own stream.

    Each trial's mask is drawn from its own seed stream for the shape it has alone, so
    it is the mask the trial would get alone.
    """

    def __init__(self, trials: int, dropout: layers.Dropout, **kwargs):
        super().__init__(**{"name": dropout.name, **kwargs})
        self.rate = dropout.rate
        # Keras gives a Dropout of rate 0 no stream; StackedTrials copies the others in.
        self.streams = [keras.random.SeedGenerator(0) for _ in range(trials if self.rate else 0)]

    def call(self, x, training=False):
        if not training or self.rate == 0:
            return x
        return keras.ops.stack([keras.random.dropout(x[:, t], self.rate, seed=stream)
                                for t, stream in enumerate(self.streams)], axis=1)


class TrialsToChannels(layers.Layer):
    """(batch, trials, h, w, c) -> (batch, h, w, trials * c), trial t's channels t-th."""

    def call(self, x):
        _, trials, height, width, channels = x.shape
        return keras.ops.reshape(keras.ops.transpose(x, (0, 2, 3, 1, 4)),
                                 (-1, height, width, trials * channels))


class StackedFlatten(layers.Layer):
    """(batch, h, w, trials * c) -> (batch, trials, h * w * c), each row as Flatten gives it."""

    def __init__(self, trials: int, **kwargs):
        super().__init__(**kwargs)
        self.trials = trials

    def call(self, x):
        _, height, width, channels = x.shape
        per_trial = keras.ops.reshape(x, (-1, height, width, self.trials,
                                          channels // self.trials))
        return keras.ops.reshape(keras.ops.transpose(per_trial, (0, 3, 1, 2, 4)),
                                 (-1, self.trials, height * width * channels // self.trials))


def plain_settings(layer: layers.Layer) -> dict | None:
    """The settings that must agree between trials, or None for a layer this cannot stack
    (a subclass, e.g. SpatialDropout2D, may compute something else: not stacked). The
    dtype policy and trainable flag are among the settings."""
    if type(layer) not in STACKABLE:
        return None
    config = layer.get_config()
    if any(config.get(key) for key in ("kernel_regularizer", "bias_regularizer",
                                       "activity_regularizer", "kernel_constraint",
                                       "bias_constraint", "noise_shape", "lora_rank")):
        return None
    if config.get("data_format", "channels_last") != "channels_last":
        return None
    if isinstance(layer, layers.Conv2D) and (config["groups"] != 1
                                             or tuple(config["dilation_rate"]) != (1, 1)):
        return None
    ignored = ("name", "kernel_initializer", "bias_initializer", "seed")
    return {"class": type(layer).__name__, **{key: value for key, value in config.items()
                                               if key not in ignored}}


def stacking_key(model: keras.Model) -> str | None:
    """What must agree for models to stack, or None for a model `StackedTrials` cannot
    stack: anything but a Sequential stack of convolutions and pooling, then one
    Flatten, then Dense and Dropout (or Dense and Dropout alone), or convolutions on a
    backend that cannot train a grouped one."""
    shape = tuple(model.inputs[0].shape[1:]) if isinstance(model, keras.Sequential) else ()
    if len(shape) not in (1, 3):
        return None
    settings = [plain_settings(layer) for layer in model.layers]
    if None in settings:
        return None
    flattened = len(shape) == 1
    for layer in model.layers:
        if isinstance(layer, layers.Flatten) and not flattened:
            flattened = True
        elif flattened != isinstance(layer, (layers.Dense, layers.Dropout)):
            return None
    if not flattened:  # the output must be one row per trial
        return None
    has_conv = any(isinstance(layer, layers.Conv2D) for layer in model.layers)
    if has_conv and not grouped_conv_trains(keras.config.dtype_policy().compute_dtype):
        return None
    return repr((shape, settings))


def alike_groups(models: Sequence[keras.Model]) -> list[list[int]]:
    """The models' positions, grouped: models with the same `stacking_key` (settings and
    trainable flags) form a group, in order of first appearance; a model that cannot be
    stacked is a group of its own."""
    groups: dict[str | int, list[int]] = {}
    seen: set[int] = set()  # layers shared between models train as one: not stacked
    for position, model in enumerate(models):
        own = {id(layer) for layer in model.layers}
        key = None if own & seen else stacking_key(model)
        seen |= own
        groups.setdefault(position if key is None else key, []).append(position)
    return list(groups.values())


class StackedTrials:
    """One network computing every trial of alike `models` (see `alike_groups`) on
    inputs of shape (batch, trials, *input shape), loaded with the trials' weights and
    Dropout streams; `write_back` copies them back into the trials' models."""

    def __init__(self, models: Sequence[keras.Model], name: str = "stacked_trials"):
        trials, shape = len(models), tuple(models[0].inputs[0].shape[1:])
        self.name = name
        inputs = keras.Input((trials, *shape), name="every_trial")
        x = TrialsToChannels()(inputs) if len(shape) == 3 else inputs
        self.stacked_and_originals: list[tuple[layers.Layer, tuple[layers.Layer, ...]]] = []
        for originals in zip(*(model.layers for model in models)):
            x = self.stacked_layer(originals, trials)(x)
        self.network = keras.Model(inputs, x, name=name)
        for layer, originals in self.stacked_and_originals:
            if isinstance(layer, StackedDropout):
                for stream, original in zip(layer.streams, originals):
                    stream.state.assign(original.seed_generator.state.value)
            else:
                layer.load([original.get_weights() for original in originals])

    def stacked_layer(self, originals: tuple[layers.Layer, ...], trials: int) -> layers.Layer:
        """The layer doing the work of `originals`, one layer per trial.

        Its name is this network's and the trials' layer's ("stacked_0_conv1"): two
        stacked groups in one model must not share a weight's path, or on PyTorch
        Keras tracks only one of the two and never clears the other's gradient, which
        then adds up from step to step (measured: a group of output heads beside a group
        of dense512 heads learned something else than alone).
        """
        first = originals[0]
        name = f"{self.name}_{first.name}"
        if isinstance(first, layers.Flatten):
            return StackedFlatten(trials, name=name)
        if isinstance(first, layers.MaxPooling2D):  # pools every channel alone
            return type(first).from_config({**first.get_config(), "name": name})
        kind = {layers.Conv2D: StackedConv2D, layers.Dense: StackedDense,
                layers.Dropout: StackedDropout}[type(first)]
        layer = kind(trials, first, name=name)
        self.stacked_and_originals.append((layer, originals))
        return layer

    def write_back(self) -> None:
        """Copies every trial's weights, and how far its Dropout stream has got, back
        into its own model, as if it had trained alone."""
        for layer, originals in self.stacked_and_originals:
            if isinstance(layer, StackedDropout):
                for stream, original in zip(layer.streams, originals):
                    original.seed_generator.state.assign(stream.state.value)
            else:
                for original, weights in zip(originals, layer.per_trial()):
                    original.set_weights(weights)


class SummedOverTrials(keras.losses.Loss):
    """Sparse cross-entropy, mean over each trial's batch, summed over trials: the sum of
    the losses the trials would have alone, so each gets exactly its own gradient."""

    def __init__(self, batch_size: int):
        super().__init__(reduction="sum", name="summed_over_trials")
        self.batch_size = batch_size

    def call(self, y_true, y_pred):
        return keras.losses.sparse_categorical_crossentropy(y_true, y_pred) / self.batch_size

