"""Indexing and tensor-building ops for the ONNX reader: Gather (constant or run-time indices), GatherElements,
GatherND, ScatterND / ScatterElements (constant indices), Split, Tile, Expand, Trilu, TopK, CumSum, ArgMax /
ArgMin, OneHot, EyeLike, Range, ConstantOfShape, Size, and Pad's edge / reflect / wrap modes (AXIS_GATHER).
Run-time indices are checked by the kernels (InputError at invoke); negative run-time indices are wrapped by
element-wise ops first, as ONNX allows them."""
from __future__ import annotations

import numpy as np

from converters.onnx.common import Value

I64 = np.dtype(np.int64)
INDEX_TYPES = (np.dtype(np.int32), np.dtype(np.int64))


class TensorOps:
    """Uses the host translator's helpers (need, typed, op, onnx_binary, ...)."""

    # ----- helpers --------------------------------------------------------------------------------
    def axis_of(self, attrs, rank: int, default: int = 0, name: str = "axis") -> int:
        axis = int(attrs.get(name, default))
        a = axis + rank if axis < 0 else axis
        if not 0 <= a < rank:
            self.bad(f"{name} {axis} outside rank {rank}")
        return a

    def axis_gather(self, name: str, x: Value, tables) -> Value:
        """Output coordinate j of axis k reads input coordinate tables[k][j] (AXIS_GATHER)."""
        t = self.typed(x) if x.quant is None else self.get_plain(x)
        shape = tuple(len(tb) for tb in tables)
        out = self.tensor(name, shape, self.tensors[t].dtype, self.tensors[t].quant)
        self.op("AXIS_GATHER", [t], [out], tables=tuple(tuple(int(i) for i in tb) for tb in tables))
        return self.new_value(name, shape, x.dtype, out, False, x.quant, like=x)

    def index_tensor(self, v: Value, bound: int, name: str) -> int:
        """IR tensor of indices into an axis of `bound` elements, negative ones wrapped (constants at load,
        run-time ones by element-wise ops; the kernel then checks 0..bound-1)."""
        if v.dtype not in INDEX_TYPES:
            self.bad(f"indices '{v.name}' of type {v.dtype} (int32 or int64)")
        if v.const is not None:
            idx = v.const.astype(np.int64)
            if np.any(idx < -bound) or np.any(idx >= bound):
                self.bad(f"indices {idx.reshape(-1)[:8].tolist()}... outside [-{bound}, {bound})")
            return self.const_tensor(name, np.where(idx < 0, idx + bound, idx).astype(v.dtype))
        zero = self.const_value(name + "/zero", np.zeros((), v.dtype))
        size = self.const_value(name + "/size", np.array(bound, v.dtype))
        negative = self.onnx_binary(name + "/negative", v, zero, "LESS")
        shifted = self.onnx_binary(name + "/shifted", v, size, "ADD")
        out = self.tensor(name, v.shape, v.dtype)
        self.op("SELECT_V2", [self.typed(negative), self.typed(shifted), self.typed(v)], [out])
        return out

    def _data(self, x: Value) -> int:
        return self.typed(x) if x.quant is None else self.get_plain(x)

    # ----- gathers --------------------------------------------------------------------------------
    def _axis_gather_inputs(self, node, ins, attrs):
        """The (data, indices, axis) of a Gather-like node, or None when the node folded to a constant."""
        self.check_attrs(attrs, {"axis"})
        self.need(ins, 2, 2)
        if self._fold(node, ins, attrs):
            return None
        x, idx = ins
        return x, idx, self.axis_of(attrs, x.rank)

    def _in_range(self, values: np.ndarray, dim: int, listed: bool) -> np.ndarray:
        """Indices checked against [-dim, dim) at load and made non-negative."""
        if np.any(values < -dim) or np.any(values >= dim):
            shown = f"indices {values.tolist()}" if listed else "indices"
            self.bad(f"{shown} outside [-{dim}, {dim})")
        return np.where(values < 0, values + dim, values)

    def op_Gather(self, node, ins, attrs):
        found = self._axis_gather_inputs(node, ins, attrs)
        if found is None:
            return
        x, idx, axis = found
        dim = x.shape[axis]
        shape = x.shape[:axis] + idx.shape + x.shape[axis + 1:]
        if idx.const is not None and idx.const.ndim <= 1 and idx.const.size:
            flat = self._in_range(idx.const.astype(np.int64).reshape(-1), dim, True)
            tables = [list(range(d)) for d in x.shape]
            tables[axis] = flat.tolist()
            g = self.axis_gather(node.output[0] + ("/1d" if idx.const.ndim == 0 else ""), x, tables)
            if idx.const.ndim == 0:
                self._reshape_to(node.output[0], g, shape, axis != 0)
            return
        t = self._data(x)
        it = self.index_tensor(idx, dim, node.output[0] + "/indices")
        out = self.tensor(node.output[0], shape, self.tensors[t].dtype, self.tensors[t].quant)
        self.op("GATHER", [t, it], [out], axis=axis, batch_dims=0)
        self.new_value(node.output[0], shape, x.dtype, out, False, x.quant, like=x)

    def op_GatherElements(self, node, ins, attrs):
        """Constant indices: a GATHER of the flattened data at the element offsets, computed at load."""
        found = self._axis_gather_inputs(node, ins, attrs)
        if found is None:
            return
        x, idx, axis = found
        if idx.rank != x.rank:
            self.bad(f"indices of rank {idx.rank} for data of rank {x.rank}")
        if any(i > d for k, (i, d) in enumerate(zip(idx.shape, x.shape)) if k != axis):
            self.bad(f"indices {list(idx.shape)} larger than data {list(x.shape)} off the axis")
        values = self._in_range(self.const_of(idx, "the indices input").astype(np.int64), x.shape[axis], False)
        grids = np.indices(idx.shape, dtype=np.int64)
        grids[axis] = values
        offsets = np.ravel_multi_index(tuple(grids), x.shape)
        flat = self._flat(x, node.output[0])
        out = self.tensor(node.output[0], idx.shape, self.tensors[flat].dtype, self.tensors[flat].quant)
        self.op("GATHER", [flat, self.const_tensor(node.output[0] + "/offsets", offsets.astype(np.int32))], [out],
                axis=0, batch_dims=0)
        self.new_value(node.output[0], idx.shape, x.dtype, out, False, x.quant, like=x)

    def _flat(self, x: Value, name: str) -> int:
        t = self._data(x)
        n = int(np.prod(x.shape, dtype=np.int64))
        out = self.tensor(name + "/flat", (n,), self.tensors[t].dtype, self.tensors[t].quant)
        self.op("RESHAPE", [t, self.const_tensor(name + "/flat_shape", np.array([n], np.int32))], [out])
        return out

    def op_GatherND(self, node, ins, attrs):
        self.check_attrs(attrs, {"batch_dims"})
        self.need(ins, 2, 2)
        if self._fold(node, ins, attrs):
            return
        x, idx = ins
        b = int(attrs.get("batch_dims", 0))
        depth = idx.shape[-1] if idx.rank else 0
        if not 0 <= b < min(x.rank, idx.rank) or x.shape[:b] != idx.shape[:b] or not 1 <= depth <= x.rank - b:
            self.bad(f"batch_dims {b} and indices {list(idx.shape)} do not fit data {list(x.shape)}")
        values = self.const_of(idx, "the indices input").astype(np.int64)
        bounds = np.array(x.shape[b:b + depth], np.int64)
        if np.any(values < -bounds) or np.any(values >= bounds):
            self.bad("indices outside the data's dimensions")
        values = np.where(values < 0, values + bounds, values)
        batches = int(np.prod(x.shape[:b], dtype=np.int64))
        per = values.reshape(batches, -1, depth)
        lead = np.repeat(np.arange(batches, dtype=np.int64), per.shape[1]).reshape(batches, per.shape[1], 1)
        full = np.concatenate([lead, per], axis=2) if b else per
        shape = tuple(idx.shape[:-1]) + tuple(x.shape[b + depth:])
        t = self._data(x)
        src = t
        if b:
            merged = (batches,) + tuple(x.shape[b:])
            src = self.tensor(node.output[0] + "/merged", merged, self.tensors[t].dtype, self.tensors[t].quant)
            self.op("RESHAPE", [t, self.const_tensor(node.output[0] + "/merged_shape", np.array(merged, np.int32))],
                    [src])
        tuples = full.reshape(-1, full.shape[-1])
        out = self.tensor(node.output[0], shape, self.tensors[t].dtype, self.tensors[t].quant)
        self.op("GATHER_ND", [src, self.const_tensor(node.output[0] + "/tuples",
                                                     tuples.reshape(tuple(idx.shape[:-1]) + (-1,)).astype(np.int32))],
                [out])
        self.new_value(node.output[0], shape, x.dtype, out, False, x.quant, like=x)

    def _scatter(self, node, x: Value, positions: np.ndarray, updates: Value, reduction: str):
        """Constant target positions (flat offsets into x, one per update element), applied in order."""
        if reduction not in ("none", "add", "mul", "max", "min"):
            self.bad(f"reduction '{reduction}' (none, add, mul, max or min)")
        if x.dtype != updates.dtype:
            self.bad(f"updates of type {updates.dtype} for data of type {x.dtype}")
        out = self.tensor(node.output[0], x.shape, x.dtype)
        self.op("ONNX_SCATTER", [self.typed(x), self.typed(updates)], [out], reduction=reduction,
                positions=tuple(int(p) for p in positions.reshape(-1)))
        self.new_value(node.output[0], x.shape, x.dtype, out, False)

    def op_ScatterND(self, node, ins, attrs):
        self.check_attrs(attrs, {"reduction"})
        self.need(ins, 3, 3)
        if self._fold(node, ins, attrs):
            return
        x, idx, upd = ins
        values = self.const_of(idx, "the indices input").astype(np.int64)
        depth = values.shape[-1]
        if depth > x.rank or tuple(upd.shape) != tuple(values.shape[:-1]) + tuple(x.shape[depth:]):
            self.bad(f"indices {list(values.shape)} and updates {list(upd.shape)} do not fit data {list(x.shape)}")
        bounds = np.array(x.shape[:depth], np.int64)
        if np.any(values < -bounds) or np.any(values >= bounds):
            self.bad("indices outside the data's dimensions")
        values = np.where(values < 0, values + bounds, values).reshape(-1, depth)
        inner = int(np.prod(x.shape[depth:], dtype=np.int64))
        starts = np.ravel_multi_index(tuple(values.T), x.shape[:depth]) * inner
        positions = (starts[:, None] + np.arange(inner, dtype=np.int64)[None, :]).reshape(-1)
        self._scatter(node, x, positions, upd, attrs.get("reduction", "none"))

    def op_ScatterElements(self, node, ins, attrs):
        self.check_attrs(attrs, {"axis", "reduction"})
        self.need(ins, 3, 3)
        if self._fold(node, ins, attrs):
            return
        x, idx, upd = ins
        axis = self.axis_of(attrs, x.rank)
        values = self.const_of(idx, "the indices input").astype(np.int64)
        if values.shape != tuple(upd.shape) or values.ndim != x.rank:
            self.bad(f"indices {list(values.shape)} and updates {list(upd.shape)} do not fit data {list(x.shape)}")
        dim = x.shape[axis]
        if np.any(values < -dim) or np.any(values >= dim):
            self.bad(f"indices outside [-{dim}, {dim})")
        grids = np.indices(values.shape, dtype=np.int64)
        grids[axis] = np.where(values < 0, values + dim, values)
        self._scatter(node, x, np.ravel_multi_index(tuple(grids), x.shape), upd, attrs.get("reduction", "none"))

    # ----- Split, Tile, Expand, Trilu ---------------------------------------------------------------
    def op_Split(self, node, ins, attrs):
        self.check_attrs(attrs, {"axis", "split", "num_outputs"})
        self.need(ins, 1, 2)
        x = ins[0]
        axis = self.axis_of(attrs, x.rank)
        dim = x.shape[axis]
        if len(ins) > 1 and ins[1] is not None:
            sizes = [int(s) for s in self.const_of(ins[1], "the split input").reshape(-1)]
        elif "split" in attrs:
            sizes = [int(s) for s in attrs["split"]]
        else:
            n = int(attrs.get("num_outputs", len(node.output)))
            if n <= 0 or ("num_outputs" in attrs and n != len(node.output)):
                self.bad(f"num_outputs {n} for {len(node.output)} outputs")
            chunk = -(-dim // n)
            sizes = [min(chunk, dim - k * chunk) for k in range(n)]
        if len(sizes) != len(node.output) or sum(sizes) != dim or any(s < 0 for s in sizes):
            self.bad(f"split sizes {sizes} for {len(node.output)} outputs of axis {axis} of size {dim}")
        start = 0
        for name, size in zip(node.output, sizes):
            if name:
                if size == 0:           # an empty piece: only a Concat may read it (see op_Concat)
                    self.const_value(name, np.zeros(tuple(0 if d == axis else n for d, n in enumerate(x.shape)),
                                                    x.dtype))
                    start += size
                    continue
                tables = [list(range(d)) for d in x.shape]
                tables[axis] = list(range(start, start + size))
                if x.const is not None:
                    self.const_value(name, np.take(x.const, tables[axis], axis=axis))
                else:
                    self.axis_gather(name, x, tables)
            start += size

    def op_Tile(self, node, ins, attrs):
        self.check_attrs(attrs, ())
        self.need(ins, 2, 2)
        if self._fold(node, ins, attrs):
            return
        x = ins[0]
        reps = [int(r) for r in self.const_of(ins[1], "the repeats input").reshape(-1)]
        if len(reps) != x.rank or any(r < 0 for r in reps):
            self.bad(f"repeats {reps} for rank {x.rank}")
        if 0 in reps:
            self.unsupported("Tile to an empty tensor (empty tensors are not supported)")
        tables = [list(range(d)) * r for d, r in zip(x.shape, reps)]
        self.axis_gather(node.output[0], x, tables)

    def op_Expand(self, node, ins, attrs):
        self.check_attrs(attrs, ())
        self.need(ins, 2, 2)
        if self._fold(node, ins, attrs):
            return
        x = ins[0]
        want = [int(d) for d in self.const_of(ins[1], "the shape input").reshape(-1)]
        try:
            shape = tuple(np.broadcast_shapes(tuple(x.shape), tuple(want)))
        except ValueError:
            self.bad(f"cannot expand {list(x.shape)} to {want}")
        if 0 in shape:
            self.unsupported("Expand to an empty tensor (empty tensors are not supported)")
        padded = (1,) * (len(shape) - x.rank) + tuple(x.shape)
        src = x if len(shape) == x.rank else self._reshaped(x, padded, node.output[0] + "/ranked")
        tables = [[0] * o if d == 1 else list(range(d)) for d, o in zip(padded, shape)]
        self.axis_gather(node.output[0], src, tables)

    def _reshaped(self, x: Value, shape, name: str) -> Value:
        self._reshape_to(name, x, tuple(shape), False)
        return self.values[name]

    def op_Trilu(self, node, ins, attrs):
        self.check_attrs(attrs, {"upper"})
        self.need(ins, 1, 2)
        if self._fold(node, ins, attrs):
            return
        x = ins[0]
        if x.rank < 2:
            self.bad(f"input of rank {x.rank} (at least 2)")
        k = int(self.const_of(ins[1], "k").reshape(-1)[0]) if len(ins) > 1 and ins[1] is not None else 0
        rows, cols = x.shape[-2:]
        r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        keep = (c - r >= k) if attrs.get("upper", 1) else (c - r <= k)
        mask = self.const_value(node.output[0] + "/mask", keep)
        zeros = self.const_value(node.output[0] + "/zeros", np.zeros((), x.dtype))
        out = self.tensor(node.output[0], x.shape, x.dtype)
        self.op("SELECT_V2", [self.typed(mask), self.typed(x), self.typed(zeros)], [out])
        self.new_value(node.output[0], x.shape, x.dtype, out, False)

    # ----- TopK, CumSum, ArgMax / ArgMin ------------------------------------------------------------
    def op_TopK(self, node, ins, attrs):
        self.check_attrs(attrs, {"axis", "largest", "sorted", "k"})
        x = ins[0]
        axis = self.axis_of(attrs, x.rank, -1)
        if self.opset < 10:
            self.need(ins, 1, 1)
            k = int(attrs.get("k", 0))
        else:
            self.need(ins, 2, 2)
            k = int(self.const_of(ins[1], "K").reshape(-1)[0])
        if not 0 < k <= x.shape[axis]:
            self.unsupported(f"K {k} outside 1..{x.shape[axis]} (an empty output is not supported)")
        if not attrs.get("sorted", 1):
            self.unsupported("sorted=0 (the order onnxruntime leaves unsorted output in is not specified)")
        shape = x.shape[:axis] + (k,) + x.shape[axis + 1:]
        t = self.typed(x)
        if len(node.output) != 2 or not all(node.output):
            self.bad("TopK has two outputs (values, indices)")
        values = self.tensor(node.output[0], shape, x.dtype)
        indices = self.tensor(node.output[1], shape, I64)
        self.op("ONNX_TOPK", [t], [values, indices], axis=axis, k=k, largest=bool(attrs.get("largest", 1)))
        self.new_value(node.output[0], shape, x.dtype, values, False)
        self.new_value(node.output[1], shape, I64, indices, False)

    def op_CumSum(self, node, ins, attrs):
        self.check_attrs(attrs, {"exclusive", "reverse"})
        self.need(ins, 2, 2)
        if self._fold(node, ins, attrs):
            return
        x = ins[0]
        axis = int(self.const_of(ins[1], "the axis input").reshape(-1)[0])
        axis = self.axis_of({"axis": axis}, x.rank)
        out = self.tensor(node.output[0], x.shape, x.dtype)
        self.op("ONNX_CUMSUM", [self.typed(x)], [out], axis=axis, exclusive=bool(attrs.get("exclusive", 0)),
                reverse=bool(attrs.get("reverse", 0)))
        self.new_value(node.output[0], x.shape, x.dtype, out, False)

    def _arg(self, node, ins, attrs, is_max: bool):
        self.check_attrs(attrs, {"axis", "keepdims", "select_last_index"})
        self.need(ins, 1, 1)
        if self._fold(node, ins, attrs):
            return
        x = ins[0]
        axis = self.axis_of(attrs, x.rank)
        keep = bool(attrs.get("keepdims", 1))
        last = bool(attrs.get("select_last_index", 0))
        src = x
        if last:      # the first index of the reversed axis, counted from the end
            tables = [list(range(d)) for d in x.shape]
            tables[axis] = tables[axis][::-1]
            src = self.axis_gather(node.output[0] + "/reversed", x, tables)
        reduced = x.shape[:axis] + x.shape[axis + 1:]
        name = node.output[0] + ("/arg" if keep or last else "")
        out = self.tensor(name, reduced, I64)
        self.op("ARG_MAX" if is_max else "ARG_MIN",
                [self.typed(src), self.const_tensor(name + "/axis", np.array([axis], np.int32))], [out])
        v = self.new_value(name, reduced, I64, out, False)
        if last:
            top = self.const_value(name + "/top", np.array(x.shape[axis] - 1, np.int64))
            v = self.onnx_binary(node.output[0] + ("/last" if keep else ""), top, v, "SUB")
        if keep:
            self._reshape_to(node.output[0], v, x.shape[:axis] + (1,) + x.shape[axis + 1:], axis != 0)

    def op_ArgMax(self, node, ins, attrs):
        self._arg(node, ins, attrs, True)

    def op_ArgMin(self, node, ins, attrs):
        self._arg(node, ins, attrs, False)

    # ----- tensors built from shapes ---------------------------------------------------------------
    def op_Size(self, node, ins, attrs):
        self.check_attrs(attrs, ())
        self.need(ins, 1, 1)
        self.const_value(node.output[0], np.array(int(np.prod(ins[0].shape, dtype=np.int64)), np.int64))

    def op_Range(self, node, ins, attrs):
        self.check_attrs(attrs, ())
        self.need(ins, 3, 3)
        if not self._fold(node, ins, attrs):
            self.unsupported("Range of non-constant inputs (its output size would depend on run-time values)")

    def op_ConstantOfShape(self, node, ins, attrs):
        self.check_attrs(attrs, {"value"})
        self.need(ins, 1, 1)
        if not self._fold(node, ins, attrs):
            self.unsupported("ConstantOfShape of a run-time shape (its output size would depend on run-time values)")

    def op_EyeLike(self, node, ins, attrs):
        """The output depends only on the input's (load-time) shape: a constant."""
        self.check_attrs(attrs, {"dtype", "k"})
        self.need(ins, 1, 1)
        x = ins[0]
        if x.rank != 2:
            self.bad(f"input of rank {x.rank} (2)")
        dtype = x.dtype
        if "dtype" in attrs:
            from converters.onnx.tensors import ONNX_DTYPES
            if attrs["dtype"] not in ONNX_DTYPES:
                self.unsupported(f"dtype {attrs['dtype']}")
            dtype = ONNX_DTYPES[attrs["dtype"]]
        self.const_value(node.output[0], np.eye(x.shape[0], x.shape[1], k=int(attrs.get("k", 0)), dtype=dtype))

    def op_OneHot(self, node, ins, attrs):
        """Where(indices (negative ones wrapped) == range(depth), on, off); an index outside [-depth, depth)
        matches nothing, so its row is all `off`, as the spec says."""
        self.check_attrs(attrs, {"axis"})
        self.need(ins, 3, 3)
        if self._fold(node, ins, attrs):
            return
        idx, depth_v, vals = ins
        depth = int(self.const_of(depth_v, "depth").reshape(-1)[0])
        values = self.const_of(vals, "values").reshape(-1)
        if depth <= 0 or values.size != 2:
            self.bad(f"depth {depth} and values {values.tolist()} (a positive depth and [off, on])")
        rank = idx.rank + 1
        axis = self.axis_of(attrs, rank, -1)
        name = node.output[0]
        idx64 = self.cast_value(idx, I64, name + "/i64") if idx.dtype != I64 else idx    # floats truncate
        zero = self.const_value(name + "/zero", np.zeros((), np.int64))
        size = self.const_value(name + "/depth", np.array(depth, np.int64))
        wrapped = self.onnx_binary(name + "/shifted", idx64, size, "ADD")
        neg = self.onnx_binary(name + "/negative", idx64, zero, "LESS")
        fixed_t = self.tensor(name + "/wrapped", idx.shape, I64)
        self.op("SELECT_V2", [self.typed(neg), self.typed(wrapped), self.typed(idx64)], [fixed_t])
        fixed = self.new_value(name + "/wrapped", idx.shape, I64, fixed_t, False)
        expanded = self._reshaped(fixed, idx.shape[:axis] + (1,) + idx.shape[axis:], name + "/expanded")
        positions = np.arange(depth, dtype=np.int64).reshape((depth,) + (1,) * (rank - 1 - axis))
        hit = self.onnx_binary(name + "/hit", expanded, self.const_value(name + "/positions", positions), "EQUAL")
        shape = idx.shape[:axis] + (depth,) + idx.shape[axis:]
        on = self.const_value(name + "/on", values[1:2].reshape(()))
        off = self.const_value(name + "/off", values[0:1].reshape(()))
        out = self.tensor(name, shape, values.dtype)
        self.op("SELECT_V2", [self.typed(hit), self.typed(on), self.typed(off)], [out])
        self.new_value(name, shape, values.dtype, out, False)

    # ----- Pad modes ----------------------------------------------------------------------------
    def pad_by_gather(self, name: str, x: Value, pairs, mode: str) -> Value:
        """edge / reflect / wrap padding (numpy.pad's index arithmetic on each axis) and cropping by negative pads,
        as one AXIS_GATHER."""
        tables = []
        for d, (lead, trail) in zip(x.shape, pairs):
            coords = np.arange(d, dtype=np.int64)[max(0, -lead):d - max(0, -trail)]
            if coords.size == 0:
                self.unsupported("pads that crop an axis to nothing (empty tensors are not supported)")
            if mode == "reflect" and coords.size == 1 and (lead > 0 or trail > 0):
                self.bad("reflect padding of an axis of size 1")
            tables.append(np.pad(coords, (max(0, lead), max(0, trail)), mode=mode).tolist())
        return self.axis_gather(name, x, tables)
