"""Benchmark: the cost of scoring a candidate, and a sanity check that the metric ranks disturbances.

Default mode: seconds to score 10,000 samples of the tutorial DCGAN generator
with the cached reference, against the seconds that a candidate's training
takes (N steps of the DCGAN at batch 64 through ``gan.train_candidate``, the
path every candidate takes), and their ratio (target: under 10%).

    python experiments/bench_fid.py --dataset mnist --data-dir ../shared/data/mnist

Scoring compiles the generator into one tf.function (gan_nas.fitness): measured here, 6.0 s
against 7.7 s eager for 10,000 DCGAN samples on two threads, a few percent faster at n = 1,000
on one.

``--disturbances``: is FID a sound metric with this dataset's feature network?
With FID and KID it prints gan_nas.quality's metrics on the same features:
precision and density (fidelity), recall and coverage (diversity), and class
coverage and class KL where the features are a classifier's; and, per
disturbance, whether it costs what it should: the fidelity disturbances (noise,
blur, rectangles, salt-and-pepper, contamination, and noise on a share of the
images) fidelity, dropping categories diversity (each at least 1.5x the
other's relative loss). For each feature kind
(``classifier``, trained on the classes, and ``self``,
self-supervised on rotations; ``--features`` picks one), the held-out test
split is cut in two halves that the network never saw: a reference half and a
probe half. The probe is scored against the reference (FID and KID) clean and
under Gaussian noise, blur, occluding rectangles, salt-and-pepper,
contamination by another dataset (MNIST for colour sets, Fashion-MNIST for
MNIST), at four strengths each (from just visible to strong), and with 1, 2,
4 and 6 categories dropped (the probe resampled to its size from the rest; the
mean over 10 random choices of the categories). Each row should rise. A last
line scores samples of train images (seen by the network) against the same
reference, at the probe's size: how far the features of seen images are from
unseen ones.

    python experiments/bench_fid.py --disturbances --dataset mnist --data-dir ../shared/data/mnist
    python experiments/bench_fid.py --disturbances --config experiments/emoji.toml

Measured on 2 CPU cores (MNIST, classifier 99.38%): scoring 10,000 samples
6.0 s (of which 2.2 s of features, the rest drawing them from the DCGAN
generator), 2,000 samples (``n_search``) 1.3 s; 300 DCGAN train steps 37.1 s.
Ratio 0.16 at n=10,000 and 0.035 at n=2,000. Drawing n samples costs n
generator forward passes, against 3 x 64 x steps passes (forward and backward)
in training, so at 300 steps the 10% target is reachable only at the search's n,
not at the report's 10,000 (which is scored once per report, not per candidate).

Figures are printed as ``name=value`` lines (``--disturbances``: markdown
tables). The feature networks are trained on the first run (minutes) and
cached under ``$GAN_NAS_CACHE``.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import time
from pathlib import Path

import numpy as np

from gan_nas import config, data, fitness
from gan_nas.config import FitnessConfig

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


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
    elif kind == "rectangles":  # five rectangles of random colours, sides up to `level` x the image side
        n, h, w, _ = x.shape
        for i in range(n):
            for _ in range(5):
                rh, rw = (np.maximum(1, level * np.array([h, w]) * rng.uniform(0.5, 1.0, 2))).astype(int)
                r, c = rng.integers(0, h - rh + 1), rng.integers(0, w - rw + 1)
                f[i, r:r + rh, c:c + rw] = rng.integers(0, 256, x.shape[-1])
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


# --disturbances: strengths 1-4 of each kind (0 is the clean probe)
STRENGTHS = {
    "noise": (16, 32, 64, 128),  # Gaussian, std in grey levels (8 is below what FID can tell at n = 316)
    "blur": (0.5, 1.0, 1.5, 2.0),  # Gaussian, sigma in pixels
    "rectangles": (0.1, 0.2, 0.3, 0.4),  # five, sides up to this fraction of the image
    "salt_pepper": (0.01, 0.03, 0.1, 0.3),  # fraction of pixels
    "contamination": (0.1, 0.25, 0.5, 0.75),  # fraction of the probe replaced by another dataset's images
    "noisy_share": (0.1, 0.25, 0.5, 0.75),  # fraction of the probe given noise of std NOISY_SHARE_SIGMA
}
NOISY_SHARE_SIGMA = 64  # grey levels: strength 3 of "noise", where precision was near 0 on MNIST
CONTAMINANTS = {"mnist": ("fashion_mnist", SHARED / "fashion-mnist")}  # others: MNIST
DROP_DRAWS = 10  # random choices of the categories dropped, per strength
SEEN_DRAWS = 5  # samples of train images scored against the reference


def halves(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A seeded split of range(n) into a reference half and a probe half."""
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[: n // 2]), np.sort(order[n // 2:])


def contaminant(name: str, data_dir: str | None, shape: tuple[int, int, int]) -> np.ndarray:
    """Another dataset's test images, resized (bicubic) and converted to ``shape``."""
    from PIL import Image

    x = data.load(name, data_dir).x_test
    h, w, c = shape
    out = np.empty((len(x), h, w, c), np.uint8)
    for i, im in enumerate(x):
        pil = Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im).resize((w, h), Image.Resampling.BICUBIC)
        out[i] = np.asarray(pil.convert("L" if c == 1 else "RGB")).reshape(h, w, c)
    return out


