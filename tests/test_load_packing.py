"""The load-time fast paths give exactly what the plain forms give: vectorised multipliers against the scalar
QuantizeMultiplier, the packers' word-wise block transposes and int32 row sums, and the GEMM packing
(load_prepare.pack_gemm_int8 and its numpy twin) against element-wise references, on awkward shapes (odd channel
counts, depths not a multiple of 4, per-channel scales, weight zero points)."""
from __future__ import annotations

import numpy as np
import pytest

from cython_ops import load_prepare
from edgeml import numerics as Q
from edgeml.ir import Graph
from edgeml.runtime import packing, packing_gemm
from edgeml.runtime.plan import Ctx
from edgeml.runtime.requant import REQUANT_FLOAT, ColumnRequant


def multiplier_cases() -> np.ndarray:
    rng = np.random.default_rng(0)
    ties = (np.arange(2 ** 30, 2 ** 30 + 2000) + 0.5) / 2 ** 31 * 2.0 ** rng.integers(-45, 5, 2000)
    edges = [0.0, -0.0, 5e-324, 2.2250738585072014e-308, 1.0, 0.5, 2.0 ** -31, 2.0 ** -32, 2.0 ** -33,
             1 - 2 ** -53, (2 ** 31 - 0.5) / 2 ** 31, (2 ** 31 - 0.5) / 2 ** 31 * 2.0 ** -40, 2.0 ** 31, 1e300]
    return np.concatenate([rng.uniform(0, 1, 3000), 10.0 ** rng.uniform(-300, 300, 3000), ties,
                           np.nextafter(ties, 0), np.nextafter(ties, 1), edges])


@pytest.mark.parametrize("rounding", [0, 1])
def test_quantize_multipliers_equal_the_scalar_form(rounding):
    reals = multiplier_cases()
    mult, shift = Q.quantize_multipliers(reals, rounding)
    want = [Q.quantize_multiplier(r, rounding) for r in reals]
    assert mult.dtype == np.int32 and shift.dtype == np.int32
    np.testing.assert_array_equal(mult, [m for m, _ in want])
    np.testing.assert_array_equal(shift, [s for _, s in want])


@pytest.mark.parametrize("bad", [-1.0, np.nan, np.inf])
def test_quantize_multipliers_refuse_what_the_scalar_form_refuses(bad):
    with pytest.raises(ValueError, match="cannot quantize multiplier"):
        Q.quantize_multipliers([0.25, bad])


@pytest.mark.parametrize("dtype", [np.int8, np.int16])
@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (17, 27), (33, 1001), (3, 40000)])
def test_row_sums_equal_int64_sums(dtype, shape):
    info = np.iinfo(dtype)
    w = np.random.default_rng(1).integers(info.min, info.max + 1, size=shape).astype(dtype)
    w[0] = info.min          # the most negative row: the int32 path must not overflow
    got = packing.row_sums(w)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, w.astype(np.int64).sum(axis=1))


