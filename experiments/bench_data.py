"""Images per second of the training pipeline on real MNIST, against what a DCGAN step consumes.

Run: python experiments/bench_data.py [--data-dir ../shared/data/mnist] [--batch 256]

Prints the pipeline's images/s (tf.data stream, as training reads it), the
images/s a tutorial DCGAN train step consumes on this machine (measured in
the same run, same batch), and their ratio. Target: ratio >= 20.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
from _tutorial import tutorial_dcgan, tutorial_step  # noqa: E402

from gan_nas import data  # noqa: E402

HERE = Path(__file__).resolve().parent


def pipeline_rate(images, batch: int, batches: int) -> float:
    ds = data.pipeline(images, batch, seed=0)
    it = iter(ds)
    for _ in range(20):  # warm up the prefetch buffer and shuffle buffer
        next(it)
    t = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch / (time.perf_counter() - t)


def dcgan_step_rate(batch: int, steps: int) -> float:
    """A tutorial DCGAN train step (same networks as the TensorFlow tutorial), images/s consumed."""
    step = tutorial_step(*tutorial_dcgan(), batch)
    x = tf.random.uniform([batch, 28, 28, 1], -1, 1)
    step(x)
    t = time.perf_counter()
    for _ in range(steps):
        step(x)
    return steps * batch / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=str(HERE.parent.parent / "shared" / "data" / "mnist"))
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args()
    ds = data.load("mnist", args.data_dir)
    pipe = pipeline_rate(ds.x_train, args.batch, batches=400)
    train = dcgan_step_rate(args.batch, steps=10)
    print(f"pipeline_images_per_s={pipe:.0f}")
    print(f"dcgan_step_images_per_s={train:.0f}")
    print(f"ratio={pipe / train:.1f} (target >= 20)")


if __name__ == "__main__":
    main()
