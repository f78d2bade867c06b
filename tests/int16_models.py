"""Small Keras models converted in TensorFlow's 16x8 mode (int16 activations, int8 weights, int64 bias:
`EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8` with a representative dataset), and Conv2DTranspose
models in int8, 16x8 and float for TRANSPOSE_CONV.

Each `Int16Spec` names the ops (and fused activations) its conversions must contain.  Kinds: "int16" (int16 input
and output), "int16_float_io" (float input and output: QUANTIZE float -> int16 and DEQUANTIZE int16 -> float),
"int8" (full int8) and "float".  TensorFlow is imported only inside `convert`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

from tflite_models import REPRESENTATIVE_SAMPLES, build_keras, representative_inputs


@dataclass
class Int16Spec:
    name: str
    inputs: list                     # per-input shape without the batch dimension
    build: Callable                  # build(keras, tf, inputs) -> list of output tensors
    ops: frozenset = frozenset()     # op types every conversion must contain
    fused: tuple = ()                # (op type, fused activation) pairs the quantized conversions must contain
    spread: float = 1.0              # standard deviation of the representative / test inputs
    kinds: tuple = ("int16",)
    rewrite: Callable = None         # rewrite(model_bytes) -> model_bytes, for what the converter gets wrong
    make: Callable = None            # make() -> model bytes, for one-op models the converter never emits
    int32_bias: bool = False         # the converter's quantized_bias_type INT32 instead of int64


def one_input(fn):
    """build() for a one-input model given as fn(keras, tf, x) -> output(s)."""
    def build(keras, tf, xs):
        out = fn(keras, tf, xs[0])
        return out if isinstance(out, list) else [out]
    return build


def clip_n1_to_1(tf):
    return lambda t: tf.clip_by_value(t, -1.0, 1.0)


SPECS: dict[str, Int16Spec] = {}


def add(spec: Int16Spec):
    assert spec.name not in SPECS
    SPECS[spec.name] = spec


# CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED
add(Int16Spec("conv_3x2_stride2_same_relu", [(13, 11, 3)],
              one_input(lambda k, tf, x: k.layers.Conv2D(5, (3, 2), strides=2, padding="same", activation="relu")(x)),
              frozenset({"CONV_2D"}), (("CONV_2D", "RELU"),)))
add(Int16Spec("conv_dilation2_valid_nobias_relu6", [(11, 13, 7)],
              one_input(lambda k, tf, x: k.layers.Conv2D(17, (2, 3), dilation_rate=2, padding="valid", use_bias=False,
                                                         activation=tf.nn.relu6)(x)),
              frozenset({"CONV_2D"}), (("CONV_2D", "RELU6"),)))
add(Int16Spec("conv_1x1_relu_n1_to_1_wide_range", [(7, 5, 5)],
              one_input(lambda k, tf, x: k.layers.Lambda(clip_n1_to_1(tf))(k.layers.Conv2D(7, 1)(x))),
              frozenset({"CONV_2D"}), (("CONV_2D", "RELU_N1_TO_1"),), spread=4.0))
add(Int16Spec("dwconv_3x3_m2_stride2_valid_relu6", [(12, 9, 7)],
              one_input(lambda k, tf, x: k.layers.DepthwiseConv2D(3, strides=2, depth_multiplier=2, padding="valid",
                                                                  activation=tf.nn.relu6)(x)),
              frozenset({"DEPTHWISE_CONV_2D"}), (("DEPTHWISE_CONV_2D", "RELU6"),)))
add(Int16Spec("dwconv_5x5_m1_dilation2_same", [(13, 11, 5)],
              one_input(lambda k, tf, x: k.layers.DepthwiseConv2D(5, dilation_rate=2, padding="same")(x)),
              frozenset({"DEPTHWISE_CONV_2D"})))
add(Int16Spec("dense_relu_then_linear", [(37,)],
              one_input(lambda k, tf, x: k.layers.Dense(5)(k.layers.Dense(17, activation="relu")(x))),
              frozenset({"FULLY_CONNECTED"}), (("FULLY_CONNECTED", "RELU"), ("FULLY_CONNECTED", "NONE"))))
add(Int16Spec("conv_int32_bias", [(9, 8, 6)],
              one_input(lambda k, tf, x: k.layers.Conv2D(5, 3, padding="same", activation="relu")(x)),
              frozenset({"CONV_2D"}), spread=3.0, int32_bias=True))
add(Int16Spec("dense_int32_bias", [(29,)], one_input(lambda k, tf, x: k.layers.Dense(7)(x)),
              frozenset({"FULLY_CONNECTED"}), spread=3.0, int32_bias=True))
add(Int16Spec("dense_3d_input_nobias", [(7, 13)],
              one_input(lambda k, tf, x: k.layers.Dense(9, use_bias=False)(x)), frozenset({"FULLY_CONNECTED"}),
              spread=3.0))

# ADD / SUB / MUL, with broadcasts and fused activations
add(Int16Spec("add_sub_mul_same_shape", [(6, 7, 5), (6, 7, 5)],
              lambda k, tf, xs: [k.layers.Add()(xs), k.layers.Subtract()(xs), k.layers.Multiply()(xs)],
              frozenset({"ADD", "SUB", "MUL"})))
add(Int16Spec("add_sub_mul_channel_broadcast", [(6, 7, 5), (1, 1, 5)],
              lambda k, tf, xs: [k.layers.Lambda(lambda t: t[0] + t[1])(xs),
                                 k.layers.Lambda(lambda t: t[0] - t[1])(xs),
                                 k.layers.Lambda(lambda t: t[0] * t[1])(xs)],
              frozenset({"ADD", "SUB", "MUL"})))
add(Int16Spec("add_sub_mul_row_broadcast", [(6, 7, 5), (6, 1, 1)],
              lambda k, tf, xs: [k.layers.Lambda(lambda t: t[0] + t[1])(xs),
                                 k.layers.Lambda(lambda t: t[1] - t[0])(xs),
                                 k.layers.Lambda(lambda t: t[0] * t[1])(xs)],
              frozenset({"ADD", "SUB", "MUL"})))
add(Int16Spec("add_mul_sub_constant", [(5, 4, 3)],
              one_input(lambda k, tf, x: [
                  k.layers.Lambda(lambda t: t + tf.constant([0.5, -1.25, 2.0]))(x),
                  k.layers.Lambda(lambda t: t * tf.constant([[[1.5, -0.75, 3.0]]]))(x),
                  k.layers.Lambda(lambda t: tf.constant(0.3) - t)(x)]),
              frozenset({"ADD", "MUL", "SUB"})))
add(Int16Spec("add_sub_mul_fused_activations", [(6, 7, 5), (6, 7, 5)],
              lambda k, tf, xs: [k.layers.ReLU()(k.layers.Add()(xs)),
                                 k.layers.Lambda(lambda t: tf.nn.relu6(t[0] * t[1]))(xs),
                                 k.layers.Lambda(lambda t: tf.clip_by_value(t[0] - t[1], -1.0, 1.0))(xs)],
              frozenset({"ADD", "MUL", "SUB"}), (("ADD", "RELU"), ("MUL", "RELU6"), ("SUB", "RELU_N1_TO_1"))))
add(Int16Spec("add_inputs_of_very_different_scales", [(6, 7, 5), (6, 7, 5)],
              lambda k, tf, xs: [k.layers.Lambda(lambda t: t[0] + 60.0 * t[1])(xs),
                                 k.layers.Lambda(lambda t: 0.02 * t[0] - t[1])(xs)],
              frozenset({"ADD", "SUB", "MUL"})))

# activations
add(Int16Spec("leaky_relu", [(6, 7, 5)], one_input(lambda k, tf, x: k.layers.LeakyReLU(alpha=0.2)(x)),
              frozenset({"LEAKY_RELU"}), spread=2.0))
add(Int16Spec("leaky_relu_alpha_above_one", [(6, 7, 5)],
              one_input(lambda k, tf, x: k.layers.LeakyReLU(alpha=1.7)(x)), frozenset({"LEAKY_RELU"}), spread=2.0))
add(Int16Spec("logistic", [(6, 7, 5)], one_input(lambda k, tf, x: k.layers.Activation("sigmoid")(x)),
              frozenset({"LOGISTIC"}), spread=4.0))
add(Int16Spec("logistic_wide_range", [(6, 7, 5)], one_input(lambda k, tf, x: k.layers.Activation("sigmoid")(x)),
              frozenset({"LOGISTIC"}), spread=40.0))
add(Int16Spec("tanh", [(6, 7, 5)], one_input(lambda k, tf, x: k.layers.Activation("tanh")(x)),
              frozenset({"TANH"}), spread=2.0))
add(Int16Spec("tanh_narrow_range", [(6, 7, 5)], one_input(lambda k, tf, x: k.layers.Activation("tanh")(x)),
              frozenset({"TANH"}), spread=0.05))
add(Int16Spec("softmax_last_axis", [(4, 19)], one_input(lambda k, tf, x: k.layers.Softmax()(x)),
              frozenset({"SOFTMAX"}), spread=3.0))
add(Int16Spec("softmax_wide_range_long_axis", [(300,)], one_input(lambda k, tf, x: k.layers.Softmax()(x)),
              frozenset({"SOFTMAX"}), spread=20.0))

# PAD / PADV2, MEAN, CONCATENATION and the byte moves
def padv2_value_as_int16(model_bytes: bytes) -> bytes:
    """The 16x8 converter leaves PADV2's constant value float32 beside int16 data, which LiteRT refuses ("INT16 !=
    FLOAT32"): store it as the int16 it stands for (value / input scale, rounded), as a valid model would."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as fb
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(bytearray(model_bytes), 0))
    sg = model.subgraphs[0]
    for op in sg.operators:
        if model.operatorCodes[op.opcodeIndex].builtinCode != fb.BuiltinOperator.PADV2:
            continue
        data, value = sg.tensors[op.inputs[0]], sg.tensors[op.inputs[2]]
        v = np.frombuffer(bytes(model.buffers[value.buffer].data), np.float32)[0]
        model.buffers[value.buffer].data = list(np.array([round(v / data.quantization.scale[0])], np.int16).tobytes())
        value.type = fb.TensorType.INT16
        value.quantization = data.quantization
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


