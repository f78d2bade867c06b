# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""RESIZE_BILINEAR's and RESIZE_NEAREST_NEIGHBOR's prepares in one call (issue 15): what ops/resize.py reads,
checks and computes (its twin: resize_operands and the axis functions), the source rows, columns and weights of
every output row and column written in C straight into kept arrays, in the same arithmetic (float32 scalars with
no fused multiply-add for the float forms and nearest neighbour, int64 for the 10-bit fixed point of int8 /
int16).  None wherever a check would refuse the op or a less common form applies: the Python path then decides,
with its messages.  Not kernels: no KERNELS table.  tests/test_load_resize.py compares both paths."""
from libc.stdint cimport int32_t, int64_t

import numpy

from cython_ops import load_ops
from cython_ops.load_buffer cimport buffer_bytes, per_tensor

cdef extern from "<math.h>" nogil:
    double floor(double x)
    double ceil(double x)
    double fabs(double x)
    float floorf(float x)
    float ceilf(float x)

cdef object F64 = numpy.dtype(numpy.float64), I64 = numpy.dtype(numpy.int64)    # the IR's quantization types
cdef object I32 = numpy.dtype(numpy.int32), F32 = numpy.dtype(numpy.float32)
cdef object I8 = numpy.dtype(numpy.int8), U8 = numpy.dtype(numpy.uint8), I16 = numpy.dtype(numpy.int16)
cdef int64_t MAX_SIZE = (<int64_t>1) << 24   # image sides beyond: the Python path (its int64 / float32 arithmetic)


cdef float float_scale(int64_t in_size, int64_t out_size, bint align) noexcept:
    if align and out_size > 1:
        return <float>(in_size - 1) / <float>(out_size - 1)
    return <float>in_size / <float>out_size


cdef void bilinear_float_axis(int64_t in_size, int64_t out_size, bint align, bint half, int32_t* pairs,
                              float* frac) noexcept:
    """resize.bilinear_float_axis: LiteRT's float ComputeInterpolationValues per output coordinate."""
    cdef float scale = float_scale(in_size, out_size, align), pos, lower
    cdef int64_t v, upper
    for v in range(out_size):
        pos = (<float>v + <float>0.5) * scale - <float>0.5 if half else <float>v * scale
        lower = floorf(pos)
        if lower < 0:
            lower = 0
        upper = <int64_t>ceilf(pos)
        pairs[2 * v] = <int32_t>lower
        pairs[2 * v + 1] = <int32_t>(upper if upper < in_size - 1 else in_size - 1)
        frac[v] = pos - lower


cdef inline int64_t truncated(int64_t a) noexcept:
    """C's a / 1024 (toward zero)."""
    return a / 1024


