"""Issue 15, load time: the int8 SOFTMAX, LOGISTIC, TANH and int8 -> int8 QUANTIZE prepares in one C call
(cython_ops/load_activations.pyx) build the plan their Python twins (ops/activations.prepare_unary,
ops/quantize.prepare_quantize) build: the same kernel, integers and kept table
bytes over awkward shapes (ranks 0-6, size-1 and empty dims, depth 1 and 2), random quantization, betas and both
roundings; every form they decline keeps the Python path's plan or its exact error."""
from __future__ import annotations

import numpy as np
import pytest

from cython_ops import load_activations
from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import Graph, Op, Quantization
from edgeml.runtime.compile import compile_graph, new_context
from edgeml.runtime.ops.activations import SHELL_TABLES, hard_swish_int8_params
from edgeml.runtime.tables import byte_table
from load_twins import assert_same_plan, forced_isa
from path_cases import tensor
from test_load_ops import plan_values

INT8 = np.dtype(np.int8)
FIXED = {"SOFTMAX": (1 / 256, -128), "LOGISTIC": (1 / 256, -128), "TANH": (1 / 128, 0), "QUANTIZE": (None, None),
         "HARD_SWISH": (None, None)}
SHAPES = [(1, 10), (3,), (2, 3, 4, 5), (), (1, 1, 1, 1, 1, 7), (0, 4), (2, 1, 5), (5, 1), (4, 2), (1, 3, 3, 17)]


def unary_graph(which, shape, s_in, zp_in, s_out=None, zp_out=None, dtype=np.int8, out_shape=None, quant=None,
                **options):
    fixed = FIXED[which] if FIXED[which][0] is not None else (0.07, -3)
    x = tensor(0, shape, dtype, s_in, zp_in)
    if quant is not None:
        x = type(x)(**{**x.__dict__, "quant": quant})
    y = tensor(1, shape if out_shape is None else out_shape, dtype, fixed[0] if s_out is None else s_out,
               fixed[1] if zp_out is None else zp_out)
    return Graph([x, y], [Op(0, which, 1, [0], [1], options)], [0], [1])


def kept(graph, rounding=0):
    """Every array the plan keeps: (type, shape, bytes)."""
    plan = compile_graph(graph, {}, rounding)
    return [(a.dtype.str, a.shape, a.tobytes()) for a in plan.keep if isinstance(a, np.ndarray)]


def shell(which, ctx, op):
    if which == "QUANTIZE":
        return load_activations.int8_requantize_shell(ctx, op, INT8)
    if which == "SOFTMAX":
        return load_activations.int8_softmax_shell(ctx, op, INT8)
    return load_activations.int8_lut_activation_shell(ctx, op, SHELL_TABLES[which], INT8)


def python_path(monkeypatch):
    monkeypatch.setattr(load_activations, "int8_softmax_shell", lambda *args: None)
    monkeypatch.setattr(load_activations, "int8_lut_activation_shell", lambda *args: None)
    monkeypatch.setattr(load_activations, "int8_requantize_shell", lambda *args: None)


def random_graphs(which, rng):
    graphs = []
    for shape in SHAPES:
        s_in = float(rng.uniform(0.002, 0.5))
        zp_in = int(rng.integers(-128, 128))
        options = {}
        if which == "SOFTMAX":
            options["beta"] = [1.0, 0.5, 2.0, 1, 0.37][len(graphs) % 5]
        graphs.append(unary_graph(which, shape, s_in, zp_in, **options))
    if which == "QUANTIZE":       # (any output quantization: rescales up and down, uint8 <-> int8's 128 shift)
        for s_in, zp_in, s_out, zp_out in ((0.0078, -1, 0.0039, -128), (0.5, 127, 1e-3, -128), (1e-4, 0, 3.0, 5),
                                           (0.1, -128, 0.1, 0), (0.02, 7, 0.02, 7)):
            graphs.append(unary_graph(which, (1, 9, 9, 3), s_in, zp_in, s_out, zp_out))
    elif which != "LOGISTIC":       # (LOGISTIC's output scale is exact: TANH and SOFTMAX allow 0.001 of it)
        scale, zp = FIXED[which]
        graphs.append(unary_graph(which, (2, 6), 0.1, 3, s_out=scale * (1 + 0.0009), zp_out=zp))
    graphs.append(unary_graph(which, (3, 7), 0.05, -5, uint8=True))     # (uint8 held as int8: same arithmetic)
    return graphs


