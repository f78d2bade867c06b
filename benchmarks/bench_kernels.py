#!/usr/bin/env python
"""Per-layer and per-model speed of edgeml's int8 CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED kernels on every
ISA path and thread count.  Batch 1; runs alternate (round robin, direction reversed every round); medians.

    python benchmarks/bench_kernels.py layers [--only SUBSTR ..] [--isa avx512vnni,avxvnni,avx2] [--threads 1,2]
        one-op models of the geometries that matter (MobileNet / YAMNet / KWS / ResNet-8 layers, stems, shortcut
        1x1s, depth multiplier > 1, large kernels, stride 2, dilation, channel counts that are not multiples of 16,
        FC).  Every (ISA path, threads) plan of a layer runs alternately in one process: the vector kernels take
        their path from the kernel the plan names, so each plan is compiled with that path's KernelConfig.  Times
        are the kernel's own (Engine.invoke_profiled).  `--scalar` adds the portable path, measured in a
        subprocess with EDGEML_ISA=scalar (not alternating with the others).
    python benchmarks/bench_kernels.py models [--models FILE|DIR ..] [--isa default,avxvnni,avx2,scalar]
        whole models, one subprocess per ISA path (EDGEML_ISA): each alternates edgeml with one thread, with two
        threads and LiteRT (XNNPACK, one thread) as the yardstick every path is divided by; plus, with --layers,
        each model's slowest CONV / DEPTHWISE / FC steps (GMAC/s, one thread).

The machine may be shared: rely on the ratios of alternating runs, and repeat a run whose figures look odd.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

X86_PATHS = ["avx512vnni", "avxvnni", "avx2"]
SHARED = ROOT.parent / "shared" / "models"
DEFAULT_MODELS = [SHARED / "mlperf_tiny", SHARED / "public" / "tflite"]

# name: (op, input NHWC, out channels, (kh, kw), (sh, sw), (dh, dw), padding 0 SAME / 1 VALID); FC: ("fc", rows,
# depth, units).  Depthwise out channels = input channels x depth multiplier.
LAYERS = {
    # MobileNetV2-224 (1.0) depthwise, and a 0.35 one
    "mnv2_dw_112x112x32": ("dw", (112, 112, 32), 32, (3, 3), (1, 1), (1, 1), 0),
    "mnv2_dw_112x112x96_s2": ("dw", (112, 112, 96), 96, (3, 3), (2, 2), (1, 1), 0),
    "mnv2_dw_56x56x144": ("dw", (56, 56, 144), 144, (3, 3), (1, 1), (1, 1), 0),
    "mnv2_dw_28x28x192": ("dw", (28, 28, 192), 192, (3, 3), (1, 1), (1, 1), 0),
    "mnv2_dw_14x14x576": ("dw", (14, 14, 576), 576, (3, 3), (1, 1), (1, 1), 0),
    "mnv2_dw_7x7x960": ("dw", (7, 7, 960), 960, (3, 3), (1, 1), (1, 1), 0),
    "mnv2_035_dw_112x112x16": ("dw", (112, 112, 16), 16, (3, 3), (1, 1), (1, 1), 0),
    "mnv2_035_dw_112x112x48_s2": ("dw", (112, 112, 48), 48, (3, 3), (2, 2), (1, 1), 0),
    # YAMNet (MobileNetV1 on 96 x 64 patches) and VWW / KWS depthwise
    "yamnet_dw_48x32x64": ("dw", (48, 32, 64), 64, (3, 3), (1, 1), (1, 1), 0),
    "yamnet_dw_24x16x128": ("dw", (24, 16, 128), 128, (3, 3), (1, 1), (1, 1), 0),
    "yamnet_dw_6x4x512": ("dw", (6, 4, 512), 512, (3, 3), (1, 1), (1, 1), 0),
    "vww_dw_48x48x8": ("dw", (48, 48, 8), 8, (3, 3), (1, 1), (1, 1), 0),
    "vww_dw_48x48x16_s2": ("dw", (48, 48, 16), 16, (3, 3), (2, 2), (1, 1), 0),
    "kws_dw_25x5x64": ("dw", (25, 5, 64), 64, (3, 3), (1, 1), (1, 1), 0),
    # depth multiplier > 1, one input channel, large kernels, dilation, odd channel counts (MobileNetV3: 5x5, 72 / 120)
    "kws_dw_1ch_dm8_10x8": ("dw", (49, 40, 1), 8, (10, 8), (2, 2), (1, 1), 0),
    "dw_dm2_28x28x32": ("dw", (28, 28, 32), 64, (3, 3), (1, 1), (1, 1), 0),
    "dw_10x8_25x20x64": ("dw", (25, 20, 64), 64, (10, 8), (1, 1), (1, 1), 0),
    "dw_dil2_32x32x64": ("dw", (32, 32, 64), 64, (3, 3), (1, 1), (2, 2), 0),
    "mnv3_dw5_28x28x72_s2": ("dw", (56, 56, 72), 72, (5, 5), (2, 2), (1, 1), 0),
    "mnv3_dw5_14x14x120": ("dw", (14, 14, 120), 120, (5, 5), (1, 1), (1, 1), 0),
    "dw_odd_28x28x37": ("dw", (28, 28, 37), 37, (3, 3), (1, 1), (1, 1), 0),
    # MobileNetV1-224 (the embedding extractor's depthwise layers)
    "mnv1_dw_112x112x32": ("dw", (112, 112, 32), 32, (3, 3), (1, 1), (1, 1), 0),
    "mnv1_dw_112x112x64_s2": ("dw", (112, 112, 64), 64, (3, 3), (2, 2), (1, 1), 0),
    "mnv1_dw_56x56x128": ("dw", (56, 56, 128), 128, (3, 3), (1, 1), (1, 1), 0),
    "mnv1_dw_56x56x128_s2": ("dw", (56, 56, 128), 128, (3, 3), (2, 2), (1, 1), 0),
    "mnv1_dw_28x28x256": ("dw", (28, 28, 256), 256, (3, 3), (1, 1), (1, 1), 0),
    "mnv1_dw_28x28x256_s2": ("dw", (28, 28, 256), 256, (3, 3), (2, 2), (1, 1), 0),
    "mnv1_dw_14x14x512": ("dw", (14, 14, 512), 512, (3, 3), (1, 1), (1, 1), 0),
    "mnv1_dw_14x14x512_s2": ("dw", (14, 14, 512), 512, (3, 3), (2, 2), (1, 1), 0),
    "mnv1_dw_7x7x1024": ("dw", (7, 7, 1024), 1024, (3, 3), (1, 1), (1, 1), 0),
    # stems (1-3 input channels) and shortcut 1x1s
    "stem_224x224x3_s2_32": ("conv", (224, 224, 3), 32, (3, 3), (2, 2), (1, 1), 0),
    "stem_96x96x3_s2_8": ("conv", (96, 96, 3), 8, (3, 3), (2, 2), (1, 1), 0),
    "resnet8_stem_32x32x3_16": ("conv", (32, 32, 3), 16, (3, 3), (1, 1), (1, 1), 0),
    "kws_stem_49x10x1_10x4_s2": ("conv", (49, 10, 1), 64, (10, 4), (2, 2), (1, 1), 0),
    "resnet8_short_32x32x16_s2_32": ("conv", (32, 32, 16), 32, (1, 1), (2, 2), (1, 1), 0),
    "resnet8_short_16x16x32_s2_64": ("conv", (16, 16, 32), 64, (1, 1), (2, 2), (1, 1), 0),
    "resnet8_3x3_32x32x16": ("conv", (32, 32, 16), 16, (3, 3), (1, 1), (1, 1), 0),
    "resnet8_3x3_8x8x64": ("conv", (8, 8, 64), 64, (3, 3), (1, 1), (1, 1), 0),
    # pointwise 1x1
    "mnv2_pw_112x112x32_16": ("conv", (112, 112, 32), 16, (1, 1), (1, 1), (1, 1), 0),
    "mnv2_pw_56x56x24_144": ("conv", (56, 56, 24), 144, (1, 1), (1, 1), (1, 1), 0),
    "mnv2_pw_14x14x96_576": ("conv", (14, 14, 96), 576, (1, 1), (1, 1), (1, 1), 0),
    "mnv2_pw_7x7x960_320": ("conv", (7, 7, 960), 320, (1, 1), (1, 1), (1, 1), 0),
    "mnv1_pw_14x14x512_512": ("conv", (14, 14, 512), 512, (1, 1), (1, 1), (1, 1), 0),
    "mnv1_pw_7x7x1024_1024": ("conv", (7, 7, 1024), 1024, (1, 1), (1, 1), (1, 1), 0),
    "mnv1_pw_112x112x32_64": ("conv", (112, 112, 32), 64, (1, 1), (1, 1), (1, 1), 0),
    "mnv1_pw_56x56x64_128": ("conv", (56, 56, 64), 128, (1, 1), (1, 1), (1, 1), 0),
    "mnv1_pw_56x56x128_128": ("conv", (56, 56, 128), 128, (1, 1), (1, 1), (1, 1), 0),
    "mnv1_pw_28x28x128_256": ("conv", (28, 28, 128), 256, (1, 1), (1, 1), (1, 1), 0),
    "mnv1_pw_28x28x256_256": ("conv", (28, 28, 256), 256, (1, 1), (1, 1), (1, 1), 0),
    "mnv1_pw_14x14x256_512": ("conv", (14, 14, 256), 512, (1, 1), (1, 1), (1, 1), 0),
    "mnv1_pw_7x7x512_1024": ("conv", (7, 7, 512), 1024, (1, 1), (1, 1), (1, 1), 0),
    "vww_pw_48x48x8_16": ("conv", (48, 48, 8), 16, (1, 1), (1, 1), (1, 1), 0),
    "vww_pw_12x12x64_128": ("conv", (12, 12, 64), 128, (1, 1), (1, 1), (1, 1), 0),
    # FULLY_CONNECTED
    "fc_1x1280_1001": ("fc", 1, 1280, 1001),
    "fc_1x1024_521": ("fc", 1, 1024, 521),
    "fc_1x640_128": ("fc", 1, 640, 128),
    "fc_1x128_128": ("fc", 1, 128, 128),
    "fc_4x256_12": ("fc", 4, 256, 12),
}


def layer_graph(spec, seed: int = 0):
    """A one-op int8 graph of `spec` (LAYERS) with seeded random weights and realistic quantization."""
    from edgeml.ir import Graph, Op, Quantization, Tensor
    rng = np.random.default_rng(seed)

    def tensor(idx, shape, dtype, scale=None, zp=0, data=None, axis=0):
        q = None if scale is None else Quantization(np.atleast_1d(np.asarray(scale, np.float64)),
                                                    np.zeros(np.size(scale), np.int64) + zp, axis)
        return Tensor(idx, f"t{idx}", tuple(shape), np.dtype(dtype), q, data)

    if spec[0] == "fc":
        _, rows, depth, units = spec
        w = rng.integers(-127, 128, size=(units, depth)).astype(np.int8)
        ws = rng.uniform(0.002, 0.01, units)
        ts = [tensor(0, (rows, depth), np.int8, 0.05, -3), tensor(1, w.shape, np.int8, ws, 0, w),
              tensor(2, (units,), np.int32, 0.05 * ws, 0, rng.integers(-5000, 5000, units).astype(np.int32)),
              tensor(3, (), np.int8, 0.5, 2)]
        return Graph(ts, [Op(0, "FULLY_CONNECTED", 1, [0, 1, 2], [3], {"fused_activation_function": 1})], [0], [3])
    kind, (ih, iw, ic), oc, (kh, kw), (sh, sw), (dh, dw), padding = spec
    if kind == "dw":
        w = rng.integers(-127, 128, size=(1, kh, kw, oc)).astype(np.int8)
        axis = 3
    else:
        w = rng.integers(-127, 128, size=(oc, kh, kw, ic)).astype(np.int8)
        axis = 0
    ws = rng.uniform(0.002, 0.01, oc)
    ts = [tensor(0, (1, ih, iw, ic), np.int8, 0.05, -3), tensor(1, w.shape, np.int8, ws, 0, w, axis),
          tensor(2, (oc,), np.int32, 0.05 * ws, 0, rng.integers(-5000, 5000, oc).astype(np.int32)),
          tensor(3, (), np.int8, 0.5, 2)]
    opts = {"padding": padding, "stride_h": sh, "stride_w": sw, "dilation_h_factor": dh, "dilation_w_factor": dw,
            "fused_activation_function": 3, "depth_multiplier": oc // ic}
    return Graph(ts, [Op(0, "DEPTHWISE_CONV_2D" if kind == "dw" else "CONV_2D", 1, [0, 1, 2], [3], opts)], [0], [3])


@contextlib.contextmanager
def kernel_config(isa: str):
    """Compile with `isa`'s kernel choices (edgeml.runtime.kernels.config_for) in this process."""
    from edgeml.runtime import kernels
    from edgeml.runtime.ops import conv, fully_connected
    saved = conv.CONFIG, fully_connected.CONFIG
    conv.CONFIG = fully_connected.CONFIG = kernels.config_for(isa)
    try:
        yield
    finally:
        conv.CONFIG, fully_connected.CONFIG = saved


