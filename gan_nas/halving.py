"""The ``halving`` strategy: asynchronous successive halving over training steps (ASHA).

Successive halving (Jamieson & Talwalkar 2016; Hyperband, Li et al. 2018)
trains many candidates briefly and gives the best fraction more steps, rung
after rung; ASHA (Li et al. 2020) makes it asynchronous, so that no worker waits
for a rung to fill. Rung ``k`` trains a candidate to ``halving.min_steps x
eta^k`` steps in all, up to ``halving.max_steps``. Whenever a worker is free::

    for each rung k, highest first (below the top):
        if a trial of rung k is among the best floor(n_k / eta) of the n_k finished there
        and was not promoted yet: promote it: it continues from its own checkpoint
        (weights and optimizer state) to rung k+1's steps          (kind "continue")
    else: a new candidate at rung 0, from the space's sampler or, with
        halving.sampler = "rl", from a REINFORCE policy rewarded by rung 0's FIDs

A trial's ``generation`` is its rung. Promotions are where the budget goes to
the winner: with ``search.final_seconds = 0`` the best candidate has already
trained the top rung's steps within the search. The budget is
``search.population + search.generations x search.offspring`` new candidates
(and their promotions), or the wall clock, whichever ends first.

With a wall clock (``search.wall_clock_seconds``), plain ASHA would spend it
all on new candidates and end with nothing at the top rung. So halving starts
a new candidate only while the time left would still take the leader (the
best trial of the highest rung reached) from there to the top rung after it;
once it would not, the search *closes*: no more new candidates, and every
finished trial may be promoted, highest rung and best first, so the leader
climbs to the top first and the runners-up use what time is left. No trial is
given more training seconds than the budget has left.

With ``halving.leader_share`` > 0, a share of the wall clock is the leader's
alone: the search closes early enough to leave it that share after the leader's
climb, and once closed only the leader's lineage trains, one trial at a time: the
leader at the close (here the best lineage of any rung: see :meth:`SuccessiveHalving.leader`)
climbs to the top rung, then continues past it (generation: one past the top rung, the top rung's
steps x (eta - 1) more each time, cut to the clock) until the clock runs out. A lineage is a trial and
the continuations of it; ``halving.leader_snapshot`` says which of its snapshots judges it and is
continued next: ``head``, its latest trial, or ``best``, its lowest FID: a GAN may get worse as it
trains on (it collapses), and then the lineage goes on from its best checkpoint again, with other
batches, rather than from the collapse. Each checkpoint is continued ``SNAPSHOT_TRIES`` times at most:
the lowest of several noisy FIDs is biased low, so a lucky early snapshot would otherwise draw the
lineage back again and again and it would never train past it (samples/strategies/NOTES.md); once
tried that often, the lineage goes on from its next best. A continuation that diverges is
tried again with another seed (from the same checkpoint, or with ``best`` from the next best once
that checkpoint has been tried ``SNAPSHOT_TRIES`` times); after ``LEADER_RETRIES`` failures in a row
the lineage stops. At
a wall-clock budget, what wins is one reasonable candidate trained long
(samples/strategies/NOTES.md); the top rung is sized for the leader's climb,
not for the whole of what the clock can give it. On a pool the other workers
are idle meanwhile: their seconds are not the search's compute, so ``compare``
does not give them to the DCGAN either.

With ``halving.min_candidates``, the clock may close the search only once that many
new candidates have started: a leader is then picked from at least that many,
and its climb (and share) get what the clock has left.

With ``halving.seed_baseline`` the first new candidate is the DCGAN genome, as
in evolution's initial population.

A candidate whose training is slow is scored early, as every strategy's: each
trial may train ``training.max_seconds`` per ``training.steps`` steps, pro rata.

With ``halving.seconds_per_step`` > 0 the rungs are budgets of seconds instead:
a trial trains its rung's steps x that many seconds, however many steps it
takes, so that rungs rank genomes at equal seconds, as ``compare`` judges the
winner (with rungs of steps, a genome six times slower per step gets six times
the seconds). Trials then stop on the clock, not at a step count, so such a
search is not repeatable bit for bit, and one resumed after a kill trains its
redone trials for as many seconds, not as many steps.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace
from typing import Any

from gan_nas import space as space_mod
from gan_nas.baseline import dcgan
from gan_nas.config import SECONDS_RUNG_STEP_CAP
from gan_nas.rl import PolicySampler
from gan_nas.selection import fitness_of
from gan_nas.strategy import AskContext, Milestone, Record, Strategy, need, need_ids, state_error
from gan_nas.trial import Proposal, derived_seed, lineage_seed

LEADER_RETRIES = 2  # failed continuations in a row after which the leader's lineage stops
SNAPSHOT_TRIES = 2  # leader_snapshot = "best": continuations of one checkpoint, then the lineage's next best


class SuccessiveHalving(Strategy):
    """See the module docstring. State: each rung's trial ids, the trials past the top rung, the
    leader's lineage and the leader it started from, the ids already promoted, the number of new
    candidates issued and of trials told, whether the search has closed, the sampler's policy, the
    random generator."""

    name = "halving"

    def __init__(self, cfg, space, shape, history) -> None:
        super().__init__(cfg, space, shape, history)
        h = cfg.halving
        self.steps = h.rung_steps()
        self.past_top = h.steps_past_top()
        self.eta = h.eta
        self.rungs: list[list[str]] = [[] for _ in self.steps]
        self.beyond: list[str] = []  # trials past the top rung (leader_share), in order
        self.lineage: list[str] = []  # what trained once closed with a leader's share, in order
        self.first_leader: str | None = None  # the leader whose lineage that is
        self.promoted: set[str] = set()
        self.new = 0  # new candidates issued
        self.told = 0
        self.closed = False  # the wall clock has no room for new candidates: promotions only
        self.sampler = PolicySampler(cfg, space, shape) if h.sampler == "rl" else None
        # seconds kept for the leader alone once the search closes (halving.leader_share of the clock)
        self.leader_reserve = h.leader_share * cfg.search.wall_clock_seconds

    # -- what to train next
    def finished_in(self, k: int) -> list[Record]:
        """Rung ``k``'s finished trials, best first."""
        return sorted((self.history[i] for i in self.rungs[k] if i in self.history), key=fitness_of)

    def window(self, k: int) -> list[Record]:
        """Rung ``k``'s finished trials ranked within floor(total / eta), best first, total being the new
        candidates the budget allows: the most that rung k can ever promote, and the trials whose
        checkpoints :meth:`alive` keeps for it."""
        return self.finished_in(k)[: self.total // self.eta]

    def promotable(self, k: int) -> list[Record]:
        """Rung ``k``'s finished trials among its best floor(n / eta) (once closed: all of its
        :meth:`window`, as nothing new will arrive to outrank them), not promoted yet, best first."""
        done = self.finished_in(k)
        best = self.window(k) if self.closed else done[: len(done) // self.eta]
        return [r for r in best if r["id"] not in self.promoted and math.isfinite(fitness_of(r))]

    def budget(self, steps: int) -> tuple[int, float | None]:
        """What a trial given ``steps`` of rung steps trains: (steps, training seconds at most). On rungs of
        seconds (halving.seconds_per_step) the seconds are the budget and the steps only a cap; on rungs
        of steps, a slow trial is cut at training.max_seconds per training.steps, pro rata."""
        h, t = self.cfg.halving, self.cfg.training
        if h.seconds_per_step > 0:
            return steps * SECONDS_RUNG_STEP_CAP, steps * h.seconds_per_step
        return steps, (t.max_seconds * steps / t.steps if t.max_seconds > 0 else None)

    def promote(self, r: Record, k: int, new_id: str = "") -> Proposal:
        """Trial ``r`` of rung ``k`` continued from its checkpoint to rung k+1's steps."""
        return self.continuation(r, self.steps[k + 1] - self.steps[k], k + 1, new_id,
                                 derived_seed(self.cfg.run.seed, "promote", lineage_seed(r), k + 1))

    def continuation(self, r: Record, steps: int, generation: int, new_id: str, seed: int) -> Proposal:
        """Trial ``r`` continued from its checkpoint for ``steps`` more, as a trial of ``generation``."""
        steps, max_seconds = self.budget(steps)
        return Proposal(id=new_id, genome=r["genome"], kind="continue", parents=(r["id"],), steps=steps,
                        seed=seed, generation=generation, resume=r["id"], max_seconds=max_seconds)

    def next_promotion(self) -> tuple[Record, int] | None:
        """The trial to promote next and its rung: the highest rung's first, best first; or None."""
        for k in reversed(range(len(self.steps) - 1)):
            ready = self.promotable(k)
            if ready:
                return ready[0], k
        return None

    def leader(self) -> tuple[Record, int] | None:
        """The trial the search keeps time to climb to the top rung, and its rung; or None.

        Without a leader's share: the best finished trial of the highest rung that has one; once closed,
        promotions go highest rung first, so that one climbs first. With a share, the leader at the close
        is the one lineage that trains on alone, so it is the best lineage of any rung: under asynchronous
        promotion a higher rung fills with whatever finished first, and a candidate that finished later
        can already beat it with a third of the training (MNIST, rungs of seconds: 49.6 at rung 0 against
        121.2 at rung 1, samples/strategies/NOTES.md). A lineage is judged by its head (a finished trial of
        a rung, with a finite FID, that no finished continuation has taken further), or with
        ``leader_snapshot = "best"`` by its best trial, which makes the leader the best finished trial of
        any rung (MNIST seed 2, samples/strategies/NOTES.md: a rung-0 54.5 whose continuation scored
        155.4 lost the lead to a lineage that never went below 68.1). Of equal FIDs, the higher rung's.
        Only trials within their rung's :meth:`window` may lead: those are the checkpoints kept for it."""
        if self.leader_reserve <= 0:
            for k in reversed(range(len(self.steps))):
                done = [r for r in self.finished_in(k) if math.isfinite(fitness_of(r))]
                if done:
                    return done[0], k
            return None
        return min(self.heads(), key=lambda rk: (fitness_of(rk[0]), -rk[1]), default=None)

    def heads(self) -> list[tuple[Record, int]]:
        """With a leader's share: the trials that may lead, and their rungs: within their rung's window,
        with a finite FID and, judged by the head, not taken further by a finished continuation."""
        mine = [(r, k) for k in range(len(self.rungs)) for r in self.window(k)]
        taken_further = set() if self.cfg.halving.leader_snapshot == "best" else {
            r["parents"][0] for i in (j for rung in self.rungs for j in rung) if (r := self.history.get(i))
            and r["kind"] == "continue" and r["parents"] and math.isfinite(fitness_of(r))}
        return [(r, k) for r, k in mine if math.isfinite(fitness_of(r)) and r["id"] not in taken_further]

    def room(self, ctx: AskContext, seconds: float) -> bool:
        """Whether ``seconds`` of other work still leave the wall clock time to take the leader from
        its rung to the top (at the scheduler's expected seconds). Without a clock, or before a trial
        has finished (no leader, no estimate of seconds): room."""
        lead = self.leader()
        if ctx.seconds_left is None or lead is None:
            return True
        r, k = lead
        reserve = sum(ctx.expected_seconds(self.promote(r, j)) for j in range(k, len(self.steps) - 1))
        return seconds + reserve + self.leader_reserve <= ctx.seconds_left

    def next_proposal(self, ctx: AskContext) -> Proposal | None:
        """A promotion if one is due, else a new candidate; on a wall clock, first closing the search
        when that work would leave no time for the leader's climb (the leader's own climb is that time),
        once ``halving.min_candidates`` new candidates have started."""
        ready = self.next_promotion()
        lead = self.leader()
        explored = self.new >= self.cfg.halving.min_candidates
        if not self.closed and explored and ctx.seconds_left is not None and (ready or self.new < self.total) and not (
                ready and lead and ready[0]["id"] == lead[0]["id"]):
            if ready:
                seconds = ctx.expected_seconds(self.promote(*ready))
            elif lead:  # a new candidate: as long as the leader's genome would take from scratch
                steps, max_seconds = self.budget(self.steps[0])
                seconds = ctx.expected_seconds(Proposal(
                    id="", genome=lead[0]["genome"], kind="random", parents=(), steps=steps, seed=0,
                    generation=0, max_seconds=max_seconds))
            else:
                seconds = 0.0  # nothing finished: no estimate (room() has no leader either)
            if not self.room(ctx, seconds):
                self.closed = True
                ready = self.next_promotion()  # closed: every finished trial may be promoted
        if self.closed and self.leader_reserve > 0:
            return self.leader_next(ctx)
        if ready:
            self.promoted.add(ready[0]["id"])
            return self.within_clock(self.promote(*ready, ctx.new_id()), ctx)
        p = self.new_candidate(ctx)
        return None if p is None else self.within_clock(p, ctx)  # min_candidates may start one the clock cuts

    def within_clock(self, p: Proposal, ctx: AskContext) -> Proposal:
        """``p`` with no more training seconds than the wall clock has left (after building and scoring)."""
        if ctx.seconds_left is None:
            return p
        overhead = ctx.expected_seconds(replace(p, steps=0))
        return replace(p, max_seconds=max(1.0, min(p.max_seconds or math.inf, ctx.seconds_left - overhead)))

    def leader_next(self, ctx: AskContext) -> Proposal | None:
        """Closed with a leader's share: the next trial of the leader's lineage (to the next rung, or past
        the top), or None while one trains, while the leader's own promotion from before the close
        trains, or when there is no leader or its lineage has stopped."""
        if self.first_leader is None:
            lead = self.leader()
            if lead is None:
                return None
            r = lead[0]
            if r["id"] in self.promoted and not any(c["parents"] == [r["id"]] for c in self.history.values()):
                return None  # a promotion of it issued before the close is still training: that will lead
            self.first_leader = r["id"]
        base = self.lineage_base()
        if base is None:
            return None
        k = base["generation"]
        self.promoted.add(base["id"])
        # a seed of its own for each trial of the lineage: a retry after a failure draws other batches
        seed = derived_seed(self.cfg.run.seed, "leader", lineage_seed(base), len(self.lineage))
        if k < len(self.steps) - 1:  # up to the next rung
            p = self.continuation(base, self.steps[k + 1] - self.steps[k], k + 1, ctx.new_id(), seed)
        else:  # past the top rung
            p = self.continuation(base, self.past_top, len(self.steps), ctx.new_id(), seed)
        self.lineage.append(p.id)
        return self.within_clock(p, ctx)

    def lineage_base(self) -> Record | None:
        """The trial the leader's lineage continues next: its latest finite trial, else the leader it
        started from (with ``leader_snapshot = "best"``: the first of :meth:`open_snapshots`, if any);
        None while one of its trials trains, before it started, or after LEADER_RETRIES failures in a row."""
        if self.first_leader is None or any(i not in self.history for i in self.lineage):
            return None
        ok = self.lineage_ok()
        failed_in_a_row = len(self.lineage) - (self.lineage.index(ok[-1]) + 1 if ok else 0)
        if failed_in_a_row >= LEADER_RETRIES:
            return None
        if self.cfg.halving.leader_snapshot == "best" and (open_ := self.open_snapshots()):
            return open_[0]
        return self.history[ok[-1] if ok else self.first_leader]

    def lineage_ok(self) -> list[str]:
        """The leader's lineage's finished trials with a finite FID, in order."""
        return [i for i in self.lineage if i in self.history and math.isfinite(fitness_of(self.history[i]))]

    def open_snapshots(self) -> list[Record]:
        """The leader it started from and its lineage's finite trials that have been continued fewer than
        SNAPSHOT_TRIES times (a trial that trains now not counted), best first, the latest of equal FIDs
        first."""
        tries = Counter(r["parents"][0] for r in self.history.values() if r["kind"] == "continue" and r["parents"])
        latest_first = [*reversed(self.lineage_ok()), self.first_leader]
        return sorted((self.history[i] for i in latest_first if tries[i] < SNAPSHOT_TRIES), key=fitness_of)

    def new_candidate(self, ctx: AskContext) -> Proposal | None:
        if self.new >= self.total or self.closed:
            return None
        cid, (steps, max_seconds) = ctx.new_id(), self.budget(self.steps[0])
        if self.new == 0 and self.cfg.halving.seed_baseline:
            genome, kind = dcgan(self.shape).to_dict(), "initial"
        elif self.sampler is not None:
            genome, kind = self.sampler.genome(cid, self.rng), "policy"
        else:
            genome, kind = space_mod.sample(self.space, self.shape, self.rng).to_dict(), "random"
        p = Proposal(id=cid, genome=genome, kind=kind, parents=(), steps=steps,
                     seed=derived_seed(self.cfg.run.seed, "halving", self.new), generation=0,
                     max_seconds=max_seconds)
        self.new += 1
        return p

    def ask(self, ctx: AskContext) -> list[Proposal]:
        proposals: list[Proposal] = []
        while len(proposals) < max(ctx.free, 0):
            p = self.next_proposal(ctx)
            if p is None:
                break
            (self.beyond if p.generation == len(self.steps) else self.rungs[p.generation]).append(p.id)
            proposals.append(p)
        return proposals

    # -- results
    def tell(self, record: Record) -> Milestone | None:
        if self.sampler is not None and record["generation"] == 0:
            self.sampler.tell(record)
        self.told += 1
        p = self.cfg.search.population
        if self.told % p == 0:
            mine = {i for rung in [*self.rungs, self.beyond] for i in rung}
            recent = [r for r in self.history.values() if r["id"] in mine][-p:]  # the journal's order
            return Milestone((self.told - 1) // p, sorted(recent, key=fitness_of))
        return None

    def pending(self) -> list[str]:
        return [i for rung in [*self.rungs, self.beyond] for i in rung if i not in self.history]

    def finished(self) -> bool:
        if self.closed and self.leader_reserve > 0:  # the leader trains until the clock ends the search
            if self.pending():
                return False
            return self.leader() is None if self.first_leader is None else self.lineage_base() is None
        return ((self.new >= self.total or self.closed) and not self.pending()
                and not any(self.promotable(k) for k in range(len(self.steps) - 1)))

    def alive(self) -> set[str]:
        """Pending trials, and every finished one that a promotion may still continue: in each rung
        below the top, those ranked within floor(total / eta), total being the new candidates the
        budget allows. (Not floor(rung k's size / eta): asynchronous promotion may promote nearly
        every trial of a rung when results improve over time, so a rung can hold up to ``total``.) With a
        leader's share, also every trial that may still lead (:meth:`heads`); once the leader's lineage
        has started, only what that lineage may still continue from."""
        if self.finished():
            return set()
        keep = set(self.pending())
        if self.leader_reserve > 0:
            if self.first_leader is None:
                # judged by its head, any head may yet lead (a better one's continuation may do worse);
                # judged by its best, only a better trial to come can take the lead from the leader
                if self.cfg.halving.leader_snapshot == "best":
                    lead = self.leader()
                    keep |= {lead[0]["id"]} if lead else set()
                else:
                    keep |= {r["id"] for r, _ in self.heads()}
            base = self.lineage_base()
            keep |= {base["id"]} if base else set()  # what may still go on, past the top rung
            if self.first_leader is not None and self.cfg.halving.leader_snapshot == "best":
                # what the lineage may go on from, now or once the trial training now finishes: any of
                # its open snapshots (continuations that do worse send it back to the next best), or the head
                ok = self.lineage_ok()
                keep |= {r["id"] for r in self.open_snapshots()} | set(ok[-1:])
            if self.closed and self.first_leader is not None:  # and nothing else will
                return keep
        for k in range(len(self.steps) - 1):
            keep |= {r["id"] for r in self.window(k) if r["id"] not in self.promoted}
        return keep

    def generations(self) -> int:
        return self.told // self.cfg.search.population

    def progress(self) -> tuple[str, int, int]:
        top = max((k for k, rung in enumerate(self.rungs) if any(i in self.history for i in rung)), default=0)
        return (f"new candidates (rung {top} of {len(self.steps) - 1} reached)",
                sum(i in self.history for i in self.rungs[0]), self.total)

    # -- state
    def state_dict(self) -> dict[str, Any]:
        state = {"rung_steps": list(self.steps), "rungs": [list(r) for r in self.rungs], "beyond": list(self.beyond),
                 "lineage": list(self.lineage), "first_leader": self.first_leader,
                 "promoted": sorted(self.promoted), "new": self.new, "told": self.told, "closed": self.closed,
                 "rng": self._rng_state()}
        if self.sampler is not None:
            state["sampler"] = self.sampler.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any], where: str, pending: set[str] = frozenset()) -> None:
        if need(state, "rung_steps", list, where) != self.steps:
            raise state_error(where, "rung_steps", f"is {state['rung_steps']!r}, but the run's config gives "
                                                   f"{self.steps!r}")
        rungs = need(state, "rungs", list, where)
        if len(rungs) != len(self.steps):
            raise state_error(where, "rungs", f"must hold {len(self.steps)} rungs")
        self.rungs = [need_ids({"rung": r}, "rung", self.history, f"{where}: rungs[{k}]", pending)
                      for k, r in enumerate(rungs)]
        # absent in runs before halving.leader_share
        self.beyond = need_ids({"beyond": state.get("beyond", [])}, "beyond", self.history, where, pending)
        self.lineage = need_ids({"lineage": state.get("lineage", [])}, "lineage", self.history, where, pending)
        self.first_leader = state.get("first_leader")
        if self.first_leader is not None and self.first_leader not in self.history:
            raise state_error(where, "first_leader", "must name a trial the journal holds, or be null")
        self.promoted = set(need_ids(state, "promoted", self.history, where))
        self.new = need(state, "new", int, where)
        if not 0 <= self.new <= self.total:
            raise state_error(where, "new", f"must be between 0 and {self.total}")
        self.told = need(state, "told", int, where)
        self.closed = state.get("closed", False)  # absent in runs before the wall clock could close a search
        if not isinstance(self.closed, bool):
            raise state_error(where, "closed", "must be true or false")
        told = sum(i in self.history and i not in pending for rung in [*self.rungs, self.beyond] for i in rung)
        if self.told != told:  # (pending ones the journal holds are told on resume)
            raise state_error(where, "told", f"is {self.told}, but the journal holds {told} of its trials")
        if self.sampler is not None:
            self.sampler.load_state_dict(need(state, "sampler", dict, where), f"{where}: sampler")
        self._load_rng(state.get("rng"), where)
