"""`Interpreter`: load a model once, then set inputs / invoke / read outputs with no per-op Python."""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from converters.tflite import from_tflite
from cython_ops.callpath import CallPath
from edgeml import numerics as Q
from edgeml.errors import EdgeMLError, InputError, ModelFormatError
from edgeml.ir import ROUND_HALF_EVEN, Graph
from edgeml.runtime import collector
from edgeml.runtime.load_profile import stage
from edgeml.runtime.io_kernels import dequantize_engine, quantize_engine
from edgeml.runtime.ops.sparse_gemm import SPARSE_MODES
from edgeml.runtime.compile import DEFAULT_MAX_ARENA_BYTES, DEFAULT_MAX_WEIGHT_BYTES, STATUS_BYTES, bind, compile_graph


def _is_onnx_bytes(buf) -> bool:
    """A serialized ONNX ModelProto starts with a protobuf field tag; a .tflite has 'TFL3' at offset 4."""
    head = bytes(buf[:8])
    return head[4:8] != b"TFL3" and len(head) > 0 and head[0] in (0x08, 0x12, 0x1a, 0x22, 0x3a, 0x42)


def _onnx_reader():
    """converters.onnx.from_onnx, imported on first use: it needs the optional `onnx` package."""
    try:
        from converters.onnx import from_onnx
    except ImportError as exc:
        raise EdgeMLError(f"reading .onnx models needs the 'onnx' package, which is not installed "
                          f"(pip install edgeml[onnx]): {exc}") from None
    return from_onnx


def _load_graph(model) -> Graph:
    if isinstance(model, Graph):
        return model
    if type(model).__name__ == "ModelProto":
        return _onnx_reader()(model)
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if path.lower().endswith(".onnx"):
            if not os.path.exists(path):
                raise ModelFormatError(f"model file '{path}' does not exist")
            return _onnx_reader()(path)
        try:
            return from_tflite(path)
        except ModelFormatError:
            if not os.path.exists(path):    # (asked only on failure: a path lookup costs a cold load ~10 us)
                raise ModelFormatError(f"model file '{path}' does not exist") from None
            raise
    elif isinstance(model, (bytes, bytearray, memoryview)) and _is_onnx_bytes(model):
        try:
            return _onnx_reader()(model)
        except ModelFormatError as exc:
            if not str(exc).startswith(("not a valid ONNX protobuf", "the ONNX model has no graph")):
                raise
            raise ModelFormatError(f"not a TFLite flatbuffer: the 'TFL3' identifier at offset 4 is missing; "
                                   f"read as ONNX instead: {exc}") from exc
    return from_tflite(model)


# run() quantizes float data for inputs of these types (and dequantizes the outputs of these types)
QUANTIZED_IO = (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16))


