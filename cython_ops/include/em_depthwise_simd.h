/* DEPTHWISE_CONV_2D int8 on the vector units, for every geometry (any channel count, stride, dilation, kernel size
 * and depth multiplier): output rows computed as flat runs of bytes over staged rows of the input.
 *
 * Staging: each padded input row that output rows read is copied once into a ring of `reach` slots of scratch
 * (the slots reused while the row is still in L1; each output row's tap offsets follow its rows' slots; kernels
 * with more than EM_DW_RING_TAPS taps and slices that one band covers stage bands of rows instead, at the fixed
 * tap_offsets), padded with the input
 * zero point, split by stride_w into phases (padded column j goes to phase j % SW at position j / SW) and with each
 * input channel repeated DM times (channel ic feeds outputs ic DM .. ic DM + DM - 1).  Output pixel ox then reads
 * tap kx at position ox + (kx DW) / SW of phase (kx DW) % SW, so for every tap a whole output row (OW x OC values)
 * is one contiguous run of a staged row, at an offset fixed at load (tap_offsets).  A vector holds VB consecutive
 * values of an output row whatever the channel count: value b of the row is channel b % OC, so weights, bias and
 * requantization per lane repeat with a period of `patterns` vectors (OC / gcd(OC, VB)), packed at load in that
 * order (edgeml/runtime/packing_depthwise.py).  Channel counts with a long period take one pixel at a time instead
 * (segment = OC: the pattern restarts at each pixel, its last vector masked).
 *
 * Kernels (layout EM_DW_ROWS below):
 *   em_depthwise_int8_vnni      AVX-512 VNNI: staged uint8 (x + 128), 64 values a step, 4 taps per vpdpbusd
 *   em_depthwise_int8_avxvnni   AVX-VNNI: the same on 256-bit registers, 32 values a step
 *   em_depthwise_int8_avx2      AVX2: staged int16 (x - in_zp), 32 values a step, 2 taps per vpmaddwd
 * Four taps' (two taps') vectors are interleaved by in-lane unpacks, which leave accumulator k holding the values
 * in a fixed permuted order (packing_depthwise.lane_positions); saturating packs of the requantized accumulators
 * restore the order for the store.  The uint8 forms fold 128 and the zero point into the bias; padding holds the
 * zero point and cancels, as the reference's skipped taps.  Threads split the output rows (em_threads.h), each
 * slice with its own ring scratch; the sums are the same for any split. */
#ifndef EM_DEPTHWISE_SIMD_H
#define EM_DEPTHWISE_SIMD_H
#include <stdint.h>
#include <string.h>
#include "em_params.h"
#include "em_im2col.h"
#include "em_gemm_vnni.h"
#include "em_gemm_avx2.h"
#include "em_gemm_avxvnni.h"
#include "em_threads.h"

/* The conv layout (em_im2col.h) with: weights packed [patterns][tap groups][4 accumulators][lanes][taps per group],
 * bias and the per-channel requantization arrays per lane [patterns][VB] (lane order), and
 * ptr: rq_table (double-rounding constants per 16 / 8 lanes: em_mbqm16_lanes / em_mbqm8_lanes), tap_offsets
 *      (int64 per tap, padded to whole groups: byte offset of the tap's run from the staged row of its window top)
 * i:   patterns, segment (0: whole rows; OC: pixel by pixel), tap_groups, phase_width (positions per phase),
 *      row_pitch (bytes per staged row), band_rows (output rows per band), band_bytes (scratch per slice),
 *      threads, w_zp (weights' zero point, uint8 models), any_left (some multiplier shifts left)
 * and, with i estimate = 1, ptr rq_estimate: the float estimate of the fixed-point requantization per lane (below).
 *
 * The float estimate (packing_depthwise.estimate_table proves at load that it applies: double or single rounding,
 * no left shift, |sum| * f + 129 < 2^30).  With t = a M / 2^31 and V = t / 2^e (e = -shift), SRDHM is
 * floor(t + 1/2) and RoundingDivideByPOT rounds half away from zero, so the double rounding's result is exactly
 * floor(V + 1/2 + d) for a >= 0 and floor(V + 1/2 - d) for a < 0, d = 2^-(e+1) (0 for e = 0 and for single
 * rounding: floor(V + 1/2)).  The kernels compute w = a f + (zp +- d) in float (f = M 2^(shift-31), both rounded to
 * float) and take the nearest integer of w: below |w| = 300 the float error is under 1e-4 (outputs beyond clamp the
 * same either way), so wherever w is more than EM_DW_NEAR_TIE from a half-integer the result is exact; a vector
 * holding a lane within it takes the exact integer arithmetic instead (the 256-bit kernels redo that step's sums out
 * of line, so that the common path holds no accumulator past its estimate).  The bound assumes the MXCSR rounds to
 * nearest: in another mode the kernels take the exact arithmetic. */
#define EM_DW_NEAR_TIE 0x1p-13f
enum { EM_DW_ROWS_P_RQ_TABLE = EM_CONV_P_COUNT, EM_DW_ROWS_P_TAP_OFFSETS, EM_DW_ROWS_P_RQ_ESTIMATE,
       EM_DW_ROWS_P_COUNT };
enum { EM_DW_ROWS_I_PATTERNS = EM_CONV_I_COUNT, EM_DW_ROWS_I_SEGMENT, EM_DW_ROWS_I_TAP_GROUPS,
       EM_DW_ROWS_I_PHASE_WIDTH, EM_DW_ROWS_I_ROW_PITCH, EM_DW_ROWS_I_BAND_ROWS, EM_DW_ROWS_I_BAND_BYTES,
       EM_DW_ROWS_I_THREADS, EM_DW_ROWS_I_W_ZP, EM_DW_ROWS_I_ANY_LEFT, EM_DW_ROWS_I_ESTIMATE, EM_DW_ROWS_I_COUNT };
enum { EM_DW_ROWS_F_COUNT = 0 };

/* Padded input rows of one band of output rows [oy0, oy1). */
static inline int64_t em_dw_band_in_rows(const int64_t* d, int64_t out_rows) {
    return (out_rows - 1) * d[EM_CONV_I_SH] + (d[EM_CONV_I_KH] - 1) * d[EM_CONV_I_DH] + 1;
}

/* Bytes of staged rows per slice: a band of band_rows output rows, or a ring of `reach` slots of row_pitch + 64 bytes
 * (the slack takes a row's stores' overrun: the next slot may hold a live row); + 128 for the reads' overrun
 * (packing_depthwise.pack_depthwise_rows mirrors this). */
static inline int64_t em_dw_staged_bytes(const int64_t* d) {
    const int64_t pitch = d[EM_DW_ROWS_I_ROW_PITCH];
    const int64_t band = em_dw_band_in_rows(d, d[EM_DW_ROWS_I_BAND_ROWS]) * pitch;
    const int64_t ring = em_dw_band_in_rows(d, 1) * (pitch + 64);
    return ((band > ring ? band : ring) + 128 + 63) / 64 * 64;
}

#if defined(__x86_64__) && defined(__GNUC__)
/* Copy n bytes with 32-byte vectors (last vector overlapping when n >= 32; n < 32 writes and reads 32: callers
 * leave slack after both). */
EM_AVX2_TARGET static inline void em_dw_copy(uint8_t* dst, const uint8_t* src, int64_t n) {
    if (n < 32) {
        _mm256_storeu_si256((__m256i*)dst, _mm256_loadu_si256((const __m256i*)src));
        return;
    }
    int64_t k = 0;
    for (; k + 32 < n; k += 32)
        _mm256_storeu_si256((__m256i*)(dst + k), _mm256_loadu_si256((const __m256i*)(src + k)));
    _mm256_storeu_si256((__m256i*)(dst + n - 32), _mm256_loadu_si256((const __m256i*)(src + n - 32)));
}

EM_AVX2_TARGET static inline void em_dw_fill(uint8_t* dst, __m256i value, int64_t n) {
    for (int64_t k = 0; k < n; k += 32) _mm256_storeu_si256((__m256i*)(dst + k), value);
}

