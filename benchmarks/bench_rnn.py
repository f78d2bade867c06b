#!/usr/bin/env python
"""edgeml against its peers on Keras LSTM models (fused UNIDIRECTIONAL_SEQUENCE_LSTM): batch 1, one thread, one
process, interleaved runs, medians and ratios (the timing loop of bench_mlperf.py).

Models, made here with TensorFlow's converter (cached in --out):
  kws_lstm   28 steps x 40 features -> LSTM(64) -> Dense(12) softmax   (keyword-spotting-like)
  small_lstm 16 steps x 10 features -> LSTM(16, return_sequences) -> LSTM(16) -> Dense(4) softmax
each as full int8 (int8 I/O), dynamic-range "hybrid" (int8 weights, float activations) and float32.  Peers: LiteRT (XNNPACK default resolver, and BUILTIN_REF), TFLite Micro,
and onnxruntime on tf2onnx's conversion of the same Keras model: the float ONNX LSTM for the float row and, for the
int8 row, onnxruntime's int8 form of an LSTM, quantize_dynamic (DynamicQuantizeLSTM, float input; onnxruntime has
no static int8 LSTM).

ONNX recurrent rows (--onnx): onnx_kws_gru (28 x 40 -> GRU(64) -> Dense(12)) and onnx_kws_lstm (same with
LSTM(64)), each as tf2onnx's float ONNX model and its int8 QDQ form from edgeml.optimize.quantize_onnx_rnn, run by
edgeml from the .onnx file.  Peers: onnxruntime on the float ONNX model (float row) and, for the int8 row,
quantize_dynamic's DynamicQuantizeLSTM (LSTM; onnxruntime has no int8 GRU, so it runs the QDQ GRU file, which it
computes in float after dequantizing); LiteRT / TFLite Micro on edgeml.optimize.convert's TFLite files of the
same Keras model (float; int8 - fused LSTM, unrolled GRU, the only int8 GRU route TensorFlow has).  Inputs: the
int8 rows' int8 benchmark input is dequantized (untimed) for the float-input ONNX models.

    python benchmarks/bench_rnn.py [--float] [--onnx] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_mlperf as B  # noqa: E402  (sets the one-thread environment first)

import numpy as np  # noqa: E402

MODELS = {
    "kws_lstm": dict(steps=28, features=40, layers=((64, False),), classes=12, hybrid=True),
    "small_lstm": dict(steps=16, features=10, layers=((16, True), (16, False)), classes=4),
}


def build_models(out: Path, name: str, spec: dict):
    """<name>_int8.tflite, <name>_float.tflite, <name>_float.onnx and <name>_int8.onnx (dynamic) in `out`."""
    wanted = [out / f"{name}_{k}" for k in ("int8.tflite", "float.tflite", "float.onnx", "int8.onnx", "hybrid.tflite",
                                            "hybrid.onnx")]
    if all(p.is_file() for p in wanted):
        return
    import tensorflow as tf
    import tf_keras as keras
    keras.utils.set_random_seed(0)
    layers = [keras.layers.Input((spec["steps"], spec["features"]), batch_size=1, name="x")]
    layers += [keras.layers.LSTM(u, return_sequences=s) for u, s in spec["layers"]]
    layers += [keras.layers.Dense(spec["classes"], activation="softmax")]
    model = keras.Sequential(layers)
    rng = np.random.default_rng(1)
    samples = rng.standard_normal((64, 1, spec["steps"], spec["features"])).astype(np.float32)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    wanted[1].write_bytes(conv.convert())
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([s] for s in samples)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    wanted[0].write_bytes(conv.convert())
    conv = tf.lite.TFLiteConverter.from_keras_model(model)       # dynamic range: int8 weights, float activations
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    wanted[4].write_bytes(conv.convert())
    try:
        import tf2onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
        sig = (tf.TensorSpec((1, spec["steps"], spec["features"]), tf.float32, name="x"),)
        tf2onnx.convert.from_keras(model, input_signature=sig, opset=17, output_path=str(wanted[2]))
        quantize_dynamic(str(wanted[2]), str(wanted[3]), weight_type=QuantType.QInt8)
        wanted[5].write_bytes(wanted[3].read_bytes())      # the hybrid row's peer: the same DynamicQuantizeLSTM
    except Exception as exc:  # onnxruntime is an optional peer
        print(f"  no ONNX models for {name}: {type(exc).__name__}: {exc}")


class DequantizedInput:
    """A runner of a float-input ONNX model, given the int8 benchmark input dequantized (untimed)."""

    def __init__(self, path: Path, in_scale: float, in_zp: int):
        super().__init__(path)
        self.in_scale, self.in_zp = in_scale, in_zp

    def prepare(self, x):
        if x.dtype == np.int8:
            x = ((x.astype(np.float32) - self.in_zp) * self.in_scale).astype(np.float32)
        super().prepare(x)


class ORTFloatInput(DequantizedInput, B.ORT):
    """onnxruntime on a float-input ONNX model."""


ONNX_MODELS = {"onnx_kws_gru": "GRU", "onnx_kws_lstm": "LSTM"}


def build_onnx_models(out: Path, name: str, layer: str):
    """<name>_{float,int8}.tflite, <name>_float.onnx, <name>_int8.onnx (QDQ) and, for LSTM, <name>_ortint8.onnx."""
    wanted = [out / f"{name}_{k}" for k in ("float.tflite", "int8.tflite", "float.onnx", "int8.onnx")]
    if all(p.is_file() for p in wanted):
        return
    import onnx
    import tensorflow as tf
    import tf_keras as keras
    import tf2onnx
    from edgeml.optimize import convert
    from edgeml.optimize.quantize_onnx_rnn import quantize_recurrent
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.layers.Input((28, 40), batch_size=1, name="x"),
                              getattr(keras.layers, layer)(64), keras.layers.Dense(12, activation="softmax")])
    rng = np.random.default_rng(1)
    samples = rng.uniform(-1, 1, (200, 28, 40)).astype(np.float32)
    convert.to_tflite(model, str(wanted[0]), int8=False)
    convert.to_tflite(model, str(wanted[1]), int8=True, representative_x=samples)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=(tf.TensorSpec((1, 28, 40), tf.float32, name="x"),),
                                          opset=17)
    onnx.save(proto, str(wanted[2]))
    onnx.save(quantize_recurrent(proto, [s[None] for s in samples[:64]]), str(wanted[3]))
    if layer == "LSTM":
        from onnxruntime.quantization import QuantType, quantize_dynamic
        quantize_dynamic(str(wanted[2]), str(out / f"{name}_ortint8.onnx"), weight_type=QuantType.QInt8)


class EdgeMLOnnx(DequantizedInput, B.EdgeML):
    """edgeml on a float-input ONNX model."""


def make_onnx_runner(kind: str, tflite: Path, onnx_dir: Path):
    if kind not in ("edgeml", "onnxruntime"):
        return B.make_runner(kind, tflite, onnx_dir)
    base, precision = tflite.stem.rsplit("_", 1)
    from converters import from_tflite
    g = from_tflite(str(tflite))
    q = g.tensors[g.inputs[0]].quant
    scale, zp = q.scalar() if q is not None else (1.0, 0)
    if kind == "edgeml":
        return EdgeMLOnnx(onnx_dir / f"{base}_{precision}.onnx", scale, zp)
    dynamic = onnx_dir / f"{base}_ortint8.onnx"
    path = dynamic if precision == "int8" and dynamic.is_file() else onnx_dir / f"{base}_{precision}.onnx"
    return ORTFloatInput(path, scale, zp)


def make_runner(kind: str, tflite: Path, onnx_dir: Path):
    if kind != "onnxruntime":
        return B.make_runner(kind, tflite, onnx_dir)
    onnx = onnx_dir / (tflite.stem + ".onnx")
    if not onnx.is_file():
        raise FileNotFoundError(f"no {onnx.name}")
    from converters import from_tflite
    g = from_tflite(str(tflite))
    q = g.tensors[g.inputs[0]].quant
    scale, zp = q.scalar() if q is not None else (1.0, 0)
    return ORTFloatInput(onnx, scale, zp)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(Path.home() / ".cache" / "edgeml_bench_rnn"), help="model folder")
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--min-runs", type=int, default=30)
    ap.add_argument("--budget", type=float, default=2.0)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--float", action="store_true", help="also the float32 models")
    ap.add_argument("--onnx-models", action="store_true", dest="onnx_models",
                    help="also the ONNX GRU / LSTM rows (edgeml runs the .onnx files)")
    ap.add_argument("--only-onnx", action="store_true", help="only the ONNX rows")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--profile-runs", type=int, default=50)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    args.models = args.onnx = str(out)
    if not args.only_onnx:
        for name, spec in MODELS.items():
            build_models(out, name, spec)
    onnx_rows = args.onnx_models or args.only_onnx
    if onnx_rows:
        for name, layer in ONNX_MODELS.items():
            build_onnx_models(out, name, layer)
    print(f"# edgeml LSTM benchmark\n\n{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}")
    results = []
    # hybrid: only where the converter quantizes the weights (tensors of 1024+ elements; small_lstm stays float)
    rows = [] if args.only_onnx else [(f"{n}_{k}", make_runner) for n in MODELS
                                      for k in ("int8",) + (("hybrid",) if MODELS[n].get("hybrid") else ())
                                      + (("float",) if args.float else ())]
    if onnx_rows:
        rows += [(f"{n}_{k}", make_onnx_runner) for n in ONNX_MODELS for k in ("int8", "float")]
    for row, make in rows:
        t0 = time.perf_counter()
        r = B.measure(row, args, make=make)
        if make is make_onnx_runner:
            r["vs_litert_ref"] = {}     # another file with other quantization: an agreement figure would mislead
        results.append(r)
        print(f"  {r['model']}: " + ", ".join(f"{k} {B.fmt_us(v)} µs" for k, v in r["median_us"].items())
              + f"  [{time.perf_counter() - t0:.1f} s]", flush=True)
    B.print_table(results)
    print("\nonnxruntime: the int8 and hybrid rows run quantize_dynamic's DynamicQuantizeLSTM (float input, int8 weights), "
          "the float rows the float ONNX LSTM; onnxruntime outputs are float, so they are not compared bit-wise.")
    if onnx_rows:
        print("onnx_* rows: edgeml runs the .onnx files (float, and the QDQ int8 form: int8 weights / input, float "
              "gates) while LiteRT runs the TFLite files of the same Keras model, so outputs are not compared (n/a); "
              "onnxruntime int8: DynamicQuantizeLSTM for the LSTM, the QDQ file (float after DequantizeLinear) for "
              "the GRU. tests/test_onnx_recurrent*.py check these models' accuracy.")
    if args.profile:
        B.print_profiles(results, 8)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
