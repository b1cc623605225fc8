"""``gan-nas baseline`` and ``gan-nas compare`` (and report, generate, fid on a real run).

The slow tests run the real search on a tiny synthetic dataset (16x16, 2+2
candidates of 3 steps), then train and compare the DCGAN against it. The fast
ones check every bad input: budgets, directories that are not baselines,
mismatched configs, and damaged run directories.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_report import PNG_MAGIC, assert_one_error_line, assert_png, make_npz, run_cli, tiny_config

from gan_nas import baseline_run, data, fitness
from gan_nas import search as searching
from gan_nas.baseline import dcgan
from gan_nas.config import Config
from gan_nas.errors import ConfigError, GanNasError
from gan_nas.runs import open_run
from gan_nas.store import RunStore


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny dataset, its config as TOML, and a classifier cache shared by the module."""
    d = tmp_path_factory.mktemp("compare")
    npz = make_npz(d / "shapes16.npz")
    (d / "tiny.toml").write_text(
        f'[data]\ndataset = "npz:{npz}"\nbatch_size = 16\n'
        "[training]\nsteps = 3\nlog_every = 1000\n"
        "[fitness]\nn_search = 64\nn_report = 80\nclassifier_epochs = 1\nbatch_size = 64\n"
        "[space]\nmax_g_blocks = 2\nmax_d_blocks = 2\nmax_filters = 32\n"
        "[search]\ngenerations = 1\npopulation = 2\noffspring = 2\n"
    )
    return d


