"""Every image size a folder dataset takes (28, 32, 64, 128): the search space reaches it, the
discriminator downsamples enough, and the DCGAN baseline is the right one (Radford et al. from 64)."""

from __future__ import annotations

from dataclasses import replace

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from keras import layers

from gan_nas.baseline import dcgan, radford_dcgan
from gan_nas.builder import build_discriminator, build_generator
from gan_nas.errors import GenomeError
from gan_nas.genome import count_params, layer_shapes, validate
from gan_nas.space import SearchSpace, crossover, mutate, repair, sample

SHAPES = [(28, 28, 1), (32, 32, 3), (64, 64, 3), (128, 128, 3)]
SPACE = SearchSpace()
SMALL = SearchSpace(max_g_params=300_000, max_d_params=100_000, max_filters=64, latent_sizes=(32, 64))
fast = settings(max_examples=30, deadline=None, derandomize=True)


def generator_end(genome, shape) -> tuple[int, ...]:
    """The generator's output shape, from the genome alone (no Keras)."""
    return layer_shapes(genome.generator, shape)[-1][1]


def discriminator_head_side(genome, shape) -> int:
    """The side of the discriminator's last feature map (what its pooling sees)."""
    return layer_shapes(genome.discriminator, shape)[-2][1][0]


@fast
@given(seed=st.integers(0, 2**32 - 1), shape=st.sampled_from(SHAPES), space=st.sampled_from([SPACE, SMALL]))
def test_sampled_mutated_and_crossed_genomes_reach_every_size(seed, shape, space):
    rng = np.random.default_rng(seed)
    population = [sample(space, shape, rng) for _ in range(4)]
    for _ in range(12):  # a short lineage: each child from the last ones, as a search breeds them
        a, b = population[-1], population[-2]
        children = [mutate(a, space, shape, rng), *crossover(a, b, rng, space, shape)]
        children.append(repair(crossover(a, b, rng)[0], space, shape))  # unrepaired crossover, then repair
        population += children
    for g in population:
        validate(g, shape, space)
        assert generator_end(g, shape) == shape
        assert discriminator_head_side(g, shape) <= space.d_head_side
        assert count_params(g.generator, shape) <= space.max_g_params
        assert count_params(g.discriminator, shape) <= space.max_d_params


@pytest.mark.parametrize(
    ("shape", "grids", "ups", "downs"),
    [((28, 28, 1), [(7, 7)], [2], 0), ((32, 32, 3), [(8, 8), (4, 4)], [2, 3], 0),
     ((64, 64, 3), [(8, 8), (4, 4)], [3, 4], 1), ((128, 128, 3), [(8, 8), (4, 4)], [4, 5], 2)],
)
def test_stem_grid_and_downsampling_follow_the_size(shape, grids, ups, downs):
    assert SPACE.stem_grids(shape) == grids
    assert SPACE.ups_choices(shape) == ups
    assert SPACE.min_downsamples(shape) == downs


def test_repair_adds_the_downsampling_a_large_image_needs():
    g = sample(SPACE, (128, 128, 3), np.random.default_rng(0))
    d = replace(g.discriminator, blocks=(replace(g.discriminator.blocks[0], stride=1),))
    bare = replace(g, discriminator=d)
    with pytest.raises(GenomeError, match=r"discriminator: 0 stride-2 blocks; images of 128x128 need 2"):
        validate(bare, (128, 128, 3), SPACE)
    fixed = repair(bare, SPACE, (128, 128, 3))
    assert [b.stride for b in fixed.discriminator.blocks] == [2, 2]  # the block itself, then a filler
    assert discriminator_head_side(fixed, (128, 128, 3)) == 32
    assert repair(fixed, SPACE, (128, 128, 3)) == fixed  # the identity on valid genomes


def test_a_space_too_shallow_for_the_size_says_so():
    with pytest.raises(GenomeError, match=r"images of 128x128 need 2 stride-2 blocks to come down to 32x32, "
                                          r"but the space allows 1 blocks; raise space.max_d_blocks"):
        sample(SearchSpace(max_d_blocks=1), (128, 128, 3), np.random.default_rng(0))


def test_sizes_up_to_32_sample_as_before():
    """The discriminator rule leaves 28x28 and 32x32 alone: same draws, same genomes (runs resume alike)."""
    loose = SearchSpace(d_head_side=10**6)  # no downsampling required at any size
    for shape in SHAPES[:2]:
        for seed in range(20):
            assert sample(SPACE, shape, np.random.default_rng(seed)) == sample(loose, shape, np.random.default_rng(seed))


# --- the DCGAN baseline at 64x64: Radford et al. (2016), written independently ---------------------


