/* float32 CONV_2D and FULLY_CONNECTED on AVX-512 / AVX2 register tiles (implicit GEMM).
 *
 * Every output is out[m][n] = act(sum_k a[m][k] * w[n][k] + bias[n]) with k in the reference's order (window
 * row, window column, input channel), a multiply then an add per k starting from 0, then the bias added and the
 * clamp: the reference kernels' operations in their order, so the reference's bits.  The vectors run across
 * output channels and the tiles across output pixels, so no output's sum is reordered.  Each tile is compiled
 * twice: conv2d_f32_<isa> with that multiply then add (the exact mode), conv2d_f32_fma_<isa> with fused
 * multiply-adds (the default: twice the arithmetic per instruction, each product rounded once instead of twice,
 * same order; the difference to the reference is measured in benchmarks/float_agreement.py).
 *
 * Weights are packed once (edgeml/runtime/ops/float_kernels.py) into column groups: the output channels padded
 * to a multiple of L lanes (16 AVX-512, 8 AVX2), split into groups of G vectors (the last group may be narrower),
 * each group stored k-major: [K][nvg * L], so a tile reads one sequential stream.  The bias is padded likewise.
 *
 * A conv's rows are output pixels: for a chunk of pixels the kernel writes a table of row pointers, one per
 * (pixel, window tap), pointing into the input or, for taps in the padding, at a row of zeros (0 * w adds
 * nothing to a sum that starts at +0).  With few input channels (gather = 1) each pixel's window is copied into
 * one row of K floats instead (im2col, zeros in the padding), and the table has one pointer per pixel: the tiles
 * then run K steps without a tap loop.  A FULLY_CONNECTED is the 1x1 conv of its rows.

 *
 * Layout EM_FGEMM (conv2d_f32_avx512 / conv2d_f32_avx2 / conv2d_f32_fma_avx512 / conv2d_f32_fma_avx2):
 *   ptr: input f32 NHWC, packed weights, packed bias (zeros where the model has none: the reference adds 0.0f),
 *        output f32 NHWC, scratch (64-byte aligned)
 *   i:   N, IH, IW, IC, OH, OW, OC, KH, KW, SH, SW, DH, DW, pad_top, pad_left, group (G, vectors per column
 *        group), single_row (1: one-row tiles with up to 8 vectors, for a batch-1 FULLY_CONNECTED), chunk (pixels
 *        per pointer table), gather (1: im2col rows)
 *   f:   act_min, act_max
 *   scratch bytes: em_fgemm_scratch_bytes(IC, KH * KW, chunk, gather) -- a zero row, the pointer table (with
 *   EM_FGEMM_MAX_TILE_ROWS rows of slack: a tile's rows past the chunk repeat its last pixel), the im2col rows. */
#ifndef EM_FLOAT_GEMM_H
#define EM_FLOAT_GEMM_H
#include <stdint.h>
#include <string.h>
#include "em_params.h"
#include "em_isa.h"

enum { EM_FGEMM_P_INPUT, EM_FGEMM_P_WEIGHTS, EM_FGEMM_P_BIAS, EM_FGEMM_P_OUTPUT, EM_FGEMM_P_SCRATCH,
       EM_FGEMM_P_COUNT };
enum { EM_FGEMM_I_N, EM_FGEMM_I_IH, EM_FGEMM_I_IW, EM_FGEMM_I_IC, EM_FGEMM_I_OH, EM_FGEMM_I_OW, EM_FGEMM_I_OC,
       EM_FGEMM_I_KH, EM_FGEMM_I_KW, EM_FGEMM_I_SH, EM_FGEMM_I_SW, EM_FGEMM_I_DH, EM_FGEMM_I_DW,
       EM_FGEMM_I_PAD_TOP, EM_FGEMM_I_PAD_LEFT, EM_FGEMM_I_GROUP, EM_FGEMM_I_SINGLE_ROW, EM_FGEMM_I_CHUNK,
       EM_FGEMM_I_GATHER, EM_FGEMM_I_COUNT };
