"""Float ONNX ops of PyTorch and Keras exports against onnxruntime: 1-D Conv / pooling (a 2-D op on an (N, C, L, 1)
view), BatchNormalization with statistics computed in the graph, the public corpus of float PyTorch exports, and a
Keras self-attention model converted by tf2onnx.  onnx's own node test cases are in test_onnx_backend.py."""
import os

import numpy as np
import pytest
from onnx import helper

import edgeml
from tests.onnx_models import OrtReference, assert_ort_equal, make_model, ort_diff

ort = pytest.importorskip("onnxruntime")

F = np.float32
RUNS = 20


def session(model: bytes):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return OrtReference(model, so)


def check_runs(model: bytes, make_feeds, rtol=1e-5, atol=1e-5, runs=RUNS):
    """edgeml equals onnxruntime to float rounding on `runs` seeded inputs (make_feeds(rng) -> {name: array})."""
    sess, it = session(model), edgeml.Interpreter(model)
    rng = np.random.default_rng(11)
    for _ in range(runs):
        feeds = make_feeds(rng)
        ref = sess.run(None, feeds)
        got = it.run(dict(feeds) if len(feeds) > 1 else next(iter(feeds.values())))
        got = got if isinstance(got, list) else [got]
        assert len(got) == len(ref)
        for g, r in zip(got, ref):
            assert g.shape == r.shape and g.dtype == r.dtype
            assert_ort_equal(g, r, rtol=rtol, atol=atol)
    return it


def normal(shape):
    return lambda rng: {"x": rng.standard_normal(shape).astype(F)}


def op_types(model: bytes) -> set:
    import onnx
    return {n.op_type for n in onnx.load_model_from_string(model).graph.node}


# ----- 1-D convolution and pooling ----------------------------------------------------------------------------------
CONV1D_CASES = [
    # (x shape, w shape, attrs)
    ((1, 3, 12), (4, 3, 3), {}),
    ((2, 5, 17), (6, 5, 5), dict(pads=[2, 1], strides=[2])),
    ((1, 4, 16), (4, 1, 3), dict(group=4, pads=[1, 1])),                # depthwise (MobileNet-1D, TCN)
    ((2, 6, 13), (9, 2, 3), dict(group=3, dilations=[2])),             # grouped, dilated
    ((1, 3, 10), (5, 3, 4), dict(auto_pad="SAME_UPPER", strides=[3])),
    ((1, 3, 10), (5, 3, 4), dict(auto_pad="SAME_LOWER")),
    ((3, 8, 1), (2, 8, 1), {}),                                         # length 1
]


@pytest.mark.parametrize("xs, ws, attrs", CONV1D_CASES, ids=[str(i) for i in range(len(CONV1D_CASES))])
def test_conv1d_matches_onnxruntime(xs, ws, attrs):
    rng = np.random.default_rng(1)
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], **attrs)
    model = make_model([node], [("x", F, xs)], [("y", F, None)],
                       {"w": rng.standard_normal(ws).astype(F), "b": rng.standard_normal(ws[0]).astype(F)})
    assert op_types(model) == {"Conv"}
    check_runs(model, normal(xs))


def test_conv1d_batchnorm_relu_maxpool_chain_as_pytorch_exports_it():
    """Conv1d -> BatchNorm1d -> ReLU -> MaxPool1d -> Conv1d -> GlobalAveragePool (a keyword-spotting TCN)."""
    rng = np.random.default_rng(2)
    c = 6
    inits = {"w1": rng.standard_normal((c, 4, 5)).astype(F) * 0.4, "b1": rng.standard_normal(c).astype(F),
             "scale": rng.uniform(0.5, 1.5, c).astype(F), "bias": rng.standard_normal(c).astype(F),
             "mean": rng.standard_normal(c).astype(F), "var": rng.uniform(0.2, 2.0, c).astype(F),
             "w2": rng.standard_normal((3, c, 3)).astype(F) * 0.4}
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[2, 2]),
             helper.make_node("BatchNormalization", ["c1", "scale", "bias", "mean", "var"], ["bn"], epsilon=1e-5),
             helper.make_node("Relu", ["bn"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2], strides=[2]),
             helper.make_node("Conv", ["p", "w2"], ["c2"], dilations=[2]),
             helper.make_node("GlobalAveragePool", ["c2"], ["y"])]
    model = make_model(nodes, [("x", F, (2, 4, 30))], [("y", F, None)], inits)
    check_runs(model, normal((2, 4, 30)))


