# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Load-time helpers (issue 15): one pass in C where the numpy forms of the packers (edgeml/runtime/packing.py,
packing_sparse.py, packing_depthwise.py) and of the multipliers (numerics.quantize_multipliers) take several passes
and temporaries, and an array's data address without numpy's interface dict.  Not kernels: no KERNELS table; each
function has a numpy twin, and tests/test_load_fast_paths.py compares the two."""
from cpython.buffer cimport PyBUF_C_CONTIGUOUS, PyBUF_STRIDES, PyBuffer_Release, PyObject_GetBuffer
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint32_t, uint64_t
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


cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    #if defined(__SSE2__)
    #include <emmintrin.h>
    #endif
    /* 16 whole rows of contiguous int8 weights (row stride k) into one VNNI block row: dst[g * 64 + 4 r + j] =
       w[r * k + 4 g + j] for the first `words` 4-byte groups; SSE2 (x86-64's baseline) moves four groups of four
       rows as one 4 x 4 transposition of 32-bit words, other CPUs word by word. */
    static void em_vnni_block_rows(const int8_t* w, int64_t k, int64_t words, int8_t* dst) {
        int64_t g = 0;
    #if defined(__SSE2__)
        for (; g + 4 <= words; g += 4)
            for (int q = 0; q < 4; q++) {
                const int8_t* src = w + 4 * q * k + 4 * g;
                const __m128i r0 = _mm_loadu_si128((const __m128i*)src);
                const __m128i r1 = _mm_loadu_si128((const __m128i*)(src + k));
                const __m128i r2 = _mm_loadu_si128((const __m128i*)(src + 2 * k));
                const __m128i r3 = _mm_loadu_si128((const __m128i*)(src + 3 * k));
                const __m128i t0 = _mm_unpacklo_epi32(r0, r1), t1 = _mm_unpacklo_epi32(r2, r3);
                const __m128i t2 = _mm_unpackhi_epi32(r0, r1), t3 = _mm_unpackhi_epi32(r2, r3);
                int8_t* out = dst + g * 64 + 16 * q;
                _mm_storeu_si128((__m128i*)out, _mm_unpacklo_epi64(t0, t1));
                _mm_storeu_si128((__m128i*)(out + 64), _mm_unpackhi_epi64(t0, t1));
                _mm_storeu_si128((__m128i*)(out + 128), _mm_unpacklo_epi64(t2, t3));
                _mm_storeu_si128((__m128i*)(out + 192), _mm_unpackhi_epi64(t2, t3));
            }
    #endif
        for (; g < words; g++)
            for (int r = 0; r < 16; r++)
                memcpy(dst + g * 64 + 4 * r, w + r * k + 4 * g, 4);
    }
    /* bound[c] += |w[t][c] - zp| over the taps t of w [taps][oc] (strides in bytes): contiguous rows with a zero
       point of a byte's range in int32 lanes, which the compiler vectorizes (the per-element int64 form costs
       about eight times more on a 9-tap layer of 960 channels) */
    static void em_abs_tap_sums(const int8_t* w, int64_t taps, int64_t oc, int64_t tap_stride, int64_t ch_stride,
                                int64_t zp, int64_t* bound) {
        for (int64_t t = 0; t < taps; t++) {
            const int8_t* row = w + t * tap_stride;
            if (ch_stride == 1 && zp >= -256 && zp <= 256) {
                const int32_t z = (int32_t)zp;
                for (int64_t c = 0; c < oc; c++) {
                    const int32_t b = (int32_t)row[c] - z;
                    bound[c] += b < 0 ? -b : b;
                }
            } else {
                for (int64_t c = 0; c < oc; c++) {
                    const int64_t b = (int64_t)row[c * ch_stride] - zp;
                    bound[c] += b < 0 ? -b : b;
                }
            }
        }
    }
    /* depthwise_lane_weights' loop (see there), each lane's channel and use read once per lane, not per tap */
    static void em_dw_lane_weights(const int8_t* w, int64_t taps, int64_t tap_stride, int64_t ch_stride,
                                   const int64_t* ch, const uint8_t* used, int64_t lanes, int64_t step, int64_t group,
                                   int64_t groups, int subtract, int8_t* out8, int16_t* out16) {
        const int64_t quarter = step / 4, patterns = lanes / step;
        int64_t at = 0;
        for (int64_t p = 0; p < patterns; p++)
            for (int64_t g = 0; g < groups; g++)
                for (int64_t a = 0; a < 4; a++)
                    for (int64_t l = 0; l < quarter; l++) {
                        const int64_t lane = p * step + a * quarter + l;
                        const int u = used[lane] != 0;
                        const int8_t* col = u ? w + ch[lane] * ch_stride : w;
                        for (int64_t t = 0; t < group; t++, at++) {
                            const int64_t tap = g * group + t;
                            const int v = (u && tap < taps) ? (int)col[tap * tap_stride] - subtract : 0;
                            if (out16) out16[at] = (int16_t)v;
                            else out8[at] = (int8_t)v;
                        }
                    }
    }
    """
    void em_vnni_block_rows(const int8_t* w, int64_t k, int64_t words, int8_t* dst) nogil
    void em_dw_lane_weights(const int8_t* w, int64_t taps, int64_t tap_stride, int64_t ch_stride, const int64_t* ch,
                            const uint8_t* used, int64_t lanes, int64_t step, int64_t group, int64_t groups,
                            int subtract, int8_t* out8, int16_t* out16) nogil
    void em_abs_tap_sums(const int8_t* w, int64_t taps, int64_t oc, int64_t tap_stride, int64_t ch_stride, int64_t zp,
                         int64_t* bound) nogil


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
    if out.size and not (n % 16 == 0 and k % 4 == 0 and out.shape[0] * 16 == n and kgroups * 4 == k):
        memset(&out[0, 0, 0, 0], 0, out.size)      # (padding to zero; without any, every byte is written below)
    cdef Py_ssize_t b, g, whole = k // 4
    cdef int32_t s32
    cdef const int8_t* src
    if n and k and w.strides[1] == 1:
        # rows of contiguous bytes: each 4-deep run moves as one 32-bit word, the stores are sequential
        for b in range((n + 15) // 16):
            base = &out[b, 0, 0, 0]
            if 16 * b + 16 <= n and w.strides[0] == k:      # 16 whole contiguous rows
                em_vnni_block_rows(&w[16 * b, 0], k, whole, base)
            else:
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


cdef bint multiplier_of(double real, int rounding, int32_t* mult, int32_t* shift):
    """quantize_multipliers of one value; False for a negative or non-finite one."""
    cdef int e
    cdef double q, scaled, whole
    if not (isfinite(real) and real >= 0):
        return False
    q = frexp(real, &e)
    scaled = q * 2147483648.0
    whole = floor(scaled)
    if scaled - whole >= 0.5:
        whole += 1.0
    if whole == 2147483648.0:
        whole = 1073741824.0
        e += 1
    if e < -31:
        mult[0], shift[0] = 0, 0
    elif rounding == 1 and e > 30:      # the single-rounding build clamps large multipliers
        mult[0], shift[0] = 2147483647, 30
    else:
        mult[0], shift[0] = <int32_t>whole, e
    return True


def quantize_multipliers(const double[::1] real, int rounding):
    """numerics.quantize_multipliers in one C pass (same double arithmetic: frexp, the exact scaling by 2^31,
    rounding half up of the positive fraction): (int32 multipliers, int32 shifts); ValueError for a negative or
    non-finite value, naming the first."""
    cdef Py_ssize_t n = real.shape[0], i
    mult_array, shift_array = np.empty(n, np.int32), np.empty(n, np.int32)
    cdef int32_t[::1] mult = mult_array
    cdef int32_t[::1] shift = shift_array
    for i in range(n):
        if not multiplier_of(real[i], rounding, &mult[i], &shift[i]):
            raise ValueError(f"cannot quantize multiplier {real[i]!r}")
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
    if out.size == 0:
        return
    em_dw_lane_weights(&w_taps[0, 0] if taps and w_taps.shape[1] else NULL, taps,
                       w_taps.strides[0], w_taps.strides[1], &ch[0], &used[0], lanes, step, group, groups, subtract,
                       NULL if wide else &out8[0], &out16[0] if wide else NULL)


cdef table_rows(out_array, Py_ssize_t rows, Py_ssize_t width):
    """out_array (uint8 [rows][width]) zeroed, or a new zero array when None."""
    if out_array is None:
        return np.zeros((rows, width), np.uint8)
    cdef uint8_t[:, ::1] out = out_array
    if out.shape[0] != rows or out.shape[1] != width:
        raise ValueError("the table does not match the lanes")
    if rows:
        memset(&out[0, 0], 0, rows * width)
    return out_array


def mbqm_lanes16(const int32_t[::1] mult, const int32_t[::1] shift, out_array=None):
    """packing_depthwise.mbqm_lanes16 in one pass: per 16 lanes int32 m, m_odd, left, int64 add_e, add_o, neg_e,
    neg_o, sh_e, sh_o (576 bytes); written into out_array (uint8 [lanes / 16][576]) when given."""
    cdef Py_ssize_t rows = mult.shape[0] // 16, r, i
    out_array = table_rows(out_array, rows, 576)
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


def mbqm_lanes8(const int32_t[::1] mult, const int32_t[::1] shift, out_array=None):
    """packing_depthwise.mbqm_lanes8 in one pass: per 8 lanes int32 m, m_odd, left, right, half (160 bytes);
    written into out_array (uint8 [lanes / 8][160]) when given."""
    cdef Py_ssize_t rows = mult.shape[0] // 8, r, i
    out_array = table_rows(out_array, rows, 160)
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


def place_buffers(const int64_t[::1] sizes, const int64_t[::1] first, const int64_t[::1] last):
    """arena.plan_arena's placement in one pass: buffers in the given order (sizes already rounded to the
    alignment), each at the lowest offset that overlaps no placed buffer whose lifetime [first, last] intersects
    its own; the placed buffers are read in offset order.  Returns (int64 offsets, total bytes)."""
    cdef Py_ssize_t n = sizes.shape[0], i, j, at, count = 0
    if first.shape[0] != n or last.shape[0] != n:
        raise ValueError("place_buffers: sizes and lifetimes differ in length")
    offsets_array = np.empty(n, np.int64)
    order_array = np.empty(max(n, 1), np.int64)      # placed buffers by offset
    cdef int64_t[::1] offsets = offsets_array
    cdef int64_t[::1] order = order_array
    cdef int64_t offset, size, f, l, o, total = 0
    for i in range(n):
        size, f, l = sizes[i], first[i], last[i]
        offset = 0
        for j in range(count):
            at = order[j]
            if last[at] < f or first[at] > l:      # lifetimes apart: no conflict
                continue
            o = offsets[at]
            if offset + size <= o:
                break
            if o + sizes[at] > offset:
                offset = o + sizes[at]
        offsets[i] = offset
        j = count                                  # insert after every placed buffer at or below this offset
        while j > 0 and offsets[order[j - 1]] > offset:
            order[j] = order[j - 1]
            j -= 1
        order[j] = i
        count += 1
        if offset + size > total:
            total = offset + size
    return offsets_array, total


def nonzero_blocks(const int8_t[:, :, :, ::1] blocks):
    """The blocks of blocks [groups][K blocks][16][4] holding a nonzero weight, in row-major order: (int32 start
    [groups + 1]: each group's first chosen block, int64 K-block index of each chosen block, int8 chosen blocks
    [chosen][16][4]); packing_sparse.sparse_pack's mask, nonzero() and gather in one pass."""
    cdef Py_ssize_t groups = blocks.shape[0], depth = blocks.shape[1], g, kb, j, count = 0
    if groups and depth and (blocks.shape[2] != 16 or blocks.shape[3] != 4):
        raise ValueError("nonzero_blocks: blocks are not 16 x 4")
    start_array = np.zeros(groups + 1, np.int32)
    kb_array = np.empty(groups * depth, np.int64)
    cdef int32_t[::1] start = start_array
    cdef int64_t[::1] kbs = kb_array
    cdef const uint8_t* block
    cdef uint64_t word, seen
    for g in range(groups):
        for kb in range(depth):
            block = <const uint8_t*>&blocks[g, kb, 0, 0]
            seen = 0
            for j in range(8):
                memcpy(&word, block + 8 * j, 8)
                seen |= word
            if seen:
                kbs[count] = kb
                count += 1
        start[g + 1] = <int32_t>count
    chosen_array = np.empty((count, 16, 4), np.int8)
    cdef int8_t[:, :, ::1] chosen = chosen_array
    cdef Py_ssize_t at = 0
    for g in range(groups):
        for j in range(start[g], start[g + 1]):
            memcpy(&chosen[at, 0, 0], &blocks[g, kbs[j], 0, 0], 64)
            at += 1
    return start_array, kb_array[:count], chosen_array


cdef inline bint fits_int32(int64_t* v, bint wrap) noexcept:
    """A folded bias as the kernels' int32 accumulator start: wrapped modulo 2^32 when wrap (onnxruntime's sums
    wrap), else False outside (-2^31, 2^31)."""
    if wrap:
        v[0] = <int64_t><int32_t><uint32_t>(<uint64_t>v[0] & 0xFFFFFFFFu)
        return True
    return -2147483648 < v[0] < 2147483648


def vnni_conv_constants(const int8_t[:, :] w, bias, int64_t zp_fold, int64_t zp_add, bint wrap,
                        const int32_t[:] mult, const int32_t[:] shift, const double[:] scale64,
                        const float[:] scale32, int8_t[:, :, :, ::1] out_w, int32_t[::1] out_bias,
                        int32_t[::1] out_mult, int32_t[::1] out_shift, double[::1] out_scale64,
                        float[::1] out_scale32):
    """packing.vnni_constants in one pass: w [N][K] into out_w (pack_vnni_s8, lanes 8-15 repeating rows 0-7 when
    N == 8); out_bias = bias - zp_fold * (row sum of w) + zp_add per column (modulo 2^32 when wrap, else
    OverflowError outside (-2^31, 2^31)), and the per-column requantization arrays, all zero-padded to the
    16-column width (N == 8: columns 8-15 repeat 0-7)."""
    cdef Py_ssize_t n = w.shape[0], width = out_bias.shape[0], c
    cdef const int32_t[:] b32
    if (mult.shape[0] != n or shift.shape[0] != n or scale64.shape[0] != n or scale32.shape[0] != n
            or width != out_w.shape[0] * 16 or out_mult.shape[0] != width or out_shift.shape[0] != width
            or out_scale64.shape[0] != width or out_scale32.shape[0] != width):
        raise ValueError("vnni_conv_constants: the per-column arrays do not match the weights")
    if bias is not None:
        b32 = bias
        if b32.shape[0] != n:
            raise ValueError("vnni_conv_constants: the bias does not match the weights")
    sums_array = pack_vnni_s8(w, out_w, True)
    cdef int64_t[::1] sums = sums_array
    cdef int64_t folded
    for c in range(width):
        if c < n:
            folded = (b32[c] if bias is not None else 0) - zp_fold * sums[c] + zp_add
            if not fits_int32(&folded, wrap):
                raise OverflowError("bias and weights overflow the int32 accumulator")
            out_bias[c] = <int32_t>folded
            out_mult[c], out_shift[c] = mult[c], shift[c]
            out_scale64[c], out_scale32[c] = scale64[c], scale32[c]
        elif n == 8:
            out_bias[c] = out_bias[c - 8]
            out_mult[c], out_shift[c] = mult[c - 8], shift[c - 8]
            out_scale64[c], out_scale32[c] = scale64[c - 8], scale32[c - 8]
        else:
            out_bias[c] = 0
            out_mult[c], out_shift[c] = 0, 0
            out_scale64[c], out_scale32[c] = 0.0, 0.0


def depthwise_lane_columns(const int8_t[:, :] w_taps, bias, int64_t zp_fold, int64_t zp_add, bint wrap,
                           const int64_t[::1] ch, const uint8_t[::1] used, const int32_t[:] mult,
                           const int32_t[:] shift, const double[:] scale64, const float[:] scale32,
                           int32_t[::1] out_bias, int32_t[::1] out_mult, int32_t[::1] out_shift,
                           double[::1] out_scale64, float[::1] out_scale32):
    """packing_depthwise.lane_columns in one pass: per vector lane (channel ch[lane], 0 where used[lane] == 0) the
    bias folded as bias - zp_fold * (the channel's tap sum) + zp_add (modulo 2^32 when wrap, else OverflowError
    outside (-2^31, 2^31)) and the channel's requantization values."""
    cdef Py_ssize_t taps = w_taps.shape[0], oc = w_taps.shape[1], lanes = ch.shape[0], c, t, lane
    cdef const int32_t[:] b32
    if (mult.shape[0] != oc or shift.shape[0] != oc or scale64.shape[0] != oc or scale32.shape[0] != oc
            or used.shape[0] != lanes or out_bias.shape[0] != lanes or out_mult.shape[0] != lanes
            or out_shift.shape[0] != lanes or out_scale64.shape[0] != lanes or out_scale32.shape[0] != lanes):
        raise ValueError("depthwise_lane_columns: sizes do not match")
    if bias is not None:
        b32 = bias
        if b32.shape[0] != oc:
            raise ValueError("depthwise_lane_columns: the bias does not match the weights")
    folded_array = np.empty(oc, np.int32)
    cdef int32_t[::1] folded = folded_array
    sums_array = np.zeros(oc, np.int64)
    cdef int64_t[::1] sums = sums_array
    cdef int64_t v
    if zp_fold:
        for t in range(taps):       # (tap by tap: each weight row read in order)
            for c in range(oc):
                sums[c] += w_taps[t, c]
    for c in range(oc):
        v = (b32[c] if bias is not None else 0) - zp_fold * sums[c] + zp_add
        if not fits_int32(&v, wrap):
            raise OverflowError("depthwise bias and weights overflow the int32 accumulator")
        folded[c] = <int32_t>v
    for lane in range(lanes):
        if used[lane]:
            c = ch[lane]
            if not 0 <= c < oc:
                raise ValueError("depthwise_lane_columns: a lane's channel is outside the weights")
            out_bias[lane], out_mult[lane], out_shift[lane] = folded[c], mult[c], shift[c]
            out_scale64[lane], out_scale32[lane] = scale64[c], scale32[c]
        else:
            out_bias[lane], out_mult[lane], out_shift[lane] = 0, 0, 0
            out_scale64[lane], out_scale32[lane] = 0.0, 0.0


def tflite_column_scales(double input_scale, const double[:] weight_scales, double output_scale, Py_ssize_t n,
                         int rounding):
    """requant.tflite_column_scales in one pass: per column real = (double)(float)input_scale * weight_scale /
    (double)(float)output_scale (one weight scale: every column), its fixed-point (multiplier, shift) as
    quantize_multipliers makes them, and real in float32: (int32 mult, int32 shift, float64 real, float32 real)."""
    cdef Py_ssize_t i, m = weight_scales.shape[0]
    if m != n and m != 1:
        raise ValueError("tflite_column_scales: weight scales do not match the columns")
    real_array, real32_array = np.empty(n, np.float64), np.empty(n, np.float32)
    cdef double[::1] real = real_array
    cdef float[::1] real32 = real32_array
    cdef double s_in = <double><float>input_scale, s_out = <double><float>output_scale
    for i in range(n):
        real[i] = (s_in * weight_scales[i if m == n else 0]) / s_out
        real32[i] = <float>real[i]
    mult, shift = quantize_multipliers(real_array, rounding)
    return mult, shift, real_array, real32_array


ctypedef fused avx2_panel_t:
    int16_t
    int8_t


def avx2_panel_constants(const int8_t[:, :] w, const int32_t[:] bias, const int32_t[:] mult, const int32_t[:] shift,
                         const double[:] scale64, const float[:] scale32, avx2_panel_t[:, :, :, ::1] out_w,
                         int32_t[::1] out_bias, int32_t[::1] out_mult, int32_t[::1] out_shift,
                         double[::1] out_scale64, float[::1] out_scale32):
    """packing.avx2_constants in one pass: w [N][K] into the panels out_w [N / 8][K / 4][8][4] of the AVX2 GEMM (int16:
    the conv / FC panels; int8: packing.avx2_pack_s8's, for the one- and two-row FC), and the bias (already zero-point
    folded) and per-column requantization arrays, all zero-padded to the 8-column width."""
    cdef Py_ssize_t n = w.shape[0], k = w.shape[1], width = out_bias.shape[0], kgroups = out_w.shape[1]
    cdef Py_ssize_t b, g, r, j, c
    if (bias.shape[0] != n or mult.shape[0] != n or shift.shape[0] != n or scale64.shape[0] != n
            or scale32.shape[0] != n or width != out_w.shape[0] * 8 or width < n or out_w.shape[2] != 8
            or out_w.shape[3] != 4 or kgroups * 4 < k or out_mult.shape[0] != width
            or out_shift.shape[0] != width or out_scale64.shape[0] != width or out_scale32.shape[0] != width):
        raise ValueError("avx2_panel_constants: the arrays do not match the weights")
    cdef avx2_panel_t* panel
    for b in range(out_w.shape[0]):
        for g in range(kgroups):
            panel = &out_w[b, g, 0, 0]
            for r in range(8):
                for j in range(4):
                    panel[4 * r + j] = w[8 * b + r, 4 * g + j] if 8 * b + r < n and 4 * g + j < k else 0
    for c in range(width):
        if c < n:
            out_bias[c], out_mult[c], out_shift[c] = bias[c], mult[c], shift[c]
            out_scale64[c], out_scale32[c] = scale64[c], scale32[c]
        else:
            out_bias[c], out_mult[c], out_shift[c] = 0, 0, 0
            out_scale64[c], out_scale32[c] = 0.0, 0.0


avx2_conv_constants = avx2_panel_constants      # int16 panels (packing.avx2_pack)
avx2_gemv_constants = avx2_panel_constants      # int8 panels (packing.avx2_pack_s8); two names: tests swap each


cdef extern from "math.h" nogil:
    double ldexp(double x, int e)
    double fabs(double x)

# numerics.activation_range_int8's names, as tflite_requant takes them
ACTIVATION_CODES = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3}