enum { EM_FGEMM_F_ACT_MIN, EM_FGEMM_F_ACT_MAX, EM_FGEMM_F_COUNT };

#define EM_FGEMM_MAX_TILE_ROWS 8
#define EM_FGEMM_LINES(bytes) (((int64_t)(bytes) + 63) / 64 * 64)
static inline int64_t em_fgemm_scratch_bytes(int64_t ic, int64_t taps, int64_t chunk, int64_t gather) {
    const int64_t table = (chunk + EM_FGEMM_MAX_TILE_ROWS) * (gather ? 1 : taps) * (int64_t)sizeof(void*);
    return EM_FGEMM_LINES(ic * 4) + EM_FGEMM_LINES(table) + (gather ? chunk * taps * ic * 4 : 0);
}

/* One register tile: rows [0, MR) of a table of row pointers (row r, tap t at rows[r * taps + t]; rows past
 * mrows repeat the chunk's last pixel and are not stored), against one column group. */
typedef struct {
    const float* const* rows;
    int64_t taps, ic, mrows;
    const float* b;        /* the group's packed weights, [K][nvg * L] */
    const float* bias;     /* the group's bias */
    float* out;            /* row 0, the group's first column */
    int64_t ldc, ncols;    /* output row stride; columns of the group that exist (the rest is padding) */
    float lo, hi;
} em_ftile;

typedef void (*em_ftile_fn)(const em_ftile* t);

/* n floats (a window row of a first conv: a few) in 16-byte moves, without a loop the compiler would make a
 * library call or a vector loop with alias checks of */
static inline void em_fgemm_copy(float* dst, const float* src, int64_t n) {
    if (n >= 64) {
        memcpy(dst, src, (size_t)n * sizeof(float));
        return;
    }
    int64_t c = 0;
    for (; c + 4 <= n; c += 4) memcpy(dst + c, src + c, 4 * sizeof(float));
    if (c + 2 <= n) {
        memcpy(dst + c, src + c, 2 * sizeof(float));
        c += 2;
    }
    if (c < n) dst[c] = src[c];
}

/* Builds the pointer table of output pixels [first, first + rows) of image b (rows + EM_FGEMM_MAX_TILE_ROWS
 * entries, the last pixel repeated), or with `gather` their im2col rows in `col` and one pointer per pixel. */
static void em_fgemm_table(const em_params* p, int64_t b, int64_t first, int64_t rows, const float* zero,
                           int gather, float* col, const float** table) {
    const int64_t* d = p->i;
    const float* in = (const float*)p->ptr[EM_FGEMM_P_INPUT];
    const int64_t IH = d[EM_FGEMM_I_IH], IW = d[EM_FGEMM_I_IW], IC = d[EM_FGEMM_I_IC], OW = d[EM_FGEMM_I_OW];
    const int64_t KH = d[EM_FGEMM_I_KH], KW = d[EM_FGEMM_I_KW], K = KH * KW * IC;
    const int64_t per_row = gather ? 1 : KH * KW;
    const int64_t DW = d[EM_FGEMM_I_DW];
    int64_t oy = first / OW, ox = first % OW;            /* walked pixel by pixel: no division per row */
    if (KH == 1 && KW == 1 && d[EM_FGEMM_I_SH] == 1 && d[EM_FGEMM_I_SW] == 1 && d[EM_FGEMM_I_PAD_TOP] == 0 &&
        d[EM_FGEMM_I_PAD_LEFT] == 0 && d[EM_FGEMM_I_OH] == IH && OW == IW) {
        for (int64_t r = 0; r < rows; r++) table[r] = in + (b * IH * IW + first + r) * IC;     /* 1x1: rows */
    } else {
        for (int64_t r = 0; r < rows; r++, ox = ox + 1 < OW ? ox + 1 : (oy++, 0)) {
            const float** t = table + r * per_row;
            float* dst = col + r * K;
            const int64_t ix0 = ox * d[EM_FGEMM_I_SW] - d[EM_FGEMM_I_PAD_LEFT];
            const int row_inside = DW == 1 && ix0 >= 0 && ix0 + KW <= IW;
            if (gather) *t = dst;
            for (int64_t ky = 0; ky < KH; ky++) {
                const int64_t iy = oy * d[EM_FGEMM_I_SH] - d[EM_FGEMM_I_PAD_TOP] + ky * d[EM_FGEMM_I_DH];
                if (gather && row_inside && iy >= 0 && iy < IH) {     /* the window row: KW * IC floats in a row */
                    em_fgemm_copy(dst, in + ((b * IH + iy) * IW + ix0) * IC, KW * IC);
                    dst += KW * IC;
                    continue;
                }
                for (int64_t kx = 0; kx < KW; kx++) {
                    const int64_t ix = ix0 + kx * DW;
                    const float* src = (iy < 0 || iy >= IH || ix < 0 || ix >= IW) ? zero
                                       : in + ((b * IH + iy) * IW + ix) * IC;
                    if (gather) {
                        for (int64_t c = 0; c < IC; c++) dst[c] = src[c];     /* a few floats: no memcpy call */
                        dst += IC;
                    } else {
                        *t++ = src;
                    }
                }
            }
        }
    }
    for (int64_t r = rows; r < rows + EM_FGEMM_MAX_TILE_ROWS; r++)
        memcpy(table + r * per_row, table + (rows - 1) * per_row, (size_t)per_row * sizeof(void*));
}

