"""Which device a run trains on, said once at the start and recorded in the results."""

import os
import platform

import keras

from common.startup import quiet_native_startup


def configure_device() -> str:
    """Lets training use a visible GPU and describes the device used.

    With TensorFlow, memory growth is switched on first (before any op runs), so that
    a run takes the GPU memory it needs rather than all of it. Keras places work on
    the GPU by itself; on a machine without one everything runs on the CPU.

    Returns:
        e.g. "CPU (2 cores), tensorflow backend" or "GPU: NVIDIA H100, jax backend".
    """
    backend = keras.backend.backend()
    gpus: list[str] = []
    if backend == "tensorflow":
        import tensorflow as tf

        with quiet_native_startup():
            visible = tf.config.list_physical_devices("GPU")
        for gpu in visible:
            tf.config.experimental.set_memory_growth(gpu, True)
            gpus.append(tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name))
    elif backend == "jax":
        import jax

        gpus = [device.device_kind for device in jax.devices() if device.platform == "gpu"]
    elif backend == "torch":
        import torch

        gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    where = f"GPU: {', '.join(gpus)}" if gpus else f"CPU ({os.cpu_count()} cores, {platform.machine()})"
    return f"{where}, {backend} backend"
