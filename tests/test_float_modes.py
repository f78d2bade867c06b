"""The two float32 modes against LiteRT's reference kernels (BUILTIN_REF).

Default: float CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED in all-float models run on fused multiply-add kernels
(where the CPU has FMA3), within |ours - ref| <= 1e-5 * |ref| + 2e-6 * max(1, max |ref|) (measured worst 1.4e-7
times the scale on the .tflite models, benchmarks/float_agreement.py).  Interpreter(float_exact=True), and every
model holding quantized tensors (hybrid, QDQ), keep the reference's multiply-then-add: its bits.  The per-op
conformance models (tests/tflite_models.py, converted once per session and shared with test_tflite_ops.py) and the
MLPerf float models are checked in both modes; test_float_kernel_paths.py checks each kernel on every ISA path."""
from __future__ import annotations

import zlib

import model_cache
import numpy as np
import pytest
import tflite_models as M
from litert_reference import reference_model, run_all, run_reference
from test_tflite_ops import float_inputs, input_shapes

import edgeml
from converters import from_tflite
from edgeml.runtime.kernels import CONFIG

RTOL, SCALED_ATOL = 1e-5, 2e-6
N_INPUTS = 20
FUSED_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"}
CONV_SPECS = [name for name, spec in M.SPECS.items() if "float" in spec.kinds and spec.float_ops & FUSED_OPS]
MLPERF_FLOAT = ["ad01_fp32", "vww_96_float", "kws_ref_model_float32"]


@pytest.fixture(scope="session")
def models(request, tmp_path_factory) -> model_cache.ConvertedModels:
    return model_cache.converted_models(request, tmp_path_factory, "tflite_models", M)


def kernels(it: edgeml.Interpreter) -> set:
    return {step.kernel for step in it.plan.steps}


def assert_within_fused_tolerance(got: np.ndarray, want: np.ndarray, what: str):
    """|got - want| <= RTOL * |want| + SCALED_ATOL * max(1, max |want|)."""
    want64, got64 = want.astype(np.float64), got.astype(np.float64)
    atol = SCALED_ATOL * max(1.0, float(np.abs(want64).max(initial=0.0)))
    np.testing.assert_allclose(got64, want64, rtol=RTOL, atol=atol, err_msg=what)


