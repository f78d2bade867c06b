"""The checks made before training: does the data fit the model?  Inputs are matched to the model's inputs (by
name, else by position), shapes compared, dtypes set (int32 for token ids, float32 otherwise), and every output
gets a `Head` saying how it is trained and scored, from its activation and its labels.  A mismatch is a one-line
DataError naming the input or output, never a TensorFlow traceback."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgeml.errors import DataError
from edgeml.train import keras_env
from edgeml.train.data import Dataset, Target

SPLITS = ("train", "val", "test")


@dataclass
class Head:
    """One model output: task "classification" (activation softmax, sigmoid (binary) or linear (logits)),
    "regression" or "reconstruction"; `units` its width; `class_names` for classification."""
    name: str
    task: str
    activation: str
    units: int
    class_names: list = field(default_factory=list)


def output_activation(model, index: int) -> str:
    """softmax / sigmoid / linear / other name of the activation that produces output `index`."""
    layer = model.get_layer(model.output_names[index])
    layer = getattr(layer, "layer", layer)                 # tfmot wrappers keep the layer as .layer
    if type(layer).__name__ == "Softmax":
        return "softmax"
    fn = getattr(layer, "activation", None)
    name = getattr(fn, "__name__", None) if fn is not None else "linear"
    return name or "linear"


def _per_sample(tensor) -> tuple:
    return tuple(None if d is None else int(d) for d in tensor.shape[1:])


def _fits(want: tuple, have: tuple) -> bool:
    return len(want) == len(have) and all(w is None or w == h for w, h in zip(want, have))


def _shape_text(shape) -> str:
    return "(" + ", ".join("any" if d is None else str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


def bind_inputs(model, ds: Dataset, notes: list) -> None:
    """Orders, reshapes and casts the data's inputs to the model's; DataError on a mismatch."""
    names = [t.name.split(":")[0] for t in model.inputs]
    layer_names = list(getattr(model, "input_names", names))
    have = ds.input_names
    n_model, n_data = len(model.inputs), len(ds.inputs("train"))
    if n_model != n_data:
        data_names = ", ".join(have) if have else f"{n_data} array{'s' if n_data > 1 else ''}"
        raise DataError(f"the model takes {n_model} input{'s' if n_model > 1 else ''} ({', '.join(layer_names)}) but "
                        f"the data holds {data_names}; give one array per input (a .npz with x_<input name> arrays, "
                        "or a list / dict of arrays)")
    order = list(range(n_model))
    if have and n_model > 1:
        missing = [n for n in layer_names if n not in have]
        if missing:
            raise DataError(f"the model's inputs are named {', '.join(layer_names)} but the data's are "
                            f"{', '.join(have)}; name the arrays after the inputs (x_<input name> in a .npz)")
        order = [have.index(n) for n in layer_names]
    per_split = {}
    for split in SPLITS:
        xs = ds.inputs(split)
        per_split[split] = [_bind_one(model, i, xs[order[i]], layer_names[i], notes if split == "train" else [])
                            for i in range(n_model)]
    ds.replace_inputs(per_split)
    ds.input_names = layer_names


def _bind_one(model, index: int, x: np.ndarray, name: str, notes: list) -> np.ndarray:
    tensor = model.inputs[index]
    want, have = _per_sample(tensor), tuple(x.shape[1:])
    if not _fits(want, have):
        if None not in want and int(np.prod(want)) == int(np.prod(have)):
            notes.append(f"input '{name}': the data's per-sample shape {_shape_text(have)} was reshaped to the "
                         f"model's {_shape_text(want)}")
            x = x.reshape((len(x),) + want)
        else:
            raise DataError(f"the model's input '{name}' takes samples of shape {_shape_text(want)} but the data's "
                            f"are {_shape_text(have)}; reshape the data, resize the images (--image-size), or change "
                            "the model's Input")
    if tensor.dtype.is_integer:
        if x.dtype.kind == "f":
            if not np.all(x == np.round(x)):
                raise DataError(f"the model's input '{name}' takes integer ids ({tensor.dtype.name}) but the data "
                                "holds non-integer values")
        x = x.astype(np.int32)
        limit = _embedding_limit(model, index)
        if limit is not None and x.size and (x.min() < 0 or x.max() >= limit):
            raise DataError(f"the data's token ids for input '{name}' run from {x.min()} to {x.max()}, outside the "
                            f"Embedding's 0..{limit - 1} (input_dim {limit})")
        return x
    return x.astype(np.float32)


def _embedding_limit(model, index: int):
    """input_dim of the Embedding layers reading input `index` directly (the smallest), or None."""
    consumers = _consumers(model, model.inputs[index])
    dims = [layer.input_dim for layer in consumers if type(layer).__name__ == "Embedding"]
    return min(dims) if dims else None


def _consumers(model, tensor) -> list:
    found = []
    for layer in model.layers:
        for node in getattr(layer, "_inbound_nodes", []):
            inputs = node.input_tensors if isinstance(node.input_tensors, (list, tuple)) else [node.input_tensors]
            if any(t is tensor for t in inputs):
                found.append(layer)
    return found


def token_inputs_as_int32(model, ds: Dataset, notes: list):
    """The model with an int32 Input in place of a float one that feeds only Embedding layers and gets integer
    data (a float input would be int8-quantized: ids above 127 or so collide); else the model itself."""
    _, keras = keras_env()
    xs = ds.inputs("train")
    if len(xs) != len(model.inputs):
        return model
    swap = []
    for i, t in enumerate(model.inputs):
        consumers = _consumers(model, t)
        if t.dtype.is_floating and xs[i].dtype.kind == "i" and consumers \
                and all(type(layer).__name__ == "Embedding" for layer in consumers):
            swap.append(i)
    if not swap:
        return model
    inputs = [keras.Input(batch_shape=t.shape, dtype="int32" if i in swap else t.dtype, name=t.name.split(":")[0])
              for i, t in enumerate(model.inputs)]
    try:
        clone = keras.models.clone_model(model, input_tensors=inputs if len(inputs) > 1 else inputs[0])
    except Exception:  # noqa: BLE001 - a model that cannot be cloned keeps its float input
        return model
    clone.set_weights(model.get_weights())
    notes.append(f"input{'s' if len(swap) > 1 else ''} {', '.join(repr(model.input_names[i]) for i in swap)} "
                 "feed only Embedding layers: rebuilt as int32 so the token ids stay integers in the int8 model")
    return clone


def bind_outputs(model, ds: Dataset, task: str, notes: list, reconstruction: bool = False) -> list:
    """One Head per model output, matched to the data's targets; DataError on a mismatch."""
    if reconstruction:
        units = int(np.prod(_per_sample(model.outputs[0])))
        return [Head(model.output_names[0], "reconstruction", "linear", units)]
    names = list(model.output_names)
    targets = ds.targets
    if len(names) != len(targets):
        raise DataError(f"the model has {len(names)} output{'s' if len(names) > 1 else ''} ({', '.join(names)}) but "
                        f"the data holds {len(targets)} label array{'s' if len(targets) > 1 else ''}; give one per "
                        "output (y_<output name> in a .npz, or a list / dict of arrays)")
    order = list(range(len(names)))
    if len(names) > 1 and all(not t.name.startswith("output_") for t in targets):
        missing = [n for n in names if n not in [t.name for t in targets]]
        if missing:
            raise DataError(f"the model's outputs are named {', '.join(names)} but the labels are "
                            f"{', '.join(t.name for t in targets)}; name them y_<output name>")
        order = [[t.name for t in targets].index(n) for n in names]
    heads, per_split = [], {s: [] for s in SPLITS}
    for i, name in enumerate(names):
        target = targets[order[i]]
        head, convert = _head(model, i, name, target, task, notes)
        heads.append(head)
        for split in SPLITS:
            per_split[split].append(convert(ds.labels(split)[order[i]]))
    for split in SPLITS:
        ys = per_split[split]
        setattr(ds, f"y_{split}", ys[0] if len(ys) == 1 else ys)
    ds.targets = [targets[j] for j in order]
    return heads