def blocks_reference(wp: np.ndarray, cols: int, depth: int) -> np.ndarray:
    """out[b][g][c][d] = wp[b * cols + c][g * depth + d], element by element."""
    n, k = wp.shape
    out = np.zeros((n // cols, k // depth, cols, depth), wp.dtype)
    for b in range(n // cols):
        for g in range(k // depth):
            for c in range(cols):
                for d in range(depth):
                    out[b, g, c, d] = wp[b * cols + c, g * depth + d]
    return out


@pytest.mark.parametrize("dtype,cols,depth", [(np.int8, 16, 4), (np.int16, 8, 4), (np.int16, 64, 2),
                                              (np.int8, 64, 4), (np.float32, 64, 1), (np.int8, 8, 3)])
def test_grouped_transpose_equals_element_wise_blocks(dtype, cols, depth):
    rng = np.random.default_rng(2)
    wp = rng.integers(-128, 128, size=(2 * cols, 5 * depth)).astype(dtype)
    got = packing.grouped_transpose(wp, cols, depth)
    assert got.flags.c_contiguous and got.dtype == wp.dtype
    np.testing.assert_array_equal(got, blocks_reference(wp, cols, depth))
    strided = np.repeat(wp, 2, axis=1)[:, ::2]          # a non-contiguous input takes the plain transpose
    np.testing.assert_array_equal(packing.grouped_transpose(strided, cols, depth), blocks_reference(wp, cols, depth))


def requant_for(n: int, w_zp: int = 0, mode: int = 0) -> ColumnRequant:
    rng = np.random.default_rng(n)
    real = rng.uniform(1e-4, 2e-3, n)                   # per-channel scales
    mult, shift = Q.quantize_multipliers(real)
    return ColumnRequant(mode, mult, shift, real, real.astype(np.float32), 3, -128, 127, w_zp=w_zp)


def keep_new(shape, dtype):
    return Ctx(Graph(tensors=[], ops=[], inputs=[], outputs=[], source="tflite"), 0).keep_new(shape, dtype)


PACKERS = [load_prepare.pack_gemm_int8, packing_gemm.pack_gemm_int8_numpy]


def packed_gemm(fn, w2, bias, in_zp, rq: ColumnRequant, layout: int) -> dict:
    """The sections of pack_gemm_int8's block (or its numpy twin's) for rq's columns, as arrays."""
    n, k = w2.shape
    wrap = rq.mode == REQUANT_FLOAT
    block, got_layout, kp, at = fn(keep_new, w2, bias, 0.0, None, 0.0, 0,
                                   (rq.mult, rq.shift, rq.scale64, rq.scale32), in_zp, rq.w_zp, wrap, layout, 0,
                                   packing_gemm.PLAIN, 0, -1.0, 0, 1)
    assert got_layout == layout
    cols, wtype = (16, np.int8) if layout == packing_gemm.VNNI else (8, np.int16 if layout == packing_gemm.AVX2
                                                                      else np.int8)
    width = -(-n // cols) * cols
    return dict(kp=kp, w=np.ndarray((width // cols, kp // 4, cols, 4), wtype, block, at[0]),
                bias=np.ndarray((width,), np.int32, block, at[1]), mult=np.ndarray((width,), np.int32, block, at[2]))


def vnni_reference(w2, bias, in_zp, rq, taps=None):
    """The VNNI layout (em_gemm_vnni.h) written element by element: 16-column x 4-deep blocks, the bias folded
    with (in_zp + 128) row sums (+ taps (in_zp + 128) w_zp with a weight zero point, modulo 2^32), columns 8-15
    repeating 0-7 when N == 8."""
    n, k = w2.shape
    np_, kp = -(-n // 16) * 16, -(-k // 4) * 4
    wp = np.zeros((np_, kp), np.int8)
    wp[:n, :k] = w2
    b = np.zeros(np_, np.int64)
    for c in range(n):
        b[c] = (0 if bias is None else int(bias[c])) - (in_zp + 128) * sum(int(v) for v in w2[c])
    if rq.w_zp or rq.mode == REQUANT_FLOAT:
        b[:n] += (k if taps is None else taps) * (in_zp + 128) * rq.w_zp
        b = packing.wrap_int32(b).astype(np.int64)
    if n == 8:
        wp[8:, :k] = w2
        b[8:] = b[:8]
    return blocks_reference(wp, 16, 4), b.astype(np.int32)


@pytest.mark.parametrize("fn", PACKERS)
@pytest.mark.parametrize("n,k", [(1, 1), (7, 3), (8, 27), (17, 5), (33, 64), (48, 1001)])
@pytest.mark.parametrize("w_zp", [0, 5])
def test_vnni_packing_equals_element_wise_packing(n, k, w_zp, fn):
    rng = np.random.default_rng(n * 1000 + k)
    w2 = rng.integers(-127, 128, size=(n, k)).astype(np.int8)
    bias = rng.integers(-5000, 5000, size=n).astype(np.int32)
    rq = requant_for(n, w_zp)
    got = packed_gemm(fn, w2, bias, -7, rq, packing_gemm.VNNI)
    want_w, want_b = vnni_reference(w2, bias, -7, rq)
    np.testing.assert_array_equal(got["w"], want_w)
    np.testing.assert_array_equal(got["bias"], want_b)
    np.testing.assert_array_equal(got["mult"][:n], rq.mult)
    assert got["kp"] == -(-k // 4) * 4


@pytest.mark.parametrize("fn", PACKERS)
@pytest.mark.parametrize("layout", [packing_gemm.AVX2, packing_gemm.AVX2_S8])
@pytest.mark.parametrize("n,k", [(1, 1), (7, 3), (9, 27), (33, 1001)])
def test_avx2_packing_equals_element_wise_packing(n, k, layout, fn):
    rng = np.random.default_rng(n + k)
    w2 = rng.integers(-127, 128, size=(n, k)).astype(np.int8)
    bias = rng.integers(-5000, 5000, size=n).astype(np.int32)
    got = packed_gemm(fn, w2, bias, -7, requant_for(n), layout)
    wp = np.zeros((-(-n // 8) * 8, -(-k // 4) * 4), np.int16 if layout == packing_gemm.AVX2 else np.int8)
    wp[:n, :k] = w2
    np.testing.assert_array_equal(got["w"], blocks_reference(wp, 8, 4))
    np.testing.assert_array_equal(got["bias"][:n], bias.astype(np.int64) + 7 * w2.astype(np.int64).sum(axis=1))
    assert not got["bias"][n:].any()


@pytest.mark.parametrize("n,k", [(1, 1), (65, 3), (130, 27)])
def test_lstm_packs_equal_element_wise_packing(n, k):
    w = np.random.default_rng(n).integers(-128, 128, size=(n, k)).astype(np.int8)
    cols = packing.padded_columns(n)
    wp16 = np.zeros((cols, k + k % 2), np.int16)
    wp16[:n, :k] = w
    np.testing.assert_array_equal(packing.pack_s8(w), blocks_reference(wp16, 64, 2))
    wp8 = np.zeros((cols, -(-k // 4) * 4), np.int8)
    wp8[:n, :k] = w
    np.testing.assert_array_equal(packing.pack_u8s8(w), blocks_reference(wp8, 64, 4))
