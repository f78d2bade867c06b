"""Issue 15, load time: RESIZE_BILINEAR's and RESIZE_NEAREST_NEIGHBOR's prepares in one C call
(cython_ops/load_resize.pyx) build the plan their Python twins (ops/resize.py) build: the same kernel, integers and
kept row / column / weight bytes over every element type each takes, up- and down-sampling by awkward factors,
size-1 sides, batch 1..3, align_corners and half_pixel_centers; every form they decline keeps the Python path's
plan or its exact error."""
from __future__ import annotations

import numpy as np
import pytest

from cython_ops import load_resize
from edgeml.errors import EdgeMLError, ModelFormatError, UnsupportedOpError
from edgeml.ir import Graph, Op
from edgeml.runtime.compile import compile_graph, new_context
from edgeml.runtime.ops.element_types import DTYPE_CODES
from path_cases import tensor
from test_load_activations import kept
from test_load_ops import plan_values

OPS = ["RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR"]


def resize_graph(op_type, shape, size, dtype=np.int8, align=False, half=False, scale=0.05, zp=3, out_scale=None,
                 out_zp=None, out_dtype=None, out_shape=None, size_dtype=np.int32, constant_size=True, **options):
    quantized = np.dtype(dtype) in (np.dtype(np.int8), np.dtype(np.int16))
    size = np.asarray(size, size_dtype)
    x = tensor(0, shape, dtype, scale if quantized else None, zp)
    s = tensor(1, size.shape, size_dtype, data=size if constant_size else None)
    if out_shape is None:
        out_shape = (shape[0], int(size[0]), int(size[1]), shape[3]) if size.size == 2 and len(shape) == 4 else shape
    y = tensor(2, out_shape, dtype if out_dtype is None else out_dtype,
               (scale if out_scale is None else out_scale) if quantized else None, zp if out_zp is None else out_zp)
    return Graph([x, s, y], [Op(0, op_type, 1, [0, 1], [2], dict(options, align_corners=align,
                                                                  half_pixel_centers=half))],
                 [0] if constant_size else [0, 1], [2])


def cases(op_type):
    out = []
    types = [np.int8, np.int16, np.float32, np.uint8]
    geometries = [((1, 1, 1, 32), (2, 2)), ((1, 2, 2, 32), (4, 4)), ((2, 5, 7, 3), (11, 3)), ((3, 8, 8, 17), (5, 13)),
                  ((1, 33, 33, 21), (513, 513)), ((1, 9, 1, 1), (1, 1)), ((1, 1, 6, 2), (1, 17)),
                  ((1, 16, 16, 5), (16, 16))]
    k = 0
    for dtype in types:
        for shape, size in geometries:
            for align, half in ((False, False), (True, False), (False, True)):
                out.append(resize_graph(op_type, shape, size, dtype, align, half, zp=k % 7 - 3))
                k += 1
    out.append(resize_graph(op_type, (1, 5, 6, 4), (9, 3), np.int8, True, False, uint8=True))    # held uint8
    out.append(resize_graph(op_type, (1, 5, 6, 4), (9, 3), np.int8, False, True, uint8=True))
    return out


def python_path(monkeypatch):
    monkeypatch.setattr(load_resize, "resize_shell", lambda *args: None)


@pytest.mark.parametrize("op_type", OPS)
@pytest.mark.parametrize("rounding", [0, 1])
def test_resize_shell_plans_equal_the_python_path(op_type, rounding, monkeypatch):
    graphs = cases(op_type)
    for g in graphs:      # the shell takes each of these
        ctx = new_context(g, {}, rounding, 1, 1 << 31, 1 << 31)
        op = g.ops[0]
        assert load_resize.resize_shell(ctx, op, op_type == "RESIZE_BILINEAR", DTYPE_CODES,
                                        bool(op.options.get("uint8"))) is not None
        assert ctx.shapes[2] == g.tensors[2].shape
    fast = [(plan_values(g, rounding), kept(g, rounding)) for g in graphs]
    python_path(monkeypatch)
    plain = [(plan_values(g, rounding), kept(g, rounding)) for g in graphs]
    for k, (f, p) in enumerate(zip(fast, plain)):
        x = graphs[k].tensors[0]
        assert f == p, f"graph {k}: {x.dtype} {x.shape} {graphs[k].ops[0].options}"


