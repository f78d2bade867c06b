# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The int8 CONV_2D / FULLY_CONNECTED prepare's arithmetic in one call (issue 15): per-column multipliers, the
folded bias, the block-sparse density probe, the weights packed for the chosen kernel and every kept array written
into one allocation (sections at 64-byte offsets).  Not kernels: no KERNELS table.  Its numpy twin is
packing_gemm.pack_gemm_int8_numpy; tests/test_load_fast_paths.py compares the two plan by plan."""
from cpython.buffer cimport PyBUF_C_CONTIGUOUS, PyBuffer_Release, PyObject_GetBuffer
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

import numpy as np


cdef extern from "math.h" nogil:
    double frexp(double x, int* exp)
    double floor(double x)
    bint isfinite(double x)


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


cdef bint multiplier_of(double real, int rounding, int32_t* mult, int32_t* shift) noexcept:
    """numerics.quantize_multipliers of one value (load_pack's arithmetic); False for a negative or non-finite one."""
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
    elif rounding == 1 and e > 30:
        mult[0], shift[0] = 2147483647, 30
    else:
        mult[0], shift[0] = <int32_t>whole, e
    return True


cdef inline bint fits_int32(int64_t* v, bint wrap) noexcept:
    if wrap:
        v[0] = <int64_t><int32_t><uint32_t>(<uint64_t>v[0] & 0xFFFFFFFFu)
        return True
    return -2147483648 < v[0] < 2147483648


cdef char* buffer_of(obj, Py_ssize_t nbytes, const char* what) except NULL:
    cdef Py_buffer view
    PyObject_GetBuffer(obj, &view, PyBUF_C_CONTIGUOUS)
    cdef char* where = <char*>view.buf
    cdef Py_ssize_t length = view.len
    PyBuffer_Release(&view)
    if length != nbytes:
        raise ValueError(f"{what.decode()}: an array of {length} bytes where {nbytes} were expected")
    return where if nbytes else <char*>1


cdef inline Py_ssize_t aligned(Py_ssize_t n) noexcept:
    return (n + ALIGN - 1) // ALIGN * ALIGN


cdef void stage_rows(const int8_t[:, :] w, Py_ssize_t r0, Py_ssize_t rows, Py_ssize_t seg, Py_ssize_t span4,
                     Py_ssize_t kl, int64_t sub, int16_t* tile) noexcept:
    """`rows` rows of w from r0 (rows past N zero) as the logical matrix: each run of seg K values zero-padded to
    span4, then zeros to kl; values w - sub."""
    cdef Py_ssize_t n = w.shape[0], k = w.shape[1], r, s, j, at
    cdef int16_t* dst
    cdef const int8_t* src
    cdef bint contiguous = k == 0 or w.strides[1] == 1
    for r in range(rows):
        dst = tile + r * kl
        if r0 + r >= n:
            memset(dst, 0, kl * sizeof(int16_t))
            continue
        at = 0
        if seg == 0:            # (one run: the whole row)
            seg, span4 = k, k
        for s in range(k // seg if seg else 0):
            if contiguous:
                src = &w[r0 + r, s * seg]
                for j in range(seg):
                    dst[at + j] = <int16_t>(src[j] - sub)
            else:
                for j in range(seg):
                    dst[at + j] = <int16_t>(w[r0 + r, s * seg + j] - sub)
            for j in range(seg, span4):
                dst[at + j] = 0
            at += span4
        for j in range(at, kl):
            dst[j] = 0


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
    cdef Py_ssize_t n = w.shape[0], k = w.shape[1], i, r, j, g, b, c, kb
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
        ws = <const double*>buffer_of(weight_scales, m * 8, b"pack_gemm_int8")
    else:
        gmult = <const int32_t*>buffer_of(given[0], n * 4, b"pack_gemm_int8")
        gshift = <const int32_t*>buffer_of(given[1], n * 4, b"pack_gemm_int8")
        gs64 = <const double*>buffer_of(given[2], n * 8, b"pack_gemm_int8")
        gs32 = <const float*>buffer_of(given[3], n * 4, b"pack_gemm_int8")
    cdef const int32_t[:] b32
    if bias is not None:
        b32 = bias
        if b32.shape[0] != n:
            raise ValueError("pack_gemm_int8: the bias does not match the weights")
    if segment and k % segment or sparse_segment and k % sparse_segment:
        raise ValueError("pack_gemm_int8: K is not a multiple of the segment")

    # the block-sparse probe: nonzero 16x4 blocks of the logical matrix, their K-block indices kept
    cdef Py_ssize_t sspan = (sparse_segment + 3) // 4 * 4 if sparse_segment else 0
    cdef Py_ssize_t skl = (k // sparse_segment * sspan) if sparse_segment else (k + 3) // 4 * 4
    cdef Py_ssize_t groups = (n + 15) // 16, kblocks = skl // 4, nonzero = 0
    cdef int16_t* tile = NULL
    cdef int32_t* chosen_kb = NULL
    cdef int32_t* group_end = NULL
    cdef bint sparse = False, any_set
    cdef Py_ssize_t kl = max(skl, (k // segment * ((segment + 3) // 4 * 4)) if segment else (k + 3) // 4 * 4)
    tile = <int16_t*>malloc(max(16 * kl, 1) * sizeof(int16_t))
    if tile == NULL:
        raise MemoryError()
    try:
        if max_density >= 0 and w_zp == 0:
            chosen_kb = <int32_t*>malloc(max(groups * kblocks, 1) * sizeof(int32_t))
            group_end = <int32_t*>malloc(max(groups, 1) * sizeof(int32_t))
            if chosen_kb == NULL or group_end == NULL:
                raise MemoryError()
            for g in range(groups):
                stage_rows(w, 16 * g, 16, sparse_segment, sspan, skl, 0, tile)
                for kb in range(kblocks):
                    any_set = False
                    for r in range(16):
                        for j in range(4):
                            if tile[r * skl + 4 * kb + j]:
                                any_set = True
                    if any_set:
                        chosen_kb[nonzero] = <int32_t>kb
                        nonzero += 1
                group_end[g] = <int32_t>nonzero
            sparse = (<double>nonzero / <double>(groups * kblocks) if groups * kblocks else 1.0) <= max_density
        return pack_chosen(keep_new, w, bias, input_scale, ws, m, output_scale, rounding, gmult, gshift, gs64, gs32,
                           in_zp, w_zp, wrap, sparse_layout if sparse else layout,
                           sparse_segment if sparse else segment, tile, chosen_kb, group_end, nonzero, groups,
                           sparse_pitch, sparse_elem)
    finally:
        free(tile)
        free(chosen_kb)
        free(group_end)


cdef pack_chosen(keep_new, const int8_t[:, :] w, bias, double input_scale, const double* ws, Py_ssize_t m,
                 double output_scale, int rounding, const int32_t* gmult, const int32_t* gshift, const double* gs64,
                 const float* gs32, int64_t in_zp, int64_t w_zp, bint wrap, int layout, Py_ssize_t segment,
                 int16_t* tile, const int32_t* chosen_kb, const int32_t* group_end, Py_ssize_t nonzero,
                 Py_ssize_t groups, int64_t sparse_pitch, int64_t sparse_elem):
    cdef Py_ssize_t n = w.shape[0], k = w.shape[1], r, j, g, b, c, q, kb, i
    cdef Py_ssize_t span4 = (segment + 3) // 4 * 4 if segment else 0
    cdef Py_ssize_t kl = (k // segment * span4) if segment else (k + 3) // 4 * 4
    cdef Py_ssize_t kg = kl // 4
    cdef bint is_sparse = layout >= SPARSE_VNNI
    cdef int64_t sub = w_zp if layout in (PLAIN, AVX2) else 0
    cdef int64_t zp_fold = in_zp + 128 if layout in (VNNI, SPARSE_VNNI) else in_zp
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
    cdef const int32_t[:] b32
    cdef char* base
    cdef int8_t* w8
    cdef int16_t* w16
    cdef int32_t* i32
    cdef int32_t* kbs
    cdef double* f64
    cdef float* f32
    cdef int16_t* row
    cdef Py_ssize_t rows_per, src
    if cmult == NULL or cshift == NULL or c64 == NULL or cbias == NULL:
        free(cmult); free(cshift); free(c64); free(cbias)
        raise MemoryError()
    try:
        if bias is not None:
            b32 = bias
        for c in range(n):
            if gmult == NULL:
                real = (s_in * ws[c if m == n else 0]) / s_out
                if not multiplier_of(real, rounding, &cmult[c], &cshift[c]):
                    raise ValueError(f"cannot quantize multiplier {real!r}")
                c64[c] = real
            else:
                cmult[c], cshift[c], c64[c] = gmult[c], gshift[c], gs64[c]
        for c in range(n):      # (after every multiplier: a bad scale is refused before an overflowing bias)
            s = 0
            for j in range(k):
                s += w[c, j]
            if layout == VNNI:      # (the kernel's form: raw sums, + K zp w_zp, wrapped with a weight zero point)
                v = (b32[c] if bias is not None else 0) - zp_fold * s + k * zp_fold * w_zp
            else:
                v = (b32[c] if bias is not None else 0) - zp_fold * (s - k * w_zp)
            if not fits_int32(&v, wrap_fold):
                raise OverflowError("bias and weights overflow the int32 accumulator")
            cbias[c] = <int32_t>v

        block = keep_new((max(total, 1),), np.uint8)
        base = buffer_of(block, max(total, 1), b"pack_gemm_int8")
        for i in range(7):          # the gaps between sections (the sections write all of their bytes)
            if starts[i] >= 0 and starts[i + 1] > ends[i]:
                memset(base + ends[i], 0, starts[i + 1] - ends[i])
            elif starts[i] >= 0 and starts[i + 1] < 0 and total > ends[i]:
                memset(base + ends[i], 0, total - ends[i])
        if total == 0:
            base[0] = 0

        # columns
        i32 = <int32_t*>(base + o_bias)
        for c in range(width):
            q = c if c < n else (c - 8 if layout == VNNI and n == 8 else -1)
            i32[c] = cbias[q] if q >= 0 else 0
        i32 = <int32_t*>(base + o_mult)
        for c in range(width):
            q = c if c < n else (c - 8 if layout == VNNI and n == 8 else -1)
            i32[c] = cmult[q] if q >= 0 else 0
        i32 = <int32_t*>(base + o_shift)
        for c in range(width):
            q = c if c < n else (c - 8 if layout == VNNI and n == 8 else -1)
            i32[c] = cshift[q] if q >= 0 else 0
        f64 = <double*>(base + o_s64)
        f32 = <float*>(base + o_s32)
        for c in range(width):
            q = c if c < n else (c - 8 if layout == VNNI and n == 8 else -1)
            f64[c] = c64[q] if q >= 0 else 0.0
            if q < 0:
                f32[c] = 0.0
            elif gs32 != NULL:
                f32[c] = gs32[q]
            else:
                f32[c] = <float>c64[q]

        # weights
        if layout == PLAIN:
            w8 = <int8_t*>(base + o_w)
            w16 = <int16_t*>(base + o_w)
            for r in range(n):
                for j in range(k):
                    if w_zp:
                        w16[r * k + j] = <int16_t>(w[r, j] - w_zp)
                    else:
                        w8[r * k + j] = w[r, j]
        elif layout == VNNI or layout == AVX2 or layout == AVX2_S8:
            rows_per = 16 if layout == VNNI else 8
            w8 = <int8_t*>(base + o_w)
            w16 = <int16_t*>(base + o_w)
            for b in range(width // rows_per):
                stage_rows(w, b * rows_per, rows_per, segment, span4, kl, sub, tile)
                if layout == VNNI and n == 8:
                    memcpy(tile + 8 * kl, tile, 8 * kl * sizeof(int16_t))
                for g in range(kg):
                    for r in range(rows_per):
                        row = tile + r * kl + 4 * g
                        i = ((b * kg + g) * rows_per + r) * 4
                        if layout == AVX2:
                            w16[i], w16[i + 1], w16[i + 2], w16[i + 3] = row[0], row[1], row[2], row[3]
                        else:
                            w8[i], w8[i + 1], w8[i + 2], w8[i + 3] = <int8_t>row[0], <int8_t>row[1], \
                                <int8_t>row[2], <int8_t>row[3]
        else:
            i32 = <int32_t*>(base + o_start)
            kbs = <int32_t*>(base + o_kb)
            i32[0] = 0
            for g in range(groups):
                i32[g + 1] = group_end[g]
            w8 = <int8_t*>(base + o_w)
            w16 = <int16_t*>(base + o_w)
            if nonzero == 0:
                kbs[0] = 0
                memset(base + o_w, 0, wbytes)
            i = 0
            for g in range(groups):
                stage_rows(w, 16 * g, 16, segment, span4, kl, 0, tile)
                for b in range(group_end[g - 1] if g else 0, group_end[g]):
                    kb = chosen_kb[b]
                    q = 4 * kb
                    kbs[b] = <int32_t>(((q // span4) * sparse_pitch + q % span4) * sparse_elem if segment
                                       else q * sparse_elem)
                    for r in range(16):
                        for j in range(4):
                            if layout == SPARSE_VNNI:
                                w8[b * 64 + r * 4 + j] = <int8_t>tile[r * kl + q + j]
                            elif layout == SPARSE_AVX2:       # [b][pair][16][2]
                                w16[b * 64 + (j // 2) * 32 + r * 2 + j % 2] = tile[r * kl + q + j]
                            else:                             # [b][4][16]
                                w8[b * 64 + j * 16 + r] = <int8_t>tile[r * kl + q + j]
        return block, layout, kl, (o_w, o_bias, o_mult, o_shift, o_s64, o_s32, o_start, o_kb)
    finally:
        free(cmult)
        free(cshift)
        free(c64)
        free(cbias)
