"""Issue 15, load time of the data-movement ops: cython_ops/load_ops.pyx's RESHAPE and CONCATENATION shells take
the common case with the Python path's plan, integer for integer, and decline every malformed or less common form,
which then gives exactly the Python path's error (tests/test_load_ops.py has the shared helpers)."""
from __future__ import annotations

import numpy as np
import pytest

from cython_ops import load_ops
from edgeml.errors import EdgeMLError, ModelFormatError, UnsupportedOpError
from edgeml.ir import Graph, Op
from edgeml.runtime.compile import compile_graph, new_context
from edgeml.runtime.ops import shape as shape_ops
from path_cases import tensor
from test_load_ops import plan_values, with_tensor


# ----- RESHAPE (reshape_shell) --------------------------------------------------------------------------------

def reshape_graph(shape, new, how="tensor", dtype=np.int8, spec_dtype=np.int32, out_shape=None, out_scale=0.05):
    """RESHAPE of a graph input to `new` given as a constant shape tensor, the new_shape option or neither (the
    declared output shape)."""
    out = out_shape or tuple(np.empty(shape).reshape(new).shape)
    quantized = dtype in (np.int8, np.int16)
    ts = [tensor(0, shape, dtype, 0.05 if quantized else None, 3 if dtype == np.int8 else 0),
          tensor(1, out, dtype, out_scale if quantized else None, 3 if dtype == np.int8 else 0)]
    inputs, options = [0], {}
    if how == "tensor":
        ts.append(tensor(2, (len(new),), spec_dtype, data=np.asarray(new, spec_dtype)))
        inputs = [0, 2]
    elif how == "option":
        options = {"new_shape": list(new)}
    return Graph(ts, [Op(0, "RESHAPE", 1, inputs, [1], options)], [0], [1])


RESHAPES = [((1, 5, 5, 3), (1, 75), "tensor"), ((1, 5, 5, 3), (-1, 15), "tensor"), ((2, 3, 4), (4, -1), "option"),
            ((2, 3, 4), (24,), "none"), ((7,), (7, 1, 1), "tensor"), ((1, 1, 1, 1, 1, 10), (-1,), "tensor"),
            ((0, 4), (4, 0), "tensor"), ((3, 4), (2, 6), "option")]


@pytest.mark.parametrize("dtype", [np.int8, np.float32, np.int16, np.int32])
def test_reshape_shell_plans_equal_the_python_path(dtype, monkeypatch):
    graphs = [reshape_graph(s, n, how, dtype, spec) for s, n, how in RESHAPES for spec in (np.int32, np.int64)]
    for g in graphs:
        ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
        assert load_ops.reshape_shell(ctx, g.ops[0], *shape_ops.SHELL_TYPES) is not None
        assert ctx.shapes[1] == g.tensors[1].shape
    fast = [plan_values(g) for g in graphs]
    monkeypatch.setattr(load_ops, "reshape_shell", lambda *args: None)
    assert fast == [plan_values(g) for g in graphs]


RESHAPE_MALFORMED = [
    ("two -1", lambda: reshape_graph((2, 6), (-1, -1), out_shape=(2, 6)), ModelFormatError,
     "more than one -1 in new shape [-1, -1]"),
    ("a -1 beside a zero", lambda: reshape_graph((2, 6), (0, -1), out_shape=(2, 6)), ModelFormatError,
     "cannot reshape [2, 6] to [0, -1]"),
    ("a -1 that does not divide", lambda: reshape_graph((2, 6), (5, -1), out_shape=(2, 6)), ModelFormatError,
     "cannot reshape [2, 6] to [5, -1]"),
    ("another element count", lambda: reshape_graph((2, 6), (5, 2), out_shape=(5, 2)), ModelFormatError,
     "cannot reshape [2, 6] to [5, 2]"),
    ("a dimension of -2", lambda: reshape_graph((2, 6), (-2, -6), out_shape=(2, 6)), ModelFormatError,
     "cannot reshape [2, 6] to [-2, -6]"),
    ("a float32 shape tensor", lambda: reshape_graph((2, 6), (12,), spec_dtype=np.float32, out_shape=(12,)),
     ModelFormatError, "the shape tensor has type float32; it must be int32"),
    ("int8 quantization that differs", lambda: reshape_graph((2, 6), (12,), out_scale=0.07), UnsupportedOpError,
     "must share scale and zero point"),
    ("a wrongly declared output", lambda: reshape_graph((2, 6), (3, 4), out_shape=(4, 3)), ModelFormatError,
     "is declared [4, 3] but the op produces [3, 4]"),
    ("an output of another type", lambda: with_tensor(reshape_graph((2, 6), (12,)), 1, dtype=np.dtype(np.int16)),
     ModelFormatError, "input int8 and output int16 differ"),
]


