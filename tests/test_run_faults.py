"""A search under faults and bad input: moved runs, signals, damaged run directories, impossible configs.

Each bad input ends in exit 2 with one ``error:`` line, creates nothing, and
leaves an existing run directory as it was; each fault (a signal, a torn
journal line, a copy of the run) loses nothing finished.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import test_search
from test_search import best_of, env, write_config

from gan_nas import cli, evaluation, interrupt, scheduler
from gan_nas.outputs import Outputs

fixture_dir = test_search.fixture_dir  # the module-scoped bars dataset and classifier cache


@pytest.fixture(autouse=True)
def _cache(fixture_dir, monkeypatch):
    monkeypatch.setenv("GAN_NAS_CACHE", str(fixture_dir / "cache"))


def one_error(code: int, err: str, *needles: str) -> None:
    """Exit 2 and one ``error:`` line, the last (a search's progress lines for its candidates may come before)."""
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2, err
    assert lines and lines[-1].startswith("error: ") and sum("error" in line for line in lines) == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[-1], lines[-1]


def search(cfgp: Path, run: Path, *extra: str) -> int:
    return cli.main(["search", "--config", str(cfgp), "--run-dir", str(run), "--quiet", *extra])


def resume(run: Path | str, *extra: str) -> int:
    return cli.main(["search", "--resume", "--run-dir", str(run), "--quiet", *extra])


def journal_ids(run: Path) -> list[str]:
    return [json.loads(line)["id"] for line in (run / "journal.jsonl").read_text().splitlines() if line.strip()]


def stopped_run(cfgp: Path, run: Path, monkeypatch) -> Path:
    """``run``, a search stopped (exit 130) right after c0002 was journaled, with generation 1 pending."""
    with monkeypatch.context() as m:
        stop_after(m, "c0002")
        assert search(cfgp, run) == 130
    return run


def stop_after(monkeypatch, cid: str) -> None:
    """Make the search stop (as a crash would) right after ``cid`` is journaled: its state.json then
    holds generation 1's pending tasks, with their checkpoint paths."""
    real = Outputs.log

    def log(self, line: str) -> None:
        real(self, line)
        if line.startswith(cid + " "):
            raise KeyboardInterrupt

    monkeypatch.setattr(Outputs, "log", log)


# --- a run directory can be moved, copied and resumed from anywhere ------------------------


def test_a_copied_run_resumes_into_itself_and_leaves_the_original_alone(fixture_dir, tmp_path, monkeypatch):
    cfgp = write_config(fixture_dir, "copy", generations=1, survivor=2)
    whole = tmp_path / "whole"
    assert search(cfgp, whole) == 0
    run = tmp_path / "run"
    with monkeypatch.context() as m:
        stop_after(m, "c0002")  # the first child of generation 1
        assert search(cfgp, run) == 130
    state = json.loads((run / "state.json").read_text())
    assert all(not os.path.isabs(t["save_to"]) and t["save_to"].startswith("candidates/") for t in state["pending"])
    assert all(not os.path.isabs(p) for t in state["pending"] for p in t["parent_ckpt"])
    before = sorted(p.relative_to(run).as_posix() for p in run.rglob("*"))
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(run, copy, symlinks=True)
    shutil.rmtree(run / "candidates" / "c0003")  # the original cannot be written to: its c0003 vanished
    (run / "candidates" / "c0003").write_text("not a folder")
    assert resume(copy) == 0
    assert journal_ids(copy) == journal_ids(whole)
    assert best_of(copy)[:2] == best_of(whole)[:2]  # deterministic training: the same result as unbroken
    (run / "candidates" / "c0003").unlink()
    assert sorted(p.relative_to(run).as_posix() for p in run.rglob("*")) == \
        sorted(set(before) - {"candidates/c0003"})


def test_a_relative_run_dir_resumes_from_another_folder(fixture_dir, tmp_path, monkeypatch):
    cfgp = write_config(fixture_dir, "rel", generations=1)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    with monkeypatch.context() as m:
        stop_after(m, "c0002")
        assert search(cfgp, Path("run")) == 130
    monkeypatch.chdir(tmp_path / "b")
    assert resume("../a/run") == 0
    run = tmp_path / "a" / "run"
    records = [json.loads(line) for line in (run / "journal.jsonl").read_text().splitlines()]
    assert [r["status"] for r in records] == ["ok"] * 4
    assert not (tmp_path / "b" / "run").exists()


def test_state_written_with_absolute_paths_by_an_older_version_resumes_after_a_move(fixture_dir, tmp_path,
                                                                                   monkeypatch):
    cfgp = write_config(fixture_dir, "old", generations=1)
    run = stopped_run(cfgp, tmp_path / "old-place", monkeypatch)
    state = json.loads((run / "state.json").read_text())
    for t in state["pending"]:  # as versions before this one wrote them
        t["save_to"] = str(run / t["save_to"])
        t["parent_ckpt"] = [str(run / p) for p in t["parent_ckpt"]]
    (run / "state.json").write_text(json.dumps(state))
    moved = tmp_path / "new-place"
    run.rename(moved)
    assert resume(moved) == 0
    assert journal_ids(moved) == ["c0000", "c0001", "c0002", "c0003"]
    assert not run.exists()


# --- signals -------------------------------------------------------------------------------


class _SignalInDel:
    """Sends this process SIGINT from ``__del__``, where an exception is printed and swallowed, as
    when Ctrl-C lands while TensorFlow finalises a function."""

    def __del__(self) -> None:
        signal.raise_signal(signal.SIGINT)


def test_ctrl_c_as_a_candidate_ends_stops_the_search(fixture_dir, tmp_path, monkeypatch, capsys):
    cfgp = write_config(fixture_dir, "sigint", generations=1)
    real = evaluation.evaluate_task

    def evaluate(task):
        result = real(task)
        if task["id"] == "c0001":
            _SignalInDel()  # dropped at once: __del__ runs here
        return result

    monkeypatch.setattr(scheduler, "evaluate_task", evaluate)
    run = tmp_path / "run"
    assert search(cfgp, run) == 130
    err = capsys.readouterr().err
    assert "stopping at the next safe point" in err and "error: interrupted by SIGINT" in err
    assert journal_ids(run) == ["c0000", "c0001"]  # what finished is journaled, nothing after it ran
    assert not (run / "lock").exists()
    monkeypatch.undo()
    assert resume(run) == 0
    assert journal_ids(run) == ["c0000", "c0001", "c0002", "c0003"]


def test_a_stop_request_is_acted_on_inside_a_candidate(fixture_dir, tmp_path, monkeypatch):
    cfgp = write_config(fixture_dir, "inside", generations=1)
    real_check, calls = interrupt.check, [0]

    def check():  # SIGTERM arrives during the first candidate's training
        calls[0] += 1
        if calls[0] == 2:
            signal.raise_signal(signal.SIGTERM)
        real_check()

    monkeypatch.setattr(interrupt, "check", check)
    run = tmp_path / "run"
    assert search(cfgp, run) == 143
    assert not (run / "journal.jsonl").exists() or journal_ids(run) == []
    assert not (run / "lock").exists() and (run / "state.json").is_file()
    monkeypatch.undo()
    assert resume(run) == 0 and len(journal_ids(run)) == 4


@pytest.mark.slow
# Each signal once, each executor once: the handler is one and the same for both signals, and a pair of
# pairs took as long as the rest of the file.
@pytest.mark.parametrize("executor, sig, code", [("serial", signal.SIGINT, 130), ("process", signal.SIGTERM, 143)])
def test_signals_stop_a_search_process_cleanly(fixture_dir, tmp_path, sig, code, executor):
    cfgp = write_config(fixture_dir, f"sig-{executor}", generations=1)
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "gan_nas.cli", "search", "--config", str(cfgp), "--run-dir",
                             str(run), "--set", f"run.executor={executor}", "--set", "run.workers=2",
                             "--set", "training.steps=200", "--quiet"],
                            env=env(fixture_dir), stderr=subprocess.PIPE, text=True)
    try:
        while not (run / "journal.jsonl").exists():  # some work is done, more is running
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.2)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    assert f"error: interrupted by {signal.Signals(sig).name}" in err
    assert not (run / "lock").exists()
    done = journal_ids(run)
    assert done  # the journal kept what finished; resuming redoes only the rest
    assert resume(run, "--set", "run.executor=serial") == 0
    assert journal_ids(run)[: len(done)] == done


