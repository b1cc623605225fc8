"""The strategies alone, on synthetic results (no GAN trains): ask/tell, barriers, aging, exact state."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gan_nas import config
from gan_nas.baseline import dcgan
from gan_nas.config import HalvingConfig
from gan_nas.evolution import AgingEvolution, Evolution
from gan_nas.genome import GanGenome, validate
from gan_nas.halving import SNAPSHOT_TRIES, SuccessiveHalving
from gan_nas.policy import Policy
from gan_nas.random_search import RandomSearch
from gan_nas.rl import ReinforceSearch
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
                                       (Evolution, ["search.objective=pareto"]), (ReinforceSearch, ()),
                                       (SuccessiveHalving, ["halving.min_steps=2", "halving.eta=2"]),
                                       (SuccessiveHalving, ["halving.min_steps=2", "halving.eta=2",
                                                            "halving.sampler=rl"])])
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


# -- rl


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3), (64, 64, 3), (128, 128, 3)])
def test_every_policy_sample_is_a_valid_genome_and_credits_only_decisions_it_used(shape):
    cfg = config.override(config.Config(), ["space.max_filters=64", "space.max_d_blocks=4"])
    space = SearchSpace.from_config(cfg.space)
    policy = Policy(space, shape)
    rng = np.random.default_rng(0)
    for _ in range(60):
        action = policy.sample(rng)
        genome, used = policy.genome(action)
        validate(genome, shape, space)
        depth = policy.options["g.blocks"][action["g.blocks"]]
        assert all(f"g.{i}.kind" in used for i in range(depth)) and f"g.{depth}.kind" not in used
        assert set(used) <= set(action) and all(used[k] == action[k] for k in used)
        # laid out as the space's sampler lays widths out: narrowing in G, widening in D
        g_widths, d_widths = ([b.filters for b in net.blocks] for net in (genome.generator, genome.discriminator))
        assert g_widths == sorted(g_widths, reverse=True) and d_widths == sorted(d_widths)


def test_reinforce_moves_probability_toward_the_rewarded_decisions():
    """A synthetic reward (no GAN): -log(FID) where FID is 10 with the hinge loss and a 5x5 first
    discriminator kernel, 100 otherwise; the policy's probabilities of both must rise from chance."""
    s, history = make(ReinforceSearch, "search.population=4", "search.generations=40", "search.offspring=4",
                      "rl.learning_rate=0.5")
    pol = s.sampler.policy
    loss, kernel = pol.options["t.loss"].index("hinge"), pol.options["d.0.kernel"].index(5)
    p0 = pol.probabilities("t.loss")[loss], pol.probabilities("d.0.kernel")[kernel]
    ids = Ids()
    while not s.finished():
        for p in s.ask(AskContext(free=1, new_id=ids)):
            g = GanGenome.from_dict(p.genome)
            good = g.training.loss == "hinge" and g.discriminator.blocks[0].kernel == 5
            s.tell(finish(history, p, 10.0 if good else 100.0))
    p1 = pol.probabilities("t.loss")[loss], pol.probabilities("d.0.kernel")[kernel]
    assert p0 == pytest.approx((0.25, 1 / 3))
    assert p1[0] > 0.6 and p1[1] > 0.6, (p0, p1)
    assert pol.entropy() < math.log(3)
    last = [GanGenome.from_dict(history[i]["genome"]).training.loss for i in list(history)[-20:]]
    assert last.count("hinge") >= 12  # and it samples them: the last 20 trials mostly use the hinge loss


def test_a_failed_trial_earns_less_than_the_worst_success():
    from gan_nas.rl import Rewards

    rewards = Rewards()
    assert rewards({"status": "ok", "fitness": 50.0}) == pytest.approx(-math.log(50.0))
    assert rewards({"status": "ok", "fitness": 200.0}) == pytest.approx(-math.log(200.0))
    assert rewards({"status": "diverged", "fitness": None}) == pytest.approx(-math.log(400.0))
    assert Rewards()({"status": "failed", "fitness": None}) is None  # no success yet: no scale for it