/* Copy n int8 as uint8 (x + 128), like em_dw_copy (n < 32 reads and writes 32 bytes). */
EM_AVX2_TARGET static inline void em_dw_copy_flip(uint8_t* dst, const int8_t* src, int64_t n) {
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    if (n < 32) {
        _mm256_storeu_si256((__m256i*)dst, _mm256_xor_si256(_mm256_loadu_si256((const __m256i*)src), flip));
        return;
    }
    int64_t k = 0;
    for (; k + 32 < n; k += 32)
        _mm256_storeu_si256((__m256i*)(dst + k), _mm256_xor_si256(_mm256_loadu_si256((const __m256i*)(src + k)), flip));
    _mm256_storeu_si256((__m256i*)(dst + n - 32),
                        _mm256_xor_si256(_mm256_loadu_si256((const __m256i*)(src + n - 32)), flip));
}

/* Repeating each value DM times (depth multiplier > 1) by byte shuffles: a 32-byte output chunk starting at value
 * o0 reads 16 source values from o0 / DM on, and (o0 mod DM) takes DM / gcd(DM, 32) values, so the shuffles are
 * built once per call; DM >= EM_DW_REPEAT_MAX fills whole vectors with each value instead. */
#define EM_DW_REPEAT_MAX 32
typedef struct {
    int64_t dm, patterns;                  /* patterns: 0 for dm >= EM_DW_REPEAT_MAX */
    int64_t first[EM_DW_REPEAT_MAX];       /* pattern p's first source value, from its period's start */
    uint8_t idx[EM_DW_REPEAT_MAX][32];     /* pattern p's shuffle of 16 source values (in both 128-bit lanes) */
} em_dw_repeat;

static void em_dw_repeat_init(em_dw_repeat* r, int64_t dm) {
    r->dm = dm;
    r->patterns = 0;
    if (dm <= 1 || dm >= EM_DW_REPEAT_MAX) return;
    int64_t g = dm, b = 32;
    while (b) { const int64_t t = g % b; g = b; b = t; }
    r->patterns = dm / g;
    for (int64_t p = 0; p < r->patterns; p++) {
        r->first[p] = 32 * p / dm;
        const int64_t rem = 32 * p - r->first[p] * dm;
        for (int j = 0; j < 32; j++) r->idx[p][j] = (uint8_t)((rem + j) / dm);
    }
}

/* out[o] = src[o / DM] ^ flip for o < total DM (out needs 32 bytes of slack; src is read only below total). */
EM_AVX2_TARGET static void em_dw_repeat_bytes(const int8_t* src, int64_t total, const em_dw_repeat* r,
                                              uint8_t flip, uint8_t* out) {
    const int64_t dm = r->dm, n = total * dm;
    const __m256i f = _mm256_set1_epi8((char)flip);
    if (r->patterns == 0) {
        for (int64_t k = 0; k < total; k++) {
            const __m256i v = _mm256_set1_epi8((char)(src[k] ^ flip));
            for (int64_t m = 0; m < dm; m += 32) _mm256_storeu_si256((__m256i*)(out + k * dm + m), v);
        }
        return;
    }
    const int64_t period = 32 * r->patterns / dm;      /* source values per round of the patterns */
    int64_t o = 0;
    for (int64_t base = 0, p = 0; o + 32 <= n && base + r->first[p] + 16 <= total; o += 32) {
        const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)(src + base + r->first[p])));
        const __m256i shuffle = _mm256_loadu_si256((const __m256i*)r->idx[p]);
        _mm256_storeu_si256((__m256i*)(out + o), _mm256_xor_si256(_mm256_shuffle_epi8(v, shuffle), f));
        if (++p == r->patterns) { p = 0; base += period; }
    }
    for (; o < n; o++) out[o] = (uint8_t)(src[o / dm] ^ flip);
}

/* One input row as staged values: uint8 x + 128 (wide = 0) or int16 x - zp (wide = 1), channel ic repeated DM
 * times; n pixels of IC channels into n x OC values.  Writes whole 32-byte vectors (out needs 32 bytes of slack);
 * wide with DM > 1 repeats the bytes into rep (n x OC + 32 bytes) first. */
EM_AVX2_TARGET static void em_dw_stage_pixels(const int8_t* src, int64_t n, int64_t IC, const em_dw_repeat* r,
                                              int32_t zp, int wide, uint8_t* out, uint8_t* rep) {
    int64_t total = n * IC;
    if (r->dm > 1 && !wide) {
        em_dw_repeat_bytes(src, total, r, 0x80, out);
        return;
    }
    if (r->dm > 1) {
        em_dw_repeat_bytes(src, total, r, 0, rep);
        src = (const int8_t*)rep;
        total *= r->dm;
    }
    if (!wide) {
        const __m256i flip = _mm256_set1_epi8((char)0x80);
        int64_t k = 0;
        for (; k + 32 <= total; k += 32)
            _mm256_storeu_si256((__m256i*)(out + k),
                                _mm256_xor_si256(_mm256_loadu_si256((const __m256i*)(src + k)), flip));
        for (; k < total; k++) out[k] = (uint8_t)(src[k] ^ 0x80);
        return;
    }
    int16_t* o = (int16_t*)out;
    const __m256i z = _mm256_set1_epi16((int16_t)zp);
    int64_t k = 0;
    for (; k + 16 <= total; k += 16)
        _mm256_storeu_si256((__m256i*)(o + k),
                            _mm256_sub_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(src + k))), z));
    for (; k < total; k++) o[k] = (int16_t)(src[k] - zp);
}

/* One input row (c1 pixels of IC int8 channels from src, `readable` bytes of the image from src on) staged as int16
 * x - zp into SW phases of Wph positions (padding 0), DM 1: each pixel converted 16 channels a vector (the last
 * vector overlapping the one before; fewer than 16 channels: one vector, reading past the pixel while inside the
 * image), in increasing address order so that each store's overrun is rewritten. */
EM_AVX2_TARGET static void em_dw_stage_phases_wide(const int8_t* src, int64_t readable, int64_t IC, int32_t zp,
                                                   int64_t SW, int64_t PL, int64_t Wph, int64_t c1, uint8_t* dst) {
    const int64_t px = 2 * IC;
    const __m256i z = _mm256_set1_epi16((int16_t)zp), zero = _mm256_setzero_si256();
    for (int64_t ph = 0; ph < SW; ph++) {
        int16_t* o = (int16_t*)(dst + ph * Wph * px);
        const int64_t jl = PL > ph ? (PL - ph + SW - 1) / SW : 0;
        int64_t jh = (c1 + PL - ph + SW - 1) / SW;
        jh = jh < Wph ? jh : Wph;
        jh = jh > jl ? jh : jl;
        em_dw_fill((uint8_t*)o, zero, jl * px);
        if (IC % 16 == 0) {     /* whole vectors a pixel: one pointer step each, no overlapping tail */
            const int8_t* from = src + (jl * SW + ph - PL) * IC;
            int16_t* to = o + jl * IC;
            for (int64_t j = jl; j < jh; j++, from += SW * IC, to += IC)
                for (int64_t k = 0; k < IC; k += 16)
                    _mm256_storeu_si256((__m256i*)(to + k), _mm256_sub_epi16(
                        _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(from + k))), z));
            em_dw_fill((uint8_t*)(o + jh * IC), zero, (Wph - jh) * px);
            continue;
        }
        for (int64_t j = jl; j < jh; j++) {
            const int64_t ix = j * SW + ph - PL;
            const int8_t* from = src + ix * IC;
            int16_t* to = o + j * IC;
            if (IC >= 16) {
                for (int64_t k0 = 0; k0 < IC; k0 += 16) {
                    const int64_t k = k0 + 16 <= IC ? k0 : IC - 16;
                    _mm256_storeu_si256((__m256i*)(to + k), _mm256_sub_epi16(
                        _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(from + k))), z));
                }
            } else if (ix * IC + 16 <= readable) {
                _mm256_storeu_si256((__m256i*)to, _mm256_sub_epi16(
                    _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)from)), z));
            } else {
                for (int64_t k = 0; k < IC; k++) to[k] = (int16_t)(from[k] - zp);
            }
        }
        em_dw_fill((uint8_t*)(o + jh * IC), zero, (Wph - jh) * px);
    }
}

/* The AVX-512 VNNI kernel's stride-2 staging of uint8 pixels of 8 or 16 bytes (DM 1): count pixels, 2 pixels apart
 * from `from` on (avail bytes of the image from `from` on), into consecutive positions at o, 64 / px positions a
 * store picked from two 64-byte loads by one qword permute; the last ones by masked loads and stores of px bytes.
 * (Wider pixels stay on em_dw_stage's 32-byte copies: 64-byte ones measured no faster there.) */
