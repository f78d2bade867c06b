"""BATCH_MATMUL, int8 and float32 (cython_ops/include/em_batch_matmul.h): both operands activations (attention
blocks) or a constant right operand, adj_x / adj_y, batch dimensions broadcast (ranks 2 to 5, as LiteRT).

A constant right operand is brought to [n][k] rows with its column sums once here.  int8 requantizes with one
multiplier, LiteRT's float product of the input scales over the output scale, in double (ONNX files:
onnxruntime's float32 scale and float requantization).
"""
from __future__ import annotations

import numpy as np

from edgeml import numerics as Q
from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import REQUANT_FLOAT as IR_REQUANT_FLOAT, Op
from edgeml.runtime.arena import ALIGN
from edgeml.runtime.ops.common import element_count, qparams
from edgeml.runtime.plan import Ctx, OpSpec, Step, address
from edgeml.runtime.requant import REQUANT_FLOAT

F32, S8 = np.dtype(np.float32), np.dtype(np.int8)
MAX_RANK = 5           # LiteRT's BATCH_MATMUL takes ranks 2 to 5: up to three batch dimensions
BATCH_DIMS = 3


def aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def batch_strides(batch: list, matrix: int) -> list:
    """Element strides of each (padded) batch dimension of an operand, 0 where it is broadcast (size 1)."""
    strides, acc = [], matrix
    for d in reversed(batch):
        strides.append(acc if d != 1 else 0)
        acc *= d
    return list(reversed(strides))


def packed_rhs(data: np.ndarray, batch: list, k: int, n: int, adj_y: bool) -> np.ndarray:
    """A constant right operand as [batches][n][k] rows."""
    mats = data.reshape(-1, n, k) if adj_y else data.reshape(-1, k, n).transpose(0, 2, 1)
    return np.ascontiguousarray(mats).reshape(element_count(batch), n, k)


def prepare_batch_matmul(ctx: Ctx, op: Op) -> Step:
    if len(op.inputs) != 2:
        raise ModelFormatError(f"{op.describe()}: BATCH_MATMUL takes two inputs, got {len(op.inputs)}")
    lhs, rhs, y = ctx.tensor(op, 0), ctx.tensor(op, 1), ctx.tensor(op, 0, "output")
    if not lhs.dtype == rhs.dtype == y.dtype or lhs.dtype not in (F32, S8):
        raise UnsupportedOpError(f"{op.describe()}: inputs {lhs.dtype} x {rhs.dtype} -> {y.dtype} (int8 and float32 "
                                 "with one type throughout are supported)")
    ls, rs = list(ctx.shape(lhs)), list(ctx.shape(rhs))
    if not (2 <= len(ls) <= MAX_RANK and 2 <= len(rs) <= MAX_RANK):
        raise UnsupportedOpError(f"{op.describe()}: operand ranks {len(ls)} and {len(rs)} (2 to {MAX_RANK} are "
                                 "supported)")
    adj_x, adj_y = bool(op.options.get("adj_x", False)), bool(op.options.get("adj_y", False))
    rank = max(len(ls), len(rs))
    ls, rs = [1] * (rank - len(ls)) + ls, [1] * (rank - len(rs)) + rs
    m, k = (ls[-1], ls[-2]) if adj_x else (ls[-2], ls[-1])
    k_rhs, n = (rs[-1], rs[-2]) if adj_y else (rs[-2], rs[-1])
    if k != k_rhs:
        raise ModelFormatError(f"{op.describe()}: operands {list(ctx.shape(lhs))} and {list(ctx.shape(rhs))} "
                               f"(adj_x {adj_x}, adj_y {adj_y}) have depths {k} and {k_rhs}")
    batch = []
    for dl, dr in zip(ls[:-2], rs[:-2]):
        if dl != dr and 1 not in (dl, dr):
            raise ModelFormatError(f"{op.describe()}: batch dimensions {ls[:-2]} and {rs[:-2]} do not broadcast")
        batch.append(dr if dl == 1 else dl)
    ctx.set_output(op, 0, tuple(batch) + (m, n))
    pad = [1] * (BATCH_DIMS - len(batch))
    bl, br, bo = pad + ls[:-2], pad + rs[:-2], pad + batch
    isz = lhs.dtype.itemsize
    packed = sums = mult = shift = fscales = None
    if rhs.index in ctx.constants:
        packed = ctx.keep_array(packed_rhs(ctx.constants[rhs.index], br, k, n, adj_y))
        if lhs.dtype == S8:
            sums = ctx.keep_array(packed.astype(np.int64).sum(axis=2).astype(np.int32))
    rhs_bytes = 0 if packed is not None or adj_y else n * k * isz
    lhs_offset = aligned(rhs_bytes)
    sums_offset = aligned(lhs_offset + (m * k * isz if adj_x else 0))
    scratch = sums_offset + (8 * n if lhs.dtype == S8 else 0)
    ints = dict(batch=bo, lhs_strides=batch_strides(bl, m * k), rhs_strides=batch_strides(br, k * n), rows=m,
                cols=n, depth=k, adj_x=int(adj_x), adj_y=int(adj_y), lhs_zp=0, rhs_zp=0, out_zp=0, mode=ctx.rounding,
                lhs_offset=lhs_offset, sums_offset=sums_offset)
    if lhs.dtype == S8:
        if rhs.quant is not None and rhs.quant.per_axis:
            raise UnsupportedOpError(f"{op.describe()}: right operand {rhs.describe()} quantized per channel "
                                     "(LiteRT's int8 BATCH_MATMUL reads one scale)")
        s_l, ints["lhs_zp"] = qparams(lhs, op)
        s_r, ints["rhs_zp"] = qparams(rhs, op)
        s_o, ints["out_zp"] = qparams(y, op)
        if op.options.get("requant") == IR_REQUANT_FLOAT:      # onnxruntime's QLinearMatMul: float32 scale
            fscales = ctx.keep_array(np.full(max(n, 1), Q.column_scales(s_l, np.array([s_r]), s_o)[0], np.float32))
            ints["mode"] = REQUANT_FLOAT
            m0 = sh = 0
        else:
            # GetQuantizedConvolutionMultipler: the input scales' product in float, divided in double
            m0, sh = Q.quantize_multiplier(float(Q.F32(s_l) * Q.F32(s_r)) / float(Q.F32(s_o)), ctx.rounding)
        mult = ctx.keep_array(np.full(max(n, 1), m0, np.int32))
        shift = ctx.keep_array(np.full(max(n, 1), sh, np.int32))
    name = "batch_matmul_int8" if lhs.dtype == S8 else "batch_matmul_f32"

    def make(addr):
        return (dict(lhs=addr(lhs.index), rhs=addr(rhs.index), output=addr(y.index), scratch=addr("scratch"),
                     packed_rhs=address(packed) if packed is not None else 0,
                     col_sums=address(sums) if sums is not None else 0,
                     mult=address(mult) if mult is not None else 0, shift=address(shift) if shift is not None else 0,
                     float_scales=address(fscales) if fscales is not None else 0),
                ints, {})
    return Step(op, name, make, scratch, element_count(bo) * m * n * k)


OPS = {"BATCH_MATMUL": OpSpec(prepare_batch_matmul, max_version=4, output_types=None)}
