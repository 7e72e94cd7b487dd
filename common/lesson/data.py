"""Datasets: loading (an .npz, Keras's loaders, the offline fallbacks), checking, class
splits, stratified samples, and reshaping images for other networks.

Every loader returns a `Dataset` whose arrays passed `check_images`/`check_labels`, so
the experiment code never sees a malformed array, and a file that cannot serve the
experiment (empty, a class missing, NaN pixels, ...) is refused before any training.

Offline fallbacks: MNIST falls back to scikit-learn's bundled 8x8 digits; CIFAR-10, for
`--quick` only, to `cifar10_quick.npz` next to this file: 20 training images per class
and 100 test images per class of the official CIFAR-10 split, drawn with a fixed seed
from a JPEG-recompressed copy of it (see bench/make_cifar10_quick.py).
"""

import dataclasses
import os
import zipfile
from collections.abc import Callable, Sequence

import numpy as np

from common.errors import UserInputError, brief

MNIST_SHAPE = (28, 28, 1)
MNIST_CLASSES = tuple(str(digit) for digit in range(10))  # label d is the digit d
EVEN_DIGITS = (0, 2, 4, 6, 8)  # the lecture's big (source) task
ODD_DIGITS = (1, 3, 5, 7, 9)  # its small (target) task
ODD_DIGIT_NAMES = tuple(str(digit) for digit in ODD_DIGITS)  # how errors name its classes
CIFAR10_SHAPE = (32, 32, 3)
# CIFAR-10's classes, in the order of its labels 0..9.
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
# Why a file must hold every class in both splits, said when one is missing.
EVERY_CLASS_NEEDED = {
    MNIST_CLASSES: "the experiments need all ten digits (the big task 0,2,4,6,8, the small "
                   "task 1,3,5,7,9) in both the training and the test set",
    CIFAR10_CLASSES: "the experiment trains and tests on all ten classes"}
# The real CIFAR-10 sample `--quick` falls back to offline (made by
# bench/make_cifar10_quick.py): 200 training and 1,000 test images, uint8, Keras's layout.
CIFAR10_SAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cifar10_quick.npz")
KERAS_KEYS = ("x_train", "y_train", "x_test", "y_test")
# The lecture's own CIFAR-10 cache (`numpy.savez(cifar10.npz, ...)`) used these names.
LECTURE_KEYS = ("training_inputs", "training_labels", "test_inputs", "test_labels")


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A train/test split in Keras's layout, checked, with where it came from."""

    x_train: np.ndarray  # images (n, height, width, channels), uint8 or float in [0, 1]
    y_train: np.ndarray  # integer labels 0..9, shape (n,)
    x_test: np.ndarray
    y_test: np.ndarray
    name: str  # "mnist", "digits", "cifar10" or "cifar10-sample" (the shipped sample)
    source: str  # a path or a loader, for the report
    warning: str = ""  # said at the start, in the summary and in the JSON

    def announcement(self) -> str:
        """What a run prints first about its data: its name and source, and loudly any
        warning (such as the digits standing in for MNIST)."""
        return f"data: {self.name} ({self.source})" + (f"\n\n*** {self.warning}\n"
                                                        if self.warning else "")

    def describe(self) -> dict:
        """What the JSON results record about the data."""
        return {"name": self.name, "source": self.source, "warning": self.warning,
                "train_images": len(self.y_train), "test_images": len(self.y_test)}