POOL1D_CASES = [
    ("MaxPool", dict(kernel_shape=[3])),
    ("MaxPool", dict(kernel_shape=[3], strides=[2], pads=[1, 1], ceil_mode=1)),
    ("AveragePool", dict(kernel_shape=[3], strides=[2], pads=[1, 1])),
    ("AveragePool", dict(kernel_shape=[4], strides=[3], pads=[2, 1], count_include_pad=1, ceil_mode=1)),
    ("AveragePool", dict(kernel_shape=[2], auto_pad="SAME_UPPER")),
    ("GlobalAveragePool", {}),
    ("GlobalMaxPool", {}),
]


@pytest.mark.parametrize("op, attrs", POOL1D_CASES, ids=[f"{op}{i}" for i, (op, _) in enumerate(POOL1D_CASES)])
def test_pool1d_matches_onnxruntime(op, attrs):
    node = helper.make_node(op, ["x"], ["y"], **attrs)
    model = make_model([node], [("x", F, (2, 5, 11))], [("y", F, None)])
    assert op_types(model) == {op}
    check_runs(model, normal((2, 5, 11)))


CONV_TRANSPOSE_CASES = [
    # (x shape, w shape, attrs)
    ((1, 3, 5, 4), (3, 4, 3, 3), {}),
    ((2, 4, 5, 6), (4, 3, 3, 2), dict(strides=[2, 3], pads=[1, 0, 0, 1])),     # PyTorch ConvTranspose2d(s, p)
    ((1, 4, 4, 4), (4, 2, 4, 4), dict(strides=[2, 2], pads=[1, 1, 1, 1])),     # the usual 2x upsampler
    ((1, 2, 3, 5), (2, 3, 3, 3), dict(strides=[2, 2], output_padding=[1, 0])),
    ((1, 4, 5, 5), (4, 2, 3, 3), dict(group=2, dilations=[2, 1], pads=[2, 1, 0, 1])),
    ((1, 6, 4, 4), (6, 1, 3, 3), dict(group=6, strides=[2, 2])),               # depthwise
    ((1, 3, 4, 5), (3, 2, 3, 3), dict(strides=[2, 2], output_shape=[9, 10])),
    ((1, 3, 4, 5), (3, 2, 3, 3), dict(strides=[2, 2], auto_pad="SAME_UPPER")),
    ((2, 3, 7), (3, 5, 4), dict(strides=[2], pads=[1, 2])),                    # ConvTranspose1d
    ((1, 2, 6), (2, 4, 3), dict(strides=[3], output_padding=[2], group=2)),
]


@pytest.mark.parametrize("xs, ws, attrs", CONV_TRANSPOSE_CASES,
                         ids=[str(i) for i in range(len(CONV_TRANSPOSE_CASES))])
def test_conv_transpose_matches_onnxruntime(xs, ws, attrs):
    rng = np.random.default_rng(6)
    oc = ws[1] * attrs.get("group", 1)
    node = helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], **attrs)
    model = make_model([node], [("x", F, xs)], [("y", F, None)],
                       {"w": rng.standard_normal(ws).astype(F), "b": rng.standard_normal(oc).astype(F)})
    check_runs(model, normal(xs))


