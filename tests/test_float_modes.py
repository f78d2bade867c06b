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

