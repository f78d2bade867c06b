"""Converter-made models for the element-wise math, activation, normalization, space / depth / batch, BATCH_MATMUL
and grouped CONV_2D ops (tests/test_math_ops.py), int8 and float (and int32 where LiteRT has int32 kernels).

Each `MathSpec` names the ops its conversions must contain.  Inputs are drawn per input from a uniform range (an
op's domain: a divisor away from zero, a positive base) or a normal distribution with the spec's spread.
TensorFlow is imported only inside `convert`; building the catalogue needs nothing.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from tflite_models import REPRESENTATIVE_SAMPLES, build_keras

INT8, FLOAT, INT32, UINT8 = "int8", "float", "int32", "uint8"


@dataclass
class MathSpec:
    name: str
    inputs: list                     # per-input shape without the batch dimension
    build: Callable                  # build(keras, tf, inputs) -> list of output tensors (int32: tf ops only)
    ops: dict = field(default_factory=dict)    # kind -> op types the conversion must contain
    ranges: Optional[list] = None    # per input: (low, high) of a uniform draw, or None for normal * spread
    spread: float = 1.0
    resolver: str = "ref"            # "ref": BUILTIN_REF; "builtin": the op has no reference-only kernel in LiteRT
    rewrite: Optional[Callable] = None   # rewrite(model_bytes, kind) -> model_bytes
    test_ranges: Optional[list] = None   # ranges of the drawn test inputs, where they differ from calibration's
    batch_inputs: Optional[tuple] = None  # inputs that take a new batch size (None: all); the others broadcast
    resizable: bool = True           # False: the graph holds its batch in constants (RESHAPE), LiteRT cannot resize

    @property
    def kinds(self) -> tuple:
        return tuple(self.ops)


def draw(spec: MathSpec, shapes: list, rng: np.random.Generator, dtype=np.float32, test: bool = False) -> list:
    """One input set (model input order follows the spec's, in0, in1, ...); test: from the test ranges."""
    ranges = spec.test_ranges if test and spec.test_ranges else spec.ranges
    out = []
    for k, shape in enumerate(shapes):
        lo_hi = ranges[k] if ranges else None
        if dtype == np.int32:
            lo, hi = lo_hi
            out.append(rng.integers(lo, hi + 1, size=shape).astype(np.int32))
        elif lo_hi is None:
            out.append((spec.spread * rng.standard_normal(shape)).astype(np.float32))
        else:
            out.append(rng.uniform(*lo_hi, size=shape).astype(np.float32))
    return out


SPECS: dict[str, MathSpec] = {}


def _add(spec: MathSpec):
    assert spec.name not in SPECS
    SPECS[spec.name] = spec


def _single(fn):
    def build(keras, tf, xs):
        out = fn(keras, tf, xs[0])
        return out if isinstance(out, list) else [out]
    return build


def _lambda(fn):
    """A one-input model whose body is tf code on the input tensor."""
    return _single(lambda k, tf, x: k.layers.Lambda(lambda t: fn(tf, t))(x))


def _lambdas(*fns):
    return _single(lambda k, tf, x: [k.layers.Lambda(lambda t, f=f: f(tf, t))(x) for f in fns])


def _pair(fn):
    """A two-input model fn(tf, a, b)."""
    return lambda k, tf, xs: [k.layers.Lambda(lambda t: fn(tf, t[0], t[1]))(xs)]


def both(*ops):
    return {INT8: frozenset(ops), FLOAT: frozenset(ops)}


# ----- element-wise unary ---------------------------------------------------------------------------------------
_add(MathSpec("unary_float_math", [(5, 7, 3)],
              _lambdas(lambda tf, t: tf.floor(t), lambda tf, t: tf.sqrt(t), lambda tf, t: tf.math.rsqrt(t),
                       lambda tf, t: tf.exp(t), lambda tf, t: tf.math.log(t), lambda tf, t: tf.abs(t),
                       lambda tf, t: -t, lambda tf, t: tf.square(t)),
              ops={FLOAT: frozenset({"FLOOR", "SQRT", "RSQRT", "EXP", "LOG", "ABS", "NEG", "SQUARE"})}, spread=2.0))
_add(MathSpec("exp_int8", [(6, 5, 3)], _lambda(lambda tf, t: tf.exp(t)), ops={INT8: frozenset({"EXP"})}, spread=1.5))
# LOG's table maps inputs <= 0 to its lowest output: the calibrated input range crosses zero
_add(MathSpec("log_int8", [(6, 5, 3)], _lambda(lambda tf, t: tf.math.log(t)), ops={INT8: frozenset({"LOG"})},
              ranges=[(0.02, 6.0)]))
_add(MathSpec("sqrt_rsqrt_int8", [(4, 9)], _lambdas(lambda tf, t: tf.sqrt(t), lambda tf, t: tf.math.rsqrt(t)),
              ops={INT8: frozenset({"SQRT", "RSQRT"})}, ranges=[(0.05, 9.0)]))
# calibrated across zero: int8 inputs below the zero point are negative, and LiteRT refuses them at run time
_add(MathSpec("sqrt_rsqrt_int8_across_zero", [(3, 8)], _lambdas(lambda tf, t: tf.sqrt(t),
                                                                lambda tf, t: tf.math.rsqrt(t)),
              ops={INT8: frozenset({"SQRT", "RSQRT"})}, ranges=[(-1.0, 9.0)], test_ranges=[(0.0, 9.0)]))
_add(MathSpec("abs_int8_rescaled", [(5, 7, 3)], _lambda(lambda tf, t: tf.abs(t)), ops={INT8: frozenset({"ABS"})},
              ranges=[(-1.0, 3.0)]))
# the converter fuses one GELU pattern per model into the op
_add(MathSpec("gelu_exact", [(6, 5, 3)], _lambda(lambda tf, t: tf.nn.gelu(t, approximate=False)), ops=both("GELU"),
              spread=2.5))
_add(MathSpec("gelu_tanh", [(7, 9)], _lambda(lambda tf, t: tf.nn.gelu(t, approximate=True)),
              ops=dict(both("GELU"), uint8=frozenset({"GELU"})), spread=2.5))


def _int8_elu(model_bytes: bytes, kind: str) -> bytes:
    """The int8 converter leaves ELU in float between DEQUANTIZE and QUANTIZE; this makes it the int8 ELU LiteRT
    also runs (a table), reading the DEQUANTIZE's input and writing the QUANTIZE's output."""
    if kind != INT8:
        return model_bytes
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as fb
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(bytearray(model_bytes), 0))
    sg = model.subgraphs[0]
    code = {i: c.builtinCode for i, c in enumerate(model.operatorCodes)}
    (elu,) = [op for op in sg.operators if code[op.opcodeIndex] == fb.BuiltinOperator.ELU]
    deq = next(op for op in sg.operators if op.outputs[0] == elu.inputs[0])
    quant = next(op for op in sg.operators if op.inputs[0] == elu.outputs[0])
    elu.inputs, elu.outputs = [deq.inputs[0]], [quant.outputs[0]]
    sg.operators = [op for op in sg.operators if op is not deq and op is not quant]
    model.operatorCodes[elu.opcodeIndex].version = 1      # LiteRT registers ELU version 1 for every type
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


