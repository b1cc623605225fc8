"""``folder:`` datasets: every Pillow mode converted by what it means, transparency composited onto the
background, sizes 32 to 128, parallel decoding, the decoded-array cache, and unreadable files counted."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gan_nas import cli, config, data, folder
from gan_nas.errors import ConfigError, DataError

EMOJI = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "emoji-google"


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GAN_NAS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def rng_image(seed: int, size: int = 8, channels: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, channels)).astype(np.uint8)


def fill(folder_: Path, n: int, size: int = 8, start: int = 0) -> Path:
    """``n`` opaque RGB PNGs of ``size`` pixels in ``folder_``."""
    folder_.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n):
        Image.fromarray(rng_image(i, size)).save(folder_ / f"{i:04d}.png")
    return folder_


def decode(path: Path, mode: str = "RGB", background: tuple[int, int, int] = data.WHITE) -> np.ndarray:
    with data.open_image(path) as im:
        return np.asarray(data.decode_image(im, path, mode, background=background)).astype(np.int64)


def over(rgb: np.ndarray, alpha: np.ndarray, bg: tuple[int, int, int]) -> np.ndarray:
    """Straight alpha over an opaque background, in float64: the reference to compare with."""
    a = alpha[..., None].astype(np.float64) / 255.0
    return np.round(rgb * a + np.asarray(bg, np.float64) * (1.0 - a)).astype(np.int64)


def luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601-2 luma, as an L image holds it."""
    return np.round(rgb @ np.array([0.299, 0.587, 0.114])).astype(np.int64)


# --- every mode ---------------------------------------------------------------------------------


@pytest.mark.parametrize("bg", [(255, 255, 255), (0, 0, 0), (30, 200, 90)])
def test_rgba_is_composited_onto_the_background(tmp_path, bg):
    rgb = rng_image(0)
    alpha = np.tile(np.array([0, 0, 64, 128, 192, 255, 255, 10], np.uint8), (8, 1))
    rgb[alpha == 0] = (255, 0, 0)  # what transparent pixels store: dropping alpha shows a red block
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(tmp_path / "a.png")
    got = decode(tmp_path / "a.png", background=bg)
    np.testing.assert_allclose(got, over(rgb, alpha, bg), atol=1)
    assert (got[alpha == 0] == bg).all()
    np.testing.assert_allclose(decode(tmp_path / "a.png", "L", bg)[..., None], luma(over(rgb, alpha, bg))[..., None],
                               atol=1)


def test_la_is_composited(tmp_path):
    gray, alpha = rng_image(1, channels=1)[..., 0], rng_image(2, channels=1)[..., 0]
    Image.fromarray(np.dstack([gray, alpha]), "LA").save(tmp_path / "la.png")
    with Image.open(tmp_path / "la.png") as im:
        assert im.mode == "LA"
    want = over(np.repeat(gray[..., None], 3, axis=2), alpha, (255, 255, 255))
    np.testing.assert_allclose(decode(tmp_path / "la.png"), want, atol=1)
    np.testing.assert_allclose(decode(tmp_path / "la.png", "L"), want[..., 0], atol=1)


