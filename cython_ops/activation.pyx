# cython: language_level=3
"""int8 LOGISTIC, TANH (table or fixed point), SOFTMAX, HARD_SWISH (include/em_activations.h)."""
from libc.stdint cimport uintptr_t, int8_t, int32_t
from cython_ops.em_params cimport em_params

import numpy as np

cdef extern from "em_lut.h":
    void em_lut_int8_f32_step(const em_params*) nogil
    void em_lut_periodic_int8_step(const em_params*) nogil
    void em_lut_affine_int8_step(const em_params*) nogil

cdef extern from "em_activation_steps.h":
    void em_lut_int8_step(const em_params*) nogil
    void em_logistic_fixed_int8_step(const em_params*) nogil
    void em_tanh_fixed_int8_step(const em_params*) nogil
    void em_softmax_int8_step(const em_params*) nogil
    void em_softmax_lut_int8_step(const em_params*) nogil
    void em_softmax_int8_table(int32_t*, int32_t, int32_t, int32_t, int32_t, int32_t) nogil
    int EM_SOFTMAX_TABLE_INT32
    void em_hard_swish_int8_step(const em_params*) nogil
    void em_hard_swish_int8_avx2_step(const em_params*) nogil
    void em_logistic_int8_lut_init(float, int32_t, float, int32_t, int8_t*) nogil
    void em_tanh_int8_lut_init(float, int32_t, float, int32_t, int8_t*) nogil

KERNELS = {
    "lut_int8": <uintptr_t>&em_lut_int8_step,
    "lut_int8_f32": <uintptr_t>&em_lut_int8_f32_step,
    "lut_periodic_int8": <uintptr_t>&em_lut_periodic_int8_step,
    "lut_affine_int8": <uintptr_t>&em_lut_affine_int8_step,
    "logistic_fixed_int8": <uintptr_t>&em_logistic_fixed_int8_step,
    "tanh_fixed_int8": <uintptr_t>&em_tanh_fixed_int8_step,
    "softmax_int8": <uintptr_t>&em_softmax_int8_step,
    "softmax_lut_int8": <uintptr_t>&em_softmax_lut_int8_step,
    "hard_swish_int8": <uintptr_t>&em_hard_swish_int8_step,
    "hard_swish_int8_avx2": <uintptr_t>&em_hard_swish_int8_avx2_step,
}


def activation_table(str kind, float input_scale, int input_zero_point, float output_scale, int output_zero_point):
    """The 256-entry int8 table LiteRT's reference LOGISTIC / TANH build at prepare (indexed by uint8(x))."""
    table = np.zeros(256, dtype=np.int8)
    cdef int8_t[::1] t = table
    if kind == "LOGISTIC":
        em_logistic_int8_lut_init(input_scale, input_zero_point, output_scale, output_zero_point, &t[0])
    elif kind == "TANH":
        em_tanh_int8_lut_init(input_scale, input_zero_point, output_scale, output_zero_point, &t[0])
    else:
        raise ValueError(kind)
    return table


def softmax_table(int input_multiplier, int input_left_shift, int diff_min, int mode, bint pairs=True):
    """SOFTMAX int8's table (em_softmax_int8_table): exp and sum addend per max - x (512 int32), then the outputs of
    a two-value row per difference (512 bytes; zeros unless pairs: only rows of two read them)."""
    table = np.zeros(EM_SOFTMAX_TABLE_INT32, dtype=np.int32)
    cdef int32_t[::1] t = table
    em_softmax_int8_table(&t[0], input_multiplier, input_left_shift, diff_min, mode, pairs)
    return table
