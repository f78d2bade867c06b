/* UNIDIRECTIONAL_SEQUENCE_LSTM, the integer 8x8_16 path.
 *
 * Integer arithmetic written from LiteRT's lstm_eval.cc (EvalInteger8x8_16, CalculateLstmGateInteger8x8_16,
 * UpdateLstmCellInteger, CalculateLstmOutputInteger8x8_16) and the portable tensor_utils it runs:
 *   gate   = sat16( MBQM(Wh.h + bh, Mh) + sat16( MBQM(Wx.x + bx, Mx) ) )     (bx, bh: zero points folded)
 *   i, f, o = logistic(gate as Q3.12) as Q0.15;  g = tanh(gate as Q3.12)     (gemmlowp int16 fixed point)
 *   c      = sat16( RDBP(f*c, 15) + RDBP(i*g, 30 + cell_scale) ), clipped to +-cell_clip
 *   h      = clamp8( MBQM(o * tanh(c as Q(15+cell_scale)), Mhidden) + hidden_zp )
 * The gemmlowp int16 activations are exact functions of one int16: tabulated, or computed on AVX-512 (em_q16.h).
 * Speed: Wx.x for every time step is one GEMM before the recurrence (int16 results in scratch); each step
 * then runs one GEMV over the four stacked gates (em_lstm_dots.h) and the fused element-wise update. */
#ifndef EM_LSTM_INT8_H
#define EM_LSTM_INT8_H
#include <stdint.h>
#include <string.h>
#include "em_params.h"
#include "em_requant.h"
#include "em_isa.h"
#include "em_gemm_vnni.h"
#include "em_q16.h"
#include "em_lstm_dots.h"
#include "em_gemm_avx2.h"

/* ----- the element-wise part of one step on AVX-512 (double-rounding mode only) ---------------------------
 * Same arithmetic as the scalar loop in em_lstm_int8, with the activations of em_q16.h computed 32 (or 16)
 * lanes at a time (em_q16x_* / em_q16y_*). */
#if defined(__x86_64__) && defined(__GNUC__)
EM_VNNI_TARGET static inline __m512i em_lstm_sat16_x16(__m512i v) {
    return _mm512_min_epi32(_mm512_max_epi32(v, _mm512_set1_epi32(INT16_MIN)), _mm512_set1_epi32(INT16_MAX));
}
EM_VNNI_TARGET static inline __m512i em_lstm_rdbp_x16(__m512i x, int e) {
    const __m512i mask = _mm512_set1_epi32((int32_t)((1LL << e) - 1)), one = _mm512_set1_epi32(1);
    __m512i rem = _mm512_and_si512(x, mask);
    __m512i thr = _mm512_srai_epi32(mask, 1);
    thr = _mm512_mask_add_epi32(thr, _mm512_cmplt_epi32_mask(x, _mm512_setzero_si512()), thr, one);
    __m512i q = _mm512_sra_epi32(x, _mm_cvtsi32_si128(e));
    return _mm512_mask_add_epi32(q, _mm512_cmpgt_epi32_mask(rem, thr), q, one);
}
EM_VNNI_TARGET static inline __m512i em_lstm_trunc16_x16(__m512i v) {   /* (int16_t) cast */
    return _mm512_srai_epi32(_mm512_slli_epi32(v, 16), 16);
}

/* 32 int32 lanes (two vectors) -> 32 int16 lanes, saturating */
EM_VNNI_TARGET static inline __m512i em_lstm_pack16(__m512i lo, __m512i hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtsepi32_epi16(lo)), _mm512_cvtsepi32_epi16(hi), 1);
}
EM_VNNI_TARGET static inline __m512i em_lstm_half32(__m512i v, int half) {     /* int16 lanes -> int32 */
    return _mm512_cvtepi16_epi32(half ? _mm512_extracti64x4_epi64(v, 1) : _mm512_castsi512_si256(v));
}

