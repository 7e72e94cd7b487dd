"""Where one pretraining step of the lecture's CNN spends its time on this CPU.

Times, at the lecture's pretraining batch of 128, each convolution and pooling of a
training step alone (forward, gradient of the input, gradient of the kernel) with its
GFLOP/s; then the whole step as Keras's `fit` runs it (an epoch of steps per
`steps_per_execution` and the engine's `tf.data` pipeline without autotuning, whose
tuning thread otherwise holds up the end of a `fit`), with how many of the CPU's cores
were busy; and, for a ceiling, TensorFlow's dense matrix product on this CPU. TensorFlow
only: these are TensorFlow's kernels (oneDNN's where TF_ENABLE_ONEDNN_OPTS is 1, which
`common.startup.prepare_tensorflow` sets unless it is set already). docs/speed.md
reads it.

    python bench/profile_step.py
    TF_ENABLE_ONEDNN_OPTS=0 python bench/profile_step.py   # TensorFlow's own kernels

Writes bench/results/profile_step.json.
"""

import argparse
import os
import resource
import sys
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from common import files, startup

startup.prepare_tensorflow()  # before keras, as keras-io sets KERAS_BACKEND
import keras
import tensorflow as tf

import tl_mnist
from common.engine.side_by_side import data_arguments
from common.runs import tables
from common.runs.device import configure_device

BATCH_SIZE = 128  # the lecture's pretraining batch
CONV1_FLOP = 2 * 26 * 26 * 32 * 3 * 3 * 1  # per image: 26x26 outputs, 32 filters of 3x3x1
CONV2_FLOP = 2 * 11 * 11 * 64 * 3 * 3 * 32  # 11x11 outputs, 64 filters of 3x3x32
STEP_FLOP = 3 * (CONV1_FLOP + CONV2_FLOP + 2 * 1600 * 5) - CONV1_FLOP  # no image gradient


def busy_cores(run: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, cores busy on average) of one call of `run`."""
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    run()
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu / wall


def milliseconds(operation: Callable[[], tf.Tensor], repeats: int) -> float:
    """Mean milliseconds of a compiled `operation`, after one call that traces it."""
    compiled = tf.function(operation)
    compiled().numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        result = compiled()
    result.numpy()  # the calls run in order; waiting for the last waits for all
    return 1e3 * (time.perf_counter() - start) / repeats


def operations(rng: np.random.Generator) -> dict[str, tuple[Callable[[], tf.Tensor], float]]:
    """The step's convolutions and poolings at batch 128: name -> (operation, FLOP)."""
    def tensor(*shape: int) -> tf.Tensor:
        return tf.constant(rng.standard_normal(shape, dtype=np.float32))

    # images, and tensors shaped like each layer's output (standing in for its gradient)
    images, conv1_out = tensor(BATCH_SIZE, 28, 28, 1), tensor(BATCH_SIZE, 26, 26, 32)
    pool1_out, conv2_out = tensor(BATCH_SIZE, 13, 13, 32), tensor(BATCH_SIZE, 11, 11, 64)
    kernel1, kernel2 = tensor(3, 3, 1, 32), tensor(3, 3, 32, 64)
    nn_v1 = tf.compat.v1.nn  # the gradients of a convolution as operations of their own
    unit_strides = [1, 1, 1, 1]

    def pool_gradient(tensor_in: tf.Tensor, gradient: tf.Tensor) -> Callable[[], tf.Tensor]:
        def run() -> tf.Tensor:
            with tf.GradientTape() as tape:
                tape.watch(tensor_in)
                pooled = tf.nn.max_pool2d(tensor_in, 2, 2, "VALID")
            return tape.gradient(pooled, tensor_in, output_gradients=gradient)
        return run

    conv1, conv2 = BATCH_SIZE * CONV1_FLOP, BATCH_SIZE * CONV2_FLOP
    return {
        "conv1 forward": (lambda: tf.nn.conv2d(images, kernel1, 1, "VALID"), conv1),
        "conv1 kernel gradient": (lambda: nn_v1.conv2d_backprop_filter(
            images, [3, 3, 1, 32], conv1_out, unit_strides, "VALID"), conv1),
        "pool1 forward and gradient": (pool_gradient(conv1_out, pool1_out), 0),
        "conv2 forward": (lambda: tf.nn.conv2d(pool1_out, kernel2, 1, "VALID"), conv2),
        "conv2 input gradient": (lambda: nn_v1.conv2d_backprop_input(
            [BATCH_SIZE, 13, 13, 32], kernel2, conv2_out, unit_strides, "VALID"), conv2),
        "conv2 kernel gradient": (lambda: nn_v1.conv2d_backprop_filter(
            pool1_out, [3, 3, 32, 64], conv2_out, unit_strides, "VALID"), conv2),
        "pool2 forward and gradient": (
            pool_gradient(conv2_out, tensor(BATCH_SIZE, 5, 5, 64)), 0),
    }


