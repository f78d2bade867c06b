/* Hybrid ("dynamic-range") CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED: float32 input / output / bias,
 * int8 weights.  The input is quantized to int8 on the fly (per batch), multiplied in int32, and the int32 sums
 * are scaled back to float -- the arithmetic of LiteRT's BUILTIN_REF kernels, step for step:
 *
 *  quantization of the input: tensor_utils::{Symmetric,Asymmetric}QuantizeFloats dispatch NEON_OR_PORTABLE,
 *  and LiteRT's x86 builds define USE_NEON (NEON_2_SSE), so the Neon versions run (checked against the
 *  installed ai_edge_litert: they, not the portable ones, reproduce its quantized temporaries bit for bit).
 *  R(t) = (int)(t + (t < 0 ? -0.5f : 0.5f)) (float add, truncate) for the first n & ~7 values, roundf(t) after.
 *   symmetric:  range = max(|min x|, |max x|); range == 0 -> q = 0, scale = 1;
 *               else scale = range / 127.f, q = clamp(R(x * (127.f / range)), -127, 127)
 *   asymmetric: rmin = min(0, min x), rmax = max(0, max x) (float); rmin == rmax -> q = 0, scale 1, zp 0;
 *               else s = (double)(rmax - rmin) / 255, zero point from min or max (smaller error), nudged
 *               into [-128, 127] with round() in double; scale = (float)s;
 *               q = clamp(zp + R(x * (float)(1.0 / scale)), -128, 127)
 *  CONV_2D per tensor (conv.cc EvalHybrid -> optimized_ops::HybridConv, used by every kernel type):
 *      symmetric per batch, sf = scale * w_scale (float); im2col with pad 0;
 *      out = clamp((float)acc * sf + bias)
 *  CONV_2D per channel (EvalHybridPerChannel -> reference_ops::HybridConvPerChannel; taken when the weight
 *      scales are not all equal):  asymmetric per batch, acc = sum over in-image taps of w * (q - zp);
 *      out = clamp(((float)acc * w_scale[c]) * scale + bias[c])
 *  DEPTHWISE_CONV_2D (EvalHybridPerChannel -> reference_integer_ops::DepthwiseConvHybridPerChannel, always
 *      per channel): asymmetric per batch, acc as above; out = clamp((float)acc * (w_scale[c] * scale) + bias[c])
 *  FULLY_CONNECTED (EvalHybridDense): out = bias (or 0); if every input value is 0 -> activation only;
 *      per row of K inputs: symmetric or asymmetric (option asymmetric_quantize_inputs);
 *      per tensor: sf = scale * w_scale, row_scale = sf; per channel (> 1 scale): row_scale = w_scale[o] * scale;
 *      acc = dot(w[o], q) - zp * rowsum(w[o]); out += (float)acc * row_scale; then the activation clamp.
 *  Integer sums are exact, so their order does not matter; the float steps above are done in that order,
 *  in float, without contraction (the build uses -ffp-contract=off).
 *
 * Layout EM_HY_CONV of em_conv2d_hybrid and em_depthwise_hybrid:
 *   i: N, IH, IW, IC, OH, OW, OC, KH, KW, SH, SW, DH, DW, pad_top, pad_left, mode (conv only: 0 per-tensor
 *      symmetric, 1 per-channel asymmetric), depth multiplier (depthwise), direct (conv: 1x1, stride 1, no
 *      padding -> no im2col), rows per im2col chunk (conv)
 *   ptr: input f32 [N,IH,IW,IC], weights int8 (conv [OC][KH*KW*IC], depthwise [KH*KW][OC]), bias f32 [OC] or NULL,
 *        output f32 [N,OH,OW,OC], per-channel weight scales f32 [OC] (NULL in conv mode 0), weight row sums int32
 *        [OC] (conv mode 1; NULL otherwise), scratch
 *   f: act_min, act_max, weight scale (conv mode 0)
 *   scratch bytes: conv      A(IH*IW*IC) + (direct ? 0 : A(chunk * KH*KW*IC)) + 4 * OC
 *                            (quantized image of one batch, im2col rows, int32 sums of one output pixel)
 *                  depthwise A(IH*IW*IC) + 4 * OC   (quantized image of one batch, int32 sums)
 *   where A(n) = (n + 15) & ~15; the scratch pointer must be 16-byte aligned (the arena aligns to 64).
 *
 * Layout EM_HY_FC of em_fully_connected_hybrid:
 *   i: rows (batches), depth (K), units, asymmetric inputs (0/1), per-channel (0/1), clamp (0 for activation
 *      NONE: ApplyActivationToVector leaves the values alone, even +-inf)
 *   ptr: input f32 [rows][K], weights int8 [units][K], bias f32 [units] or NULL, output f32 [rows][units],
 *        per-channel scales f32 [units] (per-channel only), weight row sums int32 [units] (asymmetric only), scratch
 *   f: act_min, act_max, weight scale (per tensor)
 *   scratch bytes: K (one quantized row)
 */
#ifndef EM_HYBRID_H
#define EM_HYBRID_H
#include <stdint.h>
#include <string.h>
#include <math.h>
#include "em_params.h"
#include "em_depthwise.h"
#include "em_isa.h"
#include "em_vec.h"