/* 1 when the CPU has FMA3: the AVX2 conv2d_f32_fma / depthwise_f32_fma kernels need it (AVX-512 includes it). */
static inline int em_fgemm_cpu_has_fma(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("fma") ? 1 : 0;
#else
    return 0;
#endif
}

/* The driver: pointer tables chunk by chunk, then every column group over the chunk's rows in tiles.
 * tiles[nv] / tile_rows[nv]: the tile for a group of nv vectors and its row count. */
static void em_fgemm_run(const em_params* p, int64_t lanes, const em_ftile_fn* tiles, const int64_t* tile_rows) {
    const int64_t* d = p->i;
    const int64_t IC = d[EM_FGEMM_I_IC], OC = d[EM_FGEMM_I_OC], taps = d[EM_FGEMM_I_KH] * d[EM_FGEMM_I_KW];
    const int64_t K = taps * IC, P = d[EM_FGEMM_I_OH] * d[EM_FGEMM_I_OW], G = d[EM_FGEMM_I_GROUP];
    const int64_t V = (OC + lanes - 1) / lanes, chunk = d[EM_FGEMM_I_CHUNK];
    const int gather = d[EM_FGEMM_I_GATHER] != 0;
    const float* w = (const float*)p->ptr[EM_FGEMM_P_WEIGHTS];
    const float* bias = (const float*)p->ptr[EM_FGEMM_P_BIAS];
    float* out = (float*)p->ptr[EM_FGEMM_P_OUTPUT];
    float* zero = (float*)p->ptr[EM_FGEMM_P_SCRATCH];
    const int64_t table_bytes = EM_FGEMM_LINES((chunk + EM_FGEMM_MAX_TILE_ROWS) * (gather ? 1 : taps) * 8);
    const float** table = (const float**)(void*)((uint8_t*)zero + EM_FGEMM_LINES(IC * 4));
    float* col = (float*)(void*)((uint8_t*)table + table_bytes);
    em_ftile t;
    memset(zero, 0, (size_t)IC * sizeof(float));
    t.taps = gather ? 1 : taps;
    t.ic = gather ? K : IC;
    t.ldc = OC;
    t.lo = p->f[EM_FGEMM_F_ACT_MIN];
    t.hi = p->f[EM_FGEMM_F_ACT_MAX];
    for (int64_t b = 0; b < d[EM_FGEMM_I_N]; b++) {
        for (int64_t first = 0; first < P; first += chunk) {
            const int64_t rows = P - first < chunk ? P - first : chunk;
            em_fgemm_table(p, b, first, rows, zero, gather, col, table);
            for (int64_t g = 0; g * G < V; g++) {
                const int64_t nv = V - g * G < G ? V - g * G : G, c0 = g * G * lanes;
                const int64_t mr = tile_rows[nv];
                t.b = w + c0 * K;
                t.bias = bias + c0;
                t.ncols = OC - c0 < nv * lanes ? OC - c0 : nv * lanes;
                for (int64_t m0 = 0; m0 < rows; m0 += mr) {
                    t.rows = table + m0 * t.taps;
                    t.mrows = rows - m0 < mr ? rows - m0 : mr;
                    t.out = out + (b * P + first + m0) * OC + c0;
                    tiles[nv](&t);
                }
            }
        }
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define EM_F512 __attribute__((target("avx512f,avx512dq")))
#define EM_F256 __attribute__((target("avx2")))

/* acc[r][v] += a_r[c] * b[c][v] over every tap and channel; then bias, clamp, store rows < mrows. */
#define EM_FTILE_AVX512(MR, NV, MODE, MADD)                                                                   \
EM_F512 static void em_ftile_avx512##MODE##_##MR##x##NV(const em_ftile* t) {                                \
    __m512 acc[MR][NV];                                                                                       \
    const float* a[MR];                                                                                       \
    const float* b = t->b;                                                                                    \
    _Pragma("GCC unroll 16") for (int r = 0; r < MR; r++)                                                     \
        _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_ps();                 \
    for (int64_t tap = 0; tap < t->taps; tap++) {                                                             \
        _Pragma("GCC unroll 16") for (int r = 0; r < MR; r++)                                                 \
            a[r] = t->rows[r * t->taps + tap];                                \
        for (int64_t c = 0; c < t->ic; c++, b += NV * 16) {                                                   \
            __m512 bv[NV];                                                                                    \
            _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) bv[v] = _mm512_loadu_ps(b + v * 16);         \
            _Pragma("GCC unroll 16") for (int r = 0; r < MR; r++) {                                           \
                const __m512 x = _mm512_set1_ps(a[r][c]);                                                     \
                _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++)                                          \
                    acc[r][v] = MADD(acc[r][v], x, bv[v]);                                                  \
            }                                                                                                 \
        }                                                                                                     \
    }                                                                                                         \
    const __m512 lo = _mm512_set1_ps(t->lo), hi = _mm512_set1_ps(t->hi);                                     \
    _Pragma("GCC unroll 16") for (int r = 0; r < MR; r++) {                                                   \
        if (r >= t->mrows) break;                                                                             \
        float* o = t->out + r * t->ldc;                                                                       \
        _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) {                                                \
            __m512 y = _mm512_add_ps(acc[r][v], _mm512_loadu_ps(t->bias + v * 16));                           \
            y = _mm512_min_ps(hi, _mm512_max_ps(lo, y));   /* NaN stays NaN, as the reference's min / max */ \
            const int64_t left = t->ncols - v * 16;                                                           \
            if (left >= 16) _mm512_storeu_ps(o + v * 16, y);                                                  \
            else _mm512_mask_storeu_ps(o + v * 16, (__mmask16)((1u << left) - 1u), y);                        \
        }                                                                                                     \
    }                                                                                                         \
}