def test_conv_transpose_relu_fuses_and_bad_attributes_are_refused():
    w = np.ones((2, 3, 3, 3), F)
    nodes = [helper.make_node("ConvTranspose", ["x", "w"], ["c"], strides=[2, 2]), helper.make_node("Relu", ["c"], ["y"])]
    model = make_model(nodes, [("x", F, (1, 2, 4, 4))], [("y", F, None)], {"w": w})
    it = check_runs(model, normal((1, 2, 4, 4)))
    assert [op.type for op in it.graph.ops].count("CONV_2D") == 1
    for attrs, fragment in ((dict(output_padding=[2, 0], strides=[2, 2]), "output_padding [2, 0]"),
                            (dict(pads=[1, 1]), "pads [1, 1] must be four"),
                            (dict(kernel_shape=[2, 2]), "kernel_shape [2, 2] differs"),
                            (dict(group=3), "with group 3 do not fit")):
        node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], **attrs)
        bad = make_model([node], [("x", F, (1, 2, 4, 4))], [("y", F, None)], {"w": w})
        with pytest.raises(edgeml.ModelFormatError, match=r"\(ConvTranspose\).*" + _escaped(fragment)):
            edgeml.Interpreter(bad)


@pytest.mark.parametrize("op, attrs, xs", [
    ("DepthToSpace", dict(blocksize=2), (2, 12, 3, 5)),
    ("DepthToSpace", dict(blocksize=2, mode="CRD"), (2, 12, 3, 5)),
    ("DepthToSpace", dict(blocksize=3, mode="CRD"), (1, 18, 2, 2)),
    ("SpaceToDepth", dict(blocksize=2), (2, 3, 4, 6)),
])
def test_depth_space_after_a_conv_matches_onnxruntime(op, attrs, xs):
    """After a Conv the value is channels-last: the IR's DEPTH_TO_SPACE / SPACE_TO_DEPTH run on it directly."""
    w = np.random.default_rng(7).standard_normal((xs[1], xs[1], 1, 1)).astype(F)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node(op, ["c"], ["y"], **attrs)]
    model = make_model(nodes, [("x", F, xs)], [("y", F, None)], {"w": w})
    check_runs(model, normal(xs))


def test_depth_to_space_of_uint8_and_bad_block_sizes():
    node = helper.make_node("DepthToSpace", ["x"], ["y"], blocksize=2, mode="CRD")
    model = make_model([node], [("x", np.uint8, (1, 8, 2, 3))], [("y", np.uint8, None)])
    check_runs(model, lambda rng: {"x": rng.integers(0, 256, (1, 8, 2, 3)).astype(np.uint8)})
    for attrs, fragment in ((dict(blocksize=3), "8 channels are not a multiple of blocksize^2 = 9"),
                            (dict(blocksize=2, mode="XYZ"), "mode 'XYZ'"), ({}, "blocksize None")):
        bad = make_model([helper.make_node("DepthToSpace", ["x"], ["y"], **attrs)], [("x", F, (1, 8, 2, 3))],
                         [("y", F, None)])
        with pytest.raises(edgeml.ModelFormatError, match=_escaped(fragment)):
            edgeml.Interpreter(bad)