enum { EM_HY_CONV_P_INPUT, EM_HY_CONV_P_WEIGHTS, EM_HY_CONV_P_BIAS, EM_HY_CONV_P_OUTPUT, EM_HY_CONV_P_CHANNEL_SCALES,
       EM_HY_CONV_P_ROW_SUMS, EM_HY_CONV_P_SCRATCH, EM_HY_CONV_P_COUNT };
enum { EM_HY_CONV_I_N, EM_HY_CONV_I_IH, EM_HY_CONV_I_IW, EM_HY_CONV_I_IC, EM_HY_CONV_I_OH, EM_HY_CONV_I_OW,
       EM_HY_CONV_I_OC, EM_HY_CONV_I_KH, EM_HY_CONV_I_KW, EM_HY_CONV_I_SH, EM_HY_CONV_I_SW, EM_HY_CONV_I_DH,
       EM_HY_CONV_I_DW, EM_HY_CONV_I_PAD_TOP, EM_HY_CONV_I_PAD_LEFT, EM_HY_CONV_I_MODE, EM_HY_CONV_I_DM,
       EM_HY_CONV_I_DIRECT, EM_HY_CONV_I_CHUNK, EM_HY_CONV_I_COUNT };
enum { EM_HY_CONV_F_ACT_MIN, EM_HY_CONV_F_ACT_MAX, EM_HY_CONV_F_WEIGHT_SCALE, EM_HY_CONV_F_COUNT };
enum { EM_HY_FC_P_INPUT, EM_HY_FC_P_WEIGHTS, EM_HY_FC_P_BIAS, EM_HY_FC_P_OUTPUT, EM_HY_FC_P_CHANNEL_SCALES,
       EM_HY_FC_P_ROW_SUMS, EM_HY_FC_P_SCRATCH, EM_HY_FC_P_COUNT };
enum { EM_HY_FC_I_ROWS, EM_HY_FC_I_DEPTH, EM_HY_FC_I_UNITS, EM_HY_FC_I_ASYMMETRIC, EM_HY_FC_I_PER_CHANNEL,
       EM_HY_FC_I_CLAMP, EM_HY_FC_I_COUNT };
enum { EM_HY_FC_F_ACT_MIN, EM_HY_FC_F_ACT_MAX, EM_HY_FC_F_WEIGHT_SCALE, EM_HY_FC_F_COUNT };

#define EM_HY_ALIGN16(n) (((n) + 15) & ~(int64_t)15)

/* std::min / std::max as LiteRT uses them (they differ from fminf / fmaxf only for NaN). */
static inline float em_hy_act(float x, float lo, float hi) {
    float y = x < lo ? lo : x;          /* ActivationFunctionWithMinMax: min(max(x, lo), hi) */
    return hi < y ? hi : y;
}

/* NEON RoundToNearest as x86 builds run it (NEON_2_SSE): t + (t < 0 ? -0.5f : 0.5f) in float, truncated. */
static inline int32_t em_hy_round_vec(float t) {
    float u = t + (t < 0.0f ? -0.5f : 0.5f);
    return (int32_t)u;
}

/* AVX-512 and AVX2 forms of the two loops below, one body over em_vec.h's operations (exact: min / max are, and
 * the rounding is the same operations) */
#if defined(__x86_64__) && defined(__GNUC__)
#define EM_HY_QUANT_SIMD(ISA, TARGET)                                                                         \
/* min and max of x[0..n) when n >= L and no value is NaN (return 1), else 0 and nothing is written */        \
TARGET static int em_hy_minmax_##ISA(const float* x, int64_t n, float* mn, float* mx) {                      \
    enum { L = EM_V(ISA, LANES) };                                                                            \
    EM_V(ISA, T) a, b;                                                                                        \
    int64_t i;                                                                                                \
    if (n < L) return 0;                                                                                      \
    a = b = EM_V(ISA, LOAD)(x);                                                                               \
    for (i = 0; i + L <= n; i += L) {                                                                         \
        const EM_V(ISA, T) v = EM_V(ISA, LOAD)(x + i);                                                        \
        if (EM_V(ISA, ANY_NAN)(v)) return 0;                                                                  \
        a = EM_V(ISA, MIN)(a, v);                                                                             \
        b = EM_V(ISA, MAX)(b, v);                                                                             \
    }                                                                                                         \
    if (i < n) {                               /* the last L values again: min / max do not mind */           \
        const EM_V(ISA, T) v = EM_V(ISA, LOAD)(x + n - L);                                                    \
        if (EM_V(ISA, ANY_NAN)(v)) return 0;                                                                  \
        a = EM_V(ISA, MIN)(a, v);                                                                             \
        b = EM_V(ISA, MAX)(b, v);                                                                             \
    }                                                                                                         \
    *mn = EM_V(ISA, REDUCE_MIN)(a);                                                                           \
    *mx = EM_V(ISA, REDUCE_MAX)(b);                                                                           \
    return 1;                                                                                                 \
}                                                                                                             \
/* q[i] = clamp(zp + R(x[i] * inv), lo, hi) for i < n rounded down to L, R = em_hy_round_vec; returns that count */ \
TARGET static int64_t em_hy_round_##ISA(const float* x, int64_t n, float inv, int32_t zp, int32_t lo,         \
                                        int32_t hi, int8_t* q) {                                              \
    enum { L = EM_V(ISA, LANES) };                                                                            \
    const EM_V(ISA, T) vinv = EM_V(ISA, SET1)(inv), pos = EM_V(ISA, SET1)(0.5f), neg = EM_V(ISA, SET1)(-0.5f); \
    int64_t i;                                                                                                \
    for (i = 0; i + L <= n; i += L) {                                                                         \
        const EM_V(ISA, T) t = EM_V(ISA, MUL)(EM_V(ISA, LOAD)(x + i), vinv);                                  \
        const EM_V(ISA, T) u = EM_V(ISA, ADD)(t, EM_V(ISA, LT_SELECT)(t, EM_V(ISA, ZERO)(), pos, neg));       \
        EM_V(ISA, IT) v = EM_V(ISA, IADD)(EM_V(ISA, ISET1)(zp), EM_V(ISA, CVTT)(u));                          \
        v = EM_V(ISA, IMIN)(EM_V(ISA, IMAX)(v, EM_V(ISA, ISET1)(lo)), EM_V(ISA, ISET1)(hi));                  \
        EM_V(ISA, STORE_I8)(q + i, v);                                                                        \
    }                                                                                                         \
    return i;                                                                                                 \
}
EM_HY_QUANT_SIMD(avx512, __attribute__((target("avx512f"))))
EM_HY_QUANT_SIMD(avx2, __attribute__((target("avx2"))))
#endif

