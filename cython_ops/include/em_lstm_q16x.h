/* gemmlowp FixedPoint<int16> on one vector of int16 lanes: the em_q16_* helpers of em_q16.h, operation for
 * operation.  Included three times by em_q16.h, for 32 lanes (zmm: em_q16x_*), 16 lanes (ymm, AVX-512VL:
 * em_q16y_*) and 16 lanes on AVX2 (em_q16a_*), with EMQ_V / EMQ_M the vector and lane-mask types, EMQ(_op) the
 * intrinsic _mm512_op or _mm256_op, EMQ_ZERO, EMQ_AND, EMQ_FN(name) the function's name, EMQ_TARGET, and the
 * masked forms EMQ_TESTBIT (a lane has the one bit set), EMQ_GT, EMQ_EQ, EMQ_MULHRS_IF, EMQ_MOV_IF, EMQ_SUB_IF
 * (AVX-512 mask registers, or AVX2 lane masks and blends).  No include guard, on purpose; the per-instance
 * parameters (EMQ_V, EMQ_M, EMQ, EMQ_ZERO, EMQ_AND, EMQ_FN) are undefined at its end, the ISA-wide ones by
 * the includer. */
/* RoundingDivideByPOT (rounds half away from zero), e >= 1: (x + 2^(e-1) - [x < 0]) >> e, valid while
 * x + 2^(e-1) does not wrap, as for every value it is given here (|x| < 2^13) */
EMQ_TARGET static inline EMQ_V EMQ_FN(rdbp)(EMQ_V x, int e) {
    EMQ_V t = EMQ(_add_epi16)(EMQ(_add_epi16)(x, EMQ(_set1_epi16)((int16_t)(1 << (e - 1)))), EMQ(_srai_epi16)(x, 15));
    return EMQ(_sra_epi16)(t, _mm_cvtsi32_si128(e));
}
/* SaturatingRoundingMultiplyByPOT<1> and <2>: saturating doublings (once 2x saturates, 4x does, same sign) */
EMQ_TARGET static inline EMQ_V EMQ_FN(times2)(EMQ_V x) { return EMQ(_adds_epi16)(x, x); }
EMQ_TARGET static inline EMQ_V EMQ_FN(times4)(EMQ_V x) { return EMQ_FN(times2)(EMQ_FN(times2)(x)); }
EMQ_TARGET static inline EMQ_V EMQ_FN(exp_neg_quarter)(EMQ_V a) {
    const EMQ_V c = EMQ(_set1_epi16)(em_q16_const(1895147668)), third = EMQ(_set1_epi16)(em_q16_const(715827883));
    EMQ_V x = EMQ(_add_epi16)(a, EMQ(_set1_epi16)(1 << 12));
    EMQ_V x2 = EMQ(_mulhrs_epi16)(x, x), x3 = EMQ(_mulhrs_epi16)(x2, x), x4 = EMQ(_mulhrs_epi16)(x2, x2);
    EMQ_V poly = EMQ(_add_epi16)(EMQ(_mulhrs_epi16)(EMQ(_add_epi16)(EMQ_FN(rdbp)(x4, 2), x3), third), x2);
    poly = EMQ_FN(rdbp)(poly, 1);
    return EMQ(_adds_epi16)(c, EMQ(_mulhrs_epi16)(c, EMQ(_add_epi16)(x, poly)));
}
EMQ_TARGET static inline EMQ_V EMQ_FN(exp_on_negative)(EMQ_V a, int ibits) {
    static const int32_t barrel[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    const int fbits = 15 - ibits;
    const EMQ_V quarter = EMQ(_set1_epi16)((int16_t)(1 << (fbits - 2)));
    EMQ_V amq = EMQ(_sub_epi16)(EMQ_AND(a, EMQ(_set1_epi16)((int16_t)((1 << (fbits - 2)) - 1))), quarter);
    /* amq in [-1/4, 0): shifting it up by ibits cannot saturate */
    EMQ_V result = EMQ_FN(exp_neg_quarter)(ibits ? EMQ(_sll_epi16)(amq, _mm_cvtsi32_si128(ibits)) : amq);
    EMQ_V rem = EMQ(_sub_epi16)(amq, a);
    int k;
    for (k = -2; k <= 4; k++) {
        if (ibits > k) {
            EMQ_M bit = EMQ_TESTBIT(rem, EMQ(_set1_epi16)((int16_t)(1 << (fbits + k))));
            result = EMQ_MULHRS_IF(bit, result, EMQ(_set1_epi16)(em_q16_const(barrel[k + 2])));
        }
    }
    if (ibits > 5)
        result = EMQ_MOV_IF(EMQ_GT(EMQ(_set1_epi16)((int16_t)-(1 << (20 - ibits))), a), result, EMQ_ZERO);
    return result;           /* exp(0) = 1 is left out: logistic and tanh set their a = 0 results themselves */
}
EMQ_TARGET static inline EMQ_V EMQ_FN(newton)(EMQ_V half_den) {          /* half_den in [1/2, 1] */
    const EMQ_V one2 = EMQ(_set1_epi16)(1 << 13);
    EMQ_V x = EMQ(_add_epi16)(EMQ(_set1_epi16)(em_q16_const(1515870810)),
                                 EMQ(_mulhrs_epi16)(half_den, EMQ(_set1_epi16)(em_q16_const(-1010580540))));
    int i;
    for (i = 0; i < 3; i++) {
        EMQ_V om = EMQ(_sub_epi16)(one2, EMQ(_mulhrs_epi16)(half_den, x));
        x = EMQ(_add_epi16)(x, EMQ_FN(times4)(EMQ(_mulhrs_epi16)(x, om)));
    }
    return x;
}
/* RoundingHalfSum(e, 1) for e in [0, 1]: (e + 32767 + 1) >> 1, which is vpavgw */
EMQ_TARGET static inline EMQ_V EMQ_FN(logistic)(EMQ_V a, int ibits) {
    const EMQ_V zero = EMQ_ZERO, top = EMQ(_set1_epi16)(INT16_MAX);
    EMQ_V e = EMQ_FN(exp_on_negative)(EMQ(_sub_epi16)(zero, EMQ(_abs_epi16)(a)), ibits);
    EMQ_V pos = EMQ_FN(times2)(EMQ_FN(newton)(EMQ(_avg_epu16)(e, top)));
    EMQ_V y = EMQ_SUB_IF(EMQ_GT(zero, a), top, pos, pos);
    return EMQ_MOV_IF(EMQ_EQ(a, zero), y, EMQ(_set1_epi16)(em_q16_const(1 << 30)));
}
EMQ_TARGET static inline EMQ_V EMQ_FN(tanh)(EMQ_V a, int ibits) {
    const EMQ_V zero = EMQ_ZERO;
    EMQ_V e = EMQ_FN(exp_on_negative)(EMQ(_sub_epi16)(zero, EMQ(_abs_epi16)(a)), ibits + 1);
    EMQ_V t = EMQ_FN(newton)(EMQ(_avg_epu16)(e, EMQ(_set1_epi16)(INT16_MAX)));
    t = EMQ_FN(times4)(EMQ(_sub_epi16)(t, EMQ(_set1_epi16)(1 << 13)));
    t = EMQ_SUB_IF(EMQ_GT(zero, a), zero, t, t);
    return EMQ_MOV_IF(EMQ_EQ(a, zero), t, zero);
}
#undef EMQ_V
#undef EMQ_M
#undef EMQ
#undef EMQ_ZERO
#undef EMQ_AND
#undef EMQ_FN
