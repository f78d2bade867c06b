from libc.stdint cimport int64_t

cdef extern from "em_params.h":
    cdef enum:
        EM_MAX_PTRS
        EM_MAX_INTS
        EM_MAX_FLOATS
    ctypedef struct em_params:
        void* ptr[16]
        int64_t i[64]
        float f[8]
    ctypedef void (*em_kernel)(const em_params* p) noexcept nogil
