"""Element-wise math, activations, normalizations, space / depth / batch moves, BATCH_MATMUL and grouped CONV_2D
against LiteRT on converter-made models (tests/math_models.py): int8 and int32 outputs bit-identical, float32
within rtol=1e-5, atol=1e-6, at batch 1 and 2, on 20 seeded input sets per model and batch.

The reference is LiteRT's `OpResolverType.BUILTIN_REF`; ELU (which has no reference-only registration, so
BUILTIN_REF lacks it) and int32 ABS (version 5, past BUILTIN_REF's table) use `BUILTIN_WITHOUT_DEFAULT_DELEGATES`,
whose kernel for those ops is the same code.  Where LiteRT refuses an input at run time (a negative int8 SQRT, a
zero divisor), edgeml must raise InputError for that input set.  Each test first checks the model holds its op.
"""
from __future__ import annotations

import copy
import os
import subprocess
import sys
import zlib
from pathlib import Path

import math_models as M
import model_cache
import numpy as np
import pytest
from litert_reference import reference_model, run_reference
from litert_reference import run_all as run_ours

import edgeml
from converters import from_tflite
from edgeml.ir import Quantization
from edgeml.runtime.kernels import ISA

N_INPUTS = 20
RTOL, ATOL = 1e-5, 1e-6


@pytest.fixture(scope="session")
def models(request, tmp_path_factory) -> model_cache.ConvertedModels:
    return model_cache.converted_models(request, tmp_path_factory, "math_models", M)


def assert_contains_ops(model: bytes, spec: M.MathSpec, kind: str):
    types = {op.type for op in from_tflite(model).ops}
    assert spec.ops[kind] <= types, f"{spec.name} ({kind}) lacks {sorted(spec.ops[kind] - types)}; has {sorted(types)}"


def assert_outputs_match(got: list, expected: list, what: str):
    assert len(got) == len(expected)
    for k, (g, e) in enumerate(zip(got, expected)):
        assert g.dtype == e.dtype and g.shape == e.shape, (what, k, g.dtype, g.shape, e.dtype, e.shape)
        if e.dtype.kind in "iu":
            if not np.array_equal(g, e):
                bad = np.argwhere(g != e)
                pytest.fail(f"{what}: output {k} differs from LiteRT in {len(bad)}/{e.size} values; first at "
                            f"{tuple(bad[0])}: edgeml {g[tuple(bad[0])]} vs LiteRT {e[tuple(bad[0])]}")
        else:
            np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL, err_msg=f"{what}: output {k}")


def check_against_reference(model: bytes, spec: M.MathSpec, input_sets: list, what: str, shapes=None) -> dict:
    """Every input set through both runtimes; a set LiteRT refuses must raise InputError here.  Returns counts."""
    ours = edgeml.Interpreter(model)
    ref = reference_model(model, shapes, resolver=spec.resolver)
    if shapes is not None:
        for i, s in enumerate(shapes):
            ours.resize_input(i, s)
    counts = {"compared": 0, "refused": 0}
    for j, xs in enumerate(input_sets):
        try:
            expected = run_reference(ref, xs)
        except RuntimeError as exc:
            with pytest.raises(edgeml.InputError, match="LiteRT refuses"):
                run_ours(ours, xs)
            counts["refused"] += 1
            assert "refuse" in str(exc).lower() or "division" in str(exc).lower() or str(exc), exc
            continue
        assert_outputs_match(run_ours(ours, xs), expected, f"{what} input set {j}")
        counts["compared"] += 1
    return counts


def input_details(model: bytes, spec: M.MathSpec, batch: int):
    """The model's input details and its input shapes at `batch` (inputs outside spec.batch_inputs keep theirs)."""
    if batch != 1 and not spec.resizable:
        pytest.skip(f"{spec.name}: the graph holds batch 1 in constants; LiteRT cannot resize it either")
    details = edgeml.Interpreter(model).get_input_details()
    grow = range(len(details)) if spec.batch_inputs is None else spec.batch_inputs
    return details, [(batch if i in grow else 1, *tuple(d["shape"])[1:]) for i, d in enumerate(details)]


