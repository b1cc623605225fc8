"""The ``gan-nas`` command line: flags, then one call into the library.

Every command exits 0 on success and 2 on bad input, with one line
``error: ...`` on stderr. ``--json`` prints the result as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from gan_nas.errors import GanNasError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's start-up chatter off the terminal


def _emit(result: dict[str, Any], as_json: bool, text: Callable[[dict[str, Any]], str] | None = None) -> None:
    if as_json:
        print(json.dumps(result, sort_keys=True))
    elif text is not None:
        print(text(result))
    else:
        for k, v in result.items():
            print(f"{k}: {v}")


def cmd_data(args: argparse.Namespace) -> int:
    from gan_nas import data

    ds = data.load(args.dataset, args.data_dir, image_size=args.image_size, channels=args.channels)
    _emit(ds.describe(), args.json)
    return 0


def cmd_fid(args: argparse.Namespace) -> int:
    from gan_nas import config, data, fitness

    cfg = config.load(args.config)
    ds = data.load(args.dataset, args.data_dir, image_size=cfg.data.image_size, channels=cfg.data.channels)
    result = fitness.score_file(ds, args.samples, cfg.fitness)
    _emit(result, args.json)
    return 0


def cmd_genome(args: argparse.Namespace) -> int:
    from gan_nas import builder, data, genome

    shape = tuple(data.REGISTRY[args.dataset].shape) if args.dataset in data.REGISTRY else None
    if shape is None:
        raise GanNasError(f"--dataset must be one of {', '.join(data.REGISTRY)} to fix the image shape")
    g = genome.load_genome(args.source, shape)
    if args.json:
        print(g.to_json())
    else:
        print(builder.describe(g, shape))
    return 0


def _config(args: argparse.Namespace):
    from gan_nas import config

    return config.override(config.load(args.config), args.set or [])


def cmd_search(args: argparse.Namespace) -> int:
    from gan_nas import evolution

    if args.resume:
        if not args.run_dir:
            raise GanNasError("--resume needs --run-dir DIR (the run to continue)")
        if args.set:
            raise GanNasError("--resume continues a run with its own config.json; --set is not allowed")
        cfg = None
    else:
        cfg = _config(args)
    run_dir = args.run_dir or (cfg.run.run_dir if cfg else None)
    if not run_dir:
        raise GanNasError("give --run-dir DIR (or run.run_dir in the config)")
    summary = evolution.search(cfg, run_dir, resume=args.resume, quiet=args.quiet)
    _emit(summary, args.json)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gan-nas", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("data", help="load and describe a dataset")
    d.add_argument("--dataset", required=True, help="mnist, fashion_mnist, cifar10, folder:PATH or npz:PATH")
    d.add_argument("--data-dir", help="folder with the dataset's original files")
    d.add_argument("--image-size", type=int, default=28, help="square size for folder: datasets")
    d.add_argument("--channels", type=int, choices=(1, 3), default=1, help="channels for folder: datasets")
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
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except GanNasError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