def check_images(x: np.ndarray, where: str, shape: tuple[int, int, int]) -> np.ndarray:
    """Checks an image array and returns it with a channel axis.

    Args:
        x: (n, height, width) or (n, height, width, channels) images, uint8 or float.
        where: the flag, file and split, for the error message.
        shape: the expected (height, width, channels).

    Returns:
        `x` with shape (n, height, width, channels).

    Raises:
        UserInputError: no images, wrong shape, a dtype other than uint8 or float, NaN or
            infinite pixels, floats outside [0, 1], or pixels that never get brighter than
            a wrong scaling leaves them (uint8 at most 1, floats at most 1/255).
    """
    given_shape = x.shape
    if x.ndim >= 1 and len(x) == 0:
        raise UserInputError(f"{where}: no images (an empty array of shape {given_shape}); "
                             "the experiment needs images in both the training and the test "
                             "set: pass the complete dataset file")
    if x.ndim == 3 and shape[2] == 1:
        x = x[..., None]
    if x.ndim != 4 or x.shape[1:] != shape:
        expected = f"(n, {shape[0]}, {shape[1]}" + (")" if shape[2] == 1 else f", {shape[2]})")
        raise UserInputError(f"{where}: images have shape {given_shape}, expected {expected}")
    if x.dtype == np.uint8:
        if x.max() <= 1:
            raise UserInputError(f"{where}: uint8 pixels only reach {x.max()} (of 255): blank "
                                 "images, or floats in [0, 1] cast to uint8; store "
                                 "(x * 255).round().astype('uint8'), or the floats themselves")
        return x
    if not np.issubdtype(x.dtype, np.floating):
        raise UserInputError(f"{where}: images have dtype {x.dtype}, expected uint8 (0..255) "
                             "or float (0..1)")
    not_finite = np.flatnonzero(~np.isfinite(x).all(axis=(1, 2, 3)))
    if len(not_finite):
        count = "1 image has" if len(not_finite) == 1 else f"{len(not_finite)} images have"
        raise UserInputError(f"{where}: {count} NaN or infinite pixels (the first: image "
                             f"{not_finite[0]}); drop those images or repair their pixels")
    if x.min() < 0 or x.max() > 1:
        raise UserInputError(f"{where}: float images must lie in [0, 1] (found "
                             f"{x.min():g}..{x.max():g}); store uint8 0..255 instead")
    if x.max() <= 1 / 255:
        raise UserInputError(f"{where}: float pixels only reach {x.max():g} (of 1): blank "
                             "images, or divided by 255 twice; store uint8 0..255, or floats "
                             "in [0, 1]")
    return x


def check_labels(y: np.ndarray, where: str, count: int,
                 class_names: Sequence[str] = MNIST_CLASSES) -> np.ndarray:
    """Checks a label array against its images and returns it as int64, shape (n,).

    Args:
        y: labels (n,) or (n, 1), integers 0..len(class_names)-1.
        where: the flag, file and split, for the error message.
        count: the number of images they label.
        class_names: the classes, in label order; every one must have an image.

    Raises:
        UserInputError: not integers (floats, one-hot), wrong shape or length, outside
            0..len(class_names)-1, or a class without any image.
    """
    num_classes = len(class_names)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]  # Keras's cifar10.load_data() gives (n, 1)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        if y.ndim == 2 and y.shape[1] == num_classes:
            fix = "they look one-hot: store y.argmax(axis=1)"
        elif y.ndim == 1 and np.issubdtype(y.dtype, np.floating):
            whole = np.isfinite(y).all() and (y == np.round(y)).all()
            fix = ("store them as integers: y.astype('uint8')" if whole else
                   "some are not whole numbers, so they are not class numbers")
        else:
            fix = "store one class number per image"
        raise UserInputError(f"{where}: labels have shape {y.shape} and dtype {y.dtype}, "
                             f"expected integers of shape (n,) or (n, 1); {fix}")
    if len(y) != count:
        raise UserInputError(f"{where}: {len(y)} labels for {count} images")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise UserInputError(f"{where}: labels must lie in 0..{num_classes - 1}, "
                             f"found {y.min()}..{y.max()}")
    missing = [name for name, images in zip(class_names, np.bincount(y, minlength=num_classes))
               if not images]
    if missing:
        why = EVERY_CLASS_NEEDED.get(tuple(class_names), "the experiment needs every class")
        raise UserInputError(f"{where}: no images of class{'es' if len(missing) > 1 else ''} "
                             f"{', '.join(missing)}; {why}: pass the complete dataset file")
    return y.astype(np.int64)


def checked_arrays(arrays: Sequence[np.ndarray], where: str, shape: tuple[int, int, int],
                   class_names: Sequence[str] = MNIST_CLASSES) -> tuple[np.ndarray, ...]:
    """Checks (x_train, y_train, x_test, y_test) with `check_images` and `check_labels`;
    `where` names their origin in errors ("--data PATH", "Keras's mnist.npz")."""
    x_train, y_train, x_test, y_test = arrays
    x_train = check_images(x_train, f"{where} (train images)", shape)
    x_test = check_images(x_test, f"{where} (test images)", shape)
    y_train = check_labels(y_train, f"{where} (train labels)", len(x_train), class_names)
    y_test = check_labels(y_test, f"{where} (test labels)", len(x_test), class_names)
    return x_train, y_train, x_test, y_test


