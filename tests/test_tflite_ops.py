"""Every supported op, in int8 and float32, against LiteRT's reference kernels on converter-made models.

The models (tests/tflite_models.py) use awkward shapes: odd and non-square sizes and kernels, stride 2, dilation 2,
SAME padding with partial windows, channel counts 3/5/7/17, broadcasts, fused activations.  int8 outputs must be
bit-identical to `OpResolverType.BUILTIN_REF`; float32 outputs within rtol=1e-5, atol=1e-6.  Each test first checks
that the model contains the op it is about, so a converter change cannot make it silently test something else.

Converted models are cached on disk (pytest's cache dir, keyed by the model catalogue's source and the TensorFlow
version), so TensorFlow is only imported when a model is missing.
"""
from __future__ import annotations

import copy
import zlib

import model_cache
import numpy as np
import pytest
import tflite_models as M
from litert_reference import reference_model as reference
from litert_reference import run_all as run_ours
from litert_reference import run_reference

import edgeml
from converters import from_tflite
from edgeml.ir import Quantization

N_INPUTS = 20
RTOL, ATOL = 1e-5, 1e-6
FUSED_NAMES = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}


# ----- fixtures ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def models(request, tmp_path_factory) -> model_cache.ConvertedModels:
    return model_cache.converted_models(request, tmp_path_factory, "tflite_models", M)


# ----- helpers ----------------------------------------------------------------------------------------------

def op_summary(model: bytes) -> tuple[set, set]:
    """(op types, {(op type, fused activation)}) as edgeml's reader sees the model."""
    ops = from_tflite(model).ops
    types = {op.type for op in ops}
    fused = {(op.type, FUSED_NAMES[op.options["fused_activation_function"]]) for op in ops
             if "fused_activation_function" in op.options}
    return types, fused


def assert_contains_intended_ops(model: bytes, spec: M.ModelSpec, kind: str):
    types, fused = op_summary(model)
    want_ops = spec.float_ops if kind == "float" else spec.int8_ops
    want_fused = spec.float_fused if kind == "float" else spec.int8_fused
    assert want_ops <= types, f"{spec.name} ({kind}) lacks {sorted(want_ops - types)}; it has {sorted(types)}"
    assert set(want_fused) <= fused, f"{spec.name} ({kind}) lacks fused {sorted(set(want_fused) - fused)}; has {fused}"
    if kind == "int8_float_io":
        assert {"QUANTIZE", "DEQUANTIZE"} <= types, sorted(types)


def assert_same_interface(ours, ref, shapes=None):
    """Same inputs and outputs in the same order: names, shapes, dtypes, quantization."""
    for mine, theirs in ((ours.get_input_details(), ref.get_input_details()),
                         (ours.get_output_details(), ref.get_output_details())):
        assert [d["name"] for d in mine] == [d["name"] for d in theirs]
        for a, b in zip(mine, theirs):
            assert tuple(a["shape"]) == tuple(b["shape"]), (a["name"], a["shape"], b["shape"])
            assert np.dtype(a["dtype"]) == np.dtype(b["dtype"]), (a["name"], a["dtype"], b["dtype"])
            assert (np.float32(a["scale"]), a["zero_point"]) == (np.float32(b["quantization"][0]),
                                                                 b["quantization"][1]), a["name"]


def int8_full_range_inputs(shapes, n, seed):
    rng = np.random.default_rng(seed)
    return [[rng.integers(-128, 128, size=tuple(s), dtype=np.int8) for s in shapes] for _ in range(n)]


def quantize_like_litert(x, scale, zero_point):
    """LiteRT's reference QUANTIZE: round(x / scale) in float32, ties away from zero, + zp, saturate."""
    v = np.asarray(x, np.float32) / np.float32(scale)
    r = np.sign(v) * np.floor(np.abs(v).astype(np.float64) + 0.5)
    return np.clip(r + zero_point, -128, 127).astype(np.int8)


def int8_representative_inputs(spec, details, n):
    """Inputs drawn like the representative data set (normal, the spec's spread), quantized with the input params.

    `details` gives the model's input order, which need not be the Keras model's."""
    rng = np.random.default_rng(zlib.crc32(spec.name.encode()) + 3)
    return [[quantize_like_litert(spec.spread * rng.standard_normal(tuple(d["shape"])), d["scale"], d["zero_point"])
             for d in details] for _ in range(n)]