# The metrics of a table, as (key, heading, scale): FID and KID, then gan_nas.quality's on the same features.
METRICS = [("fid", "FID", 1.0), ("kid", "KID x 1000", 1000.0), ("precision", "precision", 1.0),
           ("density", "density", 1.0), ("recall", "recall", 1.0), ("coverage", "coverage", 1.0),
           ("class_coverage", "class coverage", 1.0), ("class_kl", "class KL", 1.0)]
FIDELITY, DIVERSITY = ("precision", "density"), ("recall", "coverage")
# What should cost fidelity, not diversity: the pixel disturbances (of every image), and a share of the
# images made wrong (outliers from another dataset, or noisy) while the rest stay true.
FIDELITY_KINDS = ("noise", "blur", "rectangles", "salt_pepper", "contamination", "noisy_share")
CLEARLY = 1.5  # "clearly more": the one relative loss at least this many times the other


class Scorer:
    """FID, KID and the quality metrics of images against fixed reference features (the reference half)."""

    def __init__(self, ref: fitness.Reference, reference_images: np.ndarray, reference_labels: np.ndarray) -> None:
        from gan_nas import quality

        self.ref = ref
        self.features = ref.extract(reference_images)
        self.labels = reference_labels if ref.kind == "classifier" else None
        self.mu, self.sigma = fitness.activation_statistics(self.features)
        self.ks = (fitness.K_PRECISION_RECALL, fitness.K_DENSITY_COVERAGE)
        self.radii = quality.knn_radii(self.features, self.ks)

    def __call__(self, images: np.ndarray | list[np.ndarray]) -> dict[str, float]:
        """The metrics of ``images``; of a list of image sets, the means of theirs."""
        from gan_nas import quality

        if isinstance(images, list):
            each = [self(x) for x in images]
            return {k: float(np.mean([e[k] for e in each])) for k in each[0]}
        f, logits = self.ref.extract_with_logits(images)
        mu, sigma = fitness.activation_statistics(f)
        out = {"fid": fitness.frechet_distance(mu, sigma, self.mu, self.sigma),
               "kid": fitness.kernel_inception_distance(self.features, f)[0],
               **quality.quality_scores(self.features, f, *self.ks, real_radii=self.radii)}
        if self.labels is not None:
            n_classes = self.ref.n_classes
            out["class_coverage"] = quality.class_coverage(logits, self.labels, n_classes)
            out["class_kl"] = quality.class_kl(logits, self.labels, n_classes)
        return out


def relative_loss(values: list[dict[str, float]], keys: tuple[str, ...]) -> float:
    """Mean over strengths 1-4 and over ``keys`` of the loss relative to strength 0: (v0 - v) / v0."""
    return float(np.mean([(values[0][k] - v[k]) / values[0][k] for v in values[1:] for k in keys
                          if values[0][k] > 0]))


