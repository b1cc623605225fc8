"""Precision/recall, density/coverage and class scores: hand-checked cases, a brute-force cross-check
with scipy's cdist, block-size invariance, duplicates and every bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from gan_nas.errors import FitnessError
from gan_nas.quality import (
    class_coverage,
    class_kl,
    density_coverage,
    knn_radii,
    precision_recall,
    quality_scores,
)


def col(*values: float) -> np.ndarray:
    """1-D points as an (n, 1) feature array."""
    return np.array(values, dtype=np.float64)[:, None]


def brute_force(real: np.ndarray, fake: np.ndarray, k_pr: int, k_dc: int) -> dict[str, float]:
    """The papers' formulas on full cdist matrices. Sorted row i starts with real_i's own 0 (or a copy's
    exact 0, the same value), so index k is the k-th neighbour with the point left out once."""
    r_real = np.sort(cdist(real, real), axis=1)
    r_fake = np.sort(cdist(fake, fake), axis=1)
    d_fr = cdist(fake, real)  # (M, N)
    in_real_pr = d_fr <= r_real[:, k_pr][None, :]
    in_real_dc = d_fr <= r_real[:, k_dc][None, :]
    in_fake_pr = d_fr <= r_fake[:, k_pr][:, None]
    return {"precision": in_real_pr.any(axis=1).mean(), "recall": in_fake_pr.any(axis=0).mean(),
            "density": in_real_dc.sum() / (k_dc * len(fake)), "coverage": in_real_dc.any(axis=0).mean()}


# --- hand-checkable sets -----------------------------------------------------------------


def test_identical_sets():
    x = np.random.default_rng(0).normal(size=(300, 6))
    assert precision_recall(x, x, k=3) == (1.0, 1.0)
    # every ball holds its centre and its k neighbours, nothing else (continuous data: no ties):
    # density = N (k+1) / (k N) = 6/5, not 1; coverage = 1
    assert density_coverage(x, x, k=5) == (pytest.approx(6 / 5), 1.0)


def test_same_distribution_density_near_one():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(2000, 4)), rng.normal(size=(2000, 4))
    s = quality_scores(real, fake)
    assert s["density"] == pytest.approx(1.0, abs=0.1)
    assert s["coverage"] > 0.9 and s["precision"] > 0.8 and s["recall"] > 0.8


def test_far_shifted_cluster_scores_zero():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(200, 5))
    s = quality_scores(real, rng.normal(size=(150, 5)) + 100.0)
    assert s == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_fake_covers_one_of_two_clusters():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(150, 4)), rng.normal(size=(150, 4)) + 50.0
    real = np.concatenate([a, b])
    # fake = cluster a itself: each fake point sits in its own real ball; real a-points are fake points
    assert quality_scores(real, a) == {"precision": 1.0, "recall": 0.5, "density": pytest.approx(6 / 5),
                                       "coverage": 0.5}
    # fresh samples of cluster a: approximately the same
    s = quality_scores(real, rng.normal(size=(300, 4)))
    assert s["precision"] > 0.9 and 0.4 < s["recall"] <= 0.5 and 0.4 < s["coverage"] <= 0.5


def test_tiny_1d_by_hand():
    real, fake = col(0, 1, 2, 10, 11), col(0.5, 1.5, 5, 5.5)
    # k=1. real radii: 1,1,1,1,1 -> balls [-1,1] [0,2] [1,3] [9,11] [10,12], union [-1,3] u [9,12]
    #      fake radii: 1,1,0.5,0.5 -> balls [-.5,1.5] [.5,2.5] [4.5,5.5] [5,6], union [-.5,2.5] u [4.5,6]
    # precision: 0.5, 1.5 in; 5, 5.5 out -> 2/4.  recall: 0, 1, 2 in; 10, 11 out -> 3/5
    assert precision_recall(real, fake, k=1) == (0.5, 0.6)
    # density: 0.5 in [-1,1],[0,2]; 1.5 in [0,2],[1,3]; 5, 5.5 in none -> 4 / (1*4) = 1
    # coverage: balls 1-3 hold a fake point, [9,11] and [10,12] none -> 3/5
    assert density_coverage(real, fake, k=1) == (1.0, 0.6)
    # k=2. real radii: 2,1,2,8,9 -> balls [-2,2] [0,2] [0,4] [2,18] [2,20]
    # density: 0.5 -> 3 balls, 1.5 -> 3, 5 -> 2, 5.5 -> 2: 10 / (2*4) = 1.25; every ball holds one: 1
    assert density_coverage(real, fake, k=2) == (1.25, 1.0)


def test_ball_edge_counts_as_inside():
    # k=1: real balls [-1,1] [0,2]: fake 2 on the edge; fake balls [1,3] [2,4]: real 1 on the edge
    assert precision_recall(col(0, 1), col(2, 3), k=1) == (0.5, 0.5)


def test_duplicates_are_neighbours_at_distance_zero():
    real, fake = col(0, 0, 1, 3), col(-0.5, 0)
    # k=1: the two 0s are each other's neighbour, radius 0 (not 1): balls [0,0] [0,0] [0,2] [1,5]
    # precision: -0.5 out, 0 in -> 1/2.  fake radii .5,.5: balls [-1,0] [-.5,.5]; recall: 0, 0 in -> 2/4
    assert precision_recall(real, fake, k=1) == (0.5, 0.5)
    # density: 0 lies in [0,0] [0,0] [0,2] -> 3 / (1*2); coverage: balls 1-3 -> 3/4
    assert density_coverage(real, fake, k=1) == (1.5, 0.75)
    # k=2: radii 1,1,1,3 (the duplicate counts once, the point itself not at all): balls [-1,1] x2,
    # [0,2], [0,6]; density: -0.5 -> 2, 0 -> 4: 6 / (2*2) = 1.5; coverage 1
    assert density_coverage(real, fake, k=2) == (1.5, 1.0)


def test_exact_copies_with_zero_radius_far_from_origin():
    p = np.random.default_rng(4).normal(size=(1, 16)) + 1e3  # ||a||^2 + ||b||^2 - 2ab rounds badly here
    steps = np.zeros((3, 16))
    steps[[0, 1, 2], [0, 1, 2]] = 10.0, 20.0, 30.0
    real = np.concatenate([np.repeat(p, 4, axis=0), p + steps])  # 4 copies of p, q_i = p + 10 i e_i
    # k=3: each copy has radius 0 and its ball holds exactly the 4 copies. d(q_i, p) = 10 i is less than
    # d(q_i, q_j) = sqrt((10 i)^2 + (10 j)^2), so q_i's 3rd neighbour is a copy of p and its ball holds
    # q_i and the 4 copies, on its edge. Identical sets: density = (4*4 + 3*5) / (3*7) = 31/21.
    assert quality_scores(real, real.copy(), k_pr=3, k_dc=3) == {
        "precision": 1.0, "recall": 1.0, "density": pytest.approx(31 / 21), "coverage": 1.0}


def test_many_exact_copies_match_brute_force():
    # triplicated rows: k=2 gives them radius 0, so a copy is inside only if its distance comes out
    # exactly 0; the expansion alone misses about 1 in 10 of those at this offset from the origin
    rng = np.random.default_rng(10)
    x = rng.normal(size=(50, 64)) * 3 + rng.normal(size=64) * 10
    real = np.concatenate([x, x[:10], x[:10]])
    fake = real[rng.permutation(len(real))]
    got = quality_scores(real, fake, k_pr=2, k_dc=2, block=16)
    assert got == pytest.approx(brute_force(real, fake, 2, 2), abs=1e-12)
    assert got["precision"] == got["recall"] == got["coverage"] == 1.0


# --- cross-checks ------------------------------------------------------------------------


@pytest.mark.parametrize("k_pr,k_dc", [(3, 5), (1, 1), (7, 2)])
def test_matches_brute_force(k_pr, k_dc):
    rng = np.random.default_rng(5)
    real, fake = rng.normal(size=(200, 8)), 1.2 * rng.normal(size=(200, 8)) + 0.3
    got, want = quality_scores(real, fake, k_pr=k_pr, k_dc=k_dc, block=64), brute_force(real, fake, k_pr, k_dc)
    assert got == pytest.approx(want, abs=1e-12)
    assert precision_recall(real, fake, k=k_pr) == (got["precision"], got["recall"])
    assert density_coverage(real, fake, k=k_dc) == (got["density"], got["coverage"])
    assert 0 < got["precision"] < 1 and 0 < got["recall"] < 1 and 0 < got["coverage"] < 1


def test_block_size_does_not_change_anything():
    rng = np.random.default_rng(6)
    real, fake = rng.normal(size=(257, 5)), rng.normal(size=(193, 5)) + 0.5
    one = quality_scores(real, fake, block=10_000)
    for block in (1, 7, 64, 256):
        assert quality_scores(real, fake, block=block) == one
    assert precision_recall(real, fake, block=3) == precision_recall(real, fake, block=1000)


def test_float32_input_is_computed_in_float64():
    x = np.random.default_rng(7).normal(size=(100, 3)).astype(np.float32)
    y = np.random.default_rng(8).normal(size=(90, 3)).astype(np.float32)
    assert quality_scores(x, y) == quality_scores(x.astype(np.float64), y.astype(np.float64))


# --- classes -----------------------------------------------------------------------------


def test_class_scores_uniform_vs_one_class():
    real = np.repeat(np.arange(10), 50)
    uniform, single = np.repeat(np.arange(10), 30), np.full(300, 3)
    assert class_coverage(uniform, real, 10) == 1.0
    assert class_kl(uniform, real, 10) == pytest.approx(0.0, abs=1e-12)
    assert class_coverage(single, real, 10) == 0.1
    # KL(real || gen), q = (share + 1e-6) / (1 + 10e-6): 9 classes at 0.1 ln(0.1 (1 + 1e-5) / 1e-6)
    # = 0.1 * 11.51294 each, plus 0.1 ln(0.1 (1 + 1e-5) / (1 + 1e-6)) = -0.23026: about 10.1314
    want = 0.9 * math.log(0.1 * (1 + 1e-5) / 1e-6) + 0.1 * math.log(0.1 * (1 + 1e-5) / (1 + 1e-6))
    assert class_kl(single, real, 10) == pytest.approx(want, rel=1e-12)
    assert class_kl(single, real, 10) == pytest.approx(10.1314, abs=1e-4)


def test_class_coverage_threshold_and_reference_classes():
    gen = np.repeat(np.arange(10), [4, 6, 10, 10, 10, 10, 10, 10, 10, 20])  # 100 samples
    # no real labels: 10 equal shares of 10%, covered at half of it: class 0 (4%) is not, class 1 (6%) is
    assert class_coverage(gen, None, 10) == 0.9
    assert class_coverage(gen, None, 10, min_ratio=0.7) == 0.8  # 7%: class 1 fails too
    # only the classes the real data holds count, each against its real share (here 20%):
    # 0..4 -> classes 0 (4%) and 1 (6%) are below 10%: 3/5
    assert class_coverage(gen, np.arange(5), 10) == 0.6


def test_class_coverage_is_relative_to_each_real_share():
    # unbalanced real data: class 0 is 2% of it, class 1 98%; a generator that makes class 0 1.5% of
    # the time covers both (an absolute threshold of half a uniform share, 25%, would fail class 0)
    real = np.repeat([0, 1], [2, 98])
    assert class_coverage(np.repeat([0, 1], [15, 985]), real, 2) == 1.0
    assert class_coverage(np.repeat([0, 1], [5, 995]), real, 2) == 0.5  # 0.5% < half of 2%


def test_class_probabilities_are_read_by_argmax():
    rng = np.random.default_rng(9)
    probs = rng.dirichlet(np.ones(4), size=80)
    labels, real = probs.argmax(axis=1), rng.integers(0, 4, size=60)
    assert class_coverage(probs, real, 4) == class_coverage(labels, real, 4)
    assert class_kl(probs, real, 4) == class_kl(labels, real, 4)
    feats = rng.normal(size=(80, 3))
    s = quality_scores(feats, feats, fake_class=probs, real_class=real)  # n_classes read from probs
    assert set(s) == {"precision", "recall", "density", "coverage", "class_coverage", "class_kl"}
    assert s["class_kl"] == class_kl(labels, real, 4)
    assert set(quality_scores(feats, feats, fake_class=labels, n_classes=4)) == {
        "precision", "recall", "density", "coverage", "class_coverage"}


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize("call,match", [
    (lambda: precision_recall(col(0, 1, 2), col(0, 1, 2, 3), k=3), "needs at least k\\+1 = 4 real"),
    (lambda: precision_recall(col(0, 1, 2, 3), col(0, 1), k=3), "needs at least k\\+1 = 4 fake"),
    (lambda: quality_scores(np.zeros((5, 2)), np.ones((9, 2))), "needs at least k\\+1 = 6 real"),
    (lambda: density_coverage(col(0, 1), col(0, 1, 2), k=2), "needs at least k\\+1"),
    (lambda: density_coverage(col(0, 1, 2), np.zeros((0, 1)), k=2), "fake features are empty"),
    (lambda: quality_scores(np.zeros((9, 3)), np.zeros((9, 4))), "differ in dimension: 3 != 4"),
    (lambda: quality_scores(np.full((9, 3), np.nan), np.zeros((9, 3))), "real features contain 27 NaN or inf"),
    (lambda: quality_scores(np.zeros((9, 3)), np.full((9, 3), np.inf)), "fake features contain"),
    (lambda: quality_scores(np.zeros(9), np.zeros(9)), "2-D array"),
    (lambda: precision_recall(col(0, 1, 2), col(0, 1, 2), k=0), "k must be an integer >= 1"),
    (lambda: quality_scores(col(*range(9)), col(*range(9)), k_dc=0), "k_dc must be"),
    (lambda: precision_recall(col(0, 1, 2), col(0, 1, 2), k=1, block=0), "block must be"),
    (lambda: class_coverage([0, 1, 10], None, 10), "must lie in \\[0, 10\\)"),
    (lambda: class_coverage([0.5, 1], None, 10), "integers"),
    (lambda: class_coverage([0, 1], None, 10, min_ratio=0), "min_ratio must be in"),
    (lambda: quality_scores(col(*range(9)), col(*range(9)), real_radii=np.zeros((2, 3))), "real_radii must"),
    (lambda: class_kl(np.ones((4, 3)), [0, 1], 4), "shape \\(n, 4\\)"),
    (lambda: class_kl([0, 1], [], 4), "real labels must be a non-empty"),
    (lambda: quality_scores(col(*range(9)), col(*range(9)), fake_class=[0, 1]), "n_classes is needed"),
    (lambda: quality_scores(col(*range(9)), col(*range(9)), real_class=[0, 1]), "without fake_class"),
])
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert isinstance(info.value, FitnessError)  # the CLI reports it as one line, exit code 2


def test_precomputed_real_radii_give_the_same_scores():
    rng = np.random.default_rng(4)
    real, fake = rng.normal(size=(300, 5)) + 40.0, rng.normal(size=(200, 5)) + 40.3  # far from the origin
    assert quality_scores(real, fake, real_radii=knn_radii(real, (3, 5))) == quality_scores(real, fake)


def test_density_coverage_needs_only_one_fake_point():
    # k=1: real balls [-1,1] [0,2] [1,3]; fake 1 lies in all three: density 3/(1*1), coverage 1
    assert density_coverage(col(0, 1, 2), col(1), k=1) == (3.0, 1.0)
