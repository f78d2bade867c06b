# cython: language_level=3
"""Kernels with onnxruntime's arithmetic that no TFLite kernel covers: quantization (include/em_onnx_quantize.h),
QLinearAdd / QLinearSoftmax (include/em_onnx_qlinear.h), convolutions (include/em_onnx_conv.h)."""
from libc.stdint cimport uintptr_t
from cython_ops.em_params cimport em_params

cdef extern from "em_onnx_quantize.h":
    void em_onnx_quantize_linear(const em_params*) nogil
    void em_onnx_dequantize_linear(const em_params*) nogil
    void em_onnx_flip_sign_bit(const em_params*) nogil
    void em_onnx_clamp_int8(const em_params*) nogil
    void em_onnx_dynamic_quantize_linear(const em_params*) nogil

cdef extern from "em_onnx_qlinear.h":
    void em_onnx_qlinear_softmax(const em_params*) nogil
    void em_onnx_qlinear_add(const em_params*) nogil
    void em_onnx_qlinear_mul(const em_params*) nogil
    void em_onnx_qlinear_avgpool(const em_params*) nogil

cdef extern from "em_onnx_conv.h":
    void em_onnx_conv_f32_mlas(const em_params*) nogil
    void em_onnx_conv_integer(const em_params*) nogil

KERNELS = {
    "onnx_quantize_linear": <uintptr_t>&em_onnx_quantize_linear,
    "onnx_dequantize_linear": <uintptr_t>&em_onnx_dequantize_linear,
    "onnx_flip_sign_bit": <uintptr_t>&em_onnx_flip_sign_bit,
    "onnx_clamp_int8": <uintptr_t>&em_onnx_clamp_int8,
    "onnx_qlinear_softmax": <uintptr_t>&em_onnx_qlinear_softmax,
    "onnx_qlinear_add": <uintptr_t>&em_onnx_qlinear_add,
    "onnx_qlinear_mul": <uintptr_t>&em_onnx_qlinear_mul,
    "onnx_qlinear_avgpool": <uintptr_t>&em_onnx_qlinear_avgpool,
    "onnx_conv_f32_mlas": <uintptr_t>&em_onnx_conv_f32_mlas,
    "onnx_conv_integer": <uintptr_t>&em_onnx_conv_integer,
    "onnx_dynamic_quantize_linear": <uintptr_t>&em_onnx_dynamic_quantize_linear,
}
