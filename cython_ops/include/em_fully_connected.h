/* FULLY_CONNECTED, int8 and float32: one GEMM over the input rows (em_gemm.h portable, em_gemm_vnni.h AVX-512
 * VNNI, em_gemm_avx2.h AVX2). */
#ifndef EM_FULLY_CONNECTED_H
#define EM_FULLY_CONNECTED_H
#include "em_params.h"
#include "em_gemm.h"
#include "em_gemm_vnni.h"
#include "em_gemm_avx2.h"
#include "em_gemv_avx2.h"
#include "em_gemm_avxvnni.h"
#include "em_threads.h"

/* em_fully_connected_int8:
 * ptr: input [rows][depth], weights [units][depth], bias (zero point folded in), output, per-column multipliers and
 *      shifts, scratch (unused), double scales (mode EM_REQUANT_DOUBLE_SCALE), float scales (mode EM_REQUANT_FLOAT)
 * i:   rows, depth (K), units (N), out_zp, act_min, act_max, requantization mode (em_requant.h) */
enum { EM_FC_P_INPUT, EM_FC_P_WEIGHTS, EM_FC_P_BIAS, EM_FC_P_OUTPUT, EM_FC_P_MULT, EM_FC_P_SHIFT, EM_FC_P_SCRATCH,
       EM_FC_P_DOUBLE_SCALES, EM_FC_P_FLOAT_SCALES, EM_FC_P_COUNT };
enum { EM_FC_I_ROWS, EM_FC_I_DEPTH, EM_FC_I_UNITS, EM_FC_I_OUT_ZP, EM_FC_I_ACT_MIN, EM_FC_I_ACT_MAX, EM_FC_I_MODE,
       EM_FC_I_COUNT };
enum { EM_FC_F_COUNT = 0 };

/* em_fully_connected_int8_vnni / _avxvnni / _avx2: the layout above with 1 the weights packed for em_gemm_vnni.h
 * (16c4, read by both VNNI forms) or em_gemm_avx2.h (int16), 2 the bias corrected for that GEMM, per-column arrays
 * padded to its column block, 6 the scratch; then Kp (the packed depth), rows per chunk, the weights' zero point
 * (VNNI, uint8 models; 0 otherwise: then each slice's scratch starts with em_fc_vnni_corr_bytes of row corrections,
 * em_vnni_row_sums), threads and slice_bytes: each of `threads` slices takes a share of the rows (when there are
 * 4 or more per slice) or of the 16-column blocks, with its own scratch of slice_bytes (chunk rows of Kp uint8 + 64
 * bytes, or of Kp int16). */
enum { EM_FC_PACKED_I_KP = EM_FC_I_MODE + 1, EM_FC_PACKED_I_CHUNK, EM_FC_PACKED_I_W_ZP, EM_FC_PACKED_I_THREADS,
       EM_FC_PACKED_I_SLICE_BYTES, EM_FC_PACKED_I_COUNT };

static inline int64_t em_fc_vnni_corr_bytes(const int64_t* d) {
    return d[EM_FC_PACKED_I_W_ZP] ? (d[EM_FC_PACKED_I_CHUNK] * 4 + 63) / 64 * 64 : 0;
}
enum { EM_FC_PACKED_P_COUNT = EM_FC_P_COUNT, EM_FC_PACKED_F_COUNT = 0 };

/* em_fully_connected_f32: the first four pointers (bias may be NULL) and three integers of the int8 layout, and
 * f: act_min, act_max. */
enum { EM_FC_F32_P_COUNT = EM_FC_P_OUTPUT + 1, EM_FC_F32_I_COUNT = EM_FC_I_UNITS + 1 };
enum { EM_FC_F32_F_ACT_MIN, EM_FC_F32_F_ACT_MAX, EM_FC_F32_F_COUNT };

