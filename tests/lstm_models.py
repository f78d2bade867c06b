"""Keras LSTM models converted by TensorFlow's converter (fused UNIDIRECTIONAL_SEQUENCE_LSTM), for test_lstm.py.

Few models, each covering several properties (conversion costs ~5 s per model and kind):
  seq7    7 steps x 3 features, 16 units, return_sequences=True
  stack28 28 steps x 10 features, LSTM(4, sequences) -> LSTM(33, last step): stacked, two sizes, STRIDED_SLICE
  step1   1 step x 10 features, 16 units, last step
  fine16  16 steps x 10 features, LSTM(16) -> LSTM(16), Keras's initial biases: the second layer's cell state gets
          scale 2^-16, where LiteRT's int16 tanh of the cell state has no variant (see em_lstm_int8.h, stale_tanh)
  bi7     Bidirectional(LSTM(8, sequences)) on 7 x 3: REVERSE_V2 + two LSTMs + CONCATENATION
Fixed batch 1 (RNNs with a dynamic batch do not convert, TOOLCHAIN.md).  Biases are randomized: Keras starts
them at zero (forget gate at one).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LstmSpec:
    name: str
    steps: int
    features: int
    layers: tuple          # ((units, return_sequences), ...)
    seed: int
    keras_init: bool = False   # keep Keras's initial biases (small cell states: a cell scale below 2^-15)
    bidirectional: bool = False


SPECS = {s.name: s for s in (
    LstmSpec("seq7", 7, 3, ((16, True),), 1),
    LstmSpec("stack28", 28, 10, ((4, True), (33, False)), 2),
    LstmSpec("step1", 1, 10, ((16, False),), 3),
    LstmSpec("fine16", 16, 10, ((16, True), (16, False)), 0, keras_init=True),
    LstmSpec("bi7", 7, 3, ((8, True),), 6, bidirectional=True),
)}
KINDS = ("int8", "float")
REPRESENTATIVE_SAMPLES = 48


def representative(spec: LstmSpec, n: int, seed_offset: int = 0) -> np.ndarray:
    rng = np.random.default_rng(spec.seed * 1000 + seed_offset)
    return rng.standard_normal((n, 1, spec.steps, spec.features)).astype(np.float32)


def convert(spec: LstmSpec, kind: str) -> bytes:
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    import tf_keras as keras

    keras.utils.set_random_seed(spec.seed)
    layers = [keras.layers.Input((spec.steps, spec.features), batch_size=1)]
    wrap = keras.layers.Bidirectional if spec.bidirectional else (lambda layer: layer)
    layers += [wrap(keras.layers.LSTM(units, return_sequences=seq)) for units, seq in spec.layers]
    model = keras.Sequential(layers)
    rng = np.random.default_rng(spec.seed + 7)
    for layer in model.layers if not spec.keras_init else []:
        layer.set_weights([w if w.ndim > 1 else (0.3 * rng.standard_normal(w.shape)).astype(w.dtype)
                           for w in layer.get_weights()])
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if kind == "int8":
        samples = representative(spec, REPRESENTATIVE_SAMPLES)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([s] for s in samples)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()
