"""The report of a training run: report.json (every number), report.md (the same for people) and the summary table
printed at the end of `edgeml train`."""
from __future__ import annotations

from edgeml.train.evaluate import RUNTIME_LABELS

AGREEMENT_NOTES = {
    "edgeml_int8_vs_litert_reference_int8":
        "edgeml's contract: bit-exact with LiteRT's reference kernels (bit_exact 1.0, max_lsb 0)",
    "edgeml_int8_vs_litert_int8":
        "LiteRT's default XNNPACK kernels round some int8 ops differently from LiteRT's own reference kernels "
        "(+-1 LSB per op), so a bit_exact below 1.0 here is expected; top1 says whether the class changes",
    "edgeml_int8_vs_onnxruntime_int8":
        "onnxruntime runs the ONNX conversion of the int8 file with its own rounding (+-1 LSB per op)",
    "litert_int8_vs_onnxruntime_int8": "two optimized runtimes on the same int8 model",
    "edgeml_float_vs_litert_float": "float32 files: differences are float rounding (summation order)",
    "edgeml_float_vs_keras_float": "the float .tflite against the Keras model it came from",
    "edgeml_onnx_int8_vs_onnxruntime_onnx_float": "edgeml's int8 recurrent ONNX file against the float ONNX file",
}


def primary_metric(report: dict) -> tuple[str, dict]:
    """("accuracy" | "mse", {runtime: value}) of the first output."""
    first = next(iter(report["metrics"].values()))
    key = "accuracy" if first["task"] == "classification" else "mse"
    return key, first[key]


def _fmt(v, digits: int = 4) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}" if abs(v) >= 1e-3 or v == 0 else f"{v:.3g}"
    return str(v)


def _size(n) -> str:
    return "" if n is None else f"{n:,}"


def render_markdown(r: dict) -> str:
    lines = [f"# edgeml training report: {r['model']} on {r['data']}", "",
             f"Status: **{r['status']}**" + ("" if r["status"] == "ok" else " (see Failures)"), ""]
    if r["failures"]:
        lines += ["## Failures", ""]
        lines += [f"- **{f['check']}**: {f['message']}. Likely cause: {f['cause']}." for f in r["failures"]]
        lines.append("")
    for name, m in r["metrics"].items():
        keys = [k for k in ("accuracy", "mse", "mae") if k in m]
        title = "Test metrics" + (f", output '{name}'" if len(r["metrics"]) > 1 else "") + f" ({m['task']})"
        lines += [f"## {title}", "", "| runtime | file | " + " | ".join(keys) + " | note |",
                  "|---|---|" + "---|" * len(keys) + "---|"]
        for runtime in RUNTIME_LABELS:
            if runtime not in m[keys[0]] and runtime not in r["why"]:
                continue
            label = RUNTIME_LABELS[runtime]
            values = " | ".join(_fmt(m[k].get(runtime)) for k in keys)
            lines.append(f"| {runtime} | {label} | {values} | {r['why'].get(runtime, '')} |")
        if "target_variance" in m:
            lines += ["", f"Target variance {m['target_variance']:.4g} (an MSE of that size is no better than "
                          "predicting the mean)."]
        lines.append("")
    lines += ["## Agreement between runtimes", "",
              "top1: same class; max_abs_diff: largest difference of the real outputs; bit_exact: fraction of samples "
              "with identical int8 outputs; max_lsb: largest int8 difference.", "",
              "| pair | top1 | max_abs_diff | bit_exact | max_lsb | note |", "|---|---|---|---|---|---|"]
    for pair, a in r["agreement"].items():
        lines.append(f"| {pair} | {_fmt(a.get('top1'))} | {_fmt(a.get('max_abs_diff'), 6)} | "
                     f"{_fmt(a.get('bit_exact'))} | {_fmt(a.get('max_lsb'))} | {AGREEMENT_NOTES.get(pair, '')} |")
    lines += ["", "## Files", "", "| file | bytes | gzip bytes |", "|---|---|---|"]
    lines += [f"| {k} | {v:,} | {r['gzip_bytes'].get(k, 0):,} |" for k, v in r["files"].items()]
    lat = r.get("latency_edgeml_int8") or {}
    lines += ["", f"Parameters: {r['params']:,} in the float Keras model (optimization wrappers and masks not "
                  f"counted), {_size(r.get('params_int8_file'))} weights in model_int8.tflite; "
                  f"MACs per inference: {_size(r.get('macs'))}; edgeml arena: {_size(r.get('arena_bytes'))} bytes.",
              "", f"edgeml int8 latency (batch 1, one thread, {lat.get('runs', 0)} runs): median "
                  f"{_fmt(lat.get('median_us'), 1)} us, p90 {_fmt(lat.get('p90_us'), 1)} us." if lat else
              "edgeml int8 latency: not measured (see notes)."]
    lines += ["", "## Training", "", "| phase | epochs | best epoch | seconds |", "|---|---|---|---|"]
    lines += [f"| {p['phase']} | {p['epochs']} | {p.get('best_epoch', '')} | {p['seconds']} |" for p in r["phases"]]
    if r.get("weights_int8"):
        lines += ["", "## Weights in model_int8.tflite", "",
                  "| tensor | op | zero fraction | most distinct values in one output channel |", "|---|---|---|---|"]
        lines += [f"| {w[0]} | {w[1]} | {w[2]:.3f} | {w[3]} |" for w in r["weights_int8"]]
    if r["sparsity"]:
        blocks = r.get("block_sparsity") or {}
        lines += ["", "## Weight sparsity per Keras layer", "",
                  "block zero fraction: share of all-zero 16 output x 4 input channel blocks (what edgeml's sparse "
                  "int8 kernels skip).", "", "| layer | zero fraction | block zero fraction |", "|---|---|---|"]
        lines += [f"| {k} | {v:.3f} | {_fmt(blocks.get(k), 3)} |" for k, v in r["sparsity"].items()]
    sparse = (r.get("latency_edgeml_int8") or {}).get("sparse")
    if sparse:
        lines += ["", f"edgeml int8 latency with the block-sparse kernels on / off (alternating, one thread, thread "
                      f"CPU time medians): {sparse['on_us']:.1f} / {sparse['off_us']:.1f} us, "
                      f"{sparse['speedup']:.2f}x; {sparse['sparse_kernels']} steps on a sparse kernel."]
    lines += ["", "## Notes", ""] + [f"- {n}" for n in r["notes"]] + [f"- {r['seconds']} s in all", ""]
    return "\n".join(lines)


