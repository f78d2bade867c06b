"""The one-call int8 CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED prepares (cython_ops/load_gemm.pyx) refuse what
their Python twins refuse, with the twins' errors: a bias of the wrong length, type or kind, and bias plus weights
past the int32 accumulator (the plans themselves: tests/test_load_fast_paths.py)."""
from __future__ import annotations

import numpy as np
import pytest

from converters.tflite import from_tflite
from cython_ops import load_depthwise, load_gemm, load_prepare, load_shell
from edgeml.errors import EdgeMLError, ModelFormatError
from edgeml.ir import Graph
from edgeml.runtime.compile import compile_graph
from edgeml.runtime.kernels import CONFIG
from edgeml.runtime.plan import KEEP_ALIGN, KEEP_POOL_LARGEST, Ctx, address as data_address

KWS_OPS = {"stem CONV_2D": 0, "DEPTHWISE_CONV_2D": 1, "1x1 CONV_2D": 2, "FULLY_CONNECTED": 11}


def compile_model(graph):
    return compile_graph(graph, {t: tuple(graph.tensors[t].shape) for t in graph.inputs})


def without_shells(monkeypatch):
    """The Python prepares alone (the shells decline: load_gemm then hands every op to its twin)."""
    monkeypatch.setattr(load_shell, "int8_conv_shell", lambda *args: None)
    monkeypatch.setattr(load_shell, "int8_fully_connected_shell", lambda *args: None)


def refusal(path, edit) -> tuple:
    graph = from_tflite(path)
    edit(graph)
    with pytest.raises(EdgeMLError) as caught:
        compile_model(graph)
    return type(caught.value), str(caught.value)


def shorter(t):
    t.data, t.shape = t.data[:-1], (t.shape[0] - 1,)


def as_int64(t):
    t.data = t.data.astype(np.int64)


def as_float32(t):
    t.data = t.data.astype(np.float32)


def not_constant(t):
    t.data = None


@pytest.mark.parametrize("edit,message", [(shorter, "bias has 63 entries for 64 output channels"),
                                          (as_int64, "bias type int64, expected int32"),
                                          (as_float32, "bias type float32, expected int32"),
                                          (not_constant, "bias: tensor")])
@pytest.mark.parametrize("which", list(KWS_OPS))
def test_a_bad_bias_gets_the_python_prepares_error(which, edit, message, reference_models, monkeypatch):
    path = reference_models / "mlperf_tiny" / "kws_ref_model.tflite"
    index = KWS_OPS[which]

    def bad_bias(graph):
        op = graph.ops[index]
        edit(graph.tensors[op.inputs[2]])
    fast = refusal(path, bad_bias)
    without_shells(monkeypatch)
    twin = refusal(path, bad_bias)
    if which == "FULLY_CONNECTED" and edit is shorter:
        message = "bias has 11 entries for 12 output channels"
    assert fast == twin
    assert message in fast[1] and f"op {index} " in fast[1]


@pytest.mark.parametrize("shells", [True, False])
def test_an_overflowing_fully_connected_names_the_op(shells, reference_models, monkeypatch):
    def overflowing(*args):
        raise OverflowError("bias and weights overflow the int32 accumulator")
    monkeypatch.setattr(load_prepare, "pack_gemm_int8", overflowing)
    if not shells:
        without_shells(monkeypatch)
    graph = from_tflite(reference_models / "mlperf_tiny" / "ad01_int8.tflite")
    with pytest.raises(ModelFormatError, match=r"^op 0 \(FULLY_CONNECTED v\d+\): bias and weights overflow the int32 "
                                               r"accumulator$"):
        compile_model(graph)


@pytest.mark.parametrize("shells", [True, False])
def test_an_overflowing_depthwise_conv_is_a_model_error(shells, reference_models, monkeypatch):
    def overflowing(*args):
        raise OverflowError("depthwise bias and weights overflow the int32 accumulator (channel 3)")
    monkeypatch.setattr(load_depthwise, "depthwise_rows", overflowing)
    if not shells:
        without_shells(monkeypatch)
    graph = from_tflite(reference_models / "mlperf_tiny" / "kws_ref_model.tflite")
    if CONFIG.depthwise_int8 == "depthwise_int8":
        pytest.skip("the portable depthwise kernel packs in numpy")
    with pytest.raises(ModelFormatError, match=r"^depthwise bias and weights overflow the int32 accumulator "
                                               r"\(channel 3\)$"):
        compile_model(graph)


def empty_ctx(max_weight_bytes: int = 1 << 31) -> Ctx:
    return Ctx(Graph(tensors=[], ops=[], inputs=[], outputs=[]), 0, max_weight_bytes=max_weight_bytes)


@pytest.mark.parametrize("nbytes", [0, 1, 63, 64, 4096, 4097, 70000])
def test_the_packers_keeper_keeps_as_ctx_keep_new(nbytes):
    """load_gemm.Keeper (the packers' block allocator) against Ctx.keep_new: shape, type, 64-byte alignment, the
    pool's spacing, the weight count, and no two blocks sharing bytes."""
    fast, plain = empty_ctx(), empty_ctx()
    keep = load_gemm.Keeper(fast)
    got = [keep((nbytes,), np.uint8) for _ in range(3)]
    want = [plain.keep_new((nbytes,), np.uint8) for _ in range(3)]
    for a, b in zip(got, want):
        assert (a.shape, a.dtype, a.flags.writeable, a.flags.c_contiguous) == (b.shape, b.dtype, True, True)
        assert data_address(a) % KEEP_ALIGN == 0 or nbytes == 0
    spacing = [[data_address(a) - data_address(arrays[0]) for a in arrays] for arrays in (got, want)]
    if nbytes <= KEEP_POOL_LARGEST:
        assert spacing[0] == spacing[1]
    for value, a in enumerate(got):
        a[...] = value
    assert all((a == value).all() for value, a in enumerate(got))
    assert fast.weight_bytes == plain.weight_bytes == 3 * nbytes
    assert [a.nbytes for a in fast.keep] == [a.nbytes for a in plain.keep]


def test_the_packers_keeper_refuses_past_the_weight_budget_as_keep_new():
    ctx = empty_ctx(max_weight_bytes=100)
    load_gemm.Keeper(ctx)((100,), np.uint8)
    with pytest.raises(ModelFormatError, match=r"^the packed weights need more than 100 bytes"):
        load_gemm.Keeper(ctx)((1,), np.uint8)
    assert ctx.weight_bytes == 101 and len(ctx.keep) == 1


def test_the_packers_keeper_hands_other_requests_to_keep_new():
    ctx = empty_ctx()
    a = load_gemm.Keeper(ctx)((3, 5), np.int32)
    assert a.shape == (3, 5) and a.dtype == np.int32 and ctx.weight_bytes == 60 and ctx.keep == [a]
