"""The search space and its operators (pure Python, no Keras): validity, purity, determinism, repair."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gan_nas.baseline import dcgan
from gan_nas.config import SpaceConfig
from gan_nas.errors import ConfigError, GenomeError
from gan_nas.genome import _UID, GanGenome, LayerGene, count_params, validate
from gan_nas.space import SearchSpace, crossover, distance, mutate, repair, sample

MNIST = (28, 28, 1)
CIFAR = (32, 32, 3)
SPACE = SearchSpace()
SMALL = SearchSpace(max_g_params=300_000, max_d_params=100_000, max_filters=128, latent_sizes=(32, 64))

seeds = st.integers(0, 2**32 - 1)
shapes = st.sampled_from([MNIST, CIFAR])
spaces = st.sampled_from([SPACE, SMALL])
fast = settings(max_examples=40, deadline=None, derandomize=True)


def test_from_config():
    assert SearchSpace.from_config(SpaceConfig()) == SPACE
    cfg = SpaceConfig(min_g_blocks=2, max_g_blocks=3, max_filters=64, max_g_params=10**6, latent_sizes=[32])
    space = SearchSpace.from_config(cfg)
    assert (space.min_g_blocks, space.max_g_blocks, space.max_filters, space.max_g_params) == (
        2,
        3,
        64,
        10**6,
    )
    assert space.latent_sizes == (32,)
    assert space.filter_choices == (16, 32, 64)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"min_g_blocks": 3, "max_g_blocks": 2}, r"min_g_blocks"),
        ({"min_filters": 0}, r"min_filters"),
        ({"g_kinds": ("conv",)}, r"g_kinds needs a kind that upsamples"),
        ({"losses": ()}, r"losses must not be empty"),
    ],
)
def test_space_rejects_bad_bounds(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        SearchSpace(**kwargs)


def test_stem_grids():
    assert SPACE.stem_grids(MNIST) == [(7, 7)]
    assert SPACE.stem_grids(CIFAR) == [(8, 8), (4, 4)]
    assert SPACE.ups_choices(CIFAR) == [2, 3]
    assert SPACE.stem_grids((30, 30, 3)) == [(15, 15)]  # no grid within 3..8: the smallest reachable
    assert SearchSpace(max_g_blocks=1).stem_grids(CIFAR) == [(8, 8)]  # 4x4 needs 3 upsampling layers


@fast
@given(seed=seeds, shape=shapes, space=spaces)
def test_operators_give_valid_genomes(seed, shape, space):
    rng = np.random.default_rng(seed)
    a, b = sample(space, shape, rng), sample(space, shape, rng)
    children = [mutate(a, space, shape, rng), *crossover(a, b, rng, space, shape)]
    children += [repair(c, space, shape) for c in crossover(a, b, rng)]
    for g in [a, b, *children]:
        validate(g, shape, space)
        assert count_params(g.generator, shape) <= space.max_g_params
        assert count_params(g.discriminator, shape) <= space.max_d_params
        assert all(_UID.match(gene.uid) for net in (g.generator, g.discriminator) for gene in net.genes())


def test_mutation_chains_stay_valid():
    rng = np.random.default_rng(0)
    for shape in (MNIST, CIFAR):
        g = dcgan(shape)
        for _ in range(60):
            child = mutate(g, SPACE, shape, rng)
            validate(child, shape, SPACE)
            assert child != g
            g = child


def test_crossover_chains_stay_valid():
    rng = np.random.default_rng(1)
    for shape in (MNIST, CIFAR):
        pop = [sample(SPACE, shape, rng) for _ in range(6)]
        for _ in range(40):
            i, j = rng.choice(len(pop), 2, replace=False)
            pop += crossover(pop[i], pop[j], rng, SPACE, shape)
            pop[-1] = mutate(pop[-1], SPACE, shape, rng)
        for g in pop:
            validate(g, shape, SPACE)


@fast
@given(seed=seeds, shape=shapes)
def test_operators_deterministic_and_pure(seed, shape):
    def run():
        rng = np.random.default_rng(seed)
        a, b = sample(SPACE, shape, rng), sample(SPACE, shape, rng)
        before = (a.to_dict(), b.to_dict())
        out = [a, b, mutate(a, SPACE, shape, rng), *crossover(a, b, rng), *crossover(a, b, rng, SPACE, shape)]
        repair(a, SPACE, shape)
        assert (a.to_dict(), b.to_dict()) == before  # inputs unchanged
        return [g.to_dict() for g in out]

    py_state, np_state = random.getstate(), np.random.get_state()
    assert run() == run()
    assert random.getstate() == py_state  # no global random
    assert np.all(np.random.get_state()[1] == np_state[1])


def test_different_seeds_differ():
    genomes = {sample(SPACE, CIFAR, np.random.default_rng(s)) for s in range(20)}
    assert len(genomes) == 20


@fast
@given(seed=seeds, shape=shapes)
def test_repair_is_identity_on_valid(seed, shape):
    rng = np.random.default_rng(seed)
    a, b = sample(SPACE, shape, rng), sample(SPACE, shape, rng)
    for g in (a, dcgan(shape), mutate(a, SPACE, shape, rng), *crossover(a, b, rng, SPACE, shape)):
        assert repair(g, SPACE, shape) == g


@fast
@given(seed=seeds)
def test_mutate_keeps_uids_of_kept_genes(seed):
    rng = np.random.default_rng(seed)
    a = sample(SPACE, CIFAR, rng)
    child = mutate(a, SPACE, CIFAR, rng)
    for old, new in ((a.generator, child.generator), (a.discriminator, child.discriminator)):
        old_genes = {gene.uid: gene for gene in old.genes()}
        kept = [gene for gene in new.genes() if gene.uid in old_genes]
        assert len(kept) >= len(old.genes()) - 1  # at most one gene removed
        assert len({gene.uid for gene in new.genes()}) == len(new.genes())


def test_crossover_modes():
    rng = np.random.default_rng(5)
    a, b = sample(SPACE, CIFAR, rng), sample(SPACE, CIFAR, rng)
    seen = set()
    for _ in range(40):
        for c in crossover(a, b, rng):
            for net in (c.generator, c.discriminator):
                assert len({g.uid for g in net.genes()}) == len(net.genes())
            same = [p for p in (a, b) if c.generator == p.generator and c.discriminator == p.discriminator]
            if same:
                seen.add("training")
            elif c.generator in (a.generator, b.generator) and c.discriminator in (
                a.discriminator,
                b.discriminator,
            ):
                seen.add("networks")
            else:
                seen.add("layers")
    assert seen == {"networks", "training", "layers"}


def test_repair_fixes_broken_genomes():
    base = dcgan(CIFAR)
    g = base.generator
    too_deep = replace(g, blocks=g.blocks + tuple(replace(g.blocks[0], uid=f"x{i}") for i in range(5)))
    wrong_ups = replace(g, blocks=(replace(g.blocks[0], stride=2), g.blocks[1]))
    wide = replace(g, blocks=(replace(g.blocks[0], filters=4096, kernel=7), g.blocks[1]), latent=7)
    dup = replace(g, blocks=(replace(g.blocks[0], uid="b2"), g.blocks[1]))
    bad_d = replace(
        base.discriminator,
        blocks=tuple(
            LayerGene(
                "conv", 16, kernel=3, stride=2, norm="batch", activation="relu", dropout=0.9, uid=f"y{i}"
            )
            for i in range(7)
        ),
    )
    for gen in (too_deep, wrong_ups, wide, dup):
        fixed = repair(replace(base, generator=gen), SPACE, CIFAR)
        validate(fixed, CIFAR, SPACE)
    fixed = repair(
        replace(base, discriminator=bad_d, training=replace(base.training, loss="wgan_gp", g_lr=1.0)),
        SPACE,
        CIFAR,
    )
    validate(fixed, CIFAR, SPACE)
    assert all(b.norm == "layer" for b in fixed.discriminator.blocks)
    assert fixed.training.g_lr == max(SPACE.lrs)
    # a 7x7 stem for 32x32 images moves to 8x8 (2 upsampling layers)
    moved = repair(dcgan(MNIST), SPACE, CIFAR)
    assert (moved.generator.stem_height, moved.generator.output.filters) == (8, 3)


def test_repair_fits_caps():
    space = SearchSpace(max_g_params=200_000, max_d_params=50_000)
    fixed = repair(dcgan(MNIST), space, MNIST)
    validate(fixed, MNIST, space)
    assert fixed.generator.blocks[0].uid == "b1"  # shrunk, not replaced


def test_repair_raises_when_cap_impossible():
    with pytest.raises(GenomeError, match=r"cannot fit the parameter cap"):
        repair(dcgan(MNIST), SearchSpace(max_g_params=1000), MNIST)


def test_distance():
    rng = np.random.default_rng(2)
    a, b = sample(SPACE, CIFAR, rng), sample(SPACE, CIFAR, rng)
    assert distance(a, a) == 0
    assert distance(a, b) == distance(b, a) > 0
    renamed = replace(a, generator=replace(a.generator, stem=replace(a.generator.stem, uid="zz")))
    assert distance(a, renamed) == 0
    child = mutate(a, SPACE, CIFAR, rng)
    assert 0 < distance(a, child)
    assert isinstance(distance(a, b), float)


def test_genomes_from_json_survive_operators():
    g = GanGenome.from_json(dcgan(MNIST).to_json())
    rng = np.random.default_rng(9)
    validate(mutate(g, SPACE, MNIST, rng), MNIST, SPACE)
