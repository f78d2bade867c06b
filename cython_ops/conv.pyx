# cython: language_level=3
"""CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED kernels (include/em_conv.h, em_depthwise.h, em_depthwise_simd.h,
em_fully_connected.h, em_conv_winograd.h, hybrid: em_hybrid.h; GEMMs: em_gemm*.h)."""
from cpython.pycapsule cimport PyCapsule_New
from libc.stdint cimport int64_t, uintptr_t
from cython_ops.em_params cimport em_params

cdef extern from "em_threads.h":
    ctypedef void (*em_slice_fn)(const void* ctx, int64_t slice, int64_t nslices) noexcept nogil
    int em_parallel_run(int64_t nslices, em_slice_fn fn, const void* ctx) nogil

# the process's one worker pool, for the other kernel modules (em_threads.h EM_SHARED_POOL_CLIENT)
POOL = PyCapsule_New(<void*>em_parallel_run, b"edgeml.em_parallel_run", NULL)

cdef extern from "em_isa.h":
    int em_isa() nogil

cdef extern from "em_conv.h":
    void em_conv2d_int8(const em_params*) nogil
    void em_conv2d_f32(const em_params*) nogil
    void em_conv2d_int8_vnni(const em_params*) nogil
    void em_conv2d_int8_avx2(const em_params*) nogil
    void em_conv2d_int8_avxvnni(const em_params*) nogil
    void em_conv2d_int8_w16(const em_params*) nogil

cdef extern from "em_conv_winograd.h":
    void em_conv2d_int8_avx2_winograd(const em_params*) nogil

cdef extern from "em_depthwise.h":
    void em_depthwise_int8(const em_params*) nogil
    void em_depthwise_f32(const em_params*) nogil
    void em_depthwise_int8_w16(const em_params*) nogil

cdef extern from "em_depthwise_simd.h":
    void em_depthwise_int8_vnni(const em_params*) nogil
    void em_depthwise_int8_avxvnni(const em_params*) nogil
    void em_depthwise_int8_avx2(const em_params*) nogil

cdef extern from "em_fully_connected.h":
    void em_fully_connected_int8(const em_params*) nogil
    void em_fully_connected_f32(const em_params*) nogil
    void em_fully_connected_int8_vnni(const em_params*) nogil
    void em_fully_connected_int8_avx2(const em_params*) nogil
    void em_fully_connected_int8_avx2_gemv(const em_params*) nogil
    void em_fully_connected_int8_avxvnni(const em_params*) nogil
    void em_fully_connected_int8_w16(const em_params*) nogil

cdef extern from "em_hybrid.h":
    void em_conv2d_hybrid(const em_params*) nogil
    void em_depthwise_hybrid(const em_params*) nogil
    void em_fully_connected_hybrid(const em_params*) nogil

KERNELS = {
    "conv2d_hybrid": <uintptr_t>&em_conv2d_hybrid,
    "depthwise_hybrid": <uintptr_t>&em_depthwise_hybrid,
    "fully_connected_hybrid": <uintptr_t>&em_fully_connected_hybrid,
    "conv2d_int8": <uintptr_t>&em_conv2d_int8,
    "conv2d_f32": <uintptr_t>&em_conv2d_f32,
    "depthwise_int8": <uintptr_t>&em_depthwise_int8,
    "depthwise_f32": <uintptr_t>&em_depthwise_f32,
    "fully_connected_int8": <uintptr_t>&em_fully_connected_int8,
    "fully_connected_f32": <uintptr_t>&em_fully_connected_f32,
    "conv2d_int8_vnni": <uintptr_t>&em_conv2d_int8_vnni,
    "fully_connected_int8_vnni": <uintptr_t>&em_fully_connected_int8_vnni,
    "depthwise_int8_vnni": <uintptr_t>&em_depthwise_int8_vnni,
    "depthwise_int8_avxvnni": <uintptr_t>&em_depthwise_int8_avxvnni,
    "depthwise_int8_avx2": <uintptr_t>&em_depthwise_int8_avx2,
    "conv2d_int8_avx2": <uintptr_t>&em_conv2d_int8_avx2,
    "fully_connected_int8_avx2": <uintptr_t>&em_fully_connected_int8_avx2,
    "fully_connected_int8_avx2_gemv": <uintptr_t>&em_fully_connected_int8_avx2_gemv,
    "conv2d_int8_avx2_winograd": <uintptr_t>&em_conv2d_int8_avx2_winograd,
    "conv2d_int8_avxvnni": <uintptr_t>&em_conv2d_int8_avxvnni,
    "fully_connected_int8_avxvnni": <uintptr_t>&em_fully_connected_int8_avxvnni,
    # weights with a zero point (uint8 models), read as int16 w - w_zp
    "conv2d_int8_w16": <uintptr_t>&em_conv2d_int8_w16,
    "depthwise_int8_w16": <uintptr_t>&em_depthwise_int8_w16,
    "fully_connected_int8_w16": <uintptr_t>&em_fully_connected_int8_w16,
}

ISA_NAMES = {0: "scalar", 1: "avx2", 2: "avxvnni", 3: "avx512", 4: "avx512vnni",
             5: "neon", 6: "neon_dotprod", 7: "neon_i8mm"}


def isa():
    """The instruction-set path the GEMM micro-kernels take on this CPU (EDGEML_ISA may force a lower one)."""
    return ISA_NAMES[em_isa()]
