"""Small Keras models, one per op variant, converted with TensorFlow's converter to int8 and float .tflite.

Each `ModelSpec` names the ops (and fused activations) its int8 and float conversions must contain, so a test
fails loudly when the converter emits something other than the op it was meant to exercise.  TensorFlow is
imported only inside `convert`; building the catalogue itself needs nothing.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

REPRESENTATIVE_SAMPLES = 64


@dataclass
class ModelSpec:
    name: str
    inputs: list                     # per-input shape without the batch dimension
    build: Callable                  # build(keras, tf, inputs) -> list of output tensors
    int8_ops: frozenset = frozenset()    # op types the int8 model must contain
    float_ops: frozenset = frozenset()   # op types the float model must contain
    int8_fused: tuple = ()           # (op type, fused activation) pairs the int8 model must contain
    float_fused: tuple = ()
    spread: float = 1.0              # standard deviation of the representative / float test inputs
    kinds: tuple = ("int8", "float")
    rewrite: Callable = None         # rewrite(model_bytes) -> model_bytes, for ops the converter never emits
    isolated: bool = False           # convert in a child process (TF 2.21 can crash converting recurrent layers)


def _seed(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


def representative_inputs(spec: ModelSpec, n: int, seed_offset: int = 0) -> list:
    """n lists of float32 arrays (one per input, batch 1), normal with the spec's spread, seeded by name."""
    rng = np.random.default_rng(_seed(spec.name) + seed_offset)
    return [[(spec.spread * rng.standard_normal((1, *shape))).astype(np.float32) for shape in spec.inputs]
            for _ in range(n)]


# ----- the catalogue ----------------------------------------------------------------------------------------

def _single(fn):
    """build() for a one-input model given as fn(keras, tf, x) -> output(s)."""
    def build(keras, tf, xs):
        out = fn(keras, tf, xs[0])
        return out if isinstance(out, list) else [out]
    return build


def _relu_n1_to_1(tf):
    return lambda t: tf.clip_by_value(t, -1.0, 1.0)


SPECS: dict[str, ModelSpec] = {}


def _add(spec: ModelSpec):
    assert spec.name not in SPECS
    SPECS[spec.name] = spec


def _both(ops, fused=()):
    return dict(int8_ops=frozenset(ops), float_ops=frozenset(ops), int8_fused=tuple(fused), float_fused=tuple(fused))


# CONV_2D
_add(ModelSpec("conv_3x2_stride2_same_relu", [(13, 11, 3)],
               _single(lambda k, tf, x: k.layers.Conv2D(5, (3, 2), strides=2, padding="same", activation="relu")(x)),
               **_both({"CONV_2D"}, [("CONV_2D", "RELU")])))
_add(ModelSpec("conv_3x3_dilation2_valid_nobias", [(13, 11, 5)],
               _single(lambda k, tf, x: k.layers.Conv2D(7, 3, dilation_rate=2, padding="valid", use_bias=False)(x)),
               **_both({"CONV_2D"}, [("CONV_2D", "NONE")])))
_add(ModelSpec("conv_2x3_dilation2_same_relu6", [(11, 13, 7)],
               _single(lambda k, tf, x: k.layers.Conv2D(17, (2, 3), dilation_rate=2, padding="same",
                                                        activation=tf.nn.relu6)(x)),
               **_both({"CONV_2D"}, [("CONV_2D", "RELU6")])))
_add(ModelSpec("conv_3x3_stride2x1_valid_17ch", [(12, 9, 17)],
               _single(lambda k, tf, x: k.layers.Conv2D(3, 3, strides=(2, 1), padding="valid")(x)),
               **_both({"CONV_2D"})))
_add(ModelSpec("conv_5x5_stride2_same_even", [(10, 8, 3)],
               _single(lambda k, tf, x: k.layers.Conv2D(4, 5, strides=2, padding="same", use_bias=False,
                                                        activation="relu")(x)),
               **_both({"CONV_2D"}, [("CONV_2D", "RELU")])))
