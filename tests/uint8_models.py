"""uint8 (asymmetric, TF1 / Coral-style) per-op models for test_uint8.py, made from TensorFlow converter output.

TensorFlow 2's converter emits no uint8 weights, so `to_uint8` rewrites a full-int8 converter model (the catalogue
of tests/tflite_models.py, or a spec of this module) into the form TF1's converter wrote: every int8 tensor becomes
uint8 (data + 128, zero point + 128), the CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED weights are re-quantized
per tensor with an asymmetric uint8 range (their natural zero point, or a forced one for the extremes) and their
biases re-scaled to input_scale * weight_scale, as LiteRT's uint8 kernels require.  LiteRT's reference kernels run
every result (the tests check that).  `edit` functions change a rewritten model further (inputs quantized unlike
the output of a CONCATENATION, malformed variants).

Kinds:
  "int8"      full int8 conversion (rewritten to uint8 by the tests with to_uint8)
  "uint8_io"  the converter's own int8 model with inference_input_type / inference_output_type uint8: QUANTIZE
              uint8 -> int8 at each input and int8 -> uint8 at each output
  "tf1"       a genuine uint8 model from TF1's converter route (TF1_SPECS: fake-quant graphs, inference_type uint8)
TensorFlow is imported only to convert and to rewrite (its flatbuffer schema module).
"""
from __future__ import annotations

import os

import numpy as np

import tflite_models as M
from tflite_models import ModelSpec, _single

WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


# ----- the uint8 rewrite ------------------------------------------------------------------------------------------

def schema():
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as fb
    return flatbuffers, fb


def load(model_bytes: bytes):
    _, fb = schema()
    return fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(bytearray(model_bytes), 0))


def pack(model) -> bytes:
    flatbuffers, _ = schema()
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def op_name(model, op) -> str:
    _, fb = schema()
    code = model.operatorCodes[op.opcodeIndex]
    names = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
    return names[max(code.builtinCode, code.deprecatedBuiltinCode)]


def buffer_array(model, t, dtype) -> np.ndarray:
    return np.frombuffer(bytes(bytearray(model.buffers[t.buffer].data)), dtype).reshape(t.shape)


def set_buffer(model, t, array: np.ndarray):
    _, fb = schema()
    buf = fb.BufferT()
    buf.data = np.frombuffer(np.ascontiguousarray(array).tobytes(), np.uint8)
    model.buffers.append(buf)
    t.buffer = len(model.buffers) - 1


def set_quant(t, scales, zero_points, axis: int = 0):
    _, fb = schema()
    t.quantization = fb.QuantizationParametersT()
    t.quantization.scale = [float(s) for s in np.atleast_1d(scales)]
    t.quantization.zeroPoint = [int(z) for z in np.atleast_1d(zero_points)]
    t.quantization.quantizedDimension = axis


def asymmetric_uint8(w: np.ndarray, zero_point=None):
    """float weights -> (uint8, scale, zero point), one per tensor; a given zero point fixes where 0 sits."""
    lo, hi = min(float(w.min()), 0.0), max(float(w.max()), 0.0)
    if zero_point is None:
        scale = (hi - lo) / 255.0 or 1e-3
        zero_point = int(np.clip(np.round(-lo / scale), 0, 255))
    else:
        scale = max(hi / (255 - zero_point) if zero_point < 255 else 0.0,
                    -lo / zero_point if zero_point > 0 else 0.0) or 1e-3
    scale = np.float32(scale)
    q = np.clip(np.round(w / scale) + zero_point, 0, 255).astype(np.uint8)
    return q, scale, zero_point


