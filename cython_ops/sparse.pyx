# cython: language_level=3
"""Block-sparse int8 CONV_2D / FULLY_CONNECTED kernels (include/em_sparse.h)."""
from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.stdint cimport int64_t, uintptr_t
from cython_ops.em_params cimport em_params
from cython_ops import conv

cdef extern from *:
    """
    #define EM_SHARED_POOL_CLIENT 1     /* (em_threads.h) conv's pool, not one of this module's own */
    """

cdef extern from "em_threads.h":
    ctypedef void (*em_slice_fn)(const void* ctx, int64_t slice, int64_t nslices) noexcept nogil
    ctypedef int (*em_parallel_run_fn)(int64_t nslices, em_slice_fn fn, const void* ctx) noexcept nogil
    void em_use_shared_pool(em_parallel_run_fn run)

cdef extern from "em_sparse.h":
    void em_conv2d_int8_sparse(const em_params*) nogil
    void em_conv2d_int8_sparse_vnni(const em_params*) nogil
    void em_conv2d_int8_sparse_avx2(const em_params*) nogil

em_use_shared_pool(<em_parallel_run_fn>PyCapsule_GetPointer(conv.POOL, b"edgeml.em_parallel_run"))

KERNELS = {
    "conv2d_int8_sparse": <uintptr_t>&em_conv2d_int8_sparse,
    "conv2d_int8_sparse_vnni": <uintptr_t>&em_conv2d_int8_sparse_vnni,
    "conv2d_int8_sparse_avx2": <uintptr_t>&em_conv2d_int8_sparse_avx2,
}
