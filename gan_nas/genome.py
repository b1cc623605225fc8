"""Genomes: immutable descriptions of a GAN candidate, and the rules they keep.

A :class:`GanGenome` is a generator :class:`NetworkGenome`, a discriminator
:class:`NetworkGenome` and the :class:`TrainingGenes` that make them a GAN.
Genomes hold plain values only (never built Keras layers); they are frozen,
hashable, and round-trip through ``to_dict``/``from_dict`` and JSON.

Generator layout (channels last)::

    latent (L,) -> stem: Dense(h*w*c) [-> norm] -> act -> Reshape(h, w, c)
                -> blocks (deconv | upsample_conv | conv), each [-> norm] -> act
                -> output layer (deconv | upsample_conv | conv) with C filters -> tanh

Discriminator layout::

    image (H, W, C) -> blocks (conv, stride 1 or 2) [-> norm] -> act [-> dropout]
                    [-> minibatch stddev] -> flatten | global average pooling
                    -> output: Dense(1), raw logits

Every layer gene has a ``uid``: builders name Keras layers after it
(``g_3fa2c1_conv``) so weights can be matched between a parent and a child.

:func:`validate` raises :class:`~gan_nas.errors.GenomeError` naming the gene
and the rule; :func:`count_params` counts parameters without Keras.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from gan_nas import safe_io
from gan_nas.errors import GenomeError

if TYPE_CHECKING:  # pragma: no cover
    from gan_nas.space import SearchSpace

__all__ = [
    "GenomeError",
    "LayerGene",
    "NetworkGenome",
    "TrainingGenes",
    "GanGenome",
    "validate",
    "validate_network",
    "count_params",
    "layer_shapes",
    "KINDS",
    "NORMS",
    "ACTIVATIONS",
    "LOSSES",
    "POOLINGS",
    "INTERPOLATIONS",
]

KINDS = ("dense", "conv", "deconv", "upsample_conv")
NORMS = ("none", "batch", "layer", "spectral")
ACTIVATIONS = ("linear", "relu", "leaky_relu", "elu", "swish", "gelu", "tanh")
LOSSES = ("nonsaturating", "hinge", "lsgan", "wgan_gp")
POOLINGS = ("flatten", "gap")
INTERPOLATIONS = ("nearest", "bilinear")
ROLES = ("generator", "discriminator")

G_BLOCK_KINDS = ("deconv", "upsample_conv", "conv")
D_BLOCK_KINDS = ("conv",)
_UID = re.compile(r"^[a-z0-9]{1,16}$")


# --------------------------------------------------------------------------- data


# Blocks a network genome may hold: far more than any image size needs (each block at least doubles or
# halves a side, or adds a layer), and a bound on what reading a genome file may cost.
MAX_BLOCKS = 64
# Bounds of a genome's sizes, as the config bounds the space's (config.py): a genome file or journal line
# past them describes a network no machine builds (10**9 filters were shown as a table, exit 0).
MAX_FILTERS = 65_536
MAX_LATENT = 65_536
MAX_D_STEPS = 100  # discriminator steps per generator step (WGAN's recipe takes 5)

@dataclass(frozen=True)
class LayerGene:
    """One layer of a network (with its normalization, activation and dropout).

    Attributes:
        kind: ``dense``, ``conv`` (Conv2D), ``deconv`` (Conv2DTranspose) or
            ``upsample_conv`` (UpSampling2D by ``stride`` then a stride-1 Conv2D).
        filters: output channels (units for ``dense``; for the generator stem,
            channels of the stem grid).
        kernel: square kernel size (1 for ``dense``).
        stride: conv/deconv stride, or the upsampling factor of ``upsample_conv``.
        norm: ``none``, ``batch``, ``layer`` or ``spectral`` (a wrapper around the
            conv/dense, discriminator only).
        activation: one of :data:`ACTIVATIONS`.
        slope: negative slope of ``leaky_relu`` (Keras' default is 0.3); 0 otherwise.
        dropout: dropout rate after the activation (discriminator only).
        bias: whether the conv/dense has a bias.
        interpolation: ``nearest`` or ``bilinear`` (used by ``upsample_conv``).
        uid: stable id used in layer names and for weight inheritance.
    """

    kind: str
    filters: int
    kernel: int = 3
    stride: int = 1
    norm: str = "none"
    activation: str = "linear"
    slope: float = 0.0
    dropout: float = 0.0
    bias: bool = True
    interpolation: str = "nearest"
    uid: str = "0"

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dict of every field."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: Any, where: str = "layer") -> LayerGene:
        """Build from :meth:`to_dict` output; any defect raises GenomeError naming ``where``."""
        r = _Reader(d, where)
        gene = cls(
            kind=r.choice("kind", KINDS),
            filters=r.integer("filters"),
            kernel=r.integer("kernel"),
            stride=r.integer("stride"),
            norm=r.choice("norm", NORMS),
            activation=r.choice("activation", ACTIVATIONS),
            slope=r.number("slope"),
            dropout=r.number("dropout"),
            bias=r.flag("bias"),
            interpolation=r.choice("interpolation", INTERPOLATIONS),
            uid=r.text("uid"),
        )
        r.done()
        return gene

    @property
    def upsamples(self) -> bool:
        """Whether this (generator) layer doubles the spatial size."""
        return (self.kind in ("deconv", "upsample_conv")) and self.stride > 1


@dataclass(frozen=True)
class NetworkGenome:
    """A generator or a discriminator: an ordered tuple of blocks plus network-level genes.

    Attributes:
        role: ``generator`` or ``discriminator``.
        blocks: the hidden layers, in order.
        output: generator: the last conv layer (image channels, tanh);
            discriminator: the ``dense`` head with one unit (linear logits).
        latent: generator only: size of the noise vector.
        stem: generator only: the ``dense`` gene from the latent to the stem grid.
        stem_height: generator only: height of the stem grid.
        stem_width: generator only: width of the stem grid.
        minibatch_std: discriminator only: append a minibatch-stddev channel before the head.
        pooling: discriminator only: ``flatten`` or ``gap`` (global average pooling).
    """

    role: str
    blocks: tuple[LayerGene, ...]
    output: LayerGene
    latent: int = 0
    stem: LayerGene | None = None
    stem_height: int = 0
    stem_width: int = 0
    minibatch_std: bool = False
    pooling: str = "flatten"

    @property
    def is_generator(self) -> bool:
        return self.role == "generator"

    def genes(self) -> tuple[LayerGene, ...]:
        """All layer genes in build order (stem, blocks, output)."""
        return ((self.stem,) if self.stem is not None else ()) + self.blocks + (self.output,)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dict; only the fields that belong to the role are written."""
        d: dict[str, Any] = {"role": self.role}
        if self.is_generator:
            d["latent"] = self.latent
            d["stem"] = self.stem.to_dict() if self.stem is not None else None
            d["stem_height"] = self.stem_height
            d["stem_width"] = self.stem_width
        d["blocks"] = [g.to_dict() for g in self.blocks]
        if not self.is_generator:
            d["minibatch_std"] = self.minibatch_std
            d["pooling"] = self.pooling
        d["output"] = self.output.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Any, where: str = "network", role: str | None = None) -> NetworkGenome:
        """Build from :meth:`to_dict` output; any defect raises GenomeError naming ``where``.

        Args:
            d: the dict.
            where: how error messages name this network.
            role: the role it must have, if any.
        """
        r = _Reader(d, where)
        found = r.choice("role", ROLES)
        if role is not None and found != role:
            raise GenomeError(f"{where}: role must be {role!r}, got {found!r}")
        role = found
        blocks_raw = r.get("blocks", list)
        if len(blocks_raw) > MAX_BLOCKS:  # refused before any is parsed: a 300,000-block file took minutes
            raise GenomeError(f"{where}: {len(blocks_raw):,} blocks; a network has at most {MAX_BLOCKS}")
        blocks = tuple(LayerGene.from_dict(b, f"{where} block {i}") for i, b in enumerate(blocks_raw))
        output = LayerGene.from_dict(r.get("output", dict), f"{where} output")
        if role == "generator":
            net = cls(
                role=role,
                blocks=blocks,
                output=output,
                latent=r.integer("latent"),
                stem=LayerGene.from_dict(r.get("stem", dict), f"{where} stem"),
                stem_height=r.integer("stem_height"),
                stem_width=r.integer("stem_width"),
            )
        else:
            net = cls(
                role=role,
                blocks=blocks,
                output=output,
                minibatch_std=r.flag("minibatch_std"),
                pooling=r.choice("pooling", POOLINGS),
            )
        r.done()
        return net


