"""Fidelity and diversity of generated samples, measured apart, on feature vectors (numpy only).

* **precision / recall** -- Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric for
  Assessing Generative Models". A set's manifold is the union of the balls B(x, NND_k(x)) around its
  points, NND_k(x) being the distance from x to its k-th nearest neighbour in its own set.
  precision = (1/M) sum_j 1[fake_j in manifold(real)], recall = (1/N) sum_i 1[real_i in manifold(fake)].
* **density / coverage** -- Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for Generative
  Models", with balls around real points only:
  density = 1/(k M) sum_j sum_i 1[fake_j in B(real_i, NND_k(real_i))] (about 1 when both sets are
  independent samples of one distribution; identical sets give (k+1)/k, each ball holding its centre and
  its k neighbours), coverage = (1/N) sum_i 1[exists j: fake_j in B(real_i, NND_k(real_i))].
* **class_coverage / class_kl** -- the classes a classifier gives the generated samples.

Conventions: Euclidean distance in float64 on real (N, D) and fake (M, D) features; "in the ball" means
distance <= radius. NND_k excludes the point itself once and only once: a duplicate of a point is a
neighbour at distance 0 (k duplicates give a radius of 0, and the ball then holds only exact copies).
Memory: no N x N, M x M or M x N matrix is ever held, only ``block`` rows of one at a time: the peak
is about 2.3 * 8 * block * max(N, M) bytes (two float64/int64 blocks and a few boolean ones), about
25 MB for 10,000 points and the default :data:`BLOCK`, against 800 MB for one full 10,000 x 10,000 matrix.
"""

from __future__ import annotations

import numpy as np
from scipy.special import rel_entr

from gan_nas.errors import FitnessError

_REL_TOL = 1e-9  # pairs this close (relative to the squared norms) to a ball's edge are recomputed exactly
_EXACT_CHUNK = 1 << 16  # pairs recomputed per numpy call, so a degenerate set cannot blow up memory
# Rows per block. Small blocks keep each scratch array (block x 10,000 float64: 10 MB) under glibc's
# largest mmap threshold (32 MB), so freed blocks are reused from the heap; blocks of 80 MB (1,024 rows)
# were mapped fresh from the kernel and faulted in page by page for every block, which made a search
# worker's scoring slower and erratic, at worst many times its usual time (experiments/bench_quality.py).
# Results do not depend on the block size.
BLOCK = 128


class QualityError(FitnessError, ValueError):
    """Features or labels that cannot be scored; a ValueError, and a FitnessError for the CLI."""