@pytest.mark.parametrize("transparency", [2, bytes([255, 128, 0, 255, 64])])
def test_palette_with_transparency_is_composited(tmp_path, transparency):
    palette = [(37 * i) % 256 for i in range(768)]
    index = np.arange(64).reshape(8, 8) % 5
    im = Image.new("P", (8, 8))
    im.putpalette(palette)
    im.putdata(index.ravel().tolist())
    im.save(tmp_path / "p.png", transparency=transparency)
    pal = np.array(palette).reshape(256, 3)
    alphas = np.full(256, 255)
    if isinstance(transparency, int):
        alphas[transparency] = 0
    else:
        alphas[: len(transparency)] = list(transparency)
    np.testing.assert_allclose(decode(tmp_path / "p.png", background=(0, 0, 0)),
                               over(pal[index], alphas[index], (0, 0, 0)), atol=1)


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_trns_colour_is_transparent(tmp_path, mode):
    arr = rng_image(3)
    arr[:4] = (10, 20, 30)
    im = Image.fromarray(arr).convert(mode)
    key = 17 if mode == "L" else (10, 20, 30)
    if mode == "L":
        im.paste(17, (0, 0, 8, 4))
    im.save(tmp_path / "t.png", transparency=key)
    got = decode(tmp_path / "t.png", background=(0, 0, 255))
    assert (got[:4] == (0, 0, 255)).all()  # the transparent colour shows the background
    assert not (got[4:] == (0, 0, 255)).all(axis=-1).any()


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path):
    values = (np.arange(64).reshape(8, 8) * 1040).astype(np.uint16)  # 0 .. 65520
    Image.fromarray(values).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as im:
        assert im.mode.startswith("I")
    want = np.round(values / 257.0).astype(np.int64)
    np.testing.assert_array_equal(decode(tmp_path / "g16.png", "L"), want)  # Pillow's convert("L") clips to 255
    np.testing.assert_array_equal(decode(tmp_path / "g16.png"), np.repeat(want[..., None], 3, axis=2))


def test_cmyk_jpeg_and_bilevel_png(tmp_path):
    Image.new("CMYK", (8, 8), (0, 0, 0, 0)).save(tmp_path / "white.jpg")
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "red.jpg")
    np.testing.assert_allclose(decode(tmp_path / "white.jpg"), np.full((8, 8, 3), 255), atol=3)
    np.testing.assert_allclose(decode(tmp_path / "red.jpg"), np.broadcast_to([255, 0, 0], (8, 8, 3)), atol=3)
    bits = np.arange(64).reshape(8, 8) % 3 == 0
    Image.fromarray(bits).convert("1").save(tmp_path / "b.png")
    with Image.open(tmp_path / "b.png") as im:
        assert im.mode == "1"
    np.testing.assert_array_equal(decode(tmp_path / "b.png", "L"), np.where(bits, 255, 0))


def test_background_values():
    assert data.parse_background("white") == (255, 255, 255)
    assert data.parse_background(" Black ") == (0, 0, 0)
    assert data.parse_background("grey") == data.parse_background("gray") == (128, 128, 128)
    assert data.parse_background("#FF8000") == (255, 128, 0)
    for bad in ("pink", "#fff", "", None, 3):
        with pytest.raises(DataError, match=r"background must be white, black, gray or a colour #rrggbb"):
            data.parse_background(bad)
    assert config.Config().data.background == "white"
    with pytest.raises(ConfigError, match=r"background must be .*got 'pink'"):
        config.override(config.Config(), ["data.background=pink"])


# --- folders -------------------------------------------------------------------------------------


def emoji_like(root: Path, n: int = 64, size: int = 16) -> Path:
    """``n`` RGBA images in two classes: a disk on transparency whose hidden pixels store black."""
    yy, xx = np.mgrid[0:size, 0:size]
    disk = (yy - size / 2 + 0.5) ** 2 + (xx - size / 2 + 0.5) ** 2 < (size / 3) ** 2
    for i in range(n):
        rgba = np.zeros((size, size, 4), np.uint8)
        rgba[disk] = (200, 40 + i, 40, 255)
        sub = root / ("round" if i % 2 else "red")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgba, "RGBA").save(sub / f"{i}.png")
    return root


@pytest.mark.parametrize("size", [32, 64, 128])
def test_sizes_and_the_upscaling_note(tmp_path, capsys, size):
    root = emoji_like(tmp_path / "e", size=64)
    ds = data.load(f"folder:{root}", image_size=size, channels=3)
    assert ds.spec.shape == (size, size, 3) and ds.spec.classes == 2
    x = np.concatenate([ds.x_train, ds.x_test])
    assert (x[:, 0, 0] == 255).all()  # corners: the white background, not the black that transparency stores
    err = capsys.readouterr().err
    if size == 128:
        assert ds.notes == (f"folder dataset {root}: 64 of 64 images are smaller than 128x128 and were upscaled "
                            "(bicubic), so they are blurrier than the size suggests",)
        assert err == f"warning: {ds.notes[0]}\n"
        assert ds.describe()["notes"] == list(ds.notes)
    else:
        assert ds.notes == () and err == "" and "notes" not in ds.describe()


