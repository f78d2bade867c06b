"""SOFTMAX, LOGISTIC, TANH, RELU, RELU6, RELU_N1_TO_1, LEAKY_RELU and HARD_SWISH, int8 and float32
(cython_ops/include/em_activations.h, em_elementwise.h).  uint8 tensors arrive held as int8 (q - 128): LiteRT's
uint8 forms of these ops compute on q - zero point alone, so the int8 steps give them exactly.

The int8 parameters reproduce LiteRT's Prepare step by step, in the precision it uses (float32 where its code
keeps the stored float scales, double where it widens them; TfLiteRound is std::round, ties away from zero):
LOGISTIC and TANH are the 256-entry tables LiteRT's reference resolver builds (LUTPopulate), SOFTMAX is
gemmlowp's fixed-point reference kernel.  HARD_SWISH (reference_ops::HardSwish in int16 fixed point), LEAKY_RELU
and the RELU family also run as 256-entry tables, each entry computed by the op's scalar kernel on that input
byte (edgeml/runtime/tables.py), so every int8 activation but SOFTMAX is one vector table lookup per element.
"""
from __future__ import annotations

from functools import partial

import math

import numpy as np

from cython_ops import load_activations, load_ops, load_tables
from cython_ops.activation import activation_table, softmax_table
from cython_ops.elementwise import UNARY_F32
from edgeml import numerics as Q
from edgeml.errors import UnsupportedOpError
from edgeml.ir import UINT8, Op
from edgeml.runtime.ops import float_kernels, int16_activations
from edgeml.numerics import quantize_multiplier
from edgeml.runtime.ops.common import element_count, io_kind, qparams
from edgeml.runtime.kernels import CONFIG
from edgeml.runtime.plan import Ctx, OpSpec, Step, address
from edgeml.runtime.tables import byte_table, lut_step


_INT32_MAX = 2**31 - 1
INT8 = np.dtype(np.int8)


def _f32(x: float) -> float:
    """Round a Python float to float32 and return it as a Python float (exact widening)."""
    return float(np.float32(x))


def calculate_input_radius(input_integer_bits: int, input_left_shift: int,
                           total_signed_bits: int = 31) -> int:
    """tflite::CalculateInputRadius (double arithmetic, floor)."""
    max_input_rescaled = (1.0 * ((1 << input_integer_bits) - 1)
                          * float(1 << (total_signed_bits - input_integer_bits))
                          / math.ldexp(1.0, input_left_shift))
    return int(math.floor(max_input_rescaled))


def _downscale_int32_to_int16_multiplier(m: int) -> int:
    """tflite::DownScaleInt32ToInt16Multiplier."""
    if m < 0:
        raise ValueError("DownScaleInt32ToInt16Multiplier: negative multiplier")
    rounding = 1 << 15
    if m >= _INT32_MAX - rounding:
        return 32767
    return (m + rounding) >> 16


# (scale, zero_point, scale tolerance) the reference kernels assume for their output.
_FIXED_OUTPUTS = {
    # LiteRT SigmoidPrepare: TF_LITE_ENSURE(output->params.scale == 1. / 256) (exact);
    # TFLite Micro: zero point must be -128.
    "LOGISTIC": (1.0 / 256, -128, 0.0),
    # LiteRT SoftmaxPrepare: zero point -128, |scale - 1/256| <= 0.001/256.
    "SOFTMAX": (1.0 / 256, -128, 0.001 / 256),
    # LiteRT's TANH reference path checks nothing (its LUT uses whatever output quantization the
    # model carries); the fixed-point kernel assumes 1/128, 0.  Same tolerance as SOFTMAX.
    "TANH": (1.0 / 128, 0, 0.001 / 128),
}


def check_fixed_output(op_name: str, scale: float, zero_point: int, uint8: bool = False) -> None:
    """Raise ValueError unless (scale, zero_point) is the output quantization ``op_name``
    requires (LOGISTIC/SOFTMAX: 1/256, -128; TANH: 1/128, 0).  uint8: a uint8 output held as
    int8 (zero point - 128); the message gives the file's uint8 zero points."""
    key = op_name.upper()
    if key not in _FIXED_OUTPUTS:
        raise ValueError(f"check_fixed_output: unknown op {op_name!r}")
    want_scale, want_zp, tol = _FIXED_OUTPUTS[key]
    s = _f32(scale)
    if int(zero_point) != want_zp or abs(s - want_scale) > tol:
        shown = 128 if uint8 else 0
        raise ValueError(
            f"{key} {'uint8' if uint8 else 'int8'} output must be quantized with scale {want_scale!r} and zero "
            f"point {want_zp + shown} (got scale {float(scale)!r}, zero point {int(zero_point) + shown})")


