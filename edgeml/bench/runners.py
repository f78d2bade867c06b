"""Runners for `edgeml bench`: edgeml and its peers behind one small interface.

prepare(inputs) sets the inputs (untimed), invoke() is what is timed, outputs() reads the results (untimed).
Peers are imported only when asked for; a peer that is not installed or cannot run the model is reported
as absent with the reason (`PeerAbsent`), never as an error of the benchmark.
"""
from __future__ import annotations

import contextlib
import importlib.util
import inspect
import os
import sys
import tempfile
from dataclasses import dataclass
from typing import Optional

import numpy as np

from converters.tflite import from_tflite
from edgeml.runtime import Interpreter

PEERS = {
    "litert": "LiteRT (XNNPACK)",
    "litert_ref": "LiteRT reference kernels",
    "tflm": "TFLite Micro",
    "onnxruntime": "onnxruntime",
}
PEER_PACKAGES = {"litert": "ai_edge_litert", "litert_ref": "ai_edge_litert", "tflm": "tflite_micro",
                 "onnxruntime": "onnxruntime"}
PEER_PIP = {"ai_edge_litert": "ai-edge-litert", "tflite_micro": "tflite-micro", "onnxruntime": "onnxruntime"}
PEER_FORMAT = {"litert": "tflite", "litert_ref": "tflite", "tflm": "tflite", "onnxruntime": "onnx"}


class PeerAbsent(Exception):
    """A peer that cannot take part; the message says why in one sentence."""


@dataclass
class IOSpec:
    shape: tuple
    dtype: np.dtype
    scale: float = 0.0          # 0: not quantized (or unknown)
    zero_point: int = 0


class EdgeMLRunner:
    name = "edgeml"
    label = "edgeml"

    def __init__(self, path: str, num_threads: int = 1, sparse: str = "auto"):
        self.threads_used = 1
        kwargs = {} if sparse == "auto" else {"sparse": sparse}
        if num_threads != 1 and "num_threads" in inspect.signature(Interpreter).parameters:
            kwargs["num_threads"] = num_threads
            self.threads_used = num_threads
        self.it = Interpreter(path, **kwargs)
        self.path = path
        self.inputs = [_spec(d) for d in self.it.get_input_details()]
        self.output_specs = [_spec(d) for d in self.it.get_output_details()]
        self.invoke = self.it.invoke

    def prepare(self, arrays: list):
        for i, a in enumerate(arrays):
            self.it.set_input(a, i)

    def outputs(self) -> list:
        return [self.it.get_output(i) for i in range(len(self.output_specs))]


def _spec(detail: dict) -> IOSpec:
    q = detail.get("quantization_parameters") or {}
    scales = np.asarray(q.get("scales", []))
    zps = np.asarray(q.get("zero_points", []))
    scale, zp = (float(scales[0]), int(zps[0])) if scales.size == 1 else (0.0, 0)
    return IOSpec(tuple(int(d) for d in detail["shape"]), np.dtype(detail["dtype"]), scale, zp)


class LiteRTRunner:
    def __init__(self, path: str, num_threads: int, reference: bool):
        from ai_edge_litert import interpreter as lit
        self.name = "litert_ref" if reference else "litert"
        self.label = PEERS[self.name]
        kwargs = {"num_threads": num_threads}
        if reference:
            kwargs["experimental_op_resolver_type"] = lit.OpResolverType.BUILTIN_REF
        self.it = lit.Interpreter(model_path=path, **kwargs)
        self.it.allocate_tensors()
        self.path = path
        self.threads_used = 1 if reference else num_threads
        ins, outs = self.it.get_input_details(), self.it.get_output_details()
        self._in_index = [d["index"] for d in ins]
        self._out_index = [d["index"] for d in outs]
        self.inputs = [_spec(d) for d in ins]
        self.output_specs = [_spec(d) for d in outs]
        self.invoke = self.it.invoke

    def prepare(self, arrays: list):
        for idx, a in zip(self._in_index, arrays):
            self.it.set_tensor(idx, a)

    def outputs(self) -> list:
        return [self.it.get_tensor(i).copy() for i in self._out_index]