cdef void bilinear_integer_axis(int64_t in_size, int64_t out_size, bint align, bint half, int32_t* pairs,
                                int32_t* frac) noexcept:
    """resize.bilinear_integer_axis: LiteRT's ComputeInterpolationValuesInteger (10-bit fixed point)."""
    cdef int64_t scale, v, pos, lower, upper
    if align and out_size > 1:
        scale = ((1 << 10) * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
    else:
        scale = ((1 << 10) * in_size + out_size // 2) // out_size
    for v in range(out_size):
        pos = v * scale
        if half:
            pos += scale // 2 - (1 << 9)
        lower = truncated(pos)
        if lower < 0:
            lower = 0
        upper = truncated(pos + (1 << 10) - 1)
        pairs[2 * v] = <int32_t>lower
        pairs[2 * v + 1] = <int32_t>(upper if upper < in_size - 1 else in_size - 1)
        frac[v] = <int32_t>(pos - (1 << 10) * lower)


cdef void nearest_axis(int64_t in_size, int64_t out_size, bint align, bint half, int32_t* out) noexcept:
    """resize.nearest_axis: LiteRT's GetNearestNeighbor (float32 position; align_corners rounds half away from
    zero, otherwise floor)."""
    cdef float scale = float_scale(in_size, out_size, align), offset = <float>0.5 if half else <float>0.0
    cdef double pos, index
    cdef int64_t v, i
    for v in range(out_size):
        pos = <double>((<float>v + offset) * scale)
        if align:
            index = floor(fabs(pos) + 0.5) * (1.0 if pos >= 0 else -1.0)
        else:
            index = floor(pos)
        i = <int64_t>index
        if i > in_size - 1:
            i = in_size - 1
        if half and i < 0:
            i = 0
        out[v] = <int32_t>i


cdef bint same_quantization(x, y) except -1:
    """element_types.require_equal_quantization would pass: a type without quantization, both unquantized, or
    both per tensor with equal (scale, zero point); False where it must decide."""
    dtype = x.dtype
    if dtype != I8 and dtype != I16 and dtype != U8:
        return True
    if x.quant is None and y.quant is None:
        return True
    px, py = per_tensor(x, F64, I64), per_tensor(y, F64, I64)
    return px is not None and px == py


def resize_shell(ctx, op, bint bilinear, codes, bint held_uint8):
    """What ops/resize.prepare_resize_bilinear (bilinear) or prepare_resize_nearest reads, checks and builds for a
    4-D image with a constant int32 size of two positive values, sides up to 2^24: sets the output shape and
    returns (input index, output index, kernel, the kernel's integers, kept tables: bilinear: rows, columns, row
    weights, column weights; nearest: rows, columns).  `held_uint8`: options[UINT8] (the uint8 kernel for int8
    data).  None wherever the Python path must decide (its checks and messages)."""
    inputs, outputs = op.inputs, op.outputs
    if len(inputs) < 2 or len(outputs) < 1:
        return None
    xi, si, yi = inputs[0], inputs[1], outputs[0]
    constants = ctx.constants
    if xi < 0 or si < 0 or yi < 0 or si not in constants:
        return None
    tensors, shapes = ctx.graph.tensors, ctx.shapes
    x, y = tensors[xi], tensors[yi]
    xs = shapes.get(xi)
    if type(xs) is not tuple or len(xs) != 4 or shapes.get(si) != (2,):
        return None
    size = constants[si]
    if size.dtype != I32 or tensors[si].dtype != I32 or size.size != 2:
        return None
    dtype = x.dtype
    if dtype != y.dtype or not (dtype == F32 or dtype == I8 or dtype == U8 or dtype == I16):
        return None
    for d in xs:
        if type(d) is not int or not 0 <= d <= MAX_SIZE:
            return None
    cdef int64_t batch = xs[0], in_h = xs[1], in_w = xs[2], depth = xs[3], out_h, out_w
    if in_h == 0 or in_w == 0:
        return None
    h, w = size.reshape(-1).tolist()
    if not (0 < h <= MAX_SIZE and 0 < w <= MAX_SIZE):
        return None
    out_h, out_w = h, w
    o = op.options
    cdef bint align = bool(o.get("align_corners", False)), half = bool(o.get("half_pixel_centers", False))
    if align and half or not same_quantization(x, y):
        return None
    code = codes[dtype]
    load_ops.set_output_shape(ctx, op, 0, (xs[0], h, w, xs[3]), y)
    rows = ctx.keep_new((h, 2) if bilinear else (h,), I32)
    cols = ctx.keep_new((w, 2) if bilinear else (w,), I32)
    cdef int32_t* r = <int32_t*>buffer_bytes(rows, (8 if bilinear else 4) * out_h, b"resize_shell")
    cdef int32_t* c = <int32_t*>buffer_bytes(cols, (8 if bilinear else 4) * out_w, b"resize_shell")
    if not bilinear:
        nearest_axis(in_h, out_h, align, half, r)
        nearest_axis(in_w, out_w, align, half, c)
        return xi, yi, "resize_nearest", dict(batch=batch, in_h=in_h, in_w=in_w, pixel_bytes=depth * dtype.itemsize,
                                              out_h=out_h, out_w=out_w), [rows, cols]
    cdef bint by_float = dtype == F32 or dtype == U8 or (dtype == I8 and held_uint8)
    wy = ctx.keep_new((h,), F32 if by_float else I32)
    wx = ctx.keep_new((w,), F32 if by_float else I32)
    cdef char* wyb = buffer_bytes(wy, 4 * out_h, b"resize_shell")
    cdef char* wxb = buffer_bytes(wx, 4 * out_w, b"resize_shell")
    if by_float:
        bilinear_float_axis(in_h, out_h, align, half, r, <float*>wyb)
        bilinear_float_axis(in_w, out_w, align, half, c, <float*>wxb)
        kernel = "resize_bilinear_f32" if dtype == F32 else "resize_bilinear_u8"
    else:
        bilinear_integer_axis(in_h, out_h, align, half, r, <int32_t*>wyb)
        bilinear_integer_axis(in_w, out_w, align, half, c, <int32_t*>wxb)
        kernel = "resize_bilinear_int"
    return xi, yi, kernel, dict(batch=batch, in_h=in_h, in_w=in_w, depth=depth, out_h=out_h, out_w=out_w, dtype=code,
                                mode=ctx.rounding), [rows, cols, wy, wx]
