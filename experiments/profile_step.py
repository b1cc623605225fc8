"""Where a candidate's train step spends its time, per TensorFlow op type, in float32 and bfloat16.

Run: python experiments/profile_step.py [--steps 10] [--batch 256] [--top 15]

Trains the DCGAN baseline genome through ``gan.train_candidate`` under
TensorFlow's profiler, once per precision, and sums the host-side op events of
the profiled steps by op type (Conv2DBackpropInput, FusedBatchNormGradV3,
Cast, ...). Prints, for each precision, the top op types with their share of
the summed op time, and the milliseconds per step of each. Op times overlap
where inter-op parallelism runs ops side by side, so shares are of op time,
not of wall time. What it found is in experiments/bench_train.py's docstring.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402
from tensorflow.tsl.profiler.protobuf import xplane_pb2  # noqa: E402

from gan_nas import baseline, data, gan  # noqa: E402

HERE = Path(__file__).resolve().parent


def op_times(logdir: str) -> dict[str, float]:
    """Summed duration (ms) of the profiled TensorFlow ops, by op type, from the profiler's xplane files."""
    totals: dict[str, float] = collections.defaultdict(float)
    for path in glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True):
        space = xplane_pb2.XSpace()
        space.ParseFromString(Path(path).read_bytes())
        for plane in space.planes:
            meta = plane.event_metadata
            for line in plane.lines:
                if not line.name.startswith("tf_Compute"):  # the executor's threads, where kernels run
                    continue
                for ev in line.events:
                    name = meta[ev.metadata_id].name  # "scope/name:OpType"
                    if ":" in name and "::" not in name:  # not the executor's own spans, which hold the kernels
                        totals[name.rsplit(":", 1)[-1]] += ev.duration_ps / 1e9
    return totals


def profile(genome, ds, batch: int, steps: int, mixed: bool) -> tuple[dict[str, float], float]:
    opts = gan.TrainOptions(batch_size=batch, seed=0, mixed_precision=mixed, log_every=0)
    gan.train_candidate(genome, ds, 3, options=opts, score=False)  # warm: build, trace, first steps
    logdir = tempfile.mkdtemp(prefix="gan-nas-profile-")
    tf.profiler.experimental.start(logdir)
    r = gan.train_candidate(genome, ds, steps + 1, options=opts, score=False)
    tf.profiler.experimental.stop()
    return op_times(logdir), 1e3 * r.seconds["train"] / steps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--data-dir", default=str(HERE.parent.parent / "shared" / "data" / "mnist"))
    args = ap.parse_args()
    ds = data.load("mnist", args.data_dir)
    genome = baseline.dcgan(ds.spec.shape)
    for mixed in (False, True):
        times, ms_per_step = profile(genome, ds, args.batch, args.steps, mixed)
        total = sum(times.values()) or 1.0
        print(f"{'bfloat16' if mixed else 'float32'}: {ms_per_step:.1f} ms per step (wall), "
              f"{total / (args.steps + 1):.1f} ms of op time per step")
        for op, ms in sorted(times.items(), key=lambda kv: -kv[1])[: args.top]:
            print(f"  {op:<34} {ms / (args.steps + 1):8.2f} ms/step  {100 * ms / total:5.1f}%")


if __name__ == "__main__":
    main()
