"""Builders: every genome of the space builds, maps noise to images, and matches the pure parameter count."""

from __future__ import annotations

from dataclasses import replace

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gan_nas.baseline import dcgan
from gan_nas.builder import (
    LAYER_BUILDERS,
    FusedBatchNorm,
    MinibatchStdDev,
    build_discriminator,
    build_generator,
    describe,
)
from gan_nas.errors import GenomeError
from gan_nas.genome import KINDS, GanGenome, LayerGene, NetworkGenome, count_params
from gan_nas.space import SearchSpace, crossover, mutate, sample

MNIST = (28, 28, 1)
CIFAR = (32, 32, 3)
SPACE = SearchSpace()
# smaller caps keep the property tests quick on a CPU
QUICK = SearchSpace(max_g_params=1_500_000, max_d_params=500_000)
seeds = st.integers(0, 2**32 - 1)
shapes = st.sampled_from([MNIST, CIFAR])
slow = settings(max_examples=8, deadline=None, derandomize=True)


@pytest.fixture(autouse=True)
def _fresh_keras():
    keras.backend.clear_session()
    yield
    keras.backend.clear_session()


def check_builds(genome: GanGenome, shape: tuple[int, int, int]) -> None:
    """Build both networks, compare parameter counts, run noise through them."""
    g, d = build_generator(genome, shape), build_discriminator(genome, shape)
    assert g.count_params() == count_params(genome.generator, shape)
    assert d.count_params() == count_params(genome.discriminator, shape)
    z = np.random.default_rng(0).normal(size=(2, genome.generator.latent)).astype("float32")
    images = np.asarray(g(z, training=False))
    assert images.shape == (2, *shape)
    assert np.all(np.abs(images) <= 1.0)
    logits = np.asarray(d(images, training=True))
    assert logits.shape == (2, 1) and np.all(np.isfinite(logits))
    for model, p in ((g, "g_"), (d, "d_")):
        names = [layer.name for layer in model.layers]
        assert len(set(names)) == len(names) and all(n.startswith(p) for n in names)
    keras.backend.clear_session()


@slow
@given(seed=seeds, shape=shapes)
def test_sampled_genomes_build(seed, shape):
    check_builds(sample(QUICK, shape, np.random.default_rng(seed)), shape)


@slow
@given(seed=seeds, shape=shapes)
def test_mutated_and_crossed_genomes_build(seed, shape):
    rng = np.random.default_rng(seed)
    a, b = sample(QUICK, shape, rng), sample(QUICK, shape, rng)
    check_builds(mutate(a, QUICK, shape, rng), shape)
    check_builds(crossover(a, b, rng, QUICK, shape)[0], shape)


def test_every_layer_option_builds():
    """One genome per option, so spectral norm, layer norm, bilinear, minibatch std, gap... are all counted."""
    base = dcgan(CIFAR)
    g, d = base.generator, base.discriminator
    variants = []
    for norm in ("batch", "layer", "none"):
        for act in ("relu", "elu", "swish", "gelu"):
            blk = replace(
                g.blocks[1],
                kind="upsample_conv",
                interpolation="bilinear",
                norm=norm,
                activation=act,
                slope=0.0,
                kernel=3,
                bias=norm == "none",
            )
            variants.append(
                replace(
                    base, generator=replace(g, blocks=(g.blocks[0], blk), stem=replace(g.stem, norm=norm))
                )
            )
    for norm in ("batch", "layer", "spectral", "none"):
        blk = replace(d.blocks[1], norm=norm, kernel=4, stride=1)
        head = replace(d.output, norm="spectral" if norm == "spectral" else "none")
        for mbstd, pooling in ((True, "gap"), (True, "flatten"), (False, "gap")):
            variants.append(
                replace(
                    base,
                    discriminator=replace(
                        d, blocks=(d.blocks[0], blk), output=head, minibatch_std=mbstd, pooling=pooling
                    ),
                )
            )
    for v in variants:
        check_builds(v, CIFAR)


