"""Named parameter layouts of the kernels: which em_params slot (ptr[], i[], f[]) holds what.

Every kernel `void em_xxx(const em_params* p)` reads its parameters through names defined once, as C enums, in
its family header under cython_ops/include/: for a layout with prefix EM_CONV, EM_CONV_P_<NAME> (pointer slots),
EM_CONV_I_<NAME> (integer slots) and EM_CONV_F_<NAME> (float slots), each enum ending with a _COUNT member; a run
of consecutive slots is <NAME> .. <NAME>_LAST.  A variant that extends a base layout keeps the base's names for
the slots it shares and continues its own from there (EM_CONV_VNNI_I_KP = EM_CONV_I_CHUNK + 1).

This module mirrors those enums: one Layout per C prefix, with the slot names in slot order (lower case, without
the prefix; runs with their length), KERNEL_LAYOUTS (every name of every cython_ops module's KERNELS -> its
layout), and the positional lists a plan step passes to the Engine, built from keywords:

    L = layout_of("fully_connected_f32")
    ptrs = L.ptrs(input=x, weights=w, bias=b, output=y)
    ints = L.ints(rows=m, depth=k, units=n)
    floats = L.floats(act_min=lo, act_max=hi)

Every slot must be given (a run as a sequence of exactly its length); slots named "reserved" are not read by the
kernel and are filled with 0.  tests/test_layouts.py compiles the headers and checks every index against this file.
"""
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

MAX_PTRS, MAX_INTS, MAX_FLOATS = 16, 64, 8           # em_params.h: EM_MAX_PTRS, EM_MAX_INTS, EM_MAX_FLOATS
RESERVED = "reserved"                                 # slots a kernel does not read (0 / NULL)


@dataclass(frozen=True)
class Slot:
    name: str            # lower case, without the prefix
    length: int          # 1, or the length of a run of consecutive slots
    prefix: str          # the C prefix that names it (a variant's inherited slots keep the base's)


# values a single slot takes as they are (issue 15, load time: _build's fast check)
SCALAR_TYPES = frozenset({int, float, bool, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
                          np.uint64, np.float32, np.float64, np.bool_})


@dataclass(frozen=True)
class Layout:
    name: str
    header: str          # the header under cython_ops/include that defines the enums
    prefix: str          # C prefix: <prefix>_P_<NAME>, <prefix>_I_<NAME>, <prefix>_F_<NAME>, <prefix>_{P,I,F}_COUNT
    ptr_slots: Tuple[Slot, ...]
    int_slots: Tuple[Slot, ...]
    float_slots: Tuple[Slot, ...]

    def __post_init__(self):
        for kind, slots, limit in self.sections():
            names = [s.name for s in slots]
            for s in slots:
                if not s.name.isidentifier() or s.name != s.name.lower() or s.name == "count" \
                        or s.name.endswith("_last") or s.length < 1:
                    raise ValueError(f"{self.name}: bad {kind} slot {s}")
            if len(set(names)) != len(names):
                raise ValueError(f"{self.name}: {kind} slot names repeat: {names}")
            if sum(s.length for s in slots) > limit:
                raise ValueError(f"{self.name}: more than {limit} {kind} slots")

    def sections(self):
        """(kind, slots, em_params limit) for ptrs, ints, floats."""
        return (("ptrs", self.ptr_slots, MAX_PTRS), ("ints", self.int_slots, MAX_INTS),
                ("floats", self.float_slots, MAX_FLOATS))

    def count(self, kind: str) -> int:
        """Slots of one kind ("ptrs", "ints" or "floats"): the C enum's _COUNT."""
        return sum(s.length for s in self._slots(kind))

    def index(self, kind: str, name: str) -> int:
        """The position of a slot (the first of a run)."""
        pos = 0
        for s in self._slots(kind):
            if s.name == name:
                return pos
            pos += s.length
        raise ValueError(f"layout {self.name}: no {kind} slot {name!r}")

    def ptrs(self, **values) -> list:
        return self._build("ptrs", values)

    def ints(self, **values) -> list:
        return self._build("ints", values)

    def floats(self, **values) -> list:
        return self._build("floats", values)

    def _slots(self, kind: str) -> Tuple[Slot, ...]:
        for k, slots, _ in self.sections():
            if k == kind:
                return slots
        raise ValueError(f"no slot kind {kind!r} (ptrs, ints, floats)")

    def _build(self, kind: str, values: dict) -> list:
        names, singles = self._names(kind)
        if singles and len(values) == len(names):     # every slot one named value: the common case, checked fast
            try:
                out = [values[n] for n in names]
            except KeyError:
                out = None
            if out is not None and SCALAR_TYPES.issuperset(map(type, out)):     # (a C loop: no per-value Python)
                return out
            if out is not None and not any(hasattr(v, "__len__") and not isinstance(v, (str, bytes)) for v in out):
                return out
        slots = self._slots(kind)
        for key in values:
            if key not in names:
                raise ValueError(f"layout {self.name}: no {kind} slot {key!r} "
                                 f"(its {kind}: {', '.join(names) or 'none'})")
        out = []
        for s in slots:
            if s.name == RESERVED:
                out.extend([0] * s.length)
                continue
            if s.name not in values:
                raise ValueError(f"layout {self.name}: {kind} slot {s.name!r} is missing")
            v = values[s.name]
            is_seq = hasattr(v, "__len__") and not isinstance(v, (str, bytes))
            if s.length == 1:
                if is_seq:
                    raise ValueError(f"layout {self.name}: {kind} slot {s.name!r} takes one value, not a sequence")
                out.append(v)
            else:
                if not is_seq or len(v) != s.length:
                    got = f"{len(v)} values" if is_seq else "one value"
                    raise ValueError(f"layout {self.name}: {kind} run {s.name!r} takes {s.length} values, got {got}")
                out.extend(v)
        return out

    def _names(self, kind: str) -> tuple:
        """(the named slots' names in order, whether every slot is a single named one), found once per kind."""
        cache = self.__dict__.setdefault("_names_cache", {})
        if kind not in cache:
            slots = self._slots(kind)
            names = tuple(s.name for s in slots if s.name != RESERVED)
            cache[kind] = (names, all(s.length == 1 and s.name != RESERVED for s in slots))
        return cache[kind]


