"""LOG_SOFTMAX and L2_NORMALIZATION over the last axis, float32 and int8 (L2_NORMALIZATION also uint8)
(cython_ops/include/em_normalize.h).

The int8 kernels are LiteRT's reference fixed-point ones; their fixed output quantization (LOG_SOFTMAX 16/256 and
zero point 127, L2_NORMALIZATION 1/128 and 0, uint8 128) is required as LiteRT's Prepare requires it, and the
LOG_SOFTMAX input scaling is PreprocessLogSoftmaxScalingExp computed in double.
"""
from __future__ import annotations

import math
from functools import partial

import numpy as np

from edgeml import numerics as Q
from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import Op
from edgeml.runtime.ops.common import ACTIVATIONS, element_count, qparams
from edgeml.runtime.plan import Ctx, OpSpec, Step

F32, S8, U8 = (np.dtype(t) for t in (np.float32, np.int8, np.uint8))
LOG_SOFTMAX_DIFF_BITS = 5         # kScaledDiffIntegerBits: input differences in Q5.26
# output (scale, zero point) LiteRT's Prepare requires, by op and type
FIXED_OUTPUTS = {("LOG_SOFTMAX", S8): (16.0 / 256, 127), ("L2_NORMALIZATION", S8): (1.0 / 128, 0),
                 ("L2_NORMALIZATION", U8): (1.0 / 128, 128)}
TYPES = {"LOG_SOFTMAX": (F32, S8), "L2_NORMALIZATION": (F32, S8, U8)}


def input_radius(integer_bits: int, left_shift: int) -> int:
    """tflite::CalculateInputRadius: the largest difference the input multiplier takes without overflow."""
    return int(math.floor(((1 << integer_bits) - 1) * float(1 << (31 - integer_bits)) / math.ldexp(1.0, left_shift)))


def log_softmax_params(op: Op, input_scale: float, rounding: int) -> dict:
    """PreprocessLogSoftmaxScalingExp(beta 1, input scale, 5 integer bits) and diff_min, as LiteRT's Prepare."""
    max_real = float((1 << 30) - 1) if rounding == Q.ROUNDING_MODES["single"] else float((1 << 31) - 1)
    real = min(1.0 * float(Q.F32(input_scale)) * float(1 << (31 - LOG_SOFTMAX_DIFF_BITS)), max_real)
    mult, left_shift = Q.quantize_multiplier(real, rounding)
    if not real > 1.0 or left_shift < 1:
        raise UnsupportedOpError(f"{op.describe()}: input scale {input_scale!r} is too small for LiteRT's "
                                 "fixed-point LOG_SOFTMAX")
    reverse = float(1 << (31 - left_shift)) / float(mult)
    if not 0.0 < reverse < 1.0:
        raise UnsupportedOpError(f"{op.describe()}: input scale {input_scale!r} gives a reverse scaling of "
                                 f"{reverse!r}, which LiteRT's fixed-point LOG_SOFTMAX does not take")
    reverse_mult, reverse_shift = Q.quantize_multiplier(reverse, rounding)
    return dict(in_mult=mult, in_shift=left_shift, reverse_mult=reverse_mult, reverse_shift=reverse_shift,
                diff_min=-input_radius(LOG_SOFTMAX_DIFF_BITS, left_shift))


def prepare_normalization(ctx: Ctx, op: Op, which: str) -> Step:
    if len(op.inputs) != 1:
        raise ModelFormatError(f"{op.describe()}: {which} takes one input, got {len(op.inputs)}")
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    if x.dtype != y.dtype or x.dtype not in TYPES[which]:
        raise UnsupportedOpError(f"{op.describe()}: {which} from {x.dtype} to {y.dtype} is not supported "
                                 f"({', '.join(t.name for t in TYPES[which])})")
    act = op.options.get("fused_activation_function", 0)
    if which == "L2_NORMALIZATION" and act != 0:
        raise UnsupportedOpError(f"{op.describe()}: fused activation {ACTIVATIONS.get(act, act)} (LiteRT's kernel "
                                 "takes none)")
    xs = ctx.shape(x)
    if not xs:
        raise ModelFormatError(f"{op.describe()}: {which} needs an input of rank 1 or more")
    ctx.set_output(op, 0, xs)
    depth = xs[-1]
    ints = dict(rows=element_count(xs) // depth if depth else 0, depth=depth, in_zp=0, in_mult=0, in_shift=0,
                reverse_mult=0, reverse_shift=0, diff_min=0, mode=ctx.rounding)
    base = "log_softmax" if which == "LOG_SOFTMAX" else "l2_norm"
    if x.dtype == F32:
        name = base + "_f32"
    else:
        s_in, zp_in = qparams(x, op)
        s_out, zp_out = qparams(y, op)
        want_scale, want_zp = FIXED_OUTPUTS[(which, x.dtype)]
        if float(Q.F32(s_out)) != want_scale or zp_out != want_zp:
            raise UnsupportedOpError(f"{op.describe()}: {x.dtype} output must have scale {want_scale!r} and zero "
                                     f"point {want_zp} (got {s_out!r}, {zp_out}), as LiteRT requires")
        ints["in_zp"] = zp_in
        if which == "LOG_SOFTMAX":
            ints.update(log_softmax_params(op, s_in, ctx.rounding))
        name = base + ("_int8" if x.dtype == S8 else "_uint8")

    def make(addr):
        return dict(input=addr(x.index), output=addr(y.index)), ints, {}
    return Step(op, name, make)


OPS = {
    "LOG_SOFTMAX": OpSpec(partial(prepare_normalization, which="LOG_SOFTMAX"), max_version=2, output_types=None),
    "L2_NORMALIZATION": OpSpec(partial(prepare_normalization, which="L2_NORMALIZATION"), max_version=2,
                               output_types=None),
}
