"""``gan-nas generate`` on bad input: bounds, output paths, candidates and run directories.

Every refusal is one line ``error: ...`` and exit 2, creates nothing, leaves
no temporary file and changes nothing in the run directory. The run directory
is test_report's hand-built one (untrained networks, no search).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import test_report
from PIL import Image
from test_report import assert_one_error_line, run_cli

from gan_nas import cli, images, report

fake_run = test_report.fake_run  # the module-scoped run directory, built once for this module too
run_copy = test_report.run_copy


def snapshot(d: Path) -> dict[str, str]:
    """Every file under ``d`` by relative path, with a digest of its bytes."""
    return {p.relative_to(d).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(d.rglob("*"))}


@pytest.fixture
def outdir(tmp_path: Path) -> Path:
    d = tmp_path / "out"
    d.mkdir()
    return d


@pytest.fixture
def no_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if generate loads a generator: bad input must be refused before that."""
    def refuse(*args, **kwargs):
        raise AssertionError("generate loaded a generator before refusing its input")

    monkeypatch.setattr(report, "_load_generator", refuse)


def refused(capsys, run: Path, argv: list[str], match: str, *watched: Path) -> None:
    """``generate`` with ``argv`` exits 2 with one error line and changes neither ``run`` nor ``watched``."""
    before = [snapshot(d) for d in (run, *watched)]
    code, out, err = run_cli(["generate", str(run), *argv], capsys)
    assert out == ""
    assert_one_error_line(code, err, match)
    assert [snapshot(d) for d in (run, *watched)] == before


def generate_json(capsys, run: Path, *argv: str) -> dict:
    code, out, err = run_cli(["generate", str(run), *argv, "--json"], capsys)
    assert code == 0, err
    return json.loads(out)


# --- bounds -------------------------------------------------------------------------------------


@pytest.mark.parametrize("flag, value, match", [
    ("--n", "0", "--n must be at least 1 and at most 50,000, got 0"),
    ("--n", "-3", "--n must be at least 1"),
    ("--n", "1000000", "at most 50,000, got 1,000,000"),
    ("--n", str(report.MAX_N + 1), "at most 50,000"),
    ("--seed", "-1", "--seed must be at least 0 and at most 4,294,967,295"),
    ("--seed", str(2**32), "got 4,294,967,296"),
    ("--scale", "0", "--scale must be at least 1 and at most 16, got 0"),
    ("--scale", "1000", "at most 16, got 1,000"),
])
def test_out_of_bounds_refused_before_loading(run_copy: Path, outdir: Path, capsys, no_loading, flag: str,
                                              value: str, match: str) -> None:
    refused(capsys, run_copy, ["--out", str(outdir / "g.png"), flag, value], match, outdir)


def test_bounds_in_help(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["generate", "--help"])
    assert e.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps the help
    assert f"1 to {report.MAX_N:,}" in text and f"first {report.MAX_GRID:,}" in text


def test_seed_bounds_inclusive(run_copy: Path, outdir: Path, capsys) -> None:
    for seed in (0, report.MAX_SEED):
        r = generate_json(capsys, run_copy, "--out", str(outdir / "g.png"), "--n", "1", "--seed", str(seed))
        assert r["seed"] == seed


def test_png_too_large_for_scale(run_copy: Path, outdir: Path, capsys) -> None:
    # 1,024 images of 16 x 16: 32 columns of 18 pixels + 2 = 578 pixels, x 15 > 8,192
    refused(capsys, run_copy, ["--out", str(outdir / "g.png"), "--n", "1024", "--scale", "15"],
            "--out would be 8,670 x 8,670 pixels at --scale 15; at most 8,192 a side: use --scale 14 or less",
            outdir)


# --- many samples: a bounded grid, all of them in the npz, streamed --------------------------------


