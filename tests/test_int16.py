"""The 16x8 scheme (int16 activations, int8 weights, int64 bias) and TRANSPOSE_CONV against LiteRT's reference
kernels on converter-made models (tests/int16_models.py): int16 and int8 outputs bit-identical to
`OpResolverType.BUILTIN_REF` on 20 seeded inputs (full int16 range and the representative distribution), float32
within rtol=1e-5, atol=1e-6.  Each test first checks that the model holds the op it is about.  Malformed variants
(one edit of a converter-made model) raise ModelFormatError / UnsupportedOpError naming what is wrong."""
from __future__ import annotations

import copy
import zlib

import int16_models as M
import model_cache
import numpy as np
import pytest
from litert_reference import reference_model as reference
from litert_reference import run_all as run_ours
from litert_reference import run_reference

import edgeml
from converters import from_tflite
from edgeml.ir import Quantization

N_INPUTS = 20
RTOL, ATOL = 1e-5, 1e-6
FUSED_NAMES = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}


@pytest.fixture(scope="session")
def models(request, tmp_path_factory) -> model_cache.ConvertedModels:
    return model_cache.converted_models(request, tmp_path_factory, "int16_models", M)


def assert_holds_ops(model: bytes, spec: M.Int16Spec, kind: str):
    graph = from_tflite(model)
    types = {op.type for op in graph.ops}
    assert spec.ops <= types, f"{spec.name} ({kind}) lacks {sorted(spec.ops - types)}; it has {sorted(types)}"
    if kind != "float":
        fused = {(op.type, FUSED_NAMES[op.options["fused_activation_function"]]) for op in graph.ops
                 if "fused_activation_function" in op.options}
        assert set(spec.fused) <= fused, f"{spec.name} ({kind}) lacks fused {set(spec.fused) - fused}"
    if kind.startswith("int16"):
        tested = [op for op in graph.ops if op.type in spec.ops]
        assert all(np.dtype(np.int16) in {graph.tensors[t].dtype for t in op.inputs[:1] + op.outputs}
                   for op in tested), f"{spec.name}: an op under test neither reads nor writes int16"
    if kind == "int16_float_io":
        assert {"QUANTIZE", "DEQUANTIZE"} <= types
    if spec.int32_bias:
        assert all(graph.tensors[op.inputs[2]].dtype == np.int32 for op in graph.ops if op.type in spec.ops)


def int_inputs(spec: M.Int16Spec, details: list, n: int) -> list:
    """Half full-range integers, half the representative distribution quantized with each input's parameters."""
    rng = np.random.default_rng(zlib.crc32(spec.name.encode()))
    sets = []
    for j in range(n):
        xs = []
        for d in details:
            info = np.iinfo(d["dtype"])
            if j % 2 == 0:
                xs.append(rng.integers(info.min, info.max + 1, size=tuple(d["shape"])).astype(d["dtype"]))
            else:
                v = spec.spread * rng.standard_normal(tuple(d["shape"])) / d["scale"] + d["zero_point"]
                xs.append(np.clip(np.round(v), info.min, info.max).astype(d["dtype"]))
        sets.append(xs)
    return sets


def float_inputs(spec: M.Int16Spec, details: list, n: int) -> list:
    rng = np.random.default_rng(zlib.crc32(spec.name.encode()) + 7)
    return [[(spec.spread * (1.0, 0.25, 4.0)[j % 3] * rng.standard_normal(tuple(d["shape"]))).astype(np.float32)
             for d in details] for j in range(n)]


def assert_outputs_equal(got: list, expected: list, what: str):
    assert len(got) == len(expected)
    for k, (g, e) in enumerate(zip(got, expected)):
        assert g.dtype == e.dtype and g.shape == e.shape, (what, k, g.dtype, g.shape, e.dtype, e.shape)
        if e.dtype == np.float32:
            np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL, err_msg=f"{what}: output {k}")
        elif not np.array_equal(g, e):
            diff = g.astype(np.int64) - e.astype(np.int64)
            bad = np.argwhere(diff != 0)
            pytest.fail(f"{what}: output {k} differs from LiteRT in {len(bad)}/{e.size} values (max |diff| "
                        f"{np.abs(diff).max()}); first at {tuple(bad[0])}: edgeml {g[tuple(bad[0])]} vs LiteRT "
                        f"{e[tuple(bad[0])]}")


def check_against_reference(model: bytes, spec: M.Int16Spec, kind: str, batch: int = 1):
    ours = edgeml.Interpreter(model)
    shapes = None
    if batch != 1:
        shapes = [(batch, *tuple(d["shape"])[1:]) for d in ours.get_input_details()]
        for i, s in enumerate(shapes):
            ours.resize_input(i, s)
    ref = reference(model, shapes)
    details = ours.get_input_details()
    inputs = float_inputs(spec, details, N_INPUTS) if details[0]["dtype"] == np.float32 else \
        int_inputs(spec, details, N_INPUTS)
    for j, xs in enumerate(inputs):
        assert_outputs_equal(run_ours(ours, xs), run_reference(ref, xs), f"{spec.name} {kind} input set {j}")


