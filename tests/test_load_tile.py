"""Issue 15, load time: TILE's prepare in one C call (cython_ops/load_index.pyx) builds the plan its Python twin
(ops/index.prepare_tile) builds over ranks 0-6, size-1 and zero dims and multiples, every value type, int32 and int64
multiples; every form it declines (a constant input: folded) keeps the Python path's plan or its exact error."""
from __future__ import annotations

import numpy as np
import pytest

from cython_ops import load_index
from edgeml.errors import EdgeMLError, ModelFormatError, UnsupportedOpError
from edgeml.ir import Graph, Op
from edgeml.runtime.compile import compile_graph, new_context
from edgeml.runtime.ops.index import VALUE_TYPES
from load_twins import assert_same_plan
from path_cases import tensor
from test_load_activations import kept
from test_load_ops import plan_values


def tile_graph(shape, multiples, dtype=np.int8, m_dtype=np.int32, out_shape=None, zp=2, out_zp=None, out_dtype=None,
               constant_input=False, m_shape=None):
    quantized = np.dtype(dtype) in (np.dtype(np.int8), np.dtype(np.int16), np.dtype(np.uint8))
    m = np.asarray(multiples, m_dtype)
    if m_shape is not None:
        m = m.reshape(m_shape)
    data = np.arange(int(np.prod(shape)), dtype=np.int64).astype(dtype).reshape(shape) if constant_input else None
    x = tensor(0, shape, dtype, 0.1 if quantized else None, zp, data=data)
    if out_shape is None:
        out_shape = tuple(d * t for d, t in zip(shape, m.reshape(-1).tolist()))
    y = tensor(2, out_shape, dtype if out_dtype is None else out_dtype, 0.1 if quantized else None,
               zp if out_zp is None else out_zp)
    return Graph([x, tensor(1, m.shape, m_dtype, data=m), y], [Op(0, "TILE", 1, [0, 1], [2], {})],
                 [] if constant_input else [0], [2])


CASES = [((1, 1, 1, 5, 4), (1, 2, 2, 1, 1)), ((3,), (4,)), ((2, 3), (1, 1)), ((1, 1, 2, 1, 3, 2), (2, 1, 1, 3, 1, 1)),
         ((2, 0, 3), (2, 2, 2)), ((2, 3, 4), (0, 1, 2)), ((7, 1), (1, 17)), ((1, 2, 3, 4), (3, 1, 1, 1))]


@pytest.mark.parametrize("dtype", [np.dtype(t) for t in VALUE_TYPES])
@pytest.mark.parametrize("m_dtype", [np.int32, np.int64])
def test_tile_shell_plans_equal_the_python_path(dtype, m_dtype, monkeypatch):
    graphs = [tile_graph(s, m, dtype, m_dtype) for s, m in CASES]
    for g in graphs:      # the shell takes each of these
        ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
        assert load_index.tile_shell(ctx, g.ops[0], VALUE_TYPES) is not None
        assert ctx.shapes[2] == g.tensors[2].shape
    fast = [plan_values(g) for g in graphs]
    monkeypatch.setattr(load_index, "tile_shell", lambda *args: None)
    assert fast == [plan_values(g) for g in graphs]


def test_a_scalar_multiple_of_a_vector_is_taken_as_the_python_path_takes_it(monkeypatch):
    g = tile_graph((3,), 2, m_shape=())       # (int_vector reads a 0-D constant as one value)
    ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
    assert load_index.tile_shell(ctx, g.ops[0], VALUE_TYPES) is not None
    fast = plan_values(g)
    monkeypatch.setattr(load_index, "tile_shell", lambda *args: None)
    assert fast == plan_values(tile_graph((3,), 2, m_shape=())) and fast[0][2][6] == 6      # (out_dims' last: 6)


# (what, graph, error type or None (planned by the Python path), message fragment): each declined by the shell
DECLINED = [
    ("a constant input (folded)", lambda: tile_graph((2, 3), (2, 1), constant_input=True), None, None),
    ("multiples of the wrong length", lambda: tile_graph((2, 3), (2, 1, 1), out_shape=(4, 3)), ModelFormatError,
     "multiples [2, 1, 1] for input [2, 3]"),
    ("a negative multiple", lambda: tile_graph((2, 3), (2, -1), out_shape=(4, 3)), ModelFormatError,
     "multiples [2, -1] for input [2, 3]"),
    ("float multiples", lambda: tile_graph((2, 3), (2, 1), m_dtype=np.float32), ModelFormatError,
     "has type float32 (int32 or int64 expected)"),
    ("2-D multiples", lambda: tile_graph((2, 3), (2, 1), m_shape=(1, 2), out_shape=(4, 3)), ModelFormatError,
     "must be a vector, got shape [1, 2]"),
    ("different types", lambda: tile_graph((2, 3), (2, 1), out_dtype=np.int16), ModelFormatError, "they must match"),
    ("different quantization", lambda: tile_graph((2, 3), (2, 1), out_zp=7), UnsupportedOpError,
     "so they must be equal"),
    ("rank 7", lambda: tile_graph((1,) * 7, (1,) * 7), UnsupportedOpError, "rank 7 > 6"),
    ("a wrongly declared output", lambda: tile_graph((2, 3), (2, 1), out_shape=(4, 4)), ModelFormatError,
     "is declared [4, 4] but the op produces [4, 3]"),
]


