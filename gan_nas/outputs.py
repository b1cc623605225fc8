"""What a search shows and leaves behind as it goes, called by the scheduler: a line per finished trial
under a progress bar, a line, TensorBoard scalars and a grid of the best per generation (or cycle), and
``best/`` whenever the best changes. Nothing here decides anything."""

from __future__ import annotations

import json
import math
import statistics
import sys
from pathlib import Path

from gan_nas.genome import GanGenome
from gan_nas.selection import fitness_of
from gan_nas.strategy import Milestone, Record


def trial_line(r: Record) -> str:
    """One finished trial: id, generation, kind, status, FID, parameters, seconds (and its error)."""
    fid = "inf" if r.get("fitness") is None else f"{r['fitness']:.2f}"
    secs = r.get("seconds", {}).get("total", 0.0)
    extra = f" ({r['error']})" if r.get("error") and r.get("status") != "ok" else ""
    return (f"{r['id']} gen {r['generation']} {r['kind']:<8} {r['status']:<8} fid {fid:>8} "
            f"G {r['params'].get('g', 0):>9,} D {r['params'].get('d', 0):>9,} {secs:6.1f}s{extra}")


class Outputs:
    """The search's terminal output, TensorBoard scalars, grids and ``best/`` of one run directory."""

    def __init__(self, store, cfg, shape: tuple[int, int, int], console=None, quiet: bool = False) -> None:
        self.store = store
        self.cfg = cfg
        self.shape = shape
        self.console = console
        self.quiet = quiet  # no progress lines (warnings and errors are printed where they arise)
        self._bar = None
        self._job = None

    def log(self, line: str) -> None:
        if self.quiet:
            return
        if self.console is not None:
            self.console.print(line, highlight=False, soft_wrap=True)  # a long line stays one line
        else:
            print(line, file=sys.stderr, flush=True)

    # -- the progress bar
    def __enter__(self) -> Outputs:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        self._bar = Progress(*columns, console=self.console, transient=False, disable=self.console is None)
        self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
            self._bar = self._job = None

    def progress(self, label: str, done: int, total: int) -> None:
        """Show ``done`` of ``total`` for ``label`` (a new label starts a new bar)."""
        if self._bar is None:
            return
        if self._job is None or self._bar.tasks[self._job].description != label:
            self._job = self._bar.add_task(label, total=total)
        self._bar.update(self._job, completed=done, total=total)

    # -- per trial, per milestone
    def trial(self, r: Record) -> None:
        self.log(trial_line(r))

    def milestone(self, m: Milestone, best: Record | None) -> None:
        """A generation ended: its line, TensorBoard's best and median FID, a grid of the best so far."""
        fits = [fitness_of(r) for r in m.population if math.isfinite(fitness_of(r))]
        if fits:
            self.log(f"generation {m.generation}: best fid {min(fits):.2f}, median {statistics.median(fits):.2f}"
                     f", best ever {best['id'] if best else '-'} ({fitness_of(best) if best else math.inf:.2f})")
        self.tensorboard(m, fits)
        if best is not None:
            self.grid(m.generation, best)

    def tensorboard(self, m: Milestone, fits: list[float]) -> None:
        import tensorflow as tf

        writer = tf.summary.create_file_writer(str(self.store.tb_dir))
        with writer.as_default(step=m.generation):
            if fits:
                tf.summary.scalar("fid/best", min(fits))
                tf.summary.scalar("fid/median", statistics.median(fits))
            ok = [r for r in m.population if math.isfinite(fitness_of(r))]
            if ok:
                tf.summary.scalar("params/generator_of_best", min(ok, key=fitness_of)["params"]["g"])
                tf.summary.scalar("params/generator_median", statistics.median(r["params"]["g"] for r in ok))
        writer.flush()
        writer.close()

    def grid(self, generation: int, best: Record) -> None:
        from gan_nas import gan, images

        gen = gan.load_generator(GanGenome.from_dict(best["genome"]), self.store.candidate_dir(best["id"]),
                                 self.shape)
        grid = images.grid(images.sample(gen, 64, seed=self.cfg.fitness.noise_seed), cols=8)
        images.save_png(grid, self.store.samples_dir / f"gen{generation:03d}.png", scale=2)

    def publish_best(self, r: Record) -> None:
        publish_best(self.store, r, self.shape)


def publish_best(store, r: Record, shape: tuple[int, int, int]) -> None:
    """``best/`` of ``store`` from trial record ``r``: the genome, the record and the generator in plain
    Keras, swapped in whole (a search's best, or the DCGAN baseline's last checkpoint)."""
    from gan_nas import gan

    genome = GanGenome.from_dict(r["genome"])
    ckpt = store.candidate_dir(r["id"])

    def fill(d: Path) -> None:
        (d / "genome.json").write_text(genome.to_json())
        (d / "candidate.json").write_text(json.dumps({k: r[k] for k in r if k != "genome"}, indent=2))
        gan.export_generator(genome, ckpt, shape, d / "generator.keras")

    store.publish_best(fill)
