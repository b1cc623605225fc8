"""The evolutionary search: evaluate, select, vary, evaluate, keep the best, log.

The loop reads like DEAP's ``eaSimple``::

    population = evaluate(initial)                    # random genomes (+ the DCGAN baseline)
    for each generation:
        parents  = tournament(population)
        children = repair(mutate(crossover(parents)))  # trained from the parents' weights
        survivors keep training `training.survivor_steps` (optional)
        population = select(population + children)    # elitist mu+lambda, or NSGA-II on (FID, G size)
        hall_of_fame.update(population)
    best trains `search.final_seconds` longer (optional)  # its seconds count in the search's compute

Every step that matters for resuming is on disk (see :mod:`gan_nas.store`):
before a generation's evaluations start, ``state.json`` holds the population,
the hall of fame, the random generator's state and the *pending* tasks; each
finished evaluation is a journal line. A resumed search re-runs only the
pending tasks that have no journal line, then carries on from the same state,
so with the same seed it ends where an uninterrupted search would (given
deterministic training: ``training.deterministic = true``).

A pool's worker that a generation's last evaluations leave idle trains
ahead (``run.train_ahead``): a survivor's continuation for the next
generation, once no evaluation still running can displace that survivor
(:meth:`Search.sure_survivors`). A continuation's seed depends only on its
survivor and generation, so the early result is the one the next generation
would compute; it is journaled, under the next generation's id, when that
generation's tasks are made (:meth:`Search.adopt_ahead`). Until then it lives
in ``RUN_DIR/ahead/``, and a crash only loses it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gan_nas import interrupt, precision
from gan_nas import space as space_mod
from gan_nas.config import Config
from gan_nas.errors import CheckpointError, ConfigError, GanNasError, GenomeError, RunDirError
from gan_nas.genome import GanGenome, step_macs, validate
from gan_nas.selection import (
    SECOND_OBJECTIVES,
    crowding_distance,
    fitness_of,
    non_dominated_fronts,
    select_survivors,
    tournament,
)
from gan_nas.store import MAX_COUNT, valid_id

PRUNED_FILES = ("weights.npz", "optimizers.npz")
CHECKPOINT_FILES = ("meta.json", "weights.npz")  # what a task that starts from a checkpoint reads
AHEAD_DIR = "ahead"  # continuations trained ahead of their generation, not yet journaled
# Exceptions of an evaluation that are the run directory's fault, not the candidate's: they stop
# the search (exit 2) instead of being journaled as the candidate's failure.
RUN_DIR_ERRORS = ("CheckpointError",)


# --- evaluation (runs in the executor: in process, a worker process, or Ray) ---

_CACHE: dict[str, Any] = {}


def _dataset_and_reference(cfg: Config, ds=None, verbose: bool = True):
    """Load the dataset (unless given, already loaded) and its fitness reference once per process: the
    validation split, which a search selects on (reports score on the test split); ``verbose``: the
    feature network's training progress, where it has to be trained."""
    key = json_key(cfg)
    if key not in _CACHE:
        from gan_nas import data, fitness

        if ds is None:
            ds = data.load_config(cfg.data)
        _CACHE.clear()
        _CACHE[key] = (ds, fitness.reference(ds, cfg.fitness, split="validation", verbose=verbose))
    return _CACHE[key]


def json_key(cfg: Config) -> str:
    import json

    return json.dumps([cfg.to_dict()["data"], cfg.to_dict()["fitness"]], sort_keys=True)


def evaluate_task(task: dict[str, Any]) -> dict[str, Any]:
    """Train and score one candidate described by a plain-dict task; returns a plain-dict result."""
    from gan_nas import gan

    cfg = Config.from_dict(task["config"])
    ds, ref = _dataset_and_reference(cfg)
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


# --- selection -------------------------------------------------------------------


FINAL_STEPS = 10**9  # the final training is bounded by search.final_seconds, not by steps


def continuation_seed(run_seed: int, survivor: str, generation: int) -> int:
    """The seed of survivor's continuation in ``generation``: from these alone, so it can run ahead."""
    digest = hashlib.sha256(f"{run_seed}/{survivor}/{generation}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % (2**31 - 1)


# --- reading back -------------------------------------------------------------------

_TASK_FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": str, "generation": int, "kind": str, "parents": list, "genome": dict, "steps": int, "seed": int,
    "parent_ckpt": list, "resume_ckpt": (str, type(None)), "save_to": str,
}