def to_uint8(model_bytes: bytes, weight_zero_point=None, edit=None) -> bytes:
    """A full-int8 converter model rewritten as a TF1-style uint8 one (see the module docstring)."""
    _, fb = schema()
    model = load(model_bytes)
    sg = model.subgraphs[0]
    tensors = sg.tensors
    weights, biases = {}, {}
    for op in sg.operators:
        if op_name(model, op) in WEIGHTED_OPS:
            weights[op.inputs[1]] = op.inputs[0]
            if len(op.inputs) > 2 and op.inputs[2] >= 0:
                biases[op.inputs[2]] = (op.inputs[0], op.inputs[1])
    new_weight_scale = {}
    for i, t in enumerate(tensors):
        if t.type != fb.TensorType.INT8:
            continue
        q = t.quantization
        if i in weights:
            scales = np.array(q.scale, np.float32)
            shape = [1] * len(t.shape)
            shape[q.quantizedDimension] = -1
            w = buffer_array(model, t, np.int8).astype(np.float32) * (scales.reshape(shape) if scales.size > 1
                                                                       else scales[0])
            data, scale, zp = asymmetric_uint8(w, weight_zero_point)
            set_buffer(model, t, data)
            set_quant(t, scale, zp)
            new_weight_scale[i] = (scales, scale)
        else:
            if t.buffer and len(model.buffers[t.buffer].data if model.buffers[t.buffer].data is not None else []):
                set_buffer(model, t, (buffer_array(model, t, np.int8).astype(np.int16) + 128).astype(np.uint8))
            if q is not None and q.zeroPoint is not None and len(q.zeroPoint):
                set_quant(t, q.scale, np.array(q.zeroPoint) + 128, q.quantizedDimension)
        t.type = fb.TensorType.UINT8
    for i, (x, w) in biases.items():
        t = tensors[i]
        old_scales, scale = new_weight_scale[w]
        s_in = np.float32(tensors[x].quantization.scale[0])
        b = buffer_array(model, t, np.int32).astype(np.float64) * float(s_in) * old_scales.astype(np.float64)
        product = np.float32(s_in * scale)
        set_buffer(model, t, np.round(b / float(product)).astype(np.int32))
        set_quant(t, product, 0)
    if edit is not None:
        edit(model)
    return pack(model)


# ----- edits of rewritten models ----------------------------------------------------------------------------------

def find_ops(model, name: str) -> list:
    return [op for op in model.subgraphs[0].operators if op_name(model, op) == name]


def requantize_concat_inputs(model):
    """Every CONCATENATION input quantized unlike the output (scale x 1.37 / x 0.61, zero point moved), except the
    last, which keeps the output's (LiteRT copies that one): the inputs' producers write in the new quantization."""
    for op in find_ops(model, "CONCATENATION"):
        for k, i in enumerate(op.inputs[:-1]):
            t = model.subgraphs[0].tensors[i]
            q = t.quantization
            set_quant(t, np.float32(q.scale[0] * (1.37 if k % 2 == 0 else 0.61)),
                      int(np.clip(q.zeroPoint[0] + (9 if k % 2 == 0 else -23), 0, 255)))


# ----- the catalogue ------------------------------------------------------------------------------------------------

# converter-made models of tests/tflite_models.py rewritten to uint8, by what they exercise
REUSED = (
    "conv_3x2_stride2_same_relu", "conv_3x3_dilation2_valid_nobias", "conv_2x3_dilation2_same_relu6",
    "conv_3x3_stride2x1_valid_17ch", "conv_5x5_stride2_same_even", "conv_1x1_relu_n1_to_1",
    "conv_5x5_17ch_to_32_large_accumulators", "conv_1ch_input_7x7_stride3",
    "dwconv_3x3_m1_stride2_same_relu", "dwconv_3x2_m2_dilation2_valid_nobias", "dwconv_3x3_m2_stride2_valid_relu6",
    "dwconv_5x5_m1_dilation2_same", "dwconv_fc_relu_n1_to_1",
    "dense_2d_relu_then_linear", "dense_3d_input", "dense_3d_input_flattened_output", "dense_nobias_relu6",
    "avgpool_3x3_stride2_same", "avgpool_3x2_stride2x3_same", "avgpool_2x2_stride1_valid", "avgpool_whole_image",
    "maxpool_3x3_stride2_same", "maxpool_3x2_stride2x3_same", "maxpool_2x2_stride1_valid",
    "pools_with_fused_activations",
    "add_sub_mul_same_shape", "add_sub_mul_channel_broadcast", "add_sub_mul_row_broadcast", "add_mul_constant",
    "add_relu_fused", "add_mul_relu_n1_to_1", "add_inputs_of_very_different_scales",
    "concat_relu", "concat_channels_two_inputs", "concat_rows_three_inputs",
    "softmax_last_axis", "softmax_wide_range_long_axis", "softmax_narrow_range",
    "logistic", "logistic_narrow_range", "logistic_wide_range", "tanh", "tanh_narrow_range", "tanh_wide_range",
    "relu", "relu6", "relu_n1_to_1", "leaky_relu", "hard_swish",
    "reshape_flatten", "squeeze_axis2", "expand_dims_axis2", "transpose_hw", "transpose_3d",
    "strided_slice_step2_reverse", "strided_slice_shrink_axes",
    "zero_padding_2d", "tf_pad_all_axes", "tf_pad_constant_value",
    "global_average_pooling", "reduce_mean_hw_keepdims", "reduce_mean_channels_keepdims", "reduce_mean_axis1",
    "pack_axis1_three_inputs", "small_cnn",
)