/* the input part of every gate for one row: pre[n] = sat16(MBQM(acc[n] + bx[n], gate multiplier)) */
EM_VNNI_TARGET static void em_lstm_requant_row_vnni(const int32_t* acc, int64_t NC, const int32_t* bx,
                                                    const em_mbqm16* q, int16_t* pre) {
    int64_t j;
    int g;
    for (g = 0; g < 4; g++)
        for (j = 0; j < NC; j += 16) {
            const __mmask16 k = NC - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (NC - j)) - 1);
            const int64_t n = g * NC + j;
            __m512i a = _mm512_add_epi32(_mm512_maskz_loadu_epi32(k, acc + n), _mm512_maskz_loadu_epi32(k, bx + n));
            _mm256_mask_storeu_epi16(pre + n, k, _mm512_cvtsepi32_epi16(em_mbqm_apply_x16(a, q + g)));
        }
}

EM_VNNI_TARGET static void em_lstm_step_consts(const int32_t* mult, const int32_t* shift, int32_t hm, int32_t hsh,
                                               em_mbqm16* qx, em_mbqm16* qh) {
    int g;
    for (g = 0; g < 4; g++) qx[g] = em_mbqm_consts(_mm512_set1_epi32(mult[g]), _mm512_set1_epi32(shift[g]));
    for (g = 0; g < 5; g++)
        qh[g] = em_mbqm_consts(_mm512_set1_epi32(g < 4 ? mult[4 + g] : hm), _mm512_set1_epi32(g < 4 ? shift[4 + g] : hsh));
}

/* one step's cells, 32 at a time; q: the recurrent multipliers of the 4 gates, then the hidden one */
EM_VNNI_TARGET static void em_lstm_cells_vnni(const int32_t* a, const int32_t* bh, const int16_t* px,
                                              const em_mbqm16* q, int64_t NC, int cell_shift, int cell_ibits,
                                              int16_t clip, int32_t hzp, int stale_tanh, int16_t* c, int8_t* out) {
    int64_t j;
    for (j = 0; j < NC; j += 32) {
        const int64_t left = NC - j;
        const __mmask32 k32 = left >= 32 ? (__mmask32)0xFFFFFFFFu : (__mmask32)((1u << left) - 1);
        __mmask16 k16[2];
        __m512i gate[4], vi, vf, vg, vo, c16, th16, cnew[2];
        int g, h;
        k16[0] = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        k16[1] = left >= 32 ? (__mmask16)0xFFFF : (left > 16 ? (__mmask16)((1u << (left - 16)) - 1) : 0);
        for (g = 0; g < 4; g++) {
            const int64_t n = g * NC + j;
            __m512i part[2];
            for (h = 0; h < 2; h++) {
                __m512i acc = _mm512_add_epi32(_mm512_maskz_loadu_epi32(k16[h], a + n + 16 * h),
                                               _mm512_maskz_loadu_epi32(k16[h], bh + n + 16 * h));
                part[h] = em_mbqm_apply_x16(acc, q + g);
            }
            /* sat16(MBQM(..) + sat16-ed input part): both terms fit int32, the pack saturates */
            __m512i x16 = _mm512_maskz_loadu_epi16(k32, px + n);
            gate[g] = em_lstm_pack16(_mm512_add_epi32(part[0], em_lstm_half32(x16, 0)),
                                     _mm512_add_epi32(part[1], em_lstm_half32(x16, 1)));
        }
        vi = em_q16x_logistic(gate[0], 3);
        vf = em_q16x_logistic(gate[1], 3);
        vg = em_q16x_tanh(gate[2], 3);
        vo = em_q16x_logistic(gate[3], 3);
        c16 = _mm512_maskz_loadu_epi16(k32, c + j);
        for (h = 0; h < 2; h++) {
            __m512i keep = em_lstm_trunc16_x16(em_lstm_rdbp_x16(
                _mm512_mullo_epi32(em_lstm_half32(vf, h), em_lstm_half32(c16, h)), 15));
            __m512i add = em_lstm_trunc16_x16(em_lstm_rdbp_x16(
                _mm512_mullo_epi32(em_lstm_half32(vi, h), em_lstm_half32(vg, h)), cell_shift));
            __m512i cv = em_lstm_sat16_x16(_mm512_add_epi32(keep, add));
            if (clip > 0)
                cv = _mm512_min_epi32(_mm512_max_epi32(cv, _mm512_set1_epi32(-clip)), _mm512_set1_epi32(clip));
            cnew[h] = cv;
        }
        c16 = em_lstm_pack16(cnew[0], cnew[1]);
        _mm512_mask_storeu_epi16(c + j, k32, c16);
        th16 = stale_tanh ? vi : em_q16x_tanh(c16, cell_ibits);
        for (h = 0; h < 2; h++) {
            __m512i hv = _mm512_mullo_epi32(em_lstm_half32(vo, h), em_lstm_half32(th16, h));
            hv = _mm512_add_epi32(em_mbqm_apply_x16(hv, q + 4), _mm512_set1_epi32(hzp));
            hv = _mm512_min_epi32(_mm512_max_epi32(hv, _mm512_set1_epi32(-128)), _mm512_set1_epi32(127));
            _mm_mask_storeu_epi8(out + j + 16 * h, k16[h], _mm512_cvtepi32_epi8(hv));
        }
    }
}

