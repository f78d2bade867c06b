"""onnxruntime's quantized operators one by one (QGemm, batched QLinearMatMul, QDQ products of two activations,
broadcasting QLinearAdd / QLinearMul, QLinearConv 1-D, QAttention, ...), built with onnx.helper and compared with
onnxruntime on 20 seeded inputs each.  Integer outputs are equal (the integer kernels reproduce onnxruntime's exact
int32 sums and float requantization); float outputs within rtol / atol 1e-5."""
import numpy as np
import pytest
from onnx import helper

import edgeml
from tests.onnx_models import assert_ort_equal, make_model, ort_diff, ort_run

pytest.importorskip("onnxruntime")

F = np.float32
MS = [("com.microsoft", 1)]
RUNS = 20


def int_range(dtype):
    return (0, 255) if dtype == np.uint8 else (-128, 127)


def rand_int(rng, dtype, shape):
    lo, hi = int_range(dtype)
    return rng.integers(lo, hi + 1, shape).astype(dtype)


def assert_matches(model: bytes, feeds_fn, rng, runs: int = RUNS, op_type: str = None, lsb: int = 0,
                   float_atol: float = 1e-5):
    """edgeml equals onnxruntime (integers within `lsb` where onnxruntime computes in float; float outputs
    within float_atol, one output step where a float op's rounding may differ before a QuantizeLinear)."""
    it = edgeml.Interpreter(model)
    if op_type is not None:
        assert op_type in [op.type for op in it.graph.ops]
    for _ in range(runs):
        feeds = feeds_fn(rng)
        got = it.run(feeds if len(feeds) > 1 else next(iter(feeds.values())))
        got = got if isinstance(got, list) else [got]
        for g, r in zip(got, ort_run(model, feeds)):
            if r.dtype.kind == "f":
                assert_ort_equal(g, r, rtol=1e-5, atol=float_atol)
            else:
                assert g.dtype == r.dtype
                if lsb:
                    assert ort_diff(g, r).max() <= lsb
                else:
                    assert_ort_equal(g, r)


# ----- QGemm ---------------------------------------------------------------------------------------------------
QGEMM_CASES = [
    # a type, b type, per column, C shape, transA, transB, alpha, quantized output
    (np.uint8, np.int8, False, (5,), 0, 1, 1.0, True),
    (np.uint8, np.int8, True, (5,), 0, 1, 1.0, True),
    (np.uint8, np.uint8, False, (1, 5), 0, 0, 1.0, True),
    (np.uint8, np.uint8, True, (), 1, 1, 1.0, True),
    (np.int8, np.int8, False, None, 0, 0, 1.0, True),
    (np.int8, np.int8, True, (5,), 1, 0, 0.75, True),
    (np.uint8, np.int8, False, (5,), 0, 1, 2.5, True),
    (np.uint8, np.int8, True, (5,), 0, 1, 1.0, False),
    (np.int8, np.int8, False, None, 0, 0, 0.5, False),
    (np.uint8, np.uint8, True, (1, 5), 1, 0, 1.0, False),
]


@pytest.mark.parametrize("a_dt, b_dt, per_column, c_shape, trans_a, trans_b, alpha, quantized_out", QGEMM_CASES)
def test_qgemm(a_dt, b_dt, per_column, c_shape, trans_a, trans_b, alpha, quantized_out):
    """QGemm with and without C, transA / transB, alpha, per-column B parameters, a quantized or a float output
    (onnxruntime: int32 sum + C, then (alpha a_scale b_scale) / y_scale, or (float)sum * alpha a_scale b_scale)."""
    rng = np.random.default_rng(11)
    m, k, n = 3, 13, 5
    b = rand_int(rng, b_dt, (n, k) if trans_b else (k, n))
    nb = n if per_column else 1
    bz = (rng.integers(100, 160, nb) if b_dt == np.uint8 else np.zeros(nb)).astype(b_dt)
    bs = rng.uniform(0.002, 0.02, nb).astype(F)
    lo, _ = int_range(a_dt)
    inits = {"as": np.array(0.03, F), "az": np.array(a_dt(lo + 120)), "b": b,
             "bs": bs if per_column else bs[0], "bz": bz if per_column else bz[0]}
    names = ["a", "as", "az", "b", "bs", "bz"]
    if c_shape is not None:
        inits["c"] = rng.integers(-3000, 3000, c_shape).astype(np.int32)
    names.append("c" if c_shape is not None else "")
    if quantized_out:
        inits.update(ys=np.array(0.09, F), yz=np.array(a_dt(lo + 100)))
        names += ["ys", "yz"]
    node = helper.make_node("QGemm", names, ["y"], domain="com.microsoft", alpha=alpha, transA=trans_a,
                            transB=trans_b)
    a_shape = (k, m) if trans_a else (m, k)
    out_dt = a_dt if quantized_out else F
    model = make_model([node], [("a", a_dt, a_shape)], [("y", out_dt, (m, n))], inits, extra_opsets=MS)
    assert_matches(model, lambda r: {"a": rand_int(r, a_dt, a_shape)}, rng)


