/* Block-sparse int8 CONV_2D / FULLY_CONNECTED: the weights [OC][K] cut into blocks of 16 output channels x 4
 * consecutive K values; only blocks holding a nonzero weight are stored, and each 16-column group loops over its
 * own list of them.  A skipped block adds exactly 0 to the int32 sums, so the requantized outputs are the dense
 * kernels' (and LiteRT's reference) bit for bit.  FULLY_CONNECTED runs as a 1x1 conv over its rows.
 *
 * Rows are read as the dense kernels read them (em_im2col.h): a KxK conv with dilation_w 1 as an implicit GEMM over
 * the image padded once (its weights packed per window row, KW * IC rounded up to 4, so that a block never spans
 * two window rows), a 1x1 stride-1 conv from its rows, any other by im2col a chunk at a time; then:
 *   VNNI (AVX-512): rows uint8 x + 128, one vpdpbusd per (row, block); bias - (in_zp + 128) sum w (em_gemm_vnni.h)
 *   AVX2:  rows int16, two vpmaddwd pairs per (row, 8 columns, block); bias - in_zp sum w (em_gemm_avx2.h)
 *   portable: rows int8, the same sums in C; bias - in_zp sum w.
 * With a few nonzero blocks per pixel most of the time goes to requantizing, so the vector kernels hold each group's
 * output constants in registers and narrow a tile's rows together (em_sparse_vnni_store_rows, em_sparse_avx2_store16).
 * Packed form (edgeml/runtime/packing_sparse.py): group_start[G + 1] (block range of each 16-column group),
 * block_k[nblocks] (where the block's 4 values start: the K index for the portable kernel, a byte offset from the
 * row's or the output pixel's start for the vector ones), weights: int8 [nblocks][16][4] (VNNI), int16
 * [nblocks][2 pairs][16][2] (AVX2) or int8 [nblocks][4][16] (portable: its column loop vectorizes).  Per-column
 * arrays are padded to a multiple of 16. */
#ifndef EM_SPARSE_H
#define EM_SPARSE_H
#include <stdint.h>
#include <string.h>
#include "em_params.h"
#include "em_gemm.h"
#include "em_gemm_vnni.h"
#include "em_gemm_avx2.h"
#include "em_gemm_avxvnni.h"
#include "em_threads.h"
#include "em_im2col.h"

/* The conv layout (em_im2col.h EM_CONV; DIRECT: 4 implicit GEMM, 1 1x1 stride-1 rows, 0 im2col) plus the
 * block lists; integers: Kp (K rounded up to 4), threads (slices of the output pixels), slice_bytes (each slice's
 * scratch: a chunk of gathered rows). */
enum { EM_SPARSE_P_GROUP_START = EM_CONV_P_COUNT, EM_SPARSE_P_BLOCK_K, EM_SPARSE_P_COUNT };
enum { EM_SPARSE_I_KP = EM_CONV_I_CHUNK + 1, EM_SPARSE_I_THREADS, EM_SPARSE_I_SLICE_BYTES, EM_SPARSE_I_COUNT };
enum { EM_SPARSE_F_COUNT = 0 };

#define EM_SPARSE_COLS 16

typedef struct {
    const int32_t* group_start;
    const int32_t* block_k;
    const void* w;
} em_sparse_w;

