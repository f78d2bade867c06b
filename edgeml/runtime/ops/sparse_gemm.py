"""The block-sparse choice of int8 CONV_2D and FULLY_CONNECTED (em_sparse.h): at load, the dense int8 weights'
16x4 blocks are counted, and below a measured density per kernel shape the sparse kernel replaces the dense one.
Ctx.sparse: "auto" (by density), "off" (always dense), "on" (sparse wherever it applies: tests, benchmarks)."""
from __future__ import annotations

from typing import Optional

import numpy as np

from edgeml.ir import Op
from edgeml.runtime import requant
from edgeml.runtime.arena import ALIGN
from edgeml.runtime.kernels import CONFIG
from edgeml.runtime.packing import fold_input_zero_point
from edgeml.runtime.packing_gemm import SPARSE_LAYOUTS
from edgeml.runtime.packing_sparse import BLOCK_COLS, block_density, sparse_pack, window_rows
from edgeml.runtime.plan import Ctx, Step, address

SPARSE_MODES = ("auto", "off", "on")
ROWS_L1_BYTES = 16384      # gathered rows per chunk: they stay in L1 while every column group reads them
PORTABLE_CHUNK = 64

# The sparse kernel of each ISA path; AVX-VNNI and AVX-512 without VNNI take the AVX2 one.
SPARSE_KERNEL = {"avx512vnni": "conv2d_int8_sparse_vnni", "avxvnni": "conv2d_int8_sparse_avx2",
                 "avx512": "conv2d_int8_sparse_avx2", "avx2": "conv2d_int8_sparse_avx2"}

# Highest block density (nonzero 16x4 blocks / all) at which the sparse kernel is faster than the dense one, per
# path and shape: "1x1" (1x1 stride-1 conv, FULLY_CONNECTED with 4+ rows), "kxk" (every other conv), "gemv"
# (FULLY_CONNECTED with 1-3 rows).  Measured with benchmarks/bench_sparse.py (one thread, alternating, medians of
# thread CPU time; 2026-12-06, AVX-512 VNNI machine, avx2 forced by EDGEML_ISA; vnni re-measured after the
# requantization in registers, two runs alike); crossovers seen per layer:
#   vnni  1x1: 0.9-1.0 (ResNet-8 / MobileNetV1 pointwise layers, FC 8x512x128), kxk: 0.75-0.9 (ResNet-8 3x3),
#         gemv: 0.6 (1x1024x256; 1x256x64, 0.2 us: 0.25)
#   avx2  1x1: 0.75-1.0, kxk: 0.75-1.0, gemv: 0.75-1.0 (1x1024x256: 1.0)
#   portable (EDGEML_ISA=scalar) 1x1: 0.1-0.4, kxk: 0.25, gemv: 0.25-0.5 (the dense loops vectorize better)
# Each threshold sits at or below the lowest crossover of its row, so "auto" never picks a slower kernel there
# (but a GEMV as small as 1x256x64, where the sparse kernel at density 0.5 takes 5% more of 0.2 us).
MAX_DENSITY = {
    "vnni": {"1x1": 0.85, "kxk": 0.75, "gemv": 0.5},
    "avx2": {"1x1": 0.75, "kxk": 0.75, "gemv": 0.75},
    "portable": {"1x1": 0.1, "kxk": 0.25, "gemv": 0.25},
}


PATH_OF_KERNEL = {"conv2d_int8_sparse_vnni": "vnni", "conv2d_int8_sparse_avx2": "avx2"}     # else "portable"


def sparse_path() -> str:
    return PATH_OF_KERNEL.get(SPARSE_KERNEL.get(CONFIG.isa, "conv2d_int8_sparse"), "portable")


def wants_sparse(ctx: Ctx, w2: np.ndarray, shape_kind: str, segment: int = 0) -> bool:
    """Whether this layer's int8 weights [N][K] (each run of `segment` K values padded to a multiple of 4 when
    segment > 0) take the sparse kernel under ctx.sparse."""
    mode = getattr(ctx, "sparse", "auto")
    if mode == "off":
        return False
    if mode == "on":
        return True
    return block_density(w2, segment) <= MAX_DENSITY[sparse_path()][shape_kind]


def sparse_mode(kernel: str, ints: dict) -> int:
    """How em_sparse.h reads the rows: 1 1x1 rows, 4 implicit GEMM over a padded image (vector kernels,
    dilation_w 1; weights per window row, KW * IC rounded up to 4), 0 im2col."""
    direct = (ints["kh"] == 1 and ints["kw"] == 1 and ints["sh"] == 1 and ints["sw"] == 1 and ints["pad_top"] == 0
              and ints["pad_left"] == 0)
    return 1 if direct else (4 if kernel != "conv2d_int8_sparse" and ints["dw"] == 1 else 0)


def sparse_candidate(ctx: Ctx, ints: dict, w_zp: int, shape_kind: str) -> tuple:
    """(sparse kernel, its row mode, packing_gemm.pack_gemm's sparse arguments: layout, segment, max density (< 0:
    never sparse), block_k pitch and bytes per row value) of an int8 conv (ints: the EM_CONV integers)."""
    kernel = SPARSE_KERNEL.get(CONFIG.isa, "conv2d_int8_sparse")
    mode = sparse_mode(kernel, ints)
    setting = getattr(ctx, "sparse", "auto")
    if w_zp or setting == "off":      # weights with a zero point (uint8 models): their zeros are not zero terms
        limit = -1.0
    else:
        limit = 2.0 if setting == "on" else MAX_DENSITY[PATH_OF_KERNEL.get(kernel, "portable")][shape_kind]
    elem = 2 if kernel == "conv2d_int8_sparse_avx2" else 1       # bytes per row value: int16 on AVX2
    segment = pitch = 0
    if mode == 4:
        segment = ints["kw"] * ints["ic"]
        pitch = ints["dh"] * ((ints["ow"] - 1) * ints["sw"] + (ints["kw"] - 1) * ints["dw"] + 1) * ints["ic"]
    return kernel, mode, (SPARSE_LAYOUTS[kernel], segment, limit, pitch, elem)


