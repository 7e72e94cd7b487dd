"""Where one training step of the lecture's CNN spends its time on this CPU.

Two settings, each as the toolkit's engine runs it:

- `pretraining` (the default): one CNN at the lecture's pretraining batch of 128;
- `trials`: the 15 CNNs trained from scratch on 100 images each, batch 4, stacked into
  one network whose convolutions are grouped (15 groups; `common.engine.stacked`).

Times each convolution and pooling of a training step alone (forward, gradient of the
input, gradient of the kernel) with its GFLOP/s; then the whole step in the engine's
`fit_side_by_side` (an epoch of steps per `steps_per_execution`, the data as a table in
the model, a `tf.data` pipeline without autotuning), with how many of the CPU's cores
were busy; and, for a ceiling, TensorFlow's dense matrix product on this CPU. TensorFlow
only: these are TensorFlow's kernels (oneDNN's where TF_ENABLE_ONEDNN_OPTS is 1, which
`common.startup.prepare_tensorflow` sets unless it is set already). docs/speed.md
reads it.

    python bench/profile_step.py                     # pretraining
    python bench/profile_step.py --setting trials    # the 15 CNNs from scratch
    TF_ENABLE_ONEDNN_OPTS=0 python bench/profile_step.py   # TensorFlow's own kernels

Writes bench/results/profile_step.json (pretraining) or profile_step_trials.json.
"""

import argparse
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from common import files, startup

startup.prepare_tensorflow()  # before TensorFlow loads, as keras-io sets KERAS_BACKEND
import tensorflow as tf

import tl_mnist
from common.engine.side_by_side import fit_side_by_side
from common.lesson.settings import FitSettings
from common.runs import tables
from common.runs.device import configure_device

CONV1_FLOP = 2 * 26 * 26 * 32 * 3 * 3 * 1  # per image: 26x26 outputs, 32 filters of 3x3x1
CONV2_FLOP = 2 * 11 * 11 * 64 * 3 * 3 * 32  # 11x11 outputs, 64 filters of 3x3x32
STEP_FLOP = 3 * (CONV1_FLOP + CONV2_FLOP + 2 * 1600 * 5) - CONV1_FLOP  # no image gradient


@dataclass(frozen=True)
class Setting:
    """What one training step holds: `trials` CNNs, each on its own batch of `batch_size`,
    and an epoch of `steps_per_epoch` steps (the engine runs an epoch per call)."""

    trials: int
    batch_size: int
    steps_per_epoch: int
    file: str  # in bench/results/


SETTINGS = {"pretraining": Setting(1, 128, 230, "profile_step.json"),  # 29,492 images
            "trials": Setting(15, 4, 25, "profile_step_trials.json")}  # 100 images each


