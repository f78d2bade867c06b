"""Graph -> Plan: shape inference, per-op validation and prepacking ("prepare"), arena planning.

Every op's Python side runs here once, at load: it checks types, shapes and quantization, computes the
multipliers and packs weights.  What it hands the engine is a flat list of (kernel, pointers, integers,
floats) steps; the Cython side only computes.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml import numerics as Q
from edgeml.ir import REQUANT_FLOAT as IR_REQUANT_FLOAT, Graph, Op

REQUANT_DOUBLE_SCALE = 2     # round(acc * scale) in double: LiteRT's reference FULLY_CONNECTED
REQUANT_FLOAT = 3            # (float)acc * scale in float32, ties to even: onnxruntime (MLAS)
ALIGN = 64
IM2COL_ROWS = 64      # output pixels gathered per im2col chunk (scratch = rows x K bytes)

ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
PADDING = {0: "SAME", 1: "VALID"}


def _load_kernels() -> dict:
    from cython_ops import activation, conv, elementwise, onnx_ops, pool, reduce, rnn, shape
    table = {}
    for module in (conv, pool, elementwise, shape, reduce, activation, onnx_ops, rnn):
        table.update(module.KERNELS)
    return table


_KERNELS: Optional[dict] = None


def kernel_address(name: str) -> int:
    global _KERNELS
    if _KERNELS is None:
        _KERNELS = _load_kernels()
    return _KERNELS[name]


@dataclass
class Step:
    op: Op
    kernel: str
    make: Callable           # make(addr) -> (pointers, ints, floats); addr(tensor index | "scratch")
    scratch_bytes: int = 0
    macs: int = 0            # multiply-accumulates of CONV / DEPTHWISE / FULLY_CONNECTED; 0 for other ops


@dataclass
class Plan:
    graph: Graph
    shapes: dict             # tensor index -> shape after inference
    steps: list
    offsets: dict            # tensor index -> byte offset in the arena
    arena_bytes: int
    arena: np.ndarray
    constants: dict          # tensor index -> array (weights as read, folded constants)
    keep: list               # packed arrays the kernels point into
    engine: object = None
    lifetimes: dict = None   # tensor index -> (first step, last step) it is live; inputs/outputs span the invoke
    scratch: dict = None     # step index -> (byte offset, bytes) of that step's scratch buffer in the arena
    checks: list = None      # (int32 status word a kernel sets on bad run-time input, message(value)); Ctx.run_check
    input_ranges: dict = None    # graph input index -> (lowest, highest, what): values set_input accepts

    def view(self, t: int) -> np.ndarray:
        """The arena region of tensor t as an array (no copy)."""
        tensor = self.graph.tensors[t]
        shape = self.shapes[t]
        n = int(np.prod(shape, dtype=np.int64)) * tensor.dtype.itemsize
        off = self.offsets[t]
        return self.arena[off:off + n].view(tensor.dtype).reshape(shape)


class Ctx:
    """What prepare functions read and write while the plan is built."""

    def __init__(self, graph: Graph, rounding: int):
        self.graph = graph
        self.rounding = rounding
        self.shapes = {}
        self.constants = {}
        self.keep = []
        self.run_checks = []
        self.batch_changed = False
        self.input_ranges = {}
        for t in graph.tensors:
            if t.data is not None:
                self.constants[t.index] = t.data
                self.shapes[t.index] = t.shape

    # --- tensors -------------------------------------------------------------------------------
    def tensor(self, op: Op, position: int, kind: str = "input"):
        idx = (op.inputs if kind == "input" else op.outputs)
        if position >= len(idx) or idx[position] < 0:
            raise ModelFormatError(f"{op.describe()}: missing {kind} {position}")
        return self.graph.tensors[idx[position]]

    def shape(self, t) -> tuple:
        if t.index not in self.shapes:
            raise ModelFormatError(f"{t.describe()} is read before any op produces it")
        return self.shapes[t.index]

    def const(self, t, what: str) -> np.ndarray:
        if t.index not in self.constants:
            raise UnsupportedOpError(f"{what}: {t.describe()} must be a constant in the model file")
        return self.constants[t.index]

    def set_output(self, op: Op, position: int, shape: tuple):
        t = self.tensor(op, position, "output")
        shape = tuple(int(d) for d in shape)
        if any(d < 0 for d in shape):
            raise ModelFormatError(f"{op.describe()}: inferred a negative dimension for {t.describe()}")
        if not self.batch_changed and t.shape and tuple(t.shape) != shape and int(np.prod(t.shape)) != 0:
            raise ModelFormatError(f"{op.describe()}: {t.describe()} is declared {list(t.shape)} but the op "
                                   f"produces {list(shape)}")
        if t.index in self.constants:
            raise ModelFormatError(f"{op.describe()} writes constant {t.describe()}")
        self.shapes[t.index] = shape

    def keep_array(self, a: np.ndarray) -> np.ndarray:
        """A contiguous copy of `a`, kept alive with the plan, starting on a 64-byte boundary: the kernels' vector
        loads of packed weights then never straddle two cache lines (numpy aligns to 16 bytes only, and a 64 KB
        recurrent matrix read with straddling AVX-512 loads costs up to 20% more, varying run to run)."""
        a = np.asarray(a)
        raw = np.empty(a.nbytes + KEEP_ALIGN, np.uint8)
        start = -raw.__array_interface__["data"][0] % KEEP_ALIGN
        out = raw[start:start + a.nbytes].view(a.dtype).reshape(a.shape)
        out[...] = a
        self.keep.append(out)
        return out

    def run_check(self, status: np.ndarray, message: Callable):
        """A kept int32 word the kernel sets to a nonzero value when an input it reads at run time is out of
        range (the kernel then writes zeros, never out of bounds); Interpreter.invoke raises InputError with
        message(value)."""
        self.run_checks.append((status, message))


KEEP_ALIGN = 64                                  # bytes: one cache line, one AVX-512 vector


def _addr(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


# ----- helpers shared by prepare functions ------------------------------------------------------------

def _qparams(t, op: Op, what: str = "") -> tuple[float, int]:
    if t.quant is None:
        raise ModelFormatError(f"{op.describe()}: int8 {t.describe()} has no quantization parameters")
    if t.quant.per_axis:
        raise ModelFormatError(f"{op.describe()}: {t.describe()} must be quantized per tensor")
    s, zp = t.quant.scalar()
    if not s > 0:
        raise ModelFormatError(f"{op.describe()}: {t.describe()} has quantization scale {s}")
    return s, zp


def _activation(op: Op) -> str:
    code = op.options.get("fused_activation_function", 0)
    act = ACTIVATIONS.get(code)
    if act not in ("NONE", "RELU", "RELU6", "RELU_N1_TO_1"):
        raise UnsupportedOpError(f"{op.describe()}: fused activation {act or code} is not supported")
    return act


def arithmetic_kind(dtype, what: str) -> str:
    """'int8' or 'f32': the kernels' arithmetic for an input of `dtype`."""
    if dtype == np.int8:
        return "int8"
    if dtype == np.float32:
        return "f32"
    raise UnsupportedOpError(f"{what}: input type {dtype} is not supported (int8, float32)")


def _types(ctx: Ctx, op: Op, n_in: int = 1) -> str:
    """The op's arithmetic type ('int8' or 'f32'), checking its data inputs and outputs agree."""
    x = ctx.tensor(op, 0)
    kind = arithmetic_kind(x.dtype, op.describe())
    for k in range(1, n_in):
        other = ctx.tensor(op, k)
        if other.dtype != x.dtype:
            raise UnsupportedOpError(f"{op.describe()}: inputs mix {x.dtype} and {other.dtype}")
    y = ctx.tensor(op, 0, "output")
    if y.dtype != x.dtype:
        raise UnsupportedOpError(f"{op.describe()}: output type {y.dtype} differs from input type {x.dtype}")
    return kind


