"""Makes common/lesson/cifar10_quick.npz, the small real CIFAR-10 sample `cifar_vgg.py --quick`
uses when CIFAR-10 cannot be had (offline, nothing in Keras's cache).

    python bench/make_cifar10_quick.py DATASET_DIR

DATASET_DIR holds CIFAR-10 in Keras's layout as uint8 arrays, split into
cifar10_train_part1.npz .. cifar10_train_part5.npz (x_train (10000, 32, 32, 3),
y_train (10000,) each; part p is data_batch_p) and cifar10_test.npz (x_test, y_test).
The copy the sample was made from holds the official split, JPEG-recompressed (lossy,
about 6/255 mean absolute error per pixel), its test set ordered class by class.

The sample: 20 training images per class (200) and 100 test images per class (1,000),
drawn without replacement with --seed. Training images keep their original order; test
images are shuffled, so that any first N of them are not all one class. Written with
numpy.savez_compressed in Keras's layout: x_train (200, 32, 32, 3), y_train (200,),
x_test (1000, 32, 32, 3), y_test (1000,), all uint8.
"""

import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTPUT = os.path.join(ROOT, "common", "lesson", "cifar10_quick.npz")


def read_split(folder: str) -> tuple[np.ndarray, ...]:
    """CIFAR-10's (x_train, y_train, x_test, y_test) from the six files in `folder`."""
    parts = [os.path.join(folder, f"cifar10_train_part{part}.npz") for part in range(1, 6)]
    test_path = os.path.join(folder, "cifar10_test.npz")
    missing = [path for path in (*parts, test_path) if not os.path.isfile(path)]
    if missing:
        sys.exit(f"make_cifar10_quick.py: error: {', '.join(missing)}: no such file")
    x_train, y_train = [], []
    for path in parts:
        with np.load(path, allow_pickle=False) as part:
            x_train.append(part["x_train"])
            y_train.append(part["y_train"].reshape(-1))
    with np.load(test_path, allow_pickle=False) as test:
        x_test, y_test = test["x_test"], test["y_test"].reshape(-1)
    return np.concatenate(x_train), np.concatenate(y_train), x_test, y_test


def draw(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of `per_class` images of each class 0..9, sorted (the original order)."""
    return np.sort(np.concatenate([rng.choice(np.flatnonzero(labels == label), per_class,
                                              replace=False) for label in range(10)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset_dir", help="folder of cifar10_train_part1..5.npz and "
                        "cifar10_test.npz")
    parser.add_argument("--train-per-class", type=int, default=20)
    parser.add_argument("--test-per-class", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=OUTPUT)
    args = parser.parse_args()

    x_train, y_train, x_test, y_test = read_split(args.dataset_dir)
    assert x_train.shape == (50_000, 32, 32, 3) and x_test.shape == (10_000, 32, 32, 3)
    assert x_train.dtype == x_test.dtype == np.uint8
    rng = np.random.default_rng(args.seed)
    train = draw(y_train, args.train_per_class, rng)
    test = rng.permutation(draw(y_test, args.test_per_class, rng))
    sample = {"x_train": x_train[train], "y_train": y_train[train].astype(np.uint8),
              "x_test": x_test[test], "y_test": y_test[test].astype(np.uint8)}
    temporary = args.out + ".tmp.npz"  # savez_compressed adds .npz to other names
    np.savez_compressed(temporary, **sample)
    os.replace(temporary, args.out)
    print(f"wrote {args.out} ({os.path.getsize(args.out):,} bytes): "
          f"{len(train)} training images ({np.bincount(sample['y_train']).tolist()} per class), "
          f"{len(test)} test images ({np.bincount(sample['y_test']).tolist()} per class)")


if __name__ == "__main__":
    main()