def run_relative(path: str, where: str) -> str:
    """A checkpoint path of a task as kept in state.json: ``candidates/ID`` or ``ahead/NAME``.

    Runs made before paths were relative hold them absolute, or relative to the folder the
    search was started from; their last two parts name the checkpoint within the run.
    """
    parts = Path(path).parts
    if len(parts) < 2 or parts[-2] not in ("candidates", AHEAD_DIR) or not valid_id(parts[-1]):
        raise RunDirError(f"{where}: {path!r} is not a checkpoint of this run (candidates/ID)")
    return f"{parts[-2]}/{parts[-1]}"


def check_state(state: dict[str, Any], records: dict[str, dict[str, Any]], path: Path) -> dict[str, Any]:
    """``state`` (read from ``path``) checked against the journal's ``records``, with its checkpoint
    paths made relative to the run directory; RunDirError naming the field if it is damaged."""
    fix = "delete it and resume: the search rebuilds it from the journal"

    def bad(field: str, why: str) -> RunDirError:
        return RunDirError(f"{path}: field {field!r} {why}; {fix}")

    def need(field: str, types: type | tuple[type, ...], value: Any) -> Any:
        if isinstance(value, bool) and types is not bool or not isinstance(value, types):
            names = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
            raise bad(field, "is missing" if value is None else f"must be a {names}, got {json.dumps(value)[:40]}")
        return value

    for field, types in (("generation", int), ("population", list), ("hall_of_fame", list),
                         ("next_id", int), ("pending", list), ("rng", dict)):
        need(field, types, state.get(field))
    for field in ("generation", "next_id"):
        if not 0 <= state[field] <= MAX_COUNT:
            raise bad(field, "must be between 0 and 2**53")
    # Generations follow one another: every journaled generation but the open one has records, so a
    # generation beyond the one after the journal's last skips generations (state.json raised by hand).
    journaled = max((r["generation"] for r in records.values() if isinstance(r.get("generation"), int)), default=-1)
    if state["generation"] > journaled + 1:
        raise bad("generation", f"is {state['generation']}, but the journal ends in generation {journaled}, so it "
                                f"can be at most {journaled + 1}")
    for field in ("population", "hall_of_fame"):
        for cid in state[field]:
            if cid not in records:
                raise bad(field, f"names {cid!r}, which the journal does not hold")
    elapsed = need("elapsed", (int, float), state.get("elapsed", 0.0))
    if not 0 <= elapsed < math.inf:
        raise bad("elapsed", "must be a non-negative number of seconds")
    try:
        np.random.default_rng().bit_generator.state = state["rng"]
    except (TypeError, ValueError, KeyError, OverflowError) as e:
        raise bad("rng", f"is not a random generator's state ({str(e)[:80]})") from None
    tasks = [("pending", t) for t in state["pending"]]
    if state.get("final") is not None:
        need("final", dict, state["final"])
        tasks.append(("final.task", need("final.task", dict, state["final"].get("task"))))
    for field, t in tasks:
        need(field, dict, t)
        for key, types in _TASK_FIELDS.items():
            need(f"{field}.{key}", types, t.get(key))
        for key in ("generation", "steps", "seed"):
            if not 0 <= t[key] <= MAX_COUNT:
                raise bad(f"{field}.{key}", "must be between 0 and 2**53")
        if field == "pending" and t["generation"] != state["generation"]:
            raise bad("pending.generation", f"is {t['generation']} in a task of generation {state['generation']}")
        for cid in t["parents"]:
            if cid not in records:
                raise bad(f"{field}.parents", f"names {cid!r}, which the journal does not hold")
        t["parent_ckpt"] = [run_relative(p, f"{path}: {field}.parent_ckpt") for p in t["parent_ckpt"]]
        if t["resume_ckpt"] is not None:
            t["resume_ckpt"] = run_relative(t["resume_ckpt"], f"{path}: {field}.resume_ckpt")
        t["save_to"] = run_relative(t["save_to"], f"{path}: {field}.save_to")
    return state


def stop_if_all_failed_alike(done: list[dict[str, Any]]) -> None:
    """Raise GanNasError when every evaluation of generation 0 failed with one and the same error:
    that is the config's or the machine's fault (a batch larger than the data, too little memory),
    and every later generation would fail the same way."""
    errors = {r.get("error") for r in done}
    if done and all(r["status"] == "failed" for r in done) and len(errors) == 1 and None not in errors:
        raise GanNasError(f"every evaluation of generation 0 failed with the same error, so the search stops: "
                          f"{errors.pop()}")


# --- the search --------------------------------------------------------------------