SPECS: dict[str, ModelSpec] = {}


def _add(spec: ModelSpec):
    assert spec.name not in SPECS and spec.name not in M.SPECS
    SPECS[spec.name] = spec


_add(ModelSpec("u8_split_three", [(6, 5, 9)],
               _single(lambda k, tf, x: [t * 1.0 for t in tf.split(x, 3, axis=-1)]),
               int8_ops=frozenset({"SPLIT"}), kinds=("int8",)))
_add(ModelSpec("u8_split_v_uneven", [(6, 10)],
               _single(lambda k, tf, x: list(tf.split(x, [3, 2, 5], axis=-1))),
               int8_ops=frozenset({"SPLIT_V"}), kinds=("int8",)))
_add(ModelSpec("u8_unpack_axis1", [(4, 3, 5)],
               _single(lambda k, tf, x: list(tf.unstack(x, axis=1))),
               int8_ops=frozenset({"UNPACK"}), kinds=("int8",)))
_add(ModelSpec("u8_concat_four_inputs", [(5, 6, 3), (5, 6, 4), (5, 6, 1), (5, 6, 2)],
               lambda k, tf, xs: [k.layers.Concatenate(axis=-1)(xs)], int8_ops=frozenset({"CONCATENATION"}),
               kinds=("int8",)))
_add(ModelSpec("u8_io_cnn", [(11, 9, 3)],
               _single(lambda k, tf, x: k.layers.Softmax()(k.layers.Dense(6)(k.layers.Flatten()(
                   k.layers.Conv2D(5, 3, strides=2, activation="relu")(x))))),
               int8_ops=frozenset({"QUANTIZE", "CONV_2D", "FULLY_CONNECTED", "SOFTMAX"}), kinds=("uint8_io",)))
_add(ModelSpec("u8_io_two_inputs", [(7, 5), (7, 5)],
               lambda k, tf, xs: [k.layers.Add()(xs), k.layers.Multiply()(xs)],
               int8_ops=frozenset({"QUANTIZE", "ADD", "MUL"}), kinds=("uint8_io",)))


# ----- TF1's own uint8 route -----------------------------------------------------------------------------------
# tf.compat.v1.lite.TFLiteConverter on a graph with fake-quant nodes and inference_type=tf.uint8 still works in
# TF 2.21 and writes genuine uint8 models (uint8 weights with their own zero points, per-tensor ranges, CONCATENATION
# inputs quantized unlike its output).  Graph mode is process-wide, so these convert in a child process.

def _fq(tf, t, lo, hi):
    return tf.quantization.fake_quant_with_min_max_args(t, lo, hi)


def _tf1_conv(tf, xs, rng):
    w = _fq(tf, tf.constant(0.3 * rng.standard_normal((3, 3, 3, 5)).astype(np.float32)), -0.7, 0.9)
    y = tf.nn.bias_add(tf.nn.conv2d(xs[0], w, [1, 2, 2, 1], "SAME"), 0.1 * rng.standard_normal(5).astype(np.float32))
    w2 = _fq(tf, tf.constant(0.2 * rng.standard_normal((2, 3, 5, 7)).astype(np.float32)), -0.5, 0.3)
    z = tf.nn.conv2d(_fq(tf, tf.nn.relu6(y), 0.0, 6.0), w2, [1, 1, 1, 1], "VALID", dilations=[1, 2, 2, 1])
    return [_fq(tf, tf.nn.max_pool2d(_fq(tf, z, -4.0, 3.0), 2, 1, "SAME"), -4.0, 3.0)]


def _tf1_depthwise(tf, xs, rng):
    w = _fq(tf, tf.constant(0.3 * rng.standard_normal((3, 2, 3, 2)).astype(np.float32)), -0.4, 1.1)
    y = tf.nn.depthwise_conv2d(xs[0], w, [1, 2, 2, 1], "VALID")
    return [_fq(tf, tf.nn.relu(y), 0.0, 2.5)]


