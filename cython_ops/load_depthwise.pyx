# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The int8 vector depthwise kernels' load-time constants in one call (issue 15): everything
edgeml/runtime/packing_depthwise.py's numpy forms compute for one op (lane weights, folded bias and requantization
per lane, double-rounding table, tap offsets, float estimate, band sizes), written into one kept block.  Not
kernels: no KERNELS table; packing_depthwise.depthwise_rows is its numpy twin (tests/test_load_depthwise.py)."""
from cpython.buffer cimport PyBUF_C_CONTIGUOUS, PyBuffer_Release, PyObject_GetBuffer
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset

import numpy as np

DEF MAX_PATTERNS = 64           # packing_depthwise.MAX_PATTERNS
DEF ALIGN = 64                  # every part of the block starts on a cache line (plan.KEEP_ALIGN)


cdef inline int64_t round_up(int64_t n, int64_t to) noexcept:
    return (n + to - 1) // to * to


cdef inline int64_t floor_div(int64_t a, int64_t b) noexcept:
    """Python's a // b (b > 0)."""
    cdef int64_t q = a // b
    return q - 1 if (a % b) and a < 0 else q


cdef inline int64_t gcd(int64_t a, int64_t b) noexcept:
    while b:
        a, b = b, a % b
    return a


cdef double POW2_NEG[64]         # 2^-k, exact: multiplying by it equals dividing by 2^k (no division a lane)
for _k in range(64):
    POW2_NEG[_k] = 1.0 / <double>((<uint64_t>1) << _k)


cdef void tap_sums(const int8_t* w, int64_t taps, int64_t oc, int64_t tap_stride, int64_t ch_stride, int64_t w_zp,
                   int64_t* sums, int64_t* bound) noexcept:
    """Per channel c of w [taps][oc] (strides in bytes): sums[c] = sum of w, bound[c] = sum of |w - w_zp|;
    contiguous rows with a zero point of a byte's range in int32 lanes, which the compiler vectorizes."""
    cdef int64_t t, c, v
    cdef const int8_t* row
    cdef int32_t z = <int32_t>w_zp, x
    cdef int32_t* s32
    cdef int32_t* b32
    memset(sums, 0, oc * sizeof(int64_t))
    memset(bound, 0, oc * sizeof(int64_t))
    if ch_stride == 1 and -256 <= w_zp <= 256 and taps < (1 << 22):
        s32 = <int32_t*>malloc(2 * oc * sizeof(int32_t))
        if s32 != NULL:
            b32 = s32 + oc
            memset(s32, 0, 2 * oc * sizeof(int32_t))
            for t in range(taps):
                row = w + t * tap_stride
                for c in range(oc):
                    x = row[c]
                    s32[c] += x
                    b32[c] += x - z if x >= z else z - x
            for c in range(oc):
                sums[c], bound[c] = s32[c], b32[c]
            free(s32)
            return
    for t in range(taps):
        for c in range(oc):
            v = w[t * tap_stride + c * ch_stride]
            sums[c] += v
            bound[c] += v - w_zp if v >= w_zp else w_zp - v


cdef char* contiguous(obj, Py_ssize_t itemsize, Py_ssize_t count, const char* what) except NULL:
    """The first byte of a C-contiguous array of `count` items of `itemsize` bytes (kept alive by the caller)."""
    cdef Py_buffer view
    PyObject_GetBuffer(obj, &view, PyBUF_C_CONTIGUOUS)
    cdef char* where = <char*>view.buf
    cdef Py_ssize_t length = view.len, size = view.itemsize
    PyBuffer_Release(&view)
    if size != itemsize or length != itemsize * count:
        raise ValueError(f"depthwise_rows: {what.decode()} does not match the weights")
    return where


