"""Which device a run trains on, said once at the start and recorded in the results."""

import os
import platform

import keras

from common.runs import cpu
from common.startup import quiet_native_startup


CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo's names of bf16 matrix math


def configure_device(precision: str | None = None) -> str:
    """Lets training use a visible GPU, sets the precision, and describes both.

    With TensorFlow, memory growth is switched on first (before any op runs), so that
    a run takes the GPU memory it needs rather than all of it. Keras places work on
    the GPU by itself; on a machine without one everything runs on the CPU.

    Args:
        precision: --precision, Keras's dtype policy for every model built after this
            call: float32, mixed_bfloat16 or mixed_float16 (computing in 16 bits, the
            weights kept in float32), or auto (mixed_bfloat16 where the hardware does
            bf16 matrix math, else float32). None: leave the policy as it is.

    Returns:
        e.g. "CPU (AMD EPYC, AVX2, 2 cores), tensorflow backend, float32" or
        "GPU: NVIDIA H100, jax backend, mixed_bfloat16 (auto: the GPU has bf16)".
    """
    gpus = visible_gpus()
    chosen = ""
    if precision == "auto":
        reason = bf16_hardware(gpus)
        precision = "mixed_bfloat16" if reason else "float32"
        chosen = f" (auto: {reason or 'no bf16 hardware found'})"
    elif precision == "mixed_bfloat16" and not bf16_hardware(gpus):
        # measured on an AVX2-only CPU: pretraining 14 times slower in bf16 than float32
        chosen = " (no bf16 hardware found: expect it much slower than float32)"
    if precision is not None:
        keras.config.set_dtype_policy(precision)
    where = (f"GPU: {', '.join(name for name, _ in gpus)}" if gpus
             else f"CPU ({cpu.cpu_description() or platform.machine()}, "
                  f"{os.cpu_count()} cores)")
    return (f"{where}, {keras.backend.backend()} backend, "
            f"{keras.config.dtype_policy().name}{chosen}")


def visible_gpus() -> list[tuple[str, bool]]:
    """(name, does bf16) of each GPU the backend sees (TensorFlow: memory growth on)."""
    backend = keras.backend.backend()
    gpus: list[tuple[str, bool]] = []
    if backend == "tensorflow":
        import tensorflow as tf

        with quiet_native_startup():
            visible = tf.config.list_physical_devices("GPU")
        for gpu in visible:
            tf.config.experimental.set_memory_growth(gpu, True)
            details = tf.config.experimental.get_device_details(gpu)
            gpus.append((details.get("device_name", gpu.name),
                         details.get("compute_capability", (0, 0)) >= AMPERE))
    elif backend == "jax":
        import jax

        gpus = [(device.device_kind, capability(getattr(device, "compute_capability", "0")))
                for device in jax.devices() if device.platform == "gpu"]
    elif backend == "torch":
        import torch

        gpus = [(torch.cuda.get_device_name(i), torch.cuda.get_device_capability(i) >= AMPERE)
                for i in range(torch.cuda.device_count())]
    return gpus


AMPERE = (8, 0)  # NVIDIA's first compute capability with bf16 matrix math


def capability(text: str) -> bool:
    """Whether a compute capability written "9.0" has bf16 (AMPERE or later)."""
    major, _, minor = str(text).partition(".")
    return (int(major or 0), int(minor or 0)) >= AMPERE


def bf16_hardware(gpus: list[tuple[str, bool]], cpuinfo: str = cpu.CPUINFO) -> str:
    """Why this machine computes bf16 fast ("the GPU has bf16", "this CPU has
    AVX512_BF16"), or "" where it does not: where every visible GPU has it or, with no
    GPU, where the CPU's flags list a bf16 instruction set."""
    if gpus:
        return "the GPU has bf16" if all(bf16 for _, bf16 in gpus) else ""
    flags = cpu.cpu_flags(cpuinfo)  # (none where it cannot be read: no claim of bf16)
    found = [flag.upper() for flag in CPU_BF16_FLAGS if flag in flags]
    return f"this CPU has {' and '.join(found)}" if found else ""
