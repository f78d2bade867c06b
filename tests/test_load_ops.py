"""Issue 15, load time of the cheap ops: cython_ops/load_ops.pyx's one-call shells.

- int8 ADD / SUB / MUL (int8_binary_shell): the shell takes the common case (two non-constant int8 inputs, any
  broadcast up to rank 6, both roundings, every fused activation) and its plan equals the Python path's, integer
  for integer; every malformed or less common form is declared (None) and gives exactly the Python path's error
  (type and message, naming the op or tensor);
- the one-input int8 ops, int8 pools and int8 MEAN likewise (RESHAPE and CONCATENATION:
  tests/test_load_ops_moves.py);
- set_output_shape: the shortcut of Ctx.set_output writes what it writes, and leaves every refusal to it."""
from __future__ import annotations

import numpy as np
import pytest

from cython_ops import load_ops, load_shell
from edgeml.errors import EdgeMLError, ModelFormatError, UnsupportedOpError
from edgeml.ir import Graph, Op, Quantization
from edgeml.runtime.compile import compile_graph, new_context
from edgeml.runtime.layouts import layout_of
from edgeml.runtime.ops.elementwise import SHELL_OPS
from path_cases import tensor

INT8 = np.dtype(np.int8)
# (input 1 shape, input 2 shape): broadcasts of every kind, odd sizes, batch > 1, ranks 1 to 6
BROADCASTS = [((1, 5, 7, 3), (1, 5, 7, 3)), ((1, 5, 7, 3), (3,)), ((2, 5, 1, 3), (1, 1, 7, 1)), ((7,), (4, 1)),
              ((1, 1, 1, 1), (1, 3, 3, 17)), ((2, 3, 1, 5, 1, 3), (1, 3, 4, 1, 2, 1)), ((1, 9, 1), (1, 1, 1)),
              ((0, 4), (1, 4)), ((3, 1, 5), (3, 4, 5))]


def binary_graph(which, sa, sb, act=0, scales=(0.05, 0.031, 0.07), zps=(3, -7, 11), out_shape=None):
    out = out_shape or tuple(np.broadcast_shapes(sa, sb))
    ts = [tensor(0, sa, np.int8, scales[0], zps[0]), tensor(1, sb, np.int8, scales[1], zps[1]),
          tensor(2, out, np.int8, scales[2], zps[2])]
    return Graph(ts, [Op(0, which, 1, [0, 1], [2], {"fused_activation_function": act})], [0, 1], [2])


def plan_values(graph, rounding=0, **options) -> list:
    plan = compile_graph(graph, {}, rounding, **options)
    out = []
    for step in plan.steps:
        _, ints, floats, *_ = step.make(lambda t: 0)
        layout = layout_of(step.kernel)
        out.append((step.kernel, step.scratch_bytes, [int(v) for v in layout.ints(**ints)],
                    [float(v) for v in layout.floats(**floats)]))
    return out


def python_path(monkeypatch):
    monkeypatch.setattr(load_ops, "int8_binary_shell", lambda *args: None)


@pytest.mark.parametrize("which", ["ADD", "SUB", "MUL"])
@pytest.mark.parametrize("rounding", [0, 1])
def test_binary_shell_plans_equal_the_python_path(which, rounding, monkeypatch):
    rng = np.random.default_rng(len(which) * 7 + rounding)
    graphs = []
    for sa, sb in BROADCASTS:
        for act in (0, 1, 2, 3):
            scales = tuple(float(v) for v in rng.uniform(0.001, 0.5, 3))
            zps = tuple(int(v) for v in rng.integers(-128, 128, 3))
            graphs.append(binary_graph(which, sa, sb, act, scales, zps))
    for g in graphs:      # the shell takes each of these
        ctx = new_context(g, {}, rounding, 1, 1 << 31, 1 << 31)
        assert load_ops.int8_binary_shell(ctx, g.ops[0], SHELL_OPS[which], INT8) is not None
        assert ctx.shapes[2] == g.tensors[2].shape
    fast = [plan_values(g, rounding) for g in graphs]
    python_path(monkeypatch)
    assert fast == [plan_values(g, rounding) for g in graphs]


def with_tensor(graph, index, **changes):
    t = graph.tensors[index]
    graph.tensors[index] = type(t)(**{**t.__dict__, **changes})
    return graph


def per_axis(scales):
    return Quantization(np.asarray(scales, np.float64), np.zeros(len(scales), np.int64), 3)