def depthwise_rows(keep, const int8_t[:, :] w_taps, bias, mult, shift, scale64, scale32, int64_t in_zp, int64_t w_zp,
                   int mode, int64_t out_zp, int64_t step, int64_t group, bint wide, int64_t table_lanes, int64_t oh,
                   int64_t ow, int64_t iw, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t dh, int64_t dw,
                   int64_t threads, int64_t band_limit):
    """Everything em_depthwise_simd.h reads for one op, in one block from keep((bytes,), np.uint8) (Ctx.keep_new):
    returns (block, byte offsets of (weights, bias, mult, shift, scale64, scale32, rq_table, tap_offsets,
    rq_estimate), the kernel's integers).  w_taps [taps][OC] int8; bias None or int32 [OC]; mult, shift int32,
    scale64 float64, scale32 float32 [OC]; step, group, wide, table_lanes: the RowKernel; band_limit:
    packing_depthwise.BAND_BYTES.  OverflowError where the folded bias leaves int32 (unless it wraps)."""
    cdef int64_t taps = w_taps.shape[0], oc = w_taps.shape[1]
    cdef int64_t esz = 2 if wide else 1, quarter = step // 4
    cdef int64_t patterns, segment, period, lanes, groups, p, j, k, L, i, c, t, v, e, b, first, total = 0
    cdef int64_t at[9]
    cdef int64_t size[9]
    cdef bint estimate
    cdef int64_t limit = (<int64_t>1) << 31      # (a literal this large would be a Python int)
    cdef char* base
    if taps <= 0 or oc <= 0 or step <= 0 or step % 16 or group <= 0 or table_lanes not in (8, 16) or kw <= 0 or sw <= 0 \
            or sh <= 0 or threads <= 0:
        raise ValueError("depthwise_rows: bad sizes")
    cdef const int32_t* b32 = NULL
    if bias is not None:
        b32 = <const int32_t*>contiguous(bias, 4, oc, b"the bias")
    cdef const int32_t* m32 = <const int32_t*>contiguous(mult, 4, oc, b"mult")
    cdef const int32_t* s32 = <const int32_t*>contiguous(shift, 4, oc, b"shift")
    cdef const double* f64 = <const double*>contiguous(scale64, 8, oc, b"scale64")
    cdef const float* f32 = <const float*>contiguous(scale32, 4, oc, b"scale32")

    period = oc // gcd(oc, step)        # (packing_depthwise.row_patterns)
    if period <= MAX_PATTERNS:
        patterns, segment = period, 0
    else:
        patterns, segment = (oc + step - 1) // step, oc
    lanes = patterns * step
    groups = (taps + group - 1) // group
    cdef int64_t zp_fold = 0 if wide else in_zp + 128
    cdef int64_t zp_add = taps * (in_zp + 128) * w_zp if not wide and w_zp else 0
    cdef bint wrap = w_zp != 0 or mode == 3

    cdef int64_t* ch = <int64_t*>malloc((lanes + 3 * oc) * sizeof(int64_t))
    if ch == NULL:
        raise MemoryError()
    cdef int64_t* sums = ch + lanes             # per channel: tap sums, |w - w_zp| bounds, folded bias
    cdef int64_t* bound = sums + oc
    cdef int64_t* folded = bound + oc
    try:
        # each lane's channel (packing_depthwise.lane_positions / lane_channels), oc where the lane is unused
        for p in range(patterns):
            j = p * step
            first = j % oc if segment == 0 else j       # (one division a pattern, not one a lane)
            for k in range(4):
                for L in range(step // 16 if group == 4 else 2):
                    for i in range(4):
                        # byte unpacks: accumulator k holds values 16 L + 4 k + i; int16 unpacks in two
                        # 16-value halves: 16 (k / 2) + 8 L + 4 (k % 2) + i
                        v = first + (16 * L + 4 * k + i if group == 4 else 16 * (k // 2) + 8 * L + 4 * (k % 2) + i)
                        if v >= oc:
                            v = (v % oc if v >= 2 * oc else v - oc) if segment == 0 else oc
                        ch[j] = v
                        j += 1
        tap_sums(&w_taps[0, 0], taps, oc, w_taps.strides[0], w_taps.strides[1], w_zp, sums, bound)
        for c in range(oc):
            if s32[c] < -31:
                raise ValueError("depthwise_rows: a right shift beyond 31")
            v = (b32[c] if b32 != NULL else 0) - zp_fold * sums[c] + zp_add
            if wrap:
                v = <int64_t><int32_t><uint32_t>(<uint64_t>v & 0xFFFFFFFFu)
            elif not -limit < v < limit:
                raise OverflowError("depthwise bias and weights overflow the int32 accumulator")
            folded[c] = v
        # the float estimate (packing_depthwise.estimate_table): every channel has a lane, and unused lanes
        # (multiplier 0, shift 0, channel 0's bound) pass wherever channel 0 does
        estimate = mode == 0 or mode == 1
        for c in range(oc):
            if not estimate:
                break
            e = s32[c]
            b = 255 * bound[c] + (0 if b32 == NULL else (b32[c] if b32[c] >= 0 else -<int64_t>b32[c]))
            if e > 0 or e < -31 or m32[c] < 0 or b >= limit:
                estimate = False
            elif not (<double>b * (<double>m32[c] * POW2_NEG[31 - e]) + 129.0 < 1073741824.0):
                estimate = False

        # the block: each part on a cache line, in the order the kernels' pointers are listed
        size[0] = patterns * groups * step * group * esz
        size[1] = size[2] = size[3] = size[5] = lanes * 4
        size[4] = lanes * 8
        size[6] = lanes // table_lanes * (576 if table_lanes == 16 else 160)
        size[7] = groups * group * 8
        size[8] = 3 * lanes * 4 if estimate else 4
        for i in range(9):
            at[i] = total
            total += round_up(size[i], ALIGN)
        block = keep((total,), np.uint8)
        base = <char*>contiguous(block, 1, total, b"the block")
        # zeros only where nothing is written: the gaps after each part, and the weights' unused lanes and
        # padding taps (fresh pages: a whole-block memset would cost as much as the packing)
        for i in range(9):
            memset(base + at[i] + size[i], 0, round_up(size[i], ALIGN) - size[i])
        if segment or taps % group:
            memset(base, 0, size[0])
        if not estimate:
            (<float*>(base + at[8]))[0] = 0.0
        fill_weights(&w_taps[0, 0] if taps else NULL, taps, w_taps.strides[0], w_taps.strides[1], ch, oc, lanes,
                     step, group, groups, w_zp if wide else 0, base + at[0], wide)
        fill_columns(ch, oc, lanes, folded, m32, s32, f64, f32, <int32_t*>(base + at[1]),
                     <int32_t*>(base + at[2]), <int32_t*>(base + at[3]),
                     <double*>(base + at[4]), <float*>(base + at[5]))
        if table_lanes == 16:
            fill_mbqm16(<int32_t*>(base + at[2]), <int32_t*>(base + at[3]), lanes,
                        <uint8_t*>(base + at[6]))
        else:
            fill_mbqm8(<int32_t*>(base + at[2]), <int32_t*>(base + at[3]), lanes,
                       <uint8_t*>(base + at[6]))
        if estimate:
            fill_estimate(<int32_t*>(base + at[2]), <int32_t*>(base + at[3]), lanes,
                          table_lanes, mode, out_zp, <float*>(base + at[8]))
    finally:
        free(ch)

    # geometry of the staged rows and bands (packing_depthwise.pack_depthwise_rows)
    cdef int64_t iwp = (ow - 1) * sw + (kw - 1) * dw + 1
    cdef int64_t phase_width = (iwp + sw - 1) // sw
    cdef int64_t pitch = round_up(sw * phase_width * oc * esz, 64)
    cdef int64_t* tap_at = <int64_t*>(base + at[7])
    for t in range(groups * group):
        tap_at[t] = t // kw * dh * pitch + ((t % kw * dw) % sw * phase_width + (t % kw * dw) // sw) * oc * esz \
            if t < taps else 0
    cdef int64_t rows_per_slice = (oh + threads - 1) // threads
    cdef int64_t reach = (kh - 1) * dh + 1
    cdef int64_t band = max(1, min(rows_per_slice, floor_div(band_limit // pitch - reach, sh) + 1))
    cdef int64_t in_rows = (band - 1) * sh + reach
    cdef int64_t band_bytes = round_up(max(in_rows * pitch, reach * (pitch + 64)) + 128, 64) + \
        round_up(iw * oc * esz + 64, 64) + round_up(iw * oc + 64, 64)
    cdef bint any_left = False
    for c in range(oc):
        any_left = any_left or s32[c] > 0
    return block, (at[0], at[1], at[2], at[3], at[4], at[5], at[6], at[7], at[8]), \
        dict(patterns=patterns, segment=segment, tap_groups=groups, phase_width=phase_width, row_pitch=pitch,
             band_rows=band, band_bytes=band_bytes, threads=threads, w_zp=w_zp, any_left=int(any_left),
             estimate=int(estimate))


cdef void fill_weights(const int8_t* w, int64_t taps, int64_t tap_stride, int64_t ch_stride, const int64_t* ch,
                       int64_t oc, int64_t lanes, int64_t step, int64_t group, int64_t groups, int64_t subtract,
                       char* out, bint wide) noexcept:
    """[pattern][tap group][accumulator][lane / 4][tap of the group] = w[tap][ch[lane]] - subtract, 0 for padding
    taps and unused lanes (packing_depthwise.lane_weights: those zeroed by the caller): lane j of pattern p lies at
    (p * groups * step + j) * group + tap group * step * group + tap % group."""
    cdef int64_t p, j, tap, t, at, stride = step * group
    cdef const int8_t* src
    cdef int8_t* out8
    cdef int16_t* out16
    for p in range(patterns_of(lanes, step)):
        for j in range(step):
            if ch[p * step + j] >= oc:
                continue
            src = w + ch[p * step + j] * ch_stride
            at = (p * groups * step + j) * group
            t = 0
            if wide:
                out16 = <int16_t*>out + at
                for tap in range(taps):
                    out16[t] = <int16_t>(src[0] - subtract)
                    src += tap_stride
                    t += 1
                    if t == group:
                        t = 0
                        out16 += stride
            else:
                out8 = <int8_t*>out + at
                for tap in range(taps):
                    out8[t] = src[0]
                    src += tap_stride
                    t += 1
                    if t == group:
                        t = 0
                        out8 += stride


cdef inline int64_t patterns_of(int64_t lanes, int64_t step) noexcept:
    return lanes // step


cdef void fill_columns(const int64_t* ch, int64_t oc, int64_t lanes, const int64_t* folded, const int32_t* mult,
                       const int32_t* shift, const double* scale64, const float* scale32, int32_t* out_bias,
                       int32_t* out_mult, int32_t* out_shift, double* out_scale64, float* out_scale32) noexcept:
    """Per lane its channel's folded bias and requantization values, 0 where unused (packing_depthwise.lane_columns)."""
    cdef int64_t lane, c
    for lane in range(lanes):
        c = ch[lane]
        if c < oc:
            out_bias[lane], out_mult[lane], out_shift[lane] = <int32_t>folded[c], mult[c], shift[c]
            out_scale64[lane], out_scale32[lane] = scale64[c], scale32[c]
        else:
            out_bias[lane], out_mult[lane], out_shift[lane] = 0, 0, 0
            out_scale64[lane], out_scale32[lane] = 0.0, 0.0


cdef void fill_mbqm16(const int32_t* mult, const int32_t* shift, int64_t lanes, uint8_t* out) noexcept:
    """em_mbqm16_lanes per 16 lanes (packing_depthwise.mbqm_lanes16): int32 m, m_odd, left; int64 add_e, add_o,
    neg_e, neg_o, sh_e, sh_o (576 bytes); right shifts are at most 31 (QuantizeMultiplier)."""
    cdef int64_t r, i, e
    cdef int32_t* i32
    cdef int64_t* i64
    for r in range(lanes // 16):
        i32 = <int32_t*>(out + 576 * r)
        i64 = <int64_t*>(out + 576 * r + 192)
        for i in range(16):
            i32[i] = mult[16 * r + i]
            i32[16 + i] = mult[16 * r + i + 1] if i % 2 == 0 else 0
            i32[32 + i] = shift[16 * r + i] if shift[16 * r + i] > 0 else 0
            e = -<int64_t>shift[16 * r + i]
            if e < 0:
                e = 0
            i64[(i % 2) * 8 + i // 2] = (1 << 30) + ((<int64_t>1) << (30 + e)) if e > 0 else (1 << 30)
            i64[16 + (i % 2) * 8 + i // 2] = -(<int64_t>1 << 31) if e > 0 else 0
            i64[32 + (i % 2) * 8 + i // 2] = 31 + e


cdef void fill_mbqm8(const int32_t* mult, const int32_t* shift, int64_t lanes, uint8_t* out) noexcept:
    """em_mbqm8_lanes per 8 lanes (packing_depthwise.mbqm_lanes8): int32 m, m_odd, left, right, half (160 bytes)."""
    cdef int64_t r, i, s, right
    cdef int32_t* i32
    for r in range(lanes // 8):
        i32 = <int32_t*>(out + 160 * r)
        for i in range(8):
            s = shift[8 * r + i]
            right = -s if s < 0 else 0
            i32[i] = mult[8 * r + i]
            i32[8 + i] = mult[8 * r + i + 1] if i % 2 == 0 else 0
            i32[16 + i] = <int32_t>(s if s > 0 else 0)
            i32[24 + i] = <int32_t>right
            i32[32 + i] = <int32_t>((<int64_t>1) << (right - 1)) if right > 0 else 0


cdef void fill_estimate(const int32_t* mult, const int32_t* shift, int64_t lanes, int64_t table_lanes, int mode,
                        int64_t out_zp, float* out) noexcept:
    """Per block of table_lanes lanes float32 f = M 2^(shift - 31), zp + d, zp - d (d = 2^(shift - 1) for double
    rounding's right shifts, else 0): packing_depthwise.estimate_table."""
    cdef int64_t blk, i, lane, s
    cdef double d
    cdef float* row
    for blk in range(lanes // table_lanes):
        for i in range(table_lanes):
            lane = blk * table_lanes + i
            s = shift[lane]
            d = POW2_NEG[1 - s] if mode == 0 and s != 0 else 0.0
            row = out + blk * 3 * table_lanes + i
            row[0] = <float>(<double>mult[lane] * POW2_NEG[31 - s])
            row[table_lanes] = <float>(out_zp + d)
            row[2 * table_lanes] = <float>(out_zp - d)