EM_VNNI_TARGET static void em_dw_phase_copy512(uint8_t* o, const int8_t* from, int64_t px, int64_t count,
                                               int64_t avail) {
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const __m512i idx = px == 8 ? _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14)
                                : _mm512_setr_epi64(0, 1, 4, 5, 8, 9, 12, 13);
    const int64_t P = 64 / px;
    int64_t j = 0;
    for (; j + P <= count && 2 * j * px + 128 <= avail; j += P) {
        const __m512i a = _mm512_loadu_si512(from + 2 * j * px), b = _mm512_loadu_si512(from + 2 * j * px + 64);
        _mm512_storeu_si512(o + j * px, _mm512_xor_si512(_mm512_permutex2var_epi64(a, idx, b), flip));
    }
    const __mmask64 m = ((__mmask64)1 << px) - 1;
    for (; j < count; j++)
        _mm512_mask_storeu_epi8(o + j * px, m, _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, from + 2 * j * px), flip));
}

/* Stage padded rows [r0, r1) of image img into band, `spacing` bytes apart (tmp: one staged input row + 32, rep:
 * one input row's values repeated, + 32). */
EM_AVX2_TARGET static void em_dw_stage(const em_params* p, const int8_t* img, int64_t r0, int64_t r1, int wide,
                                       int zmm, const em_dw_repeat* rpt, uint8_t* band, int64_t spacing, uint8_t* tmp,
                                       uint8_t* rep) {
    const int64_t* d = p->i;
    const int64_t IH = d[EM_CONV_I_IH], IW = d[EM_CONV_I_IW], IC = d[EM_CONV_I_IC], OC = d[EM_CONV_I_OC];
    const int64_t SW = d[EM_CONV_I_SW], PT = d[EM_CONV_I_PAD_TOP], PL = d[EM_CONV_I_PAD_LEFT];
    const int64_t Wph = d[EM_DW_ROWS_I_PHASE_WIDTH];
    const int32_t zp = (int32_t)d[EM_CONV_I_IN_ZP];
    const int64_t esz = wide ? 2 : 1, px = OC * esz, width = SW * Wph;   /* bytes per pixel; padded columns */
    const __m256i pad = wide ? _mm256_setzero_si256() : _mm256_set1_epi8((char)(uint8_t)(zp + 128));
    /* input columns [0, c1) land inside the padded width (the windows may not reach the last ones) */
    const int64_t c1 = IW < width - PL ? IW : (width - PL > 0 ? width - PL : 0);
    /* uint8 pixels with DM 1 go straight from the image into their phase, 32-byte reads inside the image */
    const int direct = !wide && rpt->dm == 1;
    for (int64_t r = r0; r < r1; r++) {
        uint8_t* dst = band + (r - r0) * spacing;
        const int64_t iy = r - PT;
        if (iy < 0 || iy >= IH || c1 <= 0) { em_dw_fill(dst, pad, width * px); continue; }
        const int8_t* src = img + iy * IW * IC;
        if (SW == 1) {      /* one phase: the row goes straight into place between its pads */
            em_dw_fill(dst, pad, PL * px);
            em_dw_stage_pixels(src, c1, IC, rpt, zp, wide, dst + PL * px, rep);
            em_dw_fill(dst + (PL + c1) * px, pad, (width - PL - c1) * px);
            continue;
        }
        const int64_t readable = (IH - iy) * IW * IC;      /* bytes of the image from src on */
        if (wide && rpt->dm == 1) {      /* int16 pixels converted straight into their phase */
            em_dw_stage_phases_wide(src, readable, IC, zp, SW, PL, Wph, c1, dst);
            continue;
        }
        if (!direct) em_dw_stage_pixels(src, c1, IC, rpt, zp, wide, tmp, rep);
        const __m256i flip = _mm256_set1_epi8((char)0x80);
        for (int64_t ph = 0; ph < SW; ph++) {       /* in increasing address order: each copy's overrun is rewritten */
            uint8_t* o = dst + ph * Wph * px;
            /* positions [jl, jh) hold image columns ix = j SW + ph - PL in [0, c1); the rest is padding */
            const int64_t jl = PL > ph ? (PL - ph + SW - 1) / SW : 0;
            int64_t jh = (c1 + PL - ph + SW - 1) / SW;
            jh = jh < Wph ? jh : Wph;
            jh = jh > jl ? jh : jl;
            em_dw_fill(o, pad, jl * px);
            const int64_t step = SW * px;       /* source bytes from one position to the next */
            if (!direct) {
                const uint8_t* from = tmp + (jl * SW + ph - PL) * px;
                if (px <= 32) {
                    for (int64_t j = jl; j < jh; j++, from += step)
                        _mm256_storeu_si256((__m256i*)(o + j * px), _mm256_loadu_si256((const __m256i*)from));
                } else {
                    for (int64_t j = jl; j < jh; j++, from += step) em_dw_copy(o + j * px, from, px);
                }
            } else if (zmm && SW == 2 && (px == 8 || px == 16)) {
                const int64_t first = (jl * SW + ph - PL) * px;
                em_dw_phase_copy512(o + jl * px, src + first, px, jh - jl, readable - first);
            } else {
                const int8_t* from = src + (jl * SW + ph - PL) * px;
                int64_t j = jl;
                if (px <= 32) {      /* one 32-byte vector a pixel while the read stays inside the image */
                    for (; j < jh && (j * SW + ph - PL) * px + 32 <= readable; j++, from += step)
                        _mm256_storeu_si256((__m256i*)(o + j * px),
                                            _mm256_xor_si256(_mm256_loadu_si256((const __m256i*)from), flip));
                    for (; j < jh; j++, from += step)
                        for (int64_t k = 0; k < px; k++) o[j * px + k] = (uint8_t)(from[k] ^ 0x80);
                } else {
                    for (; j < jh; j++, from += step) em_dw_copy_flip(o + j * px, from, px);
                }
            }
            em_dw_fill(o + jh * px, pad, (Wph - jh) * px);
        }
    }
}

/* What the row kernels read, gathered once per call. */
typedef struct {
    const int64_t* off;        /* tap offsets */
    const int8_t* w;           /* packed weights */
    const int32_t* bias;       /* per lane */
    const void* table;         /* double-rounding constants per accumulator */
    int64_t groups, patterns;
    int32_t w_zp, any_left;
    int64_t taps;
    int single_last;           /* the last group of 4 taps holds one (uint8 kernels without a weight zero point) */
    const float* est;          /* the float estimate's constants per block of lanes, or NULL */
} em_dw_rows;

/* The slices of one call: output rows of every image split into `threads` ranges. */
typedef void (*em_dw_row_fn)(const uint8_t* src, int8_t* out, int64_t n, const em_dw_rows* c, const void* g);

typedef struct {
    const em_params* p;
    em_dw_row_fn row;
    const em_dw_rows* c;
    const void* g;
    int wide, zmm;         /* staged int16; the AVX-512 VNNI kernel's staging (em_dw_phase_copy512) */
} em_dw_call;

/* Taps (padded to whole groups) up to which a slice stages rows into a ring of `reach` slots (each input row staged
 * once and the slots reused while still in L1); larger kernels stage band by band, and so does a slice that one band
 * covers (small images: all rows in one pass, no per-row set-up). */
#define EM_DW_RING_TAPS 256

/* One output row from its staged window top `row`. */
static inline void em_dw_out_row(const em_dw_call* call, const em_dw_rows* c, const uint8_t* row, int8_t* o,
                                 int64_t OW, int64_t OC, int64_t seg, int64_t esz) {
    if (seg == 0) {
        call->row(row, o, OW * OC, c, call->g);
    } else {
        for (int64_t ox = 0; ox < OW; ox++) call->row(row + ox * OC * esz, o + ox * OC, OC, c, call->g);
    }
}

