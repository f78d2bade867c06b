"""QDQ models for the ONNX reader: QuantizeLinear, DequantizeLinear, and the fusion of DequantizeLinear -> op ->
QuantizeLinear groups into one int8 IR op (or onnxruntime's float emulation where it leaves a group unfused)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from converters.onnx.common import ACT_CODE, F32, FLOAT_MAX, I8, I32, TO_NHWC, U8, Renamed, Value, same_q
from converters.onnx.tensors import attribute_values
from edgeml.errors import ModelFormatError
from edgeml.ir import Quantization


def _offset_zero_point(data: np.ndarray, zp: Optional[np.ndarray]) -> bool:
    """Whether integers `data` DequantizeLinear'd with zero point `zp` (of data's type) have one other than 0
    (128 for uint8)."""
    if zp is None:
        return False
    return (np.count_nonzero(zp != 128) if data.dtype == U8 else np.count_nonzero(zp)) > 0


@dataclass
class _Fusion:
    q_node: object
    act: str = "NONE"
    clip: Optional[tuple] = None
    skipped: list = field(default_factory=list)


class QDQOps:
    """QuantizeLinear / DequantizeLinear and the QDQ fusions; uses the host translator's helpers (consumers,
    get_nhwc, op, ...)."""

    # ----- quantization -------------------------------------------------------------------------
    def q_params(self, qnode) -> Optional[tuple]:
        """(Quantization in the IR's int8 sense, ONNX dtype) of a per-tensor QuantizeLinear, or None."""
        key = ("q", qnode.output[0], tuple(qnode.input))
        if key not in self.node_memo:       # (asked for several times while one node is translated)
            self.node_memo[key] = self._q_params(qnode)
        return self.node_memo[key]

    def _q_params(self, qnode) -> Optional[tuple]:
        names = qnode.input
        n_in = len(names)
        s_value = self.values.get(names[1]) if n_in > 1 and names[1] else None
        if s_value is None or s_value.const is None:
            return None
        scale = s_value.const
        z_value = self.values.get(names[2]) if n_in > 2 and names[2] else None
        zp = z_value.const if z_value is not None else None
        if zp is not None and zp.dtype != I8 and zp.dtype != U8:
            return None
        if zp is None:
            odt = attribute_values(qnode).get("output_dtype", 0)
            if odt not in (0, 2):
                return None
            zp = np.zeros(1, np.uint8)
        if scale.size != 1 or zp.size != 1 or scale.dtype != F32:
            return None
        s = scale.item()
        if not (s > 0 and math.isfinite(s)):
            raise ModelFormatError(f"{qnode.op_type} '{qnode.name}': scale {s} must be positive and finite")
        z = int(zp.item()) - (128 if zp.dtype == U8 else 0)
        return Quantization(np.array([s], np.float64), np.array([z], np.int64)), zp.dtype

    def fusion(self, out_name: str, allow_act: bool = True) -> Optional[_Fusion]:
        """The QuantizeLinear (optionally after a Relu / Clip) that alone consumes `out_name`."""
        key = ("fusion", out_name, allow_act)
        if key not in self.node_memo:
            self.node_memo[key] = self._fusion(out_name, allow_act)
        return self.node_memo[key]          # (shared by the node's translators, which only read it)

    def _fusion(self, out_name: str, allow_act: bool) -> Optional[_Fusion]:
        cur, act, clip, skipped = out_name, "NONE", None, []
        for _ in range(2):
            cons = self.consumers.get(cur, [])
            if cur in self.graph_outputs or len(cons) != 1:
                return None
            k = cons[0]
            n = self.nodes[k]
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
        if (data.dtype != I8 and data.dtype != U8) or scale.dtype != F32:
            return None
        if scale.size > 1 and (axis != axis_expected or scale.size != n_out):
            return None
        if data.dtype == U8:
            data = (data ^ np.uint8(0x80)).view(np.int8)         # u - 128, exactly
            if zp is None or np.count_nonzero(zp != 128):
                self.unsupported("quantized weights with a non-zero zero point are not supported yet")
        elif zp is not None and np.count_nonzero(zp):
            self.unsupported("quantized weights with a non-zero zero point are not supported yet")
        return data, Quantization(scale.reshape(-1).astype(np.float64), np.zeros(scale.size, np.int64),
                                  axis_expected)

    def _bias_q(self, b: Optional[Value], n_out: int):
        if b is None:
            return True, None
        if b.qconst is None:
            return False, None
        data, scale, zp, _ = b.qconst
        if data.dtype != I32 or (zp is not None and np.count_nonzero(zp)) or data.size != n_out:
            return False, None
        return True, data.reshape(-1)          # (int32: the constant itself, read only)

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
        if w.qconst is not None and _offset_zero_point(w.qconst[0], w.qconst[2]):
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
        wf = w.const.astype(np.float32, copy=False).reshape(oc, icg * kh * kw).T   # [K][OC], k in (c, kh, kw) order
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
        renamed = Renamed(node, node.input[0], fu.q_node.output[0])
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
        asymmetric = self._asymmetric_weights(b)
        wq = None if asymmetric else self._weight_q(b, 0 if b_is_nk else 1, n_out)
        if wq is None and not asymmetric:
            return False
        skipped = []
        bias_v = c if beta == 1.0 else None
        if c is not None and beta != 1.0:
            return False
        out_name = node.output[0]
        if bias_v is None:
            cons = self.consumers.get(out_name, [])
            if len(cons) == 1 and out_name not in self.graph_outputs:
                n = self.nodes[cons[0]]
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
        if asymmetric:
            return self._fused_dense_asymmetric(node, a, b, b_is_nk, bias, fu, yq, skipped, out_name)
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

    def _asymmetric_weights(self, w: Value) -> bool:
        """Weights DequantizeLinear'd with a zero point other than 0 (int8) / 128 (uint8)."""
        if w.qconst is None or (w.qconst[0].dtype != I8 and w.qconst[0].dtype != U8):
            return False
        return _offset_zero_point(w.qconst[0], w.qconst[2])

    def _fused_dense_asymmetric(self, node, a, b, b_is_nk: bool, bias, fu, yq, skipped, out_name) -> bool:
        """QDQ MatMul / Gemm whose weights have non-zero zero points (U8U8 per tensor): onnxruntime fuses it
        into QGemm / QLinearMatMul; the exact integer kernel (em_onnx_conv_integer) with its float requantization."""
        data, scale, zp, axis = b.qconst
        n_out = b.shape[0] if b_is_nk else b.shape[1]
        if fu.act == "CLIP" or scale.size not in (1, n_out) or (scale.size > 1 and axis != (0 if b_is_nk else 1)):
            return False
        kn = np.ascontiguousarray(data.T if b_is_nk else data)
        zv = Value(name=b.name + "/zp", shape=zp.shape, dtype=zp.dtype, const=zp.reshape(-1))
        bv = Value(name=b.name + "/kn", shape=kn.shape, dtype=kn.dtype, const=kn)
        out, out_shape = self._integer_dense(node, a.dq_of, bv, zv, yq[0], np.int8,
                                             int(a.dq_of.quant.zero_point[0]), bscale=scale.reshape(-1), bias=bias,
                                             out_name=fu.q_node.output[0], relu=fu.act == "RELU")
        self.new_value(fu.q_node.output[0], out_shape, yq[1], out, False, yq[0])
        self.done.update(skipped)
        self.finish_fusion(fu)
        return True

    def _add_operand(self, v: Value):
        """(integer Value with its quantization, held as uint8 by onnxruntime) of an Add input that is a
        DequantizeLinear output: of an activation, or of a constant per tensor; None otherwise."""
        if v.dq_of is not None and v.dq_of.quant is not None:
            return v.dq_of, v.dq_of.ort_u8
        if v.qconst is None:
            return None
        data, scale, zp, _ = v.qconst
        if scale.size != 1 or data.dtype not in (np.int8, np.uint8):
            return None
        z = 0 if zp is None else int(zp.reshape(-1)[0])
        q = Quantization(np.array([float(scale.reshape(-1)[0])], np.float64),
                         np.array([z - (128 if data.dtype == np.uint8 else 0)], np.int64))
        return Value(name=v.name + "/int", shape=v.shape, dtype=data.dtype, const=data, quant=q), \
            data.dtype == np.uint8

    def _fused_add(self, node, a: Value, b: Value) -> bool:
        """DQ(a) + DQ(b) -> Q of one integer type, with numpy broadcasting, either operand possibly a constant:
        onnxruntime's QLinearAdd (a Relu before the Q only when the Q's zero point is the type's minimum, where
        onnxruntime drops it)."""
        ia, ib = self._add_operand(a), self._add_operand(b)
        if ia is None or ib is None or (ia[0].const is not None and ib[0].const is not None):
            return False
        fu = self.fusion(node.output[0])
        yq = self.q_params(fu.q_node) if fu else None
        if yq is None or fu.act == "CLIP" or (fu.act == "RELU" and int(yq[0].zero_point[0]) != -128):
            return False
        y_u8 = fu.q_node.output[0] in self.u8_names
        if not ia[1] == ib[1] == y_u8:
            return False
        try:
            np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            return False
        out, nhwc, out_shape = self.qlinear_add(fu.q_node.output[0], ia[0], ib[0], yq[0], (ia[1], ib[1], y_u8))
        self.new_value(fu.q_node.output[0], out_shape, yq[1], out, nhwc, yq[0])
        self.finish_fusion(fu)
        return True

    def _fused_mul(self, node, a: Value, b: Value) -> bool:
        """DQ(a) * DQ(b) -> Q, all of one integer type (either operand possibly a constant, numpy broadcasting):
        onnxruntime's QLinearMul."""
        ia, ib = self._add_operand(a), self._add_operand(b)
        if ia is None or ib is None or (ia[0].const is not None and ib[0].const is not None):
            return False
        fu = self.fusion(node.output[0], allow_act=False)
        yq = self.q_params(fu.q_node) if fu else None
        if yq is None or not ia[1] == ib[1] == (fu.q_node.output[0] in self.u8_names):
            return False
        if ia[0].dtype != ib[0].dtype or ia[0].dtype != yq[1]:
            return False
        try:
            np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            return False
        (ta, tb), nhwc, out_shape = self.broadcast_operands([(ia[0], ia[0].quant), (ib[0], ib[0].quant)])
        ir_shape = tuple(out_shape[p] for p in TO_NHWC) if nhwc else out_shape
        out = self.tensor(fu.q_node.output[0], ir_shape, np.int8, yq[0])
        self.op("ONNX_QLINEAR_MUL", [ta, tb], [out], unsigned=bool(ia[1]))
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
        qn = self.nodes[cons[0]]
        if qn.op_type != "QuantizeLinear" or qn.domain not in ("", "ai.onnx"):
            return False
        yq = self.q_params(qn)
        if yq is None or not same_q(x.dq_of.quant, yq[0]):
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
        if yq is None or not same_q(x.dq_of.quant, yq[0]):
            return False
        xt = self.get_nhwc(x.dq_of)
        out = self.tensor(fu.q_node.output[0], (out_shape[0], out_shape[2], out_shape[3], out_shape[1]),
                          np.int8, yq[0])
        self.op(ir_type, [xt], [out], **options)
        self.new_value(fu.q_node.output[0], out_shape, yq[1], out, True, yq[0])
        self.finish_fusion(fu)
        return True

    def op_DequantizeLinear(self, node, ins, attrs):
        if not 2 <= len(ins) <= 3 or ins[0] is None or ins[1] is None:
            self.need(ins, 2, 3)
        x, s = ins[0], ins[1]
        zp = ins[2] if len(ins) > 2 else None
        scale = s.const
        if scale is None:
            self.const_of(s, "the scale")
        zpa = None if zp is None else zp.const
        if zp is not None and zpa is None:
            self.const_of(zp, "the zero point")
        if scale.dtype != F32:
            self.unsupported(f"scale of type {scale.dtype} (float32 only)")
        if zpa is not None and zpa.dtype != x.dtype:
            self.bad(f"zero point type {zpa.dtype} differs from input type {x.dtype}")
        if x.dtype != I8 and x.dtype != U8 and x.dtype != I32:
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
        if not (math.isfinite(scale.item()) if scale.size == 1 else np.count_nonzero(np.isfinite(scale)) == scale.size):
            self.bad("scale must be finite")
        data = x.const
        if data is not None:
            shape = [1] * x.rank
            if scale.size > 1:
                shape[axis] = -1
            sc = scale.reshape(shape) if scale.size > 1 else scale.reshape(())

            def fold():
                # (float32(q) - float32(zp)) * scale in float32, each ufunc casting as it goes: no int -> float copy
                if zpa is None or not zpa.any():
                    return np.multiply(data, sc, dtype=np.float32)
                return np.multiply(np.subtract(data, zpa.astype(np.float32).reshape(shape), dtype=np.float32),
                                   sc, dtype=np.float32)
            # folded on first read only: fused int8 ops take the integers (qconst) instead
            self.values[node.output[0]] = Value(name=node.output[0], shape=data.shape, dtype=F32,
                                                fold=fold, qconst=(data, scale.reshape(-1),
                                                                   None if zpa is None else zpa.reshape(-1), axis))
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
        elif not same_q(x.quant, q):
            # the integer tensor is read with other parameters: give it a re-labelled copy
            t, nhwc = self.preferred(x)
            relabel = self.like(t, x.name + f"/as{self.k}", quant=q)
            self.op("RESHAPE", [t, self.const_tensor(x.name + f"/as{self.k}/s",
                                                     np.array([-1] + list(self.tensors[t].shape[1:]), np.int32))],
                    [relabel])
            x = Value(name=x.name + f"/as{self.k}", shape=x.shape, dtype=x.dtype, quant=q,
                      plain=None if nhwc else relabel, nhwc=relabel if nhwc else None, ort_u8=x.ort_u8)
        self.values[node.output[0]] = Value(name=node.output[0], shape=x.shape, dtype=F32, dq_of=x)

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
        if x.dq_of is not None and x.plain is None and x.nhwc is None and same_q(x.dq_of.quant, q[0]):
            self._alias(node, x.dq_of)        # Q(DQ(x)) with the same parameters is x
            return
        self.float_input(x)
        t, nhwc = self.preferred(x)
        out = self.tensor(node.output[0], self.tensors[t].shape, np.int8, q[0])
        self.op("ONNX_QUANTIZE_LINEAR", [t], [out])
        self.new_value(node.output[0], x.shape, q[1], out, nhwc, q[0])
