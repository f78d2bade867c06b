"""`edgeml train`: data -> Keras model -> fit -> prune / cluster / QAT -> float and int8 TFLite + ONNX -> every
runtime on the test split -> guard rails -> report.  `train(TrainConfig(...))` is the Python entry point.

Everything is written into a work folder beside the output folder and moved into place only when the whole run
succeeded (see `edgeml.train.workdir`), so a failed run leaves nothing half-done behind.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time

from edgeml.errors import DataError, EdgeMLError, TrainingError
from edgeml.optimize import convert
from edgeml.optimize.combine import OptimizationPlan, check_plan
from edgeml.optimize.export_onnx import tflite_to_onnx
from edgeml.optimize.block_prune import layer_block_sparsity, parse_block, sparse_latency
from edgeml.optimize.prune import layer_sparsity
from edgeml.train import evaluate as E, fit as F, guard as G, keras_env, onnx_recurrent as R, zoo
from edgeml.train.checks import bind_inputs, bind_outputs, token_inputs_as_int32
from edgeml.train.config import DEFAULT_EPOCHS, TrainConfig, TrainResult, augmentations, validate
from edgeml.train.console import Console, captured_stderr
from edgeml.train.data import load_dataset
from edgeml.train.distribute import Distribution, check_options as check_distribution, local_copy
from edgeml.train.finetune import phase_epochs, run_phases
from edgeml.train.report import render_markdown, render_summary
from edgeml.train.resume import open_backup, resumable_fit
from edgeml.train.runtimes import FileIO
from edgeml.train.stream import check_streamable, describe_stream, load_stream, predict, wants_stream
from edgeml.train.user_model import from_object, load_user_model
from edgeml.train.workdir import (OUTPUT_MARKER, OWNER_FILE, check_output_folder, finish_work_folder,  # noqa: F401
                                  open_work_folder, remove_stale_work)

RECURRENT_LAYERS = ("LSTM", "GRU", "SimpleRNN", "Bidirectional")
__all__ = ["TrainConfig", "TrainResult", "DegradedModelError", "train", "OUTPUT_MARKER", "OWNER_FILE",
           "remove_stale_work"]


class DegradedModelError(TrainingError):
    """The run finished and wrote its output, but the guard rails found the model useless or spoiled by int8;
    `result` holds the TrainResult (pass allow_degraded=True to get it returned instead)."""

    def __init__(self, result: TrainResult):
        self.result = result
        super().__init__("; ".join(f"{f['message']} (likely cause: {f['cause']})" for f in result.failures))


def train(cfg: TrainConfig) -> TrainResult:
    """Trains, optimizes, exports and verifies a model as `cfg` says; returns a TrainResult.

    Raises an EdgeMLError subclass with one sentence for anything the user can fix (DataError, TrainingError),
    and DegradedModelError after writing the output when the guard rails fail (unless cfg.allow_degraded)."""
    validate(cfg, zoo.MODEL_NAMES)
    out = os.fspath(cfg.out)
    check_output_folder(out, cfg.overwrite)
    # ---- beyond one machine: a strategy (edgeml.train.distribute; only the chief writes), a resumable backup
    # beside --out (edgeml.train.resume; removed once --out is written) ----
    check_distribution(cfg.distribute)
    dist = Distribution(cfg.distribute)
    backup = open_backup(out, cfg, cfg.resume, writer=dist.chief)
    work, parent = open_work_folder(out) if dist.chief else (tempfile.mkdtemp(prefix="edgeml-worker-"), None)
    verbose = _verbosity(cfg)
    try:
        with captured_stderr(enabled=verbose < 3) as native_log:
            try:
                with dist:
                    result = _run(cfg, work, backup, dist)
            except EdgeMLError:
                raise
            except Exception:
                log = native_log()
                if log.strip() and verbose > 0:          # what TensorFlow said before it failed
                    print("\n".join(log.strip().splitlines()[-15:]), flush=True)
                raise
        if not dist.chief:
            shutil.rmtree(work, ignore_errors=True)
            return result
        finish_work_folder(work, out, parent)
        backup.remove()
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        backup.remove_if_empty()
        raise
    if isinstance(result, TrainResult):
        result.paths = {name: os.path.join(os.path.abspath(out), name) for name in result.paths}
        if result.failures and not cfg.allow_degraded:
            raise DegradedModelError(result)
    return result


def _verbosity(cfg: TrainConfig) -> int:
    return 2 if cfg.verbose is None else int(cfg.verbose)


def _zoo_name(model):
    return model if isinstance(model, str) and model in zoo.MODEL_NAMES else None


def _load_model(cfg: TrainConfig):
    if isinstance(cfg.model, (str, os.PathLike)):
        return load_user_model(cfg.model)
    return from_object(cfg.model)


def _image_defaults(cfg: TrainConfig, model):
    """--image-size / --color-mode, else what a user model's (H, W, C) input takes, else 32x32 RGB."""
    size, mode = cfg.image_size, cfg.color_mode
    if model is not None and len(model.inputs) == 1 and len(model.inputs[0].shape) == 4:
        h, w, c = model.inputs[0].shape[1:]
        if size is None and h and w:
            size = (int(h), int(w))
        if mode is None and c in (1, 3, 4):
            mode = {1: "grayscale", 3: "rgb", 4: "rgba"}[int(c)]
    return size, mode


