# cython: language_level=3
"""float32 SIMD kernels: CONV_2D / FULLY_CONNECTED register tiles (include/em_float_gemm.h) and DEPTHWISE_CONV_2D
(include/em_float_depthwise.h), each with a fused multiply-add twin (*_f32_fma_*), ADD / SUB / MUL and the clamp / leaky activations
(include/em_float_elementwise.h), and the hybrid CONV_2D on int8 SIMD sums (include/em_hybrid.h); the portable float
and hybrid kernels stay in conv.pyx as the reference-order path."""
from libc.stdint cimport uintptr_t
from cython_ops.em_params cimport em_params

cdef extern from "em_float_gemm.h":
    void em_conv2d_f32_avx512(const em_params*) nogil
    void em_conv2d_f32_avx2(const em_params*) nogil
    void em_conv2d_f32_fma_avx512(const em_params*) nogil
    void em_conv2d_f32_fma_avx2(const em_params*) nogil
    long em_fgemm_scratch_bytes(long ic, long taps, long chunk, long gather) nogil
    int em_fgemm_cpu_has_fma() nogil

cdef extern from "em_float_depthwise.h":
    void em_depthwise_f32_avx512(const em_params*) nogil
    void em_depthwise_f32_avx2(const em_params*) nogil
    void em_depthwise_f32_fma_avx512(const em_params*) nogil
    void em_depthwise_f32_fma_avx2(const em_params*) nogil

cdef extern from "em_float_elementwise.h":
    void em_add_f32_avx512(const em_params*) nogil
    void em_sub_f32_avx512(const em_params*) nogil
    void em_mul_f32_avx512(const em_params*) nogil
    void em_clamp_f32_avx512(const em_params*) nogil
    void em_add_f32_avx2(const em_params*) nogil
    void em_sub_f32_avx2(const em_params*) nogil
    void em_mul_f32_avx2(const em_params*) nogil
    void em_clamp_f32_avx2(const em_params*) nogil

cdef extern from "em_hybrid.h":
    void em_conv2d_hybrid_vnni(const em_params*) nogil
    void em_conv2d_hybrid_avx2(const em_params*) nogil

KERNELS = {
    "conv2d_hybrid_vnni": <uintptr_t>&em_conv2d_hybrid_vnni,
    "conv2d_hybrid_avx2": <uintptr_t>&em_conv2d_hybrid_avx2,
    "conv2d_f32_avx512": <uintptr_t>&em_conv2d_f32_avx512,
    "conv2d_f32_avx2": <uintptr_t>&em_conv2d_f32_avx2,
    "depthwise_f32_avx512": <uintptr_t>&em_depthwise_f32_avx512,
    "depthwise_f32_avx2": <uintptr_t>&em_depthwise_f32_avx2,
    "conv2d_f32_fma_avx512": <uintptr_t>&em_conv2d_f32_fma_avx512,
    "conv2d_f32_fma_avx2": <uintptr_t>&em_conv2d_f32_fma_avx2,
    "depthwise_f32_fma_avx512": <uintptr_t>&em_depthwise_f32_fma_avx512,
    "depthwise_f32_fma_avx2": <uintptr_t>&em_depthwise_f32_fma_avx2,
    "add_f32_avx512": <uintptr_t>&em_add_f32_avx512,
    "sub_f32_avx512": <uintptr_t>&em_sub_f32_avx512,
    "mul_f32_avx512": <uintptr_t>&em_mul_f32_avx512,
    "clamp_f32_avx512": <uintptr_t>&em_clamp_f32_avx512,
    "add_f32_avx2": <uintptr_t>&em_add_f32_avx2,
    "sub_f32_avx2": <uintptr_t>&em_sub_f32_avx2,
    "mul_f32_avx2": <uintptr_t>&em_mul_f32_avx2,
    "clamp_f32_avx2": <uintptr_t>&em_clamp_f32_avx2,
}


def fgemm_scratch_bytes(ic, taps, chunk, gather):
    """Scratch bytes of the float GEMM kernels (em_fgemm_scratch_bytes)."""
    return int(em_fgemm_scratch_bytes(ic, taps, chunk, gather))


def cpu_has_fma():
    """True when the CPU has FMA3 (the *_f32_fma_avx2 kernels need it)."""
    return bool(em_fgemm_cpu_has_fma())
