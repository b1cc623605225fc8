"""experiments/check_memorization.py: nearest-train-image distances in pixels."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "check_memorization.py"
spec = importlib.util.spec_from_file_location("check_memorization", SCRIPT)
check_memorization = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_memorization)


def test_nearest_distances_match_a_brute_force_search_across_batches():
    rng = np.random.default_rng(0)
    reference = rng.integers(0, 256, (40, 4, 4, 3), dtype=np.uint8)
    images = rng.integers(0, 256, (25, 4, 4, 3)).astype(np.float32)
    got = check_memorization.nearest_distances(images, reference, batch=7)  # batches of 7, 7, 7, 4
    ref = reference.reshape(40, -1) / 255.0
    want = [np.min(np.linalg.norm(ref - x.reshape(-1).astype(np.float64) / 255.0, axis=1)) for x in images]
    assert got == pytest.approx(want, abs=1e-9)


def test_a_copy_of_a_reference_image_is_at_distance_zero():
    reference = np.random.default_rng(1).integers(0, 256, (10, 8, 8, 1), dtype=np.uint8)
    got = check_memorization.nearest_distances(reference[[3, 7]], reference)
    assert got == pytest.approx([0.0, 0.0], abs=1e-6)
    assert check_memorization.nearest_distances(reference[:0], reference).shape == (0,)
