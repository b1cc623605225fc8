"""Train one candidate GAN briefly: losses, the compiled train step, weight inheritance.

:func:`train_candidate` builds the generator and discriminator of a
:class:`~gan_nas.genome.GanGenome`, copies the trained weights of every layer
whose gene and weight shapes are unchanged from the parent (Lamarckian
inheritance, as COEGAN does), trains a number of steps with the genome's loss
and optimizers, scores the generator with :mod:`gan_nas.fitness`, and returns a
:class:`CandidateResult`. Failure is data: a genome that cannot build is
``invalid``, a NaN or Inf in a loss or the weights is ``diverged``; both have
fitness ``inf``.

Checkpoints (what a candidate leaves in ``RUN_DIR/candidates/ID``, so that it
can be a parent or continue training itself) are :mod:`gan_nas.checkpoint`'s.
"""

from __future__ import annotations

import contextlib
import gc
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from gan_nas import interrupt, precision
from gan_nas.checkpoint import EMA_PREFIX, load_checkpoint, load_ema, restore_optimizers, save_checkpoint
from gan_nas.config import Config, DataConfig, FitnessConfig, TrainingConfig
from gan_nas.errors import CheckpointError, GanNasError
from gan_nas.genome import GanGenome, LayerGene, NetworkGenome, TrainingGenes, validate
from gan_nas.store import json_safe

LOSSES = ("nonsaturating", "hinge", "lsgan", "wgan_gp")
GP_WEIGHT = 10.0  # gradient penalty weight, as in Gulrajani et al. (2017)


@dataclass
class CandidateResult:
    """What one evaluation of a candidate produced.

    Attributes:
        status: ``ok``, ``invalid`` (cannot build), ``diverged`` (NaN/Inf) or ``failed``.
        fitness: the FID (lower is better); ``inf`` unless status is ``ok``.
        metrics: ``fid``, ``kid``, ``kid_std``, ``n``, last ``g_loss`` and ``d_loss``.
        params: generator and discriminator parameter counts, ``{"g": .., "d": ..}``.
        steps: generator steps trained in this evaluation.
        total_steps: generator steps along the lineage, inherited ones included.
        seconds: ``build`` (build, inherit, trace), ``train``, ``score``, ``total``.
        inherited: layers whose weights came from the parent, ``{"g": .., "d": ..}``.
        traces: how many times the train step was traced (1 when nothing retraced).
        error: a one-line reason when status is not ``ok``.
    """

    status: str
    fitness: float = math.inf
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, int] = field(default_factory=dict)
    steps: int = 0
    total_steps: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    inherited: dict[str, int] = field(default_factory=dict)
    traces: int = 0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["fitness"] = json_safe(self.fitness)
        d["metrics"] = {k: json_safe(v) for k, v in self.metrics.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CandidateResult:
        d = dict(d)
        d["fitness"] = float(d["fitness"]) if d.get("fitness") is not None else math.inf
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


# --- losses ------------------------------------------------------------------
# All take raw logits (batch, 1) and return scalar means. The discriminator wants
# real high and fake low; the generator wants fake high.


def d_loss(kind: str, real, fake):
    """Discriminator loss on logits of real and fake images (without the gradient penalty)."""
    import tensorflow as tf

    if kind == "nonsaturating":  # -log sigmoid(real) - log(1 - sigmoid(fake))
        return tf.reduce_mean(tf.nn.softplus(-real)) + tf.reduce_mean(tf.nn.softplus(fake))
    if kind == "hinge":
        return tf.reduce_mean(tf.nn.relu(1.0 - real)) + tf.reduce_mean(tf.nn.relu(1.0 + fake))
    if kind == "lsgan":  # Mao et al. (2017), a=0, b=1
        return 0.5 * tf.reduce_mean(tf.square(real - 1.0)) + 0.5 * tf.reduce_mean(tf.square(fake))
    if kind == "wgan_gp":
        return tf.reduce_mean(fake) - tf.reduce_mean(real)
    raise GanNasError(f"unknown loss {kind!r}; allowed: {', '.join(LOSSES)}")


def g_loss(kind: str, fake):
    """Generator loss on the discriminator's logits of fake images."""
    import tensorflow as tf

    if kind == "nonsaturating":  # -log sigmoid(fake)
        return tf.reduce_mean(tf.nn.softplus(-fake))
    if kind in ("hinge", "wgan_gp"):
        return -tf.reduce_mean(fake)
    if kind == "lsgan":
        return 0.5 * tf.reduce_mean(tf.square(fake - 1.0))
    raise GanNasError(f"unknown loss {kind!r}; allowed: {', '.join(LOSSES)}")


def gradient_penalty(discriminator, real, fake, alpha):
    """WGAN-GP penalty E[(||grad D(x_hat)||_2 - 1)^2], x_hat = alpha real + (1 - alpha) fake.

    ``alpha`` has shape (batch, 1, 1, 1), drawn uniformly from [0, 1] per sample.
    """
    import tensorflow as tf

    x_hat = tf.convert_to_tensor(alpha * real + (1.0 - alpha) * fake)
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        out = discriminator(x_hat, training=True)
    grads = tape.gradient(out, x_hat)
    norms = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=[1, 2, 3]) + 1e-12)
    return tf.reduce_mean(tf.square(norms - 1.0))


