"""The vector depthwise kernels' constants, packed once at load (cython_ops/include/em_depthwise_simd.h): weights, bias
and requantization per vector lane, in the order the kernels' interleaving leaves the values of an output row and
repeated for each pattern of the row; the double-rounding constants as the kernels read them; the offsets of the
taps' runs in the staged rows; and the band and scratch sizes.  One C call (cython_ops/load_depthwise.pyx) writes
them all into one kept block; depthwise_rows here is its numpy twin, built from the per-part forms below."""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from cython_ops import load_depthwise
from edgeml.errors import ModelFormatError
from edgeml.runtime.packing import wrap_int32
from edgeml.runtime.load_profile import timed
from edgeml.runtime.plan import KEEP_ALIGN, Ctx
from edgeml.runtime.requant import REQUANT_FLOAT, ColumnRequant


@dataclass(frozen=True)
class RowKernel:
    """One vector depthwise kernel: values per step, taps per weight group, bytes per staged value."""
    name: str
    step: int          # output values per vector step (VB)
    group: int         # taps summed per instruction (vpdpbusd 4, vpmaddwd 2)
    wide: bool         # staged int16 x - in_zp (else uint8 x + 128)
    table_lanes: int   # lanes per double-rounding constant block (em_mbqm16_lanes 16, em_mbqm8_lanes 8)


ROW_KERNELS = {k.name: k for k in (RowKernel("depthwise_int8_vnni", 64, 4, False, 16),
                                   RowKernel("depthwise_int8_avxvnni", 32, 4, False, 8),
                                   RowKernel("depthwise_int8_avx2", 32, 2, True, 8))}
MAX_PATTERNS = 64          # longer periods (channel counts like 1001) go pixel by pixel instead
BAND_BYTES = 96 * 1024     # staged rows per band: they stay in L2 while the band's output rows read them
INT8, INT32, FLOAT32, FLOAT64 = (np.dtype(t) for t in (np.int8, np.int32, np.float32, np.float64))