static inline void em_hy_minmax(const float* x, int64_t n, float* mn, float* mx) {
    float a = n > 0 ? x[0] : 0.0f, b = a;
#if defined(__x86_64__) && defined(__GNUC__)
    if (em_isa() >= EM_ISA_AVX512 && em_hy_minmax_avx512(x, n, mn, mx)) return;
    if (em_isa() >= EM_ISA_AVX2 && em_hy_minmax_avx2(x, n, mn, mx)) return;
#endif
    for (int64_t i = 1; i < n; i++) {
        if (x[i] < a) a = x[i];
        if (!(x[i] < b)) b = x[i];
    }
    *mn = a;
    *mx = b;
}

/* NeonSymmetricQuantizeFloats (LiteRT's x86 builds define USE_NEON through NEON_2_SSE, so NEON_OR_PORTABLE
 * picks it): the first n & ~7 values round with em_hy_round_vec, the rest with roundf. */
static void em_hy_quantize_sym(const float* x, int64_t n, int8_t* q, float* scale) {
    float mn, mx;
    em_hy_minmax(x, n, &mn, &mx);
    const float amn = fabsf(mn), amx = fabsf(mx);
    const float range = amn < amx ? amx : amn;
    if (range == 0.0f) {
        if (n > 0) memset(q, 0, (size_t)n);
        *scale = 1.0f;
        return;
    }
    *scale = range / 127.0f;
    const float inv = 127.0f / range;
    const int64_t vec = n & ~(int64_t)7;
    int64_t i = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    if (em_isa() >= EM_ISA_AVX512) i = em_hy_round_avx512(x, vec, inv, 0, -127, 127, q);
    else if (em_isa() >= EM_ISA_AVX2) i = em_hy_round_avx2(x, vec, inv, 0, -127, 127, q);
#endif
    for (; i < n; i++) {
        const float t = x[i] * inv;
        int32_t v = i < vec ? em_hy_round_vec(t) : (int32_t)roundf(t);
        v = v < -127 ? -127 : (v > 127 ? 127 : v);
        q[i] = (int8_t)v;
    }
}

/* NeonAsymmetricQuantizeFloats: range in float, scale and zero point in double, inverse scale
 * (float)(1.0 / scale), q = round(x * inv) + zp. */
static void em_hy_quantize_asym(const float* x, int64_t n, int8_t* q, float* scale, int32_t* zp) {
    float mn, mx;
    em_hy_minmax(x, n, &mn, &mx);
    const float rmin = mn < 0.0f ? mn : 0.0f;
    const float rmax = 0.0f < mx ? mx : 0.0f;
    const double qmin = -128.0, qmax = 127.0;
    if (rmin == rmax) {
        if (n > 0) memset(q, 0, (size_t)n);
        *scale = 1.0f;
        *zp = 0;
        return;
    }
    const float span = rmax - rmin;
    const double s = (double)span / (qmax - qmin);
    const double zp_from_min = qmin - (double)rmin / s;
    const double zp_from_max = qmax - (double)rmax / s;
    const double err_min = fabs(qmin) + fabs((double)rmin / s);
    const double err_max = fabs(qmax) + fabs((double)rmax / s);
    const double zpd = err_min < err_max ? zp_from_min : zp_from_max;
    int32_t nudged;
    if (zpd <= qmin) nudged = -128;
    else if (zpd >= qmax) nudged = 127;
    else nudged = (int32_t)(int8_t)round(zpd);
    *scale = (float)s;
    *zp = nudged;
    const float inv = *scale == 0.0f ? 0.0f : (float)(1.0 / (double)*scale);
    const int64_t vec = n & ~(int64_t)7;
    int64_t i = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    if (em_isa() >= EM_ISA_AVX512) i = em_hy_round_avx512(x, vec, inv, nudged, -128, 127, q);
    else if (em_isa() >= EM_ISA_AVX2) i = em_hy_round_avx2(x, vec, inv, nudged, -128, 127, q);
#endif
    for (; i < n; i++) {
        const float t = x[i] * inv;
        int32_t v = nudged + (i < vec ? em_hy_round_vec(t) : (int32_t)roundf(t));
        v = v < -128 ? -128 : (v > 127 ? 127 : v);
        q[i] = (int8_t)v;
    }
}