/* ---- portable: C[m][n] = requant(sum over the group's blocks of a[m][k..k+3] . w) ------------------------- */
static void em_sparse_gemm_scalar(const int8_t* A, int64_t lda, int64_t M, int64_t K, const em_sparse_w* s,
                                  int64_t N, const em_requant_cols* rq, int8_t* C, int64_t ldc) {
    const int8_t* W = (const int8_t*)s->w;
    for (int64_t m = 0; m < M; m++) {
        const int8_t* a = A + m * lda;
        for (int64_t n = 0; n < N; n += EM_SPARSE_COLS) {
            const int64_t grp = n / EM_SPARSE_COLS, cols = N - n < EM_SPARSE_COLS ? N - n : EM_SPARSE_COLS;
            int32_t acc[EM_SPARSE_COLS] = {0};
            for (int32_t j = s->group_start[grp]; j < s->group_start[grp + 1]; j++) {
                const int64_t k0 = s->block_k[j], depth = K - k0 < 4 ? K - k0 : 4;   /* rows hold K values */
                const int8_t* w = W + (int64_t)j * 64;
                for (int64_t t = 0; t < depth; t++) {
                    const int32_t av = a[k0 + t];
                    for (int c = 0; c < EM_SPARSE_COLS; c++) acc[c] += av * w[t * EM_SPARSE_COLS + c];
                }
            }
            for (int64_t c = 0; c < cols; c++) C[m * ldc + n + c] = em_requant_one(acc[c], (int)(n + c), rq);
        }
    }
}

