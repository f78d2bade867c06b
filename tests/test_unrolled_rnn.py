"""Unrolled Keras GRU / SimpleRNN converted to full int8 (FULLY_CONNECTED, SPLIT, SPLIT_V, UNPACK, ADD, SUB, MUL,
LOGISTIC, TANH) run bit-exactly against LiteRT's reference kernels."""
import collections

import numpy as np
import pytest

import edgeml
from converters import from_tflite


@pytest.fixture(scope="module")
def unrolled_models():
    pytest.importorskip("tensorflow")
    from edgeml.train import keras_env
    tf, keras = keras_env()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 7, 5)).astype(np.float32)
    out = {}
    for name, layer in (("gru", keras.layers.GRU), ("rnn", keras.layers.SimpleRNN)):
        keras.utils.set_random_seed(1)
        model = keras.Sequential([keras.layers.Input((7, 5), batch_size=1), layer(12, unroll=True),
                                  keras.layers.Dense(4, activation="softmax")])
        conv = tf.lite.TFLiteConverter.from_keras_model(model)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([x[i:i + 1]] for i in range(len(x)))
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
        out[name] = conv.convert()
    return out


@pytest.mark.parametrize("name,needed", [("gru", {"SPLIT", "SPLIT_V", "UNPACK", "SUB", "MUL", "LOGISTIC", "TANH"}),
                                         ("rnn", {"UNPACK", "TANH", "ADD"})])
def test_unrolled_rnn_int8_is_bit_exact(unrolled_models, name, needed):
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    model = unrolled_models[name]
    ops = collections.Counter(op.type for op in from_tflite(model).ops)
    assert needed <= set(ops), ops
    ours = edgeml.Interpreter(model)
    ref = litert.Interpreter(model_content=model, experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF)
    ref.allocate_tensors()
    d, o = ref.get_input_details()[0], ref.get_output_details()[0]
    rng = np.random.default_rng(3)
    for _ in range(40):
        x = rng.integers(-128, 128, size=tuple(d["shape"]), dtype=np.int8)
        ref.set_tensor(d["index"], x)
        ref.invoke()
        ours.set_input(x)
        ours.invoke()
        np.testing.assert_array_equal(ours.get_output(), ref.get_tensor(o["index"]))
