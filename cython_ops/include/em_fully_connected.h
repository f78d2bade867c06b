/* FULLY_CONNECTED, int8 and float32: one GEMM over the input rows (em_gemm.h portable, em_gemm_vnni.h AVX-512
 * VNNI, em_gemm_avx2.h AVX2). */
#ifndef EM_FULLY_CONNECTED_H
#define EM_FULLY_CONNECTED_H
#include "em_params.h"
#include "em_gemm.h"
#include "em_gemm_vnni.h"
#include "em_gemm_avx2.h"

#if defined(__x86_64__) && defined(__GNUC__)
/* i: 0 rows, 1 K, 2 N, 3 out_zp, 4 act_min, 5 act_max, 6 mode, 7 Kp, 8 chunk rows */
static void em_fully_connected_int8_vnni(const em_params* p) {
    const int64_t* d = p->i;
    const int64_t M = d[0], K = d[1], Kp = d[7], chunk = d[8];
    em_vnni_gemm g = {(const int8_t*)p->ptr[1], (const int32_t*)p->ptr[2], (const int32_t*)p->ptr[4],
                      (const int32_t*)p->ptr[5], (const double*)p->ptr[7], (const float*)p->ptr[8], d[2], Kp,
                      (int32_t)d[3], (int32_t)d[4], (int32_t)d[5], (int32_t)d[6]};
    const int8_t* in = (const int8_t*)p->ptr[0];
    int8_t* out = (int8_t*)p->ptr[3];
    uint8_t* packed = (uint8_t*)p->ptr[6];
    for (int64_t first = 0; first < M; first += chunk) {
        int64_t rows = M - first < chunk ? M - first : chunk;
        em_pack_rows_u8(in + first * K, K, rows, K, Kp, packed);
        em_gemm_u8s8_vnni(packed, rows, &g, out + first * d[2], d[2]);
    }
}
/* AVX2 variant (CPUs without VNNI).  ptr: 0 input, 1 packed int16 weights (em_gemm_avx2.h), 2 bias
 * (bias - zp sum w, padded to a multiple of 8), 3 output, 4 mult, 5 shift, 6 scratch, 7 double scales,
 * 8 float scales (padded). */
/* i: 0 rows, 1 K, 2 N, 3 out_zp, 4 act_min, 5 act_max, 6 mode, 7 Kp, 8 chunk rows; scratch chunk x Kp int16 */
static void em_fully_connected_int8_avx2(const em_params* p) {
    const int64_t* d = p->i;
    const int64_t M = d[0], K = d[1], Kp = d[7], chunk = d[8];
    em_avx2_gemm g = {(const int16_t*)p->ptr[1], (const int32_t*)p->ptr[2], (const int32_t*)p->ptr[4],
                      (const int32_t*)p->ptr[5], (const double*)p->ptr[7], (const float*)p->ptr[8], d[2], Kp,
                      (int32_t)d[3], (int32_t)d[4], (int32_t)d[5], (int32_t)d[6]};
    const int8_t* in = (const int8_t*)p->ptr[0];
    int8_t* out = (int8_t*)p->ptr[3];
    int16_t* rows16 = (int16_t*)p->ptr[6];
    for (int64_t first = 0; first < M; first += chunk) {
        int64_t rows = M - first < chunk ? M - first : chunk;
        em_pack_rows_s16(in + first * K, K, rows, K, Kp, rows16);
        em_gemm_s16_avx2(rows16, Kp, rows, &g, out + first * d[2], d[2]);
    }
}
#else
/* never selected: the loader picks these kernels only when the CPU reports the ISA */
static void em_fully_connected_int8_avx2(const em_params* p) { (void)p; }
static void em_fully_connected_int8_vnni(const em_params* p) { (void)p; }
#endif

/* FULLY_CONNECTED: i: 0 rows, 1 K, 2 N, 3 out_zp, 4 act_min, 5 act_max, 6 mode;
 * ptr: 0 input, 1 weights [N][K], 2 bias, 3 output, 4 mult, 5 shift, 6 scratch (unused), 7 double scales,
 * 8 float scales */
static void em_fully_connected_int8(const em_params* p) {
    const int64_t* d = p->i;
    em_requant_cols rq = {(const int32_t*)p->ptr[2], (const int32_t*)p->ptr[4], (const int32_t*)p->ptr[5],
                          (int32_t)d[3], (int32_t)d[4], (int32_t)d[5], (int32_t)d[6], (const double*)p->ptr[7],
                          (const float*)p->ptr[8]};
    em_gemm_s8_requant((const int8_t*)p->ptr[0], d[1], (const int8_t*)p->ptr[1], d[0], d[2], d[1],
                       (int8_t*)p->ptr[3], d[2], &rq);
}

static void em_fully_connected_f32(const em_params* p) {
    const int64_t* d = p->i;
    em_gemm_f32((const float*)p->ptr[0], d[1], (const float*)p->ptr[1], (const float*)p->ptr[2], d[0], d[2], d[1],
                (float*)p->ptr[3], d[2], p->f[0], p->f[1]);
}
#endif
