"""What the layers of a trained network learned: first-layer filters and feature maps.

The lecture's other texts show that early layers are generic (edges, blobs: useful for
any task, so they transfer) and deeper layers specific (sparse, abstract: tied to the
task they were trained on). This script shows it for a saved model: the first
convolutional layer's filters, and for one test image the feature maps of every
convolutional layer, with the share of active units per layer.

    python tl_mnist.py && python visualize.py    # the lecture's CNN (saved_models/mnist_5_15.keras)
    python visualize.py --base vgg16 --data cifar10.npz --image-index 3
    python visualize.py --base vgg16 --dataset mnist     # a digit padded to 32x32x3
    python visualize.py --quick                  # no saved model, no download: seconds

Writes to results/visualize/: filters.png (the first layer's filters), feature_maps.png
(the input image, then a row per convolutional layer: its first --max-maps channels),
activity.png and visualize.json (per layer: output shape, share of units active, i.e.
above zero after ReLU, on this image and on 100 test images; channels with any activity).

Expect, for the lecture's CNN trained by tl_mnist.py on MNIST (test image 0, a 7):
conv1's maps are the whole digit seen through edge filters, 41% of its units active;
conv2's maps pick out parts (the top bar, the diagonal stroke), 17% active. With random
weights (--weights none) about half the units respond at every depth: nothing was learned.
With --quick and no saved model, a stand-in CNN is trained for one epoch (said in the
output); its filters are still rough and its conv2 is not yet sparse.
"""

import dataclasses
import functools
import math
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

from common import startup

startup.prepare_tensorflow()  # before keras, as keras-io sets KERAS_BACKEND
import keras
from keras import layers

import tl_mnist  # the lecture's CNN, where a student reads it: tl_mnist.lecture_cnn
from common import engine, files
from common.lesson import bases, data, saved_models, transfer
from common.lesson.settings import FitSettings
from common.runs import cli, tables
from common.runs.device import configure_device

QUICK_IMAGES = 2_000  # images of digits 0,2,4,6,8 the --quick stand-in model trains on
ACTIVITY_IMAGES = 100  # test images the mean share of active units is taken over


@dataclass(frozen=True)
class Config:
    """What to look into; every field is a command-line flag."""

    seed: int = cli.shared("seed", 0)
    data: str | None = cli.shared("data", None)
    dataset: str = cli.shared("dataset", "auto", choices=("auto", "mnist", "cifar10"))
    image_index: int = cli.option(0, "which test image to show", group="data", minimum=0)
    base_file: str = cli.shared("base_file", "saved_models/mnist_5_15.keras")
    base: str | None = cli.shared("base", None, choices=("vgg16",))  # instead of --base-file
    weights: str = cli.shared("weights", "imagenet")
    max_maps: int = cli.option(16, "channels shown per convolutional layer (the first ones)",
                               group="output", minimum=1)
    out: str = cli.shared("out", "results/visualize")
    # never download and never need a saved model: a stand-in CNN trained for one epoch
    # if --base-file is missing, random VGG16 weights and the bundled digits if nothing
    # is cached
    quick: bool = cli.shared("quick", False)

    @property
    def model_name(self) -> str:
        """What is looked into: --base, else --base-file."""
        return self.base or self.base_file


QUICK: dict = {}  # --quick sets no other flag; it only allows the stand-ins above


# 1. The model and its data

@functools.lru_cache(maxsize=1)  # loaded once, even when the stand-in model needs it too
def mnist_data(config: Config) -> data.Dataset:
    """MNIST from --data or Keras (offline: the bundled digits); --quick never downloads."""
    mode = "mnist" if config.dataset == "mnist" else "auto"
    if (mode == "auto" and config.quick and not config.data
            and not os.path.exists(data.keras_cache_file("mnist.npz"))):
        print("--quick: MNIST is not in Keras's cache; using scikit-learn's bundled digits "
              "instead of downloading it")
        mode = "digits"
    dataset = data.load_mnist(config.data, mode)
    print(dataset.announcement())
    return dataset


