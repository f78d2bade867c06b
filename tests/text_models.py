"""Keras text classifiers (token ids -> Embedding -> pooling or attention -> Dense) for the conformance tests.

The token input stays an integer tensor through quantization (the converter keeps non-float inputs as they are),
so these exercise GATHER on int8 / float tables, CAST of float token ids, BATCH_MATMUL of attention scores, and
the layer-norm arithmetic (SHAPE / FILL / REDUCE_PROD / RSQRT) TensorFlow emits with dynamic shapes."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

VOCABULARY, LENGTH, WIDTH, CLASSES = 50, 12, 16, 3
CALIBRATION_SAMPLES = 32


@dataclass(frozen=True)
class TextSpec:
    body: str            # pool | attention | dot_attention
    token_dtype: str     # int32, or float32 (the model casts the ids)
    ops: tuple           # ops every conversion of the model holds


SPECS = {
    "embedding_pool": TextSpec("pool", "int32", ("GATHER", "MEAN", "FULLY_CONNECTED")),
    "embedding_pool_float_ids": TextSpec("pool", "float32", ("CAST", "GATHER", "MEAN", "FULLY_CONNECTED")),
    "multi_head_attention": TextSpec("attention", "int32", ("GATHER", "BATCH_MATMUL", "SOFTMAX", "RSQRT")),
    "dot_attention": TextSpec("dot_attention", "int32", ("GATHER", "BATCH_MATMUL", "SOFTMAX", "REDUCE_MAX")),
}
KINDS = ("float", "int8", "int8_io")   # int8_io: int8 output tensor too (the ids stay int32)


def tokens(rng, batch: int = 1, dtype: str = "int32") -> np.ndarray:
    return rng.integers(0, VOCABULARY, (batch, LENGTH)).astype(dtype)


def build(spec: TextSpec):
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tensorflow as tf
    from tf_keras import Input, Model, layers

    tf.random.set_seed(1)
    ids = Input((LENGTH,), dtype=spec.token_dtype)
    x = layers.Embedding(VOCABULARY, WIDTH)(ids)
    if spec.body == "pool":
        h = layers.GlobalAveragePooling1D()(x)
    elif spec.body == "attention":
        a = layers.MultiHeadAttention(num_heads=2, key_dim=8)(x, x)
        h = layers.GlobalAveragePooling1D()(layers.LayerNormalization()(x + a))
    else:
        scores = tf.nn.softmax(tf.matmul(x, x, transpose_b=True) / 4.0)
        h = layers.GlobalMaxPooling1D()(tf.matmul(scores, x))
    y = layers.Dense(CLASSES, activation="softmax")(layers.Dense(8, activation="relu")(h))
    return Model(ids, y)


def convert(spec: TextSpec, kind: str) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(build(spec))
    if kind != "float":
        rng = np.random.default_rng(7)

        def calibration():
            for _ in range(CALIBRATION_SAMPLES):
                yield [tokens(rng, dtype=spec.token_dtype)]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = calibration
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if kind == "int8_io":
            converter.inference_output_type = tf.int8
    return converter.convert()