@pytest.mark.parametrize("which", ["SOFTMAX", "LOGISTIC", "TANH", "QUANTIZE"])
@pytest.mark.parametrize("rounding", [0, 1])
def test_activation_shells_plans_equal_the_python_path(which, rounding, monkeypatch):
    graphs = random_graphs(which, np.random.default_rng(len(which) * 3 + rounding))
    for g in graphs:      # the shell takes each of these
        ctx = new_context(g, {}, rounding, 1, 1 << 31, 1 << 31)
        assert shell(which, ctx, g.ops[0]) is not None
        assert ctx.shapes[1] == g.tensors[1].shape
    fast = [(plan_values(g, rounding), kept(g, rounding)) for g in graphs]
    python_path(monkeypatch)
    plain = [(plan_values(g, rounding), kept(g, rounding)) for g in graphs]
    assert [f[0] for f in fast] == [p[0] for p in plain]
    assert fast == plain


# (what, graph, error type or None (planned by the Python path), message fragment): each declined by the shells
DECLINED = [
    ("SOFTMAX with the wrong output zero point", lambda: unary_graph("SOFTMAX", (1, 4), 0.1, 0, zp_out=0),
     UnsupportedOpError, "SOFTMAX int8 output must be quantized with scale 0.00390625 and zero point -128"),
    ("uint8 SOFTMAX with the wrong output scale", lambda: unary_graph("SOFTMAX", (1, 4), 0.1, 0, s_out=1 / 255,
                                                                      uint8=True),
     UnsupportedOpError, "SOFTMAX uint8 output must be quantized with scale 0.00390625 and zero point 0"),
    ("SOFTMAX with beta * scale * 2^26 below 1", lambda: unary_graph("SOFTMAX", (1, 4), 1e-9, 0, beta=1e-2),
     UnsupportedOpError, "must exceed 1"),
    ("LOGISTIC with an output scale off 1/256", lambda: unary_graph("LOGISTIC", (1, 4), 0.1, 0, s_out=1 / 256 * 1.0001),
     UnsupportedOpError, "LOGISTIC int8 output must be quantized"),
    ("TANH with the wrong output zero point", lambda: unary_graph("TANH", (1, 4), 0.1, 0, zp_out=-128),
     UnsupportedOpError, "TANH int8 output must be quantized with scale 0.0078125 and zero point 0"),
    ("SOFTMAX per-channel input", lambda: unary_graph("SOFTMAX", (2, 3), 0.1, 0, quant=Quantization(
        np.array([0.1, 0.2, 0.3]), np.zeros(3, np.int64), 1)), ModelFormatError, "must be quantized per tensor"),
    ("LOGISTIC without input quantization", lambda: unary_graph("LOGISTIC", (2, 3), None, 0), ModelFormatError,
     "has no quantization parameters"),
    ("TANH with a zero input scale", lambda: unary_graph("TANH", (2, 3), 0.0, 0), ModelFormatError,
     "has quantization scale 0.0"),
    ("SOFTMAX with a wrongly declared output", lambda: unary_graph("SOFTMAX", (2, 3), 0.1, 0, out_shape=(3, 3)),
     ModelFormatError, "is declared [3, 3] but the op produces [2, 3]"),
    ("LOGISTIC with a wrongly declared output", lambda: unary_graph("LOGISTIC", (2, 3), 0.1, 0, out_shape=(2, 2)),
     ModelFormatError, "is declared [2, 2] but the op produces [2, 3]"),
    ("SOFTMAX with a string beta", lambda: unary_graph("SOFTMAX", (2, 3), 0.1, 0, beta="1"), None, None),
    ("SOFTMAX of rank 7", lambda: unary_graph("SOFTMAX", (1, 1, 2, 1, 1, 1, 3), 0.1, 0), None, None),
    ("SOFTMAX with an integer beta past 2^24", lambda: unary_graph("SOFTMAX", (2, 3), 0.1, 0, beta=(1 << 24) + 1),
     None, None),
    ("int16 LOGISTIC", lambda: unary_graph("LOGISTIC", (2, 3), 0.1, 0, 1 / 32768, 0, dtype=np.int16), None, None),
    ("float SOFTMAX", lambda: unary_graph("SOFTMAX", (2, 3), None, 0, None, None, dtype=np.float32), None, None),
    ("float TANH", lambda: unary_graph("TANH", (2, 3), None, 0, None, None, dtype=np.float32), None, None),
    ("QUANTIZE with a zero point past 2^16", lambda: unary_graph("QUANTIZE", (2, 3), 0.1, 70000), None, None),
    ("QUANTIZE per-channel input", lambda: unary_graph("QUANTIZE", (2, 3), 0.1, 0, quant=Quantization(
        np.array([0.1, 0.2, 0.3]), np.zeros(3, np.int64), 1)), ModelFormatError, "must be quantized per tensor"),
    ("QUANTIZE with a wrongly declared output", lambda: unary_graph("QUANTIZE", (2, 3), 0.1, 0, out_shape=(6,)),
     ModelFormatError, "is declared [6] but the op produces [2, 3]"),
]


