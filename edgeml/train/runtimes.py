"""Running the exported files on every runtime (edgeml, LiteRT with XNNPACK and with its reference kernels,
onnxruntime) over the test split, inputs and outputs matched to the Keras model's.

Each runner takes the Keras-order input arrays (float32, or int32 token ids) and returns the file's raw outputs
in Keras order: int8 for an int8 file (to compare bit for bit), float32 otherwise; `FileIO.dequantize` turns them
into real values.  The .tflite file's inputs are matched to the Keras inputs by name, its outputs by comparing the
float file's outputs with the Keras model's (the converter may order several outputs differently).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from converters import from_tflite
from edgeml import numerics as Q
from edgeml.errors import InputError
from edgeml.runtime import Interpreter

PROGRESS_CHUNK = 32


@dataclass
class TensorSpec:
    name: str
    shape: tuple
    dtype: np.dtype
    scale: float | None
    zero_point: int


class FileIO:
    """The inputs and outputs of a .tflite file (read without TensorFlow), in Keras order once matched."""

    def __init__(self, path: str, keras_input_names: list):
        g = from_tflite(path)
        self.inputs = [self._spec(g.tensors[t]) for t in g.inputs]
        self.outputs = [self._spec(g.tensors[t]) for t in g.outputs]
        self.input_order = _match_names([s.name for s in self.inputs], keras_input_names)
        self.output_order = list(range(len(self.outputs)))      # file output i -> Keras output output_order[i]

    @staticmethod
    def _spec(tensor) -> TensorSpec:
        q = tensor.quant.scalar() if tensor.quant is not None and not tensor.quant.per_axis else (None, 0)
        return TensorSpec(tensor.name, tuple(int(d) for d in tensor.shape), np.dtype(tensor.dtype), q[0], int(q[1]))

    @property
    def quantized(self) -> bool:
        return any(s.dtype.kind in "iu" and s.scale for s in self.outputs)

    def feeds(self, xs: list) -> list:
        """Per file input (file order): the Keras-order arrays reshaped and quantized as the file takes them."""
        out = []
        for spec, k in zip(self.inputs, self.input_order):
            x = xs[k].reshape((len(xs[k]),) + spec.shape[1:])
            if spec.dtype == np.int8 and spec.scale:
                out.append(Q.quantize_array(x.astype(np.float32), spec.scale, spec.zero_point))
            else:
                out.append(x.astype(spec.dtype))
        return out

    def to_keras_order(self, outs: list) -> list:
        ordered = [None] * len(outs)
        for i, k in enumerate(self.output_order):
            ordered[k] = outs[i]
        return ordered

    def dequantize(self, keras_index: int, y: np.ndarray) -> np.ndarray:
        spec = self.outputs[self.output_order.index(keras_index)]
        if spec.dtype.kind in "iu" and spec.scale:
            return Q.dequantize_array(y, spec.scale, spec.zero_point)
        return y.astype(np.float32)

    def match_outputs(self, file_outputs: list, keras_outputs: list) -> None:
        """Sets output_order: each file output to the Keras output of the same per-sample size whose values it
        is closest to (on the same samples)."""
        if len(file_outputs) == 1:
            return
        free, order = list(range(len(keras_outputs))), []
        for i, y in enumerate(file_outputs):
            y = self._real(i, y)
            fits = [k for k in free if keras_outputs[k][:len(y)].size == y.size]
            if not fits:
                raise InputError(f"the .tflite output {i} ({self.outputs[i].name}) matches no Keras output")
            best = min(fits, key=lambda k: float(np.mean(np.abs(keras_outputs[k][:len(y)].reshape(y.shape) - y))))
            order.append(best)
            free.remove(best)
        self.output_order = order

    def _real(self, i: int, y: np.ndarray) -> np.ndarray:
        spec = self.outputs[i]
        if spec.dtype.kind in "iu" and spec.scale:
            return Q.dequantize_array(y, spec.scale, spec.zero_point)
        return y.astype(np.float32)


def _match_names(file_names: list, keras_names: list) -> list:
    """For each file input, the Keras input whose name it carries (serving_default_<name>:0), else by position."""
    order = []
    for i, name in enumerate(file_names):
        hits = [k for k, kn in enumerate(keras_names) if kn and (name == kn or f"_{kn}:" in name or
                                                                 name.endswith(f"_{kn}") or name.endswith(kn))]
        order.append(max(hits, key=lambda k: len(keras_names[k])) if hits else i)
    if sorted(order) != list(range(len(file_names))):
        return list(range(len(file_names)))
    return order


def _batches(n: int, progress):
    for start in range(0, n, PROGRESS_CHUNK):
        stop = min(n, start + PROGRESS_CHUNK)
        yield start, stop
        if progress is not None:
            progress(stop - start)


def run_edgeml(path: str, io: FileIO, xs: list, progress=None) -> list:
    """edgeml, the whole split as one batch where the model allows it, else sample by sample at the file's batch
    size (models whose batch 1 is baked into reshapes, such as unrolled RNNs); LSTM state reset per sample."""
    feeds = io.feeds(xs)
    n = len(feeds[0])
    it = Interpreter(path)
    try:
        if any(op.type == "WHILE" for op in from_tflite(path).ops):
            # a WHILE loop's TensorLists are sized for the file's batch: resizing is accepted but computes garbage
            raise InputError("WHILE: run sample by sample")
        for i, f in enumerate(feeds):
            it.resize_input(i, f.shape)
            it.set_input(np.ascontiguousarray(f), i)
        it.invoke()
        outs = [it.get_output(j) for j in range(len(io.outputs))]
        if progress is not None:
            progress(n)
        return io.to_keras_order(outs)
    except InputError:
        it = Interpreter(path)
    collected = [[] for _ in io.outputs]
    for start, stop in _batches(n, progress):
        for i in range(start, stop):
            it.reset_variables()            # each sample is a sequence of its own: no LSTM state from the last one
            for k, f in enumerate(feeds):
                it.set_input(np.ascontiguousarray(f[i:i + 1].reshape(io.inputs[k].shape)), k)
            it.invoke()
            for j in range(len(io.outputs)):
                collected[j].append(it.get_output(j))
    return io.to_keras_order([np.concatenate(c) for c in collected])


def run_litert(path: str, io: FileIO, xs: list, reference: bool = False, progress=None) -> list:
    """LiteRT as users run it (XNNPACK), or its reference kernels (edgeml's bit-exactness contract)."""
    from ai_edge_litert.interpreter import Interpreter as LiteRTInterpreter, OpResolverType
    resolver = OpResolverType.BUILTIN_REF if reference else OpResolverType.AUTO
    it = LiteRTInterpreter(model_path=path, num_threads=1, experimental_op_resolver_type=resolver)
    it.allocate_tensors()
    ins, outs = it.get_input_details(), it.get_output_details()
    by_name = {d["name"]: d for d in ins}
    feeds = io.feeds(xs)
    details = [by_name.get(spec.name, ins[k]) for k, spec in enumerate(io.inputs)]
    out_details = {d["name"]: d for d in outs}
    out_specs = [out_details.get(spec.name, outs[j]) for j, spec in enumerate(io.outputs)]
    collected = [[] for _ in io.outputs]
    for start, stop in _batches(len(feeds[0]), progress):
        for i in range(start, stop):
            it.reset_all_variables()        # LiteRT keeps a fused LSTM's state across invokes; samples are independent
            for d, f in zip(details, feeds):
                it.set_tensor(d["index"], f[i:i + 1].reshape(d["shape"]))
            it.invoke()
            for j, d in enumerate(out_specs):
                collected[j].append(it.get_tensor(d["index"]).copy())
    return io.to_keras_order([np.concatenate(c) for c in collected])


def run_onnxruntime(onnx_path: str, io: FileIO, xs: list, progress=None) -> list:
    """onnxruntime, one thread, sample by sample, on the ONNX file converted from the .tflite (same inputs)."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
    inputs = sess.get_inputs()
    feeds = io.feeds(xs)
    names = [s.name for s in io.inputs]
    ordered = []
    for k, inp in enumerate(inputs):
        f_index = names.index(inp.name) if inp.name in names else k
        f, spec = feeds[f_index], io.inputs[f_index]
        if "float" in inp.type and f.dtype == np.int8:          # a float ONNX input: the real values
            f = Q.dequantize_array(f, spec.scale, spec.zero_point)
        ordered.append(f)
    collected = None
    for start, stop in _batches(len(feeds[0]), progress):
        for i in range(start, stop):
            got = sess.run(None, {inp.name: f[i:i + 1].reshape([d if isinstance(d, int) else 1 for d in inp.shape])
                                  for inp, f in zip(inputs, ordered)})
            collected = [[] for _ in got] if collected is None else collected
            for j, y in enumerate(got):
                collected[j].append(y)
    return io.to_keras_order([np.concatenate(c) for c in collected])


def run_onnx_float_onnxruntime(onnx_path: str, xs: list, progress=None) -> list:
    """onnxruntime on a batch-1 float ONNX model (the recurrent route's tf2onnx file), sample by sample."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    outs = []
    for start, stop in _batches(len(xs[0]), progress):
        for i in range(start, stop):
            outs.append(sess.run(None, {inp.name: xs[0][i:i + 1].reshape(shape).astype(np.float32)})[0])
    return [np.concatenate(outs)]
