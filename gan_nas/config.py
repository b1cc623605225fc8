"""Configuration: one typed dataclass per component, composed into :class:`Config`.

A config is loaded from TOML (``[data]``, ``[training]``, ``[fitness]``,
``[space]``, ``[search]``, ``[run]`` tables, and one per strategy: ``[evolution]``, ``[rl]``,
``[halving]``), then adjusted with dotted
overrides (``search.generations=3``). Unknown keys and values of the wrong
type raise :class:`~gan_nas.errors.ConfigError`. The resolved config
serialises to JSON and back, and is written to every run directory.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gan_nas import safe_io
from gan_nas.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass
class DataConfig:
    """Which images to learn from and how to stream them."""

    dataset: str = "fashion_mnist"  # mnist, fashion_mnist, cifar10, folder:PATH or npz:PATH
    data_dir: str | None = None  # explicit folder with the dataset's original files; None: search the usual places
    image_size: int = 28  # folder: datasets are resized and center-cropped to this square size
    channels: int = 1  # folder: datasets are read as grayscale (1) or RGB (3)
    background: str = "white"  # folder: transparency is composited onto this: white, black, gray or #rrggbb
    batch_size: int = 64  # images per train step
    shuffle_buffer: int = 10_000  # tf.data shuffle buffer; the whole train split when it is smaller


@dataclass
class TrainingConfig:
    """How each candidate GAN is trained."""

    steps: int = 300  # generator steps per candidate evaluation
    survivor_steps: int = 0  # extra steps that each survivor trains per generation (0: none)
    max_seconds: float = 0.0  # cap on one evaluation's train time; slower candidates are scored as they are (0: none)
    inherit_weights: bool = True  # children start from their parent's weights where layers are unchanged
    # bfloat16 compute (true), float32 (false), or "auto": bfloat16 where the CPU has native bfloat16
    # instructions (gan_nas/precision.py); a run records what "auto" resolved to
    mixed_precision: bool | str = "auto"
    deterministic: bool = False  # TF op determinism: identical results run to run, somewhat slower
    # Score (and export) an exponential moving average of the generator's weights, with this decay (0: the
    # generator as trained). A GAN's generator oscillates from step to step, so one snapshot's FID is noisy;
    # the average is smoother and usually better (Yazici et al. 2019). The decay warms up as min(g_ema,
    # (1 + t) / (10 + t)) over a candidate's steps t, so a short candidate averages its own last steps.
    g_ema: float = 0.0
    log_every: int = 100  # steps between progress updates while a candidate trains


@dataclass
class FitnessConfig:
    """How generated images are scored (FID and KID on a per-dataset classifier)."""

    n_search: int = 2_000  # generated images per candidate during a search (FID is biased by n: fixed per run)
    n_report: int = 10_000  # generated images for reports and comparisons
    # A search scores every candidate on the same latent draws against the validation split; compare and
    # report score on other draws against the test split, so that what they report was selected on neither.
    noise_seed: int = 1234
    report_noise_seed: int = 4321  # must differ from noise_seed
    classifier_epochs: int = 3  # epochs to train the feature classifier (cached per dataset)
    # feature network behind FID: "classifier" (trained on the classes), "self" (self-supervised, predicting
    # which of four rotations was applied: needs no labels), or "auto": classifier where the dataset has
    # 2+ classes of 10+ images, else self
    features: str = "auto"
    batch_size: int = 500  # images per feature-extraction batch


@dataclass
class SpaceConfig:
    """Bounds of the architecture search space."""

    min_g_blocks: int = 1  # generator blocks after the dense stem
    max_g_blocks: int = 4
    min_d_blocks: int = 1  # discriminator blocks before the head
    max_d_blocks: int = 4
    min_filters: int = 16  # filters of a conv block
    max_filters: int = 256
    max_g_params: int = 4_000_000  # cap on generator parameters
    max_d_params: int = 2_000_000  # cap on discriminator parameters
    latent_sizes: list[int] = field(default_factory=lambda: [64, 100, 128])  # choices of latent size
    d_head_side: int = 32  # the discriminator downsamples larger images (by stride-2 blocks) to at most this side


@dataclass
class SearchConfig:
    """The search's budget and survivor selection; the strategy's own settings are in its table."""

    # evolution, random (evolution's budget, sampled genomes: the baseline every NAS result owes), rl
    # (a REINFORCE policy) or halving (successive halving over training steps); each has its own table
    strategy: str = "evolution"
    # fid (elitist mu+lambda on FID), pareto (NSGA-II on FID and generator size) or fid_coverage (NSGA-II on
    # FID and coverage, Naeem et al. 2020: keeps a diverse candidate that FID alone would drop for a clean one)
    objective: str = "fid"
    generations: int = 5  # generations after the initial population
    population: int = 6  # survivors kept per generation (mu)
    offspring: int = 6  # children per generation (lambda)
    hall_of_fame: int = 5  # best candidates remembered across generations
    wall_clock_seconds: float = 0.0  # stop cleanly after this many seconds (0: no limit)
    final_seconds: float = 0.0  # then the best trains this much longer from its checkpoint, in the compute (0: off)
    diversity_weight: float = 0.0  # survivor selection penalty for genomes close to a better one (0: off)


@dataclass
class EvolutionConfig:
    """The ``evolution`` strategy's own settings."""

    tournament: int = 3  # tournament size for parent selection
    crossover_rate: float = 0.3  # chance that a child comes from crossover before mutation
    mutation_rate: float = 0.9  # chance that a child is mutated
    seed_baseline: bool = True  # put the DCGAN baseline genome in the initial population
    # Regularized ("aging") evolution, Real et al. 2019: no generations and no barrier; each free worker
    # gets the mutated best of aging_sample random members, and the oldest member dies. The budget is
    # search.population + search.generations x search.offspring trials, as a generational search's children.
    aging: bool = False
    aging_sample: int = 3  # members drawn per parent choice


