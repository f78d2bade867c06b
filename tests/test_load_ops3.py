"""Issue 15, load time: the 256-entry tables built in one C call (cython_ops/load_tables.pyx) hold the bytes their
one-step Engine twins (edgeml/runtime/tables.py) hold, for every kernel the prepares build tables with, random
parameters, both roundings and a constant on either side; the C forms refuse an output too small.  A rank over 6
is refused naming the op, also by the 6-dim helpers (pad6_of, merge_gather_dims)."""
from __future__ import annotations

import ctypes
from functools import partial

import numpy as np
import pytest

from cython_ops import load_pad, load_tables
from edgeml import numerics as Q
from edgeml.errors import EdgeMLError, ModelFormatError, UnsupportedOpError
from edgeml.ir import Graph, Op, Quantization
from edgeml.runtime import tables
from edgeml.runtime.compile import compile_graph, new_context
from edgeml.runtime.kernels import kernel_address
from edgeml.runtime.layouts import layout_of
from edgeml.runtime.ops.activations import hard_swish_int8_params
from edgeml.runtime.ops.activations import RELU_KINDS
from edgeml.runtime.ops.element_types import pad6_of
from edgeml.runtime.ops.elementwise import ADD_TABLE_BYTES
from edgeml.runtime.ops import shape as shape_ops
from edgeml.runtime.ops.shape import SHELL_TYPES, merge_gather_dims, sole_reader
from edgeml.runtime.plan import address
from load_twins import assert_same_plan
from path_cases import tensor
from test_load_ops import plan_values
from test_load_ops2 import binary_ints


def unary_cases(rng, rounding: int):
    """(kernel, ints, floats, output type) of each table the activations and DEQUANTIZE build."""
    z1, z2 = (int(v) for v in rng.integers(-128, 128, 2))
    m, sh = Q.quantize_multiplier(float(rng.uniform(0.01, 4.0)), rounding)
    ma, sa = Q.quantize_multiplier(float(rng.uniform(0.001, 0.5)), rounding)
    lo, hi = sorted(int(v) for v in rng.integers(-128, 128, 2))
    p = hard_swish_int8_params(float(rng.uniform(0.01, 0.1)), z1, float(rng.uniform(0.02, 0.1)), z2)
    swish = dict(in_zp=p["input_zero_point"], out_zp=p["output_zero_point"],
                 reluish_mult=p["reluish_multiplier_fixedpoint_int16"],
                 reluish_exponent=p["reluish_multiplier_exponent"], out_mult=p["output_multiplier_fixedpoint_int16"],
                 out_exponent=p["output_multiplier_exponent"])
    return [("requantize_int8", dict(in_zp=z1, out_zp=z2, mult=m, shift=sh, act_min=lo, act_max=hi, mode=rounding),
             None, np.int8),
            ("leaky_relu_int8", dict(in_zp=z1, out_zp=z2, mult_identity=m, shift_identity=sh, mult_alpha=ma,
                                     shift_alpha=sa, mode=rounding), None, np.int8),
            ("hard_swish_int8", swish, None, np.int8),
            ("hard_swish_int8_avx2", swish, None, np.int8),
            ("dequantize_int8_f32", dict(zp=z1), dict(scale=float(rng.uniform(1e-4, 2.0))), np.float32)]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("rounding", [0, 1])
def test_byte_tables_equal_the_engine_form(seed, rounding, monkeypatch):
    rng = np.random.default_rng(seed)
    for kernel, ints, floats, dtype in unary_cases(rng, rounding):
        fast = tables.byte_table(kernel, ints, floats, dtype)
        with monkeypatch.context() as m:
            m.setattr(load_tables, "byte_table", tables.engine_byte_table)
            plain = tables.byte_table(kernel, ints, floats, dtype)
        assert fast.dtype == plain.dtype == np.dtype(dtype) and fast.shape == (256,), kernel
        assert fast.tobytes() == plain.tobytes(), kernel