def test_qgemm_refusals():
    rng = np.random.default_rng(12)
    base = {"as": np.array(0.03, F), "az": np.array(np.uint8(128)), "b": rand_int(rng, np.int8, (4, 3)),
            "bs": np.array(0.01, F), "bz": np.array(np.int8(0)), "ys": np.array(0.1, F), "yz": np.array(np.uint8(128))}
    names = ["a", "as", "az", "b", "bs", "bz", "c", "ys", "yz"]

    def model(inits, **attrs):
        node = helper.make_node("QGemm", names, ["y"], domain="com.microsoft", **attrs)
        return make_model([node], [("a", np.uint8, (2, 4))], [("y", np.uint8, (2, 3))], inits, extra_opsets=MS)
    with pytest.raises(edgeml.UnsupportedOpError, match="C of shape"):
        edgeml.Interpreter(model(dict(base, c=np.zeros((2, 3), np.int32))))
    with pytest.raises(edgeml.ModelFormatError, match="C must be int32"):
        edgeml.Interpreter(model(dict(base, c=np.zeros(3, F))))
    with pytest.raises(edgeml.UnsupportedOpError, match="attribute 'beta'"):
        edgeml.Interpreter(model(dict(base, c=np.zeros(3, np.int32)), beta=2.0))
    with pytest.raises(edgeml.ModelFormatError, match="transA 2"):
        edgeml.Interpreter(model(dict(base, c=np.zeros(3, np.int32)), transA=2))
    with pytest.raises(edgeml.ModelFormatError, match="does not fit"):
        edgeml.Interpreter(model(dict(base, c=np.zeros(3, np.int32)), transB=1))
    with pytest.raises(edgeml.ModelFormatError, match="B scale"):
        edgeml.Interpreter(model(dict(base, c=np.zeros(3, np.int32), bs=np.full(2, 0.01, F),
                                      bz=np.zeros(2, np.int8))))


# ----- QLinearMatMul and QDQ MatMul of activations ---------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("a_shape, b_shape, b_const", [
    ((2, 3, 4, 8), (8, 5), True),            # batched A, 2-D weights: the dense kernels
    ((2, 3, 8), (2, 8, 5), True),            # batched constant B
    ((2, 4, 6), (2, 6, 3), False),           # two activations
    ((1, 4, 6), (3, 6, 5), False),           # broadcast batch
    ((2, 3, 5, 7), (7, 4), False),           # activation B of rank 2 broadcast over the batch
])
def test_qlinear_matmul_batched(dtype, a_shape, b_shape, b_const):
    rng = np.random.default_rng(13)
    lo, hi = int_range(dtype)
    inits = {"as": np.array(0.02, F), "az": np.array(dtype(lo + 110)), "bs": np.array(0.03, F),
             "bz": np.array(dtype(lo + 140)), "ys": np.array(0.2, F), "yz": np.array(dtype(lo + 90))}
    inputs = [("a", dtype, a_shape)]
    if b_const:
        inits["b"] = rand_int(rng, dtype, b_shape)
    else:
        inputs.append(("b", dtype, b_shape))
    node = helper.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"])
    model = make_model([node], inputs, [("y", dtype, None)], inits)
    assert_matches(model, lambda r: {n: rand_int(r, dtype, s) for n, _, s in inputs}, rng)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_qdq_matmul_of_two_activations(dtype):
    """Attention scores in QDQ form: DQ(q) MatMul DQ(k^T) -> Q.  onnxruntime fuses the uint8 group into
    QLinearMatMul (equal); the int8 one it leaves to a float MatMul, whose rounded sum sits a rounding tie away
    from the exact integer one in about 1 of 2000 outputs: within 1 LSB."""
    rng = np.random.default_rng(14)
    lo, _ = int_range(dtype)
    inits = {"s1": np.array(0.05, F), "z1": np.array(dtype(lo + 120)), "s2": np.array(0.04, F),
             "z2": np.array(dtype(lo + 130)), "s3": np.array(0.5, F), "z3": np.array(dtype(lo + 128))}
    nodes = [helper.make_node("DequantizeLinear", ["q", "s1", "z1"], ["dq"]),
             helper.make_node("DequantizeLinear", ["k", "s2", "z2"], ["dk"]),
             helper.make_node("MatMul", ["dq", "dk"], ["mm"]),
             helper.make_node("QuantizeLinear", ["mm", "s3", "z3"], ["y"])]
    inputs = [("q", dtype, (2, 3, 6, 8)), ("k", dtype, (2, 3, 8, 6))]
    model = make_model(nodes, inputs, [("y", dtype, (2, 3, 6, 6))], inits)
    assert_matches(model, lambda r: {n: rand_int(r, dtype, s) for n, _, s in inputs}, rng, op_type="BATCH_MATMUL",
                   lsb=1 if dtype == np.int8 else 0)