def load_npz(path: str, shape: tuple[int, int, int],
             class_names: Sequence[str] = MNIST_CLASSES,
             where: str | None = None) -> tuple[np.ndarray, ...]:
    """Loads and checks (x_train, y_train, x_test, y_test) from an .npz file.

    Args:
        path: an .npz in Keras's layout (x_train, y_train, x_test, y_test) or in the
            lecture's CIFAR-10 cache layout (training_inputs, training_labels,
            test_inputs, test_labels).
        shape: the expected (height, width, channels) of one image.
        class_names: the classes, in label order; each must be in both splits.
        where: how errors name the file (default: "--data PATH").

    Raises:
        FileNotFoundError: no file at `path`.
        UserInputError: not a readable .npz, missing keys, or arrays that fail
            `check_images`/`check_labels`.
    """
    where = where or f"--data {path}"
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{where}: no such file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = set(archive.files)
            contents = {key: archive[key] for key in keys & {*KERAS_KEYS, *LECTURE_KEYS}}
    # An .npy loads as a bare array (no `files`, no context manager): TypeError.
    except (OSError, ValueError, TypeError, AttributeError, zipfile.BadZipFile,
            EOFError) as error:
        raise UserInputError(f"{where}: not a readable .npz file ({error})") from error
    layout = next((names for names in (KERAS_KEYS, LECTURE_KEYS) if keys >= set(names)), None)
    if layout is None:
        raise UserInputError(f"{where}: has keys {sorted(keys)}; expected "
                             f"{', '.join(KERAS_KEYS)} (Keras's layout) or "
                             f"{', '.join(LECTURE_KEYS)} (the lecture's)")
    arrays = [contents[key] for key in layout]
    return checked_arrays(arrays, where, shape, class_names)


def keras_cache_file(filename: str, folder: str = "datasets") -> str:
    """Where Keras keeps `filename` once downloaded: datasets in "datasets",
    keras.applications weights in "models"."""
    keras_home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return os.path.join(keras_home, folder, filename)


def load_from_keras(loader: Callable[[], tuple], filename: str, size: str,
                    shape: tuple[int, int, int],
                    class_names: Sequence[str] = MNIST_CLASSES) -> tuple[np.ndarray, ...]:
    """Calls a `keras.datasets` loader, saying first when it is about to download.

    Raises:
        ConnectionError: the file is not cached and the download failed.
    """
    cached = keras_cache_file(filename)
    if not os.path.exists(cached):
        print(f"{filename} is not in Keras's cache ({cached}); downloading it ({size}) ...")
    try:
        (x_train, y_train), (x_test, y_test) = loader()
    # Keras's get_file raises a bare Exception ("URL fetch failure ...") when offline.
    except Exception as error:  # noqa: BLE001 - re-raised with the cause attached
        raise ConnectionError(f"{filename} is not cached at {cached} and could not be "
                              f"downloaded ({brief(error)})") from error
    return checked_arrays((x_train, y_train, x_test, y_test), f"Keras's {filename}", shape,
                          class_names)


def load_mnist(data: str | None, dataset: str) -> Dataset:
    """MNIST from a file, from Keras's cache or download, or the bundled digits.

    Args:
        data: path to an .npz in Keras's layout, or None to use Keras's loader.
        dataset: "mnist" (never fall back), "digits" (always the bundled digits) or
            "auto" (MNIST if it can be had, else the bundled digits, said loudly).

    Raises:
        UserInputError: MNIST was required and cannot be had, or bad flags or file.
    """
    if dataset == "digits":
        if data:
            raise UserInputError("--data and --dataset digits exclude each other: "
                                 "drop one of them")
        return load_digits_as_mnist()
    if data:
        return Dataset(*load_npz(data, MNIST_SHAPE, MNIST_CLASSES), name="mnist",
                       source=os.path.abspath(data))
    import keras

    try:
        arrays = load_from_keras(keras.datasets.mnist.load_data, "mnist.npz", "11 MB",
                                 MNIST_SHAPE, MNIST_CLASSES)
    except ConnectionError as error:
        if dataset == "mnist":
            raise UserInputError(f"{error}. Pass --data PATH to a copy of mnist.npz "
                                 f"(Keras's layout), or put it at {keras_cache_file('mnist.npz')}, "
                                 "or connect to the internet once") from error
        digits = load_digits_as_mnist()
        warning = (f"MNIST is not available ({error}); using scikit-learn's bundled "
                   "digits (1,797 real 8x8 images) instead. Pass --data PATH to an "
                   "mnist.npz for the lecture's experiment.")
        return dataclasses.replace(digits, warning=warning)
    return Dataset(*arrays, name="mnist", source="keras.datasets.mnist.load_data()")


