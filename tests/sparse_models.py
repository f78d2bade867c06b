"""Small Keras models with pruned weights, converted with `Optimize.EXPERIMENTAL_SPARSITY` (the converter stores
the pruned weights sparse and reads them through DENSIFY) and without it (the dense twin), float32 and int8.

Kinds: "float", "int8" (sparse), "float_dense", "int8_dense" (the same Keras model, dense).  The weights are pruned
at random (`sparsity` of them zero) or in blocks of `block` along the input dimension; TensorFlow is imported only
inside `convert`.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

REPRESENTATIVE_SAMPLES = 32
KINDS = ("float", "int8", "float_dense", "int8_dense")


@dataclass
class SparseSpec:
    name: str
    input_shape: tuple               # without the batch dimension
    build: Callable                  # build(keras, x) -> output tensor
    sparsity: float = 0.8
    block: int = 1                   # prune whole runs of `block` weights along a Dense kernel's input dimension


def seed_of(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


SPECS: dict[str, SparseSpec] = {}


def _add(spec: SparseSpec):
    SPECS[spec.name] = spec


_add(SparseSpec("conv_dense_random", (9, 9, 3), lambda k, x: k.layers.Dense(10)(k.layers.Flatten()(
    k.layers.Dense(32, activation="relu")(k.layers.Conv2D(16, 3, activation="relu")(x))))))
_add(SparseSpec("dense_odd_sizes", (37,), lambda k, x: k.layers.Dense(5)(k.layers.Dense(23, activation="relu")(x)),
                sparsity=0.6))
_add(SparseSpec("dense_blocks_of_4", (64,), lambda k, x: k.layers.Dense(8)(k.layers.Dense(32, activation="relu")(x)),
                sparsity=0.7, block=4))
_add(SparseSpec("conv_strided_mostly_zero", (12, 10, 5), lambda k, x: k.layers.Conv2D(
    7, (3, 2), strides=2, padding="same")(x), sparsity=0.93))


def build_keras(spec: SparseSpec, keras):
    keras.utils.set_random_seed(seed_of(spec.name))      # the sparse model and its dense twin get the same weights
    x = keras.Input(spec.input_shape, batch_size=1)
    model = keras.Model(x, spec.build(keras, x))
    rng = np.random.default_rng(seed_of(spec.name))
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        w = weights[0]
        if spec.block > 1:      # Dense kernels are [in, out]: zero whole runs along the input dimension
            keep = (rng.random((w.shape[0] // spec.block, w.shape[1])) >= spec.sparsity).repeat(spec.block, axis=0)
        else:
            keep = rng.random(w.shape) >= spec.sparsity
        layer.set_weights([w * keep] + weights[1:])
    return model


def inputs(spec: SparseSpec, n: int, offset: int = 0) -> list:
    rng = np.random.default_rng(seed_of(spec.name) + offset)
    return [rng.standard_normal((1, *spec.input_shape)).astype(np.float32) for _ in range(n)]


def convert(spec: SparseSpec, kind: str) -> bytes:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tensorflow as tf
    import tf_keras as keras
    model = build_keras(spec, keras)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    optimizations = [] if kind.endswith("_dense") else [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
    if kind.startswith("int8"):
        optimizations = [tf.lite.Optimize.DEFAULT] + optimizations
        converter.representative_dataset = lambda: ([x] for x in inputs(spec, REPRESENTATIVE_SAMPLES, 1000))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.optimizations = optimizations
    return converter.convert()
