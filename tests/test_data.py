"""Dataset loaders on fixtures the tests write, every bad input, and the CLI's exit codes."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gan_nas import cli, data
from gan_nas.errors import DataError

SHARED_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


def write_idx_images(path: Path, images: np.ndarray, magic: int = 2051) -> None:
    n, r, c = images.shape
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">IIII", magic, n, r, c) + images.astype(np.uint8).tobytes())


def write_idx_labels(path: Path, labels: np.ndarray, magic: int = 2049) -> None:
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">II", magic, len(labels)) + labels.astype(np.uint8).tobytes())


def make_mnist_dir(root: Path, n_train: int = 50, n_test: int = 20) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    write_idx_images(root / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (n_train, 28, 28)))
    write_idx_labels(root / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, n_train))
    write_idx_images(root / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (n_test, 28, 28)))
    write_idx_labels(root / "t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, n_test))
    return root


def cifar_batch(n: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    d = {b"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8), b"labels": list(rng.integers(0, 10, n))}
    return pickle.dumps(d)


def make_cifar_extracted(root: Path, n: int = 4) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i, b in enumerate(data.CIFAR_TRAIN + data.CIFAR_TEST):
        (folder / b).write_bytes(cifar_batch(n, i))
    return root


def make_cifar_tar(root: Path, n: int = 4) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as t:
        for i, b in enumerate(data.CIFAR_TRAIN + data.CIFAR_TEST):
            raw = cifar_batch(n, i)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{b}")
            info.size = len(raw)
            t.addfile(info, io.BytesIO(raw))
    return root


@pytest.fixture(autouse=True)
def _no_env(monkeypatch, tmp_path):
    monkeypatch.delenv("GAN_NAS_DATA_DIR", raising=False)
    monkeypatch.setattr(data, "DEBIAN_DATASETS", tmp_path / "debian-none")


def test_mnist_from_data_dir(tmp_path):
    root = make_mnist_dir(tmp_path / "m")
    ds = data.load("mnist", str(root))
    # 50 train images: a fifth (fewer than the test split's 20) is held out as the validation split
    assert ds.x_train.shape == (40, 28, 28, 1) and ds.x_train.dtype == np.uint8
    assert ds.x_val.shape == (10, 28, 28, 1) and ds.y_val.dtype == np.int64
    assert ds.x_test.shape == (20, 28, 28, 1) and ds.y_test.dtype == np.int64
    assert ds.spec == data.DatasetSpec("mnist", (28, 28, 1), 10)
    assert ds.source == str(root)


def test_env_dir_then_debian_dir(tmp_path, monkeypatch):
    make_mnist_dir(tmp_path / "env" / "fashion-mnist")
    monkeypatch.setenv("GAN_NAS_DATA_DIR", str(tmp_path / "env"))
    assert data.load("fashion_mnist").source == str(tmp_path / "env" / "fashion-mnist")
    monkeypatch.delenv("GAN_NAS_DATA_DIR")
    deb = tmp_path / "deb"
    make_mnist_dir(deb / "fashion-mnist")
    monkeypatch.setattr(data, "DEBIAN_DATASETS", deb)
    assert data.load("fashion_mnist").source == str(deb / "fashion-mnist")


def test_cifar_extracted_and_tarball(tmp_path):
    a = data.load("cifar10", str(make_cifar_extracted(tmp_path / "a")))
    b = data.load("cifar10", str(make_cifar_tar(tmp_path / "b")))
    for ds in (a, b):
        assert ds.x_train.shape == (16, 32, 32, 3) and ds.x_test.shape == (4, 32, 32, 3)  # validation: 4 of 20
        assert ds.spec.shape == (32, 32, 3)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    # channel layout: CIFAR stores planes R, G, B; pixel (0, 0) of image 0
    raw = pickle.loads(cifar_batch(4, 0))[b"data"][0]
    np.testing.assert_array_equal(a.x_train[0, 0, 0], [raw[0], raw[1024], raw[2048]])


class Py2Pickler(pickle._Pickler):
    """Pickles str and bytes as Python 2's str (BINSTRING), as the distributed CIFAR-10 batches hold them."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj: str | bytes) -> None:
        raw = obj.encode("latin-1") if isinstance(obj, str) else obj
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[str] = save_py2_str
    dispatch[bytes] = save_py2_str


