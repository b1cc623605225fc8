"""Which floating-point precision candidates train in: ``training.mixed_precision``.

``true`` trains in bfloat16 mixed precision (Keras's ``mixed_bfloat16``:
float32 variables, bfloat16 compute), ``false`` in float32, and ``"auto"``
(the default) picks bfloat16 only where the CPU has native bfloat16
instructions. Without them TensorFlow emulates bfloat16 and a step is about
4x slower; with them (AVX512_BF16 or AMX) it is faster than float32
(experiments/bench_train.py prints both on the machine it runs on).

A run resolves ``"auto"`` once, when it is created, and records the answer in
its config.json, so that a resumed run, its workers and the DCGAN that
``compare`` trains for it all use the same precision, whatever machine they
run on.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of CPUs that compute in bfloat16
CHOICES = (True, False, "auto")


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags as Linux reports them; empty where they cannot be read."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def native_bf16_flags(flags: set[str] | None = None) -> list[str]:
    """Which of :data:`NATIVE_BF16_FLAGS` this CPU has (``flags``: as from :func:`cpu_flags`)."""
    have = cpu_flags() if flags is None else flags
    return [f for f in NATIVE_BF16_FLAGS if f in have]


def use_bfloat16(setting: Any, flags: set[str] | None = None) -> bool:
    """Whether ``training.mixed_precision = setting`` means bfloat16 on this machine."""
    if setting == "auto":
        return bool(native_bf16_flags(flags))
    return bool(setting)


def gpu_policy() -> str | None:
    """The mixed policy for this machine's GPUs: ``mixed_bfloat16`` where every GPU computes in
    bfloat16 (compute capability 8.0 and up), ``mixed_float16`` (with loss scaling, see
    :func:`gan_nas.gan.train_candidate`) on older ones; None without a GPU."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    caps = [tf.config.experimental.get_device_details(g).get("compute_capability") or (0, 0) for g in gpus]
    return "mixed_bfloat16" if min(caps) >= (8, 0) else "mixed_float16"


def policy(mixed: bool) -> str:
    """The Keras dtype policy a candidate trains under: float32, or the mixed policy of the device."""
    if not mixed:
        return "float32"
    return gpu_policy() or "mixed_bfloat16"


def resolved(cfg: Any) -> Any:
    """``cfg`` (a :class:`gan_nas.config.Config`) with ``training.mixed_precision`` as true or false."""
    if cfg.training.mixed_precision != "auto":
        return cfg
    training = dataclasses.replace(cfg.training, mixed_precision=use_bfloat16("auto"))
    return dataclasses.replace(cfg, training=training)
