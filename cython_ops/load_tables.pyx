# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The load-time 256-entry tables in one call each (issue 15): the op's own scalar kernel run once, straight from
its parameters, on every input byte or on every (constant value, byte) pair, with no Engine built for the single
step: tables.py's byte tables (their twins there: one-step Engines), and the RELU family's and int8 DEQUANTIZE's
tables with their integers or checks computed here too (twins: ops/activations.py, ops/quantize.py).  The same
kernels on the same parameters, so the same bytes (tests/test_load_ops3.py, test_load_fast_paths.py swaps the
twins in).  Not kernels: no KERNELS table."""
from libc.stdint cimport int32_t, int64_t, uintptr_t
from libc.string cimport memcpy, memset
from cpython.buffer cimport PyBUF_C_CONTIGUOUS, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer

from cython_ops.em_params cimport em_params, em_kernel, EM_MAX_PTRS, EM_MAX_INTS, EM_MAX_FLOATS
from cython_ops.load_buffer cimport buffer_bytes, counted_one_in_one_out, one_in_one_out, per_tensor

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
    head = counted_one_in_one_out(ctx, op, int8_dtype, float32_dtype, MAX_DIM)
    if head is None or head[0] in ctx.constants:
        return None
    xi, yi, x, y, xs, n = head
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


cdef extern from "em_elementwise.h" nogil:
    cdef enum:
        EM_BINARY_P_INPUT1
        EM_BINARY_P_INPUT2
        EM_BINARY_P_OUTPUT
        EM_BINARY_I_DIMS
        EM_BINARY_I_STRIDES1
        EM_BINARY_I_STRIDES2
        EM_ADD_P_TABLES
        EM_ADD_I_ZP1
        EM_ADD_I_ZP2
        EM_ADD_I_OUT_ZP
        EM_ADD_I_LEFT_SHIFT
        EM_ADD_I_MULT1
        EM_ADD_I_SHIFT1
        EM_ADD_I_MULT2
        EM_ADD_I_SHIFT2
        EM_ADD_I_OUT_MULT
        EM_ADD_I_OUT_SHIFT
        EM_ADD_I_ACT_MIN
        EM_ADD_I_ACT_MAX
        EM_ADD_I_MODE
        EM_ADD_I_SIGN
        EM_MUL_I_ZP1
        EM_MUL_I_ZP2
        EM_MUL_I_OUT_ZP
        EM_MUL_I_MULT
        EM_MUL_I_SHIFT
        EM_MUL_I_ACT_MIN
        EM_MUL_I_ACT_MAX
        EM_MUL_I_MODE

cdef Py_ssize_t MAX_TABLE_BYTES = 16384     # ops/elementwise.MAX_TABLE_BYTES: period x 256 bytes at most
cdef Py_ssize_t GATHER_SLACK = 3            # ops/elementwise.GATHER_SLACK
ADD_NAMES = ("zp1", "zp2", "out_zp", "left_shift", "mult1", "shift1", "mult2", "shift2", "out_mult", "out_shift",
             "act_min", "act_max", "mode", "sign", "threads")
MUL_NAMES = ("zp1", "zp2", "out_zp", "mult", "shift", "act_min", "act_max", "mode", "threads")


cdef Py_ssize_t period_of(ctx, Py_ssize_t ci, Py_ssize_t oi, tuple out, int8_dtype) except -2:
    """ops/elementwise.constant_period for the constant candidate ci against the other input oi (out: the output's
    shape, Python ints): the period P; -1 where that function returns None (this pair is no table case); -3 where
    it would return values this shell does not take (a broadcast inside the period, a constant not a C-contiguous
    int8 array of P elements, a shape not read): the Python path then decides."""
    constants = ctx.constants
    if ci not in constants or oi in constants:
        return -1
    shapes = ctx.shapes
    other_shape, const_shape = shapes.get(oi), shapes.get(ci)
    if type(other_shape) is not tuple or type(const_shape) is not tuple:
        return -3
    if other_shape != out:
        return -1
    cdef Py_ssize_t rank = len(out), lead = rank - len(const_shape), first = rank, k
    if lead < 0:
        return -3
    for k in range(lead, rank):
        if const_shape[k - lead] != 1:
            first = k
            break
    period = 1
    for k in range(first, rank):
        period *= out[k]
    if period * 256 > MAX_TABLE_BYTES:
        return -1
    total = 1
    for d in out:
        total *= d
    if total == 0:
        return -1
    for k in range(first, rank):
        if const_shape[k - lead] != out[k]:
            return -3           # a broadcast inside the period
    values = constants[ci]
    if type(values) is not numpy.ndarray or values.dtype != int8_dtype or values.size != period \
            or not values.flags.c_contiguous:
        return -3
    return period


def constant_operand_table(ctx, op, uintptr_t fn, bint add_layout, ints, int8_dtype):
    """ops/elementwise.constant_operand_lut's table (its twin) for an int8 ADD / SUB (add_layout) or MUL whose
    integers int8_binary_shell gave: against a constant varying only along the output's trailing axes, with period
    P, the P x 256 outputs of binary kernel `fn` (the op's own, or the portable twin tables.runnable picks) written
    into a fresh ctx.keep_new array with GATHER_SLACK zero bytes after.  Returns (the other input's index, P, the
    table); None (nothing kept) where it is no table case or the Python path must decide."""
    if fn == 0:
        return None
    inputs, outputs = op.inputs, op.outputs
    if len(inputs) < 2 or len(outputs) < 1:
        return None
    ai, bi, yi = inputs[0], inputs[1], outputs[0]
    out = ctx.shapes.get(yi)
    if type(out) is not tuple or len(out) > 6:
        return None
    cdef Py_ssize_t period = period_of(ctx, bi, ai, out, int8_dtype)
    cdef bint constant_first = False
    if period == -1:
        period = period_of(ctx, ai, bi, out, int8_dtype)
        constant_first = True
    if period < 0:
        return None
    names = ADD_NAMES if add_layout else MUL_NAMES
    values = []
    for name in names:
        v = ints.get(name)
        if type(v) is not int or not -ZP_LIMIT <= v < ZP_LIMIT:
            return None
        values.append(v)
    cdef em_params p
    memset(&p, 0, sizeof(em_params))
    cdef Py_ssize_t k, first_slot = EM_ADD_I_ZP1 if add_layout else EM_MUL_I_ZP1
    for k in range(len(names)):
        p.i[first_slot + k] = <int64_t>values[k]
    c = ctx.constants[ai if constant_first else bi]
    cdef signed char* constant = <signed char*>buffer_bytes(c, period, b"constant_operand_table")
    table = ctx.keep_new((period * 256 + GATHER_SLACK,), int8_dtype)
    cdef signed char* y = <signed char*>buffer_bytes(table, period * 256 + GATHER_SLACK, b"constant_operand_table")
    cdef unsigned char x[256]
    cdef int64_t scratch[256 + 8]       # em_add_int8_avx512's 2 KB of tables, 64-byte aligned
    for k in range(256):
        x[k] = k
    for k in range(GATHER_SLACK):
        y[period * 256 + k] = 0
    for k in range(5):
        p.i[EM_BINARY_I_DIMS + k] = 1
    p.i[EM_BINARY_I_DIMS + 5] = 256         # one row: the 256 bytes against one value of the constant, held
    p.i[EM_BINARY_I_STRIDES2 + 5 if constant_first else EM_BINARY_I_STRIDES1 + 5] = 1
    if add_layout:
        p.ptr[EM_ADD_P_TABLES] = <void*>((<uintptr_t>scratch + 63) & ~(<uintptr_t>63))
    cdef Py_ssize_t row_of[256]             # the row already built for each constant value (-1: none yet)
    cdef Py_ssize_t r
    for k in range(256):
        row_of[k] = -1
    for r in range(period):                 # the kernel on each distinct value; a repeated value's row copied
        k = <unsigned char>constant[r]
        if row_of[k] >= 0:
            memcpy(y + r * 256, y + row_of[k] * 256, 256)
            continue
        row_of[k] = r
        if constant_first:
            p.ptr[EM_BINARY_P_INPUT1], p.ptr[EM_BINARY_P_INPUT2] = constant + r, x
        else:
            p.ptr[EM_BINARY_P_INPUT1], p.ptr[EM_BINARY_P_INPUT2] = x, constant + r
        p.ptr[EM_BINARY_P_OUTPUT] = y + r * 256
        (<em_kernel>fn)(&p)
    return (bi if constant_first else ai), period, table


cdef extern from "<math.h>" nogil:
    double frexp(double x, int* exponent)
    double ldexp(double x, int exponent)
    double nearbyint(double x)          # the current rounding mode: ties to even (Python's round)
    double fabs(double x)

cdef int64_t AFFINE_BIG = (<int64_t>1) << 40
cdef int AFFINE_SLOPE_STEPS = 256          # tables.AFFINE_SLOPE_STEPS


cdef int affine_split(const int64_t* t, int64_t lo, int64_t hi, int shift, int64_t mult, int64_t* adds) noexcept:
    """tables.affine_pieces for the one multiplier `mult`: the first split column j (0..256) at which additions
    exist on x < j - 128 and on x >= j - 128, with adds[0], adds[1] the midpoints of their ranges (floor), or -1."""
    cdef int64_t low[256]
    cdef int64_t high[256]
    cdef int64_t least_above[257]
    cdef int64_t most_above[257]
    cdef int64_t x, a, b, least_below = -AFFINE_BIG, most_below = AFFINE_BIG
    cdef int i, j
    for i in range(256):
        x = i - 128
        low[i] = (t[i] << shift if t[i] > lo else -AFFINE_BIG) - mult * x
        high[i] = (((t[i] + 1) << shift) - 1 if t[i] < hi else AFFINE_BIG) - mult * x
    least_above[256] = -AFFINE_BIG
    most_above[256] = AFFINE_BIG
    for i in range(255, -1, -1):
        a, b = least_above[i + 1], most_above[i + 1]
        least_above[i] = low[i] if low[i] > a else a
        most_above[i] = high[i] if high[i] < b else b
    for j in range(257):
        if j > 0:
            if low[j - 1] > least_below:
                least_below = low[j - 1]
            if high[j - 1] < most_below:
                most_below = high[j - 1]
        if least_below <= most_below and least_above[j] <= most_above[j]:
            adds[0] = (least_below + most_below) >> 1 if j > 0 else 0
            adds[1] = (least_above[j] + most_above[j]) >> 1 if j < 256 else adds[0]
            return j
    return -1


def affine_form(table):
    """tables.affine_form (its twin) in one call: the same dict, or None, for `table` (a C-contiguous array of
    one-byte elements, its first 256 the table by byte), by the same integer search (the multipliers within
    AFFINE_SLOPE_STEPS of the least-squares slope's, every fourth first, the one nearest it taken, the lower of
    two as near) from the same slope (tables.least_squares_slope's integer moments and division)."""
    cdef Py_buffer view
    PyObject_GetBuffer(table, &view, PyBUF_C_CONTIGUOUS)
    cdef const signed char* bytes_ = <const signed char*>view.buf
    cdef Py_ssize_t length = view.len, itemsize = view.itemsize
    cdef int64_t t[256]
    cdef int i
    if length >= 256 and itemsize == 1:
        for i in range(256):
            t[i] = bytes_[(i - 128) & 255]          # by int8 value, ascending
    PyBuffer_Release(&view)
    if length < 256 or itemsize != 1:
        raise ValueError(f"affine_form: a table of {length} bytes ({itemsize} each) where 256 single bytes are read")
    cdef bint shift_table = True
    for i in range(256):       # table[v] = v + c (mod 256): the lookup's one byte addition
        if <unsigned char>(t[(i - 128) & 255] - t[128]) != <unsigned char>i:
            shift_table = False
            break
    if shift_table:
        return None
    cdef int64_t lo = t[0], hi = t[0]
    for i in range(256):
        lo = t[i] if t[i] < lo else lo
        hi = t[i] if t[i] > hi else hi
    if lo == hi:
        return dict(mult=0, add_low=lo, add_high=lo, split=-128, shift=0, lo=lo, hi=hi)
    cdef int inner = 0
    for i in range(256):
        inner += lo < t[i] < hi
    cdef int64_t n = 0, sx = 0, st = 0, sxx = 0, sxt = 0, x
    for i in range(256):
        if inner >= 2 and not lo < t[i] < hi:
            continue
        x = i - 128
        n += 1
        sx += x
        st += t[i]
        sxx += x * x
        sxt += x * t[i]
    cdef double slope = <double>(n * sxt - sx * st) / <double>(n * sxx - sx * sx)
    if not (1e-6 < fabs(slope) < 16384.0):
        return None
    cdef int exponent
    frexp(32000.0 / fabs(slope), &exponent)
    cdef int shift = exponent - 1 if exponent - 1 < 22 else 22
    cdef int64_t centre = <int64_t>nearbyint(ldexp(slope, shift))
    cdef int64_t mult = 0, m
    cdef int64_t adds[2]
    cdef int stride, d, side, split = -1
    for stride in (4, 1):
        for d in range(0, AFFINE_SLOPE_STEPS + 1, stride):
            for side in range(2 if d else 1):
                m = centre - d if side == 0 else centre + d
                if not -32768 < m < 32768:
                    continue
                split = affine_split(t, lo, hi, shift, m, adds)
                if split >= 0:
                    mult = m
                    break
            if split >= 0:
                break
        if split >= 0:
            break
    if split < 0:
        return None
    cdef int64_t v, q
    for i in range(256):
        x = i - 128
        v = x * mult + (adds[1] if i >= split else adds[0])
        if not -(<int64_t>1 << 31) < v < (<int64_t>1 << 31):
            return None
        q = v >> shift
        q = lo if q < lo else hi if q > hi else q
        if q != t[i]:
            return None
    return dict(mult=mult, add_low=adds[0], add_high=adds[1], split=split - 128, shift=shift, lo=lo, hi=hi)
