"""Images per second of the training pipeline on real MNIST, against what a DCGAN step consumes;
and of decoding a ``folder:`` dataset of 64x64 PNGs, cold and cached.

Run: python experiments/bench_data.py [--data-dir ../shared/data/mnist] [--batch 256]
     python experiments/bench_data.py --only folder [--folder ../shared/data/emoji-google] [--replicate 4]

Pipeline: the tf.data stream's images/s (as training reads it), the images/s a
tutorial DCGAN train step consumes on this machine (measured in the same run,
same batch), and their ratio. Target: ratio >= 20. (The stream runs with fixed
parallelism and tf.data autotuning off: with autotuning on, deleting the iterator
at a candidate's end waited up to ~8 s for the autotuning thread on 2 cores; the
fixed stream measured over 700x what a step needs.)

Folder (default: the emoji set beside the checkout, 3,781 64x64 PNGs, mostly
RGBA): images/s of decoding it to 64x64x3 with no decoded-array cache, in this
process (1 worker) and in spawned worker processes (one per CPU), then of
``data.load`` as a user gets it: its first load (cold: decoded, then written
to the cache) and its second (read back from the cache). Cold means no
gan-nas cache; the files themselves are in the OS's page cache after the first
pass. ``--replicate K`` decodes K hard-linked copies of the folder (a larger
folder, same images).

Decoding workers do not import the parent's main module again (gan_nas.folder): a
worker of a script that imports TensorFlow at its top spent 8.8 s on that import
against 0.6 s of decoding (measured here).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
from _tutorial import tutorial_dcgan, tutorial_step  # noqa: E402

from gan_nas import data, folder  # noqa: E402

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


def replicate(src: Path, copies: int, dest: Path) -> Path:
    """``copies`` hard-linked copies of ``src``'s images under ``dest`` (sub-folders kept)."""
    for k in range(copies):
        for f in data.list_images(src, recursive=True):
            target = dest / f.parent.relative_to(src) / f"{k}-{f.name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(f, target)
    return dest


def timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def folder_rates(path: Path, size: int) -> None:
    files = data.list_images(path, recursive=True)
    cpus = folder._cpus()
    print(f"folder={path} files={len(files)} size={size} cpus={cpus}")
    for workers in (1, cpus):  # decoding alone: no cache read or written
        folder.PARALLEL_MIN_FILES, keep = 0, folder.PARALLEL_MIN_FILES  # processes at any size, to measure them
        try:
            s, got = timed(lambda w=workers: folder._decode_folder(path, files, size, 3, data.WHITE, w))
        finally:
            folder.PARALLEL_MIN_FILES = keep
        print(f"decode_{workers}_workers_images_per_s={len(got.x) / s:.0f} ({s:.2f} s)")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["GAN_NAS_CACHE"] = cache  # no decoded-array cache yet
        s_cold, ds = timed(lambda: data.load(f"folder:{path}", image_size=size, channels=3))
        s_warm, _ = timed(lambda: data.load(f"folder:{path}", image_size=size, channels=3))
    n = len(ds.x_train) + len(ds.x_test)
    print(f"load_cold_images_per_s={n / s_cold:.0f} ({s_cold:.2f} s: decoded "
          f"{'in worker processes' if n >= folder.PARALLEL_MIN_FILES else 'here'}, then cached)")
    print(f"load_cached_images_per_s={n / s_warm:.0f} ({s_warm:.3f} s)")
    print(f"cached_speedup={s_cold / s_warm:.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=str(HERE.parent.parent / "shared" / "data" / "mnist"))
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--only", choices=("pipeline", "folder"), help="run one part (default: both)")
    ap.add_argument("--folder", default=str(HERE.parent.parent / "shared" / "data" / "emoji-google"))
    ap.add_argument("--size", type=int, default=64, help="folder images are read at this size")
    ap.add_argument("--replicate", type=int, default=1, help="decode this many hard-linked copies of the folder")
    args = ap.parse_args()
    if args.only != "folder":
        ds = data.load("mnist", args.data_dir)
        pipe = pipeline_rate(ds.x_train, args.batch, batches=400)
        train = dcgan_step_rate(args.batch, steps=10)
        print(f"pipeline_images_per_s={pipe:.0f}")
        print(f"dcgan_step_images_per_s={train:.0f}")
        print(f"ratio={pipe / train:.1f} (target >= 20)")
    if args.only != "pipeline":
        if args.replicate > 1:
            with tempfile.TemporaryDirectory() as tmp:
                folder_rates(replicate(Path(args.folder), args.replicate, Path(tmp) / "copies"), args.size)
        else:
            folder_rates(Path(args.folder), args.size)


if __name__ == "__main__":
    main()