def render_summary(r: dict, out: str) -> str:
    """The table printed at the end: the primary metric per runtime, file sizes, edgeml's int8 latency, failures."""
    key, values = primary_metric(r)
    base = values.get("keras_float")
    lines = ["", f"summary: {r['model']} on {r['data']}: {r['status'].upper()}",
             f"  {'runtime':<46} {key:>9} {'vs float':>9}"]
    for runtime, label in RUNTIME_LABELS.items():
        if runtime in values:
            v = values[runtime]
            delta = "" if runtime == "keras_float" or v is None or base is None else \
                (f"{100 * (v - base):+.1f} pt" if key == "accuracy" else f"{v - base:+.3g}")
            lines.append(f"  {label:<46} {_fmt(v):>9} {delta:>9}")
        elif runtime in r["why"]:
            lines.append(f"  {label:<46} {'n/a':>9}  {r['why'][runtime][:60]}")
    lines.append(f"  {'file':<46} {'bytes':>9} {'gzip':>9}")
    for name, size in r["files"].items():
        lines.append(f"  {name:<46} {size:>9,} {r['gzip_bytes'].get(name, 0):>9,}")
    lat = r.get("latency_edgeml_int8")
    if lat:
        lines.append(f"  edgeml int8 latency: {lat['median_us']:.1f} us median (p90 {lat['p90_us']:.1f} us, batch 1, "
                     f"one thread); {_size(r.get('macs'))} MACs; arena {_size(r.get('arena_bytes'))} bytes")
        if lat.get("sparse"):
            sp = lat["sparse"]
            lines.append(f"  edgeml int8 block-sparse kernels on / off: {sp['on_us']:.1f} / {sp['off_us']:.1f} us "
                         f"({sp['speedup']:.2f}x, {sp['sparse_kernels']} layers sparse)")
    for f in r["failures"]:
        lines.append(f"  FAILED {f['check']}: {f['message']}")
        lines.append(f"         likely cause: {f['cause']}")
    lines.append(f"wrote {out}/: {', '.join(r['written'])}")
    return "\n".join(lines)
