"""UNIDIRECTIONAL_SEQUENCE_LSTM as LiteRT runs it: integer 8x8_16, float32 and hybrid (float state, int8 weights);
kernels: cython_ops/include/em_lstm_int8.h, em_lstm_f32.h, em_lstm_hybrid.h."""
from __future__ import annotations

import math

import numpy as np

from cython_ops.rnn import activation_table, lstm_hybrid_scratch
from edgeml import numerics as Q
from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import Op
from edgeml.runtime.kernels import CONFIG
from edgeml.runtime.ops.common import arithmetic_kind, qparams
from edgeml.runtime.ops.hybrid import hybrid_weight_scales
from edgeml.runtime.packing import interleave_gates, pack_f32, pack_s8, pack_u8s8, padded_columns
from edgeml.runtime.plan import Ctx, OpSpec, Step, address


# UNIDIRECTIONAL_SEQUENCE_LSTM input positions (TFLite lstm_shared.h)
INPUT = 0
INPUT_WEIGHTS = (1, 2, 3, 4)          # input-to-{input, forget, cell, output}
RECURRENT_WEIGHTS = (5, 6, 7, 8)
PEEPHOLE_WEIGHTS = (9, 10, 11)
GATE_BIASES = (12, 13, 14, 15)
PROJECTION_WEIGHTS, PROJECTION_BIAS = 16, 17
OUTPUT_STATE, CELL_STATE = 18, 19
LAYER_NORM = (20, 21, 22, 23)
GATES = ("input", "forget", "cell", "output")
# NONE, RELU, RELU_N1_TO_1, RELU6, TANH (the schema has no sigmoid: LiteRT reads a 6 as NONE; it is refused here)
FLOAT_ACTIVATIONS = {0: 0, 1: 1, 2: 2, 3: 3, 4: 4}
GATE_SCALE = float(Q.F32(2.0 ** -12))                  # Q3.12 gate pre-activations without layer norm
MAX_SCRATCH_BYTES = 1 << 31                            # the input projection of every step is kept at once
_TABLES: dict = {}


def _table(kind: str, integer_bits: int) -> tuple[np.ndarray, int]:
    """gemmlowp's int16 logistic / tanh as a half table over |x| and its last distinct index, built once per
    process: H[k] = f(k) for k < 32768 and H[32768] from f(-32768); f(x < 0) = 1 - H[-x] (logistic), -H[-x] (tanh).
    The mirror identity is checked against the full table, entry by entry."""
    key = (kind, integer_bits)
    if key not in _TABLES:
        full = activation_table(kind, integer_bits)[:65536].astype(np.int32)     # indexed by uint16(x)
        odd = kind == "tanh"
        half = np.empty(32769, np.int32)
        half[:32768] = full[:32768]
        half[32768] = -full[32768] if odd else 32767 - full[32768]                # x = -32768
        x = np.arange(65536, dtype=np.int64)
        x = np.where(x >= 32768, x - 65536, x)
        rebuilt = np.where(x < 0, (-half[-x] if odd else 32767 - half[-x]), half[np.abs(x)])
        if not np.array_equal(rebuilt, full):
            raise RuntimeError(f"gemmlowp {kind} with {integer_bits} integer bits is not mirror-symmetric")
        changes = np.nonzero(half != half[-1])[0]
        limit = int(changes[-1]) + 1 if changes.size else 0
        table = np.zeros(limit + 1 + 16, np.int16)        # padding: SIMD gathers read 4 bytes at each entry
        table[:limit + 1] = half[:limit + 1]
        _TABLES[key] = (table, limit)
    return _TABLES[key]


def _present(op: Op, position: int) -> bool:
    return position < len(op.inputs) and op.inputs[position] >= 0


def _checked_log2(scale: float):
    """LiteRT's CheckedLog2 in float: the rounded log2 if scale is a power of two within 1e-3, else None."""
    x = float(Q.F32(math.log(float(Q.F32(scale))))) * float(Q.F32(1.0 / math.log(2.0)))
    r = round(x)
    return int(r) if abs(x - r) < 1e-3 else None


