"""Where a search's time goes, and which executor is faster on this machine.

Run: python experiments/bench_search.py [--config experiments/bench_search.toml] [--generations 1] [--set k=v ...]
     python experiments/bench_search.py --only process --only process-aging   # the pool alone
     python experiments/bench_search.py --set run.train_ahead=false   # the pool without training ahead
     python experiments/bench_search.py --config experiments/mnist.toml --generations 0   # longer candidates

Runs the same search (experiments/bench_search.toml, the quickstart's config when the target was set:
evolution, one generation, as --generations defaults to) in fresh run directories:

* serial: one process, TF using all cores (run.threads = cores);
* process: a pool of 2 spawned workers, 1 TF thread each;
* process-aging: the same pool running aging evolution (evolution.aging = true), which has no
  generation barrier to wait at (it trains population + generations x offspring candidates, the
  generational search's children without its continuations, so compare fractions, not counts).

For each it prints the wall seconds, candidates per hour, and the fraction of
wall time spent outside train steps (building, tracing, scoring, bookkeeping):
1 - (sum of candidates' train seconds) / (wall seconds x parallel workers),
split into the time inside candidates that is not training (building,
tracing, the first step, scoring, checkpoints) and the time between them
(start-up, waits at a generation's end, the parent's bookkeeping), and how many
continuations the pool trained ahead in such waits (run.train_ahead: issued
before their generation formed, so with ids before its children's). Then the
same fraction over the search loop alone: the search's own clock
(``wall_seconds`` of its summary, which starts once the workers are starting
and the feature network is loaded) instead of the command's wall time, so that
the command's start-up (Python and TensorFlow imports, loading the data,
spawning the workers) is told apart from the loop's own waits.
It also prints the floor that no scheduling can go below: the share of the candidates' own time
spent outside their train steps, which is the outside fraction a pool that never left a worker idle
would have.
Targets: the pool's outside-train fraction under 8%; the faster executor is the default.

Measured on the 2-core development machine (see the README's Executors section for the figures).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(config: Path, run_dir: Path, sets: list[str]) -> dict:
    cmd = [sys.executable, "-m", "gan_nas.cli", "search", "--config", str(config), "--run-dir", str(run_dir),
           "--quiet", "--json"]
    for s in sets:
        cmd += ["--set", s]
    t = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    wall = time.perf_counter() - t
    journal = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]
    train = sum(r["seconds"].get("train", 0.0) for r in journal)
    total = sum(r["seconds"].get("total", 0.0) for r in journal)  # train + build/trace + score + checkpoint
    # trained ahead: a continuation issued before its generation formed, so its id comes before
    # those its generation's children got when it did
    first_child = {}
    for r in journal:
        if r["kind"] in ("child", "random"):
            first_child[r["generation"]] = min(first_child.get(r["generation"], r["id"]), r["id"])
    ahead = sum(r["kind"] == "continue" and r["id"] < first_child.get(r["generation"], "") for r in journal)
    parts = {k: statistics.median(r["seconds"].get(k, 0.0) for r in journal) for k in ("build", "score", "train")}
    return {"summary": json.loads(out), "wall": wall, "train": train, "candidate": total, "n": len(journal),
            "ahead": ahead, "median": parts}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default=str(HERE / "bench_search.toml"))
    ap.add_argument("--generations", type=int, default=1)
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="a config override for every run")
    ap.add_argument("--only", action="append", choices=["serial", "process", "process-aging"],
                    help="run only these (repeatable); the ratio to serial needs serial and process")
    args = ap.parse_args()
    cores = os.cpu_count() or 2
    # the search loop alone: no final training (pure train time) and no wall-clock stop
    base = [f"search.generations={args.generations}", "search.final_seconds=0", "search.wall_clock_seconds=0",
            *args.set]
    tmp = Path(tempfile.mkdtemp(prefix="bench-search-"))
    try:
        # warm the fitness cache first so neither run pays for training the classifier
        run(Path(args.config), tmp / "warm", base + ["search.generations=0", "search.population=1"])
        results = {}
        pool = ["run.executor=process", "run.workers=2", "run.threads=1"]
        for name, sets, workers in [
            ("serial", ["run.executor=serial", f"run.threads={cores}"], 1),
            ("process", pool, 2),
            ("process-aging", [*pool, "evolution.aging=true"], 2),
        ]:
            if args.only and name not in args.only:
                continue
            r = run(Path(args.config), tmp / name, base + sets)
            capacity = r["wall"] * workers  # worker-seconds
            outside = 1.0 - r["train"] / capacity
            per_hour = r["n"] / r["wall"] * 3600
            results[name] = per_hour
            print(f"{name}: evaluations={r['n']} wall_s={r['wall']:.1f} candidates_per_hour={per_hour:.1f} "
                  f"outside_train_fraction={outside:.3f} (target < 0.08)")
            # where the outside share goes: inside candidates (building, tracing, the first step, scoring,
            # checkpoints) and outside them (start-up, waits at generation ends, the parent's bookkeeping)
            print(f"  {name}: in_candidates_not_training={(r['candidate'] - r['train']) / capacity:.3f} "
                  f"between_candidates={1.0 - r['candidate'] / capacity:.3f} trained_ahead={r['ahead']}")
            # each candidate's fixed costs against its training: what the outside share cannot go below
            # however well the workers are kept busy (build: the model, the step's trace and first run;
            # score: drawing n_search images, their features, FID/KID and the k-NN metrics)
            m = r["median"]
            print(f"  {name}: per candidate (median) build_s={m['build']:.2f} score_s={m['score']:.2f} "
                  f"train_s={m['train']:.1f}")
            # the outside share a scheduler that never left a worker idle would still have: each candidate's
            # own time outside its train steps, over all of its time
            print(f"  {name}: floor_with_no_idle_worker={(r['candidate'] - r['train']) / r['candidate']:.3f} "
                  f"(target < 0.08)")
            loop = r["summary"]["wall_seconds"] * workers
            print(f"  {name}: start_up_s={r['wall'] - r['summary']['wall_seconds']:.1f} "
                  f"loop_outside_train_fraction={1.0 - r['train'] / loop:.3f} "
                  f"(in candidates {(r['candidate'] - r['train']) / loop:.3f}, "
                  f"between {1.0 - r['candidate'] / loop:.3f})")
        if {"process", "serial"} <= results.keys():
            print(f"process_over_serial={results['process'] / results['serial']:.3f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
