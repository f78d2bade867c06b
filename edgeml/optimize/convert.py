"""Keras model -> .tflite, float or full int8, with the TFLite converter running in a child process.

TF 2.21's int8 calibration of GRU / SimpleRNN WHILE loops segfaults (TOOLCHAIN.md), which would kill whatever
process called it, so a model with recurrent layers is never converted in the caller: it is saved to a temporary
directory and `python -m edgeml.optimize.convert` loads, rebuilds and converts it.  Other models convert in the
calling process (a child costs a TensorFlow import and the converter's first-use set-up, 20-60 s on a busy
machine, for a conversion of a few seconds), one at a time.  When that child dies or fails on a model
with recurrent layers, a second child converts the same model with `unroll=True` recurrent layers, which lowers
GRU / SimpleRNN / LSTM to plain FULLY_CONNECTED / ADD / MUL / LOGISTIC / TANH / SPLIT ops.

Every model is rebuilt with a batch-1 Input before conversion: RNNs need a static batch to convert at all, and
batch 1 keeps SHAPE / STRIDED_SLICE / PACK bookkeeping out of every graph.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np

import tflite

from converters.tflite import OPERATOR_NAMES
from edgeml.errors import TrainingError
from edgeml.optimize.cluster import strip_clustering
from edgeml.optimize.keras_model import require_tf_keras
from edgeml.optimize.prune import strip_pruning
from edgeml.train import keras_env
from edgeml.train.layers import register_layers

MAX_REPRESENTATIVE_SAMPLES = 200
RECURRENT_LAYERS = ("LSTM", "GRU", "SimpleRNN")
FLOAT_RETRIES = 1
QAT_LAYER_CLASSES = ("QuantizeWrapper", "QuantizeWrapperV2", "QuantizeLayer", "QuantizeAnnotate")
_ERROR_TAG = "edgeml-convert-error: "
_NOTE_TAG = "edgeml-convert-note: "
_REPO_ROOT = str(Path(__file__).resolve().parents[2])
_IN_PROCESS = threading.Lock()     # Keras cloning and the converter are not for concurrent threads


# ---------------------------------------------------------------------------------------------- model checks

def is_quantize_aware(model) -> bool:
    """True when the model carries tfmot fake-quant wrappers (a quantize_aware / quantize_model result)."""
    return any(type(layer).__name__ in QAT_LAYER_CLASSES for layer in model.layers)


def _inner_layers(layer):
    """The layer itself, then what wrappers (Bidirectional, TimeDistributed, tfmot wrappers) hold."""
    yield layer
    for attr in ("layer", "forward_layer", "backward_layer"):
        inner = getattr(layer, attr, None)
        if inner is not None and inner is not layer and hasattr(inner, "get_config"):
            yield from _inner_layers(inner)


def recurrent_layer_names(model) -> list[str]:
    """Names of the LSTM / GRU / SimpleRNN layers, including ones inside Bidirectional or TimeDistributed."""
    names = []
    for layer in model.layers:
        if any(type(inner).__name__ in RECURRENT_LAYERS for inner in _inner_layers(layer)):
            names.append(layer.name)
    return names


def _unrolled_config(config: dict) -> dict:
    """A layer config with unroll=True on every recurrent layer config it holds (Bidirectional nests them).

    implementation=1 (one matmul per gate) as well: the fused-gate form slices its matmul with SPLIT / SPLIT_V,
    and when a slice is dead (GRU reset_after=False, or a zero recurrent bias at the first step) TF 2.21's
    quantizer leaves that split in float at random; per-gate matmuls have no split to leave behind.
    """
    config = dict(config)
    if "unroll" in config and ("units" in config or "cell" in config):
        config["unroll"] = True
        if "implementation" in config:
            config["implementation"] = 1
    for key in ("layer", "backward_layer"):
        nested = config.get(key)
        if isinstance(nested, dict) and isinstance(nested.get("config"), dict):
            config[key] = {**nested, "config": _unrolled_config(nested["config"])}
    return config


def rebuild_fixed_batch(model, *, batch_size: int = 1, unroll: bool = False):
    """Clone of `model` whose Inputs have a fixed batch size, optionally with unrolled RNNs; weights copied.

    Call inside `tfmot.quantization.keras.quantize_scope()` for QAT models (their wrappers are custom classes).
    """
    _, keras = keras_env()
    inputs = [keras.Input(batch_shape=(batch_size, *tuple(t.shape)[1:]), dtype=t.dtype, name=t.name.split(":")[0])
              for t in model.inputs]

    def clone_layer(layer):
        config = layer.get_config()
        if unroll:
            config = _unrolled_config(config)
        return layer.__class__.from_config(config)

    clone = keras.models.clone_model(model, input_tensors=inputs if len(inputs) > 1 else inputs[0],
                                     clone_function=clone_layer)
    clone.set_weights(model.get_weights())
    return clone


def _strip_training_wrappers(model, notes: list):
    """Removes pruning / clustering wrappers, which would otherwise convert as mask and centroid ops."""
    names = {type(layer).__name__ for layer in model.layers}
    if "PruneLowMagnitude" in names:
        model = strip_pruning(model)
        notes.append("removed the pruning wrappers (strip_pruning) before conversion")
    if any(name.startswith("ClusterWeights") for name in names):
        model = strip_clustering(model)
        notes.append("removed the clustering wrappers (strip_clustering) before conversion")
    return model


def _save(model, directory: str, qat: bool) -> str:
    """Saves to .h5 (fast, loads with quantize_scope), falling back to a SavedModel directory."""
    path = os.path.join(directory, "model.h5")
    try:
        with _custom_object_scope(qat), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*HDF5 file.*")
            model.save(path, save_format="h5", include_optimizer=False)
        return path
    except Exception:  # noqa: BLE001 - custom layers without get_config cannot go to .h5; SavedModel can
        path = os.path.join(directory, "saved_model")
        model.save(path, save_format="tf", include_optimizer=False)
        return path


# ---------------------------------------------------------------------------------------------- parent side

def to_tflite(model, out_path, *, int8: bool, representative_x: np.ndarray | None = None,
              timeout: float = 600, float_path=None) -> dict:
    """Converts a tf_keras model to a batch-1 .tflite file; returns {"path", "bytes", "route", "notes"}.

    int8=True gives a full-integer model (int8 input and output, TFLITE_BUILTINS_INT8 only) calibrated on up to
    200 samples of `representative_x` (required, also for quantization-aware models): an array, or a list with
    one array per model input.  Integer inputs (token ids) stay int32 in the file.  `route` is "direct",
    or "unrolled" when the direct conversion crashed or failed and the recurrent layers were unrolled instead;
    `notes` says why.  `timeout` bounds each conversion attempt in seconds.

    float_path (with int8=True): also writes the float .tflite of the same model there, in the same converter
    process for a recurrent model (one TensorFlow start instead of two); its result dict is under "float".
    """
    require_tf_keras(model, "to_tflite")
    notes: list[str] = []
    model = _strip_training_wrappers(model, notes)
    qat = is_quantize_aware(model)
    out_path = os.fspath(out_path)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)

    reps = None
    if int8:
        if representative_x is None:
            raise TrainingError("to_tflite int8 needs representative_x (a few hundred training inputs) to "
                                "calibrate activation ranges.")
        reps = representative_x if isinstance(representative_x, (list, tuple)) else [representative_x]
        if len(reps) != len(model.inputs):
            raise TrainingError(f"to_tflite int8 calibration needs one array per model input: the model has "
                                f"{len(model.inputs)}, representative_x holds {len(reps)}.")
        reps = [_representative(r, t) for r, t in zip(reps, model.inputs)]
    if not recurrent_layer_names(model):
        float_result = None
        with _IN_PROCESS:
            if float_path and int8:
                float_notes = list(notes)
                _convert_here(model, os.fspath(float_path), int8=False, reps=None, qat=qat, notes=float_notes)
                float_result = _result(os.fspath(float_path), "direct", float_notes)
            _convert_here(model, out_path, int8=int8, reps=reps, qat=qat, notes=notes)
        return _result(out_path, "direct", notes, float_result)

    with tempfile.TemporaryDirectory(prefix="edgeml-convert-") as tmp:
        model_path = _save(model, tmp, qat)
        rep_path = None
        if int8:
            rep_path = os.path.join(tmp, "representative.npz")
            np.savez(rep_path, **{f"x{i}": r for i, r in enumerate(reps)})

        def attempt(unroll: bool, float_out=None):
            return _convert_in_child(model_path, out_path, tmp, int8=int8, rep_path=rep_path, unroll=unroll,
                                     qat=qat, timeout=timeout, float_out=float_out)

        float_out = os.fspath(float_path) if float_path and int8 else None
        if float_out and os.path.exists(float_out):
            os.remove(float_out)
        ok, why, child_notes = attempt(unroll=False, float_out=float_out)
        float_result = None
        if float_out:       # written before the int8 conversion began, or else converted on its own
            float_result = _result(float_out, "direct", list(notes)) if os.path.exists(float_out) else \
                to_tflite(model, float_out, int8=False, timeout=timeout)
        if ok:
            return _result(out_path, "direct", notes + child_notes, float_result)
        recurrent = recurrent_layer_names(model)
        notes.append(f"direct conversion {why}; converted again with unroll=True on {', '.join(recurrent)}, "
                     f"which lowers the recurrent layers to plain FULLY_CONNECTED / ADD / SUB / MUL / LOGISTIC / "
                     f"TANH ops")
        ok, why_unrolled, child_notes = attempt(unroll=True)
        if ok:
            return _result(out_path, "unrolled", notes + child_notes, float_result)
        raise TrainingError(f"TFLite conversion failed directly ({why}) and with unrolled recurrent layers "
                            f"({why_unrolled}).")


def _representative(x, tensor) -> np.ndarray:
    """Up to MAX_REPRESENTATIVE_SAMPLES samples in the input's dtype (int32 token ids stay integers)."""
    dtype = np.int32 if tensor.dtype.is_integer else np.float32
    rep = np.asarray(x)[:MAX_REPRESENTATIVE_SAMPLES].astype(dtype)
    if rep.ndim == 0 or len(rep) == 0:
        raise TrainingError("to_tflite int8 needs at least one representative sample in representative_x.")
    return rep