EM_AVX2_TARGET static void em_dw_slice(const void* ctx, int64_t slice, int64_t nslices) {
    const em_dw_call* call = (const em_dw_call*)ctx;
    const em_params* p = call->p;
    const int64_t* d = p->i;
    const int64_t OH = d[EM_CONV_I_OH], OW = d[EM_CONV_I_OW], OC = d[EM_CONV_I_OC], SH = d[EM_CONV_I_SH];
    const int64_t pitch = d[EM_DW_ROWS_I_ROW_PITCH], B = d[EM_DW_ROWS_I_BAND_ROWS], seg = d[EM_DW_ROWS_I_SEGMENT];
    const int64_t KW = d[EM_CONV_I_KW], DH = d[EM_CONV_I_DH], reach = em_dw_band_in_rows(d, 1);
    const int64_t esz = call->wide ? 2 : 1;
    const int64_t oy0 = OH * slice / nslices, oy1 = OH * (slice + 1) / nslices;
    uint8_t* band = (uint8_t*)p->ptr[EM_CONV_P_SCRATCH] + slice * d[EM_DW_ROWS_I_BAND_BYTES];
    uint8_t* tmp = band + em_dw_staged_bytes(d);
    uint8_t* rep = tmp + (d[EM_CONV_I_IW] * OC * esz + 64 + 63) / 64 * 64;
    em_dw_repeat rpt;
    em_dw_repeat_init(&rpt, d[EM_CONV_I_DM]);
    const int8_t* in = (const int8_t*)p->ptr[EM_CONV_P_INPUT];
    int8_t* out = (int8_t*)p->ptr[EM_CONV_P_OUTPUT];
    const int64_t padded = call->c->groups * (call->wide ? 2 : 4), taps = call->c->taps;
    if (padded <= EM_DW_RING_TAPS && B < oy1 - oy0) {
        /* tap t of an output row whose window top sits in slot s: its row's slot, less s, times the slot pitch, plus
         * its column offset col[t] */
        int64_t col[EM_DW_RING_TAPS], off[EM_DW_RING_TAPS];
        int64_t drow[EM_DW_RING_TAPS];
        for (int64_t t = 0; t < padded; t++) {
            drow[t] = t < taps ? t / KW * DH : 0;
            col[t] = call->c->off[t] - drow[t] * pitch;
        }
        em_dw_rows c = *call->c;
        c.off = off;
        const int64_t slot = pitch + 64;
        for (int64_t b = 0; b < d[EM_CONV_I_N]; b++) {
            const int8_t* img = in + b * d[EM_CONV_I_IH] * d[EM_CONV_I_IW] * d[EM_CONV_I_IC];
            int64_t next = 0;       /* the next padded input row to stage */
            for (int64_t oy = oy0; oy < oy1; oy++) {
                const int64_t r0 = oy * SH, top = r0 % reach;
                if (next < r0) next = r0;
                while (next < r0 + reach) {     /* the rows not staged yet, in runs of consecutive slots */
                    const int64_t s = next % reach, run = r0 + reach - next < reach - s ? r0 + reach - next : reach - s;
                    em_dw_stage(p, img, next, next + run, call->wide, call->zmm, &rpt, band + s * slot, slot, tmp, rep);
                    next += run;
                }
                for (int64_t t = 0; t < padded; t++) {
                    int64_t s = top + drow[t];
                    s = s < reach ? s : s - reach;
                    off[t] = (s - top) * slot + col[t];
                }
                em_dw_out_row(call, &c, band + top * slot, out + ((b * OH + oy) * OW) * OC, OW, OC, seg, esz);
            }
        }
        return;
    }
    for (int64_t b = 0; b < d[EM_CONV_I_N]; b++) {
        const int8_t* img = in + b * d[EM_CONV_I_IH] * d[EM_CONV_I_IW] * d[EM_CONV_I_IC];
        for (int64_t y0 = oy0; y0 < oy1; y0 += B) {
            const int64_t y1 = oy1 - y0 < B ? oy1 : y0 + B;
            em_dw_stage(p, img, y0 * SH, y0 * SH + em_dw_band_in_rows(d, y1 - y0), call->wide, call->zmm, &rpt,
                        band, pitch, tmp, rep);
            for (int64_t oy = y0; oy < y1; oy++)
                em_dw_out_row(call, call->c, band + (oy - y0) * SH * pitch, out + ((b * OH + oy) * OW) * OC, OW, OC,
                              seg, esz);
        }
    }
}

static void em_dw_rows_consts(const em_params* p, em_dw_rows* c) {
    const int64_t* d = p->i;
    c->off = (const int64_t*)p->ptr[EM_DW_ROWS_P_TAP_OFFSETS];
    c->w = (const int8_t*)p->ptr[EM_CONV_P_WEIGHTS];
    c->bias = (const int32_t*)p->ptr[EM_CONV_P_BIAS];
    c->table = p->ptr[EM_DW_ROWS_P_RQ_TABLE];
    c->groups = d[EM_DW_ROWS_I_TAP_GROUPS];
    c->patterns = d[EM_DW_ROWS_I_PATTERNS];
    c->w_zp = (int32_t)d[EM_DW_ROWS_I_W_ZP];
    c->any_left = (int32_t)d[EM_DW_ROWS_I_ANY_LEFT];
    c->taps = d[EM_CONV_I_KH] * d[EM_CONV_I_KW];
    c->single_last = c->taps % 4 == 1 && c->w_zp == 0;
    c->est = d[EM_DW_ROWS_I_ESTIMATE] ? (const float*)p->ptr[EM_DW_ROWS_P_RQ_ESTIMATE] : NULL;
}

static void em_dw_run(const em_params* p, em_dw_row_fn row, const em_dw_rows* c, const void* g, int wide, int zmm) {
    const em_dw_call call = {p, row, c, g, wide, zmm};
    const int64_t threads = p->i[EM_DW_ROWS_I_THREADS];
    em_parallel_run(threads > 1 ? threads : 1, em_dw_slice, &call);
}

/* ---------------------------------------------------------------------------------------------------------------
 * AVX-512 VNNI: 64 values a step. */

/* Ones in the bytes of group tg's real taps (a weight zero point's byte sums). */
EM_VNNI_TARGET static inline __m512i em_dw_ones512(int64_t tg, int64_t taps) {
    const int64_t real = taps - 4 * tg;
    return real >= 4 ? _mm512_set1_epi8(1) : _mm512_set1_epi32((int32_t)((1u << (8 * real)) - 1) & 0x01010101);
}

/* Requantize one accumulator (bias included) of lanes [lane, lane + 16) of the pattern table. */
EM_VNNI_TARGET static inline __attribute__((always_inline)) __m512i em_dw_requant16(
        __m512i acc, const em_dw_rows* c, const em_vnni_gemm* g, int64_t lane) {
    if (g->mode == EM_ROUND_DOUBLE)
        return em_vnni_finish16(em_mbqm_lanes_x16(acc, (const em_mbqm16_lanes*)c->table + lane / 16, c->any_left), g);
    return em_vnni_finish16(em_vnni_rescale16(acc, g, lane), g);
}

/* The float estimate of 16 lanes (f, zp + d, zp - d: 16 floats each, packing_depthwise.estimate_table), not
 * clamped; near: the lanes within EM_DW_NEAR_TIE of a half-integer. */