def _weights(ctx: Ctx, op: Op, position: int, rows: int, cols: int, dtype, what: str) -> tuple:
    t = ctx.tensor(op, position)
    data = ctx.const(t, f"{op.describe()} {what}")
    if data.dtype != dtype:
        raise UnsupportedOpError(f"{op.describe()}: {what} {t.describe()} has type {data.dtype}, expected "
                                 f"{np.dtype(dtype)}")
    if data.shape != (rows, cols):
        raise ModelFormatError(f"{op.describe()}: {what} {t.describe()} has shape {list(data.shape)}, expected "
                               f"{[rows, cols]}")
    return t, data


def _vector(ctx: Ctx, op: Op, position: int, n: int, dtype, what: str) -> tuple:
    t = ctx.tensor(op, position)
    data = ctx.const(t, f"{op.describe()} {what}")
    if data.dtype != dtype:
        raise UnsupportedOpError(f"{op.describe()}: {what} {t.describe()} has type {data.dtype}, expected "
                                 f"{np.dtype(dtype)}")
    if data.shape != (n,):
        raise ModelFormatError(f"{op.describe()}: {what} {t.describe()} has shape {list(data.shape)}, expected [{n}]")
    return t, data


def _state(ctx: Ctx, op: Op, position: int, batch: int, n: int, dtype, what: str):
    if not _present(op, position):
        raise ModelFormatError(f"{op.describe()}: the {what} input is missing")
    t = ctx.tensor(op, position)
    if not t.is_variable or t.index in ctx.constants:
        raise UnsupportedOpError(f"{op.describe()}: {what} {t.describe()} must be a variable tensor without "
                                 "initial data")
    if t.dtype != dtype:
        raise UnsupportedOpError(f"{op.describe()}: {what} {t.describe()} has type {t.dtype}, expected "
                                 f"{np.dtype(dtype)}")
    declared = int(np.prod(t.shape, dtype=np.int64))
    # after a batch resize the state takes one row per sequence (the file declares it for its own batch)
    if declared != batch * n and not (ctx.batch_changed and declared > 0 and declared % n == 0):
        raise ModelFormatError(f"{op.describe()}: {what} {t.describe()} has shape {list(t.shape)}, expected "
                               f"{batch * n} elements ({batch} x {n})")
    ctx.shapes[t.index] = (batch, n)
    return t


