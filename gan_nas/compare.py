"""The DCGAN baseline, trained by the candidates' own code, and the searched GAN against it at equal compute.

:func:`train_baseline` trains the DCGAN genome (:func:`gan_nas.baseline.dcgan`)
with :func:`gan_nas.gan.train_candidate`, exactly as a candidate is trained, in
chunks: each chunk resumes from the previous chunk's checkpoint (weights and
Adam state) and is one journal line, so a baseline directory is a small run
directory::

    DIR/config.json                 the resolved config
    DIR/journal.jsonl               one line per chunk (kind initial, then continue; id b0000, b0001, ...)
    DIR/state.json                  {"baseline": true, steps, seconds, ...}; marks the directory as a baseline
    DIR/candidates/bNNNN/           the chunk checkpoints; only the last one keeps its weights
    DIR/best/                       genome.json, candidate.json, generator.keras (so ``gan-nas generate`` works)
    DIR/baseline.json               the final score: fid, kid, kid_std, n, steps, seconds, params

Budgets are totals over the directory: a second call on the same directory
with a larger ``--seconds`` or ``--steps`` continues where the first stopped;
a call whose budget is already met only (re)scores. ``seconds`` counts what a
candidate's ``seconds.total`` counts (build, trace and train; a baseline
chunk does not score), so that it is comparable with the sum over a search's
journal.

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
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from gan_nas import interrupt, precision, runtime, safe_io
from gan_nas.config import Config
from gan_nas.errors import ConfigError, GanNasError, RunDirError
from gan_nas.fitness import QUALITY_KEYS, SMALL_REFERENCE
from gan_nas.store import CONFIG, MAX_COUNT, RunStore, json_safe, seconds_of

BASELINE_FILE = "baseline.json"
# What score_model gives a model, and baseline.json keeps of it.
_SCORE_KEYS = ("fid", "kid", "kid_std", "n", "n_reference", *QUALITY_KEYS, "noise_seed", "split", "selection")
COMPARE_MD = "compare.md"
COMPARE_JSON = "compare.json"
CHUNK_SECONDS = 120.0  # a seconds budget trains in chunks of about this long (at least training.steps steps)
GRID_SAMPLES = 64  # images per side-by-side grid
MAX_BASELINE_SECONDS = 365 * 24 * 3600  # a budget beyond a year of training is a typo (and inf would overflow)


def _scoring_key(cfg: Config) -> dict[str, Any]:
    """The config sections that must agree for two scores (or two trainings) to be comparable:
    the data, the scoring, and the precision the networks train in."""
    d = cfg.to_dict()
    return {"data": d["data"], "fitness": d["fitness"], "precision": d["training"]["mixed_precision"]}


def _log(quiet: bool, line: str) -> None:
    if not quiet:
        print(line, file=sys.stderr, flush=True)


def _open_baseline(cfg: Config | None, run_dir: str | Path) -> tuple[RunStore, Config]:
    """Open an existing baseline directory (checking it is one) or create a new one from ``cfg``."""
    root = Path(run_dir)
    if (root / CONFIG).is_file():
        store = RunStore.open(root)
        try:
            stored = Config.from_json(store.config_json())
        except GanNasError as e:
            raise RunDirError(f"{root / CONFIG} is damaged: {e}") from None
        state = store.read_state()
        if (state is not None and not state.get("baseline")) or (state is None and store.journal()):
            raise RunDirError(f"{root} is a search run directory, not a baseline directory; "
                              "give the baseline a --run-dir of its own")
        if cfg is not None and _scoring_key(cfg) != _scoring_key(stored):
            raise ConfigError(f"{root} holds a baseline trained with other [data] or [fitness] settings or another "
                              "training.mixed_precision than the given config; use another --run-dir, or omit "
                              "--config to continue it as it is")
        return store, stored
    if root.is_dir() and any(root.iterdir()):
        raise RunDirError(f"{root} is not empty and holds no baseline (no {CONFIG}); choose another --run-dir")
    if cfg is None:
        raise RunDirError(f"{root} holds no baseline yet; give --config FILE to start one there")
    return RunStore.create(root, cfg.to_json()), cfg


def _chunk_steps(cfg: Config, steps_done: int, secs_done: float, steps: int | None, seconds: float | None,
                 last: dict[str, Any] | None) -> int:
    """Steps of the next chunk: about CHUNK_SECONDS long, never past a steps budget, aimed at a seconds budget."""
    n = cfg.training.steps
    train = float((last or {}).get("seconds", {}).get("train", 0.0))
    rate = (last["steps"] - 1) / train if last and train > 0 and last["steps"] > 1 else None  # steps per second
    overhead = float((last or {}).get("seconds", {}).get("build", 0.0))  # build + trace + first step
    if rate is not None:
        n = max(n, int(rate * CHUNK_SECONDS))
    if steps is not None:
        n = min(n, steps - steps_done)
    if seconds is not None and rate is not None:
        n = min(n, math.ceil((seconds - secs_done - overhead) * rate) + 1)
    return max(1, n)


def references(ds, cfg: Config) -> dict[str, Any]:
    """The dataset's references by split: ``test`` (what is reported) and ``validation`` (what a search
    selects on), from one cached feature network."""
    from gan_nas import fitness

    return {split: fitness.reference(ds, cfg.fitness, split=split) for split in fitness.SPLITS}


def score_model(gen, refs: dict[str, Any], cfg: Config, latent_size: int | None = None) -> dict[str, Any]:
    """A model's scores on ``fitness.n_report`` samples: on the test split with ``fitness.report_noise_seed``
    (the row's figures), and on the validation split with the search's ``fitness.noise_seed`` as
    ``selection`` (where a searched winner's score carries the bias of having been chosen on it)."""
    from gan_nas import fitness

    out = {}
    for split, seed in (("test", cfg.fitness.report_noise_seed), ("validation", cfg.fitness.noise_seed)):
        scores = fitness.score(gen, refs[split], n=cfg.fitness.n_report, noise_seed=seed, latent_size=latent_size,
                               batch_size=cfg.fitness.batch_size)
        out[split] = {**{k: v if isinstance(v, int) else json_safe(float(v)) for k, v in scores.items()},
                      "noise_seed": seed, "split": split}
    return {**out["test"], "selection": out["validation"]}


def train_baseline(cfg: Config | None, run_dir: str | Path, seconds: float | None = None,
                   steps: int | None = None, quiet: bool = False, _resources: tuple | None = None,
                   keep_at: int | None = None, start_from: str | Path | None = None) -> dict[str, Any]:
    """Train the DCGAN baseline in ``run_dir`` up to a budget, then score it on ``fitness.n_report`` samples.

    Args:
        cfg: the config (dataset, training, fitness); None to continue an existing
            baseline directory with its own config.json.
        run_dir: the baseline directory (created if missing or empty; continued if it holds a baseline).
        seconds: total seconds of training (build + train, summed over chunks) to reach.
        steps: total generator steps to reach. With both, training stops at the first reached.
        quiet: no progress lines on stderr.
        _resources: (dataset, :func:`references`) already loaded by the caller (internal).
        keep_at: if training passes this total step count, a chunk ends exactly there
            and its checkpoint is kept (``state.json`` ``kept``: {steps: chunk id}), so
            that :func:`compare` scores the equal-steps DCGAN without training another.
        start_from: another baseline directory: a new (empty) ``run_dir`` starts from
            its last checkpoint (weights and Adam state), counting its steps and
            seconds as its own (``forked_from`` in state.json and the first record),
            so that a steps budget beyond that baseline costs only the extra steps.

    Returns:
        What ``baseline.json`` holds: the scores of :func:`score_model` (``fid``, ``kid``, ``kid_std``,
        ``n``, the quality metrics, ``noise_seed``, ``selection``), ``steps``, ``seconds`` (build +
        train), ``train_seconds``, ``params`` {g, d}, ``chunks``, ``checkpoint`` (the last chunk's id),
        ``diverged``, ``run_dir``.

    Raises:
        GanNasError: no budget or a non-positive one; a config whose [data] or [fitness]
            differ from the directory's; a directory that is a search run or not empty;
            a baseline that diverged before its first checkpoint.
    """
    from gan_nas import data, gan
    from gan_nas.baseline import dcgan

    if seconds is None and steps is None:
        raise GanNasError("give the baseline a budget: --seconds S or --steps N (totals over the directory)")
    if seconds is not None and not 0 < seconds <= MAX_BASELINE_SECONDS:
        raise GanNasError(f"--seconds must be positive and at most {MAX_BASELINE_SECONDS:,} (a year), got {seconds}")
    if steps is not None and not 1 <= steps <= MAX_COUNT:
        raise GanNasError(f"--steps must be from 1 to 2**53, got {steps if steps < 10**30 else 'a larger number'}")
    ds, refs = _resources if _resources is not None else (None, None)
    if ds is None and cfg is not None:  # fail on a bad dataset before creating anything
        ds = data.load_config(cfg.data)
    store, cfg = _open_baseline(None if cfg is None else precision.resolved(cfg), run_dir)
    runtime.limit_threads(cfg.run.threads)  # as many as each of a serial search's candidates had
    with interrupt.stop_on_signals(), store.locked():  # SIGINT/SIGTERM: stop between steps, lock released
        if ds is None:
            ds = data.load_config(cfg.data)
        if refs is None:
            refs = references(ds, cfg)
        shape = tuple(int(s) for s in ds.spec.shape)
        genome = dcgan(shape)
        records = store.journal()
        ok = [r for r in records if r.get("status") == "ok"]
        last = ok[-1] if ok else None
        state0 = store.read_state() or {}
        fork = state0.get("forked_from")
        if not records and start_from is not None:
            fork = _fork_point(Path(start_from))
        steps_done = int(last["total_steps"]) if last else int(fork["steps"]) if fork else 0
        secs_done = (float(fork["seconds"]) if fork else 0.0) + seconds_of(records)
        diverged = False
        kept = {str(k): v for k, v in (state0.get("kept") or {}).items()}
        while (steps is None or steps_done < steps) and (seconds is None or secs_done < seconds):
            n = _chunk_steps(cfg, steps_done, secs_done, steps, seconds, last)
            if keep_at is not None and steps_done < keep_at:
                n = min(n, keep_at - steps_done)
            cid = f"b{len(records):04d}"
            options = dataclasses.replace(gan.TrainOptions.from_config(
                cfg, seed=(cfg.run.seed * 1_000_003 + 7_919 * (len(records) + 1)) % (2**31 - 1)),
                max_seconds=0.0)  # the baseline's chunks are sized by its own budget
            resume = (store.candidate_dir(last["id"]) if last
                      else Path(fork["run_dir"]) / "candidates" / fork["checkpoint"] if fork else None)
            save_to = store.candidate_dir(cid)
            try:
                result = gan.train_candidate(genome, ds, n, None, options, resume=resume, save_to=save_to,
                                             score=False)
            except BaseException:  # a damaged checkpoint to continue from, a signal: leave no empty b000N
                with contextlib.suppress(OSError):
                    save_to.rmdir()  # only if it is empty
                raise
            record = {"id": cid, "generation": len(records), "kind": "continue" if last or fork else "initial",
                      "parents": [last["id"]] if last else [], "genome": genome.to_dict(), **result.to_dict()}
            if fork and not last:
                record["forked_from"] = fork
            store.append(record)
            records.append(record)
            secs_done += float(result.seconds.get("total", 0.0))
            if result.status != "ok":
                diverged = True
                _log(quiet, f"baseline {cid}: {result.status} ({result.error}); keeping {last['id'] if last else '-'}")
                break
            if last is not None and last["id"] not in kept.values():
                for f in ("weights.npz", "optimizers.npz"):
                    (store.candidate_dir(last["id"]) / f).unlink(missing_ok=True)
            last, steps_done = record, int(record["total_steps"])
            if keep_at is not None and steps_done == keep_at:
                kept[str(keep_at)] = cid
            store.write_state({"baseline": True, "generation": len(records) - 1, "population": [cid],
                               "hall_of_fame": [cid], "steps": steps_done, "seconds": secs_done,
                               "done": False, "stopped": None, "elapsed": secs_done, "kept": kept,
                               "forked_from": fork})
            budget = " / ".join(([f"{steps_done}/{steps} steps"] if steps else [f"{steps_done} steps"])
                                + ([f"{secs_done:.1f}/{seconds:.1f} s"] if seconds else [f"{secs_done:.1f} s"]))
            _log(quiet, f"baseline {cid}: {budget}")
        if last is None:
            raise GanNasError(f"the DCGAN baseline diverged before its first checkpoint (see {store.journal_path}); "
                              "check the dataset and [training] settings")
        return _finish_baseline(store, cfg, refs, genome, shape, records, last, diverged, fork)


def _fork_point(src: Path) -> dict[str, Any]:
    """Where a baseline forked from ``src`` starts: its last checkpoint, steps and seconds."""
    store = RunStore.open(src)
    records = store.journal()
    ok = [r for r in records if r.get("status") == "ok"]
    if not ok or not (store.candidate_dir(ok[-1]["id"]) / "weights.npz").is_file():
        raise RunDirError(f"{src} holds no baseline checkpoint to start from")
    return {"run_dir": str(store.root.resolve()), "checkpoint": ok[-1]["id"], "steps": int(ok[-1]["total_steps"]),
            "seconds": seconds_of(records), "train_seconds": seconds_of(records, "train")}


def _finish_baseline(store: RunStore, cfg: Config, refs, genome, shape, records: list[dict[str, Any]],
                     last: dict[str, Any], diverged: bool, fork: dict[str, Any] | None = None) -> dict[str, Any]:
    """Score the last checkpoint (unless baseline.json already holds its score) and publish best/."""
    from gan_nas import gan

    path = store.root / BASELINE_FILE
    secs = seconds_of(records) + float((fork or {}).get("seconds", 0))
    train_secs = seconds_of(records, "train") + float((fork or {}).get("train_seconds", 0))
    old = None
    if path.is_file():
        try:
            old = safe_io.read_json(path)
        except (OSError, ValueError):
            old = None
    n = cfg.fitness.n_report
    reuse = (isinstance(old, dict) and old.get("checkpoint") == last["id"] and old.get("n") == n
             and old.get("noise_seed") == cfg.fitness.report_noise_seed and isinstance(old.get("selection"), dict)
             and store.best_dir() is not None)
    if reuse:
        scores = {k: v for k, v in old.items() if k in _SCORE_KEYS}
    else:
        ckpt = store.candidate_dir(last["id"])
        gen = gan.load_generator(genome, ckpt, shape)
        scores = score_model(gen, refs, cfg, latent_size=genome.generator.latent)
    summary = {
        "model": "dcgan", "run_dir": str(store.root), **scores,
        "steps": int(last["total_steps"]), "seconds": round(secs, 3), "train_seconds": round(train_secs, 3),
        "params": last["params"], "chunks": len(records), "checkpoint": last["id"], "diverged": diverged,
        "forked_from": fork,
    }
    if not reuse:
        ckpt = store.candidate_dir(last["id"])

        def fill(d: Path) -> None:
            (d / "genome.json").write_text(genome.to_json())
            rec = {k: v for k, v in last.items() if k != "genome"}
            rec.update(fitness=summary["fid"], metrics={**last.get("metrics", {}),
                                                         **{k: summary[k] for k in ("fid", "kid", "kid_std", "n")}})
            (d / "candidate.json").write_text(json.dumps(rec, indent=2))
            gan.export_generator(genome, ckpt, shape, d / "generator.keras")

        store.publish_best(fill)
    store.write_json_atomic(path, summary)
    return summary


def _score_kept(base_dir: Path, steps: int, cfg: Config, refs, shape) -> dict[str, Any] | None:
    """Score the checkpoint a baseline kept at exactly ``steps`` (see ``keep_at``); None if it has none."""
    from gan_nas import gan
    from gan_nas.baseline import dcgan

    store = RunStore.open(base_dir)
    cid = ((store.read_state() or {}).get("kept") or {}).get(str(steps))
    records = store.journal()
    ids = [r["id"] for r in records]
    if cid is None or cid not in ids or not (store.candidate_dir(cid) / "weights.npz").is_file():
        return None
    upto = records[: ids.index(cid) + 1]
    genome = dcgan(shape)
    gen = gan.load_generator(genome, store.candidate_dir(cid), shape)
    return {**score_model(gen, refs, cfg, latent_size=genome.generator.latent), "params": upto[-1]["params"],
            "steps": int(steps), "seconds": round(seconds_of(upto), 3),
            "run_dir": f"{store.root} (checkpoint {cid})", "diverged": False}


# --- compare ------------------------------------------------------------------------------------


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
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, format="png")
    os.replace(tmp, path)
    return path


def _fmt(v: Any, spec: str) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "inf"
    return format(v, spec)


def _gap(row: dict[str, Any]) -> float | None:
    """A row's FID on the selection split and draws less its FID on the test split (None if either is inf)."""
    a, b = (row.get("selection") or {}).get("fid"), row.get("fid")
    return None if a is None or b is None else round(float(a) - float(b), 4)


def _ratio(a: Any, b: Any) -> float | None:
    if a is None or b is None or not math.isfinite(a) or not math.isfinite(b) or b == 0:
        return None
    return float(a) / float(b)


def compare(run_dir: str | Path, baseline_dir: str | Path | None = None, quiet: bool = False) -> dict[str, Any]:
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

    Returns:
        What compare.json holds: ``rows`` (model, fid, kid, kid_std, n, params,
        steps, seconds), ``fid_ratio`` (searched / DCGAN at equal seconds and at
        equal steps; below 1 means the searched GAN is better), ``compute_seconds``,
        ``best_id``, ``n``, ``noise_seed`` and the paths written.

    Raises:
        RunDirError: missing or damaged run directory, no best/ yet, a baseline
            directory that holds a search or another dataset.
    """
    from gan_nas import data, images
    from gan_nas.runs import load_best_generator, open_run

    store, cfg = open_run(run_dir)
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
    searched = load_best_generator(store)
    base_dir = Path(baseline_dir) if baseline_dir is not None else root / "baseline"
    steps_dir = root / "baseline-steps"

    ds = data.load_config(cfg.data)
    store.check_dataset(ds.spec.name, ds.fingerprint, {}, record=False)  # the data the search selected on
    refs = references(ds, cfg)
    n, seed = cfg.fitness.n_report, cfg.fitness.report_noise_seed
    _log(quiet, f"scoring the searched best ({best.get('id')}) on n={n} samples")
    s_scores = score_model(searched, refs, cfg)
    g_s = images.grid(images.sample(searched, GRID_SAMPLES, seed=seed, batch=cfg.fitness.batch_size), cols=8)
    _log(quiet, f"training the DCGAN for {compute:.1f} s (the search's compute) in {base_dir}")
    b_time = train_baseline(cfg, base_dir, seconds=compute, quiet=quiet, _resources=(ds, refs), keep_at=best_steps)
    b_steps = _score_kept(base_dir, best_steps, cfg, refs, tuple(int(x) for x in ds.spec.shape))
    if b_steps is not None:
        _log(quiet, f"the DCGAN at {best_steps} steps (the best lineage's): {b_steps['run_dir']}")
    else:  # the equal-seconds DCGAN never stopped at that step count (it was shorter, or trained past it before)
        # shorter: the equal-steps DCGAN goes on from its end (an empty directory only; one begun is continued)
        fresh = not (steps_dir / "journal.jsonl").is_file() or (steps_dir / "journal.jsonl").stat().st_size == 0
        fork = base_dir if fresh and b_time["steps"] < best_steps else None
        _log(quiet, f"training the DCGAN for {best_steps} steps (the best lineage's) in {steps_dir}"
             + (f", from the equal-seconds DCGAN's {b_time['steps']}" if fork else ""))
        b_steps = train_baseline(cfg, steps_dir, steps=best_steps, quiet=quiet, _resources=(ds, refs),
                                 start_from=fork)

    rows = [
        {"model": f"searched ({best.get('id')})", "key": "searched", **s_scores,
         "params": best.get("params", {}), "steps": best_steps, "seconds": round(compute, 3)},
    ]
    for key, label, b in (("dcgan_equal_seconds", "DCGAN, equal seconds", b_time),
                          ("dcgan_equal_steps", "DCGAN, equal steps", b_steps)):
        rows.append({"model": label, "key": key, **{k: b[k] for k in (*_SCORE_KEYS, "params", "steps", "seconds")
                                                   if k in b},
                     "run_dir": b["run_dir"], "diverged": b["diverged"], "forked_from": b.get("forked_from")})

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
    result = {
        "run_dir": str(root), "dataset": cfg.data.dataset, "n": int(n), "noise_seed": seed,
        "selection_noise_seed": cfg.fitness.noise_seed, "n_search": cfg.fitness.n_search,
        "n_reference": int(refs["test"].n_reference), "n_validation": int(refs["validation"].n_reference),
        "features": refs["test"].kind,
        "compute_seconds": round(compute, 3), "evaluations": len(records), "best_id": best.get("id"),
        "final_seconds": round(seconds_of(r for r in records if r.get("kind") == "final"), 3),
        "best_steps": best_steps, "search_done": bool(state.get("done")), "search_stopped": state.get("stopped"),
        "search_generation": state.get("generation"), "search_generations": cfg.search.generations, "rows": rows,
        "fid_ratio": {"equal_seconds": _ratio(rows[0]["fid"], rows[1]["fid"]),
                      "equal_steps": _ratio(rows[0]["fid"], rows[2]["fid"])},
        # What choosing the best on the validation split and draws did to its score there: its validation FID
        # less its test FID, against the same gap of the DCGAN (which nothing chose), in FID points.
        "selection_gap": {row["key"]: _gap(row) for row in rows},
        "baseline_dirs": {"equal_seconds": str(base_dir), "equal_steps": str(steps_dir)},
        "files": {k: str(v) for k, v in files.items()},
    }
    md = root / COMPARE_MD
    result["files"]["markdown"] = str(md)
    result["files"]["json"] = str(root / COMPARE_JSON)
    tmp = md.with_name(md.name + ".tmp")
    tmp.write_text(_markdown(result))
    os.replace(tmp, md)
    store.write_json_atomic(root / COMPARE_JSON, result)
    return result


def _markdown(r: dict[str, Any]) -> str:
    def ratio(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    lines = [
        "# Searched GAN against the DCGAN at equal compute", "",
        f"Run `{r['run_dir']}` on `{r['dataset']}`. Every model is scored on n={r['n']:,} samples drawn from "
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
           f" The search stopped at its wall-clock budget in generation {r['search_generation']} of "
           f"{r['search_generations']}: this compares what it had found by then."
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
        "| searched | DCGAN (equal seconds) |", "|---|---|",
        "| ![searched](compare_searched.png) | ![DCGAN](compare_dcgan.png) |", "",
        "Both grids: the first 64 of the scoring noise draws. Together: [compare_grid.png](compare_grid.png).",
        "",
    ]
    if any(row.get("diverged") for row in r["rows"]):
        lines.append("Note: a DCGAN run diverged in its last chunk; its row is the last finite checkpoint.\n")
    return "\n".join(lines)


__all__ = ["train_baseline", "compare", "BASELINE_FILE"]
