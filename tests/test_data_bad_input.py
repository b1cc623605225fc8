"""Bad input to the dataset and sample readers: each is one clear error, never a traceback, a warning or a side effect.

Every case writes its own tiny fixture to ``tmp_path``. Library calls must raise
:class:`DataError` (or :class:`FitnessError` for ``gan-nas fid`` samples) naming
the file and the problem; the CLI cases check exit code 2 with one ``error:``
line on stderr and nothing else.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tarfile
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_data import (
    cifar_batch,
    make_cifar_extracted,
    make_cifar_tar,
    make_mnist_dir,
    write_idx_images,
    write_idx_labels,
)

from gan_nas import cli, data, fitness
from gan_nas.errors import DataError, FitnessError

ROOT = Path(__file__).resolve().parents[1]
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0  # root reads files whatever their mode


@pytest.fixture(autouse=True)
def _no_env(monkeypatch, tmp_path):
    monkeypatch.delenv("GAN_NAS_DATA_DIR", raising=False)
    monkeypatch.setattr(data, "DEBIAN_DATASETS", tmp_path / "debian-none")


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``gan-nas ARGS`` in a fresh process, so that stderr holds exactly what a user would see."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAN_NAS_")}
    env["GAN_NAS_CACHE"] = str(cwd / "cache")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "gan_nas.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def assert_one_error_line(proc: subprocess.CompletedProcess, match: str) -> None:
    import re

    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert re.search(match, lines[0]), lines[0]


# --- CIFAR-10 pickles that run code ---------------------------------------------------


class RunsShell:
    """Unpickling this runs ``touch MARKER`` through os.system."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class RunsExec:
    """Unpickling this writes MARKER through builtins.exec."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


class CallsNdarray:
    """Unpickling this would call numpy.ndarray(shape) directly: a 3 GB allocation from a few bytes."""

    def __reduce__(self):
        return (np.ndarray, ((1_000_000, 3072),))


def evil_batches(marker: Path) -> dict[str, bytes]:
    ok = {b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, 2, 3]}
    return {
        "os.system": pickle.dumps(RunsShell(marker)),
        "exec": pickle.dumps(RunsExec(marker), protocol=2),
        "in labels": pickle.dumps({**ok, b"labels": [0, 1, RunsShell(marker), 3]}),
        "beside data": pickle.dumps({**ok, b"x": RunsExec(marker)}, protocol=0),
    }


@pytest.mark.parametrize("case", ["os.system", "exec", "in labels", "beside data"])
def test_cifar_pickle_that_runs_code_is_refused(tmp_path, case):
    marker = tmp_path / "pwned"
    root = make_cifar_extracted(tmp_path / "c")
    (root / "cifar-10-batches-py" / "data_batch_1").write_bytes(evil_batches(marker)[case])
    with pytest.raises(DataError, match=r"data_batch_1: refused to load (posix\.system|__builtin__\.exec|builtins\.exec) "
                                        r"from the pickle.*not one"):
        data.load("cifar10", str(root))
    assert not marker.exists()


def test_cifar_pickle_that_runs_code_is_refused_in_the_tarball_too(tmp_path):
    marker = tmp_path / "pwned"
    root = tmp_path / "t"
    root.mkdir()
    with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as t:
        for i, b in enumerate(data.CIFAR_TRAIN + data.CIFAR_TEST):
            raw = pickle.dumps(RunsShell(marker)) if b == "test_batch" else cifar_batch(4, i)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{b}")
            info.size = len(raw)
            t.addfile(info, io.BytesIO(raw))
    with pytest.raises(DataError, match=r"cifar-10-python.tar.gz:test_batch: refused to load posix\.system"):
        data.load("cifar10", str(root))
    assert not marker.exists()


def test_cifar_pickle_calling_ndarray_or_a_codec_directly_is_refused(tmp_path):
    root = make_cifar_extracted(tmp_path / "c")
    batch = root / "cifar-10-batches-py" / "data_batch_2"
    batch.write_bytes(pickle.dumps({b"data": CallsNdarray(), b"labels": [0]}))
    with pytest.raises(DataError, match=r"data_batch_2: not a CIFAR-10 python batch \(TypeError"):
        data.load("cifar10", str(root))
    rot13 = b"c_codecs\nencode\n(Vabc\nVrot13\ntR."  # protocol 0: _codecs.encode('abc', 'rot13')
    batch.write_bytes(rot13)
    with pytest.raises(DataError, match=r"data_batch_2: not a CIFAR-10 python batch \(UnpicklingError"):
        data.load("cifar10", str(root))


def test_cli_cifar_pickle_that_runs_code_exits_2_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    root = make_cifar_extracted(tmp_path / "c")
    (root / "cifar-10-batches-py" / "data_batch_1").write_bytes(evil_batches(marker)["os.system"])
    before = files_under(tmp_path)
    proc = run_cli(["data", "--dataset", "cifar10", "--data-dir", str(root)], tmp_path)
    assert_one_error_line(proc, r"data_batch_1: refused to load posix\.system")
    assert not marker.exists() and files_under(tmp_path) == before


# --- CIFAR-10 batches of the wrong make -----------------------------------------------


def n4() -> np.ndarray:
    return np.zeros((4, 3072), np.uint8)


@pytest.mark.parametrize(
    ("batch", "match"),
    [
        ([1, 2, 3], r"not a CIFAR-10 python batch: it holds a list, not a dict"),
        ({b"data": "pixels", b"labels": [0, 1, 2, 3]}, r"data must be a uint8 array \(N, 3072\), got a str"),
        ({b"data": b"\x00" * 3072 * 4, b"labels": [0, 1, 2, 3]}, r"data must be a uint8 array.*got a bytes"),
        ({b"data": n4()}, r"not a CIFAR-10 python batch: it has no 'labels' entry \(found b'data'\)"),
        ({b"labels": [0, 1, 2, 3]}, r"not a CIFAR-10 python batch: it has no 'data' entry \(found b'labels'\)"),
        ({b"data": n4(), b"labels": [0, 1, 2]}, r"4 images but 3 labels"),
        ({b"data": n4().astype(np.float32), b"labels": [0, 1, 2, 3]}, r"data must be a uint8 array \(N, 3072\), got an array of float32"),
        ({b"data": np.zeros((4, 100), np.uint8), b"labels": [0, 1, 2, 3]}, r"data has shape \(4, 100\)"),
        ({b"data": np.zeros((4, 32, 32, 3), np.uint8), b"labels": [0, 1, 2, 3]}, r"data has shape"),
        ({b"data": n4().astype(np.int16) + 300, b"labels": [0, 1, 2, 3]}, r"data must hold pixel values 0\.\.255, found 300\.\.300"),
        ({b"data": n4(), b"labels": [0, 1, 2, 10]}, r"labels must lie in \[0, 10\), found 0\.\.10"),
        ({b"data": n4(), b"labels": [0, 1, -1, 3]}, r"labels must lie in \[0, 10\)"),
        ({b"data": n4(), b"labels": [0, 1, b"cat", 3]}, r"labels must be integers, found a bytes"),
        ({b"data": n4(), b"labels": [0, 1, [2, 3], 3]}, r"labels must be integers, found a list"),
        ({b"data": n4(), b"labels": [0.0, 1.0, float("nan"), 3.0]}, r"labels must be whole numbers, label 2 is nan"),
        ({b"data": n4(), b"labels": "0123"}, r"labels must be integers, got a str"),
        ({b"data": n4(), b"labels": np.array([[0, 1], [2, 3]])}, r"labels must be one integer per image, shape \(4,\), got shape \(2, 2\)"),
    ],
)
def test_cifar_batch_of_the_wrong_make(tmp_path, batch, match):
    root = make_cifar_extracted(tmp_path / "c")
    (root / "cifar-10-batches-py" / "data_batch_4").write_bytes(pickle.dumps(batch))
    with pytest.raises(DataError, match=r"data_batch_4: " + match):
        data.load("cifar10", str(root))


def test_cifar_batch_that_is_a_folder_or_too_big(tmp_path):
    root = make_cifar_extracted(tmp_path / "c")
    batch = root / "cifar-10-batches-py" / "data_batch_5"
    batch.unlink()
    batch.mkdir()
    with pytest.raises(DataError, match=r"data_batch_5: missing CIFAR-10 batch file \(this is not a regular file\)"):
        data.load("cifar10", str(root))
    batch.rmdir()
    with open(batch, "wb") as f:  # sparse: costs no disk
        f.truncate(data.CIFAR_MAX_BATCH_BYTES + 1)
    with pytest.raises(DataError, match=r"data_batch_5: 268,435,457 bytes, more than the 268,435,456"):
        data.load("cifar10", str(root))


def corrupt_middle(path: Path, start: int = 40, length: int = 64) -> None:
    raw = bytearray(path.read_bytes())
    for i in range(start, min(start + length, len(raw) - 8)):
        raw[i] ^= 0x5A
    path.write_bytes(bytes(raw))


def test_cifar_tarball_corrupt_deflate_stream(tmp_path):
    root = make_cifar_tar(tmp_path / "t", n=40)
    corrupt_middle(root / "cifar-10-python.tar.gz", start=200, length=400)
    with pytest.raises(DataError, match=r"cifar-10-python.tar.gz: cannot read the tarball \(.+\); it is corrupt"):
        data.load("cifar10", str(root))


def test_cifar_tarball_not_gzip_or_empty(tmp_path):
    root = tmp_path / "t"
    root.mkdir()
    tar = root / "cifar-10-python.tar.gz"
    for raw in (b"not a tarball at all", b""):
        tar.write_bytes(raw)
        with pytest.raises(DataError, match=r"cifar-10-python.tar.gz: cannot read the tarball"):
            data.load("cifar10", str(root))


def test_cifar_tarball_with_a_link_or_a_missing_member(tmp_path):
    root = tmp_path / "t"
    root.mkdir()
    with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as t:
        for i, b in enumerate(data.CIFAR_TRAIN):
            raw = cifar_batch(4, i)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{b}")
            info.size = len(raw)
            t.addfile(info, io.BytesIO(raw))
        link = tarfile.TarInfo("cifar-10-batches-py/test_batch")
        link.type, link.linkname = tarfile.SYMTYPE, "test_batch"  # points at itself
        t.addfile(link)
    with pytest.raises(DataError, match=r"cifar-10-batches-py/test_batch is not a regular file in the archive"):
        data.load("cifar10", str(root))
    make_cifar_tar(tmp_path / "m")
    with tarfile.open(tmp_path / "m" / "cifar-10-python.tar.gz") as t:
        members = [(m, t.extractfile(m).read()) for m in t.getmembers() if not m.name.endswith("test_batch")]
    with tarfile.open(tmp_path / "m" / "cifar-10-python.tar.gz", "w:gz") as t:
        for m, raw in members:
            t.addfile(m, io.BytesIO(raw))
    with pytest.raises(DataError, match=r"cifar-10-python.tar.gz: has no cifar-10-batches-py/test_batch"):
        data.load("cifar10", str(tmp_path / "m"))


# --- MNIST-family IDX files -----------------------------------------------------------


def test_idx_corrupt_deflate_stream(tmp_path):
    root = make_mnist_dir(tmp_path / "m")
    corrupt_middle(root / "train-images-idx3-ubyte.gz", start=60, length=200)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: cannot read gzip data \(.+\); the file is corrupt"):
        data.load("mnist", str(root))


def test_idx_not_gzip_at_all(tmp_path):
    root = make_mnist_dir(tmp_path / "m")
    (root / "t10k-labels-idx1-ubyte.gz").write_bytes(b"plain text, not gzip")
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz: cannot read gzip data \(Not a gzipped file"):
        data.load("mnist", str(root))


def test_idx_header_that_promises_too_much(tmp_path):
    root = make_mnist_dir(tmp_path / "m")
    with gzip.open(root / "train-images-idx3-ubyte.gz", "wb") as f:  # 4 billion images in 16 bytes
        f.write(struct.pack(">IIII", 2051, 0xFFFFFFFF, 28, 28))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: its header promises [0-9,]+ bytes, more than the 1,073,741,824"):
        data.load("mnist", str(root))


def test_idx_longer_than_its_header(tmp_path):
    root = make_mnist_dir(tmp_path / "m")
    with gzip.open(root / "train-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">II", 2049, 50) + bytes(60))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte.gz: wrong length: more than the 58 bytes"):
        data.load("mnist", str(root))


def test_idx_labels_out_of_range(tmp_path):
    root = make_mnist_dir(tmp_path / "m")
    with gzip.open(root / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">II", 2049, 20) + bytes([3] * 19 + [200]))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz: labels must lie in \[0, 10\), found 3\.\.200"):
        data.load("mnist", str(root))


def test_idx_images_not_28x28(tmp_path):
    root = make_mnist_dir(tmp_path / "m")
    write_idx_images(root / "train-images-idx3-ubyte.gz", np.zeros((50, 0, 28), np.uint8))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: images are not 28x28"):
        data.load("mnist", str(root))


@pytest.mark.parametrize("split", ["train", "t10k"])
def test_idx_files_without_images(tmp_path, split):
    root = make_mnist_dir(tmp_path / "m")
    write_idx_images(root / f"{split}-images-idx3-ubyte.gz", np.zeros((0, 28, 28), np.uint8))
    write_idx_labels(root / f"{split}-labels-idx1-ubyte.gz", np.zeros(0, np.uint8))
    with pytest.raises(DataError, match=rf"{split}-images-idx3-ubyte.gz: needs at least 2 images, found 0"):
        data.load("mnist", str(root))


def test_data_dir_that_is_missing_a_file_or_a_folder(tmp_path):
    root = make_mnist_dir(tmp_path / "m")
    with pytest.raises(DataError, match=r"--data-dir .*m/train-images-idx3-ubyte.gz is not a directory"):
        data.load("mnist", str(root / "train-images-idx3-ubyte.gz"))
    with pytest.raises(DataError, match=r"--data-dir .*nowhere does not exist"):
        data.load("mnist", str(tmp_path / "nowhere"))
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(DataError, match=r"--data-dir .*loop: Too many levels of symbolic links"):
        data.load("mnist", str(tmp_path / "loop"))
    (root / "t10k-images-idx3-ubyte.gz").unlink()
    (root / "t10k-images-idx3-ubyte.gz").mkdir()  # a folder where a file belongs
    with pytest.raises(DataError, match=r"--data-dir .*m does not hold mnist: .*\(missing: t10k-images-idx3-ubyte.gz\)"):
        data.load("mnist", str(root))


@pytest.mark.skipif(AS_ROOT, reason="root reads files whatever their mode")
def test_unreadable_idx_file(tmp_path):
    root = make_mnist_dir(tmp_path / "m")
    (root / "train-images-idx3-ubyte.gz").chmod(0)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: cannot open \(Permission denied\)"):
        data.load("mnist", str(root))


# --- npz datasets ---------------------------------------------------------------------


def imgs(n: int = 6, h: int = 8, w: int = 8, c: int = 1) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, h, w, c)).astype(np.uint8)


def save_npz(tmp_path: Path, name: str = "d.npz", **arrays) -> Path:
    np.savez(tmp_path / name, **arrays)
    return tmp_path / name


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ({"images": imgs(), "labels": np.array(["a", "b", "a", "b", "a", "b"])},
         r"labels must be integers, got dtype <U1"),
        ({"images": imgs(), "labels": np.int64(3)}, r"labels must be one integer per image, shape \(6,\), got shape \(\)"),
        ({"images": imgs(), "labels": np.array([0, 1, None, 1, 0, 1], dtype=object)},
         r"array 'labels': holds Python objects \(dtype object\); .*never unpickles"),
        ({"images": np.array([imgs()[0]] * 3 + [None], dtype=object)}, r"array 'images': holds Python objects"),
        ({"images": imgs(), "labels": np.arange(5)}, r"6 images but 5 labels"),
        ({"images": imgs(n=0)}, r"needs at least 2 images, found 0"),
        ({"images": imgs(h=0)}, r"images are 0x8; gan-nas needs at least 4x4"),
        ({"images": imgs(h=3, w=3)}, r"images are 3x3; gan-nas needs at least 4x4"),
        ({"images": imgs(), "labels": np.array([0, 1, np.nan, 1, 0, 1])}, r"whole numbers, label 2 is nan"),
        ({"images": imgs(), "labels": np.array([0, 1, np.inf, 1, 0, 1])}, r"whole numbers, label 2 is inf"),
        ({"images": imgs(), "labels": np.array([0, 1, 1.5, 1, 0, 1])}, r"whole numbers, label 2 is 1\.5"),
        ({"images": imgs(), "labels": np.array([0, 1, -1, 1, 0, 1])}, r"labels must lie in \[0, 10000\), found -1\.\.1"),
        ({"images": imgs(), "labels": np.array([0, 1, 10**9, 1, 0, 1])}, r"labels must lie in \[0, 10000\)"),
        ({"images": imgs(), "labels": np.ones(6, np.complex64)}, r"labels must be integers, got dtype complex64"),
        ({"images": imgs().astype(np.float32)}, r"images must be uint8, got float32"),
        ({"images": imgs()[..., 0]}, r"images must have shape \(N, H, W, C\) with C 1 or 3, got \(6, 8, 8\)"),
        ({"images": imgs(c=2)}, r"with C 1 or 3, got \(6, 8, 8, 2\)"),
        ({"pictures": imgs()}, r"has no 'images' array \(found: pictures\)"),
    ],
)
def test_bad_npz_dataset(tmp_path, arrays, match):
    path = save_npz(tmp_path, **arrays)
    with pytest.raises(DataError, match=r"d\.npz: .*" + match):
        data.load(f"npz:{path}")


def test_npz_labels_that_are_whole_floats_or_a_column_load(tmp_path):
    for labels in (np.array([0.0, 1, 2, 0, 1, 2]), np.array([[0], [1], [2], [0], [1], [2]])):
        ds = data.load(f"npz:{save_npz(tmp_path, images=imgs(), labels=labels)}")
        assert ds.y_train.dtype == np.int64 and ds.y_train.ndim == 1 and ds.spec.classes == 3


def test_npz_that_is_no_npz(tmp_path):
    np.save(tmp_path / "a.npy", imgs())
    (tmp_path / "a.npy").rename(tmp_path / "renamed.npz")
    with pytest.raises(DataError, match=r"renamed.npz: is a \.npy array, not an \.npz archive; save with np\.savez"):
        data.load(f"npz:{tmp_path / 'renamed.npz'}")
    marker = tmp_path / "pwned"
    (tmp_path / "pickle.npz").write_bytes(pickle.dumps(RunsShell(marker)))
    with pytest.raises(DataError, match=r"pickle.npz: is a pickle, not an \.npz archive; gan-nas never unpickles"):
        data.load(f"npz:{tmp_path / 'pickle.npz'}")
    assert not marker.exists()
    for name, raw in (("text.npz", b"hello, world"), ("empty.npz", b"")):
        (tmp_path / name).write_bytes(raw)
        with pytest.raises(DataError, match=name + r": not a readable .npz file \(it is not a zip archive\)"):
            data.load(f"npz:{tmp_path / name}")
    path = save_npz(tmp_path, "cut.npz", images=imgs(n=50))
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(DataError, match=r"cut.npz: not a readable .npz file"):
        data.load(f"npz:{path}")


def test_npz_with_a_corrupt_member(tmp_path):
    np.savez_compressed(tmp_path / "z.npz", images=imgs(n=40, h=16, w=16))
    corrupt_middle(tmp_path / "z.npz", start=200, length=300)
    with pytest.raises(DataError, match=r"z.npz: array 'images': not a readable .npz member"):
        data.load(f"npz:{tmp_path / 'z.npz'}")


def lying_npz(path: Path, shape: tuple[int, ...]) -> Path:
    """An .npz whose images header promises ``shape`` but which stores a few bytes."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|u1", "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("images.npy", buf.getvalue() + bytes(64))
    return path


