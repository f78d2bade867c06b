"""Quantized matrix products between activations for the ONNX reader: QLinearMatMul in every form (a constant
2-D B on the dense kernels, batched or activation B on BATCH_MATMUL), the QDQ MatMul of two activations
(attention scores), which onnxruntime fuses into QLinearMatMul, and onnxruntime's com.microsoft QAttention.

All integer products are exact int32 sums of (a - a_zp)(b - b_zp) requantized as onnxruntime does:
(float)acc * ((a_scale * b_scale) / y_scale) in float32, rounded to nearest even."""
from __future__ import annotations

import numpy as np

from converters.onnx.common import Value
from edgeml.ir import Quantization

MAX_BATCH_RANK = 5            # BATCH_MATMUL's ranks 2 to 5


class QMatMulOps:
    """Quantized matrix products; uses the host translator's helpers (quantized, _scalar_q, op, ...)."""

    def _int8_operand(self, v: Value, q: Quantization, what: str) -> int:
        """IR tensor of an integer operand read with parameters q: a constant is stored as int8 (uint8 - 128)."""
        if v.const is not None:
            data = v.const
            if data.dtype not in (np.int8, np.uint8):
                self.unsupported(f"{what} of type {data.dtype} (int8 / uint8)")
            ir = (data.astype(np.int16) - (128 if data.dtype == np.uint8 else 0)).astype(np.int8)
            return self.const_tensor(f"{v.name}/q{self.k}", ir, q)
        return self.get_plain(self.quantized(v, q))

    def _integer_batch_matmul(self, name: str, a: Value, qa: Quantization, b: Value, qb: Quantization,
                              yq: Quantization):
        """a [..., M, K] times b [..., K, N] with numpy broadcasting of the batch dimensions, int8 out."""
        if not (2 <= a.rank <= MAX_BATCH_RANK and 2 <= b.rank <= MAX_BATCH_RANK):
            self.unsupported(f"a quantized MatMul of ranks {a.rank} and {b.rank} (2 to {MAX_BATCH_RANK} are "
                             "supported)")
        if a.shape[-1] != b.shape[-2]:
            self.bad(f"cannot multiply {list(a.shape)} by {list(b.shape)}")
        rank = max(a.rank, b.rank)
        sa, sb = (1,) * (rank - a.rank) + tuple(a.shape), (1,) * (rank - b.rank) + tuple(b.shape)
        batch = []
        for da, db in zip(sa[:-2], sb[:-2]):
            if da != db and 1 not in (da, db):
                self.bad(f"batch dimensions of {list(a.shape)} and {list(b.shape)} do not broadcast")
            batch.append(max(da, db))
        ta = self._int8_operand(a, qa, "A")
        tb = self._int8_operand(b, qb, "B")
        out_shape = tuple(batch) + (a.shape[-2], b.shape[-1])
        out = self.tensor(name, out_shape, np.int8, yq)
        self.op("BATCH_MATMUL", [ta, tb], [out], adj_x=False, adj_y=False)
        return out, out_shape

    def op_QLinearMatMul(self, node, ins, attrs):
        self.need(ins, 8, 8)
        if attrs:
            self.unsupported(f"attribute '{next(iter(attrs))}'")
        a, as_, az, b, bs, bz, ys, yz = ins
        qa = self._scalar_q(as_, az, a.dtype, "A")
        ydt = self.const_of(yz, "output zero point").dtype
        yq = self._scalar_q(ys, yz, ydt, "output")
        if b.const is not None and b.rank == 2:
            a = self.quantized(a, qa)
            bscale = self.const_of(bs, "B scale").astype(np.float32).reshape(-1)
            if bscale.size not in (1, b.shape[-1]):
                self.bad(f"{bscale.size} B scales for {b.shape[-1]} columns")
            out, out_shape = self._integer_dense(node, a, b, bz, yq, np.int8, int(qa.zero_point[0]), bscale=bscale)
            self.new_value(node.output[0], out_shape, ydt, out, False, yq)
            return
        if a.const is not None:
            self.unsupported("a constant A with a non-constant B")
        qb = self._scalar_q(bs, bz, b.dtype, "B")
        out, out_shape = self._integer_batch_matmul(node.output[0], a, qa, b, qb, yq)
        self.new_value(node.output[0], out_shape, ydt, out, False, yq)

    def _fused_matmul_activations(self, node, a: Value, b: Value) -> bool:
        """DQ(a) MatMul DQ(b) -> Q with two non-constant operands (attention scores): onnxruntime fuses the group
        into QLinearMatMul, an exact integer product requantized in float."""
        if a.dq_of is None or b.dq_of is None or a.dq_of.quant is None or b.dq_of.quant is None:
            return False
        fu = self.fusion(node.output[0], allow_act=False)
        yq = self.q_params(fu.q_node) if fu else None
        if yq is None or a.rank < 2 or b.rank < 2 or max(a.rank, b.rank) > MAX_BATCH_RANK:
            return False
        if a.dq_of.ort_u8 != b.dq_of.ort_u8:
            return False
        out, out_shape = self._integer_batch_matmul(fu.q_node.output[0], a.dq_of, a.dq_of.quant, b.dq_of,
                                                    b.dq_of.quant, yq[0])
        self.new_value(fu.q_node.output[0], out_shape, yq[1], out, False, yq[0])
        self.finish_fusion(fu)
        return True
