"""Read a .tflite flatbuffer into edgeml's graph IR, validating everything first.

Parsing uses the `tflite` package (flatbuffers' generated Python for the TFLite schema, pure Python on
`flatbuffers` + numpy): every field access is a bounds-checked read of a Python `bytes` object, so a
hostile offset raises a Python exception — which is turned into `ModelFormatError` here — instead of
reading outside the file.  What the flatbuffer layer cannot know (tensor sizes against buffer lengths,
quantization arrays against shapes, tensor indices against the tensor table, vector lengths against the
file size) is checked explicitly below, before any kernel sees the model.
"""
from __future__ import annotations

import re

import numpy as np

from converters.source import read_model_bytes
from converters.tflite_custom import custom_op
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


# vtable offsets of the vector fields read below (schema field k sits at 4 + 2k)
VECTOR_FIELDS = {
    "Model.operator_codes": 6, "Model.subgraphs": 8, "Model.buffers": 12,
    "SubGraph.tensors": 4, "SubGraph.inputs": 6, "SubGraph.outputs": 8, "SubGraph.operators": 10,
    "Tensor.shape": 4, "Tensor.shape_signature": 18, "Operator.inputs": 6, "Operator.outputs": 8, "Operator.intermediates": 20, "Buffer.data": 4,
    "QuantizationParameters.scale": 8, "QuantizationParameters.zero_point": 10,
}


def _vector_len(obj, field: str, itemsize: int, buf: bytes, what: str) -> int:
    """Length of a vector field, checked to lie entirely inside the file from where it starts."""
    tab = obj._tab
    o = tab.Offset(VECTOR_FIELDS[field])
    if o == 0:
        return 0
    start, n = tab.Vector(o), tab.VectorLen(o)
    if n < 0 or start < 0 or start + n * itemsize > len(buf):
        raise ModelFormatError(f"{what} claims {n} entries of {itemsize} bytes at offset {start}, past the end "
                               f"of the {len(buf)}-byte file")
    return n


def _options(op_fb, op_name: str) -> dict:
    """All scalar and vector fields of the op's builtin options table, snake_cased."""
    kind = op_fb.BuiltinOptionsType()
    if kind == 0:
        return {}
    cls_name = OPTIONS_NAMES.get(kind)
    cls = getattr(_fb, cls_name, None) if cls_name else None
    table = op_fb.BuiltinOptions()
    if cls is None or table is None:
        raise ModelFormatError(f"{op_name}: unknown builtin options type {kind}")
    opts = cls()
    opts.Init(table.Bytes, table.Pos)
    out = {}
    for attr in dir(cls):
        if attr.startswith("_") or attr in ("Init", "GetRootAs") or attr.startswith("GetRootAs") \
                or attr.endswith(("BufferHasIdentifier", "IsNone", "Length")):
            continue
        if attr.endswith("AsNumpy"):
            value = getattr(opts, attr)()
            out[_snake(attr[:-len("AsNumpy")])] = np.array(value).reshape(-1) if not isinstance(value, int) else np.zeros(0, np.int32)
            continue
        if attr + "AsNumpy" in dir(cls):
            continue
        fn = getattr(opts, attr)
        try:
            out[_snake(attr)] = fn()
        except TypeError:       # an accessor that takes an index: a vector of tables, not used by our ops
            continue
    return out