def _build_zoo(name: str, cfg: TrainConfig, ds, notes: list):
    if len(ds.inputs("train")) != 1 or len(ds.targets) != 1:
        raise DataError(f"zoo model '{name}' takes one input and one label array; the data has "
                        f"{len(ds.inputs('train'))} inputs and {len(ds.targets)} label arrays: bring your own model "
                        "(--model FILE) for several inputs or outputs")
    x = ds.inputs("train")[0]
    target = ds.targets[0]
    task = "classification" if name == "autoencoder" else target.task
    units = len(target.class_names) if task == "classification" else max(1, int(math.prod(target.shape)))
    vocab = None
    if x.dtype.kind == "i" and x.ndim == 2:
        if name == "transformer":
            vocab = int(x.max()) + 1
            for split in ("val", "test"):
                vocab = max(vocab, int(ds.inputs(split)[0].max()) + 1)
            notes.append(f"integer input of shape {tuple(x.shape[1:])}: token ids 0..{vocab - 1} into an Embedding, "
                         "kept int32 in every exported file")
        else:
            notes.append(f"integer input: read as numbers by '{name}' (only 'transformer' embeds token ids)")
    steps = math.ceil(ds.size("train") / cfg.batch_size)
    momentum = zoo.batchnorm_momentum(steps)
    model = zoo.build_model(name, ds.input_shape, units, x_train=None if vocab else x.astype("float32"),
                            alpha=cfg.alpha, seed=cfg.seed, task=task, bn_momentum=momentum, vocab_size=vocab,
                            y_train=ds.labels("train")[0] if task == "regression" else None)
    if task == "regression":
        notes.append("regression targets standardized on the training split; the model's last layer "
                     "('target_scale') maps back to raw values")
    if any(type(layer).__name__ == "BatchNormalization" for layer in model.layers):
        notes.append(f"BatchNormalization momentum {momentum} for {steps} steps per epoch (zoo.batchnorm_momentum)")
    return model


