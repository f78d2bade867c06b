/* FULLY_CONNECTED, int8 and float32: one GEMM over the input rows (em_gemm.h portable, em_gemm_vnni.h AVX-512
 * VNNI, em_gemm_avx2.h AVX2). */
#ifndef EM_FULLY_CONNECTED_H
#define EM_FULLY_CONNECTED_H
#include "em_params.h"
#include "em_gemm.h"
#include "em_gemm_vnni.h"
#include "em_gemm_avx2.h"

/* em_fully_connected_int8:
 * ptr: input [rows][depth], weights [units][depth], bias (zero point folded in), output, per-column multipliers and
 *      shifts, scratch (unused), double scales (mode EM_REQUANT_DOUBLE_SCALE), float scales (mode EM_REQUANT_FLOAT)
 * i:   rows, depth (K), units (N), out_zp, act_min, act_max, requantization mode (em_requant.h) */
enum { EM_FC_P_INPUT, EM_FC_P_WEIGHTS, EM_FC_P_BIAS, EM_FC_P_OUTPUT, EM_FC_P_MULT, EM_FC_P_SHIFT, EM_FC_P_SCRATCH,
       EM_FC_P_DOUBLE_SCALES, EM_FC_P_FLOAT_SCALES, EM_FC_P_COUNT };
enum { EM_FC_I_ROWS, EM_FC_I_DEPTH, EM_FC_I_UNITS, EM_FC_I_OUT_ZP, EM_FC_I_ACT_MIN, EM_FC_I_ACT_MAX, EM_FC_I_MODE,
       EM_FC_I_COUNT };
enum { EM_FC_F_COUNT = 0 };

/* em_fully_connected_int8_vnni / _avx2: the layout above with 1 the weights packed for em_gemm_vnni.h (16c4) or
 * em_gemm_avx2.h (int16), 2 the bias corrected for that GEMM, per-column arrays padded to its column block, 6 the
 * scratch (chunk rows of Kp uint8 + 64 bytes, or of Kp int16); then Kp (the packed depth), rows per chunk and the
 * weights' zero point (VNNI, uint8 models; 0 otherwise: then the scratch starts with em_fc_vnni_corr_bytes of row
 * corrections, em_vnni_row_sums). */
enum { EM_FC_PACKED_I_KP = EM_FC_I_MODE + 1, EM_FC_PACKED_I_CHUNK, EM_FC_PACKED_I_W_ZP, EM_FC_PACKED_I_COUNT };

static inline int64_t em_fc_vnni_corr_bytes(const int64_t* d) {
    return d[EM_FC_PACKED_I_W_ZP] ? (d[EM_FC_PACKED_I_CHUNK] * 4 + 63) / 64 * 64 : 0;
}
enum { EM_FC_PACKED_P_COUNT = EM_FC_P_COUNT, EM_FC_PACKED_F_COUNT = 0 };

/* em_fully_connected_f32: the first four pointers (bias may be NULL) and three integers of the int8 layout, and
 * f: act_min, act_max. */
enum { EM_FC_F32_P_COUNT = EM_FC_P_OUTPUT + 1, EM_FC_F32_I_COUNT = EM_FC_I_UNITS + 1 };
enum { EM_FC_F32_F_ACT_MIN, EM_FC_F32_F_ACT_MAX, EM_FC_F32_F_COUNT };

