"""Moves between space, depth and batch: SPACE_TO_DEPTH and DEPTH_TO_SPACE (strided gathers, em_shape.h),
MIRROR_PAD (REFLECT / SYMMETRIC, a gather through per-axis index tables) and SPACE_TO_BATCH_ND /
BATCH_TO_SPACE_ND (TF1-style dilated convolutions) (cython_ops/include/em_space.h).  Any element type of 1, 4 or
8 bytes; quantized inputs and outputs must share scale and zero point (the bytes are copied).
"""
from __future__ import annotations

import numpy as np

from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import Op
from edgeml.runtime.ops.common import qparams, require_same_quant, row_major_strides
from edgeml.runtime.ops.element_types import pad6_of
from edgeml.runtime.plan import Ctx, OpSpec, Step, address

TYPES = tuple(np.dtype(t) for t in (np.float32, np.int8, np.uint8, np.int32, np.int64))
MIRROR_MODES = {0: "REFLECT", 1: "SYMMETRIC"}


def moved_tensors(ctx: Ctx, op: Op, n_inputs: int):
    """(input, output) of a byte-moving op, checked for type and quantization."""
    if len(op.inputs) != n_inputs:
        raise ModelFormatError(f"{op.describe()}: expects {n_inputs} input(s), got {len(op.inputs)}")
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    if x.dtype != y.dtype:
        raise ModelFormatError(f"{op.describe()}: input {x.dtype} and output {y.dtype} differ")
    if x.dtype not in TYPES:
        raise UnsupportedOpError(f"{op.describe()}: type {x.dtype} is not supported "
                                 f"({', '.join(t.name for t in TYPES)})")
    require_same_quant(op, x, y)
    return x, y


def int_constant(ctx: Ctx, op: Op, position: int, what: str, shape: tuple) -> np.ndarray:
    t = ctx.tensor(op, position)
    data = ctx.const(t, f"{op.describe()} {what}")
    if data.dtype.kind != "i":
        raise ModelFormatError(f"{op.describe()}: {what} has type {data.dtype}, expected an integer type")
    if data.shape != shape:
        raise ModelFormatError(f"{op.describe()}: {what} has shape {list(data.shape)}, expected {list(shape)}")
    return data.astype(np.int64)


def strided_gather(ctx: Ctx, op: Op, x, y, out_shape: tuple, dims: list, strides: list) -> Step:
    ctx.set_output(op, 0, out_shape)
    ints = dict(itemsize=x.dtype.itemsize, dims=dims, strides=strides, start=0)

    def make(addr):
        return dict(input=addr(x.index), output=addr(y.index)), ints, {}
    return Step(op, "gather_strided", make)


def block_size(op: Op, xs: tuple) -> int:
    if len(xs) != 4:
        raise ModelFormatError(f"{op.describe()}: expects a 4-D input, got {list(xs)}")
    b = op.options.get("block_size", 0)
    if not isinstance(b, (int, np.integer)) or b < 1:
        raise ModelFormatError(f"{op.describe()}: block_size must be a positive integer, got {b}")
    return int(b)


