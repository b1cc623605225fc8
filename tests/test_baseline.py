"""The DCGAN baseline genome builds exactly the TensorFlow tutorial's networks."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers

from gan_nas.baseline import dcgan
from gan_nas.builder import build_discriminator, build_generator
from gan_nas.errors import GenomeError
from gan_nas.genome import count_params, validate
from gan_nas.runs import load_genome
from gan_nas.space import SearchSpace

MNIST = (28, 28, 1)
CIFAR = (32, 32, 3)


@pytest.fixture(autouse=True)
def _fresh_keras():
    keras.backend.clear_session()
    yield
    keras.backend.clear_session()


def tutorial_generator(h: int, w: int, c: int) -> keras.Sequential:
    """https://www.tensorflow.org/tutorials/generative/dcgan, make_generator_model()."""
    return keras.Sequential(
        [
            keras.Input((100,)),
            layers.Dense(h // 4 * w // 4 * 256, use_bias=False),
            layers.BatchNormalization(),
            layers.LeakyReLU(),
            layers.Reshape((h // 4, w // 4, 256)),
            layers.Conv2DTranspose(128, (5, 5), strides=(1, 1), padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.LeakyReLU(),
            layers.Conv2DTranspose(64, (5, 5), strides=(2, 2), padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.LeakyReLU(),
            layers.Conv2DTranspose(
                c, (5, 5), strides=(2, 2), padding="same", use_bias=False, activation="tanh"
            ),
        ]
    )


def tutorial_discriminator(h: int, w: int, c: int) -> keras.Sequential:
    """The tutorial's make_discriminator_model()."""
    return keras.Sequential(
        [
            keras.Input((h, w, c)),
            layers.Conv2D(64, (5, 5), strides=(2, 2), padding="same"),
            layers.LeakyReLU(),
            layers.Dropout(0.3),
            layers.Conv2D(128, (5, 5), strides=(2, 2), padding="same"),
            layers.LeakyReLU(),
            layers.Dropout(0.3),
            layers.Flatten(),
            layers.Dense(1),
        ]
    )


def _param_layers(model: keras.Model) -> list[tuple[str, list[tuple[int, ...]]]]:
    return [(type(la).__name__, [tuple(v.shape) for v in la.weights]) for la in model.layers if la.weights]


@pytest.mark.parametrize(
    "shape, g_params, d_params", [(MNIST, 2_330_944, 212_865), (CIFAR, 2_733_504, 217_985)]
)
def test_dcgan_matches_tutorial(shape, g_params, d_params):
    genome = dcgan(shape)
    ours_g, ours_d = build_generator(genome, shape), build_discriminator(genome, shape)
    ref_g, ref_d = tutorial_generator(*shape), tutorial_discriminator(*shape)
    assert ours_g.count_params() == ref_g.count_params() == count_params(genome.generator, shape) == g_params
    assert (
        ours_d.count_params() == ref_d.count_params() == count_params(genome.discriminator, shape) == d_params
    )
    for ours, ref in ((ours_g, ref_g), (ours_d, ref_d)):
        assert _param_layers(ours) == _param_layers(ref)  # layer by layer, same types and weight shapes
        ours_act = [la.negative_slope for la in ours.layers if isinstance(la, layers.LeakyReLU)]
        ref_act = [la.negative_slope for la in ref.layers if isinstance(la, layers.LeakyReLU)]
        assert ours_act == ref_act
        # same function: with the same weights, same outputs
        ref.set_weights(ours.get_weights())
    z = np.random.default_rng(0).normal(size=(3, 100)).astype("float32")
    images = np.asarray(ours_g(z, training=False))
    np.testing.assert_allclose(images, np.asarray(ref_g(z, training=False)), atol=1e-5)
    np.testing.assert_allclose(
        np.asarray(ours_d(images, training=False)), np.asarray(ref_d(images, training=False)), atol=1e-5
    )
    assert images.shape == (3, *shape)


def test_dcgan_training_genes():
    t = dcgan(MNIST).training
    adam = keras.optimizers.Adam(1e-4)  # the tutorial's optimizer
    assert (t.loss, t.d_steps) == ("nonsaturating", 1)
    assert (t.g_lr, t.d_lr, t.beta1, t.beta2) == (1e-4, 1e-4, adam.beta_1, adam.beta_2)
    assert dcgan(MNIST).generator.latent == 100


def test_dcgan_is_in_the_default_space():
    for shape in (MNIST, CIFAR):
        validate(dcgan(shape), shape, SearchSpace())
    assert load_genome("dcgan", CIFAR) == dcgan(CIFAR)


@pytest.mark.parametrize("shape", [(30, 30, 3), (28, 0, 1)])
def test_dcgan_rejects_bad_shapes(shape):
    with pytest.raises(GenomeError, match=r"divisible by 4|image shape"):
        dcgan(shape)
