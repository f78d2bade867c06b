/* ONNX element-wise ops on plain (unquantized) tensors of every type edgeml holds: float32, int8, uint8, int16,
 * uint16, int32, int64 and bool (codes of em_dtype.h).
 *
 * em_onnx_unary: the ONNX unary functions (math, activations with alpha / beta, IsNaN / IsInf / Not, Sign,
 * BitwiseNot) computed with the C library's float functions, as onnxruntime's CPU kernels compute them.
 * em_onnx_binary: Add, Sub, Mul, Div, Mod (both forms), Pow, Max, Min, BitShift, And / Or / Xor, the bitwise
 * ops, PRelu and the comparisons, broadcast over a 6-D output.  Integer arithmetic wraps (computed unsigned);
 * a shift by a negative amount or by the width or more gives 0 (a right shift of a negative value: -1);
 * integer Div truncates towards zero; an integer division or modulo by zero writes 0 and sets the status word
 * (the Interpreter raises InputError: onnxruntime would crash). */
#ifndef EM_ONNX_ELEMENTWISE_H
#define EM_ONNX_ELEMENTWISE_H
#include <math.h>
#include <stdint.h>
#include "em_compare.h"
#include "em_dtype.h"
#include "em_params.h"

/* Unary function codes (the `kind` slot). */
enum { EM_OU_ABS, EM_OU_NEG, EM_OU_SIGN, EM_OU_CEIL, EM_OU_FLOOR, EM_OU_ROUND, EM_OU_RECIPROCAL, EM_OU_SQRT,
       EM_OU_EXP, EM_OU_LOG, EM_OU_SIN, EM_OU_COS, EM_OU_TAN, EM_OU_ASIN, EM_OU_ACOS, EM_OU_ATAN, EM_OU_SINH,
       EM_OU_COSH, EM_OU_ASINH, EM_OU_ACOSH, EM_OU_ATANH, EM_OU_ERF, EM_OU_SOFTPLUS, EM_OU_SOFTSIGN, EM_OU_SELU,
       EM_OU_CELU, EM_OU_ELU, EM_OU_HARD_SIGMOID, EM_OU_THRESHOLDED_RELU, EM_OU_SHRINK, EM_OU_MISH,
       EM_OU_GELU_ERF, EM_OU_GELU_TANH, EM_OU_HARD_SWISH, EM_OU_SWISH, EM_OU_SIGMOID, EM_OU_TANH, EM_OU_RELU,
       EM_OU_LEAKY_RELU, EM_OU_IS_NAN, EM_OU_IS_INF, EM_OU_NOT, EM_OU_BITWISE_NOT, EM_OU_KINDS };

/* Binary function codes (the `kind` slot). */
enum { EM_OB_ADD, EM_OB_SUB, EM_OB_MUL, EM_OB_DIV, EM_OB_MOD, EM_OB_FMOD, EM_OB_POW, EM_OB_MAX, EM_OB_MIN,
       EM_OB_SHIFT_LEFT, EM_OB_SHIFT_RIGHT, EM_OB_AND, EM_OB_OR, EM_OB_XOR, EM_OB_BITWISE_AND, EM_OB_BITWISE_OR,
       EM_OB_BITWISE_XOR, EM_OB_PRELU, EM_OB_EQUAL, EM_OB_LESS, EM_OB_LESS_EQUAL, EM_OB_GREATER,
       EM_OB_GREATER_EQUAL, EM_OB_KINDS };

/* em_onnx_unary, layout EM_ONNX_UNARY: ptr: input, output (bool for IsNaN / IsInf); i: n, kind, dtype (the
 * input's EM_DT_*); f: alpha, beta (the function's attributes; IsInf: detect_negative, detect_positive) */
enum { EM_ONNX_UNARY_P_INPUT, EM_ONNX_UNARY_P_OUTPUT, EM_ONNX_UNARY_P_COUNT };
enum { EM_ONNX_UNARY_I_N, EM_ONNX_UNARY_I_KIND, EM_ONNX_UNARY_I_DTYPE, EM_ONNX_UNARY_I_COUNT };
enum { EM_ONNX_UNARY_F_ALPHA, EM_ONNX_UNARY_F_BETA, EM_ONNX_UNARY_F_COUNT };

