"""``gan-nas search``: check everything that can be checked, create (or open) the run directory, and run
the configured strategy on the scheduler until its budget is spent; resume a stopped search."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from gan_nas import interrupt, precision
from gan_nas import space as space_mod
from gan_nas.config import Config
from gan_nas.errors import ConfigError, GanNasError, RunDirError

# Settings a resumed search may change: its budget and where it runs, never what an evaluation means.
RESUME_SETTABLE = ("search.wall_clock_seconds", "search.final_seconds", "run.executor", "run.workers", "run.threads",
                   "run.ray_address", "run.max_retries", "run.train_ahead")


def make_strategy(cfg: Config, space, shape: tuple[int, int, int], history):
    """The strategy that ``search.strategy`` names (:mod:`gan_nas.strategy`), over the run's ``history``."""
    from gan_nas.evolution import AgingEvolution, Evolution
    from gan_nas.halving import SuccessiveHalving
    from gan_nas.random_search import RandomSearch
    from gan_nas.rl import ReinforceSearch

    if cfg.search.strategy == "random":
        return RandomSearch(cfg, space, shape, history)
    if cfg.search.strategy == "rl":
        return ReinforceSearch(cfg, space, shape, history)
    if cfg.search.strategy == "halving":
        return SuccessiveHalving(cfg, space, shape, history)
    return (AgingEvolution if cfg.evolution.aging else Evolution)(cfg, space, shape, history)


def make_scheduler(cfg: Config, store, shape: tuple[int, int, int], console=None, quiet: bool = False):
    """The scheduler of ``cfg``'s strategy over ``store``, with the search's outputs."""
    from gan_nas.outputs import Outputs
    from gan_nas.scheduler import Scheduler

    space = space_mod.SearchSpace.from_config(cfg.space)
    return Scheduler(cfg, store, shape, lambda history: make_strategy(cfg, space, shape, history),
                     Outputs(store, cfg, shape, console, quiet))


def search(cfg: Config, run_dir: str | Path, resume: bool = False, quiet: bool = False,
           resume_set: list[str] | None = None) -> dict[str, Any]:
    """Run (or resume) a search into ``run_dir``; returns a summary of the best candidate.

    Args:
        cfg: the config of a new search; ignored when resuming (the run's config.json is used).
        run_dir: the run directory.
        resume: continue the run in ``run_dir``.
        quiet: no progress on stderr.
        resume_set: ``section.key=value`` changes to the run's config when resuming,
            limited to :data:`RESUME_SETTABLE` (e.g. a larger wall-clock budget);
            written to config.json under the run's lock.

    Raises:
        GanNasError: bad config, dataset, or run directory (the run directory is left intact).
    """
    from rich.console import Console

    from gan_nas import config as config_mod
    from gan_nas import data
    from gan_nas.evaluation import dataset_and_reference
    from gan_nas.store import CONFIG, RunStore

    if resume:
        store = RunStore.open(run_dir)
        store.require_search("resume")
        text = store.config_json()
        cfg = Config.from_json(text)
        # Every version that selects on the validation split writes report_noise_seed into config.json.
        if "report_noise_seed" not in (json.loads(text).get("fitness") or {}):
            raise RunDirError(f"{store.root} was made by a gan-nas that scored candidates on the test split; "
                              "this one selects on a validation split, so its new evaluations would not compare "
                              "with the journal's: start a new run (gan-nas compare and report still read it)")
        for a in resume_set or []:
            if a.split("=", 1)[0].strip() not in RESUME_SETTABLE:
                raise ConfigError(f"--resume cannot change {a.split('=', 1)[0].strip()!r}: a resumed run keeps its "
                                  f"config; only {', '.join(RESUME_SETTABLE)} may be set")
        if resume_set:
            cfg = config_mod.override(cfg, resume_set)
    ds = data.load_config(cfg.data)
    if not resume:
        cfg = precision.resolved(cfg)  # "auto" as this machine answers it, recorded in config.json
        preflight(cfg, ds)  # everything that can fail on bad input fails before anything is created
        existed = Path(run_dir).is_dir()
        store = RunStore.create(run_dir, cfg.to_json())
    console = None if quiet else Console(stderr=True)
    try:
        with interrupt.stop_on_signals(), store.locked():
            store.check_dataset(ds.spec.name, ds.fingerprint,  # before anything else changes
                                {split: ds.describe()[split] for split in ("train", "validation", "test")})
            shape = tuple(ds.spec.shape)
            if resume and resume_set:
                # the run must read back whole before its config.json changes: bad input changes nothing
                make_scheduler(cfg, store, shape).read_back()
                store.write_json_atomic(store.root / CONFIG, json.loads(cfg.to_json()))
            scheduler = make_scheduler(cfg, store, shape, console, quiet)

            def prepare() -> None:
                # train and cache the feature network once, before any worker needs it; kept in this
                # process, where the serial executor's evaluations then find it; workers must score
                # with the same weights (a Ray node without the cache would train its own)
                scheduler.reference = dataset_and_reference(cfg, ds, verbose=not quiet)[1].digest

            return scheduler.run(resume=resume, prepare=prepare)
    except interrupt.Interrupted as e:
        print(f"stopped by {e}; nothing finished is lost. To go on: gan-nas search --resume --run-dir {store.root}",
              file=sys.stderr, flush=True)
        raise
    except (GanNasError, OSError):  # an OSError is reported in one line by the CLI, after this cleanup
        if not resume and not any(r["status"] == "ok" for r in _journal_or_empty(store)):
            remove_created(store.root, keep_folder=existed)  # bad input creates nothing
        raise


def preflight(cfg: Config, ds) -> None:
    """Check, before a run directory exists, what would otherwise fail every evaluation.

    Raises:
        GanNasError: the space cannot produce a genome for the dataset's shape, the batch is
            larger than the training split, the dataset cannot be scored (labels), or the
            feature network's cache folder cannot be written.
    """
    from gan_nas import fitness

    shape = tuple(ds.spec.shape)
    space = space_mod.SearchSpace.from_config(cfg.space)
    space_mod.sample(space, shape, np.random.default_rng(cfg.run.seed))  # an impossible space raises here
    if cfg.data.batch_size > len(ds.x_train):
        raise ConfigError(f"data.batch_size = {cfg.data.batch_size:,} is larger than the training split "
                          f"({len(ds.x_train):,} images); use at most that")
    fitness.check_trainable(ds, cfg.fitness.features)
    fitness.check_cache()


def _journal_or_empty(store) -> list[dict[str, Any]]:
    try:
        return store.journal()
    except GanNasError:
        return []


def remove_created(root: Path, keep_folder: bool) -> None:
    """Remove a run directory that this command created (or, ``keep_folder``, what it put in the
    empty folder it was given), after bad input stopped the search before anything was worth keeping."""
    if keep_folder:
        for p in root.iterdir():
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
    else:
        shutil.rmtree(root, ignore_errors=True)
