/* numerics.quantize_multiplier of one real value at load (load_pack.pyx, load_prepare.pyx): frexp, the exact scaling by
 * 2^31 rounded half up, a mantissa that rounds up to 2^31 halved with the exponent raised, tiny values to (0, 0),
 * and the single-rounding build's clamp of exponents above 30.  Returns 0 for a negative or non-finite value. */
#ifndef EM_MULTIPLIER_H
#define EM_MULTIPLIER_H
#include <math.h>
#include <stdint.h>

static inline int em_multiplier_of(double real, int rounding, int32_t* mult, int32_t* shift) {
    if (!(isfinite(real) && real >= 0)) return 0;
    int e;
    const double scaled = frexp(real, &e) * 2147483648.0;
    double whole = floor(scaled);
    if (scaled - whole >= 0.5) whole += 1.0;
    if (whole == 2147483648.0) {
        whole = 1073741824.0;
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
