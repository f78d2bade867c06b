"""Keras 3 models (what `import keras` gives) rebuilt in tf_keras (Keras 2), which tensorflow-model-optimization needs.

The rebuild reads the Keras 3 model's config, not its Python objects: each layer becomes the tf_keras layer of the
same class from its config (arguments tf_keras lacks dropped when they hold their default, initializers dropped
since the weights are copied, regularizers and constraints translated), the functional graph is replayed node by
node (shared layers, several inputs / outputs, nested Sequential / functional models), the weights are copied
layer by layer, and the rebuilt model must give the same outputs on random inputs.  A layer outside the standard
set (custom layers, Lambda, keras.ops calls), or one whose rebuild computes something else, stops the rebuild
with a TrainingError naming it.
"""
from __future__ import annotations

import inspect

import numpy as np

from edgeml.errors import TrainingError
from edgeml.train import keras_env
from edgeml.train.layers import register_layers

SUPPORTED_LAYERS = (
    "Dense", "EinsumDense", "Conv1D", "Conv2D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D",
    "Conv2DTranspose", "MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
    "BatchNormalization", "LayerNormalization", "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax",
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "Flatten", "Reshape",
    "Permute", "RepeatVector", "ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D", "UpSampling1D",
    "UpSampling2D", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot",
    "LSTM", "GRU", "SimpleRNN", "Bidirectional", "TimeDistributed", "Embedding", "MultiHeadAttention",
    "Normalization", "Rescaling", "Resizing", "CenterCrop", "RandomFlip", "RandomRotation", "RandomZoom",
    "RandomTranslation", "RandomContrast", "RandomCrop", "RandomBrightness", "Identity",
)
RENAMED_ARGUMENTS = {"LeakyReLU": {"negative_slope": "alpha"}}
# config keys tf_keras's from_config requires but Keras 3 does not write (the layer builds when first called)
REQUIRED_DEFAULTS = {"MultiHeadAttention": {"query_shape": None, "key_shape": None, "value_shape": None}}
# Keras 3 arguments tf_keras lacks that change nothing at inference or in training when dropped: any value (None)
# or only the listed default values
DROPPABLE_ARGUMENTS = {"seed": None, "optional": None, "ragged": None, "sparse": None, "synchronized": None,
                       "autocast": None, "value_range": None, "input_length": None, "build_config": None,
                       "compile_config": None, "use_cudnn": None, "flash_attention": None, "activity_regularizer": None,
                       "zero_output_for_mask": None, "data_format": ("channels_last",), "fill_mode": None,
                       "fill_value": None, "pad_to_aspect_ratio": (False,), "antialias": (False,),
                       "rms_scaling": (False,), "invert": (False,)}
BASE_ARGUMENTS = {"name", "trainable", "dtype", "input_shape", "batch_input_shape", "batch_size", "dynamic"}
MODEL_CLASSES = ("Sequential", "Functional", "Model")
VERIFY_SAMPLES = 16
VERIFY_TOLERANCE = 1e-4        # relative to the largest output magnitude (float32 sums in another order)


def is_keras3_model(obj) -> bool:
    module = type(obj).__module__
    return module.split(".")[0] == "keras" and hasattr(obj, "get_config") and hasattr(obj, "layers")


def load_keras3_file(path: str):
    """The Keras 3 model in a .keras / .h5 file, loaded by Keras 3 itself (uncompiled)."""
    try:
        import keras
    except ImportError as exc:
        raise TrainingError(f"'{path}' was saved by Keras 3, which is not installed here: pip install keras") from exc
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as exc:  # noqa: BLE001 - a custom class or a broken file: say which in one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise TrainingError(f"Keras 3 could not load '{path}' ({type(exc).__name__}: {first[:300]}); custom layers "
                            "must be importable and registered with keras.saving.register_keras_serializable") \
            from exc


