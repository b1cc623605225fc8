"""Image grids and latent interpolation sheets, from generator outputs to PNG files, and raw samples to .npz."""

from __future__ import annotations

import math
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from gan_nas import safe_io


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Generator output in [-1, 1] (float) to uint8 in [0, 255]; uint8 passes through."""
    if images.dtype == np.uint8:
        return images
    x = np.nan_to_num(np.asarray(images, dtype=np.float32), nan=-1.0, posinf=1.0, neginf=-1.0)
    return np.clip(np.rint((x + 1.0) * 127.5), 0, 255).astype(np.uint8)


def grid(images: np.ndarray, cols: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile (N, H, W, C) images into one (rows*(H+pad)+pad, cols*(W+pad)+pad, C) uint8 image."""
    x = to_uint8(images)
    n, h, w, c = x.shape
    cols = cols or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), 255, dtype=np.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + q * (w + pad)
        out[top:top + h, left:left + w] = x[i]
    return out


def write_png(image: np.ndarray, f: str | Path | BinaryIO, scale: int = 1) -> None:
    """Write an (H, W, C) uint8 image as PNG to a path or an open binary file, upscaled by ``scale``.

    Not atomic: :func:`save_png` and ``report.generate`` write through a temporary file.
    """
    from PIL import Image

    a = image[..., 0] if image.shape[-1] == 1 else image
    im = Image.fromarray(a)
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST)
    im.save(f, format="PNG")


def save_png(image: np.ndarray, path: str | Path, scale: int = 1) -> Path:
    """Write an (H, W, C) uint8 image as PNG, atomically, optionally upscaled by ``scale``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return safe_io.write_atomic(path, lambda tmp: write_png(image, tmp, scale))


def write_npz(f: str | Path | BinaryIO, shape: tuple[int, ...], batches: Iterable[np.ndarray]) -> int:
    """Write uint8 batches as an ``.npz`` holding one array, ``images`` of ``shape``, a batch at a time.

    ``np.savez`` needs the whole array in memory; this writes the ``.npy``
    header of the final shape first and then each batch's bytes into the zip
    member, so memory holds one batch however many images there are.
    ``np.load(f)["images"]`` reads the result (no pickles).

    Args:
        f: the file to write (a path or an open binary file).
        shape: the shape of the whole array, (N, H, W, C).
        batches: uint8 arrays of shape (k, H, W, C) whose k sum to N.

    Returns:
        How many images were written (N).

    Raises:
        ValueError: a batch of another image shape, or batches that do not add up to N images.
    """
    shape = tuple(int(s) for s in shape)
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False, "shape": shape}
    nbytes = math.prod(shape)
    written = 0
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        # A member written as a stream cannot grow past 2 GiB unless it says so up front.
        with zf.open("images.npy", "w", force_zip64=nbytes > 2**31 - 2**16) as member:
            np.lib.format.write_array_header_1_0(member, header)
            for b in batches:
                b = np.ascontiguousarray(b, dtype=np.uint8)
                if b.shape[1:] != shape[1:] or written + len(b) > shape[0]:
                    raise ValueError(f"batch of shape {b.shape} does not fit an array of shape {shape} "
                                     f"after {written} images")
                member.write(b.data)
                written += len(b)
    if written != shape[0]:
        raise ValueError(f"{written} images written for an array of shape {shape}")
    return written


def noise(n: int, latent: int, seed: int) -> np.ndarray:
    """Fixed latent draws: the same seed gives the same (n, latent) float32 normals."""
    return np.random.default_rng(seed).standard_normal((n, latent)).astype(np.float32)


def sample_batches(generator, n: int, seed: int, batch: int = 500) -> Iterator[np.ndarray]:
    """``n`` uint8 images from a Keras generator, ``batch`` at a time, on the latent draws of ``noise(n, ..., seed)``.

    The draws are taken from one generator in order, which gives exactly
    :func:`noise`'s rows without holding all ``n`` of them.
    """
    latent = int(generator.input_shape[-1])
    rng = np.random.default_rng(seed)
    for i in range(0, n, batch):
        z = rng.standard_normal((min(batch, n - i), latent)).astype(np.float32)
        yield to_uint8(np.asarray(generator(z, training=False), dtype=np.float32))


def sample(generator, n: int, seed: int, batch: int = 500) -> np.ndarray:
    """``n`` uint8 images from a Keras generator, on latent draws fixed by ``seed``."""
    return np.concatenate(list(sample_batches(generator, n, seed, batch)))


def interpolation_sheet(generator, rows: int = 8, steps: int = 10, seed: int = 0) -> np.ndarray:
    """Rows of spherical interpolations between pairs of latent draws, as one uint8 grid."""
    latent = int(generator.input_shape[-1])
    ends = noise(2 * rows, latent, seed).reshape(rows, 2, latent)
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)
    zs = []
    for a, b in ends:
        omega = np.arccos(np.clip(np.dot(a / np.linalg.norm(a), b / np.linalg.norm(b)), -1, 1))
        so = np.sin(omega)
        for s in t:
            if so < 1e-6:
                zs.append((1 - s) * a + s * b)
            else:
                zs.append(np.sin((1 - s) * omega) / so * a + np.sin(s * omega) / so * b)
    z = np.stack(zs).astype(np.float32)
    return grid(np.asarray(generator(z, training=False)), cols=steps)
