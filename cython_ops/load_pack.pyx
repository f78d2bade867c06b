# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Load-time helpers (issue 15): one pass in C where the numpy forms of the packers (edgeml/runtime/packing.py,
packing_sparse.py, packing_depthwise.py) and of the multipliers (numerics.quantize_multipliers) take several passes
and temporaries, and an array's data address without numpy's interface dict.  Not kernels: no KERNELS table; each
function has a numpy twin, and tests/test_load_fast_paths.py compares the two."""
from cpython.buffer cimport PyBUF_STRIDES, PyBuffer_Release, PyObject_GetBuffer
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint32_t
from libc.string cimport memcpy, memset

import numpy as np


cdef extern from "math.h" nogil:
    double frexp(double x, int* exp)
    double floor(double x)
    bint isfinite(double x)


def count_nonzero_blocks_s8(const int8_t[:, :] w, Py_ssize_t cols, Py_ssize_t depth, Py_ssize_t segment=0):
    """(blocks holding a nonzero weight, all blocks) of w [N][K] cut into cols x depth blocks, the last ones
    zero-padded (packing_sparse.block_mask counted).  segment > 0: each run of `segment` K values (K a multiple of
    it) is zero-padded to a multiple of depth on its own, as the implicit-GEMM convs pack each window row."""
    cdef Py_ssize_t n = w.shape[0], k = w.shape[1]
    if segment <= 0 or k == 0:
        segment = max(k, 1)
    if k % segment:
        raise ValueError("count_nonzero_blocks_s8: K is not a multiple of the segment")
    cdef Py_ssize_t per_segment = (segment + depth - 1) // depth
    cdef Py_ssize_t groups = (n + cols - 1) // cols, kblocks = (k // segment) * per_segment
    cdef Py_ssize_t g, r, j, sg, whole, count = 0
    cdef uint32_t word
    cdef const int8_t* row
    cdef uint32_t* seen_row
    cdef uint32_t[::1] seen = np.zeros(max(kblocks, 1), np.uint32)
    # rows of contiguous bytes, blocks 4 deep: one 32-bit OR per block
    cdef bint words = depth == 4 and (n == 0 or k == 0 or w.strides[1] == 1)
    whole = segment // 4 if words else 0
    for g in range(groups):
        memset(&seen[0], 0, kblocks * sizeof(uint32_t))
        for r in range(g * cols, min(n, (g + 1) * cols)):
            if words:
                for sg in range(k // segment):
                    row = &w[r, sg * segment]
                    seen_row = &seen[sg * per_segment]
                    for j in range(whole):
                        memcpy(&word, row + 4 * j, 4)
                        seen_row[j] |= word
                    for j in range(4 * whole, segment):
                        seen_row[j // 4] |= <uint8_t>row[j]
            else:
                for j in range(k):
                    seen[j // segment * per_segment + j % segment // depth] |= <uint8_t>w[r, j]
        for j in range(kblocks):
            count += seen[j] != 0
    return count, groups * kblocks


def pack_vnni_s8(const int8_t[:, :] w, int8_t[:, :, :, ::1] out, bint repeat_eight):
    """w [N][K] -> out [ceil(N / 16)][ceil(K / 4)][16][4] (zero padding; with repeat_eight and N == 8, lanes 8-15
    repeat rows 0-7); returns the int64 row sums of w."""
    cdef Py_ssize_t n = w.shape[0], k = w.shape[1]
    cdef Py_ssize_t kgroups = out.shape[1], r, j, c
    cdef int64_t s
    cdef int8_t v
    cdef int8_t* base
    sums_array = np.empty(n, np.int64)
    cdef int64_t[::1] sums = sums_array
    if out.shape[0] * 16 < n or out.shape[2] != 16 or out.shape[3] != 4 or kgroups * 4 < k:
        raise ValueError("pack_vnni_s8: the output blocks do not hold the weights")
    if out.size:
        memset(&out[0, 0, 0, 0], 0, out.size)
    cdef Py_ssize_t b, g, whole = k // 4
    cdef int32_t s32
    cdef const int8_t* src
    if n and k and w.strides[1] == 1:
        # rows of contiguous bytes: each 4-deep run moves as one 32-bit word, the stores are sequential
        for b in range((n + 15) // 16):
            base = &out[b, 0, 0, 0]
            for g in range(whole):
                for r in range(16 * b, min(n, 16 * b + 16)):
                    memcpy(base + g * 64 + (r - 16 * b) * 4, &w[r, 4 * g], 4)
            if whole < kgroups:
                for r in range(16 * b, min(n, 16 * b + 16)):
                    for j in range(4 * whole, k):
                        base[whole * 64 + (r - 16 * b) * 4 + j - 4 * whole] = w[r, j]
        for r in range(n):
            src = &w[r, 0]
            if k < (1 << 23):       # |sum| < 2^30: int32 sums, which the compiler vectorizes
                s32 = 0
                for j in range(k):
                    s32 += src[j]
                sums[r] = s32
            else:
                s = 0
                for j in range(k):
                    s += src[j]
                sums[r] = s
    else:
        for r in range(n):
            base = &out[0, 0, 0, 0] + (r // 16) * kgroups * 64 + (r % 16) * 4
            s = 0
            for j in range(k):
                v = w[r, j]
                base[(j >> 2) * 64 + (j & 3)] = v
                s += v
            sums[r] = s
    if repeat_eight and n == 8:
        base = &out[0, 0, 0, 0]
        for j in range(kgroups):
            memcpy(base + j * 64 + 32, base + j * 64, 32)
    return sums_array


def quantize_multipliers(const double[::1] real, int rounding):
    """numerics.quantize_multipliers in one C pass (same double arithmetic: frexp, the exact scaling by 2^31,
    rounding half up of the positive fraction): (int32 multipliers, int32 shifts); ValueError for a negative or
    non-finite value, naming the first."""
    cdef Py_ssize_t n = real.shape[0], i
    cdef double q, scaled, whole
    cdef int e
    mult_array, shift_array = np.empty(n, np.int32), np.empty(n, np.int32)
    cdef int32_t[::1] mult = mult_array
    cdef int32_t[::1] shift = shift_array
    for i in range(n):
        if not (isfinite(real[i]) and real[i] >= 0):
            raise ValueError(f"cannot quantize multiplier {real[i]!r}")
        q = frexp(real[i], &e)
        scaled = q * 2147483648.0
        whole = floor(scaled)
        if scaled - whole >= 0.5:
            whole += 1.0
        if whole == 2147483648.0:
            whole = 1073741824.0
            e += 1
        if e < -31:
            mult[i], shift[i] = 0, 0
        elif rounding == 1 and e > 30:      # the single-rounding build clamps large multipliers
            mult[i], shift[i] = 2147483647, 30
        else:
            mult[i], shift[i] = <int32_t>whole, e
    return mult_array, shift_array



def data_address(obj):
    """The address of an array's first element (numpy's __array_interface__["data"][0], without building the
    interface dict): the start of the buffer the object exports."""
    cdef Py_buffer view
    PyObject_GetBuffer(obj, &view, PyBUF_STRIDES)
    cdef size_t where = <size_t>view.buf
    PyBuffer_Release(&view)
    return where



def depthwise_lane_weights(const int8_t[:, :] w_taps, const int64_t[::1] ch, const uint8_t[::1] used,
                           Py_ssize_t step, Py_ssize_t group, Py_ssize_t groups, int subtract, out):
    """packing_depthwise's weights per vector lane in one pass: out (int8, or int16 for the wide kernels, `groups`
    * group taps) [pattern][tap group][accumulator][lane / 4][tap of the group] = w_taps[tap][ch[lane]] - subtract,
    0 for padding taps and unused lanes (used[lane] == 0)."""
    cdef Py_ssize_t taps = w_taps.shape[0], lanes = ch.shape[0], quarter = step // 4
    cdef Py_ssize_t patterns = lanes // step, p, g, a, l, t, lane, tap, at = 0
    cdef int value
    cdef int8_t[::1] out8
    cdef int16_t[::1] out16
    cdef bint wide = out.dtype.itemsize == 2
    if wide:
        out16 = out.reshape(-1)
    else:
        out8 = out.reshape(-1)
    if out.size != patterns * groups * group * step or used.shape[0] != lanes or groups * group < taps:
        raise ValueError("depthwise_lane_weights: sizes do not match")
    for lane in range(lanes):
        if used[lane] and not 0 <= ch[lane] < w_taps.shape[1]:
            raise ValueError("depthwise_lane_weights: a lane's channel is outside the weights")
    for p in range(patterns):
        for g in range(groups):
            for a in range(4):
                for l in range(quarter):
                    lane = p * step + a * quarter + l
                    for t in range(group):
                        tap = g * group + t
                        value = w_taps[tap, ch[lane]] - subtract if tap < taps and used[lane] else 0
                        if wide:
                            out16[at] = <int16_t>value
                        else:
                            out8[at] = <int8_t>value
                        at += 1


def mbqm_lanes16(const int32_t[::1] mult, const int32_t[::1] shift):
    """packing_depthwise.mbqm_lanes16 in one pass: per 16 lanes int32 m, m_odd, left, int64 add_e, add_o, neg_e,
    neg_o, sh_e, sh_o (576 bytes)."""
    cdef Py_ssize_t rows = mult.shape[0] // 16, r, i
    out_array = np.zeros((rows, 576), np.uint8)
    cdef uint8_t[:, ::1] out = out_array
    cdef int32_t* i32
    cdef int64_t* i64
    cdef int64_t e
    for r in range(rows):
        i32 = <int32_t*>&out[r, 0]
        i64 = <int64_t*>&out[r, 192]
        for i in range(16):
            i32[i] = mult[16 * r + i]
            i32[16 + i] = mult[16 * r + i + 1] if i % 2 == 0 else 0
            i32[32 + i] = shift[16 * r + i] if shift[16 * r + i] > 0 else 0
        for i in range(16):     # even lanes fill the first half of each pair of int64 parts, odd lanes the second
            e = -<int64_t>shift[16 * r + i]
            if e < 0:
                e = 0
            if e > 33:
                raise ValueError("mbqm_lanes16: a right shift beyond 33")
            i64[(i % 2) * 8 + i // 2] = (1 << 30) + ((<int64_t>1) << (30 + e)) if e > 0 else (1 << 30)
            i64[16 + (i % 2) * 8 + i // 2] = -(<int64_t>1 << 31) if e > 0 else 0
            i64[32 + (i % 2) * 8 + i // 2] = 31 + e
    return out_array


def mbqm_lanes8(const int32_t[::1] mult, const int32_t[::1] shift):
    """packing_depthwise.mbqm_lanes8 in one pass: per 8 lanes int32 m, m_odd, left, right, half (160 bytes)."""
    cdef Py_ssize_t rows = mult.shape[0] // 8, r, i
    out_array = np.zeros((rows, 160), np.uint8)
    cdef uint8_t[:, ::1] out = out_array
    cdef int32_t* i32
    cdef int64_t s, right
    for r in range(rows):
        i32 = <int32_t*>&out[r, 0]
        for i in range(8):
            s = shift[8 * r + i]
            right = -s if s < 0 else 0
            if right > 32:
                raise ValueError("mbqm_lanes8: a right shift beyond 32")
            i32[i] = mult[8 * r + i]
            i32[8 + i] = mult[8 * r + i + 1] if i % 2 == 0 else 0
            i32[16 + i] = <int32_t>(s if s > 0 else 0)
            i32[24 + i] = <int32_t>right
            i32[32 + i] = <int32_t>((<int64_t>1) << (right - 1)) if right > 0 else 0
    return out_array