@pytest.mark.parametrize("case", DECLINED, ids=[c[0] for c in DECLINED])
def test_declined_tiles_keep_the_python_paths_result(case, monkeypatch):
    what, make, error, fragment = case
    g = make()
    ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
    if error is None or "declared" not in fragment:
        assert load_index.tile_shell(ctx, g.ops[0], VALUE_TYPES) is None
        assert 2 not in ctx.shapes
    if error is None:
        fast = (plan_values(g), kept(g))
        monkeypatch.setattr(load_index, "tile_shell", lambda *args: None)
        assert fast == (plan_values(make()), kept(make()))
        return
    with pytest.raises(EdgeMLError) as fast_error:
        compile_graph(make(), {}, 0)
    monkeypatch.setattr(load_index, "tile_shell", lambda *args: None)
    with pytest.raises(EdgeMLError) as plain:
        compile_graph(make(), {}, 0)
    assert type(fast_error.value) is type(plain.value) is error and str(fast_error.value) == str(plain.value)
    assert fragment in str(fast_error.value) and str(fast_error.value).startswith("op 0 (TILE v")


# ----- a constant input tiled at load (load_index.tile_fold; twin: np.tile, then folding.fold) ----------------------

TILE_FOLD = [(load_index, "tile_fold")]


def internal(g: Graph) -> Graph:
    """g with its output kept inside the graph: a RESHAPE of a fresh int8 input is the graph's output instead."""
    n = len(g.tensors)
    tensors = g.tensors + [tensor(n, (2, 3), np.int8, 0.1, 0), tensor(n + 1, (6,), np.int8, 0.1, 0)]
    return Graph(tensors, g.ops + [Op(1, "RESHAPE", 1, [n], [n + 1], {"new_shape": [6]})], list(g.inputs) + [n],
                 [n + 1])


FOLD_CASES = CASES + [((1, 32, 32, 5, 4), (1, 1, 1, 1, 1)), ((), ()), ((2, 3, 4), (1, 1, 3)), ((3, 1, 2), (1, 4, 1)),
                      ((2, 1, 2, 1, 2, 1), (1, 2, 1, 2, 1, 2))]


@pytest.mark.parametrize("dtype", [np.dtype(t) for t in VALUE_TYPES])
def test_constant_tiles_fold_as_the_python_path(dtype):
    """np.tile's values over ranks 0-6, size-1 and zero dims and multiples, untiled trailing dims merged into one
    copied row, every value type, int32 and int64 multiples: the same folded constant as the Python path's."""
    for k, (shape, multiples) in enumerate(FOLD_CASES):
        build = lambda: internal(tile_graph(shape, multiples, dtype, (np.int32, np.int64)[k % 2],   # noqa: E731
                                            constant_input=True))
        g = build()
        ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
        assert load_index.tile_fold(ctx, g.ops[0], VALUE_TYPES), (shape, multiples)
        constants = assert_same_plan(build, TILE_FOLD)[2]
        want = np.tile(g.tensors[0].data, multiples)
        assert constants[2] == (want.dtype.str, want.shape, want.tobytes()), (shape, multiples)


# (what, graph, error type or None (planned by the Python path), message fragment): each declined by tile_fold
FOLD_DECLINED = [
    ("a graph output (a copy step)", lambda: tile_graph((2, 3), (2, 1), constant_input=True), None, None),
    ("a non-constant input", lambda: internal(tile_graph((2, 3), (2, 1))), None, None),
    ("a negative multiple", lambda: internal(tile_graph((2, 3), (2, -1), out_shape=(4, 3), constant_input=True)),
     ModelFormatError, "multiples [2, -1] for input [2, 3]"),
    ("different quantization", lambda: internal(tile_graph((2, 3), (2, 1), out_zp=7, constant_input=True)),
     UnsupportedOpError, "so they must be equal"),
    ("a wrongly declared output", lambda: internal(tile_graph((2, 3), (2, 1), out_shape=(4, 4), constant_input=True)),
     ModelFormatError, "is declared [4, 4] but the op produces [4, 3]"),
    ("different types", lambda: internal(tile_graph((2, 3), (2, 1), out_dtype=np.int16, constant_input=True)),
     ModelFormatError, "they must match"),
]


@pytest.mark.parametrize("case", FOLD_DECLINED, ids=[c[0] for c in FOLD_DECLINED])
def test_declined_constant_tiles_keep_the_python_paths_result(case):
    what, make, error, fragment = case
    g = make()
    ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
    if error is None or "declared" not in fragment:
        assert load_index.tile_fold(ctx, g.ops[0], VALUE_TYPES) is None and 2 not in ctx.shapes
    found = assert_same_plan(make, TILE_FOLD, error=error, fragment=fragment)
    if error is not None:
        assert found[1].startswith("op 0 (TILE v1)")
