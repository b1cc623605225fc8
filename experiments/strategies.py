"""Strategies side by side: random, evolution, rl and halving on one dataset, at one wall-clock budget, over seeds.

A row is a strategy, or a strategy with settings of its own (``VARIANTS``: ``halving-leader`` is halving
with ``halving.leader_share = 0.5``; ``halving-leader-unseeded`` is that without the DCGAN genome among
its candidates, as the quickstart runs it; ``halving-leader-explore`` is that with 6 new candidates at
least before the clock may close the search; ``halving-leader-seconds`` is the unseeded one with rungs of
seconds, ``halving.seconds_per_step = 0.1``: 20, 60 and 180 s, about the DCGAN's 200, 600 and 1,800 steps on
one core); ``halving-leader-best`` is that with each lineage judged and continued on its best snapshot,
``halving.leader_snapshot = "best"``); ``halving-leader-ema`` is ``halving-leader-seconds`` with every
generator scored on the exponential moving average of its weights, ``training.g_ema = 0.999``, which
smooths the ups and downs of one snapshot's FID that decide the leader).

Run:  python experiments/strategies.py --runs runs/strategies --page samples/strategies
      python experiments/strategies.py --runs runs/strategies --page samples/strategies --jobs 2
      python experiments/strategies.py --runs runs/strategies --page samples/strategies --only-page

Each (strategy, seed) is one search of experiments/strategies.toml (``search.strategy``, ``run.seed``
set) in ``RUNS/STRATEGY-sSEED``, on one core (``run.threads = 1``; ``--jobs 2`` runs two at once on a
2-core machine), with no final training: what a strategy returns is the best of its own search. A
run directory that exists is not searched again (one stopped by its budget is complete).

Then every run's best (best/) is scored as ``gan-nas compare`` scores: FID and KID on
``fitness.n_report`` = 10,000 samples with the report noise, against the **test** split (the
searches selected on the validation split). The page (``PAGE/README.md``) gives per strategy the
mean +- std of those FIDs over the seeds, each seed's, the ratio of the mean to random's, and a plot
of the best search-time FID (validation split, ``fitness.n_search`` samples) against the search's
seconds, one line per strategy (mean over seeds, the band from the best to the worst seed).
``PAGE/results.json`` holds every figure.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from gan_nas.store import RunStore

HERE = Path(__file__).resolve().parent
STRATEGIES = ("random", "evolution", "rl", "halving", "halving-leader", "halving-leader-unseeded",
              "halving-leader-explore", "halving-leader-seconds", "halving-leader-best", "halving-leader-ema")
# Rows that are a strategy with settings of their own: row name -> (search.strategy, its --set overrides).
# Unseeded: a leader that is the DCGAN genome returns the DCGAN trained for part of the seconds that
# compare gives its own DCGAN, so with the seed the search can at best tie compare's baseline.
VARIANTS = {"halving-leader": ("halving", ["halving.leader_share=0.5"]),
            "halving-leader-unseeded": ("halving", ["halving.leader_share=0.5", "halving.seed_baseline=false"]),
            "halving-leader-explore": ("halving", ["halving.leader_share=0.5", "halving.seed_baseline=false",
                                                   "halving.min_candidates=6"]),
            "halving-leader-seconds": ("halving", ["halving.leader_share=0.5", "halving.seed_baseline=false",
                                                   "halving.seconds_per_step=0.1"]),
            "halving-leader-best": ("halving", ["halving.leader_share=0.5", "halving.seed_baseline=false",
                                                "halving.seconds_per_step=0.1", "halving.leader_snapshot=best"]),
            "halving-leader-ema": ("halving", ["halving.leader_share=0.5", "halving.seed_baseline=false",
                                               "halving.seconds_per_step=0.1", "training.g_ema=0.999"])}


def search_command(config: Path, run_dir: Path, row: str, seed: int, sets: list[str]) -> list[str]:
    strategy, own = VARIANTS.get(row, (row, []))
    cmd = [sys.executable, "-m", "gan_nas.cli", "search", "--config", str(config), "--run-dir", str(run_dir),
           "--quiet", "--json", "--set", f"search.strategy={strategy}", "--set", f"run.seed={seed}"]
    for s in [*own, *sets]:
        cmd += ["--set", s]
    return cmd


def run_searches(jobs: list[tuple[str, int]], runs: Path, config: Path, sets: list[str], parallel: int) -> None:
    """Run the searches whose directories do not exist yet, ``parallel`` at a time; one that exists must
    be complete (finished, or stopped by its budget)."""
    todo = []
    for s, seed in jobs:
        run = runs / f"{s}-s{seed}"
        if not run.exists():
            todo.append((s, seed))
            continue
        state = RunStore.open(run).read_state() or {}
        if not (state.get("done") or state.get("stopped") == "budget"):
            raise SystemExit(f"{run} exists but its search is incomplete: resume it (gan-nas search --resume "
                             f"--run-dir {run}) or delete it")
    running: list[tuple[subprocess.Popen, str]] = []
    while todo or running:
        while todo and len(running) < parallel:
            s, seed = todo.pop(0)
            name = f"{s}-s{seed}"
            log = open(runs / f"{name}.log", "w")
            print(f"{time.strftime('%H:%M:%S')} search {name}", flush=True)
            running.append((subprocess.Popen(search_command(config, runs / name, s, seed, sets), stdout=log,
                                             stderr=subprocess.STDOUT), name))
        time.sleep(2)
        for p, name in list(running):
            if p.poll() is not None:
                running.remove((p, name))
                if p.returncode != 0:
                    raise SystemExit(f"search {name} failed (exit {p.returncode}); see {runs / name}.log")
                print(f"{time.strftime('%H:%M:%S')} done {name}", flush=True)


def curve(records: list[dict]) -> list[tuple[float, float]]:
    """(search seconds, best search-time FID so far) after each trial: a serial search's trials run one
    after another, so the seconds are the running sum of their seconds (building, training, scoring)."""
    t, best, out = 0.0, math.inf, []
    for r in records:
        t += r["seconds"].get("total", 0.0)
        if r.get("status") == "ok" and r.get("fitness") is not None:
            best = min(best, r["fitness"])
        if math.isfinite(best):
            out.append((t, best))
    return out


def score_best(run: Path) -> dict:
    """The run's best scored as compare scores it (test split, n_report samples, report noise)."""
    from gan_nas import data
    from gan_nas.baseline_run import references, score_model
    from gan_nas.runs import load_best_generator, open_run

    store, cfg = open_run(run)
    best = store.read_json(store.best_dir() / "candidate.json", expect=dict)
    ds = data.load_config(cfg.data)
    scores = score_model(load_best_generator(store), references(ds, cfg), cfg)
    return {"best_id": best["id"], "fid": scores["fid"], "kid": scores.get("kid"), "n": cfg.fitness.n_report,
            "selection_fid": scores["selection"]["fid"], "search_fid": best.get("fitness"),
            "steps": best.get("total_steps") or best.get("steps"), "params": best.get("params"),
            "kind": best.get("kind"), "generation": best.get("generation")}