def float_inputs(spec, shapes, n):
    """Normal inputs for the model's input `shapes` (model order): in range, small, and well past calibration."""
    rng = np.random.default_rng(zlib.crc32(spec.name.encode()) + 7)
    sets = []
    for i in range(n):
        spread = spec.spread * (1.0, 0.25, 4.0)[i % 3]
        sets.append([(spread * rng.standard_normal(tuple(s))).astype(np.float32) for s in shapes])
    return sets


def input_shapes(model: bytes, batch: int = 1) -> list:
    """The model's input shapes in its own input order, with the batch dimension set to `batch`."""
    return [(batch, *tuple(d["shape"])[1:]) for d in edgeml.Interpreter(model).get_input_details()]


def assert_outputs_match(got: list, expected: list, what: str):
    assert len(got) == len(expected)
    for k, (g, e) in enumerate(zip(got, expected)):
        assert g.dtype == e.dtype and g.shape == e.shape, (what, k, g.dtype, g.shape, e.dtype, e.shape)
        if e.dtype == np.int8:
            if not np.array_equal(g, e):
                diff = g.astype(np.int32) - e.astype(np.int32)
                bad = np.argwhere(diff != 0)
                pytest.fail(f"{what}: output {k} differs from LiteRT in {len(bad)}/{e.size} values "
                            f"(max |diff| {np.abs(diff).max()}); first at {tuple(bad[0])}: "
                            f"edgeml {g[tuple(bad[0])]} vs LiteRT {e[tuple(bad[0])]}")
        else:
            np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL, err_msg=f"{what}: output {k}")


def check_against_reference(model: bytes, input_sets: list, what: str, shapes=None, **kwargs):
    ours = edgeml.Interpreter(model, **kwargs)
    ref = reference(model, shapes)
    if shapes is not None:
        for i, s in enumerate(shapes):
            ours.resize_input(i, s)
    assert_same_interface(ours, ref)
    for j, xs in enumerate(input_sets):
        assert_outputs_match(run_ours(ours, xs), run_reference(ref, xs), f"{what} input set {j}")
    return ours


def check_int8_model(model: bytes, spec, name: str):
    """An int8 catalogue model holds the ops it is about and equals the reference kernels bit for bit on N_INPUTS
    full-range and N_INPUTS representative inputs."""
    assert_contains_intended_ops(model, spec, "int8")
    details = edgeml.Interpreter(model).get_input_details()
    shapes = [tuple(d["shape"]) for d in details]
    inputs = (int8_full_range_inputs(shapes, N_INPUTS, zlib.crc32(name.encode()))
              + int8_representative_inputs(spec, details, N_INPUTS))
    check_against_reference(model, inputs, f"{name} int8")


# ----- tests ------------------------------------------------------------------------------------------------

INT8_SPECS = [name for name, spec in M.SPECS.items() if "int8" in spec.kinds]
FLOAT_SPECS = [name for name, spec in M.SPECS.items() if "float" in spec.kinds]


@pytest.mark.parametrize("name", INT8_SPECS)
def test_int8_op_is_bit_exact_with_litert_reference(models, name):
    check_int8_model(models.get(name, "int8"), M.SPECS[name], name)


@pytest.mark.parametrize("name", FLOAT_SPECS)
def test_float_op_matches_litert_reference(models, name):
    spec = M.SPECS[name]
    model = models.get(name, "float")
    assert_contains_intended_ops(model, spec, "float")
    # the reference's operations (float_exact); the default fused mode: tests/test_float_modes.py
    check_against_reference(model, float_inputs(spec, input_shapes(model), N_INPUTS), f"{name} float",
                            float_exact=True)