def _tf1_net(tf, xs, rng):
    a, b = xs
    w = _fq(tf, tf.constant(0.3 * rng.standard_normal((3, 3, 3, 1)).astype(np.float32)), -0.7, 0.9)
    d = _fq(tf, tf.nn.relu6(tf.nn.depthwise_conv2d(a, w, [1, 1, 1, 1], "SAME")), 0.0, 6.0)
    c = _fq(tf, tf.concat([d, _fq(tf, b * 2.0, -2.0, 2.0)], axis=3), -2.0, 6.0)
    p = _fq(tf, tf.nn.avg_pool2d(c, 3, 2, "SAME"), -2.0, 6.0)
    m = _fq(tf, tf.reduce_mean(p, [1, 2]), -1.0, 3.0)
    wf = _fq(tf, tf.constant(rng.standard_normal((6, 4)).astype(np.float32)), -2.0, 1.5)
    f = _fq(tf, tf.matmul(m, wf) + 0.1, -5.0, 5.0)
    return [_fq(tf, tf.nn.softmax(f), 0.0, 255.0 / 256), _fq(tf, tf.sigmoid(f), 0.0, 255.0 / 256),
            _fq(tf, tf.tanh(f), -1.0, 127.0 / 128), _fq(tf, tf.add(p, _fq(tf, tf.nn.relu(c[:, ::2, ::2, :]),
                                                                          0.0, 4.0)), -3.0, 9.0)]


TF1_SPECS = {   # name: (input shapes, build(tf, fake-quantized inputs, rng) -> outputs, uint8 ops it must hold)
    "tf1_conv_dilated_maxpool": ([(1, 13, 11, 3)], _tf1_conv, {"CONV_2D", "MAX_POOL_2D"}),
    "tf1_depthwise_m2_valid": ([(1, 10, 7, 3)], _tf1_depthwise, {"DEPTHWISE_CONV_2D"}),
    "tf1_net": ([(1, 9, 7, 3), (1, 9, 7, 3)], _tf1_net,
                {"DEPTHWISE_CONV_2D", "CONCATENATION", "AVERAGE_POOL_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX",
                 "LOGISTIC", "TANH", "ADD"}),
}


for _name, (_shapes, _, _ops) in TF1_SPECS.items():
    _add(ModelSpec(_name, [s[1:] for s in _shapes], None, int8_ops=frozenset(_ops), kinds=("tf1",)))


def convert_tf1_here(name: str) -> bytes:
    """TF1_SPECS[name] through TFLiteConverter.from_session with inference_type uint8 (switches this process to
    graph mode: call it in a child, see convert)."""
    import tensorflow as tf
    tf.compat.v1.disable_eager_execution()
    shapes, build, _ = TF1_SPECS[name]
    graph = tf.Graph()
    with graph.as_default():
        xs = [tf.compat.v1.placeholder(tf.float32, s, name=f"x{i}") for i, s in enumerate(shapes)]
        outs = build(tf, [_fq(tf, x, -1.0, 1.0) for x in xs], np.random.default_rng(len(name)))
        with tf.compat.v1.Session(graph=graph) as sess:
            converter = tf.compat.v1.lite.TFLiteConverter.from_session(sess, xs, outs)
            converter.inference_type = tf.uint8
            converter.quantized_input_stats = {f"x{i}": (127.5, 127.5) for i in range(len(xs))}
            return converter.convert()


def catalogue_spec(name: str) -> ModelSpec:
    return SPECS[name] if name in SPECS else M.SPECS[name]


def convert(spec: ModelSpec, kind: str) -> bytes:
    """The spec's model: "int8" (tests/tflite_models.convert), "uint8_io" (uint8 graph inputs and outputs) or
    "tf1" (TF1_SPECS, converted in a child process)."""
    if kind == "int8":
        return M.convert(spec, "int8")
    if kind == "tf1":
        import subprocess
        import sys
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.tflite")
            code = ("import sys, pathlib, uint8_models as U; "
                    "pathlib.Path(sys.argv[2]).write_bytes(U.convert_tf1_here(sys.argv[1]))")
            done = subprocess.run([sys.executable, "-c", code, spec.name, path], capture_output=True,
                                  cwd=os.path.dirname(os.path.abspath(__file__)))
            if done.returncode != 0 or not os.path.exists(path):
                raise RuntimeError(f"TF1 conversion of {spec.name} failed:\n{done.stderr.decode()[-2000:]}")
            with open(path, "rb") as f:
                return f.read()
    assert kind == "uint8_io", kind
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    import tf_keras as keras

    model = M.build_keras(spec, keras, tf)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    samples = M.representative_inputs(spec, M.REPRESENTATIVE_SAMPLES)

    def representative_dataset():
        yield from samples

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.uint8
    return converter.convert()


def weighted_op(model, name: str = "CONV_2D"):
    (op,) = find_ops(model, name)[:1]
    return op, model.subgraphs[0].tensors


