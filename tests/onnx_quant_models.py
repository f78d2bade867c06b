"""Float ONNX models quantized by onnxruntime's `quantize_static`, the way users quantize them, for the
quantized-corpus tests: `quant_pre_process` first, then QDQ or QOperator with seeded random calibration data.

A `QuantSpec` names one point of the format grid (format x activation / weight types x per-channel x
reduce_range); `quantized_model` caches the result on disk keyed by this file, the float model's bytes and the
onnxruntime version (quantization is the slow part of these tests)."""
from __future__ import annotations

import hashlib
import os
import importlib.metadata as md
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CALIBRATION_SAMPLES = 8


@dataclass(frozen=True)
class QuantSpec:
    quant_format: str = "QDQ"          # "QDQ" or "QOperator"
    types: str = "U8S8"                # activation type + weight type: S8S8, U8S8, U8U8
    per_channel: bool = False
    reduce_range: bool = False

    @property
    def label(self) -> str:
        return (f"{self.quant_format}-{self.types}-{'pc' if self.per_channel else 'pt'}"
                + ("-rr" if self.reduce_range else ""))


FULL_GRID = tuple(QuantSpec(f, t, pc, rr) for f in ("QDQ", "QOperator") for t in ("S8S8", "U8S8", "U8U8")
                  for pc in (False, True) for rr in (False, True))


def input_shapes(model) -> dict:
    """Graph inputs (not initializers) -> shape with a dynamic batch fixed to 1."""
    inits = {i.name for i in model.graph.initializer}
    shapes = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1
                for d in vi.type.tensor_type.shape.dim]
        shapes[vi.name] = tuple(dims)
    return shapes


def calibration_reader(model, seed: int = 0, samples: int = CALIBRATION_SAMPLES, scale: float = 1.0):
    from onnxruntime.quantization import CalibrationDataReader

    shapes = input_shapes(model)

    class SeededReader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(seed)
            self.feeds = iter([{n: (rng.standard_normal(s) * scale).astype(np.float32) for n, s in shapes.items()}
                               for _ in range(samples)])

        def get_next(self):
            return next(self.feeds, None)

    return SeededReader()


def quantize(float_model: bytes, spec: QuantSpec, seed: int = 0, scale: float = 1.0,
             extra_options: dict | None = None, skip_symbolic_shape: bool = False) -> bytes:
    """quant_pre_process + quantize_static with `spec`; returns the quantized model's bytes."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    qtype = {"S8": QuantType.QInt8, "U8": QuantType.QUInt8}
    with tempfile.TemporaryDirectory() as d:
        fp, pp, qp = Path(d) / "float.onnx", Path(d) / "pre.onnx", Path(d) / "quant.onnx"
        fp.write_bytes(float_model)
        # symbolic shape inference gives up on some tf2onnx graphs (leaving a file in the working directory):
        # those skip it, as users do
        quant_pre_process(str(fp), str(pp), skip_symbolic_shape=skip_symbolic_shape)
        model = onnx.load(str(pp))
        quantize_static(str(pp), str(qp), calibration_reader(model, seed, scale=scale),
                        quant_format=QuantFormat.QDQ if spec.quant_format == "QDQ" else QuantFormat.QOperator,
                        per_channel=spec.per_channel, reduce_range=spec.reduce_range,
                        activation_type=qtype[spec.types[:2]], weight_type=qtype[spec.types[2:]],
                        extra_options=extra_options)
        return qp.read_bytes()


def cache_key(float_model: bytes, spec: QuantSpec, seed: int, scale: float, extra_options, skip_symbolic_shape) -> str:
    h = hashlib.sha256(Path(__file__).read_bytes())
    h.update(float_model)
    h.update(repr((spec, seed, scale, sorted((extra_options or {}).items()), skip_symbolic_shape)).encode())
    for dist in ("onnxruntime", "onnx"):
        try:
            h.update(md.version(dist).encode())
        except md.PackageNotFoundError:
            h.update(b"?")
    return h.hexdigest()[:20]


class QuantizedModels:
    """Quantized model bytes: memory, then files in `directory`, then `quantize`."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.memory = {}

    def float_model(self, name: str, build) -> bytes:
        """`build()`'s bytes (a slow conversion, e.g. Keras -> tf2onnx), kept beside the quantized files."""
        key = f"float:{name}"
        if key not in self.memory:
            h = hashlib.sha256(Path(__file__).read_bytes())
            for dist in ("tensorflow", "tf_keras", "tf2onnx", "onnx"):
                try:
                    h.update(md.version(dist).encode())
                except md.PackageNotFoundError:
                    h.update(b"?")
            path = self.directory / f"{name}.float.{h.hexdigest()[:20]}.onnx"
            if not path.exists():
                tmp = path.with_suffix(f".{os.getpid()}.partial")
                tmp.write_bytes(build())
                tmp.replace(path)
            self.memory[key] = path.read_bytes()
        return self.memory[key]

    def get(self, name: str, float_model: bytes, spec: QuantSpec, seed: int = 0, scale: float = 1.0,
            extra_options: dict | None = None, skip_symbolic_shape: bool = False) -> bytes:
        key = cache_key(float_model, spec, seed, scale, extra_options, skip_symbolic_shape)
        if key not in self.memory:
            path = self.directory / f"{name}.{spec.label}.{key}.onnx"
            if not path.exists():
                tmp = path.with_suffix(f".{os.getpid()}.partial")
                tmp.write_bytes(quantize(float_model, spec, seed, scale, extra_options, skip_symbolic_shape))
                tmp.replace(path)
            self.memory[key] = path.read_bytes()
        return self.memory[key]


