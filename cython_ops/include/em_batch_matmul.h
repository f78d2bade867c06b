/* BATCH_MATMUL, int8 and float32: out[..., m, n] = sum_k lhs[..., m, k] rhs[..., k, n] with adj_x / adj_y
 * (lhs given as [k, m] / rhs as [n, k]) and broadcast batch dimensions (up to three).  Each batch's right operand
 * is brought to [n][k] rows (at load when it is a constant) and each left one to [m][k] rows, then the GEMMs of
 * em_gemm.h run.  int8: both operands may have zero points; the exact int32 sum of (a - za)(b - zb) is
 * sum ab - za sum_k b - zb sum_k a + K za zb (the same in wrapping int32 arithmetic), the terms other than sum ab
 * going into the GEMM's per-column bias, row by row when zb is not 0.  Requantization is LiteRT's per-tensor
 * MultiplyByQuantizedMultiplier, or onnxruntime's float one (mode EM_REQUANT_FLOAT). */
#ifndef EM_BATCH_MATMUL_H
#define EM_BATCH_MATMUL_H
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "em_params.h"
#include "em_gemm.h"

/* layout EM_BATCH_MATMUL:
 * ptr: lhs, rhs, output, scratch, packed rhs (a constant rhs as [batch][n][k], or NULL), its column sums (int32
 *      [batch][n], int8), multipliers and shifts (int32 [n], all equal; int8), float32 scales [n] (int8 with
 *      mode EM_REQUANT_FLOAT: onnxruntime's QLinearMatMul, else NULL)
 * i:   output batch dims (3), lhs batch strides (3, elements), rhs batch strides (3, elements of rhs, or of the
 *      packed rhs), rows M, cols N, depth K, adj_x, adj_y, lhs / rhs / output zero points, rounding mode, scratch
 *      offsets of the [m][k] lhs copy and of the int32 sums (the [n][k] rhs copy starts at 0) */
enum { EM_BATCH_MATMUL_P_LHS, EM_BATCH_MATMUL_P_RHS, EM_BATCH_MATMUL_P_OUTPUT, EM_BATCH_MATMUL_P_SCRATCH,
       EM_BATCH_MATMUL_P_PACKED_RHS, EM_BATCH_MATMUL_P_COL_SUMS, EM_BATCH_MATMUL_P_MULT, EM_BATCH_MATMUL_P_SHIFT,
       EM_BATCH_MATMUL_P_FLOAT_SCALES, EM_BATCH_MATMUL_P_COUNT };
enum { EM_BATCH_MATMUL_I_BATCH, EM_BATCH_MATMUL_I_BATCH_LAST = EM_BATCH_MATMUL_I_BATCH + 2,
       EM_BATCH_MATMUL_I_LHS_STRIDES, EM_BATCH_MATMUL_I_LHS_STRIDES_LAST = EM_BATCH_MATMUL_I_LHS_STRIDES + 2,
       EM_BATCH_MATMUL_I_RHS_STRIDES, EM_BATCH_MATMUL_I_RHS_STRIDES_LAST = EM_BATCH_MATMUL_I_RHS_STRIDES + 2,
       EM_BATCH_MATMUL_I_ROWS, EM_BATCH_MATMUL_I_COLS, EM_BATCH_MATMUL_I_DEPTH, EM_BATCH_MATMUL_I_ADJ_X,
       EM_BATCH_MATMUL_I_ADJ_Y, EM_BATCH_MATMUL_I_LHS_ZP, EM_BATCH_MATMUL_I_RHS_ZP, EM_BATCH_MATMUL_I_OUT_ZP,
       EM_BATCH_MATMUL_I_MODE, EM_BATCH_MATMUL_I_LHS_OFFSET, EM_BATCH_MATMUL_I_SUMS_OFFSET,
       EM_BATCH_MATMUL_I_COUNT };
enum { EM_BATCH_MATMUL_F_COUNT = 0 };

/* [rows][cols] -> [cols][rows] */
#define EM_TRANSPOSE(T)                                                                                     \
static void em_transpose_##T(const T* src, int64_t rows, int64_t cols, T* dst) {                          \
    for (int64_t r = 0; r < rows; r++)                                                                      \
        for (int64_t c = 0; c < cols; c++) dst[c * rows + r] = src[r * cols + c];                          \
}
EM_TRANSPOSE(int8_t)
EM_TRANSPOSE(float)
#undef EM_TRANSPOSE

/* The three batch loops; BODY sees lhs_b / rhs_b (batch offsets, elements) and out_b (its output matrix). */
#define EM_BATCH_MATMUL_LOOP(BODY)                                                                          \
    const int64_t* nb = p->i + EM_BATCH_MATMUL_I_BATCH;                                                     \
    const int64_t* ls = p->i + EM_BATCH_MATMUL_I_LHS_STRIDES;                                               \
    const int64_t* rs = p->i + EM_BATCH_MATMUL_I_RHS_STRIDES;                                               \
    int64_t out_b = 0;                                                                                      \
    for (int64_t b0 = 0; b0 < nb[0]; b0++)                                                                  \
    for (int64_t b1 = 0; b1 < nb[1]; b1++)                                                                  \
    for (int64_t b2 = 0; b2 < nb[2]; b2++, out_b++) {                                                       \
        const int64_t lhs_b = b0 * ls[0] + b1 * ls[1] + b2 * ls[2];                                         \
        const int64_t rhs_b = b0 * rs[0] + b1 * rs[1] + b2 * rs[2];                                         \
        BODY                                                                                                \
    }