def _result(out_path: str, route: str, notes: list, float_result: dict | None = None) -> dict:
    result = {"path": out_path, "bytes": os.path.getsize(out_path), "route": route, "notes": notes}
    if float_result is not None:
        result["float"] = float_result
    return result


def tflite_ops(path) -> list[tuple[str, list, list]]:
    """(builtin op name, input tensor types, output tensor types) of every op in every subgraph of a .tflite."""
    type_names = {v: k for k, v in vars(tflite.TensorType).items() if not k.startswith("_")}
    with open(path, "rb") as f:
        model = tflite.Model.GetRootAsModel(f.read(), 0)
    codes = [OPERATOR_NAMES.get(max(c.BuiltinCode(), c.DeprecatedBuiltinCode()), "CUSTOM")
             for c in (model.OperatorCodes(i) for i in range(model.OperatorCodesLength()))]
    ops = []
    for s in range(model.SubgraphsLength()):
        graph = model.Subgraphs(s)

        def types(indices, graph=graph):
            return [type_names.get(graph.Tensors(int(t)).Type(), "?") for t in indices if t >= 0]

        for o in range(graph.OperatorsLength()):
            op = graph.Operators(o)
            inputs = op.InputsAsNumpy() if op.InputsLength() else []
            outputs = op.OutputsAsNumpy() if op.OutputsLength() else []
            ops.append((codes[op.OpcodeIndex()], types(inputs), types(outputs)))
    return ops


