"""CONV_2D and DEPTHWISE_CONV_2D: int8 (VNNI implicit GEMM / AVX2 / portable) and float32; hybrid weights go to
ops.hybrid.  Kernels: cython_ops/include/em_conv.h, em_depthwise.h (GEMMs: em_gemm*.h, gathers: em_im2col.h)."""
from __future__ import annotations

from functools import partial

import numpy as np

from cython_ops import load_pack
from edgeml import numerics as Q
from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import REQUANT_FLOAT as IR_REQUANT_FLOAT, UINT8, Op
from edgeml.runtime import requant
from edgeml.runtime.arena import ALIGN
from edgeml.runtime.kernels import CONFIG
from edgeml.runtime.ops import depthwise as depthwise_ops, float_kernels, grouped_conv, hybrid, int16x8
from edgeml.runtime.ops.gemm_shell import DEPTHWISE_AS_CONV_MIN, NO_FLOATS, int8_conv_step
from edgeml.runtime.ops.conv_winograd import winograd_applies, winograd_step
from edgeml.runtime.ops.depthwise import prepare_depthwise_rows
from edgeml.runtime.ops.sparse_gemm import sparse_candidate, sparse_conv_step, sparse_step
from edgeml.runtime.ops.common import (IM2COL_ROWS, bias_vector, conv_operands, fused_activation, io_kind, qparams,
                                       reject_uint8_hybrid, require_positive, spatial_padding)
from edgeml.runtime.packing import VNNI_SLACK, avx2_chunk, fold_input_zero_point, vnni_chunk
from edgeml.runtime.packing_depthwise import pack_depthwise_portable
from edgeml.runtime.packing_gemm import AVX2, AVX2_S8, SPARSE_VNNI, VNNI, layout_for, pack_gemm
from edgeml.runtime.requant import REQUANT_FLOAT
from edgeml.runtime.plan import Ctx, OpSpec, Step, address


# a conv is split over threads only from this size: a slice costs a hand-off (~0.5-3 us), so the threshold is about
# the same time of work on every path, and AVX-512 VNNI takes about half the others' time per MAC (measured on
# Zen 5: vww 1.07x -> 1.33x on two threads, KWS 1.18x -> 1.23x, ResNet-8 1.45x -> 1.54x from 500K to 250K there)
THREAD_MIN_MACS = 250_000 if CONFIG.isa == "avx512vnni" else 500_000
INT8 = np.dtype(np.int8)
UNIT_SCALE = np.ones(1)         # a uint8 conv's weight scale once its input scale holds the float32 product
UNIT_SCALE.flags.writeable = False
INT64 = np.dtype(np.int64)
FLOAT64 = np.dtype(np.float64)


