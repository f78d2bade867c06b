"""ONNX LSTM, GRU and RNN for the ONNX reader (the RecurrentOps mixin): one IR op ONNX_RNN per node, prepared by
edgeml/runtime/ops/onnx_rnn.py, run by cython_ops/include/em_onnx_rnn.h in float32 or, for some QDQ nodes, in int8
(RecurrentOps says which).
"""
from __future__ import annotations

import math

import numpy as np

from edgeml.ir import RNN_ACTIVATIONS, RNN_DEFAULT_ACTIVATIONS, Quantization, rnn_state_within_one

# the activations reading alpha / beta, and onnxruntime's defaults when the lists run out (rnn_helpers.cc)
USES_ALPHA_BETA = {"affine": (True, True), "leakyrelu": (True, False), "thresholdedrelu": (True, False),
                   "scaledtanh": (True, True), "hardsigmoid": (True, True), "elu": (True, False)}
ALPHA_BETA_DEFAULTS = {"leakyrelu": (0.01, 0.0), "hardsigmoid": (0.2, 0.5), "elu": (1.0, 0.0)}
RNN_SPELLING = {n.lower(): n for n in ("Relu", "Tanh", "Sigmoid", "Affine", "LeakyRelu", "ThresholdedRelu",
                                       "ScaledTanh", "HardSigmoid", "Elu", "Softsign", "Softplus")}
ATTRIBUTES = {"activation_alpha", "activation_beta", "activations", "clip", "direction", "hidden_size", "layout"}
CELL_ATTRIBUTES = {"LSTM": {"input_forget"}, "GRU": {"linear_before_reset"}, "RNN": set()}
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


