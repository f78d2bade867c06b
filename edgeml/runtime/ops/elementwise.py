"""ADD, SUB and MUL with broadcasting, int8 and float32 (cython_ops/include/em_elementwise.h); int32 (loop
counters of WHILE bodies) in cython_ops/include/em_loop_ops.h.

int8 runs on the vector path of every ISA (AVX-512 16 lanes, AVX2 8 lanes; scalar and NEON: the portable loop)
for any broadcast: the kernels walk the output's outer dims and treat each innermost run with each input either
advancing or held on one element; collapse_broadcast merges dims at load so that runs are as long as possible.
Against a constant varying only along the output's trailing axes (period P <= 64) int8 runs as P byte tables."""
from __future__ import annotations

import math
from functools import partial

import numpy as np

from cython_ops import load_ops, load_tables
from edgeml import numerics as Q
from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import Op
from edgeml.runtime.kernels import CONFIG
from edgeml.runtime.ops import float_kernels, int16x8
from edgeml.runtime.ops.common import element_count, fused_activation, io_kind, pad6, qparams, row_major_strides
from edgeml.runtime.ops.element_types import pad6_of
from edgeml.runtime.plan import Ctx, OpSpec, Step, address
from edgeml.runtime.requant import int8_activation_range
from edgeml.runtime.tables import lut_step, periodic_byte_table, table_kernel


def broadcast_shape(op: Op, a: tuple, b: tuple) -> tuple:
    rank = max(len(a), len(b))
    a6, b6 = [1] * (rank - len(a)) + list(a), [1] * (rank - len(b)) + list(b)
    out = []
    for da, db in zip(a6, b6):
        if da != db and 1 not in (da, db):
            raise ModelFormatError(f"{op.describe()}: shapes {list(a)} and {list(b)} do not broadcast")
        out.append(max(da, db) if 0 not in (da, db) else 0)
    return tuple(out)


def broadcast_strides(shape: tuple, out: tuple) -> list:
    s6, o6 = pad6(shape), pad6(out)
    st = row_major_strides(s6)
    return [0 if (d == 1 and od != 1) else s for d, od, s in zip(s6, o6, st)]


def collapse_broadcast(dims: list, strides1: list, strides2: list) -> dict:
    """The same walk over fewer, longer dims (6-D, leading 1s): a dim of size 1 is dropped and a dim merges into
    the next when both inputs step through the pair as through one dim (stride[i] == stride[i + 1] * dims[i + 1],
    which also joins broadcast dims, stride 0), so the kernels' innermost run is as long as the shapes allow."""
    kept = [(d, a, b) for d, a, b in zip(dims, strides1, strides2) if d != 1]
    merged = []
    for d, a, b in kept:
        if merged:
            pd, pa, pb = merged[-1]
            if pa == a * d and pb == b * d:
                merged[-1] = (pd * d, a, b)
                continue
        merged.append((d, a, b))
    merged = [(1, 0, 0)] * (6 - len(merged)) + merged
    return dict(dims=[m[0] for m in merged], strides1=[m[1] for m in merged], strides2=[m[2] for m in merged])


ADD_TABLE_BYTES = 2048    # em_add_int8_avx512: each input stage as a 256-entry int32 table (per thread)
SPLIT_MIN_ELEMENTS = 4096   # an int8 ADD / SUB / MUL goes over threads from 2 x this many elements (em_binary_split)
VECTOR_ISA = {"avx512vnni": "avx512", "avx512": "avx2", "avxvnni": "avx2", "avx2": "avx2"}  # int8 ADD / SUB / MUL body
INT32 = np.dtype(np.int32)
INT8 = np.dtype(np.int8)
MAX_TABLE_BYTES = 16384     # per-position tables of a constant operand: period x 256 bytes at most
GATHER_SLACK = 3            # bytes after the tables: em_lut.h's periodic gathers read 4 bytes at each entry
INT32_ACTIVATION_RANGES = {"NONE": (-2**31, 2**31 - 1), "RELU": (0, 2**31 - 1), "RELU6": (0, 6),
                           "RELU_N1_TO_1": (-1, 1)}     # CalculateActivationRange<int32_t>


def all_int32(ctx: Ctx, op: Op) -> bool:
    """Whether the op computes on int32 (both inputs and the output; a mix is refused)."""
    types = [ctx.tensor(op, 0).dtype, ctx.tensor(op, 1).dtype, ctx.tensor(op, 0, "output").dtype]
    if INT32 in types and any(t != INT32 for t in types):
        raise UnsupportedOpError(f"{op.describe()}: int32 mixed with {' and '.join(t.name for t in types)}")
    return INT32 in types


SHELL_OPS = {"ADD": 0, "SUB": 1, "MUL": 2}        # load_ops.int8_binary_shell's `which`


