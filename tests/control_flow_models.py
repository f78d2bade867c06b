"""Models with WHILE loops for test_control_flow.py, made by TensorFlow's converter in float (GRU / SimpleRNN convert
to WHILE loops only in float: their int8 calibration crashes, see TOOLCHAIN.md), and flatbuffer edits of them.

  Keras GRU / SimpleRNN layers (fixed batch 1 or 2, returning sequences or the last step): a WHILE whose body
  reads step i of the input with GATHER and writes h into the output TensorList with run-time SLICEs and a
  CONCATENATION; stacked, go_backwards and reset_after=False variants.
  tf.while_loop functions: a data-dependent trip count (MEAN, LESS on float and int32, LOGICAL_AND), loop
  variables that trade places, and a WHILE nested in another's body; the bodies' int32 and bool ops alone.
TensorFlow is imported only inside `convert`; the helpers at the end edit models in the object API of its
schema module (tests/tflite_schema.py).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LoopModel:
    name: str
    shape: tuple             # the input's shape, batch included
    layers: tuple = ()       # Keras recurrent layers: (class name, units, keyword arguments)
    function: str = ""       # or one of FUNCTIONS: a tf.function with a tf.while_loop
    spread: float = 1.0      # standard deviation of the test inputs (int32: their largest magnitude)
    whiles: int = 1          # WHILE ops in the main graph
    dtype: str = "float32"
    holds: frozenset = frozenset()     # other op types the main graph must hold


def _rnn(name, batch, steps, features, *layers, **kw):
    return LoopModel(name, (batch, steps, features), layers=tuple(layers), **kw)


SPECS = {s.name: s for s in (
    _rnn("gru_seq_b1", 1, 7, 3, ("GRU", 6, dict(return_sequences=True))),
    _rnn("gru_last_b1", 1, 9, 4, ("GRU", 5, {})),
    _rnn("gru_seq_b2", 2, 6, 3, ("GRU", 7, dict(return_sequences=True))),
    _rnn("gru_last_b2", 2, 5, 6, ("GRU", 4, {})),
    _rnn("rnn_seq_b1", 1, 8, 3, ("SimpleRNN", 5, dict(return_sequences=True))),
    _rnn("rnn_last_b1", 1, 6, 5, ("SimpleRNN", 9, dict(activation="relu"))),
    _rnn("rnn_seq_b2", 2, 7, 2, ("SimpleRNN", 3, dict(return_sequences=True))),
    _rnn("rnn_last_b2", 2, 4, 3, ("SimpleRNN", 6, {})),
    _rnn("gru_reset_before_b2", 2, 5, 3, ("GRU", 5, dict(return_sequences=True, reset_after=False))),
    _rnn("gru_backwards_b1", 1, 6, 4, ("GRU", 5, dict(go_backwards=True))),
    _rnn("stacked_gru_rnn_b2", 2, 6, 3, ("GRU", 8, dict(return_sequences=True)), ("SimpleRNN", 4, {}), whiles=2),
    LoopModel("loop_until_mean", (2, 3), function="until_mean", spread=2.0),
    LoopModel("loop_swap", (3, 5), function="swap"),
    LoopModel("loop_nested", (4, 6), function="nested"),
    LoopModel("int32_and_bool_ops", (3, 4), function="int32_and_bool", spread=3e4, whiles=0, dtype="int32",
              holds=frozenset({"MUL", "SUB", "ADD", "LESS", "LOGICAL_OR", "LOGICAL_AND", "LOGICAL_NOT"})),
)}


def _seed(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


def inputs(spec: LoopModel, n: int) -> list:
    """n seeded inputs: normal float32, or int32 uniform in [-spread, spread]."""
    rng = np.random.default_rng(_seed(spec.name))
    if spec.dtype == "int32":
        return [rng.integers(-spec.spread, spec.spread, spec.shape, endpoint=True).astype(np.int32) for _ in range(n)]
    return [(spec.spread * rng.standard_normal(spec.shape)).astype(np.float32) for _ in range(n)]


def _keras_model(spec: LoopModel, keras):
    keras.utils.set_random_seed(_seed(spec.name) % 2**31)
    x = keras.Input(shape=spec.shape[1:], batch_size=spec.shape[0])
    y = x
    for cls, units, kw in spec.layers:
        y = getattr(keras.layers, cls)(units, **kw)(y)
    model = keras.Model(x, y)
    rng = np.random.default_rng(_seed(spec.name) + 1)
    for layer in model.layers:          # Keras starts biases at zero: randomize them
        weights = layer.get_weights()
        if weights:
            layer.set_weights([w if w.ndim > 1 else (0.3 * rng.standard_normal(w.shape)).astype(w.dtype)
                               for w in weights])
    return model


def _until_mean(tf, x):
    """Scales x until its mean reaches 10 or 50 steps passed: a trip count that depends on the input."""
    def cond(i, v):
        return tf.logical_and(i < 50, tf.reduce_mean(v) < 10.0)
    i, y = tf.while_loop(cond, lambda i, v: (i + 1, v * 1.25 + 0.5), [tf.constant(0), x])
    return y, i


def _swap(tf, x):
    """Loop variables that trade places every step."""
    body = lambda i, a, b: (i + 1, b, a * 0.5 + tf.tanh(b))
    _, a, b = tf.while_loop(lambda i, a, b: i < 5, body, [tf.constant(0), x, x + 1.0])
    return a, b


def _nested(tf, x):
    """A WHILE in another WHILE's body; the inner one runs i + 1 times and reads row i of x (GATHER)."""
    def outer(i, acc):
        def inner(j, v):
            return j + 1, v * 0.9 + tf.gather(x, i)
        _, v = tf.while_loop(lambda j, v: j < i + 1, inner, [tf.constant(0), acc])
        return i + 1, v
    _, y = tf.while_loop(lambda i, acc: i < x.shape[0], outer, [tf.constant(0), tf.zeros(x.shape[1:])])
    return y