def validity_line(name: str, values: list[dict[str, float]]) -> str:
    """Whether a row costs what it should: fidelity for the fidelity kinds, diversity for the others."""
    fid_loss, div_loss = relative_loss(values, FIDELITY), relative_loss(values, DIVERSITY)
    if name.split(" ")[0] in FIDELITY_KINDS:
        ok, want = fid_loss >= CLEARLY * div_loss, "fidelity"
    elif name.startswith("drop_categories"):
        cls = relative_loss(values, ("class_coverage",)) if "class_coverage" in values[0] else None
        ok = div_loss >= CLEARLY * fid_loss and (cls is None or cls >= CLEARLY * fid_loss)
        want = "diversity" + ("" if cls is None else f" (class coverage loss {cls:.3f})")
    else:
        raise ValueError(f"no expectation for disturbance {name!r}")
    return f"| {name} | {fid_loss:.3f} | {div_loss:.3f} | {want} | {'yes' if ok else 'NO'} |"


def disturbance_rows(probe: np.ndarray, probe_y: np.ndarray, other: np.ndarray) -> list[tuple[str, list[str], list[np.ndarray]]]:
    """(name, strength labels, image sets at strengths 0-4) for every disturbance."""
    rows = []
    for kind, levels in STRENGTHS.items():
        if kind in ("contamination", "noisy_share"):  # a share of the images replaced, the rest left as they are
            rng = np.random.default_rng(0)
            noisy = disturb(probe, "noise", NOISY_SHARE_SIGMA)
            sets = [probe]
            for f in levels:
                mixed = probe.copy()
                k = int(round(f * len(probe)))
                which = rng.choice(len(probe), k, replace=False)
                mixed[which] = (other[rng.choice(len(other), k, replace=False)] if kind == "contamination"
                                else noisy[which])
                sets.append(mixed)
        else:
            sets = [probe] + [disturb(probe, kind, level) for level in levels]
        rows.append((kind, ["0", *(f"{v:g}" for v in levels)], sets))
    present = np.unique(probe_y)
    if len(present) >= 2:
        rows.append(drop_row(probe, probe_y, present))
    return rows


def drop_row(probe: np.ndarray, probe_y: np.ndarray, present: np.ndarray,
             draws: int = DROP_DRAWS) -> tuple[str, list[str], list[list[np.ndarray]]]:
    """Mode dropping: k random categories gone, the probe resampled to its size from the rest.

    Which k matters as much as how many where categories are unbalanced (the
    emoji's largest holds 60%), so each strength is ``draws`` random choices of
    k categories, and its score their mean; strength 0 is resampled alike.
    """
    ks = [k for k in (1, 2, 4, 6) if k < len(present)][:4]
    rng = np.random.default_rng(1)
    orders = [rng.permutation(present) for _ in range(draws)]
    sets, labels = [], ["0"]
    for k in [0, *ks]:
        keeps = [np.flatnonzero(~np.isin(probe_y, order[:k])) for order in orders]
        sets.append([probe[rng.choice(keep, len(probe), replace=True)] for keep in keeps])
        if k:
            labels.append(f"{k} ({100 * (1 - np.mean([len(keep) for keep in keeps]) / len(probe)):.0f}%)")
    return f"drop_categories (mean of {draws})", labels, sets


