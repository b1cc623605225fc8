"""Does a compared run's generator copy its training images? Nearest-neighbour distances in pixels.

FID against a reference of a few hundred images (emoji's test split holds 631) cannot tell a generator that
draws new images from one that reproduces training images. This measures, in pixel space (images scaled to
[0, 1], flattened), how far each generated image lies from its nearest train image, beside how far each
held-out test image lies from its nearest train image: a copying generator sits closer to the train split
than unseen real images do. Both the searched best and the compare's equal-seconds DCGAN are checked.

Run (from the folder the run's dataset path is relative to, as for the run itself):
    python experiments/check_memorization.py ../cmp/emoji-w36-s1-lab ../cmp/emoji-w36-s1-self

Each argument is a run directory that ``gan-nas compare`` has written into (it reads compare.json's best id
and its DCGAN's checkpoint). Prints one line per model; what it found is in samples/emoji/NOTES.md.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def nearest_distances(images: np.ndarray, reference: np.ndarray, batch: int = 256) -> np.ndarray:
    """Euclidean distance from each of ``images`` to its nearest image of ``reference``, both uint8-range
    arrays (N, H, W, C), scaled to [0, 1]; in batches, so that the distance matrix stays small."""
    ref = reference.reshape(len(reference), -1).astype(np.float64) / 255.0
    ref_sq = (ref ** 2).sum(1)
    out = []
    for start in range(0, len(images), batch):
        x = images[start:start + batch].reshape(-1, ref.shape[1]).astype(np.float64) / 255.0
        sq = (x ** 2).sum(1)[:, None] - 2.0 * x @ ref.T + ref_sq[None]
        out.append(np.sqrt(np.maximum(sq.min(1), 0.0)))  # rounding can leave tiny negatives
    return np.concatenate(out) if out else np.zeros(0)


def generated(gen, latent: int, n: int, seed: int) -> np.ndarray:
    """``n`` images of a generator as uint8, as a saved sample would be, on the latent draws of ``seed``."""
    from gan_nas import fitness, images

    return images.to_uint8(np.asarray(gen(fitness.latent_noise(n, latent, seed), training=False)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="compared run directories")
    ap.add_argument("--n", type=int, default=1000, help="generated images per model")
    ap.add_argument("--seed", type=int, default=7, help="latent draws (the same for every model)")
    args = ap.parse_args(argv)

    from gan_nas import data, runs, runtime

    runtime.start_tensorflow(0)
    loaded: dict[tuple, object] = {}
    for run_dir in args.runs:
        store, cfg = runs.open_run(run_dir)
        key = (cfg.data.dataset, cfg.data.image_size, cfg.data.channels, cfg.data.background)
        if key not in loaded:
            ds = data.load(cfg.data.dataset, cfg.data.data_dir, cfg.data.image_size, cfg.data.channels,
                           cfg.data.background)
            test = nearest_distances(ds.x_test, ds.x_train)
            loaded[key] = (ds, test)
            print(f"{cfg.data.dataset}: test -> train nearest distance median {np.median(test):.2f}, "
                  f"10th percentile {np.percentile(test, 10):.2f} (n = {len(test)})")
        ds, test = loaded[key]
        compared = json.loads((store.root / "compare.json").read_text())
        dcgan_row = next(r for r in compared["rows"] if r["key"] == "dcgan_equal_seconds")
        baseline_store, baseline_cfg = runs.open_run(store.root / compared["baseline_dirs"]["equal_seconds"])
        models = (("searched " + compared["best_id"], runs.load_candidate_generator(store, cfg, compared["best_id"])),
                  ("DCGAN " + dcgan_row["checkpoint"],
                   runs.load_candidate_generator(baseline_store, baseline_cfg, dcgan_row["checkpoint"])))
        for label, gen in models:
            d = nearest_distances(generated(gen, int(gen.input_shape[-1]), args.n, args.seed), ds.x_train)
            print(f"{store.root.name} {label}: generated -> train median {np.median(d):.2f}, 10th percentile "
                  f"{np.percentile(d, 10):.2f}, closer than the test images' 10th percentile: "
                  f"{np.mean(d < np.percentile(test, 10)):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
