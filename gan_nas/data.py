"""Datasets: a registry of named datasets, their sources, and the tf.data training stream.

Named datasets (``mnist``, ``fashion_mnist``, ``cifar10``) are looked for, in
order, in:

1. an explicit ``data_dir``;
2. ``$GAN_NAS_DATA_DIR/<name>`` (``<name>`` with ``_`` or ``-``);
3. ``/usr/share/datasets/<name with - for _>`` (where Debian's dataset packages install);

each holding the dataset's original distribution files (the four IDX ``.gz``
files of the MNIST family; ``cifar-10-python.tar.gz`` or the extracted
``cifar-10-batches-py/`` for CIFAR-10); then
4. ``tfds.load(name)``, when tfds has the data prepared or can download it.

Two user kinds: ``folder:PATH`` (PNG/JPEG images, resized and center-cropped to
``image_size``; sub-folders are classes) and ``npz:PATH`` (an ``images`` array,
N,H,W,C uint8, optional ``labels``). Both hold out a fixed 1/6 as the test split.

Every loader returns uint8 arrays (N, H, W, C) and int64 labels.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import struct
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gan_nas.errors import DataError

DEBIAN_DATASETS = Path("/usr/share/datasets")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset is: its name, image shape (H, W, C) and number of classes."""

    name: str
    shape: tuple[int, int, int]
    classes: int


@dataclass
class Dataset:
    """A loaded dataset: uint8 images (N, H, W, C), int64 labels, and where they came from."""

    spec: DatasetSpec
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    fingerprint: str = ""

    def __post_init__(self) -> None:
        if not self.fingerprint:
            self.fingerprint = fingerprint(self.x_train, self.y_train, self.x_test, self.y_test)

    def describe(self) -> dict[str, Any]:
        """The summary that ``gan-nas data`` prints."""
        return {
            "dataset": self.spec.name,
            "train": int(len(self.x_train)),
            "test": int(len(self.x_test)),
            "shape": list(self.spec.shape),
            "classes": self.spec.classes,
            "source": self.source,
        }


