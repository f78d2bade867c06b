"""Convolution and dense ops for the ONNX reader: Conv (plain, depthwise, grouped; 1-D as the 2-D op on an
(N, C, L, 1) view), ConvTranspose, MatMul, Gemm (float; the quantized forms are in qdq.py and qoperator.py)."""
from __future__ import annotations

import numpy as np

from converters.onnx.common import ACT_CODE, Renamed, Value
from edgeml.ir import Quantization



class ConvOps:
    """Conv, ConvTranspose, MatMul, Gemm; uses the host translator's helpers (need, get_nhwc, op, ...)."""

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
        if len(strides) != 2 or len(dil) != 2 or min(strides + dil) <= 0:
            self.bad(f"strides {strides} / dilations {dil} must be two positive values")
        auto = attrs.get("auto_pad", "NOTSET")
        ih, iw = x_shape[2], x_shape[3]
        if auto in ("NOTSET", ""):
            pads = list(attrs.get("pads", [0, 0, 0, 0]))
            if len(pads) != 4 or min(pads) < 0:
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

    def _as_2d(self, node, x: Value, attrs: dict) -> tuple:
        """(the (N, C, L, 1) view of a 1-D op's input, the attributes of the same 2-D op)."""
        two_d = dict(attrs)
        for key, extra in (("strides", 1), ("dilations", 1), ("kernel_shape", 1), ("output_padding", 0),
                           ("output_shape", 1)):
            if key in attrs:
                if len(attrs[key]) != 1:
                    self.bad(f"{key} {list(attrs[key])} must have one value for a 1-D input")
                two_d[key] = [attrs[key][0], extra]
        if "pads" in attrs:
            if len(attrs["pads"]) != 2:
                self.bad(f"pads {list(attrs['pads'])} must have two values for a 1-D input")
            two_d["pads"] = [attrs["pads"][0], 0, attrs["pads"][1], 0]
        return self.reshaped(x, tuple(x.shape) + (1,), node.output[0] + "/as_2d"), two_d

    def _from_2d(self, name: str, shape4, ir: int):
        """The 1-D op's output `name` from its 2-D form: NHWC tensor `ir` of ONNX shape (N, C, L, 1)."""
        v4 = self.new_value(name + "/2d", shape4, np.float32, ir, True)
        self._reshape_to(name, v4, tuple(shape4[:3]), False)

    def op_Conv(self, node, ins, attrs):
        self.check_attrs(attrs, {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"})
        self.need(ins, 2, 3)
        if self.fused_conv_1d(node, ins, attrs):       # QDQ 1-D conv: onnxruntime's QLinearConv (qoperator.py)
            return
        x, w = ins[0], ins[1]
        b = ins[2] if len(ins) > 2 else None
        rank = len(x.shape)
        one_d = rank == 3
        if rank not in (3, 4, 5):
            self.unsupported(f"only 1-D, 2-D and 3-D convolution (3-D to 5-D input) are supported, input has shape "
                             f"{list(x.shape)}")
        if w.qconst is None and w.const is None:
            self.unsupported("the weights must be constant")
        if rank == 5:
            self._conv_3d(node, x, w, b, attrs)
            return
        if one_d:
            if len(w.shape) != 3:
                self.bad(f"weights of shape {list(w.shape)} for a 3-D input")
            x, attrs = self._as_2d(node, x, attrs)
            w = self.const_value(node.output[0] + "/weights_2d",
                                 self.float_const(w, "weights").reshape(tuple(w.shape) + (1,)))
        wshape = w.shape
        if len(wshape) != 4:
            self.bad(f"weights of shape {list(wshape)} for a 4-D input")
        group = attrs.get("group", 1)
        ks = attrs.get("kernel_shape", list(wshape[2:]))
        if list(ks) != list(wshape[2:]):
            self.bad(f"kernel_shape {list(ks)} differs from the weights' {list(wshape[2:])}")
        oc, icg, kh, kw = wshape
        out_shape, options = self._conv_geometry(x, wshape, group, attrs)
        if not one_d and self._conv_as_onnxruntime_float(node, x, w, b, group, out_shape, options):
            return
        if not one_d and self._fused_conv(node, x, w, b, group, out_shape, options, attrs):
            return
        wf = self.float_const(w, "weights", copy=False)       # (read only: the IR tensors are packed copies)
        bf = None if b is None else self.float_const(b, "bias", copy=False).reshape(-1)
        if bf is not None and bf.size != oc:
            self.bad(f"bias has {bf.size} entries for {oc} output channels")
        if x.dq_of is None:
            self.float_input(x)
        xt = self._as_float32(self.get_nhwc(x))
        produced = node.output[0]
        folded = self.following_batch_norm(produced, oc)
        if folded is not None:          # Conv -> BatchNormalization: scaled weights and bias
            mul, add, produced = folded
            wf = (wf.astype(np.float64) * mul.reshape(-1, 1, 1, 1)).astype(np.float32)
            bf = add if bf is None else (bf.astype(np.float64) * mul + add).astype(np.float32)
        act, last = self.float_activation(produced)
        options["fused_activation_function"] = ACT_CODE[act]
        out = self._conv_ops(last + ("/2d" if one_d else ""), xt, wf, bf, group, out_shape, options, np.float32,
                             None, None)
        if one_d:
            self._from_2d(last, out_shape, out)
        else:
            self.new_value(last, out_shape, np.float32, out, True)

    def _conv_3d(self, node, x: Value, w: Value, b, attrs):
        """Sum over the kernel's depth taps kd of a 2-D Conv (weights w[:, :, kd]) over the depth slices that tap
        reads (an AXIS_GATHER on the (N, D, C, H, W) transpose, a zero slice for the padding), batched as
        (N * OD, C, H, W)."""
        wf = self.float_const(w, "weights")
        if wf.ndim != 5:
            self.bad(f"weights of shape {list(wf.shape)} for a 5-D input")
        n, c, depth, h, wd = x.shape
        kd = wf.shape[2]
        if list(attrs.get("kernel_shape", wf.shape[2:])) != list(wf.shape[2:]):
            self.bad(f"kernel_shape {list(attrs['kernel_shape'])} differs from the weights' {list(wf.shape[2:])}")
        strides, dil = list(attrs.get("strides", [1, 1, 1])), list(attrs.get("dilations", [1, 1, 1]))
        pads = list(attrs.get("pads", [0] * 6))
        if len(strides) != 3 or len(dil) != 3 or len(pads) != 6 or min(strides + dil) <= 0 or min(pads) < 0:
            self.bad(f"strides {strides} / dilations {dil} / pads {pads} do not fit a 3-D convolution")
        auto = attrs.get("auto_pad", "NOTSET")
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            out = -(-depth // strides[0])
            total = max((out - 1) * strides[0] + (kd - 1) * dil[0] + 1 - depth, 0)
            pads[0] = total // 2 if auto == "SAME_UPPER" else total - total // 2
            pads[3] = total - pads[0]
        elif auto == "VALID":
            pads = [0] * 6
        elif auto not in ("NOTSET", ""):
            self.bad(f"auto_pad '{auto}' is not valid")
        od = (depth + pads[0] + pads[3] - (kd - 1) * dil[0] - 1) // strides[0] + 1
        if od <= 0:
            self.bad(f"output depth would be {od}")
        two_d = {"strides": strides[1:], "dilations": dil[1:], "group": attrs.get("group", 1)}
        if auto in ("NOTSET", ""):
            two_d["pads"] = [pads[1], pads[2], pads[4], pads[5]]
        else:
            two_d["auto_pad"] = auto
        name = node.output[0]
        xs = self.transposed(x, (0, 2, 1, 3, 4), name + "/ndchw")
        src = self.get_plain(xs) if xs.const is None else self.const_tensor(name + "/ndchw", xs.const)
        src = self._as_float32(src)
        zeros = self.const_tensor(name + "/zero_slice", np.zeros((n, 1, c, h, wd), np.float32))
        padded = self.tensor(name + "/with_zero_slice", (n, depth + 1, c, h, wd), np.float32)
        self.op("CONCATENATION", [src, zeros], [padded], axis=1, fused_activation_function=0)
        total = None
        for k in range(kd):
            taps = [o * strides[0] + k * dil[0] - pads[0] for o in range(od)]
            table = tuple(t if 0 <= t < depth else depth for t in taps)
            slab = self.tensor(f"{name}/taps{k}", (n, od, c, h, wd), np.float32)
            self.op("AXIS_GATHER", [padded], [slab], tables=(tuple(range(n)), table, tuple(range(c)),
                                                             tuple(range(h)), tuple(range(wd))))
            flat = self.new_value(f"{name}/taps{k}", (n, od, c, h, wd), np.float32, slab, False)
            flat = self.reshaped(flat, (n * od, c, h, wd), f"{name}/slices{k}")
            wk = self.const_value(f"{name}/weights{k}", np.ascontiguousarray(wf[:, :, k]))
            inputs = [flat.name, wk.name] + ([b.name] if b is not None and k == 0 else [])
            self.op_Conv(Renamed(node, None, f"{name}/conv{k}", inputs), [self.values[i] for i in inputs], two_d)
            part = self.values[f"{name}/conv{k}"]
            total = part if total is None else self.onnx_binary(f"{name}/sum{k}", total, part, "ADD")
        oc, oh, ow = total.shape[1:]
        stacked = self.reshaped(total, (n, od, oc, oh, ow), name + "/nd")
        self.values[name] = self.transposed(stacked, (0, 2, 1, 3, 4), name)

    def op_ConvTranspose(self, node, ins, attrs):
        """A Conv (stride 1, the kernel flipped, input and output channels swapped per group) over the input with
        stride - 1 zeros between its elements and the padding around them: one AXIS_GATHER from the input with a
        zero row and column appended, reading the zero where the spread-out input has none."""
        self.check_attrs(attrs, {"auto_pad", "dilations", "group", "kernel_shape", "output_padding", "output_shape",
                                 "pads", "strides"})
        self.need(ins, 2, 3)
        x, w = ins[0], ins[1]
        b = ins[2] if len(ins) > 2 else None
        if x.rank not in (3, 4):
            self.unsupported(f"only 1-D and 2-D ConvTranspose (3-D / 4-D input) are supported, input has shape "
                             f"{list(x.shape)}")
        if w.const is None:
            self.unsupported("the weights must be constant")
        if len(w.shape) != x.rank:
            self.bad(f"weights of shape {list(w.shape)} for a {x.rank}-D input")
        one_d = x.rank == 3
        wf = self.float_const(w, "weights")
        if one_d:
            x, attrs = self._as_2d(node, x, attrs)
            wf = wf.reshape(wf.shape + (1,))
        if x.dq_of is None:
            self.float_input(x)
        group = attrs.get("group", 1)
        ic, ocg, kh, kw = wf.shape
        if group <= 0 or ic != x.shape[1] or ic % group:
            self.bad(f"weights {list(wf.shape)} with group {group} do not fit {x.shape[1]} input channels")
        if list(attrs.get("kernel_shape", [kh, kw])) != [kh, kw]:
            self.bad(f"kernel_shape {list(attrs['kernel_shape'])} differs from the weights' {[kh, kw]}")
        oc = ocg * group
        bf = None if b is None else self.float_const(b, "bias").reshape(-1)
        if bf is not None and bf.size != oc:
            self.bad(f"bias has {bf.size} entries for {oc} output channels")
        tables = []
        out_sizes = []
        dil = list(attrs.get("dilations", [1, 1]))
        for d in range(2):
            size, k = x.shape[2 + d], (kh, kw)[d]
            stride, dl = self._transpose_axis_params(attrs, d)
            begin, out = self._transpose_padding(attrs, d, size, k, stride, dl)
            lead = (k - 1) * dl - begin         # where input element 0 lands in the spread-out input
            table = []
            for j in range(out + (k - 1) * dl):
                q, r = divmod(j - lead, stride)
                table.append(q if r == 0 and 0 <= q < size else size)
            tables.append(table)
            out_sizes.append(out)
        name = node.output[0]
        xt = self._as_float32(self.get_nhwc(x))
        n, h, wd, c = self.tensors[xt].shape
        padded = self.tensor(name + "/zero_padded", (n, h + 1, wd + 1, c), np.float32)
        self.op("PAD", [xt, self.const_tensor(name + "/zero_pads", np.array([(0, 0), (0, 1), (0, 1), (0, 0)],
                                                                             np.int32))], [padded])
        spread = self.tensor(name + "/spread", (n, len(tables[0]), len(tables[1]), c), np.float32)
        self.op("AXIS_GATHER", [padded], [spread], tables=(tuple(range(n)), tuple(tables[0]), tuple(tables[1]),
                                                           tuple(range(c))))
        # conv weights [oc][ic / group][kh][kw]: per group, channels swapped and the kernel flipped
        icg = ic // group
        wc = wf.reshape(group, icg, ocg, kh, kw).transpose(0, 2, 1, 3, 4)[:, :, :, ::-1, ::-1]
        wc = np.ascontiguousarray(wc.reshape(oc, icg, kh, kw))
        out_shape = (x.shape[0], oc, out_sizes[0], out_sizes[1])
        options = dict(stride_h=1, stride_w=1, dilation_h_factor=dil[0], dilation_w_factor=dil[1], padding=1,
                       explicit_padding=(0, 0, 0, 0))
        act, last = self.float_activation(name)
        options["fused_activation_function"] = ACT_CODE[act]
        out = self._conv_ops(last + ("/2d" if one_d else ""), spread, wc, bf, group, out_shape, options, np.float32,
                             None, None)
        if one_d:
            self._from_2d(last, out_shape, out)
        else:
            self.new_value(last, out_shape, np.float32, out, True)

    def _transpose_axis_params(self, attrs, d: int) -> tuple:
        strides, dil = list(attrs.get("strides", [1, 1])), list(attrs.get("dilations", [1, 1]))
        if len(strides) != 2 or len(dil) != 2 or any(v <= 0 for v in strides + dil):
            self.bad(f"strides {strides} / dilations {dil} must be two positive values")
        return strides[d], dil[d]

    def _transpose_padding(self, attrs, d: int, size: int, k: int, stride: int, dil: int) -> tuple:
        """(leading pad, output size) of a ConvTranspose axis, as the ONNX specification computes them."""
        out_pad = list(attrs.get("output_padding", [0, 0]))
        if len(out_pad) != 2 or not 0 <= out_pad[d] < max(stride, dil):
            self.bad(f"output_padding {out_pad} must be two values below the stride or dilation")
        full = stride * (size - 1) + out_pad[d] + (k - 1) * dil + 1
        auto = attrs.get("auto_pad", "NOTSET")
        if auto not in ("NOTSET", "", "VALID", "SAME_UPPER", "SAME_LOWER"):
            self.bad(f"auto_pad '{auto}' is not valid")
        if "output_shape" in attrs or auto in ("SAME_UPPER", "SAME_LOWER"):
            out = size * stride
            if "output_shape" in attrs:
                shape = list(attrs["output_shape"])[-2:]         # (it may also list the batch and channels)
                if len(shape) != 2 or any(v <= 0 for v in shape):
                    self.bad(f"output_shape {list(attrs['output_shape'])} must end in two positive sizes")
                out = shape[d]
            total = full - out
            begin = total // 2 if auto == "SAME_UPPER" else total - total // 2
            return begin, out
        pads = [0, 0, 0, 0] if auto == "VALID" else list(attrs.get("pads", [0, 0, 0, 0]))
        if len(pads) != 4 or any(p < 0 for p in pads):
            self.bad(f"pads {pads} must be four non-negative values")
        out = full - pads[d] - pads[d + 2]
        if out <= 0:
            self.bad(f"output size {out} on spatial axis {d}")
        return pads[d], out

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
            bt = -1 if bias is None else bias_t(slice(None), name + "/bias")
            self.op("CONV_2D", [xt, wt, bt], [out], **options)
            return out
        if group == ic and oc % ic == 0:
            wq = None if wquant is None else Quantization(wquant.scale, wquant.zero_point, 3)
            wt = self.const_tensor(name + "/weights", wdata.transpose(1, 2, 3, 0), wq)
            bt = -1 if bias is None else bias_t(slice(None), name + "/bias")
            self.op("DEPTHWISE_CONV_2D", [xt, wt, bt], [out], depth_multiplier=oc // ic, **options)
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

    def op_MatMul(self, node, ins, attrs):
        self.need(ins, 2, 2)
        a, b = ins
        if self._fold(node, ins, attrs):
            return
        if self._fused_matmul_activations(node, a, b):      # QDQ product of two activations (qmatmul.py)
            return
        if (b.qconst is None and b.const is None) or b.rank != 2 or a.rank < 1:
            self.matmul_values(node.output[0], a, b)        # between activations, or batched: BATCH_MATMUL
            return
        if a.shape[-1] != b.shape[0]:
            self.bad(f"MatMul of {list(a.shape)} by {list(b.shape)}: depths {a.shape[-1]} and {b.shape[0]}")
        if self._fused_dense(node, a, b, None, False, 1.0):
            return
        self._dense(node.output[0], a, self.float_const(b, "weights", copy=False).T, None)

    def op_Gemm(self, node, ins, attrs):
        self.need(ins, 2, 3)
        a, b = ins[0], ins[1]
        c = ins[2] if len(ins) > 2 else None
        if self._fold(node, ins, attrs):
            return
        alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
        ta, tb = attrs.get("transA", 0), attrs.get("transB", 0)
        if a.rank != 2 or len(b.shape) != 2:
            self.bad(f"Gemm needs 2-D inputs, got {list(a.shape)} and {list(b.shape)}")
        if b.qconst is None and b.const is None:
            self._gemm_of_activations(node, a, b, c, alpha, beta, bool(ta), bool(tb))
            return
        if ta:
            a = self._transposed_2d(a)
        n = b.shape[0] if tb else b.shape[1]
        if a.shape[1] != (b.shape[1] if tb else b.shape[0]):
            self.bad(f"Gemm of {list(a.shape)} by {list(b.shape)} (transB={tb}) does not fit")
        if self._fused_dense(node, a, b, c, bool(tb), alpha, beta):
            return
        w = self.float_const(b, "B", copy=False)
        w = w if tb else w.T
        if alpha != 1.0:            # (a product by 1.0 is the value itself)
            w = w * np.float32(alpha)
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

    def _gemm_of_activations(self, node, a: Value, b: Value, c, alpha: float, beta: float, ta: bool, tb: bool):
        """alpha * A' B' + beta * C with B an activation: BATCH_MATMUL, then the scaling and the bias."""
        name = node.output[0]
        r = self.batch_matmul(name + ("/mm" if alpha != 1.0 or c is not None else ""), a, b, ta, tb)
        if alpha != 1.0:
            r = self.onnx_binary(name + ("/scaled" if c is not None else ""), r,
                                 self.const_value(name + "/alpha", np.array(alpha, np.float32)), "MUL")
        if c is not None:
            if beta != 1.0:
                c = self.onnx_binary(name + "/c", c, self.const_value(name + "/beta", np.array(beta, np.float32)),
                                     "MUL") if c.const is None else self.const_value(
                                         name + "/c", (c.const * np.float32(beta)).astype(np.float32))
            self.onnx_binary(name, r, c, "ADD")

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
