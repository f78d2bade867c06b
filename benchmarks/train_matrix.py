"""Runs `edgeml train` over every zoo model, every optimization option and several data sets, each in its own
subprocess through the CLI, and prints one markdown table: command, wall time, stage times, accuracy (or MSE) per
runtime, file sizes.

    python benchmarks/train_matrix.py --out /tmp/train-matrix            # everything (an hour or more on 2 cores)
    python benchmarks/train_matrix.py --out /tmp/train-matrix --only cnn-prune0.5 cnn-qat
    python benchmarks/train_matrix.py --out /tmp/train-matrix --table     # the table of what has finished so far

Each finished row is appended to OUT/results.jsonl, so an interrupted matrix resumes where it stopped (--redo to
run rows again).  The data sets other than digits are generated (no downloads): an image folder of drawn shapes,
scikit-learn's diabetes regression set as CSV, scikit-learn's wine set as CSV, a token-id text set (.npz).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZOO = ("mlp", "cnn", "ds_cnn", "resnet8", "mobilenet_v1", "autoencoder", "lstm", "gru", "rnn", "transformer")
OPTIONS = {
    "prune0.5": ["--prune", "0.5"], "prune0.8": ["--prune", "0.8"], "qat": ["--qat"], "cluster16": ["--cluster", "16"],
    "pqat": ["--prune", "0.5", "--qat"], "cqat": ["--qat", "--cluster", "16"],
    "prune0.5-cluster16": ["--prune", "0.5", "--cluster", "16"],
    "pcqat": ["--prune", "0.5", "--cluster", "16", "--qat"], "augment": ["--augment"],
}
RUNTIMES = ("keras_float", "keras_qat", "litert_float", "edgeml_float", "litert_int8", "litert_reference_int8",
            "edgeml_int8", "onnxruntime_int8", "onnxruntime_onnx_float", "edgeml_onnx_int8")
SHORT = {"keras_float": "Keras", "keras_qat": "Keras QAT", "litert_float": "LiteRT f32", "edgeml_float": "edgeml f32",
         "litert_int8": "LiteRT i8", "litert_reference_int8": "LiteRT ref i8", "edgeml_int8": "edgeml i8",
         "onnxruntime_int8": "ORT i8", "onnxruntime_onnx_float": "ORT f32 .onnx",
         "edgeml_onnx_int8": "edgeml i8 .onnx"}


def make_datasets(folder: str) -> dict:
    """Generated data sets: name -> path (made once)."""
    os.makedirs(folder, exist_ok=True)
    paths = {"shapes": os.path.join(folder, "shapes"), "diabetes": os.path.join(folder, "diabetes.csv"),
             "wine": os.path.join(folder, "wine.csv"), "text": os.path.join(folder, "text.npz")}
    if not os.path.isdir(paths["shapes"]):
        _shapes_folder(paths["shapes"])
    if not os.path.exists(paths["diabetes"]) or not os.path.exists(paths["wine"]):
        from sklearn.datasets import load_diabetes, load_wine
        for key, loader in (("diabetes", load_diabetes), ("wine", load_wine)):
            d = loader()
            with open(paths[key], "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(list(d.feature_names) + ["target"])
                for row, t in zip(d.data, d.target):
                    w.writerow([f"{v:.6g}" for v in row] + [f"{t:.6g}" if key == "diabetes" else f"class{t}"])
    if not os.path.exists(paths["text"]):
        _text_npz(paths["text"])
    return paths


def _shapes_folder(folder: str, per_class: int = 150, size: int = 24):
    """Grey images of a disc, a square, a triangle and a cross at random places and sizes, with noise."""
    from PIL import Image
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    for label in ("disc", "square", "triangle", "cross"):
        os.makedirs(os.path.join(folder, label), exist_ok=True)
        for i in range(per_class):
            r = rng.uniform(4, 8)
            cx, cy = rng.uniform(r, size - r, 2)
            dx, dy = np.abs(xx - cx), np.abs(yy - cy)
            mask = {"disc": dx ** 2 + dy ** 2 <= r * r, "square": (dx <= r * 0.8) & (dy <= r * 0.8),
                    "triangle": (yy - cy <= r * 0.7) & (yy - cy >= -r) & (dx <= (yy - cy + r) * 0.55),
                    "cross": ((dx <= r / 4) & (dy <= r)) | ((dy <= r / 4) & (dx <= r))}[label]
            img = np.where(mask, 200.0, 40.0) + rng.normal(0, 25, (size, size))
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "L").save(
                os.path.join(folder, label, f"{i:03d}.png"))


def _text_npz(path: str, n: int = 1200, length: int = 20, vocab: int = 50):
    """Token ids: class c's sequences hold more tokens from its own band of the vocabulary (3 classes)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, n)
    x = rng.integers(1, vocab, (n, length))
    for i in range(n):
        k = rng.integers(3, 8)
        pos = rng.choice(length, k, replace=False)
        x[i, pos] = rng.integers(1 + 16 * y[i], 17 + 16 * y[i], k)
    np.savez(path, x=x.astype(np.int32), y=y.astype(np.int64))


def matrix(data: dict) -> list[tuple[str, list]]:
    """(row name, CLI arguments after `edgeml train`)."""
    rows = [(f"cnn-{key}", ["--model", "cnn", *args]) for key, args in OPTIONS.items()]
    rows += [("shapes-cnn", ["--data", data["shapes"], "--model", "cnn"]),
             ("shapes-cnn-augment", ["--data", data["shapes"], "--model", "cnn", "--augment"]),
             ("diabetes-mlp", ["--data", data["diabetes"], "--model", "mlp", "--label-column", "target",
                               "--task", "regression"]),
             ("wine-mlp", ["--data", data["wine"], "--model", "mlp", "--label-column", "target"]),
             ("text-transformer", ["--data", data["text"], "--model", "transformer"]),
             ("mlp-prune0.8-qat", ["--model", "mlp", "--prune", "0.8", "--qat"]),
             ("ds_cnn-pcqat", ["--model", "ds_cnn", "--prune", "0.5", "--cluster", "16", "--qat"]),
             ("lstm-prune0.5", ["--model", "lstm", "--prune", "0.5"])]
    rows += [(name, ["--model", name]) for name in ZOO]
    return rows


