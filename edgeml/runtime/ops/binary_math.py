"""Element-wise binary math with broadcasting: DIV, FLOOR_DIV, FLOOR_MOD, POW, SQUARED_DIFFERENCE and PRELU
(cython_ops/include/em_math_binary.h).

float32 and int32 follow LiteRT's reference functions; int8 / uint8 DIV, int8 SQUARED_DIFFERENCE and int8 /
uint8 PRELU run LiteRT's fixed-point arithmetic with the multipliers its Prepare computes (in the float or double
precision it uses).  Inputs LiteRT refuses at run time -- a divisor equal to zero (or to its zero point), a
negative int32 exponent -- raise InputError after the invoke.
"""
from __future__ import annotations

from functools import partial

import numpy as np

from cython_ops.math_ops import BINARY_KINDS
from edgeml import numerics as Q
from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import Op
from edgeml.runtime.ops.common import fused_activation, qparams
from edgeml.runtime.ops.element_types import pad6_of
from edgeml.runtime.ops.elementwise import broadcast_shape, broadcast_strides
from edgeml.runtime.plan import Ctx, OpSpec, Step

F32, I32, S8, U8 = (np.dtype(t) for t in (np.float32, np.int32, np.int8, np.uint8))
INT32_MIN, INT32_MAX = -2**31, 2**31 - 1

TYPES = {
    "DIV": (F32, I32, S8, U8), "FLOOR_DIV": (F32, I32), "FLOOR_MOD": (F32, I32), "POW": (F32, I32),
    "SQUARED_DIFFERENCE": (F32, I32, S8), "PRELU": (F32, S8, U8),
}
# (op, type) pairs whose inputs LiteRT checks at run time, with what a refused input is
REFUSED = {("DIV", I32): "a division by zero", ("DIV", S8): "a division by zero",
           ("DIV", U8): "a division by zero", ("FLOOR_DIV", F32): "a division by zero",
           ("FLOOR_DIV", I32): "a division by zero", ("FLOOR_MOD", I32): "a division by zero",
           ("POW", I32): "a negative exponent"}
DIV_MAX_OUTPUT_SHIFT = 23    # keeps the quotient's final rescale a right shift (em_div_q) for any int8 inputs
SQUARED_DIFFERENCE_LEFT_SHIFT = 7


def int32_activation_range(act: str) -> tuple[int, int]:
    """CalculateActivationRange<int32_t>."""
    return {"NONE": (INT32_MIN, INT32_MAX), "RELU": (0, INT32_MAX), "RELU6": (0, 6), "RELU_N1_TO_1": (-1, 1)}[act]


def smaller_than_one(op: Op, real: float, what: str, rounding: int) -> tuple[int, int]:
    """QuantizeMultiplierSmallerThanOneExp: LiteRT aborts unless 0 < real < 1."""
    if not 0.0 < real < 1.0:
        raise UnsupportedOpError(f"{op.describe()}: the {what} multiplier {real!r} is not in (0, 1), which "
                                 "LiteRT's kernel requires")
    return Q.quantize_multiplier(real, rounding)


def quantized_params(ctx: Ctx, op: Op, which: str, a, b, y) -> dict:
    """The integer slots of math_binary_int8 / _uint8 for one op, from LiteRT's Prepare."""
    s1, z1 = qparams(a, op)
    s2, z2 = qparams(b, op)
    so, zo = qparams(y, op)
    f1, f2, fo = Q.F32(s1), Q.F32(s2), Q.F32(so)
    lo, hi = (-128, 127) if y.dtype == S8 else (0, 255)
    p = dict(zp1=z1, zp2=z2, out_zp=zo, mult1=0, shift1=0, mult2=0, shift2=0, out_mult=0, out_shift=0,
             left_shift=0, act_min=lo, act_max=hi, mode=ctx.rounding)
    if which == "DIV":
        if y.dtype == S8:
            p["act_min"], p["act_max"] = Q.activation_range_int8(fused_activation(op), so, zo)
        else:
            p["act_min"], p["act_max"] = uint8_activation_range(fused_activation(op), so, zo)
        # input1 / (input2 * output) scale, all in float
        p["out_mult"], p["out_shift"] = Q.quantize_multiplier(float(f1 / (f2 * fo)), ctx.rounding)
        if p["out_shift"] > DIV_MAX_OUTPUT_SHIFT:
            raise UnsupportedOpError(f"{op.describe()}: input scales {s1!r} / ({s2!r} * {so!r}) give a multiplier "
                                     f"of 2^{p['out_shift']}, past what LiteRT's fixed-point division handles")
    elif which == "SQUARED_DIFFERENCE":
        twice_max = 2.0 * float(max(f1, f2))
        p["left_shift"] = SQUARED_DIFFERENCE_LEFT_SHIFT
        p["mult1"], p["shift1"] = smaller_than_one(op, float(f1) / twice_max, "input 1", ctx.rounding)
        p["mult2"], p["shift2"] = smaller_than_one(op, float(f2) / twice_max, "input 2", ctx.rounding)
        p["out_mult"], p["out_shift"] = smaller_than_one(
            op, twice_max * twice_max / float(Q.F32(1 << 2 * SQUARED_DIFFERENCE_LEFT_SHIFT) * fo), "output",
            ctx.rounding)
    else:   # PRELU: x >= 0 rescaled by input / output scale, x < 0 by input * alpha / output scale (in float)
        p["mult1"], p["shift1"] = Q.quantize_multiplier(float(f1 / fo), ctx.rounding)
        p["mult2"], p["shift2"] = Q.quantize_multiplier(float(f1 * f2 / fo), ctx.rounding)
    return p