class TFLMRunner:
    name = "tflm"
    label = PEERS["tflm"]
    threads_used = 1

    def __init__(self, path: str):
        from tflite_micro.python.tflite_micro import runtime
        graph = from_tflite(path)       # TFLite Micro's Python API has no input/output count
        self.it = runtime.Interpreter.from_file(path)
        self.path = path
        self.inputs = [_spec(self.it.get_input_details(i)) for i in range(len(graph.inputs))]
        self.output_specs = [_spec(self.it.get_output_details(i)) for i in range(len(graph.outputs))]
        self.invoke = self.it.invoke

    def prepare(self, arrays: list):
        for i, a in enumerate(arrays):
            self.it.set_input(a, i)

    def outputs(self) -> list:
        return [np.array(self.it.get_output(i)).copy() for i in range(len(self.output_specs))]


_ORT_TYPES = {"tensor(int8)": np.int8, "tensor(uint8)": np.uint8, "tensor(float)": np.float32,
              "tensor(int16)": np.int16, "tensor(int32)": np.int32, "tensor(int64)": np.int64,
              "tensor(double)": np.float64}


class ORTRunner:
    name = "onnxruntime"
    label = PEERS["onnxruntime"]

    def __init__(self, path: str, num_threads: int, like: list):
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = num_threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        self.sess = ort.InferenceSession(path, sess_options=so, providers=["CPUExecutionProvider"])
        self.path = path
        self.threads_used = num_threads
        ins, outs = self.sess.get_inputs(), self.sess.get_outputs()
        self._in_names = [i.name for i in ins]
        self._out_names = [o.name for o in outs]
        self.inputs = []
        for k, i in enumerate(ins):
            if i.type not in _ORT_TYPES:
                raise PeerAbsent(f"its input '{i.name}' has type {i.type}, which the benchmark does not feed")
            ref = like[k].shape if k < len(like) else ()
            # symbolic (batch) dimensions take edgeml's size
            shape = tuple(d if isinstance(d, int) and d > 0 else (ref[j] if j < len(ref) else 1)
                          for j, d in enumerate(i.shape))
            self.inputs.append(IOSpec(shape, np.dtype(_ORT_TYPES[i.type])))
        self.output_specs = [IOSpec((), np.dtype(_ORT_TYPES.get(o.type, np.float32))) for o in outs]
        self.binding = self.sess.io_binding()
        for n in self._out_names:
            self.binding.bind_output(n, "cpu")
        self._kept = []

    def prepare(self, arrays: list):
        self._kept = [np.ascontiguousarray(a) for a in arrays]     # kept alive: the binding points at them
        for n, a in zip(self._in_names, self._kept):
            self.binding.bind_cpu_input(n, a)

    def invoke(self):
        self.sess.run_with_iobinding(self.binding)

    def outputs(self) -> list:
        return list(self.binding.copy_outputs_to_cpu())


def installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


def _sibling(model: str, ext: str) -> Optional[str]:
    stem, _ = os.path.splitext(model)
    for cand in (stem + ext, stem + ext.upper()):
        if os.path.isfile(cand):
            return cand
    return None


def peer_model(name: str, model: str, tflite: Optional[str], onnx: Optional[str]) -> str:
    """The file a peer runs: the model itself when formats match, else --tflite/--onnx or a sibling file."""
    want = PEER_FORMAT[name]
    model_format = "onnx" if model.lower().endswith(".onnx") else "tflite"
    if want == model_format:
        return model
    explicit = tflite if want == "tflite" else onnx
    if explicit:
        return explicit
    found = _sibling(model, "." + want)
    if found is None:
        stem = os.path.basename(os.path.splitext(model)[0])
        raise PeerAbsent(f"it needs a .{want} model: pass --{want} FILE or put {stem}.{want} beside the model")
    return found


def make_peer(name: str, model: str, num_threads: int, tflite: Optional[str], onnx: Optional[str], like: list):
    package = PEER_PACKAGES[name]
    if not installed(package):
        raise PeerAbsent(f"not installed (pip install {PEER_PIP[package]})")
    path = peer_model(name, model, tflite, onnx)
    if not os.path.isfile(path):
        raise PeerAbsent(f"model file '{path}' does not exist")
    log = []
    try:
        with quiet_stderr(log):
            if name in ("litert", "litert_ref"):
                return LiteRTRunner(path, num_threads, reference=name == "litert_ref")
            if name == "tflm":
                return TFLMRunner(path)
            return ORTRunner(path, num_threads, like)
    except PeerAbsent:
        raise
    except Exception as exc:  # the peer's own loader rejected the model: reported, not fatal
        said = [ln.strip() for ln in log if ln.strip() and not ln.startswith("INFO")]
        why = f" (its log: {said[0][:160]})" if said else ""
        raise PeerAbsent(f"it could not load '{os.path.basename(path)}': {one_line(exc)}{why}") from exc