def prepare_unidirectional_sequence_lstm(ctx: Ctx, op: Op) -> Step:
    """Everything LiteRT's lstm.cc / unidirectional_sequence_lstm.cc precomputes at Prepare, done once: the
    effective gate scales (float32 products, then QuantizeMultiplier), the zero-point-folded int32 biases, the
    quantized cell clip, the power-of-two cell scale, and the gemmlowp int16 sigmoid / tanh tables.

    State: the op's output-state (h) and cell-state (c) inputs are variable tensors.  As in LiteRT they persist
    across invokes (a second invoke continues the sequence) and start at "zero": 0.0 for float (and hybrid), the
    zero point for int8 h, 0 for int16 c.  `Interpreter.reset_variables()` puts them back, as LiteRT's
    reset_all_variables()."""
    what = op.describe()
    if len(op.inputs) not in (20, 24):
        raise ModelFormatError(f"{what}: {len(op.inputs)} inputs, expected 20 or 24")
    for position in (INPUT,) + INPUT_WEIGHTS[1:] + RECURRENT_WEIGHTS[1:] + GATE_BIASES[1:]:
        if not _present(op, position):
            raise ModelFormatError(f"{what}: required input {position} is missing")
    if not _present(op, INPUT_WEIGHTS[0]) or not _present(op, RECURRENT_WEIGHTS[0]):
        raise UnsupportedOpError(f"{what}: CIFG LSTM (no input gate) is not supported; TensorFlow's converter "
                                 "does not emit it for Keras layers")
    if any(_present(op, k) for k in PEEPHOLE_WEIGHTS):
        raise UnsupportedOpError(f"{what}: peephole connections are not supported")
    if _present(op, PROJECTION_WEIGHTS) or _present(op, PROJECTION_BIAS):
        raise UnsupportedOpError(f"{what}: LSTM with projection is not supported")
    if any(_present(op, k) for k in LAYER_NORM):
        raise UnsupportedOpError(f"{what}: layer-norm LSTM is not supported")
    o = op.options
    if o.get("diagonal_recurrent_tensors", False):
        raise UnsupportedOpError(f"{what}: diagonal recurrent weights are not supported")
    cell_clip, proj_clip = float(o.get("cell_clip", 0.0)), float(o.get("proj_clip", 0.0))
    if not (math.isfinite(cell_clip) and cell_clip >= 0 and math.isfinite(proj_clip) and proj_clip >= 0):
        raise ModelFormatError(f"{what}: cell_clip {cell_clip} and proj_clip {proj_clip} must be finite and >= 0")
    time_major = bool(o.get("time_major", False))

    x, y = ctx.tensor(op, INPUT), ctx.tensor(op, 0, "output")
    xs = ctx.shape(x)
    if len(xs) != 3:
        raise UnsupportedOpError(f"{what}: input {x.describe()} has shape {list(xs)}; a 3-D sequence is supported")
    steps, batch = (xs[0], xs[1]) if time_major else (xs[1], xs[0])
    n_input = xs[2]
    wf = ctx.tensor(op, INPUT_WEIGHTS[1])
    if wf.data is None or wf.data.ndim != 2:
        raise ModelFormatError(f"{what}: input-to-forget weights must be a constant 2-D tensor")
    n_cell = int(wf.data.shape[0])
    if n_cell <= 0 or n_input <= 0 or steps <= 0 or batch <= 0:
        raise ModelFormatError(f"{what}: empty LSTM (cells {n_cell}, input {list(xs)})")
    kind = arithmetic_kind(x.dtype, what)
    wdtype = np.int8 if kind == "int8" else np.float32
    if kind == "f32" and wf.data.dtype != np.float32:
        return prepare_hybrid_lstm(ctx, op, steps, batch, n_input, n_cell, time_major, cell_clip)
    wx = [_weights(ctx, op, k, n_cell, n_input, wdtype, f"input-to-{g} weights")
          for k, g in zip(INPUT_WEIGHTS, GATES)]
    wh = [_weights(ctx, op, k, n_cell, n_cell, wdtype, f"recurrent-to-{g} weights")
          for k, g in zip(RECURRENT_WEIGHTS, GATES)]
    bias_dtype = np.int32 if kind == "int8" else np.float32
    biases = [_vector(ctx, op, k, n_cell, bias_dtype, f"{g} gate bias")[1] for k, g in zip(GATE_BIASES, GATES)]
    state_dtype = x.dtype
    h = _state(ctx, op, OUTPUT_STATE, batch, n_cell, state_dtype, "output state")
    c = _state(ctx, op, CELL_STATE, batch, n_cell, np.int16 if kind == "int8" else np.float32, "cell state")
    if y.dtype != x.dtype:
        raise UnsupportedOpError(f"{what}: output type {y.dtype} differs from input type {x.dtype}")
    ctx.set_output(op, 0, (steps, batch, n_cell) if time_major else (batch, steps, n_cell))
    # AVX-512 VNNI multiplies uint8 by int8: activations enter as x + 128, the biases take -128 * sum(w)
    quads = kind == "int8" and CONFIG.lstm_u8s8
    pack = pack_f32 if kind == "f32" else (pack_u8s8 if quads else pack_s8)
    # float, tanh, AVX-512: the step fuses the recurrent GEMV with the cells and wants the gates interleaved
    act = FLOAT_ACTIVATIONS.get(o.get("fused_activation_function", 0)) if kind == "f32" else None
    interleaved = act == 4 and CONFIG.float_lstm_fused
    stack = interleave_gates if interleaved else (lambda parts: np.concatenate(parts, axis=0))
    wx_all = ctx.keep_array(pack(stack([d for _, d in wx])))
    wh_all = ctx.keep_array(pack(stack([d for _, d in wh])))
    gates = 4 * n_cell
    padded = padded_columns(gates)
    macs = batch * steps * gates * (n_input + n_cell)
    ints = dict(batch=batch, steps=steps, inputs=n_input, cells=n_cell, time_major=int(time_major))

    if kind == "f32":
        if act is None:
            raise UnsupportedOpError(f"{what}: activation {o.get('fused_activation_function')} is not supported")
        stacked = stack([np.asarray(v, np.float32) for v in biases])
        bias_all = ctx.keep_array(np.pad(stacked, (0, padded - stacked.shape[0])))
        scratch = (steps * batch + 1) * padded * 4
        if scratch > MAX_SCRATCH_BYTES:
            raise UnsupportedOpError(f"{what}: {steps} steps x {batch} sequences x {gates} gates need {scratch} "
                                     f"bytes of scratch (at most {MAX_SCRATCH_BYTES})")

        def make_f(addr):
            ptrs = dict(x=addr(x.index), y=addr(y.index), h_state=addr(h.index), c_state=addr(c.index),
                        wx=address(wx_all), wh=address(wh_all), bias=address(bias_all), scratch=addr("scratch"))
            return (ptrs, dict(ints, activation=act, interleaved=int(interleaved)),
                    dict(cell_clip=float(Q.F32(cell_clip))))
        return Step(op, "lstm_f32", make_f, scratch, macs)

    # ----- integer 8x8_16 ------------------------------------------------------------------------------------
    s_in, zp_in = qparams(x, op)
    s_h, zp_h = qparams(h, op)
    if c.quant is None or c.quant.per_axis or not c.quant.scale[0] > 0:
        raise ModelFormatError(f"{what}: cell state {c.describe()} needs a per-tensor quantization scale")
    cell_scale = _checked_log2(float(c.quant.scale[0]))
    if cell_scale is None:
        raise ModelFormatError(f"{what}: cell state scale {float(c.quant.scale[0])} is not a power of two")
    if not 0 <= 30 + cell_scale <= 31 or 15 + cell_scale > 6:
        raise UnsupportedOpError(f"{what}: cell state scale 2^{cell_scale} is outside the supported 2^-30..2^-9")
    # below 2^-15 LiteRT's tanh of the cell state is a no-op that leaves the input gate in its buffer
    stale_tanh = int(15 + cell_scale < 0)
    if len(op.intermediates) != 5:
        raise ModelFormatError(f"{what}: an integer LSTM needs 5 intermediate tensors, the op has "
                               f"{len(op.intermediates)}")
    hidden = ctx.graph.tensors[op.intermediates[4]]
    if hidden.quant is None or hidden.quant.per_axis:
        raise ModelFormatError(f"{what}: the hidden-state intermediate {hidden.describe()} has no per-tensor "
                               "quantization")
    s_hidden, zp_hidden = hidden.quant.scalar()
    if not (s_hidden > 0 and math.isfinite(s_hidden)) or not -128 <= zp_hidden <= 127:
        raise ModelFormatError(f"{what}: hidden-state intermediate quantization ({s_hidden}, {zp_hidden}) is "
                               "invalid")

    def weight_scale(t):
        if t.quant is None or t.quant.per_axis:
            raise ModelFormatError(f"{what}: int8 weights {t.describe()} need a per-tensor quantization scale")
        s, zp = t.quant.scalar()
        if zp != 0 or not s > 0:
            raise UnsupportedOpError(f"{what}: weights {t.describe()} must be symmetric (zero point 0, scale > 0)")
        return Q.F32(s)

    f_in, f_h, gate_scale = Q.F32(s_in), Q.F32(s_h), Q.F32(GATE_SCALE)
    # float32 arithmetic, in the reference's order: weight_scale * state_scale / intermediate_scale
    reals = [weight_scale(t) * f_in / gate_scale for t, _ in wx] + [weight_scale(t) * f_h / gate_scale for t, _ in wh]
    hidden_real = Q.F32(2.0 ** -15) / Q.F32(s_hidden) * Q.F32(2.0 ** -15)
    mult, shift = Q.quantize_multipliers([float(r) for r in reals], ctx.rounding)
    hm, hs = Q.quantize_multiplier(float(hidden_real), ctx.rounding)

    def folded(w: np.ndarray, bias, zp: int) -> np.ndarray:
        b = np.zeros(n_cell, np.int64) if bias is None else bias.astype(np.int64)
        v = b + (-zp - (128 if quads else 0)) * w.astype(np.int64).sum(axis=1)
        if np.any(np.abs(v) >= 2 ** 31):
            raise ModelFormatError(f"{what}: biases and weights overflow the int32 accumulator")
        return v.astype(np.int32)
    bias_x = ctx.keep_array(np.concatenate([folded(d, b, zp_in) for (_, d), b in zip(wx, biases)]))
    bias_h = ctx.keep_array(np.concatenate([folded(d, None, zp_h) for _, d in wh]))
    # worst-case |sum| must fit int32 like the reference's accumulator
    if 128 * 128 * max(n_input, n_cell) + 2 ** 30 >= 2 ** 31:
        raise UnsupportedOpError(f"{what}: {max(n_input, n_cell)}-deep dot products may overflow int32")
    mult_a, shift_a = ctx.keep_array(mult), ctx.keep_array(shift)
    clip_q = 0
    if cell_clip > 0:
        clip_q = int(np.clip(Q.F32(cell_clip) / Q.F32(c.quant.scale[0]), -32768.0, 32767.0))   # truncates
    halves = [_table("logistic", 3), _table("tanh", 3), _table("tanh", max(15 + cell_scale, 0))]
    tables = [t for t, _ in halves]
    ctx.keep.extend(tables)
    ints.update(cell_shift=30 + cell_scale, cell_clip=clip_q, hidden_mult=hm, hidden_shift=hs, hidden_zp=zp_hidden,
                mode=ctx.rounding, stale_tanh=stale_tanh, quads=int(quads), table_limits=[limit for _, limit in halves])
    rows = steps * batch
    scratch = rows * gates * 2 + padded * 4
    if scratch > MAX_SCRATCH_BYTES:
        raise UnsupportedOpError(f"{what}: {steps} steps x {batch} sequences x {gates} gates need {scratch} bytes "
                                 f"of scratch (at most {MAX_SCRATCH_BYTES})")

    def make(addr):
        ptrs = dict(x=addr(x.index), y=addr(y.index), h_state=addr(h.index), c_state=addr(c.index),
                    wx=address(wx_all), wh=address(wh_all), bias_x=address(bias_x), bias_h=address(bias_h),
                    mult=address(mult_a), shift=address(shift_a), tables=[address(t) for t in tables],
                    scratch=addr("scratch"))
        return ptrs, ints, {}
    return Step(op, "lstm_int8", make, scratch, macs)