def test_rl_is_asynchronous_and_trains_from_scratch():
    s, history = make(ReinforceSearch)
    ids = Ids()
    first = s.ask(AskContext(free=2, new_id=ids))
    assert [p.kind for p in first] == ["policy", "policy"] and all(p.resume is None and not p.parents for p in first)
    assert len(s.ask(AskContext(free=1, new_id=ids))) == 1  # nothing finished yet, and still no barrier
    assert s.alive() == {p.id for p in first} | {"c0002"}


def test_a_policy_state_from_another_space_is_refused():
    from gan_nas.errors import RunDirError

    s, history = make(ReinforceSearch)
    state = json.loads(json.dumps(s.state_dict()))
    other, _ = make(ReinforceSearch, "space.max_g_blocks=3")
    with pytest.raises(RunDirError, match="policy.*another search space"):
        other.load_state_dict(state, "state.json: strategy")
    for bad, message in ([0.0, "x", 0.0, 0.0], "malformed logits for t.loss"), ([10**400, 0, 0, 0], "malformed logits"):
        state["policy"]["logits"]["t.loss"] = bad
        with pytest.raises(RunDirError, match=message):
            s.load_state_dict(state, "state.json: strategy")


@pytest.mark.parametrize("cls, field, value, message", [
    (ReinforceSearch, "issued", [[1]], "'issued' must be a list of trial ids"),
    (ReinforceSearch, "told", 3, "'told' is 3, but the journal holds 2 of its trials"),
    (ReinforceSearch, "worst_reward", 10**400, "'worst_reward' must be a finite number or null"),
    (SuccessiveHalving, "promoted", [{}], "'promoted' must be a list of trial ids"),
    (SuccessiveHalving, "told", 0, "'told' is 0, but the journal holds 2 of its trials"),
])
def test_a_hand_edited_state_is_one_error(cls, field, value, message):
    from gan_nas.errors import RunDirError

    s, history = make(cls)
    ids = Ids()
    for p in s.ask(AskContext(free=2, new_id=ids)):
        s.tell(finish(history, p))
    state = {**json.loads(json.dumps(s.state_dict())), field: value}
    again, h2 = make(cls)
    h2.update(history)
    with pytest.raises(RunDirError, match=message):
        again.load_state_dict(state, "state.json: strategy")


def test_a_failure_before_any_success_teaches_the_policy_nothing():
    s, history = make(ReinforceSearch)
    ids = Ids()
    first, second = s.ask(AskContext(free=2, new_id=ids))
    s.tell(finish(history, first, math.inf))
    assert s.sampler.policy.updates == 0 and s.sampler.policy.baseline is None
    s.tell(finish(history, second, 20.0))
    assert s.sampler.policy.updates == 1


# -- halving


def test_rungs_grow_by_eta_up_to_max_steps():
    def rungs(min_steps, eta, max_steps):
        return HalvingConfig(min_steps=min_steps, eta=eta, max_steps=max_steps).rung_steps()

    assert rungs(100, 3, 2700) == [100, 300, 900, 2700]
    assert rungs(100, 3, 2000) == [100, 300, 900]
    assert rungs(50, 2, 50) == [50]
    # the longest trial: a promotion to the top rung, or with a leader's share, the top rung x (eta - 1) past it
    assert HalvingConfig(min_steps=100, eta=3, max_steps=2000).longest_trial_steps() == 900
    assert HalvingConfig(min_steps=100, eta=3, max_steps=2000, leader_share=0.5).longest_trial_steps() == 1800
    assert HalvingConfig(min_steps=100, eta=2, max_steps=800, leader_share=0.5).longest_trial_steps() == 800


