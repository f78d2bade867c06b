# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Load-time helpers (issue 15): one pass in C where the numpy forms of the packers (edgeml/runtime/packing.py,
packing_sparse.py; the depthwise one's: load_depthwise.pyx) and of the multipliers (numerics.quantize_multipliers) take several passes
and temporaries, and an array's data address without numpy's interface dict.  Not kernels: no KERNELS table; each
function has a numpy twin, and tests/test_load_fast_paths.py compares the two."""
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint32_t, uint64_t
from cpython.long cimport PyLong_AsLongLongAndOverflow
from libc.stdlib cimport free, malloc, qsort
from libc.string cimport memcpy, memset, strcmp

import numpy as np

from cython_ops.load_buffer cimport buffer_address, buffer_bytes


cdef extern from "math.h" nogil:
    double frexp(double x, int* exp)
    double floor(double x)
    bint isfinite(double x)
cdef extern from "em_multiplier.h" nogil:
    bint multiplier_of "em_multiplier_of"(double real, int rounding, int32_t* mult, int32_t* shift)


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
    """
    void em_vnni_block_rows(const int8_t* w, int64_t k, int64_t words, int8_t* dst) nogil


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
    interface dict): the start of the buffer the object exports (load_buffer.buffer_address, for Python)."""
    return buffer_address(obj)



cdef int64_t place_in_c(Py_ssize_t n, const int64_t* sizes, const int64_t* first, const int64_t* last,
                        int64_t* offsets, int64_t* order) noexcept:
    """place_buffers' placement over C arrays (order: n scratch slots); returns the total bytes."""
    cdef Py_ssize_t i, j, at, count = 0
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
    return total


def place_buffers(const int64_t[::1] sizes, const int64_t[::1] first, const int64_t[::1] last):
    """arena.plan_arena's placement in one pass: buffers in the given order (sizes already rounded to the
    alignment), each at the lowest offset that overlaps no placed buffer whose lifetime [first, last] intersects
    its own; the placed buffers are read in offset order.  Returns (int64 offsets, total bytes)."""
    cdef Py_ssize_t n = sizes.shape[0]
    if first.shape[0] != n or last.shape[0] != n:
        raise ValueError("place_buffers: sizes and lifetimes differ in length")
    offsets_array = np.empty(n, np.int64)
    order_array = np.empty(max(n, 1), np.int64)      # placed buffers by offset
    cdef int64_t[::1] offsets = offsets_array
    cdef int64_t[::1] order = order_array
    if n == 0:
        return offsets_array, 0
    return offsets_array, place_in_c(n, &sizes[0], &first[0], &last[0], &offsets[0], &order[0])


# --- arena.plan_arena in one call: the buffers' order (size, then str(key)) and their placement --------------------

cdef struct Buffer:
    int64_t size            # as given (the order's first key)
    int kind                # str(key)'s order among ties: ("scratch", k) < ("status", k) < tensor index
    char text[24]           # the decimal digits of the index (k or the tensor index)
    int64_t index           # k or the tensor index
    Py_ssize_t slot         # position in the keys list


cdef int64_t BUFFER_LIMIT = (<int64_t>1) << 56     # sizes, steps, indices: beyond it Python plans


cdef int buffer_order(const void* a, const void* b) noexcept nogil:
    cdef const Buffer* x = <const Buffer*>a
    cdef const Buffer* y = <const Buffer*>b
    if x.size != y.size:
        return -1 if x.size > y.size else 1
    if x.kind != y.kind:
        return -1 if x.kind < y.kind else 1
    return strcmp(x.text, y.text)


cdef bint small_index(v, int64_t* out):
    """A Python int in 0..BUFFER_LIMIT - 1."""
    cdef int overflow = 0
    if type(v) is not int:
        return False
    out[0] = PyLong_AsLongLongAndOverflow(v, &overflow)
    return overflow == 0 and 0 <= out[0] < BUFFER_LIMIT


cdef void decimal_text(int64_t v, char* text) noexcept:
    """The digits of v >= 0, NUL-terminated (text: 24 bytes)."""
    cdef char digits[24]
    cdef int n = 0, i
    while True:
        digits[n] = <char>(48 + v % 10)
        n += 1
        v //= 10
        if v == 0:
            break
    for i in range(n):
        text[i] = digits[n - 1 - i]
    text[n] = 0


def plan_buffers(dict sizes, dict lifetimes, int64_t align, bint split=False):
    """arena.plan_arena (ordered largest first, ties by str(key), each placed as place_buffers does) for keys that
    are tensor indices or ("scratch" | "status", step) pairs with sizes and lifetimes in 0..2**56: (offsets dict in
    placement order, total bytes); None for anything else (arena.plan_arena_in_python then plans).  split:
    arena.plan_arena_split's (tensor offsets, {step: (scratch offset, bytes)}, {step: status offset}, total), each
    dict in placement order."""
    cdef Py_ssize_t n = len(sizes), i
    cdef Buffer* buffers = <Buffer*>malloc(max(n, 1) * sizeof(Buffer))
    cdef int64_t* ints = <int64_t*>malloc(max(n, 1) * 5 * sizeof(int64_t))
    cdef int64_t index, size, f, l
    if buffers == NULL or ints == NULL:
        free(buffers)
        free(ints)
        raise MemoryError()
    cdef int64_t* aligned = ints
    cdef int64_t* first = ints + n
    cdef int64_t* last = ints + 2 * n
    cdef int64_t* offsets = ints + 3 * n
    cdef int64_t* order = ints + 4 * n
    keys = list(sizes)
    try:
        if align <= 0 or align > 4096:
            return None
        for i in range(n):
            key = keys[i]
            if type(key) is int:
                buffers[i].kind = 2
                item = key
            elif type(key) is tuple and len(<tuple>key) == 2 and ((<tuple>key)[0] == "scratch"
                                                                  or (<tuple>key)[0] == "status"):
                buffers[i].kind = 0 if (<tuple>key)[0] == "scratch" else 1
                item = (<tuple>key)[1]
            else:
                return None
            if not small_index(item, &index) or not small_index(sizes[key], &size):
                return None
            span = lifetimes[key]
            if type(span) is not tuple or len(<tuple>span) != 2:
                return None
            if not (small_index((<tuple>span)[0], &f) and small_index((<tuple>span)[1], &l)):
                return None
            decimal_text(index, buffers[i].text)
            buffers[i].index = index
            buffers[i].size = size
            buffers[i].slot = i
        qsort(buffers, n, sizeof(Buffer), buffer_order)
        for i in range(n):
            key = keys[buffers[i].slot]
            aligned[i] = (buffers[i].size + align - 1) // align * align
            span = lifetimes[key]
            first[i], last[i] = (<tuple>span)[0], (<tuple>span)[1]
        total = place_in_c(n, aligned, first, last, offsets, order) if n else 0
        if not split:
            return {keys[buffers[i].slot]: offsets[i] for i in range(n)}, total
        tensor_offsets, scratch, status = {}, {}, {}
        for i in range(n):
            if buffers[i].kind == 2:
                tensor_offsets[keys[buffers[i].slot]] = offsets[i]
            elif buffers[i].kind == 0:
                scratch[buffers[i].index] = (offsets[i], buffers[i].size)
            else:
                status[buffers[i].index] = offsets[i]
        return tensor_offsets, scratch, status, total
    finally:
        free(buffers)
        free(ints)


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
    return -(<int64_t>1 << 31) < v[0] < (<int64_t>1 << 31)      # (a literal 2^31 would be a Python int)


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
