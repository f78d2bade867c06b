# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The int8 SOFTMAX, LOGISTIC, TANH, HARD_SWISH and int8 -> int8 QUANTIZE prepares in one call each (issue 15): what
ops/activations.prepare_unary and ops/quantize.prepare_quantize read, check and compute for them (their twins), the
table written by the reference arithmetic straight into a kept array; also the float32 -> int8 QUANTIZE and
FLIP_SIGN_BIT prepares' reading and checks (ops/quantize, ops/onnx_quantized).  Each shell returns None wherever a check would refuse the op or another form applies (int16, float,
an output quantization the op does not take): the Python path then decides, with its messages.  Not kernels:
no KERNELS table.  tests/test_load_activations.py compares both paths; test_load_fast_paths.py swaps the twins."""
from libc.stdint cimport int8_t, int32_t, int64_t
from libc.string cimport memcmp, memset

from cython_ops.em_params cimport em_params

import numpy

from cython_ops import load_ops
from cython_ops.load_buffer cimport (buffer_bytes, counted_one_in_one_out, element_count, one_in_one_out,
                                     per_tensor)


cdef extern from *:
    """
    /* only the table builders are used here: the header's kernels unused, not warned of */
    #pragma GCC diagnostic push
    #pragma GCC diagnostic ignored "-Wunused-function"
    #include "em_activations.h"
    #include "em_activation_steps.h"
    #pragma GCC diagnostic pop
    """

cdef extern from "em_activations.h" nogil:
    void em_softmax_int8_table(int32_t*, int32_t, int32_t, int32_t, int32_t, int32_t)
    int EM_SOFTMAX_TABLE_INT32
    void em_logistic_int8_lut_init(float, int32_t, float, int32_t, int8_t*)
    void em_tanh_int8_lut_init(float, int32_t, float, int32_t, int8_t*)

cdef extern from "em_activation_steps.h" nogil:
    void em_hard_swish_int8_step(const em_params*)
    void em_hard_swish_int8_avx2_step(const em_params*)
    int EM_HARD_SWISH_P_INPUT, EM_HARD_SWISH_P_OUTPUT, EM_HARD_SWISH_I_N, EM_HARD_SWISH_I_IN_ZP
    int EM_HARD_SWISH_I_OUT_ZP, EM_HARD_SWISH_I_RELUISH_MULT, EM_HARD_SWISH_I_RELUISH_EXPONENT
    int EM_HARD_SWISH_I_OUT_MULT, EM_HARD_SWISH_I_OUT_EXPONENT

cdef extern from "em_requant.h" nogil:
    int32_t em_mbqm(int32_t x, int32_t m, int shift, int mode)

cdef extern from "em_multiplier.h" nogil:
    bint multiplier_of "em_multiplier_of"(double real, int rounding, int32_t* mult, int32_t* shift)

cdef extern from "<math.h>" nogil:
    double floor(double x)
    double fabs(double x)
    double ldexp(double x, int e)
    bint isfinite(double x)

cdef enum:
    RANK = 6                 # the kernels' dims (common.pad6)
    LOGISTIC = 0
    TANH = 1

cdef object F64 = numpy.dtype(numpy.float64), I64 = numpy.dtype(numpy.int64)    # the IR's quantization types
cdef object I32 = numpy.dtype(numpy.int32)
cdef int64_t MAX_DIM = (<int64_t>1) << 40     # any shape the arena budget admits is far below
cdef int64_t ZP_LIMIT = (<int64_t>1) << 31    # zero points beyond int32: the Python path decides


cdef object int8_head(ctx, op, int8_dtype):
    """(input index, output index, input shape, elements, input scale, input zero point, output scale, output zero
    point) of an int8 -> int8 op quantized per tensor (load_ops.int8_unary_shell's reading, the output shape not
    yet set), zero points within int32; None otherwise."""
    head = one_in_one_out(ctx, op, int8_dtype, int8_dtype)
    if head is None:
        return None
    xi, yi, x, y, xs = head
    if len(xs) > RANK:
        return None
    cdef int64_t n = element_count(xs, MAX_DIM)
    if n < 0:
        return None
    x_params, y_params = per_tensor(x, F64, I64), per_tensor(y, F64, I64)
    if x_params is None or y_params is None:
        return None
    if not (-ZP_LIMIT < x_params[1] < ZP_LIMIT and -ZP_LIMIT < y_params[1] < ZP_LIMIT):
        return None
    return xi, yi, y, xs, n, x_params[0], x_params[1], y_params[0], y_params[1]


cdef bint fixed_output(double scale, int64_t zero_point, double want_scale, int64_t want_zp, double tolerance):
    """activations.check_fixed_output's test: the zero point and float32(scale) within `tolerance` of the op's."""
    return zero_point == want_zp and not fabs(<double><float>scale - want_scale) > tolerance


def int8_softmax_shell(ctx, op, int8_dtype):
    """An int8 SOFTMAX (output 1/256, -128 within LiteRT's tolerance; beta * input scale * 2^26 above 1): sets the
    output shape and returns (input index, output index, rows, depth, the em_softmax_int8_table in a fresh
    ctx.keep_new int32 array), softmax_int8_params's arithmetic in C.  None wherever the Python path decides."""
    head = int8_head(ctx, op, int8_dtype)
    if head is None:
        return None
    xi, yi, y, xs, n, s_in, zp_in, s_out, zp_out = head
    if not fixed_output(s_out, zp_out, 1.0 / 256, -128, 0.001 / 256):
        return None
    beta = op.options.get("beta", 1.0)
    if type(beta) is not float and not (type(beta) is int and -(1 << 24) <= beta <= 1 << 24):
        return None          # (an int past 2^24 would round twice on its way to float32)
    cdef double b = beta, real, max_real
    cdef int rounding = ctx.rounding
    if rounding != 0 and rounding != 1 or not (isfinite(b) and fabs(b) < 1e30 and s_in < 1e30):
        return None
    # PreprocessSoftmaxScaling(double(beta), double(input_scale), 5) with the stored float32 values
    max_real = <double>((1 << 30) - 1) if rounding == 1 else <double>((<int64_t>1 << 31) - 1)
    real = <double><float>b * <double><float>s_in * <double>(1 << 26)
    if real > max_real:
        real = max_real
    if not real > 1.0:
        return None
    cdef int32_t mult, shift
    if not multiplier_of(real, rounding, &mult, &shift) or shift < 0:
        return None
    cdef int32_t diff_min = -<int32_t>floor(31.0 * <double>(1 << 26) / ldexp(1.0, shift))    # CalculateInputRadius
    depth = xs[len(xs) - 1] if xs else 1
    load_ops.set_output_shape(ctx, op, 0, xs, y)
    table = ctx.keep_new((EM_SOFTMAX_TABLE_INT32,), I32)
    em_softmax_int8_table(<int32_t*>buffer_bytes(table, 4 * EM_SOFTMAX_TABLE_INT32, b"int8_softmax_shell"), mult,
                          shift, diff_min, rounding, depth == 2)
    return xi, yi, n // (depth if depth > 1 else 1), depth, table


def int8_lut_activation_shell(ctx, op, int which, int8_dtype):
    """An int8 LOGISTIC (which 0; output exactly 1/256, -128) or TANH (1; output 1/128, 0 within LiteRT's
    tolerance): sets the output shape and returns (input index, output index, elements, LUTPopulate's 256-entry
    table in a fresh ctx.keep_new int8 array).  None wherever the Python path decides."""
    head = int8_head(ctx, op, int8_dtype)
    if head is None:
        return None
    xi, yi, y, xs, n, s_in, zp_in, s_out, zp_out = head
    if which == LOGISTIC:
        if not fixed_output(s_out, zp_out, 1.0 / 256, -128, 0.0):
            return None
    elif which == TANH:
        if not fixed_output(s_out, zp_out, 1.0 / 128, 0, 0.001 / 128):
            return None
    else:
        return None
    load_ops.set_output_shape(ctx, op, 0, xs, y)
    table = ctx.keep_new((256,), int8_dtype)
    cdef int8_t* out = <int8_t*>buffer_bytes(table, 256, b"int8_lut_activation_shell")
    if which == LOGISTIC:
        em_logistic_int8_lut_init(<float>s_in, <int32_t>zp_in, <float>s_out, <int32_t>zp_out, out)
    else:
        em_tanh_int8_lut_init(<float>s_in, <int32_t>zp_in, <float>s_out, <int32_t>zp_out, out)
    return xi, yi, n, table


cdef int64_t REQUANTIZE_ZP_LIMIT = 1 << 16     # zero points beyond: the Python path (its C int arithmetic)


def int8_requantize_shell(ctx, op, int8_dtype):
    """An int8 -> int8 QUANTIZE (uint8 <-> int8 and rescales, held as int8): sets the output shape and returns
    (input index, output index, elements, the table of elementwise.requantize_table's arithmetic, em_mbqm with the
    multiplier of double(float32(input scale)) / double(float32(output scale)) clamped to int8, in a fresh
    ctx.keep_new array).  None wherever the Python path decides (its checks and messages)."""
    head = int8_head(ctx, op, int8_dtype)
    if head is None:
        return None
    xi, yi, y, xs, n, s_in, zp_in, s_out, zp_out = head
    cdef int rounding = ctx.rounding
    if rounding != 0 and rounding != 1 or not (-REQUANTIZE_ZP_LIMIT < zp_in < REQUANTIZE_ZP_LIMIT
                                               and -REQUANTIZE_ZP_LIMIT < zp_out < REQUANTIZE_ZP_LIMIT):
        return None
    cdef double real = <double><float>s_in / <double><float>s_out
    cdef int32_t mult, shift
    if not multiplier_of(real, rounding, &mult, &shift):
        return None
    load_ops.set_output_shape(ctx, op, 0, xs, y)
    table = ctx.keep_new((256,), int8_dtype)
    cdef int8_t* out = <int8_t*>buffer_bytes(table, 256, b"int8_requantize_shell")
    cdef int32_t x, v, zi = <int32_t>zp_in, zo = <int32_t>zp_out
    for x in range(-128, 128):
        v = zo + em_mbqm(x - zi, mult, shift, rounding)
        out[x & 0xFF] = <int8_t>(-128 if v < -128 else (127 if v > 127 else v))
    return xi, yi, n, table


cdef int32_t INT32_MAX = 2147483647


cdef int32_t int16_multiplier(int32_t m) noexcept:
    """tflite::DownScaleInt32ToInt16Multiplier of a non-negative multiplier (activations.py's twin)."""
    return 32767 if m >= INT32_MAX - (1 << 15) else (m + (1 << 15)) >> 16


def int8_hard_swish_shell(ctx, op, int8_dtype, int vector):
    """An int8 HARD_SWISH: sets the output shape and returns (input index, output index, elements, the 256-entry
    table of em_hard_swish_int8 in a fresh ctx.keep_new array, the vector kernel's integers or None).  The
    parameters are hard_swish_int8_params's float32 arithmetic (HardSwishPrepare) in C; with `vector` (the AVX2
    paths) em_hard_swish_int8_avx2's step is run on the same 256 bytes and its integers returned where it gives
    the table's bytes (activations.hard_swish_avx2_step's test).  None wherever the Python path decides."""
    head = int8_head(ctx, op, int8_dtype)
    if head is None:
        return None
    xi, yi, y, xs, n, s_in, zp_in, s_out, zp_out = head
    cdef float in_s = <float>s_in, out_s = <float>s_out
    cdef float hires = (<float>1.0 / <float>128.0) * in_s
    cdef float reluish_scale = <float>3.0 / <float>32768.0
    cdef float output_multiplier = hires / out_s, reluish_multiplier = hires / reluish_scale
    cdef int32_t out_m, out_e, rel_m, rel_e
    if not (multiplier_of(<double>output_multiplier, 0, &out_m, &out_e)
            and multiplier_of(<double>reluish_multiplier, 0, &rel_m, &rel_e)) or out_e > 0:
        return None            # (not finite, or an output multiplier of 1 or more: the Python path's errors)
    load_ops.set_output_shape(ctx, op, 0, xs, y)
    table = ctx.keep_new((256,), int8_dtype)
    cdef em_params p
    cdef unsigned char x[256]
    cdef int8_t vector_out[256]
    cdef int b
    memset(&p, 0, sizeof(em_params))
    for b in range(256):
        x[b] = b
    p.ptr[EM_HARD_SWISH_P_INPUT] = x
    p.ptr[EM_HARD_SWISH_P_OUTPUT] = buffer_bytes(table, 256, b"int8_hard_swish_shell")
    p.i[EM_HARD_SWISH_I_N] = 256
    p.i[EM_HARD_SWISH_I_IN_ZP] = zp_in
    p.i[EM_HARD_SWISH_I_OUT_ZP] = zp_out
    p.i[EM_HARD_SWISH_I_RELUISH_MULT] = int16_multiplier(rel_m)
    p.i[EM_HARD_SWISH_I_RELUISH_EXPONENT] = rel_e
    p.i[EM_HARD_SWISH_I_OUT_MULT] = int16_multiplier(out_m)
    p.i[EM_HARD_SWISH_I_OUT_EXPONENT] = out_e
    em_hard_swish_int8_step(&p)
    if not vector:
        return xi, yi, n, table, None
    cdef void* scalar_out = p.ptr[EM_HARD_SWISH_P_OUTPUT]
    p.ptr[EM_HARD_SWISH_P_OUTPUT] = vector_out
    em_hard_swish_int8_avx2_step(&p)
    if memcmp(vector_out, scalar_out, 256) != 0:
        return xi, yi, n, table, None
    return xi, yi, n, table, dict(in_zp=zp_in, out_zp=zp_out, reluish_mult=int16_multiplier(rel_m),
                                  reluish_exponent=rel_e, out_mult=int16_multiplier(out_m), out_exponent=out_e)


def flip_sign_bit_shell(ctx, op, uint8_dtype, int8_dtype):
    """FLIP_SIGN_BIT (q ^ 0x80 between a uint8 model's boundary tensors and the int8 ones it is run on), what
    ops/onnx_quantized.prepare_flip_sign_bit (its twin) reads and checks: a uint8 input and int8 output or the
    reverse, the input's shape known.  Sets the output shape and returns (input index, output index, elements);
    None wherever the Python path must decide (its checks and messages)."""
    head = counted_one_in_one_out(ctx, op, uint8_dtype, int8_dtype, MAX_DIM)
    if head is None:
        head = counted_one_in_one_out(ctx, op, int8_dtype, uint8_dtype, MAX_DIM)
        if head is None:
            return None
    xi, yi, x, y, xs, n = head
    load_ops.set_output_shape(ctx, op, 0, xs, y)
    return xi, yi, n


def float_quantize_shell(ctx, op, float32_dtype, int8_dtype):
    """A float32 -> int8 QUANTIZE, what ops/quantize.prepare_quantize (its twin) reads and checks: the input's
    shape known, the output quantized per tensor with a positive scale.  Sets the output shape and returns (input
    index, output index, elements, output scale, output zero point); None wherever the Python path must decide."""
    head = counted_one_in_one_out(ctx, op, float32_dtype, int8_dtype, MAX_DIM)
    if head is None:
        return None
    xi, yi, x, y, xs, n = head
    y_params = per_tensor(y, F64, I64)
    if y_params is None:
        return None
    load_ops.set_output_shape(ctx, op, 0, xs, y)
    return xi, yi, n, y_params[0], y_params[1]
