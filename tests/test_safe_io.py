"""safe_io's atomic writes: the old file or the new one, never a torn one, no temporary left, the folder fsynced."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from gan_nas import safe_io


def _fsyncs(monkeypatch) -> list[str]:
    """Record what each os.fsync was called on: 'dir' or 'file'."""
    seen: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        seen.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return seen


def test_write_bytes_atomic_replaces_the_file_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("old")
    assert safe_io.write_bytes_atomic(target, b"new") == target
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_write_atomic_hands_the_writer_a_hidden_temporary_in_the_same_folder(tmp_path):
    seen = []

    def write(tmp: Path) -> None:
        seen.append(tmp)
        tmp.write_text("x")

    safe_io.write_atomic(tmp_path / "m.keras", write, suffix=".keras")
    (tmp,) = seen
    assert tmp.parent == tmp_path and tmp.name.startswith(".m.keras" + safe_io.TMP_MARK)
    assert tmp.name.endswith(".keras") and not tmp.exists()
    # a run directory finds what a crash leaves by this pattern (store.RunStore._recover)
    assert list(tmp_path.glob(f".*{safe_io.TMP_MARK}*")) == []


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_a_crash_mid_write_leaves_the_old_file_and_no_temporary(tmp_path, error):
    target = tmp_path / "state.json"
    target.write_text("old")

    def write(tmp: Path) -> None:
        tmp.write_text("half of the new")
        raise error

    with pytest.raises(type(error)):
        safe_io.write_atomic(target, write)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_a_failed_rename_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "t.bin"
    target.write_bytes(b"old")

    def replace(src, dst):
        raise OSError("cross-device")

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="cross-device"):
        safe_io.write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["t.bin"]


def test_the_file_and_then_its_folder_are_fsynced(tmp_path, monkeypatch):
    seen = _fsyncs(monkeypatch)
    safe_io.write_bytes_atomic(tmp_path / "x", b"data")
    assert seen == ["file", "dir"]


def test_a_missing_target_is_created(tmp_path):
    safe_io.write_atomic(tmp_path / "new.txt", lambda tmp: tmp.write_text("hello"))
    assert (tmp_path / "new.txt").read_text() == "hello"


def test_the_store_writes_json_through_it(tmp_path, monkeypatch):
    from gan_nas.store import RunStore

    store = RunStore.create(tmp_path / "run", "{}")
    seen = _fsyncs(monkeypatch)
    store.write_state({"generation": 1})
    assert seen == ["file", "dir"]
    assert sorted(p.name for p in store.root.iterdir() if p.is_file()) == ["config.json", "state.json"]