def stand_in_model(config: Config) -> tuple[keras.Model, dict]:
    """--quick without a saved model: the lecture's CNN, one epoch on the even digits."""
    print(f"--quick: no model at {config.base_file}; training a STAND-IN now: the lecture's CNN, "
          f"1 epoch on at most {QUICK_IMAGES:,} images of digits 0,2,4,6,8 (not the lecture's "
          "15-epoch model; run python tl_mnist.py for that)")
    dataset = mnist_data(config)
    train, test = [data.select_classes(x, y, data.EVEN_DIGITS) for x, y in
                   ((dataset.x_train, dataset.y_train), (dataset.x_test, dataset.y_test))]
    train = data.subsample(*train, QUICK_IMAGES, config.seed)
    model = tl_mnist.lecture_cnn(len(data.EVEN_DIGITS), seed=config.seed)
    engine.pretrain({config.seed: model}, {config.seed: (data.to_unit_float(train[0]), train[1])},
                    FitSettings(epochs=1, batch_size=32), label="stand-in model")
    accuracy = engine.accuracies([model], data.to_unit_float(test[0]), test[1])[0]
    print(f"  stand-in model: {100 * accuracy:.1f}% on the test images of digits 0,2,4,6,8")
    return model, {"source": "stand-in trained now (--quick)", "dataset": dataset.name,
                   "images": len(train[1]), "epochs": 1, "test_accuracy": accuracy}


def load_model(config: Config) -> tuple[keras.Model, dict]:
    """VGG16, the saved model, or with --quick a stand-in; and what the JSON says of it."""
    if config.base == "vgg16":
        weights = config.weights
        cached = data.keras_cache_file(bases.VGG16_NOTOP_FILE, "models")
        if config.quick and weights == "imagenet" and not os.path.exists(cached):
            print("--quick: VGG16's ImageNet weights are not in Keras's cache; using RANDOM "
                  "weights (--weights none) instead of downloading 58 MB")
            weights = "none"
        return bases.pretrained_base("vgg16", weights, seed=config.seed), {
            "source": "keras.applications.VGG16", "weights": bases.weights_label(weights)}
    if config.weights != "imagenet":
        raise cli.UserInputError(f"--weights {config.weights}: only with --base vgg16 (a saved "
                                 "model brings its own weights); drop --weights")
    if os.path.isfile(config.base_file):
        return (saved_models.load_model(config.base_file, "--base-file"),
                {"source": config.base_file})
    if config.quick:
        return stand_in_model(config)
    raise FileNotFoundError(f"--base-file {config.base_file}: no such file; run python "
                            "tl_mnist.py first (it saves saved_models/mnist_5_15.keras), pass "
                            "--base-file PATH or --base vgg16, or add --quick for a stand-in")


def load_test_set(config: Config, input_shape: tuple) -> tuple[data.Dataset, np.ndarray]:
    """The dataset, and its test images in the shape the model takes (uint8 or [0, 1])."""
    if input_shape == data.MNIST_SHAPE:
        if config.dataset == "cifar10":
            raise cli.UserInputError("--dataset cifar10: the model takes 28x28x1 digits; use "
                                     "--dataset mnist or auto")
        dataset = mnist_data(config)
        return dataset, dataset.x_test
    if input_shape != data.CIFAR10_SHAPE:
        raise cli.UserInputError(f"{config.model_name}: takes images of shape {input_shape}; "
                                 "visualize.py feeds 28x28x1 digits (MNIST) or 32x32x3 images "
                                 "(CIFAR-10, padded MNIST)")
    use_mnist = config.dataset == "mnist"
    cifar_cached = os.path.exists(data.keras_cache_file("cifar-10-batches-py-target"))
    if config.dataset == "auto" and config.quick and not config.data and not cifar_cached:
        print("--quick: CIFAR-10 is not in Keras's cache; showing a digit padded to 32x32x3 "
              "instead of downloading 170 MB")
        use_mnist = True
    if not use_mnist:
        dataset = data.load_cifar10(config.data)
        return dataset, dataset.x_test
    dataset = mnist_data(config)
    return dataset, data.pad_and_repeat(dataset.x_test)  # 28x28x1 -> 32x32x3, as mnist_vgg.py


