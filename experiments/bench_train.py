"""Training throughput: gan-nas's candidate path against a tutorial-style DCGAN loop, in one run.

Run: python experiments/bench_train.py [--steps 30] [--batch 256] [--rounds 3] [--fid-steps 300]

1. Trains the DCGAN baseline genome through ``gan.train_candidate`` (the path
   every candidate takes) and, in the same process, a plain loop written as in
   the TensorFlow DCGAN tutorial (same networks, batch 256, Adam 1e-4, one
   tf.function step). Prints images/s of each (after the first, traced step),
   their ratio (target >= 1.0), and the achieved GFLOP/s.
2. The same candidate path with bfloat16 mixed precision: its speed-up, and
   the FID each precision reaches at equal steps (``--fid-steps``, scored on
   real MNIST with n = 2,000); skip with ``--fid-steps 0``.

The two loops alternate for ``--rounds`` rounds; each side's best round is
compared, so that load from other processes does not bias one side.

FLOPs per step are 2 x ``gan_nas.genome.step_macs``: every kernel weight once
per position it visits, with one step (d_steps = 1, the simultaneous update
that both loops use) taken as G forward and backward (3x), D forward and
backward on the real and the fake batch (3x each), and the generator loss's
backward pass through D on the fake batch (2x more).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _tutorial import tutorial_dcgan, tutorial_step  # noqa: E402

from gan_nas import baseline, config, data, fitness, gan  # noqa: E402
from gan_nas.genome import step_macs  # noqa: E402

HERE = Path(__file__).resolve().parent


def tutorial_rate(ds: data.Dataset, batch: int, steps: int) -> float:
    """The TensorFlow DCGAN tutorial's networks and train step, images/s after the traced step."""
    train_step = tutorial_step(*tutorial_dcgan(), batch)

    # the tutorial's input pipeline: from_tensor_slices, shuffle, batch
    x = (ds.x_train.astype(np.float32) - 127.5) / 127.5
    stream = iter(tf.data.Dataset.from_tensor_slices(x).shuffle(60000).batch(batch, drop_remainder=True).repeat())
    train_step(next(stream))
    t = time.perf_counter()
    for _ in range(steps):
        train_step(next(stream))
    return steps * batch / (time.perf_counter() - t)


def candidate_rate(genome, ds, batch: int, steps: int, mixed: bool) -> tuple[float, gan.CandidateResult]:
    opts = gan.TrainOptions(batch_size=batch, seed=0, mixed_precision=mixed, log_every=0)
    r = gan.train_candidate(genome, ds, steps + 1, options=opts, score=False)
    assert r.status == "ok", r.error
    return steps * batch / r.seconds["train"], r


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--fid-steps", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--data-dir", default=str(HERE.parent.parent / "shared" / "data" / "mnist"))
    args = ap.parse_args()
    ds = data.load("mnist", args.data_dir)
    genome = baseline.dcgan(ds.spec.shape)

    # Alternate the two loops for --rounds rounds and keep each one's best round, so that a
    # burst of load from another process on a noisy machine does not land on one side only.
    ours_runs, ref_runs = [], []
    for _ in range(args.rounds):
        ours_runs.append(candidate_rate(genome, ds, args.batch, args.steps, mixed=False)[0])
        ref_runs.append(tutorial_rate(ds, args.batch, args.steps))
    print("rounds candidate/tutorial images/s: "
          + ", ".join(f"{a:.1f}/{b:.1f}" for a, b in zip(ours_runs, ref_runs)))
    ours, ref = max(ours_runs), max(ref_runs)
    flops = 2 * step_macs(genome, ds.spec.shape)
    print(f"candidate_path_images_per_s={ours:.1f}")
    print(f"tutorial_loop_images_per_s={ref:.1f}")
    print(f"ratio={ours / ref:.3f} (target >= 1.0)")
    print(f"step_gflop_per_image={flops / 1e9:.4f}")
    print(f"candidate_path_gflops={ours * flops / 1e9:.1f}")

    bf16, _ = candidate_rate(genome, ds, args.batch, args.steps, mixed=True)
    print(f"bf16_images_per_s={bf16:.1f}")
    print(f"bf16_speedup={bf16 / ours:.3f}")
    if args.fid_steps > 0:
        cfg = config.load(None)
        reference = fitness.reference(ds, cfg.fitness)
        for mixed in (False, True):
            opts = gan.TrainOptions(batch_size=64, seed=0, mixed_precision=mixed, log_every=0, n_score=2000)
            r = gan.train_candidate(genome, ds, args.fid_steps, reference, opts)
            print(f"fid_{'bf16' if mixed else 'fp32'}_at_{args.fid_steps}_steps={r.fitness:.2f} "
                  f"(train {r.seconds['train']:.1f} s)")


if __name__ == "__main__":
    main()