def forcible_paths() -> list:
    """The x86 vector paths this CPU has (EDGEML_ISA may force each)."""
    out = []
    for isa in X86_PATHS:
        done = subprocess.run([sys.executable, "-c", "from cython_ops.conv import isa; print(isa())"],
                              env=dict(os.environ, EDGEML_ISA=isa), capture_output=True, text=True, cwd=ROOT)
        if done.stdout.strip() == isa:
            out.append(isa)
    return out


def cpu_timed(invoke) -> int:
    """The calling thread's CPU time of one invoke (ns): on a shared machine, time spent descheduled is left out."""
    t0 = time.thread_time_ns()
    invoke()
    return time.thread_time_ns() - t0


def alternate(runners: dict, runs: int, warmup: int = 5) -> dict:
    """runner name -> callable returning nanoseconds; round robin, direction reversed every round; medians (us)."""
    for _ in range(warmup):
        for f in runners.values():
            f()
    times = {k: [] for k in runners}
    order = list(runners)
    for rnd in range(runs):
        for k in (order if rnd % 2 == 0 else order[::-1]):
            times[k].append(runners[k]())
    return {k: statistics.median(v) / 1e3 for k, v in times.items()}


def layer_plans(spec, isas, threads):
    from edgeml.runtime.compile import compile_graph
    plans = {}
    x = None
    for isa in isas:
        for t in threads:
            with kernel_config(isa):
                plan = compile_graph(layer_graph(spec), {}, 0, t)
            if x is None:
                x = np.random.default_rng(1).integers(-128, 128, size=plan.view(plan.graph.inputs[0]).shape)
            plan.view(plan.graph.inputs[0])[...] = x
            plans[(isa, t)] = plan
    return plans


