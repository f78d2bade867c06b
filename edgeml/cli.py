"""The `edgeml` command: `train`, `run`, `inspect`, `bench`, `compile`.

TensorFlow and every peer runtime are imported only by the subcommand that needs them (inside the modules it
calls), so `edgeml bench` and `edgeml run` work with the runtime alone.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from edgeml.bench import report
from edgeml.bench.inspect import inspect_report
from edgeml.bench.measure import BenchOptions, read_npy, run_bench
from edgeml.bench.runners import PEERS
from edgeml.codegen import TARGETS, compile_model
from edgeml.codegen.generate import default_name
from edgeml.codegen.report import flash_ram, text_report
from edgeml.errors import EdgeMLError, ModelFormatError
from edgeml.runtime import Interpreter
from edgeml.train.console import SHOW_NATIVE_LOGS_ENV
from edgeml.train.pipeline import DegradedModelError, TrainConfig, train


DEGRADED_EXIT = 3          # `edgeml train`: the output was written but the guard rails failed


class UsageError(Exception):
    """A bad command line; main() prints it as one sentence and returns 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")


def _count(minimum: int):
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {v}")
        return v
    return parse


def _seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not v >= 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds >= 0, got {text}")
    return v


def _peers(text: str) -> list:
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return list(PEERS)
    unknown = [n for n in names if n not in PEERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown runtime {', '.join(map(repr, unknown)) or repr(text)}; "
                                         f"choose from {', '.join(PEERS)} or all")
    return list(dict.fromkeys(names))


def _cmd_run(args) -> int:
    it = Interpreter(args.model, rounding=args.rounding)
    detail = it.get_input_details()[0]
    if args.input:
        x = read_npy(args.input)
    else:
        rng = np.random.default_rng(args.seed)
        shape = tuple(detail["shape"])
        if detail["dtype"] in (np.int8, np.uint8):
            info = np.iinfo(detail["dtype"])
            x = rng.integers(info.min, info.max + 1, size=shape).astype(detail["dtype"])
        else:
            x = rng.standard_normal(shape).astype(np.float32)
    y = it.run(x)
    outs = y if isinstance(y, list) else [y]
    for d, out in zip(it.get_output_details(), outs):
        print(f"output '{d['name']}' {out.dtype} {list(out.shape)}:")
        print(np.array2string(out, threshold=64, max_line_width=110))
    print(f"arena: {it.arena_bytes} bytes")
    return 0


def _cmd_inspect(args) -> int:
    if not os.path.isfile(args.model):
        raise ModelFormatError(f"model file '{args.model}' does not exist")
    print(inspect_report(Interpreter(args.model), args.model))
    return 0


def _cmd_bench(args) -> int:
    for flag, path in (("--json", args.json), ("--csv", args.csv), ("--plot", args.plot)):
        folder = os.path.dirname(os.path.abspath(path)) if path else None
        if folder and not os.path.isdir(folder):     # checked before measuring, not after
            raise EdgeMLError(f"cannot write {flag} {path}: folder '{folder}' does not exist")
    if args.plot:
        report.check_plot_available()
    opts = BenchOptions(model=args.model, num_runs=args.num_runs, warmup_runs=args.warmup_runs,
                        min_secs=args.min_secs, max_secs=args.max_secs, num_threads=args.num_threads,
                        enable_op_profiling=args.enable_op_profiling, inputs=args.input or [], seed=args.seed,
                        compare=args.compare or [], tflite=args.tflite, onnx=args.onnx, sparse=args.sparse)
    bar = None if args.quiet or not sys.stderr.isatty() else report.ProgressBar(
        args.num_runs, args.min_secs, args.max_secs)
    notes = []
    try:
        result = run_bench(opts, progress=bar, notes=notes)
    except BaseException:
        if bar is not None:
            bar.close(finished=False)
        raise
    if bar is not None:
        bar.close()
    result["notes"] = notes
    if args.json:
        report.write_json(result, args.json)
    if args.csv:
        report.write_csv(result, args.csv)
    if args.plot:
        report.write_plot(result, args.plot)
    if not args.quiet:
        print(report.text_report(result, notes))
        for what, path in (("JSON", args.json), ("CSV", args.csv), ("plot", args.plot)):
            if path:
                print(f"wrote {what} to {path}")
    return 0


