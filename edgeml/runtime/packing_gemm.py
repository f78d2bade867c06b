"""An int8 GEMM's kept arrays (CONV_2D / FULLY_CONNECTED): weights packed for the chosen kernel, the folded bias and
the per-column requantization, in one call (cython_ops/load_prepare.pyx) and one kept allocation, sections at
64-byte offsets.  pack_gemm_int8_numpy is its numpy twin (tests/test_load_fast_paths.py swaps it in)."""
from __future__ import annotations

import numpy as np

from cython_ops import load_pack, load_prepare
from edgeml.errors import ModelFormatError
from edgeml.ir import Op
from edgeml.runtime.packing import avx2_constants, fold_bias, vnni_constants
from edgeml.runtime.load_profile import timed
from edgeml.runtime.packing_sparse import window_rows
from edgeml.runtime.plan import Ctx, address
from edgeml.runtime.requant import tflite_column_scales

# load_prepare.pyx's layouts
PLAIN, VNNI, AVX2, AVX2_S8, SPARSE_VNNI, SPARSE_AVX2, SPARSE_PORTABLE = range(7)
SPARSE_LAYOUTS = {"conv2d_int8_sparse_vnni": SPARSE_VNNI, "conv2d_int8_sparse_avx2": SPARSE_AVX2,
                  "conv2d_int8_sparse": SPARSE_PORTABLE}
ALIGN = 64


def layout_for(kernel: str, gemv: bool) -> int:
    """The dense packing layout an int8 conv / FC kernel reads (its name ends in the ISA path); gemv: the AVX2
    one- or two-row form, which reads int8 panels."""
    if kernel.endswith(("_vnni", "_avxvnni")):
        return VNNI
    if kernel.endswith("_avx2"):
        return AVX2_S8 if gemv else AVX2
    return PLAIN


@timed("of which: weight packing")
def pack_gemm(ctx: Ctx, op: Op, w2: np.ndarray, bias, source, in_zp: int, wrap: bool, layout: int, segment: int,
              sparse_layout: int = PLAIN, sparse_segment: int = 0, max_density: float = -1.0, sparse_pitch: int = 0,
              sparse_elem: int = 1) -> tuple:
    """(layout packed, kp, the kernels' pointer slots) for w2 [N][K] int8 (requant.ColumnSource `source`); the
    sparse layout replaces `layout` where the density of nonzero 16x4 blocks is at most max_density (< 0: never)."""
    try:
        block, layout, kp, offsets = load_prepare.pack_gemm_int8(
            ctx.keep_new, w2, bias, source.input_scale, source.weight_scales, source.output_scale, ctx.rounding,
            source.given, in_zp, source.w_zp, wrap, layout, segment, sparse_layout, sparse_segment, max_density,
            sparse_pitch, sparse_elem)
    except OverflowError:
        raise ModelFormatError(f"{op.describe()}: bias and weights overflow the int32 accumulator") from None
    base = address(block)
    w, b, mult, shift, scale64, scale32, start, block_k = offsets
    pointers = dict(weights=base + w, bias=base + b, mult=base + mult, shift=base + shift,
                    double_scales=base + scale64, float_scales=base + scale32)
    if start >= 0:
        pointers.update(group_start=base + start, block_k=base + block_k)
    return layout, kp, pointers