def float_ops(path) -> list[str]:
    """Ops of a .tflite that read or write float32 tensors (none in a clean full-int8 model)."""
    return [name for name, ins, outs in tflite_ops(path) if "FLOAT32" in ins or "FLOAT32" in outs]


def _convert_in_child(model_path, out_path, tmp, *, int8, rep_path, unroll, qat, timeout,
                      float_out=None) -> tuple[bool, str, list]:
    """One conversion route; an int8 result with float ops left in it is converted again (once).

    TF 2.21's MLIR quantizer is not deterministic: an op with a dead output (the reset-gate slice of a
    fused-gate GRU's first step when the recurrent bias is zero) comes out int8 in some runs and as
    DEQUANTIZE -> float op -> QUANTIZE in others, from the same saved model.
    """
    ok, why, notes = _run_child(model_path, out_path, int8=int8, rep_path=rep_path, unroll=unroll, qat=qat,
                                timeout=timeout, float_out=float_out)
    if not (ok and int8):
        return ok, why, notes
    floats = float_ops(out_path)
    first = sorted(set(floats))
    retry_path = os.path.join(tmp, "retry.tflite")
    for _ in range(FLOAT_RETRIES):
        if not floats:
            break
        retried, _, _ = _run_child(model_path, retry_path, int8=int8, rep_path=rep_path, unroll=unroll, qat=qat,
                                   timeout=timeout)
        if retried and len(float_ops(retry_path)) < len(floats):
            os.replace(retry_path, out_path)
            floats = float_ops(out_path)
    if first and not floats:
        notes.append(f"the first int8 conversion left {', '.join(first)} running in float (the quantizer is not "
                     f"deterministic on ops with a dead output); converting again gave a fully int8 graph")
    elif floats:
        notes.append(f"the int8 model still runs {', '.join(sorted(set(floats)))} in float after "
                     f"{FLOAT_RETRIES + 1} conversions: the quantizer leaves ops with a dead output unquantized "
                     f"at random")
    return True, "", notes


