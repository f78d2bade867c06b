"""ONNX ReverseSequence (and the constant Gather / Expand around it in tf2onnx's go_backwards recurrent layers)
against onnxruntime.

ReverseSequence and Gather only move values, so their outputs must equal onnxruntime's exactly, in float32 and
inside QDQ graphs (int8 and uint8).  The tf2onnx recurrent models compare with the tolerance of
test_onnx_recurrent.py (rtol 1e-5, atol 1e-6), since the GRU / LSTM cells sum in another order than onnxruntime.
"""
import os

import numpy as np
import pytest
from onnx import helper

import edgeml
from tests.onnx_models import make_model, ort_run

pytest.importorskip("onnxruntime")

RTOL, ATOL = 1e-5, 1e-6
U8, I8 = np.uint8, np.int8


def reverse_model(shape, batch_axis, time_axis, lens=None, qdq=None, opset=13) -> bytes:
    """x -> ReverseSequence -> y, with constant `lens` or (None) a graph input 'lens'; with `qdq` (uint8 / int8)
    x and y are integers around DequantizeLinear -> ReverseSequence -> QuantizeLinear of the same parameters."""
    batch = shape[batch_axis]
    io_type = np.float32 if qdq is None else qdq
    inputs = [("x", io_type, shape)] + ([("lens", np.int64, [batch])] if lens is None else [])
    inits = {} if lens is None else {"lens": np.array(lens, np.int64)}
    nodes, x = [], "x"
    if qdq is not None:
        inits.update(s=np.array(0.05, np.float32), z=np.array(3, qdq))
        nodes.append(helper.make_node("DequantizeLinear", ["x", "s", "z"], ["xf"]))
        x = "xf"
    nodes.append(helper.make_node("ReverseSequence", [x, "lens"], ["r" if qdq is not None else "y"],
                                  batch_axis=batch_axis, time_axis=time_axis))
    if qdq is not None:
        nodes.append(helper.make_node("QuantizeLinear", ["r", "s", "z"], ["y"]))
    return make_model(nodes, inputs, [("y", io_type, shape)], inits, opset=opset)


def random_input(shape, dtype, rng):
    if dtype is None:
        return rng.standard_normal(shape).astype(np.float32)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, size=shape, dtype=dtype)


CASES = [  # (shape, batch_axis, time_axis, constant lengths or None for a graph input, QDQ integer type)
    ((5, 3, 4), 1, 0, [5, 2, 0], None),
    ((3, 5, 2, 2), 0, 1, [1, 5, 3], None),
    ((3, 5, 2), 0, 1, [5, 5, 5], None),          # every row reversed whole: a REVERSE_V2
    ((6, 2, 3), 1, 0, None, None),
    ((5, 3, 4), 1, 0, [4, 1, 5], I8),
    ((3, 5, 4), 0, 1, [4, 5, 1], U8),
    ((3, 5, 4), 0, 1, None, U8),
]


@pytest.mark.parametrize("shape,batch_axis,time_axis,lens,qdq", CASES, ids=[str(i) for i in range(len(CASES))])
def test_reverse_sequence_equals_onnxruntime(shape, batch_axis, time_axis, lens, qdq):
    model = reverse_model(shape, batch_axis, time_axis, lens, qdq)
    ours = edgeml.Interpreter(model)
    ops = [op.type for op in ours.graph.ops]
    assert ("REVERSE_V2" if lens == [shape[time_axis]] * shape[batch_axis] else "ONNX_REVERSE_SEQUENCE") in ops, ops
    assert "DEQUANTIZE" not in ops, ops       # QDQ: the integers themselves are moved
    rng = np.random.default_rng(len(shape) + time_axis)
    for _ in range(6):
        feeds = {"x": random_input(shape, qdq, rng)}
        if lens is None:
            feeds["lens"] = rng.integers(0, shape[time_axis] + 1, size=shape[batch_axis]).astype(np.int64)
        expected = ort_run(model, feeds)[0]
        got = ours.run(feeds)
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)


def test_lengths_given_at_run_time_are_range_checked_like_onnxruntime():
    """onnxruntime fails the run for a length outside [0, time steps]; edgeml refuses the input."""
    model = reverse_model((5, 3, 4), 1, 0)
    ours = edgeml.Interpreter(model)
    x = np.zeros((5, 3, 4), np.float32)
    for bad in ([6, 1, 1], [0, -1, 2]):
        with pytest.raises(Exception, match="Invalid sequence length"):
            ort_run(model, {"x": x, "lens": np.array(bad, np.int64)})
        with pytest.raises(edgeml.InputError, match=r"outside \[0, 5\]"):
            ours.run({"x": x, "lens": np.array(bad, np.int64)})