cdef bint quantized_bound_int8(double value, float scale, int zero_point, int64_t* out):
    """zero_point + round_half_away((float)value / scale) (numerics.activation_range_int8's q); False where the
    quotient is not finite or reaches 2^62 (the Python form decides those)."""
    cdef float v = (<float>value) / scale
    cdef double a = fabs(<double>v), whole
    if not isfinite(a) or a >= 4611686018427387904.0:
        return False
    whole = floor(a)
    if a - whole >= 0.5:
        whole += 1.0
    out[0] = zero_point + (-<int64_t>whole if v < 0 else <int64_t>whole)
    return True


cdef char* buffer_bytes(obj, Py_ssize_t nbytes, const char* what) except NULL:
    """The first byte of a C-contiguous buffer of exactly nbytes (numpy keeps it where it is while the array
    lives; reading the pointer costs a tenth of a typed memoryview)."""
    cdef Py_buffer view
    PyObject_GetBuffer(obj, &view, PyBUF_C_CONTIGUOUS)
    cdef char* where = <char*>view.buf
    cdef Py_ssize_t length = view.len
    PyBuffer_Release(&view)
    if length != nbytes:
        raise ValueError(f"{what.decode()}: an array of {length} bytes where {nbytes} were expected")
    return where if nbytes else <char*>1


