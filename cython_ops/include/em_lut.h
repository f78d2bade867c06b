/* One 256-entry table lookup per element, for every int8 / uint8 op whose output byte depends on the input byte
 * alone.  The tables are built at load by running the reference arithmetic on all 256 inputs, so a lookup gives
 * the same bits as the arithmetic by construction; only the lookup is vectorized here.
 *
 * Bodies, chosen at run time (em_isa.h): AVX-512 VBMI (vpermi2b over the two 128-byte halves, blended on bit 7),
 * AVX-512BW (vpshufb over the sixteen 16-byte slices, each masked to the bytes whose high nibble selects it),
 * AVX2 (the sixteen slices as two XOR chains of eight, one per half of the byte range, blended on bit 7), NEON (tbl / tbx
 * over four 64-byte quarters) and the portable scalar loop, which is the reference the others are tested against.
 * The VBMI body serves the avx512vnni path (on a CPU with VBMI), the BW body the avx512 path, so EDGEML_ISA
 * reaches every body on one machine.
 *
 * A table that is an affine map of the byte (a requantization: int8 QUANTIZE, the RELU family, ADD / SUB / MUL
 * against one constant) is computed instead on the AVX2 paths, whose lookup costs sixteen byte shuffles per 32 bytes
 * (em_lut_affine_int8_step; tables.affine_form finds the map at load and checks it on all 256 bytes).
 *
 * int8 -> float32 tables (DEQUANTIZE) are looked up with 32-bit gathers, and so are per-position tables (a constant
 * operand repeating with a period) on AVX-512 and AVX2 beyond the few periods the VBMI body serves. */
#ifndef EM_LUT_H
#define EM_LUT_H
#include <stdint.h>
#include "em_isa.h"
#include "em_params.h"

/* em_lut_int8_f32_step, layout EM_LUT_F32: ptr: input (int8 / uint8 bytes), output (float32), table (256 float32
 * indexed by the input byte); i: n */
enum { EM_LUT_F32_P_INPUT, EM_LUT_F32_P_OUTPUT, EM_LUT_F32_P_TABLE, EM_LUT_F32_P_COUNT };
enum { EM_LUT_F32_I_N, EM_LUT_F32_I_COUNT };
enum { EM_LUT_F32_F_COUNT = 0 };

/* em_lut_periodic_int8_step, layout EM_LUT_PERIODIC: ptr: input, output (int8 / uint8 bytes), table (period x 256
 * bytes, row p for the positions i with i mod period == p, then 3 bytes that the gathers may read); i: n (a
 * multiple of period), period */
enum { EM_LUT_PERIODIC_P_INPUT, EM_LUT_PERIODIC_P_OUTPUT, EM_LUT_PERIODIC_P_TABLE, EM_LUT_PERIODIC_P_COUNT };
enum { EM_LUT_PERIODIC_I_N, EM_LUT_PERIODIC_I_PERIOD, EM_LUT_PERIODIC_I_COUNT };
enum { EM_LUT_PERIODIC_F_COUNT = 0 };
#define EM_LUT_PERIODIC_VBMI_MAX 4      /* the VBMI body does one table pass per phase: beyond this the gathers win */

/* em_lut_affine_int8_step, layout EM_LUT_AFFINE: a table that is an affine map of the signed input byte x,
 * y = clamp((x * mult + add) >> shift, lo, hi) with add = add_high where x >= split, else add_low (tables.affine_form
 * finds them at load and checks all 256 bytes); ptr: input, output; i: n, mult (|mult| < 2^15), add_low, add_high,
 * split, shift, lo, hi */
enum { EM_LUT_AFFINE_P_INPUT, EM_LUT_AFFINE_P_OUTPUT, EM_LUT_AFFINE_P_COUNT };
enum { EM_LUT_AFFINE_I_N, EM_LUT_AFFINE_I_MULT, EM_LUT_AFFINE_I_ADD_LOW, EM_LUT_AFFINE_I_ADD_HIGH,
       EM_LUT_AFFINE_I_SPLIT, EM_LUT_AFFINE_I_SHIFT, EM_LUT_AFFINE_I_LO, EM_LUT_AFFINE_I_HI, EM_LUT_AFFINE_I_COUNT };