def _run(cfg: TrainConfig, work: str, backup=None, dist=None) -> TrainResult:
    t_start = time.monotonic()
    console = Console(_verbosity(cfg))
    tf, keras = keras_env()
    keras.utils.set_random_seed(cfg.seed)
    notes, seconds = [], {}
    name = _zoo_name(cfg.model)
    user = None if name else _load_model(cfg)
    image_size, color_mode = _image_defaults(cfg, user)
    reading = dict(seed=cfg.seed, val_fraction=cfg.validation_split, test_fraction=cfg.test_split,
                   image_size=image_size, color_mode=color_mode, label_column=cfg.label_column, task=cfg.task)
    if wants_stream(cfg):                    # edgeml.train.stream: through tf.data, never all in memory
        ds = load_stream(cfg.data, distribute=cfg.distribute, **reading)
    else:
        ds = load_dataset(cfg.data, **reading)
    shapes = ", ".join(str(s) for s in ds.input_shapes)
    classes = f"{ds.num_classes} classes" if ds.num_classes else "regression targets"
    console.say(f"data: {ds.source}: {ds.size('train')} train / {ds.size('val')} validation / "
                f"{ds.size('test')} test, {classes}, input {shapes}")
    model = _build_zoo(name, cfg, ds, notes) if name else token_inputs_as_int32(user, ds, notes)
    bind_inputs(model, ds, notes)
    heads = bind_outputs(model, ds, cfg.task, notes, reconstruction=name == "autoencoder")
    if ds.streamed:
        check_streamable(model, heads)
        notes.append(describe_stream(ds))
    plan = OptimizationPlan(cfg.prune, int(cfg.cluster) if cfg.cluster is not None else None, cfg.qat)
    check_plan(model, plan)                       # before training: a combination tfmot refuses stops here
    augment = augmentations(cfg.augment)
    augmenter = F.augmenter(augment, ds.input_shape, cfg.seed) if augment != () else None
    rate = F.learning_rate(cfg.optimizer, cfg.learning_rate)
    epochs = cfg.epochs or zoo.ZOO_EPOCHS.get(name, DEFAULT_EPOCHS)
    label = name or (os.path.basename(os.fspath(cfg.model)) if isinstance(cfg.model, (str, os.PathLike))
                     else f"{type(cfg.model).__name__} '{cfg.model.name}'")

    # ---- train ------------------------------------------------------------------------------------------
    F.compile_model(model, heads, optimizer=cfg.optimizer, rate=rate)
    phases = []
    t = time.monotonic()
    with console.stage("train", f"{label}, {model.count_params():,} parameters, up to {epochs} epochs, "
                                f"{cfg.optimizer} at learning rate {rate:g}") as stage:
        history = resumable_fit(backup, "train", model, lambda resume_callbacks: F.fit(
            model, ds, heads, epochs=epochs, batch_size=cfg.batch_size, workdir=work,
            callbacks=[*cfg.callbacks, *resume_callbacks], verbose=console.keras_verbose(), patience=cfg.patience,
            augment=augmenter, seed=cfg.seed))
        phases.append(("train", history))
        best = history.history.get(history.monitored, [None])[history.best_epoch - 1]
        stage["detail"] = f"{len(history.epoch)} epochs, best epoch {history.best_epoch} ({history.monitored} " \
                          f"{best:.4g})" if best is not None else f"{len(history.epoch)} epochs"
    seconds["train"] = time.monotonic() - t

    # ---- optimize ---------------------------------------------------------------------------------------
    qat_model = None
    if plan.phases:
        t = time.monotonic()
        tune_epochs = phase_epochs(cfg.finetune_epochs, cfg.prune)
        lengths = ", ".join(f"{p} {tune_epochs[p]}" for p in plan.phases)
        with console.stage("optimize", f"{plan.describe()}, fine-tune epochs: {lengths}") as stage:
            model, qat_model, more = run_phases(
                model, plan, ds, heads, optimizer=cfg.optimizer, rate=rate, epochs=tune_epochs,
                batch_size=cfg.batch_size, workdir=work, callbacks=cfg.callbacks, verbose=console.keras_verbose(),
                seed=cfg.seed, backup=backup, prune_block=cfg.prune_block)
            phases += more
            stage["detail"] = ", ".join(f"{p} {len(h.epoch)} epochs" for p, h in more)
        seconds["optimize"] = time.monotonic() - t
        notes.append(f"optimizations: {plan.describe()}, fine-tune epochs: {lengths}")
    else:
        console.skip("optimize", "no --prune, --cluster or --qat")

    if backup is not None and backup.resumed_phases:
        notes.append("resumed from the backup of a killed run: " + ", ".join(backup.resumed_phases))
    if dist is not None and dist.strategy is not None:      # the rest runs outside the strategy, on the chief
        notes.append(dist.describe())
        dist.leave()
        def recompile(copy, copy_heads):
            F.compile_model(copy, copy_heads, optimizer=cfg.optimizer, rate=rate)
        model = local_copy(model, heads, recompile)
        qat_model = local_copy(qat_model, heads, recompile) if qat_model is not None else None
        if not dist.chief:
            console.say("worker done: the chief converts, evaluates and writes the output")
            return TrainResult(model=model, paths={}, report={"role": "worker", "phases": [
                {"phase": p, "epochs": len(h.epoch)} for p, h in phases]}, failures=[])

    # ---- convert ----------------------------------------------------------------------------------------
    t = time.monotonic()
    files, recurrent_files = {}, None
    with console.stage("convert", "float and int8 .tflite, int8 .onnx") as stage:
        keras_path = os.path.join(work, "model_float.h5")
        _save_keras(model, keras_path)
        files["model_float.h5"] = keras_path
        float_path = os.path.join(work, "model_float.tflite")
        if qat_model is None:         # both files of one model: one converter process (see convert.to_tflite)
            int8_info = convert.to_tflite(model, os.path.join(work, "model_int8.tflite"), int8=True,
                                          representative_x=ds.inputs("train"), float_path=float_path)
            float_info = int8_info.pop("float")
        else:
            float_info = convert.to_tflite(model, float_path, int8=False)
            int8_info = convert.to_tflite(qat_model, os.path.join(work, "model_int8.tflite"), int8=True,
                                          representative_x=ds.inputs("train"))
        files["model_float.tflite"] = float_info["path"]
        files["model_int8.tflite"] = int8_info["path"]
        notes.extend(float_info.get("notes", []) + int8_info.get("notes", []))
        try:
            tflite_to_onnx(files["model_int8.tflite"], os.path.join(work, "model_int8.onnx"))
            files["model_int8.onnx"] = os.path.join(work, "model_int8.onnx")
        except EdgeMLError as exc:
            notes.append(f"no model_int8.onnx: {exc}")
        if _recurrent(model) and len(model.inputs) == 1 and heads[0].task != "reconstruction" \
                and ds.inputs("train")[0].dtype.kind == "f":
            recurrent_files = _onnx_recurrent_route(model, ds, work, notes)
            if recurrent_files:
                files.update({R.FLOAT_FILE: recurrent_files["float"], R.INT8_FILE: recurrent_files["int8"]})
        stage["detail"] = f"int8 route {int8_info['route']}; " + ", ".join(
            n for n in files if n.endswith((".tflite", ".onnx")))
    seconds["convert"] = time.monotonic() - t

    # ---- evaluate ---------------------------------------------------------------------------------------
    t = time.monotonic()
    with console.stage("evaluate", f"{ds.size('test')} test samples on every runtime") as stage:
        ev = E.evaluate(model, heads, ds, files, console, recurrent_files)
        if qat_model is not None:
            ev.real["keras_qat"] = ev.raw["keras_qat"] = predict(qat_model, ds)
        metrics = E.metrics(heads, ev, ds)
        agreement = E.agreement(heads, ev)
        costs, latency = {}, None
        try:
            costs = E.model_costs(files["model_int8.tflite"])
            io = FileIO(files["model_int8.tflite"], list(model.input_names))
            latency = E.latency(files["model_int8.tflite"], ds.inputs("test"), io)
            if cfg.prune is not None:
                latency["sparse"] = sparse_latency(files["model_int8.tflite"],
                                                   io.feeds([x[:1] for x in ds.inputs("test")])[0].reshape(
                                                       io.inputs[0].shape))
        except EdgeMLError as exc:
            notes.append(f"edgeml could not measure model_int8.tflite: {exc}")
        weights = G.weight_stats(files["model_int8.tflite"])
        stage["detail"] = ", ".join(f"{k} {v:.4f}" for k, v in _first_metric(metrics).items() if v is not None)
    seconds["evaluate"] = time.monotonic() - t

    # ---- guard rails and export -------------------------------------------------------------------------
    t = time.monotonic()
    with console.stage("export", "report, history, labels") as stage:
        context = {"history": phases[0][1], "train_samples": ds.size("train"), "learning_rate": rate,
                   "batchnorm": any(type(layer).__name__ == "BatchNormalization" for layer in model.layers),
                   "recurrent": _recurrent(model), "qat": plan.qat, "zoo": name is not None,
                   "input_quantization": G.input_resolution(FileIO(files["model_int8.tflite"],
                                                                   list(model.input_names)), ds.inputs("test"))}
        failures, cpu_notes = G.onnxruntime_cpu_findings(G.check_quality(heads, metrics, ds, context), metrics)
        notes.extend(cpu_notes)
        failures += G.check_optimizations(plan, [w for w in weights if not _dense_by_choice(cfg, w[1])])
        failures += [G.failure("runtime", f"edgeml could not run {_file_of(runtime)}: {why}",
                               "a runtime refusal: report the op and types named here to edgeml", runtime=runtime)
                     for runtime, why in ev.why.items() if runtime.startswith("edgeml")]
        F.write_history(phases, os.path.join(work, "history.csv"))
        F.plot_history(phases, os.path.join(work, "history.png"), f"{label} on {ds.source}")
        if ds.class_names and any(h.task == "classification" for h in heads):
            with open(os.path.join(work, "labels.txt"), "w") as f:
                f.write("\n".join(ds.class_names) + "\n")
        sizes, gz = E.file_sizes(work)
        report = _report(cfg, label, ds, heads, metrics, ev, agreement, sizes, gz, model, costs, latency, weights,
                         plan, phases, float_info, int8_info, notes, failures, seconds, t_start)
        written = sorted(n for n in os.listdir(work) if not n.startswith(".") and n not in (OWNER_FILE, "checkpoints"))
        report["written"] = written + ["report.json", "report.md"]
        with open(os.path.join(work, "report.json"), "w") as f:
            json.dump(report, f, indent=2)
        with open(os.path.join(work, "report.md"), "w") as f:
            f.write(render_markdown(report))
        stage["detail"] = "FAILED: " + "; ".join(f["check"] for f in failures) if failures else "all checks passed"
    seconds["export"] = time.monotonic() - t
    console.say(render_summary(report, os.fspath(cfg.out)))
    paths = {n: os.path.join(work, n) for n in report["written"]}
    return TrainResult(model=model, paths=paths, report=report, failures=failures)