def strip_quant_for_float(g):
    for t in g.tensors:
        if t.dtype == np.float32:
            t.quant = None
    return g


ACTIVATION_SHELLS = [(load_activations, name) for name in ("int8_softmax_shell", "int8_lut_activation_shell",
                                                            "int8_requantize_shell", "int8_hard_swish_shell")]


@pytest.mark.parametrize("case", DECLINED, ids=[c[0] for c in DECLINED])
def test_declined_forms_keep_the_python_paths_result(case):
    what, make, error, fragment = case
    build = lambda: strip_quant_for_float(make())     # noqa: E731
    g = build()
    which = g.ops[0].type
    ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
    if error is None or "declared" not in fragment:
        assert shell(which, ctx, g.ops[0]) is None
        assert ctx.weight_bytes == 0 and 1 not in ctx.shapes       # (nothing kept, no shape set)
    found = assert_same_plan(build, ACTIVATION_SHELLS, error=error, fragment=fragment)
    if error is not None:
        assert found[1].startswith(f"op 0 ({which} v")


@pytest.mark.parametrize("rounding", [0, 1])
def test_requantize_tables_equal_the_python_arithmetic_over_many_scales(rounding):
    """The multiplier from double(float32(s_in)) / double(float32(s_out)) (a float32 quotient changes some of
    these tables), then em_mbqm per byte: the bytes elementwise.requantize_table gives."""
    from cython_ops.elementwise import requantize_table
    from edgeml import numerics as Q
    rng = np.random.default_rng(256 + rounding)
    # (two of 20000 random pairs whose tables a float32 quotient changes, then random ones)
    cases = [(0.23028958449495016, 58, 0.11463303084725798, 46), (1.6813180701644845, -62, 2.984811835436726, 3)]
    for _ in range(300):
        s_in, s_out = (float(10.0 ** v) for v in rng.uniform(-4, 0.5, 2))
        cases.append((s_in, int(rng.integers(-128, 128)), s_out, int(rng.integers(-128, 128))))
    for s_in, zp_in, s_out, zp_out in cases:
        g = unary_graph("QUANTIZE", (4,), s_in, zp_in, s_out, zp_out)
        ctx = new_context(g, {}, rounding, 1, 1 << 31, 1 << 31)
        table = load_activations.int8_requantize_shell(ctx, g.ops[0], INT8)[3]
        m, sh = Q.quantize_multiplier(np.float64(Q.F32(s_in)) / np.float64(Q.F32(s_out)), rounding)
        assert table.tobytes() == requantize_table(zp_in, zp_out, m, sh, -128, 127, rounding), (s_in, s_out)


# ----- int8 HARD_SWISH (load_activations.int8_hard_swish_shell; twin: activations.prepare_unary's int8 path) -----

HARD_SWISH_SHELL = [(load_activations, "int8_hard_swish_shell")]
HARD_SWISH_SHAPES = [(1, 10), (3,), (), (2, 3, 4, 5), (1, 1, 1, 1, 1, 7), (0, 4), (2, 1, 5), (1, 5, 5, 33), (4, 2)]


