"""Fitness without labels: self-supervised features (which rotation was applied), chosen for datasets
without classes, cached like the classifier, a metric that ranks disturbances, and a search on a flat folder."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gan_nas import cli, config, data, fitness
from gan_nas import search as searching
from gan_nas.config import Config, FitnessConfig
from gan_nas.errors import FitnessError

N = 400  # images per compared set
SPEC = fitness.ClassifierSpec(width=8, feature_dim=32, epochs=100, max_steps=250, batch_size=64)
CFG = FitnessConfig(batch_size=200)


def draw(rng: np.random.Generator, size: int = 28) -> np.ndarray:
    """An image with a way up: a bright band at the top, a dark blob below, a random position and width."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    top = rng.uniform(3, 8)
    band = np.clip(top - yy, 0, 1)
    cy, cx, r = rng.uniform(size * 0.55, size * 0.75), rng.uniform(8, size - 8), rng.uniform(3, 6)
    blob = np.clip(r - np.hypot(yy - cy, xx - cx), 0, 1)
    return np.round(255 * np.clip(0.1 + 0.8 * band + 0.5 * blob, 0, 1)).astype(np.uint8)[..., None]


def unlabelled(n_train: int = 1200, n_test: int = N, seed: int = 0, shape=(28, 28, 1)) -> data.Dataset:
    """A dataset of one class (as a flat folder loads)."""
    rng = np.random.default_rng(seed)
    x = np.stack([draw(rng, shape[0]) for _ in range(n_train + n_test)])
    if shape[1] != shape[0]:
        x = np.concatenate([x, x[:, :, : shape[1] - shape[0]]], axis=2)
    y = np.zeros(len(x), np.int64)
    return data.Dataset(data.DatasetSpec("upright", tuple(shape), 1), x[:n_train], y[:n_train], x[n_train:],
                        y[n_train:], "synthetic")


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GAN_NAS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def self_ref(tmp_path_factory: pytest.TempPathFactory) -> tuple[fitness.Reference, data.Dataset, Path]:
    ds = unlabelled()
    cache = tmp_path_factory.mktemp("cache")
    return fitness.reference(ds, CFG, cache_dir=cache, spec=SPEC, verbose=False), ds, cache


def test_auto_takes_the_classifier_only_where_there_are_classes():
    ds = unlabelled(n_train=40, n_test=10)
    assert fitness.feature_kind(ds) == fitness.feature_kind(ds, "self") == "self"
    assert fitness.feature_kind(ds, "classifier") == "classifier"
    two = data.Dataset(data.DatasetSpec("two", (28, 28, 1), 2), ds.x_train, np.arange(40) % 2, ds.x_test,
                       np.arange(10) % 2, "synthetic")
    assert fitness.feature_kind(two) == "classifier" and fitness.feature_kind(two, "self") == "self"
    fitness.check_trainable(ds)  # what a search checks before it starts: no labels is no longer an error
    searching.preflight(config.override(Config(), ["data.batch_size=16"]), ds)
    with pytest.raises(FitnessError, match=r'needs at least 2 classes .*fitness.features = "self"'):
        fitness.check_trainable(ds, "classifier")
    with pytest.raises(FitnessError, match=r"self-supervised features .* needs at least 10 train images, found 4"):
        fitness.check_trainable(unlabelled(n_train=4, n_test=4))
    with pytest.raises(FitnessError, match=r"fitness.features must be auto, classifier or self, got 'rot'"):
        fitness.feature_kind(ds, "rot")


def test_self_supervised_reference_learns_rotations_and_is_cached(self_ref):
    ref, ds, cache = self_ref
    assert ref.kind == "self" and ref.feature_dim == 32 and ref.n_reference == N
    assert ref.classifier.output.shape[-1] == 4
    assert ref.accuracy > 0.9  # chance is 0.25: the images have a way up, and the network found it
    (entry,) = [p for p in (cache / "fitness").glob("upright-self-*") if p.is_dir()]
    meta = json.loads((entry / "meta.json").read_text())
    assert meta["features"] == "self" and meta["version"] == fitness.SELF_VERSION
    again = fitness.reference(ds, CFG, cache_dir=cache, spec=SPEC, verbose=False)
    assert again.from_cache and again.digest == ref.digest and again.kind == "self"
    forced = fitness.reference(ds, FitnessConfig(batch_size=200, features="self"), cache_dir=cache, spec=SPEC,
                               verbose=False)
    assert forced.digest == ref.digest  # "auto" and "self" are one network here