#define EM_FTILE_AVX2(MR, NV, MODE, MADD, TARGET)                                                             \
TARGET static void em_ftile_avx2##MODE##_##MR##x##NV(const em_ftile* t) {                                  \
    __m256 acc[MR][NV];                                                                                       \
    const float* a[MR];                                                                                       \
    const float* b = t->b;                                                                                    \
    _Pragma("GCC unroll 16") for (int r = 0; r < MR; r++)                                                     \
        _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) acc[r][v] = _mm256_setzero_ps();                 \
    for (int64_t tap = 0; tap < t->taps; tap++) {                                                             \
        _Pragma("GCC unroll 16") for (int r = 0; r < MR; r++)                                                 \
            a[r] = t->rows[r * t->taps + tap];                                \
        for (int64_t c = 0; c < t->ic; c++, b += NV * 8) {                                                    \
            if (MR == 1) {                                                                                    \
                const __m256 x = _mm256_broadcast_ss(a[0] + c);                                               \
                _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++)                                          \
                    acc[0][v] = MADD(acc[0][v], x, _mm256_loadu_ps(b + v * 8));                             \
                continue;                                                                                     \
            }                                                                                                 \
            __m256 bv[NV];                                                                                    \
            _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) bv[v] = _mm256_loadu_ps(b + v * 8);          \
            _Pragma("GCC unroll 16") for (int r = 0; r < MR; r++) {                                           \
                const __m256 x = _mm256_broadcast_ss(a[r] + c);                                               \
                _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++)                                          \
                    acc[r][v] = MADD(acc[r][v], x, bv[v]);                                                  \
            }                                                                                                 \
        }                                                                                                     \
    }                                                                                                         \
    const __m256 lo = _mm256_set1_ps(t->lo), hi = _mm256_set1_ps(t->hi);                                     \
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);                                          \
    _Pragma("GCC unroll 16") for (int r = 0; r < MR; r++) {                                                   \
        if (r >= t->mrows) break;                                                                             \
        float* o = t->out + r * t->ldc;                                                                       \
        _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) {                                                \
            __m256 y = _mm256_add_ps(acc[r][v], _mm256_loadu_ps(t->bias + v * 8));                            \
            y = _mm256_min_ps(hi, _mm256_max_ps(lo, y));                                                      \
            const int64_t left = t->ncols - v * 8;                                                            \
            if (left >= 8) _mm256_storeu_ps(o + v * 8, y);                                                    \
            else _mm256_maskstore_ps(o + v * 8, _mm256_cmpgt_epi32(_mm256_set1_epi32((int)left), lane), y);   \
        }                                                                                                     \
    }                                                                                                         \
}

