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
 * then run K steps without a tap loop; with at most 8 output channels on AVX-512 (gather = 2) two pixels share
 * a vector (em_fpair_run).  A FULLY_CONNECTED is the 1x1 conv of its rows.

 *
 * Layout EM_FGEMM (conv2d_f32_avx512 / conv2d_f32_avx2 / conv2d_f32_fma_avx512 / conv2d_f32_fma_avx2):
 *   ptr: input f32 NHWC, packed weights, packed bias (zeros where the model has none: the reference adds 0.0f),
 *        output f32 NHWC, scratch (64-byte aligned)
 *   i:   N, IH, IW, IC, OH, OW, OC, KH, KW, SH, SW, DH, DW, pad_top, pad_left, group (G, vectors per column
 *        group), single_row (1: one-row tiles with up to 8 vectors, for a batch-1 FULLY_CONNECTED), chunk (pixels
 *        per pointer table), gather (1: im2col rows; 2: im2col rows in pixel pairs, AVX-512 with OC <= 8)
 *   f:   act_min, act_max
 *   scratch bytes: em_fgemm_scratch_bytes(IC, KH * KW, chunk, gather) -- a zero row, the pointer table (with
 *   EM_FGEMM_MAX_TILE_ROWS rows of slack: a tile's rows past the chunk repeat its last pixel), the im2col rows,
 *   their pairs (gather = 2). */
#ifndef EM_FLOAT_GEMM_H
#define EM_FLOAT_GEMM_H
#include <stdint.h>
#include <string.h>
#include "em_params.h"
#include "em_isa.h"
#include "em_vec.h"

enum { EM_FGEMM_P_INPUT, EM_FGEMM_P_WEIGHTS, EM_FGEMM_P_BIAS, EM_FGEMM_P_OUTPUT, EM_FGEMM_P_SCRATCH,
       EM_FGEMM_P_COUNT };
enum { EM_FGEMM_I_N, EM_FGEMM_I_IH, EM_FGEMM_I_IW, EM_FGEMM_I_IC, EM_FGEMM_I_OH, EM_FGEMM_I_OW, EM_FGEMM_I_OC,
       EM_FGEMM_I_KH, EM_FGEMM_I_KW, EM_FGEMM_I_SH, EM_FGEMM_I_SW, EM_FGEMM_I_DH, EM_FGEMM_I_DW,
       EM_FGEMM_I_PAD_TOP, EM_FGEMM_I_PAD_LEFT, EM_FGEMM_I_GROUP, EM_FGEMM_I_SINGLE_ROW, EM_FGEMM_I_CHUNK,
       EM_FGEMM_I_GATHER, EM_FGEMM_I_COUNT };
enum { EM_FGEMM_F_ACT_MIN, EM_FGEMM_F_ACT_MAX, EM_FGEMM_F_COUNT };

#define EM_FGEMM_MAX_TILE_ROWS 8
#define EM_FGEMM_PREFETCH_BYTES (256 * 1024)   /* larger conv weights are prefetched a column group ahead */
#define EM_FGEMM_STREAM_BYTES (1024 * 1024)     /* larger one-row GEMM weights are prefetched in the tile ... */
#define EM_FGEMM_STREAM_AHEAD (16 * 1024)       /* ... this many bytes ahead of the loads */
#define EM_FGEMM_COL_SLACK 16   /* floats after the im2col rows (and twice after their pairs): whole-vector stores */
#define EM_FGEMM_LINES(bytes) (((int64_t)(bytes) + 63) / 64 * 64)
static inline int64_t em_fgemm_scratch_bytes(int64_t ic, int64_t taps, int64_t chunk, int64_t gather) {
    const int64_t table = (chunk + EM_FGEMM_MAX_TILE_ROWS) * (gather ? 1 : taps) * (int64_t)sizeof(void*);
    const int64_t col = gather ? EM_FGEMM_LINES((chunk * taps * ic + EM_FGEMM_COL_SLACK) * 4) : 0;
    return EM_FGEMM_LINES(ic * 4) + EM_FGEMM_LINES(table) + col +
           (gather == 2 ? ((chunk + 1) * taps * ic + 2 * EM_FGEMM_COL_SLACK) * 4 : 0);
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
    int stream;            /* one-row tiles over weights larger than the caches: prefetch them ahead */
} em_ftile;

typedef void (*em_ftile_fn)(const em_ftile* t);

/* Builds the pointer table of output pixels [first, first + rows) of image b: rows + EM_FGEMM_MAX_TILE_ROWS
 * entries of KH * KW pointers, the last pixel repeated. */
static void em_fgemm_table(const em_params* p, int64_t b, int64_t first, int64_t rows, const float* zero,
                           const float** table) {
    const int64_t* d = p->i;
    const float* in = (const float*)p->ptr[EM_FGEMM_P_INPUT];
    const int64_t IH = d[EM_FGEMM_I_IH], IW = d[EM_FGEMM_I_IW], IC = d[EM_FGEMM_I_IC], OW = d[EM_FGEMM_I_OW];
    const int64_t KH = d[EM_FGEMM_I_KH], KW = d[EM_FGEMM_I_KW];
    const int64_t per_row = KH * KW;
    const int64_t DW = d[EM_FGEMM_I_DW];
    int64_t oy = first / OW, ox = first % OW;            /* walked pixel by pixel: no division per row */
    if (KH == 1 && KW == 1 && d[EM_FGEMM_I_SH] == 1 && d[EM_FGEMM_I_SW] == 1 && d[EM_FGEMM_I_PAD_TOP] == 0 &&
        d[EM_FGEMM_I_PAD_LEFT] == 0 && d[EM_FGEMM_I_OH] == IH && OW == IW) {
        for (int64_t r = 0; r < rows; r++) table[r] = in + (b * IH * IW + first + r) * IC;     /* 1x1: rows */
    } else {
        for (int64_t r = 0; r < rows; r++, ox = ox + 1 < OW ? ox + 1 : (oy++, 0)) {
            const float** t = table + r * per_row;
            const int64_t ix0 = ox * d[EM_FGEMM_I_SW] - d[EM_FGEMM_I_PAD_LEFT];
            for (int64_t ky = 0; ky < KH; ky++) {
                const int64_t iy = oy * d[EM_FGEMM_I_SH] - d[EM_FGEMM_I_PAD_TOP] + ky * d[EM_FGEMM_I_DH];
                for (int64_t kx = 0; kx < KW; kx++) {
                    const int64_t ix = ix0 + kx * DW;
                    *t++ = (iy < 0 || iy >= IH || ix < 0 || ix >= IW) ? zero : in + ((b * IH + iy) * IW + ix) * IC;
                }
            }
        }
    }
    for (int64_t r = rows; r < rows + EM_FGEMM_MAX_TILE_ROWS; r++)
        memcpy(table + r * per_row, table + (rows - 1) * per_row, (size_t)per_row * sizeof(void*));
}

/* The im2col row (K floats, zeros in the padding) of output pixel (oy, ox) of image b, tap by tap: the pixels
 * whose window crosses the left or right edge, and dilated windows. */
static void em_fgemm_gather_pixel(const em_params* p, int64_t b, int64_t oy, int64_t ox, float* dst) {
    const int64_t* d = p->i;
    const float* in = (const float*)p->ptr[EM_FGEMM_P_INPUT];
    const int64_t IH = d[EM_FGEMM_I_IH], IW = d[EM_FGEMM_I_IW], IC = d[EM_FGEMM_I_IC];
    const int64_t ix0 = ox * d[EM_FGEMM_I_SW] - d[EM_FGEMM_I_PAD_LEFT];
    for (int64_t ky = 0; ky < d[EM_FGEMM_I_KH]; ky++) {
        const int64_t iy = oy * d[EM_FGEMM_I_SH] - d[EM_FGEMM_I_PAD_TOP] + ky * d[EM_FGEMM_I_DH];
        for (int64_t kx = 0; kx < d[EM_FGEMM_I_KW]; kx++, dst += IC) {
            const int64_t ix = ix0 + kx * d[EM_FGEMM_I_DW];
            const int inside = iy >= 0 && iy < IH && ix >= 0 && ix < IW;
            const float* src = in + ((b * IH + iy) * IW + ix) * IC;
            for (int64_t c = 0; c < IC; c++) dst[c] = inside ? src[c] : 0.0f;
        }
    }
}

/* The im2col rows of output pixels [first, first + rows) of image b and their pointer table (one pointer per
 * pixel, EM_FGEMM_MAX_TILE_ROWS more repeating the last): an undilated window whose columns are inside the image
 * is KH runs of KW * IC floats, each moved with the ISA's vector copy (or zeroed: a row in the padding). */
typedef void (*em_fgather_fn)(const em_params* p, int64_t b, int64_t first, int64_t rows, float* col,
                              const float** table);
#define EM_FGATHER(ISA, TARGET, COPY, ZERO)                                                                    \
TARGET static void em_fgemm_gather_##ISA(const em_params* p, int64_t b, int64_t first, int64_t rows, float* col, \
                                         const float** table) {                                                \
    const int64_t* d = p->i;                                                                                   \
    const float* in = (const float*)p->ptr[EM_FGEMM_P_INPUT];                                                  \
    const int64_t IH = d[EM_FGEMM_I_IH], IW = d[EM_FGEMM_I_IW], IC = d[EM_FGEMM_I_IC], OW = d[EM_FGEMM_I_OW];  \
    const int64_t KH = d[EM_FGEMM_I_KH], KW = d[EM_FGEMM_I_KW], K = KH * KW * IC, run = KW * IC;              \
    const int64_t SH = d[EM_FGEMM_I_SH], SW = d[EM_FGEMM_I_SW], DH = d[EM_FGEMM_I_DH];                        \
    const int64_t PT = d[EM_FGEMM_I_PAD_TOP], PL = d[EM_FGEMM_I_PAD_LEFT];                                    \
    const int undilated = d[EM_FGEMM_I_DW] == 1;                                                               \
    int64_t oy = first / OW, ox = first % OW;                                                                  \
    for (int64_t r = 0; r < rows; r++, ox = ox + 1 < OW ? ox + 1 : (oy++, 0)) {                                \
        float* dst = col + r * K;                                                                              \
        const int64_t ix0 = ox * SW - PL;                                                                      \
        table[r] = dst;                                                                                        \
        if (!undilated || ix0 < 0 || ix0 + KW > IW) {                                                          \
            em_fgemm_gather_pixel(p, b, oy, ox, dst);                                                          \
            continue;                                                                                          \
        }                                                                                                      \
        for (int64_t ky = 0, iy = oy * SH - PT; ky < KH; ky++, iy += DH, dst += run) {                         \
            if (iy >= 0 && iy < IH) COPY(dst, in + ((b * IH + iy) * IW + ix0) * IC, run);                      \
            else ZERO(dst, run);                                                                               \
        }                                                                                                      \
    }                                                                                                          \
    for (int64_t r = rows; r < rows + EM_FGEMM_MAX_TILE_ROWS; r++) table[r] = table[rows - 1];                 \
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
static void em_fgemm_run(const em_params* p, int64_t lanes, const em_ftile_fn* tiles, const int64_t* tile_rows,
                         em_fgather_fn gather_rows) {
    const int64_t* d = p->i;
    const int64_t IC = d[EM_FGEMM_I_IC], OC = d[EM_FGEMM_I_OC], taps = d[EM_FGEMM_I_KH] * d[EM_FGEMM_I_KW];
    const int64_t K = taps * IC, P = d[EM_FGEMM_I_OH] * d[EM_FGEMM_I_OW], G = d[EM_FGEMM_I_GROUP];
    const int64_t V = (OC + lanes - 1) / lanes, chunk = d[EM_FGEMM_I_CHUNK];
    const int gather = d[EM_FGEMM_I_GATHER] != 0;
    const int prefetch = !d[EM_FGEMM_I_SINGLE_ROW] && K * V * lanes * 4 > EM_FGEMM_PREFETCH_BYTES;
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
    t.stream = d[EM_FGEMM_I_SINGLE_ROW] && K * V * lanes * 4 > EM_FGEMM_STREAM_BYTES;
    t.lo = p->f[EM_FGEMM_F_ACT_MIN];
    t.hi = p->f[EM_FGEMM_F_ACT_MAX];
    for (int64_t b = 0; b < d[EM_FGEMM_I_N]; b++) {
        for (int64_t first = 0; first < P; first += chunk) {
            const int64_t rows = P - first < chunk ? P - first : chunk;
            if (gather) gather_rows(p, b, first, rows, col, table);
            else em_fgemm_table(p, b, first, rows, zero, table);
            for (int64_t g = 0; g * G < V; g++) {
                const int64_t nv = V - g * G < G ? V - g * G : G, c0 = g * G * lanes;
                const int64_t mr = tile_rows[nv], ntiles = (rows + mr - 1) / mr;
                /* the next column group's weights, a share before each tile: read from memory while this group's
                 * tiles run from cache (large weights only: smaller ones stay cached between invokes) */
                const int64_t next_c0 = c0 + nv * lanes;
                const char* next = (const char*)(w + next_c0 * K);
                const int64_t next_bytes = prefetch && next_c0 < V * lanes ?
                    K * ((V * lanes - next_c0) < G * lanes ? V * lanes - next_c0 : G * lanes) * 4 : 0;
                const int64_t share = (next_bytes / ntiles + 63) / 64 * 64;
                t.b = w + c0 * K;
                t.bias = bias + c0;
                t.ncols = OC - c0 < nv * lanes ? OC - c0 : nv * lanes;
                for (int64_t m0 = 0, i = 0; m0 < rows; m0 += mr, i++) {
                    for (int64_t o = i * share; o < (i + 1) * share && o < next_bytes; o += 64)
                        __builtin_prefetch(next + o, 0, 2);
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

/* The window-row moves of the im2col gathers: n floats, the last part masked (never past a row's end). */
EM_F512 static inline void em_fcopy_avx512(float* dst, const float* src, int64_t n) {
    for (; n >= 16; n -= 16, dst += 16, src += 16) _mm512_storeu_ps(dst, _mm512_loadu_ps(src));
    const __mmask16 m = (__mmask16)((1u << n) - 1u);
    if (n) _mm512_mask_storeu_ps(dst, m, _mm512_maskz_loadu_ps(m, src));
}
EM_F512 static inline void em_fzero_avx512(float* dst, int64_t n) {
    for (; n >= 16; n -= 16, dst += 16) _mm512_storeu_ps(dst, _mm512_setzero_ps());
    if (n) _mm512_mask_storeu_ps(dst, (__mmask16)((1u << n) - 1u), _mm512_setzero_ps());
}
EM_F256 static inline __m256i em_fmask_avx2(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
EM_F256 static inline void em_fcopy_avx2(float* dst, const float* src, int64_t n) {
    for (; n >= 8; n -= 8, dst += 8, src += 8) _mm256_storeu_ps(dst, _mm256_loadu_ps(src));
    if (n) _mm256_maskstore_ps(dst, em_fmask_avx2(n), _mm256_maskload_ps(src, em_fmask_avx2(n)));
}
EM_F256 static inline void em_fzero_avx2(float* dst, int64_t n) {
    for (; n >= 8; n -= 8, dst += 8) _mm256_storeu_ps(dst, _mm256_setzero_ps());
    if (n) _mm256_maskstore_ps(dst, em_fmask_avx2(n), _mm256_setzero_ps());
}
EM_FGATHER(avx512_runs, EM_F512, em_fcopy_avx512, em_fzero_avx512)
EM_FGATHER(avx2, EM_F256, em_fcopy_avx2, em_fzero_avx2)

/* The lanes of a window row of run = KW * IC <= 16 floats starting at input column ix0 that lie inside the image
 * (the rest are padding: masked off, read as zeros, never touched in memory). */
static inline uint32_t em_frow_mask(int64_t ix0, int64_t KW, int64_t IW, int64_t IC) {
    const int64_t lo = ix0 < 0 ? -ix0 : 0, hi = IW - ix0 < KW ? IW - ix0 : KW;
    return hi <= lo ? 0u : ((1u << (hi * IC)) - 1u) & ~((1u << (lo * IC)) - 1u);
}

/* em_fgemm_gather for AVX-512: an undilated window row of at most 16 floats is one masked load (its padding
 * masked off) and one whole-vector store (the next row overwrites the excess; the rows end in
 * EM_FGEMM_COL_SLACK floats of slack); other windows go through em_fgemm_gather_avx512_runs. */
EM_F512 static void em_fgemm_gather_avx512(const em_params* p, int64_t b, int64_t first, int64_t rows, float* col,
                                           const float** table) {
    const int64_t* d = p->i;
    const float* in = (const float*)p->ptr[EM_FGEMM_P_INPUT];
    const int64_t IH = d[EM_FGEMM_I_IH], IW = d[EM_FGEMM_I_IW], IC = d[EM_FGEMM_I_IC], OW = d[EM_FGEMM_I_OW];
    const int64_t KH = d[EM_FGEMM_I_KH], KW = d[EM_FGEMM_I_KW], K = KH * KW * IC, run = KW * IC;
    const int64_t SH = d[EM_FGEMM_I_SH], SW = d[EM_FGEMM_I_SW], DH = d[EM_FGEMM_I_DH];
    const int64_t PT = d[EM_FGEMM_I_PAD_TOP], PL = d[EM_FGEMM_I_PAD_LEFT];
    if (d[EM_FGEMM_I_DW] != 1 || run > 16) {
        em_fgemm_gather_avx512_runs(p, b, first, rows, col, table);
        return;
    }
    int64_t oy = first / OW, ox = first % OW;
    for (int64_t r = 0; r < rows; r++, ox = ox + 1 < OW ? ox + 1 : (oy++, 0)) {
        float* dst = col + r * K;
        const int64_t ix0 = ox * SW - PL;
        const __mmask16 m = (__mmask16)em_frow_mask(ix0, KW, IW, IC);
        table[r] = dst;
        for (int64_t ky = 0, iy = oy * SH - PT; ky < KH; ky++, iy += DH, dst += run) {
            const int inside = iy >= 0 && iy < IH;
            const __mmask16 mm = inside ? m : 0;
            _mm512_storeu_ps(dst, _mm512_maskz_loadu_ps(mm, in + ((b * IH + (inside ? iy : 0)) * IW + ix0) * IC));
        }
    }
    for (int64_t r = rows; r < rows + EM_FGEMM_MAX_TILE_ROWS; r++) table[r] = table[rows - 1];
}

/* acc[r][v] += a_r[c] * b[c][v] over every tap and channel; then bias, clamp, store rows < mrows.  One body for
 * AVX-512 (L = 16) and AVX2 (L = 8) over em_vec.h's operations; MR == 1 prefetches streamed weights a line at a
 * time (16 / L vectors) and takes each weight vector straight into its multiply-add. */
#define EM_FTILE(ISA, TARGET, MR, NV, MODE, MADD)                                                             \
TARGET static void em_ftile_##ISA##MODE##_##MR##x##NV(const em_ftile* t) {                                   \
    enum { L = EM_V(ISA, LANES) };                                                                            \
    EM_V(ISA, T) acc[MR][NV];                                                                                 \
    const float* a[MR];                                                                                       \
    const float* b = t->b;                                                                                    \
    _Pragma("GCC unroll 16") for (int r = 0; r < MR; r++)                                                     \
        _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) acc[r][v] = EM_V(ISA, ZERO)();                   \
    for (int64_t tap = 0; tap < t->taps; tap++) {                                                             \
        _Pragma("GCC unroll 16") for (int r = 0; r < MR; r++)                                                 \
            a[r] = t->rows[r * t->taps + tap];                                                                \
        for (int64_t c = 0; c < t->ic; c++, b += NV * L) {                                                    \
            if (MR == 1) {                                                                                    \
                if (t->stream)                                                                                \
                    _Pragma("GCC unroll 8") for (int v = 0; v < NV; v += 16 / L)                              \
                        _mm_prefetch((const char*)(b + v * L) + EM_FGEMM_STREAM_AHEAD, _MM_HINT_T0);          \
                const EM_V(ISA, T) x = EM_V(ISA, BCAST)(a[0] + c);                                            \
                _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++)                                          \
                    acc[0][v] = MADD(acc[0][v], x, EM_V(ISA, LOAD)(b + v * L));                               \
                continue;                                                                                     \
            }                                                                                                 \
            EM_V(ISA, T) bv[NV];                                                                              \
            _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) bv[v] = EM_V(ISA, LOAD)(b + v * L);          \
            _Pragma("GCC unroll 16") for (int r = 0; r < MR; r++) {                                           \
                const EM_V(ISA, T) x = EM_V(ISA, BCAST)(a[r] + c);                                            \
                _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++)                                          \
                    acc[r][v] = MADD(acc[r][v], x, bv[v]);                                                    \
            }                                                                                                 \
        }                                                                                                     \
    }                                                                                                         \
    const EM_V(ISA, T) lo = EM_V(ISA, SET1)(t->lo), hi = EM_V(ISA, SET1)(t->hi);                              \
    _Pragma("GCC unroll 16") for (int r = 0; r < MR; r++) {                                                   \
        if (r >= t->mrows) break;                                                                             \
        float* o = t->out + r * t->ldc;                                                                       \
        _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) {                                                \
            EM_V(ISA, T) y = EM_V(ISA, ADD)(acc[r][v], EM_V(ISA, LOAD)(t->bias + v * L));                     \
            y = EM_V(ISA, MIN)(hi, EM_V(ISA, MAX)(lo, y));   /* NaN stays NaN, as the reference's min / max */ \
            const int64_t left = t->ncols - v * L;                                                            \
            if (left >= L) EM_V(ISA, STORE)(o + v * L, y);                                                    \
            else EM_V(ISA, STORE_N)(o + v * L, left, y);                                                      \
        }                                                                                                     \
    }                                                                                                         \
}
#define EM_FTILE_AVX512(MR, NV, MODE, MADD) EM_FTILE(avx512, EM_F512, MR, NV, MODE, MADD)
#define EM_FTILE_AVX2(MR, NV, MODE, MADD, TARGET) EM_FTILE(avx2, TARGET, MR, NV, MODE, MADD)

/* The two multiply-adds: the reference's (a multiply, rounded, then an add) and the fused one (one rounding). */
#define EM_FMADD_EXACT512(acc, x, w) _mm512_add_ps(acc, _mm512_mul_ps(x, w))
#define EM_FMADD_FUSED512(acc, x, w) _mm512_fmadd_ps(x, w, acc)
#define EM_FMADD_EXACT256(acc, x, w) _mm256_add_ps(acc, _mm256_mul_ps(x, w))
#define EM_FMADD_FUSED256(acc, x, w) _mm256_fmadd_ps(x, w, acc)
#define EM_F256FMA __attribute__((target("avx2,fma")))

/* Pixel pairs (gather = 2, AVX-512, at most 8 output channels): one 16-lane vector holds two output pixels' 8
 * channels, interleaved (lane 2c + s: channel c of pixel s of the pair), so a pair's two window values for tap k,
 * stored side by side, come in with one 64-bit broadcast, and the weights are packed [K][16] with w[c][k] in lanes
 * 2c and 2c + 1.  Each lane's sum is one output's, in the reference's order; the interleave is undone before the
 * bias and clamp. */
#define EM_FPAIR_ROWS 8                 /* pairs per tile: 8 sums in flight cover the add latency */
typedef void (*em_fpair_fn)(const float* a, int64_t lda, int64_t pairs, int64_t pixels, const float* w, int64_t K,
                            const float* bias, float* out, int64_t oc, float lo, float hi);
#define EM_FPAIR_TILE(MODE, MADD)                                                                              \
EM_F512 static void em_fpair_tile##MODE(const float* a, int64_t lda, int64_t pairs, int64_t pixels,            \
                                        const float* w, int64_t K, const float* bias, float* out, int64_t oc,   \
                                        float lo, float hi) {                                                  \
    __m512 acc[EM_FPAIR_ROWS];                                                                                 \
    const float* row[EM_FPAIR_ROWS];                                                                           \
    _Pragma("GCC unroll 8") for (int r = 0; r < EM_FPAIR_ROWS; r++) {                                          \
        acc[r] = _mm512_setzero_ps();                                                                          \
        row[r] = a + (r < pairs ? r : pairs - 1) * lda;      /* past the last pair: its sums, not stored */   \
    }                                                                                                          \
    for (int64_t k = 0; k < K; k++, w += 16) {                                                                 \
        const __m512 wv = _mm512_loadu_ps(w);                                                                  \
        _Pragma("GCC unroll 8") for (int r = 0; r < EM_FPAIR_ROWS; r++) {                                      \
            const __m512 x = _mm512_castpd_ps(_mm512_set1_pd(*(const double*)(const void*)(row[r] + 2 * k)));  \
            acc[r] = MADD(acc[r], x, wv);                                                                      \
        }                                                                                                      \
    }                                                                                                          \
    const __m512i apart = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);           \
    const __m512 b = _mm512_loadu_ps(bias), vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);                \
    const __mmask16 first = (__mmask16)((1u << oc) - 1u), second = (__mmask16)(first << 8);                   \
    _Pragma("GCC unroll 8") for (int r = 0; r < EM_FPAIR_ROWS; r++) {                                          \
        if (2 * r >= pixels) break;                                                                            \
        __m512 y = _mm512_add_ps(_mm512_permutexvar_ps(apart, acc[r]), b);                                     \
        y = _mm512_min_ps(vhi, _mm512_max_ps(vlo, y));                                                         \
        float* o = out + 2 * r * oc;                                                                           \
        _mm512_mask_storeu_ps(o, first, y);                                                                    \
        if (2 * r + 1 < pixels) _mm512_mask_storeu_ps(o + oc - 8, second, y);   /* lanes 8.. at o + oc */     \
    }                                                                                                          \
}
EM_FPAIR_TILE(, EM_FMADD_EXACT512)
EM_FPAIR_TILE(_fma, EM_FMADD_FUSED512)