def run_row(name: str, args: list, out: str, env: dict) -> dict:
    run_dir = os.path.join(out, "runs", name)
    cmd = [sys.executable, "-m", "edgeml.cli", "train", *args, "--out", run_dir, "--quiet", "--allow-degraded",
           "--overwrite"]
    t = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.monotonic() - t
    with open(os.path.join(out, f"{name}.log"), "w") as f:
        f.write(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    row = {"name": name, "args": args, "exit": proc.returncode, "wall_s": round(wall, 1)}
    report_path = os.path.join(run_dir, "report.json")
    if proc.returncode == 0 and os.path.exists(report_path):
        with open(report_path) as f:
            report = json.load(f)
        first = next(iter(report["metrics"].values()))
        key = "accuracy" if first["task"] == "classification" else "mse"
        row.update(metric=key, values={k: first[key].get(k) for k in RUNTIMES if k in first[key]},
                   status=report["status"], failures=[x["check"] for x in report["failures"]],
                   stages=report.get("stage_seconds", {}), files=report["files"], gzip=report["gzip_bytes"],
                   data=report["data"])
    else:
        row["error"] = (proc.stderr.strip().splitlines() or ["?"])[-1][:160]
    return row


def _fmt(v, key):
    if v is None:
        return "n/a"
    return f"{v:.3f}" if key == "accuracy" else f"{v:.4g}"


def _gzip(row: dict, out: str) -> dict:
    """gzip sizes (rows written before they were recorded: from the run's report.json)."""
    if "gzip" in row:
        return row["gzip"]
    path = os.path.join(out, "runs", row["name"], "report.json")
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f).get("gzip_bytes", {})
    return {}


def table(rows: list[dict], out: str = "") -> str:
    """Stage seconds as the report has them; "other" is the rest of the wall time (interpreter and TensorFlow
    start, data loading, model building, the export stage); sizes in KB, the int8 .tflite also gzipped (what pruning and clustering shrink)."""
    cols = [r for r in RUNTIMES if any(r in row.get("values", {}) for row in rows)]
    head = ["row", "command (`edgeml train ...`)", "wall s", "other / train / optimize / convert / evaluate s",
            "metric"] + [SHORT[c] for c in cols] + ["float .tflite KB", "int8 .tflite KB (gzip)", "int8 .onnx KB",
                                                     "status"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cmd = " ".join(a if not os.path.isabs(a) else os.path.basename(a) for a in row["args"])
        if "values" not in row:
            lines.append(f"| {row['name']} | `{cmd}` | {row['wall_s']:.0f} | | | " + " | ".join([""] * len(cols)) +
                         f" | | | | exit {row['exit']}: {row.get('error', '')} |")
            continue
        st = row["stages"]
        other = row["wall_s"] - sum(st.values())
        stages = " / ".join([f"{other:.0f}"] + [f"{st[k]:.0f}" if k in st else "-" for k in
                                                ("train", "optimize", "convert", "evaluate")])
        files, gz = row["files"], _gzip(row, out)
        kb = [f"{files[n] / 1024:.1f}" if n in files else "-" for n in
              ("model_float.tflite", "model_int8.tflite", "model_int8.onnx")]
        if "model_int8.tflite" in gz:
            kb[1] += f" ({gz['model_int8.tflite'] / 1024:.1f})"
        status = row["status"] + (f" ({', '.join(row['failures'])})" if row["failures"] else "")
        lines.append(f"| {row['name']} | `{cmd}` | {row['wall_s']:.0f} | {stages} | {row['metric']} | " +
                     " | ".join(_fmt(row["values"].get(c), row["metric"]) for c in cols) + " | " +
                     " | ".join(kb) + f" | {status} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="folder for runs, logs, generated data and results.jsonl")
    p.add_argument("--only", nargs="+", metavar="ROW", help="run only these rows (names as in the table)")
    p.add_argument("--redo", action="store_true", help="run rows again even if results.jsonl has them")
    p.add_argument("--table", action="store_true", help="print the table of finished rows and exit")
    p.add_argument("--list", action="store_true", help="list the row names and commands and exit")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    results_path = os.path.join(args.out, "results.jsonl")
    done = {}
    if os.path.exists(results_path):
        with open(results_path) as f:
            for line in f:
                row = json.loads(line)
                done[row["name"]] = row
    rows = matrix(make_datasets(os.path.join(args.out, "data")) if not args.table else
                  {k: k for k in ("shapes", "diabetes", "wine", "text")})
    if args.list:
        for name, cmd in rows:
            print(name, " ".join(cmd))
        return 0
    if args.only:
        unknown = set(args.only) - {n for n, _ in rows}
        if unknown:
            p.error(f"unknown rows: {', '.join(sorted(unknown))}")
        rows = [r for r in rows if r[0] in args.only]
    if not args.table:
        env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
        for name, cmd in rows:
            if name in done and not args.redo:
                continue
            print(f"[{time.strftime('%H:%M:%S')}] {name}: edgeml train {' '.join(cmd)}", flush=True)
            row = run_row(name, cmd, args.out, env)
            done[name] = row
            with open(results_path, "a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"    {row['wall_s']} s, exit {row['exit']}", flush=True)
    order = [n for n, _ in rows]
    print(table([done[n] for n in order if n in done], args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