@dataclass(frozen=True)
class TrainingGenes:
    """How the pair is trained.

    Attributes:
        loss: ``nonsaturating``, ``hinge``, ``lsgan`` or ``wgan_gp``.
        g_lr: generator Adam learning rate.
        d_lr: discriminator Adam learning rate.
        beta1: Adam beta_1 (both optimizers).
        beta2: Adam beta_2 (both optimizers).
        d_steps: discriminator steps per generator step.
    """

    loss: str = "nonsaturating"
    g_lr: float = 1e-4
    d_lr: float = 1e-4
    beta1: float = 0.9
    beta2: float = 0.999
    d_steps: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: Any, where: str = "training") -> TrainingGenes:
        r = _Reader(d, where)
        t = cls(
            loss=r.choice("loss", LOSSES),
            g_lr=r.number("g_lr"),
            d_lr=r.number("d_lr"),
            beta1=r.number("beta1"),
            beta2=r.number("beta2"),
            d_steps=r.integer("d_steps"),
        )
        r.done()
        return t


@dataclass(frozen=True)
class GanGenome:
    """A candidate: generator, discriminator and training genes."""

    generator: NetworkGenome
    discriminator: NetworkGenome
    training: TrainingGenes

    def to_dict(self) -> dict[str, Any]:
        return {
            "generator": self.generator.to_dict(),
            "discriminator": self.discriminator.to_dict(),
            "training": self.training.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Any) -> GanGenome:
        """Build from :meth:`to_dict` output; malformed input raises GenomeError."""
        r = _Reader(d, "genome")
        g = cls(
            generator=NetworkGenome.from_dict(r.get("generator", dict), "generator", "generator"),
            discriminator=NetworkGenome.from_dict(
                r.get("discriminator", dict), "discriminator", "discriminator"
            ),
            training=TrainingGenes.from_dict(r.get("training", dict), "training"),
        )
        r.done()
        return g

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> GanGenome:
        try:
            d = safe_io.parse_json(text)
        except (ValueError, TypeError) as e:  # malformed, nested too deeply, or an integer of 4,300+ digits
            raise GenomeError(f"genome JSON is malformed: {e}") from None
        return cls.from_dict(d)


