"""Read a .tflite flatbuffer into edgeml's graph IR, validating everything first.

Parsing uses the `tflite` package (flatbuffers' generated Python for the TFLite schema, pure Python on
`flatbuffers` + numpy): every field access is a bounds-checked read of a Python `bytes` object, so a
hostile offset raises a Python exception — which is turned into `ModelFormatError` here — instead of
reading outside the file.  What the flatbuffer layer cannot know (tensor sizes against buffer lengths,
quantization arrays against shapes, tensor indices against the tensor table, vector lengths against the
file size) is checked explicitly below, before any kernel sees the model.
"""
from __future__ import annotations

import math
import re

import numpy as np

from converters import flatbuffer as fbr
from converters.source import read_model_bytes
from converters.tflite_custom import custom_op
from converters.tflite_options import read_scalars, scalar_fields
from converters.tflite_sparsity import sparse_values
from converters.tflite_uint8 import hold_uint8_as_int8
from edgeml.errors import ModelFormatError
from edgeml.ir import Graph, Op, Quantization, Tensor

try:
    import tflite as _fb
except ImportError as exc:  # pragma: no cover - the plain install depends on it
    raise ImportError("edgeml needs the 'tflite' package to read .tflite files: pip install tflite") from exc

# TensorType enum of the schema -> numpy dtype
TENSOR_TYPES = {
    0: np.dtype(np.float32), 1: np.dtype(np.float16), 2: np.dtype(np.int32), 3: np.dtype(np.uint8),
    4: np.dtype(np.int64), 6: np.dtype(np.bool_), 7: np.dtype(np.int16), 9: np.dtype(np.int8),
    10: np.dtype(np.float64), 12: np.dtype(np.uint64), 15: np.dtype(np.uint32), 16: np.dtype(np.uint16),
}
TENSOR_TYPE_NAMES = {v: k for k, v in vars(_fb.TensorType).items() if not k.startswith("_")}
OPERATOR_NAMES = {v: k for k, v in vars(_fb.BuiltinOperator).items() if not k.startswith("_")}
OPTIONS_NAMES = {v: k for k, v in vars(_fb.BuiltinOptions).items() if not k.startswith("_")}

MAX_TENSOR_BYTES = 1 << 31
MAX_RANK = 8


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


# schema field index of each vector field read below (vtable slot 4 + 2k)
VECTOR_FIELDS = {
    "Model.operator_codes": 1, "Model.subgraphs": 2, "Model.buffers": 4,
    "SubGraph.tensors": 0, "SubGraph.inputs": 1, "SubGraph.outputs": 2, "SubGraph.operators": 3,
    "Tensor.shape": 0, "Tensor.shape_signature": 7, "Operator.inputs": 1, "Operator.outputs": 2,
    "Operator.intermediates": 8, "Buffer.data": 0,
    "QuantizationParameters.scale": 2, "QuantizationParameters.zero_point": 3,
}
# scalar and table fields (schema field indices)
MODEL_VERSION = 0
SUBGRAPH_NAME = 4
TENSOR_TYPE, TENSOR_BUFFER, TENSOR_NAME, TENSOR_QUANTIZATION, TENSOR_IS_VARIABLE = 1, 2, 3, 4, 5
TENSOR_SPARSITY, TENSOR_SHAPE_SIGNATURE = 6, 7
QUANT_DETAILS_TYPE, QUANT_DIMENSION = 4, 6
OPERATOR_OPCODE_INDEX, OPERATOR_OPTIONS_TYPE, OPERATOR_OPTIONS = 0, 3, 4
CODE_DEPRECATED_BUILTIN, CODE_CUSTOM, CODE_VERSION, CODE_BUILTIN = 0, 1, 2, 3
BUFFER_OFFSET, BUFFER_SIZE = 1, 2


