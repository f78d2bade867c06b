"""Keras front-end: data sources, model zoo, training, export pipeline.

TensorFlow is imported lazily inside functions; importing this package costs nothing.  tfmot needs Keras 2,
so everything here uses `tf_keras` with TF_USE_LEGACY_KERAS=1 set before TensorFlow loads (see `keras_env`).
"""
import os


def keras_env():
    """Import TensorFlow and tf_keras the way tfmot needs them; returns (tf, keras)."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    import tf_keras as keras
    return tf, keras