enum { EM_LUT_AFFINE_F_COUNT = 0 };

static inline void em_lut_u8_scalar(const uint8_t* x, uint8_t* y, int64_t n, const uint8_t* table) {
    for (int64_t i = 0; i < n; i++) y[i] = table[x[i]];
}

static inline void em_lut_periodic_scalar(const uint8_t* x, uint8_t* y, int64_t n, int64_t period,
                                          const uint8_t* table) {
    if (period == 3) {                   /* per-channel RGB normalization: the common case, unrolled */
        const uint8_t *t0 = table, *t1 = table + 256, *t2 = table + 512;
        for (int64_t i = 0; i + 3 <= n; i += 3) {
            y[i] = t0[x[i]];
            y[i + 1] = t1[x[i + 1]];
            y[i + 2] = t2[x[i + 2]];
        }
        return;
    }
    for (int64_t i = 0; i < n; i += period)
        for (int64_t p = 0; p < period; p++) y[i + p] = table[256 * p + x[i + p]];
}

typedef struct { int32_t mult, add_low, add_high, split, shift, lo, hi; } em_lut_affine;

static inline void em_lut_affine_scalar(const int8_t* x, int8_t* y, int64_t n, const em_lut_affine* a) {
    const int32_t lo = a->lo, hi = a->hi;
    for (int64_t i = 0; i < n; i++) {
        /* in int32 range for every byte (checked at load) */
        const int32_t v = (x[i] * a->mult + (x[i] >= a->split ? a->add_high : a->add_low)) >> a->shift;
        y[i] = (int8_t)(v < lo ? lo : (v > hi ? hi : v));
    }
}

static inline void em_lut_f32_scalar(const uint8_t* x, float* y, int64_t n, const float* table) {
    for (int64_t i = 0; i < n; i++) y[i] = table[x[i]];
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define EM_LUT_VBMI_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi")))
#define EM_LUT_BW_TARGET __attribute__((target("avx512f,avx512bw,avx512vl")))
#define EM_LUT_AVX2_TARGET __attribute__((target("avx2")))

static int em_lut_vbmi_cached = -1;
static inline int em_lut_has_vbmi(void) {
    if (em_lut_vbmi_cached < 0) {
        __builtin_cpu_init();
        em_lut_vbmi_cached = __builtin_cpu_supports("avx512vbmi") ? 1 : 0;
    }
    return em_lut_vbmi_cached;
}

EM_LUT_VBMI_TARGET static void em_lut_u8_vbmi(const uint8_t* x, uint8_t* y, int64_t n, const uint8_t* table) {
    const __m512i t0 = _mm512_loadu_si512(table), t1 = _mm512_loadu_si512(table + 64);
    const __m512i t2 = _mm512_loadu_si512(table + 128), t3 = _mm512_loadu_si512(table + 192);
    int64_t i = 0;
    for (; i + 128 <= n; i += 128) {          /* two independent vectors per iteration */
        const __m512i a = _mm512_loadu_si512(x + i), b = _mm512_loadu_si512(x + i + 64);
        const __m512i la = _mm512_permutex2var_epi8(t0, a, t1), ha = _mm512_permutex2var_epi8(t2, a, t3);
        const __m512i lb = _mm512_permutex2var_epi8(t0, b, t1), hb = _mm512_permutex2var_epi8(t2, b, t3);
        _mm512_storeu_si512(y + i, _mm512_mask_blend_epi8(_mm512_movepi8_mask(a), la, ha));
        _mm512_storeu_si512(y + i + 64, _mm512_mask_blend_epi8(_mm512_movepi8_mask(b), lb, hb));
    }
    for (; i < n; i += 64) {
        const __mmask64 m = n - i >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << (n - i)) - 1);
        const __m512i a = _mm512_maskz_loadu_epi8(m, x + i);
        const __m512i la = _mm512_permutex2var_epi8(t0, a, t1), ha = _mm512_permutex2var_epi8(t2, a, t3);
        _mm512_mask_storeu_epi8(y + i, m, _mm512_mask_blend_epi8(_mm512_movepi8_mask(a), la, ha));
    }
}