def _vector_len(table: fbr.Table, field: str, itemsize: int, buf: bytes, what: str) -> tuple[int, int]:
    """(start, length) of a vector field, checked to lie entirely inside the file from where it starts."""
    start, n = table.vector(VECTOR_FIELDS[field])
    if n == 0:
        return start, 0
    if n < 0 or start < 0 or start + n * itemsize > len(buf):
        raise ModelFormatError(f"{what} claims {n} entries of {itemsize} bytes at offset {start}, past the end "
                               f"of the {len(buf)}-byte file")
    return start, n


def _option_fields(cls) -> tuple:
    """(key, accessor name, is vector) of every field of an options class, found once per class."""
    names = set(dir(cls))
    fields = []
    for attr in sorted(names):
        if attr.startswith("_") or attr in ("Init", "GetRootAs") or attr.startswith("GetRootAs") \
                or attr.endswith(("BufferHasIdentifier", "IsNone", "Length")):
            continue
        if attr.endswith("AsNumpy"):
            fields.append((_snake(attr[:-len("AsNumpy")]), attr, True))
        elif attr + "AsNumpy" not in names:
            fields.append((_snake(attr), attr, False))
    return tuple(fields)


OPTION_FIELDS = {}      # options class -> _option_fields(cls)


def _options(op_fb: fbr.Table, op_name: str, buf: bytes, memo: dict) -> dict:
    """All scalar and vector fields of the op's builtin options table, snake_cased.  An options table whose
    fields are all scalars is read once per file for each distinct (vtable, body) byte string (`memo`): its
    values depend on nothing else.  Callers get their own dict."""
    kind = op_fb.scalar(OPERATOR_OPTIONS_TYPE, fbr.U8)
    if kind == 0:
        return {}
    cls_name = OPTIONS_NAMES.get(kind)
    cls = getattr(_fb, cls_name, None) if cls_name else None
    table = op_fb.table(OPERATOR_OPTIONS)
    if cls is None or table is None:
        raise ModelFormatError(f"{op_name}: unknown builtin options type {kind}")
    fields = OPTION_FIELDS.get(cls)
    if fields is None:
        fields = OPTION_FIELDS[cls] = _option_fields(cls)
    reads = scalar_fields(cls, fields)
    if reads is not None:       # every field a scalar: one struct read each, no generated accessors
        return read_scalars(reads, table)
    body_size = fbr.U16.unpack_from(buf, table.vtable + 2)[0] if table.vtable_size >= 4 else 0
    key = (kind, bytes(buf[table.vtable:table.vtable + table.vtable_size]),
           bytes(buf[table.pos:table.pos + body_size]))
    if key in memo:
        return dict(memo[key])
    opts = cls()
    opts.Init(buf, table.pos)
    out = {}
    for name, attr, vector in fields:
        if vector:
            value = getattr(opts, attr)()
            out[name] = np.array(value).reshape(-1) if not isinstance(value, int) else np.zeros(0, np.int32)
            continue
        try:
            out[name] = getattr(opts, attr)()
        except TypeError:       # an accessor that takes an index: a vector of tables, not used by our ops
            continue
    if all(type(v) in (int, float, bool) for v in out.values()):
        memo[key] = dict(out)
    return out