@pytest.fixture(autouse=True)
def _cache(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAN_NAS_CACHE", str(workdir / "cache"))


@pytest.fixture(scope="module")
def searched_run(workdir: Path) -> Path:
    """A real finished search: generation 0 and 1 of two candidates each."""
    from gan_nas import config

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GAN_NAS_CACHE", str(workdir / "cache"))
        searching.search(config.load(workdir / "tiny.toml"), workdir / "run", quiet=True)
    return workdir / "run"


def journal(d: Path) -> list[dict]:
    return RunStore.open(d).journal()


# --- slow: real training ----------------------------------------------------------------------


@pytest.mark.slow
def test_baseline_trains_continues_and_rescores(workdir: Path, tmp_path: Path, capsys) -> None:
    b = tmp_path / "baseline"
    code, out, err = run_cli(["baseline", "--config", str(workdir / "tiny.toml"), "--run-dir", str(b),
                              "--steps", "4", "--json", "--quiet"], capsys)
    assert code == 0, err
    first = json.loads(out)
    assert first["steps"] == 4 and first["n"] == 80 and first["model"] == "dcgan"
    assert first["params"] == {"g": 1_452_352, "d": 208_641}  # the tutorial DCGAN at 16x16x1
    assert [r["total_steps"] for r in journal(b)] == [3, 4]  # chunks of training.steps

    # A second invocation continues from the last checkpoint (no --config: the directory's own).
    code, out, err = run_cli(["baseline", "--run-dir", str(b), "--steps", "9", "--json", "--quiet"], capsys)
    assert code == 0, err
    second = json.loads(out)
    recs = journal(b)
    assert second["steps"] == 9 and second["chunks"] == len(recs) == 4
    assert [r["kind"] for r in recs] == ["initial", "continue", "continue", "continue"]
    assert [r["parents"] for r in recs[1:]] == [["b0000"], ["b0001"], ["b0002"]]
    from gan_nas import builder
    from gan_nas.baseline import dcgan

    shape = (16, 16, 1)
    g, d = builder.build_generator(dcgan(shape), shape), builder.build_discriminator(dcgan(shape), shape)
    layers = {"g": sum(bool(x.weights) for x in g.layers), "d": sum(bool(x.weights) for x in d.layers)}
    assert all(r["inherited"] == layers for r in recs[1:])  # every layer with weights resumed
    assert [r["total_steps"] for r in recs] == [3, 4, 7, 9]
    assert second["seconds"] == pytest.approx(sum(r["seconds"]["total"] for r in recs), abs=1e-2)
    kept = sorted(p.parent.name for p in (b / "candidates").glob("*/weights.npz"))
    assert kept == ["b0003"]  # only the last chunk keeps its weights
    saved = json.loads((b / "baseline.json").read_text())
    assert saved == {k: v for k, v in second.items() if k != "run_dir"} and Path(second["run_dir"]).resolve() == b.resolve()
    assert {p.name for p in (b / "best").iterdir()} >= {"genome.json", "candidate.json", "generator.keras"}

    # A met budget trains nothing and reuses the score.
    code, out, _ = run_cli(["baseline", "--run-dir", str(b), "--steps", "9", "--json", "--quiet"], capsys)
    assert code == 0 and json.loads(out) == second and len(journal(b)) == 4

    # Another directory can start from this one's end: only the extra steps are trained, all are counted.
    from gan_nas import baseline_run
    from gan_nas.config import load

    f = tmp_path / "forked"
    forked = baseline_run.train_baseline(load(workdir / "tiny.toml"), f, steps=12, quiet=True,
                                    start_from=b)
    frecs = journal(f)
    assert forked["steps"] == 12 and [r["total_steps"] for r in frecs] == [12]
    assert frecs[0]["inherited"] == layers and frecs[0]["forked_from"]["checkpoint"] == "b0003"
    assert frecs[0]["forked_from"]["run_dir"] == "../baseline"  # relative: the two may move together
    assert forked["seconds"] == pytest.approx(second["seconds"] + frecs[0]["seconds"]["total"], abs=1e-2)
    again = baseline_run.train_baseline(None, f, steps=14, quiet=True)  # continued on its own, still counting the start
    assert again["steps"] == 14 and again["forked_from"] == forked["forked_from"]
    assert again["seconds"] == pytest.approx(second["seconds"] + sum(r["seconds"]["total"] for r in journal(f)),
                                             abs=1e-2)

    # generate works on a baseline directory.
    code, out, err = run_cli(["generate", str(b), "--out", str(tmp_path / "g.png"), "--n", "4", "--json"], capsys)
    assert code == 0, err
    assert (tmp_path / "g.png").read_bytes()[:8] == PNG_MAGIC


def _fmt_md(v: float) -> str:
    return f"{v:.2f}"


@pytest.mark.slow
def test_compare_at_equal_compute(searched_run: Path, capsys) -> None:
    code, out, err = run_cli(["compare", str(searched_run), "--json", "--quiet"], capsys)
    assert code == 0, err
    r = json.loads(out)
    recs = journal(searched_run)
    best = json.loads((searched_run / "best" / "candidate.json").read_text())
    compute = sum(x["seconds"]["total"] for x in recs)
    assert r["compute_seconds"] == pytest.approx(compute, abs=1e-2)
    assert r["best_id"] == best["id"] and r["best_steps"] == best["total_steps"]
    searched, by_time, by_steps = r["rows"]
    assert [x["key"] for x in r["rows"]] == ["searched", "dcgan_equal_seconds", "dcgan_equal_steps"]
    assert all(x["n"] == 80 for x in r["rows"])  # fitness.n_report, not n_search
    assert searched["params"] == best["params"]
    assert by_time["seconds"] >= compute  # the DCGAN got at least the search's compute
    assert by_steps["steps"] == best["total_steps"]
    # the equal-steps DCGAN is the equal-seconds run's checkpoint at exactly that step count, not another run
    kept = json.loads((searched_run / "baseline" / "state.json").read_text())["kept"][str(best["total_steps"])]
    assert next(x for x in journal(searched_run / "baseline") if x["id"] == kept)["total_steps"] == best["total_steps"]
    assert (by_steps["run_dir"], by_steps["checkpoint"]) == ("baseline", kept)
    assert by_steps["seconds"] < by_time["seconds"]
    assert not (searched_run / "baseline-steps").exists()
    assert r["fid_ratio"]["equal_seconds"] == pytest.approx(searched["fid"] / by_time["fid"])
    assert r["fid_ratio"]["equal_steps"] == pytest.approx(searched["fid"] / by_steps["fid"])
    assert Path(r["run_dir"]).resolve() == searched_run.resolve() and r["run"] == "run"
    # how fast the DCGAN genome trained in the search (evolution's first candidate) and in the baseline
    genome = dcgan((16, 16, 1)).to_dict()
    mine = [x for x in recs if x["genome"] == genome and x["status"] == "ok"]
    base = journal(searched_run / "baseline")
    sp = r["dcgan_steps_per_second"]
    assert sp["search_trials"] == len(mine) >= 1
    assert sp["search"] == pytest.approx(sum(x["steps"] for x in mine) / sum(x["seconds"]["train"] for x in mine))
    assert sp["baseline"] == pytest.approx(sum(x["steps"] for x in base) / sum(x["seconds"]["train"] for x in base))
    assert sp["ratio"] == pytest.approx(sp["baseline"] / sp["search"])
    assert json.loads((searched_run / "compare.json").read_text()) == {k: v for k, v in r.items() if k != "run_dir"}
    # the run directory can be moved with its compare: every path written into it is relative to it
    assert r["files"]["grid"] == "compare_grid.png" and r["baseline_dirs"]["equal_seconds"] == "baseline"
    absolute = str(searched_run.resolve())
    written = [p for p in searched_run.rglob("*") if p.suffix in (".json", ".jsonl", ".md") and p.is_file()]
    assert {p.name for p in written} >= {"compare.json", "compare.md", "baseline.json", "state.json", "journal.jsonl"}
    assert [p for p in written if absolute in p.read_text()] == []

    md = (searched_run / "compare.md").read_text()
    assert "| model | FID | KID ± std | FID, selection | G params | D params | steps | seconds |" in md
    # reported on the test split with the report seed; "selection" on the validation split with the search's
    cfg = json.loads((searched_run / "config.json").read_text())["fitness"]
    cfg_run = json.loads((searched_run / "config.json").read_text())["run"]
    assert r["noise_seed"] == cfg["report_noise_seed"] != r["selection_noise_seed"] == cfg["noise_seed"]
    for row in r["rows"]:
        assert (row["split"], row["noise_seed"]) == ("test", cfg["report_noise_seed"])
        assert (row["selection"]["split"], row["selection"]["noise_seed"]) == ("validation", cfg["noise_seed"])
        assert row["selection"]["n_reference"] == r["n_validation"] and row["n_reference"] == r["n_reference"]
        assert r["selection_gap"][row["key"]] == pytest.approx(row["selection"]["fid"] - row["fid"], abs=1e-3)
        assert 0 <= row["precision"] <= 1 and 0 <= row["coverage"] <= 1 and row["class_kl"] >= 0
        assert f"| {_fmt_md(row['selection']['fid'])} |" in md
    # the searched best's selection score at n_search is the journal's, on the same split and first draws
    assert best["metrics"]["n_reference"] == r["n_validation"]
    assert "| model | precision | recall | density | coverage | class coverage | class kl |" in md
    assert f"| searched ({best['id']}) | {searched['fid']:.2f} | " in md
    assert f"| DCGAN, equal seconds | {by_time['fid']:.2f} | " in md
    assert f"| DCGAN, equal steps | {by_steps['fid']:.2f} | " in md
    assert f"**{r['fid_ratio']['equal_seconds']:.3f}** at equal seconds" in md
    assert f"Speed: the DCGAN genome trained at {sp['search']:.2f} generator steps per second inside the search" in md
    from gan_nas import compare as compare_mod

    faster = compare_mod._markdown({**r, "dcgan_steps_per_second": {**sp, "ratio": 1.5}})
    assert "they differ by more than 20%, so the machine was not as fast for both" in faster
    assert ("they differ by more than 20%" in md) == (abs(sp["ratio"] - 1) > 0.2)
    unknown = compare_mod._markdown({**r, "dcgan_steps_per_second": {**sp, "search": None, "ratio": None}})
    assert "the search did not train the DCGAN genome" in unknown
    # a row of low recall is named in compare.md and on the terminal, whatever its FID; the others are not
    from gan_nas.cli import _compare_text

    for row in r["rows"]:
        said = f"**{row['model']} has recall {row['recall']:.3f}** (below" in md
        assert said == (row["recall"] < compare_mod.COLLAPSE_RECALL), (row["model"], row["recall"])
    for recall, warned in ((0.003, True), (0.5, False)):
        rows = [{**row, "recall": recall} if row["key"] == "searched" else {**row, "recall": 0.6} for row in r["rows"]]
        varied = {**r, "rows": rows}
        assert (f"**{searched['model']} has recall {recall:.3f}**" in compare_mod._markdown(varied)) == warned
        assert (f"warning: {searched['model']} has recall {recall:.3f}" in _compare_text(varied)) == warned
        assert "DCGAN, equal seconds has recall" not in compare_mod._markdown(varied) + _compare_text(varied)
    n_ref = r["n_reference"]  # the fixture's whole test split: small, so compare.md says what that means
    assert 0 < n_ref < fitness.SMALL_REFERENCE and r["features"] == "classifier"
    assert f"against the test split ({n_ref:,} real images)" in md
    assert f"With a reference of only {n_ref:,} images FID's bias is large" in md
    for name in ("compare_searched.png", "compare_dcgan.png", "compare_grid.png"):
        assert_png(searched_run / name)
        assert name in md
    # the collapse bound: copies of one real image score no better than it, by the FID code itself
    _, run_cfg = open_run(searched_run)
    ds = data.load_config(run_cfg.data)
    test_ref = baseline_run.references(ds, run_cfg)["test"]
    for image in ds.x_test[:3]:
        constant = fitness.score_images(np.repeat(image[None], 80, axis=0), test_ref)["fid"]
        assert constant >= r["collapse_fid"] - 1e-3 * r["collapse_fid"], (constant, r["collapse_fid"])
    assert r["collapse_fid"] == pytest.approx(np.trace(test_ref.sigma))
    assert f"scores FID {r['collapse_fid']:.2f} at best" in md

    # Again: both baselines have trained enough, so nothing is trained and the scores repeat.
    before = {d: len(journal(searched_run / d)) for d in ("baseline",)}
    code, out, err = run_cli(["compare", str(searched_run), "--json", "--quiet"], capsys)
    assert code == 0, err
    again = json.loads(out)
    assert {d: len(journal(searched_run / d)) for d in before} == before
    assert [x["fid"] for x in again["rows"]] == [x["fid"] for x in r["rows"]]
    assert again["baseline_runs"] == {"seeds": [cfg_run["seed"]], "fid": [by_time["fid"]], "mean": by_time["fid"],
                                      "std": None}
    assert "times at equal seconds" not in (searched_run / "compare.md").read_text()

    # Two DCGANs at equal seconds: the run's is reused, one of the next seed is trained beside it, and the
    # ratio to their mean is given.
    code, out, err = run_cli(["compare", str(searched_run), "--json", "--quiet", "--baseline-runs", "2"], capsys)
    assert code == 0, err
    two = json.loads(out)
    seed = cfg_run["seed"] + 1
    assert (two["noise_seed"], two["n"]) == (r["noise_seed"], r["n"])  # the same scoring as the first compare
    assert [x["fid"] for x in two["rows"][:3]] == [x["fid"] for x in r["rows"]]
    assert {d: len(journal(searched_run / d)) for d in before} == before
    other = searched_run / f"baseline-seed{seed}"
    assert json.loads((other / "config.json").read_text())["run"]["seed"] == seed and journal(other)
    assert two["baseline_dirs"][f"equal_seconds_seed{seed}"] == other.name
    assert [x["key"] for x in two["rows"]] == ["searched", "dcgan_equal_seconds", "dcgan_equal_steps",
                                               f"dcgan_equal_seconds_seed{seed}"]
    extra = two["rows"][3]
    assert extra["seconds"] >= compute and extra["run_dir"] == other.name
    runs = two["baseline_runs"]
    assert runs["seeds"] == [seed - 1, seed] and runs["fid"] == [by_time["fid"], extra["fid"]]
    assert runs["fid"][0] != runs["fid"][1]  # another seed trains another DCGAN
    assert runs["mean"] == pytest.approx((by_time["fid"] + extra["fid"]) / 2)
    assert runs["std"] == pytest.approx(abs(by_time["fid"] - extra["fid"]) / 2 ** 0.5)
    assert two["fid_ratio"]["equal_seconds_mean"] == pytest.approx(searched["fid"] / runs["mean"])
    md = (searched_run / "compare.md").read_text()
    assert f"| DCGAN, equal seconds, seed {seed} | {extra['fid']:.2f} | " in md
    assert (f"The DCGAN was trained 2 times at equal seconds (run.seed {seed - 1}, {seed}): FID "
            f"{by_time['fid']:.2f}, {extra['fid']:.2f}, mean {runs['mean']:.2f} ± {runs['std']:.2f}. The searched "
            f"FID is **{two['fid_ratio']['equal_seconds_mean']:.3f}** times their mean.") in md


@pytest.mark.slow
def test_report_generate_and_fid_on_a_real_run(searched_run: Path, workdir: Path, tmp_path: Path, capsys) -> None:
    code, _, err = run_cli(["report", str(searched_run)], capsys)
    assert code == 0, err
    text = (searched_run / "report.md").read_text()
    state = RunStore.open(searched_run).read_state()
    assert f"best: **{state['hall_of_fame'][0]}**" in text
    for png in ("fid_generations.png", "fid_vs_size.png", "lineage.png"):
        assert_png(searched_run / "report" / png)
    assert "](samples/gen000.png)" in text and "](samples/gen001.png)" in text

    npz = tmp_path / "samples.npz"
    code, out, err = run_cli(["generate", str(searched_run), "--out", str(tmp_path / "g.png"), "--n", "100",
                              "--npz", str(npz), "--json"], capsys)
    assert code == 0, err
    with np.load(npz) as z:
        assert z["images"].shape == (100, 16, 16, 1) and z["images"].dtype == np.uint8
    # gan-nas fid reads the samples that generate wrote
    code, out, err = run_cli(["fid", "--dataset", f"npz:{workdir / 'shapes16.npz'}", "--samples", str(npz),
                              "--config", str(workdir / "tiny.toml"), "--json"], capsys)
    assert code == 0, err
    scores = json.loads(out)
    assert scores["n"] == 100 and np.isfinite(scores["fid"]) and scores["fid"] >= 0


# --- fast: bad input -------------------------------------------------------------------------


def test_baseline_needs_a_positive_budget(workdir: Path, tmp_path: Path, capsys) -> None:
    cfg = tiny_config(workdir / "shapes16.npz")
    with pytest.raises(GanNasError, match="--seconds S or --steps N"):
        baseline_run.train_baseline(cfg, tmp_path / "b")
    for flag, value, match in (("--seconds", "0", "--seconds must be positive"),
                               ("--steps", "0", "--steps must be from 1 to 2**53, got 0")):
        code, _, err = run_cli(["baseline", "--config", str(workdir / "tiny.toml"), "--run-dir",
                                str(tmp_path / "b"), flag, value], capsys)
        assert_one_error_line(code, err, match)
    assert not (tmp_path / "b").exists()
    with pytest.raises(SystemExit) as e:  # argparse: one budget, not both
        run_cli(["baseline", "--run-dir", str(tmp_path / "b"), "--steps", "3", "--seconds", "3"], capsys)
    assert e.value.code == 2


def test_baseline_refuses_other_directories(workdir: Path, tmp_path: Path, capsys) -> None:
    # a new directory needs a config
    code, _, err = run_cli(["baseline", "--run-dir", str(tmp_path / "new"), "--steps", "3"], capsys)
    assert_one_error_line(code, err, "give --config FILE")
    # a directory with other files
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    code, _, err = run_cli(["baseline", "--config", str(workdir / "tiny.toml"), "--run-dir",
                            str(tmp_path / "full"), "--steps", "3"], capsys)
    assert_one_error_line(code, err, "is not empty and holds no baseline")
    # a search run directory
    store = RunStore.create(tmp_path / "search", tiny_config(workdir / "shapes16.npz").to_json())
    with store.locked():
        store.append({"id": "c0000", "status": "ok", "generation": 0, "kind": "initial", "parents": [],
                      "genome": dcgan((28, 28, 1)).to_dict(), "fitness": 10.0, "params": {"g": 1, "d": 1}, "steps": 3,
                      "seconds": {}})
        store.write_state({"generation": 0, "population": ["c0000"], "hall_of_fame": []})
    code, _, err = run_cli(["baseline", "--run-dir", str(store.root), "--steps", "3"], capsys)
    assert_one_error_line(code, err, "is a search run directory, not a baseline directory")
    assert [r["id"] for r in store.journal()] == ["c0000"]


def test_baseline_refuses_another_dataset(workdir: Path, tmp_path: Path) -> None:
    cfg = tiny_config(workdir / "shapes16.npz")
    RunStore.create(tmp_path / "b", cfg.to_json())
    other = Config.from_dict({**cfg.to_dict(), "fitness": {**cfg.to_dict()["fitness"], "n_report": 99}})
    with pytest.raises(ConfigError, match="other \\[data\\] or \\[fitness\\] settings"):
        baseline_run.train_baseline(other, tmp_path / "b", steps=3)


def _search_dir(tmp_path: Path, workdir: Path) -> Path:
    store = RunStore.create(tmp_path / "run", tiny_config(workdir / "shapes16.npz").to_json())
    with store.locked():
        store.append({"id": "c0000", "generation": 0, "status": "ok", "fitness": 10.0, "total_steps": 3,
                      "seconds": {"total": 1.0}, "params": {"g": 1, "d": 1}, "kind": "initial", "parents": [],
                      "genome": dcgan((28, 28, 1)).to_dict(), "steps": 3})
    return store.root


def test_compare_damaged_run_dirs(workdir: Path, tmp_path: Path, capsys) -> None:
    code, _, err = run_cli(["compare", str(tmp_path / "nope")], capsys)
    assert_one_error_line(code, err, "does not exist")

    run = _search_dir(tmp_path, workdir)
    code, _, err = run_cli(["compare", str(run)], capsys)
    assert_one_error_line(code, err, "has no best/ yet")

    with open(run / "journal.jsonl", "ab") as f:
        f.write(b"{not json}\n")
    code, _, err = run_cli(["compare", str(run)], capsys)
    assert_one_error_line(code, err, "corrupt journal line")

    shutil.copy(run / "config.json", tmp_path / "config.bak")
    (run / "config.json").unlink()
    code, _, err = run_cli(["compare", str(run)], capsys)
    assert_one_error_line(code, err, "has no config.json")
    assert not (run / "baseline").exists() and not (run / "compare.md").exists()


def test_compare_refuses_a_lineage_longer_than_the_journal(workdir: Path, tmp_path: Path, capsys) -> None:
    run = _search_dir(tmp_path, workdir)  # one evaluation of 3 steps
    (run / "best").mkdir()
    (run / "best" / "candidate.json").write_text(json.dumps({"id": "c0000", "total_steps": 10**12}))
    code, _, err = run_cli(["compare", str(run)], capsys)
    assert_one_error_line(code, err, "claims 1,000,000,000,000 steps, more than the 3 the whole journal records")
    assert not (run / "baseline").exists()


def test_compare_whose_outputs_cannot_be_files_trains_nothing(workdir: Path, tmp_path: Path, capsys) -> None:
    """compare.md a directory: the DCGAN trained at both budgets, then the write failed."""
    run = _search_dir(tmp_path, workdir)
    (run / "best").mkdir()
    (run / "best" / "candidate.json").write_text(json.dumps({"id": "c0000", "total_steps": 3}))
    (run / "compare.md").mkdir()
    code, _, err = run_cli(["compare", str(run)], capsys)
    assert_one_error_line(code, err, f"{run / 'compare.md'} exists and is not a regular file")
    assert not (run / "baseline").exists()


def test_compare_refuses_a_bad_number_of_baseline_runs_and_a_baseline_of_another_seed(workdir: Path, tmp_path: Path,
                                                                                     capsys) -> None:
    run = _search_dir(tmp_path, workdir)
    (run / "best").mkdir()
    (run / "best" / "candidate.json").write_text(json.dumps({"id": "c0000", "total_steps": 3}))
    before = sorted(p.name for p in run.iterdir())
    for k in ("0", "11"):
        code, _, err = run_cli(["compare", str(run), "--baseline-runs", k], capsys)
        assert_one_error_line(code, err, f"--baseline-runs must be from 1 to 10 (each trains the DCGAN for the "
                                         f"search's seconds), got {k}")
    seed = json.loads((run / "config.json").read_text())["run"]["seed"]
    other = run / f"baseline-seed{seed + 1}"
    other.mkdir()
    cfg = json.loads((run / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**cfg, "run": {**cfg["run"], "seed": seed + 5}}))
    code, _, err = run_cli(["compare", str(run), "--baseline-runs", "2"], capsys)
    assert_one_error_line(code, err, f"{other} holds a DCGAN of run.seed {seed + 5}, not {seed + 1}")
    assert sorted(p.name for p in run.iterdir()) == sorted([*before, other.name])  # nothing trained or written
    assert [p.name for p in other.iterdir()] == ["config.json"]


