# cython: language_level=3
"""MEAN (include/em_reduce.h)."""
from libc.stdint cimport uintptr_t
from cython_ops.em_params cimport em_params

cdef extern from "em_reduce.h":
    void em_mean(const em_params*) nogil

KERNELS = {"mean": <uintptr_t>&em_mean}