class Interpreter(CallPath):
    """Runs a .tflite or .onnx model (path, bytes, onnx.ModelProto or Graph) with edgeml's kernels.

    rounding: "double" (TFLite's default MultiplyByQuantizedMultiplier) or "single"
    (TFLITE_SINGLE_ROUNDING builds).
    num_threads: threads a big int8 convolution may split its output pixels over (results are identical for
    any count; small ops always run on one).
    float_exact: float32 convolutions, FULLY_CONNECTED and depthwise convolutions with the reference kernels'
    multiply-then-add in their order (LiteRT BUILTIN_REF's bits) instead of the default fused multiply-adds, which
    stay within |ours - ref| <= 1e-5 * |ref| + 1e-6 * max(1, max |ref|) on every model measured
    (benchmarks/float_agreement.py); models with quantized tensors (hybrid, QDQ) always run the exact kernels.
    max_arena_bytes / max_weight_bytes: budgets for the activations (per input shape) and for the packed copies of
    the weights; a model or a resize beyond them is refused before anything is allocated.
    sparse: "auto" runs an int8 CONV_2D / FULLY_CONNECTED whose weights are mostly zero 16x4 blocks (pruned models)
    on the block-sparse kernels, which skip those blocks (same outputs, bit for bit); "off" keeps the dense
    kernels; "on" takes the sparse kernels wherever they apply, whatever the density.

    One Interpreter may be shared by threads: every call holds its lock, so `run()` (inputs in, outputs out) is
    atomic; a sequence of set_input / invoke / get_output calls from several threads interleaves, so use run(),
    or give each thread its own `clone()` (same packed weights, its own arena) to run in parallel.

    The call path (set_input, invoke, get_output, run: cython_ops/callpath.pyx) builds nothing per call: what it
    checks is prepared once per plan, and a C-contiguous numpy array of an input's dtype and shape is taken in one
    C call (type, dtype, shape and contiguity read from the array, then copied under the lock); anything else goes
    to the checked path, which names the problem (or copies a non-contiguous array).  get_output returns a copy,
    or with copy=False a read-only view of the output buffer (valid until the next invoke).  run() of such arrays
    (one array, a list or a dict by input name) copies in, invokes and copies out in one C call, and for float
    data into a per-tensor int8 model quantizes and dequantizes with the vector kernels (engines bound on first use
    to staging arrays).  run() and get_output() return arrays the caller owns, which nothing later changes: an
    output of up to 64 KiB may be copied into an array returned earlier that nothing refers to any more (not
    even a view or a weak reference), to save the allocation.
    """

    def __init__(self, model, *, rounding: str = "double", num_threads: int = 1,
                 max_arena_bytes: int = DEFAULT_MAX_ARENA_BYTES, max_weight_bytes: int = DEFAULT_MAX_WEIGHT_BYTES,
                 float_exact: bool = False, sparse: str = "auto"):
        if rounding not in Q.ROUNDING_MODES:
            raise EdgeMLError(f"rounding must be one of {sorted(Q.ROUNDING_MODES)}, got {rounding!r}")
        if not _whole(num_threads) or not 1 <= num_threads <= 64:
            raise EdgeMLError(f"num_threads must be an integer from 1 to 64, got {num_threads!r}")
        for name, value in (("max_arena_bytes", max_arena_bytes), ("max_weight_bytes", max_weight_bytes)):
            if not _whole(value) or value <= 0:
                raise EdgeMLError(f"{name} must be a positive integer, got {value!r}")
        if sparse not in SPARSE_MODES:
            raise EdgeMLError(f"sparse must be one of {', '.join(SPARSE_MODES)}, got {sparse!r}")
        self._sparse = sparse
        self._num_threads = int(num_threads)
        self._rounding = Q.ROUNDING_MODES[rounding]
        if not isinstance(float_exact, (bool, np.bool_)):
            raise EdgeMLError(f"float_exact must be True or False, got {float_exact!r}")
        self._budgets = dict(max_arena_bytes=int(max_arena_bytes), max_weight_bytes=int(max_weight_bytes))
        self._float_exact = bool(float_exact)
        with collector.PAUSED:          # (no cycles made; the collector's passes would cost ~9% of a large load)
            with stage("read model"):
                self._graph = _load_graph(model)
            self._input_shapes = {t: tuple(self._graph.tensors[t].shape) for t in self._graph.inputs}
            self._compiled_shapes = None
            self._resized = False
            self._plan = None
            self._compile()

    # ----- building --------------------------------------------------------------------------------
    def _compile(self):
        plan = compile_graph(self._graph, self._input_shapes, self._rounding, self._num_threads,
                             float_exact=self._float_exact, sparse=self._sparse, **self._budgets)
        with stage("interpreter setup"):
            self._adopt(plan)

    def _adopt(self, plan):
        """Makes `plan` (bound to a fresh, zeroed arena) the one this interpreter runs."""
        self._plan = plan
        self._compiled_shapes = dict(self._input_shapes)
        self._in_views = [plan.view(t) for t in self._graph.inputs]
        self._out_views = [plan.view(t) for t in self._graph.outputs]
        self._out_readonly = [_read_only(v) for v in self._out_views]
        # per input: (arena view, value bounds or None): everything set_input checks besides type and shape
        self._in_slots = [(v, plan.input_ranges.get(t)) for v, t in zip(self._in_views, self._graph.inputs)]
        tensors = self._graph.tensors
        self._variable_views = [(tensors[t], plan.view(t)) for t in plan.offsets if tensors[t].is_variable]
        self._inputs_set = [False] * len(self._graph.inputs)
        self._all_set = False
        self._invoked = False
        self._float_io = None        # run()'s float I/O engines: built on the first float run()
        # run()'s float path: one input with no value bounds to check
        self._run_view = self._in_views[0] if len(self._in_slots) == 1 and self._in_slots[0][1] is None else None
        self._single_out = len(self._out_views) == 1
        self._bind_plan()
        self.reset_variables()

    def _bind_plan(self):
        """The C call path (CallPath) for the current plan: inputs with value bounds to check are left to the
        checked path."""
        tensors = self._graph.tensors
        self._bind_calls(self._plan.engine, self._in_views, [bounds is None for _, bounds in self._in_slots],
                         [tensors[t].name for t in self._graph.inputs], self._out_views, self._out_readonly,
                         bool(self._plan.checks))
        if self._float_io is not None and self._float_io.ready:      # (kept with its plan after a failed re-plan)
            self._bind_float_io(self._float_io)

    def _mark_run(self):
        """After the C run()'s first run of every input: the inputs are set (the plan then runs)."""
        self._inputs_set = [True] * len(self._inputs_set)
        self._all_set = True

    def clone(self) -> "Interpreter":
        """Another interpreter of the same model, for another thread: its own arena, inputs, outputs and state,
        the same packed weights and constants (`shared_weight_bytes`), so N threads run one model in parallel
        without N copies of its weights.  A clone that is later resized plans (and packs) for itself."""
        with self._lock:
            self._ensure_compiled()
            twin = Interpreter.__new__(Interpreter)        # (its own lock: CallPath's)
            twin._num_threads, twin._rounding, twin._budgets = self._num_threads, self._rounding, self._budgets
            twin._sparse = self._sparse
            twin._float_exact = self._float_exact
            twin._graph = self._graph
            twin._input_shapes = dict(self._input_shapes)
            twin._resized = False
            twin._adopt(bind(self._plan))
            return twin

    @property
    def shared_weight_bytes(self) -> int:
        """Bytes of packed weights, tables and constants, which clones share."""
        with self._lock:
            self._ensure_compiled()
            return self._plan.weight_bytes

    def reset_variables(self):
        """Sets the state (variable) tensors, e.g. an LSTM's h and c, back to zero: the zero point for int8,
        as LiteRT's reset_all_variables().  They otherwise persist across invokes, as in LiteRT; a re-plan
        (resize_input) also resets them."""
        with self._lock:
            for tensor, view in self._variable_views:
                zp = tensor.quant.scalar()[1] if tensor.dtype == np.int8 and tensor.quant is not None \
                    and not tensor.quant.per_axis else 0
                view.fill(zp)

    def _ensure_compiled(self):
        """Re-plans after resize_input calls; several inputs may be resized before the next use, as in LiteRT."""
        if not self._resized:
            return
        self._resized = False
        wanted = dict(self._input_shapes)
        try:
            self._compile()
        except EdgeMLError as exc:
            self._input_shapes = dict(self._compiled_shapes)
            self._bind_plan()           # the plan kept: its call path again
            shapes = {self._graph.tensors[t].name: list(s) for t, s in wanted.items()}
            raise InputError(f"the model cannot run with input shapes {shapes}: {exc}") from exc

    def resize_input(self, index: int, shape: Sequence[int]):
        """Give input `index` a new shape (usually another batch size); the arena is re-planned on next use."""
        with self._lock:
            t = self._input_tensor(index)
            try:
                dims = tuple(shape)
            except TypeError:
                raise InputError(f"input {index}: a shape is a sequence of whole numbers, got {shape!r}") from None
            for d in dims:
                if not _whole(d):
                    raise InputError(f"input {index}: dimension {d!r} of {list(dims)} is not a whole number")
            dims = tuple(int(d) for d in dims)
            if len(dims) != len(self._graph.tensors[t].shape) or any(d <= 0 for d in dims):
                raise InputError(f"input {index}: cannot resize {list(self._graph.tensors[t].shape)} to {list(dims)}")
            self._input_shapes[t] = dims
            self._resized = self._resized or dims != self._compiled_shapes[t]
            if self._resized:
                self._unbind_calls()        # the checked path until _adopt binds the re-planned one

    # ----- introspection -------------------------------------------------------------------------
    def _details(self, t: int, index: int) -> dict:
        tensor = self._graph.tensors[t]
        q = tensor.quant
        scale, zp = (q.scalar() if q is not None and not q.per_axis else (0.0, 0))
        return {
            "name": tensor.name, "index": index, "tensor_index": t,
            "shape": np.array(self._plan.shapes[t], dtype=np.int32), "dtype": tensor.dtype,
            "scale": float(scale), "zero_point": int(zp),
            "quantization_parameters": {
                "scales": np.zeros(0, np.float32) if q is None else q.scale.astype(np.float32),
                "zero_points": np.zeros(0, np.int32) if q is None else q.zero_point.astype(np.int32),
                "quantized_dimension": 0 if q is None else q.axis,
            },
        }

    def get_input_details(self) -> list:
        with self._lock:
            self._ensure_compiled()
            return [self._details(t, i) for i, t in enumerate(self._graph.inputs)]

    def get_output_details(self) -> list:
        with self._lock:
            self._ensure_compiled()
            return [self._details(t, i) for i, t in enumerate(self._graph.outputs)]

    @property
    def arena_bytes(self) -> int:
        with self._lock:
            self._ensure_compiled()
            return self._plan.arena_bytes

    @property
    def graph(self) -> Graph:
        return self._graph

    @property
    def plan(self):
        with self._lock:
            self._ensure_compiled()
            return self._plan

    # ----- running -------------------------------------------------------------------------------
    def _input_tensor(self, index: int) -> int:
        if not _whole(index) or not 0 <= index < len(self._graph.inputs):
            raise InputError(f"input index {index!r} out of range: the model has {len(self._graph.inputs)} input(s)")
        return self._graph.inputs[index]

    # set_input / invoke / get_output / run are CallPath's (cython_ops/callpath.pyx), which calls the checked
    # paths below for whatever it does not take itself
    def _set_input_slow(self, x, index):
        with self._lock:
            self._set_input_checked(x, index)

    def _set_input_checked(self, x, index: int):
        t = self._input_tensor(index)
        self._ensure_compiled()
        view = self._in_views[index]
        tensor = self._graph.tensors[t]
        if not isinstance(x, np.ndarray):
            raise InputError(f"input {index} ('{tensor.name}'): expected a numpy array, got {type(x).__name__}")
        if x.dtype != view.dtype:
            raise InputError(f"input {index} ('{tensor.name}'): expected dtype {view.dtype}, got {x.dtype}")
        if x.shape != view.shape:
            raise InputError(f"input {index} ('{tensor.name}'): expected shape {list(view.shape)}, "
                             f"got {list(x.shape)}")
        lo, hi, what = self._plan.input_ranges.get(t, (None, None, None))
        if what is not None and x.size and (x.min() < lo or x.max() > hi):
            raise InputError(f"input {index} ('{tensor.name}'): values {x.min()}..{x.max()} outside "
                             f"[{lo}, {hi}] ({what})")
        np.copyto(view, x)
        self._mark_set(index)

    def _mark_set(self, index: int):
        if not self._all_set:
            self._inputs_set[index] = True
            self._all_set = all(self._inputs_set)

    def _check_inputs_set(self):
        for i, done in enumerate(self._inputs_set):
            if not done:
                name = self._graph.tensors[self._graph.inputs[i]].name
                raise InputError(f"input {i} ('{name}') has not been set since the model was (re)planned: "
                                 "call set_input() before invoke()")

    def _invoke_slow(self):
        with self._lock:
            if self._resized:
                self._ensure_compiled()
            if not self._all_set:
                self._check_inputs_set()
            self._invoke_set()

    def invoke_profiled(self) -> list:
        """Runs once; returns [(op index, op type, nanoseconds, MACs)] per step."""
        with self._lock:
            self._ensure_compiled()
            self._check_inputs_set()
            times = self._plan.engine.invoke_profiled()
            self._invoked = True
            self._raise_run_errors()
            return [(s.op.index, s.op.type, int(ns), s.macs) for s, ns in zip(self._plan.steps, times)]

    def _raise_run_errors(self):
        """Input values a kernel found out of range at run time (e.g. ONNX sequence_lens): InputError."""
        for offset, check in self._plan.checks:
            message = check(self._plan.arena[offset:offset + STATUS_BYTES])
            if message:
                raise InputError(message)

    def _get_output_slow(self, index, copy):
        with self._lock:
            if self._resized:
                self._ensure_compiled()
            if not (type(index) is int and 0 <= index < len(self._out_views)):
                if not _whole(index) or not 0 <= index < len(self._out_views):
                    raise InputError(f"output index {index!r} out of range: the model has {len(self._out_views)} "
                                     "output(s)")
                index = int(index)
            if not self._invoked:
                raise InputError(f"output {index} read before invoke(): nothing has been computed since the model "
                                 "was (re)planned")
            return self._out_views[index].copy() if copy else self._out_readonly[index]

    def _run_slow(self, x):
        with self._lock:
            self._ensure_compiled()
            view = self._run_view
            if view is not None and type(x) is np.ndarray and x.shape == view.shape and x.dtype.kind == "f" and \
                    view.dtype != x.dtype and self._float_io_engines().ready:    # float in, float out
                return self._run_float(x)
            return self._run(x)

    def _float_io_engines(self) -> "FloatIO":
        """run()'s float I/O engines for the current plan, built on first use (most callers never pass float
        data; run() holds the lock, and _adopt drops them with the plan they were bound to)."""
        io = self._float_io
        if io is None:
            io = self._float_io = FloatIO(self._graph, self._plan)
            if io.ready:
                self._bind_float_io(io)     # the next float run()s in C
        return io

    def _invoke_set(self):
        """invoke() once its inputs are known to be set and the plan current."""
        plan = self._plan
        plan.engine.invoke()
        self._invoked = True
        if plan.checks:
            self._raise_run_errors()

    def _run_float(self, x):
        """run() of one float array on a per-tensor int8 model: quantized by the QUANTIZE kernel, the int8 outputs
        dequantized by table, as _run computes them.  Values not finite after the float32 cast go to _run, which
        refuses NaN / infinity and saturates float64 values beyond float32's range."""
        io = self._float_io
        if x.dtype == np.float32:
            np.copyto(io.stage_in, x)
        else:
            with np.errstate(over="ignore"):        # beyond float32's range: handled below
                np.copyto(io.stage_in, x, casting="unsafe")
        io.quantize.invoke()
        if io.status[0]:        # NaN / infinity after the float32 cast: the checked path refuses or saturates
            return self._run(x)
        self._run_view[...] = io.stage_q
        self._inputs_set[0] = self._all_set = True
        self._invoke_set()
        io.dequantize.invoke()
        return io.stage_out[0].copy() if self._single_out else [a.copy() for a in io.stage_out]

    def _run(self, x):
        arrays = self._arrange_inputs(x)
        float_in = False
        prepared = []
        for i, a in enumerate(arrays):
            t = self._graph.inputs[i]
            tensor = self._graph.tensors[t]
            a = np.asarray(a)
            if tensor.dtype in QUANTIZED_IO and a.dtype.kind == "f":
                if tensor.quant is None or tensor.quant.per_axis:
                    raise InputError(f"input {i} ('{tensor.name}') has no per-tensor quantization to quantize "
                                     "float data with")
                if not np.all(np.isfinite(a)):
                    raise InputError(f"input {i} ('{tensor.name}'): float values that are not finite (NaN or "
                                     "infinity) have no quantized value")
                s, zp = tensor.quant.scalar()
                if self._graph.input_rounding == ROUND_HALF_EVEN:       # ONNX QuantizeLinear
                    a = Q.quantize_linear_array(a, s, zp, tensor.dtype)
                else:
                    a = Q.quantize_array(a, s, zp, tensor.dtype)
                float_in = True
            elif tensor.dtype == np.float32 and a.dtype.kind == "f" and a.dtype != np.float32:
                a = a.astype(np.float32)
            elif a.dtype != tensor.dtype:
                raise InputError(f"input {i} ('{tensor.name}'): expected dtype {tensor.dtype} (or float), "
                                 f"got {a.dtype}")
            want = self._input_shapes[t]
            if a.shape != want:
                if a.ndim == len(want) and a.shape[1:] == tuple(want[1:]) and a.shape[0] > 0:
                    self.resize_input(i, a.shape)
                else:
                    raise InputError(f"input {i} ('{tensor.name}'): expected shape {list(want)} "
                                     f"(any batch size), got {list(a.shape)}")
            prepared.append(a)
        for i, a in enumerate(prepared):
            self.set_input(a, i)
        self.invoke()
        outs = []
        for i, t in enumerate(self._graph.outputs):
            y = self.get_output(i)
            tensor = self._graph.tensors[t]
            if float_in and tensor.dtype in QUANTIZED_IO and tensor.quant is not None and not tensor.quant.per_axis:
                s, zp = tensor.quant.scalar()
                y = Q.dequantize_array(y, s, zp)
            outs.append(y)
        return outs[0] if len(outs) == 1 else outs

    def _arrange_inputs(self, x) -> list:
        n = len(self._graph.inputs)
        if isinstance(x, dict):
            names = [self._graph.tensors[t].name for t in self._graph.inputs]
            missing = [nm for nm in names if nm not in x]
            if missing:
                raise InputError(f"missing input(s) {missing}; the model's inputs are {names}")
            return [x[nm] for nm in names]
        if isinstance(x, (list, tuple)):
            if len(x) != n:
                raise InputError(f"expected {n} input array(s), got {len(x)}")
            return list(x)
        if n != 1:
            raise InputError(f"the model has {n} inputs: pass a list or a dict of arrays")
        return [x]