/* The pairs of output pixels [first, first + rows) of image b (a lone last pixel with itself), each pair's two
 * im2col rows interleaved ([K][2]) at pairs + 2 * j * K: an undilated window inside the image's columns with a
 * window row of at most 16 floats is KH runs of KW * IC floats, zipped run by run; other pixels go tap by tap
 * through the two rows at `tmp`. */
EM_F512 static void em_fpair_gather(const em_params* p, int64_t b, int64_t first, int64_t rows, float* pairs,
                                    float* tmp) {
    const int64_t* d = p->i;
    const float* in = (const float*)p->ptr[EM_FGEMM_P_INPUT];
    const int64_t IH = d[EM_FGEMM_I_IH], IW = d[EM_FGEMM_I_IW], IC = d[EM_FGEMM_I_IC], OW = d[EM_FGEMM_I_OW];
    const int64_t KH = d[EM_FGEMM_I_KH], KW = d[EM_FGEMM_I_KW], K = KH * KW * IC, run = KW * IC;
    const int64_t SH = d[EM_FGEMM_I_SH], SW = d[EM_FGEMM_I_SW], DH = d[EM_FGEMM_I_DH];
    const int64_t PT = d[EM_FGEMM_I_PAD_TOP], PL = d[EM_FGEMM_I_PAD_LEFT];
    const int runs = d[EM_FGEMM_I_DW] == 1 && run <= 16;
    const __m512i zip_lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i zip_hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    int64_t oy = first / OW, ox = first % OW;
    for (int64_t j = 0; 2 * j < rows; j++) {
        float* dst = pairs + 2 * j * K;
        const int64_t oy0 = oy, ox0 = ox;
        if (2 * j + 1 < rows) ox = ox + 1 < OW ? ox + 1 : (oy++, 0);
        const int64_t oy1 = oy, ox1 = ox, ix0 = ox0 * SW - PL, ix1 = ox1 * SW - PL;
        ox = ox + 1 < OW ? ox + 1 : (oy++, 0);
        if (runs) {     /* whole-vector stores: the next run overwrites the excess, the pairs end in slack */
            const __mmask16 h0 = (__mmask16)em_frow_mask(ix0, KW, IW, IC);
            const __mmask16 h1 = (__mmask16)em_frow_mask(ix1, KW, IW, IC);
            for (int64_t ky = 0; ky < KH; ky++, dst += 2 * run) {
                const int64_t iy0 = oy0 * SH - PT + ky * DH, iy1 = oy1 * SH - PT + ky * DH;
                const int in0 = iy0 >= 0 && iy0 < IH, in1 = iy1 >= 0 && iy1 < IH;
                const float* row0 = in + ((b * IH + (in0 ? iy0 : 0)) * IW + ix0) * IC;
                const float* row1 = in + ((b * IH + (in1 ? iy1 : 0)) * IW + ix1) * IC;
                const __m512 x0 = _mm512_maskz_loadu_ps(in0 ? h0 : 0, row0);
                const __m512 x1 = _mm512_maskz_loadu_ps(in1 ? h1 : 0, row1);
                _mm512_storeu_ps(dst, _mm512_permutex2var_ps(x0, zip_lo, x1));
                if (run > 8) _mm512_storeu_ps(dst + 16, _mm512_permutex2var_ps(x0, zip_hi, x1));
            }
            continue;
        }
        em_fgemm_gather_pixel(p, b, oy0, ox0, tmp);
        em_fgemm_gather_pixel(p, b, oy1, ox1, tmp + K);
        for (int64_t c = 0; c < K; c += 8) {
            const int64_t n = K - c < 8 ? K - c : 8;
            const __mmask16 m = (__mmask16)((1u << n) - 1u);
            const __m512 z = _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(m, tmp + c), zip_lo,
                                                    _mm512_maskz_loadu_ps(m, tmp + K + c));
            _mm512_mask_storeu_ps(dst + 2 * c, (__mmask16)((1u << (2 * n)) - 1u), z);
        }
    }
}

