"""Keras layers of the zoo that Keras does not have, registered so saved models load again ("edgeml>" names).

The classes are made on first use (they subclass tf_keras's Layer, and TensorFlow is imported lazily); call
`register_layers()` before loading a model file that may hold them.
"""
from __future__ import annotations

import functools

from edgeml.train import keras_env


@functools.lru_cache(maxsize=None)
def position_embedding():
    """The PositionEmbedding layer class: adds a learned (time, features) table to a (batch, time, features) input.

    It converts to one ADD of a constant; pruning, clustering and QAT leave it as it is (like a bias)."""
    _, keras = keras_env()

    @keras.utils.register_keras_serializable(package="edgeml")
    class PositionEmbedding(keras.layers.Layer):
        def build(self, input_shape):
            self.positions = self.add_weight(name="positions", shape=(int(input_shape[1]), int(input_shape[2])),
                                             initializer=keras.initializers.RandomNormal(stddev=0.02))
            super().build(input_shape)

        def call(self, x):
            return x + self.positions

    return PositionEmbedding


def register_layers() -> dict:
    """Registers every edgeml layer with Keras; returns them as custom_objects."""
    cls = position_embedding()
    return {"PositionEmbedding": cls, "edgeml>PositionEmbedding": cls}
