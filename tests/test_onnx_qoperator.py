"""QOperator ONNX models (QLinearConv, QLinearMatMul, ConvInteger, MatMulInteger, DynamicQuantizeLinear,
com.microsoft QLinearAdd / QLinearSoftmax / QLinearConcat) and asymmetric weights, bit-exact against
onnxruntime."""
import numpy as np
import pytest
from onnx import helper

import edgeml
from tests.onnx_models import assert_ort_equal, make_model, ort_run

pytest.importorskip("onnxruntime")

F = np.float32
MS = [("com.microsoft", 1)]


def q_inits(**kw):
    return {k: np.array(v) for k, v in kw.items()}


@pytest.mark.parametrize("w_dtype, per_channel, group", [
    (np.int8, True, 1), (np.int8, False, 1), (np.uint8, True, 1), (np.uint8, False, 2), (np.int8, True, 6)])
def test_qlinearconv(w_dtype, per_channel, group):
    """Symmetric int8 weights take the fast conv kernels; uint8 weights with zero points take the exact
    integer kernel.  Both requantize as onnxruntime does."""
    rng = np.random.default_rng(1)
    oc, ic = 6, 6
    lo, hi = (0, 255) if w_dtype == np.uint8 else (-127, 127)
    w = rng.integers(lo, hi + 1, (oc, ic // group, 3, 3)).astype(w_dtype)
    n = oc if per_channel else 1
    ws = rng.uniform(0.002, 0.02, n).astype(F)
    wz = (rng.integers(90, 160, n) if w_dtype == np.uint8 else np.zeros(n)).astype(w_dtype)
    inits = {"xs": np.array(0.03, F), "xz": np.array(np.uint8(130)), "w": w, "ws": ws if per_channel else ws[0],
             "wz": wz if per_channel else wz[0], "ys": np.array(0.05, F), "yz": np.array(np.uint8(120)),
             "b": rng.integers(-500, 500, oc).astype(np.int32)}
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["y"],
                            pads=[1, 0, 1, 1], strides=[1, 2], group=group)
    m = make_model([node], [("x", np.uint8, (1, ic, 9, 8))], [("y", np.uint8, None)], inits)
    it = edgeml.Interpreter(m)
    for _ in range(5):
        x = rng.integers(0, 256, (1, ic, 9, 8)).astype(np.uint8)
        assert_ort_equal(it.run(x), ort_run(m, {"x": x})[0])


def test_qdq_conv_with_uint8_weights_and_zero_points():
    rng = np.random.default_rng(2)
    w = rng.integers(0, 256, (4, 3, 3, 3)).astype(np.uint8)
    inits = {"sx": np.array(0.02, F), "zx": np.array(np.uint8(128)), "w": w,
             "sw": rng.uniform(0.002, 0.01, 4).astype(F), "zw": rng.integers(100, 150, 4).astype(np.uint8),
             "sy": np.array(0.04, F), "zy": np.array(np.uint8(10))}
    nodes = [helper.make_node("DequantizeLinear", ["x", "sx", "zx"], ["dx"]),
             helper.make_node("DequantizeLinear", ["w", "sw", "zw"], ["dw"], axis=0),
             helper.make_node("Conv", ["dx", "dw"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("QuantizeLinear", ["r", "sy", "zy"], ["y"])]
    m = make_model(nodes, [("x", np.uint8, (1, 3, 7, 7))], [("y", np.uint8, (1, 4, 7, 7))], inits)
    it = edgeml.Interpreter(m)
    assert "ONNX_CONV_INTEGER" in [op.type for op in it.graph.ops]
    for _ in range(5):
        x = rng.integers(0, 256, (1, 3, 7, 7)).astype(np.uint8)
        assert_ort_equal(it.run(x), ort_run(m, {"x": x})[0])


@pytest.mark.parametrize("dtype, b_zero", [(np.uint8, 0), (np.uint8, 77), (np.int8, 0), (np.int8, -5)])
def test_qlinearmatmul(dtype, b_zero):
    rng = np.random.default_rng(3)
    lo, hi = (0, 255) if dtype == np.uint8 else (-128, 127)
    zero = dtype(0) if dtype == np.uint8 else dtype(0)
    b = rng.integers(lo, hi + 1, (16, 5)).astype(dtype)
    inits = {"as": np.array(0.02, F), "az": np.array(dtype(lo + 100)), "b": b,
             "bs": rng.uniform(0.002, 0.01, 5).astype(F), "bz": np.full(5, b_zero, dtype),
             "ys": np.array(0.3, F), "yz": np.array(zero)}
    node = helper.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"])
    m = make_model([node], [("a", dtype, (3, 16))], [("y", dtype, (3, 5))], inits)
    it = edgeml.Interpreter(m)
    for _ in range(5):
        a = rng.integers(lo, hi + 1, (3, 16)).astype(dtype)
        assert_ort_equal(it.run(a), ort_run(m, {"a": a})[0])


def test_convinteger_and_matmulinteger_int32_outputs():
    rng = np.random.default_rng(4)
    w = rng.integers(0, 256, (5, 2, 3, 3)).astype(np.uint8)
    conv = helper.make_node("ConvInteger", ["x", "w", "xz", "wz"], ["y"], pads=[1, 1, 1, 1])
    m = make_model([conv], [("x", np.uint8, (1, 2, 6, 6))], [("y", np.int32, (1, 5, 6, 6))],
                   {"w": w, "xz": np.array(np.uint8(3)), "wz": np.array(np.uint8(130))})
    x = rng.integers(0, 256, (1, 2, 6, 6)).astype(np.uint8)
    got = edgeml.Interpreter(m).run(x)
    assert got.dtype == np.int32
    assert_ort_equal(got, ort_run(m, {"x": x})[0])
    mm = helper.make_node("MatMulInteger", ["a", "b", "az", "bz"], ["y"])
    m2 = make_model([mm], [("a", np.int8, (4, 7))], [("y", np.int32, (4, 3))],
                    {"b": rng.integers(-128, 128, (7, 3)).astype(np.int8), "az": np.array(np.int8(-3)),
                     "bz": np.array(np.int8(4))})
    a = rng.integers(-128, 128, (4, 7)).astype(np.int8)
    assert_ort_equal(edgeml.Interpreter(m2).run(a), ort_run(m2, {"a": a})[0])


def test_dynamic_quantize_linear_feeds_matmulinteger():
    """The dynamic-quantization pattern: the zero point is computed at run time and read by the kernel."""
    rng = np.random.default_rng(5)
    nodes = [helper.make_node("DynamicQuantizeLinear", ["x"], ["q", "s", "z"]),
             helper.make_node("MatMulInteger", ["q", "w", "z"], ["y"])]
    m = make_model(nodes, [("x", F, (2, 8))], [("y", np.int32, (2, 4)), ("s", F, ()), ("z", np.uint8, ())],
                   {"w": rng.integers(0, 256, (8, 4)).astype(np.uint8)})
    it = edgeml.Interpreter(m)
    for _ in range(5):
        x = (rng.standard_normal((2, 8)) * 3).astype(F)
        for g, r in zip(it.run(x), ort_run(m, {"x": x})):
            assert_ort_equal(g, r)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_com_microsoft_qlinear_ops(dtype):
    rng = np.random.default_rng(6)
    lo, hi = (0, 255) if dtype == np.uint8 else (-128, 127)
    z = dtype(0) if dtype == np.uint8 else dtype(-128)
    inits = {"s1": np.array(0.04, F), "z1": np.array(dtype(lo + 20)), "s2": np.array(0.07, F),
             "z2": np.array(dtype(hi - 30)), "s3": np.array(0.06, F), "z3": np.array(dtype(lo + 50)),
             "ss": np.array(1 / 256, F), "zs": np.array(z)}
    nodes = [
        helper.make_node("QLinearAdd", ["a", "s1", "z1", "b", "s2", "z2", "s3", "z3"], ["sum"], domain="com.microsoft"),
        helper.make_node("QLinearConcat", ["s3", "z3", "sum", "s3", "z3", "a", "s1", "z1"], ["cat"], axis=1,
                         domain="com.microsoft"),
        helper.make_node("QLinearSoftmax", ["cat", "s3", "z3", "ss", "zs"], ["y"], axis=-1, opset=13,
                         domain="com.microsoft"),
    ]
    m = make_model(nodes, [("a", dtype, (2, 3, 10)), ("b", dtype, (2, 3, 10))], [("y", dtype, (2, 6, 10))], inits,
                   extra_opsets=MS)
    it = edgeml.Interpreter(m)
    for _ in range(5):
        a, b = (rng.integers(lo, hi + 1, (2, 3, 10)).astype(dtype) for _ in range(2))
        assert_ort_equal(it.run({"a": a, "b": b}), ort_run(m, {"a": a, "b": b})[0])


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("op", ["QLinearMul", "QLinearSigmoid", "QLinearLeakyRelu", "QLinearAveragePool",
                                "QLinearAveragePool_nhwc", "QLinearGlobalAveragePool",
                                "QLinearGlobalAveragePool_nhwc"])
def test_com_microsoft_float_path_ops(op, dtype):
    """onnxruntime computes these through float (tables or dequantize-compute-quantize); so does edgeml."""
    rng = np.random.default_rng(9)
    lo, hi = (0, 255) if dtype == np.uint8 else (-128, 127)
    nhwc = op.endswith("_nhwc")
    name = op.replace("_nhwc", "")
    shape = (1, 6, 7, 8)
    ins = {"QLinearMul": ["a", "s1", "z1", "b", "s2", "z2", "s3", "z3"]}.get(name, ["a", "s1", "z1", "s3", "z3"])
    attrs = {"QLinearAveragePool": dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]),
             "QLinearLeakyRelu": dict(alpha=0.2)}.get(name, {})
    if nhwc:
        attrs["channels_last"] = 1
    node = helper.make_node(name, ins, ["y"], domain="com.microsoft", **attrs)
    for _ in range(4):
        s1, s2, s3 = rng.uniform(0.01, 0.1, 3).astype(F)
        z1, z2, z3 = (dtype(v) for v in rng.integers(lo, hi + 1, 3))
        inits = q_inits(s1=s1, z1=z1, s2=s2, z2=z2, s3=s3, z3=z3)
        inputs = [("a", dtype, shape)] + ([("b", dtype, shape)] if name == "QLinearMul" else [])
        m = make_model([node], inputs, [("y", dtype, None)], {k: v for k, v in inits.items() if k in ins},
                       extra_opsets=MS)
        feeds = {n: rng.integers(lo, hi + 1, shape).astype(dtype) for n, _, _ in inputs}
        assert_ort_equal(edgeml.Interpreter(m).run(feeds if len(feeds) > 1 else feeds["a"]),
                         ort_run(m, feeds)[0])
