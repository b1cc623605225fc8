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
``image_size``, transparency composited onto ``background``; sub-folders are
classes; read by :mod:`gan_nas.folder`, in parallel and cached) and ``npz:PATH``
(an ``images`` array, N,H,W,C uint8, optional ``labels``). Both hold out a fixed
1/6 as the test split.

Every dataset then holds out a **validation** split from its train split
(:func:`split_validation`): as many images as the test split has, at most a fifth
of the train split (MNIST: 10,000 of the 60,000). Neither the GANs nor the feature
network train on it; a search selects its candidates on it, and reports score on
the test split, which nothing was chosen on.

Every loader returns uint8 arrays (N, H, W, C) and int64 labels.

Files are untrusted input: a bad one raises :class:`DataError` naming it and the
problem (in a ``folder:`` dataset, an unreadable image is skipped instead, with
a count and its name on stderr, as long as enough readable ones remain).
Nothing in them runs: CIFAR-10's pickles go through an unpickler that resolves
only numpy's array globals, ``.npz`` arrays of Python objects are refused, and
Pillow may use only its PNG and JPEG decoders. Sizes are bounded
before data is read or decoded (see the constants below), so a small file that
inflates to gigabytes is refused rather than loaded.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import pickle
import re
import stat
import struct
import sys
import tarfile
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from gan_nas import safe_io
from gan_nas.errors import DataError, GanNasError

if TYPE_CHECKING:  # pragma: no cover
    from gan_nas.config import DataConfig

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


VALIDATION_SEED = 1  # the validation split's shuffle (the user kinds' test holdout uses seed 0)
REFERENCE_SPLITS = ("validation", "test")  # the held-out splits that FID references are computed on