def test_self_features_and_classifier_are_cached_apart(tmp_path):
    ds = unlabelled(n_train=120, n_test=30)
    two = data.Dataset(data.DatasetSpec("upright", (28, 28, 1), 2), ds.x_train, np.arange(120) % 2, ds.x_test,
                       np.arange(30) % 2, "synthetic")
    quick = fitness.ClassifierSpec(width=4, feature_dim=8, epochs=1, max_steps=3, batch_size=32)
    a = fitness.reference(two, FitnessConfig(features="classifier"), cache_dir=tmp_path, spec=quick, verbose=False)
    b = fitness.reference(two, FitnessConfig(features="self"), cache_dir=tmp_path, spec=quick, verbose=False)
    assert (a.kind, b.kind) == ("classifier", "self") and a.key != b.key
    assert a.classifier.output.shape[-1] == 2 and b.classifier.output.shape[-1] == 4
    assert len([p for p in (tmp_path / "fitness").glob("upright-*") if p.is_dir()]) == 2


def test_non_square_images_tell_two_rotations(tmp_path):
    assert fitness.rotations((28, 28, 3)) == (0, 1, 2, 3) and fitness.rotations((28, 32, 1)) == (0, 2)
    ds = unlabelled(n_train=64, n_test=16, shape=(28, 32, 1))
    quick = fitness.ClassifierSpec(width=4, feature_dim=8, epochs=1, max_steps=3, batch_size=32)
    model, accuracy = fitness.train_self_supervised(ds, quick, verbose=False)
    assert model.output.shape[-1] == 2 and 0.0 <= accuracy <= 1.0


def test_features_at_chance_are_refused_not_cached(monkeypatch, tmp_path):
    """Images that look alike in every rotation (a centred disc) teach nothing: an error, not FIDs of noise."""
    yy, xx = np.mgrid[:28, :28]
    disc = (((yy - 13.5) ** 2 + (xx - 13.5) ** 2) < 64).astype(np.uint8)[..., None] * 255
    x = np.repeat(disc[None], 80, axis=0)
    ds = data.Dataset(data.DatasetSpec("discs", (28, 28, 1), 1), x[:64], np.zeros(64, np.int64), x[64:],
                      np.zeros(16, np.int64), "synthetic")
    monkeypatch.setattr(fitness, "MIN_SELF_STEPS", 5)
    spec = fitness.ClassifierSpec(width=4, feature_dim=8, epochs=1, batch_size=32)
    with pytest.raises(fitness.FitnessError, match=r"no better than chance \(25% on 16 test images, chance 25%\)"):
        fitness.reference(ds, FitnessConfig(features="self"), cache_dir=tmp_path, spec=spec, verbose=False)
    assert not [p for p in (tmp_path / "fitness").glob("discs-*") if p.is_dir() and any(p.iterdir())]


def test_steps_follow_the_classifier_with_a_floor(monkeypatch, capsys):
    ds = unlabelled(n_train=256, n_test=16)
    seen = {}
    monkeypatch.setattr(fitness, "_fit", lambda model, d, epochs, per_epoch, spec, verbose: seen.update(
        steps=epochs * per_epoch))
    monkeypatch.setattr(fitness, "MIN_SELF_GAIN", 0.0)  # untrained here: at chance, which is not this test's
    fitness.train_self_supervised(ds, fitness.ClassifierSpec(width=4, feature_dim=8, epochs=3, batch_size=64))
    assert seen["steps"] == fitness.MIN_SELF_STEPS  # 3 epochs of 256 images would be 12 steps of 64
    assert "which of 4 rotations" in capsys.readouterr().err
    monkeypatch.setattr(fitness, "MIN_SELF_STEPS", 1)
    fitness.train_self_supervised(ds, fitness.ClassifierSpec(width=4, feature_dim=8, epochs=3, batch_size=64),
                                  verbose=False)
    assert seen["steps"] == 3 * 4  # as the classifier: epochs x images / batch


