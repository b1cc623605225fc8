"""``folder:`` datasets: a folder of PNG/JPEG images decoded into one uint8 array, in parallel, and cached.

Sub-folders are classes (their paths relative to the folder, sorted); a flat
folder is one class. Each image is decoded by :func:`gan_nas.data.decode_image`
(every Pillow mode converted by what it means, transparency composited onto
the background), resized on its short side to ``size`` (bicubic) and
center-cropped to a square.

What a user's folder holds is not always readable: a file that cannot be
decoded (truncated, not PNG/JPEG, too large, unreadable) is skipped, and the
load says how many and names them (:attr:`FolderImages.notes`), never
silently. Fewer than :data:`MIN_IMAGES` readable images is an error naming the
problem: a GAN cannot be trained and scored on fewer.

A folder of :data:`PARALLEL_MIN_FILES` images or more is decoded in spawned
worker processes, one per CPU. One of :data:`CACHE_MIN_FILES` or more is cached
after its first load as one ``.npz`` under ``$GAN_NAS_CACHE/data/`` (default
``~/.cache/gan-nas``), keyed by the folder's listing (every file's path, size
and modification time), the size, channels, background and
:data:`LOADER_VERSION`; so a changed folder is decoded again. The cache is
written atomically, read back with ``allow_pickle=False`` and checked like any
other file; a damaged entry is decoded again.
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import os
import re
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gan_nas import safe_io
from gan_nas.data import (
    decode_image,
    list_images,
    open_image,
    read_npz,
    require_dir,
)
from gan_nas.errors import DataError

MIN_IMAGES = 64  # fewer real images cannot train a GAN, nor give its FID a reference of any size
CACHE_MIN_FILES = 256  # smaller folders decode in well under a second: a cache entry would only take room
PARALLEL_MIN_FILES = 5_000  # below this, decoding here beats starting worker processes (about 0.3 s)
LOADER_VERSION = 1  # bump when decoding changes, so that no cache entry from before is used
SHOWN = 3  # skipped files named in a message (all are counted)


@dataclass
class FolderImages:
    """A folder's readable images and what the load has to say about them.

    Attributes:
        x: uint8 images (N, size, size, channels), in the sorted order of their paths.
        y: int64 labels: the index of each image's sub-folder among ``classes``.
        classes: the sub-folders (relative paths; ``.`` for the folder itself) that hold readable images.
        notes: sentences a user should read: files skipped as unreadable, images upscaled.
    """

    x: np.ndarray
    y: np.ndarray
    classes: list[str]
    notes: list[str]


def read_folder(path: Path, size: int, channels: int, background: tuple[int, int, int],
                workers: int | None = None) -> FolderImages:
    """Read every PNG/JPEG image under ``path``, from the cache where it holds them.

    Args:
        path: the folder.
        size: square side of the images returned.
        channels: 1 (grayscale) or 3 (RGB).
        background: RGB colour that transparency is composited onto.
        workers: decoding processes; None: the CPUs this process may use.

    Raises:
        DataError: not a folder, no image files, fewer than :data:`MIN_IMAGES`
            readable ones (naming the files skipped), or a folder that cannot be listed.
    """
    require_dir(path, "folder dataset")
    files = list_images(path, recursive=True)
    if not files:
        raise DataError(f"folder dataset {path} holds no PNG or JPEG images (.png, .jpg, .jpeg), "
                        "in it or its sub-folders")
    cache = _cache_path(path, files, size, channels, background) if len(files) >= CACHE_MIN_FILES else None
    got = _read_cache(cache, size, channels) if cache is not None else None
    if got is None:
        got = _decode_folder(path, files, size, channels, background, workers)
        if cache is not None:
            _write_cache(cache, got)
    return got


# --- decoding ------------------------------------------------------------------------


def _resize_crop(im: Any, size: int) -> Any:
    """Resize the short side to ``size`` (bicubic), then center-crop a square."""
    from PIL import Image

    w, h = im.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    im = im.resize((nw, nh), Image.Resampling.BICUBIC)
    left, top = (nw - size) // 2, (nh - size) // 2
    return im.crop((left, top, left + size, top + size))


def _decode_one(path: Path, size: int, channels: int,
                background: tuple[int, int, int]) -> tuple[np.ndarray | None, str | None, bool]:
    """One image as (array, None, upscaled), or (None, why it is skipped, False)."""
    try:
        with open_image(path) as opened:
            im = decode_image(opened, path, "L" if channels == 1 else "RGB", background=background)
    except DataError as e:
        return None, str(e), False
    upscaled = min(im.size) < size
    a = np.asarray(_resize_crop(im, size), dtype=np.uint8)
    return (a[..., None] if channels == 1 else a), None, upscaled


def _decode_chunk(files: list[Path], size: int, channels: int,
                  background: tuple[int, int, int]) -> tuple[np.ndarray, list[int], list[str], int]:
    """Decode ``files`` in order: (readable images stacked, their indices in ``files``, why the others
    were skipped, how many were upscaled). Runs in a worker process, or in this one."""
    arrays, kept, skipped, upscaled = [], [], [], 0
    for i, p in enumerate(files):
        a, why, up = _decode_one(p, size, channels, background)
        if a is None:
            skipped.append(why or f"{p}: unreadable image")
            continue
        arrays.append(a)
        kept.append(i)
        upscaled += up
    x = np.stack(arrays) if arrays else np.zeros((0, size, size, channels), np.uint8)
    return x, kept, skipped, upscaled


def _decode_all(files: list[Path], size: int, channels: int, background: tuple[int, int, int],
                workers: int) -> tuple[np.ndarray, list[int], list[str], int]:
    """:func:`_decode_chunk` over all ``files``, in ``workers`` spawned processes where it pays.

    Processes, not threads: most of an image's time is Python around Pillow's
    decoder (about 180 us per 64x64 PNG here, a fifth of it in the decoder),
    which threads would run one at a time. Spawned, not forked: the caller may
    have TensorFlow's threads running. Starting them costs a fraction of a
    second, so a folder under :data:`PARALLEL_MIN_FILES` is decoded here.
    """
    workers = min(workers, len(files) // 64 or 1)
    if workers < 2 or len(files) < PARALLEL_MIN_FILES or not _can_spawn():
        return _decode_chunk(files, size, channels, background)
    bounds = np.linspace(0, len(files), 4 * workers + 1).astype(int)  # a few chunks per worker balance the load
    chunks = [files[lo:hi] for lo, hi in zip(bounds, bounds[1:])]
    try:
        with _main_hidden(), ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            parts = list(pool.map(_decode_chunk, chunks, *([x] * len(chunks) for x in (size, channels, background))))
    except (OSError, RuntimeError, BrokenProcessPool):  # no processes to be had here (a sandbox, a limit)
        return _decode_chunk(files, size, channels, background)
    kept = [int(lo) + i for lo, part in zip(bounds, parts) for i in part[1]]
    return (np.concatenate([part[0] for part in parts]), kept,
            [why for part in parts for why in part[2]], sum(part[3] for part in parts))


def _decode_folder(root: Path, files: list[Path], size: int, channels: int,
                   background: tuple[int, int, int], workers: int | None) -> FolderImages:
    """Decode ``files`` keeping their order; skip the unreadable with a note; label by sub-folder."""
    x, kept_i, skipped, upscaled = _decode_all(files, size, channels, background, workers or _cpus())
    _require_enough(root, len(files), len(x), skipped)
    kept = [files[i] for i in kept_i]
    classes = sorted({p.parent.relative_to(root).as_posix() for p in kept})
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[p.parent.relative_to(root).as_posix()] for p in kept], dtype=np.int64)
    notes = []
    if skipped:
        notes.append(f"folder dataset {root}: skipped {len(skipped):,} of {len(files):,} image files that "
                     f"could not be read: {_named(skipped)}")
    if upscaled:
        notes.append(f"folder dataset {root}: {upscaled:,} of {len(x):,} images are smaller than "
                     f"{size}x{size} and were upscaled (bicubic), so they are blurrier than the size suggests")
    return FolderImages(x, y, classes, notes)


def _named(skipped: list[str]) -> str:
    """The first :data:`SHOWN` reasons, each naming its file, and how many more there are."""
    more = f"; and {len(skipped) - SHOWN:,} more" if len(skipped) > SHOWN else ""
    return "; ".join(skipped[:SHOWN]) + more


def _require_enough(root: Path, listed: int, readable: int, skipped: list[str]) -> None:
    if readable == 0:
        raise DataError(f"folder dataset {root}: none of its {listed:,} image files could be read: "
                        f"{_named(skipped)}")
    if readable < MIN_IMAGES:
        why = f"; {len(skipped):,} unreadable files skipped: {_named(skipped)}" if skipped else ""
        raise DataError(f"folder dataset {root} holds {readable:,} readable images, fewer than the "
                        f"{MIN_IMAGES} gan-nas needs to train and score a GAN{why}")


def _can_spawn() -> bool:
    """Whether worker processes can start from here: not from a daemonic process (a search's pool
    worker), which may have no children."""
    return not multiprocessing.current_process().daemon


@contextlib.contextmanager
def _main_hidden() -> Iterator[None]:
    """Hide the main program from the worker processes spawned in this block.

    A spawned worker imports its parent's main module again (for what the parent
    defined there) unless it cannot tell which it is. The decoding workers need
    nothing from it, and importing it costs: each worker of a script that
    imports TensorFlow at its top would spend far longer on that import than on
    decoding, and one that loads a dataset at its top, unguarded, would start
    workers from every worker.
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__spec__ = None  # multiprocessing reads it as an attribute: it must exist
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# --- the cache -------------------------------------------------------------------------


