"""The command line's JSON output stays valid JSON when a score is not finite."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from gan_nas import config
from gan_nas.cli import _emit


def test_json_output_maps_non_finite_floats_to_null(capsys) -> None:
    _emit({"fid": float("inf"), "kid": float("nan"), "rows": [{"fid": float("-inf")}, {"fid": 1.5}]}, True)
    out = capsys.readouterr().out
    assert json.loads(out) == {"fid": None, "kid": None, "rows": [{"fid": None}, {"fid": 1.5}]}
    assert "Infinity" not in out and "NaN" not in out


def test_threads_come_from_the_config_a_command_trains_under(tmp_path) -> None:
    from gan_nas.cli import _threads_for, build_parser

    parse = build_parser().parse_args
    quick = str(Path(__file__).resolve().parent.parent / "experiments" / "bench_search.toml")  # a process pool
    assert _threads_for(parse(["search", "--config", quick, "--set", "run.threads=1",
                               "--set", "run.executor=serial"])) == 1
    assert _threads_for(parse(["search", "--config", quick])) == 0  # its process workers set their own
    assert _threads_for(parse(["search", "--config", quick, "--set", "run.threads=1",
                               "--set", "run.executor=process"])) == 0  # workers set their own
    (tmp_path / "config.json").write_text(config.override(config.load(quick), ["run.threads=3", "run.executor=serial"]).to_json())
    assert _threads_for(parse(["compare", str(tmp_path)])) == 3
    assert _threads_for(parse(["search", "--resume", "--run-dir", str(tmp_path)])) == 3
    assert _threads_for(parse(["search", "--resume", "--run-dir", str(tmp_path), "--set", "run.threads=2"])) == 2
    assert _threads_for(parse(["compare", str(tmp_path / "missing")])) == 0  # compare itself reports it


def test_thread_limit_reaches_tensorflow() -> None:
    code = ("from gan_nas import cli; cli.runtime.start_tensorflow(1); import tensorflow as tf; "
            "print(tf.config.threading.get_intra_op_parallelism_threads())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split()[-1] == "1"


def test_json_stdout_holds_only_the_object(monkeypatch, capsys) -> None:
    """Library prints during a --json command go to stderr; stdout parses as one JSON object."""
    import gan_nas.cli as cli

    def noisy(args) -> int:
        print("(raylet) a line a library prints")
        cli._emit({"ok": True}, args.json)
        return 0

    parser = cli.build_parser()
    args = parser.parse_args(["data", "--dataset", "mnist", "--json"])
    args.func = noisy
    monkeypatch.setattr(parser, "parse_args", lambda argv: args)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    assert cli.main([]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == {"ok": True}
    assert "raylet" in err


def test_genome_json_goes_to_stdout(capsys) -> None:
    from gan_nas import cli
    from gan_nas.baseline import dcgan
    from gan_nas.genome import GanGenome

    assert cli.main(["genome", "dcgan", "--json"]) == 0
    out, err = capsys.readouterr()
    assert GanGenome.from_json(out) == dcgan((28, 28, 1)) and err == ""


def test_a_path_the_file_system_refuses_is_one_error_line(tmp_path, capsys) -> None:
    from gan_nas import cli

    too_long = tmp_path / ("x" * 300 + ".json")  # NAME_MAX is 255: the OS refuses even to look it up
    assert cli.main(["genome", str(too_long)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "name too long" in err[0], err