@functools.lru_cache(maxsize=None)
def lane_positions(kernel: RowKernel) -> np.ndarray:
    """The value (0 .. step - 1 of a vector step) each accumulator lane holds, accumulators in order (one
    read-only array per kernel, shared by every op).  Byte unpacks of four taps leave accumulator k with values
    16 L + 4 k + i in dword 4 L + i (128-bit lane L); int16 unpacks of two taps, in two 16-value halves h, leave
    accumulator 2 h + j with values 16 h + 8 L + 4 j + i."""
    if kernel.group == 4:
        pos = np.array([16 * L + 4 * k + i for k in range(4) for L in range(kernel.step // 16) for i in range(4)])
    else:
        pos = np.array([16 * (k // 2) + 8 * L + 4 * (k % 2) + i for k in range(4) for L in range(2) for i in range(4)])
    pos.flags.writeable = False
    return pos


def mbqm_lanes16(mult: np.ndarray, shift: np.ndarray, out=None) -> np.ndarray:
    """em_mbqm16_lanes per 16 lanes (em_gemm_vnni.h em_mbqm_consts): int32 m, m_odd, left; int64 add_e, add_o,
    neg_e, neg_o, sh_e, sh_o (into `out` when given)."""
    if out is not None:
        out[...] = mbqm_lanes16(mult, shift)
        return out
    m = mult.astype(np.int64).reshape(-1, 16)
    e = np.maximum(-shift.astype(np.int64), 0).reshape(-1, 16)
    m_odd = np.zeros_like(m)
    m_odd[:, 0::2] = m[:, 1::2]
    parts = [m.astype(np.int32), m_odd.astype(np.int32), np.maximum(shift, 0).astype(np.int32).reshape(-1, 16)]
    for lanes in (e[:, 0::2], e[:, 1::2]):
        parts.append(np.where(lanes > 0, (1 << 30) + (np.int64(1) << (30 + lanes)), 1 << 30))
    for lanes in (e[:, 0::2], e[:, 1::2]):
        parts.append(np.where(lanes > 0, -(1 << 31), 0).astype(np.int64))
    parts += [31 + e[:, 0::2], 31 + e[:, 1::2]]
    return np.concatenate([np.ascontiguousarray(a).view(np.uint8).reshape(-1, 64) for a in parts], axis=1)


def mbqm_lanes8(mult: np.ndarray, shift: np.ndarray, out=None) -> np.ndarray:
    """em_mbqm8_lanes per 8 lanes (em_gemm_avx2.h em_mbqm8_consts): int32 m, m_odd, left, right, half (into `out`
    when given)."""
    if out is not None:
        out[...] = mbqm_lanes8(mult, shift)
        return out
    m = mult.astype(np.int32).reshape(-1, 8)
    m_odd = np.zeros_like(m)
    m_odd[:, 0::2] = m[:, 1::2]
    s = shift.astype(np.int64).reshape(-1, 8)
    right = np.maximum(-s, 0)
    half = np.where(right > 0, np.int64(1) << np.maximum(right - 1, 0), 0)
    parts = [m, m_odd, np.maximum(s, 0), right, half]
    return np.concatenate([np.ascontiguousarray(p.astype(np.int32)).view(np.uint8).reshape(-1, 32) for p in parts],
                          axis=1)


def lane_weights(w_taps: np.ndarray, ch: np.ndarray, used: np.ndarray, every: bool, kernel: RowKernel, groups: int,
                 w_zp: int, out: np.ndarray) -> None:
    """The weights part of depthwise_rows: w_taps [taps][OC] per lane (ch, used: [patterns][step])
    into out [pattern][tap group][accumulator][lane][tap of the group]; the wide kernels read w - w_zp."""
    taps, oc = w_taps.shape
    patterns = ch.shape[0]
    # (in the packed type: w - w_zp fits int16, and the gathers move 1-2 bytes a value, not 8)
    wt = np.zeros((groups * kernel.group, oc), out.dtype)
    wt[:taps] = w_taps.astype(np.int16) - w_zp if kernel.wide else w_taps
    wl = wt[:, ch] if every else np.where(used[None], wt[:, ch], 0)              # [taps][patterns][step]
    out[...] = wl.reshape(groups, kernel.group, patterns, 4, kernel.step // 4).transpose(2, 0, 3, 4, 1)


def lane_columns(w_taps: np.ndarray, bias, zp_fold: int, zp_add: int, wrap: bool, ch: np.ndarray, used: np.ndarray,
                 mult, shift, scale64, scale32, out_bias, out_mult, out_shift, out_scale64, out_scale32) -> None:
    """The per-lane columns of depthwise_rows: per lane (channel ch, 0 where not used) the bias folded as
    bias - zp_fold * tap sums + zp_add (modulo 2^32 when wrap, else OverflowError outside (-2^31, 2^31)) and the
    channel's requantization values."""
    oc = w_taps.shape[1]
    b = np.zeros(oc, np.int64) if bias is None else np.asarray(bias).astype(np.int64)
    if zp_fold:
        b = b - zp_fold * w_taps.astype(np.int64).sum(0)
    b = b + zp_add
    if wrap:
        b = wrap_int32(b).astype(np.int64)
    elif b.size and not -2 ** 31 < b.min() <= b.max() < 2 ** 31:      # (|b| >= 2^31, in two reductions)
        raise OverflowError("depthwise bias and weights overflow the int32 accumulator")
    used = used.astype(bool)
    for out, a in ((out_bias, b.astype(np.int32)), (out_mult, mult), (out_shift, shift), (out_scale64, scale64),
                   (out_scale32, scale32)):
        out[...] = np.where(used, np.asarray(a)[np.where(used, ch, 0)], 0)


def row_patterns(oc: int, step: int) -> tuple[int, int]:
    """(patterns, segment): whole output rows repeat every oc / gcd(oc, step) vectors; a longer period goes pixel by
    pixel (segment oc, ceil(oc / step) vectors a pixel)."""
    period = oc // math.gcd(oc, step)
    if period <= MAX_PATTERNS:
        return period, 0
    return -(-oc // step), oc


def estimate_table(kernel: RowKernel, mult: np.ndarray, shift: np.ndarray, acc_bound: np.ndarray, rq: ColumnRequant):
    """The float estimate of the fixed-point requantization (em_depthwise_simd.h EM_DW_NEAR_TIE) per block of
    table_lanes lanes: float32 f = M 2^(shift - 31), zp + d and zp - d (d = 2^(shift - 1) for double rounding's
    right shifts, else 0); None where it does not apply: other modes, a left shift, a shift below -31, or a lane
    whose sums (acc_bound: |bias| + 255 sum |w - w_zp| per lane) could reach 2^31 or make |sum| f + 129 reach
    2^30."""
    if rq.mode not in (0, 1) or not shift.size:
        return None
    s = shift.astype(np.int64)
    if s.max() > 0 or s.min() < -31 or mult.min() < 0 or acc_bound.max() >= 2 ** 31:
        return None
    f = mult.astype(np.float64) * np.exp2(s - 31.0)
    if not (acc_bound * f + 129 < 2 ** 30).all():
        return None
    d = np.exp2(s - 1.0) if rq.mode == 0 else np.zeros(s.shape)
    d[s == 0] = 0.0
    parts = [a.astype(np.float32).reshape(-1, kernel.table_lanes) for a in (f, rq.out_zp + d, rq.out_zp - d)]
    return np.stack(parts, axis=1).reshape(-1)


@functools.lru_cache(maxsize=256)
def lane_channels(kernel: RowKernel, oc: int) -> tuple:
    """(patterns, segment, ch, used, every) of a kernel's lanes over oc channels (read-only, shared by every op of
    that width): ch [patterns][step] int64 the channel each lane holds (0 where unused), used [patterns][step] bool,
    every: all lanes used."""
    patterns, segment = row_patterns(oc, kernel.step)
    pos = lane_positions(kernel)
    lanes = np.arange(patterns)[:, None] * kernel.step + pos[None, :]             # [patterns][step] values
    ch = lanes % oc if segment == 0 else lanes
    used = ch < oc
    every = bool(used.all())        # (whole-row patterns use every lane: nothing to mask)
    if not every:
        ch = np.where(used, ch, 0)
    ch = ch.astype(np.int64)
    for a in (ch, used):
        a.flags.writeable = False
    return patterns, segment, ch, used, every


def lane_estimate(w_taps: np.ndarray, bias, w_zp: int, ch: np.ndarray, lane_mult: np.ndarray,
                  lane_shift: np.ndarray, mode: int, out_zp: int, table_lanes: int, out=None) -> bool:
    """The estimate part of depthwise_rows: estimate_table with the bound |bias| + 255 sum |w - w_zp| of
    each lane's channel; whether it applies, the table written into `out` (when given) where it does."""
    bound = (255 * np.abs(w_taps.astype(np.int64) - w_zp).sum(0) +
             (0 if bias is None else np.abs(np.asarray(bias).astype(np.int64))))[np.asarray(ch)].reshape(-1)
    kernel = RowKernel("plain", 0, 0, False, table_lanes)
    table = estimate_table(kernel, np.asarray(lane_mult), np.asarray(lane_shift), bound,
                           ColumnRequant(mode, None, None, None, None, out_zp, 0, 0))
    if table is not None and out is not None:
        out[...] = table
    return table is not None


def tap_offsets(out: np.ndarray, taps: int, kw: int, dh: int, dw: int, sw: int, pitch: int, phase_width: int,
                value_bytes: int) -> None:
    """The tap offsets of depthwise_rows: where each tap's run starts in the staged rows."""
    out[...] = 0
    for t in range(taps):
        ky, kx = divmod(t, kw)
        out[t] = ky * dh * pitch + ((kx * dw) % sw * phase_width + (kx * dw) // sw) * value_bytes


def depthwise_rows(keep, w_taps: np.ndarray, bias, mult, shift, scale64, scale32, in_zp: int, w_zp: int, mode: int,
                   out_zp: int, step: int, group: int, wide: bool, table_lanes: int, oh: int, ow: int, iw: int, kh: int,
                   kw: int, sh: int, sw: int, dh: int, dw: int, threads: int, band_limit: int) -> tuple:
    """The numpy form of load_depthwise.depthwise_rows: everything em_depthwise_simd.h reads for one op, in one block
    from keep((bytes,), np.uint8) (Ctx.keep_new), zeroed between the parts; (block, byte offsets of (weights, bias,
    mult, shift, scale64, scale32, rq_table, tap_offsets, rq_estimate), the kernel's integers)."""
    kernel = RowKernel("plain", step, group, wide, table_lanes)
    taps, oc = w_taps.shape
    patterns, segment, ch, used, every = lane_channels(kernel, oc)
    lanes = ch.size
    ch_flat, used_flat = ch.reshape(-1), used.reshape(-1).view(np.uint8)
    groups = -(-taps // group)
    packed = np.empty((patterns, groups, 4, step // 4, group), np.int16 if wide else np.int8)
    lane_weights(w_taps, ch, used, every, kernel, groups, w_zp, packed)
    zp_fold = 0 if wide else in_zp + 128     # uint8 x + 128 against int8 w: the zero point and 128 fold
    zp_add = taps * (in_zp + 128) * w_zp if not wide and w_zp else 0     # (the kernel adds -w_zp * tap sums)
    wrap = bool(w_zp or mode == REQUANT_FLOAT)      # (onnxruntime's int32 sums wrap)
    per_lane = [np.empty(lanes, d) for d in (np.int32, np.int32, np.int32, np.float64, np.float32)]
    lane_columns(w_taps, bias, zp_fold, zp_add, wrap, ch_flat, used_flat, mult, shift, scale64, scale32, *per_lane)
    lane_mult, lane_shift = per_lane[1], per_lane[2]
    table = (mbqm_lanes16 if table_lanes == 16 else mbqm_lanes8)(lane_mult, lane_shift)
    esz = 2 if wide else 1
    iwp = (ow - 1) * sw + (kw - 1) * dw + 1
    phase_width = -(-iwp // sw)
    pitch = -(-(sw * phase_width * oc * esz) // 64) * 64
    offsets = np.empty(groups * group, np.int64)
    tap_offsets(offsets, taps, kw, dh, dw, sw, pitch, phase_width, oc * esz)
    # the float estimate's table (3 floats a lane) where it applies, else one unread zero
    staged = np.empty(3 * lanes, np.float32)
    estimate = lane_estimate(w_taps, bias, w_zp, ch_flat, lane_mult, lane_shift, mode, out_zp, table_lanes, staged)
    parts = [packed, *per_lane, table, offsets, staged if estimate else np.zeros(1, np.float32)]
    at, total = [], 0
    for a in parts:
        at.append(total)
        total += -(-a.nbytes // KEEP_ALIGN) * KEEP_ALIGN
    block = keep((total,), np.uint8)
    block[...] = 0
    for a, start in zip(parts, at):
        block[start:start + a.nbytes] = np.ascontiguousarray(a).reshape(-1).view(np.uint8)
    rows_per_slice = -(-oh // threads)
    reach = (kh - 1) * dh + 1
    band = max(1, min(rows_per_slice, (band_limit // pitch - reach) // sh + 1))
    in_rows = (band - 1) * sh + reach
    # em_dw_slice: the band or the ring of `reach` slots of pitch + 64 bytes (em_dw_staged_bytes), then one staged
    # input row (tmp), then one row's values repeated (rep)
    band_bytes = -(-(max(in_rows * pitch, reach * (pitch + 64)) + 128) // 64) * 64 + \
        -(-(iw * oc * esz + 64) // 64) * 64 + \
        -(-(iw * oc + 64) // 64) * 64
    return block, tuple(at), dict(patterns=patterns, segment=segment, tap_groups=groups, phase_width=phase_width,
                                  row_pitch=pitch, band_rows=band, band_bytes=band_bytes, threads=threads, w_zp=w_zp,
                                  any_left=int(np.asarray(shift).max(initial=0) > 0), estimate=int(estimate))


@timed("of which: weight packing")
def pack_depthwise_rows(ctx: Ctx, kernel: RowKernel, w_taps: np.ndarray, bias, in_zp: int, rq: ColumnRequant,
                        g: dict, threads: int) -> tuple:
    """Everything em_depthwise_simd.h reads for one op, in one kept block: (block, byte offsets of its parts,
    the kernel's integers) of load_depthwise.depthwise_rows.  w_taps: [taps][OC] (output channel oc = ic * DM + m);
    g: the conv geometry (n, ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, dh, dw, pad_top, pad_left)."""
    one_call = (w_taps.dtype == INT8 and (bias is None or bias.dtype == INT32) and rq.mult.dtype == INT32
                and rq.shift.dtype == INT32 and rq.scale64.dtype == FLOAT64 and rq.mult.flags.c_contiguous
                and rq.shift.flags.c_contiguous and rq.scale64.flags.c_contiguous
                and (bias is None or bias.flags.c_contiguous))
    scale32 = rq.scale32 if rq.scale32.dtype == FLOAT32 else rq.scale32.astype(np.float32)
    try:
        return (load_depthwise.depthwise_rows if one_call else depthwise_rows)(
            ctx.keep_new, w_taps, bias, rq.mult, rq.shift, rq.scale64, np.ascontiguousarray(scale32), in_zp,
            rq.w_zp, rq.mode, rq.out_zp, kernel.step, kernel.group, kernel.wide, kernel.table_lanes, g["oh"],
            g["ow"], g["iw"], g["kh"], g["kw"], g["sh"], g["sw"], g["dh"], g["dw"], threads, BAND_BYTES)
    except OverflowError as exc:
        raise ModelFormatError(str(exc)) from None


PORTABLE_PARTS = (None, INT32, INT32, INT32, FLOAT64, FLOAT32)     # weights (int8, or int16 less w_zp), bias, columns


def pack_depthwise_portable(ctx: Ctx, w_taps: np.ndarray, bias, rq: ColumnRequant) -> tuple:
    """What the portable kernels (em_depthwise.h depthwise_int8 / depthwise_int8_w16) read, in one kept block:
    (block, byte offsets of weights [taps][OC], bias, mult, shift, scale64, scale32), parts at 64-byte offsets.
    Weights with a zero point (uint8 models) are kept as int16 w - w_zp; no bias: zeros."""
    weights = w_taps.astype(np.int16) - rq.w_zp if rq.w_zp else w_taps
    oc = w_taps.shape[1]
    parts = (weights, bias, rq.mult, rq.shift, rq.scale64, rq.scale32)
    at, total = [], 0
    for part, dtype in zip(parts, PORTABLE_PARTS):
        at.append(total)
        nbytes = weights.nbytes if dtype is None else oc * dtype.itemsize
        total += -(-nbytes // KEEP_ALIGN) * KEEP_ALIGN
    block = ctx.keep_new((total,), np.uint8)
    block[...] = 0          # (the gaps too: a plan's kept bytes are compared whole)
    for part, dtype, start in zip(parts, PORTABLE_PARTS, at):
        if part is not None:
            np.ndarray(part.shape, weights.dtype if dtype is None else dtype, block, start)[...] = part
    return block, tuple(at)