# ----- QLinearAdd / QLinearMul: broadcasting and constant operands -------------------------------------------------
BROADCASTS = [
    ((4, 6), (6,), False),             # [N, C] with [C]: whole spans on both sides
    ((2, 5, 3, 4), (1, 5, 1, 1), False),   # per-channel operand: a scalar for each span (MLAS's scalar variant)
    ((5, 1), (1, 7), False),           # both broadcast
    ((2, 3, 4), (4,), True),           # constant vector
    ((2, 5, 3, 4), (5, 1, 1), True),   # constant per-channel
    ((3, 6), (1,), True),              # constant scalar
    ((1,), (2, 3, 4), False),          # the first operand broadcast
]


@pytest.mark.parametrize("op", ["QLinearAdd", "QLinearMul"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("a_shape, b_shape, b_const", BROADCASTS)
def test_qlinear_binary_broadcasting(op, dtype, a_shape, b_shape, b_const):
    rng = np.random.default_rng(15)
    lo, hi = int_range(dtype)
    inits = {"s1": np.array(0.04, F), "z1": np.array(dtype(lo + 20)), "s2": np.array(0.07, F),
             "z2": np.array(dtype(hi - 30)), "s3": np.array(0.09 if op == "QLinearAdd" else 0.3, F),
             "z3": np.array(dtype(lo + 110))}
    inputs = [("a", dtype, a_shape)]
    if b_const:
        inits["b"] = rand_int(rng, dtype, b_shape)
    else:
        inputs.append(("b", dtype, b_shape))
    node = helper.make_node(op, ["a", "s1", "z1", "b", "s2", "z2", "s3", "z3"], ["y"], domain="com.microsoft")
    model = make_model([node], inputs, [("y", dtype, None)], inits, extra_opsets=MS)
    assert_matches(model, lambda r: {n: rand_int(r, dtype, s) for n, _, s in inputs}, rng)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_qlinear_add_after_conv_broadcasts_in_channels_last_order(dtype):
    """A QLinearConv output lives channels-last in edgeml: a [C, 1, 1] constant and a [W] activation operand
    are laid out to match (and the per-channel one takes the scalar-span arithmetic)."""
    rng = np.random.default_rng(16)
    lo, hi = int_range(dtype)
    wdt = np.int8
    inits = {"xs": np.array(0.03, F), "xz": np.array(dtype(lo + 128)), "w": rand_int(rng, wdt, (6, 3, 3, 3)),
             "ws": np.array(0.01, F), "wz": np.array(wdt(0)), "cs": np.array(0.05, F), "cz": np.array(dtype(lo + 120)),
             "k": rand_int(rng, dtype, (6, 1, 1)), "ks": np.array(0.02, F), "kz": np.array(dtype(lo + 100)),
             "vs": np.array(0.03, F), "vz": np.array(dtype(lo + 90)), "ys": np.array(0.08, F),
             "yz": np.array(dtype(lo + 128)), "y2s": np.array(0.1, F), "y2z": np.array(dtype(lo + 128))}
    nodes = [helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "cs", "cz"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("QLinearAdd", ["c", "cs", "cz", "k", "ks", "kz", "ys", "yz"], ["y"],
                              domain="com.microsoft"),
             helper.make_node("QLinearAdd", ["y", "ys", "yz", "v", "vs", "vz", "y2s", "y2z"], ["y2"],
                              domain="com.microsoft")]
    inputs = [("x", dtype, (2, 3, 5, 7)), ("v", dtype, (7,))]
    model = make_model(nodes, inputs, [("y2", dtype, (2, 6, 5, 7))], inits, extra_opsets=MS)
    assert_matches(model, lambda r: {n: rand_int(r, dtype, s) for n, _, s in inputs}, rng)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_qdq_add_with_a_constant_and_broadcasting(dtype):
    """DQ(x) + DQ(constant [C, 1, 1]) -> Q: onnxruntime fuses it into QLinearAdd with a constant operand."""
    rng = np.random.default_rng(17)
    lo, _ = int_range(dtype)
    inits = {"s1": np.array(0.04, F), "z1": np.array(dtype(lo + 100)), "c": rand_int(rng, dtype, (4, 1, 1)),
             "s2": np.array(0.02, F), "z2": np.array(dtype(lo + 128)), "s3": np.array(0.05, F),
             "z3": np.array(dtype(lo + 120))}
    nodes = [helper.make_node("DequantizeLinear", ["x", "s1", "z1"], ["dx"]),
             helper.make_node("DequantizeLinear", ["c", "s2", "z2"], ["dc"]),
             helper.make_node("Add", ["dx", "dc"], ["sum"]),
             helper.make_node("QuantizeLinear", ["sum", "s3", "z3"], ["y"])]
    model = make_model(nodes, [("x", dtype, (2, 4, 3, 5))], [("y", dtype, (2, 4, 3, 5))], inits)
    assert_matches(model, lambda r: {"x": rand_int(r, dtype, (2, 4, 3, 5))}, rng, op_type="ONNX_QLINEAR_ADD")


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("b_const", [False, True])
def test_qdq_mul_fuses_into_qlinear_mul(dtype, b_const):
    """DQ(a) * DQ(b) -> Q (e.g. an attention block's 1 / sqrt(d) scaling): onnxruntime's QLinearMul."""
    rng = np.random.default_rng(18)
    lo, _ = int_range(dtype)
    inits = {"s1": np.array(0.04, F), "z1": np.array(dtype(lo + 100)), "s2": np.array(0.02, F),
             "z2": np.array(dtype(lo + 128)), "s3": np.array(0.03, F), "z3": np.array(dtype(lo + 120))}
    inputs = [("x", dtype, (2, 3, 8))]
    if b_const:
        inits["c"] = rand_int(rng, dtype, (8,))
    else:
        inputs.append(("c", dtype, (3, 1)))
    nodes = [helper.make_node("DequantizeLinear", ["x", "s1", "z1"], ["dx"]),
             helper.make_node("DequantizeLinear", ["c", "s2", "z2"], ["dc"]),
             helper.make_node("Mul", ["dx", "dc"], ["prod"]),
             helper.make_node("QuantizeLinear", ["prod", "s3", "z3"], ["y"])]
    model = make_model(nodes, inputs, [("y", dtype, (2, 3, 8))], inits)
    assert_matches(model, lambda r: {n: rand_int(r, dtype, s) for n, _, s in inputs}, rng, op_type="ONNX_QLINEAR_MUL")


# ----- QLinearConv 1-D ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("x_dt, w_dt, per_channel, group, attrs", [
    (np.uint8, np.int8, True, 1, dict(pads=[1, 2], strides=[2])),
    (np.uint8, np.uint8, False, 1, dict(pads=[0, 0], dilations=[2])),
    (np.int8, np.int8, False, 2, dict(auto_pad="SAME_UPPER")),
    (np.int8, np.int8, True, 6, dict(pads=[1, 1], kernel_shape=[3])),     # depthwise
])
def test_qlinear_conv_1d(x_dt, w_dt, per_channel, group, attrs):
    """1-D QLinearConv (as in audio models) runs as a 2-D conv over a height-1 image."""
    rng = np.random.default_rng(19)
    oc, ic, length = 6, 6, 17
    w = rand_int(rng, w_dt, (oc, ic // group, 3))
    n = oc if per_channel else 1
    wz = (rng.integers(100, 160, n) if w_dt == np.uint8 else np.zeros(n)).astype(w_dt)
    ws = rng.uniform(0.002, 0.02, n).astype(F)
    lo, _ = int_range(x_dt)
    inits = {"xs": np.array(0.03, F), "xz": np.array(x_dt(lo + 130)), "w": w, "ws": ws if per_channel else ws[0],
             "wz": wz if per_channel else wz[0], "ys": np.array(0.05, F), "yz": np.array(x_dt(lo + 120)),
             "b": rng.integers(-500, 500, oc).astype(np.int32)}
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["y"], group=group,
                            **attrs)
    model = make_model([node], [("x", x_dt, (2, ic, length))], [("y", x_dt, None)], inits)
    assert_matches(model, lambda r: {"x": rand_int(r, x_dt, (2, ic, length))}, rng)


def test_qlinear_conv_attribute_refusals():
    rng = np.random.default_rng(20)
    inits = {"xs": np.array(0.03, F), "xz": np.array(np.uint8(128)), "w": rand_int(rng, np.int8, (4, 2, 3)),
             "ws": np.array(0.01, F), "wz": np.array(np.int8(0)), "ys": np.array(0.05, F),
             "yz": np.array(np.uint8(128))}

    def load(**attrs):
        node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"], **attrs)
        edgeml.Interpreter(make_model([node], [("x", np.uint8, (1, 2, 9))], [("y", np.uint8, None)], inits))
    with pytest.raises(edgeml.ModelFormatError, match="kernel_shape"):
        load(kernel_shape=[5])
    with pytest.raises(edgeml.ModelFormatError, match="pads"):
        load(pads=[1, 1, 1, 1])
    with pytest.raises(edgeml.UnsupportedOpError, match="attribute 'channels_last'"):
        load(channels_last=1)


# ----- the float-computed com.microsoft ops, awkward shapes and attributes ------------------------------------------
POOL_CASES = [
    ("QLinearAveragePool", dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2], count_include_pad=1)),
    ("QLinearAveragePool", dict(kernel_shape=[2, 3], strides=[2, 2], ceil_mode=1)),
    ("QLinearAveragePool", dict(kernel_shape=[3, 2], auto_pad="SAME_UPPER")),
    ("QLinearGlobalAveragePool", {}),
    ("QLinearSigmoid", {}),
    ("QLinearLeakyRelu", dict(alpha=0.13)),
]


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("op, attrs", POOL_CASES)
def test_com_microsoft_unary_ops(op, attrs, dtype):
    """onnxruntime computes these through float (dequantize, float op, QuantizeLinear); so does edgeml."""
    rng = np.random.default_rng(21)
    lo, _ = int_range(dtype)
    shape = (2, 5, 9, 7) if "Pool" in op else (3, 5, 11)
    inits = {"s1": np.array(0.037, F), "z1": np.array(dtype(lo + 77)), "s3": np.array(0.021, F),
             "z3": np.array(dtype(lo + 140))}
    node = helper.make_node(op, ["x", "s1", "z1", "s3", "z3"], ["y"], domain="com.microsoft", **attrs)
    model = make_model([node], [("x", dtype, shape)], [("y", dtype, None)], inits, extra_opsets=MS)
    assert_matches(model, lambda r: {"x": rand_int(r, dtype, shape)}, rng)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_qlinear_concat_requantizes_each_input(dtype):
    """Three inputs with their own parameters (one equal to the output's, one a constant) along a negative axis."""
    rng = np.random.default_rng(22)
    lo, _ = int_range(dtype)
    inits = {"ys": np.array(0.05, F), "yz": np.array(dtype(lo + 128)), "s1": np.array(0.05, F),
             "z1": np.array(dtype(lo + 128)), "s2": np.array(0.031, F), "z2": np.array(dtype(lo + 90)),
             "s3": np.array(0.077, F), "z3": np.array(dtype(lo + 150)), "c": rand_int(rng, dtype, (2, 3, 2))}
    node = helper.make_node("QLinearConcat", ["ys", "yz", "a", "s1", "z1", "b", "s2", "z2", "c", "s3", "z3"], ["y"],
                            axis=-1, domain="com.microsoft")
    inputs = [("a", dtype, (2, 3, 4)), ("b", dtype, (2, 3, 5))]
    model = make_model([node], inputs, [("y", dtype, (2, 3, 11))], inits, extra_opsets=MS)
    assert_matches(model, lambda r: {n: rand_int(r, dtype, s) for n, _, s in inputs}, rng)