EM_VNNI_TARGET static inline __attribute__((always_inline)) __m512i em_dw_estimate16(__m512i acc, const float* e,
                                                                                     __mmask16* near) {
    const __m512 c = _mm512_mask_blend_ps(_mm512_movepi32_mask(acc), _mm512_loadu_ps(e + 16), _mm512_loadu_ps(e + 32));
    const __m512 w = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_loadu_ps(e), c);
    const __m512 frac = _mm512_reduce_ps(w, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);   /* w - round(w) */
    *near = _mm512_cmp_ps_mask(_mm512_abs_ps(frac), _mm512_set1_ps(0.5f - EM_DW_NEAR_TIE), _CMP_GT_OQ);
    return _mm512_cvt_roundps_epi32(w, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

/* Byte selector of accumulator k's values (16 L + 4 k + i in dword 4 L + i) from one tap's run, zero-extended. */
#define EM_DW_SINGLE_SELECT(k) (char)(4 * (k)), -128, -128, -128, (char)(4 * (k) + 1), -128, -128, -128,           \
    (char)(4 * (k) + 2), -128, -128, -128, (char)(4 * (k) + 3), -128, -128, -128
EM_VNNI_TARGET static inline __m512i em_dw_single512(int k) {
    return _mm512_broadcast_i32x4(_mm_setr_epi8(EM_DW_SINGLE_SELECT(k)));
}

/* Four taps' 64-value runs interleaved so that accumulator k's dword 4 L + i holds value 16 L + 4 k + i. */
#define EM_DW_INTERLEAVE512(src, off)                                                                           \
    const __m512i t0 = _mm512_loadu_si512((src) + (off)[0]), t1 = _mm512_loadu_si512((src) + (off)[1]);        \
    const __m512i t2 = _mm512_loadu_si512((src) + (off)[2]), t3 = _mm512_loadu_si512((src) + (off)[3]);        \
    const __m512i lo01 = _mm512_unpacklo_epi8(t0, t1), hi01 = _mm512_unpackhi_epi8(t0, t1);                    \
    const __m512i lo23 = _mm512_unpacklo_epi8(t2, t3), hi23 = _mm512_unpackhi_epi8(t2, t3);                    \
    const __m512i v0 = _mm512_unpacklo_epi16(lo01, lo23), v1 = _mm512_unpackhi_epi16(lo01, lo23);              \
    const __m512i v2 = _mm512_unpacklo_epi16(hi01, hi23), v3 = _mm512_unpackhi_epi16(hi01, hi23);

EM_VNNI_TARGET static void em_dw_row_vnni(const uint8_t* row, int8_t* out, int64_t n, const em_dw_rows* c,
                                          const void* gp) {
    const em_vnni_gemm* g = (const em_vnni_gemm*)gp;
    const int64_t groups = c->groups;
    /* pattern by pattern, so that each pattern's weights and constants serve all its vectors in a row */
    for (int64_t pat = 0; pat < c->patterns && pat * 64 < n; pat++)
    for (int64_t q = pat * 64; q < n; q += c->patterns * 64) {
        const uint8_t* src = row + q;
        const int8_t* w = c->w + pat * groups * 256;
        const int32_t* bias = c->bias + pat * 64;
        __m512i a0 = _mm512_loadu_si512(bias), a1 = _mm512_loadu_si512(bias + 16);
        __m512i a2 = _mm512_loadu_si512(bias + 32), a3 = _mm512_loadu_si512(bias + 48);
        const int64_t* off = c->off;
        if (!c->w_zp) {
            const int64_t full = c->single_last ? groups - 1 : groups;
            for (int64_t tg = 0; tg < full; tg++, off += 4, w += 256) {
                EM_DW_INTERLEAVE512(src, off)
                a0 = _mm512_dpbusd_epi32(a0, v0, _mm512_loadu_si512(w));
                a1 = _mm512_dpbusd_epi32(a1, v1, _mm512_loadu_si512(w + 64));
                a2 = _mm512_dpbusd_epi32(a2, v2, _mm512_loadu_si512(w + 128));
                a3 = _mm512_dpbusd_epi32(a3, v3, _mm512_loadu_si512(w + 192));
            }
            if (full < groups) {     /* a last group of one tap: its bytes zero-extended, not interleaved */
                const __m512i t0 = _mm512_loadu_si512(src + off[0]);
                a0 = _mm512_dpbusd_epi32(a0, _mm512_shuffle_epi8(t0, em_dw_single512(0)), _mm512_loadu_si512(w));
                a1 = _mm512_dpbusd_epi32(a1, _mm512_shuffle_epi8(t0, em_dw_single512(1)), _mm512_loadu_si512(w + 64));
                a2 = _mm512_dpbusd_epi32(a2, _mm512_shuffle_epi8(t0, em_dw_single512(2)), _mm512_loadu_si512(w + 128));
                a3 = _mm512_dpbusd_epi32(a3, _mm512_shuffle_epi8(t0, em_dw_single512(3)), _mm512_loadu_si512(w + 192));
            }
        } else {     /* weights with a zero point: each lane also sums its taps' bytes, times -w_zp */
            __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
            for (int64_t tg = 0; tg < groups; tg++, off += 4, w += 256) {
                EM_DW_INTERLEAVE512(src, off)
                const __m512i ones = em_dw_ones512(tg, c->taps);
                a0 = _mm512_dpbusd_epi32(a0, v0, _mm512_loadu_si512(w));
                a1 = _mm512_dpbusd_epi32(a1, v1, _mm512_loadu_si512(w + 64));
                a2 = _mm512_dpbusd_epi32(a2, v2, _mm512_loadu_si512(w + 128));
                a3 = _mm512_dpbusd_epi32(a3, v3, _mm512_loadu_si512(w + 192));
                s0 = _mm512_dpbusd_epi32(s0, v0, ones);
                s1 = _mm512_dpbusd_epi32(s1, v1, ones);
                s2 = _mm512_dpbusd_epi32(s2, v2, ones);
                s3 = _mm512_dpbusd_epi32(s3, v3, ones);
            }
            const __m512i neg_zp = _mm512_set1_epi32(-c->w_zp);
            a0 = _mm512_add_epi32(a0, _mm512_mullo_epi32(s0, neg_zp));
            a1 = _mm512_add_epi32(a1, _mm512_mullo_epi32(s1, neg_zp));
            a2 = _mm512_add_epi32(a2, _mm512_mullo_epi32(s2, neg_zp));
            a3 = _mm512_add_epi32(a3, _mm512_mullo_epi32(s3, neg_zp));
        }
        const int64_t lane = pat * 64;
        __m512i bytes;
        if (c->est) {      /* the float estimate; an accumulator with a lane near a tie: the exact arithmetic */
            const float* e = c->est + lane * 3;
            __mmask16 n0, n1, n2, n3;
            __m512i r0 = em_dw_estimate16(a0, e, &n0), r1 = em_dw_estimate16(a1, e + 48, &n1);
            __m512i r2 = em_dw_estimate16(a2, e + 96, &n2), r3 = em_dw_estimate16(a3, e + 144, &n3);
            if (__builtin_expect(n0 | n1 | n2 | n3, 0)) {
                if (n0) r0 = em_dw_requant16(a0, c, g, lane);
                if (n1) r1 = em_dw_requant16(a1, c, g, lane + 16);
                if (n2) r2 = em_dw_requant16(a2, c, g, lane + 32);
                if (n3) r3 = em_dw_requant16(a3, c, g, lane + 48);
            }
            bytes = _mm512_packs_epi16(_mm512_packs_epi32(r0, r1), _mm512_packs_epi32(r2, r3));
            bytes = _mm512_min_epi8(_mm512_max_epi8(bytes, _mm512_set1_epi8((char)g->act_min)),
                                    _mm512_set1_epi8((char)g->act_max));
        } else {
            a0 = em_dw_requant16(a0, c, g, lane);
            a1 = em_dw_requant16(a1, c, g, lane + 16);
            a2 = em_dw_requant16(a2, c, g, lane + 32);
            a3 = em_dw_requant16(a3, c, g, lane + 48);
            bytes = _mm512_packs_epi16(_mm512_packs_epi32(a0, a1), _mm512_packs_epi32(a2, a3));
        }
        if (n - q >= 64) _mm512_storeu_si512(out + q, bytes);
        else _mm512_mask_storeu_epi8(out + q, ((__mmask64)-1) >> (64 - (n - q)), bytes);
    }
}

/* The per-lane requantization arrays of the layout, for modes other than double rounding. */
static inline em_vnni_gemm em_dw_vnni_gemm(const em_params* p) {
    const int64_t* d = p->i;
    em_vnni_gemm g = {NULL, (const int32_t*)p->ptr[EM_CONV_P_BIAS], (const int32_t*)p->ptr[EM_CONV_P_MULT],
                      (const int32_t*)p->ptr[EM_CONV_P_SHIFT], (const double*)p->ptr[EM_CONV_P_DOUBLE_SCALES],
                      (const float*)p->ptr[EM_CONV_P_FLOAT_SCALES], 0, 0, (int32_t)d[EM_CONV_I_OUT_ZP],
                      (int32_t)d[EM_CONV_I_ACT_MIN], (int32_t)d[EM_CONV_I_ACT_MAX], (int32_t)d[EM_CONV_I_MODE], NULL};
    return g;
}

static void em_depthwise_int8_vnni(const em_params* p) {
    em_dw_rows c;
    em_dw_rows_consts(p, &c);
    if (_MM_GET_ROUNDING_MODE() != _MM_ROUND_NEAREST) c.est = NULL;      /* the estimate's bound assumes it */
    const em_vnni_gemm g = em_dw_vnni_gemm(p);
    em_dw_run(p, em_dw_row_vnni, &c, &g, 0, 1);
}

/* ---------------------------------------------------------------------------------------------------------------
 * 256-bit forms: requantization of 8 lanes from the table (double rounding) or the lane arrays. */
static inline em_avx2_gemm em_dw_avx2_gemm(const em_params* p) { return em_conv_avx2_gemm(p, NULL, 0, 0); }

EM_AVX2_TARGET static inline __m256i em_dw_requant8(__m256i acc, const em_dw_rows* c, const em_avx2_gemm* g,
                                                    int64_t lane) {
    if (g->mode == EM_ROUND_DOUBLE)
        return em_avx2_finish8(em_mbqm_lanes_x8(acc, (const em_mbqm8_lanes*)c->table + lane / 8, c->any_left), g);
    return em_avx2_finish8(em_avx2_rescale8(acc, g, lane), g);
}

/* The float estimate of 8 lanes (f, zp + d, zp - d: 8 floats each), not clamped, rounded by the MXCSR (the kernels
 * take the estimate only when it rounds to nearest); dist: |w - round(w)|, whose float bits order as int32 (all
 * >= 0).  em_dw_estimate8 multiplies then adds (one more rounding than em_dw_estimate16's FMA, inside the bound);
 * em_dw_estimate8_fma, for CPUs with FMA3, fuses them as em_dw_estimate16 does (one instruction less). */
#define EM_DW_ESTIMATE8_BODY(W)                                                                                \
    const __m256 c = _mm256_blendv_ps(_mm256_loadu_ps(e + 8), _mm256_loadu_ps(e + 16), _mm256_castsi256_ps(acc)); \
    const __m256 w = W;                                                                                         \
    const __m256i r = _mm256_cvtps_epi32(w);                                                                    \
    *dist = _mm256_castps_si256(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(w, _mm256_cvtepi32_ps(r)))); \
    return r;