def split_validation(x: np.ndarray, y: np.ndarray, n_test: int) -> tuple[np.ndarray, ...]:
    """(x_train, y_train, x_val, y_val): ``min(n_test, len(x) // 5)`` images of a train split, drawn by a
    fixed shuffle, held out as the validation split; the rest stays in order."""
    n_val = min(int(n_test), len(x) // 5)
    held = np.sort(np.random.default_rng(VALIDATION_SEED).permutation(len(x))[:n_val])
    keep = np.setdiff1d(np.arange(len(x)), held)
    return x[keep], y[keep], x[held], y[held]


@dataclass
class Dataset:
    """A loaded dataset: uint8 images (N, H, W, C), int64 labels, and where they came from.

    Three splits: ``train`` (what GANs and the feature network train on), ``validation`` (what a search
    selects on) and ``test`` (what reports score on). Given no validation split, the constructor
    holds one out of the train split it is given (:func:`split_validation`), so every loader and
    every test fixture splits alike.
    """

    spec: DatasetSpec
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    fingerprint: str = ""
    notes: tuple[str, ...] = ()  # what the load has to tell the user (files skipped, images upscaled)
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.x_val is None or self.y_val is None:
            self.x_train, self.y_train, self.x_val, self.y_val = split_validation(
                self.x_train, self.y_train, len(self.x_test))
        if not self.fingerprint:
            self.fingerprint = fingerprint(self.x_train, self.y_train, self.x_val, self.y_val,
                                           self.x_test, self.y_test)

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(images, labels) of the split ``validation`` or ``test``: the two that FID references use."""
        if name not in REFERENCE_SPLITS:
            raise ValueError(f"unknown reference split {name!r}: {' or '.join(REFERENCE_SPLITS)}")
        return (self.x_val, self.y_val) if name == "validation" else (self.x_test, self.y_test)  # type: ignore[return-value]

    def describe(self) -> dict[str, Any]:
        """The summary that ``gan-nas data`` prints."""
        return {
            "dataset": self.spec.name,
            "train": int(len(self.x_train)),
            "validation": int(len(self.x_val)),  # type: ignore[arg-type]
            "test": int(len(self.x_test)),
            "shape": list(self.spec.shape),
            "classes": self.spec.classes,
            "source": self.source,
            **({"notes": list(self.notes)} if self.notes else {}),
        }


def fingerprint(*arrays: np.ndarray) -> str:
    """A content hash of arrays (shape, dtype and bytes), for cache keys."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.shape, a.dtype.str)).encode())
        h.update(memoryview(a).cast("B") if a.size else b"")  # an empty view cannot be cast
    return h.hexdigest()[:16]


# --- bounds and checks shared by the readers --------------------------------------

MIN_IMAGE_SIZE = 4  # the feature classifier pools twice by 2: a side under 4 leaves it no pixels
MAX_IMAGE_SIZE = 1024  # folder: images are held in memory: 1,000 RGB images of 1024x1024 are 3 GiB
MAX_IMAGE_PIXELS = 1 << 26  # 8192x8192; a PNG or JPEG above this is refused before it is decoded
MAX_CLASSES = 10_000  # labels index the classifier's output layer, which has max(label) + 1 units
IDX_MAX_BYTES = 1 << 30  # MNIST's largest IDX file is 47 MB; more is a header that lies
CIFAR_MAX_BATCH_BYTES = 1 << 28  # a CIFAR-10 batch is 31 MB; more is not one
IMAGE_FORMATS = ("PNG", "JPEG")  # Pillow picks a decoder by content, not by name: only these run


def _why(e: BaseException) -> str:
    """An exception as a short reason: an OSError's ``strerror`` (the caller names the path), else its text."""
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__


def _stat(path: Path, what: str, error: type[GanNasError]) -> os.stat_result:
    try:
        return path.stat()
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist") from None
    except OSError as e:  # a symlink loop, a folder above it that cannot be searched
        raise error(f"{what} {path}: {_why(e)}") from None


def require_file(path: Path, what: str, error: type[GanNasError] = DataError) -> None:
    """Raise ``error`` unless ``path`` exists and is not a directory; ``what`` names it in the message."""
    if stat.S_ISDIR(_stat(path, what, error).st_mode):
        raise error(f"{what} {path} is a directory, not a file")


def require_dir(path: Path, what: str, error: type[GanNasError] = DataError) -> None:
    """Raise ``error`` unless ``path`` exists and is a directory; ``what`` names it in the message."""
    if not stat.S_ISDIR(_stat(path, what, error).st_mode):
        raise error(f"{what} {path} is not a directory")


def check_image_size(image_size: Any, channels: Any) -> None:
    """Raise :class:`DataError` unless ``image_size`` and ``channels`` are ones a ``folder:`` dataset can take."""
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or not (
        MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE
    ):
        raise DataError(
            f"image size must be a whole number of pixels from {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE} "
            f"(--image-size, data.image_size), got {image_size!r}"
        )
    if isinstance(channels, bool) or channels not in (1, 3):
        raise DataError(f"channels must be 1 (grayscale) or 3 (RGB) (--channels, data.channels), got {channels!r}")


def _labels(y: Any, n: int, where: str, classes: int = MAX_CLASSES) -> np.ndarray:
    """``y`` as int64 labels, one per image, refusing anything but whole numbers in [0, classes).

    Args:
        y: the labels as stored (an array, or a list from a pickle).
        n: the number of images they label.
        where: the file (and entry), for error messages.
        classes: labels must be below this.

    Raises:
        DataError: not numbers, not one per image, not whole (NaN, inf, 2.5), or out of range.
    """
    if isinstance(y, (list, tuple)):
        # Check the items first: np.asarray would expand nested lists, however deep or large.
        if len(y) != n:
            raise DataError(f"{where}: {n} images but {len(y)} labels")
        for v in y:
            if not isinstance(v, (int, float, np.integer, np.floating)):
                raise DataError(f"{where}: labels must be integers, found a {type(v).__name__}")
        y = np.asarray(y)
    if not isinstance(y, np.ndarray) or y.dtype.kind not in "biuf":
        kind = f"dtype {y.dtype}" if isinstance(y, np.ndarray) else f"a {type(y).__name__}"
        raise DataError(f"{where}: labels must be integers, got {kind}")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]  # a column (N, 1), as Keras-style code often saves labels: still one per image
    if y.ndim != 1:
        raise DataError(f"{where}: labels must be one integer per image, shape ({n},), got shape {y.shape}")
    if len(y) != n:
        raise DataError(f"{where}: {n} images but {len(y)} labels")
    if y.dtype.kind == "f":
        whole = np.isfinite(y) & (y == np.round(y))
        if not whole.all():
            i = int(np.argmin(whole))
            raise DataError(f"{where}: labels must be whole numbers, label {i} is {y[i]}")
    if y.size and (y.min() < 0 or y.max() >= classes):
        raise DataError(f"{where}: labels must lie in [0, {classes}), found {y.min()}..{y.max()}")
    return y.astype(np.int64)