def softmax_int8_params(input_scale: float, beta: float,
                        rounding_mode: int = Q.ROUNDING_MODES["double"]) -> dict:
    """LiteRT SoftmaxPrepare<kReference> for int8: PreprocessSoftmaxScaling(double(beta),
    double(input_scale), 5) and diff_min = -CalculateInputRadius(5, left_shift).

    ``rounding_mode`` single (1) mirrors a TFLITE_SINGLE_ROUNDING build (different cap on
    the multiplier); pass the same mode to ``em_softmax_int8``.
    """
    k_scaled_diff_integer_bits = 5
    max_real = float((1 << 30) - 1) if rounding_mode == Q.ROUNDING_MODES["single"] else float((1 << 31) - 1)
    real = min(_f32(beta) * _f32(input_scale) * float(1 << (31 - k_scaled_diff_integer_bits)),
               max_real)
    if not real > 1.0:
        raise ValueError(
            f"SOFTMAX: beta * input_scale * 2^26 must exceed 1 (got {real!r}); "
            "LiteRT's QuantizeMultiplierGreaterThanOne rejects this model")
    multiplier, left_shift = quantize_multiplier(real, rounding_mode)
    if left_shift < 0:
        raise ValueError("SOFTMAX: negative input left shift")
    diff_min = int(-1.0 * calculate_input_radius(k_scaled_diff_integer_bits, left_shift))
    return {
        "input_multiplier": int(multiplier),
        "input_left_shift": int(left_shift),
        "diff_min": diff_min,
    }


def hard_swish_int8_params(input_scale: float, input_zero_point: int,
                           output_scale: float, output_zero_point: int) -> dict:
    """LiteRT HardSwishPrepare for int8 (float32 arithmetic, then QuantizeMultiplier on the
    widened float and DownScaleInt32ToInt16Multiplier)."""
    f32 = np.float32
    in_s = f32(input_scale)
    out_s = f32(output_scale)
    hires_input_scale = f32(f32(1.0) / f32(128.0)) * in_s
    reluish_scale = f32(3.0) / f32(32768.0)
    output_multiplier = f32(hires_input_scale / out_s)
    reluish_multiplier = f32(hires_input_scale / reluish_scale)

    out_m32, out_exp = quantize_multiplier(float(output_multiplier))
    if out_exp > 0:
        raise ValueError(
            "HARD_SWISH: input_scale / (128 * output_scale) must be < 1 "
            f"(output multiplier exponent {out_exp} > 0)")
    rel_m32, rel_exp = quantize_multiplier(float(reluish_multiplier))
    return {
        "input_zero_point": int(input_zero_point),
        "output_zero_point": int(output_zero_point),
        "reluish_multiplier_fixedpoint_int16": _downscale_int32_to_int16_multiplier(rel_m32),
        "reluish_multiplier_exponent": int(rel_exp),
        "output_multiplier_fixedpoint_int16": _downscale_int32_to_int16_multiplier(out_m32),
        "output_multiplier_exponent": int(out_exp),
    }


