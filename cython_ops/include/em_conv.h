/* CONV_2D, int8 and float32, NHWC: rows gathered by im2col (em_im2col.h), or read directly for a 1x1 conv, into
 * the GEMMs (em_gemm.h portable, em_gemm_vnni.h AVX-512 VNNI, threaded over output pixels, em_gemm_avx2.h AVX2).
 * em_conv2d_int8 / em_conv2d_f32 read the conv layout EM_CONV (em_im2col.h). */
#ifndef EM_CONV_H
#define EM_CONV_H
#include "em_params.h"
#include "em_gemm.h"
#include "em_gemm_vnni.h"
#include "em_gemm_avx2.h"
#include "em_gemm_avxvnni.h"
#include "em_threads.h"
#include "em_im2col.h"

/* VNNI conv (em_conv2d_int8_vnni): the conv layout's pointers, with 1 the packed weights (16c4), 2 the bias
 * (VNNI-corrected), and the per-column arrays padded to a multiple of 16; its integers, where EM_CONV_I_DIRECT
 * says how the GEMM reads its rows (all as uint8 x + 128 in scratch):
 *   1 1x1 stride-1 conv: the input's rows repacked to Kp, in chunks of EM_CONV_I_CHUNK rows
 *   4 implicit GEMM over a padded copy of the input (dilation_w 1); the weights are packed per window row,
 *     KW * IC rounded up to 4 (Kp = KH * that)
 *   0 im2col in chunks of EM_CONV_I_CHUNK rows (dilation_w > 1)
 * then Kp (the packed K), threads: the output pixels of each image are split into that many slices
 * (em_threads.h), each with its own scratch of slice_bytes bytes; w_zp, the weights' zero point (uint8 models;
 * 0 otherwise): then each slice's scratch starts with em_conv_vnni_corr_bytes of row corrections
 * (em_vnni_row_sums). */
enum { EM_CONV_VNNI_I_KP = EM_CONV_I_CHUNK + 1, EM_CONV_VNNI_I_THREADS, EM_CONV_VNNI_I_SLICE_BYTES,
       EM_CONV_VNNI_I_W_ZP, EM_CONV_VNNI_I_COUNT };
enum { EM_CONV_VNNI_P_COUNT = EM_CONV_P_COUNT, EM_CONV_VNNI_F_COUNT = 0 };

/* AVX2 conv (em_conv2d_int8_avx2, CPUs without VNNI): the conv layout's pointers, with 1 the packed int16 weights
 * (em_gemm_avx2.h), 2 the bias (bias - zp sum w: padding holds zp), per-column arrays padded to a multiple of 8;
 * its integers, EM_CONV_I_DIRECT as for the VNNI conv (1: rows as int16, 4: implicit GEMM over a padded int16 copy,
 * 0: im2col then int16 rows, 5: the padded int16 copy's windows gathered into rows of K padded to 4 once, for
 * few-channel stems: em_gather_windows_s16), then Kp, threads and slice_bytes: each slice's scratch holds the
 * padded image (IHp x IWp x IC int16 + 64 bytes), or EM_CONV_I_CHUNK rows of Kp int16 (1x1 rows widened, or im2col
 * straight into int16: em_im2col_s16), or (mode 5) the padded image (em_padded_image_s16_bytes) then
 * EM_CONV_I_CHUNK rows of Kp int16 and 32 bytes of slack. */
enum { EM_CONV_AVX2_I_KP = EM_CONV_I_CHUNK + 1, EM_CONV_AVX2_I_THREADS, EM_CONV_AVX2_I_SLICE_BYTES,
       EM_CONV_AVX2_I_COUNT };
enum { EM_CONV_AVX2_P_COUNT = EM_CONV_P_COUNT, EM_CONV_AVX2_F_COUNT = 0 };

