"""Checks and shape arithmetic shared by the op families' prepare functions."""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import UINT8, Op
from edgeml.runtime.plan import Ctx


ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
PADDING = {0: "SAME", 1: "VALID"}
IM2COL_ROWS = 64      # output pixels gathered per im2col chunk (scratch = rows x K bytes)


def qparams(t, op: Op, what: str = "") -> tuple[float, int]:
    if t.quant is None:
        raise ModelFormatError(f"{op.describe()}: quantized {t.describe()} has no quantization parameters")
    if t.quant.per_axis:
        raise ModelFormatError(f"{op.describe()}: {t.describe()} must be quantized per tensor")
    s, zp = t.quant.scalar()
    if not s > 0:
        raise ModelFormatError(f"{op.describe()}: {t.describe()} has quantization scale {s}")
    return s, zp


def fused_activation(op: Op) -> str:
    code = op.options.get("fused_activation_function", 0)
    act = ACTIVATIONS.get(code)
    if act not in ("NONE", "RELU", "RELU6", "RELU_N1_TO_1"):
        raise UnsupportedOpError(f"{op.describe()}: fused activation {act or code} is not supported")
    return act


def reject_uint8_hybrid(ctx: Ctx, op: Op):
    """uint8 weights under float activations (TF1's hybrid form) are held as int8 with a zero point, which the
    hybrid kernels (symmetric int8 weights) would misread."""
    if op.options.get(UINT8) and ctx.tensor(op, 0).dtype == np.float32:
        raise UnsupportedOpError(f"{op.describe()}: uint8 weights with float32 input (hybrid) are not supported")


def arithmetic_kind(dtype, what: str) -> str:
    """'int8' or 'f32': the kernels' arithmetic for an input of `dtype`."""
    if dtype == np.int8:
        return "int8"
    if dtype == np.float32:
        return "f32"
    raise UnsupportedOpError(f"{what}: input type {dtype} is not supported (int8, float32)")


def io_kind(ctx: Ctx, op: Op, n_in: int = 1) -> str:
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


MAX_EXTENT = 1 << 31    # kernel extents, strides and pads: the kernels' int64 index arithmetic stays far from overflow


def spatial_padding(op: Op, in_size: int, k: int, stride: int, dilation: int,
                    axis: Optional[int] = None) -> tuple[int, int]:
    """(output size, leading pad) as TFLite computes them, or from ONNX's explicit pads on spatial `axis`."""
    if max((k - 1) * dilation + 1, stride) > MAX_EXTENT:
        raise ModelFormatError(f"{op.describe()}: kernel {k} with dilation {dilation} and stride {stride} reach past "
                               f"{MAX_EXTENT} elements")
    explicit = op.options.get("explicit_padding")
    if explicit is not None and axis is not None:
        lead, trail = int(explicit[axis]), int(explicit[axis + 2])
        if not 0 <= lead <= MAX_EXTENT or not 0 <= trail <= MAX_EXTENT:
            raise ModelFormatError(f"{op.describe()}: padding {lead}, {trail} outside 0..{MAX_EXTENT}")
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


def require_positive(op: Op, **values):
    for name, v in values.items():
        if not isinstance(v, (int, np.integer)) or v <= 0:
            raise ModelFormatError(f"{op.describe()}: {name} must be a positive integer, got {v}")


def pad6(shape) -> list:
    shape = list(shape)
    if len(shape) > 6:
        raise UnsupportedOpError(f"rank {len(shape)} > 6 is not supported")
    return [1] * (6 - len(shape)) + shape


def row_major_strides(shape) -> list:
    out, acc = [], 1
    for d in reversed(list(shape)):
        out.append(acc)
        acc *= d
    return list(reversed(out))


def element_count(shape) -> int:
    """The number of elements, in Python integers (numpy's int64 product wraps around silently)."""
    return math.prod(map(int, shape))


def bias_vector(ctx: Ctx, op: Op, position: int, n_out: int, dtype) -> Optional[np.ndarray]:
    if position >= len(op.inputs) or op.inputs[position] < 0:
        return None
    b = ctx.tensor(op, position)
    data = ctx.constants.get(b.index)
    if data is None:
        ctx.const(b, f"{op.describe()} bias")           # (refuses it, naming the op)
    if data.dtype != dtype:
        raise UnsupportedOpError(f"{op.describe()}: bias type {data.dtype}, expected {np.dtype(dtype)}")
    if data.size != n_out:
        raise ModelFormatError(f"{op.describe()}: bias has {data.size} entries for {n_out} output channels")
    return data.reshape(-1)


def require_same_quant(op: Op, a, b):
    """Ops that copy bytes need equal quantization on both sides (they do not requantize)."""
    if a.dtype in (np.int8, np.int16):
        if qparams(a, op) != qparams(b, op):
            raise UnsupportedOpError(f"{op.describe()}: {a.dtype} {a.describe()} and {b.describe()} must share "
                                     "scale and zero point")
    elif a.dtype == np.uint8 and (a.quant is not None or b.quant is not None):
        if a.quant is None or b.quant is None or qparams(a, op) != qparams(b, op):
            raise UnsupportedOpError(f"{op.describe()}: uint8 {a.describe()} and {b.describe()} must share "
                                     "scale and zero point")


def resolve_axis(op: Op, axis: int, rank: int) -> int:
    a = axis + rank if axis < 0 else axis
    if not 0 <= a < rank:
        raise ModelFormatError(f"{op.describe()}: axis {axis} outside rank {rank}")
    return a


def fully_connected_shape(ctx: Ctx, op: Op, xs: tuple, wdata: np.ndarray) -> tuple[int, int, int]:
    """(rows, depth, units) of a FULLY_CONNECTED with weights [units, depth]; sets its output shape."""
    if wdata.ndim != 2:
        raise ModelFormatError(f"{op.describe()}: weights must be 2-D, got {list(wdata.shape)}")
    if op.options.get("weights_format", 0) != 0:
        raise UnsupportedOpError(f"{op.describe()}: shuffled weights format is not supported")
    n_out, depth = wdata.shape
    require_positive(op, units=n_out, depth=depth)
    total = element_count(xs)
    if total % depth:
        raise ModelFormatError(f"{op.describe()}: input {list(xs)} does not divide into rows of {depth}")
    rows = total // depth
    if op.options.get("keep_num_dims", False):
        if not xs or xs[-1] != depth:
            raise ModelFormatError(f"{op.describe()}: keep_num_dims needs the last input dim to be {depth}")
        ctx.set_output(op, 0, tuple(xs[:-1]) + (n_out,))
    else:
        ctx.set_output(op, 0, (rows, n_out))
    return rows, depth, n_out


def conv_operands(ctx: Ctx, op: Op):
    """(input, weights, output, input shape, weight array) of a conv-like op, checked to be 4-D."""
    x, w, y = ctx.tensor(op, 0), ctx.tensor(op, 1), ctx.tensor(op, 0, "output")
    xs = ctx.shape(x)
    wdata = ctx.constants.get(w.index)
    if wdata is None:
        ctx.const(w, f"{op.describe()} weights")        # (refuses it, naming the op)
    if len(xs) != 4 or wdata.ndim != 4:
        raise ModelFormatError(f"{op.describe()}: expects 4-D input and weights, got {list(xs)} and "
                               f"{list(wdata.shape)}")
    return x, w, y, xs, wdata

