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

Other image sizes keep the same style: the stem grid is the image size / 4
(8x8x256 for 32x32x3: 8 -> 8 -> 16 -> 32), and the output layer has the
image's channels. Height and width must be multiples of 4.
"""

from __future__ import annotations

from gan_nas.errors import GenomeError
from gan_nas.genome import GanGenome, LayerGene, NetworkGenome, TrainingGenes, _check_image_shape

__all__ = ["dcgan", "LEAKY_SLOPE"]

LEAKY_SLOPE = 0.3  # keras.layers.LeakyReLU() default, used by the tutorial


def dcgan(image_shape: tuple[int, int, int]) -> GanGenome:
    """The tutorial DCGAN for images of ``image_shape`` (height, width, channels).

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