def _padding(op: Op, in_size: int, k: int, stride: int, dilation: int, axis: Optional[int] = None) -> tuple[int, int]:
    """(output size, leading pad) as TFLite computes them, or from ONNX's explicit pads on spatial `axis`."""
    explicit = op.options.get("explicit_padding")
    if explicit is not None and axis is not None:
        lead, trail = int(explicit[axis]), int(explicit[axis + 2])
        return max((in_size + lead + trail - ((k - 1) * dilation + 1)) // stride + 1, 0), lead
    mode = PADDING.get(op.options.get("padding", 0))
    if mode is None:
        raise ModelFormatError(f"{op.describe()}: unknown padding {op.options.get('padding')}")
    eff = (k - 1) * dilation + 1
    if mode == "SAME":
        out = (in_size + stride - 1) // stride
    else:
        out = (in_size + stride - eff) // stride
    out = max(out, 0)
    total = max((out - 1) * stride + eff - in_size, 0)
    return out, total // 2


def _positive(op: Op, **values):
    for name, v in values.items():
        if not isinstance(v, (int, np.integer)) or v <= 0:
            raise ModelFormatError(f"{op.describe()}: {name} must be a positive integer, got {v}")


def _pad6(shape) -> list:
    shape = list(shape)
    if len(shape) > 6:
        raise UnsupportedOpError(f"rank {len(shape)} > 6 is not supported")
    return [1] * (6 - len(shape)) + shape


def _strides(shape) -> list:
    out, acc = [], 1
    for d in reversed(list(shape)):
        out.append(acc)
        acc *= d
    return list(reversed(out))


def _count(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


# ----- conv-like ops --------------------------------------------------------------------------------

@dataclass
class ColumnRequant:
    """How a conv-like op turns each output column's int32 sum into int8: the kernels' requantization mode
    (em_requant.h) and its per-column parameters.  One kernel serves every mode."""
    mode: int
    mult: np.ndarray          # int32, fixed-point modes
    shift: np.ndarray         # int32
    scale64: np.ndarray       # float64, Q.REQUANT_DOUBLE_SCALE
    scale32: np.ndarray       # float32, Q.REQUANT_FLOAT
    out_zp: int
    act_min: int
    act_max: int

    def arrays(self, ctx: Ctx, width: Optional[int] = None) -> list:
        """[mult, shift, scale64, scale32] kept alive for the kernels, zero-padded to `width` columns."""
        out = []
        for a in (self.mult, self.shift, self.scale64, self.scale32):
            if width is not None and width > a.size:
                a = np.pad(a, (0, width - a.size))
            out.append(ctx.keep_array(a))
        return out


def column_requant(ctx: Ctx, op: Op, x, w, y, n_out: int, axis: int, act: str,
                   fully_connected: bool = False) -> ColumnRequant:
    """Per-column requantization of CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED (TFLite contract)."""
    s_in, _ = _qparams(x, op)
    s_out, out_zp = _qparams(y, op)
    if w.quant is None:
        raise ModelFormatError(f"{op.describe()}: int8 weights {w.describe()} have no quantization")
    ws = w.quant.scale
    if ws.size not in (1, n_out):
        raise ModelFormatError(f"{op.describe()}: {ws.size} weight scales for {n_out} output channels")
    if ws.size > 1 and w.quant.axis != axis:
        raise ModelFormatError(f"{op.describe()}: weights quantized along axis {w.quant.axis}, expected {axis}")
    if np.any(w.quant.zero_point != 0):
        raise UnsupportedOpError(f"{op.describe()}: int8 weights with a non-zero zero point")
    ws = np.broadcast_to(ws, (n_out,)).astype(np.float64)
    if op.options.get("requant") == IR_REQUANT_FLOAT:        # onnxruntime: float32 scales, float requantization
        from edgeml.runtime import onnx_semantics as OS
        scale32 = OS.column_scales(s_in, ws, s_out)
        amin, amax = OS.activation_range(op, act, s_out, out_zp)
        zeros = np.zeros(n_out, np.int32)
        return ColumnRequant(REQUANT_FLOAT, zeros, zeros, scale32.astype(np.float64), scale32, out_zp, amin, amax)
    # effective scale in double: input_scale * filter_scale / output_scale
    real = (np.float64(Q.F32(s_in)) * ws) / np.float64(Q.F32(s_out))
    mult, shift = Q.quantize_multipliers(real, ctx.rounding)
    mode = ctx.rounding
    if fully_connected and ctx.rounding == Q.ROUNDING_MODES["double"]:
        mode = REQUANT_DOUBLE_SCALE      # LiteRT's reference FULLY_CONNECTED rescales in double
    amin, amax = Q.activation_range_int8(act, s_out, out_zp)
    return ColumnRequant(mode, mult, shift, real, real.astype(np.float32), out_zp, amin, amax)


def _bias(ctx: Ctx, op: Op, position: int, n_out: int, dtype) -> Optional[np.ndarray]:
    if position >= len(op.inputs) or op.inputs[position] < 0:
        return None
    b = ctx.tensor(op, position)
    data = ctx.const(b, f"{op.describe()} bias")
    if data.dtype != dtype:
        raise UnsupportedOpError(f"{op.describe()}: bias type {data.dtype}, expected {np.dtype(dtype)}")
    if data.size != n_out:
        raise ModelFormatError(f"{op.describe()}: bias has {data.size} entries for {n_out} output channels")
    return data.reshape(-1)


def _bias_with_zero_point(op: Op, bias, weights_2d: np.ndarray, in_zp: int) -> np.ndarray:
    """bias - in_zp * sum_k w[n, k]: padding taps hold in_zp, so they cancel exactly."""
    n_out = weights_2d.shape[0]
    b = np.zeros(n_out, np.int64) if bias is None else bias.astype(np.int64)
    adj = b - in_zp * weights_2d.astype(np.int64).sum(axis=1)
    if np.any(np.abs(adj) >= 2 ** 31):
        raise ModelFormatError(f"{op.describe()}: bias and weights overflow the int32 accumulator")
    return adj.astype(np.int32)


def _isa() -> str:
    from cython_ops.conv import isa
    return isa()


def _vnni_pack(ctx: Ctx, w2: np.ndarray, bias, in_zp: int, rq: ColumnRequant) -> dict:
    """Weights [N][K] -> 16-column x 4-deep blocks for vpdpbusd; per-column arrays padded to 16."""
    n, k = w2.shape
    np_, kp = -(-n // 16) * 16, -(-k // 4) * 4
    wp = np.zeros((np_, kp), np.int8)
    wp[:n, :k] = w2
    packed = wp.reshape(np_ // 16, 16, kp // 4, 4).transpose(0, 2, 1, 3)
    b = np.zeros(np_, np.int64)
    b[:n] = (0 if bias is None else bias.astype(np.int64)) - (in_zp + 128) * w2.astype(np.int64).sum(axis=1)
    if np.any(np.abs(b) >= 2 ** 31):
        raise ModelFormatError("bias and weights overflow the int32 accumulator")
    rqa = rq.arrays(ctx, np_)
    if n == 8:   # lanes 8-15 repeat columns 0-7: the kernel sums and requantizes two 8-column rows in one vector
        wp[8:, :k] = w2
        packed = wp.reshape(np_ // 16, 16, kp // 4, 4).transpose(0, 2, 1, 3)
        b[8:] = b[:8]
        rqa = [ctx.keep_array(np.tile(a[:8], 2)) for a in rqa]
    return {"w": ctx.keep_array(packed), "bias": ctx.keep_array(b.astype(np.int32)), "rq": rqa, "kp": kp}


CI_DIRECT = 21            # index of the direct flag in the conv kernels' integer layout (em_conv.h)
VNNI_SLACK = 64           # the VNNI gathers store whole 64-byte vectors past a row's end
VNNI_CHUNK_BYTES = 16384  # packed rows gathered per GEMM call: they stay in L1 while every column panel reads them


THREAD_MIN_MACS = 2_000_000   # a conv is split over threads only from this size (a slice costs a wake-up)


def _op_threads(ctx: Ctx, macs: int, rows: int) -> int:
    """Threads for one conv: the interpreter's num_threads from THREAD_MIN_MACS on, 16+ rows each."""
    if macs < THREAD_MIN_MACS:
        return 1
    return max(1, min(getattr(ctx, "num_threads", 1), rows // 16))


def _vnni_chunk(kp: int, rows: int) -> int:
    """Rows per packed chunk: a multiple of 24 (the 3-, 6- and 8-row tiles) that keeps the chunk in L1."""
    chunk = max(24, VNNI_CHUNK_BYTES // kp // 24 * 24)
    return max(1, min(chunk, rows))


DW_MAX_TAPS = 64          # EM_DW_MAX_TAPS in em_conv.h
CI_KP = 23


def _depthwise_vnni_pack(ctx: Ctx, w: np.ndarray, bias, in_zp: int, rq: ColumnRequant, stride_w: int) -> dict:
    """Depthwise weights [taps][C] -> the lanes of em_depthwise_int8_vnni: [channel block][tap group][16][4].
    With stride_w 1 and C dividing 16, a vector holds 16 / C pixels, so lane l is channel l % C."""
    taps, c = w.shape
    pv = 16 // c if stride_w == 1 and c < 16 and 16 % c == 0 else 1
    cb = 1 if pv > 1 else -(-c // 16)
    tg = -(-taps // 4)
    # wide: pixels per 64-byte step of em_depthwise_vector64 (0: 16-lane steps)
    wide = 1 if c % 64 == 0 else (64 // c if stride_w == 1 and 64 % c == 0 and c >= 8 else 0)
    if wide:   # lane j = 16 k + 4 L + i of a 64-byte block holds byte 16 L + 4 k + i, channel (that) % C
        j = np.arange(max(c, 64))
        lane_ch = ((j // 64) * 64 + ((j % 64) // 4 % 4) * 16 + (j % 64) // 16 * 4 + j % 4) % c
        cb = lane_ch.size // 16
    else:
        lane_ch = np.arange(16 * cb) % c if pv > 1 else np.minimum(np.arange(16 * cb), c - 1)
    used = np.ones(lane_ch.size, bool) if pv > 1 or wide else np.arange(16 * cb) < c
    wl = np.zeros((4 * tg, 16 * cb), np.int8)
    wl[:taps] = np.where(used, w[:, lane_ch], 0)
    if wide:   # [64-byte block][tap group][accumulator][16 lanes][4 taps]
        packed = wl.reshape(tg, 4, cb // 4, 4, 16).transpose(2, 0, 3, 4, 1)
    else:      # [16-block][tap group][16 lanes][4 taps]
        packed = wl.reshape(tg, 4, cb, 16).transpose(2, 0, 3, 1)
    b = (np.zeros(c, np.int64) if bias is None else bias.astype(np.int64)) - (in_zp + 128) * w.astype(np.int64).sum(0)
    if np.any(np.abs(b) >= 2 ** 31):
        raise ModelFormatError("depthwise bias and weights overflow the int32 accumulator")
    lanes = [ctx.keep_array(np.where(used, a[lane_ch], 0).astype(a.dtype))
             for a in (b.astype(np.int32), rq.mult, rq.shift, rq.scale64, rq.scale32)]
    return {"w": ctx.keep_array(packed), "bias": lanes[0], "rq": lanes[1:], "pv": pv, "cb": cb, "tg": tg,
            "wide": wide}


def _avx2_pack(ctx: Ctx, w2: np.ndarray, bias_zp: np.ndarray, rq: ColumnRequant) -> dict:
    """Weights [N][K] -> int16 panels of 8 columns x 4-deep groups for vpmaddwd (em_gemm_avx2.h); bias (already
    zero-point corrected) and per-column arrays padded to 8."""
    n, k = w2.shape
    np_, kp = -(-n // 8) * 8, -(-k // 4) * 4
    wp = np.zeros((np_, kp), np.int16)
    wp[:n, :k] = w2
    packed = wp.reshape(np_ // 8, 8, kp // 4, 4).transpose(0, 2, 1, 3)
    return {"w": ctx.keep_array(packed), "bias": ctx.keep_array(np.pad(bias_zp, (0, np_ - n))),
            "rq": rq.arrays(ctx, np_), "kp": kp}


def conv_operands(ctx: Ctx, op: Op):
    """(input, weights, output, input shape, weight array) of a conv-like op, checked to be 4-D."""
    x, w, y = ctx.tensor(op, 0), ctx.tensor(op, 1), ctx.tensor(op, 0, "output")
    xs = ctx.shape(x)
    wdata = ctx.const(w, f"{op.describe()} weights")
    if len(xs) != 4 or wdata.ndim != 4:
        raise ModelFormatError(f"{op.describe()}: expects 4-D input and weights, got {list(xs)} and "
                               f"{list(wdata.shape)}")
    return x, w, y, xs, wdata


def prepare_conv2d(ctx: Ctx, op: Op, depthwise: bool = False) -> Step:
    from edgeml.runtime import hybrid as H
    if H.is_hybrid(ctx, op):
        return H.prepare_depthwise_hybrid(ctx, op) if depthwise else H.prepare_conv2d_hybrid(ctx, op)
    kind = _types(ctx, op)
    x, w, y, xs, wdata = conv_operands(ctx, op)
    if wdata.dtype != x.dtype:
        raise UnsupportedOpError(f"{op.describe()}: weights of type {wdata.dtype} with {x.dtype} input "
                                 "(hybrid models are not supported)")
    o = op.options
    sh, sw = o.get("stride_h", 1), o.get("stride_w", 1)
    dh, dw = o.get("dilation_h_factor", 1), o.get("dilation_w_factor", 1)
    _positive(op, stride_h=sh, stride_w=sw, dilation_h=dh, dilation_w=dw)
    n, ih, iw, ic = xs
    if depthwise:
        _, kh, kw, oc = wdata.shape
        dm = o.get("depth_multiplier", 1) or 1
        if wdata.shape[0] != 1 or ic * dm != oc:
            if ic and oc % ic == 0 and wdata.shape[0] == 1:
                dm = oc // ic          # the options field is unreliable in some converters; shapes decide
            else:
                raise ModelFormatError(f"{op.describe()}: weights {list(wdata.shape)} do not fit input "
                                       f"channels {ic}")
    else:
        oc, kh, kw, wic = wdata.shape
        if wic != ic:
            raise UnsupportedOpError(f"{op.describe()}: weights expect {wic} input channels, input has {ic} "
                                     "(grouped convolution is not supported)")
        dm = 1
    _positive(op, kernel_h=kh, kernel_w=kw, out_channels=oc)
    oh, pt = _padding(op, ih, kh, sh, dh, 0)
    ow, pl = _padding(op, iw, kw, sw, dw, 1)
    ctx.set_output(op, 0, (n, oh, ow, oc))
    act = _activation(op)
    macs = n * oh * ow * oc * kh * kw * (1 if depthwise else ic)
    dims = [n, ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, dh, dw, pt, pl]
    K = kh * kw * ic
    direct = int(not depthwise and kh == 1 and kw == 1 and sh == 1 and sw == 1 and pt == 0 and pl == 0)

    if kind == "int8":
        _, in_zp = _qparams(x, op)
        rq = column_requant(ctx, op, x, w, y, oc, 3 if depthwise else 0, act)
        bias = _bias(ctx, op, 2, oc, np.int32)
        ints = dims + [in_zp, rq.out_zp, rq.act_min, rq.act_max, rq.mode, dm, direct, IM2COL_ROWS]
        if depthwise:
            wk = ctx.keep_array(wdata.reshape(kh * kw, oc))
            if dm == 1 and kh * kw <= DW_MAX_TAPS and _isa() == "avx512vnni":
                dv = _depthwise_vnni_pack(ctx, wdata.reshape(kh * kw, oc), bias, in_zp, rq, sw)
                ihp, iwp = (oh - 1) * sh + (kh - 1) * dh + 1, (ow - 1) * sw + (kw - 1) * dw + 1
                ints_d = ints[:CI_KP] + [dv["pv"], dv["cb"], dv["tg"], dv["wide"]]

                def make_d(addr):
                    return ([addr(x.index), _addr(dv["w"]), _addr(dv["bias"]), addr(y.index)]
                            + [_addr(dv["rq"][0]), _addr(dv["rq"][1]), addr("scratch")]
                            + [_addr(a) for a in dv["rq"][2:]], ints_d, [])
                return Step(op, "depthwise_int8_vnni", make_d, ihp * iwp * ic + VNNI_SLACK, macs)
            bk = ctx.keep_array(np.zeros(oc, np.int32) if bias is None else bias.astype(np.int32))
            scratch = oc * 4
        else:
            w2 = wdata.reshape(oc, K)
            if _isa() == "avx512vnni":
                # how the kernel reads its GEMM rows (em_conv2d_int8_vnni): 1 1x1 rows repacked, 4 implicit GEMM
                # over a padded copy, 0 im2col
                span4 = -(-(kw * ic) // 4) * 4
                ihp, iwp = (oh - 1) * sh + (kh - 1) * dh + 1, (ow - 1) * sw + (kw - 1) * dw + 1
                direct_v = 1 if direct else (4 if dw == 1 else 0)
                if direct_v == 4:     # K ordered by window row, each row padded to a multiple of 4
                    w2v = np.zeros((oc, kh, span4), np.int8)
                    w2v[:, :, :kw * ic] = wdata.reshape(oc, kh, kw * ic)
                    w2v = w2v.reshape(oc, kh * span4)
                else:
                    w2v = w2
                vp = _vnni_pack(ctx, w2v, bias, in_zp, rq)
                rqa = vp["rq"]
                chunk = _vnni_chunk(vp["kp"], oh * ow)
                threads = _op_threads(ctx, macs, oh * ow)
                slice_rows = -(-oh * ow // threads)
                scratch_v = VNNI_SLACK + {1: slice_rows * vp["kp"], 4: ihp * iwp * ic}.get(direct_v,
                                                                                          chunk * vp["kp"])
                scratch_v = -(-scratch_v // ALIGN) * ALIGN
                ints_v = ints[:CI_DIRECT] + [direct_v, chunk, vp["kp"], threads, scratch_v]
                scratch_v *= threads

                def make_v(addr):
                    return ([addr(x.index), _addr(vp["w"]), _addr(vp["bias"]), addr(y.index), _addr(rqa[0]),
                             _addr(rqa[1]), addr("scratch")] + [_addr(a) for a in rqa[2:]], ints_v, [])
                return Step(op, "conv2d_int8_vnni", make_v, scratch_v, macs)
            if _isa() in ("avx2", "avx512"):
                ap = _avx2_pack(ctx, w2, _bias_with_zero_point(op, bias, w2, in_zp), rq)
                rqa2 = ap["rq"]
                chunk2 = min(oh * ow, IM2COL_ROWS)
                ints_a = ints[:CI_DIRECT + 1] + [chunk2, ap["kp"]]
                scratch_a = (0 if direct else -(-chunk2 * K // 32) * 32) + chunk2 * ap["kp"] * 2

                def make_a(addr):
                    return ([addr(x.index), _addr(ap["w"]), _addr(ap["bias"]), addr(y.index), _addr(rqa2[0]),
                             _addr(rqa2[1]), addr("scratch")] + [_addr(a) for a in rqa2[2:]], ints_a, [])
                return Step(op, "conv2d_int8_avx2", make_a, scratch_a, macs)
            wk = ctx.keep_array(w2)
            bk = ctx.keep_array(_bias_with_zero_point(op, bias, w2, in_zp))
            scratch = 0 if direct else IM2COL_ROWS * K
        rqa = rq.arrays(ctx)

        def make(addr):
            return ([addr(x.index), _addr(wk), _addr(bk), addr(y.index), _addr(rqa[0]), _addr(rqa[1]),
                     addr("scratch")] + [_addr(a) for a in rqa[2:]], ints, [])
        return Step(op, "depthwise_int8" if depthwise else "conv2d_int8", make, scratch, macs)

    lo, hi = Q.activation_range_f32(act)
    bias = _bias(ctx, op, 2, oc, np.float32)
    wk = ctx.keep_array(wdata.reshape(kh * kw, oc) if depthwise else wdata.reshape(oc, K))
    bk = ctx.keep_array(bias) if bias is not None else None
    scratch = oc * 4 if depthwise else (0 if direct else IM2COL_ROWS * K * 4)
    ints = dims + [0, 0, 0, 0, 0, dm, direct, IM2COL_ROWS]

    def make_f(addr):
        return ([addr(x.index), _addr(wk), _addr(bk) if bk is not None else 0, addr(y.index), 0, 0,
                 addr("scratch")], ints, [lo, hi])
    return Step(op, "depthwise_f32" if depthwise else "conv2d_f32", make_f, scratch, macs)


def prepare_fully_connected(ctx: Ctx, op: Op) -> Step:
    from edgeml.runtime import hybrid as H
    if H.is_hybrid(ctx, op):
        return H.prepare_fully_connected_hybrid(ctx, op)
    kind = _types(ctx, op)
    x, w, y = ctx.tensor(op, 0), ctx.tensor(op, 1), ctx.tensor(op, 0, "output")
    xs = ctx.shape(x)
    wdata = ctx.const(w, f"{op.describe()} weights")
    if wdata.ndim != 2:
        raise ModelFormatError(f"{op.describe()}: weights must be 2-D, got {list(wdata.shape)}")
    if wdata.dtype != x.dtype:
        raise UnsupportedOpError(f"{op.describe()}: weights of type {wdata.dtype} with {x.dtype} input "
                                 "(hybrid models are not supported)")
    if op.options.get("weights_format", 0) != 0:
        raise UnsupportedOpError(f"{op.describe()}: shuffled weights format is not supported")
    n_out, K = wdata.shape
    _positive(op, units=n_out, depth=K)
    total = _count(xs)
    if total % K:
        raise ModelFormatError(f"{op.describe()}: input {list(xs)} does not divide into rows of {K}")
    rows = total // K
    if op.options.get("keep_num_dims", False):
        if xs[-1] != K:
            raise ModelFormatError(f"{op.describe()}: keep_num_dims needs the last input dim to be {K}")
        out_shape = tuple(xs[:-1]) + (n_out,)
    else:
        out_shape = (rows, n_out)
    ctx.set_output(op, 0, out_shape)
    act = _activation(op)
    macs = rows * n_out * K
    if kind == "int8":
        _, in_zp = _qparams(x, op)
        rq = column_requant(ctx, op, x, w, y, n_out, 0, act, fully_connected=True)
        bias = _bias(ctx, op, 2, n_out, np.int32)
        ints = [rows, K, n_out, rq.out_zp, rq.act_min, rq.act_max, rq.mode]
        if _isa() == "avx512vnni":
            vp = _vnni_pack(ctx, wdata, bias, in_zp, rq)
            rqa = vp["rq"]
            chunk = _vnni_chunk(vp["kp"], rows)

            def make_v(addr):
                return ([addr(x.index), _addr(vp["w"]), _addr(vp["bias"]), addr(y.index), _addr(rqa[0]),
                         _addr(rqa[1]), addr("scratch")] + [_addr(a) for a in rqa[2:]], ints + [vp["kp"], chunk], [])
            return Step(op, "fully_connected_int8_vnni", make_v, chunk * vp["kp"] + VNNI_SLACK, macs)
        if _isa() in ("avx2", "avx512"):
            ap = _avx2_pack(ctx, wdata, _bias_with_zero_point(op, bias, wdata, in_zp), rq)
            rqa2 = ap["rq"]
            chunk2 = min(rows, IM2COL_ROWS)

            def make_a(addr):
                return ([addr(x.index), _addr(ap["w"]), _addr(ap["bias"]), addr(y.index), _addr(rqa2[0]),
                         _addr(rqa2[1]), addr("scratch")] + [_addr(a) for a in rqa2[2:]], ints + [ap["kp"], chunk2], [])
            return Step(op, "fully_connected_int8_avx2", make_a, chunk2 * ap["kp"] * 2, macs)
        wk = ctx.keep_array(wdata)
        bk = ctx.keep_array(_bias_with_zero_point(op, bias, wdata, in_zp))
        rqa = rq.arrays(ctx)

        def make(addr):
            return ([addr(x.index), _addr(wk), _addr(bk), addr(y.index), _addr(rqa[0]), _addr(rqa[1]), 0]
                    + [_addr(a) for a in rqa[2:]], ints, [])
        return Step(op, "fully_connected_int8", make, 0, macs)
    lo, hi = Q.activation_range_f32(act)
    bias = _bias(ctx, op, 2, n_out, np.float32)
    wk = ctx.keep_array(wdata)
    bk = ctx.keep_array(bias) if bias is not None else None

    def make_f(addr):
        return ([addr(x.index), _addr(wk), _addr(bk) if bk is not None else 0, addr(y.index)],
                [rows, K, n_out], [lo, hi])
    return Step(op, "fully_connected_f32", make_f, 0, macs)


# ----- pooling -------------------------------------------------------------------------------------

def prepare_pool(ctx: Ctx, op: Op, is_max: bool) -> Step:
    kind = _types(ctx, op)
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    xs = ctx.shape(x)
    if len(xs) != 4:
        raise ModelFormatError(f"{op.describe()}: expects a 4-D input, got {list(xs)}")
    o = op.options
    kh, kw = o.get("filter_height", 0), o.get("filter_width", 0)
    sh, sw = o.get("stride_h", 0), o.get("stride_w", 0)
    _positive(op, filter_height=kh, filter_width=kw, stride_h=sh, stride_w=sw)
    n, ih, iw, c = xs
    oh, pt = _padding(op, ih, kh, sh, 1, 0)
    ow, pl = _padding(op, iw, kw, sw, 1, 1)
    ctx.set_output(op, 0, (n, oh, ow, c))
    act = _activation(op)
    ints = [n, ih, iw, c, oh, ow, kh, kw, sh, sw, pt, pl]
    if kind == "int8":
        s_in, zp_in = _qparams(x, op)
        s_out, zp_out = _qparams(y, op)
        if (s_in, zp_in) != (s_out, zp_out):
            raise UnsupportedOpError(f"{op.describe()}: int8 pooling needs equal input and output quantization")
        amin, amax = Q.activation_range_int8(act, s_out, zp_out)
        ints = ints + [amin, amax]
        floats = []
    else:
        ints = ints + [0, 0]
        floats = list(Q.activation_range_f32(act))
    name = ("max_pool_" if is_max else "avg_pool_") + kind

    def make(addr):
        return [addr(x.index), addr(y.index), addr("scratch")], ints, floats
    return Step(op, name, make, 0 if is_max else c * 4)


# ----- element-wise --------------------------------------------------------------------------------

def _broadcast(op: Op, a: tuple, b: tuple) -> tuple:
    rank = max(len(a), len(b))
    a6, b6 = [1] * (rank - len(a)) + list(a), [1] * (rank - len(b)) + list(b)
    out = []
    for da, db in zip(a6, b6):
        if da != db and 1 not in (da, db):
            raise ModelFormatError(f"{op.describe()}: shapes {list(a)} and {list(b)} do not broadcast")
        out.append(max(da, db) if 0 not in (da, db) else 0)
    return tuple(out)


def _broadcast_strides(shape: tuple, out: tuple) -> list:
    s6, o6 = _pad6(shape), _pad6(out)
    st = _strides(s6)
    return [0 if (d == 1 and od != 1) else s for d, od, s in zip(s6, o6, st)]


ADD_TABLE_BYTES = 2048    # em_add_int8_avx512: each input stage as a 256-entry int32 table


def prepare_binary(ctx: Ctx, op: Op, which: str) -> Step:
    kind = _types(ctx, op, 2)
    a, b, y = ctx.tensor(op, 0), ctx.tensor(op, 1), ctx.tensor(op, 0, "output")
    for t in (a, b):
        if t.index in ctx.constants and t.index not in ctx.shapes:
            ctx.shapes[t.index] = t.shape
    sa, sb = ctx.shape(a), ctx.shape(b)
    out = _broadcast(op, sa, sb)
    ctx.set_output(op, 0, out)
    act = _activation(op)
    dims = _pad6(out) + _broadcast_strides(sa, out) + _broadcast_strides(sb, out)
    scratch = 0
    if kind == "int8":
        # the vector kernels take equal shapes, or one input of a single element broadcast to the other's shape
        vector_shapes = tuple(sa) == tuple(sb) or (_count(sa) == 1 and tuple(sb) == tuple(out)) or \
            (_count(sb) == 1 and tuple(sa) == tuple(out))
        s1, z1 = _qparams(a, op)
        s2, z2 = _qparams(b, op)
        so, zo = _qparams(y, op)
        amin, amax = Q.activation_range_int8(act, so, zo)
        f1, f2, fo = (np.float64(Q.F32(v)) for v in (s1, s2, so))
        if which in ("ADD", "SUB"):
            left_shift = 20
            twice_max = 2.0 * max(f1, f2)
            m1, sh1 = Q.quantize_multiplier(f1 / twice_max, ctx.rounding)
            m2, sh2 = Q.quantize_multiplier(f2 / twice_max, ctx.rounding)
            mo, sho = Q.quantize_multiplier(twice_max / ((1 << left_shift) * fo), ctx.rounding)
            ints = dims + [z1, z2, zo, left_shift, m1, sh1, m2, sh2, mo, sho, amin, amax, ctx.rounding,
                           1 if which == "ADD" else -1]
            name = "add_int8"
            if vector_shapes and ctx.rounding in (0, 1) and _isa() == "avx512vnni":
                name = "add_int8_avx512"
                scratch = ADD_TABLE_BYTES
        else:
            m, sh = Q.quantize_multiplier(f1 * f2 / fo, ctx.rounding)
            ints = dims + [z1, z2, zo, m, sh, amin, amax, ctx.rounding]
            name = "mul_int8"
            if vector_shapes and ctx.rounding in (0, 1) and sh >= -31 and _isa() == "avx512vnni":
                name = "mul_int8_avx512"
        floats = []
    else:
        ints = dims
        floats = list(Q.activation_range_f32(act))
        name = which.lower() + "_f32"
    def make(addr):
        return [addr(a.index), addr(b.index), addr(y.index)] + ([addr("scratch")] if scratch else []), ints, floats
    return Step(op, name, make, scratch)


def prepare_unary(ctx: Ctx, op: Op, which: str) -> Step:
    kind = _types(ctx, op)
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    xs = ctx.shape(x)
    ctx.set_output(op, 0, xs)
    n = _count(xs)
    from cython_ops.elementwise import UNARY_F32

    if kind == "f32":
        if which == "SOFTMAX":
            depth = xs[-1] if xs else 1
            ints, floats, name = [n // max(depth, 1), depth], [op.options.get("beta", 1.0)], "softmax_f32"
        else:
            lo, hi, alpha = -Q.FLOAT_MAX, Q.FLOAT_MAX, 0.0
            code = UNARY_F32["clamp"]
            if which in ("RELU", "RELU6", "RELU_N1_TO_1"):
                lo, hi = Q.activation_range_f32(which)
            elif which == "LEAKY_RELU":
                code, alpha = UNARY_F32["leaky_relu"], op.options.get("alpha", 0.2)
            else:
                code = UNARY_F32[{"LOGISTIC": "logistic", "TANH": "tanh", "HARD_SWISH": "hard_swish"}[which]]
            ints, floats, name = [n, code], [lo, hi, alpha], "unary_f32"

        def make_f(addr):
            return [addr(x.index), addr(y.index)], ints, floats
        return Step(op, name, make_f, 0)

    s_in, zp_in = _qparams(x, op)
    s_out, zp_out = _qparams(y, op)
    from edgeml.runtime import activation_params as AP
    if which in ("RELU", "RELU6", "RELU_N1_TO_1"):
        # ReluPrepare divides in float; QuantizedReluX rounds act_min/scale with roundf in float
        m, sh = Q.quantize_multiplier(float(Q.F32(s_in) / Q.F32(s_out)), ctx.rounding)
        lo_f, hi_f = {"RELU": (0.0, None), "RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0)}[which]
        amin = max(-128, zp_out + int(Q.round_half_away(float(Q.F32(lo_f) / Q.F32(s_out)))))
        amax = 127 if hi_f is None else min(127, zp_out + int(Q.round_half_away(float(Q.F32(hi_f) / Q.F32(s_out)))))
        ints, name = [n, zp_in, zp_out, m, sh, amin, amax, ctx.rounding], "requantize_int8"
    elif which == "LEAKY_RELU":
        alpha = Q.F32(op.options.get("alpha", 0.2))
        ma, sa = Q.quantize_multiplier(float(Q.F32(s_in) * alpha / Q.F32(s_out)), ctx.rounding)
        mi, si = Q.quantize_multiplier(float(Q.F32(s_in) / Q.F32(s_out)), ctx.rounding)
        ints, name = [n, zp_in, zp_out, mi, si, ma, sa, ctx.rounding], "leaky_relu_int8"
    else:
        try:
            if which in ("LOGISTIC", "TANH"):
                AP.check_fixed_output(which, s_out, zp_out)
                from cython_ops.activation import activation_table
                table = ctx.keep_array(activation_table(which, s_in, zp_in, s_out, zp_out))

                def make_lut(addr):
                    return [addr(x.index), addr(y.index), _addr(table)], [n], []
                return Step(op, "lut_int8", make_lut, 0)
            elif which == "SOFTMAX":
                AP.check_fixed_output("SOFTMAX", s_out, zp_out)
                p = AP.softmax_int8_params(s_in, op.options.get("beta", 1.0), ctx.rounding)
                depth = xs[-1] if xs else 1
                ints, name = [n // max(depth, 1), depth, p["input_multiplier"], p["input_left_shift"],
                              p["diff_min"], ctx.rounding], "softmax_int8"
            elif which == "HARD_SWISH":
                p = AP.hard_swish_int8_params(s_in, zp_in, s_out, zp_out)
                ints, name = [n, p["input_zero_point"], p["output_zero_point"],
                              p["reluish_multiplier_fixedpoint_int16"], p["reluish_multiplier_exponent"],
                              p["output_multiplier_fixedpoint_int16"], p["output_multiplier_exponent"]], \
                    "hard_swish_int8"
            else:
                raise UnsupportedOpError(f"{op.describe()}: not supported for int8")
        except ValueError as exc:
            raise UnsupportedOpError(f"{op.describe()}: {exc}") from exc

    def make(addr):
        return [addr(x.index), addr(y.index)], ints, []
    return Step(op, name, make, 0)


def prepare_quantize(ctx: Ctx, op: Op) -> Step:
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    xs = ctx.shape(x)
    ctx.set_output(op, 0, xs)
    n = _count(xs)
    if y.dtype != np.int8:
        raise UnsupportedOpError(f"{op.describe()}: quantizing to {y.dtype} is not supported (int8 only)")
    s_out, zp_out = _qparams(y, op)
    if x.dtype == np.float32:
        def make(addr):
            return [addr(x.index), addr(y.index)], [n, zp_out], [s_out]
        return Step(op, "quantize_f32_int8", make, 0)
    if x.dtype == np.int8:
        s_in, zp_in = _qparams(x, op)
        m, sh = Q.quantize_multiplier(np.float64(Q.F32(s_in)) / np.float64(Q.F32(s_out)), ctx.rounding)
        ints = [n, zp_in, zp_out, m, sh, -128, 127, ctx.rounding]

        def make_r(addr):
            return [addr(x.index), addr(y.index)], ints, []
        return Step(op, "requantize_int8", make_r, 0)
    raise UnsupportedOpError(f"{op.describe()}: quantizing from {x.dtype} is not supported")


def prepare_dequantize(ctx: Ctx, op: Op) -> Optional[Step]:
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    if y.dtype != np.float32:
        raise UnsupportedOpError(f"{op.describe()}: dequantizing to {y.dtype} is not supported")
    if x.index in ctx.constants:         # e.g. float16 or int8 weights: fold at load
        data = ctx.constants[x.index]
        if data.dtype == np.float16:
            folded = data.astype(np.float32)
        elif data.dtype == np.int8 and x.quant is not None:
            q = x.quant
            shape = [1] * data.ndim
            if q.per_axis:
                shape[q.axis] = -1
            folded = (q.scale.astype(np.float32).astype(np.float64).reshape(shape)
                      * (data.astype(np.float64) - q.zero_point.reshape(shape))).astype(np.float32)
        else:
            raise UnsupportedOpError(f"{op.describe()}: dequantizing constant {data.dtype} is not supported")
        ctx.set_output(op, 0, data.shape)
        ctx.constants[y.index] = folded
        return None
    if x.dtype != np.int8:
        raise UnsupportedOpError(f"{op.describe()}: dequantizing {x.dtype} is not supported (int8 only)")
    xs = ctx.shape(x)
    ctx.set_output(op, 0, xs)
    s, zp = _qparams(x, op)
    n = _count(xs)

    def make(addr):
        return [addr(x.index), addr(y.index)], [n, zp], [s]
    return Step(op, "dequantize_int8_f32", make, 0)


# ----- data movement ------------------------------------------------------------------------------

def _same_quant(op: Op, a, b):
    if a.dtype == np.int8:
        if _qparams(a, op) != _qparams(b, op):
            raise UnsupportedOpError(f"{op.describe()}: int8 {a.describe()} and {b.describe()} must share "
                                     "scale and zero point")


def _copy_step(ctx: Ctx, op: Op, out_shape) -> Step:
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    if x.dtype != y.dtype:
        raise ModelFormatError(f"{op.describe()}: input {x.dtype} and output {y.dtype} differ")
    _same_quant(op, x, y)
    if _count(out_shape) != _count(ctx.shape(x)):
        raise ModelFormatError(f"{op.describe()}: cannot reshape {list(ctx.shape(x))} to {list(out_shape)}")
    ctx.set_output(op, 0, out_shape)
    nbytes = _count(out_shape) * x.dtype.itemsize

    def make(addr):
        return [addr(x.index), addr(y.index)], [nbytes], []
    return Step(op, "copy", make, 0, 0)


def prepare_reshape(ctx: Ctx, op: Op) -> Step:
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    xs = ctx.shape(x)
    new = None
    if len(op.inputs) > 1 and op.inputs[1] >= 0 and op.inputs[1] in ctx.constants:
        new = [int(v) for v in ctx.constants[op.inputs[1]].reshape(-1)]
    elif "new_shape" in op.options and len(op.options["new_shape"]):
        new = [int(v) for v in op.options["new_shape"]]
    if new is None:
        new = list(y.shape)
    if ctx.batch_changed and new and new[0] not in (-1,) and -1 not in new and _count(new) != _count(xs) \
            and xs and new[0] == y.shape[0]:
        new[0] = -1     # the file's batch was baked into the shape: let it follow the input's batch
    if new.count(-1) > 1:
        raise ModelFormatError(f"{op.describe()}: more than one -1 in new shape {new}")
    if -1 in new:
        known = _count([d for d in new if d != -1])
        if known == 0 or _count(xs) % known:
            raise ModelFormatError(f"{op.describe()}: cannot reshape {list(xs)} to {new}")
        new[new.index(-1)] = _count(xs) // known
    return _copy_step(ctx, op, tuple(new))


def prepare_squeeze(ctx: Ctx, op: Op) -> Step:
    xs = ctx.shape(ctx.tensor(op, 0))
    dims = [int(d) for d in op.options.get("squeeze_dims", [])]
    rank = len(xs)
    dims = [d + rank if d < 0 else d for d in dims]
    if any(not 0 <= d < rank for d in dims):
        raise ModelFormatError(f"{op.describe()}: squeeze_dims {dims} outside rank {rank}")
    if dims and any(xs[d] != 1 for d in dims):
        raise ModelFormatError(f"{op.describe()}: cannot squeeze non-1 dims {dims} of {list(xs)}")
    out = [d for i, d in enumerate(xs) if (i not in dims if dims else d != 1)]
    return _copy_step(ctx, op, tuple(out))


def prepare_expand_dims(ctx: Ctx, op: Op) -> Step:
    xs = list(ctx.shape(ctx.tensor(op, 0)))
    axis = int(ctx.const(ctx.tensor(op, 1), f"{op.describe()} axis").reshape(-1)[0])
    if axis < 0:
        axis += len(xs) + 1
    if not 0 <= axis <= len(xs):
        raise ModelFormatError(f"{op.describe()}: axis out of range")
    return _copy_step(ctx, op, tuple(xs[:axis] + [1] + xs[axis:]))


def _gather_step(ctx: Ctx, op: Op, out_shape, start: int, in_strides: list, same_quant: bool = True) -> Step:
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    if x.dtype != y.dtype or x.dtype.itemsize not in (1, 2, 4, 8):
        raise UnsupportedOpError(f"{op.describe()}: type {x.dtype} -> {y.dtype} not supported")
    if same_quant:
        _same_quant(op, x, y)
    ctx.set_output(op, 0, tuple(out_shape))
    pad = 6 - len(out_shape)
    dims = [1] * pad + list(out_shape)
    strides = [0] * pad + list(in_strides)
    ints = [x.dtype.itemsize] + dims + strides + [start]

    def make(addr):
        return [addr(x.index), addr(y.index)], ints, []
    return Step(op, "gather_strided", make, 0, 0)


def prepare_reverse_v2(ctx: Ctx, op: Op) -> Step:
    """REVERSE_V2 (the backward half of a Bidirectional RNN): a gather with negated strides on the given axes.
    LiteRT copies the raw values even when the converter gives the output other int8 parameters; so does this."""
    xs = list(ctx.shape(ctx.tensor(op, 0)))
    if len(xs) > 6:
        raise UnsupportedOpError(f"{op.describe()}: rank {len(xs)} > 6")
    axes = {_axis(op, int(a), len(xs)) for a in ctx.const(ctx.tensor(op, 1), f"{op.describe()} axes").reshape(-1)}
    st = _strides(xs)
    start = sum((xs[a] - 1) * st[a] for a in axes if xs[a] > 0)
    return _gather_step(ctx, op, xs, start, [-st[a] if a in axes else st[a] for a in range(len(xs))],
                        same_quant=False)


def prepare_reverse_sequence(ctx: Ctx, op: Op) -> Step:
    """ONNX ReverseSequence: in batch row b the first lens[b] steps along time_axis in reverse order, the others
    copied.  The int64 lengths are a constant (from_onnx checked them) or a graph input, whose values
    Interpreter.set_input checks against [0, time steps] as onnxruntime checks them at run time; the kernel also
    clamps them, so no length reads or writes out of bounds."""
    x, lens, y = ctx.tensor(op, 0), ctx.tensor(op, 1), ctx.tensor(op, 0, "output")
    xs = list(ctx.shape(x))
    batch_axis, time_axis = op.options["batch_axis"], op.options["time_axis"]
    if x.dtype != y.dtype:
        raise ModelFormatError(f"{op.describe()}: input {x.dtype} and output {y.dtype} differ")
    if tuple(ctx.shape(lens)) != (xs[batch_axis],):
        raise UnsupportedOpError(f"{op.describe()}: {list(ctx.shape(lens))} sequence lengths for batch "
                                 f"{xs[batch_axis]}")
    if lens.index in ctx.constants:
        lens_ptr = _addr(ctx.keep_array(ctx.constants[lens.index].astype(np.int64)))
    elif lens.index in ctx.graph.inputs and lens.dtype == np.int64:
        ctx.input_ranges[lens.index] = (0, xs[time_axis], f"sequence lengths of {op.describe()}")
        lens_ptr = None
    else:
        raise UnsupportedOpError(f"{op.describe()}: sequence_lens must be a constant or an int64 graph input")
    ctx.set_output(op, 0, tuple(xs))
    st, isz = _strides(xs), x.dtype.itemsize
    ints = [xs[batch_axis], xs[time_axis], st[batch_axis] * isz, st[time_axis] * isz, _count(xs[2:]) * isz]

    def make(addr):
        return [addr(x.index), addr(y.index), lens_ptr or addr(lens.index)], ints, []
    return Step(op, "reverse_sequence", make, 0, 0)


def prepare_transpose(ctx: Ctx, op: Op) -> Step:
    xs = ctx.shape(ctx.tensor(op, 0))
    perm = [int(p) for p in ctx.const(ctx.tensor(op, 1), f"{op.describe()} permutation").reshape(-1)]
    if sorted(perm) != list(range(len(xs))):
        raise ModelFormatError(f"{op.describe()}: {perm} is not a permutation of {len(xs)} axes")
    if len(xs) > 6:
        raise UnsupportedOpError(f"{op.describe()}: rank {len(xs)} > 6")
    st = _strides(xs)
    return _gather_step(ctx, op, [xs[p] for p in perm], 0, [st[p] for p in perm])


def prepare_strided_slice(ctx: Ctx, op: Op) -> Step:
    xs = list(ctx.shape(ctx.tensor(op, 0)))
    rank = len(xs)
    what = op.describe()
    begin = [int(v) for v in ctx.const(ctx.tensor(op, 1), f"{what} begin").reshape(-1)]
    end = [int(v) for v in ctx.const(ctx.tensor(op, 2), f"{what} end").reshape(-1)]
    strides = [int(v) for v in ctx.const(ctx.tensor(op, 3), f"{what} strides").reshape(-1)]
    o = op.options
    if o.get("ellipsis_mask", 0) or o.get("new_axis_mask", 0):
        raise UnsupportedOpError(f"{what}: ellipsis_mask / new_axis_mask are not supported")
    if not (len(begin) == len(end) == len(strides)) or len(begin) > rank:
        raise ModelFormatError(f"{what}: begin/end/strides lengths {len(begin)}/{len(end)}/{len(strides)} "
                               f"for rank {rank}")
    n = len(begin)
    begin += [0] * (rank - n)
    end += xs[n:]
    strides += [1] * (rank - n)
    bm, em, sm = o.get("begin_mask", 0), o.get("end_mask", 0), o.get("shrink_axis_mask", 0)
    offset = o.get("offset", False)
    in_st = _strides(xs)
    start, out_strides, out_shape = 0, [], []
    for d in range(rank):
        dim, s = xs[d], strides[d]
        if s == 0:
            raise ModelFormatError(f"{what}: stride 0 on axis {d}")
        b, e = begin[d], end[d]
        if offset:
            e = b + e
        if sm >> d & 1:
            b = b + dim if b < 0 else b
            if not 0 <= b < dim:
                raise ModelFormatError(f"{what}: index {begin[d]} out of range on axis {d}")
            start += b * in_st[d]
            continue
        lo, hi = (0, dim) if s > 0 else (-1, dim - 1)

        def clampi(v, masked, default):
            if masked:
                return default
            v = v + dim if v < 0 else v
            return min(max(v, lo), hi)
        b = clampi(b, bm >> d & 1 and d < n, 0 if s > 0 else dim - 1)
        e = clampi(e, em >> d & 1 and d < n, dim if s > 0 else -1)
        size = max(0, (e - b + (s - (1 if s > 0 else -1))) // s)
        if size:
            start += b * in_st[d]
        out_shape.append(size)
        out_strides.append(in_st[d] * s)
    if len(out_shape) > 6:
        raise UnsupportedOpError(f"{what}: output rank > 6")
    return _gather_step(ctx, op, out_shape, start, out_strides)


def _split_steps(ctx: Ctx, op: Op, x, axis: int, sizes: list, drop_axis: bool) -> list:
    """One strided-gather step per output: output k is the slab [start_k, start_k + sizes[k]) along `axis`."""
    xs = list(ctx.shape(x))
    if len(sizes) != len(op.outputs):
        raise ModelFormatError(f"{op.describe()}: {len(sizes)} pieces for {len(op.outputs)} outputs")
    if sum(sizes) != xs[axis] or any(n < 0 for n in sizes):
        raise ModelFormatError(f"{op.describe()}: pieces {sizes} do not add up to dimension {axis} of {xs}")
    if len(xs) > 6:
        raise UnsupportedOpError(f"{op.describe()}: rank > 6")
    st = _strides(xs)
    steps, start = [], 0
    for k, n in enumerate(sizes):
        y = ctx.tensor(op, k, "output")
        if y.dtype != x.dtype or x.dtype.itemsize not in (1, 2, 4, 8):
            raise UnsupportedOpError(f"{op.describe()}: type {x.dtype} -> {y.dtype} not supported")
        _same_quant(op, x, y)
        shape = xs[:axis] + ([] if drop_axis else [n]) + xs[axis + 1:]
        strides = st[:axis] + ([] if drop_axis else [st[axis]]) + st[axis + 1:]
        ctx.set_output(op, k, tuple(shape))
        ints = [x.dtype.itemsize] + [1] * (6 - len(shape)) + shape + [0] * (6 - len(shape)) + strides \
            + [start * st[axis]]

        def make(addr, ints=ints, y=y):
            return [addr(x.index), addr(y.index)], ints, []
        steps.append(Step(op, "gather_strided", make, 0))
        start += n
    return steps


def _axis(op: Op, axis: int, rank: int) -> int:
    a = axis + rank if axis < 0 else axis
    if not 0 <= a < rank:
        raise ModelFormatError(f"{op.describe()}: axis {axis} outside rank {rank}")
    return a


def prepare_split(ctx: Ctx, op: Op) -> list:
    x = ctx.tensor(op, 1)
    xs = ctx.shape(x)
    axis = _axis(op, int(ctx.const(ctx.tensor(op, 0), f"{op.describe()} axis").reshape(-1)[0]), len(xs))
    n = len(op.outputs)
    if n == 0 or xs[axis] % n:
        raise ModelFormatError(f"{op.describe()}: dimension {axis} of {list(xs)} does not split into {n}")
    return _split_steps(ctx, op, x, axis, [xs[axis] // n] * n, False)


def prepare_split_v(ctx: Ctx, op: Op) -> list:
    x = ctx.tensor(op, 0)
    xs = ctx.shape(x)
    sizes = [int(v) for v in ctx.const(ctx.tensor(op, 1), f"{op.describe()} size_splits").reshape(-1)]
    axis = _axis(op, int(ctx.const(ctx.tensor(op, 2), f"{op.describe()} axis").reshape(-1)[0]), len(xs))
    if sizes.count(-1) == 1:
        sizes[sizes.index(-1)] = xs[axis] - (sum(sizes) + 1)
    return _split_steps(ctx, op, x, axis, sizes, False)


def prepare_unpack(ctx: Ctx, op: Op) -> list:
    x = ctx.tensor(op, 0)
    xs = ctx.shape(x)
    axis = _axis(op, op.options.get("axis", 0), len(xs))
    return _split_steps(ctx, op, x, axis, [1] * xs[axis], True)


def prepare_pad(ctx: Ctx, op: Op) -> Step:
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    xs = list(ctx.shape(x))
    pads = ctx.const(ctx.tensor(op, 1), f"{op.describe()} paddings").astype(np.int64)
    if pads.shape != (len(xs), 2) or np.any(pads < 0):
        raise ModelFormatError(f"{op.describe()}: paddings {pads.tolist()} do not fit input rank {len(xs)}")
    if len(xs) > 6:
        raise UnsupportedOpError(f"{op.describe()}: rank > 6")
    if x.dtype != y.dtype:
        raise ModelFormatError(f"{op.describe()}: input and output types differ")
    _same_quant(op, x, y)
    out = [d + int(p[0]) + int(p[1]) for d, p in zip(xs, pads)]
    ctx.set_output(op, 0, tuple(out))
    value = np.zeros(1, x.dtype)
    if x.dtype == np.int8:
        value[0] = _qparams(x, op)[1]
    if op.type == "PADV2" and len(op.inputs) > 2 and op.inputs[2] >= 0:
        cv = ctx.const(ctx.tensor(op, 2), f"{op.describe()} constant value")
        if cv.dtype != x.dtype or cv.size != 1:
            raise ModelFormatError(f"{op.describe()}: constant value must be one {x.dtype}")
        value[0] = cv.reshape(-1)[0]
    vk = ctx.keep_array(value)
    in6, out6 = _pad6(xs), _pad6(out)
    pad6 = [0] * (6 - len(xs)) + [int(p[0]) for p in pads]
    ost = _strides(out6)
    origin = sum(p * s for p, s in zip(pad6, ost))
    ints = [x.dtype.itemsize] + in6 + ost[:5] + [0] + [origin, _count(out)]

    def make(addr):
        return [addr(x.index), addr(y.index), _addr(vk)], ints, []
    return Step(op, "pad", make, 0, 0)


CONCAT_INPUTS = 14      # inputs one em_concat step takes (its pointer and integer slots)


def _concat_steps(op: Op, y, ins: list, outer: int, rows: list) -> list:
    """y = [outer] rows, each the concatenation of one row of every input (rows[k] bytes of input k).
    Up to CONCAT_INPUTS inputs per em_concat step; a later step writes its inputs' columns of every output row
    (the output pointer advanced past the earlier columns, the output row length unchanged)."""
    out_row = sum(rows)
    steps = []
    for first in range(0, len(ins), CONCAT_INPUTS):
        part = ins[first:first + CONCAT_INPUTS]
        ints = [len(part), outer, out_row] + rows[first:first + len(part)]
        column = sum(rows[:first])

        def make(addr, part=part, ints=ints, column=column):
            return [addr(y.index) + column] + [addr(t.index) for t in part], ints, []
        steps.append(Step(op, "concat", make, 0, 0))
    return steps


def prepare_concatenation(ctx: Ctx, op: Op) -> list:
    y = ctx.tensor(op, 0, "output")
    ins = [ctx.tensor(op, k) for k in range(len(op.inputs))]
    if not ins:
        raise ModelFormatError(f"{op.describe()}: no inputs")
    shapes = [list(ctx.shape(t)) for t in ins]
    rank = len(shapes[0])
    axis = op.options.get("axis", 0)
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis < rank:
        raise ModelFormatError(f"{op.describe()}: axis {op.options.get('axis')} outside rank {rank}")
    for t, s in zip(ins, shapes):
        if t.dtype != y.dtype:
            raise UnsupportedOpError(f"{op.describe()}: input types differ")
        if len(s) != rank or any(s[d] != shapes[0][d] for d in range(rank) if d != axis):
            raise ModelFormatError(f"{op.describe()}: shapes {shapes} do not concatenate on axis {axis}")
        _same_quant(op, t, y)
    if _activation(op) != "NONE":
        raise UnsupportedOpError(f"{op.describe()}: fused activation on CONCATENATION")
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    ctx.set_output(op, 0, tuple(out))
    isz = y.dtype.itemsize
    return _concat_steps(op, y, ins, _count(out[:axis]), [_count(s[axis:]) * isz for s in shapes])


def prepare_pack(ctx: Ctx, op: Op) -> list:
    """PACK (tf.stack): values_count equal-shaped inputs stacked on a new output axis; a CONCATENATION of the
    inputs each viewed with a unit dimension at that axis.  The values are copied, not requantized: LiteRT's
    Prepare refuses int8 inputs whose scale or zero point differ from the output's, and so does this."""
    y = ctx.tensor(op, 0, "output")
    ins = [ctx.tensor(op, k) for k in range(len(op.inputs))]
    count = op.options.get("values_count", 0)
    if count != len(ins) or not ins:
        raise ModelFormatError(f"{op.describe()}: values_count {count} but {len(ins)} inputs")
    shape = list(ctx.shape(ins[0]))
    for t in ins:
        if list(ctx.shape(t)) != shape:
            raise ModelFormatError(f"{op.describe()}: inputs of shapes {[list(ctx.shape(t)) for t in ins]} "
                                   "cannot be stacked (they must all be equal)")
        if t.dtype != y.dtype:
            raise ModelFormatError(f"{op.describe()}: input {t.describe()} has type {t.dtype}, the output {y.dtype}")
        if y.dtype == np.int8 and _qparams(t, op) != _qparams(y, op):
            raise ModelFormatError(f"{op.describe()}: int8 input {t.describe()} has scale / zero point "
                                   f"{_qparams(t, op)}, the output {_qparams(y, op)}; PACK copies values, so "
                                   "they must be equal (LiteRT refuses the model too)")
    axis = op.options.get("axis", 0)
    a = axis + len(shape) + 1 if axis < 0 else axis
    if not 0 <= a <= len(shape):
        raise ModelFormatError(f"{op.describe()}: axis {axis} outside the output rank {len(shape) + 1}")
    ctx.set_output(op, 0, tuple(shape[:a] + [count] + shape[a:]))
    return _concat_steps(op, y, ins, _count(shape[:a]), [_count(shape[a:]) * y.dtype.itemsize] * count)


def _mean_multiplier(real: float, count: int, rounding: int) -> tuple[int, int]:
    """QuantizeMultiplier(s_in / s_out) with 1/count folded in, as LiteRT's QuantizedMeanOrSum does:
    shift the multiplier up by floor(log2 count) (at most 32, and not below shift -31), divide by count."""
    m, sh = Q.quantize_multiplier(real, rounding)
    up = min(count.bit_length() - 1, 32, 31 + sh)
    if up < 0:
        return 0, 0
    return (m << up) // count, sh - up


def prepare_mean(ctx: Ctx, op: Op) -> Step:
    kind = _types(ctx, op)
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    xs = list(ctx.shape(x))
    rank = len(xs)
    axes_raw = [int(a) for a in ctx.const(ctx.tensor(op, 1), f"{op.describe()} axes").reshape(-1)]
    axes = []
    for a in axes_raw:
        a2 = a + rank if a < 0 else a
        if not 0 <= a2 < rank:
            raise ModelFormatError(f"{op.describe()}: axis {a} outside rank {rank}")
        if a2 not in axes:
            axes.append(a2)
    keep = bool(op.options.get("keep_dims", False))
    out = [1 if d in axes else s for d, s in enumerate(xs)] if keep else [s for d, s in enumerate(xs) if d not in axes]
    ctx.set_output(op, 0, tuple(out))
    if rank > 6:
        raise UnsupportedOpError(f"{op.describe()}: rank > 6")
    count = _count([xs[a] for a in axes])
    n_out = _count(out)
    kept = [s for d, s in enumerate(xs) if d not in axes]
    kst = _strides(kept)
    ost, k = [], 0
    for d in range(rank):
        if d in axes:
            ost.append(0)
        else:
            ost.append(kst[k])
            k += 1
    in6 = _pad6(xs)
    ost6 = [0] * (6 - rank) + ost
    if kind == "f32":
        is_float, zp_in, zp_out, m, sh = 1, 0, 0, 0, 0
    else:
        s_in, zp_in = _qparams(x, op)
        s_out, zp_out = _qparams(y, op)
        if count * 255 >= 2 ** 31:
            raise UnsupportedOpError(f"{op.describe()}: {count} reduced elements overflow the int32 sum")
        m, sh = _mean_multiplier(np.float64(Q.F32(s_in)) / np.float64(Q.F32(s_out)), count, ctx.rounding)
        is_float = 0
    ints = in6 + ost6 + [n_out, count, is_float, zp_in, zp_out, m, sh, ctx.rounding]

    def make(addr):
        return [addr(x.index), addr(y.index), addr("scratch")], ints, []
    return Step(op, "mean", make, max(n_out, 1) * 4)


PREPARE = {
    "CONV_2D": prepare_conv2d,
    "DEPTHWISE_CONV_2D": lambda c, o: prepare_conv2d(c, o, depthwise=True),
    "FULLY_CONNECTED": prepare_fully_connected,
    "AVERAGE_POOL_2D": lambda c, o: prepare_pool(c, o, False),
    "MAX_POOL_2D": lambda c, o: prepare_pool(c, o, True),
    "ADD": lambda c, o: prepare_binary(c, o, "ADD"),
    "SUB": lambda c, o: prepare_binary(c, o, "SUB"),
    "MUL": lambda c, o: prepare_binary(c, o, "MUL"),
    "RESHAPE": prepare_reshape,
    "SQUEEZE": prepare_squeeze,
    "EXPAND_DIMS": prepare_expand_dims,
    "SOFTMAX": lambda c, o: prepare_unary(c, o, "SOFTMAX"),
    "LOGISTIC": lambda c, o: prepare_unary(c, o, "LOGISTIC"),
    "TANH": lambda c, o: prepare_unary(c, o, "TANH"),
    "RELU": lambda c, o: prepare_unary(c, o, "RELU"),
    "RELU6": lambda c, o: prepare_unary(c, o, "RELU6"),
    "RELU_N1_TO_1": lambda c, o: prepare_unary(c, o, "RELU_N1_TO_1"),
    "LEAKY_RELU": lambda c, o: prepare_unary(c, o, "LEAKY_RELU"),
    "HARD_SWISH": lambda c, o: prepare_unary(c, o, "HARD_SWISH"),
    "PAD": prepare_pad,
    "SPLIT": prepare_split,
    "SPLIT_V": prepare_split_v,
    "UNPACK": prepare_unpack,
    "PACK": prepare_pack,
    "PADV2": prepare_pad,
    "MEAN": prepare_mean,
    "CONCATENATION": prepare_concatenation,
    "TRANSPOSE": prepare_transpose,
    "REVERSE_V2": prepare_reverse_v2,
    "ONNX_REVERSE_SEQUENCE": prepare_reverse_sequence,
    "STRIDED_SLICE": prepare_strided_slice,
    "QUANTIZE": prepare_quantize,
    "DEQUANTIZE": prepare_dequantize,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": lambda c, o: importlib.import_module("edgeml.runtime.rnn").prepare_unidirectional_sequence_lstm(c, o),
    "ONNX_RNN": lambda c, o: importlib.import_module("edgeml.runtime.onnx_rnn").prepare_onnx_rnn(c, o),
}
from edgeml.runtime.onnx_semantics import PREPARE as _ONNX_PREPARE    # noqa: E402  (ops only from_onnx emits)
PREPARE.update(_ONNX_PREPARE)
ONNX_INTEGER_MOVES = ("RESHAPE", "TRANSPOSE", "CONCATENATION")    # also move ONNX's int32 / uint8 results

# Newest op version whose semantics edgeml implements (newer versions add types or options).
MAX_VERSION = {
    "CONV_2D": 8, "DEPTHWISE_CONV_2D": 7, "FULLY_CONNECTED": 13, "AVERAGE_POOL_2D": 3, "MAX_POOL_2D": 3,
    "ADD": 5, "SUB": 5, "MUL": 7, "RESHAPE": 2, "SQUEEZE": 2, "EXPAND_DIMS": 3, "SOFTMAX": 3, "LOGISTIC": 3,
    "TANH": 3, "RELU": 3, "RELU6": 3, "RELU_N1_TO_1": 2, "LEAKY_RELU": 2, "HARD_SWISH": 1, "PAD": 4,
    "PADV2": 4, "MEAN": 3, "CONCATENATION": 4, "TRANSPOSE": 6, "STRIDED_SLICE": 8, "QUANTIZE": 3,
    "DEQUANTIZE": 6, "SPLIT": 4, "SPLIT_V": 2, "UNPACK": 4, "PACK": 4,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": 3, "REVERSE_V2": 3,
}

SUPPORTED_OPS = sorted(PREPARE)


def _plan_arena(sizes: dict, lifetimes: dict) -> tuple[dict, int]:
    """Greedy by size (as TFLite Micro's planner): biggest first, each at the lowest offset that does not
    overlap a placed buffer whose lifetime intersects its own."""
    placed = []      # (offset, size, first, last)
    offsets = {}
    order = sorted(sizes, key=lambda k: (-sizes[k], str(k)))
    for key in order:
        size = (sizes[key] + ALIGN - 1) // ALIGN * ALIGN
        first, last = lifetimes[key]
        conflicts = sorted((o, s) for o, s, f, l in placed if not (l < first or f > last))
        offset = 0
        for o, s in conflicts:
            if offset + size <= o:
                break
            offset = max(offset, o + s)
        placed.append((offset, size, first, last))
        offsets[key] = offset
    total = max((o + s for o, s, _, _ in placed), default=0)
    return offsets, total


def compile_graph(graph: Graph, input_shapes: dict, rounding: int = 0, num_threads: int = 1) -> Plan:
    from cython_ops.engine import Engine
    ctx = Ctx(graph, rounding)
    ctx.num_threads = num_threads     # big convs split their output pixels over this many threads
    for idx in graph.inputs:
        t = graph.tensors[idx]
        shape = tuple(input_shapes.get(idx, t.shape))
        if shape != tuple(t.shape):
            ctx.batch_changed = True
        ctx.shapes[idx] = shape
    steps = []
    for op in graph.ops:
        prepare = PREPARE.get(op.type)
        if prepare is None:
            raise UnsupportedOpError(f"{op.describe()}: op {op.type} is not supported; supported ops: "
                                     f"{', '.join(SUPPORTED_OPS)}")
        if op.version > MAX_VERSION.get(op.type, 1):
            raise UnsupportedOpError(f"{op.describe()}: version {op.version} of {op.type} is not supported "
                                     f"(up to {MAX_VERSION[op.type]})")
        for t in op.outputs:
            if op.type in _ONNX_PREPARE or (op.type in ONNX_INTEGER_MOVES
                                            and graph.tensors[t].dtype in (np.dtype(np.int32), np.dtype(np.uint8))):
                continue
            if graph.tensors[t].dtype not in (np.dtype(np.int8), np.dtype(np.float32)):
                raise UnsupportedOpError(f"{op.describe()}: output {graph.tensors[t].describe()} has type "
                                         f"{graph.tensors[t].dtype} (int8 and float32 are supported)")
        step = prepare(ctx, op)
        if isinstance(step, list):
            steps.extend(step)
        elif step is not None:
            steps.append(step)
    for idx in graph.outputs:
        if idx not in ctx.shapes:
            raise ModelFormatError(f"graph output {graph.tensors[idx].describe()} is never produced")
        if idx in ctx.constants:
            raise UnsupportedOpError(f"graph output {graph.tensors[idx].describe()} is a constant")

    # lifetimes in step indices; graph inputs and outputs live for the whole invoke
    end = len(steps)
    life = {}

    def touch(t, k):
        if t in ctx.constants or t < 0:
            return
        f, l = life.get(t, (k, k))
        life[t] = (min(f, k), max(l, k))
    for k, step in enumerate(steps):
        for t in step.op.inputs:
            touch(t, k)
        for t in step.op.outputs:
            touch(t, k)
    for t in graph.inputs + graph.outputs + [t for t in life if graph.tensors[t].is_variable]:
        life[t] = (0, end)      # variable (state) tensors persist across invokes: nothing may share their bytes
    sizes = {t: max(_count(ctx.shapes[t]) * graph.tensors[t].dtype.itemsize, 1) for t in life}
    for k, step in enumerate(steps):
        if step.scratch_bytes:
            key = ("scratch", k)
            sizes[key] = step.scratch_bytes
            life[key] = (k, k)
    offsets, total = _plan_arena(sizes, life)
    arena_raw = np.zeros(total + ALIGN, dtype=np.uint8)
    shift = (-_addr(arena_raw)) % ALIGN
    arena = arena_raw[shift:shift + total] if total else arena_raw[:0]
    base = _addr(arena) if total else 0
    const_arrays = {}

    def addr_for(k):
        def addr(t):
            if t == "scratch":
                return base + offsets[("scratch", k)] if ("scratch", k) in offsets else 0
            if t in ctx.constants:
                if t not in const_arrays:
                    const_arrays[t] = np.ascontiguousarray(ctx.constants[t])
                return _addr(const_arrays[t])
            return base + offsets[t]
        return addr

    records = []
    for k, step in enumerate(steps):
        ptrs, ints, floats = step.make(addr_for(k))
        records.append((kernel_address(step.kernel), ptrs, [int(v) for v in ints], [float(v) for v in floats]))
    plan = Plan(graph=graph, shapes=ctx.shapes, steps=steps,
                offsets={t: o for t, o in offsets.items() if not isinstance(t, tuple)},
                arena_bytes=total, arena=arena, constants=ctx.constants, keep=ctx.keep + [arena_raw],
                lifetimes={t: span for t, span in life.items() if not isinstance(t, tuple)},
                scratch={t[1]: (o, sizes[t]) for t, o in offsets.items() if isinstance(t, tuple)},
                checks=ctx.run_checks, input_ranges=ctx.input_ranges)
    plan.keep.append(const_arrays)
    plan.engine = Engine(records, keepalive=plan.keep)
    return plan
