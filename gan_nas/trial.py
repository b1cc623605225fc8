"""Trials: one candidate trained for a number of steps and scored, from proposal to journal line.

The lifecycle of a trial (ARCHITECTURE.md draws it too)::

    proposed   a strategy's :class:`Proposal` (genome, kind, parents, steps, seed key)
    pending    a :class:`Trial`: the scheduler gave it an id and a checkpoint folder and wrote it
               into state.json's ``pending`` before any worker saw it
    running    in an executor
    finished   one journal line (:meth:`Trial.record`): status ok, diverged (NaN/Inf), invalid
               (cannot build) or failed (an error of the candidate)
    alive      a strategy still needs its checkpoint (population, hall of fame, a pending child's parent)
    retired    nothing needs it: its weights are pruned, its journal line stays

Paths in a trial (``parent_ckpt``, ``resume_ckpt``, ``save_to``) are relative to the run
directory, so that state.json stays valid when the run is moved or copied.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gan_nas.errors import RunDirError
from gan_nas.store import MAX_COUNT, RECORD_KINDS, valid_id

CHECKPOINT_ROOTS = ("candidates",)  # where a trial's checkpoint paths may point, within the run directory


class Status(str, enum.Enum):
    """How a finished trial ended (its journal line's ``status``)."""

    OK = "ok"
    DIVERGED = "diverged"  # a loss or weight went NaN/Inf
    INVALID = "invalid"  # the genome cannot be built
    FAILED = "failed"  # any other error of the candidate (a killed worker, out of memory)


KINDS = RECORD_KINDS  # initial, random, policy, child, continue, final (the journal's readers check them too)


def derived_seed(*parts: Any) -> int:
    """A training seed from ``parts`` alone (run seed, kind, generation, position...): a trial's
    result then does not depend on the order in which trials were given ids or run."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big") % (2**31 - 1)


def lineage_seed(record: dict[str, Any]) -> Any:
    """What the seed of a trial that continues ``record`` derives from: its own seed (journals
    written before trials recorded their seeds: its id)."""
    return record.get("seed", record["id"])


@dataclass(frozen=True)
class Proposal:
    """What a strategy asks to have trained: the scheduler turns it into a :class:`Trial`.

    Attributes:
        id: the trial id the scheduler gave it (:attr:`AskContext.new_id`).
        genome: the genome, as a dict (:meth:`GanGenome.to_dict`).
        kind: one of :data:`KINDS`.
        parents: ids of the trials it descends from (a continuation: the one it continues).
        steps: generator steps to train (the trial's fidelity).
        seed: its training seed (:func:`derived_seed`).
        generation: the strategy's generation (or cycle) it belongs to.
        resume: the id of a trial whose checkpoint it continues (weights and optimizers), if any.
        max_seconds: a cap on its training seconds other than ``training.max_seconds``.
    """

    id: str
    genome: dict[str, Any]
    kind: str
    parents: tuple[str, ...]
    steps: int
    seed: int
    generation: int
    resume: str | None = None
    max_seconds: float | None = None


@dataclass
class Trial:
    """A pending trial: everything a worker needs to train and score it, paths relative to the run."""

    id: str
    generation: int
    kind: str
    parents: list[str]
    genome: dict[str, Any]
    steps: int
    seed: int
    parent_ckpt: list[str] = field(default_factory=list)  # checkpoints it inherits weights from
    resume_ckpt: str | None = None  # the checkpoint it continues from
    save_to: str = ""
    max_seconds: float | None = None

    @classmethod
    def from_proposal(cls, p: Proposal, parent_ckpt: list[str]) -> Trial:
        cid = p.id
        return cls(id=cid, generation=p.generation, kind=p.kind, parents=list(p.parents), genome=p.genome,
                   steps=p.steps, seed=p.seed, parent_ckpt=parent_ckpt,
                   resume_ckpt=f"candidates/{p.resume}" if p.resume else None, save_to=f"candidates/{cid}",
                   max_seconds=p.max_seconds)

    def to_dict(self) -> dict[str, Any]:
        d = {"id": self.id, "generation": self.generation, "kind": self.kind, "parents": list(self.parents),
             "genome": self.genome, "steps": self.steps, "seed": self.seed, "parent_ckpt": list(self.parent_ckpt),
             "resume_ckpt": self.resume_ckpt, "save_to": self.save_to}
        if self.max_seconds is not None:
            d["max_seconds"] = self.max_seconds
        return d

    def payload(self, root: str | Path) -> dict[str, Any]:
        """The trial as a worker gets it: checkpoint paths absolute (a Ray node's working folder need
        not be the search's)."""
        import os

        def absolute(rel: str) -> str:
            return os.path.join(os.path.abspath(root), rel)

        return {**self.to_dict(), "parent_ckpt": [absolute(p) for p in self.parent_ckpt],
                "resume_ckpt": absolute(self.resume_ckpt) if self.resume_ckpt else None,
                "save_to": absolute(self.save_to)}

    def record(self, result: dict[str, Any]) -> dict[str, Any]:
        """The journal line of this trial finished with ``result`` (a worker's plain dict)."""
        record: dict[str, Any] = {"id": self.id, "generation": self.generation, "kind": self.kind,
                                  "parents": list(self.parents), "genome": self.genome, "steps": self.steps,
                                  "seed": self.seed}
        record.update({k: v for k, v in result.items() if k not in ("traceback", "error_type")})
        record["status"] = Status(record.get("status", Status.FAILED.value)).value
        record.setdefault("fitness", None)
        record.setdefault("params", {"g": 0, "d": 0})
        record.setdefault("seconds", {})
        record.setdefault("total_steps", record.get("steps", 0))
        return record

    @classmethod
    def from_dict(cls, d: Any, where: str) -> Trial:
        """A trial read back from state.json; RunDirError naming ``where`` and the field if malformed.

        Checkpoint paths written by older runs (absolute, or relative to the folder the search ran
        in) are made relative to the run directory: their last two parts name the checkpoint.
        """
        def bad(name: str, why: str) -> RunDirError:
            return RunDirError(f"{where}.{name} {why}; delete state.json and resume: the search rebuilds it "
                               f"from the journal")

        if not isinstance(d, dict):
            raise RunDirError(f"{where} must be a JSON dict, got {json.dumps(d)[:40]}; delete state.json and "
                              f"resume: the search rebuilds it from the journal")
        fields: dict[str, type | tuple[type, ...]] = {
            "id": str, "generation": int, "kind": str, "parents": list, "genome": dict, "steps": int, "seed": int,
            "parent_ckpt": list, "resume_ckpt": (str, type(None)), "save_to": str}
        for name, types in fields.items():
            v = d.get(name)
            if isinstance(v, bool) or not isinstance(v, types):
                names = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
                raise bad(name, "is missing" if v is None and name in ("id", "genome") or name not in d
                          else f"must be a {names}, got {json.dumps(v)[:40]}")
        for name in ("generation", "steps", "seed"):
            if not 0 <= d[name] <= MAX_COUNT:
                raise bad(name, "must be between 0 and 2**53")
        if not valid_id(d["id"]):
            raise bad("id", f"is not a candidate id: {d['id']!r}")
        if d["kind"] not in KINDS:
            raise bad("kind", f"must be one of {', '.join(KINDS)}, got {d['kind']!r}")
        if not all(valid_id(p) for p in d["parents"]):
            raise bad("parents", "must be a list of candidate ids")
        max_seconds = d.get("max_seconds")
        if max_seconds is not None and (isinstance(max_seconds, bool) or not isinstance(max_seconds, (int, float))
                                        or not 0 < max_seconds < math.inf):
            raise bad("max_seconds", "must be a positive number of seconds")
        return cls(id=d["id"], generation=d["generation"], kind=d["kind"], parents=list(d["parents"]),
                   genome=d["genome"], steps=d["steps"], seed=d["seed"],
                   parent_ckpt=[run_relative(p, f"{where}.parent_ckpt") for p in d["parent_ckpt"]],
                   resume_ckpt=(run_relative(d["resume_ckpt"], f"{where}.resume_ckpt")
                                if d["resume_ckpt"] is not None else None),
                   save_to=run_relative(d["save_to"], f"{where}.save_to"),
                   max_seconds=float(max_seconds) if max_seconds is not None else None)



def run_relative(path: Any, where: str) -> str:
    """A checkpoint path as kept in state.json: ``candidates/ID``.

    Runs made before paths were relative hold them absolute, or relative to the folder the
    search was started from; their last two parts name the checkpoint within the run.
    """
    parts = Path(path).parts if isinstance(path, str) else ()
    if len(parts) < 2 or parts[-2] not in CHECKPOINT_ROOTS or not valid_id(parts[-1]):
        raise RunDirError(f"{where}: {path!r} is not a checkpoint of this run (candidates/ID)")
    return f"{parts[-2]}/{parts[-1]}"
