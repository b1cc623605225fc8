"""Run directory: atomic writes, journal, lock, best/ swap, and every bad input as RunDirError."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from gan_nas import store as store_mod
from gan_nas.baseline import dcgan
from gan_nas.errors import RunDirError
from gan_nas.store import RunStore, is_pid_alive

CONFIG = '{"run": {"seed": 0}}'


@pytest.fixture
def store(tmp_path):
    return RunStore.create(tmp_path / "run", CONFIG)


GENOME = dcgan((28, 28, 1)).to_dict()  # a journal's genomes are checked on reading


def rec(cid: str, **fields) -> dict:
    """A journal record with every field a reader relies on."""
    return {"id": cid, "generation": 0, "kind": "initial", "parents": [], "genome": GENOME, "status": "ok",
            "fitness": 1.0, "params": {"g": 1, "d": 1}, "steps": 1, "seconds": {}, **fields}


def _exited_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def test_create_and_open(tmp_path, store):
    assert sorted(p.name for p in store.root.iterdir()) == ["candidates", "config.json", "samples", "tb"]
    again = RunStore.open(tmp_path / "run")
    assert json.loads(again.config_json()) == json.loads(CONFIG)
    assert again.journal() == [] and again.read_state() is None and again.best_dir() is None
    empty = tmp_path / "empty"
    empty.mkdir()
    RunStore.create(empty, CONFIG)  # an empty directory is fine


def test_create_refuses_a_used_dir(tmp_path, store):
    with pytest.raises(RunDirError, match="already holds a run; use --resume or another --run-dir"):
        RunStore.create(store.root, CONFIG)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("x")
    with pytest.raises(RunDirError, match="is not empty \\(it holds 'notes.txt'\\) and holds no run; choose a new"):
        RunStore.create(other, CONFIG)  # it said "already holds a run; use --resume", which then failed
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirError, match="is a file"):
        RunStore.create(tmp_path / "file", CONFIG)


def test_open_bad_dirs(tmp_path, store):
    with pytest.raises(RunDirError, match="does not exist"):
        RunStore.open(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(RunDirError, match="not a gan-nas run directory: it has no config.json"):
        RunStore.open(tmp_path / "plain")
    (store.root / "config.json").write_text('{"run": ')
    with pytest.raises(RunDirError, match=r"config.json is corrupt"):
        RunStore.open(store.root)
    (store.root / "config.json").write_text("[1, 2]")
    with pytest.raises(RunDirError, match="expected a JSON dict, got list"):
        RunStore.open(store.root)


def test_state_write_is_atomic(store, monkeypatch):
    store.write_state({"generation": 1, "fitness": float("inf")})
    assert store.read_state() == {"generation": 1, "fitness": float("inf")}

    def crash(*args):
        raise OSError("killed mid-write")

    monkeypatch.setattr(store_mod.os, "replace", crash)
    with pytest.raises(OSError, match="killed mid-write"):
        store.write_state({"generation": 2})
    monkeypatch.undo()
    assert store.read_state() == {"generation": 1, "fitness": float("inf")}
    assert sorted(p.name for p in store.root.iterdir()) == ["candidates", "config.json", "samples", "state.json", "tb"]


def test_leftover_temporaries_are_cleaned_when_locked(store):
    leftover = store.root / ".state.json.tmp-123-abcd"
    leftover.write_text('{"half')
    cand = store.candidate_dir("g1-0")
    (cand / ".genome.json.tmp-5-ff").write_text("")
    assert store.read_state() is None  # readers ignore temporaries
    with store.locked():
        assert not leftover.exists() and list(cand.iterdir()) == []


def test_corrupt_state(store):
    (store.root / "state.json").write_text("{not json")
    with pytest.raises(RunDirError, match="state.json is corrupt"):
        store.read_state()


def test_journal_round_trip(store):
    records = [rec(f"g0-{i}", fitness=10.0 - i, metrics={"fid": 1.5}) for i in range(3)]
    records.append(rec("g0-3", status="failed", fitness=float("inf")))
    for r in records:
        store.append(r)
    assert store.journal() == records
    assert store.journal_path.read_bytes().count(b"\n") == 4


def test_journal_line_without_final_newline_is_kept_apart(store):
    store.append(rec("a"))
    store.journal_path.write_bytes(store.journal_path.read_bytes().rstrip(b"\n"))  # hand-edited
    assert store.journal() == [rec("a")]
    with store.locked():  # a complete last line is kept by the writer, only its newline is added
        store.append(rec("b"))
    assert store.journal() == [rec("a"), rec("b")]


def test_journal_corrupt_middle_line(store):
    store.append(rec("a"))
    with open(store.journal_path, "a") as f:
        f.write("{oops\n")
    store.append(rec("c"))
    with pytest.raises(RunDirError, match=r"journal.jsonl:2: corrupt journal line \(.*\); repair or delete"):
        store.journal()


def test_a_damaged_run_is_refused_before_its_temporaries_and_best_swap_are_touched(store):
    store.append(rec("a"))
    store.journal_path.write_text("{oops\n" + store.journal_path.read_text())  # damaged before the end
    tmp = store.root / ".state.json.tmp-1-abcd"  # what a crash mid-write leaves, and the next lock removes
    tmp.write_text("")
    (store.root / "best.tmp").mkdir()  # an interrupted best/ swap, which the next lock finishes
    (store.root / "best.tmp" / "genome.json").write_text("{}")
    with pytest.raises(RunDirError, match="journal.jsonl:1: corrupt journal line"):
        store.lock()
    assert tmp.exists() and (store.root / "best.tmp" / "genome.json").exists()
    assert not (store.root / "lock").exists()


def test_journal_non_object_line(store):
    store.journal_path.write_text(json.dumps(rec("a")) + '\n[1, 2]\n')
    with pytest.raises(RunDirError, match=r"journal.jsonl:2: corrupt journal line \(a JSON list, not an object\)"):
        store.journal()


def test_journal_torn_last_line_is_dropped_with_a_warning_and_cut_by_the_next_writer(store, capsys):
    store.append(rec("a"))
    store.append(rec("b"))
    data = store.journal_path.read_bytes()
    store.journal_path.write_bytes(data[:-10])  # a crash in the middle of the second line's write
    assert store.journal() == [rec("a")]
    assert "journal.jsonl:2: ignoring a cut-off last journal line" in capsys.readouterr().err
    assert store.journal_path.read_bytes() == data[:-10]  # a reader changes nothing
    with store.locked():
        assert store.journal_path.read_bytes() == data[: data.index(b"\n") + 1]  # the writer cuts it
        store.append(rec("c"))
    assert [r["id"] for r in store.journal()] == ["a", "c"]


@pytest.mark.parametrize("line, message", [
    ('{"foo": 1}', "field 'id' is missing"),
    (json.dumps(rec("x", generation="x")), "field 'generation' must be a JSON number, got \"x\""),
    (json.dumps(rec("x", generation=True)), "field 'generation' must be a JSON number"),
    (json.dumps(rec("x", generation=-1)), "field 'generation' must be between 0 and 2**53, got -1"),
    (json.dumps(rec("x", steps=10**300)), "field 'steps' must be between 0 and 2**53"),
    (json.dumps(rec("x", seconds={"total": "a"})), "field 'seconds.total' must be a non-negative number"),
    (json.dumps(rec("x", seconds={"train": -1.0})), "field 'seconds.train' must be a non-negative number"),
    ('{"id": "x", "generation": ' + "9" * 5000 + "}", "corrupt journal line (Exceeds the limit"),
    ("[" * 100_000 + "]" * 100_000, "corrupt journal line (JSON nested too deeply)"),
    (json.dumps(rec("../x")), "field 'id' is not a candidate id"),
    (json.dumps(rec("x", status="great")), "field 'status' must be one of ok, invalid, diverged, failed"),
    (json.dumps(rec("x", parents=[1])), "field 'parents' must be a list of candidate ids"),
    (json.dumps(rec("x", fitness="low")), "field 'fitness' must be a number or null"),
    (json.dumps(rec("x", seconds=3)), "field 'seconds' must be a JSON dict"),
    (json.dumps(rec("x", genome={})), "field 'genome' is not a genome (genome is missing the field 'generator')"),
    (json.dumps(rec("x", params={"g": "abc", "d": 1})), "field 'params.g' must be a whole number of parameters"),
    (json.dumps(rec("x", metrics="abc")), "field 'metrics' must be a JSON dict"),
    (json.dumps(rec("x", metrics={"fid": "low"})), "field 'metrics.fid' must be a number or null"),
    (json.dumps(rec("x", total_steps=[3])), "field 'total_steps' must be between 0 and 2**53"),
    (json.dumps(rec("a")), "'a' is journaled twice"),
    (json.dumps(rec("x", kind="mutant")), "field 'kind' must be one of initial, random, policy, child, continue, final"),
    (json.dumps(rec("x", parents=["zz"])), "field 'parents' names 'zz', which no earlier journal line holds"),
])
def test_journal_malformed_record_names_line_and_field(store, line, message):
    store.append(rec("a"))
    with open(store.journal_path, "a") as f:
        f.write(line + "\n")
    with pytest.raises(RunDirError, match=r"journal.jsonl:2: .*" + re.escape(message)):
        store.journal()


def _task(cid: str, **fields) -> dict:
    """A pending task of a search's state.json."""
    return {"id": cid, "generation": 1, "kind": "child", "parents": ["c0000"], "genome": GENOME, "steps": 4,
            "seed": 1, "parent_ckpt": ["candidates/c0000"], "resume_ckpt": None, "save_to": f"candidates/{cid}",
            **fields}