def prepare_unary(ctx: Ctx, op: Op, which: str) -> Step:
    # the int8 forms' checks and tables in one call (load_activations)
    if which == "SOFTMAX":
        made = load_activations.int8_softmax_shell(ctx, op, INT8)
        if made is not None:
            return softmax_step(op, *made)
    elif which in SHELL_TABLES:
        made = load_activations.int8_lut_activation_shell(ctx, op, SHELL_TABLES[which], INT8)
        if made is not None:
            return lut_step(op, *made)
    elif which == "HARD_SWISH":      # the int8 form's parameters, table and vector test in one call
        made = load_activations.int8_hard_swish_shell(ctx, op, INT8, CONFIG.isa in HARD_SWISH_VECTOR_PATHS)
        if made is not None:
            xi, yi, n, table, vector_ints = made
            if vector_ints is not None:
                return hard_swish_vector_step(op, xi, yi, n, vector_ints)
            return lut_step(op, xi, yi, n, table)
    head = load_ops.int8_unary_shell(ctx, op, INT8)     # the common int8 case's reading and checks in one call
    if head is not None:
        xi, yi, n, s_in, zp_in, s_out, zp_out = head
        tensors = ctx.graph.tensors
        return int8_unary_step(ctx, op, which, tensors[xi], tensors[yi], ctx.shapes[xi], n, s_in, zp_in, s_out,
                               zp_out)
    if int16_activations.is_int16(ctx, op):
        return int16_activations.prepare_unary(ctx, op, which)
    kind = io_kind(ctx, op)
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    xs = ctx.shape(x)
    ctx.set_output(op, 0, xs)
    n = element_count(xs)

    if kind == "f32":
        if which == "SOFTMAX":
            depth = xs[-1] if xs else 1
            ints, floats, name = dict(rows=n // max(depth, 1), depth=depth), dict(beta=op.options.get("beta", 1.0)), \
                "softmax_f32"
        else:
            lo, hi, alpha = -Q.FLOAT_MAX, Q.FLOAT_MAX, 0.0
            code = UNARY_F32["clamp"]
            if which in ("RELU", "RELU6", "RELU_N1_TO_1"):
                lo, hi = Q.activation_range_f32(which)
            elif which == "LEAKY_RELU":
                code, alpha = UNARY_F32["leaky_relu"], op.options.get("alpha", 0.2)
            else:
                code = UNARY_F32[{"LOGISTIC": "logistic", "TANH": "tanh", "HARD_SWISH": "hard_swish"}[which]]
            ints, floats, name = dict(n=n, kind=code), dict(act_min=lo, act_max=hi, alpha=alpha), "unary_f32"
            name = float_kernels.activation_kernel(code) or name     # float32 SIMD kernels (em_float_elementwise.h)

        def make_f(addr):
            return dict(input=addr(x.index), output=addr(y.index)), ints, floats
        return Step(op, name, make_f, 0)

    s_in, zp_in = qparams(x, op)
    s_out, zp_out = qparams(y, op)
    return int8_unary_step(ctx, op, which, x, y, xs, n, s_in, zp_in, s_out, zp_out)


def int8_unary_step(ctx: Ctx, op: Op, which: str, x, y, xs: tuple, n: int, s_in: float, zp_in: int, s_out: float,
                    zp_out: int) -> Step:
    """An int8 activation's step once its output shape is set and its quantization read."""
    if which == "SOFTMAX":
        try:
            check_fixed_output("SOFTMAX", s_out, zp_out, bool(op.options.get(UINT8)))
            p = softmax_int8_params(s_in, op.options.get("beta", 1.0), ctx.rounding)
        except ValueError as exc:
            raise UnsupportedOpError(f"{op.describe()}: {exc}") from exc
        depth = xs[-1] if xs else 1
        # the fixed-point exp of each max - x, looked up (softmax_int8 computes it per element: same bits)
        table = ctx.keep_array(softmax_table(p["input_multiplier"], p["input_left_shift"], p["diff_min"],
                                             ctx.rounding, depth == 2))
        return softmax_step(op, x.index, y.index, n // max(depth, 1), depth, table)
    # the RELU family's table in one C call where it can (its twin: int8_activation_table)
    table = load_tables.relu_table(ctx, RELU_KINDS[which], s_in, zp_in, s_out, zp_out, INT8) \
        if which in RELU_KINDS else None
    if table is None:
        table = ctx.keep_array(int8_activation_table(op, which, s_in, zp_in, s_out, zp_out, ctx.rounding))
    if which == "HARD_SWISH" and CONFIG.isa in HARD_SWISH_VECTOR_PATHS:
        step = hard_swish_avx2_step(op, x, y, n, table, hard_swish_int8_params(s_in, zp_in, s_out, zp_out))
        if step is not None:
            return step
    return lut_step(op, x.index, y.index, n, table)


def softmax_step(op: Op, xi: int, yi: int, rows: int, depth: int, table: np.ndarray) -> Step:
    """int8 SOFTMAX's step: softmax_lut_int8 over the kept em_softmax_int8_table."""
    ints = dict(rows=rows, depth=depth)

    def make(addr):
        return dict(input=addr(xi), output=addr(yi), table=address(table)), ints, {}
    return Step(op, "softmax_lut_int8", make, 0)


def hard_swish_avx2_step(op: Op, x, y, n: int, table: np.ndarray, p: dict):
    """HARD_SWISH's arithmetic vectorized (em_activations.h em_hard_swish_int8_avx2: ~1.5x the AVX2 256-entry
    lookup), used only when it gives the table's bytes on all 256 inputs; None otherwise."""
    ints = dict(in_zp=p["input_zero_point"], out_zp=p["output_zero_point"],
                reluish_mult=p["reluish_multiplier_fixedpoint_int16"],
                reluish_exponent=p["reluish_multiplier_exponent"],
                out_mult=p["output_multiplier_fixedpoint_int16"], out_exponent=p["output_multiplier_exponent"])
    if not np.array_equal(byte_table("hard_swish_int8_avx2", ints), table):
        return None
    return hard_swish_vector_step(op, x.index, y.index, n, ints)


def hard_swish_vector_step(op: Op, xi: int, yi: int, n: int, ints: dict) -> Step:
    """em_hard_swish_int8_avx2 over n elements, `ints` its parameters (n aside)."""
    ints = dict(ints, n=n)

    def make(addr):
        return dict(input=addr(xi), output=addr(yi)), ints, {}
    return Step(op, "hard_swish_int8_avx2", make, 0)


HARD_SWISH_VECTOR_PATHS = ("avx2", "avxvnni")      # the paths whose HARD_SWISH computes instead of looking up


RELU_KINDS = {"RELU": 0, "RELU6": 1, "RELU_N1_TO_1": 2}       # load_tables.relu_table's `which`
SHELL_TABLES = {"LOGISTIC": 0, "TANH": 1}       # load_activations.int8_lut_activation_shell's `which`


def float32_quotient(a: float, b: float, what: str, product: bool = False) -> float:
    """float32(a) / float32(b) in float32 (a float32 product already when `product`), as a Python float; a
    ValueError naming `what` where it is not finite (a scale ratio past float32), without numpy's warning."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        q = (np.float32(a) if product else Q.F32(a)) / Q.F32(b)
    if not np.isfinite(q):
        raise ValueError(f"{what} ({a!r} / {b!r}) is not finite in float32")
    return float(q)


def int8_activation_table(op: Op, which: str, s_in: float, zp_in: int, s_out: float, zp_out: int,
                          rounding: int) -> np.ndarray:
    """The 256-entry table (indexed by the input byte) of an int8 activation, each entry computed by the
    arithmetic LiteRT's reference kernel applies to that input: LUTPopulate for LOGISTIC / TANH, the scalar
    kernels of the RELU family, LEAKY_RELU and HARD_SWISH run on every byte (tables.byte_table)."""
    try:
        if which in RELU_KINDS:
            # ReluPrepare divides in float; QuantizedReluX rounds act_min/scale with roundf in float
            m, sh = Q.quantize_multiplier(float32_quotient(s_in, s_out, "input scale / output scale"), rounding)
            lo_f, hi_f = {"RELU": (0.0, None), "RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0)}[which]
            amin = max(-128, zp_out + int(Q.round_half_away(float32_quotient(lo_f, s_out, "activation minimum"))))
            amax = 127 if hi_f is None else \
                min(127, zp_out + int(Q.round_half_away(float32_quotient(hi_f, s_out, "activation maximum"))))
            return byte_table("requantize_int8", dict(in_zp=zp_in, out_zp=zp_out, mult=m, shift=sh, act_min=amin,
                                                      act_max=amax, mode=rounding))
        if which == "LEAKY_RELU":
            alpha = float(Q.F32(op.options.get("alpha", 0.2)))
            ma, sa = Q.quantize_multiplier(float32_quotient(float(Q.F32(s_in)) * alpha, s_out,
                                                            "input scale * alpha / output scale", product=True),
                                           rounding)
            mi, si = Q.quantize_multiplier(float32_quotient(s_in, s_out, "input scale / output scale"), rounding)
            return byte_table("leaky_relu_int8", dict(in_zp=zp_in, out_zp=zp_out, mult_identity=mi,
                                                      shift_identity=si, mult_alpha=ma, shift_alpha=sa, mode=rounding))
        if which in ("LOGISTIC", "TANH"):
            check_fixed_output(which, s_out, zp_out, bool(op.options.get(UINT8)))
            return activation_table(which, s_in, zp_in, s_out, zp_out)
        if which == "HARD_SWISH":
            p = hard_swish_int8_params(s_in, zp_in, s_out, zp_out)
            return byte_table("hard_swish_int8", dict(in_zp=p["input_zero_point"], out_zp=p["output_zero_point"],
                                                      reluish_mult=p["reluish_multiplier_fixedpoint_int16"],
                                                      reluish_exponent=p["reluish_multiplier_exponent"],
                                                      out_mult=p["output_multiplier_fixedpoint_int16"],
                                                      out_exponent=p["output_multiplier_exponent"]))
    except ValueError as exc:
        raise UnsupportedOpError(f"{op.describe()}: {exc}") from exc
    raise UnsupportedOpError(f"{op.describe()}: not supported for int8")


WITH_INT16 = int16_activations.WITH_INT16
OPS = {
    "SOFTMAX": OpSpec(partial(prepare_unary, which="SOFTMAX"), max_version=3, output_types=WITH_INT16),
    "LOGISTIC": OpSpec(partial(prepare_unary, which="LOGISTIC"), max_version=3, output_types=WITH_INT16),
    "TANH": OpSpec(partial(prepare_unary, which="TANH"), max_version=3, output_types=WITH_INT16),
    "RELU": OpSpec(partial(prepare_unary, which="RELU"), max_version=3, output_types=WITH_INT16),
    "RELU6": OpSpec(partial(prepare_unary, which="RELU6"), max_version=3, output_types=WITH_INT16),
    "RELU_N1_TO_1": OpSpec(partial(prepare_unary, which="RELU_N1_TO_1"), max_version=2,
                            output_types=WITH_INT16),
    "LEAKY_RELU": OpSpec(partial(prepare_unary, which="LEAKY_RELU"), max_version=2, output_types=WITH_INT16),
    "HARD_SWISH": OpSpec(partial(prepare_unary, which="HARD_SWISH"), max_version=1),
}
