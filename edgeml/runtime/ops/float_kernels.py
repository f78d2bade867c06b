"""float32 CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, ADD / SUB / MUL and the clamp / leaky activations on the
SIMD kernels (cython_ops/include/em_float_gemm.h, em_float_depthwise.h, em_float_elementwise.h): weight packing,
steps and kernel names.  The families' prepares (ops/conv.py, ops/fully_connected.py, ops/elementwise.py,
ops/activations.py) call in here for float32 when CONFIG.float_simd names a path (EDGEML_ISA=scalar: the portable
kernels).  The convs, FULLY_CONNECTED and depthwise convs take the fused multiply-add kernels by default and the
reference's multiply-then-add ones (its bits: the same operations in the same order, vectorized across output
channels) with Interpreter(float_exact=True); ONNX Conv / Gemm / MatMul reach these kernels as the same IR ops.
In the fused mode, 3-wide convs with stride 1 or 2 across and at most two vectors of output channels take the row
conv (em_frow_run), whose sums run window row, input channel, window column."""
from __future__ import annotations

from typing import Optional

import numpy as np

from edgeml.ir import Op
from edgeml.runtime.kernels import CONFIG
from edgeml.runtime.plan import Ctx, Step, address

LANES = {"avx512": 16, "avx2": 8}
GROUP = {"avx512": 4, "avx2": 2}        # vectors per column group of the many-row tiles (em_conv2d_f32_*)
SINGLE_GROUP = 8                        # vectors per column group of the one-row tiles
SINGLE_ROW_MAX = 3                      # GEMMs with at most this many rows take the one-row tiles
TABLE_BYTES = 32768                     # input rows (floats) a pointer-table chunk should span, about L1
BIG_WEIGHT_BYTES = 512 * 1024          # convs with more weight bytes than this take chunks of BIG_WEIGHT_CHUNK
BIG_WEIGHT_CHUNK = 192                  # pixels (a multiple of CHUNK_STEP)
CHUNK_STEP = 24                         # chunks are whole tiles of 4, 6 and 8 rows


MAX_TILE_ROWS = 8                       # EM_FGEMM_MAX_TILE_ROWS
COL_SLACK = 16                          # EM_FGEMM_COL_SLACK
NARROW_CHANNELS = 8                     # convs with at most this many output channels take 8-lane vectors
GATHER_IC = 16                          # convs with fewer input channels copy their windows into rows (im2col)
PAIRS = 2                               # gather mode of em_fpair_run: two pixels per 16-lane vector
PAIR_CHANNELS = 8                       # ... for convs with at most this many output channels on AVX-512
ROWS = 3                                # gather mode of em_frow_run: direct convolution along output rows
ROW_PIXELS = 16                         # EM_FROW_PIXELS: the padded copy's columns are whole tiles of these
ROW_MAX_SCRATCH = 4 << 20               # the padded image copy's largest size


def fgemm_scratch_bytes(ic: int, taps: int, chunk: int, gather: int) -> int:
    """em_fgemm_scratch_bytes: a zero row of IC floats, the pointer table (each in whole 64-byte lines), the
    im2col rows."""
    def lines(n):
        return -(-n // 64) * 64
    return lines(ic * 4) + lines((chunk + MAX_TILE_ROWS) * (1 if gather else taps) * 8) + \
        (lines((chunk * taps * ic + COL_SLACK) * 4) if gather else 0) + \
        (((chunk + 1) * taps * ic + 2 * COL_SLACK) * 4 if gather == PAIRS else 0)


def enabled() -> bool:
    return bool(CONFIG.float_simd)


def lane_path(channels: int) -> str:
    """The vector path for `channels` output channels: with at most 8, 16-lane vectors would be half padding, so
    an AVX-512 CPU takes the 8-lane (AVX2) kernels, which run twice the vectors per instruction slot."""
    isa = CONFIG.float_simd
    return "avx2" if isa == "avx512" and channels <= NARROW_CHANNELS else isa


QUANTIZED_TYPES = (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16))


def quantizes_anywhere(ctx: Ctx) -> bool:
    """True when the model (or a graph enclosing this one) holds int8 / uint8 / int16 tensors: hybrid weights,
    QDQ pairs, quantized ops.  There a float result may be quantized later (a hybrid op's per-row input
    quantization, a QuantizeLinear), where a last-bit change moves a rounding tie to a whole step: such models keep
    the reference's operations."""
    return any(t.dtype in QUANTIZED_TYPES for g in (ctx.graph, *ctx.enclosing) for t in g.tensors)