EM_AVX2_TARGET static inline __attribute__((always_inline)) __m256i em_dw_estimate8(__m256i acc, const float* e,
                                                                                    __m256i* dist) {
    EM_DW_ESTIMATE8_BODY(_mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(acc), _mm256_loadu_ps(e)), c))
}

#define EM_AVX2_FMA_TARGET __attribute__((target("avx2,fma")))
EM_AVX2_FMA_TARGET static inline __attribute__((always_inline)) __m256i em_dw_estimate8_fma(
        __m256i acc, const float* e, __m256i* dist) {
    EM_DW_ESTIMATE8_BODY(_mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), _mm256_loadu_ps(e), c))
}

/* 1 when the CPU has FMA3 (the AVX2 depthwise kernel's em_dw_row_avx2_fma). */
static inline int em_dw_cpu_has_fma(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("fma") ? 1 : 0;
}

/* The output clamp of the float estimate's packed bytes, broadcast once per row. */
typedef struct { __m256i act_min, act_max; } em_dw_clamp8;

EM_AVX2_TARGET static inline em_dw_clamp8 em_dw_clamp8_of(const em_avx2_gemm* g) {
    const em_dw_clamp8 k = {_mm256_set1_epi8((char)g->act_min), _mm256_set1_epi8((char)g->act_max)};
    return k;
}

/* The four accumulators of a 256-bit step: lanes [lane, lane + 8), [lane + 8, lane + 16) ... of the pattern. */
typedef struct { __m256i a0, a1, a2, a3; } em_dw_acc32;

/* The float estimate of a step's four accumulators packed to bytes (a0 a1 a2 a3 per 128-bit half), clamped;
 * *near: nonzero when a lane lies within EM_DW_NEAR_TIE of a half-integer (one compare of the largest distance;
 * the caller then redoes the step by the exact arithmetic). */
#define EM_DW_ESTIMATE32_BODY(EST8)                                                                           \
    __m256i d0, d1, d2, d3;                                                                                     \
    const __m256i v0 = EST8(a.a0, e, &d0), v1 = EST8(a.a1, e + 24, &d1);                                        \
    const __m256i p01 = _mm256_packs_epi32(v0, v1), m01 = _mm256_max_epi32(d0, d1);                             \
    const __m256i v2 = EST8(a.a2, e + 48, &d2), v3 = EST8(a.a3, e + 72, &d3);                                   \
    const __m256i p23 = _mm256_packs_epi32(v2, v3), m23 = _mm256_max_epi32(d2, d3);                             \
    const __m256i tie = _mm256_castps_si256(_mm256_set1_ps(0.5f - EM_DW_NEAR_TIE));                             \
    *near = _mm256_movemask_epi8(_mm256_cmpgt_epi32(_mm256_max_epi32(m01, m23), tie));                          \
    return _mm256_min_epi8(_mm256_max_epi8(_mm256_packs_epi16(p01, p23), clamp.act_min), clamp.act_max);

EM_AVX2_TARGET static inline __attribute__((always_inline)) __m256i em_dw_estimate32(
        em_dw_acc32 a, const float* e, em_dw_clamp8 clamp, int* near) {
    EM_DW_ESTIMATE32_BODY(em_dw_estimate8)
}

EM_AVX2_FMA_TARGET static inline __attribute__((always_inline)) __m256i em_dw_estimate32_fma(
        em_dw_acc32 a, const float* e, em_dw_clamp8 clamp, int* near) {
    EM_DW_ESTIMATE32_BODY(em_dw_estimate8_fma)
}

/* A step's accumulators requantized by the exact arithmetic, packed to bytes as em_dw_estimate32 packs them. */
EM_AVX2_TARGET static inline __m256i em_dw_exact32(em_dw_acc32 a, const em_dw_rows* c, const em_avx2_gemm* g,
                                                   int64_t lane) {
    const __m256i p01 = _mm256_packs_epi32(em_dw_requant8(a.a0, c, g, lane), em_dw_requant8(a.a1, c, g, lane + 8));
    const __m256i p23 = _mm256_packs_epi32(em_dw_requant8(a.a2, c, g, lane + 16),
                                           em_dw_requant8(a.a3, c, g, lane + 24));
    return _mm256_packs_epi16(p01, p23);
}

/* Store the first n (<= 32) bytes of v. */
EM_AVX2_TARGET static inline void em_dw_store32(int8_t* out, __m256i v, int64_t n) {
    if (n >= 32) { _mm256_storeu_si256((__m256i*)out, v); return; }
    int8_t tmp[32];
    _mm256_storeu_si256((__m256i*)tmp, v);
    memcpy(out, tmp, (size_t)n);
}

/* AVX-VNNI: the AVX-512 step on 256-bit registers (VEX-encoded vpdpbusd; EM_AVXVNNI_TARGET: em_gemm_avxvnni.h). */
#if EM_HAVE_AVXVNNI

/* The four accumulators of one 32-value step at src (em_dw_acc32) from the bias. */
EM_AVXVNNI_TARGET static inline __attribute__((always_inline)) em_dw_acc32 em_dw_avxvnni_step(
        const uint8_t* src, const int64_t* off, const int8_t* w, const int32_t* bias, const em_dw_rows* c) {
    __m256i acc[4], sums[4];
    for (int k = 0; k < 4; k++) {
        acc[k] = _mm256_loadu_si256((const __m256i*)(bias + 8 * k));
        sums[k] = _mm256_setzero_si256();
    }
    const int64_t full = c->single_last ? c->groups - 1 : c->groups;
    for (int64_t tg = 0; tg < full; tg++, off += 4, w += 128) {
        const __m256i t0 = _mm256_loadu_si256((const __m256i*)(src + off[0]));
        const __m256i t1 = _mm256_loadu_si256((const __m256i*)(src + off[1]));
        const __m256i t2 = _mm256_loadu_si256((const __m256i*)(src + off[2]));
        const __m256i t3 = _mm256_loadu_si256((const __m256i*)(src + off[3]));
        const __m256i lo01 = _mm256_unpacklo_epi8(t0, t1), hi01 = _mm256_unpackhi_epi8(t0, t1);
        const __m256i lo23 = _mm256_unpacklo_epi8(t2, t3), hi23 = _mm256_unpackhi_epi8(t2, t3);
        const __m256i v0 = _mm256_unpacklo_epi16(lo01, lo23), v1 = _mm256_unpackhi_epi16(lo01, lo23);
        const __m256i v2 = _mm256_unpacklo_epi16(hi01, hi23), v3 = _mm256_unpackhi_epi16(hi01, hi23);
        acc[0] = _mm256_dpbusd_avx_epi32(acc[0], v0, _mm256_loadu_si256((const __m256i*)w));
        acc[1] = _mm256_dpbusd_avx_epi32(acc[1], v1, _mm256_loadu_si256((const __m256i*)(w + 32)));
        acc[2] = _mm256_dpbusd_avx_epi32(acc[2], v2, _mm256_loadu_si256((const __m256i*)(w + 64)));
        acc[3] = _mm256_dpbusd_avx_epi32(acc[3], v3, _mm256_loadu_si256((const __m256i*)(w + 96)));
        if (c->w_zp) {
            const int64_t real = c->taps - 4 * tg;
            const __m256i ones = real >= 4 ? _mm256_set1_epi8(1)
                                           : _mm256_set1_epi32((int32_t)((1u << (8 * real)) - 1) & 0x01010101);
            sums[0] = _mm256_dpbusd_avx_epi32(sums[0], v0, ones);
            sums[1] = _mm256_dpbusd_avx_epi32(sums[1], v1, ones);
            sums[2] = _mm256_dpbusd_avx_epi32(sums[2], v2, ones);
            sums[3] = _mm256_dpbusd_avx_epi32(sums[3], v3, ones);
        }
    }
    if (full < c->groups) {     /* a last group of one tap: its bytes zero-extended, not interleaved */
        const __m256i t0 = _mm256_loadu_si256((const __m256i*)(src + off[0]));
        for (int k = 0; k < 4; k++)
            acc[k] = _mm256_dpbusd_avx_epi32(acc[k], _mm256_shuffle_epi8(t0, _mm256_broadcastsi128_si256(
                                                 _mm_setr_epi8(EM_DW_SINGLE_SELECT(k)))),
                                             _mm256_loadu_si256((const __m256i*)(w + 32 * k)));
    }
    if (c->w_zp) {
        const __m256i neg_zp = _mm256_set1_epi32(-c->w_zp);
        for (int k = 0; k < 4; k++) acc[k] = _mm256_add_epi32(acc[k], _mm256_mullo_epi32(sums[k], neg_zp));
    }
    const em_dw_acc32 a = {acc[0], acc[1], acc[2], acc[3]};
    return a;
}

