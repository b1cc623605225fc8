"""Reading a run directory: its config, its best candidate and generators, and genomes named by path.

One home for what ``report``, ``compare``, ``generate`` and ``gan-nas genome`` read back from a run
(the layout is in ARCHITECTURE.md; :mod:`gan_nas.store` writes it). Nothing here takes the run's
lock, so a search may be writing it meanwhile. Loading ``dcgan`` by name lives here too, so that
:mod:`gan_nas.genome` needs neither :mod:`gan_nas.baseline` nor the file system.
"""

from __future__ import annotations

import math
import zipfile
import zlib
from pathlib import Path
from typing import Any

from gan_nas import safe_io
from gan_nas.checkpoint import WEIGHTS_FILE
from gan_nas.config import Config
from gan_nas.errors import GanNasError, GenomeError, RunDirError
from gan_nas.genome import GanGenome, validate
from gan_nas.selection import fitness_of
from gan_nas.store import RunStore


def _first_line(e: BaseException) -> str:
    """The first line of an exception's message (Keras and NumPy messages run over many lines)."""
    text = str(e)
    return text.splitlines()[0] if text else ""


def open_run(run_dir: str | Path) -> tuple[RunStore, Config]:
    """Open a run directory for reading and parse its config.

    Raises:
        RunDirError: the directory is missing, has no config.json, or it is corrupt.
    """
    store = RunStore.open(run_dir)
    try:
        cfg = Config.from_json(store.config_json())
    except GanNasError as e:
        raise RunDirError(f"{store.root / 'config.json'} is damaged: {e}") from None
    return store, cfg


def image_shape(cfg: Config) -> tuple[int, int, int]:
    """The (height, width, channels) of the run's images, loading the dataset only where needed.

    Raises:
        DataError: an ``npz:`` dataset that can no longer be read.
    """
    from gan_nas import data

    name = cfg.data.dataset
    key = name.replace("-", "_")
    if key in data.REGISTRY:
        return tuple(data.REGISTRY[key].shape)  # type: ignore[return-value]
    if name.startswith("folder:"):
        return (cfg.data.image_size, cfg.data.image_size, cfg.data.channels)
    ds = data.load(name, cfg.data.data_dir, cfg.data.image_size, cfg.data.channels)
    return tuple(int(s) for s in ds.spec.shape)  # type: ignore[return-value]