static void em_conv2d_int8_sparse(const em_params* p) {
    const int64_t* d = p->i;
    const int8_t* in = (const int8_t*)p->ptr[EM_CONV_P_INPUT];
    int8_t* out = (int8_t*)p->ptr[EM_CONV_P_OUTPUT];
    int8_t* col = (int8_t*)p->ptr[EM_CONV_P_SCRATCH];
    em_requant_cols rq = {(const int32_t*)p->ptr[EM_CONV_P_BIAS], (const int32_t*)p->ptr[EM_CONV_P_MULT],
                          (const int32_t*)p->ptr[EM_CONV_P_SHIFT], (int32_t)d[EM_CONV_I_OUT_ZP],
                          (int32_t)d[EM_CONV_I_ACT_MIN], (int32_t)d[EM_CONV_I_ACT_MAX], (int32_t)d[EM_CONV_I_MODE],
                          (const double*)p->ptr[EM_CONV_P_DOUBLE_SCALES], (const float*)p->ptr[EM_CONV_P_FLOAT_SCALES]};
    const em_sparse_w s = {(const int32_t*)p->ptr[EM_SPARSE_P_GROUP_START], (const int32_t*)p->ptr[EM_SPARSE_P_BLOCK_K],
                           p->ptr[EM_CONV_P_WEIGHTS]};
    const int64_t K = d[EM_CONV_I_KH] * d[EM_CONV_I_KW] * d[EM_CONV_I_IC], OC = d[EM_CONV_I_OC];
    const int64_t P = d[EM_CONV_I_OH] * d[EM_CONV_I_OW], chunk = d[EM_CONV_I_CHUNK];
    for (int64_t b = 0; b < d[EM_CONV_I_N]; b++) {
        if (d[EM_CONV_I_DIRECT]) {
            em_sparse_gemm_scalar(in + b * P * K, K, P, K, &s, OC, &rq, out + b * P * OC, OC);
            continue;
        }
        for (int64_t first = 0; first < P; first += chunk) {
            const int64_t rows = P - first < chunk ? P - first : chunk;
            em_im2col_int8_t(in, d, b, first, rows, (int8_t)d[EM_CONV_I_IN_ZP], col);
            em_sparse_gemm_scalar(col, K, rows, K, &s, OC, &rq, out + (b * P + first) * OC, OC);
        }
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
static inline int32_t em_sparse_load4(const void* p) { int32_t v; memcpy(&v, p, 4); return v; }

/* The run of GEMM rows from row m that lie a constant stride apart (em_gemm_rows: plain rows lda apart, or output
 * pixels first + m .. up to the end of their output row in a padded image): where it starts, the stride, and how
 * many rows (so a tile's rows are a0 + r * step, without a division per row).  The vector kernels' block_k are
 * byte offsets from a row's start. */
static inline int64_t em_sparse_run(const em_gemm_rows* A, int64_t m, int64_t M, const uint8_t** a0, int64_t* step) {
    if (!A->OW) { *a0 = A->base + m * A->lda; *step = A->lda; return M - m; }
    const int64_t pix = A->first + m, ox = pix % A->OW, left = A->OW - ox;
    *a0 = A->base + pix / A->OW * A->row_step + ox * A->col_step;
    *step = A->col_step;
    return left < M - m ? left : M - m;
}

/* A group's output constants, read once: with few nonzero blocks per pixel, requantizing is most of the work. */
typedef struct {
    em_mbqm16 q;
    __m512i zp, lo, hi;          /* output zero point, activation bounds */
    int clamp_lo, clamp_hi;      /* bounds inside [-128, 127] (else the saturating narrowing clamps alone) */
    int double_rounding;         /* the default mode: requantized here; the others through em_vnni_requant16 */
} em_sparse_out16;

EM_VNNI_TARGET static inline em_sparse_out16 em_sparse_out_consts(const em_vnni_gemm* g, int64_t n) {
    em_sparse_out16 o;
    o.q = em_vnni_consts(g, n);
    o.zp = _mm512_set1_epi32(g->out_zp);
    o.lo = _mm512_set1_epi32(g->act_min);
    o.hi = _mm512_set1_epi32(g->act_max);
    o.clamp_lo = g->act_min > -128;
    o.clamp_hi = g->act_max < 127;
    o.double_rounding = g->mode == EM_ROUND_DOUBLE;
    return o;
}

/* MR rows' sums to int8, all rows' independent chains side by side (the double-rounding mode; ldc == 16, a group
 * that is the whole output row: 4 rows packed into one 64-byte store). */
EM_VNNI_TARGET static inline __attribute__((always_inline)) void em_sparse_vnni_store_rows(
        __m512i* acc, const int MR, const em_vnni_gemm* g, int64_t n, __mmask16 cols, const em_sparse_out16* o,
        int8_t* C, int64_t ldc) {
    if (!o->double_rounding) {
        for (int r = 0; r < MR; r++) em_vnni_requant_store16(acc[r], g, n, C + r * ldc + n, cols, &o->q);
        return;
    }
    for (int r = 0; r < MR; r++) acc[r] = _mm512_add_epi32(em_mbqm_lanes_x16(acc[r], &o->q.l, o->q.any_left), o->zp);
    if (o->clamp_lo)
        for (int r = 0; r < MR; r++) acc[r] = _mm512_max_epi32(acc[r], o->lo);
    if (o->clamp_hi)
        for (int r = 0; r < MR; r++) acc[r] = _mm512_min_epi32(acc[r], o->hi);
    if (MR % 4 == 0 && ldc == 16 && cols == 0xFFFF) {
        /* packs work per 128-bit lane: lane L of the result holds rows 0-3's columns 4L .. 4L + 3; the permute
         * puts each row's 16 bytes together */
        const __m512i order = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
        for (int r = 0; r < MR; r += 4) {
            const __m512i words01 = _mm512_packs_epi32(acc[r], acc[r + 1]);
            const __m512i words23 = _mm512_packs_epi32(acc[r + 2], acc[r + 3]);
            const __m512i bytes = _mm512_permutexvar_epi32(order, _mm512_packs_epi16(words01, words23));
            _mm512_storeu_si512(C + r * 16 + n, bytes);
        }
        return;
    }
    for (int r = 0; r < MR; r++) {
        const __m128i bytes = _mm512_cvtsepi32_epi8(acc[r]);
        if (cols == 0xFFFF) _mm_storeu_si128((__m128i*)(C + r * ldc + n), bytes);
        else _mm_mask_storeu_epi8(C + r * ldc + n, cols, bytes);
    }
}

/* ---- AVX-512 VNNI: MR rows x 16 columns of one group; acc starts at the bias ------------------------------- */
EM_VNNI_TARGET static inline __attribute__((always_inline)) void em_sparse_vnni_tile(
        const uint8_t* a0, int64_t step, const int MR, const int32_t* ks, int64_t nb, const int8_t* w, __m512i bias,
        const em_vnni_gemm* g, int64_t n, __mmask16 cols, const em_sparse_out16* o, int8_t* C, int64_t ldc) {
    __m512i acc[8];
    for (int r = 0; r < MR; r++) acc[r] = bias;
    for (int64_t j = 0; j < nb; j++) {
        const __m512i wv = _mm512_loadu_si512(w + j * 64);
        const uint8_t* a = a0 + ks[j];
        for (int r = 0; r < MR; r++)
            acc[r] = _mm512_dpbusd_epi32(acc[r], _mm512_set1_epi32(em_sparse_load4(a + r * step)), wv);
    }
    em_sparse_vnni_store_rows(acc, MR, g, n, cols, o, C, ldc);
}

/* One row x 16 columns: four chains of blocks, so that vpdpbusd's latency overlaps (a GEMV has no other rows). */
EM_VNNI_TARGET static inline void em_sparse_vnni_row(const uint8_t* a, const int32_t* ks, int64_t nb, const int8_t* w,
                                                     __m512i bias, const em_vnni_gemm* g, int64_t n, __mmask16 cols,
                                                     const em_mbqm16* q, int8_t* c) {
    __m512i acc0 = bias, acc1 = _mm512_setzero_si512(), acc2 = acc1, acc3 = acc1;
    int64_t j = 0;
    for (; j + 4 <= nb; j += 4) {
        acc0 = _mm512_dpbusd_epi32(acc0, _mm512_set1_epi32(em_sparse_load4(a + ks[j])), _mm512_loadu_si512(w + j * 64));
        acc1 = _mm512_dpbusd_epi32(acc1, _mm512_set1_epi32(em_sparse_load4(a + ks[j + 1])),
                                   _mm512_loadu_si512(w + j * 64 + 64));
        acc2 = _mm512_dpbusd_epi32(acc2, _mm512_set1_epi32(em_sparse_load4(a + ks[j + 2])),
                                   _mm512_loadu_si512(w + j * 64 + 128));
        acc3 = _mm512_dpbusd_epi32(acc3, _mm512_set1_epi32(em_sparse_load4(a + ks[j + 3])),
                                   _mm512_loadu_si512(w + j * 64 + 192));
    }
    for (; j < nb; j++)
        acc0 = _mm512_dpbusd_epi32(acc0, _mm512_set1_epi32(em_sparse_load4(a + ks[j])), _mm512_loadu_si512(w + j * 64));
    /* int32 sums wrap alike in any order */
    const __m512i acc = _mm512_add_epi32(_mm512_add_epi32(acc0, acc1), _mm512_add_epi32(acc2, acc3));
    em_vnni_requant_store16(acc, g, n, c + n, cols, q);
}

EM_VNNI_TARGET static void em_sparse_gemm_vnni(const em_gemm_rows* A, int64_t M, const em_sparse_w* s,
                                              const em_vnni_gemm* g, int8_t* C, int64_t ldc) {
    const int8_t* W = (const int8_t*)s->w;
    for (int64_t n = 0; n < g->N; n += EM_SPARSE_COLS) {
        const int64_t grp = n / EM_SPARSE_COLS, left = g->N - n;
        const __mmask16 cols = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        const int32_t j0 = s->group_start[grp], nb = s->group_start[grp + 1] - j0;
        const int32_t* ks = s->block_k + j0;
        const int8_t* w = W + (int64_t)j0 * 64;
        const __m512i bias = _mm512_loadu_si512(g->bias + n);
        const em_sparse_out16 o = em_sparse_out_consts(g, n);
        for (int64_t m = 0; m < M;) {
            const uint8_t* a0;
            int64_t step;
            const int64_t end = m + em_sparse_run(A, m, M, &a0, &step);
            for (; m + 8 <= end; m += 8, a0 += 8 * step)
                em_sparse_vnni_tile(a0, step, 8, ks, nb, w, bias, g, n, cols, &o, C + m * ldc, ldc);
            if (m + 4 <= end) {
                em_sparse_vnni_tile(a0, step, 4, ks, nb, w, bias, g, n, cols, &o, C + m * ldc, ldc);
                m += 4;
                a0 += 4 * step;
            }
            for (; m < end; m++, a0 += step) em_sparse_vnni_row(a0, ks, nb, w, bias, g, n, cols, &o.q, C + m * ldc);
        }
    }
}

/* One slice of output pixels.  DIRECT 4: implicit GEMM over the image padded once as uint8 (block_k: offsets in
 * the padded image); 1: 1x1 rows, 0: im2col rows, both as uint8 Kp apart, a chunk at a time. */
EM_VNNI_TARGET static void em_conv2d_sparse_vnni_slice(const void* ctx, int64_t slice, int64_t nslices) {
    const em_params* p = (const em_params*)ctx;
    const int64_t* d = p->i;
    const int8_t* in = (const int8_t*)p->ptr[EM_CONV_P_INPUT];
    int8_t* out = (int8_t*)p->ptr[EM_CONV_P_OUTPUT];
    const int64_t K = d[EM_CONV_I_KH] * d[EM_CONV_I_KW] * d[EM_CONV_I_IC], OC = d[EM_CONV_I_OC];
    const int64_t Kp = d[EM_SPARSE_I_KP], P = d[EM_CONV_I_OH] * d[EM_CONV_I_OW], chunk = d[EM_CONV_I_CHUNK];
    const int64_t IC = d[EM_CONV_I_IC], mode = d[EM_CONV_I_DIRECT];
    const int64_t IWp = em_conv_padded_cols(d);
    const int64_t r0 = P * slice / nslices, r1 = P * (slice + 1) / nslices;
    uint8_t* scratch = (uint8_t*)p->ptr[EM_CONV_P_SCRATCH] + slice * d[EM_SPARSE_I_SLICE_BYTES];
    const em_sparse_w s = {(const int32_t*)p->ptr[EM_SPARSE_P_GROUP_START], (const int32_t*)p->ptr[EM_SPARSE_P_BLOCK_K],
                           p->ptr[EM_CONV_P_WEIGHTS]};
    const em_vnni_gemm g = {NULL, (const int32_t*)p->ptr[EM_CONV_P_BIAS], (const int32_t*)p->ptr[EM_CONV_P_MULT],
                            (const int32_t*)p->ptr[EM_CONV_P_SHIFT], (const double*)p->ptr[EM_CONV_P_DOUBLE_SCALES],
                            (const float*)p->ptr[EM_CONV_P_FLOAT_SCALES], OC, Kp, (int32_t)d[EM_CONV_I_OUT_ZP],
                            (int32_t)d[EM_CONV_I_ACT_MIN], (int32_t)d[EM_CONV_I_ACT_MAX], (int32_t)d[EM_CONV_I_MODE],
                            NULL};
    if (r1 <= r0) return;
    for (int64_t b = 0; b < d[EM_CONV_I_N]; b++) {
        const int8_t* img = in + b * d[EM_CONV_I_IH] * d[EM_CONV_I_IW] * IC;
        int8_t* o = out + b * P * OC;
        if (mode == 4) {        /* (the slice pads only the image rows its output rows read, as em_conv.h's) */
            int64_t pad_begin, pad_end;
            const int64_t skip = em_slice_padded_rows(d, r0, r1, &pad_begin, &pad_end);
            em_pad_rows_u8(img, d, pad_begin, pad_end, IWp, scratch);
            const em_gemm_rows rows = {scratch, 0, d[EM_CONV_I_OW], d[EM_CONV_I_SH] * IWp * IC, d[EM_CONV_I_SW] * IC,
                                       1, 0, 0, r0 - skip};
            em_sparse_gemm_vnni(&rows, r1 - r0, &s, &g, o + r0 * OC, OC);
            continue;
        }
        const em_gemm_rows rows = {scratch, Kp, 0, 0, 0, 1, 0, 0, 0};
        for (int64_t first = r0; first < r1; first += chunk) {
            const int64_t count = r1 - first < chunk ? r1 - first : chunk;
            if (mode == 1) em_pack_rows_u8(img + first * K, K, count, K, Kp, scratch);
            else em_im2col_u8(in, d, b, first, count, Kp, scratch);
            em_sparse_gemm_vnni(&rows, count, &s, &g, o + first * OC, OC);
        }
    }
}

static void em_conv2d_int8_sparse_vnni(const em_params* p) {
    em_parallel_run(p->i[EM_SPARSE_I_THREADS] > 1 ? p->i[EM_SPARSE_I_THREADS] : 1, em_conv2d_sparse_vnni_slice, p);
}

/* ---- AVX2: MR rows x 16 columns (two 8-lane halves); weights int16 [block][pair][16][2]; rows int16 --------- */
/* A group's output constants, read once (as em_sparse_out16). */
typedef struct {
    em_mbqm8_lanes q[2];
    __m256i bias[2], zp, lo, hi;
    int any_left, clamp_lo, clamp_hi, double_rounding;
} em_sparse_out8x2;

EM_AVX2_TARGET static inline em_sparse_out8x2 em_sparse_avx2_consts(const em_avx2_gemm* g, int64_t n) {
    em_sparse_out8x2 o;
    o.any_left = 0;
    for (int h = 0; h < 2; h++) {
        const __m256i shift = _mm256_loadu_si256((const __m256i*)(g->shift + n + 8 * h));
        o.q[h] = em_mbqm8_consts(_mm256_loadu_si256((const __m256i*)(g->mult + n + 8 * h)), shift);
        o.any_left |= !_mm256_testz_si256(o.q[h].left, o.q[h].left);
        o.bias[h] = _mm256_loadu_si256((const __m256i*)(g->bias + n + 8 * h));
    }
    o.zp = _mm256_set1_epi32(g->out_zp);
    o.lo = _mm256_set1_epi32(g->act_min);
    o.hi = _mm256_set1_epi32(g->act_max);
    o.clamp_lo = g->act_min > -128;
    o.clamp_hi = g->act_max < 127;
    o.double_rounding = g->mode == EM_ROUND_DOUBLE;
    return o;
}

/* One row's 16 sums (bias not included) to int8: both halves narrowed together, one 16-byte store. */
EM_AVX2_TARGET static inline __attribute__((always_inline)) void em_sparse_avx2_store16(
        __m256i lo, __m256i hi, const em_avx2_gemm* g, int64_t n, const em_sparse_out8x2* o, int8_t* c) {
    const int64_t left = g->N - n;
    if (!o->double_rounding || left < 16) {
        em_avx2_store8(lo, g, n, c, left < 8 ? left : 8, &o->q[0]);
        if (left > 8) em_avx2_store8(hi, g, n + 8, c + 8, left - 8, &o->q[1]);
        return;
    }
    __m256i v0 = em_mbqm_lanes_x8(_mm256_add_epi32(lo, o->bias[0]), &o->q[0], o->any_left);
    __m256i v1 = em_mbqm_lanes_x8(_mm256_add_epi32(hi, o->bias[1]), &o->q[1], o->any_left);
    v0 = _mm256_add_epi32(v0, o->zp);
    v1 = _mm256_add_epi32(v1, o->zp);
    if (o->clamp_lo) {
        v0 = _mm256_max_epi32(v0, o->lo);
        v1 = _mm256_max_epi32(v1, o->lo);
    }
    if (o->clamp_hi) {
        v0 = _mm256_min_epi32(v0, o->hi);
        v1 = _mm256_min_epi32(v1, o->hi);
    }
    /* packs per 128-bit lane: bytes [v0 0-3, v1 0-3, v0 0-3, v1 0-3 | v0 4-7, v1 4-7, ...]; dwords 0 4 1 5 */
    const __m256i p8 = _mm256_packs_epi16(_mm256_packs_epi32(v0, v1), _mm256_packs_epi32(v0, v1));
    const __m256i bytes = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 0, 4, 1, 5));
    _mm_storeu_si128((__m128i*)c, _mm256_castsi256_si128(bytes));
}

