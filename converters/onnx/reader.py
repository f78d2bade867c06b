"""Read an ONNX model into edgeml's graph IR, validating everything first: the translator core.

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

The translator class here holds values, layouts, parsing and dispatch; the ops are mixins from the package's other
modules (shape_ops, math_ops, conv, qdq, qoperator, recurrent, qmatmul, qpool, qattention).
"""
from __future__ import annotations

import gc
import sys
from typing import Optional

import numpy as np

from converters.onnx import proto
from converters.onnx.common import F32, I8, TO_NCHW, TO_NHWC, U8, Node, Value
from converters.onnx.conv import ConvOps
from converters.onnx.elementwise import ElementwiseOps
from converters.onnx.linear_ops import LinearOps
from converters.onnx.math_ops import MathOps
from converters.onnx.normalization import NormalizationOps
from converters.onnx.pooling import PoolOps
from converters.onnx.qattention import QAttentionOps
from converters.onnx.qdq import QDQOps
from converters.onnx.qmatmul import QMatMulOps
from converters.onnx.qoperator import QOperatorOps
from converters.onnx.qpool import QPoolOps
from converters.onnx.recurrent import RecurrentOps
from converters.onnx.reduce_ops import ReduceOps
from converters.onnx.resize import ResizeOps
from converters.onnx.shape_ops import ShapeOps
from converters.onnx.tensor_ops import TensorOps
from converters.onnx.tensors import ONNX_DTYPES, attribute_values, initializer_array, type_name
from converters.source import read_model_bytes
from edgeml.errors import ModelFormatError, UnsupportedOpError
from edgeml.ir import REQUANT_FLOAT, ROUND_HALF_EVEN, Graph, Op, Quantization, Tensor

MIN_OPSET, MAX_OPSET = 7, 28
PLAIN_INPUT_TYPES = tuple(np.dtype(t) for t in (np.int16, np.uint16, np.int32, np.int64, np.bool_))
MS_DOMAIN = "com.microsoft"
DEFAULT_DOMAINS = ("", "ai.onnx")


