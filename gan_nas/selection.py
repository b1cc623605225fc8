"""Selection operators of the search, in the manner of DEAP's ``tools.sel*``: small functions over
journal records (plain dicts with ``id``, ``status``, ``fitness``, ``params``, ``metrics``, ``genome``)
that know nothing of executors, files or TensorFlow.

* :func:`tournament` -- parents: the best of ``size`` drawn at random, ``k`` times.
* :func:`non_dominated_fronts`, :func:`crowding_distance` -- NSGA-II (Deb et al. 2002) on two
  objectives to minimise.
* :func:`select_survivors` -- the ``mu`` survivors: elitist by FID (optionally with fitness sharing),
  or NSGA-II on FID and one of :data:`SECOND_OBJECTIVES`.

Every function ranks a failed candidate (status other than ``ok``, or no fitness) as FID ``inf``:
last, whatever the objective.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from gan_nas import space as space_mod
from gan_nas.genome import GanGenome


def fitness_of(r: dict[str, Any]) -> float:
    """A record's FID: ``inf`` unless its status is ``ok`` and it has a number as its fitness."""
    f = r.get("fitness")
    if r.get("status") != "ok" or f is None:
        return math.inf
    try:
        return float(f)
    except (TypeError, ValueError):
        return math.inf


def tournament(pop: list[dict[str, Any]], k: int, size: int, rng: np.random.Generator,
               key: Callable[[dict[str, Any]], Any] = fitness_of) -> list[dict[str, Any]]:
    """``k`` winners (by ``key``, lowest first) of tournaments of ``size`` distinct members of ``pop`` drawn
    at random; the tournaments are independent, so one member can win several."""
    out = []
    for _ in range(k):
        idx = rng.choice(len(pop), size=min(size, len(pop)), replace=False)
        out.append(min((pop[i] for i in idx), key=key))
    return out


def non_dominated_fronts(points: list[tuple[float, float]]) -> list[list[int]]:
    """Fast non-dominated sorting (NSGA-II) of points to minimise; returns fronts of indices."""
    n = len(points)
    dominated: list[list[int]] = [[] for _ in range(n)]
    count = [0] * n
    fronts: list[list[int]] = [[]]
    for i in range(n):
        for j in range(n):
            a, b = points[i], points[j]
            if a[0] <= b[0] and a[1] <= b[1] and a != b:
                dominated[i].append(j)
            elif b[0] <= a[0] and b[1] <= a[1] and a != b:
                count[i] += 1
        if count[i] == 0:
            fronts[0].append(i)
    while fronts[-1]:
        nxt = []
        for i in fronts[-1]:
            for j in dominated[i]:
                count[j] -= 1
                if count[j] == 0:
                    nxt.append(j)
        fronts.append(nxt)
    return fronts[:-1]


def crowding_distance(points: list[tuple[float, float]], front: list[int]) -> dict[int, float]:
    """NSGA-II crowding distance of each index of ``front``; boundary points get inf."""
    dist = {i: 0.0 for i in front}
    for m in range(2):
        ordered = sorted(front, key=lambda i: points[i][m])
        lo, hi = points[ordered[0]][m], points[ordered[-1]][m]
        dist[ordered[0]] = dist[ordered[-1]] = math.inf
        if hi == lo:
            continue
        for a, i, b in zip(ordered, ordered[1:], ordered[2:]):
            dist[i] += (points[b][m] - points[a][m]) / (hi - lo)
    return dist


# The second objective of each NSGA-II objective, to minimise beside FID.
SECOND_OBJECTIVES: dict[str, Callable[[dict[str, Any]], float]] = {
    "pareto": lambda c: float(c["params"]["g"]),  # generator size
    # coverage in [0, 1] (Naeem et al. 2020), which falls when a generator drops modes; none counts as 0
    "fid_coverage": lambda c: -float((c.get("metrics") or {}).get("coverage", 0.0)),
}


def select_survivors(cands: list[dict[str, Any]], mu: int, objective: str, diversity_weight: float = 0.0
                     ) -> list[dict[str, Any]]:
    """The ``mu`` survivors: elitist by FID, or NSGA-II on FID and a second objective
    (:data:`SECOND_OBJECTIVES`: generator parameters for ``pareto``, coverage for ``fid_coverage``).

    Failed candidates (fitness inf) come last. With ``diversity_weight`` > 0
    (objective ``fid``), survivors are picked greedily by FID x (1 + w x the
    number of already picked genomes within genome distance 1), a simple
    fitness sharing that keeps near-copies from filling the population.
    """
    ok = [c for c in cands if math.isfinite(fitness_of(c))]
    bad = [c for c in cands if not math.isfinite(fitness_of(c))]
    if objective in SECOND_OBJECTIVES and ok:
        pts = [(fitness_of(c), SECOND_OBJECTIVES[objective](c)) for c in ok]
        chosen: list[dict[str, Any]] = []
        for front in non_dominated_fronts(pts):
            crowd = crowding_distance(pts, front)
            chosen += [ok[i] for i in sorted(front, key=lambda i: (-crowd[i], pts[i][0]))]
        ok = chosen
    elif diversity_weight > 0 and ok:
        rest, chosen = sorted(ok, key=fitness_of), []
        genomes = {c["id"]: GanGenome.from_dict(c["genome"]) for c in rest}
        while rest and len(chosen) < mu:
            def shared(c: dict[str, Any]) -> float:
                close = sum(space_mod.distance(genomes[c["id"]], genomes[s["id"]]) < 1.0 for s in chosen)
                return fitness_of(c) * (1.0 + diversity_weight * close)
            best = min(rest, key=shared)
            chosen.append(best)
            rest.remove(best)
        ok = chosen + rest
    else:
        ok = sorted(ok, key=fitness_of)
    return (ok + bad)[:mu]
