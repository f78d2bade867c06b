"""ONNX element-wise ops on plain tensors of every type edgeml holds (cython_ops/include/em_onnx_elementwise.h):
ONNX_UNARY (op option `function`: ABS ... BITWISE_NOT, with `alpha` / `beta`) and ONNX_BINARY (`function`: ADD
... GREATER_EQUAL, broadcasting).  Float32 follows onnxruntime's CPU kernels (the C library's functions); integer
arithmetic wraps, integer Div truncates towards zero, and an integer division by zero at run time raises
InputError (onnxruntime would crash)."""
from __future__ import annotations

import numpy as np

from cython_ops.onnx_float_ops import BINARY_KINDS, UNARY_KINDS
from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import Op
from edgeml.runtime.ops.common import element_count
from edgeml.runtime.ops.element_types import (BOOL, F32, I8, I16, I32, I64, U8, U16, dtype_code, pad6_of,
                                              require_same_type)
from edgeml.runtime.ops import float_kernels
from edgeml.runtime.ops.elementwise import broadcast_shape, broadcast_strides, collapse_broadcast
from edgeml.runtime.plan import Ctx, OpSpec, Step

INTEGERS = (I8, U8, I16, U16, I32, I64)
SIGNED = (I8, I16, I32, I64)

# the types each function takes (ONNX's type constraints, within what edgeml holds)
UNARY_TYPES = {name: (F32,) for name in UNARY_KINDS}
UNARY_TYPES.update({"ABS": (F32,) + INTEGERS, "NEG": (F32,) + SIGNED, "SIGN": (F32,) + INTEGERS,
                    "RELU": (F32,) + SIGNED, "NOT": (BOOL,), "BITWISE_NOT": INTEGERS})
BOOL_OUTPUT_UNARY = ("IS_NAN", "IS_INF")

COMPARISONS = ("EQUAL", "LESS", "LESS_EQUAL", "GREATER", "GREATER_EQUAL")
BINARY_TYPES = {name: (F32,) + INTEGERS for name in ("ADD", "SUB", "MUL", "DIV", "MOD", "FMOD", "POW", "MAX",
                                                     "MIN", "PRELU")}
BINARY_TYPES.update({"SHIFT_LEFT": INTEGERS, "SHIFT_RIGHT": INTEGERS, "AND": (BOOL,), "OR": (BOOL,),
                     "XOR": (BOOL,), "BITWISE_AND": INTEGERS, "BITWISE_OR": INTEGERS, "BITWISE_XOR": INTEGERS})
BINARY_TYPES.update({name: (F32, BOOL) + INTEGERS for name in COMPARISONS})
DIVIDING = ("DIV", "MOD", "FMOD")
# the float functions with flat loops for equal shapes and single-element operands (EM_OB_* shape codes)
FLAT_FUNCTIONS = ("ADD", "SUB", "MUL", "DIV", "MAX", "MIN")
BROADCAST, EQUAL_SHAPES, SCALAR1, SCALAR2 = range(4)


def function_of(op: Op, kinds: dict) -> str:
    name = op.options.get("function")
    if name not in kinds:
        raise UnsupportedOpError(f"{op.describe()}: unknown function {name!r}")
    return name


def prepare_onnx_unary(ctx: Ctx, op: Op) -> Step:
    name = function_of(op, UNARY_KINDS)
    if len(op.inputs) != 1 or len(op.outputs) != 1:
        raise ModelFormatError(f"{op.describe()}: {name} takes one input and gives one output")
    x, y = ctx.tensor(op, 0), ctx.tensor(op, 0, "output")
    code = dtype_code(op, x, UNARY_TYPES[name])
    want = BOOL if name in BOOL_OUTPUT_UNARY else x.dtype
    if y.dtype != want:
        raise ModelFormatError(f"{op.describe()}: output {y.describe()} has type {y.dtype}, {name} gives {want}")
    xs = ctx.shape(x)
    ctx.set_output(op, 0, xs)
    ints = dict(n=element_count(xs), kind=UNARY_KINDS[name], dtype=code)
    floats = dict(alpha=float(op.options.get("alpha", 0.0)), beta=float(op.options.get("beta", 0.0)))

    def make(addr):
        return dict(input=addr(x.index), output=addr(y.index)), ints, floats
    return Step(op, "onnx_unary", make)


