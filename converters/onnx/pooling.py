"""Pooling for the ONNX reader: AveragePool / MaxPool and their global forms in 1-D (the 2-D op on an (N, C, L, 1)
view), 2-D (MAX_POOL_2D / AVERAGE_POOL_2D, ceil_mode and count_include_pad exact), 3-D (a 2-D pool, then one over
depth) and with dilations (each window's taps gathered side by side first)."""
from __future__ import annotations

import numpy as np

from converters.onnx.common import ACT_CODE, Renamed, Value
from edgeml.ir import Quantization

POOL_ATTRS = {"AveragePool": {"auto_pad", "ceil_mode", "count_include_pad", "dilations", "kernel_shape", "pads",
                              "strides"},
              "MaxPool": {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides"}}


class PoolOps:
    """Pooling; uses the host translator's helpers (_spatial, _as_2d, _from_2d from conv.py, get_nhwc, op, ...)."""

    def _pool_common(self, node, ins, attrs, is_max: bool, global_: bool):
        x = ins[0]
        one_d = x.rank == 3
        if x.rank == 5:
            self._pool_3d(node, x, attrs, is_max, global_)
            return
        if x.rank not in (3, 4):
            self.unsupported(f"only 1-D, 2-D and 3-D pooling (3-D to 5-D input) are supported, input has shape "
                             f"{list(x.shape)}")
        if one_d:
            x, attrs = self._as_2d(node, x, attrs)
        if global_:
            kh, kw = x.shape[2], x.shape[3]
            strides, pads = [1, 1], (0, 0, 0, 0)
        else:
            ks = list(attrs.get("kernel_shape", []))
            if len(ks) != 2 or any(k <= 0 for k in ks):
                self.bad(f"kernel_shape {ks} must be two positive values")
            kh, kw = ks
            if len(node.output) > 1 and node.output[1]:
                self.unsupported("the MaxPool indices output is not supported")
            if attrs.get("storage_order", 0):
                self.unsupported("storage_order 1 is not supported")
            strides, dil, pads = self._spatial(attrs, x.shape, (kh, kw), "pool")
            if dil != [1, 1]:
                self._dilated_pool(node, x, attrs, is_max, one_d, (kh, kw), strides, dil, pads)
                return
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
        if is_max and not one_d and self._fused_passthrough(node, x, "MAX_POOL_2D", out_shape, options):
            return
        if is_max and not one_d and x.dq_of is None and x.dtype in (np.int8, np.uint8) and x.const is None:
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
        out = self.tensor(last + ("/2d" if one_d else ""), (out_shape[0], out_shape[2], out_shape[3], out_shape[1]),
                          np.float32)
        self.op("MAX_POOL_2D" if is_max else "AVERAGE_POOL_2D", [xt], [out], **options)
        if one_d:
            self._from_2d(last, out_shape, out)
        else:
            self.new_value(last, out_shape, np.float32, out, True)

    def _dilated_pool(self, node, x: Value, attrs, is_max: bool, one_d: bool, ks, strides, dil, pads):
        """Pooling with dilations: an AXIS_GATHER lays every window's taps side by side, then a pool with stride =
        kernel reads them.  Max: a tap outside the image repeats one inside its window.  Average: it reads an
        appended zero, and the result is rescaled by kernel size / counted taps (a product over the two axes)."""
        if x.dq_of is None:
            self.float_input(x)
        ceil, include_pad = attrs.get("ceil_mode", 0), attrs.get("count_include_pad", 0)
        tables, factors, sizes = [], [], []
        for a in range(2):
            size, k, s, d, lead, trail = x.shape[2 + a], ks[a], strides[a], dil[a], pads[a], pads[a + 2]
            span = size + lead + trail - ((k - 1) * d + 1)
            o = (-(-span // s) if ceil else span // s) + 1
            if ceil and (o - 1) * s >= size + lead:
                o -= 1
            if o <= 0:
                self.bad(f"output size {o} on spatial axis {a}")
            table, factor = [], []
            for j in range(o):
                taps = [j * s + m * d - lead for m in range(k)]
                inside = [t for t in taps if 0 <= t < size]
                if not inside:
                    self.unsupported(f"a dilated pooling window on spatial axis {a} lies wholly in the padding")
                table += [t if 0 <= t < size else (inside[0] if is_max else size) for t in taps]
                counted = sum(1 for t in taps if -lead <= t < size + trail) if include_pad else len(inside)
                factor.append(k / counted)
            tables.append(table)
            factors.append(np.array(factor))
            sizes.append(o)
        name = node.output[0]
        xt = self._as_float32(self.get_nhwc(x))
        n, h, w, c = self.tensors[xt].shape
        if not is_max:
            padded = self.tensor(name + "/zero_padded", (n, h + 1, w + 1, c), np.float32)
            self.op("PAD", [xt, self.const_tensor(name + "/zero_pads",
                                                  np.array([(0, 0), (0, 1), (0, 1), (0, 0)], np.int32))], [padded])
            xt = padded
        taps = self.tensor(name + "/taps", (n, len(tables[0]), len(tables[1]), c), np.float32)
        self.op("AXIS_GATHER", [xt], [taps], tables=(tuple(range(n)), tuple(tables[0]), tuple(tables[1]),
                                                     tuple(range(c))))
        act, last = self.float_activation(name) if is_max else ("NONE", name)
        final = last + ("/2d" if one_d else "")
        out_shape = (n, c, sizes[0], sizes[1])
        pooled = self.tensor(final if is_max else name + "/mean_of_taps", (n, sizes[0], sizes[1], c), np.float32)
        self.op("MAX_POOL_2D" if is_max else "AVERAGE_POOL_2D", [taps], [pooled], filter_height=ks[0],
                filter_width=ks[1], stride_h=ks[0], stride_w=ks[1], padding=1, explicit_padding=(0, 0, 0, 0),
                fused_activation_function=ACT_CODE[act])
        if not is_max:
            mean = self.new_value(name + "/mean_of_taps", out_shape, np.float32, pooled, True)
            scale = np.outer(factors[0], factors[1]).astype(np.float32).reshape(1, 1, sizes[0], sizes[1])
            pooled = self.get_nhwc(self.onnx_binary(final, mean, self.const_value(name + "/count_scale", scale),
                                                    "MUL"))
        if one_d:
            self._from_2d(last, out_shape, pooled)
        elif is_max:
            self.new_value(last, out_shape, np.float32, pooled, True)

    def _pool_3d(self, node, x: Value, attrs, is_max: bool, global_: bool):
        """A box is the product of its per-axis windows (and of their valid or counted parts), so a 3-D max or
        average pool is a 2-D pool over (H, W) on an (N, C * D, H, W) view, then one with kernel (kd, 1) over
        (N, C, D, H' * W')."""
        n, c, d, h, w = x.shape
        ks = [d, h, w] if global_ else list(attrs.get("kernel_shape", []))
        if len(ks) != 3:
            self.bad(f"kernel_shape {ks} must be three values for a 5-D input")
        axis = {}
        for key, default in (("strides", [1, 1, 1]), ("dilations", [1, 1, 1])):
            axis[key] = list(attrs.get(key, default)) if not global_ else default
            if len(axis[key]) != 3:
                self.bad(f"{key} {axis[key]} must be three values for a 5-D input")
        pads = [0] * 6 if global_ else list(attrs.get("pads", [0] * 6))
        if len(pads) != 6:
            self.bad(f"pads {pads} must be six values for a 5-D input")
        common = {k: v for k, v in attrs.items() if k in ("auto_pad", "ceil_mode", "count_include_pad",
                                                          "storage_order")} if not global_ else {}
        out = node.output[0]
        hw_in = self.reshaped(x, (n, c * d, h, w), out + "/hw_in")
        hw_attrs = dict(common, kernel_shape=ks[1:], strides=axis["strides"][1:], dilations=axis["dilations"][1:],
                        pads=[pads[1], pads[2], pads[4], pads[5]])
        self._pool_common(Renamed(node, None, out + "/hw", [hw_in.name]), [hw_in], hw_attrs, is_max, False)
        hw = self.values[out + "/hw"]
        d_in = self.reshaped(hw, (n, c, d, hw.shape[2] * hw.shape[3]), out + "/d_in")
        d_attrs = dict(common, kernel_shape=[ks[0], 1], strides=[axis["strides"][0], 1],
                       dilations=[axis["dilations"][0], 1], pads=[pads[0], 0, pads[3], 0])
        self._pool_common(Renamed(node, None, out + "/d", [d_in.name]), [d_in], d_attrs, is_max, False)
        self.reshaped(self.values[out + "/d"], (n, c, self.values[out + "/d"].shape[2]) + hw.shape[2:], out)

    def _check_pool_attrs(self, node, attrs, allowed: set):
        # the com.microsoft QLinear forms (qoperator.py) come here with their channels_last, which they handle
        self.check_attrs(attrs, allowed | ({"channels_last"} if node.domain == "com.microsoft" else set()))

    def op_AveragePool(self, node, ins, attrs):
        self._check_pool_attrs(node, attrs, POOL_ATTRS["AveragePool"])
        self.need(ins, 1, 1)
        if self.fused_qlinear_pool(node, ins, attrs, False):      # QDQ group: onnxruntime's QLinearAveragePool
            return
        self._pool_common(node, ins, attrs, False, False)

    def op_MaxPool(self, node, ins, attrs):
        self._check_pool_attrs(node, attrs, POOL_ATTRS["MaxPool"])
        self.need(ins, 1, 1)
        self._pool_common(node, ins, attrs, True, False)

    def op_GlobalAveragePool(self, node, ins, attrs):
        self._check_pool_attrs(node, attrs, set())
        self.need(ins, 1, 1)
        if self.fused_qlinear_pool(node, ins, attrs, True):       # QDQ group: QLinearGlobalAveragePool
            return
        self._pool_common(node, ins, attrs, False, True)

    def op_GlobalMaxPool(self, node, ins, attrs):
        self._check_pool_attrs(node, attrs, set())
        self.need(ins, 1, 1)
        self._pool_common(node, ins, attrs, True, True)

    def op_LpPool(self, node, ins, attrs):
        self._check_pool_attrs(node, attrs, {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "p", "pads",
                                             "strides"})
        self.need(ins, 1, 1)
        self._lp_pool(node, ins[0], attrs, False)

    def op_GlobalLpPool(self, node, ins, attrs):
        self._check_pool_attrs(node, attrs, {"p"})
        self.need(ins, 1, 1)
        self._lp_pool(node, ins[0], attrs, True)

    def _lp_pool(self, node, x: Value, attrs, global_: bool):
        """(sum of |x|^p over the window, padding counting as zeros)^(1/p): an average pool that counts the padding,
        times the window size."""
        p = attrs.get("p", 2)
        if not isinstance(p, int) or p <= 0:
            self.bad(f"p {p} must be a positive integer")
        if attrs.get("ceil_mode", 0):
            self.unsupported("LpPool with ceil_mode is not supported")
        if x.dq_of is None:
            self.float_input(x)
        if x.rank < 3:
            self.bad(f"input of shape {list(x.shape)} has no spatial axes")
        name = node.output[0]
        powered = self.onnx_binary(name + "/pow", self.onnx_unary(name + "/abs", x, "ABS"),
                                   self.const_value(name + "/p", np.array(p, np.float32)), "POW")
        pool_attrs = {k: v for k, v in attrs.items() if k != "p"}
        if not global_:
            pool_attrs["count_include_pad"] = 1
        self._pool_common(Renamed(node, None, name + "/mean", [powered.name]), [powered], pool_attrs, False, global_)
        window = int(np.prod(x.shape[2:] if global_ else attrs.get("kernel_shape", [1]), dtype=np.int64))
        total = self.onnx_binary(name + "/sum", self.values[name + "/mean"],
                                 self.const_value(name + "/window", np.array(window, np.float32)), "MUL")
        self.onnx_binary(name, total, self.const_value(name + "/inv_p", np.array(1.0 / p, np.float32)), "POW")
