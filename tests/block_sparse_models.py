"""Small int8 Keras models whose Conv2D / Dense kernels are pruned in the 16(output) x 4(input)-channel blocks
edgeml's sparse kernels skip (tests/test_block_sparse.py), converted by TensorFlow's converter without
EXPERIMENTAL_SPARSITY (the zeros stay in the dense int8 weights, as `edgeml train --prune` leaves them).

Per spec: the fraction of blocks zeroed per layer, and awkward shapes (odd channels, stride 2, padding, batch 2,
1x1 and KxK convs, an FC of several rows).  TensorFlow is imported only inside `convert`."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

REPRESENTATIVE_SAMPLES = 32


@dataclass
class BlockSpec:
    name: str
    input_shape: tuple               # with the batch dimension
    build: Callable                  # build(keras, x) -> output tensor
    sparsity: float                  # fraction of 16x4 blocks zeroed in every Conv2D / Dense kernel


def seed_of(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


SPECS: dict[str, BlockSpec] = {}


def _add(spec: BlockSpec):
    SPECS[spec.name] = spec


def _resnet_block(k, x):
    y = k.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(x)
    y = k.layers.Conv2D(32, 3, padding="same")(y)
    s = k.layers.Conv2D(32, 1, strides=2, padding="same")(x)
    return k.layers.ReLU()(k.layers.Add()([y, s]))


_add(BlockSpec("resnet_like_75", (1, 16, 16, 16), lambda k, x: _resnet_block(k, k.layers.Conv2D(
    16, 3, padding="same", activation="relu")(x)), 0.75))
_add(BlockSpec("pointwise_odd_90", (1, 9, 7, 24), lambda k, x: k.layers.Conv2D(40, 1, activation="relu6")(
    k.layers.Conv2D(37, 1, activation="relu")(x)), 0.9))
_add(BlockSpec("conv_valid_batch2_50", (2, 11, 10, 12), lambda k, x: k.layers.Conv2D(
    20, (3, 2), strides=(1, 2), padding="valid")(x), 0.5))
_add(BlockSpec("fc_rows_and_gemv_80", (1, 256), lambda k, x: k.layers.Dense(33)(k.layers.Dense(
    96, activation="relu")(x)), 0.8))
_add(BlockSpec("fc_batch4_60", (4, 64), lambda k, x: k.layers.Dense(48)(x), 0.6))


def prune_blocks(kernel: np.ndarray, sparsity: float, rng) -> np.ndarray:
    """Keras kernel [..., in, out] with a random fraction `sparsity` of its 16(out) x 4(in) blocks zeroed at each
    kernel tap."""
    *taps, cin, cout = kernel.shape
    t = int(np.prod(taps)) if taps else 1
    keep = rng.random((t, -(-cin // 4), -(-cout // 16))) >= sparsity
    mask = np.repeat(np.repeat(keep, 4, 1), 16, 2)[:, :cin, :cout]
    return (kernel.reshape(t, cin, cout) * mask).reshape(kernel.shape)


def build_keras(spec: BlockSpec, keras):
    keras.utils.set_random_seed(seed_of(spec.name))
    x = keras.Input(spec.input_shape[1:], batch_size=spec.input_shape[0])
    model = keras.Model(x, spec.build(keras, x))
    rng = np.random.default_rng(seed_of(spec.name))
    for layer in model.layers:
        if type(layer).__name__ in ("Conv2D", "Dense"):
            weights = layer.get_weights()
            layer.set_weights([prune_blocks(weights[0], spec.sparsity, rng)] + weights[1:])
    return model


def inputs(spec: BlockSpec, n: int, offset: int = 0) -> list:
    rng = np.random.default_rng(seed_of(spec.name) + offset)
    return [rng.standard_normal(spec.input_shape).astype(np.float32) for _ in range(n)]


def convert(spec: BlockSpec, kind: str) -> bytes:
    assert kind == "int8"
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tensorflow as tf
    import tf_keras as keras
    converter = tf.lite.TFLiteConverter.from_keras_model(build_keras(spec, keras))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x] for x in inputs(spec, REPRESENTATIVE_SAMPLES, 1000))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()
