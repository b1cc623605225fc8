"""The TensorFlow DCGAN tutorial's networks and train step, written as the tutorial writes them.

The independent reference that experiments/bench_train.py and bench_data.py measure
gan-nas against: nothing here comes from gan_nas.
"""

from __future__ import annotations

import keras
import tensorflow as tf


def tutorial_dcgan() -> tuple[keras.Model, keras.Model]:
    """The tutorial's generator (100-d noise -> 28x28x1) and discriminator (-> one logit)."""
    g = keras.Sequential([
        keras.Input((100,)),
        keras.layers.Dense(7 * 7 * 256, use_bias=False), keras.layers.BatchNormalization(), keras.layers.LeakyReLU(),
        keras.layers.Reshape((7, 7, 256)),
        keras.layers.Conv2DTranspose(128, 5, 1, "same", use_bias=False), keras.layers.BatchNormalization(),
        keras.layers.LeakyReLU(),
        keras.layers.Conv2DTranspose(64, 5, 2, "same", use_bias=False), keras.layers.BatchNormalization(),
        keras.layers.LeakyReLU(),
        keras.layers.Conv2DTranspose(1, 5, 2, "same", use_bias=False, activation="tanh"),
    ])
    d = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(64, 5, 2, "same"), keras.layers.LeakyReLU(), keras.layers.Dropout(0.3),
        keras.layers.Conv2D(128, 5, 2, "same"), keras.layers.LeakyReLU(), keras.layers.Dropout(0.3),
        keras.layers.Flatten(), keras.layers.Dense(1),
    ])
    return g, d


def tutorial_step(g: keras.Model, d: keras.Model, batch: int):
    """The tutorial's ``train_step(images)``: Adam 1e-4 for both, cross-entropy, one ``tf.function``."""
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    go, do = keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-4)

    @tf.function
    def train_step(images):
        noise = tf.random.normal([batch, 100])
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            generated = g(noise, training=True)
            real_output, fake_output = d(images, training=True), d(generated, training=True)
            gen_loss = bce(tf.ones_like(fake_output), fake_output)
            disc_loss = bce(tf.ones_like(real_output), real_output) + bce(tf.zeros_like(fake_output), fake_output)
        go.apply_gradients(zip(gen_tape.gradient(gen_loss, g.trainable_variables), g.trainable_variables))
        do.apply_gradients(zip(disc_tape.gradient(disc_loss, d.trainable_variables), d.trainable_variables))

    return train_step