def _first_metric(metrics: dict) -> dict:
    first = next(iter(metrics.values()))
    return first.get("accuracy") or first.get("mse")


def _file_of(runtime: str) -> str:
    return E.RUNTIME_LABELS.get(runtime, runtime).split(", ")[-1]


def _dense_by_choice(cfg, op_type: str) -> bool:
    """Block pruning leaves depthwise kernels dense (`edgeml.optimize.block_prune`): not a lost sparsity."""
    return op_type == "DEPTHWISE_CONV_2D" and parse_block(cfg.prune_block) != (1, 1)


def _recurrent(model) -> bool:
    return any(type(layer).__name__ in RECURRENT_LAYERS for layer in model.layers)


def _report(cfg, label, ds, heads, metrics, ev, agreement, sizes, gz, model, costs, latency, weights, plan, phases,
            float_info, int8_info, notes, failures, seconds, t_start) -> dict:
    first = heads[0]
    report = {
        "status": "degraded" if failures else "ok", "failures": failures,
        "data": ds.source, "model": label, "task": first.task, "tasks": {h.name: h.task for h in heads},
        "seed": cfg.seed, "classes": ds.class_names,
        "epochs_trained": sum(len(h.epoch) for _, h in phases),
        "phases": [{"phase": p, "epochs": len(h.epoch), "best_epoch": getattr(h, "best_epoch", None)
                    if p == "train" else None, "seconds": round(getattr(h, "seconds", 0.0), 1)} for p, h in phases],
        "metrics": metrics, "why": ev.why, "agreement": agreement,
        "files": sizes, "gzip_bytes": gz,
        "params": int(model.count_params()), "params_int8_file": costs.get("params"), "macs": costs.get("macs"),
        "arena_bytes": costs.get("arena_bytes"), "latency_edgeml_int8": latency,
        "sparsity": layer_sparsity(model), "block_sparsity": layer_block_sparsity(model), "weights_int8": weights,
        "tflite_conversion": {"float": float_info.get("route"), "int8": int8_info.get("route")},
        "optimizations": {"prune": cfg.prune, "prune_block": cfg.prune_block if cfg.prune else None,
                          "cluster": cfg.cluster, "qat": cfg.qat, "plan": plan.describe()},
        "options": {"optimizer": cfg.optimizer, "learning_rate": F.learning_rate(cfg.optimizer, cfg.learning_rate),
                    "batch_size": cfg.batch_size, "patience": cfg.patience, "augment": cfg.augment,
                    "validation_split": cfg.validation_split, "test_split": cfg.test_split,
                    "finetune_epochs": cfg.finetune_epochs,
                    "phase_epochs": phase_epochs(cfg.finetune_epochs, cfg.prune)},
        "notes": notes, "stage_seconds": {k: round(v, 1) for k, v in seconds.items()},
        "seconds": round(time.monotonic() - t_start, 1),
    }
    if first.task == "classification":
        report["accuracy"] = metrics[first.name]["accuracy"]
    elif first.task == "regression":
        report["mse"], report["mae"] = metrics[first.name]["mse"], metrics[first.name]["mae"]
    else:
        report["reconstruction_mse"] = metrics[first.name]["mse"]
    return report


def _onnx_recurrent_route(model, ds, work, notes) -> dict | None:
    """Float ONNX (tf2onnx) and its int8 recurrent QDQ form, for onnxruntime (float) and edgeml (int8)."""
    try:
        exported = R.export(model, ds.inputs("train")[0], work)
    except Exception as exc:  # noqa: BLE001 - tf2onnx refusing or lowering the layer to a Loop is a result
        notes.append(f"ONNX recurrent route unavailable: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        return None
    notes.append(f"ONNX recurrent route: tf2onnx float model ({', '.join(exported['ops'])}), int8 W / R / input by "
                 "edgeml.optimize.quantize_onnx_rnn, run by edgeml's int8 recurrent kernel")
    return exported


def _save_keras(model, path: str):
    if convert.is_quantize_aware(model):
        import tensorflow_model_optimization as tfmot
        with tfmot.quantization.keras.quantize_scope():
            model.save(path)
    else:
        model.save(path)
