# cython: language_level=3
"""TFLite_Detection_PostProcess (include/em_detection.h)."""
from libc.stdint cimport uintptr_t
from cython_ops.em_params cimport em_params

cdef extern from "em_detection.h":
    void em_detection_postprocess(const em_params*) nogil

KERNELS = {"detection_postprocess": <uintptr_t>&em_detection_postprocess}
