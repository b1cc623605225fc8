"""The DCGAN baseline as a :class:`~gan_nas.genome.GanGenome`.

This is the network of the TensorFlow DCGAN tutorial
(https://www.tensorflow.org/tutorials/generative/dcgan), written in the same
genome space as every candidate so that it is trained and scored by exactly
the same code.

For 28x28x1 it builds the tutorial's networks exactly:

- generator (2,330,944 params): Dense(7*7*256, no bias), BN, LeakyReLU,
  Reshape(7, 7, 256), Conv2DTranspose(128, 5, stride 1), BN, LeakyReLU,
  Conv2DTranspose(64, 5, stride 2), BN, LeakyReLU, Conv2DTranspose(1, 5,
  stride 2, tanh); every conv without bias, padding "same".
- discriminator (212,865 params): Conv2D(64, 5, stride 2), LeakyReLU,
  Dropout(0.3), Conv2D(128, 5, stride 2), LeakyReLU, Dropout(0.3), Flatten,
  Dense(1) logits.
- training: non-saturating loss, Adam(1e-4) for both with Keras' default
  betas (0.9, 0.999), one discriminator step per generator step, latent 100.

LeakyReLU keeps Keras' default negative slope 0.3, as in the tutorial.

Sizes below 64 keep the same style: the stem grid is the image size / 4
(8x8x256 for 32x32x3: 8 -> 8 -> 16 -> 32), and the output layer has the
image's channels. Height and width must be multiples of 4.

From 64x64 up, the baseline is the DCGAN of Radford et al. (2016), as the
authors' code builds it (Newmu/dcgan_code, ``faces/train_uncond_dcgan.py``,
ngf = ndf = 128):

- generator: Dense(4*4*1024, no bias), BN, ReLU, Reshape(4, 4, 1024), then
  four stride-2 Conv2DTranspose(5x5, no bias) of 512, 256, 128 and C filters,
  BN and ReLU after each but the last, which is tanh (18,920,320 params at
  64x64x3).
- discriminator: four stride-2 Conv2D(5x5, no bias) of 128, 256, 512 and 1024
  filters, BN after each but the first, LeakyReLU(0.2) after each, Flatten,
  Dense(1, no bias) logits (the authors' ``T.dot(h, dwy)`` on the flattened
  4x4x1024 map; 17,236,352 params at 64x64x3).
- training: non-saturating loss, Adam(2e-4, beta1 0.5, beta2 0.999) for both,
  one discriminator step per generator step, latent 100 (the paper draws it
  uniformly; every gan-nas generator gets standard normals).

Larger images add one stride-2 layer per doubling (128x128: 1024 at 4x4, then
512, 256, 128, 64, C; the discriminator mirrors it), so the stem stays 4x4 on
the short side; both sides must be multiples of the total stride. Neither
network fits the default search space's caps (max_filters 256, 4M and 2M
parameters): the baseline is measured as the paper built it, and children of a
seeded baseline are repaired into the space like any other.
"""

from __future__ import annotations

import math

from gan_nas.errors import GenomeError
from gan_nas.genome import GanGenome, LayerGene, NetworkGenome, TrainingGenes, _check_image_shape

__all__ = ["dcgan", "LEAKY_SLOPE", "RADFORD_MIN_SIZE"]

LEAKY_SLOPE = 0.3  # keras.layers.LeakyReLU() default, used by the tutorial
RADFORD_MIN_SIZE = 64  # images at least this large (short side) get Radford et al.'s DCGAN
RADFORD_SLOPE = 0.2  # the paper's LeakyReLU slope


def dcgan(image_shape: tuple[int, int, int]) -> GanGenome:
    """The DCGAN baseline for images of ``image_shape`` (height, width, channels).

    The TensorFlow tutorial's networks below 64 pixels, Radford et al.'s from 64 up.

    Raises:
        GenomeError: height or width is not a multiple of 4 (or, from 64 up, of the total stride).
    """
    h, w, c = _check_image_shape(image_shape)
    if min(h, w) >= RADFORD_MIN_SIZE:
        return radford_dcgan((h, w, c))
    return tutorial_dcgan((h, w, c))