add(Int16Spec("pad_and_padv2", [(5, 6, 3)],
              one_input(lambda k, tf, x: [k.layers.ZeroPadding2D(((1, 2), (0, 3)))(x),
                                          k.layers.Lambda(lambda t: tf.pad(t, [[0, 0], [1, 1], [0, 2], [0, 0]],
                                                                           constant_values=0.5))(x)]),
              frozenset({"PAD", "PADV2"}), rewrite=padv2_value_as_int16))
add(Int16Spec("mean_hw_and_channels", [(7, 5, 9)],
              one_input(lambda k, tf, x: [k.layers.GlobalAveragePooling2D()(x),
                                          k.layers.Lambda(lambda t: tf.reduce_mean(t, axis=-1, keepdims=True))(x)]),
              frozenset({"MEAN"})))
add(Int16Spec("concat_channels", [(5, 6, 3), (5, 6, 4)],
              lambda k, tf, xs: [k.layers.Concatenate(axis=-1)(xs)], frozenset({"CONCATENATION"})))
add(Int16Spec("strided_slice_transpose_reshape", [(9, 8, 5)],
              one_input(lambda k, tf, x: [k.layers.Lambda(lambda t: t[:, 1:7:2, ::-1])(x),
                                          k.layers.Lambda(lambda t: t[:, 2, :, 1:4])(x),
                                          k.layers.Lambda(lambda t: tf.transpose(t, [0, 3, 1, 2]))(x),
                                          k.layers.Reshape((-1, 5))(x)]),
              frozenset({"STRIDED_SLICE", "TRANSPOSE", "RESHAPE"})))
