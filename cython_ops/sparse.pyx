# cython: language_level=3
"""Block-sparse int8 CONV_2D / FULLY_CONNECTED kernels (include/em_sparse.h)."""
from libc.stdint cimport uintptr_t
from cython_ops.em_params cimport em_params

cdef extern from "em_sparse.h":
    void em_conv2d_int8_sparse(const em_params*) nogil
    void em_conv2d_int8_sparse_vnni(const em_params*) nogil
    void em_conv2d_int8_sparse_avx2(const em_params*) nogil

KERNELS = {
    "conv2d_int8_sparse": <uintptr_t>&em_conv2d_int8_sparse,
    "conv2d_int8_sparse_vnni": <uintptr_t>&em_conv2d_int8_sparse_vnni,
    "conv2d_int8_sparse_avx2": <uintptr_t>&em_conv2d_int8_sparse_avx2,
}