POOL_DILATED_3D_CASES = [
    ("MaxPool", (2, 3, 9, 8), dict(kernel_shape=[3, 2], dilations=[2, 3], pads=[1, 1, 2, 0], strides=[2, 1])),
    ("MaxPool", (1, 2, 10, 7), dict(kernel_shape=[2, 3], dilations=[3, 2], ceil_mode=1, strides=[3, 2])),
    ("AveragePool", (2, 3, 9, 8), dict(kernel_shape=[3, 2], dilations=[2, 3], pads=[1, 1, 2, 0])),
    ("AveragePool", (1, 2, 10, 7), dict(kernel_shape=[3, 3], dilations=[2, 2], pads=[2, 1, 1, 2], strides=[2, 2],
                                        count_include_pad=1, ceil_mode=1)),
    ("AveragePool", (2, 4, 13), dict(kernel_shape=[3], dilations=[3], pads=[2, 2])),
    ("MaxPool", (2, 3, 5, 6, 7), dict(kernel_shape=[2, 3, 2], strides=[2, 1, 2], pads=[1, 0, 1, 0, 1, 1])),
    ("AveragePool", (1, 2, 6, 5, 7), dict(kernel_shape=[3, 2, 3], strides=[2, 2, 1], pads=[1, 1, 0, 1, 0, 2])),
    ("AveragePool", (1, 2, 6, 5, 7), dict(kernel_shape=[3, 2, 2], pads=[1, 1, 1, 2, 0, 1], count_include_pad=1,
                                          ceil_mode=1, strides=[2, 2, 2])),
    ("MaxPool", (1, 2, 7, 6, 5), dict(kernel_shape=[2, 2, 2], dilations=[2, 1, 2])),
    ("GlobalAveragePool", (2, 3, 4, 5, 6), {}),
    ("GlobalMaxPool", (2, 3, 4, 5, 6), {}),
]


@pytest.mark.parametrize("op, xs, attrs", POOL_DILATED_3D_CASES,
                         ids=[f"{op}{len(xs) - 2}d{i}" for i, (op, xs, _) in enumerate(POOL_DILATED_3D_CASES)])
def test_dilated_and_3d_pooling_match_onnxruntime(op, xs, attrs):
    """Dilated windows gathered side by side; 3-D boxes as a 2-D pool then a depth pool (both exact: a box is the
    product of its per-axis windows)."""
    nodes = [helper.make_node(op, ["x"], ["p"], **attrs), helper.make_node("Relu", ["p"], ["y"])]
    model = make_model(nodes, [("x", F, xs)], [("y", F, None)], opset=19)    # (AveragePool's dilations: 19)
    check_runs(model, normal(xs))


@pytest.mark.parametrize("zp_type", [np.uint8, np.int8])
def test_qdq_conv1d_runs_in_float_within_one_lsb(zp_type):
    """A QDQ Conv1d has no fused int8 form here: it runs as a float conv between DequantizeLinear and
    QuantizeLinear, within 1 LSB of onnxruntime's QLinearConv."""
    rng = np.random.default_rng(8)
    zp = 128 if zp_type == np.uint8 else 0
    inits = {"xs": np.array(0.05, F), "xz": np.array(zp, zp_type), "ws": np.array(0.01, F),
             "wz": np.array(0, np.int8), "w": rng.integers(-100, 100, (6, 4, 3)).astype(np.int8),
             "ys": np.array(0.1, F), "yz": np.array(zp, zp_type)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wd"]),
             helper.make_node("Conv", ["xd", "wd"], ["c"], pads=[1, 1]),
             helper.make_node("QuantizeLinear", ["c", "ys", "yz"], ["y"])]
    model = make_model(nodes, [("x", F, (2, 4, 10))], [("y", zp_type, None)], inits)
    sess, it = session(model), edgeml.Interpreter(model)
    for _ in range(RUNS):
        x = (rng.standard_normal((2, 4, 10)) * 3).astype(F)
        ref, got = sess.run(None, {"x": x})[0], it.run(x)
        assert got.dtype == ref.dtype
        assert ort_diff(got, ref).max() <= 1


@pytest.mark.parametrize("op, xs, attrs", [
    ("LpPool", (2, 3, 9, 8), dict(kernel_shape=[3, 2], p=2, pads=[1, 1, 2, 0], strides=[2, 1])),
    ("LpPool", (1, 2, 7, 7), dict(kernel_shape=[2, 2], p=3, auto_pad="SAME_UPPER")),
    ("LpPool", (2, 3, 11), dict(kernel_shape=[3], p=1, strides=[2])),
    ("GlobalLpPool", (2, 3, 5, 4), dict(p=2)),
    ("GlobalLpPool", (1, 4, 6), dict(p=3)),
])
def test_lp_pool_matches_onnxruntime(op, xs, attrs):
    model = make_model([helper.make_node(op, ["x"], ["y"], **attrs)], [("x", F, xs)], [("y", F, None)], opset=18)
    check_runs(model, normal(xs))


