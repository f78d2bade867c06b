"""FULLY_CONNECTED: int8 (VNNI / AVX2 / portable GEMM) and float32; hybrid weights go to ops.hybrid.
Kernels: cython_ops/include/em_fully_connected.h (GEMMs: em_gemm*.h)."""
from __future__ import annotations

import numpy as np

from edgeml import numerics as Q
from edgeml.errors import UnsupportedOpError
from edgeml.ir import REQUANT_FLOAT as IR_REQUANT_FLOAT, UINT8, Op
from edgeml.runtime import requant
from edgeml.runtime.kernels import CONFIG
from edgeml.runtime.ops import float_kernels, hybrid, int16x8
from edgeml.runtime.ops.gemm_shell import AS_1X1_CONV, int8_fully_connected_step
from edgeml.runtime.ops.sparse_gemm import fully_connected_as_conv, sparse_candidate, sparse_step
from edgeml.runtime.ops.common import (IM2COL_ROWS, bias_vector, fully_connected_shape, fused_activation, io_kind,
                                       qparams, reject_uint8_hybrid)
from edgeml.runtime.packing import VNNI_SLACK, vnni_chunk
from edgeml.runtime.packing_gemm import AVX2, AVX2_S8, SPARSE_VNNI, VNNI, layout_for, pack_gemm
from edgeml.runtime.requant import REQUANT_FLOAT
from edgeml.runtime.arena import ALIGN
from edgeml.runtime.plan import Ctx, OpSpec, Step, address

INT8, INT64, FLOAT64 = (np.dtype(t) for t in (np.int8, np.int64, np.float64))
THREAD_MIN_MACS = 500_000     # an FC is split over threads (rows, or 16-column blocks) from this size


