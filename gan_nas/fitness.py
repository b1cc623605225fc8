"""Fitness: a per-dataset feature classifier, activation statistics, Fréchet distance and KID.

The pieces are kept apart, in the manner of TF-GAN's ``classifier_metrics.py``:

* **features** -- :func:`train_classifier` fits a small CNN on the train split;
  its penultimate layer (the dense layer named ``"features"``, taken *before*
  its ReLU, :attr:`ClassifierSpec.feature_dim` = 128 dimensions by default) is
  the feature map. :func:`reference` caches the classifier and the statistics of
  the real test split under ``$GAN_NAS_CACHE`` (default ``~/.cache/gan-nas``),
  keyed by the data fingerprint and a hash of the classifier's definition, so
  it is trained once per dataset and retrained when either changes. A dataset
  without classes (a flat folder, an ``npz`` without labels), or any dataset
  with ``fitness.features = "self"``, gets the same network trained
  self-supervised instead (:func:`train_self_supervised`: which of four
  rotations was applied), cached alike.
* **references** -- a :class:`Reference` holds the statistics of one real split:
  ``validation`` during a search (selection), ``test`` in ``compare``, ``report``
  and ``gan-nas fid`` (what is reported was chosen on nothing). Both come from the
  same network, trained on the train split only.
* **distances** -- :func:`frechet_distance` and :func:`kernel_inception_distance`
  work on plain float64 arrays and know nothing of Keras; :mod:`gan_nas.quality`
  adds precision/recall, density/coverage and class coverage on the same features.
* **scoring** -- :func:`score` (a generator), :func:`score_images` (any samples)
  and :func:`score_file` (an ``.npz`` or a folder of images, for ``gan-nas fid``).

Input convention: the feature network sees float32 images in ``[-1, 1]``, the
range generators emit (``tanh``). Real uint8 images are mapped with
``x / 127.5 - 1``. Float images are clipped to ``[-1, 1]`` and quantized to the
256 levels of a uint8 image inside the compiled feature function, so a
generated sample is measured exactly as it would be after saving it as a PNG,
on the same grid as the real images, and no sample earns credit for sub-level
detail that real data cannot have. Generator output is passed in directly; no
uint8 round trip is needed by the caller.

FID and KID are biased by the number of generated samples ``n`` (FID strongly,
KID not in expectation but its variance depends on ``n``): compare scores only
at the same ``n`` (``FitnessConfig.n_search`` during a search, ``n_report`` in
reports). The reference statistics always use one whole real split, and only
it, small or not: FID's bias grows as the reference shrinks too (a few hundred
images is small), so every score carries ``n_reference`` beside ``n``, and KID
(unbiased) beside FID. The train split is never added to a reference, however
small the split: the feature network was trained on it, and its features of
images it has seen are not distributed like those of unseen ones, which
generated images are (``experiments/bench_fid.py --disturbances`` measures the
difference).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gan_nas import safe_io
from gan_nas.config import FitnessConfig
from gan_nas.data import REFERENCE_SPLITS, Dataset
from gan_nas.errors import FitnessError

# Fewer real images than this in the reference: FID's upward bias is large (compare.md and report.md say so).
SMALL_REFERENCE = 5_000

# Bump when the training procedure changes in a way the definition hash cannot see.
CLASSIFIER_VERSION = 1
SELF_VERSION = 1  # the same for self-supervised features
MIN_SELF_STEPS = 1_000  # self-supervised training steps at least, whatever the dataset's size
MIN_SELF_GAIN = 1.5  # self-supervised features must tell rotations this many times better than chance
MIN_IMAGES_PER_CLASS = 10  # a class needs this many train images to count
MIN_TEST_IMAGES = 2  # the reference statistics need at least a covariance
SPLITS = REFERENCE_SPLITS  # the real splits a reference can hold
KID_BLOCK_SIZE = 1000  # images per KID block (TF-GAN's max_block_size is 1024)


@dataclass(frozen=True)
class ClassifierSpec:
    """The feature classifier's definition; every field is part of its cache key.

    The network, for width ``w``: two 3x3 conv blocks of ``w`` filters, 2x2 max
    pool, two of ``2w``, max pool, one of ``4w``, global average pool, the dense
    ``features`` layer (``feature_dim`` units, linear; features are read here),
    ReLU, dropout, and the dense ``logits`` layer. Every conv is followed by
    batch normalisation and ReLU.
    """

    width: int = 32  # filters of the first conv block; later blocks have 2x and 4x
    feature_dim: int = 128  # units of the penultimate ("features") layer
    epochs: int = 3  # passes over the train split
    max_steps: int | None = None  # cap on optimizer steps (tests make the classifier tiny with it)
    batch_size: int = 128  # train batch
    learning_rate: float = 2e-3  # Adam, cosine-decayed to zero over the run
    dropout: float = 0.3  # before the logits
    seed: int = 0  # weight initialisation, dropout and shuffling


def _cache_root(cache_dir: str | os.PathLike | None) -> Path:
    from gan_nas import folder

    return folder.cache_root() if cache_dir is None else Path(cache_dir).expanduser()


def check_cache(cache_dir: str | os.PathLike | None = None) -> Path:
    """Make the cache folder if it is missing and check that files can be written in it.

    A search checks this before it creates its run directory: an unusable
    ``$GAN_NAS_CACHE`` (a file, a read-only place) failed only when the feature
    network was saved, after the run directory had been made.

    Raises:
        FitnessError: the folder cannot be made or written.
    """
    root = _cache_root(cache_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=root, prefix=".write-check-")
        probe.close()
    except OSError as e:
        raise FitnessError(f"the cache folder {root} (GAN_NAS_CACHE, else ~/.cache/gan-nas) is not usable: "
                           f"{e.strerror or e}; point GAN_NAS_CACHE at a folder you can write") from None
    return root


def _quiet_tf() -> Any:
    """Import TensorFlow and Keras (lazily: the distance functions need neither)."""
    from gan_nas import runtime

    runtime.quiet_environment()
    import keras
    import tensorflow as tf

    return tf, keras


# --- the feature classifier ----------------------------------------------------


def build_classifier(shape: tuple[int, int, int], classes: int, spec: ClassifierSpec) -> Any:
    """The feature classifier, uninitialised: float32 images in [-1, 1] (B, H, W, C) -> logits (B, classes).

    Every layer is float32 whatever the global mixed-precision policy, and
    named, so that the architecture JSON (part of the cache key) is stable.
    """
    _, keras = _quiet_tf()
    layers = keras.layers
    init = iter(range(spec.seed * 1000, spec.seed * 1000 + 100))

    def conv(x: Any, filters: int, name: str) -> Any:
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, dtype="float32", name=f"{name}_conv",
                          kernel_initializer=keras.initializers.HeNormal(seed=next(init)))(x)
        x = layers.BatchNormalization(dtype="float32", name=f"{name}_bn")(x)
        return layers.ReLU(dtype="float32", name=f"{name}_relu")(x)

    w = spec.width
    inputs = keras.Input(shape=shape, dtype="float32", name="images")
    x = conv(inputs, w, "b1a")
    x = conv(x, w, "b1b")
    x = layers.MaxPooling2D(2, dtype="float32", name="pool1")(x)
    x = conv(x, 2 * w, "b2a")
    x = conv(x, 2 * w, "b2b")
    x = layers.MaxPooling2D(2, dtype="float32", name="pool2")(x)
    x = conv(x, 4 * w, "b3")
    x = layers.GlobalAveragePooling2D(dtype="float32", name="gap")(x)
    feats = layers.Dense(spec.feature_dim, dtype="float32", name="features",
                         kernel_initializer=keras.initializers.GlorotUniform(seed=next(init)))(x)
    x = layers.ReLU(dtype="float32", name="features_relu")(feats)
    x = layers.Dropout(spec.dropout, seed=next(init), dtype="float32", name="dropout")(x)
    logits = layers.Dense(classes, dtype="float32", name="logits",
                          kernel_initializer=keras.initializers.GlorotUniform(seed=next(init)))(x)
    return keras.Model(inputs, logits, name="feature_classifier")


def definition_hash(shape: tuple[int, int, int], classes: int, spec: ClassifierSpec) -> str:
    """A hash of everything that defines the trained classifier except the data."""
    model = build_classifier(shape, classes, spec)
    text = json.dumps(
        {"version": CLASSIFIER_VERSION, "spec": asdict(spec), "shape": list(shape), "classes": classes,
         "architecture": json.loads(model.to_json())},
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _usable_classes(dataset: Dataset) -> tuple[int, np.ndarray]:
    """How many classes have :data:`MIN_IMAGES_PER_CLASS` train images, and every class's count."""
    y = np.asarray(dataset.y_train).astype(np.int64)
    if not y.size or y.min() < 0:
        return 0, np.zeros(1, np.int64)
    counts = np.bincount(y, minlength=dataset.spec.classes)
    return int((counts >= MIN_IMAGES_PER_CLASS).sum()), counts