/* em_onnx_binary, layout EM_ONNX_BINARY: ptr: input1, input2, output (bool for the comparisons), status (int32:
 * 1 after an integer division by zero); i: output dims (6), input strides (6 each, 0 where broadcast), kind,
 * dtype (the inputs' EM_DT_*), shapes (EM_OB_BROADCAST, or a float fast path: EM_OB_EQUAL_SHAPES, EM_OB_SCALAR1 /
 * EM_OB_SCALAR2 where input 1 / 2 is a single element) */
enum { EM_OB_BROADCAST, EM_OB_EQUAL_SHAPES, EM_OB_SCALAR1, EM_OB_SCALAR2 };
enum { EM_ONNX_BINARY_P_INPUT1, EM_ONNX_BINARY_P_INPUT2, EM_ONNX_BINARY_P_OUTPUT, EM_ONNX_BINARY_P_STATUS,
       EM_ONNX_BINARY_P_COUNT };
enum { EM_ONNX_BINARY_I_DIMS, EM_ONNX_BINARY_I_DIMS_LAST = EM_ONNX_BINARY_I_DIMS + 5, EM_ONNX_BINARY_I_STRIDES1,
       EM_ONNX_BINARY_I_STRIDES1_LAST = EM_ONNX_BINARY_I_STRIDES1 + 5, EM_ONNX_BINARY_I_STRIDES2,
       EM_ONNX_BINARY_I_STRIDES2_LAST = EM_ONNX_BINARY_I_STRIDES2 + 5, EM_ONNX_BINARY_I_KIND,
       EM_ONNX_BINARY_I_DTYPE, EM_ONNX_BINARY_I_SHAPES, EM_ONNX_BINARY_I_COUNT };
enum { EM_ONNX_BINARY_F_COUNT = 0 };

/* ----- unary ------------------------------------------------------------------------------------------------ */

static inline float em_ou_softplus(float x) {
    /* log(1 + e^x) without overflow for large x */
    return x > 0.0f ? x + log1pf(expf(-x)) : log1pf(expf(x));
}

static inline float em_ou_f32(int kind, float x, float alpha, float beta) {
    switch (kind) {
    case EM_OU_ABS: return fabsf(x);
    case EM_OU_NEG: return -x;
    case EM_OU_SIGN: return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : (x == 0.0f ? 0.0f : x));
    case EM_OU_CEIL: return ceilf(x);
    case EM_OU_FLOOR: return floorf(x);
    case EM_OU_ROUND: return nearbyintf(x);          /* the default rounding mode: half to even */
    case EM_OU_RECIPROCAL: return 1.0f / x;
    case EM_OU_SQRT: return sqrtf(x);
    case EM_OU_EXP: return expf(x);
    case EM_OU_LOG: return logf(x);
    case EM_OU_SIN: return sinf(x);
    case EM_OU_COS: return cosf(x);
    case EM_OU_TAN: return tanf(x);
    case EM_OU_ASIN: return asinf(x);
    case EM_OU_ACOS: return acosf(x);
    case EM_OU_ATAN: return atanf(x);
    case EM_OU_SINH: return sinhf(x);
    case EM_OU_COSH: return coshf(x);
    case EM_OU_ASINH: return asinhf(x);
    case EM_OU_ACOSH: return acoshf(x);
    case EM_OU_ATANH: return atanhf(x);
    case EM_OU_ERF: return erff(x);
    case EM_OU_SOFTPLUS: return em_ou_softplus(x);
    case EM_OU_SOFTSIGN: return x / (1.0f + fabsf(x));
    case EM_OU_SELU: return x > 0.0f ? beta * x : beta * (alpha * expf(x) - alpha);
    case EM_OU_CELU: return fmaxf(0.0f, x) + fminf(0.0f, alpha * expm1f(x / alpha));
    case EM_OU_ELU: return x >= 0.0f ? x : alpha * expm1f(x);
    case EM_OU_HARD_SIGMOID: return fmaxf(0.0f, fminf(1.0f, alpha * x + beta));
    case EM_OU_THRESHOLDED_RELU: return x > alpha ? x : 0.0f;
    case EM_OU_SHRINK: return x < -alpha ? x + beta : (x > alpha ? x - beta : 0.0f);
    case EM_OU_MISH: return x * tanhf(em_ou_softplus(x));
    case EM_OU_GELU_ERF: return 0.5f * x * (1.0f + erff(x * (float)M_SQRT1_2));
    case EM_OU_GELU_TANH: {
        const float k = (float)(M_2_SQRTPI * M_SQRT1_2);
        return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
    }
    case EM_OU_HARD_SWISH: return x * fmaxf(0.0f, fminf(1.0f, x * (1.0f / 6.0f) + 0.5f));
    case EM_OU_SWISH: return x / (1.0f + expf(-alpha * x));
    case EM_OU_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case EM_OU_TANH: return tanhf(x);
    case EM_OU_RELU: return x > 0.0f ? x : 0.0f;
    case EM_OU_LEAKY_RELU: return x >= 0.0f ? x : alpha * x;
    default: return x;
    }
}

