# cython: language_level=3
"""The 16x8 scheme: int16 activations, int8 weights (include/em_int16.h, em_int16_lut.h)."""
from libc.stdint cimport uintptr_t
from cython_ops.em_params cimport em_params

cdef extern from "em_int16.h":
    void em_conv2d_16x8(const em_params*) nogil
    void em_depthwise_16x8(const em_params*) nogil
    void em_fully_connected_16x8(const em_params*) nogil
    void em_add_int16(const em_params*) nogil
    void em_add_int16_pot(const em_params*) nogil
    void em_mul_int16(const em_params*) nogil
    void em_requantize_int16_int8(const em_params*) nogil
    void em_requantize_int8_int16(const em_params*) nogil
    void em_requantize_int16_int16(const em_params*) nogil
    void em_requantize_int16_int32(const em_params*) nogil
    void em_requantize_int32_int16(const em_params*) nogil
    void em_leaky_relu_int16(const em_params*) nogil
    void em_quantize_f32_int16(const em_params*) nogil
    void em_dequantize_int16_f32(const em_params*) nogil
    void em_mean_int16(const em_params*) nogil

cdef extern from "em_int16_lut.h":
    void em_softmax_int16(const em_params*) nogil
    void em_logistic_int16(const em_params*) nogil
    void em_tanh_int16(const em_params*) nogil

KERNELS = {
    "conv2d_16x8": <uintptr_t>&em_conv2d_16x8,
    "depthwise_16x8": <uintptr_t>&em_depthwise_16x8,
    "fully_connected_16x8": <uintptr_t>&em_fully_connected_16x8,
    "add_int16": <uintptr_t>&em_add_int16,
    "add_int16_pot": <uintptr_t>&em_add_int16_pot,
    "mul_int16": <uintptr_t>&em_mul_int16,
    "requantize_int16_int8": <uintptr_t>&em_requantize_int16_int8,
    "requantize_int8_int16": <uintptr_t>&em_requantize_int8_int16,
    "requantize_int16_int16": <uintptr_t>&em_requantize_int16_int16,
    "requantize_int16_int32": <uintptr_t>&em_requantize_int16_int32,
    "requantize_int32_int16": <uintptr_t>&em_requantize_int32_int16,
    "leaky_relu_int16": <uintptr_t>&em_leaky_relu_int16,
    "quantize_f32_int16": <uintptr_t>&em_quantize_f32_int16,
    "dequantize_int16_f32": <uintptr_t>&em_dequantize_int16_f32,
    "mean_int16": <uintptr_t>&em_mean_int16,
    "softmax_int16": <uintptr_t>&em_softmax_int16,
    "logistic_int16": <uintptr_t>&em_logistic_int16,
    "tanh_int16": <uintptr_t>&em_tanh_int16,
}