def best_record(store: RunStore, records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The best candidate's journal record: the head of the hall of fame, else the lowest FID on record."""
    by_id = {r.get("id"): r for r in records}
    state = store.read_state()
    hof = state.get("hall_of_fame") if isinstance(state, dict) else None
    if isinstance(hof, list) and hof and isinstance(hof[0], str) and hof[0] in by_id:  # (damaged: ignored)
        return by_id[hof[0]]
    ok = [r for r in records if math.isfinite(fitness_of(r))]
    return min(ok, key=fitness_of) if ok else None


def load_best_generator(store: RunStore):
    """The published best generator (``best/generator.keras``), loaded with plain Keras.

    Raises:
        RunDirError: there is no best/ yet, or its generator.keras is missing or damaged.
    """
    import keras

    best = store.best_dir()
    if best is None:
        raise RunDirError(
            f"{store.root} has no best/ yet: no generation of the search has finished; "
            "wait for one, or name a candidate with --candidate ID")
    path = best / "generator.keras"
    if not path.is_file():
        raise RunDirError(f"{path} is missing; the run directory is incomplete")
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as e:  # noqa: BLE001 - Keras raises many kinds on a damaged archive
        raise RunDirError(f"{path} is damaged ({type(e).__name__}: {_first_line(e)}); "
                          "restore it or resume the search to publish it again") from None


def load_candidate_generator(store: RunStore, cfg: Config, cid: str):
    """Candidate ``cid``'s generator, built from its genome and its checkpoint's weights.

    Raises:
        RunDirError: no such candidate, or its weights were pruned (only the
            population and hall of fame keep them) or are damaged.
        DataError: the run's ``npz:`` dataset, which gives the image shape, can no longer be read.
    """
    from gan_nas import gan

    records = {r.get("id"): r for r in store.journal()}
    if cid not in records:
        known = ", ".join(sorted(str(k) for k in records)[:20]) or "none yet"
        raise RunDirError(f"run dir {store.root} has no evaluated candidate {cid!r}; known ids: {known}")
    candidates = store.root / "candidates"
    # A journaled candidate whose folder is gone was pruned as a whole: the same answer as pruned weights.
    ckpt = store.candidate_dir(cid, create=False) if (candidates / cid).is_dir() else candidates / cid
    if not (ckpt / WEIGHTS_FILE).is_file():
        kept = [] if not candidates.is_dir() else sorted(
            d.name for d in candidates.iterdir() if (d / WEIGHTS_FILE).is_file())
        raise RunDirError(
            f"candidate {cid} has no weights in {ckpt} (pruned: only the population and the hall of fame "
            f"keep theirs); candidates with weights: {', '.join(kept) or 'none'}")
    try:
        genome = GanGenome.from_dict(records[cid]["genome"])
    except (GanNasError, KeyError, TypeError) as e:
        raise RunDirError(f"journal record of {cid} has a damaged genome: {e}") from None
    shape = image_shape(cfg)
    try:
        return gan.load_generator(genome, ckpt, shape)
    except GanNasError as e:
        raise RunDirError(str(e)) from None
    # load_checkpoint turns OSError and ValueError into GanNasError, but a truncated or
    # corrupt zip raises BadZipFile, and weights of the wrong shape a ValueError in set_weights.
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError) as e:
        raise RunDirError(f"candidate {cid}'s weights {ckpt / WEIGHTS_FILE} are damaged "
                          f"({type(e).__name__}: {_first_line(e)}); generate from another candidate") from None


def load_genome(source: str, image_shape: tuple[int, int, int] | None = None) -> GanGenome:
    """Load a genome by name or from disk.

    Args:
        source: ``dcgan`` (the baseline, needs ``image_shape``); a genome
            ``.json`` file; a run directory (its ``best/genome.json``); or a
            candidate directory ``RUN_DIR/candidates/ID`` (its ``genome.json``).
        image_shape: (height, width, channels); needed for ``dcgan``, and when
            given, the loaded genome is validated against it.

    Raises:
        GenomeError: unknown source, malformed or invalid genome.
        RunDirError: ``source`` looks like a path but does not exist.
    """
    if source == "dcgan":
        if image_shape is None:
            raise GenomeError("the dcgan genome needs an image shape (height, width, channels)")
        from gan_nas.baseline import dcgan

        return dcgan(image_shape)
    p = Path(source)
    if p.is_dir():
        candidates = [p / "genome.json", p / "best" / "genome.json"]
        file = next((f for f in candidates if f.is_file()), None)
        if file is None:
            raise RunDirError(
                f"{p} holds no genome: expected {p / 'best' / 'genome.json'} (a run directory) "
                f"or {p / 'genome.json'} (a candidate directory)"
            )
    elif p.exists():  # a file; one that is not a regular file (a FIFO, a device) is refused on reading
        file = p
    elif p.suffix == ".json" or "/" in source or "\\" in source:
        raise RunDirError(f"{source} does not exist (expected a genome .json file or a run directory)")
    else:
        raise GenomeError(f"unknown genome {source!r}: use 'dcgan', a genome .json file or a run directory")
    try:
        text = safe_io.read_text(file)
    except UnicodeDecodeError:
        raise GenomeError(f"cannot read genome file {file}: not UTF-8 text") from None
    except OSError as e:
        raise GenomeError(f"cannot read genome file {file}: {e.strerror or e}") from None
    try:
        genome = GanGenome.from_json(text)
    except GenomeError as e:
        raise GenomeError(f"{file}: {e}") from None
    if image_shape is not None:
        validate(genome, image_shape)
    return genome
