"""The int8 prepares' one-call shells (load_shell.int8_conv_shell, int8_fully_connected_shell): taken for every
int8 CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED of the MLPerf Tiny models (so the plan-hash tests in
tests/test_load_fast_paths.py, which compare them with the Python path, compare something), and declined (None,
the Python path then refuses with its message) for each form they do not take: a malformed option, shape or
quantization, uint8 with per-channel weights, onnxruntime's float requantization, malformed explicit padding, a
grouped conv.  The conv shell also takes uint8 models (traffic_model) and the PADs folded into convs (SSD)."""
from __future__ import annotations

import copy

import numpy as np
import pytest

from converters.tflite import from_tflite
from cython_ops import load_shell
from edgeml.errors import EdgeMLError, ModelFormatError
from edgeml.ir import REQUANT_FLOAT, UINT8
from edgeml.runtime.compile import compile_graph, new_context, prepare_steps
from edgeml.runtime.ops import conv
from edgeml.runtime.ops.common import spatial_padding

INT8, INT64, FLOAT64 = (np.dtype(t) for t in (np.int8, np.int64, np.float64))


def shell(ctx, op):
    if op.type == "FULLY_CONNECTED":
        return load_shell.int8_fully_connected_shell(ctx, op, UINT8, REQUANT_FLOAT, INT8, FLOAT64, INT64)
    return load_shell.int8_conv_shell(ctx, op, op.type == "DEPTHWISE_CONV_2D", conv.IM2COL_ROWS, UINT8,
                                        REQUANT_FLOAT, INT8, FLOAT64, INT64)


def prepared(path):
    graph = from_tflite(path.read_bytes())
    ctx = new_context(graph, {t: tuple(graph.tensors[t].shape) for t in graph.inputs}, 0, 1, 1 << 31, 1 << 31)
    prepare_steps(ctx)
    return graph, ctx


GEMM_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


@pytest.mark.parametrize("name", ["ad01_int8.tflite", "kws_ref_model.tflite", "vww_96_int8.tflite",
                                  "pretrainedResnet_quant.tflite"])
def test_the_shell_takes_every_int8_gemm_op_of_the_mlperf_models(name, reference_models):
    graph, ctx = prepared(reference_models / "mlperf_tiny" / name)
    ops = [op for op in graph.ops if op.type in GEMM_OPS]
    assert ops
    for op in ops:
        assert shell(ctx, op) is not None, op.describe()


@pytest.mark.parametrize("name,option", [("traffic_model.tflite", UINT8),
                                         ("ssd_mobilenet_v1_025_224_int8.tflite", "explicit_padding")])
def test_the_conv_shell_takes_uint8_convs_and_folded_pads(name, option, public_models, monkeypatch):
    """traffic_model: uint8 arithmetic (one weight scale, weight zero points); SSD: PADs folded into its convs
    (explicit padding).  Their plans equal the Python path's (tests/test_load_fast_paths.py, PUBLIC)."""
    path = public_models / "tflite" / name
    if not path.exists():
        pytest.skip(f"{name} is not in the public corpus")
    calls, original = [], load_shell.int8_conv_shell

    def recording(ctx, op, *args):
        calls.append((op.describe(), op.options.get(option) is not None, original(ctx, op, *args) is not None))
        return original(ctx, op, *args)
    monkeypatch.setattr(load_shell, "int8_conv_shell", recording)
    prepared(path)
    assert any(with_option for _, with_option, _ in calls)
    assert [what for what, _, taken in calls if not taken] == []


def test_explicit_padding_gives_the_python_paths_geometry(reference_models):
    """Explicit pads [top, left, bottom, right]: the output size and leading pads common.spatial_padding gives."""
    graph, ctx = prepared(reference_models / "mlperf_tiny" / "vww_96_int8.tflite")
    op = copy.deepcopy(next(op for op in graph.ops if op.type == "CONV_2D"))
    x = ctx.shapes[op.inputs[0]]
    for pads in ([0, 0, 0, 0], [1, 2, 3, 0], [5, 0, 0, 7], (2, 2, 2, 2)):
        op.options["explicit_padding"] = pads
        ints = shell(ctx, op)[3]
        for axis, (size, k, stride, dilation) in enumerate(((x[1], ints["kh"], ints["sh"], ints["dh"]),
                                                            (x[2], ints["kw"], ints["sw"], ints["dw"]))):
            expected = spatial_padding(op, size, k, stride, dilation, axis)
            got = (ints["oh"], ints["pad_top"]) if axis == 0 else (ints["ow"], ints["pad_left"])
            assert got == expected, (pads, axis)


