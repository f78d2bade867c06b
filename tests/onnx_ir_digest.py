"""Canonical digests of the IR the ONNX reader produces (tensors, types, shapes, quantization, constant bytes, ops,
options), so that a change to the reader's speed can be checked to leave its output unchanged.

`python -m tests.onnx_ir_digest` rewrites tests/onnx_ir_golden.json from the current reader (do so only when the IR
is meant to change)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
GOLDEN = ROOT / "onnx_ir_golden.json"
SHARED = ROOT.parent.parent / "shared" / "models"


def model_files() -> dict:
    """{key: path} of the repository's .onnx reference models and the shared ones (when present)."""
    found = {}
    for p in sorted((ROOT / "models").rglob("*.onnx")) + sorted((ROOT / "fuzz" / "regressions").rglob("*.onnx")):
        found["repo/" + p.relative_to(ROOT).as_posix()] = p
    for p in sorted(SHARED.rglob("*.onnx")) if SHARED.is_dir() else []:
        found["shared/" + p.relative_to(SHARED).as_posix()] = p
    return found


def canon(obj):
    """A JSON-able, type-preserving form of an IR value (arrays by dtype, shape and a hash of their bytes)."""
    from edgeml.ir import Quantization
    if isinstance(obj, np.ndarray):
        return ["nd", obj.dtype.str, list(obj.shape), hashlib.sha256(np.ascontiguousarray(obj).tobytes()).hexdigest()]
    if isinstance(obj, Quantization):
        return ["q", canon(obj.scale), canon(obj.zero_point), obj.axis]
    if isinstance(obj, dict):
        return ["dict", [[str(k), canon(v)] for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))]]
    if isinstance(obj, (list, tuple)):
        return [type(obj).__name__, [canon(v) for v in obj]]
    if isinstance(obj, np.dtype):
        return ["dtype", obj.str]
    if isinstance(obj, (np.generic, float, int, bool, str)) or obj is None:
        return [type(obj).__name__, repr(obj)]
    return [type(obj).__name__, repr(obj)]


def short(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def ir_digest(path) -> dict:
    """{"error": message} or per-tensor / per-op digests and the graph's own fields."""
    from converters.onnx import from_onnx
    from edgeml.errors import EdgeMLError
    try:
        g = from_onnx(str(path))
    except EdgeMLError as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    tensors = [short(canon([t.index, t.name, t.shape, t.dtype, t.quant, t.data, t.is_variable, t.dynamic_dims]))
               for t in g.tensors]
    ops = [short(canon([o.index, o.type, o.version, o.inputs, o.outputs, o.options, o.intermediates]))
           for o in g.ops]
    graph = short(canon([g.inputs, g.outputs, g.name, g.source, g.input_rounding, sorted(g.subgraphs)]))
    return {"graph": graph, "tensors": tensors, "ops": ops}


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps({k: ir_digest(p) for k, p in model_files().items()}, indent=0, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