add(Int16Spec("split_pack_unpack", [(4, 6)],
              one_input(lambda k, tf, x: [k.layers.Lambda(lambda t: tf.split(t, 3, axis=-1)[1])(x),
                                          k.layers.Lambda(lambda t: tf.stack([t, t], axis=1))(x),
                                          k.layers.Lambda(lambda t: tf.unstack(t, axis=1)[2])(x)]),
              frozenset({"SPLIT", "PACK", "UNPACK"})))

# a small network with float input and output (QUANTIZE / DEQUANTIZE at the edges), also run at batch 2
def small_cnn(k, tf, x):
    y = k.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    y = k.layers.DepthwiseConv2D(3, padding="same", activation=tf.nn.relu6)(y)
    y = k.layers.Conv2D(12, 1, activation="relu")(y)
    y = k.layers.GlobalAveragePooling2D()(y)
    y = k.layers.Dense(10)(y)
    return k.layers.Softmax()(y)


add(Int16Spec("small_cnn", [(17, 15, 3)], one_input(small_cnn),
              frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"}),
              kinds=("int16", "int16_float_io")))

# TRANSPOSE_CONV (Conv2DTranspose): SAME / VALID, stride 1 and 2, with and without bias, fused activations
add(Int16Spec("transpose_conv_3x3_stride2_same", [(5, 4, 3)],
              one_input(lambda k, tf, x: k.layers.Conv2DTranspose(6, 3, strides=2, padding="same")(x)),
              frozenset({"TRANSPOSE_CONV"}), kinds=("int16", "int8", "float")))