/* Each phase's table looked up for all 64 lanes (two vpermi2b, blended on bit 7), kept on the lanes of that phase:
 * lane j of a vector starting at position i has phase (i + j) mod period, so phase p's lanes are every period-th
 * bit from (p - i) mod period. */
EM_LUT_VBMI_TARGET static void em_lut_periodic_vbmi(const uint8_t* x, uint8_t* y, int64_t n, int64_t period,
                                                    const uint8_t* table) {
    __mmask64 every = 0;                 /* bits 0, period, 2 period, ... */
    for (int j = 0; j < 64; j += (int)period) every |= (__mmask64)1 << j;
    int shift[EM_LUT_PERIODIC_VBMI_MAX];  /* phase p's first lane in the current vector: (p - i) mod period */
    for (int p = 0; p < period; p++) shift[p] = p;
    const int advance = (int)(64 % period);
    for (int64_t i = 0; i < n; i += 64) {
        const __mmask64 m = n - i >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << (n - i)) - 1);
        const __m512i a = _mm512_maskz_loadu_epi8(m, x + i);
        const __mmask64 high = _mm512_movepi8_mask(a);
        __m512i r = _mm512_setzero_si512();
        for (int p = 0; p < period; p++) {
            const uint8_t* t = table + 256 * p;
            const __mmask64 lanes = every << shift[p];
            const __m512i lo = _mm512_permutex2var_epi8(_mm512_loadu_si512(t), a, _mm512_loadu_si512(t + 64));
            const __m512i hi = _mm512_permutex2var_epi8(_mm512_loadu_si512(t + 128), a, _mm512_loadu_si512(t + 192));
            r = _mm512_mask_mov_epi8(r, lanes & ~high, lo);
            r = _mm512_mask_mov_epi8(r, lanes & high, hi);
            shift[p] -= advance;         /* the next vector starts 64 positions on (no division in the loop) */
            if (shift[p] < 0) shift[p] += (int)period;
        }
        _mm512_mask_storeu_epi8(y + i, m, r);
    }
}

EM_LUT_BW_TARGET static void em_lut_u8_avx512bw(const uint8_t* x, uint8_t* y, int64_t n, const uint8_t* table) {
    __m512i slice[16];
    for (int j = 0; j < 16; j++) slice[j] = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i*)(table + 16 * j)));
    const __m512i nibble = _mm512_set1_epi8(0x0F);
    for (int64_t i = 0; i < n; i += 64) {
        const __mmask64 m = n - i >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << (n - i)) - 1);
        const __m512i a = _mm512_maskz_loadu_epi8(m, x + i);
        const __m512i lo = _mm512_and_si512(a, nibble);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(a, 4), nibble);
        __m512i r = _mm512_setzero_si512();
        for (int j = 0; j < 16; j++)
            r = _mm512_mask_shuffle_epi8(r, _mm512_cmpeq_epi8_mask(hi, _mm512_set1_epi8((char)j)), slice[j], lo);
        _mm512_mask_storeu_epi8(y + i, m, r);
    }
}

/* 32 lookups from chain[j] = slice j XOR slice j - 1 (chain[0], chain[8]: the slices themselves).  Step k of the low
 * chain indexes with x - 16 k, whose bit 7 (vpshufb's zeroing bit) is clear exactly for high nibbles k .. k + 7,
 * so for x < 0x80 the XOR of steps 0 .. high nibble telescopes to x's own slice; the high chain does the same on
 * x - 0x80, and bit 7 of x picks the chain.  Three operations per slice instead of four (~1.9x the OR-ed form). */
EM_LUT_AVX2_TARGET static inline __m256i em_lut_u8_x32(__m256i x, const __m256i* chain) {
    const __m256i step = _mm256_set1_epi8(0x10);
    __m256i low_index = x, high_index = _mm256_xor_si256(x, _mm256_set1_epi8((char)0x80));
    __m256i low = _mm256_shuffle_epi8(chain[0], low_index), high = _mm256_shuffle_epi8(chain[8], high_index);
    for (int k = 1; k < 8; k++) {
        low_index = _mm256_sub_epi8(low_index, step);
        high_index = _mm256_sub_epi8(high_index, step);
        low = _mm256_xor_si256(low, _mm256_shuffle_epi8(chain[k], low_index));
        high = _mm256_xor_si256(high, _mm256_shuffle_epi8(chain[k + 8], high_index));
    }
    return _mm256_blendv_epi8(low, high, x);
}