ALL = None


def _slots(prefix: str, names: Sequence) -> Tuple[Slot, ...]:
    return tuple(Slot(n, 1, prefix) if isinstance(n, str) else Slot(n[0], n[1], prefix) for n in names)


def _layout(name: str, header: str, prefix: str, ptrs: Sequence = (), ints: Sequence = (), floats: Sequence = (),
            base: Optional[Layout] = None, keep: Tuple[Optional[int], Optional[int], Optional[int]] = (0, 0, 0)):
    """A layout; with a base, it starts with the base's first keep[k] ptr / int / float slots (ALL: every one,
    runs counted as one), named by the base's prefix, and continues with its own."""
    own = (_slots(prefix, ptrs), _slots(prefix, ints), _slots(prefix, floats))
    if base is None:
        return Layout(name, header, prefix, *own)
    inherited = [b if k is ALL else b[:k] for b, k in zip((base.ptr_slots, base.int_slots, base.float_slots), keep)]
    return Layout(name, header, prefix, *(i + o for i, o in zip(inherited, own)))


_GEOMETRY = ("n", "ih", "iw", "ic", "oh", "ow", "oc", "kh", "kw", "sh", "sw", "dh", "dw", "pad_top", "pad_left")
_REQUANT_PTRS = ("input", "weights", "bias", "output", "mult", "shift", "scratch", "double_scales", "float_scales")

# ----- CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED ------------------------------------------------------------
CONV = _layout("conv", "em_im2col.h", "EM_CONV", ptrs=_REQUANT_PTRS,
               ints=_GEOMETRY + ("in_zp", "out_zp", "act_min", "act_max", "mode", "dm", "direct", "chunk"),
               floats=("act_min", "act_max"))
CONV_VNNI = _layout("conv_vnni", "em_conv.h", "EM_CONV_VNNI", base=CONV, keep=(ALL, ALL, 0),
                    ints=("kp", "threads", "slice_bytes", "w_zp"))
CONV_AVX2 = _layout("conv_avx2", "em_conv.h", "EM_CONV_AVX2", base=CONV, keep=(ALL, ALL, 0),
                    ints=("kp", "threads", "slice_bytes"))
FC = _layout("fc", "em_fully_connected.h", "EM_FC", ptrs=_REQUANT_PTRS,
             ints=("rows", "depth", "units", "out_zp", "act_min", "act_max", "mode"))
FC_PACKED = _layout("fc_packed", "em_fully_connected.h", "EM_FC_PACKED", base=FC, keep=(ALL, ALL, 0),
                    ints=("kp", "chunk", "w_zp", "threads", "slice_bytes"))
FC_F32 = _layout("fc_f32", "em_fully_connected.h", "EM_FC_F32", base=FC, keep=(4, 3, 0), floats=("act_min", "act_max"))
_HYBRID_PTRS = ("input", "weights", "bias", "output", "channel_scales", "row_sums", "scratch")
_HYBRID_FLOATS = ("act_min", "act_max", "weight_scale")
HY_CONV = _layout("hybrid_conv", "em_hybrid.h", "EM_HY_CONV", ptrs=_HYBRID_PTRS,
                  ints=_GEOMETRY + ("mode", "dm", "direct", "chunk"), floats=_HYBRID_FLOATS)
HY_FC = _layout("hybrid_fc", "em_hybrid.h", "EM_HY_FC", ptrs=_HYBRID_PTRS,
                ints=("rows", "depth", "units", "asymmetric", "per_channel", "clamp"), floats=_HYBRID_FLOATS)

# ----- element-wise ----------------------------------------------------------------------------------------------
BINARY = _layout("binary", "em_elementwise.h", "EM_BINARY", ptrs=("input1", "input2", "output"),
                 ints=(("dims", 6), ("strides1", 6), ("strides2", 6)), floats=("act_min", "act_max"))
ADD = _layout("add", "em_elementwise.h", "EM_ADD", base=BINARY, keep=(ALL, ALL, 0), ptrs=("tables",),
              ints=("zp1", "zp2", "out_zp", "left_shift", "mult1", "shift1", "mult2", "shift2", "out_mult",
                    "out_shift", "act_min", "act_max", "mode", "sign", "threads"))
MUL = _layout("mul", "em_elementwise.h", "EM_MUL", base=BINARY, keep=(ALL, ALL, 0),
              ints=("zp1", "zp2", "out_zp", "mult", "shift", "act_min", "act_max", "mode", "threads"))
_IN_OUT = ("input", "output")
REQUANTIZE = _layout("requantize", "em_elementwise.h", "EM_REQUANTIZE", ptrs=_IN_OUT,
                     ints=("n", "in_zp", "out_zp", "mult", "shift", "act_min", "act_max", "mode"))
LEAKY_RELU = _layout("leaky_relu", "em_elementwise.h", "EM_LEAKY_RELU", ptrs=_IN_OUT,
                     ints=("n", "in_zp", "out_zp", "mult_identity", "shift_identity", "mult_alpha", "shift_alpha",
                           "mode"))
QUANTIZE = _layout("quantize", "em_elementwise.h", "EM_QUANTIZE", ptrs=_IN_OUT, ints=("n", "zp"), floats=("scale",))
DEQUANTIZE = _layout("dequantize", "em_elementwise.h", "EM_DEQUANTIZE", ptrs=_IN_OUT, ints=("n", "zp"),
                     floats=("scale",))
UNARY_F32 = _layout("unary_f32", "em_elementwise.h", "EM_UNARY_F32", ptrs=_IN_OUT, ints=("n", "kind"),
                    floats=("act_min", "act_max", "alpha"))
SOFTMAX_F32 = _layout("softmax_f32", "em_elementwise.h", "EM_SOFTMAX_F32", ptrs=_IN_OUT, ints=("rows", "depth"),
                      floats=("beta",))