_add(MathSpec("elu", [(6, 5, 3)], _single(lambda k, tf, x: k.layers.ELU()(x)), ops=both("ELU"), spread=2.0,
              resolver="builtin", rewrite=_int8_elu))
_add(MathSpec("abs_neg_int32", [(3, 7)], lambda k, tf, xs: [tf.abs(xs[0]), -xs[0]],
              ops={INT32: frozenset({"ABS", "NEG"})}, ranges=[(-2**31, 2**31 - 1)], resolver="builtin"))

# ----- element-wise binary --------------------------------------------------------------------------------------
_add(MathSpec("div_broadcast", [(4, 1, 5), (3, 5)], _pair(lambda tf, a, b: a / b),
              ops=dict(both("DIV"), uint8=frozenset({"DIV"})),
              ranges=[(-4.0, 4.0), (0.4, 3.0)], batch_inputs=(0,)))
_add(MathSpec("div_relu_negative_divisor", [(3, 7), (3, 7)], lambda k, tf, xs: [
              k.layers.Lambda(lambda t: tf.nn.relu(t[0] / t[1]))(xs)], ops=both("DIV"),
              ranges=[(-2.0, 5.0), (-3.0, -0.5)]))
# a divisor calibrated across zero: a tiny output multiplier, so small numerators take right shifts past 31 (which
# LiteRT's x86 build computes with the shift count taken modulo 32: mostly saturated outputs, reproduced here)
_add(MathSpec("div_divisor_across_zero", [(6, 5), (6, 5)], _pair(lambda tf, a, b: a / b),
              ops={INT8: frozenset({"DIV"})}, ranges=[(-4.0, 4.0), (-0.5, 3.0)]))
