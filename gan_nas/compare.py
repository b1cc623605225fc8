"""The searched GAN against the DCGAN baseline at equal compute, on the test split.

:func:`compare` scores the search's best generator and the DCGAN at equal
compute: the DCGAN trained for as many seconds as all of the search's
candidates took together, and the DCGAN trained for as many steps as the
best candidate's lineage received (the checkpoint the equal-seconds run keeps
at that step count, or a run of its own in ``RUN_DIR/baseline-steps``). All three are scored on
``fitness.n_report`` samples from the same fixed noise, with the run's cached feature network, since
FID depends on n: against the **test** split on ``fitness.report_noise_seed``'s draws (the figures
reported, on data and draws that nothing was selected on), and against the validation split on the
search's own ``fitness.noise_seed`` (``selection``: what the search chose its best on, so that the
bias of choosing on it is on record).

With ``baseline_runs`` > 1 the equal-seconds DCGAN is also trained on the next seeds (in
``BASELINE_DIR-seedN``), and the searched FID's ratio to their mean is given beside the ratio to the
first: one DCGAN's FID after minutes of training varies from run to run (the README gives figures).

The DCGAN is trained and kept in a baseline directory by :mod:`gan_nas.baseline_run`.
"""

from __future__ import annotations

import math
import os
import statistics
from pathlib import Path
from typing import Any

from gan_nas import config as config_mod
from gan_nas import runtime, safe_io
from gan_nas.baseline_run import SCORE_KEYS, log_progress, references, score_kept, score_model, train_baseline
from gan_nas.errors import GanNasError, RunDirError
from gan_nas.fitness import QUALITY_KEYS, SMALL_REFERENCE
from gan_nas.store import RunStore, relative_path, seconds_of

COMPARE_MD = "compare.md"
COMPARE_JSON = "compare.json"
GRID_SAMPLES = 64  # images per side-by-side grid
MAX_BASELINE_RUNS = 10  # DCGAN runs at equal seconds; each costs the search's seconds again
SPEED_TOLERANCE = 0.2  # the DCGAN's steps per second here and in the search differing by more: said loudly
# A row's recall (the share of real images inside the generated images' k-nearest-neighbour balls) below
# this: the model draws little of the data's variety, as a collapsed generator does. FID against a reference
# of a few hundred images on weak features can score a collapse nearly as well as a varied model (on emoji it
# did; samples/emoji/NOTES.md), so compare says so beside the FID rather than leave it to the grids.
COLLAPSE_RECALL = 0.05