def declined(op, ctx, edit):
    op = copy.deepcopy(op)
    edit(op, ctx)
    return shell(ctx, op) is None


def set_option(key, value):
    def edit(op, ctx):
        op.options[key] = value
    return edit


def requantized(scale=None, zero_point=None, axis=None, which=1, drop=False, output=False):
    """An edit giving the op's input `which` (or its output) other quantization, on a copy of the tensor."""
    def edit(op, ctx):
        t = copy.deepcopy(ctx.graph.tensors[op.outputs[0] if output else op.inputs[which]])
        if drop:
            t.quant = None
        if scale is not None:
            t.quant.scale = np.asarray(scale, np.float64)
        if zero_point is not None:
            t.quant.zero_point = np.asarray(zero_point, np.int64)
        if axis is not None:
            t.quant.axis = axis
        ctx.graph.tensors[t.index] = t
    return edit


CONV_EDITS = {
    "unknown padding": set_option("padding", 7),
    "explicit padding of three values": set_option("explicit_padding", (0, 0, 0)),
    "negative explicit padding": set_option("explicit_padding", [0, -1, 0, 0]),
    "explicit padding of floats": set_option("explicit_padding", [0.0, 1.0, 0.0, 1.0]),
    "explicit padding past int64": set_option("explicit_padding", [0, 1 << 70, 0, 0]),
    "explicit padding of numpy integers": set_option("explicit_padding", list(np.zeros(4, np.int64))),
    "zero stride": set_option("stride_h", 0),
    "stride past int64": set_option("stride_h", 1 << 70),       # (small_positive reads ints as C integers)
    "stride past 2**31": set_option("stride_w", (1 << 31) + 1),
    "negative stride past int64": set_option("stride_w", -(1 << 70)),
    "boolean stride": set_option("stride_h", True),
    "float stride": set_option("stride_w", 1.0),
    "negative dilation": set_option("dilation_h_factor", -1),
    "TANH activation": set_option("fused_activation_function", 4),
    "uint8 with per-channel weights": set_option(UINT8, True),      # (vww's conv weights have a scale per channel)
    "float requantization": set_option("requant", REQUANT_FLOAT),
    "weight zero point": requantized(zero_point=[3]),
    "per-channel input": requantized(scale=[0.1, 0.2], zero_point=[0, 0], which=0),
    "zero input scale": requantized(scale=[0.0], which=0),
    "wrong scale count": requantized(scale=[0.1, 0.2], zero_point=[0, 0]),
    "per-channel along another axis": requantized(axis=1),
    "no weight quantization": requantized(drop=True),
}


@pytest.mark.parametrize("edit", sorted(CONV_EDITS))
def test_the_conv_shell_declines_what_the_python_path_must_decide(edit, reference_models):
    graph, ctx = prepared(reference_models / "mlperf_tiny" / "vww_96_int8.tflite")
    for kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        op = next(op for op in graph.ops if op.type == kind)
        saved = list(graph.tensors)
        assert declined(op, ctx, CONV_EDITS[edit]), f"{kind}: {edit}"
        graph.tensors[:] = saved        # (the edits replace tensors by edited copies)


FC_EDITS = {
    "shuffled weights": set_option("weights_format", 1),
    "TANH activation": set_option("fused_activation_function", 4),
    "uint8 arithmetic": set_option(UINT8, True),
    "float requantization": set_option("requant", REQUANT_FLOAT),
    "weight zero point": requantized(zero_point=[3]),
    "zero output scale": requantized(scale=[0.0], output=True),
    "no output quantization": requantized(drop=True, output=True),
}


@pytest.mark.parametrize("edit", sorted(FC_EDITS))
def test_the_fully_connected_shell_declines_what_the_python_path_must_decide(edit, reference_models):
    graph, ctx = prepared(reference_models / "mlperf_tiny" / "kws_ref_model.tflite")
    op = next(op for op in graph.ops if op.type == "FULLY_CONNECTED")
    assert declined(op, ctx, FC_EDITS[edit]), edit


def test_a_declined_op_keeps_the_python_paths_message(reference_models):
    """A weight zero point on an int8 conv: the shell declines, the Python path refuses it naming the op."""
    graph = from_tflite((reference_models / "mlperf_tiny" / "kws_ref_model.tflite").read_bytes())
    op = next(op for op in graph.ops if op.type == "CONV_2D")
    graph.tensors[op.inputs[1]].quant.zero_point = np.full_like(graph.tensors[op.inputs[1]].quant.zero_point, 1)
    with pytest.raises(EdgeMLError, match=r"op \d+ \(CONV_2D v\d+\): int8 weights with a non-zero zero point"):
        compile_graph(graph, {t: tuple(graph.tensors[t].shape) for t in graph.inputs})