def prepare_onnx_binary(ctx: Ctx, op: Op) -> Step:
    name = function_of(op, BINARY_KINDS)
    if len(op.inputs) != 2 or len(op.outputs) != 1:
        raise ModelFormatError(f"{op.describe()}: {name} takes two inputs and gives one output")
    a, b, y = ctx.tensor(op, 0), ctx.tensor(op, 1), ctx.tensor(op, 0, "output")
    require_same_type(op, a, b)
    code = dtype_code(op, a, BINARY_TYPES[name])
    want = BOOL if name in COMPARISONS else a.dtype
    if y.dtype != want:
        raise ModelFormatError(f"{op.describe()}: output {y.describe()} has type {y.dtype}, {name} gives {want}")
    sa, sb = ctx.shape(a), ctx.shape(b)
    out = broadcast_shape(op, sa, sb)
    if len(out) > 6:
        raise UnsupportedOpError(f"{op.describe()}: rank {len(out)} > 6")
    if name == "PRELU" and tuple(out) != tuple(sa):
        raise ModelFormatError(f"{op.describe()}: slope {list(sb)} does not broadcast to the input {list(sa)}")
    ctx.set_output(op, 0, out)
    if a.dtype == F32 and name in ("ADD", "SUB", "MUL") and float_kernels.enabled():
        return float_binary_step(op, a, b, y, name, sa, sb, out)
    shapes = BROADCAST
    if a.dtype == F32 and name in FLAT_FUNCTIONS:
        if tuple(sa) == tuple(sb):
            shapes = EQUAL_SHAPES
        elif element_count(sb) == 1 and tuple(sa) == tuple(out):
            shapes = SCALAR2
        elif element_count(sa) == 1 and tuple(sb) == tuple(out):
            shapes = SCALAR1
    ints = dict(dims=pad6_of(op, out), strides1=broadcast_strides(sa, out), strides2=broadcast_strides(sb, out),
                kind=BINARY_KINDS[name], dtype=code, shapes=shapes)
    checked = name in DIVIDING and a.dtype != F32

    def check(status):          # the kernel's int32 word: 1 after an integer division by zero
        if not status[:4].view(np.int32)[0]:
            return None
        return f"{op.describe()}: integer {name.lower()} by zero in {b.describe()}"

    def make(addr):
        return (dict(input1=addr(a.index), input2=addr(b.index), output=addr(y.index), status=addr("status")),
                ints, {})
    return Step(op, "onnx_binary", make, check=check if checked else None)


def float_binary_step(op: Op, a, b, y, name: str, sa: tuple, sb: tuple, out: tuple) -> Step:
    """float32 Add / Sub / Mul (e.g. a BatchNormalization after a Gemm) on the vector kernels of TFLite's ADD / SUB
    / MUL (em_float_elementwise.h), the same IEEE operation, with no clamp: +-inf and NaN pass through."""
    ints = collapse_broadcast(pad6_of(op, out), broadcast_strides(sa, out), broadcast_strides(sb, out))
    floats = dict(act_min=-np.inf, act_max=np.inf)

    def make(addr):
        return dict(input1=addr(a.index), input2=addr(b.index), output=addr(y.index)), ints, floats
    return Step(op, float_kernels.binary_kernel(f"{name.lower()}_f32"), make)


OPS = {
    "ONNX_UNARY": OpSpec(prepare_onnx_unary, output_types=None),
    "ONNX_BINARY": OpSpec(prepare_onnx_binary, output_types=None),
}