def run_layers(args):
    isas = [i for i in (args.isa.split(",") if args.isa else forcible_paths())]
    threads = [int(t) for t in args.threads.split(",")]
    names = [n for n in LAYERS if not args.only or any(o in n for o in args.only)]
    scalar = scalar_layers(names, args.runs) if args.scalar else {}
    rows = []
    for name in names:
        plans = layer_plans(LAYERS[name], isas, threads)
        outs = {}
        for key, plan in plans.items():
            plan.engine.invoke()
            outs[key] = plan.view(plan.graph.outputs[0]).copy()
        first = next(iter(outs.values()))
        exact = all(np.array_equal(o, first) for o in outs.values())
        med = alternate({k: (lambda p=p: cpu_timed(p.engine.invoke) if args.cpu_time
                             else int(p.engine.invoke_profiled()[0])) for k, p in plans.items()}, runs=args.runs)
        macs = plans[next(iter(plans))].steps[0].macs
        kernels = {k: p.steps[0].kernel for k, p in plans.items()}
        rows.append({"layer": name, "macs": macs, "us": {f"{i}/t{t}": v for (i, t), v in med.items()},
                     "kernels": {f"{i}/t{t}": v for (i, t), v in kernels.items()}, "same_output": exact,
                     "scalar_us": scalar.get(name)})
        print(f"  {name}: " + ", ".join(f"{i}/t{t} {v:.1f}" for (i, t), v in med.items()) +
              ("" if exact else "  OUTPUTS DIFFER"), file=sys.stderr, flush=True)
    print_layers(rows, isas, threads)
    return rows


