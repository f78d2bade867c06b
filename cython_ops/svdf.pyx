# cython: language_level=3
"""SVDF: integer (int8 input / output, int16 state), float32 and hybrid (include/em_svdf.h)."""
from libc.stdint cimport uintptr_t
from cython_ops.em_params cimport em_params

cdef extern from "em_svdf.h":
    void em_svdf_int8(const em_params*) nogil
    void em_svdf_f32(const em_params*) nogil
    void em_svdf_hybrid(const em_params*) nogil

KERNELS = {
    "svdf_int8": <uintptr_t>&em_svdf_int8,
    "svdf_f32": <uintptr_t>&em_svdf_f32,
    "svdf_hybrid": <uintptr_t>&em_svdf_hybrid,
}