@pytest.mark.parametrize("which", ["ADD", "SUB", "MUL"])
@pytest.mark.parametrize("period", [1, 3, 17])
@pytest.mark.parametrize("constant_first", [False, True])
def test_periodic_tables_equal_the_engine_form(which, period, constant_first, monkeypatch):
    rng = np.random.default_rng(period * 7 + constant_first)
    constant = rng.integers(-128, 128, period).astype(np.int8)
    kernel = "mul_int8" if which == "MUL" else "add_int8"
    for rounding in (0, 1):
        ints = binary_ints(rng, which, rounding)
        scratch = np.empty(ADD_TABLE_BYTES, np.uint8)
        extra = {"tables": address(scratch)} if which != "MUL" else {}
        fast = np.full(period * 256 + 32, 7, np.int8)        # (bigger than the table: the rest untouched)
        tables.periodic_byte_table(kernel, constant, constant_first, ints, extra, fast)
        with monkeypatch.context() as m:
            m.setattr(load_tables, "periodic_byte_table", tables.engine_periodic_byte_table)
            plain = np.full(period * 256 + 32, 7, np.int8)
            tables.periodic_byte_table(kernel, constant, constant_first, ints, extra, plain)
        assert fast.tobytes() == plain.tobytes()
        assert (fast[period * 256:] == 7).all()


def test_c_tables_refuse_a_short_output():
    fn = kernel_address("requantize_int8")
    ints = layout_of("requantize_int8").ints(in_zp=0, out_zp=0, mult=1 << 30, shift=0, act_min=-128,
                                                     act_max=127, mode=0, n=256)
    with pytest.raises(ValueError, match="255 bytes where 256"):
        load_tables.byte_table(fn, 0, 1, ints, (), np.empty(255, np.int8))
    with pytest.raises(ValueError, match="pointer slot"):
        load_tables.byte_table(fn, 0, 99, ints, (), np.empty(256, np.int8))
    with pytest.raises(ValueError, match="where 768 are written"):
        load_tables.periodic_byte_table(fn, [0, 0, 0], ints, np.empty(700, np.int8), 3, 1)


def rank7_graph(op_type, inputs, out_shape, options=None, dtype=np.float32):
    """One op over a rank-7 input (tensor 0; the other inputs constants) with its output last."""
    ts = [tensor(0, inputs[0], dtype, 0.05 if dtype == np.int8 else None)]
    for k, data in enumerate(inputs[1:], 1):
        data = np.asarray(data)
        ts.append(tensor(k, data.shape, data.dtype, data=data))
    n = len(ts)
    ts.append(tensor(n, out_shape, dtype, 0.05 if dtype == np.int8 else None))
    return Graph(ts, [Op(0, op_type, 1, list(range(n)), [n], options or {})], [0], [n])


SHAPE7 = (2, 3, 2, 3, 2, 3, 2)
# (what, graph): each reaches the 6-dim helpers (common.pad6's form pad6_of, shape.merge_gather_dims) at rank 7
def float_binary7(op_type):
    return Graph([tensor(k, SHAPE7, np.float32) for k in range(3)], [Op(0, op_type, 1, [0, 1], [2], {})], [0, 1], [2])