@dataclass
class RLConfig:
    """The ``rl`` strategy's own settings: a factorised policy over the genome's decisions, trained
    with REINFORCE (gan_nas/policy.py). Its budget is search.population + search.generations x
    search.offspring trials, as aging evolution's; each trains training.steps from scratch."""

    learning_rate: float = 0.5  # step size on the policy's logits per (reward - baseline)
    baseline_decay: float = 0.8  # weight of the old baseline in its moving average of rewards


@dataclass
class HalvingConfig:
    """The ``halving`` strategy's own settings: asynchronous successive halving (ASHA, Li et al. 2020).

    New candidates train ``min_steps``; the best 1/eta of those that reached a rung continue from their own
    checkpoint to eta times the steps, up to ``max_steps`` (the rungs: min_steps x eta^k). The budget is
    search.population + search.generations x search.offspring new candidates, plus their promotions; with
    search.wall_clock_seconds, new candidates stop while the time left still takes the leader to the top rung."""

    min_steps: int = 100  # the first rung's steps
    eta: int = 3  # promote the best 1/eta of a rung to eta times its steps
    max_steps: int = 2700  # the last rung's steps at most
    sampler: str = "random"  # where new candidates come from: random (the space's sampler), or rl (a policy)
    seed_baseline: bool = True  # the first new candidate is the DCGAN baseline genome, as in evolution
    # share of search.wall_clock_seconds kept for the leader alone: closed in time for it, the leader climbs
    # to the top rung and goes on training past it until the clock ends (0: runners-up share what is left)
    leader_share: float = 0.0
    # with a leader's share, which snapshot of a lineage (a trial and its continuations) judges it and is
    # continued: "head", its latest; "best", its lowest FID, so a lineage whose continuation got worse
    # (a GAN that collapsed as it trained on) leads on its best and goes on from that checkpoint again,
    # with other batches, rather than from the collapse, from one checkpoint twice at most (halving.py's
    # SNAPSHOT_TRIES: the lowest of several noisy FIDs is biased low, so unbounded, a lucky early snapshot
    # draws the lineage back again and again). "best" is not the default: on MNIST it was no better over six
    # seeds and can close the search sooner (samples/strategies/NOTES.md)
    leader_snapshot: str = "head"
    # new candidates started before the wall clock may close the search (0: the clock alone decides). With a
    # slow first candidate or a large leader_share the clock closes it after one or two, and a leader picked
    # from so few is a lottery (samples/strategies/NOTES.md); the leader's climb is then cut to the clock.
    min_candidates: int = 0
    # > 0: rungs of seconds rather than steps. A trial of rung k trains for rung_steps()[k] x seconds_per_step
    # seconds however many steps that takes (up to SECONDS_RUNG_STEP_CAP x the rung's steps), so that a
    # genome is ranked on what it reaches in the seconds it costs, as compare measures the winner; with
    # rungs of steps a slow genome gets more seconds at every rung than a fast one. Set it near a fast
    # genome's seconds per step (the DCGAN's on the machine) to keep the rungs' meaning. 0: rungs of steps.
    seconds_per_step: float = 0.0

    def rung_steps(self) -> list[int]:
        """Each rung's steps in all: min_steps x eta^k, while at most ``max_steps``.

        Raises:
            ValueError: min_steps below 1 or eta below 2 (only an unchecked config, such as a damaged
                config.json read without its checks, has them; the rungs would never end).
        """
        if not (isinstance(self.min_steps, int) and isinstance(self.eta, int)
                and self.min_steps >= 1 and self.eta >= 2):
            raise ValueError(f"halving.min_steps ({self.min_steps!r}) must be at least 1 and halving.eta "
                             f"({self.eta!r}) at least 2")
        steps = [self.min_steps]
        while steps[-1] * self.eta <= self.max_steps:
            steps.append(steps[-1] * self.eta)
        return steps

    def steps_past_top(self) -> int:
        """What each of the leader's trials past the top rung trains: the top rung x (eta - 1), as far
        again as the climb from the rung below took it, relative to its steps."""
        return self.rung_steps()[-1] * (self.eta - 1)

    def longest_trial_steps(self) -> int:
        """The most steps one trial of this strategy trains: a promotion to the top rung, or with a
        leader's share, a trial past it."""
        top = self.rung_steps()[-1]
        longest = max(top, self.steps_past_top()) if self.leader_share > 0 else top
        return longest * SECONDS_RUNG_STEP_CAP if self.seconds_per_step > 0 else longest


