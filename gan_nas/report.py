"""Reading a finished (or running) search: sample images and a markdown report with plots.

Both functions read only the run directory (through :mod:`gan_nas.runs`; the layout is in
ARCHITECTURE.md and :mod:`gan_nas.store`) and never take its lock, so they work while a search is writing it:

* :func:`generate` -- an image grid, raw samples (``.npz`` for ``gan-nas fid``)
  and a latent interpolation sheet from the best generator (``best/generator.keras``)
  or from a named candidate's checkpoint.
* :func:`report` -- ``RUN_DIR/report.md`` with PNG plots in ``RUN_DIR/report/``:
  best and median FID per generation, FID against generator size with the
  Pareto front, the lineage of the best candidate, the best genome as a table,
  and links to the per-generation sample grids.
"""

from __future__ import annotations

import math
import os
import re
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gan_nas import safe_io
from gan_nas.config import Config
from gan_nas.errors import GanNasError, RunDirError
from gan_nas.fitness import QUALITY_KEYS, SMALL_REFERENCE
from gan_nas.runs import best_record, image_shape, load_best_generator, load_candidate_generator, open_run
from gan_nas.selection import fitness_of
from gan_nas.store import RunStore, seconds_of

REPORT_FILE = "report.md"
PLOTS_DIR = "report"


# --- reading a run directory -----------------------------------------------------------------


# --- generate ---------------------------------------------------------------------------------

# Bounds on what one `gan-nas generate` may ask of a 2-core machine.
MAX_N = 50_000  # the largest sample size FIDs are quoted at (FID-50k); 25-35 s of the DCGAN on 2 cores
MAX_GRID = 1_024  # images the PNG grid shows (32 x 32); --npz gets all n
MAX_SCALE = 16
MAX_PNG_SIDE = 8_192  # pixels a side of a PNG: 200 MB of RGB in memory, while PIL upscales it
MAX_SEED = 2**32 - 1  # the range of the seeds a run's config holds

# What a search owns in its run directory (see store.py): never overwritten by an output of generate.
RUN_DIR_OWN = frozenset({"config.json", "journal.jsonl", "state.json", "lock", "candidates", "best", "best.tmp",
                         "best.old", "ahead", "samples", "tb",  # ahead/: runs of versions that trained ahead there
                         "baseline", "baseline-steps"})  # compare's DCGAN runs, run directories of their own
OWN_PATTERN = re.compile(r"baseline-seed\d+")  # compare --baseline-runs' DCGANs of other seeds


def _check_limits(n: int, seed: int | None, scale: int) -> None:
    """Refuse counts, seeds and scales out of bounds before anything is read or written.

    Raises:
        GanNasError: n, seed or scale out of its range; the message gives the range.
    """
    if not 1 <= n <= MAX_N:
        raise GanNasError(f"--n must be at least 1 and at most {MAX_N:,}, got {n:,} (the PNG grid shows the "
                          f"first {MAX_GRID:,}; --npz gets all n)")
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise GanNasError(f"--seed must be at least 0 and at most {MAX_SEED:,} (2**32 - 1), got {seed:,}")
    if not 1 <= scale <= MAX_SCALE:
        raise GanNasError(f"--scale must be at least 1 and at most {MAX_SCALE}, got {scale:,}")


def _within(path: str, root: str) -> str | None:
    """``path`` relative to ``root`` (both resolved), or None if it lies outside."""
    rel = os.path.relpath(path, root)
    return None if rel == os.pardir or rel.startswith(os.pardir + os.sep) else rel


def _check_output(flag: str, value: str | Path, run_root: Path) -> Path:
    """Refuse an output path that cannot be a file of its own, before any time is spent.

    Returns:
        The path.

    Raises:
        GanNasError: the path names a directory or is not a regular file, its folder is
            missing or is a file, or it would overwrite a file the search owns.
    """
    path = Path(value)
    # Checked on the text: Path() drops a trailing slash, which names a directory even if none exists.
    if str(value).endswith(os.sep) or path.is_dir():
        example = {"--npz": "samples.npz", "--interpolate": "interpolation.png"}.get(flag, "grid.png")
        raise GanNasError(f"{flag} {value} names a directory; name a file (e.g. {path / example})")
    if path.exists() and not path.is_file():
        raise GanNasError(f"{flag} {path} exists and is not a regular file; name another file")
    folder = path.parent
    if not folder.exists():
        raise GanNasError(f"{flag} {path}: folder {folder} does not exist; create it first")
    if not folder.is_dir():
        raise GanNasError(f"{flag} {path}: {folder} is not a folder")
    # Resolved, so that a symlink or '..' cannot reach the run's files either.
    rel = _within(os.path.realpath(path), os.path.realpath(run_root))
    if rel is not None and (Path(rel).parts[0] in RUN_DIR_OWN or OWN_PATTERN.fullmatch(Path(rel).parts[0])):
        raise GanNasError(f"{flag} {path} would overwrite {run_root / rel}, which the search owns; "
                          "write it outside the run directory's own files")
    return path


