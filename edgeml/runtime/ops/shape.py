"""Data movement: RESHAPE, SQUEEZE, EXPAND_DIMS, TRANSPOSE, STRIDED_SLICE, SPLIT, SPLIT_V, UNPACK, PACK,
CONCATENATION, PAD, PADV2, REVERSE_V2 and ONNX ReverseSequence (cython_ops/include/em_shape.h).  RESHAPE, SQUEEZE
and EXPAND_DIMS copy nothing: their output is their input's region of the arena (Step.alias)."""
from __future__ import annotations

from typing import Optional

import numpy as np

from cython_ops import load_concat, load_ops, load_pad, load_shape
from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import UINT8, Op
from edgeml.runtime.layouts import CONCAT_MAX_INPUTS
from edgeml.runtime.ops.common import (element_count, fused_activation, qparams, require_same_quant,
                                       resolve_axis, row_major_strides, spatial_padding)
from edgeml.runtime.ops.element_types import pad6_of
from edgeml.runtime.ops.folding import fold, inputs_constant, int_values, strided_values
from edgeml.runtime.plan import INT8_FLOAT32, Ctx, OpSpec, Step, address
from edgeml.runtime.requant import uint8_rescale_table


# load_ops.reshape_shell's types: int8, int16, uint8 (their quantization must match), int32 / int64 (shape inputs)
SHELL_TYPES = tuple(np.dtype(t) for t in (np.int8, np.int16, np.uint8, np.int32, np.int64))


def copy_step(ctx: Ctx, op: Op, out_shape) -> Step:
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    if x.dtype != y.dtype:
        raise ModelFormatError(f"{op.describe()}: input {x.dtype} and output {y.dtype} differ")
    require_same_quant(op, x, y)
    if element_count(out_shape) != element_count(ctx.shape(x)):
        raise ModelFormatError(f"{op.describe()}: cannot reshape {list(ctx.shape(x))} to {list(out_shape)}")
    if x.index in ctx.constants:
        return fold(ctx, op, 0, ctx.constants[x.index].reshape(out_shape))
    ctx.set_output(op, 0, out_shape)
    return alias_step(op, x.index, y.index, element_count(out_shape) * x.dtype.itemsize)


def alias_step(op: Op, xi: int, yi: int, nbytes: int) -> Step:
    def make(addr):
        return dict(input=addr(xi), output=addr(yi)), dict(bytes=nbytes), {}
    # the output shares the input's bytes in the arena (the copy then sees one address and does nothing); where the
    # planner cannot alias them (a state tensor), the bytes are copied
    return Step(op, "copy", make, 0, 0, alias=(yi, xi))


def prepare_reshape(ctx: Ctx, op: Op) -> Step:
    shell = load_ops.reshape_shell(ctx, op, *SHELL_TYPES)     # the common case's checks and inference in one call
    if shell is not None:
        return alias_step(op, op.inputs[0], op.outputs[0], shell[1])
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    xs = ctx.shape(x)
    new = None
    if len(op.inputs) > 1 and op.inputs[1] >= 0 and op.inputs[1] in ctx.constants:
        spec = ctx.constants[op.inputs[1]]
        if spec.dtype not in (np.int32, np.int64):
            raise ModelFormatError(f"{op.describe()}: the shape tensor has type {spec.dtype}; it must be int32")
        new = int_values(spec)
    elif "new_shape" in op.options and len(op.options["new_shape"]):
        new = [int(v) for v in op.options["new_shape"]]
    if new is None:
        new = list(y.shape)
    if (ctx.batch_changed and new and -1 not in new and element_count(new) != element_count(xs) and xs
            and new[0] == y.shape[0] == x.shape[0] and element_count(new[1:]) == element_count(xs[1:])):
        new[0] = xs[0]  # the file's batch was baked into the shape: it follows the input's batch (axis 0 only)
    if new.count(-1) > 1:
        raise ModelFormatError(f"{op.describe()}: more than one -1 in new shape {new}")
    if -1 in new:
        known = element_count([d for d in new if d != -1])
        if known == 0 or element_count(xs) % known:
            raise ModelFormatError(f"{op.describe()}: cannot reshape {list(xs)} to {new}")
        new[new.index(-1)] = element_count(xs) // known
    if any(d < 0 for d in new) or element_count(new) != element_count(xs):
        raise ModelFormatError(f"{op.describe()}: cannot reshape {list(xs)} to {new}")
    return copy_step(ctx, op, tuple(new))


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
    return copy_step(ctx, op, tuple(out))


