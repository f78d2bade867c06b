"""Float ONNX models quantized by onnxruntime's quantize_static (QDQ and QOperator; S8S8, U8S8, U8U8; per-tensor
and per-channel; with and without reduce_range) load and equal onnxruntime on 20 seeded inputs: the outputs are
float (a DequantizeLinear ends each graph), compared within rtol / atol 1e-5, which holds only where every
integer on the way equals onnxruntime's.

The default run quantizes a subset of the grid that still has every format, type pair, per-channel and
reduce_range setting (and every generated model's every op); the `slow` tests run the whole grid.  Generated
models (tests/onnx_quant_models.py) need nothing outside the repository; the public MLPerf Tiny / MobileNetV2
exports come from ../shared/models/public/onnx (the `public_models` fixture skips without it)."""
import numpy as np
import pytest

import edgeml
from tests.onnx_models import OrtReference, assert_ort_equal
from tests.onnx_quant_models import FULL_GRID, GENERATED, QuantizedModels, QuantSpec, input_shapes

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime.quantization")

RUNS = 20
DEFAULT_GRID = (QuantSpec("QDQ", "S8S8", True), QuantSpec("QDQ", "U8S8", False, True),
                QuantSpec("QDQ", "U8U8", True), QuantSpec("QOperator", "S8S8", False),
                QuantSpec("QOperator", "U8S8", True, True), QuantSpec("QOperator", "U8U8", False))

# public float exports -> (file, the two grid points of the default run); every type pair, per-channel and
# reduce_range setting appears in each format across them
PUBLIC = {
    "ks": ("mlperf_tiny_pytorch_ks_raw.onnx", (QuantSpec("QDQ", "S8S8", True),
                                               QuantSpec("QOperator", "U8U8", False, True))),
    "ic": ("mlperf_tiny_pytorch_ic_raw.onnx", (QuantSpec("QDQ", "U8S8", False), QuantSpec("QOperator", "S8S8", True))),
    "mobilenet_v2": ("mobilenet_v2_128_0.5.onnx", (QuantSpec("QDQ", "U8U8", True, True),
                                                  QuantSpec("QOperator", "U8S8", False))),
    "ad": ("mlperf_tiny_pytorch_ad_raw.onnx", (QuantSpec("QDQ", "U8S8", True), QuantSpec("QOperator", "U8U8", False))),
}
# ops the quantized files keep in float that this reader leaves to the float-ops work
FLOAT_OPS_NEEDED = {"ad": "BatchNormalization"}   # BatchNorm1d after Gemm: quant_pre_process folds only Conv + BN


@pytest.fixture(scope="module")
def quantized(request, tmp_path_factory) -> QuantizedModels:
    cache = getattr(request.config, "cache", None)
    directory = cache.mkdir("edgeml_onnx_quant") if cache is not None else tmp_path_factory.mktemp("onnx_quant")
    return QuantizedModels(directory)


def assert_matches_onnxruntime(model: bytes, spec: QuantSpec, runs: int = RUNS):
    """edgeml equals onnxruntime's CPU provider on `runs` seeded standard-normal inputs."""
    m = onnx.load_from_string(model)
    ops = {n.op_type for n in m.graph.node}
    if spec.quant_format == "QDQ":
        assert "QuantizeLinear" in ops and not any(o.startswith("QLinear") for o in ops)
    else:
        assert any(o.startswith("QLinear") or o == "QGemm" for o in ops)
    shapes = input_shapes(m)
    it = edgeml.Interpreter(model)
    sess = OrtReference(model)
    rng = np.random.default_rng(7)
    for _ in range(runs):
        feeds = {n: rng.standard_normal(s).astype(np.float32) for n, s in shapes.items()}
        got = it.run(feeds if len(feeds) > 1 else next(iter(feeds.values())))
        got = got if isinstance(got, list) else [got]
        ref = sess.run(None, feeds)
        assert len(got) == len(ref)
        for g, r in zip(got, ref):
            assert g.dtype == r.dtype and g.shape == r.shape
            assert_ort_equal(g, r, rtol=1e-5, atol=1e-5)