def test_conv2d_on_a_one_column_image_keeps_the_channel_order():
    """An NCHW value with W = 1 and several channels needs a real transpose to NHWC (was taken for a copy)."""
    rng = np.random.default_rng(3)
    node = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 0, 1, 0])
    model = make_model([node], [("x", F, (2, 3, 7, 1))], [("y", F, None)],
                       {"w": rng.standard_normal((4, 3, 3, 1)).astype(F)})
    check_runs(model, normal((2, 3, 7, 1)))


@pytest.mark.parametrize("op, attrs, error, fragment", [
    ("Conv", dict(strides=[1, 1]), edgeml.ModelFormatError, "strides [1, 1] must have one value"),
    ("Conv", dict(pads=[1, 1, 1, 1]), edgeml.ModelFormatError, "pads [1, 1, 1, 1] must have two values"),
    ("Conv", dict(padding=1), edgeml.ModelFormatError, "unknown attribute(s) padding"),
    ("MaxPool", dict(kernel_shape=[2], stride=[2]), edgeml.ModelFormatError, "unknown attribute(s) stride"),
    ("MaxPool", dict(kernel_shape=[2, 2]), edgeml.ModelFormatError, "kernel_shape [2, 2] must have one value"),
    ("AveragePool", dict(kernel_shape=[2], dilations=[2], pads=[5, 0]), edgeml.UnsupportedOpError,
     "lies wholly in the padding"),
])
def test_bad_1d_attributes_are_refused_at_load(op, attrs, error, fragment):
    inits = {"w": np.ones((2, 3, 3), F)} if op == "Conv" else {}
    node = helper.make_node(op, ["x"] + list(inits), ["y"], **attrs)
    model = make_model([node], [("x", F, (1, 3, 8))], [("y", F, None)], inits)
    with pytest.raises(error, match=r"\(" + op + r"\).*" + _escaped(fragment)):
        edgeml.Interpreter(model)


CONV3D_CASES = [
    # (x shape, w shape, attrs)
    ((1, 3, 4, 5, 6), (4, 3, 2, 3, 3), {}),
    ((2, 4, 7, 6, 5), (6, 2, 3, 3, 2), dict(group=2, pads=[1, 1, 0, 2, 1, 1], strides=[2, 1, 2], dilations=[2, 1, 1])),
    ((1, 2, 5, 5, 5), (3, 2, 3, 3, 3), dict(auto_pad="SAME_UPPER", strides=[2, 2, 2])),
    ((1, 4, 3, 4, 4), (4, 1, 1, 3, 3), dict(group=4, pads=[0, 1, 1, 0, 1, 1])),       # (1, 3, 3) depthwise
]


@pytest.mark.parametrize("xs, ws, attrs", CONV3D_CASES, ids=[str(i) for i in range(len(CONV3D_CASES))])
def test_conv3d_matches_onnxruntime(xs, ws, attrs):
    """A 3-D Conv is the sum over its depth taps of 2-D Convs over the depth slices each tap reads."""
    rng = np.random.default_rng(9)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], **attrs), helper.make_node("Relu", ["c"], ["y"])]
    model = make_model(nodes, [("x", F, xs)], [("y", F, None)],
                       {"w": rng.standard_normal(ws).astype(F), "b": rng.standard_normal(ws[0]).astype(F)})
    check_runs(model, normal(xs))


def test_4d_convolution_and_3d_conv_transpose_are_refused():
    node = helper.make_node("Conv", ["x", "w"], ["y"])
    model = make_model([node], [("x", F, (1, 2, 3, 3, 3, 3))], [("y", F, None)],
                       {"w": np.ones((2, 2, 1, 1, 1, 1), F)})
    with pytest.raises(edgeml.UnsupportedOpError, match="only 1-D, 2-D and 3-D convolution"):
        edgeml.Interpreter(model)
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"])
    model = make_model([node], [("x", F, (1, 2, 4, 4, 4))], [("y", F, None)], {"w": np.ones((2, 2, 1, 1, 1), F)})
    with pytest.raises(edgeml.UnsupportedOpError, match="only 1-D and 2-D ConvTranspose"):
        edgeml.Interpreter(model)


