"""Read a .tflite flatbuffer into edgeml's graph IR, validating everything first.

The model, buffer, tensor and operator tables are walked in C (cython_ops/tflite_read.pyx): every position is
checked against the file before it is read, and so are what the flatbuffer layout cannot know (tensor sizes
against buffer lengths, quantization arrays against shapes, tensor indices against the tensor table, vector
lengths against the file size); a failed check is a `ModelFormatError` naming the table, tensor or op.  Options
tables with vector fields, sparse tensors and custom ops' flexbuffer options are read here, with the `tflite`
package's generated accessors (bounds-checked reads of a Python `bytes` object) where the walker calls back.
"""
from __future__ import annotations

import sys

import numpy as np

from converters import flatbuffer as fbr
from converters.source import read_model_buffer
from converters.tflite_custom import custom_op
from converters.tflite_options import read_spec, scalar_fields
from converters.tflite_sparsity import sparse_values
from converters.tflite_uint8 import hold_uint8_as_int8
from cython_ops.tflite_read import FormatError, ModelFile
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

BIG_ENDIAN = sys.byteorder == "big"


def _snake(name: str) -> str:
    """CamelCase -> camel_case: an underscore before every capital but the first character (as the regular
    expression (?<!^)(?=[A-Z]) placed them; a plain loop spares the first load its compilation)."""
    return "".join("_" + c if c.isupper() and i else c for i, c in enumerate(name)).lower()


CUSTOM_OPERATOR = _fb.BuiltinOperator.CUSTOM
# numpy dtype per TensorType code (None: not supported), as the walker indexes it
DTYPES_BY_CODE = tuple(TENSOR_TYPES.get(code) for code in range(max(TENSOR_TYPES) + 1))


def _option_fields(cls) -> tuple:
    """(key, accessor name, is vector) of every field of an options class, found once per class (the class's own
    and its bases' names but object's, which are all dunder names)."""
    names = set()
    for base in cls.__mro__[:-1]:
        names.update(vars(base))
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
OPTION_READS = {}       # scalar_fields -> (options kind -> read spec, options kinds naming subgraphs): _Walk


def _options(pos: int, kind: int, what: str, buf: bytes, memo: dict) -> dict:
    """All scalar and vector fields of the builtin options table at `pos` (0: absent) of an options class with
    other than scalar fields, snake_cased, through the generated accessors.  A table whose values turn out all
    scalars is read once per file for each distinct (vtable, body) byte string (`memo`): its values depend on
    nothing else.  Callers get their own dict."""
    cls = _options_class(kind)
    if cls is None or not pos:
        raise ModelFormatError(f"{what}: unknown builtin options type {kind}")
    table = fbr.Table(buf, pos)
    fields = _class_fields(cls)
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


def _options_class(kind: int):
    name = OPTIONS_NAMES.get(kind)
    return getattr(_fb, name, None) if name else None


def _class_fields(cls) -> tuple:
    fields = OPTION_FIELDS.get(cls)
    if fields is None:
        fields = OPTION_FIELDS[cls] = _option_fields(cls)
    return fields


class _Walk:
    """What the C walker (cython_ops.tflite_read) calls back into for one file: options kinds (resolved once per
    kind and parse), options tables with other than scalar fields, sparse tensors and custom ops."""

    def __init__(self, buf):
        self.buf = buf                  # bytes, or a read-only memoryview of the reader's copy of the file
        self.memo = {}                  # see _options
        # options kind -> scalar read spec or None (read by self.options), and the options kinds with fields
        # naming subgraphs (WHILE's cond / body): the schema's, so found once per process (per scalar_fields)
        self.specs, self.flow_kinds = OPTION_READS.setdefault(scalar_fields, ({}, set()))

    def resolve_options(self, kind: int):
        """The kind's scalar read spec (tflite_options.read_spec), None when the generated accessors read it."""
        cls = _options_class(kind)
        if cls is None:
            return None
        fields = _class_fields(cls)
        if any(name.endswith(SUBGRAPH_INDEX) for name, _, _ in fields):
            self.flow_kinds.add(kind)
        reads = scalar_fields(cls, fields)
        return None if reads is None else read_spec(reads)

    def options(self, kind: int, pos: int, what: str) -> dict:
        return _describe_errors(f"{what} options", _options, pos, kind, what, self.buf, self.memo)

    def sparse(self, pos: int, desc: str, shape: tuple, dtype: np.dtype, raw):
        return _describe_errors(f"{desc} sparsity", sparse_values, pos, self.buf, desc, shape, dtype, raw)

    def custom(self, pos: int, op_name: str, what: str):
        generated = _fb.Operator()
        generated.Init(self.buf, pos)
        return _describe_errors(f"{what} options", custom_op, generated, op_name, what, self.buf)