/* The portable int8 conv: im2col rows (padding taps = in_zp) into GEMM with weights of type WT. */
#define EM_CONV2D_INT8_BODY(WT, GEMM)                                                                         \
    const int64_t* d = p->i;                                                                                  \
    const int8_t* in = (const int8_t*)p->ptr[EM_CONV_P_INPUT];                                                \
    const WT* w = (const WT*)p->ptr[EM_CONV_P_WEIGHTS];                                                       \
    int8_t* out = (int8_t*)p->ptr[EM_CONV_P_OUTPUT];                                                          \
    int8_t* col = (int8_t*)p->ptr[EM_CONV_P_SCRATCH];                                                         \
    em_requant_cols rq = {(const int32_t*)p->ptr[EM_CONV_P_BIAS], (const int32_t*)p->ptr[EM_CONV_P_MULT],     \
                          (const int32_t*)p->ptr[EM_CONV_P_SHIFT], (int32_t)d[EM_CONV_I_OUT_ZP],              \
                          (int32_t)d[EM_CONV_I_ACT_MIN], (int32_t)d[EM_CONV_I_ACT_MAX], (int32_t)d[EM_CONV_I_MODE], \
                          (const double*)p->ptr[EM_CONV_P_DOUBLE_SCALES],                                     \
                          (const float*)p->ptr[EM_CONV_P_FLOAT_SCALES]};                                      \
    const int64_t K = d[EM_CONV_I_KH] * d[EM_CONV_I_KW] * d[EM_CONV_I_IC], OC = d[EM_CONV_I_OC];              \
    const int64_t P = d[EM_CONV_I_OH] * d[EM_CONV_I_OW], chunk = d[EM_CONV_I_CHUNK];                          \
    const int8_t pad = (int8_t)d[EM_CONV_I_IN_ZP];                                                            \
    for (int64_t b = 0; b < d[EM_CONV_I_N]; b++) {                                                            \
        if (d[EM_CONV_I_DIRECT]) {                                                                            \
            GEMM(in + b * P * K, K, w, P, OC, K, out + b * P * OC, OC, &rq);                                  \
            continue;                                                                                         \
        }                                                                                                     \
        for (int64_t first = 0; first < P; first += chunk) {                                                 \
            int64_t rows = P - first < chunk ? P - first : chunk;                                             \
            em_im2col_int8_t(in, d, b, first, rows, pad, col);                                                \
            GEMM(col, K, w, rows, OC, K, out + (b * P + first) * OC, OC, &rq);                                \
        }                                                                                                     \
    }

static void em_conv2d_int8(const em_params* p) { EM_CONV2D_INT8_BODY(int8_t, em_gemm_s8_requant) }

/* em_conv2d_int8 with int16 weights w - w_zp (uint8 models' asymmetric weights; bias holds -in_zp sum(w - w_zp)). */
static void em_conv2d_int8_w16(const em_params* p) { EM_CONV2D_INT8_BODY(int16_t, em_gemm_s8s16_requant) }

static void em_conv2d_f32(const em_params* p) {
    const int64_t* d = p->i;
    const float* in = (const float*)p->ptr[EM_CONV_P_INPUT];
    const float* w = (const float*)p->ptr[EM_CONV_P_WEIGHTS];
    const float* bias = (const float*)p->ptr[EM_CONV_P_BIAS];
    float* out = (float*)p->ptr[EM_CONV_P_OUTPUT];
    float* col = (float*)p->ptr[EM_CONV_P_SCRATCH];
    const int64_t K = d[EM_CONV_I_KH] * d[EM_CONV_I_KW] * d[EM_CONV_I_IC], OC = d[EM_CONV_I_OC];
    const int64_t P = d[EM_CONV_I_OH] * d[EM_CONV_I_OW], chunk = d[EM_CONV_I_CHUNK];
    for (int64_t b = 0; b < d[EM_CONV_I_N]; b++) {
        if (d[EM_CONV_I_DIRECT]) {
            em_gemm_f32(in + b * P * K, K, w, bias, P, OC, K, out + b * P * OC, OC, p->f[EM_CONV_F_ACT_MIN],
                        p->f[EM_CONV_F_ACT_MAX]);
            continue;
        }
        for (int64_t first = 0; first < P; first += chunk) {
            int64_t rows = P - first < chunk ? P - first : chunk;
            em_im2col_float(in, d, b, first, rows, 0.0f, col);
            em_gemm_f32(col, K, w, bias, rows, OC, K, out + (b * P + first) * OC, OC, p->f[EM_CONV_F_ACT_MIN],
                        p->f[EM_CONV_F_ACT_MAX]);
        }
    }
}