def _escaped(text: str) -> str:
    import re
    return re.escape(text)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32, np.int64])
def test_integer_clip_matches_onnxruntime(dtype):
    """Clip of a plain (unquantized) integer tensor: max / min in its own type; bounds constant or run-time."""
    info = np.iinfo(dtype)
    nodes = [helper.make_node("Clip", ["x", "lo", "hi"], ["c"]), helper.make_node("Clip", ["c", "", "top"], ["y"])]
    model = make_model(nodes, [("x", dtype, (3, 7)), ("top", dtype, ())], [("y", dtype, None)],
                       {"lo": np.array(max(info.min, -20), dtype), "hi": np.array(min(info.max, 90), dtype)})
    check_runs(model, lambda rng: {"x": rng.integers(info.min, info.max, (3, 7), dtype=dtype, endpoint=True),
                                   "top": np.array(rng.integers(0, 100), dtype)})


# ----- BatchNormalization with run-time statistics ---------------------------------------------------------------
def test_batch_norm_with_statistics_from_the_graph():
    """tf2onnx writes Keras LayerNormalization as a BatchNormalization whose mean / var are computed per sample."""
    nodes = [helper.make_node("ReduceMean", ["x"], ["m"], axes=[0, 2, 3], keepdims=0),
             helper.make_node("Mul", ["x", "x"], ["sq"]),
             helper.make_node("ReduceMean", ["sq"], ["msq"], axes=[0, 2, 3], keepdims=0),
             helper.make_node("Mul", ["m", "m"], ["m2"]),
             helper.make_node("Sub", ["msq", "m2"], ["v"]),
             helper.make_node("BatchNormalization", ["x", "scale", "bias", "m", "v"], ["y"], epsilon=1e-3)]
    rng = np.random.default_rng(4)
    inits = {"scale": rng.uniform(0.5, 2, 5).astype(F), "bias": rng.standard_normal(5).astype(F)}
    model = make_model(nodes, [("x", F, (1, 5, 3, 4))], [("y", F, None)], inits)
    check_runs(model, normal((1, 5, 3, 4)))