def low_diversity(r: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of a compare result whose recall is below COLLAPSE_RECALL."""
    return [row for row in r["rows"] if row.get("recall") is not None and row["recall"] < COLLAPSE_RECALL]


def _side_by_side(grids: list[tuple[str, Any]], path: Path) -> Path:
    """One PNG with the grids side by side, each titled."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2 * len(grids), 4.6), dpi=120, layout="constrained")
    for i, (title, g) in enumerate(grids, start=1):
        ax = fig.add_subplot(1, len(grids), i)
        ax.imshow(g[..., 0] if g.shape[-1] == 1 else g, cmap="gray" if g.shape[-1] == 1 else None,
                  vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    return safe_io.write_atomic(path, lambda tmp: fig.savefig(tmp, format="png"))


def _fmt(v: Any, spec: str) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "inf"
    return format(v, spec)


def _gap(row: dict[str, Any]) -> float | None:
    """A row's FID on the selection split and draws less its FID on the test split (None if either is inf)."""
    a, b = (row.get("selection") or {}).get("fid"), row.get("fid")
    return None if a is None or b is None else round(float(a) - float(b), 4)


def _steps_per_second(records: list[dict[str, Any]], genome: dict[str, Any]) -> float | None:
    """Generator steps per training second of the finished trials that trained ``genome``, or None."""
    mine = [r for r in records if r.get("status") == "ok" and r.get("genome") == genome
            and (r.get("seconds") or {}).get("train")]
    steps, secs = sum(int(r.get("steps") or 0) for r in mine), sum(float(r["seconds"]["train"]) for r in mine)
    return steps / secs if steps > 0 and secs > 0 else None


def _speeds(records: list[dict[str, Any]], base_dir: Path, shape: tuple[int, int, int]) -> dict[str, Any]:
    """How fast the DCGAN genome trained inside the search (where the search trained it, e.g. as evolution's
    or halving's first candidate) and in the equal-seconds baseline: equal seconds are equal compute only if
    the machine was as fast for both."""
    from gan_nas.baseline import dcgan

    genome = dcgan(shape).to_dict()
    search, base = _steps_per_second(records, genome), _steps_per_second(RunStore.open(base_dir).journal(), genome)
    return {"search": search, "baseline": base, "ratio": _ratio(base, search),
            "search_trials": sum(r.get("status") == "ok" and r.get("genome") == genome for r in records)}


def _ratio(a: Any, b: Any) -> float | None:
    if a is None or b is None or not math.isfinite(a) or not math.isfinite(b) or b == 0:
        return None
    return float(a) / float(b)


def compare(run_dir: str | Path, baseline_dir: str | Path | None = None, quiet: bool = False,
            baseline_runs: int = 1) -> dict[str, Any]:
    """Score the search's best generator against the DCGAN at equal compute; write compare.md and compare.json.

    Compute is the sum of ``seconds.total`` over the run's journal (every
    candidate's build, training and scoring). The DCGAN is trained (see
    :func:`train_baseline`) for that many seconds in ``baseline_dir``
    (default ``RUN_DIR/baseline``; an existing one with enough seconds is
    reused, one with fewer is continued), and for as many steps as the best
    candidate's lineage received: the equal-seconds run keeps its checkpoint
    at exactly that step count when it passes it, else the DCGAN trains that
    many steps in ``RUN_DIR/baseline-steps``.

    Args:
        run_dir: a search run directory with a published best/.
        baseline_dir: where the equal-seconds DCGAN is (or is to be) trained.
        quiet: no progress lines on stderr.
        baseline_runs: DCGANs trained at equal seconds, on ``run.seed``, ``run.seed + 1``, ...; the
            others in ``BASELINE_DIR-seedN``. One run's FID varies from seed to seed at budgets
            of minutes, so with more than one the ratio to their mean is the steadier figure
            (``fid_ratio.equal_seconds_mean``; ``baseline_runs`` gives each run's FID).

    Returns:
        What compare.json holds: ``rows`` (model, fid, kid, kid_std, n, params,
        steps, seconds), ``fid_ratio`` (searched / DCGAN at equal seconds and at
        equal steps; below 1 means the searched GAN is better), ``compute_seconds``,
        ``best_id``, ``n``, ``noise_seed`` and the paths written (``files``, ``baseline_dirs``, each row's
        ``run_dir``: relative to the run directory); and ``run_dir``, which compare.json does not hold.

    Raises:
        RunDirError: missing or damaged run directory, no best/ yet, a baseline
            directory that holds a search, another dataset or another seed.
        GanNasError: ``baseline_runs`` outside 1..MAX_BASELINE_RUNS.
    """
    from gan_nas.runs import open_run

    if not 1 <= baseline_runs <= MAX_BASELINE_RUNS:
        raise GanNasError(f"--baseline-runs must be from 1 to {MAX_BASELINE_RUNS} (each trains the DCGAN for the "
                          f"search's seconds), got {baseline_runs}")
    store, cfg = open_run(run_dir)
    # the run's lock: a search still writing it would change best/ and the journal under the scores
    with store.locked():
        return _compare_locked(store, cfg, baseline_dir, quiet, baseline_runs)


def _seed_dir(base_dir: Path, seed: int) -> Path:
    """Where the equal-seconds DCGAN of ``seed`` (another than the run's) is trained, beside ``base_dir``."""
    return base_dir.with_name(f"{base_dir.name}-seed{seed}")


def _check_seed(d: Path, seed: int) -> None:
    """Refuse a DCGAN directory that was trained on another seed than its name says (it would be continued
    with its own config)."""
    if (d / "config.json").is_file():
        try:
            stored = config_mod.Config.from_json(safe_io.read_text(d / "config.json")).run.seed
        except GanNasError as e:
            raise RunDirError(f"{d / 'config.json'} is damaged: {e}") from None
        if stored != seed:
            raise RunDirError(f"{d} holds a DCGAN of run.seed {stored}, not {seed}; move it away and compare again")


def _compare_locked(store, cfg, baseline_dir, quiet: bool, baseline_runs: int = 1) -> dict[str, Any]:
    from gan_nas import data, images
    from gan_nas.runs import load_best_generator

    store.require_search("compare")
    runtime.limit_threads(cfg.run.threads)  # the baseline gets the threads each of the search's candidates had
    root = store.root
    records = store.journal()
    if not records:
        raise RunDirError(f"{root} has no finished evaluations yet; run the search first")
    best_dir = store.best_dir()
    if best_dir is None:
        raise RunDirError(f"{root} has no best/ yet: no generation of the search has finished; "
                          "run or resume the search first")
    best = store.read_json(best_dir / "candidate.json", expect=dict)
    compute = seconds_of(records)
    try:
        best_steps = int(best.get("total_steps") or best.get("steps") or 0)
    except (TypeError, ValueError):
        raise RunDirError(f"{best_dir / 'candidate.json'}: total_steps is not a number; the run is damaged") from None
    if compute <= 0 or best_steps < 1:
        raise RunDirError(f"{store.journal_path} records no training time or steps; the journal is damaged")
    # A lineage trains at most every step the journal records: more would have the DCGAN train without end.
    journaled = sum(int(r.get("steps") or 0) for r in records)
    if best_steps > journaled:
        raise RunDirError(f"{best_dir / 'candidate.json'}: the best's lineage claims {best_steps:,} steps, more than "
                          f"the {journaled:,} the whole journal records; the run is damaged")
    for out in (root / COMPARE_MD, root / COMPARE_JSON):  # before any training: bad input changes nothing
        if os.path.lexists(out) and not out.is_file():
            raise RunDirError(f"{out} exists and is not a regular file (compare writes it); move it away and "
                              "compare again")
    base_dir = Path(baseline_dir) if baseline_dir is not None else root / "baseline"
    steps_dir = root / "baseline-steps"
    run_seeds = [cfg.run.seed + k for k in range(baseline_runs)]  # of the DCGANs at equal seconds
    seed_cfgs = [config_mod.override(cfg, [f"run.seed={s}"]) for s in run_seeds[1:]]  # before any training:
    for s in run_seeds[1:]:                                                          # bad input changes nothing
        _check_seed(_seed_dir(base_dir, s), s)
    searched = load_best_generator(store)

    ds = data.load_config(cfg.data)
    store.check_dataset(ds.spec.name, ds.fingerprint, {}, record=False)  # the data the search selected on
    refs = references(ds, cfg)
    n, seed = cfg.fitness.n_report, cfg.fitness.report_noise_seed
    log_progress(quiet, f"scoring the searched best ({best.get('id')}) on n={n} samples")
    s_scores = score_model(searched, refs, cfg)
    g_s = images.grid(images.sample(searched, GRID_SAMPLES, seed=seed, batch=cfg.fitness.batch_size), cols=8)
    log_progress(quiet, f"training the DCGAN for {compute:.1f} s (the search's compute) in {base_dir}")
    b_time = train_baseline(cfg, base_dir, seconds=compute, quiet=quiet, _resources=(ds, refs), keep_at=best_steps)
    speeds = _speeds(records, base_dir, tuple(int(x) for x in ds.spec.shape))
    b_steps = score_kept(base_dir, best_steps, cfg, refs, tuple(int(x) for x in ds.spec.shape))
    if b_steps is not None:
        log_progress(quiet, f"the DCGAN at {best_steps} steps (the best lineage's): {b_steps['run_dir']}")
    else:  # the equal-seconds DCGAN never stopped at that step count (it was shorter, or trained past it before)
        # shorter: the equal-steps DCGAN goes on from its end (an empty directory only; one begun is continued)
        fresh = not (steps_dir / "journal.jsonl").is_file() or (steps_dir / "journal.jsonl").stat().st_size == 0
        fork = base_dir if fresh and b_time["steps"] < best_steps else None
        log_progress(quiet, f"training the DCGAN for {best_steps} steps (the best lineage's) in {steps_dir}"
             + (f", from the equal-seconds DCGAN's {b_time['steps']}" if fork else ""))
        b_steps = train_baseline(cfg, steps_dir, steps=best_steps, quiet=quiet, _resources=(ds, refs),
                                 start_from=fork)
    b_seeds = []
    for s, seed_cfg in zip(run_seeds[1:], seed_cfgs):
        d = _seed_dir(base_dir, s)
        log_progress(quiet, f"training the DCGAN of run.seed {s} for {compute:.1f} s in {d}")
        b_seeds.append(train_baseline(seed_cfg, d, seconds=compute, quiet=quiet, _resources=(ds, refs)))

    rows = [
        {"model": f"searched ({best.get('id')})", "key": "searched", **s_scores,
         "params": best.get("params", {}), "steps": best_steps, "seconds": round(compute, 3)},
    ]
    for key, label, b in (("dcgan_equal_seconds", "DCGAN, equal seconds", b_time),
                          ("dcgan_equal_steps", "DCGAN, equal steps", b_steps),
                          *((f"dcgan_equal_seconds_seed{s}", f"DCGAN, equal seconds, seed {s}", b)
                            for s, b in zip(run_seeds[1:], b_seeds))):
        fork = b.get("forked_from")
        rows.append({"model": label, "key": key, **{k: b[k] for k in (*SCORE_KEYS, "params", "steps", "seconds")
                                                   if k in b},
                     "run_dir": relative_path(b["run_dir"], root), "checkpoint": b["checkpoint"],
                     "diverged": b["diverged"],
                     "forked_from": fork and {**fork, "run_dir": relative_path(Path(b["run_dir"]) / fork["run_dir"],
                                                                               root)}})

    # Side-by-side grids on the scoring noise (the searched grid was drawn before training cleared Keras' session).
    dcgan_gen = load_best_generator(RunStore.open(base_dir))
    g_b = images.grid(images.sample(dcgan_gen, GRID_SAMPLES, seed=seed, batch=cfg.fitness.batch_size), cols=8)
    files = {
        "searched": images.save_png(g_s, root / "compare_searched.png", scale=2),
        "dcgan": images.save_png(g_b, root / "compare_dcgan.png", scale=2),
        "grid": _side_by_side([(f"searched {best.get('id')}: FID {_fmt(rows[0]['fid'], '.2f')}", g_s),
                               (f"DCGAN, equal seconds: FID {_fmt(rows[1]['fid'], '.2f')}", g_b)],
                              root / "compare_grid.png"),
    }
    state = store.read_state() or {}
    fids = [float(b["fid"]) for b in (b_time, *b_seeds)]
    finite = all(math.isfinite(f) for f in fids)
    runs = {"seeds": run_seeds, "fid": fids, "mean": statistics.mean(fids) if finite else math.inf,
            "std": statistics.stdev(fids) if finite and len(fids) > 1 else None}
    result = {
        "run": root.name, "dataset": cfg.data.dataset, "n": int(n), "noise_seed": seed,
        "selection_noise_seed": cfg.fitness.noise_seed, "n_search": cfg.fitness.n_search,
        "n_reference": int(refs["test"].n_reference), "n_validation": int(refs["validation"].n_reference),
        "features": refs["test"].kind,
        # A generator that always draws one image has no covariance: its FID is the trace of the real
        # features' covariance plus the squared distance of the means, so never below that trace.
        "collapse_fid": float(refs["test"].sigma.trace()),
        "compute_seconds": round(compute, 3), "evaluations": len(records), "best_id": best.get("id"),
        "final_seconds": round(seconds_of(r for r in records if r.get("kind") == "final"), 3),
        "best_steps": best_steps, "search_done": bool(state.get("done")), "search_stopped": state.get("stopped"),
        "search_generation": (state.get("strategy") or state).get("generation"), "search_generations": cfg.search.generations, "rows": rows,
        "fid_ratio": {"equal_seconds": _ratio(rows[0]["fid"], rows[1]["fid"]),
                      "equal_steps": _ratio(rows[0]["fid"], rows[2]["fid"]),
                      "equal_seconds_mean": _ratio(rows[0]["fid"], runs["mean"])},
        "baseline_runs": runs,
        "dcgan_steps_per_second": speeds,
        # What choosing the best on the validation split and draws did to its score there: its validation FID
        # less its test FID, against the same gap of the DCGAN (which nothing chose), in FID points.
        "selection_gap": {row["key"]: _gap(row) for row in rows},
        # Paths from here on are relative to the run directory (which may be moved or copied).
        "baseline_dirs": {"equal_seconds": relative_path(base_dir, root),
                          "equal_steps": relative_path(steps_dir, root),
                          **{f"equal_seconds_seed{s}": relative_path(_seed_dir(base_dir, s), root)
                             for s in run_seeds[1:]}},
        "files": {**{k: relative_path(v, root) for k, v in files.items()},
                  "markdown": COMPARE_MD, "json": COMPARE_JSON},
    }
    safe_io.write_bytes_atomic(root / COMPARE_MD, _markdown(result).encode())
    store.write_json_atomic(root / COMPARE_JSON, result)
    return {**result, "run_dir": str(root)}


def _markdown(r: dict[str, Any]) -> str:
    def ratio(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    few_modes = low_diversity(r)

    lines = [
        "# Searched GAN against the DCGAN at equal compute", "",
        f"Run `{r['run']}` on `{r['dataset']}`. Every model is scored on n={r['n']:,} samples drawn from "
        f"the same fixed noise (seed {r['noise_seed']}) against the test split"
        + (f" ({r['n_reference']:,} real images)" if r.get("n_reference") else "")
        + ", with the run's feature network; FID depends on n, so compare only rows of one table."
        + (f" The search chose its best on another split and other draws: the validation split"
           f" ({r['n_validation']:,} real images, held out from all training) with noise seed "
           f"{r['selection_noise_seed']} (its first {r['n_search']:,} draws scored every candidate). The column "
           "*FID, selection* scores every model there, at this n; the searched model's gap between the two "
           "columns, beside the DCGAN's (chosen on nothing), is the bias of having been selected."
           if r.get("n_validation") else "")
        + (f" With a reference of only {r['n_reference']:,} images FID's bias is large: its values compare "
           "within this table only, and KID (unbiased) is the figure to quote beside it."
           if 0 < r.get("n_reference", 0) < SMALL_REFERENCE else ""), "",
        f"Compute: the search's {r['evaluations']} evaluations took {r['compute_seconds']:,.1f} s together "
        "(sum of `seconds.total`: build, training and scoring): the searched model's seconds. "
        f"The DCGAN was trained for that many seconds, and for the {r['best_steps']:,} generator steps "
        f"that the best candidate's lineage received."
        + ("" if r["search_done"] else
           (f" The search stopped at its wall-clock budget in generation {r['search_generation']} of "
            f"{r['search_generations']}: this compares what it had found by then."
            if r.get("search_generation") is not None else  # an asynchronous strategy has no generation
            " The search stopped at its wall-clock budget: this compares what it had found by then.")
           if r.get("search_stopped") == "budget" else
           " The search has not finished: this compares what is on record.")
        + (f" Of its seconds, {r['final_seconds']:,.1f} s were the final training of its best "
           "(`search.final_seconds`)." if r.get("final_seconds") else "")
        + "".join(f" The equal-steps DCGAN went on from the equal-seconds one's end ({row['forked_from']['steps']:,} "
                  "steps; its seconds include them)." for row in r["rows"] if row.get("forked_from")), "",
        "| model | FID | KID ± std | FID, selection | G params | D params | steps | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in r["rows"]:
        p = row.get("params") or {}
        lines.append(
            f"| {row['model']} | {_fmt(row['fid'], '.2f')} | {_fmt(row['kid'], '.4f')} ± "
            f"{_fmt(row['kid_std'], '.4f')} | {_fmt(row['selection']['fid'], '.2f') if 'selection' in row else '-'} | "
            f"{_fmt(p.get('g'), ',')} | {_fmt(p.get('d'), ',')} | {row['steps']:,} | {row['seconds']:,.1f} |")
    quality = [k for k in QUALITY_KEYS if any(k in row for row in r["rows"])]
    if quality:
        lines += ["", "Fidelity and diversity on the same features and samples (test split): precision and "
                  "recall (k = 3, Kynkäänniemi et al. 2019), density and coverage (k = 5, Naeem et al. 2020)"
                  + (", and the classes the feature classifier gives the samples: class coverage (the share of "
                     "classes generated at least half as often as they are real) and the KL divergence of the "
                     "real class histogram from the generated one (0 is equal)" if "class_kl" in quality else "")
                  + ". Fidelity falls with precision and density, diversity with recall and coverage.", "",
                  "| model | " + " | ".join(k.replace("_", " ") for k in quality) + " |",
                  "|---|" + "---:|" * len(quality)]
        lines += [f"| {row['model']} | " + " | ".join(_fmt(row[k], ".3f") if k in row else "-" for k in quality) + " |"
                  for row in r["rows"]]
    fr = r["fid_ratio"]
    lines += [
        "", f"FID ratio searched / DCGAN: **{ratio(fr['equal_seconds'])}** at equal seconds, "
        f"**{ratio(fr['equal_steps'])}** at equal steps (below 1: the searched GAN is better).", "",
        *([f"The DCGAN was trained {len(br['seeds'])} times at equal seconds (run.seed "
           f"{', '.join(map(str, br['seeds']))}): FID {', '.join(_fmt(f, '.2f') for f in br['fid'])}, mean "
           f"{_fmt(br['mean'], '.2f')}" + (f" ± {br['std']:.2f}" if br.get("std") is not None else "")
           + f". The searched FID is **{ratio(fr.get('equal_seconds_mean'))}** times their mean.", ""]
          if len((br := r.get("baseline_runs") or {}).get("seeds", [])) > 1 else []),
        *([f"**{row['model']} has recall {row['recall']:.3f}** (below {COLLAPSE_RECALL}): it draws little of "
           "the real images' variety (a collapse, if its grid repeats a few images), and FID can score that "
           "nearly as well as a varied model: judge it on recall and its grid too." for row in few_modes]
          + ([""] if few_modes else [])),
        *([f"A generator that always draws the same image scores FID {r['collapse_fid']:.2f} at best on these "
           "features (the trace of the real features' covariance; exactly that where the image's features sit at "
           "their mean): a row above it scores worse than the best single image would.", ""]
          if r.get("collapse_fid") is not None else []),
        "| searched | DCGAN (equal seconds) |", "|---|---|",
        "| ![searched](compare_searched.png) | ![DCGAN](compare_dcgan.png) |", "",
        "Both grids: the first 64 of the scoring noise draws. Together: [compare_grid.png](compare_grid.png).",
        "",
    ]
    sp = r.get("dcgan_steps_per_second") or {}
    if sp.get("ratio") is not None:
        trials = f"{sp['search_trials']} trial{'s' if sp['search_trials'] != 1 else ''} of it"
        lines += [f"Speed: the DCGAN genome trained at {sp['search']:.2f} generator steps per second inside the "
                  f"search ({trials}) and at {sp['baseline']:.2f} in the equal-seconds DCGAN here "
                  f"({sp['ratio']:.2f}x). Equal seconds are equal compute only where these agree"
                  + (f": **they differ by more than {SPEED_TOLERANCE:.0%}, so the machine was not as fast for both "
                     "(another machine, or other load beside one of them), and the ratios at equal seconds favour "
                     "the faster side.**" if abs(sp["ratio"] - 1) > SPEED_TOLERANCE else "; they do here."), ""]
    elif sp:
        lines += ["Speed: the search did not train the DCGAN genome, so whether the machine was as fast for the "
                  "search as for the DCGAN here is not known (equal seconds are equal compute only if it was).", ""]
    if any(row.get("diverged") for row in r["rows"]):
        lines.append("Note: a DCGAN run diverged in its last chunk; its row is the last finite checkpoint.\n")
    return "\n".join(lines)


__all__ = ["compare"]
