# cython: language_level=3
"""AVERAGE_POOL_2D, MAX_POOL_2D kernels (include/em_pool.h)."""
from libc.stdint cimport uintptr_t
from cython_ops.em_params cimport em_params

cdef extern from "em_pool.h":
    void em_avg_pool_int8(const em_params*) nogil
    void em_avg_pool_uint8(const em_params*) nogil
    void em_avg_pool_f32(const em_params*) nogil
    void em_max_pool_int8(const em_params*) nogil
    void em_max_pool_f32(const em_params*) nogil

KERNELS = {
    "avg_pool_int8": <uintptr_t>&em_avg_pool_int8,
    "avg_pool_uint8": <uintptr_t>&em_avg_pool_uint8,
    "avg_pool_f32": <uintptr_t>&em_avg_pool_f32,
    "max_pool_int8": <uintptr_t>&em_max_pool_int8,
    "max_pool_f32": <uintptr_t>&em_max_pool_f32,
}
