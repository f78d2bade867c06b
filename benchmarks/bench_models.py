#!/usr/bin/env python
"""edgeml against LiteRT + XNNPACK on every int8 / uint8 .tflite model at hand, and against onnxruntime on the .onnx
ones: batch 1, one thread, one process, the runtimes alternating run by run (as bench_mlperf.py), medians.

Models: ../shared/models/mlperf_tiny and ../shared/models/public/tflite (every int8 / uint8 file that edgeml loads),
../shared/models/mlperf_tiny_onnx and ../shared/models/public/onnx, plus synthetic models for the model classes the
corpus lacks (issue 15's table), built at run time with TensorFlow's converter from Keras layers with random
weights and cached in --cache (never committed):

  ssd_mnv3_like       MobileNetV3-style backbone: HARD_SWISH, squeeze-excite MUL, 5x5 depthwise, residual ADD
  kws_dw1ch_m8        keyword model whose first op is a 1-input-channel DEPTHWISE_CONV_2D, depth multiplier 8
  audio_resnet_bcast  audio mini-ResNet with broadcasting ADD / MUL (per channel, per frame, per frequency)
  mnv2_nchw_pads      MobileNetV2-224 taking NCHW input (TRANSPOSE) with explicit ZeroPadding2D (PAD) layers

For each model it prints edgeml's and the peer's median invoke, their ratio (and the ratio of the fastest runs,
which a loaded machine's preemptions do not reach), the load times (edgeml's Interpreter()
vs LiteRT's Interpreter() + allocate_tensors(), or onnxruntime's InferenceSession()), and edgeml's slowest ops with
their GMAC/s (ops with multiply-accumulates) or GB/s (bytes read + written, for data movement and element-wise
ops); ops below 20 GMAC/s or 4 GB/s are flagged.

    python benchmarks/bench_models.py                        # everything, markdown to stdout
    EDGEML_ISA=avx2 python benchmarks/bench_models.py        # edgeml's AVX2 path (the peers keep theirs)
    python benchmarks/bench_models.py --only kws ssd --json out.json
    python benchmarks/bench_models.py --load-only --loads 9   # load times only, the runtimes alternating
    python benchmarks/bench_models.py --load-only --load-profile   # + where edgeml's load time goes, per stage

With --load-only each model is loaded --loads times per runtime, edgeml and the peer alternating load by load;
the table gives the median load (edgeml's Interpreter() against LiteRT's Interpreter() + allocate_tensors() or
onnxruntime's InferenceSession()) and the median of load + first invoke (so that work moved from load into the
first invoke would show).  --load-profile adds edgeml's stages (edgeml/runtime/load_profile.py): reading the file
into the IR, each op type's prepare, and inside the prepares the weight packing, requantization and 256-entry
tables, then the arena plan and the engine binding (medians over the loads, ms).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
             "TF_NUM_INTEROP_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "models"
MAC_FLOOR, BYTES_FLOOR = 20.0, 4.0            # GMAC/s, GB/s: ops below are flagged
INVOKE_CLOCK = time.perf_counter_ns           # --cpu-time: time.thread_time_ns (a shared machine's preemptions left out)
LOAD_CLOCK = time.perf_counter                # --cpu-time: time.thread_time (loads and --load-profile stages too)


# ----- synthetic models ---------------------------------------------------------------------------------------

def _hard_swish(k, tf, x):
    return k.layers.Lambda(lambda t: t * tf.nn.relu6(t + 3.0) * (1.0 / 6.0))(x)


def _ssd_mnv3_like(k, tf):
    x = inp = k.Input((192, 192, 3), batch_size=1)
    x = _hard_swish(k, tf, k.layers.Conv2D(16, 3, strides=2, padding="same")(x))
    for expand, out, kernel, stride, se in ((64, 24, 3, 2, False), (72, 24, 3, 1, False), (96, 40, 5, 2, True),
                                            (240, 40, 5, 1, True), (120, 48, 5, 1, True), (288, 96, 5, 2, True),
                                            (576, 96, 5, 1, True)):
        y = _hard_swish(k, tf, k.layers.Conv2D(expand, 1)(x))
        y = _hard_swish(k, tf, k.layers.DepthwiseConv2D(kernel, strides=stride, padding="same")(y))
        if se:
            s = k.layers.GlobalAveragePooling2D(keepdims=True)(y)
            s = k.layers.Conv2D(expand // 4, 1, activation="relu")(s)
            s = k.layers.Lambda(lambda t: tf.nn.relu6(t + 3.0) * (1.0 / 6.0))(k.layers.Conv2D(expand, 1)(s))
            y = k.layers.Multiply()([y, s])
        y = k.layers.Conv2D(out, 1)(y)
        x = k.layers.Add()([x, y]) if stride == 1 and x.shape[-1] == out else y
    x = _hard_swish(k, tf, k.layers.Conv2D(576, 1)(x))
    boxes = k.layers.Conv2D(24, 3, padding="same")(x)
    classes = k.layers.Conv2D(6 * 21, 3, padding="same")(x)
    return k.Model(inp, [boxes, classes])


def _kws_dw1ch_m8(k, tf):
    x = inp = k.Input((49, 10, 1), batch_size=1)
    x = k.layers.DepthwiseConv2D((10, 4), strides=(2, 2), depth_multiplier=8, padding="same", activation="relu")(x)
    for _ in range(3):
        x = k.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
        x = k.layers.Conv2D(64, 1, activation="relu")(x)
    x = k.layers.GlobalAveragePooling2D()(x)
    return k.Model(inp, k.layers.Dense(12)(x))


def _audio_resnet_bcast(k, tf):
    x = inp = k.Input((64, 50, 1), batch_size=1)
    x = k.layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    for c in (32, 64):
        y = k.layers.Conv2D(c, 3, padding="same", activation="relu")(x)
        y = k.layers.Conv2D(c, 3, padding="same")(y)
        frame = k.layers.Lambda(lambda t: tf.reduce_mean(t, axis=[2, 3], keepdims=True))(y)       # [1, T, 1, 1]
        band = k.layers.Lambda(lambda t: tf.reduce_mean(t, axis=1, keepdims=True))(y)             # [1, 1, F, C]
        gate = k.layers.Activation("sigmoid")(k.layers.Lambda(lambda t: tf.reduce_mean(t, axis=2, keepdims=True))(y))
        y = k.layers.Lambda(lambda t: t[0] * t[1])([y, gate])                                     # per frame & ch
        y = k.layers.Lambda(lambda t: t[0] + t[1])([y, band])                                     # per frequency
        y = k.layers.Lambda(lambda t: t[0] - t[1])([y, frame])                                    # per frame
        if x.shape[-1] != c:
            x = k.layers.Conv2D(c, 1)(x)
        x = k.layers.ReLU()(k.layers.Add()([x, y]))
        x = k.layers.MaxPooling2D(2)(x)
    x = k.layers.GlobalAveragePooling2D()(x)
    return k.Model(inp, k.layers.Dense(10)(x))


def _mnv2_nchw_pads(k, tf):
    inp = k.Input((3, 224, 224), batch_size=1)
    x = k.layers.Permute((2, 3, 1))(inp)
    base = k.applications.MobileNetV2(input_shape=(224, 224, 3), alpha=1.0, weights=None, include_top=True)
    return k.Model(inp, base(x))


SYNTHETIC = {"ssd_mnv3_like": _ssd_mnv3_like, "kws_dw1ch_m8": _kws_dw1ch_m8,
             "audio_resnet_bcast": _audio_resnet_bcast, "mnv2_nchw_pads": _mnv2_nchw_pads}


def synthetic_model(name: str, cache: Path) -> Path:
    """The int8 .tflite of a synthetic model, converted once into `cache`."""
    path = cache / f"{name}.tflite"
    if path.is_file():
        return path
    import tensorflow as tf
    import tf_keras as keras
    keras.utils.set_random_seed(1)
    model = SYNTHETIC[name](keras, tf)
    model = keras.Model(model.inputs, model.outputs)
    rng = np.random.default_rng(0)
    for layer in model.layers:       # random non-zero biases and batch-norm statistics
        w = layer.get_weights()
        if w:
            layer.set_weights([v if v.ndim > 1 else (v + 0.1 * rng.standard_normal(v.shape)).astype(v.dtype)
                               if "moving_variance" not in getattr(layer, "name", "") else v for v in w])
    shapes = [tuple(t.shape) for t in model.inputs]

    def representative():
        for _ in range(16):
            yield [rng.standard_normal(s).astype(np.float32) for s in shapes]
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial")
    tmp.write_bytes(conv.convert())
    tmp.replace(path)
    return path


# ----- runners ------------------------------------------------------------------------------------------------

class EdgeML:
    def __init__(self, path: Path):
        import edgeml
        t0 = LOAD_CLOCK()
        self.it = edgeml.Interpreter(str(path))
        self.load_ms = (LOAD_CLOCK() - t0) * 1e3
        self.invoke = self.it.invoke

    def prepare(self, xs):
        for i, x in enumerate(xs):
            self.it.set_input(x, i)

    def output(self):
        return self.it.get_output(0)


class LiteRT:
    def __init__(self, path: Path):
        from ai_edge_litert import interpreter as lit
        t0 = LOAD_CLOCK()
        self.it = lit.Interpreter(model_path=str(path), num_threads=1)
        self.it.allocate_tensors()
        self.load_ms = (LOAD_CLOCK() - t0) * 1e3
        self.ins = [d["index"] for d in self.it.get_input_details()]
        self.out = self.it.get_output_details()[0]["index"]
        self.invoke = self.it.invoke

    def prepare(self, xs):
        for i, x in zip(self.ins, xs):
            self.it.set_tensor(i, x)

    def output(self):
        return self.it.get_tensor(self.out).copy()


class ORT:
    def __init__(self, path: Path):
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        t0 = LOAD_CLOCK()
        self.sess = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
        self.load_ms = (LOAD_CLOCK() - t0) * 1e3
        self.names = [i.name for i in self.sess.get_inputs()]
        self.binding = self.sess.io_binding()
        self.binding.bind_output(self.sess.get_outputs()[0].name, "cpu")
        self.xs = None

    def prepare(self, xs):
        self.xs = [np.ascontiguousarray(x) for x in xs]
        for name, x in zip(self.names, self.xs):
            self.binding.bind_cpu_input(name, x)

    def invoke(self):
        self.sess.run_with_iobinding(self.binding)

    def output(self):
        return self.binding.copy_outputs_to_cpu()[0]


def inputs_for(runner, seed: int) -> list:
    """Seeded inputs over each input's range, in the peer's input order and types (edgeml's are the same)."""
    rng = np.random.default_rng(seed)
    xs = []
    if isinstance(runner, ORT):
        details = [(tuple(d if isinstance(d, int) else 1 for d in i.shape), i.type) for i in runner.sess.get_inputs()]
        types = {"tensor(float)": np.float32, "tensor(int8)": np.int8, "tensor(uint8)": np.uint8,
                 "tensor(int64)": np.int64, "tensor(int32)": np.int32}
        details = [(s, np.dtype(types.get(t, np.float32))) for s, t in details]
    else:
        details = [(tuple(d["shape"]), np.dtype(d["dtype"])) for d in runner.it.get_input_details()]
    for shape, dtype in details:
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            lo, hi = (info.min, info.max) if dtype.itemsize == 1 else (0, 10)
            xs.append(rng.integers(lo, hi + 1, size=shape, dtype=np.int64).astype(dtype))
        else:
            xs.append(rng.uniform(-1.0, 1.0, size=shape).astype(dtype))
    return xs


# ----- measuring ----------------------------------------------------------------------------------------------

def is_quantized_tflite(path: Path) -> bool:
    from converters import from_tflite
    g = from_tflite(str(path))
    # int8 / uint8 activations (weight-only "hybrid" models with float activations are not int8 models)
    return any(t.dtype in (np.int8, np.uint8) and t.data is None and t.quant is not None for t in g.tensors)


def is_quantized_onnx(path: Path) -> bool:
    """An ONNX model with quantized activations: QuantizeLinear / QLinear* / integer-input nodes."""
    import onnx
    m = onnx.load(str(path), load_external_data=False)
    return any(n.op_type in ("QuantizeLinear", "DynamicQuantizeLinear") or n.op_type.startswith("QLinear")
               or n.op_type in ("ConvInteger", "MatMulInteger") for n in m.graph.node)


def interleaved(runners: dict, args) -> dict:
    est = {k: [] for k in runners}
    for _ in range(args.warmup):
        for k, r in runners.items():
            t0 = INVOKE_CLOCK()
            r.invoke()
            est[k].append(INVOKE_CLOCK() - t0)
    runs = {k: int(max(args.min_runs, min(args.runs, args.budget * 1e9 / max(statistics.median(v), 1.0))))
            for k, v in est.items()}
    n_rounds = max(runs.values())
    times = {k: [] for k in runners}
    order = list(runners)
    for rnd in range(n_rounds):
        for k in (order if rnd % 2 == 0 else order[::-1]):
            if (rnd + 1) * runs[k] // n_rounds > rnd * runs[k] // n_rounds:
                t0 = INVOKE_CLOCK()
                runners[k].invoke()
                times[k].append(INVOKE_CLOCK() - t0)
    return {k: statistics.median(v) / 1e3 for k, v in times.items()}, {k: min(v) / 1e3 for k, v in times.items()}


def op_profile(it, runs: int) -> list:
    """edgeml's steps by median time, each with its rate: GMAC/s for ops with MACs, else GB/s of the bytes its
    non-constant inputs and outputs hold."""
    plan = it.plan
    per = {}
    for _ in range(runs):
        for k, (_, _, ns, _) in enumerate(it.invoke_profiled()):
            per.setdefault(k, []).append(ns)
    rows = []
    for k, step in enumerate(plan.steps):
        ns = statistics.median(per[k])
        nbytes = 0
        for t in list(step.op.inputs) + list(step.op.outputs):
            if t >= 0 and t not in plan.constants and t in plan.shapes:
                nbytes += int(np.prod(plan.shapes[t], dtype=np.int64)) * plan.graph.tensors[t].dtype.itemsize
        if step.macs:
            rate, unit, slow = step.macs / max(ns, 1), "GMAC/s", step.macs / max(ns, 1) < MAC_FLOOR
        else:
            rate, unit, slow = nbytes / max(ns, 1), "GB/s", nbytes / max(ns, 1) < BYTES_FLOOR
        rows.append(dict(op=step.op.type, index=step.op.index, kernel=step.kernel, us=ns / 1e3, rate=rate, unit=unit,
                         slow=bool(slow)))
    return sorted(rows, key=lambda r: -r["us"])


def measure(name: str, path: Path, kind: str, args) -> dict:
    result = dict(model=name, kind=kind, errors={})
    runners = {}
    for label, make in (("edgeml", EdgeML), ("peer", ORT if kind == "onnx" else LiteRT)):
        try:
            loads = []
            for _ in range(args.loads):
                r = make(path)
                loads.append(r.load_ms)
            r.load_ms = statistics.median(loads)
            runners[label] = r
        except Exception as exc:     # a model a runtime cannot load: reported, not fatal
            result["errors"][label] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:150] if str(exc) else ''}"
    if "edgeml" not in runners or "peer" not in runners:
        return result
    xs = inputs_for(runners["peer"], args.seed)
    for r in runners.values():
        r.prepare(xs)
        r.invoke()
    result["median_us"], result["min_us"] = interleaved(runners, args)
    result["load_ms"] = {k: r.load_ms for k, r in runners.items()}
    a, b = np.asarray(runners["edgeml"].output()), np.asarray(runners["peer"].output())
    result["max_abs_diff_vs_peer"] = float(np.abs(a.astype(np.float64).reshape(-1) - b.astype(np.float64).reshape(-1)).max()) \
        if a.size == b.size else None
    result["ops"] = op_profile(runners["edgeml"].it, args.profile_runs)
    return result