# ----- small float models covering the ops quantize_static quantizes (QDQ groups and QOperator nodes) ------------
def _float_model(nodes, x_shape, y_shape, weights: dict, opset: int = 17) -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        nodes, "quant_corpus", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model.SerializeToString()


def _weights(rng, **shapes) -> dict:
    return {k: (rng.standard_normal(s) * (1.0 / np.sqrt(np.prod(s[1:]) if len(s) > 1 else 4.0))).astype(np.float32)
            for k, s in shapes.items()}


def cnn_model() -> bytes:
    """Conv + Relu, depthwise Conv + Clip, pointwise Conv, residual Add, AveragePool, MaxPool, strided Conv +
    LeakyRelu, x * Sigmoid(x), Concat, GlobalAveragePool, Flatten, Gemm, Softmax."""
    from onnx import helper

    rng = np.random.default_rng(101)
    w = _weights(rng, w1=(8, 3, 3, 3), w2=(8, 1, 3, 3), w3=(8, 8, 1, 1), w4=(6, 8, 3, 3), wf=(5, 12))
    w.update(b1=rng.standard_normal(8).astype(np.float32) * 0.1, b4=rng.standard_normal(6).astype(np.float32) * 0.1,
             bf=rng.standard_normal(5).astype(np.float32) * 0.1, lo=np.array(0.0, np.float32),
             hi=np.array(6.0, np.float32))
    n = helper.make_node
    nodes = [n("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]), n("Relu", ["c1"], ["r1"]),
             n("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1], group=8), n("Clip", ["c2", "lo", "hi"], ["r2"]),
             n("Conv", ["r2", "w3"], ["c3"]), n("Add", ["r1", "c3"], ["a"]),
             n("AveragePool", ["a"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             n("MaxPool", ["p"], ["m"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             n("Conv", ["m", "w4", "b4"], ["c4"], strides=[2, 2], pads=[1, 1, 1, 1]),
             n("LeakyRelu", ["c4"], ["l"], alpha=0.1), n("Sigmoid", ["l"], ["s"]), n("Mul", ["l", "s"], ["g"]),
             n("Concat", ["g", "l"], ["cat"], axis=1), n("GlobalAveragePool", ["cat"], ["gp"]),
             n("Flatten", ["gp"], ["f"]), n("Gemm", ["f", "wf", "bf"], ["logits"], transB=1),
             n("Softmax", ["logits"], ["y"], axis=-1)]
    return _float_model(nodes, [2, 3, 10, 10], [2, 5], w)


def conv1d_model() -> bytes:
    """1-D Conv + Relu, 1-D AveragePool, 1-D Conv, GlobalAveragePool, Flatten, MatMul + Add (a Dense layer)."""
    from onnx import helper

    rng = np.random.default_rng(102)
    w = _weights(rng, w1=(6, 4, 3), w2=(6, 6, 3), wd=(6, 4))
    w.update(b1=rng.standard_normal(6).astype(np.float32) * 0.1, bd=rng.standard_normal(4).astype(np.float32) * 0.1)
    n = helper.make_node
    nodes = [n("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1]), n("Relu", ["c1"], ["r1"]),
             n("AveragePool", ["r1"], ["p"], kernel_shape=[2], strides=[2]), n("Conv", ["p", "w2"], ["c2"]),
             n("GlobalAveragePool", ["c2"], ["gp"]), n("Flatten", ["gp"], ["f"]), n("MatMul", ["f", "wd"], ["d"]),
             n("Add", ["d", "bd"], ["y"])]
    return _float_model(nodes, [2, 4, 16], [2, 4], w)


def attention_model() -> bytes:
    """Single-head self-attention: MatMul projections, scores q k^T (a MatMul of two activations), scaled Softmax,
    the weighted sum (another), a residual Add and an output projection."""
    from onnx import helper

    rng = np.random.default_rng(103)
    w = _weights(rng, wq=(8, 8), wk=(8, 8), wv=(8, 8), wo=(8, 5))
    w.update(scale=np.array(1 / np.sqrt(8), np.float32), bo=rng.standard_normal(5).astype(np.float32) * 0.1)
    n = helper.make_node
    nodes = [n("MatMul", ["x", "wq"], ["q"]), n("MatMul", ["x", "wk"], ["k"]), n("MatMul", ["x", "wv"], ["v"]),
             n("Transpose", ["k"], ["kt"], perm=[0, 2, 1]), n("MatMul", ["q", "kt"], ["s"]),
             n("Mul", ["s", "scale"], ["ss"]), n("Softmax", ["ss"], ["pr"], axis=-1), n("MatMul", ["pr", "v"], ["o"]),
             n("Add", ["o", "x"], ["h"]), n("MatMul", ["h", "wo"], ["d"]), n("Add", ["d", "bo"], ["y"])]
    return _float_model(nodes, [2, 6, 8], [2, 6, 5], w)


GENERATED = {"cnn": cnn_model, "conv1d": conv1d_model, "attention": attention_model}


def keras_attention_model(layer_norm: bool = True) -> bytes:
    """Keras (tf_keras) Dense -> self-attention (MultiHeadAttention) + residual [-> LayerNormalization] -> Dense ->
    pooling -> Dense, exported by tf2onnx at opset 17 (tf_keras' LayerNormalization exports as a
    BatchNormalization over statistics computed at run time)."""
    import os

    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tensorflow as tf
    import tf2onnx
    import tf_keras as keras

    keras.utils.set_random_seed(3)
    inp = keras.Input((6, 8), batch_size=2)
    h = keras.layers.Dense(16)(inp)
    h = h + keras.layers.MultiHeadAttention(num_heads=2, key_dim=8)(h, h)
    if layer_norm:
        h = keras.layers.LayerNormalization()(h)
    h = keras.layers.Dense(12, activation="relu")(h)
    out = keras.layers.Dense(4)(keras.layers.GlobalAveragePooling1D()(h))
    proto, _ = tf2onnx.convert.from_keras(keras.Model(inp, out), opset=17,
                                          input_signature=[tf.TensorSpec((2, 6, 8), tf.float32, name="x")])
    return proto.SerializeToString()