# 2. Every convolutional layer's output

def conv_layers(model: keras.Model) -> list[layers.Layer]:
    """Every Conv2D in the model, nested models (VGG16 inside a Sequential) included."""
    return [layer for layer in transfer.sublayers(model) if isinstance(layer, layers.Conv2D)]


def uses_vgg_input(model: keras.Model) -> bool:
    """Whether the model is or holds keras.applications' VGG16, which wants BGR, mean-free input."""
    return any(layer.name == "vgg16" for layer in transfer.sublayers(model))


def call_recording(model: keras.Model, x, found: list) -> object:
    """Calls `model` on the tensor `x`, appending (layer, output) for each Conv2D in it.

    A layer's `.output` is connected only to the inputs of the model that holds it
    directly, so a model nested in a Sequential is looked into and called on its own.
    """
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if not nested:  # any graph: one sub-model from its input to each Conv2D and its output
        convs = [layer for layer in model.layers if isinstance(layer, layers.Conv2D)]
        *maps, output = keras.Model(model.inputs, [layer.output for layer in convs]
                                    + [model.outputs[0]])(x)
        found.extend(zip(convs, maps))
        return output
    if not isinstance(model, keras.Sequential):
        raise cli.UserInputError(f"model {model.name!r}: a functional model with the models "
                                 f"{[layer.name for layer in nested]} inside; visualize.py looks "
                                 "into nested models only in a Sequential")
    for layer in transfer.model_layers(model):
        x = call_recording(layer, x, found) if isinstance(layer, keras.Model) else layer(x)
        if isinstance(layer, layers.Conv2D):
            found.append((layer, x))
    return x


