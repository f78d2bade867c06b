"""MEAN over any set of axes, int8 (LiteRT's QuantizedMeanOrSum) and float32 (cython_ops/include/em_reduce.h)."""
from __future__ import annotations

import numpy as np

from edgeml import numerics as Q
from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import Op
from edgeml.runtime.ops import int16x8
from edgeml.runtime.ops.common import element_count, io_kind, pad6, qparams, row_major_strides
from edgeml.runtime.plan import Ctx, OpSpec, Step


def prepare_mean(ctx: Ctx, op: Op) -> Step:
    kind = "int16" if int16x8.is_int16(ctx, op) else io_kind(ctx, op)
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    xs = list(ctx.shape(x))
    rank = len(xs)
    axes_raw = [int(a) for a in ctx.const(ctx.tensor(op, 1), f"{op.describe()} axes").reshape(-1)]
    axes = []
    for a in axes_raw:
        a2 = a + rank if a < 0 else a
        if not 0 <= a2 < rank:
            raise ModelFormatError(f"{op.describe()}: axis {a} outside rank {rank}")
        if a2 not in axes:
            axes.append(a2)
    keep = bool(op.options.get("keep_dims", False))
    out = [1 if d in axes else s for d, s in enumerate(xs)] if keep else [s for d, s in enumerate(xs) if d not in axes]
    ctx.set_output(op, 0, tuple(out))
    if rank > 6:
        raise UnsupportedOpError(f"{op.describe()}: rank > 6")
    count = element_count([xs[a] for a in axes])
    n_out = element_count(out)
    kept = [s for d, s in enumerate(xs) if d not in axes]
    kst = row_major_strides(kept)
    ost, k = [], 0
    for d in range(rank):
        if d in axes:
            ost.append(0)
        else:
            ost.append(kst[k])
            k += 1
    in6 = pad6(xs)
    ost6 = [0] * (6 - rank) + ost
    if kind == "f32":
        is_float, zp_in, zp_out, m, sh = 1, 0, 0, 0, 0
    elif kind == "int16":
        return int16x8.prepare_mean(ctx, op, dict(dims=in6, out_strides=ost6, outputs=n_out, reduced=count))
    else:
        s_in, zp_in = qparams(x, op)
        s_out, zp_out = qparams(y, op)
        if count * 255 >= 2 ** 31:
            raise UnsupportedOpError(f"{op.describe()}: {count} reduced elements overflow the int32 sum")
        m, sh = Q.mean_multiplier(np.float64(Q.F32(s_in)) / np.float64(Q.F32(s_out)), count, ctx.rounding)
        is_float = 0
    ints = dict(dims=in6, out_strides=ost6, outputs=n_out, reduced=count, is_float=is_float, in_zp=zp_in,
                out_zp=zp_out, mult=m, shift=sh, mode=ctx.rounding)

    def make(addr):
        return dict(input=addr(x.index), output=addr(y.index), scratch=addr("scratch")), ints, {}
    return Step(op, "mean", make, max(n_out, 1) * 4)


OPS = {"MEAN": OpSpec(prepare_mean, max_version=3, output_types=int16x8.WITH_INT16)}
