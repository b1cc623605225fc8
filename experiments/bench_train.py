"""Training throughput: gan-nas's candidate path against a tutorial-style DCGAN loop, in one run.

Run: python experiments/bench_train.py [--steps 30] [--batch 256] [--rounds 3] [--fid-steps 1000]

1. Trains the DCGAN baseline genome through ``gan.train_candidate`` (the path
   every candidate takes) and, in the same process, a plain loop written as in
   the TensorFlow DCGAN tutorial (same networks, batch 256, Adam 1e-4, one
   tf.function step). Prints images/s of each (after the first, traced step),
   their ratio (target >= 1.0), and the achieved GFLOP/s.
2. The same candidate path with bfloat16 mixed precision, where the CPU has
   native bfloat16 instructions (it prints which; elsewhere it says so and
   skips): its speed-up over float32, and its quality: the FID each precision
   reaches at equal steps with the same ``--seeds`` training seeds (the
   spread over float32's seeds is the yardstick), ``--fid-steps`` steps at
   batch 64, scored on real MNIST with n = 2,000; skip with ``--fid-steps 0``.

The loops alternate for ``--rounds`` rounds; each side's best round is
compared, so that load from other processes does not bias one side.

What keeps bfloat16 below 1.8x here (AMD EPYC with avx512_bf16, 2 threads;
``python experiments/profile_step.py``, op time per step of the DCGAN at batch
256, one run on a loaded machine, float32 -> bfloat16): the kernels that
compute the convolutions' weight gradients gain least, Conv2DBackpropFilter
160 -> 140 ms (1.14x) and its fused-bias form 135 -> 103 ms (1.31x), and
together they are 30% of float32's op time; the generator's transposed
convolutions (Conv2DBackpropInput) gain 1.61x and plain Conv2D 1.38x. Two op
types get slower in bfloat16: the discriminator's dropout masks
(StatelessRandomUniformV2, 50 -> 70 ms) and LeakyReluGrad (13 -> 23 ms).
Batch norm, once it ran Keras's unfused float32 path around casts, is now
the fused kernel on bfloat16 (about 1% of op time); casts are 0.2% and the
optimizer updates under 1%. So what remains is oneDNN's bfloat16 kernels for
weight gradients, not gan-nas's step.

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

from gan_nas import baseline, config, data, fitness, gan, precision  # noqa: E402
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
    ap.add_argument("--seeds", type=int, default=2, help="training seeds per precision for the FID comparison")
    ap.add_argument("--data-dir", default=str(HERE.parent.parent / "shared" / "data" / "mnist"))
    args = ap.parse_args()
    ds = data.load("mnist", args.data_dir)
    genome = baseline.dcgan(ds.spec.shape)

    # Alternate the two loops for --rounds rounds and keep each one's best round, so that a
    # burst of load from another process on a noisy machine does not land on one side only.
    flags = precision.native_bf16_flags()
    gpus = tf.config.list_physical_devices("GPU")
    print(f"cpu_native_bf16_flags={','.join(flags) or 'none'}")
    print(f"gpus={len(gpus)} mixed_policy={precision.policy(True)}")
    mixed_pays = bool(flags or gpus)  # on a GPU the mixed policy runs there (bfloat16 or float16)
    ours_runs, ref_runs, bf16_runs = [], [], []
    for _ in range(args.rounds):
        ours_runs.append(candidate_rate(genome, ds, args.batch, args.steps, mixed=False)[0])
        ref_runs.append(tutorial_rate(ds, args.batch, args.steps))
        if mixed_pays:
            bf16_runs.append(candidate_rate(genome, ds, args.batch, args.steps, mixed=True)[0])
    rounds = [(a, b, *([c] if bf16_runs else [])) for a, b, c in zip(ours_runs, ref_runs, bf16_runs or ref_runs)]
    print(f"rounds candidate/tutorial{'/bf16' if bf16_runs else ''} images/s: "
          + ", ".join("/".join(f"{v:.1f}" for v in r) for r in rounds))
    ours, ref = max(ours_runs), max(ref_runs)
    flops = 2 * step_macs(genome, ds.spec.shape)
    print(f"candidate_path_images_per_s={ours:.1f}")
    print(f"tutorial_loop_images_per_s={ref:.1f}")
    print(f"ratio={ours / ref:.3f} (target >= 1.0)")
    print(f"step_gflop_per_image={flops / 1e9:.4f}")
    print(f"candidate_path_gflops={ours * flops / 1e9:.1f}")

    if not mixed_pays:
        print("bf16: skipped, this CPU has no native bfloat16 instructions (TensorFlow would emulate them, "
              "about 4x slower than float32); training.mixed_precision = \"auto\" trains in float32 here")
        return
    bf16 = max(bf16_runs)
    print(f"bf16_images_per_s={bf16:.1f}")
    print(f"bf16_speedup={bf16 / ours:.3f} (target >= 1.8)")
    if args.fid_steps > 0:
        cfg = config.load(None)
        reference = fitness.reference(ds, cfg.fitness)
        fids: dict[str, list[float]] = {"fp32": [], "bf16": []}
        for seed in range(args.seeds):  # alternating, so that both precisions see the same seeds
            for name, mixed in (("fp32", False), ("bf16", True)):
                opts = gan.TrainOptions(batch_size=64, seed=seed, mixed_precision=mixed, log_every=0, n_search=2000)
                r = gan.train_candidate(genome, ds, args.fid_steps, reference, opts)
                fids[name].append(r.fitness)
                print(f"fid_{name}_seed{seed}_at_{args.fid_steps}_steps={r.fitness:.2f} "
                      f"(train {r.seconds['train']:.1f} s)", flush=True)
        for name, v in fids.items():
            print(f"fid_{name}: mean {np.mean(v):.2f}, sd {np.std(v, ddof=1) if len(v) > 1 else 0.0:.2f}, "
                  f"range [{min(v):.2f}, {max(v):.2f}] over {len(v)} seeds")
        lo, hi = min(fids["fp32"]), max(fids["fp32"])
        inside = sum(lo <= f <= hi for f in fids["bf16"])
        print(f"bf16 seeds within the fp32 seeds' range: {inside} of {len(fids['bf16'])}; "
              f"mean bf16 - fp32 = {np.mean(fids['bf16']) - np.mean(fids['fp32']):+.2f}")


if __name__ == "__main__":
    main()