def run_disturbances(ds: data.Dataset, cfg: FitnessConfig, kinds: list[str], other: np.ndarray) -> None:
    ref_i, probe_i = halves(len(ds.x_test))
    probe, probe_y = ds.x_test[probe_i], ds.y_test[probe_i]
    for kind in kinds:
        t0 = time.perf_counter()
        ref = fitness.reference(ds, dataclasses.replace(cfg, features=kind))
        score = Scorer(ref, ds.x_test[ref_i], ds.y_test[ref_i])
        print(f"\n### {ds.spec.name}, features={kind} (accuracy {100 * ref.accuracy:.2f}% on "
              f"{'classes' if kind == 'classifier' else 'rotations'}; reference {len(ref_i)} test images, probe "
              f"{len(probe_i)} others; {time.perf_counter() - t0:.0f} s to train or load)\n")
        table = [(name, labels, [score(x) for x in sets])
                 for name, labels, sets in disturbance_rows(probe, probe_y, other)]
        for key, metric, scale in METRICS:
            if key not in table[0][2][0]:
                continue
            worse = "rises" if key in ("fid", "kid", "class_kl") else "falls"
            print(f"| {metric} | strengths | 0 | 1 | 2 | 3 | 4 | {worse} |")
            print("|---|---|---:|---:|---:|---:|---:|---|")
            for name, labels, values in table:
                v = [scale * s[key] for s in values]
                monotone = all(a < b if worse == "rises" else a > b for a, b in zip(v, v[1:]))
                cells = [f"{x:.2f}" if key in ("fid", "kid") else f"{x:.3f}" for x in v] + [""] * (5 - len(v))
                print(f"| {name} | {' / '.join(labels[1:])} | {' | '.join(cells)} | {'yes' if monotone else 'NO'} |")
            print()
        print(f"Relative loss over strengths 1-4 (mean of (v0 - v) / v0): fidelity = precision and density, "
              f"diversity = recall and coverage; 'as it should' = the expected one at least {CLEARLY}x the other.\n")
        print("| disturbance | fidelity loss | diversity loss | should cost | as it should |")
        print("|---|---:|---:|---|---|")
        for name, _, values in table:
            print(validity_line(name, values))
        print()
        rng = np.random.default_rng(2)
        seen = [score(ds.x_train[rng.choice(len(ds.x_train), len(probe_i), replace=False)]) for _ in range(SEEN_DRAWS)]
        unseen = score(probe)
        seen_fid = ", ".join(f"{s['fid']:.2f}" for s in seen)
        seen_kid = ", ".join(f"{1000 * s['kid']:.2f}" for s in seen)
        print(f"seen_vs_unseen: {len(probe_i)} train images (seen in training; {SEEN_DRAWS} samples) FID "
              f"{seen_fid}, KID x 1000 {seen_kid}; "
              f"{len(probe_i)} held-out images FID {unseen['fid']:.2f}, KID x 1000 {1000 * unseen['kid']:.2f}")


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
    p.add_argument("--config", help="take [data] and [fitness] from this TOML config (--dataset is then ignored)")
    p.add_argument("--features", choices=("classifier", "self", "both"), default="both",
                   help="--disturbances: the feature networks to test (default both)")
    p.add_argument("--contaminant", help="--disturbances: dataset mixed in (default: fashion_mnist for mnist, "
                                         "else mnist)")
    p.add_argument("--contaminant-dir", help="its folder (default: beside the checkout, in shared/data)")
    args = p.parse_args()

    if args.config:
        run_cfg = config.load(args.config)
        ds, cfg = data.load_config(run_cfg.data), run_cfg.fitness
    else:
        ds, cfg = data.load(args.dataset, args.data_dir), FitnessConfig()
    if args.disturbances:
        name, where = CONTAMINANTS.get(ds.spec.name, ("mnist", SHARED / "mnist"))
        name = args.contaminant or name
        where = args.contaminant_dir or (str(where) if where.is_dir() and not args.contaminant else None)
        other = contaminant(name, where, ds.spec.shape)
        kinds = ["classifier", "self"] if args.features == "both" else [args.features]
        print(f"dataset={ds.spec.name} shape={ds.spec.shape} train={len(ds.x_train)} test={len(ds.x_test)} "
              f"classes={ds.spec.classes} contaminant={name}")
        run_disturbances(ds, cfg, kinds, other)
        return
    t0 = time.perf_counter()
    ref = fitness.reference(ds, cfg)
    print(f"dataset={ds.spec.name}")
    print(f"classifier_accuracy={ref.accuracy:.4f}")
    print(f"feature_dim={ref.feature_dim}")
    print(f"reference_seconds={time.perf_counter() - t0:.2f} (from_cache={ref.from_cache})")

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