def test_npz_whose_header_promises_more_than_it_holds(tmp_path):
    path = lying_npz(tmp_path / "bomb.npz", (10**9, 64, 64, 3))
    with pytest.raises(DataError, match=r"bomb.npz: array 'images': truncated: its header promises "
                                        r"12,288,000,000,000 bytes of data, the archive holds 192"):
        data.load(f"npz:{path}")


def test_npz_bigger_than_memory(tmp_path, monkeypatch):
    path = save_npz(tmp_path, images=imgs(n=64, h=32, w=32))
    monkeypatch.setattr(data, "_memory_bytes", lambda: 4096)
    with pytest.raises(DataError, match=r"d.npz: array 'images': needs 0\.0 GiB, more than this machine's"):
        data.load(f"npz:{path}")


def test_npz_path_that_is_a_folder_missing_or_a_loop(tmp_path):
    (tmp_path / "dir.npz").mkdir()
    with pytest.raises(DataError, match=r"npz dataset .*dir.npz is a directory, not a file"):
        data.load(f"npz:{tmp_path / 'dir.npz'}")
    with pytest.raises(DataError, match=r"npz dataset .*missing.npz does not exist"):
        data.load(f"npz:{tmp_path / 'missing.npz'}")
    (tmp_path / "loop.npz").symlink_to(tmp_path / "loop.npz")
    with pytest.raises(DataError, match=r"loop.npz: Too many levels of symbolic links"):
        data.load(f"npz:{tmp_path / 'loop.npz'}")