/* the same for at most 16 cells: one vector of 16 int32 lanes, the activations on 16 int16 lanes (em_q16y_*),
 * so small layers do not pay for 32 */
EM_VNNI_TARGET static void em_lstm_cells16_vnni(const int32_t* a, const int32_t* bh, const int16_t* px,
                                                const em_mbqm16* q, int64_t NC, int cell_shift, int cell_ibits,
                                                int16_t clip, int32_t hzp, int stale_tanh, int16_t* c, int8_t* out) {
    const __mmask16 k = NC >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << NC) - 1);
    __m256i gate[4], vi, vf, vg, vo, c16, th16;
    __m512i keep, add, cv, hv;
    int g;
    for (g = 0; g < 4; g++) {
        const int64_t n = g * NC;
        __m512i acc = _mm512_add_epi32(_mm512_maskz_loadu_epi32(k, a + n), _mm512_maskz_loadu_epi32(k, bh + n));
        gate[g] = _mm512_cvtsepi32_epi16(_mm512_add_epi32(em_mbqm_apply_x16(acc, q + g),
                                                          _mm512_cvtepi16_epi32(_mm256_maskz_loadu_epi16(k, px + n))));
    }
    vi = em_q16y_logistic(gate[0], 3);
    vf = em_q16y_logistic(gate[1], 3);
    vg = em_q16y_tanh(gate[2], 3);
    vo = em_q16y_logistic(gate[3], 3);
    c16 = _mm256_maskz_loadu_epi16(k, c);
    keep = em_lstm_trunc16_x16(em_lstm_rdbp_x16(_mm512_mullo_epi32(_mm512_cvtepi16_epi32(vf), _mm512_cvtepi16_epi32(c16)), 15));
    add = em_lstm_trunc16_x16(em_lstm_rdbp_x16(_mm512_mullo_epi32(_mm512_cvtepi16_epi32(vi), _mm512_cvtepi16_epi32(vg)),
                                               cell_shift));
    cv = em_lstm_sat16_x16(_mm512_add_epi32(keep, add));
    if (clip > 0) cv = _mm512_min_epi32(_mm512_max_epi32(cv, _mm512_set1_epi32(-clip)), _mm512_set1_epi32(clip));
    c16 = _mm512_cvtsepi32_epi16(cv);
    _mm256_mask_storeu_epi16(c, k, c16);
    th16 = stale_tanh ? vi : em_q16y_tanh(c16, cell_ibits);
    hv = _mm512_mullo_epi32(_mm512_cvtepi16_epi32(vo), _mm512_cvtepi16_epi32(th16));
    hv = _mm512_add_epi32(em_mbqm_apply_x16(hv, q + 4), _mm512_set1_epi32(hzp));
    hv = _mm512_min_epi32(_mm512_max_epi32(hv, _mm512_set1_epi32(-128)), _mm512_set1_epi32(127));
    _mm_mask_storeu_epi8(out, k, _mm512_cvtepi32_epi8(hv));
}