_add(ModelSpec("conv_1x1_relu_n1_to_1", [(7, 5, 5)],
               _single(lambda k, tf, x: k.layers.Lambda(_relu_n1_to_1(tf))(k.layers.Conv2D(7, 1)(x))),
               **_both({"CONV_2D"}, [("CONV_2D", "RELU_N1_TO_1")])))

# DEPTHWISE_CONV_2D
_add(ModelSpec("dwconv_3x3_m1_stride2_same_relu", [(13, 11, 5)],
               _single(lambda k, tf, x: k.layers.DepthwiseConv2D(3, strides=2, padding="same", activation="relu")(x)),
               **_both({"DEPTHWISE_CONV_2D"}, [("DEPTHWISE_CONV_2D", "RELU")])))
_add(ModelSpec("dwconv_3x2_m2_dilation2_valid_nobias", [(11, 13, 3)],
               _single(lambda k, tf, x: k.layers.DepthwiseConv2D((3, 2), depth_multiplier=2, dilation_rate=2,
                                                                 padding="valid", use_bias=False)(x)),
               **_both({"DEPTHWISE_CONV_2D"})))
_add(ModelSpec("dwconv_3x3_m2_stride2_valid_relu6", [(12, 9, 7)],
               _single(lambda k, tf, x: k.layers.DepthwiseConv2D(3, strides=2, depth_multiplier=2, padding="valid",
                                                                 activation=tf.nn.relu6)(x)),
               **_both({"DEPTHWISE_CONV_2D"}, [("DEPTHWISE_CONV_2D", "RELU6")])))
_add(ModelSpec("dwconv_5x5_m1_dilation2_same", [(13, 11, 17)],
               _single(lambda k, tf, x: k.layers.DepthwiseConv2D(5, dilation_rate=2, padding="same")(x)),
               **_both({"DEPTHWISE_CONV_2D"})))

# FULLY_CONNECTED
_add(ModelSpec("dense_2d_relu_then_linear", [(37,)],
               _single(lambda k, tf, x: k.layers.Dense(5)(k.layers.Dense(17, activation="relu")(x))),
               **_both({"FULLY_CONNECTED"}, [("FULLY_CONNECTED", "RELU"), ("FULLY_CONNECTED", "NONE")])))
_add(ModelSpec("dense_3d_input", [(7, 13)],
               _single(lambda k, tf, x: k.layers.Dense(9)(x)),
               **_both({"FULLY_CONNECTED"})))