class _Reader:
    """Typed, strict access to one dict of a genome's JSON (unknown keys are errors)."""

    def __init__(self, d: Any, where: str):
        if not isinstance(d, dict):
            raise GenomeError(f"{where} must be a JSON object, got {type(d).__name__}")
        self.d, self.where, self.seen = d, where, set()

    def get(self, key: str, tp: type | tuple[type, ...]) -> Any:
        if key not in self.d:
            raise GenomeError(f"{self.where} is missing the field {key!r}")
        self.seen.add(key)
        value = self.d[key]
        if not isinstance(value, tp) or (tp is not bool and isinstance(value, bool)):
            names = {
                int: "an integer",
                float: "a number",
                bool: "true or false",
                str: "a string",
                list: "a list",
                dict: "an object",
            }
            want = names[tp] if isinstance(tp, type) else "a number"
            raise GenomeError(f"{self.where}: field {key!r} must be {want}, got {value!r}")
        return value

    def integer(self, key: str) -> int:
        return self.get(key, int)

    def number(self, key: str) -> float:
        value = self.get(key, (int, float))
        if not math.isfinite(value):
            raise GenomeError(f"{self.where}: field {key!r} must be a finite number, got {value!r}")
        return float(value)

    def flag(self, key: str) -> bool:
        return self.get(key, bool)

    def text(self, key: str) -> str:
        return self.get(key, str)

    def choice(self, key: str, allowed: tuple[str, ...]) -> str:
        value = self.text(key)
        if value not in allowed:
            raise GenomeError(f"{self.where}: unknown {key} {value!r}; allowed: {', '.join(allowed)}")
        return value

    def done(self) -> None:
        extra = sorted(set(self.d) - self.seen)
        if extra:
            raise GenomeError(f"{self.where} has unknown field(s): {', '.join(extra)}")


# --------------------------------------------------------------------------- shapes


