"""The ``evolution`` strategy: a generational genetic algorithm, or regularized ("aging") evolution.

Generational, it reads like DEAP's ``eaMuPlusLambda``::

    population = evaluate(initial)                    # random genomes (+ the DCGAN baseline)
    for each generation:
        parents  = tournament(population)
        children = repair(mutate(crossover(parents)))  # trained from the parents' weights
        survivors keep training `training.survivor_steps` (optional)
        population = select(population + children)    # elitist mu+lambda, or NSGA-II

A generation is a barrier: ``ask`` returns nothing while one of its trials is
unfinished, except, where the scheduler allows it (``ctx.speculate``: a pool
with ``run.train_ahead``), the next generation's continuation of a survivor
that no unfinished trial can displace (:meth:`Evolution.sure_survivors`), so
that a worker the generation leaves idle trains ahead. Every trial's seed
derives from the run seed, its kind, generation and position (a continuation:
its survivor's seed), never from its id, so the result is the same whichever
worker ran what first.

With ``evolution.aging = true`` it is regularized evolution (Real et al. 2019,
:class:`AgingEvolution`): no barrier at all.

Neither touches files, executors or TensorBoard (see :mod:`gan_nas.strategy`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from gan_nas import space as space_mod
from gan_nas.errors import RunDirError
from gan_nas.genome import GanGenome
from gan_nas.selection import SECOND_OBJECTIVES, fitness_of, select_survivors, tournament
from gan_nas.strategy import AskContext, Milestone, Record, Strategy, need, need_ids, state_error
from gan_nas.trial import Proposal, derived_seed, lineage_seed


class Evolution(Strategy):
    """Generational evolution: mu+lambda (or NSGA-II) survivors, tournament parents, continuations.

    State: the open ``generation``, its ``members`` (trial ids, once ``formed``), the
    ``population`` that survived the generation before, trials of the next generation issued
    ahead (``ahead``), the random generator, and ``done``.
    """

    name = "evolution"
    child_kind = "child"

    def __init__(self, cfg, space, shape, history) -> None:
        super().__init__(cfg, space, shape, history)
        self.generation = 0
        self.formed = False
        self.members: list[str] = []
        self.population: list[str] = []
        self.ahead: list[str] = []  # continuations of the next generation, issued before it formed
        self.continues: dict[str, str] = {}  # continuation id -> its survivor, for the open and next generation
        self.done = False

    # -- what a generation holds
    def initial_genomes(self) -> list[GanGenome]:
        from gan_nas.baseline import dcgan

        genomes = [dcgan(self.shape)] if self.cfg.evolution.seed_baseline else []
        while len(genomes) < self.cfg.search.population:
            genomes.append(space_mod.sample(self.space, self.shape, self.rng))
        return genomes

    def child(self, pop: list[Record], key: Callable[[Record], Any]) -> tuple[GanGenome, list[str]]:
        """One child of tournament winners: crossover (sometimes), mutation (nearly always), repair."""
        e = self.cfg.evolution
        a = tournament(pop, 1, e.tournament, self.rng, key)[0]
        child, parents = GanGenome.from_dict(a["genome"]), [a["id"]]
        if self.rng.random() < e.crossover_rate and len(pop) > 1:
            b = tournament(pop, 1, e.tournament, self.rng, key)[0]
            child = space_mod.crossover(child, GanGenome.from_dict(b["genome"]), self.rng)[0]
            parents.append(b["id"])
        if self.rng.random() < e.mutation_rate or child == GanGenome.from_dict(a["genome"]):
            child = space_mod.mutate(child, self.space, self.shape, self.rng)
        return space_mod.repair(child, self.space, self.shape), parents

    def rank_key(self, pop: list[Record]) -> Callable[[Record], Any]:
        if self.cfg.search.objective not in SECOND_OBJECTIVES:
            return fitness_of
        order = {c["id"]: i for i, c in enumerate(select_survivors(pop, len(pop), self.cfg.search.objective))}
        return lambda c: order[c["id"]]

    def continuation(self, survivor: Record, generation: int, new_id: Callable[[], str]) -> Proposal:
        """Survivor's ``training.survivor_steps`` more steps from its own checkpoint, in ``generation``."""
        return Proposal(id=new_id(), genome=survivor["genome"], kind="continue", parents=(survivor["id"],),
                        steps=self.cfg.training.survivor_steps, generation=generation,
                        seed=derived_seed(self.cfg.run.seed, "continue", lineage_seed(survivor), generation),
                        resume=survivor["id"])

    def form(self, ctx: AskContext) -> list[Proposal]:
        """The open generation's proposals: the initial population, or children and continuations."""
        g, steps, run_seed = self.generation, self.cfg.training.steps, self.cfg.run.seed
        if g == 0:
            return [Proposal(id=ctx.new_id(), genome=genome.to_dict(), kind="initial", parents=(), steps=steps,
                             seed=derived_seed(run_seed, "initial", 0, k), generation=0)
                    for k, genome in enumerate(self.initial_genomes())]
        pop = [self.history[i] for i in self.population]
        key = self.rank_key(pop)
        proposals = []
        for k in range(self.cfg.search.offspring):
            genome, parents = self.child(pop, key)
            proposals.append(Proposal(id=ctx.new_id(), genome=genome.to_dict(), kind=self.child_kind,
                                      parents=tuple(parents), steps=steps, generation=g,
                                      seed=derived_seed(run_seed, self.child_kind, g, k)))
        if self.cfg.training.survivor_steps > 0:
            continued = {self.continues[i] for i in self.ahead}  # trained ahead: issued already
            proposals += [self.continuation(m, g, ctx.new_id) for m in pop
                          if m.get("status") == "ok" and m["id"] not in continued]
        return proposals

    # -- the interface
    def ask(self, ctx: AskContext) -> list[Proposal]:
        if self.done:
            return []
        if not self.formed:
            proposals = self.form(ctx)
            self.members = [p.id for p in proposals] + self.ahead
            self.ahead = []
            self.formed = True
            self.note(proposals)
            return proposals
        if ctx.speculate:
            p = self.ahead_continuation(ctx)
            if p is not None:
                self.ahead.append(p.id)
                self.note([p])
                return [p]
        return []

    def note(self, proposals: list[Proposal]) -> None:
        """Remember which survivor each issued continuation continues, until its generation closes."""
        self.continues.update({p.id: p.parents[0] for p in proposals if p.kind == "continue"})

    def tell(self, record: Record) -> Milestone | None:
        if not self.formed or any(m not in self.history for m in self.members):
            return None  # the generation is still open (or a trial issued ahead finished early)
        survivors = select_survivors(self.selection_pool(), self.cfg.search.population,
                                     self.cfg.search.objective, self.cfg.search.diversity_weight)
        self.population = [r["id"] for r in survivors]
        milestone = Milestone(self.generation, survivors)
        self.continues = {i: s for i, s in self.continues.items() if i in self.ahead}
        if self.generation >= self.cfg.search.generations:
            self.done = True
        else:
            self.generation += 1
            self.formed, self.members = False, []
        return milestone

    def selection_pool(self) -> list[Record]:
        """What the open generation's survivors are chosen from: its finished trials and the
        population, where a survivor whose continuation finished finite is replaced by it (and,
        while that continuation is unfinished, left out: see :meth:`sure_survivors`)."""
        members = {i: self.history[i] for i in self.population}
        for i in self.members:
            r = self.history.get(i)
            if i in self.continues and (r is None or r["status"] == "ok"):
                members.pop(self.continues[i], None)
        done = [self.history[i] for i in self.members if i in self.history]
        return list(members.values()) + [r for r in done if not (r["kind"] == "continue" and r["status"] != "ok")]

    def finished(self) -> bool:
        return self.done

    def alive(self) -> set[str]:
        return set(self.population) | set(self.members) | set(self.ahead)

    def generations(self) -> int:
        return self.generation

    def progress(self) -> tuple[str, int, int]:
        return (f"generation {self.generation}", sum(m in self.history for m in self.members), len(self.members))

    # -- training ahead of the barrier
    def sure_survivors(self) -> list[Record]:
        """The finished candidates that survive the open generation whatever its unfinished trials score.

        Only for elitist selection by FID (``objective = "fid"``, no diversity term),
        where survival is a rank: a candidate is sure when fewer than ``population``
        others can rank ahead of it, counting those with an FID as good or better and,
        pessimistically, every unfinished trial (a child can score anything; a
        continuation takes its survivor's place with any score).
        """
        s = self.cfg.search
        if s.objective != "fid" or s.diversity_weight > 0 or not self.formed:
            return []
        unfinished = sum(m not in self.history for m in self.members)
        ok = [r for r in self.selection_pool() if math.isfinite(fitness_of(r))]
        return [r for r in ok
                if sum(fitness_of(o) <= fitness_of(r) for o in ok if o is not r) + unfinished < s.population]

    def ahead_continuation(self, ctx: AskContext) -> Proposal | None:
        """A continuation of the next generation to train on an idle worker, or None.

        Among sure survivors of a generation that has a next one, the longest
        continuation expected to end before the trials still running do: one that
        outlasted them would keep the next generation waiting, and estimates err
        both ways.
        """
        if self.cfg.training.survivor_steps <= 0 or self.generation >= self.cfg.search.generations:
            return None
        started = {self.continues[i] for i in self.ahead}
        best = None
        for m in self.sure_survivors():
            if m["id"] in started:
                continue
            secs = ctx.expected_seconds(self.continuation(m, self.generation + 1, lambda: ""))
            if secs <= ctx.wait_seconds and (best is None or secs > best[0]):
                best = (secs, m)
        return None if best is None else self.continuation(best[1], self.generation + 1, ctx.new_id)

    # -- state
    @staticmethod
    def _file_of(where: str) -> str:
        return where.split(": ", 1)[0]  # the file, without the field path

    def state_dict(self) -> dict[str, Any]:
        return {"generation": self.generation, "formed": self.formed, "members": list(self.members),
                "population": list(self.population), "ahead": list(self.ahead), "continues": dict(self.continues),
                "done": self.done, "rng": self._rng_state()}

    def load_state_dict(self, state: dict[str, Any], where: str, pending: set[str] = frozenset()) -> None:
        self.generation = need(state, "generation", int, where)
        if not 0 <= self.generation <= 2**53:
            raise state_error(where, "generation", "must be between 0 and 2**53")
        # Generations follow one another: every one but the open one has journaled trials, so a generation
        # beyond the one after the journal's last skips generations (state.json raised by hand).
        journaled = max((r["generation"] for r in self.history.values() if r["kind"] != "final"), default=-1)
        if self.generation > journaled + 1:
            raise state_error(where, "generation", f"is {self.generation}, but the journal ends in generation "
                                                   f"{journaled}, so it can be at most {journaled + 1}")
        if journaled > self.generation + 1:  # at most the next generation's continuations, trained ahead
            raise RunDirError(f"{self._file_of(where)}: a journal line is of generation {journaled}, but state.json "
                              f"is in generation {self.generation}; the journal or state.json was edited: repair "
                              f"the line, or delete state.json and resume to rebuild it from the journal")
        self.formed = need(state, "formed", bool, where)
        self.done = need(state, "done", bool, where)
        self.population = need_ids(state, "population", self.history, where)
        continues = need(state, "continues", dict, where)
        if not all(isinstance(v, str) for v in continues.values()):
            raise state_error(where, "continues", "must map trial ids to survivor ids")
        self.continues = dict(continues)
        self.members = need_ids(state, "members", self.history, where, pending)
        self.ahead = need_ids(state, "ahead", self.history, where, pending)
        self._load_rng(state.get("rng"), where)


