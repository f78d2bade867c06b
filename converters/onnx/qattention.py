"""onnxruntime's com.microsoft QAttention for the ONNX reader (what quantize_dynamic makes of an Attention node).

onnxruntime computes Q, K and V as exact int32 sums of (x - x_zp)(w - w_zp) turned to float as
(float)acc * (w_scale * x_scale) + bias, then runs float attention per head: softmax(scale * Q K^T) V.  Here the
three products are the exact integer dense kernel with a float output, the bias a float ADD, the attention
BATCH_MATMUL / MUL / SOFTMAX steps in float (float outputs within rtol / atol 1e-5).  mask_index (key end
positions [B], end and start positions [2B], 0 / 1 masks [B, T] or [B, S, T]) and `unidirectional` add
onnxruntime's mask (mask_filter_value, the float32 minimum for the causal part) to the scaled scores.  Past state
and rotary embeddings are refused by name."""
from __future__ import annotations

import numpy as np

from converters.onnx.common import Value

QATTENTION_ATTRIBUTES = ("num_heads", "unidirectional", "do_rotary", "mask_filter_value", "scale",
                         "past_present_share_buffer", "qkv_hidden_sizes")


class QAttentionOps:
    """QAttention; uses the host translator's helpers (_scalar_q, quantized, _integer_dense, op, ...)."""

    def _qattention_checks(self, node, ins, attrs) -> tuple:
        for key in attrs:
            if key not in QATTENTION_ATTRIBUTES:
                self.unsupported(f"attribute '{key}'")
        for key in ("do_rotary", "past_present_share_buffer"):
            if attrs.get(key, 0):
                self.unsupported(f"attribute '{key}' = {attrs[key]} (only 0 is supported)")
        if attrs.get("qkv_hidden_sizes"):
            self.unsupported("attribute 'qkv_hidden_sizes'")
        if "num_heads" not in attrs:
            self.bad("attribute 'num_heads' is required")
        heads = int(attrs["num_heads"])
        self.need(ins, 5, 9)
        if attrs.get("unidirectional", 0) not in (0, 1):
            self.bad(f"attribute 'unidirectional' = {attrs['unidirectional']} (0 or 1)")
        if len(ins) > 8 and ins[8] is not None:
            self.unsupported("the past input")
        if len(node.output) > 1 and node.output[1]:
            self.unsupported("the present output")
        x, w = ins[0], ins[1]
        if x.dtype != np.uint8 or x.const is not None or x.rank != 3:
            self.unsupported(f"input '{x.name}' must be a non-constant 3-D uint8 tensor, got {x.dtype} "
                             f"{list(x.shape)}")
        wdata = self.const_of(w, "weights")
        if wdata.dtype not in (np.int8, np.uint8) or wdata.ndim != 2 or wdata.shape[0] != x.shape[2]:
            self.bad(f"weights {wdata.dtype} {list(wdata.shape)} must be int8 / uint8 [{x.shape[2]}, 3 * hidden]")
        hidden = wdata.shape[1] // 3
        if heads <= 0 or hidden == 0 or wdata.shape[1] != 3 * hidden or hidden % heads:
            self.bad(f"weights [{', '.join(map(str, wdata.shape))}] do not split into Q, K, V of {heads} heads")
        bias = self.const_of(ins[2], "bias")
        if bias.dtype != np.float32 or bias.size != 3 * hidden:
            self.bad(f"bias must hold {3 * hidden} float32 values, got {bias.dtype} {list(bias.shape)}")
        return x, wdata, bias.reshape(-1), heads, hidden

    def ms_QAttention(self, node, ins, attrs):
        x, wdata, bias, heads, hidden = self._qattention_checks(node, ins, attrs)
        xz = ins[6] if len(ins) > 6 else None
        wz = ins[7] if len(ins) > 7 else None
        dynamic = ins[3].const is None or (xz is not None and xz.const is None)
        qx = None if dynamic else self._scalar_q(ins[3], xz, np.uint8, "input")
        wscale = self.const_of(ins[4], "weight scale")
        if wscale.dtype != np.float32 or wscale.size not in (1, 3 * hidden) or wscale.ndim > 1:
            self.bad(f"weight scale must be float32 of size 1 or {3 * hidden}, got {wscale.dtype} "
                     f"{list(wscale.shape)}")
        wzdata = None if wz is None else self.const_of(wz, "weight zero point")
        if wzdata is not None and (wzdata.dtype != wdata.dtype or wzdata.size not in (1, 3 * hidden)):
            self.bad(f"weight zero point {wzdata.dtype} of size {wzdata.size} for {wdata.dtype} weights")
        name = node.output[0]
        wscale = np.broadcast_to(wscale.reshape(-1), (3 * hidden,)).astype(np.float32)
        if dynamic:
            xq, zp_ir, zp_tensor, scale_t = self._qattention_runtime_input(name, x, ins[3], xz)
        else:
            # onnxruntime: dequant_scale[c] = w_scale[c] * x_scale in float32
            xq, zp_ir, zp_tensor, scale_t = self.quantized(x, qx), int(qx.zero_point[0]), -1, None
            dequant = wscale * np.float32(qx.scale[0])
        b, s, _ = x.shape
        head = hidden // heads
        parts = []
        for i, part in enumerate(("q", "k", "v")):
            cols = slice(i * hidden, (i + 1) * hidden)
            w_part = Value(name=f"{name}/w_{part}", shape=(wdata.shape[0], hidden), dtype=wdata.dtype,
                           const=np.ascontiguousarray(wdata[:, cols]))
            z_part = None
            if wzdata is not None:
                zp = wzdata.reshape(-1)
                z_part = Value(name=f"{name}/wz_{part}", shape=(), dtype=wdata.dtype,
                               const=np.ascontiguousarray(zp[cols] if zp.size > 1 else zp))
            if dynamic:
                acc = self._qattention_runtime_dense(f"{name}/{part}", xq, w_part, z_part, zp_ir, zp_tensor,
                                                     scale_t, wscale[cols])
            else:
                acc, _ = self._integer_dense(node, xq, w_part, z_part, None, np.float32, zp_ir,
                                             scales=dequant[cols], out_name=f"{name}/{part}_acc")
            biased = self.tensor(f"{name}/{part}", (b, s, hidden), np.float32)
            self.op("ADD", [acc, self.const_tensor(f"{name}/{part}_bias", np.ascontiguousarray(bias[cols]))],
                    [biased], fused_activation_function=0)
            split = self.tensor(f"{name}/{part}_heads", (b, s, heads, head), np.float32)
            self.op("RESHAPE", [biased, self.const_tensor(f"{name}/{part}_hs", np.array([b, s, heads, head],
                                                                                       np.int32))], [split])
            per_head = self.tensor(f"{name}/{part}_bnsh", (b, heads, s, head), np.float32)
            self.op("TRANSPOSE", [split, self.const_tensor(f"{name}/{part}_perm", np.array([0, 2, 1, 3], np.int32))],
                    [per_head])
            parts.append(per_head)
        q, k, v = parts
        scale = float(attrs.get("scale", 0.0)) or 1.0 / np.sqrt(head)
        if not np.isfinite(scale):
            self.bad(f"attribute 'scale' {scale} is not finite")
        scores = self.tensor(f"{name}/scores", (b, heads, s, s), np.float32)
        self.op("BATCH_MATMUL", [q, k], [scores], adj_x=False, adj_y=True)
        scaled = self.tensor(f"{name}/scaled", (b, heads, s, s), np.float32)
        self.op("MUL", [scores, self.const_tensor(f"{name}/scale", np.array([scale], np.float32))], [scaled],
                fused_activation_function=0)
        mask = ins[5] if len(ins) > 5 else None
        if mask is not None:
            filter_value = float(attrs.get("mask_filter_value", -10000.0))
            masked = self.tensor(f"{name}/masked", (b, heads, s, s), np.float32)
            self.op("ADD", [scaled, self._attention_mask(name, mask, b, s, filter_value)], [masked],
                    fused_activation_function=0)
            scaled = masked
        if attrs.get("unidirectional", 0):
            causal = np.where(np.arange(s)[None, :] > np.arange(s)[:, None], np.finfo(np.float32).min, 0)
            masked = self.tensor(f"{name}/causal", (b, heads, s, s), np.float32)
            self.op("ADD", [scaled, self.const_tensor(f"{name}/causal_mask", causal.astype(np.float32)[None, None])],
                    [masked], fused_activation_function=0)
            scaled = masked
        probs = self.tensor(f"{name}/probs", (b, heads, s, s), np.float32)
        self.op("SOFTMAX", [scaled], [probs], beta=1.0)
        context = self.tensor(f"{name}/context", (b, heads, s, head), np.float32)
        self.op("BATCH_MATMUL", [probs, v], [context], adj_x=False, adj_y=False)
        merged = self.tensor(f"{name}/bsnh", (b, s, heads, head), np.float32)
        self.op("TRANSPOSE", [context, self.const_tensor(f"{name}/out_perm", np.array([0, 2, 1, 3], np.int32))],
                [merged])
        out = self.tensor(name, (b, s, hidden), np.float32)
        self.op("RESHAPE", [merged, self.const_tensor(f"{name}/out_shape", np.array([b, s, hidden], np.int32))],
                [out])
        self.new_value(name, (b, s, hidden), np.float32, out, False)

    def _qattention_runtime_input(self, name: str, x: Value, xs: Value, xz):
        """x with a scale / zero point computed at run time (DynamicQuantizeLinear before it): the zero point as
        the integer kernel's run-time operand, the scale as a float [1] tensor."""
        if xs.rank > 1 or int(np.prod(xs.shape)) != 1 or xs.dtype != np.float32:
            self.bad(f"input scale '{xs.name}' must be one float32")
        zp_ir, zp_tensor = -128, -1          # no zero point: 0 in uint8, -128 in the IR's int8
        if xz is not None:
            if xz.rank > 1 or int(np.prod(xz.shape)) != 1 or xz.dtype != np.uint8:
                self.bad(f"input zero point '{xz.name}' must be one uint8")
            if xz.const is not None:
                zp_ir = int(xz.const.reshape(-1)[0]) - 128
            else:
                zp_tensor = self.get_plain(xz)
        scale_t = self.tensor(name + "/x_scale", (1,), np.float32)
        self.op("RESHAPE", [self._as_float32(self.get_plain(xs)),
                            self.const_tensor(name + "/x_scale_shape", np.array([1], np.int32))], [scale_t])
        return x, zp_ir, zp_tensor, scale_t

    def _qattention_runtime_dense(self, name: str, x: Value, w: Value, wz, zp_ir: int, zp_tensor: int,
                                  scale_t: int, wscale: np.ndarray) -> int:
        """(float)acc * (w_scale * x_scale) with x_scale known at run time: the exact int32 product, CAST, and
        the two float32 products onnxruntime forms (the scales first, then the accumulator)."""
        acc, shape = self._integer_dense(None, x, w, wz, None, np.int32, zp_ir, zp_tensor, out_name=name + "/acc")
        acc_f = self.tensor(name + "/acc_f", shape, np.float32)
        self.op("CAST", [acc], [acc_f])
        scales = self.tensor(name + "/dequant", (wscale.size,), np.float32)
        self.op("MUL", [self.const_tensor(name + "/w_scale", np.ascontiguousarray(wscale)), scale_t], [scales],
                fused_activation_function=0)
        out = self.tensor(name + "/scaled", shape, np.float32)
        self.op("MUL", [acc_f, scales], [out], fused_activation_function=0)
        return out

    def _attention_mask(self, name: str, mask: Value, b: int, s: int, filter_value: float) -> int:
        """onnxruntime's additive mask from mask_index, [B, 1, 1, T] or [B, 1, S, T]: 0 where a key is kept,
        filter_value where it is not (end positions [B], ends and starts [2B], or 0 / 1 values)."""
        if mask.dtype != np.int32:
            self.unsupported(f"mask_index of type {mask.dtype} (int32)")
        m = self.get_plain(mask)
        shape = tuple(mask.shape)
        positions = self.const_tensor(f"{name}/key_positions", np.arange(s, dtype=np.int32).reshape(1, s))
        keep = self.tensor(f"{name}/keep", (b, s) if len(shape) < 3 else (b, s, s), np.bool_)
        if shape in ((b,), (2 * b,)):
            bounds = []             # ends, then starts when given: slices [k b, (k + 1) b) as [B, 1]
            for k in range(shape[0] // b):
                part = self.tensor(f"{name}/bound{k}", (b,), np.int32)
                self.op("SLICE", [m, self.const_tensor(f"{name}/bound{k}_begin", np.array([k * b], np.int32)),
                                  self.const_tensor(f"{name}/bound{k}_size", np.array([b], np.int32))], [part])
                column = self.tensor(f"{name}/bound{k}_column", (b, 1), np.int32)
                self.op("RESHAPE", [part, self.const_tensor(f"{name}/bound{k}_shape", np.array([b, 1], np.int32))],
                        [column])
                bounds.append(column)
            if len(bounds) == 1:
                self.op("LESS", [positions, bounds[0]], [keep])
            else:
                before_end = self.tensor(f"{name}/before_end", (b, s), np.bool_)
                self.op("LESS", [positions, bounds[0]], [before_end])
                from_start = self.tensor(f"{name}/from_start", (b, s), np.bool_)
                self.op("GREATER_EQUAL", [positions, bounds[1]], [from_start])
                self.op("LOGICAL_AND", [before_end, from_start], [keep])
        elif shape in ((b, s), (b, s, s)):
            self.op("GREATER", [m, self.const_tensor(f"{name}/zero", np.zeros(1, np.int32))], [keep])
        else:
            self.unsupported(f"mask_index of shape {list(shape)} (supported: [{b}], [{2 * b}], [{b}, {s}], "
                             f"[{b}, {s}, {s}] without past state)")
        additive = self.tensor(f"{name}/mask", (b, 1, 1, s) if len(shape) < 3 else (b, 1, s, s), np.float32)
        flat = self.tensor(f"{name}/mask_flat", self.tensors[keep].shape, np.float32)
        self.op("SELECT_V2", [keep, self.const_tensor(f"{name}/kept", np.zeros(1, np.float32)),
                              self.const_tensor(f"{name}/filtered", np.array([filter_value], np.float32))], [flat])
        self.op("RESHAPE", [flat, self.const_tensor(f"{name}/mask_shape", np.array(self.tensors[additive].shape,
                                                                                     np.int32))], [additive])
        return additive