def _output_paths(run_root: Path, **paths: str | Path | None) -> dict[str, Path]:
    """The outputs given (``--out``, ``--npz``, ``--interpolate``), checked, by flag.

    Raises:
        GanNasError: one of them is refused by :func:`_check_output`, or two name the same file.
    """
    checked: dict[str, Path] = {}
    seen: dict[str, str] = {}
    for name, value in paths.items():
        if value is None:
            continue
        flag = "--" + name
        try:
            path = _check_output(flag, value, run_root)
        except OSError as e:  # a folder on the way that this user may not look into
            raise GanNasError(f"cannot write {flag} {value}: {e.strerror or e}") from None
        real = os.path.realpath(path)
        if real in seen:
            raise GanNasError(f"{seen[real]} and {flag} both name {path}; give each output its own file")
        seen[real] = flag
        checked[flag] = path
    return checked


def _temp_beside(flag: str, path: Path) -> Path:
    """Create an empty temporary file in ``path``'s folder: proof that the folder takes files.

    Raises:
        GanNasError: the folder refuses it (permissions, a read-only or virtual file system, a full disk).
    """
    tmp = safe_io.temp_name(path)
    try:
        # 0o666 under the umask: the output gets the permissions a plain open() would give it.
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as e:
        raise GanNasError(f"cannot write {flag} {path}: no file can be created in {path.parent} "
                          f"({e.strerror or e})") from None
    return tmp


class _Staged:
    """Temporary files beside each output; renamed over the outputs by :meth:`commit`, else removed.

    Every output is written to its temporary file, so that a failure at any
    point (bad input, a full disk, Ctrl-C) leaves each target as it was and no
    temporary file behind. :func:`safe_io.write_atomic` for several files at once:
    all are written (and fsynced) before any is renamed.
    """

    def __init__(self, outputs: dict[str, Path]) -> None:
        self.outputs = outputs
        self.tmp: dict[str, Path] = {}

    def __enter__(self) -> _Staged:
        try:
            for flag, path in self.outputs.items():
                self.tmp[flag] = _temp_beside(flag, path)
        except BaseException:
            self._remove()
            raise
        return self

    def write(self, flag: str, writer) -> None:
        """Call ``writer(binary_file)`` on ``flag``'s temporary file; an OS error becomes one clear line.

        Raises:
            GanNasError: writing failed (a full disk, a quota); the message names the output.
        """
        try:
            with open(self.tmp[flag], "wb") as f:
                writer(f)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise GanNasError(f"cannot write {flag} {self.outputs[flag]}: {e.strerror or e}") from None

    def commit(self) -> None:
        """Rename every temporary file over its output, then fsync the outputs' folders.

        Raises:
            GanNasError: a rename failed; the message names the output.
        """
        for flag, path in self.outputs.items():
            try:
                os.replace(self.tmp[flag], path)
            except OSError as e:
                raise GanNasError(f"cannot write {flag} {path}: {e.strerror or e}") from None
        folders = {path.parent: (flag, path) for flag, path in self.outputs.items()}
        for folder, (flag, path) in folders.items():
            try:
                safe_io.fsync_path(folder)
            except OSError as e:
                raise GanNasError(f"cannot write {flag} {path}: {e.strerror or e}") from None

    def _remove(self) -> None:
        for tmp in self.tmp.values():
            tmp.unlink(missing_ok=True)

    def __exit__(self, *exc: object) -> None:
        self._remove()  # after a commit, nothing is left to remove


def _png_side(cols: int, rows: int, shape: tuple[int, ...], scale: int, pad: int = 2) -> tuple[int, int]:
    """(width, height) in pixels of an upscaled grid, as :func:`images.grid` lays it out."""
    return (cols * (shape[1] + pad) + pad) * scale, (rows * (shape[0] + pad) + pad) * scale


