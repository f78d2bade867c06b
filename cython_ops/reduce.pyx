# cython: language_level=3
"""MEAN, REDUCE_MAX / MIN, SUM, REDUCE_PROD, ARG_MAX / MIN (include/em_reduce.h)."""
from libc.stdint cimport uintptr_t
from cython_ops.em_params cimport em_params

cdef extern from "em_reduce.h":
    void em_mean(const em_params*) nogil
    void em_reduce(const em_params*) nogil
    void em_reduce_sum_quantized(const em_params*) nogil
    void em_reduce_prod_quantized(const em_params*) nogil
    void em_arg_min_max(const em_params*) nogil

KERNELS = {
    "mean": <uintptr_t>&em_mean,
    "reduce": <uintptr_t>&em_reduce,
    "reduce_sum_quantized": <uintptr_t>&em_reduce_sum_quantized,
    "reduce_prod_quantized": <uintptr_t>&em_reduce_prod_quantized,
    "arg_min_max": <uintptr_t>&em_arg_min_max,
}
