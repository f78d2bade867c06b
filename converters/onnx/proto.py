"""The ONNX protobuf messages the reader parses, made here from the field numbers and types of the ONNX schema
(onnx/onnx-ml.proto, proto2) in a descriptor pool of this module's own, so that reading a model does not import
the `onnx` package: that import costs far more than a model's load (about 1 s on the development machine, 0.9 s of
it ml_dtypes, which `onnx` imports), and a program's first .onnx load paid it.  Only the protobuf runtime is
needed.  The classes parse the same bytes into the same fields as `onnx`'s own: fields this table leaves out
(device configurations, sharding) stay unknown fields, kept and ignored (tests/test_onnx_proto.py compares every
field here with the installed `onnx` package's and the parse of every reference model with its).  A ModelProto of
the `onnx` package handed to the reader is read as it is: both kinds have the same field names and numbers."""
from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
PACKAGE = "edgeml_onnx"

# scalar field types by name; any other type name is a message (or "enum:Name", an enum) of this file
_SCALARS = {"float": _F.TYPE_FLOAT, "double": _F.TYPE_DOUBLE, "int32": _F.TYPE_INT32, "int64": _F.TYPE_INT64,
            "uint64": _F.TYPE_UINT64, "string": _F.TYPE_STRING, "bytes": _F.TYPE_BYTES}