def test_halving_promotes_exactly_the_top_fraction_from_their_checkpoints():
    s, history = make(SuccessiveHalving, "search.population=9", "search.generations=0", "halving.min_steps=100",
                      "halving.eta=3", "halving.max_steps=900", "training.max_seconds=30", "training.steps=300")
    ids = Ids()
    rung0 = s.ask(AskContext(free=9, new_id=ids))
    assert [p.kind for p in rung0] == ["initial"] + ["random"] * 8 and {p.steps for p in rung0} == {100}
    assert GanGenome.from_dict(rung0[0].genome) == dcgan(SHAPE)  # seed_baseline: the DCGAN first
    assert {p.max_seconds for p in rung0} == {10.0}  # training.max_seconds per training.steps, pro rata
    fids = [90.0, 20.0, 70.0, 40.0, 80.0, 10.0, 60.0, 30.0, 50.0]
    for p, fid in zip(rung0[:2], fids):
        s.tell(finish(history, p, fid))
    assert s.ask(AskContext(free=1, new_id=ids)) == []  # 2 finished: floor(2/3) = 0 to promote, budget spent
    for p, fid in zip(rung0[2:], fids[2:]):
        s.tell(finish(history, p, fid))
    rung1 = s.ask(AskContext(free=9, new_id=ids))
    best3 = [rung0[i].id for i in (5, 1, 7)]  # FIDs 10, 20, 30
    assert [p.parents[0] for p in rung1] == best3  # exactly the best third, best first
    assert all(p.kind == "continue" and p.resume == p.parents[0] and p.steps == 200 and p.generation == 1
               and p.max_seconds == 20.0 for p in rung1)
    assert s.alive() >= {p.id for p in rung1}
    assert not s.finished()
    for p, fid in zip(rung1, [15.0, 5.0, 25.0]):
        s.tell(finish(history, p, fid))
    rung2 = s.ask(AskContext(free=9, new_id=ids))
    assert [p.parents[0] for p in rung2] == [rung1[1].id] and rung2[0].steps == 600  # 900 in all
    s.tell(finish(history, rung2[0], 3.0))
    assert s.ask(AskContext(free=9, new_id=ids)) == [] and s.finished()
    assert s.alive() == set()  # nothing can be promoted any more: every checkpoint may go


def test_rungs_of_seconds_give_every_trial_its_rung_in_seconds_and_steps_only_as_a_cap():
    """halving.seconds_per_step: a slow genome gets the seconds a fast one gets, not more."""
    from gan_nas.config import SECONDS_RUNG_STEP_CAP

    s, history = make(SuccessiveHalving, "search.population=3", "search.generations=0", "halving.min_steps=100",
                      "halving.eta=3", "halving.max_steps=900", "halving.seconds_per_step=0.1",
                      "training.max_seconds=30", "training.steps=300")
    ids = Ids()
    rung0 = s.ask(AskContext(free=3, new_id=ids))
    assert [(p.steps, p.max_seconds) for p in rung0] == [(100 * SECONDS_RUNG_STEP_CAP, pytest.approx(10.0))] * 3
    for p, fid in zip(rung0, [30.0, 10.0, 20.0]):
        s.tell(finish(history, p, fid))
    (up,) = s.ask(AskContext(free=3, new_id=ids))
    assert up.parents == (rung0[1].id,) and up.max_seconds == pytest.approx(20.0)  # 30 s in all at rung 1
    assert HalvingConfig(min_steps=100, eta=3, max_steps=900, seconds_per_step=0.1).longest_trial_steps() == (
        900 * SECONDS_RUNG_STEP_CAP)  # the top rung's steps, as a cap
    with pytest.raises(config.ConfigError, match="seconds_per_step"):
        config.override(config.Config(), ["halving.seconds_per_step=-1"])