#define EM_OU_F32_LOOP(K) case K: for (int64_t i = 0; i < n; i++) y[i] = em_ou_f32(K, x[i], alpha, beta); break;

static void em_onnx_unary_f32(const float* x, void* out, int64_t n, int kind, float alpha, float beta) {
    if (kind == EM_OU_IS_NAN || kind == EM_OU_IS_INF) {
        uint8_t* b = (uint8_t*)out;
        for (int64_t i = 0; i < n; i++) {
            const float v = x[i];
            b[i] = kind == EM_OU_IS_NAN ? isnan(v) != 0
                   : (isinf(v) && ((v < 0.0f && alpha != 0.0f) || (v > 0.0f && beta != 0.0f)));
        }
        return;
    }
    float* y = (float*)out;
    switch (kind) {      /* one loop per function: the switch stays out of the loop */
    EM_OU_F32_LOOP(EM_OU_ABS) EM_OU_F32_LOOP(EM_OU_NEG) EM_OU_F32_LOOP(EM_OU_SIGN) EM_OU_F32_LOOP(EM_OU_CEIL)
    EM_OU_F32_LOOP(EM_OU_FLOOR) EM_OU_F32_LOOP(EM_OU_ROUND) EM_OU_F32_LOOP(EM_OU_RECIPROCAL)
    EM_OU_F32_LOOP(EM_OU_SQRT) EM_OU_F32_LOOP(EM_OU_EXP) EM_OU_F32_LOOP(EM_OU_LOG) EM_OU_F32_LOOP(EM_OU_SIN)
    EM_OU_F32_LOOP(EM_OU_COS) EM_OU_F32_LOOP(EM_OU_TAN) EM_OU_F32_LOOP(EM_OU_ASIN) EM_OU_F32_LOOP(EM_OU_ACOS)
    EM_OU_F32_LOOP(EM_OU_ATAN) EM_OU_F32_LOOP(EM_OU_SINH) EM_OU_F32_LOOP(EM_OU_COSH) EM_OU_F32_LOOP(EM_OU_ASINH)
    EM_OU_F32_LOOP(EM_OU_ACOSH) EM_OU_F32_LOOP(EM_OU_ATANH) EM_OU_F32_LOOP(EM_OU_ERF)
    EM_OU_F32_LOOP(EM_OU_SOFTPLUS) EM_OU_F32_LOOP(EM_OU_SOFTSIGN) EM_OU_F32_LOOP(EM_OU_SELU)
    EM_OU_F32_LOOP(EM_OU_CELU) EM_OU_F32_LOOP(EM_OU_ELU) EM_OU_F32_LOOP(EM_OU_HARD_SIGMOID)
    EM_OU_F32_LOOP(EM_OU_THRESHOLDED_RELU) EM_OU_F32_LOOP(EM_OU_SHRINK) EM_OU_F32_LOOP(EM_OU_MISH)
    EM_OU_F32_LOOP(EM_OU_GELU_ERF) EM_OU_F32_LOOP(EM_OU_GELU_TANH) EM_OU_F32_LOOP(EM_OU_HARD_SWISH)
    EM_OU_F32_LOOP(EM_OU_SWISH) EM_OU_F32_LOOP(EM_OU_SIGMOID) EM_OU_F32_LOOP(EM_OU_TANH)
    EM_OU_F32_LOOP(EM_OU_RELU) EM_OU_F32_LOOP(EM_OU_LEAKY_RELU)
    default: for (int64_t i = 0; i < n; i++) y[i] = x[i];
    }
}
#undef EM_OU_F32_LOOP

