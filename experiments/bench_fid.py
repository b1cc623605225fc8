"""Benchmark: the cost of scoring a candidate, and a sanity check that the metric ranks disturbances.

Default mode: seconds to score 10,000 samples of the tutorial DCGAN generator
with the cached reference, against the seconds that a candidate's training
takes (N steps of the DCGAN at batch 64 through ``gan.train_candidate``, the
path every candidate takes), and their ratio (target: under 10%).

    python experiments/bench_fid.py --dataset mnist --data-dir ../shared/data/mnist

``--disturbances``: FID and KID of a real train sample (disjoint from the test
split) under disturbances of rising strength; each row of a kind should rise.

    python experiments/bench_fid.py --dataset mnist --data-dir ../shared/data/mnist --disturbances

Measured on 2 CPU cores (MNIST, classifier 99.38%): scoring 10,000 samples
6.0 s (of which 2.2 s of features, the rest drawing them from the DCGAN
generator), 2,000 samples (``n_search``) 1.3 s; 300 DCGAN train steps 37.1 s.
Ratio 0.16 at n=10,000 and 0.035 at n=2,000. Drawing n samples costs n
generator forward passes, against 3 x 64 x steps passes (forward and backward)
in training, so at 300 steps the 10% target is reachable only at the search's n,
not at the report's 10,000 (which is scored once per report, not per candidate).

Figures are printed as ``name=value`` lines. The classifier is trained on the
first run (minutes) and cached under ``$GAN_NAS_CACHE``.
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np

from gan_nas import data, fitness
from gan_nas.config import FitnessConfig


def disturb(x: np.ndarray, kind: str, level: float, seed: int = 0) -> np.ndarray:
    """A disturbed copy of uint8 images (N, H, W, C), as uint8."""
    rng = np.random.default_rng(seed)
    f = x.astype(np.float64)
    if kind == "noise":  # Gaussian, std in grey levels
        f = f + level * rng.standard_normal(x.shape)
    elif kind == "blur":  # Gaussian blur, sigma in pixels
        from scipy.ndimage import gaussian_filter

        f = gaussian_filter(f, (0, level, level, 0))
    elif kind == "salt_pepper":  # fraction of pixels set to 0 or 255
        hit = rng.random(x.shape[:3]) < level
        f[hit] = 255.0 * rng.integers(0, 2, hit.sum())[:, None]
    elif kind == "occlusion":  # a grey square of side `level` px at a random place
        n, h, w, _ = x.shape
        s = int(level)
        for i in range(n):
            r, c = rng.integers(0, h - s + 1), rng.integers(0, w - s + 1)
            f[i, r:r + s, c:c + s] = 128.0
    elif kind == "contrast":  # blend toward the image mean by `level` (0 = none, 1 = flat)
        m = f.mean(axis=(1, 2, 3), keepdims=True)
        f = m + (1.0 - level) * (f - m)
    elif kind == "shift":  # translate by `level` px in a random direction, zero fill
        out = np.zeros_like(f)
        s = int(level)
        for i in range(len(x)):
            dy, dx = rng.choice([-s, s]), rng.choice([-s, s])
            src = f[i, max(0, -dy):f.shape[1] - max(0, dy), max(0, -dx):f.shape[2] - max(0, dx)]
            out[i, max(0, dy):max(0, dy) + src.shape[0], max(0, dx):max(0, dx) + src.shape[1]] = src
        f = out
    elif kind == "jpeg":  # JPEG at quality `level`
        from PIL import Image

        out = np.empty_like(x)
        for i, im in enumerate(x):
            buf = io.BytesIO()
            Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im).save(buf, "JPEG", quality=int(level))
            out[i] = np.asarray(Image.open(buf)).reshape(im.shape)
        return out
    else:
        raise ValueError(kind)
    return np.clip(np.round(f), 0, 255).astype(np.uint8)


LEVELS = {
    "noise": (8, 16, 32, 64, 128),
    "blur": (0.5, 1.0, 1.5, 2.0, 3.0),
    "salt_pepper": (0.01, 0.03, 0.1, 0.3),
    "occlusion": (4, 8, 12, 16),
    "contrast": (0.2, 0.4, 0.6, 0.8),
    "shift": (1, 2, 3, 4),
    "jpeg": (75, 50, 25, 10, 5),
}


def run_disturbances(ds: data.Dataset, ref: fitness.Reference, n: int) -> None:
    x, y = ds.x_train[:n], ds.y_train[:n]
    s = fitness.score_images(x, ref)
    print(f"clean fid={s['fid']:.3f} kid={s['kid']:.5f}")
    for kind, levels in LEVELS.items():
        fids = []
        for level in levels:
            s = fitness.score_images(disturb(x, kind, level), ref)
            fids.append(s["fid"])
            print(f"{kind} level={level} fid={s['fid']:.3f} kid={s['kid']:.5f}")
        print(f"{kind} monotonic={all(a < b for a, b in zip(fids, fids[1:]))}")
    fids = []
    for k in range(0, ds.spec.classes, 2):  # mode collapse: classes < k missing, n kept by resampling
        idx = np.random.default_rng(0).choice(np.flatnonzero(y >= k), n)
        fids.append(fitness.score_images(x[idx], ref)["fid"])
        print(f"drop_classes k={k} fid={fids[-1]:.3f}")
    print(f"drop_classes monotonic={all(a < b for a, b in zip(fids, fids[1:]))}")


def train_seconds(ds: data.Dataset, steps: int, batch: int = 64) -> tuple[float, float]:
    """Seconds of ``steps`` DCGAN train steps through ``gan.train_candidate`` (the path every candidate
    takes), and the seconds it spent before them (build, trace and the first step)."""
    from gan_nas import baseline, gan

    opts = gan.TrainOptions(batch_size=batch, seed=0, log_every=0)
    r = gan.train_candidate(baseline.dcgan(ds.spec.shape), ds, steps + 1, options=opts, score=False)
    if r.status != "ok":
        raise SystemExit(f"the DCGAN did not train: {r.status} {r.error}")
    return r.seconds["train"], r.seconds["build"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--n", type=int, default=10_000, help="samples scored (default 10000)")
    p.add_argument("--steps", type=int, default=300, help="train steps of the reference candidate")
    p.add_argument("--disturbances", action="store_true", help="rank disturbances of real images instead")
    args = p.parse_args()

    ds = data.load(args.dataset, args.data_dir)
    cfg = FitnessConfig()
    t0 = time.perf_counter()
    ref = fitness.reference(ds, cfg)
    print(f"dataset={ds.spec.name}")
    print(f"classifier_accuracy={ref.accuracy:.4f}")
    print(f"feature_dim={ref.feature_dim}")
    print(f"reference_seconds={time.perf_counter() - t0:.2f} (from_cache={ref.from_cache})")
    if args.disturbances:
        run_disturbances(ds, ref, n=min(cfg.n_search, len(ds.x_train)))
        return

    from gan_nas import baseline, builder

    gen = builder.build_generator(baseline.dcgan(ds.spec.shape), ds.spec.shape)
    t0 = time.perf_counter()
    fitness.score(gen, ref, n=cfg.batch_size, noise_seed=cfg.noise_seed)  # first call traces the feature function
    print(f"first_score_{cfg.batch_size}_seconds={time.perf_counter() - t0:.2f}")
    t0 = time.perf_counter()
    s = fitness.score(gen, ref, n=args.n, noise_seed=cfg.noise_seed)
    score_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref.extract(ds.x_test[: args.n])
    feat_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    fitness.score(gen, ref, n=cfg.n_search, noise_seed=cfg.noise_seed)
    search_s = time.perf_counter() - t0
    train_s, warm_s = train_seconds(ds, args.steps)
    print(f"untrained_dcgan_fid={s['fid']:.2f}")
    print(f"score_{args.n // 1000}k_seconds={score_s:.2f}")
    print(f"features_{args.n // 1000}k_seconds={feat_s:.2f}")
    print(f"score_n_search_{cfg.n_search}_seconds={search_s:.2f}")
    print(f"candidate_train_steps={args.steps}")
    print(f"candidate_train_seconds={train_s:.2f} (plus {warm_s:.2f} s to build, trace and take the first step)")
    print(f"ratio={score_s / train_s:.3f}")
    print(f"ratio_n_search={search_s / train_s:.3f}")


if __name__ == "__main__":
    main()