def conv_threads(ctx: Ctx, macs: int, rows: int) -> int:
    """Threads for one conv: the interpreter's num_threads from THREAD_MIN_MACS on, 16+ rows each."""
    if macs < THREAD_MIN_MACS:
        return 1
    return max(1, min(ctx.num_threads, rows // 16))


def prepare_conv2d(ctx: Ctx, op: Op, depthwise: bool = False) -> Step:
    if ctx.tensor(op, 0).dtype == INT8:     # (int8 input: none of the int16, hybrid or uint8-hybrid forms)
        # the common TFLite form in one call (cython_ops/load_gemm.pyx): its step, or the shell's values for the
        # forms prepared here (prepare_conv2d_int8, its twin), or None
        made = int8_conv_step(ctx, op, depthwise, CONFIG.conv2d_int8, CONFIG.depthwise_int8, THREAD_MIN_MACS,
                              depthwise_ops.THREAD_MIN_MACS, UINT8, IR_REQUANT_FLOAT, INT8, FLOAT64, INT64)
        if type(made) is tuple:
            return prepare_conv2d_int8(ctx, op, depthwise, *made)
        if made is not None:
            return made
        kind = io_kind(ctx, op)
    else:
        if int16x8.is_int16(ctx, op):
            return int16x8.prepare_conv2d(ctx, op, depthwise)
        reject_uint8_hybrid(ctx, op)
        if hybrid.is_hybrid(ctx, op):
            return hybrid.prepare_depthwise_hybrid(ctx, op) if depthwise else hybrid.prepare_conv2d_hybrid(ctx, op)
        kind = io_kind(ctx, op)
    x, w, y, xs, wdata = conv_operands(ctx, op)
    if wdata.dtype != x.dtype:
        raise UnsupportedOpError(f"{op.describe()}: weights of type {wdata.dtype} with {x.dtype} input "
                                 "(hybrid models are not supported)")
    o = op.options
    sh, sw = o.get("stride_h", 1), o.get("stride_w", 1)
    dh, dw = o.get("dilation_h_factor", 1), o.get("dilation_w_factor", 1)
    if not (type(sh) is type(sw) is type(dh) is type(dw) is int and sh > 0 and sw > 0 and dh > 0 and dw > 0):
        require_positive(op, stride_h=sh, stride_w=sw, dilation_h=dh, dilation_w=dw)     # (raises, naming it)
    n, ih, iw, ic = xs
    if depthwise:
        _, kh, kw, oc = wdata.shape
        dm = o.get("depth_multiplier", 1) or 1
        if wdata.shape[0] != 1 or ic * dm != oc:
            if ic and oc % ic == 0 and wdata.shape[0] == 1:
                dm = oc // ic          # the options field is unreliable in some converters; shapes decide
            else:
                raise ModelFormatError(f"{op.describe()}: weights {list(wdata.shape)} do not fit input "
                                       f"channels {ic}")
    else:
        oc, kh, kw, wic = wdata.shape
        if wic != ic:
            return grouped_conv.prepare_grouped_conv2d(ctx, op)
        dm = 1
    if not (type(kh) is type(kw) is type(oc) is int and kh > 0 and kw > 0 and oc > 0):
        require_positive(op, kernel_h=kh, kernel_w=kw, out_channels=oc)
    oh, pt = spatial_padding(op, ih, kh, sh, dh, 0)
    ow, pl = spatial_padding(op, iw, kw, sw, dw, 1)
    ctx.set_output(op, 0, (n, oh, ow, oc))
    act = fused_activation(op)
    macs = n * oh * ow * oc * kh * kw * (1 if depthwise else ic)
    geometry = dict(n=n, ih=ih, iw=iw, ic=ic, oh=oh, ow=ow, oc=oc, kh=kh, kw=kw, sh=sh, sw=sw, dh=dh, dw=dw,
                    pad_top=pt, pad_left=pl)
    K = kh * kw * ic
    direct = int(not depthwise and kh == 1 and kw == 1 and sh == 1 and sw == 1 and pt == 0 and pl == 0)

    if kind == "int8":
        _, in_zp = qparams(x, op)
        as_conv = not depthwise or (ic == 1 and oc >= DEPTHWISE_AS_CONV_MIN)
        # (a GEMM's multipliers are computed where its weights are packed, in the same C call)
        rq = (requant.column_source if as_conv else requant.column_requant)(ctx, op, x, w, y, oc,
                                                                            3 if depthwise else 0, act)
        bias = bias_vector(ctx, op, 2, oc, np.int32)
        ints = dict(geometry, in_zp=in_zp, out_zp=rq.out_zp, act_min=rq.act_min, act_max=rq.act_max, mode=rq.mode,
                    dm=dm, direct=direct, chunk=IM2COL_ROWS)
        if depthwise and as_conv:
            # one input channel: the same sums as a CONV_2D with oc one-channel filters, on the GEMM
            wconv = wdata.reshape(kh, kw, oc).transpose(2, 0, 1)[..., None]
            return prepare_conv_int8(ctx, op, x, y, wconv, bias, in_zp, rq, dict(ints, dm=1), macs)
        if depthwise:
            return prepare_depthwise_int8(ctx, op, x, y, wdata.reshape(kh * kw, oc), bias, in_zp, rq, ints, macs)
        return prepare_conv_int8(ctx, op, x, y, wdata, bias, in_zp, rq, ints, macs)

    lo, hi = Q.activation_range_f32(act)
    bias = bias_vector(ctx, op, 2, oc, np.float32)
    if float_kernels.enabled():     # float32 SIMD kernels (em_float_*.h)
        step = (float_kernels.depthwise_step(ctx, op, x, y, wdata.reshape(kh * kw, oc), bias, geometry, dm, lo, hi,
                                             macs) if depthwise
                else float_kernels.conv_step(ctx, op, x, y, wdata, bias, geometry, lo, hi, macs))
        if step is not None:
            return step
    wk = ctx.keep_array(wdata.reshape(kh * kw, oc) if depthwise else wdata.reshape(oc, K))
    bk = ctx.keep_array(bias) if bias is not None else None
    scratch = oc * 4 if depthwise else (0 if direct else IM2COL_ROWS * K * 4)
    ints = dict(geometry, in_zp=0, out_zp=0, act_min=0, act_max=0, mode=0, dm=dm, direct=direct, chunk=IM2COL_ROWS)

    def make_f(addr):
        return (dict(input=addr(x.index), weights=address(wk), bias=address(bk) if bk is not None else 0,
                     output=addr(y.index), mult=0, shift=0, scratch=addr("scratch"), double_scales=0,
                     float_scales=0), ints, dict(act_min=lo, act_max=hi))
    return Step(op, "depthwise_f32" if depthwise else "conv2d_f32", make_f, scratch, macs)


def prepare_conv2d_int8(ctx: Ctx, op: Op, depthwise: bool, x, y, wdata: np.ndarray, ints: dict, s_in: float,
                        s_out: float, weight_scales: np.ndarray, weight_zero_points: np.ndarray,
                        activation: int, uint8: bool) -> Step:
    """A well-formed int8 CONV_2D / DEPTHWISE_CONV_2D under TFLite's contract, read and checked by
    load_shell.int8_conv_shell (every check of prepare_conv2d's path but the output shape's, the bias's and a uint8
    op's bias zero point, which run here in the same order): the same steps and kept bytes as that path."""
    n, oh, ow, oc, kh, kw, ic = ints["n"], ints["oh"], ints["ow"], ints["oc"], ints["kh"], ints["kw"], ints["ic"]
    ctx.set_output(op, 0, (n, oh, ow, oc))
    macs = n * oh * ow * oc * kh * kw * (1 if depthwise else ic)
    in_zp, out_zp, mode = ints["in_zp"], ints["out_zp"], ints["mode"]
    act_min, act_max = ints["act_min"], ints["act_max"]
    w_zp = 0
    if uint8:       # requant.uint8_column_requant's one multiplier of (float32 s_in * s_w) / float32 s_out in double:
        #             the per-column form's arithmetic with the product as the input scale and a weight scale of 1
        requant.check_uint8_bias(ctx, op)
        s_in = requant.uint8_scale_product(op, s_in, float(weight_scales[0]))
        weight_scales, w_zp = UNIT_SCALE, int(weight_zero_points[0])
    if not depthwise or (ic == 1 and oc >= DEPTHWISE_AS_CONV_MIN):
        source = requant.ColumnSource(mode, out_zp, act_min, act_max, w_zp, oc, s_in, weight_scales, s_out)
        bias = bias_vector(ctx, op, 2, oc, np.int32)
        if depthwise:       # one input channel: the same sums as a CONV_2D with oc one-channel filters, on the GEMM
            wconv = wdata.reshape(kh, kw, oc).transpose(2, 0, 1)[..., None]
            return prepare_conv_int8(ctx, op, x, y, wconv, bias, in_zp, source, dict(ints, dm=1), macs)
        return prepare_conv_int8(ctx, op, x, y, wdata, bias, in_zp, source, ints, macs)
    if uint8:
        mult, shift, real, real32 = load_pack.tflite_column_scales(s_in, weight_scales, s_out, oc, ctx.rounding)
    else:
        mult, shift, real, real32, _, _ = load_pack.tflite_requant(s_in, weight_scales, weight_zero_points, s_out,
                                                                   out_zp, oc, ctx.rounding, activation)
    rq = requant.ColumnRequant(mode, mult, shift, real, real32, out_zp, act_min, act_max, w_zp)
    bias = bias_vector(ctx, op, 2, oc, np.int32)
    return prepare_depthwise_int8(ctx, op, x, y, wdata.reshape(kh * kw, oc), bias, in_zp, rq, ints, macs)


def prepare_depthwise_int8(ctx: Ctx, op: Op, x, y, w_taps: np.ndarray, bias, in_zp: int, rq: requant.ColumnRequant,
                           ints: dict, macs: int) -> Step:
    """int8 DEPTHWISE_CONV_2D: the vector kernels (ops.depthwise) or the portable one; w_taps: [taps][OC]."""
    if CONFIG.depthwise_int8 != "depthwise_int8":
        return prepare_depthwise_rows(ctx, op, CONFIG.depthwise_int8, x, y, w_taps, bias, in_zp, rq, ints, macs)
    block, (w_at, bias_at, mult_at, shift_at, scale64_at, scale32_at) = pack_depthwise_portable(ctx, w_taps, bias, rq)

    def make(addr):
        base = address(block)
        return (dict(input=addr(x.index), weights=base + w_at, bias=base + bias_at, output=addr(y.index),
                     scratch=addr("scratch"), mult=base + mult_at, shift=base + shift_at,
                     double_scales=base + scale64_at, float_scales=base + scale32_at), ints, NO_FLOATS)
    # weights with a zero point (uint8 models): the _w16 kernel reads w - w_zp
    return Step(op, "depthwise_int8_w16" if rq.w_zp else "depthwise_int8", make, w_taps.shape[1] * 4, macs)


def prepare_conv_int8(ctx: Ctx, op: Op, x, y, wconv: np.ndarray, bias, in_zp: int, source: requant.ColumnSource,
                      ints: dict, macs: int) -> Step:
    """int8 CONV_2D with weights [OC, KH, KW, IC] on the GEMM of this CPU's path (KernelConfig.conv2d_int8), or on
    the block-sparse kernel (ops.sparse_gemm): the geometry and the kernel's integers here, the multipliers, the
    folded bias, the density probe and the packing in one C call (packing_gemm.pack_gemm)."""
    oc, kh, kw, ic = wconv.shape
    K = kh * kw * ic
    g = ints
    direct = int(kh == 1 and kw == 1 and g["sh"] == 1 and g["sw"] == 1 and g["pad_top"] == 0 and g["pad_left"] == 0)
    if ints["direct"] != direct:        # (a one-channel depthwise run as this conv)
        ints = dict(ints, direct=direct)
    oh, ow = g["oh"], g["ow"]
    w2 = wconv.reshape(oc, K)
    kernel = CONFIG.conv2d_int8
    w_zp = source.w_zp
    if kernel == "conv2d_int8_avx2" and winograd_applies(wconv, g, w_zp):     # (load_gemm.winograd_conv's twin)
        return prepare_conv_int8_winograd(ctx, op, x, y, wconv, w2, bias, in_zp, source.column_requant(ctx.rounding),
                                          ints, macs)
    threads = conv_threads(ctx, macs, oh * ow)
    slice_rows = -(-oh * ow // threads)
    # how the vector kernels read their GEMM rows (em_conv.h): 1 1x1 rows repacked, 4 implicit GEMM over a padded
    # copy of the image (weights packed per window row, KW * IC rounded up to 4), 0 im2col
    mode = 1 if direct else (4 if g["dw"] == 1 else 0)
    if mode == 4 and kernel == "conv2d_int8_avx2" and kh >= 5 and (kw * ic) % 4 and 12 <= kw * ic < 32:
        mode = 5    # a few-channel stem (7x7 x 3): window rows padded to 4 would add 14% to the AVX2 GEMM's work, so
        #             the padded image's windows are gathered into rows of K padded once (148, not 168; 5% faster
        #             than im2col); a 3x3 x 3 stem gains nothing from 28 over 36 (measured: the gather costs as much)
    ihp = (oh - 1) * g["sh"] + (kh - 1) * g["dh"] + 1
    iwp = (ow - 1) * g["sw"] + (kw - 1) * g["dw"] + 1
    segment = kw * ic if mode == 4 and (kw * ic) % 4 else 0     # window rows padded to 4 (0: none to add)
    gemv = kernel == "conv2d_int8_avx2" and direct and g["n"] * oh * ow <= 2 and not w_zp
    layout = layout_for(kernel, gemv)
    sparse_kernel, smode, sparse_args = sparse_candidate(ctx, ints, w_zp, "1x1" if direct else "kxk")
    layout, kp, pointers = pack_gemm(ctx, op, w2, bias, source, in_zp, source.mode == REQUANT_FLOAT, layout, segment,
                                     *sparse_args)
    if layout >= SPARSE_VNNI:       # mostly zero 16x4 weight blocks (pruned models): em_sparse.h skips them
        return sparse_step(op, x, y, sparse_kernel, smode, kp, K, pointers, ints, macs, threads)
    if layout == VNNI:
        chunk = vnni_chunk(kp, oh * ow)
        slice_bytes = VNNI_SLACK + (ihp * iwp * ic if mode == 4 else chunk * kp)
        if w_zp:     # em_conv_vnni_corr_bytes: one int32 row correction per GEMM row of a call
            slice_bytes += -(-4 * (slice_rows if mode == 4 else chunk) // 64) * 64
        slice_bytes = -(-slice_bytes // ALIGN) * ALIGN
        ints_v = dict(ints, direct=mode, chunk=chunk, kp=kp, threads=threads, slice_bytes=slice_bytes, w_zp=w_zp)

        def make_v(addr):
            return (dict(pointers, input=addr(x.index), output=addr(y.index), scratch=addr("scratch")), ints_v, {})
        return Step(op, kernel, make_v, slice_bytes * threads, macs)
    if layout == AVX2_S8:       # a 1x1 conv over one or two pixels (a classifier head): the FC kernel's int8 panels
        rows = g["n"] * oh * ow
        slice_bytes = -(-(rows * kp * 2) // ALIGN) * ALIGN
        threads = 1 if macs < THREAD_MIN_MACS else max(1, min(ctx.num_threads, -(-oc // 16)))   # (16-column blocks)
        ints_g = dict(rows=rows, depth=K, units=oc, out_zp=source.out_zp, act_min=source.act_min,
                      act_max=source.act_max, mode=source.mode, kp=kp, chunk=rows, w_zp=0, threads=threads,
                      slice_bytes=slice_bytes)

        def make_g(addr):
            return (dict(pointers, input=addr(x.index), output=addr(y.index), scratch=addr("scratch")), ints_g, {})
        return Step(op, "fully_connected_int8_avx2_gemv", make_g, slice_bytes * threads, macs)
    if layout == AVX2:
        chunk = avx2_chunk(kp, oh * ow, oc)
        image_bytes = (ihp * iwp * ic + 32) * 2     # em_pad_image_s16's padded image
        if mode == 5:       # the image in 64-byte lines (em_padded_image_s16_bytes), then the rows and 32 bytes
            slice_bytes = -(-image_bytes // 64) * 64 + chunk * kp * 2 + 32
        else:
            slice_bytes = image_bytes if mode == 4 else chunk * kp * 2
        slice_bytes = -(-(slice_bytes + 64) // ALIGN) * ALIGN
        ints_a = dict(ints, direct=mode, chunk=chunk, kp=kp, threads=threads, slice_bytes=slice_bytes)

        def make_a(addr):
            return (dict(pointers, input=addr(x.index), output=addr(y.index), scratch=addr("scratch")), ints_a, {})
        return Step(op, kernel, make_a, slice_bytes * threads, macs)

    def make(addr):
        return (dict(pointers, input=addr(x.index), output=addr(y.index), scratch=addr("scratch")), ints, NO_FLOATS)
    # weights with a zero point (uint8 models): the _w16 kernel reads w - w_zp
    return Step(op, "conv2d_int8_w16" if w_zp else "conv2d_int8", make, 0 if direct else IM2COL_ROWS * K, macs)


def prepare_conv_int8_winograd(ctx: Ctx, op: Op, x, y, wconv: np.ndarray, w2: np.ndarray, bias, in_zp: int,
                               rq: requant.ColumnRequant, ints: dict, macs: int) -> Step:
    """A 3x3 conv the AVX2 Winograd kernel takes (2.25x fewer multiplications), unless its weights are sparse."""
    threads = conv_threads(ctx, macs, ints["oh"] * ints["ow"])
    sparse = sparse_conv_step(ctx, op, x, y, w2, bias, in_zp, rq, ints, macs, threads,
                              "1x1" if ints["direct"] else "kxk")
    if sparse is not None:
        return sparse
    return winograd_step(ctx, op, x, y, wconv, fold_input_zero_point(op, bias, w2, in_zp), rq, ints, threads, macs)


OPS = {
    "CONV_2D": OpSpec(prepare_conv2d, max_version=8, output_types=int16x8.WITH_INT16),
    "DEPTHWISE_CONV_2D": OpSpec(partial(prepare_conv2d, depthwise=True), max_version=7,
                                output_types=int16x8.WITH_INT16),
}
