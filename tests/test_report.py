"""``gan-nas report`` and ``gan-nas generate`` on a hand-built run directory (untrained networks, no search).

The run directory is written with the store and the builder the way a search
writes it: config.json, a journal over three generations (with failures), a
state.json, best/ with an exported generator, one candidate with weights and
one whose weights were pruned, and per-generation sample grids.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gan_nas import cli, images, report
from gan_nas.baseline import dcgan
from gan_nas.config import Config
from gan_nas.selection import fitness_of
from gan_nas.store import RunStore

SHAPE = (16, 16, 1)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_npz(path: Path, n: int = 600, size: int = 16, seed: int = 0) -> Path:
    """n labelled images (4 classes of disks, bars and squares), (n, size, size, 1) uint8."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 4
    yy, xx = np.mgrid[0:size, 0:size]
    x = np.zeros((n, size, size, 1), np.uint8)
    for i, c in enumerate(y):
        cy, cx = rng.uniform(size * 0.3, size * 0.7, 2)
        r = rng.uniform(size * 0.18, size * 0.3)
        if c == 0:
            m = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        elif c == 1:
            m = np.abs(yy - cy) < 1.5
        elif c == 2:
            m = np.abs(xx - cx) < 1.5
        else:
            m = (np.abs(yy - cy) < r) & (np.abs(xx - cx) < r)
        x[i, ..., 0] = (m * rng.uniform(150, 255)).astype(np.uint8)
    np.savez(path, images=x, labels=y)
    return path


def tiny_config(npz: Path) -> Config:
    return Config.from_dict({
        "data": {"dataset": f"npz:{npz}", "batch_size": 16},
        "training": {"steps": 3, "log_every": 1000},
        "fitness": {"n_search": 64, "n_report": 64, "classifier_epochs": 1, "batch_size": 64},
        "space": {"max_g_blocks": 2, "max_d_blocks": 2, "max_filters": 32},
        "search": {"generations": 2, "population": 2, "offspring": 2},
    })


