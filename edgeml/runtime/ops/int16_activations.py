"""RELU, RELU6, RELU_N1_TO_1, LEAKY_RELU, LOGISTIC, TANH and SOFTMAX on int16 activations (the 16x8 scheme), as
LiteRT's reference kernels compute them."""
from __future__ import annotations

from edgeml import numerics as Q
from edgeml.errors import UnsupportedOpError
from edgeml.ir import Op
from edgeml.runtime.ops import int16x8
from edgeml.runtime.ops.common import element_count
from edgeml.runtime.plan import Ctx, Step

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
    m, sh = Q.quantize_multiplier(float(Q.F32(s_in) / Q.F32(s_out)), ctx.rounding)
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


def prepare_unary(ctx: Ctx, op: Op, which: str) -> Step:
    if which == "LEAKY_RELU":
        return int16x8.prepare_leaky_relu(ctx, op)
    if which in RELU_BOUNDS:
        return prepare_relu(ctx, op, which)
    raise UnsupportedOpError(f"{op.describe()}: {which} is not supported on int16")