/* Integer forms: Abs and Neg wrap (two's complement, computed unsigned), Sign, Relu, BitwiseNot; Not on bool. */
#define EM_OU_INT(T, UT)                                                                                     \
    {                                                                                                        \
        const T* x = (const T*)in;                                                                           \
        T* y = (T*)out;                                                                                      \
        for (int64_t i = 0; i < n; i++) {                                                                    \
            const T v = x[i];                                                                                \
            switch (kind) {                                                                                  \
            case EM_OU_ABS: y[i] = v < 0 ? (T)(UT)(0u - (UT)v) : v; break;                                   \
            case EM_OU_NEG: y[i] = (T)(UT)(0u - (UT)v); break;                                               \
            case EM_OU_SIGN: y[i] = (T)((v > 0) - (v < 0)); break;                                           \
            case EM_OU_RELU: y[i] = v > 0 ? v : 0; break;                                                    \
            case EM_OU_NOT: y[i] = (T)(v == 0); break;                                                       \
            default: y[i] = (T)(UT)~(UT)v; break;                                                            \
            }                                                                                                \
        }                                                                                                    \
    }

static void em_onnx_unary(const em_params* p) {
    const void* in = p->ptr[EM_ONNX_UNARY_P_INPUT];
    void* out = p->ptr[EM_ONNX_UNARY_P_OUTPUT];
    const int64_t n = p->i[EM_ONNX_UNARY_I_N];
    const int kind = (int)p->i[EM_ONNX_UNARY_I_KIND];
    switch ((int)p->i[EM_ONNX_UNARY_I_DTYPE]) {
    case EM_DT_F32:
        em_onnx_unary_f32((const float*)in, out, n, kind, p->f[EM_ONNX_UNARY_F_ALPHA], p->f[EM_ONNX_UNARY_F_BETA]);
        break;
    case EM_DT_I8: EM_OU_INT(int8_t, uint8_t) break;
    case EM_DT_U8: case EM_DT_BOOL: EM_OU_INT(uint8_t, uint8_t) break;
    case EM_DT_I16: EM_OU_INT(int16_t, uint16_t) break;
    case EM_DT_U16: EM_OU_INT(uint16_t, uint16_t) break;
    case EM_DT_I32: EM_OU_INT(int32_t, uint32_t) break;
    case EM_DT_I64: EM_OU_INT(int64_t, uint64_t) break;
    }
}
#undef EM_OU_INT

/* ----- binary ----------------------------------------------------------------------------------------------- */

static inline float em_ob_f32(int kind, float a, float b) {
    switch (kind) {
    case EM_OB_ADD: return a + b;
    case EM_OB_SUB: return a - b;
    case EM_OB_MUL: return a * b;
    case EM_OB_DIV: return a / b;
    case EM_OB_MOD: {       /* the result takes the divisor's sign (numpy.mod) */
        float r = fmodf(a, b);
        if (r != 0.0f && ((r < 0.0f) != (b < 0.0f))) r += b;
        return r;
    }
    case EM_OB_FMOD: return fmodf(a, b);
    case EM_OB_POW: return powf(a, b);
    case EM_OB_MAX: return (isnan(a) || a > b) ? a : b;      /* NaN propagates */
    case EM_OB_MIN: return (isnan(a) || a < b) ? a : b;
    case EM_OB_PRELU: return a < 0.0f ? a * b : a;
    default: return a;
    }
}

#define EM_OB_F32_LOOP(K) \
    case K: EM_BROADCAST_PAIRS(float, in1, in2, y[o] = em_ob_f32(K, a, b);) break;

/* The common shapes in flat loops the compiler vectorizes: equal shapes, or one operand a single element. */
#define EM_OB_F32_FLAT(K)                                                                                    \
    case K:                                                                                                  \
        if (shapes == EM_OB_EQUAL_SHAPES) for (int64_t i = 0; i < n; i++) y[i] = em_ob_f32(K, x1[i], x2[i]);   \
        else if (shapes == EM_OB_SCALAR2) for (int64_t i = 0; i < n; i++) y[i] = em_ob_f32(K, x1[i], x2[0]);  \
        else for (int64_t i = 0; i < n; i++) y[i] = em_ob_f32(K, x1[0], x2[i]);                              \
        return;

