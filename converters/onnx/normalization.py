"""Normalizations for the ONNX reader: LayerNormalization, RMSNormalization, InstanceNormalization,
GroupNormalization and MeanVarianceNormalization on the IR's ONNX_NORMALIZE (edgeml/runtime/ops/onnx_tensor.py);
BatchNormalization (folded into the Conv before it, else a per-channel multiply and add), LpNormalization,
LogSoftmax and Hardmax."""
from __future__ import annotations

import numpy as np

from converters.onnx.common import Value
from converters.onnx.tensors import attribute_value

F32 = np.dtype(np.float32)


class NormalizationOps:
    """Uses the host translator's helpers (typed, op, onnx_binary, transposed, reduce_to, ...)."""

    def normalize(self, name: str, x: Value, axis: int, scale: np.ndarray, bias, *, centered=True,
                  epsilon=1e-5, pattern=(1, 0, 1, 1), stats=()) -> Value:
        """ONNX_NORMALIZE over x's dimensions from `axis`; pattern = (row_mod, row_stride, col_div, col_stride)
        maps (row, column) to the scale / bias element; stats: output names for the mean and inv_std per row
        (None for one not wanted), declared with x's shape up to `axis` and 1 after it."""
        if x.dtype != F32:
            self.unsupported(f"normalizing {x.dtype} (float32 is supported)")
        t = self._as_float32(self.get_plain(x))
        ins = [t, self.const_tensor(name + "/scale", np.ascontiguousarray(scale, np.float32).reshape(-1)),
               -1 if bias is None else self.const_tensor(name + "/bias",
                                                         np.ascontiguousarray(bias, np.float32).reshape(-1))]
        out = self.tensor(name, x.shape, F32)
        outs = [out]
        stat_shape = tuple(x.shape[:axis]) + (1,) * (x.rank - axis)
        flags = {}
        for flag, stat in zip(("with_mean", "with_inv_std"), stats):
            if stat:
                outs.append(self.tensor(stat, stat_shape, F32))
                flags[flag] = True
        row_mod, row_stride, col_div, col_stride = pattern
        self.op("ONNX_NORMALIZE", ins, outs, axis=axis, centered=centered, epsilon=float(epsilon), row_mod=row_mod,
                row_stride=row_stride, col_div=col_div, col_stride=col_stride, **flags)
        for stat, t_out in zip([s for s in stats if s], outs[1:]):
            self.new_value(stat, stat_shape, F32, t_out, False)
        return self.new_value(name, x.shape, F32, out, False)

    def _params(self, v, what: str, shape) -> np.ndarray:
        """A constant scale / bias broadcast to `shape`."""
        data = self.float_const(v, what)
        try:
            return np.broadcast_to(data, tuple(shape)).astype(np.float32)
        except ValueError:
            self.bad(f"{what} of shape {list(data.shape)} does not broadcast to {list(shape)}")

    def op_LayerNormalization(self, node, ins, attrs):
        self.check_attrs(attrs, {"axis", "epsilon", "stash_type"})
        self.need(ins, 2, 3)
        x = self.float_input(ins[0])
        axis = self.axis_of(attrs, x.rank, -1)
        inner = x.shape[axis:]
        scale = self._params(ins[1], "Scale", inner)
        bias = self._params(ins[2], "B", inner) if len(ins) > 2 and ins[2] is not None else None
        stats = [n if n else None for n in list(node.output[1:3])]
        self.normalize(node.output[0], x, axis, scale, bias, epsilon=attrs.get("epsilon", 1e-5), stats=stats)

    def op_RMSNormalization(self, node, ins, attrs):
        self.check_attrs(attrs, {"axis", "epsilon", "stash_type"})
        self.need(ins, 2, 2)
        x = self.float_input(ins[0])
        axis = self.axis_of(attrs, x.rank, -1)
        scale = self._params(ins[1], "scale", x.shape[axis:])
        self.normalize(node.output[0], x, axis, scale, None, centered=False, epsilon=attrs.get("epsilon", 1e-5))

    def op_InstanceNormalization(self, node, ins, attrs):
        self.check_attrs(attrs, {"epsilon"})
        self.need(ins, 3, 3)
        x = self.float_input(ins[0])
        if x.rank < 3:
            self.bad(f"input of rank {x.rank} (N, C and at least one spatial dimension)")
        c = x.shape[1]
        scale, bias = self._params(ins[1], "scale", (c,)), self._params(ins[2], "B", (c,))
        self.normalize(node.output[0], x, 2, scale, bias, epsilon=attrs.get("epsilon", 1e-5), pattern=(c, 1, 1, 0))

    def op_GroupNormalization(self, node, ins, attrs):
        """Opset 21: per-channel scale and bias; opset 18 (deprecated): per-group."""
        self.check_attrs(attrs, {"epsilon", "num_groups", "stash_type"})
        self.need(ins, 3, 3)
        x = self.float_input(ins[0])
        g = int(attrs.get("num_groups", 0))
        if x.rank < 3 or g <= 0 or x.shape[1] % g:
            self.bad(f"num_groups {g} for input {list(x.shape)} (a divisor of the channels)")
        c, n = x.shape[1], x.shape[0]
        spatial = int(np.prod(x.shape[2:], dtype=np.int64))
        per_group = self.opset < 21
        size = g if per_group else c
        scale, bias = self._params(ins[1], "scale", (size,)), self._params(ins[2], "bias", (size,))
        grouped = self.reshaped(x, (n, g, (c // g) * spatial), node.output[0] + "/groups")
        pattern = (g, 1, 1, 0) if per_group else (g, c // g, spatial, 1)
        y = self.normalize(node.output[0] + "/normalized", grouped, 2, scale, bias,
                           epsilon=attrs.get("epsilon", 1e-5), pattern=pattern)
        self.values[node.output[0]] = self.reshaped(y, x.shape, node.output[0])

    def op_MeanVarianceNormalization(self, node, ins, attrs):
        """(x - mean) / sqrt(var) over `axes` (the spec's 1e-9 is added to the deviation, not the variance: both
        vanish against float32 rounding unless the variance is 0)."""
        self.check_attrs(attrs, {"axes"})
        self.need(ins, 1, 1)
        x = self.float_input(ins[0])
        axes = sorted({a + x.rank if a < 0 else a for a in attrs.get("axes", [0, 2, 3])})
        if any(not 0 <= a < x.rank for a in axes):
            self.bad(f"axes {attrs.get('axes')} outside rank {x.rank}")
        kept = [d for d in range(x.rank) if d not in axes]
        perm = kept + axes
        name = node.output[0]
        xt = self.transposed(x, perm, name + "/t")
        y = self.normalize(name + "/normalized", xt, len(kept), np.ones(1, np.float32), None, epsilon=0.0,
                           pattern=(1, 0, 1, 0))
        self.values[name] = self.transposed(y, [perm.index(d) for d in range(x.rank)], name)

    def op_BatchNormalization(self, node, ins, attrs):
        """Inference form: y = x * s + (B - mean * s), s = scale / sqrt(var + epsilon), per channel (axis 1)."""
        self.check_attrs(attrs, {"epsilon", "momentum", "training_mode", "spatial", "is_test", "consumed_inputs"})
        self.need(ins, 5, 5)
        if attrs.get("training_mode", 0) or len([o for o in node.output if o]) > 1:
            self.unsupported("BatchNormalization in training mode (running statistics outputs) is not supported")
        if not attrs.get("spatial", 1):
            self.unsupported("BatchNormalization with spatial=0 is not supported")
        x = ins[0]
        if x.dq_of is None:
            self.float_input(x)
        shape = (x.shape[1],) + (1,) * (x.rank - 2) if x.rank > 1 else (1,)
        name = node.output[0]
        if any(v.const is None for v in ins[1:]):
            self._batch_norm_of_activations(name, x, ins[1:], float(attrs.get("epsilon", 1e-5)), shape)
            return
        mul, add = self.batch_norm_affine(ins[1:], float(attrs.get("epsilon", 1e-5)), x.shape[1] if x.rank > 1 else 1)
        scaled = self.onnx_binary(name + "/scaled", x, self.const_value(name + "/mul", mul.reshape(shape)), "MUL")
        self.onnx_binary(name, scaled, self.const_value(name + "/add", add.reshape(shape)), "ADD")

    def _batch_norm_of_activations(self, name: str, x, params, epsilon: float, shape):
        """Statistics computed in the graph (tf2onnx's LayerNormalization): s = scale / sqrt(var + epsilon),
        y = x * s + (B - mean * s) in float32, as onnxruntime's kernel does it."""
        per_channel = []
        for v, what in zip(params, ("scale", "B", "input_mean", "input_var")):
            if v.dtype != np.float32 and v.const is None:
                self.unsupported(f"{what} of type {v.dtype}; float32 is needed")
            if int(np.prod(v.shape, dtype=np.int64)) != shape[0]:
                self.bad(f"{what} of shape {list(v.shape)} for {shape[0]} channels")
            v = self.const_value(name + "/" + what, v.const.astype(np.float32)) if v.const is not None else v
            per_channel.append(self.reshaped(v, shape, name + "/" + what + "_c"))
        scale, bias, mean, var = per_channel
        eps = self.const_value(name + "/epsilon", np.array(np.float32(epsilon)))
        std = self.onnx_unary(name + "/std", self.onnx_binary(name + "/var_eps", var, eps, "ADD"), "SQRT")
        mul = self.onnx_binary(name + "/mul", self.onnx_unary(name + "/inv_std", std, "RECIPROCAL"), scale, "MUL")
        add = self.onnx_binary(name + "/add", bias, self.onnx_binary(name + "/mean_mul", mean, mul, "MUL"), "SUB")
        self.onnx_binary(name, self.onnx_binary(name + "/scaled", x, mul, "MUL"), add, "ADD")

    def following_batch_norm(self, name: str, channels: int):
        """(multiplier, addend, output name) of an inference BatchNormalization that alone reads `name` (a float
        Conv's output) with constant parameters, marked translated so the Conv absorbs it; else None.  onnxruntime
        folds it the same way at load."""
        cons = self.consumers.get(name, [])
        if name in self.graph_outputs or len(cons) != 1:
            return None
        k = cons[0]
        n = self.nodes[k]
        if n.op_type != "BatchNormalization" or n.domain not in ("", "ai.onnx") or len(n.input) != 5 or \
                n.input[0] != name or len([o for o in n.output if o]) != 1:
            return None
        attrs = {a.name: a for a in n.attribute}
        if any(a not in ("epsilon", "momentum", "training_mode", "spatial", "is_test", "consumed_inputs")
               for a in attrs):
            return None
        values = {a: attribute_value(v) for a, v in attrs.items()}
        if values.get("training_mode", 0) or not values.get("spatial", 1):
            return None
        params = [self.values.get(i) for i in n.input[1:]]
        if any(v is None or v.const is None for v in params):
            return None
        mul, add = self.batch_norm_affine(params, float(values.get("epsilon", 1e-5)), channels)
        self.done.add(k)
        return mul, add, n.output[0]

    def batch_norm_affine(self, params, epsilon: float, channels: int):
        """(multiplier, addend) per channel of an inference BatchNormalization, computed in float64."""
        scale, bias, mean, var = (self.const_of(v, what).astype(np.float64).reshape(-1)
                                  for v, what in zip(params, ("scale", "B", "input_mean", "input_var")))
        if not scale.size == bias.size == mean.size == var.size == channels:
            self.bad(f"scale / B / mean / var sizes {[scale.size, bias.size, mean.size, var.size]} for "
                     f"{channels} channels")
        mul = scale / np.sqrt(var + np.float64(np.float32(epsilon)))
        return mul.astype(np.float32), (bias - mean * mul).astype(np.float32)

    def op_LpNormalization(self, node, ins, attrs):
        self.check_attrs(attrs, {"axis", "p"})
        self.need(ins, 1, 1)
        x = self.float_input(ins[0])
        axis = self.axis_of(attrs, x.rank, -1)
        p = int(attrs.get("p", 2))
        if p not in (1, 2):
            self.bad(f"p {p} (1 or 2)")
        name = node.output[0]
        if p == 1:
            norm = self.reduce_to(name + "/norm", self.onnx_unary(name + "/abs", x, "ABS"), "SUM", [axis], True)
        else:
            sq = self.reduce_to(name + "/sumsq", self.onnx_binary(name + "/sq", x, x, "MUL"), "SUM", [axis], True)
            norm = self.onnx_unary(name + "/norm", sq, "SQRT")
        zero = self.onnx_binary(name + "/zero", norm, self.const_value(name + "/0", np.zeros((), F32)), "EQUAL")
        safe = self.tensor(name + "/safe", norm.shape, F32)      # a zero norm divides by 1 (0 stays 0)
        self.op("SELECT_V2", [self.typed(zero), self.const_tensor(name + "/1", np.ones((), F32)), self.typed(norm)],
                [safe])
        self.onnx_binary(name, x, self.new_value(name + "/safe", norm.shape, F32, safe, False), "DIV")

    def op_LogSoftmax(self, node, ins, attrs):
        self.check_attrs(attrs, {"axis"})
        self.need(ins, 1, 1)
        x = ins[0]
        if x.dq_of is None:
            self.float_input(x)
        axis = self.axis_of(attrs, x.rank, 1 if self.opset < 13 else -1)
        self._softmax(x, axis, node.output[0], "LOG_SOFTMAX", None)

    def op_Hardmax(self, node, ins, attrs):
        """1.0 at the first maximum along the axis (opset < 13: of the flattened trailing dimensions)."""
        self.check_attrs(attrs, {"axis"})
        self.need(ins, 1, 1)
        x = self.float_input(ins[0])
        axis = self.axis_of(attrs, x.rank, 1 if self.opset < 13 else -1)
        name = node.output[0]
        src = x
        if self.opset < 13:
            src = self.reshaped(x, (int(np.prod(x.shape[:axis], dtype=np.int64)),
                                    int(np.prod(x.shape[axis:], dtype=np.int64))), name + "/2d")
            axis = 1
        t = self.get_plain(src)
        reduced = src.shape[:axis] + (1,) + src.shape[axis + 1:]
        arg = self.tensor(name + "/arg", src.shape[:axis] + src.shape[axis + 1:], np.int64)
        self.op("ARG_MAX", [t, self.const_tensor(name + "/axis", np.array([axis], np.int32))], [arg])
        first = self.reshaped(self.new_value(name + "/arg", src.shape[:axis] + src.shape[axis + 1:], np.int64, arg,
                                             False), reduced, name + "/first")
        positions = np.arange(src.shape[axis], dtype=np.int64).reshape((-1,) + (1,) * (src.rank - axis - 1))
        hit = self.onnx_binary(name + "/hit", first, self.const_value(name + "/positions", positions), "EQUAL")
        y = self.cast_value(hit, F32, name + ("/flat" if src is not x else ""))
        if src is not x:
            self.values[name] = self.reshaped(y, x.shape, name)