# --- inheritance ----------------------------------------------------------------


def load_generator(genome: GanGenome, checkpoint: str | Path, image_shape: tuple[int, int, int]):
    """Build ``genome``'s generator and load its weights from a checkpoint directory: the moving average
    of its weights where the candidate trained with one (``training.g_ema``), which is what was scored."""
    from gan_nas import builder

    _, weights, _ = load_checkpoint(Path(checkpoint))
    gen = builder.build_generator(genome, image_shape)
    prefix = EMA_PREFIX if any(k.startswith(EMA_PREFIX) for k in weights) else ""
    for layer in gen.layers:
        n = len(layer.get_weights())
        if n:
            try:
                layer.set_weights([weights[f"{prefix}{layer.name}/{i}"] for i in range(n)])
            except KeyError:
                raise GanNasError(f"checkpoint {checkpoint} has no weights for layer {layer.name}") from None
    return gen


def export_generator(genome: GanGenome, checkpoint: str | Path, image_shape: tuple[int, int, int],
                     path: str | Path) -> Path:
    """Save the trained generator as a ``.keras`` file that plain Keras loads (built-in layers only)."""
    gen = load_generator(genome, checkpoint, image_shape)
    path = Path(path)
    gen.save(path)
    return path


def _genes_by_uid(net: NetworkGenome) -> dict[str, LayerGene]:
    return {g.uid: g for g in net.genes()}


def inherit(model, net: NetworkGenome, parent_net: NetworkGenome, parent_weights: dict[str, np.ndarray],
            prefix: str, skip: set[str] | frozenset[str] = frozenset()) -> set[str]:
    """Copy weights of layers whose gene is unchanged from the parent and whose shapes match.

    Layers are matched by name (``{prefix}_{uid}_...``, see the builder); a layer is
    copied only when the gene with its uid is equal in child and parent and every
    weight has the parent's shape. Layers named in ``skip`` (already inherited
    from another parent) are left alone. Returns the names of the layers copied.
    """
    child_genes, parent_genes = _genes_by_uid(net), _genes_by_uid(parent_net)
    copied: set[str] = set()
    for layer in model.layers:
        current = layer.get_weights()
        if not current or not layer.name.startswith(prefix + "_") or layer.name in skip:
            continue
        uid = layer.name[len(prefix) + 1:].split("_", 1)[0]
        if uid not in child_genes or child_genes[uid] != parent_genes.get(uid):
            continue
        old = [parent_weights.get(f"{layer.name}/{i}") for i in range(len(current))]
        if any(o is None or o.shape != c.shape for o, c in zip(old, current)):
            continue
        layer.set_weights(old)
        copied.add(layer.name)
    return copied