_add(MathSpec("floor_div_mod_float", [(4, 6), (1, 6)],
              lambda k, tf, xs: [k.layers.Lambda(lambda t: tf.math.floordiv(t[0], t[1]))(xs),
                                 k.layers.Lambda(lambda t: tf.math.floormod(t[0], t[1]))(xs)],
              ops={FLOAT: frozenset({"FLOOR_DIV", "FLOOR_MOD"})}, spread=3.0))
_add(MathSpec("pow_float", [(5, 3), (5, 3)], _pair(lambda tf, a, b: tf.pow(a, b)), ops={FLOAT: frozenset({"POW"})},
              ranges=[(0.05, 3.0), (-2.5, 2.5)]))
_add(MathSpec("squared_difference_broadcast", [(6, 5, 3), (1, 3)],
              _pair(lambda tf, a, b: tf.math.squared_difference(a, b)), ops=both("SQUARED_DIFFERENCE"), spread=1.5,
              batch_inputs=(0,)))
_add(MathSpec("squared_difference_scales_apart", [(4, 7), (4, 7)],
              _pair(lambda tf, a, b: tf.math.squared_difference(a, 20.0 * b)), ops={INT8: frozenset(
                  {"SQUARED_DIFFERENCE"})}))
_add(MathSpec("int32_floor_div_mod_squared_difference", [(3, 7), (3, 7)],
              lambda k, tf, xs: [tf.math.floordiv(xs[0], xs[1]), tf.math.floormod(xs[0], xs[1]),
                                 tf.math.squared_difference(xs[0], xs[1])],
              ops={INT32: frozenset({"FLOOR_DIV", "FLOOR_MOD", "SQUARED_DIFFERENCE"})},
              ranges=[(-1000, 1000), (1, 9)]))