def prepare_expand_dims(ctx: Ctx, op: Op) -> Step:
    xs = list(ctx.shape(ctx.tensor(op, 0)))
    axis = int(ctx.const(ctx.tensor(op, 1), f"{op.describe()} axis").reshape(-1)[0])
    if axis < 0:
        axis += len(xs) + 1
    if not 0 <= axis <= len(xs):
        raise ModelFormatError(f"{op.describe()}: axis out of range")
    return copy_step(ctx, op, tuple(xs[:axis] + [1] + xs[axis:]))


def merge_gather_dims(op: Op, dims: list, strides: list) -> tuple[list, list]:
    """The same gather over fewer dims (6-D, leading 1s): size-1 dims dropped, and a dim joined to the next where
    the input steps through the pair as through one dim, so the kernel's innermost runs are as long as possible
    (a contiguous one is one memcpy).  More than 6 dims left: UnsupportedOpError naming `op`."""
    merged = []
    for d, s in zip(dims, strides):
        if d == 1:
            continue
        if merged and merged[-1][1] == s * d:
            merged[-1] = (merged[-1][0] * d, s)
        else:
            merged.append((d, s))
    if len(merged) > 6:
        raise UnsupportedOpError(f"{op.describe()}: rank {len(merged)} > 6 is not supported (after merging dims)")
    merged = [(1, 0)] * (6 - len(merged)) + merged
    return [m[0] for m in merged], [m[1] for m in merged]


def gather_step(ctx: Ctx, op: Op, out_shape, start: int, in_strides: list, same_quant: bool = True) -> Step:
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    if x.dtype != y.dtype or x.dtype.itemsize not in (1, 2, 4, 8):
        raise UnsupportedOpError(f"{op.describe()}: type {x.dtype} -> {y.dtype} not supported")
    if same_quant:
        require_same_quant(op, x, y)
    if x.index in ctx.constants:
        return fold(ctx, op, 0, strided_values(ctx.constants[x.index], out_shape, start, in_strides))
    load_ops.set_output_shape(ctx, op, 0, tuple(out_shape), y)
    dims, strides = merge_gather_dims(op, list(out_shape), list(in_strides))
    return gather_strided_step(op, x.index, y.index, dict(itemsize=x.dtype.itemsize, dims=dims, strides=strides,
                                                          start=start))


def gather_strided_step(op: Op, xi: int, yi: int, ints: dict) -> Step:
    def make(addr):
        return dict(input=addr(xi), output=addr(yi)), ints, {}
    return Step(op, "gather_strided", make, 0, 0)