def hard_swish_graph(shape, s_in, zp_in, s_out, zp_out, **kw):
    return unary_graph("HARD_SWISH", shape, s_in, zp_in, s_out, zp_out, **kw)


@pytest.mark.parametrize("isa", ["avx2", "avxvnni", "scalar", "avx512vnni"])
def test_hard_swish_shell_plans_equal_the_python_path(isa):
    """Ranks 0-6, size-1 and empty dims, random quantizations (output scales above and below the input's), uint8
    held as int8: the same kernel (the vector one where its bytes equal the table's, on the AVX2 paths), the
    same integers and the same kept table."""
    rng = np.random.default_rng(17)
    with forced_isa(isa):
        for k, shape in enumerate(HARD_SWISH_SHAPES * 3):
            s_in, s_out = float(rng.uniform(0.004, 0.3)), float(rng.uniform(0.01, 0.2))
            zp_in, zp_out = (int(v) for v in rng.integers(-128, 128, 2))
            build = lambda: hard_swish_graph(shape, s_in, zp_in, s_out, zp_out, uint8=k % 4 == 3)   # noqa: E731
            ctx = new_context(build(), {}, 0, 1, 1 << 31, 1 << 31)
            made = load_activations.int8_hard_swish_shell(ctx, ctx.graph.ops[0], INT8, isa in ("avx2", "avxvnni"))
            assert made is not None and ctx.shapes[1] == shape
            steps = assert_same_plan(build, HARD_SWISH_SHELL, rounding=k % 2)[0]
            assert steps[0][0] == ("hard_swish_int8_avx2" if made[4] is not None else "lut_int8")


def test_hard_swish_tables_and_integers_equal_the_python_arithmetic_over_many_scales():
    """The float32 parameter arithmetic (HardSwishPrepare) and the table over 2003 scale pairs spanning four
    decades, extreme zero points included: bytes and integers equal hard_swish_int8_params + the scalar kernel."""
    rng = np.random.default_rng(2)
    # (three pairs whose int16 output multiplier a double quotient would change, then random ones)
    pairs = [(0.00016830924494061125, 0.0007184819520410794), (0.08588718982300372, 0.001647623220679194),
             (0.00457331303031993, 0.20913048015882613)]
    pairs += [tuple(float(10.0 ** v) for v in rng.uniform(-4, 0, 2)) for _ in range(2000)]
    checked = 0
    for s_in, s_out in pairs:
        zp_in, zp_out = (int(v) for v in rng.choice([-128, 127, 0, *rng.integers(-128, 128, 3)], 2))
        g = hard_swish_graph((5,), s_in, zp_in, s_out, zp_out)
        ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
        made = load_activations.int8_hard_swish_shell(ctx, g.ops[0], INT8, True)
        try:
            p = hard_swish_int8_params(s_in, zp_in, s_out, zp_out)
        except ValueError:
            assert made is None and ctx.weight_bytes == 0 and 1 not in ctx.shapes, (s_in, s_out)
            continue
        ints = dict(in_zp=p["input_zero_point"], out_zp=p["output_zero_point"],
                    reluish_mult=p["reluish_multiplier_fixedpoint_int16"],
                    reluish_exponent=p["reluish_multiplier_exponent"],
                    out_mult=p["output_multiplier_fixedpoint_int16"], out_exponent=p["output_multiplier_exponent"])
        table = byte_table("hard_swish_int8", ints)
        assert made[3].tobytes() == table.tobytes(), (s_in, zp_in, s_out, zp_out)
        vector = byte_table("hard_swish_int8_avx2", ints)
        assert made[4] == (ints if np.array_equal(vector, table) else None), (s_in, zp_in, s_out, zp_out)
        checked += 1
    assert checked > 1000