def measure_load(name: str, path: Path, kind: str, args) -> dict:
    """Median load and load + first invoke (ms) of edgeml and the peer, loads alternating; with --load-profile the
    median of each of edgeml's load stages."""
    result = dict(model=name, kind=kind, errors={})
    makers = {"edgeml": EdgeML, "peer": ORT if kind == "onnx" else LiteRT}
    loads = {k: [] for k in makers}
    firsts = {k: [] for k in makers}
    xs = None
    for rnd in range(args.loads):
        for label in (list(makers) if rnd % 2 == 0 else list(makers)[::-1]):
            if label in result["errors"]:
                continue
            try:
                t0 = LOAD_CLOCK()
                r = makers[label](path)
                if xs is None:
                    xs = inputs_for(r, args.seed) if label == "peer" else None
                if xs is not None:
                    r.prepare(xs)
                    r.invoke()
                    firsts[label].append((LOAD_CLOCK() - t0) * 1e3)
                loads[label].append(r.load_ms)
            except Exception as exc:     # a model a runtime cannot load: reported, not fatal
                result["errors"][label] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:150] if str(exc) else ''}"
    if result["errors"]:
        return result
    result["load_ms"] = {k: statistics.median(v) for k, v in loads.items()}
    result["first_invoke_ms"] = {k: statistics.median(v) if v else None for k, v in firsts.items()}
    if args.load_profile:
        from edgeml.runtime.load_profile import collect
        import edgeml
        runs = []
        for _ in range(args.loads):
            with collect(LOAD_CLOCK) as stages:
                edgeml.Interpreter(str(path))
            runs.append(stages)
        result["stages_ms"] = {k: statistics.median(r.get(k, [0.0])[0] for r in runs) * 1e3
                               for k in sorted({k for r in runs for k in r})}
    return result


