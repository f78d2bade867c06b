"""ONNX tensor decoding for the reader: element types, and `initializer_array` (a TensorProto as a numpy array,
its stored size checked against its shape and type first)."""
from __future__ import annotations

import sys

import numpy as np

from converters.onnx.proto import AttributeProto as _AP
from converters.onnx.proto import TensorProto
from edgeml.errors import ModelFormatError, UnsupportedOpError

ONNX_DTYPES = {
    1: np.dtype(np.float32), 2: np.dtype(np.uint8), 3: np.dtype(np.int8), 4: np.dtype(np.uint16),
    5: np.dtype(np.int16), 6: np.dtype(np.int32), 7: np.dtype(np.int64), 9: np.dtype(np.bool_),
    10: np.dtype(np.float16), 11: np.dtype(np.float64), 12: np.dtype(np.uint32), 13: np.dtype(np.uint64),
}
TYPED_FIELD = {1: "float_data", 2: "int32_data", 3: "int32_data", 4: "int32_data", 5: "int32_data",
               6: "int32_data", 7: "int64_data", 9: "int32_data", 10: "int32_data", 11: "double_data",
               12: "uint64_data", 13: "uint64_data"}
LITTLE_ENDIAN = {d: d.newbyteorder("<") for d in ONNX_DTYPES.values()}     # raw_data's byte order
NATIVE_LITTLE = sys.byteorder == "little"
EXTERNAL = TensorProto.EXTERNAL
MAX_TENSOR_BYTES = 1 << 31
# attribute type -> (field, whether a repeated field), as onnx.helper.get_attribute_value reads them
ATTR_FIELDS = {_AP.FLOAT: ("f", False), _AP.INT: ("i", False), _AP.STRING: ("s", False), _AP.TENSOR: ("t", False),
               _AP.SPARSE_TENSOR: ("sparse_tensor", False), _AP.GRAPH: ("g", False), _AP.TYPE_PROTO: ("tp", False),
               _AP.FLOATS: ("floats", True), _AP.INTS: ("ints", True), _AP.STRINGS: ("strings", True),
               _AP.TENSORS: ("tensors", True), _AP.SPARSE_TENSORS: ("sparse_tensors", True),
               _AP.GRAPHS: ("graphs", True), _AP.TYPE_PROTOS: ("type_protos", True)}


def onnx_package(what: str):
    """The `onnx` package, for the few reads that use its code (`what` needs it); an UnsupportedOpError naming the
    extra to install when it is missing (the reader itself needs only the protobuf runtime)."""
    try:
        import onnx
    except ImportError:
        raise UnsupportedOpError(f"{what} needs the 'onnx' package, which is not installed "
                                 "(pip install edgeml[onnx])") from None
    return onnx


def type_name(code: int):
    """An element type code's name in the schema (TensorProto.DataType), or the code itself when it names none."""
    return TensorProto.DataType.Name(code) if code in TensorProto.DataType.values() else code


def attribute_value(a):
    """One attribute's value as onnx.helper.get_attribute_value gives it (bytes for strings, lists for repeated
    fields, None for an undefined type), with its errors: a reference attribute or an unknown type is a
    ValueError."""
    if a.ref_attr_name:
        raise ValueError(f"Cannot get value of reference attribute: {a}")
    spec = ATTR_FIELDS.get(a.type)
    if spec is not None:
        return list(getattr(a, spec[0])) if spec[1] else getattr(a, spec[0])
    if a.type == _AP.UNDEFINED:
        return None
    raise ValueError(f"Unsupported ONNX attribute: {a}")


def attribute_values(node) -> dict:
    """{name: value} of a node's attributes, the values onnx.helper.get_attribute_value gives (which raises
    ValueError on what this table does not cover) without its per-attribute chain of type tests; strings decoded
    (UTF-8, undecodable bytes replaced)."""
    out = {}
    for a in node.attribute:
        spec = ATTR_FIELDS.get(a.type)
        if spec is None or a.ref_attr_name:
            val = attribute_value(a)
            out[a.name] = val.decode("utf-8", "replace") if isinstance(val, bytes) else val
        elif spec[1]:
            out[a.name] = getattr(a, spec[0])[:]
        elif spec[0] == "s":
            out[a.name] = a.s.decode("utf-8", "replace")
        else:
            out[a.name] = getattr(a, spec[0])
    return out


def initializer_array(tp, what: str) -> np.ndarray:
    """A TensorProto as a numpy array, after checking its stored size against its shape and type; raw data of the
    machine's byte order is a read-only view of the field's bytes (as .tflite constants are views of the file)."""
    if tp.data_location == EXTERNAL or len(tp.external_data):
        raise ModelFormatError(f"{what} keeps its data in an external file; save the model with "
                               "all tensors inside it (onnx.save_model(..., save_as_external_data=False))")
    if tp.HasField("segment"):
        raise ModelFormatError(f"{what}: segmented tensors are not supported")
    dtype = ONNX_DTYPES.get(tp.data_type)
    if dtype is None:
        raise UnsupportedOpError(f"{what}: tensor type "
                                 f"{type_name(tp.data_type)} "
                                 "is not supported")
    dims = tp.dims[:]
    count = 1
    for d in dims:
        if d < 0:
            raise ModelFormatError(f"{what}: negative dimension in shape {dims}")
        count *= d
    if count * dtype.itemsize > MAX_TENSOR_BYTES:
        raise ModelFormatError(f"{what}: shape {dims} is larger than {MAX_TENSOR_BYTES} bytes")
    raw = tp.raw_data          # (each read of the field copies its bytes: read it once)
    if raw:
        if len(raw) != count * dtype.itemsize:
            raise ModelFormatError(f"{what}: holds {len(raw)} bytes of raw data, shape {dims} of "
                                   f"{dtype} needs {count * dtype.itemsize}")
        if NATIVE_LITTLE:
            return np.ndarray(dims, dtype, raw)        # (read only: a view of the immutable bytes)
        return np.frombuffer(raw, dtype=LITTLE_ENDIAN[dtype]).astype(dtype).reshape(dims)
    field_name = TYPED_FIELD[tp.data_type]
    n = len(getattr(tp, field_name))
    if n != count:
        raise ModelFormatError(f"{what}: holds {n} values in {field_name}, shape {dims} needs {count}")
    # typed fields (not raw bytes): onnx's own decoding, its package imported here (most models hold raw data)
    numpy_helper = onnx_package(f"{what} (values in {field_name}, not raw data)").numpy_helper
    try:
        return np.asarray(numpy_helper.to_array(tp)).astype(dtype).reshape(dims)
    except Exception as exc:
        raise ModelFormatError(f"{what}: cannot decode tensor data ({type(exc).__name__}: {exc})") from exc