class RecurrentOps:
    """op_LSTM / op_GRU / op_RNN; uses the host translator's helpers (need, const_of, get_plain, op, ...).

    Supported as onnxruntime supports them: direction forward / reverse / bidirectional, layout 0 and 1, clip,
    input_forget (LSTM), linear_before_reset (GRU, both values), hidden_size, the optional inputs B,
    sequence_lens (a constant, or an int32 graph input read at run time: a length outside 0..seq_length raises
    InputError at invoke), initial_h, initial_c and P (LSTM peepholes), and any subset of the outputs; the
    activations, activation_alpha and activation_beta attributes with all eleven of onnxruntime's functions, per
    direction, read as it reads them (_activations).  W, R, B, P may come from DequantizeLinear of constants (the
    float values onnxruntime computes with); X from a DequantizeLinear runs on its dequantized floats.  The int8
    kernel runs a QDQ node only when its activations keep h within [-1, 1] (edgeml.ir.rnn_state_within_one: e.g. the
    defaults, HardSigmoid, Softsign); other lists run in float on the dequantized values.
    """

    def op_LSTM(self, node, ins, attrs):
        self._recurrent(node, ins, attrs, "LSTM")

    def op_GRU(self, node, ins, attrs):
        self._recurrent(node, ins, attrs, "GRU")

    def op_RNN(self, node, ins, attrs):
        self._recurrent(node, ins, attrs, "RNN")

    def _recurrent(self, node, ins, attrs, cell: str):
        n_inputs = 8 if cell == "LSTM" else 6
        self.need(ins, 3, n_inputs)
        unknown = set(attrs) - ATTRIBUTES - CELL_ATTRIBUTES[cell]
        if unknown:
            self.unsupported(f"{cell} attribute(s) {sorted(unknown)} are not supported")
        direction = attrs.get("direction", "forward")
        if direction not in ("forward", "reverse", "bidirectional"):
            self.bad(f"direction '{direction}' is not forward, reverse or bidirectional")
        n_dir = 2 if direction == "bidirectional" else 1
        names, alphas, betas = self._activations(attrs, cell, n_dir)
        clip = attrs.get("clip")
        if clip is not None:
            clip = float(clip)
            if not (math.isfinite(clip) and clip > 0):
                self.bad(f"clip {clip} must be a positive finite number")
        layout = int(attrs.get("layout", 0))
        if layout not in (0, 1):
            self.bad(f"layout {layout} is not 0 or 1")
        input_forget = int(attrs.get("input_forget", 0))
        lbr = int(attrs.get("linear_before_reset", 0))
        if input_forget not in (0, 1) or lbr not in (0, 1):
            self.bad("input_forget / linear_before_reset must be 0 or 1")

        x = ins[0]
        if x.dq_of is None:
            self.float_input(x)
        if x.rank != 3:
            self.bad(f"X has shape {list(x.shape)}; a 3-D sequence is needed")
        steps, batch = (x.shape[1], x.shape[0]) if layout else (x.shape[0], x.shape[1])
        w = self.float_const(ins[1], "W")
        if w.ndim != 3 or w.shape[0] != n_dir or w.shape[2] != x.shape[2] or w.shape[1] % GATES[cell] \
                or w.shape[1] == 0:
            self.bad(f"W has shape {list(w.shape)}; expected [{n_dir}, {GATES[cell]} * hidden, {x.shape[2]}]")
        hidden = w.shape[1] // GATES[cell]
        if int(attrs.get("hidden_size", hidden)) != hidden:
            self.bad(f"hidden_size {attrs['hidden_size']} does not match W of shape {list(w.shape)}")
        name = node.output[0] or f"{cell.lower()}{self.k}"

        def optional(position: int):
            return ins[position] if len(ins) > position and ins[position] is not None else None

        wq, rq = self._int8_weights(ins[1]), self._int8_weights(ins[2])
        xq = x.dq_of.quant if x.dq_of is not None else None
        if wq is not None and rq is not None and xq is not None and not xq.per_axis \
                and rnn_state_within_one(cell, names, alphas):
            # int8 X, W and R (QDQ): the int8 kernel (edgeml/runtime/ops/onnx_rnn.py describes the scheme)
            xt = self.get_plain(x.dq_of)
            if self.tensors[xt].dtype != np.int8:
                self.unsupported(f"quantized X of type {self.tensors[xt].dtype} (int8 / uint8 supported)")
            if self.tensors[xt].quant is None:
                self.label(xt, xq)
            inputs = [xt, self.const_tensor(name + "/W", wq[0], wq[1]), self.const_tensor(name + "/R", rq[0], rq[1])]
        else:
            inputs = [self._as_float32(self.get_plain(x)), self.const_tensor(name + "/W", w),
                      self.const_tensor(name + "/R", self.float_const(ins[2], "R"))]
        b = optional(3)
        inputs.append(-1 if b is None else self.const_tensor(name + "/B", self.float_const(b, "B")))
        lens = optional(4)
        if lens is None:
            inputs.append(-1)
        elif lens.const is not None:
            if lens.const.dtype.kind not in "iu":
                self.bad(f"sequence_lens has type {lens.const.dtype}")
            inputs.append(self.const_tensor(name + "/sequence_lens", lens.const.astype(np.int64)))
        else:                  # a graph input, read by the kernel at run time
            if lens.dtype != np.int32 or tuple(lens.shape) != (batch,):
                self.bad(f"sequence_lens '{lens.name}' is {lens.dtype} of shape {list(lens.shape)}; int32 of "
                         f"shape [{batch}] is needed")
            inputs.append(self.get_plain(lens))
        for position, what in ((5, "initial_h"), (6, "initial_c")):
            v = optional(position)
            if v is None:
                inputs.append(-1)
            elif v.const is not None:
                inputs.append(self.const_tensor(name + "/" + what, self.float_const(v, what)))
            else:
                if v.dq_of is None:
                    self.float_input(v)
                inputs.append(self._as_float32(self.get_plain(v)))
        p = optional(7)
        inputs.append(-1 if p is None else self.const_tensor(name + "/P", self.float_const(p, "P")))
        while inputs[-1] == -1:
            inputs.pop()

        state = (batch, n_dir, hidden) if layout else (n_dir, batch, hidden)
        shapes = [(batch, steps, n_dir, hidden) if layout else (steps, n_dir, batch, hidden), state, state]
        n_out = 3 if cell == "LSTM" else 2
        if len(node.output) > n_out:
            self.bad(f"{len(node.output)} outputs; {cell} has at most {n_out}")
        outputs = []
        for k in range(n_out):
            out_name = node.output[k] if k < len(node.output) and node.output[k] else f"{name}/unused{k}"
            t = self.tensor(out_name, shapes[k], np.float32)
            outputs.append(t)
            if k < len(node.output) and node.output[k]:
                self.new_value(out_name, shapes[k], np.float32, t, False)
        options = dict(cell=cell, direction=direction, hidden_size=hidden, layout=layout, clip=clip or 0.0,
                       activations=names, activation_alpha=alphas, activation_beta=betas)
        if cell == "LSTM":
            options["input_forget"] = input_forget
        if cell == "GRU":
            options["linear_before_reset"] = lbr
        self.op("ONNX_RNN", inputs, outputs, **options)

    def _activations(self, attrs, cell: str, n_dir: int) -> tuple:
        """(names, alphas, betas), one entry per activation function and direction (f, g[, h] of the forward
        direction, then of the backward one), as onnxruntime reads the attributes.  LSTM / GRU
        (rnn_helpers.cc ActivationFuncs) take names in any case, 3 / 2 per direction; RNN (rnn.h) names spelt
        as ONNX spells them, one per direction (two given for one direction: the first, as the ONNX default
        lists Tanh twice).  activation_alpha / _beta are consumed in order by the functions that read them
        (Affine, ScaledTanh, HardSigmoid both; LeakyRelu, ThresholdedRelu, Elu alpha), a function finding its
        list exhausted takes its default (LeakyRelu 0.01, HardSigmoid 0.2 / 0.5, Elu 1, else 0); this is what
        onnxruntime 1.32 computes for RNN too (checked against it in tests/test_onnx_recurrent.py)."""
        default = RNN_DEFAULT_ACTIVATIONS[cell] * n_dir
        given = attrs.get("activations")
        raw = [a.decode("utf-8", "replace") if isinstance(a, bytes) else str(a) for a in given] \
            if given is not None else None
        alpha_list = [float(np.float32(a)) for a in attrs.get("activation_alpha", [])]
        beta_list = [float(np.float32(b)) for b in attrs.get("activation_beta", [])]
        if cell == "RNN":
            if raw is not None and len(raw) == 2 and n_dir == 1:
                raw = raw[:1]
            if raw is not None and any(RNN_SPELLING.get(n.lower()) != n for n in raw):
                self.unsupported(f"activations {raw}: RNN takes {sorted(RNN_SPELLING.values())} spelt so "
                                 "(as onnxruntime)")
        names = tuple(n.lower() for n in raw) if raw is not None else default
        if len(names) != len(default) or any(n not in RNN_ACTIVATIONS for n in names):
            self.unsupported(f"activations {raw}: {cell} takes {len(default) // n_dir} per direction of Affine, Relu, "
                             "LeakyRelu, ThresholdedRelu, Tanh, ScaledTanh, Sigmoid, HardSigmoid, Elu, Softsign, "
                             "Softplus (as onnxruntime)")
        alphas, betas, ka, kb = [], [], 0, 0
        for n in names:
            uses_alpha, uses_beta = USES_ALPHA_BETA.get(n, (False, False))
            da, db = ALPHA_BETA_DEFAULTS.get(n, (0.0, 0.0))
            alpha, beta = 0.0, 0.0
            if uses_alpha:
                alpha, ka = (alpha_list[ka], ka + 1) if ka < len(alpha_list) else (da, ka)
            if uses_beta:
                beta, kb = (beta_list[kb], kb + 1) if kb < len(beta_list) else (db, kb)
            alphas.append(alpha)
            betas.append(beta)
        return names, alphas, betas

    def _int8_weights(self, v):
        """(int8 data, Quantization along the gate rows) of a DequantizeLinear'd int8 constant W / R with zero
        points 0, per tensor or per row (axis 1); None otherwise (then the op runs on the dequantized floats)."""
        if v is None or v.qconst is None:
            return None
        data, scale, zp, axis = v.qconst
        if data.dtype != np.int8 or data.ndim != 3 or (zp is not None and np.any(zp != 0)):
            return None
        scale = np.asarray(scale, np.float64).reshape(-1)
        if scale.size > 1 and (axis != 1 or scale.size != data.shape[1]):
            return None
        if not np.all(scale > 0):
            return None
        return data, Quantization(scale, np.zeros(scale.size, np.int64), axis=1)