#endif

/* ----- the same on AVX2 (double rounding, shifts within [-31, 30]): 16 cells at a time, two 8-lane int32 halves,
 * the activations on 16 int16 lanes (em_q16a_*); the cells past the last multiple of 16 take the scalar loop. */
#if defined(__x86_64__) && defined(__GNUC__)
EM_AVX2_TARGET static inline __m256i em_lstm_rdbp_x8(__m256i x, int e) {
    const __m256i mask = _mm256_set1_epi32((int32_t)((1LL << e) - 1));
    const __m256i rem = _mm256_and_si256(x, mask);
    const __m256i thr = _mm256_sub_epi32(_mm256_srai_epi32(mask, 1), _mm256_cmpgt_epi32(_mm256_setzero_si256(), x));
    const __m256i q = _mm256_sra_epi32(x, _mm_cvtsi32_si128(e));
    return _mm256_sub_epi32(q, _mm256_cmpgt_epi32(rem, thr));
}
EM_AVX2_TARGET static inline __m256i em_lstm_trunc16_x8(__m256i v) {   /* (int16_t) cast */
    return _mm256_srai_epi32(_mm256_slli_epi32(v, 16), 16);
}
EM_AVX2_TARGET static inline __m256i em_lstm_pack16_x8(__m256i lo, __m256i hi) {   /* saturating, in order */
    return _mm256_permute4x64_epi64(_mm256_packs_epi32(lo, hi), 0xD8);
}
EM_AVX2_TARGET static inline __m256i em_lstm_half32_x8(__m256i v, int half) {     /* int16 lanes -> int32 */
    return _mm256_cvtepi16_epi32(half ? _mm256_extracti128_si256(v, 1) : _mm256_castsi256_si128(v));
}

/* 1 when the AVX2 path's multiplier arithmetic (em_mbqm_lanes_x8) covers every shift: the 8 gates' and the hidden */
static inline int em_lstm_avx2_shifts(const int32_t* shift, int32_t hsh) {
    for (int g = 0; g < 8; g++)
        if (shift[g] < -31 || shift[g] > 30) return 0;
    return hsh >= -31 && hsh <= 30;
}

EM_AVX2_TARGET static void em_lstm_step_consts_avx2(const int32_t* mult, const int32_t* shift, int32_t hm, int32_t hsh,
                                                    em_mbqm8_lanes* qx, em_mbqm8_lanes* qh) {
    for (int g = 0; g < 4; g++) qx[g] = em_mbqm8_consts(_mm256_set1_epi32(mult[g]), _mm256_set1_epi32(shift[g]));
    for (int g = 0; g < 5; g++)
        qh[g] = em_mbqm8_consts(_mm256_set1_epi32(g < 4 ? mult[4 + g] : hm),
                                _mm256_set1_epi32(g < 4 ? shift[4 + g] : hsh));
}

/* the input part of every gate for one row, as the scalar loop: pre[n] = sat16(MBQM(acc[n] + bx[n], gate g)) */
EM_AVX2_TARGET static void em_lstm_requant_row_avx2(const int32_t* acc, int64_t NC, const int32_t* bx,
                                                    const em_mbqm8_lanes* q, const int32_t* mult,
                                                    const int32_t* shift, int16_t* pre) {
    for (int g = 0; g < 4; g++) {
        int64_t j = 0;
        for (; j + 8 <= NC; j += 8) {
            const int64_t n = g * NC + j;
            const __m256i a = _mm256_add_epi32(_mm256_loadu_si256((const __m256i*)(acc + n)),
                                               _mm256_loadu_si256((const __m256i*)(bx + n)));
            const __m256i r = em_lstm_pack16_x8(em_mbqm_lanes_x8(a, q + g, shift[g] > 0), _mm256_setzero_si256());
            _mm_storeu_si128((__m128i*)(pre + n), _mm256_castsi256_si128(r));
        }
        for (; j < NC; j++)
            pre[g * NC + j] = em_sat16(em_mbqm(acc[g * NC + j] + bx[g * NC + j], mult[g], shift[g], EM_ROUND_DOUBLE));
    }
}