# --- bad input creates nothing --------------------------------------------------------------


@pytest.mark.parametrize("setting, message", [
    ("space.latent_sizes=[60000]", "cannot fit the parameter cap"),
    ("data.batch_size=100000000", "data.batch_size = 100,000,000 is larger than the training split (480 images)"),
    ("fitness.n_search=100000000000", "fitness.n_search must be at most 100,000"),
    ("training.max_seconds=nan", "training.max_seconds must be a finite number"),
    ("search.wall_clock_seconds=nan", "search.wall_clock_seconds must be a finite number"),
    ("search.wall_clock_seconds=inf", "search.wall_clock_seconds must be a finite number"),
])
def test_impossible_configs_exit_2_before_creating_the_run(fixture_dir, tmp_path, capsys, setting, message):
    cfgp = write_config(fixture_dir, "bad", generations=1)
    run = tmp_path / "run"
    one_error(search(cfgp, run, "--set", setting), capsys.readouterr().err, message)
    assert not run.exists()
    if setting.startswith("space."):  # a check made after the run directory exists: it was removed, and
        assert search(cfgp, run) == 0  # the corrected command then runs in that place (once is enough)


def test_a_dataset_that_cannot_be_scored_creates_nothing(fixture_dir, tmp_path, capsys):
    x = np.zeros((300, 28, 28, 1), np.uint8)
    np.savez(tmp_path / "one.npz", images=x, labels=np.zeros(300, np.int64))
    cfgp = tmp_path / "one.toml"
    cfgp.write_text(write_config(fixture_dir, "one").read_text().replace(str(fixture_dir / "bars.npz"),
                                                                         str(tmp_path / "one.npz")))
    empty = tmp_path / "given"
    empty.mkdir()
    for run in (tmp_path / "run", empty):  # (under features = "auto" it would be scored self-supervised)
        one_error(search(cfgp, run, "--set", "fitness.features=classifier"), capsys.readouterr().err,
                  "needs at least 2 classes")
    assert not (tmp_path / "run").exists() and list(empty.iterdir()) == []