def record(cid: str, gen: int, kind: str, parents: list[str], fid: float | None, g: int, status: str = "ok",
           total_steps: int = 3) -> dict:
    genome = dcgan(SHAPE).to_dict()
    return {
        "id": cid, "generation": gen, "kind": kind, "parents": parents, "genome": genome, "status": status,
        "fitness": fid if status == "ok" else None,
        "metrics": {"fid": fid, "kid": None if fid is None else fid / 100, "kid_std": 0.01, "n": 64,
                    "g_loss": 0.7, "d_loss": 1.3},
        "params": {"g": g, "d": g // 4}, "steps": 3, "total_steps": total_steps,
        "seconds": {"build": 1.0, "train": 0.5, "score": 0.5, "total": 2.0},
        "inherited": {"g": 1, "d": 1} if parents else {"g": 0, "d": 0},
        "error": None if status == "ok" else "non-finite loss",
    }


RECORDS = [  # c0004's lineage: c0000 -> c0002 -> c0004
    record("c0000", 0, "initial", [], 120.0, 400_000),
    record("c0001", 0, "initial", [], 150.0, 50_000),
    record("c0002", 1, "child", ["c0000"], 100.0, 300_000, total_steps=6),
    record("c0003", 1, "child", ["c0001"], None, 80_000, status="diverged", total_steps=4),
    record("c0004", 2, "child", ["c0002", "c0001"], 80.0, 350_000, total_steps=9),
    record("c0005", 2, "child", ["c0001"], 140.0, 20_000, total_steps=6),
]


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory as a finished 2-generation search leaves it (untrained weights)."""
    from gan_nas import builder, checkpoint, gan

    d = tmp_path_factory.mktemp("report")
    npz = make_npz(d / "shapes16.npz")
    store = RunStore.create(d / "run", tiny_config(npz).to_json())
    genome = dcgan(SHAPE)
    gen = builder.build_generator(genome, SHAPE)
    disc = builder.build_discriminator(genome, SHAPE)
    with store.locked():
        for r in RECORDS:
            store.append(r)
        store.write_state({"generation": 2, "population": ["c0004", "c0002"],
                           "hall_of_fame": ["c0004", "c0002", "c0000"], "elapsed": 14.5, "done": True,
                           "stopped": None, "next_id": 6, "pending": []})
        checkpoint.save_checkpoint(store.candidate_dir("c0004"), genome, gen, disc, {}, 9)
        checkpoint.save_checkpoint(store.candidate_dir("c0002"), genome, gen, disc, {}, 6)
        for f in checkpoint.PRUNED_FILES:  # pruned, as the search prunes
            (store.candidate_dir("c0002") / f).unlink(missing_ok=True)

        def fill(b: Path) -> None:
            (b / "genome.json").write_text(genome.to_json())
            (b / "candidate.json").write_text(json.dumps({k: v for k, v in RECORDS[4].items() if k != "genome"}))
            gan.export_generator(genome, store.candidate_dir("c0004"), SHAPE, b / "generator.keras")

        store.publish_best(fill)
        for g in range(3):
            x = images.sample(gen, 16, seed=g)
            images.save_png(images.grid(x), store.samples_dir / f"gen{g:03d}.png", scale=2)
    return store.root


@pytest.fixture
def run_copy(fake_run: Path, tmp_path: Path) -> Path:
    """A copy of the fake run that a test may damage."""
    return Path(shutil.copytree(fake_run, tmp_path / "run"))


def run_cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def assert_png(path: Path, min_bytes: int = 1024) -> None:
    data = Path(path).read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    assert len(data) > min_bytes, f"{path} is only {len(data)} bytes"


def assert_one_error_line(code: int, err: str, match: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and match in lines[0], lines[0]


# --- report ---------------------------------------------------------------------------------


def test_report_writes_markdown_and_plots(run_copy: Path, capsys) -> None:
    code, out, _ = run_cli(["report", str(run_copy), "--json"], capsys)
    assert code == 0
    path = Path(json.loads(out)["report"])
    assert path == run_copy / "report.md"
    text = path.read_text()
    for png in ("fid_generations.png", "fid_vs_size.png", "lineage.png"):
        assert_png(run_copy / "report" / png)
        assert f"](report/{png})" in text
    for heading in ("## FID per generation", "## FID against generator size", "## Lineage of the best candidate",
                    "## Best genome", "## Samples across generations", "## Hall of fame"):
        assert heading in text
    assert "best: **c0004**, FID 80.00" in text
    assert "evaluations: 6 (diverged 1, ok 5)" in text
    # generation table: best / median / best-so-far of the ok records
    assert "| 0 | 2 | 2 | 120.00 | 135.00 | 120.00 |" in text
    assert "| 1 | 2 | 1 | 100.00 | 100.00 | 100.00 |" in text
    assert "| 2 | 2 | 2 | 80.00 | 110.00 | 80.00 |" in text
    # the genome table (builder.describe) and the sample grids
    assert "total generator parameters:" in text and "g_stem" in text
    for g in range(3):
        assert f"](samples/gen{g:03d}.png)" in text


@pytest.mark.parametrize("where", ["report.md", "report/fid_vs_size.png", "report"])
def test_report_whose_output_cannot_be_a_file_writes_nothing(run_copy: Path, capsys, where: str) -> None:
    """report.md a directory: every plot was rewritten, then the write failed."""
    target = run_copy / where
    if where == "report":
        target.write_text("mine")
    else:
        target.mkdir(parents=True)
    before = sorted(p.relative_to(run_copy).as_posix() for p in run_copy.rglob("*"))
    code, _, err = run_cli(["report", str(run_copy)], capsys)
    assert_one_error_line(code, err, str(target))
    assert sorted(p.relative_to(run_copy).as_posix() for p in run_copy.rglob("*")) == before


def test_lineage_and_pareto_front() -> None:
    chain = report.lineage(RECORDS, "c0004")
    assert [r["id"] for r in chain] == ["c0000", "c0002", "c0004"]
    assert report.lineage(RECORDS, "c0001") == [RECORDS[1]]
    # (fid, g): c0005 (140, 20k), c0001 (150, 50k) dominated by c0005, c0002 (100, 300k), c0004 (80, 350k),
    # c0000 (120, 400k) dominated by c0004; c0003 failed.
    assert [r["id"] for r in report.pareto_front(RECORDS)] == ["c0005", "c0002", "c0004"]


def test_generation_stats_skip_failures() -> None:
    stats = report.generation_stats(RECORDS)
    assert [s["generation"] for s in stats] == [0, 1, 2]
    assert [s["ok"] for s in stats] == [2, 1, 2]
    assert stats[2]["median"] == pytest.approx(110.0)
    assert [s["best_so_far"] for s in stats] == [120.0, 100.0, 80.0]


def test_report_when_every_candidate_failed(tmp_path: Path, capsys) -> None:
    store = RunStore.create(tmp_path / "run", Config().to_json())
    with store.locked():
        store.append(record("c0000", 0, "initial", [], None, 1000, status="invalid"))
    code, _, err = run_cli(["report", str(store.root)], capsys)
    assert code == 0
    assert err == ""  # matplotlib warned of a legend with nothing in it (the best has no finite FID)
    text = (store.root / "report.md").read_text()
    assert "No candidate has a finite FID yet." in text
    assert_png(store.root / "report" / "fid_generations.png")


def test_a_halving_report_counts_rungs_and_names_the_leader_past_the_top(tmp_path: Path, capsys) -> None:
    cfg = Config.from_dict({"search": {"strategy": "halving", "wall_clock_seconds": 60},
                            "halving": {"min_steps": 100, "eta": 3, "max_steps": 300, "leader_share": 0.5}})
    store = RunStore.create(tmp_path / "run", cfg.to_json())
    with store.locked():
        for r in [record("c0000", 0, "random", [], None, 1000, status="invalid"),
                  record("c0001", 1, "continue", ["c0000"], None, 1000, status="diverged"),
                  record("c0002", 2, "continue", ["c0001"], None, 1000, status="diverged")]:
            store.append(r)
    code, _, err = run_cli(["report", str(store.root)], capsys)
    assert code == 0, err
    text = (store.root / "report.md").read_text()
    assert "## FID per rung" in text and "rungs of 100/300 steps" in text
    rows = [cell for line in text.splitlines() if line.startswith("| ") and "steps" in (cell := line.split(" | ")[0])]
    assert rows == ["| 0 (100 steps)", "| 1 (300 steps)", "| 2 (past the top rung, 600 steps each)"]


# --- generate -------------------------------------------------------------------------------


def test_generate_grid_npz_and_interpolation(run_copy: Path, tmp_path: Path, capsys) -> None:
    out, npz, sheet = tmp_path / "grid.png", tmp_path / "s.npz", tmp_path / "interp.png"
    code, stdout, _ = run_cli(["generate", str(run_copy), "--out", str(out), "--n", "10", "--npz", str(npz),
                               "--interpolate", str(sheet), "--scale", "1", "--json"], capsys)
    assert code == 0
    result = json.loads(stdout)
    assert result["model"] == "best" and result["shape"] == [16, 16, 1] and result["seed"] == 1234
    with Image.open(out) as im:  # 10 images in 4 columns, 3 rows, 2-pixel gaps
        assert im.size == (4 * 18 + 2, 3 * 18 + 2) and im.mode == "L"
    with np.load(npz) as z:
        x = z["images"]
    assert x.shape == (10, 16, 16, 1) and x.dtype == np.uint8
    with Image.open(sheet) as im:  # 8 rows of 10 interpolation steps
        assert im.size == (10 * 18 + 2, 8 * 18 + 2)
    # the grid shows exactly the samples
    grid = np.asarray(Image.open(out))[..., None]
    np.testing.assert_array_equal(grid, images.grid(x))


def test_generate_fixed_seed_and_named_candidate(run_copy: Path, tmp_path: Path, capsys) -> None:
    def samples(*extra: str) -> np.ndarray:
        npz = tmp_path / "s.npz"
        code, _, err = run_cli(["generate", str(run_copy), "--out", str(tmp_path / "g.png"), "--n", "6",
                                "--npz", str(npz), *extra], capsys)
        assert code == 0, err
        with np.load(npz) as z:
            return z["images"]

    a, b, c = samples("--seed", "5"), samples("--seed", "5"), samples("--seed", "6")
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # c0004 is the best: its checkpoint and best/generator.keras hold the same weights
    np.testing.assert_array_equal(samples("--seed", "5", "--candidate", "c0004"), a)


@pytest.mark.parametrize("cid, match", [("c0002", "pruned"), ("c0099", "no evaluated candidate 'c0099'"),
                                        ("../x", "no evaluated candidate")])
def test_generate_bad_candidate(run_copy: Path, tmp_path: Path, capsys, cid: str, match: str) -> None:
    code, _, err = run_cli(["generate", str(run_copy), "--out", str(tmp_path / "g.png"), "--candidate", cid],
                           capsys)
    assert_one_error_line(code, err, match)
    assert not (tmp_path / "g.png").exists()


def test_generate_bad_n(run_copy: Path, tmp_path: Path, capsys) -> None:
    code, _, err = run_cli(["generate", str(run_copy), "--out", str(tmp_path / "g.png"), "--n", "0"], capsys)
    assert_one_error_line(code, err, "--n must be at least 1")


def test_best_generator_loads_in_plain_keras(fake_run: Path, tmp_path: Path) -> None:
    """best/generator.keras needs nothing of gan_nas: load it with gan_nas unimportable, outside the repo."""
    script = (
        "import sys; sys.modules['gan_nas'] = None\n"
        "import numpy as np, keras\n"
        f"m = keras.saving.load_model({str(fake_run / 'best' / 'generator.keras')!r}, compile=False)\n"
        "z = np.random.default_rng(0).standard_normal((3, m.input_shape[-1])).astype('float32')\n"
        "y = np.asarray(m.predict(z, verbose=0))\n"
        "assert np.isfinite(y).all() and y.min() >= -1 and y.max() <= 1\n"
        "print(y.shape)\n"
    )
    p = subprocess.run([sys.executable, "-I", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.strip().splitlines()[-1] == "(3, 16, 16, 1)"


# --- damaged run directories --------------------------------------------------------------------


def _no_config(run: Path) -> None:
    (run / "config.json").unlink()


def _corrupt_journal(run: Path) -> None:
    with open(run / "journal.jsonl", "ab") as f:
        f.write(b'{"id": "c0006", "status": \n')


def _no_best(run: Path) -> None:
    shutil.rmtree(run / "best")


def _damaged_generator(run: Path) -> None:
    (run / "best" / "generator.keras").write_bytes(b"not a zip archive")


def _bad_config(run: Path) -> None:
    (run / "config.json").write_text('{"data": {"batch_size": "many"}}')


@pytest.mark.parametrize("damage, commands, match", [
    (_no_config, ["report", "generate"], "has no config.json"),
    (_bad_config, ["report", "generate"], "config.json is damaged"),
    (_corrupt_journal, ["report"], "corrupt journal line"),
    (_no_best, ["generate"], "has no best/ yet"),
    (_damaged_generator, ["generate"], "generator.keras is damaged"),
])
def test_damaged_run_dir_exits_2(run_copy: Path, tmp_path: Path, capsys, damage, commands, match) -> None:
    damage(run_copy)
    before = sorted(p.relative_to(run_copy).as_posix() for p in run_copy.rglob("*"))
    for command in commands:
        extra = ["--out", str(tmp_path / "g.png")] if command == "generate" else []
        code, _, err = run_cli([command, str(run_copy), *extra], capsys)
        assert_one_error_line(code, err, match)
    assert sorted(p.relative_to(run_copy).as_posix() for p in run_copy.rglob("*")) == before


@pytest.mark.parametrize("command", ["report", "generate"])
def test_missing_run_dir_exits_2(tmp_path: Path, capsys, command: str) -> None:
    extra = ["--out", str(tmp_path / "g.png")] if command == "generate" else []
    code, _, err = run_cli([command, str(tmp_path / "nope"), *extra], capsys)
    assert_one_error_line(code, err, "does not exist")


def test_report_needs_evaluations(tmp_path: Path, capsys) -> None:
    store = RunStore.create(tmp_path / "run", Config().to_json())
    code, _, err = run_cli(["report", str(store.root)], capsys)
    assert_one_error_line(code, err, "no finished evaluations yet")


def test_fitness_of() -> None:
    assert fitness_of({"status": "ok", "fitness": 3.5}) == 3.5
    assert fitness_of({"status": "ok", "fitness": None}) == math.inf
    assert fitness_of({"status": "diverged", "fitness": 3.5}) == math.inf


def test_report_names_the_reference_size_and_warns_when_it_is_small() -> None:
    big = [{"metrics": {"n_reference": 10_000}}, {"metrics": {}}]
    assert report._reference_text(big) == "10,000 real validation images"
    small = [{"metrics": {"n_reference": 631}}]
    assert report._reference_text(small).startswith("631 real validation images (fewer than 5,000: FID is biased")
    assert "not journaled" in report._reference_text([{"metrics": {}}])
