"""The ``random`` strategy: the same generations, budget and survivor selection as ``evolution``, with
every new genome sampled from the space instead of bred: the baseline that every NAS result owes
(Li & Talwalkar 2019). The DCGAN is not seeded, so nothing but sampling finds what it finds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gan_nas import space as space_mod
from gan_nas.evolution import Evolution
from gan_nas.genome import GanGenome
from gan_nas.strategy import Record


class RandomSearch(Evolution):
    name = "random"
    child_kind = "random"

    def initial_genomes(self) -> list[GanGenome]:
        return [space_mod.sample(self.space, self.shape, self.rng) for _ in range(self.cfg.search.population)]

    def child(self, pop: list[Record], key: Callable[[Record], Any]) -> tuple[GanGenome, list[str]]:
        return space_mod.sample(self.space, self.shape, self.rng), []