/* one step's cells [0, NC rounded down to 16); q: the recurrent multipliers of the 4 gates, then the hidden one;
 * returns how many it did */
EM_AVX2_TARGET static int64_t em_lstm_cells_avx2(const int32_t* a, const int32_t* bh, const int16_t* px,
                                                 const em_mbqm8_lanes* q, const int32_t* shift, int32_t hsh,
                                                 int64_t NC, int cell_shift, int cell_ibits, int16_t clip, int32_t hzp,
                                                 int stale_tanh, int16_t* c, int8_t* out) {
    int64_t j;
    for (j = 0; j + 16 <= NC; j += 16) {
        __m256i gate[4], cnew[2], hv[2];
        for (int g = 0; g < 4; g++) {
            const int64_t n = g * NC + j;
            const __m256i x16 = _mm256_loadu_si256((const __m256i*)(px + n));
            __m256i part[2];
            for (int h = 0; h < 2; h++) {
                const __m256i acc = _mm256_add_epi32(_mm256_loadu_si256((const __m256i*)(a + n + 8 * h)),
                                                     _mm256_loadu_si256((const __m256i*)(bh + n + 8 * h)));
                /* sat16(MBQM(..) + the input part): the sum fits int32, the pack saturates */
                part[h] = _mm256_add_epi32(em_mbqm_lanes_x8(acc, q + g, shift[4 + g] > 0), em_lstm_half32_x8(x16, h));
            }
            gate[g] = em_lstm_pack16_x8(part[0], part[1]);
        }
        const __m256i vi = em_q16a_logistic(gate[0], 3), vf = em_q16a_logistic(gate[1], 3);
        const __m256i vg = em_q16a_tanh(gate[2], 3), vo = em_q16a_logistic(gate[3], 3);
        __m256i c16 = _mm256_loadu_si256((const __m256i*)(c + j));
        for (int h = 0; h < 2; h++) {
            const __m256i keep = em_lstm_trunc16_x8(em_lstm_rdbp_x8(
                _mm256_mullo_epi32(em_lstm_half32_x8(vf, h), em_lstm_half32_x8(c16, h)), 15));
            const __m256i add = em_lstm_trunc16_x8(em_lstm_rdbp_x8(
                _mm256_mullo_epi32(em_lstm_half32_x8(vi, h), em_lstm_half32_x8(vg, h)), cell_shift));
            __m256i cv = _mm256_add_epi32(keep, add);
            cv = _mm256_min_epi32(_mm256_max_epi32(cv, _mm256_set1_epi32(INT16_MIN)), _mm256_set1_epi32(INT16_MAX));
            if (clip > 0)
                cv = _mm256_min_epi32(_mm256_max_epi32(cv, _mm256_set1_epi32(-clip)), _mm256_set1_epi32(clip));
            cnew[h] = cv;
        }
        c16 = em_lstm_pack16_x8(cnew[0], cnew[1]);
        _mm256_storeu_si256((__m256i*)(c + j), c16);
        const __m256i th16 = stale_tanh ? vi : em_q16a_tanh(c16, cell_ibits);
        for (int h = 0; h < 2; h++) {
            __m256i v = _mm256_mullo_epi32(em_lstm_half32_x8(vo, h), em_lstm_half32_x8(th16, h));
            v = _mm256_add_epi32(em_mbqm_lanes_x8(v, q + 4, hsh > 0), _mm256_set1_epi32(hzp));
            hv[h] = _mm256_min_epi32(_mm256_max_epi32(v, _mm256_set1_epi32(-128)), _mm256_set1_epi32(127));
        }
        const __m256i b16 = em_lstm_pack16_x8(hv[0], hv[1]);
        const __m256i bytes = _mm256_permute4x64_epi64(_mm256_packs_epi16(b16, b16), 0x08);   /* qwords 0, 2 */
        _mm_storeu_si128((__m128i*)(out + j), _mm256_castsi256_si128(bytes));
    }
    return j;
}
#endif