def feature_kind(dataset: Dataset, features: str = "auto") -> str:
    """The feature network that scores ``dataset``: ``classifier`` or ``self`` (self-supervised).

    ``auto`` takes the classifier where the dataset has 2 or more classes of
    :data:`MIN_IMAGES_PER_CLASS`+ train images, and self-supervised features
    otherwise (a flat folder, an ``npz`` without labels).

    Raises:
        FitnessError: ``features`` is none of ``auto``, ``classifier``, ``self``.
    """
    if features in ("classifier", "self"):
        return features
    if features != "auto":
        raise FitnessError(f"fitness.features must be auto, classifier or self, got {features!r}")
    return "classifier" if _usable_classes(dataset)[0] >= 2 else "self"


def check_trainable(dataset: Dataset, features: str = "auto") -> None:
    """Raise :class:`FitnessError` unless the feature network can be trained and evaluated on ``dataset``.

    Args:
        dataset: the dataset.
        features: ``auto``, ``classifier`` or ``self``, as ``fitness.features``
            (see :func:`feature_kind`); a dataset without classes passes under
            ``auto`` (its features are self-supervised).
    """
    name = dataset.spec.name
    if any(len(x) != len(y) for x, y in ((dataset.x_train, dataset.y_train), dataset.split("validation"),
                                         dataset.split("test"))):
        raise FitnessError(f"dataset {name}: images and labels differ in number")
    # a malformed dataset, whatever scores it
    for labels in (np.asarray(dataset.y_train), np.asarray(dataset.y_val), np.asarray(dataset.y_test)):
        if labels.size and (labels.min() < 0 or labels.max() >= dataset.spec.classes):
            raise FitnessError(
                f"dataset {name}: labels must lie in [0, {dataset.spec.classes}), "
                f"found {int(labels.min())}..{int(labels.max())}"
            )
    if feature_kind(dataset, features) == "self":
        _check_self_trainable(dataset)
        return
    usable, counts = _usable_classes(dataset)
    if usable < 2:
        raise FitnessError(
            f"cannot train a feature classifier for dataset {name}: it needs at least 2 classes with "
            f"{MIN_IMAGES_PER_CLASS}+ train images each, found {usable} (class counts {counts.tolist()}); "
            "give a folder dataset one sub-folder per class, or score with self-supervised features "
            '(fitness.features = "self", or "auto")'
        )
    _check_test_split(dataset)