def _read_only(view: np.ndarray) -> np.ndarray:
    out = view.view()
    out.flags.writeable = False
    return out


class FloatIO:
    """What run() needs to take float data for a model with one int8 input and int8 / float outputs, all quantized
    per tensor (a .tflite's rounding): staging arrays and two one-step-per-tensor engines bound to the plan's
    arena -- the QUANTIZE kernel (with a non-finite flag) into a staging int8 array, and the DEQUANTIZE table
    lookup of each int8 output (float outputs are copied)."""

    def __init__(self, graph: Graph, plan):
        self.ready = False
        ins = [graph.tensors[t] for t in graph.inputs]
        outs = [graph.tensors[t] for t in graph.outputs]
        if len(ins) != 1 or graph.input_rounding == ROUND_HALF_EVEN or not _per_tensor_int8(ins[0]) or \
                not all(_per_tensor_int8(t) or t.dtype == np.float32 for t in outs):
            return
        shape = plan.shapes[graph.inputs[0]]
        self.stage_in = np.zeros(shape, np.float32)
        self.stage_q = np.zeros(shape, np.int8)
        self.status = np.zeros(4, np.int32)
        s, zp = ins[0].quant.scalar()
        self.quantize = quantize_engine(self.stage_in, self.stage_q, self.status, s, zp)
        views = [plan.view(t) for t in graph.outputs]
        self.stage_out = [np.zeros(v.shape, np.float32) for v in views]
        self.dequantize = dequantize_engine([(v, o, t.quant.scalar() if t.dtype == np.int8 else None)
                                             for v, o, t in zip(views, self.stage_out, outs)])
        self.ready = True


def _per_tensor_int8(t) -> bool:
    return t.dtype == np.int8 and t.quant is not None and not t.quant.per_axis


def _whole(v) -> bool:
    """An integer that is not a bool (numpy integers included)."""
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