def cache_root() -> Path:
    """``$GAN_NAS_CACHE`` or ``~/.cache/gan-nas`` (the folder that the fitness cache uses too)."""
    env = os.environ.get("GAN_NAS_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "gan-nas"


def listing_fingerprint(root: Path, files: list[Path]) -> str:
    """A hash of what a folder holds, from its listing alone: each file's path, size and modification time.

    Stat-only, so it costs milliseconds where hashing the bytes would cost a read
    of the whole folder. A file that cannot be stat'ed counts as such (it fails
    when decoded, naming itself).
    """
    h = hashlib.sha256()
    for p in files:
        try:
            st = p.stat()
            entry = f"{p.relative_to(root).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n"
        except OSError as e:
            entry = f"{p.relative_to(root).as_posix()}\0error {e.errno}\n"
        h.update(entry.encode("utf-8", "surrogateescape"))
    return h.hexdigest()[:20]


def _cache_path(root: Path, files: list[Path], size: int, channels: int, background: tuple[int, int, int]) -> Path:
    key = hashlib.sha256(
        f"{LOADER_VERSION}:{root.resolve()}:{listing_fingerprint(root, files)}:{size}:{channels}:{background}".encode(
            "utf-8", "surrogateescape")
    ).hexdigest()[:20]
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", root.resolve().name).strip("_.")[:40] or "folder"
    return cache_root() / "data" / f"{safe}-{size}x{size}x{channels}-{key}.npz"


def _read_cache(path: Path, size: int, channels: int) -> FolderImages | None:
    """The cached folder, or None where there is none or it is damaged (then it is decoded again)."""
    if not path.is_file():
        return None
    try:
        a = read_npz(path, ("images", "labels", "classes", "notes"))
    except DataError:
        return None
    x, y, classes, notes = a["images"], a["labels"], a["classes"], a["notes"]
    if (x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (size, size, channels) or len(x) < MIN_IMAGES
            or y.shape != (len(x),) or y.dtype != np.int64 or classes.dtype.kind != "U" or notes.dtype.kind != "U"
            or classes.ndim != 1 or y.min() < 0 or y.max() >= len(classes)):
        return None
    return FolderImages(x, y, [str(c) for c in classes], [str(n) for n in notes])


def _write_cache(path: Path, got: FolderImages) -> None:
    """Write atomically (a reader sees the old entry or the new one, never half); a cache that cannot be
    written is no error: the next load decodes again."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, images=got.x, labels=got.y, classes=np.array(got.classes, dtype=str),
                     notes=np.array(got.notes, dtype=str))

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        safe_io.write_atomic(path, write)
    except OSError:
        pass