# ----- int8 activations ------------------------------------------------------------------------------------------
LUT = _layout("lut", "em_activation_steps.h", "EM_LUT", ptrs=("input", "output", "table"), ints=("n",))
FIXED_ACT = _layout("fixed_act", "em_activation_steps.h", "EM_FIXED_ACT", ptrs=_IN_OUT,
                    ints=("n", "in_zp", "in_range_radius", "in_mult", "in_left_shift", "mode"))
SOFTMAX_INT8 = _layout("softmax_int8", "em_activation_steps.h", "EM_SOFTMAX_INT8", ptrs=_IN_OUT,
                       ints=("rows", "depth", "in_mult", "in_left_shift", "diff_min", "mode"))
HARD_SWISH = _layout("hard_swish", "em_activation_steps.h", "EM_HARD_SWISH", ptrs=_IN_OUT,
                     ints=("n", "in_zp", "out_zp", "reluish_mult", "reluish_exponent", "out_mult", "out_exponent"))

# ----- pooling, MEAN, data movement ------------------------------------------------------------------------------
POOL = _layout("pool", "em_pool.h", "EM_POOL", ptrs=("input", "output", "scratch"),
               ints=("n", "ih", "iw", "c", "oh", "ow", "kh", "kw", "sh", "sw", "pad_top", "pad_left", "act_min",
                     "act_max"),
               floats=("act_min", "act_max"))
MEAN = _layout("mean", "em_reduce.h", "EM_MEAN", ptrs=("input", "output", "scratch"),
               ints=(("dims", 6), ("out_strides", 6), "outputs", "reduced", "is_float", "in_zp", "out_zp", "mult",
                     "shift", "mode"))
COPY = _layout("copy", "em_shape.h", "EM_COPY", ptrs=_IN_OUT, ints=("bytes",))
GATHER = _layout("gather", "em_shape.h", "EM_GATHER", ptrs=_IN_OUT,
                 ints=("itemsize", ("dims", 6), ("strides", 6), "start"))
PAD = _layout("pad", "em_shape.h", "EM_PAD", ptrs=("input", "output", "value"),
              ints=("itemsize", ("dims", 6), ("out_strides", 6), "origin", "out_count"))
CONCAT_MAX_INPUTS = 14                               # EM_CONCAT_MAX_INPUTS: unused input slots are 0
CONCAT = _layout("concat", "em_shape.h", "EM_CONCAT", ptrs=("output", ("inputs", CONCAT_MAX_INPUTS)),
                 ints=("n", "outer", "out_row_bytes", ("row_bytes", CONCAT_MAX_INPUTS)))
CONCAT_LUT = _layout("concat_lut", "em_shape.h", "EM_CONCAT_LUT", base=CONCAT, keep=(ALL, ALL, 0), ptrs=("tables",),
                     ints=("lut_mask",))      # uint8 inputs rescaled by table
REVSEQ = _layout("reverse_sequence", "em_shape.h", "EM_REVSEQ", ptrs=("input", "output", "lens"),
                 ints=("batch", "steps", "batch_stride", "time_stride", "inner_bytes"))

# ----- ONNX-only ops ---------------------------------------------------------------------------------------------
ONNX_QUANTIZE = _layout("onnx_quantize", "em_onnx_quantize.h", "EM_ONNX_QUANTIZE", ptrs=_IN_OUT,
                        ints=("n", "zp", "lo", "hi"), floats=("scale",))
ONNX_DEQUANTIZE = _layout("onnx_dequantize", "em_onnx_quantize.h", "EM_ONNX_DEQUANTIZE", ptrs=_IN_OUT,
                          ints=("n", "zp"), floats=("scale",))
ONNX_FLIP = _layout("onnx_flip", "em_onnx_quantize.h", "EM_ONNX_FLIP", ptrs=_IN_OUT, ints=("n",))
ONNX_CLAMP = _layout("onnx_clamp", "em_onnx_quantize.h", "EM_ONNX_CLAMP", ptrs=_IN_OUT, ints=("n", "lo", "hi"))
ONNX_DYNAMIC_QUANTIZE = _layout("onnx_dynamic_quantize", "em_onnx_quantize.h", "EM_ONNX_DYNAMIC_QUANTIZE",
                                ptrs=("input", "output", "scale", "zero_point"), ints=("n",))
QLINEAR_ADD = _layout("qlinear_add", "em_onnx_qlinear.h", "EM_QLINEAR_ADD", ptrs=("a", "b", "output"),
                      ints=("a_offset", "b_offset", "out_offset", ("dims", 6), ("a_strides", 6), ("b_strides", 6)),
                      floats=("ratio_a", "ratio_b", "fixed"))
QLINEAR_SOFTMAX = _layout("qlinear_softmax", "em_onnx_qlinear.h", "EM_QLINEAR_SOFTMAX",
                          ptrs=("input", "output", "table"), ints=("rows", "depth", "unsigned", "out_zp"),
                          floats=("inv_scale",))
MLAS_CONV = _layout("mlas_conv", "em_onnx_conv.h", "EM_MLAS_CONV", ptrs=("input", "weights", "bias", "output"),
                    ints=_GEOMETRY + ("stride_k", "ocp", "dm"))
CONV_INTEGER = _layout("conv_integer", "em_onnx_conv.h", "EM_CONV_INTEGER",
                       ptrs=("input", "weights", "bias", "output", (RESERVED, 3), "x_zp", "scales"),
                       ints=_GEOMETRY + ("x_zp", "mode", "out_zp", "act_min", "act_max", "groups"))

# ----- recurrent -------------------------------------------------------------------------------------------------
_LSTM_INTS = ("batch", "steps", "inputs", "cells", "time_major")
LSTM_INT8 = _layout("lstm_int8", "em_lstm_int8.h", "EM_LSTM_INT8",
                    ptrs=("x", "y", "h_state", "c_state", "wx", "wh", "bias_x", "bias_h", "mult", "shift",
                          ("tables", 3), "scratch"),
                    ints=_LSTM_INTS + ("cell_shift", "cell_clip", "hidden_mult", "hidden_shift", "hidden_zp", "mode",
                                       "stale_tanh", "quads", ("table_limits", 3)))