EM_AVX2_TARGET static inline __attribute__((always_inline)) void em_sparse_avx2_tile(
        const uint8_t* a0, int64_t step, const int MR, const int32_t* ks, int64_t nb, const int16_t* w,
        const em_avx2_gemm* g, int64_t n, const em_sparse_out8x2* o, int8_t* C, int64_t ldc) {
    __m256i lo[4], hi[4];
    for (int r = 0; r < MR; r++) lo[r] = hi[r] = _mm256_setzero_si256();
    for (int64_t j = 0; j < nb; j++) {
        const int16_t* wj = w + j * 64;
        const __m256i w0l = _mm256_loadu_si256((const __m256i*)wj), w0h = _mm256_loadu_si256((const __m256i*)(wj + 16));
        const __m256i w1l = _mm256_loadu_si256((const __m256i*)(wj + 32));
        const __m256i w1h = _mm256_loadu_si256((const __m256i*)(wj + 48));
        const uint8_t* a = a0 + ks[j];
        for (int r = 0; r < MR; r++) {
            const __m256i p0 = _mm256_set1_epi32(em_sparse_load4(a + r * step));
            const __m256i p1 = _mm256_set1_epi32(em_sparse_load4(a + r * step + 4));
            lo[r] = _mm256_add_epi32(lo[r], _mm256_add_epi32(_mm256_madd_epi16(p0, w0l), _mm256_madd_epi16(p1, w1l)));
            hi[r] = _mm256_add_epi32(hi[r], _mm256_add_epi32(_mm256_madd_epi16(p0, w0h), _mm256_madd_epi16(p1, w1h)));
        }
    }
    for (int r = 0; r < MR; r++) em_sparse_avx2_store16(lo[r], hi[r], g, n, o, C + r * ldc + n);
}