@pytest.mark.skipif(AS_ROOT, reason="root reads files whatever their mode")
def test_unreadable_npz(tmp_path):
    path = save_npz(tmp_path, images=imgs())
    path.chmod(0)
    with pytest.raises(DataError, match=r"d.npz: cannot open \(Permission denied\)"):
        data.load(f"npz:{path}")


# --- folder datasets ------------------------------------------------------------------


def png_header(path: Path, width: int, height: int) -> Path:
    """A PNG that declares ``width`` x ``height`` pixels in a few bytes: Pillow reads the size without decoding."""

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def folder_with(tmp_path: Path, *bad: tuple[str, bytes | None], good: int = 2) -> Path:
    """A folder of ``good`` good PNGs in class ``a`` plus ``bad`` files (name, bytes) in class ``b``.

    Two good ones (the default) are too few to load (a folder needs 64 readable images), so a
    bad file's problem ends in the error; with 64, it is skipped with a warning instead.
    """
    root = tmp_path / "imgs"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    for i in range(good):
        Image.fromarray(np.full((8, 8), 4 * i, np.uint8)).save(root / "a" / f"{i}.png")
    for name, raw in bad:
        if raw is not None:
            (root / "b" / name).write_bytes(raw)
    return root


# 8200x8200 is above gan-nas's bound only; 10000x10000 also makes Pillow warn, 20000x20000 makes it raise.
BOMBS = [(8200, 8200, r"image is 8200x8200 = 67,240,000 pixels, more than the 67,108,864 \(8192x8192\)"),
         (10000, 10000, r"image has 100,000,000 pixels, more than the 67,108,864 \(8192x8192\) gan-nas reads$"),
         (20000, 20000, r"image has 400,000,000 pixels, more than the 67,108,864 \(8192x8192\) gan-nas reads$")]


