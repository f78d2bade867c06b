/* SOFTMAX, LOGISTIC and TANH on int16 (the 16x8 scheme) as LiteRT's reference kernels compute them: SOFTMAX with
 * two 513-entry interpolated tables (exp on [-10, 0], 1 / (1 + x) on [0, 1]) built at load, LOGISTIC / TANH by
 * linear interpolation in a fixed 256-entry table of sigmoid(i / 24) (uint16, 0.16).
 * Portable scalar code only. */
#ifndef EM_INT16_LUT_H
#define EM_INT16_LUT_H
#include <stdlib.h>
#include "em_params.h"
#include "em_requant.h"

/* The 513-entry table lookup: entry 256 + (x >> 7), interpolated by the low 7 bits, int16 arithmetic. */
static inline int16_t em_lut513(int16_t x, const int16_t* lut) {
    const int index = 256 + (x >> 7);
    const int32_t offset = x & 0x7f;
    const int16_t base = lut[index];
    const int16_t slope = (int16_t)(lut[index + 1] - lut[index]);
    const int32_t delta = ((int32_t)slope * offset + 64) >> 7;
    return (int16_t)(base + delta);
}

/* SOFTMAX int16 over the last axis, layout EM_SOFTMAX16:
 * ptr: input, output, exp table (513 int16), reciprocal table (513 int16)
 * i:   rows, depth, input multiplier, input shift (MBQM of the difference to the row maximum), rounding mode */
enum { EM_SOFTMAX16_P_INPUT, EM_SOFTMAX16_P_OUTPUT, EM_SOFTMAX16_P_EXP_TABLE, EM_SOFTMAX16_P_RECIPROCAL_TABLE,
       EM_SOFTMAX16_P_COUNT };
enum { EM_SOFTMAX16_I_ROWS, EM_SOFTMAX16_I_DEPTH, EM_SOFTMAX16_I_IN_MULT, EM_SOFTMAX16_I_IN_SHIFT,
       EM_SOFTMAX16_I_MODE, EM_SOFTMAX16_I_COUNT };
enum { EM_SOFTMAX16_F_COUNT = 0 };

static void em_softmax_int16(const em_params* p) {
    const int64_t* q = p->i;
    const int64_t rows = q[EM_SOFTMAX16_I_ROWS], depth = q[EM_SOFTMAX16_I_DEPTH];
    const int32_t m = (int32_t)q[EM_SOFTMAX16_I_IN_MULT];
    const int sh = (int)q[EM_SOFTMAX16_I_IN_SHIFT], mode = (int)q[EM_SOFTMAX16_I_MODE];
    const int16_t* exp_lut = (const int16_t*)p->ptr[EM_SOFTMAX16_P_EXP_TABLE];
    const int16_t* recip_lut = (const int16_t*)p->ptr[EM_SOFTMAX16_P_RECIPROCAL_TABLE];
    for (int64_t r = 0; r < rows; r++) {
        const int16_t* x = (const int16_t*)p->ptr[EM_SOFTMAX16_P_INPUT] + r * depth;
        int16_t* y = (int16_t*)p->ptr[EM_SOFTMAX16_P_OUTPUT] + r * depth;
        int16_t mx = INT16_MIN;
        for (int64_t c = 0; c < depth; c++) mx = x[c] > mx ? x[c] : mx;
        int32_t sum = 0;      /* Q16.15; the exps wait in the output row */
        for (int64_t c = 0; c < depth; c++) {
            const int32_t scaled = em_mbqm((int32_t)x[c] - mx, m, sh, mode) + 32767;
            y[c] = em_lut513((int16_t)em_clamp_i32(scaled, INT16_MIN, INT16_MAX), exp_lut);
            sum += y[c];
        }
        /* 1 / sum from the 1 / (1 + x) table, x = sum normalized to [1, 2) minus 1, recentred */
        const int headroom_plus_one = sum > 0 ? __builtin_clz((uint32_t)sum) : 32;
        const int32_t shifted = (int32_t)((((int64_t)sum << (headroom_plus_one - 1)) + (1 << 13)) >> 14);
        const int16_t recip = em_lut513((int16_t)em_clamp_i32(shifted - ((1 << 15) + (1 << 16)), INT16_MIN,
                                                               INT16_MAX), recip_lut);
        const int right_shift = 31 - headroom_plus_one;
        const int64_t round = (int64_t)1 << (right_shift - 1);
        for (int64_t c = 0; c < depth; c++) {
            const int64_t v = ((int64_t)y[c] * recip + round) >> right_shift;
            y[c] = (int16_t)(v < 0 ? 0 : (v > INT16_MAX ? INT16_MAX : v));
        }
    }
}