static void em_onnx_binary_f32(const void* in1, const void* in2, float* y, const int64_t* dims, const int64_t* st1,
                               const int64_t* st2, int kind, int shapes) {
    if (shapes != EM_OB_BROADCAST) {
        const float* x1 = (const float*)in1;
        const float* x2 = (const float*)in2;
        const int64_t n = dims[0] * dims[1] * dims[2] * dims[3] * dims[4] * dims[5];
        switch (kind) {
        EM_OB_F32_FLAT(EM_OB_ADD) EM_OB_F32_FLAT(EM_OB_SUB) EM_OB_F32_FLAT(EM_OB_MUL) EM_OB_F32_FLAT(EM_OB_DIV)
        EM_OB_F32_FLAT(EM_OB_MAX) EM_OB_F32_FLAT(EM_OB_MIN)
        }
    }
    switch (kind) {
    EM_OB_F32_LOOP(EM_OB_ADD) EM_OB_F32_LOOP(EM_OB_SUB) EM_OB_F32_LOOP(EM_OB_MUL) EM_OB_F32_LOOP(EM_OB_DIV)
    EM_OB_F32_LOOP(EM_OB_MOD) EM_OB_F32_LOOP(EM_OB_FMOD) EM_OB_F32_LOOP(EM_OB_POW) EM_OB_F32_LOOP(EM_OB_MAX)
    EM_OB_F32_LOOP(EM_OB_MIN) EM_OB_F32_LOOP(EM_OB_PRELU)
    }
}
#undef EM_OB_F32_LOOP
#undef EM_OB_F32_FLAT

/* Integer power by squaring, wrapping like the multiplications it stands for; a negative exponent gives the
 * truncated 1 / a^-b (0 unless |a| is 1). */
#define EM_OB_IPOW(T, UT, a, b, res)                                                                         \
    {                                                                                                        \
        if ((b) < 0) {                                                                                       \
            res = (a) == 1 ? 1 : ((a) == (T)-1 ? (((-(int64_t)(b)) & 1) ? (T)-1 : 1) : 0);                   \
        } else {                                                                                             \
            UT base = (UT)(a), acc = 1;                                                                      \
            uint64_t e = (uint64_t)(b);                                                                      \
            while (e) { if (e & 1) acc = (UT)(acc * base); base = (UT)(base * base); e >>= 1; }              \
            res = (T)acc;                                                                                    \
        }                                                                                                    \
    }

/* One integer type: T signed or unsigned, UT its unsigned twin (arithmetic wraps), BITS its width. */
#define EM_OB_INT(T, UT, BITS)                                                                               \
    {                                                                                                        \
        T* y = (T*)out;                                                                                      \
        switch (kind) {                                                                                      \
        case EM_OB_ADD: EM_BROADCAST_PAIRS(T, in1, in2, y[o] = (T)(UT)((UT)a + (UT)b);) break;               \
        case EM_OB_SUB: EM_BROADCAST_PAIRS(T, in1, in2, y[o] = (T)(UT)((UT)a - (UT)b);) break;               \
        case EM_OB_MUL: EM_BROADCAST_PAIRS(T, in1, in2, y[o] = (T)(UT)((UT)a * (UT)b);) break;               \
        case EM_OB_DIV: EM_BROADCAST_PAIRS(T, in1, in2,                                                      \
            if (b == 0) { y[o] = 0; bad = 1; }                                                               \
            else if ((T)-1 < 0 && b == (T)-1) y[o] = (T)(UT)(0u - (UT)a);                                    \
            else y[o] = (T)(a / b);) break;                                                                  \
        case EM_OB_MOD: EM_BROADCAST_PAIRS(T, in1, in2,                                                      \
            if (b == 0) { y[o] = 0; bad = 1; }                                                               \
            else if ((T)-1 < 0 && b == (T)-1) y[o] = 0;                                                      \
            else { T r = (T)(a % b); if (r != 0 && ((r < 0) != (b < 0))) r = (T)(r + b); y[o] = r; }) break; \
        case EM_OB_FMOD: EM_BROADCAST_PAIRS(T, in1, in2,                                                     \
            if (b == 0) { y[o] = 0; bad = 1; }                                                               \
            else if ((T)-1 < 0 && b == (T)-1) y[o] = 0;                                                      \
            else y[o] = (T)(a % b);) break;                                                                  \
        case EM_OB_POW: EM_BROADCAST_PAIRS(T, in1, in2, { T r; EM_OB_IPOW(T, UT, a, b, r) y[o] = r; }) break; \
        case EM_OB_MAX: EM_BROADCAST_PAIRS(T, in1, in2, y[o] = a > b ? a : b;) break;                        \
        case EM_OB_MIN: EM_BROADCAST_PAIRS(T, in1, in2, y[o] = a < b ? a : b;) break;                        \
        case EM_OB_SHIFT_LEFT: EM_BROADCAST_PAIRS(T, in1, in2,                                               \
            y[o] = ((UT)b >= (BITS)) ? 0 : (T)(UT)((UT)a << (UT)b);) break;                                  \
        case EM_OB_SHIFT_RIGHT: EM_BROADCAST_PAIRS(T, in1, in2,                                              \
            y[o] = ((UT)b >= (BITS)) ? (T)(a < 0 ? -1 : 0) : (T)(a >> b);) break;                             \
        case EM_OB_AND: case EM_OB_BITWISE_AND: EM_BROADCAST_PAIRS(T, in1, in2, y[o] = (T)(a & b);) break;   \
        case EM_OB_OR: case EM_OB_BITWISE_OR: EM_BROADCAST_PAIRS(T, in1, in2, y[o] = (T)(a | b);) break;     \
        case EM_OB_XOR: case EM_OB_BITWISE_XOR: EM_BROADCAST_PAIRS(T, in1, in2, y[o] = (T)(a ^ b);) break;   \
        case EM_OB_PRELU: EM_BROADCAST_PAIRS(T, in1, in2,                                                    \
            y[o] = a < 0 ? (T)(UT)((UT)a * (UT)b) : a;) break;                                               \
        }                                                                                                    \
    }