def to_tf_keras(model3):
    """A tf_keras model computing what the Keras 3 `model3` computes, with its weights; checked on random data."""
    _, k2 = keras_env()
    register_layers()
    kind = type(model3).__name__
    if kind not in MODEL_CLASSES or not hasattr(model3, "get_config"):
        raise TrainingError(f"the Keras 3 model is a subclassed {kind}; edgeml rebuilds Sequential and functional "
                            "models only (their config lists the layers)")
    try:
        config = model3.get_config()
    except NotImplementedError:
        raise TrainingError(f"the Keras 3 model '{model3.name}' ({kind}) has no config to rebuild it from; build it "
                            "as a Sequential or functional model") from None
    model2 = _build_model(k2, kind, config)
    _copy_weights(model3, model2)
    verify(model3, model2)
    return model2


# ---- building --------------------------------------------------------------------------------------------------


def _build_model(k2, kind: str, config: dict):
    if kind == "Sequential" or "input_layers" not in config:
        return _build_sequential(k2, config)
    return _build_functional(k2, config)


def _build_sequential(k2, config: dict):
    layers = list(config["layers"])
    model = k2.Sequential(name=config.get("name"))
    if layers and layers[0]["class_name"] == "InputLayer":
        first = layers.pop(0)["config"]
        model.add(k2.Input(batch_shape=tuple(first.get("batch_shape") or first.get("batch_input_shape")),
                           dtype=_dtype(first.get("dtype")), name=first.get("name")))
    elif config.get("build_input_shape"):
        model.add(k2.Input(batch_shape=tuple(config["build_input_shape"])))
    for entry in layers:
        model.add(_make_layer(k2, entry))
    return model


def _build_functional(k2, config: dict):
    tensors = {}
    pending = []
    for entry in config["layers"]:
        if entry["class_name"] == "InputLayer":
            cfg = entry["config"]
            shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
            tensors[(entry["name"], 0, 0)] = k2.Input(batch_shape=tuple(shape), dtype=_dtype(cfg.get("dtype")),
                                                      name=entry["name"])
            continue
        layer = _make_layer(k2, entry)
        pending += [(layer, entry["name"], i, node) for i, node in enumerate(entry.get("inbound_nodes", []))]
    while pending:                      # a shared layer's later nodes may wait for tensors made after it
        ready = [p for p in pending if _resolvable(p[3], tensors)]
        if not ready:
            names = ", ".join(sorted({p[1] for p in pending}))
            raise TrainingError(f"the Keras 3 graph could not be replayed: the inputs of layer(s) {names} are never "
                                "produced")
        for item in ready:
            layer, name, index, node = item
            args = _resolve(node.get("args", []), tensors)
            kwargs = _call_kwargs(layer, name, _resolve(node.get("kwargs", {}), tensors))
            out = layer(*args, **kwargs)
            for i, t in enumerate(out if isinstance(out, (list, tuple)) else [out]):
                tensors[(name, index, i)] = t
            pending.remove(item)
    inputs = [tensors[tuple(k)] for k in _history_list(config["input_layers"])]
    outputs = [tensors[tuple(k)] for k in _history_list(config["output_layers"])]
    return k2.Model(inputs if len(inputs) > 1 else inputs[0], outputs if len(outputs) > 1 else outputs[0],
                    name=config.get("name"))


def _history_list(value) -> list:
    """input_layers / output_layers: one [name, node, tensor] or a list of them."""
    if value and isinstance(value[0], str):
        return [value]
    return list(value)


def _is_tensor_ref(value) -> bool:
    return isinstance(value, dict) and value.get("class_name") == "__keras_tensor__"


def _resolvable(node, tensors) -> bool:
    refs = []

    def walk(v):
        if _is_tensor_ref(v):
            refs.append(tuple(v["config"]["keras_history"]))
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, (list, tuple)):
            for x in v:
                walk(x)
    walk(node.get("args", []))
    walk(node.get("kwargs", {}))
    return all(r in tensors for r in refs)


def _resolve(value, tensors):
    if _is_tensor_ref(value):
        return tensors[tuple(value["config"]["keras_history"])]
    if isinstance(value, dict):
        return {k: _resolve(v, tensors) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_resolve(v, tensors) for v in value]
    return value