# (what, make(op_type), error type or None (planned by the Python path), message fragment): declined by the shell
DECLINED = [
    ("a 3-D input", lambda t: resize_graph(t, (4, 4, 3), (8, 8), out_shape=(8, 8, 3)), ModelFormatError,
     "must be 4-D (NHWC), got [4, 4, 3]"),
    ("an empty image", lambda t: resize_graph(t, (1, 0, 4, 3), (8, 8)), ModelFormatError,
     "cannot resize the empty image"),
    ("an int64 size", lambda t: resize_graph(t, (1, 4, 4, 3), (8, 8), size_dtype=np.int64), ModelFormatError,
     "must be 2 int32 values"),
    ("three sizes", lambda t: resize_graph(t, (1, 4, 4, 3), (8, 8, 8)), ModelFormatError, "must be 2 int32 values"),
    ("a size not constant", lambda t: resize_graph(t, (1, 4, 4, 3), (8, 8), constant_size=False),
     UnsupportedOpError, "must be a constant in the model file"),
    ("a zero output side", lambda t: resize_graph(t, (1, 4, 4, 3), (0, 8), out_shape=(1, 0, 8, 3)),
     ModelFormatError, "output size [0, 8] must be positive"),
    ("a negative output side", lambda t: resize_graph(t, (1, 4, 4, 3), (8, -2), out_shape=(1, 8, 1, 3)),
     ModelFormatError, "output size [8, -2] must be positive"),
    ("align_corners with half_pixel_centers", lambda t: resize_graph(t, (1, 4, 4, 3), (8, 8), align=True, half=True),
     ModelFormatError, "align_corners and half_pixel_centers cannot both be set"),
    ("different types", lambda t: resize_graph(t, (1, 4, 4, 3), (8, 8), out_dtype=np.int16), ModelFormatError,
     "they must match"),
    ("different quantization", lambda t: resize_graph(t, (1, 4, 4, 3), (8, 8), out_zp=5), UnsupportedOpError,
     "so they must be equal"),
    ("an int32 image", lambda t: resize_graph(t, (1, 4, 4, 3), (8, 8), dtype=np.int32), UnsupportedOpError,
     "has type int32"),
    ("a wrongly declared output", lambda t: resize_graph(t, (1, 4, 4, 3), (8, 8), out_shape=(1, 8, 7, 3)),
     ModelFormatError, "is declared [1, 8, 7, 3] but the op produces [1, 8, 8, 3]"),
    ("a side past 2^24", lambda t: resize_graph(t, (1, 4, 4, 1), ((1 << 24) + 1, 1)), None, None),
]


@pytest.mark.parametrize("op_type", OPS)
@pytest.mark.parametrize("case", DECLINED, ids=[c[0] for c in DECLINED])
def test_declined_resizes_keep_the_python_paths_result(op_type, case, monkeypatch):
    what, make, error, fragment = case
    g = make(op_type)
    ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
    if error is None or "declared" not in fragment:
        assert load_resize.resize_shell(ctx, g.ops[0], op_type == "RESIZE_BILINEAR", DTYPE_CODES, False) is None
        assert ctx.weight_bytes == 0 and 2 not in ctx.shapes       # (nothing kept, no shape set)
    if error is None:
        fast = (plan_values(g), kept(g))
        python_path(monkeypatch)
        assert fast == (plan_values(make(op_type)), kept(make(op_type)))
        return
    with pytest.raises(EdgeMLError) as fast_error:
        compile_graph(make(op_type), {}, 0)
    python_path(monkeypatch)
    with pytest.raises(EdgeMLError) as plain:
        compile_graph(make(op_type), {}, 0)
    assert type(fast_error.value) is type(plain.value) is error and str(fast_error.value) == str(plain.value)
    assert fragment in str(fast_error.value) and str(fast_error.value).startswith(f"op 0 ({op_type} v")


@pytest.mark.parametrize("op_type", OPS)
def test_uint16_is_left_to_the_python_path(op_type):
    g = resize_graph(op_type, (1, 4, 4, 3), (8, 8), dtype=np.uint16)
    ctx = new_context(g, {}, 0, 1, 1 << 31, 1 << 31)
    assert load_resize.resize_shell(ctx, g.ops[0], op_type == "RESIZE_BILINEAR", DTYPE_CODES, False) is None
    with pytest.raises(UnsupportedOpError, match="has type uint16"):
        compile_graph(g, {}, 0)
