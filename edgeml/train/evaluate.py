"""The test split on every runtime and file: metrics per output, agreement between runtimes, MACs, parameters,
sizes and the int8 model's latency on edgeml.

Metrics: accuracy for classification outputs; MSE and MAE (in the targets' units) for regression outputs; MSE
against the normalized input for a reconstruction (autoencoder).  Agreement between two runtimes: `top1` (same
class) for classification outputs, `max_abs_diff` (real values) for every output, and for two int8 results
`bit_exact` (fraction of samples whose int8 outputs are identical) and `max_lsb` (largest int8 difference).
"""
from __future__ import annotations

import gzip
import os
import tempfile
from dataclasses import dataclass, field

import numpy as np

from edgeml.bench.measure import BenchOptions, model_facts, run_bench
from edgeml.runtime import Interpreter
from edgeml.train import onnx_recurrent as R, runtimes as RT
from edgeml.train.fit import targets
from edgeml.train.stream import predict

RUNTIME_LABELS = {
    "keras_float": "Keras, float (model_float.h5)",
    "keras_qat": "Keras, quantization-aware (fake-quant) model",
    "litert_float": "LiteRT (XNNPACK), model_float.tflite",
    "edgeml_float": "edgeml, model_float.tflite",
    "litert_int8": "LiteRT (XNNPACK), model_int8.tflite",
    "litert_reference_int8": "LiteRT reference kernels, model_int8.tflite",
    "edgeml_int8": "edgeml, model_int8.tflite",
    "onnxruntime_int8": "onnxruntime, model_int8.onnx",
    "onnxruntime_onnx_float": "onnxruntime, model_float.onnx",
    "edgeml_onnx_int8": "edgeml, model_int8_recurrent.onnx",
}
INT8_RUNTIMES = ("litert_int8", "litert_reference_int8", "edgeml_int8", "onnxruntime_int8", "edgeml_onnx_int8")
PAIRS = (("edgeml_int8", "litert_reference_int8"), ("edgeml_int8", "litert_int8"), ("edgeml_int8", "onnxruntime_int8"),
         ("litert_int8", "onnxruntime_int8"), ("edgeml_float", "litert_float"), ("edgeml_float", "keras_float"),
         ("edgeml_onnx_int8", "onnxruntime_onnx_float"))
LATENCY_RUNS = 200


@dataclass
class Evaluation:
    """Per runtime: real-valued outputs (one array per head), raw outputs, or why it has none."""
    real: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict)
    why: dict = field(default_factory=dict)
    target: np.ndarray | None = None       # a reconstruction's target (the normalized input)


def evaluate(model, heads: list, ds, files: dict, console, recurrent_files: dict | None = None) -> Evaluation:
    """Runs the Keras model and every file on the test split (files: name -> path of model_float.tflite,
    model_int8.tflite, model_int8.onnx when present).  A streamed split (`edgeml.train.stream`) goes through
    every runtime one batch at a time; only the outputs are kept whole."""
    ev = Evaluation()
    keras_out = predict(model, ds)
    ev.real["keras_float"] = ev.raw["keras_float"] = keras_out
    jobs = _jobs(list(getattr(model, "input_names", [])), files, recurrent_files)
    n = ds.size("test")
    bar = console.progress("evaluate", n * len(jobs))
    raws = {name: [] for name, _, _ in jobs}
    try:
        batches = ds.test_batches() if ds.streamed else [ds.inputs("test")]
        for xs in batches:
            xs = xs if isinstance(xs, list) else [xs]
            count = len(xs[0])
            for name, job, io in jobs:
                if name in ev.why:
                    bar.update(count)
                    continue
                bar.update(0, label=name)
                done = bar.done
                try:
                    raws[name].append(job(xs, bar.update))
                except Exception as exc:  # noqa: BLE001 - a runtime refusing the file is a result, not a crash
                    line = (str(exc).strip().splitlines() or [""])[0]
                    ev.why[name] = f"{type(exc).__name__}: {line[:300]}"
                bar.update(count - (bar.done - done))
    finally:
        bar.close()
    matched = set()
    for name, _, io in jobs:
        if name in ev.why or not raws[name]:
            continue
        raw = [np.concatenate([part[k] for part in raws[name]]) for k in range(len(raws[name][0]))]
        try:
            if io is not None and id(io) not in matched:      # the first run on a file: outputs in file order
                io.match_outputs(raw, keras_out)
                matched.add(id(io))
            raw = io.to_keras_order(raw) if io is not None else raw
        except Exception as exc:  # noqa: BLE001 - outputs that match no Keras output are a result too
            ev.why[name] = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:300]}"
            continue
        ev.raw[name] = raw
        ev.real[name] = [io.dequantize(k, y) if io is not None else y.astype(np.float32) for k, y in enumerate(raw)]
    for k, head in enumerate(heads):
        if head.task == "reconstruction":
            ev.target = targets(model, heads, ds.inputs("test"), ds.labels("test"))[k]
    return ev