def fc_threads(ctx: Ctx, macs: int, rows: int, units: int) -> int:
    """Threads for one FULLY_CONNECTED: 4+ rows or one 16-column block each (em_fc_slice_range)."""
    if macs < THREAD_MIN_MACS:
        return 1
    return max(1, min(ctx.num_threads, max(rows // 4, -(-units // 16))))


def prepare_fully_connected(ctx: Ctx, op: Op) -> Step:
    # the common TFLite form in one call (cython_ops/load_gemm.pyx): its step, or the shell's values for a bias the
    # Python prepare (prepare_fully_connected_int8, its twin) refuses, or None
    made = int8_fully_connected_step(ctx, op, CONFIG.fully_connected_int8, THREAD_MIN_MACS, UINT8, IR_REQUANT_FLOAT,
                                     INT8, FLOAT64, INT64)
    if type(made) is tuple:
        return prepare_fully_connected_int8(ctx, op, *made)
    if made is not None:
        return made
    if int16x8.is_int16(ctx, op):
        return int16x8.prepare_fully_connected(ctx, op)
    reject_uint8_hybrid(ctx, op)
    if hybrid.is_hybrid(ctx, op):
        return hybrid.prepare_fully_connected_hybrid(ctx, op)
    kind = io_kind(ctx, op)
    x, w, y = ctx.tensor(op, 0), ctx.tensor(op, 1), ctx.tensor(op, 0, "output")
    xs = ctx.shape(x)
    wdata = ctx.const(w, f"{op.describe()} weights")
    rows, K, n_out = fully_connected_shape(ctx, op, xs, wdata)
    if wdata.dtype != x.dtype:
        raise UnsupportedOpError(f"{op.describe()}: weights of type {wdata.dtype} with {x.dtype} input "
                                 "(hybrid models are not supported)")
    act = fused_activation(op)
    macs = rows * n_out * K
    if kind == "int8":
        _, in_zp = qparams(x, op)
        # (the multipliers are computed where the weights are packed, in the same C call)
        source = requant.column_source(ctx, op, x, w, y, n_out, 0, act, fully_connected=True)
        bias = bias_vector(ctx, op, 2, n_out, np.int32)
        return fully_connected_int8_step(ctx, op, x, y, wdata, bias, rows, K, n_out, in_zp, source, macs)
    lo, hi = Q.activation_range_f32(act)
    bias = bias_vector(ctx, op, 2, n_out, np.float32)
    if float_kernels.enabled():     # float32 SIMD kernels (em_float_gemm.h)
        return float_kernels.fully_connected_step(ctx, op, x, y, wdata, bias, rows, lo, hi, macs)
    wk = ctx.keep_array(wdata)
    bk = ctx.keep_array(bias) if bias is not None else None

    def make_f(addr):
        return (dict(input=addr(x.index), weights=address(wk), bias=address(bk) if bk is not None else 0,
                     output=addr(y.index)), dict(rows=rows, depth=K, units=n_out), dict(act_min=lo, act_max=hi))
    return Step(op, "fully_connected_f32", make_f, 0, macs)


def prepare_fully_connected_int8(ctx: Ctx, op: Op, x, y, wdata: np.ndarray, rows: int, K: int, n_out: int,
                                 out_shape: tuple, s_in: float, in_zp: int, s_out: float, out_zp: int,
                                 weight_scales: np.ndarray, act_min: int, act_max: int) -> Step:
    """A well-formed int8 FULLY_CONNECTED under TFLite's contract, read and checked by
    load_shell.int8_fully_connected_shell (every check of prepare_fully_connected's path but the output shape's
    and the bias's, which run here in the same order): the same step as that path."""
    ctx.set_output(op, 0, out_shape)
    mode = ctx.rounding
    if mode == Q.ROUNDING_MODES["double"]:
        mode = requant.REQUANT_DOUBLE_SCALE      # LiteRT's reference FULLY_CONNECTED rescales in double
    source = requant.ColumnSource(mode, out_zp, act_min, act_max, 0, n_out, s_in, weight_scales, s_out)
    bias = bias_vector(ctx, op, 2, n_out, np.int32)
    return fully_connected_int8_step(ctx, op, x, y, wdata, bias, rows, K, n_out, in_zp, source, rows * n_out * K)


def fully_connected_int8_step(ctx: Ctx, op: Op, x, y, wdata: np.ndarray, bias, rows: int, K: int, n_out: int,
                              in_zp: int, source: requant.ColumnSource, macs: int) -> Step:
    """The int8 FULLY_CONNECTED step on this CPU's GEMM (KernelConfig.fully_connected_int8) or the block-sparse
    kernel, its weights, folded bias and multipliers packed in one C call (packing_gemm.pack_gemm)."""
    ints = dict(rows=rows, depth=K, units=n_out, out_zp=source.out_zp, act_min=source.act_min,
                act_max=source.act_max, mode=source.mode)
    kernel = CONFIG.fully_connected_int8
    threads = fc_threads(ctx, macs, rows, n_out)
    w_zp = source.w_zp
    # one or two rows reuse no weight: reading them as int8 (half the bytes) beats the int16 panels
    gemv = kernel == "fully_connected_int8_avx2" and rows <= 2 and not w_zp
    layout = layout_for(kernel, gemv)
    sparse_kernel, smode, sparse_args = sparse_candidate(ctx, AS_1X1_CONV, w_zp, "gemv" if rows < 4 else "1x1")
    layout, kp, pointers = pack_gemm(ctx, op, wdata, bias, source, in_zp, source.mode == REQUANT_FLOAT, layout, 0,
                                     *sparse_args)
    if layout >= SPARSE_VNNI:   # mostly zero 16x4 weight blocks (pruned models): em_sparse.h skips them
        conv_ints = fully_connected_as_conv(rows, n_out, K, in_zp, source)
        return sparse_step(op, x, y, sparse_kernel, smode, kp, K, pointers, conv_ints, macs, min(threads, rows))
    if layout == VNNI:
        chunk = vnni_chunk(kp, rows)
        corr_bytes = -(-4 * chunk // 64) * 64 if w_zp else 0      # em_fc_vnni_corr_bytes
        slice_bytes = -(-(corr_bytes + chunk * kp + VNNI_SLACK) // ALIGN) * ALIGN
        ints_v = dict(ints, kp=kp, chunk=chunk, w_zp=w_zp, threads=threads, slice_bytes=slice_bytes)

        def make_v(addr):
            return (dict(pointers, input=addr(x.index), output=addr(y.index), scratch=addr("scratch")), ints_v,
                    {})
        return Step(op, kernel, make_v, slice_bytes * threads, macs)
    if layout in (AVX2, AVX2_S8):
        chunk2 = min(rows, IM2COL_ROWS)
        slice_bytes = -(-(chunk2 * kp * 2) // ALIGN) * ALIGN
        ints_a = dict(ints, kp=kp, chunk=chunk2, w_zp=0, threads=threads, slice_bytes=slice_bytes)

        def make_a(addr):
            return (dict(pointers, input=addr(x.index), output=addr(y.index), scratch=addr("scratch")), ints_a,
                    {})
        return Step(op, "fully_connected_int8_avx2_gemv" if gemv else kernel, make_a, slice_bytes * threads, macs)

    def make(addr):
        return dict(pointers, input=addr(x.index), output=addr(y.index), scratch=0), ints, {}
    # weights with a zero point (uint8 models): the portable kernel reads w - w_zp
    return Step(op, "fully_connected_int8_w16" if w_zp else "fully_connected_int8", make, 0, macs)


OPS = {"FULLY_CONNECTED": OpSpec(prepare_fully_connected, max_version=13, output_types=int16x8.WITH_INT16)}