def _quantization(t_fb, tensor_desc: str, shape: tuple, dtype: np.dtype, buf: bytes):
    q = t_fb.Quantization()
    if q is None:
        return None
    n_scale = _vector_len(q, "QuantizationParameters.scale", 4, buf, f"{tensor_desc} quantization scale")
    n_zp = _vector_len(q, "QuantizationParameters.zero_point", 8, buf, f"{tensor_desc} quantization zero_point")
    if n_scale == 0 and n_zp == 0:
        return None
    if q.DetailsType() != 0:
        raise ModelFormatError(f"{tensor_desc}: custom quantization details are not supported")
    scale = np.array(q.ScaleAsNumpy(), dtype=np.float64).reshape(-1)
    zp = np.array(q.ZeroPointAsNumpy(), dtype=np.int64).reshape(-1) if n_zp else np.zeros(n_scale, np.int64)
    if scale.size != n_scale or zp.size != n_zp and n_zp:
        raise ModelFormatError(f"{tensor_desc}: quantization arrays run past the end of the file")
    if n_scale == 0:
        raise ModelFormatError(f"{tensor_desc}: quantization has zero points but no scales")
    if zp.size != scale.size:
        raise ModelFormatError(f"{tensor_desc}: {scale.size} quantization scales but {zp.size} zero points")
    axis = q.QuantizedDimension()
    if scale.size > 1:
        if not 0 <= axis < len(shape):
            raise ModelFormatError(f"{tensor_desc}: quantized_dimension {axis} is outside its rank-{len(shape)} shape")
        if shape[axis] != scale.size:
            raise ModelFormatError(f"{tensor_desc}: {scale.size} per-axis scales for dimension {axis} "
                                   f"of size {shape[axis]}")
    if not np.all(np.isfinite(scale)) or np.any(scale < 0):
        raise ModelFormatError(f"{tensor_desc}: quantization scale must be finite and non-negative")
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if np.any(zp < info.min) or np.any(zp > info.max):
            raise ModelFormatError(f"{tensor_desc}: zero point outside the range of {dtype}")
    # one scale is per tensor whatever quantized_dimension says (TFLite Micro reads it so; LiteRT refuses an axis
    # outside the shape)
    return Quantization(scale=scale, zero_point=zp, axis=int(axis) if scale.size > 1 else 0)


def _buffer_bytes(model_fb, index: int, buf: bytes):
    b = model_fb.Buffers(index)
    if b is None:
        return None
    offset, size = b.Offset(), b.Size()
    if offset > 1:      # large-model layout: data lives after the flatbuffer
        if offset + size > len(buf):
            raise ModelFormatError(f"buffer {index}: data at offset {offset} + {size} bytes runs past the "
                                   f"end of the {len(buf)}-byte file")
        return buf[offset:offset + size]
    n = _vector_len(b, "Buffer.data", 1, buf, f"buffer {index}")
    if n == 0:
        return None
    data = b.DataAsNumpy()
    if not isinstance(data, np.ndarray) or data.size != n:
        raise ModelFormatError(f"buffer {index}: {n} bytes claimed, data runs past the end of the file")
    return data.tobytes()


def _describe_errors(what: str, fn, *args):
    """Run one read; a flatbuffer access that leaves the file becomes a ModelFormatError naming `what`."""
    try:
        return fn(*args)
    except ModelFormatError:
        raise
    except Exception as exc:
        raise ModelFormatError(f"{what}: malformed flatbuffer data ({type(exc).__name__}: {exc})") from exc


def _parse(buf: bytes, subgraph_index: int) -> Graph:
    if len(buf) < 8:
        raise ModelFormatError(f"file is {len(buf)} bytes: too short to be a TFLite model")
    if buf[4:8] != b"TFL3":
        raise ModelFormatError("not a TFLite flatbuffer: the 'TFL3' identifier at offset 4 is missing")
    root = int.from_bytes(buf[0:4], "little")
    if root + 4 > len(buf):
        raise ModelFormatError(f"root table offset {root} is past the end of the {len(buf)}-byte file")
    model_fb = _fb.Model.GetRootAs(buf, 0)
    if model_fb.Version() != 3:
        raise ModelFormatError(f"schema version {model_fb.Version()}; only version 3 is understood")

    n_sub = _vector_len(model_fb, "Model.subgraphs", 4, buf, "subgraph table")
    if n_sub == 0:
        raise ModelFormatError("model has no subgraph")
    if not 0 <= subgraph_index < n_sub:
        raise ModelFormatError(f"subgraph {subgraph_index} requested, model has {n_sub}")
    n_buffers = _vector_len(model_fb, "Model.buffers", 4, buf, "buffer table")
    n_codes = _vector_len(model_fb, "Model.operator_codes", 4, buf, "operator code table")
    for i in range(n_buffers):
        _describe_errors(f"buffer {i}", _buffer_bytes, model_fb, i, buf)
    for i in range(n_sub):
        _describe_errors(f"subgraph {i}", lambda k: _vector_len(model_fb.Subgraphs(k), "SubGraph.tensors", 4, buf,
                                                              f"subgraph {k} tensor table"), i)
    codes = []
    for i in range(n_codes):
        c = _describe_errors(f"operator code {i}", model_fb.OperatorCodes, i)
        code = max(c.BuiltinCode(), c.DeprecatedBuiltinCode())
        name = OPERATOR_NAMES.get(code, f"BUILTIN_{code}")
        if code == _fb.BuiltinOperator.CUSTOM:
            cn = c.CustomCode()
            name = "CUSTOM:" + (cn.decode("utf-8", "replace") if cn else "?")
        codes.append((name, c.Version()))

    # the requested subgraph and every subgraph its control-flow ops reach (WHILE's cond / body), by file index;
    # one dict shared by all of them (Graph.subgraphs).  Subgraphs nothing reaches are not read.
    graphs = {}
    pending = [subgraph_index]
    while pending:
        k = pending.pop()
        if k in graphs:
            continue
        try:
            graphs[k] = graph = _parse_subgraph(model_fb, buf, k, codes, n_buffers)
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