def test_shape_arithmetic_chains_fold_at_load():
    """PyTorch's x.view(x.size(0), -1) / x.shape[-1]: Shape -> Gather -> Unsqueeze -> Concat -> Reshape and
    Shape -> Cast become constants; only the reshape and the division run."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"]),
             helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
             helper.make_node("Reshape", ["x", "shape"], ["flat"]),
             helper.make_node("Shape", ["flat"], ["s2"], start=-1),
             helper.make_node("Cast", ["s2"], ["s2f"], to=1),
             helper.make_node("Div", ["flat", "s2f"], ["y"])]
    inits = {"zero": np.array(0, np.int64), "ax0": np.array([0], np.int64), "minus1": np.array([-1], np.int64)}
    model = make_model(nodes, [("x", F, (2, 3, 4, 5))], [("y", F, None)], inits, opset=15)
    it = check_runs(model, normal((2, 3, 4, 5)))
    assert [op.type for op in it.graph.ops] == ["RESHAPE", "ONNX_BINARY"]


def test_split_with_an_empty_piece_concatenated_back():
    """RotaryEmbedding's function body splits off a 'not rotated' part that is empty when the whole head rotates
    and concatenates it back: the empty piece is a constant and adds nothing to the Concat."""
    nodes = [helper.make_node("Split", ["x", "sizes"], ["rot", "keep"], axis=2),
             helper.make_node("Neg", ["rot"], ["r"]),
             helper.make_node("Concat", ["r", "keep"], ["y"], axis=2)]
    model = make_model(nodes, [("x", F, (2, 3, 4))], [("y", F, None), ("keep", F, None)],
                       {"sizes": np.array([4, 0], np.int64)}, opset=18)
    check_runs(model, normal((2, 3, 4)))


# ----- real exports -------------------------------------------------------------------------------------------------
PUBLIC_ONNX = ["mlperf_tiny_pytorch_ad_raw.onnx", "mlperf_tiny_pytorch_ic_raw.onnx", "mlperf_tiny_pytorch_ks_raw.onnx",
               "mobilenet_v2_128_0.5.onnx"]


@pytest.mark.parametrize("name", PUBLIC_ONNX)
def test_public_float_exports_match_onnxruntime(public_models, name):
    path = public_models / "onnx" / name
    if not path.exists():
        pytest.skip(f"{path} is not in the public corpus")
    model = path.read_bytes()
    inp = session(model).get_inputs()[0]
    shape = tuple(d if isinstance(d, int) else 1 for d in inp.shape)
    it = check_runs(model, lambda rng: {inp.name: rng.standard_normal(shape).astype(F)}, runs=3)
    assert any(op.type in ("CONV_2D", "FULLY_CONNECTED") for op in it.graph.ops)


@pytest.fixture(scope="module")
def keras_attention_onnx(request):
    """A Keras Embedding -> MultiHeadAttention (+ residual) -> LayerNormalization -> Dense model converted by
    tf2onnx (opset 17), kept in pytest's cache keyed by this file and the TensorFlow version."""
    from tests.model_cache import cache_key
    cache = getattr(request.config, "cache", None)
    path = None
    if cache is not None:
        path = cache.mkdir(f"edgeml_onnx_float_ops_{cache_key(__file__)}") / "attention.onnx"
        if path.exists():
            return path.read_bytes()
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("tf_keras")
    tf2onnx = pytest.importorskip("tf2onnx")
    keras.utils.set_random_seed(3)
    layers = keras.layers
    tokens = keras.Input((12,), batch_size=1, dtype="int32", name="tokens")
    h = layers.Embedding(50, 16)(tokens)
    h = layers.LayerNormalization()(h + layers.MultiHeadAttention(num_heads=2, key_dim=8)(h, h))
    model = keras.Model(tokens, layers.Dense(5)(h))
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=(tf.TensorSpec((1, 12), tf.int32, name="tokens"),),
                                          opset=17)
    keras.backend.clear_session()
    data = proto.SerializeToString()
    if path is not None:
        tmp = path.with_suffix(f".{os.getpid()}.partial")      # pytest-xdist workers may build it at once
        tmp.write_bytes(data)
        tmp.replace(path)
    return data


def test_keras_attention_model_via_tf2onnx(keras_attention_onnx):
    model = keras_attention_onnx
    assert {"Gather", "MatMul", "Softmax", "BatchNormalization"} <= op_types(model)
    it = check_runs(model, lambda rng: {"tokens": rng.integers(0, 50, (1, 12)).astype(np.int32)})
    bad = np.zeros((1, 12), np.int32)
    bad[0, 5] = 50                              # one past the embedding table
    with pytest.raises(edgeml.InputError):
        it.run(bad)


# ----- README -------------------------------------------------------------------------------------------------------
def test_readme_onnx_op_table_is_the_generated_one():
    from pathlib import Path

    from converters.onnx import OP_TABLE_BEGIN, OP_TABLE_END, op_table, supported_ops
    table = op_table()
    listed = [op for line in table.splitlines()[5:-1] for op in line.split(" | ")[1].rstrip(" |").split(", ")]
    assert sorted(listed) == sorted(supported_ops())
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme[readme.index(OP_TABLE_BEGIN):readme.index(OP_TABLE_END) + len(OP_TABLE_END)]
    assert block == table, "README.md's ONNX op table is stale: paste converters.onnx.op_table() there"