/* Whether table[v] == v + table[0] (mod 256) for every byte v: a zero-point shift (an int8 -> int8 QUANTIZE of
 * equal scales, the identity after FLIP_SIGN_BIT), which one byte addition per lane gives. */
EM_LUT_AVX2_TARGET static inline int em_lut_is_shift(const uint8_t* table) {
    const __m256i c = _mm256_set1_epi8((char)table[0]);
    __m256i v = _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                 23, 24, 25, 26, 27, 28, 29, 30, 31);
    __m256i same = _mm256_set1_epi8(-1);
    for (int j = 0; j < 256; j += 32, v = _mm256_add_epi8(v, _mm256_set1_epi8(32)))
        same = _mm256_and_si256(same, _mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i*)(table + j)),
                                                        _mm256_add_epi8(v, c)));
    return _mm256_movemask_epi8(same) == -1;
}

EM_LUT_AVX2_TARGET static void em_lut_u8_avx2(const uint8_t* x, uint8_t* y, int64_t n, const uint8_t* table) {
    if (n >= 256 && em_lut_is_shift(table)) {     /* (the check costs what 256 lookups do) */
        const __m256i c = _mm256_set1_epi8((char)table[0]);
        int64_t i = 0;
        for (; i + 32 <= n; i += 32)
            _mm256_storeu_si256((__m256i*)(y + i), _mm256_add_epi8(_mm256_loadu_si256((const __m256i*)(x + i)), c));
        for (; i < n; i++) y[i] = (uint8_t)(x[i] + table[0]);
        return;
    }
    __m256i chain[16];
    for (int j = 0; j < 16; j++) {
        __m128i slice = _mm_loadu_si128((const __m128i*)(table + 16 * j));
        if (j % 8) slice = _mm_xor_si128(slice, _mm_loadu_si128((const __m128i*)(table + 16 * (j - 1))));
        chain[j] = _mm256_broadcastsi128_si256(slice);
    }
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {             /* two independent vectors per iteration */
        const __m256i a = _mm256_loadu_si256((const __m256i*)(x + i));
        const __m256i b = _mm256_loadu_si256((const __m256i*)(x + i + 32));
        _mm256_storeu_si256((__m256i*)(y + i), em_lut_u8_x32(a, chain));
        _mm256_storeu_si256((__m256i*)(y + i + 32), em_lut_u8_x32(b, chain));
    }
    for (; i + 32 <= n; i += 32)
        _mm256_storeu_si256((__m256i*)(y + i), em_lut_u8_x32(_mm256_loadu_si256((const __m256i*)(x + i)), chain));
    if (i < n) {                               /* the tail through a 32-byte bounce buffer */
        uint8_t buf[32] = {0};
        for (int64_t k = i; k < n; k++) buf[k - i] = x[k];
        _mm256_storeu_si256((__m256i*)buf, em_lut_u8_x32(_mm256_loadu_si256((const __m256i*)buf), chain));
        for (int64_t k = i; k < n; k++) y[k] = buf[k - i];
    }
}

/* 32 bytes of the affine map: 8 lanes of int32 per quarter (vpmaddwd of the sign-extended byte by mult in the low
 * 16 bits: x * mult exactly), saturating packs back to bytes in order, then the clamp (packing saturates first,
 * which the clamp inside [-128, 127] makes no difference to). */
typedef struct { __m256i mult, add_low, add_high, below, lo, hi, shift; } em_lut_affine8;

EM_LUT_AVX2_TARGET static inline __m256i em_lut_affine_x32(const int8_t* x, const em_lut_affine8* c) {
    __m256i q[4];
    for (int k = 0; k < 4; k++) {
        const __m256i v = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)(x + 8 * k)));
        const __m256i add = _mm256_blendv_epi8(c->add_low, c->add_high, _mm256_cmpgt_epi32(v, c->below));
        q[k] = _mm256_srav_epi32(_mm256_add_epi32(_mm256_madd_epi16(v, c->mult), add), c->shift);
    }
    const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    const __m256i ordered = _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    return _mm256_min_epi8(_mm256_max_epi8(ordered, c->lo), c->hi);
}

