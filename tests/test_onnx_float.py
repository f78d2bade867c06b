"""Float32 ONNX models on edgeml against onnxruntime: the op set of issue 5, NCHW translated once at load."""
import numpy as np
import pytest
from onnx import helper

import edgeml
from tests.onnx_models import make_model, ort_run

pytest.importorskip("onnxruntime")

F = np.float32
RNG = np.random.default_rng(5)


def rand(*shape, scale=1.0):
    return (RNG.standard_normal(shape) * scale).astype(F)


def check(model: bytes, feeds: dict, rtol=1e-5, atol=1e-5):
    """edgeml and onnxruntime agree to float rounding (summation order differs, so allclose)."""
    ref = ort_run(model, feeds)
    it = edgeml.Interpreter(model)
    got = it.run(dict(feeds) if len(feeds) > 1 else next(iter(feeds.values())))
    got = got if isinstance(got, list) else [got]
    assert len(got) == len(ref)
    for g, r in zip(got, ref):
        assert g.shape == r.shape
        np.testing.assert_allclose(g, r, rtol=rtol, atol=atol)
    return it


def single(op, x_shape, out_shape, inits=None, extra_inputs=(), **attrs):
    names = ["x"] + list(extra_inputs)
    node = helper.make_node(op, names, ["y"], **attrs)
    return make_model([node], [("x", F, x_shape)], [("y", F, out_shape)], inits or {})


CONV_CASES = [
    # (x shape, w shape, attrs)
    ((1, 3, 9, 9), (8, 3, 3, 3), dict(pads=[1, 1, 1, 1])),
    ((1, 3, 10, 10), (8, 3, 3, 3), dict(pads=[1, 1, 1, 1], strides=[2, 2])),        # PyTorch-style stride 2
    ((2, 4, 7, 6), (6, 4, 2, 3), dict(pads=[0, 1, 1, 0], dilations=[2, 1])),
    ((1, 4, 8, 8), (4, 4, 3, 3), dict(auto_pad="SAME_LOWER", strides=[2, 2])),
    ((1, 4, 8, 8), (4, 4, 3, 3), dict(auto_pad="SAME_UPPER")),
    ((1, 8, 6, 6), (8, 1, 3, 3), dict(group=8, pads=[1, 1, 1, 1])),                # depthwise
    ((1, 4, 6, 6), (8, 1, 3, 3), dict(group=4)),                                   # depth multiplier 2
    ((1, 6, 6, 6), (9, 2, 1, 1), dict(group=3)),                                   # grouped
    ((1, 16, 5, 5), (16, 16, 1, 1), {}),
]


@pytest.mark.parametrize("xs, ws, attrs", CONV_CASES, ids=[str(i) for i in range(len(CONV_CASES))])
def test_conv_matches_onnxruntime(xs, ws, attrs):
    w, b = rand(*ws, scale=0.3), rand(ws[0])
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], **attrs)
    model = make_model([node], [("x", F, xs)], [("y", F, None)], {"w": w, "b": b})
    check(model, {"x": rand(*xs)})


def test_conv_relu_chain_keeps_nchw_outside_and_converts_layout_once():
    """Conv -> Relu -> MaxPool -> Conv -> GlobalAveragePool -> Flatten -> Gemm: only the graph input is
    relaid out (one TRANSPOSE); Flatten of a 1x1 map is a copy."""
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Clip", ["c2", "lo", "hi"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "wd", "bd"], ["y"], transB=1),
    ]
    inits = {"w1": rand(8, 3, 3, 3, scale=0.3), "b1": rand(8), "w2": rand(16, 8, 3, 3, scale=0.2),
             "b2": rand(16), "lo": np.array(0, F), "hi": np.array(6, F), "wd": rand(10, 16), "bd": rand(10)}
    model = make_model(nodes, [("x", F, (1, 3, 16, 16))], [("y", F, (1, 10))], inits)
    it = check(model, {"x": rand(1, 3, 16, 16)})
    types = [op.type for op in it.graph.ops]
    assert types.count("TRANSPOSE") == 1
    assert "RELU" not in types and "RELU6" not in types      # fused into the convs


def test_nchw_output_and_axis_ops_on_channels():
    """Concat / Softmax / ReduceMean / Pad on the channel axis of NCHW tensors; the NCHW output comes back
    transposed once at the boundary."""
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Concat", ["c", "c"], ["cc"], axis=1),
        helper.make_node("Softmax", ["cc"], ["s"], axis=1),
        helper.make_node("Pad", ["s", "pads"], ["p"]),
        helper.make_node("ReduceMean", ["p"], ["m"], axes=[2], keepdims=1),
        helper.make_node("Mul", ["m", "k"], ["y"]),
    ]
    inits = {"w": rand(4, 3, 3, 3), "b": rand(4), "pads": np.array([0, 0, 1, 2, 0, 0, 3, 1], np.int64),
             "k": rand(8, 1, 1)}
    model = make_model(nodes, [("x", F, (1, 3, 5, 6))], [("y", F, (1, 8, 1, 9))], inits)
    it = check(model, {"x": rand(1, 3, 5, 6)})
    assert [op.type for op in it.graph.ops].count("TRANSPOSE") == 2    # in and out, nothing per op


@pytest.mark.parametrize("axis", [0, 1, 2, 3, -1])
def test_softmax_axes(axis):
    check(single("Softmax", (2, 3, 4, 5), (2, 3, 4, 5), axis=axis), {"x": rand(2, 3, 4, 5)})