def load_cifar10(data: str | None, quick: bool = False) -> Dataset:
    """CIFAR-10 from a file (Keras's or the lecture's layout) or Keras's cache/download;
    offline with `quick`, the 200-image sample shipped for `--quick`, said loudly.

    Args:
        data: path to an .npz of CIFAR-10, or None to use Keras's loader.
        quick: the run is a `--quick` one, so the shipped sample may stand in for
            CIFAR-10 when Keras's loader cannot have it.

    Raises:
        UserInputError: not available offline (the message names the file to provide),
            or a malformed file.
    """
    if data:
        return Dataset(*load_npz(data, CIFAR10_SHAPE, CIFAR10_CLASSES), name="cifar10",
                       source=os.path.abspath(data))
    import keras

    try:
        arrays = load_from_keras(keras.datasets.cifar10.load_data, "cifar-10-batches-py-target",
                                 "170 MB", CIFAR10_SHAPE, CIFAR10_CLASSES)
    except ConnectionError as error:
        if quick:
            return load_cifar10_sample(str(error))
        raise UserInputError(f"{error}. Pass --data PATH to an .npz of CIFAR-10 (x_train, "
                             "y_train, x_test, y_test, or the lecture's training_inputs, "
                             "training_labels, test_inputs, test_labels), or connect to the "
                             "internet once") from error
    return Dataset(*arrays, name="cifar10", source="keras.datasets.cifar10.load_data()")


def load_cifar10_sample(reason: str) -> Dataset:
    """The real CIFAR-10 sample shipped for `--quick` (CIFAR10_SAMPLE), with a warning
    that gives `reason` (why CIFAR-10 itself could not be had)."""
    arrays = load_npz(CIFAR10_SAMPLE, CIFAR10_SHAPE, CIFAR10_CLASSES,
                      where=f"the shipped CIFAR-10 sample {CIFAR10_SAMPLE}")
    warning = (f"CIFAR-10 is not available ({reason}); using the {len(arrays[1])}-image "
               f"CIFAR-10 sample shipped for --quick ({len(arrays[1])} training, "
               f"{len(arrays[3]):,} test images, JPEG-recompressed), not the lecture's data. "
               "Pass --data PATH to a CIFAR-10 .npz for the lecture's experiment.")
    return Dataset(*arrays, name="cifar10-sample", source=CIFAR10_SAMPLE, warning=warning)


def load_digits_as_mnist(test_fraction: float = 0.3, seed: int = 0) -> Dataset:
    """scikit-learn's bundled 8x8 digits, made to look like MNIST, split train/test.

    MNIST centres each digit in a 20x20 box inside a 28x28 frame; the 8x8 images are
    resized to 20x20 and padded the same way. Each class keeps `test_fraction` of its
    images for testing (a fixed split, the same on every run).
    """
    import keras
    from sklearn.datasets import load_digits

    digits = load_digits()
    unit = digits.images[..., None].astype("float32") / 16.0  # pixels are 0..16
    boxes = keras.ops.convert_to_numpy(keras.ops.image.resize(unit, (20, 20)))
    framed = np.pad(np.clip(boxes, 0.0, 1.0), ((0, 0), (4, 4), (4, 4), (0, 0)))
    images = np.round(framed * 255).astype(np.uint8)
    labels = digits.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    is_test = np.zeros(len(labels), dtype=bool)
    for digit in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == digit))
        is_test[members[: round(len(members) * test_fraction)]] = True
    return Dataset(images[~is_test], labels[~is_test], images[is_test], labels[is_test],
                   name="digits", source="sklearn.datasets.load_digits() resized to 28x28")