EM_AVX2_TARGET static void em_sparse_gemm_avx2(const em_gemm_rows* A, int64_t M, const em_sparse_w* s,
                                              const em_avx2_gemm* g, int8_t* C, int64_t ldc) {
    const int16_t* W = (const int16_t*)s->w;
    for (int64_t n = 0; n < g->N; n += EM_SPARSE_COLS) {
        const int64_t grp = n / EM_SPARSE_COLS;
        const int32_t j0 = s->group_start[grp], nb = s->group_start[grp + 1] - j0;
        const int32_t* ks = s->block_k + j0;
        const int16_t* w = W + (int64_t)j0 * 64;
        const em_sparse_out8x2 o = em_sparse_avx2_consts(g, n);
        for (int64_t m = 0; m < M;) {
            const uint8_t* a0;
            int64_t step;
            const int64_t end = m + em_sparse_run(A, m, M, &a0, &step);
            for (; m + 4 <= end; m += 4, a0 += 4 * step)
                em_sparse_avx2_tile(a0, step, 4, ks, nb, w, g, n, &o, C + m * ldc, ldc);
            for (; m < end; m++, a0 += step) em_sparse_avx2_tile(a0, step, 1, ks, nb, w, g, n, &o, C + m * ldc, ldc);
        }
    }
}