def test_large_n_grid_is_bounded_npz_gets_all(run_copy: Path, outdir: Path, capsys,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "MAX_GRID", 9)  # small, to keep the test fast
    streamed = []
    write_npz = images.write_npz

    def spy(f, shape, batches):
        streamed.append(not isinstance(batches, (np.ndarray, list, tuple)))
        return write_npz(f, shape, batches)

    monkeypatch.setattr(images, "write_npz", spy)
    out, npz = outdir / "g.png", outdir / "s.npz"
    r = generate_json(capsys, run_copy, "--out", str(out), "--npz", str(npz), "--n", "25", "--scale", "1")
    assert (r["n"], r["grid"]) == (25, 9) and streamed == [True]
    with np.load(npz, allow_pickle=False) as z:
        x = z["images"]
    assert x.shape == (25, 16, 16, 1) and x.dtype == np.uint8
    with Image.open(out) as im:  # the first 9 samples, 3 x 3
        np.testing.assert_array_equal(np.asarray(im)[..., None], images.grid(x[:9]))
    # without --npz the grid is the same: the same draws, and only those are sampled
    out2 = outdir / "g2.png"
    assert generate_json(capsys, run_copy, "--out", str(out2), "--n", "25", "--scale", "1")["grid"] == 9
    assert out2.read_bytes() == out.read_bytes()
    assert sorted(p.name for p in outdir.iterdir()) == ["g.png", "g2.png", "s.npz"]


def test_sample_batches_are_the_draws_of_noise(fake_run: Path) -> None:
    import keras

    gen = keras.saving.load_model(fake_run / "best" / "generator.keras", compile=False)
    whole = images.to_uint8(np.asarray(gen(images.noise(11, int(gen.input_shape[-1]), 7), training=False)))
    batches = list(images.sample_batches(gen, 11, seed=7, batch=4))
    assert [len(b) for b in batches] == [4, 4, 3]
    np.testing.assert_array_equal(np.concatenate(batches), whole)
    np.testing.assert_array_equal(images.sample(gen, 11, seed=7, batch=4), whole)


def test_write_npz_streams_batches(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (10, 3, 2, 1), dtype=np.uint8)
    path = tmp_path / "x.npz"
    assert images.write_npz(path, x.shape, (x[i:i + 4] for i in range(0, 10, 4))) == 10
    with np.load(path, allow_pickle=False) as z:
        assert z.files == ["images"]
        np.testing.assert_array_equal(z["images"], x)
    with pytest.raises(ValueError, match="does not fit"):
        images.write_npz(tmp_path / "y.npz", (10, 3, 2, 1), [x[:4, :2]])
    with pytest.raises(ValueError, match="does not fit"):
        images.write_npz(tmp_path / "y.npz", (3, 3, 2, 1), [x[:4]])
    with pytest.raises(ValueError, match="2 images written"):
        images.write_npz(tmp_path / "y.npz", (3, 3, 2, 1), [x[:2]])


# --- output paths --------------------------------------------------------------------------------


def _bad_outputs(run: Path, out: Path) -> list[tuple[list[str], str]]:
    (out / "folder").mkdir()
    (out / "file.txt").write_text("a file")
    for d in ("baseline", "baseline-steps", "baseline-seed1"):  # as compare leaves them
        (run / d).mkdir(exist_ok=True)
    good = ["--out", str(out / "g.png")]
    return [
        (["--out", str(out / "folder")], "names a directory"),
        (["--out", str(out / "new") + "/"], "names a directory"),
        ([*good, "--npz", str(out / "folder")], "--npz " + str(out / "folder") + " names a directory"),
        ([*good, "--interpolate", str(out / "folder")], "--interpolate"),
        (["--out", str(out / "missing" / "g.png")], "folder " + str(out / "missing") + " does not exist"),
        (["--out", str(out / "file.txt" / "g.png")], str(out / "file.txt") + " is not a folder"),
        ([*good, "--npz", str(out / "file.txt" / "s.npz")], "--npz"),
        ([*good, "--npz", str(out / "g.png")], "--out and --npz both name"),
        ([*good, "--interpolate", str(out / "." / "g.png")], "--out and --interpolate both name"),
        (["--out", str(run / "journal.jsonl")], "which the search owns"),
        (["--out", str(run / "config.json")], "config.json, which the search owns"),
        (["--out", str(run / "state.json")], "which the search owns"),
        (["--out", str(run / "lock")], "which the search owns"),
        ([*good, "--npz", str(run / "candidates" / "c0004" / "weights.npz")], "which the search owns"),
        ([*good, "--npz", str(run / "candidates" / "c0099.npz")], "which the search owns"),
        (["--out", str(run / "best" / "generator.keras")], "which the search owns"),
        (["--out", str(run / "samples" / "gen000.png")], "which the search owns"),
        (["--out", str(out / ".." / "run" / "journal.jsonl")], "which the search owns"),
        (["--out", str(run / "baseline" / "journal.jsonl")], "which the search owns"),  # compare's DCGAN
        (["--out", str(run / "baseline-steps" / "g.png")], "which the search owns"),
        (["--out", str(run / "baseline-seed1" / "g.png")], "which the search owns"),  # compare --baseline-runs 2
    ]