/* ----- the integer kernel ---------------------------------------------------------------------------------
 * ptr: x int8 [B,T,F] (or [T,B,F] when time_major), y int8 [.., n_cell] one row per (b, t),
 *      h state int8 [B, n_cell], c state int16 [B, n_cell],
 *      Wx [4*n_cell, F], Wh [4*n_cell, n_cell] (gate order i, f, g, o), packed for em_lstm_dots,
 *      bias_x int32 [4*n_cell], bias_h int32 [4*n_cell] (zero points folded in),
 *      mult int32 [8]: Mx for the 4 gates then Mh, shift int32 [8],
 *      tables (3 slots): sigmoid, tanh (Q3.12 -> Q0.15), tanh of the cell state: |x| half tables (em_lstm_lut),
 *      scratch: int16 [T*B*4*n_cell] input part, int32 [Gp] sums (Gp: 4*n_cell padded)
 * ints: B, T, F, n_cell, time_major, cell_shift (30 + cell_scale), cell clip (0: none),
 *       hidden mult, hidden shift, hidden zp, rounding mode,
 *       stale_tanh: LiteRT's ApplyTanh has no variant for the cell state's integer bits (15 + cell_scale
 *          outside 0..6) and leaves its output buffer, the input gate's scratch, unwritten: h = o * i,
 *       weight layout (quads): 0 int16 pairs (em_lstm_dots), 1 u8 x s8 quads (em_lstm_dots_u8s8, AVX-512 VNNI),
 *       table limits (3 slots): last index of the three half tables (where they saturate) */
enum { EM_LSTM_INT8_P_X, EM_LSTM_INT8_P_Y, EM_LSTM_INT8_P_H_STATE, EM_LSTM_INT8_P_C_STATE, EM_LSTM_INT8_P_WX,
       EM_LSTM_INT8_P_WH, EM_LSTM_INT8_P_BIAS_X, EM_LSTM_INT8_P_BIAS_H, EM_LSTM_INT8_P_MULT, EM_LSTM_INT8_P_SHIFT,
       EM_LSTM_INT8_P_TABLES, EM_LSTM_INT8_P_TABLES_LAST = EM_LSTM_INT8_P_TABLES + 2, EM_LSTM_INT8_P_SCRATCH,
       EM_LSTM_INT8_P_COUNT };
enum { EM_LSTM_INT8_I_BATCH, EM_LSTM_INT8_I_STEPS, EM_LSTM_INT8_I_INPUTS, EM_LSTM_INT8_I_CELLS,
       EM_LSTM_INT8_I_TIME_MAJOR, EM_LSTM_INT8_I_CELL_SHIFT, EM_LSTM_INT8_I_CELL_CLIP, EM_LSTM_INT8_I_HIDDEN_MULT,
       EM_LSTM_INT8_I_HIDDEN_SHIFT, EM_LSTM_INT8_I_HIDDEN_ZP, EM_LSTM_INT8_I_MODE, EM_LSTM_INT8_I_STALE_TANH,
       EM_LSTM_INT8_I_QUADS, EM_LSTM_INT8_I_TABLE_LIMITS,
       EM_LSTM_INT8_I_TABLE_LIMITS_LAST = EM_LSTM_INT8_I_TABLE_LIMITS + 2, EM_LSTM_INT8_I_COUNT };
enum { EM_LSTM_INT8_F_COUNT = 0 };