def to_float(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) / 127.5 - 1.0


def increasing(values: list[float]) -> bool:
    return all(a < b for a, b in zip(values, values[1:]))


def test_self_features_rank_disturbances(self_ref):
    """FID on self-supervised features rises with noise, blur and contamination, at one N, against
    clean images that the network never saw."""
    from scipy.ndimage import gaussian_filter

    ref, _, _ = self_ref
    clean = unlabelled(n_train=0, n_test=N, seed=5).x_test
    other = np.random.default_rng(1).integers(0, 256, clean.shape).astype(np.uint8)
    rng = np.random.default_rng(0)
    noise = [fitness.score_images(np.clip(to_float(clean) + s * rng.standard_normal(clean.shape), -1, 1), ref)["fid"]
             for s in (0.0, 0.1, 0.3, 0.6)]
    blur = [fitness.score_images(gaussian_filter(to_float(clean), (0, s, s, 0)), ref)["fid"] for s in (0.0, 1, 2, 3)]
    mixed = [fitness.score_images(np.concatenate([clean[: N - k], other[:k]]), ref)["fid"] for k in (0, 40, 120, 240)]
    for row in (noise, blur, mixed):
        assert increasing(row), row


def flat_folder(tmp_path, rng) -> Path:
    """80 grey 16x16 PNGs in one folder, no sub-folders: a dataset without labels."""
    root = tmp_path / "flat"
    root.mkdir()
    for i in range(80):
        Image.fromarray(draw(rng, 16)[..., 0], "L").save(root / f"{i}.png")
    return root


def test_cli_fid_on_a_flat_folder(tmp_path, monkeypatch, capsys):
    """`gan-nas fid` on a folder without sub-folders: it used to stop with exit 2, as search did."""
    monkeypatch.setattr(fitness, "MIN_SELF_STEPS", 2)
    rng = np.random.default_rng(0)
    root = flat_folder(tmp_path, rng)
    samples = tmp_path / "s.npz"
    np.savez(samples, images=np.stack([draw(rng, 16) for _ in range(20)]))
    cfg = tmp_path / "c.toml"
    cfg.write_text("[data]\nimage_size = 16\n[fitness]\nclassifier_epochs = 1\nbatch_size = 32\n")
    assert cli.main(["fid", "--dataset", f"folder:{root}", "--samples", str(samples), "--config", str(cfg),
                     "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 20 and out["n_reference"] == 14 and math.isfinite(out["fid"]) and "kid" in out
    cfg.write_text("[data]\nimage_size = 16\n[fitness]\nfeatures = \"classifier\"\n")
    assert cli.main(["fid", "--dataset", f"folder:{root}", "--samples", str(samples), "--config", str(cfg)]) == 2
    assert 'fitness.features = "self"' in capsys.readouterr().err


def test_search_on_a_flat_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(fitness, "MIN_SELF_STEPS", 2)
    rng = np.random.default_rng(0)
    root = flat_folder(tmp_path, rng)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"""
[data]
dataset = "folder:{root}"
image_size = 16
batch_size = 16
[training]
steps = 2
log_every = 1000
[fitness]
n_search = 32
classifier_epochs = 1
batch_size = 32
[space]
max_g_blocks = 2
max_d_blocks = 2
max_filters = 16
latent_sizes = [8]
[search]
generations = 0
population = 2
seed_baseline = false
""")
    run = tmp_path / "run"
    assert cli.main(["search", "--config", str(cfg), "--run-dir", str(run), "--json", "--quiet"]) == 0
    journal = [json.loads(line) for line in (run / "journal.jsonl").read_text().splitlines()]
    assert len(journal) == 2 and all(r["status"] == "ok" for r in journal)
    # scored on the validation split: 13 of the 66 train images (at most a fifth; the test split holds 14)
    assert all(r["metrics"]["n_reference"] == 13 for r in journal)
