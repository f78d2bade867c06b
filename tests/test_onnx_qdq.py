"""int8 QDQ ONNX models on edgeml against onnxruntime, bit for bit (NUMERICS.md "ONNX int8").

onnxruntime's arithmetic depends on how it rewrites the graph at load: int8 Q->DQ pairs between two ops
become uint8, QDQ groups whose tensors are all uint8 fuse into integer kernels (QLinearConv, QGemm,
QLinearAdd, QLinearSoftmax) and the rest run in float between DQ and Q.  edgeml's reader makes the same
choices, so every comparison here is exact.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from onnx import helper

import edgeml
from tests.onnx_models import OrtReference, assert_ort_equal, make_model, ort_diff, ort_run

ort = pytest.importorskip("onnxruntime")

F = np.float32
MLPERF = ["ad01_int8", "kws_ref_model", "pretrainedResnet_quant", "vww_96_int8"]


def image_like(rng, shape):
    """Smooth int8 inputs with noise: closer to real data than uniform noise, and different every call."""
    n, h, w, c = shape if len(shape) == 4 else (1, 1, 1, 1)
    if len(shape) != 4:
        return rng.integers(-128, 128, shape).astype(np.int8)
    base = rng.integers(-128, 128, (n, 4, 4, c)).astype(float)
    x = np.kron(base, np.ones((1, -(-h // 4), -(-w // 4), 1)))[:, :h, :w] + rng.normal(0, 8, shape)
    return np.clip(x, -128, 127).astype(np.int8)


@pytest.mark.parametrize("name", MLPERF)
def test_mlperf_tiny_onnx_matches_onnxruntime_exactly(reference_models, name):
    path = reference_models / "mlperf_tiny_onnx" / f"{name}.onnx"
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = OrtReference(path, so)
    inp = sess.get_inputs()[0]
    it = edgeml.Interpreter(path)
    assert it.graph.source == "onnx"
    rng = np.random.default_rng(7)
    shape = (1,) + tuple(inp.shape[1:])
    for k in range(25):
        x = image_like(rng, shape) if k % 2 else rng.integers(-128, 128, shape).astype(np.int8)
        assert_ort_equal(it.run(x), sess.run(None, {inp.name: x})[0])


def test_mlperf_batch_of_three_matches(reference_models):
    path = reference_models / "mlperf_tiny_onnx" / "kws_ref_model.onnx"
    it = edgeml.Interpreter(path)
    x = np.random.default_rng(1).integers(-128, 128, (3, 49, 10, 1)).astype(np.int8)
    assert_ort_equal(it.run(x), ort_run(path.read_bytes(), {"input_1": x})[0])


def test_scalar_kernels_give_the_same_bits(reference_models):
    """The float requantization mode and the ONNX kernels give the same bits on every ISA path."""
    code = (
        "import numpy as np, edgeml, sys\n"
        f"it = edgeml.Interpreter({str(reference_models / 'mlperf_tiny_onnx' / 'vww_96_int8.onnx')!r})\n"
        "x = np.random.default_rng(2).integers(-128, 128, (1, 96, 96, 3)).astype(np.int8)\n"
        "np.save(sys.argv[1], it.run(x))\n")
    outs = []
    for isa in ("scalar", "avx2", "avx512", None):       # None: the best path this CPU has
        with tempfile.TemporaryDirectory() as d:
            env = {k: v for k, v in os.environ.items() if k != "EDGEML_ISA"}
            if isa:
                env["EDGEML_ISA"] = isa
            subprocess.run([sys.executable, "-c", code, os.path.join(d, "y.npy")], check=True, env=env)
            outs.append(np.load(os.path.join(d, "y.npy")))
    for other in outs[1:]:
        np.testing.assert_array_equal(outs[0], other)


# ----- models quantized by onnxruntime's quantize_static ------------------------------------------------

def _rand(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(F)


def _cnn(rng):
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "wd", "bd"], ["c2"], pads=[1, 1, 1, 1], group=8, strides=[2, 2]),
        helper.make_node("Clip", ["c2", "lo", "hi"], ["r2"]),
        helper.make_node("Conv", ["r2", "w3", "b3"], ["c3"]),
        helper.make_node("Add", ["c3", "c3b"], ["a"]),
        helper.make_node("Relu", ["a"], ["r3"]),
        helper.make_node("MaxPool", ["r3"], ["mp"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("AveragePool", ["mp"], ["ap"], kernel_shape=[2, 2], strides=[1, 1], pads=[0, 0, 1, 1]),
        helper.make_node("Concat", ["ap", "mp"], ["cat"], axis=1),
        helper.make_node("GlobalAveragePool", ["cat"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["y"]),
    ]
    inits = {"w1": _rand(rng, 8, 3, 3, 3, scale=0.3), "b1": _rand(rng, 8, scale=0.1),
             "wd": _rand(rng, 8, 1, 3, 3, scale=0.3), "bd": _rand(rng, 8, scale=0.1),
             "lo": np.array(0, F), "hi": np.array(6, F), "w3": _rand(rng, 16, 8, 1, 1, scale=0.3),
             "b3": _rand(rng, 16, scale=0.1), "c3b": _rand(rng, 16, 8, 8, scale=0.5),
             "wf": _rand(rng, 10, 32, scale=0.3), "bf": _rand(rng, 10, scale=0.1)}
    return make_model(nodes, [("x", F, (1, 3, 16, 16))], [("y", F, (1, 10))], inits), (1, 3, 16, 16)


def _mlp(rng):
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["m1"]), helper.make_node("Add", ["m1", "b1"], ["a1"]),
             helper.make_node("Relu", ["a1"], ["r1"]), helper.make_node("Gemm", ["r1", "w2", "b2"], ["g2"]),
             helper.make_node("Sigmoid", ["g2"], ["s2"]), helper.make_node("MatMul", ["s2", "w3"], ["m3"]),
             helper.make_node("Reshape", ["m3", "shape"], ["y"])]
    inits = {"w1": _rand(rng, 20, 32, scale=0.3), "b1": _rand(rng, 32, scale=0.1),
             "w2": _rand(rng, 32, 16, scale=0.3), "b2": _rand(rng, 16, scale=0.1),
             "w3": _rand(rng, 16, 6, scale=0.5), "shape": np.array([1, 2, 3], np.int64)}
    return make_model(nodes, [("x", F, (1, 20))], [("y", F, (1, 2, 3))], inits), (1, 20)


def _residual(rng):
    """A residual block (a tensor read by two nodes) and a depthwise conv: exercises onnxruntime's rule that
    such int8 tensors stay int8 (so their convs run in float) while single-reader pairs become uint8."""
    def r(*shape, scale=0.3):
        return _rand(rng, *shape, scale=scale)
    nodes = [helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c0"], ["r0"]),
             helper.make_node("Conv", ["r0", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "wd", "bd"], ["c2"], pads=[1, 1, 1, 1], group=16),
             helper.make_node("Relu", ["c2"], ["r2"]), helper.make_node("Conv", ["r2", "w3", "b3"], ["c3"]),
             helper.make_node("Add", ["c3", "r0"], ["a"]), helper.make_node("Relu", ["a"], ["ra"]),
             helper.make_node("Conv", ["ra", "w4", "b4"], ["c4"], strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c4", "c4b"], ["a2"]), helper.make_node("GlobalAveragePool", ["a2"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]), helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], transB=1)]
    inits = {"w0": r(16, 3, 3, 3), "b0": r(16, scale=0.1), "w1": r(16, 16, 3, 3, scale=0.1), "b1": r(16, scale=0.1),
             "wd": r(16, 1, 3, 3), "bd": r(16, scale=0.1), "w3": r(16, 16, 1, 1), "b3": r(16, scale=0.1),
             "w4": r(24, 16, 3, 3, scale=0.1), "b4": r(24, scale=0.1), "c4b": r(24, 1, 1), "wf": r(10, 24),
             "bf": r(10, scale=0.1)}
    return make_model(nodes, [("x", F, (1, 3, 16, 16))], [("y", F, (1, 10))], inits), (1, 3, 16, 16)


@pytest.mark.parametrize("activation", ["QInt8", "QUInt8"])
@pytest.mark.parametrize("per_channel", [True, False], ids=["per_channel", "per_tensor"])
@pytest.mark.parametrize("build", [_cnn, _mlp, _residual], ids=["cnn", "mlp", "residual"])
def test_quantize_static_models_match_onnxruntime_exactly(tmp_path, build, per_channel, activation):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    rng = np.random.default_rng(11)
    model, shape = build(rng)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"x": _rand(rng, *shape)} for _ in range(8)])

        def get_next(self):
            return next(self.batches, None)
    fp, qp = tmp_path / "f.onnx", tmp_path / "q.onnx"
    fp.write_bytes(model)
    quantize_static(str(fp), str(qp), Reader(), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                    activation_type=getattr(QuantType, activation), weight_type=QuantType.QInt8)
    q = qp.read_bytes()
    it = edgeml.Interpreter(q)
    types = {op.type for op in it.graph.ops}
    assert "FULLY_CONNECTED" in types and ("CONV_2D" in types or build is _mlp)
    for _ in range(20):
        x = _rand(rng, *shape)
        assert_ort_equal(it.run(x), ort_run(q, {"x": x})[0])


# ----- single fused groups ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_qlinear_add_matches_mlas_for_random_parameters(dtype):
    """DQ + DQ -> Add -> Q fuses into onnxruntime's QLinearAdd; its float constants (with the fused
    multiply-add) are reproduced exactly."""
    rng = np.random.default_rng(4)
    lo, hi = (0, 255) if dtype == np.uint8 else (-128, 127)
    for _ in range(30):
        sa, sb, sy = rng.uniform(0.005, 0.2, 3).astype(F)
        za, zb, zy = (dtype(v) for v in rng.integers(lo, hi + 1, 3))
        inits = {"sa": np.array(sa), "za": np.array(za), "sb": np.array(sb), "zb": np.array(zb),
                 "sy": np.array(sy), "zy": np.array(zy)}
        nodes = [helper.make_node("DequantizeLinear", ["a", "sa", "za"], ["fa"]),
                 helper.make_node("DequantizeLinear", ["b", "sb", "zb"], ["fb"]),
                 helper.make_node("Add", ["fa", "fb"], ["s"]), helper.make_node("QuantizeLinear", ["s", "sy", "zy"], ["y"])]
        shape = (1, 8, 20, 20)
        m = make_model(nodes, [("a", dtype, shape), ("b", dtype, shape)], [("y", dtype, shape)], inits)
        it = edgeml.Interpreter(m)
        assert "ONNX_QLINEAR_ADD" in [op.type for op in it.graph.ops]
        a, b = (rng.integers(lo, hi + 1, shape).astype(dtype) for _ in range(2))
        assert_ort_equal(it.run({"a": a, "b": b}), ort_run(m, {"a": a, "b": b})[0])


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_qlinear_softmax_table_arithmetic(dtype):
    """DQ -> Softmax -> Q of one type runs as onnxruntime's QLinearSoftmax (table of exponentials,
    float sum, floor(1 / y_scale) as the output multiplier)."""
    rng = np.random.default_rng(5)
    lo, hi = (0, 255) if dtype == np.uint8 else (-128, 127)
    for sx in (0.02, 0.1, 0.5):
        zo = dtype(0 if dtype == np.uint8 else -128)
        inits = {"sx": np.array(sx, F), "zx": np.array(dtype(rng.integers(lo, hi))), "sy": np.array(1 / 256, F),
                 "zy": np.array(zo)}
        nodes = [helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["q"]),
                 helper.make_node("DequantizeLinear", ["q", "sx", "zx"], ["d"]),
                 helper.make_node("Softmax", ["d"], ["s"]),
                 helper.make_node("QuantizeLinear", ["s", "sy", "zy"], ["q2"]),
                 helper.make_node("DequantizeLinear", ["q2", "sy", "zy"], ["y"])]
        m = make_model(nodes, [("x", F, (4, 3, 10))], [("y", F, (4, 3, 10))], inits)
        it = edgeml.Interpreter(m)
        assert "ONNX_QLINEAR_SOFTMAX" in [op.type for op in it.graph.ops]
        for scale in (1.0, 10.0):
            x = _rand(rng, 4, 3, 10, scale=scale)
            assert_ort_equal(it.run(x), ort_run(m, {"x": x})[0])


def test_uint8_graph_input_and_output():
    """uint8 tensors live as int8 (x - 128) inside; the flip happens once at each boundary."""
    rng = np.random.default_rng(6)
    w = rng.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8)
    inits = {"sx": np.array(0.02, F), "zx": np.array(np.uint8(120)), "w": w, "sw": np.array(0.01, F),
             "zw": np.array(np.int8(0)), "sy": np.array(0.05, F), "zy": np.array(np.uint8(7))}
    nodes = [helper.make_node("DequantizeLinear", ["x", "sx", "zx"], ["dx"]),
             helper.make_node("DequantizeLinear", ["w", "sw", "zw"], ["dw"]),
             helper.make_node("Conv", ["dx", "dw"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("QuantizeLinear", ["c", "sy", "zy"], ["y"])]
    m = make_model(nodes, [("x", np.uint8, (1, 3, 8, 8))], [("y", np.uint8, (1, 4, 8, 8))], inits)
    it = edgeml.Interpreter(m)
    assert it.get_input_details()[0]["dtype"] == np.uint8 and it.get_output_details()[0]["dtype"] == np.uint8
    x = rng.integers(0, 256, (1, 3, 8, 8)).astype(np.uint8)
    assert_ort_equal(it.run(x), ort_run(m, {"x": x})[0])


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("op", ["Mul", "Sigmoid", "AveragePool", "GlobalAveragePool", "LeakyRelu"])
def test_qdq_groups_edgeml_runs_in_float(op, dtype):
    """onnxruntime fuses these QDQ groups into com.microsoft QLinearMul / QLinearSigmoid / QLinearAveragePool /
    QLinearGlobalAveragePool / QLinearLeakyRelu; edgeml runs them in float between DQ and Q, with the same
    results."""
    rng = np.random.default_rng(8)
    lo, hi = (0, 255) if dtype == np.uint8 else (-128, 127)
    shape = (1, 8, 6, 6)
    core = {"Mul": helper.make_node("Mul", ["fa", "fb"], ["s"]),
            "AveragePool": helper.make_node("AveragePool", ["fa"], ["s"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
            "LeakyRelu": helper.make_node("LeakyRelu", ["fa"], ["s"], alpha=0.1)}.get(op) or \
        helper.make_node(op, ["fa"], ["s"])
    out_shape = (1, 8, 1, 1) if op == "GlobalAveragePool" else shape
    for _ in range(6):
        sa, sb, sy = rng.uniform(0.01, 0.1, 3).astype(F)
        za, zb, zy = (dtype(v) for v in rng.integers(lo, hi + 1, 3))
        inits = {"sa": np.array(sa), "za": np.array(za), "sb": np.array(sb), "zb": np.array(zb),
                 "sy": np.array(sy), "zy": np.array(zy)}
        nodes = [helper.make_node("DequantizeLinear", ["a", "sa", "za"], ["fa"]),
                 helper.make_node("DequantizeLinear", ["b", "sb", "zb"], ["fb"]), core,
                 helper.make_node("QuantizeLinear", ["s", "sy", "zy"], ["y"])]
        m = make_model(nodes, [("a", dtype, shape), ("b", dtype, shape)], [("y", dtype, out_shape)], inits)
        a, b = (rng.integers(lo, hi + 1, shape).astype(dtype) for _ in range(2))
        assert_ort_equal(edgeml.Interpreter(m).run({"a": a, "b": b}), ort_run(m, {"a": a, "b": b})[0])


def test_fake_quantized_float_weights_fold_at_load():
    """Float weights behind QuantizeLinear -> DequantizeLinear (as QAT exporters write them) are quantized at
    load with QuantizeLinear's own arithmetic and take the int8 kernels."""
    rng = np.random.default_rng(12)
    w = (rng.standard_normal((8, 3, 3, 3)) * 0.2).astype(F)
    ws = (np.abs(w).reshape(8, -1).max(1) / 127).astype(F)
    inits = {"w": w, "ws": ws, "wz": np.zeros(8, np.int8), "sx": np.array(0.02, F), "zx": np.array(np.int8(3)),
             "sy": np.array(0.05, F), "zy": np.array(np.int8(-5))}
    nodes = [helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["qx"]),
             helper.make_node("DequantizeLinear", ["qx", "sx", "zx"], ["dx"]),
             helper.make_node("QuantizeLinear", ["w", "ws", "wz"], ["qw"], axis=0),
             helper.make_node("DequantizeLinear", ["qw", "ws", "wz"], ["dw"], axis=0),
             helper.make_node("Conv", ["dx", "dw"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("QuantizeLinear", ["c", "sy", "zy"], ["qy"]),
             helper.make_node("DequantizeLinear", ["qy", "sy", "zy"], ["y"])]
    m = make_model(nodes, [("x", F, (1, 3, 8, 8))], [("y", F, (1, 8, 8, 8))], inits)
    it = edgeml.Interpreter(m)
    assert "CONV_2D" in [op.type for op in it.graph.ops]
    for _ in range(5):
        x = rng.standard_normal((1, 3, 8, 8)).astype(F)
        assert_ort_equal(it.run(x), ort_run(m, {"x": x})[0])


def test_run_quantizes_float_input_with_onnx_rounding(reference_models):
    """run() on an int8-input ONNX model quantizes float data as QuantizeLinear does (ties to even)."""
    it = edgeml.Interpreter(reference_models / "mlperf_tiny_onnx" / "kws_ref_model.onnx")
    s, zp = it.get_input_details()[0]["scale"], it.get_input_details()[0]["zero_point"]
    x = (np.arange(490, dtype=np.float32).reshape(1, 49, 10, 1) - 245.0) * np.float32(s) * np.float32(0.5)
    q = np.clip(np.rint(x / np.float32(s)) + zp, -128, 127).astype(np.int8)
    it2 = edgeml.Interpreter(reference_models / "mlperf_tiny_onnx" / "kws_ref_model.onnx")
    ref = it2.run(q)
    os_, ozp = it.get_output_details()[0]["scale"], it.get_output_details()[0]["zero_point"]
    np.testing.assert_array_equal(it.run(x), (np.float32(os_) * (ref.astype(np.float32) - ozp)).astype(np.float32))


def test_int8_activation_depthwise_conv_within_one_lsb():
    """onnxruntime leaves a QDQ depthwise Conv on int8 activations unfused and runs a float convolution; edgeml
    sums it in the same order (fused multiply-adds, tap by tap), but where the real sum lands exactly on a
    rounding tie onnxruntime's kernel can round the other way: about 3 outputs in a million differ by 1 LSB
    (measured over 1.4 M outputs).  Contract: at most 1 LSB, on at most 0.1% of outputs."""
    rng = np.random.default_rng(13)
    c = 32
    ws = rng.uniform(0.001, 0.01, c).astype(F)
    inits = {"w": rng.integers(-127, 128, (c, 1, 3, 3)).astype(np.int8), "ws": ws, "wz": np.zeros(c, np.int8),
             "b": rng.integers(-1000, 1000, c).astype(np.int32), "bs": (F(0.02) * ws).astype(F),
             "bz": np.zeros(c, np.int32), "sx": np.array(0.02, F), "zx": np.array(np.int8(3)),
             "sy": np.array(0.05, F), "zy": np.array(np.int8(-5))}
    nodes = [helper.make_node("DequantizeLinear", ["x", "sx", "zx"], ["dx"]),
             helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["dw"], axis=0),
             helper.make_node("DequantizeLinear", ["b", "bs", "bz"], ["db"], axis=0),
             helper.make_node("Conv", ["dx", "dw", "db"], ["c"], group=c, pads=[1, 1, 1, 1]),
             helper.make_node("QuantizeLinear", ["c", "sy", "zy"], ["y"])]
    m = make_model(nodes, [("x", np.int8, (1, c, 12, 12))], [("y", np.int8, (1, c, 12, 12))], inits)
    it = edgeml.Interpreter(m)
    assert "ONNX_CONV_MLAS" in [op.type for op in it.graph.ops]
    diffs = []
    for _ in range(20):
        x = rng.integers(-128, 128, (1, c, 12, 12)).astype(np.int8)
        diffs.append(ort_diff(it.run(x), ort_run(m, {"x": x})[0]))
    d = np.concatenate([v.reshape(-1) for v in diffs])
    assert d.max() <= 1 and np.count_nonzero(d) <= 0.001 * d.size