def tflite_requant(double input_scale, weight_scales, weight_zero_points, double output_scale, int out_zp,
                   Py_ssize_t n, int rounding, int activation):
    """requant.tflite_requant in one call: tflite_column_scales' (int32 mult, int32 shift, float64 real, float32
    real) of float64 weight_scales (n or 1 values), whether any int64 weight zero point is nonzero (then nothing
    else), and numerics.activation_range_int8's (act_min, act_max) for `activation` (ACTIVATION_CODES); None where
    a bound's quotient leaves the int64 range."""
    cdef Py_ssize_t i, m = len(weight_scales), z = len(weight_zero_points)
    cdef const int64_t* zps = <const int64_t*>buffer_bytes(weight_zero_points, z * 8, b"tflite_requant")
    for i in range(z):
        if zps[i] != 0:         # (refused before any multiplier is computed)
            return None, None, None, None, True, None
    if m != n and m != 1:
        raise ValueError("tflite_requant: weight scales do not match the columns")
    cdef const double* ws = <const double*>buffer_bytes(weight_scales, m * 8, b"tflite_requant")
    mult_array, shift_array = np.empty(n, np.int32), np.empty(n, np.int32)
    real_array, real32_array = np.empty(n, np.float64), np.empty(n, np.float32)
    cdef int32_t* mult = <int32_t*>buffer_bytes(mult_array, n * 4, b"tflite_requant")
    cdef int32_t* shift = <int32_t*>buffer_bytes(shift_array, n * 4, b"tflite_requant")
    cdef double* real = <double*>buffer_bytes(real_array, n * 8, b"tflite_requant")
    cdef float* real32 = <float*>buffer_bytes(real32_array, n * 4, b"tflite_requant")
    cdef double s_in = <double><float>input_scale, s_out = <double><float>output_scale
    for i in range(n):
        real[i] = (s_in * ws[i if m == n else 0]) / s_out
        real32[i] = <float>real[i]
        if not multiplier_of(real[i], rounding, &mult[i], &shift[i]):
            raise ValueError(f"cannot quantize multiplier {real[i]!r}")
    return mult_array, shift_array, real_array, real32_array, False, activation_range_int8(activation, output_scale,
                                                                                          out_zp)


