# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The uint8 CONCATENATION that rescales its inputs (LiteRT's ConcatenationWithScaling; uint8 held as int8) read,
checked and its tables built in one call (issue 15): what ops/shape.prepare_concatenation reads and checks for it
and requant.uint8_rescale_table's float32 arithmetic per input (their twins).  Returns None wherever a check would
refuse the op or another form applies (every input constant, a copying concat, a quantization the Python path
must judge): that path then decides, with its messages.  Not kernels: no KERNELS table.
tests/test_load_concat.py compares both paths; test_load_fast_paths.py swaps the twin in."""
from libc.stdint cimport int64_t, uint8_t

import numpy

from cython_ops import load_ops
from cython_ops.load_buffer cimport buffer_bytes, concatenation_geometry, per_tensor

cdef extern from "<math.h>" nogil:
    float truncf(float x)
    float fabsf(float x)
    bint isfinite(double x)

cdef object F64 = numpy.dtype(numpy.float64), I64 = numpy.dtype(numpy.int64)    # the IR's quantization types
cdef object U8 = numpy.dtype(numpy.uint8)
cdef int64_t ZP_LIMIT = (<int64_t>1) << 31    # zero points beyond int32: the Python path decides
cdef float INT_LIMIT = 2147483648.0          # LiteRT converts to int32: values at or past 2^31 declined (the
                                               # Python path refuses them: requant.INT32_REACH)


cdef bint rescale_table(double s_in, int64_t zp_in, double s_out, int64_t zp_out, uint8_t* out) noexcept:
    """requant.uint8_rescale_table into out (256 bytes, by stored byte): round(u * scale + bias) + zp_out in
    float32, the product and the sum rounded apart, ties away from zero, clamped to [0, 255], flipped back to the
    held int8 byte.  False (out unspecified) where a value is not finite or past int32."""
    cdef float scale = <float>s_in * (<float>1.0 / <float>s_out)
    cdef float bias = <float>(-(zp_in + 128)) * scale
    cdef float u, v, t, r
    cdef int b
    cdef int64_t q
    if not (isfinite(scale) and isfinite(bias)):
        return False
    for b in range(256):
        u = <float>(b ^ 0x80)
        v = u * scale
        v = v + bias
        if not fabsf(v) < INT_LIMIT:
            return False
        t = truncf(v)
        r = t
        if fabsf(v - t) >= <float>0.5:
            r = t + (<float>1.0 if v > 0 else <float>-1.0)
        q = <int64_t>r + zp_out + 128
        out[b] = <uint8_t>((0 if q < 0 else (255 if q > 255 else q)) ^ 0x80)
    return True


def uint8_concatenation_shell(ctx, op, int8_dtype, uint8_option):
    """A CONCATENATION of uint8 tensors held as int8 (op option `uint8_option` set), not every input constant, each
    input and the output quantized per tensor (positive scales, zero points within int32): the same types, ranks
    and dims off the axis, no fused activation.  Sets the output shape and returns (output, inputs, rows outside the
    axis, each input's row bytes, per input its 256-byte rescale table or None where it is copied as LiteRT
    copies it: equal zero points and float32 scales), shape.concat_steps's arguments; None otherwise."""
    inputs, outputs = op.inputs, op.outputs
    cdef Py_ssize_t count = len(inputs), k
    if count < 1 or len(outputs) < 1 or outputs[0] < 0:
        return None
    o = op.options
    if not o.get(uint8_option):
        return None
    activation = o.get("fused_activation_function", 0)
    if type(activation) is not int or activation != 0:
        return None
    tensors, shapes, constants = ctx.graph.tensors, ctx.shapes, ctx.constants
    y = tensors[outputs[0]]
    if y.dtype != int8_dtype:
        return None
    y_params = per_tensor(y, F64, I64)
    if y_params is None or not -ZP_LIMIT < y_params[1] < ZP_LIMIT:
        return None
    ins, in_shapes, in_params = [], [], []
    variable = False
    for k in range(count):
        i = inputs[k]
        if i < 0:
            return None
        s = shapes.get(i)
        if type(s) is not tuple:
            return None
        t = tensors[i]
        if t.dtype != int8_dtype:
            return None
        p = per_tensor(t, F64, I64)
        if p is None or not -ZP_LIMIT < p[1] < ZP_LIMIT:
            return None
        variable = variable or i not in constants
        ins.append(t)
        in_shapes.append(s)
        in_params.append(p)
    if not variable:
        return None
    geometry = concatenation_geometry(in_shapes, o.get("axis", 0), 1)      # (the held type's itemsize)
    if geometry is None:
        return None
    out, outer, rows = geometry
    # the tables before the output shape: a declined op leaves nothing behind
    cdef double s_out = y_params[0]
    cdef int64_t zp_out = y_params[1]
    tables = []
    for p in in_params:
        if p[1] == zp_out and <float>(<double>p[0]) == <float>s_out:
            tables.append(None)
            continue
        table = numpy.empty(256, U8)
        if not rescale_table(p[0], p[1], s_out, zp_out,
                             <uint8_t*>buffer_bytes(table, 256, b"uint8_concatenation_shell")):
            return None
        tables.append(table)
    load_ops.set_output_shape(ctx, op, 0, out, y)
    return y, ins, outer, rows, tables