# On rungs of seconds, a trial may train at most this many times its rung's steps: a bound for the
# steps a task may ask (state.json is checked against it), far above what a genome faster than
# halving.seconds_per_step would reach.
SECONDS_RUNG_STEP_CAP = 100


# Settings that lived in [search] before strategies had tables of their own: read from there too.
MOVED_TO_EVOLUTION = ("tournament", "crossover_rate", "mutation_rate", "seed_baseline")


@dataclass
class RunConfig:
    """Where and how a run executes."""

    seed: int = 0  # seeds the search, the genomes and the training
    run_dir: str | None = None  # run directory; the CLI's --run-dir wins
    executor: str = "serial"  # serial, process or ray
    workers: int = 1  # parallel candidates for process and ray executors
    threads: int = 0  # TF threads per worker (0: cores divided by workers)
    ray_address: str | None = None  # join this Ray cluster; None starts a local one
    # GPUs per candidate: Ray reserves this share (fractions allowed); the process pool pins each worker to
    # one GPU of its own (1 only: workers take the visible GPUs in turn); serial uses what TensorFlow sees
    gpus_per_candidate: float = 0.0
    max_retries: int = 2  # Ray/process: retries of a candidate whose worker died
    train_ahead: bool = True  # Ray/process: a worker idle at a generation's end trains a sure survivor's next steps