@pytest.mark.parametrize(("w", "h", "match"), BOMBS)
def test_folder_decompression_bomb(tmp_path, w, h, match):
    root = folder_with(tmp_path)
    png_header(root / "b" / "bomb.png", w, h)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # DecompressionBombWarning must not escape either
        with pytest.raises(DataError, match=r"b/bomb.png: " + match):
            data.load(f"folder:{root}")


def test_cli_folder_decompression_bomb_prints_one_line(tmp_path):
    root = folder_with(tmp_path)
    png_header(root / "b" / "bomb.png", 10000, 10000)
    proc = run_cli(["data", "--dataset", f"folder:{root}"], tmp_path)
    assert_one_error_line(proc, r"bomb.png: image has 100,000,000 pixels, more than the 67,108,864")


def png_bytes(size: int = 32, mode: str = "RGB") -> bytes:
    arr = np.random.default_rng(1).integers(0, 256, (size, size, 3)).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).convert(mode).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("name", "raw", "match"),
    [
        ("cut.png", png_bytes()[:-600], r"b/cut.png: unreadable image \(.+\)"),
        ("empty.png", b"", r"b/empty.png: unreadable image \(not a PNG or JPEG file\)"),
        ("eps.png", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n",
         r"b/eps.png: unreadable image \(not a PNG or JPEG file\)"),
        ("gif.jpg", b"GIF89a\x08\x00\x08\x00\x00\x00\x00;", r"b/gif.jpg: unreadable image \(not a PNG or JPEG file\)"),
    ],
)
def test_folder_image_truncated_empty_or_not_png(tmp_path, name, raw, match):
    root = folder_with(tmp_path, (name, raw))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataError, match=match):
            data.load(f"folder:{root}")


