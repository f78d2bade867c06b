# cython: language_level=3
"""Kernels of the ONNX ops that TFLite has no twin for: element-wise ops on every plain tensor type
(include/em_onnx_elementwise.h), TopK, CumSum, scatters, float min / max
reductions (em_onnx_index.h), the row normalizations (em_onnx_norm.h) and Resize's per-axis
interpolation (em_onnx_resize.h)."""
from libc.stdint cimport uintptr_t
from cython_ops.em_params cimport em_params

cdef extern from "em_onnx_elementwise.h":
    enum:
        EM_OU_ABS
        EM_OU_NEG
        EM_OU_SIGN
        EM_OU_CEIL
        EM_OU_FLOOR
        EM_OU_ROUND
        EM_OU_RECIPROCAL
        EM_OU_SQRT
        EM_OU_EXP
        EM_OU_LOG
        EM_OU_SIN
        EM_OU_COS
        EM_OU_TAN
        EM_OU_ASIN
        EM_OU_ACOS
        EM_OU_ATAN
        EM_OU_SINH
        EM_OU_COSH
        EM_OU_ASINH
        EM_OU_ACOSH
        EM_OU_ATANH
        EM_OU_ERF
        EM_OU_SOFTPLUS
        EM_OU_SOFTSIGN
        EM_OU_SELU
        EM_OU_CELU
        EM_OU_ELU
        EM_OU_HARD_SIGMOID
        EM_OU_THRESHOLDED_RELU
        EM_OU_SHRINK
        EM_OU_MISH
        EM_OU_GELU_ERF
        EM_OU_GELU_TANH
        EM_OU_HARD_SWISH
        EM_OU_SWISH
        EM_OU_SIGMOID
        EM_OU_TANH
        EM_OU_RELU
        EM_OU_LEAKY_RELU
        EM_OU_IS_NAN
        EM_OU_IS_INF
        EM_OU_NOT
        EM_OU_BITWISE_NOT
        EM_OB_ADD
        EM_OB_SUB
        EM_OB_MUL
        EM_OB_DIV
        EM_OB_MOD
        EM_OB_FMOD
        EM_OB_POW
        EM_OB_MAX
        EM_OB_MIN
        EM_OB_SHIFT_LEFT
        EM_OB_SHIFT_RIGHT
        EM_OB_AND
        EM_OB_OR
        EM_OB_XOR
        EM_OB_BITWISE_AND
        EM_OB_BITWISE_OR
        EM_OB_BITWISE_XOR
        EM_OB_PRELU
        EM_OB_EQUAL
        EM_OB_LESS
        EM_OB_LESS_EQUAL
        EM_OB_GREATER
        EM_OB_GREATER_EQUAL
    void em_onnx_unary(const em_params*) nogil
    void em_onnx_binary(const em_params*) nogil

cdef extern from "em_onnx_index.h":
    void em_onnx_topk(const em_params*) nogil
    void em_onnx_cumsum(const em_params*) nogil
    void em_onnx_scatter(const em_params*) nogil
    void em_onnx_reduce_minmax_f32(const em_params*) nogil

cdef extern from "em_onnx_norm.h":
    void em_onnx_normalize(const em_params*) nogil

cdef extern from "em_onnx_resize.h":
    void em_onnx_resize_axis(const em_params*) nogil

KERNELS = {
    "onnx_unary": <uintptr_t>&em_onnx_unary,
    "onnx_binary": <uintptr_t>&em_onnx_binary,
    "onnx_topk": <uintptr_t>&em_onnx_topk,
    "onnx_cumsum": <uintptr_t>&em_onnx_cumsum,
    "onnx_scatter": <uintptr_t>&em_onnx_scatter,
    "onnx_reduce_minmax_f32": <uintptr_t>&em_onnx_reduce_minmax_f32,
    "onnx_normalize": <uintptr_t>&em_onnx_normalize,
    "onnx_resize_axis": <uintptr_t>&em_onnx_resize_axis,
}

# function codes of the `kind` slot, by name
UNARY_KINDS = {"ABS": EM_OU_ABS, "NEG": EM_OU_NEG, "SIGN": EM_OU_SIGN, "CEIL": EM_OU_CEIL, "FLOOR": EM_OU_FLOOR,
    "ROUND": EM_OU_ROUND, "RECIPROCAL": EM_OU_RECIPROCAL, "SQRT": EM_OU_SQRT, "EXP": EM_OU_EXP, "LOG": EM_OU_LOG,
    "SIN": EM_OU_SIN, "COS": EM_OU_COS, "TAN": EM_OU_TAN, "ASIN": EM_OU_ASIN, "ACOS": EM_OU_ACOS,
    "ATAN": EM_OU_ATAN, "SINH": EM_OU_SINH, "COSH": EM_OU_COSH, "ASINH": EM_OU_ASINH, "ACOSH": EM_OU_ACOSH,
    "ATANH": EM_OU_ATANH, "ERF": EM_OU_ERF, "SOFTPLUS": EM_OU_SOFTPLUS, "SOFTSIGN": EM_OU_SOFTSIGN,
    "SELU": EM_OU_SELU, "CELU": EM_OU_CELU, "ELU": EM_OU_ELU, "HARD_SIGMOID": EM_OU_HARD_SIGMOID,
    "THRESHOLDED_RELU": EM_OU_THRESHOLDED_RELU, "SHRINK": EM_OU_SHRINK, "MISH": EM_OU_MISH,
    "GELU_ERF": EM_OU_GELU_ERF, "GELU_TANH": EM_OU_GELU_TANH, "HARD_SWISH": EM_OU_HARD_SWISH, "SWISH": EM_OU_SWISH,
    "SIGMOID": EM_OU_SIGMOID, "TANH": EM_OU_TANH, "RELU": EM_OU_RELU, "LEAKY_RELU": EM_OU_LEAKY_RELU,
    "IS_NAN": EM_OU_IS_NAN, "IS_INF": EM_OU_IS_INF, "NOT": EM_OU_NOT, "BITWISE_NOT": EM_OU_BITWISE_NOT}
BINARY_KINDS = {"ADD": EM_OB_ADD, "SUB": EM_OB_SUB, "MUL": EM_OB_MUL, "DIV": EM_OB_DIV, "MOD": EM_OB_MOD,
    "FMOD": EM_OB_FMOD, "POW": EM_OB_POW, "MAX": EM_OB_MAX, "MIN": EM_OB_MIN, "SHIFT_LEFT": EM_OB_SHIFT_LEFT,
    "SHIFT_RIGHT": EM_OB_SHIFT_RIGHT, "AND": EM_OB_AND, "OR": EM_OB_OR, "XOR": EM_OB_XOR,
    "BITWISE_AND": EM_OB_BITWISE_AND, "BITWISE_OR": EM_OB_BITWISE_OR, "BITWISE_XOR": EM_OB_BITWISE_XOR,
    "PRELU": EM_OB_PRELU, "EQUAL": EM_OB_EQUAL, "LESS": EM_OB_LESS, "LESS_EQUAL": EM_OB_LESS_EQUAL,
    "GREATER": EM_OB_GREATER, "GREATER_EQUAL": EM_OB_GREATER_EQUAL}
