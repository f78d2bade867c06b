"""Element-wise and reduction ops for the ONNX reader: Add / Sub / Mul, the unary activations (Relu, Sigmoid,
Tanh, LeakyRelu, HardSwish, Clip, with a following Relu / Clip fused into the op before it), Softmax, ReduceMean."""
from __future__ import annotations

from typing import Optional

import numpy as np

from converters.onnx.common import ACT_CODE, FLOAT_MAX, TO_NHWC, Value
from converters.onnx.tensors import attribute_value


class MathOps:
    """Element-wise ops, Softmax, ReduceMean; uses the host translator's helpers (need, get_plain, op, ...)."""

    # ----- element-wise -------------------------------------------------------------------------
    def _binary(self, node, ins, ir_type: str):
        self.need(ins, 2, 2)
        a, b = ins
        if self._fold(node, ins, {}):
            return
        if ir_type == "ADD" and self._fused_add(node, a, b):
            return
        if ir_type == "MUL" and self._fused_mul(node, a, b):       # QDQ group -> QLinearMul (qdq.py)
            return
        if any(v.dq_of is None and v.dtype != np.float32 for v in (a, b)):
            self.onnx_binary(node.output[0], a, b, ir_type)       # integer arithmetic
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
        if act == "NONE":        # ONNX's arithmetic keeps infinities (the TFLite op clamps to +-FLT_MAX)
            self.op("ONNX_BINARY", ts, [out], function=ir_type)
        else:
            self.op(ir_type, ts, [out], fused_activation_function=ACT_CODE[act])
        self.new_value(last, out_shape, np.float32, out, use_nhwc)

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
        n = self.nodes[k]
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
            attrs = {a.name: attribute_value(a) for a in n.attribute}
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
        if ins and ins[0] is not None and ins[0].dq_of is None and ins[0].dtype != np.float32:
            self.onnx_unary(node.output[0], ins[0], "RELU")
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
        x = ins[0]
        if x.dq_of is None and x.quant is None and x.dtype.kind in "iu" and x.const is None:
            self._integer_clip(node, ins)
            return
        lo, hi = self._clip_bounds(node)
        if lo is None:
            self.unsupported("Clip bounds must be constant scalars")
        act = self._activation_of(node)
        if act is not None:
            self._unary(node, ins, act)
        else:
            self._unary(node, ins, "ONNX_CLIP", clip=(lo, hi))

    def _integer_clip(self, node, ins):
        """Clip of a plain integer tensor: max with the lower bound, then min with the upper one (in its type)."""
        bounds = [(ins[p], f) for p, f in ((1, "MAX"), (2, "MIN")) if len(ins) > p and ins[p] is not None]
        acc = ins[0]
        for k, (bound, function) in enumerate(bounds):
            if bound.dtype != acc.dtype or int(np.prod(bound.shape, dtype=np.int64)) != 1:
                self.bad(f"bound '{bound.name}' of type {bound.dtype} and shape {list(bound.shape)} (a scalar "
                         f"of the input's type {acc.dtype} is needed)")
            acc = self.onnx_binary(node.output[0] if k == len(bounds) - 1 else node.output[0] + "/lower", acc,
                                   self.reshaped(bound, (), f"{node.output[0]}/bound{k}"), function)
        if not bounds:
            self.values[node.output[0]] = acc

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
        ir_axes = [TO_NHWC.index(a) for a in axes] if nhwc else axes
        kept = [a for a in TO_NHWC if a not in axes] if nhwc and not keep else []
        if kept != sorted(kept):
            # reduce the channels-last tensor, then put the (smaller) result's axes in ONNX order
            kept_shape = tuple(x.shape[a] for a in kept)
            mid = self.tensor(node.output[0] + "/kept_nhwc", kept_shape, np.float32)
            self.op("MEAN", [t, self.const_tensor(node.output[0] + "/axes", np.array(ir_axes, np.int32))], [mid],
                    keep_dims=False)
            out = self.tensor(node.output[0], shape, np.float32)
            if [a for a in kept if x.shape[a] != 1] == [a for a in sorted(kept) if x.shape[a] != 1]:
                # the non-unit axes keep their order: same bytes
                self.op("RESHAPE", [mid, self.const_tensor(node.output[0] + "/shape", np.array(shape, np.int32))],
                        [out])
            else:
                perm = [kept.index(a) for a in sorted(kept)]
                self.op("TRANSPOSE", [mid, self.const_tensor(node.output[0] + "/perm", np.array(perm, np.int32))],
                        [out])
            self.new_value(node.output[0], shape, np.float32, out, False)
            return
        out_nhwc = nhwc and keep
        ir_shape = tuple(shape[p] for p in TO_NHWC) if out_nhwc else shape
        out = self.tensor(node.output[0], ir_shape, np.float32)
        self.op("MEAN", [t, self.const_tensor(node.output[0] + "/axes", np.array(ir_axes, np.int32))], [out],
                keep_dims=keep)
        self.new_value(node.output[0], shape, np.float32, out, out_nhwc)