EIGEN_PACKET_FLOATS = 4          # LiteRT's x86 wheel vectorizes Eigen with SSE: 4-float packets, 16-byte aligned
HYBRID_GATE_SLOTS = (0, 2, 3)     # EvalHybrid's scratch: input, cell, forget, output gate; here i, f, o
# the schema's fused activations (NONE, RELU, RELU_N1_TO_1, RELU6, TANH, SIGN_BIT); LiteRT reads others as NONE
HYBRID_ACTIVATIONS = (0, 1, 2, 3, 4, 5)


def eigen_scalar_lanes(n_cell: int, batch: int, time_major: bool) -> np.ndarray:
    """uint8 [3, batch, n_cell]: 1 where LiteRT's sigmoid of the input, forget and output gates runs Eigen's
    one-element path, whose logistic is e / (1 + e) with libm's exp instead of the packet polynomial.  Eigen's linear traversal of a vector takes
    single elements up to the first 16-byte boundary of the buffer and after its last whole packet; LiteRT calls
    it per (batch, step) row of n_cell in batch-major order and on all batch rows at once in time-major order,
    on gate buffers at slot * n_cell * batch floats of a 64-byte aligned scratch tensor."""
    lanes = np.zeros((len(HYBRID_GATE_SLOTS), batch, n_cell), np.uint8)
    for k, slot in enumerate(HYBRID_GATE_SLOTS):
        calls = [(slot * n_cell * batch, batch, slice(None))] if time_major else \
            [(slot * n_cell * batch + b * n_cell, 1, slice(b, b + 1)) for b in range(batch)]
        for offset, rows, where in calls:
            n = rows * n_cell
            start = min(n, -offset % EIGEN_PACKET_FLOATS)
            end = start + (n - start) // EIGEN_PACKET_FLOATS * EIGEN_PACKET_FLOATS
            single = np.ones(n, np.uint8)
            single[start:end] = 0
            lanes[k, where] = single.reshape(rows, n_cell)
    return lanes