/* One row of K int8 values against weight rows w[o][K], o in [0, OC): sums into acc[OC]. */
static inline void em_hy_dot_rows(const int8_t* a, const int8_t* w, int64_t OC, int64_t K, int32_t* acc) {
    int64_t o = 0;
    for (; o + 4 <= OC; o += 4) {
        const int8_t* w0 = w + (o + 0) * K;
        const int8_t* w1 = w + (o + 1) * K;
        const int8_t* w2 = w + (o + 2) * K;
        const int8_t* w3 = w + (o + 3) * K;
        int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (int64_t k = 0; k < K; k++) {
            int32_t av = a[k];
            s0 += av * w0[k];
            s1 += av * w1[k];
            s2 += av * w2[k];
            s3 += av * w3[k];
        }
        acc[o + 0] = s0; acc[o + 1] = s1; acc[o + 2] = s2; acc[o + 3] = s3;
    }
    for (; o < OC; o++) {
        const int8_t* wr = w + o * K;
        int32_t s = 0;
        for (int64_t k = 0; k < K; k++) s += (int32_t)a[k] * wr[k];
        acc[o] = s;
    }
}

/* n bytes: few (a first conv's one to a few channels per tap) in 8-, 4-, 2- and 1-byte moves, with no loop the
 * compiler would turn back into a library call per tap; many with memcpy / memset */
static inline void em_hy_copy(int8_t* dst, const int8_t* src, int64_t n) {
    if (n >= 64) {
        memcpy(dst, src, (size_t)n);
        return;
    }
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, src + i, 8);
        memcpy(dst + i, &v, 8);
    }
    if (i + 4 <= n) {
        uint32_t v;
        memcpy(&v, src + i, 4);
        memcpy(dst + i, &v, 4);
        i += 4;
    }
    if (i + 2 <= n) {
        uint16_t v;
        memcpy(&v, src + i, 2);
        memcpy(dst + i, &v, 2);
        i += 2;
    }
    if (i < n) dst[i] = src[i];
}
static inline void em_hy_fill(int8_t* dst, int8_t value, int64_t n) {
    if (n >= 64) {
        memset(dst, (unsigned char)value, (size_t)n);
        return;
    }
    const uint64_t v = (uint64_t)(uint8_t)value * 0x0101010101010101ull;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) memcpy(dst + i, &v, 8);
    if (i + 4 <= n) {
        memcpy(dst + i, &v, 4);
        i += 4;
    }
    if (i + 2 <= n) {
        memcpy(dst + i, &v, 2);
        i += 2;
    }
    if (i < n) dst[i] = value;
}

/* Receptive fields of output pixels [first, first + rows) of the quantized image q (one batch) into col;
 * taps outside the image take `pad` (0 symmetric, the zero point asymmetric: they then add nothing).  A window
 * row inside the image (no dilation across it) is one copy of KW * IC bytes. */
static void em_hy_im2col(const int8_t* q, const int64_t* d, int64_t first, int64_t rows, int8_t pad,
                         int8_t* col) {
    const int64_t IH = d[EM_HY_CONV_I_IH], IW = d[EM_HY_CONV_I_IW], IC = d[EM_HY_CONV_I_IC], OW = d[EM_HY_CONV_I_OW];
    const int64_t KH = d[EM_HY_CONV_I_KH], KW = d[EM_HY_CONV_I_KW], DW = d[EM_HY_CONV_I_DW];
    const int64_t K = KH * KW * IC;
    for (int64_t r = 0; r < rows; r++) {
        const int64_t pix = first + r, oy = pix / OW, ox = pix % OW;
        const int64_t ix0 = ox * d[EM_HY_CONV_I_SW] - d[EM_HY_CONV_I_PAD_LEFT];
        const int row_inside = DW == 1 && ix0 >= 0 && ix0 + KW <= IW;
        int8_t* dst = col + r * K;
        for (int64_t ky = 0; ky < KH; ky++) {
            const int64_t iy = oy * d[EM_HY_CONV_I_SH] - d[EM_HY_CONV_I_PAD_TOP] + ky * d[EM_HY_CONV_I_DH];
            if (iy < 0 || iy >= IH) {
                em_hy_fill(dst, pad, KW * IC);
                dst += KW * IC;
                continue;
            }
            if (row_inside) {
                em_hy_copy(dst, q + (iy * IW + ix0) * IC, KW * IC);
                dst += KW * IC;
                continue;
            }
            for (int64_t kx = 0; kx < KW; kx++, dst += IC) {
                const int64_t ix = ix0 + kx * DW;
                if (ix < 0 || ix >= IW) em_hy_fill(dst, pad, IC);
                else em_hy_copy(dst, q + (iy * IW + ix) * IC, IC);
            }
        }
    }
}