def prepare_space_to_depth(ctx: Ctx, op: Op) -> Step:
    """Output channel (by * b + bx) * C + c of pixel (y, x) holds input pixel (y * b + by, x * b + bx)."""
    x, y = moved_tensors(ctx, op, 1)
    n, h, w, c = xs = ctx.shape(x)
    b = block_size(op, xs)
    if h % b or w % b:
        raise ModelFormatError(f"{op.describe()}: input {list(xs)} is not a multiple of block_size {b}")
    return strided_gather(ctx, op, x, y, (n, h // b, w // b, b * b * c), [n, h // b, w // b, b, b, c],
                          [h * w * c, b * w * c, b * c, w * c, c, 1])


def prepare_depth_to_space(ctx: Ctx, op: Op) -> Step:
    """Output pixel (y * b + by, x * b + bx) channel c holds input pixel (y, x) channel (by * b + bx) * C' + c."""
    x, y = moved_tensors(ctx, op, 1)
    n, h, w, c = xs = ctx.shape(x)
    b = block_size(op, xs)
    if c % (b * b):
        raise ModelFormatError(f"{op.describe()}: {c} channels are not a multiple of block_size^2 = {b * b}")
    oc = c // (b * b)
    return strided_gather(ctx, op, x, y, (n, h * b, w * b, oc), [n, h, b, w, b, oc],
                          [h * w * c, w * c, b * oc, c, oc, 1])


def mirror_index(p: int, left: int, size: int, offset: int) -> int:
    """The input coordinate of output coordinate p (LiteRT's GetInputDimension, inside the pads TF allows)."""
    if p < left:
        return left + offset - 1 - p
    if p < left + size:
        return p - left
    return size - 1 - offset - (p - left - size)


def prepare_mirror_pad(ctx: Ctx, op: Op) -> Step:
    x, y = moved_tensors(ctx, op, 2)
    xs = ctx.shape(x)
    rank = len(xs)
    if rank > 6:
        raise UnsupportedOpError(f"{op.describe()}: rank {rank} > 6")
    pads = int_constant(ctx, op, 1, "paddings", (rank, 2))
    mode = MIRROR_MODES.get(op.options.get("mode", 0))
    if mode is None:
        raise ModelFormatError(f"{op.describe()}: unknown mirror mode {op.options.get('mode')}")
    offset = 1 if mode == "REFLECT" else 0
    out = []
    for axis, (d, (left, right)) in enumerate(zip(xs, pads)):
        if min(left, right) < 0 or max(left, right) > d - offset:
            raise ModelFormatError(f"{op.describe()}: {mode} paddings {[int(left), int(right)]} on axis {axis} of "
                                   f"size {d} (each must lie in 0..{d - offset})")
        out.append(int(d + left + right))
    ctx.set_output(op, 0, tuple(out))
    strides = row_major_strides(xs)
    tables = [np.zeros(1, np.int64)] * (6 - rank)
    for axis, (d, (left, _)) in enumerate(zip(xs, pads)):
        tables.append(np.array([mirror_index(p, int(left), d, offset) * strides[axis] for p in range(out[axis])],
                               np.int64))
    starts = np.cumsum([0] + [len(t) for t in tables[:-1]]).tolist()
    flat = ctx.keep_array(np.concatenate(tables) if tables else np.zeros(1, np.int64))
    ints = dict(itemsize=x.dtype.itemsize, dims=pad6_of(op, out), starts=starts)

    def make(addr):
        return dict(input=addr(x.index), output=addr(y.index), tables=address(flat)), ints, {}
    return Step(op, "gather_indexed", make)


def block_geometry(ctx: Ctx, op: Op, xs: tuple, what: str):
    """(block_h, block_w, [[top, bottom], [left, right]]) of SPACE_TO_BATCH_ND / BATCH_TO_SPACE_ND; a 3-D input
    is N, H, C with W = 1."""
    if len(xs) not in (3, 4):
        raise UnsupportedOpError(f"{op.describe()}: input rank {len(xs)} (3 or 4 are supported, as in LiteRT)")
    spatial = len(xs) - 2
    block = int_constant(ctx, op, 1, "block_shape", (spatial,))
    edges = int_constant(ctx, op, 2, what, (spatial, 2))
    if np.any(block < 1):
        raise ModelFormatError(f"{op.describe()}: block_shape {block.tolist()} must be positive")
    if np.any(edges < 0):
        raise ModelFormatError(f"{op.describe()}: {what} {edges.tolist()} must not be negative")
    if spatial == 1:
        block, edges = np.array([block[0], 1]), np.array([edges[0], [0, 0]])
    return int(block[0]), int(block[1]), edges


def batch_space_step(ctx: Ctx, op: Op, x, y, name: str, spatial: tuple, blocked_hw: tuple, block: tuple,
                     corner: tuple) -> Step:
    n, h, w, c = spatial
    pad = np.zeros(max(c, 1) * x.dtype.itemsize, np.uint8)
    if x.dtype.itemsize == 1 and y.quant is not None:
        pad[:] = np.uint8(qparams(y, op)[1] & 0xFF)     # 8-bit types pad with the zero point, others with 0
    pad_pixel = ctx.keep_array(pad)
    ints = dict(pixel_bytes=c * x.dtype.itemsize, batch=n, height=h, width=w, blocked_height=blocked_hw[0],
                blocked_width=blocked_hw[1], block_h=block[0], block_w=block[1], top=corner[0], left=corner[1])

    def make(addr):
        return dict(input=addr(x.index), output=addr(y.index), pad_pixel=address(pad_pixel)), ints, {}
    return Step(op, name, make)


def four_d(xs: tuple) -> tuple:
    return tuple(xs) if len(xs) == 4 else (xs[0], xs[1], 1, xs[2])


def prepare_space_to_batch(ctx: Ctx, op: Op) -> Step:
    x, y = moved_tensors(ctx, op, 3)
    xs = ctx.shape(x)
    bh, bw, pads = block_geometry(ctx, op, xs, "paddings")
    n, h, w, c = four_d(xs)
    ph, pw = h + int(pads[0].sum()), w + int(pads[1].sum())
    if ph % bh or pw % bw:
        raise ModelFormatError(f"{op.describe()}: padded size {ph} x {pw} is not a multiple of the block {bh} x {bw}")
    out = (n * bh * bw, ph // bh, pw // bw, c)
    ctx.set_output(op, 0, out if len(xs) == 4 else (out[0], out[1], c))
    return batch_space_step(ctx, op, x, y, "space_to_batch", (n, h, w, c), out[1:3], (bh, bw),
                            (int(pads[0][0]), int(pads[1][0])))


def prepare_batch_to_space(ctx: Ctx, op: Op) -> Step:
    x, y = moved_tensors(ctx, op, 3)
    xs = ctx.shape(x)
    bh, bw, crops = block_geometry(ctx, op, xs, "crops")
    nb, h, w, c = four_d(xs)
    if nb % (bh * bw):
        raise ModelFormatError(f"{op.describe()}: batch {nb} is not a multiple of the block {bh} x {bw}")
    oh, ow = h * bh - int(crops[0].sum()), w * bw - int(crops[1].sum())
    if oh < 0 or ow < 0:
        raise ModelFormatError(f"{op.describe()}: crops {crops.tolist()} exceed the {h * bh} x {w * bw} image")
    out = (nb // (bh * bw), oh, ow, c)
    ctx.set_output(op, 0, out if len(xs) == 4 else (out[0], out[1], c))
    return batch_space_step(ctx, op, x, y, "batch_to_space", out, (h, w), (bh, bw),
                            (int(crops[0][0]), int(crops[1][0])))


OPS = {
    "SPACE_TO_DEPTH": OpSpec(prepare_space_to_depth, max_version=2, output_types=None),
    "DEPTH_TO_SPACE": OpSpec(prepare_depth_to_space, max_version=2, output_types=None),
    "MIRROR_PAD": OpSpec(prepare_mirror_pad, max_version=3, output_types=None),
    "SPACE_TO_BATCH_ND": OpSpec(prepare_space_to_batch, max_version=4, output_types=None),
    "BATCH_TO_SPACE_ND": OpSpec(prepare_batch_to_space, max_version=4, output_types=None),
}