def wall_and_cpu_seconds(run: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one call of `run`."""
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    run()
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def milliseconds(operation: Callable[[], tf.Tensor], repeats: int) -> float:
    """Mean milliseconds of a compiled `operation`, after one call that traces it."""
    compiled = tf.function(operation)
    compiled().numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        result = compiled()
    result.numpy()  # the calls run in order; waiting for the last waits for all
    return 1e3 * (time.perf_counter() - start) / repeats


def operations(rng: np.random.Generator,
               setting: Setting) -> dict[str, tuple[Callable[[], tf.Tensor], float]]:
    """The step's convolutions and poolings: name -> (operation, FLOP). With several
    trials, their channels side by side and the convolutions grouped, as stacked."""
    batch, trials = setting.batch_size, setting.trials

    def tensor(*shape: int) -> tf.Tensor:
        return tf.constant(rng.standard_normal(shape, dtype=np.float32))

    # images, and tensors shaped like each layer's output (standing in for its gradient)
    images, conv1_out = tensor(batch, 28, 28, trials), tensor(batch, 26, 26, 32 * trials)
    pool1_out = tensor(batch, 13, 13, 32 * trials)
    conv2_out = tensor(batch, 11, 11, 64 * trials)
    kernel1, kernel2 = tensor(3, 3, 1, 32 * trials), tensor(3, 3, 32, 64 * trials)
    nn_v1 = tf.compat.v1.nn  # the gradients of a convolution as operations of their own
    unit_strides = [1, 1, 1, 1]

    def pool_gradient(tensor_in: tf.Tensor, gradient: tf.Tensor) -> Callable[[], tf.Tensor]:
        def run() -> tf.Tensor:
            with tf.GradientTape() as tape:
                tape.watch(tensor_in)
                pooled = tf.nn.max_pool2d(tensor_in, 2, 2, "VALID")
            return tape.gradient(pooled, tensor_in, output_gradients=gradient)
        return run

    conv1, conv2 = batch * trials * CONV1_FLOP, batch * trials * CONV2_FLOP
    return {
        "conv1 forward": (lambda: tf.nn.conv2d(images, kernel1, 1, "VALID"), conv1),
        "conv1 kernel gradient": (lambda: nn_v1.conv2d_backprop_filter(
            images, kernel1.shape, conv1_out, unit_strides, "VALID"), conv1),
        "pool1 forward and gradient": (pool_gradient(conv1_out, pool1_out), 0),
        "conv2 forward": (lambda: tf.nn.conv2d(pool1_out, kernel2, 1, "VALID"), conv2),
        "conv2 input gradient": (lambda: nn_v1.conv2d_backprop_input(
            pool1_out.shape, kernel2, conv2_out, unit_strides, "VALID"), conv2),
        "conv2 kernel gradient": (lambda: nn_v1.conv2d_backprop_filter(
            pool1_out, kernel2.shape, conv2_out, unit_strides, "VALID"), conv2),
        "pool2 forward and gradient": (
            pool_gradient(conv2_out, tensor(batch, 5, 5, 64 * trials)), 0),
    }


def whole_step(rng: np.random.Generator, setting: Setting, timed_epochs: int) -> dict:
    """The step as the engine's `fit_side_by_side` runs it: milliseconds per step,
    GFLOP/s and cores busy. Two runs, of 1 and of 1 + `timed_epochs` epochs, each
    building, compiling and tracing anew; their difference is the timed epochs alone."""
    images_per_trial = setting.steps_per_epoch * setting.batch_size
    images = [rng.random((images_per_trial, 28, 28, 1), dtype=np.float32)
              for _ in range(setting.trials)]
    labels = [rng.integers(0, 5, images_per_trial) for _ in range(setting.trials)]

    def train(epochs: int) -> tuple[float, float]:
        models = [tl_mnist.lecture_cnn(5, seed) for seed in range(setting.trials)]
        return wall_and_cpu_seconds(lambda: fit_side_by_side(
            models, images, labels, list(range(setting.trials)),
            FitSettings(epochs=epochs, batch_size=setting.batch_size), label="profile"))

    (short_wall, short_cpu), (long_wall, long_cpu) = train(1), train(1 + timed_epochs)
    per_step = (long_wall - short_wall) / (timed_epochs * setting.steps_per_epoch)
    flop = setting.trials * setting.batch_size * STEP_FLOP
    return {"ms": round(1e3 * per_step, 2), "gflop_per_s": round(flop / per_step / 1e9, 1),
            "cores_busy": round((long_cpu - short_cpu) / (long_wall - short_wall), 2)}


def matmul_ceiling(rng: np.random.Generator, setting: Setting,
                   repeats: int) -> dict[str, float]:
    """GFLOP/s of TensorFlow's dense fp32 matrix product: a square one of 2048, and the
    one a conv2 kernel gradient of one trial is as a product of image patches (288 x
    batch * 121 x 64)."""
    rows = setting.batch_size * 121
    square = tf.constant(rng.random((2048, 2048), dtype=np.float32))
    patches = tf.constant(rng.random((288, rows), dtype=np.float32))
    gradient = tf.constant(rng.random((rows, 64), dtype=np.float32))
    square_ms = milliseconds(lambda: tf.matmul(square, square), repeats)
    patches_ms = milliseconds(lambda: tf.matmul(patches, gradient), repeats)
    return {"2048 x 2048 x 2048": round(2 * 2048 ** 3 / square_ms / 1e6, 1),
            f"288 x {rows} x 64": round(2 * 288 * rows * 64 / patches_ms / 1e6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setting", choices=SETTINGS, default="pretraining",
                        help="the pretraining's step, or the 15 stacked CNNs' "
                        "(default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=50, help="timed calls per operation")
    parser.add_argument("--timed-epochs", type=int, default=0,
                        help="epochs timed in fit (default: about 500 steps' worth)")
    args = parser.parse_args()
    setting = SETTINGS[args.setting]
    timed_epochs = args.timed_epochs or -(-500 // setting.steps_per_epoch)
    rng = np.random.default_rng(0)
    report: dict = {"device": configure_device(), "environment": tables.environment(),
                    "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
                    "setting": args.setting, "trials": setting.trials,
                    "batch_size": setting.batch_size, "operations": {}}
    print(f"{report['device']}; oneDNN {report['onednn']}; {args.setting}: {setting.trials} "
          f"CNN{'s' if setting.trials > 1 else ''}, batch {setting.batch_size} each")
    for name, (operation, flop) in operations(rng, setting).items():
        ms = milliseconds(operation, args.repeats)
        report["operations"][name] = {"ms": round(ms, 2),
                                      **({"gflop_per_s": round(flop / ms / 1e6, 1)} if flop else {})}
        rate = f"{flop / ms / 1e6:7.1f} GFLOP/s" if flop else ""
        print(f"  {name:28s} {ms:7.2f} ms {rate}")
    report["operations_total_ms"] = round(sum(op["ms"] for op in report["operations"].values()), 2)
    print(f"  {'sum of the above':28s} {report['operations_total_ms']:7.2f} ms")
    report["whole_step"] = whole_step(rng, setting, timed_epochs)
    step = report["whole_step"]
    print(f"  {'whole step in the engine':28s} {step['ms']:7.2f} ms {step['gflop_per_s']:7.1f} "
          f"GFLOP/s, {step['cores_busy']:.2f} cores busy")
    report["matmul_gflop_per_s"] = matmul_ceiling(rng, setting, args.repeats)
    for shape, rate in report["matmul_gflop_per_s"].items():
        print(f"  matrix product {shape:20s} {rate:7.1f} GFLOP/s")
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", setting.file)
    files.atomic_write_json(out, report)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