/* One slice of output pixels, as the VNNI one with int16 rows (x sign-extended; padding taps in_zp): DIRECT 4 the
 * padded image as int16; 1 and 0: a chunk of K int8 im2col rows (64-byte aligned; 0 only), then as int16. */
EM_AVX2_TARGET static void em_conv2d_sparse_avx2_slice(const void* ctx, int64_t slice, int64_t nslices) {
    const em_params* p = (const em_params*)ctx;
    const int64_t* d = p->i;
    const int8_t* in = (const int8_t*)p->ptr[EM_CONV_P_INPUT];
    int8_t* out = (int8_t*)p->ptr[EM_CONV_P_OUTPUT];
    const int64_t K = d[EM_CONV_I_KH] * d[EM_CONV_I_KW] * d[EM_CONV_I_IC], OC = d[EM_CONV_I_OC];
    const int64_t Kp = d[EM_SPARSE_I_KP], P = d[EM_CONV_I_OH] * d[EM_CONV_I_OW], chunk = d[EM_CONV_I_CHUNK];
    const int64_t IC = d[EM_CONV_I_IC], mode = d[EM_CONV_I_DIRECT];
    const int64_t IWp = em_conv_padded_cols(d);
    const int64_t r0 = P * slice / nslices, r1 = P * (slice + 1) / nslices;
    uint8_t* scratch = (uint8_t*)p->ptr[EM_CONV_P_SCRATCH] + slice * d[EM_SPARSE_I_SLICE_BYTES];
    int8_t* col = (int8_t*)scratch;
    int16_t* rows16 = (int16_t*)(scratch + (mode == 0 ? (chunk * K + 63) / 64 * 64 : 0));
    const em_sparse_w s = {(const int32_t*)p->ptr[EM_SPARSE_P_GROUP_START], (const int32_t*)p->ptr[EM_SPARSE_P_BLOCK_K],
                           p->ptr[EM_CONV_P_WEIGHTS]};
    const em_avx2_gemm g = em_conv_avx2_gemm(p, NULL, OC, Kp);
    if (r1 <= r0) return;
    for (int64_t b = 0; b < d[EM_CONV_I_N]; b++) {
        const int8_t* img = in + b * d[EM_CONV_I_IH] * d[EM_CONV_I_IW] * IC;
        int8_t* o = out + b * P * OC;
        if (mode == 4) {        /* (the slice pads only the image rows its output rows read, as em_conv.h's) */
            int64_t pad_begin, pad_end;
            const int64_t skip = em_slice_padded_rows(d, r0, r1, &pad_begin, &pad_end);
            em_pad_rows_s16(img, d, pad_begin, pad_end, IWp, (int16_t*)scratch);
            const em_gemm_rows rows = {scratch, 0, d[EM_CONV_I_OW], 2 * d[EM_CONV_I_SH] * IWp * IC,
                                       2 * d[EM_CONV_I_SW] * IC, 1, 0, 0, r0 - skip};
            em_sparse_gemm_avx2(&rows, r1 - r0, &s, &g, o + r0 * OC, OC);
            continue;
        }
        const em_gemm_rows rows = {(const uint8_t*)rows16, 2 * Kp, 0, 0, 0, 1, 0, 0, 0};
        for (int64_t first = r0; first < r1; first += chunk) {
            const int64_t count = r1 - first < chunk ? r1 - first : chunk;
            if (mode == 1) {
                em_pack_rows_s16(img + first * K, K, count, K, Kp, rows16);
            } else {
                em_im2col_int8_t(in, d, b, first, count, (int8_t)d[EM_CONV_I_IN_ZP], col);
                em_pack_rows_s16(col, K, count, K, Kp, rows16);
            }
            em_sparse_gemm_avx2(&rows, count, &s, &g, o + first * OC, OC);
        }
    }
}

static void em_conv2d_int8_sparse_avx2(const em_params* p) {
    em_parallel_run(p->i[EM_SPARSE_I_THREADS] > 1 ? p->i[EM_SPARSE_I_THREADS] : 1, em_conv2d_sparse_avx2_slice, p);
}
#else
/* never selected: the loader picks these kernels only when the CPU reports the ISA */
static void em_conv2d_int8_sparse_vnni(const em_params* p) { (void)p; }
static void em_conv2d_int8_sparse_avx2(const em_params* p) { (void)p; }
#endif
#endif
