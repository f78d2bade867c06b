"""CONV_2D and DEPTHWISE_CONV_2D: int8 (VNNI implicit GEMM / AVX2 / portable) and float32; hybrid weights go to
ops.hybrid.  Kernels: cython_ops/include/em_conv.h, em_depthwise.h (GEMMs: em_gemm*.h, gathers: em_im2col.h)."""
from __future__ import annotations

from functools import partial

import numpy as np

from edgeml import numerics as Q
from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import Op
from edgeml.runtime import requant
from edgeml.runtime.arena import ALIGN
from edgeml.runtime.kernels import CONFIG
from edgeml.runtime.ops import float_kernels, grouped_conv, hybrid, int16x8
from edgeml.runtime.ops.common import (IM2COL_ROWS, bias_vector, conv_operands, fused_activation, io_kind, qparams,
                                       reject_uint8_hybrid, require_positive, spatial_padding)
from edgeml.runtime.packing import (VNNI_SLACK, avx2_pack, depthwise_vnni_pack, fold_input_zero_point, vnni_chunk,
                                    vnni_pack)
from edgeml.runtime.plan import Ctx, OpSpec, Step, address


DW_MAX_TAPS = 64          # EM_DW_MAX_TAPS in em_depthwise.h
THREAD_MIN_MACS = 2_000_000   # a conv is split over threads only from this size (a slice costs a wake-up)