def prepare_binary(ctx: Ctx, op: Op, which: str) -> Step:
    ints = load_ops.int8_binary_shell(ctx, op, SHELL_OPS[which], INT8)
    if ints is not None:          # the common int8 case, every check and integer in one call
        return int8_binary_step(ctx, op, which, ints)
    kind = "int16" if int16x8.is_int16(ctx, op) else "int32" if all_int32(ctx, op) else io_kind(ctx, op, 2)
    a, b, y = ctx.tensor(op, 0), ctx.tensor(op, 1), ctx.tensor(op, 0, "output")
    for t in (a, b):
        if t.index in ctx.constants and t.index not in ctx.shapes:
            ctx.shapes[t.index] = t.shape
    sa, sb = ctx.shape(a), ctx.shape(b)
    out = broadcast_shape(op, sa, sb)
    ctx.set_output(op, 0, out)
    act = fused_activation(op)
    if len(out) > 6:        # (pad6's own message would not name the op)
        raise UnsupportedOpError(f"{op.describe()}: rank {len(out)} > 6 is not supported")
    dims = dict(dims=pad6_of(op, out), strides1=broadcast_strides(sa, out), strides2=broadcast_strides(sb, out))
    if kind == "int16":
        return int16x8.prepare_binary(ctx, op, which, dims)
    dims = collapse_broadcast(**dims)
    scratch = 0
    body = VECTOR_ISA.get(CONFIG.isa) if ctx.rounding in (0, 1) else None
    if kind == "int32":
        lo, hi = INT32_ACTIVATION_RANGES[act]
        ints, floats, name = dict(dims, act_min=lo, act_max=hi), {}, which.lower() + "_int32"
    elif kind == "int8":
        s1, z1 = qparams(a, op)
        s2, z2 = qparams(b, op)
        so, zo = qparams(y, op)
        amin, amax = int8_activation_range(act, so, zo)
        f1, f2, fo = float(Q.F32(s1)), float(Q.F32(s2)), float(Q.F32(so))      # (doubles of the float32 scales)
        if which in ("ADD", "SUB"):
            left_shift = 20
            twice_max = 2.0 * max(f1, f2)
            m1, sh1 = Q.quantize_multiplier(f1 / twice_max, ctx.rounding)
            m2, sh2 = Q.quantize_multiplier(f2 / twice_max, ctx.rounding)
            mo, sho = Q.quantize_multiplier(twice_max / ((1 << left_shift) * fo), ctx.rounding)
            ints = dict(dims, zp1=z1, zp2=z2, out_zp=zo, left_shift=left_shift, mult1=m1, shift1=sh1, mult2=m2,
                        shift2=sh2, out_mult=mo, out_shift=sho, act_min=amin, act_max=amax, mode=ctx.rounding,
                        sign=1 if which == "ADD" else -1, threads=1)
            name = "add_int8" + (f"_{body}" if body else "")
            if body == "avx512":
                scratch = ADD_TABLE_BYTES
        else:
            m, sh = Q.quantize_multiplier(f1 * f2 / fo, ctx.rounding)
            ints = dict(dims, zp1=z1, zp2=z2, out_zp=zo, mult=m, shift=sh, act_min=amin, act_max=amax,
                        mode=ctx.rounding, threads=1)
            name = "mul_int8" + (f"_{body}" if body and sh >= -31 else "")     # a right shift past 31: scalar
        floats = {}
        if ctx.rounding in (0, 1):
            step = constant_operand_lut(ctx, op, a, b, y, out, name, ints)
            if step is not None:
                return step
        ints["threads"] = binary_threads(ctx, ints)
        if scratch:
            scratch *= ints["threads"]
    else:
        ints = dims
        lo, hi = Q.activation_range_f32(act)
        floats = dict(act_min=lo, act_max=hi)
        name = which.lower() + "_f32"
        name = float_kernels.binary_kernel(name)     # float32 SIMD kernels (em_float_elementwise.h)
    tables = name.startswith("add_int8")      # ADD / SUB int8 have a slot for the vector kernel's tables

    def make(addr):
        ptrs = dict(input1=addr(a.index), input2=addr(b.index), output=addr(y.index))
        if tables:
            ptrs["tables"] = addr("scratch") if scratch else 0
        return ptrs, ints, floats
    return Step(op, name, make, scratch)