def _quantization(t_fb: fbr.Table, tensor_desc: str, shape: tuple, dtype: np.dtype, buf: bytes):
    q = t_fb.table(TENSOR_QUANTIZATION)
    if q is None:
        return None
    s_start, n_scale = _vector_len(q, "QuantizationParameters.scale", 4, buf, f"{tensor_desc} quantization scale")
    z_start, n_zp = _vector_len(q, "QuantizationParameters.zero_point", 8, buf,
                                f"{tensor_desc} quantization zero_point")
    if n_scale == 0 and n_zp == 0:
        return None
    if q.scalar(QUANT_DETAILS_TYPE, fbr.U8) != 0:
        raise ModelFormatError(f"{tensor_desc}: custom quantization details are not supported")
    if n_scale == 1 and n_zp <= 1:      # per tensor, the common case: two struct reads, no numpy reductions
        s = fbr.F32.unpack_from(buf, s_start)[0]
        z = fbr.I64.unpack_from(buf, z_start)[0] if n_zp else 0
        if not (math.isfinite(s) and s >= 0):
            raise ModelFormatError(f"{tensor_desc}: quantization scale must be finite and non-negative")
        if dtype.kind in "iu" and not INT_RANGES[dtype][0] <= z <= INT_RANGES[dtype][1]:
            raise ModelFormatError(f"{tensor_desc}: zero point outside the range of {dtype}")
        return Quantization(scale=np.array([s], np.float64), zero_point=np.array([z], np.int64), axis=0)
    scale = fbr.array(buf, s_start, n_scale, "<f4").astype(np.float64)
    # zero points that are all zero bytes (symmetric weights, int32 biases): counted in C, no array read
    zeros = n_zp and isinstance(buf, (bytes, bytearray)) and buf.count(0, z_start, z_start + 8 * n_zp) == 8 * n_zp
    zp = np.zeros(n_zp or n_scale, np.int64) if zeros or not n_zp else \
        fbr.array(buf, z_start, n_zp, "<i8").astype(np.int64)
    if n_scale == 0:
        raise ModelFormatError(f"{tensor_desc}: quantization has zero points but no scales")
    if zp.size != scale.size:
        raise ModelFormatError(f"{tensor_desc}: {scale.size} quantization scales but {zp.size} zero points")
    axis = q.scalar(QUANT_DIMENSION, fbr.I32)
    if scale.size > 1:
        if not 0 <= axis < len(shape):
            raise ModelFormatError(f"{tensor_desc}: quantized_dimension {axis} is outside its rank-{len(shape)} shape")
        if shape[axis] != scale.size:
            raise ModelFormatError(f"{tensor_desc}: {scale.size} per-axis scales for dimension {axis} "
                                   f"of size {shape[axis]}")
    # (the float32 bits of finite, non-negative scales stay below 0x7F800000, -0.0 aside: one reduction, then
    # min / max for the rest, where a NaN or an infinity reaches one of them)
    if fbr.array(buf, s_start, n_scale, "<u4").max() >= 0x7F800000 and \
            not (scale.min() >= 0 and math.isfinite(scale.max())):
        raise ModelFormatError(f"{tensor_desc}: quantization scale must be finite and non-negative")
    if dtype.kind in "iu" and not zeros and zp.any():
        lo, hi = INT_RANGES[dtype]
        if zp.min() < lo or zp.max() > hi:
            raise ModelFormatError(f"{tensor_desc}: zero point outside the range of {dtype}")
    # one scale is per tensor whatever quantized_dimension says (TFLite Micro reads it so; LiteRT refuses an axis
    # outside the shape)
    return Quantization(scale=scale, zero_point=zp, axis=int(axis) if scale.size > 1 else 0)


INT_RANGES = {t: (int(np.iinfo(t).min), int(np.iinfo(t).max)) for t in TENSOR_TYPES.values() if t.kind in "iu"}


def _buffer_bytes(buffers_start: int, index: int, buf: bytes):
    """Buffer `index`'s bytes as a zero-copy view of the file, or None when it is empty."""
    b = fbr.table_in_vector(buf, buffers_start, index)
    offset = b.scalar(BUFFER_OFFSET, fbr.U64)
    if offset > 1:      # large-model layout: data lives after the flatbuffer
        size = b.scalar(BUFFER_SIZE, fbr.U64)
        if offset + size > len(buf):
            raise ModelFormatError(f"buffer {index}: data at offset {offset} + {size} bytes runs past the "
                                   f"end of the {len(buf)}-byte file")
        return memoryview(buf)[offset:offset + size]
    start, n = _vector_len(b, "Buffer.data", 1, buf, f"buffer {index}")
    if n == 0:
        return None
    return memoryview(buf)[start:start + n]


