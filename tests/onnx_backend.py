"""Running onnx's shipped node test cases (onnx.backend.test.case.node) on edgeml."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

import edgeml
from converters.onnx import supported_ops


def op_names(model) -> set:
    return {(n.domain + "." if n.domain not in ("", "ai.onnx") else "") + n.op_type for n in model.graph.node}


def candidate_cases() -> list:
    """The node test cases whose ops are all ones the reader translates."""
    from onnx.backend.test.case.node import collect_testcases
    supported = set(supported_ops())
    return [c for c in collect_testcases() if op_names(c.model) <= supported]


def bind_inputs(model, inputs: list):
    """The model with every input after the first turned into an initializer holding the case's value.

    edgeml prepares a model once at load, so weights, shapes, axes, pads and quantization parameters must be
    constants; the node tests feed them as inputs.  Binding them is what a model file would do."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    names = [i.name for i in m.graph.input]
    for name, value in zip(names[1:], inputs[1:]):
        if isinstance(value, onnx.TensorProto):
            init = m.graph.initializer.add()
            init.CopyFrom(value)
            init.name = name
        else:
            m.graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
    return m, inputs[:1]


def as_array(value):
    """A case's input or expected output as numpy (some cases hold TensorProtos)."""
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    return np.asarray(value)


def check_outputs(model, inputs, expected, rtol, atol):
    it = edgeml.Interpreter(model.SerializeToString())
    got = it.run([as_array(x) for x in inputs])
    got = got if isinstance(got, list) else [got]
    assert len(got) == len(expected)
    for g, r in zip(got, expected):
        r = as_array(r)
        assert g.shape == r.shape, f"shape {g.shape}, expected {r.shape}"
        assert g.dtype == r.dtype, f"dtype {g.dtype}, expected {r.dtype}"
        if r.dtype.kind == "f":
            np.testing.assert_allclose(g, r, rtol=rtol, atol=atol)
        else:
            np.testing.assert_array_equal(g, r)


def run_case(case) -> str:
    """Runs every data set of the case; returns 'plain' or 'bound' (see bind_inputs).  Raises
    edgeml.UnsupportedOpError when the case needs what edgeml does not implement."""
    mode = "plain"
    for inputs, expected in case.data_sets:
        try:
            check_outputs(case.model, inputs, expected, case.rtol, case.atol)
        except edgeml.UnsupportedOpError as first:
            try:
                model, ins = bind_inputs(case.model, list(inputs))
            except Exception:                # an input of a type numpy cannot hold (float8, int4, ...)
                raise first from None
            mode = "bound"
            check_outputs(model, ins, expected, case.rtol, case.atol)
    return mode