def _cmd_compile(args) -> int:
    name = args.name or default_name(args.model)
    compiled = compile_model(args.model, args.out, target=args.target, name=name, isa=args.isa,
                             rounding=args.rounding)
    print(f"wrote {compiled.out_dir}/{name}.h, {name}.c, main.c, Makefile and include/ ({compiled.target}, "
          f"{compiled.isa} kernels): arena {compiled.arena_bytes} bytes, weights {compiled.weight_bytes} bytes; "
          f"build the example with: make -C {compiled.out_dir}")
    if args.report:
        result = flash_ram(compiled, args.model)
        path = compiled.out_dir / f"{name}_report.json"
        report.write_json(result, str(path))
        print(text_report(result))
        print(f"wrote JSON to {path}")
    return 0


def _fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 < v < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {text}")
    return v


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return v


def _image_size(text: str) -> tuple:
    parts = text.lower().replace("x", ",").split(",")
    try:
        size = tuple(int(p) for p in parts if p.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH (e.g. 32x32) or one number, got {text!r}") from None
    size = size * 2 if len(size) == 1 else size
    if len(size) != 2 or min(size) < 1:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH with positive numbers, got {text!r}")
    return size


def _cmd_train(args) -> int:
    if args.verbose:
        os.environ[SHOW_NATIVE_LOGS_ENV] = "1"
    verbose = 3 if args.verbose else (1 if args.quiet else 2)
    cfg = TrainConfig(out=args.out, data=args.data, model=args.model, task=args.task, epochs=args.epochs,
                      batch_size=args.batch_size, learning_rate=args.learning_rate, optimizer=args.optimizer,
                      patience=args.patience, validation_split=args.validation_split, test_split=args.test_split,
                      label_column=args.label_column, image_size=args.image_size, color_mode=args.color_mode,
                      augment=args.augment, seed=args.seed, prune=args.prune, prune_block=args.prune_block, qat=args.qat, cluster=args.cluster,
                      finetune_epochs=args.finetune_epochs, alpha=args.alpha, allow_degraded=args.allow_degraded,
                      verbose=verbose, overwrite=args.overwrite, **_beyond_one_machine(args))
    try:
        train(cfg)
    except DegradedModelError as exc:
        for f in exc.result.failures:
            print(f"edgeml: FAILED {f['check']}: {f['message']}; likely cause: {f['cause']}", file=sys.stderr)
        print(f"edgeml: the output is in {args.out}/ (report.md says the same); exit status {DEGRADED_EXIT} "
              "(--allow-degraded exits 0)", file=sys.stderr)
        return DEGRADED_EXIT
    return 0


def _add_train_parser(sub):
    p = sub.add_parser(
        "train", help="train a Keras model, optimize it, export verified int8 .tflite and .onnx with a report",
        description="Train on built-in or your data, optionally prune / cluster / quantization-aware train, then "
                    "export model_float.tflite, model_int8.tflite, model_int8.onnx and a report comparing Keras, "
                    "LiteRT, onnxruntime and edgeml on the test split. Output goes to --out only if the whole run "
                    f"succeeds. Exit status 0, 2 for bad arguments or data, {DEGRADED_EXIT} when the model is at "
                    "chance level or int8 lost more than 2 points (unless --allow-degraded).")
    g = p.add_argument_group("data")
    g.add_argument("--data", default="digits",
                   help="'digits' (scikit-learn's handwritten digits, the default), an image folder with one "
                        "sub-folder per class, a .npz with arrays x and y (x_<input>, y_<output> for several), a "
                        ".csv with a label column, or (always streamed) a folder of .npz shards or .tfrecord files")
    g.add_argument("--task", choices=["auto", "classification", "regression"], default="auto",
                   help="how labels are read (auto: class names / whole numbers are classes, other numbers values)")
    g.add_argument("--label-column", metavar="NAME", help="the CSV column with the label (default: label, class, "
                                                          "target, else the last column)")
    g.add_argument("--image-size", type=_image_size, metavar="HxW",
                   help="size image folders are resized to (default: the model's input, else 32x32)")
    g.add_argument("--color-mode", choices=["grayscale", "rgb", "rgba"],
                   help="colour mode of image folders (default: the model's input channels, else rgb)")
    g.add_argument("--validation-split", type=_fraction, default=0.15, metavar="F",
                   help="fraction held out to validate (0.15)")
    g.add_argument("--test-split", type=_fraction, default=0.15, metavar="F", help="fraction held out to test (0.15)")
    g = p.add_argument_group("model and training")
    g.add_argument("--model", default="cnn",
                   help="mlp, cnn (default), ds_cnn, resnet8, mobilenet_v1, autoencoder, lstm, gru, rnn, transformer, "
                        "or a saved Keras model (.keras / .h5 from Keras 3 or tf_keras, a tf_keras SavedModel folder)")
    g.add_argument("--epochs", type=_count(1), default=None,
                   help="most training epochs (default 15; early stopping keeps the best)")
    g.add_argument("--batch-size", type=_count(1), default=32)
    g.add_argument("--learning-rate", type=_positive, metavar="RATE",
                   help="the optimizer's learning rate (default: its Keras default, 0.001 for adam)")
    g.add_argument("--optimizer", choices=["adam", "adamw", "sgd", "rmsprop", "nadam"], default="adam")
    g.add_argument("--patience", type=_count(1), default=5, help="epochs without improvement before stopping (5)")
    g.add_argument("--augment", nargs="?", const=True, default=False, metavar="LIST",
                   help="augment training inputs: shift,rotate,zoom,flip,noise (alone: shift,rotate,zoom for "
                        "images, noise otherwise)")
    g.add_argument("--alpha", type=_positive, default=0.25, help="width multiplier of mobilenet_v1")
    g.add_argument("--seed", type=int, default=0, help="seed for the data split, initialization and shuffling")
    g = p.add_argument_group("optimization (tensorflow-model-optimization, each a fine-tune after training)")
    g.add_argument("--prune", type=_fraction, metavar="SPARSITY", help="magnitude pruning to this final sparsity")
    g.add_argument("--prune-block", default="16x4", metavar="OUTxIN",
                   help="what --prune zeroes: whole blocks of OUT output x IN input channels of Conv2D / Dense "
                        "kernels (default 16x4: the block edgeml's VNNI int8 kernel skips in one step, so pruned "
                        "layers run faster; multiples such as 32x4 or 16x8 work too; DepthwiseConv2D stays dense), "
                        "or 1x1 (single weights of every prunable layer: smaller files, no speedup)")
    g.add_argument("--cluster", type=_count(2), metavar="N",
                   help="weight clustering to N centroids per kernel (sparsity-preserving after --prune)")
    g.add_argument("--qat", action="store_true",
                   help="quantization-aware training (pruning- / cluster-preserving after --prune / --cluster)")
    g.add_argument("--finetune-epochs", type=_count(1), default=None, metavar="N",
                   help="epochs of each fine-tune (default 3; pruning: ceil(3.5 / (1 - SPARSITY)), 14 at 0.75)")
    g = p.add_argument_group("output")
    g.add_argument("--out", required=True, help="output folder (replaced only when the run succeeds)")
    g.add_argument("--overwrite", action="store_true",
                   help="replace --out even if it is a non-empty folder edgeml did not write")
    g.add_argument("--allow-degraded", action="store_true",
                   help=f"exit 0 even when the guard rails fail (they are still reported), instead of {DEGRADED_EXIT}")
    g.add_argument("--quiet", action="store_true", help="stage lines and the summary only (no progress)")
    g.add_argument("--verbose", action="store_true", help="also TensorFlow's own log lines and warnings")
    g = p.add_argument_group("beyond one machine")
    g.add_argument("--resume", action="store_true",
                   help="continue a killed run (same --out and options) from its last completed epoch")
    g.add_argument("--distribute", choices=["mirrored", "multiworker"],
                   help="train under tf.distribute: mirrored (this host's devices) or multiworker (the cluster in "
                        "TF_CONFIG; run the same command on every worker, the chief writes --out); --batch-size "
                        "is the global batch")
    g.add_argument("--stream", action="store_true",
                   help="read --data through tf.data pipelines, never all in memory (image folders, .csv, .npz "
                        "files or folders of .npz shards, .tfrecord files); for data larger than memory")
    p.set_defaults(fn=_cmd_train)


def _beyond_one_machine(args) -> dict:
    return {"resume": args.resume, "distribute": args.distribute, "stream": args.stream}


def main(argv=None) -> int:
    parser = _Parser(prog="edgeml", description="Train, export and run small int8 models.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run a .tflite or .onnx model once on an input (.npy) or seeded random data")
    p.add_argument("model")
    p.add_argument("--input", help="a .npy file with the input array")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rounding", choices=["double", "single"], default="double")
    p.set_defaults(fn=_cmd_run)
    p = sub.add_parser("inspect", help="ops, tensors, shapes, quantization, MACs per op and the arena plan",
                       description="What to check before deploying a model: its inputs and outputs, every op "
                                   "with its kernel, shapes and MACs, every tensor with its quantization, and "
                                   "the arena plan (offset, size and lifetime of each buffer).")
    p.add_argument("model")
    p.set_defaults(fn=_cmd_inspect)
    p = sub.add_parser(
        "bench", help="latency, memory and per-op profile of a model, side by side with other runtimes",
        description="Times edgeml on a model (flags as in LiteRT's benchmark_model); with --compare the peers run "
                    "the same inputs, alternating run by run, and their outputs are checked against edgeml's. "
                    "Timed runs stop at --max_secs, or once both --num_runs and --min_secs are reached.")
    p.add_argument("model", help="a .tflite or .onnx model")
    p.add_argument("--num_runs", type=_count(1), default=50, help="fewest timed runs (default 50)")
    p.add_argument("--warmup_runs", type=_count(0), default=1, help="untimed runs first (default 1)")
    p.add_argument("--min_secs", type=_seconds, default=1.0, help="fewest seconds of timed runs (default 1)")
    p.add_argument("--max_secs", type=_seconds, default=150.0, help="most seconds of timed runs (default 150)")
    p.add_argument("--num_threads", type=_count(1), default=1, help="threads for each runtime (default 1)")
    p.add_argument("--enable_op_profiling", action="store_true", help="per-op time table")
    p.add_argument("--sparse", choices=["auto", "off", "on"], default="auto",
                   help="block-sparse int8 kernels for pruned layers: by density (auto), never (off: the dense "
                        "kernels, to see the gain), wherever they apply (on)")
    p.add_argument("--input", action="append", metavar="FILE.npy",
                   help="input array (repeat once per model input; default: seeded random data over the "
                        "input's range)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random input (default 0)")
    p.add_argument("--compare", type=_peers, metavar="RUNTIMES",
                   help="comma-separated peers: litert (XNNPACK), litert_ref (reference kernels), tflm, "
                        "onnxruntime, or all; one that is not installed or cannot run the model is listed absent")
    p.add_argument("--tflite", metavar="FILE", help="the .tflite model the LiteRT / TFLite Micro peers run for an "
                                                    ".onnx model (default: a sibling file with the same stem)")
    p.add_argument("--onnx", metavar="FILE", help="the .onnx model onnxruntime runs for a .tflite model "
                                                  "(default: a sibling file with the same stem)")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--csv", metavar="FILE", help="write every timed run (runtime, run, latency_us) as CSV")
    p.add_argument("--plot", metavar="FILE.png", help="latency histogram and per-run trace (needs matplotlib)")
    p.add_argument("--quiet", action="store_true", help="print nothing (files are still written)")
    p.set_defaults(fn=_cmd_bench)
    p = sub.add_parser(
        "compile", help="write a model as standalone C (no Python, no malloc) with a Makefile and an example program",
        description="Loads, validates and plans the model as the Interpreter does, then writes NAME.h / NAME.c "
                    "(weights as const arrays, one static arena, NAME_invoke() as a straight sequence of kernel "
                    "calls), the kernel headers, main.c and a Makefile building NAME_main (./NAME_main IN OUT [RUNS]).")
    p.add_argument("model", help="a .tflite or .onnx model")
    p.add_argument("--out", required=True, help="output folder (created; files in it are overwritten)")
    p.add_argument("--target", choices=TARGETS, default="x86-64",
                   help="x86-64 (SIMD kernels of --isa, checked at the first invoke), aarch64 (NEON) or generic "
                        "(scalar kernels only, any C99 compiler)")
    p.add_argument("--isa", choices=["avx2", "avxvnni", "avx512", "avx512vnni", "scalar", "dispatch"],
                   help="x86-64 only: the instruction-set level weights are packed for (default: this CPU's), or "
                        "dispatch: a plan per level (avx512vnni, avx512, avx2, scalar), the best one the CPU runs "
                        "taken at the first call")
    p.add_argument("--name", help="C prefix of the generated API and file names (default: the model file's stem)")
    p.add_argument("--rounding", choices=["double", "single"], default="double")
    p.add_argument("--report", action="store_true",
                   help="flash and RAM of the generated code beside TFLite Micro's arena (text, and NAME_report.json)")
    p.set_defaults(fn=_cmd_compile)
    _add_train_parser(sub)
    try:
        args = parser.parse_args(argv)
        return args.fn(args)
    except UsageError as exc:
        print(f"{exc}", file=sys.stderr)
        return 2
    except EdgeMLError as exc:
        print(f"edgeml: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f" '{exc.filename}'" if exc.filename else ""
        print(f"edgeml: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
