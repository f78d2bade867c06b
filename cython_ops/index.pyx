# cython: language_level=3
"""Resize, index / shape, cast, select and comparison kernels (include/em_resize.h, em_index.h, em_compare.h)."""
from libc.stdint cimport uintptr_t
from cython_ops.em_params cimport em_params

cdef extern from "em_resize.h":
    void em_resize_bilinear_f32(const em_params*) nogil
    void em_resize_bilinear_u8(const em_params*) nogil
    void em_resize_bilinear_int(const em_params*) nogil
    void em_resize_nearest(const em_params*) nogil

cdef extern from "em_index.h":
    void em_gather_indices(const em_params*) nogil
    void em_gather_nd(const em_params*) nogil
    void em_tile(const em_params*) nogil
    void em_fill(const em_params*) nogil
    void em_cast(const em_params*) nogil
    void em_select(const em_params*) nogil

cdef extern from "em_compare.h":
    void em_compare(const em_params*) nogil
    void em_minmax(const em_params*) nogil

KERNELS = {
    "resize_bilinear_f32": <uintptr_t>&em_resize_bilinear_f32,
    "resize_bilinear_u8": <uintptr_t>&em_resize_bilinear_u8,
    "resize_bilinear_int": <uintptr_t>&em_resize_bilinear_int,
    "resize_nearest": <uintptr_t>&em_resize_nearest,
    "gather_indices": <uintptr_t>&em_gather_indices,
    "gather_nd": <uintptr_t>&em_gather_nd,
    "tile": <uintptr_t>&em_tile,
    "fill": <uintptr_t>&em_fill,
    "cast": <uintptr_t>&em_cast,
    "select": <uintptr_t>&em_select,
    "compare": <uintptr_t>&em_compare,
    "minmax": <uintptr_t>&em_minmax,
}
