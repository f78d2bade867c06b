"""The .tflite reader's direct flatbuffer reads (cython_ops/tflite_read.pyx) give the graph the `tflite` package's
generated accessors describe: every tensor's name, shape, type, buffer bytes and quantization, every op's code,
version, inputs, outputs and intermediates, the subgraph's inputs and outputs, on the MLPerf Tiny models and
the public corpus."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tflite as fb

import converters.tflite as tflite_reader
from converters.tflite import OPERATOR_NAMES, TENSOR_TYPES, from_tflite

MODELS = Path(__file__).resolve().parent / "models" / "mlperf_tiny"


def accessor_view(data: bytes) -> dict:
    """Subgraph 0 as the generated accessors read it (uint8 tensors as stored)."""
    model = fb.Model.GetRootAs(data, 0)
    sg = model.Subgraphs(0)
    tensors = []
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        q = t.Quantization()
        quant = None
        if q is not None and (q.ScaleLength() or q.ZeroPointLength()):
            quant = (q.ScaleAsNumpy().astype(np.float64), q.ZeroPointAsNumpy().astype(np.int64),
                     q.QuantizedDimension() if q.ScaleLength() > 1 else 0)
        buf = model.Buffers(t.Buffer())
        raw = buf.DataAsNumpy().tobytes() if buf is not None and buf.DataLength() else None
        tensors.append(dict(name=t.Name().decode(), shape=tuple(int(d) for d in t.ShapeAsNumpy())
                            if t.ShapeLength() else (), dtype=TENSOR_TYPES[t.Type()], quant=quant, raw=raw))
    ops = []
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        name = OPERATOR_NAMES[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        if name == "CUSTOM":       # the one custom op of the corpus, read into its own IR type
            assert code.CustomCode() == b"TFLite_Detection_PostProcess"
            name = "DETECTION_POSTPROCESS"
        ops.append(dict(type=name, version=code.Version(),
                        inputs=[int(v) for v in op.InputsAsNumpy()] if op.InputsLength() else [],
                        outputs=[int(v) for v in op.OutputsAsNumpy()] if op.OutputsLength() else [],
                        intermediates=[int(v) for v in op.IntermediatesAsNumpy()] if op.IntermediatesLength() else []))
    return dict(tensors=tensors, ops=ops, inputs=[int(v) for v in sg.InputsAsNumpy()],
                outputs=[int(v) for v in sg.OutputsAsNumpy()])


def check_same_graph(data: bytes):
    want = accessor_view(data)
    graph = from_tflite(data)
    assert graph.inputs == want["inputs"] and graph.outputs == want["outputs"]
    assert len(graph.tensors) == len(want["tensors"])
    for t, w in zip(graph.tensors, want["tensors"]):
        assert (t.name, t.shape, t.dtype) == (w["name"], w["shape"], w["dtype"])
        if w["quant"] is None:
            assert t.quant is None
        else:
            np.testing.assert_array_equal(t.quant.scale, w["quant"][0])
            np.testing.assert_array_equal(t.quant.zero_point, w["quant"][1])
            assert t.quant.axis == w["quant"][2]
        if w["raw"] is None:
            assert t.data is None
        else:
            np.testing.assert_array_equal(t.data, np.frombuffer(w["raw"], dtype=w["dtype"]).reshape(w["shape"]))
    assert len(graph.ops) == len(want["ops"])
    for op, w in zip(graph.ops, want["ops"]):
        assert (op.type, op.version, op.inputs, op.outputs, op.intermediates) == \
            (w["type"], w["version"], w["inputs"], w["outputs"], w["intermediates"])


@pytest.fixture(autouse=True)
def uint8_as_stored(monkeypatch):
    """The graph as read, before uint8 tensors are held as int8 (converters/tflite_uint8.py)."""
    monkeypatch.setattr(tflite_reader, "hold_uint8_as_int8", lambda graph, file_array=None: graph)


@pytest.mark.parametrize("name", sorted(p.name for p in MODELS.glob("*.tflite")))
def test_reader_matches_generated_accessors(name):
    check_same_graph((MODELS / name).read_bytes())


def test_reader_matches_generated_accessors_on_public_models(public_models):
    paths = sorted((public_models / "tflite").glob("*.tflite"))
    assert paths
    for path in paths:
        check_same_graph(path.read_bytes())
