# cython: language_level=3
"""MIRROR_PAD (indexed gather), SPACE_TO_BATCH_ND, BATCH_TO_SPACE_ND (include/em_space.h)."""
from libc.stdint cimport uintptr_t
from cython_ops.em_params cimport em_params

cdef extern from "em_space.h":
    void em_gather_indexed(const em_params*) nogil
    void em_space_to_batch(const em_params*) nogil
    void em_batch_to_space(const em_params*) nogil

KERNELS = {
    "gather_indexed": <uintptr_t>&em_gather_indexed,
    "space_to_batch": <uintptr_t>&em_space_to_batch,
    "batch_to_space": <uintptr_t>&em_batch_to_space,
}