def _check_self_trainable(dataset: Dataset) -> None:
    if len(dataset.x_train) < MIN_IMAGES_PER_CLASS:
        raise FitnessError(
            f"cannot train self-supervised features for dataset {dataset.spec.name}: it needs at least "
            f"{MIN_IMAGES_PER_CLASS} train images, found {len(dataset.x_train)}"
        )
    _check_test_split(dataset)


def _check_test_split(dataset: Dataset) -> None:
    for split in SPLITS:
        n = len(dataset.split(split)[0])
        if n < MIN_TEST_IMAGES:
            raise FitnessError(
                f"dataset {dataset.spec.name}: the {split} split has {n} images, its reference needs "
                f"at least {MIN_TEST_IMAGES}"
            )


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise FitnessError(f"unknown reference split {split!r}: {' or '.join(SPLITS)}")


def _to_unit_range(images: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [-1, 1]; floats are passed through as float32."""
    if images.dtype == np.uint8:
        return images.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    return images.astype(np.float32, copy=False)


FEATURE_SEED = 0


def _seed_training() -> None:
    """Seed the feature network's initial weights and batches: it must not depend on what the process
    trained before it (a candidate's step seeds Keras's global generators)."""
    import keras

    keras.utils.set_random_seed(FEATURE_SEED)


def train_classifier(dataset: Dataset, spec: ClassifierSpec, verbose: bool = True) -> tuple[Any, float]:
    """Fit the feature classifier on the train split; return it and its test accuracy.

    Progress goes to stderr (never stdout, which ``--json`` commands keep for
    their result).

    Raises:
        FitnessError: the dataset has too few classes or images to train on.
    """
    check_trainable(dataset)
    _seed_training()
    tf, _ = _quiet_tf()
    x, y = dataset.x_train, np.asarray(dataset.y_train, np.int64)
    steps_per_epoch = math.ceil(len(x) / spec.batch_size)
    total = spec.epochs * steps_per_epoch
    if spec.max_steps is not None:
        total = max(1, min(total, spec.max_steps))
    epochs = math.ceil(total / steps_per_epoch)
    per_epoch = min(steps_per_epoch, total)

    ds = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(min(len(x), 60_000), seed=spec.seed, reshuffle_each_iteration=True)
        .repeat()
        .batch(spec.batch_size, drop_remainder=False)
        .map(lambda a, b: (tf.cast(a, tf.float32) / 127.5 - 1.0, b), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    model = build_classifier(dataset.spec.shape, dataset.spec.classes, spec)
    if verbose:
        print(f"training the feature classifier for {dataset.spec.name}: {len(x)} images, "
              f"{epochs * per_epoch} steps of {spec.batch_size}", file=sys.stderr, flush=True)
    _fit(model, ds, epochs, per_epoch, spec, verbose)
    logits = _predict(model, dataset.x_test, batch_size=500)
    accuracy = float(np.mean(np.argmax(logits, axis=1) == np.asarray(dataset.y_test)))
    if verbose:
        print(f"feature classifier for {dataset.spec.name}: test accuracy {100 * accuracy:.2f}% "
              f"on {len(dataset.x_test)} images", file=sys.stderr, flush=True)
    return model, accuracy


def _fit(model: Any, ds: Any, epochs: int, per_epoch: int, spec: ClassifierSpec, verbose: bool) -> None:
    """Adam with a cosine decay to zero over the run, cross-entropy on logits; progress to stderr."""
    _, keras = _quiet_tf()
    schedule = keras.optimizers.schedules.CosineDecay(spec.learning_rate, decay_steps=epochs * per_epoch)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    fit_verbose = (1 if sys.stderr.isatty() else 2) if verbose else 0
    with contextlib.redirect_stdout(sys.stderr):
        model.fit(ds, epochs=epochs, steps_per_epoch=per_epoch, verbose=fit_verbose, shuffle=False)


# --- self-supervised features --------------------------------------------------


def rotations(shape: tuple[int, int, int]) -> tuple[int, ...]:
    """The quarter turns the self-supervised network tells apart: 0-3 for square images; 0 and 2
    (0 and 180 degrees) otherwise, as a quarter turn would change their shape."""
    return (0, 1, 2, 3) if shape[0] == shape[1] else (0, 2)


def train_self_supervised(dataset: Dataset, spec: ClassifierSpec, verbose: bool = True) -> tuple[Any, float]:
    """Fit the feature network without labels: which rotation was applied (Gidaris et al., 2018).

    The network is :func:`build_classifier`'s, with one output per rotation of
    :func:`rotations`. Each batch holds ``batch_size / r`` train images in all
    ``r`` rotations (balanced, as in the paper). To tell a rotation, the network
    must learn what the images show and which way up it belongs (faces, text,
    horizons, a digit's stroke), features that an FID can compare, with no
    class labels at all.

    It trains as many steps as the classifier would (``epochs`` x train images
    / batch), but at least :data:`MIN_SELF_STEPS`: small datasets (a few
    thousand images) would otherwise give it a few dozen.

    Returns:
        The network and its rotation accuracy on the test split (every image in every rotation).

    Raises:
        FitnessError: too few images.
    """
    _seed_training()
    _check_self_trainable(dataset)
    tf, _ = _quiet_tf()
    shape = tuple(int(s) for s in dataset.spec.shape)
    ks = rotations(shape)  # type: ignore[arg-type]
    per_batch = max(1, spec.batch_size // len(ks))  # source images per batch
    x = dataset.x_train
    per_epoch = math.ceil(len(x) / (per_batch * len(ks)))  # steps of an epoch: as many images as the classifier's
    total = max(spec.epochs * per_epoch, MIN_SELF_STEPS)
    if spec.max_steps is not None:
        total = max(1, min(total, spec.max_steps))
    epochs = math.ceil(total / per_epoch)
    per_epoch = min(per_epoch, total)
    labels = tf.constant(np.repeat(np.arange(len(ks), dtype=np.int64), per_batch))

    def rotated(batch: Any) -> tuple[Any, Any]:  # (per_batch, H, W, C) uint8 -> (per_batch * r, H, W, C)
        batch = tf.cast(batch, tf.float32) / 127.5 - 1.0
        return tf.concat([tf.image.rot90(batch, k) for k in ks], axis=0), labels

    ds = (
        tf.data.Dataset.from_tensor_slices(x)
        .shuffle(min(len(x), 60_000), seed=spec.seed, reshuffle_each_iteration=True)
        .repeat()
        .batch(per_batch, drop_remainder=True)
        .map(rotated, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    model = build_classifier(shape, len(ks), spec)  # type: ignore[arg-type]
    if verbose:
        print(f"training self-supervised features for {dataset.spec.name} (which of {len(ks)} rotations): "
              f"{len(x)} images, {epochs * per_epoch} steps of {per_batch * len(ks)}", file=sys.stderr, flush=True)
    _fit(model, ds, epochs, per_epoch, spec, verbose)
    hits = [np.argmax(_predict(model, np.rot90(dataset.x_test, k, axes=(1, 2)), 500), axis=1) == i
            for i, k in enumerate(ks)]
    accuracy = float(np.mean(hits))
    if verbose:
        print(f"self-supervised features for {dataset.spec.name}: rotation accuracy {100 * accuracy:.2f}% "
              f"on {len(dataset.x_test)} test images", file=sys.stderr, flush=True)
    chance = 1 / len(ks)
    if spec.max_steps is None and accuracy < MIN_SELF_GAIN * chance:  # a capped run (tests) is taken as it is
        # features that cannot tell a rotation cannot tell good samples from bad: every FID would be noise
        raise FitnessError(
            f"self-supervised features for {dataset.spec.name} tell its images' rotation no better than chance "
            f"({100 * accuracy:.0f}% on {len(dataset.x_test)} test images, chance {100 * chance:.0f}%) after "
            f"training on {len(x)} images: too few, or too alike under rotation, to score a GAN with; add images, "
            f"or give the folder one sub-folder per class")
    return model, accuracy


def _predict(model: Any, images: np.ndarray, batch_size: int) -> np.ndarray:
    out = [np.asarray(model(_to_unit_range(images[i:i + batch_size]), training=False))
           for i in range(0, len(images), batch_size)]
    return np.concatenate(out)


# --- the reference -------------------------------------------------------------


class Reference:
    """The feature network of a dataset and the activation statistics of one real split.

    Attributes:
        dataset_name: the dataset's name.
        image_shape: (H, W, C) of the images it scores.
        kind: ``classifier`` (trained on the classes) or ``self`` (self-supervised, on rotations).
        split: the real split behind the statistics: ``validation`` (a search selects on it) or ``test``.
        classifier: the trained Keras network (logits over classes, or over rotations).
        feature_model: ``classifier`` with two outputs: its ``features`` layer (B, feature_dim), and its
            logits (class coverage reads the classes from them), computed in one pass.
        mu: (d,) float64 mean of the split's features.
        sigma: (d, d) float64 covariance of the split's features (ddof=1).
        features: (n, d) float32 features of the split (for KID and the k-NN quality metrics).
        labels: (n,) int64 class labels of the split where the network is a classifier (class coverage
            compares the classes it gives generated images with these), else None.
        accuracy: the network's test accuracy in [0, 1] (on classes, or on rotations).
        batch_size: the fixed batch of the compiled feature function.
        key: the cache key (data fingerprint + classifier definition).
        digest: a hash of the classifier's weights; equal digests score alike.
        from_cache: whether the classifier was loaded rather than trained by this call.
    """

    def __init__(self, dataset_name: str, image_shape: tuple[int, int, int], classifier: Any,
                 accuracy: float, batch_size: int, key: str = "", from_cache: bool = False,
                 kind: str = "classifier", split: str = "test") -> None:
        tf, keras = _quiet_tf()
        _check_split(split)
        self.dataset_name = dataset_name
        self.kind = kind
        self.split = split
        self.image_shape = tuple(int(s) for s in image_shape)
        self.classifier = classifier
        self.feature_model = keras.Model(classifier.inputs, [classifier.get_layer("features").output,
                                                             classifier.outputs[0]], name="features_and_logits")
        self.accuracy = float(accuracy)
        self.batch_size = int(batch_size)
        self.key = key
        self.from_cache = from_cache
        self.mu = np.zeros(0)
        self.sigma = np.zeros((0, 0))
        self.features = np.zeros((0, 0), np.float32)
        self.labels: np.ndarray | None = None
        self._real_radii: dict[tuple[int, ...], np.ndarray] = {}  # quality's k-NN radii of the real split
        self.trace_count = 0  # times the feature function was traced (1 after first use, ever)
        # The classifier's identity: two processes score alike only if their weights are the same.
        self.digest = hashlib.sha256(b"".join(np.ascontiguousarray(w).tobytes()
                                              for w in classifier.get_weights())).hexdigest()[:16]

        def _features(x: Any) -> Any:  # x: (batch_size, H, W, C) float32
            self.trace_count += 1  # Python side effect: runs only while tracing
            x = tf.clip_by_value(x, -1.0, 1.0)
            x = tf.round((x + 1.0) * 127.5) / 127.5 - 1.0  # the uint8 grid, as a saved image
            return self.feature_model(x, training=False)

        signature = [tf.TensorSpec((self.batch_size, *self.image_shape), tf.float32)]
        self._feature_fn = tf.function(_features, input_signature=signature, autograph=False)  # no Python control flow

    @property
    def feature_dim(self) -> int:
        return int(self.feature_model.outputs[0].shape[-1])

    @property
    def n_reference(self) -> int:
        """Real images behind the statistics: FID's bias grows as this shrinks (a few hundred is small)."""
        return int(len(self.features))

    @property
    def n_classes(self) -> int | None:
        """Classes of the network's logits, where they are the dataset's classes (a classifier)."""
        return int(self.classifier.outputs[0].shape[-1]) if self.kind == "classifier" else None

    def real_radii(self, ks: tuple[int, ...]) -> np.ndarray:
        """:func:`gan_nas.quality.knn_radii` of the split's first :data:`MAX_QUALITY_POINTS` features, computed
        once per reference."""
        from gan_nas import quality

        if ks not in self._real_radii:
            self._real_radii[ks] = quality.knn_radii(self.features[:MAX_QUALITY_POINTS], ks)
        return self._real_radii[ks]

    def extract(self, images: np.ndarray) -> np.ndarray:
        """Features of images: uint8 in [0, 255] or float in [-1, 1], (N, H, W, C) -> (N, d) float32."""
        return self.extract_with_logits(images)[0]

    def extract_with_logits(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(features (N, d), logits (N, outputs)) of images: uint8 in [0, 255] or float in [-1, 1].

        Runs in fixed batches of :attr:`batch_size` (the last one zero-padded),
        so the compiled function is traced once for the life of the reference.

        Raises:
            FitnessError: the images do not have this reference's shape.
        """
        images = np.asarray(images)
        if images.ndim != 4 or tuple(images.shape[1:]) != self.image_shape:
            raise FitnessError(
                f"images have shape {tuple(images.shape)}, {self.dataset_name} needs (N, "
                f"{', '.join(map(str, self.image_shape))})"
            )
        out = np.empty((len(images), self.feature_dim), np.float32)
        logits = np.empty((len(images), int(self.classifier.outputs[0].shape[-1])), np.float32)
        for start, m, chunk in fixed_batches(images, self.batch_size):
            f, lg = self._feature_fn(_to_unit_range(chunk))
            out[start:start + m], logits[start:start + m] = f.numpy()[:m], lg.numpy()[:m]
        return out, logits


def fixed_batches(x: np.ndarray, b: int):
    """Yield ``(start, m, batch)`` over ``x`` in batches of exactly ``b`` rows: the last one's
    ``m`` real rows are followed by zeros, so that a compiled function sees one shape."""
    for start in range(0, len(x), b):
        chunk = x[start:start + b]
        m = len(chunk)
        if m < b:
            chunk = np.concatenate([chunk, np.zeros((b - m, *chunk.shape[1:]), chunk.dtype)])
        yield start, m, chunk


def activation_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and covariance (d, d), ddof=1, in float64, of features (N, d)."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise FitnessError(f"statistics need at least 2 feature rows (N, d), got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive inter-process lock on ``path`` (so parallel workers train a classifier once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock, atomic writes still keep the cache sane
        yield
        return
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def reference(dataset: Dataset, cfg: FitnessConfig, cache_dir: str | os.PathLike | None = None,
              spec: ClassifierSpec | None = None, verbose: bool = True, split: str = "test") -> Reference:
    """The feature network and one real split's statistics of ``dataset``, trained or loaded from cache.

    The cache entry is ``<cache>/fitness/<dataset>-<key>/`` (``<dataset>-self-<key>/``
    for self-supervised features) with ``classifier.keras``, ``meta.json``
    (accuracy, fingerprint, spec, features) and ``reference-<split>.npz`` (mu, sigma,
    features), where ``key`` hashes the data fingerprint and the network's
    definition: changed data or a changed definition trains a new network.

    Args:
        dataset: the loaded dataset.
        cfg: fitness settings (``classifier_epochs``, ``features``, ``batch_size``).
        cache_dir: cache folder; None: ``$GAN_NAS_CACHE`` or ``~/.cache/gan-nas``.
        spec: the classifier definition; None: the default with ``cfg.classifier_epochs``.
        verbose: print training progress and the accuracy to stderr.
        split: the real split behind the statistics: ``validation`` (what a search selects on)
            or ``test`` (what reports score on).

    Raises:
        FitnessError: an unknown split, or the dataset cannot train its feature network (too few classes, with
            ``features = "classifier"``, or too few images).
    """
    _, keras = _quiet_tf()
    _check_split(split)  # before any training
    spec = spec or ClassifierSpec(epochs=cfg.classifier_epochs)
    kind = feature_kind(dataset, cfg.features)
    check_trainable(dataset, kind)
    shape = tuple(int(s) for s in dataset.spec.shape)
    if kind == "classifier":
        key = hashlib.sha256(
            f"{dataset.fingerprint}:{definition_hash(shape, dataset.spec.classes, spec)}".encode()
        ).hexdigest()[:16]
        train, tag = train_classifier, ""
    else:
        key = hashlib.sha256(
            f"{dataset.fingerprint}:self-rotation-{SELF_VERSION}:"
            f"{definition_hash(shape, len(rotations(shape)), spec)}".encode()  # type: ignore[arg-type]
        ).hexdigest()[:16]
        train, tag = train_self_supervised, "self-"
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", dataset.spec.name).strip("_.")[:40] or "dataset"
    folder = _cache_root(cache_dir) / "fitness" / f"{safe}-{tag}{key}"
    model_path, meta_path = folder / "classifier.keras", folder / "meta.json"
    stats_path = folder / f"reference-{split}.npz"

    with _locked(folder.with_name(folder.name + ".lock")):
        folder.mkdir(parents=True, exist_ok=True)
        model, meta, from_cache = None, None, False
        if model_path.is_file() and meta_path.is_file():
            try:
                meta = json.loads(meta_path.read_text())
                meta["accuracy"] = float(meta["accuracy"])
                model = keras.models.load_model(model_path, compile=False)
                from_cache = True
            except Exception as e:  # noqa: BLE001 - a damaged cache entry is rebuilt, whatever broke
                print(f"feature classifier cache {folder} is unreadable ({e}); retraining", file=sys.stderr)
                model, meta = None, None
        if model is None:
            t0 = time.perf_counter()
            model, accuracy = train(dataset, spec, verbose=verbose)
            meta = {"dataset": dataset.spec.name, "fingerprint": dataset.fingerprint, "key": key, "features": kind,
                    "accuracy": accuracy, "spec": asdict(spec),
                    "version": CLASSIFIER_VERSION if kind == "classifier" else SELF_VERSION,
                    "train_images": len(dataset.x_train), "test_images": len(dataset.x_test),
                    "train_seconds": round(time.perf_counter() - t0, 1)}
            safe_io.write_atomic(model_path, lambda p: model.save(str(p)), suffix=".keras")
            safe_io.write_bytes_atomic(meta_path, json.dumps(meta, indent=2).encode())
            for old in SPLITS:  # statistics of an earlier network are not this one's
                folder.joinpath(f"reference-{old}.npz").unlink(missing_ok=True)

        ref = Reference(dataset.spec.name, shape, model, meta["accuracy"], cfg.batch_size, key, from_cache, kind,
                        split)
        x_real, y_real = dataset.split(split)
        stats = None
        if stats_path.is_file():
            try:
                with np.load(stats_path, allow_pickle=False) as z:
                    stats = {k: z[k] for k in ("mu", "sigma", "features")}
            except Exception:  # noqa: BLE001 - recompute a damaged file
                stats = None
        if stats is None:
            feats = ref.extract(x_real)
            mu, sigma = activation_statistics(feats)
            stats = {"mu": mu, "sigma": sigma, "features": feats}

            def _save(p: Path) -> None:
                with open(p, "wb") as f:
                    np.savez(f, **stats)

            safe_io.write_atomic(stats_path, _save)
    ref.mu, ref.sigma, ref.features = stats["mu"], stats["sigma"], stats["features"]
    ref.labels = np.asarray(y_real, np.int64) if kind == "classifier" else None
    return ref


# --- distances -----------------------------------------------------------------


def _sqrt_psd(s: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (negative eigenvalues clipped)."""
    w, v = np.linalg.eigh((s + s.T) / 2.0)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Squared Fréchet distance between the Gaussians N(mu1, S1) and N(mu2, S2), in float64.

    d² = |mu1 - mu2|² + Tr(S1 + S2 - 2 (S1 S2)^{1/2})

    ``Tr (S1 S2)^{1/2}`` is computed as ``sum_i sqrt(l_i)`` over the eigenvalues
    ``l_i`` of the symmetric PSD matrix ``S1^{1/2} S2 S1^{1/2}`` (which has the
    eigenvalues of ``S1 S2``), with ``S1^{1/2}`` from a symmetric eigen-decomposition
    and round-off negatives clipped to zero. This stays finite and real where
    ``scipy.linalg.sqrtm`` returns complex parts or fails: for singular or nearly
    singular covariances (fewer samples than dimensions, dead features).

    The estimate from samples is biased upward, and the bias depends on the
    sample size: FID values are comparable only when computed with the same N.

    Args:
        mu1, mu2: means, shape (d,).
        sigma1, sigma2: covariances, shape (d, d).

    Returns:
        The squared distance (>= 0); ``inf`` if any input is not finite.

    Raises:
        FitnessError: the shapes do not agree.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise FitnessError(
            f"frechet_distance needs means (d,) and covariances (d, d) of one d, got "
            f"{mu1.shape}, {s1.shape}, {mu2.shape}, {s2.shape}"
        )
    if not all(np.isfinite(a).all() for a in (mu1, mu2, s1, s2)):
        return math.inf
    diff = mu1 - mu2
    r1 = _sqrt_psd(s1)
    m = r1 @ s2 @ r1
    eig = np.linalg.eigvalsh((m + m.T) / 2.0)
    tr_covmean = float(np.sqrt(np.clip(eig, 0.0, None)).sum())
    d2 = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)
    return max(d2, 0.0)


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² of samples x (m, d), y (n, d) with k(a, b) = (a·b / d + 1)^3."""
    d = x.shape[1]
    m, n = len(x), len(y)
    kxx = (x @ x.T / d + 1.0) ** 3
    kyy = (y @ y.T / d + 1.0) ** 3
    kxy = (x @ y.T / d + 1.0) ** 3
    return float(
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
        - 2.0 * kxy.mean()
    )


def kernel_inception_distance(real_features: np.ndarray, generated_features: np.ndarray,
                              block_size: int = KID_BLOCK_SIZE, seed: int = 0,
                              blocks: int | None = None) -> tuple[float, float]:
    """KID: the unbiased MMD² with the cubic polynomial kernel k(x, y) = (x·y / d + 1)^3, in float64.

    As in Bińkowski et al. (2018) and TF-GAN's
    ``kernel_classifier_distance_and_std``: both sets are split into the same
    number of disjoint blocks (after a fixed-seed shuffle, so sorted inputs do
    not bias the blocks) of at most ``block_size`` rows of the larger set; the
    unbiased MMD² is computed per block pair, and the mean over blocks is
    returned with its standard error.

    Args:
        real_features: (m, d).
        generated_features: (n, d).
        block_size: most rows of the larger set per block.
        seed: the shuffle seed.
        blocks: the number of blocks; None: from ``block_size``, at least 2 where
            each block can keep 2 rows of each set.

    Returns:
        (kid, standard error). The error is ``nan`` when only one block fits
        (fewer than 4 rows in the smaller set).

    Raises:
        FitnessError: fewer than 2 rows in a set, or feature sizes differ.
    """
    x = np.asarray(real_features, np.float64)
    y = np.asarray(generated_features, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise FitnessError(f"KID needs two (N, d) feature arrays of one d, got {x.shape} and {y.shape}")
    if min(len(x), len(y)) < 2:
        raise FitnessError(f"KID needs at least 2 samples in each set, got {len(x)} and {len(y)}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        return math.inf, math.inf
    rng = np.random.default_rng(seed)
    x, y = x[rng.permutation(len(x))], y[rng.permutation(len(y))]
    if blocks is None:
        blocks = max(math.ceil(max(len(x), len(y)) / block_size), 2)
    blocks = max(1, min(blocks, min(len(x), len(y)) // 2))
    ests = np.array([_mmd2_unbiased(a, b) for a, b in zip(np.array_split(x, blocks), np.array_split(y, blocks))])
    if blocks == 1:
        return float(ests[0]), math.nan
    return float(ests.mean()), float(ests.std(ddof=1) / math.sqrt(blocks))


# --- scoring -------------------------------------------------------------------


def _result(fid: float, kid: float, kid_std: float, n: int, ref: Reference,
            quality: dict[str, float] | None = None) -> dict[str, Any]:
    """A score: ``n`` generated images against the reference's ``n_reference`` real ones (FID's bias
    depends on both, so both are reported), and ``quality``'s metrics where they could be measured
    (not for images that are not finite, nor with k or fewer images on a side)."""
    return {"fid": float(fid), "kid": float(kid), "kid_std": float(kid_std), "n": int(n),
            "n_reference": ref.n_reference, **(quality or {})}


# Fidelity and diversity beside FID (gan_nas.quality), with every score: the k-NN ones always, the class
# ones where the feature network is a classifier; k as their papers recommend.
QUALITY_KEYS = ("precision", "recall", "density", "coverage", "class_coverage", "class_kl")
K_PRECISION_RECALL = 3  # Kynkäänniemi et al. 2019
K_DENSITY_COVERAGE = 5  # Naeem et al. 2020
# The k-NN metrics cost O(n^2) in each set's size: they use at most this many points of each (the first
# ones: the latent draws and the splits are in random order), the sample size their papers report.
MAX_QUALITY_POINTS = 10_000


def _score_features(features: np.ndarray, logits: np.ndarray, ref: Reference) -> dict[str, Any]:
    from gan_nas import quality

    mu, sigma = activation_statistics(features)
    kid, kid_std = kernel_inception_distance(ref.features, features)
    ks = (K_PRECISION_RECALL, K_DENSITY_COVERAGE)
    if min(len(features), len(ref.features)) > max(ks):  # k-NN radii need k + 1 points in each set
        m = MAX_QUALITY_POINTS
        q = quality.quality_scores(ref.features[:m], features[:m], *ks, real_radii=ref.real_radii(ks))
        if ref.labels is not None:
            q["class_coverage"] = quality.class_coverage(logits, ref.labels, ref.n_classes)
            q["class_kl"] = quality.class_kl(logits, ref.labels, ref.n_classes)
    else:
        q = {}
    return _result(frechet_distance(mu, sigma, ref.mu, ref.sigma), kid, kid_std, len(features), ref, q)


def score_images(images: np.ndarray, ref: Reference) -> dict[str, Any]:
    """FID and KID of arbitrary samples against the reference.

    Args:
        images: (N, H, W, C), uint8 in [0, 255] or float in [-1, 1] (floats are
            clipped and quantized to the uint8 grid; see the module docstring).
        ref: the dataset's reference.

    Returns:
        ``{"fid", "kid", "kid_std", "n", "n_reference"}`` and the quality metrics (see :func:`_result`);
        fid and kid are ``inf`` for non-finite images.

    Raises:
        FitnessError: wrong shape, dtype, or fewer than 2 images.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 and not np.issubdtype(images.dtype, np.floating):
        raise FitnessError(f"images must be uint8 or float in [-1, 1], got dtype {images.dtype}")
    if images.ndim != 4 or tuple(images.shape[1:]) != ref.image_shape:
        raise FitnessError(
            f"images have shape {tuple(images.shape)}, {ref.dataset_name} needs (N, "
            f"{', '.join(map(str, ref.image_shape))})"
        )
    if len(images) < 2:
        raise FitnessError(f"scoring needs at least 2 images, got {len(images)}")
    if images.dtype != np.uint8 and not np.isfinite(images).all():
        return _result(math.inf, math.inf, math.inf, len(images), ref)
    return _score_features(*ref.extract_with_logits(images), ref)


def latent_noise(n: int, latent_size: int, noise_seed: int) -> np.ndarray:
    """The fixed latent draws (n, latent_size) float32 that every candidate is scored on."""
    return np.random.default_rng(noise_seed).standard_normal((n, latent_size)).astype(np.float32)


def score(generator: Any, ref: Reference, n: int, noise_seed: int, latent_size: int | None = None,
          batch_size: int | None = None) -> dict[str, Any]:
    """FID and KID of ``n`` samples of a generator, on fixed latent noise.

    Args:
        generator: a Keras model (B, latent_size) standard normals -> (B, H, W, C) images in [-1, 1].
        ref: the dataset's reference.
        n: samples to draw; compare only scores with the same n (FID's bias depends on it).
        noise_seed: seed of ``np.random.default_rng`` for the latent draws.
        latent_size: None: read from the generator's input shape.
        batch_size: generator batch; None: the reference's batch size.

    Returns:
        ``{"fid", "kid", "kid_std", "n", "n_reference"}`` and the quality metrics (see :func:`_result`);
        fid and kid are ``inf`` if the generator emits a non-finite value (a diverged candidate is data, not a crash).

    Raises:
        FitnessError: n < 2, or the generator's images do not have the reference's shape.
    """
    if n < 2:
        raise FitnessError(f"scoring needs at least 2 samples, got n={n}")
    if latent_size is None:
        latent_size = int(generator.inputs[0].shape[-1])
    tf, _ = _quiet_tf()
    b = min(int(batch_size or ref.batch_size), n)
    z = latent_noise(n, latent_size, noise_seed)
    # One compiled function for all batches (the last one zero-padded; rows are independent
    # in inference): graph mode runs the generator with TensorFlow's fused kernels, faster
    # than eager (experiments/bench_fid.py measures it), and traces in hundredths of a second.
    draw = tf.function(lambda x: generator(x, training=False), autograph=False,
                       input_signature=[tf.TensorSpec((b, latent_size), tf.float32)])
    images = np.empty((n, *ref.image_shape), np.float32)
    for start, m, chunk in fixed_batches(z, b):
        out = np.asarray(draw(chunk), dtype=np.float32)[:m]
        if tuple(out.shape[1:]) != ref.image_shape:
            raise FitnessError(
                f"the generator makes images of shape {tuple(out.shape[1:])}, "
                f"{ref.dataset_name} needs {ref.image_shape}"
            )
        if not np.isfinite(out).all():
            return _result(math.inf, math.inf, math.inf, n, ref)
        images[start:start + len(out)] = out
    return _score_features(*ref.extract_with_logits(images), ref)


# --- samples from files (gan-nas fid) ------------------------------------------


def _mode_channels(mode: str) -> int:
    return {"1": 1, "L": 1, "I": 1, "I;16": 1, "F": 1, "LA": 2, "RGB": 3, "P": 3, "RGBA": 4, "CMYK": 4}.get(mode, -1)


def read_samples(path: str | os.PathLike, shape: tuple[int, int, int]) -> np.ndarray:
    """Read samples (N, H, W, C) uint8 from an ``.npz`` (array ``images``) or a folder of PNG/JPEG files.

    Both are read as :mod:`gan_nas.data` reads datasets: never unpickling, with
    Pillow's PNG and JPEG decoders only, and sizes checked before data is read.

    Raises:
        FitnessError: missing or unreadable path, wrong shape, channels or dtype, fewer than 2 images,
            an image above :data:`gan_nas.data.MAX_IMAGE_PIXELS`, an array of Python objects.
    """
    from gan_nas import data

    p = Path(path).expanduser()
    try:
        is_dir = p.is_dir()
        if not is_dir:
            data.require_file(p, "samples path", FitnessError)
    except OSError as e:  # is_dir() raises where a folder above p cannot be searched
        raise FitnessError(f"samples path {p}: {e.strerror or e}") from None
    if is_dir:
        return _read_sample_folder(p, shape)
    x = data.read_npz(p, ("images",), error=FitnessError)["images"]
    h, w, c = shape
    if x.dtype != np.uint8:
        raise FitnessError(f"{p}: images must be uint8 in [0, 255], got {x.dtype}")
    if x.ndim != 4 or tuple(x.shape[1:]) != (h, w, c):
        raise FitnessError(f"{p}: images have shape {x.shape}, the dataset needs (N, {h}, {w}, {c})")
    if len(x) < 2:
        raise FitnessError(f"{p}: holds {len(x)} images; scoring needs at least 2")
    return x


def _read_sample_folder(folder: Path, shape: tuple[int, int, int]) -> np.ndarray:
    """The PNG/JPEG images of ``folder`` (not its sub-folders), each exactly of ``shape``.

    Each image's mode and size are checked before its pixels are decoded, so a
    huge image costs nothing to refuse.
    """
    from gan_nas import data

    h, w, c = shape
    want = "grayscale (mode L)" if c == 1 else "RGB"
    images = []
    for f in data.list_images(folder, recursive=False, error=FitnessError):
        with data.open_image(f, FitnessError) as im:
            if _mode_channels(im.mode) != c or im.mode in ("I", "I;16", "F", "P"):
                raise FitnessError(f"{f}: image mode {im.mode}; the dataset needs {c}-channel {want} images")
            if im.size != (w, h):
                raise FitnessError(f"{f}: image is {im.size[0]}x{im.size[1]}, the dataset needs {w}x{h}")
            a = np.asarray(data.decode_image(im, f, "L" if c == 1 else "RGB", FitnessError), dtype=np.uint8)
        images.append(a.reshape(h, w, c))
    if len(images) < 2:
        raise FitnessError(f"samples folder {folder} holds {len(images)} PNG/JPEG images; scoring needs at least 2")
    return np.stack(images)


def score_file(dataset: Dataset, samples_path: str | os.PathLike, cfg: FitnessConfig,
               cache_dir: str | os.PathLike | None = None, spec: ClassifierSpec | None = None,
               verbose: bool = True) -> dict[str, Any]:
    """Score saved samples against ``dataset``'s test split (``gan-nas fid``).

    Args:
        dataset: the dataset whose classifier and test statistics are the reference.
        samples_path: an ``.npz`` with ``images`` (N, H, W, C) uint8, or a folder of PNG/JPEG images.
        cfg: fitness settings (classifier epochs, feature batch).
        cache_dir: classifier cache; None: ``$GAN_NAS_CACHE`` or ``~/.cache/gan-nas``.
        spec: the classifier definition; None: the default (see :func:`reference`).
        verbose: print classifier training progress to stderr.

    Returns:
        ``{"fid", "kid", "kid_std", "n", "n_reference"}`` and the quality metrics (see :func:`_result`).

    Raises:
        FitnessError: unreadable or ill-shaped samples, fewer than 2, or a dataset
            whose classifier cannot be trained.
    """
    images = read_samples(samples_path, tuple(dataset.spec.shape))
    return score_images(images, reference(dataset, cfg, cache_dir, spec=spec, verbose=verbose))