#define EM_OB_COMPARE(T)                                                                                     \
    {                                                                                                        \
        uint8_t* y = (uint8_t*)out;                                                                          \
        switch (kind) {                                                                                      \
        case EM_OB_EQUAL: EM_BROADCAST_PAIRS(T, in1, in2, y[o] = a == b;) break;                             \
        case EM_OB_LESS: EM_BROADCAST_PAIRS(T, in1, in2, y[o] = a < b;) break;                               \
        case EM_OB_LESS_EQUAL: EM_BROADCAST_PAIRS(T, in1, in2, y[o] = a <= b;) break;                        \
        case EM_OB_GREATER: EM_BROADCAST_PAIRS(T, in1, in2, y[o] = a > b;) break;                            \
        default: EM_BROADCAST_PAIRS(T, in1, in2, y[o] = a >= b;) break;                                      \
        }                                                                                                    \
    }

static void em_onnx_binary(const em_params* p) {
    const void* in1 = p->ptr[EM_ONNX_BINARY_P_INPUT1];
    const void* in2 = p->ptr[EM_ONNX_BINARY_P_INPUT2];
    void* out = p->ptr[EM_ONNX_BINARY_P_OUTPUT];
    int32_t* status = (int32_t*)p->ptr[EM_ONNX_BINARY_P_STATUS];
    const int64_t* dims = p->i + EM_ONNX_BINARY_I_DIMS;
    const int64_t* st1 = p->i + EM_ONNX_BINARY_I_STRIDES1;
    const int64_t* st2 = p->i + EM_ONNX_BINARY_I_STRIDES2;
    const int kind = (int)p->i[EM_ONNX_BINARY_I_KIND];
    const int code = (int)p->i[EM_ONNX_BINARY_I_DTYPE];
    int bad = 0;
    if (kind >= EM_OB_EQUAL) {
        EM_DT_SWITCH(code, EM_OB_COMPARE(T))
    } else if (code == EM_DT_F32) {
        em_onnx_binary_f32(in1, in2, (float*)out, dims, st1, st2, kind, (int)p->i[EM_ONNX_BINARY_I_SHAPES]);
    } else {
        switch (code) {
        case EM_DT_I8: EM_OB_INT(int8_t, uint8_t, 8) break;
        case EM_DT_U8: case EM_DT_BOOL: EM_OB_INT(uint8_t, uint8_t, 8) break;
        case EM_DT_I16: EM_OB_INT(int16_t, uint16_t, 16) break;
        case EM_DT_U16: EM_OB_INT(uint16_t, uint16_t, 16) break;
        case EM_DT_I32: EM_OB_INT(int32_t, uint32_t, 32) break;
        case EM_DT_I64: EM_OB_INT(int64_t, uint64_t, 64) break;
        }
    }
    if (status) status[0] = bad;
}
#undef EM_OB_INT
#undef EM_OB_COMPARE
#undef EM_OB_IPOW

#endif