EM_LUT_AVX2_TARGET static void em_lut_affine_avx2(const int8_t* x, int8_t* y, int64_t n, const em_lut_affine* a) {
    em_lut_affine8 c;
    c.mult = _mm256_set1_epi32(a->mult & 0xFFFF);
    c.add_low = _mm256_set1_epi32(a->add_low);
    c.add_high = _mm256_set1_epi32(a->add_high);
    c.below = _mm256_set1_epi32(a->split - 1);                 /* x >= split: x > split - 1 */
    c.lo = _mm256_set1_epi8((char)a->lo);
    c.hi = _mm256_set1_epi8((char)a->hi);
    c.shift = _mm256_set1_epi32(a->shift);        /* vpsravd: one uop, where vpsrad by xmm takes two */
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) _mm256_storeu_si256((__m256i*)(y + i), em_lut_affine_x32(x + i, &c));
    if (i < n) {                               /* the tail through a 32-byte bounce buffer */
        int8_t buf[32] = {0};
        for (int64_t k = i; k < n; k++) buf[k - i] = x[k];
        _mm256_storeu_si256((__m256i*)buf, em_lut_affine_x32(buf, &c));
        for (int64_t k = i; k < n; k++) y[k] = buf[k - i];
    }
}

EM_LUT_BW_TARGET static void em_lut_f32_avx512(const uint8_t* x, float* y, int64_t n, const float* table) {
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        const __m512i idx = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, x + i));
        _mm512_mask_storeu_ps(y + i, m, _mm512_i32gather_ps(idx, table, 4));
    }
}

EM_LUT_AVX2_TARGET static void em_lut_f32_avx2(const uint8_t* x, float* y, int64_t n, const float* table) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i idx = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)(x + i)));
        _mm256_storeu_ps(y + i, _mm256_i32gather_ps(table, idx, 4));
    }
    em_lut_f32_scalar(x + i, y + i, n - i, table);
}

/* Periodic lookups of any period as 32-bit gathers at byte offsets 256 (i mod period) + x[i] (scale 1, the low
 * byte kept; the table holds 3 readable bytes past its period x 256 so that every 4-byte read stays inside).
 * Lane offsets advance by 16 (AVX-512) or 8 (AVX2) positions per vector: one conditional subtraction of
 * 256 period keeps them in range, with no division in the loop. */
static inline void em_lut_periodic_tail(const uint8_t* x, uint8_t* y, int64_t from, int64_t n, int64_t period,
                                        const uint8_t* table) {
    for (int64_t k = from; k < n; k++) y[k] = table[256 * (k % period) + x[k]];
}

EM_LUT_BW_TARGET static void em_lut_periodic_gather_avx512(const uint8_t* x, uint8_t* y, int64_t n, int64_t period,
                                                           const uint8_t* table) {
    int32_t first[16];
    for (int j = 0; j < 16; j++) first[j] = 256 * (int32_t)(j % period);
    const __m512i span = _mm512_set1_epi32((int32_t)(256 * period));
    const __m512i step = _mm512_set1_epi32(256 * (int32_t)(16 % period));
    __m512i offs = _mm512_loadu_si512(first);
#define EM_LUT_GATHER16(K)                                                                                         \
    _mm512_cvtepi32_epi8(_mm512_i32gather_epi32(                                                                   \
        _mm512_add_epi32(offs, _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(x + (K))))), table, 1))
#define EM_LUT_GATHER_ADVANCE()                                                                                    \
    do {                                                                                                           \
        offs = _mm512_add_epi32(offs, step);                                                                       \
        offs = _mm512_mask_sub_epi32(offs, _mm512_cmpge_epi32_mask(offs, span), offs, span);                       \
    } while (0)
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm_storeu_si128((__m128i*)(y + i), EM_LUT_GATHER16(i));
        EM_LUT_GATHER_ADVANCE();
    }
