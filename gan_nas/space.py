"""The search space and the genetic operators over :class:`~gan_nas.genome.GanGenome`.

:class:`SearchSpace` holds the choices (kept apart from any genome's values);
the operators are pure functions in DEAP's shape: they take an explicit
``np.random.Generator``, never touch global random state, never change their
inputs, and return new genomes.

- :func:`sample`: a random valid genome.
- :func:`mutate`: one random change (add, remove or change a layer, move an
  upsampling step, change the stem, the head or a training gene), then repair.
- :func:`crossover`: two children, by swapping whole networks, one-point
  crossover of the blocks of a network, or uniform crossover of training genes.
- :func:`repair`: deterministic; returns a valid genome close to its input.
- :func:`distance`: a symmetric dissimilarity for diversity and speciation.

Uids: genes kept by an operator keep their uid (even when a field changes);
new genes get a fresh uid drawn from the rng (``repair``, which has no rng,
derives one from a hash of the gene).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from gan_nas.config import SpaceConfig
from gan_nas.errors import ConfigError, GenomeError
from gan_nas.genome import (
    _UID,
    GanGenome,
    LayerGene,
    NetworkGenome,
    TrainingGenes,
    _check_image_shape,
    layer_shapes,
    validate,
)

__all__ = ["SearchSpace", "sample", "mutate", "crossover", "repair", "distance", "MUTATIONS"]

Shape = tuple[int, int, int]


@dataclass(frozen=True)
class SearchSpace:
    """Every choice the search may make. Bounds come from :class:`SpaceConfig`."""

    min_g_blocks: int = 1  # generator blocks between the stem and the output layer
    max_g_blocks: int = 4
    min_d_blocks: int = 1  # discriminator blocks before the head
    max_d_blocks: int = 4
    min_filters: int = 16
    max_filters: int = 256
    max_g_params: int = 4_000_000
    max_d_params: int = 2_000_000
    latent_sizes: tuple[int, ...] = (64, 100, 128)
    g_kinds: tuple[str, ...] = ("deconv", "upsample_conv", "conv")
    d_kinds: tuple[str, ...] = ("conv",)
    kernels: tuple[int, ...] = (3, 4, 5)
    g_norms: tuple[str, ...] = ("batch", "layer", "none")
    d_norms: tuple[str, ...] = ("batch", "layer", "spectral", "none")
    activations: tuple[str, ...] = ("relu", "leaky_relu", "elu", "swish", "gelu")
    slopes: tuple[float, ...] = (0.2, 0.3)  # leaky_relu negative slopes (0.3 is Keras' default)
    interpolations: tuple[str, ...] = ("nearest", "bilinear")
    dropouts: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4)  # discriminator only
    poolings: tuple[str, ...] = ("flatten", "gap")
    losses: tuple[str, ...] = ("nonsaturating", "hinge", "lsgan", "wgan_gp")
    lrs: tuple[float, ...] = (5e-5, 1e-4, 2e-4, 5e-4)  # log grid for both learning rates
    beta1s: tuple[float, ...] = (0.0, 0.5, 0.9)
    beta2s: tuple[float, ...] = (0.9, 0.999)
    d_steps: tuple[int, ...] = (1, 2)
    stem_sides: tuple[int, int] = (3, 8)  # preferred range of the generator's stem grid side
    # most pixels on a side of the discriminator's last feature map: larger images need enough stride-2
    # blocks to come down to it (64x64: 1, 128x128: 2); 32 leaves 28x28 and 32x32 as they always were
    d_head_side: int = 32
    p_downsample: float = field(default=0.7)  # chance that a sampled discriminator block has stride 2

    def __post_init__(self) -> None:
        if not 1 <= self.min_g_blocks <= self.max_g_blocks:
            raise ConfigError("space: need 1 <= min_g_blocks <= max_g_blocks")
        if not 1 <= self.min_d_blocks <= self.max_d_blocks:
            raise ConfigError("space: need 1 <= min_d_blocks <= max_d_blocks")
        if not 1 <= self.min_filters <= self.max_filters:
            raise ConfigError("space: need 1 <= min_filters <= max_filters")
        if not self.latent_sizes or min(self.latent_sizes) <= 0:
            raise ConfigError("space: latent_sizes must be positive")
        if self.d_head_side < 1:
            raise ConfigError("space: d_head_side must be positive")
        if not {"deconv", "upsample_conv"} & set(self.g_kinds) or not {"deconv", "conv"} & set(self.g_kinds):
            raise ConfigError(
                "space: g_kinds needs a kind that upsamples (deconv, upsample_conv) and one that does not (deconv, conv)"
            )
        for name in (
            "g_kinds",
            "d_kinds",
            "kernels",
            "g_norms",
            "d_norms",
            "activations",
            "slopes",
            "interpolations",
            "dropouts",
            "poolings",
            "losses",
            "lrs",
            "beta1s",
            "beta2s",
            "d_steps",
        ):
            if not getattr(self, name):
                raise ConfigError(f"space: {name} must not be empty")

    @classmethod
    def from_config(cls, cfg: SpaceConfig) -> SearchSpace:
        """The default space with the bounds of ``cfg``."""
        return cls(
            min_g_blocks=cfg.min_g_blocks,
            max_g_blocks=cfg.max_g_blocks,
            min_d_blocks=cfg.min_d_blocks,
            max_d_blocks=cfg.max_d_blocks,
            min_filters=cfg.min_filters,
            max_filters=cfg.max_filters,
            max_g_params=cfg.max_g_params,
            max_d_params=cfg.max_d_params,
            latent_sizes=tuple(cfg.latent_sizes),
            d_head_side=cfg.d_head_side,
        )

    @property
    def filter_choices(self) -> tuple[int, ...]:
        """Powers of two within [min_filters, max_filters], plus both bounds."""
        pows = {2**i for i in range(20) if self.min_filters <= 2**i <= self.max_filters}
        return tuple(sorted(pows | {self.min_filters, self.max_filters}))

    def stem_grids(self, image_shape: Shape) -> list[tuple[int, int]]:
        """Stem grids (height, width) the generator may start from, largest first.

        A grid is the image size divided by 2**u, for u upsampling steps, with
        u at most ``max_g_blocks + 1`` (blocks plus output layer). Grids whose
        sides lie within ``stem_sides`` are preferred: 7x7 for 28x28, 8x8 and
        4x4 for 32x32. Where none does, the smallest reachable grid is used.
        """
        h, w, _ = _check_image_shape(image_shape)
        grids = []
        for u in range(self.max_g_blocks + 2):
            if h % 2**u or w % 2**u:
                break
            grids.append((h // 2**u, w // 2**u))
        lo, hi = self.stem_sides
        preferred = [g for g in grids if lo <= min(g) and max(g) <= hi]
        return preferred or [grids[-1]]

    def min_downsamples(self, image_shape: Shape) -> int:
        """Stride-2 blocks the discriminator needs to bring ``image_shape`` down to :attr:`d_head_side`.

        The generator's upsampling follows the image size (:meth:`stem_grids`);
        this is the discriminator's side of it. Without it a discriminator at
        128x128 may keep its full resolution to the head: a few stride-1 convs
        at 128x128 cost more than a whole 28x28 candidate, and see only patches.

        Raises:
            GenomeError: the space's ``max_d_blocks`` cannot hold that many.
        """
        h, w, _ = _check_image_shape(image_shape)
        side, need = min(h, w), 0
        while side > self.d_head_side:
            side, need = -(-side // 2), need + 1
        if need > self.max_d_blocks:
            raise GenomeError(
                f"discriminator: images of {h}x{w} need {need} stride-2 blocks to come down to "
                f"{self.d_head_side}x{self.d_head_side}, but the space allows {self.max_d_blocks} blocks; "
                f"raise space.max_d_blocks"
            )
        return need

    def ups_choices(self, image_shape: Shape) -> list[int]:
        """Numbers of upsampling layers matching :meth:`stem_grids`, fewest first."""
        h = _check_image_shape(image_shape)[0]
        return [int(round(math.log2(h // g[0]))) for g in self.stem_grids(image_shape)]


# --------------------------------------------------------------------------- helpers


def _pick(rng: np.random.Generator, choices: Any, exclude: Any = None) -> Any:
    """A uniform choice (as a Python scalar), avoiding ``exclude`` when possible."""
    options = [c for c in choices if c != exclude] or list(choices)
    return options[int(rng.integers(len(options)))]


def _fresh_uid(rng: np.random.Generator, taken: set[str]) -> str:
    while True:
        uid = format(int(rng.integers(16**6)), "06x")
        if uid not in taken:
            taken.add(uid)
            return uid


def _derived_uid(seed: str, taken: set[str]) -> str:
    """A uid without an rng (for repair): a hash of ``seed``, unique within ``taken``."""
    i = 0
    while True:
        uid = hashlib.sha1(f"{seed}:{i}".encode()).hexdigest()[:6]
        if uid not in taken:
            taken.add(uid)
            return uid
        i += 1


def _uids(*nets: NetworkGenome) -> set[str]:
    return {g.uid for n in nets for g in n.genes()}


def _bias_for(norm: str) -> bool:
    return norm not in ("batch", "layer")


def _nearest(value: float, choices: Any) -> Any:
    return min(choices, key=lambda c: (abs(c - value), c))


def _activation(rng: np.random.Generator, space: SearchSpace, exclude: str | None = None) -> dict[str, Any]:
    act = _pick(rng, space.activations, exclude)
    return {"activation": act, "slope": float(_pick(rng, space.slopes)) if act == "leaky_relu" else 0.0}


def _to_up(gene: LayerGene, space: SearchSpace) -> LayerGene:
    """The same layer (same uid), made to double the spatial size."""
    if gene.upsamples:
        return gene
    if gene.kind == "deconv":
        return replace(gene, stride=2)
    kind = "upsample_conv" if "upsample_conv" in space.g_kinds else "deconv"
    return replace(gene, kind=kind, stride=2, interpolation=space.interpolations[0])


def _to_flat(gene: LayerGene, space: SearchSpace) -> LayerGene:
    """The same layer (same uid), made to keep the spatial size."""
    if not gene.upsamples:
        return gene
    if gene.kind == "deconv":
        return replace(gene, stride=1)
    kind = "conv" if "conv" in space.g_kinds else "deconv"
    return replace(gene, kind=kind, stride=1, interpolation="nearest")


def _g_layers(net: NetworkGenome) -> list[LayerGene]:
    return list(net.blocks) + [net.output]


def _with_layers(net: NetworkGenome, layers: list[LayerGene], **changes: Any) -> NetworkGenome:
    return replace(net, blocks=tuple(layers[:-1]), output=layers[-1], **changes)


# --------------------------------------------------------------------------- sampling


def _sample_g_gene(
    rng: np.random.Generator, space: SearchSpace, up: bool, filters: int, uid: str
) -> LayerGene:
    kinds = [k for k in space.g_kinds if k != ("conv" if up else "upsample_conv")]
    kind = _pick(rng, kinds)
    norm = _pick(rng, space.g_norms)
    return LayerGene(
        kind=kind,
        filters=filters,
        kernel=int(_pick(rng, space.kernels)),
        stride=2 if up else 1,
        norm=norm,
        **_activation(rng, space),
        bias=_bias_for(norm),
        interpolation=_pick(rng, space.interpolations) if kind == "upsample_conv" else "nearest",
        uid=uid,
    )


def _sample_generator(rng: np.random.Generator, space: SearchSpace, shape: Shape) -> NetworkGenome:
    h, w, c = shape
    taken: set[str] = set()
    u = int(_pick(rng, space.ups_choices(shape)))
    n = int(rng.integers(max(space.min_g_blocks, u - 1), space.max_g_blocks + 1))
    ups = set(rng.choice(n + 1, size=u, replace=False).tolist())
    filters = sorted((int(_pick(rng, space.filter_choices)) for _ in range(n)), reverse=True)
    blocks = [_sample_g_gene(rng, space, i in ups, filters[i], _fresh_uid(rng, taken)) for i in range(n)]
    out = _sample_g_gene(rng, space, n in ups, c, _fresh_uid(rng, taken))
    out = replace(out, norm="none", activation="tanh", slope=0.0, bias=True)
    norm = _pick(rng, space.g_norms)
    stem = LayerGene(
        kind="dense",
        filters=int(_pick(rng, space.filter_choices)),
        kernel=1,
        stride=1,
        norm=norm,
        **_activation(rng, space),
        bias=_bias_for(norm),
        uid=_fresh_uid(rng, taken),
    )
    return NetworkGenome(
        role="generator",
        blocks=tuple(blocks),
        output=out,
        latent=int(_pick(rng, space.latent_sizes)),
        stem=stem,
        stem_height=h // 2**u,
        stem_width=w // 2**u,
    )


def _sample_d_gene(
    rng: np.random.Generator, space: SearchSpace, stride: int, filters: int, uid: str
) -> LayerGene:
    norm = _pick(rng, space.d_norms)
    return LayerGene(
        kind=_pick(rng, space.d_kinds),
        filters=filters,
        kernel=int(_pick(rng, space.kernels)),
        stride=stride,
        norm=norm,
        **_activation(rng, space),
        dropout=float(_pick(rng, space.dropouts)),
        bias=_bias_for(norm),
        uid=uid,
    )


def _head_norms(space: SearchSpace) -> list[str]:
    return ["none"] + (["spectral"] if "spectral" in space.d_norms else [])


def _sample_discriminator(rng: np.random.Generator, space: SearchSpace, shape: Shape) -> NetworkGenome:
    taken: set[str] = set()
    need = space.min_downsamples(shape)
    n = int(rng.integers(max(space.min_d_blocks, need), space.max_d_blocks + 1))
    filters = sorted(int(_pick(rng, space.filter_choices)) for _ in range(n))
    side, blocks = min(shape[:2]), []
    for i in range(n):
        stride = 2 if side >= 2 and rng.random() < space.p_downsample else 1
        side = -(-side // stride)
        blocks.append(_sample_d_gene(rng, space, stride, filters[i], _fresh_uid(rng, taken)))
    flat = [i for i, b in enumerate(blocks) if b.stride == 1]
    short = need - (n - len(flat))
    if short > 0:  # too few stride-2 blocks for the image size: random ones of the others downsample too
        for i in rng.choice(flat, size=short, replace=False).tolist():
            blocks[i] = replace(blocks[i], stride=2)
    head = LayerGene(
        kind="dense", filters=1, kernel=1, norm=_pick(rng, _head_norms(space)), uid=_fresh_uid(rng, taken)
    )
    return NetworkGenome(
        role="discriminator",
        blocks=tuple(blocks),
        output=head,
        minibatch_std=bool(rng.random() < 0.5),
        pooling=_pick(rng, space.poolings),
    )


def _sample_training(rng: np.random.Generator, space: SearchSpace) -> TrainingGenes:
    return TrainingGenes(
        loss=_pick(rng, space.losses),
        g_lr=float(_pick(rng, space.lrs)),
        d_lr=float(_pick(rng, space.lrs)),
        beta1=float(_pick(rng, space.beta1s)),
        beta2=float(_pick(rng, space.beta2s)),
        d_steps=int(_pick(rng, space.d_steps)),
    )


def sample(space: SearchSpace, image_shape: Shape, rng: np.random.Generator) -> GanGenome:
    """A random genome of ``space`` for images of ``image_shape``; always valid.

    Args:
        space: the choices.
        image_shape: (height, width, channels).
        rng: the only source of randomness.
    """
    shape = _check_image_shape(image_shape)
    genome = GanGenome(
        generator=_sample_generator(rng, space, shape),
        discriminator=_sample_discriminator(rng, space, shape),
        training=_sample_training(rng, space),
    )
    return repair(genome, space, shape)


# --------------------------------------------------------------------------- mutation


def _set_ups(
    layers: list[LayerGene], target: int, rng: np.random.Generator, space: SearchSpace
) -> list[LayerGene] | None:
    """Flip random layers until exactly ``target`` of them upsample; None if impossible."""
    layers = list(layers)
    ups = [i for i, g in enumerate(layers) if g.upsamples]
    flat = [i for i, g in enumerate(layers) if not g.upsamples]
    if target > len(layers):
        return None
    if len(ups) > target:
        for i in rng.choice(ups, size=len(ups) - target, replace=False).tolist():
            layers[i] = _to_flat(layers[i], space)
    elif len(ups) < target:
        for i in rng.choice(flat, size=target - len(ups), replace=False).tolist():
            layers[i] = _to_up(layers[i], space)
    return layers


def _change_gene(
    gene: LayerGene, role: str, where: str, rng: np.random.Generator, space: SearchSpace
) -> LayerGene:
    """Change one field of ``gene`` (its uid stays). ``where``: stem, block, output or head."""
    fields_ = {
        ("generator", "stem"): ["filters", "norm", "activation"],
        ("generator", "block"): ["filters", "kernel", "norm", "activation", "kind"],
        ("generator", "output"): ["kernel", "kind", "bias"],
        ("discriminator", "block"): ["filters", "kernel", "stride", "norm", "activation", "dropout"],
        ("discriminator", "head"): ["norm", "bias"],
    }[(role, where)]
    if gene.kind == "upsample_conv":
        fields_.append("interpolation")
    name = _pick(rng, fields_)
    if name == "filters":
        return replace(gene, filters=int(_pick(rng, space.filter_choices, gene.filters)))
    if name == "kernel":
        return replace(gene, kernel=int(_pick(rng, space.kernels, gene.kernel)))
    if name == "stride":
        return replace(gene, stride=3 - gene.stride)
    if name == "norm":
        norms = (
            _head_norms(space) if where == "head" else space.g_norms if role == "generator" else space.d_norms
        )
        norm = _pick(rng, norms, gene.norm)
        return replace(gene, norm=norm, bias=gene.bias if where == "head" else _bias_for(norm))
    if name == "activation":
        return replace(gene, **_activation(rng, space, gene.activation))
    if name == "dropout":
        return replace(gene, dropout=float(_pick(rng, space.dropouts, gene.dropout)))
    if name == "bias":
        return replace(gene, bias=not gene.bias)
    if name == "interpolation":
        return replace(gene, interpolation=_pick(rng, space.interpolations, gene.interpolation))
    # kind: swap with the other kind that keeps the same upsampling
    if gene.upsamples:
        kind = _pick(rng, [k for k in space.g_kinds if k != "conv"], gene.kind)
        return replace(
            gene,
            kind=kind,
            interpolation=_pick(rng, space.interpolations) if kind == "upsample_conv" else "nearest",
        )
    return replace(
        gene, kind=_pick(rng, [k for k in space.g_kinds if k != "upsample_conv"], gene.kind), stride=1
    )


def _mutate_generator(
    op: str, net: NetworkGenome, rng: np.random.Generator, space: SearchSpace, shape: Shape, taken: set[str]
) -> NetworkGenome | None:
    layers = _g_layers(net)
    n = len(net.blocks)
    ups = sum(g.upsamples for g in layers)
    if op == "g_add_block":
        if n >= space.max_g_blocks:
            return None
        gene = _sample_g_gene(
            rng, space, False, int(_pick(rng, space.filter_choices)), _fresh_uid(rng, taken)
        )
        layers.insert(int(rng.integers(n + 1)), gene)
        return _with_layers(net, layers)
    if op == "g_remove_block":
        if n <= space.min_g_blocks:
            return None
        del layers[int(rng.integers(n))]
        new = _set_ups(layers, ups, rng, space)
        return None if new is None else _with_layers(net, new)
    if op == "g_change_layer":
        i = int(rng.integers(n + 2))  # 0: stem, 1..n: blocks, n+1: output
        if i == 0:
            return replace(net, stem=_change_gene(net.stem, "generator", "stem", rng, space))
        layers[i - 1] = _change_gene(
            layers[i - 1], "generator", "output" if i == n + 1 else "block", rng, space
        )
        return _with_layers(net, layers)
    if op == "g_move_upsampling":
        up = [i for i, g in enumerate(layers) if g.upsamples]
        flat = [i for i, g in enumerate(layers) if not g.upsamples]
        if not up or not flat:
            return None
        i, j = _pick(rng, up), _pick(rng, flat)
        layers[i], layers[j] = _to_flat(layers[i], space), _to_up(layers[j], space)
        return _with_layers(net, layers)
    # g_change_stem: the latent size, or the stem grid (and so the number of upsampling steps)
    choices = space.ups_choices(shape)
    if rng.random() < 0.5 or len(choices) < 2:
        return replace(net, latent=int(_pick(rng, space.latent_sizes, net.latent)))
    target = int(_pick(rng, choices, ups))
    while len(layers) < target and len(layers) - 1 < space.max_g_blocks:
        gene = _sample_g_gene(
            rng, space, False, int(_pick(rng, space.filter_choices)), _fresh_uid(rng, taken)
        )
        layers.insert(int(rng.integers(len(layers))), gene)
    new = _set_ups(layers, target, rng, space)
    if new is None:
        return None
    h, w, _ = shape
    return _with_layers(net, new, stem_height=h // 2**target, stem_width=w // 2**target)


def _mutate_discriminator(
    op: str, net: NetworkGenome, rng: np.random.Generator, space: SearchSpace, taken: set[str]
) -> NetworkGenome | None:
    blocks = list(net.blocks)
    n = len(blocks)
    if op == "d_add_block":
        if n >= space.max_d_blocks:
            return None
        stride = 2 if rng.random() < space.p_downsample else 1
        gene = _sample_d_gene(
            rng, space, stride, int(_pick(rng, space.filter_choices)), _fresh_uid(rng, taken)
        )
        blocks.insert(int(rng.integers(n + 1)), gene)
    elif op == "d_remove_block":
        if n <= space.min_d_blocks:
            return None
        del blocks[int(rng.integers(n))]
    elif op == "d_change_layer":
        i = int(rng.integers(n))
        blocks[i] = _change_gene(blocks[i], "discriminator", "block", rng, space)
    else:  # d_change_head
        what = _pick(rng, ["minibatch_std", "pooling", "head"])
        if what == "minibatch_std":
            return replace(net, minibatch_std=not net.minibatch_std)
        if what == "pooling":
            return replace(net, pooling=_pick(rng, space.poolings, net.pooling))
        return replace(net, output=_change_gene(net.output, "discriminator", "head", rng, space))
    return replace(net, blocks=tuple(blocks))


def _mutate_training(t: TrainingGenes, rng: np.random.Generator, space: SearchSpace) -> TrainingGenes:
    name = _pick(rng, ["loss", "g_lr", "d_lr", "beta1", "beta2", "d_steps"])
    choices = {
        "loss": space.losses,
        "g_lr": space.lrs,
        "d_lr": space.lrs,
        "beta1": space.beta1s,
        "beta2": space.beta2s,
        "d_steps": space.d_steps,
    }[name]
    value = _pick(rng, choices, getattr(t, name))
    return replace(t, **{name: value if isinstance(value, str) else type(getattr(t, name))(value)})


MUTATIONS = (
    "g_add_block",
    "g_remove_block",
    "g_change_layer",
    "g_move_upsampling",
    "g_change_stem",
    "d_add_block",
    "d_remove_block",
    "d_change_layer",
    "d_change_head",
    "training",
)


def mutate(genome: GanGenome, space: SearchSpace, image_shape: Shape, rng: np.random.Generator) -> GanGenome:
    """One random mutation of ``genome`` (see :data:`MUTATIONS`), repaired; always valid.

    Mutations that do not apply (adding a block at the maximum depth, say)
    are redrawn; the result differs from the input whenever the space allows.
    """
    shape = _check_image_shape(image_shape)
    start = repair(genome, space, shape)
    taken = _uids(start.generator, start.discriminator)
    for _ in range(20):
        op = _pick(rng, MUTATIONS)
        g, d, t = start.generator, start.discriminator, start.training
        if op.startswith("g_"):
            g = _mutate_generator(op, g, rng, space, shape, taken)
        elif op.startswith("d_"):
            d = _mutate_discriminator(op, d, rng, space, taken)
        else:
            t = _mutate_training(t, rng, space)
        if g is None or d is None:
            continue
        child = repair(GanGenome(g, d, t), space, shape)
        if child != start:
            return child
    return start


# --------------------------------------------------------------------------- crossover


def _dedupe(net: NetworkGenome, rng: np.random.Generator) -> NetworkGenome:
    """Give a fresh uid to any gene whose uid already appeared earlier in ``net``."""
    taken, genes = set(), []
    all_uids = _uids(net)
    for gene in net.genes():
        if gene.uid in taken:
            gene = replace(gene, uid=_fresh_uid(rng, all_uids))
        taken.add(gene.uid)
        genes.append(gene)
    stem = genes.pop(0) if net.stem is not None else None
    return replace(net, stem=stem, blocks=tuple(genes[:-1]), output=genes[-1])


def _one_point(
    a: NetworkGenome, b: NetworkGenome, rng: np.random.Generator
) -> tuple[NetworkGenome, NetworkGenome]:
    i = int(rng.integers(len(a.blocks) + 1))
    j = int(rng.integers(len(b.blocks) + 1))
    c1 = replace(a, blocks=a.blocks[:i] + b.blocks[j:])
    c2 = replace(b, blocks=b.blocks[:j] + a.blocks[i:])
    return _dedupe(c1, rng), _dedupe(c2, rng)


def crossover(
    a: GanGenome,
    b: GanGenome,
    rng: np.random.Generator,
    space: SearchSpace | None = None,
    image_shape: Shape | None = None,
) -> tuple[GanGenome, GanGenome]:
    """Two children of ``a`` and ``b``.

    One of, at random: swap the discriminators (child 1 = a's generator with
    b's discriminator); one-point crossover of the generator blocks or of the
    discriminator blocks; uniform crossover of the training genes. Children
    may break the space's rules (depth, upsampling steps); pass ``space`` and
    ``image_shape`` to get them repaired, or call :func:`repair`.
    """
    mode = _pick(rng, ["networks", "generator_layers", "discriminator_layers", "training"])
    (ga, da, ta), (gb, db, tb) = (
        (a.generator, a.discriminator, a.training),
        (b.generator, b.discriminator, b.training),
    )
    if mode == "networks":
        c1, c2 = GanGenome(ga, db, ta), GanGenome(gb, da, tb)
    elif mode == "generator_layers":
        g1, g2 = _one_point(ga, gb, rng)
        c1, c2 = GanGenome(g1, da, ta), GanGenome(g2, db, tb)
    elif mode == "discriminator_layers":
        d1, d2 = _one_point(da, db, rng)
        c1, c2 = GanGenome(ga, d1, ta), GanGenome(gb, d2, tb)
    else:
        mask = rng.random(6) < 0.5
        t1, t2 = {}, {}
        for m, f in zip(mask, dataclasses.fields(TrainingGenes)):
            x, y = getattr(ta, f.name), getattr(tb, f.name)
            t1[f.name], t2[f.name] = (y, x) if m else (x, y)
        c1, c2 = GanGenome(ga, da, TrainingGenes(**t1)), GanGenome(gb, db, TrainingGenes(**t2))
    if space is not None and image_shape is not None:
        return repair(c1, space, image_shape), repair(c2, space, image_shape)
    return c1, c2


# --------------------------------------------------------------------------- repair


def _clean_gene(gene: LayerGene, space: SearchSpace, role: str, where: str, channels: int) -> LayerGene:
    """Clip every field of ``gene`` into what its position and the space allow."""
    g = role == "generator"
    if where in ("stem", "head"):
        kind, kernel, stride = "dense", 1, 1
    else:
        kinds = space.g_kinds if g else space.d_kinds
        kind = gene.kind if gene.kind in kinds else ("conv" if "conv" in kinds else kinds[0])
        kernel = _nearest(gene.kernel, space.kernels)
        stride = {"conv": 1 if g else min(max(gene.stride, 1), 2), "upsample_conv": 2}.get(
            kind, min(max(gene.stride, 1), 2)
        )
    norms = space.g_norms if g else space.d_norms
    norm = gene.norm if gene.norm in norms else ("none" if "none" in norms else norms[0])
    act = gene.activation if gene.activation in space.activations else space.activations[0]
    filters = min(max(gene.filters, space.min_filters), space.max_filters)
    dropout = 0.0 if g else min(max(gene.dropout, 0.0), max(space.dropouts))
    if where == "output":
        filters, norm, act, dropout = channels, "none", "tanh", 0.0
    if where == "head":
        filters, act, dropout = 1, "linear", 0.0
        norm = gene.norm if gene.norm in _head_norms(space) else "none"
    slope = gene.slope if 0 <= gene.slope < 1 else 0.0
    if act == "leaky_relu" and slope <= 0:
        slope = space.slopes[0]
    interp = gene.interpolation if gene.interpolation in space.interpolations else space.interpolations[0]
    return replace(
        gene,
        kind=kind,
        filters=filters,
        kernel=kernel,
        stride=stride,
        norm=norm,
        activation=act,
        slope=float(slope),
        dropout=float(dropout),
        interpolation=interp,
    )


def _fix_uids(genes: list[LayerGene], role: str) -> list[LayerGene]:
    """Replace malformed or repeated uids by derived ones."""
    seen: set[str] = set()
    valid = {g.uid for g in genes if _UID.match(g.uid)}
    out = []
    for i, gene in enumerate(genes):
        if gene.uid in seen or gene.uid not in valid:
            gene = replace(gene, uid=_derived_uid(f"{role}:{i}:{gene.to_dict()}", seen | valid))
        seen.add(gene.uid)
        out.append(gene)
    return out


def _filler(space: SearchSpace, role: str, like: LayerGene | None, taken: set[str], seed: str) -> LayerGene:
    """A stride-1 block that repair adds to reach the minimum depth."""
    base = like or LayerGene(kind="conv", filters=space.min_filters, activation=space.activations[0])
    kinds = space.g_kinds if role == "generator" else space.d_kinds
    kind = "conv" if "conv" in kinds else "deconv"
    gene = _clean_gene(replace(base, kind=kind, stride=1, interpolation="nearest"), space, role, "block", 0)
    return replace(gene, uid=_derived_uid(seed + str(gene.to_dict()), taken))


def _repair_generator(net: NetworkGenome, space: SearchSpace, shape: Shape) -> NetworkGenome:
    h, w, c = shape
    stem = _clean_gene(
        net.stem or LayerGene("dense", space.max_filters, 1, uid="stem"), space, "generator", "stem", c
    )
    blocks = [_clean_gene(b, space, "generator", "block", c) for b in net.blocks]
    out = _clean_gene(net.output, space, "generator", "output", c)
    if len(blocks) > space.max_g_blocks:  # drop the last blocks that do not upsample, then any
        flat = [i for i, b in enumerate(blocks) if not b.upsamples][::-1]
        order = list(dict.fromkeys(flat + list(range(len(blocks)))[::-1]))
        drop = set(order[: len(blocks) - space.max_g_blocks])
        blocks = [b for i, b in enumerate(blocks) if i not in drop]
    genes = _fix_uids([stem, *blocks, out], "generator")
    stem, blocks, out = genes[0], genes[1:-1], genes[-1]
    taken = {g.uid for g in genes}
    choices = space.ups_choices(shape)
    ups = sum(g.upsamples for g in [*blocks, out])
    target = min(choices, key=lambda u: (abs(u - ups), u))
    while len(blocks) < max(space.min_g_blocks, target - 1):
        blocks.append(_filler(space, "generator", blocks[-1] if blocks else None, taken, f"g{len(blocks)}"))
    layers = [*blocks, out]
    for i in range(len(layers)):  # too many upsampling layers: flatten the first ones
        if ups > target and layers[i].upsamples:
            layers[i], ups = _to_flat(layers[i], space), ups - 1
    for i in reversed(range(len(layers))):  # too few: upsample the last flat ones
        if ups < target and not layers[i].upsamples:
            layers[i], ups = _to_up(layers[i], space), ups + 1
    latent = net.latent if net.latent in space.latent_sizes else _nearest(net.latent, space.latent_sizes)
    return NetworkGenome(
        role="generator",
        blocks=tuple(layers[:-1]),
        output=layers[-1],
        latent=int(latent),
        stem=stem,
        stem_height=h // 2**target,
        stem_width=w // 2**target,
    )


def _repair_discriminator(net: NetworkGenome, space: SearchSpace, shape: Shape, loss: str) -> NetworkGenome:
    c = shape[2]
    blocks = [_clean_gene(b, space, "discriminator", "block", c) for b in net.blocks][: space.max_d_blocks]
    if loss == "wgan_gp":  # the gradient penalty is per sample: no batch norm
        alt = "layer" if "layer" in space.d_norms else "none"
        blocks = [replace(b, norm=alt) if b.norm == "batch" else b for b in blocks]
    head = _clean_gene(net.output, space, "discriminator", "head", c)
    genes = _fix_uids([*blocks, head], "discriminator")
    blocks, head = genes[:-1], genes[-1]
    taken = {g.uid for g in genes}
    while len(blocks) < space.min_d_blocks:
        blocks.append(
            _filler(space, "discriminator", blocks[-1] if blocks else None, taken, f"d{len(blocks)}")
        )
    blocks = _enough_downsampling(blocks, space, shape, taken)
    side = min(shape[:2])
    for i, b in enumerate(blocks):  # no stride 2 once the map is 1 pixel wide
        if b.stride > 1 and side < 2:
            blocks[i] = replace(b, stride=1)
        side = -(-side // blocks[i].stride)
    pooling = net.pooling if net.pooling in space.poolings else space.poolings[0]
    return NetworkGenome(
        role="discriminator",
        blocks=tuple(blocks),
        output=head,
        minibatch_std=bool(net.minibatch_std),
        pooling=pooling,
    )


def _enough_downsampling(
    blocks: list[LayerGene], space: SearchSpace, shape: Shape, taken: set[str]
) -> list[LayerGene]:
    """``blocks`` with at least :meth:`SearchSpace.min_downsamples` stride-2 blocks: the first stride-1
    blocks downsample (early, where it saves the most compute), then stride-2 fillers are added."""
    blocks = list(blocks)
    short = space.min_downsamples(shape) - sum(b.stride > 1 for b in blocks)
    for i, b in enumerate(blocks):
        if short > 0 and b.stride == 1:
            blocks[i], short = replace(b, stride=2), short - 1
    while short > 0:  # min_downsamples() made sure that max_d_blocks leaves room
        filler = _filler(space, "discriminator", blocks[-1] if blocks else None, taken, f"d{len(blocks)}")
        blocks.append(replace(filler, stride=2))
        short -= 1
    return blocks


def _repair_training(t: TrainingGenes, space: SearchSpace) -> TrainingGenes:
    lo, hi = min(space.lrs), max(space.lrs)

    def lr(v: float) -> float:
        return float(min(max(v, lo), hi)) if math.isfinite(v) else float(_nearest(1e-4, space.lrs))

    def beta(v: float, choices: tuple[float, ...]) -> float:
        return float(v) if 0 <= v < 1 else float(_nearest(v, choices))

    return TrainingGenes(
        loss=t.loss if t.loss in space.losses else space.losses[0],
        g_lr=lr(t.g_lr),
        d_lr=lr(t.d_lr),
        beta1=beta(t.beta1, space.beta1s),
        beta2=beta(t.beta2, space.beta2s),
        d_steps=int(t.d_steps if t.d_steps in space.d_steps else _nearest(t.d_steps, space.d_steps)),
    )


def _fit_cap(net: NetworkGenome, space: SearchSpace, shape: Shape) -> NetworkGenome:
    """Shrink ``net`` until it has at most the space's parameter cap."""
    g = net.is_generator
    cap = space.max_g_params if g else space.max_d_params
    while True:
        rows = layer_shapes(net, shape)
        if sum(p for _, _, p in rows) <= cap:
            return net
        hidden = list(net.genes()[:-1])  # genes whose filters may shrink
        # the params of a gene depend on its own filters and on those of the gene before it
        cost = {id(x): 0 for x in hidden}
        for k, (gene, _, p) in enumerate(rows):
            if id(gene) in cost and gene.filters > space.min_filters:
                cost[id(gene)] += p
            elif k > 0 and id(rows[k - 1][0]) in cost and rows[k - 1][0].filters > space.min_filters:
                cost[id(rows[k - 1][0])] += p
        victim = max(hidden, key=lambda x: cost[id(x)])
        if cost[id(victim)] > 0:
            smaller = replace(victim, filters=max(space.min_filters, victim.filters // 2))
            net = _replace_gene(net, victim, smaller)
            continue
        lo = space.min_g_blocks if g else space.min_d_blocks
        flat = [i for i, b in enumerate(net.blocks) if not b.upsamples]
        if not g and sum(b.stride > 1 for b in net.blocks) <= space.min_downsamples(shape):
            flat = [i for i in flat if net.blocks[i].stride == 1]  # keep the downsampling the image size needs
        if len(net.blocks) > lo and flat:
            net = replace(net, blocks=net.blocks[: flat[-1]] + net.blocks[flat[-1] + 1 :])
        elif g and net.latent > min(space.latent_sizes):
            net = replace(net, latent=min(space.latent_sizes))
        elif not g and net.pooling == "flatten" and "gap" in space.poolings:
            net = replace(net, pooling="gap")
        else:
            raise GenomeError(
                f"{net.role}: cannot fit the parameter cap of {cap:,} even at the smallest widths; raise the cap"
            )


def _replace_gene(net: NetworkGenome, old: LayerGene, new: LayerGene) -> NetworkGenome:
    if net.stem is old:
        return replace(net, stem=new)
    return replace(net, blocks=tuple(new if b is old else b for b in net.blocks))


def repair(genome: GanGenome, space: SearchSpace, image_shape: Shape) -> GanGenome:
    """A valid genome close to ``genome``; deterministic, and the identity on valid genomes.

    Clips every gene into the space, drops or adds blocks to the allowed depth,
    fixes the upsampling steps so the generator ends at the image size (moving
    the stem grid where the space allows, flipping layers' strides otherwise),
    makes the discriminator downsample as much as the image size needs
    (:meth:`SearchSpace.min_downsamples`), removes strides that cannot downsample, replaces batch norm with layer norm
    under ``wgan_gp``, and shrinks filters (then depth) to the parameter caps.

    Raises:
        GenomeError: the space's caps cannot be met at all.
    """
    shape = _check_image_shape(image_shape)
    t = _repair_training(genome.training, space)
    g = _fit_cap(_repair_generator(genome.generator, space, shape), space, shape)
    d = _fit_cap(_repair_discriminator(genome.discriminator, space, shape, t.loss), space, shape)
    out = GanGenome(g, d, t)
    validate(out, shape, space)
    return out


# --------------------------------------------------------------------------- distance


def _gene_distance(x: LayerGene, y: LayerGene) -> float:
    """Mean difference over a gene's fields, each in [0, 1]; the uid is ignored."""
    parts = [
        x.kind != y.kind,
        min(1.0, abs(math.log2(x.filters / y.filters)) / 3),
        x.kernel != y.kernel,
        x.stride != y.stride,
        x.norm != y.norm,
        x.activation != y.activation or abs(x.slope - y.slope) > 1e-12,
        min(1.0, 2 * abs(x.dropout - y.dropout)),
        x.bias != y.bias,
        x.interpolation != y.interpolation,
    ]
    return float(sum(parts)) / len(parts)


def _network_distance(x: NetworkGenome, y: NetworkGenome) -> float:
    d = abs(len(x.blocks) - len(y.blocks)) + sum(_gene_distance(p, q) for p, q in zip(x.blocks, y.blocks))
    d += _gene_distance(x.output, y.output)
    if x.stem is not None and y.stem is not None:
        d += _gene_distance(x.stem, y.stem)
    d += (x.latent != y.latent) + ((x.stem_height, x.stem_width) != (y.stem_height, y.stem_width))
    d += (x.minibatch_std != y.minibatch_std) + (x.pooling != y.pooling)
    return float(d)


def distance(a: GanGenome, b: GanGenome) -> float:
    """A symmetric dissimilarity >= 0, zero for genomes equal up to uids.

    Sum over both networks of: the difference in depth, plus the mean field
    difference of aligned genes (block i against block i, stem, output),
    plus network-level choices; plus the training genes (learning rates on a
    log2 scale).
    """
    t, u = a.training, b.training
    dt = (
        (t.loss != u.loss)
        + min(1.0, abs(math.log2(t.g_lr / u.g_lr)) / 3)
        + min(1.0, abs(math.log2(t.d_lr / u.d_lr)) / 3)
        + (t.beta1 != u.beta1)
        + (t.beta2 != u.beta2)
        + (t.d_steps != u.d_steps)
    ) / 6
    return (
        _network_distance(a.generator, b.generator)
        + _network_distance(a.discriminator, b.discriminator)
        + float(dt)
    )