def _call_kwargs(layer, name: str, kwargs: dict) -> dict:
    """The call arguments tf_keras's layer takes; Keras 3-only ones must be unset (None / False)."""
    accepted = inspect.signature(layer.call).parameters
    takes_any = any(p.kind == p.VAR_KEYWORD for p in accepted.values())
    kept = {}
    for key, value in kwargs.items():
        if key in accepted or takes_any:
            kept[key] = value
        elif value not in (None, False):
            raise TrainingError(f"layer '{name}' ({type(layer).__name__}) is called with {key}=..., which tf_keras's "
                                f"{type(layer).__name__} does not take")
    return kept


def _dtype(value):
    if isinstance(value, dict):           # a DTypePolicy
        return value.get("config", {}).get("name", "float32")
    return value


def _make_layer(k2, entry: dict):
    class_name, name = entry["class_name"], entry.get("config", {}).get("name", entry.get("name"))
    if class_name in MODEL_CLASSES:
        return _build_model(k2, class_name, entry["config"])
    return _layer_from_config(k2, class_name, entry.get("config", {}), name, entry.get("module"))


def _layer_from_config(k2, class_name: str, config: dict, name: str, module=None):
    if module not in (None, "keras.layers") or class_name not in SUPPORTED_LAYERS \
            or getattr(k2.layers, class_name, None) is None:
        what = "a custom layer" if module not in (None, "keras.layers") else "not a layer edgeml rebuilds"
        raise TrainingError(f"layer '{name}' ({class_name}) is {what}: the Keras 3 model cannot be rebuilt in "
                            f"tf_keras for tensorflow-model-optimization; use the standard layers "
                            f"({', '.join(SUPPORTED_LAYERS[:12])}, ... see the README)")
    cls = getattr(k2.layers, class_name)
    return cls.from_config({**REQUIRED_DEFAULTS.get(class_name, {}), **_translate(k2, cls, class_name, config, name)})


def _translate(k2, cls, class_name: str, config: dict, name: str) -> dict:
    accepted = set(BASE_ARGUMENTS)
    for klass in cls.__mro__:                # arguments passed on through **kwargs to a base class count too
        if "__init__" in vars(klass):
            accepted |= set(inspect.signature(klass.__init__).parameters) - {"self", "args", "kwargs"}
    renamed = RENAMED_ARGUMENTS.get(class_name, {})
    out = {}
    for key, value in config.items():
        key = renamed.get(key, key)
        if key.endswith("_initializer"):
            continue                     # the weights are copied afterwards
        if key == "dtype":
            value = _dtype(value)
        elif key.endswith(("_regularizer", "_constraint")) and value is not None:
            value = _serialized(k2, key, value, name, class_name)
        elif key in ("layer", "backward_layer") and isinstance(value, dict):
            inner_cls = getattr(k2.layers, value["class_name"], None)
            if inner_cls is None or value["class_name"] not in SUPPORTED_LAYERS:
                raise TrainingError(f"layer '{name}' ({class_name}) wraps {value['class_name']}, which edgeml cannot "
                                    "rebuild in tf_keras")
            value = {"class_name": value["class_name"],
                     "config": _translate(k2, inner_cls, value["class_name"], value["config"], name)}
        elif isinstance(value, dict) and "class_name" in value and key not in ("layer", "backward_layer"):
            if key == "activation" and value.get("module") == "keras.activations":
                value = value.get("config") or value.get("class_name")
        if key in accepted:
            out[key] = value
        elif value in (None, False, [], {}) or (key in DROPPABLE_ARGUMENTS and (
                DROPPABLE_ARGUMENTS[key] is None or value in DROPPABLE_ARGUMENTS[key])):
            continue
        else:
            raise TrainingError(f"layer '{name}' ({class_name}) sets {key}={value!r}, which tf_keras's {class_name} "
                                "does not have")
    return out