def rank7():
    g = binary_graph("ADD", (1, 1, 2, 1, 3, 1, 2), (1, 1, 2, 1, 3, 1, 2))
    return g


# (what, graph, compile options, error type, message fragment): each declined by the shell
MALFORMED = [
    ("shapes that do not broadcast", lambda: binary_graph("ADD", (1, 4, 4, 3), (1, 4, 4, 2), out_shape=(1, 4, 4, 3)),
     {}, ModelFormatError, "do not broadcast"),
    ("a TANH fused activation", lambda: binary_graph("MUL", (2, 3), (2, 3), act=4), {}, UnsupportedOpError,
     "fused activation TANH is not supported"),
    ("an unknown fused activation", lambda: binary_graph("SUB", (2, 3), (3,), act=9), {}, UnsupportedOpError,
     "fused activation 9 is not supported"),
    ("an input quantized per channel", lambda: with_tensor(binary_graph("ADD", (1, 2, 2, 3), (1, 2, 2, 3)), 0,
                                                           quant=per_axis([0.1, 0.2, 0.3])),
     {}, ModelFormatError, "must be quantized per tensor"),
    ("an input without quantization", lambda: with_tensor(binary_graph("MUL", (4,), (4,)), 1, quant=None), {},
     ModelFormatError, "has no quantization parameters"),
    ("an output scale of zero", lambda: binary_graph("ADD", (4,), (4,), scales=(0.1, 0.1, 0.0)), {},
     ModelFormatError, "has quantization scale 0.0"),
    ("a negative input scale", lambda: binary_graph("SUB", (4,), (4,), scales=(-0.1, 0.1, 0.2)), {},
     ModelFormatError, "has quantization scale -0.1"),
    ("a wrongly declared output shape", lambda: binary_graph("ADD", (1, 3), (2, 1), out_shape=(2, 2)), {},
     ModelFormatError, "is declared [2, 2] but the op produces [2, 3]"),
    ("a float32 output of int8 inputs", lambda: with_tensor(binary_graph("MUL", (3,), (3,)), 2,
                                                            dtype=np.dtype(np.float32), quant=None),
     {}, UnsupportedOpError, "output type float32 differs from input type int8"),
    ("inputs mixing int8 and int16", lambda: with_tensor(binary_graph("ADD", (3,), (3,)), 1,
                                                         dtype=np.dtype(np.int16)),
     {}, UnsupportedOpError, "inputs mix int8 and int16"),
    ("rank 7", rank7, {}, UnsupportedOpError, "rank 7 > 6"),
    ("an output past the arena budget", lambda: binary_graph("ADD", (1, 8, 8, 1), (1, 1, 1, 8)),
     {"max_arena_bytes": 100}, ModelFormatError, "more than the arena budget of 100"),
    ("an output that is a graph input", lambda: Graph(binary_graph("ADD", (3,), (3,)).tensors,
                                                      [Op(0, "ADD", 1, [0, 1], [1], {})], [0, 1], [1]),
     {}, ModelFormatError, "which a graph input or an earlier op already provides"),
]


