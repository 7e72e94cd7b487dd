"""The GPU check: the toolkit's runs on an NVIDIA GPU, timed, into one JSON.

Made for a machine with a GPU, JAX and PyTorch but no TensorFlow (Keras on its JAX
backend). It runs, each script in its own process, timed:

  1. the quick runs of tl_mnist.py, mnist_vgg.py and cifar_vgg.py (random VGG16 weights);
  2. tl_mnist.py's lecture protocol on real MNIST (15 trials, pretraining included), in
     float32 and in mixed_bfloat16;
  3. cifar_vgg.py's three CNN rows (tanh, ReLU, sigmoid) on CIFAR-10, 100 images per class.

It prints each run's accuracies, wall time and device, and writes <out>/gpu_check.json.
`--dry-run` runs the same steps at small sizes on whatever device there is (a CPU), to
try the check before a GPU is lent. bench/gpu_check.sh is the entry point (it installs
carried wheels first); see docs/speed.md.

    python bench/gpu_check.py --data-dir bench/data            # on the GPU machine
    python bench/gpu_check.py --data-dir bench/data --dry-run  # on a CPU, small sizes
    python bench/gpu_check.py --prepare-data DIR               # bench/data from full copies

`--prepare-data DIR` writes bench/data/mnist.npz and a compact bench/data/cifar10.npz
(500 training images per class, 2,000 test images) from DIR's mnist.npz and CIFAR-10
(`cifar10.npz`, or the six files cifar10_train_part1..5.npz and cifar10_test.npz), small
enough to travel with a copy of the working tree.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_DIR = os.path.join(ROOT, "bench", "data")
CIFAR_TRAIN_PER_CLASS, CIFAR_TEST_IMAGES = 500, 2000  # what --prepare-data keeps


def steps(data_dir: str, dry_run: bool) -> list[tuple[str, list[str]]]:
    """(name, script and flags) of each run of the check; smaller with `dry_run`."""
    mnist = os.path.join(data_dir, "mnist.npz")
    cifar = os.path.join(data_dir, "cifar10.npz")
    protocol = ["--trials", "3", "--epochs", "10", "--pretrain-epochs", "1"] if dry_run else []
    cnn_rows = (["--trials", "1", "--epochs", "3", "--per-class", "20", "--test-size", "500"]
                if dry_run else ["--test-size", str(CIFAR_TEST_IMAGES)])
    return [
        ("tl_mnist quick", ["tl_mnist.py", "--quick"]),
        ("mnist_vgg quick", ["mnist_vgg.py", "--quick", "--weights", "none"]),
        ("cifar_vgg quick", ["cifar_vgg.py", "--quick", "--weights", "none"]),
        ("tl_mnist protocol, float32", ["tl_mnist.py", "--data", mnist, "--retrain",
                                        "--precision", "float32", *protocol]),
        ("tl_mnist protocol, mixed_bfloat16", ["tl_mnist.py", "--data", mnist, "--retrain",
                                               "--precision", "mixed_bfloat16", *protocol]),
        ("cifar_vgg CNN rows", ["cifar_vgg.py", "--data", cifar, "--options",
                                "cnn_tanh,cnn_relu,cnn_sigmoid", *cnn_rows]),
    ]


def run_step(name: str, argv: list[str], out: str) -> dict:
    """Runs one script in its own process; its wall time, accuracies and device."""
    folder = os.path.join(out, name.replace(" ", "_").replace(",", ""))
    script = os.path.splitext(argv[0])[0]
    flags = [*argv[1:], "--out", folder]
    if script == "tl_mnist":
        flags += ["--models-dir", os.path.join(folder, "models")]
    print(f"\n=== {name}: python {' '.join([argv[0], *flags])}", flush=True)
    start = time.perf_counter()
    finished = subprocess.run([sys.executable, os.path.join(ROOT, argv[0]), *flags], cwd=ROOT)
    wall = time.perf_counter() - start
    record = {"name": name, "command": [argv[0], *flags], "wall_s": round(wall, 1),
              "exit_status": finished.returncode}
    result_path = os.path.join(folder, f"{script}.json")
    if finished.returncode == 0 and os.path.isfile(result_path):
        with open(result_path) as handle:
            result = json.load(handle)
        record.update(device=result.get("device"), timings=result.get("timings"),
                      means={option: round(100 * float(np.mean(values)), 2)
                             for option, values in result["accuracies"].items()})
    return record


def print_table(records: list[dict]) -> None:
    print("\nGPU check" + "".join(f"\n  {r['name']:<36} {r['wall_s']:>7.1f} s  "
                                    + (", ".join(f"{o} {m:.1f}%" for o, m in r["means"].items())
                                       if "means" in r else f"FAILED (exit {r['exit_status']})")
                                    for r in records))


def check(data_dir: str, out: str, dry_run: bool) -> int:
    """Runs every step (going on past a failed one); 0 when all passed."""
    for name in ("mnist.npz", "cifar10.npz"):
        if not os.path.isfile(os.path.join(data_dir, name)):
            sys.exit(f"gpu_check: --data-dir {data_dir}: no {name} (make it with "
                     "--prepare-data DIR; see the docstring)")
    os.makedirs(out, exist_ok=True)
    start = time.perf_counter()
    records = [run_step(name, argv, out) for name, argv in steps(data_dir, dry_run)]
    print_table(records)
    report = {"dry_run": dry_run, "backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
              "total_wall_s": round(time.perf_counter() - start, 1), "runs": records,
              "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    path = os.path.join(out, "gpu_check.json")
    with open(path, "w") as handle:
        json.dump(report, handle, indent=2)
    print(f"total {report['total_wall_s']:.0f} s; wrote {path}")
    return 0 if all(record["exit_status"] == 0 for record in records) else 1


def load_cifar10(source: str) -> dict[str, np.ndarray]:
    """CIFAR-10's four arrays from `source`: cifar10.npz, or the six part files."""
    whole = os.path.join(source, "cifar10.npz")
    if os.path.isfile(whole):
        arrays = np.load(whole)
        return {key: arrays[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    # The six part files: bench/cifar_protocol.py's loader (imported here only, as it
    # loads Keras, which the check itself starts in each run's own process).
    from cifar_protocol import load_cifar10 as load_six_parts

    return dict(zip(("x_train", "y_train", "x_test", "y_test"), load_six_parts(source)))


def prepare_data(source: str) -> None:
    """bench/data/mnist.npz (a copy) and the compact bench/data/cifar10.npz: the first
    images of each class, in the files' order (a copy's test set may be sorted by class)."""
    os.makedirs(DATA_DIR, exist_ok=True)
    mnist = np.load(os.path.join(source, "mnist.npz"))
    np.savez_compressed(os.path.join(DATA_DIR, "mnist.npz"), **{key: mnist[key] for key in mnist})
    cifar = load_cifar10(source)
    train = first_of_each_class(cifar["y_train"], CIFAR_TRAIN_PER_CLASS)
    test = first_of_each_class(cifar["y_test"], CIFAR_TEST_IMAGES // 10)
    np.savez_compressed(os.path.join(DATA_DIR, "cifar10.npz"), x_train=cifar["x_train"][train],
                        y_train=cifar["y_train"][train], x_test=cifar["x_test"][test],
                        y_test=cifar["y_test"][test])
    print(f"wrote {DATA_DIR}/mnist.npz and cifar10.npz ({len(train):,} training and "
          f"{len(test):,} test images)")


def first_of_each_class(labels: np.ndarray, per_class: int) -> np.ndarray:
    """Indices of the first `per_class` images of each of the ten classes, in order."""
    return np.sort(np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in range(10)]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=DATA_DIR, help="mnist.npz and cifar10.npz")
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "gpu_check"))
    parser.add_argument("--dry-run", action="store_true",
                        help="small sizes, on any device: a try-out of the check on a CPU")
    parser.add_argument("--prepare-data", metavar="DIR",
                        help="write bench/data from full copies of MNIST and CIFAR-10 in DIR")
    args = parser.parse_args()
    if args.prepare_data:
        prepare_data(args.prepare_data)
        return 0
    return check(args.data_dir, args.out, args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
