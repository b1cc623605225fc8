"""gan-nas: evolutionary neural architecture search for GANs in TensorFlow/Keras."""

__version__ = "0.1.0"
