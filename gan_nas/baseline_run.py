"""The DCGAN baseline directory: the DCGAN trained by the candidates' own code, kept and scored.

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

:func:`references` and :func:`score_model` are how a model is scored for a
report (``fitness.n_report`` samples, test split, and the selection split
beside it): the baseline's last checkpoint here, and every row of
:mod:`gan_nas.compare`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
from pathlib import Path
from typing import Any

from gan_nas import interrupt, precision, runtime, safe_io
from gan_nas.checkpoint import PRUNED_FILES, WEIGHTS_FILE
from gan_nas.config import Config
from gan_nas.errors import ConfigError, GanNasError, RunDirError
from gan_nas.fitness import QUALITY_KEYS
from gan_nas.store import CONFIG, MAX_COUNT, RunStore, json_safe, relative_path, seconds_of

BASELINE_FILE = "baseline.json"
# What score_model gives a model, and baseline.json keeps of it.
SCORE_KEYS = ("fid", "kid", "kid_std", "n", "n_reference", *QUALITY_KEYS, "noise_seed", "split", "selection")
CHUNK_SECONDS = 120.0  # a seconds budget trains in chunks of about this long (at least training.steps steps)
MAX_BASELINE_SECONDS = 365 * 24 * 3600  # a budget beyond a year of training is a typo (and inf would overflow)


def _scoring_key(cfg: Config) -> dict[str, Any]:
    """The config sections that must agree for two scores (or two trainings) to be comparable:
    the data, the scoring, and the precision the networks train in."""
    d = cfg.to_dict()
    return {"data": d["data"], "fitness": d["fitness"], "precision": d["training"]["mixed_precision"]}


def log_progress(quiet: bool, line: str) -> None:
    """A progress line on stderr, unless ``quiet``."""
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
            that :func:`gan_nas.compare.compare` scores the equal-steps DCGAN without training another.
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
            fork = _fork_point(Path(start_from), store.root)
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
                      else store.root / fork["run_dir"] / "candidates" / fork["checkpoint"] if fork else None)
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
                log_progress(quiet, f"baseline {cid}: {result.status} ({result.error}); keeping {last['id'] if last else '-'}")
                break
            if last is not None and last["id"] not in kept.values():
                for f in PRUNED_FILES:
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
            log_progress(quiet, f"baseline {cid}: {budget}")
        if last is None:
            raise GanNasError(f"the DCGAN baseline diverged before its first checkpoint (see {store.journal_path}); "
                              "check the dataset and [training] settings")
        return _finish_baseline(store, cfg, refs, genome, shape, records, last, diverged, fork)


def _fork_point(src: Path, root: Path) -> dict[str, Any]:
    """Where a baseline in ``root`` forked from ``src`` starts: its last checkpoint, steps and seconds;
    ``src`` relative to ``root`` (a baseline directory holds no absolute paths: it may be moved with
    the directory it forked from, as compare's two are inside their run directory)."""
    store = RunStore.open(src)
    records = store.journal()
    ok = [r for r in records if r.get("status") == "ok"]
    if not ok or not (store.candidate_dir(ok[-1]["id"]) / WEIGHTS_FILE).is_file():
        raise RunDirError(f"{src} holds no baseline checkpoint to start from")
    return {"run_dir": relative_path(store.root, root),
            "checkpoint": ok[-1]["id"], "steps": int(ok[-1]["total_steps"]),
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
        scores = {k: v for k, v in old.items() if k in SCORE_KEYS}
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
        from gan_nas.outputs import publish_best

        publish_best(store, {**last, "fitness": summary["fid"],
                             "metrics": {**last.get("metrics", {}),
                                         **{k: summary[k] for k in ("fid", "kid", "kid_std", "n")}}}, shape)
    store.write_json_atomic(path, {k: v for k, v in summary.items() if k != "run_dir"})  # no absolute paths
    return summary


def score_kept(base_dir: Path, steps: int, cfg: Config, refs, shape) -> dict[str, Any] | None:
    """Score the checkpoint a baseline kept at exactly ``steps`` (see ``keep_at``); None if it has none."""
    from gan_nas import gan
    from gan_nas.baseline import dcgan

    store = RunStore.open(base_dir)
    cid = ((store.read_state() or {}).get("kept") or {}).get(str(steps))
    records = store.journal()
    ids = [r["id"] for r in records]
    if cid is None or cid not in ids or not (store.candidate_dir(cid) / WEIGHTS_FILE).is_file():
        return None
    upto = records[: ids.index(cid) + 1]
    genome = dcgan(shape)
    gen = gan.load_generator(genome, store.candidate_dir(cid), shape)
    return {**score_model(gen, refs, cfg, latent_size=genome.generator.latent), "params": upto[-1]["params"],
            "steps": int(steps), "seconds": round(seconds_of(upto), 3),
            "run_dir": str(store.root), "checkpoint": cid, "diverged": False}


__all__ = ["train_baseline", "references", "score_model", "score_kept", "BASELINE_FILE", "SCORE_KEYS"]