def test_layer_names_follow_uids():
    genome = dcgan(MNIST)
    g = build_generator(genome, MNIST)
    names = {layer.name for layer in g.layers}
    assert {
        "g_latent",
        "g_stem_dense",
        "g_stem_bn",
        "g_stem_act",
        "g_stem_reshape",
        "g_b1_deconv",
        "g_b2_bn",
        "g_out_deconv",
        "g_out_act",
    } <= names
    spectral = replace(
        genome,
        discriminator=replace(
            genome.discriminator,
            blocks=(replace(genome.discriminator.blocks[0], norm="spectral"), genome.discriminator.blocks[1]),
        ),
    )
    d = build_discriminator(spectral, MNIST)
    assert d.get_layer("d_b1_sn").layer.name == "d_b1_conv"
    assert {"d_image", "d_b2_conv", "d_b2_drop", "d_flatten", "d_head_dense"} <= {la.name for la in d.layers}
    # a child keeps the layer names of the genes it keeps unchanged
    rng = np.random.default_rng(0)
    for _ in range(3):
        child = mutate(genome, SPACE, MNIST, rng)
        c = build_generator(child, MNIST)
        parent_genes = {x.uid: x for x in genome.generator.genes()}
        for gene in child.generator.genes():
            if parent_genes.get(gene.uid) == gene:
                p = f"g_{gene.uid}_"
                assert {la.name for la in c.layers if la.name.startswith(p)} == {
                    la.name for la in g.layers if la.name.startswith(p)
                }


def test_generator_uses_builtin_layers_only(tmp_path):
    genome = sample(SPACE, CIFAR, np.random.default_rng(11))
    genome = replace(
        genome,
        generator=replace(
            genome.generator,
            blocks=tuple(replace(b, interpolation="bilinear") for b in genome.generator.blocks),
        ),
    )
    g = build_generator(genome, CIFAR)
    assert all(type(layer).__module__.startswith("keras.") for layer in g.layers)
    path = tmp_path / "g.keras"
    g.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    z = np.ones((1, genome.generator.latent), "float32")
    np.testing.assert_allclose(np.asarray(loaded(z)), np.asarray(g(z)), atol=1e-6)


def test_discriminator_with_minibatch_std_saves(tmp_path):
    base = dcgan(MNIST)
    genome = replace(base, discriminator=replace(base.discriminator, minibatch_std=True))
    d = build_discriminator(genome, MNIST)
    d.save(tmp_path / "d.keras")
    loaded = keras.saving.load_model(tmp_path / "d.keras", compile=False)
    x = np.random.default_rng(0).uniform(-1, 1, (3, *MNIST)).astype("float32")
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(d(x)), atol=1e-5)


def test_minibatch_stddev_values():
    x = np.random.default_rng(0).normal(size=(4, 3, 3, 2)).astype("float32")
    y = np.asarray(MinibatchStdDev()(x))
    assert y.shape == (4, 3, 3, 3)
    np.testing.assert_allclose(y[..., :2], x)
    np.testing.assert_allclose(y[..., 2], np.full((4, 3, 3), x.std(axis=0).mean()), rtol=1e-5)


def test_registry_covers_kinds():
    assert set(LAYER_BUILDERS) == set(KINDS)


def test_invalid_genomes_never_reach_keras():
    base = dcgan(MNIST)
    broken = replace(base, generator=replace(base.generator, stem_height=8, stem_width=8))
    with pytest.raises(GenomeError, match=r"past the image size 28x28"):
        build_generator(broken, MNIST)
    with pytest.raises(GenomeError, match=r"image channels 3"):
        build_generator(base, CIFAR)
    with pytest.raises(GenomeError, match=r"needs a generator"):
        build_generator(base.discriminator, MNIST)
    with pytest.raises(GenomeError, match=r"needs a discriminator"):
        build_discriminator(base.generator, MNIST)
    bad_d = NetworkGenome(
        role="discriminator",
        blocks=(LayerGene("conv", 8, dropout=1.0, activation="relu"),),
        output=LayerGene("dense", 1, kernel=1, uid="h"),
    )
    with pytest.raises(GenomeError, match=r"discriminator block 0 \(uid 0, conv\): dropout"):
        build_discriminator(bad_d, MNIST)


def test_networks_build_from_network_genomes():
    base = dcgan(MNIST)
    assert build_generator(base.generator, MNIST).output_shape == (None, *MNIST)
    assert build_discriminator(base.discriminator, MNIST).output_shape == (None, 1)


def test_describe():
    text = describe(dcgan(MNIST), MNIST)
    for part in (
        "g_stem",
        "(7, 7, 256)",
        "2,330,944",
        "212,865",
        "d_flatten",
        "(6272,)",
        "nonsaturating",
        "g_lr 0.0001",
        "leaky_relu(0.3)",
        "no bias",
        "drop 0.3",
    ):
        assert part in text, part
    with pytest.raises(GenomeError):
        describe(dcgan(MNIST), CIFAR)


