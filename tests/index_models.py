"""Models of the resize, reduction, index / shape, cast, select and comparison ops, converted with TensorFlow's
converter from `tf.function`s: float, full int8, full int16 (16x8 mode) and uint8 (the int8 model with every int8
tensor turned into uint8 with its zero point moved by 128, which LiteRT runs on its uint8 kernels).

Each `IndexSpec` names the ops each kind of model must contain, so a converter change cannot make a test check
something else.  TensorFlow is imported only inside `convert`.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

REPRESENTATIVE_SAMPLES = 32


@dataclass
class IndexSpec:
    name: str
    inputs: list                     # (shape, dtype name) per input; a None batch makes the batch dynamic
    build: Callable                  # build(tf, *inputs) -> list of outputs
    ops: dict                        # kind -> op types the converted model must contain
    spread: float = 1.0              # standard deviation of float inputs (representative and test data)
    index_range: tuple = (0, 2)      # integer inputs draw from [low, high)
    rewrite: Callable = None         # rewrite(model bytes) -> bytes, applied to every kind
    micro_reference: tuple = ()      # kinds compared with TFLite Micro, where LiteRT's reference is wrong (reduce_sum)
    kinds: tuple = field(default=())

    def __post_init__(self):
        self.kinds = tuple(self.ops)


def _seed(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


SPECS: dict[str, IndexSpec] = {}


def _add(name, inputs, build, ops, **kwargs):
    assert name not in SPECS
    SPECS[name] = IndexSpec(name, inputs, build, {k: frozenset(v) for k, v in ops.items()}, **kwargs)


def _image(shape=(2, 5, 7, 3)):
    return [(shape, "float32")]


def _kinds(ops, kinds=("float", "int8", "uint8", "int16")):
    return {k: ops for k in kinds}


# ----- RESIZE_BILINEAR / RESIZE_NEAREST_NEIGHBOR: half-pixel centres, align_corners, legacy; up and down -------
def _resize(method):
    def build(tf, x):
        if method == "bilinear":
            v1 = tf.compat.v1.image.resize_bilinear
        else:
            v1 = tf.compat.v1.image.resize_nearest_neighbor
        v2 = "bilinear" if method == "bilinear" else "nearest"
        return [tf.image.resize(x, (9, 13), method=v2), tf.image.resize(x, (3, 4), method=v2),
                v1(x, (11, 6), align_corners=True), v1(x, (1, 5), align_corners=True),
                v1(x, (3, 4)), v1(x, (8, 15))]
    return build


_add("resize_bilinear_modes", _image(), _resize("bilinear"), _kinds({"RESIZE_BILINEAR"}), spread=2.0)
_add("resize_nearest_modes", _image(), _resize("nearest"), _kinds({"RESIZE_NEAREST_NEIGHBOR"}), spread=2.0)
_add("resize_bilinear_single_row_and_column", _image((2, 1, 1, 4)),
     lambda tf, x: [tf.image.resize(x, (3, 5)), tf.compat.v1.image.resize_bilinear(x, (4, 2), align_corners=True)],
     _kinds({"RESIZE_BILINEAR"}))

# ----- reductions --------------------------------------------------------------------------------------------
_add("reduce_max_min", _image((2, 5, 4, 3)),
     lambda tf, x: [tf.reduce_max(x, axis=[1, -1]), tf.reduce_min(x, axis=2, keepdims=True),
                    tf.reduce_max(x, axis=[0, 1, 2, 3]), tf.reduce_min(x, axis=-3)],
     _kinds({"REDUCE_MAX", "REDUCE_MIN"}))
# LiteRT's reference SUM runs its uint8 kernel on int8 and int16 tensors (it reads their bytes as uint8 values and,
# for int16, writes one byte per output element): edgeml sums them as TFLite Micro does, and is compared with it
_add("reduce_sum", _image((2, 5, 4, 3)),
     lambda tf, x: [tf.reduce_sum(x, axis=[1, 3]), tf.reduce_sum(x, axis=-1, keepdims=True),
                    tf.reduce_sum(x, axis=[0, 1, 2, 3])],
     _kinds({"SUM"}), micro_reference=("int8", "int16"))
_add("reduce_prod", _image((2, 5, 4, 3)),
     lambda tf, x: [tf.reduce_prod(x, axis=-1), tf.reduce_prod(x, axis=[1, 2], keepdims=True)],
     _kinds({"REDUCE_PROD"}, ("float", "int8", "int16")), spread=0.8)
_add("arg_max_min", _image((2, 5, 4, 3)),
     lambda tf, x: [tf.argmax(x, axis=-1), tf.argmin(x, axis=1, output_type=tf.int32), tf.argmax(x, axis=-3),
                    tf.argmin(x, axis=0)],
     _kinds({"ARG_MAX", "ARG_MIN"}, ("float", "int8", "uint8")))
_add("reduce_int32_values", [((2, 5, 4), "int32")],
     lambda tf, x: [tf.reduce_sum(x, axis=1), tf.reduce_max(x, axis=[0, 2]), tf.reduce_min(x, axis=-1, keepdims=True),
                    tf.reduce_prod(x, axis=2), tf.argmax(x, axis=-1)],
     {"float": {"SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD", "ARG_MAX"}}, index_range=(-40, 40))

# ----- GATHER / GATHER_ND: constant and run-time indices, negative axis, batch_dims ----------------------------
_add("gather_constant_indices", _image((2, 5, 4, 3)),
     lambda tf, x: [tf.gather(x, [2, 0, 2, 1], axis=-1), tf.gather(x, [[1, 0], [3, 3], [4, 2]], axis=1),
                    tf.gather(x, [1], axis=0)],
     _kinds({"GATHER"}))
_add("gather_runtime_indices", [((2, 5, 4), "float32"), ((2, 3), "int32")],
     lambda tf, x, i: [tf.gather(x, i, axis=1, batch_dims=1), tf.gather(x, i[0], axis=-2),
                       tf.gather(x, i, axis=-1, batch_dims=-1)],
     _kinds({"GATHER"}), index_range=(0, 4))
_add("gather_nd_runtime_indices", [((2, 5, 4), "float32"), ((3, 2), "int64"), ((2, 4, 3), "int32")],
     lambda tf, x, i, j: [tf.gather_nd(x, i), tf.gather_nd(x, j), tf.gather_nd(x, j[:, :, :1])],
     _kinds({"GATHER_ND"}, ("float", "int8", "uint8")), index_range=(0, 2))

# ----- SLICE, TILE, BROADCAST_TO, FILL -------------------------------------------------------------------------
_add("slice_tile_broadcast", _image((2, 4, 5, 3)),
     lambda tf, x: [tf.slice(x, [0, 1, 0, 1], [-1, 3, -1, 2]), tf.slice(x, [1, 0, 2, 0], [1, -1, 2, 3]),
                    tf.tile(x, [1, 2, 1, 3]), tf.tile(x[:, :, :1], [2, 1, 3, 1]),
                    tf.broadcast_to(x[:, :1, :, :1], [2, 4, 5, 3])],
     _kinds({"SLICE", "TILE", "BROADCAST_TO"}))
_add("fill_runtime_value", [((2, 5), "float32")],
     lambda tf, x: [tf.fill([3, 4], x[0, 0]), tf.fill([2, 1, 3], x[1, 2])],
     _kinds({"FILL"}, ("float", "int8", "int16")))

# ----- SHAPE and the converter's dynamic-batch graphs -------------------------------------------------------
_add("dynamic_batch_reshape_tile", [((None, 4, 3), "float32")],
     lambda tf, x: [tf.reshape(x, [-1, 12]), tf.tile(x[:, :1], [tf.shape(x)[0], 2, 1])],
     _kinds({"SHAPE", "STRIDED_SLICE", "PACK", "RESHAPE", "TILE"}, ("float", "int8")))
_add("shape_outputs", [((None, 3), "float32")],
     lambda tf, x: [tf.shape(x), tf.shape(x, out_type=tf.int64), 2.0 * x],
     _kinds({"SHAPE"}, ("float", "int8")))

# ----- CAST --------------------------------------------------------------------------------------------------
_add("cast_between_types", [((2, 5), "float32"), ((2, 5), "int32")],
     lambda tf, x, i: [tf.cast(x, tf.int32), tf.cast(x, tf.uint8), tf.cast(x, tf.int8), tf.cast(x, tf.bool),
                       tf.cast(x, tf.int64), tf.cast(i, tf.float32), tf.cast(i, tf.int64), tf.cast(i, tf.bool),
                       tf.cast(i, tf.int16), tf.cast(tf.cast(i, tf.int8), tf.float32)],
     {"float": {"CAST"}}, spread=200.0, index_range=(-300, 300))

# ----- comparisons, SELECT / SELECT_V2, MAXIMUM / MINIMUM ---------------------------------------------------------
def _flip_comparisons(model_bytes: bytes) -> bytes:
    """EQUAL -> NOT_EQUAL and GREATER -> GREATER_EQUAL: TF 2.21's quantizer leaves those two in float, so their
    int8 forms are the converter's int8 EQUAL / GREATER with the operator code changed."""
    return edit_model(model_bytes, lambda fb, model, sg: _recode(fb, model, {"EQUAL": "NOT_EQUAL",
                                                                             "GREATER": "GREATER_EQUAL"}))