@pytest.mark.parametrize("case", RESHAPE_MALFORMED, ids=[c[0] for c in RESHAPE_MALFORMED])
def test_malformed_reshape_gives_the_python_paths_error(case, monkeypatch):
    _, make, error, fragment = case
    g = make()
    ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
    try:
        declined = load_ops.reshape_shell(ctx, g.ops[0], *shape_ops.SHELL_TYPES) is None
    except EdgeMLError:      # (a refusal of Ctx.set_output's, raised by it)
        declined = True
    assert declined
    with pytest.raises(EdgeMLError) as fast:
        compile_graph(make(), {}, 0)
    monkeypatch.setattr(load_ops, "reshape_shell", lambda *args: None)
    with pytest.raises(EdgeMLError) as plain:
        compile_graph(make(), {}, 0)
    assert type(fast.value) is type(plain.value) is error
    assert str(fast.value) == str(plain.value)
    assert fragment in str(fast.value) and "op 0 (" in str(fast.value)


# ----- CONCATENATION (concatenation_shell) ------------------------------------------------------------------------

def concat_graph(shapes, axis, dtype=np.int8, quants=None, out_quant=(0.05, 3), act=0, uint8=False, constant=(),
                 out_shape=None):
    quantized = dtype in (np.int8, np.int16)
    ts = []
    for k, s in enumerate(shapes):
        q = (quants[k] if quants else out_quant) if quantized else (None, 0)
        data = np.arange(int(np.prod(s)), dtype=dtype).reshape(s) if k in constant else None
        ts.append(tensor(k, s, dtype, q[0], q[1] if dtype == np.int8 else 0, data))
    if out_shape is None:
        out_shape = tuple(np.concatenate([np.empty(s) for s in shapes], axis=axis).shape)
    n = len(shapes)
    ts.append(tensor(n, out_shape, dtype, out_quant[0] if quantized else None, out_quant[1] if dtype == np.int8 else 0))
    options = dict(axis=axis, fused_activation_function=act)
    if uint8:
        options["uint8"] = True
    return Graph(ts, [Op(0, "CONCATENATION", 1, list(range(n)), [n], options)],
                 [k for k in range(n) if k not in constant], [n])


CONCATS = [([(1, 4, 4, 3), (1, 4, 4, 5)], 3, {}), ([(2, 3), (2, 3), (2, 3)], -1, {}), ([(2, 3), (5, 3)], 0, {}),
           ([(1, 2, 7)] * 15, 1, {}), ([(1, 5, 1), (1, 5, 2)], -1, {"uint8": True}),
           ([(3, 2), (3, 4)], 1, {"constant": (0,)}), ([(0, 4), (2, 4)], 0, {}),
           ([(3,), (4,)], 0, {"quants": [(0.05, 3), (0.05, 3)]})]


@pytest.mark.parametrize("dtype", [np.int8, np.float32, np.int16])
def test_concatenation_shell_plans_equal_the_python_path(dtype, monkeypatch):
    graphs = [concat_graph(shapes, axis, dtype, **extra) for shapes, axis, extra in CONCATS]
    for g in graphs:
        ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
        assert load_ops.concatenation_shell(ctx, g.ops[0], *shape_ops.SHELL_TYPES[:3]) is not None
    fast = [plan_values(g) for g in graphs]
    monkeypatch.setattr(load_ops, "concatenation_shell", lambda *args: None)
    assert fast == [plan_values(g) for g in graphs]


def test_concatenation_shell_leaves_rescaled_uint8_and_folded_inputs_to_the_python_path(monkeypatch):
    rescaled = concat_graph([(1, 3), (1, 3)], 1, quants=[(0.05, 3), (0.07, -1)], uint8=True)
    folded = concat_graph([(2,), (3,)], 0, np.int32, constant=(0, 1))
    for g in (rescaled, folded):
        ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
        assert load_ops.concatenation_shell(ctx, g.ops[0], *shape_ops.SHELL_TYPES[:3]) is None
    assert [s[0] for s in plan_values(rescaled)] == ["concat_lut"]