def _parse_subgraph(model_fb, buf: bytes, subgraph_index: int, codes: list, n_buffers: int) -> Graph:
    """One subgraph: its tensors (with their buffers), ops, inputs and outputs."""
    n_codes = len(codes)
    sg = model_fb.Subgraphs(subgraph_index)
    n_tensors = _vector_len(sg, "SubGraph.tensors", 4, buf, "tensor table")
    tensors = []
    buffer_cache = {}
    for i in range(n_tensors):
        t_fb = _describe_errors(f"tensor {i}", sg.Tensors, i)
        raw_name = _describe_errors(f"tensor {i} name", t_fb.Name)
        name = raw_name.decode("utf-8", "replace") if raw_name else f"tensor_{i}"
        desc = f"tensor {i} '{name}'"
        rank = _vector_len(t_fb, "Tensor.shape", 4, buf, f"{desc} shape")
        if rank > MAX_RANK:
            raise ModelFormatError(f"{desc}: rank {rank} exceeds the supported maximum {MAX_RANK}")
        shape = tuple(int(d) for d in np.array(_describe_errors(f"{desc} shape", t_fb.ShapeAsNumpy),
                                                dtype=np.int64).reshape(-1)) if rank else ()
        if len(shape) != rank:
            raise ModelFormatError(f"{desc}: shape vector runs past the end of the file")
        if any(d < 0 for d in shape):
            raise ModelFormatError(f"{desc}: negative dimension in shape {list(shape)}")
        dynamic_dims = ()
        if _vector_len(t_fb, "Tensor.shape_signature", 4, buf, f"{desc} shape_signature") == rank and rank:
            signature = np.array(_describe_errors(f"{desc} shape_signature", t_fb.ShapeSignatureAsNumpy),
                                 dtype=np.int64).reshape(-1)
            dynamic_dims = tuple(int(a) for a in np.flatnonzero(signature == -1))
        ttype = t_fb.Type()
        if ttype not in TENSOR_TYPES:
            raise ModelFormatError(f"{desc}: tensor type {TENSOR_TYPE_NAMES.get(ttype, ttype)} is not supported")
        dtype = TENSOR_TYPES[ttype]
        elements = int(np.prod(shape, dtype=np.float64)) if shape else 1
        if elements * dtype.itemsize > MAX_TENSOR_BYTES:
            raise ModelFormatError(f"{desc}: shape {list(shape)} is larger than {MAX_TENSOR_BYTES} bytes")
        quant = _describe_errors(f"{desc} quantization", _quantization, t_fb, desc, shape, dtype, buf)
        b_index = t_fb.Buffer()
        if not 0 <= b_index < max(n_buffers, 1):
            raise ModelFormatError(f"{desc}: buffer index {b_index} is outside the {n_buffers}-entry buffer table")
        if b_index not in buffer_cache:
            buffer_cache[b_index] = _buffer_bytes(model_fb, b_index, buf) if n_buffers else None
        raw = buffer_cache[b_index]
        data = _describe_errors(f"{desc} sparsity", sparse_values, t_fb._tab.Pos, buf, desc, shape, dtype, raw)
        if raw is not None and data is None:        # (a sparse tensor's values are expanded by sparse_values)
            need = elements * dtype.itemsize
            if len(raw) != need:
                raise ModelFormatError(f"{desc}: buffer {b_index} holds {len(raw)} bytes, shape {list(shape)} "
                                       f"of {dtype} needs {need}")
            data = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)
        tensors.append(Tensor(index=i, name=name, shape=shape, dtype=dtype, quant=quant, data=data,
                              is_variable=bool(t_fb.IsVariable()), dynamic_dims=dynamic_dims))

    def check_index(idx, what, allow_optional):
        idx = int(idx)
        if allow_optional and idx == -1:
            return idx
        if not 0 <= idx < n_tensors:
            raise ModelFormatError(f"{what} refers to tensor {idx}, the subgraph has {n_tensors}")
        return idx

    n_ops = _vector_len(sg, "SubGraph.operators", 4, buf, "operator table")
    ops = []
    for i in range(n_ops):
        op_fb = _describe_errors(f"op {i}", sg.Operators, i)
        code_index = op_fb.OpcodeIndex()
        if not 0 <= code_index < n_codes:
            raise ModelFormatError(f"op {i}: opcode index {code_index} is outside the {n_codes}-entry code table")
        op_name, version = codes[code_index]
        what = f"op {i} ({op_name})"
        n_in = _vector_len(op_fb, "Operator.inputs", 4, buf, f"{what} inputs")
        n_out = _vector_len(op_fb, "Operator.outputs", 4, buf, f"{what} outputs")
        inputs = [check_index(x, f"{what} input", True)
                  for x in (np.array(_describe_errors(f"{what} inputs", op_fb.InputsAsNumpy)).reshape(-1)
                            if n_in else [])]
        outputs = [check_index(x, f"{what} output", False)
                   for x in (np.array(_describe_errors(f"{what} outputs", op_fb.OutputsAsNumpy)).reshape(-1)
                             if n_out else [])]
        if len(inputs) != n_in or len(outputs) != n_out:
            raise ModelFormatError(f"{what}: input/output vectors run past the end of the file")
        # intermediates: tensors an op uses internally (the LSTM's gate and hidden quantization)
        n_mid = _vector_len(op_fb, "Operator.intermediates", 4, buf, f"{what} intermediates")
        intermediates = [check_index(x, f"{what} intermediate", False)
                         for x in (np.array(_describe_errors(f"{what} intermediates", op_fb.IntermediatesAsNumpy))
                                   .reshape(-1) if n_mid else [])]
        if len(intermediates) != n_mid:
            raise ModelFormatError(f"{what}: intermediates vector runs past the end of the file")
        options = _describe_errors(f"{what} options", _options, op_fb, what)
        if op_name.startswith("CUSTOM:"):     # a custom op edgeml implements gets its IR type and parsed options
            op_name, options = _describe_errors(f"{what} options", custom_op, op_fb, op_name, what, buf)
        ops.append(Op(index=i, type=op_name, version=version, inputs=inputs, outputs=outputs, options=options,
                      intermediates=intermediates))

    n_gin = _vector_len(sg, "SubGraph.inputs", 4, buf, "subgraph inputs")
    n_gout = _vector_len(sg, "SubGraph.outputs", 4, buf, "subgraph outputs")
    g_in = [check_index(x, "subgraph input", False) for x in (np.array(sg.InputsAsNumpy()).reshape(-1) if n_gin else [])]
    g_out = [check_index(x, "subgraph output", False) for x in (np.array(sg.OutputsAsNumpy()).reshape(-1) if n_gout else [])]
    if not g_in or not g_out:
        raise ModelFormatError("subgraph declares no inputs or no outputs")
    sg_name = sg.Name()
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