@dataclass
class Config:
    """The whole configuration of a run."""

    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    fitness: FitnessConfig = field(default_factory=FitnessConfig)
    space: SpaceConfig = field(default_factory=SpaceConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    evolution: EvolutionConfig = field(default_factory=EvolutionConfig)
    rl: RLConfig = field(default_factory=RLConfig)
    halving: HalvingConfig = field(default_factory=HalvingConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        return from_dict(d)

    @classmethod
    def from_json(cls, text: str) -> Config:
        try:
            d = safe_io.parse_json(text)
        except ValueError as e:  # malformed, nested too deeply, or an integer of thousands of digits
            raise ConfigError(f"config JSON is malformed: {e}") from None
        if not isinstance(d, dict):
            raise ConfigError(f"config JSON is malformed: a JSON {type(d).__name__}, not an object")
        return from_dict(d)


# Generated images scored per candidate, at most: FID's usual sizes are 10,000 to 50,000, and
# their float64 features and covariances must fit in memory.
MAX_SAMPLES = 100_000

_CHOICES = {
    ("search", "strategy"): ("evolution", "random", "rl", "halving"),
    ("halving", "sampler"): ("random", "rl"),
    ("halving", "leader_snapshot"): ("head", "best"),
    ("search", "objective"): ("fid", "pareto", "fid_coverage"),
    ("run", "executor"): ("serial", "process", "ray"),
    ("data", "channels"): (1, 3),
    ("fitness", "features"): ("auto", "classifier", "self"),
    ("training", "mixed_precision"): (True, False, "auto"),
}


def _allowed(section: str, key: str, types: list[Any] | None = None) -> str:
    """What ``section.key`` may be, in TOML's spelling: its choices, else its types."""
    if (section, key) in _CHOICES:
        return "one of " + ", ".join(json.dumps(v) for v in _CHOICES[section, key])
    return " or ".join(getattr(t, "__name__", str(t)) for t in types or [])


def _coerce(section: str, key: str, tp: Any, value: Any) -> Any:
    """Check ``value`` against the annotation ``tp``; return it (ints widen to floats)."""
    where = f"{section}.{key}"
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        for a in inner:  # the first type the value fits
            try:
                return _coerce(section, key, a, value)
            except ConfigError:
                pass
        raise ConfigError(f"{where} must be {_allowed(section, key, inner)}, got {value!r}")
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list of {item.__name__}, got {value!r}")
        return [_coerce(section, key, item, v) for v in value]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        if not math.isfinite(value):  # nan < 0 is false: NaN would pass every bound below and mean "no limit"
            raise ConfigError(f"{where} must be a finite number, got {value!r} (0 means no limit where one is optional)")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported type {tp}")  # pragma: no cover


def _section_types(section_cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(section_cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(section_cls)}


def _sections() -> dict[str, type]:
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in dataclasses.fields(Config)}


# Any integer setting above this is a typo, and would overflow where it meets numpy or TensorFlow.
MAX_INT = 2**53
MAX_LATENT = 65_536  # genome.MAX_LATENT (config imports nothing of gan_nas's genome)
# Settings whose useful range is far smaller than MAX_INT; the reason goes into the error.
_BOUNDS: dict[tuple[str, str], tuple[int, int, str]] = {
    ("run", "seed"): (0, 2**32 - 1, "a 32-bit seed"),
    ("fitness", "noise_seed"): (0, 2**32 - 1, "a 32-bit seed"),
    ("fitness", "report_noise_seed"): (0, 2**32 - 1, "a 32-bit seed"),
    ("run", "threads"): (0, 1024, "TensorFlow threads per candidate; 0: cores divided by workers"),
    ("run", "workers"): (1, 1024, "candidates trained at once"),
    ("run", "max_retries"): (0, 100, "retries of a candidate whose worker died"),
    ("run", "gpus_per_candidate"): (0, 64, "GPUs one candidate reserves"),
    ("search", "population"): (1, 10_000, "survivors per generation"),
    ("search", "offspring"): (1, 10_000, "children per generation"),
    ("search", "hall_of_fame"): (1, 10_000, "candidates remembered"),
    ("evolution", "tournament"): (1, 10_000, "members per tournament"),
    ("evolution", "aging_sample"): (1, 10_000, "members drawn per parent choice"),
    ("halving", "min_steps"): (1, 10**9, "the first rung's generator steps"),
    ("halving", "max_steps"): (1, 10**9, "the last rung's generator steps"),
    ("halving", "eta"): (2, 100, "the factor between rungs; 1 would promote everyone"),
    ("halving", "min_candidates"): (0, 10**6, "new candidates before the clock may close the search"),
    ("halving", "seconds_per_step"): (0, 3600, "seconds of training per rung step; 0: rungs of steps"),
    ("rl", "learning_rate"): (0, 1000, "the policy's step size"),
    ("rl", "baseline_decay"): (0, 1, "the reward baseline's moving-average weight"),
    # A block at least doubles or halves a side, or adds a layer: 32 is far past any image size's need,
    # and a bound keeps sampling a genome from looping over millions of blocks.
    ("space", "min_g_blocks"): (1, 32, "generator blocks"),
    ("space", "max_g_blocks"): (1, 32, "generator blocks"),
    ("space", "min_d_blocks"): (1, 32, "discriminator blocks"),
    ("space", "max_d_blocks"): (1, 32, "discriminator blocks"),
    ("space", "min_filters"): (1, 65_536, "filters of a conv block"),
    ("space", "max_filters"): (1, 65_536, "filters of a conv block"),
}


def _int_fields() -> list[tuple[str, str]]:
    """(section, key) of every integer setting."""
    return [(name, f.name) for name, cls in _sections().items() for f in dataclasses.fields(cls)
            if _section_types(cls)[f.name] is int]


def _short(v: Any) -> str:
    """A value for an error message, short even for an integer of thousands of digits."""
    try:
        text = repr(v)
    except ValueError:
        return "a number too large to print"
    return text if len(text) <= 40 else text[:37] + "..."


def _check(cfg: Config) -> Config:
    for (section, key), allowed in _CHOICES.items():
        value = getattr(getattr(cfg, section), key)
        if value not in allowed:
            raise ConfigError(f"{section}.{key} must be {_allowed(section, key)}, got {value!r}")
    positive = [
        ("data", "batch_size"), ("data", "image_size"), ("data", "shuffle_buffer"),
        ("training", "steps"), ("training", "log_every"),
        ("fitness", "n_search"), ("fitness", "n_report"), ("fitness", "batch_size"),
        ("fitness", "classifier_epochs"),
        ("space", "min_g_blocks"), ("space", "min_d_blocks"), ("space", "min_filters"),
        ("space", "max_g_params"), ("space", "max_d_params"),
        ("search", "population"), ("search", "offspring"), ("evolution", "tournament"),
        ("evolution", "aging_sample"), ("search", "hall_of_fame"), ("run", "workers"),
    ]
    for section, key in positive:
        if getattr(getattr(cfg, section), key) <= 0:
            raise ConfigError(f"{section}.{key} must be positive, got {getattr(getattr(cfg, section), key)!r}")
    nonneg = [("training", "survivor_steps"), ("training", "max_seconds"), ("search", "generations"), ("search", "wall_clock_seconds"), ("search", "final_seconds"),
              ("run", "threads"), ("run", "max_retries"), ("run", "gpus_per_candidate"),
              ("search", "diversity_weight")]
    for section, key in nonneg:
        if getattr(getattr(cfg, section), key) < 0:
            raise ConfigError(f"{section}.{key} must not be negative")
    for (section, key), (low, high, why) in _BOUNDS.items():
        v = getattr(getattr(cfg, section), key)
        if not low <= v <= high:
            raise ConfigError(f"{section}.{key} must be between {low:,} and {high:,} ({why}), got {_short(v)}")
    for section, key in _int_fields():
        v = getattr(getattr(cfg, section), key)
        if abs(v) > MAX_INT:
            raise ConfigError(f"{section}.{key} must be at most 2**53, got {_short(v)}")
    if cfg.halving.max_steps < cfg.halving.min_steps:
        raise ConfigError(f"halving.max_steps ({cfg.halving.max_steps:,}) must be at least halving.min_steps "
                          f"({cfg.halving.min_steps:,})")
    if not 0.0 <= cfg.halving.leader_share <= 0.9:  # 1 would leave no seconds to find a leader
        raise ConfigError(f"halving.leader_share must be within [0, 0.9], got {cfg.halving.leader_share!r}")
    if cfg.search.strategy == "halving" and cfg.halving.leader_share > 0 and cfg.search.wall_clock_seconds <= 0:
        raise ConfigError("halving.leader_share is a share of search.wall_clock_seconds: set a wall clock too")
    for section, key in [("evolution", "crossover_rate"), ("evolution", "mutation_rate")]:
        v = getattr(getattr(cfg, section), key)
        if not 0.0 <= v <= 1.0:
            raise ConfigError(f"{section}.{key} must be within [0, 1], got {v!r}")
    if not 0.0 <= cfg.training.g_ema < 1.0:  # 1 would never move from the initial weights
        raise ConfigError(f"training.g_ema must be within [0, 1), got {cfg.training.g_ema!r}")
    from gan_nas.data import check_image_size, parse_background  # the data's own bounds, checked at load
    from gan_nas.errors import DataError

    try:
        check_image_size(cfg.data.image_size, cfg.data.channels)
        parse_background(cfg.data.background)
    except DataError as e:
        raise ConfigError(str(e)) from None
    s = cfg.space
    if s.min_g_blocks > s.max_g_blocks:
        raise ConfigError("space.min_g_blocks must not exceed space.max_g_blocks")
    if s.min_d_blocks > s.max_d_blocks:
        raise ConfigError("space.min_d_blocks must not exceed space.max_d_blocks")
    if s.min_filters > s.max_filters:
        raise ConfigError("space.min_filters must not exceed space.max_filters")
    if not s.latent_sizes or any(v <= 0 for v in s.latent_sizes):
        raise ConfigError("space.latent_sizes must be a non-empty list of positive integers")
    if max(s.latent_sizes) > MAX_LATENT:  # a genome's bound (genome.py): a latent of 10**8 failed at building
        raise ConfigError(f"space.latent_sizes must be at most {MAX_LATENT:,}, got {_short(max(s.latent_sizes))}")
    if cfg.run.executor == "process" and cfg.run.gpus_per_candidate not in (0, 1):
        raise ConfigError(f"run.gpus_per_candidate = {cfg.run.gpus_per_candidate:g}: the process pool gives each "
                          'worker one whole GPU (1) or none (0); fractions or several need run.executor = "ray"')
    if cfg.fitness.report_noise_seed == cfg.fitness.noise_seed:
        raise ConfigError("fitness.report_noise_seed must differ from fitness.noise_seed: reports would score "
                          "the winner on the very latent draws it was selected on")
    if cfg.fitness.n_search < 2 or cfg.fitness.n_report < 2:
        raise ConfigError("fitness.n_search and fitness.n_report must be at least 2")
    for key in ("n_search", "n_report"):
        if getattr(cfg.fitness, key) > MAX_SAMPLES:
            raise ConfigError(f"fitness.{key} must be at most {MAX_SAMPLES:,} (FID's usual sample size is 10,000 "
                              f"to 50,000), got {getattr(cfg.fitness, key):,}")
    return cfg


def from_dict(d: dict[str, Any]) -> Config:
    """Build a Config from nested dicts (TOML or JSON), rejecting unknown keys and wrong types."""
    if not isinstance(d, dict):
        raise ConfigError(f"config must be a table of sections, got {type(d).__name__}")
    sections = _sections()
    parts: dict[str, Any] = {}
    d = _moved_keys(d)
    for name, values in d.items():
        if name not in sections:
            raise ConfigError(f"unknown config section [{name}]; known: {', '.join(sections)}")
        if not isinstance(values, dict):
            raise ConfigError(f"config section [{name}] must be a table")
        types_ = _section_types(sections[name])
        kwargs = {}
        for key, value in values.items():
            if key not in types_:
                raise ConfigError(f"unknown config key {name}.{key}; known: {', '.join(types_)}")
            kwargs[key] = _coerce(name, key, types_[key], value)
        parts[name] = sections[name](**kwargs)
    return _check(Config(**parts))


def _moved_keys(d: dict[str, Any]) -> dict[str, Any]:
    """``d`` with the evolution settings that older configs (and runs' config.json) keep in [search]
    moved to [evolution]; set in both places, they are an error."""
    search = d.get("search")
    if not isinstance(search, dict) or not any(k in search for k in MOVED_TO_EVOLUTION):
        return d
    evolution = d.get("evolution") or {}
    if not isinstance(evolution, dict):
        return d  # from_dict reports the malformed section
    both = [k for k in MOVED_TO_EVOLUTION if k in search and k in evolution]
    if both:
        raise ConfigError(f"search.{both[0]} is now evolution.{both[0]}; set it in [evolution] only")
    moved = {k: v for k, v in search.items() if k in MOVED_TO_EVOLUTION}
    return {**d, "search": {k: v for k, v in search.items() if k not in MOVED_TO_EVOLUTION},
            "evolution": {**evolution, **moved}}


def load(path: str | Path | None) -> Config:
    """Load a TOML config file; ``None`` gives the defaults."""
    if path is None:
        return _check(Config())
    p = Path(path)
    try:
        text = safe_io.read_text(p)
    except FileNotFoundError:
        raise ConfigError(f"config file {p} does not exist") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {p} is not valid TOML: not UTF-8 text") from None
    except OSError as e:
        raise ConfigError(f"config file {p} cannot be read: {e.strerror or e}") from None
    try:
        d = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {p} is not valid TOML: {e}") from None
    except ValueError as e:  # e.g. an integer of more than 4,300 digits
        raise ConfigError(f"config file {p} holds a value gan-nas cannot read: {e}") from None
    except RecursionError:
        raise ConfigError(f"config file {p} is not valid TOML: nested too deeply") from None
    return from_dict(d)


def _parse_value(text: str) -> Any:
    """Parse the right-hand side of an override as a TOML value, else take it as a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
    except ValueError as e:  # e.g. an integer of more than 4,300 digits
        raise ConfigError(f"override value {text[:40]!r} cannot be read: {e}") from None
    except RecursionError:
        raise ConfigError(f"override value {text[:40]!r} is nested too deeply") from None


def override(cfg: Config, assignments: list[str]) -> Config:
    """Apply ``section.key=value`` overrides; values are TOML literals (bare words are strings)."""
    d = cfg.to_dict()
    sections = _sections()
    for a in assignments:
        if "=" not in a:
            raise ConfigError(f"override {a!r} must look like section.key=value")
        path, text = a.split("=", 1)
        parts = path.strip().split(".")
        if len(parts) != 2:
            raise ConfigError(f"override {a!r}: the key must be section.key, e.g. search.generations")
        section, key = parts
        if section == "search" and key in MOVED_TO_EVOLUTION:  # its old home
            section = "evolution"
        if section not in sections:
            raise ConfigError(f"unknown config section {section!r} in override {a!r}; known: {', '.join(sections)}")
        types_ = _section_types(sections[section])
        if key not in types_:
            raise ConfigError(f"unknown config key {section}.{key}; known: {', '.join(types_)}")
        value = _parse_value(text.strip())
        d[section][key] = _coerce(section, key, types_[key], value)
    return from_dict(d)
