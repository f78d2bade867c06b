"""ONNX_RNN (ONNX LSTM / GRU / RNN as converters/onnx/recurrent.py emits them) with onnxruntime's semantics, in
float32 or int8; kernels: cython_ops/include/em_onnx_rnn.h."""
from __future__ import annotations

import math

import numpy as np

from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import Op
from edgeml.ir import RNN_ACTIVATIONS, RNN_DEFAULT_ACTIVATIONS, rnn_state_within_one
from edgeml.runtime.kernels import CONFIG
from edgeml.runtime.layouts import ONNX_RNN_MAX_ACTS
from edgeml.runtime.ops.common import qparams
from edgeml.runtime.ops.lstm import MAX_SCRATCH_BYTES
from edgeml.runtime.packing import interleave_gates, pack_f32, pack_s8, pack_u8s8, padded_columns
from edgeml.runtime.plan import Ctx, OpSpec, Step, address


F32 = np.float32
STATE_LEVELS = 127          # the int8 path quantizes h (and GRU's r * h), all within (-1, 1), as round(127 h)
GATE_COUNT = {"LSTM": 4, "GRU": 3, "RNN": 1}
CELL_CODE = {"LSTM": 0, "GRU": 1, "RNN": 2}
X, W, R, B, SEQUENCE_LENS, INITIAL_H, INITIAL_C, P = range(8)
# the kernel's activation codes (em_onnx_rnn.h EM_RNN_SIGMOID..), in the IR's order
ACTIVATION_CODES = {name: code for code, name in enumerate(RNN_ACTIVATIONS)}


def _present(op: Op, position: int) -> bool:
    return position < len(op.inputs) and op.inputs[position] >= 0


def _const_f32(ctx: Ctx, op: Op, position: int, shape: tuple, what: str) -> np.ndarray:
    t = ctx.tensor(op, position)
    data = ctx.const(t, f"{op.describe()} {what}")
    if data.dtype != np.float32:
        raise UnsupportedOpError(f"{op.describe()}: {what} {t.describe()} has type {data.dtype}, expected float32")
    if tuple(data.shape) != tuple(shape):
        raise ModelFormatError(f"{op.describe()}: {what} {t.describe()} has shape {list(data.shape)}, expected "
                               f"{list(shape)}")
    if not np.all(np.isfinite(data)):
        raise ModelFormatError(f"{op.describe()}: {what} {t.describe()} holds NaN or infinity")
    return data


def _const_s8(ctx: Ctx, op: Op, position: int, shape: tuple, what: str) -> tuple:
    """int8 weights with symmetric scales per tensor or per gate row (axis 1), as float32 [rows]."""
    t = ctx.tensor(op, position)
    data = ctx.const(t, f"{op.describe()} {what}")
    if data.dtype != np.int8 or tuple(data.shape) != tuple(shape):
        raise ModelFormatError(f"{op.describe()}: {what} {t.describe()} must be int8 of shape {list(shape)}")
    q = t.quant
    if q is None or np.any(q.zero_point != 0) or (q.per_axis and (q.axis != 1 or q.scale.size != shape[1])):
        raise UnsupportedOpError(f"{op.describe()}: int8 {what} {t.describe()} needs symmetric scales per tensor "
                                 "or per gate row")
    scale = np.broadcast_to(q.scale.astype(np.float32), (shape[1],)).copy()
    if not np.all((scale > 0) & np.isfinite(scale)):
        raise ModelFormatError(f"{op.describe()}: {what} scales must be positive and finite")
    return data, scale


