"""Genome -> ``keras.Model``, through a plain registry of layer builders.

Layer names come from the role and the gene's uid, so a parent's and a
child's layers can be matched by name for weight inheritance::

    g_<uid>_dense  g_<uid>_reshape      the generator stem
    <p>_<uid>_conv | _deconv | _up      the layer itself (p: g or d)
    <p>_<uid>_sn                        SpectralNormalization wrapping <p>_<uid>_conv / _dense
    <p>_<uid>_bn | _ln                  BatchNormalization | LayerNormalization
    <p>_<uid>_act | _drop               activation | dropout
    d_mbstd, d_flatten | d_gap          the discriminator head's network-level layers

The generator uses only built-in Keras layers, so an exported ``.keras``
file loads without this package. The discriminator may use
:class:`MinibatchStdDev`, registered as ``gan_nas>MinibatchStdDev``.
Models built for training (``fused_batch_norm=True``) swap Keras's batch norm
for :class:`FusedBatchNorm`, the same layer with TensorFlow's fused kernel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
from keras import ops

from gan_nas.errors import GenomeError
from gan_nas.genome import GanGenome, LayerGene, NetworkGenome, layer_shapes, validate, validate_network

__all__ = ["LAYER_BUILDERS", "FusedBatchNorm", "MinibatchStdDev", "build_generator", "build_discriminator", "describe"]


@keras.saving.register_keras_serializable(package="gan_nas")
class MinibatchStdDev(keras.layers.Layer):
    """Appends one channel: the standard deviation over the batch, averaged over all features.

    Input (N, H, W, C) -> output (N, H, W, C + 1). Lets the discriminator see
    a batch's lack of variety (Karras et al., 2018).
    """

    def __init__(self, epsilon: float = 1e-8, **kwargs: Any):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, x: Any) -> Any:
        mean = ops.mean(x, axis=0, keepdims=True)
        std = ops.sqrt(ops.mean(ops.square(x - mean), axis=0) + self.epsilon)  # (H, W, C)
        feature = ops.ones_like(x[..., :1]) * ops.mean(std)  # (N, H, W, 1)
        return ops.concatenate([x, feature], axis=-1)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (*input_shape[:-1], input_shape[-1] + 1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "epsilon": self.epsilon}


class FusedBatchNorm(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` whose training-mode pass runs as TensorFlow's fused kernel.

    Keras 3 normalizes with separate moment, subtract, scale and shift ops,
    each a pass over the tensor forward and more backward; TensorFlow's
    ``FusedBatchNormV3`` (and its gradient) does each direction in one. Same
    variables (gamma, beta, moving mean and variance, so checkpoints and
    inheritance are unchanged), same output and moving-statistics update (the
    kernel's unbiased batch variance is converted back to Keras's biased one);
    tests/test_builder.py checks outputs, gradients and moving statistics
    against the Keras layer. Under bfloat16 mixed precision the kernel takes the
    bfloat16 input as it is (statistics and variables stay float32), where
    Keras's layer casts to float32 and back around six unfused ops, each a
    pass over the tensor.
    Inference, masks, renorm, other input dtypes and other ranks or axes fall
    back to the Keras layer. Used only for training:
    built generators that are saved use the Keras layer, so that exported
    ``.keras`` files need no gan-nas.
    """

    def call(self, inputs: Any, training: Any = None, mask: Any = None) -> Any:
        import tensorflow as tf

        rank = len(inputs.shape)
        if (not (training and self.trainable) or mask is not None or self.renorm
                or inputs.dtype not in (tf.float32, tf.bfloat16)
                or rank not in (2, 4) or self.axis not in (-1, rank - 1) or self.gamma is None
                or self.beta is None):
            return super().call(inputs, training=training, mask=mask)
        x = inputs if rank == 4 else tf.reshape(inputs, [-1, 1, 1, inputs.shape[-1]])
        y, mean, var = tf.compat.v1.nn.fused_batch_norm(x, self.gamma, self.beta, epsilon=self.epsilon,
                                                        is_training=True)
        n = tf.cast(tf.size(x) // tf.shape(x)[-1], tf.float32)  # values per channel
        m = self.momentum
        self.moving_mean.assign(self.moving_mean * m + tf.stop_gradient(mean) * (1.0 - m))
        self.moving_variance.assign(self.moving_variance * m + tf.stop_gradient(var * (n - 1.0) / n) * (1.0 - m))
        return y if rank == 4 else tf.reshape(y, tf.shape(inputs))


def _spectral(layer: keras.layers.Layer, gene: LayerGene, prefix: str) -> keras.layers.Layer:
    if gene.norm == "spectral":
        return keras.layers.SpectralNormalization(layer, name=f"{prefix}_sn")
    return layer


def _dense(x: Any, gene: LayerGene, prefix: str, units: int) -> Any:
    layer = keras.layers.Dense(units, use_bias=gene.bias, name=f"{prefix}_dense")
    return _spectral(layer, gene, prefix)(x)


def _conv(x: Any, gene: LayerGene, prefix: str, units: int) -> Any:
    layer = keras.layers.Conv2D(
        units, gene.kernel, strides=gene.stride, padding="same", use_bias=gene.bias, name=f"{prefix}_conv"
    )
    return _spectral(layer, gene, prefix)(x)


def _deconv(x: Any, gene: LayerGene, prefix: str, units: int) -> Any:
    layer = keras.layers.Conv2DTranspose(
        units, gene.kernel, strides=gene.stride, padding="same", use_bias=gene.bias, name=f"{prefix}_deconv"
    )
    return _spectral(layer, gene, prefix)(x)


def _upsample_conv(x: Any, gene: LayerGene, prefix: str, units: int) -> Any:
    x = keras.layers.UpSampling2D(gene.stride, interpolation=gene.interpolation, name=f"{prefix}_up")(x)
    return _conv(x, LayerGene(**{**gene.to_dict(), "stride": 1}), prefix, units)


#: kind -> builder(x, gene, name prefix, units) -> tensor; norm, activation and dropout follow.
LAYER_BUILDERS: dict[str, Callable[[Any, LayerGene, str, int], Any]] = {
    "dense": _dense,
    "conv": _conv,
    "deconv": _deconv,
    "upsample_conv": _upsample_conv,
}


def _post(x: Any, gene: LayerGene, prefix: str, fused: bool) -> Any:
    """Normalization, activation and dropout after a gene's layer."""
    if gene.norm == "batch":
        x = (FusedBatchNorm if fused else keras.layers.BatchNormalization)(name=f"{prefix}_bn")(x)
    elif gene.norm == "layer":
        x = keras.layers.LayerNormalization(name=f"{prefix}_ln")(x)
    if gene.activation == "leaky_relu":
        x = keras.layers.LeakyReLU(negative_slope=gene.slope, name=f"{prefix}_act")(x)
    elif gene.activation != "linear":
        x = keras.layers.Activation(gene.activation, name=f"{prefix}_act")(x)
    if gene.dropout > 0:
        x = keras.layers.Dropout(gene.dropout, name=f"{prefix}_drop")(x)
    return x


def _layer(x: Any, gene: LayerGene, role: str, fused: bool, units: int | None = None) -> Any:
    prefix = f"{role}_{gene.uid}"
    x = LAYER_BUILDERS[gene.kind](x, gene, prefix, gene.filters if units is None else units)
    return _post(x, gene, prefix, fused)


def _network(genome: GanGenome | NetworkGenome, role: str) -> NetworkGenome:
    if isinstance(genome, GanGenome):
        return genome.generator if role == "generator" else genome.discriminator
    return genome


def build_generator(genome: GanGenome | NetworkGenome, image_shape: tuple[int, int, int],
                    fused_batch_norm: bool = False) -> keras.Model:
    """The generator: input (latent,) noise, output ``image_shape`` in [-1, 1] (tanh).

    Args:
        genome: a GanGenome, or its generator NetworkGenome.
        image_shape: (height, width, channels).
        fused_batch_norm: batch norms are :class:`FusedBatchNorm` (faster training; the
            model then needs gan-nas to load), else Keras's own.

    Raises:
        GenomeError: the genome is invalid (checked before any Keras call).
    """
    net = _network(genome, "generator")
    if net.role != "generator":
        raise GenomeError(f"build_generator needs a generator, got a {net.role}")
    validate_network(net, image_shape)
    stem = net.stem
    assert stem is not None
    z = keras.Input(shape=(net.latent,), name="g_latent")
    x = _layer(z, stem, "g", fused_batch_norm, units=net.stem_height * net.stem_width * stem.filters)
    x = keras.layers.Reshape((net.stem_height, net.stem_width, stem.filters), name=f"g_{stem.uid}_reshape")(x)
    for gene in net.blocks + (net.output,):
        x = _layer(x, gene, "g", fused_batch_norm)
    return keras.Model(z, x, name="generator")


def build_discriminator(genome: GanGenome | NetworkGenome, image_shape: tuple[int, int, int],
                        fused_batch_norm: bool = False) -> keras.Model:
    """The discriminator: input ``image_shape``, output (1,) raw logits (no sigmoid).

    Args:
        genome: a GanGenome, or its discriminator NetworkGenome.
        image_shape: (height, width, channels).
        fused_batch_norm: as in :func:`build_generator`.

    Raises:
        GenomeError: the genome is invalid (checked before any Keras call).
    """
    net = _network(genome, "discriminator")
    if net.role != "discriminator":
        raise GenomeError(f"build_discriminator needs a discriminator, got a {net.role}")
    validate_network(net, image_shape)
    image = keras.Input(shape=tuple(int(v) for v in image_shape), name="d_image")
    x = image
    for gene in net.blocks:
        x = _layer(x, gene, "d", fused_batch_norm)
    if net.minibatch_std:
        x = MinibatchStdDev(name="d_mbstd")(x)
    if net.pooling == "flatten":
        x = keras.layers.Flatten(name="d_flatten")(x)
    else:
        x = keras.layers.GlobalAveragePooling2D(name="d_gap")(x)
    x = _layer(x, net.output, "d", fused_batch_norm)
    return keras.Model(image, x, name="discriminator")


def _gene_summary(gene: LayerGene) -> str:
    parts = [f"{gene.filters}"]
    if gene.kind != "dense":
        parts.append(f"k{gene.kernel} s{gene.stride}")
    if gene.kind == "upsample_conv":
        parts.append(gene.interpolation)
    if gene.norm != "none":
        parts.append(gene.norm)
    act = gene.activation + (f"({gene.slope:g})" if gene.activation == "leaky_relu" else "")
    parts.append(act)
    if gene.dropout:
        parts.append(f"drop {gene.dropout:g}")
    if not gene.bias:
        parts.append("no bias")
    return " ".join(parts)


def _table(net: NetworkGenome, image_shape: tuple[int, int, int]) -> list[str]:
    p = "g" if net.is_generator else "d"
    rows = [("layer", "kind", "settings", "output", "params")]
    if net.is_generator:
        rows.append(("g_latent", "input", f"latent {net.latent}", f"({net.latent},)", "0"))
    else:
        rows.append(("d_image", "input", "", str(tuple(image_shape)), "0"))
    last = tuple(int(v) for v in image_shape)
    for gene, shape, params in layer_shapes(net, image_shape):
        if gene is net.output and not net.is_generator:
            h, w, c = last
            if net.minibatch_std:
                c += 1
                rows.append(("d_mbstd", "mbstd", "batch stddev channel", str((h, w, c)), "0"))
            pooled = (h * w * c,) if net.pooling == "flatten" else (c,)
            rows.append((f"d_{net.pooling}", net.pooling, "", str(pooled), "0"))
        last = shape
        rows.append((f"{p}_{gene.uid}", gene.kind, _gene_summary(gene), str(shape), f"{params:,}"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = [
        "  ".join(c.ljust(w) if i < 4 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
        for r in rows
    ]
    total = sum(p for _, _, p in layer_shapes(net, image_shape))
    return [lines[0], "-" * len(lines[0]), *lines[1:], f"total {net.role} parameters: {total:,}"]


def describe(genome: GanGenome, image_shape: tuple[int, int, int]) -> str:
    """A readable table of both networks (per gene: name, kind, settings, output shape, params) and the training genes.

    Pure Python: no Keras model is built. Parameter counts equal Keras'.
    """
    validate(genome, image_shape)
    t = genome.training
    lines = [f"generator (image {tuple(image_shape)})", *_table(genome.generator, image_shape), ""]
    lines += ["discriminator", *_table(genome.discriminator, image_shape), ""]
    lines += [
        "training",
        f"  loss {t.loss}, d_steps {t.d_steps}",
        f"  Adam: g_lr {t.g_lr:g}, d_lr {t.d_lr:g}, beta1 {t.beta1:g}, beta2 {t.beta2:g}",
    ]
    return "\n".join(lines)
