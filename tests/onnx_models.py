"""Small ONNX models built with onnx.helper for the ONNX tests, and onnxruntime as the reference."""
from __future__ import annotations

import numpy as np
from onnx import helper, numpy_helper

OPSET = 17


def make_model(nodes, inputs, outputs, initializers=(), opset=OPSET, extra_opsets=()) -> bytes:
    """inputs / outputs: [(name, numpy dtype, shape)]; initializers: {name: array}."""
    def vi(name, dtype, shape):
        return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), shape)
    graph = helper.make_graph(
        nodes, "test", [vi(*i) for i in inputs], [vi(*o) for o in outputs],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in dict(initializers).items()])
    imports = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    model = helper.make_model(graph, opset_imports=imports)
    model.ir_version = 8
    return model.SerializeToString()


def ort_run(model: bytes, feeds: dict) -> list:
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)