CONCAT_MALFORMED = [
    ("dims that differ off the axis", lambda: concat_graph([(2, 3), (3, 3)], 1, out_shape=(2, 6)), ModelFormatError,
     "do not concatenate on axis 1"),
    ("ranks that differ", lambda: concat_graph([(2, 3), (2, 3, 1)], 1, out_shape=(2, 6)), ModelFormatError,
     "do not concatenate on axis 1"),
    ("an axis past the rank", lambda: concat_graph([(2, 3), (2, 3)], 2, out_shape=(2, 6)), ModelFormatError,
     "axis 2 outside rank 2"),
    ("an axis below minus the rank", lambda: concat_graph([(2, 3), (2, 3)], -3, out_shape=(2, 6)), ModelFormatError,
     "axis -3 outside rank 2"),
    ("types that differ", lambda: with_tensor(concat_graph([(2, 3), (2, 3)], 1), 1, dtype=np.dtype(np.int16)),
     UnsupportedOpError, "input types differ"),
    ("quantization that differs", lambda: concat_graph([(2, 3), (2, 3)], 1, quants=[(0.05, 3), (0.06, 3)]),
     UnsupportedOpError, "must share scale and zero point"),
    ("a fused RELU", lambda: concat_graph([(2, 3), (2, 3)], 1, act=1), UnsupportedOpError,
     "fused activation on CONCATENATION"),
    ("an unknown fused activation", lambda: concat_graph([(2, 3), (2, 3)], 1, act=9), UnsupportedOpError,
     "fused activation 9 is not supported"),
    ("a wrongly declared output", lambda: concat_graph([(2, 3), (2, 3)], 1, out_shape=(4, 3)), ModelFormatError,
     "is declared [4, 3] but the op produces [2, 6]"),
    ("an input without quantization", lambda: with_tensor(concat_graph([(2, 3), (2, 3)], 1), 0, quant=None),
     ModelFormatError, "has no quantization parameters"),
]


@pytest.mark.parametrize("case", CONCAT_MALFORMED, ids=[c[0] for c in CONCAT_MALFORMED])
def test_malformed_concatenation_gives_the_python_paths_error(case, monkeypatch):
    _, make, error, fragment = case
    g = make()
    ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
    try:
        declined = load_ops.concatenation_shell(ctx, g.ops[0], *shape_ops.SHELL_TYPES[:3]) is None
    except EdgeMLError:      # (a refusal of Ctx.set_output's, raised by it)
        declined = True
    assert declined
    with pytest.raises(EdgeMLError) as fast:
        compile_graph(make(), {}, 0)
    monkeypatch.setattr(load_ops, "concatenation_shell", lambda *args: None)
    with pytest.raises(EdgeMLError) as plain:
        compile_graph(make(), {}, 0)
    assert type(fast.value) is type(plain.value) is error
    assert str(fast.value) == str(plain.value)
    assert fragment in str(fast.value) and "op 0 (" in str(fast.value)


# ----- PAD (its checks on Python lists) ---------------------------------------------------------------------------

def pad_graph(shape, pads, out_shape):
    ts = [tensor(0, shape, np.int8, 0.05, 3), tensor(1, np.shape(pads), np.int32, data=np.asarray(pads, np.int32)),
          tensor(2, out_shape, np.int8, 0.05, 3)]
    return Graph(ts, [Op(0, "PAD", 1, [0, 1], [2], {})], [0], [2])


@pytest.mark.parametrize("pads,message", [
    ([[0, 0], [1, -1]], "paddings [[0, 0], [1, -1]] do not fit input rank 2"),
    ([[0, 0], [1, 1], [0, 0]], "paddings [[0, 0], [1, 1], [0, 0]] do not fit input rank 2"),
    ([0, 1], "paddings [0, 1] do not fit input rank 2")])
def test_malformed_pad_is_refused_naming_the_op(pads, message):
    with pytest.raises(ModelFormatError) as info:
        compile_graph(pad_graph((2, 3), pads, (2, 3)), {}, 0)
    assert str(info.value) == f"op 0 (PAD v1): {message}"


def test_pad_output_shape_and_padding_values():
    plan = compile_graph(pad_graph((2, 3), [[1, 0], [2, 3]], (3, 8)), {}, 0)
    plan.view(0)[...] = np.arange(6, dtype=np.int8).reshape(2, 3)
    plan.engine.invoke()
    want = np.pad(np.arange(6, dtype=np.int8).reshape(2, 3), [[1, 0], [2, 3]], constant_values=3)
    assert plan.shapes[2] == (3, 8) and np.array_equal(plan.view(2), want)