add(Int16Spec("transpose_conv_2x3_stride1_valid_nobias", [(6, 5, 4)],
              one_input(lambda k, tf, x: k.layers.Conv2DTranspose(5, (2, 3), padding="valid", use_bias=False)(x)),
              frozenset({"TRANSPOSE_CONV"}), kinds=("int16", "int8", "float")))
add(Int16Spec("transpose_conv_4x4_stride2x1_valid_relu", [(4, 5, 7)],
              one_input(lambda k, tf, x: k.layers.Conv2DTranspose(3, 4, strides=(2, 1), padding="valid",
                                                                  activation="relu")(x)),
              frozenset({"TRANSPOSE_CONV"}), (("TRANSPOSE_CONV", "RELU"),), kinds=("int16", "int8", "float")))
add(Int16Spec("transpose_conv_3x2_stride2_same_nobias_relu6", [(5, 6, 2)],
              one_input(lambda k, tf, x: k.layers.Conv2DTranspose(4, (3, 2), strides=2, padding="same",
                                                                  use_bias=False, activation=tf.nn.relu6)(x)),
              frozenset({"TRANSPOSE_CONV"}), kinds=("int16", "int8", "float")))


# ----- one-op models written directly (TensorFlow's flatbuffer object API) -------------------------------------

def one_op_model(op_name: str, inputs: list, outputs: list, options=None, version: int = 2) -> bytes:
    """A .tflite file with one op; each tensor is (type name, shape, scale, zero point[, constant data]); the
    inputs without data are the graph inputs; `options` is (BuiltinOptions name, {field: value})."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as fb
    model = fb.ModelT()
    model.version = 3
    code = fb.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = getattr(fb.BuiltinOperator, op_name)
    code.version = version
    model.operatorCodes = [code]
    model.buffers = [fb.BufferT()]
    sg = fb.SubGraphT()
    sg.tensors = []
    for k, (type_name, shape, scale, zero_point, *data) in enumerate(inputs + outputs):
        t = fb.TensorT()
        t.name = f"t{k}".encode()
        t.shape = np.array(shape, np.int32)
        t.type = getattr(fb.TensorType, type_name)
        if scale is not None:
            t.quantization = fb.QuantizationParametersT()
            t.quantization.scale, t.quantization.zeroPoint = [scale], [zero_point]
        model.buffers.append(fb.BufferT())
        if data:
            model.buffers[-1].data = list(np.asarray(data[0]).tobytes())
        t.buffer = len(model.buffers) - 1
        sg.tensors.append(t)
    op = fb.OperatorT()
    op.opcodeIndex = 0
    op.inputs = list(range(len(inputs)))
    op.outputs = list(range(len(inputs), len(inputs) + len(outputs)))
    if options is not None:
        name, fields = options
        op.builtinOptionsType = getattr(fb.BuiltinOptions, name)
        op.builtinOptions = getattr(fb, name + "T")()
        for field, value in fields.items():
            setattr(op.builtinOptions, field, value)
    sg.operators = [op]
    sg.inputs, sg.outputs = [k for k, t in enumerate(inputs) if len(t) == 4], op.outputs
    model.subgraphs = [sg]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def requantize_model(in_type, in_scale, in_zp, out_type, out_scale, out_zp):
    return lambda: one_op_model("QUANTIZE", [(in_type, [1, 7, 5, 3], in_scale, in_zp)],
                                [(out_type, [1, 7, 5, 3], out_scale, out_zp)])


def pot_model(op_name, scales, shapes=([2, 9, 5], [2, 9, 5]), activation=0):
    """ADD / SUB on int16 with power-of-two scales and pot_scale_int16 set: LiteRT's legacy int16 path."""
    tensors = [("INT16", shape, scale, 0) for shape, scale in zip(shapes, scales)]
    options = ("AddOptions" if op_name == "ADD" else "SubOptions",
               {"fusedActivationFunction": activation, "potScaleInt16": True})
    return lambda: one_op_model(op_name, tensors, [("INT16", list(shapes[0]), scales[2], 0)], options)


