"""`edgeml train`: data -> Keras model -> fit -> prune / QAT / cluster -> int8 TFLite + ONNX -> verified report.

Everything is written into a temporary folder beside the output folder and moved into place only when the whole
run succeeded, so a failed run leaves nothing half-done behind.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from edgeml.errors import EdgeMLError, TrainingError
from edgeml.optimize import convert
from edgeml.optimize.cluster import cluster_model, strip_clustering
from edgeml.optimize.export_onnx import tflite_to_onnx
from edgeml.optimize.prune import layer_sparsity, prune_model, strip_pruning
from edgeml.optimize.qat import quantize_aware
from edgeml.train import evaluate as E, fit as F, keras_env, onnx_recurrent as R, zoo
from edgeml.train.data import load_dataset

DEFAULT_EPOCHS = 15
OUTPUT_MARKER = ".edgeml-output"        # in every folder `train` writes: a later run may replace such a folder
WORK_PREFIX = ".edgeml-train-"          # a run works in <parent of --out>/.edgeml-train-XXXX, then renames it
OLD_PREFIX = ".edgeml-old-"             # a replaced output, while the new one is moved into place
OWNER_FILE = "owner.pid"                # the process working in a work folder
STALE_SECONDS = 24 * 3600               # a work folder without an owner file is stale after this long
RECURRENT_LAYERS = ("LSTM", "GRU", "SimpleRNN", "Bidirectional")


@dataclass
class TrainConfig:
    out: str
    data: str = "digits"
    model: str = "cnn"
    epochs: Optional[int] = None
    seed: int = 0
    batch_size: int = 32
    prune: Optional[float] = None
    qat: bool = False
    cluster: Optional[int] = None
    alpha: float = 0.25
    finetune_epochs: int = 3
    verbose: Optional[int] = None
    overwrite: bool = False          # replace --out even if it is a non-empty folder edgeml did not write
    log: list = field(default_factory=list)


def _say(cfg: TrainConfig, msg: str):
    cfg.log.append(msg)
    print(msg, flush=True)


def validate(cfg: TrainConfig):
    """Checks the arguments before anything is trained or written."""
    if cfg.model not in zoo.MODEL_NAMES and not os.path.exists(cfg.model):
        raise TrainingError(f"unknown model '{cfg.model}': use one of {', '.join(zoo.MODEL_NAMES)} or a saved Keras "
                            "model file")
    if cfg.prune is not None and not 0.0 < cfg.prune < 1.0:
        raise TrainingError(f"--prune takes a sparsity between 0 and 1 (exclusive), got {cfg.prune}")
    if cfg.cluster is not None and cfg.cluster < 2:
        raise TrainingError(f"--cluster takes a number of clusters >= 2, got {cfg.cluster}")
    if cfg.epochs is not None and cfg.epochs < 1:
        raise TrainingError(f"--epochs must be at least 1, got {cfg.epochs}")
    if os.path.exists(cfg.out) and not os.path.isdir(cfg.out):
        raise TrainingError(f"output path '{cfg.out}' exists and is not a folder")
    if os.path.isdir(cfg.out) and os.listdir(cfg.out) and not cfg.overwrite \
            and not os.path.isfile(os.path.join(cfg.out, OUTPUT_MARKER)):
        raise TrainingError(f"output folder '{cfg.out}' is not empty and was not written by edgeml train; choose "
                            "another --out, or pass --overwrite (overwrite=True) to replace it")
    if cfg.batch_size < 1:
        raise TrainingError(f"--batch-size must be at least 1, got {cfg.batch_size}")


def _task(model_name: str) -> str:
    return getattr(zoo, "MODEL_TASKS", {}).get(model_name, "classification")


def _accuracy(outputs: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(outputs.reshape(len(y), -1), axis=1) == y))


def train(cfg: TrainConfig) -> dict:
    validate(cfg)
    parent = os.path.dirname(os.path.abspath(cfg.out)) or "."
    os.makedirs(parent, exist_ok=True)
    remove_stale_work(parent, os.path.abspath(cfg.out))
    work = tempfile.mkdtemp(prefix=WORK_PREFIX, dir=parent)
    try:
        with open(os.path.join(work, OWNER_FILE), "w") as f:
            f.write(str(os.getpid()))
        report = _run(cfg, work)
        shutil.rmtree(os.path.join(work, "checkpoints"), ignore_errors=True)
        os.remove(os.path.join(work, OWNER_FILE))
        with open(os.path.join(work, OUTPUT_MARKER), "w") as f:
            f.write("written by edgeml train; a later run with the same --out may replace this folder\n")
        _move_into_place(work, os.path.abspath(cfg.out), parent)
        return report
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _move_into_place(work: str, out: str, parent: str):
    """Renames the finished work folder to `out`; a previous output stays whole until the new one is in place."""
    if not os.path.isdir(out):
        os.replace(work, out)
        return
    old = tempfile.mkdtemp(prefix=OLD_PREFIX, dir=parent)
    os.replace(out, os.path.join(old, "output"))
    os.replace(work, out)
    shutil.rmtree(old, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:        # another user's live process
        return True
    return True


def remove_stale_work(parent: str, out: str):
    """Removes what killed runs left in `parent`: work folders whose owner process is gone (or, without an owner
    file, older than STALE_SECONDS), and replaced outputs once `out` exists again."""
    for name in os.listdir(parent):
        path = os.path.join(parent, name)
        if not os.path.isdir(path) or os.path.islink(path):
            continue
        if name.startswith(OLD_PREFIX) and os.path.isdir(out):
            shutil.rmtree(path, ignore_errors=True)
        elif name.startswith(WORK_PREFIX):
            try:
                with open(os.path.join(path, OWNER_FILE)) as f:
                    stale = not _alive(int(f.read().strip()))
            except (OSError, ValueError):
                stale = time.time() - os.path.getmtime(path) > STALE_SECONDS
            if stale:
                shutil.rmtree(path, ignore_errors=True)


def _run(cfg: TrainConfig, work: str) -> dict:
    t_start = time.time()
    tf, keras = keras_env()
    keras.utils.set_random_seed(cfg.seed)
    ds = load_dataset(cfg.data, seed=cfg.seed)
    n_classes = len(ds.class_names)
    _say(cfg, f"data: {ds.source}: {len(ds.x_train)} train / {len(ds.x_val)} validation / {len(ds.x_test)} test, "
              f"{n_classes} classes, input {ds.input_shape}")
    user_model = cfg.model not in zoo.MODEL_NAMES
    if user_model:
        model = zoo.load_user_model(cfg.model)
        task = "classification"
    else:
        model = zoo.build_model(cfg.model, ds.input_shape, n_classes, x_train=ds.x_train, alpha=cfg.alpha,
                                seed=cfg.seed)
        task = _task(cfg.model)
    epochs = cfg.epochs or DEFAULT_EPOCHS
    steps_per_epoch = math.ceil(len(ds.x_train) / cfg.batch_size)
    histories = []
    notes = []

    extra = []
    if cfg.prune is not None:
        model, extra = prune_model(model, cfg.prune, steps=max(1, epochs * steps_per_epoch - steps_per_epoch))
        notes.append(f"pruned to {cfg.prune:.2f} sparsity (polynomial decay over training)")
    if cfg.qat:
        model = quantize_aware(model)
        notes.append("quantization-aware training")
    F.compile_model(model, task)
    _say(cfg, f"model: {model.name}, {model.count_params()} parameters; training {epochs} epochs")
    histories.append(F.fit(model, ds, task, epochs=epochs, batch_size=cfg.batch_size, workdir=work,
                           extra_callbacks=extra, verbose=cfg.verbose))
    if cfg.prune is not None:
        model = strip_pruning(model)
        F.compile_model(model, task)
    if cfg.cluster is not None:
        model = cluster_model(model, cfg.cluster)
        F.compile_model(model, task, learning_rate=1e-4)
        histories.append(F.fit(model, ds, task, epochs=cfg.finetune_epochs, batch_size=cfg.batch_size,
                               workdir=work, verbose=cfg.verbose))
        model = strip_clustering(model)
        F.compile_model(model, task)
        notes.append(f"weights clustered to {cfg.cluster} centroids per layer, fine-tuned {cfg.finetune_epochs} epochs")
    F.plot_history(histories, os.path.join(work, "history.png"), f"{cfg.model} on {ds.source}")

    # ---- export ----------------------------------------------------------------------------------------
    sparsity = layer_sparsity(model)
    keras_path = os.path.join(work, "model_float.h5")
    _save_keras(model, keras_path, cfg.qat)
    float_info = convert.to_tflite(model, os.path.join(work, "model_float.tflite"), int8=False)
    int8_path = os.path.join(work, "model_int8.tflite")
    int8_info = convert.to_tflite(model, int8_path, int8=True, representative_x=ds.x_train)
    notes.extend(float_info.get("notes", []) + int8_info.get("notes", []))
    onnx_path = os.path.join(work, "model_int8.onnx")
    onnx_error = None
    try:
        tflite_to_onnx(int8_path, onnx_path)
    except EdgeMLError as exc:
        onnx_error = str(exc)
        notes.append(f"ONNX export failed: {exc}")
    with open(os.path.join(work, "labels.txt"), "w") as f:
        f.write("\n".join(ds.class_names) + "\n")

    # ---- evaluate ---------------------------------------------------------------------------------------
    x_test, y_test = ds.x_test, ds.y_test
    accuracy, why, agreement, outputs = {}, {}, {}, {}
    keras_out = model.predict(x_test, verbose=0)
    if task == "reconstruction":
        accuracy["keras_float"] = None
        why["keras_float"] = "autoencoder: reconstruction task, see reconstruction_mse"
    else:
        accuracy["keras_float"] = _accuracy(keras_out, y_test)
    q = E.Int8Model(int8_path)
    xq = q.quantize(x_test.reshape((len(x_test),) + q.in_shape[1:]))
    runners = {
        "litert_int8": lambda: E.run_litert(int8_path, xq),
        "onnxruntime_int8": lambda: E.run_onnxruntime(onnx_path, xq, x_test),
        "edgeml_int8": lambda: E.run_edgeml(int8_path, xq),
        "litert_reference_int8": lambda: E.run_litert(int8_path, xq, reference=True),
    }
    for name, run in runners.items():
        if name == "onnxruntime_int8" and onnx_error:
            accuracy[name], why[name] = None, f"no ONNX model: {onnx_error}"
            continue
        try:
            outputs[name] = run()
        except EdgeMLError as exc:
            accuracy[name], why[name] = None, f"{type(exc).__name__}: {exc}"
            continue
        except Exception as exc:  # a peer runtime refusing the model is a result, not a crash
            accuracy[name], why[name] = None, f"{type(exc).__name__}: {exc}"
            continue
        if task == "reconstruction":
            accuracy[name], why[name] = None, "autoencoder: reconstruction task, see reconstruction_mse"
        else:
            accuracy[name] = _accuracy(outputs[name], y_test)

    recurrent = any(type(layer).__name__ in RECURRENT_LAYERS for layer in model.layers) and task != "reconstruction"
    if recurrent:
        _onnx_recurrent_route(model, ds, work, notes, accuracy, why, outputs)

    def agree(a, b):
        if a not in outputs or b not in outputs:
            return None
        oa, ob = outputs[a].reshape(len(y_test), -1), outputs[b].reshape(len(y_test), -1)
        return float(np.mean(np.argmax(oa, 1) == np.argmax(ob, 1)))

    def bit_exact(a, b):
        if a not in outputs or b not in outputs or outputs[a].dtype != outputs[b].dtype:
            return None
        oa, ob = outputs[a].reshape(len(y_test), -1), outputs[b].reshape(len(y_test), -1)
        return float(np.mean(np.all(oa == ob, axis=1)))
    agreement = {
        "edgeml_vs_litert": agree("edgeml_int8", "litert_int8"),
        "edgeml_vs_onnxruntime": agree("edgeml_int8", "onnxruntime_int8"),
        "litert_vs_onnxruntime": agree("litert_int8", "onnxruntime_int8"),
        "edgeml_vs_litert_reference_bit_exact": bit_exact("edgeml_int8", "litert_reference_int8"),
        "edgeml_vs_litert_bit_exact": bit_exact("edgeml_int8", "litert_int8"),
    }
    if recurrent:
        agreement["edgeml_onnx_int8_vs_onnx_float"] = agree("edgeml_onnx_int8", "onnxruntime_onnx_float")
    files, gz = E.file_table(work)
    report = {
        "data": ds.source, "model": cfg.model, "task": task, "seed": cfg.seed, "epochs_trained": sum(
            len(h.history.get("loss", [])) for h in histories),
        "classes": ds.class_names,
        "accuracy": accuracy, "why": why, "agreement": agreement,
        "files": files, "gzip_bytes": gz,
        "params": int(model.count_params()), "macs": E.count_macs(int8_path),
        "sparsity": sparsity,
        "tflite_conversion": {"float": float_info.get("route"), "int8": int8_info.get("route")},
        "optimizations": {"prune": cfg.prune, "qat": cfg.qat, "cluster": cfg.cluster},
        "notes": notes, "seconds": round(time.time() - t_start, 1),
    }
    if task == "reconstruction":
        ref = F.targets(model, task, x_test, y_test).reshape(len(x_test), -1)
        report["reconstruction_mse"] = {"keras_float": float(np.mean((keras_out.reshape(len(x_test), -1) - ref) ** 2))}
        for name, out in outputs.items():
            deq = q.dequantize(out) if out.dtype == np.int8 else out
            report["reconstruction_mse"][name] = float(np.mean((deq.reshape(len(x_test), -1) - ref) ** 2))
    with open(os.path.join(work, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    with open(os.path.join(work, "report.md"), "w") as f:
        f.write(render_markdown(report))
    _say(cfg, render_summary(report))
    return report


def _onnx_recurrent_route(model, ds, work, notes, accuracy, why, outputs):
    """Float ONNX (tf2onnx) and its int8 recurrent QDQ form: onnxruntime on the float model, edgeml int8."""
    names = ("onnxruntime_onnx_float", "edgeml_onnx_int8")
    try:
        files = R.export(model, ds.x_train, work)
    except Exception as exc:  # tf2onnx refusing or lowering the layer to a Loop is a result, not a crash
        for name in names:
            accuracy[name], why[name] = None, f"no recurrent ONNX model: {type(exc).__name__}: {exc}"
        notes.append(f"ONNX recurrent route unavailable: {exc}")
        return
    notes.append(f"ONNX recurrent route: tf2onnx float model ({', '.join(files['ops'])}), int8 W / R / input by "
                 "edgeml.optimize.quantize_onnx_rnn, run by edgeml's int8 recurrent kernel")
    runners = {"onnxruntime_onnx_float": lambda: E.run_onnxruntime(files["float"], ds.x_test, ds.x_test),
               "edgeml_onnx_int8": lambda: R.run_edgeml(files["int8"], ds.x_test)}
    for name, run in runners.items():
        try:
            outputs[name] = run()
        except Exception as exc:
            accuracy[name], why[name] = None, f"{type(exc).__name__}: {exc}"
            continue
        accuracy[name] = _accuracy(outputs[name], ds.y_test)


def _save_keras(model, path: str, qat: bool):
    if qat:
        import tensorflow_model_optimization as tfmot
        with tfmot.quantization.keras.quantize_scope():
            model.save(path)
    else:
        model.save(path)


def _fmt(v) -> str:
    return "n/a" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))


def render_summary(r: dict) -> str:
    acc = r["accuracy"]
    return ("accuracy: " + ", ".join(f"{k} {_fmt(v)}" for k, v in acc.items())
            + f"; edgeml vs LiteRT agreement {_fmt(r['agreement']['edgeml_vs_litert'])}")


def render_markdown(r: dict) -> str:
    lines = [f"# edgeml training report: {r['model']} on {r['data']}", "",
             "## Accuracy on the test split", "", "| runtime | accuracy | note |", "|---|---|---|"]
    for k, v in r["accuracy"].items():
        lines.append(f"| {k} | {_fmt(v)} | {r['why'].get(k, '')} |")
    lines += ["", "## Agreement between runtimes (same top-1 class)", "", "| pair | fraction |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in r["agreement"].items()]
    lines += ["", "## Files", "", "| file | bytes | gzip bytes |", "|---|---|---|"]
    lines += [f"| {k} | {v} | {r['gzip_bytes'].get(k, '')} |" for k, v in r["files"].items()]
    lines += ["", f"Parameters: {r['params']}; MACs per inference (int8 model): {r['macs']}", "",
              "## Weight sparsity per layer", "", "| layer | zero fraction |", "|---|---|"]
    lines += [f"| {k} | {v:.3f} |" for k, v in r["sparsity"].items()]
    if r.get("reconstruction_mse"):
        lines += ["", "## Reconstruction MSE", ""] + [f"- {k}: {v:.5f}" for k, v in r["reconstruction_mse"].items()]
    lines += ["", "## Notes", ""] + [f"- {n}" for n in r["notes"]] + [f"- {r['seconds']} s in all", ""]
    return "\n".join(lines)