/* Weights [KH*KW][OC], output channel oc = ic * DM + m. */
static void em_depthwise_hybrid(const em_params* p) {
    const int64_t* d = p->i;
    const float* in = (const float*)p->ptr[EM_HY_CONV_P_INPUT];
    const int8_t* w = (const int8_t*)p->ptr[EM_HY_CONV_P_WEIGHTS];
    const float* bias = (const float*)p->ptr[EM_HY_CONV_P_BIAS];
    float* out = (float*)p->ptr[EM_HY_CONV_P_OUTPUT];
    const float* wscale = (const float*)p->ptr[EM_HY_CONV_P_CHANNEL_SCALES];
    const int64_t IH = d[EM_HY_CONV_I_IH], IW = d[EM_HY_CONV_I_IW], IC = d[EM_HY_CONV_I_IC], OH = d[EM_HY_CONV_I_OH];
    const int64_t OW = d[EM_HY_CONV_I_OW], OC = d[EM_HY_CONV_I_OC];
    const int64_t KH = d[EM_HY_CONV_I_KH], KW = d[EM_HY_CONV_I_KW], DM = d[EM_HY_CONV_I_DM];
    const int64_t img = IH * IW * IC;
    const float lo = p->f[EM_HY_CONV_F_ACT_MIN], hi = p->f[EM_HY_CONV_F_ACT_MAX];
    int8_t* q = (int8_t*)p->ptr[EM_HY_CONV_P_SCRATCH];
    int32_t* acc = (int32_t*)(void*)(q + EM_HY_ALIGN16(img));
    for (int64_t b = 0; b < d[EM_HY_CONV_I_N]; b++) {
        float sf;
        int32_t zp;
        em_hy_quantize_asym(in + b * img, img, q, &sf, &zp);
        for (int64_t oy = 0; oy < OH; oy++)
        for (int64_t ox = 0; ox < OW; ox++) {
            for (int64_t c = 0; c < OC; c++) acc[c] = 0;
            em_depthwise_accumulate_s8(q, w, IH, IW, IC, OC, KH, KW, DM,
                                       oy * d[EM_HY_CONV_I_SH] - d[EM_HY_CONV_I_PAD_TOP],
                                       ox * d[EM_HY_CONV_I_SW] - d[EM_HY_CONV_I_PAD_LEFT], d[EM_HY_CONV_I_DH],
                                       d[EM_HY_CONV_I_DW], zp, acc);
            float* o = out + ((b * OH + oy) * OW + ox) * OC;
            for (int64_t c = 0; c < OC; c++) {
                const float scale = wscale[c] * sf;
                float v = (float)acc[c];
                v = v * scale;
                if (bias) v = v + bias[c];
                o[c] = em_hy_act(v, lo, hi);
            }
        }
    }
}

static void em_fully_connected_hybrid(const em_params* p) {
    const int64_t* d = p->i;
    const float* in = (const float*)p->ptr[EM_HY_FC_P_INPUT];
    const int8_t* w = (const int8_t*)p->ptr[EM_HY_FC_P_WEIGHTS];
    const float* bias = (const float*)p->ptr[EM_HY_FC_P_BIAS];
    float* out = (float*)p->ptr[EM_HY_FC_P_OUTPUT];
    const float* wscale = (const float*)p->ptr[EM_HY_FC_P_CHANNEL_SCALES];
    const int32_t* rowsum = (const int32_t*)p->ptr[EM_HY_FC_P_ROW_SUMS];
    int8_t* q = (int8_t*)p->ptr[EM_HY_FC_P_SCRATCH];
    const int64_t rows = d[EM_HY_FC_I_ROWS], K = d[EM_HY_FC_I_DEPTH], U = d[EM_HY_FC_I_UNITS];
    const int asym = d[EM_HY_FC_I_ASYMMETRIC] != 0, perch = d[EM_HY_FC_I_PER_CHANNEL] != 0;
    const float lo = p->f[EM_HY_FC_F_ACT_MIN], hi = p->f[EM_HY_FC_F_ACT_MAX];
    for (int64_t b = 0; b < rows; b++) {
        float* o = out + b * U;
        if (bias) memcpy(o, bias, (size_t)U * sizeof(float));
        else for (int64_t u = 0; u < U; u++) o[u] = 0.0f;
    }
    int all_zero = 1;
    for (int64_t i = 0; i < rows * K && all_zero; i++) all_zero = in[i] == 0.0f;
    if (!all_zero) {
        for (int64_t b = 0; b < rows; b++) {
            float sf;
            int32_t zp = 0;
            if (asym) em_hy_quantize_asym(in + b * K, K, q, &sf, &zp);
            else em_hy_quantize_sym(in + b * K, K, q, &sf);
            if (!perch) sf = sf * p->f[EM_HY_FC_F_WEIGHT_SCALE];
            float* o = out + b * U;
            for (int64_t u = 0; u < U; u++) {
                const int8_t* wr = w + u * K;
                int32_t s = 0;
                for (int64_t k = 0; k < K; k++) s += (int32_t)wr[k] * q[k];
                if (zp) s -= zp * rowsum[u];
                const float row_scale = perch ? wscale[u] * sf : sf;
                float t = (float)s * row_scale;
                o[u] = o[u] + t;
            }
        }
    }
    if (d[EM_HY_FC_I_CLAMP])
        for (int64_t i = 0; i < rows * U; i++) out[i] = em_hy_act(out[i], lo, hi);
}

