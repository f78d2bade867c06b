"""Reductions for the ONNX reader: ReduceMax / Min / Sum / Prod on the IR's REDUCE_* / SUM, and the composite ones
(ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSum, ReduceLogSumExp) built from them and element-wise ops.
ReduceMean (channels-last aware) lives in math_ops.py.  Axes come from the attribute or, from opset 13 (ReduceSum)
or 18 (the others), the second input; noop_with_empty_axes and keepdims as the spec says."""
from __future__ import annotations

import numpy as np

from converters.onnx.common import Value

F32 = np.dtype(np.float32)
IR_REDUCE = {"ReduceMax": "REDUCE_MAX", "ReduceMin": "REDUCE_MIN", "ReduceSum": "SUM", "ReduceProd": "REDUCE_PROD"}


class ReduceOps:
    """Uses the host translator's helpers (need, typed, op, onnx_unary, onnx_binary, ...)."""

    def reduce_axes(self, node, ins, attrs):
        """(sorted axes, keepdims), or None when the op is an identity (empty axes with noop_with_empty_axes)."""
        self.check_attrs(attrs, {"axes", "keepdims", "noop_with_empty_axes"})
        x = ins[0]
        from_input = self.opset >= (13 if node.op_type == "ReduceSum" else 18)
        if from_input:
            if "axes" in attrs:
                self.bad(f"the axes attribute is gone in opset {self.opset} (it is an input)")
            axes = [int(a) for a in self.const_of(ins[1], "the axes input").reshape(-1)] \
                if len(ins) > 1 and ins[1] is not None else []
        else:
            if len(ins) > 1:
                self.bad(f"{len(ins)} inputs (the axes are an attribute in opset {self.opset})")
            axes = [int(a) for a in attrs.get("axes", [])]
        if not axes:
            if attrs.get("noop_with_empty_axes", 0):
                return None
            axes = list(range(x.rank))
        resolved = sorted({a + x.rank if a < 0 else a for a in axes})
        if any(not 0 <= a < x.rank for a in resolved):
            self.bad(f"axes {axes} outside rank {x.rank}")
        if any(x.shape[a] == 0 for a in resolved) or 0 in x.shape:
            self.unsupported("a reduction of an empty tensor (empty tensors are not supported)")
        return resolved, bool(attrs.get("keepdims", 1))

    def reduce_to(self, name: str, x: Value, ir_type: str, axes, keep: bool) -> Value:
        shape = tuple(1 if d in axes else s for d, s in enumerate(x.shape)) if keep else \
            tuple(s for d, s in enumerate(x.shape) if d not in axes)
        t = self.typed(x)
        out = self.tensor(name, shape, x.dtype)
        self.op(ir_type, [t, self.const_tensor(name + "/axes", np.array(axes, np.int32))], [out], keep_dims=keep)
        return self.new_value(name, shape, x.dtype, out, False)

    def _reduce(self, node, ins, attrs):
        self.need(ins, 1, 2)
        if self._fold(node, ins, attrs):
            return
        x = ins[0]
        geometry = self.reduce_axes(node, ins, attrs)
        if geometry is None:
            self.values[node.output[0]] = x
            return
        axes, keep = geometry
        name, kind = node.output[0], node.op_type
        if kind in IR_REDUCE:
            if x.dtype == np.bool_ and kind in ("ReduceMax", "ReduceMin"):      # any / all, on 0 / 1 bytes
                u8 = self.cast_value(x, np.uint8, name + "/u8")
                self.cast_value(self.reduce_to(name + "/reduced", u8, IR_REDUCE[kind], axes, keep), np.bool_, name)
                return
            ir = IR_REDUCE[kind]
            if x.dtype == F32 and kind in ("ReduceMax", "ReduceMin"):
                ir = "ONNX_" + ir        # starting from -inf / +inf
            self.reduce_to(name, x, ir, axes, keep)
            return
        if x.dtype != F32:
            self.unsupported(f"{kind} of {x.dtype} (float32 is supported)")
        if kind == "ReduceL1":
            self.reduce_to(name, self.onnx_unary(name + "/abs", x, "ABS"), "SUM", axes, keep)
        elif kind in ("ReduceL2", "ReduceSumSquare"):
            square = self.onnx_binary(name + "/square", x, x, "MUL")
            if kind == "ReduceSumSquare":
                self.reduce_to(name, square, "SUM", axes, keep)
            else:
                self.onnx_unary(name, self.reduce_to(name + "/sum", square, "SUM", axes, keep), "SQRT")
        elif kind == "ReduceLogSum":
            self.onnx_unary(name, self.reduce_to(name + "/sum", x, "SUM", axes, keep), "LOG")
        else:   # ReduceLogSumExp, shifted by the maximum so exp cannot overflow
            peak = self.reduce_to(name + "/max", x, "ONNX_REDUCE_MAX", axes, True)
            shifted = self.onnx_binary(name + "/shifted", x, peak, "SUB")
            total = self.reduce_to(name + "/sum", self.onnx_unary(name + "/exp", shifted, "EXP"), "SUM", axes, keep)
            log = self.onnx_unary(name + "/log", total, "LOG")
            if not keep:
                self._reshape_to(name + "/peak", peak, log.shape, False)
                peak = self.values[name + "/peak"]
            self.onnx_binary(name, log, peak, "ADD")

    op_ReduceMax = op_ReduceMin = op_ReduceSum = op_ReduceProd = _reduce
    op_ReduceL1 = op_ReduceL2 = op_ReduceSumSquare = op_ReduceLogSum = op_ReduceLogSumExp = _reduce
