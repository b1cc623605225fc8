"""One table from several ``gan-nas compare`` results: a strategy's searched best against the DCGAN over seeds.

Each seed's ``compare`` gives one ratio, and a GAN's FID after a short training swings widely from seed to
seed (the DCGAN's as much as the searched one's; samples/strategies/NOTES.md), so a target such as "searched / DCGAN <= 0.6"
is read off the ratio of the means over seeds, with an interval that says how far the seeds pin it down:
a percentile bootstrap over seeds, each resampled seed keeping its searched and DCGAN FIDs together
(they share a machine and a day).

Run:  python experiments/compare_seeds.py samples/strategies/compare_halving_leader_seconds_s{0..11}_mnist
      python experiments/compare_seeds.py RUN_DIR_1 RUN_DIR_2 ... --json

Each argument is a ``compare.json`` or a folder holding one (a compared run, or its copy in samples/).
Where compare trained several DCGANs (``--baseline-runs``), a seed's DCGAN FID is their mean.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

import numpy as np


def load(path: Path) -> dict:
    """The figures of one compare.json that the table needs; ValueError naming the file if it lacks them."""
    file = path / "compare.json" if path.is_dir() else path
    try:
        data = json.loads(file.read_text())
        rows = {row["key"]: row for row in data["rows"]}
        searched, dcgan = rows["searched"], rows["dcgan_equal_seconds"]
        dcgan_fid = float(data["baseline_runs"]["mean"]) if data.get("baseline_runs") else float(dcgan["fid"])
        steps = rows.get("dcgan_equal_steps")
        result = {
            "name": file.parent.name,
            "searched_fid": float(searched["fid"]),
            "searched_kid": float(searched["kid"]),
            "searched_steps": int(searched["steps"]),
            "dcgan_fid": dcgan_fid,
            "dcgan_runs": len(data["baseline_runs"]["fid"]) if data.get("baseline_runs") else 1,
            "dcgan_kid": float(dcgan["kid"]),
            "dcgan_steps": int(dcgan["steps"]),
            "equal_steps_fid": float(steps["fid"]) if steps else None,
            "seconds": float(searched["seconds"]),
        }
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{file}: not a readable compare.json ({type(err).__name__}: {err})") from None
    if not all(math.isfinite(result[k]) and result[k] > 0 for k in ("searched_fid", "dcgan_fid")):
        raise ValueError(f"{file}: a FID that is not a positive number (searched {result['searched_fid']}, "
                         f"DCGAN {result['dcgan_fid']}): a ratio of the means needs both")
    return result


def ratio_of_means_interval(searched: list[float], dcgan: list[float], draws: int, seed: int) -> tuple[float, float]:
    """95% percentile bootstrap interval of mean(searched) / mean(dcgan), resampling seeds in pairs."""
    s, d = np.asarray(searched), np.asarray(dcgan)
    picks = np.random.default_rng(seed).integers(0, len(s), size=(draws, len(s)))
    ratios = s[picks].mean(axis=1) / d[picks].mean(axis=1)
    low, high = np.percentile(ratios, [2.5, 97.5])
    return float(low), float(high)


def summarise(results: list[dict], draws: int, seed: int) -> dict:
    searched = [r["searched_fid"] for r in results]
    dcgan = [r["dcgan_fid"] for r in results]
    per_seed = [s / d for s, d in zip(searched, dcgan)]
    std = statistics.stdev if len(results) > 1 else (lambda _: None)  # one seed has no spread (JSON: null)
    return {
        "seeds": len(results),
        "searched_mean": statistics.fmean(searched), "searched_std": std(searched),
        "dcgan_mean": statistics.fmean(dcgan), "dcgan_std": std(dcgan),
        "ratio_of_means": statistics.fmean(searched) / statistics.fmean(dcgan),
        "ratio_of_means_95": ratio_of_means_interval(searched, dcgan, draws, seed),
        "median_ratio": statistics.median(per_seed),
        "won": sum(r < 1 for r in per_seed),
        "bootstrap": {"draws": draws, "seed": seed},
    }


def markdown(results: list[dict], summary: dict) -> str:
    lines = ["| compare | searched FID (KID) | steps | DCGAN FID (KID), equal seconds | steps | ratio "
             "| DCGAN at the searched's steps | ratio, equal steps |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        runs = f", mean of {r['dcgan_runs']}" if r["dcgan_runs"] > 1 else ""
        first = ", the first run's" if r["dcgan_runs"] > 1 else ""  # compare.json's row holds one run's KID
        equal = r["equal_steps_fid"]
        equal_fid = "-" if equal is None else f"{equal:.2f}"
        equal_ratio = "-" if equal is None else f"{r['searched_fid'] / equal:.2f}"
        lines.append(
            f"| {r['name']} | {r['searched_fid']:.2f} ({r['searched_kid']:.2f}) | {r['searched_steps']:,} "
            f"| {r['dcgan_fid']:.2f}{runs} ({r['dcgan_kid']:.2f}{first}) | {r['dcgan_steps']:,} "
            f"| {r['searched_fid'] / r['dcgan_fid']:.2f} | {equal_fid} | {equal_ratio} |")
    low, high = summary["ratio_of_means_95"]
    spread = {k: "n/a" if summary[k] is None else f"{summary[k]:.2f}" for k in ("searched_std", "dcgan_std")}
    lines += ["", f"Seeds: {summary['seeds']}. Searched {summary['searched_mean']:.2f} ± {spread['searched_std']}, "
              f"DCGAN {summary['dcgan_mean']:.2f} ± {spread['dcgan_std']} (mean ± std over seeds): "
              f"**ratio of the means {summary['ratio_of_means']:.2f}** (95% bootstrap over seeds "
              f"{low:.2f}-{high:.2f}; {summary['bootstrap']['draws']:,} draws, seed {summary['bootstrap']['seed']}); "
              f"median of the per-seed ratios {summary['median_ratio']:.2f}; "
              f"the search won {summary['won']} of {summary['seeds']}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("compares", nargs="+", type=Path, help="compare.json files, or folders holding one")
    parser.add_argument("--draws", type=int, default=10_000, help="bootstrap resamples (default 10,000)")
    parser.add_argument("--seed", type=int, default=0, help="the bootstrap's random seed (default 0)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    args = parser.parse_args(argv)
    if args.draws < 1:
        print("compare_seeds: error: --draws must be at least 1", file=sys.stderr)
        return 2
    try:
        results = [load(path) for path in args.compares]
    except ValueError as err:
        print(f"compare_seeds: error: {err}", file=sys.stderr)
        return 2
    summary = summarise(results, args.draws, args.seed)
    if args.json:
        print(json.dumps({"compares": results, "summary": summary}, indent=2))
    else:
        print(markdown(results, summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