/* Bytes of row corrections at the start of each VNNI slice's scratch: one int32 per GEMM row of a call (a slice's
 * rows for the implicit GEMM, a chunk's otherwise), in whole 64-byte lines; 0 without a weight zero point. */
static inline int64_t em_conv_vnni_corr_bytes(const int64_t* d) {
    if (!d[EM_CONV_VNNI_I_W_ZP]) return 0;
    const int64_t P = d[EM_CONV_I_OH] * d[EM_CONV_I_OW];
    const int64_t n = d[EM_CONV_VNNI_I_THREADS] > 1 ? d[EM_CONV_VNNI_I_THREADS] : 1;
    const int64_t rows = d[EM_CONV_I_DIRECT] == 4 ? (P + n - 1) / n : d[EM_CONV_I_CHUNK];
    return (rows * 4 + 63) / 64 * 64;
}

#if defined(__x86_64__) && defined(__GNUC__)
/* The GEMM of a uint8 (x + 128) conv: em_gemm_vnni_rows (AVX-512 VNNI) or em_gemm_avxvnni_rows (AVX-VNNI). */
typedef void (*em_u8_gemm_fn)(const em_gemm_rows* A, int64_t M, const em_vnni_gemm* g, int8_t* C, int64_t ldc);
typedef struct { const em_params* p; em_u8_gemm_fn gemm; } em_conv_u8_call;

