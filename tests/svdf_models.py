"""One-op SVDF models for test_svdf.py, written with the flatbuffer object API (TensorFlow's converter never emits
SVDF from Keras).  Random weights, and for the integer kind the quantization LiteRT's integer SVDF expects:
int8 input / output (asymmetric), int8 weights_feature and int16 weights_time (symmetric), int32 bias, int16
state (symmetric); scales from a float run of the same weights over calibration inputs, so nothing saturates.

Kinds: "int8" (EvalIntegerSVDF), "float" (EvalFloatSVDF), "hybrid" (float input, bias and state; int8
weights_feature and weights_time with one scale each: EvalHybridSVDF).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from tflite_schema import pack, schema

NONE, RELU, RELU_N1_TO_1, RELU6, TANH = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class SvdfSpec:
    name: str
    kind: str                # "int8", "float" or "hybrid"
    batch: int
    inputs: int
    units: int
    rank: int
    memory: int
    activation: int = RELU
    bias: bool = True
    asymmetric: bool = False         # hybrid: asymmetric_quantize_inputs

    @property
    def filters(self) -> int:
        return self.units * self.rank


SPECS = {s.name: s for s in (
    SvdfSpec("int8_rank1", "int8", 1, 10, 4, 1, 5),
    SvdfSpec("int8_rank2_batch2", "int8", 2, 13, 5, 2, 7),
    SvdfSpec("int8_rank3_nobias", "int8", 3, 7, 3, 3, 4, bias=False),
    SvdfSpec("int8_kws_like", "int8", 1, 40, 32, 1, 10),
    SvdfSpec("int8_memory1", "int8", 2, 6, 6, 2, 1),
    SvdfSpec("float_rank1_relu", "float", 1, 10, 4, 1, 5),
    SvdfSpec("float_rank2_batch2_none", "float", 2, 13, 5, 2, 7, activation=NONE),
    SvdfSpec("float_rank3_relu6_nobias", "float", 3, 7, 3, 3, 4, activation=RELU6, bias=False),
    SvdfSpec("float_tanh", "float", 2, 9, 6, 2, 3, activation=TANH),
    SvdfSpec("hybrid_rank1_relu", "hybrid", 1, 10, 4, 1, 5),
    SvdfSpec("hybrid_rank2_batch2_asymmetric", "hybrid", 2, 13, 5, 2, 7, activation=NONE, asymmetric=True),
    SvdfSpec("hybrid_rank2_relu_n1", "hybrid", 3, 17, 4, 2, 6, activation=RELU_N1_TO_1),
)}


def seed_of(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


def float_svdf(x_seq, wf, wt, bias, rank, activation=NONE):
    """The float SVDF over a sequence of inputs [B, I] (numpy, float64): outputs and the largest activation."""
    b = x_seq[0].shape[0]
    f, m = wt.shape
    state = np.zeros((b, f, m))
    outs, acts = [], []
    for x in x_seq:
        state = np.roll(state, -1, axis=2)
        state[:, :, -1] = x @ wf.T
        acts.append(state[:, :, -1])
        out = (state * wt[None]).sum(axis=2).reshape(b, -1, rank).sum(axis=2)
        out = out + (bias if bias is not None else 0)
        outs.append(out)
    return outs, acts


def inputs(spec: SvdfSpec, n: int, seed: int = 0) -> list:
    """n seeded float inputs [batch, inputs]; one of them all zeros (the hybrid kernel skips its products)."""
    rng = np.random.default_rng(seed_of(spec.name) + seed)
    xs = [rng.standard_normal((spec.batch, spec.inputs)).astype(np.float32) for _ in range(n)]
    if n > 4:
        xs[4][:] = 0
    return xs


def _quant(fb, scale, zero_point=0):
    q = fb.QuantizationParametersT()
    q.scale = np.array(np.atleast_1d(scale), np.float32)
    q.zeroPoint = np.array(np.atleast_1d(zero_point), np.int64)
    return q


def weights(spec: SvdfSpec):
    """(weights_feature [F, I], weights_time [F, M], bias [U] or None) in float."""
    rng = np.random.default_rng(seed_of(spec.name) + 1)
    wf = rng.standard_normal((spec.filters, spec.inputs)) / np.sqrt(spec.inputs)
    wt = rng.standard_normal((spec.filters, spec.memory)) / np.sqrt(spec.memory * spec.rank)
    bias = 0.3 * rng.standard_normal(spec.units) if spec.bias else None
    return wf, wt, bias


def build(spec: SvdfSpec, change=None) -> bytes:
    """The spec's one-op model; change(model, tensors, fb) may edit it before packing (malformed variants)."""
    _, fb = schema()
    wf, wt, bias = weights(spec)
    calibration = inputs(spec, 32, seed=1000)
    outs, acts = float_svdf([x.astype(np.float64) for x in calibration], wf, wt, bias, spec.rank)
    buffers = [fb.BufferT()]
    tensors = []

    def tensor(name, shape, ttype, data=None, quant=None, variable=False):
        t = fb.TensorT()
        t.name, t.shape, t.type = name, np.array(shape, np.int32), ttype
        t.quantization, t.isVariable = quant, variable
        t.buffer = 0
        if data is not None:
            buf = fb.BufferT()
            buf.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
            buffers.append(buf)
            t.buffer = len(buffers) - 1
        tensors.append(t)
        return len(tensors) - 1

    T = fb.TensorType
    b, f, m, u = spec.batch, spec.filters, spec.memory, spec.units
    if spec.kind == "int8":
        sx, zx = 4.5 / 255, -3
        swf = np.abs(wf).max() / 127
        state_scale = 1.2 * max(np.abs(a).max() for a in acts) / 32767
        swt = np.abs(wt).max() / 32767
        y_lo, y_hi = min(o.min() for o in outs), max(o.max() for o in outs)
        sy = (y_hi - y_lo) * 1.1 / 255
        zy = int(np.clip(np.round(-128 - 1.05 * y_lo / sy), -128, 127))
        i_x = tensor("input", [b, spec.inputs], T.INT8, quant=_quant(fb, sx, zx))
        i_wf = tensor("weights_feature", [f, spec.inputs], T.INT8, np.round(wf / swf).astype(np.int8), _quant(fb, swf))
        i_wt = tensor("weights_time", [f, m], T.INT16, np.round(wt / swt).astype(np.int16), _quant(fb, swt))
        i_b = tensor("bias", [u], T.INT32, np.round(bias / (state_scale * swt)).astype(np.int32),
                     _quant(fb, state_scale * swt)) if spec.bias else -1
        i_s = tensor("state", [b, m * f], T.INT16, quant=_quant(fb, state_scale), variable=True)
        i_y = tensor("output", [b, u], T.INT8, quant=_quant(fb, sy, zy))
    elif spec.kind == "float":
        i_x = tensor("input", [b, spec.inputs], T.FLOAT32)
        i_wf = tensor("weights_feature", [f, spec.inputs], T.FLOAT32, wf.astype(np.float32))
        i_wt = tensor("weights_time", [f, m], T.FLOAT32, wt.astype(np.float32))
        i_b = tensor("bias", [u], T.FLOAT32, bias.astype(np.float32)) if spec.bias else -1
        i_s = tensor("state", [b, m * f], T.FLOAT32, variable=True)
        i_y = tensor("output", [b, u], T.FLOAT32)
    else:
        swf, swt = np.abs(wf).max() / 127, np.abs(wt).max() / 127
        i_x = tensor("input", [b, spec.inputs], T.FLOAT32)
        i_wf = tensor("weights_feature", [f, spec.inputs], T.INT8, np.round(wf / swf).astype(np.int8), _quant(fb, swf))
        i_wt = tensor("weights_time", [f, m], T.INT8, np.round(wt / swt).astype(np.int8), _quant(fb, swt))
        i_b = tensor("bias", [u], T.FLOAT32, bias.astype(np.float32)) if spec.bias else -1
        i_s = tensor("state", [b, m * f], T.FLOAT32, variable=True)
        i_y = tensor("output", [b, u], T.FLOAT32)

    options = fb.SVDFOptionsT()
    options.rank, options.fusedActivationFunction = spec.rank, spec.activation
    options.asymmetricQuantizeInputs = spec.asymmetric
    op = fb.OperatorT()
    op.opcodeIndex = 0
    op.inputs, op.outputs = np.array([i_x, i_wf, i_wt, i_b, i_s], np.int32), np.array([i_y], np.int32)
    op.builtinOptionsType, op.builtinOptions = fb.BuiltinOptions.SVDFOptions, options
    code = fb.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = fb.BuiltinOperator.SVDF
    code.version = {"int8": 3, "float": 1, "hybrid": 4 if spec.asymmetric else 2}[spec.kind]
    graph = fb.SubGraphT()
    graph.tensors, graph.operators = tensors, [op]
    graph.inputs, graph.outputs, graph.name = np.array([i_x], np.int32), np.array([i_y], np.int32), "main"
    model = fb.ModelT()
    model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, [code], [graph], buffers
    model.description = f"edgeml test SVDF {spec.name}"
    if change is not None:
        change(model, tensors, fb)
    return pack(model)


def quantize_input(spec: SvdfSpec, x: np.ndarray) -> np.ndarray:
    """An int8 model's input from float data (its scale and zero point, as build() sets them)."""
    return np.clip(np.round(x / (4.5 / 255)) - 3, -128, 127).astype(np.int8)
