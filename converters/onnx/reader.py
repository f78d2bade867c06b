"""Read an ONNX model into edgeml's graph IR, validating everything first.

Uses the `onnx` package only (protobuf parsing, attribute access, tensor decoding); never onnxruntime.

Layout: ONNX is NCHW, edgeml's kernels are NHWC.  Each 4-D value may exist in the IR in either order
(`Value.plain` = ONNX order, `Value.nhwc` = channels last); conv and pool ops ask for the NHWC copy and
produce NHWC, layout-neutral ops (element-wise, concat, softmax, mean, pad, transpose) follow their input
with their axes permuted, and a conversion op is emitted only where a value is needed in the other order
(at most once per value; none when the two orders coincide in memory, e.g. one channel or a 1x1 image).

Quantized (QDQ) models: DequantizeLinear -> op -> QuantizeLinear groups are fused at load into one int8 IR
op whose tensors carry the Q/DQ parameters (uint8 tensors become int8 with zero point - 128, exact for
every linear op); what cannot be fused runs in float between a DEQUANTIZE and an ONNX QuantizeLinear,
as onnxruntime does.  Every op carries requant="float": onnxruntime's requantization contract.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from converters.onnx.recurrent import RecurrentOps
from converters.source import read_model_bytes
from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import REQUANT_FLOAT, ROUND_HALF_EVEN, Graph, Op, Quantization, Tensor
from edgeml.numerics import column_scales

try:
    import onnx
    from onnx import helper as _helper
    from onnx import numpy_helper as _nph
except ImportError as exc:  # pragma: no cover - optional extra
    raise ImportError("reading .onnx models needs the 'onnx' package: pip install edgeml[onnx]") from exc

MIN_OPSET, MAX_OPSET = 7, 28
MS_DOMAIN = "com.microsoft"

ONNX_DTYPES = {
    1: np.dtype(np.float32), 2: np.dtype(np.uint8), 3: np.dtype(np.int8), 4: np.dtype(np.uint16),
    5: np.dtype(np.int16), 6: np.dtype(np.int32), 7: np.dtype(np.int64), 9: np.dtype(np.bool_),
    10: np.dtype(np.float16), 11: np.dtype(np.float64), 12: np.dtype(np.uint32), 13: np.dtype(np.uint64),
}
TYPED_FIELD = {1: "float_data", 2: "int32_data", 3: "int32_data", 4: "int32_data", 5: "int32_data",
               6: "int32_data", 7: "int64_data", 9: "int32_data", 10: "int32_data", 11: "double_data",
               12: "uint64_data", 13: "uint64_data"}
MAX_TENSOR_BYTES = 1 << 31
TO_NHWC, TO_NCHW = (0, 2, 3, 1), (0, 3, 1, 2)
FLOAT_MAX = float(np.finfo(np.float32).max)

# fused activation codes of the IR (as in the TFLite schema)
ACT_CODE = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3}


def initializer_array(tp, what: str) -> np.ndarray:
    """A TensorProto as a numpy array, after checking its stored size against its shape and type."""
    if tp.data_location == onnx.TensorProto.EXTERNAL or len(tp.external_data):
        raise ModelFormatError(f"{what} keeps its data in an external file; save the model with "
                               "all tensors inside it (onnx.save_model(..., save_as_external_data=False))")
    if tp.HasField("segment"):
        raise ModelFormatError(f"{what}: segmented tensors are not supported")
    dtype = ONNX_DTYPES.get(tp.data_type)
    if dtype is None:
        raise UnsupportedOpError(f"{what}: tensor type "
                                 f"{onnx.TensorProto.DataType.Name(tp.data_type) if tp.data_type in onnx.TensorProto.DataType.values() else tp.data_type} "
                                 "is not supported")
    dims = [int(d) for d in tp.dims]
    if any(d < 0 for d in dims):
        raise ModelFormatError(f"{what}: negative dimension in shape {dims}")
    count = int(np.prod(dims, dtype=np.float64)) if dims else 1
    if count * dtype.itemsize > MAX_TENSOR_BYTES:
        raise ModelFormatError(f"{what}: shape {dims} is larger than {MAX_TENSOR_BYTES} bytes")
    if len(tp.raw_data):
        if len(tp.raw_data) != count * dtype.itemsize:
            raise ModelFormatError(f"{what}: holds {len(tp.raw_data)} bytes of raw data, shape {dims} of "
                                   f"{dtype} needs {count * dtype.itemsize}")
        return np.frombuffer(tp.raw_data, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(dims)
    field_name = TYPED_FIELD[tp.data_type]
    n = len(getattr(tp, field_name))
    if n != count:
        raise ModelFormatError(f"{what}: holds {n} values in {field_name}, shape {dims} needs {count}")
    try:
        return np.asarray(_nph.to_array(tp)).astype(dtype).reshape(dims)
    except Exception as exc:
        raise ModelFormatError(f"{what}: cannot decode tensor data ({type(exc).__name__}: {exc})") from exc


@dataclass
class Value:
    """One ONNX value during translation: its logical (ONNX-order) shape and where it lives in the IR."""
    name: str
    shape: tuple
    dtype: np.dtype                  # ONNX element type
    plain: Optional[int] = None      # IR tensor in ONNX axis order
    nhwc: Optional[int] = None       # IR tensor in channels-last order (4-D only)
    const: Optional[np.ndarray] = None
    quant: Optional[Quantization] = None   # per-tensor int8 parameters of an integer value (uint8 shifted)
    dq_of: Optional["Value"] = None  # for the float output of a DequantizeLinear of a non-constant
    qconst: Optional[tuple] = None   # for DequantizeLinear of a constant: (int data, scale, zp, axis)
    ort_u8: bool = False             # onnxruntime computes on this integer value as uint8 (see _consumers)

    @property
    def rank(self) -> int:
        return len(self.shape)


@dataclass
class _Fusion:
    q_node: object
    act: str = "NONE"
    clip: Optional[tuple] = None
    skipped: list = field(default_factory=list)


class _Translator(RecurrentOps):
    def __init__(self, model):
        self.model = model
        self.g = model.graph
        self.tensors: list = []
        self.ops: list = []
        self.values: dict = {}
        self.opset = None
        self.ms_opset = None
        self.done = set()
        self.graph_outputs = {o.name for o in self.g.output}
        self.input_tensors: set = set()
        self.output_tensors: set = set()
        self.producer: dict = {}

    # ----- IR building --------------------------------------------------------------------------
    def tensor(self, name: str, shape, dtype, quant=None, data=None) -> int:
        idx = len(self.tensors)
        self.tensors.append(Tensor(index=idx, name=name, shape=tuple(int(d) for d in shape),
                                   dtype=np.dtype(dtype), quant=quant, data=data))
        return idx

    def const_tensor(self, name: str, data: np.ndarray, quant=None) -> int:
        data = np.ascontiguousarray(data)
        return self.tensor(name, data.shape, data.dtype, quant=quant, data=data)

    def op(self, type_: str, inputs: list, outputs: list, **options):
        options.setdefault("requant", REQUANT_FLOAT)         # onnxruntime's arithmetic for every int8 sum
        op = Op(index=len(self.ops), type=type_, version=1, inputs=list(inputs), outputs=list(outputs),
                options=options)
        self.ops.append(op)
        for t in outputs:
            self.producer[t] = op

    def label(self, t: int, q: Quantization):
        """Give an integer IR tensor its quantization, and the data-movement chain that produced it."""
        while t is not None and self.tensors[t].dtype == np.int8 and self.tensors[t].quant is None:
            self.tensors[t].quant = q
            op = self.producer.get(t)
            t = op.inputs[0] if op is not None and op.type in ("RESHAPE", "TRANSPOSE") else None

    def like(self, t: int, name: str, shape=None, dtype=None, quant="same") -> int:
        src = self.tensors[t]
        return self.tensor(name, src.shape if shape is None else shape, src.dtype if dtype is None else dtype,
                           src.quant if quant == "same" else quant)

    # ----- values and layouts -------------------------------------------------------------------
    def value(self, name: str, node_desc: str) -> Value:
        if name not in self.values:
            raise ModelFormatError(f"{node_desc} reads '{name}', which no earlier node, input or "
                                   "initializer produces (the graph must be topologically sorted)")
        return self.values[name]

    def _materialize_dq(self, v: Value, layout: str) -> int:
        src = v.dq_of
        t_in = self.get_nhwc(src) if layout == "nhwc" else self.get_plain(src)
        shape = self.tensors[t_in].shape
        out = self.tensor(v.name if layout == "plain" else v.name + "/nhwc", shape, np.float32)
        self.op("ONNX_DEQUANTIZE_LINEAR", [t_in], [out])
        return out

    def get_plain(self, v: Value) -> int:
        if v.plain is not None:
            return v.plain
        if v.const is not None:
            v.plain = self.const_tensor(v.name, self._ir_const(v.const))
        elif v.dq_of is not None and v.nhwc is None:
            v.plain = self._materialize_dq(v, "plain")
        else:
            v.plain = self._relayout(v.nhwc, v.name, TO_NCHW)
        return v.plain

    def get_nhwc(self, v: Value) -> int:
        if v.rank != 4:
            raise UnsupportedOpError(f"'{v.name}' has shape {list(v.shape)}; a 4-D NCHW tensor is needed here")
        if v.nhwc is not None:
            return v.nhwc
        if v.const is not None:
            v.nhwc = self.const_tensor(v.name + "/nhwc", self._ir_const(v.const).transpose(TO_NHWC))
        elif v.dq_of is not None and v.plain is None:
            v.nhwc = self._materialize_dq(v, "nhwc")
        else:
            v.nhwc = self._relayout(v.plain, v.name + "/nhwc", TO_NHWC)
        return v.nhwc

    def preferred(self, v: Value) -> tuple[int, bool]:
        """(IR tensor, is_nhwc) without creating a conversion when one order already exists."""
        if v.nhwc is not None:
            return v.nhwc, True
        if v.plain is not None:
            return v.plain, False
        if v.dq_of is not None:
            _, nhwc = self.preferred(v.dq_of)
            return (self.get_nhwc(v) if nhwc else self.get_plain(v)), nhwc
        return self.get_plain(v), False

    def _relayout(self, t: int, name: str, perm: tuple) -> int:
        src = self.tensors[t]
        shape = tuple(src.shape[p] for p in perm)
        out = self.like(t, name, shape)
        n, a, b, c = src.shape
        if (a == 1 and b == 1) or c == 1 or (perm == TO_NCHW and a * b == 1) or \
                (perm == TO_NHWC and (a == 1 or b * c == 1)):
            # the two orders hold the same bytes: a plain copy
            self.op("RESHAPE", [t, self.const_tensor(name + "/shape", np.array([-1] + list(shape[1:]), np.int32))],
                    [out])
        else:
            self.op("TRANSPOSE", [t, self.const_tensor(name + "/perm", np.array(perm, np.int32))], [out])
        return out

    def _ir_const(self, data: np.ndarray) -> np.ndarray:
        if data.dtype == np.int64:
            if data.size and (data.max() > 2 ** 31 - 1 or data.min() < -2 ** 31):
                return data
            return data.astype(np.int32)
        if data.dtype == np.float64:
            return data.astype(np.float32)
        return data

    def new_value(self, name: str, shape, dtype, ir: int, nhwc: bool, quant=None, like: Value = None) -> Value:
        v = Value(name=name, shape=tuple(int(d) for d in shape), dtype=np.dtype(dtype), quant=quant)
        v.ort_u8 = like.ort_u8 if like is not None else (quant is not None and name in self.u8_names)
        if nhwc:
            v.nhwc = ir
        else:
            v.plain = ir
        self.values[name] = v
        return v

    def const_value(self, name: str, data: np.ndarray) -> Value:
        v = Value(name=name, shape=tuple(data.shape), dtype=data.dtype, const=data)
        self.values[name] = v
        return v

    # ----- parsing ------------------------------------------------------------------------------
    def parse(self) -> Graph:
        m = self.model
        for imp in m.opset_import:
            dom = imp.domain
            if dom in ("", "ai.onnx"):
                self.opset = int(imp.version)
            elif dom == MS_DOMAIN:
                self.ms_opset = int(imp.version)
        if self.opset is None:
            raise ModelFormatError("the model imports no version of the default ONNX operator set")
        if not MIN_OPSET <= self.opset <= MAX_OPSET:
            raise UnsupportedOpError(f"ONNX opset {self.opset} is not supported (opsets {MIN_OPSET} to "
                                     f"{MAX_OPSET})")
        init_names = set()
        for k, tp in enumerate(self.g.initializer):
            name = tp.name or f"initializer_{k}"
            self.const_value(name, initializer_array(tp, f"initializer {k} '{name}'"))
            init_names.add(name)
        for sp in self.g.sparse_initializer:
            raise UnsupportedOpError(f"sparse initializer '{sp.values.name}' is not supported")
        inputs = []
        for vi in self.g.input:
            if vi.name in init_names:
                continue
            inputs.append(self._graph_input(vi))
        if not inputs:
            raise UnsupportedOpError("the graph declares no inputs (a model of constants only is not supported)")
        self._consumers()
        for k, node in enumerate(self.g.node):
            if k in self.done:
                continue
            self._translate(k, node)
        outputs = [self._graph_output(o) for o in self.g.output]
        if not outputs:
            raise ModelFormatError("the graph declares no outputs")
        for t in self.tensors:
            if t.dtype == np.int8 and t.quant is None:
                # plain integer data (no Q/DQ): the unit scale only satisfies the int8 data-movement checks
                t.quant = Quantization(np.ones(1), np.zeros(1, np.int64))
        return Graph(tensors=self.tensors, ops=self.ops, inputs=inputs, outputs=outputs, source="onnx",
                     name=self.g.name, input_rounding=ROUND_HALF_EVEN)

    def _graph_input(self, vi) -> int:
        tt = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
        if tt is None:
            raise UnsupportedOpError(f"graph input '{vi.name}' is not a tensor")
        dtype = ONNX_DTYPES.get(tt.elem_type)
        users = [n for n in self.g.node if vi.name in n.input]
        lens_only = dtype == np.int32 and bool(users) and all(      # int32: only an RNN's sequence_lens
            n.op_type in ("LSTM", "GRU", "RNN") and n.domain in ("", "ai.onnx") and list(n.input).index(vi.name) == 4
            and list(n.input).count(vi.name) == 1 for n in users)
        lengths_only = dtype == np.int64 and bool(users) and all(   # int64: only ReverseSequence's lengths
            n.op_type == "ReverseSequence" and list(n.input).index(vi.name) == 1 for n in users)
        if dtype not in (np.dtype(np.float32), np.dtype(np.int8), np.dtype(np.uint8)) and not (lens_only or lengths_only):
            raise UnsupportedOpError(f"graph input '{vi.name}' has element type "
                                     f"{onnx.TensorProto.DataType.Name(tt.elem_type) if tt.elem_type in onnx.TensorProto.DataType.values() else tt.elem_type}"
                                     " (float32, int8 and uint8 are supported; int32 as the sequence_lens of LSTM / GRU / "
                                     "RNN, int64 as ReverseSequence's lengths)")
        if not tt.HasField("shape"):
            raise ModelFormatError(f"graph input '{vi.name}' declares no shape")
        shape = []
        for d, dim in enumerate(tt.shape.dim):
            if dim.HasField("dim_value") and dim.dim_value > 0:
                shape.append(int(dim.dim_value))
            elif dim.HasField("dim_value") and dim.dim_value == 0:
                raise UnsupportedOpError(f"graph input '{vi.name}': dimension {d} is 0 (empty tensors are not "
                                         "supported)")
            elif d == 0:
                shape.append(1)       # dynamic batch: fixed to 1 at load, as LiteRT does; resize_input changes it
            else:
                what = f"'{dim.dim_param}'" if dim.HasField("dim_param") else (
                    str(dim.dim_value) if dim.HasField("dim_value") else "unknown")
                raise ModelFormatError(f"graph input '{vi.name}': dimension {d} is {what}; only the batch "
                                       "dimension may be dynamic (fix the others, e.g. with "
                                       "onnx.tools.update_model_dims)")
        ir_dtype = np.int8 if dtype == np.uint8 else dtype
        if dtype == np.uint8:
            # uint8 at the boundary: the IR computes on int8 (x - 128); one sign-bit flip on the way in
            t_in = self.tensor(vi.name, shape, np.uint8)
            t = self.tensor(vi.name + "/int8", shape, np.int8)
            self.op("ONNX_FLIP_SIGN_BIT", [t_in], [t])
            self.new_value(vi.name, shape, dtype, t, False).ort_u8 = True
            self.input_tensors.add(t_in)
            return t_in
        t = self.tensor(vi.name, shape, ir_dtype)
        self.new_value(vi.name, shape, dtype, t, False)
        self.input_tensors.add(t)
        return t

    def _graph_output(self, vo) -> int:
        v = self.value(vo.name, "graph output")
        if v.const is not None:
            if v.const.dtype not in ONNX_DTYPES.values() or v.const.dtype == np.float16:
                raise UnsupportedOpError(f"graph output '{vo.name}' is a constant of type {v.const.dtype}")
            src = self.const_tensor(vo.name + "/value", v.const)
            out = self.tensor(vo.name, v.const.shape, v.const.dtype)
            self.op("ONNX_CONSTANT_OUTPUT", [src], [out])
            self.output_tensors.add(out)
            return out
        t = self.get_plain(v)
        if v.dtype == np.uint8:
            out = self.tensor(vo.name, self.tensors[t].shape, np.uint8)
            self.op("ONNX_FLIP_SIGN_BIT", [t], [out])
        elif t in self.input_tensors or t in self.output_tensors:
            out = self.like(t, vo.name)      # an output must be a tensor of its own
            self.op("RESHAPE", [t, self.const_tensor(vo.name + "/shape",
                                                     np.array([-1] + list(self.tensors[t].shape[1:]), np.int32))],
                    [out])
        else:
            out = t
            self.tensors[t].name = vo.name
        self.output_tensors.add(out)
        return out

    def _consumers(self):
        self.consumers = {}
        for k, node in enumerate(self.g.node):
            for name in node.input:
                if name:
                    self.consumers.setdefault(name, []).append(k)
        # Integer values onnxruntime holds as uint8: uint8 ones, and int8 Q outputs its QDQS8ToU8 transformer
        # converts (a Q whose only consumer is one DQ read by one node, both with the same explicit int8
        # zero point).  The
        # element type decides which QDQ groups it fuses and the arithmetic of some fused kernels.
        self.u8_names = set()
        for node in self.g.node:
            if node.op_type != "QuantizeLinear" or node.domain not in ("", "ai.onnx"):
                continue
            out = node.output[0]
            zp = self._const_input(node, 2)
            if zp is not None and zp.dtype == np.uint8:
                self.u8_names.add(out)
                continue
            cons = self.consumers.get(out, [])
            if out in self.graph_outputs or len(cons) != 1:
                continue
            dq = self.g.node[cons[0]]
            if dq.op_type != "DequantizeLinear" or len(node.input) != 3 or len(dq.input) != 3:
                continue
            # onnxruntime first gives each consumer of a DQ its own copy (EnsureUniqueDQForNodeUnit), so a
            # DQ read by several nodes leaves its Q with several DQ consumers, which stay int8
            if len(self.consumers.get(dq.output[0], [])) + (dq.output[0] in self.graph_outputs) > 1:
                continue
            zq = self._const_input(dq, 2)
            if zp is not None and zq is not None and zp.dtype == zq.dtype == np.int8 and zp.size == zq.size == 1 \
                    and int(zp.reshape(-1)[0]) == int(zq.reshape(-1)[0]):
                self.u8_names.add(out)

    def _const_input(self, node, position: int):
        if len(node.input) <= position or not node.input[position]:
            return None
        name = node.input[position]
        v = self.values.get(name)
        if v is not None and v.const is not None:
            return v.const
        for n in self.g.node:      # a Constant node (onnxruntime folds these into initializers first)
            if n.op_type == "Constant" and n.output[0] == name and n.attribute and n.attribute[0].name == "value":
                return initializer_array(n.attribute[0].t, f"Constant '{name}'")
        return None

    # ----- dispatch -----------------------------------------------------------------------------
    def _translate(self, k: int, node):
        desc = f"node {k} '{node.name or node.output[0] if node.output else k}' ({node.op_type})"
        domain = node.domain
        if domain not in ("", "ai.onnx", MS_DOMAIN):
            raise UnsupportedOpError(f"{desc}: operator domain '{domain}' is not supported (only the default "
                                     f"ONNX domain and {MS_DOMAIN})")
        fn = getattr(self, "op_" + node.op_type, None) if domain in ("", "ai.onnx") else \
            getattr(self, "ms_" + node.op_type, None)
        if fn is None:
            raise UnsupportedOpError(f"{desc}: op {node.op_type} (opset {self.opset}) is not supported; supported "
                                     f"ops: {', '.join(supported_ops())}")
        try:
            attrs = {a.name: _helper.get_attribute_value(a) for a in node.attribute}
        except Exception as exc:
            raise ModelFormatError(f"{desc}: malformed attribute ({type(exc).__name__}: {exc})") from exc
        for a, val in list(attrs.items()):
            if isinstance(val, bytes):
                attrs[a] = val.decode("utf-8", "replace")
        ins = [self.value(n, desc) if n else None for n in node.input]
        if not node.output:
            raise ModelFormatError(f"{desc}: the node has no outputs")
        self.desc = desc
        self.k = k
        fn(node, ins, attrs)

    def unsupported(self, why: str):
        raise UnsupportedOpError(f"{self.desc}: {why}")

    def bad(self, why: str):
        raise ModelFormatError(f"{self.desc}: {why}")

    def const_of(self, v: Optional[Value], what: str) -> np.ndarray:
        if v is None or v.const is None:
            self.unsupported(f"{what} must be a constant (an initializer or Constant node)")
        return v.const

    def need(self, ins, n_min: int, n_max: int = None):
        present = len(ins)
        if present < n_min or (n_max is not None and present > n_max):
            self.bad(f"{present} inputs, expected {n_min}" + (f" to {n_max}" if n_max and n_max != n_min else ""))
        for k in range(n_min):
            if ins[k] is None:
                self.bad(f"required input {k} is missing")

    def float_input(self, v: Value) -> Value:
        if v.dtype != np.float32:
            self.unsupported(f"input '{v.name}' has type {v.dtype}; this op runs on float32 here")
        return v

    # ----- constants and trivial ops ------------------------------------------------------------
    def op_Constant(self, node, ins, attrs):
        if "value" in attrs:
            self.const_value(node.output[0], initializer_array(node.attribute[0].t, self.desc + " value"))
        elif "value_float" in attrs or "value_floats" in attrs:
            self.const_value(node.output[0], np.array(attrs.get("value_float", attrs.get("value_floats")), np.float32))
        elif "value_int" in attrs or "value_ints" in attrs:
            self.const_value(node.output[0], np.array(attrs.get("value_int", attrs.get("value_ints")), np.int64))
        else:
            self.unsupported(f"Constant with attribute(s) {sorted(attrs)}")

    def _alias(self, node, v: Value):
        self.values[node.output[0]] = v

    def op_Identity(self, node, ins, attrs):
        self.need(ins, 1, 1)
        self._alias(node, ins[0])

    def op_Dropout(self, node, ins, attrs):
        if len(node.output) > 1 and node.output[1]:
            self.unsupported("the Dropout mask output is not supported")
        if len(ins) > 2 and ins[2] is not None:
            mode = self.const_of(ins[2], "training_mode")
            if bool(mode.reshape(-1)[0]):
                self.unsupported("Dropout in training mode is not supported (inference only)")
        self._alias(node, ins[0])

    def op_Shape(self, node, ins, attrs):
        shape = np.array(ins[0].shape, np.int64)
        start, end = attrs.get("start", 0), attrs.get("end", None)
        self.const_value(node.output[0], shape[start:end])

    def _fold(self, node, ins, attrs) -> bool:
        """Constant inputs only: evaluate with onnx's reference implementation at load."""
        if not ins or any(v is not None and v.const is None for v in ins):
            return False
        from onnx.reference import ReferenceEvaluator
        feeds, names = {}, []
        for k, v in enumerate(ins):
            nm = f"i{k}" if v is not None else ""
            names.append(nm)
            if v is not None:
                feeds[nm] = v.const
        inputs = [_helper.make_tensor_value_info(n, _helper.np_dtype_to_tensor_dtype(feeds[n].dtype), None)
                  for n in names if n]
        n2 = _helper.make_node(node.op_type, names, [f"o{j}" for j in range(len(node.output))],
                               domain=node.domain, **{a.name: _helper.get_attribute_value(a) for a in node.attribute})
        outs = [_helper.make_tensor_value_info(f"o{j}", onnx.TensorProto.UNDEFINED, None)
                for j in range(len(node.output))]
        g = _helper.make_graph([n2], "fold", inputs, outs)
        mdl = _helper.make_model(g, opset_imports=[_helper.make_opsetid("", self.opset)])
        try:
            res = ReferenceEvaluator(mdl).run(None, feeds)
        except Exception as exc:
            self.bad(f"cannot evaluate on its constant inputs ({type(exc).__name__}: {exc})")
        for name, r in zip(node.output, res):
            if name:
                self.const_value(name, np.asarray(r))
        return True

    # ----- shape ops ----------------------------------------------------------------------------
    def _reshape_to(self, node_out: str, v: Value, shape: tuple, batch_follows: bool):
        if v.const is not None:
            self.const_value(node_out, v.const.reshape(shape))
            return
        if v.dq_of is not None and v.plain is None and v.nhwc is None:
            # reshape the integer value itself; the float view follows lazily
            self._reshape_to(node_out + "/q", v.dq_of, shape, batch_follows)
            dq = Value(name=node_out, shape=tuple(shape), dtype=np.dtype(np.float32),
                       dq_of=self.values[node_out + "/q"])
            self.values[node_out] = dq
            return
        t = self.get_plain(v)
        spec = ([-1] + list(shape[1:])) if batch_follows and len(shape) > 0 else list(shape)
        out = self.like(t, node_out, shape)
        self.op("RESHAPE", [t, self.const_tensor(node_out + "/shape", np.array(spec, np.int32))], [out])
        self.new_value(node_out, shape, v.dtype, out, False, v.quant, like=v)

    def op_Reshape(self, node, ins, attrs):
        self.need(ins, 1, 2)
        x = ins[0]
        if self.opset < 5:
            spec = list(attrs.get("shape", []))
        else:
            spec = [int(d) for d in self.const_of(ins[1], "the shape input").reshape(-1)]
        allowzero = attrs.get("allowzero", 0)
        shape = []
        for d, s in enumerate(spec):
            if s == 0 and not allowzero:
                if d >= x.rank:
                    self.bad(f"shape {spec} copies dimension {d} of a rank-{x.rank} input")
                shape.append(x.shape[d])
            else:
                shape.append(s)
        total = int(np.prod(x.shape, dtype=np.int64))
        if shape.count(-1) > 1:
            self.bad(f"shape {spec} has more than one -1")
        if -1 in shape:
            known = int(np.prod([s for s in shape if s != -1], dtype=np.int64))
            if known == 0 or total % known:
                self.bad(f"cannot reshape {list(x.shape)} to {spec}")
            shape[shape.index(-1)] = total // known
        if any(s < 0 for s in shape) or int(np.prod(shape, dtype=np.int64)) != total:
            self.bad(f"cannot reshape {list(x.shape)} to {spec}")
        batch = bool(spec) and spec[0] in (0, -1) and x.rank > 0 and (spec[0] == -1 or not allowzero)
        self._reshape_to(node.output[0], x, tuple(shape), batch and -1 not in spec[1:])

    def op_Flatten(self, node, ins, attrs):
        self.need(ins, 1, 1)
        x = ins[0]
        axis = attrs.get("axis", 1)
        if axis < 0:
            axis += x.rank
        if not 0 <= axis <= x.rank:
            self.bad(f"axis {attrs.get('axis')} outside rank {x.rank}")
        a = int(np.prod(x.shape[:axis], dtype=np.int64))
        b = int(np.prod(x.shape[axis:], dtype=np.int64))
        self._reshape_to(node.output[0], x, (a, b), axis == 1)

    def _axes_arg(self, ins, attrs, position: int) -> Optional[list]:
        if self.opset >= 13 and len(ins) > position and ins[position] is not None:
            return [int(a) for a in self.const_of(ins[position], "the axes input").reshape(-1)]
        if "axes" in attrs:
            return [int(a) for a in attrs["axes"]]
        return None

    def op_Squeeze(self, node, ins, attrs):
        x = ins[0]
        axes = self._axes_arg(ins, attrs, 1)
        if axes is None:
            axes = [d for d, s in enumerate(x.shape) if s == 1]
        axes = [a + x.rank if a < 0 else a for a in axes]
        if any(not 0 <= a < x.rank or x.shape[a] != 1 for a in axes):
            self.bad(f"cannot squeeze axes {axes} of shape {list(x.shape)}")
        shape = tuple(s for d, s in enumerate(x.shape) if d not in axes)
        self._reshape_to(node.output[0], x, shape, 0 not in axes and x.rank > 0)

    def op_Unsqueeze(self, node, ins, attrs):
        x = ins[0]
        axes = self._axes_arg(ins, attrs, 1)
        if axes is None:
            self.bad("no axes given")
        rank = x.rank + len(axes)
        axes = sorted(a + rank if a < 0 else a for a in axes)
        if any(not 0 <= a < rank for a in axes) or len(set(axes)) != len(axes):
            self.bad(f"axes {axes} invalid for output rank {rank}")
        shape, it = [], iter(x.shape)
        for d in range(rank):
            shape.append(1 if d in axes else next(it))
        self._reshape_to(node.output[0], x, tuple(shape), 0 not in axes and x.rank > 0)

    def op_Transpose(self, node, ins, attrs):
        x = ins[0]
        perm = list(attrs.get("perm", list(range(x.rank))[::-1]))
        if sorted(perm) != list(range(x.rank)):
            self.bad(f"{perm} is not a permutation of {x.rank} axes")
        shape = tuple(x.shape[p] for p in perm)
        if x.const is not None:
            self.const_value(node.output[0], x.const.transpose(perm))
            return
        if x.dq_of is not None and x.plain is None and x.nhwc is None:
            self.op_Transpose(_Renamed(node, x.dq_of.name, node.output[0] + "/q"), [x.dq_of], attrs)
            self.values[node.output[0]] = Value(name=node.output[0], shape=shape, dtype=np.dtype(np.float32),
                                                dq_of=self.values[node.output[0] + "/q"])
            return
        t, is_nhwc = self.preferred(x)
        src_axes = list(TO_NHWC) if is_nhwc else list(range(x.rank))     # IR axis i holds ONNX axis src_axes[i]
        where = {a: i for i, a in enumerate(src_axes)}
        as_plain = [where[p] for p in perm]
        candidates = [(as_plain, False)]
        if len(shape) == 4:
            candidates.append(([as_plain[p] for p in TO_NHWC], True))
        identity = [(p, o) for p, o in candidates if p == sorted(p)]
        ir_perm, out_nhwc = identity[0] if identity else candidates[0]
        ir_shape = tuple(shape[p] for p in TO_NHWC) if out_nhwc else shape
        out = self.like(t, node.output[0], ir_shape)
        if ir_perm == sorted(ir_perm):
            self.op("RESHAPE", [t, self.const_tensor(node.output[0] + "/shape",
                                                     np.array([-1] + list(ir_shape[1:]), np.int32))], [out])
        else:
            self.op("TRANSPOSE", [t, self.const_tensor(node.output[0] + "/perm", np.array(ir_perm, np.int32))],
                    [out])
        self.new_value(node.output[0], shape, x.dtype, out, out_nhwc, x.quant, like=x)

    def op_ReverseSequence(self, node, ins, attrs):
        """The first sequence_lens[b] steps of batch row b in reverse order along time_axis, the rest as they are
        (tf2onnx's reversal of a go_backwards recurrent layer's input).  Data movement only: a DequantizeLinear
        output has its integers moved and the float view follows, exactly DQ then ReverseSequence.  Constant
        lengths that all equal the time dimension become a REVERSE_V2 of that axis (any batch size)."""
        self.need(ins, 2, 2)
        x, lens = ins
        batch_axis, time_axis = attrs.get("batch_axis", 1), attrs.get("time_axis", 0)
        if x.rank < 2 or sorted((batch_axis, time_axis)) != [0, 1]:
            self.bad(f"batch_axis {batch_axis} and time_axis {time_axis} must be 0 and 1 (input rank {x.rank})")
        steps = x.shape[time_axis]
        if lens.dtype != np.int64 or lens.shape != (x.shape[batch_axis],):
            self.bad(f"sequence_lens must be int64 of shape [{x.shape[batch_axis]}], not {lens.dtype} "
                     f"{list(lens.shape)}")
        if lens.const is not None and (np.any(lens.const < 0) or np.any(lens.const > steps)):
            self.bad(f"sequence_lens {lens.const.tolist()} outside [0, {steps}]")
        if self._fold(node, ins, attrs):
            return
        if x.dq_of is not None and x.plain is None and x.nhwc is None:
            self.op_ReverseSequence(_Renamed(node, x.dq_of.name, node.output[0] + "/q"), [x.dq_of, lens], attrs)
            self.values[node.output[0]] = Value(name=node.output[0], shape=x.shape, dtype=np.dtype(np.float32),
                                                dq_of=self.values[node.output[0] + "/q"])
            return
        t = self.get_plain(x)
        out = self.like(t, node.output[0])
        if lens.const is not None and np.all(lens.const == steps):
            self.op("REVERSE_V2", [t, self.const_tensor(node.output[0] + "/axis", np.array([time_axis], np.int32))],
                    [out])
        else:
            self.op("ONNX_REVERSE_SEQUENCE", [t, self.get_plain(lens)], [out], batch_axis=batch_axis,
                    time_axis=time_axis)
        self.new_value(node.output[0], x.shape, x.dtype, out, False, x.quant, like=x)

    def op_Gather(self, node, ins, attrs):
        """Constant indices: folded on constant data (tf2onnx's shape arithmetic); on other data, a scalar index or
        evenly spaced indices along one axis are a STRIDED_SLICE (the axis dropped for a scalar index)."""
        self.need(ins, 2, 2)
        if self._fold(node, ins, attrs):
            return
        x = ins[0]
        rank = x.rank
        axis = attrs.get("axis", 0)
        axis = axis + rank if axis < 0 else axis
        if not 0 <= axis < rank:
            self.bad(f"axis {attrs.get('axis')} outside rank {rank}")
        idx = self.const_of(ins[1], "the indices input").astype(np.int64)
        dim = x.shape[axis]
        if idx.size == 0 or np.any(idx < -dim) or np.any(idx >= dim):
            self.bad(f"indices {idx.tolist()} outside [-{dim}, {dim}) or empty")
        flat = np.where(idx < 0, idx + dim, idx).reshape(-1)
        step = int(flat[1] - flat[0]) if flat.size > 1 else 1
        if idx.ndim > 1 or step == 0 or np.any(np.diff(flat) != step):
            self.unsupported(f"indices {idx.tolist()} (a scalar or evenly spaced 1-D indices are supported)")
        x = self.float_input(x)
        begin, end, stride = [0] * rank, list(x.shape), [1] * rank
        begin[axis], stride[axis] = int(flat[0]), step
        end[axis] = int(flat[-1]) + (1 if step > 0 else -1)
        shape = list(x.shape)
        shape[axis:axis + 1] = [] if idx.ndim == 0 else [flat.size]
        t = self.get_plain(x)
        out = self.like(t, node.output[0], tuple(shape))
        self.op("STRIDED_SLICE", [t] + [self.const_tensor(f"{node.output[0]}/{what}", np.array(v, np.int32))
                                        for what, v in (("begin", begin), ("end", end), ("strides", stride))],
                [out], begin_mask=0, end_mask=(1 << axis) if end[axis] < 0 else 0,
                shrink_axis_mask=(1 << axis) if idx.ndim == 0 else 0, ellipsis_mask=0, new_axis_mask=0)
        self.new_value(node.output[0], tuple(shape), x.dtype, out, False)

    def op_Expand(self, node, ins, attrs):
        self.need(ins, 2, 2)
        if not self._fold(node, ins, attrs):
            self.unsupported("Expand of a non-constant input (only constant inputs are folded)")

    def op_Concat(self, node, ins, attrs):
        if not ins or any(v is None for v in ins):
            self.bad("missing inputs")
        if self._fold(node, ins, attrs):
            return
        rank = ins[0].rank
        axis = attrs.get("axis", None)
        if axis is None:
            self.bad("no axis attribute")
        axis = axis + rank if axis < 0 else axis
        if not 0 <= axis < rank:
            self.bad(f"axis {attrs['axis']} outside rank {rank}")
        for v in ins:
            if v.rank != rank or any(v.shape[d] != ins[0].shape[d] for d in range(rank) if d != axis):
                self.bad(f"shapes {[list(v.shape) for v in ins]} do not concatenate on axis {axis}")
        q = self._fused_concat(node, ins, axis)
        if q:
            return
        for v in ins:
            self.float_input(v)
        shape = list(ins[0].shape)
        shape[axis] = sum(v.shape[axis] for v in ins)
        use_nhwc = rank == 4 and any(self.preferred_is_nhwc(v) for v in ins)
        ts = [self.get_nhwc(v) if use_nhwc else self.get_plain(v) for v in ins]
        ir_axis = TO_NHWC.index(axis) if use_nhwc else axis
        ir_shape = [shape[p] for p in TO_NHWC] if use_nhwc else shape
        out = self.tensor(node.output[0], ir_shape, np.float32)
        self.op("CONCATENATION", ts, [out], axis=ir_axis, fused_activation_function=0)
        self.new_value(node.output[0], shape, np.float32, out, use_nhwc)

    def preferred_is_nhwc(self, v: Value) -> bool:
        if v.nhwc is not None:
            return True
        if v.dq_of is not None and v.plain is None:
            return self.preferred_is_nhwc(v.dq_of)
        return False

    def _fused_concat(self, node, ins, axis) -> bool:
        """DQ inputs with the output's exact Q parameters: concatenate the integers (exact)."""
        fu = self.fusion(node.output[0], allow_act=False)
        if fu is None or not all(v.dq_of is not None for v in ins):
            return False
        yq = self.q_params(fu.q_node)
        if yq is None or any(not _same_q(v.dq_of.quant, yq[0]) for v in ins):
            return False
        rank = ins[0].rank
        use_nhwc = rank == 4 and any(self.preferred_is_nhwc(v.dq_of) for v in ins)
        ts = [self.get_nhwc(v.dq_of) if use_nhwc else self.get_plain(v.dq_of) for v in ins]
        shape = list(ins[0].shape)
        shape[axis] = sum(v.shape[axis] for v in ins)
        ir_shape = [shape[p] for p in TO_NHWC] if use_nhwc else shape
        out = self.tensor(fu.q_node.output[0], ir_shape, np.int8, yq[0])
        self.op("CONCATENATION", ts, [out], axis=TO_NHWC.index(axis) if use_nhwc else axis,
                fused_activation_function=0)
        self.new_value(fu.q_node.output[0], shape, yq[1], out, use_nhwc, yq[0])
        self.finish_fusion(fu)
        return True

    def op_Pad(self, node, ins, attrs):
        x = ins[0]
        mode = attrs.get("mode", "constant")
        if mode != "constant":
            self.unsupported(f"pad mode '{mode}' (only 'constant')")
        if self.opset < 11:
            pads = list(attrs.get("pads", []))
            value = float(attrs.get("value", 0.0))
        else:
            pads = [int(p) for p in self.const_of(ins[1], "the pads input").reshape(-1)]
            value = 0.0
            if len(ins) > 2 and ins[2] is not None:
                cv = self.const_of(ins[2], "the constant value")
                value = float(cv.reshape(-1)[0]) if cv.size else 0.0
            if len(ins) > 3 and ins[3] is not None:
                axes = [int(a) for a in self.const_of(ins[3], "the axes input").reshape(-1)]
                full = [0] * (2 * x.rank)
                for j, a in enumerate(axes):
                    a = a + x.rank if a < 0 else a
                    full[a], full[a + x.rank] = pads[j], pads[j + len(axes)]
                pads = full
        if len(pads) != 2 * x.rank:
            self.bad(f"{len(pads)} pads for rank {x.rank}")
        if any(p < 0 for p in pads):
            self.unsupported("negative pads (cropping) are not supported")
        pairs = [(pads[d], pads[d + x.rank]) for d in range(x.rank)]
        shape = tuple(s + a + b for s, (a, b) in zip(x.shape, pairs))
        is_int = x.dq_of is None and x.dtype in (np.int8, np.uint8)
        if not is_int and x.dq_of is None:
            self.float_input(x)
        t, nhwc = self.preferred(x)
        ir_pairs = [pairs[p] for p in TO_NHWC] if nhwc else pairs
        ir_shape = tuple(shape[p] for p in TO_NHWC) if nhwc else shape
        out = self.like(t, node.output[0], ir_shape)
        inputs = [t, self.const_tensor(node.output[0] + "/pads", np.array(ir_pairs, np.int32))]
        if is_int:
            # the constant is given as an integer of the tensor's type; the IR holds uint8 as int8 (x - 128)
            cval = np.array(int(value) - (128 if x.dtype == np.uint8 else 0), np.int8)
            inputs.append(self.const_tensor(node.output[0] + "/value", cval.reshape(())))
            self.op("PADV2", inputs, [out])
        elif value != 0.0:
            inputs.append(self.const_tensor(node.output[0] + "/value", np.array(value, np.float32).reshape(())))
            self.op("PADV2", inputs, [out])
        else:
            self.op("PAD", inputs, [out])
        self.new_value(node.output[0], shape, x.dtype, out, nhwc, x.quant, like=x)

    # ----- element-wise -------------------------------------------------------------------------
    def _binary(self, node, ins, ir_type: str):
        self.need(ins, 2, 2)
        a, b = ins
        if self._fold(node, ins, {}):
            return
        if ir_type == "ADD" and self._fused_add(node, a, b):
            return
        for v in (a, b):
            if v.dq_of is None:
                self.float_input(v)
        rank = max(a.rank, b.rank)
        out_shape = tuple(np.broadcast_shapes(a.shape, b.shape))
        use_nhwc = rank == 4 and any(self.preferred_is_nhwc(v) for v in (a, b)) and \
            all(v.rank == 4 or v.const is not None for v in (a, b))
        ts = []
        for v in (a, b):
            if use_nhwc:
                if v.const is not None and v.rank < 4:
                    c = v.const.reshape((1,) * (4 - v.rank) + v.const.shape)
                    ts.append(self.const_tensor(v.name + "/nhwc", self._ir_const(c).transpose(TO_NHWC)))
                else:
                    ts.append(self.get_nhwc(v))
            else:
                ts.append(self.get_plain(v))
        ts = [self._as_float32(t) for t in ts]
        ir_shape = tuple(out_shape[p] for p in TO_NHWC) if use_nhwc else out_shape
        act, last = self.float_activation(node.output[0])
        out = self.tensor(last, ir_shape, np.float32)
        self.op(ir_type, ts, [out], fused_activation_function=ACT_CODE[act])
        self.new_value(last, out_shape, np.float32, out, use_nhwc)

    def _as_float32(self, t: int) -> int:
        tt = self.tensors[t]
        if tt.dtype != np.float32:
            if tt.data is not None and tt.dtype.kind == "f":
                return self.const_tensor(tt.name + "/f32", tt.data.astype(np.float32))
            self.unsupported(f"{tt.describe()} has type {tt.dtype}; float32 is needed")
        return t

    def op_Add(self, node, ins, attrs):
        self._binary(node, ins, "ADD")

    def op_Sub(self, node, ins, attrs):
        self._binary(node, ins, "SUB")

    def op_Mul(self, node, ins, attrs):
        self._binary(node, ins, "MUL")

    def float_activation(self, name: str) -> tuple[str, str]:
        """A following Relu / Clip(0,6) / Clip(-1,1) the IR op can fuse: (activation, last output name)."""
        cons = self.consumers.get(name, [])
        if name in self.graph_outputs or len(cons) != 1:
            return "NONE", name
        k = cons[0]
        n = self.g.node[k]
        act = self._activation_of(n)
        if act is None:
            return "NONE", name
        self.done.add(k)
        return act, n.output[0]

    def _activation_of(self, n) -> Optional[str]:
        if n.domain not in ("", "ai.onnx"):
            return None
        if n.op_type == "Relu":
            return "RELU"
        if n.op_type == "Clip":
            lo, hi = self._clip_bounds(n)
            if lo is None:
                return None
            for act, rng in (("RELU", (0.0, FLOAT_MAX)), ("RELU6", (0.0, 6.0)), ("RELU_N1_TO_1", (-1.0, 1.0))):
                if (lo, hi) == rng:
                    return act
        return None

    def _clip_bounds(self, n):
        """Constant (min, max) of a Clip node as float32 values, or (None, None)."""
        lo, hi = -FLOAT_MAX, FLOAT_MAX
        if self.opset < 11:
            attrs = {a.name: _helper.get_attribute_value(a) for a in n.attribute}
            lo, hi = float(attrs.get("min", lo)), float(attrs.get("max", hi))
        else:
            for pos in (1, 2):
                if len(n.input) > pos and n.input[pos]:
                    v = self.values.get(n.input[pos])
                    if v is None or v.const is None or v.const.size != 1:
                        return None, None
                    val = float(np.float32(v.const.reshape(-1)[0]))
                    if pos == 1:
                        lo = val
                    else:
                        hi = val
        lo, hi = float(np.float32(lo)), float(np.float32(hi))
        return min(lo, hi), hi          # min > max sets everything to max

    def _unary(self, node, ins, ir_type: str, **options):
        x = ins[0]
        if x.dq_of is None:
            self.float_input(x)
        t, nhwc = self.preferred(x)
        out = self.tensor(node.output[0], self.tensors[t].shape, np.float32)
        self.op(ir_type, [t], [out], **options)
        self.new_value(node.output[0], x.shape, np.float32, out, nhwc)

    def op_Relu(self, node, ins, attrs):
        if self._fused_unary(node, ins):
            return
        self._unary(node, ins, "RELU")

    def op_Sigmoid(self, node, ins, attrs):
        self._unary(node, ins, "LOGISTIC")

    def op_Tanh(self, node, ins, attrs):
        self._unary(node, ins, "TANH")

    def op_LeakyRelu(self, node, ins, attrs):
        self._unary(node, ins, "LEAKY_RELU", alpha=float(attrs.get("alpha", 0.01)))

    def op_HardSwish(self, node, ins, attrs):
        self._unary(node, ins, "HARD_SWISH")

    def op_Clip(self, node, ins, attrs):
        if self._fused_unary(node, ins):
            return
        lo, hi = self._clip_bounds(node)
        if lo is None:
            self.unsupported("Clip bounds must be constant scalars")
        act = self._activation_of(node)
        if act is not None:
            self._unary(node, ins, act)
        else:
            self._unary(node, ins, "ONNX_CLIP", clip=(lo, hi))

    def op_Softmax(self, node, ins, attrs):
        x = ins[0]
        axis = attrs.get("axis", 1 if self.opset < 13 else -1)
        axis = axis + x.rank if axis < 0 else axis
        if not 0 <= axis < x.rank:
            self.bad(f"axis {attrs.get('axis')} outside rank {x.rank}")
        fu = self.fusion(node.output[0], allow_act=False) if x.dq_of is not None and x.dq_of.quant else None
        yq = self.q_params(fu.q_node) if fu else None
        if yq is not None and x.dq_of.ort_u8 == (fu.q_node.output[0] in self.u8_names):
            # onnxruntime fuses DQ -> Softmax -> Q of one integer type into com.microsoft QLinearSoftmax
            self._softmax(x.dq_of, axis, fu.q_node.output[0], "ONNX_QLINEAR_SOFTMAX", yq, unsigned=x.dq_of.ort_u8)
            self.finish_fusion(fu)
            return
        if x.dq_of is None:
            self.float_input(x)
        self._softmax(x, axis, node.output[0], "SOFTMAX", None, beta=1.0)

    def _softmax(self, x: Value, axis: int, name: str, ir_type: str, yq, **options):
        """Softmax over `axis` with the IR's last-axis op: reshaped (opset < 13 coerces to 2-D) or transposed
        around it when the axis is not last in the IR layout."""
        dtype, quant = (np.float32, None) if yq is None else (np.int8, yq[0])
        onnx_dtype = np.float32 if yq is None else yq[1]
        if self.opset < 13 and axis != x.rank - 1:
            t = self.get_plain(x)
            rows = int(np.prod(x.shape[:axis], dtype=np.int64))
            shape2 = (rows, int(np.prod(x.shape[axis:], dtype=np.int64)))
            flat = self.like(t, name + "/2d", shape2)
            self.op("RESHAPE", [t, self.const_tensor(name + "/s2", np.array(shape2, np.int32))], [flat])
            sm = self.tensor(name + "/sm", shape2, dtype, quant)
            self.op(ir_type, [self._as_float32(flat) if yq is None else flat], [sm], **options)
            out = self.tensor(name, x.shape, dtype, quant)
            self.op("RESHAPE", [sm, self.const_tensor(name + "/s", np.array(x.shape, np.int32))], [out])
            self.new_value(name, x.shape, onnx_dtype, out, False, quant)
            return
        t, nhwc = self.preferred(x)
        if yq is None:
            t = self._as_float32(t)
        ir_axis = TO_NHWC.index(axis) if nhwc else axis
        src = self.tensors[t]
        if ir_axis != x.rank - 1:
            perm = [d for d in range(x.rank) if d != ir_axis] + [ir_axis]
            inv = [perm.index(d) for d in range(x.rank)]
            mid = self.like(t, name + "/t", tuple(src.shape[p] for p in perm))
            self.op("TRANSPOSE", [t, self.const_tensor(name + "/p", np.array(perm, np.int32))], [mid])
            sm = self.tensor(name + "/sm", self.tensors[mid].shape, dtype, quant)
            self.op(ir_type, [mid], [sm], **options)
            out = self.tensor(name, src.shape, dtype, quant)
            self.op("TRANSPOSE", [sm, self.const_tensor(name + "/pi", np.array(inv, np.int32))], [out])
        else:
            out = self.tensor(name, src.shape, dtype, quant)
            self.op(ir_type, [t], [out], **options)
        self.new_value(name, x.shape, onnx_dtype, out, nhwc, quant)

    def op_ReduceMean(self, node, ins, attrs):
        x = ins[0]
        if x.dq_of is None:
            self.float_input(x)
        axes = self._axes_arg(ins, attrs, 1) if self.opset >= 18 else (
            [int(a) for a in attrs["axes"]] if "axes" in attrs else None)
        if axes is None or not axes:
            if attrs.get("noop_with_empty_axes", 0):
                self._alias(node, x)
                return
            axes = list(range(x.rank))
        axes = sorted({a + x.rank if a < 0 else a for a in axes})
        if any(not 0 <= a < x.rank for a in axes):
            self.bad(f"axes {axes} outside rank {x.rank}")
        keep = bool(attrs.get("keepdims", 1))
        shape = tuple((1 if d in axes else s) for d, s in enumerate(x.shape)) if keep else \
            tuple(s for d, s in enumerate(x.shape) if d not in axes)
        t, nhwc = self.preferred(x)
        if nhwc and not keep:
            kept = [a for a in TO_NHWC if a not in axes]
            if kept != sorted(kept):
                t, nhwc = self.get_plain(x), False
        ir_axes = [TO_NHWC.index(a) for a in axes] if nhwc else axes
        out_nhwc = nhwc and keep
        ir_shape = tuple(shape[p] for p in TO_NHWC) if out_nhwc else shape
        out = self.tensor(node.output[0], ir_shape, np.float32)
        self.op("MEAN", [t, self.const_tensor(node.output[0] + "/axes", np.array(ir_axes, np.int32))], [out],
                keep_dims=keep)
        self.new_value(node.output[0], shape, np.float32, out, out_nhwc)

    # ----- conv, pool, dense --------------------------------------------------------------------
    def _conv_geometry(self, x: Value, wshape, group: int, attrs) -> tuple:
        """(NCHW output shape, IR conv options) of a 2-D convolution, its weights checked against the input."""
        oc, icg, kh, kw = wshape
        ic = x.shape[1]
        if group <= 0 or ic != icg * group or oc % group:
            self.bad(f"weights {list(wshape)} with group {group} do not fit {ic} input channels")
        strides, dil, pads = self._spatial(attrs, x.shape, (kh, kw), "conv")
        oh = (x.shape[2] + pads[0] + pads[2] - (kh - 1) * dil[0] - 1) // strides[0] + 1
        ow = (x.shape[3] + pads[1] + pads[3] - (kw - 1) * dil[1] - 1) // strides[1] + 1
        if oh <= 0 or ow <= 0:
            self.bad(f"output would be {oh}x{ow}")
        options = dict(stride_h=strides[0], stride_w=strides[1], dilation_h_factor=dil[0],
                       dilation_w_factor=dil[1], padding=1, explicit_padding=pads)
        return (x.shape[0], oc, oh, ow), options

    def _spatial(self, attrs, x_shape, k_shape, what: str):
        """(strides, dilations, (top, left, bottom, right)) of a 2-D conv / pool, auto_pad resolved."""
        strides = list(attrs.get("strides", [1, 1]))
        dil = list(attrs.get("dilations", [1, 1]))
        if len(strides) != 2 or len(dil) != 2 or any(s <= 0 for s in strides + dil):
            self.bad(f"strides {strides} / dilations {dil} must be two positive values")
        auto = attrs.get("auto_pad", "NOTSET")
        ih, iw = x_shape[2], x_shape[3]
        if auto in ("NOTSET", ""):
            pads = list(attrs.get("pads", [0, 0, 0, 0]))
            if len(pads) != 4 or any(p < 0 for p in pads):
                self.bad(f"pads {pads} must be four non-negative values")
            return strides, dil, (pads[0], pads[1], pads[2], pads[3])
        if auto == "VALID":
            return strides, dil, (0, 0, 0, 0)
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            p = []
            for size, k, s, d in ((ih, k_shape[0], strides[0], dil[0]), (iw, k_shape[1], strides[1], dil[1])):
                out = -(-size // s)
                total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
                small = total // 2
                p.append((small, total - small) if auto == "SAME_UPPER" else (total - small, small))
            return strides, dil, (p[0][0], p[1][0], p[0][1], p[1][1])
        self.bad(f"auto_pad '{auto}' is not valid")

    def op_Conv(self, node, ins, attrs):
        self.need(ins, 2, 3)
        x, w = ins[0], ins[1]
        b = ins[2] if len(ins) > 2 else None
        if x.rank != 4:
            self.unsupported(f"only 2-D convolution (4-D input) is supported, input has shape {list(x.shape)}")
        if w.const is None and w.qconst is None:
            self.unsupported("the weights must be constant")
        wshape = w.shape
        if len(wshape) != 4:
            self.bad(f"weights of shape {list(wshape)} for a 4-D input")
        group = attrs.get("group", 1)
        ks = attrs.get("kernel_shape", list(wshape[2:]))
        if list(ks) != list(wshape[2:]):
            self.bad(f"kernel_shape {list(ks)} differs from the weights' {list(wshape[2:])}")
        oc, icg, kh, kw = wshape
        out_shape, options = self._conv_geometry(x, wshape, group, attrs)
        if self._conv_as_onnxruntime_float(node, x, w, b, group, out_shape, options):
            return
        if self._fused_conv(node, x, w, b, group, out_shape, options, attrs):
            return
        wf = self.float_const(w, "weights")
        bf = None if b is None else self.float_const(b, "bias").reshape(-1)
        if bf is not None and bf.size != oc:
            self.bad(f"bias has {bf.size} entries for {oc} output channels")
        if x.dq_of is None:
            self.float_input(x)
        xt = self._as_float32(self.get_nhwc(x))
        act, last = self.float_activation(node.output[0])
        options["fused_activation_function"] = ACT_CODE[act]
        out = self._conv_ops(last, xt, wf, bf, group, out_shape, options, np.float32, None, None)
        self.new_value(last, out_shape, np.float32, out, True)

    def _conv_ops(self, name, xt, wdata, bias, group, out_shape, options, dtype, wquant, bias_quant):
        """CONV_2D / DEPTHWISE_CONV_2D (or per-group convs + CONCATENATION) on NHWC `xt`; returns the output."""
        n, oc, oh, ow = out_shape
        ic = self.tensors[xt].shape[3]
        oq = options.pop("out_quant", None)
        out = self.tensor(name, (n, oh, ow, oc), dtype, oq)

        def wq_slice(sl):
            if wquant is None or not wquant.per_axis:
                return wquant
            return Quantization(wquant.scale[sl], wquant.zero_point[sl], wquant.axis)

        def bias_t(sl, nm):
            if bias is None:
                return -1
            bq = None if bias_quant is None or bias_quant.scale.size == 1 else \
                Quantization(bias_quant.scale[sl], bias_quant.zero_point[sl], 0)
            return self.const_tensor(nm, bias[sl], bq or bias_quant)

        if group == 1:
            wt = self.const_tensor(name + "/weights", wdata.transpose(0, 2, 3, 1), wquant)
            self.op("CONV_2D", [xt, wt, bias_t(slice(None), name + "/bias")], [out], **options)
            return out
        if group == ic and oc % ic == 0:
            wq = None if wquant is None else Quantization(wquant.scale, wquant.zero_point, 3)
            wt = self.const_tensor(name + "/weights", wdata.transpose(1, 2, 3, 0), wq)
            self.op("DEPTHWISE_CONV_2D", [xt, wt, bias_t(slice(None), name + "/bias")], [out],
                    depth_multiplier=oc // ic, **options)
            return out
        # grouped convolution: split the channels, one CONV_2D per group, concatenate
        icg, ocg = ic // group, oc // group
        if group > 14:
            self.unsupported(f"grouped convolution with {group} groups (at most 14, or depthwise)")
        src = self.tensors[xt]
        pieces = [self.tensor(f"{name}/in{g}", src.shape[:3] + (icg,), src.dtype, src.quant) for g in range(group)]
        self.op("SPLIT", [self.const_tensor(name + "/split_axis", np.array(3, np.int32)), xt], pieces)
        outs = []
        for g in range(group):
            sl = slice(g * ocg, (g + 1) * ocg)
            og = self.tensor(f"{name}/out{g}", (n, oh, ow, ocg), dtype, oq)
            wt = self.const_tensor(f"{name}/weights{g}", wdata[sl].transpose(0, 2, 3, 1), wq_slice(sl))
            self.op("CONV_2D", [pieces[g], wt, bias_t(sl, f"{name}/bias{g}")], [og], **options)
            outs.append(og)
        self.op("CONCATENATION", outs, [out], axis=3, fused_activation_function=0)
        return out

    def float_const(self, v: Value, what: str) -> np.ndarray:
        data = self.const_of(v, what)
        if data.dtype.kind != "f":
            self.unsupported(f"{what} of type {data.dtype} in a float op")
        return data.astype(np.float32)

    def _pool_common(self, node, ins, attrs, is_max: bool, global_: bool):
        x = ins[0]
        if x.rank != 4:
            self.unsupported(f"only 2-D pooling (4-D input) is supported, input has shape {list(x.shape)}")
        if global_:
            kh, kw = x.shape[2], x.shape[3]
            strides, pads = [1, 1], (0, 0, 0, 0)
        else:
            ks = list(attrs.get("kernel_shape", []))
            if len(ks) != 2 or any(k <= 0 for k in ks):
                self.bad(f"kernel_shape {ks} must be two positive values")
            kh, kw = ks
            if any(d != 1 for d in attrs.get("dilations", [1, 1])):
                self.unsupported("pooling with dilations is not supported")
            if len(node.output) > 1 and node.output[1]:
                self.unsupported("the MaxPool indices output is not supported")
            if attrs.get("storage_order", 0):
                self.unsupported("storage_order 1 is not supported")
            strides, _, pads = self._spatial(attrs, x.shape, (kh, kw), "pool")
        ceil = attrs.get("ceil_mode", 0)
        sizes = []
        pads = list(pads)
        for d, (size, k, s) in enumerate(((x.shape[2], kh, strides[0]), (x.shape[3], kw, strides[1]))):
            span = size + pads[d] + pads[d + 2] - k
            o = (-(-span // s) if ceil else span // s) + 1
            if ceil and (o - 1) * s >= size + pads[d]:
                o -= 1          # the last window must start inside the image or its leading pad
            if o <= 0:
                self.bad(f"output size {o} on spatial axis {d}")
            # ceil_mode: widen the trailing pad so the floor formula gives o (windows still clip to the image)
            pads[d + 2] = max(pads[d + 2], (o - 1) * s + k - size - pads[d])
            sizes.append(o)
        include_pad = not is_max and attrs.get("count_include_pad", 0) and any(pads)
        out_shape = (x.shape[0], x.shape[1], sizes[0], sizes[1])
        options = dict(filter_height=kh, filter_width=kw, stride_h=strides[0], stride_w=strides[1], padding=1,
                       explicit_padding=tuple(pads), fused_activation_function=0)
        if is_max and self._fused_passthrough(node, x, "MAX_POOL_2D", out_shape, options):
            return
        if is_max and x.dq_of is None and x.dtype in (np.int8, np.uint8) and x.const is None:
            # max of integers (uint8 held as x - 128 keeps its order); the unit scale only labels the tensor
            if x.quant is None:
                self.quantized(x, Quantization(np.ones(1), np.zeros(1, np.int64)))
            xt = self.get_nhwc(x)
            out = self.tensor(node.output[0], (out_shape[0], out_shape[2], out_shape[3], out_shape[1]), np.int8,
                              self.tensors[xt].quant)
            self.op("MAX_POOL_2D", [xt], [out], **options)
            self.new_value(node.output[0], out_shape, x.dtype, out, True, self.tensors[xt].quant, like=x)
            return
        if x.dq_of is None:
            self.float_input(x)
        xt = self._as_float32(self.get_nhwc(x))
        if include_pad:
            # count_include_pad=1: pad the image with zeros first so the padding counts; only the part of a
            # ceil_mode window past the padded image stays uncounted, as in the ONNX reference
            orig = self._spatial(attrs, x.shape, (kh, kw), "pool")[2]
            src = self.tensors[xt]
            padded_shape = (src.shape[0], src.shape[1] + orig[0] + orig[2], src.shape[2] + orig[1] + orig[3],
                            src.shape[3])
            padded = self.tensor(node.output[0] + "/padded", padded_shape, np.float32)
            pairs = [(0, 0), (orig[0], orig[2]), (orig[1], orig[3]), (0, 0)]
            self.op("PAD", [xt, self.const_tensor(node.output[0] + "/pads", np.array(pairs, np.int32))], [padded])
            xt = padded
            options["explicit_padding"] = (0, 0, pads[2] - orig[2], pads[3] - orig[3])
        act, last = self.float_activation(node.output[0])
        options["fused_activation_function"] = ACT_CODE[act]
        out = self.tensor(last, (out_shape[0], out_shape[2], out_shape[3], out_shape[1]), np.float32)
        self.op("MAX_POOL_2D" if is_max else "AVERAGE_POOL_2D", [xt], [out], **options)
        self.new_value(last, out_shape, np.float32, out, True)

    def op_AveragePool(self, node, ins, attrs):
        self._pool_common(node, ins, attrs, False, False)

    def op_MaxPool(self, node, ins, attrs):
        self._pool_common(node, ins, attrs, True, False)

    def op_GlobalAveragePool(self, node, ins, attrs):
        self._pool_common(node, ins, attrs, False, True)

    def op_GlobalMaxPool(self, node, ins, attrs):
        self._pool_common(node, ins, attrs, True, True)

    def op_MatMul(self, node, ins, attrs):
        self.need(ins, 2, 2)
        a, b = ins
        if self._fold(node, ins, attrs):
            return
        if b.const is None and b.qconst is None:
            self.unsupported("the second MatMul input must be constant (a weight matrix)")
        if len(b.shape) != 2 or a.rank < 1 or a.shape[-1] != b.shape[0]:
            self.unsupported(f"MatMul of {list(a.shape)} by {list(b.shape)} (a 2-D constant right operand "
                             "is supported)")
        if self._fused_dense(node, a, b, None, False, 1.0):
            return
        self._dense(node.output[0], a, self.float_const(b, "weights").T, None)

    def op_Gemm(self, node, ins, attrs):
        self.need(ins, 2, 3)
        a, b = ins[0], ins[1]
        c = ins[2] if len(ins) > 2 else None
        if self._fold(node, ins, attrs):
            return
        alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
        ta, tb = attrs.get("transA", 0), attrs.get("transB", 0)
        if b.const is None and b.qconst is None:
            self.unsupported("the Gemm B input must be constant (a weight matrix)")
        if a.rank != 2 or len(b.shape) != 2:
            self.bad(f"Gemm needs 2-D inputs, got {list(a.shape)} and {list(b.shape)}")
        if ta:
            a = self._transposed_2d(a)
        n = b.shape[0] if tb else b.shape[1]
        if a.shape[1] != (b.shape[1] if tb else b.shape[0]):
            self.bad(f"Gemm of {list(a.shape)} by {list(b.shape)} (transB={tb}) does not fit")
        if self._fused_dense(node, a, b, c, bool(tb), alpha, beta):
            return
        w = self.float_const(b, "B")
        w = (w if tb else w.T) * np.float32(alpha)
        bias = None
        if c is not None:
            cf = self.float_const(c, "C") * np.float32(beta)
            if cf.size in (1, n) and (cf.ndim < 2 or cf.shape[0] == 1):
                bias = np.broadcast_to(cf.reshape(-1), (n,)).astype(np.float32)
            else:
                out = self._dense(node.output[0] + "/mm", a, w, None, fuse=False)
                self._binary(_Renamed(node, None, node.output[0], [out.name, c.name]), [out, c], "ADD")
                return
        self._dense(node.output[0], a, w, bias)

    def _transposed_2d(self, a: Value) -> Value:
        t = self.get_plain(a)
        out = self.like(t, a.name + "/T", a.shape[::-1])
        self.op("TRANSPOSE", [t, self.const_tensor(a.name + "/Tperm", np.array([1, 0], np.int32))], [out])
        return self.new_value(a.name + "/T", a.shape[::-1], a.dtype, out, False, a.quant)

    def _dense(self, name: str, a: Value, w_nk: np.ndarray, bias, fuse: bool = True) -> Value:
        if a.dq_of is None:
            self.float_input(a)
        t = self._as_float32(self.get_plain(a))
        act, last = self.float_activation(name) if fuse else ("NONE", name)
        out_shape = tuple(a.shape[:-1]) + (w_nk.shape[0],)
        out = self.tensor(last, out_shape, np.float32)
        bt = -1 if bias is None else self.const_tensor(name + "/bias", bias)
        self.op("FULLY_CONNECTED", [t, self.const_tensor(name + "/weights", np.ascontiguousarray(w_nk)), bt], [out],
                keep_num_dims=a.rank != 2, fused_activation_function=ACT_CODE[act])
        return self.new_value(last, out_shape, np.float32, out, False)

    # ----- quantization -------------------------------------------------------------------------
    def q_params(self, qnode) -> Optional[tuple]:
        """(Quantization in the IR's int8 sense, ONNX dtype) of a per-tensor QuantizeLinear, or None."""
        ins = [self.values.get(n) if n else None for n in qnode.input]
        if len(ins) < 2 or ins[1] is None or ins[1].const is None:
            return None
        scale = ins[1].const
        zp = ins[2].const if len(ins) > 2 and ins[2] is not None else None
        if zp is not None and zp.dtype not in (np.int8, np.uint8):
            return None
        if zp is None:
            attrs = {a.name: _helper.get_attribute_value(a) for a in qnode.attribute}
            odt = attrs.get("output_dtype", 0)
            if odt not in (0, 2):
                return None
            zp = np.zeros(1, np.uint8)
        if scale.size != 1 or zp.size != 1 or scale.dtype != np.float32:
            return None
        s = float(scale.reshape(-1)[0])
        if not (s > 0 and np.isfinite(s)):
            raise ModelFormatError(f"{qnode.op_type} '{qnode.name}': scale {s} must be positive and finite")
        z = int(zp.reshape(-1)[0]) - (128 if zp.dtype == np.uint8 else 0)
        return Quantization(np.array([s], np.float64), np.array([z], np.int64)), zp.dtype

    def fusion(self, out_name: str, allow_act: bool = True) -> Optional[_Fusion]:
        """The QuantizeLinear (optionally after a Relu / Clip) that alone consumes `out_name`."""
        cur, act, clip, skipped = out_name, "NONE", None, []
        for _ in range(2):
            cons = self.consumers.get(cur, [])
            if cur in self.graph_outputs or len(cons) != 1:
                return None
            k = cons[0]
            n = self.g.node[k]
            if n.domain not in ("", "ai.onnx"):
                return None
            if n.op_type == "QuantizeLinear":
                if self.q_params(n) is None or n.input[0] != cur:
                    return None
                return _Fusion(n, act, clip, skipped + [k])
            if not allow_act or act != "NONE" or n.op_type not in ("Relu", "Clip"):
                return None
            if n.op_type == "Relu":
                act = "RELU"
            else:
                lo, hi = self._clip_bounds(n)
                if lo is None:
                    return None
                act, clip = "CLIP", (lo, hi)
            skipped.append(k)
            cur = n.output[0]
        return None

    def finish_fusion(self, fu: _Fusion):
        self.done.update(fu.skipped)

    def _weight_q(self, w: Value, axis_expected: int, n_out: int):
        """(int8 weights, Quantization) of a DequantizeLinear'd constant, or None when it is not usable."""
        if w.qconst is None:
            return None
        data, scale, zp, axis = w.qconst
        if data.dtype not in (np.int8, np.uint8) or scale.dtype != np.float32:
            return None
        if scale.size > 1 and (axis != axis_expected or scale.size != n_out):
            return None
        zp = np.broadcast_to(zp.reshape(-1) if zp is not None else np.zeros(1, data.dtype), scale.reshape(-1).shape)
        if data.dtype == np.uint8:
            data = (data.astype(np.int16) - 128).astype(np.int8)
            zp = zp.astype(np.int64) - 128
        if np.any(zp != 0):
            self.unsupported("quantized weights with a non-zero zero point are not supported yet")
        return data, Quantization(scale.reshape(-1).astype(np.float64), np.zeros(scale.size, np.int64),
                                  axis_expected)

    def _bias_q(self, b: Optional[Value], n_out: int):
        if b is None:
            return True, None
        if b.qconst is None:
            return False, None
        data, scale, zp, _ = b.qconst
        if data.dtype != np.int32 or (zp is not None and np.any(zp != 0)) or data.size != n_out:
            return False, None
        return True, data.reshape(-1).astype(np.int32)

    def _act_options(self, fu: _Fusion) -> dict:
        if fu.act == "RELU":
            return dict(fused_activation_function=ACT_CODE["RELU"])
        if fu.act == "CLIP":
            return dict(fused_activation_function=0, onnx_clip=fu.clip)
        return dict(fused_activation_function=0)

    def _fused_conv(self, node, x, w, b, group, out_shape, options, attrs) -> bool:
        if x.dq_of is None or x.dq_of.quant is None:
            return False
        fu = self.fusion(node.output[0])
        if fu is None:
            return False
        if w.qconst is not None and w.qconst[2] is not None and np.any(w.qconst[2].astype(np.int64)
                                                                   - (128 if w.qconst[0].dtype == np.uint8 else 0)):
            return self._fused_conv_asymmetric(node, x, w, b, fu, attrs)
        wq = self._weight_q(w, 0, out_shape[1])
        ok, bias = self._bias_q(b, out_shape[1])
        yq = self.q_params(fu.q_node)
        if wq is None or not ok or yq is None:
            return False
        xt = self.get_nhwc(x.dq_of)
        options = dict(options, out_quant=yq[0], **self._act_options(fu))
        out = self._conv_ops(fu.q_node.output[0], xt, wq[0], bias, group, out_shape, options, np.int8, wq[1], None)
        self.new_value(fu.q_node.output[0], out_shape, yq[1], out, True, yq[0])
        self.finish_fusion(fu)
        return True

    def _conv_as_onnxruntime_float(self, node, x, w, b, group, out_shape, options) -> bool:
        """A QDQ Conv onnxruntime leaves unfused on x86 (its activations are int8, not uint8): run it as it
        does, a float convolution summed in MLAS's order between DequantizeLinear and QuantizeLinear."""
        depthwise = group == x.shape[1] and group > 1 and w.shape[1] == 1
        if x.dq_of is None or x.dq_of.quant is None or (group != 1 and not depthwise) or w.qconst is None:
            return False
        fu = self.fusion(node.output[0])
        yq = self.q_params(fu.q_node) if fu else None
        if yq is None or (x.dq_of.ort_u8 and fu.q_node.output[0] in self.u8_names):
            return False
        if fu.act == "CLIP" or (b is not None and b.const is None):
            return False
        oc, icg, kh, kw = w.shape
        wf = w.const.astype(np.float32).reshape(oc, icg * kh * kw).T      # [K][OC], k in ONNX (c, kh, kw) order
        if depthwise:
            options = dict(options, depth_multiplier=oc // group)
        xt = self.get_nhwc(x)
        conv_out = self.tensor(node.output[0], (out_shape[0], out_shape[2], out_shape[3], oc), np.float32)
        bt = -1 if b is None else self.const_tensor(node.output[0] + "/bias", b.const.astype(np.float32).reshape(-1))
        opts = {k: v for k, v in options.items() if k != "fused_activation_function"}
        self.op("ONNX_CONV_MLAS", [xt, self.const_tensor(node.output[0] + "/weights", np.ascontiguousarray(wf)), bt],
                [conv_out], kernel_h=kh, kernel_w=kw, **opts)
        # a Relu onnxruntime keeps (Q zero point above the minimum) is the clamp at the zero point
        out = self.tensor(fu.q_node.output[0], self.tensors[conv_out].shape, np.int8, yq[0])
        self.op("ONNX_QUANTIZE_LINEAR", [conv_out], [out], relu=fu.act == "RELU")
        self.new_value(fu.q_node.output[0], out_shape, yq[1], out, True, yq[0])
        self.finish_fusion(fu)
        return True

    def _fused_conv_asymmetric(self, node, x, w, b, fu, attrs) -> bool:
        """QDQ Conv whose weights have non-zero zero points: the exact integer kernel (em_onnx_conv_integer)."""
        data, scale, zp, axis = w.qconst
        ok, bias = self._bias_q(b, w.shape[0])
        yq = self.q_params(fu.q_node)
        if not ok or yq is None or fu.act == "CLIP" or scale.size not in (1, w.shape[0]) or \
                (scale.size > 1 and axis != 0):
            return False
        zv = Value(name=w.name + "/zp", shape=zp.shape, dtype=zp.dtype, const=zp.reshape(-1))
        w_diff = self._int_weights(Value(name=w.name, shape=data.shape, dtype=data.dtype, const=data), zv, 0,
                                   "weights")
        renamed = _Renamed(node, node.input[0], fu.q_node.output[0])
        out, out_shape = self._qlinear_conv_common(renamed, x.dq_of, w_diff, scale.reshape(-1), bias, yq[0], attrs,
                                                   np.int8, int(x.dq_of.quant.zero_point[0]),
                                                   relu=fu.act == "RELU")
        self.new_value(fu.q_node.output[0], out_shape, yq[1], out, True, yq[0])
        self.finish_fusion(fu)
        return True

    def _fused_dense(self, node, a, b, c, b_is_nk: bool, alpha: float, beta: float = 1.0) -> bool:
        """DQ(x) -> MatMul/Gemm(DQ(w)) [-> Add(DQ(int32 bias))] [-> Relu] -> Q as one int8 FULLY_CONNECTED."""
        if a.dq_of is None or a.dq_of.quant is None or alpha != 1.0:
            return False
        n_out = b.shape[0] if b_is_nk else b.shape[1]
        wq = self._weight_q(b, 0 if b_is_nk else 1, n_out)
        if wq is None:
            return False
        skipped = []
        bias_v = c if beta == 1.0 else None
        if c is not None and beta != 1.0:
            return False
        out_name = node.output[0]
        if bias_v is None:
            cons = self.consumers.get(out_name, [])
            if len(cons) == 1 and out_name not in self.graph_outputs:
                n = self.g.node[cons[0]]
                if n.op_type == "Add" and n.domain in ("", "ai.onnx"):
                    other = n.input[1] if n.input[0] == out_name else n.input[0]
                    ov = self.values.get(other)
                    if ov is not None and ov.qconst is not None:
                        bias_v, out_name = ov, n.output[0]
                        skipped.append(cons[0])
        ok, bias = self._bias_q(bias_v, n_out)
        fu = self.fusion(out_name)
        if not ok or fu is None:
            return False
        yq = self.q_params(fu.q_node)
        if yq is None:
            return False
        data = wq[0] if b_is_nk else wq[0].T
        wquant = Quantization(wq[1].scale, wq[1].zero_point, 0)
        t = self.get_plain(a.dq_of)
        out_shape = tuple(a.shape[:-1]) + (n_out,)
        out = self.tensor(fu.q_node.output[0], out_shape, np.int8, yq[0])
        bt = -1 if bias is None else self.const_tensor(out_name + "/bias", bias)
        opts = self._act_options(fu)
        self.op("FULLY_CONNECTED", [t, self.const_tensor(out_name + "/weights", np.ascontiguousarray(data), wquant), bt],
                [out], keep_num_dims=a.rank != 2, **opts)
        self.new_value(fu.q_node.output[0], out_shape, yq[1], out, False, yq[0])
        self.done.update(skipped)
        self.finish_fusion(fu)
        return True

    def _fused_add(self, node, a: Value, b: Value) -> bool:
        """DQ(a) + DQ(b) -> Q of one integer type: onnxruntime's QLinearAdd (a Relu before the Q only when
        the Q's zero point is the type's minimum, where onnxruntime drops it)."""
        if a.dq_of is None or b.dq_of is None or a.dq_of.quant is None or b.dq_of.quant is None:
            return False
        fu = self.fusion(node.output[0])
        yq = self.q_params(fu.q_node) if fu else None
        if yq is None or fu.act == "CLIP" or (fu.act == "RELU" and int(yq[0].zero_point[0]) != -128):
            return False
        y_u8 = fu.q_node.output[0] in self.u8_names
        if not a.dq_of.ort_u8 == b.dq_of.ort_u8 == y_u8:
            return False
        na, nb = int(np.prod(a.shape, dtype=np.int64)), int(np.prod(b.shape, dtype=np.int64))
        if a.shape != b.shape and na != 1 and nb != 1:
            return False
        out_shape = a.shape if na >= nb else b.shape
        if a.shape == b.shape and a.rank == 4 and any(self.preferred_is_nhwc(v.dq_of) for v in (a, b)):
            ta, tb, nhwc = self.get_nhwc(a.dq_of), self.get_nhwc(b.dq_of), True
        else:
            big = a if na >= nb else b
            nhwc = self.preferred_is_nhwc(big.dq_of) and big.rank == 4
            ta = (self.get_nhwc if nhwc and na >= nb else self.get_plain)(a.dq_of)
            tb = (self.get_nhwc if nhwc and nb > na else self.get_plain)(b.dq_of)
        ir_shape = tuple(out_shape[p] for p in TO_NHWC) if nhwc else out_shape
        out = self.tensor(fu.q_node.output[0], ir_shape, np.int8, yq[0])
        self.op("ONNX_QLINEAR_ADD", [ta, tb], [out], unsigned=(a.dq_of.ort_u8, b.dq_of.ort_u8, y_u8))
        self.new_value(fu.q_node.output[0], out_shape, yq[1], out, nhwc, yq[0])
        self.finish_fusion(fu)
        return True

    def _fused_unary(self, node, ins) -> bool:
        """DQ -> Relu/Clip -> Q with equal parameters: a clamp of the integers (exact)."""
        x = ins[0]
        if x.dq_of is None or x.dq_of.quant is None:
            return False
        cons = self.consumers.get(node.output[0], [])
        if node.output[0] in self.graph_outputs or len(cons) != 1:
            return False
        qn = self.g.node[cons[0]]
        if qn.op_type != "QuantizeLinear" or qn.domain not in ("", "ai.onnx"):
            return False
        yq = self.q_params(qn)
        if yq is None or not _same_q(x.dq_of.quant, yq[0]):
            return False
        if node.op_type == "Relu":
            lo, hi = 0.0, FLOAT_MAX
        else:
            lo, hi = self._clip_bounds(node)
            if lo is None:
                return False
        t, nhwc = self.preferred(x.dq_of)
        out = self.tensor(qn.output[0], self.tensors[t].shape, np.int8, yq[0])
        self.op("ONNX_CLIP", [t], [out], clip=(lo, hi))
        self.new_value(qn.output[0], x.shape, yq[1], out, nhwc, yq[0])
        self.done.add(cons[0])
        return True

    def _fused_passthrough(self, node, x, ir_type, out_shape, options) -> bool:
        """Max pooling on integers with equal Q/DQ parameters (order-preserving, so exact)."""
        if x.dq_of is None or x.dq_of.quant is None:
            return False
        fu = self.fusion(node.output[0], allow_act=False)
        if fu is None:
            return False
        yq = self.q_params(fu.q_node)
        if yq is None or not _same_q(x.dq_of.quant, yq[0]):
            return False
        xt = self.get_nhwc(x.dq_of)
        out = self.tensor(fu.q_node.output[0], (out_shape[0], out_shape[2], out_shape[3], out_shape[1]),
                          np.int8, yq[0])
        self.op(ir_type, [xt], [out], **options)
        self.new_value(fu.q_node.output[0], out_shape, yq[1], out, True, yq[0])
        self.finish_fusion(fu)
        return True

    def op_DequantizeLinear(self, node, ins, attrs):
        self.need(ins, 2, 3)
        x, s = ins[0], ins[1]
        zp = ins[2] if len(ins) > 2 else None
        scale = self.const_of(s, "the scale")
        zpa = None if zp is None else self.const_of(zp, "the zero point")
        if scale.dtype != np.float32:
            self.unsupported(f"scale of type {scale.dtype} (float32 only)")
        if zpa is not None and zpa.dtype != x.dtype:
            self.bad(f"zero point type {zpa.dtype} differs from input type {x.dtype}")
        if x.dtype not in (np.int8, np.uint8, np.int32):
            self.unsupported(f"dequantizing {x.dtype} (int8, uint8, int32 supported)")
        axis = attrs.get("axis", 1)
        if attrs.get("block_size", 0):
            self.unsupported("blocked quantization is not supported")
        if scale.size > 1:
            axis = axis + x.rank if axis < 0 else axis
            if not 0 <= axis < x.rank or x.shape[axis] != scale.size or scale.ndim != 1:
                self.bad(f"{scale.size} scales along axis {attrs.get('axis', 1)} of shape {list(x.shape)}")
        if zpa is not None and zpa.size != scale.size:
            self.bad(f"{scale.size} scales but {zpa.size} zero points")
        if not np.all(np.isfinite(scale)):
            self.bad("scale must be finite")
        if x.const is not None:
            shape = [1] * x.rank
            if scale.size > 1:
                shape[axis] = -1
            z = 0 if zpa is None else zpa.astype(np.float32).reshape(shape)
            sc = scale.reshape(shape) if scale.size > 1 else scale.reshape(())
            folded = ((x.const.astype(np.float32) - z) * sc).astype(np.float32)
            v = self.const_value(node.output[0], folded)
            v.qconst = (x.const, scale.reshape(-1), None if zpa is None else zpa.reshape(-1), axis)
            return
        if scale.size != 1:
            self.unsupported("per-axis dequantization of a non-constant tensor")
        if x.dtype == np.int32:
            self.unsupported("dequantizing a non-constant int32 tensor")
        z = 0 if zpa is None else int(zpa.reshape(-1)[0])
        q = Quantization(np.array([float(scale.reshape(-1)[0])], np.float64),
                         np.array([z - (128 if x.dtype == np.uint8 else 0)], np.int64))
        if x.quant is None:
            x.quant = q
            for t in (x.plain, x.nhwc):
                if t is not None:
                    self.label(t, q)
        elif not _same_q(x.quant, q):
            # the integer tensor is read with other parameters: give it a re-labelled copy
            t, nhwc = self.preferred(x)
            relabel = self.like(t, x.name + f"/as{self.k}", quant=q)
            self.op("RESHAPE", [t, self.const_tensor(x.name + f"/as{self.k}/s",
                                                     np.array([-1] + list(self.tensors[t].shape[1:]), np.int32))],
                    [relabel])
            x = Value(name=x.name + f"/as{self.k}", shape=x.shape, dtype=x.dtype, quant=q,
                      plain=None if nhwc else relabel, nhwc=relabel if nhwc else None, ort_u8=x.ort_u8)
        self.values[node.output[0]] = Value(name=node.output[0], shape=x.shape, dtype=np.dtype(np.float32),
                                            dq_of=x)

    def _fold_quantize(self, node, x: Value, attrs) -> bool:
        """QuantizeLinear of a constant (weights fake-quantized in the graph): evaluated at load, exactly as
        the op defines it (float32 division, ties to even, saturation), per tensor or per axis."""
        scale = self.const_of(self.values.get(node.input[1]), "the scale")
        zp = self._const_input(node, 2)
        if zp is None:
            zp = np.zeros(1, np.uint8)
        if zp.dtype not in (np.int8, np.uint8) or scale.dtype != np.float32 or attrs.get("block_size", 0):
            return False
        shape = [1] * x.rank
        axis = attrs.get("axis", 1)
        if scale.size > 1:
            axis = axis + x.rank if axis < 0 else axis
            if not 0 <= axis < x.rank or x.shape[axis] != scale.size:
                self.bad(f"{scale.size} scales along axis {attrs.get('axis', 1)} of shape {list(x.shape)}")
            shape[axis] = -1
        info = np.iinfo(zp.dtype)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            r = np.rint(x.const.astype(np.float32) / scale.reshape(shape if scale.size > 1 else ()))
        r = np.nan_to_num(r, nan=float(info.min), posinf=float(info.max), neginf=float(info.min))
        q = np.clip(r.astype(np.float64) + zp.astype(np.float64).reshape(shape if zp.size > 1 else ()),
                    info.min, info.max).astype(zp.dtype)
        self.const_value(node.output[0], q)
        return True

    def op_QuantizeLinear(self, node, ins, attrs):
        self.need(ins, 2, 3)
        x = ins[0]
        if x.const is not None and self._fold_quantize(node, x, attrs):
            return
        q = self.q_params(node)
        if q is None:
            self.unsupported("only per-tensor quantization to int8 / uint8 with constant float32 scale is "
                             "supported for QuantizeLinear")
        if attrs.get("saturate", 1) != 1 or attrs.get("precision", 0) not in (0, 1) or attrs.get("block_size", 0):
            self.unsupported("saturate=0, a precision other than float32 and blocked quantization are not supported")
        if x.const is not None:
            self.unsupported("quantizing a constant at run time")
        if x.dq_of is not None and x.plain is None and x.nhwc is None and _same_q(x.dq_of.quant, q[0]):
            self._alias(node, x.dq_of)        # Q(DQ(x)) with the same parameters is x
            return
        self.float_input(x)
        t, nhwc = self.preferred(x)
        out = self.tensor(node.output[0], self.tensors[t].shape, np.int8, q[0])
        self.op("ONNX_QUANTIZE_LINEAR", [t], [out])
        self.new_value(node.output[0], x.shape, q[1], out, nhwc, q[0])


    # ----- QOperator models -----------------------------------------------------------------------
    def _scalar_q(self, scale_v, zp_v, dtype, what: str) -> Quantization:
        scale = self.const_of(scale_v, f"the {what} scale")
        zp = np.zeros(1, dtype) if zp_v is None else self.const_of(zp_v, f"the {what} zero point")
        if scale.size != 1 or zp.size != 1:
            self.unsupported(f"per-axis quantization of {what}")
        if scale.dtype != np.float32:
            self.unsupported(f"{what} scale of type {scale.dtype} (float32 only)")
        if not (float(scale.reshape(-1)[0]) > 0 and np.isfinite(scale).all()):
            self.bad(f"{what} scale must be positive and finite")
        if zp.dtype != dtype:
            self.bad(f"{what} zero point type {zp.dtype} differs from {dtype}")
        return Quantization(np.array([float(scale.reshape(-1)[0])], np.float64),
                            np.array([int(zp.reshape(-1)[0]) - (128 if dtype == np.uint8 else 0)], np.int64))

    def quantized(self, v: Value, q: Quantization) -> Value:
        """The integer value `v` read with parameters q (labelled in place, or a re-labelled copy)."""
        if v.dtype not in (np.int8, np.uint8) or v.const is not None:
            self.unsupported(f"'{v.name}' must be a non-constant int8 / uint8 tensor, got {v.dtype}")
        if v.quant is None:
            v.quant = q
            for t in (v.plain, v.nhwc):
                if t is not None:
                    self.label(t, q)
            return v
        if _same_q(v.quant, q):
            return v
        t, nhwc = self.preferred(v)
        name = v.name + f"/as{self.k}"
        relabel = self.like(t, name, quant=q)
        self.op("RESHAPE", [t, self.const_tensor(name + "/s", np.array([-1] + list(self.tensors[t].shape[1:]),
                                                                         np.int32))], [relabel])
        return Value(name=name, shape=v.shape, dtype=v.dtype, quant=q, plain=None if nhwc else relabel,
                     nhwc=relabel if nhwc else None, ort_u8=v.ort_u8)

    def _int_weights(self, w: Value, zp_v: Optional[Value], axis: int, what: str):
        """(weights as int16 w - w_zp, or None; int8 weights and per-channel zero-zp flag) of a constant."""
        data = self.const_of(w, what)
        if data.dtype not in (np.int8, np.uint8):
            self.unsupported(f"{what} of type {data.dtype} (int8 / uint8)")
        n = data.shape[axis]
        zp = np.zeros(1, data.dtype) if zp_v is None else self.const_of(zp_v, f"{what} zero point")
        if zp.dtype != data.dtype or zp.size not in (1, n):
            self.bad(f"{what} zero point of type {zp.dtype} and size {zp.size} for {n} channels")
        shape = [1] * data.ndim
        if zp.size > 1:
            shape[axis] = n
        diff = data.astype(np.int16) - zp.astype(np.int16).reshape(shape)
        return diff

    def _qlinear_conv_common(self, node, x: Value, w_diff: np.ndarray, ws: np.ndarray, bias, yq, attrs,
                             out_dtype, x_zp_ir: int, zp_tensor: int = -1, relu: bool = False):
        oc, icg, kh, kw = w_diff.shape
        group = attrs.get("group", 1)
        if x.rank != 4:
            self.bad(f"weights {list(w_diff.shape)} with group {group} do not fit input {list(x.shape)}")
        out_shape, options = self._conv_geometry(x, w_diff.shape, group, attrs)
        xt = self.get_nhwc(x)
        name = node.output[0]
        symmetric = out_dtype == np.int8 and zp_tensor < 0 and np.all(w_diff >= -128) and np.all(w_diff <= 127)
        if symmetric:
            wq = Quantization(np.broadcast_to(ws.astype(np.float64), (oc,)).copy() if ws.size > 1 else
                              ws.astype(np.float64).reshape(-1), np.zeros(ws.size, np.int64), 0)
            options["out_quant"] = yq
            options["fused_activation_function"] = ACT_CODE["RELU" if relu else "NONE"]
            out = self._conv_ops(name, xt, w_diff.astype(np.int8), bias, group, out_shape, options, np.int8, wq, None)
        else:
            out = self.tensor(name, (out_shape[0], out_shape[2], out_shape[3], oc), out_dtype,
                              yq if out_dtype == np.int8 else None)
            extra = {}
            if out_dtype == np.int8:
                extra["requant_scales"] = column_scales(x.quant.scale[0], np.broadcast_to(ws, (oc,)), yq.scale[0])
            bt = -1 if bias is None else self.const_tensor(name + "/bias", bias.astype(np.int32))
            self.op("ONNX_CONV_INTEGER", [xt, self.const_tensor(name + "/weights",
                                                                np.ascontiguousarray(w_diff.transpose(0, 2, 3, 1))),
                                          bt, zp_tensor], [out], group=group, x_zero_point=x_zp_ir, kernel_h=kh,
                    kernel_w=kw, relu=relu, **options, **extra)
        return out, out_shape

    def op_QLinearConv(self, node, ins, attrs):
        self.need(ins, 8, 9)
        x, xs, xz, w, wsv, wz, ys, yz = ins[:8]
        b = ins[8] if len(ins) > 8 else None
        q = self._scalar_q(xs, xz, x.dtype, "input")
        x = self.quantized(x, q)
        yq = self._scalar_q(ys, yz, self.const_of(yz, "output zero point").dtype if yz is not None else np.uint8,
                            "output")
        w_diff = self._int_weights(w, wz, 0, "weights")
        ws = self.const_of(wsv, "weight scale").astype(np.float32).reshape(-1)
        if ws.size not in (1, w_diff.shape[0]):
            self.bad(f"{ws.size} weight scales for {w_diff.shape[0]} output channels")
        bias = None if b is None else self.const_of(b, "bias").reshape(-1)
        if bias is not None and (bias.dtype != np.int32 or bias.size != w_diff.shape[0]):
            self.bad("bias must hold one int32 per output channel")
        out, out_shape = self._qlinear_conv_common(node, x, w_diff, ws, bias, yq, attrs, np.int8,
                                                   int(q.zero_point[0]))
        ydt = np.uint8 if yz is None else self.const_of(yz, "output zero point").dtype
        self.new_value(node.output[0], out_shape, ydt, out, True, yq)

    def op_ConvInteger(self, node, ins, attrs):
        self.need(ins, 2, 4)
        x, w = ins[0], ins[1]
        xz = ins[2] if len(ins) > 2 else None
        wz = ins[3] if len(ins) > 3 else None
        if x.dtype not in (np.int8, np.uint8) or x.const is not None:
            self.unsupported("the input must be a non-constant int8 / uint8 tensor")
        zp = 0 if xz is None else int(self.const_of(xz, "input zero point").reshape(-1)[0])
        zp_ir = zp - (128 if x.dtype == np.uint8 else 0)
        w_diff = self._int_weights(w, wz, 0, "weights")
        out, out_shape = self._qlinear_conv_common(node, x, w_diff, np.ones(1, np.float32), None, None, attrs,
                                                   np.int32, zp_ir)
        self.new_value(node.output[0], out_shape, np.int32, out, True)

    def _integer_dense(self, node, a: Value, b: Value, bz, yq, out_dtype, zp_ir: int, zp_tensor: int = -1,
                       bscale=None):
        if b.const is None or b.rank != 2:
            self.unsupported("the second input must be a constant 2-D matrix")
        if a.rank < 1 or a.shape[-1] != b.shape[0]:
            self.bad(f"cannot multiply {list(a.shape)} by {list(b.shape)}")
        diff = self._int_weights(b, bz, 1, "B")          # [K][N]
        n_out = diff.shape[1]
        t = self.get_plain(a)
        out_shape = tuple(a.shape[:-1]) + (n_out,)
        name = node.output[0]
        symmetric = out_dtype == np.int8 and zp_tensor < 0 and np.all(diff >= -128) and np.all(diff <= 127)
        if symmetric:
            wq = Quantization(np.broadcast_to(bscale.astype(np.float64), (n_out,)).copy() if bscale.size > 1 else
                              bscale.astype(np.float64).reshape(-1), np.zeros(bscale.size, np.int64), 0)
            out = self.tensor(name, out_shape, np.int8, yq)
            self.op("FULLY_CONNECTED", [t, self.const_tensor(name + "/weights", np.ascontiguousarray(diff.T.astype(np.int8)), wq), -1],
                    [out], keep_num_dims=a.rank != 2, fused_activation_function=0)
            return out, out_shape
        extra = {}
        if out_dtype == np.int8:
            extra["requant_scales"] = column_scales(a.quant.scale[0], np.broadcast_to(bscale, (n_out,)), yq.scale[0])
        out = self.tensor(name, out_shape, out_dtype, yq)
        w4 = np.ascontiguousarray(diff.T.reshape(n_out, 1, 1, diff.shape[0]))
        self.op("ONNX_CONV_INTEGER", [t, self.const_tensor(name + "/weights", w4), -1, zp_tensor], [out], dense=True,
                x_zero_point=zp_ir, **extra)
        return out, out_shape

    def op_QLinearMatMul(self, node, ins, attrs):
        self.need(ins, 8, 8)
        a, as_, az, b, bs, bz, ys, yz = ins
        q = self._scalar_q(as_, az, a.dtype, "A")
        a = self.quantized(a, q)
        ydt = self.const_of(yz, "output zero point").dtype
        yq = self._scalar_q(ys, yz, ydt, "output")
        bscale = self.const_of(bs, "B scale").astype(np.float32).reshape(-1)
        if bscale.size not in (1, b.shape[-1]):
            self.bad(f"{bscale.size} B scales for {b.shape[-1]} columns")
        out, out_shape = self._integer_dense(node, a, b, bz, yq, np.int8, int(q.zero_point[0]), bscale=bscale)
        self.new_value(node.output[0], out_shape, ydt, out, False, yq)

    def op_MatMulInteger(self, node, ins, attrs):
        self.need(ins, 2, 4)
        a, b = ins[0], ins[1]
        az = ins[2] if len(ins) > 2 else None
        bz = ins[3] if len(ins) > 3 else None
        if a.dtype not in (np.int8, np.uint8) or a.const is not None:
            self.unsupported("A must be a non-constant int8 / uint8 tensor")
        zp_ir, zp_tensor = 0, -1
        if az is not None:
            if az.const is not None:
                if az.const.size != 1:
                    self.unsupported("per-row A zero points")
                zp_ir = int(az.const.reshape(-1)[0]) - (128 if a.dtype == np.uint8 else 0)
            else:
                if az.rank > 1 or int(np.prod(az.shape)) != 1 or az.dtype != a.dtype:
                    self.unsupported("A zero point must be one value of A's type")
                zp_tensor = self.get_plain(az)      # computed at run time (DynamicQuantizeLinear)
        elif a.dtype == np.uint8:
            zp_ir = -128
        out, out_shape = self._integer_dense(node, a, b, bz, None, np.int32, zp_ir, zp_tensor)
        self.new_value(node.output[0], out_shape, np.int32, out, False)

    def op_DynamicQuantizeLinear(self, node, ins, attrs):
        self.need(ins, 1, 1)
        x = self.float_input(ins[0])
        t, nhwc = self.preferred(x)
        outs = [self.tensor(node.output[0], self.tensors[t].shape, np.int8),
                self.tensor(node.output[1] if len(node.output) > 1 else node.output[0] + "/scale", (), np.float32),
                self.tensor(node.output[2] if len(node.output) > 2 else node.output[0] + "/zp", (), np.int8)]
        self.op("ONNX_DYNAMIC_QUANTIZE_LINEAR", [t], outs)
        self.new_value(node.output[0], x.shape, np.uint8, outs[0], nhwc)
        for k, (dt, shape) in enumerate(((np.float32, ()), (np.uint8, ())), start=1):
            if len(node.output) > k and node.output[k]:
                self.new_value(node.output[k], shape, dt, outs[k], False)

    # com.microsoft quantized ops (onnxruntime's contrib domain)
    def ms_QLinearAdd(self, node, ins, attrs):
        self.need(ins, 7, 8)
        a, as_, az, b, bs, bz, ys = ins[:7]
        yz = ins[7] if len(ins) > 7 else None
        dt = a.dtype
        qa, qb = self._scalar_q(as_, az, dt, "A"), self._scalar_q(bs, bz, b.dtype, "B")
        yq = self._scalar_q(ys, yz, dt, "C")
        if b.const is not None:
            bv = Value(name=b.name + "/q", shape=b.shape, dtype=b.dtype, quant=qb)
            bv.plain = self.const_tensor(b.name + "/q", (b.const.astype(np.int16) - (128 if dt == np.uint8 else 0)).astype(np.int8), qb)
            b = bv
        else:
            b = self.quantized(b, qb)
        a = self.quantized(a, qa)
        na, nb = int(np.prod(a.shape, dtype=np.int64)), int(np.prod(b.shape, dtype=np.int64))
        if a.shape != b.shape and na != 1 and nb != 1:
            self.unsupported(f"QLinearAdd broadcasting {list(a.shape)} with {list(b.shape)}")
        u = dt == np.uint8
        if a.shape == b.shape and a.rank == 4 and (self.preferred_is_nhwc(a) or self.preferred_is_nhwc(b)):
            ta, tb, nhwc = self.get_nhwc(a), self.get_nhwc(b), True
        else:
            ta, tb, nhwc = self.get_plain(a), self.get_plain(b), False
        out_shape = a.shape if na >= nb else b.shape
        ir_shape = tuple(out_shape[p] for p in TO_NHWC) if nhwc else out_shape
        out = self.tensor(node.output[0], ir_shape, np.int8, yq)
        self.op("ONNX_QLINEAR_ADD", [ta, tb], [out], unsigned=(u, u, u))
        self.new_value(node.output[0], out_shape, dt, out, nhwc, yq)

    def ms_QLinearSoftmax(self, node, ins, attrs):
        self.need(ins, 4, 5)
        x, xs, xz, ys = ins[:4]
        yz = ins[4] if len(ins) > 4 else None
        q = self._scalar_q(xs, xz, x.dtype, "input")
        x = self.quantized(x, q)
        yq = self._scalar_q(ys, yz, x.dtype, "output")
        opset = attrs.get("opset", self.opset)
        axis = attrs.get("axis", 1 if opset < 13 else -1)
        axis = axis + x.rank if axis < 0 else axis
        saved, self.opset = self.opset, opset
        try:
            self._softmax(x, axis, node.output[0], "ONNX_QLINEAR_SOFTMAX", (yq, x.dtype), unsigned=x.dtype == np.uint8)
        finally:
            self.opset = saved

    def _qlinear_via_float(self, node, float_op, pairs: list, yq, ydtype, attrs, channels_last=False):
        """A com.microsoft QLinear op that onnxruntime computes as dequantize -> float op -> quantize:
        translated exactly so (the float translator `float_op` on DQ views, then QuantizeLinear)."""
        dqs, names = [], []
        for k, (v, q) in enumerate(pairs):
            iv = self.quantized(v, q)
            if channels_last:               # NHWC data: the same bytes are the NHWC copy of an NCHW value
                n, h, w, c = iv.shape
                iv = Value(name=iv.name + "/nchw", shape=(n, c, h, w), dtype=iv.dtype, quant=iv.quant,
                           nhwc=self.get_plain(iv), ort_u8=iv.ort_u8)
            name = f"{node.output[0]}/dq{k}"
            dqs.append(Value(name=name, shape=iv.shape, dtype=np.dtype(np.float32), dq_of=iv))
            names.append(name)
            self.values[name] = dqs[-1]
        tmp = node.output[0] + "/float"
        float_op(_Renamed(node, None, tmp, inputs=names), dqs, attrs)
        f = self.values[tmp]
        t, nhwc = self.preferred(f)
        out = self.tensor(node.output[0], self.tensors[t].shape, np.int8, yq)
        self.op("ONNX_QUANTIZE_LINEAR", [t], [out])
        if channels_last:
            n, c, h, w = f.shape
            self.new_value(node.output[0], (n, h, w, c), ydtype, out, False, yq)
        else:
            self.new_value(node.output[0], f.shape, ydtype, out, nhwc, yq)

    def _ms_unary_qparams(self, node, ins, n_min=4):
        self.need(ins, n_min, 5)
        x, xs, xz, ys = ins[:4]
        yz = ins[4] if len(ins) > 4 else None
        return x, self._scalar_q(xs, xz, x.dtype, "input"), self._scalar_q(ys, yz, x.dtype, "output")

    def ms_QLinearSigmoid(self, node, ins, attrs):
        x, qx, yq = self._ms_unary_qparams(node, ins)
        self._qlinear_via_float(node, self.op_Sigmoid, [(x, qx)], yq, x.dtype, attrs)

    def ms_QLinearLeakyRelu(self, node, ins, attrs):
        x, qx, yq = self._ms_unary_qparams(node, ins)
        self._qlinear_via_float(node, self.op_LeakyRelu, [(x, qx)], yq, x.dtype, attrs)

    def ms_QLinearAveragePool(self, node, ins, attrs):
        x, qx, yq = self._ms_unary_qparams(node, ins)
        self._qlinear_via_float(node, self.op_AveragePool, [(x, qx)], yq, x.dtype, attrs,
                                channels_last=bool(attrs.get("channels_last", 0)))

    def ms_QLinearGlobalAveragePool(self, node, ins, attrs):
        x, qx, yq = self._ms_unary_qparams(node, ins)
        self._qlinear_via_float(node, self.op_GlobalAveragePool, [(x, qx)], yq, x.dtype, attrs,
                                channels_last=bool(attrs.get("channels_last", 0)))

    def ms_QLinearMul(self, node, ins, attrs):
        self.need(ins, 7, 8)
        a, as_, az, b, bs, bz, ys = ins[:7]
        yz = ins[7] if len(ins) > 7 else None
        if b.const is not None:
            self.unsupported("QLinearMul with a constant operand")
        self._qlinear_via_float(node, self.op_Mul, [(a, self._scalar_q(as_, az, a.dtype, "A")),
                                                    (b, self._scalar_q(bs, bz, b.dtype, "B"))],
                                self._scalar_q(ys, yz, a.dtype, "C"), a.dtype, attrs)

    def ms_QLinearConcat(self, node, ins, attrs):
        if len(ins) < 5 or (len(ins) - 2) % 3:
            self.bad(f"{len(ins)} inputs: expected Y_scale, Y_zero_point and triples (X, X_scale, X_zero_point)")
        ys, yz = ins[0], ins[1]
        xs = [ins[k:k + 3] for k in range(2, len(ins), 3)]
        dt = xs[0][0].dtype
        yq = self._scalar_q(ys, yz, dt, "output")
        vals = []
        for k, (x, s, z) in enumerate(xs):
            qx = self._scalar_q(s, z, x.dtype, f"input {k}")
            x = self.quantized(x, qx)
            if not _same_q(qx, yq):
                # onnxruntime requantizes through a float table: dequantize then QuantizeLinear, exactly that
                t, nhwc = self.preferred(x)
                f = self.tensor(f"{node.output[0]}/f{k}", self.tensors[t].shape, np.float32)
                self.op("ONNX_DEQUANTIZE_LINEAR", [t], [f])
                r = self.tensor(f"{node.output[0]}/r{k}", self.tensors[t].shape, np.int8, yq)
                self.op("ONNX_QUANTIZE_LINEAR", [f], [r])
                x = Value(name=f"{node.output[0]}/r{k}", shape=x.shape, dtype=dt, quant=yq,
                          plain=None if nhwc else r, nhwc=r if nhwc else None)
            vals.append(x)
        rank = vals[0].rank
        axis = attrs.get("axis", 0)
        axis = axis + rank if axis < 0 else axis
        if not 0 <= axis < rank or any(v.rank != rank for v in vals):
            self.bad(f"axis {attrs.get('axis')} for rank {rank}")
        use_nhwc = rank == 4 and any(self.preferred_is_nhwc(v) for v in vals)
        ts = [self.get_nhwc(v) if use_nhwc else self.get_plain(v) for v in vals]
        shape = list(vals[0].shape)
        shape[axis] = sum(v.shape[axis] for v in vals)
        ir_shape = [shape[p] for p in TO_NHWC] if use_nhwc else shape
        out = self.tensor(node.output[0], ir_shape, np.int8, yq)
        self.op("CONCATENATION", ts, [out], axis=TO_NHWC.index(axis) if use_nhwc else axis,
                fused_activation_function=0)
        self.new_value(node.output[0], shape, dt, out, use_nhwc, yq)


class _Renamed:
    """A node stand-in with other input / output names, for re-using a translator on a derived value."""

    def __init__(self, node, in_name, out_name, inputs=None):
        self.op_type = node.op_type
        self.domain = node.domain
        self.name = node.name
        self.attribute = node.attribute
        self.input = inputs if inputs is not None else [in_name] + list(node.input[1:])
        self.output = [out_name]


def _same_q(a: Optional[Quantization], b: Optional[Quantization]) -> bool:
    if a is None or b is None:
        return False
    return np.float32(a.scale[0]) == np.float32(b.scale[0]) and int(a.zero_point[0]) == int(b.zero_point[0])


def supported_ops() -> list:
    """ONNX op types the reader translates ('com.microsoft.' prefixed for onnxruntime's contrib ops)."""
    return sorted([n[3:] for n in dir(_Translator) if n.startswith("op_")]
                  + [MS_DOMAIN + "." + n[3:] for n in dir(_Translator) if n.startswith("ms_")])


def from_onnx(model) -> Graph:
    """Parse and validate an ONNX model (path, bytes or ModelProto) into a `Graph`."""
    if isinstance(model, onnx.ModelProto):
        proto = model
    else:
        buf = read_model_bytes(model)
        if not buf:
            raise ModelFormatError("the ONNX model is empty (0 bytes)")
        try:
            proto = onnx.load_model_from_string(buf)
        except Exception as exc:
            raise ModelFormatError(f"not a valid ONNX protobuf ({type(exc).__name__}: {exc})") from exc
    if not proto.HasField("graph") or (not len(proto.graph.node) and not len(proto.graph.output)):
        raise ModelFormatError("the ONNX model has no graph")
    try:
        return _Translator(proto).parse()
    except (ModelFormatError, UnsupportedOpError):
        raise
    except RecursionError as exc:
        raise ModelFormatError("the ONNX graph is nested too deeply") from exc
    except Exception as exc:   # a value no check above anticipated: report it, never crash
        raise ModelFormatError(f"malformed ONNX model ({type(exc).__name__}: {exc})") from exc