def sparse_step(op: Op, x, y, kernel: str, mode: int, kp: int, K: int, pointers: dict, ints: dict, macs: int,
                threads: int) -> Step:
    """The sparse kernel's step over weights packed by packing_gemm.pack_gemm (pointers: its slots)."""
    rows = ints["oh"] * ints["ow"]
    elem = 2 if kernel == "conv2d_int8_sparse_avx2" else 1
    if kernel == "conv2d_int8_sparse":
        threads, chunk = 1, min(rows, PORTABLE_CHUNK)
        slice_bytes = 0 if mode == 1 else chunk * K
    else:
        row_bytes = kp * elem
        chunk = max(1, min(rows, max(8, ROWS_L1_BYTES // row_bytes // 8 * 8)))
        if mode == 4:
            ihp = (ints["oh"] - 1) * ints["sh"] + (ints["kh"] - 1) * ints["dh"] + 1
            iwp = (ints["ow"] - 1) * ints["sw"] + (ints["kw"] - 1) * ints["dw"] + 1
            slice_bytes = (ihp * iwp * ints["ic"] + 64) * elem + 128
        else:
            slice_bytes = chunk * row_bytes + 64 + (-(-chunk * K // 64) * 64 if mode == 0 and elem == 2 else 0)
    slice_bytes = -(-slice_bytes // ALIGN) * ALIGN
    ints_s = dict(ints, direct=mode, chunk=chunk, kp=kp, threads=threads, slice_bytes=slice_bytes)

    def make(addr):
        return (dict(pointers, input=addr(x.index), output=addr(y.index), scratch=addr("scratch")), ints_s, {})
    return Step(op, kernel, make, slice_bytes * threads, macs)


def sparse_conv_step(ctx: Ctx, op: Op, x, y, w2: np.ndarray, bias, in_zp: int, rq: requant.ColumnRequant,
                     ints: dict, macs: int, threads: int, shape_kind: str) -> Optional[Step]:
    """The sparse step of an int8 conv packed in Python (the Winograd candidates; ints: the EM_CONV integers, w2:
    weights [OC][KH * KW * IC] in im2col order), or None when the dense kernel should run.  Weights with a zero
    point (uint8 models) stay dense: their zeros are not zero terms."""
    if rq.w_zp:
        return None
    kernel = SPARSE_KERNEL.get(CONFIG.isa, "conv2d_int8_sparse")
    kw, ic = ints["kw"], ints["ic"]
    mode = sparse_mode(kernel, ints)
    # (the density is counted on w2 as the window rows will hold it, before any copy is made)
    if not wants_sparse(ctx, w2, shape_kind, kw * ic if mode == 4 else 0):
        return None
    oc, K = w2.shape
    elem = 2 if kernel == "conv2d_int8_sparse_avx2" else 1       # bytes per row value: int16 on AVX2
    iwp = (ints["ow"] - 1) * ints["sw"] + (kw - 1) * ints["dw"] + 1
    wk, offset = w2, (lambda k: k * elem)
    if mode == 4:
        span4 = -(-(kw * ic) // 4) * 4
        wk = window_rows(w2, kw * ic)
        offset = (lambda k: (k // span4 * ints["dh"] * iwp * ic + k % span4) * elem)
    kp = -(-wk.shape[1] // 4) * 4
    width = -(-oc // BLOCK_COLS) * BLOCK_COLS
    vnni = kernel == "conv2d_int8_sparse_vnni"
    packed = sparse_pack(ctx, wk, {"conv2d_int8_sparse_vnni": "vnni", "conv2d_int8_sparse_avx2": "avx2"}.get(
        kernel, "portable"), offset=offset)
    # vpdpbusd reads x + 128: its bias also takes -128 sum w (em_gemm_vnni.h)
    folded = fold_input_zero_point(op, bias, w2, in_zp + 128 if vnni else in_zp)
    bias_k = ctx.keep_array(np.pad(folded, (0, width - oc)))
    rqa = rq.arrays(ctx, width)
    pointers = dict(weights=address(packed.weights), bias=address(bias_k), group_start=address(packed.group_start),
                    block_k=address(packed.block_k), **requant.pointers(rqa))
    return sparse_step(op, x, y, kernel, mode, kp, K, pointers, ints, macs, threads)


def fully_connected_as_conv(rows: int, units: int, K: int, in_zp: int, rq) -> dict:
    """The EM_CONV integers of a FULLY_CONNECTED [rows][K] x [units][K] as the 1x1 conv over `rows` pixels the
    sparse kernel runs (rq: its ColumnSource)."""
    return dict(n=1, ih=rows, iw=1, ic=K, oh=rows, ow=1, oc=units, kh=1, kw=1, sh=1, sw=1, dh=1, dw=1,
                pad_top=0, pad_left=0, in_zp=in_zp, out_zp=rq.out_zp, act_min=rq.act_min, act_max=rq.act_max,
                mode=rq.mode, dm=1, direct=1, chunk=1)