def uint8_activation_range(act: str, scale: float, zero_point: int) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for uint8: int8's bounds moved by 128 with the zero point."""
    lo, hi = Q.activation_range_int8(act, scale, zero_point - 128)
    return lo + 128, hi + 128


def prepare_binary_math(ctx: Ctx, op: Op, which: str) -> Step:
    if len(op.inputs) != 2:
        raise ModelFormatError(f"{op.describe()}: {which} takes two inputs, got {len(op.inputs)}")
    a, b, y = ctx.tensor(op, 0), ctx.tensor(op, 1), ctx.tensor(op, 0, "output")
    if not a.dtype == b.dtype == y.dtype:
        raise UnsupportedOpError(f"{op.describe()}: inputs {a.dtype}, {b.dtype} and output {y.dtype} must have "
                                 "one type")
    if a.dtype not in TYPES[which]:
        raise UnsupportedOpError(f"{op.describe()}: {which} on {a.dtype} is not supported "
                                 f"({', '.join(t.name for t in TYPES[which])})")
    sa, sb = ctx.shape(a), ctx.shape(b)
    out = broadcast_shape(op, sa, sb)
    if which == "PRELU" and tuple(out) != tuple(sa):
        raise ModelFormatError(f"{op.describe()}: alpha {list(sb)} does not broadcast to the input {list(sa)}")
    ctx.set_output(op, 0, out)
    ints = dict(dims=pad6_of(op, out), strides1=broadcast_strides(sa, out), strides2=broadcast_strides(sb, out),
                kind=BINARY_KINDS[which])
    refused = REFUSED.get((which, a.dtype)) or "an input LiteRT refuses"

    def check(status):             # the kernel writes its int32 word on every invoke: 1 after a refused input
        if not status[:4].view(np.int32)[0]:
            return None
        return f"{op.describe()}: {which} with {refused} (LiteRT refuses it at run time)"
    floats = {}
    if a.dtype in (S8, U8):
        ints.update(quantized_params(ctx, op, which, a, b, y))
        name = "math_binary_int8" if a.dtype == S8 else "math_binary_uint8"
    else:
        act = fused_activation(op) if which == "DIV" else "NONE"
        lo, hi = int32_activation_range(act)
        ints = dict(ints, int_min=lo, int_max=hi)
        floats = dict(zip(("act_min", "act_max"), Q.activation_range_f32(act)))
        name = "math_binary_f32" if a.dtype == F32 else "math_binary_i32"

    def make(addr):
        return (dict(input1=addr(a.index), input2=addr(b.index), output=addr(y.index), status=addr("status")),
                ints, floats)
    return Step(op, name, make, check=check)


OPS = {
    "DIV": OpSpec(partial(prepare_binary_math, which="DIV"), max_version=2, output_types=None),
    "FLOOR_DIV": OpSpec(partial(prepare_binary_math, which="FLOOR_DIV"), max_version=3, output_types=None),
    "FLOOR_MOD": OpSpec(partial(prepare_binary_math, which="FLOOR_MOD"), max_version=2, output_types=None),
    "POW": OpSpec(partial(prepare_binary_math, which="POW"), max_version=1, output_types=None),
    "SQUARED_DIFFERENCE": OpSpec(partial(prepare_binary_math, which="SQUARED_DIFFERENCE"), max_version=2,
                                 output_types=None),
    "PRELU": OpSpec(partial(prepare_binary_math, which="PRELU"), max_version=1, output_types=None),
}
