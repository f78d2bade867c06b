# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The load side of the int8 Winograd F(2x2, 3x3) conv (issue 15; em_conv_winograd.h explains the arithmetic): the
weights' transform U = G' g G'^T into the AVX2 GEMM's panels, and everything else the step keeps (the bias with the
input zero point folded in, the per-column multipliers) in one call.  Not kernels: no KERNELS table.  Twins:
ops/conv_winograd.winograd_panels (the transform), ops/conv.prepare_conv_int8_winograd (the step's arrays);
tests/test_load_fast_paths.py compares them."""
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t
from libc.stdlib cimport free, malloc
from cpython.buffer cimport PyBUF_C_CONTIGUOUS, PyBUF_FORMAT, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from libc.string cimport memcpy, memset, strcmp


cdef extern from "em_multiplier.h" nogil:
    bint multiplier_of "em_multiplier_of"(double real, int rounding, int32_t* mult, int32_t* shift)


cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    #if defined(__SSE2__)
    #include <emmintrin.h>
    #endif
    /* One output channel's filter f [3][3][IC] (contiguous) -> u [16][ICp] (position a * 4 + b; the padding
     * channels untouched).  G' = 2 G has rows (2, 0, 0), (1, 1, 1), (1, -1, 1), (0, 0, 2): t = G' g over the
     * kernel rows, then U = t G'^T over its columns.  |U| <= 1143 and every partial sum fits int16, so the loop
     * over channels runs in 16-bit lanes (ivdep: the 16 rows of u, icp apart, never overlap; without it GCC gives
     * up on the run-time checks between the 9 + 16 streams and runs it scalar, 10x slower). */
    static void em_winograd_filter(const int8_t* f, Py_ssize_t ic, int16_t* u, Py_ssize_t icp) {
        const int8_t* r0 = f;
        const int8_t* r1 = f + 3 * ic;
        const int8_t* r2 = f + 6 * ic;
    #if defined(__GNUC__) && !defined(__clang__)
        #pragma GCC ivdep
    #endif
        for (Py_ssize_t c = 0; c < ic; c++) {
            int16_t t[4][3];
            for (int j = 0; j < 3; j++) {
                const int16_t g0 = r0[j * ic + c], g1 = r1[j * ic + c], g2 = r2[j * ic + c];
                t[0][j] = (int16_t)(2 * g0);
                t[1][j] = (int16_t)(g0 + g1 + g2);
                t[2][j] = (int16_t)(g0 - g1 + g2);
                t[3][j] = (int16_t)(2 * g2);
            }
            for (int a = 0; a < 4; a++) {
                u[(a * 4 + 0) * icp + c] = (int16_t)(2 * t[a][0]);
                u[(a * 4 + 1) * icp + c] = (int16_t)(t[a][0] + t[a][1] + t[a][2]);
                u[(a * 4 + 2) * icp + c] = (int16_t)(t[a][0] - t[a][1] + t[a][2]);
                u[(a * 4 + 3) * icp + c] = (int16_t)(2 * t[a][2]);
            }
        }
    }
    /* One position p of a panel's u [8][16][ICp] in out's order: dst[q * 32 + r * 4 + j] = u[r][p][4 q + j] (a
     * transposition of 8 rows x groups 8-byte pieces); SSE2 (x86-64's baseline) moves two groups of 8 rows as 8
     * 16-byte loads, their 64-bit halves paired, 8 stores. */
    static void em_winograd_interleave(const int16_t* u, Py_ssize_t icp, Py_ssize_t groups, int p, int16_t* dst) {
        const int16_t* rows[8];
        for (int r = 0; r < 8; r++) rows[r] = u + (r * 16 + p) * icp;
        Py_ssize_t q = 0;
    #if defined(__SSE2__)
        for (; q + 2 <= groups; q += 2) {
            __m128i a[8];
            for (int r = 0; r < 8; r++) a[r] = _mm_loadu_si128((const __m128i*)(rows[r] + 4 * q));
            __m128i* lo = (__m128i*)(dst + q * 32);
            __m128i* hi = (__m128i*)(dst + q * 32 + 32);
            for (int r = 0; r < 8; r += 2) {
                _mm_storeu_si128(lo + r / 2, _mm_unpacklo_epi64(a[r], a[r + 1]));
                _mm_storeu_si128(hi + r / 2, _mm_unpackhi_epi64(a[r], a[r + 1]));
            }
        }
    #endif
        for (; q < groups; q++)
            for (int r = 0; r < 8; r++) memcpy(dst + q * 32 + r * 4, rows[r] + q * 4, 4 * sizeof(int16_t));
    }
    """
    void transform_filter "em_winograd_filter"(const int8_t* f, Py_ssize_t ic, int16_t* u,
                                                  Py_ssize_t icp) noexcept nogil
    void interleave "em_winograd_interleave"(const int16_t* u, Py_ssize_t icp, Py_ssize_t groups, int p,
                                              int16_t* dst) noexcept nogil


cdef int transform_into(const int8_t* w, Py_ssize_t oc, Py_ssize_t ic, int16_t* out, Py_ssize_t panels,
                        Py_ssize_t groups, int64_t* sums) noexcept nogil:
    """w [OC][3][3][IC] contiguous -> out [16][panels][groups][8][4] (em_gemm_avx2.h's panels per position), zero for
    the padding rows and channels; sums[o] (when given): the sum of filter o's 9 * IC weights (U's position 5 is
    g's whole sum per channel).  One panel of 8 filters at a time into u [8][16][ICp], then written in out's order
    (em_winograd_interleave).
    -1 when out of memory."""
    cdef Py_ssize_t icp = groups * 4, o, p, q, r, panel
    cdef int16_t* u = <int16_t*>malloc(8 * 16 * icp * sizeof(int16_t))
    if u == NULL:
        return -1
    memset(u, 0, 8 * 16 * icp * sizeof(int16_t))       # (the padding channels and rows stay zero)
    cdef int16_t* dst
    cdef int16_t* row
    cdef int64_t s
    for panel in range(panels):
        for r in range(8):
            o = panel * 8 + r
            row = u + r * 16 * icp
            if o < oc:
                transform_filter(w + o * 9 * ic, ic, row, icp)
                if sums != NULL:
                    s = 0
                    for q in range(ic):
                        s += row[5 * icp + q]
                    sums[o] = s
            elif o == oc:
                memset(row, 0, (8 - r) * 16 * icp * sizeof(int16_t))
        for p in range(16):
            interleave(u, icp, groups, <int>p, out + (p * panels + panel) * groups * 32)
    free(u)
    return 0


cdef char* typed_bytes(obj, Py_ssize_t count, const char* fmt, Py_ssize_t itemsize, const char* what,
                       bint writable=False) except NULL:
    """The first byte of obj's C-contiguous buffer of exactly `count` items of struct format fmt, writable where
    asked (what a typed memoryview checks, at a fraction of its cost: numpy keeps the bytes where they are while
    the array lives); ValueError ("the arrays do not match") for anything else, BufferError for a read-only array
    to be written."""
    cdef Py_buffer view
    if PyObject_GetBuffer(obj, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (PyBUF_WRITABLE if writable else 0)) < 0:
        return NULL
    cdef char* where = <char*>view.buf
    cdef const char* f = view.format
    if f != NULL and f[0] in b"@=<":      # (native order, little-endian here)
        f += 1
    cdef bint ok = (view.itemsize == itemsize and view.len == count * itemsize and f != NULL
                    and (strcmp(f, fmt) == 0 or (fmt[0] == b"i" and strcmp(f, b"l") == 0)))    # (a 4-byte long)
    PyBuffer_Release(&view)
    if not ok:
        raise ValueError(f"{what.decode()}: the arrays do not match")
    return where if count else <char*>1


cdef bint shape_is(obj, tuple want):
    shape = obj.shape
    return type(shape) is tuple and shape == want


def winograd_weights(w, out):
    """conv_winograd.winograd_pack's transform in one pass: U = G' g G'^T per output / input channel of int8 w
    [OC][3][3][IC] (C-contiguous) into out [16][OCp / 8][ICp / 4][8][4] int16 (position a * 4 + b, then
    em_gemm_avx2.h's panels), zero for the padding channels."""
    wshape = w.shape
    if len(wshape) != 4:
        raise ValueError("winograd_weights: the arrays do not match")
    cdef Py_ssize_t oc = wshape[0], ic = wshape[3]
    cdef Py_ssize_t panels = (oc + 7) // 8, groups = (ic + 3) // 4
    if not (wshape[1] == 3 and wshape[2] == 3 and shape_is(out, (16, panels, groups, 8, 4))):
        raise ValueError("winograd_weights: the arrays do not match")
    cdef const int8_t* wp = <const int8_t*>typed_bytes(w, oc * 9 * ic, b"b", 1, b"winograd_weights")
    cdef int16_t* up = <int16_t*>typed_bytes(out, 16 * panels * groups * 32, b"h", 2, b"winograd_weights", True)
    if oc == 0 or ic == 0:      # (no output or no input channels: w holds no value either)
        return
    cdef int status
    with nogil:
        status = transform_into(wp, oc, ic, up, panels, groups, NULL)
    if status:
        raise MemoryError()


cdef inline bint fits_int32(int64_t v) noexcept:
    return -(<int64_t>1 << 31) < v < (<int64_t>1 << 31)      # (a literal 2^31 would be a Python int)


def winograd_arrays(w, bias, int64_t in_zp, double input_scale, weight_scales, double output_scale, int rounding,
                    u, bias_out, mult, shift, scale64, scale32):
    """What ops/conv.prepare_conv_int8_winograd keeps for the step, written into the kept arrays in one call: the
    per-column multipliers of real = float32 input_scale * weight_scale / float32 output_scale in double
    (load_pack.tflite_column_scales; a ValueError naming a value that cannot be quantized, before anything else),
    the bias - in_zp * sum w (packing.fold_input_zero_point without wrapping: OverflowError outside int32), then
    U (winograd_weights); every array zero past OC.  w: int8 [OC][3][3][IC], bias: OC int32 or None,
    weight_scales: OC or 1 float64, u: int16 [16][OCp / 8][ICp / 4][8][4], the others OCp values (int32 bias_out,
    mult, shift, float64 scale64, float32 scale32), every array C-contiguous (ValueError "the arrays do not
    match" otherwise)."""
    wshape = w.shape
    if len(wshape) != 4 or len(weight_scales.shape) != 1 or len(bias_out.shape) != 1:
        raise ValueError("winograd_arrays: the arrays do not match")
    cdef Py_ssize_t oc = wshape[0], ic = wshape[3], ocp = bias_out.shape[0], m = weight_scales.shape[0], c
    cdef Py_ssize_t panels = ocp // 8, groups = (ic + 3) // 4
    if (wshape[1] != 3 or wshape[2] != 3 or ocp % 8 or ocp < oc or ocp >= oc + 8 or (m != oc and m != 1)
            or oc == 0 or ic == 0 or not shape_is(u, (16, panels, groups, 8, 4))):
        raise ValueError("winograd_arrays: the arrays do not match")
    what = b"winograd_arrays"
    cdef const int8_t* wp = <const int8_t*>typed_bytes(w, oc * 9 * ic, b"b", 1, what)
    cdef const double* ws = <const double*>typed_bytes(weight_scales, m, b"d", 8, what)
    cdef int16_t* up = <int16_t*>typed_bytes(u, 16 * panels * groups * 32, b"h", 2, what, True)
    cdef int32_t* bo = <int32_t*>typed_bytes(bias_out, ocp, b"i", 4, what, True)
    cdef int32_t* mp = <int32_t*>typed_bytes(mult, ocp, b"i", 4, what, True)
    cdef int32_t* sp = <int32_t*>typed_bytes(shift, ocp, b"i", 4, what, True)
    cdef double* s64 = <double*>typed_bytes(scale64, ocp, b"d", 8, what, True)
    cdef float* s32 = <float*>typed_bytes(scale32, ocp, b"f", 4, what, True)
    cdef const int32_t* b32 = NULL
    if bias is not None:
        if len(bias.shape) != 1 or bias.shape[0] != oc:
            raise ValueError("winograd_arrays: the bias does not match the weights")
        b32 = <const int32_t*>typed_bytes(bias, oc, b"i", 4, what)
    cdef double s_in = <double><float>input_scale, s_out = <double><float>output_scale, real
    for c in range(oc):
        real = (s_in * ws[c if m == oc else 0]) / s_out
        if not multiplier_of(real, rounding, &mp[c], &sp[c]):
            raise ValueError(f"cannot quantize multiplier {real!r}")
        s64[c] = real
        s32[c] = <float>real
    for c in range(oc, ocp):
        mp[c], sp[c], s64[c], s32[c], bo[c] = 0, 0, 0.0, 0.0, 0
    cdef int64_t* sums = <int64_t*>malloc(oc * sizeof(int64_t))
    if sums == NULL:
        raise MemoryError()
    cdef int status
    with nogil:
        status = transform_into(wp, oc, ic, up, panels, groups, sums)
    cdef int64_t v
    try:
        if status:
            raise MemoryError()
        for c in range(oc):
            v = (b32[c] if b32 != NULL else 0) - in_zp * sums[c]
            if not fits_int32(v):
                raise OverflowError("bias and weights overflow the int32 accumulator")
            bo[c] = <int32_t>v
    finally:
        free(sums)