def fold_bias_s8(const int8_t[:, :] w, bias, int64_t zp, bint wrap):
    """packing.fold_input_zero_point's arithmetic in one pass: int32 bias - zp * (row sum of w [N][K]) (bias None:
    zeros), modulo 2^32 when wrap, else OverflowError outside (-2^31, 2^31)."""
    cdef Py_ssize_t n = w.shape[0], k = w.shape[1], r, j
    cdef const int32_t[:] b32
    if bias is not None:
        b32 = bias
        if b32.shape[0] != n:
            raise ValueError("fold_bias_s8: the bias does not match the weights")
    out_array = np.empty(n, np.int32)
    cdef int32_t[::1] out = out_array
    cdef int64_t s, v
    for r in range(n):
        s = 0
        for j in range(k):
            s += w[r, j]
        v = (b32[r] if bias is not None else 0) - zp * s
        if not fits_int32(&v, wrap):
            raise OverflowError("bias and weights overflow the int32 accumulator")
        out[r] = <int32_t>v
    return out_array


def depthwise_estimate(const int8_t[:, :] w_taps, bias, int64_t w_zp, const int64_t[::1] ch,
                       const int32_t[::1] lane_mult, const int32_t[::1] lane_shift, int mode, int64_t out_zp,
                       Py_ssize_t table_lanes, float[::1] out=None):
    """packing_depthwise.estimate_table from the per-lane multipliers and shifts, the bound taken from w_taps
    [taps][OC] and bias per lane channel ch: whether it applies, and where it does and `out` is given, the table
    written into out (3 * lanes floats: per block of table_lanes lanes f, zp + d, zp - d)."""
    cdef Py_ssize_t taps = w_taps.shape[0], oc = w_taps.shape[1], lanes = ch.shape[0], c, t, lane, blk, i
    cdef const int32_t[:] b32
    if lane_mult.shape[0] != lanes or lane_shift.shape[0] != lanes or table_lanes <= 0 or lanes % table_lanes:
        raise ValueError("depthwise_estimate: sizes do not match")
    if bias is not None:
        b32 = bias
        if b32.shape[0] != oc:
            raise ValueError("depthwise_estimate: the bias does not match the weights")
    if (mode != 0 and mode != 1) or lanes == 0:
        return False
    bound_array = np.zeros(max(oc, 1), np.int64)
    cdef int64_t[::1] bound = bound_array
    cdef int64_t s, b
    if taps and oc:                 # (tap by tap: each weight row read in order)
        em_abs_tap_sums(&w_taps[0, 0], taps, oc, w_taps.strides[0], w_taps.strides[1], w_zp, &bound[0])
    for c in range(oc):
        s = 255 * bound[c]
        if bias is not None:
            s += b32[c] if b32[c] >= 0 else -<int64_t>b32[c]
        bound[c] = s
    for lane in range(lanes):
        if not 0 <= ch[lane] < oc:
            raise ValueError("depthwise_estimate: a lane's channel is outside the weights")
        if lane_shift[lane] > 0 or lane_shift[lane] < -31 or lane_mult[lane] < 0 or bound[ch[lane]] >= 2147483648:
            return False
    cdef double f
    for lane in range(lanes):       # (shifts -31 .. 0 here: 2^(shift - 31) is 1 / 2^(31 - shift), exact)
        f = <double>lane_mult[lane] / <double>((<int64_t>1) << (31 - lane_shift[lane]))
        if not (<double>bound[ch[lane]] * f + 129.0 < 1073741824.0):
            return False
    if out is None:
        return True
    if out.shape[0] != 3 * lanes:
        raise ValueError("depthwise_estimate: the table does not match the lanes")
    cdef double d
    cdef float* row
    for lane in range(lanes):
        blk, i = lane // table_lanes, lane % table_lanes
        s = lane_shift[lane]
        d = 1.0 / <double>((<int64_t>1) << (1 - s)) if mode == 0 and s != 0 else 0.0
        row = &out[blk * 3 * table_lanes + i]
        row[0] = <float>(<double>lane_mult[lane] / <double>((<int64_t>1) << (31 - s)))
        row[table_lanes] = <float>(out_zp + d)
        row[2 * table_lanes] = <float>(out_zp - d)
    return True