/* ----- SIMD int8 GEMMs for the hybrid CONV_2D (em_conv2d_hybrid_vnni / em_conv2d_hybrid_avx2) -----------------
 * The same quantization, im2col and float epilogue as em_conv2d_hybrid; only the integer sums differ in how they
 * are computed (exact either way).  Layout EM_HY_PACKED: EM_HY_CONV's slots, with 1 the packed weights, then
 *   ptr: offsets int32 [OCp] (VNNI: 128 * sum of each channel's weights, taken off the u8 x s8 sums; AVX2: zeros)
 *   i:   Kp (K padded: to 4 VNNI, 2 AVX2), OCp (OC padded to whole vectors), group (vectors per column group)
 * VNNI weights: column groups of `group` 16-column vectors, each [Kp / 4][vectors][16][4] int8 (vpdpbusd with the
 * input rows as uint8 q + 128); AVX2 weights: groups of 8-column vectors, each [Kp / 2][vectors][8][2] int16
 * (vpmaddwd with the rows widened to int16).
 * scratch bytes: A16(IH*IW*IC) + 64, then (direct ? 0 : A16(chunk * K) + 64), then chunk * OCp int32 sums, then
 * (AVX2) chunk * Kp int16 rows. */
enum { EM_HY_PACKED_P_OFFSETS = EM_HY_CONV_P_COUNT, EM_HY_PACKED_P_COUNT };
enum { EM_HY_PACKED_I_KP = EM_HY_CONV_I_COUNT, EM_HY_PACKED_I_OCP, EM_HY_PACKED_I_GROUP, EM_HY_PACKED_I_COUNT };
enum { EM_HY_PACKED_F_COUNT = EM_HY_CONV_F_COUNT };

#define EM_HY_TILE_ROWS 6

#if defined(__x86_64__) && defined(__GNUC__)
#define EM_HY_VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))
#define EM_HY_AVX2 __attribute__((target("avx2")))

/* sums[r][v * 16 + j] = sum_k q_r[k] w[col j][k] for rows [0, mrows) of a (row stride lda), one column group */
#define EM_HY_VNNI_TILE(NV)                                                                                   \
EM_HY_VNNI static void em_hy_vnni_tile_##NV(const int8_t* a, int64_t lda, int64_t mrows, const int8_t* w,   \
                                           int64_t k4n, const int32_t* offs, int32_t* sums, int64_t lds) {   \
    __m512i acc[EM_HY_TILE_ROWS][NV];                                                                         \
    const int8_t* ar[EM_HY_TILE_ROWS];                                                                        \
    const __m512i flip = _mm512_set1_epi32((int)0x80808080u);                                                 \
    _Pragma("GCC unroll 8") for (int r = 0; r < EM_HY_TILE_ROWS; r++) {                                       \
        ar[r] = a + (r < mrows ? r : mrows - 1) * lda;                                                        \
        _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_si512();              \
    }                                                                                                         \
    for (int64_t k4 = 0; k4 < k4n; k4++, w += NV * 64) {                                                      \
        __m512i wv[NV];                                                                                       \
        _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) wv[v] = _mm512_loadu_si512((const void*)(w + v * 64)); \
        _Pragma("GCC unroll 8") for (int r = 0; r < EM_HY_TILE_ROWS; r++) {                                   \
            int32_t word;                                                                                     \
            memcpy(&word, ar[r] + 4 * k4, 4);                                                                 \
            const __m512i x = _mm512_xor_si512(_mm512_set1_epi32(word), flip);                                \
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) acc[r][v] = _mm512_dpbusd_epi32(acc[r][v], x, wv[v]); \
        }                                                                                                     \
    }                                                                                                         \
    _Pragma("GCC unroll 8") for (int r = 0; r < EM_HY_TILE_ROWS; r++) {                                       \
        if (r >= mrows) break;                                                                                \
        _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++)                                                  \
            _mm512_storeu_si512((void*)(sums + r * lds + v * 16),                                             \
                                _mm512_sub_epi32(acc[r][v], _mm512_loadu_si512((const void*)(offs + v * 16)))); \
    }                                                                                                         \
}
EM_HY_VNNI_TILE(1)
EM_HY_VNNI_TILE(2)
EM_HY_VNNI_TILE(3)
EM_HY_VNNI_TILE(4)