#undef EM_LUT_GATHER_ADVANCE
#undef EM_LUT_GATHER16
    if (i < n) {                         /* masked lanes read nothing */
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        const __m512i idx = _mm512_add_epi32(offs, _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, x + i)));
        const __m512i v = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, idx, table, 1);
        _mm_mask_storeu_epi8(y + i, m, _mm512_cvtepi32_epi8(v));
    }
}

EM_LUT_AVX2_TARGET static void em_lut_periodic_gather_avx2(const uint8_t* x, uint8_t* y, int64_t n, int64_t period,
                                                           const uint8_t* table) {
    int32_t first[8];
    for (int j = 0; j < 8; j++) first[j] = 256 * (int32_t)(j % period);
    const __m256i span = _mm256_set1_epi32((int32_t)(256 * period)), below = _mm256_set1_epi32((int32_t)(256 * period) - 1);
    const __m256i step = _mm256_set1_epi32(256 * (int32_t)(8 % period)), low = _mm256_set1_epi32(0xFF);
    /* packs leave dword j holding 4 bytes of gather (j % 4)'s lanes 4 (j / 4) ..: this permute restores order */
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    __m256i offs = _mm256_loadu_si256((const __m256i*)first);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i r[4];
        for (int j = 0; j < 4; j++) {
            const __m256i idx = _mm256_add_epi32(offs, _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)(x + i + 8 * j))));
            r[j] = _mm256_and_si256(_mm256_i32gather_epi32((const int*)table, idx, 1), low);
            offs = _mm256_add_epi32(offs, step);
            offs = _mm256_sub_epi32(offs, _mm256_and_si256(_mm256_cmpgt_epi32(offs, below), span));
        }
        const __m256i bytes = _mm256_packus_epi16(_mm256_packus_epi32(r[0], r[1]), _mm256_packus_epi32(r[2], r[3]));
        _mm256_storeu_si256((__m256i*)(y + i), _mm256_permutevar8x32_epi32(bytes, order));
    }
    em_lut_periodic_tail(x, y, i, n, period, table);
}
#endif

#if defined(__aarch64__)
#include <arm_neon.h>
static void em_lut_u8_neon(const uint8_t* x, uint8_t* y, int64_t n, const uint8_t* table) {
    const uint8x16x4_t q0 = vld1q_u8_x4(table), q1 = vld1q_u8_x4(table + 64);
    const uint8x16x4_t q2 = vld1q_u8_x4(table + 128), q3 = vld1q_u8_x4(table + 192);
    const uint8x16_t quarter = vdupq_n_u8(64);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        uint8x16_t a = vld1q_u8(x + i);
        uint8x16_t r = vqtbl4q_u8(q0, a);               /* indices past 63 give 0 (tbl) or keep r (tbx) */
        a = vsubq_u8(a, quarter);
        r = vqtbx4q_u8(r, q1, a);
        a = vsubq_u8(a, quarter);
        r = vqtbx4q_u8(r, q2, a);
        a = vsubq_u8(a, quarter);
        r = vqtbx4q_u8(r, q3, a);
        vst1q_u8(y + i, r);
    }
    em_lut_u8_scalar(x + i, y + i, n - i, table);
}
#endif

/* y[i] = table[x[i]] for n bytes; the body chosen for this process's ISA path. */
static void em_lut_u8(const uint8_t* x, uint8_t* y, int64_t n, const uint8_t* table) {
#if defined(__x86_64__) && defined(__GNUC__)
    const int isa = em_isa();
    if (isa == EM_ISA_AVX512VNNI && em_lut_has_vbmi()) em_lut_u8_vbmi(x, y, n, table);
    else if (isa >= EM_ISA_AVX512) em_lut_u8_avx512bw(x, y, n, table);
    else if (isa >= EM_ISA_AVX2) em_lut_u8_avx2(x, y, n, table);
    else em_lut_u8_scalar(x, y, n, table);
#elif defined(__aarch64__)
    if (em_isa() >= EM_ISA_NEON) em_lut_u8_neon(x, y, n, table);
    else em_lut_u8_scalar(x, y, n, table);
#else
    em_lut_u8_scalar(x, y, n, table);
#endif
}