def _features(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] == 0:
        raise QualityError(f"{name} features must be a 2-D array (n_points, n_features), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise QualityError(f"{name} features contain {np.size(x) - np.isfinite(x).sum()} NaN or inf values")
    return x


def _check_int(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise QualityError(f"{name} must be an integer >= 1, got {value!r}")


def _prepare(real, fake, k_real: int, k_fake: int | None, block: int) -> tuple[np.ndarray, np.ndarray]:
    real, fake = _features(real, "real"), _features(fake, "fake")
    if real.shape[1] != fake.shape[1]:
        raise QualityError(f"real and fake features differ in dimension: {real.shape[1]} != {fake.shape[1]}")
    _check_int(block, "block")
    for name, x, k in (("real", real, k_real), ("fake", fake, k_fake)):
        need = 1 if k is None else k + 1
        if len(x) < need:
            raise QualityError(f"k={k} needs at least k+1 = {need} {name} points (a point is not its own "
                               f"neighbour), got {len(x)}" if k else f"{name} features are empty")
    # Distances do not change under a shift; centring shrinks the norms, hence the rounding error of
    # ||a||^2 + ||b||^2 - 2ab (which cancels badly when the data sit far from the origin).
    centre = real.mean(axis=0)
    return real - centre, fake - centre


def _sqdist(a: np.ndarray, sq_a: np.ndarray, b: np.ndarray, sq_b: np.ndarray) -> np.ndarray:
    """Squared distances (len(a), len(b)) by ||a||^2 + ||b||^2 - 2ab (BLAS speed), in place, clipped at 0."""
    d2 = a @ b.T
    d2 *= -2.0
    d2 += sq_a[:, None]
    d2 += sq_b[None, :]
    return np.maximum(d2, 0.0, out=d2)


def _rowdist2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact squared distance of a[r] to b[r], by differences: identical rows give exactly 0."""
    diff = a - b
    return np.einsum("ij,ij->i", diff, diff)


def _knn_sqradii(x: np.ndarray, ks, block: int) -> np.ndarray:
    """Squared NND_k of every point of x, for each k in ks: shape (len(ks), len(x))."""
    ks = list(ks)
    kmax, sq = max(ks), np.einsum("ij,ij->i", x, x)
    out = np.empty((len(ks), len(x)))
    for s in range(0, len(x), block):
        xb = x[s:s + block]
        rows = np.arange(len(xb))
        d2 = _sqdist(xb, sq[s:s + block], x, sq)
        d2[rows, s + rows] = -1.0  # the point itself is always among the kmax+1 candidates...
        cand = np.argpartition(d2, kmax, axis=1)[:, :kmax + 1].copy()  # copy: frees the full index block
        del d2
        # ...and, recomputed exactly, sorts to index 0 (ties with duplicates at exactly 0 are harmless),
        # so index k is the k-th neighbour with the point dropped once and its duplicates kept.
        exact = np.stack([_rowdist2(xb, x[cand[:, c]]) for c in range(kmax + 1)], axis=1)
        exact.sort(axis=1)
        out[:, s:s + len(xb)] = exact[:, ks].T
    return out


def knn_radii(real, ks: tuple[int, ...], block: int = BLOCK) -> np.ndarray:
    """Squared k-NN radii (len(ks), N) of a real set, for :func:`quality_scores`' ``real_radii``.

    They depend on the real set only, so a reference computes them once and scores every generated
    set against them; the points are centred on their own mean, as :func:`quality_scores` centres them.
    """
    for k in ks:
        _check_int(k, "k")
    real = _features(real, "real")
    if len(real) <= max(ks):
        raise QualityError(f"k={max(ks)} needs at least k+1 = {max(ks) + 1} real points, got {len(real)}")
    return _knn_sqradii(real - real.mean(axis=0), ks, block)


def _cross(real, fake, r2_real: np.ndarray, r2_fake: np.ndarray, block: int):
    """Ball memberships between the sets, fake rows ``block`` at a time against all real points.

    Returns, per radius row: n_in (len(r2_real), M), the number of real balls holding fake_j;
    covered (len(r2_real), N), whether real_i's ball holds some fake point; in_fake (len(r2_fake), N),
    whether real_i lies in some fake ball.
    """
    sq_r, sq_f = np.einsum("ij,ij->i", real, real), np.einsum("ij,ij->i", fake, fake)
    n_in = np.zeros((len(r2_real), len(fake)), dtype=np.int64)
    covered = np.zeros((len(r2_real), len(real)), dtype=bool)
    in_fake = np.zeros((len(r2_fake), len(real)), dtype=bool)
    for s in range(0, len(fake), block):
        fb = fake[s:s + block]
        d2 = _sqdist(fb, sq_f[s:s + block], real, sq_r)
        # The expansion errs by ~D * 2^-52 * (||a||^2 + ||b||^2). Pairs that close to an edge get their
        # exact distance, so `<=` is honoured (a copy of a point sits in a radius-0 ball) and the result
        # does not depend on the block size or the BLAS kernel.
        tol = _REL_TOL * (sq_f[s:s + block].max() + sq_r.max())
        near, gap = np.zeros(d2.shape, dtype=bool), np.empty_like(d2)  # one scratch block, reused
        for r in [*(r[None, :] for r in r2_real), *(r[s:s + block, None] for r in r2_fake)]:
            np.abs(np.subtract(d2, r, out=gap), out=gap)
            near |= gap <= tol
        del gap
        ii, jj = np.nonzero(near)
        for c in range(0, len(ii), _EXACT_CHUNK):
            i, j = ii[c:c + _EXACT_CHUNK], jj[c:c + _EXACT_CHUNK]
            d2[i, j] = _rowdist2(fb[i], real[j])
        for q, r in enumerate(r2_real):
            inside = d2 <= r[None, :]
            n_in[q, s:s + block] = inside.sum(axis=1)
            covered[q] |= inside.any(axis=0)
        for q, r in enumerate(r2_fake):
            in_fake[q] |= (d2 <= r[s:s + block, None]).any(axis=0)
    return n_in, covered, in_fake


def precision_recall(real, fake, k: int = 3, block: int = BLOCK) -> tuple[float, float]:
    """(precision, recall) of Kynkäänniemi et al. 2019 with k-NN radii (see the module docstring)."""
    _check_int(k, "k")
    real, fake = _prepare(real, fake, k, k, block)
    n_in, _, in_fake = _cross(real, fake, _knn_sqradii(real, [k], block), _knn_sqradii(fake, [k], block), block)
    return float((n_in[0] > 0).mean()), float(in_fake[0].mean())


def density_coverage(real, fake, k: int = 5, block: int = BLOCK) -> tuple[float, float]:
    """(density, coverage) of Naeem et al. 2020; only the real set needs k+1 points."""
    _check_int(k, "k")
    real, fake = _prepare(real, fake, k, None, block)
    n_in, covered, _ = _cross(real, fake, _knn_sqradii(real, [k], block), np.empty((0, len(fake))), block)
    return float(n_in[0].sum() / (k * len(fake))), float(covered[0].mean())


def _class_counts(probs_or_labels, n_classes: int, name: str) -> np.ndarray:
    """Class histogram of hard labels (n,) or of the argmax of class probabilities (n, n_classes)."""
    _check_int(n_classes, "n_classes")
    a = np.asarray(probs_or_labels)
    if a.ndim == 2 and a.shape[1] == n_classes and a.dtype.kind in "iuf" and np.isfinite(a).all():
        a = a.argmax(axis=1)
    elif a.ndim == 2:
        raise QualityError(f"{name} class probabilities must be finite with shape (n, {n_classes}), got {a.shape}")
    if a.ndim != 1 or a.size == 0 or a.dtype.kind not in "iuf" or not np.all(a == np.round(a)):
        raise QualityError(f"{name} labels must be a non-empty 1-D array of integers, got shape {a.shape}")
    if a.min() < 0 or a.max() >= n_classes:
        raise QualityError(f"{name} labels must lie in [0, {n_classes}), got {a.min()}..{a.max()}")
    return np.bincount(a.astype(np.int64), minlength=n_classes)


def class_coverage(probs_or_labels_fake, real_labels, n_classes: int, min_ratio: float = 0.5) -> float:
    """Share of the real data's classes whose share of the generated samples is at least ``min_ratio``
    times their share of the real ones.

    The classes counted are those present in ``real_labels`` (None: all ``n_classes``, taken as
    equally frequent). The default, half its real share, is far above the sampling noise of a
    faithful generator (10 balanced classes, 10,000 samples: 1,000 +- 30 each) yet a nearly dropped
    class fails; being relative, it treats the rare classes of unbalanced data (emoji: 2% to 60%)
    like the common ones.
    """
    if not (isinstance(min_ratio, (int, float)) and 0 < min_ratio <= 1):
        raise QualityError(f"min_ratio must be in (0, 1], got {min_ratio!r}")
    counts = _class_counts(probs_or_labels_fake, n_classes, "generated")
    real = np.ones(n_classes) if real_labels is None else _class_counts(real_labels, n_classes, "real")
    p, q = real / real.sum(), counts / counts.sum()
    present = p > 0
    return float((q[present] >= min_ratio * p[present]).mean())


def class_kl(probs_or_labels_fake, real_labels, n_classes: int, eps: float = 1e-6) -> float:
    """KL(p_real || p_generated) = sum_c p_c log(p_c / q_c) of the class histograms, in nats.

    This direction weighs each class by its real frequency, so a class the generator drops (q_c -> 0)
    costs p_c log(p_c / eps): mode dropping, the failure to catch, dominates. The other direction gives
    dropped classes weight 0 (all samples in one of 10 classes would cost only log 10). q = (q + eps) /
    (1 + n_classes * eps) keeps it finite, at most log((1 + n_classes * eps) / eps) ~ 13.8 for eps=1e-6;
    classes absent from the real data add nothing (0 log 0 = 0).
    """
    p = _class_counts(real_labels, n_classes, "real").astype(np.float64)
    q = _class_counts(probs_or_labels_fake, n_classes, "generated").astype(np.float64)
    q = (q / q.sum() + eps) / (1.0 + n_classes * eps)
    return float(rel_entr(p / p.sum(), q).sum())


def quality_scores(real_feats, fake_feats, k_pr: int = 3, k_dc: int = 5, fake_class=None, real_class=None,
                   n_classes: int | None = None, block: int = BLOCK, real_radii=None) -> dict[str, float]:
    """precision, recall (k_pr), density, coverage (k_dc) and, given classes of the generated samples,
    class_coverage (and class_kl when ``real_class`` is given too). Every distance is computed once.

    ``fake_class``: labels (M,) or class probabilities (M, n_classes); ``n_classes`` is read from the
    probabilities' shape when omitted, and must be given with hard labels. ``real_radii``:
    ``knn_radii(real_feats, (k_pr, k_dc))``, computed beforehand (None: computed here).
    """
    _check_int(k_pr, "k_pr")
    _check_int(k_dc, "k_dc")
    real, fake = _prepare(real_feats, fake_feats, max(k_pr, k_dc), k_pr, block)
    if real_radii is None:
        r2_real = _knn_sqradii(real, (k_pr, k_dc), block)
    else:
        r2_real = np.asarray(real_radii, dtype=np.float64)
        if r2_real.shape != (2, len(real)):
            raise QualityError(f"real_radii must have shape (2, {len(real)}) (k_pr and k_dc radii of every "
                               f"real point), got {r2_real.shape}")
    n_in, covered, in_fake = _cross(real, fake, r2_real, _knn_sqradii(fake, (k_pr,), block), block)
    scores = {"precision": float((n_in[0] > 0).mean()), "recall": float(in_fake[0].mean()),
              "density": float(n_in[1].sum() / (k_dc * len(fake))), "coverage": float(covered[1].mean())}
    if fake_class is None:
        if real_class is not None:
            raise QualityError("real_class is given without fake_class")
        return scores
    if n_classes is None:
        if np.ndim(fake_class) != 2:
            raise QualityError("n_classes is needed when fake_class holds hard labels")
        n_classes = np.shape(fake_class)[1]
    scores["class_coverage"] = class_coverage(fake_class, real_class, n_classes)
    if real_class is not None:
        scores["class_kl"] = class_kl(fake_class, real_class, n_classes)
    return scores