def print_load_report(results: list):
    print("\n| model | edgeml load ms | peer load ms | edgeml / peer | edgeml load + 1st invoke ms | "
          "peer load + 1st invoke ms |")
    print("|---|---|---|---|---|---|")
    for r in results:
        if "load_ms" not in r:
            print(f"| {r['model']} | — | — | — | {r['errors']} | |")
            continue
        ld, fi = r["load_ms"], r["first_invoke_ms"]
        peer = "onnxruntime" if r["kind"] == "onnx" else "LiteRT"
        print(f"| {r['model']} ({peer}) | {ld['edgeml']:.2f} | {ld['peer']:.2f} | {ld['edgeml'] / ld['peer']:.1f}x | "
              f"{fmt(fi['edgeml'])} | {fmt(fi['peer'])} |")
    if any("stages_ms" in r for r in results):
        print("\nedgeml load stages, median ms (stages nest: packing, requantization and tables are inside the "
              "prepares)\n")
        print("| model | read model | prepares (largest) | weight packing | requantization | 256-entry tables | "
              "arena plan | bind engine | interpreter setup |")
        print("|---|---|---|---|---|---|---|---|---|")
        for r in results:
            st = r.get("stages_ms")
            if not st:
                continue
            prepares = sorted(((v, k[len("prepare "):]) for k, v in st.items() if k.startswith("prepare ")),
                              reverse=True)
            top = ", ".join(f"{op} {v:.1f}" for v, op in prepares[:3])
            total_prep = sum(v for v, _ in prepares)
            print(f"| {r['model']} | {st.get('read model', 0):.1f} | {total_prep:.1f} ({top}) | "
                  f"{st.get('of which: weight packing', 0):.1f} | {st.get('of which: requantization', 0):.1f} | "
                  f"{st.get('of which: 256-entry tables', 0):.1f} | {st.get('arena plan', 0):.1f} | "
                  f"{st.get('bind engine', 0):.1f} | {st.get('interpreter setup', 0):.1f} |")


