"""RELU, RELU6, RELU_N1_TO_1, LEAKY_RELU, LOGISTIC, TANH and SOFTMAX on int16 activations (the 16x8 scheme), as
LiteRT's reference kernels compute them."""
from __future__ import annotations

import math

import numpy as np

from edgeml import numerics as Q
from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import Op
from edgeml.runtime.ops import int16x8
from edgeml.runtime.ops.common import element_count
from edgeml.runtime.plan import Ctx, Step, address

WITH_INT16 = int16x8.WITH_INT16
is_int16 = int16x8.is_int16
RELU_BOUNDS = {"RELU": (0.0, None), "RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0)}


def prepare_relu(ctx: Ctx, op: Op, which: str) -> Step:
    """RELU / RELU6 / RELU_N1_TO_1 int16 (QuantizedReluX): requantize by s_in / s_out (divided in float), clamp
    to the bounds quantized with roundf in float."""
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    s_in, _ = int16x8.qparams16(x, op)
    s_out, _ = int16x8.qparams16(y, op)
    xs = ctx.shape(x)
    ctx.set_output(op, 0, xs)
    m, sh = int16x8.multiplier(ctx, op, float(Q.F32(s_in) / Q.F32(s_out)))
    lo_f, hi_f = RELU_BOUNDS[which]

    def q(f):
        return int(Q.round_half_away(float(Q.F32(f) / Q.F32(s_out))))
    amin = max(int16x8.INT16_MIN, q(lo_f))
    amax = int16x8.INT16_MAX if hi_f is None else min(int16x8.INT16_MAX, q(hi_f))
    ints = dict(n=element_count(xs), in_zp=0, out_zp=0, mult=m, shift=sh, act_min=amin, act_max=amax,
                mode=ctx.rounding)

    def make(addr):
        return dict(input=addr(x.index), output=addr(y.index)), ints, {}
    return Step(op, "requantize_int16_int16", make, 0)


def round_away(v: float) -> float:
    """std::round on a double."""
    return float(Q.round_half_away(v))


def interpolation_table(input_scale: float, input_zp: int, output_scale: float, fn) -> np.ndarray:
    """LiteRT's LUTPopulate<int16_t> in double: 512 steps over the int16 input range plus the end point, each entry
    nudged by half its midpoint interpolation error (read by em_lut513)."""
    in_min, in_max = input_scale * (-32768 - input_zp), input_scale * (32767 - input_zp)
    out_min, out_max = output_scale * -32768, output_scale * 32767
    step = (in_max - in_min) / 512
    inv = 65536.0 / (out_max - out_min)
    lut = np.zeros(513, np.int16)
    for i in range(512):
        val, mid, nxt = fn(in_min + i * step), fn(in_min + i * step + step / 2), fn(in_min + (i + 1) * step)
        sample = round_away(val * inv)
        err = round_away((nxt * inv + round_away(val * inv)) / 2) - round_away(mid * inv)
        lut[i] = min(max(sample - round_away(err / 2), -32768.0), 32767.0)
    lut[512] = min(max(round_away(fn(in_max) * inv), -32768.0), 32767.0)
    return lut


SOFTMAX_RANGE = 65535        # int16 max - min: the tables' [-10, 0] and [0, 1] inputs span it


def prepare_softmax(ctx: Ctx, op: Op) -> Step:
    """SOFTMAX int16 (SoftmaxInt16): output scale 1/32768 (within 0.1%), zero point 0; the scaled difference to the
    row maximum indexes an exp table, the row sum a 1 / (1 + x) table."""
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    s_in, _ = int16x8.qparams16(x, op)
    s_out, _ = int16x8.qparams16(y, op)
    if abs(float(Q.F32(s_out) - Q.F32(1.0 / 32768))) > float(Q.F32(0.001) * Q.F32(1.0 / 32768)):
        raise ModelFormatError(f"{op.describe()}: int16 SOFTMAX output {y.describe()} has scale {s_out}; LiteRT "
                               "requires 1/32768")
    xs = ctx.shape(x)
    if not 1 <= len(xs) <= 4:
        raise UnsupportedOpError(f"{op.describe()}: int16 SOFTMAX takes 1-D to 4-D input, got {len(xs)}-D")
    ctx.set_output(op, 0, xs)
    beta = Q.F32(op.options.get("beta", 1.0))
    m, sh = int16x8.multiplier(ctx, op, float(Q.F32(s_in) * beta) / (10.0 / 65535.0))
    exp_lut = ctx.keep_array(interpolation_table(10.0 / SOFTMAX_RANGE, 32767, 2.0 / SOFTMAX_RANGE, math.exp))
    recip_lut = ctx.keep_array(interpolation_table(1.0 / SOFTMAX_RANGE, -32768, 2.0 / SOFTMAX_RANGE,
                                                   lambda v: 1.0 / (1.0 + v)))
    depth = xs[-1]
    ints = dict(rows=element_count(xs) // max(depth, 1), depth=depth, in_mult=m, in_shift=sh, mode=ctx.rounding)

    def make(addr):
        return (dict(input=addr(x.index), output=addr(y.index), exp_table=address(exp_lut),
                     reciprocal_table=address(recip_lut)), ints, {})
    return Step(op, "softmax_int16", make, 0)


def prepare_logistic_tanh(ctx: Ctx, op: Op, which: str) -> Step:
    """LOGISTIC / TANH int16 (SigmoidPrepare / TanhPrepare): output scale 2^-15; a power-of-two input scale of
    2^-12 (TANH also 2^-11) multiplies by 3 << shift, any other by its scale * 3 * 4096 doubled until it passes
    32767 / 2 (truncated), with that many bits of rounding shift."""
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    s_in, _ = int16x8.qparams16(x, op)
    s_out, _ = int16x8.qparams16(y, op)
    if int16x8.log2_if_power_of_two(s_out) != -15 or (which == "LOGISTIC" and float(Q.F32(s_out)) != 1.0 / 32768):
        raise ModelFormatError(f"{op.describe()}: int16 {which} output {y.describe()} has scale {s_out}; LiteRT "
                               "requires 2^-15")
    xs = ctx.shape(x)
    ctx.set_output(op, 0, xs)
    log2_in = int16x8.log2_if_power_of_two(s_in)
    shift = None if log2_in is None else 12 + log2_in
    if shift is not None and (shift == 0 or (which == "TANH" and shift == 1)):
        mult, shift = 3 << shift, 0
    else:
        multiplier, shift = float(Q.F32(s_in)) * 4096.0 * 3.0, 0
        while multiplier <= 32767.0 / 2.0 and shift <= 30:
            shift += 1
            multiplier *= 2.0
        mult = int(multiplier)
    if mult >= 1 << 16:          # x * mult must stay inside int32
        raise UnsupportedOpError(f"{op.describe()}: int16 {which} input scale {s_in} is too large")
    ints = dict(n=element_count(xs), in_mult=mult, in_shift=shift)

    def make(addr):
        return dict(input=addr(x.index), output=addr(y.index)), ints, {}
    return Step(op, "logistic_int16" if which == "LOGISTIC" else "tanh_int16", make, 0)


def prepare_unary(ctx: Ctx, op: Op, which: str) -> Step:
    if which == "LEAKY_RELU":
        return int16x8.prepare_leaky_relu(ctx, op)
    if which in RELU_BOUNDS:
        return prepare_relu(ctx, op, which)
    if which == "SOFTMAX":
        return prepare_softmax(ctx, op)
    if which in ("LOGISTIC", "TANH"):
        return prepare_logistic_tanh(ctx, op, which)
    raise UnsupportedOpError(f"{op.describe()}: {which} is not supported on int16")