def tutorial_dcgan(image_shape: tuple[int, int, int]) -> GanGenome:
    """The TensorFlow tutorial's DCGAN, at any size whose sides are multiples of 4.

    Raises:
        GenomeError: height or width is not a multiple of 4.
    """
    h, w, c = _check_image_shape(image_shape)
    if h % 4 or w % 4:
        raise GenomeError(f"the dcgan baseline needs height and width divisible by 4, got {h}x{w}")
    act = {"activation": "leaky_relu", "slope": LEAKY_SLOPE}
    generator = NetworkGenome(
        role="generator",
        latent=100,
        stem=LayerGene("dense", 256, kernel=1, stride=1, norm="batch", bias=False, uid="stem", **act),
        stem_height=h // 4,
        stem_width=w // 4,
        blocks=(
            LayerGene("deconv", 128, kernel=5, stride=1, norm="batch", bias=False, uid="b1", **act),
            LayerGene("deconv", 64, kernel=5, stride=2, norm="batch", bias=False, uid="b2", **act),
        ),
        output=LayerGene("deconv", c, kernel=5, stride=2, activation="tanh", bias=False, uid="out"),
    )
    discriminator = NetworkGenome(
        role="discriminator",
        blocks=(
            LayerGene("conv", 64, kernel=5, stride=2, dropout=0.3, uid="b1", **act),
            LayerGene("conv", 128, kernel=5, stride=2, dropout=0.3, uid="b2", **act),
        ),
        output=LayerGene("dense", 1, kernel=1, stride=1, uid="head"),
        minibatch_std=False,
        pooling="flatten",
    )
    training = TrainingGenes(loss="nonsaturating", g_lr=1e-4, d_lr=1e-4, beta1=0.9, beta2=0.999, d_steps=1)
    return GanGenome(generator, discriminator, training)


def radford_dcgan(image_shape: tuple[int, int, int]) -> GanGenome:
    """Radford et al.'s DCGAN: a 4x4 stem on the short side, one stride-2 layer per doubling to the image.

    Raises:
        GenomeError: the short side is under 64, or a side is not a multiple of the total stride.
    """
    h, w, c = _check_image_shape(image_shape)
    k = int(math.log2(min(h, w) // 4)) if min(h, w) >= 4 else 0  # stride-2 layers: the short side over 4
    if min(h, w) < RADFORD_MIN_SIZE or h % 2**k or w % 2**k:
        raise GenomeError(
            f"the Radford dcgan baseline needs sides of at least {RADFORD_MIN_SIZE} that are multiples of "
            f"{2**max(k, 4)} (its {max(k, 4)} stride-2 layers), got {h}x{w}"
        )
    widths = [1024 // 2**i for i in range(k)]  # the stem, then each block: 1024, 512, 256, ...
    relu = {"activation": "relu", "norm": "batch", "bias": False}
    generator = NetworkGenome(
        role="generator",
        latent=100,
        stem=LayerGene("dense", widths[0], kernel=1, stride=1, uid="stem", **relu),
        stem_height=h // 2**k,
        stem_width=w // 2**k,
        blocks=tuple(LayerGene("deconv", f, kernel=5, stride=2, uid=f"b{i}", **relu)
                     for i, f in enumerate(widths[1:], start=1)),
        output=LayerGene("deconv", c, kernel=5, stride=2, activation="tanh", bias=False, uid="out"),
    )
    leaky = {"activation": "leaky_relu", "slope": RADFORD_SLOPE, "bias": False}
    discriminator = NetworkGenome(
        role="discriminator",
        blocks=tuple(LayerGene("conv", f, kernel=5, stride=2, norm="none" if i == 1 else "batch", uid=f"b{i}",
                               **leaky)
                     for i, f in enumerate(reversed(widths), start=1)),
        output=LayerGene("dense", 1, kernel=1, stride=1, bias=False, uid="head"),
        minibatch_std=False,
        pooling="flatten",
    )
    training = TrainingGenes(loss="nonsaturating", g_lr=2e-4, d_lr=2e-4, beta1=0.5, beta2=0.999, d_steps=1)
    return GanGenome(generator, discriminator, training)