def test_cli_data_background(tmp_path, capsys):
    root = emoji_like(tmp_path / "e")
    assert cli.main(["data", "--dataset", f"folder:{root}", "--image-size", "16", "--channels", "3",
                     "--background", "#000080", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["shape"] == [16, 16, 3]
    ds = data.load(f"folder:{root}", image_size=16, channels=3, background="#000080")
    assert (ds.x_train[:, 0, 0] == (0, 0, 128)).all()
    assert cli.main(["data", "--dataset", f"folder:{root}", "--background", "pink"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: background must be")


def corrupt(folder_: Path, n: int) -> list[Path]:
    """``n`` unreadable image files: truncated, empty, not an image."""
    folder_.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    Image.fromarray(rng_image(99, 32)).save(buf, "PNG")
    kinds = [buf.getvalue()[:-200], b"", b"%!PS-Adobe-3.0 EPSF-3.0\n"]
    paths = [folder_ / f"bad{i}.png" for i in range(n)]
    for i, p in enumerate(paths):
        p.write_bytes(kinds[i % 3])
    return paths


def test_unreadable_files_are_skipped_with_a_count_and_their_names(tmp_path, capsys):
    root = tmp_path / "imgs"
    fill(root / "a", 64)
    bad = corrupt(root / "b", 3)
    ds = data.load(f"folder:{root}", image_size=8, channels=3)
    assert len(ds.x_train) + len(ds.x_val) + len(ds.x_test) == 64 and ds.spec.classes == 1  # "b" had no readable image
    (note,) = ds.notes
    assert note.startswith(f"folder dataset {root}: skipped 3 of 67 image files that could not be read: ")
    assert all(f"{p}: unreadable image (" in note for p in bad)
    assert capsys.readouterr().err == f"warning: {note}\n"
    assert cli.main(["data", "--dataset", f"folder:{root}", "--image-size", "8", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["notes"] == [note] and err == f"warning: {note}\n"


def test_more_unreadable_files_than_are_named(tmp_path):
    root = tmp_path / "imgs"
    fill(root / "a", 64)
    corrupt(root / "b", 5)
    (note,) = data.load(f"folder:{root}", image_size=8).notes
    assert "skipped 5 of 69" in note and note.endswith("; and 2 more") and note.count("unreadable image") == 3


def test_too_few_readable_images_exit_2_naming_the_problem(tmp_path, capsys):
    root = tmp_path / "imgs"
    fill(root / "a", 63)
    with pytest.raises(DataError, match=r"holds 63 readable images, fewer than the 64 gan-nas needs to train "
                                        r"and score a GAN$"):
        data.load(f"folder:{root}", image_size=8)
    (bad,) = corrupt(root / "b", 1)
    with pytest.raises(DataError, match=r"holds 63 readable images, fewer than the 64 .*; 1 unreadable files "
                                        r"skipped: .*bad0.png: unreadable image \("):
        data.load(f"folder:{root}", image_size=8)
    assert cli.main(["data", "--dataset", f"folder:{root}", "--image-size", "8"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: folder dataset") and "63 readable" in err[0] and str(bad) in err[0]


def test_only_unreadable_files(tmp_path):
    root = tmp_path / "imgs"
    corrupt(root, 3)
    with pytest.raises(DataError, match=r"none of its 3 image files could be read: .*bad0.png: unreadable image"):
        data.load(f"folder:{root}")


# --- parallel decoding and the cache ---------------------------------------------------------------------


def test_parallel_decoding_equals_serial(tmp_path, monkeypatch):
    root = tmp_path / "imgs"
    fill(root / "a", 70, size=12)
    fill(root / "b", 70, size=12, start=70)
    corrupt(root / "b", 2)
    serial = folder.read_folder(root, 8, 3, data.WHITE, workers=1)
    monkeypatch.setattr(folder, "PARALLEL_MIN_FILES", 0)
    parallel = folder.read_folder(root, 8, 3, data.WHITE, workers=2)  # spawned processes, chunks in order
    np.testing.assert_array_equal(parallel.x, serial.x)
    np.testing.assert_array_equal(parallel.y, serial.y)
    assert parallel.notes == serial.notes and "skipped 2 of 142" in serial.notes[0]
    assert len(serial.x) == 140 and np.bincount(serial.y).tolist() == [70, 70]


def test_the_cache_holds_a_large_folder_and_follows_its_changes(tmp_path, cache, monkeypatch):
    root = tmp_path / "imgs"
    fill(root / "a", 64)
    bad = corrupt(root / "b", 1)
    first = data.load(f"folder:{root}", image_size=8, channels=3)
    assert not (cache / "data").exists()  # under CACHE_MIN_FILES images: not worth an entry
    monkeypatch.setattr(folder, "CACHE_MIN_FILES", 1)
    data.load(f"folder:{root}", image_size=8, channels=3)
    (entry,) = (cache / "data").glob("*.npz")
    assert entry.name.startswith("imgs-8x8x3-")

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded although the cache holds the folder")

    with monkeypatch.context() as m:
        m.setattr(folder, "_decode_folder", no_decoding)
        again = data.load(f"folder:{root}", image_size=8, channels=3)
    np.testing.assert_array_equal(again.x_train, first.x_train)
    assert again.fingerprint == first.fingerprint and again.notes == first.notes  # the skipped file, said again

    bad[0].unlink()  # the folder changed: decoded again, into a new entry
    changed = data.load(f"folder:{root}", image_size=8, channels=3)
    assert changed.notes == () and len(list((cache / "data").glob("*.npz"))) == 2
    data.load(f"folder:{root}", image_size=8, channels=1, background="black")  # other settings: other entries
    assert len(list((cache / "data").glob("*.npz"))) == 3


def test_a_damaged_or_pickled_cache_entry_is_decoded_again(tmp_path, cache, monkeypatch):
    monkeypatch.setattr(folder, "CACHE_MIN_FILES", 1)
    root = fill(tmp_path / "imgs", 64)
    first = data.load(f"folder:{root}", image_size=8, channels=3)
    (entry,) = (cache / "data").glob("*.npz")
    for damage in (b"garbage", None):
        if damage is None:  # an entry holding Python objects: refused, never unpickled
            np.savez(entry, images=np.array([object()]), labels=np.zeros(1), classes=np.array(["."]),
                     notes=np.array([], dtype=str))
        else:
            entry.write_bytes(damage)
        again = data.load(f"folder:{root}", image_size=8, channels=3)
        np.testing.assert_array_equal(again.x_train, first.x_train)
        with np.load(entry, allow_pickle=False) as z:  # rewritten whole
            assert z["images"].shape == (64, 8, 8, 3)
    assert not [p for p in (cache / "data").iterdir() if p.name.startswith(".")]  # no temporary file left


def test_listing_fingerprint_sees_size_and_time(tmp_path):
    root = fill(tmp_path / "imgs", 3)
    files = data.list_images(root, recursive=True)
    a = folder.listing_fingerprint(root, files)
    assert folder.listing_fingerprint(root, files) == a
    os.utime(files[0], ns=(0, 10**9))
    assert folder.listing_fingerprint(root, files) != a


# --- the real thing ------------------------------------------------------------------------------------


@pytest.mark.skipif(not EMOJI.is_dir(), reason="the emoji set is not beside the checkout")
def test_real_emoji_sit_on_white():
    ds = data.load(f"folder:{EMOJI}", image_size=32, channels=3)
    assert (len(ds.x_train), len(ds.x_val), len(ds.x_test), ds.spec.classes, ds.notes) == (2520, 630, 631, 9, ())
    x = np.concatenate([ds.x_train, ds.x_val, ds.x_test])
    corners = x[:, [0, 0, -1, -1], [0, -1, 0, -1]]  # (N, 4, 3)
    white = (corners >= 250).all(axis=(1, 2))
    assert white.mean() > 0.9  # flags and a few square symbols fill their frame; the rest sit on white