def call_path(path: Path, rounds: int = 200, batch: int = 100) -> dict:
    """Median µs per call of edgeml's Python call forms on one model: benchmarks/bench_call.py's forms (the bare
    invoke(), set_input / get_output around it, run() of each input form), each timed as a loop of `batch` calls,
    the forms alternating batch by batch, thread CPU time."""
    import edgeml
    from bench_call import measure
    return {k: v / 1e3 for k, v in measure(edgeml.Interpreter(str(path)), rounds, batch).items()}


def corpus(args) -> list:
    """(name, path, kind): kind "tflite" (int8 / uint8) or "onnx"."""
    found = []
    for folder in (SHARED / "mlperf_tiny", SHARED / "public" / "tflite"):
        for p in sorted(folder.glob("*.tflite")) if folder.is_dir() else []:
            try:
                if is_quantized_tflite(p):
                    found.append((p.stem, p, "tflite"))
            except Exception as exc:
                print(f"- {p.name}: not read ({type(exc).__name__})", file=sys.stderr)
    for name in SYNTHETIC:
        if args.only and not any(o in name for o in args.only):
            continue
        try:
            found.append((name, synthetic_model(name, Path(args.cache)), "tflite"))
        except Exception as exc:
            print(f"- synthetic {name}: not built ({type(exc).__name__}: {exc})", file=sys.stderr)
    if not args.no_onnx:
        for folder in (SHARED / "mlperf_tiny_onnx", SHARED / "public" / "onnx"):
            for p in sorted(folder.glob("*.onnx")) if folder.is_dir() else []:
                if is_quantized_onnx(p):
                    found.append((p.stem + ".onnx", p, "onnx"))
    if args.only:
        found = [f for f in found if any(o in f[0] for o in args.only)]
    return found