static void em_batch_matmul_f32(const em_params* p) {
    const int64_t M = p->i[EM_BATCH_MATMUL_I_ROWS], N = p->i[EM_BATCH_MATMUL_I_COLS];
    const int64_t K = p->i[EM_BATCH_MATMUL_I_DEPTH];
    const int adj_x = (int)p->i[EM_BATCH_MATMUL_I_ADJ_X], adj_y = (int)p->i[EM_BATCH_MATMUL_I_ADJ_Y];
    const float* lhs = (const float*)p->ptr[EM_BATCH_MATMUL_P_LHS];
    const float* packed = (const float*)p->ptr[EM_BATCH_MATMUL_P_PACKED_RHS];
    const float* rhs = packed ? packed : (const float*)p->ptr[EM_BATCH_MATMUL_P_RHS];
    float* out = (float*)p->ptr[EM_BATCH_MATMUL_P_OUTPUT];
    uint8_t* scratch = (uint8_t*)p->ptr[EM_BATCH_MATMUL_P_SCRATCH];
    float* rhs_rows = (float*)scratch;
    float* lhs_rows = (float*)(scratch + p->i[EM_BATCH_MATMUL_I_LHS_OFFSET]);
    EM_BATCH_MATMUL_LOOP({
        const float* a = lhs + lhs_b;
        const float* b = rhs + rhs_b;
        if (adj_x) { em_transpose_float(a, K, M, lhs_rows); a = lhs_rows; }
        if (!packed && !adj_y) { em_transpose_float(b, K, N, rhs_rows); b = rhs_rows; }
        /* no clamp: infinities and NaNs pass as in the reference */
        em_gemm_f32(a, K, b, NULL, M, N, K, out + out_b * M * N, N, -INFINITY, INFINITY);
    })
}

static void em_batch_matmul_int8(const em_params* p) {
    const int64_t M = p->i[EM_BATCH_MATMUL_I_ROWS], N = p->i[EM_BATCH_MATMUL_I_COLS];
    const int64_t K = p->i[EM_BATCH_MATMUL_I_DEPTH];
    const int adj_x = (int)p->i[EM_BATCH_MATMUL_I_ADJ_X], adj_y = (int)p->i[EM_BATCH_MATMUL_I_ADJ_Y];
    const int32_t za = (int32_t)p->i[EM_BATCH_MATMUL_I_LHS_ZP], zb = (int32_t)p->i[EM_BATCH_MATMUL_I_RHS_ZP];
    const int8_t* lhs = (const int8_t*)p->ptr[EM_BATCH_MATMUL_P_LHS];
    const int8_t* packed = (const int8_t*)p->ptr[EM_BATCH_MATMUL_P_PACKED_RHS];
    const int8_t* rhs = packed ? packed : (const int8_t*)p->ptr[EM_BATCH_MATMUL_P_RHS];
    const int32_t* packed_sums = (const int32_t*)p->ptr[EM_BATCH_MATMUL_P_COL_SUMS];
    int8_t* out = (int8_t*)p->ptr[EM_BATCH_MATMUL_P_OUTPUT];
    uint8_t* scratch = (uint8_t*)p->ptr[EM_BATCH_MATMUL_P_SCRATCH];
    int8_t* rhs_rows = (int8_t*)scratch;
    int8_t* lhs_rows = (int8_t*)(scratch + p->i[EM_BATCH_MATMUL_I_LHS_OFFSET]);
    int32_t* col_sums = (int32_t*)(scratch + p->i[EM_BATCH_MATMUL_I_SUMS_OFFSET]);
    int32_t* bias = col_sums + N;
    em_requant_cols rq = {bias, (const int32_t*)p->ptr[EM_BATCH_MATMUL_P_MULT],
                          (const int32_t*)p->ptr[EM_BATCH_MATMUL_P_SHIFT], (int32_t)p->i[EM_BATCH_MATMUL_I_OUT_ZP],
                          -128, 127, (int32_t)p->i[EM_BATCH_MATMUL_I_MODE], NULL,
                          (const float*)p->ptr[EM_BATCH_MATMUL_P_FLOAT_SCALES]};
    const uint32_t kzz = (uint32_t)K * (uint32_t)za * (uint32_t)zb;
    EM_BATCH_MATMUL_LOOP({
        const int8_t* a = lhs + lhs_b;
        const int8_t* b = rhs + rhs_b;
        const int32_t* sums = col_sums;
        if (adj_x) { em_transpose_int8_t(a, K, M, lhs_rows); a = lhs_rows; }
        if (packed) {
            sums = packed_sums + rhs_b / K;
        } else {
            if (!adj_y) { em_transpose_int8_t(b, K, N, rhs_rows); b = rhs_rows; }
            for (int64_t n = 0; n < N; n++) {
                int32_t s = 0;
                for (int64_t k = 0; k < K; k++) s += b[n * K + k];
                col_sums[n] = s;
            }
        }
        for (int64_t n = 0; n < N; n++) bias[n] = (int32_t)(kzz - (uint32_t)za * (uint32_t)sums[n]);
        int8_t* c = out + out_b * M * N;
        if (zb == 0) {
            em_gemm_s8_requant(a, K, b, M, N, K, c, N, &rq);
        } else {
            for (int64_t m = 0; m < M; m++) {
                int32_t row_sum = 0;
                for (int64_t k = 0; k < K; k++) row_sum += a[m * K + k];
                const uint32_t row_term = (uint32_t)zb * (uint32_t)row_sum;
                for (int64_t n = 0; n < N; n++)
                    bias[n] = (int32_t)(kzz - (uint32_t)za * (uint32_t)sums[n] - row_term);
                em_gemm_s8_requant(a + m * K, K, b, 1, N, K, c + m * N, N, &rq);
            }
        }
    })
}
#undef EM_BATCH_MATMUL_LOOP
#endif
