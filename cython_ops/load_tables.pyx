# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The load-time 256-entry tables in one call each (issue 15): the op's own scalar kernel run once, straight from
its parameters, on every input byte or on every (constant value, byte) pair, with no Engine built for the single
step: tables.py's byte tables (their twins there: one-step Engines), and the RELU family's and int8 DEQUANTIZE's
tables with their integers or checks computed here too (twins: ops/activations.py, ops/quantize.py).  The same
kernels on the same parameters, so the same bytes (tests/test_load_ops3.py, test_load_fast_paths.py swaps the
twins in).  Not kernels: no KERNELS table."""
from libc.stdint cimport int32_t, int64_t, uintptr_t
from libc.string cimport memset
from cpython.buffer cimport PyBUF_C_CONTIGUOUS, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer

from cython_ops.em_params cimport em_params, em_kernel, EM_MAX_PTRS, EM_MAX_INTS, EM_MAX_FLOATS
from cython_ops.load_buffer cimport buffer_bytes, element_count, one_in_one_out, per_tensor

import numpy

from cython_ops import load_ops

cdef void bytes_input(em_params* p, unsigned char* x, Py_ssize_t slot) noexcept:
    """p zeroed, x (256 bytes) holding 0..255 as its input at pointer slot `slot` (x, not a shared table: the
    kernel's input pointer is not const)."""
    memset(p, 0, sizeof(em_params))
    cdef int b
    for b in range(256):
        x[b] = b
    p.ptr[slot] = x


cdef int fill(em_params* p, ints, floats) except -1:
    """The int and float slots from lists laid out as the kernel's Layout orders them (Engine.set_lists's
    reading: int() / float() of each, an integer outside int64 raises OverflowError)."""
    cdef Py_ssize_t j, ni = len(ints), nf = len(floats)
    if ni > EM_MAX_INTS or nf > EM_MAX_FLOATS:
        raise ValueError("too many parameters")
    for j in range(ni):
        p.i[j] = int(ints[j])
    for j in range(nf):
        p.f[j] = float(floats[j])
    return 0


def byte_table(uintptr_t fn, Py_ssize_t input_slot, Py_ssize_t output_slot, ints, floats, out):
    """Element-wise kernel `fn` run once over the 256 bytes 0..255 (pointer slot input_slot) into `out` (pointer
    slot output_slot: a C-contiguous array of 256 elements of the kernel's output type, `itemsize` bytes each);
    `ints` (n = 256 included) and `floats`: its laid-out slots.  Returns out."""
    if fn == 0 or not (0 <= input_slot < EM_MAX_PTRS and 0 <= output_slot < EM_MAX_PTRS):
        raise ValueError("byte_table: no kernel or a pointer slot out of range")
    cdef em_params p
    cdef unsigned char x[256]
    bytes_input(&p, x, input_slot)
    fill(&p, ints, floats)
    p.ptr[output_slot] = buffer_bytes(out, 256 * out.dtype.itemsize, b"byte_table")
    (<em_kernel>fn)(&p)
    return out


def periodic_byte_table(uintptr_t fn, ptrs, ints, out, Py_ssize_t period, Py_ssize_t itemsize):
    """Binary kernel `fn` run once with laid-out pointer and int slots (the 256 bytes, the constant and `out`'s
    address among `ptrs`, which the caller keeps alive) after checking `out` (C-contiguous) holds at least
    period * 256 elements of `itemsize` bytes.  Returns out."""
    if fn == 0 or len(ptrs) > EM_MAX_PTRS:
        raise ValueError("periodic_byte_table: no kernel or too many pointers")
    cdef Py_buffer view
    PyObject_GetBuffer(out, &view, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE)
    cdef Py_ssize_t length = view.len
    PyBuffer_Release(&view)
    if period < 0 or length < period * 256 * itemsize:
        raise ValueError(f"periodic_byte_table: {length} bytes where {period * 256 * itemsize} are written")
    cdef em_params p
    memset(&p, 0, sizeof(em_params))
    fill(&p, ints, ())
    cdef Py_ssize_t j
    for j in range(len(ptrs)):
        p.ptr[j] = <void*><uintptr_t>ptrs[j]
    (<em_kernel>fn)(&p)
    return out


cdef extern from "em_multiplier.h" nogil:
    bint multiplier_of "em_multiplier_of"(double real, int rounding, int32_t* mult, int32_t* shift)

cdef extern from *:
    """
    /* only em_requantize_int8, em_dequantize_int8_f32 and their slots are used here: the header's other kernels unused, not warned of */
    #pragma GCC diagnostic push
    #pragma GCC diagnostic ignored "-Wunused-function"
    #include "em_elementwise.h"
    #pragma GCC diagnostic pop
    """

cdef extern from "em_elementwise.h" nogil:
    cdef enum:
        EM_REQUANTIZE_P_INPUT
        EM_REQUANTIZE_P_OUTPUT
        EM_REQUANTIZE_I_N
        EM_REQUANTIZE_I_IN_ZP
        EM_REQUANTIZE_I_OUT_ZP
        EM_REQUANTIZE_I_MULT
        EM_REQUANTIZE_I_SHIFT
        EM_REQUANTIZE_I_ACT_MIN
        EM_REQUANTIZE_I_ACT_MAX
        EM_REQUANTIZE_I_MODE
        EM_DEQUANTIZE_P_INPUT
        EM_DEQUANTIZE_P_OUTPUT
        EM_DEQUANTIZE_I_N
        EM_DEQUANTIZE_I_ZP
        EM_DEQUANTIZE_F_SCALE
    void em_requantize_int8(const em_params*)
    void em_dequantize_int8_f32(const em_params*)

cdef extern from "<math.h>" nogil:
    double round(double x)          # std::round: ties away from zero (numerics.round_half_away)
    bint isfinite(double x)

cdef int64_t ZP_LIMIT = (<int64_t>1) << 31      # zero points beyond: the Python path decides


cdef bint clamp_bound(float bound, double out_scale, int64_t zp, int64_t* out):
    """zp + round(float32(bound) / float32(out_scale)) (ops/activations.py's act_min / act_max before clamping to
    int8); False where the quotient is not a finite float32 of moderate size."""
    cdef float q = bound / <float>out_scale
    if not isfinite(q) or not -1e15 < q < 1e15:
        return False
    out[0] = zp + <int64_t>round(<double>q)
    return True


def relu_table(ctx, int which, double s_in, zp_in, double s_out, zp_out, int8_dtype):
    """The int8 RELU (which 0), RELU6 (1) or RELU_N1_TO_1 (2) table of ops/activations.int8_activation_table (its
    twin): em_requantize_int8 on the 256 bytes with the multiplier of float32(s_in) / float32(s_out) and the
    activation range in float32, written into a fresh ctx.keep_new array.  None (nothing kept) wherever the Python
    path must decide: a rounding other than 0 / 1, zero points beyond int32, a quotient not finite."""
    cdef int rounding = ctx.rounding
    if rounding != 0 and rounding != 1 or not 0 <= which <= 2:
        return None
    if type(zp_in) is not int or type(zp_out) is not int or not (-ZP_LIMIT < zp_in < ZP_LIMIT
                                                                  and -ZP_LIMIT < zp_out < ZP_LIMIT):
        return None
    cdef float ratio = <float>s_in / <float>s_out
    cdef int32_t m, sh
    if not multiplier_of(<double>ratio, rounding, &m, &sh):
        return None
    cdef int64_t zo = zp_out, lo, hi
    if not clamp_bound(-1.0 if which == 2 else 0.0, s_out, zo, &lo):
        return None
    if which == 0:
        hi = 127
    elif not clamp_bound(6.0 if which == 1 else 1.0, s_out, zo, &hi):
        return None
    table = ctx.keep_new((256,), int8_dtype)
    cdef em_params p
    cdef unsigned char x[256]
    bytes_input(&p, x, EM_REQUANTIZE_P_INPUT)
    p.ptr[EM_REQUANTIZE_P_OUTPUT] = buffer_bytes(table, 256, b"relu_table")
    p.i[EM_REQUANTIZE_I_N] = 256
    p.i[EM_REQUANTIZE_I_IN_ZP] = <int64_t>zp_in
    p.i[EM_REQUANTIZE_I_OUT_ZP] = zo
    p.i[EM_REQUANTIZE_I_MULT] = m
    p.i[EM_REQUANTIZE_I_SHIFT] = sh
    p.i[EM_REQUANTIZE_I_ACT_MIN] = lo if lo > -128 else -128
    p.i[EM_REQUANTIZE_I_ACT_MAX] = hi if hi < 127 else 127
    p.i[EM_REQUANTIZE_I_MODE] = rounding
    em_requantize_int8(&p)
    return table


cdef object F64 = numpy.dtype(numpy.float64), I64 = numpy.dtype(numpy.int64)    # the IR's quantization types
cdef int64_t MAX_DIM = (<int64_t>1) << 40     # any shape the arena budget admits is far below


def int8_dequantize_shell(ctx, op, int8_dtype, float32_dtype):
    """What ops/quantize.prepare_dequantize reads, checks and builds for a non-constant int8 -> float32 DEQUANTIZE
    quantized per tensor (its twin): sets the output shape and returns (input index, output index, elements, the
    table of em_dequantize_int8_f32 on the 256 bytes in a fresh ctx.keep_new array).  None (nothing kept)
    wherever the Python path must decide (its checks and messages)."""
    head = one_in_one_out(ctx, op, int8_dtype, float32_dtype)
    if head is None or head[0] in ctx.constants:
        return None
    xi, yi, x, y, xs = head
    cdef int64_t n = element_count(xs, MAX_DIM)
    if n < 0:
        return None
    params = per_tensor(x, F64, I64)
    if params is None:
        return None
    scale, zp = params
    if type(zp) is not int or not -ZP_LIMIT < zp < ZP_LIMIT:
        return None
    load_ops.set_output_shape(ctx, op, 0, xs, y)
    table = ctx.keep_new((256,), float32_dtype)
    cdef em_params p
    cdef unsigned char x_bytes[256]
    bytes_input(&p, x_bytes, EM_DEQUANTIZE_P_INPUT)
    p.ptr[EM_DEQUANTIZE_P_OUTPUT] = buffer_bytes(table, 1024, b"int8_dequantize_shell")
    p.i[EM_DEQUANTIZE_I_N] = 256
    p.i[EM_DEQUANTIZE_I_ZP] = <int64_t>zp
    p.f[EM_DEQUANTIZE_F_SCALE] = <float><double>scale
    em_dequantize_int8_f32(&p)
    return xi, yi, n, table


def int8_dequantize_constant(ctx, op, int8_dtype, float32_dtype):
    """The values ops/quantize.prepare_dequantize folds for a constant int8 -> float32 DEQUANTIZE quantized per
    tensor (its twin's float64 arithmetic: float32(double(float32(scale)) * (double(q) - double(zero point))), in a
    fresh array for folding.fold; None (nothing set) wherever the Python path must decide."""
    head = one_in_one_out(ctx, op, int8_dtype, float32_dtype)
    if head is None:
        return None
    xi, yi, x, y, xs = head
    data = ctx.constants.get(xi)
    if type(data) is not numpy.ndarray or data.dtype != int8_dtype or not data.flags.c_contiguous:
        return None
    q = x.quant
    if q is None or q.scale.size != 1 or q.zero_point.size != 1:
        return None
    cdef double scale = <double><float><double>float(q.scale.reshape(-1)[0])
    zero_point = int(q.zero_point.reshape(-1)[0])
    if not (isfinite(scale) and -ZP_LIMIT < zero_point < ZP_LIMIT):
        return None
    cdef double zp = <double>(<int64_t>zero_point)
    cdef Py_ssize_t n = data.size, k
    out = numpy.empty(data.shape, float32_dtype)
    cdef const signed char* src = <const signed char*>buffer_bytes(data, n, b"int8_dequantize_constant")
    cdef float* dst = <float*>buffer_bytes(out, 4 * n, b"int8_dequantize_constant")
    for k in range(n):
        dst[k] = <float>(scale * (<double>src[k] - zp))
    return out