@pytest.mark.parametrize("attrs,lens,message", [
    (dict(batch_axis=1, time_axis=1), [5, 5, 5], "must be 0 and 1"),
    (dict(batch_axis=2, time_axis=0), [5, 5, 5], "must be 0 and 1"),
    (dict(batch_axis=1, time_axis=0), [5, 6, 5], r"outside \[0, 5\]"),
    (dict(batch_axis=1, time_axis=0), [5, 5], "shape \\[3\\]"),
], ids=["same_axes", "axis_2", "length_too_long", "lengths_count"])
def test_malformed_reverse_sequence_raises_model_format_error(attrs, lens, message):
    node = helper.make_node("ReverseSequence", ["x", "lens"], ["y"], **attrs)
    model = make_model([node], [("x", np.float32, (5, 3, 4))], [("y", np.float32, (5, 3, 4))],
                       {"lens": np.array(lens, np.int64)})
    with pytest.raises(edgeml.ModelFormatError, match=message):
        edgeml.Interpreter(model)


@pytest.mark.parametrize("indices,axis", [(np.array(2), 1), (np.array([0, 2, 4]), 2), (np.array([-1, -2, -3]), 1),
                                          (np.array([1]), 0)])
def test_gather_with_constant_indices_equals_onnxruntime(indices, axis):
    shape = (2, 4, 5)
    node = helper.make_node("Gather", ["x", "i"], ["y"], axis=axis)
    model = make_model([node], [("x", np.float32, shape)], [("y", np.float32, None)], {"i": indices.astype(np.int64)})
    x = np.random.default_rng(axis).standard_normal(shape).astype(np.float32)
    np.testing.assert_array_equal(edgeml.Interpreter(model).run(x), ort_run(model, {"x": x})[0])


def test_gather_with_uneven_indices_runs():
    node = helper.make_node("Gather", ["x", "i"], ["y"], axis=1)
    model = make_model([node], [("x", np.float32, (2, 4))], [("y", np.float32, None)], {"i": np.array([0, 1, 3])})
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.testing.assert_array_equal(edgeml.Interpreter(model).run(x), x[:, [0, 1, 3]])


KERAS_BACKWARD = [("GRU", True), ("LSTM", False), ("SimpleRNN", True)]


@pytest.fixture(scope="module")
def backward_models():
    """tf2onnx conversions of seeded Keras layers with go_backwards=True (ReverseSequence before the recurrent
    node, its lengths an Expand of Gathers of the input's Shape); SimpleRNN by edgeml's export route (a GRU
    twin, edgeml/train/onnx_recurrent.py), since tf2onnx makes a Loop of it."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("tf_keras")
    tf2onnx = pytest.importorskip("tf2onnx")
    from edgeml.train.onnx_recurrent import _gru_nodes_to_rnn, _gru_twin
    out = {}
    for kind, rs in KERAS_BACKWARD:
        keras.utils.set_random_seed(3)
        m = keras.Sequential([keras.Input((9, 4), batch_size=1),
                              getattr(keras.layers, kind)(7, go_backwards=True, return_sequences=rs)])
        convert, simple = _gru_twin(m) if kind == "SimpleRNN" else (m, [])
        proto, _ = tf2onnx.convert.from_keras(convert, input_signature=(tf.TensorSpec((1, 9, 4), tf.float32,
                                                                                      name="x"),), opset=15)
        if simple:
            _gru_nodes_to_rnn(proto, simple)
        x = np.random.default_rng(2).standard_normal((4, 1, 9, 4)).astype(np.float32)
        out[kind] = (proto.SerializeToString(), x, np.stack([m(xi).numpy() for xi in x]))
    keras.backend.clear_session()
    return out


@pytest.mark.parametrize("kind", [k for k, _ in KERAS_BACKWARD])
def test_tf2onnx_go_backwards_matches_onnxruntime(backward_models, kind):
    model, xs, keras_out = backward_models[kind]
    ours = edgeml.Interpreter(model)
    assert "REVERSE_V2" in [op.type for op in ours.graph.ops]
    for x, k in zip(xs, keras_out):
        got = ours.run(x)
        np.testing.assert_allclose(got, ort_run(model, {"x": x})[0], rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(got, k, rtol=RTOL, atol=ATOL)


def test_int64_graph_input_other_than_lengths_runs():
    node = helper.make_node("Add", ["x", "x"], ["y"])
    model = make_model([node], [("x", np.int64, (3,))], [("y", np.int64, (3,))])
    x = np.array([1, -2, 2 ** 40], np.int64)
    np.testing.assert_array_equal(edgeml.Interpreter(model).run(x), x + x)
