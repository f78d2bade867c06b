# cython: language_level=3
"""Element-wise math (include/em_math_unary.h, em_math_binary.h), LOG_SOFTMAX / L2_NORMALIZATION
(em_normalize.h), BATCH_MATMUL (em_batch_matmul.h) and grouped CONV_2D (em_grouped_conv.h)."""
from libc.stdint cimport uintptr_t, uint8_t, int32_t
from cython_ops.em_params cimport em_params

import numpy as np

cdef extern from "em_math_unary.h":
    enum:
        EM_MATH_FLOOR
        EM_MATH_SQRT
        EM_MATH_RSQRT
        EM_MATH_EXP
        EM_MATH_LOG
        EM_MATH_ABS
        EM_MATH_NEG
        EM_MATH_SQUARE
        EM_MATH_ELU
        EM_MATH_GELU_TANH
        EM_MATH_GELU_ERF
    void em_math_unary_f32(const em_params*) nogil
    void em_math_unary_i32(const em_params*) nogil
    void em_lut_checked(const em_params*) nogil
    void em_unary_table(int kind, int is_signed, float in_scale, int32_t in_zp, float out_scale, int32_t out_zp,
                        int32_t mult, int32_t shift, int rescale, int mode, uint8_t* table) nogil

cdef extern from "em_math_binary.h":
    enum:
        EM_MATH_DIV
        EM_MATH_FLOOR_DIV
        EM_MATH_FLOOR_MOD
        EM_MATH_POW
        EM_MATH_SQUARED_DIFFERENCE
        EM_MATH_PRELU
    void em_math_binary_f32(const em_params*) nogil
    void em_math_binary_i32(const em_params*) nogil
    void em_math_binary_int8(const em_params*) nogil
    void em_math_binary_uint8(const em_params*) nogil

cdef extern from "em_normalize.h":
    void em_log_softmax_f32(const em_params*) nogil
    void em_log_softmax_int8(const em_params*) nogil
    void em_l2_norm_f32(const em_params*) nogil
    void em_l2_norm_int8(const em_params*) nogil
    void em_l2_norm_uint8(const em_params*) nogil

cdef extern from "em_batch_matmul.h":
    void em_batch_matmul_f32(const em_params*) nogil
    void em_batch_matmul_int8(const em_params*) nogil

cdef extern from "em_grouped_conv.h":
    void em_grouped_conv_int8(const em_params*) nogil
    void em_grouped_conv_f32(const em_params*) nogil

KERNELS = {
    "math_unary_f32": <uintptr_t>&em_math_unary_f32,
    "math_unary_i32": <uintptr_t>&em_math_unary_i32,
    "lut_checked": <uintptr_t>&em_lut_checked,
    "math_binary_f32": <uintptr_t>&em_math_binary_f32,
    "math_binary_i32": <uintptr_t>&em_math_binary_i32,
    "math_binary_int8": <uintptr_t>&em_math_binary_int8,
    "math_binary_uint8": <uintptr_t>&em_math_binary_uint8,
    "log_softmax_f32": <uintptr_t>&em_log_softmax_f32,
    "log_softmax_int8": <uintptr_t>&em_log_softmax_int8,
    "l2_norm_f32": <uintptr_t>&em_l2_norm_f32,
    "l2_norm_int8": <uintptr_t>&em_l2_norm_int8,
    "l2_norm_uint8": <uintptr_t>&em_l2_norm_uint8,
    "batch_matmul_f32": <uintptr_t>&em_batch_matmul_f32,
    "batch_matmul_int8": <uintptr_t>&em_batch_matmul_int8,
    "grouped_conv_int8": <uintptr_t>&em_grouped_conv_int8,
    "grouped_conv_f32": <uintptr_t>&em_grouped_conv_f32,
}

# function codes of the `kind` slot, by op type
UNARY_KINDS = {"FLOOR": EM_MATH_FLOOR, "SQRT": EM_MATH_SQRT, "RSQRT": EM_MATH_RSQRT, "EXP": EM_MATH_EXP,
               "LOG": EM_MATH_LOG, "ABS": EM_MATH_ABS, "NEG": EM_MATH_NEG, "SQUARE": EM_MATH_SQUARE,
               "ELU": EM_MATH_ELU, "GELU_TANH": EM_MATH_GELU_TANH, "GELU_ERF": EM_MATH_GELU_ERF}
BINARY_KINDS = {"DIV": EM_MATH_DIV, "FLOOR_DIV": EM_MATH_FLOOR_DIV, "FLOOR_MOD": EM_MATH_FLOOR_MOD,
                "POW": EM_MATH_POW, "SQUARED_DIFFERENCE": EM_MATH_SQUARED_DIFFERENCE, "PRELU": EM_MATH_PRELU}


def unary_table(str op, bint is_signed, float in_scale, int in_zp, float out_scale, int out_zp, int mult=0,
                int shift=0, bint rescale=False, int mode=0):
    """The 512 bytes em_lut_checked reads for an int8 (is_signed) or uint8 unary op: its 256 outputs by input byte,
    then 256 validity flags (0 where LiteRT's kernel refuses that input at run time)."""
    table = np.zeros(512, dtype=np.uint8)
    cdef uint8_t[::1] t = table
    em_unary_table(UNARY_KINDS[op], is_signed, in_scale, in_zp, out_scale, out_zp, mult, shift, rescale, mode, &t[0])
    return table
