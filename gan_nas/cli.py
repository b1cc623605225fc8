"""The ``gan-nas`` command line: flags, then one call into the library.

Every command exits 0 on success and 2 on bad input, with one line
``error: ...`` on stderr. ``--json`` prints the result as one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TextIO

from gan_nas import runtime
from gan_nas.errors import GanNasError
from gan_nas.interrupt import Interrupted
from gan_nas.store import json_safe

runtime.quiet_environment()  # before anything imports TensorFlow; workers inherit it


def _threads_for(args: argparse.Namespace) -> int:
    """``run.threads`` of the config a command will train under in this process (0: TensorFlow's default).

    TensorFlow reads its thread counts once, when its runtime starts, which happens
    on import here; so a serial search, a baseline and compare (which trains one)
    look at their config first. A config that cannot be read gives 0: the command
    itself then reports the problem.
    """
    from gan_nas import config, safe_io

    try:
        if args.command == "search":
            cfg = (config.override(config.Config.from_json(safe_io.read_text(Path(args.run_dir) / "config.json")),
                                   args.set or [])
                   if args.resume and args.run_dir else _config(args))
            return cfg.run.threads if cfg.run.executor == "serial" else 0
        if args.command == "baseline" and (args.config or args.set):
            return _config(args).run.threads
        if args.command in ("baseline", "compare"):
            return config.Config.from_json(safe_io.read_text(Path(args.run_dir) / "config.json")).run.threads
    except (GanNasError, OSError, ValueError, KeyError, TypeError):
        return 0
    return 0


_JSON_OUT: TextIO | None = None  # the real stdout while a --json command runs (None: sys.stdout)


def _emit(result: dict[str, Any], as_json: bool, text: Callable[[dict[str, Any]], str] | None = None) -> None:
    if as_json:
        print(json.dumps(json_safe(result), sort_keys=True, allow_nan=False), file=_JSON_OUT, flush=True)
    elif text is not None:
        print(text(result))
    else:
        for k, v in result.items():
            print(f"{k}: {v}")


def cmd_data(args: argparse.Namespace) -> int:
    from gan_nas import data

    ds = data.load(args.dataset, args.data_dir, image_size=args.image_size, channels=args.channels,
                   background=args.background)
    _emit(ds.describe(), args.json)
    return 0


def cmd_fid(args: argparse.Namespace) -> int:
    from gan_nas import config, data, fitness

    cfg = config.load(args.config)
    ds = data.load(args.dataset, args.data_dir, image_size=cfg.data.image_size, channels=cfg.data.channels,
                   background=cfg.data.background)
    result = fitness.score_file(ds, args.samples, cfg.fitness)
    _emit(result, args.json)
    return 0


def cmd_genome(args: argparse.Namespace) -> int:
    from gan_nas import builder, data, runs

    shape = tuple(data.REGISTRY[args.dataset].shape) if args.dataset in data.REGISTRY else None
    if shape is None:
        raise GanNasError(f"--dataset must be one of {', '.join(data.REGISTRY)} to fix the image shape")
    g = runs.load_genome(args.source, shape)

    if args.json:  # stdout is redirected to stderr while a --json command runs: write to the real one
        print(g.to_json(), file=_JSON_OUT or sys.stdout, flush=True)
    else:
        print(builder.describe(g, shape))
    return 0


def _config(args: argparse.Namespace):
    from gan_nas import config

    return config.override(config.load(args.config), args.set or [])


def cmd_search(args: argparse.Namespace) -> int:
    from gan_nas import search

    if args.resume:
        if not args.run_dir:
            raise GanNasError("--resume needs --run-dir DIR (the run to continue)")
        if args.config:
            raise GanNasError("--resume continues a run with its own config.json; drop --config "
                              "(--set may still raise search.wall_clock_seconds or change run.*)")
        cfg = None
    else:
        cfg = _config(args)
    run_dir = args.run_dir or (cfg.run.run_dir if cfg else None)
    if not run_dir:
        raise GanNasError("give --run-dir DIR (or run.run_dir in the config)")
    summary = search.search(cfg, run_dir, resume=args.resume, quiet=args.quiet,
                            resume_set=(args.set or []) if args.resume else None)
    _emit(summary, args.json)
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from gan_nas import report

    result = report.generate(args.run_dir, args.out, n=args.n, seed=args.seed, candidate=args.candidate,
                             npz=args.npz, interpolate=args.interpolate, scale=args.scale)
    _emit(result, args.json)
    return 0


def cmd_baseline(args: argparse.Namespace) -> int:
    from gan_nas import baseline_run

    cfg = _config(args) if args.config or args.set else None  # None: continue DIR with its own config
    result = baseline_run.train_baseline(cfg, args.run_dir, seconds=args.seconds, steps=args.steps, quiet=args.quiet)
    _emit(result, args.json)
    return 0


def _compare_text(r: dict[str, Any]) -> str:
    from gan_nas.compare import COLLAPSE_RECALL, SPEED_TOLERANCE, low_diversity

    def f(v: Any) -> str:
        return "inf" if v is None else f"{v:.2f}"

    lines = [f"{row['model']:<24} FID {f(row['fid']):>8}  steps {row['steps']:>8,}  seconds {row['seconds']:>9,.1f}"
             for row in r["rows"]]
    ratio = r["fid_ratio"]
    lines.append(f"FID ratio searched/DCGAN: {f(ratio['equal_seconds'])} at equal seconds, "
                 f"{f(ratio['equal_steps'])} at equal steps")
    if len(r["baseline_runs"]["seeds"]) > 1:
        lines.append(f"FID ratio searched/mean of the {len(r['baseline_runs']['seeds'])} DCGANs at equal seconds: "
                     f"{f(ratio['equal_seconds_mean'])}")
    sp = r["dcgan_steps_per_second"]
    if sp["ratio"] is not None and abs(sp["ratio"] - 1) > SPEED_TOLERANCE:
        lines.append(f"warning: the DCGAN trained {sp['ratio']:.2f}x as fast here as inside the search (the machine "
                     f"was not as fast for both), so equal seconds were not equal compute")
    lines += [f"warning: {row['model']} has recall {row['recall']:.3f} (below {COLLAPSE_RECALL}): it draws little "
              "of the real images' variety, which FID can miss (compare.md)" for row in low_diversity(r)]
    lines.append(f"wrote {Path(r['run_dir']) / r['files']['markdown']}")
    return "\n".join(lines)


def cmd_compare(args: argparse.Namespace) -> int:
    from gan_nas import compare

    result = compare.compare(args.run_dir, baseline_dir=args.baseline_dir, quiet=args.quiet,
                             baseline_runs=args.baseline_runs)
    _emit(result, args.json, _compare_text)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from gan_nas import report

    path = report.report(args.run_dir)
    _emit({"report": str(path)}, args.json, lambda r: f"wrote {r['report']}")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors in gan-nas's form: one ``error:`` line on stderr, exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="gan-nas", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("data", help="load and describe a dataset")
    d.add_argument("--dataset", required=True, help="mnist, fashion_mnist, cifar10, folder:PATH or npz:PATH")
    d.add_argument("--data-dir", help="folder with the dataset's original files")
    d.add_argument("--image-size", type=int, default=28, help="square size for folder: datasets")
    d.add_argument("--channels", type=int, choices=(1, 3), default=1, help="channels for folder: datasets")
    d.add_argument("--background", default="white",
                   help="colour that transparency in folder: images is composited onto: white (default), black, "
                        "gray or #rrggbb")
    d.add_argument("--json", action="store_true", help="print one JSON object")
    d.set_defaults(func=cmd_data)

    f = sub.add_parser("fid", help="score a set of images (FID, KID) against a dataset's test split")
    f.add_argument("--dataset", required=True)
    f.add_argument("--data-dir")
    f.add_argument("--samples", required=True, help=".npz with an 'images' array (N,H,W,C uint8) or a folder")
    f.add_argument("--config", help="TOML config (fitness and data sections)")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=cmd_fid)

    g = sub.add_parser("genome", help="show a genome as JSON or as a table with parameter counts")
    g.add_argument("source", help="'dcgan', a genome .json file, a run directory or RUN_DIR/candidates/ID")
    g.add_argument("--dataset", default="mnist", help="fixes the image shape (mnist, fashion_mnist, cifar10)")
    g.add_argument("--json", action="store_true", help="print the genome as JSON")
    g.set_defaults(func=cmd_genome)

    s = sub.add_parser("search", help="run an architecture search (or --resume a stopped one)")
    s.add_argument("--config", help="TOML config file (defaults where absent)")
    s.add_argument("--run-dir", help="run directory to create (or to resume)")
    s.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override a config value")
    s.add_argument("--resume", action="store_true", help="continue the search in --run-dir")
    s.add_argument("--quiet", action="store_true", help="no progress output")
    s.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    s.set_defaults(func=cmd_search)

    gen = sub.add_parser("generate", help="image grid (and raw samples) from the best or a named candidate")
    gen.add_argument("run_dir", metavar="RUN_DIR", help="a search (or baseline) run directory")
    gen.add_argument("--out", required=True, help="PNG grid to write")
    gen.add_argument("--n", type=int, default=64,
                     help="number of samples, 1 to 50,000 (default 64); the PNG grid shows the first 1,024, "
                          "--npz gets all")
    gen.add_argument("--seed", type=int, help="latent noise seed (default: the run's fitness.noise_seed)")
    gen.add_argument("--candidate", metavar="ID", help="a candidate id (c0007) instead of best/")
    gen.add_argument("--npz", metavar="FILE", help="also write the samples, 'images' (N,H,W,C) uint8, for gan-nas fid")
    gen.add_argument("--interpolate", metavar="FILE.png", help="also write a latent interpolation sheet")
    gen.add_argument("--scale", type=int, default=2, help="integer upscaling of the PNGs (default 2)")
    gen.add_argument("--json", action="store_true", help="print the result as one JSON object")
    gen.set_defaults(func=cmd_generate)

    b = sub.add_parser("baseline", help="train (or continue) the DCGAN baseline and score it")
    b.add_argument("--config", help="TOML config file (needed to start; omit to continue DIR as it is)")
    b.add_argument("--run-dir", required=True, help="baseline directory to create or continue")
    b.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override a config value")
    budget = b.add_mutually_exclusive_group(required=True)
    budget.add_argument("--seconds", type=float, help="total training seconds to reach (over all invocations)")
    budget.add_argument("--steps", type=int, help="total generator steps to reach (over all invocations)")
    b.add_argument("--quiet", action="store_true", help="no progress output")
    b.add_argument("--json", action="store_true", help="print the result as one JSON object")
    b.set_defaults(func=cmd_baseline)

    c = sub.add_parser("compare", help="the searched best against the DCGAN at equal compute")
    c.add_argument("run_dir", metavar="RUN_DIR", help="a search run directory")
    c.add_argument("--baseline-dir", help="equal-seconds DCGAN directory (default RUN_DIR/baseline; reused "
                                          "if it has trained long enough, else continued)")
    c.add_argument("--baseline-runs", type=int, default=1, metavar="K",
                   help="train the equal-seconds DCGAN K times, on run.seed, run.seed + 1, ... (the others in "
                        "BASELINE_DIR-seedN), and give the ratio to their mean too (default 1)")
    c.add_argument("--quiet", action="store_true", help="no progress output")
    c.add_argument("--json", action="store_true", help="print the result as one JSON object")
    c.set_defaults(func=cmd_compare)

    r = sub.add_parser("report", help="write RUN_DIR/report.md with plots")
    r.add_argument("run_dir", metavar="RUN_DIR", help="a search run directory")
    r.add_argument("--json", action="store_true", help="print the result as one JSON object")
    r.set_defaults(func=cmd_report)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        if args.command != "data":
            runtime.start_tensorflow(_threads_for(args))
        if not getattr(args, "json", False):
            return int(args.func(args))
        # --json: stdout holds the one JSON object and nothing else; whatever a library
        # prints while the command runs (Ray relays its workers' and raylet's lines to
        # stdout) goes to stderr.
        global _JSON_OUT
        _JSON_OUT = sys.stdout
        try:
            with contextlib.redirect_stdout(sys.stderr):
                return int(args.func(args))
        finally:
            _JSON_OUT = None
    except GanNasError as e:  # one line, whatever a library's message it quotes spans (numpy's span three)
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except OSError as e:  # the file system refused a path the user gave (too long a name, a file as a folder)
        target = e.filename2 or e.filename  # a rename's destination, else the one path
        where = f"{target}: " if target else ""
        print(f"error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except Interrupted as e:  # SIGINT or SIGTERM, acted on at a safe point: 130 or 143, as a shell reports them
        print(f"error: interrupted by {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