@pytest.mark.parametrize("state, message", [
    ({"next_id": 5, "pending": [_task("../x")]}, "field 'pending.id' is not a candidate id: \"../x\""),
    ({"next_id": 5, "pending": [_task("c0004"), _task("c0004")]}, "field 'pending.id' 'c0004' is pending twice"),
    ({"next_id": 1, "pending": [_task("c0004")]}, "field 'next_id' is 1, but task c0004 is pending"),
    ({"next_id": 5, "pending": [_task("c0004", kind="alien")]}, "field 'pending.kind' must be one of initial"),
    ({"next_id": 5, "pending": [], "final": {"task": _task("a/b")}}, "field 'final.task.id' is not a candidate id"),
    ({"next_id": 5, "pending": [], "done": "yes"}, "field 'done' must be true or false, got \"yes\""),
    ({"next_id": 5, "pending": [], "stopped": {"a": 1}}, "field 'stopped' must be null or a reason"),
])
def test_state_tasks_that_would_be_journaled_broken_are_refused(store, state, message):
    """A pending id "../x" was trained and journaled, after which no command could read the journal;
    next_id behind the pending ids made a generation reuse other candidates' records; done "yes" ended it."""
    (store.root / "state.json").write_text(json.dumps({"generation": 1, **state}))
    with pytest.raises(RunDirError, match=re.escape(message)):
        store.read_state()
    with pytest.raises(RunDirError, match=re.escape(message)):  # refused before the lock changes anything
        store.lock()
    assert not (store.root / "lock").exists()