@pytest.mark.parametrize("case", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_binary_op_gives_the_python_paths_error(case, monkeypatch):
    _, make, options, error, fragment = case
    with pytest.raises(EdgeMLError) as fast:
        compile_graph(make(), {}, 0, **options)
    python_path(monkeypatch)
    with pytest.raises(EdgeMLError) as plain:
        compile_graph(make(), {}, 0, **options)
    assert type(fast.value) is type(plain.value) is error
    assert str(fast.value) == str(plain.value)
    assert fragment in str(fast.value)
    assert "op 0 (" in str(fast.value) or "graph input tensor" in str(fast.value)


@pytest.mark.parametrize("case", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_shell_declines_what_the_python_path_refuses(case):
    """The shell leaves the refusal to the Python path without changing the context (no output shape set)."""
    _, make, options, _, _ = case
    g = make()
    ctx = new_context(g, {}, 0, 1, options.get("max_arena_bytes", 1 << 31), 1 << 31)
    op = g.ops[0]
    try:
        result = load_ops.int8_binary_shell(ctx, op, SHELL_OPS[op.type], INT8)
    except EdgeMLError:         # (set_output's own refusals, raised by Ctx.set_output itself)
        return
    assert result is None
    assert op.outputs[0] not in ctx.shapes or op.outputs[0] in g.inputs


def constant_operand_graph(which, shape, const_shape, first=False, act=0):
    """`which` of a graph input and a constant (the first operand when `first`)."""
    g = binary_graph(which, const_shape if first else shape, shape if first else const_shape, act)
    k = 0 if first else 1
    data = (np.arange(int(np.prod(const_shape))) * 37 % 251 - 125).astype(np.int8).reshape(const_shape)
    g = with_tensor(g, k, data=data)
    g.inputs = [1 - k]
    return g


CONSTANT_OPERANDS = [((1, 4, 4, 3), (3,), False), ((1, 4, 4, 3), (3,), True), ((2, 5, 7), (1, 1, 1), False),
                     ((1, 3, 3, 17), (1, 1, 3, 17), False), ((1, 6, 65), (65,), False), ((1, 2, 2, 2), (2, 1), True)]


@pytest.mark.parametrize("which", ["ADD", "SUB", "MUL"])
def test_binary_shell_with_a_constant_operand_plans_equal_the_python_path(which, monkeypatch):
    """The shell's integers build the constant operand's byte tables (or the plain step past 64 positions) exactly
    as the Python path's do: the kernels, their integers and every table byte."""
    graphs = [constant_operand_graph(which, s, c, first, act) for s, c, first in CONSTANT_OPERANDS
              for act in (0, 1)]
    for g in graphs:
        ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
        assert load_ops.int8_binary_shell(ctx, g.ops[0], SHELL_OPS[which], INT8) is not None
    fast = [plan_values(g) for g in graphs]
    kept = [[a.tobytes() for a in compile_graph(g, {}, 0).keep if isinstance(a, np.ndarray)] for g in graphs]
    assert any(s[0][0] == "lut_periodic_int8" for s in fast) and any(s[0][0] == "lut_int8" for s in fast)
    python_path(monkeypatch)
    assert fast == [plan_values(g) for g in graphs]
    assert kept == [[a.tobytes() for a in compile_graph(g, {}, 0).keep if isinstance(a, np.ndarray)] for g in graphs]


def test_binary_shell_declines_the_other_forms():
    """The onnxruntime rounding and a missing input go the Python way."""
    g = binary_graph("ADD", (3,), (3,))
    ctx = new_context(g, {}, 2, 1, 1 << 31, 1 << 31)
    assert load_ops.int8_binary_shell(ctx, g.ops[0], 0, INT8) is None
    g.ops[0].inputs[1] = -1
    ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
    assert load_ops.int8_binary_shell(ctx, g.ops[0], 0, INT8) is None
    assert 2 not in ctx.shapes


def test_set_output_shape_is_ctx_set_output():
    g = binary_graph("ADD", (2, 3), (2, 3))
    ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
    op, y = g.ops[0], g.tensors[2]
    load_ops.set_output_shape(ctx, op, 0, (2, 3), y)
    assert ctx.shapes[2] == (2, 3) and ctx.producers[2] is op
    load_ops.set_output_shape(ctx, op, 0, (2, 3), y)       # the same op again: allowed, as set_output allows it
    other = Op(1, "ADD", 1, [0, 1], [2], {})
    with pytest.raises(ModelFormatError, match="op 1 .* writes tensor 2 't2', which a graph input or an earlier op"):
        load_ops.set_output_shape(ctx, other, 0, (2, 3), y)
    g = binary_graph("ADD", (2, 1), (1, 3))
    ctx = new_context(g, {}, 0, 1, 5, 1 << 31)
    with pytest.raises(ModelFormatError, match="needs 6 bytes, more than the arena budget of 5"):
        load_ops.set_output_shape(ctx, g.ops[0], 0, (2, 3), g.tensors[2])
    assert 2 not in ctx.shapes


# ----- DETECTION_POSTPROCESS anchors (written into the kept array, checked by whole-array minimum / maximum) -------

def anchors_context(data, scale=None, zp=0, max_weight_bytes=1 << 31):
    t = tensor(0, data.shape, data.dtype, scale, zp, data)
    g = Graph([t], [Op(0, "DETECTION_POSTPROCESS", 1, [0], [], {})], [], [])
    return new_context(g, {}, 0, 1, 1 << 31, max_weight_bytes), g.ops[0], t


def reference_anchors(data, scale=None, zp=0):
    if scale is None:
        return data.astype(np.float32)
    return (data.astype(np.float32) - np.float32(zp)) * np.float32(scale)


ANCHORS_RNG = np.random.default_rng(15)
GOOD_ANCHORS = [
    (np.float32([[-0.3, 0.5, 0.1, 0.2], [0.5, -2.0, 0.0, 1.5], [0.1, 0.1, 0.3, -0.0]]), None, 0),   # y, x < 0 allowed
    (ANCHORS_RNG.integers(-128, 128, (37, 4)).astype(np.int8).clip(-5, None), 0.0117, -5),
    (np.int8([[-128, 3, -7, -7], [127, -7, 0, 120]]), 0.25, -7),
    (np.zeros((0, 4), np.float32), None, 0),
]
BAD_ANCHORS = [
    (np.float32([[0.5, np.inf, 0.1, 0.2]]), None, 0, "not finite"),
    (np.float32([[0.5, 0.5, 0.1, -np.inf]]), None, 0, "not finite"),
    (np.float32([[0.5, 0.5, 0.1, np.nan]]), None, 0, "not finite"),
    (np.float32([[0.5, 0.5, 0.1, 0.2], [0.5, 0.5, 0.1, -0.01]]), None, 0, "negative heights or widths"),
    (np.int8([[0, 0, 3, 4], [9, 9, 3, 2]]), 0.1, 3, "negative heights or widths"),
    (np.int8([[0, 0, 3, 4]]), 1e38, -128, "not finite"),
]


@pytest.mark.parametrize("k", range(len(GOOD_ANCHORS)))
def test_anchors_are_dequantized_into_the_kept_array(k):
    from edgeml.runtime.ops.detection import dequantized_anchors
    data, scale, zp = GOOD_ANCHORS[k]
    ctx, op, t = anchors_context(data, scale, zp)
    values = dequantized_anchors(ctx, op, t, scale is not None, len(data))
    assert values.dtype == np.float32 and values.shape == data.shape
    assert values.tobytes() == reference_anchors(data, scale, zp).tobytes()
    assert any(values is kept for kept in ctx.keep) and ctx.weight_bytes == values.nbytes


@pytest.mark.parametrize("k", range(len(BAD_ANCHORS)))
def test_bad_anchors_are_refused_naming_the_op_and_tensor(k):
    from edgeml.runtime.ops.detection import dequantized_anchors
    data, scale, zp, fragment = BAD_ANCHORS[k]
    for budget in (1 << 31, 8):        # (the anchors' own error also where the weight budget would refuse them)
        ctx, op, t = anchors_context(data, scale, zp, budget)
        with pytest.raises(ModelFormatError, match=fragment) as info:
            dequantized_anchors(ctx, op, t, scale is not None, len(data))
        assert "op 0 (DETECTION_POSTPROCESS v1)" in str(info.value) and "tensor 0 't0'" in str(info.value)


def test_anchors_past_the_weight_budget_are_refused_after_their_checks():
    from edgeml.runtime.ops.detection import dequantized_anchors
    ctx, op, t = anchors_context(np.float32([[0.5, 0.5, 0.1, 0.2]] * 4), max_weight_bytes=63)
    with pytest.raises(ModelFormatError, match="packed weights need more than 63 bytes"):
        dequantized_anchors(ctx, op, t, False, 4)


# ----- one-input int8 ops (int8_unary_shell: the activations, int8 -> int8 QUANTIZE) -----------------------------

FIXED_OUTPUT = {"SOFTMAX": (1 / 256, -128), "LOGISTIC": (1 / 256, -128), "TANH": (1 / 128, 0)}
UNARY = ["SOFTMAX", "LOGISTIC", "TANH", "RELU", "RELU6", "RELU_N1_TO_1", "LEAKY_RELU", "HARD_SWISH", "QUANTIZE"]


def unary_graph(which, shape, s_in=0.05, zp_in=3, s_out=0.04, zp_out=-9, out_shape=None, options=None):
    s_out, zp_out = FIXED_OUTPUT.get(which, (s_out, zp_out))
    ts = [tensor(0, shape, np.int8, s_in, zp_in), tensor(1, out_shape or shape, np.int8, s_out, zp_out)]
    return Graph(ts, [Op(0, which, 1, [0], [1], dict(options or {}))], [0], [1])


def python_unary_path(monkeypatch):
    monkeypatch.setattr(load_ops, "int8_unary_shell", lambda *args: None)


@pytest.mark.parametrize("which", UNARY)
def test_unary_shell_plans_equal_the_python_path(which, monkeypatch):
    rng = np.random.default_rng(UNARY.index(which))
    graphs = []
    for shape in [(1, 10), (2, 3, 5, 7), (17,), (1, 1, 1, 1, 1, 1), (0, 3)]:
        s_in, s_out = (float(v) for v in rng.uniform(0.01, 0.2, 2))
        zp_in, zp_out = (int(v) for v in rng.integers(-128, 128, 2))
        graphs.append(unary_graph(which, shape, s_in, zp_in, s_out, zp_out, options={"alpha": 0.3}))
    for g in graphs:
        ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
        assert load_ops.int8_unary_shell(ctx, g.ops[0], INT8) is not None
    for rounding in (0, 1):
        fast = [plan_values(g, rounding) for g in graphs]
        with monkeypatch.context() as m:
            python_unary_path(m)
            assert fast == [plan_values(g, rounding) for g in graphs]


UNARY_MALFORMED = [
    ("a SOFTMAX output off 1/256", lambda: with_tensor(unary_graph("SOFTMAX", (1, 4)), 1,
                                                      quant=Quantization(np.float64([0.1]), np.int64([-128]))),
     UnsupportedOpError, "SOFTMAX int8 output must be quantized with scale 0.00390625"),
    ("a LOGISTIC output quantized per channel", lambda: with_tensor(unary_graph("LOGISTIC", (1, 2, 2, 3)), 1,
                                                                    quant=per_axis([0.1, 0.2, 0.3])),
     ModelFormatError, "must be quantized per tensor"),
    ("a QUANTIZE output scale of zero", lambda: unary_graph("QUANTIZE", (3, 4), s_out=0.0), ModelFormatError,
     "has quantization scale 0.0"),
    ("a wrongly declared RELU output", lambda: unary_graph("RELU", (3, 4), out_shape=(4, 3)), ModelFormatError,
     "is declared [4, 3] but the op produces [3, 4]"),
    ("a TANH input without quantization", lambda: with_tensor(unary_graph("TANH", (5,)), 0, quant=None),
     ModelFormatError, "has no quantization parameters"),
    ("a float32 HARD_SWISH output", lambda: with_tensor(unary_graph("HARD_SWISH", (5,)), 1,
                                                        dtype=np.dtype(np.float32), quant=None),
     UnsupportedOpError, "output type float32 differs from input type int8"),
    ("an int16 QUANTIZE input", lambda: with_tensor(unary_graph("QUANTIZE", (5,)), 0, dtype=np.dtype(np.int16),
                                                    quant=Quantization(np.float64([0.1]), np.int64([3]))),
     ModelFormatError, "int16 activations are symmetric"),
    ("a RELU6 output that is its input", lambda: Graph(unary_graph("RELU6", (3,)).tensors,
                                                       [Op(0, "RELU6", 1, [0], [0], {})], [0], [0]),
     ModelFormatError, "which a graph input or an earlier op already provides"),
]


@pytest.mark.parametrize("case", UNARY_MALFORMED, ids=[c[0] for c in UNARY_MALFORMED])
def test_malformed_unary_op_gives_the_python_paths_error(case, monkeypatch):
    _, make, error, fragment = case
    with pytest.raises(EdgeMLError) as fast:
        compile_graph(make(), {}, 0)
    python_unary_path(monkeypatch)
    with pytest.raises(EdgeMLError) as plain:
        compile_graph(make(), {}, 0)
    assert type(fast.value) is type(plain.value) is error
    assert str(fast.value) == str(plain.value)
    assert fragment in str(fast.value) and "op 0 (" in str(fast.value)


# ----- AVERAGE_POOL_2D / MAX_POOL_2D (int8_pool_shell) -----------------------------------------------------------

def pool_graph(which, shape, kh, kw, sh, sw, padding=0, act=0, scale=0.05, zp=3, out_scale=None, out_shape=None,
               uint8=False):
    options = dict(filter_height=kh, filter_width=kw, stride_h=sh, stride_w=sw, padding=padding,
                   fused_activation_function=act)
    if uint8:
        options["uint8"] = True
    if out_shape is None:
        g = Graph([tensor(0, shape, np.int8, scale, zp), tensor(1, (1,), np.int8, scale, zp)],
                  [Op(0, which, 1, [0], [1], dict(options))], [0], [1])
        out_shape = plan_output_shape(g)
    ts = [tensor(0, shape, np.int8, scale, zp), tensor(1, out_shape, np.int8, out_scale or scale, zp)]
    return Graph(ts, [Op(0, which, 1, [0], [1], options)], [0], [1])


def plan_output_shape(g):
    """The output shape the Python path infers (the declared one left empty so that any shape is accepted)."""
    g.tensors[1] = type(g.tensors[1])(**{**g.tensors[1].__dict__, "shape": ()})
    ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
    from edgeml.runtime.ops.pool import prepare_pool
    prepare_pool(ctx, g.ops[0], g.ops[0].type == "MAX_POOL_2D")
    return ctx.shapes[1]


POOLS = [((1, 7, 9, 3), 2, 2, 2, 2, 0), ((1, 7, 9, 3), 3, 3, 2, 2, 1), ((2, 5, 5, 17), 5, 5, 1, 1, 1),
         ((1, 10, 1, 8), 3, 1, 1, 1, 0), ((1, 4, 4, 2), 1, 1, 3, 3, 0), ((1, 3, 3, 5), 4, 4, 1, 1, 1),
         ((1, 6, 8, 4), 2, 3, 3, 2, 0), ((1, 1, 1, 1), 7, 7, 1, 1, 0)]


@pytest.mark.parametrize("which", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
def test_pool_shell_plans_equal_the_python_path(which, monkeypatch):
    rng = np.random.default_rng(len(which))
    graphs = []
    for shape, kh, kw, sh, sw, padding in POOLS:
        for act in (0, 1, 2, 3):
            graphs.append(pool_graph(which, shape, kh, kw, sh, sw, padding, act, float(rng.uniform(0.01, 0.3)),
                                     int(rng.integers(-128, 128)), uint8=act == 2))
    for g in graphs:
        ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
        assert load_ops.int8_pool_shell(ctx, g.ops[0], INT8) is not None
    fast = [plan_values(g) for g in graphs]
    monkeypatch.setattr(load_ops, "int8_pool_shell", lambda *args: None)
    assert fast == [plan_values(g) for g in graphs]


POOL_MALFORMED = [
    ("a filter height of 0", lambda: pool_graph("MAX_POOL_2D", (1, 4, 4, 2), 0, 2, 1, 1, out_shape=(1, 4, 4, 2)),
     ModelFormatError, "filter_height must be a positive integer, got 0"),
    ("a negative stride", lambda: pool_graph("AVERAGE_POOL_2D", (1, 4, 4, 2), 2, 2, 1, -1, out_shape=(1, 4, 4, 2)),
     ModelFormatError, "stride_w must be a positive integer, got -1"),
    ("a 3-D input", lambda: pool_graph("MAX_POOL_2D", (4, 4, 2), 2, 2, 1, 1, out_shape=(4, 4, 2)),
     ModelFormatError, "expects a 4-D input, got [4, 4, 2]"),
    ("other output quantization", lambda: pool_graph("AVERAGE_POOL_2D", (1, 4, 4, 2), 2, 2, 2, 2, out_scale=0.07),
     UnsupportedOpError, "needs equal input and output quantization"),
    ("a TANH activation", lambda: pool_graph("MAX_POOL_2D", (1, 4, 4, 2), 2, 2, 2, 2, act=4,
                                             out_shape=(1, 2, 2, 2)), UnsupportedOpError, "fused activation TANH"),
    ("an unknown padding", lambda: pool_graph("MAX_POOL_2D", (1, 4, 4, 2), 2, 2, 2, 2, padding=5,
                                              out_shape=(1, 2, 2, 2)), ModelFormatError, "unknown padding 5"),
    ("a wrongly declared output", lambda: pool_graph("AVERAGE_POOL_2D", (1, 4, 4, 2), 2, 2, 2, 2,
                                                     out_shape=(1, 3, 3, 2)),
     ModelFormatError, "is declared [1, 3, 3, 2] but the op produces [1, 2, 2, 2]"),
    ("a filter past the extent limit", lambda: pool_graph("MAX_POOL_2D", (1, 4, 4, 2), (1 << 31) + 1, 2, 1, 1,
                                                          out_shape=(1, 1, 3, 2)),
     ModelFormatError, "reach past"),
]


@pytest.mark.parametrize("case", POOL_MALFORMED, ids=[c[0] for c in POOL_MALFORMED])
def test_malformed_pool_gives_the_python_paths_error(case, monkeypatch):
    _, make, error, fragment = case
    g = make()
    ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
    try:
        declined = load_ops.int8_pool_shell(ctx, g.ops[0], INT8) is None
    except EdgeMLError:      # (a refusal of Ctx.set_output's, raised by it)
        declined = True
    assert declined
    with pytest.raises(EdgeMLError) as fast:
        compile_graph(make(), {}, 0)
    monkeypatch.setattr(load_ops, "int8_pool_shell", lambda *args: None)
    with pytest.raises(EdgeMLError) as plain:
        compile_graph(make(), {}, 0)
    assert type(fast.value) is type(plain.value) is error
    assert str(fast.value) == str(plain.value)
    assert fragment in str(fast.value) and "op 0 (" in str(fast.value)


# ----- MEAN (int8_mean_shell) -------------------------------------------------------------------------------------

def mean_graph(shape, axes, keep=False, axes_dtype=np.int32, scales=(0.05, 0.03), zps=(3, -9), out_shape=None):
    if out_shape is None:
        out_shape = np.empty(shape).mean(axis=tuple(sorted(set(axes))), keepdims=keep).shape
    ts = [tensor(0, shape, np.int8, scales[0], zps[0]),
          tensor(1, (len(axes),), axes_dtype, data=np.asarray(axes, axes_dtype)),
          tensor(2, tuple(out_shape), np.int8, scales[1], zps[1])]
    return Graph(ts, [Op(0, "MEAN", 1, [0, 1], [2], {"keep_dims": keep})], [0], [2])


MEANS = [((1, 7, 9, 3), [1, 2]), ((1, 7, 9, 3), [-3, -2]), ((2, 5, 17), [2]), ((2, 5, 17), [0]), ((4, 6), [0, 1]),
         ((1, 1, 1, 1, 3, 5), [4]), ((3, 1, 5), [1]), ((2, 3, 4), [1, 1]), ((0, 3), [1]), ((6, 5), [])]


@pytest.mark.parametrize("rounding", [0, 1])
def test_mean_shell_plans_equal_the_python_path(rounding, monkeypatch):
    rng = np.random.default_rng(rounding)
    graphs = []
    for shape, axes in MEANS:
        for keep in (False, True):
            scales = tuple(float(v) for v in rng.uniform(0.001, 0.5, 2))
            graphs.append(mean_graph(shape, axes, keep, np.int32 if keep else np.int64, scales,
                                     tuple(int(v) for v in rng.integers(-128, 128, 2))))
    for g in graphs:
        ctx = new_context(g, {}, rounding, 1, 1 << 31, 1 << 31)
        assert load_ops.int8_mean_shell(ctx, g.ops[0], INT8, np.dtype(np.int32), np.dtype(np.int64)) is not None
    fast = [plan_values(g, rounding) for g in graphs]
    monkeypatch.setattr(load_ops, "int8_mean_shell", lambda *args: None)
    assert fast == [plan_values(g, rounding) for g in graphs]


MEAN_MALFORMED = [
    ("an axis past the rank", lambda: mean_graph((2, 3), [2], out_shape=(2,)), ModelFormatError,
     "axis 2 outside rank 2"),
    ("an axis below minus the rank", lambda: mean_graph((2, 3), [-3], out_shape=(2,)), ModelFormatError,
     "axis -3 outside rank 2"),
    ("a sum past int32", lambda: mean_graph((1, 1 << 24, 2), [1], out_shape=(1, 2)), UnsupportedOpError,
     "overflow the int32 sum"),
    ("rank 7", lambda: mean_graph((1, 1, 1, 2, 1, 1, 3), [3]), UnsupportedOpError, "rank > 6"),
    ("an output scale of zero", lambda: mean_graph((2, 3), [1], scales=(0.1, 0.0)), ModelFormatError,
     "has quantization scale 0.0"),
    ("a wrongly declared output", lambda: mean_graph((2, 3), [1], out_shape=(3,)), ModelFormatError,
     "is declared [3] but the op produces [2]"),
    ("a float32 output", lambda: with_tensor(mean_graph((2, 3), [1]), 2, dtype=np.dtype(np.float32), quant=None),
     UnsupportedOpError, "output type float32 differs from input type int8"),
    ("axes that are not constant", lambda: Graph(mean_graph((2, 3), [1]).tensors[:1] + [
        tensor(1, (1,), np.int32), mean_graph((2, 3), [1]).tensors[2]], [Op(0, "MEAN", 1, [0, 1], [2], {})],
        [0, 1], [2]), UnsupportedOpError, "must be a constant in the model file"),
]


@pytest.mark.parametrize("case", MEAN_MALFORMED, ids=[c[0] for c in MEAN_MALFORMED])
def test_malformed_mean_gives_the_python_paths_error(case, monkeypatch):
    _, make, error, fragment = case
    g = make()
    ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
    try:
        declined = load_ops.int8_mean_shell(ctx, g.ops[0], INT8, np.dtype(np.int32), np.dtype(np.int64)) is None
    except EdgeMLError:      # (a refusal of Ctx.set_output's, raised by it)
        declined = True
    assert declined
    with pytest.raises(EdgeMLError) as fast:
        compile_graph(make(), {}, 0)
    monkeypatch.setattr(load_ops, "int8_mean_shell", lambda *args: None)
    with pytest.raises(EdgeMLError) as plain:
        compile_graph(make(), {}, 0)
    assert type(fast.value) is type(plain.value) is error
    assert str(fast.value) == str(plain.value)
    assert fragment in str(fast.value) and "op 0 (" in str(fast.value)


def test_set_output_shape_leaves_numpy_and_negative_dims_to_ctx_set_output():
    g = binary_graph("ADD", (2, 3), (2, 3))
    ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
    load_ops.set_output_shape(ctx, g.ops[0], 0, (np.int64(2), np.int32(3)), g.tensors[2])
    assert ctx.shapes[2] == (2, 3) and all(type(d) is int for d in ctx.shapes[2])
    ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
    with pytest.raises(ModelFormatError, match="inferred a negative dimension for tensor 2"):
        load_ops.set_output_shape(ctx, g.ops[0], 0, (2, -3), with_tensor(g, 2, shape=(2, -3)).tensors[2])



def test_an_empty_output_whose_other_dims_overflow_is_refused_on_every_path():
    """(0, 2**31-1, 2**31-1, 2**31-1): no element, but numpy cannot shape an array so (found by fuzzing); the C
    shortcuts leave every empty output to Ctx.set_output, which refuses this one and keeps a plain empty one."""
    huge = (2, 0, 2**31 - 1, 2**31 - 1, 2**31 - 1)
    g = with_tensor(binary_graph("ADD", (2, 3), (2, 3)), 2, shape=huge)
    op = g.ops[0]
    for set_it in (lambda ctx: load_ops.set_output_shape(ctx, op, 0, huge, g.tensors[2]),
                   lambda ctx: load_shell.set_plain_output(ctx, op, 0, huge) or ctx.set_output(op, 0, huge)):
        ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
        with pytest.raises(ModelFormatError, match=r"op 0 .*tensor 2 .*holds no element.*multiply past"):
            set_it(ctx)
        assert 2 not in ctx.shapes
    empty = (2, 0, 3)
    g = with_tensor(binary_graph("ADD", (2, 3), (2, 3)), 2, shape=empty)
    ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
    assert load_shell.set_plain_output(ctx, g.ops[0], 0, empty) is False
    load_ops.set_output_shape(ctx, g.ops[0], 0, empty, g.tensors[2])
    assert ctx.shapes[2] == empty and ctx.producers[2] is g.ops[0]


# ----- RESIZE_BILINEAR / RESIZE_NEAREST_NEIGHBOR source tables, now computed as vectors --------------------------

@pytest.mark.parametrize("in_size", [1, 2, 3, 5, 7, 16, 33, 100, 513])
def test_resize_axes_equal_their_element_by_element_twins(in_size):
    from edgeml.runtime.ops import resize as R
    forms = [(R.bilinear_float_axis, R.bilinear_float_axis_loop),
             (R.bilinear_integer_axis, R.bilinear_integer_axis_loop), (R.nearest_axis, R.nearest_axis_loop)]
    for out_size in (1, 2, 3, 4, 8, 17, 65, 257, 513, 1025):
        for align, half in ((False, False), (True, False), (False, True)):
            for vector, loop in forms:
                got, want = vector(in_size, out_size, align, half), loop(in_size, out_size, align, half)
                got, want = (got,) if isinstance(got, np.ndarray) else got, (want,) if isinstance(want, np.ndarray) \
                    else want
                for a, b in zip(got, want):
                    assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), \
                        (vector.__name__, in_size, out_size, align, half)
