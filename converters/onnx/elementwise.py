"""Element-wise ONNX ops on every plain tensor type for the ONNX reader: the unary math and activation functions
(Abs ... Mish, Gelu, Erf), Div, Pow, Mod, Max / Min / Sum / Mean, comparisons, logic and bitwise ops, Where,
Cast / CastLike, IsNaN / IsInf.  They become the IR's ONNX_UNARY / ONNX_BINARY (edgeml/runtime/ops/
onnx_elementwise.py); float ones follow their input's layout (NCHW or channels-last) like Add does."""
from __future__ import annotations

import numpy as np

from converters.onnx.common import TO_NHWC, Value
from converters.onnx.tensors import ONNX_DTYPES, type_name

F32, BOOL = np.dtype(np.float32), np.dtype(np.bool_)

# ONNX op -> (ONNX_UNARY function, {attribute: (option, default)})
UNARY = {
    "Abs": ("ABS", {}), "Neg": ("NEG", {}), "Sign": ("SIGN", {}), "Ceil": ("CEIL", {}), "Floor": ("FLOOR", {}),
    "Round": ("ROUND", {}), "Reciprocal": ("RECIPROCAL", {}), "Sqrt": ("SQRT", {}), "Exp": ("EXP", {}),
    "Log": ("LOG", {}), "Sin": ("SIN", {}), "Cos": ("COS", {}), "Tan": ("TAN", {}), "Asin": ("ASIN", {}),
    "Acos": ("ACOS", {}), "Atan": ("ATAN", {}), "Sinh": ("SINH", {}), "Cosh": ("COSH", {}), "Asinh": ("ASINH", {}),
    "Acosh": ("ACOSH", {}), "Atanh": ("ATANH", {}), "Erf": ("ERF", {}), "Softplus": ("SOFTPLUS", {}),
    "Softsign": ("SOFTSIGN", {}), "Mish": ("MISH", {}), "Not": ("NOT", {}), "BitwiseNot": ("BITWISE_NOT", {}),
    "IsNaN": ("IS_NAN", {}),
    "Selu": ("SELU", {"alpha": ("alpha", 1.67326319217681884765625), "gamma": ("beta", 1.05070102214813232421875)}),
    "Celu": ("CELU", {"alpha": ("alpha", 1.0)}), "Elu": ("ELU", {"alpha": ("alpha", 1.0)}),
    "HardSigmoid": ("HARD_SIGMOID", {"alpha": ("alpha", 0.2), "beta": ("beta", 0.5)}),
    "ThresholdedRelu": ("THRESHOLDED_RELU", {"alpha": ("alpha", 1.0)}),
    "Shrink": ("SHRINK", {"lambd": ("alpha", 0.5), "bias": ("beta", 0.0)}),
    "Swish": ("SWISH", {"alpha": ("alpha", 1.0)}),
    "IsInf": ("IS_INF", {"detect_negative": ("alpha", 1), "detect_positive": ("beta", 1)}),
}
# ONNX op -> ONNX_BINARY function
BINARY = {"Div": "DIV", "And": "AND", "Or": "OR", "Xor": "XOR", "BitwiseAnd": "BITWISE_AND",
          "BitwiseOr": "BITWISE_OR", "BitwiseXor": "BITWISE_XOR", "Equal": "EQUAL", "Less": "LESS",
          "LessOrEqual": "LESS_EQUAL", "Greater": "GREATER", "GreaterOrEqual": "GREATER_EQUAL"}
COMPARISONS = ("EQUAL", "LESS", "LESS_EQUAL", "GREATER", "GREATER_EQUAL")
# types Cast reaches (edgeml's CAST kernel)
CAST_TYPES = tuple(np.dtype(t) for t in (np.float32, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.int64,
                                         np.bool_))


