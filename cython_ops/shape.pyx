# cython: language_level=3
"""Data movement: copy, strided gather (TRANSPOSE / STRIDED_SLICE), PAD, CONCATENATION, ReverseSequence
(include/em_shape.h)."""
from libc.stdint cimport uintptr_t
from cython_ops.em_params cimport em_params

cdef extern from "em_shape.h":
    void em_copy(const em_params*) nogil
    void em_gather_strided(const em_params*) nogil
    void em_pad(const em_params*) nogil
    void em_concat(const em_params*) nogil
    void em_concat_lut(const em_params*) nogil
    void em_reverse_sequence(const em_params*) nogil

KERNELS = {
    "copy": <uintptr_t>&em_copy,
    "gather_strided": <uintptr_t>&em_gather_strided,
    "pad": <uintptr_t>&em_pad,
    "concat": <uintptr_t>&em_concat,
    "concat_lut": <uintptr_t>&em_concat_lut,
    "reverse_sequence": <uintptr_t>&em_reverse_sequence,
}