def _serialized(k2, key: str, value, name: str, class_name: str):
    """A Keras 3 regularizer / constraint config as tf_keras reads it."""
    kind = k2.regularizers if key.endswith("_regularizer") else k2.constraints
    if isinstance(value, dict) and getattr(kind, value.get("class_name", ""), None) is not None:
        return kind.get({"class_name": value["class_name"], "config": value.get("config", {})})
    raise TrainingError(f"layer '{name}' ({class_name}) has {key} {value!r}, which edgeml cannot rebuild in tf_keras")


# ---- weights and verification ----------------------------------------------------------------------------------


def _copy_weights(src, dst):
    for layer3 in src.layers:
        if not layer3.weights:
            continue
        try:
            layer2 = dst.get_layer(layer3.name)
        except ValueError:
            raise TrainingError(f"layer '{layer3.name}' of the Keras 3 model has no counterpart in the rebuild") \
                from None
        if hasattr(layer3, "layers") and hasattr(layer2, "layers"):
            _copy_weights(layer3, layer2)
            continue
        weights3 = layer3.get_weights()
        shapes3, shapes2 = [w.shape for w in weights3], [tuple(w.shape) for w in layer2.weights]
        if shapes3 != shapes2:
            raise TrainingError(f"layer '{layer3.name}' ({type(layer3).__name__}) holds weights of shapes "
                                f"{shapes3} in Keras 3 but {shapes2} in tf_keras; edgeml cannot rebuild it")
        layer2.set_weights(weights3)


def _random_inputs(model3, rng) -> list:
    xs = []
    for t in model3.inputs:
        shape = (VERIFY_SAMPLES,) + tuple(int(d) if d is not None else 1 for d in t.shape[1:])
        if "int" in str(t.dtype):
            high = _embedding_size(model3) or 10
            xs.append(rng.integers(0, high, shape).astype(str(t.dtype)))
        else:
            xs.append(rng.normal(size=shape).astype(np.float32))
    return xs


def _embedding_size(model3):
    sizes = [layer.input_dim for layer in model3.layers if type(layer).__name__ == "Embedding"]
    return min(sizes) if sizes else None


def _outputs(model, xs) -> list:
    out = model(xs if len(xs) > 1 else xs[0], training=False)
    return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


def verify(model3, model2, xs=None):
    """Raises TrainingError naming the first layer whose rebuilt output differs from Keras 3's."""
    xs = _random_inputs(model3, np.random.default_rng(0)) if xs is None else xs
    want, got = _outputs(model3, xs), _outputs(model2, xs)
    worst = max(float(np.max(np.abs(w - g))) / max(1.0, float(np.max(np.abs(w)))) for w, g in zip(want, got)) \
        if all(w.shape == g.shape for w, g in zip(want, got)) else np.inf
    if worst <= VERIFY_TOLERANCE:
        return
    layer, diff = _first_divergence(model3, model2, xs)
    raise TrainingError(f"the tf_keras rebuild of the Keras 3 model differs from it (relative difference {worst:.2g}), "
                        f"first at layer {layer} (relative difference {diff:.2g}); edgeml cannot rebuild that layer "
                        "faithfully")


def _first_divergence(model3, model2, xs):
    import keras
    _, k2 = keras_env()
    for layer3 in model3.layers:
        if type(layer3).__name__ == "InputLayer":
            continue
        try:
            sub3 = keras.Model(model3.inputs, layer3.output)
            sub2 = k2.Model(model2.inputs, model2.get_layer(layer3.name).output)
            a, b = _outputs(sub3, xs), _outputs(sub2, xs)
        except Exception:  # noqa: BLE001 - a layer used twice has no single output to compare
            continue
        if any(x.shape != y.shape for x, y in zip(a, b)):
            return f"'{layer3.name}' ({type(layer3).__name__})", np.inf
        diff = max(float(np.max(np.abs(x - y))) / max(1.0, float(np.max(np.abs(x)))) for x, y in zip(a, b))
        if diff > VERIFY_TOLERANCE:
            return f"'{layer3.name}' ({type(layer3).__name__})", diff
    return "(none found layer by layer)", np.nan