def test_asha_promotes_without_waiting_for_a_rung_to_fill():
    s, history = make(SuccessiveHalving, "search.population=20", "search.generations=0", "halving.eta=2",
                      "halving.min_steps=10", "halving.max_steps=40")
    ids = Ids()
    a, b = s.ask(AskContext(free=2, new_id=ids))
    s.tell(finish(history, a, 30.0))
    s.tell(finish(history, b, 50.0))
    (p,) = s.ask(AskContext(free=1, new_id=ids))  # 2 of 20 finished: the better half goes on at once
    assert p.kind == "continue" and p.parents == (a.id,)
    (q,) = s.ask(AskContext(free=1, new_id=ids))
    assert q.kind == "random"  # b is not in the top half: a new candidate instead (a was the DCGAN)
    assert s.alive() >= {b.id, p.id, q.id}  # b may yet be promoted once more of rung 0 has finished


def test_with_a_leader_share_a_later_candidate_better_than_a_higher_rung_leads():
    """Asynchronous promotion fills rung 1 with what finished first; with a leader's share, a rung-0 trial
    that finished later and already beats it with a third of the training is the leader whose lineage
    trains on alone once closed. Without a share the leader stays the best of the highest rung."""
    sets = ["search.population=20", "search.generations=0", "halving.eta=2", "halving.min_steps=10",
            "halving.max_steps=40", "halving.seed_baseline=false", "search.wall_clock_seconds=1000"]
    s, history = make(SuccessiveHalving, *sets, "halving.leader_share=0.5")
    plain, plain_history = make(SuccessiveHalving, *sets)
    ids = Ids()
    a, b = s.ask(AskContext(free=2, new_id=ids))
    s.tell(finish(history, a, 100.0))
    s.tell(finish(history, b, 150.0))
    (up,) = s.ask(AskContext(free=1, new_id=ids))
    assert up.parents == (a.id,)
    s.tell(finish(history, up, 80.0))  # rung 1: 80; a is taken further, no longer a lineage's head
    assert s.leader()[0]["id"] == up.id
    (c,) = s.ask(AskContext(free=1, new_id=ids))
    s.tell(finish(history, c, 40.0))  # rung 0, finished later, better than rung 1's best
    assert s.leader() == (history[c.id], 0)
    plain_history.update(history)
    plain.rungs = [list(r) for r in s.rungs]
    assert plain.leader() == (history[up.id], 1)
    s.closed = True  # as the clock would close it
    (p,) = s.ask(AskContext(free=3, new_id=ids))  # closed with a share: the leader's lineage alone
    assert p.parents == (c.id,) and p.generation == 1 and s.first_leader == c.id


def test_halving_on_a_wall_clock_stops_new_candidates_in_time_to_take_its_leader_to_the_top_rung():
    """A simulated clock: a trial takes one second per step (and as the scheduler expects). Plain ASHA
    would start new candidates until the clock ran out; this one closes in time for its leader."""
    s, history = make(SuccessiveHalving, "search.population=1000", "search.generations=0", "halving.eta=3",
                      "halving.min_steps=10", "halving.max_steps=270", "training.max_seconds=0")
    # rungs 10/30/90/270: plain ASHA would reach the top after 27 + 9 + 3 trials, 810 seconds
    ids, left, rng = Ids(), 400.0, np.random.default_rng(0)
    while not s.finished() and left > 0:
        ps = s.ask(AskContext(free=1, new_id=ids, expected_seconds=lambda p: float(p.steps), seconds_left=left))
        if not ps:
            break
        (p,) = ps
        assert p.max_seconds is None or p.max_seconds <= left  # never more training than the clock has left
        left -= min(p.steps, p.max_seconds or math.inf)
        s.tell(finish(history, p, float(rng.uniform(1, 100))))
    new = [r for r in history.values() if r["kind"] != "continue"]
    assert s.closed and 5 <= len(new) < 1000  # it closed, long before the budget of new candidates
    top = [r for r in history.values() if r["generation"] == 3]
    assert top, "the leader reached the top rung within the clock"
    leader = min((r for r in history.values() if r["generation"] == 2), key=lambda r: r["fitness"])
    assert top[0]["parents"] == [leader["id"]]  # the first to climb is the best of the rung below
    assert 0 <= left < 10  # the clock was used to within a new candidate's seconds
    state = json.loads(json.dumps(s.state_dict()))
    again, _ = make(SuccessiveHalving, "search.population=1000", "search.generations=0", "halving.eta=3",
                    "halving.min_steps=10", "halving.max_steps=270", "training.max_seconds=0")
    again.history.update(history)
    again.load_state_dict(state, "state.json")
    assert again.closed and again.state_dict() == s.state_dict()


