# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The int8 CONV_2D / FULLY_CONNECTED prepare's arithmetic in one call (issue 15): per-column multipliers, the
folded bias, the block-sparse density probe, the weights packed for the chosen kernel and every kept array written
into one allocation (sections at 64-byte offsets).  Its numpy twin is packing_gemm.pack_gemm_int8_numpy (the
prepares' reading and checks are in load_shell.pyx).  Not kernels: no KERNELS table.  tests/test_load_fast_paths.py
compares each with its twin plan by plan."""
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

import numpy as np

from cython_ops.load_buffer cimport buffer_bytes


cdef extern from "em_multiplier.h" nogil:
    bint multiplier_of "em_multiplier_of"(double real, int rounding, int32_t* mult, int32_t* shift)


# the layouts (packing_gemm names them)
cdef enum:
    PLAIN = 0            # [N][K] int8, int16 w - w_zp with a weight zero point; columns [N]
    VNNI = 1             # int8 [N/16][K4/4][16][4]; columns padded to 16 (N == 8: 8-15 repeat 0-7)
    AVX2 = 2             # int16 panels [N/8][K4/4][8][4] of w - w_zp; columns padded to 8
    AVX2_S8 = 3          # int8 panels [N/8][K4/4][8][4]
    SPARSE_VNNI = 4      # nonzero 16x4 blocks int8 [b][16][4]; columns padded to 16
    SPARSE_AVX2 = 5      # int16 [b][2][16][2]
    SPARSE_PORTABLE = 6  # int8 [b][4][16]
    ALIGN = 64


cdef inline bint fits_int32(int64_t* v, bint wrap) noexcept:
    if wrap:
        v[0] = <int64_t><int32_t><uint32_t>(<uint64_t>v[0] & 0xFFFFFFFFu)
        return True
    return -(<int64_t>1 << 31) < v[0] < (<int64_t>1 << 31)      # (a literal 2^31 would be a Python int)


cdef inline Py_ssize_t aligned(Py_ssize_t n) noexcept:
    return (n + ALIGN - 1) // ALIGN * ALIGN


cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    #if defined(__SSE2__)
    #include <emmintrin.h>
    #endif
    /* words [g0, g1) of `rows` row pointers (NULL: a zero row) into panels dst[g * rows + r] (4-byte words): the
       VNNI blocks (16 rows) and the int8 AVX2 panels (8 rows).  SSE2 (x86-64's baseline) moves 4 words of 4 rows
       as one 4 x 4 transposition of 32-bit words where all 16 rows are present. */
    static void em_gemm_word_panels(const int8_t* const* rp, int rows, int64_t g0, int64_t g1, uint32_t* dst) {
        int64_t g = g0;
        int whole = 1;
        for (int r = 0; r < rows; r++) whole &= rp[r] != NULL;
    #if defined(__SSE2__)
        if (whole && rows % 4 == 0)
            for (; g + 4 <= g1; g += 4)
                for (int q = 0; q < rows / 4; q++) {
                    const __m128i r0 = _mm_loadu_si128((const __m128i*)(rp[4 * q] + 4 * g));
                    const __m128i r1 = _mm_loadu_si128((const __m128i*)(rp[4 * q + 1] + 4 * g));
                    const __m128i r2 = _mm_loadu_si128((const __m128i*)(rp[4 * q + 2] + 4 * g));
                    const __m128i r3 = _mm_loadu_si128((const __m128i*)(rp[4 * q + 3] + 4 * g));
                    const __m128i t0 = _mm_unpacklo_epi32(r0, r1), t1 = _mm_unpacklo_epi32(r2, r3);
                    const __m128i t2 = _mm_unpackhi_epi32(r0, r1), t3 = _mm_unpackhi_epi32(r2, r3);
                    uint32_t* out = dst + g * rows + 4 * q;
                    _mm_storeu_si128((__m128i*)out, _mm_unpacklo_epi64(t0, t1));
                    _mm_storeu_si128((__m128i*)(out + rows), _mm_unpackhi_epi64(t0, t1));
                    _mm_storeu_si128((__m128i*)(out + 2 * rows), _mm_unpacklo_epi64(t2, t3));
                    _mm_storeu_si128((__m128i*)(out + 3 * rows), _mm_unpackhi_epi64(t2, t3));
                }
    #endif
        for (; g < g1; g++)
            for (int r = 0; r < rows; r++) {
                uint32_t word = 0;
                if (rp[r]) memcpy(&word, rp[r] + 4 * g, 4);
                dst[g * rows + r] = word;
            }
    }
    /* the int16 AVX2 panels: words [g0, g1) of 8 rows widened to w - sub (NULL rows: zeros); SSE2 transposes 4
       words of 4 rows at a time as above and widens each word row by interleaving it with its sign bytes */
    static void em_gemm_wide_panels(const int8_t* const* rp, int64_t g0, int64_t g1, int64_t sub, int16_t* dst) {
        int64_t g = g0;
    #if defined(__SSE2__)
        int whole = 1;
        for (int r = 0; r < 8; r++) whole &= rp[r] != NULL;
        const __m128i zero = _mm_setzero_si128(), subtract = _mm_set1_epi16((int16_t)sub);
        if (whole)
            for (; g + 4 <= g1; g += 4)
                for (int h = 0; h < 2; h++) {
                    const __m128i r0 = _mm_loadu_si128((const __m128i*)(rp[4 * h] + 4 * g));
                    const __m128i r1 = _mm_loadu_si128((const __m128i*)(rp[4 * h + 1] + 4 * g));
                    const __m128i r2 = _mm_loadu_si128((const __m128i*)(rp[4 * h + 2] + 4 * g));
                    const __m128i r3 = _mm_loadu_si128((const __m128i*)(rp[4 * h + 3] + 4 * g));
                    const __m128i t0 = _mm_unpacklo_epi32(r0, r1), t1 = _mm_unpacklo_epi32(r2, r3);
                    const __m128i t2 = _mm_unpackhi_epi32(r0, r1), t3 = _mm_unpackhi_epi32(r2, r3);
                    __m128i words[4];
                    words[0] = _mm_unpacklo_epi64(t0, t1);
                    words[1] = _mm_unpackhi_epi64(t0, t1);
                    words[2] = _mm_unpacklo_epi64(t2, t3);
                    words[3] = _mm_unpackhi_epi64(t2, t3);
                    for (int i = 0; i < 4; i++) {     /* word g + i of rows 4h .. 4h + 3 */
                        const __m128i sign = _mm_cmpgt_epi8(zero, words[i]);
                        int16_t* out = dst + (g + i) * 32 + 16 * h;
                        _mm_storeu_si128((__m128i*)out, _mm_sub_epi16(_mm_unpacklo_epi8(words[i], sign), subtract));
                        _mm_storeu_si128((__m128i*)(out + 8),
                                         _mm_sub_epi16(_mm_unpackhi_epi8(words[i], sign), subtract));
                    }
                }
    #endif
        for (; g < g1; g++)
            for (int r = 0; r < 8; r++) {
                int16_t* out = dst + (g * 8 + r) * 4;
                if (rp[r])
                    for (int j = 0; j < 4; j++) out[j] = (int16_t)(rp[r][4 * g + j] - sub);
                else
                    out[0] = out[1] = out[2] = out[3] = 0;
            }
    }
    /* seen[g] |= word g of a row, for its `words` whole words */
    static void em_gemm_or_words(const int8_t* row, int64_t words, uint32_t* seen) {
        for (int64_t g = 0; g < words; g++) {
            uint32_t word;
            memcpy(&word, row + 4 * g, 4);
            seen[g] |= word;
        }
    }
    """
    void em_gemm_word_panels(const int8_t* const* rp, int rows, int64_t g0, int64_t g1, uint32_t* dst) nogil
    void em_gemm_wide_panels(const int8_t* const* rp, int64_t g0, int64_t g1, int64_t sub, int16_t* dst) nogil
    void em_gemm_or_words(const int8_t* row, int64_t words, uint32_t* seen) nogil


cdef struct Words:
    # w [N][K] read as 4-byte words of its logical matrix (each run of `seg` K values zero-padded to a multiple of 4)
    const char* base
    Py_ssize_t n
    Py_ssize_t row_stride
    Py_ssize_t col_stride
    Py_ssize_t groups       # words per row: the logical K / 4
    Py_ssize_t* col         # each word's first K index
    int* valid              # and how many of its 4 values are weights (the rest: padding zeros)


cdef int words_of(Words* m, const int8_t[:, :] w, Py_ssize_t seg) except -1:
    cdef Py_ssize_t k = w.shape[1], span4, g, q, per
    m.base = <const char*>&w[0, 0] if w.shape[0] and k else NULL
    m.n = w.shape[0] if k else 0
    m.row_stride, m.col_stride = w.strides[0], w.strides[1]
    if seg:
        span4 = (seg + 3) // 4 * 4
        per = span4 // 4
        m.groups = k // seg * per
    else:
        m.groups = (k + 3) // 4
    m.col = <Py_ssize_t*>malloc(max(m.groups, 1) * sizeof(Py_ssize_t))
    m.valid = <int*>malloc(max(m.groups, 1) * sizeof(int))
    if m.col == NULL or m.valid == NULL:
        free(m.col)
        free(m.valid)
        raise MemoryError()
    for g in range(m.groups):
        if seg:
            q = (g % per) * 4
            m.col[g] = (g // per) * seg + q
            m.valid[g] = <int>min(4, seg - q)
        else:
            m.col[g] = 4 * g
            m.valid[g] = <int>min(4, k - 4 * g)
    return 0


cdef inline uint32_t word_at(const Words* m, Py_ssize_t r, Py_ssize_t g) noexcept nogil:
    """Word g of logical row r (0 past the last row), its bytes in K order."""
    cdef uint32_t out = 0
    cdef const char* p
    cdef int j, v
    if r >= m.n:
        return 0
    p = m.base + r * m.row_stride + m.col[g] * m.col_stride
    v = m.valid[g]
    if m.col_stride == 1:
        if v == 4:
            memcpy(&out, p, 4)
        else:
            memcpy(&out, p, v)
    else:
        for j in range(v):
            (<char*>&out)[j] = p[j * m.col_stride]
    return out


cdef enum:
    FEW_ZERO_WORDS = 16     # the probe completes a group's zero words one by one when at most 1 in this many is zero


cdef void or_rows(const Words* m, bint contiguous, Py_ssize_t k, Py_ssize_t first, Py_ssize_t last,
                  uint32_t* seen) noexcept:
    """seen[kb] |= word kb of each logical row first..last-1 (contiguous: the logical row is the row)."""
    cdef Py_ssize_t r, kb, whole
    for r in range(first, last):
        whole = 0
        if contiguous:
            whole = k // 4
            em_gemm_or_words(<const int8_t*>(m.base + r * m.row_stride), whole, seen)
        for kb in range(whole, m.groups):
            seen[kb] |= word_at(m, r, kb)


cdef void widen_word(uint32_t word, int valid, int64_t sub, int16_t* out) noexcept nogil:
    """A word's 4 int8 values as int16 w - sub (padding values 0)."""
    cdef int j
    for j in range(4):
        out[j] = <int16_t>((<const int8_t*>&word)[j] - sub) if j < valid else 0


def pack_gemm_int8(keep_new, const int8_t[:, :] w, bias, double input_scale, weight_scales, double output_scale,
                   int rounding, given, int64_t in_zp, int64_t w_zp, bint wrap, int layout, Py_ssize_t segment,
                   int sparse_layout, Py_ssize_t sparse_segment, double max_density, int64_t sparse_pitch,
                   int64_t sparse_elem):
    """An int8 GEMM's kept arrays in one allocation (keep_new((bytes,), uint8)): per-column multipliers of
    real = (double)(float)input_scale * weight_scale / (double)(float)output_scale (`given`: (mult, shift, scale64,
    scale32) arrays instead), the bias folded as bias - zp * sum_k (w - w_zp) (zp: in_zp, + 128 for the VNNI forms;
    modulo 2^32 when wrap, or for VNNI with a weight zero point; else OverflowError outside (-2^31, 2^31)), and w
    [N][K] packed for `layout` (segment > 0: each run of segment K values padded to a multiple of 4).  When
    max_density >= 0, the nonzero 16x4 blocks of w (runs of sparse_segment padded) are counted first, and at a
    density <= max_density `sparse_layout` is packed instead (block_k: (k // span4 * sparse_pitch + k % span4) *
    sparse_elem with span4 the padded run, or k * sparse_elem).  Returns (block, layout, kp, offsets of weights,
    bias, mult, shift, scale64, scale32, group_start, block_k (-1: none))."""
    cdef Py_ssize_t n = w.shape[0], k = w.shape[1], r, g, kb, whole
    cdef const double* ws = NULL
    cdef Py_ssize_t m = 0
    cdef const int32_t* gmult = NULL
    cdef const int32_t* gshift = NULL
    cdef const double* gs64 = NULL
    cdef const float* gs32 = NULL
    if given is None:
        m = len(weight_scales)
        if m != n and m != 1:
            raise ValueError("pack_gemm_int8: weight scales do not match the columns")
        ws = <const double*>buffer_bytes(weight_scales, m * 8, b"pack_gemm_int8")
    else:
        gmult = <const int32_t*>buffer_bytes(given[0], n * 4, b"pack_gemm_int8")
        gshift = <const int32_t*>buffer_bytes(given[1], n * 4, b"pack_gemm_int8")
        gs64 = <const double*>buffer_bytes(given[2], n * 8, b"pack_gemm_int8")
        gs32 = <const float*>buffer_bytes(given[3], n * 4, b"pack_gemm_int8")
    cdef const int32_t[:] b32 = None       # (one view of the bias, handed to pack_chosen)
    if bias is not None:
        b32 = bias
        if b32.shape[0] != n:
            raise ValueError("pack_gemm_int8: the bias does not match the weights")
    if segment and k % segment or sparse_segment and k % sparse_segment:
        raise ValueError("pack_gemm_int8: K is not a multiple of the segment")

    # the block-sparse probe: nonzero 16x4 blocks of the logical matrix, their K-block indices kept
    cdef Words probe
    cdef Py_ssize_t groups = (n + 15) // 16, nonzero = 0, last, zero
    cdef int32_t* chosen_kb = NULL
    cdef int32_t* group_end = NULL
    cdef uint32_t* seen = NULL
    cdef bint sparse = False
    probe.col = NULL
    probe.valid = NULL
    try:
        if max_density >= 0 and w_zp == 0:
            words_of(&probe, w, sparse_segment)
            chosen_kb = <int32_t*>malloc(max(groups * probe.groups, 1) * sizeof(int32_t))
            group_end = <int32_t*>malloc(max(groups, 1) * sizeof(int32_t))
            seen = <uint32_t*>malloc(max(probe.groups, 1) * sizeof(uint32_t))
            if chosen_kb == NULL or group_end == NULL or seen == NULL:
                raise MemoryError()
            for g in range(groups):
                memset(seen, 0, probe.groups * sizeof(uint32_t))
                # the group's first row, then: a block it leaves zero gets the rest of its rows (few such blocks:
                # dense weights, the usual case, are then read a sixteenth), or every other row in full
                last = min(n, 16 * g + 16)
                or_rows(&probe, w.strides[1] == 1 and sparse_segment % 4 == 0, k, 16 * g, 16 * g + 1, seen)
                zero = 0
                for kb in range(probe.groups):
                    zero += seen[kb] == 0
                if zero * FEW_ZERO_WORDS <= probe.groups:
                    for kb in range(probe.groups):
                        r = 16 * g + 1
                        while seen[kb] == 0 and r < last:
                            seen[kb] = word_at(&probe, r, kb)
                            r += 1
                else:
                    or_rows(&probe, w.strides[1] == 1 and sparse_segment % 4 == 0, k, 16 * g + 1, last, seen)
                for kb in range(probe.groups):
                    if seen[kb]:
                        chosen_kb[nonzero] = <int32_t>kb
                        nonzero += 1
                group_end[g] = <int32_t>nonzero
                if <double>nonzero / <double>(groups * probe.groups) > max_density:
                    break       # dense already (the count only grows): the blocks are read only when sparse
            sparse = (<double>nonzero / <double>(groups * probe.groups) if groups * probe.groups else 1.0) <= max_density
        return pack_chosen(keep_new, w, b32, bias is not None, input_scale, ws, m, output_scale, rounding, gmult,
                           gshift, gs64, gs32, in_zp, w_zp, wrap, sparse_layout if sparse else layout,
                           sparse_segment if sparse else segment, chosen_kb, group_end, nonzero, groups,
                           sparse_pitch, sparse_elem)
    finally:
        free(probe.col)
        free(probe.valid)
        free(chosen_kb)
        free(group_end)
        free(seen)


cdef inline void put_column_ints(int32_t* out, const int32_t* values, Py_ssize_t n, Py_ssize_t width,
                                 bint dup) noexcept:
    """A column section: the n values, then zeros to width (dup: columns 8-15 repeat 0-7)."""
    cdef Py_ssize_t c
    memcpy(out, values, n * sizeof(int32_t))
    for c in range(n, width):
        out[c] = out[c - 8] if dup else 0


cdef int64_t row_sum(const int8_t[:, :] w, Py_ssize_t r) noexcept:
    cdef Py_ssize_t k = w.shape[1], j, cs = w.strides[1]
    cdef const int8_t* p
    cdef int32_t s32 = 0
    cdef int64_t s = 0
    if k == 0:
        return 0
    p = &w[r, 0]
    if cs == 1 and k < (1 << 23):       # |sum| < 2^30: int32 sums, which the compiler vectorizes
        for j in range(k):
            s32 += p[j]
        return s32
    for j in range(k):
        s += p[j * cs]
    return s


cdef pack_chosen(keep_new, const int8_t[:, :] w, const int32_t[:] b32, bint has_bias, double input_scale,
                 const double* ws, Py_ssize_t m,
                 double output_scale, int rounding, const int32_t* gmult, const int32_t* gshift, const double* gs64,
                 const float* gs32, int64_t in_zp, int64_t w_zp, bint wrap, int layout, Py_ssize_t segment,
                 const int32_t* chosen_kb, const int32_t* group_end, Py_ssize_t nonzero,
                 Py_ssize_t groups, int64_t sparse_pitch, int64_t sparse_elem):
    cdef Py_ssize_t n = w.shape[0], k = w.shape[1], r, j, g, b, c, q, kb, i, src
    cdef Py_ssize_t span4 = (segment + 3) // 4 * 4 if segment else 0
    cdef Py_ssize_t kl = (k // segment * span4) if segment else (k + 3) // 4 * 4
    cdef Py_ssize_t kg = kl // 4
    cdef bint is_sparse = layout >= SPARSE_VNNI
    cdef int64_t sub = w_zp if layout == PLAIN or layout == AVX2 else 0
    cdef int64_t zp_fold = in_zp + 128 if layout == VNNI or layout == SPARSE_VNNI else in_zp
    cdef bint wrap_fold = wrap or (layout == VNNI and w_zp != 0)
    cdef Py_ssize_t width, wbytes, blocks = max(nonzero, 1)
    if layout == PLAIN:
        width = n
        wbytes = n * k * (2 if w_zp else 1)
    elif layout == VNNI:
        width = (n + 15) // 16 * 16
        wbytes = width * kl
    elif layout == AVX2 or layout == AVX2_S8:
        width = (n + 7) // 8 * 8
        wbytes = width * kl * (2 if layout == AVX2 else 1)
    else:
        width = groups * 16
        wbytes = blocks * 64 * (2 if layout == SPARSE_AVX2 else 1)
    # sections: weights, bias, mult, shift, scale64, scale32[, group_start, block_k]
    cdef Py_ssize_t o_w = 0, o_bias = aligned(wbytes), o_mult, o_shift, o_s64, o_s32, o_start = -1, o_kb = -1, total
    o_mult = o_bias + aligned(4 * width)
    o_shift = o_mult + aligned(4 * width)
    o_s64 = o_shift + aligned(4 * width)
    o_s32 = o_s64 + aligned(8 * width)
    total = o_s32 + 4 * width
    if is_sparse:
        o_start = aligned(total)
        o_kb = o_start + aligned(4 * (groups + 1))
        total = o_kb + 4 * blocks
    cdef Py_ssize_t ends[8]
    cdef Py_ssize_t starts[8]
    starts[:] = [o_w, o_bias, o_mult, o_shift, o_s64, o_s32, o_start, o_kb]
    ends[:] = [o_w + wbytes, o_bias + 4 * width, o_mult + 4 * width, o_shift + 4 * width, o_s64 + 8 * width,
               o_s32 + 4 * width, o_start + 4 * (groups + 1), o_kb + 4 * blocks]

    # the per-column values and the folded bias (before the allocation: refusals keep nothing)
    cdef int32_t* cmult = <int32_t*>malloc(max(n, 1) * 4)
    cdef int32_t* cshift = <int32_t*>malloc(max(n, 1) * 4)
    cdef double* c64 = <double*>malloc(max(n, 1) * 8)
    cdef int32_t* cbias = <int32_t*>malloc(max(n, 1) * 4)
    cdef double s_in = <double><float>input_scale, s_out = <double><float>output_scale, real
    cdef int64_t s, v
    cdef char* base
    cdef int8_t* w8
    cdef int16_t* w16
    cdef uint32_t* w32
    cdef int32_t* i32
    cdef int32_t* kbs
    cdef double* f64
    cdef float* f32
    cdef Py_ssize_t rows_per
    cdef uint32_t word
    cdef const int8_t* rp[16]
    cdef Py_ssize_t whole
    cdef bint dup
    cdef Words words
    words.col = NULL
    words.valid = NULL
    if cmult == NULL or cshift == NULL or c64 == NULL or cbias == NULL:
        free(cmult)
        free(cshift)
        free(c64)
        free(cbias)
        raise MemoryError()
    try:
        for c in range(n):
            if gmult == NULL:
                real = (s_in * ws[c if m == n else 0]) / s_out
                if not multiplier_of(real, rounding, &cmult[c], &cshift[c]):
                    raise ValueError(f"cannot quantize multiplier {real!r}")
                c64[c] = real
            else:
                cmult[c], cshift[c], c64[c] = gmult[c], gshift[c], gs64[c]
        for c in range(n):      # (after every multiplier: a bad scale is refused before an overflowing bias)
            s = row_sum(w, c)
            if layout == VNNI:      # (the kernel's form: raw sums, + K zp w_zp, wrapped with a weight zero point)
                v = (b32[c] if has_bias else 0) - zp_fold * s + k * zp_fold * w_zp
            else:
                v = (b32[c] if has_bias else 0) - zp_fold * (s - k * w_zp)
            if not fits_int32(&v, wrap_fold):
                raise OverflowError("bias and weights overflow the int32 accumulator")
            cbias[c] = <int32_t>v

        block = keep_new((max(total, 1),), np.uint8)
        base = buffer_bytes(block, max(total, 1), b"pack_gemm_int8")
        for i in range(7):          # the gaps between sections (the sections write all of their bytes)
            if starts[i] >= 0 and starts[i + 1] > ends[i]:
                memset(base + ends[i], 0, starts[i + 1] - ends[i])
        if total == 0:
            base[0] = 0

        # columns: the n values, then the padding (zeros; VNNI with n = 8 repeats columns 0-7 in lanes 8-15)
        dup = layout == VNNI and n == 8
        put_column_ints(<int32_t*>(base + o_bias), cbias, n, width, dup)
        put_column_ints(<int32_t*>(base + o_mult), cmult, n, width, dup)
        put_column_ints(<int32_t*>(base + o_shift), cshift, n, width, dup)
        f64 = <double*>(base + o_s64)
        f32 = <float*>(base + o_s32)
        memcpy(f64, c64, n * sizeof(double))
        if gs32 != NULL:
            memcpy(f32, gs32, n * sizeof(float))
        else:
            for c in range(n):
                f32[c] = <float>c64[c]
        for c in range(n, width):
            f64[c] = f64[c - 8] if dup else 0.0
            f32[c] = f32[c - 8] if dup else 0.0

        # weights
        w8 = <int8_t*>(base + o_w)
        w16 = <int16_t*>(base + o_w)
        w32 = <uint32_t*>(base + o_w)
        if layout == PLAIN:
            for r in range(n):
                for j in range(k):
                    if w_zp:
                        w16[r * k + j] = <int16_t>(w[r, j] - w_zp)
                    else:
                        w8[r * k + j] = w[r, j]
            return block, layout, kl, (o_w, o_bias, o_mult, o_shift, o_s64, o_s32, o_start, o_kb)
        words_of(&words, w, segment)
        # rows of contiguous bytes with no padding inside: whole words straight from the rows
        whole = k // 4 if w.strides[1] == 1 and segment % 4 == 0 else 0
        if layout == VNNI or layout == AVX2_S8 or layout == AVX2:
            rows_per = 16 if layout == VNNI else 8
            for b in range(width // rows_per):
                for r in range(rows_per):
                    src = b * rows_per + r
                    if layout == VNNI and n == 8 and r >= 8:     # lanes 8-15 repeat rows 0-7
                        src = r - 8
                    rp[r] = <const int8_t*>(words.base + src * words.row_stride) if src < n and whole else NULL
                if layout == AVX2:
                    em_gemm_wide_panels(rp, 0, whole, sub, &w16[b * kg * 32])
                else:
                    em_gemm_word_panels(rp, <int>rows_per, 0, whole, &w32[b * kg * rows_per])
                for g in range(whole, kg):
                    for r in range(rows_per):
                        src = b * rows_per + r
                        if layout == VNNI and n == 8 and r >= 8:
                            src = r - 8
                        if layout == AVX2:
                            i = ((b * kg + g) * 8 + r) * 4
                            if src < n:
                                widen_word(word_at(&words, src, g), words.valid[g], sub, &w16[i])
                            else:
                                w16[i], w16[i + 1], w16[i + 2], w16[i + 3] = 0, 0, 0, 0
                        else:
                            w32[(b * kg + g) * rows_per + r] = word_at(&words, src, g)
        else:
            i32 = <int32_t*>(base + o_start)
            kbs = <int32_t*>(base + o_kb)
            i32[0] = 0
            for g in range(groups):
                i32[g + 1] = group_end[g]
            if nonzero == 0:
                kbs[0] = 0
                memset(base + o_w, 0, wbytes)
            for g in range(groups):
                for b in range(group_end[g - 1] if g else 0, group_end[g]):
                    kb = chosen_kb[b]
                    q = 4 * kb
                    kbs[b] = <int32_t>(((q // span4) * sparse_pitch + q % span4) * sparse_elem if segment
                                       else q * sparse_elem)
                    for r in range(16):
                        word = word_at(&words, 16 * g + r, kb)
                        if layout == SPARSE_VNNI:
                            w32[b * 16 + r] = word
                        elif layout == SPARSE_AVX2:       # [b][pair][16][2]
                            for j in range(4):
                                w16[b * 64 + (j // 2) * 32 + r * 2 + j % 2] = (<const int8_t*>&word)[j]
                        else:                             # [b][4][16]
                            for j in range(4):
                                w8[b * 64 + j * 16 + r] = (<const int8_t*>&word)[j]
        return block, layout, kl, (o_w, o_bias, o_mult, o_shift, o_s64, o_s32, o_start, o_kb)
    finally:
        free(words.col)
        free(words.valid)
        free(cmult)
        free(cshift)
        free(c64)
        free(cbias)