def _describe_errors(what: str, fn, *args):
    """Run one read; a flatbuffer access that leaves the file becomes a ModelFormatError naming `what`."""
    try:
        return fn(*args)
    except ModelFormatError:
        raise
    except Exception as exc:
        raise _malformed(what, exc) from exc


def _malformed(what: str, exc: Exception) -> ModelFormatError:
    """The error of a read that left the file (_describe_errors' message, for loops that catch it themselves)."""
    return ModelFormatError(f"{what}: malformed flatbuffer data ({type(exc).__name__}: {exc})")


def _operator_code(codes_start: int, i: int, buf: bytes) -> tuple[str, int]:
    c = fbr.table_in_vector(buf, codes_start, i)
    code = max(c.scalar(CODE_BUILTIN, fbr.I32), c.scalar(CODE_DEPRECATED_BUILTIN, fbr.I8))
    name = OPERATOR_NAMES.get(code, f"BUILTIN_{code}")
    if code == _fb.BuiltinOperator.CUSTOM:
        cn = c.string(CODE_CUSTOM)
        name = "CUSTOM:" + (cn.decode("utf-8", "replace") if cn else "?")
    return name, c.scalar(CODE_VERSION, fbr.I32, 1)


def _parse(buf: bytes, subgraph_index: int) -> Graph:
    if len(buf) < 8:
        raise ModelFormatError(f"file is {len(buf)} bytes: too short to be a TFLite model")
    if buf[4:8] != b"TFL3":
        raise ModelFormatError("not a TFLite flatbuffer: the 'TFL3' identifier at offset 4 is missing")
    root = int.from_bytes(buf[0:4], "little")
    if root + 4 > len(buf):
        raise ModelFormatError(f"root table offset {root} is past the end of the {len(buf)}-byte file")
    model_fb = fbr.Table(buf, root)
    version = model_fb.scalar(MODEL_VERSION, fbr.U32)
    if version != 3:
        raise ModelFormatError(f"schema version {version}; only version 3 is understood")

    sub_start, n_sub = _vector_len(model_fb, "Model.subgraphs", 4, buf, "subgraph table")
    if n_sub == 0:
        raise ModelFormatError("model has no subgraph")
    if not 0 <= subgraph_index < n_sub:
        raise ModelFormatError(f"subgraph {subgraph_index} requested, model has {n_sub}")
    buffers_start, n_buffers = _vector_len(model_fb, "Model.buffers", 4, buf, "buffer table")
    codes_start, n_codes = _vector_len(model_fb, "Model.operator_codes", 4, buf, "operator code table")
    buffers = []
    for i in range(n_buffers):     # (one try for the loop: no per-buffer description built unless one fails)
        try:
            buffers.append(_buffer_bytes(buffers_start, i, buf))
        except ModelFormatError:
            raise
        except Exception as exc:
            raise _malformed(f"buffer {i}", exc) from exc
    subgraphs = []
    for i in range(n_sub):
        subgraphs.append(_describe_errors(f"subgraph {i}", fbr.table_in_vector, buf, sub_start, i))
        _describe_errors(f"subgraph {i}", _vector_len, subgraphs[i], "SubGraph.tensors", 4, buf,
                         f"subgraph {i} tensor table")
    codes = [_describe_errors(f"operator code {i}", _operator_code, codes_start, i, buf) for i in range(n_codes)]

    # the requested subgraph and every subgraph its control-flow ops reach (WHILE's cond / body), by file index;
    # one dict shared by all of them (Graph.subgraphs).  Subgraphs nothing reaches are not read.
    graphs = {}
    pending = [subgraph_index]
    options_memo = {}
    while pending:
        k = pending.pop()
        if k in graphs:
            continue
        try:
            graphs[k] = graph = _parse_subgraph(subgraphs[k], buf, codes, buffers, options_memo)
        except ModelFormatError as exc:
            if k == subgraph_index:
                raise
            raise ModelFormatError(f"subgraph {k}: {exc}") from exc
        graph.subgraphs = graphs
        for op in graph.ops:
            for name, value in op.options.items():
                if name.endswith("_subgraph_index") and isinstance(value, int):
                    if not 0 <= value < n_sub:
                        raise ModelFormatError(f"subgraph {k} {op.describe()}: {name} {value} is outside the "
                                               f"model's {n_sub} subgraphs")
                    pending.append(value)
    return graphs[subgraph_index]