# ----- STRIDED_SLICE (strided_slice_shell) ------------------------------------------------------------------------

def slice_graph(shape, begin, end, strides, dtype=np.int8, constant=False, spec_dtype=np.int32, out_shape=None,
                **masks):
    options = dict(begin_mask=0, end_mask=0, shrink_axis_mask=0, ellipsis_mask=0, new_axis_mask=0, offset=False)
    options.update(masks)
    quantized = dtype == np.int8
    data = np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape) if constant else None
    ts = [tensor(0, shape, dtype, 0.05 if quantized else None, 3 if quantized else 0, data)]
    for k, v in enumerate((begin, end, strides)):
        ts.append(tensor(1 + k, (len(v),), spec_dtype, data=np.asarray(v, spec_dtype)))
    if out_shape is None:
        g = Graph(ts + [tensor(4, (), dtype, 0.05 if quantized else None, 3 if quantized else 0)],
                  [Op(0, "STRIDED_SLICE", 1, [0, 1, 2, 3], [4], dict(options))], [] if constant else [0], [])
        ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
        g.tensors[4].dynamic_dims = tuple(range(6))
        shape_ops.prepare_strided_slice(ctx, g.ops[0])
        out_shape = ctx.shapes[4]
    ts.append(tensor(4, out_shape, dtype, 0.05 if quantized else None, 3 if quantized else 0))
    return Graph(ts, [Op(0, "STRIDED_SLICE", 1, [0, 1, 2, 3], [4], options)], [] if constant else [0], [4])


SLICES = [((1, 8, 8, 3), [0, 1, 2, 0], [1, 7, 8, 3], [1, 2, 3, 1], {}),
          ((5, 7), [-1, 6], [-6, -8], [-1, -2], {}),
          ((5, 7), [3], [100], [1], {}),
          ((4, 6, 3), [1, 0, 2], [2, 0, 0], [1, 1, 1], {"shrink_axis_mask": 5, "end_mask": 2}),
          ((4, 6, 3), [9, -9, 0], [0, 0, 0], [1, -2, 1], {"begin_mask": 3, "end_mask": 7}),
          ((6,), [2], [3], [1], {"shrink_axis_mask": 1}),
          ((2, 3, 4, 5, 6, 7), [0, 1, 0, 2, 0, 6], [2, 3, 4, 5, 6, 0], [1, 1, 2, 1, 3, -3], {}),
          ((4,), [1], [3], [5], {}), ((3, 4), [0, 0], [3, 4], [1, 1], {}), ((3, 0), [0, 0], [3, 0], [1, 1], {})]


@pytest.mark.parametrize("constant", [False, True])
@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.float32])
def test_strided_slice_shell_plans_equal_the_python_path(dtype, constant, monkeypatch):
    graphs = [slice_graph(s, b, e, st, dtype, constant, spec, **m) for s, b, e, st, m in SLICES
              for spec in (np.int32, np.int64)]
    for g in graphs:
        ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
        assert load_ops.strided_slice_shell(ctx, g.ops[0], *shape_ops.SHELL_TYPES) is not None
    fast = [(plan_values(g), compile_graph(g, {}, 0).constants.get(4)) for g in graphs]
    monkeypatch.setattr(load_ops, "strided_slice_shell", lambda *args: None)
    plain = [(plan_values(g), compile_graph(g, {}, 0).constants.get(4)) for g in graphs]
    for (steps, value), (steps2, value2) in zip(fast, plain):
        assert steps == steps2
        assert (value is None) == (value2 is None) and (value is None or (
            value.dtype == value2.dtype and value.shape == value2.shape and value.tobytes() == value2.tobytes()))


