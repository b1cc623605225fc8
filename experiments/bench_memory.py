"""Memory over many candidates in one long-lived process (KerasTuner's most reported problem).

Run: python experiments/bench_memory.py [--candidates 30] [--steps 20]

Evaluates sampled candidates one after another through the same path a
search uses (gan.train_candidate: build, train, score), on real MNIST when
../shared/data/mnist is there (else a synthetic stand-in), and prints the
resident set size after candidate 5 and after the last, and the growth.
Target: growth under 20%.

What it found: before gan.forget_custom_gradients, every candidate's traced train step stayed
alive in TensorFlow's gradient registry, about 15 MB per candidate (the optimizer's all-reduce
and tf.nn.silu register custom gradients that nothing removes).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import psutil  # noqa: E402

from gan_nas import config, data, fitness, gan, space  # noqa: E402

HERE = Path(__file__).resolve().parent


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--candidates", type=int, default=30)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--data-dir", default=str(HERE.parent.parent / "shared" / "data" / "mnist"))
    args = ap.parse_args()
    cfg = config.load(None)
    cfg = config.override(cfg, ["space.max_g_blocks=3", "space.max_filters=64", "space.max_g_params=600000",
                                "space.max_d_params=300000", "fitness.n_search=500"])
    ds = data.load("mnist", args.data_dir)
    ref = fitness.reference(ds, cfg.fitness)
    sp = space.SearchSpace.from_config(cfg.space)
    rng = np.random.default_rng(0)
    opts = gan.TrainOptions(batch_size=64, n_search=cfg.fitness.n_search, log_every=0)
    after5 = None
    statuses = []
    for i in range(1, args.candidates + 1):
        g = space.sample(sp, ds.spec.shape, rng)
        r = gan.train_candidate(g, ds, args.steps, ref, opts)
        statuses.append(r.status)
        print(f"candidate {i:2d}: {r.status:8s} fid {r.fitness:8.2f} rss {rss_mb():8.1f} MB", flush=True)
        if i == 5:
            after5 = rss_mb()
    final = rss_mb()
    print(f"rss_after_5_mb={after5:.1f}")
    print(f"rss_after_{args.candidates}_mb={final:.1f}")
    print(f"growth={100 * (final - after5) / after5:.1f}% (target < 20%)")
    print(f"statuses={ {s: statuses.count(s) for s in set(statuses)} }")


if __name__ == "__main__":
    main()
