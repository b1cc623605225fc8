"""Trials as state.json keeps them: round trips, paths relative to the run, damage named by field."""

from __future__ import annotations

import pytest

from gan_nas.errors import RunDirError
from gan_nas.trial import Status, Trial, derived_seed


def trial(**changes) -> dict:
    t = Trial(id="c0004", generation=1, kind="child", parents=["c0001"], genome={"g": {}, "d": {}, "t": {}},
              steps=10, seed=derived_seed(3, "child", 1, 0), parent_ckpt=["candidates/c0001"],
              save_to="candidates/c0004").to_dict()
    t.update(changes)
    return t


def test_a_trial_round_trips_and_its_journal_line_keeps_its_seed():
    t = Trial.from_dict(trial(), "state.json: pending[0]")
    assert Trial.from_dict(t.to_dict(), "x") == t
    line = t.record({"status": "ok", "fitness": 12.5, "traceback": "..."})
    assert line["seed"] == t.seed and line["status"] == Status.OK.value and "traceback" not in line
    assert t.record({})["status"] == "failed" and t.record({})["fitness"] is None


def test_paths_of_older_runs_become_relative_to_the_run(tmp_path):
    t = Trial.from_dict(trial(save_to=str(tmp_path / "run" / "candidates" / "c0004"),
                              parent_ckpt=["old/cwd/candidates/c0001"]), "x")
    assert (t.save_to, t.parent_ckpt) == ("candidates/c0004", ["candidates/c0001"])
    assert t.payload(tmp_path / "moved")["save_to"] == str(tmp_path / "moved" / "candidates" / "c0004")


@pytest.mark.parametrize("change, message", [
    ({"id": "../x"}, "pending[0].id is not a candidate id"),
    ({"kind": "mystery"}, "pending[0].kind must be one of"),
    ({"steps": -1}, "pending[0].steps must be between 0 and 2**53"),
    ({"seed": True}, "pending[0].seed must be a int"),
    ({"save_to": "/etc/passwd"}, "is not a checkpoint of this run"),
    ({"max_seconds": float("nan")}, "pending[0].max_seconds must be a positive number of seconds"),
])
def test_a_damaged_trial_is_one_error_naming_its_field(change, message):
    with pytest.raises(RunDirError, match=message.replace("*", r"\*").replace("[", r"\[")) as e:
        Trial.from_dict(trial(**change), "state.json: pending[0]")
    assert "delete state.json and resume" in str(e.value) or "not a checkpoint" in str(e.value)


def test_seeds_derive_from_their_parts_alone():
    assert derived_seed(0, "child", 1, 0) == derived_seed(0, "child", 1, 0)
    assert len({derived_seed(0, "child", 1, k) for k in range(100)}) == 100
    assert 0 <= derived_seed("anything") < 2**31 - 1
