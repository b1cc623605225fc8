"""TensorFlow's process set-up, in one place: its log level, GPU memory growth, its thread counts and a
quiet import. Every process that trains or scores calls :func:`start_tensorflow` once, before anything
else imports TensorFlow: the CLI, a pool's worker, a Ray task; ``compare`` and a serial executor limit
their threads through :func:`limit_threads`.

TensorFlow reads its thread counts once, when its runtime starts (the first op), so they are set as
environment variables before it is imported, and through ``tf.config.threading`` as well where it
already is (which works until the runtime has started).
"""

from __future__ import annotations

import os
import sys

# Keep TensorFlow's native log lines off the terminal: its start-up chatter, and an ERROR-level grappler
# line ("remapper failed: ... LeakyReluGrad") printed once per traced train step with a leaky ReLU, which
# changes nothing. Real failures raise Python exceptions, which gan-nas reports. TF_CPP_MIN_LOG_LEVEL=0
# shows them all.
# On a GPU, TensorFlow reserves all of its memory by default, so that a second process (a pool's next
# worker, compare's scoring) cannot start there; grow the reservation as needed instead.
DEFAULT_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "TF_FORCE_GPU_ALLOW_GROWTH": "true"}


def quiet_environment() -> None:
    """Set :data:`DEFAULT_ENV` where the user has not: child processes inherit it."""
    for key, value in DEFAULT_ENV.items():
        os.environ.setdefault(key, value)


def limit_threads(threads: int) -> None:
    """Give TensorFlow in this process ``threads`` intra-op threads and one inter-op thread (0: its default).

    Sets ``OMP_NUM_THREADS``, ``TF_NUM_INTRAOP_THREADS`` and ``TF_NUM_INTEROP_THREADS``, which TensorFlow
    reads when its runtime starts; if TensorFlow is already imported, also ``tf.config.threading``
    (ignored once the runtime has started).
    """
    if threads <= 0:
        return
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # the runtime is already initialized
            pass


def start_tensorflow(threads: int = 0) -> None:
    """Set up and import TensorFlow and Keras once per process, with its native stderr muted meanwhile
    (its C++ start-up banner is not for users), and start its runtime with ``threads`` threads (0: its
    default). A second call does nothing."""
    quiet_environment()
    if "tensorflow" in sys.modules:
        return
    limit_threads(threads)
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    sys.stderr.flush()
    os.dup2(null, 2)
    try:
        import keras  # noqa: F401
        import tensorflow as tf

        limit_threads(threads)  # again, now through tf.config.threading: the runtime has not started yet
        tf.constant(0.0) + 1.0  # the runtime starts (and logs its devices) here, with the threads set above
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)
    tf.get_logger().setLevel("ERROR")  # e.g. "triggered tf.function retracing": one function per candidate is by design