def _check_resumed(checkpoint: str | Path, models: dict[str, Any], copied: dict[str, set[str]]) -> None:
    """Raise CheckpointError unless a continuation got every layer's weights from the checkpoint it continues.

    A continuation trains the same genome on, so each of its layers is in that checkpoint; one that is
    not (weights.npz replaced or cut down, meta.json's genome edited) trained on from random weights and
    was journaled as the survivor's continuation, with the lineage's step count.
    """
    for net, model in models.items():
        missing = [layer.name for layer in model.layers
                   if layer.get_weights() and layer.name.startswith(net + "_") and layer.name not in copied[net]]
        if missing:
            raise CheckpointError(
                f"checkpoint {checkpoint} is damaged: it holds no weights of the shape the candidate it continues "
                f"needs for layer {missing[0]} ({len(missing)} layers in all; its weights.npz or meta.json's "
                f"genome was changed); restore it from a copy of the run and resume")


# --- training ------------------------------------------------------------------


_SECTIONS = {"data": DataConfig, "training": TrainingConfig, "fitness": FitnessConfig}


def _from_config(section: str, key: str) -> Any:
    """A :class:`TrainOptions` field that :meth:`TrainOptions.from_config` reads from ``cfg.section.key``.

    Its default is that key's default in :mod:`gan_nas.config`, its one home.
    """
    return field(default=_SECTIONS[section].__dataclass_fields__[key].default, metadata={"config": (section, key)})


@dataclass
class TrainOptions:
    """Knobs of :func:`train_candidate` that are not genes."""

    batch_size: int = _from_config("data", "batch_size")
    seed: int = 0
    mixed_precision: bool = False  # from_config resolves training.mixed_precision ("auto" included)
    policy: str | None = None  # a Keras dtype policy that overrides mixed_precision (None: precision.policy)
    deterministic: bool = _from_config("training", "deterministic")
    log_every: int = _from_config("training", "log_every")
    n_search: int = _from_config("fitness", "n_search")  # generated images scored
    noise_seed: int = _from_config("fitness", "noise_seed")
    score_batch: int = _from_config("fitness", "batch_size")
    shuffle_buffer: int = _from_config("data", "shuffle_buffer")
    max_seconds: float = _from_config("training", "max_seconds")
    g_ema: float = _from_config("training", "g_ema")

    @classmethod
    def from_config(cls, cfg: Config, seed: int) -> TrainOptions:
        """The options a :class:`gan_nas.config.Config` implies, with this candidate's seed."""
        read = {f.name: getattr(getattr(cfg, f.metadata["config"][0]), f.metadata["config"][1])
                for f in fields(cls) if "config" in f.metadata}
        return cls(seed=seed, mixed_precision=precision.use_bfloat16(cfg.training.mixed_precision), **read)


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


def _weights_finite(*models) -> bool:
    import tensorflow as tf

    return all(bool(tf.reduce_all(tf.math.is_finite(tf.cast(w, tf.float32)))) for m in models for w in m.weights
               if "float" in str(w.dtype))


def forget_custom_gradients() -> int:
    """Drop the gradient-registry entries that earlier candidates' traced steps left behind.

    In graph mode, every traced use of ``tf.custom_gradient`` registers a new
    ``CustomGradient-N`` entry in TensorFlow's global gradient registry, whose
    closure holds tensors of the graph being traced; nothing ever removes them.
    The Keras optimizer's all-reduce (two per candidate) and ``tf.nn.silu``
    (swish) both do this, so every candidate's traced train step stayed alive
    for the life of the process (experiments/bench_memory.py measures the
    growth per candidate). Called before a candidate is built, when no
    earlier candidate's graph can be traced again; the registry is private to
    TensorFlow, so if it is not where expected nothing is dropped.

    Returns:
        How many entries were dropped.
    """
    from tensorflow.python.framework import ops

    registry = getattr(getattr(ops, "_gradient_registry", None), "_registry", None)
    if not isinstance(registry, dict):
        return 0
    names = [k for k in registry if isinstance(k, str) and k.startswith("CustomGradient-")]
    for k in names:
        del registry[k]
    return len(names)