def _memory_bytes() -> int:
    """This machine's physical memory in bytes; 0 where it cannot be told (no bound then)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 0


# --- original-format readers -------------------------------------------------


def _open(path: Path) -> BinaryIO:
    """``path`` opened for reading; an unreadable one raises :class:`DataError` saying why."""
    try:
        return safe_io.open_regular(path)  # a FIFO or device is refused, not read without end
    except OSError as e:
        raise DataError(f"{path}: cannot open ({_why(e)})") from None


def read_idx(path: Path, expect_magic: int) -> np.ndarray:
    """Read a gzip-compressed IDX file (images: magic 2051, labels: magic 2049).

    The header is read first, and then only the bytes it promises (and one more,
    to tell a longer file), so a small file that inflates without end is refused
    rather than read into memory.
    """
    header = 16 if expect_magic == 2051 else 8
    with _open(path) as fh:
        try:
            with gzip.GzipFile(fileobj=fh, mode="rb") as f:
                head = f.read(header)
                shape, want = _idx_header(path, head, header, expect_magic)
                body = _read_upto(f, want - header + 1)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{path}: cannot read gzip data ({_why(e)}); the file is corrupt or truncated") from None
    if len(body) > want - header:
        raise DataError(f"{path}: wrong length: more than the {want} bytes its header promises")
    if header + len(body) != want:
        raise DataError(f"{path}: wrong length: {header + len(body)} bytes, the header promises {want}")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def _idx_header(path: Path, head: bytes, header: int, expect_magic: int) -> tuple[tuple[int, ...], int]:
    """The array shape and total byte length an IDX header promises."""
    if len(head) < header:
        raise DataError(f"{path}: file is shorter than its {header}-byte IDX header")
    magic, count = struct.unpack(">II", head[:8])
    if magic != expect_magic:
        kind = "image" if expect_magic == 2051 else "label"
        raise DataError(f"{path}: bad magic number {magic}, expected {expect_magic} for an IDX {kind} file")
    shape: tuple[int, ...] = (count, *struct.unpack(">II", head[8:16])) if expect_magic == 2051 else (count,)
    want = header + math.prod(shape)
    if want > IDX_MAX_BYTES:
        raise DataError(f"{path}: its header promises {want:,} bytes, more than the {IDX_MAX_BYTES:,} "
                        "gan-nas reads from an IDX file (MNIST's largest is 47 MB)")
    return shape, want


def _read_upto(f: BinaryIO, n: int, chunk: int = 1 << 22) -> bytes:
    """At most ``n`` bytes of ``f``, read in chunks so that a lying size allocates nothing up front."""
    parts, got = [], 0
    while got < n:
        part = f.read(min(chunk, n - got))
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


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
        if n_img < 2:  # as for an npz: a split of 0 images was described as a dataset (exit 0)
            raise DataError(f"{folder / MNIST_FILES[f'{split}_images']}: needs at least 2 images, found {n_img}")
        where = str(folder / MNIST_FILES[f"{split}_labels"])
        arrays[f"{split}_labels"] = _labels(arrays[f"{split}_labels"], n_lab, where, REGISTRY[name].classes)
    return (
        arrays["train_images"][..., None], arrays["train_labels"],
        arrays["test_images"][..., None], arrays["test_labels"],
    )


def _mnist_present(folder: Path) -> bool:
    return all((folder / f).is_file() for f in MNIST_FILES.values())


class _PlainArray:
    """Stands for ``numpy.ndarray`` in a CIFAR batch: only :func:`_array_shell` takes it.

    A pickle names the class only as the first argument of ``_reconstruct``; handing
    it out as itself would let a crafted pickle call ``ndarray(shape)`` and allocate
    any size.
    """


def _array_shell(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    """numpy's ``_reconstruct`` for plain arrays: an empty array that the pickle's state then fills.

    The state carries the real shape and bytes and must match them, so the shape
    argument (always ``(0,)`` in numpy's own pickles) is not used.
    """
    if subtype is not _PlainArray:
        raise pickle.UnpicklingError("_reconstruct of anything but a plain numpy array")
    return _NUMPY_PICKLE_FUNCTIONS["_reconstruct"](np.ndarray, (0,), dtype)


def _latin1(text: Any, encoding: Any = "utf-8") -> bytes:
    """``_codecs.encode`` as pickle protocols 0-2 use it for bytes (``str`` in latin-1), and for nothing else."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode other than of a str to latin-1")
    return text.encode("latin-1")


# numpy's pickling functions, taken from what numpy itself reduces to, so that no
# deprecated module (numpy.core under numpy 2) is imported to find them.
_NUMPY_PICKLE_FUNCTIONS = {
    "_reconstruct": np.zeros(0).__reduce__()[0],
    "scalar": np.int64(0).__reduce__()[0],
    "_frombuffer": np.zeros(1).__reduce_ex__(5)[0],
}