def _fc_without_keep_num_dims(model_bytes: bytes) -> bytes:
    """Sets keep_num_dims=False on the single FULLY_CONNECTED (output [prod(leading dims), units]), the form older
    converters emit for Dense on a 3-D input; TF 2.21 always keeps the dims."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as fb
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(bytearray(model_bytes), 0))
    sg = model.subgraphs[0]
    (op,) = [op for op in sg.operators
             if model.operatorCodes[op.opcodeIndex].builtinCode == fb.BuiltinOperator.FULLY_CONNECTED]
    op.builtinOptions.keepNumDims = False
    out = sg.tensors[op.outputs[0]]
    out.shape = [int(np.prod(out.shape[:-1])), int(out.shape[-1])]
    out.shapeSignature = None
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


_add(ModelSpec("dense_3d_input_flattened_output", [(7, 13)],
               _single(lambda k, tf, x: k.layers.Dense(9)(x)), rewrite=_fc_without_keep_num_dims,
               **_both({"FULLY_CONNECTED"})))
_add(ModelSpec("dense_nobias_relu6", [(23,)],
               _single(lambda k, tf, x: k.layers.Dense(11, use_bias=False, activation=tf.nn.relu6)(x)),
               **_both({"FULLY_CONNECTED"}, [("FULLY_CONNECTED", "RELU6")])))

# AVERAGE_POOL_2D / MAX_POOL_2D
_add(ModelSpec("avgpool_3x3_stride2_same", [(13, 11, 5)],
               _single(lambda k, tf, x: k.layers.AveragePooling2D(3, strides=2, padding="same")(x)),
               **_both({"AVERAGE_POOL_2D"})))
_add(ModelSpec("avgpool_3x2_stride2x3_same", [(11, 13, 3)],
               _single(lambda k, tf, x: k.layers.AveragePooling2D((3, 2), strides=(2, 3), padding="same")(x)),
               **_both({"AVERAGE_POOL_2D"})))
_add(ModelSpec("avgpool_2x2_stride1_valid", [(7, 6, 7)],
               _single(lambda k, tf, x: k.layers.AveragePooling2D(2, strides=1, padding="valid")(x)),
               **_both({"AVERAGE_POOL_2D"})))
_add(ModelSpec("maxpool_3x3_stride2_same", [(13, 11, 5)],
               _single(lambda k, tf, x: k.layers.MaxPooling2D(3, strides=2, padding="same")(x)),
               **_both({"MAX_POOL_2D"})))
_add(ModelSpec("maxpool_3x2_stride2x3_same", [(11, 13, 3)],
               _single(lambda k, tf, x: k.layers.MaxPooling2D((3, 2), strides=(2, 3), padding="same")(x)),
               **_both({"MAX_POOL_2D"})))
_add(ModelSpec("maxpool_2x2_stride1_valid", [(7, 6, 17)],
               _single(lambda k, tf, x: k.layers.MaxPooling2D(2, strides=1, padding="valid")(x)),
               **_both({"MAX_POOL_2D"})))

# ADD / SUB / MUL
_add(ModelSpec("add_sub_mul_same_shape", [(6, 7, 5), (6, 7, 5)],
               lambda k, tf, xs: [k.layers.Add()(xs), k.layers.Subtract()(xs), k.layers.Multiply()(xs)],
               **_both({"ADD", "SUB", "MUL"})))
_add(ModelSpec("add_sub_mul_channel_broadcast", [(6, 7, 5), (1, 1, 5)],
               lambda k, tf, xs: [k.layers.Lambda(lambda t: t[0] + t[1])(xs),
                                  k.layers.Lambda(lambda t: t[0] - t[1])(xs),
                                  k.layers.Lambda(lambda t: t[0] * t[1])(xs)],
               **_both({"ADD", "SUB", "MUL"})))
_add(ModelSpec("add_sub_mul_row_broadcast", [(6, 7, 5), (6, 1, 1)],
               lambda k, tf, xs: [k.layers.Lambda(lambda t: t[0] + t[1])(xs),
                                  k.layers.Lambda(lambda t: t[1] - t[0])(xs),
                                  k.layers.Lambda(lambda t: t[0] * t[1])(xs)],
               **_both({"ADD", "SUB", "MUL"})))
_add(ModelSpec("add_mul_constant", [(5, 4, 3)],
               _single(lambda k, tf, x: [
                   k.layers.Lambda(lambda t: t + tf.constant([0.5, -1.25, 2.0]))(x),
                   k.layers.Lambda(lambda t: t * tf.constant([[[1.5, -0.75, 3.0]]]))(x),
                   k.layers.Lambda(lambda t: tf.constant(0.3) - t)(x)]),
               **_both({"ADD", "MUL", "SUB"})))
_add(ModelSpec("add_relu_fused", [(6, 7, 5), (6, 7, 5)],
               lambda k, tf, xs: [k.layers.ReLU()(k.layers.Add()(xs)),
                                  k.layers.Lambda(lambda t: tf.nn.relu6(t[0] * t[1]))(xs),
                                  k.layers.Lambda(lambda t: tf.nn.relu(t[0] - t[1]))(xs)],
               **_both({"ADD", "MUL", "SUB"}, [("ADD", "RELU"), ("MUL", "RELU6"), ("SUB", "RELU")])))

# fused activations on the remaining ops that carry one
_add(ModelSpec("dwconv_fc_relu_n1_to_1", [(6, 5, 3)],
               _single(lambda k, tf, x: k.layers.Lambda(_relu_n1_to_1(tf))(k.layers.Dense(4)(
                   k.layers.Flatten()(k.layers.Lambda(_relu_n1_to_1(tf))(k.layers.DepthwiseConv2D(3)(x)))))),
               **_both({"DEPTHWISE_CONV_2D", "FULLY_CONNECTED"},
                       [("DEPTHWISE_CONV_2D", "RELU_N1_TO_1"), ("FULLY_CONNECTED", "RELU_N1_TO_1")])))
_add(ModelSpec("pools_with_fused_activations", [(9, 7, 5)],
               _single(lambda k, tf, x: [
                   k.layers.ReLU()(k.layers.AveragePooling2D(3, strides=2, padding="same")(x)),
                   k.layers.Lambda(tf.nn.relu6)(k.layers.MaxPooling2D(2, padding="same")(x))]),
               **_both({"AVERAGE_POOL_2D", "MAX_POOL_2D"}, [("AVERAGE_POOL_2D", "RELU"), ("MAX_POOL_2D", "RELU6")])))
_add(ModelSpec("add_mul_relu_n1_to_1", [(6, 7, 5), (6, 7, 5)],
               lambda k, tf, xs: [k.layers.Lambda(lambda t: tf.clip_by_value(t[0] + t[1], -1.0, 1.0))(xs),
                                  k.layers.Lambda(lambda t: tf.clip_by_value(t[0] * t[1], -1.0, 1.0))(xs)],
               **_both({"ADD", "MUL"}, [("ADD", "RELU_N1_TO_1"), ("MUL", "RELU_N1_TO_1")])))
_add(ModelSpec("concat_relu", [(5, 6, 3), (5, 6, 4)],
               lambda k, tf, xs: [k.layers.ReLU()(k.layers.Concatenate(axis=-1)(xs))],
               **_both({"CONCATENATION", "RELU"})))

# value ranges that reach other branches of the fixed-point arithmetic
_add(ModelSpec("conv_5x5_17ch_to_32_large_accumulators", [(9, 9, 17)],
               _single(lambda k, tf, x: k.layers.Conv2D(32, 5, padding="same")(x)), spread=4.0,
               **_both({"CONV_2D"})))
_add(ModelSpec("conv_1ch_input_7x7_stride3", [(29, 23, 1)],
               _single(lambda k, tf, x: k.layers.Conv2D(6, 7, strides=3, padding="same", activation="relu")(x)),
               **_both({"CONV_2D"}, [("CONV_2D", "RELU")])))
_add(ModelSpec("avgpool_whole_image", [(9, 7, 5)],
               _single(lambda k, tf, x: k.layers.AveragePooling2D((9, 7))(x)), **_both({"AVERAGE_POOL_2D"})))
_add(ModelSpec("add_inputs_of_very_different_scales", [(6, 7, 5), (6, 7, 5)],
               lambda k, tf, xs: [k.layers.Lambda(lambda t: t[0] + 60.0 * t[1])(xs),
                                  k.layers.Lambda(lambda t: 0.02 * t[0] - t[1])(xs)],
               **_both({"ADD", "SUB", "MUL"})))
_add(ModelSpec("logistic_narrow_range", [(6, 7, 5)],
               _single(lambda k, tf, x: k.layers.Activation("sigmoid")(x)), spread=0.05, **_both({"LOGISTIC"})))
_add(ModelSpec("logistic_wide_range", [(6, 7, 5)],
               _single(lambda k, tf, x: k.layers.Activation("sigmoid")(x)), spread=40.0, **_both({"LOGISTIC"})))
_add(ModelSpec("tanh_narrow_range", [(6, 7, 5)],
               _single(lambda k, tf, x: k.layers.Activation("tanh")(x)), spread=0.05, **_both({"TANH"})))
_add(ModelSpec("tanh_wide_range", [(6, 7, 5)],
               _single(lambda k, tf, x: k.layers.Activation("tanh")(x)), spread=40.0, **_both({"TANH"})))
_add(ModelSpec("softmax_wide_range_long_axis", [(300,)],
               _single(lambda k, tf, x: k.layers.Softmax()(x)), spread=20.0, **_both({"SOFTMAX"})))
_add(ModelSpec("softmax_narrow_range", [(3, 10)],
               _single(lambda k, tf, x: k.layers.Softmax()(x)), spread=0.1, **_both({"SOFTMAX"})))
_add(ModelSpec("hard_swish_narrow_range", [(6, 7, 5)],
               _single(lambda k, tf, x: k.layers.Lambda(lambda t: t * tf.nn.relu6(t + 3.0) * (1.0 / 6.0))(x)),
               spread=0.3, **_both({"HARD_SWISH"})))
_add(ModelSpec("hard_swish_wide_range", [(6, 7, 5)],
               _single(lambda k, tf, x: k.layers.Lambda(lambda t: t * tf.nn.relu6(t + 3.0) * (1.0 / 6.0))(x)),
               spread=30.0, **_both({"HARD_SWISH"})))
_add(ModelSpec("leaky_relu_alpha_above_one", [(6, 7, 5)],
               _single(lambda k, tf, x: k.layers.LeakyReLU(alpha=1.7)(x)), spread=2.0, **_both({"LEAKY_RELU"})))

# RESHAPE / SQUEEZE
_add(ModelSpec("reshape_flatten", [(6, 7, 5)],
               _single(lambda k, tf, x: [k.layers.Reshape((-1, 5))(x), k.layers.Flatten()(x)]),
               **_both({"RESHAPE"})))


def _reshape_to(op_name: str, axis: int):
    """Turns the model's single RESHAPE into SQUEEZE(axis) or EXPAND_DIMS(axis).

    With a static shape the converter always lowers tf.squeeze / tf.expand_dims to RESHAPE, so the real ops are
    produced by editing the flatbuffer (TensorFlow's object API) around an otherwise converter-made model.
    """
    def rewrite(model_bytes: bytes) -> bytes:
        import flatbuffers
        from tensorflow.lite.python import schema_py_generated as fb
        model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(bytearray(model_bytes), 0))
        code = getattr(fb.BuiltinOperator, op_name)
        opcode = fb.OperatorCodeT()
        opcode.builtinCode = code
        opcode.deprecatedBuiltinCode = code
        opcode.version = 1
        model.operatorCodes.append(opcode)
        sg = model.subgraphs[0]
        reshapes = [op for op in sg.operators
                    if model.operatorCodes[op.opcodeIndex].builtinCode == fb.BuiltinOperator.RESHAPE]
        assert len(reshapes) == 1, "expected exactly one RESHAPE to rewrite"
        op = reshapes[0]
        op.opcodeIndex = len(model.operatorCodes) - 1
        if op_name == "SQUEEZE":
            op.inputs = op.inputs[:1]
            op.builtinOptionsType = fb.BuiltinOptions.SqueezeOptions
            op.builtinOptions = fb.SqueezeOptionsT()
            op.builtinOptions.squeezeDims = [] if axis is None else [axis]   # [] squeezes every 1-sized dim
        else:
            buf = fb.BufferT()
            buf.data = list(np.array([axis], np.int32).tobytes())
            model.buffers.append(buf)
            t = fb.TensorT()
            t.shape = [1]
            t.type = fb.TensorType.INT32
            t.buffer = len(model.buffers) - 1
            t.name = b"expand_dims_axis"
            sg.tensors.append(t)
            op.inputs = [op.inputs[0], len(sg.tensors) - 1]
            op.builtinOptionsType = fb.BuiltinOptions.ExpandDimsOptions
            op.builtinOptions = fb.ExpandDimsOptionsT()
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())
    return rewrite


_add(ModelSpec("squeeze_axis2", [(7, 1, 5)],
               _single(lambda k, tf, x: k.layers.Lambda(lambda t: tf.squeeze(t, axis=2))(k.layers.ReLU()(x))),
               rewrite=_reshape_to("SQUEEZE", 2), **_both({"RELU", "SQUEEZE"})))
_add(ModelSpec("squeeze_all_unit_dims", [(1, 7, 1)],
               _single(lambda k, tf, x: k.layers.Lambda(lambda t: tf.squeeze(t))(k.layers.ReLU()(x))),
               rewrite=_reshape_to("SQUEEZE", None), **_both({"RELU", "SQUEEZE"})))
_add(ModelSpec("expand_dims_axis2", [(7, 5)],
               _single(lambda k, tf, x: k.layers.Lambda(lambda t: tf.expand_dims(t, axis=2))(k.layers.ReLU()(x))),
               rewrite=_reshape_to("EXPAND_DIMS", 2), **_both({"RELU", "EXPAND_DIMS"})))

# activations
_add(ModelSpec("softmax_last_axis", [(4, 19)],
               _single(lambda k, tf, x: k.layers.Softmax()(x)), spread=3.0, **_both({"SOFTMAX"})))
_add(ModelSpec("logistic", [(6, 7, 5)],
               _single(lambda k, tf, x: k.layers.Activation("sigmoid")(x)), spread=4.0, **_both({"LOGISTIC"})))
_add(ModelSpec("tanh", [(6, 7, 5)],
               _single(lambda k, tf, x: k.layers.Activation("tanh")(x)), spread=2.0, **_both({"TANH"})))
_add(ModelSpec("relu", [(6, 7, 5)],
               _single(lambda k, tf, x: k.layers.ReLU()(x)), spread=2.0, **_both({"RELU"})))
_add(ModelSpec("relu6", [(6, 7, 5)],
               _single(lambda k, tf, x: k.layers.Lambda(tf.nn.relu6)(x)), spread=5.0, **_both({"RELU6"})))
_add(ModelSpec("relu_n1_to_1", [(6, 7, 5)],
               _single(lambda k, tf, x: k.layers.Lambda(_relu_n1_to_1(tf))(x)), spread=2.0,
               **_both({"RELU_N1_TO_1"})))
_add(ModelSpec("leaky_relu", [(6, 7, 5)],
               _single(lambda k, tf, x: k.layers.LeakyReLU(alpha=0.2)(x)), spread=2.0, **_both({"LEAKY_RELU"})))
_add(ModelSpec("hard_swish", [(6, 7, 5)],
               _single(lambda k, tf, x: k.layers.Lambda(lambda t: t * tf.nn.relu6(t + 3.0) * (1.0 / 6.0))(x)),
               spread=3.0, **_both({"HARD_SWISH"})))

# PAD / PADV2
_add(ModelSpec("zero_padding_2d", [(5, 6, 3)],
               _single(lambda k, tf, x: k.layers.ZeroPadding2D(((1, 2), (0, 3)))(x)), **_both({"PAD"})))
_add(ModelSpec("tf_pad_all_axes", [(5, 6, 3)],
               _single(lambda k, tf, x: k.layers.Lambda(lambda t: tf.pad(t, [[0, 0], [2, 0], [1, 1], [0, 2]]))(x)),
               **_both({"PAD"})))
_add(ModelSpec("tf_pad_constant_value", [(5, 6, 3)],
               _single(lambda k, tf, x: k.layers.Lambda(
                   lambda t: tf.pad(t, [[0, 0], [1, 1], [0, 2], [0, 0]], constant_values=0.5))(x)),
               **_both({"PADV2"})))

# MEAN
_add(ModelSpec("global_average_pooling", [(7, 5, 9)],
               _single(lambda k, tf, x: k.layers.GlobalAveragePooling2D()(x)), **_both({"MEAN"})))
_add(ModelSpec("reduce_mean_hw_keepdims", [(7, 5, 9)],
               _single(lambda k, tf, x: k.layers.Lambda(lambda t: tf.reduce_mean(t, axis=[1, 2], keepdims=True))(x)),
               **_both({"MEAN"})))
_add(ModelSpec("reduce_mean_channels_keepdims", [(7, 5, 9)],
               _single(lambda k, tf, x: k.layers.Lambda(lambda t: tf.reduce_mean(t, axis=-1, keepdims=True))(x)),
               **_both({"MEAN"})))
_add(ModelSpec("reduce_mean_axis1", [(7, 5, 9)],
               _single(lambda k, tf, x: k.layers.Lambda(lambda t: tf.reduce_mean(t, axis=1))(x)),
               **_both({"MEAN"})))
_add(ModelSpec("reduce_mean_w_and_c_keepdims", [(7, 5, 9)],
               _single(lambda k, tf, x: k.layers.Lambda(lambda t: tf.reduce_mean(t, axis=[2, 3], keepdims=True))(x)),
               **_both({"MEAN"})))

# CONCATENATION
_add(ModelSpec("concat_channels_two_inputs", [(5, 6, 3), (5, 6, 4)],
               lambda k, tf, xs: [k.layers.Concatenate(axis=-1)(
                   [xs[0], k.layers.Lambda(lambda t: t * 3.0)(xs[1])])],
               **_both({"CONCATENATION", "MUL"})))
_add(ModelSpec("concat_rows_three_inputs", [(2, 6, 3), (5, 6, 3), (1, 6, 3)],
               lambda k, tf, xs: [k.layers.Concatenate(axis=1)(xs)], **_both({"CONCATENATION"})))

# PACK (tf.stack); the int8 converter gives every input the output's scale and zero point
_add(ModelSpec("pack_axis0_two_inputs", [(5, 3), (5, 3)],
               lambda k, tf, xs: [k.layers.Lambda(lambda t: tf.stack([t[0], 2.0 * t[1]], axis=0))(xs)],
               **_both({"PACK"})))
_add(ModelSpec("pack_axis1_three_inputs", [(4, 3), (4, 3), (4, 3)],
               lambda k, tf, xs: [k.layers.Lambda(lambda t: tf.stack(t, axis=1))(xs)], **_both({"PACK"})))
_add(ModelSpec("pack_last_axis_four_inputs", [(3, 5)],
               _single(lambda k, tf, x: k.layers.Lambda(
                   lambda t: tf.stack([t, tf.nn.relu(t), t + 1.0, 0.5 * t], axis=-1))(x)),
               **_both({"PACK"})))
# an unrolled GRU returning its sequence: one PACK of 16 time steps (more inputs than one concat step takes)
_add(ModelSpec("gru_unrolled_sequences", [(16, 5)],
               _single(lambda k, tf, x: k.layers.GRU(6, return_sequences=True, unroll=True)(
                   k.layers.GRU(8, return_sequences=True, unroll=True)(x))),
               int8_ops=frozenset({"PACK", "FULLY_CONNECTED", "LOGISTIC", "TANH"}), kinds=("int8",), isolated=True))

# TRANSPOSE
_add(ModelSpec("transpose_hw", [(5, 6, 3)],
               _single(lambda k, tf, x: k.layers.Lambda(lambda t: tf.transpose(t, [0, 2, 1, 3]))(x)),
               **_both({"TRANSPOSE"})))
_add(ModelSpec("transpose_channels_first", [(5, 6, 3)],
               _single(lambda k, tf, x: k.layers.Lambda(lambda t: tf.transpose(t, [0, 3, 1, 2]))(x)),
               **_both({"TRANSPOSE"})))
_add(ModelSpec("transpose_3d", [(7, 4)],
               _single(lambda k, tf, x: k.layers.Lambda(lambda t: tf.transpose(t, [0, 2, 1]))(x)),
               **_both({"TRANSPOSE"})))

# STRIDED_SLICE
_add(ModelSpec("strided_slice_step2_reverse", [(9, 8, 5)],
               _single(lambda k, tf, x: k.layers.Lambda(lambda t: t[:, 1:7:2, ::-1])(x)),
               **_both({"STRIDED_SLICE"})))
_add(ModelSpec("strided_slice_negative_bounds", [(9, 8, 5)],
               _single(lambda k, tf, x: k.layers.Lambda(lambda t: t[:, -3:, 1:, :2])(x)),
               **_both({"STRIDED_SLICE"})))
_add(ModelSpec("strided_slice_shrink_axes", [(9, 8, 5)],
               _single(lambda k, tf, x: [k.layers.Lambda(lambda t: t[:, 2, :, 1:4])(x),
                                         k.layers.Lambda(lambda t: t[..., 3])(x)]),
               **_both({"STRIDED_SLICE"})))
_add(ModelSpec("strided_slice_reverse_step3", [(9, 8, 5)],
               _single(lambda k, tf, x: k.layers.Lambda(lambda t: t[:, 8:0:-3, :, ::2])(x)),
               **_both({"STRIDED_SLICE"})))

# small CNN: QUANTIZE/DEQUANTIZE at float I/O, batch resize, rounding modes, run(float)
def _small_cnn(k, tf, x):
    y = k.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    y = k.layers.DepthwiseConv2D(3, padding="same", activation=tf.nn.relu6)(y)
    y = k.layers.Conv2D(12, 1, activation="relu")(y)
    y = k.layers.MaxPooling2D(2)(y)
    y = k.layers.GlobalAveragePooling2D()(y)
    y = k.layers.Dense(10)(y)
    return k.layers.Softmax()(y)


_add(ModelSpec("small_cnn", [(17, 15, 3)], _single(_small_cnn),
               int8_ops=frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "MEAN", "FULLY_CONNECTED",
                                   "SOFTMAX"}),
               float_ops=frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "MEAN", "FULLY_CONNECTED",
                                    "SOFTMAX"}),
               kinds=("int8", "float", "int8_float_io")))


# ----- conversion -------------------------------------------------------------------------------------------

def build_keras(spec: ModelSpec, keras, tf):
    """A seeded Keras model with fixed batch size 1 and non-trivial (random) weights and biases."""
    keras.utils.set_random_seed(_seed(spec.name) % (2 ** 31))
    xs = [keras.Input(shape=shape, batch_size=1, name=f"in{i}") for i, shape in enumerate(spec.inputs)]
    outs = spec.build(keras, tf, xs)
    model = keras.Model(xs, outs)
    rng = np.random.default_rng(_seed(spec.name) + 1)
    # Biases start at zero in Keras: randomize them so the bias path is exercised.
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        layer.set_weights([w if w.ndim > 1 else (0.3 * rng.standard_normal(w.shape)).astype(w.dtype)
                           for w in weights])
    return model


def convert(spec: ModelSpec, kind: str) -> bytes:
    """The spec's model as a .tflite flatbuffer: "int8" (full int8, int8 I/O), "float", or "int8_float_io"."""
    if spec.isolated:
        return _convert_in_child(spec, kind)
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    import tf_keras as keras

    model = build_keras(spec, keras, tf)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if kind != "float":
        samples = representative_inputs(spec, REPRESENTATIVE_SAMPLES)

        def representative_dataset():
            yield from samples

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if kind == "int8":
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    model_bytes = converter.convert()
    return spec.rewrite(model_bytes) if spec.rewrite is not None else model_bytes


def _convert_in_child(spec: ModelSpec, kind: str) -> bytes:
    """convert() in a fresh Python process, so a converter crash fails one test instead of the session."""
    import subprocess
    import sys
    import tempfile
    code = ("import sys, dataclasses, pathlib, tflite_models as M; pathlib.Path(sys.argv[3]).write_bytes("
            "M.convert(dataclasses.replace(M.SPECS[sys.argv[1]], isolated=False), sys.argv[2]))")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.tflite")
        done = subprocess.run([sys.executable, "-c", code, spec.name, kind, path],
                              cwd=os.path.dirname(os.path.abspath(__file__)), capture_output=True)
        if done.returncode != 0 or not os.path.exists(path):
            raise RuntimeError(f"converting {spec.name} ({kind}) failed with exit code {done.returncode}:\n"
                               f"{done.stderr.decode(errors='replace')[-2000:]}")
        with open(path, "rb") as f:
            return f.read()