/* The two multiply-adds: the reference's (a multiply, rounded, then an add) and the fused one (one rounding). */
#define EM_FMADD_EXACT512(acc, x, w) _mm512_add_ps(acc, _mm512_mul_ps(x, w))
#define EM_FMADD_FUSED512(acc, x, w) _mm512_fmadd_ps(x, w, acc)
#define EM_FMADD_EXACT256(acc, x, w) _mm256_add_ps(acc, _mm256_mul_ps(x, w))
#define EM_FMADD_FUSED256(acc, x, w) _mm256_fmadd_ps(x, w, acc)
#define EM_F256FMA __attribute__((target("avx2,fma")))

/* Every tile of one mode: AVX-512 has 32 registers: up to 8 rows per tile for a conv (more row pointers than that
 * spill the general registers), one row with up to eight vectors for a batch-1 FULLY_CONNECTED (eight independent
 * sums cover the add latency); AVX2 has 16. */
#define EM_FTILES(MODE, MADD512, MADD256, TARGET256)                                                           \
    EM_FTILE_AVX512(6, 4, MODE, MADD512) EM_FTILE_AVX512(8, 3, MODE, MADD512)                                  \
    EM_FTILE_AVX512(8, 2, MODE, MADD512) EM_FTILE_AVX512(8, 1, MODE, MADD512)                                  \
    EM_FTILE_AVX512(1, 1, MODE, MADD512) EM_FTILE_AVX512(1, 2, MODE, MADD512)                                  \
    EM_FTILE_AVX512(1, 3, MODE, MADD512) EM_FTILE_AVX512(1, 4, MODE, MADD512)                                  \
    EM_FTILE_AVX512(1, 5, MODE, MADD512) EM_FTILE_AVX512(1, 6, MODE, MADD512)                                  \
    EM_FTILE_AVX512(1, 7, MODE, MADD512) EM_FTILE_AVX512(1, 8, MODE, MADD512)                                  \
    EM_FTILE_AVX2(4, 3, MODE, MADD256, TARGET256) EM_FTILE_AVX2(6, 2, MODE, MADD256, TARGET256)                \
    EM_FTILE_AVX2(8, 1, MODE, MADD256, TARGET256) EM_FTILE_AVX2(1, 1, MODE, MADD256, TARGET256)                \
    EM_FTILE_AVX2(1, 2, MODE, MADD256, TARGET256) EM_FTILE_AVX2(1, 3, MODE, MADD256, TARGET256)                \
    EM_FTILE_AVX2(1, 4, MODE, MADD256, TARGET256) EM_FTILE_AVX2(1, 5, MODE, MADD256, TARGET256)                \
    EM_FTILE_AVX2(1, 6, MODE, MADD256, TARGET256) EM_FTILE_AVX2(1, 7, MODE, MADD256, TARGET256)                \
    EM_FTILE_AVX2(1, 8, MODE, MADD256, TARGET256)                                                              \
                                                                                                               \