@contextlib.contextmanager
def quiet_stderr(captured: Optional[list] = None):
    """Keeps the native log lines peers print while loading (e.g. LiteRT's 'Created ... XNNPACK delegate') off
    the terminal; they are appended to `captured` so a failure can say what the peer logged."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as log:
        try:
            os.dup2(log.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if captured is not None:
                log.seek(0)
                captured.extend(log.read().decode("utf-8", "replace").splitlines())


def one_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip().splitlines()
    msg = text[0] if text else type(exc).__name__
    return msg[:limit]


# ----------------------------------------------------------------------------------------------------
# Feeding a peer the same inputs and comparing its outputs with edgeml's
# ----------------------------------------------------------------------------------------------------

def _dequantize(a: np.ndarray, spec: IOSpec) -> np.ndarray:
    return (a.astype(np.float64) - spec.zero_point) * spec.scale


def adapt_inputs(arrays: list, ours: list, theirs: list) -> tuple[list, Optional[str]]:
    """edgeml's input arrays in the form a peer takes: same values, the peer's shape and dtype.

    Returns (arrays, note); note says when the values had to be (de)quantized.  Raises PeerAbsent when the
    peer's inputs do not correspond to edgeml's."""
    if len(theirs) != len(ours):
        raise PeerAbsent(f"it has {len(theirs)} input(s), edgeml's model has {len(ours)}")
    out, note = [], None
    for k, (a, mine, peer) in enumerate(zip(arrays, ours, theirs)):
        if tuple(peer.shape) != a.shape:
            squeezed = tuple(d for d in peer.shape if d != 1) == tuple(d for d in a.shape if d != 1)
            if not squeezed:
                raise PeerAbsent(f"its input {k} has shape {list(peer.shape)}, edgeml's has {list(a.shape)}")
            a = a.reshape(peer.shape)
        if peer.dtype != a.dtype:
            if a.dtype.kind in "iu" and mine.scale and peer.dtype.kind == "f":
                a = _dequantize(a, mine).astype(peer.dtype)
                note = "inputs dequantized for it"
            elif a.dtype.kind == "f" and peer.dtype.kind in "iu" and peer.scale:
                info = np.iinfo(peer.dtype)
                q = np.round(a.astype(np.float64) / peer.scale) + peer.zero_point
                a = np.clip(q, info.min, info.max).astype(peer.dtype)
                note = "inputs quantized for it"
            else:
                raise PeerAbsent(f"its input {k} has type {peer.dtype}, edgeml's has {a.dtype}")
        out.append(np.ascontiguousarray(a))
    return out, note


def agreement(ours: list, our_specs: list, theirs: list, their_specs: list) -> dict:
    """bit_exact and max_abs_diff of a peer's outputs against edgeml's, over all outputs.

    Same dtype: compared as stored (int8 differences are in quantization steps).  Different dtypes: both sides
    dequantized to real values with their own scale and zero point, and `compared` says so."""
    if len(ours) != len(theirs):
        return {"bit_exact": False, "max_abs_diff": None,
                "compared": f"{len(theirs)} outputs vs edgeml's {len(ours)}"}
    exact, worst, how = True, 0.0, "as stored"
    for a, sa, b, sb in zip(ours, our_specs, theirs, their_specs):
        b = np.asarray(b)
        if b.shape != a.shape:
            if b.size != a.size:
                return {"bit_exact": False, "max_abs_diff": None,
                        "compared": f"output shape {list(b.shape)} vs edgeml's {list(a.shape)}"}
            b = b.reshape(a.shape)
        if a.dtype == b.dtype:
            exact = exact and bool(np.array_equal(a, b))
            x, y = a.astype(np.float64), b.astype(np.float64)
        else:
            exact = False
            how = "dequantized to real values (the output types differ)"
            x = _dequantize(a, sa) if a.dtype.kind in "iu" and sa.scale else a.astype(np.float64)
            y = _dequantize(b, sb) if b.dtype.kind in "iu" and sb.scale else b.astype(np.float64)
        if x.size:
            worst = max(worst, float(np.max(np.abs(x - y))))
    return {"bit_exact": exact, "max_abs_diff": worst, "compared": how}
