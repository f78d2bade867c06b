"""AVERAGE_POOL_2D and MAX_POOL_2D, int8 and float32 (cython_ops/include/em_pool.h); uint8 (held as int8) rounds
its average as LiteRT's uint8 kernel does (halves up)."""
from __future__ import annotations

from functools import partial

import numpy as np

from cython_ops import load_ops
from edgeml import numerics as Q
from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import UINT8, Op
from edgeml.runtime.ops.common import fused_activation, io_kind, qparams, require_positive, spatial_padding
from edgeml.runtime.plan import Ctx, OpSpec, Step


INT8 = np.dtype(np.int8)


def prepare_pool(ctx: Ctx, op: Op, is_max: bool) -> Step:
    ints = load_ops.int8_pool_shell(ctx, op, INT8)      # the common int8 case's reading and checks in one call
    if ints is not None:
        return pool_step(op, is_max, "int8", op.inputs[0], op.outputs[0], ints, dict(act_min=0.0, act_max=0.0),
                         ints["c"])
    kind = io_kind(ctx, op)
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    xs = ctx.shape(x)
    if len(xs) != 4:
        raise ModelFormatError(f"{op.describe()}: expects a 4-D input, got {list(xs)}")
    o = op.options
    kh, kw = o.get("filter_height", 0), o.get("filter_width", 0)
    sh, sw = o.get("stride_h", 0), o.get("stride_w", 0)
    require_positive(op, filter_height=kh, filter_width=kw, stride_h=sh, stride_w=sw)
    n, ih, iw, c = xs
    oh, pt = spatial_padding(op, ih, kh, sh, 1, 0)
    ow, pl = spatial_padding(op, iw, kw, sw, 1, 1)
    ctx.set_output(op, 0, (n, oh, ow, c))
    act = fused_activation(op)
    ints = dict(n=n, ih=ih, iw=iw, c=c, oh=oh, ow=ow, kh=kh, kw=kw, sh=sh, sw=sw, pad_top=pt, pad_left=pl)
    if kind == "int8":
        s_in, zp_in = qparams(x, op)
        s_out, zp_out = qparams(y, op)
        if (s_in, zp_in) != (s_out, zp_out):
            raise UnsupportedOpError(f"{op.describe()}: quantized pooling needs equal input and output quantization")
        amin, amax = Q.activation_range_int8(act, s_out, zp_out)
        ints = dict(ints, act_min=amin, act_max=amax)
        floats = dict(act_min=0.0, act_max=0.0)       # the int8 kernels clamp in integers
    else:
        ints = dict(ints, act_min=0, act_max=0)
        lo, hi = Q.activation_range_f32(act)
        floats = dict(act_min=lo, act_max=hi)
    return pool_step(op, is_max, kind, x.index, y.index, ints, floats, c)


def pool_step(op: Op, is_max: bool, kind: str, xi: int, yi: int, ints: dict, floats: dict, c: int) -> Step:
    name = ("max_pool_" if is_max else "avg_pool_") + kind
    if name == "avg_pool_int8" and op.options.get(UINT8):
        name = "avg_pool_uint8"

    def make(addr):
        return dict(input=addr(xi), output=addr(yi), scratch=addr("scratch")), ints, floats
    return Step(op, name, make, 0 if is_max else c * 4)


OPS = {
    "AVERAGE_POOL_2D": OpSpec(partial(prepare_pool, is_max=False), max_version=3),
    "MAX_POOL_2D": OpSpec(partial(prepare_pool, is_max=True), max_version=3),
}