def conv_threads(ctx: Ctx, macs: int, rows: int) -> int:
    """Threads for one conv: the interpreter's num_threads from THREAD_MIN_MACS on, 16+ rows each."""
    if macs < THREAD_MIN_MACS:
        return 1
    return max(1, min(ctx.num_threads, rows // 16))


def prepare_conv2d(ctx: Ctx, op: Op, depthwise: bool = False) -> Step:
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
    require_positive(op, stride_h=sh, stride_w=sw, dilation_h=dh, dilation_w=dw)
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
    no_floats = dict(act_min=0.0, act_max=0.0)      # the int8 kernels clamp in integers

    if kind == "int8":
        _, in_zp = qparams(x, op)
        rq = requant.column_requant(ctx, op, x, w, y, oc, 3 if depthwise else 0, act)
        bias = bias_vector(ctx, op, 2, oc, np.int32)
        ints = dict(geometry, in_zp=in_zp, out_zp=rq.out_zp, act_min=rq.act_min, act_max=rq.act_max, mode=rq.mode,
                    dm=dm, direct=direct, chunk=IM2COL_ROWS)
        wide = "_w16" if rq.w_zp else ""    # weights with a zero point (uint8 models): kernels read w - w_zp
        if depthwise:
            if dm == 1 and kh * kw <= DW_MAX_TAPS and CONFIG.depthwise_int8_vnni:
                dv = depthwise_vnni_pack(ctx, wdata.reshape(kh * kw, oc), bias, in_zp, rq, sw)
                ihp, iwp = (oh - 1) * sh + (kh - 1) * dh + 1, (ow - 1) * sw + (kw - 1) * dw + 1
                ints_d = dict(ints, pv=dv["pv"], cb=dv["cb"], tg=dv["tg"], wide=dv["wide"], w_zp=rq.w_zp)

                def make_d(addr):
                    return (dict(input=addr(x.index), weights=address(dv["w"]), bias=address(dv["bias"]),
                                 output=addr(y.index), scratch=addr("scratch"), **requant.pointers(dv["rq"])),
                            ints_d, {})
                return Step(op, "depthwise_int8_vnni", make_d, ihp * iwp * ic + VNNI_SLACK, macs)
            w_taps = wdata.reshape(kh * kw, oc)
            wk = ctx.keep_array(w_taps.astype(np.int16) - rq.w_zp if rq.w_zp else w_taps)
            bk = ctx.keep_array(np.zeros(oc, np.int32) if bias is None else bias.astype(np.int32))
            scratch = oc * 4
        else:
            w2 = wdata.reshape(oc, K)
            if CONFIG.conv2d_int8 == "conv2d_int8_vnni":
                # how the kernel reads its GEMM rows (em_conv2d_int8_vnni): 1 1x1 rows repacked, 4 implicit GEMM
                # over a padded copy, 0 im2col
                span4 = -(-(kw * ic) // 4) * 4
                ihp, iwp = (oh - 1) * sh + (kh - 1) * dh + 1, (ow - 1) * sw + (kw - 1) * dw + 1
                direct_v = 1 if direct else (4 if dw == 1 else 0)
                if direct_v == 4:     # K ordered by window row, each row padded to a multiple of 4
                    w2v = np.zeros((oc, kh, span4), np.int8)
                    w2v[:, :, :kw * ic] = wdata.reshape(oc, kh, kw * ic)
                    w2v = w2v.reshape(oc, kh * span4)
                else:
                    w2v = w2
                vp = vnni_pack(ctx, w2v, bias, in_zp, rq, taps=K)
                chunk = vnni_chunk(vp["kp"], oh * ow)
                threads = conv_threads(ctx, macs, oh * ow)
                slice_rows = -(-oh * ow // threads)
                slice_bytes = VNNI_SLACK + {1: slice_rows * vp["kp"], 4: ihp * iwp * ic}.get(direct_v,
                                                                                            chunk * vp["kp"])
                if rq.w_zp:     # em_conv_vnni_corr_bytes: one int32 row correction per GEMM row of a call
                    slice_bytes += -(-4 * (chunk if direct_v == 0 else slice_rows) // 64) * 64
                slice_bytes = -(-slice_bytes // ALIGN) * ALIGN
                ints_v = dict(ints, direct=direct_v, chunk=chunk, kp=vp["kp"], threads=threads,
                              slice_bytes=slice_bytes, w_zp=rq.w_zp)

                def make_v(addr):
                    return (dict(input=addr(x.index), weights=address(vp["w"]), bias=address(vp["bias"]),
                                 output=addr(y.index), scratch=addr("scratch"), **requant.pointers(vp["rq"])),
                            ints_v, {})
                return Step(op, "conv2d_int8_vnni", make_v, slice_bytes * threads, macs)
            if rq.w_zp:
                w2 = w2.astype(np.int16) - rq.w_zp
            if CONFIG.conv2d_int8 == "conv2d_int8_avx2":        # int16 panels: w - w_zp fits as it is
                ap = avx2_pack(ctx, w2, fold_input_zero_point(op, bias, w2, in_zp), rq)
                chunk2 = min(oh * ow, IM2COL_ROWS)
                ints_a = dict(ints, chunk=chunk2, kp=ap["kp"])
                scratch_a = (0 if direct else -(-chunk2 * K // 32) * 32) + chunk2 * ap["kp"] * 2

                def make_a(addr):
                    return (dict(input=addr(x.index), weights=address(ap["w"]), bias=address(ap["bias"]),
                                 output=addr(y.index), scratch=addr("scratch"), **requant.pointers(ap["rq"])),
                            ints_a, {})
                return Step(op, "conv2d_int8_avx2", make_a, scratch_a, macs)
            wk = ctx.keep_array(w2)
            bk = ctx.keep_array(fold_input_zero_point(op, bias, w2, in_zp))
            scratch = 0 if direct else IM2COL_ROWS * K
        rqa = rq.arrays(ctx)

        def make(addr):
            return (dict(input=addr(x.index), weights=address(wk), bias=address(bk), output=addr(y.index),
                         scratch=addr("scratch"), **requant.pointers(rqa)), ints, no_floats)
        return Step(op, ("depthwise_int8" if depthwise else "conv2d_int8") + wide, make, scratch, macs)

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

OPS = {
    "CONV_2D": OpSpec(prepare_conv2d, max_version=8, output_types=int16x8.WITH_INT16),
    "DEPTHWISE_CONV_2D": OpSpec(partial(prepare_conv2d, depthwise=True), max_version=7,
                                output_types=int16x8.WITH_INT16),
}