def test_folder_with_a_symlink_loop_or_a_broken_link(tmp_path):
    root = folder_with(tmp_path)
    (root / "b" / "loop.png").symlink_to(root / "b" / "loop.png")
    with pytest.raises(DataError, match=r"b/loop.png: unreadable image \(Too many levels of symbolic links\)"):
        data.load(f"folder:{root}")
    (root / "b" / "loop.png").unlink()
    (root / "b" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    with pytest.raises(DataError, match=r"b/gone.png: unreadable image \(No such file or directory\)"):
        data.load(f"folder:{root}")


def test_folder_with_a_folder_link_loop_loads_each_image_once(tmp_path):
    root = folder_with(tmp_path, good=64)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "b" / "0.png")
    (root / "b" / "up").symlink_to(root)  # not entered: no recursion, no duplicates
    ds = data.load(f"folder:{root}", image_size=8)
    assert len(ds.x_train) + len(ds.x_val) + len(ds.x_test) == 65 and ds.spec.classes == 2


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: p, r"folder dataset .*nothing does not exist"),
        (lambda p: (p.write_bytes(b"x"), p)[1], r"folder dataset .*nothing is not a directory"),
        (lambda p: (p.mkdir(), p)[1], r"folder dataset .*nothing holds no PNG or JPEG images"),
        (lambda p: (p.mkdir(), (p / "notes.txt").write_text("x"), (p / "sub.png").mkdir(), p)[-1],
         r"holds no PNG or JPEG images \(\.png, \.jpg, \.jpeg\), in it or its sub-folders"),
        (lambda p: (p.symlink_to(p), p)[1], r"folder dataset .*nothing: Too many levels of symbolic links"),
    ],
)
def test_folder_path_missing_a_file_empty_or_a_loop(tmp_path, make, match):
    with pytest.raises(DataError, match=match):
        data.load(f"folder:{make(tmp_path / 'nothing')}")


