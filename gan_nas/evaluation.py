"""What a worker runs for one trial: train and score a candidate, in whatever process the executor
chose (this one, a pool's worker, a Ray node). It keeps the dataset and the fitness reference loaded
once per process, and refuses to score with another feature network than the search's."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from gan_nas.config import Config
from gan_nas.errors import GanNasError
from gan_nas.genome import GanGenome

_CACHE: dict[str, Any] = {}


def config_key(cfg: Config) -> str:
    """What the dataset and the reference depend on: the data and fitness sections."""
    d = cfg.to_dict()
    return json.dumps([d["data"], d["fitness"]], sort_keys=True)


def dataset_and_reference(cfg: Config, ds=None, verbose: bool = True):
    """Load the dataset (unless given, already loaded) and its fitness reference once per process: the
    validation split, which a search selects on (reports score on the test split); ``verbose``: the
    feature network's training progress, where it has to be trained."""
    key = config_key(cfg)
    if key not in _CACHE:
        from gan_nas import data, fitness

        if ds is None:
            ds = data.load_config(cfg.data)
        _CACHE.clear()
        _CACHE[key] = (ds, fitness.reference(ds, cfg.fitness, split="validation", verbose=verbose))
    return _CACHE[key]


def evaluate_task(task: dict[str, Any]) -> dict[str, Any]:
    """Train and score one candidate described by a trial's payload (:meth:`Trial.payload` plus
    ``config`` and ``reference``); returns a plain-dict result."""
    from gan_nas import gan

    cfg = Config.from_dict(task["config"])
    ds, ref = dataset_and_reference(cfg)
    if task.get("reference") and task["reference"] != ref.digest:
        raise GanNasError(
            f"this worker's feature classifier (weights {ref.digest}) is not the search's ({task['reference']}), "
            f"so its FIDs would not compare: give every node the search's classifier cache (GAN_NAS_CACHE on a "
            f"shared filesystem)")
    options = gan.TrainOptions.from_config(cfg, task["seed"])
    if task.get("max_seconds"):
        options = dataclasses.replace(options, max_seconds=float(task["max_seconds"]))
    result = gan.train_candidate(
        GanGenome.from_dict(task["genome"]), ds, task["steps"], ref, options,
        parent=task.get("parent_ckpt") or None, resume=task.get("resume_ckpt"), save_to=task["save_to"],
    )
    return result.to_dict()
