"""experiments/compare_seeds.py: the table over seeds of several compare results."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "compare_seeds.py"
spec = importlib.util.spec_from_file_location("compare_seeds", SCRIPT)
compare_seeds = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare_seeds)


def _compare(folder: Path, searched: float, dcgan: float | list[float]) -> Path:
    """A compare.json with the fields compare writes that the table reads."""
    runs = dcgan if isinstance(dcgan, list) else [dcgan]
    row = {"kid": 1.0, "steps": 100, "seconds": 60.0}
    data = {
        "baseline_runs": {"fid": runs, "mean": sum(runs) / len(runs)},
        "rows": [{**row, "key": "searched", "fid": searched},
                 {**row, "key": "dcgan_equal_seconds", "fid": runs[0]},
                 {**row, "key": "dcgan_equal_steps", "fid": 2 * searched}],
    }
    folder.mkdir(parents=True)
    (folder / "compare.json").write_text(json.dumps(data))
    return folder


def test_ratio_of_means_and_interval(tmp_path, capsys):
    dirs = [_compare(tmp_path / "s0", 10.0, 40.0), _compare(tmp_path / "s1", 30.0, 20.0),
            _compare(tmp_path / "s2", 20.0, [30.0, 50.0])]  # seed 2: the mean of its two DCGANs, 40
    assert compare_seeds.main([*map(str, dirs), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    summary = out["summary"]
    assert summary["ratio_of_means"] == pytest.approx(20.0 / (100.0 / 3))
    assert summary["median_ratio"] == pytest.approx(0.5)
    assert summary["won"] == 2
    low, high = summary["ratio_of_means_95"]
    # the interval spans the resampled seeds' ratios: from all-seed-0 (0.25) to all-seed-1 (1.5) at most
    assert 0.25 <= low < summary["ratio_of_means"] < high <= 1.5
    assert [r["dcgan_runs"] for r in out["compares"]] == [1, 1, 2]


def test_markdown_table_has_a_row_per_compare(tmp_path, capsys):
    dirs = [_compare(tmp_path / "a", 10.0, 40.0), _compare(tmp_path / "b", 30.0, 20.0)]
    assert compare_seeds.main([str(dirs[0] / "compare.json"), str(dirs[1])]) == 0
    out = capsys.readouterr().out
    assert "| a | 10.00 (1.00) |" in out and "| b | 30.00 (1.00) |" in out
    assert "ratio of the means 0.67" in out and "won 1 of 2" in out


def test_one_compare_has_no_spread(tmp_path, capsys):
    folder = _compare(tmp_path / "only", 10.0, [30.0, 50.0])
    assert compare_seeds.main([str(folder), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)["summary"]  # strict JSON: no NaN
    assert summary["searched_std"] is None and summary["ratio_of_means"] == pytest.approx(0.25)
    assert compare_seeds.main([str(folder)]) == 0
    out = capsys.readouterr().out
    assert "10.00 ± n/a" in out and "40.00, mean of 2 (1.00, the first run's)" in out


NAN_FID = json.dumps({"rows": [{"key": "searched", "fid": float("nan"), "kid": 1.0, "steps": 1, "seconds": 1.0},
                                {"key": "dcgan_equal_seconds", "fid": 40.0, "kid": 1.0, "steps": 1, "seconds": 1.0}]})


@pytest.mark.parametrize("content", [None, "{not json", json.dumps({"rows": []}), "[1, 2]", NAN_FID])
def test_a_missing_or_malformed_compare_exits_2_naming_it(tmp_path, capsys, content):
    folder = tmp_path / "bad"
    folder.mkdir()
    if content is not None:
        (folder / "compare.json").write_text(content)
    assert compare_seeds.main([str(folder)]) == 2
    err = capsys.readouterr().err
    assert "compare.json" in err and len(err.strip().splitlines()) == 1