def _run_child(model_path, out_path, *, int8, rep_path, unroll, qat, timeout,
               float_out=None) -> tuple[bool, str, list]:
    """Runs one conversion in a child process; returns (succeeded, what went wrong, notes)."""
    cmd = [sys.executable, "-m", "edgeml.optimize.convert", model_path, out_path]
    if float_out:
        cmd += ["--float-out", float_out]
    if qat:
        cmd.append("--qat")
    if int8:
        cmd.append("--int8")
    if rep_path:
        cmd += ["--representative", rep_path]
    if unroll:
        cmd.append("--unroll")
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_REPO_ROOT, env.get("PYTHONPATH")) if p)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout:g} s", []
    lines = [ln.strip() for ln in (proc.stderr or "").splitlines() if ln.strip()]
    notes = [ln[len(_NOTE_TAG):] for ln in lines if ln.startswith(_NOTE_TAG)]
    if proc.returncode == 0 and os.path.exists(out_path):
        return True, "", notes
    if proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        return False, f"crashed the converter process with {name}", notes
    errors = [ln[len(_ERROR_TAG):] for ln in lines if ln.startswith(_ERROR_TAG)]
    last = errors[-1] if errors else (lines[-1] if lines else f"exit status {proc.returncode}")
    return False, f"failed: {last}", notes


# ---------------------------------------------------------------------------------------------- child side

def _custom_object_scope(qat: bool):
    """quantize_scope for QAT models (their wrappers are custom classes); importing tfmot costs ~2 s otherwise."""
    if not qat:
        return contextlib.nullcontext()
    import tensorflow_model_optimization as tfmot
    return tfmot.quantization.keras.quantize_scope()


def _convert(model_path: str, out_path: str, *, int8: bool, rep_path: str | None, unroll: bool,
             qat: bool, float_out: str | None = None) -> None:
    """The child's conversion: load the saved model, then as `_convert_model` (the float file first, so that it
    is written even when the int8 calibration crashes the process)."""
    _, keras = keras_env()
    with _custom_object_scope(qat):
        model = keras.models.load_model(model_path, compile=False, custom_objects=register_layers())
    reps = None
    if rep_path:
        with np.load(rep_path) as z:
            reps = [z[f"x{i}"] for i in range(len(z.files))]
    notes: list[str] = []
    if float_out:
        _convert_model(model, float_out, int8=False, reps=None, unroll=unroll, qat=qat, notes=notes)
    _convert_model(model, out_path, int8=int8, reps=reps, unroll=unroll, qat=qat, notes=notes)
    for note in notes:
        print(_NOTE_TAG + note, file=sys.stderr)