LSTM_F32 = _layout("lstm_f32", "em_lstm_f32.h", "EM_LSTM_F32",
                   ptrs=("x", "y", "h_state", "c_state", "wx", "wh", "bias", (RESERVED, 6), "scratch"),
                   ints=_LSTM_INTS + ("activation", "interleaved"), floats=("cell_clip",))
LSTM_HYBRID = _layout("lstm_hybrid", "em_lstm_hybrid.h", "EM_LSTM_HYBRID",
                      ptrs=("x", "y", "h_state", "c_state", "wx", "wh", "bias", "row_sums_x", "row_sums_h",
                            "weight_scales", "scratch", "lanes"),
                      ints=_LSTM_INTS + ("activation", "asymmetric", "quads"), floats=("cell_clip",))
ONNX_RNN_MAX_ACTS = 6                                # EM_ONNX_RNN_MAX_ACTS: [directions][functions], the rest 0
ONNX_RNN = _layout("onnx_rnn", "em_onnx_rnn.h", "EM_ONNX_RNN",
                   ptrs=("x", "y", "y_h", "y_c", "w", "r", "bias", "rh", "rbh", "initial_h", "initial_c", "peepholes",
                         "sequence_lens", "scratch", "quant", "status"),
                   ints=("cell", "steps", "batch", "inputs", "hidden", "directions", "reverse", "layout",
                         "input_forget", "linear_before_reset", "quads", ("activations", ONNX_RNN_MAX_ACTS),
                         "fused_step"),
                   floats=("clip",))

# ----- the 16x8 scheme (int16 activations, int8 weights) and TRANSPOSE_CONV ---------------------------------------
CONV16 = _layout("conv16", "em_int16.h", "EM_CONV16", base=CONV, keep=(ALL, ALL, 0), ints=("wide_bias",))
FC16 = _layout("fc16", "em_int16.h", "EM_FC16", base=FC, keep=(ALL, ALL, 0), ints=("wide_bias",))
ADD16_POT = _layout("add16_pot", "em_int16.h", "EM_ADD16_POT", base=BINARY, keep=(ALL, ALL, 0),
                    ints=("shift1", "shift2", "act_min", "act_max", "sign"))
SOFTMAX16 = _layout("softmax16", "em_int16_lut.h", "EM_SOFTMAX16",
                    ptrs=("input", "output", "exp_table", "reciprocal_table"),
                    ints=("rows", "depth", "in_mult", "in_shift", "mode"))
ACT16 = _layout("act16", "em_int16_lut.h", "EM_ACT16", ptrs=("input", "output"),
                ints=("n", "in_mult", "in_shift"))
TCONV = _layout("transpose_conv", "em_transpose_conv.h", "EM_TCONV",
                ptrs=("input", "weights", "bias", "output", "mult", "shift", "scratch", "output_shape", "status"),
                ints=("n", "ih", "iw", "ic", "oh", "ow", "oc", "kh", "kw", "sh", "sw", "pad_top", "pad_left", "in_zp",
                      "out_zp", "act_min", "act_max", "mode", "kind"),
                floats=("act_min", "act_max"))

# ----- resize, reduction, index / shape, cast, select and comparison ops (the op-idx group) ----------------------
RESIZE = _layout("resize", "em_resize.h", "EM_RESIZE",
                 ptrs=("input", "output", "y_index", "x_index", "y_weight", "x_weight"),
                 ints=("batch", "in_h", "in_w", "depth", "out_h", "out_w", "dtype", "mode"))
NEAREST = _layout("nearest", "em_resize.h", "EM_NEAREST", ptrs=("input", "output", "y_index", "x_index"),
                  ints=("batch", "in_h", "in_w", "pixel_bytes", "out_h", "out_w"))
REDUCE = _layout("reduce", "em_reduce.h", "EM_REDUCE", ptrs=_IN_OUT,
                 ints=(("dims", 6), ("out_strides", 6), "outputs", "dtype", "kind", "from_first"))
QSUM = _layout("qsum", "em_reduce.h", "EM_QSUM", ptrs=("input", "output", "scratch"),
               ints=(("dims", 6), ("out_strides", 6), "outputs", "reduced", "dtype", "in_zp", "out_zp", "mult",
                     "shift", "mode", "lo", "hi"))
QPROD = _layout("qprod", "em_reduce.h", "EM_QPROD", ptrs=("input", "output", "scratch"),
                ints=(("dims", 6), ("out_strides", 6), "outputs", "dtype", "in_zp", "out_zp", "mult", "shift", "lo",
                      "hi"))
ARG = _layout("arg", "em_reduce.h", "EM_ARG", ptrs=_IN_OUT,
              ints=("outer", "axis_size", "inner", "dtype", "is_max", "int64_output"))
GATHER_INDICES = _layout("gather_indices", "em_index.h", "EM_GATHER_INDICES",
                         ptrs=("input", "indices", "output", "status"),
                         ints=("batch", "outer", "axis_size", "indices", "block_bytes", "index_type"))
GATHER_ND = _layout("gather_nd", "em_index.h", "EM_GATHER_ND", ptrs=("params", "indices", "output", "status"),
                    ints=("slices", "depth", "slice_bytes", "index_type", ("dims", 6), ("strides", 6)))
TILE = _layout("tile", "em_index.h", "EM_TILE", ptrs=_IN_OUT,
               ints=("itemsize", ("out_dims", 6), ("in_dims", 6), ("in_strides", 6)))
FILL = _layout("fill", "em_index.h", "EM_FILL", ptrs=("value", "output"), ints=("elements", "itemsize"))
CAST = _layout("cast", "em_index.h", "EM_CAST", ptrs=_IN_OUT, ints=("elements", "from", "to"))
SELECT = _layout("select", "em_index.h", "EM_SELECT", ptrs=("condition", "x", "y", "output"),
                 ints=("itemsize", ("dims", 6), ("cond_strides", 6), ("x_strides", 6), ("y_strides", 6)))
