"""The strategies alone, on synthetic results (no GAN trains): ask/tell, barriers, aging, exact state."""

from __future__ import annotations

import json
import math

import pytest

from gan_nas import config
from gan_nas.baseline import dcgan
from gan_nas.evolution import AgingEvolution, Evolution
from gan_nas.genome import GanGenome
from gan_nas.random_search import RandomSearch
from gan_nas.space import SearchSpace
from gan_nas.strategy import AskContext

SHAPE = (28, 28, 1)


def make(cls, *sets):
    cfg = config.override(config.Config(), ["search.population=3", "search.offspring=2", "search.generations=2",
                                             "training.survivor_steps=5", "space.max_filters=32", *sets])
    history: dict = {}
    return cls(cfg, SearchSpace.from_config(cfg.space), SHAPE, history), history


class Ids:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"c{self.n - 1:04d}"


def finish(history, p, fid: float | None = None) -> dict:
    """A synthetic journal line for proposal ``p``: FID from its genome's parameter budget, or given."""
    if fid is None:
        fid = 10.0 + len(json.dumps(p.genome)) % 97
    r = {"id": p.id, "generation": p.generation, "kind": p.kind, "parents": list(p.parents), "genome": p.genome,
         "steps": p.steps, "seed": p.seed, "status": "ok" if math.isfinite(fid) else "failed",
         "fitness": fid if math.isfinite(fid) else None, "params": {"g": 1, "d": 1}, "seconds": {}}
    history[p.id] = r
    return r


def test_a_generation_is_a_barrier_then_survivors_breed_and_continue():
    s, history = make(Evolution)
    ids = Ids()
    gen0 = s.ask(AskContext(free=1, new_id=ids))
    assert [p.kind for p in gen0] == ["initial"] * 3
    assert GanGenome.from_dict(gen0[0].genome) == dcgan(SHAPE)  # the DCGAN first (seed_baseline), then samples
    for p in gen0[:2]:
        assert s.tell(finish(history, p)) is None
    assert s.ask(AskContext(free=2, new_id=ids)) == []  # the generation is open: nothing more
    m = s.tell(finish(history, gen0[2]))
    assert m.generation == 0 and [r["id"] for r in m.population] == \
        [r["id"] for r in sorted(history.values(), key=lambda r: r["fitness"])]
    gen1 = s.ask(AskContext(free=1, new_id=ids))
    assert [p.kind for p in gen1] == ["child", "child", "continue", "continue", "continue"]
    assert {p.parents[0] for p in gen1 if p.kind == "continue"} == {p.id for p in gen0}
    assert all(p.resume == p.parents[0] and p.steps == 5 for p in gen1 if p.kind == "continue")


def run_to_end(s, history, ids, fids) -> list[str]:
    """Ask and tell until the strategy is done, one proposal at a time; the ids in order told."""
    told = []
    while not s.finished():
        for p in s.ask(AskContext(free=1, new_id=ids)):
            s.tell(finish(history, p, next(fids, None)))
            told.append(p.id)
    return told


@pytest.mark.parametrize("cls, sets", [(Evolution, ()), (RandomSearch, ()), (AgingEvolution, ["evolution.aging=true"]),
                                       (Evolution, ["search.objective=pareto"])])
def test_state_dict_resumes_exactly(cls, sets):
    whole, history = make(cls, *sets)
    told = run_to_end(whole, history, Ids(), iter([]))
    # the same run stopped after 4 results (mid-generation), its state through JSON into a new strategy
    first, h1 = make(cls, *sets)
    ids, queue = Ids(), []
    while len(h1) < 4:
        queue += first.ask(AskContext(free=1, new_id=ids))
        first.tell(finish(h1, queue.pop(0)))
    state = json.loads(json.dumps(first.state_dict()))
    second, h2 = make(cls, *sets)
    h2.update(h1)
    second.load_state_dict(state, "state.json", pending={p.id for p in queue})
    for p in queue:  # what was pending when it stopped runs again
        second.tell(finish(h2, p))
    ids2 = Ids()
    ids2.n = ids.n
    rest = [p.id for p in queue] + run_to_end(second, h2, ids2, iter([]))
    assert list(h1) + rest == told
    assert {i: h2[i]["genome"] for i in told} == {i: history[i]["genome"] for i in told}


def test_aging_evolution_never_waits_and_the_oldest_dies():
    s, history = make(AgingEvolution, "evolution.aging=true", "evolution.aging_sample=3")
    ids = Ids()
    initial = s.ask(AskContext(free=2, new_id=ids))
    assert [p.kind for p in initial] == ["initial", "initial"]  # one per free worker, no more
    initial += s.ask(AskContext(free=2, new_id=ids))  # the third initial; no parent has finished yet
    assert [p.kind for p in initial] == ["initial"] * 3
    s.tell(finish(history, initial[0], 50.0))
    assert s.ask(AskContext(free=1, new_id=ids)) == []  # one finished member: no choice of parent yet
    for p, fid in zip(initial[1:], [20.0, 30.0]):
        s.tell(finish(history, p, fid))
    # while nothing else has finished, every free worker still gets a child: no barrier
    children = s.ask(AskContext(free=2, new_id=ids))
    assert [p.kind for p in children] == ["child", "child"]
    assert all(p.parents[0] == initial[1].id for p in children)  # the best of a sample of all three
    s.tell(finish(history, children[0], 40.0))
    assert s.population == [initial[1].id, initial[2].id, children[0].id]  # the oldest (initial[0]) died
    assert s.alive() >= {children[1].id}  # an unfinished child's parent and itself stay alive
    assert not s.finished() and s.progress() == ("trials", 4, 3 + 2 * 2)


def test_a_child_of_aging_evolution_is_repaired_into_the_space():
    from gan_nas.genome import validate

    s, history = make(AgingEvolution, "evolution.aging=true")
    ids = Ids()
    run_to_end(s, history, ids, iter([]))
    for r in history.values():
        validate(GanGenome.from_dict(r["genome"]), SHAPE)  # raises on a genome that cannot be built
    assert len(history) == 3 + 2 * 2 and s.finished()


def test_a_journal_line_of_a_later_generation_than_the_state_is_refused():
    from gan_nas.errors import RunDirError

    s, history = make(Evolution)
    ids = Ids()
    for p in s.ask(AskContext(free=1, new_id=ids)):
        s.tell(finish(history, p))
    state = json.loads(json.dumps(s.state_dict()))  # generation 1, not yet formed
    edited = dict(history)
    edited["c0000"] = {**history["c0000"], "generation": 5}  # a hand-edited journal line
    again, h2 = make(Evolution)
    h2.update(edited)
    with pytest.raises(RunDirError, match="a journal line is of generation 5, but state.json is in generation 1"):
        again.load_state_dict(state, "state.json: strategy")
