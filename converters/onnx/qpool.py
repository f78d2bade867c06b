"""onnxruntime's com.microsoft QLinearAveragePool and QLinearGlobalAveragePool for the ONNX reader (1-D and 2-D,
channels first or channels_last), on their own kernel (em_onnx_qlinear.h em_onnx_qlinear_avgpool): a float window
average quantized as onnxruntime quantizes it, or MLAS's integer global average where the kernel covers the whole
unpadded image."""
from __future__ import annotations

import numpy as np

from converters.onnx.common import Value
from edgeml.ir import Quantization

POOL_ATTRIBUTES = ("auto_pad", "ceil_mode", "channels_last", "count_include_pad", "dilations", "kernel_shape",
                   "pads", "strides")


class QPoolOps:
    """Quantized average pooling; uses the host translator's helpers (_ms_unary_qparams, quantized, op, ...)."""

    def _qlinear_pool_geometry(self, image: tuple, attrs: dict, global_: bool):
        """(kernel, strides, pads (top, left, bottom, right), output size) of a 2-D pool, as onnxruntime's
        PoolAttributes computes them (ceil_mode drops a last window that would start in the trailing pad)."""
        if global_:
            return tuple(image), (1, 1), (0, 0, 0, 0), (1, 1)
        ks = list(attrs.get("kernel_shape", []))
        if len(ks) != 2 or any(k <= 0 for k in ks):
            self.bad(f"kernel_shape {ks} must hold one positive value per spatial axis")
        if any(d != 1 for d in attrs.get("dilations", [1, 1])):
            self.unsupported("QLinearAveragePool with dilations")
        strides, _, pads = self._spatial(dict(attrs, dilations=[1, 1]), (1, 1) + tuple(image), ks, "pool")
        ceil = attrs.get("ceil_mode", 0)
        out = []
        for d in range(2):
            span = image[d] + pads[d] + pads[d + 2] - ks[d]
            o = (-(-span // strides[d]) if ceil else span // strides[d]) + 1
            if ceil and (o - 1) * strides[d] >= image[d] + pads[d]:
                o -= 1
            if o <= 0:
                self.bad(f"output size {o} on spatial axis {d}")
            out.append(o)
        return tuple(ks), tuple(strides), tuple(pads), tuple(out)

    def _qlinear_average_pool(self, node, ins, attrs, global_: bool):
        for key in attrs:
            if key not in (("channels_last",) if global_ else POOL_ATTRIBUTES):
                self.unsupported(f"attribute '{key}'")
        x, qx, yq = self._ms_unary_qparams(node, ins)
        if x.rank not in (3, 4):
            self.unsupported(f"QLinear average pooling of a {x.rank}-D input (1-D and 2-D pooling are supported)")
        self._average_pool_integers(self.quantized(x, qx), yq, node.output[0], attrs, global_)

    def fused_qlinear_pool(self, node, ins, attrs, global_: bool) -> bool:
        """DQ -> AveragePool / GlobalAveragePool -> Q of one integer type: onnxruntime's QDQ transformer makes it a
        QLinearAveragePool / QLinearGlobalAveragePool, so it runs on that op's arithmetic."""
        x = ins[0] if ins else None
        if x is None or x.dq_of is None or x.dq_of.quant is None or x.rank not in (3, 4):
            return False
        if any(key not in POOL_ATTRIBUTES or key == "channels_last" or global_ for key in attrs):
            return False            # the float path names what it refuses
        fu = self.fusion(node.output[0], allow_act=False)
        yq = None if fu is None else self.q_params(fu.q_node)
        u8 = x.dq_of.ort_u8
        if yq is None or yq[1] != x.dq_of.dtype or u8 != (fu.q_node.output[0] in self.u8_names):
            return False        # onnxruntime fuses the group only when it sees one integer type on both sides
        # that type may be uint8 for int8 tensors (its QDQS8ToU8 transformer): the same integers, but the output
        # zero point is added in float before rounding, so the domain shows on ties
        self._average_pool_integers(x.dq_of, yq[0], fu.q_node.output[0], attrs, global_, in_uint8=u8)
        self.finish_fusion(fu)
        return True

    def _average_pool_integers(self, x: Value, yq: Quantization, name: str, attrs: dict, global_: bool,
                               in_uint8: bool = False):
        """Average pooling of the quantized integer value x into the value `name` (x's ONNX type, parameters yq),
        computed as onnxruntime computes it for x's type (or for uint8 when in_uint8)."""
        channels_last = bool(attrs.get("channels_last", 0))
        one_d = x.rank == 3
        t = self.get_plain(x) if channels_last or one_d else self.get_nhwc(x)
        if channels_last:
            n, *spatial, c = x.shape
        else:
            n, c, *spatial = x.shape
        image = (1, spatial[0]) if one_d else tuple(spatial)
        if one_d:
            a = {k: v for k, v in attrs.items()}
            for key in ("kernel_shape", "strides", "dilations"):
                if key in a:
                    a[key] = [1] + list(a[key])
            if "pads" in a:
                if len(a["pads"]) != 2:
                    self.bad(f"pads {list(a['pads'])} must hold 2 values for 1-D pooling")
                a["pads"] = [0, a["pads"][0], 0, a["pads"][1]]
            attrs = a
            # NCL -> N,1,L,C (channels last) or NLC -> N,1,L,C: a transpose or a reshape of the same bytes
            lifted = x.name + "/n1lc"
            if channels_last:
                src = t
            else:
                src = self.like(t, lifted + "/t", (n, spatial[0], c))
                self.op("TRANSPOSE", [t, self.const_tensor(lifted + "/perm", np.array([0, 2, 1], np.int32))], [src])
            t = self.like(src, lifted, (n, 1, spatial[0], c))
            self.op("RESHAPE", [src, self.const_tensor(lifted + "/shape",
                                                       np.array([-1, 1, spatial[0], c], np.int32))], [t])
        kernel, strides, pads, (oh, ow) = self._qlinear_pool_geometry(image, attrs, global_)
        out = self.tensor(name + ("/nhwc" if not channels_last or one_d else ""), (n, oh, ow, c), np.int8, yq)
        self.op("ONNX_QLINEAR_AVERAGE_POOL", [t], [out], kernel_h=kernel[0], kernel_w=kernel[1], stride_h=strides[0],
                stride_w=strides[1], pads=pads, out_h=oh, out_w=ow, unsigned=in_uint8 or x.dtype == np.uint8,
                count_include_pad=bool(attrs.get("count_include_pad", 0)))
        if one_d:
            final = self.tensor(name, (n, ow, c) if channels_last else (n, c, ow), np.int8, yq)
            if channels_last:
                self.op("RESHAPE", [out, self.const_tensor(name + "/shape", np.array([-1, ow, c], np.int32))],
                        [final])
            else:
                flat = self.tensor(name + "/nlc", (n, ow, c), np.int8, yq)
                self.op("RESHAPE", [out, self.const_tensor(name + "/shape", np.array([-1, ow, c], np.int32))],
                        [flat])
                self.op("TRANSPOSE", [flat, self.const_tensor(name + "/perm", np.array([0, 2, 1], np.int32))],
                        [final])
            self.new_value(name, self.tensors[final].shape, x.dtype, final, False, yq)
        elif channels_last:
            self.new_value(name, (n, oh, ow, c), x.dtype, out, False, yq)
        else:
            self.new_value(name, (n, c, oh, ow), x.dtype, out, True, yq)

    def ms_QLinearAveragePool(self, node, ins, attrs):
        self._qlinear_average_pool(node, ins, attrs, False)

    def ms_QLinearGlobalAveragePool(self, node, ins, attrs):
        self._qlinear_average_pool(node, ins, attrs, True)