def _check_png_size(flag: str, cols: int, rows: int, shape: tuple[int, ...], scale: int) -> None:
    """Refuse a PNG larger than :data:`MAX_PNG_SIDE` a side, before any image is sampled.

    Raises:
        GanNasError: too large; the message gives the largest scale that fits.
    """
    w, h = _png_side(cols, rows, shape, scale)
    if max(w, h) > MAX_PNG_SIDE:
        fits = max(1, MAX_PNG_SIDE // max(_png_side(cols, rows, shape, 1)))
        raise GanNasError(f"{flag} would be {w:,} x {h:,} pixels at --scale {scale}; at most {MAX_PNG_SIDE:,} "
                          f"a side: use --scale {fits} or less" + (", or a smaller --n" if flag == "--out" else ""))


def _load_generator(store: RunStore, cfg: Config, candidate: str | None):
    """The named candidate's generator, else the published best one."""
    if candidate is not None:
        return load_candidate_generator(store, cfg, candidate)
    return load_best_generator(store)


def _sample(gen, n: int, shown: int, seed: int, batch: int, staged: _Staged) -> np.ndarray:
    """Sample ``n`` images, streaming all of them to ``--npz`` if staged, and return the first ``shown``.

    Without ``--npz`` only the ``shown`` images are sampled: no one would see the rest.
    """
    from gan_nas import images

    head: list[np.ndarray] = []
    kept = 0

    def tap(batches):
        nonlocal kept
        for b in batches:
            if kept < shown:
                head.append(b[:shown - kept])
                kept += len(head[-1])
            yield b

    if "--npz" in staged.outputs:
        shape = (n, *(int(s) for s in gen.output_shape[1:]))
        staged.write("--npz", lambda f: images.write_npz(f, shape, tap(images.sample_batches(gen, n, seed, batch))))
    else:
        for _ in tap(images.sample_batches(gen, shown, seed, batch)):
            pass
    return np.concatenate(head)


def generate(
    run_dir: str | Path,
    out: str | Path,
    n: int = 64,
    seed: int | None = None,
    candidate: str | None = None,
    npz: str | Path | None = None,
    interpolate: str | Path | None = None,
    scale: int = 2,
) -> dict[str, Any]:
    """Write a grid of samples of the best (or a named) generator of a run.

    Every output is checked before anything is loaded or sampled, and written
    atomically: on any error none is created or changed, and nothing is left
    beside them.

    Args:
        run_dir: the run directory.
        out: the PNG grid to write (``ceil(sqrt(k))`` columns, 2-pixel white gaps) of the first
            ``k = min(n, MAX_GRID)`` samples.
        n: how many samples, 1 to :data:`MAX_N`.
        seed: seed of the latent draws, 0 to :data:`MAX_SEED`; None: the run's ``fitness.noise_seed``,
            so the grid shows the very draws the candidates were scored on.
        candidate: a candidate id (``c0007``) instead of the published best.
        npz: also write all n raw samples here, ``images`` (n, H, W, C) uint8, as ``gan-nas fid`` reads;
            written a batch at a time, so memory holds one batch.
        interpolate: also write a sheet of latent interpolations (8 rows of 10) here.
        scale: integer upscaling of the PNGs (nearest neighbour), 1 to :data:`MAX_SCALE`, and no PNG
            larger than :data:`MAX_PNG_SIDE` pixels a side.

    Returns:
        ``{"out", "n", "grid", "seed", "model", "shape", "npz", "interpolate"}``; ``grid`` is how
        many samples the PNG shows.

    Raises:
        RunDirError: missing or damaged run directory, no best/ yet, unknown, pruned or damaged candidate.
        GanNasError: n, seed or scale out of range; an output that is a directory, in a missing
            or unwritable folder, among the run directory's own files, or named twice.
    """
    from gan_nas import images

    _check_limits(n, seed, scale)
    store, cfg = open_run(run_dir)
    outputs = _output_paths(store.root, out=out, npz=npz, interpolate=interpolate)
    seed = cfg.fitness.noise_seed if seed is None else int(seed)
    with _Staged(outputs) as staged:
        gen = _load_generator(store, cfg, candidate)
        shape = tuple(int(s) for s in gen.output_shape[1:])
        shown = min(n, MAX_GRID)
        cols = math.ceil(math.sqrt(shown))
        _check_png_size("--out", cols, math.ceil(shown / cols), shape, scale)
        if interpolate is not None:
            _check_png_size("--interpolate", 10, 8, shape, scale)
        x = _sample(gen, n, shown, seed, cfg.fitness.batch_size, staged)
        staged.write("--out", lambda f: images.write_png(images.grid(x), f, scale))
        if interpolate is not None:
            sheet = images.interpolation_sheet(gen, rows=8, steps=10, seed=seed)
            staged.write("--interpolate", lambda f: images.write_png(sheet, f, scale))
        staged.commit()
    return {"out": str(outputs["--out"]), "n": int(n), "grid": shown, "seed": seed, "model": candidate or "best",
            "shape": list(shape), "npz": str(npz) if npz is not None else None,
            "interpolate": str(interpolate) if interpolate is not None else None}


# --- report -----------------------------------------------------------------------------------


def _generation_unit(cfg) -> tuple[str, Callable[[int], str]]:
    """What a record's ``generation`` counts, and its name in a table: evolution's generations, or
    halving's rungs (a trial's generation is the rung it trained to; one past the last is the leader
    training past the top rung)."""
    if cfg.search.strategy != "halving":
        return "generation", str
    steps, past, sps = cfg.halving.rung_steps(), cfg.halving.steps_past_top(), cfg.halving.seconds_per_step

    def amount(n: int) -> str:
        return f"{n * sps:,.0f} s" if sps > 0 else f"{n:,} steps"

    def name(g: int) -> str:
        return f"{g} ({amount(steps[g])})" if g < len(steps) else f"{g} (past the top rung, {amount(past)} each)"
    return "rung", name


def generation_stats(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per generation: evaluations, ok ones, best and median FID of the ok ones, best FID so far."""
    gens = sorted({int(r.get("generation", 0)) for r in records})
    out, best_so_far = [], math.inf
    for g in gens:
        rs = [r for r in records if int(r.get("generation", 0)) == g]
        fits = [fitness_of(r) for r in rs if math.isfinite(fitness_of(r))]
        best = min(fits) if fits else math.inf
        best_so_far = min(best_so_far, best)
        out.append({"generation": g, "evaluations": len(rs), "ok": len(fits), "best": best,
                    "median": statistics.median(fits) if fits else math.inf, "best_so_far": best_so_far})
    return out


def pareto_front(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ok records not dominated in (FID, generator parameters), by increasing generator size."""
    from gan_nas.selection import non_dominated_fronts

    ok = [r for r in records if math.isfinite(fitness_of(r))]
    if not ok:
        return []
    pts = [(fitness_of(r), float(r.get("params", {}).get("g", 0))) for r in ok]
    front = non_dominated_fronts(pts)[0]
    return sorted((ok[i] for i in front), key=lambda r: (r["params"]["g"], fitness_of(r)))


def lineage(records: list[dict[str, Any]], cid: str) -> list[dict[str, Any]]:
    """The chain of first parents from the initial population to ``cid``, oldest first."""
    by_id = {r.get("id"): r for r in records}
    chain: list[dict[str, Any]] = []
    seen: set[str] = set()
    cur = by_id.get(cid)
    while cur is not None and cur["id"] not in seen:
        chain.append(cur)
        seen.add(cur["id"])
        parents = cur.get("parents") or []
        cur = by_id.get(parents[0]) if parents else None
    return chain[::-1]


def _figure(width: float = 6.4, height: float = 4.2):
    from matplotlib.figure import Figure  # a Figure with no pyplot state draws with Agg

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return safe_io.write_atomic(path, lambda tmp: fig.savefig(tmp, format="png"))


def plot_generations(stats: list[dict[str, Any]], path: Path, unit: str = "generation") -> Path:
    """Best and median FID of the ok candidates per generation (halving: per rung), and the best so far."""
    fig = _figure()
    ax = fig.add_subplot()
    x = [s["generation"] for s in stats]

    def y(key: str) -> list[float]:
        return [s[key] if math.isfinite(s[key]) else float("nan") for s in stats]

    ax.plot(x, y("median"), "o-", color="tab:gray", label=f"median of {unit}")
    ax.plot(x, y("best"), "o-", color="tab:blue", label=f"best of {unit}")
    ax.plot(x, y("best_so_far"), "--", color="tab:red", label="best so far")
    ax.set_xlabel(unit)
    ax.set_ylabel("FID (lower is better)")
    ax.set_xticks(x)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(f"FID per {unit}")
    return _save(fig, path)


def plot_size(records: list[dict[str, Any]], front: list[dict[str, Any]], best: dict[str, Any] | None,
              path: Path) -> Path:
    """FID against generator parameters for every ok candidate, the Pareto front, the best."""
    fig = _figure()
    ax = fig.add_subplot()
    ok = [r for r in records if math.isfinite(fitness_of(r))]
    if ok:
        sc = ax.scatter([r["params"]["g"] for r in ok], [fitness_of(r) for r in ok],
                        c=[r.get("generation", 0) for r in ok], cmap="viridis", s=28, alpha=0.8)
        from matplotlib.ticker import MaxNLocator

        fig.colorbar(sc, ax=ax, label="generation", ticks=MaxNLocator(integer=True))
    if front:
        ax.step([r["params"]["g"] for r in front], [fitness_of(r) for r in front], where="post",
                color="tab:red", lw=1.2, label="Pareto front")
        ax.scatter([r["params"]["g"] for r in front], [fitness_of(r) for r in front], s=70,
                   facecolors="none", edgecolors="tab:red")
    if best is not None and math.isfinite(fitness_of(best)):
        ax.scatter([best["params"]["g"]], [fitness_of(best)], marker="*", s=220, color="gold",
                   edgecolors="black", zorder=5, label=f"best ({best['id']})")
    ax.set_xscale("log")
    ax.set_xlabel("generator parameters")
    ax.set_ylabel("FID (lower is better)")
    ax.grid(alpha=0.3, which="both")
    if ax.get_legend_handles_labels()[0]:  # (a best without a finite FID has no marker to name)
        ax.legend()
    ax.set_title("FID against generator size")
    return _save(fig, path)


def plot_lineage(chain: list[dict[str, Any]], path: Path) -> Path:
    """FID of each ancestor of the best candidate, oldest first."""
    fig = _figure(max(6.4, 0.9 * len(chain)), 4.2)
    ax = fig.add_subplot()
    x = list(range(len(chain)))
    y = [fitness_of(r) if math.isfinite(fitness_of(r)) else float("nan") for r in chain]
    ax.plot(x, y, "o-", color="tab:blue")
    ax.set_xticks(x, [f"{r['id']}\ngen {r.get('generation', 0)}\n{r.get('kind', '')}" for r in chain],
                  fontsize=8)
    ax.set_ylabel("FID (lower is better)")
    ax.grid(alpha=0.3)
    ax.set_title("lineage of the best candidate")
    return _save(fig, path)


def _reference_text(records: list[dict[str, Any]]) -> str:
    """How many real images each score was measured against, as the journal's scores record it."""
    sizes = {(r.get("metrics") or {}).get("n_reference") for r in records} - {None}
    if not sizes:
        return "size not journaled (a run from before n_reference was recorded)"
    small = min(sizes) < SMALL_REFERENCE
    return (f"{', '.join(f'{n:,}' for n in sorted(sizes))} real validation images"
            + (f" (fewer than {SMALL_REFERENCE:,}: FID is biased upwards at this size; quote KID, which is not)"
               if small else ""))


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}" if math.isfinite(v) else "inf"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _candidate_rows(records: list[dict[str, Any]]) -> list[str]:
    lines = [_row(["id", "generation", "kind", "parents", "status", "FID", "KID", "G params", "D params",
                   "steps (lineage)", "seconds"]),
             "|---|---:|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in records:
        m = r.get("metrics") or {}
        p = r.get("params") or {}
        lines.append(_row([
            r.get("id"), r.get("generation"), r.get("kind", ""), ", ".join(r.get("parents") or []) or "-",
            r.get("status"), _fmt(fitness_of(r)), _fmt(m.get("kid"), 4), _fmt(p.get("g")), _fmt(p.get("d")),
            _fmt(r.get("total_steps", r.get("steps"))), _fmt((r.get("seconds") or {}).get("total"), 1),
        ]))
    return lines


def _check_report_outputs(path: Path, plots: Path) -> None:
    """Raise RunDirError if report.md or a plot of it cannot be written as a file (a directory, a FIFO,
    ``report/`` a file), before anything is written: report.md a directory had every plot rewritten
    and then failed."""
    for p in (path, plots / "fid_generations.png", plots / "fid_vs_size.png", plots / "lineage.png"):
        if os.path.lexists(p) and not p.is_file():
            raise RunDirError(f"{p} exists and is not a regular file; move it away and run report again")
    if os.path.lexists(plots) and not plots.is_dir():
        raise RunDirError(f"{plots} is not a folder (report's plots go there); move it away and run report again")


def report(run_dir: str | Path) -> Path:
    """Write ``RUN_DIR/report.md`` and its plots (``RUN_DIR/report/*.png``) from the journal.

    Works on a finished search and on one still running (it reads what is on
    record). Failed candidates count in the tallies, not in the FID plots.

    Args:
        run_dir: the run directory.

    Returns:
        The path of report.md.

    Raises:
        RunDirError: missing or damaged run directory (config, journal, state), or no evaluations yet.
    """
    from gan_nas import builder
    from gan_nas.genome import GanGenome

    store, cfg = open_run(run_dir)
    records = store.journal()
    if not records:
        raise RunDirError(f"{store.root} has no finished evaluations yet ({store.journal_path} is empty); "
                          "run or resume the search first")
    for i, r in enumerate(records, start=1):
        if not isinstance(r.get("id"), str) or "status" not in r:
            raise RunDirError(f"{store.journal_path}: record {i} has no id or status; repair or delete that line")
    state = store.read_state() or {}
    root = store.root
    plots = root / PLOTS_DIR
    _check_report_outputs(root / REPORT_FILE, plots)  # before any plot is written: bad input changes nothing
    best = best_record(store, records)
    stats = generation_stats(records)
    front = pareto_front(records)
    chain = lineage(records, best["id"]) if best else []

    unit, unit_name = _generation_unit(cfg)
    files = {"generations": plot_generations(stats, plots / "fid_generations.png", unit),
             "size": plot_size(records, front, best, plots / "fid_vs_size.png")}
    if chain:
        files["lineage"] = plot_lineage(chain, plots / "lineage.png")

    def rel(p: Path) -> str:
        return p.relative_to(root).as_posix()

    statuses: dict[str, int] = {}
    for r in records:
        statuses[r.get("status", "?")] = statuses.get(r.get("status", "?"), 0) + 1
    seconds = seconds_of(records)
    s = cfg.search
    if s.strategy == "halving":
        h = cfg.halving
        rungs = (f"{'/'.join(f'{n * h.seconds_per_step:g}' for n in h.rung_steps())} seconds of training"
                 if h.seconds_per_step > 0 else f"{'/'.join(map(str, h.rung_steps()))} steps")
        budget = (f"rungs of {rungs} in all, "
                  f"the best 1/{h.eta} promoted, new candidates from {h.sampler}"
                  + (f", {h.leader_share:g} of the clock the leader's (a lineage judged and continued "
                     f"on its {'best snapshot' if h.leader_snapshot == 'best' else 'latest trial'})"
                     if h.leader_share > 0 else ""))
    else:
        budget = f"{cfg.training.steps} steps per new evaluation"
    lines = [
        f"# Search report: {root.name}", "",
        f"- dataset: `{cfg.data.dataset}`; strategy {s.strategy}, objective {s.objective}; "
        f"population {s.population}, offspring {s.offspring}, generations {s.generations}; "
        f"{budget}, seed {cfg.run.seed}",
        f"- progress: {unit} {(state.get('strategy') or state).get('generation', stats[-1]['generation'])}, "
        + ("finished" if state.get("done") else f"stopped ({state['stopped']})" if state.get("stopped")
           else "not finished (running, or stopped without a record)"),
        f"- evaluations: {len(records)} (" + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())) + ")",
        f"- compute: {seconds:,.1f} s in candidates (sum of seconds.total); "
        f"search wall time {float(state.get('elapsed', 0.0)):,.1f} s",
        f"- FID: on n={cfg.fitness.n_search} samples per candidate (noise seed {cfg.fitness.noise_seed}) against "
        "the validation split, which the search selects on (`gan-nas compare` reports on the test split, with "
        f"noise seed {cfg.fitness.report_noise_seed}); compare FIDs only at equal n",
        f"- reference: {_reference_text(records)}; features: "
        + ("the dataset's classifier (labels)" if cfg.fitness.features == "classifier" else
           "self-supervised rotation network (no labels)" if cfg.fitness.features == "self" else
           "auto (the classifier where the dataset has labels, else self-supervised)"),
    ]
    if best is not None:
        lines.append(f"- best: **{best['id']}**, FID {_fmt(fitness_of(best))}, "
                     f"G {_fmt(best['params']['g'])} / D {_fmt(best['params']['d'])} parameters, "
                     f"{_fmt(best.get('total_steps'))} steps along its lineage")
        quality = [(k, (best.get("metrics") or {}).get(k)) for k in QUALITY_KEYS]
        if any(v is not None for _, v in quality):
            lines.append("- best's fidelity and diversity (validation split): " + ", ".join(
                f"{k.replace('_', ' ')} {_fmt(v, 3)}" for k, v in quality if v is not None))
    by_id = {r["id"]: r for r in records}
    for r in records:
        if r.get("kind") == "final" and r.get("parents") and r["parents"][0] in by_id:
            p = by_id[r["parents"][0]]
            lines.append(f"- final training: {p['id']} (FID {_fmt(fitness_of(p))}, {_fmt(p.get('total_steps'))} steps) "
                         f"trained {float((r.get('seconds') or {}).get('train', 0.0)):,.0f} s more as {r['id']}: "
                         f"FID {_fmt(fitness_of(r))}, {_fmt(r.get('total_steps'))} steps ({r.get('status')})")
    if (root / "compare.md").is_file():
        lines.append("- against the DCGAN at equal compute: see [compare.md](compare.md)")
    lines += ["", f"## FID per {unit}", "", f"![FID per {unit}]({rel(files['generations'])})", "",
              _row([unit, "evaluations", "ok", "best FID", "median FID", "best so far"]),
              "|---:|---:|---:|---:|---:|---:|"]
    for st in stats:
        lines.append(_row([unit_name(st["generation"]), st["evaluations"], st["ok"], _fmt(st["best"]), _fmt(st["median"]),
                           _fmt(st["best_so_far"])]))
    lines += ["", "## FID against generator size", "", f"![FID against generator size]({rel(files['size'])})", "",
              "Pareto front (no other candidate is both smaller and better):", "", *_candidate_rows(front)]
    lines += ["", "## Lineage of the best candidate", ""]
    if chain:
        lines += [f"![lineage]({rel(files['lineage'])})", "",
                  "First parents from the initial population to the best (a `continue` is the same genome "
                  "trained further; `inherited` counts layers whose weights came from the parent).", "",
                  _row(["id", "generation", "kind", "parents", "FID", "G params", "D params",
                        "steps (lineage)", "inherited G/D"]),
                  "|---|---:|---|---|---:|---:|---:|---:|---|"]
        for r in chain:
            inh = r.get("inherited") or {}
            lines.append(_row([r["id"], r.get("generation"), r.get("kind", ""),
                               ", ".join(r.get("parents") or []) or "-", _fmt(fitness_of(r)),
                               _fmt(r["params"].get("g")), _fmt(r["params"].get("d")),
                               _fmt(r.get("total_steps")), f"{inh.get('g', 0)}/{inh.get('d', 0)}"]))
    else:
        lines.append("No candidate has a finite FID yet.")
    lines += ["", "## Best genome", ""]
    if best is not None:
        try:
            text = builder.describe(GanGenome.from_dict(best["genome"]), image_shape(cfg))
        except (GanNasError, KeyError, TypeError) as e:
            text = f"(cannot describe the genome: {e})"
        lines += [f"Candidate {best['id']} (its genome is also in `best/genome.json`):", "", "```", text, "```"]
    else:
        lines.append("No candidate has a finite FID yet.")
    hof = [r for i in state.get("hall_of_fame", []) for r in records if r.get("id") == i]
    if hof:
        lines += ["", "## Hall of fame", "", *_candidate_rows(hof)]
    grids = sorted(store.samples_dir.glob("gen*.png")) if store.samples_dir.is_dir() else []
    lines += ["", "## Samples across generations", ""]
    if grids:
        lines.append("The best candidate so far after each generation, on the fixed scoring noise:")
        for g in grids:
            lines += ["", f"**{g.stem}**", "", f"![{g.stem}]({rel(g)})"]
    else:
        lines.append("No sample grids yet (one is written after each generation).")
    lines += ["", "## All evaluations", "", *_candidate_rows(records), ""]

    return safe_io.write_bytes_atomic(root / REPORT_FILE, "\n".join(lines).encode())


__all__ = ["generate", "report", "generation_stats", "pareto_front", "lineage"]