def feature_maps(model: keras.Model, images: np.ndarray) -> list[tuple[layers.Layer, np.ndarray]]:
    """(layer, its output for `images`) for each Conv2D, in the order they run."""
    inputs = keras.Input(model.inputs[0].shape[1:])
    found: list = []
    call_recording(model, inputs, found)
    probe = keras.Model(inputs, [output for _, output in found])
    outputs = probe(images, training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return [(layer, keras.ops.convert_to_numpy(maps)) for (layer, _), maps in zip(found, outputs)]


def layer_activity(layer: layers.Layer, maps: np.ndarray) -> dict:
    """One layer's numbers: maps (n, h, w, c), the chosen image first."""
    active = maps > 0  # after ReLU: a unit that responds at all
    return {"layer": layer.name, "output_shape": list(maps.shape[1:]),
            "kernel_shape": list(layer.kernel.shape),
            "activation": getattr(layer.activation, "__name__", str(layer.activation)),
            "active_fraction": float(active[0].mean()),
            "active_fraction_mean": float(active.mean()),
            "active_channels": int(active[0].any(axis=(0, 1)).sum()),
            "channels": int(maps.shape[-1])}


# 3. Pictures (each a grid of small images with 1-pixel gaps, drawn as one image)

def shape_text(shape) -> str:
    """(26, 26, 32) -> "26x26x32"."""
    return "x".join(str(size) for size in shape)


def row_title(row: dict, max_maps: int) -> str:
    """A layer's line above its maps: name, output shape, what is shown, its activity."""
    return (f"{row['layer']}: output {shape_text(row['output_shape'])}, first "
            f"{min(max_maps, row['channels'])} of {row['channels']} channels; "
            f"{100 * row['active_fraction']:.0f}% of units active, {row['active_channels']} "
            "channels with any")


def mosaic(tiles: np.ndarray, columns: int) -> np.ndarray:
    """Tiles (n, h, w) or (n, h, w, 3) in rows of `columns`, with NaN between them."""
    count, height, width = tiles.shape[:3]
    rows = math.ceil(count / columns)
    grid = np.full((rows * (height + 1) - 1, columns * (width + 1) - 1, *tiles.shape[3:]), np.nan)
    for k, tile in enumerate(tiles):
        top, left = (k // columns) * (height + 1), (k % columns) * (width + 1)
        grid[top:top + height, left:left + width] = tile
    return grid


def enlarge(tiles: np.ndarray, size: int) -> np.ndarray:
    """Tiles (n, h, w, ...) with each pixel repeated until they are about `size` pixels high,
    so the 1-pixel gaps between small tiles (3x3 filters, 2x2 maps) stay thin."""
    zoom = max(1, size // tiles.shape[1])
    return tiles.repeat(zoom, axis=1).repeat(zoom, axis=2)


def label_tiles(axes, count: int, columns: int, height: int, width: int, what: str) -> None:
    """Ticks at the tiles: columns numbered along x, each row's first number along y."""
    rows = math.ceil(count / columns)
    axes.set_xticks([k * (width + 1) + (width - 1) / 2 for k in range(min(count, columns))],
                    [str(k) for k in range(min(count, columns))], fontsize=7)
    axes.set_yticks([r * (height + 1) + (height - 1) / 2 for r in range(rows)],
                    [str(r * columns) for r in range(rows)], fontsize=7)
    if rows > 1:
        axes.set_xlabel(f"{what} number = row's first number + column", fontsize=8)
    else:
        axes.set_yticks([])
        axes.set_xlabel(what, fontsize=8)


def plot_filters(path: str, kernel: np.ndarray, title: str, bgr: bool) -> None:
    """The first layer's filters: gray with one shared scale, or RGB each stretched to [0, 1]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    channels, count = kernel.shape[2:]
    tiles = enlarge(np.moveaxis(kernel, -1, 0), 24)  # (filters, height, width, input channels)
    height, width = tiles.shape[1:3]
    columns = min(count, 8)
    rows = math.ceil(count / columns)
    figure, axes = plt.subplots(figsize=(6.5, 1.0 + 5.2 * rows / columns), layout="constrained")
    if channels == 3:
        tiles = tiles[..., ::-1] if bgr else tiles  # VGG16's first layer sees BGR; show RGB
        low = tiles.min(axis=(1, 2, 3), keepdims=True)
        high = tiles.max(axis=(1, 2, 3), keepdims=True)
        tiles = (tiles - low) / np.maximum(high - low, 1e-12)
        axes.imshow(np.nan_to_num(mosaic(tiles, columns), nan=1.0), interpolation="nearest")
        scale = "each filter stretched to [0, 1] on its own"
    else:
        tiles = tiles.mean(axis=-1)  # one input channel: the filter itself
        limit = float(np.abs(tiles).max()) or 1.0
        shown = axes.imshow(mosaic(tiles, columns), interpolation="nearest", vmin=-limit,
                            vmax=limit, cmap=plt.get_cmap("gray").with_extremes(bad="tab:orange"))
        figure.colorbar(shown, ax=axes, label="weight (one scale for all filters)", shrink=0.8)
        scale = "white: positive, black: negative" + (
            f"; mean over {channels} input channels" if channels > 1 else "")
    label_tiles(axes, count, columns, height, width, "filter")
    axes.set_ylabel("filter")
    axes.set_title(f"{title}\n{count} filters of {kernel.shape[0]}x{kernel.shape[1]} pixels "
                   f"({scale})", fontsize=9)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot_feature_maps(path: str, image: np.ndarray, image_title: str,
                      layer_maps: list[tuple[str, np.ndarray]], max_maps: int) -> None:
    """The input image, then a row per layer: its first `max_maps` channels, one colour scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(max_maps, 16)
    tile_rows = [1] + [math.ceil(min(max_maps, maps.shape[-1]) / columns) for _, maps in layer_maps]
    figure, all_axes = plt.subplots(
        len(tile_rows), 1, figsize=(13, 0.6 + sum(1.3 + 0.75 * (rows - 1) for rows in tile_rows)),
        height_ratios=[1.0 + 0.75 * (rows - 1) for rows in tile_rows], layout="constrained")
    axes = all_axes[0]
    axes.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=1)
    axes.set_anchor("W")  # at the left, above the first maps
    scale = " (pixels 0: black to 1: white)" if image.shape[-1] == 1 else ""
    axes.set_title(image_title + scale, loc="left", fontsize=9)
    axes.set_xlabel("x (pixels)", fontsize=7)
    axes.set_ylabel("y", fontsize=7)
    axes.tick_params(labelsize=6)
    cmap = plt.get_cmap("viridis").with_extremes(bad="white")
    for axes, (title, maps) in zip(all_axes[1:], layer_maps):
        tiles = enlarge(np.moveaxis(maps[..., :max_maps], -1, 0), 16)
        low, high = min(0.0, float(maps.min())), max(float(maps.max()), 1e-6)
        shown = axes.imshow(mosaic(tiles, columns), cmap=cmap, vmin=low, vmax=high,
                            interpolation="nearest")
        figure.colorbar(shown, ax=axes, label="activation", fraction=0.02, aspect=8, pad=0.01)
        label_tiles(axes, len(tiles), columns, *tiles.shape[1:3], "channel")
        axes.set_title(title, loc="left", fontsize=9)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_activity(path: str, rows: list[dict], title: str) -> None:
    """Per layer: the share of active units and channels, and the maps' size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [row["layer"] for row in rows]
    x = np.arange(len(rows))
    figure, (left, right) = plt.subplots(1, 2, figsize=(max(9.0, 3 + 0.6 * len(rows)), 4.6),
                                         layout="constrained")
    left.bar(x - 0.2, [100 * row["active_fraction"] for row in rows], 0.4, label="this image")
    left.bar(x + 0.2, [100 * row["active_fraction_mean"] for row in rows], 0.4,
             label=f"mean of {ACTIVITY_IMAGES} test images")
    left.plot(x, [100 * row["active_channels"] / row["channels"] for row in rows], "k.-",
              label="channels with any active unit (this image)")
    left.set_ylim(0, 100)
    left.set_ylabel("active units, > 0 (%)")
    left.set_title("units that respond to the image", fontsize=9)
    figure.legend(fontsize=8, loc="outside lower left", ncol=3)
    right.bar(x, [row["output_shape"][0] for row in rows], color="C2")
    for k, row in enumerate(rows):
        right.annotate(f"x{row['channels']}", (k, row["output_shape"][0]), ha="center",
                       va="bottom", fontsize=7)
    right.set_ylabel("feature map height = width (pixels)")
    right.set_title("size of the maps (x channels above each bar)", fontsize=9)
    for axes in (left, right):
        axes.set_xticks(x, names, rotation=45 if len(rows) > 4 else 0, ha="right"
                        if len(rows) > 4 else "center", fontsize=8)
        axes.set_xlabel("convolutional layer, in the order they run")
        axes.grid(axis="y", alpha=0.3)
    figure.suptitle(title, fontsize=10)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(config: Config) -> dict:
    start = time.perf_counter()
    device = configure_device()
    print(f"visualize: {config.model_name}, device {device}")
    keras.utils.set_random_seed(config.seed)

    # 1. Load the model (a saved one, VGG16, or with --quick a stand-in trained now)
    model, about_model = load_model(config)
    convs = conv_layers(model)
    if not convs:
        kinds = ", ".join(type(layer).__name__ for layer in transfer.model_layers(model))
        raise cli.UserInputError(f"{config.model_name}: has no Conv2D layer ({kinds}); "
                                 "visualize.py shows what convolutional layers learned")
    input_shape = tuple(model.inputs[0].shape[1:])
    print(f"model: {model.name} ({about_model['source']}), input {input_shape}, "
          f"{len(convs)} convolutional layers: {', '.join(layer.name for layer in convs)}")

    # 2. Pick the image (and the first test images, for the mean activity)
    dataset, images = load_test_set(config, input_shape)
    if not 0 <= config.image_index < len(images):
        raise cli.UserInputError(f"--image-index {config.image_index}: the test set has "
                                 f"{len(images):,} images; choose 0 to {len(images) - 1}")
    label = int(dataset.y_test[config.image_index])
    label_name = data.CIFAR10_CLASSES[label] if dataset.name == "cifar10" else f"digit {label}"
    others = [k for k in range(min(ACTIVITY_IMAGES + 1, len(images))) if k != config.image_index]
    chosen = images[[config.image_index, *others[:ACTIVITY_IMAGES - 1]]]
    inputs = bases.preprocess(chosen, "vgg16") if uses_vgg_input(model) else data.to_unit_float(chosen)
    print(f"image: test image {config.image_index} of {dataset.name} ({label_name}), "
          f"{images.shape[1:]}; mean activity over {len(chosen)} test images")

    # 3. The first convolutional layer's filters
    os.makedirs(config.out, exist_ok=True)
    filters_path = os.path.join(config.out, "filters.png")
    plot_filters(filters_path, keras.ops.convert_to_numpy(convs[0].kernel),
                 f"first convolutional layer {convs[0].name!r} of {model.name}",
                 bgr=uses_vgg_input(model))

    # 4. The feature maps of every convolutional layer for the image
    maps = feature_maps(model, inputs)
    rows = [layer_activity(layer, layer_maps) for layer, layer_maps in maps]
    maps_path = os.path.join(config.out, "feature_maps.png")
    plot_feature_maps(maps_path, data.to_unit_float(chosen[0]),
                      f"input: test image {config.image_index} of {dataset.name}, {label_name}, "
                      f"{shape_text(images.shape[1:])}",
                      [(row_title(row, config.max_maps), layer_maps[0])
                       for row, (_, layer_maps) in zip(rows, maps)], config.max_maps)

    # 5. Summarise: generic (dense, large maps) -> specific (sparse, small maps)
    activity_path = os.path.join(config.out, "activity.png")
    weights = f" ({about_model['weights']})" if "weights" in about_model else ""
    plot_activity(activity_path, rows, f"{model.name}{weights}; test image "
                  f"{config.image_index} of {dataset.name} ({label_name})")
    print(f"\n{'layer':16s} {'output':>12s} {'kernel':>14s} {'active units':>13s} "
          f"{f'mean of {len(chosen)}':>11s} {'channels with any':>18s}")
    for row in rows:
        print(f"{row['layer']:16s} {shape_text(row['output_shape']):>12s} "
              f"{shape_text(row['kernel_shape']):>14s} "
              f"{100 * row['active_fraction']:12.1f}% {100 * row['active_fraction_mean']:10.1f}% "
              f"{row['active_channels']:>10d} of {row['channels']}")
    json_path = os.path.join(config.out, "visualize.json")
    payload = {"script": "visualize", "config": dataclasses.asdict(config), "model": about_model,
               "dataset": dataset.describe(),
               "image": {"index": config.image_index, "label": label, "name": label_name},
               "activity_images": len(chosen), "first_layer": rows[0]["layer"], "layers": rows,
               "plots": [os.path.basename(p) for p in (filters_path, maps_path, activity_path)],
               "device": device, "environment": tables.environment(),
               "wall_time_s": round(time.perf_counter() - start, 2)}
    files.atomic_write_json(json_path, payload)
    if about_model.get("weights", "").startswith("random"):
        print("*** random weights: nothing was learned, so about half the units respond at "
              "every depth; a trained network's deeper layers respond to fewer")
    if about_model["source"].startswith("stand-in"):
        print("*** a stand-in model trained for one epoch now (--quick), not the lecture's")
    print(f"wall time {payload['wall_time_s']:.0f} s; wrote {filters_path}, {maps_path}, "
          f"{activity_path} and {json_path}")
    return payload


if __name__ == "__main__":
    sys.exit(cli.run_script(main, cli.parse_config(Config, None, __doc__, QUICK), "visualize.py",
                            stop_at_epoch_end=False))  # Ctrl-C stops at once
