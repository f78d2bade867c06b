"""int8 DEPTHWISE_CONV_2D on the vector kernels (cython_ops/include/em_depthwise_simd.h): every geometry, packed by
edgeml/runtime/packing_depthwise.py in one C call into one kept block; ops/conv.py validates the op and hands it
over."""
from __future__ import annotations

import numpy as np

from edgeml.ir import Op
from edgeml.runtime import requant
from edgeml.runtime.kernels import CONFIG
from edgeml.runtime.packing_depthwise import ROW_KERNELS, pack_depthwise_rows
from edgeml.runtime.plan import Ctx, Step, address

# a depthwise conv is split over threads from this size (a slice costs a hand-off; halved on the AVX-512 VNNI path,
# as ops/conv.THREAD_MIN_MACS)
THREAD_MIN_MACS = 125_000 if CONFIG.isa == "avx512vnni" else 250_000


def depthwise_threads(ctx: Ctx, macs: int, rows: int) -> int:
    """Threads for one depthwise conv: the interpreter's num_threads from THREAD_MIN_MACS on, 2+ output rows each."""
    if macs < THREAD_MIN_MACS:
        return 1
    return max(1, min(ctx.num_threads, rows // 2))


def prepare_depthwise_rows(ctx: Ctx, op: Op, kernel_name: str, x, y, w_taps: np.ndarray, bias, in_zp: int,
                           rq: requant.ColumnRequant, ints: dict, macs: int) -> Step:
    """The step of one int8 depthwise conv on kernel `kernel_name` (a key of packing_depthwise.ROW_KERNELS);
    ints: the conv layout's integers (geometry, zero points, activation range, mode, depth multiplier)."""
    threads = depthwise_threads(ctx, macs, ints["oh"])
    block, at, packed_ints = pack_depthwise_rows(ctx, ROW_KERNELS[kernel_name], w_taps, bias, in_zp, rq, ints,
                                                 threads)
    ints_d = dict(ints, **packed_ints)
    w_at, bias_at, mult_at, shift_at, scale64_at, scale32_at, table_at, offsets_at, estimate_at = at

    def make(addr):
        base = address(block)
        return (dict(input=addr(x.index), weights=base + w_at, bias=base + bias_at, output=addr(y.index),
                     scratch=addr("scratch"), rq_table=base + table_at, tap_offsets=base + offsets_at,
                     rq_estimate=base + estimate_at, mult=base + mult_at, shift=base + shift_at,
                     double_scales=base + scale64_at, float_scales=base + scale32_at), ints_d, {})
    return Step(op, kernel_name, make, packed_ints["band_bytes"] * threads, macs)