@pytest.mark.parametrize("channels_last", [0, 1])
@pytest.mark.parametrize("op, attrs", [
    ("QLinearAveragePool", dict(kernel_shape=[3], pads=[1, 2], strides=[2], count_include_pad=1)),
    ("QLinearAveragePool", dict(kernel_shape=[4], strides=[3], ceil_mode=1)),
    ("QLinearAveragePool", dict(kernel_shape=[13])),        # covers the sequence: MLAS's integer global average
    ("QLinearGlobalAveragePool", {}),
])
def test_qlinear_average_pool_1d(op, attrs, channels_last):
    rng = np.random.default_rng(23)
    dtype = np.uint8
    shape = (2, 13, 5) if channels_last else (2, 5, 13)
    inits = {"s1": np.array(0.037, F), "z1": np.array(dtype(77)), "s3": np.array(0.021, F), "z3": np.array(dtype(140))}
    node = helper.make_node(op, ["x", "s1", "z1", "s3", "z3"], ["y"], domain="com.microsoft",
                            channels_last=channels_last, **attrs)
    model = make_model([node], [("x", dtype, shape)], [("y", dtype, None)], inits, extra_opsets=MS)
    assert_matches(model, lambda r: {"x": rand_int(r, dtype, shape)}, rng)


def test_qlinear_pool_and_concat_refusals():
    inits = {"s1": np.array(0.037, F), "z1": np.array(np.uint8(77)), "s3": np.array(0.021, F),
             "z3": np.array(np.uint8(140))}

    def load(op, **attrs):
        node = helper.make_node(op, ["x", "s1", "z1", "s3", "z3"], ["y"], domain="com.microsoft", **attrs)
        edgeml.Interpreter(make_model([node], [("x", np.uint8, (1, 2, 6, 6))], [("y", np.uint8, None)], inits,
                                      extra_opsets=MS))
    with pytest.raises(edgeml.UnsupportedOpError, match="dilations"):
        load("QLinearAveragePool", kernel_shape=[2, 2], dilations=[2, 2])
    with pytest.raises(edgeml.ModelFormatError, match="kernel_shape"):
        load("QLinearAveragePool", kernel_shape=[2])
    with pytest.raises(edgeml.UnsupportedOpError, match="attribute 'kernel_shape'"):
        load("QLinearGlobalAveragePool", kernel_shape=[2, 2])
    node = helper.make_node("QLinearConcat", ["s3", "z3", "x", "s1", "z1"], ["y"], axis=1, mode=2,
                            domain="com.microsoft")
    with pytest.raises(edgeml.UnsupportedOpError, match="attribute 'mode'"):
        edgeml.Interpreter(make_model([node], [("x", np.uint8, (1, 2, 6, 6))], [("y", np.uint8, None)], inits,
                                      extra_opsets=MS))