/* The pair driver: chunk by chunk the interleaved im2col rows, then the tiles. */
EM_F512 static void em_fpair_run(const em_params* p, em_fpair_fn tile) {
    const int64_t* d = p->i;
    const int64_t IC = d[EM_FGEMM_I_IC], OC = d[EM_FGEMM_I_OC], K = d[EM_FGEMM_I_KH] * d[EM_FGEMM_I_KW] * IC;
    const int64_t P = d[EM_FGEMM_I_OH] * d[EM_FGEMM_I_OW], chunk = d[EM_FGEMM_I_CHUNK];
    const float* w = (const float*)p->ptr[EM_FGEMM_P_WEIGHTS];
    const float* bias = (const float*)p->ptr[EM_FGEMM_P_BIAS];
    float* out = (float*)p->ptr[EM_FGEMM_P_OUTPUT];
    uint8_t* scratch = (uint8_t*)p->ptr[EM_FGEMM_P_SCRATCH];
    const float** table = (const float**)(void*)(scratch + EM_FGEMM_LINES(IC * 4));
    float* tmp = (float*)(void*)((uint8_t*)table + EM_FGEMM_LINES((chunk + EM_FGEMM_MAX_TILE_ROWS) * 8));
    float* pairs = tmp + EM_FGEMM_LINES((chunk * K + EM_FGEMM_COL_SLACK) * 4) / 4;
    for (int64_t b = 0; b < d[EM_FGEMM_I_N]; b++) {
        for (int64_t first = 0; first < P; first += chunk) {
            const int64_t rows = P - first < chunk ? P - first : chunk;
            em_fpair_gather(p, b, first, rows, pairs, tmp);
            for (int64_t m0 = 0; m0 < rows; m0 += 2 * EM_FPAIR_ROWS) {
                const int64_t left = rows - m0, pixels = left < 2 * EM_FPAIR_ROWS ? left : 2 * EM_FPAIR_ROWS;
                tile(pairs + m0 * K, 2 * K, (pixels + 1) / 2, pixels, w, K, bias, out + (b * P + first + m0) * OC,
                     OC, p->f[EM_FGEMM_F_ACT_MIN], p->f[EM_FGEMM_F_ACT_MAX]);
            }
        }
    }
}

