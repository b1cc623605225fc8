"""Config: TOML loading, dotted overrides good and bad, JSON round trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from gan_nas import config
from gan_nas.errors import ConfigError


def test_defaults_round_trip_json():
    cfg = config.load(None)
    again = config.Config.from_json(cfg.to_json())
    assert again == cfg


def test_toml_and_overrides(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[data]\ndataset = "mnist"\n[search]\ngenerations = 2\nwall_clock_seconds = 60\n')
    cfg = config.load(p)
    assert cfg.data.dataset == "mnist" and cfg.search.generations == 2
    assert cfg.search.wall_clock_seconds == 60.0 and isinstance(cfg.search.wall_clock_seconds, float)
    cfg = config.override(cfg, [
        "search.generations=7", "run.executor=ray", "training.mixed_precision=true",
        "data.dataset=folder:/tmp/x y", "space.latent_sizes=[32, 64]", "search.crossover_rate=0.5",
        "run.ray_address=127.0.0.1:6379",
    ])
    assert cfg.search.generations == 7 and cfg.run.executor == "ray" and cfg.training.mixed_precision is True
    assert cfg.data.dataset == "folder:/tmp/x y" and cfg.space.latent_sizes == [32, 64]
    assert cfg.run.ray_address == "127.0.0.1:6379"
    assert config.Config.from_json(cfg.to_json()) == cfg


def test_evolution_settings_of_older_configs_move_to_their_table(tmp_path):
    p = tmp_path / "old.toml"
    p.write_text("[search]\ntournament = 2\nseed_baseline = false\n")  # as configs before [evolution] had them
    cfg = config.load(p)
    assert cfg.evolution.tournament == 2 and cfg.evolution.seed_baseline is False
    assert "tournament" not in cfg.to_dict()["search"]
    p.write_text("[search]\ntournament = 2\n[evolution]\ntournament = 3\n")
    with pytest.raises(ConfigError, match=r"search.tournament is now evolution.tournament; set it in \[evolution\] only"):
        config.load(p)


@pytest.mark.parametrize(
    "assignment, match",
    [
        ("search.generationz=3", r"unknown config key search.generationz"),
        ("serch.generations=3", r"unknown config section 'serch'"),
        ("search.generations=three", r"search.generations must be an integer"),
        ("search.generations=2.5", r"search.generations must be an integer"),
        ("training.mixed_precision=1", r'training.mixed_precision must be one of true, false, "auto", got 1'),
        ("run.executor=gpu", r'run.executor must be one of "serial", "process", "ray", got \'gpu\''),
        ("search.population=0", r"search.population must be positive"),
        ("evolution.crossover_rate=1.5", r"evolution.crossover_rate must be within \[0, 1\]"),
        ("search.crossover_rate=1.5", r"evolution.crossover_rate must be within \[0, 1\]"),  # its old home
        ("evolution.aging_sample=0", r"evolution.aging_sample must be positive"),
        ("generations=3", r"the key must be section.key"),
        ("search.generations", r"must look like section.key=value"),
        ("space.latent_sizes=[1, 'a']", r"space.latent_sizes must be an integer"),
        ("training.max_seconds=nan", r"training.max_seconds must be a finite number, got nan"),
        ("search.wall_clock_seconds=nan", r"search.wall_clock_seconds must be a finite number"),
        ("search.final_seconds=inf", r"search.final_seconds must be a finite number, got inf"),
        ("evolution.mutation_rate=-inf", r"evolution.mutation_rate must be a finite number"),
        ("fitness.n_search=100000000000", r"fitness.n_search must be at most 100,000"),
        ("fitness.n_report=100001", r"fitness.n_report must be at most 100,000"),
        ("data.image_size=0", r"data.image_size must be positive, got 0"),
        ("data.image_size=-3", r"data.image_size must be positive, got -3"),
        ("data.image_size=2", r"image size must be a whole number of pixels from 4 to 1024 .*got 2"),
        ("data.image_size=100000", r"from 4 to 1024"),
    ],
)
def test_bad_overrides(assignment, match):
    with pytest.raises(ConfigError, match=match):
        config.override(config.load(None), [assignment])


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[search\ngenerations = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[searchy]\ngenerations = 1\n")
    with pytest.raises(ConfigError, match=r"unknown config section \[searchy\]"):
        config.load(unknown)
    crossed = tmp_path / "crossed.toml"
    crossed.write_text("[space]\nmin_g_blocks = 5\nmax_g_blocks = 2\n")
    with pytest.raises(ConfigError, match="min_g_blocks must not exceed"):
        config.load(crossed)
    with pytest.raises(ConfigError, match="malformed"):
        config.Config.from_json("{not json")


def test_mixed_precision_is_true_false_or_auto():
    assert config.load(None).training.mixed_precision == "auto"
    for text, value in (("true", True), ("false", False), ('"auto"', "auto"), ("auto", "auto")):
        assert config.override(config.load(None), [f"training.mixed_precision={text}"]).training.mixed_precision == value
    with pytest.raises(ConfigError, match='training.mixed_precision must be one of true, false, "auto", got \'fast\''):
        config.override(config.load(None), ["training.mixed_precision=fast"])
    cfg = config.override(config.load(None), ["training.mixed_precision=true"])
    assert config.Config.from_json(cfg.to_json()).training.mixed_precision is True


def test_auto_precision_is_bfloat16_only_with_native_instructions(tmp_path):
    from gan_nas import precision

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 amx_tile\n\n"
                       "processor\t: 1\nflags\t\t: fpu sse avx512f avx512_bf16 amx_tile\n")
    flags = precision.cpu_flags(cpuinfo)
    assert {"avx512_bf16", "avx512f"} <= flags and precision.native_bf16_flags(flags) == ["avx512_bf16"]
    assert precision.use_bfloat16("auto", flags) is True
    assert precision.use_bfloat16("auto", {"fpu", "avx512f"}) is False  # emulated there: 4x slower
    assert precision.use_bfloat16(False, flags) is False and precision.use_bfloat16(True, set()) is True
    assert precision.cpu_flags(tmp_path / "missing") == set()
    cfg = precision.resolved(config.load(None))
    assert cfg.training.mixed_precision is precision.use_bfloat16("auto")  # this machine's answer, recorded
    forced = config.override(config.load(None), ["training.mixed_precision=false"])
    assert precision.resolved(forced) is forced


@pytest.mark.parametrize("assignment, match", [
    ("run.seed=-1", r"run.seed must be between 0 and 4,294,967,295 \(a 32-bit seed\), got -1"),
    ("run.seed=4294967296", r"run.seed must be between 0 and 4,294,967,295"),
    ("fitness.noise_seed=-1", r"fitness.noise_seed must be between 0 and 4,294,967,295"),
    ("run.threads=1000000000", r"run.threads must be between 0 and 1,024"),
    ("run.workers=100000", r"run.workers must be between 1 and 1,024"),
    ("search.population=100000000", r"search.population must be between 1 and 10,000"),
    ("training.steps=100000000000000000000", r"training.steps must be at most 2\*\*53"),
    ("training.steps=" + "9" * 5000, r"override value '9999.*' cannot be read: Exceeds the limit"),
    ("space.latent_sizes=" + "[" * 5000 + "]" * 5000, r"override value '\[\[\[.*' is nested too deeply"),
    ("space.latent_sizes=[64, 100000000]", r"space.latent_sizes must be at most 65,536, got 100000000"),
])
def test_out_of_range_and_unreadable_values_are_refused_before_anything_runs(assignment, match):
    with pytest.raises(ConfigError, match=match):
        config.override(config.load(None), [assignment])


def test_config_files_that_cannot_be_parsed_or_read(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[run]\nseed = " + "9" * 5000 + "\n")
    with pytest.raises(ConfigError, match="holds a value gan-nas cannot read: Exceeds the limit"):
        config.load(p)
    p.write_text("[run]\nx = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(ConfigError, match="is not valid TOML: nested too deeply"):
        config.load(p)
    with pytest.raises(ConfigError, match="cannot be read: a directory, not a regular file"):
        config.load(tmp_path)
    with pytest.raises(ConfigError, match="cannot be read: a device, not a regular file"):
        config.load("/dev/zero")
    with pytest.raises(ConfigError, match="config JSON is malformed: JSON nested too deeply"):
        config.Config.from_json("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ConfigError, match="config JSON is malformed: a JSON list, not an object"):
        config.Config.from_json("[]")


@pytest.mark.parametrize("setting, match", [
    ("space.max_g_blocks=100000", "space.max_g_blocks must be between 1 and 32"),
    ("space.max_d_blocks=9007199254740992", "space.max_d_blocks must be between 1 and 32"),
    ("space.max_filters=10000000", "space.max_filters must be between 1 and 65,536"),
    ("fitness.report_noise_seed=1234", "must differ from fitness.noise_seed"),
    ("search.objective='size'", "search.objective must be one of"),
])
def test_space_bounds_and_seeds_are_checked(setting, match):
    with pytest.raises(ConfigError, match=match):
        config.override(config.Config(), [setting])


def test_the_process_pool_takes_whole_gpus_only():
    with pytest.raises(ConfigError, match="one whole GPU"):
        config.override(config.Config(), ["run.executor='process'", "run.gpus_per_candidate=0.5"])
    assert config.override(config.Config(), ["run.executor='process'", "run.gpus_per_candidate=1"])


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[1] / "experiments").glob("*.toml")),
                         ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    cfg = config.load(path)
    assert config.Config.from_json(cfg.to_json()) == cfg


def test_emoji_wide_is_emoji_halving_with_its_flags():
    # samples/emoji_halving_wide_* were made with these flags on emoji_halving.toml; emoji_wide.toml
    # must give the same search, or its README line would point at a config the results do not rest on
    experiments = Path(__file__).resolve().parents[1] / "experiments"
    flags = ["halving.leader_share=0.5", "halving.seconds_per_step=0.1", "halving.leader_snapshot=best",
             "space.max_filters=128", "space.max_g_params=4000000", "space.max_d_params=2000000"]
    assert config.load(experiments / "emoji_wide.toml") == config.override(
        config.load(experiments / "emoji_halving.toml"), flags)