def radford_generator(c: int) -> keras.Sequential:
    """Newmu/dcgan_code faces/train_uncond_dcgan.py, ngf = 128: T.dot(Z, gw) (no bias) -> batchnorm ->
    relu -> reshape 4x4x1024 -> deconv 5x5 /2 to 512, 256, 128 (batchnorm, relu) -> deconv to c -> tanh."""
    model = [keras.Input((100,)), layers.Dense(4 * 4 * 1024, use_bias=False), layers.BatchNormalization(),
             layers.ReLU(), layers.Reshape((4, 4, 1024))]
    for f in (512, 256, 128):
        model += [layers.Conv2DTranspose(f, 5, strides=2, padding="same", use_bias=False),
                  layers.BatchNormalization(), layers.ReLU()]
    model.append(layers.Conv2DTranspose(c, 5, strides=2, padding="same", use_bias=False, activation="tanh"))
    return keras.Sequential(model)


def radford_discriminator(c: int) -> keras.Sequential:
    """The same file, ndf = 128: conv 5x5 /2 to 128 (lrelu 0.2, no batchnorm), 256, 512, 1024 (batchnorm,
    lrelu 0.2), then T.dot(flatten(h), dwy): one dense logit, no bias."""
    model = [keras.Input((64, 64, c)), layers.Conv2D(128, 5, strides=2, padding="same", use_bias=False),
             layers.LeakyReLU(0.2)]
    for f in (256, 512, 1024):
        model += [layers.Conv2D(f, 5, strides=2, padding="same", use_bias=False), layers.BatchNormalization(),
                  layers.LeakyReLU(0.2)]
    model += [layers.Flatten(), layers.Dense(1, use_bias=False)]
    return keras.Sequential(model)


def _param_layers(model: keras.Model) -> list[tuple[str, list[tuple[int, ...]]]]:
    return [(type(la).__name__, [tuple(v.shape) for v in la.weights]) for la in model.layers if la.weights]


def test_dcgan_at_64_is_radford_et_al():
    shape = (64, 64, 3)
    genome = dcgan(shape)
    assert genome == radford_dcgan(shape)
    keras.backend.clear_session()
    ours_g, ours_d = build_generator(genome, shape), build_discriminator(genome, shape)
    ref_g, ref_d = radford_generator(3), radford_discriminator(3)
    # 100*16384 + 4*16384 + 25*(1024*512 + 512*256 + 256*128 + 128*3) + 4*(512 + 256 + 128)
    assert ours_g.count_params() == ref_g.count_params() == count_params(genome.generator, shape) == 18_920_320
    # 25*(3*128 + 128*256 + 256*512 + 512*1024) + 4*(256 + 512 + 1024) + 16384
    assert ours_d.count_params() == ref_d.count_params() == count_params(genome.discriminator, shape) == 17_236_352
    assert _param_layers(ours_g) == _param_layers(ref_g)
    assert _param_layers(ours_d) == _param_layers(ref_d)
    assert [la.negative_slope for la in ours_d.layers if isinstance(la, layers.LeakyReLU)] == [0.2] * 4
    ref_g.set_weights(ours_g.get_weights())
    ref_d.set_weights(ours_d.get_weights())
    z = np.random.default_rng(0).normal(size=(2, 100)).astype("float32")
    images = np.asarray(ours_g(z, training=False))
    np.testing.assert_allclose(images, np.asarray(ref_g(z, training=False)), atol=1e-5)
    np.testing.assert_allclose(np.asarray(ours_d(images, training=False)), np.asarray(ref_d(images, training=False)),
                               atol=1e-4)
    t = genome.training
    assert (t.loss, t.g_lr, t.d_lr, t.beta1, t.beta2, t.d_steps) == ("nonsaturating", 2e-4, 2e-4, 0.5, 0.999, 1)
    keras.backend.clear_session()


def test_dcgan_at_32_keeps_the_tutorial_and_at_128_adds_a_layer():
    small = dcgan((32, 32, 3)).generator
    assert (small.stem_height, small.stem.filters, [b.filters for b in small.blocks]) == (8, 256, [128, 64])
    big = dcgan((128, 128, 3))
    assert (big.generator.stem_height, big.generator.stem.filters) == (4, 1024)
    assert [b.filters for b in big.generator.blocks] == [512, 256, 128, 64]
    assert [b.filters for b in big.discriminator.blocks] == [64, 128, 256, 512, 1024]
    assert layer_shapes(big.generator, (128, 128, 3))[-1][1] == (128, 128, 3)
    assert layer_shapes(big.discriminator, (128, 128, 3))[-2][1] == (4, 4, 1024)
    validate(big, (128, 128, 3))
    with pytest.raises(GenomeError, match=r"multiples of 16"):
        dcgan((72, 72, 3))