/* One slice of the VNNI conv (layout EM_CONV_VNNI above): the slice's output pixels of every image. */
EM_AVX2_TARGET static void em_conv2d_u8_slice(const void* ctx, int64_t slice, int64_t nslices) {
    const em_conv_u8_call* call = (const em_conv_u8_call*)ctx;
    const em_params* p = call->p;
    const int64_t* d = p->i;
    const int8_t* in = (const int8_t*)p->ptr[EM_CONV_P_INPUT];
    int8_t* out = (int8_t*)p->ptr[EM_CONV_P_OUTPUT];
    const int64_t K = d[EM_CONV_I_KH] * d[EM_CONV_I_KW] * d[EM_CONV_I_IC], OC = d[EM_CONV_I_OC];
    const int64_t Kp = d[EM_CONV_VNNI_I_KP], IC = d[EM_CONV_I_IC];
    const int64_t P = d[EM_CONV_I_OH] * d[EM_CONV_I_OW], chunk = d[EM_CONV_I_CHUNK], mode = d[EM_CONV_I_DIRECT];
    const int64_t IWp = em_conv_padded_cols(d);
    const int64_t r0 = P * slice / nslices, r1 = P * (slice + 1) / nslices;
    const int32_t w_zp = (int32_t)d[EM_CONV_VNNI_I_W_ZP];
    uint8_t* scratch = (uint8_t*)p->ptr[EM_CONV_P_SCRATCH] + slice * d[EM_CONV_VNNI_I_SLICE_BYTES];
    int32_t* corr = (int32_t*)scratch;
    scratch += em_conv_vnni_corr_bytes(d);
    em_vnni_gemm g = {(const int8_t*)p->ptr[EM_CONV_P_WEIGHTS], (const int32_t*)p->ptr[EM_CONV_P_BIAS],
                      (const int32_t*)p->ptr[EM_CONV_P_MULT], (const int32_t*)p->ptr[EM_CONV_P_SHIFT],
                      (const double*)p->ptr[EM_CONV_P_DOUBLE_SCALES], (const float*)p->ptr[EM_CONV_P_FLOAT_SCALES],
                      OC, Kp, (int32_t)d[EM_CONV_I_OUT_ZP], (int32_t)d[EM_CONV_I_ACT_MIN],
                      (int32_t)d[EM_CONV_I_ACT_MAX], (int32_t)d[EM_CONV_I_MODE], w_zp ? corr : NULL};
    if (r1 <= r0) return;
    const em_gemm_rows plain = {scratch, Kp, 0, 0, 0, 1, 0, Kp / 4, 0};
    for (int64_t b = 0; b < d[EM_CONV_I_N]; b++) {
        const int8_t* img = in + b * d[EM_CONV_I_IH] * d[EM_CONV_I_IW] * IC;
        int8_t* o = out + b * P * OC;
        if (mode == 4) {        /* the slice pads only the image rows its output rows read (skip pixels before) */
            int64_t pad_begin, pad_end;
            const int64_t skip = em_slice_padded_rows(d, r0, r1, &pad_begin, &pad_end);
            em_pad_rows_u8(img, d, pad_begin, pad_end, IWp, scratch);
            em_gemm_rows rows = {scratch, 0, d[EM_CONV_I_OW], d[EM_CONV_I_SH] * IWp * IC, d[EM_CONV_I_SW] * IC,
                                 d[EM_CONV_I_KH], d[EM_CONV_I_DH] * IWp * IC, Kp / d[EM_CONV_I_KH] / 4, r0 - skip};
            if (w_zp) em_vnni_row_sums(&rows, r1 - r0, d[EM_CONV_I_KW] * IC, w_zp, corr);
            call->gemm(&rows, r1 - r0, &g, o + r0 * OC, OC);
            continue;
        }
        /* 1x1 rows repacked (mode 1) or im2col (mode 0), a chunk of rows at a time: they stay in L1 across the
         * column panels */
        for (int64_t first = r0; first < r1; first += chunk) {
            const int64_t rows = r1 - first < chunk ? r1 - first : chunk;
            if (mode == 1) em_pack_rows_u8(img + first * K, K, rows, K, Kp, scratch);
            else em_im2col_u8(in, d, b, first, rows, Kp, scratch);
            if (w_zp) em_vnni_row_sums(&plain, rows, K, w_zp, corr);
            call->gemm(&plain, rows, &g, o + first * OC, OC);
        }
    }
}

static void em_conv2d_int8_vnni(const em_params* p) {
    const em_conv_u8_call call = {p, em_gemm_vnni_rows};
    em_parallel_run(p->i[EM_CONV_VNNI_I_THREADS] > 1 ? p->i[EM_CONV_VNNI_I_THREADS] : 1, em_conv2d_u8_slice, &call);
}

/* AVX-VNNI: the VNNI conv with 256-bit tiles (em_gemm_avxvnni.h), same layout and packing. */
#if EM_HAVE_AVXVNNI
static void em_conv2d_int8_avxvnni(const em_params* p) {
    const em_conv_u8_call call = {p, em_gemm_avxvnni_rows};
    em_parallel_run(p->i[EM_CONV_VNNI_I_THREADS] > 1 ? p->i[EM_CONV_VNNI_I_THREADS] : 1, em_conv2d_u8_slice, &call);
}
#else
static void em_conv2d_int8_avxvnni(const em_params* p) { (void)p; }   /* never selected (em_isa.h) */
#endif