def _compare(tf, x, y):
    return [tf.greater(x, y[:, :1]), tf.less(x[:, :1], y), tf.equal(x[:, :2], y[:, 1:3]),
            tf.less_equal(x[:, 1:], y[:, :4])]


_CMP = [((2, 5, 4), "float32"), ((2, 5, 4), "float32")]
_add("comparisons", _CMP, _compare, _kinds({"GREATER", "LESS", "EQUAL", "LESS_EQUAL"}, ("float", "int8", "uint8")),
     spread=0.7)
_add("comparisons_not_equal_greater_equal", _CMP, _compare, _kinds({"NOT_EQUAL", "GREATER_EQUAL"},
                                                                   ("float", "int8", "uint8")),
     spread=0.7, rewrite=_flip_comparisons)
_add("comparisons_int32_and_bool", [((2, 5), "int32"), ((5,), "int32"), ((2, 5), "bool")],
     lambda tf, i, j, b: [i > j, i <= 1, tf.equal(i, j), tf.not_equal(b, i > 0), tf.equal(b, tf.less(i, j))],
     {"float": {"GREATER", "LESS_EQUAL", "EQUAL", "NOT_EQUAL", "LESS"}}, index_range=(-3, 3))
_add("select_and_select_v2", _CMP,
     lambda tf, x, y: [tf.where(x > y, x, y), tf.where(x[:, :1] > y[:1, :, :1], x, y[:1]),
                       tf.compat.v1.where(x > 0.2, x, y)],
     _kinds({"SELECT", "SELECT_V2", "GREATER"}, ("float", "int8")))
