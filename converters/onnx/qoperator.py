"""QOperator models for the ONNX reader: QLinearConv, ConvInteger, QLinearMatMul, MatMulInteger,
DynamicQuantizeLinear, and onnxruntime's com.microsoft QLinear ops."""
from __future__ import annotations

from typing import Optional

import numpy as np

from converters.onnx.common import ACT_CODE, TO_NHWC, Renamed, Value, same_q
from edgeml.ir import Quantization
from edgeml.numerics import column_scales


class QOperatorOps:
    """The integer-operator ops (default domain and com.microsoft); uses the host translator's helpers (need,
    const_of, get_nhwc, op, ...)."""

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
        if same_q(v.quant, q):
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

    CONV_ATTRIBUTES = ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")

    def _conv_attributes(self, attrs: dict, w_shape: tuple) -> dict:
        """Validated conv attributes; a 1-D conv's lifted to 2-D (a height-1 image, kernel and padding)."""
        for key in attrs:
            if key not in self.CONV_ATTRIBUTES:
                self.unsupported(f"attribute '{key}'")
        spatial = len(w_shape) - 2
        ks = attrs.get("kernel_shape")
        if ks is not None and list(ks) != list(w_shape[2:]):
            self.bad(f"kernel_shape {list(ks)} differs from the weights' {list(w_shape[2:])}")
        for key, size in (("strides", spatial), ("dilations", spatial), ("pads", 2 * spatial)):
            if key in attrs and len(attrs[key]) != size:
                self.bad(f"{key} {list(attrs[key])} must hold {size} values for a {spatial}-D convolution")
        if spatial != 1:
            return attrs
        out = dict(attrs)
        for key, one in (("strides", 1), ("dilations", 1)):
            if key in attrs:
                out[key] = [one] + list(attrs[key])
        if "pads" in attrs:
            out["pads"] = [0, attrs["pads"][0], 0, attrs["pads"][1]]
        out.pop("kernel_shape", None)
        return out

    def op_QLinearConv(self, node, ins, attrs):
        """QLinearConv, 2-D, and 1-D run as a 2-D conv over a height-1 image."""
        self.need(ins, 8, 9)
        x, xs, xz, w, wsv, wz, ys, yz = ins[:8]
        b = ins[8] if len(ins) > 8 else None
        q = self._scalar_q(xs, xz, x.dtype, "input")
        x = self.quantized(x, q)
        yq = self._scalar_q(ys, yz, self.const_of(yz, "output zero point").dtype if yz is not None else np.uint8,
                            "output")
        w_diff = self._int_weights(w, wz, 0, "weights")
        if w_diff.ndim not in (3, 4) or x.rank != w_diff.ndim:
            self.unsupported(f"QLinearConv of input {list(x.shape)} with weights {list(w_diff.shape)} (1-D and "
                             "2-D convolutions are supported)")
        attrs = self._conv_attributes(attrs, w_diff.shape)
        one_d = w_diff.ndim == 3
        if one_d:
            w_diff = w_diff[:, :, None, :]
            x = self.lifted_to_2d(x)
        ws = self.const_of(wsv, "weight scale").astype(np.float32).reshape(-1)
        if ws.size not in (1, w_diff.shape[0]):
            self.bad(f"{ws.size} weight scales for {w_diff.shape[0]} output channels")
        bias = None if b is None else self.const_of(b, "bias").reshape(-1)
        if bias is not None and (bias.dtype != np.int32 or bias.size != w_diff.shape[0]):
            self.bad("bias must hold one int32 per output channel")
        name = node.output[0] + ("/2d" if one_d else "")
        out, out_shape = self._qlinear_conv_common(Renamed(node, node.input[0], name), x, w_diff, ws, bias, yq,
                                                   attrs, np.int8, int(q.zero_point[0]))
        ydt = np.uint8 if yz is None else self.const_of(yz, "output zero point").dtype
        v = self.new_value(name, out_shape, ydt, out, True, yq)
        if one_d:
            self.dropped_to_1d(v, node.output[0])

    def fused_conv_1d(self, node, ins, attrs) -> bool:
        """DQ -> 1-D Conv [-> Relu / Clip] -> Q (onnxruntime's QLinearConv over a sequence): the 2-D QDQ
        translation over the height-1 image, its output reshaped back to N, C, L."""
        if len(ins) < 2 or ins[0].rank != 3 or ins[0].dq_of is None or ins[0].dq_of.quant is None:
            return False
        x, w = ins[0], ins[1]
        fu = self.fusion(node.output[0])
        if fu is None or w.qconst is None or w.const is None or w.const.ndim != 3:
            return False
        data, scale, zp, axis = w.qconst
        w2 = Value(name=w.name + "/2d", shape=(w.shape[0], w.shape[1], 1, w.shape[2]), dtype=w.dtype,
                   const=w.const[:, :, None, :], qconst=(data[:, :, None, :], scale, zp, axis))
        lifted = self.lifted_to_2d(x.dq_of)
        x2 = Value(name=x.name + "/nc1l", shape=lifted.shape, dtype=x.dtype, dq_of=lifted)
        self.op_Conv(node, [x2, w2] + list(ins[2:]), self._conv_attributes(attrs, w.shape))
        # the fused 2-D conv made the Q output; the float fallback made the conv's (or its fused activation's)
        made = [n for n in [fu.q_node.output[0]] + [self.nodes[k].output[0] for k in fu.skipped] + [node.output[0]]
                if n in self.values and self.values[n].rank == 4]
        v = self.values[made[0]]
        t = v.plain if v.plain is not None else v.nhwc
        self.tensors[t].name = made[0] + "/2d"       # the 3-D value below takes the ONNX name
        self.dropped_to_1d(v, made[0])
        return True

    def lifted_to_2d(self, x: Value) -> Value:
        """A 3-D NCL value as the NC1L image of the same bytes."""
        n, c, length = x.shape
        t = self.get_plain(x)
        name = x.name + "/nc1l"
        out = self.like(t, name, (n, c, 1, length))
        self.op("RESHAPE", [t, self.const_tensor(name + "/shape", np.array([-1, c, 1, length], np.int32))], [out])
        return Value(name=name, shape=(n, c, 1, length), dtype=x.dtype, quant=x.quant, plain=out, ort_u8=x.ort_u8)

    def dropped_to_1d(self, v: Value, name: str) -> Value:
        """The NC1L image `v` as the 3-D NCL value `name`."""
        n, c, _, length = v.shape
        t = self.get_plain(v)
        out = self.like(t, name, (n, c, length))
        self.op("RESHAPE", [t, self.const_tensor(name + "/shape", np.array([-1, c, length], np.int32))], [out])
        return self.new_value(name, (n, c, length), v.dtype, out, False, v.quant)

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
                       bscale=None, bias=None, scales=None, out_name=None, relu: bool = False):
        """a [..., K] times the constant b [K, N] (any zero points) with an int32 bias: FULLY_CONNECTED where
        the weights are symmetric int8 and the scale is onnxruntime's (x_scale * w_scale) / y_scale, the exact
        integer kernel otherwise (int32 out, int8 requantized with `scales`, or float32 (float)acc * scales)."""
        if b.const is None or b.rank != 2:
            self.unsupported("the second input must be a constant 2-D matrix")
        if a.rank < 1 or a.shape[-1] != b.shape[0]:
            self.bad(f"cannot multiply {list(a.shape)} by {list(b.shape)}")
        diff = self._int_weights(b, bz, 1, "B")          # [K][N]
        n_out = diff.shape[1]
        t = self.get_plain(a)
        out_shape = tuple(a.shape[:-1]) + (n_out,)
        name = out_name or node.output[0]
        symmetric = out_dtype == np.int8 and zp_tensor < 0 and scales is None and not relu and \
            np.all(diff >= -128) and np.all(diff <= 127)
        bt = -1 if bias is None else self.const_tensor(name + "/bias", np.ascontiguousarray(bias, np.int32))
        if symmetric:
            wq = Quantization(np.broadcast_to(bscale.astype(np.float64), (n_out,)).copy() if bscale.size > 1 else
                              bscale.astype(np.float64).reshape(-1), np.zeros(bscale.size, np.int64), 0)
            out = self.tensor(name, out_shape, np.int8, yq)
            wt = self.const_tensor(name + "/weights", np.ascontiguousarray(diff.T.astype(np.int8)), wq)
            self.op("FULLY_CONNECTED", [t, wt, bt], [out], keep_num_dims=a.rank != 2, fused_activation_function=0)
            return out, out_shape
        extra = {}
        if scales is not None:
            extra["requant_scales"] = np.broadcast_to(np.asarray(scales, np.float32), (n_out,)).copy()
        elif out_dtype == np.int8:
            extra["requant_scales"] = column_scales(a.quant.scale[0], np.broadcast_to(bscale, (n_out,)), yq.scale[0])
        out = self.tensor(name, out_shape, out_dtype, yq if out_dtype == np.int8 else None)
        w4 = np.ascontiguousarray(diff.T.reshape(n_out, 1, 1, diff.shape[0]))
        self.op("ONNX_CONV_INTEGER", [t, self.const_tensor(name + "/weights", w4), bt, zp_tensor], [out], dense=True,
                x_zero_point=zp_ir, relu=relu, **extra)
        return out, out_shape

    def ms_QGemm(self, node, ins, attrs):
        """onnxruntime's QGemm: Y = alpha * A' B' + C summed in int32 (C is the int32 bias), requantized with
        (alpha * a_scale * b_scale) / y_scale, or to float32 as (float)acc * (alpha * a_scale * b_scale) when
        Y has no scale."""
        self.need(ins, 6, 9)
        a, as_, az, b, bs, bz = ins[:6]
        c = ins[6] if len(ins) > 6 else None
        ys = ins[7] if len(ins) > 7 else None
        yz = ins[8] if len(ins) > 8 else None
        for key in attrs:
            if key not in ("alpha", "transA", "transB"):
                self.unsupported(f"attribute '{key}'")
        alpha = float(attrs.get("alpha", 1.0))
        ta, tb = int(attrs.get("transA", 0)), int(attrs.get("transB", 0))
        if ta not in (0, 1) or tb not in (0, 1):
            self.bad(f"transA {ta} / transB {tb} must be 0 or 1")
        if not np.isfinite(alpha):
            self.bad(f"alpha {alpha} is not finite")
        if a.rank != 2 or b.rank != 2:
            self.bad(f"QGemm needs 2-D A and B, got {list(a.shape)} and {list(b.shape)}")
        q = self._scalar_q(as_, az, a.dtype, "A")
        a = self.quantized(a, q)
        if ta:
            a = self._transposed_2d(a)
        bdata = self.const_of(b, "B")
        if bdata.dtype not in (np.int8, np.uint8):
            self.unsupported(f"B of type {bdata.dtype} (int8 / uint8)")
        if a.dtype == np.int8 and bdata.dtype == np.uint8:
            self.unsupported("int8 A with uint8 B (onnxruntime's QGemm takes uint8 A with int8 / uint8 B, or "
                             "int8 A with int8 B)")
        b_kn = Value(name=b.name + "/kn", shape=bdata.shape[::-1] if tb else bdata.shape, dtype=bdata.dtype,
                     const=np.ascontiguousarray(bdata.T if tb else bdata))
        k, n = b_kn.shape
        if a.shape[1] != k:
            self.bad(f"A {list(a.shape)} (transA={ta}) by B {list(bdata.shape)} (transB={tb}) does not fit")
        bscale = self.const_of(bs, "B scale")
        if bscale.dtype != np.float32 or bscale.size not in (1, n) or bscale.ndim > 1:
            self.bad(f"B scale must be float32 of size 1 or {n}, got {bscale.dtype} {list(bscale.shape)}")
        if bz is not None and self.const_of(bz, "B zero point").size != bscale.size:
            self.bad("B zero point and scale must have the same size")
        bscale = bscale.reshape(-1)
        bias = None
        if c is not None:
            cdata = self.const_of(c, "C")
            if cdata.dtype != np.int32:
                self.bad(f"C must be int32, got {cdata.dtype}")
            if cdata.size == 1:
                bias = np.full(n, int(cdata.reshape(-1)[0]), np.int32)
            elif cdata.size == n and (cdata.ndim == 1 or (cdata.ndim == 2 and cdata.shape[0] == 1)):
                bias = cdata.reshape(-1).astype(np.int32)
            else:
                self.unsupported(f"C of shape {list(cdata.shape)} (a scalar, [N] or [1, N] is supported)")
        product = (np.float32(alpha) * np.float32(q.scale[0])) * bscale.astype(np.float32)
        if ys is None:
            if yz is not None:
                self.bad("y_zero_point without y_scale")
            out, out_shape = self._integer_dense(node, a, b_kn, bz, None, np.float32, int(q.zero_point[0]),
                                                 bias=bias, scales=product)
            self.new_value(node.output[0], out_shape, np.float32, out, False)
            return
        ydt = np.dtype(np.uint8) if yz is None else self.const_of(yz, "output zero point").dtype
        yq = self._scalar_q(ys, yz, ydt, "output")
        if ydt != a.dtype:
            self.bad(f"output type {ydt} differs from A's {a.dtype}")
        scales = None if alpha == 1.0 else product / np.float32(yq.scale[0])
        out, out_shape = self._integer_dense(node, a, b_kn, bz, yq, np.int8, int(q.zero_point[0]), bscale=bscale,
                                             bias=bias, scales=scales)
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
    def broadcast_operands(self, pairs: list):
        """IR tensors, in one layout, of the integer operands [(Value, Quantization)] of a broadcasting
        element-wise op (non-constant Values already carry their quantization; constants hold the ONNX integers,
        stored here as int8): (tensors, nhwc, ONNX output shape)."""
        try:
            out_shape = tuple(int(d) for d in np.broadcast_shapes(*[tuple(v.shape) for v, _ in pairs]))
        except ValueError:
            self.bad(f"shapes {[list(v.shape) for v, _ in pairs]} do not broadcast")
        single = [int(np.prod(v.shape, dtype=np.int64)) == 1 for v, _ in pairs]
        nhwc = len(out_shape) == 4 and any(v.const is None and self.preferred_is_nhwc(v) for v, _ in pairs) and \
            all(v.const is not None or v.rank == 4 or one for (v, _), one in zip(pairs, single))
        ts = []
        for (v, q), one in zip(pairs, single):
            if v.const is not None:
                if v.const.dtype not in (np.int8, np.uint8):
                    self.bad(f"constant '{v.name}' of type {v.const.dtype} (int8 / uint8)")
                data = (v.const.astype(np.int16) - (128 if v.const.dtype == np.uint8 else 0)).astype(np.int8)
                if nhwc:
                    data = data.reshape((1,) * (4 - data.ndim) + data.shape).transpose(TO_NHWC)
                ts.append(self.const_tensor(f"{v.name}/q{self.k}", np.ascontiguousarray(data), q))
            elif nhwc and v.rank == 4:
                ts.append(self.get_nhwc(v))
            else:
                ts.append(self.get_plain(v))
        return ts, nhwc, out_shape

    def qlinear_add(self, name: str, a: Value, b: Value, yq: Quantization, unsigned: tuple) -> tuple:
        """onnxruntime's QLinearAdd of two quantized operands (see broadcast_operands): (IR tensor, nhwc, shape)."""
        (ta, tb), nhwc, out_shape = self.broadcast_operands([(a, a.quant), (b, b.quant)])
        ir_shape = tuple(out_shape[p] for p in TO_NHWC) if nhwc else out_shape
        out = self.tensor(name, ir_shape, np.int8, yq)
        self.op("ONNX_QLINEAR_ADD", [ta, tb], [out], unsigned=unsigned)
        return out, nhwc, out_shape

    def quantized_operand(self, v: Value, q: Quantization) -> Value:
        """A QLinear op's operand: a non-constant integer value read with q, or a constant's integers with q."""
        if v.const is not None:
            if v.const.dtype not in (np.int8, np.uint8):
                self.bad(f"constant '{v.name}' of type {v.const.dtype} (int8 / uint8)")
            return Value(name=v.name, shape=v.shape, dtype=v.dtype, const=v.const, quant=q)
        return self.quantized(v, q)

    def ms_QLinearAdd(self, node, ins, attrs):
        self.need(ins, 7, 8)
        if attrs:
            self.unsupported(f"attribute '{next(iter(attrs))}'")
        a, as_, az, b, bs, bz, ys = ins[:7]
        yz = ins[7] if len(ins) > 7 else None
        dt = a.dtype
        if b.dtype != dt:
            self.bad(f"A of type {dt} and B of type {b.dtype}")
        qa, qb = self._scalar_q(as_, az, dt, "A"), self._scalar_q(bs, bz, b.dtype, "B")
        yq = self._scalar_q(ys, yz, dt, "C")
        if a.const is not None and b.const is not None:
            self.unsupported("QLinearAdd of two constants")
        a, b = self.quantized_operand(a, qa), self.quantized_operand(b, qb)
        u = dt == np.uint8
        out, nhwc, out_shape = self.qlinear_add(node.output[0], a, b, yq, (u, u, u))
        self.new_value(node.output[0], out_shape, dt, out, nhwc, yq)

    def only_attributes(self, attrs: dict, allowed: tuple):
        """Refuse an attribute the translation does not read."""
        for key in attrs:
            if key not in allowed:
                self.unsupported(f"attribute '{key}'")

    def ms_QLinearSoftmax(self, node, ins, attrs):
        self.only_attributes(attrs, ("axis", "opset"))
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
            name = f"{node.output[0]}/dq{k}"
            if v.const is not None:         # DequantizeLinear of a constant, evaluated as onnxruntime does
                ints = self.quantized_operand(v, q).const.astype(np.float32)
                zp = np.float32(int(q.zero_point[0]) + (128 if v.const.dtype == np.uint8 else 0))
                dqs.append(self.const_value(name, ((ints - zp) * np.float32(q.scale[0])).astype(np.float32)))
                names.append(name)
                continue
            iv = self.quantized(v, q)
            if channels_last:               # NHWC data: the same bytes are the NHWC copy of an NCHW value
                n, h, w, c = iv.shape
                iv = Value(name=iv.name + "/nchw", shape=(n, c, h, w), dtype=iv.dtype, quant=iv.quant,
                           nhwc=self.get_plain(iv), ort_u8=iv.ort_u8)
            dqs.append(Value(name=name, shape=iv.shape, dtype=np.dtype(np.float32), dq_of=iv))
            names.append(name)
            self.values[name] = dqs[-1]
        tmp = node.output[0] + "/float"
        float_op(Renamed(node, None, tmp, inputs=names), dqs, attrs)
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
        self.only_attributes(attrs, ())
        x, qx, yq = self._ms_unary_qparams(node, ins)
        self._qlinear_via_float(node, self.op_Sigmoid, [(x, qx)], yq, x.dtype, attrs)

    def ms_QLinearLeakyRelu(self, node, ins, attrs):
        self.only_attributes(attrs, ("alpha",))
        x, qx, yq = self._ms_unary_qparams(node, ins)
        self._qlinear_via_float(node, self.op_LeakyRelu, [(x, qx)], yq, x.dtype, attrs)

    def ms_QLinearMul(self, node, ins, attrs):
        """MLAS's QLinearMul: the integer product of the zero-point-free operands times (s_a s_b) / s_y."""
        self.need(ins, 7, 8)
        if attrs:
            self.unsupported(f"attribute '{next(iter(attrs))}'")
        a, as_, az, b, bs, bz, ys = ins[:7]
        yz = ins[7] if len(ins) > 7 else None
        dt = a.dtype
        if b.dtype != dt:
            self.bad(f"A of type {dt} and B of type {b.dtype}")
        if a.const is not None and b.const is not None:
            self.unsupported("QLinearMul of two constants")
        a = self.quantized_operand(a, self._scalar_q(as_, az, dt, "A"))
        b = self.quantized_operand(b, self._scalar_q(bs, bz, dt, "B"))
        yq = self._scalar_q(ys, yz, dt, "C")
        (ta, tb), nhwc, out_shape = self.broadcast_operands([(a, a.quant), (b, b.quant)])
        ir_shape = tuple(out_shape[p] for p in TO_NHWC) if nhwc else out_shape
        out = self.tensor(node.output[0], ir_shape, np.int8, yq)
        self.op("ONNX_QLINEAR_MUL", [ta, tb], [out], unsigned=dt == np.uint8)
        self.new_value(node.output[0], out_shape, dt, out, nhwc, yq)

    def _requantized_constant(self, name: str, c: Value, q: Quantization, yq: Quantization) -> Value:
        """A constant integer operand brought to the output's parameters at load as onnxruntime's table does
        (dequantize in float32, then QuantizeLinear: divide, round half to even, add the zero point, saturate)."""
        data = c.const
        if data.dtype not in (np.int8, np.uint8):
            self.bad(f"constant '{c.name}' of type {data.dtype} (int8 / uint8)")
        ir = data.astype(np.int32) - (128 if data.dtype == np.uint8 else 0)
        if not same_q(q, yq):
            f = (ir - np.int32(q.zero_point[0])).astype(np.float32) * np.float32(q.scale[0])
            ir = np.clip(np.rint(f / np.float32(yq.scale[0])) + int(yq.zero_point[0]), -128, 127)
        t = self.const_tensor(name, ir.astype(np.int8), yq)
        return Value(name=name, shape=c.shape, dtype=data.dtype, quant=yq, plain=t)

    def ms_QLinearConcat(self, node, ins, attrs):
        for key in attrs:
            if key != "axis":
                self.unsupported(f"attribute '{key}'")
        if len(ins) < 5 or (len(ins) - 2) % 3:
            self.bad(f"{len(ins)} inputs: expected Y_scale, Y_zero_point and triples (X, X_scale, X_zero_point)")
        ys, yz = ins[0], ins[1]
        xs = [ins[k:k + 3] for k in range(2, len(ins), 3)]
        dt = xs[0][0].dtype
        yq = self._scalar_q(ys, yz, dt, "output")
        vals = []
        for k, (x, s, z) in enumerate(xs):
            qx = self._scalar_q(s, z, x.dtype, f"input {k}")
            if x.dtype != dt:
                self.bad(f"input {k} of type {x.dtype}; the others are {dt}")
            if x.const is not None:
                vals.append(self._requantized_constant(f"{node.output[0]}/c{k}", x, qx, yq))
                continue
            x = self.quantized(x, qx)
            if not same_q(qx, yq):
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