COMPARE = _layout("compare", "em_compare.h", "EM_COMPARE", ptrs=("input1", "input2", "output"),
                  ints=(("dims", 6), ("strides1", 6), ("strides2", 6), "dtype", "op", "rescale", "zp1", "zp2",
                        "mult1", "shift1", "mult2", "shift2", "left_shift", "mode"))
MINMAX = _layout("minmax", "em_compare.h", "EM_MINMAX", ptrs=("input1", "input2", "output"),
                 ints=(("dims", 6), ("strides1", 6), ("strides2", 6), "dtype", "is_max"))

# ----- element-wise math, normalizations, BATCH_MATMUL, grouped CONV_2D, space / batch moves (op-math) -------------
MATH_UNARY = _layout("math_unary", "em_math_unary.h", "EM_MATH_UNARY", ptrs=_IN_OUT, ints=("n", "kind"))
LUT_CHECKED = _layout("lut_checked", "em_math_unary.h", "EM_LUT_CHECKED", ptrs=("input", "output", "table", "status"),
                      ints=("n",))
MATH_BINARY = _layout("math_binary", "em_math_binary.h", "EM_MATH_BINARY", base=BINARY, keep=(ALL, ALL, ALL),
                      ptrs=("status",), ints=("kind", "int_min", "int_max"))
MATH_BINARY_Q = _layout("math_binary_q", "em_math_binary.h", "EM_MATH_BINARY_Q", base=BINARY, keep=(ALL, ALL, 0),
                        ptrs=("status",),
                        ints=("kind", "zp1", "zp2", "out_zp", "mult1", "shift1", "mult2", "shift2", "out_mult",
                              "out_shift", "left_shift", "act_min", "act_max", "mode"))
NORMALIZE = _layout("normalize", "em_normalize.h", "EM_NORMALIZE", ptrs=_IN_OUT,
                    ints=("rows", "depth", "in_zp", "in_mult", "in_shift", "reverse_mult", "reverse_shift", "diff_min",
                          "mode"))
BATCH_MATMUL = _layout("batch_matmul", "em_batch_matmul.h", "EM_BATCH_MATMUL",
                       ptrs=("lhs", "rhs", "output", "scratch", "packed_rhs", "col_sums", "mult", "shift",
                             "float_scales"),
                       ints=(("batch", 3), ("lhs_strides", 3), ("rhs_strides", 3), "rows", "cols", "depth", "adj_x",
                             "adj_y", "lhs_zp", "rhs_zp", "out_zp", "mode", "lhs_offset", "sums_offset"))
GROUPED_CONV = _layout("grouped_conv", "em_grouped_conv.h", "EM_GROUPED_CONV", base=CONV, keep=(ALL, ALL, ALL),
                       ints=("groups",))
GATHER_INDEXED = _layout("gather_indexed", "em_space.h", "EM_GATHER_INDEXED", ptrs=("input", "output", "tables"),
                         ints=("itemsize", ("dims", 6), ("starts", 6)))
BATCH_SPACE = _layout("batch_space", "em_space.h", "EM_BATCH_SPACE", ptrs=("input", "output", "pad_pixel"),
                      ints=("pixel_bytes", "batch", "height", "width", "blocked_height", "blocked_width", "block_h",
                            "block_w", "top", "left"))

# ----- quantized ONNX operators (onnx-quant) ----------------------------------------------------------------------
QLINEAR_MUL = _layout("qlinear_mul", "em_onnx_qlinear.h", "EM_QLINEAR_MUL", ptrs=("a", "b", "output"),
                      ints=("a_zp", "b_zp", "out_zp", "out_min", "out_max", "out_offset", ("dims", 6),
                            ("a_strides", 6), ("b_strides", 6)),
                      floats=("ratio",))
QLINEAR_POOL = _layout("qlinear_pool", "em_onnx_qlinear.h", "EM_QLINEAR_POOL", ptrs=("input", "output"),
                       ints=("n", "ih", "iw", "c", "oh", "ow", "kh", "kw", "sh", "sw", "pad_top", "pad_left",
                             "count_include_pad", "global", "x_zp", "y_zp", "y_min", "y_max", "out_offset"),
                       floats=("x_scale", "y_scale", "global_scale"))

# every Layout above, in definition order
# ----- control flow (WHILE) and the ops of loop bodies (cython_ops.control); SVDF (cython_ops.svdf) -------------
WHILE = _layout("while", "em_control.h", "EM_WHILE",
                ptrs=("cond_kernels", "cond_params", "body_kernels", "body_params", "cond_output", "copies",
                      "cond_checks", "body_checks", "status"),
                ints=("cond_steps", "body_steps", "init_copies", "stage_copies", "out_copies", "cond_check_count",
                      "body_check_count", "status_bytes", "max_iterations", "outermost"))
SLICE_CONCAT_MAX_PIECES = 4                           # EM_SLICE_CONCAT_MAX_PIECES: unused piece slots are 0
SLICE_CONCAT = _layout("slice_concat", "em_control.h", "EM_SLICE_CONCAT",
                       ptrs=("output", "status", ("sources", SLICE_CONCAT_MAX_PIECES),
                             ("begins", SLICE_CONCAT_MAX_PIECES), ("sizes", SLICE_CONCAT_MAX_PIECES)),
                       ints=("pieces", "rank", "axis", "itemsize", "index_bytes", ("out_dims", 6),
                             ("source_dims", 6 * SLICE_CONCAT_MAX_PIECES)))
BINARY_I32 = _layout("binary_i32", "em_loop_ops.h", "EM_BINARY_I32", base=BINARY, keep=(ALL, ALL, 0),
                     ints=("act_min", "act_max"))
