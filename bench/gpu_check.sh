#!/usr/bin/env bash
# The GPU check (bench/gpu_check.py): the toolkit on an NVIDIA GPU, with Keras on JAX.
#
# For a machine with a GPU, JAX and PyTorch but no TensorFlow, run from a copy of the
# working tree that carries:
#   .whl/        Keras and what it needs that such a machine lacks (namex, optree), as
#                wheels for its Python: bench/gpu_check.sh --download-wheels, here
#   bench/data/  mnist.npz and a compact cifar10.npz: python bench/gpu_check.py --prepare-data DIR
#
#   bash bench/gpu_check.sh             # on the GPU: about 8 minutes at most
#   bash bench/gpu_check.sh --dry-run   # the same steps, small, on a CPU with KERAS_BACKEND=jax
#
# Writes bench/results/gpu_check/gpu_check.json (or --out DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
export KERAS_BACKEND="${KERAS_BACKEND:-jax}" PYTHONUNBUFFERED=1
PYTHON="${PYTHON:-python3}"

if [[ "${1:-}" == "--download-wheels" ]]; then
    # The GPU machine runs Python 3.12 (the device tool's README); no TensorFlow travels.
    for package in keras namex optree; do
        "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
            --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
            --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl "$package"
    done
    ls .whl
    exit 0
fi

if ! "$PYTHON" -c "import keras" 2>/dev/null; then
    if ! ls .whl/*.whl >/dev/null 2>&1; then
        echo "gpu_check: keras is not installed and no wheels are in .whl/ (run bash bench/gpu_check.sh --download-wheels where pip reaches PyPI)" >&2
        exit 2
    fi
    "$PYTHON" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --target /tmp/gpu_check_site .whl/*.whl
    export PYTHONPATH="/tmp/gpu_check_site${PYTHONPATH:+:$PYTHONPATH}"
fi

if [[ " $* " != *" --dry-run "* ]] && ! nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null; then
    echo "gpu_check: no NVIDIA GPU found (nvidia-smi); use --dry-run to try the check on a CPU" >&2
    exit 2
fi
"$PYTHON" -c "import keras, sys; print('keras', keras.__version__, 'on', keras.backend.backend(), 'python', sys.version.split()[0])"
exec "$PYTHON" bench/gpu_check.py "$@"