SLICE_MALFORMED = [
    ("a stride of 0", lambda: slice_graph((4, 5), [0, 0], [4, 5], [1, 0], out_shape=(4, 5)), ModelFormatError,
     "stride 0 on axis 1"),
    ("a shrunk index past the dim", lambda: slice_graph((4, 5), [4], [5], [1], out_shape=(5,),
                                                        shrink_axis_mask=1), ModelFormatError,
     "index 4 out of range on axis 0"),
    ("lengths that differ", lambda: slice_graph((4, 5), [0, 0], [4], [1, 1], out_shape=(4, 5)), ModelFormatError,
     "begin/end/strides lengths 2/1/2 for rank 2"),
    ("more begins than dims", lambda: slice_graph((4,), [0, 0], [4, 1], [1, 1], out_shape=(4,)), ModelFormatError,
     "for rank 1"),
    ("an ellipsis", lambda: slice_graph((4, 5), [0], [4], [1], out_shape=(4, 5), ellipsis_mask=1),
     UnsupportedOpError, "ellipsis_mask / new_axis_mask are not supported"),
    ("int8 quantization that differs", lambda: with_tensor(slice_graph((4, 5), [0], [2], [1]), 4,
                                                           quant=tensor(0, (1,), np.int8, 0.07, 3).quant),
     UnsupportedOpError, "must share scale and zero point"),
    ("a wrongly declared output", lambda: slice_graph((4, 5), [0], [2], [1], out_shape=(3, 5)), ModelFormatError,
     "is declared [3, 5] but the op produces [2, 5]"),
]


@pytest.mark.parametrize("case", SLICE_MALFORMED, ids=[c[0] for c in SLICE_MALFORMED])
def test_malformed_strided_slice_gives_the_python_paths_error(case, monkeypatch):
    _, make, error, fragment = case
    g = make()
    ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
    try:
        declined = load_ops.strided_slice_shell(ctx, g.ops[0], *shape_ops.SHELL_TYPES) is None
    except EdgeMLError:      # (a refusal of Ctx.set_output's, raised by it)
        declined = True
    assert declined
    with pytest.raises(EdgeMLError) as fast:
        compile_graph(make(), {}, 0)
    monkeypatch.setattr(load_ops, "strided_slice_shell", lambda *args: None)
    with pytest.raises(EdgeMLError) as plain:
        compile_graph(make(), {}, 0)
    assert type(fast.value) is type(plain.value) is error
    assert str(fast.value) == str(plain.value)
    assert fragment in str(fast.value) and "op 0 (" in str(fast.value)


@pytest.mark.parametrize("shape,start,strides", [((), 3, ()), ((4,), 1, (2,)), ((0,), 5, (1,)), ((3,), 8, (-3,)),
                                                 ((2, 3), 1, (4, 1))])
def test_strided_values_equal_the_index_array_form(shape, start, strides):
    from edgeml.runtime.ops.folding import strided_values
    data = np.arange(12, dtype=np.int32).reshape(3, 4) * 7
    index = np.full(shape, start, dtype=np.int64)
    for k, (n, s) in enumerate(zip(shape, strides)):
        index = index + (np.arange(n, dtype=np.int64) * s).reshape([n if j == k else 1 for j in range(len(shape))])
    want = np.array(data.reshape(-1)[index], dtype=np.int32)
    got = np.array(strided_values(data, shape, start, strides), dtype=np.int32)
    assert got.shape == want.shape and got.tobytes() == want.tobytes()


# ----- PACK (scalars folded without np.stack; the output's quantization read once) --------------------------------

def pack_graph(shapes, dtype=np.int32, constant=True, axis=0, quants=None, out_quant=None):
    ts = []
    for k, s in enumerate(shapes):
        q = quants[k] if quants else (None, 0)
        ts.append(tensor(k, s, dtype, q[0], q[1], np.full(s, 3 * k + 1, dtype) if constant else None))
    n = len(shapes)
    out = list(shapes[0])
    out.insert(axis if axis >= 0 else len(out) + 1 + axis, n)
    ts.append(tensor(n, tuple(out), dtype, *(out_quant or (None, 0))))
    return Graph(ts, [Op(0, "PACK", 1, list(range(n)), [n], {"values_count": n, "axis": axis})],
                 [] if constant else list(range(n)), [] if constant else [n])


@pytest.mark.parametrize("shapes,axis", [([(), (), ()], 0), ([()], -1), ([(2,), (2,)], 1), ([(2, 3)] * 4, -2)])
def test_folded_pack_equals_np_stack(shapes, axis):
    plan = compile_graph(pack_graph(shapes, axis=axis), {}, 0)
    want = np.stack([np.full(s, 3 * k + 1, np.int32) for k, s in enumerate(shapes)], axis=axis)
    got = plan.constants[len(shapes)]
    assert got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want)