def seeded_inputs(ours: edgeml.Interpreter, n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    shapes = [tuple(d["shape"]) for d in ours.get_input_details()]
    return [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(n)]


@pytest.mark.parametrize("name", CONV_SPECS)
def test_per_op_float_models_in_both_modes(models, name):
    """float_exact=True gives BUILTIN_REF's bits; the default mode stays within the fused tolerance and runs the
    fused kernels where the CPU has them."""
    model = models.get(name, "float")
    assert M.SPECS[name].float_ops & {op.type for op in from_tflite(model).ops}, name
    exact, fused = edgeml.Interpreter(model, float_exact=True), edgeml.Interpreter(model)
    assert not any("_fma_" in k for k in kernels(exact)), kernels(exact)
    if CONFIG.float_simd and CONFIG.float_fma:
        assert any("_fma_" in k for k in kernels(fused)), kernels(fused)
    ref = reference_model(model)
    for j, xs in enumerate(float_inputs(M.SPECS[name], input_shapes(model), N_INPUTS)):
        want = run_reference(ref, xs)
        for k, (a, b, e) in enumerate(zip(run_all(exact, xs), run_all(fused, xs), want)):
            np.testing.assert_array_equal(a, e, err_msg=f"{name} float_exact input set {j} output {k}")
            assert_within_fused_tolerance(b, e, f"{name} default mode input set {j} output {k}")


@pytest.mark.parametrize("name", MLPERF_FLOAT)
def test_mlperf_float_models_in_both_modes(reference_models, name):
    """The MLPerf float models: bit-exact with float_exact=True, within the fused tolerance by default; the hybrid
    KWS model (int8 weights) keeps the reference's operations in both."""
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    path = reference_models / "mlperf_tiny" / f"{name}.tflite"
    exact, fused = edgeml.Interpreter(path, float_exact=True), edgeml.Interpreter(path)
    if name == "kws_ref_model_float32":
        assert not any("_fma_" in k for k in kernels(fused)), kernels(fused)
    ref = litert.Interpreter(model_path=str(path), experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF)
    ref.allocate_tensors()
    d, o = ref.get_input_details()[0], ref.get_output_details()[0]
    for j, (x,) in enumerate(seeded_inputs(exact, 20, zlib.crc32(name.encode()))):
        ref.set_tensor(d["index"], x)
        ref.invoke()
        want = ref.get_tensor(o["index"])
        np.testing.assert_array_equal(exact.run(x), want, err_msg=f"{name} float_exact input {j}")
        assert_within_fused_tolerance(fused.run(x), want, f"{name} default mode input {j}")


def test_float_exact_is_kept_by_clone_and_resize(reference_models):
    path = reference_models / "mlperf_tiny" / "ad01_fp32.tflite"
    it = edgeml.Interpreter(path, float_exact=True)
    twin = it.clone()
    it.resize_input(0, (2, *it.get_input_details()[0]["shape"][1:]))     # a new plan, at the next use
    for each in (it, twin):
        assert not any("_fma_" in k for k in kernels(each)), kernels(each)


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_float_exact_must_be_a_bool(reference_models, value):
    with pytest.raises(edgeml.EdgeMLError, match="float_exact must be True or False"):
        edgeml.Interpreter(reference_models / "mlperf_tiny" / "ad01_fp32.tflite", float_exact=value)


PAD_FOLD_CASES = [
    # (x NCHW, w, conv attrs, pads of the Pad (begin N C H W, end N C H W), pad value, folds)
    ((1, 6, 9, 8), (6, 1, 3, 3), dict(group=6, strides=[2, 2]), [0, 0, 1, 1, 0, 0, 1, 1], 0.0, True),
    ((1, 5, 7, 6), (10, 1, 3, 2), dict(group=5, pads=[1, 0, 0, 1]), [0, 0, 0, 2, 0, 0, 1, 0], 0.0, True),
    ((2, 3, 8, 7), (7, 3, 3, 3), dict(pads=[1, 1, 1, 1], strides=[2, 1]), [0, 0, 2, 1, 0, 0, 1, 2], 0.0, True),
    ((1, 4, 6, 6), (4, 1, 3, 3), dict(group=4), [0, 0, 1, 1, 0, 0, 1, 1], 0.5, False),     # not zero: a PAD step
]


@pytest.mark.parametrize("xs, ws, attrs, pads, value, folds", PAD_FOLD_CASES,
                         ids=[str(i) for i in range(len(PAD_FOLD_CASES))])
def test_onnx_pad_folds_into_a_conv_with_its_own_pads(xs, ws, attrs, pads, value, folds):
    """An ONNX Pad (zeros) before a Conv with explicit pads becomes the conv's padding (the two add): no PAD step,
    onnxruntime's outputs; a non-zero pad value keeps the PAD."""
    pytest.importorskip("onnxruntime")
    from onnx import helper

    from tests.onnx_models import make_model, ort_run
    rng = np.random.default_rng(len(pads) + sum(pads))
    w, b = (rng.standard_normal(ws) * 0.3).astype(np.float32), rng.standard_normal(ws[0]).astype(np.float32)
    w1 = (rng.standard_normal((xs[1], xs[1], 1, 1)) * 0.5).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w1"], ["h"]),          # the Pad then reads a channels-last value
             helper.make_node("Pad", ["h", "pads", "value"], ["p"], mode="constant"),
             helper.make_node("Conv", ["p", "w", "b"], ["y"], **attrs)]
    model = make_model(nodes, [("x", np.float32, xs)], [("y", np.float32, None)],
                       {"w1": w1, "w": w, "b": b, "pads": np.array(pads, np.int64),
                        "value": np.array(value, np.float32)})
    x = rng.standard_normal(xs).astype(np.float32)
    for exact in (True, False):
        it = edgeml.Interpreter(model, float_exact=exact)
        types = [s.op.type for s in it.plan.steps]
        assert ("PAD" not in types and "PADV2" not in types) == folds, types
        want = ort_run(model, {"x": x})[0]
        assert_within_fused_tolerance(it.run(x), want, f"pads {pads} float_exact={exact}")


@pytest.mark.parametrize("function", ["Add", "Sub", "Mul"])
def test_onnx_float_binary_on_the_vector_kernels_keeps_inf_and_nan(function):
    """ONNX float Add / Sub / Mul run on TFLite's float vector kernels with no clamp: +-inf, NaN and the largest
    floats come out as IEEE arithmetic gives them (TFLite's activation NONE would clamp to +-FLT_MAX)."""
    from onnx import helper

    from tests.onnx_models import make_model
    rng = np.random.default_rng(3)
    a = rng.standard_normal((3, 5, 17)).astype(np.float32)
    a.reshape(-1)[::4] = np.inf
    a.reshape(-1)[1::9] = -np.inf
    a.reshape(-1)[2::11] = np.nan
    a.reshape(-1)[3::7] = np.finfo(np.float32).max
    b = (rng.standard_normal((5, 1)) * 4).astype(np.float32)
    node = helper.make_node(function, ["a", "b"], ["y"])
    model = make_model([node], [("a", np.float32, a.shape)], [("y", np.float32, None)], {"b": b})
    it = edgeml.Interpreter(model)
    if CONFIG.float_simd:
        assert f"{function.lower()}_f32_{CONFIG.float_simd}" in kernels(it), kernels(it)
    with np.errstate(over="ignore", invalid="ignore"):
        want = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}[function](a, b).astype(np.float32)
    got = it.run(a)
    assert np.isinf(want).any()
    np.testing.assert_array_equal(got, want)