def prepare_reverse_v2(ctx: Ctx, op: Op) -> Step:
    """REVERSE_V2 (the backward half of a Bidirectional RNN): a gather with negated strides on the given axes.
    LiteRT copies the raw values even when the converter gives the output other int8 parameters; so does this."""
    xs = list(ctx.shape(ctx.tensor(op, 0)))
    if len(xs) > 6:
        raise UnsupportedOpError(f"{op.describe()}: rank {len(xs)} > 6")
    axes = {resolve_axis(op, int(a), len(xs)) for a in ctx.const(ctx.tensor(op, 1), f"{op.describe()} axes").reshape(-1)}
    st = row_major_strides(xs)
    start = sum((xs[a] - 1) * st[a] for a in axes if xs[a] > 0)
    return gather_step(ctx, op, xs, start, [-st[a] if a in axes else st[a] for a in range(len(xs))],
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
        lens_ptr = address(ctx.keep_array(ctx.constants[lens.index].astype(np.int64)))
    elif lens.index in ctx.graph.inputs and lens.dtype == np.int64:
        ctx.input_ranges[lens.index] = (0, xs[time_axis], f"sequence lengths of {op.describe()}")
        lens_ptr = None
    else:
        raise UnsupportedOpError(f"{op.describe()}: sequence_lens must be a constant or an int64 graph input")
    ctx.set_output(op, 0, tuple(xs))
    st, isz = row_major_strides(xs), x.dtype.itemsize
    ints = dict(batch=xs[batch_axis], steps=xs[time_axis], batch_stride=st[batch_axis] * isz,
                time_stride=st[time_axis] * isz, inner_bytes=element_count(xs[2:]) * isz)

    def make(addr):
        return dict(input=addr(x.index), output=addr(y.index), lens=lens_ptr or addr(lens.index)), ints, {}
    return Step(op, "reverse_sequence", make, 0, 0)


def prepare_transpose(ctx: Ctx, op: Op) -> Step:
    xs = ctx.shape(ctx.tensor(op, 0))
    perm = int_values(ctx.const(ctx.tensor(op, 1), f"{op.describe()} permutation"))
    if sorted(perm) != list(range(len(xs))):
        raise ModelFormatError(f"{op.describe()}: {perm} is not a permutation of {len(xs)} axes")
    if len(xs) > 6:
        raise UnsupportedOpError(f"{op.describe()}: rank {len(xs)} > 6")
    st = row_major_strides(xs)
    return gather_step(ctx, op, [xs[p] for p in perm], 0, [st[p] for p in perm])


def prepare_strided_slice(ctx: Ctx, op: Op) -> Step:
    shell = load_ops.strided_slice_shell(ctx, op, *SHELL_TYPES)      # the common case's checks and gather, one call
    if type(shell) is tuple:      # a constant input (shape arithmetic): folded in one call where it can be
        data = ctx.constants[op.inputs[0]]
        if load_shape.gather_fold(ctx, op, data, *shell):
            return None
        return fold(ctx, op, 0, strided_values(data, *shell))
    if shell is not None:
        return gather_strided_step(op, op.inputs[0], op.outputs[0], shell)
    xs = list(ctx.shape(ctx.tensor(op, 0)))
    rank = len(xs)
    what = op.describe()
    begin = int_values(ctx.const(ctx.tensor(op, 1), f"{what} begin"))
    end = int_values(ctx.const(ctx.tensor(op, 2), f"{what} end"))
    strides = int_values(ctx.const(ctx.tensor(op, 3), f"{what} strides"))
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
    in_st = row_major_strides(xs)
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
    return gather_step(ctx, op, out_shape, start, out_strides)


def split_steps(ctx: Ctx, op: Op, x, axis: int, sizes: list, drop_axis: bool) -> list:
    """One strided-gather step per output: output k is the slab [start_k, start_k + sizes[k]) along `axis`."""
    xs = list(ctx.shape(x))
    if len(sizes) != len(op.outputs):
        raise ModelFormatError(f"{op.describe()}: {len(sizes)} pieces for {len(op.outputs)} outputs")
    if sum(sizes) != xs[axis] or any(n < 0 for n in sizes):
        raise ModelFormatError(f"{op.describe()}: pieces {sizes} do not add up to dimension {axis} of {xs}")
    if len(xs) > 6:
        raise UnsupportedOpError(f"{op.describe()}: rank > 6")
    st = row_major_strides(xs)
    steps, start = [], 0
    for k, n in enumerate(sizes):
        y = ctx.tensor(op, k, "output")
        if y.dtype != x.dtype or x.dtype.itemsize not in (1, 2, 4, 8):
            raise UnsupportedOpError(f"{op.describe()}: type {x.dtype} -> {y.dtype} not supported")
        require_same_quant(op, x, y)
        shape = xs[:axis] + ([] if drop_axis else [n]) + xs[axis + 1:]
        strides = st[:axis] + ([] if drop_axis else [st[axis]]) + st[axis + 1:]
        load_ops.set_output_shape(ctx, op, k, tuple(shape), y)
        dims6, strides6 = merge_gather_dims(op, list(shape), list(strides))     # e.g. one channel of NHWC: one run
        ints = dict(itemsize=x.dtype.itemsize, dims=dims6, strides=strides6, start=start * st[axis])

        def make(addr, ints=ints, y=y):
            return dict(input=addr(x.index), output=addr(y.index)), ints, {}
        steps.append(Step(op, "gather_strided", make, 0))
        start += n
    return steps


def prepare_split(ctx: Ctx, op: Op) -> list:
    pieces = load_ops.split_shell(ctx, op, *SHELL_TYPES)      # equal pieces: every check and gather in one call
    if pieces is not None:
        return [gather_strided_step(op, op.inputs[1], yi, ints) for yi, ints in pieces]
    x = ctx.tensor(op, 1)
    xs = ctx.shape(x)
    axis = resolve_axis(op, int(ctx.const(ctx.tensor(op, 0), f"{op.describe()} axis").reshape(-1)[0]), len(xs))
    n = len(op.outputs)
    if n == 0 or xs[axis] % n:
        raise ModelFormatError(f"{op.describe()}: dimension {axis} of {list(xs)} does not split into {n}")
    return split_steps(ctx, op, x, axis, [xs[axis] // n] * n, False)


def prepare_split_v(ctx: Ctx, op: Op) -> list:
    x = ctx.tensor(op, 0)
    xs = ctx.shape(x)
    sizes = int_values(ctx.const(ctx.tensor(op, 1), f"{op.describe()} size_splits"))
    axis = resolve_axis(op, int(ctx.const(ctx.tensor(op, 2), f"{op.describe()} axis").reshape(-1)[0]), len(xs))
    if sizes.count(-1) == 1:
        sizes[sizes.index(-1)] = xs[axis] - (sum(sizes) + 1)
    return split_steps(ctx, op, x, axis, sizes, False)


def prepare_unpack(ctx: Ctx, op: Op) -> list:
    x = ctx.tensor(op, 0)
    xs = ctx.shape(x)
    axis = resolve_axis(op, op.options.get("axis", 0), len(xs))
    return split_steps(ctx, op, x, axis, [1] * xs[axis], True)


CONV_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D")


def same_padding(conv: Op, kernel_hw, padded_hw) -> Optional[list]:
    """TFLite's SAME padding (top, left, bottom, right) of `conv` on an input of spatial size `padded_hw`; None when
    its strides or dilations are not positive (the conv's prepare reports those)."""
    o = conv.options
    strides = (o.get("stride_h", 1), o.get("stride_w", 1))
    dilations = (o.get("dilation_h_factor", 1), o.get("dilation_w_factor", 1))
    if not all(isinstance(v, (int, np.integer)) and v > 0 for v in strides + dilations):
        return None
    lead, trail = [], []
    for size, k, stride, dilation in zip(padded_hw, kernel_hw, strides, dilations):
        out, first = spatial_padding(conv, int(size), int(k), int(stride), int(dilation))
        total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
        lead.append(first)
        trail.append(total - first)
    return lead + trail


def fold_pad_into_conv(ctx: Ctx, op: Op, x, y, pads: list, value) -> bool:
    """An explicit PAD of H and W whose only reader is an int8 / float32 CONV_2D or DEPTHWISE_CONV_2D, padding
    with what the conv's own padding stands for (the input zero point; 0.0): the conv reads the PAD's input with
    the pads (plus its own: SAME's computed on the padded size, or ONNX's explicit ones) as its explicit padding
    (its kernels skip padding taps, which add (zp - zp) * w = 0), and no PAD step runs.  Returns whether it
    folded."""
    if len(ctx.shape(x)) != 4 or any(pads[0]) or any(pads[3]) or y.index in ctx.graph.outputs:
        return False
    if x.dtype == np.int8:
        if value != qparams(x, op)[1]:
            return False
    elif x.dtype != np.float32 or value != 0.0:
        return False
    readers = ctx.sole_readers
    if readers is None:          # (one C pass over the ops for every PAD of the graph)
        readers = ctx.sole_readers = load_pad.sole_readers(ctx.graph.ops)
    reader = readers.get(y.index)
    if reader is None or reader.index <= op.index:
        return False
    conv = ctx.substitutes.get(reader.index, reader)
    own = conv.options.get("explicit_padding")        # ONNX pads (top, left, bottom, right): zeros too, so they add
    if conv.type not in CONV_OPS or conv.inputs[0] != y.index or y.index in conv.inputs[1:] or \
            (own is None and conv.options.get("padding", 0) not in (0, 1)) or \
            len(conv.inputs) < 2 or conv.inputs[1] not in ctx.constants:
        return False
    w = ctx.constants[conv.inputs[1]]
    if w.dtype != x.dtype or w.ndim != 4 or (conv.type == "CONV_2D" and w.shape[3] != ctx.shape(x)[3]):
        return False          # hybrid, 16x8 and grouped convs keep the PAD
    explicit = [pads[1][0], pads[2][0], pads[1][1], pads[2][1]]    # top, left, bottom, right
    if own is None and conv.options.get("padding", 0) == 0:
        own = same_padding(conv, w.shape[1:3], ctx.shape(y)[1:3])
        if own is None:
            return False
    if own is not None:
        explicit = [a + int(b) for a, b in zip(explicit, own)]
    ctx.substitutes[conv.index] = Op(conv.index, conv.type, conv.version, [x.index] + list(conv.inputs[1:]),
                                     list(conv.outputs), dict(conv.options, explicit_padding=explicit),
                                     list(conv.intermediates))
    return True


def sole_reader(ops: list, t: int):
    """The one op reading tensor t, or None when none or several do (per tensor: sole_readers builds the index)."""
    readers = [o for o in ops if t in o.inputs]
    return readers[0] if len(readers) == 1 else None


def sole_readers(ops: list) -> dict:
    """load_pad.sole_readers' twin: {t: sole_reader(ops, t)} for every tensor t some op reads."""
    return {t: sole_reader(ops, t) for o in ops for t in o.inputs}


def prepare_pad(ctx: Ctx, op: Op) -> Optional[Step]:
    head = load_pad.pad_shell(ctx, op, *SHELL_TYPES)     # the common PAD: its checks and geometry in one call
    if head is not None:
        rows, pad_value, ints = head
        x, y = ctx.graph.tensors[op.inputs[0]], ctx.graph.tensors[op.outputs[0]]
        value = np.zeros(1, x.dtype)
        value[0] = pad_value
        if fold_pad_into_conv(ctx, op, x, y, rows, value[0]):
            return None
        return pad_step(ctx, op, x, y, value, ints)
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    xs = list(ctx.shape(x))
    pads = ctx.const(ctx.tensor(op, 1), f"{op.describe()} paddings").astype(np.int64)
    rows = pads.tolist()         # (Python ints: the checks and sums below on lists, not on numpy scalars)
    if pads.shape != (len(xs), 2) or any(p < 0 for row in rows for p in row):
        raise ModelFormatError(f"{op.describe()}: paddings {rows} do not fit input rank {len(xs)}")
    if len(xs) > 6:
        raise UnsupportedOpError(f"{op.describe()}: rank > 6")
    if x.dtype != y.dtype:
        raise ModelFormatError(f"{op.describe()}: input and output types differ")
    require_same_quant(op, x, y)
    out = [d + p[0] + p[1] for d, p in zip(xs, rows)]
    load_ops.set_output_shape(ctx, op, 0, tuple(out), y)
    value = np.zeros(1, x.dtype)
    if x.dtype == np.int8:
        zero_point = qparams(x, op)[1]
        if not -128 <= zero_point <= 127:
            raise ModelFormatError(f"{op.describe()}: int8 {x.describe()} has zero point {zero_point}, outside int8")
        value[0] = zero_point
    if op.type == "PADV2" and len(op.inputs) > 2 and op.inputs[2] >= 0:
        cv = ctx.const(ctx.tensor(op, 2), f"{op.describe()} constant value")
        if cv.dtype != x.dtype or cv.size != 1:
            raise ModelFormatError(f"{op.describe()}: constant value must be one {x.dtype}")
        value[0] = cv.reshape(-1)[0]
    if fold_pad_into_conv(ctx, op, x, y, rows, value[0]):
        return None
    in6, out6 = pad6_of(op, xs), pad6_of(op, out)
    lead6 = [0] * (6 - len(xs)) + [p[0] for p in rows]
    ost = row_major_strides(out6)
    origin = sum(p * s for p, s in zip(lead6, ost))
    return pad_step(ctx, op, x, y, value, dict(itemsize=x.dtype.itemsize, dims=in6, out_strides=ost[:5] + [0],
                                                origin=origin, out_count=element_count(out)))


def pad_step(ctx: Ctx, op: Op, x, y, value: np.ndarray, ints: dict) -> Step:
    """The pad kernel's step: the pad value (one element of x's type) kept, `ints` its geometry."""
    vk = ctx.keep_array(value)

    def make(addr):
        return dict(input=addr(x.index), output=addr(y.index), value=address(vk)), ints, {}
    return Step(op, "pad", make, 0, 0)




def concat_steps(op: Op, y, ins: list, outer: int, rows: list, tables: Optional[list] = None,
                 ctx: Optional[Ctx] = None) -> list:
    """y = [outer] rows, each the concatenation of one row of every input (rows[k] bytes of input k).
    Up to CONCAT_MAX_INPUTS inputs per em_concat step; a later step writes its inputs' columns of every output row
    (the output pointer advanced past the earlier columns, the output row length unchanged).  tables: a 256-byte
    table per input (None: copied) for uint8 inputs rescaled to the output's quantization (em_concat_lut)."""
    out_row = sum(rows)
    steps = []
    for first in range(0, len(ins), CONCAT_MAX_INPUTS):
        part = ins[first:first + CONCAT_MAX_INPUTS]
        unused = [0] * (CONCAT_MAX_INPUTS - len(part))
        ints = dict(n=len(part), outer=outer, out_row_bytes=out_row, row_bytes=rows[first:first + len(part)] + unused)
        column = sum(rows[:first])
        part_tables = (tables or [None] * len(ins))[first:first + len(part)]
        lut = None
        if any(t is not None for t in part_tables):
            lut = ctx.keep_array(np.stack([np.zeros(256, np.uint8) if t is None else t for t in part_tables]))
            ints = dict(ints, lut_mask=sum(1 << k for k, t in enumerate(part_tables) if t is not None))

        def make(addr, part=part, ints=ints, column=column, unused=unused, lut=lut):
            ptrs = dict(output=addr(y.index) + column, inputs=[addr(t.index) for t in part] + unused)
            if lut is not None:
                ptrs["tables"] = address(lut)
            return ptrs, ints, {}
        steps.append(Step(op, "concat" if lut is None else "concat_lut", make, 0, 0))
    return steps


def uint8_concat_tables(op: Op, ins: list, y) -> list:
    """LiteRT's uint8 CONCATENATION rescales each input quantized unlike the output (one table each, None: the
    input is copied as LiteRT copies it)."""
    s_out, zp_out = qparams(y, op)
    tables = []
    for t in ins:
        s_in, zp_in = qparams(t, op)
        same = zp_in == zp_out and np.float32(s_in) == np.float32(s_out)
        try:
            tables.append(None if same else uint8_rescale_table(s_in, zp_in, s_out, zp_out))
        except ValueError as e:
            raise ModelFormatError(f"{op.describe()}: {e}") from None
    return tables


def prepare_concatenation(ctx: Ctx, op: Op) -> list:
    shell = load_ops.concatenation_shell(ctx, op, *SHELL_TYPES[:3])    # a copying concat's checks, one call
    if shell is not None:
        return concat_steps(op, *shell)
    rescaling = load_concat.uint8_concatenation_shell(ctx, op, SHELL_TYPES[0], UINT8)    # uint8 rescales, one call
    if rescaling is not None:
        return concat_steps(op, *rescaling, ctx=ctx)
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
    rescaled = bool(op.options.get(UINT8)) and y.dtype == np.int8     # uint8 inputs are rescaled, others copied
    for t, s in zip(ins, shapes):
        if t.dtype != y.dtype:
            raise UnsupportedOpError(f"{op.describe()}: input types differ")
        if len(s) != rank or any(s[d] != shapes[0][d] for d in range(rank) if d != axis):
            raise ModelFormatError(f"{op.describe()}: shapes {shapes} do not concatenate on axis {axis}")
        if not rescaled:
            require_same_quant(op, t, y)
    if fused_activation(op) != "NONE":
        raise UnsupportedOpError(f"{op.describe()}: fused activation on CONCATENATION")
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    if inputs_constant(ctx, op):
        return fold(ctx, op, 0, np.concatenate([ctx.constants[t.index] for t in ins], axis=axis))
    ctx.set_output(op, 0, tuple(out))
    isz = y.dtype.itemsize
    tables = uint8_concat_tables(op, ins, y) if rescaled else None
    return concat_steps(op, y, ins, element_count(out[:axis]), [element_count(s[axis:]) * isz for s in shapes],
                        tables, ctx)


def prepare_pack(ctx: Ctx, op: Op) -> list:
    """PACK (tf.stack): values_count equal-shaped inputs stacked on a new output axis; a CONCATENATION of the
    inputs each viewed with a unit dimension at that axis.  The values are copied, not requantized: LiteRT's
    Prepare refuses int8 inputs whose scale or zero point differ from the output's, and so does this."""
    if load_shape.pack_fold(ctx, op, SHELL_TYPES[3], SHELL_TYPES[4]):     # constant shape arithmetic, one call
        return None
    y = ctx.tensor(op, 0, "output")
    ins = [ctx.tensor(op, k) for k in range(len(op.inputs))]
    count = op.options.get("values_count", 0)
    if count != len(ins) or not ins:
        raise ModelFormatError(f"{op.describe()}: values_count {count} but {len(ins)} inputs")
    first = ctx.shape(ins[0])
    shape = list(first)
    quantized = y.dtype in (np.int8, np.int16)
    y_params = None        # (the output's, read once after the first input's, as before, not per input)
    for t in ins:
        if ctx.shape(t) != first and list(ctx.shape(t)) != shape:
            raise ModelFormatError(f"{op.describe()}: inputs of shapes {[list(ctx.shape(t)) for t in ins]} "
                                   "cannot be stacked (they must all be equal)")
        if t.dtype != y.dtype:
            raise ModelFormatError(f"{op.describe()}: input {t.describe()} has type {t.dtype}, the output {y.dtype}")
        if quantized:
            t_params = qparams(t, op)
            y_params = y_params or qparams(y, op)
            if t_params == y_params:
                continue
            raise ModelFormatError(f"{op.describe()}: {y.dtype} input {t.describe()} has scale / zero point "
                                   f"{qparams(t, op)}, the output {qparams(y, op)}; PACK copies values, so "
                                   "they must be equal (LiteRT refuses the model too)")
    axis = op.options.get("axis", 0)
    a = axis + len(shape) + 1 if axis < 0 else axis
    if not 0 <= a <= len(shape):
        raise ModelFormatError(f"{op.describe()}: axis {axis} outside the output rank {len(shape) + 1}")
    if inputs_constant(ctx, op):
        values = [ctx.constants[t.index] for t in ins]
        # (scalars, the shape arithmetic's case: np.array of 0-d arrays of one type is np.stack's result)
        return fold(ctx, op, 0, np.array(values) if not shape else np.stack(values, axis=a))
    load_ops.set_output_shape(ctx, op, 0, tuple(shape[:a] + [count] + shape[a:]), y)
    return concat_steps(op, y, ins, element_count(shape[:a]), [element_count(shape[a:]) * y.dtype.itemsize] * count)


# byte moves: ONNX graphs also move int32 (ConvInteger / MatMulInteger sums) and uint8 values with them; shape
# arithmetic moves int32 / int64, masks bool
MOVED_TYPES = INT8_FLOAT32 + (np.dtype(np.int32), np.dtype(np.uint8), np.dtype(np.int64), np.dtype(np.bool_),
                              np.dtype(np.int16))
WITH_INT16 = INT8_FLOAT32 + (np.dtype(np.int16),)     # the 16x8 scheme's int16 activations
OPS = {
    "RESHAPE": OpSpec(prepare_reshape, max_version=2, output_types=MOVED_TYPES),
    "SQUEEZE": OpSpec(prepare_squeeze, max_version=2, output_types=WITH_INT16),
    "EXPAND_DIMS": OpSpec(prepare_expand_dims, max_version=3, output_types=WITH_INT16),
    "TRANSPOSE": OpSpec(prepare_transpose, max_version=6, output_types=MOVED_TYPES),
    "STRIDED_SLICE": OpSpec(prepare_strided_slice, max_version=8, output_types=MOVED_TYPES),
    "SPLIT": OpSpec(prepare_split, max_version=4, output_types=WITH_INT16),
    "SPLIT_V": OpSpec(prepare_split_v, max_version=2, output_types=WITH_INT16),
    "UNPACK": OpSpec(prepare_unpack, max_version=4, output_types=WITH_INT16),
    "PACK": OpSpec(prepare_pack, max_version=4, output_types=MOVED_TYPES),
    "CONCATENATION": OpSpec(prepare_concatenation, max_version=4, output_types=MOVED_TYPES),
    "PAD": OpSpec(prepare_pad, max_version=4, output_types=WITH_INT16),
    "PADV2": OpSpec(prepare_pad, max_version=4, output_types=WITH_INT16),
    "REVERSE_V2": OpSpec(prepare_reverse_v2, max_version=3, output_types=WITH_INT16),
    "ONNX_REVERSE_SEQUENCE": OpSpec(prepare_reverse_sequence),
}