def test_baseline_continued_from_a_damaged_checkpoint_leaves_no_empty_chunk(workdir: Path, tmp_path: Path,
                                                                           capsys) -> None:
    base = tmp_path / "b"
    code, _, err = run_cli(["baseline", "--config", str(workdir / "tiny.toml"), "--run-dir", str(base), "--steps", "2",
                            "--quiet"], capsys)
    assert code == 0, err
    (base / "candidates" / "b0000" / "weights.npz").write_bytes(b"PK\x03\x04 damaged")
    code, _, err = run_cli(["baseline", "--run-dir", str(base), "--steps", "4", "--quiet"], capsys)
    assert_one_error_line(code, err, "b0000 is missing or damaged")
    assert sorted(p.name for p in (base / "candidates").iterdir()) == ["b0000"]


def test_compare_refuses_a_search_as_baseline_dir(workdir: Path, tmp_path: Path, capsys) -> None:
    """--baseline-dir pointing at a search run is refused before anything is trained."""
    run = _search_dir(tmp_path, workdir)
    with pytest.raises(GanNasError, match="is a search run directory"):
        baseline_run._open_baseline(None, run)


def test_compare_and_resume_refuse_a_baseline_directory(workdir: Path, tmp_path: Path, capsys) -> None:
    """A baseline directory given as the search run is refused before anything is trained or written."""
    run = _search_dir(tmp_path, workdir)
    RunStore.open(run).write_state({"baseline": True, "generation": 0, "population": ["c0000"]})
    before = sorted(p.name for p in run.iterdir())
    code, _, err = run_cli(["compare", str(run)], capsys)
    assert_one_error_line(code, err, "is a DCGAN baseline directory, not a search run; compare the search run")
    code, _, err = run_cli(["search", "--resume", "--run-dir", str(run)], capsys)
    assert_one_error_line(code, err, "is a DCGAN baseline directory, not a search run; resume the search run")
    assert sorted(p.name for p in run.iterdir()) == before