def train_candidate(
    genome: GanGenome,
    data,
    steps: int,
    reference=None,
    options: TrainOptions | None = None,
    parent: str | Path | list[str | Path] | None = None,
    resume: str | Path | None = None,
    save_to: str | Path | None = None,
    log: Callable[[str], None] | None = None,
    score: bool = True,
) -> CandidateResult:
    """Build, inherit, train ``steps`` generator steps, score.

    Args:
        genome: the candidate.
        data: a :class:`gan_nas.data.Dataset`.
        steps: generator steps (each with ``genome.training.d_steps`` discriminator steps); fewer
            when ``options.max_seconds`` runs out first (``result.steps`` says how many).
        reference: a :class:`gan_nas.fitness.Reference` for scoring; needed when ``score``.
        options: batch size, seeds, precision, scoring sample size.
        parent: checkpoint directory of the parent (or a list, for crossover children):
            unchanged layers are inherited, the first parent's first.
        resume: checkpoint directory of this same genome: continue training it
            (weights and optimizer state), adding to its lineage steps.
        save_to: write this candidate's checkpoint here after training.
        log: called with a progress line every ``options.log_every`` steps.
        score: score the generator (else fitness stays inf and status ok).

    Returns:
        The result; never raises for an invalid or diverging genome.
    """
    opt = options or TrainOptions()
    t0 = time.perf_counter()
    result = CandidateResult(status="ok")
    shape = tuple(data.spec.shape)
    try:
        validate(genome, shape)
        gen, disc, policy = _build(genome, shape, opt)
    except (GanNasError, _Invalid) as e:
        return _finish(result, t0, status="invalid", error=str(e))
    result.params = {"g": int(gen.count_params()), "d": int(disc.count_params())}
    optimizers = _optimizers(genome.training, gen, disc, policy)
    lineage_steps, result.inherited, resumed = _inherit_checkpoints(genome, gen, disc, optimizers, parent, resume)
    ema = _ema(genome, shape, gen, policy, opt.g_ema, resumed) if opt.g_ema > 0 else None
    train_step, traces = _compiled_step(genome, gen, disc, optimizers, opt.batch_size, shape, opt.seed, ema)
    stream = _stream(data, opt, genome.training.d_steps, shape)

    gl_v, dl_v, done = _train_loop(train_step, stream, steps, opt, log, result, t0)
    result.steps = done
    result.total_steps = lineage_steps + done
    result.traces = traces[0]
    result.metrics = {"g_loss": gl_v, "d_loss": dl_v}

    scored = gen if ema is None else ema.model
    if not _finite(gl_v, dl_v) or not _weights_finite(gen, disc, scored):
        return _finish(result, t0, status="diverged",
                       error=result.error or f"non-finite loss or weights at step {done}")

    if save_to is not None:
        save_checkpoint(Path(save_to), genome, gen, disc, optimizers, result.total_steps,
                        ema=None if ema is None else (ema.model, int(ema.count.numpy())))

    if score and not _score(result, scored, reference, opt, genome.generator.latent):
        return _finish(result, t0, status="diverged", error="generator output is not finite")
    return _finish(result, t0)


class _Invalid(Exception):
    """Keras refused to build what :func:`validate` let through; the message is one line."""