/* The rows [m0, m1) and 16-column blocks [c0, c1) (in columns) of one FC slice. */
static inline void em_fc_slice_range(const int64_t* d, int64_t slice, int64_t nslices, int64_t* m0, int64_t* m1,
                                     int64_t* c0, int64_t* c1) {
    const int64_t M = d[EM_FC_I_ROWS], N = d[EM_FC_I_UNITS], blocks = (N + 15) / 16;
    *m0 = 0; *m1 = M; *c0 = 0; *c1 = N;
    if (nslices <= 1) return;
    if (M >= 4 * nslices) {
        *m0 = M * slice / nslices;
        *m1 = M * (slice + 1) / nslices;
    } else {
        *c0 = 16 * (blocks * slice / nslices);
        *c1 = 16 * (blocks * (slice + 1) / nslices);
        if (*c1 > N) *c1 = N;
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
typedef void (*em_fc_u8_gemm_fn)(const uint8_t* A, int64_t M, const em_vnni_gemm* g, int8_t* C, int64_t ldc);
typedef struct { const em_params* p; em_fc_u8_gemm_fn gemm; } em_fc_u8_call;

/* One slice of the VNNI FC: its rows (packed a chunk at a time as uint8 x + 128) times its columns. */
EM_AVX2_TARGET static void em_fc_u8_slice(const void* ctx, int64_t slice, int64_t nslices) {
    const em_fc_u8_call* call = (const em_fc_u8_call*)ctx;
    const em_params* p = call->p;
    const int64_t* d = p->i;
    const int64_t K = d[EM_FC_I_DEPTH], Kp = d[EM_FC_PACKED_I_KP], N = d[EM_FC_I_UNITS];
    const int64_t chunk = d[EM_FC_PACKED_I_CHUNK];
    int64_t m0, m1, c0, c1;
    em_fc_slice_range(d, slice, nslices, &m0, &m1, &c0, &c1);
    if (m1 <= m0 || c1 <= c0) return;
    em_vnni_gemm g = {(const int8_t*)p->ptr[EM_FC_P_WEIGHTS] + c0 * Kp, (const int32_t*)p->ptr[EM_FC_P_BIAS] + c0,
                      (const int32_t*)p->ptr[EM_FC_P_MULT] + c0, (const int32_t*)p->ptr[EM_FC_P_SHIFT] + c0,
                      (const double*)p->ptr[EM_FC_P_DOUBLE_SCALES] + c0,
                      (const float*)p->ptr[EM_FC_P_FLOAT_SCALES] + c0, c1 - c0, Kp, (int32_t)d[EM_FC_I_OUT_ZP],
                      (int32_t)d[EM_FC_I_ACT_MIN], (int32_t)d[EM_FC_I_ACT_MAX], (int32_t)d[EM_FC_I_MODE], NULL};
    const int8_t* in = (const int8_t*)p->ptr[EM_FC_P_INPUT];
    int8_t* out = (int8_t*)p->ptr[EM_FC_P_OUTPUT] + c0;
    const int32_t w_zp = (int32_t)d[EM_FC_PACKED_I_W_ZP];
    uint8_t* scratch = (uint8_t*)p->ptr[EM_FC_P_SCRATCH] + slice * d[EM_FC_PACKED_I_SLICE_BYTES];
    int32_t* corr = (int32_t*)scratch;
    uint8_t* packed = scratch + em_fc_vnni_corr_bytes(d);
    g.row_corr = w_zp ? corr : NULL;
    for (int64_t first = m0; first < m1; first += chunk) {
        const int64_t rows = m1 - first < chunk ? m1 - first : chunk;
        em_pack_rows_u8(in + first * K, K, rows, K, Kp, packed);
        if (w_zp) {
            const em_gemm_rows plain = {packed, Kp, 0, 0, 0, 1, 0, Kp / 4, 0};
            em_vnni_row_sums(&plain, rows, K, w_zp, corr);
        }
        call->gemm(packed, rows, &g, out + first * N, N);
    }
}

static void em_fc_u8_run(const em_params* p, em_fc_u8_gemm_fn gemm) {
    const em_fc_u8_call call = {p, gemm};
    const int64_t threads = p->i[EM_FC_PACKED_I_THREADS];
    em_parallel_run(threads > 1 ? threads : 1, em_fc_u8_slice, &call);
}

static void em_fully_connected_int8_vnni(const em_params* p) { em_fc_u8_run(p, em_gemm_u8s8_vnni); }

/* AVX-VNNI: the same packing on 256-bit tiles (em_gemm_avxvnni.h). */
#if EM_HAVE_AVXVNNI
static void em_fully_connected_int8_avxvnni(const em_params* p) { em_fc_u8_run(p, em_gemm_u8s8_avxvnni); }
#else
static void em_fully_connected_int8_avxvnni(const em_params* p) { (void)p; }   /* never selected (em_isa.h) */
#endif

/* AVX2 variant (CPUs without VNNI): int16 rows and panels of 8 columns; with int8_weights (the one- or two-row
 * em_fully_connected_int8_avx2_gemv) the same panels stored as int8 (weights without a zero point), read by
 * em_gemv_s8w_avx2 (em_gemv_avx2.h). */
EM_AVX2_TARGET static inline void em_fc_avx2_slice(const em_params* p, int64_t slice, int64_t nslices,
                                                   int int8_weights) {
    const int64_t* d = p->i;
    const int64_t K = d[EM_FC_I_DEPTH], Kp = d[EM_FC_PACKED_I_KP], N = d[EM_FC_I_UNITS];
    const int64_t chunk = d[EM_FC_PACKED_I_CHUNK];
    int64_t m0, m1, c0, c1;
    em_fc_slice_range(d, slice, nslices, &m0, &m1, &c0, &c1);
    if (m1 <= m0 || c1 <= c0) return;
    em_avx2_gemm g = {int8_weights ? NULL : (const int16_t*)p->ptr[EM_FC_P_WEIGHTS] + c0 * Kp,
                      (const int32_t*)p->ptr[EM_FC_P_BIAS] + c0,
                      (const int32_t*)p->ptr[EM_FC_P_MULT] + c0, (const int32_t*)p->ptr[EM_FC_P_SHIFT] + c0,
                      (const double*)p->ptr[EM_FC_P_DOUBLE_SCALES] + c0,
                      (const float*)p->ptr[EM_FC_P_FLOAT_SCALES] + c0, c1 - c0, Kp, (int32_t)d[EM_FC_I_OUT_ZP],
                      (int32_t)d[EM_FC_I_ACT_MIN], (int32_t)d[EM_FC_I_ACT_MAX], (int32_t)d[EM_FC_I_MODE]};
    const int8_t* w8 = (const int8_t*)p->ptr[EM_FC_P_WEIGHTS] + c0 * Kp;
    const int8_t* in = (const int8_t*)p->ptr[EM_FC_P_INPUT];
    int8_t* out = (int8_t*)p->ptr[EM_FC_P_OUTPUT] + c0;
    int16_t* rows16 = (int16_t*)((uint8_t*)p->ptr[EM_FC_P_SCRATCH] + slice * d[EM_FC_PACKED_I_SLICE_BYTES]);
    for (int64_t first = m0; first < m1; first += chunk) {
        const int64_t rows = m1 - first < chunk ? m1 - first : chunk;
        em_pack_rows_s16(in + first * K, K, rows, K, Kp, rows16);
        if (int8_weights) em_gemv_s8w_avx2(rows16, Kp, rows, &g, w8, out + first * N, N);
        else em_gemm_s16_avx2(rows16, Kp, rows, &g, out + first * N, N);
    }
}

EM_AVX2_TARGET static void em_fc_s16_slice(const void* ctx, int64_t slice, int64_t nslices) {
    em_fc_avx2_slice((const em_params*)ctx, slice, nslices, 0);
}

EM_AVX2_TARGET static void em_fc_s8w_slice(const void* ctx, int64_t slice, int64_t nslices) {
    em_fc_avx2_slice((const em_params*)ctx, slice, nslices, 1);
}

static void em_fully_connected_int8_avx2(const em_params* p) {
    const int64_t threads = p->i[EM_FC_PACKED_I_THREADS];
    em_parallel_run(threads > 1 ? threads : 1, em_fc_s16_slice, p);
}

static void em_fully_connected_int8_avx2_gemv(const em_params* p) {
    const int64_t threads = p->i[EM_FC_PACKED_I_THREADS];
    em_parallel_run(threads > 1 ? threads : 1, em_fc_s8w_slice, p);
}
#else
/* never selected: the loader picks these kernels only when the CPU reports the ISA */
static void em_fully_connected_int8_avx2(const em_params* p) { (void)p; }
static void em_fully_connected_int8_avx2_gemv(const em_params* p) { (void)p; }
static void em_fully_connected_int8_vnni(const em_params* p) { (void)p; }
static void em_fully_connected_int8_avxvnni(const em_params* p) { (void)p; }
#endif

static void em_fully_connected_int8(const em_params* p) {
    const int64_t* d = p->i;
    em_requant_cols rq = {(const int32_t*)p->ptr[EM_FC_P_BIAS], (const int32_t*)p->ptr[EM_FC_P_MULT],
                          (const int32_t*)p->ptr[EM_FC_P_SHIFT], (int32_t)d[EM_FC_I_OUT_ZP],
                          (int32_t)d[EM_FC_I_ACT_MIN], (int32_t)d[EM_FC_I_ACT_MAX], (int32_t)d[EM_FC_I_MODE],
                          (const double*)p->ptr[EM_FC_P_DOUBLE_SCALES], (const float*)p->ptr[EM_FC_P_FLOAT_SCALES]};
    em_gemm_s8_requant((const int8_t*)p->ptr[EM_FC_P_INPUT], d[EM_FC_I_DEPTH], (const int8_t*)p->ptr[EM_FC_P_WEIGHTS],
                       d[EM_FC_I_ROWS], d[EM_FC_I_UNITS], d[EM_FC_I_DEPTH], (int8_t*)p->ptr[EM_FC_P_OUTPUT],
                       d[EM_FC_I_UNITS], &rq);
}

/* em_fully_connected_int8 with int16 weights w - w_zp (uint8 models' asymmetric weights), same layout. */
static void em_fully_connected_int8_w16(const em_params* p) {
    const int64_t* d = p->i;
    em_requant_cols rq = {(const int32_t*)p->ptr[EM_FC_P_BIAS], (const int32_t*)p->ptr[EM_FC_P_MULT],
                          (const int32_t*)p->ptr[EM_FC_P_SHIFT], (int32_t)d[EM_FC_I_OUT_ZP],
                          (int32_t)d[EM_FC_I_ACT_MIN], (int32_t)d[EM_FC_I_ACT_MAX], (int32_t)d[EM_FC_I_MODE],
                          (const double*)p->ptr[EM_FC_P_DOUBLE_SCALES], (const float*)p->ptr[EM_FC_P_FLOAT_SCALES]};
    em_gemm_s8s16_requant((const int8_t*)p->ptr[EM_FC_P_INPUT], d[EM_FC_I_DEPTH],
                          (const int16_t*)p->ptr[EM_FC_P_WEIGHTS], d[EM_FC_I_ROWS], d[EM_FC_I_UNITS],
                          d[EM_FC_I_DEPTH], (int8_t*)p->ptr[EM_FC_P_OUTPUT], d[EM_FC_I_UNITS], &rq);
}

static void em_fully_connected_f32(const em_params* p) {
    const int64_t* d = p->i;
    em_gemm_f32((const float*)p->ptr[EM_FC_P_INPUT], d[EM_FC_I_DEPTH], (const float*)p->ptr[EM_FC_P_WEIGHTS],
                (const float*)p->ptr[EM_FC_P_BIAS], d[EM_FC_I_ROWS], d[EM_FC_I_UNITS], d[EM_FC_I_DEPTH],
                (float*)p->ptr[EM_FC_P_OUTPUT], d[EM_FC_I_UNITS], p->f[EM_FC_F32_F_ACT_MIN], p->f[EM_FC_F32_F_ACT_MAX]);
}
#endif