def section_offsets(n: int, k: int, w_zp: int, layout: int, segment: int, groups: int, blocks: int) -> tuple:
    """(kl, width, weight bytes, offsets of the eight sections (-1: none), total bytes) of load_prepare's block."""
    kl = k // segment * (-(-segment // 4) * 4) if segment else -(-k // 4) * 4
    if layout == PLAIN:
        width, wbytes = n, n * k * (2 if w_zp else 1)
    elif layout == VNNI:
        width = -(-n // 16) * 16
        wbytes = width * kl
    elif layout in (AVX2, AVX2_S8):
        width = -(-n // 8) * 8
        wbytes = width * kl * (2 if layout == AVX2 else 1)
    else:
        width, wbytes = groups * 16, blocks * 64 * (2 if layout == SPARSE_AVX2 else 1)
    sizes = [wbytes, 4 * width, 4 * width, 4 * width, 8 * width, 4 * width]
    if layout >= SPARSE_VNNI:
        sizes += [4 * (groups + 1), 4 * blocks]
    offsets, at = [], 0
    for size in sizes:
        offsets.append(at)
        at = -(-(at + size) // ALIGN) * ALIGN
    total = offsets[-1] + sizes[-1]
    return kl, width, wbytes, offsets + [-1] * (8 - len(offsets)), total


def pack_gemm_int8_numpy(keep_new, w, bias, input_scale, weight_scales, output_scale, rounding, given, in_zp, w_zp,
                         wrap, layout, segment, sparse_layout, sparse_segment, max_density, sparse_pitch, sparse_elem):
    """The numpy form of load_prepare.pack_gemm_int8 (the packers' numpy forms, written into the same block)."""
    w = np.asarray(w)
    n, k = w.shape
    if given is None:
        mult, shift, real, real32 = tflite_column_scales(input_scale, np.asarray(weight_scales), output_scale, n,
                                                         rounding)
    else:
        mult, shift, real, real32 = given
    sparse, blocks_mask = False, None
    if max_density >= 0 and w_zp == 0:
        nonzero, count = load_pack.count_nonzero_blocks_s8(w, 16, 4, sparse_segment)
        sparse = (nonzero / count if count else 1.0) <= max_density
    if sparse:
        layout, segment = sparse_layout, sparse_segment
    vnni = layout in (VNNI, SPARSE_VNNI)
    wsub = w.astype(np.int16) - w_zp if w_zp and layout in (PLAIN, AVX2) else w
    wl = window_rows(wsub, segment) if segment else wsub
    groups = -(-n // 16)
    if sparse:
        kl = wl.shape[1]
        padded = np.empty((groups, -(-kl // 4), 16, 4), np.int8)
        load_pack.pack_vnni_s8(wl, padded, False)
        start, kb_idx, chosen = load_pack.nonzero_blocks(padded)
        blocks_mask = len(kb_idx)
    kl, width, wbytes, offsets, total = section_offsets(n, k, w_zp, layout, segment, groups, max(blocks_mask or 0, 1))
    zp_fold = in_zp + 128 if vnni else in_zp
    if layout == VNNI:
        folded = None       # (vnni_constants folds it)
    else:
        folded = fold_bias(wsub, bias, zp_fold, wrap)
    block = keep_new((max(total, 1),), np.uint8)
    block[...] = 0

    def section(i, dtype, shape):
        return np.ndarray(shape, dtype, block, offsets[i])
    columns = [section(1, np.int32, (width,)), section(2, np.int32, (width,)), section(3, np.int32, (width,)),
               section(4, np.float64, (width,)), section(5, np.float32, (width,))]
    if layout == VNNI:
        vnni_constants(wl, bias, zp_fold, k * zp_fold * w_zp, wrap or bool(w_zp), mult, shift, real, real32,
                       section(0, np.int8, (width // 16, kl // 4, 16, 4)), *columns)
    elif layout in (AVX2, AVX2_S8):
        avx2_constants(wl, folded, mult, shift, real, real32,
                       section(0, np.int16 if layout == AVX2 else np.int8, (width // 8, kl // 4, 8, 4)), *columns)
    else:
        for out, a in zip(columns, (folded, mult, shift, real, real32)):
            out[:n] = a
        if layout == PLAIN:
            section(0, wsub.dtype, (n, k))[...] = wsub
        else:
            if not blocks_mask:
                kb_idx = np.zeros(1, np.int64)
                chosen = np.zeros((1, 16, 4), np.int8)
            if layout == SPARSE_AVX2:
                chosen = chosen.astype(np.int16).reshape(-1, 16, 2, 2).transpose(0, 2, 1, 3)
            elif layout == SPARSE_PORTABLE:
                chosen = chosen.transpose(0, 2, 1)
            section(0, chosen.dtype, chosen.shape)[...] = chosen
            section(6, np.int32, start.shape)[...] = start
            kf = np.asarray(kb_idx, np.int64) * 4
            if segment:
                span4 = -(-segment // 4) * 4
                kf = (kf // span4 * sparse_pitch + kf % span4) * sparse_elem
            else:
                kf = kf * sparse_elem
            section(7, np.int32, kf.shape)[...] = kf if blocks_mask else 0
    return block, layout, kl, tuple(offsets)