# ----- QDQ groups onnxruntime fuses into QLinearAveragePool / QLinearGlobalAveragePool / QLinearConv 1-D -------------
@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("sharing", ["none", "input", "both"])
@pytest.mark.parametrize("op, attrs, shape", [
    ("AveragePool", dict(kernel_shape=[2, 2], strides=[2, 2]), (2, 3, 6, 8)),
    ("AveragePool", dict(kernel_shape=[3], pads=[1, 1], count_include_pad=1), (2, 3, 9)),
    ("GlobalAveragePool", {}, (2, 3, 5, 4)),
])
def test_qdq_average_pool(op, attrs, shape, sharing, dtype):
    """DQ -> AveragePool -> Q with one scale on both sides (averages of 2x2 windows tie at .5): onnxruntime fuses
    it when it sees one integer type on both sides, computing int8 converted to uint8 in the uint8 domain, and
    leaves it in float when a shared DQ keeps one side int8."""
    rng = np.random.default_rng(24)
    inits = {"s": np.array(0.05, F), "z": np.array(dtype(3)), "s2": np.array(0.05, F), "z2": np.array(dtype(3))}
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"]), helper.make_node(op, ["d"], ["p"], **attrs),
             helper.make_node("QuantizeLinear", ["p", "s2", "z2"], ["q2"]),
             helper.make_node("DequantizeLinear", ["q2", "s2", "z2"], ["y"])]
    outputs = [("y", F, None)]
    if sharing in ("input", "both"):        # a second reader of a DQ keeps its Q int8 in onnxruntime
        nodes.append(helper.make_node("Relu", ["d"], ["y2"]))
        outputs.append(("y2", F, None))
    if sharing == "both":
        nodes.append(helper.make_node("Relu", ["y"], ["y3"]))
        outputs.append(("y3", F, None))
    model = make_model(nodes, [("x", F, shape)], outputs, inits)
    fused = dtype == np.uint8 or sharing != "input"
    if not fused and len(shape) == 3:
        pytest.skip("a float 1-D AveragePool belongs to the float pooling ops")
    # unfused, both run a float average pool, whose summation order may differ: one output step on near ties
    assert_matches(model, lambda r: {"x": (r.standard_normal(shape) * 3).astype(F)}, rng,
                   op_type="ONNX_QLINEAR_AVERAGE_POOL" if fused else None, float_atol=1e-5 if fused else 0.05 + 1e-5)


