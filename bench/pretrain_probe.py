"""Seconds per pretraining epoch of the lecture's CNN on this CPU, in one precision.

The lecture's pretraining (digits 0,2,4,6,8 of MNIST, 29,492 images, batch 128) in
plain `fit`, one epoch of warm-up, then `--epochs` timed; compiled with a whole epoch per
`steps_per_execution` and fed by a `tf.data` pipeline without autotuning, as the
toolkit's engine runs it. (Keras's own pipeline for arrays autotunes, and the end of
its `fit` then waits for the tuning thread: seconds that would blur the kernels' time.)
For docs/speed.md's figures of precision and oneDNN (set TF_ENABLE_ONEDNN_OPTS=0 to
see TensorFlow without it).

    python bench/pretrain_probe.py --data mnist.npz
    python bench/pretrain_probe.py --data mnist.npz --precision mixed_bfloat16
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common import startup

startup.prepare_tensorflow()  # before keras, as keras-io sets KERAS_BACKEND
import tl_mnist
from common.engine.side_by_side import data_arguments
from common.lesson import data
from common.lesson.settings import PRECISIONS
from common.runs.device import configure_device

BATCH_SIZE = 128  # the lecture's pretraining batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="mnist.npz in Keras's layout")
    parser.add_argument("--precision", default="float32", choices=PRECISIONS)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs, after one more")
    args = parser.parse_args()
    device = configure_device(args.precision)
    dataset = data.load_mnist(args.data, "mnist")
    x, y = data.select_classes(dataset.x_train, dataset.y_train, tl_mnist.EVEN_DIGITS)
    x = data.to_unit_float(x)
    model = tl_mnist.lecture_cnn(5, 0)
    steps = -(-len(x) // BATCH_SIZE)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], steps_per_execution=steps, jit_compile=False)
    batches = data_arguments(x, y, batch_size=BATCH_SIZE)  # the engine's: no autotuning
    model.fit(**batches, epochs=1, shuffle=False, verbose=0)  # warm-up: tracing
    start = time.perf_counter()
    model.fit(**batches, epochs=args.epochs, shuffle=False, verbose=0)
    per_epoch = (time.perf_counter() - start) / args.epochs
    print(f"{device}; oneDNN {os.environ.get('TF_ENABLE_ONEDNN_OPTS')}: {per_epoch:.2f} s "
          f"per epoch of {len(x):,} images")


if __name__ == "__main__":
    main()
