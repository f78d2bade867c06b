"""Weights packed once at load into the layouts the micro-kernels read (cython_ops/include)."""
from __future__ import annotations

from typing import Optional

import numpy as np

from cython_ops import load_pack
from edgeml.errors import ModelFormatError
from edgeml.ir import REQUANT_FLOAT as IR_REQUANT_FLOAT, Op


def row_sums(w2: np.ndarray) -> np.ndarray:
    """sum_k w[n, k] in int64, summed in int32 where no sum can overflow it (int8 / int16 weights, K < 2^15:
    several times faster than widening every weight to int64 first)."""
    if w2.dtype.itemsize <= 2 and w2.shape[-1] < (1 << 15):
        return w2.sum(axis=-1, dtype=np.int32).astype(np.int64)
    return w2.sum(axis=-1, dtype=np.int64)


def grouped_transpose(wp: np.ndarray, cols: int, depth: int, out: Optional[np.ndarray] = None) -> np.ndarray:
    """[N][K] -> contiguous [N / cols][K / depth][cols][depth] (into `out` when given): the transposition moves
    each run of `depth` values as one machine word (int8 x 4 as an int32, int16 x 4 as an int64), not value by
    value."""
    n, k = wp.shape
    shape = (n // cols, k // depth, cols, depth)
    if out is None:
        out = np.empty(shape, wp.dtype)
    word = {1: np.int8, 2: np.int16, 4: np.int32, 8: np.int64}.get(wp.dtype.itemsize * depth)
    if word is None or not wp.flags.c_contiguous:
        out[...] = wp.reshape(n // cols, cols, k // depth, depth).transpose(0, 2, 1, 3)
        return out
    words = wp.view(word).reshape(n // cols, cols, k // depth).transpose(0, 2, 1)
    np.copyto(out.view(word).reshape(n // cols, k // depth, cols), words)
    return out


def padded_block_source(w2: np.ndarray, rows: int, cols: int, dtype) -> np.ndarray:
    """w2 zero-padded to [rows][cols] in `dtype`; w2 itself when it already is that (no copy)."""
    if w2.shape == (rows, cols) and w2.dtype == dtype and w2.flags.c_contiguous:
        return w2
    wp = np.zeros((rows, cols), dtype)
    wp[:w2.shape[0], :w2.shape[1]] = w2
    return wp


def fold_input_zero_point(op: Op, bias, weights_2d: np.ndarray, in_zp: int) -> np.ndarray:
    """bias - in_zp * sum_k w[n, k]: padding taps hold in_zp, so they cancel exactly."""
    # onnxruntime's int32 sums wrap (a quantizer may clip a bias to INT32_MIN)
    wrap = op.options.get("requant") == IR_REQUANT_FLOAT
    fast = weights_2d.dtype == np.int8 and weights_2d.ndim == 2 and (bias is None or bias.dtype == np.int32)
    try:
        return (load_pack.fold_bias_s8 if fast else fold_bias)(weights_2d, bias, in_zp, wrap)     # (C: one pass)
    except OverflowError:
        raise ModelFormatError(f"{op.describe()}: bias and weights overflow the int32 accumulator") from None


def fold_bias(weights_2d: np.ndarray, bias, zp: int, wrap: bool) -> np.ndarray:
    """The numpy form of load_pack.fold_bias_s8: int32 bias - zp * sum_k w[n, k], modulo 2^32 when wrap, else
    OverflowError outside (-2^31, 2^31)."""
    n_out = weights_2d.shape[0]
    b = np.zeros(n_out, np.int64) if bias is None else np.asarray(bias).astype(np.int64)
    adj = b - zp * row_sums(weights_2d)
    if wrap:
        return wrap_int32(adj)
    if adj.size and not -2 ** 31 < adj.min() <= adj.max() < 2 ** 31:      # (|adj| >= 2^31, in two reductions)
        raise OverflowError("bias and weights overflow the int32 accumulator")
    return adj.astype(np.int32)


VNNI_SLACK = 64           # the VNNI gathers store whole 64-byte vectors past a row's end
VNNI_CHUNK_BYTES = 16384  # packed rows gathered per GEMM call: they stay in L1 while every column panel reads them


def wrap_int32(a: np.ndarray) -> np.ndarray:
    """int64 -> int32 modulo 2^32, as the kernels' int32 sums wrap."""
    return ((np.asarray(a, np.int64) + 2 ** 31) % 2 ** 32 - 2 ** 31).astype(np.int32)


def vnni_constants(w2: np.ndarray, bias, zp_fold: int, zp_add: int, wrap: bool, mult, shift, scale64, scale32,
                   out_w, out_bias, out_mult, out_shift, out_scale64, out_scale32) -> None:
    """The VNNI sections of packing_gemm.pack_gemm_int8_numpy (load_prepare.pack_gemm_int8's twin): the blocks of
    w2 [N][K], bias - zp_fold * row sums + zp_add (modulo 2^32 when wrap, else OverflowError outside (-2^31, 2^31))
    and the per-column requantization arrays zero-padded to the 16-column width (N == 8: columns 8-15 repeat 0-7)."""
    n = w2.shape[0]
    sums = vnni_blocks(w2, out_w)
    b = np.zeros(out_bias.size, np.int64)
    b[:n] = (0 if bias is None else np.asarray(bias).astype(np.int64)) - zp_fold * sums + zp_add
    if wrap:
        b = wrap_int32(b).astype(np.int64)
    elif b.size and not -2 ** 31 < b.min() <= b.max() < 2 ** 31:
        raise OverflowError("bias and weights overflow the int32 accumulator")
    for out, a in ((out_bias, b), (out_mult, mult), (out_shift, shift), (out_scale64, scale64),
                   (out_scale32, scale32)):
        out[...] = 0
        out[:n] = a[:n]
        if n == 8:
            out[8:] = out[:8]


def vnni_blocks(w2: np.ndarray, out: np.ndarray, repeat_eight: bool = True) -> np.ndarray:
    """The numpy form of load_pack.pack_vnni_s8 (any integer weights that fit int8): w2 [N][K] into `out`
    [N / 16][K / 4][16][4], rows 8-15 repeating rows 0-7 when N == 8 and repeat_eight; returns the int64 row
    sums."""
    n, k = w2.shape
    wp = padded_block_source(w2, out.shape[0] * 16, out.shape[1] * 4, np.int8)
    if n == 8 and repeat_eight:
        wp = wp.copy() if wp is w2 else wp
        wp[8:, :k] = w2
    grouped_transpose(wp, 16, 4, out)
    return row_sums(w2)


def vnni_chunk(kp: int, rows: int) -> int:
    """Rows per packed chunk: a multiple of 24 (the 3-, 6- and 8-row tiles) that keeps the chunk in L1."""
    chunk = max(24, VNNI_CHUNK_BYTES // kp // 24 * 24)
    return max(1, min(chunk, rows))


AVX2_BIG_WEIGHT_BYTES = 262144    # int16 weights from this size on are not kept near by L1-sized row chunks ...
AVX2_BIG_CHUNK_BYTES = 131072     # ... so their chunks take this much (L2): the weights are streamed fewer times


def avx2_chunk(kp: int, rows: int, cols: int = 0) -> int:
    """Rows per int16 chunk of the AVX2 GEMM: a multiple of its 4-row tiles that keeps the chunk in L1, or in L2
    when the int16 weights (cols x kp) are large (each chunk reads all of them; measured 5-15% on 7x7 and 14x14
    1x1 convs with 512-1024 channels)."""
    budget = AVX2_BIG_CHUNK_BYTES if 2 * kp * cols >= AVX2_BIG_WEIGHT_BYTES else VNNI_CHUNK_BYTES
    return max(1, min(rows, max(4, budget // (2 * kp) // 4 * 4)))


def avx2_constants(w2: np.ndarray, bias_zp, mult, shift, scale64, scale32, out_w, out_bias, out_mult, out_shift,
                   out_scale64, out_scale32) -> None:
    """The AVX2 sections of packing_gemm.pack_gemm_int8_numpy (out_w int16, or int8 for AVX2_S8): w2 [N][K] as
    panels [N / 8][K / 4][8][4] of out_w's type, the bias and the per-column requantization arrays zero-padded to
    the 8-column width."""
    n = w2.shape[0]
    grouped_transpose(padded_block_source(w2, out_w.shape[0] * 8, out_w.shape[1] * 4, out_w.dtype), 8, 4, out_w)
    for out, a in ((out_bias, bias_zp), (out_mult, mult), (out_shift, shift), (out_scale64, scale64),
                   (out_scale32, scale32)):
        out[...] = 0
        out[:n] = a[:n]


COLUMN_BLOCK = 64                                      # em_lstm_dots.h EM_LSTM_COLS


def padded_columns(n: int) -> int:
    return -(-n // COLUMN_BLOCK) * COLUMN_BLOCK


def pack_s8(w: np.ndarray) -> np.ndarray:
    """int8 [N, K] -> int16 blocks [N/64][K/2][64][2] for em_lstm_dots (zero padding to N % 64, K % 2)."""
    n, k = w.shape
    wp = np.zeros((padded_columns(n), k + k % 2), np.int16)
    wp[:n, :k] = w
    return grouped_transpose(wp, COLUMN_BLOCK, 2)


def pack_u8s8(w: np.ndarray) -> np.ndarray:
    """int8 [N, K] -> blocks [N/64][K/4][64][4] for em_lstm_dots_u8s8 (vpdpbusd; zero padding)."""
    n, k = w.shape
    kp = -(-k // 4) * 4
    wp = np.zeros((padded_columns(n), kp), np.int8)
    wp[:n, :k] = w
    return grouped_transpose(wp, COLUMN_BLOCK, 4)


def pack_f32(w: np.ndarray) -> np.ndarray:
    """float [N, K] -> blocks [N/64][K][64] for em_lstm_fdots (columns zero-padded)."""
    n, k = w.shape
    wp = np.zeros((padded_columns(n), k), np.float32)
    wp[:n] = w
    return np.ascontiguousarray(wp.reshape(-1, COLUMN_BLOCK, k).transpose(0, 2, 1))


UNIT_BLOCK = 16                                        # units per column block when gates are interleaved


def interleave_gates(parts: list) -> np.ndarray:
    """Four per-gate arrays [NC, ...] (i, f, g, o) -> one [64 * ceil(NC / 16), ...] array whose every 64 rows are
    the four gates of 16 units (em_lstm_fstep_avx512's column blocks), zero rows for the units past NC."""
    n = parts[0].shape[0]
    nb = -(-n // UNIT_BLOCK)
    out = np.zeros((nb, len(parts), UNIT_BLOCK) + parts[0].shape[1:], parts[0].dtype)
    for g, part in enumerate(parts):
        full = np.zeros((nb * UNIT_BLOCK,) + part.shape[1:], part.dtype)
        full[:n] = part
        out[:, g] = full.reshape((nb, UNIT_BLOCK) + part.shape[1:])
    return out.reshape((nb * len(parts) * UNIT_BLOCK,) + parts[0].shape[1:])