_add("maximum_minimum", _CMP,
     lambda tf, x, y: [tf.maximum(x, y[:, :1]), tf.minimum(x, y), tf.maximum(x[:1], 0.3), tf.minimum(y, x[:, :, 1:2])],
     _kinds({"MAXIMUM", "MINIMUM"}, ("float", "int8")))


# ----- conversion ----------------------------------------------------------------------------------------------

def edit_model(model_bytes: bytes, change) -> bytes:
    """The model after change(fb, model, subgraph) on TensorFlow's flatbuffer object API."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as fb
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(bytearray(model_bytes), 0))
    change(fb, model, model.subgraphs[0])
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _recode(fb, model, renames: dict):
    for code in model.operatorCodes:
        for old, new in renames.items():
            if max(code.builtinCode, code.deprecatedBuiltinCode) == getattr(fb.BuiltinOperator, old):
                code.builtinCode = code.deprecatedBuiltinCode = getattr(fb.BuiltinOperator, new)


def int8_to_uint8(model_bytes: bytes) -> bytes:
    """Every quantized int8 tensor becomes uint8 with zero point + 128 (constants shifted alike): the same real
    values, run on LiteRT's uint8 kernels."""
    def change(fb, model, sg):
        for t in sg.tensors:
            if t.type != fb.TensorType.INT8 or t.quantization is None or t.quantization.zeroPoint is None:
                continue
            t.type = fb.TensorType.UINT8
            t.quantization.zeroPoint = [int(z) + 128 for z in t.quantization.zeroPoint]
            buf = model.buffers[t.buffer]
            if buf.data is not None and len(buf.data):
                buf.data = list((np.asarray(buf.data, np.uint8).view(np.int8).astype(np.int16) + 128)
                                .astype(np.uint8))
    return edit_model(model_bytes, change)


def sample(spec: IndexSpec, rng, shapes=None) -> list:
    """One input set in float (for float inputs) with the spec's ranges; `shapes` overrides the batch."""
    out = []
    for k, (shape, dtype) in enumerate(spec.inputs):
        shape = tuple(shapes[k]) if shapes is not None else tuple(2 if d is None else d for d in shape)
        if dtype == "float32":
            out.append((spec.spread * rng.standard_normal(shape)).astype(np.float32))
        elif dtype == "bool":
            out.append(rng.integers(0, 2, shape).astype(bool))
        else:
            out.append(rng.integers(*spec.index_range, size=shape).astype(dtype))
    return out


def convert(spec: IndexSpec, kind: str) -> bytes:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    signature = [tf.TensorSpec(shape, getattr(tf, dtype), name=f"in{k}") for k, (shape, dtype) in
                 enumerate(spec.inputs)]

    def fn(*xs):
        return spec.build(tf, *xs)
    concrete = tf.function(fn).get_concrete_function(*signature)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], fn)
    if kind != "float":
        rng = np.random.default_rng(_seed(spec.name))
        samples = [sample(spec, rng) for _ in range(REPRESENTATIVE_SAMPLES)]
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: iter(samples)
        if kind == "int16":
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
            converter.inference_input_type = converter.inference_output_type = tf.int16
        else:
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = converter.inference_output_type = tf.int8
    model = converter.convert()
    if spec.rewrite is not None:
        model = spec.rewrite(model)
    return int8_to_uint8(model) if kind == "uint8" else model