static void em_conv2d_f32##MODE##_avx512(const em_params* p) {                                                 \
    static const em_ftile_fn multi[] = {0, em_ftile_avx512##MODE##_8x1, em_ftile_avx512##MODE##_8x2,            \
                                        em_ftile_avx512##MODE##_8x3, em_ftile_avx512##MODE##_6x4};              \
    static const int64_t multi_rows[] = {1, 8, 8, 8, 6};                                                       \
    static const em_ftile_fn single[] = {0, em_ftile_avx512##MODE##_1x1, em_ftile_avx512##MODE##_1x2,           \
        em_ftile_avx512##MODE##_1x3, em_ftile_avx512##MODE##_1x4, em_ftile_avx512##MODE##_1x5,                 \
        em_ftile_avx512##MODE##_1x6, em_ftile_avx512##MODE##_1x7, em_ftile_avx512##MODE##_1x8};                \
    static const int64_t single_rows[] = {1, 1, 1, 1, 1, 1, 1, 1, 1};                                          \
    if (p->i[EM_FGEMM_I_SINGLE_ROW]) em_fgemm_run(p, 16, single, single_rows);                                 \
    else em_fgemm_run(p, 16, multi, multi_rows);                                                               \
}                                                                                                              \
                                                                                                               \
static void em_conv2d_f32##MODE##_avx2(const em_params* p) {                                                   \
    static const em_ftile_fn multi[] = {0, em_ftile_avx2##MODE##_8x1, em_ftile_avx2##MODE##_6x2,                \
                                        em_ftile_avx2##MODE##_4x3};                                             \
    static const int64_t multi_rows[] = {1, 8, 6, 4};                                                          \
    static const em_ftile_fn single[] = {0, em_ftile_avx2##MODE##_1x1, em_ftile_avx2##MODE##_1x2,               \
        em_ftile_avx2##MODE##_1x3, em_ftile_avx2##MODE##_1x4, em_ftile_avx2##MODE##_1x5,                       \
        em_ftile_avx2##MODE##_1x6, em_ftile_avx2##MODE##_1x7, em_ftile_avx2##MODE##_1x8};                      \
    static const int64_t single_rows[] = {1, 1, 1, 1, 1, 1, 1, 1, 1};                                          \
    if (p->i[EM_FGEMM_I_SINGLE_ROW]) em_fgemm_run(p, 8, single, single_rows);                                  \
    else em_fgemm_run(p, 8, multi, multi_rows);                                                                \
}

/* conv2d_f32_<isa>: the reference's bits; conv2d_f32_fma_<isa>: fused multiply-adds (the default float path) */
EM_FTILES(, EM_FMADD_EXACT512, EM_FMADD_EXACT256, EM_F256)
EM_FTILES(_fma, EM_FMADD_FUSED512, EM_FMADD_FUSED256, EM_F256FMA)
#else
/* never selected: the loader picks these kernels only on x86-64 CPUs that report the ISA */
static void em_conv2d_f32_avx512(const em_params* p) { (void)p; }
static void em_conv2d_f32_avx2(const em_params* p) { (void)p; }
static void em_conv2d_f32_fma_avx512(const em_params* p) { (void)p; }
static void em_conv2d_f32_fma_avx2(const em_params* p) { (void)p; }
#endif
#endif