@pytest.mark.parametrize("shape", [(32, 40), (16, 5, 7, 6)])
def test_fused_batch_norm_matches_keras(shape):
    """Output, every gradient and the moving statistics equal Keras's batch norm, in training and after."""
    import tensorflow as tf

    x = tf.constant(np.random.default_rng(0).normal(1.0, 3.0, shape), tf.float32)
    ref, fused = keras.layers.BatchNormalization(momentum=0.9), FusedBatchNorm(momentum=0.9)
    ref.build(shape)
    fused.build(shape)
    rng = np.random.default_rng(1)
    weights = [rng.normal(1, 0.3, w.shape).astype(np.float32) for w in ref.get_weights()]
    weights[3] = np.abs(weights[3])  # a variance
    ref.set_weights(weights)
    fused.set_weights(weights)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        outs = [layer(x, training=True) for layer in (ref, fused)]
        losses = [tf.reduce_sum(y * tf.sin(y)) for y in outs]
    np.testing.assert_allclose(outs[1].numpy(), outs[0].numpy(), rtol=1e-4, atol=1e-4)
    for a, b in zip(tape.gradient(losses[0], [x, *ref.trainable_weights]),
                    tape.gradient(losses[1], [x, *fused.trainable_weights])):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-3, atol=1e-3)
    for a, b in zip(ref.get_weights(), fused.get_weights()):  # moving mean and (biased) variance updated alike
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fused(x, training=False).numpy(), ref(x, training=False).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(32, 40), (16, 5, 7, 6)])
def test_fused_batch_norm_matches_keras_in_bfloat16(shape):
    """Under mixed_bfloat16 the kernel takes the bfloat16 input itself: same outputs and gradients as
    Keras's layer (which computes in float32) to bfloat16's precision, and the same float32 statistics."""
    import tensorflow as tf

    x = tf.cast(tf.constant(np.random.default_rng(0).normal(1.0, 3.0, shape), tf.float32), tf.bfloat16)
    ref = keras.layers.BatchNormalization(momentum=0.9, dtype="mixed_bfloat16")
    fused = FusedBatchNorm(momentum=0.9, dtype="mixed_bfloat16")
    for layer in (ref, fused):
        layer.build(shape)
        layer.set_weights([np.full(w.shape, v, np.float32) for w, v in zip(layer.get_weights(), (1.5, 0.2, 0.1, 2.0))])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        outs = [layer(x, training=True) for layer in (ref, fused)]
        losses = [tf.reduce_sum(tf.cast(y, tf.float32) ** 2) for y in outs]
    assert outs[1].dtype == tf.bfloat16 and all(w.dtype == "float32" for w in fused.weights)
    np.testing.assert_allclose(tf.cast(outs[1], tf.float32).numpy(), tf.cast(outs[0], tf.float32).numpy(),
                               rtol=2e-2, atol=2e-2)
    for a, b in zip(tape.gradient(losses[0], [x, *ref.trainable_weights]),
                    tape.gradient(losses[1], [x, *fused.trainable_weights])):
        np.testing.assert_allclose(tf.cast(b, tf.float32).numpy(), tf.cast(a, tf.float32).numpy(),
                                   rtol=3e-2, atol=3e-2 * float(tf.reduce_max(tf.abs(tf.cast(a, tf.float32)))))
    for a, b in zip(ref.get_weights(), fused.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
    graph = tf.function(lambda v: fused(v, training=True)).get_concrete_function(x).graph
    kernels = [op.type for op in graph.get_operations() if op.type.startswith("FusedBatchNorm")]
    assert kernels == ["FusedBatchNormV3"]  # the fused kernel ran, not Keras's fallback


def test_fused_batch_norm_only_when_asked():
    genome = dcgan(MNIST)
    trained = build_generator(genome, MNIST, fused_batch_norm=True)
    plain = build_generator(genome, MNIST)
    bns = [la for la in trained.layers if isinstance(la, keras.layers.BatchNormalization)]
    assert bns and all(type(la) is FusedBatchNorm for la in bns)
    assert not any(isinstance(la, FusedBatchNorm) for la in plain.layers)
    assert [w.shape for w in trained.weights] == [w.shape for w in plain.weights]
