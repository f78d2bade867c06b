"""Issue 15, load time: REDUCE_MAX / REDUCE_MIN's prepare in one C call (cython_ops/load_reduce.pyx) builds the plan
its Python twin (ops/reduce.prepare_reduce) builds -- the same kernel integers over ranks 1-6, size-1 and empty
dims, negative and repeated axes, keep_dims, every type -- and every form it declines keeps the Python path's plan
or its exact error."""
from __future__ import annotations

import numpy as np
import pytest

from cython_ops import load_reduce
from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import Graph, Op, Quantization
from edgeml.runtime.compile import new_context
from edgeml.runtime.ops.reduce import QUANTIZED, REDUCE_CODES
from load_twins import assert_same_plan
from path_cases import tensor

SHELL = [(load_reduce, "reduce_shell")]
I32 = np.dtype(np.int32)
QUANTIZED_TYPES = (np.int8, np.uint8, np.int16)


def reduce_graph(which, shape, axes, dtype=np.int8, keep_dims=False, out_shape=None, x_quant=(0.05, 3),
                 y_quant=None, axes_dtype=np.int32, axes_constant=True, input_constant=False):
    quantized = np.dtype(dtype).type in QUANTIZED_TYPES
    xq = x_quant if quantized else (None, 0)
    yq = (y_quant or x_quant) if quantized else (None, 0)
    rank = len(shape)
    kept = {a + rank if a < 0 else a for a in axes if -rank <= a < rank}
    if out_shape is None:
        out_shape = [1 if d in kept else s for d, s in enumerate(shape)] if keep_dims else \
            [s for d, s in enumerate(shape) if d not in kept]
    data = np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape) if input_constant else None
    x = tensor(0, shape, dtype, xq[0], xq[1], data=data)
    a = tensor(1, (len(axes),), axes_dtype, data=np.array(axes, axes_dtype) if axes_constant else None)
    y = tensor(2, out_shape, dtype, yq[0], yq[1])
    inputs = [] if input_constant else [0]
    if not axes_constant:
        inputs.append(1)
    return Graph([x, a, y], [Op(0, which, 1, [0, 1], [2], {"keep_dims": keep_dims})], inputs, [2])


CASES = [((1, 40, 3, 16), [1, 2]), ((2, 3, 4, 5), [3]), ((2, 3, 4, 5), [-1, 0]), ((7,), [0]), ((5, 1), [1]),
         ((1, 1, 1, 1, 1, 7), [5, 0]), ((2, 1, 5), [1, 1, -2]), ((4, 0, 3), [2]), ((3, 5), [0, 1]), ((2, 3, 4), []),
         ((1, 3, 3, 17), [1, 2]), ((6, 2, 1, 3, 2, 5), [1, 3, 5])]
TYPES = [np.int8, np.uint8, np.int16, np.float32, np.int32, np.int64]


@pytest.mark.parametrize("which", ["REDUCE_MAX", "REDUCE_MIN"])
@pytest.mark.parametrize("dtype", TYPES)
@pytest.mark.parametrize("keep_dims", [False, True])
def test_reduce_shell_plans_equal_the_python_path(which, dtype, keep_dims):
    for shape, axes in CASES:
        build = lambda: reduce_graph(which, shape, axes, dtype, keep_dims)     # noqa: E731
        g = build()
        ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
        made = load_reduce.reduce_shell(ctx, g.ops[0], REDUCE_CODES, QUANTIZED, I32)
        assert made is not None, (shape, axes)
        assert ctx.shapes[2] == g.tensors[2].shape
        found = assert_same_plan(build, SHELL)
        assert [s[0] for s in found[0]] == ["reduce"]


# (what, graph, error type or None (planned by the Python path), message fragment): each declined by the shell
DECLINED = [
    ("unequal zero points", lambda: reduce_graph("REDUCE_MAX", (2, 3), [1], y_quant=(0.05, 4)), UnsupportedOpError,
     "this op copies values without requantizing"),
    ("unequal scales", lambda: reduce_graph("REDUCE_MIN", (2, 3), [1], y_quant=(0.06, 3)), UnsupportedOpError,
     "this op copies values without requantizing"),
    ("per-channel input", lambda: reduce_graph("REDUCE_MAX", (2, 3), [1], x_quant=([0.1, 0.2], 0)),
     ModelFormatError, "must be quantized per tensor"),
    ("an unquantized output", lambda: reduce_graph("REDUCE_MAX", (2, 3), [1], y_quant=(None, 0)), ModelFormatError,
     "has no quantization parameters"),
    ("an axis outside the rank", lambda: reduce_graph("REDUCE_MAX", (2, 3), [2]), ModelFormatError,
     "axis 2 outside rank 2"),
    ("int64 axes", lambda: reduce_graph("REDUCE_MAX", (2, 3), [1], axes_dtype=np.int64), ModelFormatError,
     "must be int32, not int64"),
    ("axes not constant", lambda: reduce_graph("REDUCE_MAX", (2, 3), [1], axes_constant=False), UnsupportedOpError,
     "must be a constant in the model file"),
    ("input and output types differ", lambda: reduce_graph("REDUCE_MAX", (2, 3), [1], np.int32, out_shape=(2,))
     if False else _retyped(reduce_graph("REDUCE_MAX", (2, 3), [1], np.int32)), ModelFormatError, "they must match"),
    ("a bool input", lambda: reduce_graph("REDUCE_MAX", (2, 3), [1], np.bool_), UnsupportedOpError,
     "has type bool"),
    ("a wrongly declared output", lambda: reduce_graph("REDUCE_MAX", (2, 3), [1], out_shape=(3,)), ModelFormatError,
     "is declared [3] but the op produces [2]"),
    ("rank 7", lambda: reduce_graph("REDUCE_MAX", (1, 1, 2, 1, 1, 1, 3), [6]), UnsupportedOpError, "rank 7 > 6"),
    ("a scalar input", lambda: reduce_graph("REDUCE_MAX", (), [], np.float32), None, None),
    ("a constant int32 input (folded)", lambda: reduce_graph("REDUCE_MAX", (2, 3), [1], np.int32,
                                                             input_constant=True), None, None),
    ("a constant int8 input", lambda: reduce_graph("REDUCE_MIN", (2, 3), [0], np.int8, input_constant=True), None,
     None),
]


def _retyped(g):
    g.tensors[2].dtype = np.dtype(np.int64)
    return g


@pytest.mark.parametrize("case", DECLINED, ids=[c[0] for c in DECLINED])
def test_declined_reduce_forms_keep_the_python_paths_result(case):
    what, make, error, fragment = case
    g = make()
    ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
    if error is None or "declared" not in fragment:
        assert load_reduce.reduce_shell(ctx, g.ops[0], REDUCE_CODES, QUANTIZED, I32) is None
        assert 2 not in ctx.shapes
    found = assert_same_plan(make, SHELL, error=error, fragment=fragment)
    if error is not None:
        assert found[1].startswith("op 0 (REDUCE_M") or found[1].startswith("tensor "), found