/* Direct convolution along output rows (gather = 3: stride 1 or 2 and no dilation across, windows 3 wide, at most
 * 32 output channels (one or two vectors), the default fused mode only): a tile is 16 (two vectors or stride 2: 8)
 * neighbouring output pixels of one row, and each input value is broadcast once and multiplied into the up to 3
 * (stride 2: 2) of them whose windows hold it: for one vector at stride 1, 18 broadcasts and 3 weight vectors per 48
 * multiply-adds, where the pointer-table tiles take one broadcast per multiply-add and the few-channel convs an
 * im2col copy.  Each sum runs window row, input channel, window column: not the reference's order.  Each image is
 * first copied into scratch with its padding as zeros (and zero columns up to whole tiles), so that every tile reads
 * inside the copy and adds 0 * w for a padding tap, as the pointer-table tiles do. */
#define EM_FROW_PIXELS 16      /* output pixels per tile at stride 1 with one vector of channels: 16 sums in flight */
#define EM_FROW_TILE_PIXELS(SW, NV) ((SW) == 1 && (NV) == 1 ? EM_FROW_PIXELS : EM_FROW_PIXELS / 2)   /* fewer: spills */
#define EM_FROW_KW 3
typedef void (*em_frow_fn)(const float* x, int64_t row_step, int64_t KH, int64_t IC, const float* w,
                           const float* bias, float* out, int64_t pixels, int64_t oc, float lo, float hi);
