"""The installed ``gan-nas`` program, as a new user runs it: a whole search, then ``generate``.

It runs the console script that ``pip install`` put beside this Python, in a
subprocess with no help from the test's environment (no PYTHONPATH), so a
package that the code needs but pyproject.toml does not declare fails here:
TensorBoard once did, at every generation's end, on every fresh install.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import test_search
from PIL import Image
from test_search import write_config

fixture_dir = test_search.fixture_dir  # the bars dataset

BIN = Path(sys.executable).parent


def installed(program: str) -> str:
    path = BIN / program
    assert path.is_file(), f"{program} is not installed beside {sys.executable}: pip install -e '.[dev]'"
    return str(path)


def run(args: list[str], cwd: Path, cache: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["GAN_NAS_CACHE"] = str(cache)
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_installed_search_runs_whole_generations_and_generate_draws_from_it(fixture_dir, tmp_path):
    cfgp = write_config(fixture_dir, "installed", generations=1, survivor=2)
    search = run([installed("gan-nas"), "search", "--config", str(cfgp), "--run-dir", "run", "--json"],
                 tmp_path, tmp_path / "cache")
    assert search.returncode == 0, search.stderr
    assert "Traceback" not in search.stderr
    summary = json.loads(search.stdout)
    assert summary["done"] and summary["generations"] == 1 and summary["evaluations"] == 6
    rd = tmp_path / "run"
    # what each generation's end writes: TensorBoard scalars, a grid of the best, best/
    events = list((rd / "tb").glob("events.out.tfevents.*"))
    assert events and all(p.stat().st_size > 0 for p in events)
    assert sorted(p.name for p in (rd / "samples").glob("*.png")) == ["gen000.png", "gen001.png"]
    assert {p.name for p in (rd / "best").iterdir()} >= {"genome.json", "candidate.json", "generator.keras"}
    assert json.loads((rd / "best" / "candidate.json").read_text())["id"] == summary["best_id"]

    gen = run([installed("gan-nas"), "generate", "run", "--out", "grid.png", "--n", "16", "--npz", "s.npz"],
              tmp_path, tmp_path / "cache")
    assert gen.returncode == 0, gen.stderr
    with Image.open(tmp_path / "grid.png") as im:
        assert im.size[0] > 28 and im.size[1] > 28
    with np.load(tmp_path / "s.npz", allow_pickle=False) as z:
        assert z["images"].shape == (16, 28, 28, 1) and z["images"].dtype == np.uint8

    # the README's `tensorboard --logdir RUN_DIR/tb` has its program
    tb = run([installed("tensorboard"), "--version_tb"], tmp_path, tmp_path / "cache")
    assert tb.returncode == 0 and tb.stdout.strip(), tb.stderr