SUBGRAPH_INDEX = "_subgraph_index"       # options fields naming a subgraph end so


def _describe_errors(what: str, fn, *args):
    """Run one read; a flatbuffer access that leaves the file becomes a ModelFormatError naming `what`."""
    try:
        return fn(*args)
    except ModelFormatError:
        raise
    except Exception as exc:
        raise ModelFormatError(f"{what}: malformed flatbuffer data ({type(exc).__name__}: {exc})") from exc


def _operator_codes(model: ModelFile) -> list:
    """(IR op name, version) per operator code."""
    codes = []
    for code, custom, version in model.codes:
        name = OPERATOR_NAMES.get(code, f"BUILTIN_{code}")
        if code == CUSTOM_OPERATOR:
            name = "CUSTOM:" + (custom.decode("utf-8", "replace") if custom else "?")
        codes.append((name, version))
    return codes


def _parse(buf, subgraph_index: int) -> Graph:
    model = ModelFile(buf, subgraph_index)
    codes = _operator_codes(model)
    walk = _Walk(buf)
    # the requested subgraph and every subgraph its control-flow ops reach (WHILE's cond / body), by file index;
    # one dict shared by all of them (Graph.subgraphs).  Subgraphs nothing reaches are not read.
    graphs = {}
    pending = [subgraph_index]
    graph_names_subgraphs = False
    n_sub = model.n_subgraphs
    while pending:
        k = pending.pop()
        if k in graphs:
            continue
        try:
            tensors, ops, inputs, outputs, name, flow = model.subgraph(
                k, codes, DTYPES_BY_CODE, TENSOR_TYPE_NAMES, Tensor, Quantization, Op, walk.sparse,
                walk.resolve_options, walk.options, walk.custom, walk.specs, walk.flow_kinds)
        except (ModelFormatError, FormatError) as exc:
            if k == subgraph_index:
                raise
            raise ModelFormatError(f"subgraph {k}: {exc}") from exc
        graphs[k] = Graph(tensors=tensors, ops=ops, inputs=inputs, outputs=outputs, source="tflite", name=name,
                          subgraphs=graphs)
        for i in flow:
            graph_names_subgraphs = True
            op = ops[i]
            for name, value in op.options.items():
                if name.endswith(SUBGRAPH_INDEX) and isinstance(value, int):
                    if not 0 <= value < n_sub:
                        raise ModelFormatError(f"subgraph {k} {op.describe()}: {name} {value} is outside the "
                                               f"model's {n_sub} subgraphs")
                    pending.append(value)
    graph = graphs[subgraph_index]
    if len(graphs) == 1 and not graph_names_subgraphs:
        graph.subgraphs = {}        # (no control flow: no dict holding the graph itself, which only the GC frees)
    return graph


def from_tflite(model, subgraph: int = 0) -> Graph:
    """Parse and validate a .tflite file (path or bytes) into a `Graph`; raises `ModelFormatError`."""
    buf, file_array = read_model_buffer(model)
    try:
        graph = _parse(buf, subgraph)
    except ModelFormatError:
        raise
    except FormatError as exc:      # the walker's own checks: messages naming the table, tensor or op
        raise ModelFormatError(str(exc)) from None
    except Exception as exc:  # any flatbuffer read that left the file: report, never crash
        raise ModelFormatError(f"malformed TFLite flatbuffer ({type(exc).__name__}: {exc})") from exc
    if BIG_ENDIAN:          # the walker's views of the file hold little-endian values
        for t in graph.tensors:
            if t.data is not None and t.data.dtype != t.dtype:
                t.data = t.data.astype(t.dtype)
    return hold_uint8_as_int8(graph, file_array)