def weights_per_channel(model):
    """The CONV_2D weights with one scale per output channel (as int8 models have): LiteRT's uint8 kernels refuse."""
    op, tensors = weighted_op(model)
    w = tensors[op.inputs[1]]
    n = w.shape[0]
    set_quant(w, np.full(n, w.quantization.scale[0], np.float32) * np.linspace(1.0, 1.5, n, dtype=np.float32),
              [w.quantization.zeroPoint[0]] * n, 0)


def bias_scale_off(model):
    """The CONV_2D bias scale 1% away from input_scale * weight_scale."""
    op, tensors = weighted_op(model)
    b = tensors[op.inputs[2]]
    set_quant(b, np.float32(b.quantization.scale[0] * 1.01), 0)


def bias_zero_point(model):
    op, tensors = weighted_op(model)
    b = tensors[op.inputs[2]]
    set_quant(b, b.quantization.scale[0], 3)


def weight_scale_zero(model):
    op, tensors = weighted_op(model)
    w = tensors[op.inputs[1]]
    set_quant(w, 0.0, w.quantization.zeroPoint[0])


def logistic_output_zero_point(model):
    (op,) = find_ops(model, "LOGISTIC")
    y = model.subgraphs[0].tensors[op.outputs[0]]
    set_quant(y, y.quantization.scale[0], 3)


def softmax_output_scale(model):
    (op,) = find_ops(model, "SOFTMAX")
    y = model.subgraphs[0].tensors[op.outputs[0]]
    set_quant(y, 1.0 / 128, 0)


def pool_output_requantized(model):
    (op,) = find_ops(model, "AVERAGE_POOL_2D")[:1]
    y = model.subgraphs[0].tensors[op.outputs[0]]
    set_quant(y, y.quantization.scale[0] * 2, y.quantization.zeroPoint[0])


def add_operator(model, name: str, inputs: list, outputs: list, version: int = 1):
    _, fb = schema()
    code = getattr(fb.BuiltinOperator, name)
    for k, c in enumerate(model.operatorCodes):
        if max(c.builtinCode, c.deprecatedBuiltinCode) == code:
            index = k
            break
    else:
        c = fb.OperatorCodeT()
        c.builtinCode = code
        c.deprecatedBuiltinCode = min(code, 127)
        c.version = version
        model.operatorCodes.append(c)
        index = len(model.operatorCodes) - 1
    op = fb.OperatorT()
    op.opcodeIndex = index
    op.inputs, op.outputs = list(inputs), list(outputs)
    model.subgraphs[0].operators.append(op)
    return op


def requantize_first_output(model):
    """A QUANTIZE uint8 -> uint8 appended to the first graph output (scale x 1.7, zero point + 11): the new output."""
    import copy
    sg = model.subgraphs[0]
    old = sg.tensors[sg.outputs[0]]
    new = copy.deepcopy(old)
    new.name = old.name + b"/requantized" if isinstance(old.name, bytes) else old.name + "/requantized"
    new.buffer = 0
    set_quant(new, np.float32(old.quantization.scale[0] * 1.7), min(old.quantization.zeroPoint[0] + 11, 255))
    sg.tensors.append(new)
    add_operator(model, "QUANTIZE", [sg.outputs[0]], [len(sg.tensors) - 1])
    sg.outputs[0] = len(sg.tensors) - 1


def reshape_output_zero_point(model):
    """A RESHAPE whose uint8 output's zero point differs from its input's (a byte move cannot requantize)."""
    (op,) = find_ops(model, "RESHAPE")[:1]
    y = model.subgraphs[0].tensors[op.outputs[0]]
    set_quant(y, y.quantization.scale[0], y.quantization.zeroPoint[0] + 5)


def relu_to_elu(model):
    """The RELU turned into ELU, an op with no uint8 form in edgeml."""
    _, fb = schema()
    (op,) = find_ops(model, "RELU")
    c = fb.OperatorCodeT()
    c.builtinCode = c.deprecatedBuiltinCode = fb.BuiltinOperator.ELU
    c.version = 1
    model.operatorCodes.append(c)
    op.opcodeIndex = len(model.operatorCodes) - 1


def float_conv_with_uint8_weights(float_model_bytes: bytes) -> bytes:
    """TF1's hybrid form: a float CONV_2D whose weights are uint8 with a zero point."""
    _, fb = schema()
    model = load(float_model_bytes)
    (op,) = find_ops(model, "CONV_2D")
    w = model.subgraphs[0].tensors[op.inputs[1]]
    q, scale, zp = asymmetric_uint8(buffer_array(model, w, np.float32))
    set_buffer(model, w, q)
    set_quant(w, scale, zp)
    w.type = fb.TensorType.UINT8
    return pack(model)
