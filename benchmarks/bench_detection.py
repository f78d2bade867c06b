#!/usr/bin/env python
"""TFLite_Detection_PostProcess on its own: edgeml against LiteRT's kernel (the same custom op under BUILTIN_REF and
the default resolver), on traffic_model.tflite's op cut out as a one-op model (26,880 anchors, score threshold -20,
fast NMS) and on synthetic one-op models (regular NMS, 90 classes).  Inputs: what the whole traffic_model feeds the
op for seeded random images (LiteRT reference kernels, all tensors preserved), and uniform random bytes.

Batch 1, one thread, one process; the runtimes alternate run by run and each run is timed by the thread's CPU time
(time.thread_time_ns: a shared machine's preemptions left out); medians and the ratio edgeml / LiteRT.  Outputs are
checked equal to LiteRT's before timing.

    python benchmarks/bench_detection.py [--runs 41]
    EDGEML_ISA=avx2 python benchmarks/bench_detection.py
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
TRAFFIC = ROOT.parent / "shared" / "models" / "public" / "tflite" / "traffic_model.tflite"


def detection_op_model(path: Path) -> tuple[bytes, list]:
    """The file cut down to its TFLite_Detection_PostProcess (box encodings and scores become the graph inputs), and
    the op's input tensor indices in the whole model."""
    from ai_edge_litert import schema_py_generated as schema
    import flatbuffers
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(bytearray(path.read_bytes()), 0))
    sg = model.subgraphs[0]
    (op,) = [op for op in sg.operators
             if model.operatorCodes[op.opcodeIndex].customCode == b"TFLite_Detection_PostProcess"]
    inputs = list(op.inputs[:2])
    sg.operators = [op]
    sg.inputs, sg.outputs = inputs, list(op.outputs)
    builder = flatbuffers.Builder(1 << 20)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), inputs


def traffic_inputs(tensor_indices: list, count: int) -> list:
    """The op's inputs in the whole model for `count` seeded random images (LiteRT reference kernels)."""
    from ai_edge_litert import interpreter as lite
    it = lite.Interpreter(model_path=str(TRAFFIC), experimental_preserve_all_tensors=True,
                          experimental_op_resolver_type=lite.OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    d = it.get_input_details()[0]
    rng = np.random.default_rng(15)
    sets = []
    for _ in range(count):
        info = np.iinfo(d["dtype"]) if np.issubdtype(d["dtype"], np.integer) else None
        x = (rng.integers(info.min, info.max + 1, d["shape"]) if info else rng.random(d["shape"])).astype(d["dtype"])
        it.set_tensor(d["index"], x)
        it.invoke()
        sets.append([it.get_tensor(i).copy() for i in tensor_indices])
    return sets


def runners(model: bytes):
    import edgeml
    from ai_edge_litert import interpreter as lite
    ours = edgeml.Interpreter(model)
    refs = {}
    for name, kind in (("litert_ref", lite.OpResolverType.BUILTIN_REF), ("litert", lite.OpResolverType.AUTO)):
        r = lite.Interpreter(model_content=model, experimental_op_resolver_type=kind, num_threads=1)
        r.allocate_tensors()
        refs[name] = r

    def run_ours(xs):
        for k, x in enumerate(xs):
            ours.set_input(x, k)
        ours.invoke()
        return [ours.get_output(k) for k in range(4)]

    def make_ref(r):
        def run(xs):
            for d, x in zip(r.get_input_details(), xs):
                r.set_tensor(d["index"], x)
            for d in r.get_output_details():
                r.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
            r.invoke()
            return [r.get_tensor(d["index"]) for d in r.get_output_details()]
        return run, r.invoke
    invokes = {"edgeml": (run_ours, ours.invoke)}
    invokes.update({name: make_ref(r) for name, r in refs.items()})
    return invokes


def bench(name: str, model: bytes, input_sets: list, runs: int):
    invokes = runners(model)
    for k, xs in enumerate(input_sets):
        expected = invokes["litert_ref"][0](xs)
        got = invokes["edgeml"][0](xs)
        for a, b in zip(got, expected):
            assert np.array_equal(a, b, equal_nan=True), f"{name}: input set {k} differs from LiteRT"
    times = {n: [] for n in invokes}
    order = list(invokes)
    for r in range(runs):
        xs = input_sets[r % len(input_sets)]
        for n in (order if r % 2 == 0 else order[::-1]):
            invokes[n][0](xs)                       # inputs set (untimed), then the invoke alone timed
            inv = invokes[n][1]
            t0 = time.thread_time_ns()
            inv()
            times[n].append((time.thread_time_ns() - t0) / 1e3)
    med = {n: statistics.median(t) for n, t in times.items()}
    print(f"| {name} | {med['edgeml']:.0f} | {med['litert_ref']:.0f} | {med['litert']:.0f} | "
          f"{med['edgeml'] / med['litert_ref']:.3f}x |", flush=True)


def synthetic(name, boxes, classes_with_bg, **options):
    from detection_models import DetectionSpec, build, default_options
    spec = DetectionSpec(name, boxes, classes_with_bg, options=default_options(**options))
    return build(spec), [spec.inputs(k) for k in range(4)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=41)
    a = ap.parse_args()
    from edgeml.runtime.kernels import CONFIG
    print(f"edgeml ISA path {CONFIG.isa}; thread CPU time, medians of {a.runs} alternating runs (µs)\n")
    print("| case | edgeml | LiteRT ref | LiteRT default | edgeml / ref |\n|---|---|---|---|---|")
    if TRAFFIC.exists():
        model, indices = detection_op_model(TRAFFIC)
        bench("traffic_model op, its own inputs", model, traffic_inputs(indices, 3), a.runs)
        rng = np.random.default_rng(26880)
        uniform = [[rng.integers(0, 256, (1, 26880, 4)).astype(np.uint8) for _ in range(2)] for _ in range(3)]
        bench("traffic_model op, uniform bytes", model, uniform, a.runs)
    for name, boxes, cb, options in (
            ("fast 1917 x 91, 1 class/box", 1917, 91, dict(num_classes=90, max_detections=100)),
            ("fast 1917 x 91, 3 classes/box", 1917, 91, dict(num_classes=90, max_detections=100,
                                                              max_classes_per_detection=3)),
            ("regular 1917 x 91", 1917, 91, dict(num_classes=90, max_detections=100, use_regular_nms=True,
                                                 detections_per_class=100, nms_score_threshold=0.3)),
            ("regular 5000 x 4, threshold -inf", 5000, 4, dict(num_classes=3, max_detections=40, use_regular_nms=True,
                                                        detections_per_class=40, nms_score_threshold=-1e30))):
        model, sets = synthetic(name, boxes, cb, **options)
        bench(name, model, sets, a.runs)


if __name__ == "__main__":
    main()