BOOL_BINARY = _layout("bool_binary", "em_loop_ops.h", "EM_BOOL_BINARY", base=BINARY, keep=(ALL, ALL, 0))
SVDF = _layout("svdf", "em_svdf.h", "EM_SVDF",
               ptrs=("input", "weights_feature", "weights_time", "bias", "state", "output", "scratch", "row_sums"),
               ints=("batch", "inputs", "filters", "units", "rank", "memory", "input_zp", "output_zp", "mult1",
                     "shift1", "mult2", "shift2", "mode", "activation", "asymmetric"),
               floats=("feature_scale",))

LAYOUTS: Tuple[Layout, ...] = tuple(v for v in list(globals().values()) if isinstance(v, Layout))

KERNEL_LAYOUTS: Dict[str, Layout] = {
    # cython_ops.conv
    "conv2d_hybrid": HY_CONV, "depthwise_hybrid": HY_CONV, "fully_connected_hybrid": HY_FC, "conv2d_int8": CONV,
    "conv2d_f32": CONV, "depthwise_int8": CONV, "depthwise_f32": CONV, "fully_connected_int8": FC,
    "fully_connected_f32": FC_F32, "conv2d_int8_vnni": CONV_VNNI, "fully_connected_int8_vnni": FC_PACKED,
    "conv2d_int8_avx2": CONV_AVX2, "fully_connected_int8_avx2": FC_PACKED,
    "conv2d_int8_w16": CONV, "depthwise_int8_w16": CONV, "fully_connected_int8_w16": FC,
    # cython_ops.pool
    "avg_pool_int8": POOL, "avg_pool_uint8": POOL, "avg_pool_f32": POOL, "max_pool_int8": POOL, "max_pool_f32": POOL,
    # cython_ops.elementwise
    "add_int8": ADD, "mul_int8": MUL, "add_int8_avx512": ADD, "mul_int8_avx512": MUL, "add_f32": BINARY,
    "sub_f32": BINARY, "mul_f32": BINARY, "requantize_int8": REQUANTIZE, "leaky_relu_int8": LEAKY_RELU,
    "quantize_f32_int8": QUANTIZE, "dequantize_int8_f32": DEQUANTIZE, "unary_f32": UNARY_F32,
    "softmax_f32": SOFTMAX_F32,
    # cython_ops.activation
    "lut_int8": LUT, "logistic_fixed_int8": FIXED_ACT, "tanh_fixed_int8": FIXED_ACT, "softmax_int8": SOFTMAX_INT8,
    "hard_swish_int8": HARD_SWISH,
    # cython_ops.shape
    "copy": COPY, "gather_strided": GATHER, "pad": PAD, "concat": CONCAT, "concat_lut": CONCAT_LUT,
    "reverse_sequence": REVSEQ,
    # cython_ops.reduce
    "mean": MEAN, "reduce": REDUCE, "reduce_sum_quantized": QSUM, "reduce_prod_quantized": QPROD, "arg_min_max": ARG,
    # cython_ops.onnx_ops
    "onnx_quantize_linear": ONNX_QUANTIZE, "onnx_dequantize_linear": ONNX_DEQUANTIZE, "onnx_flip_sign_bit": ONNX_FLIP,
    "onnx_clamp_int8": ONNX_CLAMP, "onnx_qlinear_softmax": QLINEAR_SOFTMAX, "onnx_qlinear_add": QLINEAR_ADD,
    "onnx_conv_f32_mlas": MLAS_CONV, "onnx_conv_integer": CONV_INTEGER,
    "onnx_dynamic_quantize_linear": ONNX_DYNAMIC_QUANTIZE,
    # cython_ops.rnn
    "lstm_int8": LSTM_INT8, "lstm_f32": LSTM_F32, "lstm_hybrid": LSTM_HYBRID, "onnx_rnn_f32": ONNX_RNN,
    "onnx_rnn_s8": ONNX_RNN,
    # cython_ops.int16x8
    "conv2d_16x8": CONV16, "depthwise_16x8": CONV16, "fully_connected_16x8": FC16, "add_int16": ADD,
    "add_int16_pot": ADD16_POT, "mul_int16": MUL, "requantize_int16_int8": REQUANTIZE,
    "requantize_int8_int16": REQUANTIZE, "requantize_int16_int16": REQUANTIZE, "requantize_int16_int32": REQUANTIZE,
    "requantize_int32_int16": REQUANTIZE, "leaky_relu_int16": LEAKY_RELU, "quantize_f32_int16": QUANTIZE,
    "dequantize_int16_f32": DEQUANTIZE, "mean_int16": MEAN, "softmax_int16": SOFTMAX16, "logistic_int16": ACT16,
    "tanh_int16": ACT16,
    # cython_ops.transpose_conv
    "transpose_conv": TCONV,
    # cython_ops.index
    "resize_bilinear_f32": RESIZE, "resize_bilinear_u8": RESIZE, "resize_bilinear_int": RESIZE,
    "resize_nearest": NEAREST, "gather_indices": GATHER_INDICES, "gather_nd": GATHER_ND, "tile": TILE, "fill": FILL,
    "cast": CAST, "select": SELECT, "compare": COMPARE, "minmax": MINMAX,
    # cython_ops.math_ops
    "math_unary_f32": MATH_UNARY, "math_unary_i32": MATH_UNARY, "lut_checked": LUT_CHECKED,
    "math_binary_f32": MATH_BINARY, "math_binary_i32": MATH_BINARY, "math_binary_int8": MATH_BINARY_Q,
    "math_binary_uint8": MATH_BINARY_Q, "log_softmax_f32": NORMALIZE, "log_softmax_int8": NORMALIZE,
    "l2_norm_f32": NORMALIZE, "l2_norm_int8": NORMALIZE, "l2_norm_uint8": NORMALIZE, "batch_matmul_f32": BATCH_MATMUL,
    "batch_matmul_int8": BATCH_MATMUL, "grouped_conv_int8": GROUPED_CONV, "grouped_conv_f32": GROUPED_CONV,
    # cython_ops.space_ops
    "gather_indexed": GATHER_INDEXED, "space_to_batch": BATCH_SPACE, "batch_to_space": BATCH_SPACE,
    # cython_ops.control
    "while": WHILE, "slice_concat": SLICE_CONCAT, "add_int32": BINARY_I32, "sub_int32": BINARY_I32,
    "mul_int32": BINARY_I32, "logical_and": BOOL_BINARY, "logical_or": BOOL_BINARY, "logical_not": BOOL_BINARY,
    # cython_ops.svdf
    "svdf_int8": SVDF, "svdf_f32": SVDF, "svdf_hybrid": SVDF,
}


