"""int8 CONV_2D 3x3, stride 1, dilation 1 on the AVX2 path as exact integer Winograd F(2x2, 3x3)
(cython_ops/include/em_conv_winograd.h, which explains the arithmetic): the weights' transform U = G' g G'^T at
load and the step.  The sums are those of the direct conv, so outputs stay bit-identical."""
from __future__ import annotations

import numpy as np

from cython_ops import load_winograd
from edgeml.ir import Op
from edgeml.runtime import requant
from edgeml.runtime.arena import ALIGN
from edgeml.runtime.plan import Ctx, Step, address

WINOGRAD_MIN_IC = 12         # fewer input channels: the transforms cost more than the multiplications save
WINOGRAD_MAX_IC = 3600       # 4 * 9 * IC * 128 * 128 (four times the largest sum) stays within int32
WINOGRAD_G = np.array([[2, 0, 0], [1, 1, 1], [1, -1, 1], [0, 0, 2]], np.int64)     # 2 G: integer weights


def winograd_applies(wconv: np.ndarray, geometry: dict, w_zp: int) -> bool:
    """A 3x3 stride-1 undilated conv with int8 weights (no zero point) and a channel count the kernel takes."""
    _, kh, kw, ic = wconv.shape
    return (kh == kw == 3 and geometry["sh"] == geometry["sw"] == 1 and geometry["dh"] == geometry["dw"] == 1
            and not w_zp and wconv.dtype == np.int8 and WINOGRAD_MIN_IC <= ic <= WINOGRAD_MAX_IC)


def winograd_pack(ctx: Ctx, wconv: np.ndarray) -> tuple:
    """Weights [OC, 3, 3, IC] -> U (|U| <= 1143) as 16 positions x panels of 8 columns x IC/4 groups x 8 x 4 int16
    (em_gemm_avx2.h's panel order per position); returns (U, ICp)."""
    oc, _, _, ic = wconv.shape
    ocp, icp = -(-oc // 8) * 8, -(-ic // 4) * 4
    if wconv.dtype == np.int8:      # one C pass, written where it is kept
        out = ctx.keep_new((16, ocp // 8, icp // 4, 8, 4), np.int16)
        load_winograd.winograd_weights(np.ascontiguousarray(wconv), out)
        return out, icp
    return ctx.keep_array(winograd_panels(wconv)), icp


def winograd_panels(wconv: np.ndarray, out=None) -> np.ndarray:
    """The numpy form of load_winograd.winograd_weights: U [16][OCp / 8][ICp / 4][8][4] (into `out` when given)."""
    oc, _, _, ic = wconv.shape
    ocp, icp = -(-oc // 8) * 8, -(-ic // 4) * 4
    u = np.einsum("ai,oijc,bj->aboc", WINOGRAD_G, wconv.astype(np.int64), WINOGRAD_G).reshape(16, oc, ic)
    padded = np.zeros((16, ocp, icp), np.int16)
    padded[:, :oc, :ic] = u
    panels = np.ascontiguousarray(padded.reshape(16, ocp // 8, 8, icp // 4, 4).transpose(0, 1, 3, 2, 4))
    if out is not None:
        out[...] = panels
    return panels


def winograd_slice_bytes(oh: int, ow: int, ic: int, icp: int) -> int:
    """em_winograd_slice_bytes: padded int16 image (pixels of IC rounded up to 16), one tile row's V, and M for 4
    tiles."""
    th, tw = (oh + 1) // 2, (ow + 1) // 2
    image = -(-((2 * th + 2) * (2 * tw + 2) * (-(-ic // 16) * 16) * 2 + 64) // 64) * 64
    v = -(-(16 * tw * icp * 2) // 64) * 64
    return -(-(image + v + 4 * 16 * 8 * 4) // ALIGN) * ALIGN


def winograd_step(ctx: Ctx, op: Op, x, y, wconv: np.ndarray, bias_zp: np.ndarray, rq: requant.ColumnRequant,
                  ints: dict, threads: int, macs: int) -> Step:
    """The conv2d_int8_avx2_winograd step (layout CONV_AVX2); bias_zp: bias - in_zp sum w."""
    oc = wconv.shape[0]
    ocp = -(-oc // 8) * 8
    u, icp = winograd_pack(ctx, wconv)
    bias = ctx.keep_array(np.pad(bias_zp, (0, ocp - oc)).astype(np.int32))
    rqa = rq.arrays(ctx, ocp)
    threads = max(1, min(threads, (ints["oh"] + 1) // 2))     # slices of tile rows
    slice_bytes = winograd_slice_bytes(ints["oh"], ints["ow"], wconv.shape[3], icp)
    ints_w = dict(ints, direct=0, chunk=1, kp=icp, threads=threads, slice_bytes=slice_bytes)

    def make(addr):
        return (dict(input=addr(x.index), weights=address(u), bias=address(bias), output=addr(y.index),
                     scratch=addr("scratch"), **requant.pointers(rqa)), ints_w, {})
    return Step(op, "conv2d_int8_avx2_winograd", make, slice_bytes * threads, macs)