def prepare_hybrid_lstm(ctx: Ctx, op: Op, steps: int, batch: int, n_input: int, n_cell: int, time_major: bool,
                        cell_clip: float) -> Step:
    """Hybrid ("dynamic-range") LSTM: float32 input, output and state, int8 weights with one scale per tensor,
    float32 biases, bit-identical to LiteRT's EvalHybrid (arithmetic in cython_ops/include/em_lstm_hybrid.h).
    The inputs common to every variant were checked by prepare_unidirectional_sequence_lstm.

    LiteRT reads each weight tensor's single (legacy) scale: a tensor with per-channel scales has none, so
    LiteRT multiplies its products by 0.  Such models are refused rather than run differently from it.  The
    asymmetric_quantize_inputs option picks how x and h are quantized on the fly (em_hybrid.h's quantizers);
    with it the products take -zero_point * row sum of the weights, summed here once."""
    what = op.describe()
    o = op.options
    act = o.get("fused_activation_function", 0)
    if act not in HYBRID_ACTIVATIONS:
        raise UnsupportedOpError(f"{what}: fused activation {act} is not one of TFLite's (0..5)")
    x, y = ctx.tensor(op, INPUT), ctx.tensor(op, 0, "output")
    wx = [_weights(ctx, op, k, n_cell, n_input, np.int8, f"input-to-{g} weights")
          for k, g in zip(INPUT_WEIGHTS, GATES)]
    wh = [_weights(ctx, op, k, n_cell, n_cell, np.int8, f"recurrent-to-{g} weights")
          for k, g in zip(RECURRENT_WEIGHTS, GATES)]
    scales = []
    for t, _ in wx + wh:
        s = hybrid_weight_scales(op, t, n_cell, 0, "weights")
        if s.size != 1:
            raise UnsupportedOpError(f"{what}: weights {t.describe()} have {s.size} per-channel scales; LiteRT's "
                                     "hybrid LSTM reads one scale per weight tensor (none for per-channel ones, "
                                     "so it drops their products): quantize the LSTM weights per tensor")
        scales.append(s[0])
    biases = [_vector(ctx, op, k, n_cell, np.float32, f"{g} gate bias")[1] for k, g in zip(GATE_BIASES, GATES)]
    h = _state(ctx, op, OUTPUT_STATE, batch, n_cell, np.float32, "output state")
    c = _state(ctx, op, CELL_STATE, batch, n_cell, np.float32, "cell state")
    if y.dtype != np.float32:
        raise UnsupportedOpError(f"{what}: hybrid LSTM output {y.describe()} has type {y.dtype}, expected float32")
    # |int8 * int8| sums and the zero-point term must fit LiteRT's int32 accumulator
    if 2 * 128 * 128 * max(n_input, n_cell) >= 2 ** 31:
        raise UnsupportedOpError(f"{what}: {max(n_input, n_cell)}-deep dot products may overflow int32")
    ctx.set_output(op, 0, (steps, batch, n_cell) if time_major else (batch, steps, n_cell))
    wx_cat = np.concatenate([d for _, d in wx], axis=0)
    wh_cat = np.concatenate([d for _, d in wh], axis=0)
    keep = ctx.keep_array
    quads = CONFIG.lstm_u8s8
    pack = pack_u8s8 if quads else pack_s8
    wx_all, wh_all = keep(pack(wx_cat)), keep(pack(wh_cat))
    rows_x = keep(wx_cat.astype(np.int64).sum(axis=1).astype(np.int32))
    rows_h = keep(wh_cat.astype(np.int64).sum(axis=1).astype(np.int32))
    scale_all = keep(np.array(scales, np.float32))
    bias_all = keep(np.concatenate(biases).astype(np.float32))
    single = eigen_scalar_lanes(n_cell, batch, time_major)
    lanes = keep(np.concatenate([single.ravel(), single.any(axis=(0, 2)).astype(np.uint8)]))
    scratch = int(lstm_hybrid_scratch(batch, steps, n_input, n_cell))
    if scratch > MAX_SCRATCH_BYTES:
        raise UnsupportedOpError(f"{what}: {steps} steps x {batch} sequences x {4 * n_cell} gates need {scratch} "
                                 f"bytes of scratch (at most {MAX_SCRATCH_BYTES})")
    ints = dict(batch=batch, steps=steps, inputs=n_input, cells=n_cell, time_major=int(time_major), activation=act,
                asymmetric=int(bool(o.get("asymmetric_quantize_inputs"))), quads=int(quads))
    macs = batch * steps * 4 * n_cell * (n_input + n_cell)

    def make(addr):
        ptrs = dict(x=addr(x.index), y=addr(y.index), h_state=addr(h.index), c_state=addr(c.index),
                    wx=address(wx_all), wh=address(wh_all), bias=address(bias_all), row_sums_x=address(rows_x),
                    row_sums_h=address(rows_h), weight_scales=address(scale_all), scratch=addr("scratch"),
                    lanes=address(lanes))
        return ptrs, ints, dict(cell_clip=float(Q.F32(cell_clip)))
    return Step(op, "lstm_hybrid", make, scratch, macs)


OPS = {"UNIDIRECTIONAL_SEQUENCE_LSTM": OpSpec(prepare_unidirectional_sequence_lstm, max_version=3)}
