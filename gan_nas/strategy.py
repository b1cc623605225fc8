"""The interface every search strategy implements, in the manner of KerasTuner's ``Oracle`` and the
ask-and-tell of Optuna and Nevergrad.

A strategy proposes trials (:meth:`Strategy.ask`), is told each finished one
(:meth:`Strategy.tell`), and exposes its whole state as JSON for resume
(:meth:`Strategy.state_dict`, :meth:`Strategy.load_state_dict`, its random
generator included). It never touches executors, files or TensorBoard: the
scheduler (:mod:`gan_nas.scheduler`) runs it, journals what it is told, and
writes its state before any trial it proposed runs.

Two kinds of strategy run on the same scheduler:

* generational ones (``evolution``, ``random``) return ``[]`` from ``ask``
  while a generation is unfinished: a barrier. While waiting they may propose
  work of the next generation that no unfinished trial can change (a sure
  survivor's continuation): that is how a pool's idle worker trains ahead.
* asynchronous ones (``evolution`` with ``aging = true``, ``rl``, ``halving``) propose a
  trial whenever a worker is free.

Strategies are chosen by ``search.strategy`` and configured by the config table of that name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from gan_nas.errors import RunDirError
from gan_nas.trial import Proposal

Record = dict[str, Any]  # a journal line: a finished trial (gan_nas.store.check_record checks its fields)


@dataclass
class AskContext:
    """What the scheduler knows when it asks for work.

    Attributes:
        free: workers without a trial now.
        new_id: gives the next trial id (the scheduler's counter: ids are names, not files).
        speculate: whether the strategy may propose work ahead of its own barrier (a pool with
            ``run.train_ahead``); a serial run never does, so it stays bit-for-bit deterministic.
        wait_seconds: expected seconds until the running trials end (0 when none run).
        expected_seconds: the scheduler's estimate of a proposal's seconds (training, building, scoring).
        seconds_left: what the wall-clock budget (``search.wall_clock_seconds``) has left; None without one.
    """

    free: int
    new_id: Callable[[], str]
    speculate: bool = False
    wait_seconds: float = 0.0
    expected_seconds: Callable[[Proposal], float] = lambda p: 0.0
    seconds_left: float | None = None


@dataclass
class Milestone:
    """A generation (or, for an asynchronous strategy, a cycle of ``population`` trials) ended."""

    generation: int
    population: list[Record]  # the members alive after it, best first where the strategy ranks them


class Strategy:
    """Base class; see the module docstring.

    Args:
        cfg: the search's config (the strategy reads its own table and ``training``/``space``).
        space: the search space (:class:`gan_nas.space.SearchSpace`).
        shape: the images' (height, width, channels).
        history: every finished trial by id: the scheduler's journal, read-only here.
    """

    name = ""

    def __init__(self, cfg, space, shape: tuple[int, int, int], history: Mapping[str, Record]) -> None:
        self.cfg = cfg
        self.space = space
        self.shape = shape
        self.history = history
        self.rng = np.random.default_rng(cfg.run.seed)

    # -- the interface
    def ask(self, ctx: AskContext) -> list[Proposal]:
        """Proposals to train now (each with an id from ``ctx.new_id()``), at most ``ctx.free`` unless
        the strategy hands out a whole generation; ``[]``: nothing until more results come in."""
        raise NotImplementedError

    def tell(self, record: Record) -> Milestone | None:
        """A trial this strategy proposed has finished (its journal line)."""
        raise NotImplementedError

    def finished(self) -> bool:
        """Whether the strategy will propose nothing more."""
        raise NotImplementedError

    def alive(self) -> set[str]:
        """Ids of trials whose checkpoints the strategy may still train from or inherit."""
        raise NotImplementedError

    def progress(self) -> tuple[str, int, int]:
        """(label, finished, total) of the current generation or cycle, for the progress bar."""
        raise NotImplementedError

    def generations(self) -> int:
        """The generation (or cycle of ``search.population`` trials) the strategy has reached."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """The whole state, JSON-able, random generator included."""
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any], where: str, pending: set[str] = frozenset()) -> None:
        """Restore :meth:`state_dict`'s output; ``pending``: ids issued but not journaled yet (the
        state may name them). RunDirError naming ``where`` and the field if damaged."""
        raise NotImplementedError

    # -- helpers for subclasses
    @property
    def total(self) -> int:
        """The new genomes an asynchronous strategy's budget allows (aging, rl, halving's new candidates):
        ``search.population + search.generations x search.offspring``, as many as a generational search
        evaluates without its continuations."""
        s = self.cfg.search
        return s.population + s.generations * s.offspring

    def _rng_state(self) -> dict[str, Any]:
        return self.rng.bit_generator.state

    def _load_rng(self, state: Any, where: str) -> None:
        try:
            self.rng.bit_generator.state = state
        except (TypeError, ValueError, KeyError, OverflowError) as e:
            raise state_error(where, "rng", f"is not a random generator's state ({str(e)[:80]})") from None


def state_error(where: str, name: str, why: str) -> RunDirError:
    return RunDirError(f"{where}: field {name!r} {why}; delete state.json and resume: the search rebuilds it "
                       f"from the journal")


def need(state: dict[str, Any], name: str, types: type | tuple[type, ...], where: str) -> Any:
    """``state[name]`` if it has one of ``types`` (bool is not an int here), else a RunDirError."""
    v = state.get(name)
    if isinstance(v, bool) and types is not bool or not isinstance(v, types):
        names = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        raise state_error(where, name, "is missing" if v is None else f"must be a {names}")
    return v


def need_ids(state: dict[str, Any], name: str, history: Mapping[str, Record], where: str,
             issued: set[str] = frozenset()) -> list[str]:
    """A list of trial ids in ``state[name]``, each journaled (or in ``issued``: pending)."""
    ids = need(state, name, list, where)
    if not all(isinstance(cid, str) for cid in ids):
        raise state_error(where, name, "must be a list of trial ids")
    for cid in ids:
        if cid not in history and cid not in issued:
            raise state_error(where, name, f"names {cid!r}, which the journal does not hold")
    return list(ids)