def depthwise_tap_offsets(int64_t[::1] out, Py_ssize_t taps, int64_t kw, int64_t dh, int64_t dw, int64_t sw,
                          int64_t pitch, int64_t phase_width, int64_t value_bytes):
    """packing_depthwise.tap_offsets into out (zeros past `taps`): each tap's run in the staged rows, ky * dh *
    pitch + ((kx * dw) % sw * phase_width + (kx * dw) // sw) * value_bytes."""
    cdef Py_ssize_t t
    cdef int64_t ky, kx
    if taps > out.shape[0] or kw <= 0 or sw <= 0:
        raise ValueError("depthwise_tap_offsets: sizes do not match")
    for t in range(out.shape[0]):
        if t < taps:
            ky, kx = t // kw, t % kw
            out[t] = ky * dh * pitch + ((kx * dw) % sw * phase_width + (kx * dw) // sw) * value_bytes
        else:
            out[t] = 0


def winograd_weights(const int8_t[:, :, :, :] w, int16_t[:, :, :, :, ::1] out):
    """conv_winograd.winograd_pack's transform in one pass: U = G' g G'^T per output / input channel of int8 w
    [OC][3][3][IC] (G' = 2 G, rows (2, 0, 0), (1, 1, 1), (1, -1, 1), (0, 0, 2)) into out [16][OCp / 8][ICp / 4][8][4]
    (position a * 4 + b, then em_gemm_avx2.h's panels), zero for the padding channels."""
    cdef Py_ssize_t oc = w.shape[0], ic = w.shape[3], o, c, a, b, i, j
    cdef Py_ssize_t panels = out.shape[1], groups = out.shape[2]
    if (w.shape[1] != 3 or w.shape[2] != 3 or out.shape[0] != 16 or out.shape[3] != 8 or out.shape[4] != 4
            or panels * 8 < oc or groups * 4 < ic):
        raise ValueError("winograd_weights: the arrays do not match")
    cdef int64_t G[4][3]
    G[0][:] = [2, 0, 0]
    G[1][:] = [1, 1, 1]
    G[2][:] = [1, -1, 1]
    G[3][:] = [0, 0, 2]
    cdef int64_t t[4][3]
    cdef int64_t u
    if out.size:
        memset(&out[0, 0, 0, 0, 0], 0, out.size * sizeof(int16_t))
    for o in range(oc):
        for c in range(ic):
            for a in range(4):          # t = G' g
                for j in range(3):
                    t[a][j] = G[a][0] * w[o, 0, j, c] + G[a][1] * w[o, 1, j, c] + G[a][2] * w[o, 2, j, c]
            for a in range(4):          # U = t G'^T
                for b in range(4):
                    u = t[a][0] * G[b][0] + t[a][1] * G[b][1] + t[a][2] * G[b][2]
                    out[a * 4 + b, o // 8, c // 4, o % 8, c % 4] = <int16_t>u


def activation_range_int8(int activation, double scale, int zero_point):
    """numerics.activation_range_int8 for `activation` (ACTIVATION_CODES): (act_min, act_max), or None where a
    bound's quotient leaves the int64 range (the Python form decides those)."""
    cdef float s = <float>scale
    cdef int64_t lo = -128, hi = 127, q
    if activation == 1 or activation == 3:          # RELU, RELU6
        if not quantized_bound_int8(0.0, s, zero_point, &q):
            return None
        lo = max(lo, q)
        if activation == 3:
            if not quantized_bound_int8(6.0, s, zero_point, &q):
                return None
            hi = min(hi, q)
    elif activation == 2:                           # RELU_N1_TO_1
        if not quantized_bound_int8(-1.0, s, zero_point, &q):
            return None
        lo = max(lo, q)
        if not quantized_bound_int8(1.0, s, zero_point, &q):
            return None
        hi = min(hi, q)
    elif activation != 0:
        raise ValueError("activation_range_int8: unknown activation code")
    return lo, hi