class _Translator(ShapeOps, MathOps, ConvOps, QDQOps, QOperatorOps, RecurrentOps, QMatMulOps, QPoolOps,
                  QAttentionOps, ElementwiseOps, TensorOps, ReduceOps, LinearOps, NormalizationOps, ResizeOps,
                  PoolOps):
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
        self.node_memo: dict = {}
        self.k = 0
        self.node = None
        self.constant_nodes: Optional[dict] = None
        self.nodes: list = []
        self.consumers: dict = {}
        self.handlers: dict = {}        # (domain, op type) -> bound translator method

    # ----- IR building --------------------------------------------------------------------------
    def tensor(self, name: str, shape, dtype, quant=None, data=None) -> int:
        idx = len(self.tensors)
        self.tensors.append(Tensor(idx, name, tuple(map(int, shape)), np.dtype(dtype), quant, data))
        return idx

    def const_tensor(self, name: str, data: np.ndarray, quant=None) -> int:
        if type(data) is not np.ndarray or not data.flags.c_contiguous:
            data = np.ascontiguousarray(data).reshape(np.shape(data))       # (a scalar stays 0-D)
        idx = len(self.tensors)
        self.tensors.append(Tensor(idx, name, data.shape, data.dtype, quant, data))
        return idx

    def op(self, type_: str, inputs: list, outputs: list, **options):
        options.setdefault("requant", REQUANT_FLOAT)         # onnxruntime's arithmetic for every int8 sum
        op = Op(len(self.ops), type_, 1, list(inputs), list(outputs), options)
        self.ops.append(op)
        for t in outputs:
            self.producer[t] = op

    def label(self, t: int, q: Quantization):
        """Give an integer IR tensor its quantization, and the data-movement chain that produced it."""
        while t is not None and self.tensors[t].dtype == I8 and self.tensors[t].quant is None:
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

    def preferred_is_nhwc(self, v: Value) -> bool:
        if v.nhwc is not None:
            return True
        if v.dq_of is not None and v.plain is None:
            return self.preferred_is_nhwc(v.dq_of)
        return False

    def _relayout(self, t: int, name: str, perm: tuple) -> int:
        src = self.tensors[t]
        shape = tuple(src.shape[p] for p in perm)
        out = self.like(t, name, shape)
        n, a, b, c = src.shape
        if (perm == TO_NCHW and (c == 1 or a * b == 1)) or (perm == TO_NHWC and (a == 1 or b * c == 1)):
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

    def _as_float32(self, t: int) -> int:
        tt = self.tensors[t]
        if tt.dtype != F32:
            if tt.data is not None and tt.dtype.kind == "f":
                return self.const_tensor(tt.name + "/f32", tt.data.astype(np.float32))
            self.unsupported(f"{tt.describe()} has type {tt.dtype}; float32 is needed")
        return t

    def new_value(self, name: str, shape, dtype, ir: int, nhwc: bool, quant=None, like: Value = None) -> Value:
        u8 = like.ort_u8 if like is not None else (quant is not None and name in self.u8_names)
        v = Value(name, tuple(map(int, shape)), np.dtype(dtype), None if nhwc else ir, ir if nhwc else None,
                  quant=quant, ort_u8=u8)
        self.values[name] = v
        return v

    def const_value(self, name: str, data: np.ndarray) -> Value:
        v = Value(name, data.shape, data.dtype, const=data)
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
        values = self.values
        for k, tp in enumerate(self.g.initializer):
            name = tp.name or f"initializer_{k}"
            data = initializer_array(tp, f"initializer {k} '{name}'")
            values[name] = Value(name, data.shape, data.dtype, const=data)
            init_names.add(name)
        for sp in self.g.sparse_initializer:
            raise UnsupportedOpError(f"sparse initializer '{sp.values.name}' is not supported")
        self._consumer_map()
        inputs = []
        for vi in self.g.input:
            if vi.name in init_names:
                continue
            inputs.append(self._graph_input(vi))
        if not inputs:
            raise UnsupportedOpError("the graph declares no inputs (a model of constants only is not supported)")
        self._u8_values()
        for k, node in enumerate(self.nodes):
            if k in self.done:
                continue
            self._translate(k, node)
        outputs = [self._graph_output(o) for o in self.g.output]
        if not outputs:
            raise ModelFormatError("the graph declares no outputs")
        for t in self.tensors:
            if t.dtype == I8 and t.quant is None:
                # plain integer data (no Q/DQ): the unit scale only satisfies the int8 data-movement checks
                t.quant = Quantization(np.ones(1), np.zeros(1, np.int64))
        return Graph(tensors=self.tensors, ops=self.ops, inputs=inputs, outputs=outputs, source="onnx",
                     name=self.g.name, input_rounding=ROUND_HALF_EVEN)

    def _graph_input(self, vi) -> int:
        tt = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
        if tt is None:
            raise UnsupportedOpError(f"graph input '{vi.name}' is not a tensor")
        dtype = ONNX_DTYPES.get(tt.elem_type)
        users = [self.nodes[k] for k in sorted(set(self.consumers.get(vi.name, ())))]
        lens_only = dtype == np.int32 and bool(users) and all(      # int32: only an RNN's sequence_lens
            (n.op_type in ("LSTM", "GRU", "RNN") and n.domain in ("", "ai.onnx") and list(n.input).index(vi.name) == 4
             or n.op_type == "QAttention" and n.domain == MS_DOMAIN and list(n.input).index(vi.name) == 5)  # mask
            and list(n.input).count(vi.name) == 1 for n in users)
        lengths_only = dtype == np.int64 and bool(users) and all(   # int64: only ReverseSequence's lengths
            n.op_type == "ReverseSequence" and list(n.input).index(vi.name) == 1 for n in users)
        plain = dtype in PLAIN_INPUT_TYPES     # integer / bool data for the ops that compute on it (each checks)
        if dtype not in (np.dtype(np.float32), np.dtype(np.int8), np.dtype(np.uint8)) and not (lens_only or lengths_only
                                                                                             or plain):
            raise UnsupportedOpError(f"graph input '{vi.name}' has element type "
                                     f"{type_name(tt.elem_type)}"
                                     " (float32, int8, uint8, int16, uint16, int32, int64 and bool are supported)")
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
        if v.dtype == np.uint8 and self.tensors[t].dtype != np.uint8:     # (a plain uint8 result is uint8 already)
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

    def _consumer_map(self):
        """The nodes' fields read once (`Node`), and value name -> indices of the nodes reading it (a node once per
        input that reads it)."""
        self.nodes = nodes = [Node(n) for n in self.g.node]
        consumers = self.consumers = {}
        for k, node in enumerate(nodes):
            for name in node.input:
                if name:
                    if name in consumers:
                        consumers[name].append(k)
                    else:
                        consumers[name] = [k]

    def _u8_values(self):
        # Integer values onnxruntime holds as uint8: uint8 ones, and int8 Q outputs its QDQS8ToU8 transformer
        # converts (a Q whose only consumer is one DQ read by one node, both with the same explicit int8
        # zero point).  The
        # element type decides which QDQ groups it fuses and the arithmetic of some fused kernels.
        self.u8_names = set()
        for node in self.nodes:
            if node.op_type != "QuantizeLinear" or node.domain not in ("", "ai.onnx"):
                continue
            out = node.output[0]
            zp = self._const_input(node, 2)
            if zp is not None and zp.dtype == U8:
                self.u8_names.add(out)
                continue
            cons = self.consumers.get(out, [])
            if out in self.graph_outputs or len(cons) != 1:
                continue
            dq = self.nodes[cons[0]]
            if dq.op_type != "DequantizeLinear" or len(node.input) != 3 or len(dq.input) != 3:
                continue
            # onnxruntime first gives each consumer of a DQ its own copy (EnsureUniqueDQForNodeUnit), so a
            # DQ read by several nodes leaves its Q with several DQ consumers, which stay int8
            if len(self.consumers.get(dq.output[0], [])) + (dq.output[0] in self.graph_outputs) > 1:
                continue
            zq = self._const_input(dq, 2)
            if zp is not None and zq is not None and zp.dtype == zq.dtype == I8 and zp.size == zq.size == 1 \
                    and int(zp.item()) == int(zq.item()):
                self.u8_names.add(out)

    def _const_input(self, node, position: int):
        if len(node.input) <= position or not node.input[position]:
            return None
        name = node.input[position]
        v = self.values.get(name)
        if v is not None and v.const is not None:
            return v.const
        if self.constant_nodes is None:     # Constant nodes by output (onnxruntime folds them into initializers)
            self.constant_nodes = {}
            for n in self.nodes:
                if n.op_type == "Constant" and n.output[0] not in self.constant_nodes and n.attribute \
                        and n.attribute[0].name == "value":
                    self.constant_nodes[n.output[0]] = n
        n = self.constant_nodes.get(name)
        return None if n is None else initializer_array(n.attribute[0].t, f"Constant '{name}'")

    # ----- dispatch -----------------------------------------------------------------------------
    def _translate(self, k: int, node):
        self.k = k
        self.node = node
        domain = node.domain
        if domain not in DEFAULT_DOMAINS and domain != MS_DOMAIN:
            raise UnsupportedOpError(f"{self.desc}: operator domain '{domain}' is not supported (only the default "
                                     f"ONNX domain and {MS_DOMAIN})")
        fn = self.handlers.get((domain, node.op_type))
        if fn is None:
            fn = self.handlers[domain, node.op_type] = getattr(
                self, ("op_" if domain in DEFAULT_DOMAINS else "ms_") + node.op_type, None)
        if fn is None:
            raise UnsupportedOpError(f"{self.desc}: op {node.op_type} (opset {self.opset}) is not supported; "
                                     f"supported ops: {', '.join(supported_ops())}")
        try:
            attrs = attribute_values(node) if node.attribute else {}
        except Exception as exc:
            raise ModelFormatError(f"{self.desc}: malformed attribute ({type(exc).__name__}: {exc})") from exc
        values = self.values
        ins = []
        for name in node.input:
            v = values.get(name) if name else None
            if v is None and name:
                v = self.value(name, self.desc)
            ins.append(v)
        if not node.output:
            raise ModelFormatError(f"{self.desc}: the node has no outputs")
        if self.node_memo:
            self.node_memo = {}      # answers that hold while this one node is translated (fusion, q_params)
        fn(node, ins, attrs)

    @property
    def desc(self) -> str:
        """The node being translated, for messages."""
        node, k = self.node, self.k
        return f"node {k} '{node.name or node.output[0] if node.output else k}' ({node.op_type})"

    def unsupported(self, why: str):
        raise UnsupportedOpError(f"{self.desc}: {why}")

    def bad(self, why: str):
        raise ModelFormatError(f"{self.desc}: {why}")

    def const_of(self, v: Optional[Value], what: str) -> np.ndarray:
        data = None if v is None else v.const
        if data is None:
            self.unsupported(f"{what} must be a constant (an initializer or Constant node)")
        return data

    def need(self, ins, n_min: int, n_max: int = None):
        present = len(ins)
        if present < n_min or (n_max is not None and present > n_max):
            self.bad(f"{present} inputs, expected {n_min}" + (f" to {n_max}" if n_max and n_max != n_min else ""))
        if None in ins[:n_min]:
            self.bad(f"required input {ins.index(None)} is missing")

    def float_input(self, v: Value) -> Value:
        if v.dtype != F32:
            self.unsupported(f"input '{v.name}' has type {v.dtype}; this op runs on float32 here")
        return v

    def float_const(self, v: Value, what: str, copy: bool = True) -> np.ndarray:
        """A constant float input as float32 (copy=False: possibly the read-only constant itself)."""
        data = self.const_of(v, what)
        if data.dtype.kind != "f":
            self.unsupported(f"{what} of type {data.dtype} in a float op")
        return data.astype(np.float32, copy=copy)