def test_halving_with_a_leader_share_gives_the_leader_alone_the_rest_of_the_clock():
    """Simulated clock as above, with halving.leader_share = 0.5 of a 400 s clock: the search closes with
    at least 200 s left after its leader's climb, and from then on only the leader's lineage trains, past
    the top rung, until the clock runs out."""
    sets = ["search.population=1000", "search.generations=0", "halving.eta=3", "halving.min_steps=10",
            "halving.max_steps=90", "training.max_seconds=0", "search.wall_clock_seconds=400",
            "halving.leader_share=0.5"]
    s, history = make(SuccessiveHalving, *sets)
    ids, left, rng = Ids(), 400.0, np.random.default_rng(0)
    closed_at = None
    while left > 0:
        ps = s.ask(AskContext(free=1, new_id=ids, expected_seconds=lambda p: float(p.steps), seconds_left=left))
        assert len(ps) == 1 and not s.finished()  # the leader always has more to train while the clock runs
        (p,) = ps
        if s.closed and closed_at is None:
            closed_at = left
            lead, _ = s.leader()
        if closed_at is not None:  # closed: each trial continues the one before it, the leader's lineage
            assert p.kind == "continue" and p.parents == (lead["id"],)
            assert s.alive() == {p.id}  # nothing else will train again: every other checkpoint may go
        assert p.max_seconds is None or p.max_seconds <= left
        left -= min(p.steps, p.max_seconds or math.inf)
        lead = s.tell(finish(history, p, float(rng.uniform(1, 100)))) or history[p.id]
    assert closed_at is not None and closed_at >= 200  # half the clock was kept for the leader
    past = [r for r in history.values() if r["generation"] == 3]  # rungs 10/30/90, then past the top
    assert len(past) >= 2 and all(r["steps"] == 180 for r in past)  # 90 x (eta - 1) more each time
    assert s.lineage_base()["id"] == past[-1]["id"] and s.alive() == {past[-1]["id"]}
    state = json.loads(json.dumps(s.state_dict()))
    again, _ = make(SuccessiveHalving, *sets)
    again.history.update(history)
    again.load_state_dict(state, "state.json")
    assert again.state_dict() == s.state_dict() and again.lineage_base() == s.lineage_base()


LEADER_SETS = ["search.population=1000", "search.generations=0", "halving.eta=2", "halving.min_steps=10",
               "halving.max_steps=20", "training.max_seconds=0", "search.wall_clock_seconds=100",
               "halving.leader_share=0.5", "halving.seed_baseline=false"]


def closed_with_a_leader(*sets: str, free: int = 1):
    """A halving search with a leader's share (LEADER_SETS, then ``sets``), closed: two new candidates at
    rung 0 of 10 steps, the clock (1 s a step) then too short for a third beside the leader's climb and share."""
    s, history = make(SuccessiveHalving, *LEADER_SETS, *sets)
    ids = Ids()

    def ctx(left: float, free: int = free) -> AskContext:
        return AskContext(free=free, new_id=ids, expected_seconds=lambda p: float(p.steps), seconds_left=left)

    a, b = s.ask(ctx(100.0, 2))
    s.tell(finish(history, a, 30.0))
    s.tell(finish(history, b, 50.0))
    return s, history, ctx, a