def _build(genome: GanGenome, shape: tuple[int, int, int], opt: TrainOptions) -> tuple[Any, Any, str]:
    """A fresh session, the seed, and the generator and discriminator built under the precision policy.

    Returns:
        (generator, discriminator, the dtype policy they were built with).

    Raises:
        GanNasError, _Invalid: the genome cannot be built.
    """
    import keras
    import tensorflow as tf

    from gan_nas import builder

    keras.backend.clear_session(free_memory=False)  # free the previous candidate's graphs and weights
    forget_custom_gradients()  # ...which TensorFlow's gradient registry would otherwise keep alive
    gc.collect()  # once, after both (clear_session's own collection would be a second full pass)
    keras.utils.set_random_seed(opt.seed)
    if opt.deterministic:
        tf.config.experimental.enable_op_determinism()
    policy = opt.policy or precision.policy(opt.mixed_precision)
    try:
        with _dtype_policy(policy):
            gen = builder.build_generator(genome, shape, fused_batch_norm=True)
            disc = builder.build_discriminator(genome, shape, fused_batch_norm=True)
    except (ValueError, TypeError) as e:  # Keras refused what validate() let through
        raise _Invalid(f"{type(e).__name__}: {e}".splitlines()[0]) from None
    return gen, disc, policy


@contextlib.contextmanager
def _dtype_policy(policy: str):
    """Keras's global dtype policy set to ``policy`` while models are built, restored after."""
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


@dataclass
class _Ema:
    """The generator's exponential moving average: a model of the same genome, its decay, and the
    steps it has averaged (the warm-up's t)."""

    model: Any
    decay: float
    count: Any  # a tf.Variable, int64


def _ema(genome: GanGenome, shape: tuple[int, int, int], gen, policy: str, decay: float,
         resumed: tuple[Path, dict[str, Any], dict[str, np.ndarray]] | None) -> _Ema:
    """The average's model, starting from ``gen``'s weights (a child's, inherited or fresh), or, when this
    trial continues a checkpoint (``resumed``: its path, meta and weights) that holds an average, from
    that average and its count."""
    import tensorflow as tf

    from gan_nas import builder

    with _dtype_policy(policy):
        model = builder.build_generator(genome, shape, fused_batch_norm=True)
    model.set_weights(gen.get_weights())
    count = 0
    if resumed is not None:
        averaged = load_ema(*resumed, model)
        if averaged is not None:
            count = averaged
    return _Ema(model, decay, tf.Variable(count, dtype=tf.int64, trainable=False))


def _optimizers(tg: TrainingGenes, gen, disc, policy: str) -> dict[str, Any]:
    """The generator's and discriminator's Adam optimizers (loss-scaled under float16), built."""
    import keras

    g_opt = keras.optimizers.Adam(tg.g_lr, beta_1=tg.beta1, beta_2=tg.beta2)
    d_opt = keras.optimizers.Adam(tg.d_lr, beta_1=tg.beta1, beta_2=tg.beta2)
    if policy == "mixed_float16":  # float16's range: small gradients would flush to zero unscaled
        g_opt, d_opt = keras.optimizers.LossScaleOptimizer(g_opt), keras.optimizers.LossScaleOptimizer(d_opt)
    g_opt.build(gen.trainable_variables)
    d_opt.build(disc.trainable_variables)
    return {"g": g_opt, "d": d_opt}


def _inherit_checkpoints(genome: GanGenome, gen, disc, optimizers: dict[str, Any],
                         parent: str | Path | list[str | Path] | None, resume: str | Path | None
                         ) -> tuple[int, dict[str, int], tuple[Path, dict[str, Any], dict[str, np.ndarray]] | None]:
    """Copy the parents' unchanged layers (the first parent's first), or resume this genome's own checkpoint.

    Returns:
        (the lineage's steps so far, layers inherited per network ``{"g": .., "d": ..}``, and when
        resuming, the checkpoint as read: its path, meta and weights).
    """
    lineage_steps = 0
    copied: dict[str, set[str]] = {"g": set(), "d": set()}
    if parent is None or isinstance(parent, (str, Path)):
        parents = [] if parent is None else [parent]
    else:
        parents = list(parent)
    resumed = None
    for src in [resume] if resume is not None else parents:  # the first parent's layers win
        meta, weights, opt_state = load_checkpoint(Path(src))
        pg = GanGenome.from_dict(meta["genome"])
        copied["g"] |= inherit(gen, genome.generator, pg.generator, weights, "g", copied["g"])
        copied["d"] |= inherit(disc, genome.discriminator, pg.discriminator, weights, "d", copied["d"])
        if resume is not None:
            _check_resumed(src, {"g": gen, "d": disc}, copied)
            restore_optimizers(optimizers, opt_state)
            resumed = (Path(src), meta, weights)
        lineage_steps = max(lineage_steps, meta["total_steps"])
    return lineage_steps, {k: len(v) for k, v in copied.items()}, resumed