def prepare_onnx_rnn(ctx: Ctx, op: Op) -> Step:
    """Validates, packs and schedules one ONNX_RNN op.

    IR op ONNX_RNN: inputs [X, W, R, B, sequence_lens, initial_h, initial_c, P] in ONNX order (-1 when absent;
    W, R, B, P constant; sequence_lens constant or an int32 [batch] graph input), outputs [Y, Y_h] (+ [Y_c] for
    LSTM); options cell ("LSTM" | "GRU" | "RNN"), direction, layout, clip (0: none), input_forget,
    linear_before_reset, and activations / activation_alpha / activation_beta: one lower-case name of
    edgeml.ir.RNN_ACTIVATIONS and its alpha, beta per function and direction (f, g[, h] forward, then
    backward), as the reader resolved them from onnxruntime's rules (default: RNN_DEFAULT_ACTIVATIONS).
    At load: W and R are split per direction and packed for em_lstm_fdots in ONNX's gate order (LSTM i o f c,
    GRU z r h); the biases Wb + Rb are added once (GRU with linear_before_reset keeps Rbh apart, as the formula
    needs it inside r * (.)).  Unlike TFLite's LSTM, the state does not persist: every invoke starts from
    initial_h / initial_c (or zeros), as onnxruntime does.  Sequence lengths must lie in 0..T (0: zero outputs, as
    onnxruntime); constant ones are checked here, graph-input ones by the kernel on every run, which reports a bad
    value through a status word (Step.check) that Interpreter.invoke raises as InputError.

    int8 (kernel onnx_rnn_s8; the reader picks it when X comes from a per-tensor int8 / uint8 DequantizeLinear and W,
    R from DequantizeLinear of int8 constants with zero point 0, per tensor or per gate row; anything else runs in
    float on the dequantized values).  The scheme:
      * input projection: int8 x_q times int8 W in int32 for all steps at once (one GEMM), the zero point folded as
        -zp_x * sum_k w in int32; then (float)acc * (s_x * s_w[row]) + (Wb + Rb) in float32;
      * recurrence: h (GRU without linear_before_reset: r * h) is quantized to int8 as round_half_even(127 h),
        clamped to +-127 - the full range, since the cell's h lies in [-1, 1] (o * tanh, convex mixes of tanh
        values, tanh, and the like for other activations: edgeml.ir.rnn_state_within_one; the reader runs other
        lists in float; an initial_h beyond +-1 saturates in this product only); R.h_q in int32, scaled by
        s_r[row] / 127;
      * gates, activations (sigmoid / tanh: em_lstm.h polynomials), cell state and outputs in float32.
    So the weights are stored and multiplied as int8 (a quarter of the float bytes, int8 dot-product
    instructions); against onnxruntime on the same QDQ model the only extra rounding is h's 1/127 step.
    """
    what = op.describe()
    o = op.options
    cell = o.get("cell")
    if cell not in GATE_COUNT:
        raise ModelFormatError(f"{what}: unknown recurrent cell {cell!r}")
    n_gates = GATE_COUNT[cell]
    direction = o.get("direction", "forward")
    if direction not in ("forward", "reverse", "bidirectional"):
        raise ModelFormatError(f"{what}: direction {direction!r} is not forward, reverse or bidirectional")
    n_dir = 2 if direction == "bidirectional" else 1
    layout = int(o.get("layout", 0))
    clip = float(o.get("clip", 0.0))
    if layout not in (0, 1) or not (math.isfinite(clip) and clip >= 0):
        raise ModelFormatError(f"{what}: layout {layout} / clip {clip} is invalid")
    input_forget = int(bool(o.get("input_forget", 0))) if cell == "LSTM" else 0
    lbr = int(bool(o.get("linear_before_reset", 0))) if cell == "GRU" else 0
    n_out = 3 if cell == "LSTM" else 2
    if len(op.outputs) != n_out or len(op.inputs) > 8 or not _present(op, X) or not _present(op, W) \
            or not _present(op, R):
        raise ModelFormatError(f"{what}: {len(op.inputs)} inputs / {len(op.outputs)} outputs do not fit {cell}")
    if cell != "LSTM" and (_present(op, INITIAL_C) or _present(op, P)):
        raise ModelFormatError(f"{what}: {cell} has no initial_c or P input")

    x = ctx.tensor(op, X)
    xs = ctx.shape(x)
    if x.dtype not in (np.float32, np.int8):
        raise UnsupportedOpError(f"{what}: input {x.describe()} has type {x.dtype}; float32 and int8 are supported")
    quantized = x.dtype == np.int8
    if len(xs) != 3:
        raise ModelFormatError(f"{what}: input {x.describe()} has shape {list(xs)}; a 3-D sequence is needed")
    steps, batch = (xs[1], xs[0]) if layout else (xs[0], xs[1])
    n_in = xs[2]
    wt = ctx.tensor(op, W)
    if wt.data is None or wt.data.ndim != 3 or wt.data.shape[1] % n_gates:
        raise ModelFormatError(f"{what}: W must be a constant [directions, {n_gates} * hidden, input] tensor")
    hidden = wt.data.shape[1] // n_gates
    if steps <= 0 or batch <= 0 or n_in <= 0 or hidden <= 0:
        raise ModelFormatError(f"{what}: empty recurrence (input {list(xs)}, hidden size {hidden})")
    if int(o.get("hidden_size", hidden)) != hidden:
        raise ModelFormatError(f"{what}: hidden_size {o.get('hidden_size')} does not match W's {hidden}")
    gh = n_gates * hidden
    if quantized:
        w, w_scale = _const_s8(ctx, op, W, (n_dir, gh, n_in), "W")
        r, r_scale = _const_s8(ctx, op, R, (n_dir, gh, hidden), "R")
        s_x, zp_x = qparams(x, op)
        if not (s_x > 0 and math.isfinite(s_x)) or max(n_in, hidden) >= 1 << 16:
            raise UnsupportedOpError(f"{what}: input scale {s_x} or {max(n_in, hidden)}-deep sums are not supported")
    else:
        w = _const_f32(ctx, op, W, (n_dir, gh, n_in), "W")
        r = _const_f32(ctx, op, R, (n_dir, gh, hidden), "R")
    bias = _const_f32(ctx, op, B, (n_dir, 2 * gh), "B") if _present(op, B) else np.zeros((n_dir, 2 * gh), np.float32)
    n_act = len(RNN_DEFAULT_ACTIVATIONS[cell]) * n_dir
    names = tuple(o.get("activations", RNN_DEFAULT_ACTIVATIONS[cell] * n_dir))
    alphas = [float(a) for a in o.get("activation_alpha", [0.0] * n_act)]
    betas = [float(b) for b in o.get("activation_beta", [0.0] * n_act)]
    if len(names) != n_act or len(alphas) != n_act or len(betas) != n_act \
            or any(n not in ACTIVATION_CODES for n in names) or not np.all(np.isfinite(alphas + betas)):
        raise ModelFormatError(f"{what}: activations {list(names)} (alpha {alphas}, beta {betas}) are not "
                               f"{n_act} of {sorted(ACTIVATION_CODES)} with finite alpha and beta")
    if quantized and not rnn_state_within_one(cell, names, alphas):
        raise UnsupportedOpError(f"{what}: activations {list(names)} let h leave [-1, 1]; the int8 kernel "
                                 "needs it within (run the op in float)")
    lens = lens_input = check = None
    if _present(op, SEQUENCE_LENS):
        lt = ctx.tensor(op, SEQUENCE_LENS)
        if lt.index in ctx.constants:
            lens = ctx.const(lt, f"{what} sequence_lens")
            if lens.dtype.kind not in "iu" or lens.shape != (batch,):
                raise ModelFormatError(f"{what}: sequence_lens {lt.describe()} must be {batch} integers")
            if np.any(lens < 0) or np.any(lens > steps):
                raise ModelFormatError(f"{what}: sequence_lens {lens.tolist()} must lie in 0..{steps}")
            lens = ctx.keep_array(lens.astype(np.int32))
        else:        # read at run time: the kernel checks each value and reports a bad one in `status`
            if lt.dtype != np.int32 or tuple(ctx.shape(lt)) != (batch,):
                raise ModelFormatError(f"{what}: sequence_lens {lt.describe()} must be int32 of shape [{batch}]")
            lens_input = lt
        def check(status):           # the kernel's int32 word: the first bad length, or 0
            value = int(status[:4].view(np.int32)[0])
            return f"{what}: sequence_lens holds {value}; every length must lie in 0..{steps}" if value else None
    state_shape = (batch, n_dir, hidden) if layout else (n_dir, batch, hidden)
    states = []
    for position, name in ((INITIAL_H, "initial_h"), (INITIAL_C, "initial_c")):
        if not _present(op, position):
            states.append(None)
            continue
        t = ctx.tensor(op, position)
        if t.dtype != np.float32 or tuple(ctx.shape(t)) != state_shape:
            raise ModelFormatError(f"{what}: {name} {t.describe()} must be float32 of shape {list(state_shape)}")
        states.append(t)
    peep = None
    if _present(op, P):
        peep = ctx.keep_array(_const_f32(ctx, op, P, (n_dir, 3 * hidden), "P"))

    gp, hp = padded_columns(gh), padded_columns(hidden)
    rows_r = 2 * hidden if cell == "GRU" else gh          # GRU: z and r rows; Rh is separate
    # AVX-512 VNNI multiplies uint8 by int8: activations enter as a + 128, the corrections take -128 * sum(w)
    quads = quantized and CONFIG.lstm_u8s8
    pack = (pack_u8s8 if quads else pack_s8) if quantized else pack_f32
    # the plain float LSTM on AVX-512 (em_onnx_rnn_run's fused case) runs em_lstm_fstep_avx512, which wants the
    # gates interleaved by unit in TFLite's order i, f, g, o (ONNX stacks them i, o, f, c)
    fstep = (cell == "LSTM" and not quantized and clip == 0.0 and peep is None and not input_forget
             and all(names[3 * d:3 * d + 3] == ("sigmoid", "tanh", "tanh") for d in range(n_dir))
             and CONFIG.float_lstm_fused)

    def order(a: np.ndarray) -> np.ndarray:         # [n_gates * hidden, ...] of one direction, packing order
        if not fstep:
            return a
        i, o_, f, c = (a[g * hidden:(g + 1) * hidden] for g in range(4))
        return interleave_gates([i, f, c, o_])
    wx = ctx.keep_array(np.concatenate([pack(order(w[d])).reshape(-1) for d in range(n_dir)]))
    wh = ctx.keep_array(np.concatenate([pack(order(r[d, :rows_r])).reshape(-1) for d in range(n_dir)]))
    wb, rb = bias[:, :gh], bias[:, gh:]
    folded = (wb + rb).astype(np.float32)
    if fstep:
        folded = np.stack([order(folded[d]) for d in range(n_dir)])
    rh = rbh = np.zeros(1, np.float32)
    if cell == "GRU":
        rh = ctx.keep_array(np.concatenate([pack(r[d, 2 * hidden:]).reshape(-1) for d in range(n_dir)]))
        if lbr:
            folded[:, 2 * hidden:] = wb[:, 2 * hidden:]
            rbh = ctx.keep_array(np.pad(rb[:, 2 * hidden:], ((0, 0), (0, hp - hidden))).reshape(-1))
    bias_in = ctx.keep_array(np.concatenate([np.pad(folded, ((0, 0), (0, gp - folded.shape[1]))).reshape(-1),
                                             np.array([alphas, betas], np.float32).T.reshape(-1)]))
    qblock = np.zeros(1, np.float32)
    if quantized:
        # float32 scales: s_x * s_w per projection row, s_r / 127 per recurrent row (h is int8 at 1/127)
        def rows(scale, lo, hi, padded, factor):
            v = (F32(factor[0]) * scale[lo:hi] / F32(factor[1])).astype(np.float32)
            return np.tile(np.pad(v, (0, padded - (hi - lo))), n_dir)
        parts = [rows(w_scale, 0, gh, gp, (s_x, 1)), rows(r_scale, 0, rows_r, padded_columns(rows_r), (1, STATE_LEVELS))]
        if cell == "GRU":
            parts.append(rows(r_scale, 2 * hidden, gh, hp, (1, STATE_LEVELS)))
        qscale = np.concatenate(parts)
        shift = 128 if quads else 0
        corr = (-int(zp_x) - shift) * w.astype(np.int64).sum(axis=2)          # [n_dir, gh]
        rsum = -shift * r.astype(np.int64).sum(axis=2)
        corrs = [np.pad(corr, ((0, 0), (0, gp - gh))), np.pad(rsum[:, :rows_r], ((0, 0), (0, padded_columns(rows_r) - rows_r)))]
        if cell == "GRU":
            corrs.append(np.pad(rsum[:, 2 * hidden:], ((0, 0), (0, hp - hidden))))
        corr_all = np.concatenate([c.reshape(-1) for c in corrs])
        if np.any(np.abs(corr_all) >= 2 ** 31 - 2 ** 24):
            raise UnsupportedOpError(f"{what}: weights and zero point overflow the int32 sums")
        qblock = ctx.keep_array(np.concatenate([qscale.view(np.int32), corr_all.astype(np.int32)]))

    y_shape = (batch, steps, n_dir, hidden) if layout else (steps, n_dir, batch, hidden)
    ctx.set_output(op, 0, y_shape)
    ctx.set_output(op, 1, state_shape)
    if cell == "LSTM":
        ctx.set_output(op, 2, state_shape)
    scratch = 4 * (n_dir * steps * batch * gp + gp + 5 * hp)
    if scratch > MAX_SCRATCH_BYTES:
        raise UnsupportedOpError(f"{what}: {steps} steps x {batch} sequences x {gp} gates need {scratch} bytes of "
                                 f"scratch (at most {MAX_SCRATCH_BYTES})")
    outs = op.outputs
    codes = [ACTIVATION_CODES[n] for n in names]
    ints = dict(cell=CELL_CODE[cell], steps=steps, batch=batch, inputs=n_in, hidden=hidden, directions=n_dir,
                reverse=int(direction == "reverse"), layout=layout, input_forget=input_forget,
                linear_before_reset=lbr, quads=int(quantized and quads),
                activations=codes + [0] * (ONNX_RNN_MAX_ACTS - len(codes)), fused_step=int(fstep))
    macs = n_dir * batch * steps * gh * (n_in + hidden)

    def make(addr):
        ptrs = dict(x=addr(x.index), y=addr(outs[0]), y_h=addr(outs[1]), y_c=addr(outs[2]) if cell == "LSTM" else 0,
                    w=address(wx), r=address(wh), bias=address(bias_in), rh=address(rh), rbh=address(rbh),
                    initial_h=addr(states[0].index) if states[0] is not None else 0,
                    initial_c=addr(states[1].index) if states[1] is not None else 0,
                    peepholes=address(peep) if peep is not None else 0,
                    sequence_lens=address(lens) if lens is not None else (
                        addr(lens_input.index) if lens_input is not None else 0),
                    scratch=addr("scratch"), quant=address(qblock), status=addr("status"))
        return ptrs, ints, dict(clip=clip)
    return Step(op, "onnx_rnn_s8" if quantized else "onnx_rnn_f32", make, scratch, macs, check=check)


OPS = {"ONNX_RNN": OpSpec(prepare_onnx_rnn)}
