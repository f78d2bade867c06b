"""Element-wise unary math: FLOOR, SQRT, RSQRT, EXP, LOG, ABS, NEG, SQUARE, ELU and GELU
(cython_ops/include/em_math_unary.h).

float32 calls the C library's functions as LiteRT's kernels do; int32 ABS / NEG wrap.  An int8 (uint8 for GELU)
op is a 256-entry table built at load, each entry computed with the arithmetic LiteRT's reference kernel applies
to that input value (LUTPopulate for EXP, LOG, ELU, GELU; the integer code of ABS and RSQRT; SQRT's float code),
so the table is bit-exact by construction.  LiteRT refuses int8 SQRT / RSQRT inputs below the zero point at run
time; those steps check every input and raise InputError.
"""
from __future__ import annotations

from functools import partial

import numpy as np

from cython_ops.math_ops import UNARY_KINDS, unary_table
from edgeml import numerics as Q
from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import Op
from edgeml.runtime.ops.common import element_count, qparams
from edgeml.runtime.plan import Ctx, OpSpec, Step, address
from edgeml.runtime.tables import lut_step

F32, I32, S8, U8 = (np.dtype(t) for t in (np.float32, np.int32, np.int8, np.uint8))

# the types LiteRT's kernel of each op accepts (and edgeml implements)
TYPES = {
    "FLOOR": (F32,), "SQUARE": (F32,), "NEG": (F32, I32), "ABS": (F32, I32, S8), "SQRT": (F32, S8),
    "RSQRT": (F32, S8), "EXP": (F32, S8), "LOG": (F32, S8), "ELU": (F32, S8), "GELU": (F32, S8, U8),
}
REFUSED_BELOW_ZERO_POINT = ("SQRT", "RSQRT")


def function_kind(op: Op, which: str) -> str:
    if which == "GELU":
        return "GELU_TANH" if op.options.get("approximate", False) else "GELU_ERF"
    return which


def prepare_unary_math(ctx: Ctx, op: Op, which: str) -> Step:
    if len(op.inputs) != 1:
        raise ModelFormatError(f"{op.describe()}: {which} takes one input, got {len(op.inputs)}")
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    if x.dtype != y.dtype:
        raise UnsupportedOpError(f"{op.describe()}: output type {y.dtype} differs from input type {x.dtype}")
    if x.dtype not in TYPES[which]:
        raise UnsupportedOpError(f"{op.describe()}: {which} on {x.dtype} is not supported "
                                 f"({', '.join(t.name for t in TYPES[which])})")
    xs = ctx.shape(x)
    ctx.set_output(op, 0, xs)
    n = element_count(xs)
    kind = function_kind(op, which)
    if x.dtype in (F32, I32):
        ints = dict(n=n, kind=UNARY_KINDS[kind])
        name = "math_unary_f32" if x.dtype == F32 else "math_unary_i32"

        def make(addr):
            return dict(input=addr(x.index), output=addr(y.index)), ints, {}
        return Step(op, name, make)

    s_in, zp_in = qparams(x, op)
    s_out, zp_out = qparams(y, op)
    mult = shift = 0
    rescale = False
    if which == "ABS":
        # SetAbsOutputMultiplier: input / output scale in float; the table only rescales when they differ
        rescale = bool(Q.F32(s_in) != Q.F32(s_out))
        mult, shift = Q.quantize_multiplier(float(Q.F32(s_in) / Q.F32(s_out)), ctx.rounding)
    elif which == "RSQRT":
        # SetRsqrtOutputMultiplier: 1 / (sqrt(input scale) * output scale), the product in float
        mult, shift = Q.quantize_multiplier(1.0 / float(np.sqrt(Q.F32(s_in)) * Q.F32(s_out)), ctx.rounding)
    table = unary_table(kind, x.dtype == S8, s_in, zp_in, s_out, zp_out, mult, shift, rescale, ctx.rounding)
    if which in REFUSED_BELOW_ZERO_POINT:
        kept = ctx.keep_array(table)
        def check(status):         # the kernel's int32 word: 1 after a refused input
            if not status[:4].view(np.int32)[0]:
                return None
            return (f"{op.describe()}: {which} of a value below the input zero point {zp_in} (a negative number): "
                    "LiteRT refuses it at run time")

        def make_checked(addr):
            return (dict(input=addr(x.index), output=addr(y.index), table=address(kept), status=addr("status")),
                    dict(n=n), {})
        return Step(op, "lut_checked", make_checked, check=check)
    return lut_step(op, x.index, y.index, n, ctx.keep_array(table[:256].view(np.int8)))


OPS = {
    "FLOOR": OpSpec(partial(prepare_unary_math, which="FLOOR"), max_version=1, output_types=None),
    "SQRT": OpSpec(partial(prepare_unary_math, which="SQRT"), max_version=2, output_types=None),
    "RSQRT": OpSpec(partial(prepare_unary_math, which="RSQRT"), max_version=3, output_types=None),
    "EXP": OpSpec(partial(prepare_unary_math, which="EXP"), max_version=2, output_types=None),
    "LOG": OpSpec(partial(prepare_unary_math, which="LOG"), max_version=2, output_types=None),
    "ABS": OpSpec(partial(prepare_unary_math, which="ABS"), max_version=5, output_types=None),
    "NEG": OpSpec(partial(prepare_unary_math, which="NEG"), max_version=2, output_types=None),
    "SQUARE": OpSpec(partial(prepare_unary_math, which="SQUARE"), max_version=1, output_types=None),
    "ELU": OpSpec(partial(prepare_unary_math, which="ELU"), max_version=2, output_types=None),
    "GELU": OpSpec(partial(prepare_unary_math, which="GELU"), max_version=2, output_types=None),
}