def test_halving_explores_min_candidates_before_the_clock_may_close_it():
    """Serial, on the simulated clock of closed_with_a_leader's settings (100 s, 50 of them the leader's
    share): the clock alone closes the search after 3 new candidates; with halving.min_candidates = 4 it
    starts 4 first, promoting as it goes, and leaves the leader what the clock has left."""
    def explore(*extra):
        s, history = make(SuccessiveHalving, *LEADER_SETS, *extra)
        ids, left = Ids(), 100.0
        while not s.closed and left > 0:
            (p,) = s.ask(AskContext(free=1, new_id=ids, expected_seconds=lambda p: float(p.steps), seconds_left=left))
            assert p.max_seconds <= left  # never more training than the clock has left
            left -= min(p.steps, p.max_seconds)
            s.tell(finish(history, p, 100.0 - len(history)))  # each trial better than the last
        assert s.closed and p.kind == "continue"  # closed: the last trial was the leader's
        return [r["kind"] for r in history.values()], left

    kinds, left = explore()
    assert kinds.count("random") == 3 and left >= 25  # the share (50 s) after the leader's climb, roughly
    kinds, left = explore("halving.min_candidates=4")
    assert kinds.count("random") == 4 and "continue" in kinds[:-1]  # promotions went on while it explored
    assert 0 < left < 25  # the fourth candidate came out of the leader's share
    with pytest.raises(config.ConfigError, match="min_candidates"):
        config.override(config.Config(), ["halving.min_candidates=-1"])


def test_a_leader_lineage_retries_a_diverged_continuation_then_stops():
    s, history, ctx, a = closed_with_a_leader()
    (p,) = s.ask(ctx(65.0))
    assert p.parents == (a.id,) and p.generation == 1  # the leader's promotion, due before any close
    s.tell(finish(history, p, float("nan")))  # diverges
    (q,) = s.ask(ctx(50.0))  # a new candidate (10) + the leader's climb (10) + its share (50) do not fit
    assert s.closed and q.parents == (a.id,) and q.seed != p.seed  # again from its checkpoint, other batches
    assert s.alive() == {q.id}
    again, _ = make(SuccessiveHalving, *LEADER_SETS)  # killed now: state.json holds q as pending
    again.history.update(history)
    again.load_state_dict(json.loads(json.dumps(s.state_dict())), "state.json", pending={q.id})
    assert again.state_dict() == s.state_dict() and again.ask(ctx(50.0)) == []  # q runs again, nothing more
    s.tell(finish(history, q, 20.0))
    (r,) = s.ask(ctx(40.0))
    assert r.parents == (q.id,) and r.generation == 2 and r.steps == 20  # past the top rung: 20 x (eta - 1)
    s.tell(finish(history, r, float("nan")))
    (t,) = s.ask(ctx(20.0))
    assert t.parents == (q.id,)
    s.tell(finish(history, t, float("nan")))  # LEADER_RETRIES failures in a row: the lineage stops
    assert s.ask(ctx(10.0)) == [] and s.finished() and s.alive() == set()