# message -> fields (name, number, type, repeated); nested messages and enums in NESTED / ENUMS, oneofs in ONEOFS
MESSAGES = {
    "AttributeProto": [
        ("name", 1, "string", 0), ("ref_attr_name", 21, "string", 0), ("doc_string", 13, "string", 0),
        ("type", 20, "enum:AttributeProto.AttributeType", 0), ("f", 2, "float", 0), ("i", 3, "int64", 0),
        ("s", 4, "bytes", 0), ("t", 5, "TensorProto", 0), ("g", 6, "GraphProto", 0),
        ("sparse_tensor", 22, "SparseTensorProto", 0), ("tp", 14, "TypeProto", 0), ("floats", 7, "float", 1),
        ("ints", 8, "int64", 1), ("strings", 9, "bytes", 1), ("tensors", 10, "TensorProto", 1),
        ("graphs", 11, "GraphProto", 1), ("sparse_tensors", 23, "SparseTensorProto", 1),
        ("type_protos", 15, "TypeProto", 1)],
    "ValueInfoProto": [
        ("name", 1, "string", 0), ("type", 2, "TypeProto", 0), ("doc_string", 3, "string", 0),
        ("metadata_props", 4, "StringStringEntryProto", 1)],
    "NodeProto": [
        ("input", 1, "string", 1), ("output", 2, "string", 1), ("name", 3, "string", 0), ("op_type", 4, "string", 0),
        ("domain", 7, "string", 0), ("overload", 8, "string", 0), ("attribute", 5, "AttributeProto", 1),
        ("doc_string", 6, "string", 0), ("metadata_props", 9, "StringStringEntryProto", 1)],
    "TrainingInfoProto": [
        ("initialization", 1, "GraphProto", 0), ("algorithm", 2, "GraphProto", 0),
        ("initialization_binding", 3, "StringStringEntryProto", 1), ("update_binding", 4, "StringStringEntryProto", 1)],
    "ModelProto": [
        ("ir_version", 1, "int64", 0), ("opset_import", 8, "OperatorSetIdProto", 1), ("producer_name", 2, "string", 0),
        ("producer_version", 3, "string", 0), ("domain", 4, "string", 0), ("model_version", 5, "int64", 0),
        ("doc_string", 6, "string", 0), ("graph", 7, "GraphProto", 0),
        ("metadata_props", 14, "StringStringEntryProto", 1), ("training_info", 20, "TrainingInfoProto", 1),
        ("functions", 25, "FunctionProto", 1)],
    "StringStringEntryProto": [("key", 1, "string", 0), ("value", 2, "string", 0)],
    "TensorAnnotation": [
        ("tensor_name", 1, "string", 0), ("quant_parameter_tensor_names", 2, "StringStringEntryProto", 1)],
    "GraphProto": [
        ("node", 1, "NodeProto", 1), ("name", 2, "string", 0), ("initializer", 5, "TensorProto", 1),
        ("sparse_initializer", 15, "SparseTensorProto", 1), ("doc_string", 10, "string", 0),
        ("input", 11, "ValueInfoProto", 1), ("output", 12, "ValueInfoProto", 1), ("value_info", 13, "ValueInfoProto", 1),
        ("quantization_annotation", 14, "TensorAnnotation", 1), ("metadata_props", 16, "StringStringEntryProto", 1)],
    "TensorProto": [
        ("dims", 1, "int64", 1), ("data_type", 2, "int32", 0), ("segment", 3, "TensorProto.Segment", 0),
        ("float_data", 4, "float", 1), ("int32_data", 5, "int32", 1), ("string_data", 6, "bytes", 1),
        ("int64_data", 7, "int64", 1), ("name", 8, "string", 0), ("doc_string", 12, "string", 0),
        ("raw_data", 9, "bytes", 0), ("external_data", 13, "StringStringEntryProto", 1),
        ("data_location", 14, "enum:TensorProto.DataLocation", 0), ("double_data", 10, "double", 1),
        ("uint64_data", 11, "uint64", 1), ("metadata_props", 16, "StringStringEntryProto", 1)],
    "SparseTensorProto": [("values", 1, "TensorProto", 0), ("indices", 2, "TensorProto", 0), ("dims", 3, "int64", 1)],
    "TensorShapeProto": [("dim", 1, "TensorShapeProto.Dimension", 1)],
    "TypeProto": [
        ("tensor_type", 1, "TypeProto.Tensor", 0), ("sequence_type", 4, "TypeProto.Sequence", 0),
        ("map_type", 5, "TypeProto.Map", 0), ("optional_type", 9, "TypeProto.Optional", 0),
        ("sparse_tensor_type", 8, "TypeProto.SparseTensor", 0), ("opaque_type", 7, "TypeProto.Opaque", 0),
        ("denotation", 6, "string", 0)],
    "OperatorSetIdProto": [("domain", 1, "string", 0), ("version", 2, "int64", 0)],
    "FunctionProto": [
        ("name", 1, "string", 0), ("input", 4, "string", 1), ("output", 5, "string", 1), ("attribute", 6, "string", 1),
        ("attribute_proto", 11, "AttributeProto", 1), ("node", 7, "NodeProto", 1), ("doc_string", 8, "string", 0),
        ("opset_import", 9, "OperatorSetIdProto", 1), ("domain", 10, "string", 0), ("overload", 13, "string", 0),
        ("value_info", 12, "ValueInfoProto", 1), ("metadata_props", 14, "StringStringEntryProto", 1)],
}
NESTED = {
    "TensorProto": {"Segment": [("begin", 1, "int64", 0), ("end", 2, "int64", 0)]},
    "TensorShapeProto": {"Dimension": [("dim_value", 1, "int64", 0), ("dim_param", 2, "string", 0),
                                       ("denotation", 3, "string", 0)]},
    "TypeProto": {
        "Tensor": [("elem_type", 1, "int32", 0), ("shape", 2, "TensorShapeProto", 0)],
        "Sequence": [("elem_type", 1, "TypeProto", 0)],
        "Map": [("key_type", 1, "int32", 0), ("value_type", 2, "TypeProto", 0)],
        "Optional": [("elem_type", 1, "TypeProto", 0)],
        "SparseTensor": [("elem_type", 1, "int32", 0), ("shape", 2, "TensorShapeProto", 0)],
        "Opaque": [("domain", 1, "string", 0), ("name", 2, "string", 0)]},
}
ENUMS = {
    "AttributeProto": {"AttributeType": [
        ("UNDEFINED", 0), ("FLOAT", 1), ("INT", 2), ("STRING", 3), ("TENSOR", 4), ("GRAPH", 5), ("SPARSE_TENSOR", 11),
        ("TYPE_PROTO", 13), ("FLOATS", 6), ("INTS", 7), ("STRINGS", 8), ("TENSORS", 9), ("GRAPHS", 10),
        ("SPARSE_TENSORS", 12), ("TYPE_PROTOS", 14)]},
    "TensorProto": {
        "DataType": [
            ("UNDEFINED", 0), ("FLOAT", 1), ("UINT8", 2), ("INT8", 3), ("UINT16", 4), ("INT16", 5), ("INT32", 6),
            ("INT64", 7), ("STRING", 8), ("BOOL", 9), ("FLOAT16", 10), ("DOUBLE", 11), ("UINT32", 12), ("UINT64", 13),
            ("COMPLEX64", 14), ("COMPLEX128", 15), ("BFLOAT16", 16), ("FLOAT8E4M3FN", 17), ("FLOAT8E4M3FNUZ", 18),
            ("FLOAT8E5M2", 19), ("FLOAT8E5M2FNUZ", 20), ("UINT4", 21), ("INT4", 22), ("FLOAT4E2M1", 23),
            ("FLOAT8E8M0", 24), ("UINT2", 25), ("INT2", 26), ("FLOAT6E2M3", 27), ("FLOAT6E3M2", 28)],
        "DataLocation": [("DEFAULT", 0), ("EXTERNAL", 1)]},
}
# repeated numbers written packed (the schema's [packed = true]; a parser reads either form)
PACKED = {("TensorProto", name) for name in ("float_data", "int32_data", "int64_data", "double_data", "uint64_data")}
# (message path, oneof name, its fields)
ONEOFS = [("TensorShapeProto.Dimension", "value", ("dim_value", "dim_param")),
          ("TypeProto", "value", ("tensor_type", "sequence_type", "map_type", "optional_type", "sparse_tensor_type",
                                  "opaque_type"))]