@pytest.mark.skipif(AS_ROOT, reason="root reads files whatever their mode")
def test_folder_with_an_unreadable_image_or_sub_folder(tmp_path):
    root = folder_with(tmp_path, ("locked.png", png_bytes()))
    (root / "b" / "locked.png").chmod(0)
    with pytest.raises(DataError, match=r"b/locked.png: unreadable image \(Permission denied\)"):
        data.load(f"folder:{root}")
    (root / "b" / "locked.png").chmod(0o644)
    (root / "b").chmod(0)
    try:
        with pytest.raises(DataError, match=r"imgs/b: cannot list the folder \(Permission denied\)"):
            data.load(f"folder:{root}")
    finally:
        (root / "b").chmod(0o755)


@pytest.mark.parametrize("size", [0, -3, 3, 1025, 100_000, 2.5, True])
def test_image_size_out_of_range(tmp_path, size):
    root = folder_with(tmp_path)
    with pytest.raises(DataError, match=r"image size must be a whole number of pixels from 4 to 1024 "
                                        r"\(--image-size, data.image_size\), got " + str(size)):
        data.load(f"folder:{root}", image_size=size)


def test_channels_out_of_range(tmp_path):
    with pytest.raises(DataError, match=r"channels must be 1 \(grayscale\) or 3 \(RGB\).*got 2"):
        data.load(f"folder:{folder_with(tmp_path)}", channels=2)