@pytest.mark.parametrize("x_dt, w_dt, per_channel", [(np.uint8, np.int8, True), (np.uint8, np.uint8, False),
                                                     (np.int8, np.int8, True)])
def test_qdq_conv_1d(x_dt, w_dt, per_channel):
    """DQ -> Conv 1-D [-> Relu] -> Q runs on the 2-D QDQ conv paths over a height-1 image."""
    rng = np.random.default_rng(25)
    oc, ic = 5, 4
    n = oc if per_channel else 1
    w = rand_int(rng, w_dt, (oc, ic, 3))
    wz = (rng.integers(100, 160, n) if w_dt == np.uint8 else np.zeros(n)).astype(w_dt)
    ws = rng.uniform(0.005, 0.02, n).astype(F)
    inits = {"s": np.array(0.04, F), "z": np.array(x_dt(int_range(x_dt)[0] + 128)), "w": w,
             "ws": ws if per_channel else ws[0], "wz": wz if per_channel else wz[0],
             "b": rng.integers(-300, 300, oc).astype(np.int32), "bs": (0.04 * ws).astype(F),
             "s2": np.array(0.03, F), "z2": np.array(x_dt(int_range(x_dt)[0] + 100))}
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"]),
             helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wf"], axis=0),
             helper.make_node("DequantizeLinear", ["b", "bs"], ["bf"], axis=0),
             helper.make_node("Conv", ["d", "wf", "bf"], ["c"], pads=[1, 1], strides=[2]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("QuantizeLinear", ["r", "s2", "z2"], ["q2"]),
             helper.make_node("DequantizeLinear", ["q2", "s2", "z2"], ["y"])]
    if not per_channel:
        inits["bs"] = inits["bs"].reshape(())
    model = make_model(nodes, [("x", F, (2, ic, 15))], [("y", F, None)], inits)
    assert_matches(model, lambda r: {"x": (r.standard_normal((2, ic, 15)) * 2).astype(F)}, rng)