/* One slice of the AVX2 conv (layout EM_CONV_AVX2 above): int16 rows, read as the VNNI conv reads its uint8 ones. */
EM_AVX2_TARGET static void em_conv2d_s16_slice(const void* ctx, int64_t slice, int64_t nslices) {
    const em_params* p = (const em_params*)ctx;
    const int64_t* d = p->i;
    const int8_t* in = (const int8_t*)p->ptr[EM_CONV_P_INPUT];
    int8_t* out = (int8_t*)p->ptr[EM_CONV_P_OUTPUT];
    const int64_t K = d[EM_CONV_I_KH] * d[EM_CONV_I_KW] * d[EM_CONV_I_IC], OC = d[EM_CONV_I_OC];
    const int64_t Kp = d[EM_CONV_AVX2_I_KP], IC = d[EM_CONV_I_IC];
    const int64_t P = d[EM_CONV_I_OH] * d[EM_CONV_I_OW], chunk = d[EM_CONV_I_CHUNK], mode = d[EM_CONV_I_DIRECT];
    const int64_t IHp = em_conv_padded_rows(d), IWp = em_conv_padded_cols(d);
    const int64_t r0 = P * slice / nslices, r1 = P * (slice + 1) / nslices;
    em_avx2_gemm g = em_conv_avx2_gemm(p, (const int16_t*)p->ptr[EM_CONV_P_WEIGHTS], OC, Kp);
    uint8_t* scratch = (uint8_t*)p->ptr[EM_CONV_P_SCRATCH] + slice * d[EM_CONV_AVX2_I_SLICE_BYTES];
    int16_t* rows16 = (int16_t*)scratch;
    if (r1 <= r0) return;
    for (int64_t b = 0; b < d[EM_CONV_I_N]; b++) {
        const int8_t* img = in + b * d[EM_CONV_I_IH] * d[EM_CONV_I_IW] * IC;
        int8_t* o = out + b * P * OC;
        /* modes 4 and 5: the slice pads only the image rows its output rows read (skip pixels before them) */
        int64_t pad_begin = 0, pad_end = IHp, skip = 0;
        if (mode == 4 || mode == 5) {
            skip = em_slice_padded_rows(d, r0, r1, &pad_begin, &pad_end);
            em_pad_rows_s16(img, d, pad_begin, pad_end, IWp, (int16_t*)scratch);
        }
        if (mode == 4) {
            const em_gemm_rows rows = {scratch, 0, d[EM_CONV_I_OW], 2 * d[EM_CONV_I_SH] * IWp * IC,
                                       2 * d[EM_CONV_I_SW] * IC, d[EM_CONV_I_KH], 2 * d[EM_CONV_I_DH] * IWp * IC,
                                       Kp / d[EM_CONV_I_KH] / 4, r0 - skip};
            em_gemm_s16_avx2_rows(&rows, r1 - r0, &g, o + r0 * OC, OC);
            continue;
        }
        for (int64_t first = r0; first < r1; first += chunk) {
            const int64_t rows = r1 - first < chunk ? r1 - first : chunk;
            if (mode == 5) {
                em_gather_windows_s16((const int16_t*)scratch, d, IWp, first - skip, rows, Kp,
                                      (int16_t*)(scratch + em_padded_image_s16_bytes(d)));
                em_gemm_s16_avx2((const int16_t*)(scratch + em_padded_image_s16_bytes(d)), Kp, rows, &g,
                                 o + first * OC, OC);
                continue;
            }
            if (mode == 1) {
                em_pack_rows_s16(img + first * K, K, rows, K, Kp, rows16);
            } else {
                em_im2col_s16(in, d, b, first, rows, Kp, rows16);
            }
            em_gemm_s16_avx2(rows16, Kp, rows, &g, o + first * OC, OC);
        }
    }
}

static void em_conv2d_int8_avx2(const em_params* p) {
    em_parallel_run(p->i[EM_CONV_AVX2_I_THREADS] > 1 ? p->i[EM_CONV_AVX2_I_THREADS] : 1, em_conv2d_s16_slice, p);
}
#else
/* never selected: the loader picks these kernels only when the CPU reports the ISA */
static void em_conv2d_int8_avx2(const em_params* p) { (void)p; }
static void em_conv2d_int8_vnni(const em_params* p) { (void)p; }
static void em_conv2d_int8_avxvnni(const em_params* p) { (void)p; }
#endif
#endif