def int8_binary_step(ctx: Ctx, op: Op, which: str, ints: dict) -> Step:
    """prepare_binary's int8 step from load_ops.int8_binary_shell's integers (tables against a constant operand
    where constant_operand_lut takes it)."""
    a, b, y = op.inputs[0], op.inputs[1], op.outputs[0]
    body = VECTOR_ISA.get(CONFIG.isa)
    if which == "MUL":
        name = "mul_int8" + (f"_{body}" if body and ints["shift"] >= -31 else "")     # a right shift past 31: scalar
    else:
        name = "add_int8" + (f"_{body}" if body else "")
    constants = ctx.constants
    if a in constants or b in constants:
        found = load_tables.constant_operand_table(ctx, op, table_kernel(name), which != "MUL", ints, INT8)
        if found is not None:       # the table in one call (its twin: constant_operand_lut)
            other, period, table = found
            return periodic_lut_step(op, other, y, element_count(ctx.shapes[y]), period, table)
        tensors = ctx.graph.tensors
        step = constant_operand_lut(ctx, op, tensors[a], tensors[b], tensors[y], ctx.shapes[y], name, ints)
        if step is not None:
            return step
    threads = binary_threads(ctx, ints)
    if threads != ints["threads"]:
        ints = dict(ints, threads=threads)
    if which == "MUL":

        def make(addr):
            return dict(input1=addr(a), input2=addr(b), output=addr(y)), ints, {}
        return Step(op, name, make, 0)
    scratch = ADD_TABLE_BYTES * threads if body == "avx512" else 0

    def make_add(addr):
        return (dict(input1=addr(a), input2=addr(b), output=addr(y), tables=addr("scratch") if scratch else 0),
                ints, {})
    return Step(op, name, make_add, scratch)


def binary_threads(ctx: Ctx, ints: dict) -> int:
    """Threads for an int8 ADD / SUB / MUL (em_binary_split): the interpreter's num_threads where neither input
    broadcasts (collapsed dims 1, ..., 1, n with unit strides) and each thread gets SPLIT_MIN_ELEMENTS or more
    (below that the wake-up costs what the split saves); else 1."""
    if ctx.num_threads <= 1:
        return 1
    dims, s1, s2 = ints["dims"], ints["strides1"], ints["strides2"]
    if any(d != 1 for d in dims[:5]) or s1[5] != 1 or s2[5] != 1:
        return 1
    return max(1, min(ctx.num_threads, dims[5] // SPLIT_MIN_ELEMENTS))


def constant_period(ctx: Ctx, const, other, out: tuple):
    """The constant's values along the output's trailing axes (one per position of a period of the flattened
    output), when `const` is a constant that varies only there and `other` has the output's full shape; else None."""
    if const.index not in ctx.constants or other.index in ctx.constants or tuple(ctx.shape(other)) != tuple(out):
        return None
    shape = (1,) * (len(out) - len(ctx.shape(const))) + tuple(ctx.shape(const))
    first = next((k for k, d in enumerate(shape) if d != 1), len(out))
    trailing = tuple(out[first:])
    period = math.prod(trailing)       # (the output's size is bounded by the arena budget: no overflow)
    if period * 256 > MAX_TABLE_BYTES or math.prod(out) == 0:
        return None
    values = np.asarray(ctx.constants[const.index])
    if shape[first:] == trailing:       # (the common case, a per-channel constant: no broadcast)
        return values.reshape(-1)
    return np.broadcast_to(values.reshape(shape[first:]), trailing).reshape(-1)


def constant_operand_lut(ctx: Ctx, op: Op, a, b, y, out: tuple, kernel: str, ints: dict):
    """int8 ADD / SUB / MUL against a constant repeating with period P as P tables of 256 bytes, each entry the
    op's own kernel on that input byte (the reference arithmetic: the vector bodies give the scalar loop's bits,
    tests/test_kernel_paths.py, and build P x 256 entries 5-10 times faster); None when not that case."""
    if a.dtype != INT8 or b.dtype != INT8 or y.dtype != INT8:
        return None
    for const, other, constant_first in ((b, a, False), (a, b, True)):
        values = constant_period(ctx, const, other, out)
        if values is not None:
            break
    else:
        return None
    scratch = np.empty(ADD_TABLE_BYTES if kernel == "add_int8_avx512" else 0, np.uint8)
    extra = {"tables": address(scratch) if scratch.size else 0} if kernel.startswith("add_int8") else {}
    n, period = element_count(out), len(values)
    table = ctx.keep_new((period * 256 + GATHER_SLACK,), INT8)
    table[period * 256:] = 0
    periodic_byte_table(kernel, values, constant_first, ints, extra, table)
    return periodic_lut_step(op, other.index, y.index, n, period, table)


def periodic_lut_step(op: Op, x: int, y: int, n: int, period: int, table: np.ndarray) -> Step:
    """The step of an int8 op against a constant of period P whose P x 256 tables are `table` (kept): tables.lut_step
    for one table, else lut_periodic_int8."""
    if period == 1:
        return lut_step(op, x, y, n, table)
    int_slots = dict(n=n, period=period)

    def make(addr):
        return dict(input=addr(x), output=addr(y), table=address(table)), int_slots, {}
    return Step(op, "lut_periodic_int8", make, 0)


OPS = {
    "ADD": OpSpec(partial(prepare_binary, which="ADD"), max_version=5, output_types=int16x8.WITH_INT16 + (INT32,)),
    "SUB": OpSpec(partial(prepare_binary, which="SUB"), max_version=5, output_types=int16x8.WITH_INT16 + (INT32,)),
    "MUL": OpSpec(partial(prepare_binary, which="MUL"), max_version=7, output_types=int16x8.WITH_INT16 + (INT32,)),
}