# (what, graph, error type or None (planned by the Python path), message fragment): each declined by the shell
HARD_SWISH_DECLINED = [
    ("an output multiplier of 1 or more", lambda: hard_swish_graph((1, 4), 0.5, 0, 0.001, 0), UnsupportedOpError,
     "HARD_SWISH: input_scale / (128 * output_scale) must be < 1"),
    ("an output scale whose multiplier is not finite", lambda: hard_swish_graph((1, 4), 1e30, 0, 1e-30, 0),
     UnsupportedOpError, "cannot quantize multiplier inf"),
    ("a per-channel input", lambda: hard_swish_graph((2, 3), 0.1, 0, 0.1, 0, quant=Quantization(
        np.array([0.1, 0.2, 0.3]), np.zeros(3, np.int64), 1)), ModelFormatError, "must be quantized per tensor"),
    ("no input quantization", lambda: hard_swish_graph((2, 3), None, 0, 0.1, 0), ModelFormatError,
     "has no quantization parameters"),
    ("a wrongly declared output", lambda: hard_swish_graph((2, 3), 0.1, 0, 0.1, 0, out_shape=(3, 2)),
     ModelFormatError, "is declared [3, 2] but the op produces [2, 3]"),
    ("an input zero point past int32", lambda: hard_swish_graph((2, 3), 0.1, 1 << 33, 0.1, 0), None, None),
    ("rank 7", lambda: hard_swish_graph((1, 1, 2, 1, 1, 1, 3), 0.1, 0, 0.1, 0), None, None),
    ("float", lambda: strip_quant_for_float(hard_swish_graph((2, 3), None, 0, None, 0, dtype=np.float32)), None,
     None),
]


@pytest.mark.parametrize("case", HARD_SWISH_DECLINED, ids=[c[0] for c in HARD_SWISH_DECLINED])
def test_declined_hard_swish_forms_keep_the_python_paths_result(case):
    what, make, error, fragment = case
    g = make()
    ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
    if error is None or "declared" not in fragment:
        assert load_activations.int8_hard_swish_shell(ctx, g.ops[0], INT8, True) is None
        assert ctx.weight_bytes == 0 and 1 not in ctx.shapes       # (nothing kept, no shape set)
    found = assert_same_plan(make, HARD_SWISH_SHELL, error=error, fragment=fragment)
    if error is not None:
        assert found[1].startswith("op 0 (HARD_SWISH v1): ")


# ----- FLIP_SIGN_BIT (flip_sign_bit_shell): a uint8 model's boundary, uint8 <-> int8 ------------------------------
FLIP_SHELL = [(load_activations, "flip_sign_bit_shell")]
UINT8 = np.dtype(np.uint8)


def flip_graph(shape, x_dtype=np.uint8, y_dtype=np.int8, out_shape=None, inputs=(0,), op_inputs=(0,),
               op_outputs=(1,)):
    x, y = tensor(0, shape, x_dtype, 0.05, 3), tensor(1, shape if out_shape is None else out_shape, y_dtype, 0.05, 3)
    return Graph([x, y], [Op(0, "FLIP_SIGN_BIT", 1, list(op_inputs), list(op_outputs))], list(inputs), [1])


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtypes", [(np.uint8, np.int8), (np.int8, np.uint8)])
def test_flip_sign_bit_shell_plans_equal_the_python_path(shape, dtypes):
    g = flip_graph(shape, *dtypes)
    ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
    assert load_activations.flip_sign_bit_shell(ctx, g.ops[0], UINT8, INT8) == (0, 1, int(np.prod(shape)))
    assert ctx.shapes[1] == shape
    found = assert_same_plan(lambda: flip_graph(shape, *dtypes), FLIP_SHELL)
    assert [s[0] for s in found[0]] == ["onnx_flip_sign_bit"]


FLIP_DECLINED = [
    ("int8 to int8", lambda: flip_graph((2, 3), np.int8, np.int8), UnsupportedOpError,
     "sign-bit flip between int8 and int8"),
    ("uint8 to float32", lambda: flip_graph((2, 3), np.uint8, np.float32), UnsupportedOpError,
     "sign-bit flip between uint8 and float32"),
    ("a wrongly declared output", lambda: flip_graph((2, 3), out_shape=(3, 2)), ModelFormatError,
     "is declared [3, 2] but the op produces [2, 3]"),
    ("no output", lambda: flip_graph((2, 3), op_outputs=()), ModelFormatError, "missing output 0"),
    ("an omitted input", lambda: flip_graph((2, 3), op_inputs=(-1,)), ModelFormatError, "missing input 0"),
    ("an input nothing produces", lambda: flip_graph((2, 3), inputs=()), ModelFormatError,
     "is read before any op produces it"),
]


