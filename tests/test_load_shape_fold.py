"""Issue 15, load time: the converter's shape arithmetic (SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE, as in SSD
graphs) folded in one C call per op (cython_ops/load_shape.pyx) gives the constants its Python twins give
(index.prepare_shape, shape.prepare_pack, folding.strided_values + fold): the same type, shape and values over
ranks 0-6, size-1 and empty dims, negative axes and strides, shrink masks, int32 and int64; every form it declines
(a graph output, another type, a malformed op) keeps the Python path's plan or its exact error."""
from __future__ import annotations

import numpy as np
import pytest

from cython_ops import load_shape
from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import Graph, Op
from edgeml.runtime.compile import new_context
from load_twins import assert_same_plan
from path_cases import tensor
from test_load_ops_moves import SLICES, pack_graph, slice_graph

I32, I64 = np.dtype(np.int32), np.dtype(np.int64)
SHELLS = [(load_shape, "shape_fold"), (load_shape, "pack_fold"), (load_shape, "gather_fold")]
SHAPES = [(), (1,), (3,), (2, 1), (1, 1, 1), (2, 0, 3), (1, 8, 8, 3), (1, 1, 1, 1, 1, 7), (2, 3, 1, 4, 1, 5)]


def with_tail(g: Graph, outputs=()) -> Graph:
    """g with its graph outputs replaced by a RESHAPE of a fresh int8 input (the folded tensors stay internal)."""
    n = len(g.tensors)
    tensors = list(g.tensors) + [tensor(n, (2, 3), np.int8, 0.1, 0), tensor(n + 1, (6,), np.int8, 0.1, 0)]
    ops = list(g.ops) + [Op(len(g.ops), "RESHAPE", 1, [n], [n + 1], {"new_shape": [6]})]
    return Graph(tensors, ops, list(g.inputs) + [n], list(outputs) + [n + 1])