def py2_batch(d: dict) -> bytes:
    """``d`` pickled as Python 2 with numpy 1 wrote the batches: protocol 2, str as bytes, numpy.core names."""
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(d)
    return buf.getvalue().replace(b"numpy._core.", b"numpy.core.")


@pytest.mark.parametrize("how", ["py2", "0", "1", "2", "3", "4", "5", "int labels", "array labels"])
def test_cifar_batches_pickled_every_way_load_alike(tmp_path, how):
    """The restricted unpickler takes every way a batch is written: Python 2's files, any protocol, numpy 1 or 2."""
    root = make_cifar_extracted(tmp_path / "ref")
    folder = tmp_path / "c" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for b in data.CIFAR_TRAIN + data.CIFAR_TEST:
        d = pickle.loads((root / "cifar-10-batches-py" / b).read_bytes())
        d[b"batch_label"], d[b"filenames"] = b"training batch 1 of 5", [b"img_%d.png" % i for i in range(4)]
        if how == "int labels":
            d[b"labels"] = [int(v) for v in d[b"labels"]]
        elif how == "array labels":
            d[b"labels"] = np.asarray(d[b"labels"], dtype=np.int64)
        raw = py2_batch(d) if how == "py2" else pickle.dumps(d, protocol=int(how) if how.isdigit() else None)
        (folder / b).write_bytes(raw)
    ref, got = data.load("cifar10", str(root)), data.load("cifar10", str(tmp_path / "c"))
    assert got.fingerprint == ref.fingerprint
    if how == "py2":
        assert b"numpy.core.multiarray\n_reconstruct" in (folder / "test_batch").read_bytes()


def test_folder_mixed_sizes_resized_and_cropped(tmp_path):
    rng = np.random.default_rng(1)
    for cls, sizes in {"cats": [(40, 30), (28, 28), (64, 100)], "dogs": [(10, 12), (50, 50), (33, 29)]}.items():
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i, (w, h) in enumerate(sizes * 11):  # 66 images: a folder needs 64 readable ones
            arr = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
            Image.fromarray(arr).save(tmp_path / "imgs" / cls / f"{i}.{'png' if i % 2 else 'jpg'}")
    ds = data.load(f"folder:{tmp_path / 'imgs'}", image_size=16, channels=3)
    assert ds.x_train.shape[1:] == (16, 16, 3)
    assert len(ds.x_train) + len(ds.x_val) + len(ds.x_test) == 66
    assert ds.spec.classes == 2
    assert ds.notes == ("folder dataset " + str(tmp_path / "imgs") + ": 11 of 66 images are smaller than 16x16 "
                        "and were upscaled (bicubic), so they are blurrier than the size suggests",)
    gray = data.load(f"folder:{tmp_path / 'imgs'}", image_size=8, channels=1)
    assert gray.x_test.shape[1:] == (8, 8, 1)


def test_npz(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (12, 8, 8, 3)).astype(np.uint8)
    np.savez(tmp_path / "d.npz", images=x)
    ds = data.load(f"npz:{tmp_path / 'd.npz'}")
    assert len(ds.x_train) + len(ds.x_val) + len(ds.x_test) == 12 and ds.spec.shape == (8, 8, 3)


def test_tfds_path_with_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=12):
        ds = data.load("mnist")
    assert ds.source == "tfds"
    assert ds.x_train.shape == (10, 28, 28, 1) and ds.x_train.dtype == np.uint8  # 2 of 12 to validation


