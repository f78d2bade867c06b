"""Run the exported int8 model on every runtime over the test split; count MACs and sizes for the report."""
from __future__ import annotations

import gzip
import os

import numpy as np

from converters import from_tflite
from edgeml import numerics as Q
from edgeml.errors import InputError
from edgeml.runtime import Interpreter


def count_macs(tflite_path: str) -> int:
    """Multiply-accumulates of CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED from the file's declared shapes."""
    g = from_tflite(tflite_path)
    total = 0
    for op in g.ops:
        if op.type not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") or len(op.inputs) < 2:
            continue
        out = int(np.prod(g.tensors[op.outputs[0]].shape))
        w = g.tensors[op.inputs[1]].shape
        if op.type == "CONV_2D":
            total += out * int(np.prod(w[1:]))
        elif op.type == "DEPTHWISE_CONV_2D":
            total += out * int(w[1] * w[2])
        else:
            total += out * int(w[-1])
    return total


def gzip_size(path: str) -> int:
    with open(path, "rb") as f:
        return len(gzip.compress(f.read(), compresslevel=9))


class Int8Model:
    """Input/output quantization of an int8 .tflite, read without TensorFlow."""

    def __init__(self, tflite_path: str):
        g = from_tflite(tflite_path)
        tin, tout = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
        self.in_dtype, self.out_dtype = tin.dtype, tout.dtype
        self.in_q = tin.quant.scalar() if tin.quant is not None else None
        self.out_q = tout.quant.scalar() if tout.quant is not None else None
        self.in_shape = tuple(tin.shape)

    def quantize(self, x: np.ndarray) -> np.ndarray:
        if self.in_dtype == np.int8:
            return Q.quantize_array(x, *self.in_q)
        return x.astype(self.in_dtype)

    def dequantize(self, y: np.ndarray) -> np.ndarray:
        if self.out_dtype == np.int8:
            return Q.dequantize_array(y, *self.out_q)
        return y.astype(np.float32)


def run_edgeml(tflite_path: str, xq: np.ndarray) -> np.ndarray:
    """The whole split as one batch where the model allows it; else sample by sample at the file's batch size
    (models whose batch 1 is baked into reshapes, such as unrolled RNNs)."""
    it = Interpreter(tflite_path)
    shape = tuple(it.get_input_details()[0]["shape"])
    try:
        it.resize_input(0, (len(xq),) + shape[1:])
        it.set_input(np.ascontiguousarray(xq.reshape((len(xq),) + shape[1:])))
        it.invoke()
        return it.get_output()
    except InputError:
        it = Interpreter(tflite_path)
    outs = []
    for i in range(len(xq)):
        it.reset_variables()            # each sample is a sequence of its own: no LSTM state from the last one
        it.set_input(np.ascontiguousarray(xq[i:i + 1].reshape(shape)))
        it.invoke()
        outs.append(it.get_output())
    return np.concatenate(outs)


def run_litert(tflite_path: str, xq: np.ndarray, reference: bool = False) -> np.ndarray:
    """LiteRT as users run it (XNNPACK), or its reference kernels: edgeml's bit-exactness contract."""
    from ai_edge_litert.interpreter import Interpreter as LiteRTInterpreter, OpResolverType
    resolver = OpResolverType.BUILTIN_REF if reference else OpResolverType.AUTO
    it = LiteRTInterpreter(model_path=tflite_path, num_threads=1, experimental_op_resolver_type=resolver)
    it.allocate_tensors()
    d, o = it.get_input_details()[0], it.get_output_details()[0]
    outs = []
    for i in range(len(xq)):
        it.reset_all_variables()        # LiteRT keeps a fused LSTM's state across invokes; samples are independent
        it.set_tensor(d["index"], xq[i:i + 1].reshape(d["shape"]))
        it.invoke()
        outs.append(it.get_tensor(o["index"]).copy())
    return np.concatenate(outs)


def run_onnxruntime(onnx_path: str, xq: np.ndarray, x_float: np.ndarray) -> np.ndarray:
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    feed = xq if "int8" in inp.type else x_float.astype(np.float32)
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    outs = []
    for i in range(len(feed)):
        outs.append(sess.run(None, {inp.name: feed[i:i + 1].reshape(shape)})[0])
    return np.concatenate(outs)


def file_table(folder: str) -> tuple[dict, dict]:
    sizes, gz = {}, {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isfile(path) and name.endswith((".tflite", ".onnx", ".h5", ".txt")):
            sizes[name] = os.path.getsize(path)
            gz[name] = gzip_size(path)
    return sizes, gz