def _convert_model(model, out_path: str, *, int8: bool, reps: list | None, unroll: bool, qat: bool,
                   notes: list) -> None:
    """Converts a batch-1 rebuild of `model` (a batch-1 trace when it cannot be rebuilt) and writes the file."""
    tf, _ = keras_env()
    with _custom_object_scope(qat):
        try:
            fixed = rebuild_fixed_batch(model, batch_size=1, unroll=unroll)
            converter = tf.lite.TFLiteConverter.from_keras_model(fixed)
        except Exception as exc:  # noqa: BLE001 - revived SavedModel layers or CQAT's sized quantizers; trace
            if unroll:
                raise
            notes.append(f"could not rebuild the model with a batch-1 Input ({type(exc).__name__}); converted a "
                         f"batch-1 trace of it instead")
            spec = [tf.TensorSpec((1, *tuple(t.shape)[1:]), t.dtype) for t in model.inputs]
            fn = tf.function(lambda *xs: model(list(xs) if len(xs) > 1 else xs[0], training=False))
            converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function(*spec)], model)
        if int8:
            _quantize_fully(converter, reps, [t.name.split(":")[0] for t in model.inputs])
        _write(converter.convert(), out_path)


def _convert_here(model, out_path: str, *, int8: bool, reps: list | None, qat: bool, notes: list) -> None:
    """In-process conversion of a model without recurrent layers; an int8 result with float ops left in it is
    converted again once, as in the child route."""
    _convert_model(model, out_path, int8=int8, reps=reps, unroll=False, qat=qat, notes=notes)
    floats = float_ops(out_path) if int8 else []
    if floats:
        retry_path = out_path + ".retry"
        _convert_model(model, retry_path, int8=int8, reps=reps, unroll=False, qat=qat, notes=[])
        if len(float_ops(retry_path)) < len(floats):
            os.replace(retry_path, out_path)
        else:
            os.remove(retry_path)
        left = float_ops(out_path)
        notes.append(f"the int8 model still runs {', '.join(sorted(set(left)))} in float after two conversions"
                     if left else f"the first int8 conversion left {', '.join(sorted(set(floats)))} running in "
                                  f"float; converting again gave a fully int8 graph")


def _quantize_fully(converter, reps: list | None, names: list) -> None:
    """Full-integer settings: int8 input and output, calibrated on the representative arrays (one per input)."""
    tf, _ = keras_env()
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if reps:
        def representative_dataset():      # several inputs by name: a list is matched in another order
            for i in range(len(reps[0])):
                sample = [r[i:i + 1] for r in reps]
                yield dict(zip(names, sample)) if len(sample) > 1 else sample

        converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8


def _write(flatbuffer: bytes, out_path: str) -> None:
    partial = out_path + ".part"
    with open(partial, "wb") as f:
        f.write(flatbuffer)
    os.replace(partial, out_path)


def _error_line(exc: BaseException) -> str:
    """The most telling line of a converter error (ConverterError messages span many lines)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    flagged = [ln for ln in lines if "error:" in ln.lower()]
    line = (flagged or lines or [""])[-1 if flagged else 0]
    return f"{type(exc).__name__}: {line}"[:400]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgeml.optimize.convert",
                                     description="Convert a saved tf_keras model to a batch-1 .tflite file.")
    parser.add_argument("model", help=".h5 file or SavedModel directory")
    parser.add_argument("out", help="output .tflite path")
    parser.add_argument("--int8", action="store_true", help="full integer quantization")
    parser.add_argument("--representative", help=".npz of calibration inputs x0, x1, ... (batch axis first)")
    parser.add_argument("--unroll", action="store_true", help="rebuild recurrent layers with unroll=True")
    parser.add_argument("--qat", action="store_true", help="the model holds tfmot quantize wrappers")
    parser.add_argument("--float-out", help="also write the float .tflite here, before the int8 one")
    args = parser.parse_args(argv)
    try:
        _convert(args.model, args.out, int8=args.int8, rep_path=args.representative, unroll=args.unroll,
                 qat=args.qat, float_out=args.float_out)
    except Exception as exc:  # noqa: BLE001 - the parent reads this line and raises TrainingError
        print(_ERROR_TAG + _error_line(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