def test_nothing_found_lists_what_was_tried(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_network_reachable", lambda *a, **k: False)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds-empty"))
    with pytest.raises(DataError, match=r"not found; tried: .*debian-none.*tfds.*--data-dir"):
        data.load("mnist")


@pytest.mark.parametrize(
    "corrupt, match",
    [
        ("magic", r"train-images-idx3-ubyte.gz: bad magic number 2049"),
        ("truncate", r"train-images-idx3-ubyte.gz: wrong length"),
        ("count", r"t10k-images-idx3-ubyte.gz: 20 images but t10k-labels-idx1-ubyte.gz has 19 labels"),
        ("gzip", r"train-labels-idx1-ubyte.gz: cannot read gzip data"),
        ("header", r"train-images-idx3-ubyte.gz: file is shorter than its 16-byte IDX header"),
    ],
)
def test_corrupt_idx(tmp_path, corrupt, match):
    root = make_mnist_dir(tmp_path / "m")
    rng = np.random.default_rng(0)
    if corrupt == "magic":
        write_idx_images(root / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (50, 28, 28)), magic=2049)
    elif corrupt == "truncate":
        raw = gzip.open(root / "train-images-idx3-ubyte.gz").read()
        with gzip.open(root / "train-images-idx3-ubyte.gz", "wb") as f:
            f.write(raw[:-100])
    elif corrupt == "count":
        write_idx_labels(root / "t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, 19))
    elif corrupt == "gzip":
        raw = (root / "train-labels-idx1-ubyte.gz").read_bytes()
        (root / "train-labels-idx1-ubyte.gz").write_bytes(raw[: len(raw) // 2])
    elif corrupt == "header":
        with gzip.open(root / "train-images-idx3-ubyte.gz", "wb") as f:
            f.write(b"\x00\x00\x08")
    with pytest.raises(DataError, match=match):
        data.load("mnist", str(root))


def test_corrupt_cifar(tmp_path):
    root = make_cifar_extracted(tmp_path / "c")
    (root / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match=r"data_batch_3: not a CIFAR-10 python batch"):
        data.load("cifar10", str(root))
    tar = make_cifar_tar(tmp_path / "t")
    raw = (tar / "cifar-10-python.tar.gz").read_bytes()
    (tar / "cifar-10-python.tar.gz").write_bytes(raw[: len(raw) // 3])
    with pytest.raises(DataError, match=r"cifar-10-python.tar.gz: .*(corrupt|has no)"):
        data.load("cifar10", str(tar))


def test_unreadable_image_in_folder(tmp_path):
    (tmp_path / "imgs").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "imgs" / "ok.png")
    (tmp_path / "imgs" / "bad.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(DataError, match=r"bad.png: unreadable image"):
        data.load(f"folder:{tmp_path / 'imgs'}")


def test_bad_npz(tmp_path):
    np.savez(tmp_path / "f.npz", images=np.zeros((4, 8, 8, 1), np.float32))
    with pytest.raises(DataError, match="must be uint8"):
        data.load(f"npz:{tmp_path / 'f.npz'}")
    np.savez(tmp_path / "n.npz", pixels=np.zeros((4, 8, 8, 1), np.uint8))
    with pytest.raises(DataError, match="has no 'images' array"):
        data.load(f"npz:{tmp_path / 'n.npz'}")
    (tmp_path / "x.npz").write_bytes(b"junk")
    with pytest.raises(DataError, match="not a readable .npz"):
        data.load(f"npz:{tmp_path / 'x.npz'}")
    with pytest.raises(DataError, match="unknown dataset 'svhn'"):
        data.load("svhn")


def test_pipeline_scales_shuffles_batches_repeats():
    import tensorflow as tf

    x = np.arange(10 * 2 * 2, dtype=np.int64).reshape(10, 2, 2, 1).astype(np.uint8) * 6
    ds = data.pipeline(x, batch_size=4, seed=3)
    batches = [b.numpy() for b in ds.take(6)]  # 10 images: 2 full batches per epoch, 3 epochs
    assert all(b.shape == (4, 2, 2, 1) and b.dtype == np.float32 for b in batches)
    allv = np.concatenate(batches)
    assert allv.min() >= -1.0 and allv.max() <= 1.0
    expected = np.sort((x.astype(np.float32) / 127.5 - 1.0).ravel())
    epoch = np.sort(np.concatenate(batches[:2]).ravel())  # 8 of the 10 images: a subset of the scaled values
    assert np.isin(epoch, expected).all()
    first = batches[0][:, 0, 0, 0]
    assert not np.array_equal(first, (x[:4, 0, 0, 0] / 127.5 - 1.0).astype(np.float32))  # shuffled
    again = [b.numpy() for b in data.pipeline(x, 4, seed=3).take(6)]
    np.testing.assert_array_equal(np.concatenate(again), allv)  # same seed, same stream
    assert isinstance(ds, tf.data.Dataset)
    with pytest.raises(DataError, match="fewer than one batch"):
        data.pipeline(x, batch_size=64, seed=0)


def test_cli_data_json_and_errors(tmp_path, capsys):
    root = make_mnist_dir(tmp_path / "m")
    assert cli.main(["data", "--dataset", "mnist", "--data-dir", str(root), "--json"]) == 0
    import json

    out = json.loads(capsys.readouterr().out)
    assert out == {"dataset": "mnist", "train": 40, "validation": 10, "test": 20, "shape": [28, 28, 1], "classes": 10,
                   "source": str(root)}
    assert cli.main(["data", "--dataset", "mnist", "--data-dir", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --data-dir") and err.count("\n") == 1
    (root / "train-images-idx3-ubyte.gz").write_bytes(b"garbage")
    assert cli.main(["data", "--dataset", "mnist", "--data-dir", str(root)]) == 2
    assert "train-images-idx3-ubyte.gz" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="real MNIST not beside the checkout")
def test_real_mnist():
    ds = data.load("mnist", str(SHARED_MNIST))
    # 10,000 of the 60,000 training images are held out as the validation split
    assert (len(ds.x_train), len(ds.x_val), len(ds.x_test), ds.spec.shape) == (50000, 10000, 10000, (28, 28, 1))
    assert np.bincount(np.concatenate([ds.y_train, ds.y_val])).tolist()[:2] == [5923, 6742]


def test_validation_split_is_held_out_of_train_deterministically():
    x = np.arange(250, dtype=np.uint8).reshape(250, 1, 1, 1)  # each image its own value: splits are checkable
    y = np.arange(250) % 3
    a = data.Dataset(data.DatasetSpec("v", (1, 1, 1), 3), x, y, x[:25], y[:25], "t")
    b = data.Dataset(data.DatasetSpec("v", (1, 1, 1), 3), x, y, x[:25], y[:25], "t")
    assert len(a.x_val) == 25 and len(a.x_train) == 225  # as many as the test split (under a fifth of train)
    assert not set(a.x_val.ravel()) & set(a.x_train.ravel())  # disjoint, and nothing lost
    assert sorted([*a.x_val.ravel(), *a.x_train.ravel()]) == list(range(250))
    np.testing.assert_array_equal(a.x_val, b.x_val)  # the same every load
    np.testing.assert_array_equal(a.y_val, a.x_val.ravel() % 3)  # labels travel with their images
    assert a.split("validation")[0] is a.x_val and a.split("test")[0] is a.x_test
    big_test = data.Dataset(data.DatasetSpec("v", (1, 1, 1), 3), x, y, x[:200], y[:200], "t")
    assert len(big_test.x_val) == 50  # at most a fifth of the train split
    with pytest.raises(ValueError, match="unknown reference split"):
        a.split("train")