static void em_lstm_int8(const em_params* p) {
    const int8_t* x = (const int8_t*)p->ptr[EM_LSTM_INT8_P_X];
    int8_t* y = (int8_t*)p->ptr[EM_LSTM_INT8_P_Y];
    int8_t* hs = (int8_t*)p->ptr[EM_LSTM_INT8_P_H_STATE];
    int16_t* cs = (int16_t*)p->ptr[EM_LSTM_INT8_P_C_STATE];
    const int16_t* wx = (const int16_t*)p->ptr[EM_LSTM_INT8_P_WX];
    const int16_t* wh = (const int16_t*)p->ptr[EM_LSTM_INT8_P_WH];
    const int32_t* bx = (const int32_t*)p->ptr[EM_LSTM_INT8_P_BIAS_X];
    const int32_t* bh = (const int32_t*)p->ptr[EM_LSTM_INT8_P_BIAS_H];
    const int32_t* mult = (const int32_t*)p->ptr[EM_LSTM_INT8_P_MULT];
    const int32_t* shift = (const int32_t*)p->ptr[EM_LSTM_INT8_P_SHIFT];
    const int16_t* sig = (const int16_t*)p->ptr[EM_LSTM_INT8_P_TABLES + 0];
    const int16_t* tanh_g = (const int16_t*)p->ptr[EM_LSTM_INT8_P_TABLES + 1];
    const int16_t* tanh_c = (const int16_t*)p->ptr[EM_LSTM_INT8_P_TABLES + 2];
    const int32_t lim[3] = {(int32_t)p->i[EM_LSTM_INT8_I_TABLE_LIMITS + 0],
                            (int32_t)p->i[EM_LSTM_INT8_I_TABLE_LIMITS + 1],
                            (int32_t)p->i[EM_LSTM_INT8_I_TABLE_LIMITS + 2]};
    const int64_t B = p->i[EM_LSTM_INT8_I_BATCH], T = p->i[EM_LSTM_INT8_I_STEPS], F = p->i[EM_LSTM_INT8_I_INPUTS];
    const int64_t NC = p->i[EM_LSTM_INT8_I_CELLS];
    const int time_major = (int)p->i[EM_LSTM_INT8_I_TIME_MAJOR], cell_shift = (int)p->i[EM_LSTM_INT8_I_CELL_SHIFT];
    const int16_t clip = (int16_t)p->i[EM_LSTM_INT8_I_CELL_CLIP];
    const int32_t hm = (int32_t)p->i[EM_LSTM_INT8_I_HIDDEN_MULT], hsh = (int32_t)p->i[EM_LSTM_INT8_I_HIDDEN_SHIFT];
    const int32_t hzp = (int32_t)p->i[EM_LSTM_INT8_I_HIDDEN_ZP];
    const int mode = (int)p->i[EM_LSTM_INT8_I_MODE], stale_tanh = (int)p->i[EM_LSTM_INT8_I_STALE_TANH];
    const int quads = (int)p->i[EM_LSTM_INT8_I_QUADS];
    const int64_t G = 4 * NC, Gp = (G + EM_LSTM_COLS - 1) / EM_LSTM_COLS * EM_LSTM_COLS;
    int16_t* pre = (int16_t*)p->ptr[EM_LSTM_INT8_P_SCRATCH];
    int32_t* acc = (int32_t*)(pre + T * B * G);
    int64_t r, n, t, b, j;

    /* input part of every gate for every row of x (all steps), requantized to int16 row by row, so the int32
     * sums need one row of scratch */
#if defined(__x86_64__) && defined(__GNUC__)
    const int vec = mode == EM_ROUND_DOUBLE && em_isa() >= EM_ISA_AVX512VNNI;
#else
    const int vec = 0;                        /* (em_isa() is EM_ISA_NEON here, numerically above the x86 paths) */
#endif
#if defined(__x86_64__) && defined(__GNUC__)
    /* the vector path's multiplier constants, derived once: the input part's 4 gates, the recurrent part's 4
     * gates and the hidden one */
    const int cell_ibits = stale_tanh ? 0 : cell_shift - 15;
    em_mbqm16 qx[4], qh[5];
    if (vec) em_lstm_step_consts(mult, shift, hm, hsh, qx, qh);
    /* AVX2 (and the avx512 path without VNNI): the same arithmetic 16 cells at a time */
    const int vec2 = !vec && mode == EM_ROUND_DOUBLE && em_isa() >= EM_ISA_AVX2 && em_lstm_avx2_shifts(shift, hsh);
    em_mbqm8_lanes qx8[4], qh8[5];
    if (vec2) em_lstm_step_consts_avx2(mult, shift, hm, hsh, qx8, qh8);
#endif
    for (r = 0; r < T * B; r++) {
        int16_t* o = pre + r * G;
        int g;
        em_lstm_dots_packed(quads, x + r * F, F, wx, 1, Gp, F, acc);
#if defined(__x86_64__) && defined(__GNUC__)
        if (vec) { em_lstm_requant_row_vnni(acc, NC, bx, qx, o); continue; }
        if (vec2) { em_lstm_requant_row_avx2(acc, NC, bx, qx8, mult, shift, o); continue; }
#endif
        for (g = 0; g < 4; g++)
            for (n = g * NC; n < (g + 1) * NC; n++) o[n] = em_sat16(em_mbqm(acc[n] + bx[n], mult[g], shift[g], mode));
    }
    for (t = 0; t < T; t++) {
        for (b = 0; b < B; b++) {
            const int64_t row = time_major ? t * B + b : b * T + t;
            int8_t* h = hs + b * NC;
            int16_t* c = cs + b * NC;
            const int16_t* px = pre + row * G;
            int32_t* a = acc;
            int8_t* out = y + row * NC;
            em_lstm_dots_packed(quads, h, NC, wh, 1, Gp, NC, a);
#if defined(__x86_64__) && defined(__GNUC__)
            if (vec) {
                if (NC <= 16) em_lstm_cells16_vnni(a, bh, px, qh, NC, cell_shift, cell_ibits, clip, hzp, stale_tanh, c, out);
                else em_lstm_cells_vnni(a, bh, px, qh, NC, cell_shift, cell_ibits, clip, hzp, stale_tanh, c, out);
                memcpy(h, out, (size_t)NC);
                continue;
            }
            j = vec2 ? em_lstm_cells_avx2(a, bh, px, qh8, shift, hsh, NC, cell_shift, cell_ibits, clip, hzp, stale_tanh,
                                          c, out) : 0;
#else
            j = 0;
#endif
            for (; j < NC; j++) {
                int16_t gi = em_sat16(em_mbqm(a[j] + bh[j], mult[4], shift[4], mode) + px[j]);
                int16_t gf = em_sat16(em_mbqm(a[NC + j] + bh[NC + j], mult[5], shift[5], mode) + px[NC + j]);
                int16_t gg = em_sat16(em_mbqm(a[2 * NC + j] + bh[2 * NC + j], mult[6], shift[6], mode) +
                                      px[2 * NC + j]);
                int16_t go = em_sat16(em_mbqm(a[3 * NC + j] + bh[3 * NC + j], mult[7], shift[7], mode) +
                                      px[3 * NC + j]);
                int16_t vi = em_lstm_lut(sig, lim[0], 0, gi), vf = em_lstm_lut(sig, lim[0], 0, gf);
                int16_t vo = em_lstm_lut(sig, lim[0], 0, go), vg = em_lstm_lut(tanh_g, lim[1], 1, gg);
                int16_t c_keep = (int16_t)em_rounding_divide_by_pot((int32_t)vf * c[j], 15);
                int16_t c_new = (int16_t)em_rounding_divide_by_pot((int32_t)vi * vg, cell_shift);
                int16_t cv = em_sat16((int32_t)c_keep + c_new);
                int32_t hv;
                if (clip > 0) cv = cv > clip ? clip : (cv < -clip ? (int16_t)-clip : cv);
                c[j] = cv;
                hv = em_mbqm((int32_t)vo * (stale_tanh ? vi : em_lstm_lut(tanh_c, lim[2], 1, cv)), hm, hsh, mode) + hzp;
                out[j] = (int8_t)(hv > 127 ? 127 : (hv < -128 ? -128 : hv));
            }
            memcpy(h, out, (size_t)NC);
        }
    }
}
#endif
