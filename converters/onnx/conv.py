"""Convolution, pooling and dense ops for the ONNX reader: Conv (plain, depthwise, grouped), AveragePool / MaxPool
and their global forms, MatMul, Gemm (float; the quantized forms are in qdq.py and qoperator.py)."""
from __future__ import annotations

import numpy as np

from converters.onnx.common import ACT_CODE, Renamed, Value
from edgeml.ir import Quantization


class ConvOps:
    """Conv, pooling, MatMul, Gemm; uses the host translator's helpers (need, get_nhwc, op, ...)."""

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
        if self.fused_conv_1d(node, ins, attrs):       # QDQ 1-D conv: onnxruntime's QLinearConv (qoperator.py)
            return
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
        if self.fused_qlinear_pool(node, ins, attrs, False):      # QDQ group: onnxruntime's QLinearAveragePool
            return
        self._pool_common(node, ins, attrs, False, False)

    def op_MaxPool(self, node, ins, attrs):
        self._pool_common(node, ins, attrs, True, False)

    def op_GlobalAveragePool(self, node, ins, attrs):
        if self.fused_qlinear_pool(node, ins, attrs, True):       # QDQ group: QLinearGlobalAveragePool
            return
        self._pool_common(node, ins, attrs, False, True)

    def op_GlobalMaxPool(self, node, ins, attrs):
        self._pool_common(node, ins, attrs, True, True)

    def op_MatMul(self, node, ins, attrs):
        self.need(ins, 2, 2)
        a, b = ins
        if self._fold(node, ins, attrs):
            return
        if self._fused_matmul_activations(node, a, b):      # QDQ product of two activations (qmatmul.py)
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
                self._binary(Renamed(node, None, node.output[0], [out.name, c.name]), [out, c], "ADD")
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