@pytest.mark.parametrize("size", ["0", "-3", "5000"])
def test_cli_image_size_out_of_range(tmp_path, size, capsys):
    root = folder_with(tmp_path)
    assert cli.main(["data", "--dataset", f"folder:{root}", "--image-size", size]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: image size must be") and "4 to 1024" in err[0]


def palette_png(path: Path, transparency: bytes | int) -> Path:
    im = Image.new("P", (8, 8))
    im.putpalette([(37 * i) % 256 for i in range(768)])
    im.putdata([i % 5 for i in range(64)])
    im.save(path, transparency=transparency)
    return path


@pytest.mark.parametrize("channels", [1, 3])
def test_palette_png_with_transparency_loads_without_a_warning(tmp_path, channels):
    root = tmp_path / "pal"
    root.mkdir()
    paths = [palette_png(root / "bytes.png", bytes([0, 128, 255, 255, 64])), palette_png(root / "index.png", 2)]
    for i in range(62):  # a folder needs 64 readable images
        shutil.copy(paths[i % 2], root / f"copy{i}.png")
    with Image.open(paths[0]) as im:
        assert isinstance(im.info["transparency"], bytes)  # the case Pillow warns about
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = data.load(f"folder:{root}", image_size=8, channels=channels)
    mode = "L" if channels == 1 else "RGB"
    expected = []
    for p in paths:  # alpha composited onto white, then converted
        with Image.open(p) as im:
            rgba = im.convert("RGBA")
        expected.append(np.asarray(Image.alpha_composite(Image.new("RGBA", (8, 8), "white"), rgba).convert(mode)))
    got = {a.tobytes() for a in np.concatenate([ds.x_train, ds.x_test])}
    assert got == {a.reshape(8, 8, channels).tobytes() for a in expected}


# --- gan-nas fid samples --------------------------------------------------------------


SHAPE = (28, 28, 1)


def sample_folder(tmp_path: Path, n: int = 2) -> Path:
    folder = tmp_path / "samples"
    folder.mkdir()
    for i in range(n):
        Image.new("L", (28, 28), 10 * i).save(folder / f"{i}.png")
    return folder


@pytest.mark.parametrize(("w", "h", "match"), BOMBS)
def test_samples_decompression_bomb(tmp_path, w, h, match):
    folder = sample_folder(tmp_path)
    png_header(folder / "bomb.png", w, h)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(FitnessError, match=r"samples/bomb.png: " + match):
            fitness.read_samples(folder, SHAPE)


def test_samples_image_too_big_for_the_dataset_is_refused_before_decoding(tmp_path):
    folder = sample_folder(tmp_path)
    png_header(folder / "big.png", 4000, 4000)  # its pixel data is garbage: decoding it would fail otherwise
    with pytest.raises(FitnessError, match=r"big.png: image is 4000x4000, the dataset needs 28x28"):
        fitness.read_samples(folder, SHAPE)


@pytest.mark.parametrize(
    ("name", "raw", "match"),
    [
        ("cut.png", png_bytes(28, "L")[:-200], r"cut.png: unreadable image \(.+\)"),
        ("eps.png", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\n", r"eps.png: unreadable image \(not a PNG"),
    ],
)
def test_samples_truncated_or_not_png(tmp_path, name, raw, match):
    folder = sample_folder(tmp_path)
    (folder / name).write_bytes(raw)
    with pytest.raises(FitnessError, match=match):
        fitness.read_samples(folder, SHAPE)


def test_samples_npz_that_is_no_npz_or_holds_objects(tmp_path):
    images = np.zeros((3, 28, 28, 1), np.uint8)
    np.savez(tmp_path / "o.npz", images=np.array(list(images[:2]) + [None], dtype=object))
    with pytest.raises(FitnessError, match=r"o.npz: array 'images': holds Python objects"):
        fitness.read_samples(tmp_path / "o.npz", SHAPE)
    np.save(tmp_path / "x.npy", images)
    (tmp_path / "x.npy").rename(tmp_path / "x.npz")
    with pytest.raises(FitnessError, match=r"x.npz: is a \.npy array, not an \.npz archive"):
        fitness.read_samples(tmp_path / "x.npz", SHAPE)
    lying_npz(tmp_path / "bomb.npz", (10**9, 28, 28, 1))
    with pytest.raises(FitnessError, match=r"bomb.npz: array 'images': truncated"):
        fitness.read_samples(tmp_path / "bomb.npz", SHAPE)


def test_samples_path_that_is_a_loop_or_missing(tmp_path):
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(FitnessError, match=r"samples path .*loop: Too many levels of symbolic links"):
        fitness.read_samples(tmp_path / "loop", SHAPE)
    with pytest.raises(FitnessError, match=r"samples path .*gone does not exist"):
        fitness.read_samples(tmp_path / "gone", SHAPE)
    folder = sample_folder(tmp_path)
    (folder / "2.png").symlink_to(folder / "2.png")
    with pytest.raises(FitnessError, match=r"2.png: unreadable image \(Too many levels of symbolic links\)"):
        fitness.read_samples(folder, SHAPE)


@pytest.mark.skipif(AS_ROOT, reason="root reads files whatever their mode")
def test_samples_folder_unreadable(tmp_path):
    folder = sample_folder(tmp_path)
    folder.chmod(0)
    try:
        with pytest.raises(FitnessError, match=r"samples: cannot list the folder \(Permission denied\)|"
                                               r"samples path .*: Permission denied"):
            fitness.read_samples(folder, SHAPE)
    finally:
        folder.chmod(0o755)


def test_cli_fid_decompression_bomb_prints_one_line_and_creates_nothing(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (24, 28, 28, 1)).astype(np.uint8)
    np.savez(tmp_path / "ds.npz", images=x, labels=np.arange(24) % 2)
    folder = sample_folder(tmp_path)
    png_header(folder / "bomb.png", 20000, 20000)
    before = files_under(tmp_path)
    proc = run_cli(["fid", "--dataset", f"npz:{tmp_path / 'ds.npz'}", "--samples", str(folder)], tmp_path)
    assert_one_error_line(proc, r"samples/bomb.png: image has 400,000,000 pixels, more than the 67,108,864")
    assert files_under(tmp_path) == before  # no classifier cache, no output


# --- files that are not regular files: read whole, /dev/zero never ends and a FIFO never answers -----------


def test_npz_dataset_or_samples_that_are_a_device_or_a_fifo(tmp_path):
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    for path, kind in (("/dev/zero", "a device"), (fifo, r"a FIFO \(named pipe\)")):
        with pytest.raises(DataError, match=rf"cannot open \({kind}, not a regular file\)"):
            data.load(f"npz:{path}")
        with pytest.raises(FitnessError, match=rf"cannot open \({kind}, not a regular file\)"):
            fitness.read_samples(path, (8, 8, 1))


def test_idx_file_that_is_a_fifo(tmp_path):
    d = make_mnist_dir(tmp_path / "mnist")
    target = d / "train-images-idx3-ubyte.gz"
    target.unlink()
    os.mkfifo(target)
    with pytest.raises(DataError, match=r"expected the four MNIST IDX .gz files there \(missing: train-images"):
        data.load("mnist", d)  # refused, not opened: opening it would wait for a writer forever


def test_folder_with_a_fifo_among_its_images_skips_it_and_says_so(tmp_path):
    root = folder_with(tmp_path)
    os.mkfifo(root / "b" / "pipe.png")
    with pytest.raises(DataError, match=r"b/pipe.png: unreadable image \(a FIFO \(named pipe\), not a regular file"):
        data.load(f"folder:{root}")


@pytest.mark.parametrize("name", ["folder:", "npz:"])
def test_dataset_kind_without_a_path_never_reads_the_current_folder(name):
    with pytest.raises(DataError, match=rf"dataset '{name}' names no path; use {name}PATH"):
        data.load(name)


def test_cli_usage_errors_are_one_error_line_and_exit_2(tmp_path):
    for args, match in ((["generate", "run", "--out", "g.png", "--n", "abc"], r"argument --n: invalid int value"),
                        (["frob"], r"invalid choice: 'frob'"),
                        (["search", "--bogus"], r"unrecognized arguments: --bogus")):
        proc = run_cli(args, tmp_path)
        assert_one_error_line(proc, match)


@pytest.mark.parametrize("budget, match", [
    ({"seconds": float("inf")}, r"--seconds must be positive and at most 31,536,000 \(a year\), got inf"),
    ({"seconds": float("nan")}, r"--seconds must be positive and at most"),
    ({"steps": 10**40}, r"--steps must be from 1 to 2\*\*53, got a larger number"),
])
def test_baseline_budget_out_of_range_creates_nothing(tmp_path, budget, match):
    from gan_nas import baseline_run
    from gan_nas.errors import GanNasError

    with pytest.raises(GanNasError, match=match):
        baseline_run.train_baseline(None, tmp_path / "b", **budget)
    assert not (tmp_path / "b").exists()


def test_npz_images_larger_than_gan_nas_takes(tmp_path):
    path = save_npz(tmp_path, images=imgs(n=2, h=1030, w=8))
    with pytest.raises(DataError, match=r"images are 1030x8; gan-nas takes at most 1024x1024"):
        data.load(f"npz:{path}")


def test_a_many_line_message_is_one_error_line(tmp_path, capsys):
    # numpy refuses a header over 10,000 bytes with a message of three lines
    buf = io.BytesIO()
    header = {"descr": "|u1", "fortran_order": False, "shape": (2, 8, 8, 1), "pad": "x" * 20_000}
    np.lib.format.write_array_header_2_0(buf, header)
    with zipfile.ZipFile(tmp_path / "h.npz", "w") as z:
        z.writestr("images.npy", buf.getvalue() + bytes(128))
    assert cli.main(["data", "--dataset", f"npz:{tmp_path / 'h.npz'}"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ") and "h.npz" in err, err