/* One body for AVX-512 (L = 16, 32 registers: EM_FROW_TILE_PIXELS) and AVX2 (L = 8, 16 registers: 8 pixels with
 * one vector at stride 1, else 4) over em_vec.h's operations. */
#define EM_FROW_TILE(ISA, TARGET, MODE, MADD, SW, NV, PIXELS)                                                  \
TARGET static void em_frow_tile_##ISA##MODE##_s##SW##_##NV(const float* x, int64_t row_step, int64_t KH,       \
                                                         int64_t IC, const float* w, const float* bias,        \
                                                         float* out, int64_t pixels, int64_t oc, float lo,     \
                                                         float hi) {                                           \
    enum { L = EM_V(ISA, LANES), COLS = (PIXELS - 1) * SW + EM_FROW_KW };                                      \
    EM_V(ISA, T) acc[PIXELS][NV];                                                                              \
    _Pragma("GCC unroll 16") for (int r = 0; r < PIXELS; r++)                                                  \
        _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++) acc[r][v] = EM_V(ISA, ZERO)();                    \
    for (int64_t ky = 0; ky < KH; ky++, x += row_step, w += EM_FROW_KW * IC * NV * L) {                        \
        const float* col[COLS];                                                                                \
        _Pragma("GCC unroll 33") for (int j = 0; j < COLS; j++) col[j] = x + j * IC;                           \
        for (int64_t c = 0; c < IC; c++) {                                                                     \
            EM_V(ISA, T) wv[EM_FROW_KW][NV];                                                                   \
            _Pragma("GCC unroll 3") for (int kx = 0; kx < EM_FROW_KW; kx++)                                    \
                _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++)                                           \
                    wv[kx][v] = EM_V(ISA, LOAD)(w + ((kx * IC + c) * NV + v) * L);                             \
            _Pragma("GCC unroll 33") for (int j = 0; j < COLS; j++) {     /* column j: outputs (j - kx) / SW */ \
                const EM_V(ISA, T) xv = EM_V(ISA, BCAST)(col[j] + c);                                          \
                _Pragma("GCC unroll 3") for (int kx = 0; kx < EM_FROW_KW; kx++) {                              \
                    const int o = (j - kx) / SW;                                                               \
                    if (j >= kx && (j - kx) % SW == 0 && o < PIXELS)                                           \
                        _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++)                                   \
                            acc[o][v] = MADD(acc[o][v], xv, wv[kx][v]);                                        \
                }                                                                                              \
            }                                                                                                  \
        }                                                                                                      \
    }                                                                                                          \
    const EM_V(ISA, T) vlo = EM_V(ISA, SET1)(lo), vhi = EM_V(ISA, SET1)(hi);                                   \
    _Pragma("GCC unroll 16") for (int r = 0; r < PIXELS; r++) {                                                \
        if (r >= pixels) break;                                                                                \
        _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++) {                                                 \
            const int64_t left = oc - v * L;                                                                   \
            const EM_V(ISA, T) y = EM_V(ISA, MIN)(vhi, EM_V(ISA, MAX)(vlo, EM_V(ISA, ADD)(acc[r][v],           \
                                                                      EM_V(ISA, LOAD)(bias + v * L))));        \
            EM_V(ISA, STORE_UPTO)(out + r * oc + v * L, left, y);                                              \
        }                                                                                                      \
    }                                                                                                          \
}
#define EM_FROW_TILES(ISA, TARGET, MODE, MADD, P11, P12, P21, P22)                                             \
    EM_FROW_TILE(ISA, TARGET, MODE, MADD, 1, 1, P11) EM_FROW_TILE(ISA, TARGET, MODE, MADD, 1, 2, P12)          \
    EM_FROW_TILE(ISA, TARGET, MODE, MADD, 2, 1, P21) EM_FROW_TILE(ISA, TARGET, MODE, MADD, 2, 2, P22)          \
    static const em_frow_fn em_frow_tiles_##ISA##MODE[2][2] = {                                                \
        {em_frow_tile_##ISA##MODE##_s1_1, em_frow_tile_##ISA##MODE##_s1_2},                                    \
        {em_frow_tile_##ISA##MODE##_s2_1, em_frow_tile_##ISA##MODE##_s2_2}};
#define EM_FROW_TILES_AVX512(MODE, MADD)                                                                       \
    EM_FROW_TILES(avx512, EM_F512, MODE, MADD, EM_FROW_TILE_PIXELS(1, 1), EM_FROW_TILE_PIXELS(1, 2),           \
                  EM_FROW_TILE_PIXELS(2, 1), EM_FROW_TILE_PIXELS(2, 2))
EM_FROW_TILES_AVX512(, EM_FMADD_EXACT512)
EM_FROW_TILES_AVX512(_fma, EM_FMADD_FUSED512)
EM_FROW_TILES(avx2, EM_F256, , EM_FMADD_EXACT256, 8, 4, 4, 4)
EM_FROW_TILES(avx2, EM_F256FMA, _fma, EM_FMADD_FUSED256, 8, 4, 4, 4)
static const int64_t em_frow_pixels_avx512[2][2] = {{EM_FROW_TILE_PIXELS(1, 1), EM_FROW_TILE_PIXELS(1, 2)},
                                                    {EM_FROW_TILE_PIXELS(2, 1), EM_FROW_TILE_PIXELS(2, 2)}};
static const int64_t em_frow_pixels_avx2[2][2] = {{8, 4}, {4, 4}};

/* The padded copy's rows and columns: every window row the output rows read, and the columns of whole tiles. */
static inline int64_t em_frow_padded_rows(int64_t OH, int64_t SH, int64_t KH, int64_t DH) {
    return (OH - 1) * SH + (KH - 1) * DH + 1;
}
static inline int64_t em_frow_padded_cols(int64_t OW, int64_t SW) {
    return (OW + EM_FROW_PIXELS - 1) / EM_FROW_PIXELS * EM_FROW_PIXELS * SW + EM_FROW_KW - 1;
}

/* The row driver: image by image the padded copy (at the start of scratch), then the tiles row by row. */
static void em_frow_run(const em_params* p, int64_t lanes, const em_frow_fn tiles[2][2],
                        const int64_t pixels[2][2]) {
    const int64_t* d = p->i;
    const int64_t IH = d[EM_FGEMM_I_IH], IW = d[EM_FGEMM_I_IW], IC = d[EM_FGEMM_I_IC], OC = d[EM_FGEMM_I_OC];
    const int64_t OH = d[EM_FGEMM_I_OH], OW = d[EM_FGEMM_I_OW], KH = d[EM_FGEMM_I_KH], SH = d[EM_FGEMM_I_SH];
    const int64_t DH = d[EM_FGEMM_I_DH], PT = d[EM_FGEMM_I_PAD_TOP], PL = d[EM_FGEMM_I_PAD_LEFT];
    const int64_t SW = d[EM_FGEMM_I_SW];
    const int64_t rows = em_frow_padded_rows(OH, SH, KH, DH), cols = em_frow_padded_cols(OW, SW);
    const em_frow_fn tile = tiles[SW == 1 ? 0 : 1][OC <= lanes ? 0 : 1];
    const int64_t step = pixels[SW == 1 ? 0 : 1][OC <= lanes ? 0 : 1];
    const float* in = (const float*)p->ptr[EM_FGEMM_P_INPUT];
    const float* w = (const float*)p->ptr[EM_FGEMM_P_WEIGHTS];
    const float* bias = (const float*)p->ptr[EM_FGEMM_P_BIAS];
    float* out = (float*)p->ptr[EM_FGEMM_P_OUTPUT];
    float* pad = (float*)p->ptr[EM_FGEMM_P_SCRATCH];
    /* the input columns the copy holds: [first, last) of the image, at copy columns from PL + first */
    const int64_t first = PL < 0 ? -PL : 0, last = IW < cols - PL ? IW : cols - PL;
    for (int64_t b = 0; b < d[EM_FGEMM_I_N]; b++) {
        for (int64_t py = 0; py < rows; py++) {
            float* dst = pad + py * cols * IC;
            const int64_t iy = py - PT;
            if (iy < 0 || iy >= IH || last <= first) {
                memset(dst, 0, (size_t)(cols * IC) * sizeof(float));
                continue;
            }
            const int64_t lead = PL + first, tail = cols - (PL + last);
            memset(dst, 0, (size_t)(lead * IC) * sizeof(float));
            memcpy(dst + lead * IC, in + ((b * IH + iy) * IW + first) * IC,
                   (size_t)((last - first) * IC) * sizeof(float));
            memset(dst + (PL + last) * IC, 0, (size_t)(tail * IC) * sizeof(float));
        }
        for (int64_t oy = 0; oy < OH; oy++)
            for (int64_t ox = 0; ox < OW; ox += step)
                tile(pad + (oy * SH * cols + ox * SW) * IC, DH * cols * IC, KH, IC, w, bias,
                     out + ((b * OH + oy) * OW + ox) * OC, OW - ox < step ? OW - ox : step, OC,
                     p->f[EM_FGEMM_F_ACT_MIN], p->f[EM_FGEMM_F_ACT_MAX]);
    }
}

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
    if (p->i[EM_FGEMM_I_GATHER] == 2) em_fpair_run(p, em_fpair_tile##MODE);                                    \
    else if (p->i[EM_FGEMM_I_GATHER] == 3) em_frow_run(p, 16, em_frow_tiles_avx512##MODE, em_frow_pixels_avx512);          \
    else if (p->i[EM_FGEMM_I_SINGLE_ROW]) em_fgemm_run(p, 16, single, single_rows, em_fgemm_gather_avx512);    \
    else em_fgemm_run(p, 16, multi, multi_rows, em_fgemm_gather_avx512);                                       \
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
    if (p->i[EM_FGEMM_I_GATHER] == 3) em_frow_run(p, 8, em_frow_tiles_avx2##MODE, em_frow_pixels_avx2);        \
    else if (p->i[EM_FGEMM_I_SINGLE_ROW]) em_fgemm_run(p, 8, single, single_rows, em_fgemm_gather_avx2);       \
    else em_fgemm_run(p, 8, multi, multi_rows, em_fgemm_gather_avx2);                                          \
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