/* em_dw_avx2_step_exact for the AVX-VNNI step. */
EM_AVXVNNI_TARGET static __attribute__((noinline)) __m256i em_dw_avxvnni_step_exact(
        const uint8_t* src, const int64_t* off, const int8_t* w, const int32_t* bias, const em_dw_rows* c,
        const em_avx2_gemm* g, int64_t lane) {
    return em_dw_exact32(em_dw_avxvnni_step(src, off, w, bias, c), c, g, lane);
}

EM_AVXVNNI_TARGET static void em_dw_row_avxvnni(const uint8_t* row, int8_t* out, int64_t n, const em_dw_rows* c,
                                                const void* gp) {
    const em_avx2_gemm* g = (const em_avx2_gemm*)gp;
    /* the constants in locals: the int8 stores through out could alias *c and *g for the compiler */
    const int64_t patterns = c->patterns, groups = c->groups;
    const float* const est = c->est;
    const em_dw_clamp8 clamp = em_dw_clamp8_of(g);
    /* pattern by pattern, so that each pattern's weights and constants serve all its vectors in a row */
    for (int64_t pat = 0; pat < patterns && pat * 32 < n; pat++)
    for (int64_t q = pat * 32; q < n; q += patterns * 32) {
        const uint8_t* src = row + q;
        const int8_t* w = c->w + pat * groups * 128;
        const int32_t* bias = c->bias + pat * 32;
        const em_dw_acc32 a = em_dw_avxvnni_step(src, c->off, w, bias, c);
        __m256i bytes;
        if (est) {
            int near;
            bytes = em_dw_estimate32(a, est + pat * 96, clamp, &near);
            if (__builtin_expect(near != 0, 0)) bytes = em_dw_avxvnni_step_exact(src, c->off, w, bias, c, g, pat * 32);
        } else {
            bytes = em_dw_exact32(a, c, g, pat * 32);
        }
        em_dw_store32(out + q, bytes, n - q);
    }
}

static void em_depthwise_int8_avxvnni(const em_params* p) {
    em_dw_rows c;
    em_dw_rows_consts(p, &c);
    if (_MM_GET_ROUNDING_MODE() != _MM_ROUND_NEAREST) c.est = NULL;      /* em_dw_estimate8 rounds by the MXCSR */
    const em_avx2_gemm g = em_dw_avx2_gemm(p);
    em_dw_run(p, em_dw_row_avxvnni, &c, &g, 0, 0);
}
#else
static void em_depthwise_int8_avxvnni(const em_params* p) { (void)p; }   /* never selected (em_isa.h) */
#endif

/* AVX2: int16 staged values (x - in_zp, padding 0) and int16 weights (w - w_zp), two taps per vpmaddwd; 32
 * values a step as two 16-value halves.  Bytes of the staged row are 2 per value: n counts values. */

/* One group of two taps of a 32-value step at src: accumulators A0..A3 += the taps' interleaved int16 halves times
 * the group's weights W0..W3. */
#define EM_DW_AVX2_GROUP(src, off, W0, W1, W2, W3, A0, A1, A2, A3)                                               \
    {                                                                                                          \
        const __m256i a_ = _mm256_loadu_si256((const __m256i*)((src) + (off)[0]));                            \
        const __m256i b_ = _mm256_loadu_si256((const __m256i*)((src) + (off)[1]));                            \
        A0 = _mm256_add_epi32(A0, _mm256_madd_epi16(_mm256_unpacklo_epi16(a_, b_), W0));                       \
        A1 = _mm256_add_epi32(A1, _mm256_madd_epi16(_mm256_unpackhi_epi16(a_, b_), W1));                       \
        const __m256i c_ = _mm256_loadu_si256((const __m256i*)((src) + (off)[0] + 32));                       \
        const __m256i d_ = _mm256_loadu_si256((const __m256i*)((src) + (off)[1] + 32));                       \
        A2 = _mm256_add_epi32(A2, _mm256_madd_epi16(_mm256_unpacklo_epi16(c_, d_), W2));                       \
        A3 = _mm256_add_epi32(A3, _mm256_madd_epi16(_mm256_unpackhi_epi16(c_, d_), W3));                       \
    }

/* EM_DW_AVX2_GROUP for a group whose second tap is padding (weights 0): the first tap's vectors paired with
 * themselves (no second load). */
#define EM_DW_AVX2_SINGLE(src, off, W0, W1, W2, W3, A0, A1, A2, A3)                                              \
    {                                                                                                          \
        const __m256i a_ = _mm256_loadu_si256((const __m256i*)((src) + (off)[0]));                            \
        A0 = _mm256_add_epi32(A0, _mm256_madd_epi16(_mm256_unpacklo_epi16(a_, a_), W0));                       \
        A1 = _mm256_add_epi32(A1, _mm256_madd_epi16(_mm256_unpackhi_epi16(a_, a_), W1));                       \
        const __m256i c_ = _mm256_loadu_si256((const __m256i*)((src) + (off)[0] + 32));                       \
        A2 = _mm256_add_epi32(A2, _mm256_madd_epi16(_mm256_unpacklo_epi16(c_, c_), W2));                       \
        A3 = _mm256_add_epi32(A3, _mm256_madd_epi16(_mm256_unpackhi_epi16(c_, c_), W3));                       \
    }

/* Tap groups holding two real taps: every group, or all but the last for an odd tap count (its pair is padding). */
static inline int64_t em_dw_pair_groups(int64_t taps, int64_t groups) {
    return taps < 2 * groups ? groups - 1 : groups;
}

/* The four accumulators of one 32-value step at src from the bias. */
EM_AVX2_TARGET static inline __attribute__((always_inline)) em_dw_acc32 em_dw_avx2_step(
        const uint8_t* src, const int64_t* off, const int16_t* w, int64_t groups, int64_t taps, const int32_t* bias) {
    __m256i x0 = _mm256_loadu_si256((const __m256i*)bias), x1 = _mm256_loadu_si256((const __m256i*)(bias + 8));
    __m256i x2 = _mm256_loadu_si256((const __m256i*)(bias + 16)), x3 = _mm256_loadu_si256((const __m256i*)(bias + 24));
    const int64_t full = em_dw_pair_groups(taps, groups);
    for (int64_t tg = 0; tg < full; tg++, off += 2, w += 64)
        EM_DW_AVX2_GROUP(src, off, _mm256_loadu_si256((const __m256i*)w),
                         _mm256_loadu_si256((const __m256i*)(w + 16)), _mm256_loadu_si256((const __m256i*)(w + 32)),
                         _mm256_loadu_si256((const __m256i*)(w + 48)), x0, x1, x2, x3)
    if (full < groups)
        EM_DW_AVX2_SINGLE(src, off, _mm256_loadu_si256((const __m256i*)w),
                          _mm256_loadu_si256((const __m256i*)(w + 16)), _mm256_loadu_si256((const __m256i*)(w + 32)),
                          _mm256_loadu_si256((const __m256i*)(w + 48)), x0, x1, x2, x3)
    const em_dw_acc32 a = {x0, x1, x2, x3};
    return a;
}