def scalar_layers(names, runs) -> dict:
    """The portable path's kernel times, measured in a subprocess forced to EDGEML_ISA=scalar."""
    done = subprocess.run([sys.executable, __file__, "_scalar", "--runs", str(max(5, runs // 4)), "--only", *names],
                          env=dict(os.environ, EDGEML_ISA="scalar"), capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
        return {}
    return json.loads(done.stdout)


def scalar_worker(args):
    from edgeml.runtime.compile import compile_graph
    out = {}
    for name in args.only:
        plan = compile_graph(layer_graph(LAYERS[name]), {}, 0, 1)
        out[name] = alternate({"s": lambda: int(plan.engine.invoke_profiled()[0])}, runs=args.runs, warmup=2)["s"]
    print(json.dumps(out))


def print_layers(rows, isas, threads):
    print("\n## Per-layer kernel time, batch 1 (us; GMAC/s in brackets)\n")
    cols = [f"{i}/t{t}" for i in isas for t in threads]
    has_scalar = any(r["scalar_us"] for r in rows)
    print("| layer | MACs | kernel | " + " | ".join(cols) + (" | scalar/t1 |" if has_scalar else " |") +
          " t2 speed-up | same bytes |")
    print("|---|---|---|" + "---|" * (len(cols) + has_scalar) + "---|---|")
    for r in rows:
        cells = [f"{r['us'][c]:.1f} ({r['macs'] / r['us'][c] / 1e3:.0f})" for c in cols]
        if has_scalar:
            s = r["scalar_us"]
            cells.append(f"{s:.1f} ({r['macs'] / s / 1e3:.1f})" if s else "n/a")
        first = f"{isas[0]}/t1"
        up = f"{r['us'][first] / r['us'][f'{isas[0]}/t2']:.2f}x" if f"{isas[0]}/t2" in r["us"] else ""
        print(f"| {r['layer']} | {r['macs'] / 1e6:.2f} M | {r['kernels'][first]} | " + " | ".join(cells) +
              f" | {up} | {'yes' if r['same_output'] else 'NO'} |")


# ---------------------------------------------------------------------------------------------------- models

def model_paths(args) -> list:
    out = []
    for p in (args.models or DEFAULT_MODELS):
        p = Path(p)
        files = sorted(p.glob("*.tflite")) if p.is_dir() else [p]
        out += [f for f in files if "float" not in f.name and "fp32" not in f.name]
    return [f for f in out if not args.only or any(o in f.stem for o in args.only)]


def model_worker(args):
    """One ISA path (this process's EDGEML_ISA): every model alternating edgeml t1, t2 and LiteRT XNNPACK t1."""
    import edgeml
    from edgeml.runtime.kernels import ISA
    results = []
    for path in model_paths(args):
        try:
            its = {t: edgeml.Interpreter(str(path), num_threads=t) for t in (1, 2)}
        except edgeml.EdgeMLError as exc:
            results.append({"model": path.stem, "error": str(exc).splitlines()[0][:120]})
            continue
        d = its[1].get_input_details()[0]
        rng = np.random.default_rng(0)
        x = rng.integers(-128, 128, size=d["shape"]).astype(d["dtype"]) if d["dtype"] != np.float32 else \
            rng.uniform(-1, 1, size=d["shape"]).astype(np.float32)
        runners = {}
        for t, it in its.items():
            it.set_input(x)
            runners[f"edgeml/t{t}"] = timed(it.plan.engine.invoke)
        try:
            from ai_edge_litert import interpreter as lit
            xi = lit.Interpreter(model_path=str(path), num_threads=1)
            xi.allocate_tensors()
            xi.set_tensor(xi.get_input_details()[0]["index"], x)
            runners["xnnpack/t1"] = timed(xi.invoke)
        except Exception:      # LiteRT absent or refusing the model: edgeml alone
            pass
        est = statistics.median(timed_many(runners["edgeml/t1"], 5))
        med = alternate(runners, runs=int(max(20, min(args.runs, 2e6 / max(est, 1.0)))))
        layers = []
        if args.layers:
            plan = its[1].plan
            per = np.median([plan.engine.invoke_profiled() for _ in range(max(10, args.runs // 4))], axis=0) / 1e3
            for k, s in enumerate(plan.steps):
                if s.macs:
                    ints = s.make(lambda t: 0)[1]
                    geo = {g: ints[g] for g in ("ih", "iw", "ic", "oc", "kh", "kw", "sh", "dh", "dm", "rows", "depth",
                                                "units") if g in ints}
                    layers.append({"step": k, "op": s.op.type, "kernel": s.kernel, "us": float(per[k]),
                                   "macs": int(s.macs), "geometry": geo})
        results.append({"model": path.stem, "isa": ISA, "us": med, "layers": layers})
        print(f"  [{ISA}] {path.stem}: " + ", ".join(f"{k} {v:.1f}" for k, v in med.items()), file=sys.stderr,
              flush=True)
    print(json.dumps(results))


def timed(f):
    def run():
        t0 = time.perf_counter_ns()
        f()
        return time.perf_counter_ns() - t0
    return run


def timed_many(f, n):
    return [f() / 1e3 for _ in range(n)]


def run_models(args):
    isas = args.isa.split(",") if args.isa else ["default"] + forcible_paths()[1:] + ["scalar"]
    per_isa = {}
    for isa in isas:
        env = dict(os.environ)
        if isa != "default":
            env["EDGEML_ISA"] = isa
        cmd = [sys.executable, __file__, "_models", "--runs", str(args.runs)] + \
            (["--layers"] if args.layers else []) + (["--only", *args.only] if args.only else []) + \
            (["--models", *args.models] if args.models else [])
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            continue
        per_isa[isa] = json.loads(done.stdout.strip().splitlines()[-1])
    print_models(per_isa)
    return per_isa


def print_models(per_isa: dict):
    isas = list(per_isa)
    models = [r["model"] for r in per_isa[isas[0]]] if isas else []
    print("\n## Whole models, batch 1 (median us; in brackets edgeml / LiteRT-XNNPACK one thread, same process)\n")
    print("| model | " + " | ".join(f"{i} t1 | {i} t2" for i in isas) + " |")
    print("|---|" + "---|---|" * len(isas))
    for m in models:
        cells = []
        for i in isas:
            r = next((r for r in per_isa[i] if r["model"] == m), None)
            if r is None or "error" in r:
                cells += ["error" if r else "n/a"] * 2
                continue
            x = r["us"].get("xnnpack/t1")
            for t in ("t1", "t2"):
                v = r["us"][f"edgeml/{t}"]
                cells.append(f"{v:.1f}" + (f" ({v / x:.2f})" if x else ""))
        print(f"| {m} | " + " | ".join(cells) + " |")
    for i in isas:
        for r in per_isa[i]:
            if "error" in r:
                print(f"- {r['model']}: {r['error']}")
    for i in isas:
        slow = [(r["model"], lay) for r in per_isa[i] for lay in r.get("layers", [])
                if lay["macs"] / max(lay["us"], 1e-3) / 1e3 < 20 and lay["us"] > 2.0]
        if not per_isa[i] or not any(r.get("layers") for r in per_isa[i]):
            continue
        print(f"\n### {i}: CONV / DEPTHWISE / FC steps below 20 GMAC/s taking over 2 us (one thread)\n")
        print("| model | step | op | kernel | us | GMAC/s | geometry |")
        print("|---|---|---|---|---|---|---|")
        for m, lay in slow:
            print(f"| {m} | {lay['step']} | {lay['op']} | {lay['kernel']} | {lay['us']:.1f} | "
                  f"{lay['macs'] / lay['us'] / 1e3:.1f} | {lay['geometry']} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["layers", "models", "_scalar", "_models"])
    ap.add_argument("--only", nargs="*", help="layer or model names containing one of these")
    ap.add_argument("--isa", default=None, help="comma-separated paths (default: every one this CPU has)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--scalar", action="store_true", help="layers: add the portable path (subprocess)")
    ap.add_argument("--cpu-time", action="store_true",
                    help="layers: time each invoke by the thread's CPU time (a shared machine)")
    ap.add_argument("--layers", action="store_true", help="models: add each model's slow CONV / DW / FC steps")
    ap.add_argument("--models", nargs="*", help="model files or folders (default: MLPerf Tiny + public tflite)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    result = {"layers": run_layers, "models": run_models, "_scalar": scalar_worker, "_models": model_worker}[
        args.what](args)
    if args.json and result is not None:
        Path(args.json).write_text(json.dumps(result, indent=1, default=float))


if __name__ == "__main__":
    main()
