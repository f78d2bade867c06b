/* numerics.quantize_multiplier of one real value at load (load_pack.pyx, load_prepare.pyx): frexp, the exact scaling by
 * 2^31 rounded half up, a mantissa that rounds up to 2^31 halved with the exponent raised, tiny values to (0, 0),
 * and the single-rounding build's clamp of exponents above 30.  Returns 0 for a negative or non-finite value. */
#ifndef EM_MULTIPLIER_H
#define EM_MULTIPLIER_H
#include <math.h>
#include <stdint.h>
#include <string.h>

static inline int em_multiplier_of(double real, int rounding, int32_t* mult, int32_t* shift) {
    if (!(isfinite(real) && real >= 0)) return 0;
    /* frexp and the rounding read off the bits (no libm calls: the packers run this once per output column):
     * a normal real = M 2^(field - 1075) with M = 2^52 + mantissa, so frexp's fraction times 2^31 is M / 2^22,
     * exact, and its half-up rounding (M + 2^21) >> 22.  Zero, -0.0 and subnormals (e < -31) give (0, 0). */
    uint64_t bits;
    memcpy(&bits, &real, sizeof bits);
    const int field = (int)((bits >> 52) & 0x7FF);
    if (field == 0) {
        *mult = 0;
        *shift = 0;
        return 1;
    }
    int e = field - 1022;
    uint64_t whole = (((bits & ((1ULL << 52) - 1)) | (1ULL << 52)) + (1ULL << 21)) >> 22;
    if (whole == (1ULL << 31)) {
        whole = 1ULL << 30;
        e += 1;
    }
    if (e < -31) {
        *mult = 0;
        *shift = 0;
    } else if (rounding == 1 && e > 30) {      /* the single-rounding build clamps large multipliers */
        *mult = 2147483647;
        *shift = 30;
    } else {
        *mult = (int32_t)whole;
        *shift = e;
    }
    return 1;
}
#endif