def _compiled_step(genome: GanGenome, gen, disc, optimizers: dict[str, Any], batch: int,
                   shape: tuple[int, int, int], seed: int, ema: _Ema | None = None) -> tuple[Any, list[int]]:
    """The compiled train step: ``d_steps`` discriminator steps and one generator step on one batch of real
    images, then (with ``ema``) the generator's moving average updated.

    Returns:
        (the ``tf.function``, taking (d_steps, batch, H, W, C) in [-1, 1] and returning (g_loss, d_loss);
        a one-element list counting how often it was traced).
    """
    import keras
    import tensorflow as tf

    tg = genome.training
    g_opt, d_opt = optimizers["g"], optimizers["d"]
    d_steps, latent, loss = tg.d_steps, genome.generator.latent, tg.loss
    noise_gen = tf.random.Generator.from_seed(seed + 1)
    traces = [0]

    def scaled(o, value):  # inside the tape: a loss as its optimizer's gradient needs it
        return o.scale_loss(value) if isinstance(o, keras.optimizers.LossScaleOptimizer) else value

    def d_step_loss(real, fake):
        real_logits = tf.cast(disc(real, training=True), tf.float32)
        fake_logits = tf.cast(disc(fake, training=True), tf.float32)
        dl = d_loss(loss, real_logits, fake_logits)
        if loss == "wgan_gp":
            alpha = noise_gen.uniform([batch, 1, 1, 1], 0.0, 1.0)
            dl += GP_WEIGHT * gradient_penalty(disc, real, fake, alpha)
        return dl, fake_logits

    def step(real):  # real: (d_steps, batch, H, W, C) in [-1, 1]
        # The first d_steps - 1 discriminator steps update D alone; the last one and the
        # generator step share one forward pass, as the TensorFlow DCGAN tutorial's step
        # does (simultaneous updates: G's gradient sees D before this step's D update).
        traces[0] += 1  # runs only while tracing
        for k in range(d_steps - 1):
            z = noise_gen.normal([batch, latent])
            with tf.GradientTape() as tape:
                dl, _ = d_step_loss(real[k], tf.cast(gen(z, training=True), tf.float32))
                dl_scaled = scaled(d_opt, dl)
            grads = tape.gradient(dl_scaled, disc.trainable_variables)
            d_opt.apply_gradients(zip(grads, disc.trainable_variables))
        z = noise_gen.normal([batch, latent])
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = tf.cast(gen(z, training=True), tf.float32)
            dl, fake_logits = d_step_loss(real[d_steps - 1], fake)
            gl = g_loss(loss, fake_logits)
            dl_scaled, gl_scaled = scaled(d_opt, dl), scaled(g_opt, gl)
        d_grads = d_tape.gradient(dl_scaled, disc.trainable_variables)
        g_grads = g_tape.gradient(gl_scaled, gen.trainable_variables)
        d_opt.apply_gradients(zip(d_grads, disc.trainable_variables))
        g_opt.apply_gradients(zip(g_grads, gen.trainable_variables))
        if ema is not None:
            ema.count.assign_add(1)
            t = tf.cast(ema.count, tf.float32)
            decay = tf.minimum(ema.decay, (1.0 + t) / (10.0 + t))
            for avg, w in zip(ema.model.weights, gen.weights):  # batch norm's moving statistics too
                if "float" in str(avg.dtype):
                    avg.assign(decay * avg.value + (1.0 - decay) * tf.cast(w.value, avg.value.dtype))
        return gl, dl

    h, w, c = shape
    train_step = tf.function(step, input_signature=[tf.TensorSpec([d_steps, batch, h, w, c], tf.float32)],
                             jit_compile=False, autograph=False)  # no tensor-dependent Python control flow
    return train_step, traces


