# cython: language_level=3
"""ADD, SUB, MUL, requantizing activations, QUANTIZE, DEQUANTIZE, float activations (include/em_elementwise.h)."""
from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.stdint cimport int64_t, uintptr_t
from cython_ops.em_params cimport em_params
from cython_ops import conv

cdef extern from *:
    """
    #define EM_SHARED_POOL_CLIENT 1     /* (em_threads.h) conv's pool for the split ADD / MUL, not one of its own */
    """

cdef extern from "em_threads.h":
    ctypedef void (*em_slice_fn)(const void* ctx, int64_t slice, int64_t nslices) noexcept nogil
    ctypedef int (*em_parallel_run_fn)(int64_t nslices, em_slice_fn fn, const void* ctx) noexcept nogil
    void em_use_shared_pool(em_parallel_run_fn run)

cdef extern from "em_elementwise.h":
    void em_add_int8(const em_params*) nogil
    void em_mul_int8(const em_params*) nogil
    void em_add_int8_avx512(const em_params*) nogil
    void em_mul_int8_avx512(const em_params*) nogil
    void em_add_int8_avx2(const em_params*) nogil
    void em_mul_int8_avx2(const em_params*) nogil
    void em_add_f32(const em_params*) nogil
    void em_sub_f32(const em_params*) nogil
    void em_mul_f32(const em_params*) nogil
    void em_requantize_int8(const em_params*) nogil
    void em_leaky_relu_int8(const em_params*) nogil
    void em_quantize_f32_int8(const em_params*) nogil
    void em_quantize_f32_int8_checked(const em_params*) nogil
    void em_dequantize_int8_f32(const em_params*) nogil
    void em_unary_f32(const em_params*) nogil
    void em_softmax_f32(const em_params*) nogil

em_use_shared_pool(<em_parallel_run_fn>PyCapsule_GetPointer(conv.POOL, b"edgeml.em_parallel_run"))

KERNELS = {
    "add_int8": <uintptr_t>&em_add_int8,
    "mul_int8": <uintptr_t>&em_mul_int8,
    "add_int8_avx512": <uintptr_t>&em_add_int8_avx512,
    "mul_int8_avx512": <uintptr_t>&em_mul_int8_avx512,
    "add_int8_avx2": <uintptr_t>&em_add_int8_avx2,
    "mul_int8_avx2": <uintptr_t>&em_mul_int8_avx2,
    "add_f32": <uintptr_t>&em_add_f32,
    "sub_f32": <uintptr_t>&em_sub_f32,
    "mul_f32": <uintptr_t>&em_mul_f32,
    "requantize_int8": <uintptr_t>&em_requantize_int8,
    "leaky_relu_int8": <uintptr_t>&em_leaky_relu_int8,
    "quantize_f32_int8": <uintptr_t>&em_quantize_f32_int8,
    "quantize_f32_int8_checked": <uintptr_t>&em_quantize_f32_int8_checked,
    "dequantize_int8_f32": <uintptr_t>&em_dequantize_int8_f32,
    "unary_f32": <uintptr_t>&em_unary_f32,
    "softmax_f32": <uintptr_t>&em_softmax_f32,
}

UNARY_F32 = {"clamp": 0, "leaky_relu": 1, "logistic": 2, "tanh": 3, "hard_swish": 4}

cdef extern from "em_requant.h":
    int em_mbqm(int x, int m, int shift, int mode) nogil


def requantize_table(int in_zp, int out_zp, int mult, int shift, int act_min, int act_max, int mode):
    """em_requantize_int8 on every int8 value, as the 256 bytes of a table indexed by uint8(x) (the LUT kernel
    then requantizes with the very same arithmetic)."""
    out = bytearray(256)
    cdef int x, v
    for x in range(-128, 128):
        v = out_zp + em_mbqm(x - in_zp, mult, shift, mode)
        out[x & 0xFF] = (min(max(v, act_min), act_max)) & 0xFF
    return bytes(out)