class AgingEvolution(Evolution):
    """Regularized evolution (Real et al. 2019): asynchronous, no generations to wait for.

    The population is the ``search.population`` trials finished last. A free worker gets a
    child of the best of ``evolution.aging_sample`` members drawn at random (crossover with a
    second such parent at ``crossover_rate``, then mutation), trained from its parent's weights;
    when it finishes it joins the population and the oldest member dies, however good. The first
    ``population`` trials are the initial ones (the DCGAN among them, with ``seed_baseline``); the
    budget is ``population + generations x offspring`` trials. ``survivor_steps`` does not apply:
    no member outlives its age to be trained further.
    """

    name = "aging"

    def __init__(self, cfg, space, shape, history) -> None:
        super().__init__(cfg, space, shape, history)
        self.issued: list[str] = []
        self.told = 0
        self._initial: list[dict[str, Any]] | None = None

    def ask(self, ctx: AskContext) -> list[Proposal]:
        s, steps, run_seed = self.cfg.search, self.cfg.training.steps, self.cfg.run.seed
        proposals = []
        while len(proposals) < max(ctx.free, 0) and len(self.issued) < self.total:
            k = len(self.issued)
            if k < s.population:
                if self._initial is None:
                    self._initial = [g.to_dict() for g in self.initial_genomes()]
                p = Proposal(id=ctx.new_id(), genome=self._initial[k], kind="initial", parents=(), steps=steps,
                             seed=derived_seed(run_seed, "initial", 0, k), generation=0)
            else:
                pop = [self.history[i] for i in self.population]
                if len(pop) < min(2, s.population):
                    break  # too few have finished to choose a parent from: wait for one
                sample = [pop[i] for i in sorted(self.rng.choice(len(pop), min(self.cfg.evolution.aging_sample,
                                                                                len(pop)), replace=False))]
                genome, parents = self.child(sample, fitness_of)
                p = Proposal(id=ctx.new_id(), genome=genome.to_dict(), kind="child", parents=tuple(parents),
                             steps=steps, seed=derived_seed(run_seed, "aging", k), generation=k // s.population)
            self.issued.append(p.id)
            proposals.append(p)
        return proposals

    def child(self, pop: list[Record], key: Callable[[Record], Any]) -> tuple[GanGenome, list[str]]:
        # the tournament is the sample itself: its best is the parent
        e = self.cfg.evolution
        a = min(pop, key=key)
        child, parents = GanGenome.from_dict(a["genome"]), [a["id"]]
        others = [r for r in pop if r is not a]
        if others and self.rng.random() < e.crossover_rate:
            b = min(others, key=key)
            child = space_mod.crossover(child, GanGenome.from_dict(b["genome"]), self.rng)[0]
            parents.append(b["id"])
        if self.rng.random() < e.mutation_rate or child == GanGenome.from_dict(a["genome"]):
            child = space_mod.mutate(child, self.space, self.shape, self.rng)
        return space_mod.repair(child, self.space, self.shape), parents

    def tell(self, record: Record) -> Milestone | None:
        self.population.append(record["id"])
        if len(self.population) > self.cfg.search.population:
            self.population.pop(0)  # the oldest dies
        self.told += 1
        if self.told % self.cfg.search.population == 0 or self.told == self.total:
            ranked = sorted((self.history[i] for i in self.population), key=fitness_of)
            return Milestone((self.told - 1) // self.cfg.search.population, ranked)
        return None

    def finished(self) -> bool:
        return self.told >= self.total

    def alive(self) -> set[str]:
        return set(self.population) | {i for i in self.issued if i not in self.history}

    def generations(self) -> int:
        return self.told // self.cfg.search.population

    def progress(self) -> tuple[str, int, int]:
        return ("trials", self.told, self.total)

    def state_dict(self) -> dict[str, Any]:
        return {"population": list(self.population), "issued": list(self.issued), "told": self.told,
                "initial": self._initial, "rng": self._rng_state()}

    def load_state_dict(self, state: dict[str, Any], where: str, pending: set[str] = frozenset()) -> None:
        self.issued = [i for i in need(state, "issued", list, where) if isinstance(i, str)]
        self.population = need_ids(state, "population", self.history, where)
        self.told = need(state, "told", int, where)
        if not 0 <= self.told <= len(self.issued):
            raise state_error(where, "told", "must be between 0 and the number of trials issued")
        initial = state.get("initial")
        if initial is not None and not (isinstance(initial, list) and all(isinstance(g, dict) for g in initial)):
            raise state_error(where, "initial", "must be a list of genomes")
        self._initial = initial
        self._load_rng(state.get("rng"), where)
