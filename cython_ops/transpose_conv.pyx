# cython: language_level=3
"""TRANSPOSE_CONV: int8, 16x8 and float32 (include/em_transpose_conv.h)."""
from libc.stdint cimport uintptr_t
from cython_ops.em_params cimport em_params

cdef extern from "em_transpose_conv.h":
    void em_transpose_conv(const em_params*) nogil

KERNELS = {"transpose_conv": <uintptr_t>&em_transpose_conv}