class ElementwiseOps:
    """ONNX_UNARY / ONNX_BINARY translations; uses the host translator's helpers (need, get_plain, op, ...)."""

    # ----- typed operands --------------------------------------------------------------------------
    def typed(self, v: Value) -> int:
        """An IR tensor in ONNX axis order holding `v` in its own ONNX element type (constants are stored narrowed
        to int32 / float32 elsewhere; uint8 activations are held as int8 with the sign bit flipped)."""
        cache = self.__dict__.setdefault("typed_cache", {})
        if v.name in cache and self.values.get(v.name) is v:
            return cache[v.name]
        if v.const is not None and v.const.dtype not in CAST_TYPES:
            self.unsupported(f"'{v.name}' has element type {v.const.dtype} (float32, int8, uint8, int16, uint16, "
                             "int32, int64 and bool are supported)")
        t = self.get_plain(v)
        if self.tensors[t].dtype != v.dtype:
            if v.const is not None:
                t = self.const_tensor(v.name + "/" + v.dtype.name, v.const)
            elif v.dtype == np.uint8 and self.tensors[t].dtype == np.int8:
                out = self.tensor(v.name + "/uint8", self.tensors[t].shape, np.uint8)
                self.op("ONNX_FLIP_SIGN_BIT", [t], [out])
                t = out
            else:
                self.unsupported(f"'{v.name}' is held as {self.tensors[t].dtype}, not its type {v.dtype}")
        cache[v.name] = t
        return t

    def check_attrs(self, attrs: dict, allowed):
        """Every node attribute must be one the translation reads."""
        if not attrs:
            return
        extra = sorted(set(attrs) - set(allowed))
        if extra:
            self.bad(f"unknown attribute(s) {', '.join(extra)} (the op takes {', '.join(sorted(allowed)) or 'none'})")

    def _layout_for(self, vals) -> bool:
        """Whether a float element-wise op over `vals` runs channels-last (some input already is, all are 4-D or
        constants), as Add does."""
        rank = max(v.rank for v in vals)
        return rank == 4 and all(v.dtype == F32 or v.const is not None for v in vals) and \
            any(self.preferred_is_nhwc(v) for v in vals) and all(v.rank == 4 or v.const is not None for v in vals)

    def _operand(self, v: Value, nhwc: bool, dtype) -> int:
        if not nhwc:
            t = self.typed(v)
        elif v.const is not None:
            c = v.const.reshape((1,) * (4 - v.rank) + v.const.shape).astype(dtype)
            t = self.const_tensor(v.name + "/nhwc", c.transpose(TO_NHWC))
        else:
            t = self.get_nhwc(v)
        return t

    # ----- generic forms ---------------------------------------------------------------------------
    def onnx_unary(self, name: str, x: Value, function: str, alpha: float = 0.0, beta: float = 0.0) -> Value:
        out_dtype = BOOL if function in ("IS_NAN", "IS_INF") else x.dtype
        if x.dtype == F32:
            t, nhwc = self.preferred(x)
            t = self._as_float32(t)
        else:
            t, nhwc = self.typed(x), False
        out = self.tensor(name, self.tensors[t].shape, out_dtype)
        self.op("ONNX_UNARY", [t], [out], function=function, alpha=float(alpha), beta=float(beta))
        return self.new_value(name, x.shape, out_dtype, out, nhwc)

    def onnx_binary(self, name: str, a: Value, b: Value, function: str) -> Value:
        if a.dtype != b.dtype:
            self.bad(f"inputs of types {a.dtype} and {b.dtype}; they must match")
        try:
            shape = tuple(np.broadcast_shapes(a.shape, b.shape))
        except ValueError:
            self.bad(f"shapes {list(a.shape)} and {list(b.shape)} do not broadcast")
        nhwc = self._layout_for((a, b))
        ta, tb = self._operand(a, nhwc, a.dtype), self._operand(b, nhwc, b.dtype)
        out_dtype = BOOL if function in COMPARISONS else a.dtype
        ir_shape = tuple(shape[p] for p in TO_NHWC) if nhwc else shape
        out = self.tensor(name, ir_shape, out_dtype)
        self.op("ONNX_BINARY", [ta, tb], [out], function=function)
        return self.new_value(name, shape, out_dtype, out, nhwc)

    def _unary_node(self, node, ins, attrs):
        function, params = UNARY[node.op_type]
        allowed = set(params)
        if node.op_type == "Gelu":
            allowed = {"approximate"}
        self.check_attrs(attrs, allowed)
        self.need(ins, 1, 1)
        if self._fold(node, ins, attrs):
            return
        values = {opt: float(attrs.get(a, default)) for a, (opt, default) in params.items()}
        self.onnx_unary(node.output[0], ins[0], function, **values)

    def _binary_node(self, node, ins, attrs, function: str):
        self.need(ins, 2, 2)
        if self._fold(node, ins, attrs):
            return
        a, b = ins
        self.onnx_binary(node.output[0], a, b, function)

    # ----- unary ops ------------------------------------------------------------------------------
    def op_Gelu(self, node, ins, attrs):
        self.check_attrs(attrs, {"approximate"})
        self.need(ins, 1, 1)
        approx = attrs.get("approximate", "none")
        if approx not in ("none", "tanh"):
            self.bad(f"approximate '{approx}' (none or tanh)")
        if self._fold(node, ins, attrs):
            return
        self.onnx_unary(node.output[0], ins[0], "GELU_TANH" if approx == "tanh" else "GELU_ERF")

    # ----- binary ops -----------------------------------------------------------------------------
    def op_Pow(self, node, ins, attrs):
        """Base and exponent may differ in type (onnxruntime's T, T1): an integer exponent of a float base is
        converted to float (exact for the exponents that matter); a float exponent of an integer base computes
        in float and truncates back, as std::pow then static_cast does."""
        self.check_attrs(attrs, ())
        self.need(ins, 2, 2)
        if self._fold(node, ins, attrs):
            return
        x, y = ins
        if x.dtype == y.dtype:
            self.onnx_binary(node.output[0], x, y, "POW")
        elif x.dtype == F32:
            self.onnx_binary(node.output[0], x, self.cast_value(y, F32, node.output[0] + "/exponent"), "POW")
        elif y.dtype == F32:
            xf = self.cast_value(x, F32, node.output[0] + "/base")
            r = self.onnx_binary(node.output[0] + "/f32", xf, y, "POW")
            self.cast_value(r, x.dtype, node.output[0])
        else:
            self.onnx_binary(node.output[0], x, self.cast_value(y, x.dtype, node.output[0] + "/exponent"), "POW")

    def op_Mod(self, node, ins, attrs):
        self.check_attrs(attrs, {"fmod"})
        fmod = attrs.get("fmod", 0)
        if fmod not in (0, 1):
            self.bad(f"fmod {fmod} (0 or 1)")
        self._binary_node(node, ins, attrs, "FMOD" if fmod else "MOD")

    def op_BitShift(self, node, ins, attrs):
        self.check_attrs(attrs, {"direction"})
        direction = attrs.get("direction")
        if direction not in ("LEFT", "RIGHT"):
            self.bad(f"direction {direction!r} (LEFT or RIGHT)")
        self._binary_node(node, ins, attrs, "SHIFT_" + direction)

    def op_PRelu(self, node, ins, attrs):
        self.check_attrs(attrs, ())
        self.need(ins, 2, 2)
        if self._fold(node, ins, attrs):
            return
        x, slope = ins
        if tuple(np.broadcast_shapes(x.shape, slope.shape)) != tuple(x.shape):
            self.bad(f"slope {list(slope.shape)} does not broadcast to the input {list(x.shape)}")
        self.onnx_binary(node.output[0], x, slope, "PRELU")

    def _variadic(self, node, ins, attrs, function: str):
        self.check_attrs(attrs, ())
        if not ins or any(v is None for v in ins):
            self.bad("needs at least one input")
        if self._fold(node, ins, attrs):
            return
        acc = ins[0]
        for k, v in enumerate(ins[1:]):
            last = k == len(ins) - 2 and function != "MEAN"
            acc = self.onnx_binary(node.output[0] if last else f"{node.output[0]}/{k}", acc, v,
                                   "ADD" if function == "MEAN" else function)
        if function == "MEAN":
            if acc.dtype != F32:
                self.unsupported(f"Mean of {acc.dtype} (float32 is supported)")
            n = self.const_value(node.output[0] + "/count", np.array(len(ins), np.float32))
            acc = self.onnx_binary(node.output[0], acc, n, "DIV")
        elif len(ins) == 1:
            self.values[node.output[0]] = acc

    def op_Max(self, node, ins, attrs):
        self._variadic(node, ins, attrs, "MAX")

    def op_Min(self, node, ins, attrs):
        self._variadic(node, ins, attrs, "MIN")

    def op_Sum(self, node, ins, attrs):
        self._variadic(node, ins, attrs, "ADD")

    def op_Mean(self, node, ins, attrs):
        self._variadic(node, ins, attrs, "MEAN")

    # ----- Where, Cast ----------------------------------------------------------------------------
    def op_Where(self, node, ins, attrs):
        self.check_attrs(attrs, ())
        self.need(ins, 3, 3)
        if self._fold(node, ins, attrs):
            return
        cond, x, y = ins
        if cond.dtype != BOOL or x.dtype != y.dtype:
            self.bad(f"condition of type {cond.dtype} (bool) and values of types {x.dtype}, {y.dtype} (one type)")
        try:
            shape = tuple(np.broadcast_shapes(cond.shape, x.shape, y.shape))
        except ValueError:
            self.bad(f"shapes {list(cond.shape)}, {list(x.shape)} and {list(y.shape)} do not broadcast")
        ts = [self.typed(v) for v in (cond, x, y)]
        out = self.tensor(node.output[0], shape, x.dtype)
        self.op("SELECT_V2", ts, [out])
        self.new_value(node.output[0], shape, x.dtype, out, False)

    def cast_value(self, x: Value, dtype, name: str) -> Value:
        dtype = np.dtype(dtype)
        if x.const is not None:
            return self.const_value(name, x.const.astype(dtype))
        if dtype not in CAST_TYPES or x.dtype not in CAST_TYPES:
            self.unsupported(f"Cast from {x.dtype} to {dtype} (float32, int8, uint8, int16, uint16, int32, int64 "
                             "and bool are supported)")
        if x.dtype == dtype:
            self.values[name] = x
            return x
        t, nhwc = (self.preferred(x) if x.dtype == F32 and dtype != BOOL else (self.typed(x), False))
        if self.tensors[t].dtype != x.dtype:
            t, nhwc = self.typed(x), False
        out = self.tensor(name, self.tensors[t].shape, dtype)
        self.op("CAST", [t], [out])
        return self.new_value(name, x.shape, dtype, out, nhwc)

    def op_Cast(self, node, ins, attrs):
        self.check_attrs(attrs, {"to", "saturate", "round_mode"})
        self.need(ins, 1, 1)
        to = attrs.get("to")
        if to not in ONNX_DTYPES:
            name = type_name(to)
            self.unsupported(f"Cast to element type {name} (float32, int8, uint8, int16, uint16, int32, int64 and "
                             "bool are supported)")
        self._cast(node, ins[0], ONNX_DTYPES[to])

    def op_CastLike(self, node, ins, attrs):
        self.check_attrs(attrs, {"saturate", "round_mode"})
        self.need(ins, 2, 2)
        self._cast(node, ins[0], ins[1].dtype)

    def _cast(self, node, x: Value, dtype):
        dtype = np.dtype(dtype)
        if x.const is not None:
            if dtype not in CAST_TYPES or x.const.dtype not in CAST_TYPES + (np.dtype(np.float64),):
                self.unsupported(f"Cast from {x.const.dtype} to {dtype} (float32, int8, uint8, int16, uint16, int32, "
                                 "int64 and bool are supported)")
            with np.errstate(invalid="ignore", over="ignore"):
                self.const_value(node.output[0], x.const.astype(dtype))
            return
        self.cast_value(x, dtype, node.output[0])


def _unary_handler(onnx_op: str):
    def handler(self, node, ins, attrs):
        self._unary_node(node, ins, attrs)
    handler.__name__ = "op_" + onnx_op
    return handler


def _binary_handler(onnx_op: str, function: str):
    def handler(self, node, ins, attrs):
        self.check_attrs(attrs, ())
        self._binary_node(node, ins, attrs, function)
    handler.__name__ = "op_" + onnx_op
    return handler


for _op in UNARY:
    setattr(ElementwiseOps, "op_" + _op, _unary_handler(_op))
for _op, _fn in BINARY.items():
    setattr(ElementwiseOps, "op_" + _op, _binary_handler(_op, _fn))