# ----- com.microsoft QAttention --------------------------------------------------------------------------------------
@pytest.mark.parametrize("w_dt, per_column, with_zp, scale", [
    (np.int8, False, False, None),
    (np.int8, True, True, None),
    (np.uint8, True, True, 0.2),
    (np.uint8, False, True, None),
])
def test_qattention(w_dt, per_column, with_zp, scale):
    """Exact int32 Q / K / V products turned to float with (w_scale x_scale) and the bias, float attention (scores
    of order one: the float steps sum in another order than MLAS, which large scores would amplify)."""
    rng = np.random.default_rng(26)
    b, s, d, hidden, heads = 2, 5, 12, 12, 2         # head size 6: the default scale 1 / sqrt(6) is inexact
    n = 3 * hidden if per_column else 1
    inits = {"w": rand_int(rng, w_dt, (d, 3 * hidden)), "bias": rng.standard_normal(3 * hidden).astype(F) * 0.1,
             "xs": np.array(0.02, F), "ws": rng.uniform(0.001, 0.003, n).astype(F).reshape(-1 if per_column else ()),
             "xz": np.array(np.uint8(121))}
    names = ["x", "w", "bias", "xs", "ws", "", "xz"]
    if with_zp:
        zp = (rng.integers(100, 160, n) if w_dt == np.uint8 else rng.integers(-5, 6, n)).astype(w_dt)
        inits["wz"] = zp.reshape(-1 if per_column else ())
        names.append("wz")
    kw = {} if scale is None else dict(scale=scale)
    node = helper.make_node("QAttention", names, ["y"], domain="com.microsoft", num_heads=heads, **kw)
    model = make_model([node], [("x", np.uint8, (b, s, d))], [("y", F, None)], inits, extra_opsets=MS)
    assert_matches(model, lambda r: {"x": rand_int(r, np.uint8, (b, s, d))}, rng, op_type="SOFTMAX")