def test_with_leader_snapshot_best_a_lineage_leads_on_its_best_and_goes_back_to_it_twice_at_most():
    """A GAN may collapse as it trains on: with halving.leader_snapshot = "best" a lineage is judged by its
    best trial and continued from that checkpoint again (other batches) when a continuation got worse, up
    to SNAPSHOT_TRIES continuations of one checkpoint; with "head" (the default) by its latest, as before."""
    for snapshot in ("head", "best"):
        s, history, ctx, a = closed_with_a_leader(f"halving.leader_snapshot={snapshot}")
        (p,) = s.ask(ctx(65.0))
        assert p.parents == (a.id,) and p.generation == 1  # a (30) promoted before the close
        s.tell(finish(history, p, 45.0))  # worse than a; still better than b (50)
        (q,) = s.ask(ctx(50.0))  # closed: the leader's lineage alone
        if snapshot == "head":  # a's lineage leads on its head p, and goes on from it past the top rung
            assert s.first_leader == p.id and q.parents == (p.id,) and q.generation == 2
        else:  # on its best, a: the lineage goes on from a again, to rung 1
            assert s.first_leader == a.id and q.parents == (a.id,) and q.generation == 1
            assert s.closed and q.seed != p.seed  # from a's checkpoint again, with other batches
            s.tell(finish(history, q, 20.0))
            (r,) = s.ask(ctx(40.0))
            assert r.parents == (q.id,) and r.generation == 2  # better: on from it, past the top rung
            s.tell(finish(history, r, 35.0))
            (t,) = s.ask(ctx(20.0))
            assert t.parents == (q.id,) and t.generation == 2 and t.seed != r.seed  # worse: from q again
            # while t trains: t, its parent q, and r, the next best and the head: q, tried a second time by t,
            # is tried out when t finishes
            assert s.alive() == {t.id, q.id, r.id}
            s.tell(finish(history, t, 36.0))
            # q is still the lineage's best, but tried SNAPSHOT_TRIES times (a's too: p and q): on from the
            # next best, r, whose checkpoint stays, as does the head t's
            assert SNAPSHOT_TRIES == 2 and s.lineage_base() == history[r.id] and s.alive() == {r.id, t.id}
            again, _ = make(SuccessiveHalving, *LEADER_SETS, "halving.leader_snapshot=best")
            again.history.update(history)
            again.load_state_dict(json.loads(json.dumps(s.state_dict())), "state.json")
            assert again.lineage_base() == s.lineage_base() == history[r.id]
            (u,) = s.ask(ctx(10.0))
            assert u.parents == (r.id,) and u.generation == 2
    with pytest.raises(config.ConfigError, match="leader_snapshot"):
        config.override(config.Config(), ["halving.leader_snapshot=worst"])


def test_on_a_pool_only_one_trial_of_the_leaders_lineage_trains_at_a_time():
    s, history, ctx, a = closed_with_a_leader(free=2)
    first = s.ask(ctx(65.0))
    assert [p.parents for p in first] == [(a.id,)]  # closed: one trial, the other worker idles
    assert s.ask(ctx(60.0)) == [] and not s.finished()  # while it trains, nothing more
    s.tell(finish(history, first[0], 25.0))
    (p,) = s.ask(ctx(50.0))
    assert p.parents == (first[0].id,)


def test_a_leader_whose_promotion_trains_at_the_close_leads_once_it_finishes():
    s, history, ctx, a = closed_with_a_leader(free=1)
    (up,) = s.ask(ctx(95.0))  # plenty of clock: the leader is promoted before any close
    assert up.parents == (a.id,) and not s.closed
    assert s.ask(ctx(65.0)) == []  # another worker: too little clock for a new candidate: closed, and the
    assert s.closed and not s.finished()  # leader's promotion, still training, will lead: wait for it
    s.tell(finish(history, up, 25.0))
    (p,) = s.ask(ctx(55.0))
    assert p.parents == (up.id,) and p.generation == 2  # past the top rung


def test_a_leader_share_needs_a_wall_clock():
    with pytest.raises(config.ConfigError, match="leader_share is a share of search.wall_clock_seconds"):
        config.override(config.Config(), ["search.strategy=halving", "halving.leader_share=0.5"])
    with pytest.raises(config.ConfigError, match="within"):
        config.override(config.Config(), ["halving.leader_share=1.0"])


