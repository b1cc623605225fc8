"""How long the k-NN quality metrics take in a search worker, by block size.

Run: python experiments/bench_quality.py [--processes 3] [--candidates 6] [--seed 0]

A search scores each candidate's 1,000 images against the validation split's 10,000 features
(gan_nas.fitness.MAX_QUALITY_POINTS): the real set's k-NN radii once per worker process, then
precision, recall, density and coverage for every candidate. This runs that the way a pool's worker
does, in fresh processes (TensorFlow started with one thread; before each scoring a new Keras model is
built and draws 1,000 images, as between a worker's scorings), alternating the old
block of 1,024 rows and gan_nas.quality.BLOCK, on Gaussian features of the feature networks' width
(128) seeded by --seed. It prints the median and worst seconds of each and the ratios old / new, all
measured in this one run, and whether both block sizes gave the same scores.
Target: the new block no slower than the old one (ratio >= 1).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

OLD_BLOCK = 1024
N_REAL, N_FAKE, DIM = 10_000, 1_000, 128


def worker(block: int, candidates: int, seed: int) -> dict:
    """One worker's life: the real radii once, then ``candidates`` scorings, each after drawing."""
    from gan_nas import runtime

    runtime.start_tensorflow(1)  # as a pool's worker: one thread, numpy imported after the limit
    import numpy as np
    import tensorflow as tf

    from gan_nas import fitness, quality

    rng = np.random.default_rng(seed)
    real = rng.standard_normal((N_REAL, DIM))
    ks = (fitness.K_PRECISION_RECALL, fitness.K_DENSITY_COVERAGE)

    def draw(width: int) -> None:  # a candidate: a new generator-like model drawing 1,000 images
        model = tf.keras.Sequential([tf.keras.Input((7, 7, 16)), tf.keras.layers.UpSampling2D(4),
                                     tf.keras.layers.Conv2D(width, 3, padding="same"),
                                     tf.keras.layers.Conv2D(1, 3, padding="same")])
        for _ in range(2):
            model.predict(np.zeros((500, 7, 7, 16), np.float32), batch_size=500, verbose=0)

    draw(32)
    t = time.perf_counter()
    radii = quality.knn_radii(real, ks, block=block)
    out = {"radii": time.perf_counter() - t, "quality": [], "scores": []}
    for c in range(candidates):
        draw(32 + 16 * c)
        fake = rng.standard_normal((N_FAKE, DIM)) * 0.5 + 0.1 * c
        t = time.perf_counter()
        out["scores"].append(quality.quality_scores(real, fake, *ks, block=block, real_radii=radii))
        out["quality"].append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--processes", type=int, default=3, help="fresh worker processes per block size")
    ap.add_argument("--candidates", type=int, default=6, help="scorings per worker")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--worker", type=int, help=argparse.SUPPRESS)  # internal: run one worker with this block
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.candidates, args.seed)))
        return

    from gan_nas import quality

    runs: dict[int, list[dict]] = {OLD_BLOCK: [], quality.BLOCK: []}
    for _ in range(args.processes):
        for block in runs:  # alternated, so that a noisy minute hits both
            cmd = [sys.executable, __file__, "--worker", str(block), "--candidates", str(args.candidates),
                   "--seed", str(args.seed)]
            runs[block].append(json.loads(subprocess.run(cmd, check=True, capture_output=True,
                                                         text=True).stdout.splitlines()[-1]))
    med = {}
    for block, rs in runs.items():
        radii = [r["radii"] for r in rs]
        q = [s for r in rs for s in r["quality"]]
        med[block] = (statistics.median(radii), statistics.median(q), max(q))
        print(f"block {block:5d}: real radii ({N_REAL:,} points, once per worker, {len(radii)} workers) median "
              f"{med[block][0]:.3f} s, worst {max(radii):.3f} s; quality of {N_FAKE:,} against them "
              f"({len(q)} scorings) median {med[block][1]:.3f} s, worst {med[block][2]:.3f} s", flush=True)
    same = all(a["scores"] == b["scores"] for a, b in zip(runs[OLD_BLOCK], runs[quality.BLOCK], strict=True))
    (o_r, o_q, o_w), (n_r, n_q, n_w) = med[OLD_BLOCK], med[quality.BLOCK]
    print(f"ratio old/new: radii {o_r / n_r:.2f}x, quality median {o_q / n_q:.2f}x, quality worst "
          f"{o_w / n_w:.2f}x; identical scores: {same}")


if __name__ == "__main__":
    main()