/* AVX2: rows already widened to int16 (a16, row stride lda16 = Kp) */
#define EM_HY_AVX2_TILE(NV)                                                                                   \
EM_HY_AVX2 static void em_hy_avx2_tile_##NV(const int16_t* a, int64_t lda, int64_t mrows, const int16_t* w,  \
                                           int64_t k2n, int32_t* sums, int64_t lds) {                        \
    __m256i acc[4][NV];                                                                                       \
    const int16_t* ar[4];                                                                                     \
    _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++) {                                                     \
        ar[r] = a + (r < mrows ? r : mrows - 1) * lda;                                                        \
        _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++) acc[r][v] = _mm256_setzero_si256();              \
    }                                                                                                         \
    for (int64_t k2 = 0; k2 < k2n; k2++, w += NV * 16) {                                                      \
        __m256i wv[NV];                                                                                       \
        _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++) wv[v] = _mm256_loadu_si256((const __m256i*)(const void*)(w + v * 16)); \
        _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++) {                                                 \
            int32_t pair;                                                                                     \
            memcpy(&pair, ar[r] + 2 * k2, 4);                                                                 \
            const __m256i x = _mm256_set1_epi32(pair);                                                        \
            _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++)                                              \
                acc[r][v] = _mm256_add_epi32(acc[r][v], _mm256_madd_epi16(x, wv[v]));                         \
        }                                                                                                     \
    }                                                                                                         \
    _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++) {                                                     \
        if (r >= mrows) break;                                                                                \
        _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++)                                                  \
            _mm256_storeu_si256((__m256i*)(void*)(sums + r * lds + v * 8), acc[r][v]);                        \
    }                                                                                                         \
}
EM_HY_AVX2_TILE(1)
EM_HY_AVX2_TILE(2)

/* int32 sums [rows][OCp] of `rows` int8 rows (stride lda) against the packed weights */
EM_HY_VNNI static void em_hy_gemm_vnni(const int8_t* a, int64_t lda, int64_t rows, const int8_t* w, int64_t Kp,
                                       int64_t OCp, int64_t G, const int32_t* offs, int32_t* sums) {
    const int64_t V = OCp / 16;
    for (int64_t g = 0; g * G < V; g++) {
        const int64_t nv = V - g * G < G ? V - g * G : G, c0 = g * G * 16;
        const int8_t* wg = w + c0 * Kp;
        for (int64_t m0 = 0; m0 < rows; m0 += EM_HY_TILE_ROWS) {
            const int64_t mr = rows - m0 < EM_HY_TILE_ROWS ? rows - m0 : EM_HY_TILE_ROWS;
            const int8_t* am = a + m0 * lda;
            int32_t* sm = sums + m0 * OCp + c0;
            if (nv == 4) em_hy_vnni_tile_4(am, lda, mr, wg, Kp / 4, offs + c0, sm, OCp);
            else if (nv == 3) em_hy_vnni_tile_3(am, lda, mr, wg, Kp / 4, offs + c0, sm, OCp);
            else if (nv == 2) em_hy_vnni_tile_2(am, lda, mr, wg, Kp / 4, offs + c0, sm, OCp);
            else em_hy_vnni_tile_1(am, lda, mr, wg, Kp / 4, offs + c0, sm, OCp);
        }
    }
}

EM_HY_AVX2 static void em_hy_gemm_avx2(const int8_t* a, int64_t lda, int64_t rows, int64_t K, const int16_t* w,
                                       int64_t Kp, int64_t OCp, int64_t G, int16_t* a16, int32_t* sums) {
    const int64_t V = OCp / 8;
    for (int64_t r = 0; r < rows; r++) {
        int64_t k = 0;
        for (; k < K; k++) a16[r * Kp + k] = a[r * lda + k];
        for (; k < Kp; k++) a16[r * Kp + k] = 0;
    }
    for (int64_t g = 0; g * G < V; g++) {
        const int64_t nv = V - g * G < G ? V - g * G : G, c0 = g * G * 8;
        const int16_t* wg = w + c0 * Kp;
        for (int64_t m0 = 0; m0 < rows; m0 += 4) {
            const int64_t mr = rows - m0 < 4 ? rows - m0 : 4;
            if (nv == 2) em_hy_avx2_tile_2(a16 + m0 * Kp, Kp, mr, wg, Kp / 2, sums + m0 * OCp + c0, OCp);
            else em_hy_avx2_tile_1(a16 + m0 * Kp, Kp, mr, wg, Kp / 2, sums + m0 * OCp + c0, OCp);
        }
    }
}

static void em_conv2d_hybrid_vnni(const em_params* p);
static void em_conv2d_hybrid_avx2(const em_params* p);
#else
static void em_conv2d_hybrid_vnni(const em_params* p) { (void)p; }
static void em_conv2d_hybrid_avx2(const em_params* p) { (void)p; }
#endif

enum { EM_HY_SUMS_SCALAR, EM_HY_SUMS_VNNI, EM_HY_SUMS_AVX2 };

/* The hybrid CONV_2D driver, one body for every way of taking the integer sums (exact either way): per batch the
 * quantized image, then chunk by chunk the im2col rows (or the image's rows: direct), their int32 sums, and the
 * float epilogue row by row.  SCALAR: em_hy_dot_rows one row at a time into OC sums; VNNI / AVX2: the packed GEMMs
 * for the chunk's rows at once ([rows][OCp], the EM_HY_PACKED scratch, with its 64-byte gaps). */
