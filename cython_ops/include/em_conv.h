/* CONV_2D, int8 and float32, NHWC: rows gathered by im2col (em_im2col.h), or read directly for a 1x1 conv, into
 * the GEMMs (em_gemm.h portable, em_gemm_vnni.h AVX-512 VNNI, threaded over output pixels, em_gemm_avx2.h AVX2). */
#ifndef EM_CONV_H
#define EM_CONV_H
#include "em_params.h"
#include "em_gemm.h"
#include "em_gemm_vnni.h"
#include "em_gemm_avx2.h"
#include "em_threads.h"
#include "em_im2col.h"

static void em_conv2d_int8(const em_params* p) {
    const int64_t* d = p->i;
    const int8_t* in = (const int8_t*)p->ptr[0];
    const int8_t* w = (const int8_t*)p->ptr[1];
    int8_t* out = (int8_t*)p->ptr[3];
    int8_t* col = (int8_t*)p->ptr[6];
    em_requant_cols rq = {(const int32_t*)p->ptr[2], (const int32_t*)p->ptr[4], (const int32_t*)p->ptr[5],
                          (int32_t)d[CI_OUTZP], (int32_t)d[CI_AMIN], (int32_t)d[CI_AMAX], (int32_t)d[CI_MODE],
                          (const double*)p->ptr[7], (const float*)p->ptr[8]};
    const int64_t K = d[CI_KH] * d[CI_KW] * d[CI_IC], OC = d[CI_OC];
    const int64_t P = d[CI_OH] * d[CI_OW], chunk = d[CI_CHUNK];
    const int8_t pad = (int8_t)d[CI_INZP];
    for (int64_t b = 0; b < d[CI_N]; b++) {
        if (d[CI_DIRECT]) {
            em_gemm_s8_requant(in + b * P * K, K, w, P, OC, K, out + b * P * OC, OC, &rq);
            continue;
        }
        for (int64_t first = 0; first < P; first += chunk) {
            int64_t rows = P - first < chunk ? P - first : chunk;
            em_im2col_int8_t(in, d, b, first, rows, pad, col);
            em_gemm_s8_requant(col, K, w, rows, OC, K, out + (b * P + first) * OC, OC, &rq);
        }
    }
}