def _name(net: NetworkGenome, gene: LayerGene) -> str:
    """How messages name a gene: ``generator block 2 (uid ab12, deconv)``."""
    if gene is net.stem:
        pos = "stem"
    elif gene is net.output:
        pos = "output"
    else:
        pos = f"block {next(i for i, g in enumerate(net.blocks) if g is gene)}"
    return f"{net.role} {pos} (uid {gene.uid}, {gene.kind})"


def _check_image_shape(image_shape: Any) -> tuple[int, int, int]:
    try:
        h, w, c = (int(v) for v in image_shape)
        if [h, w, c] != list(image_shape):
            raise ValueError
    except (TypeError, ValueError):
        raise GenomeError(f"image shape must be (height, width, channels), got {image_shape!r}") from None
    if min(h, w, c) <= 0:
        raise GenomeError(f"image shape must be positive, got {image_shape!r}")
    return h, w, c


def _norm_params(gene: LayerGene, channels: int) -> int:
    return {"batch": 4 * channels, "layer": 2 * channels}.get(gene.norm, 0)


def _gene_params(gene: LayerGene, in_ch: int) -> int:
    """Parameters of one gene (weights, norm, spectral vector) given its input channels."""
    k, f = gene.kernel, gene.filters
    core = in_ch * f if gene.kind == "dense" else k * k * in_ch * f
    core += f if gene.bias else 0
    core += f if gene.norm == "spectral" else 0  # SpectralNormalization's vector u: (1, f)
    return core + _norm_params(gene, f)