def test_an_unusable_cache_folder_creates_nothing(fixture_dir, tmp_path, monkeypatch, capsys):
    # it failed only when the feature network was saved, after the run directory had been made
    cache = tmp_path / "cache-is-a-file"
    cache.write_text("")
    monkeypatch.setenv("GAN_NAS_CACHE", str(cache))
    run = tmp_path / "run"
    one_error(search(write_config(fixture_dir, "cache"), run), capsys.readouterr().err,
              f"the cache folder {cache}", "is not usable")
    assert not run.exists()


def test_a_search_whose_first_generation_all_fails_alike_stops_and_removes_its_run(fixture_dir, tmp_path,
                                                                                  monkeypatch, capsys):
    def evaluate(task):
        raise MemoryError("Unable to allocate 11.6 TiB")

    monkeypatch.setattr(scheduler, "evaluate_task", evaluate)
    run = tmp_path / "run"
    one_error(search(write_config(fixture_dir, "oom", generations=2), run), capsys.readouterr().err,
              "every evaluation of generation 0 failed with the same error", "MemoryError: Unable to allocate")
    assert not run.exists()


# --- damaged run directories ----------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(fixture_dir) -> Path:
    run = fixture_dir / "finished"
    with pytest.MonkeyPatch.context() as m:  # built before the function-scoped _cache applies
        m.setenv("GAN_NAS_CACHE", str(fixture_dir / "cache"))
        assert search(write_config(fixture_dir, "fin", generations=1), run) == 0
    return run