def whole_step(rng: np.random.Generator, steps: int) -> dict:
    """The lecture CNN's training step in `fit`, `steps` of them per call, as the engine
    runs pretraining: milliseconds per step, GFLOP/s and cores busy."""
    model = tl_mnist.lecture_cnn(5, 0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  steps_per_execution=steps, jit_compile=False)
    images = rng.random((steps * BATCH_SIZE, 28, 28, 1), dtype=np.float32)
    labels = rng.integers(0, 5, steps * BATCH_SIZE)
    data = data_arguments(images, labels, batch_size=BATCH_SIZE)  # the engine's: no autotuning
    model.fit(**data, epochs=1, shuffle=False, verbose=0)  # traces the step
    wall, busy = busy_cores(lambda: model.fit(**data, epochs=2, shuffle=False, verbose=0))
    per_step = wall / (2 * steps)
    return {"ms": round(1e3 * per_step, 2),
            "gflop_per_s": round(BATCH_SIZE * STEP_FLOP / per_step / 1e9, 1),
            "cores_busy": round(busy, 2)}


def matmul_ceiling(rng: np.random.Generator, repeats: int) -> dict[str, float]:
    """GFLOP/s of TensorFlow's dense fp32 matrix product: a square one of 2048, and the
    one a conv2 kernel gradient is as a product of image patches (288 x 15,488 x 64)."""
    square = tf.constant(rng.random((2048, 2048), dtype=np.float32))
    patches = tf.constant(rng.random((288, BATCH_SIZE * 121), dtype=np.float32))
    gradient = tf.constant(rng.random((BATCH_SIZE * 121, 64), dtype=np.float32))
    square_ms = milliseconds(lambda: tf.matmul(square, square), repeats)
    patches_ms = milliseconds(lambda: tf.matmul(patches, gradient), repeats)
    return {"2048 x 2048 x 2048": round(2 * 2048 ** 3 / square_ms / 1e6, 1),
            "288 x 15488 x 64": round(2 * 288 * BATCH_SIZE * 121 * 64 / patches_ms / 1e6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=50, help="timed calls per operation")
    parser.add_argument("--steps", type=int, default=100, help="steps per fit call")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    report: dict = {"device": configure_device(), "environment": tables.environment(),
                    "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS"), "batch_size": BATCH_SIZE,
                    "operations": {}}
    print(f"{report['device']}; oneDNN {report['onednn']}; batch {BATCH_SIZE}")
    for name, (operation, flop) in operations(rng).items():
        ms = milliseconds(operation, args.repeats)
        report["operations"][name] = {"ms": round(ms, 2),
                                      **({"gflop_per_s": round(flop / ms / 1e6, 1)} if flop else {})}
        rate = f"{flop / ms / 1e6:7.1f} GFLOP/s" if flop else ""
        print(f"  {name:28s} {ms:7.2f} ms {rate}")
    report["operations_total_ms"] = round(sum(op["ms"] for op in report["operations"].values()), 2)
    print(f"  {'sum of the above':28s} {report['operations_total_ms']:7.2f} ms")
    report["whole_step"] = whole_step(rng, args.steps)
    step = report["whole_step"]
    print(f"  {'whole step in fit':28s} {step['ms']:7.2f} ms {step['gflop_per_s']:7.1f} GFLOP/s, "
          f"{step['cores_busy']:.2f} cores busy")
    report["matmul_gflop_per_s"] = matmul_ceiling(rng, args.repeats)
    for shape, rate in report["matmul_gflop_per_s"].items():
        print(f"  matrix product {shape:20s} {rate:7.1f} GFLOP/s")
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "profile_step.json")
    files.atomic_write_json(out, report)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