def layout_of(kernel_name: str) -> Layout:
    """The layout of a kernel named in a cython_ops module's KERNELS."""
    try:
        return KERNEL_LAYOUTS[kernel_name]
    except KeyError:
        raise ValueError(f"no kernel {kernel_name!r} (kernels: {', '.join(sorted(KERNEL_LAYOUTS))})") from None


# ----- speed-elementwise (issue 15 part A): vector table lookups, broadcasting binary ops ----------------------
LUT_F32 = _layout("lut_f32", "em_lut.h", "EM_LUT_F32", ptrs=("input", "output", "table"), ints=("n",))

QUANTIZE_CHECKED = _layout("quantize_checked", "em_elementwise.h", "EM_QUANTIZE_CHECKED", base=QUANTIZE,
                           keep=(ALL, ALL, ALL), ptrs=("status",))

SOFTMAX_LUT = _layout("softmax_lut", "em_activation_steps.h", "EM_SOFTMAX_LUT", ptrs=("input", "output", "table"),
                      ints=("rows", "depth"))

LAYOUTS += (LUT_F32, QUANTIZE_CHECKED, SOFTMAX_LUT)
KERNEL_LAYOUTS.update({
    "softmax_lut_int8": SOFTMAX_LUT,     # cython_ops.activation
    "lut_int8_f32": LUT_F32,      # cython_ops.activation
    "add_int8_avx2": ADD, "mul_int8_avx2": MUL, "quantize_f32_int8_checked": QUANTIZE_CHECKED,  # elementwise
})

# quantized ONNX operators (onnx-quant)
KERNEL_LAYOUTS.update({"onnx_qlinear_mul": QLINEAR_MUL, "onnx_qlinear_avgpool": QLINEAR_POOL})

# ----- TFLite_Detection_PostProcess (cython_ops.detection) ------------------------------------------------------
DETECT = _layout("detection_postprocess", "em_detection.h", "EM_DETECT",
                 ptrs=("boxes", "scores", "anchors", "out_boxes", "out_classes", "out_scores", "out_count", "scratch"),
                 ints=("boxes", "box_stride", "classes_with_background", "num_classes", "max_detections",
                       "max_classes_per_detection", "detections_per_class", "regular", "box_quantized", "box_zp",
                       "score_quantized", "score_zp", "off_decoded", "off_scores", "off_column", "off_heap",
                       "off_selected", "off_class_ranks", "off_detections", "off_decoded_flags",
                       "off_selected_boxes", "selected_capacity"),
                 floats=("box_scale", "score_scale", "y_scale", "x_scale", "h_scale", "w_scale", "score_threshold",
                         "iou_threshold"))
LAYOUTS += (DETECT,)
KERNEL_LAYOUTS.update({"detection_postprocess": DETECT})

# ----- speed-conv: vector kernels for every geometry and ISA (depthwise rows, AVX-VNNI GEMM, threads) ---------------
DW_ROWS = _layout("depthwise_rows", "em_depthwise_simd.h", "EM_DW_ROWS", base=CONV, keep=(ALL, ALL, 0),
                  ptrs=("rq_table", "tap_offsets", "rq_estimate"),
                  ints=("patterns", "segment", "tap_groups", "phase_width", "row_pitch", "band_rows", "band_bytes",
                        "threads", "w_zp", "any_left", "estimate"))
LAYOUTS += (DW_ROWS,)
KERNEL_LAYOUTS.update({
    # cython_ops.conv
    "depthwise_int8_vnni": DW_ROWS, "depthwise_int8_avxvnni": DW_ROWS, "depthwise_int8_avx2": DW_ROWS,
    "conv2d_int8_avxvnni": CONV_VNNI, "fully_connected_int8_avxvnni": FC_PACKED,
})

# ----- ONNX ops without a TFLite twin (issue 19 part B, cython_ops.onnx_float_ops) ------------------------------
ONNX_UNARY = _layout("onnx_unary", "em_onnx_elementwise.h", "EM_ONNX_UNARY", ptrs=_IN_OUT,
                     ints=("n", "kind", "dtype"), floats=("alpha", "beta"))
ONNX_BINARY = _layout("onnx_binary", "em_onnx_elementwise.h", "EM_ONNX_BINARY",
                      ptrs=("input1", "input2", "output", "status"),
                      ints=(("dims", 6), ("strides1", 6), ("strides2", 6), "kind", "dtype", "shapes"))
ONNX_TOPK = _layout("onnx_topk", "em_onnx_index.h", "EM_ONNX_TOPK", ptrs=("input", "values", "indices", "scratch"),
                    ints=("outer", "n", "inner", "k", "largest", "dtype"))
ONNX_CUMSUM = _layout("onnx_cumsum", "em_onnx_index.h", "EM_ONNX_CUMSUM", ptrs=_IN_OUT,
                      ints=("outer", "n", "inner", "exclusive", "reverse", "dtype"))
ONNX_SCATTER = _layout("onnx_scatter", "em_onnx_index.h", "EM_ONNX_SCATTER",
                       ptrs=("data", "updates", "positions", "output"),
                       ints=("elements", "updates", "reduction", "dtype"))
ONNX_REDUCE = _layout("onnx_reduce", "em_onnx_index.h", "EM_ONNX_REDUCE", ptrs=_IN_OUT,
                      ints=(("dims", 6), ("out_strides", 6), "outputs", "is_max"))
