"""Image grids and latent interpolation sheets, from generator outputs to PNG files."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np


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


def save_png(image: np.ndarray, path: str | Path, scale: int = 1) -> Path:
    """Write an (H, W, C) uint8 image as PNG, atomically, optionally upscaled by ``scale``."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    a = image[..., 0] if image.shape[-1] == 1 else image
    im = Image.fromarray(a)
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST)
    tmp = path.with_name(path.name + ".tmp")
    im.save(tmp, format="PNG")
    os.replace(tmp, path)
    return path


def noise(n: int, latent: int, seed: int) -> np.ndarray:
    """Fixed latent draws: the same seed gives the same (n, latent) float32 normals."""
    return np.random.default_rng(seed).standard_normal((n, latent)).astype(np.float32)


def sample(generator, n: int, seed: int, batch: int = 500) -> np.ndarray:
    """``n`` uint8 images from a Keras generator, on latent draws fixed by ``seed``."""
    z = noise(n, int(generator.input_shape[-1]), seed)
    out = [np.asarray(generator(z[i:i + batch], training=False), dtype=np.float32) for i in range(0, n, batch)]
    return to_uint8(np.concatenate(out))


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