def _jobs(names: list, files: dict, recurrent_files: dict | None) -> list:
    """(runtime, run(xs, progress) -> raw outputs in file order, FileIO or None) for every file present."""
    float_path, int8_path, onnx_path = (files.get(k) for k in ("model_float.tflite", "model_int8.tflite",
                                                              "model_int8.onnx"))
    jobs = []
    if float_path:
        io_float = RT.FileIO(float_path, names)
        jobs += [("litert_float", lambda xs, p: RT.run_litert(float_path, io_float, xs, progress=p), io_float),
                 ("edgeml_float", lambda xs, p: RT.run_edgeml(float_path, io_float, xs, progress=p), io_float)]
    if int8_path:
        io_int8 = RT.FileIO(int8_path, names)
        jobs += [("litert_int8", lambda xs, p: RT.run_litert(int8_path, io_int8, xs, progress=p), io_int8),
                 ("litert_reference_int8",
                  lambda xs, p: RT.run_litert(int8_path, io_int8, xs, reference=True, progress=p), io_int8),
                 ("edgeml_int8", lambda xs, p: RT.run_edgeml(int8_path, io_int8, xs, progress=p), io_int8)]
        if onnx_path:
            jobs.append(("onnxruntime_int8", lambda xs, p: RT.run_onnxruntime(onnx_path, io_int8, xs, progress=p),
                         io_int8))
    if recurrent_files:
        jobs += [("onnxruntime_onnx_float",
                  lambda xs, p: RT.run_onnx_float_onnxruntime(recurrent_files["float"], xs, progress=p), None),
                 ("edgeml_onnx_int8", lambda xs, p: [R.run_edgeml(recurrent_files["int8"], xs[0])], None)]
    return jobs


def metrics(heads: list, ev: Evaluation, ds) -> dict:
    """{head name: {"task", and "accuracy" or "mse" / "mae", each {runtime: value}}}."""
    result = {}
    labels = ds.labels("test")
    for k, head in enumerate(heads):
        entry = {"task": head.task}
        for runtime, outs in ev.real.items():
            y = outs[k].reshape(len(outs[k]), -1)
            if head.task == "classification":
                entry.setdefault("accuracy", {})[runtime] = float(np.mean(predicted_class(head, y) == labels[k]))
            else:
                want = (ev.target if head.task == "reconstruction" else labels[k]).reshape(len(y), -1)
                err = y - want
                entry.setdefault("mse", {})[runtime] = float(np.mean(err ** 2))
                if head.task == "regression":
                    entry.setdefault("mae", {})[runtime] = float(np.mean(np.abs(err)))
        if head.task != "classification":
            want = ev.target if head.task == "reconstruction" else labels[k]
            entry["target_variance"] = float(np.var(want.reshape(len(want), -1), axis=0).mean())
        result[head.name] = entry
    return result