def test_a_pending_task_of_no_genome_or_more_steps_than_the_config_gives_is_refused(tmp_path):
    """steps 10**12 trained without end (training.max_seconds 0); a genome of {"x": 1} was trained, then
    refused by the journal."""
    store = RunStore.create(tmp_path / "run", json.dumps({"training": {"steps": 4, "survivor_steps": 2}}))
    state = {"generation": 1, "next_id": 5}
    (store.root / "state.json").write_text(json.dumps({**state, "pending": [_task("c0004", steps=10**12)]}))
    with pytest.raises(RunDirError, match=re.escape("field 'pending.steps' is 1000000000000, more than the 4 the "
                                                    "run's config gives a task")):
        store.read_state()
    (store.root / "state.json").write_text(json.dumps({**state, "pending": [_task("c0004", genome={"x": 1})]}))
    with pytest.raises(RunDirError, match="field 'pending.genome' is not a genome"):
        store.read_state()
    (store.root / "state.json").write_text(json.dumps({**state, "pending": [_task("c0004", steps=4)]}))
    assert store.read_state()["pending"][0]["steps"] == 4


def test_a_pending_promotion_of_halving_may_train_up_to_its_top_rung(tmp_path):
    config = {"training": {"steps": 300, "survivor_steps": 0}, "search": {"strategy": "halving"},
              "halving": {"min_steps": 100, "max_steps": 2700}}
    store = RunStore.create(tmp_path / "run", json.dumps(config))
    state = {"generation": 1, "next_id": 5}
    (store.root / "state.json").write_text(json.dumps({**state, "pending": [_task("c0004", steps=1800)]}))
    assert store.read_state()["pending"][0]["steps"] == 1800  # 900 -> 2700: more than training.steps
    (store.root / "state.json").write_text(json.dumps({**state, "pending": [_task("c0004", steps=2701)]}))
    with pytest.raises(RunDirError, match="more than the 2,700 the run's config gives a task"):
        store.read_state()
    # with a leader's share, the leader goes on past the top rung, 2,700 x (eta - 1) steps at a time
    config["halving"].update({"eta": 3, "leader_share": 0.5})
    store = RunStore.create(tmp_path / "leader", json.dumps(config))
    (store.root / "state.json").write_text(json.dumps({**state, "pending": [_task("c0004", steps=5400)]}))
    assert store.read_state()["pending"][0]["steps"] == 5400
    (store.root / "state.json").write_text(json.dumps({**state, "pending": [_task("c0004", steps=5401)]}))
    with pytest.raises(RunDirError, match="more than the 5,400 the run's config gives a task"):
        store.read_state()
    # a config.json whose rungs would never end (edited by hand) leaves the steps unchecked, not hung
    for bad in ({"eta": 1}, {"min_steps": 0}, {"eta": "3"}):
        config["halving"].update({"min_steps": 100, "eta": 3, **bad})
        store = RunStore.create(tmp_path / f"bad-{len(list(tmp_path.iterdir()))}", json.dumps(config))
        (store.root / "state.json").write_text(json.dumps({**state, "pending": [_task("c0004", steps=5401)]}))
        assert store.read_state()["pending"][0]["steps"] == 5401