def _head(model, index: int, name: str, target: Target, task: str, notes: list):
    activation = output_activation(model, index)
    shape = _per_sample(model.outputs[index])
    units = int(np.prod([d for d in shape if d is not None])) if shape else 1
    if target.task == "classification":
        classes = len(target.class_names)
        regression_head = activation not in ("softmax", "sigmoid") and units == 1 and task != "classification"
        if regression_head or task == "regression":
            values = _class_values(target, name)
            notes.append(f"output '{name}': a single linear unit, so its whole-number labels are read as values "
                         "(regression)")
            return Head(name, "regression", activation, units), (lambda y: values[y])
        if activation == "sigmoid" and units == 1:
            if classes != 2:
                raise DataError(f"the model's output '{name}' is one sigmoid unit (two classes) but the labels have "
                                f"{classes} classes")
            return Head(name, "classification", "sigmoid", 1, target.class_names), _unchanged
        if activation not in ("softmax", "linear"):
            raise DataError(f"the model's output '{name}' ends in {activation}; a classifier needs softmax (or linear "
                            "logits, or one sigmoid unit for two classes)")
        if units < classes:
            raise DataError(f"the model's output '{name}' has {units} units but the labels have {classes} classes "
                            f"({', '.join(target.class_names[:6])}{', ...' if classes > 6 else ''})")
        if units > classes:
            notes.append(f"output '{name}' has {units} units for {classes} classes: the extra units are never a label")
        return Head(name, "classification", activation, units, target.class_names), _unchanged
    if activation == "softmax":
        raise DataError(f"the model's output '{name}' is a softmax (classification) but the labels are real values; "
                        "use a linear output for regression, or --task classification for whole-number labels")
    want = int(np.prod(target.shape)) if target.shape else 1
    if units != want:
        raise DataError(f"the model's output '{name}' gives {units} value{'s' if units > 1 else ''} per sample but the "
                        f"targets have {want}")
    return Head(name, "regression", activation, units), (lambda y: y.reshape((len(y),) + tuple(
        d for d in shape)) if shape and None not in shape and y.size == len(y) * units else y)


def _unchanged(y):
    return y


def _class_values(target: Target, name: str) -> np.ndarray:
    try:
        return np.array([float(c) for c in target.class_names], np.float32)
    except ValueError:
        raise DataError(f"the model's output '{name}' is one linear unit (a value) but the labels are class names "
                        f"({', '.join(target.class_names[:4])}, ...)") from None