def multiply_add(ctx: Ctx) -> str:
    """The kernel-name infix of the multiply-add: "_fma" (fused, the default in all-float models) or "" (the
    reference's multiply then add: Interpreter(float_exact=True), a model with quantized tensors, or a CPU without
    FMA3)."""
    return "_fma" if CONFIG.float_fma and not ctx.float_exact and not quantizes_anywhere(ctx) else ""


def pack_columns(w_nk: np.ndarray, lanes: int, group: int) -> np.ndarray:
    """Weights [N][K] as the column groups the tiles read: N padded with zero columns to whole vectors of `lanes`,
    groups of `group` vectors, each group k-major ([K][vectors * lanes])."""
    n, k = w_nk.shape
    vectors = -(-n // lanes)
    padded = np.zeros((vectors * lanes, k), np.float32)
    padded[:n] = w_nk
    groups = [padded[g * lanes:min(g + group, vectors) * lanes].T.reshape(-1)
              for g in range(0, vectors, group)]
    return np.concatenate(groups)


def pack_pairs(w_nk: np.ndarray) -> np.ndarray:
    """Weights [N <= 8][K] for em_fpair_run: [K][16], w[c][k] in lanes 2c and 2c + 1 (the two pixels of a pair),
    zeros past N."""
    n, k = w_nk.shape
    out = np.zeros((k, PAIR_CHANNELS, 2), np.float32)
    out[:, :n, :] = w_nk.T[:, :, None]
    return out.reshape(-1)


def pair_bias(bias: Optional[np.ndarray], n: int) -> np.ndarray:
    """The bias of em_fpair_run's de-interleaved vectors: the N channels at lanes 0.. and again at 8.."""
    half = padded_bias(bias, n, PAIR_CHANNELS)
    return np.concatenate([half, half])


def padded_bias(bias: Optional[np.ndarray], n: int, lanes: int) -> np.ndarray:
    """The bias padded to whole vectors; zeros without one (the reference then adds 0.0f)."""
    out = np.zeros(-(-n // lanes) * lanes, np.float32)
    if bias is not None:
        out[:n] = bias
    return out


def gemm_step(ctx: Ctx, op: Op, kernel_of: str, x, y, w_nk: np.ndarray, bias: Optional[np.ndarray], geometry: dict,
              lo: float, hi: float, macs: int) -> Step:
    """A conv (or FULLY_CONNECTED as a 1x1 conv of its rows) on em_conv2d_f32_<isa>; w_nk: [OC][KH * KW * IC]
    with K in the reference's order (window row, window column, input channel)."""
    isa = lane_path(geometry["oc"])
    lanes = LANES[isa]
    pixels = geometry["oh"] * geometry["ow"]
    single = int(pixels * geometry["n"] <= SINGLE_ROW_MAX)
    group = SINGLE_GROUP if single else GROUP[isa]
    ic, taps = geometry["ic"], geometry["kh"] * geometry["kw"]
    gather = int(taps > 1 and ic < GATHER_IC)
    rows_scratch = row_conv_scratch(ctx, geometry) if not single else None
    if rows_scratch is not None:
        isa, gather = CONFIG.float_simd, ROWS
        w = ctx.keep_array(pack_columns(w_nk, LANES[isa], 2))
        b = ctx.keep_array(padded_bias(bias, geometry["oc"], LANES[isa]))
    elif gather and not single and CONFIG.float_simd == "avx512" and geometry["oc"] <= PAIR_CHANNELS:
        # two pixels per 16-lane vector: twice the 8-lane tiles' sums per instruction
        isa, gather = "avx512", PAIRS
        w = ctx.keep_array(pack_pairs(w_nk))
        b = ctx.keep_array(pair_bias(bias, geometry["oc"]))
    else:
        w = ctx.keep_array(pack_columns(w_nk, lanes, group))
        b = ctx.keep_array(padded_bias(bias, geometry["oc"], lanes))
    chunk = max(CHUNK_STEP, TABLE_BYTES // (4 * ic * taps) // CHUNK_STEP * CHUNK_STEP)
    if 4 * ic * taps * geometry["oc"] > BIG_WEIGHT_BYTES:
        # every chunk streams all the weights: with more than L2 holds, take fewer, larger chunks (a column
        # group's weights then stay in L2 across the chunk's tiles)
        chunk = max(chunk, BIG_WEIGHT_CHUNK)
    chunk = min(chunk, max(pixels, 1))
    ints = dict(geometry, group=group, single_row=single, chunk=chunk, gather=gather)
    floats = dict(act_min=lo, act_max=hi)

    def make(addr):
        return (dict(input=addr(x.index), weights=address(w), bias=address(b), output=addr(y.index),
                     scratch=addr("scratch")), ints, floats)
    scratch = rows_scratch if gather == ROWS else fgemm_scratch_bytes(ic, taps, chunk, gather)
    return Step(op, f"{kernel_of}_f32{multiply_add(ctx)}_{isa}", make, scratch, macs)


def row_conv_scratch(ctx: Ctx, g: dict) -> Optional[int]:
    """The scratch bytes of em_frow_run (the padded copy of one image) when the conv takes it, else None: the fused
    mode (its sums run window row, input channel, window column), stride 1 or 2 and no dilation across, 3-wide
    windows, at most two vectors of output channels (32 on AVX-512, 16 on AVX2: the pointer-table tiles would take
    a broadcast per one or two multiply-adds)."""
    if not (CONFIG.float_simd in LANES and multiply_add(ctx) == "_fma" and
            g["oc"] <= 2 * LANES[CONFIG.float_simd] and g["kw"] == 3 and g["sw"] in (1, 2) and g["dw"] == 1):
        return None
    rows = (g["oh"] - 1) * g["sh"] + (g["kh"] - 1) * g["dh"] + 1
    cols = -(-g["ow"] // ROW_PIXELS) * ROW_PIXELS * g["sw"] + 2
    size = rows * cols * g["ic"] * 4
    return size if size <= ROW_MAX_SCRATCH else None


def conv_step(ctx: Ctx, op: Op, x, y, wdata: np.ndarray, bias: Optional[np.ndarray], geometry: dict, lo: float,
              hi: float, macs: int) -> Step:
    """CONV_2D with weights [OC][KH][KW][IC]."""
    return gemm_step(ctx, op, "conv2d", x, y, wdata.reshape(wdata.shape[0], -1), bias, geometry, lo, hi, macs)


def fully_connected_step(ctx: Ctx, op: Op, x, y, wdata: np.ndarray, bias: Optional[np.ndarray], rows: int, lo: float,
                         hi: float, macs: int) -> Step:
    """FULLY_CONNECTED with weights [units][depth] as the 1x1 conv of its rows."""
    units, depth = wdata.shape
    geometry = dict(n=1, ih=rows, iw=1, ic=depth, oh=rows, ow=1, oc=units, kh=1, kw=1, sh=1, sw=1, dh=1, dw=1,
                    pad_top=0, pad_left=0)
    return gemm_step(ctx, op, "conv2d", x, y, wdata, bias, geometry, lo, hi, macs)


DW_MAX_TAPS = 1024                      # EM_FDW_MAX_TAPS


def depthwise_step(ctx: Ctx, op: Op, x, y, w_taps: np.ndarray, bias: Optional[np.ndarray], geometry: dict, dm: int,
                   lo: float, hi: float, macs: int) -> Optional[Step]:
    """DEPTHWISE_CONV_2D with weights [KH * KW][OC] on em_depthwise_f32_<isa> (None: windows of more than
    DW_MAX_TAPS taps, left to the reference kernel)."""
    if w_taps.shape[0] > DW_MAX_TAPS:
        return None
    w = ctx.keep_array(w_taps.astype(np.float32))
    b = ctx.keep_array(padded_bias(bias, geometry["oc"], 1))
    ints = dict(geometry, dm=dm)
    floats = dict(act_min=lo, act_max=hi)

    def make(addr):
        return dict(input=addr(x.index), weights=address(w), bias=address(b), output=addr(y.index)), ints, floats
    return Step(op, f"depthwise_f32{multiply_add(ctx)}_{lane_path(geometry['oc'])}", make, 0, macs)


def binary_kernel(name: str) -> str:
    """ADD / SUB / MUL float32 ("add_f32", ...) on em_float_elementwise.h's vector loop when a SIMD path is on."""
    return f"{name}_{CONFIG.float_simd}" if CONFIG.float_simd else name


def activation_kernel(kind: int) -> Optional[str]:
    """The clamp (kind 0: RELU family) and leaky (kind 1) float activations on em_float_elementwise.h, or None."""
    return f"clamp_f32_{CONFIG.float_simd}" if CONFIG.float_simd and kind in (0, 1) else None
