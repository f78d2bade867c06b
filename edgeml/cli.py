"""The `edgeml` command: `train`, `run`, `inspect`."""
from __future__ import annotations

import argparse
import sys

import numpy as np

from edgeml.errors import EdgeMLError


def _cmd_run(args) -> int:
    from edgeml.runtime import Interpreter
    it = Interpreter(args.model, rounding=args.rounding)
    detail = it.get_input_details()[0]
    if args.input:
        x = np.load(args.input)
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
    from edgeml.runtime import Interpreter
    it = Interpreter(args.model)
    g = it.graph
    plan = it.plan
    print(f"{args.model}: {len(g.ops)} ops, {len(g.tensors)} tensors, arena {it.arena_bytes} bytes")
    for d in it.get_input_details():
        print(f"  input  '{d['name']}' {d['dtype']} {d['shape'].tolist()} scale={d['scale']:.6g} zp={d['zero_point']}")
    for d in it.get_output_details():
        print(f"  output '{d['name']}' {d['dtype']} {d['shape'].tolist()} scale={d['scale']:.6g} zp={d['zero_point']}")
    total = 0
    for s in plan.steps:
        outs = ", ".join(f"{list(plan.shapes[t])}" for t in s.op.outputs)
        print(f"  {s.op.index:3d} {s.op.type:18s} -> {outs:24s} kernel {s.kernel:22s} MACs {s.macs}")
        total += s.macs
    print(f"  total MACs (element ops counted once per output): {total}")
    return 0


def _cmd_train(args) -> int:
    from edgeml.train.pipeline import TrainConfig, train
    cfg = TrainConfig(out=args.out, data=args.data, model=args.model, epochs=args.epochs, seed=args.seed,
                      batch_size=args.batch_size, prune=args.prune, qat=args.qat, cluster=args.cluster,
                      alpha=args.alpha, verbose=0 if args.quiet else None)
    train(cfg)
    print(f"wrote {args.out}/ (report.md, report.json, model_int8.tflite, model_int8.onnx, ...)")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="edgeml", description="Train, export and run small int8 models.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run a .tflite or .onnx model once on an input (.npy) or seeded random data")
    p.add_argument("model")
    p.add_argument("--input", help="a .npy file with the input array")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rounding", choices=["double", "single"], default="double")
    p.set_defaults(fn=_cmd_run)
    p = sub.add_parser("inspect", help="ops, shapes, kernels, MACs and arena size of a model")
    p.add_argument("model")
    p.set_defaults(fn=_cmd_inspect)
    p = sub.add_parser(
        "train", help="train a Keras model, optimize it, export verified int8 .tflite and .onnx with a report",
        description="Train on built-in or your data, optionally prune / quantization-aware train / cluster, then "
                    "export model_float.tflite, model_int8.tflite, model_int8.onnx and a report comparing Keras, "
                    "LiteRT, onnxruntime and edgeml on the test split. Output goes to --out only if the whole run "
                    "succeeds.")
    p.add_argument("--data", default="digits",
                   help="'digits' (scikit-learn's handwritten digits, the default), an image folder with one "
                        "sub-folder per class, a .npz with arrays x and y, or a .csv with a label column")
    p.add_argument("--model", default="cnn",
                   help="mlp, cnn (default), ds_cnn, resnet8, mobilenet_v1, autoencoder, lstm, gru, rnn, or a saved "
                        "Keras model file")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default 15; early stopping applies)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0, help="seed for the data split, initialization and shuffling")
    p.add_argument("--prune", type=float, metavar="SPARSITY", help="magnitude pruning to this final sparsity")
    p.add_argument("--qat", action="store_true", help="quantization-aware training")
    p.add_argument("--cluster", type=int, metavar="N", help="weight clustering to N centroids, then fine-tuning")
    p.add_argument("--alpha", type=float, default=0.25, help="width multiplier of mobilenet_v1")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--out", required=True, help="output folder (replaced only when the run succeeds)")
    p.set_defaults(fn=_cmd_train)
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except EdgeMLError as exc:
        print(f"edgeml: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"edgeml: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