CASES = [(name, kind) for name, spec in M.SPECS.items() for kind in spec.kinds]


@pytest.mark.parametrize("name,kind", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_model_is_bit_exact_with_litert_reference(models, name, kind):
    spec = M.SPECS[name]
    model = models.get(name, kind)
    assert_holds_ops(model, spec, kind)
    check_against_reference(model, spec, kind)


@pytest.mark.parametrize("name,kind", [("small_cnn", "int16"), ("small_cnn", "int16_float_io"),
                                       ("add_sub_mul_channel_broadcast", "int16")])
def test_batch_of_two_after_resize_matches_litert_resized(models, name, kind):
    spec = M.SPECS[name]
    model = models.get(name, kind)
    assert_holds_ops(model, spec, kind)
    check_against_reference(model, spec, kind, batch=2)


# ----- malformed variants: one edit of a converter-made model ------------------------------------------------

def first_op(graph, op_type):
    return next(op for op in graph.ops if op.type == op_type)


def set_zero_point(position, kind="input"):
    def mutate(graph, op_type):
        op = first_op(graph, op_type)
        t = graph.tensors[(op.inputs if kind == "input" else op.outputs)[position]]
        t.quant = Quantization(t.quant.scale.copy(), np.array([3]))
    return mutate


def bias_as_int8(graph, op_type):
    op = first_op(graph, op_type)
    position = 3 if op_type == "TRANSPOSE_CONV" else 2
    t = graph.tensors[op.inputs[position]]
    t.data = np.clip(t.data, -128, 127).astype(np.int8)
    t.dtype = np.dtype(np.int8)


def bias_as_int32(graph, op_type):
    """LiteRT's DEPTHWISE_CONV_2D takes only an int64 bias with int16 input (CONV_2D and FULLY_CONNECTED an int32
    one too)."""
    op = first_op(graph, op_type)
    t = graph.tensors[op.inputs[2]]
    t.data = t.data.astype(np.int32)
    t.dtype = np.dtype(np.int32)


def weights_as_int16(graph, op_type):
    op = first_op(graph, op_type)
    t = graph.tensors[op.inputs[1]]
    t.data = t.data.astype(np.int16)
    t.dtype = np.dtype(np.int16)


def output_as_int8(graph, op_type):
    op = first_op(graph, op_type)
    t = graph.tensors[op.outputs[0]]
    t.dtype = np.dtype(np.int8)


def weight_scales_of_wrong_count(graph, op_type):
    op = first_op(graph, op_type)
    t = graph.tensors[op.inputs[1]]
    t.quant = Quantization(np.full(2, 0.01), np.zeros(2, np.int64), t.quant.axis)


def output_shape_far_too_large(graph, op_type):
    op = first_op(graph, op_type)
    shape_t, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    shape_t.data = np.array([1, 4000, 4000, shape_t.data[3]], np.int32)
    y.shape = tuple(int(v) for v in shape_t.data)


def input_scale_huge(graph, op_type):
    op = first_op(graph, op_type)
    t = graph.tensors[op.inputs[0]]
    t.quant = Quantization(np.array([1e30]), np.zeros(1, np.int64))


def concat_input_scale_differs(graph, op_type):
    op = first_op(graph, op_type)
    t = graph.tensors[op.inputs[1]]
    t.quant = Quantization(t.quant.scale * 2, t.quant.zero_point.copy())


MALFORMED = [
    ("conv_3x2_stride2_same_relu", "CONV_2D", set_zero_point(0), edgeml.ModelFormatError, "zero point 3"),
    ("conv_3x2_stride2_same_relu", "CONV_2D", bias_as_int8, edgeml.ModelFormatError, "int64"),
    ("conv_3x2_stride2_same_relu", "CONV_2D", weights_as_int16, edgeml.UnsupportedOpError, "int8 weights"),
    ("conv_3x2_stride2_same_relu", "CONV_2D", weight_scales_of_wrong_count, edgeml.ModelFormatError,
     "2 weight scales for 5 output channels"),
    ("dwconv_5x5_m1_dilation2_same", "DEPTHWISE_CONV_2D", set_zero_point(0, "output"), edgeml.ModelFormatError,
     "zero point 3"),
    ("dense_relu_then_linear", "FULLY_CONNECTED", bias_as_int8, edgeml.ModelFormatError, "int64"),
    ("dwconv_5x5_m1_dilation2_same", "DEPTHWISE_CONV_2D", bias_as_int32, edgeml.ModelFormatError,
     "need an int64 bias"),
    ("add_sub_mul_same_shape", "ADD", set_zero_point(1), edgeml.ModelFormatError, "zero point 3"),
    ("add_sub_mul_same_shape", "MUL", output_as_int8, edgeml.UnsupportedOpError, "int16"),
    ("leaky_relu", "LEAKY_RELU", set_zero_point(0), edgeml.ModelFormatError, "zero point 3"),
    ("leaky_relu", "LEAKY_RELU", input_scale_huge, edgeml.UnsupportedOpError, "too large"),
    ("logistic", "LOGISTIC", input_scale_huge, edgeml.UnsupportedOpError, "too large"),
    ("softmax_last_axis", "SOFTMAX", input_scale_huge, edgeml.UnsupportedOpError, "too large"),
    ("softmax_last_axis", "SOFTMAX", set_zero_point(0, "output"), edgeml.ModelFormatError, "zero point 3"),
    ("conv_3x2_stride2_same_relu", "CONV_2D", input_scale_huge, edgeml.UnsupportedOpError, "too large"),
    ("mean_hw_and_channels", "MEAN", input_scale_huge, edgeml.UnsupportedOpError, "too large"),
    ("concat_channels", "CONCATENATION", concat_input_scale_differs, edgeml.UnsupportedOpError,
     "must share scale and zero point"),
    ("transpose_conv_3x3_stride2_same", "TRANSPOSE_CONV", bias_as_int8, edgeml.ModelFormatError, "int64 bias"),
    ("transpose_conv_3x3_stride2_same", "TRANSPOSE_CONV", set_zero_point(2), edgeml.ModelFormatError,
     "zero point 3"),
    ("transpose_conv_3x3_stride2_same", "TRANSPOSE_CONV", output_shape_far_too_large, edgeml.ModelFormatError,
     "output height 4000 does not come from input height 5"),
]


@pytest.mark.parametrize("name,op_type,mutate,error,message", MALFORMED,
                         ids=[f"{m[1]}-{m[2].__name__ if hasattr(m[2], '__name__') else 'zero_point'}-{i}"
                              for i, m in enumerate(MALFORMED)])
def test_malformed_int16_model_raises_a_clear_error(models, name, op_type, mutate, error, message):
    graph = copy.deepcopy(from_tflite(models.get(name, "int16")))
    edgeml.Interpreter(copy.deepcopy(graph))
    mutate(graph, op_type)
    with pytest.raises(error, match=message):
        edgeml.Interpreter(graph)


def padv2_value_as_float(graph, op_type):
    """As the 16x8 converter writes it (LiteRT refuses that too: INT16 != FLOAT32)."""
    op = first_op(graph, op_type)
    t = graph.tensors[op.inputs[2]]
    t.data = np.array(0.5, np.float32)
    t.dtype = np.dtype(np.float32)


def test_padv2_with_a_float_pad_value_on_int16_data_is_refused(models):
    graph = copy.deepcopy(from_tflite(models.get("pad_and_padv2", "int16")))
    padv2_value_as_float(graph, "PADV2")
    with pytest.raises(edgeml.ModelFormatError, match="constant value must be one int16"):
        edgeml.Interpreter(graph)


@pytest.mark.parametrize("name,kernel", [("add_pot_second_input_shifted", "add_int16_pot"),
                                         ("sub_pot_first_input_shifted", "add_int16_pot"),
                                         ("add_pot_flag_with_general_scales", "add_int16"),
                                         ("add_sub_mul_same_shape", "add_int16")])
def test_int16_add_sub_take_the_path_litert_prepare_chooses(models, name, kernel):
    """pot_scale_int16 with every scale a power of two: the legacy saturating path; otherwise the general one
    (left shift 15), as add.cc / sub.cc decide."""
    ours = edgeml.Interpreter(models.get(name, "int16"))
    assert ours.plan.steps[0].kernel == kernel


def test_power_of_two_int16_add_does_not_broadcast():
    """LiteRT's legacy path reads both inputs flat; edgeml refuses the broadcast instead of reading past one."""
    pytest.importorskip("tensorflow")
    model = M.pot_model("ADD", (2.0 ** -12, 2.0 ** -12, 2.0 ** -12), shapes=([2, 9, 5], [1, 1, 5]))()
    with pytest.raises(edgeml.UnsupportedOpError, match="does not broadcast"):
        edgeml.Interpreter(model)


def test_run_with_float_input_quantizes_to_int16_and_dequantizes_the_output(models):
    """run(float) on a 16x8 model: x / scale rounded half away from zero into int16 (LiteRT's QUANTIZE), and the
    int16 output returned as float32 scale * q."""
    model = models.get("small_cnn", "int16")
    ours, manual = edgeml.Interpreter(model), edgeml.Interpreter(model)
    d_in, d_out = ours.get_input_details()[0], ours.get_output_details()[0]
    assert d_in["dtype"] == np.int16 and d_in["zero_point"] == 0
    rng = np.random.default_rng(3)
    for x in [rng.standard_normal(tuple(d_in["shape"])).astype(np.float32) * s for s in (1.0, 0.01, 100.0)]:
        y = ours.run(x)
        v = x / np.float32(d_in["scale"])
        q = np.clip(np.sign(v) * np.floor(np.abs(v).astype(np.float64) + 0.5), -32768, 32767).astype(np.int16)
        yq = run_ours(manual, [q])[0]
        np.testing.assert_array_equal(y, (d_out["scale"] * yq.astype(np.float64)).astype(np.float32))