def summarise(runs: Path, jobs: list[tuple[str, int]], cache: dict, earlier: dict) -> dict:
    """Per run: its scores (cached in ``cache`` by run and best id) and its curve; per strategy: mean, std.
    A run whose directory is not in ``runs`` keeps its entry in ``earlier`` (the page's previous
    results.json), marked ``carried``: a page can be remade after some of its searches are run again
    on another machine, and says which rows it did not score."""
    out: dict = {"runs": {}, "strategies": {}}
    for s, seed in jobs:
        run = runs / f"{s}-s{seed}"
        if not (run / "journal.jsonl").is_file():
            if f"{s}-s{seed}" in earlier:
                out["runs"][f"{s}-s{seed}"] = {**earlier[f"{s}-s{seed}"], "carried": True}
            continue
        store = RunStore.open(run)  # the journal and state.json, checked as every reader of a run checks them
        records, state = store.journal(), store.read_state()
        best_id = state["hall_of_fame"][0]
        key = f"{s}-s{seed}"
        best = next(r for r in records if r["id"] == best_id)
        # the run's config and its best's line: a run deleted and made again scores anew
        digest = hashlib.sha256(((run / "config.json").read_text() + json.dumps(best, sort_keys=True)).encode())
        if cache.get(key, {}).get("digest") != digest.hexdigest():
            print(f"scoring {key}'s best ({best_id}) on n = 10,000", flush=True)
            cache[key] = {**score_best(run), "digest": digest.hexdigest()}
        out["runs"][key] = {**cache[key], "strategy": s, "seed": seed, "evaluations": len(records),
                            "promotions": sum(r["kind"] == "continue" for r in records),
                            "search_seconds": round(state["elapsed"], 1), "curve": curve(records)}
    for s in dict.fromkeys(s for s, _ in jobs):
        fids = [r["fid"] for r in out["runs"].values() if r["strategy"] == s]
        if fids:
            out["strategies"][s] = {"mean": statistics.mean(fids), "std": statistics.stdev(fids) if len(fids) > 1 else 0.0,
                                    "seeds": len(fids), "fids": fids}
    base = out["strategies"].get("random", {}).get("mean")
    for v in out["strategies"].values():
        v["vs_random"] = v["mean"] / base if base else None
    return out


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for s in result["strategies"]:
        curves = [r["curve"] for r in result["runs"].values() if r["strategy"] == s and r["curve"]]
        end = max(c[-1][0] for c in curves)
        grid = np.linspace(0, end, 200)
        # best so far at each second; before a seed's first result, nothing to show
        ys = np.array([[min([f for t, f in c if t <= x], default=np.nan) for x in grid] for c in curves])
        # drawn from the moment every seed has a result: a mean over the seeds that have one would rise
        # each time a slower seed's first (poor) result joins it
        mean, lo, hi = ys.mean(0), ys.min(0), ys.max(0)
        (line,) = ax.plot(grid, mean, label=f"{s} ({len(curves)} seeds)")
        ax.fill_between(grid, lo, hi, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("search seconds (one core)")
    ax.set_ylabel("best FID so far (validation, n_search)")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def page(result: dict, config: Path, runs: Path, out: Path, sets: list[str], options: list[str]) -> str:
    """The page's markdown; ``options``: the command line's other options (--strategies, --jobs) as given."""
    from gan_nas import config as config_mod

    cfg = config_mod.override(config_mod.load(config), sets)  # the searches' config, as they ran
    lines = ["# Strategies side by side", "",
             f"Generated by `experiments/strategies.py` from the searches in `{runs}` (config "
             f"`{config.relative_to(HERE.parent) if config.is_relative_to(HERE.parent) else config}`"
             + (f", with {' '.join('--set ' + s for s in sets)}" if sets else "") + ").", "",
             f"Dataset `{cfg.data.dataset}`; each search had {cfg.search.wall_clock_seconds:.0f} s of wall clock on one "
             f"core (`run.threads = 1`, serial; a search stops between trials, so the trial running at the budget "
             f"ends first: *search seconds*), no final training (`search.final_seconds = 0`). Each row's FID is "
             f"its best generator's, scored as `gan-nas compare` scores: n = {cfg.fitness.n_report:,} samples with the "
             f"report noise against the **test** split; the searches selected on the validation split with "
             f"n = {cfg.fitness.n_search:,}. Seeds: `run.seed` = "
             f"{', '.join(str(x) for x in sorted({r['seed'] for r in result['runs'].values()}))}.", "",
             "| strategy | best FID, mean ± std | vs random | per seed | evaluations (promotions) | best's steps "
             "| search seconds |",
             "|---|---|---|---|---|---|---|"]
    for s, v in result["strategies"].items():
        rs = sorted((r for r in result["runs"].values() if r["strategy"] == s), key=lambda r: r["seed"])
        lines.append(
            f"| {s} | {v['mean']:.2f} ± {v['std']:.2f} | "
            + (f"{v['vs_random']:.2f}" if v["vs_random"] else "-") + " | "
            + ", ".join(f"{r['fid']:.2f}" for r in rs) + " | "
            + ", ".join(f"{r['evaluations']}" + (f" ({r['promotions']})" if r["promotions"] else "") for r in rs)
            + " | " + ", ".join(str(r["steps"]) for r in rs)
            + " | " + ", ".join(f"{r['search_seconds']:.0f}" for r in rs) + " |")
    for row, (strategy, own) in VARIANTS.items():
        if row in result["strategies"]:
            lines += ["", f"*{row}*: `{strategy}` with {', '.join(f'`--set {o}`' for o in own)}."]
    first = next(iter(result["strategies"]))  # the page's first row, with its own settings
    example = " ".join(["gan-nas", *search_command(Path("experiments/strategies.toml"), runs / f"{first}-s0", first,
                                                    0, sets)[3:]])
    lines += ["", "Made by (each search one after another, or two at a time with `--jobs 2` on 2 cores):", "",
              "```bash", f"export GAN_NAS_DATA_DIR=../shared/data   # where {cfg.data.dataset}/ is",
              f"python experiments/strategies.py --runs {runs} --page {out} --seeds "
              f"{','.join(str(x) for x in sorted({r['seed'] for r in result['runs'].values()}))}"
              + "".join(f" {o}" for o in options) + "".join(f" --set {s}" for s in sets),
              "# one of its searches:", example, "```"]
    carried = sorted(k for k, r in result["runs"].items() if r.get("carried"))
    if carried:
        lines += ["", f"Carried over from this page's previous `results.json` (their run directories were not in "
                      f"`{runs}` when it was made; scored then, as above): {', '.join(carried)}."]
    lines += ["", "![best FID against search seconds](best_fid_vs_seconds.png)", "",
              "The plot's FIDs are the search's own (validation split, n_search samples), biased upward by the "
              "smaller n (the table below gives the same split at n = 10,000 as *FID selection*). Lines: the mean "
              "over seeds, from the moment every seed has a result; bands: best to worst seed. "
              "A run's seconds are the sum of its trials' seconds (serial: one after another).", "",
              "## Every run", "",
              "| run | best | kind, rung/generation | FID test (n=10,000) | FID selection (validation) | "
              "FID in the search | KID | G params |",
              "|---|---|---|---|---|---|---|---|"]
    for key, r in sorted(result["runs"].items()):
        kid = f"{r['kid']:.4f}" if isinstance(r.get("kid"), float) else "-"
        lines.append(f"| {key} | {r['best_id']} | {r['kind']}, {r['generation']} | {r['fid']:.2f} | "
                     f"{r['selection_fid']:.2f} | {r['search_fid']:.2f} | {kid} | {r['params']['g']:,} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(HERE / "strategies.toml"))
    ap.add_argument("--runs", required=True, help="folder of the searches' run directories")
    ap.add_argument("--page", required=True, help="folder for README.md, results.json and the plot")
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--jobs", type=int, default=1, help="searches at once (one core each)")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    ap.add_argument("--only-page", action="store_true", help="score and write the page from the runs there are")
    args = ap.parse_args()
    runs, out, config = Path(args.runs), Path(args.page), Path(args.config).resolve()
    runs.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(s, int(seed)) for seed in args.seeds.split(",") for s in args.strategies.split(",")]
    if unknown := {s for s, _ in jobs} - set(STRATEGIES):
        raise SystemExit(f"unknown strategies: {', '.join(sorted(unknown))}")
    if not args.only_page:
        run_searches(jobs, runs, config, args.set, args.jobs)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    cache_path = out / "results.json"
    previous = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    cache = previous.get("scores", {})
    result = summarise(runs, jobs, cache, previous.get("runs", {}))
    plot(result, out / "best_fid_vs_seconds.png")
    options = ([f"--strategies {args.strategies}"] if args.strategies != ",".join(STRATEGIES) else []) + (
        [f"--jobs {args.jobs}"] if args.jobs != 1 else [])
    (out / "README.md").write_text(page(result, config, runs, out, args.set, options))
    cache_path.write_text(json.dumps({**result, "scores": cache}, indent=1))
    for s, v in result["strategies"].items():
        ratio = f"{v['vs_random']:.2f}x random" if v["vs_random"] else ""
        print(f"{s:<10} best FID {v['mean']:.2f} ± {v['std']:.2f} over {v['seeds']} seeds  {ratio}")


if __name__ == "__main__":
    main()