@pytest.mark.parametrize("case", FLIP_DECLINED, ids=[c[0] for c in FLIP_DECLINED])
def test_declined_flip_sign_bit_forms_keep_the_python_paths_error(case):
    what, make, error, fragment = case
    g = make()
    ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
    if "declared" not in fragment:
        assert load_activations.flip_sign_bit_shell(ctx, g.ops[0], UINT8, INT8) is None
        assert 1 not in ctx.shapes
    found = assert_same_plan(make, FLIP_SHELL, error=error, fragment=fragment)
    assert found[1].startswith("op 0 (FLIP_SIGN_BIT v") or found[1].startswith("tensor 0 ")


# ----- float32 -> int8 QUANTIZE (float_quantize_shell) ------------------------------------------------------------
QUANTIZE_SHELL = [(load_activations, "float_quantize_shell")]
F32 = np.dtype(np.float32)


def float_quantize_graph(shape, s_out, zp_out, out_dtype=np.int8, out_shape=None, quant=None):
    x = tensor(0, shape, np.float32)
    y = tensor(1, shape if out_shape is None else out_shape, out_dtype, s_out, zp_out)
    if quant is not None:
        y = type(y)(**{**y.__dict__, "quant": quant})
    return Graph([x, y], [Op(0, "QUANTIZE", 1, [0], [1])], [0], [1])


@pytest.mark.parametrize("shape", SHAPES)
def test_float_quantize_shell_plans_equal_the_python_path(shape):
    rng = np.random.default_rng(len(shape) * 7 + sum(shape))
    for s_out, zp_out in ((float(rng.uniform(1e-4, 2.0)), int(rng.integers(-128, 128))), (1 / 255, -128), (0.5, 0)):
        build = lambda: float_quantize_graph(shape, s_out, zp_out)      # noqa: E731
        g = build()
        ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
        made = load_activations.float_quantize_shell(ctx, g.ops[0], F32, INT8)
        assert made == (0, 1, int(np.prod(shape)), s_out, zp_out) and ctx.shapes[1] == shape
        found = assert_same_plan(build, QUANTIZE_SHELL)
        assert [s[0] for s in found[0]] == ["quantize_f32_int8"]


QUANTIZE_DECLINED = [
    ("an unquantized output", lambda: float_quantize_graph((2, 3), None, 0), ModelFormatError,
     "has no quantization parameters"),
    ("a zero output scale", lambda: float_quantize_graph((2, 3), 0.0, 0), ModelFormatError,
     "has quantization scale 0.0"),
    ("a per-channel output", lambda: float_quantize_graph((2, 3), 0.1, 0, quant=Quantization(
        np.array([0.1, 0.2, 0.3]), np.zeros(3, np.int64), 1)), ModelFormatError, "must be quantized per tensor"),
    ("a wrongly declared output", lambda: float_quantize_graph((2, 3), 0.1, 0, out_shape=(6,)), ModelFormatError,
     "is declared [6] but the op produces [2, 3]"),
    ("float32 to int16", lambda: float_quantize_graph((2, 3), 0.1, 0, np.int16), None, None),
    ("float32 to int32", lambda: float_quantize_graph((2, 3), 0.1, 0, np.int32), UnsupportedOpError,
     "quantizing to int32 is not supported"),
]


@pytest.mark.parametrize("case", QUANTIZE_DECLINED, ids=[c[0] for c in QUANTIZE_DECLINED])
def test_declined_float_quantize_forms_keep_the_python_paths_result(case):
    what, make, error, fragment = case
    g = make()
    ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
    if error is None or "declared" not in fragment:
        assert load_activations.float_quantize_shell(ctx, g.ops[0], F32, INT8) is None
        assert 1 not in ctx.shapes
    found = assert_same_plan(make, QUANTIZE_SHELL, error=error, fragment=fragment)
    if error is not None:
        assert found[1].startswith("op 0 (QUANTIZE v"), found