def _cifar_pickle_globals() -> dict[tuple[str, str], Any]:
    """Every global a CIFAR-10 batch pickle may name, under numpy 1's and numpy 2's module names.

    The batches hold a dict of bytes, lists of ints and one uint8 array. Pickled by
    Python 2 (the distributed files) or Python 3 at any protocol, with numpy 1 or 2,
    these need numpy's array and scalar reconstruction, ``numpy.dtype``, and
    ``_codecs.encode`` for bytes at protocols 0-2. Nothing else is allowed.
    """
    out: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): _PlainArray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1,
    }
    for core in ("numpy.core", "numpy._core"):
        out[(f"{core}.multiarray", "_reconstruct")] = _array_shell
        out[(f"{core}.multiarray", "scalar")] = _NUMPY_PICKLE_FUNCTIONS["scalar"]
        out[(f"{core}.numeric", "_frombuffer")] = _NUMPY_PICKLE_FUNCTIONS["_frombuffer"]
    return out


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles CIFAR-10 python batches and nothing else.

    A pickle can name any importable callable and call it, so plain
    ``pickle.loads`` of a file in a data folder runs whatever the file says. This
    one resolves only the globals of :func:`_cifar_pickle_globals`.
    """

    def __init__(self, raw: bytes, where: str) -> None:
        super().__init__(io.BytesIO(raw), encoding="bytes")  # Python 2 str (the batches' keys) as bytes
        self.where = where
        self.allowed = _cifar_pickle_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise DataError(
                f"{self.where}: refused to load {module}.{name} from the pickle: a CIFAR-10 batch holds "
                "only numpy arrays, lists, bytes and numbers, so this file is not one (it may be crafted "
                "to run code)"
            ) from None


def _entry(d: dict, key: str, where: str) -> Any:
    """``d[key]`` under a bytes key (Python 2's pickles) or a str one (Python 3's)."""
    for k in (key.encode(), key):
        if k in d:
            return d[k]
    found = ", ".join(repr(k) for k in list(d)[:10]) or "nothing"
    raise DataError(f"{where}: not a CIFAR-10 python batch: it has no {key!r} entry (found {found})")


def _cifar_batch(raw: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        d = _CifarUnpickler(raw, where).load()
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 - unpickling raises many kinds
        raise DataError(f"{where}: not a CIFAR-10 python batch ({type(e).__name__}: {e})") from None
    if not isinstance(d, dict):
        raise DataError(f"{where}: not a CIFAR-10 python batch: it holds a {type(d).__name__}, not a dict")
    data, labels = _entry(d, "data", where), _entry(d, "labels", where)
    if not isinstance(data, np.ndarray) or data.dtype.kind not in "ui":
        kind = f"an array of {data.dtype}" if isinstance(data, np.ndarray) else f"a {type(data).__name__}"
        raise DataError(f"{where}: data must be a uint8 array (N, 3072), got {kind}")
    if data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{where}: data has shape {data.shape}, expected (N, 3072)")
    if data.size and (data.min() < 0 or data.max() > 255):
        raise DataError(f"{where}: data must hold pixel values 0..255, found {data.min()}..{data.max()}")
    labels = _labels(labels, len(data), where, REGISTRY["cifar10"].classes)
    images = data.astype(np.uint8, copy=False).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


CIFAR_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR_TEST = ["test_batch"]


def _read_batch_file(p: Path) -> bytes:
    """The bytes of one extracted CIFAR-10 batch, refusing a file too big to be one."""
    try:
        st = p.stat()
    except FileNotFoundError:
        raise DataError(f"{p}: missing CIFAR-10 batch file") from None
    except OSError as e:
        raise DataError(f"{p}: cannot read ({_why(e)})") from None
    if not stat.S_ISREG(st.st_mode):
        raise DataError(f"{p}: missing CIFAR-10 batch file (this is not a regular file)")
    if st.st_size > CIFAR_MAX_BATCH_BYTES:
        raise DataError(f"{p}: {st.st_size:,} bytes, more than the {CIFAR_MAX_BATCH_BYTES:,} a CIFAR-10 "
                        "batch can be")
    with _open(p) as f:
        try:
            return f.read()
        except OSError as e:
            raise DataError(f"{p}: cannot read ({_why(e)})") from None


def _read_cifar_tar(tar: Path) -> dict[str, tuple[bytes, str]]:
    """The batches of ``cifar-10-python.tar.gz``, read in one pass over the archive.

    Members are taken in archive order (looking each one up by name would
    decompress the archive again for every batch), must be regular files (a link
    member could point anywhere in the archive, itself included) and no bigger
    than a batch can be.
    """
    wanted = {f"cifar-10-batches-py/{b}": b for b in CIFAR_TRAIN + CIFAR_TEST}
    raws: dict[str, tuple[bytes, str]] = {}
    with _open(tar) as fh:
        try:
            with gzip.GzipFile(fileobj=fh, mode="rb") as gz, tarfile.open(fileobj=gz, mode="r:") as t:
                for info in t:
                    if info.name not in wanted or wanted[info.name] in raws:
                        continue
                    if not info.isfile():
                        raise DataError(f"{tar}: {info.name} is not a regular file in the archive")
                    if info.size > CIFAR_MAX_BATCH_BYTES:
                        raise DataError(f"{tar}: {info.name} is {info.size:,} bytes, more than the "
                                        f"{CIFAR_MAX_BATCH_BYTES:,} a CIFAR-10 batch can be")
                    member = t.extractfile(info)
                    assert member is not None  # a regular file always has one
                    raws[wanted[info.name]] = (member.read(), f"{tar}:{wanted[info.name]}")
                _drain(gz, tar)
        except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
            raise DataError(f"{tar}: cannot read the tarball ({_why(e)}); it is corrupt or truncated") from None
    for name, b in wanted.items():
        if b not in raws:
            raise DataError(f"{tar}: has no {name}")
    return raws


def _drain(gz: gzip.GzipFile, tar: Path, limit: int = 1 << 24) -> None:
    """Read a gzip stream to its end, where its CRC is checked.

    Deflate's stored blocks (what incompressible data becomes) carry no check of
    their own: flipped bits in them show only in the CRC at the end of the
    stream, which tarfile stops short of (at the archive's end-of-archive blocks).
    A tar archive ends in at most a record (10 KiB) of padding, so more than
    ``limit`` bytes after it is refused rather than inflated without end.
    """
    read = 0
    while chunk := gz.read(1 << 20):
        read += len(chunk)
        if read > limit:
            raise DataError(f"{tar}: more than {limit:,} bytes follow the end of the archive; "
                            "it is not CIFAR-10's")


def _load_cifar10(name: str, folder: Path) -> tuple[np.ndarray, ...]:
    extracted = folder / "cifar-10-batches-py"
    if folder.name == "cifar-10-batches-py":
        extracted = folder
    if extracted.is_dir():
        raws = {b: (_read_batch_file(extracted / b), str(extracted / b)) for b in CIFAR_TRAIN + CIFAR_TEST}
    else:
        raws = _read_cifar_tar(folder / "cifar-10-python.tar.gz")
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


# --- images ----------------------------------------------------------------------


def list_images(folder: Path, recursive: bool, error: type[GanNasError] = DataError) -> list[Path]:
    """The PNG/JPEG files (by suffix) in ``folder``, sorted; with ``recursive``, in its sub-folders too.

    Symlinked folders are listed but not entered (so a link loop cannot recurse);
    a broken link or a link loop with an image's name is listed, and fails when
    read, naming itself.

    Raises:
        error: a folder that cannot be listed (permission denied).
    """

    def fail(e: OSError) -> None:
        raise error(f"{e.filename}: cannot list the folder ({_why(e)})")

    found = []
    for top, _dirs, names in os.walk(folder, onerror=fail):
        found += [Path(top) / n for n in names if Path(n).suffix.lower() in IMAGE_SUFFIXES]
        if not recursive:
            break
    return sorted(found)


def open_image(path: Path, error: type[GanNasError] = DataError) -> Any:
    """Open a PNG or JPEG without decoding its pixels, refusing one above :data:`MAX_IMAGE_PIXELS`.

    Only Pillow's PNG and JPEG decoders may run, whatever the file holds: Pillow
    otherwise picks one by content, and some (EPS) run external programs. Pillow
    warns (``DecompressionBombWarning``) and then raises on very large images;
    both become ``error``, with the bound, and nothing reaches the terminal.

    Returns:
        The open ``PIL.Image.Image``, for use as a context manager.

    Raises:
        error: unreadable, not PNG/JPEG, or too large.
    """
    from PIL import Image, UnidentifiedImageError

    bound = f"more than the {MAX_IMAGE_PIXELS:,} (8192x8192) gan-nas reads"
    try:
        safe_io.check_regular(path)  # a FIFO named like an image would block the read forever
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path, formats=IMAGE_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        # Pillow's own limit (89M pixels) is not ours; keep only the size from its message.
        pixels = re.search(r"\((\d+) pixels\)", str(e))
        size = f"image has {int(pixels.group(1)):,} pixels" if pixels else "image is too large"
        raise error(f"{path}: {size}, {bound}") from None
    except UnidentifiedImageError:
        raise error(f"{path}: unreadable image (not a PNG or JPEG file)") from None
    except Exception as e:  # noqa: BLE001 - Pillow raises many kinds on a malformed file
        raise error(f"{path}: unreadable image ({_why(e)})") from None
    w, h = im.size
    if w * h > MAX_IMAGE_PIXELS:
        im.close()
        raise error(f"{path}: image is {w}x{h} = {w * h:,} pixels, {bound}")
    if w < 1 or h < 1:
        im.close()
        raise error(f"{path}: image has no pixels")
    return im


WHITE = (255, 255, 255)
BACKGROUNDS = {"white": WHITE, "black": (0, 0, 0), "gray": (128, 128, 128), "grey": (128, 128, 128)}
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")  # 16-bit grayscale PNGs open as one of these
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def parse_background(value: Any) -> tuple[int, int, int]:
    """``data.background`` as an RGB triple: ``white``, ``black``, ``gray`` (``grey``) or ``#rrggbb``.

    Raises:
        DataError: anything else.
    """
    if isinstance(value, str):
        v = value.strip().lower()
        if v in BACKGROUNDS:
            return BACKGROUNDS[v]
        if re.fullmatch(r"#[0-9a-f]{6}", v):
            r, g, b = bytes.fromhex(v[1:])
            return r, g, b
    raise DataError(f"background must be white, black, gray or a colour #rrggbb (--background, data.background), "
                    f"got {value!r}")


def _eight_bit(im: Any) -> Any:
    """A 16-bit grayscale image as 8-bit ``L``, scaled by 255/65535.

    Pillow's own conversion clips instead: every value above 255 (nearly all of
    a 16-bit image) would become white.
    """
    from PIL import Image

    a = np.asarray(im, dtype=np.float64)
    return Image.fromarray(np.clip(np.round(a / 257.0), 0, 255).astype(np.uint8), "L")


def _has_alpha(im: Any) -> bool:
    """Whether ``im`` has transparency: an alpha channel, or a ``tRNS`` colour (palette, L or RGB)."""
    return im.mode in _ALPHA_MODES or "transparency" in im.info


def _composite(im: Any, background: tuple[int, int, int]) -> Any:
    """``im`` over an opaque ``background``, as RGB.

    Transparent pixels keep whatever colour they happen to store (often black,
    or a block of the emoji's own colour); dropping the alpha shows it. Blending
    with the alpha (straight, not premultiplied, as PNG stores it) shows the
    background instead, as a browser would.
    """
    from PIL import Image

    rgba = im.convert("RGBA")  # a palette's or tRNS colour's transparency becomes alpha here
    return Image.alpha_composite(Image.new("RGBA", rgba.size, (*background, 255)), rgba).convert("RGB")


def decode_image(im: Any, path: Path, mode: str, error: type[GanNasError] = DataError,
                 background: tuple[int, int, int] = WHITE) -> Any:
    """Decode an image from :func:`open_image` and convert it to ``mode`` (``L`` or ``RGB``).

    Every mode Pillow's PNG and JPEG decoders produce is converted by what it
    means: 16-bit grayscale is scaled to 8 bits (not clipped); anything with
    transparency (RGBA, LA, PA, a palette or an L/RGB image with a ``tRNS``
    colour) is composited onto ``background`` first; CMYK, YCbCr, 1-bit and
    palette images convert through Pillow. A palette image with transparency
    goes through RGBA, which also keeps Pillow from warning ("Palette images
    with Transparency expressed in bytes ...") on the terminal.

    Raises:
        error: the pixel data is corrupt or truncated.
    """
    try:
        im.load()
        if im.mode in _SIXTEEN_BIT:
            im = _eight_bit(im)  # a 16-bit tRNS colour is dropped with the mode: rare enough to ignore
        if _has_alpha(im):
            im = _composite(im, background)
        return im.convert(mode)
    except Exception as e:  # noqa: BLE001 - Pillow raises many kinds on a malformed file
        raise error(f"{path}: unreadable image ({_why(e)})") from None


# --- user kinds ----------------------------------------------------------------


def _split_holdout(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    """Deterministic split: every sixth image (after a seeded shuffle) goes to the test split."""
    order = np.random.default_rng(0).permutation(len(x))
    test = order[::6]
    train = np.setdiff1d(order, test)
    return x[train], y[train], x[test], y[test]


def _load_folder(path: Path, size: int, channels: int, background: tuple[int, int, int]) -> tuple[Any, ...]:
    """A folder's images split like every user kind, and the notes its load has for the user."""
    from gan_nas import folder

    got = folder.read_folder(path, size, channels, background)
    return (*_split_holdout(got.x, got.y), got.notes)


def _not_an_npz(path: Path) -> str:
    """Why a file that is no zip archive cannot be an ``.npz``, telling a plain ``.npy`` or a pickle."""
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError as e:
        return f"{path}: cannot open ({_why(e)})"
    if head == b"\x93NUMPY":
        return (f"{path}: is a .npy array, not an .npz archive; save with np.savez(path, images=...) "
                "(and labels=... where needed)")
    if head[:1] == b"\x80":
        return f"{path}: is a pickle, not an .npz archive; gan-nas never unpickles files"
    if head[:2] == b"PK":
        return f"{path}: not a readable .npz file (a damaged or truncated zip archive)"
    return f"{path}: not a readable .npz file (it is not a zip archive)"


def read_npz(path: Path, required: tuple[str, ...], optional: tuple[str, ...] | None = (),
             error: type[GanNasError] = DataError) -> dict[str, np.ndarray]:
    """Read named arrays of an ``.npz`` file, never unpickling.

    Each array's ``.npy`` header is read before its data: arrays of Python
    objects (which only unpickling restores) are refused, and so is an array
    whose header promises more bytes than the archive stores (truncated or
    lying) or than this machine's memory (a zip bomb).

    Args:
        path: the file.
        required: arrays that must be present.
        optional: arrays read when present; None: every array the file holds (a checkpoint's).
        error: the exception class to raise (``FitnessError`` for samples).

    Returns:
        The arrays found, by name.

    Raises:
        error: not a file, not a zip archive (a ``.npy`` or a pickle is named as
            such), a required array missing, or an array unreadable.
    """
    require_file(path, "npz file", error)
    try:
        fh = safe_io.open_regular(path)  # zipfile would read a FIFO or /dev/zero without end
    except OSError as e:
        raise error(f"{path}: cannot open ({_why(e)})") from None
    try:
        zf = zipfile.ZipFile(fh)
    except (zipfile.BadZipFile, EOFError, ValueError):
        fh.close()
        raise error(_not_an_npz(path)) from None
    except BaseException:
        fh.close()
        raise
    with fh, zf:
        members = {n[:-4]: zf.getinfo(n) for n in zf.namelist() if n.endswith(".npy")}
        if optional is None:
            optional = tuple(n for n in members if n not in required)
        for name in required:
            if name not in members:
                raise error(f"{path}: has no {name!r} array (found: {', '.join(members) or 'nothing'})")
        return {name: _read_npz_member(zf, members[name], f"{path}: array {name!r}", error)
                for name in required + optional if name in members}


def _read_npz_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str,
                     error: type[GanNasError]) -> np.ndarray:
    readable = (OSError, EOFError, ValueError, zlib.error, zipfile.BadZipFile, NotImplementedError)
    fmt = np.lib.format
    try:
        with zf.open(info) as f:
            version = fmt.read_magic(f)
            if version not in ((1, 0), (2, 0)):
                raise error(f"{where}: .npy format version {version[0]}.{version[1]} is not supported "
                            "(1.0 and 2.0 are, as np.savez writes them)")
            read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, _fortran, dtype = read_header(f)
    except GanNasError:
        raise
    except readable as e:
        raise error(f"{where}: not a readable .npz member ({_why(e)})") from None
    if dtype.hasobject:
        raise error(f"{where}: holds Python objects (dtype {dtype}); gan-nas reads numeric arrays only "
                    "and never unpickles")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > info.file_size:
        raise error(f"{where}: truncated: its header promises {nbytes:,} bytes of data, the archive "
                    f"holds {info.file_size:,}")
    memory = _memory_bytes()
    if memory and nbytes > memory:
        raise error(f"{where}: needs {nbytes / 2**30:,.1f} GiB, more than this machine's "
                    f"{memory / 2**30:,.1f} GiB of memory")
    try:
        with zf.open(info) as f:
            return fmt.read_array(f, allow_pickle=False)
    except readable as e:
        raise error(f"{where}: not a readable .npz member ({_why(e)})") from None


def _load_npz(path: Path) -> tuple[np.ndarray, ...]:
    require_file(path, "npz dataset")
    arrays = read_npz(path, ("images",), ("labels",))
    x = arrays["images"]
    if x.dtype != np.uint8:
        raise DataError(f"{path}: images must be uint8, got {x.dtype}")
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise DataError(f"{path}: images must have shape (N, H, W, C) with C 1 or 3, got {x.shape}")
    if len(x) < 2:
        raise DataError(f"{path}: needs at least 2 images, found {len(x)}")
    if min(x.shape[1:3]) < MIN_IMAGE_SIZE:
        raise DataError(f"{path}: images are {x.shape[1]}x{x.shape[2]}; gan-nas needs at least "
                        f"{MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE} (the feature classifier pools twice by 2)")
    if max(x.shape[1:3]) > MAX_IMAGE_SIZE:
        raise DataError(f"{path}: images are {x.shape[1]}x{x.shape[2]}; gan-nas takes at most "
                        f"{MAX_IMAGE_SIZE}x{MAX_IMAGE_SIZE} (resize them, or use folder:PATH with data.image_size)")
    y = arrays["labels"] if "labels" in arrays else np.zeros(len(x), dtype=np.int64)
    return _split_holdout(x, _labels(y, len(x), str(path)))


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


def load(name: str, data_dir: str | None = None, image_size: int = 28, channels: int = 1,
         background: str = "white") -> Dataset:
    """Load a dataset by name, trying its sources in order.

    Args:
        name: ``mnist``, ``fashion_mnist``, ``cifar10``, ``folder:PATH`` or ``npz:PATH``.
        data_dir: an explicit folder with the original files (tried first).
        image_size: square size for ``folder:`` datasets.
        channels: 1 (grayscale) or 3 (RGB) for ``folder:`` datasets.
        background: colour that a ``folder:`` dataset's transparency is composited onto
            (``white``, ``black``, ``gray`` or ``#rrggbb``; see :func:`parse_background`).

    Returns:
        The dataset, with ``source`` telling where it came from.

    Raises:
        DataError: no source has it, a file of it is corrupt, or ``image_size``,
            ``channels`` or ``background`` is out of range (checked whatever the dataset: a bad
            value is refused even where it would go unused).
    """
    check_image_size(image_size, channels)
    rgb = parse_background(background)
    if name in ("folder:", "npz:"):  # Path("") is the current folder: never scan that by accident
        raise DataError(f"dataset {name!r} names no path; use {name}PATH")
    if name.startswith("folder:"):
        path = Path(name[len("folder:"):]).expanduser()
        x_tr, y_tr, x_te, y_te, notes = _load_folder(path, image_size, channels, rgb)
        for note in notes:  # every load says so (the cached ones too), on stderr: --json keeps stdout
            print(f"warning: {note}", file=sys.stderr, flush=True)
        ds = _make(f"folder:{path}", x_tr, y_tr, x_te, y_te, f"folder {path}")
        ds.notes = tuple(notes)
        return ds
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
    if data_dir:
        require_dir(Path(data_dir), "--data-dir")
    tried = []
    dirs = candidate_dirs(key, data_dir)
    for i, folder in enumerate(dirs):
        if _present(entry, folder):
            x_tr, y_tr, x_te, y_te = entry.load(key, folder)
            return _make(key, x_tr, y_tr, x_te, y_te, str(folder))
        if data_dir and i == 0:
            raise DataError(
                f"--data-dir {folder} does not hold {key}: expected {entry.files} there{_missing(entry, folder)}"
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


def load_config(cfg: DataConfig) -> Dataset:
    """:func:`load` with a config's ``[data]`` settings, every one of them (the background too)."""
    return load(cfg.dataset, cfg.data_dir, cfg.image_size, cfg.channels, cfg.background)


def _present(entry: _Named, folder: Path) -> bool:
    """Whether ``folder`` holds the dataset; a folder that cannot be looked into is an error, not a miss."""
    try:
        return entry.present(folder)
    except OSError as e:
        raise DataError(f"{folder}: cannot look inside ({_why(e)})") from None


def _missing(entry: _Named, folder: Path) -> str:
    """Which of an MNIST-family dataset's files ``folder`` lacks (or holds as something else), for errors."""
    if entry.load is not _load_mnist_family:
        return ""
    missing = [f for f in MNIST_FILES.values() if not (folder / f).is_file()]
    return f" (missing: {', '.join(missing)})" if missing else ""


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
    # iterator at the end of a candidate waits for tf.data's autotuning thread, for
    # longer than many candidates' scoring; and the fixed stream is already far faster
    # than a train step needs (figures: experiments/bench_data.py).
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.repeat().prefetch(2).with_options(options)