def test_quantization_read_in_place_equals_the_numpy_read(reference_models):
    """The IR's float64 / int64 per-tensor scale and zero point are read in place, other types through numpy
    scalars: the same conv integers and scales (the scale rounded through float32 first, so both types hold it)."""
    graph, ctx = prepared(reference_models / "mlperf_tiny" / "vww_96_int8.tflite")
    op = next(op for op in graph.ops if op.type == "CONV_2D")
    saved = list(graph.tensors)
    x = graph.tensors[op.inputs[0]]
    requantized(scale=x.quant.scale.astype(np.float32), which=0)(op, ctx)
    edited = graph.tensors[op.inputs[0]]
    in_place = shell(ctx, op)
    for scale_type, zp_type in ((np.float32, np.int64), (np.float64, np.int32)):
        edited.quant.scale = edited.quant.scale.astype(scale_type)
        edited.quant.zero_point = edited.quant.zero_point.astype(zp_type)
        through_numpy = shell(ctx, op)
        assert through_numpy[3] == in_place[3] and through_numpy[4:6] == in_place[4:6], (scale_type, zp_type)
        edited.quant.scale = edited.quant.scale.astype(np.float64)
        edited.quant.zero_point = edited.quant.zero_point.astype(np.int64)
    graph.tensors[:] = saved


def test_a_uint8_bias_zero_point_is_refused_as_on_the_python_path(public_models, monkeypatch):
    """The shell takes traffic_model's uint8 convs; the one uint8 check it leaves (the bias zero point) still refuses
    with the Python path's message."""
    path = public_models / "tflite" / "traffic_model.tflite"
    if not path.exists():
        pytest.skip("traffic_model.tflite is not in the public corpus")
    messages = []
    for python_path in (False, True):
        graph = from_tflite(path.read_bytes())
        op = next(op for op in graph.ops if op.type == "CONV_2D" and len(op.inputs) > 2 and op.inputs[2] >= 0)
        bias = graph.tensors[op.inputs[2]]
        bias.quant.zero_point = np.full_like(bias.quant.zero_point, 3)
        if python_path:
            monkeypatch.setattr(load_shell, "int8_conv_shell", lambda *args: None)
        with pytest.raises(EdgeMLError, match="a uint8 op's int32 bias needs zero point 0") as caught:
            compile_graph(graph, {t: tuple(graph.tensors[t].shape) for t in graph.inputs})
        messages.append(str(caught.value))
    assert messages[0] == messages[1]


def test_a_uint8_scale_product_past_float32_is_refused_on_both_paths(public_models, monkeypatch):
    """Input scale times weight scale overflowing float32 (a hostile file) is a ModelFormatError naming the op, the
    same on the shell path and the Python path (it was a ValueError from the multiplier)."""
    path = public_models / "tflite" / "traffic_model.tflite"
    if not path.exists():
        pytest.skip("traffic_model.tflite is not in the public corpus")
    messages = []
    for python_path in (False, True):
        graph = from_tflite(path.read_bytes())
        op = next(op for op in graph.ops if op.type == "CONV_2D")
        for i in op.inputs[:2]:
            graph.tensors[i].quant.scale = np.array([3e38])
        if python_path:
            monkeypatch.setattr(load_shell, "int8_conv_shell", lambda *args: None)
        with pytest.raises(ModelFormatError, match=r"op \d+ \(CONV_2D v\d+\): input scale .* overflows float32") \
                as caught:
            compile_graph(graph, {t: tuple(graph.tensors[t].shape) for t in graph.inputs})
        messages.append(str(caught.value))
    assert messages[0] == messages[1]


def test_the_conv_shell_declines_an_input_extent_past_2_31(reference_models):
    """small_positive reads a dimension as a C integer: one past 2**31 (or past int64 either way) is declined,
    for the Python path's checks to name."""
    graph, ctx = prepared(reference_models / "mlperf_tiny" / "vww_96_int8.tflite")
    for kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        op = next(op for op in graph.ops if op.type == kind)
        xi = op.inputs[0]
        saved = ctx.shapes[xi]
        assert shell(ctx, op) is not None
        for bad in ((1 << 31) + 1, 1 << 70, -(1 << 70), 0):
            ctx.shapes[xi] = (saved[0], saved[1], bad, saved[3])
            assert shell(ctx, op) is None, (kind, bad)
        ctx.shapes[xi] = saved
