"""Constants and data movement for the ONNX reader: Constant, Identity, Dropout, Shape, constant folding, Reshape,
Flatten, Squeeze, Unsqueeze, Transpose, ReverseSequence, Concat, Pad, Slice."""
from __future__ import annotations

from typing import Optional

import numpy as np

from converters.onnx.common import TO_NHWC, Renamed, Value, same_q
from converters.onnx.tensors import initializer_array, onnx_package


class ShapeOps:
    """Constants, folding and the shape / data-movement ops; uses the host translator's helpers (need, const_of,
    get_plain, op, ...)."""

    # ----- constants and trivial ops ------------------------------------------------------------
    def op_Constant(self, node, ins, attrs):
        if "value" in attrs:
            self.const_value(node.output[0], initializer_array(node.attribute[0].t, self.desc + " value"))
        elif "value_float" in attrs or "value_floats" in attrs:
            self.const_value(node.output[0], np.array(attrs.get("value_float", attrs.get("value_floats")), np.float32))
        elif "value_int" in attrs or "value_ints" in attrs:
            self.const_value(node.output[0], np.array(attrs.get("value_int", attrs.get("value_ints")), np.int64))
        else:
            self.unsupported(f"Constant with attribute(s) {sorted(attrs)}")

    def _alias(self, node, v: Value):
        self.values[node.output[0]] = v

    def op_Identity(self, node, ins, attrs):
        self.need(ins, 1, 1)
        self._alias(node, ins[0])

    def op_Dropout(self, node, ins, attrs):
        if len(node.output) > 1 and node.output[1]:
            self.unsupported("the Dropout mask output is not supported")
        if len(ins) > 2 and ins[2] is not None:
            mode = self.const_of(ins[2], "training_mode")
            if bool(mode.reshape(-1)[0]):
                self.unsupported("Dropout in training mode is not supported (inference only)")
        self._alias(node, ins[0])

    def op_Shape(self, node, ins, attrs):
        shape = np.array(ins[0].shape, np.int64)
        start, end = attrs.get("start", 0), attrs.get("end", None)
        self.const_value(node.output[0], shape[start:end])

    def _fold(self, node, ins, attrs) -> bool:
        """Constant inputs only: evaluate with onnx's reference implementation at load."""
        if not ins or any(v is not None and v.const is None for v in ins):
            return False
        # (the onnx package's reference evaluator: imported only where a fold needs it)
        onnx = onnx_package(f"{node.op_type} on constant inputs (folded at load by onnx's reference evaluator)")
        from onnx import helper as _helper
        from onnx.reference import ReferenceEvaluator
        feeds, names = {}, []
        for k, v in enumerate(ins):
            nm = f"i{k}" if v is not None else ""
            names.append(nm)
            if v is not None:
                feeds[nm] = v.const
        inputs = [_helper.make_tensor_value_info(n, _helper.np_dtype_to_tensor_dtype(feeds[n].dtype), None)
                  for n in names if n]
        # (the attributes as the onnx package's own messages, whose helpers take only their own classes' values)
        attributes = [onnx.AttributeProto.FromString(a.SerializeToString()) for a in node.attribute]
        n2 = _helper.make_node(node.op_type, names, [f"o{j}" for j in range(len(node.output))],
                               domain=node.domain, **{a.name: _helper.get_attribute_value(a) for a in attributes})
        outs = [_helper.make_tensor_value_info(f"o{j}", onnx.TensorProto.UNDEFINED, None)
                for j in range(len(node.output))]
        g = _helper.make_graph([n2], "fold", inputs, outs)
        mdl = _helper.make_model(g, opset_imports=[_helper.make_opsetid("", self.opset)])
        try:
            res = ReferenceEvaluator(mdl).run(None, feeds)
        except Exception as exc:
            self.bad(f"cannot evaluate on its constant inputs ({type(exc).__name__}: {exc})")
        for name, r in zip(node.output, res):
            if name:
                self.const_value(name, np.asarray(r))
        return True

    # ----- shape ops ----------------------------------------------------------------------------
    def _reshape_to(self, node_out: str, v: Value, shape: tuple, batch_follows: bool):
        if v.const is not None:
            self.const_value(node_out, v.const.reshape(shape))
            return
        if v.dq_of is not None and v.plain is None and v.nhwc is None:
            # reshape the integer value itself; the float view follows lazily
            self._reshape_to(node_out + "/q", v.dq_of, shape, batch_follows)
            dq = Value(name=node_out, shape=tuple(shape), dtype=np.dtype(np.float32),
                       dq_of=self.values[node_out + "/q"])
            self.values[node_out] = dq
            return
        t = self.get_plain(v)
        spec = ([-1] + list(shape[1:])) if batch_follows and len(shape) > 0 else list(shape)
        out = self.like(t, node_out, shape)
        self.op("RESHAPE", [t, self.const_tensor(node_out + "/shape", np.array(spec, np.int32))], [out])
        self.new_value(node_out, shape, v.dtype, out, False, v.quant, like=v)

    def op_Reshape(self, node, ins, attrs):
        self.need(ins, 1, 2)
        x = ins[0]
        if self.opset < 5:
            spec = list(attrs.get("shape", []))
        else:
            spec = [int(d) for d in self.const_of(ins[1], "the shape input").reshape(-1)]
        allowzero = attrs.get("allowzero", 0)
        shape = []
        for d, s in enumerate(spec):
            if s == 0 and not allowzero:
                if d >= x.rank:
                    self.bad(f"shape {spec} copies dimension {d} of a rank-{x.rank} input")
                shape.append(x.shape[d])
            else:
                shape.append(s)
        total = int(np.prod(x.shape, dtype=np.int64))
        if shape.count(-1) > 1:
            self.bad(f"shape {spec} has more than one -1")
        if -1 in shape:
            known = int(np.prod([s for s in shape if s != -1], dtype=np.int64))
            if known == 0 or total % known:
                self.bad(f"cannot reshape {list(x.shape)} to {spec}")
            shape[shape.index(-1)] = total // known
        if any(s < 0 for s in shape) or int(np.prod(shape, dtype=np.int64)) != total:
            self.bad(f"cannot reshape {list(x.shape)} to {spec}")
        batch = bool(spec) and spec[0] in (0, -1) and x.rank > 0 and (spec[0] == -1 or not allowzero)
        self._reshape_to(node.output[0], x, tuple(shape), batch and -1 not in spec[1:])

    def op_Flatten(self, node, ins, attrs):
        self.need(ins, 1, 1)
        x = ins[0]
        axis = attrs.get("axis", 1)
        if axis < 0:
            axis += x.rank
        if not 0 <= axis <= x.rank:
            self.bad(f"axis {attrs.get('axis')} outside rank {x.rank}")
        a = int(np.prod(x.shape[:axis], dtype=np.int64))
        b = int(np.prod(x.shape[axis:], dtype=np.int64))
        self._reshape_to(node.output[0], x, (a, b), axis == 1)

    def _axes_arg(self, ins, attrs, position: int) -> Optional[list]:
        if self.opset >= 13 and len(ins) > position and ins[position] is not None:
            return [int(a) for a in self.const_of(ins[position], "the axes input").reshape(-1)]
        if "axes" in attrs:
            return [int(a) for a in attrs["axes"]]
        return None

    def op_Squeeze(self, node, ins, attrs):
        x = ins[0]
        axes = self._axes_arg(ins, attrs, 1)
        if axes is None:
            axes = [d for d, s in enumerate(x.shape) if s == 1]
        axes = [a + x.rank if a < 0 else a for a in axes]
        if any(not 0 <= a < x.rank or x.shape[a] != 1 for a in axes):
            self.bad(f"cannot squeeze axes {axes} of shape {list(x.shape)}")
        shape = tuple(s for d, s in enumerate(x.shape) if d not in axes)
        self._reshape_to(node.output[0], x, shape, 0 not in axes and x.rank > 0)

    def op_Unsqueeze(self, node, ins, attrs):
        x = ins[0]
        axes = self._axes_arg(ins, attrs, 1)
        if axes is None:
            self.bad("no axes given")
        rank = x.rank + len(axes)
        axes = sorted(a + rank if a < 0 else a for a in axes)
        if any(not 0 <= a < rank for a in axes) or len(set(axes)) != len(axes):
            self.bad(f"axes {axes} invalid for output rank {rank}")
        shape, it = [], iter(x.shape)
        for d in range(rank):
            shape.append(1 if d in axes else next(it))
        self._reshape_to(node.output[0], x, tuple(shape), 0 not in axes and x.rank > 0)

    def op_Transpose(self, node, ins, attrs):
        x = ins[0]
        perm = list(attrs.get("perm", list(range(x.rank))[::-1]))
        if sorted(perm) != list(range(x.rank)):
            self.bad(f"{perm} is not a permutation of {x.rank} axes")
        shape = tuple(x.shape[p] for p in perm)
        if x.const is not None:
            self.const_value(node.output[0], x.const.transpose(perm))
            return
        if x.dq_of is not None and x.plain is None and x.nhwc is None:
            self.op_Transpose(Renamed(node, x.dq_of.name, node.output[0] + "/q"), [x.dq_of], attrs)
            self.values[node.output[0]] = Value(name=node.output[0], shape=shape, dtype=np.dtype(np.float32),
                                                dq_of=self.values[node.output[0] + "/q"])
            return
        t, is_nhwc = self.preferred(x)
        src_axes = list(TO_NHWC) if is_nhwc else list(range(x.rank))     # IR axis i holds ONNX axis src_axes[i]
        where = {a: i for i, a in enumerate(src_axes)}
        as_plain = [where[p] for p in perm]
        candidates = [(as_plain, False)]
        if len(shape) == 4:
            candidates.append(([as_plain[p] for p in TO_NHWC], True))
        identity = [(p, o) for p, o in candidates if p == sorted(p)]
        ir_perm, out_nhwc = identity[0] if identity else candidates[0]
        ir_shape = tuple(shape[p] for p in TO_NHWC) if out_nhwc else shape
        out = self.like(t, node.output[0], ir_shape)
        if ir_perm == sorted(ir_perm):
            self.op("RESHAPE", [t, self.const_tensor(node.output[0] + "/shape",
                                                     np.array([-1] + list(ir_shape[1:]), np.int32))], [out])
        else:
            self.op("TRANSPOSE", [t, self.const_tensor(node.output[0] + "/perm", np.array(ir_perm, np.int32))],
                    [out])
        self.new_value(node.output[0], shape, x.dtype, out, out_nhwc, x.quant, like=x)

    def op_ReverseSequence(self, node, ins, attrs):
        """The first sequence_lens[b] steps of batch row b in reverse order along time_axis, the rest as they are
        (tf2onnx's reversal of a go_backwards recurrent layer's input).  Data movement only: a DequantizeLinear
        output has its integers moved and the float view follows, exactly DQ then ReverseSequence.  Constant
        lengths that all equal the time dimension become a REVERSE_V2 of that axis (any batch size)."""
        self.need(ins, 2, 2)
        x, lens = ins
        batch_axis, time_axis = attrs.get("batch_axis", 1), attrs.get("time_axis", 0)
        if x.rank < 2 or sorted((batch_axis, time_axis)) != [0, 1]:
            self.bad(f"batch_axis {batch_axis} and time_axis {time_axis} must be 0 and 1 (input rank {x.rank})")
        steps = x.shape[time_axis]
        if lens.dtype != np.int64 or lens.shape != (x.shape[batch_axis],):
            self.bad(f"sequence_lens must be int64 of shape [{x.shape[batch_axis]}], not {lens.dtype} "
                     f"{list(lens.shape)}")
        if lens.const is not None and (np.any(lens.const < 0) or np.any(lens.const > steps)):
            self.bad(f"sequence_lens {lens.const.tolist()} outside [0, {steps}]")
        if self._fold(node, ins, attrs):
            return
        if x.dq_of is not None and x.plain is None and x.nhwc is None:
            self.op_ReverseSequence(Renamed(node, x.dq_of.name, node.output[0] + "/q"), [x.dq_of, lens], attrs)
            self.values[node.output[0]] = Value(name=node.output[0], shape=x.shape, dtype=np.dtype(np.float32),
                                                dq_of=self.values[node.output[0] + "/q"])
            return
        t = self.get_plain(x)
        out = self.like(t, node.output[0])
        if lens.const is not None and np.all(lens.const == steps):
            self.op("REVERSE_V2", [t, self.const_tensor(node.output[0] + "/axis", np.array([time_axis], np.int32))],
                    [out])
        else:
            self.op("ONNX_REVERSE_SEQUENCE", [t, self.get_plain(lens)], [out], batch_axis=batch_axis,
                    time_axis=time_axis)
        self.new_value(node.output[0], x.shape, x.dtype, out, False, x.quant, like=x)

    def op_Concat(self, node, ins, attrs):
        if not ins or any(v is None for v in ins):
            self.bad("missing inputs")
        if self._fold(node, ins, attrs):
            return
        rank = ins[0].rank
        axis = attrs.get("axis", None)
        if axis is None:
            self.bad("no axis attribute")
        axis = axis + rank if axis < 0 else axis
        if not 0 <= axis < rank:
            self.bad(f"axis {attrs['axis']} outside rank {rank}")
        for v in ins:
            if v.rank != rank or any(v.shape[d] != ins[0].shape[d] for d in range(rank) if d != axis):
                self.bad(f"shapes {[list(v.shape) for v in ins]} do not concatenate on axis {axis}")
        if any(v.shape[axis] == 0 for v in ins) and any(v.shape[axis] for v in ins):
            ins = [v for v in ins if v.shape[axis]]         # an empty part (e.g. a Split's empty piece) adds nothing
            if len(ins) == 1:
                self.values[node.output[0]] = ins[0]
                return
        q = self._fused_concat(node, ins, axis)
        if q:
            return
        for v in ins:
            self.float_input(v)
        shape = list(ins[0].shape)
        shape[axis] = sum(v.shape[axis] for v in ins)
        use_nhwc = rank == 4 and any(self.preferred_is_nhwc(v) for v in ins)
        ts = [self.get_nhwc(v) if use_nhwc else self.get_plain(v) for v in ins]
        ir_axis = TO_NHWC.index(axis) if use_nhwc else axis
        ir_shape = [shape[p] for p in TO_NHWC] if use_nhwc else shape
        out = self.tensor(node.output[0], ir_shape, np.float32)
        self.op("CONCATENATION", ts, [out], axis=ir_axis, fused_activation_function=0)
        self.new_value(node.output[0], shape, np.float32, out, use_nhwc)

    def _fused_concat(self, node, ins, axis) -> bool:
        """DQ inputs with the output's exact Q parameters: concatenate the integers (exact)."""
        fu = self.fusion(node.output[0], allow_act=False)
        if fu is None or not all(v.dq_of is not None for v in ins):
            return False
        yq = self.q_params(fu.q_node)
        if yq is None or any(not same_q(v.dq_of.quant, yq[0]) for v in ins):
            return False
        rank = ins[0].rank
        use_nhwc = rank == 4 and any(self.preferred_is_nhwc(v.dq_of) for v in ins)
        ts = [self.get_nhwc(v.dq_of) if use_nhwc else self.get_plain(v.dq_of) for v in ins]
        shape = list(ins[0].shape)
        shape[axis] = sum(v.shape[axis] for v in ins)
        ir_shape = [shape[p] for p in TO_NHWC] if use_nhwc else shape
        out = self.tensor(fu.q_node.output[0], ir_shape, np.int8, yq[0])
        self.op("CONCATENATION", ts, [out], axis=TO_NHWC.index(axis) if use_nhwc else axis,
                fused_activation_function=0)
        self.new_value(fu.q_node.output[0], shape, yq[1], out, use_nhwc, yq[0])
        self.finish_fusion(fu)
        return True

    def op_Pad(self, node, ins, attrs):
        x = ins[0]
        mode = attrs.get("mode", "constant")
        if mode not in ("constant", "edge", "reflect", "wrap"):
            self.bad(f"pad mode '{mode}' (constant, edge, reflect or wrap)")
        if self.opset < 11:
            pads = list(attrs.get("pads", []))
            value = float(attrs.get("value", 0.0))
        else:
            pads = [int(p) for p in self.const_of(ins[1], "the pads input").reshape(-1)]
            value = 0.0
            if len(ins) > 2 and ins[2] is not None:
                cv = self.const_of(ins[2], "the constant value")
                value = float(cv.reshape(-1)[0]) if cv.size else 0.0
            if len(ins) > 3 and ins[3] is not None:
                axes = [int(a) for a in self.const_of(ins[3], "the axes input").reshape(-1)]
                full = [0] * (2 * x.rank)
                for j, a in enumerate(axes):
                    a = a + x.rank if a < 0 else a
                    full[a], full[a + x.rank] = pads[j], pads[j + len(axes)]
                pads = full
        if len(pads) != 2 * x.rank:
            self.bad(f"{len(pads)} pads for rank {x.rank}")
        pairs = [(pads[d], pads[d + x.rank]) for d in range(x.rank)]
        if mode != "constant":
            self.pad_by_gather(node.output[0], x, pairs, mode)
            return
        if any(p < 0 for p in pads):           # crop first, then pad what remains
            cropped = all(p <= 0 for p in pads)
            x = self.pad_by_gather(node.output[0] + ("" if cropped else "/cropped"), x,
                                   [(min(a, 0), min(b, 0)) for a, b in pairs], "edge")
            if cropped:
                return
            pairs = [(max(a, 0), max(b, 0)) for a, b in pairs]
            pads = [a for a, _ in pairs] + [b for _, b in pairs]
        shape = tuple(s + a + b for s, (a, b) in zip(x.shape, pairs))
        is_int = x.dq_of is None and x.dtype in (np.int8, np.uint8)
        if not is_int and x.dq_of is None:
            self.float_input(x)
        t, nhwc = self.preferred(x)
        ir_pairs = [pairs[p] for p in TO_NHWC] if nhwc else pairs
        ir_shape = tuple(shape[p] for p in TO_NHWC) if nhwc else shape
        out = self.like(t, node.output[0], ir_shape)
        inputs = [t, self.const_tensor(node.output[0] + "/pads", np.array(ir_pairs, np.int32))]
        if is_int:
            # the constant is given as an integer of the tensor's type; the IR holds uint8 as int8 (x - 128)
            cval = np.array(int(value) - (128 if x.dtype == np.uint8 else 0), np.int8)
            inputs.append(self.const_tensor(node.output[0] + "/value", cval.reshape(())))
            self.op("PADV2", inputs, [out])
        elif value != 0.0:
            inputs.append(self.const_tensor(node.output[0] + "/value", np.array(value, np.float32).reshape(())))
            self.op("PADV2", inputs, [out])
        else:
            self.op("PAD", inputs, [out])
        self.new_value(node.output[0], shape, x.dtype, out, nhwc, x.quant, like=x)

    def op_Slice(self, node, ins, attrs):
        """Slice with constant starts / ends / axes / steps (tf2onnx takes an RNN's last step with it), as a
        STRIDED_SLICE on the ONNX-order tensor with ONNX's clamping done here."""
        x = ins[0]
        if self.opset < 10:
            self.need(ins, 1, 1)
            starts, ends = attrs.get("starts"), attrs.get("ends")
            axes, steps = attrs.get("axes"), None
            if starts is None or ends is None:
                self.bad("Slice needs starts and ends")
        else:
            self.need(ins, 3, 5)
            starts = self.const_of(ins[1], "starts").reshape(-1).tolist()
            ends = self.const_of(ins[2], "ends").reshape(-1).tolist()
            axes = self.const_of(ins[3], "axes").reshape(-1).tolist() if len(ins) > 3 and ins[3] is not None \
                else None
            steps = self.const_of(ins[4], "steps").reshape(-1).tolist() if len(ins) > 4 and ins[4] is not None \
                else None
        rank = x.rank
        axes = list(range(len(starts))) if axes is None else [int(a) + rank if int(a) < 0 else int(a) for a in axes]
        steps = [1] * len(starts) if steps is None else [int(s) for s in steps]
        if not len(starts) == len(ends) == len(axes) == len(steps) or len(set(axes)) != len(axes) \
                or any(not 0 <= a < rank for a in axes) or any(s == 0 for s in steps):
            self.bad(f"starts {starts} / ends {ends} / axes {axes} / steps {steps} do not fit rank {rank}")
        begin, end, stride, shape, end_mask = [0] * rank, list(x.shape), [1] * rank, list(x.shape), 0
        for a, s0, e0, st in zip(axes, starts, ends, steps):
            dim = x.shape[a]
            s0, e0 = int(max(min(s0, 2 ** 62), -2 ** 62)), int(max(min(e0, 2 ** 62), -2 ** 62))
            s0, e0 = s0 + dim if s0 < 0 else s0, e0 + dim if e0 < 0 else e0
            if st > 0:
                s0, e0 = min(max(s0, 0), dim), min(max(e0, 0), dim)
                n = max(0, -(-(e0 - s0) // st))
            else:
                s0, e0 = min(max(s0, 0), dim - 1), min(max(e0, -1), dim - 1)
                n = max(0, -(-(s0 - e0) // -st))
                if e0 < 0:
                    end_mask |= 1 << a                 # through index 0 (STRIDED_SLICE reads -1 as the last)
            begin[a], end[a], stride[a], shape[a] = s0, e0, st, n
        if x.const is not None:         # (an empty constant is fine: shape arithmetic, e.g. a Shape's empty prefix)
            index = tuple(slice(begin[d], None if end_mask >> d & 1 else end[d], stride[d]) for d in range(rank))
            self.const_value(node.output[0], np.ascontiguousarray(x.const[index]))
            return
        if any(d == 0 for d in shape):
            self.unsupported("Slice to an empty tensor (empty tensors are not supported)")
        t = self.get_plain(x)
        out = self.like(t, node.output[0], tuple(shape))
        self.op("STRIDED_SLICE", [t, self.const_tensor(node.output[0] + "/begin", np.array(begin, np.int32)),
                                  self.const_tensor(node.output[0] + "/end", np.array(end, np.int32)),
                                  self.const_tensor(node.output[0] + "/strides", np.array(stride, np.int32))],
                [out], begin_mask=0, end_mask=end_mask, shrink_axis_mask=0, ellipsis_mask=0, new_axis_mask=0)
        self.new_value(node.output[0], tuple(shape), x.dtype, out, False, x.quant, like=x)

    # ----- depth <-> space ----------------------------------------------------------------------
    def op_DepthToSpace(self, node, ins, attrs):
        """The IR's DEPTH_TO_SPACE on the channels-last copy is ONNX's DCR mode; CRD first reorders the channels
        (c * b * b + by * b + bx -> (by * b + bx) * C' + c) with an AXIS_GATHER."""
        self.check_attrs(attrs, {"blocksize", "mode"})
        self.need(ins, 1, 1)
        if self._fold(node, ins, attrs):
            return
        x, b = ins[0], self._block_size(attrs, ins[0])
        mode = attrs.get("mode", "DCR")
        if mode not in ("DCR", "CRD"):
            self.bad(f"mode '{mode}' (DCR or CRD)")
        n, c, h, w = x.shape
        if c % (b * b):
            self.bad(f"{c} channels are not a multiple of blocksize^2 = {b * b}")
        cb = c // (b * b)
        name = node.output[0]
        xt = self.get_nhwc(x)
        if mode == "CRD":
            order = np.arange(c).reshape(cb, b * b).T.reshape(-1)
            xt = self._channel_gather(xt, order, name + "/dcr")
        out = self.like(xt, name, (n, h * b, w * b, cb))
        self.op("DEPTH_TO_SPACE", [xt], [out], block_size=b)
        self.new_value(name, (n, cb, h * b, w * b), x.dtype, out, True, x.quant, like=x)

    def op_SpaceToDepth(self, node, ins, attrs):
        """ONNX's DCR channel order (by * b + bx) * C + c is the IR's SPACE_TO_DEPTH on the channels-last copy;
        CRD (c * b * b + by * b + bx, opset 25) reorders its channels after."""
        self.check_attrs(attrs, {"blocksize", "mode"})
        self.need(ins, 1, 1)
        if self._fold(node, ins, attrs):
            return
        x, b = ins[0], self._block_size(attrs, ins[0])
        n, c, h, w = x.shape
        if h % b or w % b:
            self.bad(f"input {list(x.shape)} is not a multiple of blocksize {b}")
        mode = attrs.get("mode", "DCR")
        if mode not in ("DCR", "CRD"):
            self.bad(f"mode '{mode}' (DCR or CRD)")
        xt = self.get_nhwc(x)
        out = self.like(xt, node.output[0] + ("/dcr" if mode == "CRD" else ""), (n, h // b, w // b, c * b * b))
        self.op("SPACE_TO_DEPTH", [xt], [out], block_size=b)
        if mode == "CRD":
            out = self._channel_gather(out, np.arange(c * b * b).reshape(b * b, c).T.reshape(-1), node.output[0])
        self.new_value(node.output[0], (n, c * b * b, h // b, w // b), x.dtype, out, True, x.quant, like=x)

    def _channel_gather(self, t: int, order, name: str) -> int:
        """Channel k of the result is channel order[k] of NHWC tensor `t`."""
        n, h, w, c = self.tensors[t].shape
        out = self.like(t, name)
        self.op("AXIS_GATHER", [t], [out], tables=(tuple(range(n)), tuple(range(h)), tuple(range(w)),
                                                   tuple(int(i) for i in order)))
        return out

    def _block_size(self, attrs, x: Value) -> int:
        b = attrs.get("blocksize")
        if not isinstance(b, int) or b < 1:
            self.bad(f"blocksize {b} must be a positive integer")
        if x.rank != 4:
            self.bad(f"input of shape {list(x.shape)}; a 4-D NCHW tensor is needed")
        return b