def test_quantize_and_dequantize_at_float_io_are_bit_exact(models):
    """An int8 model with float input and output: QUANTIZE in and DEQUANTIZE out exactly as LiteRT does them,
    including inputs that sit exactly on rounding ties and far outside the int8 range."""
    spec = M.SPECS["small_cnn"]
    model = models.get("small_cnn", "int8_float_io")
    assert_contains_intended_ops(model, spec, "int8_float_io")
    graph = from_tflite(model)
    quantize = next(op for op in graph.ops if op.type == "QUANTIZE")
    scale, zp = graph.tensors[quantize.outputs[0]].quant.scalar()
    inputs = float_inputs(spec, input_shapes(model), N_INPUTS)
    rng = np.random.default_rng(5)
    shape = (1, *spec.inputs[0])
    for _ in range(4):   # (k + 0.5) * scale: ties; and values that saturate to -128 / 127
        ties = ((rng.integers(-140, 140, size=shape) - zp + 0.5) * scale).astype(np.float32)
        inputs.append([ties])
        inputs.append([(300 * scale * rng.standard_normal(shape)).astype(np.float32)])
    ours = edgeml.Interpreter(model)
    ref = reference(model, preserve_all_tensors=True)
    assert_same_interface(ours, ref)
    for j, xs in enumerate(inputs):
        got, expected = run_ours(ours, xs), run_reference(ref, xs)
        # the arena may reuse QUANTIZE's output once its consumer ran: rerun just that step to inspect it
        k = next(i for i, step in enumerate(ours.plan.steps) if step.op.type == "QUANTIZE")
        ours.plan.engine.invoke_range(k, k + 1)
        np.testing.assert_array_equal(ours.plan.view(quantize.outputs[0]), ref.get_tensor(quantize.outputs[0]),
                                      err_msg=f"QUANTIZE output (scale {scale!r}, zp {zp}), input set {j}")
        assert got[0].dtype == np.float32
        # The int8 core is exact, so the dequantized float outputs are too.
        np.testing.assert_array_equal(got[0], expected[0], err_msg=f"input set {j}")


@pytest.mark.parametrize("name,kind", [("small_cnn", "int8"), ("small_cnn", "float"),
                                       ("dense_3d_input", "int8"), ("dense_3d_input_flattened_output", "int8"),
                                       ("add_sub_mul_channel_broadcast", "int8"),
                                       ("concat_rows_three_inputs", "int8")])
def test_batch_of_three_after_resize_matches_litert_resized(models, name, kind):
    spec = M.SPECS[name]
    model = models.get(name, kind)
    assert_contains_intended_ops(model, spec, kind)
    shapes = input_shapes(model, batch=3)
    if kind == "int8":
        inputs = int8_full_range_inputs(shapes, N_INPUTS, 3)
    else:
        inputs = float_inputs(spec, shapes, N_INPUTS)
    ours = check_against_reference(model, inputs, f"{name} {kind} batch 3", shapes=shapes)
    assert tuple(ours.get_input_details()[0]["shape"]) == shapes[0]
    # Each batch element is computed as if alone: element 1 equals a batch-1 run on element 1 (compared
    # flat, since a FULLY_CONNECTED without keep_num_dims folds the batch into its rows).
    single = edgeml.Interpreter(model)
    batched = run_ours(ours, inputs[0])
    alone = run_ours(single, [x[1:2] for x in inputs[0]])
    for b, a in zip(batched, alone):
        np.testing.assert_array_equal(b.reshape(3, -1)[1], a.reshape(-1))


def test_single_rounding_runs_and_differs_by_at_most_one_lsb(models):
    """rounding="single" (TFLITE_SINGLE_ROUNDING): one requantizing op differs from double rounding by at most
    1 LSB, and does differ somewhere (otherwise the option would be ignored)."""
    name = "conv_3x3_stride2x1_valid_17ch"
    model = models.get(name, "int8")
    assert_contains_intended_ops(model, M.SPECS[name], "int8")
    double, single = edgeml.Interpreter(model), edgeml.Interpreter(model, rounding="single")
    shapes = [tuple(d["shape"]) for d in double.get_input_details()]
    n_diff = n_total = 0
    for xs in int8_full_range_inputs(shapes, N_INPUTS, 11):
        d, s = run_ours(double, xs)[0], run_ours(single, xs)[0]
        diff = np.abs(d.astype(np.int32) - s.astype(np.int32))
        assert diff.max() <= 1
        n_diff += int((diff != 0).sum())
        n_total += diff.size
    assert 0 < n_diff < 0.2 * n_total, (n_diff, n_total)
    with pytest.raises(edgeml.EdgeMLError):
        edgeml.Interpreter(model, rounding="triple")