add(Int16Spec("quantize_int16_to_int8", [(7, 5, 3)], None, frozenset({"QUANTIZE"}),
              make=requantize_model("INT16", 1 / 1000, 0, "INT8", 1 / 50, -3)))
add(Int16Spec("quantize_int8_to_int16", [(7, 5, 3)], None, frozenset({"QUANTIZE"}),
              make=requantize_model("INT8", 0.02, 5, "INT16", 1 / 3000, 0)))
add(Int16Spec("quantize_int16_to_int16", [(7, 5, 3)], None, frozenset({"QUANTIZE"}),
              make=requantize_model("INT16", 1 / 1000, 0, "INT16", 1 / 700, 0)))
add(Int16Spec("squeeze_int16", [(7, 1, 5)], None, frozenset({"SQUEEZE"}),
              make=lambda: one_op_model("SQUEEZE", [("INT16", [1, 7, 1, 5], 0.001, 0)],
                                        [("INT16", [1, 7, 5], 0.001, 0)],
                                        ("SqueezeOptions", {"squeezeDims": [2]}), version=1)))
add(Int16Spec("expand_dims_int16", [(7, 5)], None, frozenset({"EXPAND_DIMS"}),
              make=lambda: one_op_model("EXPAND_DIMS", [("INT16", [1, 7, 5], 0.001, 0),
                                                        ("INT32", [1], None, 0, np.array([-1], np.int32))],
                                        [("INT16", [1, 7, 5, 1], 0.001, 0)], ("ExpandDimsOptions", {}), version=1)))
add(Int16Spec("add_pot_second_input_shifted", [(2, 9, 5)] * 2, None, frozenset({"ADD"}),
              make=pot_model("ADD", (2.0 ** -12, 2.0 ** -14, 2.0 ** -12))))
add(Int16Spec("add_pot_relu_first_input_shifted", [(2, 9, 5)] * 2, None, frozenset({"ADD"}),
              make=pot_model("ADD", (2.0 ** -15, 2.0 ** -11, 2.0 ** -11), activation=1)))
add(Int16Spec("sub_pot_first_input_shifted", [(2, 9, 5)] * 2, None, frozenset({"SUB"}),
              make=pot_model("SUB", (2.0 ** -13, 2.0 ** -10, 2.0 ** -10))))
add(Int16Spec("sub_pot_second_input_shifted_relu6", [(2, 9, 5)] * 2, None, frozenset({"SUB"}),
              make=pot_model("SUB", (2.0 ** -10, 2.0 ** -13, 2.0 ** -10), activation=3)))
add(Int16Spec("add_pot_flag_with_general_scales", [(2, 9, 5)] * 2, None, frozenset({"ADD"}),
              make=pot_model("ADD", (0.001, 2.0 ** -12, 0.002))))


def convert(spec: Int16Spec, kind: str) -> bytes:
    """The spec's model as a .tflite flatbuffer of the given kind (see the module docstring)."""
    if spec.make is not None:
        return spec.make()
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
        if kind == "int8":
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = converter.inference_output_type = tf.int8
        else:
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
            if kind == "int16":
                converter.inference_input_type = converter.inference_output_type = tf.int16
            if spec.int32_bias:
                converter._experimental_full_integer_quantization_bias_type = tf.int32
    model_bytes = converter.convert()
    return spec.rewrite(model_bytes) if spec.rewrite is not None and kind == "int16" else model_bytes
