"""The ``rl`` strategy: a REINFORCE policy over the genome's decisions (:mod:`gan_nas.policy`).

Asynchronous: a free worker gets a genome sampled from the policy, trained
``training.steps`` from scratch; each finished trial updates the policy at once
(its reward less a moving-average baseline). The reward is ``-log(FID)``, so a
trial that halves the FID earns the same whatever the FIDs' scale; a trial that
failed or diverged earns ``log 2`` less than the worst so far (as if its FID were twice the
worst): a decision that breaks training is discouraged, not ignored.

The budget is ``search.population + search.generations x search.offspring``
trials, as aging evolution's; a milestone (grid, TensorBoard, best/) closes
every ``search.population`` of them.
"""

from __future__ import annotations

import math
from typing import Any

from gan_nas.policy import Action, Policy, finite_float
from gan_nas.selection import fitness_of
from gan_nas.strategy import AskContext, Milestone, Record, Strategy, need, need_ids, state_error
from gan_nas.trial import Proposal, derived_seed

FAILED_PENALTY = math.log(2.0)  # a failed trial's reward: this far below the worst reward so far


class Rewards:
    """``-log(FID)`` of finished trials, and what a trial without a finite FID earns."""

    def __init__(self) -> None:
        self.worst: float | None = None

    def __call__(self, record: Record) -> float | None:
        """The reward; None for a failure before any success, which has no scale to be placed on (FIDs
        of one feature network may be all near 10 or all near 1,000): it teaches nothing."""
        fid = fitness_of(record)
        if record.get("status") == "ok" and math.isfinite(fid) and fid > 0:
            reward = -math.log(fid)
            self.worst = reward if self.worst is None else min(self.worst, reward)
            return reward
        return None if self.worst is None else self.worst - FAILED_PENALTY


class PolicySampler:
    """New genomes from a :class:`Policy` that learns from their rewards: shared by ``rl`` and by
    ``halving`` with ``sampler = "rl"``. Remembers the decisions of each trial until it is told."""

    def __init__(self, cfg, space, shape) -> None:
        self.policy = Policy(space, shape, cfg.rl.learning_rate, cfg.rl.baseline_decay)
        self.rewards = Rewards()
        self.actions: dict[str, Action] = {}  # issued trial id -> the decisions it used

    def genome(self, cid: str, rng) -> dict[str, Any]:
        genome, used = self.policy.genome(self.policy.sample(rng))
        self.actions[cid] = used
        return genome.to_dict()

    def tell(self, record: Record) -> None:
        action = self.actions.pop(record["id"], None)
        reward = self.rewards(record)
        if action is not None and reward is not None:
            self.policy.update(action, reward)

    def state_dict(self) -> dict[str, Any]:
        return {"policy": self.policy.state_dict(), "worst_reward": self.rewards.worst,
                "actions": {k: dict(v) for k, v in self.actions.items()}}

    def load_state_dict(self, state: dict[str, Any], where: str) -> None:
        why = self.policy.load_state_dict(state.get("policy"))
        if why is not None:
            raise state_error(where, "policy", why)
        worst = state.get("worst_reward")
        if worst is not None and finite_float(worst) is None:
            raise state_error(where, "worst_reward", "must be a finite number or null")
        self.rewards.worst = None if worst is None else finite_float(worst)
        actions = need(state, "actions", dict, where)
        for cid, action in actions.items():
            if not isinstance(action, dict) or not all(
                    name in self.policy.options and isinstance(k, int) and not isinstance(k, bool)
                    and 0 <= k < len(self.policy.options[name]) for name, k in action.items()):
                raise state_error(where, "actions", f"holds malformed decisions for {cid!r}")
        self.actions = {k: dict(v) for k, v in actions.items()}


class ReinforceSearch(Strategy):
    """See the module docstring. State: the policy (logits, baseline), the issued trial ids, the
    decisions of those not yet told, the count told, and the random generator."""

    name = "rl"
    kind = "policy"

    def __init__(self, cfg, space, shape, history) -> None:
        super().__init__(cfg, space, shape, history)
        self.sampler = PolicySampler(cfg, space, shape)
        self.issued: list[str] = []
        self.told = 0

    def ask(self, ctx: AskContext) -> list[Proposal]:
        proposals = []
        while len(proposals) < max(ctx.free, 0) and len(self.issued) < self.total:
            k, cid = len(self.issued), ctx.new_id()
            proposals.append(Proposal(id=cid, genome=self.sampler.genome(cid, self.rng), kind=self.kind, parents=(),
                                      steps=self.cfg.training.steps, seed=derived_seed(self.cfg.run.seed, "rl", k),
                                      generation=k // self.cfg.search.population))
            self.issued.append(cid)
        return proposals

    def tell(self, record: Record) -> Milestone | None:
        self.sampler.tell(record)
        self.told += 1
        p = self.cfg.search.population
        if self.told % p == 0 or self.told == self.total:
            cycle = [self.history[i] for i in self.issued if i in self.history][-p:]
            return Milestone((self.told - 1) // p, sorted(cycle, key=fitness_of))
        return None

    def finished(self) -> bool:
        return self.told >= self.total

    def alive(self) -> set[str]:
        return {i for i in self.issued if i not in self.history}  # trained from scratch: nothing to inherit

    def generations(self) -> int:
        return self.told // self.cfg.search.population

    def progress(self) -> tuple[str, int, int]:
        return ("trials", self.told, self.total)

    def state_dict(self) -> dict[str, Any]:
        return {**self.sampler.state_dict(), "issued": list(self.issued), "told": self.told,
                "rng": self._rng_state()}

    def load_state_dict(self, state: dict[str, Any], where: str, pending: set[str] = frozenset()) -> None:
        self.issued = need_ids(state, "issued", self.history, where, pending)
        self.told = need(state, "told", int, where)
        told = sum(i in self.history and i not in pending for i in self.issued)  # (pending ones: told on resume)
        if self.told != told:
            raise state_error(where, "told", f"is {self.told}, but the journal holds {told} of its trials")
        self.sampler.load_state_dict(state, where)
        self._load_rng(state.get("rng"), where)