class Search:
    """One search over one run directory; :meth:`run` does the work."""

    def __init__(self, cfg: Config, store, shape: tuple[int, int, int], console=None, quiet: bool = False):
        self.cfg = cfg
        self.store = store
        self.shape = shape
        self.console = console
        self.quiet = quiet  # no progress lines (warnings and errors are printed where they arise)
        self.space = space_mod.SearchSpace.from_config(cfg.space)
        self.records: dict[str, dict[str, Any]] = {}
        self.reference: str | None = None  # the digest of the classifier every evaluation must score with
        self.ahead: dict[tuple[str, int], tuple[dict[str, Any], dict[str, Any]]] = {}  # (survivor, gen): task, result
        self.ahead_started: set[tuple[str, int]] = set()

    # -- helpers
    def log(self, line: str) -> None:
        if self.quiet:
            return
        if self.console is not None:
            self.console.print(line, highlight=False, soft_wrap=True)  # a long line stays one line
        else:
            print(line, file=sys.stderr, flush=True)

    def task(self, state: dict[str, Any], genome: GanGenome, kind: str, parents: list[str],
             steps: int, resume_from: str | None = None, ahead: bool = False) -> dict[str, Any]:
        """A task of this generation, with the next id; ``ahead``: a continuation for the next
        generation, to run now, with no id yet and its checkpoint in ``RUN_DIR/ahead/`` until
        :meth:`adopt_ahead` gives it both."""
        generation = state["generation"] + 1 if ahead else state["generation"]
        # Checkpoint paths are relative to the run directory (made absolute in :meth:`payload`), so that
        # state.json stays valid when the run is moved, copied, or resumed from another folder.
        if ahead:
            cid, save_to = None, f"{AHEAD_DIR}/{parents[0]}-g{generation:03d}"
        else:
            cid = f"c{state['next_id']:04d}"
            state["next_id"] += 1
            self.store.candidate_dir(cid)
            save_to = f"candidates/{cid}"
        if kind == "continue":  # known before the generation's tasks are made, so it can run ahead
            seed = continuation_seed(self.cfg.run.seed, parents[0], generation)
        else:
            seed = (self.cfg.run.seed * 1_000_003 + state["next_id"]) % (2**31 - 1)
        # Only a parent that trained has weights to inherit (a failed one left none).
        parent_ckpt = [f"candidates/{p}" for p in parents
                       if self.records.get(p, {}).get("status") == "ok"] if resume_from is None else []
        return {
            "id": cid, "generation": generation, "kind": kind, "parents": parents,
            "genome": genome.to_dict(), "steps": steps, "seed": seed,
            "parent_ckpt": parent_ckpt if self.cfg.training.inherit_weights else [],
            "resume_ckpt": f"candidates/{resume_from}" if resume_from else None,
            "save_to": save_to,
        }

    def payload(self, t: dict[str, Any], cfg_dict: dict[str, Any]) -> dict[str, Any]:
        """What an executor gets for task ``t``: its checkpoint paths made absolute for a worker,
        whose working directory (a Ray node's) need not be the search's, and the config."""
        root = os.path.abspath(self.store.root)

        def absolute(rel: str) -> str:
            return os.path.join(root, rel)

        return {**t, "parent_ckpt": [absolute(p) for p in t.get("parent_ckpt") or []],
                "resume_ckpt": absolute(t["resume_ckpt"]) if t.get("resume_ckpt") else None,
                "save_to": absolute(t["save_to"]), "config": cfg_dict, "reference": self.reference}

    def check_checkpoints(self, t: dict[str, Any]) -> None:
        """Raise CheckpointError, before it runs, if a checkpoint that task ``t`` reads is missing."""
        for rel in [*(t.get("parent_ckpt") or []), *([t["resume_ckpt"]] if t.get("resume_ckpt") else [])]:
            for name in CHECKPOINT_FILES:
                if not (self.store.root / rel / name).is_file():
                    raise CheckpointError(
                        f"{self.store.root / rel / name} is missing, and {t['id'] or 'a task'} ({t['kind']}) needs "
                        f"it; restore it from a copy of the run and resume")

    def continuation(self, state: dict[str, Any], m: dict[str, Any], ahead: bool = False) -> dict[str, Any]:
        """Survivor ``m``'s continuation: ``training.survivor_steps`` more from its checkpoint."""
        return self.task(state, GanGenome.from_dict(m["genome"]), "continue", [m["id"]],
                         self.cfg.training.survivor_steps, resume_from=m["id"], ahead=ahead)

    def initial_tasks(self, state: dict[str, Any], rng: np.random.Generator) -> list[dict[str, Any]]:
        from gan_nas.baseline import dcgan

        genomes = []
        if self.cfg.search.seed_baseline and self.cfg.search.strategy == "evolution":
            genomes.append(dcgan(self.shape))
        while len(genomes) < self.cfg.search.population:
            genomes.append(space_mod.sample(self.space, self.shape, rng))
        return [self.task(state, g, "initial", [], self.cfg.training.steps) for g in genomes]

    def offspring_tasks(self, state: dict[str, Any], rng: np.random.Generator) -> list[dict[str, Any]]:
        s, steps = self.cfg.search, self.cfg.training.steps
        pop = [self.records[i] for i in state["population"]]
        tasks = []
        if s.strategy == "random":
            tasks = [self.task(state, space_mod.sample(self.space, self.shape, rng), "random", [], steps)
                     for _ in range(s.offspring)]
        else:
            key = self.rank_key(pop)
            while len(tasks) < s.offspring:
                a = tournament(pop, 1, s.tournament, rng, key)[0]
                child, parents = GanGenome.from_dict(a["genome"]), [a["id"]]
                if rng.random() < s.crossover_rate and len(pop) > 1:
                    b = tournament(pop, 1, s.tournament, rng, key)[0]
                    child = space_mod.crossover(child, GanGenome.from_dict(b["genome"]), rng)[0]
                    parents.append(b["id"])
                if rng.random() < s.mutation_rate or child == GanGenome.from_dict(a["genome"]):
                    child = space_mod.mutate(child, self.space, self.shape, rng)
                child = space_mod.repair(child, self.space, self.shape)
                tasks.append(self.task(state, child, "child", parents, steps))
        if self.cfg.training.survivor_steps > 0:
            tasks += [self.continuation(state, m) for m in pop if m.get("status") == "ok"]
        return tasks

    def check_genomes(self, records) -> None:
        """Refuse a journal whose evaluated genomes do not fit this run's images (a hand-edited line): a
        survivor's would be trained on, as if the journal said so. The store has checked their structure."""
        for r in records:
            if r.get("status") == "ok":
                try:
                    validate(GanGenome.from_dict(r["genome"]), self.shape)
                except GenomeError as e:
                    raise RunDirError(f"{self.store.journal_path}: {r['id']}'s genome does not fit this run "
                                      f"({e}); repair or delete that line and resume") from None

    def rank_key(self, pop: list[dict[str, Any]]) -> Callable[[dict[str, Any]], Any]:
        if self.cfg.search.objective not in SECOND_OBJECTIVES:
            return fitness_of
        order = {c["id"]: i for i, c in enumerate(select_survivors(pop, len(pop), self.cfg.search.objective))}
        return lambda c: order[c["id"]]

    # -- the loop
    def run(self, resume: bool = False, prepare: Callable[[], None] | None = None) -> dict[str, Any]:
        """Run or resume the search; ``prepare`` runs once the executor's workers are starting."""
        from gan_nas.executors import make_executor

        cfg, store = self.cfg, self.store
        self.records = {r["id"]: r for r in store.journal()}
        self.check_genomes(self.records.values())
        state = store.read_state()
        if state is not None:
            state = check_state(state, self.records, store.root / "state.json")
        if state is None:
            rng = np.random.default_rng(cfg.run.seed)
            state = {"generation": 0, "population": [], "hall_of_fame": [], "next_id": 0,
                     "elapsed": 0.0, "done": False, "stopped": None}
            state["pending"] = self.initial_tasks(state, rng)
            state["rng"] = rng.bit_generator.state
            store.write_state(state)
        elif resume:
            self.log(f"resuming at generation {state['generation']}: {len(self.records)} evaluations on record")
        if state.get("done") and not self.final_pending(state):
            self.log("search already finished")
            return self.summary(state)
        rng = np.random.default_rng()
        rng.bit_generator.state = state["rng"]
        shutil.rmtree(store.root / AHEAD_DIR, ignore_errors=True)  # trained ahead, never journaled: lost in a crash
        t_start, elapsed0 = time.monotonic(), float(state.get("elapsed", 0.0))
        budget = cfg.search.wall_clock_seconds

        def over_budget() -> bool:
            return budget > 0 and elapsed0 + time.monotonic() - t_start >= budget

        with make_executor(cfg.run) as executor:
            if prepare is not None:
                prepare()
                t_start = time.monotonic()  # a classifier trained for the first time is not the search's time
            while not state.get("done"):
                todo = [t for t in state["pending"] if t["id"] not in self.records]
                if (todo and over_budget()) or not self.evaluate(executor, todo, state, over_budget, ahead=True):
                    state["stopped"] = "budget"
                    # the generation stays open (its survivors are chosen on resume), but what finished counts
                    self.update_hall_of_fame(state, self.finished(state))
                    break
                if state["generation"] == 0:
                    stop_if_all_failed_alike(self.finished(state))
                self.advance(state)
                state["elapsed"] = elapsed0 + time.monotonic() - t_start
                if state["generation"] >= cfg.search.generations:
                    state["done"], state["pending"] = True, []
                    store.write_state(state)
                    break
                state["generation"] += 1
                state["pending"] = self.offspring_tasks(state, rng)
                state["rng"] = rng.bit_generator.state
                store.write_state(state)
                self.adopt_ahead(state)
                self.prune(state)
            self.drop_ahead()
            if self.final_pending(state):
                self.final_training(executor, state)
        state["elapsed"] = elapsed0 + time.monotonic() - t_start
        store.write_state(state)
        if not state.get("done"):
            self.log(f"stopped at the wall-clock budget ({budget:.0f} s); best so far is saved in best/; to go on: "
                     f"gan-nas search --resume --run-dir {self.store.root} --set search.wall_clock_seconds=SECONDS")
        return self.summary(state)

    def evaluate(self, executor, tasks: list[dict[str, Any]], state: dict[str, Any],
                 over_budget: Callable[[], bool], ahead: bool = False) -> bool:
        """Evaluate ``tasks``, journaling each result as it finishes; False if the budget ran out.

        With ``ahead`` (and ``run.train_ahead``), workers left idle at the end train
        sure survivors' next continuations (:meth:`idle_work`)."""
        if not tasks:
            return True
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        cfg_dict = self.cfg.to_dict()
        if executor.workers > 1:
            # Longest first: the pool then ends a generation with short tasks, not one worker
            # still training a long one while the others wait at the generation's barrier.
            median = self.median_rate()
            tasks = sorted(tasks, key=lambda t: self.expected_seconds(t, median), reverse=True)
        for t in tasks:
            self.check_checkpoints(t)
        payload = [self.payload(t, cfg_dict) for t in tasks]
        extras: list[dict[str, Any]] = []
        idle = None
        if ahead and self.cfg.run.train_ahead and executor.workers > 1:
            def idle(running: list[tuple[int, float]]) -> dict[str, Any] | None:
                t = None if over_budget() else self.idle_work(state, tasks, running)
                if t is None:
                    return None
                self.ahead_started.add((t["parents"][0], t["generation"]))
                extras.append(t)
                return self.payload(t, cfg_dict)
        columns = (TextColumn("generation {task.fields[gen]}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn())
        with Progress(*columns, console=self.console, transient=False, disable=self.console is None) as bar:
            job = bar.add_task("", total=len(tasks), gen=state["generation"])
            for i, result in executor.map_unordered(evaluate_task, payload, idle=idle):
                if result.get("error_type") in RUN_DIR_ERRORS:  # the run directory's fault: nothing to journal
                    raise CheckpointError(result["error"].split(": ", 1)[-1])
                if result.get("status") == "failed" and interrupt.requested():
                    interrupt.check()  # a task cut short by the stop is redone on resume, not journaled as failed
                if i >= len(tasks):  # trained ahead: journaled when its generation's tasks are made
                    t = extras[i - len(tasks)]
                    self.ahead[(t["parents"][0], t["generation"])] = (t, result)
                    continue
                t = tasks[i]
                record = self.record(t, result)
                self.store.append(record)
                self.records[t["id"]] = record
                bar.advance(job)
                self.log(self.line(record))
                interrupt.check()
                if over_budget() and len([x for x in tasks if x["id"] not in self.records]) > 0:
                    return False
        return True

    @staticmethod
    def record(t: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
        """The journal record of task ``t``'s result."""
        record = {k: t[k] for k in ("id", "generation", "kind", "parents", "genome", "steps")}
        record.update({k: v for k, v in result.items() if k not in ("traceback", "error_type")})
        record.setdefault("fitness", None)
        record.setdefault("params", {"g": 0, "d": 0})
        record.setdefault("seconds", {})
        record.setdefault("total_steps", record.get("steps", 0))
        return record

    # -- training ahead at a generation's end
    def sure_survivors(self, state: dict[str, Any]) -> list[dict[str, Any]]:
        """The finished candidates that survive this generation whatever its unfinished evaluations score.

        Only for elitist selection by FID (``objective = "fid"``, no diversity term),
        where survival is a rank: a candidate is sure when fewer than ``population``
        others can rank ahead of it, counting those with an FID as good or better and,
        pessimistically, every unfinished evaluation (a child can score anything; a
        continuation takes its survivor's place with any score).
        """
        s = self.cfg.search
        if s.objective != "fid" or s.diversity_weight > 0:
            return []
        unfinished = [t for t in state["pending"] if t["id"] not in self.records]
        ok = [r for r in self.selection_pool(state) if math.isfinite(fitness_of(r))]
        return [r for r in ok
                if sum(fitness_of(o) <= fitness_of(r) for o in ok if o is not r) + len(unfinished) < s.population]

    def idle_work(self, state: dict[str, Any], tasks: list[dict[str, Any]],
                  running: list[tuple[int, float]]) -> dict[str, Any] | None:
        """A continuation to train ahead on a worker the generation leaves idle, or None.

        Among sure survivors (:meth:`sure_survivors`) of a generation that has a next
        one, the longest continuation expected to end before the evaluations still
        running do (expected seconds: :meth:`expected_seconds` plus the building and
        scoring its survivor took): one that outlasted them would keep the next
        generation waiting, and estimates err both ways.
        """
        if self.cfg.training.survivor_steps <= 0 or state["generation"] >= self.cfg.search.generations:
            return None
        median = self.median_rate()
        if median is None:
            return None
        overheads = {i: r["seconds"]["total"] - r["seconds"]["train"] for i, r in self.records.items()
                     if r.get("status") == "ok" and {"train", "total"} <= set(r.get("seconds", {}))}
        typical = statistics.median(overheads.values()) if overheads else 0.0

        def seconds(t: dict[str, Any]) -> float:
            return self.expected_seconds(t, median) + overheads.get(next(iter(t["parents"]), ""), typical)

        left = max((seconds(tasks[i]) - secs for i, secs in running if i < len(tasks)), default=0.0)
        best = None
        for m in self.sure_survivors(state):
            if (m["id"], state["generation"] + 1) in self.ahead_started:
                continue
            t = self.continuation(state, m, ahead=True)
            secs = seconds(t)
            if secs <= left and (best is None or secs > best[0]):
                best = (secs, t)
        return None if best is None else best[1]

    def adopt_ahead(self, state: dict[str, Any]) -> None:
        """Journal the results trained ahead for this generation's continuations, under their ids."""
        for t in state["pending"]:
            got = self.ahead.pop((t["parents"][0], t["generation"]), None) if t["kind"] == "continue" else None
            if got is None or t["id"] in self.records:
                continue
            early, result = got
            differ = [k for k in ("kind", "generation", "parents", "genome", "steps", "seed", "resume_ckpt")
                      if early[k] != t[k]]
            if differ:  # a bug, not bad input: never journal a result under a task it was not
                raise RuntimeError(f"internal error: {t['id']} was trained ahead with other {', '.join(differ)}")
            dst, src = self.store.root / t["save_to"], self.store.root / early["save_to"]
            shutil.rmtree(dst, ignore_errors=True)  # made empty with the task's id (or left by a crash)
            if src.is_dir():
                os.replace(src, dst)
            else:  # it failed before writing a checkpoint
                dst.mkdir(parents=True, exist_ok=True)
            record = self.record(t, result)
            record["ahead"] = True
            self.store.append(record)
            self.records[t["id"]] = record
            self.log(self.line(record) + " trained ahead")
        self.drop_ahead()

    def drop_ahead(self) -> None:
        """Forget what was trained ahead and not adopted (the search stopped, or a survivor's
        continuation is not in the generation after all)."""
        self.ahead.clear()
        shutil.rmtree(self.store.root / AHEAD_DIR, ignore_errors=True)

    def rate(self, r: dict[str, Any]) -> float | None:
        """Seconds per step multiply-add that a finished evaluation took; None if it did not train."""
        train, steps = r.get("seconds", {}).get("train"), r.get("steps") or 0
        if r.get("status") != "ok" or not train or steps <= 0:
            return None
        return train / steps / self.macs(r["genome"])

    def median_rate(self) -> float | None:
        """The median :meth:`rate` over the run's finished evaluations; None before any trained."""
        rates = [x for x in map(self.rate, self.records.values()) if x is not None]
        return statistics.median(rates) if rates else None

    def expected_seconds(self, task: dict[str, Any], median: float | None = None) -> float:
        """A task's training seconds, estimated: its steps x its step's multiply-adds
        (:func:`gan_nas.genome.step_macs`) x seconds per multiply-add, measured on its first
        parent when that has trained, else ``median`` (default :meth:`median_rate`); before
        anything has trained, the multiply-adds alone, in their own units. Only the order of
        a generation's tasks depends on it."""
        known = [r for p in task["parents"][:1] if (r := self.records.get(p)) is not None]
        per_mac = next((x for x in map(self.rate, known) if x is not None), None)
        if per_mac is None:
            per_mac = self.median_rate() if median is None else median
        est = task["steps"] * self.macs(task["genome"])
        if per_mac is None:  # nothing has trained yet: multiply-adds alone rank the tasks
            return float(est)
        cap = float(task.get("max_seconds") or self.cfg.training.max_seconds or 0.0)
        return min(est * per_mac, cap) if cap > 0 else est * per_mac

    def macs(self, genome: dict[str, Any]) -> int:
        try:
            return max(1, step_macs(GanGenome.from_dict(genome), self.shape))
        except (GanNasError, ValueError, TypeError, KeyError, AssertionError):
            return 1  # a malformed genome fails in its evaluation, where it is reported

    @staticmethod
    def line(r: dict[str, Any]) -> str:
        fid = "inf" if r.get("fitness") is None else f"{r['fitness']:.2f}"
        secs = r.get("seconds", {}).get("total", 0.0)
        extra = f" ({r['error']})" if r.get("error") and r.get("status") != "ok" else ""
        return (f"{r['id']} gen {r['generation']} {r['kind']:<8} {r['status']:<8} fid {fid:>8} "
                f"G {r['params'].get('g', 0):>9,} D {r['params'].get('d', 0):>9,} {secs:6.1f}s{extra}")

    def advance(self, state: dict[str, Any]) -> None:
        """After a generation's evaluations: survivors, hall of fame, best/, logs, grid."""
        s = self.cfg.search
        done = self.finished(state)
        survivors = select_survivors(self.selection_pool(state), s.population, s.objective, s.diversity_weight)
        state["population"] = [r["id"] for r in survivors]
        state.pop("final", None)  # a search that goes on after a final training trains its (new) best again
        self.update_hall_of_fame(state, done)
        self.log_generation(state, done, survivors)

    def selection_pool(self, state: dict[str, Any]) -> list[dict[str, Any]]:
        """What this generation's survivors are chosen from: its finished evaluations and the
        population, where a survivor whose continuation finished finite is replaced by it (and,
        while that continuation is unfinished, left out: see :meth:`sure_survivors`)."""
        members = {i: self.records[i] for i in state["population"]}
        for t in state["pending"]:
            r = self.records.get(t["id"])
            if t["kind"] == "continue" and (r is None or r["status"] == "ok"):
                members.pop(t["parents"][0], None)
        done = self.finished(state)
        return list(members.values()) + [r for r in done if not (r["kind"] == "continue" and r["status"] != "ok")]

    def final_pending(self, state: dict[str, Any]) -> bool:
        """Whether the final training is configured and has not finished for the current best."""
        return (self.cfg.search.final_seconds > 0 and bool(state["hall_of_fame"])
                and not state.get("final", {}).get("finished"))

    def final_training(self, executor, state: dict[str, Any]) -> None:
        """Train the best candidate ``search.final_seconds`` longer from its checkpoint (one journaled task).

        The task is written to ``state["final"]`` before it runs, so a crash
        re-runs the same task on resume; it is evaluated like any candidate (its
        seconds count in the search's compute) and enters the hall of fame only
        if it beats what is there. A search that resumes and finishes another
        generation trains its best again at the end.
        """
        final = state.get("final")
        if final is None:
            best = self.records[state["hall_of_fame"][0]]
            task = self.task(state, GanGenome.from_dict(best["genome"]), "final", [best["id"]], FINAL_STEPS,
                             resume_from=best["id"])
            task["max_seconds"] = float(self.cfg.search.final_seconds)
            final = state["final"] = {"task": task, "finished": False}
            self.store.write_state(state)
        task = final["task"]
        self.log(f"final training: {task['parents'][0]} trains {task['max_seconds']:.0f} s more as {task['id']}")
        if task["id"] not in self.records:
            self.evaluate(executor, [task], {**state, "generation": "final"}, lambda: False)
        self.update_hall_of_fame(state, [self.records[task["id"]]])
        final["finished"] = True
        self.store.write_state(state)

    def finished(self, state: dict[str, Any]) -> list[dict[str, Any]]:
        """The records of the current generation's evaluations that have finished."""
        return [self.records[t["id"]] for t in state["pending"] if t["id"] in self.records]

    def update_hall_of_fame(self, state: dict[str, Any], done: list[dict[str, Any]]) -> None:
        """Merge finished evaluations into the hall of fame; publish best/ when the best changes."""
        hof = [self.records[i] for i in state["hall_of_fame"]] + [r for r in done if math.isfinite(fitness_of(r))]
        hof = sorted({r["id"]: r for r in hof}.values(), key=fitness_of)[: self.cfg.search.hall_of_fame]
        old_best = state["hall_of_fame"][0] if state["hall_of_fame"] else None
        state["hall_of_fame"] = [r["id"] for r in hof]
        if hof and hof[0]["id"] != old_best:
            self.publish_best(hof[0])

    def publish_best(self, r: dict[str, Any]) -> None:
        from gan_nas import gan

        genome = GanGenome.from_dict(r["genome"])
        ckpt = self.store.candidate_dir(r["id"])

        def fill(d: Path) -> None:
            (d / "genome.json").write_text(genome.to_json())
            (d / "candidate.json").write_text(json.dumps({k: r[k] for k in r if k != "genome"}, indent=2))
            gan.export_generator(genome, ckpt, self.shape, d / "generator.keras")

        self.store.publish_best(fill)

    def log_generation(self, state: dict[str, Any], done: list[dict[str, Any]], survivors) -> None:
        fits = [fitness_of(r) for r in survivors if math.isfinite(fitness_of(r))]
        best = self.records[state["hall_of_fame"][0]] if state["hall_of_fame"] else None
        if fits:
            self.log(f"generation {state['generation']}: best fid {min(fits):.2f}, median {statistics.median(fits):.2f}"
                     f", best ever {best['id'] if best else '-'} ({fitness_of(best) if best else math.inf:.2f})")
        self.tensorboard(state, survivors, fits)
        if best is not None:
            self.generation_grid(state["generation"], best)

    def tensorboard(self, state: dict[str, Any], survivors, fits: list[float]) -> None:
        import tensorflow as tf

        writer = tf.summary.create_file_writer(str(self.store.root / "tb"))
        with writer.as_default(step=state["generation"]):
            if fits:
                tf.summary.scalar("fid/best", min(fits))
                tf.summary.scalar("fid/median", statistics.median(fits))
            ok = [r for r in survivors if math.isfinite(fitness_of(r))]
            if ok:
                tf.summary.scalar("params/generator_of_best", min(ok, key=fitness_of)["params"]["g"])
                tf.summary.scalar("params/generator_median", statistics.median(r["params"]["g"] for r in ok))
        writer.flush()
        writer.close()

    def generation_grid(self, generation: int, best: dict[str, Any]) -> None:
        from gan_nas import gan, images

        gen = gan.load_generator(GanGenome.from_dict(best["genome"]), self.store.candidate_dir(best["id"]),
                                    self.shape)
        grid = images.grid(images.sample(gen, 64, seed=self.cfg.fitness.noise_seed), cols=8)
        images.save_png(grid, self.store.root / "samples" / f"gen{generation:03d}.png", scale=2)

    def prune(self, state: dict[str, Any]) -> None:
        """Delete weights that no future step can need (genome.json and meta stay)."""
        keep = set(state["population"]) | set(state["hall_of_fame"])
        for t in state["pending"]:  # a pending task may have a record already: trained ahead
            keep |= {t["id"], *t["parents"]}
        for d in (self.store.root / "candidates").glob("*"):
            if d.name not in keep and d.name in self.records:
                for f in PRUNED_FILES:
                    (d / f).unlink(missing_ok=True)

    def summary(self, state: dict[str, Any]) -> dict[str, Any]:
        best = self.records[state["hall_of_fame"][0]] if state.get("hall_of_fame") else None
        from gan_nas.store import seconds_of

        seconds = seconds_of(self.records.values())
        return {
            "run_dir": str(self.store.root), "generations": state["generation"], "done": bool(state.get("done")),
            "stopped": state.get("stopped"), "evaluations": len(self.records),
            "best_id": best["id"] if best else None, "best_fid": fitness_of(best) if best else None,
            "best_params": best["params"] if best else None, "candidate_seconds": round(seconds, 1),
            "wall_seconds": round(float(state.get("elapsed", 0.0)), 1),
        }


# Settings a resumed search may change: its budget and where it runs, never what an evaluation means.
RESUME_SETTABLE = ("search.wall_clock_seconds", "search.final_seconds", "run.executor", "run.workers", "run.threads",
                   "run.ray_address", "run.max_retries", "run.train_ahead")


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
            if resume and resume_set:
                # the run must read back whole before its config.json changes: bad input changes nothing
                records = {r["id"]: r for r in store.journal()}
                if (state := store.read_state()) is not None:
                    check_state(state, records, store.root / "state.json")
                store.write_json_atomic(store.root / CONFIG, json.loads(cfg.to_json()))

            s = Search(cfg, store, tuple(ds.spec.shape), console, quiet=quiet)

            def prepare() -> None:
                # train and cache the classifier once, before any worker needs it; kept in this
                # process, where the serial executor's evaluations then find it; workers must
                # score with the same weights (a Ray node without the cache would train its own)
                s.reference = _dataset_and_reference(cfg, ds, verbose=not quiet)[1].digest

            return s.run(resume=resume, prepare=prepare)
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


__all__ = ["search", "Search", "evaluate_task", "select_survivors", "tournament", "non_dominated_fronts",
           "crowding_distance", "GanNasError"]