# ----- generated models (no files needed) --------------------------------------------------------------------------
@pytest.mark.parametrize("spec", DEFAULT_GRID, ids=lambda s: s.label)
@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_model(name, spec, quantized):
    model = quantized.get(name, GENERATED[name](), spec)
    assert_matches_onnxruntime(model, spec)


@pytest.mark.slow
@pytest.mark.parametrize("spec", FULL_GRID, ids=lambda s: s.label)
@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_model_full_grid(name, spec, quantized):
    model = quantized.get(name, GENERATED[name](), spec)
    assert_matches_onnxruntime(model, spec, runs=5)


def test_generated_models_cover_the_quantized_ops(quantized):
    """The default grid reaches every quantized op this part of the reader is about."""
    seen = set()
    for name, build in GENERATED.items():
        for spec in DEFAULT_GRID:
            seen |= {n.op_type for n in onnx.load_from_string(quantized.get(name, build(), spec)).graph.node}
    assert {"QLinearConv", "QLinearAdd", "QLinearMul", "QLinearAveragePool", "QLinearGlobalAveragePool",
            "QLinearConcat", "QLinearSigmoid", "QLinearLeakyRelu", "QLinearSoftmax", "QLinearMatMul", "QGemm",
            "MaxPool", "QuantizeLinear", "DequantizeLinear"} <= seen


# ----- the public float exports --------------------------------------------------------------------------------------
def public_model(public_models, key: str) -> bytes:
    from converters.onnx import supported_ops

    path = public_models / "onnx" / PUBLIC[key][0]
    if not path.exists():
        pytest.skip(f"{path} is absent")
    missing = FLOAT_OPS_NEEDED.get(key)
    if missing and missing not in supported_ops():
        pytest.skip(f"{PUBLIC[key][0]} keeps a float {missing} the reader does not translate yet")
    return path.read_bytes()


@pytest.mark.parametrize("key, spec", [(k, s) for k, (_, specs) in PUBLIC.items() for s in specs],
                         ids=lambda v: v.label if isinstance(v, QuantSpec) else v)
def test_public_model(key, spec, public_models, quantized):
    model = quantized.get(key, public_model(public_models, key), spec)
    assert_matches_onnxruntime(model, spec)


@pytest.mark.slow
@pytest.mark.parametrize("spec", FULL_GRID, ids=lambda s: s.label)
@pytest.mark.parametrize("key", sorted(PUBLIC))
def test_public_model_full_grid(key, spec, public_models, quantized):
    model = quantized.get(key, public_model(public_models, key), spec)
    assert_matches_onnxruntime(model, spec, runs=5)


# ----- a Keras attention block through tf2onnx ----------------------------------------------------------------------
@pytest.mark.parametrize("layer_norm", [False, True], ids=["no_layer_norm", "layer_norm"])
@pytest.mark.parametrize("spec", [QuantSpec("QDQ", "U8S8", False), QuantSpec("QDQ", "S8S8", True)],
                         ids=lambda s: s.label)
def test_keras_attention_qdq(spec, layer_norm, quantized):
    """Dense -> MultiHeadAttention (activation x activation MatMuls) [-> LayerNormalization] -> Dense, QDQ."""
    pytest.importorskip("tensorflow")
    pytest.importorskip("tf_keras")
    pytest.importorskip("tf2onnx")
    from converters.onnx import supported_ops
    from tests.onnx_quant_models import keras_attention_model

    name = "keras_attention" + ("_ln" if layer_norm else "")
    model = quantized.get(name, quantized.float_model(name, lambda: keras_attention_model(layer_norm)), spec,
                          skip_symbolic_shape=True)
    missing = {n.op_type for n in onnx.load_from_string(model).graph.node} - set(supported_ops())
    if missing:
        pytest.skip(f"the export keeps float {sorted(missing)}, which the reader does not translate yet")
    if layer_norm:
        try:
            edgeml.Interpreter(model)
        except edgeml.UnsupportedOpError as exc:
            if "(BatchNormalization)" not in str(exc):
                raise
            pytest.skip(f"the float layer norm: {exc}")
    assert_matches_onnxruntime(model, spec)