static inline __attribute__((always_inline)) void em_hy_conv_run(const em_params* p, const int sums_kind) {
    const int64_t* d = p->i;
    const float* in = (const float*)p->ptr[EM_HY_CONV_P_INPUT];
    const void* w = p->ptr[EM_HY_CONV_P_WEIGHTS];
    const float* bias = (const float*)p->ptr[EM_HY_CONV_P_BIAS];
    float* out = (float*)p->ptr[EM_HY_CONV_P_OUTPUT];
    const float* wscale = (const float*)p->ptr[EM_HY_CONV_P_CHANNEL_SCALES];
    const int32_t* rowsum = (const int32_t*)p->ptr[EM_HY_CONV_P_ROW_SUMS];
    const int64_t IH = d[EM_HY_CONV_I_IH], IW = d[EM_HY_CONV_I_IW], IC = d[EM_HY_CONV_I_IC], OC = d[EM_HY_CONV_I_OC];
    const int64_t K = d[EM_HY_CONV_I_KH] * d[EM_HY_CONV_I_KW] * IC, P = d[EM_HY_CONV_I_OH] * d[EM_HY_CONV_I_OW];
    const int64_t img = IH * IW * IC, chunk = d[EM_HY_CONV_I_CHUNK] > 0 ? d[EM_HY_CONV_I_CHUNK] : 1;
    const int packed = sums_kind != EM_HY_SUMS_SCALAR, per_channel = d[EM_HY_CONV_I_MODE] == 1;
    const int64_t gap = packed ? 64 : 0, OCp = packed ? d[EM_HY_PACKED_I_OCP] : OC;
    const float lo = p->f[EM_HY_CONV_F_ACT_MIN], hi = p->f[EM_HY_CONV_F_ACT_MAX];
    int8_t* q = (int8_t*)p->ptr[EM_HY_CONV_P_SCRATCH];
    int8_t* col = q + EM_HY_ALIGN16(img) + gap;
    int32_t* sums = (int32_t*)(void*)(d[EM_HY_CONV_I_DIRECT] ? col : col + EM_HY_ALIGN16(chunk * K) + gap);
    for (int64_t b = 0; b < d[EM_HY_CONV_I_N]; b++) {
        float sf;
        int32_t zp = 0;
        if (per_channel) {
            em_hy_quantize_asym(in + b * img, img, q, &sf, &zp);
        } else {
            em_hy_quantize_sym(in + b * img, img, q, &sf);
            sf = sf * p->f[EM_HY_CONV_F_WEIGHT_SCALE];
        }
        for (int64_t first = 0; first < P; first += chunk) {
            const int64_t rows = P - first < chunk ? P - first : chunk;
            const int8_t* a;
            if (d[EM_HY_CONV_I_DIRECT]) {
                a = q + first * K;
            } else {
                em_hy_im2col(q, d, first, rows, (int8_t)zp, col);
                a = col;
            }
#if defined(__x86_64__) && defined(__GNUC__)
            const int64_t Kp = packed ? d[EM_HY_PACKED_I_KP] : K, G = packed ? d[EM_HY_PACKED_I_GROUP] : 0;
            if (sums_kind == EM_HY_SUMS_VNNI)
                em_hy_gemm_vnni(a, K, rows, (const int8_t*)w, Kp, OCp, G,
                                (const int32_t*)p->ptr[EM_HY_PACKED_P_OFFSETS], sums);
            else if (sums_kind == EM_HY_SUMS_AVX2)
                em_hy_gemm_avx2(a, K, rows, K, (const int16_t*)w, Kp, OCp, G, (int16_t*)(void*)(sums + chunk * OCp),
                                sums);
#endif
            for (int64_t r = 0; r < rows; r++) {
                const int32_t* acc = packed ? sums + r * OCp : sums;
                float* o = out + (b * P + first + r) * OC;
                if (!packed) em_hy_dot_rows(a + r * K, (const int8_t*)w, OC, K, sums);
                if (per_channel) {
                    for (int64_t c = 0; c < OC; c++) {
                        int32_t s = acc[c] - zp * rowsum[c];
                        float v = (float)s * wscale[c];
                        v = v * sf;
                        if (bias) v = v + bias[c];
                        o[c] = em_hy_act(v, lo, hi);
                    }
                } else {
                    for (int64_t c = 0; c < OC; c++) {
                        float v = (float)acc[c] * sf;
                        if (bias) v = v + bias[c];
                        o[c] = em_hy_act(v, lo, hi);
                    }
                }
            }
        }
    }
}
static void em_conv2d_hybrid(const em_params* p) { em_hy_conv_run(p, EM_HY_SUMS_SCALAR); }
#if defined(__x86_64__) && defined(__GNUC__)
static void em_conv2d_hybrid_vnni(const em_params* p) { em_hy_conv_run(p, EM_HY_SUMS_VNNI); }
static void em_conv2d_hybrid_avx2(const em_params* p) { em_hy_conv_run(p, EM_HY_SUMS_AVX2); }
#endif

#endif