def test_softmax_opset11_coerces_to_2d():
    node = helper.make_node("Softmax", ["x"], ["y"], axis=1)
    model = make_model([node], [("x", F, (2, 3, 4))], [("y", F, (2, 3, 4))], opset=11)
    check(model, {"x": rand(2, 3, 4)})


@pytest.mark.parametrize("op, attrs, out", [
    ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]), (1, 4, 4, 4)),
    ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1), (1, 4, 4, 4)),
    ("MaxPool", dict(kernel_shape=[2, 3], strides=[1, 2], pads=[0, 1, 1, 1]), (1, 4, 8, 4)),
    ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"), (1, 4, 4, 4)),
    ("GlobalAveragePool", {}, (1, 4, 1, 1)),
    ("GlobalMaxPool", {}, (1, 4, 1, 1)),
])
def test_pooling(op, attrs, out):
    check(single(op, (1, 4, 8, 7 if "ceil_mode" not in attrs else 8), None, **attrs),
          {"x": rand(1, 4, 8, 7 if "ceil_mode" not in attrs else 8)})


@pytest.mark.parametrize("shape_a, shape_b", [((2, 3, 4, 5), (3, 1, 1)), ((2, 3, 4, 5), (5,)),
                                              ((2, 3, 4, 5), (2, 3, 4, 5)), ((4, 5), (1, 5))])
@pytest.mark.parametrize("op", ["Add", "Sub", "Mul"])
def test_binary_broadcast(op, shape_a, shape_b):
    node = helper.make_node(op, ["x", "b"], ["y"])
    model = make_model([node], [("x", F, shape_a)], [("y", F, None)], {"b": rand(*shape_b)})
    check(model, {"x": rand(*shape_a)})


def test_binary_two_inputs_after_conv():
    """A conv output (channels last inside) added to a graph input (NCHW): one side is relaid out."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c", "z"], ["y"])]
    model = make_model(nodes, [("x", F, (1, 2, 4, 4)), ("z", F, (1, 3, 4, 4))], [("y", F, (1, 3, 4, 4))],
                       {"w": rand(3, 2, 3, 3)})
    check(model, {"x": rand(1, 2, 4, 4), "z": rand(1, 3, 4, 4)})


@pytest.mark.parametrize("attrs, a_shape, b_shape, c_shape", [
    ({}, (3, 5), (5, 4), (4,)),
    (dict(transB=1, alpha=0.5, beta=2.0), (3, 5), (4, 5), (1, 4)),
    (dict(transA=1), (5, 3), (5, 4), (3, 4)),
    (dict(beta=0.0), (3, 5), (5, 4), (4,)),
])
def test_gemm(attrs, a_shape, b_shape, c_shape):
    node = helper.make_node("Gemm", ["x", "b", "c"], ["y"], **attrs)
    model = make_model([node], [("x", F, a_shape)], [("y", F, None)], {"b": rand(*b_shape), "c": rand(*c_shape)})
    check(model, {"x": rand(*a_shape)})


@pytest.mark.parametrize("a_shape", [(3, 6), (2, 3, 6), (6,)])
def test_matmul(a_shape):
    node = helper.make_node("MatMul", ["x", "w"], ["y"])
    model = make_model([node], [("x", F, a_shape)], [("y", F, None)], {"w": rand(6, 4)})
    check(model, {"x": rand(*a_shape)})


def test_shape_ops_on_nchw_values():
    """Reshape / Transpose / Squeeze / Unsqueeze / Flatten of a conv output mean ONNX (NCHW) order."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"]),                       # [1, 4, 3, 5]
        helper.make_node("Transpose", ["c"], ["t"], perm=[0, 2, 3, 1]),     # [1, 3, 5, 4]
        helper.make_node("Unsqueeze", ["t", "ax0"], ["u"]),                 # [1, 1, 3, 5, 4]
        helper.make_node("Squeeze", ["u", "ax0"], ["s"]),                   # [1, 3, 5, 4]
        helper.make_node("Reshape", ["s", "shape"], ["r"]),                 # [1, 15, 4]
        helper.make_node("Flatten", ["c"], ["f"], axis=2),                  # [4, 15]
        helper.make_node("Sigmoid", ["r"], ["y1"]),
        helper.make_node("Relu", ["f"], ["y2"]),
    ]
    inits = {"w": rand(4, 2, 1, 1), "ax0": np.array([1], np.int64), "shape": np.array([0, -1, 4], np.int64)}
    model = make_model(nodes, [("x", F, (1, 2, 3, 5))], [("y1", F, (1, 15, 4)), ("y2", F, (4, 15))], inits)
    check(model, {"x": rand(1, 2, 3, 5)})


def test_dynamic_batch_fixed_to_one_and_resized():
    node = helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1])
    fl = helper.make_node("Flatten", ["c"], ["y"])
    model = make_model([node, fl], [("x", F, ("N", 2, 4, 4))], [("y", F, ("N", 48))], {"w": rand(3, 2, 3, 3)})
    it = edgeml.Interpreter(model)
    assert list(it.get_input_details()[0]["shape"]) == [1, 2, 4, 4]
    x = rand(3, 2, 4, 4)
    np.testing.assert_allclose(it.run(x), ort_run(model, {"x": x})[0], rtol=1e-5, atol=1e-5)
