/* com.microsoft QLinearAdd and QLinearSoftmax with onnxruntime's arithmetic (see shared NUMERICS.md). */
#ifndef EM_ONNX_QLINEAR_H
#define EM_ONNX_QLINEAR_H

#include <math.h>
#include <stdint.h>
#include "em_params.h"
#include "em_requant.h"

/* com.microsoft QLinearAdd as MLAS computes it (AVX2 kernel): in the tensors' own integer domain (uint8
 * values are x + 128 here), v = fma(a, ratio_a, fma(b, ratio_b, fixed)), rounded to nearest even, saturated.
 * Broadcasting follows onnxruntime's span loop: the output's innermost dimension is one span; an operand
 * broadcast along it (stride 0) is a scalar for that span, its term folded into `fixed` with a separate
 * multiply and add (MLAS's scalar variant), as for an operand of one element.
 * ptr: a, b, output (int8 in the IR); i: offset added to a, to b (128 for uint8), output offset, output dims
 * (6, leading 1s), a's and b's element strides (6 each, 0 where broadcast); f: ratio_a, ratio_b, fixed part. */
enum { EM_QLINEAR_ADD_P_A, EM_QLINEAR_ADD_P_B, EM_QLINEAR_ADD_P_OUTPUT, EM_QLINEAR_ADD_P_COUNT };
enum { EM_QLINEAR_ADD_I_A_OFFSET, EM_QLINEAR_ADD_I_B_OFFSET, EM_QLINEAR_ADD_I_OUT_OFFSET,
       EM_QLINEAR_ADD_I_DIMS, EM_QLINEAR_ADD_I_DIMS_LAST = EM_QLINEAR_ADD_I_DIMS + 5,
       EM_QLINEAR_ADD_I_A_STRIDES, EM_QLINEAR_ADD_I_A_STRIDES_LAST = EM_QLINEAR_ADD_I_A_STRIDES + 5,
       EM_QLINEAR_ADD_I_B_STRIDES, EM_QLINEAR_ADD_I_B_STRIDES_LAST = EM_QLINEAR_ADD_I_B_STRIDES + 5,
       EM_QLINEAR_ADD_I_COUNT };
enum { EM_QLINEAR_ADD_F_RATIO_A, EM_QLINEAR_ADD_F_RATIO_B, EM_QLINEAR_ADD_F_FIXED, EM_QLINEAR_ADD_F_COUNT };

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include "em_isa.h"
/* One span with each operand advancing (stride 1) or folded into fixed, the scalar loop's float operations on 16
 * (AVX-512) or 8 (AVX2 + FMA) lanes: the same fused multiply-adds, clamp, round to nearest even and saturation. */