/* y[i] = table[256 (i mod period) + x[i]] for n bytes (n a multiple of period). */
static void em_lut_periodic(const uint8_t* x, uint8_t* y, int64_t n, int64_t period, const uint8_t* table) {
#if defined(__x86_64__) && defined(__GNUC__)
    const int isa = em_isa();
    if (isa == EM_ISA_AVX512VNNI && em_lut_has_vbmi() && period <= EM_LUT_PERIODIC_VBMI_MAX) {
        em_lut_periodic_vbmi(x, y, n, period, table);
        return;
    }
    if (isa >= EM_ISA_AVX512) {
        em_lut_periodic_gather_avx512(x, y, n, period, table);
        return;
    }
    if (isa >= EM_ISA_AVX2) {
        em_lut_periodic_gather_avx2(x, y, n, period, table);
        return;
    }
#endif
    em_lut_periodic_scalar(x, y, n, period, table);
}

/* int8 ADD / SUB / MUL against a constant that repeats with the given period: one table row per phase (layout
 * EM_LUT_PERIODIC). */
static void em_lut_periodic_int8_step(const em_params* p) {
    em_lut_periodic((const uint8_t*)p->ptr[EM_LUT_PERIODIC_P_INPUT], (uint8_t*)p->ptr[EM_LUT_PERIODIC_P_OUTPUT],
                    p->i[EM_LUT_PERIODIC_I_N], p->i[EM_LUT_PERIODIC_I_PERIOD],
                    (const uint8_t*)p->ptr[EM_LUT_PERIODIC_P_TABLE]);
}

/* A 256-entry table that is an affine map of the byte, computed instead of looked up (layout EM_LUT_AFFINE): the
 * AVX2 path, where the lookup takes sixteen byte shuffles per 32 bytes. */
static void em_lut_affine_int8_step(const em_params* p) {
    const int8_t* x = (const int8_t*)p->ptr[EM_LUT_AFFINE_P_INPUT];
    int8_t* y = (int8_t*)p->ptr[EM_LUT_AFFINE_P_OUTPUT];
    const int64_t n = p->i[EM_LUT_AFFINE_I_N];
    em_lut_affine a;
    a.mult = (int32_t)p->i[EM_LUT_AFFINE_I_MULT];
    a.add_low = (int32_t)p->i[EM_LUT_AFFINE_I_ADD_LOW];
    a.add_high = (int32_t)p->i[EM_LUT_AFFINE_I_ADD_HIGH];
    a.split = (int32_t)p->i[EM_LUT_AFFINE_I_SPLIT];
    a.shift = (int32_t)p->i[EM_LUT_AFFINE_I_SHIFT];
    a.lo = (int32_t)p->i[EM_LUT_AFFINE_I_LO];
    a.hi = (int32_t)p->i[EM_LUT_AFFINE_I_HI];
#if defined(__x86_64__) && defined(__GNUC__)
    if (em_isa() >= EM_ISA_AVX2) {
        em_lut_affine_avx2(x, y, n, &a);
        return;
    }
#endif
    em_lut_affine_scalar(x, y, n, &a);
}

static void em_lut_f32(const uint8_t* x, float* y, int64_t n, const float* table) {
#if defined(__x86_64__) && defined(__GNUC__)
    const int isa = em_isa();
    if (isa >= EM_ISA_AVX512) em_lut_f32_avx512(x, y, n, table);
    else if (isa >= EM_ISA_AVX2) em_lut_f32_avx2(x, y, n, table);
    else em_lut_f32_scalar(x, y, n, table);
#else
    em_lut_f32_scalar(x, y, n, table);
#endif
}

/* DEQUANTIZE (and any int8 -> float32 function of the byte) as a table (layout EM_LUT_F32). */
static void em_lut_int8_f32_step(const em_params* p) {
    em_lut_f32((const uint8_t*)p->ptr[EM_LUT_F32_P_INPUT], (float*)p->ptr[EM_LUT_F32_P_OUTPUT], p->i[EM_LUT_F32_I_N],
               (const float*)p->ptr[EM_LUT_F32_P_TABLE]);
}
#endif