def fmt(v):
    return "n/a" if v is None else (f"{v:.1f}" if v < 100 else f"{v:.0f}")


def print_report(results: list, top: int):
    print("\n| model | edgeml µs | peer µs | edgeml / peer | of minima | load ms: edgeml | peer | slowest edgeml ops "
          "(µs, rate) | flagged ops |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        if "median_us" not in r:
            print(f"| {r['model']} | — | — | — | — | — | — | {r['errors']} | |")
            continue
        m, ld = r["median_us"], r["load_ms"]
        peer = "onnxruntime" if r["kind"] == "onnx" else "XNNPACK"
        slowest = "; ".join(f"{o['op']} {o['us']:.0f} ({o['rate']:.1f} {o['unit']})" for o in r["ops"][:top])
        flagged = [o for o in r["ops"] if o["slow"] and o["us"] >= 1.0]
        flags = "; ".join(f"{o['op']}#{o['index']} {o['rate']:.1f} {o['unit']}" for o in flagged[:4])
        if len(flagged) > 4:
            flags += f"; +{len(flagged) - 4} more"
        lo = r["min_us"]
        print(f"| {r['model']} ({peer}) | {fmt(m['edgeml'])} | {fmt(m['peer'])} | {m['edgeml'] / m['peer']:.2f}x | "
              f"{lo['edgeml'] / lo['peer']:.2f}x | "
              f"{ld['edgeml']:.1f} | {ld['peer']:.1f} | {slowest} | {flags} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "edgeml" / "bench_models"),
                    help="folder of the synthetic models (built on first use)")
    ap.add_argument("--runs", type=int, default=300, help="most timed runs per runtime")
    ap.add_argument("--min-runs", type=int, default=20)
    ap.add_argument("--budget", type=float, default=1.5, help="seconds of timed invokes per runtime and model")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--loads", type=int, default=3, help="loads per runtime (median load time)")
    ap.add_argument("--profile-runs", type=int, default=20)
    ap.add_argument("--top", type=int, default=3, help="slowest ops printed per model")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", nargs="*", help="substrings of the model names to run")
    ap.add_argument("--no-onnx", action="store_true")
    ap.add_argument("--json", default=None)
    ap.add_argument("--cpu-time", action="store_true",
                    help="time invokes and loads by the thread's CPU time (both runtimes run on this thread with one "
                         "thread)")
    ap.add_argument("--load-only", action="store_true", help="load times only (no invoke timing)")
    ap.add_argument("--load-profile", action="store_true", help="edgeml's load time per stage")
    ap.add_argument("--no-call-path", dest="call_path", action="store_false",
                    help="skip the timing of run() / set_input / get_output against invoke() on ad01_int8")
    args = ap.parse_args(argv)
    if args.cpu_time:
        global INVOKE_CLOCK, LOAD_CLOCK
        INVOKE_CLOCK, LOAD_CLOCK = time.thread_time_ns, time.thread_time
    from cython_ops.conv import isa
    print(f"# edgeml vs LiteRT+XNNPACK / onnxruntime\n\n{platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, edgeml ISA path {isa()}, one thread, batch 1")
    results = []
    found = corpus(args)
    for name, path, kind in found:
        t0 = time.perf_counter()
        if args.load_only:
            r = measure_load(name, path, kind, args)
            results.append(r)
            print(f"  {name}: load ms " + ", ".join(f"{k} {v:.2f}" for k, v in r.get("load_ms", {}).items())
                  + (f" errors {r['errors']}" if r["errors"] else "") + f"  [{time.perf_counter() - t0:.1f} s]",
                  flush=True)
            continue
        r = measure(name, path, kind, args)
        results.append(r)
        med = r.get("median_us", {})
        print(f"  {name}: " + ", ".join(f"{k} {fmt(v)} µs" for k, v in med.items())
              + (f" errors {r['errors']}" if r["errors"] else "") + f"  [{time.perf_counter() - t0:.1f} s]",
              flush=True)
    if args.load_only:
        print_load_report(results)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1, default=float))
        return
    print_report(results, args.top)
    if args.load_profile:
        paths = {name: path for name, path, _ in found}
        for r in results:
            if "median_us" in r:
                r.update(measure_load(r["model"], paths[r["model"]], r["kind"], args))
        print_load_report(results)
    tiny = SHARED / "mlperf_tiny" / "ad01_int8.tflite"
    if args.call_path and tiny.is_file():
        cp = call_path(tiny)
        print(f"\nPython call path on {tiny.name} (median µs, alternating): "
              + ", ".join(f"{k} {v:.2f}" for k, v in cp.items()))
        results.append(dict(model=tiny.name, call_path_us=cp))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