def predicted_class(head, y: np.ndarray) -> np.ndarray:
    if head.activation == "sigmoid" and y.shape[1] == 1:
        return (y[:, 0] > 0.5).astype(np.int64)
    return np.argmax(y, axis=1)


def agreement(heads: list, ev: Evaluation) -> dict:
    """{"a_vs_b": {"top1", "max_abs_diff", "bit_exact", "max_lsb"}} for the pairs that both ran."""
    result = {}
    for a, b in PAIRS:
        if a not in ev.real or b not in ev.real:
            continue
        entry = {}
        tops = [np.mean(predicted_class(h, ev.real[a][k].reshape(len(ev.real[a][k]), -1))
                        == predicted_class(h, ev.real[b][k].reshape(len(ev.real[b][k]), -1)))
                for k, h in enumerate(heads) if h.task == "classification"]
        if tops:
            entry["top1"] = float(np.mean(tops))
        entry["max_abs_diff"] = float(max(np.max(np.abs(x.reshape(len(x), -1) - y.reshape(len(y), -1)))
                                          for x, y in zip(ev.real[a], ev.real[b])))
        raw_a, raw_b = ev.raw[a], ev.raw[b]
        if all(x.dtype == y.dtype and x.dtype.kind in "iu" for x, y in zip(raw_a, raw_b)):
            same = np.ones(len(raw_a[0]), bool)
            lsb = 0
            for x, y in zip(raw_a, raw_b):
                d = np.abs(x.astype(np.int32) - y.astype(np.int32)).reshape(len(x), -1)
                same &= np.all(d == 0, axis=1)
                lsb = max(lsb, int(d.max()))
            entry["bit_exact"] = float(np.mean(same))
            entry["max_lsb"] = lsb
        result[f"{a}_vs_{b}"] = entry
    return result


def model_costs(path: str) -> dict:
    """Parameters (constant weights and biases), MACs (every op edgeml counts, plus BATCH_MATMUL) and arena
    bytes of a .tflite file, from edgeml's plan."""
    it = Interpreter(path)
    facts = model_facts(it.plan)
    g = it.graph
    extra = 0
    for step in it.plan.steps:
        if step.op.type == "BATCH_MATMUL" and not step.macs:
            a, b = (g.tensors[t].shape for t in step.op.inputs[:2])
            out = g.tensors[step.op.outputs[0]].shape
            k = a[-2] if step.op.options.get("adj_x") else a[-1]
            extra += int(np.prod(out)) * int(k)
    return {"params": facts["params"], "macs": facts["macs"] + extra, "arena_bytes": facts["arena_bytes"]}


def latency(path: str, xs: list, io) -> dict | None:
    """edgeml's batch-1 latency (µs: median, p90, min) on real test samples, one thread."""
    with tempfile.TemporaryDirectory(prefix="edgeml-latency-") as tmp:
        paths = []
        for k, f in enumerate(io.feeds([x[:1] for x in xs])):
            p = os.path.join(tmp, f"x{k}.npy")
            np.save(p, np.ascontiguousarray(f.reshape(io.inputs[k].shape)))
            paths.append(p)
        result = run_bench(BenchOptions(model=path, num_runs=LATENCY_RUNS, warmup_runs=10, min_secs=0.3,
                                        max_secs=3.0, inputs=paths))
    stats = result["latency_us"]
    return {"median_us": stats["median"], "p90_us": stats["p90"], "min_us": stats["min"],
            "runs": result["num_runs"], "arena_bytes": result["arena_bytes"]}


def file_sizes(folder: str) -> tuple[dict, dict]:
    sizes, gz = {}, {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isfile(path) and name.endswith((".tflite", ".onnx", ".h5", ".keras")):
            sizes[name] = os.path.getsize(path)
            with open(path, "rb") as f:
                gz[name] = len(gzip.compress(f.read(), compresslevel=9))
    return sizes, gz