def fingerprint(*arrays: np.ndarray) -> str:
    """A content hash of arrays (shape, dtype and bytes), for cache keys."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.shape, a.dtype.str)).encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()[:16]


# --- original-format readers -------------------------------------------------


def read_idx(path: Path, expect_magic: int) -> np.ndarray:
    """Read a gzip-compressed IDX file (images: magic 2051, labels: magic 2049)."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: cannot read gzip data ({e}); the file is corrupt or truncated") from None
    header = 16 if expect_magic == 2051 else 8
    if len(raw) < header:
        raise DataError(f"{path}: file is shorter than its {header}-byte IDX header")
    magic, count = struct.unpack(">II", raw[:8])
    if magic != expect_magic:
        kind = "image" if expect_magic == 2051 else "label"
        raise DataError(f"{path}: bad magic number {magic}, expected {expect_magic} for an IDX {kind} file")
    if expect_magic == 2051:
        rows, cols = struct.unpack(">II", raw[8:16])
        shape: tuple[int, ...] = (count, rows, cols)
    else:
        shape = (count,)
    want = header + int(np.prod(shape))
    if len(raw) != want:
        raise DataError(f"{path}: wrong length: {len(raw)} bytes, the header promises {want}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _load_mnist_family(name: str, folder: Path) -> tuple[np.ndarray, ...]:
    arrays = {}
    for key, fname in MNIST_FILES.items():
        arrays[key] = read_idx(folder / fname, 2051 if key.endswith("images") else 2049)
    for split in ("train", "test"):
        n_img, n_lab = len(arrays[f"{split}_images"]), len(arrays[f"{split}_labels"])
        if n_img != n_lab:
            raise DataError(
                f"{folder / MNIST_FILES[f'{split}_images']}: {n_img} images but "
                f"{MNIST_FILES[f'{split}_labels']} has {n_lab} labels"
            )
        if arrays[f"{split}_images"].shape[1:] != (28, 28):
            raise DataError(f"{folder / MNIST_FILES[f'{split}_images']}: images are not 28x28")
    return (
        arrays["train_images"][..., None], arrays["train_labels"].astype(np.int64),
        arrays["test_images"][..., None], arrays["test_labels"].astype(np.int64),
    )


def _mnist_present(folder: Path) -> bool:
    return all((folder / f).is_file() for f in MNIST_FILES.values())


def _cifar_batch(raw: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        d = pickle.loads(raw, encoding="bytes")
        data, labels = d[b"data"], d[b"labels"]
    except Exception as e:  # noqa: BLE001 - pickle raises many kinds
        raise DataError(f"{where}: not a CIFAR-10 python batch ({type(e).__name__}: {e})") from None
    data = np.asarray(data, dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{where}: data has shape {data.shape}, expected (N, 3072)")
    if len(labels) != len(data):
        raise DataError(f"{where}: {len(data)} images but {len(labels)} labels")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), np.asarray(labels, dtype=np.int64)


CIFAR_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR_TEST = ["test_batch"]


def _load_cifar10(name: str, folder: Path) -> tuple[np.ndarray, ...]:
    extracted = folder / "cifar-10-batches-py"
    if folder.name == "cifar-10-batches-py":
        extracted = folder
    raws: dict[str, tuple[bytes, str]] = {}
    if extracted.is_dir():
        for b in CIFAR_TRAIN + CIFAR_TEST:
            p = extracted / b
            if not p.is_file():
                raise DataError(f"{p}: missing CIFAR-10 batch file")
            raws[b] = (p.read_bytes(), str(p))
    else:
        tar = folder / "cifar-10-python.tar.gz"
        try:
            with tarfile.open(tar, "r:gz") as t:
                for b in CIFAR_TRAIN + CIFAR_TEST:
                    try:
                        member = t.extractfile(f"cifar-10-batches-py/{b}")
                    except KeyError:
                        member = None
                    if member is None:
                        raise DataError(f"{tar}: has no cifar-10-batches-py/{b}")
                    raws[b] = (member.read(), f"{tar}:{b}")
        except (tarfile.TarError, OSError, EOFError) as e:
            raise DataError(f"{tar}: cannot read the tarball ({e}); it is corrupt or truncated") from None
    parts = {b: _cifar_batch(*raws[b]) for b in raws}
    x_tr = np.concatenate([parts[b][0] for b in CIFAR_TRAIN])
    y_tr = np.concatenate([parts[b][1] for b in CIFAR_TRAIN])
    x_te, y_te = parts["test_batch"]
    return x_tr, y_tr, x_te, y_te


def _cifar_present(folder: Path) -> bool:
    return (
        (folder / "cifar-10-batches-py").is_dir()
        or (folder / "cifar-10-python.tar.gz").is_file()
        or (folder.name == "cifar-10-batches-py" and (folder / "test_batch").is_file())
    )


@dataclass(frozen=True)
class _Named:
    shape: tuple[int, int, int]
    classes: int
    present: Callable[[Path], bool]
    load: Callable[[str, Path], tuple[np.ndarray, ...]]
    files: str  # what a folder must hold, for error messages


REGISTRY: dict[str, _Named] = {
    "mnist": _Named((28, 28, 1), 10, _mnist_present, _load_mnist_family, "the four MNIST IDX .gz files"),
    "fashion_mnist": _Named((28, 28, 1), 10, _mnist_present, _load_mnist_family, "the four IDX .gz files"),
    "cifar10": _Named((32, 32, 3), 10, _cifar_present, _load_cifar10,
                      "cifar-10-python.tar.gz or cifar-10-batches-py/"),
}


# --- user kinds ----------------------------------------------------------------


def _split_holdout(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    """Deterministic split: every sixth image (after a seeded shuffle) goes to the test split."""
    order = np.random.default_rng(0).permutation(len(x))
    test = order[::6]
    train = np.setdiff1d(order, test)
    return x[train], y[train], x[test], y[test]


def _read_image(path: Path, size: int, channels: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            im = im.convert("L" if channels == 1 else "RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(f"{path}: unreadable image ({e})") from None
    w, h = im.size
    if w < 1 or h < 1:
        raise DataError(f"{path}: image has no pixels")
    scale = size / min(w, h)  # resize the short side to `size`, then center-crop
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    im = im.resize((nw, nh), Image.Resampling.BICUBIC)
    left, top = (nw - size) // 2, (nh - size) // 2
    im = im.crop((left, top, left + size, top + size))
    a = np.asarray(im, dtype=np.uint8)
    return a[..., None] if channels == 1 else a


def _load_folder(path: Path, size: int, channels: int) -> tuple[np.ndarray, ...]:
    if not path.is_dir():
        raise DataError(f"folder dataset {path} does not exist or is not a directory")
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"folder dataset {path} holds no PNG or JPEG images")
    classes = sorted({p.parent.relative_to(path).as_posix() for p in files})
    index = {c: i for i, c in enumerate(classes)}
    x = np.stack([_read_image(p, size, channels) for p in files])
    y = np.array([index[p.parent.relative_to(path).as_posix()] for p in files], dtype=np.int64)
    if len(x) < 2:
        raise DataError(f"folder dataset {path} needs at least 2 images, found {len(x)}")
    return _split_holdout(x, y)


def _load_npz(path: Path) -> tuple[np.ndarray, ...]:
    if not path.is_file():
        raise DataError(f"npz dataset {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            if "images" not in z:
                raise DataError(f"{path}: has no 'images' array (found: {', '.join(z.files) or 'nothing'})")
            x = z["images"]
            y = z["labels"] if "labels" in z else np.zeros(len(x), dtype=np.int64)
    except DataError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{path}: not a readable .npz file ({e})") from None
    if x.dtype != np.uint8:
        raise DataError(f"{path}: images must be uint8, got {x.dtype}")
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise DataError(f"{path}: images must have shape (N, H, W, C) with C 1 or 3, got {x.shape}")
    if len(y) != len(x):
        raise DataError(f"{path}: {len(x)} images but {len(y)} labels")
    if len(x) < 2:
        raise DataError(f"{path}: needs at least 2 images, found {len(x)}")
    return _split_holdout(x, np.asarray(y, dtype=np.int64))


# --- sources -----------------------------------------------------------------


def candidate_dirs(name: str, data_dir: str | None) -> list[Path]:
    """The folders a named dataset is looked for in, in order."""
    out = []
    if data_dir:
        out.append(Path(data_dir))
    env = os.environ.get("GAN_NAS_DATA_DIR")
    if env:
        out += [Path(env) / name, Path(env) / name.replace("_", "-")]
    out.append(DEBIAN_DATASETS / name.replace("_", "-"))
    seen: list[Path] = []
    for p in out:
        if p not in seen:
            seen.append(p)
    return seen


def _load_tfds(name: str, data_dir: str | None) -> tuple[np.ndarray, ...]:
    """Load through tensorflow-datasets, never downloading when there is no network."""
    import tensorflow_datasets as tfds

    prepared = tfds.builder(name, data_dir=data_dir).is_prepared()
    download = not prepared and _network_reachable()
    try:
        splits = tfds.load(name, split=["train", "test"], data_dir=data_dir, as_supervised=True,
                           download=download)
    except Exception as e:  # noqa: BLE001 - tfds raises many kinds; reported by load()
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        if not prepared and not download:
            why = f"not prepared, and no network is reachable to download it ({why})"
        raise DataError(why) from None
    arrays = []
    for split in splits:  # one batch holding the whole split (batch_size=-1 aborts on generator sources)
        x, y = next(iter(tfds.as_numpy(split.batch(1 << 30))))
        arrays += [np.asarray(x, dtype=np.uint8), np.asarray(y, dtype=np.int64)]
    return tuple(arrays)


def _network_reachable(host: str = "storage.googleapis.com", timeout: float = 3.0) -> bool:
    import socket

    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def load(name: str, data_dir: str | None = None, image_size: int = 28, channels: int = 1) -> Dataset:
    """Load a dataset by name, trying its sources in order.

    Args:
        name: ``mnist``, ``fashion_mnist``, ``cifar10``, ``folder:PATH`` or ``npz:PATH``.
        data_dir: an explicit folder with the original files (tried first).
        image_size: square size for ``folder:`` datasets.
        channels: 1 (grayscale) or 3 (RGB) for ``folder:`` datasets.

    Returns:
        The dataset, with ``source`` telling where it came from.

    Raises:
        DataError: no source has it, or a file of it is corrupt.
    """
    if name.startswith("folder:"):
        path = Path(name[len("folder:"):]).expanduser()
        x_tr, y_tr, x_te, y_te = _load_folder(path, image_size, channels)
        return _make(f"folder:{path}", x_tr, y_tr, x_te, y_te, f"folder {path}")
    if name.startswith("npz:"):
        path = Path(name[len("npz:"):]).expanduser()
        x_tr, y_tr, x_te, y_te = _load_npz(path)
        return _make(f"npz:{path}", x_tr, y_tr, x_te, y_te, f"npz {path}")
    key = name.replace("-", "_")
    if key not in REGISTRY:
        raise DataError(
            f"unknown dataset {name!r}; known: {', '.join(REGISTRY)}, folder:PATH, npz:PATH"
        )
    entry = REGISTRY[key]
    tried = []
    dirs = candidate_dirs(key, data_dir)
    for i, folder in enumerate(dirs):
        if entry.present(folder):
            x_tr, y_tr, x_te, y_te = entry.load(key, folder)
            return _make(key, x_tr, y_tr, x_te, y_te, str(folder))
        if data_dir and i == 0:
            raise DataError(
                f"--data-dir {folder} does not hold {key}: expected {entry.files} there"
            )
        tried.append(f"{folder} (missing {entry.files})")
    try:
        x_tr, y_tr, x_te, y_te = _load_tfds(key, None)
        return _make(key, x_tr, y_tr, x_te, y_te, "tfds")
    except DataError as e:
        tried.append(f"tfds.load({key!r}): {e}")
    debian = f"; or `apt-get install dataset-{key.replace('_', '-')}`" if key == "fashion_mnist" else ""
    raise DataError(
        f"dataset {key} not found; tried: {'; '.join(tried)}. Provide it with --data-dir DIR "
        f"or $GAN_NAS_DATA_DIR/{key}/ holding {entry.files}{debian}"
    )


def _make(name: str, x_tr, y_tr, x_te, y_te, source: str) -> Dataset:
    shape = tuple(int(s) for s in x_tr.shape[1:])
    if x_te.shape[1:] != x_tr.shape[1:]:
        raise DataError(f"{source}: train images are {x_tr.shape[1:]} but test images are {x_te.shape[1:]}")
    classes = int(max(y_tr.max(initial=0), y_te.max(initial=0)) + 1)
    if name in REGISTRY:
        classes = REGISTRY[name].classes
    spec = DatasetSpec(name=name, shape=shape, classes=classes)  # type: ignore[arg-type]
    return Dataset(spec, x_tr, y_tr, x_te, y_te, source)


# --- the training stream -------------------------------------------------------


def pipeline(images: np.ndarray, batch_size: int, seed: int, shuffle_buffer: int = 10_000):
    """The training stream: float32 in [-1, 1], shuffled with ``seed``, batched, repeated, prefetched.

    The uint8 array is placed in the graph once; scaling runs as a vectorised
    map on whole batches, so no Python runs per batch.

    Args:
        images: uint8 array (N, H, W, C).
        batch_size: images per batch (the last partial batch of an epoch is dropped).
        seed: shuffle seed.
        shuffle_buffer: shuffle buffer size (clipped to N).

    Returns:
        An infinite ``tf.data.Dataset`` of float32 batches (batch_size, H, W, C).
    """
    import tensorflow as tf

    if images.dtype != np.uint8 or images.ndim != 4:
        raise DataError(f"pipeline needs uint8 images (N, H, W, C), got {images.dtype} {images.shape}")
    if len(images) < batch_size:
        raise DataError(f"dataset has {len(images)} train images, fewer than one batch of {batch_size}")
    ds = tf.data.Dataset.from_tensor_slices(images)
    ds = ds.shuffle(min(shuffle_buffer, len(images)), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=True)
    ds = ds.map(lambda x: tf.cast(x, tf.float32) / 127.5 - 1.0, num_parallel_calls=2)
    # Fixed parallelism and buffer, autotuning off: with autotuning on, deleting the
    # iterator at the end of a candidate waited up to ~8 s for tf.data's autotuning
    # thread (measured on 2 cores), longer than many candidates' scoring; and the
    # stream is >700x faster than a train step needs (experiments/bench_data.py).
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.repeat().prefetch(2).with_options(options)