def select_classes(x: np.ndarray, y: np.ndarray,
                   classes: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The images of `classes`, with labels renumbered 0..len(classes)-1 in that order.

    Example: classes (1, 3, 5, 7, 9) keeps the odd digits and maps 1->0, 3->1, ... 9->4.
    """
    mask = np.isin(y, classes)
    lookup = np.full(int(max(classes)) + 1, -1)
    lookup[list(classes)] = np.arange(len(classes))
    return x[mask], lookup[y[mask]]


def subsample(x: np.ndarray, y: np.ndarray, limit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """At most `limit` random images of (x, y), in their original order (all when 0)."""
    if not limit or limit >= len(y):
        return x, y
    keep = np.sort(np.random.default_rng(seed).choice(len(y), limit, replace=False))
    return x[keep], y[keep]


def stratified_sample(labels: np.ndarray, per_class: int, rng: np.random.Generator,
                      class_names: Sequence[str] | None = None,
                      flag: str = "--small-size") -> np.ndarray:
    """Indices of `per_class` images of every class, drawn without replacement.

    Args:
        labels: labels 0..k-1.
        per_class: images to draw from each class.
        rng: the trial's generator, so each trial draws its own set.
        class_names: how to name class i in errors (default: its number).
        flag: the command-line flag that sets the sample size, for errors.

    Raises:
        UserInputError: some class has fewer than `per_class` images.
    """
    chosen = []
    for label in range(int(labels.max()) + 1):
        members = np.flatnonzero(labels == label)
        if len(members) < per_class:
            name = class_names[label] if class_names else str(label)
            raise UserInputError(f"class {name} has only {len(members)} images, fewer than the "
                                 f"{per_class} per class asked for (lower {flag})")
        chosen.append(rng.choice(members, per_class, replace=False))
    return np.concatenate(chosen)


def task_images(x: np.ndarray, y: np.ndarray, classes: Sequence[int], limit: int = 0,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One task's images: those of `classes` (labels renumbered 0..k-1), at most `limit`
    of them drawn with `seed` (0: all), as floats in [0, 1]."""
    picked_x, picked_y = subsample(*select_classes(x, y, classes), limit, seed)
    return to_unit_float(picked_x), picked_y


def two_tasks(dataset: Dataset, source: Sequence[int], target: Sequence[int],
              source_size: int = 0, test_size: int = 0,
              seed: int = 0) -> tuple[tuple, tuple, tuple, tuple]:
    """The lecture's two tasks of one dataset (`task_images` of each): the source task's
    training and test images, the target task's whole training pool and its test images.

    Args:
        dataset: the loaded data.
        source: the source (big) task's classes, e.g. the even digits.
        target: the target (small) task's classes, e.g. the odd digits.
        source_size: use at most this many source training images (0: all).
        test_size: use at most this many test images of each task (0: all).
        seed: draws those subsets.

    Returns:
        (source train, source test, target pool, target test), each (images, labels).
    """
    return (task_images(dataset.x_train, dataset.y_train, source, source_size, seed),
            task_images(dataset.x_test, dataset.y_test, source, test_size, seed),
            task_images(dataset.x_train, dataset.y_train, target),
            task_images(dataset.x_test, dataset.y_test, target, test_size, seed))


def small_sets(pool: tuple[np.ndarray, np.ndarray], size: int, seeds: Sequence[int],
               class_names: Sequence[str] | None = None,
               flag: str = "--small-size") -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Each trial's small training set: `size` images drawn from `pool`, the same number
    from each class, by the trial's seed.

    Raises:
        UserInputError: `size` is no multiple of the classes, or a class is too small.
    """
    classes = int(pool[1].max()) + 1
    if size % classes:
        raise UserInputError(f"{flag} {size}: must be a multiple of {classes} (the same "
                             "number of images from each class)")
    return {seed: (pool[0][chosen], pool[1][chosen]) for seed, chosen in zip(seeds, [
        stratified_sample(pool[1], size // classes, np.random.default_rng(seed), class_names,
                          flag) for seed in seeds])}


def to_unit_float(x: np.ndarray) -> np.ndarray:
    """Images as float32 in [0, 1] (uint8 pixels are divided by 255)."""
    return x.astype("float32") / 255.0 if x.dtype == np.uint8 else x.astype("float32")


def pad_and_repeat(x: np.ndarray, pad: int = 2, channels: int = 3) -> np.ndarray:
    """Zero-pads each side by `pad` pixels and repeats a single channel `channels` times.

    Turns MNIST's 28x28x1 digits into the 32x32x3 images VGG16 accepts.
    """
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    return np.repeat(padded, channels, axis=-1)