def _stream(data, opt: TrainOptions, d_steps: int, shape: tuple[int, int, int]):
    """An endless iterator of the training split, in the train step's (d_steps, batch, H, W, C) blocks."""
    import tensorflow as tf

    from gan_nas import data as data_mod

    h, w, c = shape
    batch = opt.batch_size
    stream = data_mod.pipeline(data.x_train, batch * d_steps, seed=opt.seed, shuffle_buffer=opt.shuffle_buffer)
    stream = stream.map(lambda x: tf.reshape(x, [d_steps, batch, h, w, c]))
    return iter(stream)


def _train_loop(train_step, it, steps: int, opt: TrainOptions, log: Callable[[str], None] | None,
                result: CandidateResult, t0: float) -> tuple[float, float, int]:
    """Run the train step until ``steps``, a non-finite loss, or ``opt.max_seconds`` after the first step.

    Records ``build`` (from ``t0`` to the end of the first step, which traces) and ``train``
    seconds in ``result``, and the error of an op that refused a value.

    Returns:
        (the last generator loss, the last discriminator loss, steps done).
    """
    import tensorflow as tf

    gl_v = dl_v = float("nan")
    done = 0
    try:
        gl, dl = train_step(next(it))  # trace and first step
        gl_v, dl_v = float(gl), float(dl)
        done = 1
        t_train = time.perf_counter()
        result.seconds["build"] = t_train - t0
        deadline = t_train + opt.max_seconds if opt.max_seconds > 0 else math.inf
        while done < steps and _finite(gl_v, dl_v) and time.perf_counter() < deadline:
            interrupt.check()  # Ctrl-C or SIGTERM: stop between steps; nothing of this candidate is kept
            gl, dl = train_step(next(it))
            gl_v, dl_v = float(gl), float(dl)
            done += 1
            if log is not None and opt.log_every and done % opt.log_every == 0:
                log(f"step {done}/{steps} g_loss {gl_v:.3f} d_loss {dl_v:.3f}")
        result.seconds["train"] = time.perf_counter() - t_train
    except tf.errors.InvalidArgumentError as e:  # e.g. a NaN check inside an op
        gl_v = float("nan")
        result.seconds.setdefault("build", time.perf_counter() - t0)
        result.error = str(e).splitlines()[0]
    return gl_v, dl_v, done


def _score(result: CandidateResult, gen, reference, opt: TrainOptions, latent: int) -> bool:
    """Score the generator into ``result`` (metrics, fitness, ``score`` seconds); False if its FID is not finite."""
    from gan_nas import fitness

    t_score = time.perf_counter()
    scores = fitness.score(gen, reference, n=opt.n_search, noise_seed=opt.noise_seed,
                           latent_size=latent, batch_size=opt.score_batch)
    result.seconds["score"] = time.perf_counter() - t_score
    result.metrics.update({k: v if isinstance(v, int) else float(v) for k, v in scores.items()})
    result.fitness = float(scores["fid"])
    return math.isfinite(result.fitness)


def _finish(result: CandidateResult, t0: float, status: str | None = None, error: str | None = None
            ) -> CandidateResult:
    if status is not None:
        result.status = status
        result.fitness = math.inf
    if error is not None:
        result.error = error
    result.seconds["total"] = time.perf_counter() - t0
    return result