def layer_shapes(
    net: NetworkGenome, image_shape: tuple[int, int, int]
) -> list[tuple[LayerGene, tuple[int, ...], int]]:
    """Output shape (without batch) and parameter count of every gene, in build order.

    Pure Python, no Keras; assumes the structural rules of :func:`validate` hold.
    """
    h, w, c = _check_image_shape(image_shape)
    out: list[tuple[LayerGene, tuple[int, ...], int]] = []
    if net.is_generator:
        stem = net.stem
        assert stem is not None
        units = net.stem_height * net.stem_width * stem.filters
        dense = LayerGene(**{**stem.to_dict(), "filters": units})
        out.append((stem, (net.stem_height, net.stem_width, stem.filters), _gene_params(dense, net.latent)))
        sh, sw, ch = net.stem_height, net.stem_width, stem.filters
        for gene in net.blocks + (net.output,):
            p = _gene_params(gene, ch)
            if gene.kind in ("deconv", "upsample_conv"):
                sh, sw = sh * gene.stride, sw * gene.stride
            else:
                sh, sw = -(-sh // gene.stride), -(-sw // gene.stride)
            ch = gene.filters
            out.append((gene, (sh, sw, ch), p))
        return out
    sh, sw, ch = h, w, c
    for gene in net.blocks:
        p = _gene_params(gene, ch)
        sh, sw, ch = -(-sh // gene.stride), -(-sw // gene.stride), gene.filters
        out.append((gene, (sh, sw, ch), p))
    ch += 1 if net.minibatch_std else 0
    features = sh * sw * ch if net.pooling == "flatten" else ch
    out.append((net.output, (net.output.filters,), _gene_params(net.output, features)))
    return out


def count_params(net: NetworkGenome, image_shape: tuple[int, int, int]) -> int:
    """Total parameters (trainable and not) of the Keras model that ``net`` builds.

    Equals ``keras.Model.count_params()`` of :func:`gan_nas.builder.build_generator`
    or ``build_discriminator``, without building anything.
    """
    return sum(p for _, _, p in layer_shapes(net, image_shape))


def forward_macs(net: NetworkGenome, image_shape: tuple[int, int, int]) -> int:
    """Multiply-adds of one image's forward pass, roughly: a cost model, not a measurement.

    A dense gene costs its parameters; a conv-like gene its parameters (its
    norm's included) times the positions its kernel visits (the output's for
    conv and upsample_conv, the input's for deconv). Activations, pooling and
    upsampling are left out. Used to order a generation's tasks longest first
    (see ``gan_nas.scheduler.CostModel``).
    """
    h, w, _ = _check_image_shape(image_shape)
    total, area = 0, 0
    if not net.is_generator:
        area = h * w
    for gene, shape, p in layer_shapes(net, image_shape):
        if len(shape) < 3 or gene.kind == "dense":
            total += p
            area = shape[0] * shape[1] if len(shape) == 3 else area
            continue
        out_area = shape[0] * shape[1]
        total += p * (area if gene.kind == "deconv" else out_area)
        area = out_area
    return total


def step_macs(genome: GanGenome, image_shape: tuple[int, int, int]) -> int:
    """Rough multiply-adds of one train step per image (a backward pass counted as 2 forward):
    G forward for every D step and backward once, D forward and backward on a real and a fake
    batch per D step, and the generator loss's backward pass through D (2x more)."""
    g, d = forward_macs(genome.generator, image_shape), forward_macs(genome.discriminator, image_shape)
    k = genome.training.d_steps
    return g * (k + 2) + d * (6 * k + 2)


# --------------------------------------------------------------------------- validation


def validate(genome: GanGenome, image_shape: tuple[int, int, int], space: SearchSpace | None = None) -> None:
    """Raise GenomeError if ``genome`` cannot build, or builds the wrong shapes.

    Args:
        genome: the candidate to check.
        image_shape: (height, width, channels) of the images.
        space: when given, also enforce the space's bounds (depth, filters,
            kernels, choices, parameter caps).

    Raises:
        GenomeError: the message names the gene (``generator block 2 (uid ab12,
            deconv)``) and the rule it breaks.
    """
    if not isinstance(genome, GanGenome):
        raise GenomeError(f"expected a GanGenome, got {type(genome).__name__}")
    shape = _check_image_shape(image_shape)
    if genome.generator.role != "generator" or genome.discriminator.role != "discriminator":
        raise GenomeError("genome: generator and discriminator roles are swapped or wrong")
    _validate_training(genome.training, space)
    validate_network(genome.generator, shape, space)
    validate_network(genome.discriminator, shape, space)
    if genome.training.loss == "wgan_gp":
        for gene in genome.discriminator.blocks:
            if gene.norm == "batch":
                raise GenomeError(
                    f"{_name(genome.discriminator, gene)}: batch norm is not allowed with the "
                    "wgan_gp loss (its gradient penalty is per sample); use layer, spectral or none"
                )


def _validate_training(t: TrainingGenes, space: SearchSpace | None) -> None:
    if not isinstance(t, TrainingGenes):
        raise GenomeError(f"training: expected TrainingGenes, got {type(t).__name__}")
    _check_types(t, _TRAINING_TYPES, "training")
    if t.loss not in LOSSES:
        raise GenomeError(f"training: unknown loss {t.loss!r}; allowed: {', '.join(LOSSES)}")
    for key in ("g_lr", "d_lr"):
        v = getattr(t, key)
        if not (math.isfinite(v) and 0 < v < 1):
            raise GenomeError(f"training: {key} must be within (0, 1), got {v!r}")
    for key in ("beta1", "beta2"):
        v = getattr(t, key)
        if not 0 <= v < 1:
            raise GenomeError(f"training: {key} must be within [0, 1), got {v!r}")
    if not 1 <= t.d_steps <= MAX_D_STEPS:
        raise GenomeError(f"training: d_steps must be from 1 to {MAX_D_STEPS}, got {t.d_steps}")
    if space is None:
        return
    if t.loss not in space.losses:
        raise GenomeError(f"training: loss {t.loss!r} is outside the space {list(space.losses)}")
    lo, hi = min(space.lrs), max(space.lrs)
    for key in ("g_lr", "d_lr"):
        v = getattr(t, key)
        if not lo * (1 - 1e-9) <= v <= hi * (1 + 1e-9):
            raise GenomeError(f"training: {key} {v!r} is outside the space's range [{lo}, {hi}]")
    if t.d_steps not in space.d_steps:
        raise GenomeError(f"training: d_steps {t.d_steps} is outside the space {list(space.d_steps)}")


_NUMBER = (int, float)
_GENE_TYPES = {
    "kind": str,
    "filters": int,
    "kernel": int,
    "stride": int,
    "norm": str,
    "activation": str,
    "slope": _NUMBER,
    "dropout": _NUMBER,
    "bias": bool,
    "interpolation": str,
    "uid": str,
}
_NETWORK_TYPES = {
    "role": str,
    "latent": int,
    "stem_height": int,
    "stem_width": int,
    "minibatch_std": bool,
    "pooling": str,
}
_TRAINING_TYPES = {
    "loss": str,
    "g_lr": _NUMBER,
    "d_lr": _NUMBER,
    "beta1": _NUMBER,
    "beta2": _NUMBER,
    "d_steps": int,
}


def _check_types(obj: Any, types: dict[str, Any], where: str) -> None:
    """Python types of the fields (genomes built in code skip from_dict's checks)."""
    for key, tp in types.items():
        value = getattr(obj, key)
        if not isinstance(value, tp) or (tp is not bool and isinstance(value, bool)):
            raise GenomeError(f"{where}: field {key!r} has the wrong type: {value!r}")


def _validate_gene(net: NetworkGenome, gene: LayerGene, allowed_kinds: tuple[str, ...]) -> None:
    name = _name(net, gene)
    _check_types(gene, _GENE_TYPES, name)
    if not _UID.match(gene.uid):
        raise GenomeError(f"{name}: uid must be 1-16 lowercase letters or digits, got {gene.uid!r}")
    if gene.kind not in allowed_kinds:
        raise GenomeError(
            f"{name}: kind {gene.kind!r} is not allowed here; allowed: {', '.join(allowed_kinds)}"
        )
    if not 0 < gene.filters <= MAX_FILTERS:
        raise GenomeError(f"{name}: filters must be from 1 to {MAX_FILTERS:,}, got {gene.filters}")
    if gene.kind == "dense":
        if gene.kernel != 1 or gene.stride != 1:
            raise GenomeError(f"{name}: a dense layer must have kernel 1 and stride 1")
    else:
        if not 1 <= gene.kernel <= 9:
            raise GenomeError(f"{name}: kernel must be within [1, 9], got {gene.kernel}")
        if gene.stride not in (1, 2):
            raise GenomeError(f"{name}: stride must be 1 or 2, got {gene.stride}")
    if gene.kind == "upsample_conv" and gene.stride != 2:
        raise GenomeError(f"{name}: upsample_conv must upsample by 2 (stride 2), got {gene.stride}")
    if gene.norm not in NORMS:
        raise GenomeError(f"{name}: unknown norm {gene.norm!r}; allowed: {', '.join(NORMS)}")
    if gene.activation not in ACTIVATIONS:
        raise GenomeError(
            f"{name}: unknown activation {gene.activation!r}; allowed: {', '.join(ACTIVATIONS)}"
        )
    if gene.interpolation not in INTERPOLATIONS:
        raise GenomeError(f"{name}: unknown interpolation {gene.interpolation!r}")
    if not 0 <= gene.slope < 1:
        raise GenomeError(f"{name}: slope must be within [0, 1), got {gene.slope!r}")
    if gene.activation == "leaky_relu" and gene.slope <= 0:
        raise GenomeError(f"{name}: leaky_relu needs a positive slope, got {gene.slope!r}")
    if not 0 <= gene.dropout < 1:
        raise GenomeError(f"{name}: dropout must be within [0, 1), got {gene.dropout!r}")


def validate_network(
    net: NetworkGenome, image_shape: tuple[int, int, int], space: SearchSpace | None = None
) -> None:
    """Check one network on its own (see :func:`validate`); raise GenomeError naming gene and rule."""
    if not isinstance(net, NetworkGenome):
        raise GenomeError(f"expected a NetworkGenome, got {type(net).__name__}")
    _check_types(net, _NETWORK_TYPES, f"{net.role} network")
    if net.role not in ROLES:
        raise GenomeError(f"network: unknown role {net.role!r}; allowed: {', '.join(ROLES)}")
    image_shape = _check_image_shape(image_shape)
    _check_genes_unique(net)
    if net.is_generator:
        _validate_generator(net, image_shape)
    else:
        _validate_discriminator(net, image_shape)
    if space is not None:
        _validate_in_space(net, image_shape, space)


def _check_genes_unique(net: NetworkGenome) -> None:
    """Blocks are a tuple, every gene a LayerGene, and no uid is used twice."""
    role = net.role
    if not isinstance(net.blocks, tuple):
        raise GenomeError(f"{role}: blocks must be a tuple of LayerGene")
    uids: set[str] = set()
    for gene in net.genes():
        if not isinstance(gene, LayerGene):
            raise GenomeError(f"{role}: expected a LayerGene, got {type(gene).__name__}")
        if gene.uid in uids:
            raise GenomeError(f"{_name(net, gene)}: uid {gene.uid!r} is used twice in the {role}")
        uids.add(gene.uid)


def _check_hidden_activation(net: NetworkGenome, gene: LayerGene) -> None:
    if gene.activation in ("linear", "tanh"):
        raise GenomeError(
            f"{_name(net, gene)}: hidden layers need a nonlinear activation, not {gene.activation}"
        )


# --- the generator's rules ---


def _validate_generator(net: NetworkGenome, image_shape: tuple[int, int, int]) -> None:
    """Its fields, its stem, blocks and output layer, then its upsampling to the image size."""
    h, w, c = image_shape
    _check_generator_fields(net)
    _check_generator_layers(net, c)
    _check_generator_upsampling(net, h, w)


def _check_generator_fields(net: NetworkGenome) -> None:
    if net.stem is None:
        raise GenomeError("generator: the dense stem is missing")
    if net.minibatch_std or net.pooling != "flatten":
        raise GenomeError("generator: minibatch_std and pooling belong to the discriminator")
    if not 0 < net.latent <= MAX_LATENT:
        raise GenomeError(f"generator: latent size must be from 1 to {MAX_LATENT:,}, got {net.latent}")
    if net.stem_height <= 0 or net.stem_width <= 0:
        raise GenomeError(
            f"generator: stem grid must be positive, got {net.stem_height}x{net.stem_width}"
        )


def _check_generator_layers(net: NetworkGenome, channels: int) -> None:
    """The dense stem and the blocks (no spectral norm, no dropout, nonlinear), and a tanh output of the image's channels."""
    stem = net.stem
    _validate_gene(net, stem, ("dense",))
    if stem.norm == "spectral" or stem.dropout:
        raise GenomeError(f"{_name(net, stem)}: the generator allows no spectral norm and no dropout")
    for gene in net.blocks:
        _validate_gene(net, gene, G_BLOCK_KINDS)
        if gene.norm == "spectral" or gene.dropout:
            raise GenomeError(f"{_name(net, gene)}: the generator allows no spectral norm and no dropout")
        _check_hidden_activation(net, gene)
    out = net.output
    _validate_gene(net, out, G_BLOCK_KINDS)
    if out.filters != channels:
        raise GenomeError(
            f"{_name(net, out)}: filters must equal the image channels {channels}, got {out.filters}"
        )
    if out.activation != "tanh" or out.norm != "none" or out.dropout:
        raise GenomeError(f"{_name(net, out)}: the output layer must be tanh with no norm and no dropout")


def _check_generator_upsampling(net: NetworkGenome, h: int, w: int) -> None:
    """Convolutions keep stride 1; the stem grid, upsampled layer by layer, ends at the image size, never past it."""
    sh, sw = net.stem_height, net.stem_width
    for gene in net.blocks + (net.output,):
        if gene.kind == "conv" and gene.stride != 1:
            raise GenomeError(f"{_name(net, gene)}: generator conv layers must have stride 1")
        if gene.upsamples:
            sh, sw = sh * gene.stride, sw * gene.stride
        if sh > h or sw > w:
            raise GenomeError(
                f"{_name(net, gene)}: upsamples to {sh}x{sw}, past the image size {h}x{w} "
                f"(stem {net.stem_height}x{net.stem_width})"
            )
    if (sh, sw) != (h, w):
        raise GenomeError(
            f"generator: stem {net.stem_height}x{net.stem_width} and the layers' upsampling "
            f"end at {sh}x{sw}, not the image size {h}x{w}"
        )


# --- the discriminator's rules ---


def _validate_discriminator(net: NetworkGenome, image_shape: tuple[int, int, int]) -> None:
    """Its fields, its blocks (downsampling only while it can), then its head."""
    h, w, _ = image_shape
    _check_discriminator_fields(net)
    _check_discriminator_blocks(net, h, w)
    _check_discriminator_head(net)


def _check_discriminator_fields(net: NetworkGenome) -> None:
    if net.stem is not None or net.latent or net.stem_height or net.stem_width:
        raise GenomeError("discriminator: latent and stem belong to the generator")
    if net.pooling not in POOLINGS:
        raise GenomeError(
            f"discriminator: unknown pooling {net.pooling!r}; allowed: {', '.join(POOLINGS)}"
        )
    if not net.blocks:
        raise GenomeError("discriminator: needs at least one block")


def _check_discriminator_blocks(net: NetworkGenome, h: int, w: int) -> None:
    """Each block in turn: a valid gene, nonlinear, and a stride only where the input can shrink."""
    sh, sw = h, w
    for gene in net.blocks:
        _validate_gene(net, gene, D_BLOCK_KINDS)
        _check_hidden_activation(net, gene)
        if gene.stride > 1 and min(sh, sw) < 2:
            raise GenomeError(
                f"{_name(net, gene)}: stride {gene.stride} cannot downsample a {sh}x{sw} input; "
                "spatial size must stay at least 1 and shrink only when it can"
            )
        sh, sw = -(-sh // gene.stride), -(-sw // gene.stride)


def _check_discriminator_head(net: NetworkGenome) -> None:
    out = net.output
    _validate_gene(net, out, ("dense",))
    if (
        out.filters != 1
        or out.activation != "linear"
        or out.norm not in ("none", "spectral")
        or out.dropout
    ):
        raise GenomeError(
            f"{_name(net, out)}: the head must be dense with 1 unit, linear activation "
            "(logits), norm none or spectral, and no dropout"
        )


def _validate_in_space(net: NetworkGenome, image_shape: tuple[int, int, int], space: SearchSpace) -> None:
    g = net.is_generator
    lo, hi = (space.min_g_blocks, space.max_g_blocks) if g else (space.min_d_blocks, space.max_d_blocks)
    if not lo <= len(net.blocks) <= hi:
        raise GenomeError(f"{net.role}: {len(net.blocks)} blocks, the space allows {lo} to {hi}")
    if g and net.latent not in space.latent_sizes:
        raise GenomeError(f"generator: latent size {net.latent} is not one of {list(space.latent_sizes)}")
    if g and (net.stem_height, net.stem_width) not in space.stem_grids(image_shape):
        raise GenomeError(
            f"generator: stem grid {net.stem_height}x{net.stem_width} is not one of "
            f"{space.stem_grids(image_shape)} for images {image_shape[0]}x{image_shape[1]}"
        )
    kinds = space.g_kinds if g else space.d_kinds
    norms = space.g_norms if g else space.d_norms
    hidden = ((net.stem,) if g else ()) + net.blocks
    for gene in hidden:
        name = _name(net, gene)
        if gene is not net.stem and gene.kind not in kinds:
            raise GenomeError(f"{name}: kind {gene.kind!r} is outside the space {list(kinds)}")
        if not space.min_filters <= gene.filters <= space.max_filters:
            raise GenomeError(
                f"{name}: filters {gene.filters} outside the space's [{space.min_filters}, {space.max_filters}]"
            )
        if gene.norm not in norms:
            raise GenomeError(f"{name}: norm {gene.norm!r} is outside the space {list(norms)}")
        if gene.activation not in space.activations:
            raise GenomeError(
                f"{name}: activation {gene.activation!r} is outside the space {list(space.activations)}"
            )
        if gene.dropout > max(space.dropouts):
            raise GenomeError(f"{name}: dropout {gene.dropout} exceeds the space's {max(space.dropouts)}")
    for gene in net.blocks + ((net.output,) if g else ()):
        if gene.kernel not in space.kernels:
            raise GenomeError(
                f"{_name(net, gene)}: kernel {gene.kernel} is outside the space {list(space.kernels)}"
            )
    if not g:
        need = space.min_downsamples(image_shape)
        downs = sum(b.stride > 1 for b in net.blocks)
        if downs < need:
            raise GenomeError(
                f"discriminator: {downs} stride-2 blocks; images of {image_shape[0]}x{image_shape[1]} need "
                f"{need} to come down to the space's {space.d_head_side}x{space.d_head_side}"
            )
    if not g and net.pooling not in space.poolings:
        raise GenomeError(
            f"discriminator: pooling {net.pooling!r} is outside the space {list(space.poolings)}"
        )
    cap = space.max_g_params if g else space.max_d_params
    n = count_params(net, image_shape)
    if n > cap:
        raise GenomeError(f"{net.role}: {n:,} parameters exceed the cap of {cap:,}")
