# cython: language_level=3
"""Recurrent kernels: UNIDIRECTIONAL_SEQUENCE_LSTM, integer 8x8_16 (include/em_lstm_int8.h, its int16 activations
em_q16.h) and float32 (include/em_lstm_f32.h), hybrid (include/em_lstm_hybrid.h); ONNX LSTM / GRU / RNN float32 and
int8 (include/em_onnx_rnn.h).  Dot products: include/em_lstm_dots.h."""
from libc.stdint cimport uintptr_t, int16_t, int64_t
from cython_ops.em_params cimport em_params

import numpy as np

cdef extern from "em_q16.h":
    void em_lstm_fill_table(int kind, int ibits, int16_t* table) nogil
    void em_lstm_fill_table_simd(int kind, int ibits, int lanes, int16_t* table) nogil
    int em_lstm_simd_tables() nogil
    void em_lstm_fill_table_avx2(int kind, int ibits, int16_t* table) nogil
    int em_lstm_avx2_tables() nogil

cdef extern from "em_lstm_int8.h":
    void em_lstm_int8(const em_params*) nogil

cdef extern from "em_lstm_f32.h":
    void em_lstm_f32(const em_params*) nogil
    void em_lstm_activate_f32(const float* x, int64_t n, int odd, float* y) nogil

cdef extern from "em_lstm_hybrid.h":
    void em_lstm_hybrid(const em_params*) nogil
    int64_t em_lstm_hybrid_scratch(int64_t B, int64_t T, int64_t F, int64_t NC) nogil

cdef extern from "em_onnx_rnn.h":
    void em_onnx_rnn_f32(const em_params*) nogil
    void em_onnx_rnn_s8(const em_params*) nogil

KERNELS = {
    "lstm_int8": <uintptr_t>&em_lstm_int8,
    "lstm_f32": <uintptr_t>&em_lstm_f32,
    "lstm_hybrid": <uintptr_t>&em_lstm_hybrid,
    "onnx_rnn_f32": <uintptr_t>&em_onnx_rnn_f32,
    "onnx_rnn_s8": <uintptr_t>&em_onnx_rnn_s8,
}

TABLE_KINDS = {"logistic": 0, "tanh": 1}


def activation_table(str kind, int integer_bits):
    """int16 table of gemmlowp's logistic / tanh on FixedPoint<int16, integer_bits> (result Q0.15),
    indexed by the input's bits read as uint16 (65536 entries, then padding)."""
    if kind not in TABLE_KINDS or not 0 <= integer_bits <= 6:
        raise ValueError(f"no {kind} table with {integer_bits} integer bits")
    table = np.zeros(65536 + 16, dtype=np.int16)      # padding: SIMD gathers read 4 bytes at each entry
    cdef int16_t[::1] t = table
    em_lstm_fill_table(TABLE_KINDS[kind], integer_bits, &t[0])
    return table


def activation_table_simd(str kind, int integer_bits, int lanes=32):
    """The same table computed by the kernels' AVX-512 forms, 32 lanes (em_q16x_*) or 16 (em_q16y_*), or None
    where they cannot run; tests compare it with activation_table entry by entry."""
    if kind not in TABLE_KINDS or not 0 <= integer_bits <= 6 or lanes not in (16, 32):
        raise ValueError(f"no {lanes}-lane {kind} table with {integer_bits} integer bits")
    if not em_lstm_simd_tables():
        return None
    table = np.zeros(65536 + 16, dtype=np.int16)
    cdef int16_t[::1] t = table
    em_lstm_fill_table_simd(TABLE_KINDS[kind], integer_bits, lanes, &t[0])
    return table


def activation_table_avx2(str kind, int integer_bits):
    """The same table computed by the kernels' AVX2 forms (em_q16a_*, 16 lanes), or None without AVX2."""
    if kind not in TABLE_KINDS or not 0 <= integer_bits <= 6:
        raise ValueError(f"no AVX2 {kind} table with {integer_bits} integer bits")
    if not em_lstm_avx2_tables():
        return None
    table = np.zeros(65536 + 16, dtype=np.int16)
    cdef int16_t[::1] t = table
    em_lstm_fill_table_avx2(TABLE_KINDS[kind], integer_bits, &t[0])
    return table


def float_activation(str kind, x):
    """sigmoid or tanh of a float32 array as the float recurrent kernels compute it on this machine's path."""
    if kind not in ("sigmoid", "tanh"):
        raise ValueError(f"no float activation {kind!r}")
    cdef float[::1] xv = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    y = np.empty(xv.shape[0], dtype=np.float32)
    cdef float[::1] yv = y
    if xv.shape[0]:
        em_lstm_activate_f32(&xv[0], xv.shape[0], kind == "tanh", &yv[0])
    return y


def lstm_hybrid_scratch(int64_t batch, int64_t steps, int64_t n_input, int64_t n_cell):
    """Scratch bytes em_lstm_hybrid needs (its layout is defined once, in the header)."""
    return em_lstm_hybrid_scratch(batch, steps, n_input, n_cell)