def supported_ops() -> list:
    """ONNX op types the reader translates ('com.microsoft.' prefixed for onnxruntime's contrib ops)."""
    return sorted([n[3:] for n in dir(_Translator) if n.startswith("op_")]
                  + [MS_DOMAIN + "." + n[3:] for n in dir(_Translator) if n.startswith("ms_")])


def op_groups() -> list:
    """[(group title, [ONNX op types])] in the order of the translator's mixins: each op under the first line of the
    docstring of the module that translates it (up to 'for the ONNX reader')."""
    groups: dict = {}
    for name in supported_ops():
        method = ("ms_" + name[len(MS_DOMAIN) + 1:]) if name.startswith(MS_DOMAIN + ".") else "op_" + name
        owner = next(c for c in _Translator.__mro__ if method in c.__dict__)
        doc = (sys.modules[owner.__module__].__doc__ or owner.__module__).strip()
        title = doc.split(" for the ONNX reader")[0].split(":")[0].split(". ")[0].strip()
        groups.setdefault((_Translator.__mro__.index(owner), title), []).append(name)
    return [(title, ops) for (_, title), ops in sorted(groups.items())]


def from_onnx(model) -> Graph:
    """Parse and validate an ONNX model (path, bytes or ModelProto) into a `Graph`."""
    onnx = sys.modules.get("onnx")       # (a ModelProto of the onnx package: its fields are this reader's)
    if isinstance(model, proto.ModelProto) or (onnx is not None and isinstance(model, onnx.ModelProto)):
        parsed = model
    else:
        buf = read_model_bytes(model)
        if not buf:
            raise ModelFormatError("the ONNX model is empty (0 bytes)")
        try:
            parsed = proto.ModelProto.FromString(buf)
        except Exception as exc:
            raise ModelFormatError(f"not a valid ONNX protobuf ({type(exc).__name__}: {exc})") from exc
        # the file's bytes are in the parsed message now: freed here, their pages take the copies of the tensors'
        # raw data that the walk makes (held, a large model's copies land in fresh pages, each page a fault)
        del buf
    if not parsed.HasField("graph") or (not len(parsed.graph.node) and not len(parsed.graph.output)):
        raise ModelFormatError("the ONNX model has no graph")
    # the walk allocates thousands of small objects that all stay alive: the cyclic collector's passes over them
    # (and over every object the process holds) find nothing to free, so it waits until the walk is done
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _Translator(parsed).parse()
    except (ModelFormatError, UnsupportedOpError):
        raise
    except RecursionError as exc:
        raise ModelFormatError("the ONNX graph is nested too deeply") from exc
    except Exception as exc:   # a value no check above anticipated: report it, never crash
        raise ModelFormatError(f"malformed ONNX model ({type(exc).__name__}: {exc})") from exc
    finally:
        if collecting:
            gc.enable()