#if defined(__x86_64__) && defined(__GNUC__)
static void em_fully_connected_int8_vnni(const em_params* p) {
    const int64_t* d = p->i;
    const int64_t M = d[EM_FC_I_ROWS], K = d[EM_FC_I_DEPTH], Kp = d[EM_FC_PACKED_I_KP];
    const int64_t chunk = d[EM_FC_PACKED_I_CHUNK];
    em_vnni_gemm g = {(const int8_t*)p->ptr[EM_FC_P_WEIGHTS], (const int32_t*)p->ptr[EM_FC_P_BIAS],
                      (const int32_t*)p->ptr[EM_FC_P_MULT], (const int32_t*)p->ptr[EM_FC_P_SHIFT],
                      (const double*)p->ptr[EM_FC_P_DOUBLE_SCALES], (const float*)p->ptr[EM_FC_P_FLOAT_SCALES],
                      d[EM_FC_I_UNITS], Kp, (int32_t)d[EM_FC_I_OUT_ZP], (int32_t)d[EM_FC_I_ACT_MIN],
                      (int32_t)d[EM_FC_I_ACT_MAX], (int32_t)d[EM_FC_I_MODE]};
    const int8_t* in = (const int8_t*)p->ptr[EM_FC_P_INPUT];
    int8_t* out = (int8_t*)p->ptr[EM_FC_P_OUTPUT];
    const int32_t w_zp = (int32_t)d[EM_FC_PACKED_I_W_ZP];
    int32_t* corr = (int32_t*)p->ptr[EM_FC_P_SCRATCH];
    uint8_t* packed = (uint8_t*)p->ptr[EM_FC_P_SCRATCH] + em_fc_vnni_corr_bytes(d);
    g.row_corr = w_zp ? corr : NULL;
    for (int64_t first = 0; first < M; first += chunk) {
        int64_t rows = M - first < chunk ? M - first : chunk;
        em_pack_rows_u8(in + first * K, K, rows, K, Kp, packed);
        if (w_zp) {
            em_vnni_rows plain = {packed, Kp, 0, 0, 0, 1, 0, Kp / 4, 0};
            em_vnni_row_sums(&plain, rows, K, w_zp, corr);
        }
        em_gemm_u8s8_vnni(packed, rows, &g, out + first * d[EM_FC_I_UNITS], d[EM_FC_I_UNITS]);
    }
}

/* AVX2 variant (CPUs without VNNI) */
static void em_fully_connected_int8_avx2(const em_params* p) {
    const int64_t* d = p->i;
    const int64_t M = d[EM_FC_I_ROWS], K = d[EM_FC_I_DEPTH], Kp = d[EM_FC_PACKED_I_KP];
    const int64_t chunk = d[EM_FC_PACKED_I_CHUNK];
    em_avx2_gemm g = {(const int16_t*)p->ptr[EM_FC_P_WEIGHTS], (const int32_t*)p->ptr[EM_FC_P_BIAS],
                      (const int32_t*)p->ptr[EM_FC_P_MULT], (const int32_t*)p->ptr[EM_FC_P_SHIFT],
                      (const double*)p->ptr[EM_FC_P_DOUBLE_SCALES], (const float*)p->ptr[EM_FC_P_FLOAT_SCALES],
                      d[EM_FC_I_UNITS], Kp, (int32_t)d[EM_FC_I_OUT_ZP], (int32_t)d[EM_FC_I_ACT_MIN],
                      (int32_t)d[EM_FC_I_ACT_MAX], (int32_t)d[EM_FC_I_MODE]};
    const int8_t* in = (const int8_t*)p->ptr[EM_FC_P_INPUT];
    int8_t* out = (int8_t*)p->ptr[EM_FC_P_OUTPUT];
    int16_t* rows16 = (int16_t*)p->ptr[EM_FC_P_SCRATCH];
    for (int64_t first = 0; first < M; first += chunk) {
        int64_t rows = M - first < chunk ? M - first : chunk;
        em_pack_rows_s16(in + first * K, K, rows, K, Kp, rows16);
        em_gemm_s16_avx2(rows16, Kp, rows, &g, out + first * d[EM_FC_I_UNITS], d[EM_FC_I_UNITS]);
    }
}
#else
/* never selected: the loader picks these kernels only when the CPU reports the ISA */
static void em_fully_connected_int8_avx2(const em_params* p) { (void)p; }
static void em_fully_connected_int8_vnni(const em_params* p) { (void)p; }
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