def test_pack_names_the_first_unquantized_tensor_as_before():
    g = pack_graph([(2,), (2,)], np.int8, constant=False, quants=[(None, 0), (0.1, 0)])
    with pytest.raises(ModelFormatError, match="tensor 0 't0' has no quantization parameters"):
        compile_graph(g, {}, 0)
    g = pack_graph([(2,), (2,)], np.int8, constant=False, quants=[(0.1, 0), (0.1, 0)], out_quant=(0.1, 1))
    with pytest.raises(ModelFormatError, match=r"input tensor 0 't0' has scale / zero point \(0.1, 0\), the output "
                                               r"\(0.1, 1\)"):
        compile_graph(g, {}, 0)


# ----- SPLIT (split_shell) ------------------------------------------------------------------------------------------

def split_graph(shape, axis, count, dtype=np.int8, axis_dtype=np.int32, constant=False, out_shapes=None):
    quantized = dtype in (np.int8, np.int16)
    q = (0.05, 3 if dtype == np.int8 else 0) if quantized else (None, 0)
    data = np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape) if constant else None
    ts = [tensor(0, (1,), axis_dtype, data=np.asarray([axis], axis_dtype)), tensor(1, shape, dtype, *q, data)]
    piece = list(shape)
    a = axis + len(shape) if axis < 0 else axis
    if 0 <= a < len(shape):
        piece[a] = shape[a] // count
    for k in range(count):
        ts.append(tensor(2 + k, tuple(out_shapes[k] if out_shapes else piece), dtype, *q))
    return Graph(ts, [Op(0, "SPLIT", 1, [0, 1], list(range(2, 2 + count)), {"num_splits": count})],
                 [] if constant else [1], list(range(2, 2 + count)))


SPLITS = [((1, 4, 4, 6), 3, 3), ((1, 4, 4, 6), -1, 2), ((2, 9), 0, 2), ((2, 9), 1, 3), ((12,), 0, 4),
          ((1, 2, 3, 4, 5, 6), 4, 5), ((3, 1, 5), 1, 1), ((0, 4), 1, 2)]


@pytest.mark.parametrize("dtype", [np.int8, np.float32, np.int16])
def test_split_shell_plans_equal_the_python_path(dtype, monkeypatch):
    graphs = [split_graph(s, a, n, dtype, ad, constant) for s, a, n in SPLITS for ad in (np.int32, np.int64)
              for constant in (False, True)]
    for g in graphs:
        ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
        assert load_ops.split_shell(ctx, g.ops[0], *shape_ops.SHELL_TYPES) is not None
    fast = [plan_values(g) for g in graphs]
    monkeypatch.setattr(load_ops, "split_shell", lambda *args: None)
    assert fast == [plan_values(g) for g in graphs]


SPLIT_MALFORMED = [
    ("pieces that do not divide", lambda: split_graph((2, 9), 1, 2, out_shapes=[(2, 4), (2, 5)]), ModelFormatError,
     "dimension 1 of [2, 9] does not split into 2"),
    ("an axis past the rank", lambda: split_graph((2, 9), 2, 1), ModelFormatError, "axis 2 outside rank 2"),
    ("an output of another type", lambda: with_tensor(split_graph((2, 8), 1, 2), 3, dtype=np.dtype(np.int16)),
     UnsupportedOpError, "type int8 -> int16 not supported"),
    ("output quantization that differs", lambda: with_tensor(split_graph((2, 8), 1, 2), 3,
                                                             quant=tensor(0, (1,), np.int8, 0.07, 3).quant),
     UnsupportedOpError, "must share scale and zero point"),
    ("a second output declared wrongly", lambda: split_graph((2, 8), 1, 2, out_shapes=[(2, 4), (4, 2)]),
     ModelFormatError, "is declared [4, 2] but the op produces [2, 4]"),
]


@pytest.mark.parametrize("case", SPLIT_MALFORMED, ids=[c[0] for c in SPLIT_MALFORMED])
def test_malformed_split_gives_the_python_paths_error(case, monkeypatch):
    _, make, error, fragment = case
    g = make()
    ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
    try:
        declined = load_ops.split_shell(ctx, g.ops[0], *shape_ops.SHELL_TYPES) is None
    except EdgeMLError:      # (a refusal of Ctx.set_output's, raised by it)
        declined = True
    assert declined
    with pytest.raises(EdgeMLError) as fast:
        compile_graph(make(), {}, 0)
    monkeypatch.setattr(load_ops, "split_shell", lambda *args: None)
    with pytest.raises(EdgeMLError) as plain:
        compile_graph(make(), {}, 0)
    assert type(fast.value) is type(plain.value) is error
    assert str(fast.value) == str(plain.value)
    assert fragment in str(fast.value) and "op 0 (" in str(fast.value)