/* A step with a lane near a tie of the float estimate: its sums again, requantized by the exact arithmetic (rare:
 * out of line, so that the common path holds no accumulator past its estimate). */
EM_AVX2_TARGET static __attribute__((noinline)) __m256i em_dw_avx2_step_exact(
        const uint8_t* src, const int64_t* off, const int16_t* w, int64_t groups, const int32_t* bias,
        const em_dw_rows* c, const em_avx2_gemm* g, int64_t lane) {
    return em_dw_exact32(em_dw_avx2_step(src, off, w, groups, c->taps, bias), c, g, lane);
}

/* Requantize and store the step at src (n - q = left values from q on), by the float estimate EST32. */
#define EM_DW_AVX2_FINISH_BODY(EST32)                                                                                \
    __m256i bytes;                                                                                                   \
    if (est) {                                                                                                       \
        int near;                                                                                                    \
        bytes = EST32(a, est + pat * 96, clamp, &near);                                                              \
        if (__builtin_expect(near != 0, 0)) bytes = em_dw_avx2_step_exact(src, off, w, groups, bias, c, g, pat * 32); \
    } else {                                                                                                         \
        bytes = em_dw_exact32(a, c, g, pat * 32);                                                                    \
    }                                                                                                                \
    /* int16 halves [0-7 | 8-15] and [16-23 | 24-31]; the byte pack interleaves them by lane: qwords 0 2 1 3 */      \
    em_dw_store32(out, _mm256_permute4x64_epi64(bytes, 0xD8), left);

EM_AVX2_TARGET static inline __attribute__((always_inline)) void em_dw_avx2_finish(
        em_dw_acc32 a, const float* est, const em_dw_rows* c, const em_avx2_gemm* g, em_dw_clamp8 clamp,
        const uint8_t* src, const int64_t* off, const int16_t* w, int64_t groups, const int32_t* bias, int64_t pat,
        int8_t* out, int64_t left) {
    EM_DW_AVX2_FINISH_BODY(em_dw_estimate32)
}

EM_AVX2_FMA_TARGET static inline __attribute__((always_inline)) void em_dw_avx2_finish_fma(
        em_dw_acc32 a, const float* est, const em_dw_rows* c, const em_avx2_gemm* g, em_dw_clamp8 clamp,
        const uint8_t* src, const int64_t* off, const int16_t* w, int64_t groups, const int32_t* bias, int64_t pat,
        int8_t* out, int64_t left) {
    EM_DW_AVX2_FINISH_BODY(em_dw_estimate32_fma)
}

/* One output row (n values), each step finished by FINISH. */
#define EM_DW_ROW_AVX2_BODY(FINISH)                                                                                  \
    const em_avx2_gemm* g = (const em_avx2_gemm*)gp;                                                                 \
    /* the constants in locals: the int8 stores through out could alias *c and *g for the compiler */                \
    const int64_t patterns = c->patterns, groups = c->groups, period = patterns * 32;                                \
    const int64_t full = em_dw_pair_groups(c->taps, groups);                                                         \
    const int64_t* const offsets = c->off;                                                                           \
    const float* const est = c->est;                                                                                 \
    const em_dw_clamp8 clamp = em_dw_clamp8_of(g);                                                                   \
    /* pattern by pattern, so that each pattern's weights and constants serve all its vectors in a row */            \
    for (int64_t pat = 0; pat < patterns && pat * 32 < n; pat++) {                                                   \
        const int16_t* wp = (const int16_t*)c->w + pat * groups * 64;                                                \
        const int32_t* bias = c->bias + pat * 32;                                                                    \
        int64_t q = pat * 32;                                                                                        \
        for (; q + period < n; q += 2 * period) {      /* two vectors of the pattern: each weight load serves both */ \
            const uint8_t* s0 = row + q * 2;                                                                         \
            const uint8_t* s1 = row + (q + period) * 2;                                                              \
            __m256i x0 = _mm256_loadu_si256((const __m256i*)bias);                                                   \
            __m256i x1 = _mm256_loadu_si256((const __m256i*)(bias + 8));                                             \
            __m256i x2 = _mm256_loadu_si256((const __m256i*)(bias + 16));                                            \
            __m256i x3 = _mm256_loadu_si256((const __m256i*)(bias + 24));                                            \
            __m256i y0 = x0, y1 = x1, y2 = x2, y3 = x3;                                                              \
            const int16_t* w = wp;                                                                                   \
            const int64_t* off = offsets;                                                                            \
            for (int64_t tg = 0; tg < full; tg++, off += 2, w += 64) {                                               \
                const __m256i w0 = _mm256_loadu_si256((const __m256i*)w);                                            \
                const __m256i w1 = _mm256_loadu_si256((const __m256i*)(w + 16));                                     \
                const __m256i w2 = _mm256_loadu_si256((const __m256i*)(w + 32));                                     \
                const __m256i w3 = _mm256_loadu_si256((const __m256i*)(w + 48));                                     \
                EM_DW_AVX2_GROUP(s0, off, w0, w1, w2, w3, x0, x1, x2, x3)                                            \
                EM_DW_AVX2_GROUP(s1, off, w0, w1, w2, w3, y0, y1, y2, y3)                                            \
            }                                                                                                        \
            if (full < groups) {      /* a last group of one tap (its pair's weights 0): the tap's vectors alone */   \
                const __m256i w0 = _mm256_loadu_si256((const __m256i*)w);                                            \
                const __m256i w1 = _mm256_loadu_si256((const __m256i*)(w + 16));                                     \
                const __m256i w2 = _mm256_loadu_si256((const __m256i*)(w + 32));                                     \
                const __m256i w3 = _mm256_loadu_si256((const __m256i*)(w + 48));                                     \
                EM_DW_AVX2_SINGLE(s0, off, w0, w1, w2, w3, x0, x1, x2, x3)                                           \
                EM_DW_AVX2_SINGLE(s1, off, w0, w1, w2, w3, y0, y1, y2, y3)                                           \
            }                                                                                                        \
            const em_dw_acc32 ax = {x0, x1, x2, x3}, ay = {y0, y1, y2, y3};                                          \
            FINISH(ax, est, c, g, clamp, s0, offsets, wp, groups, bias, pat, out + q, n - q);                        \
            FINISH(ay, est, c, g, clamp, s1, offsets, wp, groups, bias, pat, out + q + period,                       \
                              n - q - period);                                                                       \
        }                                                                                                            \
        if (q < n) {                                                                                                 \
            const uint8_t* s0 = row + q * 2;                                                                         \
            FINISH(em_dw_avx2_step(s0, offsets, wp, groups, c->taps, bias), est, c, g, clamp, s0, offsets, wp,       \
                   groups, bias, pat, out + q, n - q);                                                               \
        }                                                                                                            \
    }

EM_AVX2_TARGET static void em_dw_row_avx2(const uint8_t* row, int8_t* out, int64_t n, const em_dw_rows* c,
                                          const void* gp) {
    EM_DW_ROW_AVX2_BODY(em_dw_avx2_finish)
}

/* em_dw_row_avx2 with em_dw_estimate8_fma (the CPU has FMA3). */
EM_AVX2_FMA_TARGET static void em_dw_row_avx2_fma(const uint8_t* row, int8_t* out, int64_t n, const em_dw_rows* c,
                                          const void* gp) {
    EM_DW_ROW_AVX2_BODY(em_dw_avx2_finish_fma)
}

static void em_depthwise_int8_avx2(const em_params* p) {
    em_dw_rows c;
    em_dw_rows_consts(p, &c);
    if (_MM_GET_ROUNDING_MODE() != _MM_ROUND_NEAREST) c.est = NULL;      /* em_dw_estimate8 rounds by the MXCSR */
    const em_avx2_gemm g = em_dw_avx2_gemm(p);
    em_dw_run(p, em_dw_cpu_has_fma() ? em_dw_row_avx2_fma : em_dw_row_avx2, &c, &g, 1, 0);
}
#else
/* never selected: the loader picks these kernels only when the CPU reports the ISA */
static void em_depthwise_int8_vnni(const em_params* p) { (void)p; }
static void em_depthwise_int8_avxvnni(const em_params* p) { (void)p; }
static void em_depthwise_int8_avx2(const em_params* p) { (void)p; }
#endif
#endif