def _floor_div_as_div(model_bytes: bytes, kind: str) -> bytes:
    """TensorFlow's converter writes int32 division as FLOOR_DIV; this makes the op the truncating int32 DIV that
    LiteRT also has."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as fb
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(bytearray(model_bytes), 0))
    (code,) = [c for c in model.operatorCodes if c.builtinCode == fb.BuiltinOperator.FLOOR_DIV]
    code.builtinCode = code.deprecatedBuiltinCode = fb.BuiltinOperator.DIV
    code.version = 1
    for op in model.subgraphs[0].operators:
        if model.operatorCodes[op.opcodeIndex] is code:
            op.builtinOptionsType = fb.BuiltinOptions.DivOptions
            op.builtinOptions = fb.DivOptionsT()
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


_add(MathSpec("int32_div_truncating", [(5, 4), (5, 4)], lambda k, tf, xs: [tf.math.floordiv(xs[0], xs[1])],
              ops={INT32: frozenset({"DIV"})}, ranges=[(-2**31, 2**31 - 1), (-9, -1)], rewrite=_floor_div_as_div))
_add(MathSpec("int32_pow", [(4, 5), (4, 5)], lambda k, tf, xs: [tf.pow(xs[0], xs[1])],
              ops={INT32: frozenset({"POW"})}, ranges=[(-9, 9), (0, 7)]))

# PRELU: alpha per channel (shared over H, W), and one alpha per element
_PRELU_INIT = dict(alpha_initializer="random_uniform")
_add(MathSpec("prelu_per_channel", [(5, 6, 7)],
              _single(lambda k, tf, x: k.layers.PReLU(shared_axes=[1, 2], **_PRELU_INIT)(x)),
              ops=dict(both("PRELU"), uint8=frozenset({"PRELU"})), spread=2.0))
_add(MathSpec("prelu_per_element", [(4, 9)], _single(lambda k, tf, x: k.layers.PReLU(**_PRELU_INIT)(x)),
              ops=both("PRELU"), spread=2.0))

# ----- row-wise normalizations ----------------------------------------------------------------------------------
_add(MathSpec("log_softmax", [(3, 11)], _lambda(lambda tf, t: tf.nn.log_softmax(t)), ops=both("LOG_SOFTMAX"),
              spread=2.0))
_add(MathSpec("log_softmax_wide_range", [(2, 3, 40)], _lambda(lambda tf, t: tf.nn.log_softmax(t)),
              ops=both("LOG_SOFTMAX"), spread=12.0))
_add(MathSpec("l2_normalization", [(5, 3, 6)], _lambda(lambda tf, t: tf.math.l2_normalize(t, axis=-1)),
              ops=dict(both("L2_NORMALIZATION"), uint8=frozenset({"L2_NORMALIZATION"})), spread=2.0))


# rows whose sum of squares passes 2^29 (the inverse square root's pre-scaling loop)
_add(MathSpec("l2_normalization_long_rows", [(34000,)], _lambda(lambda tf, t: tf.math.l2_normalize(t, axis=-1)),
              ops={INT8: frozenset({"L2_NORMALIZATION"})}, spread=3.0))


# ----- BATCH_MATMUL ---------------------------------------------------------------------------------------------
def _attention_scores(k, tf, xs):
    q, kv = xs
    scores = k.layers.Lambda(lambda t: tf.matmul(t[0], t[1], transpose_b=True) * 0.5)([q, kv])
    return [k.layers.Lambda(lambda t: tf.matmul(tf.nn.softmax(t[0]), t[1]))([scores, kv])]


_add(MathSpec("batch_matmul_attention", [(3, 5, 4), (3, 7, 4)], _attention_scores, ops=both("BATCH_MATMUL")))
def _sane_output_quantization(model_bytes: bytes, kind: str) -> bytes:
    """TF 2.21's int8 calibration leaves this model's output scale unset (a different garbage float on every
    conversion: 3e7, 1e30, now and then inf or NaN, which readers rightly refuse): the output gets scale 0.1
    and zero point 0 in place (products of ~N(0, 1) inputs over 4 terms: |y| well under 12.7)."""
    if kind != INT8:
        return model_bytes
    import tflite
    graph = tflite.Model.GetRootAsModel(model_bytes, 0).Subgraphs(0)
    out = bytearray(model_bytes)
    for k in range(graph.OutputsLength()):
        q = graph.Tensors(graph.Outputs(k)).Quantization()
        scale, zero_point = q._tab.Vector(q._tab.Offset(8)), q._tab.Vector(q._tab.Offset(10))    # vector data
        struct.pack_into("<f", out, scale, 0.1)
        struct.pack_into("<q", out, zero_point, 0)
    return bytes(out)


_add(MathSpec("batch_matmul_adj_x_broadcast", [(2, 3, 4, 5), (4, 6)],
              _pair(lambda tf, a, b: tf.matmul(a, tf.broadcast_to(b, [1, 1, 4, 6]), transpose_a=True)),
              ops=both("BATCH_MATMUL"), resizable=False, rewrite=_sane_output_quantization))
_CONST = np.random.default_rng(7).standard_normal((3, 4, 6)).astype(np.float32)
# a constant right operand per batch, plain and transposed (a single 2-D one becomes FULLY_CONNECTED)
_add(MathSpec("batch_matmul_constant_rhs", [(3, 5, 4)],
              _lambdas(lambda tf, t: tf.matmul(t, tf.constant(_CONST)),
                       lambda tf, t: tf.matmul(t, tf.constant(_CONST.transpose(0, 2, 1)), transpose_b=True)),
              ops=both("BATCH_MATMUL")))
_add(MathSpec("multi_head_attention", [(5, 8)],
              _single(lambda k, tf, x: k.layers.MultiHeadAttention(num_heads=2, key_dim=3)(x, x)),
              ops=both("BATCH_MATMUL", "FULLY_CONNECTED", "SOFTMAX"), resizable=False))

# ----- grouped CONV_2D ------------------------------------------------------------------------------------------
_add(MathSpec("grouped_conv_3_groups_stride2_same_relu", [(7, 9, 6)],
              _single(lambda k, tf, x: k.layers.Conv2D(9, 3, strides=2, padding="same", groups=3,
                                                       activation="relu")(x)), ops=both("CONV_2D")))
_add(MathSpec("grouped_conv_2_groups_dilated_valid", [(8, 7, 4)],
              _single(lambda k, tf, x: k.layers.Conv2D(6, (2, 3), dilation_rate=2, groups=2)(x)), ops=both("CONV_2D")))

# ----- space / depth / batch ------------------------------------------------------------------------------------
_add(MathSpec("space_to_depth", [(6, 4, 3)], _lambda(lambda tf, t: tf.nn.space_to_depth(t, 2)),
              ops=both("SPACE_TO_DEPTH")))
# DEPTH_TO_SPACE's int8 version 2 is past BUILTIN_REF's table; its builtin kernel copies the same bytes
_add(MathSpec("depth_to_space", [(3, 2, 18)], _lambda(lambda tf, t: tf.nn.depth_to_space(t, 3)),
              ops=both("DEPTH_TO_SPACE"), resolver="builtin"))
_add(MathSpec("mirror_pad_reflect", [(5, 4, 3)],
              _lambda(lambda tf, t: tf.pad(t, [[0, 0], [1, 4], [3, 1], [0, 2]], mode="REFLECT")),
              ops=both("MIRROR_PAD")))
_add(MathSpec("mirror_pad_symmetric", [(5, 4, 3)],
              _lambda(lambda tf, t: tf.pad(t, [[0, 0], [5, 2], [0, 4], [1, 3]], mode="SYMMETRIC")),
              ops=both("MIRROR_PAD")))


def _dilated_conv_tf1(paddings, crops):
    """A dilation-2 3x3 conv the TF1 way: SPACE_TO_BATCH_ND, a plain conv, BATCH_TO_SPACE_ND (the ReLU between
    keeps the converter from folding the three into one dilated CONV_2D)."""
    def build(k, tf, xs):
        conv = k.layers.Conv2D(5, 3, padding="valid")
        y = k.layers.Lambda(lambda t: tf.nn.relu(tf.space_to_batch_nd(t, [2, 2], paddings)))(xs[0])
        return [k.layers.Lambda(lambda t: tf.batch_to_space(t, [2, 2], crops))(conv(y))]
    return build


_add(MathSpec("space_batch_dilated_conv", [(9, 8, 3)], _dilated_conv_tf1([[2, 3], [2, 2]], [[0, 1], [1, 0]]),
              ops=both("SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND", "CONV_2D")))
_add(MathSpec("space_batch_rank3", [(10, 3)], _lambda(lambda tf, t: tf.batch_to_space(
              tf.nn.relu(tf.space_to_batch_nd(t, [3], [[1, 1]])), [3], [[0, 2]])),
              ops=both("SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND")))


def _as_uint8(model_bytes: bytes) -> bytes:
    """An int8 model with every int8 tensor made uint8, zero points and constant values moved by 128 (the same
    real values): the uint8 kernels LiteRT keeps for some ops, which TensorFlow's converter no longer emits."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as fb
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(bytearray(model_bytes), 0))
    for t in model.subgraphs[0].tensors:
        if t.type != fb.TensorType.INT8:
            continue
        t.type = fb.TensorType.UINT8
        if t.quantization is not None and t.quantization.zeroPoint is not None:
            t.quantization.zeroPoint = [int(z) + 128 for z in t.quantization.zeroPoint]
        buf = model.buffers[t.buffer]
        if buf.data is not None and len(buf.data):
            buf.data = np.asarray(buf.data, dtype=np.uint8) ^ np.uint8(0x80)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


# ----- conversion -----------------------------------------------------------------------------------------------

def convert(spec: MathSpec, kind: str) -> bytes:
    """The spec's model as a .tflite flatbuffer: "int8" (full int8, int8 I/O), "uint8" (that model in uint8),
    "float", or "int32" (int32 I/O)."""
    if kind == UINT8:
        return _as_uint8(convert(spec, INT8))
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    import tf_keras as keras

    if kind == INT32:
        signature = [tf.TensorSpec((1, *s), tf.int32) for s in spec.inputs]
        fn = tf.function(lambda *xs: spec.build(keras, tf, list(xs)), input_signature=signature)
        converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
    else:
        converter = tf.lite.TFLiteConverter.from_keras_model(build_keras(spec, keras, tf))
    if kind == INT8:
        rng = np.random.default_rng(sum(spec.name.encode()))
        samples = [draw(spec, [(1, *s) for s in spec.inputs], rng) for _ in range(REPRESENTATIVE_SAMPLES)]

        def representative_dataset():
            yield from samples

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    model_bytes = converter.convert()
    return spec.rewrite(model_bytes, kind) if spec.rewrite is not None else model_bytes