ONNX_NORM = _layout("onnx_norm", "em_onnx_norm.h", "EM_ONNX_NORM",
                    ptrs=("input", "scale", "bias", "output", "mean", "inv_std"),
                    ints=("rows", "cols", "row_mod", "row_stride", "col_div", "col_stride", "centered"),
                    floats=("epsilon",))
ONNX_RESIZE = _layout("onnx_resize", "em_onnx_resize.h", "EM_ONNX_RESIZE",
                      ptrs=("input", "output", "indices", "weights", "extrapolated"),
                      ints=("outer", "in", "inner", "out", "taps"), floats=("extrapolation",))
LAYOUTS += (ONNX_UNARY, ONNX_BINARY, ONNX_TOPK, ONNX_CUMSUM, ONNX_SCATTER, ONNX_REDUCE, ONNX_NORM, ONNX_RESIZE)
KERNEL_LAYOUTS.update({
    # cython_ops.onnx_float_ops
    "onnx_unary": ONNX_UNARY, "onnx_binary": ONNX_BINARY, "onnx_topk": ONNX_TOPK, "onnx_cumsum": ONNX_CUMSUM,
    "onnx_scatter": ONNX_SCATTER, "onnx_reduce_minmax_f32": ONNX_REDUCE, "onnx_normalize": ONNX_NORM,
    "onnx_resize_axis": ONNX_RESIZE,
})

# ----- float32 SIMD kernels (issue 21: em_float_gemm.h, em_float_depthwise.h) ------------------------------------
FGEMM = _layout("float_gemm", "em_float_gemm.h", "EM_FGEMM", ptrs=("input", "weights", "bias", "output", "scratch"),
                ints=_GEOMETRY + ("group", "single_row", "chunk", "gather"), floats=("act_min", "act_max"))
FDW = _layout("float_depthwise", "em_float_depthwise.h", "EM_FDW", ptrs=("input", "weights", "bias", "output"),
              ints=_GEOMETRY + ("dm",), floats=("act_min", "act_max"))
HY_PACKED = _layout("hybrid_packed", "em_hybrid.h", "EM_HY_PACKED", base=HY_CONV, keep=(ALL, ALL, ALL),
                    ptrs=("offsets",), ints=("kp", "ocp", "group"))
FBIN = _layout("float_binary", "em_float_elementwise.h", "EM_FBIN", ptrs=("input1", "input2", "output"),
               ints=(("dims", 6), ("strides1", 6), ("strides2", 6)), floats=("act_min", "act_max"))
FACT = _layout("float_activation", "em_float_elementwise.h", "EM_FACT", ptrs=("input", "output"), ints=("n", "kind"),
               floats=("act_min", "act_max", "alpha"))
LAYOUTS += (FGEMM, FDW, HY_PACKED, FBIN, FACT)
KERNEL_LAYOUTS.update({
    # cython_ops.float_ops
    "conv2d_f32_avx512": FGEMM, "conv2d_f32_avx2": FGEMM, "depthwise_f32_avx512": FDW, "depthwise_f32_avx2": FDW,
    "conv2d_hybrid_vnni": HY_PACKED, "conv2d_hybrid_avx2": HY_PACKED,
    **{f"{op}_f32_{isa}": FBIN for op in ("add", "sub", "mul") for isa in ("avx512", "avx2")},
    "clamp_f32_avx512": FACT, "clamp_f32_avx2": FACT,
})

# ----- block-sparse int8 CONV_2D / FULLY_CONNECTED (issue 20: em_sparse.h) ---------------------------------------
SPARSE_CONV = _layout("sparse_conv", "em_sparse.h", "EM_SPARSE", base=CONV, keep=(ALL, ALL, 0),
                      ptrs=("group_start", "block_k"), ints=("kp", "threads", "slice_bytes"))
LAYOUTS += (SPARSE_CONV,)
KERNEL_LAYOUTS.update({
    # cython_ops.sparse
    "conv2d_int8_sparse": SPARSE_CONV, "conv2d_int8_sparse_vnni": SPARSE_CONV, "conv2d_int8_sparse_avx2": SPARSE_CONV,
})
KERNEL_LAYOUTS.update({    # issue 21, fused multiply-add twins (the default float path)
    "conv2d_f32_fma_avx512": FGEMM, "conv2d_f32_fma_avx2": FGEMM,
    "depthwise_f32_fma_avx512": FDW, "depthwise_f32_fma_avx2": FDW,
})
KERNEL_LAYOUTS.update({    # issue 18, AVX2 bodies: FC of one or two rows on int8 weight panels
    "fully_connected_int8_avx2_gemv": FC_PACKED,
    "conv2d_int8_avx2_winograd": CONV_AVX2,     # integer Winograd F(2x2, 3x3) (em_conv_winograd.h)
})

# ----- constant-operand tables (issue 15, s15-ctable): int8 ADD / SUB / MUL as per-position byte tables ---------
LUT_PERIODIC = _layout("lut_periodic", "em_lut.h", "EM_LUT_PERIODIC", ptrs=("input", "output", "table"),
                       ints=("n", "period"))
LAYOUTS += (LUT_PERIODIC,)
KERNEL_LAYOUTS.update({
    "lut_periodic_int8": LUT_PERIODIC,     # cython_ops.activation
})
KERNEL_LAYOUTS.update({    # issue 18 (s6-avx2): HARD_SWISH's int16 arithmetic on AVX2 instead of the 256-entry lookup
    "hard_swish_int8_avx2": HARD_SWISH,
})

# ----- issue 18 (s7-avx2x): tables that are affine maps of the byte, computed on AVX2 instead of looked up ---------
LUT_AFFINE = _layout("lut_affine", "em_lut.h", "EM_LUT_AFFINE", ptrs=("input", "output"),
                     ints=("n", "mult", "add_low", "add_high", "split", "shift", "lo", "hi"))
LAYOUTS += (LUT_AFFINE,)
KERNEL_LAYOUTS.update({
    "lut_affine_int8": LUT_AFFINE,     # cython_ops.activation
})