def test_qattention_from_quantize_dynamic(tmp_path):
    """What quantize_dynamic makes of a com.microsoft Attention node: DynamicQuantizeLinear -> QAttention."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    rng = np.random.default_rng(27)
    d, hidden = 16, 16
    inits = {"w": (rng.standard_normal((d, 3 * hidden)) * 0.3).astype(F),
             "bias": (rng.standard_normal(3 * hidden) * 0.1).astype(F)}
    node = helper.make_node("Attention", ["x", "w", "bias"], ["y"], domain="com.microsoft", num_heads=4)
    (tmp_path / "f.onnx").write_bytes(make_model([node], [("x", F, (2, 7, d))], [("y", F, None)], inits,
                                                 extra_opsets=MS))
    quantize_dynamic(str(tmp_path / "f.onnx"), str(tmp_path / "q.onnx"), weight_type=QuantType.QInt8)
    model = (tmp_path / "q.onnx").read_bytes()
    import onnx
    assert "QAttention" in {n.op_type for n in onnx.load_from_string(model).graph.node}
    assert_matches(model, lambda r: {"x": r.standard_normal((2, 7, d)).astype(F)}, rng)


def test_qattention_refusals():
    rng = np.random.default_rng(28)
    inits = {"w": rand_int(rng, np.int8, (8, 24)), "bias": np.zeros(24, F), "xs": np.array(0.02, F),
             "ws": np.array(0.01, F), "mask": np.array([5, 5, 5], np.int32)}

    def load(names=("x", "w", "bias", "xs", "ws"), **attrs):
        node = helper.make_node("QAttention", list(names), ["y"], domain="com.microsoft", **attrs)
        edgeml.Interpreter(make_model([node], [("x", np.uint8, (2, 5, 8))], [("y", F, None)], inits,
                                      extra_opsets=MS))
    with pytest.raises(edgeml.ModelFormatError, match="unidirectional"):
        load(num_heads=2, unidirectional=2)
    with pytest.raises(edgeml.UnsupportedOpError, match="mask_index of shape"):
        load(("x", "w", "bias", "xs", "ws", "mask"), num_heads=2)
    with pytest.raises(edgeml.UnsupportedOpError, match="past"):
        load(("x", "w", "bias", "xs", "ws", "", "", "", "mask"), num_heads=2)
    with pytest.raises(edgeml.ModelFormatError, match="num_heads"):
        load()
    with pytest.raises(edgeml.ModelFormatError, match="heads"):
        load(num_heads=3)


@pytest.mark.parametrize("op", ["QLinearSigmoid", "QLinearLeakyRelu", "QLinearSoftmax"])
def test_unread_attributes_are_refused(op):
    inits = {"s1": np.array(0.037, F), "z1": np.array(np.uint8(77)), "s3": np.array(0.021, F),
             "z3": np.array(np.uint8(140))}
    node = helper.make_node(op, ["x", "s1", "z1", "s3", "z3"], ["y"], domain="com.microsoft", channels_last=1)
    with pytest.raises(edgeml.UnsupportedOpError, match="attribute 'channels_last'"):
        edgeml.Interpreter(make_model([node], [("x", np.uint8, (1, 2, 6, 6))], [("y", np.uint8, None)], inits,
                                      extra_opsets=MS))


@pytest.mark.parametrize("mask_kind, unidirectional", [("ends", 0), ("ends_starts", 0), ("raw", 1), ("raw3d", 0),
                                                       (None, 1)])
def test_qattention_masks(mask_kind, unidirectional):
    """mask_index as key end positions [B], ends and starts [2B], 0 / 1 masks [B, T] / [B, S, T] (graph inputs
    read at run time), and the causal mask of unidirectional."""
    rng = np.random.default_rng(29)
    b, s, d, hidden, heads = 3, 6, 8, 8, 2
    inits = {"w": rand_int(rng, np.int8, (d, 3 * hidden)), "bias": rng.standard_normal(3 * hidden).astype(F) * 0.1,
             "xs": np.array(0.02, F), "ws": np.array(0.002, F), "xz": np.array(np.uint8(128))}
    shapes = {"ends": (b,), "ends_starts": (2 * b,), "raw": (b, s), "raw3d": (b, s, s)}
    inputs = [("x", np.uint8, (b, s, d))]
    names = ["x", "w", "bias", "xs", "ws", "", "xz"]
    if mask_kind is not None:
        inputs.append(("mask", np.int32, shapes[mask_kind]))
        names[5] = "mask"

    def feeds(r):
        f = {"x": rand_int(r, np.uint8, (b, s, d))}
        if mask_kind in ("ends", "ends_starts"):
            ends = r.integers(1, s + 1, b)
            starts = np.minimum(r.integers(0, 3, b), ends - 1)     # every row keeps a key
            f["mask"] = (ends if mask_kind == "ends" else np.concatenate([ends, starts])).astype(np.int32)
        elif mask_kind is not None:
            m = r.integers(0, 2, shapes[mask_kind])
            m[..., 0] = 1
            f["mask"] = m.astype(np.int32)
        return f
    node = helper.make_node("QAttention", names, ["y"], domain="com.microsoft", num_heads=heads,
                            unidirectional=unidirectional)
    model = make_model([node], inputs, [("y", F, None)], inits, extra_opsets=MS)
    assert_matches(model, feeds, rng)


def test_qdq_conv_1d_float_fallback():
    """A 1-D QDQ conv the integer paths do not take (a float bias) runs in float, its result back in N, C, L."""
    rng = np.random.default_rng(30)
    inits = {"s": np.array(0.04, F), "z": np.array(np.uint8(128)), "w": rand_int(rng, np.int8, (5, 4, 3)),
             "ws": np.array(0.01, F), "wz": np.array(np.int8(0)), "b": rng.standard_normal(5).astype(F),
             "s2": np.array(0.03, F), "z2": np.array(np.uint8(100))}
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"]),
             helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wf"]),
             helper.make_node("Conv", ["d", "wf", "b"], ["c"], pads=[1, 1]), helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("QuantizeLinear", ["r", "s2", "z2"], ["q2"]),
             helper.make_node("DequantizeLinear", ["q2", "s2", "z2"], ["y"])]
    model = make_model(nodes, [("x", F, (2, 4, 11))], [("y", F, (2, 5, 11))], inits)
    it = edgeml.Interpreter(model)
    assert it.run(np.zeros((2, 4, 11), F)).shape == (2, 5, 11)
    # float conv sums may differ from onnxruntime's: one output step at most
    assert_matches(model, lambda r: {"x": r.standard_normal((2, 4, 11)).astype(F)}, rng, float_atol=0.03 + 1e-5)