def test_halving_with_the_rl_sampler_rewards_the_policy_with_rung_zero_only():
    s, history = make(SuccessiveHalving, "search.population=4", "search.generations=0", "halving.eta=2",
                      "halving.min_steps=10", "halving.max_steps=20", "halving.sampler=rl")
    ids = Ids()
    new = s.ask(AskContext(free=4, new_id=ids))
    assert [p.kind for p in new] == ["initial"] + ["policy"] * 3  # the DCGAN, then the policy's samples
    for p, fid in zip(new, [40.0, 30.0, 20.0, 10.0]):
        s.tell(finish(history, p, fid))
    assert s.sampler.policy.updates == 3 and not s.sampler.actions  # the DCGAN's decisions are not the policy's
    promoted = s.ask(AskContext(free=4, new_id=ids))
    assert [p.parents[0] for p in promoted] == [new[3].id, new[2].id]
    for p in promoted:
        s.tell(finish(history, p, 5.0))
    assert s.sampler.policy.updates == 3 and s.finished()


def test_halving_keeps_every_checkpoint_a_later_promotion_continues():
    """Asynchronous promotion may take far more than 1/eta of a rung (a trial is promoted whenever it
    is in the top 1/eta of what has finished so far): what alive() let go must never be promoted later."""
    for seed in range(40):
        s, history = make(SuccessiveHalving, "search.population=24", "search.generations=0", "halving.eta=2",
                          "halving.min_steps=10", "halving.max_steps=160", f"run.seed={seed}")
        ids, released, rng = Ids(), set(), np.random.default_rng(seed)
        while not s.finished():
            for p in s.ask(AskContext(free=1, new_id=ids)):
                assert not (p.resume and p.resume in released), f"seed {seed}: {p.id} continues {p.resume}, released"
                s.tell(finish(history, p, float(rng.uniform(1, 100))))
                released |= set(history) - s.alive()


ETA3 = ["halving.eta=3", "halving.max_steps=90"]  # rungs 10/30/90
ETA2 = ["halving.eta=2", "halving.max_steps=40", "search.population=60"]  # rungs 10/20/40
SHARE = ["search.wall_clock_seconds=300", "halving.leader_share=0.5"]


@pytest.mark.parametrize("sets", [
    ETA3,  # no leader share: once closed, every trial of a rung's window may be promoted
    ETA3 + SHARE, ETA3 + SHARE + ["halving.leader_snapshot=best"],
    ETA2 + SHARE, ETA2 + SHARE + ["halving.leader_snapshot=best"],
], ids=["eta3-closed", "eta3-leader-head", "eta3-leader-best", "eta2-leader-head", "eta2-leader-best"])
def test_halving_never_continues_a_checkpoint_alive_let_go_on_a_clock(sets):
    """As above, on a simulated clock of 300 s that closes the search, then, as a resume with a larger
    ``--set search.wall_clock_seconds`` would, with far more time: whatever alive() let go (the scheduler
    prunes it) is never the checkpoint of a later trial. One trial in ten diverges (NaN)."""
    closed_by_the_clock = 0
    for seed in range(25):
        # 30 (or 60) new candidates at most: alive() keeps the best 10 (or 30) of a rung below the top
        s, history = make(SuccessiveHalving, "search.population=30", "search.generations=0", "halving.min_steps=10",
                          "training.max_seconds=0", f"run.seed={seed}", *sets)
        ids, released, rng = Ids(), set(), np.random.default_rng(seed)
        for clock in (300.0, 3000.0):  # the clock, then the resumed run's
            left = clock
            while left > 0 and not s.finished():
                ps = s.ask(AskContext(free=1, new_id=ids, expected_seconds=lambda p: float(p.steps),
                                      seconds_left=left))
                if not ps:
                    break
                (p,) = ps
                assert not (p.resume and p.resume in released), f"seed {seed}: {p.id} continues {p.resume}, released"
                left -= min(p.steps, p.max_seconds or math.inf)
                fid = float("nan") if rng.uniform() < 0.1 else float(rng.uniform(1, 100))
                s.tell(finish(history, p, fid))
                released |= set(history) - s.alive()
            if clock == 300.0:
                closed_by_the_clock += s.closed
    assert closed_by_the_clock >= 5  # the clock closed many of these searches, not their budget