static void em_conv2d_f32(const em_params* p) {
    const int64_t* d = p->i;
    const float* in = (const float*)p->ptr[0];
    const float* w = (const float*)p->ptr[1];
    const float* bias = (const float*)p->ptr[2];
    float* out = (float*)p->ptr[3];
    float* col = (float*)p->ptr[6];
    const int64_t K = d[CI_KH] * d[CI_KW] * d[CI_IC], OC = d[CI_OC];
    const int64_t P = d[CI_OH] * d[CI_OW], chunk = d[CI_CHUNK];
    for (int64_t b = 0; b < d[CI_N]; b++) {
        if (d[CI_DIRECT]) {
            em_gemm_f32(in + b * P * K, K, w, bias, P, OC, K, out + b * P * OC, OC, p->f[0], p->f[1]);
            continue;
        }
        for (int64_t first = 0; first < P; first += chunk) {
            int64_t rows = P - first < chunk ? P - first : chunk;
            em_im2col_float(in, d, b, first, rows, 0.0f, col);
            em_gemm_f32(col, K, w, bias, rows, OC, K, out + (b * P + first) * OC, OC, p->f[0], p->f[1]);
        }
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
/* VNNI variants. ptr: 0 input, 1 packed weights (16c4), 2 bias (VNNI-corrected, padded), 3 output, 4 mult,
 * 5 shift, 6 scratch, 7 double scales, 8 float scales; per-column arrays padded to a multiple of 16.
 * CI_DIRECT says how the GEMM reads its rows (all as uint8 x + 128 in scratch):
 *   1 1x1 stride-1 conv: the input's rows repacked to Kp
 *   4 implicit GEMM over a padded copy of the input (dilation_w 1); the weights are packed per window row,
 *     KW * IC rounded up to 4 (CI_KP = KH * that)
 *   0 im2col in chunks of CI_CHUNK rows (dilation_w > 1)
 * i[24] threads: the output pixels of each image are split into that many slices (em_threads.h), each with its
 * own scratch of i[25] bytes. */
static void em_conv2d_vnni_slice(const void* ctx, int64_t slice, int64_t nslices) {
    const em_params* p = (const em_params*)ctx;
    const int64_t* d = p->i;
    const int8_t* in = (const int8_t*)p->ptr[0];
    int8_t* out = (int8_t*)p->ptr[3];
    const int64_t K = d[CI_KH] * d[CI_KW] * d[CI_IC], OC = d[CI_OC], Kp = d[CI_KP], IC = d[CI_IC];
    const int64_t P = d[CI_OH] * d[CI_OW], chunk = d[CI_CHUNK], mode = d[CI_DIRECT];
    const int64_t IHp = (d[CI_OH] - 1) * d[CI_SH] + (d[CI_KH] - 1) * d[CI_DH] + 1;
    const int64_t IWp = (d[CI_OW] - 1) * d[CI_SW] + (d[CI_KW] - 1) * d[CI_DW] + 1;
    const int64_t r0 = P * slice / nslices, r1 = P * (slice + 1) / nslices;
    em_vnni_gemm g = {(const int8_t*)p->ptr[1], (const int32_t*)p->ptr[2], (const int32_t*)p->ptr[4],
                      (const int32_t*)p->ptr[5], (const double*)p->ptr[7], (const float*)p->ptr[8], OC, Kp,
                      (int32_t)d[CI_OUTZP], (int32_t)d[CI_AMIN], (int32_t)d[CI_AMAX], (int32_t)d[CI_MODE]};
    uint8_t* scratch = (uint8_t*)p->ptr[6] + slice * d[25];
    if (r1 <= r0) return;
    for (int64_t b = 0; b < d[CI_N]; b++) {
        const int8_t* img = in + b * d[CI_IH] * d[CI_IW] * IC;
        int8_t* o = out + b * P * OC;
        if (mode == 1) {
            em_pack_rows_u8(img + r0 * K, K, r1 - r0, K, Kp, scratch);
            em_gemm_u8s8_vnni(scratch, r1 - r0, &g, o + r0 * OC, OC);
        } else if (mode == 4) {
            em_pad_image_u8(img, d, IHp, IWp, scratch);
            em_vnni_rows rows = {scratch, 0, d[CI_OW], d[CI_SH] * IWp * IC, d[CI_SW] * IC,
                                 d[CI_KH], d[CI_DH] * IWp * IC, Kp / d[CI_KH] / 4, r0};
            em_gemm_vnni_rows(&rows, r1 - r0, &g, o + r0 * OC, OC);
        } else {
            for (int64_t first = r0; first < r1; first += chunk) {
                int64_t rows = r1 - first < chunk ? r1 - first : chunk;
                em_im2col_u8(in, d, b, first, rows, Kp, scratch);
                em_gemm_u8s8_vnni(scratch, rows, &g, o + first * OC, OC);
            }
        }
    }
}

static void em_conv2d_int8_vnni(const em_params* p) {
    em_parallel_run(p->i[24] > 1 ? p->i[24] : 1, em_conv2d_vnni_slice, p);
}

/* AVX2 variants (CPUs without VNNI).  ptr: 0 input, 1 packed int16 weights (em_gemm_avx2.h), 2 bias
 * (bias - zp sum w, padded to a multiple of 8), 3 output, 4 mult, 5 shift, 6 scratch, 7 double scales,
 * 8 float scales (padded).  Conv: i as em_conv2d_int8 plus CI_KP; scratch = CI_CHUNK rows of K int8 (im2col,
 * unless direct) then CI_CHUNK rows of Kp int16. */
static void em_conv2d_int8_avx2(const em_params* p) {
    const int64_t* d = p->i;
    const int8_t* in = (const int8_t*)p->ptr[0];
    int8_t* out = (int8_t*)p->ptr[3];
    const int64_t K = d[CI_KH] * d[CI_KW] * d[CI_IC], OC = d[CI_OC], Kp = d[CI_KP];
    const int64_t P = d[CI_OH] * d[CI_OW], chunk = d[CI_CHUNK];
    em_avx2_gemm g = {(const int16_t*)p->ptr[1], (const int32_t*)p->ptr[2], (const int32_t*)p->ptr[4],
                      (const int32_t*)p->ptr[5], (const double*)p->ptr[7], (const float*)p->ptr[8], OC, Kp,
                      (int32_t)d[CI_OUTZP], (int32_t)d[CI_AMIN], (int32_t)d[CI_AMAX], (int32_t)d[CI_MODE]};
    int8_t* col = (int8_t*)p->ptr[6];
    int16_t* rows16 = (int16_t*)((uint8_t*)p->ptr[6] + (d[CI_DIRECT] ? 0 : (chunk * K + 31) / 32 * 32));
    for (int64_t b = 0; b < d[CI_N]; b++) {
        for (int64_t first = 0; first < P; first += chunk) {
            int64_t rows = P - first < chunk ? P - first : chunk;
            if (d[CI_DIRECT]) {
                em_pack_rows_s16(in + (b * P + first) * K, K, rows, K, Kp, rows16);
            } else {
                em_im2col_int8_t(in, d, b, first, rows, (int8_t)d[CI_INZP], col);
                em_pack_rows_s16(col, K, rows, K, Kp, rows16);
            }
            em_gemm_s16_avx2(rows16, Kp, rows, &g, out + (b * P + first) * OC, OC);
        }
    }
}
#else
/* never selected: the loader picks these kernels only when the CPU reports the ISA */
static void em_conv2d_int8_avx2(const em_params* p) { (void)p; }
static void em_conv2d_int8_vnni(const em_params* p) { (void)p; }
#endif
#endif
