"""LEAKY_RELU, LOGISTIC, TANH and SOFTMAX on int16 activations (the 16x8 scheme), as LiteRT's reference kernels
compute them."""
from __future__ import annotations

from edgeml.errors import UnsupportedOpError
from edgeml.ir import Op
from edgeml.runtime.ops import int16x8
from edgeml.runtime.plan import Ctx, Step

WITH_INT16 = int16x8.WITH_INT16
is_int16 = int16x8.is_int16


def prepare_unary(ctx: Ctx, op: Op, which: str) -> Step:
    if which == "LEAKY_RELU":
        return int16x8.prepare_leaky_relu(ctx, op)
    raise UnsupportedOpError(f"{op.describe()}: {which} is not supported on int16")