def test_a_baseline_state_is_not_a_search_state(store):
    (store.root / "state.json").write_text(json.dumps({"baseline": True, "done": False, "steps": 4}))
    assert store.read_state()["steps"] == 4


def test_a_record_no_reader_would_take_is_never_appended(store):
    store.append(rec("a"))
    before = store.journal_path.read_bytes()
    for bad in (rec("../x"), rec("b", fitness=float("nan")), rec("b", generation="1")):
        with pytest.raises(RunDirError, match="the record to append"):
            store.append(bad)
    assert store.journal_path.read_bytes() == before


def test_a_fitness_of_minus_infinity_is_damage(store):
    """-Infinity in a hand-edited line made that candidate the best for good (and published it to best/)."""
    store.append(rec("a"))
    with open(store.journal_path, "a") as f:
        f.write(json.dumps(rec("b", fitness=float("-inf"))) + "\n")
    with pytest.raises(RunDirError, match=r"journal.jsonl:2: field 'fitness' must be a number or null, got -Infinity"):
        store.journal()


@pytest.mark.parametrize("name", ["samples", "tb", "best", "best.tmp", "candidates"])
def test_a_run_folder_that_is_a_file_is_refused_before_the_search_starts(store, name):
    """Found at a generation's end, after training: tb/ a file was a TensorFlow traceback, the others an
    error with the generation journaled."""
    if (store.root / name).is_dir():
        shutil.rmtree(store.root / name)
    (store.root / name).write_text("mine")
    with pytest.raises(RunDirError, match=re.escape(f"{store.root / name} is a file, where the run keeps a folder")):
        store.lock()
    assert (store.root / name).read_text() == "mine" and not (store.root / "lock").exists()
    (store.root / name).unlink()
    os.symlink(store.root / "nowhere", store.root / name)
    with pytest.raises(RunDirError, match="is a broken link, where the run keeps a folder"):
        store.lock()


def test_is_pid_alive():
    assert is_pid_alive(os.getpid())
    assert not is_pid_alive(_exited_pid())
    assert not is_pid_alive(0) and not is_pid_alive(-1)


