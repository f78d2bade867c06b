"""Float ONNX models quantized by onnxruntime's `quantize_static`, the way users quantize them, for the
quantized-corpus tests: `quant_pre_process` first, then QDQ or QOperator with seeded random calibration data.

A `QuantSpec` names one point of the format grid (format x activation / weight types x per-channel x
reduce_range); `quantized_model` caches the result on disk keyed by this file, the float model's bytes and the
onnxruntime version (quantization is the slow part of these tests)."""
from __future__ import annotations

import hashlib
import importlib.metadata as md
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CALIBRATION_SAMPLES = 8


@dataclass(frozen=True)
class QuantSpec:
    quant_format: str = "QDQ"          # "QDQ" or "QOperator"
    types: str = "U8S8"                # activation type + weight type: S8S8, U8S8, U8U8
    per_channel: bool = False
    reduce_range: bool = False

    @property
    def label(self) -> str:
        return (f"{self.quant_format}-{self.types}-{'pc' if self.per_channel else 'pt'}"
                + ("-rr" if self.reduce_range else ""))


FULL_GRID = tuple(QuantSpec(f, t, pc, rr) for f in ("QDQ", "QOperator") for t in ("S8S8", "U8S8", "U8U8")
                  for pc in (False, True) for rr in (False, True))


def input_shapes(model) -> dict:
    """Graph inputs (not initializers) -> shape with a dynamic batch fixed to 1."""
    inits = {i.name for i in model.graph.initializer}
    shapes = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1 for d in vi.type.tensor_type.shape.dim]
        shapes[vi.name] = tuple(dims)
    return shapes


def calibration_reader(model, seed: int = 0, samples: int = CALIBRATION_SAMPLES, scale: float = 1.0):
    from onnxruntime.quantization import CalibrationDataReader

    shapes = input_shapes(model)

    class SeededReader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(seed)
            self.feeds = iter([{n: (rng.standard_normal(s) * scale).astype(np.float32) for n, s in shapes.items()}
                               for _ in range(samples)])

        def get_next(self):
            return next(self.feeds, None)

    return SeededReader()


def quantize(float_model: bytes, spec: QuantSpec, seed: int = 0, scale: float = 1.0,
             extra_options: dict | None = None) -> bytes:
    """quant_pre_process + quantize_static with `spec`; returns the quantized model's bytes."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    qtype = {"S8": QuantType.QInt8, "U8": QuantType.QUInt8}
    with tempfile.TemporaryDirectory() as d:
        fp, pp, qp = Path(d) / "float.onnx", Path(d) / "pre.onnx", Path(d) / "quant.onnx"
        fp.write_bytes(float_model)
        quant_pre_process(str(fp), str(pp))
        model = onnx.load(str(pp))
        quantize_static(str(pp), str(qp), calibration_reader(model, seed, scale=scale),
                        quant_format=QuantFormat.QDQ if spec.quant_format == "QDQ" else QuantFormat.QOperator,
                        per_channel=spec.per_channel, reduce_range=spec.reduce_range,
                        activation_type=qtype[spec.types[:2]], weight_type=qtype[spec.types[2:]],
                        extra_options=extra_options)
        return qp.read_bytes()


def cache_key(float_model: bytes, spec: QuantSpec, seed: int, scale: float, extra_options) -> str:
    h = hashlib.sha256(Path(__file__).read_bytes())
    h.update(float_model)
    h.update(repr((spec, seed, scale, sorted((extra_options or {}).items()))).encode())
    for dist in ("onnxruntime", "onnx"):
        try:
            h.update(md.version(dist).encode())
        except md.PackageNotFoundError:
            h.update(b"?")
    return h.hexdigest()[:20]


class QuantizedModels:
    """Quantized model bytes: memory, then files in `directory`, then `quantize`."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.memory = {}

    def get(self, name: str, float_model: bytes, spec: QuantSpec, seed: int = 0, scale: float = 1.0,
            extra_options: dict | None = None) -> bytes:
        key = cache_key(float_model, spec, seed, scale, extra_options)
        if key not in self.memory:
            path = self.directory / f"{name}.{spec.label}.{key}.onnx"
            if not path.exists():
                tmp = path.with_suffix(".partial")
                tmp.write_bytes(quantize(float_model, spec, seed, scale, extra_options))
                tmp.replace(path)
            self.memory[key] = path.read_bytes()
        return self.memory[key]