def quantize(x, scale, zero_point):
    """LiteRT's QUANTIZE: x / scale in float32, rounded half away from zero, + zero point, saturated."""
    v = np.asarray(x, np.float32) / np.float32(scale)
    r = np.sign(v) * np.floor(np.abs(v).astype(np.float64) + 0.5)
    return np.clip(r + zero_point, -128, 127).astype(np.int8)


def quantized_input_sets(spec, details, shapes, seed, dtype=np.int8):
    """Half over the full int8 (uint8) range, half drawn like the calibration data and quantized with the inputs'
    parameters."""
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    full = [[rng.integers(info.min, info.max + 1, size=s).astype(dtype) for s in shapes] for _ in range(N_INPUTS // 2)]
    shift = 0 if dtype == np.int8 else 128
    drawn = [[(quantize(x, d["scale"], d["zero_point"] - shift).astype(np.int16) + shift).astype(dtype)
              for x, d in zip(M.draw(spec, shapes, rng, test=True), details)] for _ in range(N_INPUTS - N_INPUTS // 2)]
    return full + drawn


def float_input_sets(spec, shapes, seed):
    """Drawn like the calibration data; every third set scaled by 1/4 and 4 (well past calibration)."""
    rng = np.random.default_rng(seed)
    return [[(x * (1.0, 0.25, 4.0)[i % 3]).astype(np.float32) for x in M.draw(spec, shapes, rng, test=True)]
            for i in range(N_INPUTS)]


def specs_of(kind):
    return [name for name, spec in M.SPECS.items() if kind in spec.kinds]


# ----- conformance ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("name", specs_of(M.INT8))
def test_int8_op_is_bit_exact_with_litert(models, name, batch):
    spec = M.SPECS[name]
    model = models.get(name, M.INT8)
    assert_contains_ops(model, spec, M.INT8)
    details, shapes = input_details(model, spec, batch)
    counts = check_against_reference(model, spec, quantized_input_sets(spec, details, shapes,
                                                                       zlib.crc32(name.encode())),
                                     f"{name} int8 batch {batch}", shapes if batch != 1 else None)
    assert counts["compared"] >= N_INPUTS // 2, counts


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("name", specs_of(M.UINT8))
def test_uint8_op_is_bit_exact_with_litert(models, name, batch):
    """uint8 versions of the int8 models (every int8 tensor moved by 128): LiteRT's uint8 kernels of these ops."""
    spec = M.SPECS[name]
    model = models.get(name, M.UINT8)
    assert_contains_ops(model, spec, M.UINT8)
    details, shapes = input_details(model, spec, batch)
    assert all(np.dtype(d["dtype"]) == np.uint8 for d in details)
    counts = check_against_reference(model, spec, quantized_input_sets(spec, details, shapes,
                                                                       zlib.crc32(name.encode()) + 3, np.uint8),
                                     f"{name} uint8 batch {batch}", shapes if batch != 1 else None)
    assert counts["compared"] >= N_INPUTS // 2, counts


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("name", specs_of(M.FLOAT))
def test_float_op_matches_litert(models, name, batch):
    spec = M.SPECS[name]
    model = models.get(name, M.FLOAT)
    assert_contains_ops(model, spec, M.FLOAT)
    _, shapes = input_details(model, spec, batch)
    counts = check_against_reference(model, spec, float_input_sets(spec, shapes, zlib.crc32(name.encode()) + 1),
                                     f"{name} float batch {batch}", shapes if batch != 1 else None)
    assert counts["compared"] == N_INPUTS, counts


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("name", specs_of(M.INT32))
def test_int32_op_is_exact(models, name, batch):
    spec = M.SPECS[name]
    model = models.get(name, M.INT32)
    assert_contains_ops(model, spec, M.INT32)
    _, shapes = input_details(model, spec, batch)
    rng = np.random.default_rng(zlib.crc32(name.encode()) + 2)
    sets = [M.draw(spec, shapes, rng, np.int32, test=True) for _ in range(N_INPUTS)]
    counts = check_against_reference(model, spec, sets, f"{name} int32 batch {batch}", shapes if batch != 1 else None)
    assert counts["compared"] == N_INPUTS, counts


# ----- LiteRT's behaviour at domain edges and on inputs it refuses ---------------------------------------------

def test_float_unary_domain_edges_match_litert(models):
    """SQRT / RSQRT / LOG of zero, negatives, infinities and NaN give LiteRT's values (NaN, +-inf), not errors."""
    name = "unary_float_math"
    spec = M.SPECS[name]
    model = models.get(name, M.FLOAT)
    assert_contains_ops(model, spec, M.FLOAT)
    edges = np.array([0.0, -0.0, -1.0, -1e-30, 1e-30, 1e-45, np.inf, -np.inf, np.nan, 3e38, -3e38, 0.5, 88.8, -104.0,
                      1e-7], np.float32)
    x = np.resize(edges, (1, *spec.inputs[0])).astype(np.float32)
    with np.errstate(all="ignore"):
        counts = check_against_reference(model, spec, [[x], [-x], [x[:, ::-1].copy()]], f"{name} edges")
    assert counts["compared"] == 3


def test_float_binary_domain_edges_match_litert(models):
    """DIV by zero gives LiteRT's clamp to +-FLT_MAX (0 / 0 stays NaN); POW of zero, negative bases and
    infinities gives powf's values."""
    for name, first, second in [
            ("div_broadcast", [1.0, -1.0, 0.0, np.inf, np.nan], [0.0, -0.0, 0.0, 0.0, 1.0]),
            ("div_relu_negative_divisor", [1.0, -1.0, 0.0, np.inf, -np.inf], [0.0, 0.0, 0.0, np.inf, 1e-45]),
            ("pow_float", [0.0, 0.0, -2.0, -8.0, np.inf], [-1.0, 0.0, 0.5, 1.0 / 3.0, -0.5])]:
        spec = M.SPECS[name]
        model = models.get(name, M.FLOAT)
        assert_contains_ops(model, spec, M.FLOAT)
        _, shapes = input_details(model, spec, 1)
        sets = [[np.resize(np.array(v, np.float32), s) for v, s in zip(values, shapes)]
                for values in ((first, second), (second, first))]
        with np.errstate(all="ignore"):
            counts = check_against_reference(model, spec, sets, f"{name} edges")
        assert counts["compared"] == 2


def replace_one(x: np.ndarray, value) -> np.ndarray:
    x = x.copy()
    x.reshape(-1)[x.size // 2] = value
    return x


def refusal_cases():
    """(model, kind, input position, the value LiteRT refuses (None: the int8 input's zero point - 1 / zero point),
    message fragment)"""
    return [
        ("sqrt_rsqrt_int8_across_zero", M.INT8, 0, "below_zero_point", "below the input zero point"),
        ("div_broadcast", M.INT8, 1, "zero_point", "division by zero"),
        ("div_broadcast", M.UINT8, 1, "zero_point", "division by zero"),
        ("floor_div_mod_float", M.FLOAT, 1, 0.0, "division by zero"),
        ("int32_floor_div_mod_squared_difference", M.INT32, 1, 0, "division by zero"),
        ("int32_div_truncating", M.INT32, 1, 0, "division by zero"),
        ("int32_pow", M.INT32, 1, -1, "negative exponent"),
    ]


@pytest.mark.parametrize("name,kind,position,value,message", refusal_cases(),
                         ids=[f"{c[0]}-{c[1]}" for c in refusal_cases()])
def test_inputs_litert_refuses_raise_input_error(models, name, kind, position, value, message):
    """LiteRT fails the invoke (a negative int8 SQRT, a zero divisor, a negative int32 exponent); edgeml raises
    InputError naming the op, and the next valid input runs normally (the kernels clear their status word)."""
    spec = M.SPECS[name]
    model = models.get(name, kind)
    assert_contains_ops(model, spec, kind)
    details, shapes = input_details(model, spec, 1)
    rng = np.random.default_rng(31)
    if kind in (M.INT8, M.UINT8):
        dtype = np.int8 if kind == M.INT8 else np.uint8
        valid = quantized_input_sets(spec, details, shapes, 31, dtype)[-1]
        zp = int(details[position]["zero_point"])
        value = zp - 1 if value == "below_zero_point" else zp
    elif kind == M.INT32:
        valid = M.draw(spec, shapes, rng, np.int32, test=True)
    else:
        valid = M.draw(spec, shapes, rng, test=True)
    bad = list(valid)
    bad[position] = replace_one(valid[position], value)
    ref = reference_model(model, resolver=spec.resolver)
    with pytest.raises(RuntimeError):
        run_reference(ref, bad)
    ours = edgeml.Interpreter(model)
    with pytest.raises(edgeml.InputError, match=message):
        run_ours(ours, bad)
    assert_outputs_match(run_ours(ours, valid), run_reference(ref, valid), f"{name} {kind} after a refused input")


# ----- malformed and unsupported variants ------------------------------------------------------------------------

def op_of(graph, op_type):
    return next(op for op in graph.ops if op.type == op_type)


def set_option(op_type, key, value):
    def edit(graph):
        op_of(graph, op_type).options[key] = value
    return edit


def set_constant(op_type, position, data):
    """Point the op's constant input at a new tensor holding `data` (other ops may share the old one)."""
    def edit(graph):
        op = op_of(graph, op_type)
        old = graph.tensors[op.inputs[position]]
        new = copy.copy(old)
        new.index, new.data = len(graph.tensors), np.asarray(data, dtype=old.data.dtype)
        new.shape = new.data.shape
        graph.tensors.append(new)
        op.inputs[position] = new.index
    return edit


def requantize(op_type, where, position, scale=None, zero_point=None):
    """Give one of the op's int8 tensors another scale and / or zero point."""
    def edit(graph):
        op = op_of(graph, op_type)
        t = graph.tensors[(op.inputs if where == "input" else op.outputs)[position]]
        s, z = t.quant.scalar()
        t.quant = Quantization(np.array([s if scale is None else scale]),
                               np.array([z if zero_point is None else zero_point]))
    return edit


def retype(op_type, where, position, dtype):
    def edit(graph):
        op = op_of(graph, op_type)
        graph.tensors[(op.inputs if where == "input" else op.outputs)[position]].dtype = np.dtype(dtype)
    return edit


def grouped_weights_with_8_outputs(graph):
    """9 output channels in 3 groups made 8: they no longer split into the groups."""
    op = op_of(graph, "CONV_2D")
    w, b = graph.tensors[op.inputs[1]], graph.tensors[op.inputs[2]]
    w.data, b.data = w.data[:8], b.data[:8]
    w.shape, b.shape = w.data.shape, b.data.shape
    w.quant = Quantization(w.quant.scale[:8], w.quant.zero_point[:8], w.quant.axis)
    b.quant = Quantization(b.quant.scale[:8], b.quant.zero_point[:8], b.quant.axis)


def alpha_wider_than_input(graph):
    t = graph.tensors[op_of(graph, "PRELU").inputs[1]]
    t.data = np.concatenate([t.data, t.data], axis=-1)
    t.shape = t.data.shape


MALFORMED = [
    # (model, kind, edit, error, message)
    ("mirror_pad_reflect", M.INT8, set_constant("MIRROR_PAD", 1, [[0, 0], [1, 5], [3, 1], [0, 2]]),
     edgeml.ModelFormatError, r"REFLECT paddings \[1, 5\] on axis 1 of size 5"),
    ("mirror_pad_symmetric", M.FLOAT, set_constant("MIRROR_PAD", 1, [[0, 0], [-1, 2], [0, 4], [1, 3]]),
     edgeml.ModelFormatError, "SYMMETRIC paddings"),
    ("mirror_pad_symmetric", M.FLOAT, set_option("MIRROR_PAD", "mode", 7), edgeml.ModelFormatError,
     "unknown mirror mode 7"),
    ("mirror_pad_reflect", M.FLOAT, set_constant("MIRROR_PAD", 1, [[0, 0], [1, 4], [3, 1]]), edgeml.ModelFormatError,
     r"paddings has shape \[3, 2\], expected \[4, 2\]"),
    ("space_to_depth", M.INT8, set_option("SPACE_TO_DEPTH", "block_size", 0), edgeml.ModelFormatError,
     "block_size must be a positive integer"),
    ("space_to_depth", M.FLOAT, set_option("SPACE_TO_DEPTH", "block_size", 4), edgeml.ModelFormatError,
     "not a multiple of block_size 4"),
    ("space_to_depth", M.INT8, requantize("SPACE_TO_DEPTH", "output", 0, zero_point=3), edgeml.UnsupportedOpError,
     "must share scale and zero point"),
    ("depth_to_space", M.FLOAT, set_option("DEPTH_TO_SPACE", "block_size", 4), edgeml.ModelFormatError,
     "18 channels are not a multiple of block_size"),
    ("space_batch_dilated_conv", M.FLOAT, set_constant("SPACE_TO_BATCH_ND", 2, [[2, 3], [-2, 2]]),
     edgeml.ModelFormatError, "paddings .* must not be negative"),
    ("space_batch_dilated_conv", M.INT8, set_constant("SPACE_TO_BATCH_ND", 2, [[2, 2], [2, 2]]),
     edgeml.ModelFormatError, "padded size 13 x 12 is not a multiple of the block 2 x 2"),
    ("space_batch_dilated_conv", M.FLOAT, set_constant("BATCH_TO_SPACE_ND", 2, [[0, 1], [1, 20]]),
     edgeml.ModelFormatError, "crops .* exceed"),
    ("space_batch_dilated_conv", M.FLOAT, set_constant("BATCH_TO_SPACE_ND", 1, [3, 2]), edgeml.ModelFormatError,
     "batch 4 is not a multiple of the block 3 x 2"),
    ("log_softmax", M.INT8, requantize("LOG_SOFTMAX", "output", 0, zero_point=0), edgeml.UnsupportedOpError,
     "output must have scale 0.0625 and zero point 127"),
    ("l2_normalization", M.INT8, requantize("L2_NORMALIZATION", "output", 0, scale=1 / 64),
     edgeml.UnsupportedOpError, "output must have scale 0.0078125 and zero point 0"),
    ("l2_normalization", M.FLOAT, set_option("L2_NORMALIZATION", "fused_activation_function", 1),
     edgeml.UnsupportedOpError, "fused activation RELU"),
    ("batch_matmul_attention", M.INT8, set_option("BATCH_MATMUL", "adj_y", False), edgeml.ModelFormatError,
     "have depths 4 and 7"),
    ("batch_matmul_attention", M.FLOAT, retype("BATCH_MATMUL", "input", 1, np.int8), edgeml.UnsupportedOpError,
     "float32 x int8"),
    ("grouped_conv_3_groups_stride2_same_relu", M.INT8, grouped_weights_with_8_outputs, edgeml.ModelFormatError,
     "8 output channels do not split into 3 groups"),
    ("prelu_per_channel", M.INT8, alpha_wider_than_input, edgeml.ModelFormatError, "do not broadcast"),
    ("div_broadcast", M.INT8, requantize("DIV", "output", 0, scale=1e-7), edgeml.UnsupportedOpError,
     "past what LiteRT's fixed-point division handles"),
    ("squared_difference_broadcast", M.INT8, requantize("SQUARED_DIFFERENCE", "output", 0, scale=1e-9),
     edgeml.UnsupportedOpError, r"output multiplier .* is not in \(0, 1\)"),
    # the op table's type gate (edgeml/runtime/coverage.py) answers before the op's own type checks
    ("exp_int8", M.INT8, retype("EXP", "input", 0, np.int16), edgeml.UnsupportedOpError,
     "has type int16; EXP runs on float32, int8"),
    ("floor_div_mod_float", M.FLOAT, retype("FLOOR_MOD", "input", 0, np.int8), edgeml.UnsupportedOpError,
     "has type int8; FLOOR_(DIV|MOD) runs on float32, int32"),
]


@pytest.mark.parametrize("name,kind,edit,error,message", MALFORMED,
                         ids=[f"{m[0]}-{m[1]}-{k}" for k, m in enumerate(MALFORMED)])
def test_malformed_variant_is_refused_at_load(models, name, kind, edit, error, message):
    """One edit of a valid converter-made model: the load raises the error type naming what is wrong."""
    graph = copy.deepcopy(from_tflite(models.get(name, kind)))
    edgeml.Interpreter(copy.deepcopy(graph))
    edit(graph)
    with pytest.raises(error, match=message):
        edgeml.Interpreter(graph)


# ----- every kernel path ----------------------------------------------------------------------------------------

ISA_PATHS = ["scalar", "avx2", "avx512", "avx512vnni"]
RUN_IN_CHILD = r'''
import sys
import numpy as np
import edgeml
from cython_ops import conv
out = {"isa": np.array(conv.isa())}
for k, path in enumerate(sys.argv[2:]):
    it = edgeml.Interpreter(path, float_exact=True)
    inputs = np.load(path + ".inputs.npz")
    for i in range(len(inputs.files)):
        it.set_input(inputs[f"x{i}"], i)
    it.invoke()
    for j in range(len(it.get_output_details())):
        out[f"m{k}_y{j}"] = it.get_output(j)
np.savez(sys.argv[1], **out)
'''


def test_gemm_based_ops_agree_on_every_isa_path(models, tmp_path):
    """BATCH_MATMUL and grouped CONV_2D run em_gemm.h's GEMM, whose body is compiled per ISA and chosen at run time:
    every path EDGEML_ISA can force here gives the same bits as this process (which LiteRT checks above); float models
    in the reference's order (float_exact), since the default fused mode's last bits differ between paths."""
    best = ISA
    if best not in ISA_PATHS:
        pytest.skip(f"the x86 paths are not available on a {best} CPU")
    names = [("batch_matmul_attention", M.INT8), ("batch_matmul_constant_rhs", M.INT8),
             ("grouped_conv_3_groups_stride2_same_relu", M.INT8), ("grouped_conv_2_groups_dilated_valid", M.FLOAT),
             ("multi_head_attention", M.FLOAT)]
    files, expected = [], {}
    rng = np.random.default_rng(5)
    for k, (name, kind) in enumerate(names):
        model = models.get(name, kind)
        path = tmp_path / f"{name}.{kind}.tflite"
        path.write_bytes(model)
        ours = edgeml.Interpreter(model, float_exact=True)
        xs = [rng.integers(-128, 128, size=d["shape"]).astype(np.int8) if kind == M.INT8 else
              rng.standard_normal(d["shape"]).astype(np.float32) for d in ours.get_input_details()]
        np.savez(str(path) + ".inputs.npz", **{f"x{i}": x for i, x in enumerate(xs)})
        for j, y in enumerate(run_ours(ours, xs)):
            expected[f"m{k}_y{j}"] = y
        files.append(str(path))
    root = str(Path(__file__).resolve().parents[1])
    for isa in ISA_PATHS[:ISA_PATHS.index(best) + 1]:
        result = tmp_path / f"{isa}.npz"
        env = dict(os.environ, EDGEML_ISA=isa, PYTHONPATH=root)
        done = subprocess.run([sys.executable, "-c", RUN_IN_CHILD, str(result), *files], env=env, cwd=root,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        got = np.load(result)
        assert str(got["isa"]) == isa
        for key, y in expected.items():
            np.testing.assert_array_equal(got[key], y, err_msg=f"{key} on the {isa} path")
