"""Hybrid ("dynamic-range") Keras LSTM models for test_lstm_hybrid.py: float input and state, int8 LSTM weights.

TensorFlow's converter with optimizations=[Optimize.DEFAULT] and no representative dataset emits a fused
UNIDIRECTIONAL_SEQUENCE_LSTM with int8 weights (one scale per tensor, also with per-channel quantization left
on), float biases and state, and asymmetric_quantize_inputs=True -- but only for LSTMs whose every weight tensor
has at least 1024 elements (units x features >= 1024); smaller LSTMs stay float.  For the small sizes
`quantize_lstm_weights` then does what the converter would have done (symmetric int8, scale max|w| / 127, one
per tensor) on the converter's own model, so every model below is a converter-made file:
  seq7    7 steps x 3 features, LSTM(16, sequences)
  step1   1 step x 10 features, LSTM(8, last step)
  stack16 16 steps x 10 features, LSTM(33, sequences) -> LSTM(8, last step): stacked, STRIDED_SLICE
  batch3  7 steps x 3 features, LSTM(16, sequences), fixed batch 3 (the converter accepts a fixed batch)
  odd13   5 steps x 3 features, LSTM(13, sequences), batch 2: gate buffers off 16-byte boundaries in LiteRT
  big28   28 steps x 40 features, LSTM(64, last step): quantized by the converter itself
Biases are randomized (Keras starts them at zero, forget gate at one).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

WEIGHT_INPUTS = tuple(range(1, 9))          # input-to-gate and recurrent-to-gate weights of the fused op


@dataclass(frozen=True)
class HybridSpec:
    name: str
    steps: int
    features: int
    layers: tuple          # ((units, return_sequences), ...)
    seed: int
    batch: int = 1
    by_converter: bool = False     # every weight tensor >= 1024 elements: the converter quantizes it


SPECS = {s.name: s for s in (
    HybridSpec("seq7", 7, 3, ((16, True),), 11),
    HybridSpec("step1", 1, 10, ((8, False),), 12),
    HybridSpec("stack16", 16, 10, ((33, True), (8, False)), 13),
    HybridSpec("batch3", 7, 3, ((16, True),), 14, batch=3),
    HybridSpec("odd13", 5, 3, ((13, True),), 16, batch=2),
    HybridSpec("big28", 28, 40, ((64, False),), 15, by_converter=True),
)}
KINDS = ("dynamic",)


def _schema():
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as fb
    return flatbuffers, fb


def _lstm_ops(model, fb):
    return [op for op in model.subgraphs[0].operators
            if model.operatorCodes[op.opcodeIndex].builtinCode == fb.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM]


def _pack(model, flatbuffers) -> bytes:
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def quantize_lstm_weights(model_bytes: bytes, per_channel: bool = False, asymmetric_inputs: bool = True) -> bytes:
    """Float LSTM weights -> symmetric int8 (scale max|w| / 127 per tensor, or per row with per_channel) and the
    asymmetric_quantize_inputs option set, in the converter's layout (TensorFlow's flatbuffer object API)."""
    flatbuffers, fb = _schema()
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(bytearray(model_bytes), 0))
    tensors = model.subgraphs[0].tensors
    for op in _lstm_ops(model, fb):
        op.builtinOptions.asymmetricQuantizeInputs = asymmetric_inputs
        for position in WEIGHT_INPUTS:
            t = tensors[op.inputs[position]]
            raw = bytes(bytearray(model.buffers[t.buffer].data))
            if t.type == fb.TensorType.INT8:       # re-quantize the converter's (or our) per-tensor int8
                w = np.frombuffer(raw, np.int8).reshape(t.shape) * np.float32(t.quantization.scale[0])
            else:
                w = np.frombuffer(raw, np.float32).reshape(t.shape)
            peak = np.abs(w).max(axis=1) if per_channel else np.array([np.abs(w).max()])
            scale = (np.where(peak > 0, peak, 1.0) / 127.0).astype(np.float32)
            q = np.clip(np.round(w / (scale[:, None] if per_channel else scale[0])), -127, 127).astype(np.int8)
            buf = fb.BufferT()
            buf.data = np.frombuffer(q.tobytes(), np.uint8)
            model.buffers.append(buf)
            t.buffer = len(model.buffers) - 1
            t.type = fb.TensorType.INT8
            t.quantization = fb.QuantizationParametersT()
            t.quantization.scale = [float(s) for s in scale]
            t.quantization.zeroPoint = [0] * scale.size
            t.quantization.quantizedDimension = 0
    return _pack(model, flatbuffers)


def edit_lstm_options(model_bytes: bytes, activation: int = None, asymmetric_inputs: bool = None,
                      time_major: bool = False) -> bytes:
    """Every LSTM with another fused (cell) activation or input quantization, or the single LSTM turned
    time-major (input [T, B, F] and output [T, B, units]: the same op on transposed tensors), for variants the
    converter does not emit."""
    flatbuffers, fb = _schema()
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(bytearray(model_bytes), 0))
    ops = _lstm_ops(model, fb)
    for op in ops:
        if activation is not None:
            op.builtinOptions.fusedActivationFunction = activation
        if asymmetric_inputs is not None:
            op.builtinOptions.asymmetricQuantizeInputs = asymmetric_inputs
    if time_major:
        (op,) = ops
        op.builtinOptions.timeMajor = True
        for index in (op.inputs[0], op.outputs[0]):
            t = model.subgraphs[0].tensors[index]
            t.shape = [t.shape[1], t.shape[0], t.shape[2]]
            t.shapeSignature = None
    return _pack(model, flatbuffers)


def convert(spec: HybridSpec, kind: str) -> bytes:
    assert kind == "dynamic", kind
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    import tf_keras as keras

    keras.utils.set_random_seed(spec.seed)
    model = keras.Sequential([keras.layers.Input((spec.steps, spec.features), batch_size=spec.batch)]
                             + [keras.layers.LSTM(units, return_sequences=seq) for units, seq in spec.layers])
    rng = np.random.default_rng(spec.seed + 7)
    for layer in model.layers:
        layer.set_weights([w if w.ndim > 1 else (0.3 * rng.standard_normal(w.shape)).astype(w.dtype)
                           for w in layer.get_weights()])
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]        # no representative dataset: dynamic range
    out = converter.convert()
    return out if spec.by_converter else quantize_lstm_weights(out)