RANK7 = [(f"float {t}", partial(float_binary7, t)) for t in ("ADD", "FLOOR_DIV", "SQUARED_DIFFERENCE", "MAXIMUM")] + [
    ("int8 PAD", lambda: rank7_graph("PAD", [SHAPE7, np.zeros((7, 2), np.int32)], SHAPE7, dtype=np.int8)),
    ("STRIDED_SLICE every other element", lambda: rank7_graph(
        "STRIDED_SLICE", [SHAPE7, np.zeros(7, np.int32), np.asarray(SHAPE7, np.int32), np.full(7, 2, np.int32)],
        tuple((d + 1) // 2 for d in SHAPE7))),
]


@pytest.mark.parametrize("case", RANK7, ids=[c[0] for c in RANK7])
def test_rank_over_6_is_refused_naming_the_op(case):
    what, make = case
    graph = make()
    with pytest.raises(UnsupportedOpError) as error:
        compile_graph(graph, {}, 0)
    assert str(error.value).startswith(graph.ops[0].describe()) and "rank" in str(error.value), what


def test_the_6_dim_helpers_name_the_op():
    op = Op(3, "TRANSPOSE", 1, [0], [1], {})
    with pytest.raises(UnsupportedOpError, match=r"^op 3 \(TRANSPOSE v1\): rank 7 > 6 is not supported$"):
        pad6_of(op, SHAPE7)
    assert pad6_of(op, (4, 5)) == [1, 1, 1, 1, 4, 5]
    dims, strides = [3] * 7, [3 ** (2 * k) for k in range(7, 0, -1)]      # no two dims merge
    with pytest.raises(UnsupportedOpError, match=r"^op 3 \(TRANSPOSE v1\): rank 7 > 6 is not supported"):
        merge_gather_dims(op, dims, strides)
    assert merge_gather_dims(op, [2, 1, 3], [3, 9, 1]) == ([1, 1, 1, 1, 1, 6], [0, 0, 0, 0, 0, 1])


def relu_graph(which, s_in, zp_in, s_out, zp_out, shape=(1, 5, 3, 7)):
    return Graph([tensor(0, shape, np.int8, s_in, zp_in), tensor(1, shape, np.int8, s_out, zp_out)],
                 [Op(0, which, 1, [0], [1], {})], [0], [1])


def python_relu_tables(monkeypatch):
    monkeypatch.setattr(load_tables, "relu_table", lambda *args: None)


@pytest.mark.parametrize("which", ["RELU", "RELU6", "RELU_N1_TO_1"])
@pytest.mark.parametrize("rounding", [0, 1])
def test_relu_tables_in_c_equal_the_python_path(which, rounding, monkeypatch):
    rng = np.random.default_rng(len(which) + 10 * rounding)
    cases = [(float(rng.uniform(1e-4, 0.5)), int(rng.integers(-128, 128)), float(rng.uniform(1e-4, 0.5)),
              int(rng.integers(-128, 128))) for _ in range(40)]
    cases += [(0.05, 0, 0.05, 0), (0.02, -128, 6 / 255, -128), (1.0, 5, 1e-3, 127), (1e-3, 0, 1.0, -128),
              (2 / 255, 0, 1 / 128, 0), (0.1, 3, 0.1 / 3, -3)]     # ties, clamped ranges, ratios far from 1
    graphs = [relu_graph(which, *c) for c in cases]
    for g, (s_in, zp_in, s_out, zp_out) in zip(graphs, cases):          # the C form takes each of these
        ctx = new_context(g, {}, rounding, 1, 1 << 31, 1 << 31)
        assert load_tables.relu_table(ctx, RELU_KINDS[which], s_in, zp_in, s_out, zp_out, np.dtype(np.int8)) is not None
    fast = [plan_values(g, rounding) + [table_bytes(g, rounding)] for g in graphs]
    python_relu_tables(monkeypatch)
    assert fast == [plan_values(g, rounding) + [table_bytes(g, rounding)] for g in graphs]


def table_bytes(graph, rounding):
    plan = compile_graph(graph, {}, rounding)
    ptrs = plan.steps[0].make(lambda t: 0)[0]
    return np.ctypeslib.as_array((ctypes.c_int8 * 256).from_address(ptrs["table"])).tobytes() \
        if plan.steps[0].kernel == "lut_int8" else None


# (what, input scale, output scale, output zero point, rounding, message fragment): declined by the C form, then
# refused by the Python path naming the op
EXTREME = [("a ratio past float32", 0.05, 1e-45, 0, 0, "input scale / output scale (0.05 / 1e-45) is not finite"),
           ("a RELU6 bound past float32", 0.05, 1e-39, 0, 0, "activation maximum (6.0 / 1e-39) is not finite"),
           ("an output zero point past int32", 0.05, 0.05, 1 << 40, 0, None),
           ("an unknown rounding", 0.05, 0.05, 0, 7, None)]


@pytest.mark.parametrize("case", EXTREME, ids=[c[0] for c in EXTREME])
def test_extreme_relu_quantization_is_declined_then_refused(case, monkeypatch):
    _, s_in, s_out, zp_out, rounding, fragment = case
    g = relu_graph("RELU6", s_in, 3, s_out, zp_out)
    ctx = new_context(g, {}, rounding, 1, 1 << 31, 1 << 31)
    assert load_tables.relu_table(ctx, 1, s_in, 3, s_out, zp_out, np.dtype(np.int8)) is None
    assert ctx.weight_bytes == 0             # (nothing kept by a declined call)
    if fragment is None:
        return
    with pytest.raises(EdgeMLError) as fast:
        compile_graph(g, {}, rounding)
    python_relu_tables(monkeypatch)
    with pytest.raises(EdgeMLError) as plain:
        compile_graph(g, {}, rounding)
    assert type(fast.value) is type(plain.value) is UnsupportedOpError
    assert str(fast.value) == str(plain.value) and str(fast.value).startswith("op 0 (RELU6 v1): ")
    assert fragment in str(fast.value)


@pytest.mark.parametrize("which", ["RELU", "LEAKY_RELU"])
def test_scale_ratios_past_float32_are_refused_without_a_warning(which, monkeypatch):
    python_relu_tables(monkeypatch)
    g = relu_graph(which, 1e30, 3, 1e-30, 0)
    with np.errstate(all="raise"), pytest.raises(UnsupportedOpError, match=r"^op 0 \(\w+ v1\): input scale"):
        compile_graph(g, {}, 0)


def pad_graph(shape, pads, dtype=np.int8, scale=0.05, zp=-3, out_scale=None, out_zp=None, out_shape=None,
              op_type="PAD", pads_dtype=np.int32, constant_pads=True, out_dtype=None):
    pads = np.asarray(pads, pads_dtype)
    quantized = dtype in (np.int8, np.int16)
    x = tensor(0, shape, dtype, scale if quantized else None, zp if quantized else 0)
    if out_shape is None:
        out_shape = tuple(int(d) + int(p.sum()) for d, p in zip(shape, pads.reshape(len(shape), 2))) \
            if pads.shape == (len(shape), 2) else tuple(shape)
    out_dtype = out_dtype or dtype
    y = tensor(2, out_shape, out_dtype, (out_scale or scale) if quantized else None,
               (zp if out_zp is None else out_zp) if quantized else 0)
    p = tensor(1, pads.shape, pads.dtype, data=pads if constant_pads else None)
    return Graph([x, p, y], [Op(0, op_type, 1, [0, 1], [2], {})], [0] + ([] if constant_pads else [1]), [2])


PADS = [((1, 5, 7, 3), [[0, 0], [1, 2], [3, 0], [0, 0]], np.int8), ((2, 3, 17), [[1, 0], [0, 0], [2, 5]], np.int8),
        ((7,), [[3, 4]], np.int8), ((1, 1, 2, 1, 3, 2), [[0, 1]] * 6, np.int8), ((3, 4), [[0, 0], [0, 0]], np.int8),
        ((1, 4, 4, 5), [[0, 0], [1, 1], [1, 1], [0, 0]], np.float32), ((2, 3, 3), [[0, 0], [2, 2], [1, 0]], np.int16),
        ((5, 6), [[1, 1], [1, 1]], np.float32), ((1, 3, 3, 2), [[0, 0], [0, 1], [0, 1], [0, 0]], np.int16),
        ((0, 4), [[1, 1], [0, 2]], np.int8), ((2, 2), [[0, 0], [1, 1]], np.float32)]


@pytest.mark.parametrize("pads_dtype", [np.int32, np.int64])
def test_pad_shell_plans_equal_the_python_path(pads_dtype, monkeypatch):
    graphs = [pad_graph(s, p, d, pads_dtype=pads_dtype) for s, p, d in PADS]
    for g in graphs:      # the shell takes each of these
        ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
        assert load_pad.pad_shell(ctx, g.ops[0], *SHELL_TYPES) is not None
        assert ctx.shapes[2] == g.tensors[2].shape
    fast = [plan_values(g) + [kept_value(g)] for g in graphs]
    monkeypatch.setattr(load_pad, "pad_shell", lambda *args: None)
    assert fast == [plan_values(g) + [kept_value(g)] for g in graphs]


def kept_value(graph):
    """The pad value's bytes (the step's value pointer)."""
    plan = compile_graph(graph, {}, 0)
    ptrs = plan.steps[0].make(lambda t: 0)[0]
    size = graph.tensors[0].dtype.itemsize
    return bytes((ctypes.c_uint8 * size).from_address(ptrs["value"]))


# (what, graph, error type, message fragment): each declined by the shell, then refused by the Python path
MALFORMED_PADS = [
    ("a negative pad", lambda: pad_graph((1, 4, 4, 3), [[0, 0], [-1, 1], [1, 1], [0, 0]], out_shape=(1, 4, 6, 3)),
     ModelFormatError, "do not fit input rank 4"),
    ("paddings of the wrong shape", lambda: pad_graph((1, 4, 4, 3), [[1, 1], [1, 1]]), ModelFormatError,
     "do not fit input rank 4"),
    ("paddings not constant", lambda: pad_graph((1, 4, 4, 3), [[0, 0]] * 4, constant_pads=False),
     UnsupportedOpError, "must be a constant in the model file"),
    ("different output quantization", lambda: pad_graph((2, 3), [[0, 1], [1, 0]], out_zp=4), UnsupportedOpError,
     "must share scale and zero point"),
    ("different types", lambda: pad_graph((2, 3), [[0, 1], [1, 0]], np.int16, out_dtype=np.int8),
     ModelFormatError, "input and output types differ"),
    ("rank 7", lambda: pad_graph((1, 1, 2, 1, 3, 1, 2), [[0, 0]] * 7), UnsupportedOpError, "rank"),
    ("an int8 zero point outside int8", lambda: pad_graph((2, 3), [[0, 1], [1, 0]], zp=300), ModelFormatError,
     "has zero point 300, outside int8"),
    ("a wrongly declared output shape", lambda: pad_graph((2, 3), [[0, 1], [1, 0]], out_shape=(3, 3)),
     ModelFormatError, "is declared [3, 3] but the op produces [3, 4]"),
]


@pytest.mark.parametrize("case", MALFORMED_PADS, ids=[c[0] for c in MALFORMED_PADS])
def test_malformed_pad_gives_the_python_paths_error(case, monkeypatch):
    _, make, error, fragment = case
    with pytest.raises(EdgeMLError) as fast:
        compile_graph(make(), {}, 0)
    monkeypatch.setattr(load_pad, "pad_shell", lambda *args: None)
    with pytest.raises(EdgeMLError) as plain:
        compile_graph(make(), {}, 0)
    assert type(fast.value) is type(plain.value) is error
    assert str(fast.value) == str(plain.value) and str(fast.value).startswith("op 0 (PAD v1)")
    assert fragment in str(fast.value)


def test_padv2_keeps_the_python_path():
    g = pad_graph((2, 3), [[0, 1], [1, 0]], op_type="PADV2")
    ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
    assert load_pad.pad_shell(ctx, g.ops[0], *SHELL_TYPES) is None
    assert [v[0] for v in plan_values(g)] == ["pad"]


def dequantize_graph(shape, scale, zp, x_dtype=np.int8, y_dtype=np.float32, quant=None, constant=None):
    x = tensor(0, shape, x_dtype, scale, zp, data=constant)
    if quant is not None:
        x = type(x)(**{**x.__dict__, "quant": quant})
    return Graph([x, tensor(1, shape, y_dtype)], [Op(0, "DEQUANTIZE", 1, [0], [1], {})],
                 [] if constant is not None else [0], [1])


def python_dequantize(monkeypatch):
    monkeypatch.setattr(load_tables, "int8_dequantize_shell", lambda *args: None)


def test_dequantize_shell_plans_equal_the_python_path(monkeypatch):
    rng = np.random.default_rng(5)
    cases = [((1, 5, 7, 3), 0.05, -3), ((17,), 1e-4, 127), ((2, 3, 1, 5, 1, 3), 3.7, -128), ((0, 4), 0.5, 0),
             ((), 0.25, 1), ((1, 1, 1, 1, 1, 1, 2), 1 / 255, 0)]       # (rank 7: DEQUANTIZE has no rank limit)
    cases += [((3, 4), float(rng.uniform(1e-5, 4)), int(rng.integers(-128, 128))) for _ in range(20)]
    graphs = [dequantize_graph(*c) for c in cases]
    for g in graphs:      # the shell takes each of these
        ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
        assert load_tables.int8_dequantize_shell(ctx, g.ops[0], np.dtype(np.int8), np.dtype(np.float32)) is not None
        assert ctx.shapes[1] == g.tensors[1].shape
    fast = [plan_values(g) + [dequantize_table(g)] for g in graphs]
    python_dequantize(monkeypatch)
    assert fast == [plan_values(g) + [dequantize_table(g)] for g in graphs]


def dequantize_table(graph):
    plan = compile_graph(graph, {}, 0)
    ptrs = plan.steps[0].make(lambda t: 0)[0]
    return bytes((ctypes.c_uint8 * 1024).from_address(ptrs["table"]))


# (what, graph, error type or None (planned), message fragment): declined by the shell, the Python path decides
DEQUANTIZE_DECLINED = [
    ("a constant input (folded)", lambda: dequantize_graph((2, 3), 0.1, 2, constant=np.arange(6, dtype=np.int8)
                                                           .reshape(2, 3)), None, None),
    ("an int16 input", lambda: dequantize_graph((2, 3), 0.1, 0, x_dtype=np.int16), None, None),
    ("a per-channel input", lambda: dequantize_graph((2, 3), [0.1, 0.2, 0.3], 0, quant=Quantization(
        np.array([0.1, 0.2, 0.3]), np.zeros(3, np.int64), 1)), ModelFormatError, "must be quantized per tensor"),
    ("an input without quantization", lambda: dequantize_graph((2, 3), None, 0), ModelFormatError,
     "has no quantization parameters"),
    ("a zero scale", lambda: dequantize_graph((2, 3), 0.0, 0), ModelFormatError, "has quantization scale 0.0"),
    ("an int8 output", lambda: dequantize_graph((2, 3), 0.1, 0, y_dtype=np.int8), UnsupportedOpError,
     "dequantizing to int8 is not supported"),
]


@pytest.mark.parametrize("case", DEQUANTIZE_DECLINED, ids=[c[0] for c in DEQUANTIZE_DECLINED])
def test_dequantize_declines_keep_the_python_paths_result(case, monkeypatch):
    _, make, error, fragment = case
    g = make()
    ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
    assert load_tables.int8_dequantize_shell(ctx, g.ops[0], np.dtype(np.int8), np.dtype(np.float32)) is None
    assert ctx.weight_bytes == 0 and 1 not in ctx.shapes       # (nothing kept, no shape set)
    if error is None:
        fast = plan_values(g)
        python_dequantize(monkeypatch)
        assert fast == plan_values(g)
        return
    with pytest.raises(EdgeMLError) as fast_error:
        compile_graph(make(), {}, 0)
    python_dequantize(monkeypatch)
    with pytest.raises(EdgeMLError) as plain:
        compile_graph(make(), {}, 0)
    assert type(fast_error.value) is type(plain.value) is error and str(fast_error.value) == str(plain.value)
    assert fragment in str(fast_error.value) and str(fast_error.value).startswith("op 0 (DEQUANTIZE v")


# ----- a constant int8 DEQUANTIZE folded in one pass (load_tables.int8_dequantize_constant) ------------------------

DEQUANTIZE_CONSTANT = [(load_tables, "int8_dequantize_constant")]


def constant_dequantize_graph(shape, scale, zp, output=True, quant=None, seed=0):
    data = np.random.default_rng(seed).integers(-128, 128, shape).astype(np.int8)
    g = dequantize_graph(shape, scale, zp, quant=quant, constant=data)
    if output:         # (a graph output: folded, then copied into the arena by one step)
        return g
    n = len(g.tensors)          # (else an internal constant: a RESHAPE of a fresh input is the graph's output)
    tensors = g.tensors + [tensor(n, (2, 3), np.int8, 0.1, 0), tensor(n + 1, (6,), np.int8, 0.1, 0)]
    return Graph(tensors, g.ops + [Op(1, "RESHAPE", 1, [n], [n + 1], {"new_shape": [6]})], [n], [n + 1])


@pytest.mark.parametrize("output", [True, False])
def test_constant_dequantize_folds_as_the_python_path(output):
    """float32(double(float32(scale)) * (q - zero point)) over ranks 0-7, empty dims, extreme zero points and scales
    (one past float32's range, declined to the Python path): the same folded values (or kept copy) and steps."""
    rng = np.random.default_rng(9)
    cases = [((1, 6825, 4), 0.0478, -3), ((17,), 1e-4, 127), ((2, 3, 1, 5, 1, 3), 3.7, -128), ((0, 4), 0.5, 0),
             ((), 0.25, 1), ((1, 1, 1, 1, 1, 1, 2), 1 / 255, 0), ((3, 3), 1e-39, 5), ((4,), 1e39, 0),
             ((5,), 0.1, (1 << 31) + 7)]
    cases += [((3, 4), float(10.0 ** rng.uniform(-6, 3)), int(rng.integers(-128, 128))) for _ in range(30)]
    for k, (shape, scale, zp) in enumerate(cases):
        build = lambda: constant_dequantize_graph(shape, scale, zp, output, seed=k)     # noqa: E731
        g = build()
        ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
        values = load_tables.int8_dequantize_constant(ctx, g.ops[0], np.dtype(np.int8), np.dtype(np.float32))
        assert (values is None) == (scale > 1e38 or zp >= 1 << 31), (shape, scale, zp)
        steps, kept, constants = assert_same_plan(build, DEQUANTIZE_CONSTANT)
        assert (1 in constants) != output and len(kept) == int(output)


def test_per_channel_constant_dequantize_keeps_the_python_path():
    quant = Quantization(np.array([0.1, 0.2, 0.3]), np.array([0, 1, -2], np.int64), 1)
    g = constant_dequantize_graph((2, 3), [0.1, 0.2, 0.3], 0, False, quant=quant)
    ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
    assert load_tables.int8_dequantize_constant(ctx, g.ops[0], np.dtype(np.int8), np.dtype(np.float32)) is None
    assert_same_plan(lambda: constant_dequantize_graph((2, 3), [0.1, 0.2, 0.3], 0, False, quant=quant),
                     DEQUANTIZE_CONSTANT)


# ----- the PAD folded into its conv finds the conv in one C pass (load_pad.sole_readers; twins in shape)

def test_sole_reader_equals_its_python_twin():
    """None, one or several readers, a tensor read twice by one op, empty and negative (absent) inputs; the index of
    every tensor's sole reader equals the per-tensor search."""
    rng = np.random.default_rng(3)
    for trial in range(300):
        ops = [Op(k, "ADD", 1, [int(v) for v in rng.integers(-1, 12, rng.integers(0, 4))], [20 + k], {})
               for k in range(int(rng.integers(0, 9)))]
        readers = load_pad.sole_readers(ops)
        assert readers == shape_ops.sole_readers(ops) and all(readers[t] is shape_ops.sole_readers(ops)[t]
                                                               for t in readers)
        for t in range(-1, 13):
            assert readers.get(t) is sole_reader(ops, t), (trial, t)
    op = Op(0, "ADD", 1, [3, 4], [5], {})
    assert load_pad.sole_readers([op, op]) == {3: None, 4: None}    # (one op listed twice: two readers)