def _tensor(t_fb: fbr.Table, i: int, buf: bytes, buffers: list) -> Tensor:
    raw_name = t_fb.string(TENSOR_NAME)
    name = raw_name.decode("utf-8", "replace") if raw_name else f"tensor_{i}"
    desc = f"tensor {i} '{name}'"
    shape_start, rank = _vector_len(t_fb, "Tensor.shape", 4, buf, f"{desc} shape")
    if rank > MAX_RANK:
        raise ModelFormatError(f"{desc}: rank {rank} exceeds the supported maximum {MAX_RANK}")
    shape = tuple(fbr.array(buf, shape_start, rank, "<i4").tolist()) if rank else ()
    if any(d < 0 for d in shape):
        raise ModelFormatError(f"{desc}: negative dimension in shape {list(shape)}")
    dynamic_dims = ()
    if t_fb.offset(TENSOR_SHAPE_SIGNATURE):
        sig_start, sig_rank = _vector_len(t_fb, "Tensor.shape_signature", 4, buf, f"{desc} shape_signature")
        if sig_rank == rank and rank:
            signature = fbr.array(buf, sig_start, rank, "<i4").tolist()
            dynamic_dims = tuple(a for a, d in enumerate(signature) if d == -1)
    ttype = t_fb.scalar(TENSOR_TYPE, fbr.I8)
    if ttype not in TENSOR_TYPES:
        raise ModelFormatError(f"{desc}: tensor type {TENSOR_TYPE_NAMES.get(ttype, ttype)} is not supported")
    dtype = TENSOR_TYPES[ttype]
    elements = math.prod(shape)
    if elements * dtype.itemsize > MAX_TENSOR_BYTES:
        raise ModelFormatError(f"{desc}: shape {list(shape)} is larger than {MAX_TENSOR_BYTES} bytes")
    quant = _describe_errors(f"{desc} quantization", _quantization, t_fb, desc, shape, dtype, buf) \
        if t_fb.offset(TENSOR_QUANTIZATION) else None
    b_index = t_fb.scalar(TENSOR_BUFFER, fbr.U32)
    n_buffers = len(buffers)
    if not 0 <= b_index < max(n_buffers, 1):
        raise ModelFormatError(f"{desc}: buffer index {b_index} is outside the {n_buffers}-entry buffer table")
    raw = buffers[b_index] if n_buffers else None
    data = None
    if t_fb.offset(TENSOR_SPARSITY):
        data = _describe_errors(f"{desc} sparsity", sparse_values, t_fb.pos, buf, desc, shape, dtype, raw)
    if raw is not None and data is None:        # (a sparse tensor's values are expanded by sparse_values)
        need = elements * dtype.itemsize
        if len(raw) != need:
            raise ModelFormatError(f"{desc}: buffer {b_index} holds {len(raw)} bytes, shape {list(shape)} "
                                   f"of {dtype} needs {need}")
        data = np.frombuffer(raw, dtype=dtype.newbyteorder("<"))
        if data.dtype != dtype or not data.flags.aligned:     # else a read-only view of the file: no copy
            data = data.astype(dtype)
        data = data.reshape(shape)
    return Tensor(index=i, name=name, shape=shape, dtype=dtype, quant=quant, data=data,
                  is_variable=bool(t_fb.scalar(TENSOR_IS_VARIABLE, fbr.U8)), dynamic_dims=dynamic_dims)


