"""One scheduler that runs any strategy on any executor.

It keeps every worker busy: it asks the strategy for work as soon as a
worker is free (the executor's ``idle`` callback), so a generational strategy
waits at its own barrier and an asynchronous one never does. Each result is
journaled (one fsynced line), told to the strategy, merged into the hall of
fame, and shown (:mod:`gan_nas.outputs`). Checkpoints that nothing alive needs
are pruned.

What makes resume exact: a trial is written into state.json's ``pending``,
together with the strategy's whole state (its random generator included) and
the next id, before any worker sees it. A resumed search tells the strategy
the pending trials the journal finished since, in the journal's order, and
re-runs the others; so it loses nothing and redoes nothing, and a serial or
generational search ends as an uninterrupted one would (given deterministic
training). Without state.json, the search replays the strategy from the
start, taking each trial the journal already holds instead of training it.

The search's wall-clock budget (``search.wall_clock_seconds``) stops it
between results (a strategy sees what it has left when asked, so that one may
plan to end within it): the open generation stays open (what finished counts for the
best at once), and ``--resume`` goes on. Then, with ``search.final_seconds``,
the best trains that much longer from its checkpoint as one more journaled
trial (kind ``final``).
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

from gan_nas import interrupt
from gan_nas.checkpoint import CHECKPOINT_FILES, PRUNED_FILES
from gan_nas.errors import CheckpointError, GanNasError, GenomeError, RunDirError
from gan_nas.evaluation import evaluate_task
from gan_nas.genome import GanGenome, step_macs, validate
from gan_nas.selection import fitness_of
from gan_nas.store import MAX_COUNT, seconds_of
from gan_nas.strategy import AskContext, Record, Strategy, need, state_error
from gan_nas.trial import Proposal, Trial, derived_seed, lineage_seed

# Exceptions of a trial that are the run directory's fault, not the candidate's: they stop the search
# (exit 2) instead of being journaled as the candidate's failure.
RUN_DIR_ERRORS = ("CheckpointError",)
STATE_VERSION = 2  # state.json's layout: pending trials, hall of fame, the strategy's own state
FINAL_STEPS = 10**9  # the final training is bounded by search.final_seconds, not by steps


class CostModel:
    """Expected seconds of a trial, from what finished: its steps x its step's multiply-adds
    (:func:`gan_nas.genome.step_macs`) x the seconds per multiply-add its first parent took (else the
    run's median), plus the building and scoring seconds its parent (else the median trial) took.
    Only the order of work and what runs ahead depend on it."""

    def __init__(self, records: dict[str, Record], shape: tuple[int, int, int], max_seconds: float) -> None:
        self.records = records
        self.shape = shape
        self.max_seconds = max_seconds

    def macs(self, genome: dict[str, Any]) -> int:
        try:
            return max(1, step_macs(GanGenome.from_dict(genome), self.shape))
        except (GanNasError, ValueError, TypeError, KeyError, AssertionError):
            return 1  # a malformed genome fails in its evaluation, where it is reported

    def rate(self, r: Record) -> float | None:
        """Seconds per step multiply-add that a finished trial took; None if it did not train."""
        train, steps = r.get("seconds", {}).get("train"), r.get("steps") or 0
        if r.get("status") != "ok" or not train or steps <= 0:
            return None
        return train / steps / self.macs(r["genome"])

    def median_rate(self) -> float | None:
        rates = [x for x in map(self.rate, self.records.values()) if x is not None]
        return statistics.median(rates) if rates else None

    def train_seconds(self, genome: dict[str, Any], steps: int, parents, max_seconds: float | None,
                      median: float | None) -> float:
        """Training seconds; before anything has trained, the multiply-adds alone, in their own units."""
        known = [r for p in list(parents)[:1] if (r := self.records.get(p)) is not None]
        per_mac = next((x for x in map(self.rate, known) if x is not None), None)
        if per_mac is None:
            per_mac = median
        est = steps * self.macs(genome)
        if per_mac is None:
            return float(est)
        cap = float(max_seconds or self.max_seconds or 0.0)
        return min(est * per_mac, cap) if cap > 0 else est * per_mac

    def overhead(self, parents) -> float:
        """Building and scoring seconds: the first parent's, else the median trial's."""
        over = {i: r["seconds"]["total"] - r["seconds"]["train"] for i, r in self.records.items()
                if r.get("status") == "ok" and {"train", "total"} <= set(r.get("seconds", {}))}
        first = next(iter(parents), "")
        if first in over:
            return over[first]
        return statistics.median(over.values()) if over else 0.0

    def of_trial(self, t: Trial, median: float | None) -> float:
        return self.train_seconds(t.genome, t.steps, t.parents, t.max_seconds, median) + self.overhead(t.parents)

    def of_proposal(self, p: Proposal, median: float | None) -> float:
        return self.train_seconds(p.genome, p.steps, p.parents, p.max_seconds, median) + self.overhead(p.parents)


class Scheduler:
    """Runs ``strategy`` into one run directory (``store``), on the executor ``cfg.run`` names."""

    def __init__(self, cfg, store, shape: tuple[int, int, int], strategy_factory: Callable[[dict], Strategy],
                 outputs, reference: str | None = None) -> None:
        self.cfg = cfg
        self.store = store
        self.shape = shape
        self.outputs = outputs
        self.reference = reference  # the digest of the feature network every evaluation must score with
        self.records: dict[str, Record] = {}
        self.strategy = strategy_factory(self.records)
        self.cost = CostModel(self.records, shape, cfg.training.max_seconds)
        self.next_id = 0
        self.pending: list[Trial] = []  # issued, not journaled (or journaled since state.json was written)
        self.hall_of_fame: list[str] = []
        self.elapsed = 0.0
        self.done = False
        self.stopped: str | None = None
        self.final: dict[str, Any] | None = None
        self.replaying = False  # rebuilding state.json from the journal: old bests' weights may be pruned
        self.best_due = False  # the best changed and best/ does not show it yet (see flush_best)
        self.clock: tuple[float, float] | None = None  # run(): (time.monotonic() at its start, elapsed before)

    # -- state.json
    def state_dict(self) -> dict[str, Any]:
        # while the clock runs, its seconds so far: a search killed with -9 resumes with the clock it had
        elapsed = self.elapsed_now() if self.clock is not None else self.elapsed
        return {"version": STATE_VERSION, "next_id": self.next_id, "pending": [t.to_dict() for t in self.pending],
                "hall_of_fame": list(self.hall_of_fame), "elapsed": elapsed, "done": self.done,
                "stopped": self.stopped, "final": self.final,
                "strategy": {"name": self.strategy.name, **self.strategy.state_dict()}}

    def write_state(self) -> None:
        self.pending = [t for t in self.pending if t.id not in self.records]  # journaled: told, no longer pending
        self.store.write_state(self.state_dict())

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output, each field checked against the journal."""
        where = str(self.store.root / "state.json")
        if "population" in state and "strategy" not in state:
            raise RunDirError(f"{where} was written by an older gan-nas (before strategies had a state of their "
                              f"own); delete it and resume: the search rebuilds it from the journal")
        if state.get("version", STATE_VERSION) != STATE_VERSION:
            raise state_error(where, "version", f"is {json.dumps(state['version'])[:20]}, not {STATE_VERSION}")
        self.next_id = need(state, "next_id", int, where)
        if not 0 <= self.next_id <= MAX_COUNT:
            raise state_error(where, "next_id", "must be between 0 and 2**53")
        self.pending = [Trial.from_dict(t, f"{where}: pending[{k}]")
                        for k, t in enumerate(need(state, "pending", list, where))]
        for t in self.pending:
            for cid in t.parents:
                if cid not in self.records:
                    raise state_error(where, "pending.parents", f"names {cid!r}, which the journal does not hold")
            r = self.records.get(t.id)  # journaled after state.json was written: it must be this trial
            if r is not None and (r["kind"], r["parents"], r["genome"]) != (t.kind, t.parents, t.genome):
                raise state_error(where, "pending", f"holds {t.id}, which the journal holds as another trial "
                                                    f"(kind, parents or genome differ)")
        self.hall_of_fame = need(state, "hall_of_fame", list, where)
        for cid in self.hall_of_fame:
            if cid not in self.records:
                raise state_error(where, "hall_of_fame", f"names {cid!r}, which the journal does not hold")
        self.elapsed = need(state, "elapsed", (int, float), where)
        if not 0 <= self.elapsed < math.inf:
            raise state_error(where, "elapsed", "must be a non-negative number of seconds")
        self.done = need(state, "done", bool, where)
        self.stopped = state.get("stopped")  # checked, with pending ids, next_id and steps: store.check_state_tasks
        final = state.get("final")
        if final is not None:
            need(state, "final", dict, where)
            need(final, "finished", bool, f"{where}: final")
            Trial.from_dict(final.get("task"), f"{where}: final.task")
        self.final = final
        strategy = need(state, "strategy", dict, where)
        if strategy.get("name") != self.strategy.name:
            raise state_error(where, "strategy.name", f"is {strategy.get('name')!r}, but the run's config names "
                                                      f"{self.strategy.name!r}")
        self.strategy.load_state_dict(strategy, f"{where}: strategy", {t.id for t in self.pending})

    # -- asking for work
    def new_id(self) -> str:
        cid = f"c{self.next_id:04d}"
        self.next_id += 1
        return cid

    def ask(self, free: int, running: list[tuple[Trial, float]], speculate: bool) -> list[Trial]:
        """The strategy's next trials, written into state.json before they run; trials the journal
        already holds (a state.json rebuilt by replay) are told at once instead."""
        median = self.cost.median_rate()
        wait = max((self.cost.of_trial(t, median) - secs for t, secs in running), default=0.0)
        ctx = AskContext(free=free, new_id=self.new_id, speculate=speculate,
                         wait_seconds=max(wait, 0.0), expected_seconds=lambda p: self.cost.of_proposal(p, median),
                         seconds_left=self.seconds_left())
        trials = []
        for p in self.strategy.ask(ctx):
            parent_ckpt = [f"candidates/{q}" for q in p.parents if self.records.get(q, {}).get("status") == "ok"]
            trials.append(Trial.from_proposal(
                p, parent_ckpt if self.cfg.training.inherit_weights and p.resume is None else []))
        self.pending += trials
        for t in trials:
            if t.id in self.records:
                self.replayed(t)
        if any(t.id not in self.records for t in trials):
            self.end_replay()  # the replay has reached what the journal does not hold
        if trials:
            for t in trials:
                if t.id not in self.records:
                    self.store.candidate_dir(t.id)
            self.write_state()
        return [t for t in trials if t.id not in self.records]

    def end_replay(self) -> None:
        """After a replay: publish the best, which the replay chose without its outputs."""
        if self.replaying:
            self.replaying = False
            self.best_due = bool(self.hall_of_fame)
            self.flush_best()

    def published_best(self) -> str | None:
        """The id of the trial that best/ shows, or None (none yet, or unreadable: publish again)."""
        best = self.store.best_dir()
        try:
            return self.store.read_json(best / "candidate.json", expect=dict).get("id") if best else None
        except RunDirError:
            return None

    def flush_best(self) -> None:
        """Publish best/ if the best changed since it was last published.

        Exporting a generator takes seconds in this process, and while it runs a pool's free
        worker gets no trial; so it waits for a moment when the worker would be idle anyway
        (a barrier), a generation's end, or the end of the search."""
        if self.best_due and not self.replaying:
            self.best_due = False
            self.outputs.publish_best(self.records[self.hall_of_fame[0]])

    def replayed(self, t: Trial) -> None:
        """Trial ``t``, proposed again while state.json is rebuilt, is already journaled: tell it."""
        r = self.records[t.id]
        if (r["kind"], r["parents"], r["genome"]) != (t.kind, t.parents, t.genome):
            raise RunDirError(f"{self.store.journal_path}: {t.id} is not the trial the search proposes again while "
                              f"rebuilding state.json (its kind, parents or genome differ: trials trained ahead or "
                              f"on a pool finish in an order a replay cannot know); restore state.json")
        self.replaying = True
        self.told(r)

    # -- the loop
    def run(self, resume: bool, prepare: Callable[[], None] | None = None) -> dict[str, Any]:
        """Run or resume the search; ``prepare`` runs once the executor's workers are starting."""
        from gan_nas.executors import make_executor

        state = self.read_back()
        self.best_due = bool(self.hall_of_fame) and self.hall_of_fame[0] != self.published_best()
        if state is not None:
            if resume:
                self.outputs.log(f"resuming: {len(self.records)} evaluations on record, "
                                 f"{sum(t.id not in self.records for t in self.pending)} pending")
        elif self.records:
            self.outputs.log(f"state.json is missing: rebuilding it from the journal's {len(self.records)} "
                             f"evaluations")
        if self.done and not self.final_pending():
            self.outputs.log("search already finished")
            return self.summary()
        budget = self.cfg.search.wall_clock_seconds
        self.clock = (time.monotonic(), self.elapsed)

        def over_budget() -> bool:
            left = self.seconds_left()
            return left is not None and left <= 0

        with make_executor(self.cfg.run) as executor, self.outputs:
            if prepare is not None:
                prepare()
                self.clock = (time.monotonic(), self.elapsed)  # a feature network trained the first time is not the search's time
            self.catch_up()
            speculate = self.cfg.run.train_ahead and executor.workers > 1
            self.stopped = None
            while not self.done:
                todo = [t for t in self.pending if t.id not in self.records]
                if not todo and over_budget() and not self.strategy.finished():
                    self.stopped = "budget"  # asked now, a trial would wait in state.json for a resume
                    break
                if not todo:
                    issued = self.next_id
                    todo = self.ask(executor.workers, [], speculate)
                    if not todo and self.next_id != issued:
                        continue  # all of them replayed from the journal: ask again
                if not todo:
                    if self.strategy.finished():
                        self.done = True
                        break
                    raise RuntimeError(f"internal error: strategy {self.strategy.name} proposes nothing "
                                       f"and nothing runs")
                if over_budget() or not self.run_trials(executor, todo, over_budget, speculate):
                    self.stopped = "budget"
                    break
            self.elapsed = self.elapsed_now()
            self.end_replay()
            self.flush_best()
            self.write_state()
            self.prune()
            if self.final_pending():
                self.final_training(executor)
        self.elapsed = self.elapsed_now()
        self.write_state()
        if not self.done:
            self.outputs.log(f"stopped at the wall-clock budget ({budget:.0f} s); best so far is saved in best/; "
                             f"to go on: gan-nas search --resume --run-dir {self.store.root} "
                             f"--set search.wall_clock_seconds=SECONDS")
        return self.summary()

    def elapsed_now(self) -> float:
        """The search's seconds so far: those of earlier sessions (state.json) and this one's."""
        started, before = self.clock
        return before + time.monotonic() - started

    def seconds_left(self) -> float | None:
        """What ``search.wall_clock_seconds`` has left, or None without a budget (or outside run())."""
        budget = self.cfg.search.wall_clock_seconds
        return budget - self.elapsed_now() if budget > 0 and self.clock is not None else None

    def read_back(self) -> dict[str, Any] | None:
        """Read the journal and state.json (if any) into this scheduler, checking every field; the
        state as read, or None. RunDirError naming the file, line and field if anything is damaged."""
        self.records.clear()
        for r in self.store.journal():
            self.records[r["id"]] = r
        self.check_records()
        state = self.store.read_state()
        if state is not None:
            self.load_state(state)
        return state

    def catch_up(self) -> None:
        """Tell the strategy the pending trials that the journal finished after state.json was written,
        in the journal's order (the order in which the strategy would have been told)."""
        pending = {t.id for t in self.pending}
        for r in list(self.records.values()):
            if r["id"] in pending:
                self.told(r)

    def run_trials(self, executor, trials: list[Trial], over_budget: Callable[[], bool], speculate: bool) -> bool:
        """Run ``trials``, asking for more whenever a worker is free; False if the budget ran out."""
        cfg_dict = self.cfg.to_dict()
        if executor.workers > 1:
            trials = self.longest_first(trials)
        issued = list(trials)
        backlog: list[Trial] = []

        def payload(t: Trial) -> dict[str, Any]:
            self.check_checkpoints(t)
            return {**t.payload(self.store.root), "config": cfg_dict, "reference": self.reference}

        def idle(running: list[tuple[int, float]]) -> dict[str, Any] | None:
            if over_budget():
                return None
            if not backlog:
                # a whole generation may come at once, here as well as above: longest first
                backlog.extend(self.longest_first(self.ask(1, [(issued[i], secs) for i, secs in running], speculate)))
            if not backlog:
                self.flush_best()  # the worker has nothing to do meanwhile
                return None
            t = backlog.pop(0)
            issued.append(t)
            return payload(t)

        for index, result in executor.map_unordered(evaluate_task, [payload(t) for t in trials], idle=idle):
            if result.get("error_type") in RUN_DIR_ERRORS:  # the run directory's fault: nothing to journal
                raise CheckpointError(result["error"].split(": ", 1)[-1])
            if result.get("status") == "failed" and interrupt.requested():
                interrupt.check()  # a trial cut short by the stop is redone on resume, not journaled as failed
            t = issued[index]
            record = t.record(result)
            self.store.append(record)
            self.records[t.id] = record
            self.outputs.trial(record)
            self.told(record)
            interrupt.check()
            if over_budget() and any(x.id not in self.records for x in issued + backlog):
                self.flush_best()
                return False
        self.flush_best()
        return True

    def longest_first(self, trials: list[Trial]) -> list[Trial]:
        """``trials`` by expected seconds, longest first (a stable sort: ties keep the strategy's order).
        A pool handed a batch this way ends it on short trials, not with one worker training a long one
        while the others wait at the generation's barrier or the end of the search."""
        median = self.cost.median_rate()
        return sorted(trials, key=lambda t: self.cost.of_trial(t, median), reverse=True)

    def told(self, r: Record) -> None:
        """After a trial's journal line: the strategy, the hall of fame, the outputs. The final training
        is the scheduler's own trial, not the strategy's: only the hall of fame hears of it."""
        milestone = self.strategy.tell(r) if r["kind"] != "final" else None
        self.update_hall_of_fame([r])
        if self.replaying:
            return
        self.outputs.progress(*self.strategy.progress())
        if len(self.records) == self.cfg.search.population:  # the initial population, of every strategy
            stop_if_all_failed_alike(list(self.records.values()))
        if milestone is not None:
            if (self.final or {}).get("finished"):
                self.final = None  # a search resumed after its final training trains its (new) best again
            best = self.records[self.hall_of_fame[0]] if self.hall_of_fame else None
            self.flush_best()
            self.outputs.milestone(milestone, best)
            self.write_state()
            self.prune()

    def check_checkpoints(self, t: Trial) -> None:
        """Raise CheckpointError, before it runs, if a checkpoint that trial ``t`` reads is missing."""
        for rel in [*t.parent_ckpt, *([t.resume_ckpt] if t.resume_ckpt else [])]:
            for name in CHECKPOINT_FILES:
                if not (self.store.root / rel / name).is_file():
                    raise CheckpointError(
                        f"{self.store.root / rel / name} is missing, and {t.id} ({t.kind}) needs it; restore it "
                        f"from a copy of the run and resume")

    def check_records(self) -> None:
        """Refuse a journal whose evaluated genomes do not fit this run's images, or that holds a trial
        ``ok`` without a FID (hand-edited lines): a survivor's would be trained on, as if the journal said
        so. The store has checked their structure (a baseline's journal may hold ``ok`` lines without a
        FID: its chunks between scorings; a search's trial is always scored)."""
        for r in self.records.values():
            if r.get("status") == "ok":
                if r.get("fitness") is None:
                    raise RunDirError(f"{self.store.journal_path}: {r['id']} is ok but has no fitness; a search's "
                                      f"trial is always scored: repair or delete that line and resume")
                try:
                    validate(GanGenome.from_dict(r["genome"]), self.shape)
                except GenomeError as e:
                    raise RunDirError(f"{self.store.journal_path}: {r['id']}'s genome does not fit this run "
                                      f"({e}); repair or delete that line and resume") from None

    # -- the best
    def update_hall_of_fame(self, done: list[Record]) -> None:
        """Merge finished trials into the hall of fame; when the best changes, best/ is due (flush_best)."""
        hof = [self.records[i] for i in self.hall_of_fame] + [r for r in done if math.isfinite(fitness_of(r))]
        hof = sorted({r["id"]: r for r in hof}.values(), key=fitness_of)[: self.cfg.search.hall_of_fame]
        old_best = self.hall_of_fame[0] if self.hall_of_fame else None
        self.hall_of_fame = [r["id"] for r in hof]
        if hof and hof[0]["id"] != old_best:
            self.best_due = True

    def final_pending(self) -> bool:
        """Whether the final training is configured and has not finished for the current best."""
        return (self.cfg.search.final_seconds > 0 and bool(self.hall_of_fame)
                and not (self.final or {}).get("finished"))

    def final_training(self, executor) -> None:
        """Train the best ``search.final_seconds`` longer from its checkpoint (one journaled trial).

        The trial is written to state.json before it runs, so a crash re-runs the
        same trial on resume; its seconds count in the search's compute, and it
        becomes the best only if it beats what is there. A search resumed with more
        budget that finishes more trials trains its (new) best again at the end.
        """
        if self.final is None:
            best = self.records[self.hall_of_fame[0]]
            cid = self.new_id()
            task = Trial(id=cid, generation=best["generation"], kind="final", parents=[best["id"]],
                         genome=best["genome"], steps=FINAL_STEPS,
                         seed=derived_seed(self.cfg.run.seed, "final", lineage_seed(best)),
                         resume_ckpt=f"candidates/{best['id']}", save_to=f"candidates/{cid}",
                         max_seconds=float(self.cfg.search.final_seconds))
            self.final = {"task": task.to_dict(), "finished": False}
            self.store.candidate_dir(task.id)
            self.write_state()
        task = Trial.from_dict(self.final["task"], "state.json: final.task")
        self.outputs.log(f"final training: {task.parents[0]} trains {task.max_seconds:.0f} s more as {task.id}")
        if task.id in self.records:  # journaled before a crash, or replayed
            r = self.records[task.id]
            if (r["kind"], r["parents"]) != ("final", task.parents):
                raise RunDirError(f"{self.store.journal_path}: {task.id} is not the final training of "
                                  f"{task.parents[0]} that state.json or its replay expects; restore state.json")
            self.update_hall_of_fame([r])
        else:
            self.run_trials(executor, [task], lambda: False, speculate=False)
        self.final["finished"] = True
        self.flush_best()
        self.write_state()

    def prune(self) -> None:
        """Delete weights that nothing alive can need (genome, meta.json and the journal line stay)."""
        keep = self.strategy.alive() | set(self.hall_of_fame)
        for t in self.pending:
            keep |= {t.id, *t.parents}
        if self.final is not None and not self.final.get("finished"):
            keep |= {self.final["task"]["id"], *self.final["task"]["parents"]}
        for d in (self.store.root / "candidates").glob("*"):
            if d.name not in keep and d.name in self.records:
                for f in PRUNED_FILES:
                    (d / f).unlink(missing_ok=True)

    def summary(self) -> dict[str, Any]:
        best = self.records[self.hall_of_fame[0]] if self.hall_of_fame else None
        return {
            "run_dir": str(self.store.root), "strategy": self.strategy.name,
            "generations": self.strategy.generations(), "done": self.done,
            "stopped": self.stopped, "evaluations": len(self.records),
            "best_id": best["id"] if best else None, "best_fid": fitness_of(best) if best else None,
            "best_params": best["params"] if best else None,
            "candidate_seconds": round(seconds_of(self.records.values()), 1), "wall_seconds": round(self.elapsed, 1),
        }


def stop_if_all_failed_alike(done: list[Record]) -> None:
    """Raise GanNasError when every trial of the first batch failed with one and the same error: that
    is the config's or the machine's fault (a batch larger than the data, too little memory), and every
    later trial would fail the same way."""
    errors = {r.get("error") for r in done}
    if done and all(r["status"] == "failed" for r in done) and len(errors) == 1 and None not in errors:
        raise GanNasError(f"every evaluation of generation 0 failed with the same error, so the search stops: "
                          f"{errors.pop()}")