def _int32_and_bool(tf, x):
    """The loop bodies' small ops outside a loop: int32 MUL / SUB / ADD with broadcast constants (the products of
    inputs up to 3e4 wrap around 2^31), LESS, LOGICAL_NOT / OR / AND."""
    y = (x * 3 - 5) * x + 7
    flags = tf.logical_or(x < 2, y < x)
    return y, tf.logical_not(tf.logical_and(flags, x < y))


FUNCTIONS = {"until_mean": _until_mean, "swap": _swap, "nested": _nested, "int32_and_bool": _int32_and_bool}


def convert(spec: LoopModel, kind: str = "float") -> bytes:
    """The spec's float .tflite flatbuffer (the only kind: see the module docstring)."""
    assert kind == "float", kind
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    import tf_keras as keras
    if spec.layers:
        converter = tf.lite.TFLiteConverter.from_keras_model(_keras_model(spec, keras))
    else:
        fn = tf.function(lambda x: FUNCTIONS[spec.function](tf, x),
                         input_signature=[tf.TensorSpec(spec.shape, getattr(tf, spec.dtype))])
        converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
    return converter.convert()


# ----- flatbuffer edits -------------------------------------------------------------------------------------

def while_ops(model, fb, subgraph: int = 0) -> list:
    return [op for op in model.subgraphs[subgraph].operators
            if model.operatorCodes[op.opcodeIndex].builtinCode == fb.BuiltinOperator.WHILE]


def set_constant(model, subgraph: int, tensor: int, values: np.ndarray):
    """Replaces a constant's bytes with those of `values` (of the tensor's type and size)."""
    t = model.subgraphs[subgraph].tensors[tensor]
    raw = np.ascontiguousarray(values).tobytes()
    assert len(raw) == len(model.buffers[t.buffer].data), (len(raw), len(model.buffers[t.buffer].data))
    model.buffers[t.buffer].data = np.frombuffer(raw, np.uint8)
