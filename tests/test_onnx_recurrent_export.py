"""The float / int8 ONNX export of Keras recurrent models in `edgeml train` (edgeml/train/onnx_recurrent.py) at
function level: GRU(reset_after=False) and SimpleRNN, also Bidirectional and stacked with a reset_after=True GRU,
through their GRU twins and rewritten ONNX GRU / RNN nodes.

Tolerances (all stated per comparison):
  * onnxruntime on the float file against Keras: atol 1e-5.  Same formulas in float32; the two sum the dot
    products in different orders and use different exp / tanh, worst seen 2.4e-7 on this model.
  * edgeml on the float file against onnxruntime: rtol 1e-5, atol 1e-6, as tests/test_onnx_recurrent.py (edgeml's
    polynomial sigmoid / tanh and unfused sums against MLAS's).
  * edgeml's int8 kernel on the QDQ file against onnxruntime on that file: atol 2e-2, as
    tests/test_onnx_recurrent_int8.py (edgeml also rounds h to 1/127 before each recurrent product).
"""
import os

import numpy as np
import pytest

import edgeml
from edgeml.errors import UnsupportedOpError

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
keras = pytest.importorskip("tf_keras")
pytest.importorskip("tf2onnx")
ort = pytest.importorskip("onnxruntime")

from edgeml.optimize.quantize_onnx_rnn import quantize_recurrent  # noqa: E402
from edgeml.train.onnx_recurrent import float_onnx  # noqa: E402

STEPS, FEATURES, SAMPLES = 9, 5, 4


def _mixed_model():
    """GRU(reset_after=False) returning sequences, Bidirectional SimpleRNN, GRU(reset_after=True), and a
    Bidirectional GRU(reset_after=False) without bias returning its last state; biases made non-zero."""
    L = keras.layers
    keras.utils.set_random_seed(3)
    m = keras.Sequential([keras.Input((STEPS, FEATURES)),
                          L.GRU(10, reset_after=False, return_sequences=True),
                          L.Bidirectional(L.SimpleRNN(6, return_sequences=True)),
                          L.GRU(8, return_sequences=True),
                          L.Bidirectional(L.GRU(7, reset_after=False, use_bias=False)),
                          L.Dense(3)])
    rng = np.random.default_rng(1)
    m.set_weights([w + rng.uniform(-0.3, 0.3, w.shape).astype(np.float32) if w.ndim == 1 else w
                   for w in m.get_weights()])
    return m


@pytest.fixture(scope="module")
def exported():
    m = _mixed_model()
    x = np.random.default_rng(2).standard_normal((SAMPLES, STEPS, FEATURES)).astype(np.float32)
    proto, shape = float_onnx(m)
    out = m.predict(x, verbose=0)
    keras.backend.clear_session()      # fresh layer-name counters: other tests match auto-generated layer names
    return proto, shape, x, out


def _ort(proto, x):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run(None, {"input": x[i:i + 1]})[0] for i in range(len(x))])


def _edgeml(proto, x):
    it = edgeml.Interpreter(proto.SerializeToString())
    return np.concatenate([it.run([x[i:i + 1]]) for i in range(len(x))])


def test_nodes_are_onnx_gru_and_rnn_with_the_keras_formula(exported):
    from onnx import helper
    proto, shape, _, _ = exported
    assert shape == (1, STEPS, FEATURES)
    cells = [(n.op_type, {a.name: helper.get_attribute_value(a) for a in n.attribute})
             for n in proto.graph.node if n.op_type in ("GRU", "RNN", "LSTM", "Loop", "Scan")]
    assert [(op, a.get("direction"), a.get("linear_before_reset")) for op, a in cells] == [
        ("GRU", b"forward", 0), ("RNN", b"bidirectional", None), ("GRU", b"forward", 1),
        ("GRU", b"bidirectional", 0)]


def test_float_file_equals_keras_on_onnxruntime_and_edgeml(exported):
    proto, _, x, keras_out = exported
    ref = _ort(proto, x)
    np.testing.assert_allclose(ref, keras_out, rtol=0, atol=1e-5)
    np.testing.assert_allclose(_edgeml(proto, x), ref, rtol=1e-5, atol=1e-6)


def test_int8_file_runs_on_edgemls_int8_kernel(exported):
    proto, _, x, _ = exported
    q = quantize_recurrent(proto, [x[i:i + 1] for i in range(len(x))])
    assert sum(n.op_type == "QuantizeLinear" for n in q.graph.node) == 4
    np.testing.assert_allclose(_edgeml(q, x), _ort(q, x), rtol=0, atol=2e-2)


@pytest.mark.parametrize("layer,fragment", [
    ("gru_relu", "GRU 'gru_relu' has activation 'relu'; the ONNX recurrent route needs activation 'tanh' and "
                 "recurrent_activation 'sigmoid'"),
    ("gru_hard", "recurrent_activation 'hard_sigmoid'"),
    ("rnn_relu", "SimpleRNN 'rnn_relu' has activation 'relu'"),
])
def test_other_activations_are_refused_with_a_sentence(layer, fragment):
    L = keras.layers
    make = {"gru_relu": lambda: L.GRU(4, reset_after=False, activation="relu", name=layer),
            "gru_hard": lambda: L.Bidirectional(L.GRU(4, reset_after=False, recurrent_activation="hard_sigmoid")),
            "rnn_relu": lambda: L.SimpleRNN(4, activation="relu", name=layer)}[layer]
    m = keras.Sequential([keras.Input((STEPS, FEATURES)), make(), L.Dense(2)])
    with pytest.raises(UnsupportedOpError, match=fragment) as info:
        float_onnx(m)
    assert "\n" not in str(info.value)
