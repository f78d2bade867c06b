# cython: language_level=3
"""Control flow and the small ops of loop bodies: WHILE and the CONCATENATION of run-time SLICEs
(include/em_control.h); int32 ADD / SUB / MUL and LOGICAL_AND / OR / NOT (include/em_loop_ops.h)."""
from libc.stdint cimport uintptr_t
from cython_ops.em_params cimport em_params

cdef extern from "em_control.h":
    void em_while(const em_params*) nogil
    void em_slice_concat(const em_params*) nogil

cdef extern from "em_loop_ops.h":
    void em_add_int32(const em_params*) nogil
    void em_sub_int32(const em_params*) nogil
    void em_mul_int32(const em_params*) nogil
    void em_logical_and(const em_params*) nogil
    void em_logical_or(const em_params*) nogil
    void em_logical_not(const em_params*) nogil

KERNELS = {
    "while": <uintptr_t>&em_while,
    "slice_concat": <uintptr_t>&em_slice_concat,
    "add_int32": <uintptr_t>&em_add_int32,
    "sub_int32": <uintptr_t>&em_sub_int32,
    "mul_int32": <uintptr_t>&em_mul_int32,
    "logical_and": <uintptr_t>&em_logical_and,
    "logical_or": <uintptr_t>&em_logical_or,
    "logical_not": <uintptr_t>&em_logical_not,
}