def _indices(table: fbr.Table, field: str, buf: bytes, what: str) -> list:
    start, n = _vector_len(table, field, 4, buf, what)
    return _describe_errors(what, fbr.array, buf, start, n, "<i4").tolist() if n else []


def _parse_subgraph(sg: fbr.Table, buf: bytes, codes: list, buffers: list, options_memo: dict) -> Graph:
    """One subgraph: its tensors (with their buffers), ops, inputs and outputs."""
    n_codes = len(codes)
    t_start, n_tensors = _vector_len(sg, "SubGraph.tensors", 4, buf, "tensor table")
    tensors = []
    for i in range(n_tensors):
        try:
            tensors.append(_tensor(fbr.table_in_vector(buf, t_start, i), i, buf, buffers))
        except ModelFormatError:
            raise
        except Exception as exc:
            raise _malformed(f"tensor {i}", exc) from exc

    def check_indices(indices, what, allow_optional):
        for idx in indices:
            if not (0 <= idx < n_tensors or allow_optional and idx == -1):
                raise ModelFormatError(f"{what} refers to tensor {idx}, the subgraph has {n_tensors}")
        return indices

    o_start, n_ops = _vector_len(sg, "SubGraph.operators", 4, buf, "operator table")
    ops = []
    for i in range(n_ops):
        try:
            op_fb = fbr.table_in_vector(buf, o_start, i)
            code_index = op_fb.scalar(OPERATOR_OPCODE_INDEX, fbr.U32)
        except Exception as exc:
            raise _malformed(f"op {i}", exc) from exc
        if not 0 <= code_index < n_codes:
            raise ModelFormatError(f"op {i}: opcode index {code_index} is outside the {n_codes}-entry code table")
        op_name, version = codes[code_index]
        what = f"op {i} ({op_name})"
        inputs = check_indices(_indices(op_fb, "Operator.inputs", buf, f"{what} inputs"), f"{what} input", True)
        outputs = check_indices(_indices(op_fb, "Operator.outputs", buf, f"{what} outputs"), f"{what} output", False)
        # intermediates: tensors an op uses internally (the LSTM's gate and hidden quantization)
        intermediates = check_indices(_indices(op_fb, "Operator.intermediates", buf, f"{what} intermediates"),
                                      f"{what} intermediate", False)
        options = _describe_errors(f"{what} options", _options, op_fb, what, buf, options_memo)
        if op_name.startswith("CUSTOM:"):     # a custom op edgeml implements gets its IR type and parsed options
            generated = _fb.Operator()
            generated.Init(buf, op_fb.pos)
            op_name, options = _describe_errors(f"{what} options", custom_op, generated, op_name, what, buf)
        ops.append(Op(index=i, type=op_name, version=version, inputs=inputs, outputs=outputs, options=options,
                      intermediates=intermediates))

    g_in = check_indices(_indices(sg, "SubGraph.inputs", buf, "subgraph inputs"), "subgraph input", False)
    g_out = check_indices(_indices(sg, "SubGraph.outputs", buf, "subgraph outputs"), "subgraph output", False)
    if not g_in or not g_out:
        raise ModelFormatError("subgraph declares no inputs or no outputs")
    sg_name = sg.string(SUBGRAPH_NAME)
    return Graph(tensors=tensors, ops=ops, inputs=g_in, outputs=g_out, source="tflite",
                 name=sg_name.decode("utf-8", "replace") if sg_name else "")


def from_tflite(model, subgraph: int = 0) -> Graph:
    """Parse and validate a .tflite file (path or bytes) into a `Graph`; raises `ModelFormatError`."""
    buf = read_model_bytes(model)
    try:
        graph = _parse(buf, subgraph)
    except ModelFormatError:
        raise
    except Exception as exc:  # any flatbuffer read that left the file: report, never crash
        raise ModelFormatError(f"malformed TFLite flatbuffer ({type(exc).__name__}: {exc})") from exc
    return hold_uint8_as_int8(graph)
