# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""DETECTION_POSTPROCESS's anchors at load in one pass (issue 15): dequantized (or copied) into their kept float32
array and checked, as ops/detection.anchor_values_numpy does in five numpy passes over them (its twin; 26880 anchors
of traffic_model were ~150 us of its load).  Not kernels: no KERNELS table.  tests/test_load_detection.py compares
both."""
from libc.stdint cimport int8_t, uint32_t
from libc.string cimport memcpy

from cython_ops.load_buffer cimport buffer_bytes

ANCHORS_OK, ANCHORS_NOT_FINITE, ANCHORS_NEGATIVE_SIZE = 0, 1, 2


def anchor_values(data, out, bint quantized, int zero_point, double scale):
    """`data` ([N, 4] C-contiguous int8 when `quantized`, else float32) into `out` ([N, 4] float32, C-contiguous):
    ((float)q - (float)zero_point) * (float)scale in float32, or the values themselves.  Returns ANCHORS_OK,
    ANCHORS_NOT_FINITE (some value is NaN or infinite: checked first, over every value) or ANCHORS_NEGATIVE_SIZE
    (a height or width, columns 2 and 3, below zero)."""
    cdef Py_ssize_t n = out.shape[0] if out.ndim == 2 and out.shape[1] == 4 else -1
    if n < 0 or tuple(data.shape) != (n, 4):
        raise ValueError("anchor_values: data and out must both be [N, 4]")
    cdef float* y = <float*>buffer_bytes(out, 16 * n, b"anchor_values")
    cdef const int8_t* q
    cdef const float* f
    cdef Py_ssize_t k
    cdef float z = <float>zero_point, s = <float>scale
    if quantized:
        q = <const int8_t*>buffer_bytes(data, 4 * n, b"anchor_values")
        for k in range(4 * n):
            y[k] = (<float>q[k] - z) * s
    else:
        f = <const float*>buffer_bytes(data, 16 * n, b"anchor_values")
        memcpy(y, f, 16 * n)
    # (integer tests on the bits, which the compiler vectorizes: all exponent bits set is an infinity or NaN; a
    # height or width below zero has its sign bit set and is not -0.0)
    cdef const uint32_t* bits = <const uint32_t*>y
    cdef uint32_t not_finite = 0, negative = 0, sign = (<uint32_t>1) << 31
    for k in range(4 * n):
        not_finite |= (bits[k] & 0x7F800000) == 0x7F800000
    if not_finite:
        return ANCHORS_NOT_FINITE
    for k in range(n):
        negative |= (bits[4 * k + 2] > sign) | (bits[4 * k + 3] > sign)
    return ANCHORS_NEGATIVE_SIZE if negative else ANCHORS_OK