def test_bad_output_paths_refused_before_loading(run_copy: Path, outdir: Path, capsys, no_loading) -> None:
    for argv, match in _bad_outputs(run_copy, outdir):
        try:
            refused(capsys, run_copy, argv, match, outdir)
        except AssertionError as e:
            raise AssertionError(f"{argv}: {e}") from e


def test_output_symlinked_into_run_dir_refused(run_copy: Path, outdir: Path, capsys, no_loading) -> None:
    (outdir / "g.png").symlink_to(run_copy / "journal.jsonl")
    refused(capsys, run_copy, ["--out", str(outdir / "g.png")], "which the search owns", outdir)


def test_output_not_a_regular_file(run_copy: Path, outdir: Path, capsys, no_loading) -> None:
    if not Path("/dev/null").exists():
        pytest.skip("no /dev/null")
    refused(capsys, run_copy, ["--out", "/dev/null"], "exists and is not a regular file", outdir)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux's /proc, which takes no new files")
def test_unwritable_folder(run_copy: Path, outdir: Path, capsys, no_loading) -> None:
    refused(capsys, run_copy, ["--out", "/proc/g.png"], "cannot write --out /proc/g.png: no file can be created "
            "in /proc", outdir)
    refused(capsys, run_copy, ["--out", str(outdir / "g.png"), "--npz", "/proc/s.npz"], "--npz /proc/s.npz",
            outdir)