def test_lock_held_by_live_process(store):
    code = ("import sys, time; from gan_nas.store import RunStore; s = RunStore.open(sys.argv[1]); s.lock(); "
            "print('locked', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(store.root)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunDirError, match=rf"locked by pid {holder.pid} on .* \(started .*\); another search"):
            store.lock()
    finally:
        holder.kill()
        holder.wait()
    store.lock()  # the holder died: its lock is stale now


def test_lock_in_this_process_and_unlock(tmp_path, store):
    with store.locked():
        store.lock()  # re-entrant for the same store
        info = json.loads((store.root / "lock").read_text())
        assert info["pid"] == os.getpid() and info["host"] and info["started"]
        with pytest.raises(RunDirError, match=f"locked by pid {os.getpid()}"):
            RunStore.open(store.root).lock()
    assert not (store.root / "lock").exists()


def test_stale_lock_is_reported_and_taken_over(store, capsys):
    dead = _exited_pid()
    store.lock()
    info = json.loads((store.root / "lock").read_text())
    store._lock_token = None  # forget it, as a killed process would
    (store.root / "lock").write_text(json.dumps({**info, "pid": dead, "proc_start": None, "token": "old"}))
    other = RunStore.open(store.root)
    other.lock()
    assert f"warning: removing stale lock left by dead pid {dead}" in capsys.readouterr().err
    assert json.loads((store.root / "lock").read_text())["token"] == other._lock_token
    other.unlock()


def test_lock_with_reused_pid_is_stale(store, capsys):
    store.lock()
    info = json.loads((store.root / "lock").read_text())
    if info["proc_start"] is None:
        pytest.skip("no /proc on this system")
    store._lock_token = None
    (store.root / "lock").write_text(json.dumps({**info, "proc_start": info["proc_start"] - 1, "token": "old"}))
    RunStore.open(store.root).lock()
    assert f"stale lock left by dead pid {os.getpid()}" in capsys.readouterr().err


def test_torn_lock_file_is_taken_over(store, capsys):
    (store.root / "lock").write_text('{"pid": 12')
    store.lock()
    assert "removing unreadable lock file" in capsys.readouterr().err


def test_racing_for_a_stale_lock_has_one_winner(store):
    (store.root / "lock").write_text(json.dumps({"pid": _exited_pid(), "host": os.uname().nodename,
                                                  "started": "then", "token": "old"}))
    code = ("import sys, time; from gan_nas.store import RunStore; from gan_nas.errors import RunDirError\n"
            "s = RunStore.open(sys.argv[1]); time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
            "try:\n    s.lock(); print('won', flush=True); time.sleep(1.5)\n"
            "except RunDirError:\n    print('lost', flush=True)\n")
    start = str(time.time() + 1.0)
    procs = [subprocess.Popen([sys.executable, "-c", code, str(store.root), start], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True) for _ in range(3)]
    outcomes = sorted(p.communicate(timeout=30)[0].strip() for p in procs)
    assert outcomes == ["lost", "lost", "won"]


def test_candidate_dir(store):
    d = store.candidate_dir("g2-5")
    assert d.is_dir() and d == store.root / "candidates" / "g2-5"
    store.write_json_atomic(d / "genome.json", {"layers": []})
    assert store.read_json(d / "genome.json") == {"layers": []}
    assert store.candidate_dir("g2-5", create=False) == d
    with pytest.raises(RunDirError, match="has no candidate 'nope'"):
        store.candidate_dir("nope", create=False)
    for bad in ("", "..", "a/b", ".hidden"):
        with pytest.raises(RunDirError, match="is not valid"):
            store.candidate_dir(bad)


def _fill(tag):
    def fill(d):
        (d / "genome.json").write_text(json.dumps({"tag": tag}))
        (d / "generator.keras").write_bytes(tag.encode() * 100)
    return fill


def test_publish_best_replaces_atomically(store):
    store.publish_best(_fill("one"))
    store.publish_best(_fill("two"))
    best = store.best_dir()
    assert best == store.root / "best" and json.loads((best / "genome.json").read_text()) == {"tag": "two"}

    def broken(d):
        _fill("three")(d)
        raise RuntimeError("export failed")

    with pytest.raises(RuntimeError):
        store.publish_best(broken)
    assert json.loads((store.best_dir() / "genome.json").read_text()) == {"tag": "two"}
    assert sorted(p.name for p in store.root.iterdir() if p.name.startswith("best")) == ["best"]


def test_publish_best_recovers_from_a_crash_between_renames(store, monkeypatch):
    store.publish_best(_fill("one"))
    real_rename = os.rename

    def crash_on_second(src, dst):
        if str(src).endswith("best.tmp"):
            raise KeyboardInterrupt  # killed right after best/ moved aside
        real_rename(src, dst)

    monkeypatch.setattr(store_mod.os, "rename", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        store.publish_best(_fill("two"))
    monkeypatch.undo()
    assert not (store.root / "best").exists()
    assert json.loads((store.best_dir() / "genome.json").read_text()) == {"tag": "two"}  # readers see the new one
    with RunStore.open(store.root).locked():  # the next writer finishes the swap
        assert sorted(p.name for p in store.root.iterdir() if p.name.startswith("best")) == ["best"]
        assert json.loads((store.root / "best" / "genome.json").read_text()) == {"tag": "two"}


# --- files that are not what they claim to be (the battery's unbounded reads, hangs and tracebacks) ---------


@pytest.mark.parametrize("name", ["journal.jsonl", "state.json", "config.json"])
@pytest.mark.parametrize("kind", ["dev_zero", "fifo", "directory"])
def test_run_files_that_are_devices_fifos_or_directories_are_refused_without_reading(store, name, kind):
    path = store.root / name
    path.unlink(missing_ok=True)
    if kind == "dev_zero":
        path.symlink_to("/dev/zero")  # read whole, this never ends
    elif kind == "fifo":
        os.mkfifo(path)  # opened for reading, this waits for a writer forever
    else:
        path.mkdir()
    expected = {"dev_zero": "a device", "fifo": r"a FIFO \(named pipe\)", "directory": "a directory"}[kind]
    with pytest.raises(RunDirError, match=rf"{name} cannot be read: {expected}, not a regular file"):
        if name == "config.json":
            RunStore.open(store.root)
        elif name == "state.json":
            store.read_state()
        else:
            store.journal()


def test_a_journal_that_cannot_be_read_leaves_no_lock(store):
    store.journal_path.mkdir()
    with pytest.raises(RunDirError, match="journal.jsonl cannot be read: a directory"):
        store.lock()
    assert not (store.root / "lock").exists()
    assert store._lock_token is None


def test_torn_tail_is_kept_when_the_journal_is_damaged_elsewhere(store):
    """A resume refused for damage on line 1 must not first cut the torn last line: nothing is lost."""
    store.append(rec("a"))
    store.append(rec("b"))
    data = store.journal_path.read_bytes()
    damaged = data.replace(b'"generation": 0', b'"generation": "x"', 1)[:-10]  # line 1 damaged, line 2 torn
    store.journal_path.write_bytes(damaged)
    with pytest.raises(RunDirError, match=r"journal.jsonl:1: field 'generation'"):
        store.lock()
    assert store.journal_path.read_bytes() == damaged
    assert not (store.root / "lock").exists()


def test_deeply_nested_or_huge_numbers_in_json_files_are_corrupt_not_a_crash(store):
    (store.root / "state.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(RunDirError, match="state.json is corrupt .*nested too deeply.*delete it and resume"):
        store.read_state()
    (store.root / "state.json").write_text('{"generation": ' + "9" * 5000 + "}")
    with pytest.raises(RunDirError, match="state.json is corrupt .*4300 digits"):
        store.read_state()


@pytest.mark.parametrize("make, message", [
    (lambda p: p.mkdir(), "is not a regular file, not a lock gan-nas wrote"),
    (lambda p: p.symlink_to(p.parent / "nowhere"), "is a symbolic link, not a lock gan-nas wrote"),
])
def test_a_lock_path_gan_nas_did_not_write_is_refused_and_kept(store, make, message):
    make(store.root / "lock")
    with pytest.raises(RunDirError, match=message):
        store.lock()
    assert os.path.lexists(store.root / "lock")  # the user's thing, not ours to delete


@pytest.mark.parametrize("pid", [10**30, -5, "x", 0])
def test_a_lock_with_an_impossible_pid_is_taken_over_as_unreadable(store, capsys, pid):
    (store.root / "lock").write_text(json.dumps({"pid": pid, "host": os.uname().nodename, "token": "old"}))
    store.lock()
    assert "removing unreadable lock file" in capsys.readouterr().err
    store.unlock()


@pytest.mark.parametrize("where", ["under_a_file", "proc"])
def test_a_run_dir_that_cannot_be_created_is_a_run_dir_error(tmp_path, where):
    if where == "under_a_file":
        (tmp_path / "afile").write_text("x")
        target = tmp_path / "afile" / "sub"
    else:
        target = "/proc/gan-nas-run"
    with pytest.raises(RunDirError, match="cannot be created: .*; choose another --run-dir"):
        RunStore.create(target, CONFIG)
