"""Selection operators (gan_nas.selection): exact cases, no GAN trained."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from gan_nas.selection import (
    crowding_distance,
    fitness_of,
    non_dominated_fronts,
    select_survivors,
    tournament,
)
from gan_nas.space import SearchSpace, distance, sample

SHAPE = (28, 28, 1)


def rec(cid: str, fid: float | None, status: str = "ok", g: int = 1000, coverage: float | None = None,
        genome: dict | None = None) -> dict:
    r = {"id": cid, "status": status, "fitness": fid, "params": {"g": g, "d": 10}, "metrics": {}}
    if coverage is not None:
        r["metrics"]["coverage"] = coverage
    if genome is not None:
        r["genome"] = genome
    return r


def ids(records: list[dict]) -> list[str]:
    return [r["id"] for r in records]


def test_fitness_of_ranks_failures_last():
    assert fitness_of(rec("a", 3.5)) == 3.5
    assert fitness_of(rec("a", None)) == math.inf
    assert fitness_of(rec("a", 3.5, status="diverged")) == math.inf
    assert fitness_of({"status": "ok", "fitness": "x"}) == math.inf


def test_tournament_of_the_whole_population_always_picks_the_best():
    pop = [rec(f"c{i}", f) for i, f in enumerate([5.0, 1.0, 3.0, math.inf])]
    rng = np.random.default_rng(0)
    assert ids(tournament(pop, 6, len(pop), rng)) == ["c1"] * 6


def test_tournament_of_one_is_uniform_and_larger_ones_favour_the_fit():
    pop = [rec(f"c{i}", float(i)) for i in range(4)]
    rng = np.random.default_rng(1)
    one = Counter(ids(tournament(pop, 4000, 1, rng)))
    assert set(one) == {"c0", "c1", "c2", "c3"} and all(850 < v < 1150 for v in one.values())
    # size 2 of 4 without replacement: the worst never wins, the best wins 1 - C(3,2)/C(4,2) = 1/2
    two = Counter(ids(tournament(pop, 4000, 2, rng)))
    assert "c3" not in two and 1850 < two["c0"] < 2150
    # the same seed, the same winners
    assert ids(tournament(pop, 10, 2, np.random.default_rng(7))) == ids(tournament(pop, 10, 2, np.random.default_rng(7)))


def test_tournament_with_a_key():
    pop = [rec("small", 9.0, g=10), rec("big", 1.0, g=10**6)]
    assert ids(tournament(pop, 3, 2, np.random.default_rng(0), key=lambda r: r["params"]["g"])) == ["small"] * 3


def test_nsga2_fronts_and_crowding():
    pts = [(1.0, 5.0), (2.0, 2.0), (5.0, 1.0), (3.0, 3.0), (6.0, 6.0), (2.0, 2.0)]
    assert non_dominated_fronts(pts) == [[0, 1, 2, 5], [3], [4]]  # equal points do not dominate each other
    crowd = crowding_distance(pts, [0, 1, 2])
    assert crowd[0] == crowd[2] == math.inf
    assert crowd[1] == pytest.approx((5.0 - 1.0) / 4.0 + (5.0 - 1.0) / 4.0)


def test_elitist_survivors_are_the_lowest_fids_failures_last():
    cands = [rec("a", 3.0), rec("b", None, status="diverged"), rec("c", 1.0), rec("d", 2.0)]
    assert ids(select_survivors(cands, 2, "fid")) == ["c", "d"]
    assert ids(select_survivors(cands, 4, "fid")) == ["c", "d", "a", "b"]


def test_pareto_keeps_a_small_generator_that_fid_alone_drops():
    cands = [rec("best", 1.0, g=10**6), rec("second", 2.0, g=9 * 10**5), rec("tiny", 5.0, g=1000),
             rec("dominated", 6.0, g=10**6)]
    assert ids(select_survivors(cands, 2, "fid")) == ["best", "second"]
    # front {best, second, tiny}: the boundary points (best, tiny) have infinite crowding and go first
    assert ids(select_survivors(cands, 2, "pareto")) == ["best", "tiny"]
    assert ids(select_survivors(cands, 4, "pareto"))[-1] == "dominated"


def test_fid_coverage_keeps_a_diverse_candidate_that_fid_alone_drops():
    cands = [rec("clean", 1.0, coverage=0.3), rec("clean2", 1.5, coverage=0.25), rec("diverse", 2.0, coverage=0.9),
             rec("unscored", 0.5)]  # no coverage: counted as 0
    assert ids(select_survivors(cands, 2, "fid")) == ["unscored", "clean"]
    chosen = ids(select_survivors(cands, 2, "fid_coverage"))
    assert "diverse" in chosen and "clean2" not in chosen  # clean2 is dominated by clean


def test_diversity_weight_spreads_survivors_over_unlike_genomes():
    space, rng = SearchSpace(), np.random.default_rng(3)
    a = sample(space, SHAPE, rng)
    far = sample(space, SHAPE, rng)
    twin = a.to_dict()  # a copy: distance 0 to a
    assert distance(a, far) >= 1.0  # "far" is no near-copy, so sharing never penalises it
    cands = [rec("a", 1.0, genome=a.to_dict()), rec("twin", 1.1, genome=twin), rec("far", 1.5, genome=far.to_dict())]
    assert ids(select_survivors(cands, 2, "fid")) == ["a", "twin"]
    # the twin's FID counts 1 + w times once a is chosen: 1.1 x 1.5 > 1.5, so "far" goes before it
    assert ids(select_survivors(cands, 2, "fid", diversity_weight=0.5)) == ["a", "far"]
    # with a small weight, the twin still wins: 1.1 x 1.2 < 1.5
    assert ids(select_survivors(cands, 3, "fid", diversity_weight=0.2)) == ["a", "twin", "far"]