def test_folder_that_cannot_be_looked_into(run_copy: Path, outdir: Path, capsys, no_loading,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder on the way without search permission (as for a user, not root): stat raises PermissionError."""
    is_dir = Path.is_dir

    def denied(self: Path) -> bool:
        if "secret" in str(self):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return is_dir(self)

    monkeypatch.setattr(Path, "is_dir", denied)
    refused(capsys, run_copy, ["--out", str(outdir / "secret" / "g.png")],
            f"cannot write --out {outdir / 'secret' / 'g.png'}: Permission denied", outdir)


def test_outputs_in_run_dir_outside_its_own_files(run_copy: Path, capsys) -> None:
    r = generate_json(capsys, run_copy, "--out", str(run_copy / "grid.png"), "--n", "4",
                      "--npz", str(run_copy / "s.npz"))
    assert Path(r["out"]).is_file() and Path(r["npz"]).is_file()


def test_failed_generate_keeps_old_outputs(run_copy: Path, outdir: Path, capsys) -> None:
    """An error after the outputs were checked (an unknown candidate) leaves them as they were, and no temporary."""
    (outdir / "g.png").write_bytes(b"old grid")
    refused(capsys, run_copy, ["--out", str(outdir / "g.png"), "--npz", str(outdir / "s.npz"),
                               "--candidate", "c0099"], "no evaluated candidate 'c0099'", outdir)
    assert sorted(p.name for p in outdir.iterdir()) == ["g.png"]


def test_write_error_is_one_line_and_leaves_nothing(run_copy: Path, outdir: Path, capsys,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    (outdir / "g.png").write_bytes(b"old grid")

    def full(image, f, scale=1):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(images, "write_png", full)
    refused(capsys, run_copy, ["--out", str(outdir / "g.png"), "--npz", str(outdir / "s.npz"), "--n", "3"],
            f"cannot write --out {outdir / 'g.png'}: No space left on device", outdir)
    assert sorted(p.name for p in outdir.iterdir()) == ["g.png"]


def test_overwrites_an_existing_output(run_copy: Path, outdir: Path, capsys) -> None:
    (outdir / "g.png").write_bytes(b"old grid")
    generate_json(capsys, run_copy, "--out", str(outdir / "g.png"), "--n", "4")
    assert (outdir / "g.png").read_bytes()[:8] == test_report.PNG_MAGIC
    assert sorted(p.name for p in outdir.iterdir()) == ["g.png"]  # no temporary left


# --- candidates and run directories -----------------------------------------------------------------


def _garbage_weights(w: Path) -> None:
    w.write_bytes(b"not an npz at all" * 10)


def _truncated_weights(w: Path) -> None:
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])


def _flipped_weights(w: Path) -> None:
    data = bytearray(w.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside an array's bytes: the zip's CRC no longer matches
    w.write_bytes(bytes(data))


def _misshapen_weights(w: Path) -> None:
    with np.load(w) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["g_stem_dense/0"] = np.zeros((3, 3), np.float32)  # the generator's first layer
    with open(w, "wb") as f:
        np.savez(f, **arrays)


@pytest.mark.parametrize("damage", [_garbage_weights, _truncated_weights, _flipped_weights, _misshapen_weights])
def test_damaged_candidate_weights(run_copy: Path, outdir: Path, capsys, damage) -> None:
    damage(run_copy / "candidates" / "c0004" / "weights.npz")
    refused(capsys, run_copy, ["--out", str(outdir / "g.png"), "--candidate", "c0004"], "c0004", outdir)
    assert list(outdir.iterdir()) == []


@pytest.mark.parametrize("cid, match", [
    ("c0000", "candidate c0000 has no weights"),  # in the journal, its folder pruned as a whole
    ("", "no evaluated candidate ''"),  # not the best: an empty id is an error, not a default
    ("c0002", "pruned"),  # genome.json and meta.json only
])
def test_candidate_without_checkpoint(run_copy: Path, outdir: Path, capsys, cid: str, match: str) -> None:
    refused(capsys, run_copy, ["--out", str(outdir / "g.png"), "--candidate", cid], match, outdir)
    assert list(outdir.iterdir()) == []


def test_run_dir_without_candidates_folder(run_copy: Path, outdir: Path, capsys) -> None:
    shutil.rmtree(run_copy / "candidates")
    refused(capsys, run_copy, ["--out", str(outdir / "g.png"), "--candidate", "c0004"],
            "candidate c0004 has no weights", outdir)
    assert list(outdir.iterdir()) == []


def test_run_dir_is_not_a_run_directory(tmp_path: Path, outdir: Path, capsys) -> None:
    empty, afile = tmp_path / "empty", tmp_path / "file.txt"
    empty.mkdir()
    afile.write_text("x")
    refused(capsys, empty, ["--out", str(outdir / "g.png")], "is not a gan-nas run directory", outdir)
    code, _, err = run_cli(["generate", str(afile), "--out", str(outdir / "g.png")], capsys)
    assert_one_error_line(code, err, "is a file, not a run directory")
    assert list(outdir.iterdir()) == []


def test_staged_outputs_are_fsynced_then_renamed_then_their_folder_fsynced(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from test_safe_io import _fsyncs

    (tmp_path / "a.png").write_bytes(b"old")
    outputs = {"--out": tmp_path / "a.png", "--npz": tmp_path / "b.npz"}
    seen = _fsyncs(monkeypatch)
    with report._Staged(outputs) as staged:
        staged.write("--out", lambda f: f.write(b"new a"))
        staged.write("--npz", lambda f: f.write(b"new b"))
        assert (tmp_path / "a.png").read_bytes() == b"old"  # nothing replaced before the commit
        staged.commit()
    assert seen == ["file", "file", "dir"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.npz"]
    assert (tmp_path / "a.png").read_bytes() == b"new a" and (tmp_path / "b.npz").read_bytes() == b"new b"