#define EM_QLINEAR_ADD_SPAN(W, PS, SI, LOAD8, FMA, SET1, CVT, PREFIX)                                              \
    do {                                                                                                             \
        const PS ra_ = SET1(ra), rb_ = SET1(rb), fx_ = SET1(fixed), lo_ = SET1(-1e9f), hi_ = SET1(1e9f);             \
        const SI ao_ = PREFIX##_set1_epi32(a_off), bo_ = PREFIX##_set1_epi32(b_off);                                 \
        const SI yo_ = PREFIX##_set1_epi32(y_off), mn_ = PREFIX##_set1_epi32(-128), mx_ = PREFIX##_set1_epi32(127); \
        for (; k + W <= span; k += W) {                                                                             \
            PS v_ = fx_;                                                                                             \
            if (!b_scalar) v_ = FMA(CVT(PREFIX##_add_epi32(LOAD8(bp + k), bo_)), rb_, v_);                           \
            if (!a_scalar) v_ = FMA(CVT(PREFIX##_add_epi32(LOAD8(ap + k), ao_)), ra_, v_);                           \
            v_ = PREFIX##_min_ps(PREFIX##_max_ps(v_, lo_), hi_);                                                     \
            SI q_ = PREFIX##_sub_epi32(PREFIX##_cvtps_epi32(v_), yo_);                                               \
            q_ = PREFIX##_min_epi32(PREFIX##_max_epi32(q_, mn_), mx_);                                               \
            EM_QLINEAR_ADD_STORE_##W(y + k, q_);                                                                     \
        }                                                                                                            \
    } while (0)

#define EM_QLINEAR_ADD_STORE_16(DST, Q) _mm_storeu_si128((__m128i*)(DST), _mm512_cvtepi32_epi8(Q))
#define EM_QLINEAR_ADD_STORE_8(DST, Q)                                                                               \
    do {                                                                                                             \
        const __m128i w_ = _mm_packs_epi32(_mm256_castsi256_si128(Q), _mm256_extracti128_si256(Q, 1));              \
        _mm_storel_epi64((__m128i*)(DST), _mm_packs_epi16(w_, w_));                                                  \
    } while (0)
#define EM_LOAD16_I8_EPI32(P) _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)(P)))
#define EM_LOAD8_I8_EPI32(P) _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)(P)))

__attribute__((target("avx512f,avx512bw,avx512vl"))) static int64_t em_qlinear_add_span_avx512(
    const int8_t* ap, const int8_t* bp, int8_t* y, int64_t span, int a_scalar, int b_scalar, int32_t a_off,
    int32_t b_off, int32_t y_off, float ra, float rb, float fixed) {
    int64_t k = 0;
    EM_QLINEAR_ADD_SPAN(16, __m512, __m512i, EM_LOAD16_I8_EPI32, _mm512_fmadd_ps, _mm512_set1_ps, _mm512_cvtepi32_ps,
                        _mm512);
    return k;
}

__attribute__((target("avx2,fma"))) static int64_t em_qlinear_add_span_avx2(
    const int8_t* ap, const int8_t* bp, int8_t* y, int64_t span, int a_scalar, int b_scalar, int32_t a_off,
    int32_t b_off, int32_t y_off, float ra, float rb, float fixed) {
    int64_t k = 0;
    EM_QLINEAR_ADD_SPAN(8, __m256, __m256i, EM_LOAD8_I8_EPI32, _mm256_fmadd_ps, _mm256_set1_ps, _mm256_cvtepi32_ps,
                        _mm256);
    return k;
}
#endif

static void em_onnx_qlinear_add(const em_params* p) {
    const int8_t* a = (const int8_t*)p->ptr[EM_QLINEAR_ADD_P_A];
    const int8_t* b = (const int8_t*)p->ptr[EM_QLINEAR_ADD_P_B];
    int8_t* y = (int8_t*)p->ptr[EM_QLINEAR_ADD_P_OUTPUT];
    const int64_t* dims = p->i + EM_QLINEAR_ADD_I_DIMS;
    const int64_t* sa = p->i + EM_QLINEAR_ADD_I_A_STRIDES;
    const int64_t* sb = p->i + EM_QLINEAR_ADD_I_B_STRIDES;
    const int32_t a_off = (int32_t)p->i[EM_QLINEAR_ADD_I_A_OFFSET], b_off = (int32_t)p->i[EM_QLINEAR_ADD_I_B_OFFSET];
    const int32_t y_off = (int32_t)p->i[EM_QLINEAR_ADD_I_OUT_OFFSET];
    const float ra = p->f[EM_QLINEAR_ADD_F_RATIO_A], rb = p->f[EM_QLINEAR_ADD_F_RATIO_B];
    const float fixed0 = p->f[EM_QLINEAR_ADD_F_FIXED];
    const int64_t span = dims[5];
    const int a_scalar = sa[5] == 0 && span > 1, b_scalar = sb[5] == 0 && span > 1;
    int vector = 0;      /* 2: AVX-512 lanes, 1: AVX2 + FMA lanes, 0: the scalar loop alone */
#if defined(__x86_64__) && defined(__GNUC__)
    const int isa = em_isa();
    vector = isa >= EM_ISA_AVX512 ? 2 : isa >= EM_ISA_AVX2 && __builtin_cpu_supports("fma") ? 1 : 0;
#endif
    (void)vector;
    for (int64_t i0 = 0; i0 < dims[0]; i0++)
    for (int64_t i1 = 0; i1 < dims[1]; i1++)
    for (int64_t i2 = 0; i2 < dims[2]; i2++)
    for (int64_t i3 = 0; i3 < dims[3]; i3++)
    for (int64_t i4 = 0; i4 < dims[4]; i4++, y += span) {
        const int8_t* ap = a + i0 * sa[0] + i1 * sa[1] + i2 * sa[2] + i3 * sa[3] + i4 * sa[4];
        const int8_t* bp = b + i0 * sb[0] + i1 * sb[1] + i2 * sb[2] + i3 * sb[3] + i4 * sb[4];
        float fixed = fixed0;
        if (a_scalar) fixed = fixed + (float)(ap[0] + a_off) * ra;
        if (b_scalar) fixed = fixed + (float)(bp[0] + b_off) * rb;
        int64_t k = 0;
#if defined(__x86_64__) && defined(__GNUC__)
        if ((a_scalar || sa[5] == 1) && (b_scalar || sb[5] == 1)) {
            if (vector == 2)
                k = em_qlinear_add_span_avx512(ap, bp, y, span, a_scalar, b_scalar, a_off, b_off, y_off, ra, rb, fixed);
            else if (vector == 1)
                k = em_qlinear_add_span_avx2(ap, bp, y, span, a_scalar, b_scalar, a_off, b_off, y_off, ra, rb, fixed);
        }
#endif
        for (; k < span; k++) {
            float v = fixed;
            if (!b_scalar) v = fmaf((float)(bp[k * sb[5]] + b_off), rb, v);
            if (!a_scalar) v = fmaf((float)(ap[k * sa[5]] + a_off), ra, v);
            v = v < -1e9f ? -1e9f : (v > 1e9f ? 1e9f : v);
            int32_t q = (int32_t)nearbyintf(v) - y_off;
            y[k] = (int8_t)em_clamp_i32(q, -128, 127);
        }
    }
}

/* com.microsoft QLinearMul as MLAS computes it on x86 (SSE2 kernel, the same for a scalar operand):
 * v = (float)((a - a_zp) (b - b_zp)) * ratio + y_zp with ratio = (s_a * s_b) / s_y, multiply and add rounded
 * separately, converted to nearest even and saturated to the output type.  Zero points are the IR's (uint8
 * tensors are x - 128 with zp - 128, which leaves a - a_zp unchanged); the output zero point and bounds are
 * the ONNX type's, out_offset (128 for uint8) brings the result back to the IR's int8.  Broadcasting as
 * em_onnx_qlinear_add.
 * ptr: a, b, output; i: a zp, b zp, output zp (ONNX type), output min, max (ONNX type), out_offset, output dims
 * (6), a's and b's element strides (6 each); f: ratio. */
enum { EM_QLINEAR_MUL_P_A, EM_QLINEAR_MUL_P_B, EM_QLINEAR_MUL_P_OUTPUT, EM_QLINEAR_MUL_P_COUNT };
enum { EM_QLINEAR_MUL_I_A_ZP, EM_QLINEAR_MUL_I_B_ZP, EM_QLINEAR_MUL_I_OUT_ZP, EM_QLINEAR_MUL_I_OUT_MIN,
       EM_QLINEAR_MUL_I_OUT_MAX, EM_QLINEAR_MUL_I_OUT_OFFSET,
       EM_QLINEAR_MUL_I_DIMS, EM_QLINEAR_MUL_I_DIMS_LAST = EM_QLINEAR_MUL_I_DIMS + 5,
       EM_QLINEAR_MUL_I_A_STRIDES, EM_QLINEAR_MUL_I_A_STRIDES_LAST = EM_QLINEAR_MUL_I_A_STRIDES + 5,
       EM_QLINEAR_MUL_I_B_STRIDES, EM_QLINEAR_MUL_I_B_STRIDES_LAST = EM_QLINEAR_MUL_I_B_STRIDES + 5,
       EM_QLINEAR_MUL_I_COUNT };
enum { EM_QLINEAR_MUL_F_RATIO, EM_QLINEAR_MUL_F_COUNT };

static void em_onnx_qlinear_mul(const em_params* p) {
    const int8_t* a = (const int8_t*)p->ptr[EM_QLINEAR_MUL_P_A];
    const int8_t* b = (const int8_t*)p->ptr[EM_QLINEAR_MUL_P_B];
    int8_t* y = (int8_t*)p->ptr[EM_QLINEAR_MUL_P_OUTPUT];
    const int64_t* dims = p->i + EM_QLINEAR_MUL_I_DIMS;
    const int64_t* sa = p->i + EM_QLINEAR_MUL_I_A_STRIDES;
    const int64_t* sb = p->i + EM_QLINEAR_MUL_I_B_STRIDES;
    const int32_t za = (int32_t)p->i[EM_QLINEAR_MUL_I_A_ZP], zb = (int32_t)p->i[EM_QLINEAR_MUL_I_B_ZP];
    const float zy = (float)p->i[EM_QLINEAR_MUL_I_OUT_ZP];
    const int32_t lo = (int32_t)p->i[EM_QLINEAR_MUL_I_OUT_MIN], hi = (int32_t)p->i[EM_QLINEAR_MUL_I_OUT_MAX];
    const int32_t y_off = (int32_t)p->i[EM_QLINEAR_MUL_I_OUT_OFFSET];
    const float ratio = p->f[EM_QLINEAR_MUL_F_RATIO];
    const int64_t span = dims[5];
    for (int64_t i0 = 0; i0 < dims[0]; i0++)
    for (int64_t i1 = 0; i1 < dims[1]; i1++)
    for (int64_t i2 = 0; i2 < dims[2]; i2++)
    for (int64_t i3 = 0; i3 < dims[3]; i3++)
    for (int64_t i4 = 0; i4 < dims[4]; i4++, y += span) {
        const int8_t* ap = a + i0 * sa[0] + i1 * sa[1] + i2 * sa[2] + i3 * sa[3] + i4 * sa[4];
        const int8_t* bp = b + i0 * sb[0] + i1 * sb[1] + i2 * sb[2] + i3 * sb[3] + i4 * sb[4];
        for (int64_t k = 0; k < span; k++) {
            const int32_t prod = ((int32_t)ap[k * sa[5]] - za) * ((int32_t)bp[k * sb[5]] - zb);
            float v = (float)prod * ratio;
            v = v + zy;
            v = v < -1e9f ? -1e9f : (v > 1e9f ? 1e9f : v);
            y[k] = (int8_t)(em_clamp_i32((int32_t)nearbyintf(v), lo, hi) - y_off);
        }
    }
}

/* com.microsoft QLinearAveragePool / QLinearGlobalAveragePool as onnxruntime computes them, on channels-last
 * int8 data (uint8 as x - 128 with zp - 128; x - x_zp is the same).
 * Window (global 0): each input dequantized to float x_scale * (x - x_zp), summed in float over the window (rows,
 * then columns) clipped to the image, divided by the count (the whole kernel with count_include_pad), then
 * quantized as nearbyintf(avg / y_scale + y_zp).  Global (global 1: the kernel covers the image without pads,
 * MLAS's integer path): acc = sum (x - x_zp) in int32, nearbyintf((float)acc * scale) + y_zp with
 * scale = x_scale / (y_scale * image size).  Output zero point and bounds in the ONNX type; out_offset (128 for
 * uint8) brings the result back to int8.
 * ptr: input, output; i: N, IH, IW, C, OH, OW, KH, KW, SH, SW, pad_top, pad_left, count_include_pad, global,
 * x zp (IR), y zp, y min, y max (ONNX type), out_offset; f: x_scale, y_scale, global scale. */
enum { EM_QLINEAR_POOL_P_INPUT, EM_QLINEAR_POOL_P_OUTPUT, EM_QLINEAR_POOL_P_COUNT };
enum { EM_QLINEAR_POOL_I_N, EM_QLINEAR_POOL_I_IH, EM_QLINEAR_POOL_I_IW, EM_QLINEAR_POOL_I_C, EM_QLINEAR_POOL_I_OH,
       EM_QLINEAR_POOL_I_OW, EM_QLINEAR_POOL_I_KH, EM_QLINEAR_POOL_I_KW, EM_QLINEAR_POOL_I_SH, EM_QLINEAR_POOL_I_SW,
       EM_QLINEAR_POOL_I_PAD_TOP, EM_QLINEAR_POOL_I_PAD_LEFT, EM_QLINEAR_POOL_I_COUNT_INCLUDE_PAD,
       EM_QLINEAR_POOL_I_GLOBAL, EM_QLINEAR_POOL_I_X_ZP, EM_QLINEAR_POOL_I_Y_ZP, EM_QLINEAR_POOL_I_Y_MIN,
       EM_QLINEAR_POOL_I_Y_MAX, EM_QLINEAR_POOL_I_OUT_OFFSET, EM_QLINEAR_POOL_I_COUNT };
enum { EM_QLINEAR_POOL_F_X_SCALE, EM_QLINEAR_POOL_F_Y_SCALE, EM_QLINEAR_POOL_F_GLOBAL_SCALE,
       EM_QLINEAR_POOL_F_COUNT };

static void em_onnx_qlinear_avgpool(const em_params* p) {
    const int8_t* x = (const int8_t*)p->ptr[EM_QLINEAR_POOL_P_INPUT];
    int8_t* y = (int8_t*)p->ptr[EM_QLINEAR_POOL_P_OUTPUT];
    const int64_t N = p->i[EM_QLINEAR_POOL_I_N], IH = p->i[EM_QLINEAR_POOL_I_IH], IW = p->i[EM_QLINEAR_POOL_I_IW];
    const int64_t C = p->i[EM_QLINEAR_POOL_I_C], OH = p->i[EM_QLINEAR_POOL_I_OH], OW = p->i[EM_QLINEAR_POOL_I_OW];
    const int64_t KH = p->i[EM_QLINEAR_POOL_I_KH], KW = p->i[EM_QLINEAR_POOL_I_KW];
    const int64_t SH = p->i[EM_QLINEAR_POOL_I_SH], SW = p->i[EM_QLINEAR_POOL_I_SW];
    const int64_t PT = p->i[EM_QLINEAR_POOL_I_PAD_TOP], PL = p->i[EM_QLINEAR_POOL_I_PAD_LEFT];
    const int include_pad = (int)p->i[EM_QLINEAR_POOL_I_COUNT_INCLUDE_PAD];
    const int global = (int)p->i[EM_QLINEAR_POOL_I_GLOBAL];
    const int32_t xzp = (int32_t)p->i[EM_QLINEAR_POOL_I_X_ZP], yzp = (int32_t)p->i[EM_QLINEAR_POOL_I_Y_ZP];
    const int32_t lo = (int32_t)p->i[EM_QLINEAR_POOL_I_Y_MIN], hi = (int32_t)p->i[EM_QLINEAR_POOL_I_Y_MAX];
    const int32_t off = (int32_t)p->i[EM_QLINEAR_POOL_I_OUT_OFFSET];
    const float xs = p->f[EM_QLINEAR_POOL_F_X_SCALE], ys = p->f[EM_QLINEAR_POOL_F_Y_SCALE];
    const float gscale = p->f[EM_QLINEAR_POOL_F_GLOBAL_SCALE];
    for (int64_t b = 0; b < N; b++)
    for (int64_t oy = 0; oy < OH; oy++)
    for (int64_t ox = 0; ox < OW; ox++) {
        int64_t h0 = oy * SH - PT, w0 = ox * SW - PL;
        const int64_t h1 = h0 + KH < IH ? h0 + KH : IH, w1 = w0 + KW < IW ? w0 + KW : IW;
        h0 = h0 > 0 ? h0 : 0;
        w0 = w0 > 0 ? w0 : 0;
        const int64_t count = include_pad ? KH * KW : (h1 - h0) * (w1 - w0);
        int8_t* yp = y + ((b * OH + oy) * OW + ox) * C;
        for (int64_t c = 0; c < C; c++) {
            int32_t q;
            if (global) {
                int32_t acc = 0;
                for (int64_t h = h0; h < h1; h++)
                    for (int64_t w = w0; w < w1; w++) acc += (int32_t)x[((b * IH + h) * IW + w) * C + c] - xzp;
                q = em_requant_float(acc, gscale) + yzp;
            } else {
                float sum = 0.0f;
                for (int64_t h = h0; h < h1; h++)
                    for (int64_t w = w0; w < w1; w++)
                        sum += xs * (float)((int32_t)x[((b * IH + h) * IW + w) * C + c] - xzp);
                float v = sum / (float)count;
                v = v / ys + (float)yzp;
                v = v < -1e9f ? -1e9f : (v > 1e9f ? 1e9f : v);
                q = (int32_t)nearbyintf(v);
            }
            yp[c] = (int8_t)(em_clamp_i32(q, lo, hi) - off);
        }
    }
}

/* com.microsoft QLinearSoftmax over the last axis (onnxruntime's lookup-table arithmetic).
 * ptr: input (int8; uint8 tensors as x - 128), output, table float[256] with table[255 - (max - x)] = e^(...);
 * i: rows, depth, unsigned (1: the ONNX tensor is uint8), output zero point in the ONNX type;
 * f: inv_scale, floor(1 / y_scale).  Only the upper end saturates (the quotient is never negative). */
enum { EM_QLINEAR_SOFTMAX_P_INPUT, EM_QLINEAR_SOFTMAX_P_OUTPUT, EM_QLINEAR_SOFTMAX_P_TABLE,
       EM_QLINEAR_SOFTMAX_P_COUNT };
enum { EM_QLINEAR_SOFTMAX_I_ROWS, EM_QLINEAR_SOFTMAX_I_DEPTH, EM_QLINEAR_SOFTMAX_I_UNSIGNED,
       EM_QLINEAR_SOFTMAX_I_OUT_ZP, EM_QLINEAR_SOFTMAX_I_COUNT };
enum { EM_QLINEAR_SOFTMAX_F_INV_SCALE, EM_QLINEAR_SOFTMAX_F_COUNT };

static void em_onnx_qlinear_softmax(const em_params* p) {
    const int8_t* x = (const int8_t*)p->ptr[EM_QLINEAR_SOFTMAX_P_INPUT];
    int8_t* y = (int8_t*)p->ptr[EM_QLINEAR_SOFTMAX_P_OUTPUT];
    const float* table = (const float*)p->ptr[EM_QLINEAR_SOFTMAX_P_TABLE];
    const int64_t rows = p->i[EM_QLINEAR_SOFTMAX_I_ROWS], depth = p->i[EM_QLINEAR_SOFTMAX_I_DEPTH];
    const int is_unsigned = (int)p->i[EM_QLINEAR_SOFTMAX_I_UNSIGNED];
    const int32_t zp = (int32_t)p->i[EM_QLINEAR_SOFTMAX_I_OUT_ZP];
    const float y_scale = p->f[EM_QLINEAR_SOFTMAX_F_INV_SCALE];
    for (int64_t r = 0; r < rows; r++, x += depth, y += depth) {
        int32_t xmax = -128;
        for (int64_t k = 0; k < depth; k++) xmax = x[k] > xmax ? x[k] : xmax;
        const float* shifted = table + 255 - xmax;
        float sum = 0.0f;
        for (int64_t k = 0; k < depth; k++) sum += shifted[x[k]];
        if (sum == 0.0f) {                    /* cannot happen: the maximum's entry is positive */
            for (int64_t k = 0; k < depth; k++) y[k] = 0;
            continue;
        }
        for (int64_t k = 0; k < depth; k++) {
            float q = nearbyintf((shifted[x[k]] * y_scale) / sum);
            q = q > 1e9f ? 1e9f : q;
            if (is_unsigned) {
                uint32_t v = (uint32_t)(int32_t)q + (uint32_t)zp;
                v = v > 255u ? 255u : v;
                y[k] = (int8_t)(v - 128u);
            } else {
                int32_t v = (int32_t)q + zp;
                y[k] = (int8_t)(v > 127 ? 127 : v);
            }
        }
    }
}

#endif