def damaged_copy(finished_run: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    return run


def snapshot(d: Path) -> dict[str, bytes]:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("damage, message", [
    (lambda run: open(run / "journal.jsonl", "a").write('{"foo": 1}\n'), "journal.jsonl:5: field 'id' is missing"),
    (lambda run: (run / "state.json").write_text("{}"), "state.json: field 'next_id' is missing"),
    (lambda run: (run / "state.json").write_text("{not json"),
     "state.json is corrupt (Expecting property name enclosed in double quotes: line 1 column 2 (char 1)); "
     "delete it and resume"),
    (lambda run: _edit_strategy(run, population=["c9999"]),
     "field 'population' names 'c9999', which the journal does not hold; delete state.json and resume"),
    (lambda run: _edit_strategy(run, rng="garbage"), "field 'rng' is not a random generator's state"),
    (lambda run: _edit_strategy(run, rng={"bit_generator": "nope"}), "field 'rng' is not a random generator's state"),
    (lambda run: _edit_strategy(run, generation=-2), "field 'generation' must be between 0 and 2**53"),
    (lambda run: _edit_strategy(run, generation=10**100), "field 'generation' must be between 0 and 2**53"),
    (lambda run: _edit_state(run, strategy={"name": "random"}),
     "field 'strategy.name' is 'random', but the run's config names 'evolution'"),
    (lambda run: _edit_rng(run, 10**100), "field 'rng' is not a random generator's state"),
    (lambda run: _edit_state(run, elapsed=-1.0), "field 'elapsed' must be a non-negative number of seconds"),
    (lambda run: _edit_strategy(run, generation=7), "field 'generation' is 7, but the journal ends in generation"),
    (lambda run: (run / "state.json").write_text("[" * 100_000 + "]" * 100_000),
     "state.json is corrupt (JSON nested too deeply); delete it and resume"),
    (lambda run: _edit_journal_seconds(run, {"total": "a"}),
     "journal.jsonl:2: field 'seconds.total' must be a non-negative number of seconds, got \"a\""),
    (lambda run: _edit_state(run, pending=[{"id": "c0009"}]), "state.json: pending[0].generation is missing"),
    (lambda run: _edit_state(run, version=1), "state.json: field 'version' is 1, not 2"),
    (lambda run: (run / "state.json").write_text('{"generation": 1, "population": [], "pending": []}'),
     "was written by an older gan-nas (before strategies had a state of their own); delete it and resume"),
    (lambda run: _edit_state(run, done="yes"), "field 'done' must be true or false, got \"yes\""),
    (lambda run: _pending_as_journaled(run), "field 'pending' holds c0001, which the journal holds as another trial"),
    (lambda run: _edit_journal_line(run, fitness=None), "journal.jsonl: c0001 is ok but has no fitness"),
])
def test_a_damaged_run_directory_is_one_error_naming_file_and_field(finished_run, tmp_path, capsys, damage, message):
    run = damaged_copy(finished_run, tmp_path)
    damage(run)
    before = snapshot(run)
    capsys.readouterr()
    one_error(resume(run), capsys.readouterr().err, message)
    assert snapshot(run) == before
    one_error(resume(run, "--set", "search.wall_clock_seconds=0"), capsys.readouterr().err, message)
    assert snapshot(run) == before  # a --set on resume does not touch config.json of a damaged run


def _edit_rng(run: Path, value: int) -> None:
    state = json.loads((run / "state.json").read_text())
    state["strategy"]["rng"]["state"]["state"] = value
    (run / "state.json").write_text(json.dumps(state))


def _edit_journal_seconds(run: Path, seconds: dict) -> None:
    lines = (run / "journal.jsonl").read_text().splitlines()
    lines[1] = json.dumps({**json.loads(lines[1]), "seconds": seconds})
    (run / "journal.jsonl").write_text("\n".join(lines) + "\n")


def _edit_journal_line(run: Path, **fields) -> None:
    lines = (run / "journal.jsonl").read_text().splitlines()
    lines[1] = json.dumps({**json.loads(lines[1]), **fields})
    (run / "journal.jsonl").write_text("\n".join(lines) + "\n")


def test_compare_refuses_a_run_a_live_search_holds(finished_run, tmp_path, capsys):
    run = damaged_copy(finished_run, tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = {"pid": holder.pid, "host": __import__("socket").gethostname(), "started": "now", "token": "x"}
        (run / "lock").write_text(json.dumps(lock))
        before = snapshot(run)
        capsys.readouterr()
        one_error(cli.main(["compare", str(run), "--quiet"]), capsys.readouterr().err, f"locked by pid {holder.pid}")
        assert snapshot(run) == before and not (run / "baseline").exists()
    finally:
        holder.kill()
        holder.wait()


def _pending_as_journaled(run: Path) -> None:
    """A pending trial renamed to a journaled one's id (its own genome): it would be skipped as finished."""
    first = json.loads((run / "journal.jsonl").read_text().splitlines()[0])
    task = {"id": "c0001", "generation": 0, "kind": "initial", "parents": [], "genome": first["genome"], "steps": 4,
            "seed": 1, "parent_ckpt": [], "resume_ckpt": None, "save_to": "candidates/c0001"}
    _edit_state(run, pending=[task])


def _edit_strategy(run: Path, **fields) -> None:
    state = json.loads((run / "state.json").read_text())
    state["strategy"].update(fields)
    (run / "state.json").write_text(json.dumps(state))


def _edit_state(run: Path, **fields) -> None:
    state = json.loads((run / "state.json").read_text())
    state.update(fields)
    (run / "state.json").write_text(json.dumps(state))


def test_report_on_a_journal_line_with_a_bad_generation(finished_run, tmp_path, capsys):
    run = damaged_copy(finished_run, tmp_path)
    lines = (run / "journal.jsonl").read_text().splitlines()
    lines[1] = json.dumps({**json.loads(lines[1]), "generation": "x"})
    (run / "journal.jsonl").write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    one_error(cli.main(["report", str(run)]), capsys.readouterr().err,
              "journal.jsonl:2: field 'generation' must be a JSON number, got \"x\"")
    assert not (run / "report.md").exists()


def test_a_deleted_state_is_rebuilt_from_the_journal(finished_run, tmp_path):
    run = damaged_copy(finished_run, tmp_path)
    (run / "state.json").unlink()
    assert resume(run) == 0
    assert journal_ids(run) == journal_ids(finished_run)
    assert best_of(run)[:2] == best_of(finished_run)[:2]


def test_a_torn_last_journal_line_is_dropped_and_redone(fixture_dir, tmp_path, monkeypatch, capsys):
    cfgp = write_config(fixture_dir, "torn", generations=1)
    whole = tmp_path / "whole"
    capsys.readouterr()
    assert search(cfgp, whole) == 0
    assert capsys.readouterr().err == ""  # --quiet: no progress lines, not even per candidate
    run = tmp_path / "run"
    with monkeypatch.context() as m:
        stop_after(m, "c0002")
        assert search(cfgp, run) == 130
    data = (run / "journal.jsonl").read_bytes()
    (run / "journal.jsonl").write_bytes(data[:-25])  # a crash in the middle of writing c0002's line
    capsys.readouterr()
    assert resume(run) == 0
    assert "journal.jsonl:3: removing a cut-off last journal line" in capsys.readouterr().err
    assert journal_ids(run) == journal_ids(whole)
    assert best_of(run)[:2] == best_of(whole)[:2]


def test_a_missing_parent_checkpoint_stops_the_search_and_is_not_journaled(fixture_dir, tmp_path, monkeypatch,
                                                                          capsys):
    cfgp = write_config(fixture_dir, "ckpt", generations=1)
    run2 = tmp_path / "run2"
    with monkeypatch.context() as m:
        stop_after(m, "c0002")  # state.json holds generation 1, whose child c0003 inherits weights
        assert search(cfgp, run2) == 130
    pending = json.loads((run2 / "state.json").read_text())["pending"]
    parent = next(p for t in pending if t["id"] == "c0003" for p in t["parent_ckpt"])
    weights = run2 / parent / "weights.npz"
    saved = weights.read_bytes()
    weights.unlink()
    before = snapshot(run2)
    capsys.readouterr()
    one_error(resume(run2), capsys.readouterr().err, f"{weights} is missing", "c0003")
    assert snapshot(run2) == before  # nothing journaled as the candidate's failure
    weights.write_bytes(b"PK\x03\x04 damaged")
    one_error(resume(run2), capsys.readouterr().err, f"checkpoint {run2 / parent} is missing or damaged")
    assert journal_ids(run2) == ["c0000", "c0001", "c0002"]
    weights.write_bytes(saved)
    meta = run2 / parent / "meta.json"  # a meta.json emptied had the child journaled as failed, exit 0
    saved_meta = meta.read_bytes()
    meta.write_text("{}")
    one_error(resume(run2), capsys.readouterr().err, f"checkpoint {run2 / parent} is missing or damaged",
              "has no genome")
    assert journal_ids(run2) == ["c0000", "c0001", "c0002"]
    meta.write_bytes(saved_meta)
    assert resume(run2) == 0
    assert [json.loads(line)["status"] for line in (run2 / "journal.jsonl").read_text().splitlines()] == ["ok"] * 4


def test_a_continuation_whose_checkpoint_lost_its_layers_stops_the_search(fixture_dir, tmp_path, monkeypatch,
                                                                          capsys):
    """weights.npz cut down (or meta.json's genome edited) had the survivor's continuation train on from random
    weights, journaled as ok with the lineage's step count, exit 0."""
    run = stopped_run(write_config(fixture_dir, "cont", generations=1, survivor=2), tmp_path / "run", monkeypatch)
    pending = json.loads((run / "state.json").read_text())["pending"]
    task = next(t for t in pending if t["kind"] == "continue" and t["id"] not in journal_ids(run))
    ckpt = run / task["resume_ckpt"]
    saved = (ckpt / "weights.npz").read_bytes()
    with np.load(ckpt / "weights.npz") as z:
        np.savez(ckpt / "weights.npz", **{k: z[k] for k in list(z.files)[:-1]})  # one array gone
    capsys.readouterr()
    one_error(resume(run), capsys.readouterr().err, f"checkpoint {ckpt} is damaged", "restore it")
    assert task["id"] not in journal_ids(run)  # (the generation's other tasks may have been journaled first:
    # the check of every checkpoint before a generation starts, evolution's check_checkpoints, reads files only)
    (ckpt / "weights.npz").write_bytes(saved)
    assert resume(run) == 0
    assert task["id"] in journal_ids(run)


def test_a_run_whose_dataset_changed_is_not_resumed(fixture_dir, tmp_path, monkeypatch, capsys):
    # it resumed silently and scored the rest of the run against other data's statistics
    shutil.copy(fixture_dir / "bars.npz", tmp_path / "bars.npz")
    run = stopped_run(write_config(tmp_path, "changed", generations=1), tmp_path / "run", monkeypatch)
    recorded = json.loads((run / "dataset.json").read_text())
    assert (recorded["train"], recorded["validation"], recorded["test"]) == (480, 120, 120)
    with np.load(tmp_path / "bars.npz") as z:
        images, labels = z["images"].copy(), z["labels"]
    images[0, 0, 0, 0] ^= 1  # one pixel of one image
    np.savez(tmp_path / "bars.npz", images=images, labels=labels)
    before = snapshot(run)
    capsys.readouterr()
    for extra in ((), ("--set", "search.wall_clock_seconds=100")):  # a resume that sets config changes nothing
        one_error(resume(run, *extra), capsys.readouterr().err, "bars.npz' is not the one",
                  "restore that data or start a new run")
        assert snapshot(run) == before
    (run / "dataset.json").unlink()  # deleting it accepts the data loaded now (the fix for a damaged one)
    assert resume(run) == 0


def test_a_run_made_before_the_validation_split_is_not_resumed(fixture_dir, tmp_path, monkeypatch, capsys):
    run = stopped_run(write_config(fixture_dir, "old", generations=1), tmp_path / "run", monkeypatch)
    cfg = json.loads((run / "config.json").read_text())
    del cfg["fitness"]["report_noise_seed"]  # as config.json was written before there were two splits
    (run / "config.json").write_text(json.dumps(cfg))
    before = {p.relative_to(run).as_posix(): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    capsys.readouterr()
    one_error(resume(run), capsys.readouterr().err, "scored candidates on the test split", "start a new run")
    assert {p.relative_to(run).as_posix(): p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_a_journaled_genome_that_does_not_fit_the_run_is_refused(fixture_dir, tmp_path, monkeypatch, capsys):
    from gan_nas.baseline import dcgan

    run = stopped_run(write_config(fixture_dir, "misfit", generations=1), tmp_path / "run", monkeypatch)
    lines = (run / "journal.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["genome"] = dcgan((32, 32, 3)).to_dict()  # a valid genome, for other images
    (run / "journal.jsonl").write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    before = {p.relative_to(run).as_posix(): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    capsys.readouterr()
    one_error(resume(run), capsys.readouterr().err, f"{first['id']}'s genome does not fit this run")
    assert {p.relative_to(run).as_posix(): p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
