"""Grouped CONV_2D: weights [OC, KH, KW, IC / groups] (Keras Conv2D(groups=...)), int8 and float32
(cython_ops/include/em_grouped_conv.h).  ops/conv.py hands a CONV_2D over when its weights have fewer input
channels than its input; the groups are IC / weight channels, as LiteRT's Prepare derives them."""
from __future__ import annotations

import numpy as np

from edgeml import numerics as Q
from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import Op
from edgeml.runtime import requant
from edgeml.runtime.ops.common import (IM2COL_ROWS, bias_vector, conv_operands, fused_activation, io_kind, qparams,
                                       require_positive, spatial_padding)
from edgeml.runtime.packing import fold_input_zero_point
from edgeml.runtime.plan import Ctx, Step, address


def prepare_grouped_conv2d(ctx: Ctx, op: Op) -> Step:
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
    oc, kh, kw, icg = wdata.shape
    require_positive(op, kernel_h=kh, kernel_w=kw, out_channels=oc, weight_channels=icg, input_channels=ic)
    if ic % icg:
        raise ModelFormatError(f"{op.describe()}: weights with {icg} input channels do not divide the input's {ic}")
    groups = ic // icg
    if oc % groups:
        raise ModelFormatError(f"{op.describe()}: {oc} output channels do not split into {groups} groups")
    oh, pt = spatial_padding(op, ih, kh, sh, dh, 0)
    ow, pl = spatial_padding(op, iw, kw, sw, dw, 1)
    ctx.set_output(op, 0, (n, oh, ow, oc))
    act = fused_activation(op)
    k = kh * kw * icg
    ints = dict(n=n, ih=ih, iw=iw, ic=ic, oh=oh, ow=ow, oc=oc, kh=kh, kw=kw, sh=sh, sw=sw, dh=dh, dw=dw, pad_top=pt,
                pad_left=pl, in_zp=0, out_zp=0, act_min=0, act_max=0, mode=0, dm=1, direct=0, chunk=IM2COL_ROWS,
                groups=groups)
    macs = n * oh * ow * oc * k
    weights = ctx.keep_array(wdata.reshape(oc, k))
    if kind == "int8":
        _, in_zp = qparams(x, op)
        rq = requant.column_requant(ctx, op, x, w, y, oc, 0, act)
        bias = ctx.keep_array(fold_input_zero_point(op, bias_vector(ctx, op, 2, oc, np.int32), weights, in_zp))
        ints.update(in_zp=in_zp, out_zp=rq.out_zp, act_min=rq.act_min, act_max=rq.act_max, mode=rq.mode)
        rqa = rq.arrays(ctx)

        def make(addr):
            return (dict(input=addr(x.index), weights=address(weights), bias=address(bias), output=addr(y.index),
                         scratch=addr("scratch"), **requant.pointers(rqa)), ints, dict(act_min=0.0, act_max=0.0))
        return Step(op, "grouped_conv_int8", make, IM2COL_ROWS * k, macs)

    lo, hi = Q.activation_range_f32(act)
    bias_f = bias_vector(ctx, op, 2, oc, np.float32)
    bias_k = ctx.keep_array(bias_f) if bias_f is not None else None

    def make_f(addr):
        return (dict(input=addr(x.index), weights=address(weights), bias=address(bias_k) if bias_k is not None else 0,
                     output=addr(y.index), mult=0, shift=0, scratch=addr("scratch"), double_scales=0, float_scales=0),
                ints, dict(act_min=lo, act_max=hi))
    return Step(op, "grouped_conv_f32", make_f, IM2COL_ROWS * k * 4, macs)