@pytest.mark.parametrize("batch", [1, 2])
def test_run_with_float_input_equals_manual_quantization(models, batch):
    """run(float) on an int8 model quantizes with the input's scale / zero point and dequantizes the output."""
    spec = M.SPECS["small_cnn"]
    model = models.get("small_cnn", "int8")
    ours, manual = edgeml.Interpreter(model), edgeml.Interpreter(model)
    d_in, d_out = ours.get_input_details()[0], ours.get_output_details()[0]
    assert d_in["dtype"] == np.int8 and d_in["scale"] > 0
    if batch != 1:
        manual.resize_input(0, (batch, *spec.inputs[0]))
    ref = reference(model, [(batch, *spec.inputs[0])])
    shape = (batch, *spec.inputs[0])
    rng = np.random.default_rng(batch)
    scale, zp = d_in["scale"], d_in["zero_point"]
    ties = [[((rng.integers(-140, 140, size=shape) - zp + 0.5) * scale).astype(np.float32)] for _ in range(4)]
    for xs in float_inputs(spec, input_shapes(model, batch), N_INPUTS) + ties:
        x = xs[0]
        y = ours.run(x)
        assert y.dtype == np.float32 and y.shape == (batch, 10)
        q = quantize_like_litert(x, scale, zp)
        np.testing.assert_array_equal(ours.plan.view(ours.get_input_details()[0]["tensor_index"]), q,
                                      err_msg=f"run() quantized the float input (scale {scale!r}, zp {zp}) "
                                              "unlike LiteRT's QUANTIZE")
        yq = run_ours(manual, [q])[0]
        expected = ((yq.astype(np.float32) - np.float32(d_out["zero_point"])) * np.float32(d_out["scale"]))
        np.testing.assert_array_equal(y, expected)
        np.testing.assert_array_equal(yq, run_reference(ref, [q])[0])


def test_run_resizes_every_input_of_a_multi_input_model(models):
    """run() with batch-3 arrays for all three inputs of a CONCATENATION model: the inputs are only consistent
    once all of them have the new batch size, as LiteRT's resize_tensor_input + allocate_tensors allows."""
    name = "concat_rows_three_inputs"
    model = models.get(name, "int8")
    assert_contains_intended_ops(model, M.SPECS[name], "int8")
    shapes = input_shapes(model, batch=3)
    ref = reference(model, shapes)
    ours = edgeml.Interpreter(model)
    for xs in int8_full_range_inputs(shapes, 3, 17):
        got = ours.run(list(xs))
        assert_outputs_match([got], run_reference(ref, xs), f"{name} run() at batch 3")


def _pack_op(graph):
    (op,) = [op for op in graph.ops if op.type == "PACK"]
    return op


def _set_pack_option(name, value):
    def mutate(graph):
        _pack_op(graph).options[name] = value
    return mutate


def _reshape_third_input(graph):
    t = graph.tensors[_pack_op(graph).inputs[2]]
    t.shape = (1, 4, 2)


def _requantize_third_input(graph):
    t = graph.tensors[_pack_op(graph).inputs[2]]
    scale, zp = t.quant.scalar()
    t.quant = Quantization(np.array([scale]), np.array([zp + 1]))


@pytest.mark.parametrize("mutate,message", [
    (_set_pack_option("axis", 4), "axis 4 outside the output rank 4"),
    (_set_pack_option("axis", -5), "axis -5 outside the output rank 4"),
    (_set_pack_option("values_count", 2), "values_count 2 but 3 inputs"),
    (_reshape_third_input, "cannot be stacked"),
    (_requantize_third_input, "must be equal"),
], ids=["axis_too_large", "axis_too_negative", "values_count", "shapes_differ", "input_zero_point_differs"])
def test_malformed_pack_raises_model_format_error(models, mutate, message):
    """PACK's attributes and inputs are checked as LiteRT's Prepare checks them (it refuses an int8 input whose
    scale / zero point differ from the output's rather than requantizing); each case is one edit of a valid
    converter-made model."""
    graph = copy.deepcopy(from_tflite(models.get("pack_axis1_three_inputs", "int8")))
    edgeml.Interpreter(graph)
    mutate(graph)
    with pytest.raises(edgeml.ModelFormatError, match=message):
        edgeml.Interpreter(graph)