/* sigmoid(i / 24) in 0.16 for i in 0..255: the values of LiteRT's sigmoid_table_uint16 (common.h, Apache-2.0), which
 * its int16 LOGISTIC / TANH interpolate; they are not round(65536 sigmoid(i / 24)) everywhere (44 entries are one
 * off), so bit-exact results need these very numbers. */
static const uint16_t em_sigmoid_table_u16[256] = {
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794, 41432, 42064, 42688,
    43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409,
    51865, 52311, 52745, 53169, 53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110,
    61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186,
    63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900,
    64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208,
    65221, 65234, 65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433, 65438, 65442, 65445, 65449,
    65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491,
    65493, 65495, 65497, 65498, 65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530,
    65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535
};

/* LOGISTIC / TANH int16, layout EM_ACT16:
 * ptr: input, output
 * i:   n, input multiplier, input left shift (x * multiplier rounded right by it: input scale -> 1 / (3 * 4096)) */
enum { EM_ACT16_P_INPUT, EM_ACT16_P_OUTPUT, EM_ACT16_P_COUNT };
enum { EM_ACT16_I_N, EM_ACT16_I_IN_MULT, EM_ACT16_I_IN_SHIFT, EM_ACT16_I_COUNT };
enum { EM_ACT16_F_COUNT = 0 };

static void em_logistic_int16(const em_params* p) {
    const int16_t* x = (const int16_t*)p->ptr[EM_ACT16_P_INPUT];
    int16_t* y = (int16_t*)p->ptr[EM_ACT16_P_OUTPUT];
    const uint16_t* table = em_sigmoid_table_u16;
    const int32_t m = (int32_t)p->i[EM_ACT16_I_IN_MULT];
    const int sh = (int)p->i[EM_ACT16_I_IN_SHIFT];
    const int32_t round = sh > 0 ? 1 << (sh - 1) : 0;
    for (int64_t k = 0; k < p->i[EM_ACT16_I_N]; k++) {
        const int32_t v = ((int32_t)x[k] * m + round) >> sh;
        const uint32_t a = (uint32_t)abs(v);
        const uint32_t hi = a >> 9;          /* 1 / 2^7 for the input format, 1 / 4 for the 3/4 scaling */
        uint32_t r;
        if (hi >= 255) {
            r = 0x7FFFu << 10;
        } else {
            const uint32_t lo = table[hi], up = table[hi + 1];
            r = (lo << 9) + (a & 0x1ff) * (up - lo);
        }
        r = v >= 0 ? r + (1u << 9) : (1u << (16 + 9)) - r + (1u << 9) - 1;
        y[k] = (int16_t)(r >> 10);
    }
}

static void em_tanh_int16(const em_params* p) {
    const int16_t* x = (const int16_t*)p->ptr[EM_ACT16_P_INPUT];
    int16_t* y = (int16_t*)p->ptr[EM_ACT16_P_OUTPUT];
    const uint16_t* table = em_sigmoid_table_u16;
    const int32_t m = (int32_t)p->i[EM_ACT16_I_IN_MULT];
    const int sh = (int)p->i[EM_ACT16_I_IN_SHIFT];
    const int32_t round = sh > 0 ? 1 << (sh - 1) : 0;
    for (int64_t k = 0; k < p->i[EM_ACT16_I_N]; k++) {
        const int32_t v = ((int32_t)x[k] * m + round) >> sh;
        const uint32_t a = (uint32_t)abs(v);
        const uint32_t hi = a >> 8;          /* tanh(x) = 2 sigmoid(2x) - 1: one bit less */
        int32_t r;
        if (hi >= 255) {
            r = 0xFFFF << 8;
        } else {
            const uint32_t lo = table[hi], up = table[hi + 1];
            r = (int32_t)((lo << 8) + (a & 0xFF) * (up - lo));
        }
        r = v >= 0 ? r - (1 << (14 + 9)) + (1 << (9 - 2)) : -r + (1 << (14 + 9)) + (1 << (9 - 2)) - 1;
        y[k] = (int16_t)(r >> (9 - 1));
    }
}
#endif