def ssd_chain(shape, out_dtype=I32, pack_axis=0) -> Graph:
    """x -> SHAPE -> STRIDED_SLICE (the batch, shrunk to a scalar) -> PACK with two constants -> RESHAPE(x)."""
    count = int(np.prod(shape))
    ts = [tensor(0, shape, np.int8, 0.1, 0), tensor(1, (len(shape),), out_dtype),
          tensor(2, (1,), np.int32, data=np.array([0], np.int32)),
          tensor(3, (1,), np.int32, data=np.array([1], np.int32)),
          tensor(4, (), out_dtype), tensor(5, (), out_dtype, data=np.array(1, out_dtype)),
          tensor(6, (), out_dtype, data=np.array(-1, out_dtype)), tensor(7, (3,), out_dtype),
          tensor(8, (shape[0], 1, count // max(shape[0], 1)), np.int8, 0.1, 0)]
    ops = [Op(0, "SHAPE", 1, [0], [1], {"out_type": 2}),
           Op(1, "STRIDED_SLICE", 1, [1, 2, 3, 3], [4], dict(begin_mask=0, end_mask=0, shrink_axis_mask=1,
                                                             ellipsis_mask=0, new_axis_mask=0, offset=False)),
           Op(2, "PACK", 1, [4, 5, 6], [7], {"values_count": 3, "axis": pack_axis}),
           Op(3, "RESHAPE", 1, [0, 7], [8], {})]
    return Graph(ts, ops, [0], [8])


@pytest.mark.parametrize("out_dtype", [I32, I64])
@pytest.mark.parametrize("shape", [(1, 256), (1, 1, 1, 10), (3, 5, 4), (2, 1, 1, 1, 1, 6)])
def test_ssd_shape_chain_folds_as_the_python_path(shape, out_dtype):
    steps, _, constants = assert_same_plan(lambda: ssd_chain(shape, out_dtype), SHELLS)
    assert [s[0] for s in steps] == ["copy"]       # (the RESHAPE aliases x: nothing else runs)
    assert constants[7][2] == np.array([shape[0], 1, -1], out_dtype).tobytes()


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("out_dtype", [I32, I64])
def test_shape_fold_equals_the_python_path(shape, out_dtype):
    def build():
        return with_tail(Graph([tensor(0, shape, np.float32), tensor(1, (len(shape),), out_dtype)],
                               [Op(0, "SHAPE", 1, [0], [1], {})], [0], []))
    ctx = new_context(build(), {}, 0, 1, 1 << 31, 1 << 31)
    assert load_shape.shape_fold(ctx, ctx.graph.ops[0], I32, I64)
    constants = assert_same_plan(build, SHELLS)[2]
    assert constants[1] == (out_dtype.str, (len(shape),), np.array(shape, out_dtype).tobytes())


PACKS = [([(), (), ()], 0), ([()], -1), ([(2,), (2,)], 1), ([(2,), (2,)], -2), ([(2, 3)] * 4, -2), ([(0, 2)] * 2, 1),
         ([(1, 1, 1, 1, 2)] * 3, 5), ([(1, 1, 1, 1, 2)] * 3, -6), ([(3, 1)] * 5, 1)]


@pytest.mark.parametrize("shapes,axis", PACKS)
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_pack_fold_equals_the_python_path(shapes, axis, dtype):
    build = lambda: with_tail(pack_graph(shapes, dtype, axis=axis))     # noqa: E731
    ctx = new_context(build(), {}, 0, 1, 1 << 31, 1 << 31)
    assert load_shape.pack_fold(ctx, ctx.graph.ops[0], I32, I64)
    constants = assert_same_plan(build, SHELLS)[2]
    want = np.stack([np.full(s, 3 * k + 1, dtype) for k, s in enumerate(shapes)], axis=axis)
    assert constants[len(shapes)] == (want.dtype.str, want.shape, want.tobytes())


@pytest.mark.parametrize("case", range(len(SLICES)))
@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64])
def test_constant_strided_slice_folds_as_the_python_path(case, dtype):
    s, b, e, st, masks = SLICES[case]

    def build():
        g = slice_graph(s, b, e, st, dtype, True, **masks)
        return with_tail(Graph(g.tensors, g.ops, [], []))
    constants = assert_same_plan(build, SHELLS)[2]
    assert 4 in constants


@pytest.mark.parametrize("shape", [(0, 1 << 20, 1 << 20), (1 << 20, 0, 1 << 10), (0, 1 << 17)])
def test_pack_of_empty_constants_with_large_dims_is_left_to_the_python_path(shape):
    """No element, but nonzero dimensions whose product is past the fold's bound: the fold declines (the Python
    path builds the empty constant) rather than multiply them (products of such dimensions could pass 64 bits)."""
    build = lambda: with_tail(pack_graph([shape] * 2, np.int32, axis=1))     # noqa: E731
    ctx = new_context(build(), {}, 0, 1, 1 << 31, 1 << 31)
    assert load_shape.pack_fold(ctx, ctx.graph.ops[0], I32, I64) is None


def test_graph_outputs_and_other_types_are_declined():
    """A folded graph output needs the copy step only the Python path makes; float PACK is not shape arithmetic."""
    g = Graph([tensor(0, (2, 3), np.float32), tensor(1, (2,), I32)], [Op(0, "SHAPE", 1, [0], [1], {})], [0], [1])
    ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
    assert load_shape.shape_fold(ctx, g.ops[0], I32, I64) is None and 1 not in ctx.shapes
    def packed_output():
        g = pack_graph([(2,), (2,)])
        return Graph(g.tensors, g.ops, [], [2])
    for g in (packed_output(), with_tail(pack_graph([(2,), (2,)], np.float32))):
        ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
        assert load_shape.pack_fold(ctx, g.ops[0], I32, I64) is None and 2 not in ctx.shapes
    steps = assert_same_plan(packed_output, SHELLS)[0]       # (graph output: a copy step on both paths)
    assert [s[0] for s in steps] == ["copy"]


def renamed(g: Graph, k: int, **fields) -> Graph:
    g.tensors[k] = type(g.tensors[k])(**{**g.tensors[k].__dict__, **fields})
    return g


def with_options(g: Graph, **options) -> Graph:
    op = g.ops[0]
    g.ops[0] = Op(op.index, op.type, op.version, op.inputs, op.outputs, dict(op.options, **options))
    return g


# (what, graph, error type or None (planned by the Python path), message fragment): each declined by the folds
DECLINED = [
    ("SHAPE to int16", lambda: with_tail(Graph([tensor(0, (2, 3), np.float32), tensor(1, (2,), np.int16)],
                                               [Op(0, "SHAPE", 1, [0], [1], {})], [0], [])),
     UnsupportedOpError, "output type int16 (int32 or int64 expected)"),
    ("SHAPE of an unproduced tensor", lambda: with_tail(Graph([tensor(0, (2, 3), np.float32), tensor(1, (2,), I32)],
                                                              [Op(0, "SHAPE", 1, [0], [1], {})], [], [])),
     ModelFormatError, "is read before any op produces it"),
    ("SHAPE declared wrongly", lambda: with_tail(Graph([tensor(0, (2, 3), np.float32), tensor(1, (3,), I32)],
                                                       [Op(0, "SHAPE", 1, [0], [1], {})], [0], [])),
     ModelFormatError, "is declared [3] but the op produces [2]"),
    ("PACK with a wrong values_count", lambda: with_options(with_tail(pack_graph([(2,), (2,)])), values_count=3),
     ModelFormatError, "values_count 3 but 2 inputs"),
    ("PACK of unequal shapes", lambda: with_tail(renamed(pack_graph([(2,), (2,)]), 1, shape=(3,),
                                                         data=np.full(3, 4, np.int32))),
     ModelFormatError, "cannot be stacked (they must all be equal)"),
    ("PACK of mixed types", lambda: with_tail(renamed(pack_graph([(2,), (2,)]), 1, dtype=I64,
                                                      data=np.full(2, 4, np.int64))),
     ModelFormatError, "has type int64, the output int32"),
    ("PACK on an axis past the rank", lambda: with_options(with_tail(pack_graph([(2,), (2,)])), axis=2),
     ModelFormatError, "axis 2 outside the output rank 2"),
    ("PACK declared wrongly", lambda: with_tail(renamed(pack_graph([(2,), (2,)]), 2, shape=(2, 3))),
     ModelFormatError, "is declared [2, 3] but the op produces [2, 2]"),
]


@pytest.mark.parametrize("case", DECLINED, ids=[c[0] for c in DECLINED])
def test_declined_forms_keep_the_python_paths_result(case):
    what, make, error, fragment = case
    g = make()
    ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
    fold = load_shape.shape_fold if g.ops[0].type == "SHAPE" else load_shape.pack_fold
    if error is None or "declared" not in fragment:
        assert fold(ctx, g.ops[0], I32, I64) is None and g.ops[0].outputs[0] not in ctx.shapes
    found = assert_same_plan(make, SHELLS, error=error, fragment=fragment)
    if error is not None and "read before" not in fragment:
        assert found[1].startswith(f"op 0 ({g.ops[0].type} v1)")
