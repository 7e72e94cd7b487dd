"""Convolutions on maps smaller than their kernel, as one matrix product (JAX on a CPU).

VGG16 on 32x32 images ends in three 3x3 convolutions over 2x2 maps of 512 channels.
XLA's CPU convolution is slow on a map smaller than its kernel: on a 2-core AMD EPYC
(AVX2), one such convolution of 128 images takes 1.8 s (1.3 GFLOP/s), while the same
sum as a product of the 3x3 patches (im2col) with the kernel takes 18 ms, and the
frozen VGG16's features of 1,200 images take 62 s instead of 7 s on TensorFlow
(docs/speed.md). `small_maps_as_matmuls(body, small_map_convolutions(body))` gives the
frozen body the engine computes features with, that product in their place; the
weights are the body's own, and the sums differ only in their order (about 1e-6
relative).
"""

import keras
from keras import layers, ops

from common.lesson.transfer import sublayers


def small_map_convolutions_are_slow() -> bool:
    """Whether convolutions run through XLA on a CPU: Keras's JAX backend on a CPU."""
    if keras.backend.backend() != "jax":
        return False
    import jax  # only with the JAX backend, which has it installed

    return jax.default_backend() == "cpu"


def small_map_convolutions(body: keras.Model) -> list[layers.Conv2D]:
    """The body's Conv2D layers (nested models included) that run on a map smaller
    than their kernel and that `ConvAsMatmul` can compute: channels last, 'same'
    padding (a 'valid' kernel fits its map), stride 1, no dilation, no groups."""
    return [layer for layer in sublayers(body)
            if isinstance(layer, layers.Conv2D) and layer.data_format == "channels_last"
            and layer.padding == "same" and tuple(layer.strides) == (1, 1)
            and tuple(layer.dilation_rate) == (1, 1) and layer.groups == 1
            and any(size < kernel for size, kernel in
                    zip(layer.input.shape[1:3], layer.kernel_size))]


class ConvAsMatmul(layers.Layer):
    """`conv`'s output from its own weights, as the product of the input's patches
    with the kernel (im2col); for 'same' convolutions of stride 1 without dilation."""

    def __init__(self, conv: layers.Conv2D) -> None:
        super().__init__(name=f"{conv.name}_as_matmul", dtype=conv.dtype_policy,
                         trainable=False)
        self.conv = conv

    def call(self, images):
        conv = self.conv
        kernel_height, kernel_width, channels, filters = conv.kernel.shape
        out_height, out_width = images.shape[1:3]  # 'same' padding at stride 1
        top, left = (kernel_height - 1) // 2, (kernel_width - 1) // 2  # as TensorFlow's
        images = ops.pad(images, [[0, 0], [top, kernel_height - 1 - top],
                                  [left, kernel_width - 1 - left], [0, 0]])
        # Patch channel (i * kernel_width + j) * channels + c meets the kernel's row for
        # tap (i, j) and input channel c, as the kernel's reshape orders them.
        patches = ops.concatenate(
            [images[:, i:i + out_height, j:j + out_width, :]
             for i in range(kernel_height) for j in range(kernel_width)], axis=-1)
        outputs = ops.matmul(patches, ops.reshape(
            conv.kernel, (kernel_height * kernel_width * channels, filters)))
        if conv.use_bias:
            outputs = outputs + conv.bias
        return conv.activation(outputs)

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(input_shape)


def small_maps_as_matmuls(body: keras.Model, convolutions: list[layers.Conv2D]) -> keras.Model:
    """`body` with each of `convolutions` (`small_map_convolutions(body)`) computed by
    `ConvAsMatmul`; every layer is the body's own, so the weights are shared."""
    chosen = {id(conv) for conv in convolutions}
    return keras.models.clone_model(
        body, recursive=True,
        clone_function=lambda layer: ConvAsMatmul(layer) if id(layer) in chosen else layer)
