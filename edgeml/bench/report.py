"""What `edgeml bench` prints and writes: the text report, --json, --csv, --plot, and the progress bar."""
from __future__ import annotations

import csv
import importlib.util
import json
import os
import sys
import time

import numpy as np

from edgeml.errors import EdgeMLError

STAT_KEYS = ("min", "median", "mean", "p90", "p99", "max", "std")


def human_bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def human_count(n: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return str(n)


def fmt_us(v) -> str:
    if v is None:
        return "n/a"
    return f"{v:.2f}" if v < 10 else (f"{v:.1f}" if v < 1000 else f"{v:.0f}")


def text_report(r: dict, notes: list) -> str:
    lines = [f"edgeml bench: {r['model']}"]
    add = lines.append
    add(f"  model file       {human_bytes(r['file_bytes'])} ({r['file_bytes']} bytes)")
    add(f"  parameters       {r['params']} ({human_bytes(r['param_bytes'])} of weights and biases)")
    add(f"  MACs             {human_count(r['macs'])} ({r['macs']} multiply-accumulates per inference)")
    add(f"  arena            {human_bytes(r['arena_bytes'])} ({r['arena_bytes']} bytes for activations and scratch)")
    add(f"  peak RSS         {human_bytes(r['peak_rss_bytes'])} (process high-water mark after loading and running "
        f"edgeml; {human_bytes(r['peak_rss_before_load_bytes'])} before loading)")
    add(f"  load             {r['load_us'] / 1e3:.2f} ms (parse, validate, pack weights, plan the arena)")
    add(f"  first inference  {fmt_us(r['first_us'])} µs")
    add(f"  timed runs       {r['num_runs']} after {r['warmup_runs']} warm-up, {r['num_threads']} thread(s), "
        f"input {r['input_source']}")
    s = r["latency_us"]
    add("  latency µs       " + "".join(f"{k:>10s}" for k in STAT_KEYS))
    add("                   " + "".join(f"{fmt_us(s[k]):>10s}" for k in STAT_KEYS))
    add(f"  throughput       {r['inferences_per_s']:.1f} inferences/s (1 / mean latency)")
    if "ops" in r:
        p = r["profile"]
        add("")
        add(f"per-op profile ({p['runs']} profiled runs, medians per inference: the ops sum to "
            f"{fmt_us(p['ops_sum_us'])} µs of {fmt_us(p['run_us'])} µs per profiled run; unprofiled runs in "
            f"between took {fmt_us(p['plain_us'])} µs)")
        add(f"  {'op':22s} {'count':>5s} {'total µs':>10s} {'%':>6s} {'MACs':>10s} {'GMAC/s':>8s}")
        for o in r["ops"]:
            g = f"{o['gmac_per_s']:.2f}" if o["gmac_per_s"] else "-"
            add(f"  {o['op']:22s} {o['count']:5d} {fmt_us(o['us']):>10s} {o['percent']:6.1f} "
                f"{o['macs']:10d} {g:>8s}")
    if r["compare"] or r["absent"]:
        add("")
        rounds = r["num_runs"]
        add(f"compare (same inputs; runtimes alternate run by run, {rounds} rounds)")
        add(f"  {'runtime':26s} {'median µs':>10s} {'vs edgeml':>10s} {'threads':>7s}  agreement with edgeml")
        add(f"  {'edgeml':26s} {fmt_us(s['median']):>10s} {'1.00x':>10s} {r['num_threads']:7d}  -")
        for c in r["compare"]:
            if c["bit_exact"]:
                agree = "bit-exact"
            elif c["max_abs_diff"] is None:
                agree = f"not comparable: {c['compared']}"
            else:
                agree = f"max abs diff {c['max_abs_diff']:.6g}"
                if c["compared"] != "as stored":
                    agree += f" ({c['compared']})"
            if c.get("note"):
                agree += f"; {c['note']}"
            ratio = f"{c['ratio_to_edgeml']:.2f}x" if c["ratio_to_edgeml"] is not None else "n/a"
            add(f"  {c['label']:26s} {fmt_us(c['median_us']):>10s} {ratio:>10s} {c['num_threads']:7d}  {agree}")
        for a in r["absent"]:
            add(f"  {a['label']:26s} {'absent':>10s}  {a['reason']}")
    for n in notes:
        add(f"note: {n}")
    return "\n".join(lines)


def write_json(r: dict, path: str):
    """The summary; the per-run latencies (hundreds of thousands for a fast model) go to --csv instead."""
    with open(path, "w") as f:
        json.dump({k: v for k, v in r.items() if k != "runs_us"}, f, indent=1)
        f.write("\n")


def write_csv(r: dict, path: str):
    """One row per timed run: runtime, run (0-based, in round order), latency_us."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["runtime", "run", "latency_us"])
        for runtime, runs in r["runs_us"].items():
            for k, v in enumerate(runs):
                w.writerow([runtime, k, f"{v:.3f}"])


def check_plot_available():
    """--plot needs matplotlib; checked before measuring so a missing package fails fast."""
    if importlib.util.find_spec("matplotlib") is None:
        raise EdgeMLError("--plot needs matplotlib, which is not installed (pip install matplotlib)")


def write_plot(r: dict, path: str):
    """Latency histogram (left) and per-run trace (right) of every runtime; matplotlib is imported here only."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (hist, trace) = plt.subplots(1, 2, figsize=(11, 4))
    every = np.concatenate([np.asarray(v, dtype=np.float64) for v in r["runs_us"].values()])
    many = len(r["runs_us"]) > 1
    lo, hi = max(float(every.min()), 1e-3), max(float(every.max()), 1e-3)
    # one set of bins for all runtimes; log-spaced when the runtimes span decades
    bins = np.geomspace(lo, hi * 1.0001, 80) if many else 50
    labels = {"edgeml": "edgeml"}
    labels.update({c["runtime"]: c["label"] for c in r.get("compare", [])})
    for runtime, runs in r["runs_us"].items():
        hist.hist(runs, bins=bins, alpha=0.6, label=labels.get(runtime, runtime))
        trace.plot(runs, linewidth=0.7, label=labels.get(runtime, runtime))
    hist.set_xlabel("latency (µs)")
    hist.set_ylabel("runs")
    hist.set_title("latency histogram")
    trace.set_xlabel("run")
    trace.set_ylabel("latency (µs)")
    trace.set_title("per-run trace")
    if many:
        hist.set_xscale("log")
        trace.set_yscale("log")
    hist.legend(fontsize=8)
    trace.legend(fontsize=8)
    fig.suptitle(os.path.basename(r["model"]))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


class ProgressBar:
    """A one-line bar on `stream` that appears only once the timed loop has run for `after` seconds."""

    def __init__(self, num_runs: int, min_secs: float, max_secs: float, stream=None, after: float = 1.0,
                 width: int = 30):
        self.num_runs, self.min_secs, self.max_secs = num_runs, min_secs, max_secs
        self.stream = sys.stderr if stream is None else stream
        self.after, self.width = after, width
        self.shown = False
        self._last = 0.0
        self._state = (0.0, 0)

    def fraction(self, elapsed: float, rounds: int) -> float:
        # the loop ends at max_secs or once both num_runs and min_secs are reached
        need = min(max(rounds / max(self.num_runs, 1), 0.0), 1.0)
        if self.min_secs > 0:
            need = min(need, min(elapsed / self.min_secs, 1.0))
        return max(need, min(elapsed / self.max_secs, 1.0) if self.max_secs > 0 else 0.0)

    def __call__(self, elapsed: float, rounds: int):
        self._state = (elapsed, rounds)
        if elapsed < self.after:
            return
        now = time.monotonic()
        if self.shown and now - self._last < 0.1:
            return
        self._last = now
        self.shown = True
        self._draw(self.fraction(elapsed, rounds), elapsed, rounds)

    def _draw(self, frac: float, elapsed: float, rounds: int):
        filled = int(round(frac * self.width))
        self.stream.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {100 * frac:3.0f}% "
                          f"{rounds} runs {elapsed:.1f} s")
        self.stream.flush()

    def close(self, finished: bool = True):
        if self.shown:
            if finished:
                self._draw(1.0, *self._state)
            self.stream.write("\n")
            self.stream.flush()