def _fields(msg, fields):
    for name, number, kind, repeated in fields:
        f = msg.field.add(name=name, number=number,
                          label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
        if (msg.name, name) in PACKED:
            f.options.packed = True
        if kind in _SCALARS:
            f.type = _SCALARS[kind]
        elif kind.startswith("enum:"):
            f.type, f.type_name = _F.TYPE_ENUM, f".{PACKAGE}.{kind[5:]}"
        else:
            f.type, f.type_name = _F.TYPE_MESSAGE, f".{PACKAGE}.{kind}"


def _file() -> descriptor_pb2.FileDescriptorProto:
    fdp = descriptor_pb2.FileDescriptorProto(name="edgeml_onnx/onnx-ml.proto", package=PACKAGE, syntax="proto2")
    for name, fields in MESSAGES.items():
        msg = fdp.message_type.add(name=name)
        _fields(msg, fields)
        for sub, sub_fields in NESTED.get(name, {}).items():
            _fields(msg.nested_type.add(name=sub), sub_fields)
        for enum, values in ENUMS.get(name, {}).items():
            e = msg.enum_type.add(name=enum)
            for value_name, number in values:
                e.value.add(name=value_name, number=number)
    for path, oneof, members in ONEOFS:
        outer, _, inner = path.partition(".")
        msg = next(m for m in fdp.message_type if m.name == outer)
        if inner:
            msg = next(m for m in msg.nested_type if m.name == inner)
        msg.oneof_decl.add(name=oneof)
        for f in msg.field:
            if f.name in members:
                f.oneof_index = len(msg.oneof_decl) - 1
    return fdp


POOL = descriptor_pool.DescriptorPool()
_FILE = POOL.Add(_file())
_CLASSES = {name: message_factory.GetMessageClass(POOL.FindMessageTypeByName(f"{PACKAGE}.{name}"))
            for name in MESSAGES}

ModelProto = _CLASSES["ModelProto"]
GraphProto = _CLASSES["GraphProto"]
NodeProto = _CLASSES["NodeProto"]
AttributeProto = _CLASSES["AttributeProto"]
TensorProto = _CLASSES["TensorProto"]
ValueInfoProto = _CLASSES["ValueInfoProto"]
TypeProto = _CLASSES["TypeProto"]
